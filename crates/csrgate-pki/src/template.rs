//! The certificate template: everything the CA decides about a leaf before signing it, as plain
//! data that hooks can read and change, and the signing policy that bounds it.

use std::fmt;
use std::str::FromStr;

use time::OffsetDateTime;

use crate::{DistinguishedName, KeyAlgorithm, PkiError, SubjectAltName, ValidityPeriod};

/// A keyUsage bit a leaf certificate may carry. The CA-only bits (keyCertSign, cRLSign) are not
/// representable, so no template can ask for them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyUsage {
    /// digitalSignature
    DigitalSignature,
    /// nonRepudiation (contentCommitment)
    NonRepudiation,
    /// keyEncipherment
    KeyEncipherment,
    /// dataEncipherment
    DataEncipherment,
    /// keyAgreement
    KeyAgreement,
}

impl KeyUsage {
    /// The usages that fit a key: signature for every key, key encipherment for RSA (TLS 1.2 RSA
    /// key exchange), nothing an algorithm cannot do.
    pub fn defaults_for(algorithm: KeyAlgorithm) -> Vec<KeyUsage> {
        match algorithm {
            KeyAlgorithm::Rsa => vec![KeyUsage::DigitalSignature, KeyUsage::KeyEncipherment],
            _ => vec![KeyUsage::DigitalSignature],
        }
    }
}

/// An extendedKeyUsage purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExtendedKeyUsage {
    /// id-kp-serverAuth
    ServerAuth,
    /// id-kp-clientAuth
    ClientAuth,
    /// id-kp-codeSigning
    CodeSigning,
    /// id-kp-emailProtection
    EmailProtection,
    /// id-kp-timeStamping
    TimeStamping,
    /// id-kp-OCSPSigning
    OcspSigning,
}

impl FromStr for ExtendedKeyUsage {
    type Err = PkiError;

    fn from_str(text: &str) -> Result<Self, PkiError> {
        Ok(match text {
            "serverAuth" => ExtendedKeyUsage::ServerAuth,
            "clientAuth" => ExtendedKeyUsage::ClientAuth,
            "codeSigning" => ExtendedKeyUsage::CodeSigning,
            "emailProtection" => ExtendedKeyUsage::EmailProtection,
            "timeStamping" => ExtendedKeyUsage::TimeStamping,
            "OCSPSigning" => ExtendedKeyUsage::OcspSigning,
            _ => {
                return Err(PkiError::InvalidParameter(format!(
                    "unknown extended key usage {text:?}: use serverAuth, clientAuth, codeSigning, \
                     emailProtection, timeStamping or OCSPSigning"
                )));
            }
        })
    }
}

impl fmt::Display for ExtendedKeyUsage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ExtendedKeyUsage::ServerAuth => "serverAuth",
            ExtendedKeyUsage::ClientAuth => "clientAuth",
            ExtendedKeyUsage::CodeSigning => "codeSigning",
            ExtendedKeyUsage::EmailProtection => "emailProtection",
            ExtendedKeyUsage::TimeStamping => "timeStamping",
            ExtendedKeyUsage::OcspSigning => "OCSPSigning",
        })
    }
}

/// The operator's rules for leaf certificates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigningPolicy {
    /// Validity of a certificate when nothing asks for another (default 90 days).
    pub default_validity: ValidityPeriod,
    /// The longest validity any template may have, hooks included (default 397 days).
    pub max_validity: ValidityPeriod,
    /// How far not-before is set in the past, for clients whose clocks run slow (default 5 minutes).
    pub backdate: ValidityPeriod,
    /// Extended key usages of every certificate (default serverAuth and clientAuth).
    pub extended_key_usage: Vec<ExtendedKeyUsage>,
}

impl Default for SigningPolicy {
    fn default() -> Self {
        SigningPolicy {
            default_validity: ValidityPeriod::days(90),
            max_validity: ValidityPeriod::days(397),
            backdate: ValidityPeriod::seconds(300),
            extended_key_usage: vec![ExtendedKeyUsage::ServerAuth, ExtendedKeyUsage::ClientAuth],
        }
    }
}

impl SigningPolicy {
    /// Refuses a policy whose parts contradict each other.
    pub fn check(&self) -> Result<(), PkiError> {
        if self.default_validity.as_seconds() <= 0 {
            return Err(PkiError::InvalidParameter(
                "default validity must be positive".into(),
            ));
        }
        if self.default_validity > self.max_validity {
            return Err(PkiError::InvalidParameter(format!(
                "default validity {} exceeds the maximum validity {}",
                self.default_validity, self.max_validity
            )));
        }
        if self.backdate > ValidityPeriod::days(1) {
            return Err(PkiError::InvalidParameter(
                "backdate is at most 1 day".into(),
            ));
        }
        Ok(())
    }
}

/// What the certificate will say. BasicConstraints (always CA:FALSE), the public key, SKI and AKI
/// are not here: the CA sets them and nothing may change them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateTemplate {
    /// The subject.
    pub subject: DistinguishedName,
    /// Subject alternative names.
    pub subject_alt_names: Vec<SubjectAltName>,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity; never after the CA's own.
    pub not_after: OffsetDateTime,
    /// keyUsage bits (critical).
    pub key_usage: Vec<KeyUsage>,
    /// extendedKeyUsage purposes (omitted when empty).
    pub extended_key_usage: Vec<ExtendedKeyUsage>,
}
