//! The certificate template: everything the CA decides about a leaf before signing it, as plain
//! data that hooks can read and change, and the signing policy that bounds it.

use std::fmt;
use std::str::FromStr;

use time::OffsetDateTime;

use crate::{DistinguishedName, KeyAlgorithm, PkiError, SubjectAltName, ValidityPeriod};

/// A keyUsage bit a leaf certificate may carry. The CA-only bits (keyCertSign, cRLSign) are not
/// representable, so no template can ask for them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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
    /// Accept requests self-signed with SHA-1 (legacy devices; default false). MD2/MD4/MD5 are
    /// refused whatever this says.
    pub allow_sha1_requests: bool,
    /// Accept wildcards with one label after them (`*.internal`; default false: a wildcard
    /// needs two, as in `*.example.com`).
    pub allow_single_label_wildcards: bool,
    /// cRLDistributionPoints of every certificate (RFC 5280 4.2.1.13; config `crl_url`),
    /// before any presign plugin; empty: none.
    pub crl_distribution_points: Vec<String>,
    /// id-ad-ocsp URLs in authorityInfoAccess of every certificate (RFC 5280 4.2.2.1; config
    /// `ocsp_url`), before any presign plugin; empty: none.
    pub ocsp_urls: Vec<String>,
}

impl Default for SigningPolicy {
    fn default() -> Self {
        SigningPolicy {
            default_validity: ValidityPeriod::days(90),
            max_validity: ValidityPeriod::days(397),
            backdate: ValidityPeriod::seconds(300),
            extended_key_usage: vec![ExtendedKeyUsage::ServerAuth, ExtendedKeyUsage::ClientAuth],
            allow_sha1_requests: false,
            allow_single_label_wildcards: false,
            crl_distribution_points: Vec::new(),
            ocsp_urls: Vec::new(),
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
        for uri in &self.crl_distribution_points {
            check_uri("CRL distribution point", uri)
                .map_err(|e| PkiError::InvalidParameter(e.to_string()))?;
        }
        for uri in &self.ocsp_urls {
            check_uri("OCSP URL", uri).map_err(|e| PkiError::InvalidParameter(e.to_string()))?;
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
    /// CRL distribution point URIs (omitted when empty).
    pub crl_distribution_points: Vec<String>,
    /// Authority information access: OCSP responder URIs.
    pub ocsp_urls: Vec<String>,
    /// Authority information access: CA issuer certificate URIs.
    pub ca_issuer_urls: Vec<String>,
    /// Any other extension, as raw DER; checked by [`crate::IdentitySummary::check_template`].
    pub extra_extensions: Vec<RawExtension>,
}

/// An extension given as OID and DER value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawExtension {
    /// Dotted OID.
    pub oid: String,
    /// Critical flag.
    pub critical: bool,
    /// The DER inside the extension's OCTET STRING.
    pub value: Vec<u8>,
}

/// Extensions the CA sets itself (or forbids): a template's extra extensions may not carry them.
const CA_CONTROLLED_OIDS: &[(&str, &str)] = &[
    ("2.5.29.14", "subjectKeyIdentifier"),
    ("2.5.29.15", "keyUsage"),
    ("2.5.29.17", "subjectAltName"),
    ("2.5.29.19", "basicConstraints"),
    ("2.5.29.30", "nameConstraints"),
    ("2.5.29.31", "cRLDistributionPoints"),
    ("2.5.29.35", "authorityKeyIdentifier"),
    ("2.5.29.36", "policyConstraints"),
    ("2.5.29.37", "extKeyUsage"),
    ("2.5.29.54", "inhibitAnyPolicy"),
    ("1.3.6.1.5.5.7.1.1", "authorityInfoAccess"),
    ("1.3.6.1.5.5.7.48.1.5", "id-pkix-ocsp-nocheck"),
];

impl RawExtension {
    /// Refuses an extension the CA controls, a malformed OID, or a value that is not exactly one
    /// well-formed DER element.
    pub(crate) fn check(&self) -> Result<(), PkiError> {
        let bad = |why: String| {
            Err(PkiError::InvalidTemplate(format!(
                "extension {}: {why}",
                self.oid
            )))
        };
        let arcs: Vec<&str> = self.oid.split('.').collect();
        // Canonical arcs only (no leading zero): `2.5.29.037` would be written as extKeyUsage
        // while passing the list below as text.
        let numeric = arcs.len() >= 2
            && arcs.iter().all(|a| {
                !a.is_empty()
                    && a.len() <= 10
                    && a.bytes().all(|b| b.is_ascii_digit())
                    && (a.len() == 1 || !a.starts_with('0'))
            })
            && crate::der_writer::oid(&self.oid).is_some();
        if !numeric {
            return bad("not a dotted OID in canonical form".into());
        }
        if let Some((_, name)) = CA_CONTROLLED_OIDS.iter().find(|(oid, _)| *oid == self.oid) {
            return bad(format!(
                "{name} is set by the CA and cannot be given as an extra extension"
            ));
        }
        if self.value.len() > 16 * 1024 {
            return bad("value larger than 16 KiB".into());
        }
        match x509_parser::der_parser::parse_der(&self.value) {
            Ok(([], _)) => Ok(()),
            Ok(_) => bad("trailing bytes after the DER value".into()),
            Err(_) => bad("value is not well-formed DER".into()),
        }
    }
}

/// Checks a URI used in CDP or AIA: ASCII, no spaces, with a scheme.
pub(crate) fn check_uri(kind: &str, uri: &str) -> Result<(), PkiError> {
    crate::SubjectAltName::uri(uri).map(drop).map_err(|_| {
        PkiError::InvalidTemplate(format!("{kind} {uri:?} is not an ASCII URI with a scheme"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Extra extensions a presign plugin may return: (OID as written, accepted). Non-canonical
    /// spellings of a CA-controlled OID are refused, not written as that OID.
    #[test]
    fn extra_extension_oids_are_canonical_and_not_the_cas() {
        let cases = [
            ("1.2.3.4", true),
            ("1.3.6.1.4.1.11129.2.4.2", true),
            ("2.5.29.37", false),
            ("2.5.29.037", false),
            ("2.5.29.0037", false),
            ("1.3.6.1.5.5.7.48.1.5", false),
            ("1.3.6.1.5.5.7.48.1.05", false),
            ("2.5.29.017", false),
            ("02.5.29.99", false),
            ("1.40.1", false),
            ("3.1", false),
            ("1", false),
            ("1..2", false),
            ("1.2.x", false),
        ];
        for (oid, accepted) in cases {
            let extension = RawExtension {
                oid: oid.into(),
                critical: false,
                value: vec![0x05, 0x00],
            };
            assert_eq!(extension.check().is_ok(), accepted, "{oid}");
        }
    }
}
