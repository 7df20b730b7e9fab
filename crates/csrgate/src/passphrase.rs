//! Where the CA passphrase comes from. First found wins: the systemd credential
//! `$CREDENTIALS_DIRECTORY/ca-passphrase`, `--passphrase-file`, `CA_PASSPHRASE`, (in `--dev` only)
//! `identity/dev-passphrase`, then a prompt on the terminal. No source at all is an error that
//! names every way to give one.

use std::io::IsTerminal as _;
use std::path::Path;

use anyhow::{Context as _, anyhow};
use csrgate_pki::Passphrase;
use zeroize::Zeroizing;

/// Environment variable read for the passphrase (ssl_api's name).
pub const ENV_VAR: &str = "CA_PASSPHRASE";
/// Name of the systemd credential (`LoadCredential=ca-passphrase:...`).
pub const CREDENTIAL: &str = "ca-passphrase";

/// Asks twice on a terminal when creating, so a typo cannot lock the key away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prompt {
    Once,
    Twice,
}

/// Finds the passphrase. `passphrase_file` is the file and where it was named (for the log:
/// `--passphrase-file`, or the `passphrase_file` setting); `dev_file` is consulted after the
/// environment, before the prompt.
pub fn resolve(
    passphrase_file: Option<(&Path, &str)>,
    dev_file: Option<&Path>,
    prompt: Prompt,
) -> anyhow::Result<Passphrase> {
    if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
        let path = Path::new(&dir).join(CREDENTIAL);
        if path.exists() {
            tracing::info!("CA passphrase from the systemd credential {CREDENTIAL}");
            return from_file(&path);
        }
    }
    if let Some((path, origin)) = passphrase_file {
        tracing::info!(path = %path.display(), "CA passphrase from the file named by {origin}");
        return from_file(path);
    }
    if let Some(value) = std::env::var_os(ENV_VAR) {
        tracing::info!("CA passphrase from {ENV_VAR}");
        let value = value
            .into_string()
            .map_err(|_| anyhow!("{ENV_VAR} is not valid UTF-8"))?;
        return Ok(Passphrase::new(value)?);
    }
    if let Some(path) = dev_file.filter(|p| p.exists()) {
        tracing::info!(path = %path.display(), "CA passphrase from the development passphrase file");
        return from_file(path);
    }
    if std::io::stdin().is_terminal() {
        return prompt_on_terminal(prompt);
    }
    Err(anyhow!(
        "no CA passphrase given. Provide it in one of four ways: a systemd credential \
         ($CREDENTIALS_DIRECTORY/{CREDENTIAL}, LoadCredential=), --passphrase-file FILE, the \
         {ENV_VAR} environment variable, or run on a terminal to be prompted"
    ))
}

/// A passphrase from a file (its first line; a trailing newline is not part of it).
pub fn from_file(path: &Path) -> anyhow::Result<Passphrase> {
    Ok(Passphrase::from_file(path)?)
}

fn prompt_on_terminal(prompt: Prompt) -> anyhow::Result<Passphrase> {
    let first = read_from_terminal("CA passphrase: ")?;
    if prompt == Prompt::Twice {
        let second = read_from_terminal("CA passphrase (again): ")?;
        if first != second {
            return Err(anyhow!("the two passphrases differ"));
        }
    }
    Ok(first)
}

/// One entry at the terminal. rpassword turns bytes that are not UTF-8 into U+FFFD, so two
/// different entries could unlock the same key: such an entry is refused instead.
pub fn read_from_terminal(prompt: &str) -> anyhow::Result<Passphrase> {
    let text = Zeroizing::new(
        rpassword::prompt_password(prompt).context("cannot read from the terminal")?,
    );
    if text.contains('\u{FFFD}') {
        return Err(anyhow!(
            "cannot read from the terminal: the passphrase is not UTF-8 text (check the \
             terminal's character encoding)"
        ));
    }
    Ok(Passphrase::new(text.to_string())?)
}

/// A PKCS#12 bundle's password given without a prompt: the first line of `file`, else
/// `CA_BUNDLE_PASSWORD`; `None` when neither is given.
pub fn bundle_password_given(file: Option<&Path>) -> anyhow::Result<Option<Zeroizing<String>>> {
    if let Some(file) = file {
        let text = Zeroizing::new(
            std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?,
        );
        return Ok(Some(Zeroizing::new(
            text.lines().next().unwrap_or_default().to_owned(),
        )));
    }
    Ok(std::env::var("CA_BUNDLE_PASSWORD").ok().map(Zeroizing::new))
}
