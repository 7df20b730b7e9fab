//! Creating a CA identity: key, self-signed or issuer-signed certificate, files written 0600/0644
//! and synced.

use super::files::{
    CERT_FILE, CERT_FILE_ALT, CHAIN_FILE, CSR_FILE, KEY_FILE, PUBLIC_KEY_FILE, asn1_time,
    create_dir_private, sync_directory, write_new,
};
use super::*;

impl Identity {
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
        let serial = crate::serial::to_asn1(&crate::generate_serial()?)?;
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
}
