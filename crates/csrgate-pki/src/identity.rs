//! The CA identity: creating one on disk, loading and unlocking it, and signing leaf certificates
//! with it. The private key lives in [`Identity`] and nowhere else.

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
use crate::san::general_names_der;
use crate::template::check_uri;
use crate::{
    CertificateTemplate, DistinguishedName, ExtendedKeyUsage, KeySpec, KeyUsage, NameAttribute,
    Passphrase, PkiError, PublicKeyInfo, Serial, SigningPolicy, SubjectAltName, ValidatedCsr,
    ValidityPeriod,
};

const CERT_FILE: &str = "ca.cert.pem";
/// tiny-ca and some hand-made identities name the certificate this way; accepted on load.
const CERT_FILE_ALT: &str = "ca.crt.pem";
const CSR_FILE: &str = "ca.csr.pem";
const KEY_FILE: &str = "ca.private_key.pem";
const PUBLIC_KEY_FILE: &str = "ca.public_key.pem";
const CHAIN_FILE: &str = "ca.chain.pem";

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
    /// The CA certificate's serial.
    pub serial: Serial,
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
            crl_distribution_points: Vec::new(),
            ocsp_urls: Vec::new(),
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
    /// signer needs it, and building an `X509Name` twice cost ~3 % of a request).
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

impl IdentityFiles {
    /// True when `dir` holds an identity certificate (under either accepted name).
    pub fn exists(dir: &Path) -> bool {
        dir.join(CERT_FILE).exists() || dir.join(CERT_FILE_ALT).exists()
    }

    /// Reads the certificate, chain and (still encrypted) key of the identity in `dir`.
    pub fn open(dir: &Path) -> Result<Self, PkiError> {
        let (certificate, certificate_pem) = read_certificate(dir)?;
        let chain_path = dir.join(CHAIN_FILE);
        let chain_pem = if chain_path.exists() {
            let chain =
                fs::read_to_string(&chain_path).map_err(|e| PkiError::io(&chain_path, e))?;
            let first = X509::stack_from_pem(chain.as_bytes()).map_err(|_| {
                PkiError::identity(dir, format!("{CHAIN_FILE} is not PEM certificates"))
            })?;
            let first_der = first.first().map(|c| c.to_der()).transpose()?;
            if first_der != Some(certificate.to_der()?) {
                return Err(PkiError::identity(
                    dir,
                    format!("{CHAIN_FILE} must start with the CA certificate"),
                ));
            }
            chain
        } else {
            certificate_pem
        };
        let key_path = dir.join(KEY_FILE);
        let key_pem = Zeroizing::new(fs::read(&key_path).map_err(|e| PkiError::io(&key_path, e))?);
        let key_mode = fs::metadata(&key_path)
            .map_err(|e| PkiError::io(&key_path, e))?
            .permissions()
            .mode()
            & 0o777;
        if key_mode & 0o077 != 0 {
            tracing::warn!(
                path = %key_path.display(),
                mode = format!("{key_mode:o}"),
                "SECURITY: the CA private key file is accessible to group or others; chmod 600 it (strict_permissions = true refuses to start)"
            );
        }
        Ok(IdentityFiles {
            dir: dir.to_owned(),
            certificate,
            chain_pem,
            key_path,
            key_pem,
            key_mode,
        })
    }

    /// The key file's permission bits when group or others have any access to it.
    pub fn key_exposed(&self) -> Option<u32> {
        (self.key_mode & 0o077 != 0).then_some(self.key_mode)
    }

    /// True when the key file is encrypted (PKCS#8 `ENCRYPTED PRIVATE KEY` or a legacy
    /// `Proc-Type: 4,ENCRYPTED` PEM), i.e. a passphrase is needed.
    pub fn key_is_encrypted(&self) -> bool {
        let text = String::from_utf8_lossy(&self.key_pem);
        text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
            || text.contains("Proc-Type: 4,ENCRYPTED")
    }

