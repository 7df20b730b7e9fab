//! Admin authentication: bearer tokens from a file (or the systemd credential `admin-tokens`),
//! kept only as SHA-256 hashes and compared in constant time. tiny-ca compared its token with `==`.

use std::path::{Path, PathBuf};

use actix_web::HttpRequest;
use actix_web::http::header;
use sha2::{Digest as _, Sha256};

use crate::api_error::ApiError;
use crate::error_code::ErrorCode;

/// The configured admin tokens, by name.
#[derive(Clone, Default)]
pub struct AdminTokens {
    tokens: Vec<(String, [u8; 32])>,
}

impl std::fmt::Debug for AdminTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.tokens.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("AdminTokens")
            .field("names", &names)
            .finish_non_exhaustive()
    }
}

/// Name of the systemd credential holding the tokens (`LoadCredential=admin-tokens:...`).
pub const CREDENTIAL: &str = "admin-tokens";

impl AdminTokens {
    /// Reads tokens: the systemd credential wins over `file`. Each non-empty, non-`#` line is
    /// `NAME TOKEN` (the name becomes the audit actor) or just `TOKEN` (named `admin`). Tokens
    /// shorter than 16 characters are refused.
    pub fn load(file: Option<&Path>) -> Result<Self, String> {
        let credential = std::env::var_os("CREDENTIALS_DIRECTORY")
            .map(|dir| PathBuf::from(dir).join(CREDENTIAL))
            .filter(|p| p.exists());
        let Some(path) = credential.or_else(|| file.map(Path::to_path_buf)) else {
            return Ok(AdminTokens::default());
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read admin tokens from {}: {e}", path.display()))?;
        let mut tokens = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, token) = match line.split_once(char::is_whitespace) {
                Some((name, token)) => (name.to_owned(), token.trim()),
                None => ("admin".to_owned(), line),
            };
            if token.len() < 16 {
                return Err(format!(
                    "{} line {}: tokens must be at least 16 characters",
                    path.display(),
                    number + 1
                ));
            }
            tokens.push((name, Sha256::digest(token.as_bytes()).into()));
        }
        Ok(AdminTokens { tokens })
    }

    /// True when no token is configured: the admin API is then closed to everyone.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The name of the token presented in `Authorization: Bearer`, or 401/403.
    pub(crate) fn authenticate(&self, request: &HttpRequest) -> Result<String, ApiError> {
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let Some(presented) = presented.filter(|t| !t.is_empty()) else {
            return Err(ApiError::new(
                ErrorCode::Unauthorized,
                "admin endpoints need Authorization: Bearer <token>",
            ));
        };
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        // Compare against every token, without an early exit, in constant time per token.
        let mut found = None;
        for (name, expected) in &self.tokens {
            let difference = expected
                .iter()
                .zip(digest.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b));
            if std::hint::black_box(difference) == 0 {
                found = Some(name.clone());
            }
        }
        found.ok_or_else(|| ApiError::new(ErrorCode::Forbidden, "the admin token is not valid"))
    }
}
