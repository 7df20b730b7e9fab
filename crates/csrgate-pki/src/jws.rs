//! JSON Web Signatures as ACME sends them (RFC 8555 section 6.2): the flattened JSON
//! serialization (RFC 7515 7.2.2) with exactly one signature, a protected header carrying `alg`,
//! `url`, exactly one of `jwk` or `kid`, and usually `nonce`, signed with ES256, ES384, RS256 or
//! EdDSA (RFC 7518 3.3-3.4, RFC 8037) and verified with openssl; and JWK thumbprints (RFC 7638).
//!
//! What depends on the request is the caller's (the ACME server): that `nonce` is present and
//! fresh (absent only in key rollover's inner JWS), that `url` is the URL requested, that `kid`
//! names a valid account and `jwk` is used only where RFC 8555 allows it, the content type
//! `application/jose+json`, that the payload is the JSON the resource expects.
//!
//! Our own parser on serde_json, not a JOSE crate (decision 0032): the one crate on openssl
//! accepts what ACME forbids (several signatures, an unprotected header), the others bring a
//! second crypto stack; what is ours is the shape ACME allows, openssl does the mathematics.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Public};
use openssl::rsa::Rsa;
use openssl::sign::Verifier;
use serde::Deserialize;

/// Why a JWS is refused; each maps to an ACME problem type (RFC 8555 6.7).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    /// Not a flattened JWS of ACME's shape (`malformed`).
    #[error("malformed JWS: {0}")]
    Malformed(String),
    /// `alg` is none of ES256, ES384, RS256, EdDSA, or does not fit the key
    /// (`badSignatureAlgorithm`).
    #[error("unsupported signature algorithm: {0}")]
    BadSignatureAlgorithm(String),
    /// The JWK is not a key csrgate accepts (`badPublicKey`).
    #[error("unacceptable public key: {0}")]
    BadPublicKey(String),
    /// The signature does not verify with the key (`unauthorized`).
    #[error("the JWS signature does not verify")]
    BadSignature,
}

/// A JWS signature algorithm ACME clients use (RFC 7518 3.1, RFC 8037 3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JwsAlgorithm {
    /// ECDSA P-256 with SHA-256 (ACME's mandatory one, RFC 8555 6.2).
    Es256,
    /// ECDSA P-384 with SHA-384.
    Es384,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// Ed25519.
    EdDsa,
}

impl JwsAlgorithm {
    /// The `alg` value of RFC 7518 / 8037; the names ACME's directory advertises.
    pub fn name(self) -> &'static str {
        match self {
            JwsAlgorithm::Es256 => "ES256",
            JwsAlgorithm::Es384 => "ES384",
            JwsAlgorithm::Rs256 => "RS256",
            JwsAlgorithm::EdDsa => "EdDSA",
        }
    }

    fn parse(name: &str) -> Result<Self, JwsError> {
        match name {
            "ES256" => Ok(JwsAlgorithm::Es256),
            "ES384" => Ok(JwsAlgorithm::Es384),
            "RS256" => Ok(JwsAlgorithm::Rs256),
            "EdDSA" => Ok(JwsAlgorithm::EdDsa),
            other => Err(JwsError::BadSignatureAlgorithm(format!(
                "{other:?}: use ES256, ES384, RS256 or EdDSA"
            ))),
        }
    }
}

/// A public key as a JWK (RFC 7517) of the three kinds ACME clients use, checked: EC P-256 or
/// P-384 with a point on the curve, RSA of 2048 to 4096 bits with e = 65537, Ed25519 neither of
/// small order nor non-canonical; members in canonical base64url, kept as received so the RFC
/// 7638 thumbprint is the one the client computes. Only [`Jwk::parse`] makes one; it builds
/// and checks the openssl key once (a point check costs as much as a verification), and every
/// [`Jwk::verify`] uses that key.
#[derive(Clone)]
pub struct Jwk {
    members: Members,
    key: PKey<Public>,
}

impl PartialEq for Jwk {
    fn eq(&self, other: &Self) -> bool {
        self.members == other.members
    }
}

impl Eq for Jwk {}

impl std::fmt::Debug for Jwk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Jwk").field(&self.members).finish()
    }
}

/// The required members of each kind (RFC 7518 6.2, 6.3; RFC 8037 2), as received.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Members {
    Ec { crv: Curve, x: String, y: String },
    Rsa { n: String, e: String },
    Ed25519 { x: String },
}

/// The EC curves accepted, by their JWK `crv` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Curve {
    P256,
    P384,
}

impl Curve {
    fn name(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
        }
    }
}