    /// Decrypts the key and checks that it belongs to the certificate.
    pub fn unlock(self, passphrase: Option<&Passphrase>) -> Result<Identity, PkiError> {
        let key = if self.key_is_encrypted() {
            let passphrase =
                passphrase.ok_or_else(|| PkiError::PassphraseRequired(self.key_path.clone()))?;
            PKey::private_key_from_pem_passphrase(&self.key_pem, passphrase.as_bytes())
                .map_err(|_| PkiError::WrongPassphrase(self.key_path.clone()))?
        } else {
            tracing::warn!(
                path = %self.key_path.display(),
                "THE CA PRIVATE KEY IS NOT ENCRYPTED: anyone who can read this file can issue certificates; \
                 re-create the identity or encrypt the key with a passphrase"
            );
            PKey::private_key_from_pem(&self.key_pem).map_err(|_| {
                PkiError::identity(&self.dir, format!("{KEY_FILE} is not a PEM private key"))
            })?
        };
        if !self.certificate.public_key()?.public_eq(&key) {
            return Err(PkiError::identity(
                &self.dir,
                format!("{KEY_FILE} does not belong to the CA certificate"),
            ));
        }
        Identity::assemble(self.certificate, key, self.chain_pem)
    }

    /// Public facts about the identity.
    pub fn summary(&self) -> Result<IdentitySummary, PkiError> {
        summarize(&self.certificate, &self.chain_pem)
    }
}

impl fmt::Debug for IdentityFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityFiles")
            .field("dir", &self.dir)
            .field("key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

fn read_certificate(dir: &Path) -> Result<(X509, String), PkiError> {
    let path = [CERT_FILE, CERT_FILE_ALT]
        .iter()
        .map(|name| dir.join(name))
        .find(|p| p.exists())
        .ok_or_else(|| {
            PkiError::identity(
                dir,
                format!("no {CERT_FILE} (or {CERT_FILE_ALT}); create one with `csrgate identity create --dir {}`", dir.display()),
            )
        })?;
    let pem = fs::read_to_string(&path).map_err(|e| PkiError::io(&path, e))?;
    let certificate = X509::from_pem(pem.as_bytes()).map_err(|_| {
        PkiError::identity(dir, format!("{} is not a PEM certificate", path.display()))
    })?;
    let der = certificate.to_der()?;
    let (_, parsed) = x509_parser::parse_x509_certificate(&der)
        .map_err(|_| PkiError::identity(dir, "the CA certificate does not parse"))?;
    let is_ca = parsed
        .basic_constraints()
        .ok()
        .flatten()
        .is_some_and(|bc| bc.value.ca);
    if !is_ca {
        return Err(PkiError::identity(
            dir,
            "the certificate is not a CA certificate (BasicConstraints CA:TRUE missing)",
        ));
    }
    let pem = String::from_utf8_lossy(&certificate.to_pem()?).into_owned();
    Ok((certificate, pem))
}

fn summarize(certificate: &X509, chain_pem: &str) -> Result<IdentitySummary, PkiError> {
    let der = certificate.to_der()?;
    let (_, parsed) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| PkiError::Crypto(format!("CA certificate: {e}")))?;
    // The CA's own names are shown, never re-encoded: one that is not text is shown by type.
    let name = |n: &x509_parser::x509::X509Name<'_>| {
        DistinguishedName::from_parsed(n).unwrap_or_else(|_| {
            DistinguishedName::from_attributes(
                n.iter_attributes()
                    .map(|a| NameAttribute {
                        oid: a.attr_type().to_id_string(),
                        value: "<binary>".into(),
                    })
                    .collect(),
            )
        })
    };
    Ok(IdentitySummary {
        subject: name(parsed.subject()),
        issuer: name(parsed.issuer()),
        key: classify_public_key(&*certificate.public_key()?)?,
        not_before: asn1_to_datetime(certificate.not_before())?,
        not_after: asn1_to_datetime(certificate.not_after())?,
        sha256_fingerprint: hex::encode(certificate.digest(MessageDigest::sha256())?),
        serial: Serial::from_openssl(certificate.serial_number())?,
        chain_length: X509::stack_from_pem(chain_pem.as_bytes())?.len(),
    })
}

fn asn1_to_datetime(time: &Asn1TimeRef) -> Result<OffsetDateTime, PkiError> {
    let diff = Asn1Time::from_unix(0)?.diff(time)?;
    OffsetDateTime::from_unix_timestamp(i64::from(diff.days) * 86_400 + i64::from(diff.secs))
        .map_err(|e| PkiError::Crypto(format!("time out of range: {e}")))
}

