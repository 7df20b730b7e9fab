//! The line files of secrets: admin tokens, EST credentials, ACME EAB keys. Where each comes
//! from (its systemd credential wins over the configured file) and how its lines read (one
//! entry per line, `#` comments, blank lines skipped, errors naming the file and line).

use std::path::{Path, PathBuf};

/// The file to read: `$CREDENTIALS_DIRECTORY/<credential>` when systemd passed it, else `file`;
/// `None` when neither is there (the secret is not configured).
pub(crate) fn source(credential: &str, file: Option<&Path>) -> Option<PathBuf> {
    std::env::var_os("CREDENTIALS_DIRECTORY")
        .map(|dir| PathBuf::from(dir).join(credential))
        .filter(|p| p.exists())
        .or_else(|| file.map(Path::to_path_buf))
}

/// The text of `path`; the error says `what` could not be read from where.
pub(crate) fn read(path: &Path, what: &str) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {what} from {}: {e}", path.display()))
}

/// The entries of `text`: (line number from 1, the line trimmed), without blank lines and `#`
/// comments.
pub(crate) fn entries(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(index, line)| (index + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
}