/// The members a JWK may carry that matter here; anything else (`kid`, `use`, `alg`...) is
/// ignored, as RFC 7517 4 says, and not part of the thumbprint. A derived struct, so a member
/// given twice is refused rather than one of the two taken.
#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    n: Option<String>,
    e: Option<String>,
    d: Option<serde::de::IgnoredAny>,
}

/// Attacker text in a message, cut to a length that says enough.
fn shown(text: &str) -> String {
    let cut: String = text.chars().take(32).collect();
    if cut.len() < text.len() {
        format!("{cut:?}...")
    } else {
        format!("{cut:?}")
    }
}

/// Decodes base64url without padding, refusing any other spelling (padding, the standard
/// alphabet, trailing bits), so one value has one text.
fn b64(what: &str, text: &str) -> Result<Vec<u8>, JwsError> {
    URL_SAFE_NO_PAD
        .decode(text)
        .ok()
        .filter(|bytes| URL_SAFE_NO_PAD.encode(bytes) == text)
        .ok_or_else(|| JwsError::Malformed(format!("{what} is not base64url without padding")))
}

/// 2^255 - 19, little-endian: Ed25519's field prime.
const ED25519_P: [u8; 32] = {
    let mut p = [0xff; 32];
    p[0] = 0xed;
    p[31] = 0x7f;
    p
};

/// The y coordinates (little-endian, sign bit clear) of Ed25519's points of small order (1, 2,
/// 4, 8): a key among them verifies forged signatures (the identity verifies R = identity,
/// S = 0 for every message).
const ED25519_SMALL_ORDER_Y: [[u8; 32]; 5] = {
    let mut one = [0; 32];
    one[0] = 1;
    let mut minus_one = ED25519_P;
    minus_one[0] = 0xec;
    [
        one,
        minus_one,
        [0; 32],
        [
            0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef,
            0x98, 0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88,
            0x6d, 0x53, 0xfc, 0x05,
        ],
        [
            0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10,
            0x67, 0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77,
            0x92, 0xac, 0x03, 0x7a,
        ],
    ]
};

/// Whether an Ed25519 public key is one csrgate accepts: y below the field prime (one encoding
/// per key, so one thumbprint) and not of small order.
fn ed25519_acceptable(key: &[u8; 32]) -> bool {
    let mut y = *key;
    y[31] &= 0x7f;
    // Little-endian comparison: from the most significant octet down.
    let below_p = y.iter().rev().cmp(ED25519_P.iter().rev()) == std::cmp::Ordering::Less;
    below_p && !ED25519_SMALL_ORDER_Y.contains(&y)
}

impl Jwk {
    /// Reads a JWK's JSON text and checks it as a key (see [`Jwk`]).
    ///
    /// # Errors
    /// [`JwsError::BadPublicKey`] for a key of another kind, shape or size, or a private key;
    /// [`JwsError::Malformed`] for bad base64url.
    pub fn parse(json: &[u8]) -> Result<Jwk, JwsError> {
        let raw: RawJwk = serde_json::from_slice(json)
            .map_err(|e| JwsError::BadPublicKey(format!("not a JWK: {e}")))?;
        Jwk::from_raw(raw)
    }

    fn from_raw(raw: RawJwk) -> Result<Jwk, JwsError> {
        if raw.d.is_some() {
            return Err(JwsError::BadPublicKey(
                "the JWK holds a private key; send the public key only".into(),
            ));
        }
        let member = |name: &str, value: Option<String>| {
            value.ok_or_else(|| JwsError::BadPublicKey(format!("the JWK has no {name:?}")))
        };
        let members = match raw.kty.as_str() {
            "EC" => {
                let crv = member("crv", raw.crv)?;
                let crv = match crv.as_str() {
                    "P-256" => Curve::P256,
                    "P-384" => Curve::P384,
                    other => {
                        return Err(JwsError::BadPublicKey(format!(
                            "EC curve {}: use P-256 or P-384",
                            shown(other)
                        )));
                    }
                };
                Members::Ec {
                    crv,
                    x: member("x", raw.x)?,
                    y: member("y", raw.y)?,
                }
            }
            "RSA" => Members::Rsa {
                n: member("n", raw.n)?,
                e: member("e", raw.e)?,
            },
            "OKP" => {
                let crv = member("crv", raw.crv)?;
                if crv != "Ed25519" {
                    return Err(JwsError::BadPublicKey(format!(
                        "OKP curve {}: use Ed25519",
                        shown(&crv)
                    )));
                }
                Members::Ed25519 {
                    x: member("x", raw.x)?,
                }
            }
            other => {
                return Err(JwsError::BadPublicKey(format!(
                    "kty {}: use EC (P-256, P-384), RSA or OKP (Ed25519)",
                    shown(other)
                )));
            }
        };
        let key = public_key(&members)?;
        Ok(Jwk { members, key })
    }

