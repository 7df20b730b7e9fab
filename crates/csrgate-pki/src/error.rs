//! The one error type of csrgate-pki. Messages are safe to show to clients: they never carry key
//! material, only what was wrong with the input or which file could not be used.

use std::path::PathBuf;

/// Everything that can go wrong while handling identities, CSRs and certificates.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// The bytes are not a well-formed CSR, or its self-signature does not verify.
    #[error("invalid CSR: {0}")]
    InvalidCsr(String),
    /// The CSR's public key is of a type or size that csrgate does not certify.
    #[error("key not allowed: {0}")]
    WeakKey(String),
    /// A certificate template breaks a rule (validity outside the CA's, malformed name, ...).
    #[error("invalid certificate template: {0}")]
    InvalidTemplate(String),
    /// A user-supplied parameter (key spec, validity, subject field, serial) could not be parsed.
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    /// The identity directory does not hold a usable identity.
    #[error("identity in {dir}: {reason}")]
    Identity {
        /// The identity directory.
        dir: PathBuf,
        /// What is missing or inconsistent.
        reason: String,
    },
    /// `identity create` found identity files in the target directory and refused to overwrite them.
    #[error("{0} already holds an identity; refusing to overwrite it")]
    IdentityExists(PathBuf),
    /// The passphrase did not decrypt the CA private key.
    #[error(
        "the passphrase does not decrypt the CA private key in {0} (wrong passphrase or damaged key file)"
    )]
    WrongPassphrase(PathBuf),
    /// The CA private key is encrypted and no passphrase was supplied.
    #[error("the CA private key in {0} is encrypted and no passphrase was given")]
    PassphraseRequired(PathBuf),
    /// Reading or writing an identity file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The cryptographic library failed in a way the input does not explain.
    #[error("cryptographic operation failed: {0}")]
    Crypto(String),
}

impl PkiError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        PkiError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn identity(dir: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        PkiError::Identity {
            dir: dir.into(),
            reason: reason.into(),
        }
    }
}

impl From<openssl::error::ErrorStack> for PkiError {
    fn from(stack: openssl::error::ErrorStack) -> Self {
        PkiError::Crypto(stack.to_string())
    }
}
