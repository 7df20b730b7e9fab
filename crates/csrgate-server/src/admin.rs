//! Admin authentication: bearer tokens from a file (or the systemd credential `admin-tokens`),
//! kept only as SHA-256 hashes and compared in constant time (tiny-ca compared its token with
//! `==`), or a verified TLS client certificate on an mTLS listener.
//!
//! Every admin handler takes an [`Admin`] argument: actix-web runs no handler whose extractors
//! failed, so "no admin handler runs before authentication" is a type, not a convention.

use std::path::Path;
use std::sync::Arc;

use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use sha2::{Digest as _, Sha256};

use crate::Gateway;
use crate::api_error::ApiError;
use crate::error_code::ErrorCode;
use crate::generation::Generation;

/// An authenticated admin request: who (the audit actor) and the configuration generation the
/// request runs under, taken once, the same one that authenticated it.
#[derive(Debug)]
pub(crate) struct Admin {
    /// The token's name, or `cert:<subject>` for a client certificate.
    pub(crate) actor: String,
    /// The generation of this request.
    pub(crate) generation: Arc<Generation>,
}

/// The verified client certificate of a TLS connection, put in the connection's data by the
/// TLS listener (`runtime.rs`); present only when `tls_client_ca` verified it.
#[derive(Clone, Debug)]
pub(crate) struct ClientCertificate {
    /// The subject, one line (`CN=ops,O=Example`).
    pub(crate) subject: String,
}

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(Admin::authenticate(request))
    }
}

impl Admin {
    fn authenticate(request: &HttpRequest) -> Result<Self, ApiError> {
        let Some(gateway) = request.app_data::<web::Data<Gateway>>() else {
            return Err(ApiError::internal(
                "admin extractor",
                &"the gateway is not in the application data",
            ));
        };
        let generation = gateway.generation();
        let presents_token = request.headers().contains_key(header::AUTHORIZATION);
        let actor = match request.conn_data::<ClientCertificate>() {
            Some(certificate) if !presents_token => format!("cert:{}", certificate.subject),
            _ => generation.admin.authenticate(request)?,
        };
        Ok(Admin { actor, generation })
    }
}

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
        let Some(path) = crate::secret_file::source(CREDENTIAL, file) else {
            return Ok(AdminTokens::default());
        };
        let text = crate::secret_file::read(&path, "admin tokens")?;
        let mut tokens = Vec::new();
        for (number, line) in crate::secret_file::entries(&text) {
            let (name, token) = match line.split_once(char::is_whitespace) {
                Some((name, token)) => (name.to_owned(), token.trim()),
                None => ("admin".to_owned(), line),
            };
            if token.len() < 16 {
                return Err(format!(
                    "{} line {number}: tokens must be at least 16 characters",
                    path.display(),
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
    fn authenticate(&self, request: &HttpRequest) -> Result<String, ApiError> {
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
            if digests_equal(expected, &digest) {
                found = Some(name.clone());
            }
        }
        found.ok_or_else(|| ApiError::new(ErrorCode::Forbidden, "the admin token is not valid"))
    }
}

/// Whether two SHA-256 digests are equal, in time that does not depend on where they differ
/// (secrets are compared by their digests: admin tokens, EST passwords).
pub(crate) fn digests_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let difference = a
        .iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}