    /// The JWK thumbprint (RFC 7638 3): base64url of SHA-256 over the required members in
    /// lexicographic order, without whitespace. ACME's key authorization (RFC 8555 8.1) and
    /// account identity rest on it. (The members are checked base64url and fixed names, so
    /// nothing in them needs JSON escaping.)
    pub fn thumbprint(&self) -> String {
        URL_SAFE_NO_PAD.encode(openssl::sha::sha256(self.canonical_json().as_bytes()))
    }

    /// The key's required members in RFC 7638 3's canonical JSON (what the thumbprint hashes):
    /// the form to store a key in, which [`Jwk::parse`] reads back as the same key.
    pub fn canonical_json(&self) -> String {
        match &self.members {
            Members::Ec { crv, x, y } => format!(
                r#"{{"crv":"{}","kty":"EC","x":"{x}","y":"{y}"}}"#,
                crv.name()
            ),
            Members::Rsa { n, e } => format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#),
            Members::Ed25519 { x } => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#),
        }
    }

    /// The key as a DER SubjectPublicKeyInfo (RFC 5280 4.1.2.7), to compare with a
    /// certificate's (ACME revokeCert signed with the certificate's key, RFC 8555 7.6).
    ///
    /// # Errors
    /// [`JwsError::BadPublicKey`] only on an openssl failure (the key was checked at parse).
    pub fn public_key_der(&self) -> Result<Vec<u8>, JwsError> {
        self.key
            .public_key_to_der()
            .map_err(|e| JwsError::BadPublicKey(e.to_string()))
    }

    /// Verifies `signature` (the JWS encoding: r‖s for ECDSA, RFC 7518 3.4) over
    /// `signing_input` with this key under `alg`, which must fit the key's kind and curve.
    ///
    /// # Errors
    /// [`JwsError::BadSignatureAlgorithm`] when `alg` does not fit the key,
    /// [`JwsError::BadSignature`] when the signature does not verify.
    pub fn verify(
        &self,
        alg: JwsAlgorithm,
        signing_input: &[u8],
        signature: &[u8],
    ) -> Result<(), JwsError> {
        let fits = matches!(
            (alg, &self.members),
            (
                JwsAlgorithm::Es256,
                Members::Ec {
                    crv: Curve::P256,
                    ..
                }
            ) | (
                JwsAlgorithm::Es384,
                Members::Ec {
                    crv: Curve::P384,
                    ..
                }
            ) | (JwsAlgorithm::Rs256, Members::Rsa { .. })
                | (JwsAlgorithm::EdDsa, Members::Ed25519 { .. })
        );
        if !fits {
            return Err(JwsError::BadSignatureAlgorithm(format!(
                "{} does not fit this key",
                alg.name()
            )));
        }
        let key = &self.key;
        let verified = match alg {
            JwsAlgorithm::Es256 | JwsAlgorithm::Es384 => {
                let (size, digest) = if alg == JwsAlgorithm::Es256 {
                    (32, MessageDigest::sha256())
                } else {
                    (48, MessageDigest::sha384())
                };
                if signature.len() != 2 * size {
                    return Err(JwsError::BadSignature);
                }
                let der = BigNum::from_slice(&signature[..size])
                    .and_then(|r| Ok((r, BigNum::from_slice(&signature[size..])?)))
                    .and_then(|(r, s)| EcdsaSig::from_private_components(r, s))
                    .and_then(|sig| sig.to_der())
                    .map_err(|_| JwsError::BadSignature)?;
                Verifier::new(digest, key)
                    .and_then(|mut verifier| verifier.verify_oneshot(&der, signing_input))
            }
            JwsAlgorithm::Rs256 => Verifier::new(MessageDigest::sha256(), key)
                .and_then(|mut verifier| verifier.verify_oneshot(signature, signing_input)),
            JwsAlgorithm::EdDsa => Verifier::new_without_digest(key)
                .and_then(|mut verifier| verifier.verify_oneshot(signature, signing_input)),
        };
        match verified {
            Ok(true) => Ok(()),
            _ => Err(JwsError::BadSignature),
        }
    }
}

