//! `serve --dev`: a throw-away identity and data directory, created when absent, so a fresh clone
//! runs with one command. The generated passphrase is kept in `<identity>/dev-passphrase` (0600),
//! and a development admin token in `<identity>/dev-admin-token` (0600), so the lifecycle API can
//! be tried at once.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use csrgate_pki::{
    DistinguishedName, Identity, IdentityFiles, IdentityRequest, KeySpec, Passphrase,
    ValidityPeriod,
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
