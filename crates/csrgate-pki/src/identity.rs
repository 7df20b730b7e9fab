//! The CA identity: its types, the template it fills in and checks, and its unlocked form. The
//! private key lives in [`Identity`] and nowhere else. The on-disk layout is `files.rs`, creating
//! a CA `create.rs`, writing a leaf certificate `leaf.rs`.

use std::fmt;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::symm::Cipher;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, KeyUsage as KuBuilder, SubjectKeyIdentifier,
};
use openssl::x509::{X509, X509Builder, X509ReqBuilder};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::ca_signature::{CaSignature, pem};
use crate::der_writer::{
    self, push_extension, push_time, push_tlv, push_unsigned_integer, sequence,
};
use crate::key::{classify_public_key, signing_digest};
use crate::oid;
use crate::san::general_names_der;
use crate::template::check_uri;
use crate::{
    CertificateTemplate, DistinguishedName, ExtendedKeyUsage, KeySpec, KeyUsage, NameAttribute,
    Passphrase, PkiError, PublicKeyInfo, Serial, SigningPolicy, SubjectAltName, ValidatedCsr,
    ValidityPeriod,
};

mod create;
mod files;
mod leaf;
mod own_crl;

use files::summarize;
pub use files::{base64_lines, certificate_pem_from_der, pem_key_is_encrypted};
pub(crate) use files::{read_private_key, replace_file};
pub use own_crl::{CRL_FILE, CRL_NUMBER_FILE, REVOKED_FILE};

/// What `identity create` asks for.
#[derive(Clone, Debug)]
pub struct IdentityRequest {
    /// The CA's subject.
    pub subject: DistinguishedName,
    /// How long the CA certificate is valid.
    pub validity: ValidityPeriod,
    /// The key to generate.
    pub key: KeySpec,
    /// BasicConstraints pathLenConstraint, if any.
    pub path_len: Option<u32>,
}

/// Public facts about an identity, readable without the passphrase.
#[derive(Clone, Debug)]
pub struct IdentitySummary {
    /// The CA's subject.
    pub subject: DistinguishedName,
    /// The CA certificate's issuer (equal to the subject for a root).
    pub issuer: DistinguishedName,
    /// The CA key.
    pub key: PublicKeyInfo,
    /// Start of the CA certificate's validity.
    pub not_before: OffsetDateTime,
    /// End of the CA certificate's validity.
    pub not_after: OffsetDateTime,
    /// SHA-256 of the CA certificate DER, lower-case hex.
    pub sha256_fingerprint: String,
    /// The CA certificate's serial in lower-case hex, for display. Text, not a [`Serial`]: an
    /// operator's CA may carry one RFC 5280 forbids (0, more than 20 octets), and still loads.
    pub serial: String,
    /// Number of certificates in the chain served at `/ca.pem` (1 for a root).
    pub chain_length: usize,
}

/// An identity directory whose certificate has been read and checked but whose key is still locked.
pub struct IdentityFiles {
    dir: PathBuf,
    certificate: X509,
    chain_pem: String,
    key_path: PathBuf,
    key_pem: Zeroizing<Vec<u8>>,
    key_mode: u32,
}

/// An unlocked CA: the certificate, its chain and the private key.
pub struct Identity {
    certificate: X509,
    key: PKey<Private>,
    signature: CaSignature,
    chain_pem: String,
    certificate_pem: String,
    summary: IdentitySummary,
}

/// A signed leaf certificate and the facts about it that records and responses need.
#[derive(Clone, Debug)]
pub struct IssuedCertificate {
    /// Serial number.
    pub serial: Serial,
    /// The certificate DER.
    pub der: Vec<u8>,
    /// The certificate PEM.
    pub pem: String,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// SHA-256 of the DER, lower-case hex.
    pub sha256_fingerprint: String,
    /// The subject as written into the certificate.
    pub subject: DistinguishedName,
    /// The SANs as written into the certificate.
    pub subject_alt_names: Vec<SubjectAltName>,
}

impl IdentitySummary {
    /// The template csrgate fills in for `csr` at `now` before any hook runs: the CSR's subject and
    /// SANs, key usage fitting the key, the policy's EKU, validity from `now - backdate` to
    /// `now + default_validity`, clamped to the CA's own validity.
    pub fn template_for(
        &self,
        csr: &ValidatedCsr,
        policy: &SigningPolicy,
        now: OffsetDateTime,
    ) -> CertificateTemplate {
        // Certificates carry whole seconds; the template does too, so responses match the DER.
        let now = now.replace_nanosecond(0).unwrap_or(now);
        let not_before = (now - policy.backdate.as_duration()).max(self.not_before);
        let not_after = (now + policy.default_validity.as_duration()).min(self.not_after);
        CertificateTemplate {
            subject: csr.subject().clone(),
            subject_alt_names: csr.subject_alt_names().to_vec(),
            not_before,
            not_after,
            key_usage: KeyUsage::defaults_for(csr.public_key_info().algorithm),
            extended_key_usage: policy.extended_key_usage.clone(),
            crl_distribution_points: policy.crl_distribution_points.clone(),
            ocsp_urls: policy.ocsp_urls.clone(),
            ca_issuer_urls: Vec::new(),
            extra_extensions: Vec::new(),
        }
    }

