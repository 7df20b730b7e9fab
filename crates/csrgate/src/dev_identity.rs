//! `serve --dev`: a throw-away identity and data directory, created when absent, so a fresh clone
//! runs with one command. The generated passphrase is kept in `<identity>/dev-passphrase` (0600),
//! and a development admin token in `<identity>/dev-admin-token` (0600), so the lifecycle API can
//! be tried at once.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use csrgate_pki::{
    DistinguishedName, ExtendedKeyUsage, Identity, IdentityFiles, IdentityRequest, KeySpec,
    Passphrase, SigningPolicy, ValidatedCsr, ValidityPeriod,
};

/// The development passphrase file inside an identity directory.
pub fn passphrase_file(identity_dir: &Path) -> PathBuf {
    identity_dir.join("dev-passphrase")
}

/// Creates a development identity in `identity_dir` unless one is there.
pub fn ensure(identity_dir: &Path) -> anyhow::Result<()> {
    if IdentityFiles::exists(identity_dir) {
        return Ok(());
    }
    let passphrase = Passphrase::generate()?;
    let request = IdentityRequest {
        subject: DistinguishedName::from_fields(&[
            ("CN", "csrgate development CA"),
            ("O", "csrgate (dev)"),
        ])?,
        validity: ValidityPeriod::days(10 * 365),
        key: KeySpec::EcP256,
        path_len: Some(0),
    };
    std::fs::create_dir_all(identity_dir)
        .with_context(|| format!("cannot create {}", identity_dir.display()))?;
    let secret_path = passphrase_file(identity_dir);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&secret_path)
        .with_context(|| format!("cannot create {}", secret_path.display()))?;
    file.write_all(passphrase.expose_secret().as_bytes())?;
    file.sync_all()?;
    Identity::create(identity_dir, &request, &passphrase, None)?;
    tracing::warn!(
        dir = %identity_dir.display(),
        passphrase_file = %secret_path.display(),
        "--dev: created a DEVELOPMENT CA identity; its passphrase is stored beside it. Never use it in production"
    );
    Ok(())
}

/// Creates the development admin token file (one random token, 0600) unless it exists, and says
/// where it is and how to use it.
pub fn ensure_admin_token(file: &Path) -> anyhow::Result<()> {
    if !file.exists() {
        let mut bytes = [0u8; 24];
        openssl::rand::rand_bytes(&mut bytes)?;
        let token = hex::encode(bytes);
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(file)
            .with_context(|| format!("cannot create {}", file.display()))?;
        out.write_all(format!("{token}\n").as_bytes())?;
        out.sync_all()?;
    }
    tracing::warn!(
        file = %file.display(),
        "--dev: the admin API takes the DEVELOPMENT token in this file: curl -H \"Authorization: Bearer $(cat {})\" ...",
        file.display()
    );
    Ok(())
}

/// `--dev` with a TLS listener and no TLS files: a server certificate for `localhost`,
/// `127.0.0.1` and `::1` from the development CA (P-256, 90 days; the key unencrypted, 0600),
/// made when absent or expiring within a week.
pub fn ensure_tls(
    identity: &Identity,
    policy: &SigningPolicy,
    files: &csrgate_server::TlsFiles,
) -> anyhow::Result<()> {
    use openssl::ec::{EcGroup, EcKey};
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::stack::Stack;
    use openssl::x509::extension::SubjectAlternativeName;
    use openssl::x509::{X509, X509NameBuilder, X509ReqBuilder};

    let fresh = std::fs::read(&files.certificate)
        .ok()
        .and_then(|pem| X509::from_pem(&pem).ok())
        .is_some_and(|certificate| {
            openssl::asn1::Asn1Time::days_from_now(7)
                .is_ok_and(|soon| certificate.not_after() > soon)
        });
    if fresh && files.private_key.exists() {
        return Ok(());
    }
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let key = PKey::from_ec_key(EcKey::generate(&group)?)?;
    let mut request = X509ReqBuilder::new()?;
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_text("CN", "localhost")?;
    request.set_subject_name(&name.build())?;
    request.set_pubkey(&key)?;
    let sans = SubjectAlternativeName::new()
        .dns("localhost")
        .ip("127.0.0.1")
        .ip("::1")
        .build(&request.x509v3_context(None))?;
    let mut extensions = Stack::new()?;
    extensions.push(sans)?;
    request.add_extensions(&extensions)?;
    request.sign(&key, openssl::hash::MessageDigest::sha256())?;
    let csr = ValidatedCsr::parse(&request.build().to_der()?)?;
    let policy = SigningPolicy {
        default_validity: ValidityPeriod::days(90),
        extended_key_usage: vec![ExtendedKeyUsage::ServerAuth],
        ..policy.clone()
    };
    let template = identity
        .summary()
        .template_for(&csr, &policy, time::OffsetDateTime::now_utc());
    let issued = identity.sign(&csr, &template, &policy)?;
    let mut key_file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&files.private_key)
        .with_context(|| format!("cannot write {}", files.private_key.display()))?;
    key_file.write_all(&key.private_key_to_pem_pkcs8()?)?;
    key_file.sync_all()?;
    std::fs::write(
        &files.certificate,
        format!("{}{}", issued.pem, identity.chain_pem()),
    )
    .with_context(|| format!("cannot write {}", files.certificate.display()))?;
    tracing::warn!(
        certificate = %files.certificate.display(),
        serial = %issued.serial,
        "--dev: issued a DEVELOPMENT TLS certificate for localhost, 127.0.0.1 and ::1; clients verify it with --cacert identity/ca.cert.pem"
    );
    Ok(())
}
