//! Key types: which keys csrgate generates for identities, and which CSR keys it accepts.

use std::fmt;
use std::str::FromStr;

use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, PKeyRef, Private};
use openssl::rsa::Rsa;

use crate::PkiError;

/// A key to generate for a CA identity, written `rsa:2048`, `ec:p256`, `ed25519`, ...
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeySpec {
    /// RSA with the given modulus size (2048, 3072 or 4096).
    Rsa(u32),
    /// ECDSA on NIST P-256.
    EcP256,
    /// ECDSA on NIST P-384.
    EcP384,
    /// Ed25519.
    Ed25519,
}

impl KeySpec {
    pub(crate) fn generate(self) -> Result<PKey<Private>, PkiError> {
        Ok(match self {
            KeySpec::Rsa(bits) => PKey::from_rsa(Rsa::generate(bits)?)?,
            KeySpec::EcP256 => ec_key(Nid::X9_62_PRIME256V1)?,
            KeySpec::EcP384 => ec_key(Nid::SECP384R1)?,
            KeySpec::Ed25519 => PKey::generate_ed25519()?,
        })
    }
}

fn ec_key(curve: Nid) -> Result<PKey<Private>, PkiError> {
    let group = EcGroup::from_curve_name(curve)?;
    Ok(PKey::from_ec_key(EcKey::generate(&group)?)?)
}

impl FromStr for KeySpec {
    type Err = PkiError;

    fn from_str(text: &str) -> Result<Self, PkiError> {
        match text.to_ascii_lowercase().as_str() {
            "rsa:2048" => Ok(KeySpec::Rsa(2048)),
            "rsa:3072" => Ok(KeySpec::Rsa(3072)),
            "rsa:4096" => Ok(KeySpec::Rsa(4096)),
            "ec:p256" | "ec:p-256" => Ok(KeySpec::EcP256),
            "ec:p384" | "ec:p-384" => Ok(KeySpec::EcP384),
            "ed25519" => Ok(KeySpec::Ed25519),
            _ => Err(PkiError::InvalidParameter(format!(
                "unknown key type {text:?}: use rsa:2048, rsa:3072, rsa:4096, ec:p256, ec:p384 or ed25519"
            ))),
        }
    }
}

impl fmt::Display for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySpec::Rsa(bits) => write!(f, "rsa:{bits}"),
            KeySpec::EcP256 => f.write_str("ec:p256"),
            KeySpec::EcP384 => f.write_str("ec:p384"),
            KeySpec::Ed25519 => f.write_str("ed25519"),
        }
    }
}

/// The algorithm of a public key, as hooks and records see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// RSA (rsaEncryption).
    Rsa,
    /// ECDSA on NIST P-256.
    EcP256,
    /// ECDSA on NIST P-384.
    EcP384,
    /// ECDSA on NIST P-521.
    EcP521,
    /// Ed25519.
    Ed25519,
}

impl KeyAlgorithm {
    /// A stable lower-case name: `rsa`, `ec-p256`, `ec-p384`, `ec-p521`, `ed25519`.
    pub fn name(self) -> &'static str {
        match self {
            KeyAlgorithm::Rsa => "rsa",
            KeyAlgorithm::EcP256 => "ec-p256",
            KeyAlgorithm::EcP384 => "ec-p384",
            KeyAlgorithm::EcP521 => "ec-p521",
            KeyAlgorithm::Ed25519 => "ed25519",
        }
    }
}

/// What csrgate knows about a public key after it passed the key policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicKeyInfo {
    /// Algorithm (and curve).
    pub algorithm: KeyAlgorithm,
    /// Key size in bits (the modulus for RSA, the field for EC, 256 for Ed25519).
    pub bits: u32,
}

impl fmt::Display for PublicKeyInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.algorithm {
            KeyAlgorithm::Rsa => write!(f, "RSA {} bits", self.bits),
            KeyAlgorithm::EcP256 => f.write_str("EC P-256"),
            KeyAlgorithm::EcP384 => f.write_str("EC P-384"),
            KeyAlgorithm::EcP521 => f.write_str("EC P-521"),
            KeyAlgorithm::Ed25519 => f.write_str("Ed25519"),
        }
    }
}

/// The largest RSA modulus accepted: verifying a larger key's signature costs enough CPU to be a
/// cheap denial of service, and no public CA issues for one.
const MAX_RSA_BITS: u32 = 8192;