    /// Checks `template` against the CA and the policy; the result of every hook passes here.
    pub fn check_template(
        &self,
        template: &CertificateTemplate,
        policy: &SigningPolicy,
    ) -> Result<(), PkiError> {
        self.check_template_encoding_subject(template, policy)
            .map(drop)
    }

    /// [`Self::check_template`], returning the subject's DER that the check had to build (the
    /// signer needs it, and building the name is a measurable part of a request).
    pub(crate) fn check_template_encoding_subject(
        &self,
        template: &CertificateTemplate,
        policy: &SigningPolicy,
    ) -> Result<Vec<u8>, PkiError> {
        let bad = |why: String| Err(PkiError::InvalidTemplate(why));
        if template.not_before >= template.not_after {
            return bad("not-before must be earlier than not-after".into());
        }
        if template.not_before < self.not_before {
            return bad(format!(
                "not-before {} is earlier than the CA's {}",
                template.not_before, self.not_before
            ));
        }
        if template.not_after > self.not_after {
            return bad(format!(
                "not-after {} is later than the CA's {}",
                template.not_after, self.not_after
            ));
        }
        let longest = policy.max_validity.as_duration() + policy.backdate.as_duration();
        if template.not_after - template.not_before > longest {
            return bad(format!(
                "validity exceeds the configured maximum of {}",
                policy.max_validity
            ));
        }
        // A certificate with id-kp-OCSPSigning answers for every certificate of this CA (RFC
        // 6960 4.2.2.2): only the policy of `issue_ocsp_signer` grants it, never a request's
        // policy or a plugin.
        if template
            .extended_key_usage
            .contains(&ExtendedKeyUsage::OcspSigning)
            && !policy
                .extended_key_usage
                .contains(&ExtendedKeyUsage::OcspSigning)
        {
            return bad(
                "id-kp-OCSPSigning is only for csrgate's delegated OCSP responder certificate"
                    .into(),
            );
        }
        if template.subject.is_empty() && template.subject_alt_names.is_empty() {
            return bad("a certificate needs a subject or at least one SAN".into());
        }
        for uri in &template.crl_distribution_points {
            check_uri("CRL distribution point", uri)?;
        }
        for uri in template.ocsp_urls.iter().chain(&template.ca_issuer_urls) {
            check_uri("AIA URL", uri)?;
        }
        let mut seen = std::collections::HashSet::new();
        for extension in &template.extra_extensions {
            extension.check()?;
            if !seen.insert(extension.oid.as_str()) {
                return bad(format!("extension {} appears twice", extension.oid));
            }
        }
        crate::san::check_wildcards(&template.subject_alt_names, policy)
            .map_err(PkiError::InvalidTemplate)?;
        // The subject must encode (RFC 5280 lengths and string types); find out now rather than
        // while signing.
        template.subject.to_der().map_err(PkiError::InvalidTemplate)
    }
}

impl Identity {
    fn assemble(
        certificate: X509,
        key: PKey<Private>,
        chain_pem: String,
    ) -> Result<Self, PkiError> {
        let summary = summarize(&certificate, &chain_pem)?;
        let certificate_pem = String::from_utf8_lossy(&certificate.to_pem()?).into_owned();
        if summary.not_after <= OffsetDateTime::now_utc() {
            tracing::warn!(not_after = %summary.not_after, "the CA certificate has expired: every signing request will fail");
        }
        Ok(Identity {
            signature: CaSignature::new(&key, &certificate)?,
            certificate,
            key,
            chain_pem,
            certificate_pem,
            summary,
        })
    }

    /// Public facts about this identity.
    pub fn summary(&self) -> &IdentitySummary {
        &self.summary
    }

    pub(crate) fn ca_signature(&self) -> &CaSignature {
        &self.signature
    }

    /// The CA key, for signers made beside the main one (OCSP); never leaves the crate.
    pub(crate) fn key(&self) -> &PKey<Private> {
        &self.key
    }

    /// The CA certificate.
    pub(crate) fn certificate(&self) -> &X509 {
        &self.certificate
    }

    /// The CA certificate in PEM.
    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    /// The CA certificate followed by its issuers (just the CA certificate for a root).
    pub fn chain_pem(&self) -> &str {
        &self.chain_pem
    }

    /// [`Identity::chain_pem`] as a certs-only PKCS#7, DER (EST `cacerts`, RFC 7030 4.1.3).
    ///
    /// # Errors
    /// [`PkiError`] if the chain does not re-encode (it was parsed at load, so only on an
    /// openssl failure).
    pub fn chain_pkcs7(&self) -> Result<Vec<u8>, PkiError> {
        let chain = X509::stack_from_pem(self.chain_pem.as_bytes())?;
        let ders = chain
            .iter()
            .map(|certificate| certificate.to_der())
            .collect::<Result<Vec<_>, _>>()?;
        let ders: Vec<&[u8]> = ders.iter().map(Vec::as_slice).collect();
        crate::certs_only_pkcs7(&ders)
    }
}

impl IdentityFiles {
    /// The CA certificate, to check what it issued.
    pub(crate) fn ca_certificate(&self) -> &X509 {
        &self.certificate
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("subject", &self.summary.subject.to_string())
            .field("key", &"<redacted>")
            .finish_non_exhaustive()
    }
}