/// The openssl key of `members`, checking what [`Jwk`] promises.
fn public_key(members: &Members) -> Result<PKey<Public>, JwsError> {
    let bad = |why: String| JwsError::BadPublicKey(why);
    let openssl = |e: openssl::error::ErrorStack| JwsError::BadPublicKey(e.to_string());
    match members {
        Members::Ec { crv, x, y } => {
            let (nid, size) = match crv {
                Curve::P256 => (Nid::X9_62_PRIME256V1, 32),
                Curve::P384 => (Nid::SECP384R1, 48),
            };
            let (x, y) = (b64("x", x)?, b64("y", y)?);
            if x.len() != size || y.len() != size {
                return Err(bad(format!(
                    "{} coordinates are {size} octets each",
                    crv.name()
                )));
            }
            let group = EcGroup::from_curve_name(nid).map_err(openssl)?;
            let x = BigNum::from_slice(&x).map_err(openssl)?;
            let y = BigNum::from_slice(&y).map_err(openssl)?;
            // Refuses coordinates out of range and points off the curve (it runs
            // EC_KEY_check_key); both curves have cofactor 1.
            let key = EcKey::from_public_key_affine_coordinates(&group, &x, &y)
                .map_err(|_| bad(format!("the point is not on {}", crv.name())))?;
            PKey::from_ec_key(key).map_err(openssl)
        }
        Members::Rsa { n, e } => {
            let (n, e) = (b64("n", n)?, b64("e", e)?);
            if n.first().is_none_or(|b| *b == 0) {
                return Err(bad("RSA n is its minimal big-endian octets".into()));
            }
            // 65537, as Let's Encrypt requires: e = 1 makes every signature forgeable, and
            // a large e makes each verification cost a private key's work.
            if e != [0x01, 0x00, 0x01] {
                return Err(bad("RSA keys must have e = 65537 (AQAB)".into()));
            }
            let n = BigNum::from_slice(&n).map_err(openssl)?;
            let bits = n.num_bits();
            if !(2048..=4096).contains(&bits) {
                return Err(bad(format!(
                    "an RSA key of {bits} bits: use 2048 to 4096 bits"
                )));
            }
            let e = BigNum::from_u32(65537).map_err(openssl)?;
            let rsa = Rsa::from_public_components(n, e).map_err(openssl)?;
            PKey::from_rsa(rsa).map_err(openssl)
        }
        Members::Ed25519 { x } => {
            let x: [u8; 32] = b64("x", x)?
                .try_into()
                .map_err(|_| bad("an Ed25519 key is 32 octets".into()))?;
            if !ed25519_acceptable(&x) {
                return Err(bad(
                    "an Ed25519 key of small order or in a non-canonical encoding".into(),
                ));
            }
            PKey::public_key_from_raw_bytes(&x, Id::ED25519).map_err(openssl)
        }
    }
}

/// The key a request is signed with (RFC 8555 6.2): a new key (`jwk`: newAccount, revokeCert by
/// certificate key) or an account's URL (`kid`: everything else).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JwsKey {
    /// The key itself.
    Jwk(Jwk),
    /// The account URL.
    Kid(String),
}

/// A parsed, not yet verified ACME request: what the protected header says, the payload, and
/// what the signature covers.
#[derive(Clone, Debug)]
pub struct JwsRequest {
    /// `alg`.
    pub alg: JwsAlgorithm,
    /// `nonce` (RFC 8555 6.5): the caller requires it, except in key rollover's inner JWS.
    pub nonce: Option<String>,
    /// `url`: must equal the URL the request was sent to (RFC 8555 6.4).
    pub url: String,
    /// `jwk` or `kid`.
    pub key: JwsKey,
    /// The decoded payload; empty for POST-as-GET (RFC 8555 6.3).
    pub payload: Vec<u8>,
    /// `protected || '.' || payload` as sent, the signing input (RFC 7515 5.2).
    signing_input: Vec<u8>,
    signature: Vec<u8>,
}

/// The flattened serialization's members, and nothing else: no `header` (unprotected), no
/// `signatures` (RFC 8555 6.2 forbids both).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Flattened {
    protected: String,
    payload: String,
    signature: String,
}

/// The protected header's members ACME defines; others are ignored (RFC 7515 4), except `crit`,
/// which names extensions csrgate does not understand and so is refused (RFC 7515 4.1.11).
#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    nonce: Option<String>,
    url: String,
    jwk: Option<RawJwk>,
    kid: Option<String>,
    crit: Option<serde::de::IgnoredAny>,
}