fn asn1_time(time: OffsetDateTime) -> Result<Asn1Time, PkiError> {
    Ok(Asn1Time::from_unix(time.unix_timestamp())?)
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

    /// Creates a new identity in `dir` (created if missing) and returns it unlocked. The key is
    /// written as PKCS#8 encrypted with AES-256-CBC under `passphrase`, mode 0600. With `issuer`,
    /// the new CA is an intermediate signed by it and `ca.chain.pem` is written too.
    pub fn create(
        dir: &Path,
        request: &IdentityRequest,
        passphrase: &Passphrase,
        issuer: Option<&Identity>,
    ) -> Result<Identity, PkiError> {
        for name in [
            CERT_FILE,
            CERT_FILE_ALT,
            CSR_FILE,
            KEY_FILE,
            PUBLIC_KEY_FILE,
            CHAIN_FILE,
        ] {
            if dir.join(name).exists() {
                return Err(PkiError::IdentityExists(dir.to_owned()));
            }
        }
        if request.subject.is_empty() {
            return Err(PkiError::InvalidParameter(
                "the CA subject needs at least one field, e.g. -f CN \"Example CA\"".into(),
            ));
        }
        if request.validity.as_seconds() <= 0 {
            return Err(PkiError::InvalidParameter(
                "validity must be positive".into(),
            ));
        }
        let key = request.key.generate()?;
        let subject = request.subject.to_x509_name()?;

        let mut csr = X509ReqBuilder::new()?;
        csr.set_pubkey(&key)?;
        csr.set_subject_name(&subject)?;
        csr.sign(&key, signing_digest(&key))?;
        let csr = csr.build();

        let now = OffsetDateTime::now_utc();
        let mut not_after = now + request.validity.as_duration();
        if let Some(issuer) = issuer
            && not_after > issuer.summary.not_after
        {
            tracing::warn!(
                requested = %not_after,
                issuer_not_after = %issuer.summary.not_after,
                "the intermediate would outlive its issuer; its validity ends with the issuer's"
            );
            not_after = issuer.summary.not_after;
        }
        let mut builder = X509Builder::new()?;
        builder.set_version(2)?;
        let serial = Serial::generate()?.to_asn1()?;
        builder.set_serial_number(&serial)?;
        builder.set_subject_name(&subject)?;
        match issuer {
            Some(issuer) => builder.set_issuer_name(issuer.certificate.subject_name())?,
            None => builder.set_issuer_name(&subject)?,
        }
        builder.set_pubkey(&key)?;
        builder.set_not_before(&*asn1_time(now)?)?;
        builder.set_not_after(&*asn1_time(not_after)?)?;
        let mut basic = BasicConstraints::new();
        basic.critical().ca();
        if let Some(path_len) = request.path_len {
            basic.pathlen(path_len);
        }
        builder.append_extension(basic.build()?)?;
        builder.append_extension(
            KuBuilder::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()?,
        )?;
        let ski = SubjectKeyIdentifier::new().build(&builder.x509v3_context(None, None))?;
        builder.append_extension(ski)?;
        let (signing_key, chain_tail) = match issuer {
            Some(issuer) => {
                let aki = AuthorityKeyIdentifier::new()
                    .keyid(true)
                    .build(&builder.x509v3_context(Some(&issuer.certificate), None))?;
                builder.append_extension(aki)?;
                (&issuer.key, Some(issuer.chain_pem.as_str()))
            }
            None => (&key, None),
        };
        builder.sign(signing_key, signing_digest(signing_key))?;
        let certificate = builder.build();

        create_dir_private(dir)?;
        let encrypted_key = Zeroizing::new(
            key.private_key_to_pem_pkcs8_passphrase(Cipher::aes_256_cbc(), passphrase.as_bytes())?,
        );
        write_new(&dir.join(KEY_FILE), &encrypted_key, 0o600)?;
        write_new(&dir.join(PUBLIC_KEY_FILE), &key.public_key_to_pem()?, 0o644)?;
        write_new(&dir.join(CSR_FILE), &csr.to_pem()?, 0o644)?;
        let certificate_pem = certificate.to_pem()?;
        write_new(&dir.join(CERT_FILE), &certificate_pem, 0o644)?;
        let chain_pem = match chain_tail {
            Some(tail) => {
                let mut chain = certificate_pem.clone();
                chain.extend_from_slice(tail.as_bytes());
                write_new(&dir.join(CHAIN_FILE), &chain, 0o644)?;
                String::from_utf8_lossy(&chain).into_owned()
            }
            None => String::from_utf8_lossy(&certificate_pem).into_owned(),
        };
        // Each file was synced as it was written; their names live in the directory (and a new
        // directory's in its parent). Sync those too, so a power cut cannot keep certificates
        // issued under this key and lose the key's file.
        sync_directory(dir)?;
        match dir.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => sync_directory(parent)?,
            _ => sync_directory(Path::new("."))?,
        }
        Identity::assemble(certificate, key, chain_pem)
    }

    /// Public facts about this identity.
    pub fn summary(&self) -> &IdentitySummary {
        &self.summary
    }

    pub(crate) fn ca_signature(&self) -> &CaSignature {
        &self.signature
    }

    /// The CA certificate in PEM.
    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    /// The CA certificate followed by its issuers (just the CA certificate for a root).
    pub fn chain_pem(&self) -> &str {
        &self.chain_pem
    }

    /// Signs a leaf certificate for `csr` as `template` describes it, after checking the template.
    /// The certificate is always X.509 v3, CA:FALSE, with SKI and AKI, signed with SHA-256 or
    /// stronger (never SHA-1), issued under the CA's *subject*, with a fresh random serial.
    pub fn sign(
        &self,
        csr: &ValidatedCsr,
        template: &CertificateTemplate,
        policy: &SigningPolicy,
    ) -> Result<IssuedCertificate, PkiError> {
        let subject = self
            .summary
            .check_template_encoding_subject(template, policy)?;
        let serial = Serial::generate()?;
        let ca = &self.signature;
        let mut tbs = Vec::with_capacity(1024);
        tbs.extend_from_slice(&[0xa0, 0x03, 0x02, 0x01, 0x02]); // [0] EXPLICIT version v3
        push_unsigned_integer(&mut tbs, serial.as_bytes());
        tbs.extend_from_slice(ca.algorithm());
        tbs.extend_from_slice(ca.issuer());
        let mut validity = Vec::with_capacity(40);
        push_time(&mut validity, template.not_before);
        push_time(&mut validity, template.not_after);
        push_tlv(&mut tbs, 0x30, &validity);
        tbs.extend_from_slice(&subject);
        tbs.extend_from_slice(csr.spki_der());

        let mut extensions = Vec::with_capacity(512);
        // CA:FALSE is the DEFAULT, so the value is an empty SEQUENCE.
        push_extension(&mut extensions, OID_BASIC_CONSTRAINTS, true, &[0x30, 0x00]);
        if !template.key_usage.is_empty() {
            let value = key_usage_der(&template.key_usage);
            push_extension(&mut extensions, OID_KEY_USAGE, true, &value);
        }
        if !template.extended_key_usage.is_empty() {
            let value = extended_key_usage_der(&template.extended_key_usage);
            push_extension(&mut extensions, OID_EXTENDED_KEY_USAGE, false, &value);
        }
        if !template.subject_alt_names.is_empty() {
            // RFC 5280 4.2.1.6: the SAN extension is critical when the subject is empty.
            let value = general_names_der(&template.subject_alt_names);
            push_extension(
                &mut extensions,
                OID_SUBJECT_ALT_NAME,
                template.subject.is_empty(),
                &value,
            );
        }
        if !template.crl_distribution_points.is_empty() {
            let value = der_writer::crl_distribution_points(&template.crl_distribution_points);
            push_extension(&mut extensions, OID_CRL_DISTRIBUTION_POINTS, false, &value);
        }
        if !template.ocsp_urls.is_empty() || !template.ca_issuer_urls.is_empty() {
            let value =
                der_writer::authority_info_access(&template.ocsp_urls, &template.ca_issuer_urls);
            push_extension(&mut extensions, OID_AUTHORITY_INFO_ACCESS, false, &value);
        }
        for extension in &template.extra_extensions {
            let oid = der_writer::oid(&extension.oid).ok_or_else(|| {
                PkiError::InvalidParameter(format!(
                    "extension OID {:?} is not an OID",
                    extension.oid
                ))
            })?;
            push_extension(&mut extensions, &oid, extension.critical, &extension.value);
        }
        let mut key_id = Vec::with_capacity(22);
        push_tlv(&mut key_id, 0x04, csr.key_identifier());
        push_extension(&mut extensions, OID_SUBJECT_KEY_ID, false, &key_id);
        let mut authority_key_id = Vec::with_capacity(22);
        push_tlv(&mut authority_key_id, 0x80, ca.key_identifier());
        push_extension(
            &mut extensions,
            OID_AUTHORITY_KEY_ID,
            false,
            &sequence(&authority_key_id),
        );
        push_tlv(&mut tbs, 0xa3, &sequence(&extensions));

        let der = ca.sign(sequence(&tbs))?;
        let pem = pem("CERTIFICATE", &der);
        let sha256_fingerprint = hex::encode(openssl::sha::sha256(&der));
        Ok(IssuedCertificate {
            serial,
            der,
            pem,
            not_before: template.not_before,
            not_after: template.not_after,
            sha256_fingerprint,
            subject: template.subject.clone(),
            subject_alt_names: template.subject_alt_names.clone(),
        })
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

const OID_BASIC_CONSTRAINTS: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x13];
const OID_KEY_USAGE: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x0f];
const OID_EXTENDED_KEY_USAGE: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x25];
const OID_SUBJECT_ALT_NAME: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x11];
const OID_CRL_DISTRIBUTION_POINTS: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x1f];
const OID_AUTHORITY_INFO_ACCESS: &[u8] =
    &[0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x01];