/// Applies the key policy: RSA 2048..=8192 with a sane public exponent, EC P-256/P-384/P-521, Ed25519.
pub(crate) fn classify_public_key<T>(key: &PKeyRef<T>) -> Result<PublicKeyInfo, PkiError>
where
    T: openssl::pkey::HasPublic,
{
    match key.id() {
        Id::RSA => {
            let rsa = key.rsa()?;
            let bits = rsa.n().num_bits().max(0) as u32;
            if bits < 2048 {
                return Err(PkiError::WeakKey(format!(
                    "RSA key of {bits} bits: at least 2048 are required"
                )));
            }
            if bits > MAX_RSA_BITS {
                return Err(PkiError::WeakKey(format!(
                    "RSA key of {bits} bits: at most {MAX_RSA_BITS} are accepted"
                )));
            }
            let e = rsa.e();
            if e.num_bits() < 2 || !e.is_bit_set(0) || e.num_bits() > 256 {
                return Err(PkiError::WeakKey(
                    "RSA public exponent must be odd, at least 3 and at most 256 bits".into(),
                ));
            }
            Ok(PublicKeyInfo {
                algorithm: KeyAlgorithm::Rsa,
                bits,
            })
        }
        Id::EC => {
            let ec = key.ec_key()?;
            let (algorithm, bits) = match ec.group().curve_name() {
                Some(Nid::X9_62_PRIME256V1) => (KeyAlgorithm::EcP256, 256),
                Some(Nid::SECP384R1) => (KeyAlgorithm::EcP384, 384),
                Some(Nid::SECP521R1) => (KeyAlgorithm::EcP521, 521),
                Some(other) => {
                    let name = other.short_name().unwrap_or("unnamed");
                    return Err(PkiError::WeakKey(format!(
                        "EC curve {name} is not accepted: use P-256, P-384 or P-521"
                    )));
                }
                None => {
                    return Err(PkiError::WeakKey(
                        "EC keys with explicit curve parameters are not accepted".into(),
                    ));
                }
            };
            Ok(PublicKeyInfo { algorithm, bits })
        }
        Id::ED25519 => Ok(PublicKeyInfo {
            algorithm: KeyAlgorithm::Ed25519,
            bits: 256,
        }),
        _ => Err(PkiError::WeakKey(
            "key algorithm not accepted: use RSA (2048+), EC P-256/P-384/P-521 or Ed25519".into(),
        )),
    }
}

/// The digest a CA key signs with: SHA-384 for P-384, SHA-512 for P-521, none for Ed25519 (it
/// hashes internally), SHA-256 otherwise. ssl_api signed with SHA-1; nothing here does.
pub(crate) fn signing_digest<T>(key: &PKeyRef<T>) -> MessageDigest
where
    T: openssl::pkey::HasPublic,
{
    match key.id() {
        Id::ED25519 => MessageDigest::null(),
        Id::EC => match key.ec_key().ok().and_then(|ec| ec.group().curve_name()) {
            Some(Nid::SECP384R1) => MessageDigest::sha384(),
            Some(Nid::SECP521R1) => MessageDigest::sha512(),
            _ => MessageDigest::sha256(),
        },
        _ => MessageDigest::sha256(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_specs_parse_and_display() {
        for text in [
            "rsa:2048", "rsa:3072", "rsa:4096", "ec:p256", "ec:p384", "ed25519",
        ] {
            let spec: KeySpec = text.parse().expect(text);
            assert_eq!(spec.to_string(), text);
        }
        for text in ["rsa:1024", "ec:p224", "dsa", ""] {
            assert!(text.parse::<KeySpec>().is_err(), "{text}");
        }
    }

    #[test]
    fn generated_keys_pass_the_policy() {
        for (spec, algorithm) in [
            (KeySpec::EcP256, KeyAlgorithm::EcP256),
            (KeySpec::EcP384, KeyAlgorithm::EcP384),
            (KeySpec::Ed25519, KeyAlgorithm::Ed25519),
            (KeySpec::Rsa(2048), KeyAlgorithm::Rsa),
        ] {
            let key = spec.generate().expect("keygen");
            assert_eq!(
                classify_public_key(&key).expect("policy").algorithm,
                algorithm
            );
        }
    }

    #[test]
    fn policy_refuses_small_rsa_and_other_curves() {
        let small = PKey::from_rsa(Rsa::generate(1024).expect("rsa")).expect("pkey");
        assert!(matches!(
            classify_public_key(&small),
            Err(PkiError::WeakKey(_))
        ));
        let k1 = ec_key(Nid::SECP256K1).expect("secp256k1");
        assert!(matches!(
            classify_public_key(&k1),
            Err(PkiError::WeakKey(_))
        ));
    }
}