impl JwsRequest {
    /// Parses a request body (`application/jose+json`): the flattened JWS, its protected header
    /// and payload decoded, `alg` one of ours, exactly one of `jwk` and `kid`. Duplicate JSON
    /// members are refused (serde), as RFC 7515 5.2 allows and ACME needs.
    ///
    /// # Errors
    /// [`JwsError::Malformed`], [`JwsError::BadSignatureAlgorithm`], [`JwsError::BadPublicKey`].
    pub fn parse(body: &[u8]) -> Result<JwsRequest, JwsError> {
        let flattened: Flattened = serde_json::from_slice(body).map_err(|e| {
            JwsError::Malformed(format!(
                "the body is a flattened JWS (protected, payload, signature) and nothing else: {e}"
            ))
        })?;
        let header = b64("protected", &flattened.protected)?;
        let header: RawHeader = serde_json::from_slice(&header)
            .map_err(|e| JwsError::Malformed(format!("the protected header: {e}")))?;
        if header.crit.is_some() {
            return Err(JwsError::Malformed(
                "crit names extensions this server does not support".into(),
            ));
        }
        let alg = JwsAlgorithm::parse(&header.alg)?;
        let key = match (header.jwk, header.kid) {
            (Some(jwk), None) => JwsKey::Jwk(Jwk::from_raw(jwk)?),
            (None, Some(kid)) => JwsKey::Kid(kid),
            _ => {
                return Err(JwsError::Malformed(
                    "the protected header has exactly one of jwk and kid".into(),
                ));
            }
        };
        let payload = if flattened.payload.is_empty() {
            Vec::new()
        } else {
            b64("payload", &flattened.payload)?
        };
        let signature = b64("signature", &flattened.signature)?;
        let mut signing_input =
            Vec::with_capacity(flattened.protected.len() + 1 + flattened.payload.len());
        signing_input.extend_from_slice(flattened.protected.as_bytes());
        signing_input.push(b'.');
        signing_input.extend_from_slice(flattened.payload.as_bytes());
        Ok(JwsRequest {
            alg,
            nonce: header.nonce,
            url: header.url,
            key,
            payload,
            signing_input,
            signature,
        })
    }

    /// Verifies the signature with `key` (the request's own `jwk`, or the account key its
    /// `kid` names).
    ///
    /// # Errors
    /// As [`Jwk::verify`].
    pub fn verify(&self, key: &Jwk) -> Result<(), JwsError> {
        key.verify(self.alg, &self.signing_input, &self.signature)
    }
}

#[cfg(test)]
mod tests {
    use openssl::ec::EcKey;
    use openssl::pkey::Private;
    use openssl::sign::Signer;

    use super::*;