const OID_SUBJECT_KEY_ID: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x0e];
const OID_AUTHORITY_KEY_ID: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x23];

/// KeyUsage ::= BIT STRING, DER: trailing zero bits dropped and counted as unused.
fn key_usage_der(usages: &[KeyUsage]) -> Vec<u8> {
    let mut bits = 0u8;
    for usage in usages {
        bits |= 0x80
            >> match usage {
                KeyUsage::DigitalSignature => 0,
                KeyUsage::NonRepudiation => 1,
                KeyUsage::KeyEncipherment => 2,
                KeyUsage::DataEncipherment => 3,
                KeyUsage::KeyAgreement => 4,
            };
    }
    let mut out = Vec::with_capacity(4);
    push_tlv(&mut out, 0x03, &[bits.trailing_zeros().min(7) as u8, bits]);
    out
}

/// ExtKeyUsageSyntax ::= SEQUENCE OF KeyPurposeId (id-kp arcs under 1.3.6.1.5.5.7.3).
fn extended_key_usage_der(purposes: &[ExtendedKeyUsage]) -> Vec<u8> {
    let mut content = Vec::with_capacity(purposes.len() * 10);
    for purpose in purposes {
        let arc = match purpose {
            ExtendedKeyUsage::ServerAuth => 1,
            ExtendedKeyUsage::ClientAuth => 2,
            ExtendedKeyUsage::CodeSigning => 3,
            ExtendedKeyUsage::EmailProtection => 4,
            ExtendedKeyUsage::TimeStamping => 8,
            ExtendedKeyUsage::OcspSigning => 9,
        };
        content.extend_from_slice(&[0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, arc]);
    }
    sequence(&content)
}

fn create_dir_private(dir: &Path) -> Result<(), PkiError> {
    if !dir.exists() {
        fs::create_dir_all(dir).map_err(|e| PkiError::io(dir, e))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| PkiError::io(dir, e))?;
    }
    Ok(())
}

fn sync_directory(dir: &Path) -> Result<(), PkiError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| PkiError::io(dir, e))
}

fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), PkiError> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| PkiError::io(path, e))?;
    file.write_all(contents)
        .map_err(|e| PkiError::io(path, e))?;
    file.sync_all().map_err(|e| PkiError::io(path, e))
}

/// PEM of a certificate given as DER (for records that keep DER only).
pub fn certificate_pem_from_der(der: &[u8]) -> Result<String, PkiError> {
    let certificate = X509::from_der(der)?;
    Ok(String::from_utf8_lossy(&certificate.to_pem()?).into_owned())
}
