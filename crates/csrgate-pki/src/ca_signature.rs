//! The CA's signature over DER that csrgate wrote itself (certificates and CRLs).
//!
//! OpenSSL 3's X509 builder re-encodes and re-decodes every public key through its provider
//! encoders and decoders, and every EVP signing call fetches its algorithms under global locks;
//! profiling showed those, not the signature, dominating the cost of a certificate. So the TBS
//! is ours, and EC and RSA CA keys sign the digest through the long-standing low-level calls
//! (`ECDSA_do_sign`, `RSA_private_encrypt` with PKCS#1 v1.5 padding and blinding) on key copies
//! made once at unlock. Ed25519 keys go through EVP, which has no such shortcut.

use openssl::ecdsa::EcdsaSig;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private};
use openssl::rsa::{Padding, Rsa};
use openssl::sign::Signer;
use openssl::x509::X509;
use x509_parser::prelude::FromDer as _;

use crate::PkiError;
use crate::der_writer::{push_tlv, sequence};

/// The hash under a signature algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    pub(crate) fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => openssl::sha::sha256(data).to_vec(),
            Hash::Sha384 => openssl::sha::sha384(data).to_vec(),
            Hash::Sha512 => openssl::sha::sha512(data).to_vec(),
        }
    }

    /// The DER prefix of a PKCS#1 v1.5 DigestInfo for this hash (RFC 8017 9.2, note 1).
    fn digest_info_prefix(self) -> &'static [u8] {
        match self {
            Hash::Sha256 => &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ],
            Hash::Sha384 => &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x02, 0x05, 0x00, 0x04, 0x30,
            ],
            Hash::Sha512 => &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x03, 0x05, 0x00, 0x04, 0x40,
            ],
        }
    }
}

/// The CA key in the form that signs fastest.
enum SigningKey {
    Ec(openssl::ec::EcKey<Private>, Hash),
    Rsa(Rsa<Private>, Hash),
    /// Ed25519: the message itself is signed, no digest.
    Eddsa(PKey<Private>),
}

/// Everything the CA contributes to a signed structure: the signature algorithm, the issuer
/// name, the authority key identifier and the key.
pub(crate) struct CaSignature {
    algorithm: Vec<u8>,
    issuer: Vec<u8>,
    key_identifier: Vec<u8>,
    key: SigningKey,
}

const ECDSA_WITH: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x00];

impl CaSignature {
    pub(crate) fn new(key: &PKey<Private>, certificate: &X509) -> Result<Self, PkiError> {
        let (algorithm, key_material) = match key.id() {
            Id::EC => {
                let ec = key.ec_key()?;
                let hash = match ec.group().curve_name() {
                    Some(Nid::SECP384R1) => Hash::Sha384,
                    Some(Nid::SECP521R1) => Hash::Sha512,
                    _ => Hash::Sha256,
                };
                let mut oid = ECDSA_WITH;
                oid[9] = match hash {
                    Hash::Sha256 => 0x02,
                    Hash::Sha384 => 0x03,
                    Hash::Sha512 => 0x04,
                };
                (sequence(&oid), SigningKey::Ec(ec, hash))
            }
            Id::RSA => (
                // sha256WithRSAEncryption, NULL parameters.
                vec![
                    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b,
                    0x05, 0x00,
                ],
                SigningKey::Rsa(key.rsa()?, Hash::Sha256),
            ),
            Id::ED25519 => (
                vec![0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70],
                SigningKey::Eddsa(key.clone()),
            ),
            _ => return Err(PkiError::Crypto("unsupported CA key type".into())),
        };
        let key_identifier = match certificate.subject_key_id() {
            Some(id) => id.as_slice().to_vec(),
            // RFC 5280 4.2.1.2 method 1, as openssl computes it for a CA without SKI.
            None => openssl::sha::sha1(&public_key_bits(
                &certificate.public_key()?.public_key_to_der()?,
            )?)
            .to_vec(),
        };
        Ok(CaSignature {
            algorithm,
            issuer: certificate.subject_name().to_der()?,
            key_identifier,
            key: key_material,
        })
    }

    /// The AlgorithmIdentifier DER, for the TBS and the outer structure.
    pub(crate) fn algorithm(&self) -> &[u8] {
        &self.algorithm
    }

    /// The CA's subject Name DER: the issuer of everything it signs.
    pub(crate) fn issuer(&self) -> &[u8] {
        &self.issuer
    }

    /// The CA's key identifier, for authorityKeyIdentifier.
    pub(crate) fn key_identifier(&self) -> &[u8] {
        &self.key_identifier
    }

    /// `SEQUENCE { tbs, algorithm, BIT STRING signature }` for a DER-encoded `tbs`.
    pub(crate) fn sign(&self, tbs: Vec<u8>) -> Result<Vec<u8>, PkiError> {
        Ok(sequence(&self.sign_unwrapped(tbs)?))
    }

    /// The content of [`Self::sign`]'s SEQUENCE (`tbs`, algorithm, signature), for structures
    /// that add fields after the signature (an OCSP response's `certs`).
    pub(crate) fn sign_unwrapped(&self, tbs: Vec<u8>) -> Result<Vec<u8>, PkiError> {
        let signature = match &self.key {
            SigningKey::Ec(key, hash) => EcdsaSig::sign(&hash.digest(&tbs), key)?.to_der()?,
            SigningKey::Rsa(key, hash) => {
                let mut digest_info = hash.digest_info_prefix().to_vec();
                digest_info.extend_from_slice(&hash.digest(&tbs));
                let mut signature = vec![0u8; key.size() as usize];
                let written = key.private_encrypt(&digest_info, &mut signature, Padding::PKCS1)?;
                signature.truncate(written);
                signature
            }
            SigningKey::Eddsa(key) => Signer::new_without_digest(key)?.sign_oneshot_to_vec(&tbs)?,
        };
        let mut bit_string = Vec::with_capacity(signature.len() + 1);
        bit_string.push(0); // no unused bits
        bit_string.extend_from_slice(&signature);
        let mut signed = tbs;
        signed.extend_from_slice(&self.algorithm);
        push_tlv(&mut signed, 0x03, &bit_string);
        Ok(signed)
    }
}

/// The contents of the subjectPublicKey BIT STRING of a SubjectPublicKeyInfo DER (without the
/// unused-bits byte): what a key identifier hashes.
pub(crate) fn public_key_bits(spki: &[u8]) -> Result<Vec<u8>, PkiError> {
    let (_, parsed) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki)
        .map_err(|e| PkiError::Crypto(format!("public key does not parse: {e}")))?;
    Ok(parsed.subject_public_key.data.to_vec())
}

/// PEM armour with 64-column base64 lines.
pub(crate) fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::with_capacity(encoded.len() + encoded.len() / 64 + 2 * label.len() + 40);
    pem.push_str("-----BEGIN ");
    pem.push_str(label);
    pem.push_str("-----\n");
    for line in encoded.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END ");
    pem.push_str(label);
    pem.push_str("-----\n");
    pem
}