    /// RFC 7638 3.1: the RSA key of RFC 7517 A.1 and its thumbprint.
    #[test]
    fn the_rfc_7638_thumbprint() {
        let jwk = Jwk::parse(serde_json::json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        }).to_string().as_bytes())
        .expect("the RFC's key");
        assert_eq!(
            jwk.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    /// RFC 7515 A.3: an ES256 signature made by another implementation verifies, and a changed
    /// input does not.
    #[test]
    fn the_rfc_7515_es256_example_verifies() {
        let jwk = Jwk::parse(
            serde_json::json!({
                "kty": "EC",
                "crv": "P-256",
                "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
            })
            .to_string()
            .as_bytes(),
        )
        .expect("the RFC's key");
        let input = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
        let signature = URL_SAFE_NO_PAD
            .decode("DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q")
            .expect("base64url");
        jwk.verify(JwsAlgorithm::Es256, input.as_bytes(), &signature)
            .expect("the RFC's signature");
        assert_eq!(
            jwk.verify(JwsAlgorithm::Es256, &input.as_bytes()[1..], &signature),
            Err(JwsError::BadSignature)
        );
        assert!(matches!(
            jwk.verify(JwsAlgorithm::Es384, input.as_bytes(), &signature),
            Err(JwsError::BadSignatureAlgorithm(_))
        ));
    }

    /// Requests another implementation signed (Python's `cryptography`, the `acme_jws` fuzz
    /// target's seed corpus): each parses, and those carrying their key verify with it.
    #[test]
    fn requests_signed_elsewhere_parse_and_verify() {
        let seeds: [(&[u8], JwsAlgorithm, bool); 5] = [
            (
                include_bytes!("../../csrgate-fuzz/corpus/acme_jws/es256-new-account"),
                JwsAlgorithm::Es256,
                true,
            ),
            (
                include_bytes!("../../csrgate-fuzz/corpus/acme_jws/es384-new-order"),
                JwsAlgorithm::Es384,
                true,
            ),
            (
                include_bytes!("../../csrgate-fuzz/corpus/acme_jws/es256-kid-order"),
                JwsAlgorithm::Es256,
                false,
            ),
            (
                include_bytes!("../../csrgate-fuzz/corpus/acme_jws/rs256-post-as-get"),
                JwsAlgorithm::Rs256,
                true,
            ),
            (
                include_bytes!("../../csrgate-fuzz/corpus/acme_jws/eddsa-finalize"),
                JwsAlgorithm::EdDsa,
                true,
            ),
        ];
        for (body, alg, has_jwk) in seeds {
            let request = JwsRequest::parse(body).expect("parses");
            assert_eq!(request.alg, alg);
            match &request.key {
                JwsKey::Jwk(jwk) => {
                    assert!(has_jwk);
                    request.verify(jwk).expect("verifies");
                }
                JwsKey::Kid(kid) => {
                    assert!(!has_jwk);
                    assert!(kid.ends_with("/acme/acct/1"));
                }
            }
        }
    }

    fn b64u(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A key of each kind ACME clients use, its JWK, and the `alg` it signs with.
    fn keys() -> Vec<(PKey<Private>, serde_json::Value, JwsAlgorithm)> {
        let ec = |nid: Nid, crv: &str, size: usize, alg| {
            let group = EcGroup::from_curve_name(nid).expect("group");
            let key = EcKey::generate(&group).expect("key");
            let mut ctx = openssl::bn::BigNumContext::new().expect("ctx");
            let (mut x, mut y) = (BigNum::new().expect("x"), BigNum::new().expect("y"));
            key.public_key()
                .affine_coordinates(&group, &mut x, &mut y, &mut ctx)
                .expect("coordinates");
            let jwk = serde_json::json!({
                "kty": "EC", "crv": crv,
                "x": b64u(&x.to_vec_padded(size as i32).expect("x")),
                "y": b64u(&y.to_vec_padded(size as i32).expect("y")),
            });
            (PKey::from_ec_key(key).expect("pkey"), jwk, alg)
        };
        let rsa = Rsa::generate(2048).expect("rsa");
        let rsa_jwk = serde_json::json!({
            "kty": "RSA", "n": b64u(&rsa.n().to_vec()), "e": b64u(&rsa.e().to_vec()),
        });
        let ed = PKey::generate_ed25519().expect("ed25519");
        let ed_jwk = serde_json::json!({
            "kty": "OKP", "crv": "Ed25519", "x": b64u(&ed.raw_public_key().expect("raw")),
        });
        vec![
            ec(Nid::X9_62_PRIME256V1, "P-256", 32, JwsAlgorithm::Es256),
            ec(Nid::SECP384R1, "P-384", 48, JwsAlgorithm::Es384),
            (
                PKey::from_rsa(rsa).expect("pkey"),
                rsa_jwk,
                JwsAlgorithm::Rs256,
            ),
            (ed, ed_jwk, JwsAlgorithm::EdDsa),
        ]
    }

    /// A flattened JWS as an ACME client writes one (RFC 8555 6.2), signed with `key`.
    fn sign(
        key: &PKey<Private>,
        alg: JwsAlgorithm,
        header: &serde_json::Value,
        payload: &[u8],
    ) -> Vec<u8> {
        let protected = b64u(header.to_string().as_bytes());
        let payload = b64u(payload);
        let input = format!("{protected}.{payload}");
        let signature = match alg {
            JwsAlgorithm::Es256 | JwsAlgorithm::Es384 => {
                let (digest, size) = if alg == JwsAlgorithm::Es256 {
                    (MessageDigest::sha256(), 32)
                } else {
                    (MessageDigest::sha384(), 48)
                };
                let der = Signer::new(digest, key)
                    .and_then(|mut s| s.sign_oneshot_to_vec(input.as_bytes()))
                    .expect("sign");
                let sig = EcdsaSig::from_der(&der).expect("ecdsa");
                let mut raw = sig.r().to_vec_padded(size).expect("r");
                raw.extend(sig.s().to_vec_padded(size).expect("s"));
                raw
            }
            JwsAlgorithm::Rs256 => Signer::new(MessageDigest::sha256(), key)
                .and_then(|mut s| s.sign_oneshot_to_vec(input.as_bytes()))
                .expect("sign"),
            JwsAlgorithm::EdDsa => Signer::new_without_digest(key)
                .and_then(|mut s| s.sign_oneshot_to_vec(input.as_bytes()))
                .expect("sign"),
        };
        serde_json::json!({"protected": protected, "payload": payload, "signature": b64u(&signature)})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn every_algorithm_verifies_and_a_changed_byte_does_not() {
        for (key, jwk, alg) in keys() {
            let header = serde_json::json!({
                "alg": alg.name(), "nonce": "abc", "url": "https://ca.test/acme/new-account", "jwk": jwk,
            });
            let body = sign(&key, alg, &header, br#"{"termsOfServiceAgreed":true}"#);
            let request = JwsRequest::parse(&body).expect("parses");
            assert_eq!(request.alg, alg);
            assert_eq!(request.nonce.as_deref(), Some("abc"));
            assert_eq!(request.url, "https://ca.test/acme/new-account");
            assert_eq!(request.payload, br#"{"termsOfServiceAgreed":true}"#);
            let JwsKey::Jwk(jwk) = &request.key else {
                panic!("a jwk")
            };
            request.verify(jwk).expect("verifies");
            assert_eq!(jwk.thumbprint().len(), 43);

            let mut tampered: serde_json::Value = serde_json::from_slice(&body).expect("json");
            tampered["payload"] = b64u(br#"{"termsOfServiceAgreed":false}"#).into();
            let tampered = JwsRequest::parse(tampered.to_string().as_bytes()).expect("parses");
            assert_eq!(tampered.verify(jwk), Err(JwsError::BadSignature), "{alg:?}");
            // Another kind of key cannot stand in for this one.
            for (_, other, other_alg) in keys() {
                if other_alg != alg {
                    let other = Jwk::parse(other.to_string().as_bytes()).expect("jwk");
                    assert!(
                        request.verify(&other).is_err(),
                        "{alg:?} with {other_alg:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn post_as_get_has_an_empty_payload_and_kid_names_the_account() {
        let (key, _, alg) = keys().remove(0);
        let header = serde_json::json!({
            "alg": "ES256", "nonce": "n", "url": "https://ca.test/acme/order/1", "kid": "https://ca.test/acme/acct/7",
        });
        let body = sign(&key, alg, &header, b"");
        let request = JwsRequest::parse(&body).expect("parses");
        assert!(request.payload.is_empty());
        assert_eq!(
            request.key,
            JwsKey::Kid("https://ca.test/acme/acct/7".into())
        );
    }

    /// Each refusal with its problem kind: a table, one malformation per row.
    #[test]
    fn malformed_requests_are_refused_with_their_kind() {
        let (key, jwk, _) = keys().remove(0);
        let good = serde_json::json!({"alg": "ES256", "nonce": "n", "url": "u", "jwk": jwk});
        let with = |change: &dyn Fn(&mut serde_json::Value)| {
            let mut header = good.clone();
            change(&mut header);
            sign(&key, JwsAlgorithm::Es256, &header, b"{}")
        };
        let outer = |change: &dyn Fn(&mut serde_json::Value)| {
            let mut body: serde_json::Value =
                serde_json::from_slice(&sign(&key, JwsAlgorithm::Es256, &good, b"{}"))
                    .expect("json");
            change(&mut body);
            body.to_string().into_bytes()
        };
        type Kind = fn(&JwsError) -> bool;
        let malformed: Kind = |e| matches!(e, JwsError::Malformed(_));
        let bad_alg: Kind = |e| matches!(e, JwsError::BadSignatureAlgorithm(_));
        let bad_key: Kind = |e| matches!(e, JwsError::BadPublicKey(_));
        let cases: Vec<(&str, Vec<u8>, Kind)> = vec![
            ("not JSON", b"eyJ".to_vec(), malformed),
            ("compact serialization", b"\"a.b.c\"".to_vec(), malformed),
            (
                "an unprotected header",
                outer(&|b| b["header"] = serde_json::json!({})),
                malformed,
            ),
            (
                "several signatures",
                outer(&|b| b["signatures"] = serde_json::json!([])),
                malformed,
            ),
            (
                "padded base64",
                outer(&|b| {
                    b["signature"] = format!("{}=", b["signature"].as_str().unwrap_or("")).into()
                }),
                malformed,
            ),
            (
                "standard base64 alphabet",
                outer(&|b| b["protected"] = "a+b/".into()),
                malformed,
            ),
            (
                "no url",
                with(&|h| {
                    h.as_object_mut().map(|o| o.remove("url"));
                }),
                malformed,
            ),
            ("jwk and kid", with(&|h| h["kid"] = "k".into()), malformed),
            (
                "neither jwk nor kid",
                with(&|h| {
                    h.as_object_mut().map(|o| o.remove("jwk"));
                }),
                malformed,
            ),
            (
                "crit",
                with(&|h| h["crit"] = serde_json::json!(["b64"])),
                malformed,
            ),
            ("alg none", with(&|h| h["alg"] = "none".into()), bad_alg),
            ("alg HS256", with(&|h| h["alg"] = "HS256".into()), bad_alg),
            (
                "a private key",
                with(&|h| h["jwk"]["d"] = "AAAA".into()),
                bad_key,
            ),
            (
                "kty oct",
                with(&|h| h["jwk"] = serde_json::json!({"kty": "oct", "k": "AAAA"})),
                bad_key,
            ),
            (
                "P-521",
                with(&|h| h["jwk"]["crv"] = "P-521".into()),
                bad_key,
            ),
            (
                "a point off the curve",
                with(&|h| h["jwk"]["y"] = b64u(&[1; 32]).into()),
                bad_key,
            ),
            (
                "a short coordinate",
                with(&|h| h["jwk"]["x"] = b64u(&[1; 31]).into()),
                bad_key,
            ),
            (
                "RSA 1024",
                with(&|h| {
                    let rsa = Rsa::generate(1024).expect("rsa");
                    h["jwk"] = serde_json::json!({"kty": "RSA", "n": b64u(&rsa.n().to_vec()), "e": "AQAB"});
                }),
                bad_key,
            ),
            (
                "an empty RSA modulus",
                with(&|h| h["jwk"] = serde_json::json!({"kty": "RSA", "n": "", "e": "AQAB"})),
                bad_key,
            ),
            (
                "RSA e = 1",
                with(&|h| {
                    let rsa = Rsa::generate(2048).expect("rsa");
                    h["jwk"] =
                        serde_json::json!({"kty": "RSA", "n": b64u(&rsa.n().to_vec()), "e": "AQ"});
                }),
                bad_key,
            ),
            (
                "RSA e = 3",
                with(&|h| {
                    let rsa = Rsa::generate(2048).expect("rsa");
                    h["jwk"] =
                        serde_json::json!({"kty": "RSA", "n": b64u(&rsa.n().to_vec()), "e": "Aw"});
                }),
                bad_key,
            ),
            (
                "the Ed25519 identity (small order)",
                with(&|h| {
                    let mut identity = [0u8; 32];
                    identity[0] = 1;
                    h["jwk"] =
                        serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": b64u(&identity)});
                }),
                bad_key,
            ),
            (
                "an Ed25519 point of order 8",
                with(&|h| {
                    h["jwk"] = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": b64u(&ED25519_SMALL_ORDER_Y[3])});
                }),
                bad_key,
            ),
            (
                "an Ed25519 y above the prime (a second encoding)",
                with(&|h| {
                    let mut y = ED25519_P;
                    y[0] = 0xee;
                    h["jwk"] = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": b64u(&y)});
                }),
                bad_key,
            ),
            (
                "an RSA modulus with a leading zero",
                with(&|h| {
                    let rsa = Rsa::generate(2048).expect("rsa");
                    let mut n = vec![0];
                    n.extend(rsa.n().to_vec());
                    h["jwk"] = serde_json::json!({"kty": "RSA", "n": b64u(&n), "e": "AQAB"});
                }),
                bad_key,
            ),
        ];
        for (what, body, kind) in cases {
            match JwsRequest::parse(&body) {
                Err(error) => assert!(kind(&error), "{what}: {error:?}"),
                Ok(_) => panic!("{what}: accepted"),
            }
        }
        // Duplicate members are refused, not resolved one way or the other, in the header and
        // in its key alike.
        let protected = b64u(br#"{"alg":"ES256","alg":"RS256","url":"u","kid":"k"}"#);
        let body = format!(r#"{{"protected":"{protected}","payload":"","signature":""}}"#);
        assert!(matches!(
            JwsRequest::parse(body.as_bytes()),
            Err(JwsError::Malformed(_))
        ));
        let member = |name: &str| jwk[name].as_str().unwrap_or("").to_owned();
        let twice = format!(
            r#"{{"alg":"ES256","url":"u","jwk":{{"kty":"EC","crv":"P-256","x":"{}","x":"{}","y":"{}"}}}}"#,
            member("x"),
            member("y"),
            member("y")
        );
        let body = format!(
            r#"{{"protected":"{}","payload":"","signature":""}}"#,
            b64u(twice.as_bytes())
        );
        assert!(
            JwsRequest::parse(body.as_bytes()).is_err(),
            "a JWK member twice"
        );
        assert!(Jwk::parse(br#"{"kty":"RSA","n":"","e":"AQAB"}"#).is_err());
    }
}
