//! API errors: every failure leaves as `{"error": {"code", "message"}}` with a stable code.
//! A 500 says nothing about what broke inside; the log does.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use csrgate_pki::PkiError;
use csrgate_store::StoreError;

use crate::error_code::ErrorCode;
use serde::Serialize;

/// An error answered to a client: a stable [`ErrorCode`] (which fixes the status) and a message
/// that says what to change.
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
    /// The authorize plugin that denied, for `denied`.
    denied_by: Option<String>,
}

/// Every error answer: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

/// The stable code and a human message.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorDetail {
    /// Stable, e.g. `invalid_csr`, `weak_key`, `denied`, `plugin_failed`, `store_unavailable`.
    code: String,
    /// What went wrong, for people.
    message: String,
}

impl ApiError {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            denied_by: None,
        }
    }

    /// An internal failure: logged in full here, answered as a bare 500.
    pub(crate) fn internal(context: &str, error: &dyn std::fmt::Display) -> Self {
        tracing::error!(%error, "{context}");
        ApiError::new(
            ErrorCode::Internal,
            "internal error; the server log has the details",
        )
    }

    /// An authorize plugin said no: 403 with the plugin's own reason as the message.
    pub(crate) fn denied(plugin: &str, reason: String) -> Self {
        tracing::info!(by = plugin, %reason, "request denied");
        ApiError {
            denied_by: Some(plugin.to_owned()),
            ..ApiError::new(ErrorCode::Denied, reason)
        }
    }

    /// The name of the authorize plugin that denied the request (`denied` only). The HTTP answer
    /// does not carry it (a client learns the reason, not the policy's layout); logs and
    /// `csrgate plugin run` do.
    pub fn denied_by(&self) -> Option<&str> {
        self.denied_by.as_deref()
    }

    /// The message sent to the client.
    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::NotFound, message)
    }

    pub(crate) fn status_code_u16(&self) -> u16 {
        self.code.status()
    }

    pub(crate) fn error_response_public(&self) -> HttpResponse {
        ResponseError::error_response(self)
    }

    /// The stable code, e.g. `invalid_csr`.
    pub fn code(&self) -> &'static str {
        self.code.as_str()
    }

    /// The code as its type, for callers that translate it (EST's 401 challenge, ACME's
    /// problem types).
    pub(crate) fn error_code(&self) -> ErrorCode {
        self.code
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code()).json(ErrorBody {
            error: ErrorDetail {
                code: self.code.as_str().to_owned(),
                message: self.message.clone(),
            },
        })
    }
}

impl From<PkiError> for ApiError {
    fn from(error: PkiError) -> Self {
        match error {
            PkiError::InvalidCsr(_) => ApiError::new(ErrorCode::InvalidCsr, error.to_string()),
            PkiError::WeakKey(_) => ApiError::new(ErrorCode::WeakKey, error.to_string()),
            PkiError::InvalidTemplate(_) => {
                ApiError::new(ErrorCode::InvalidTemplate, error.to_string())
            }
            // Faults of the CA's own files or of openssl, never of a request.
            PkiError::InvalidParameter(_)
            | PkiError::Identity { .. }
            | PkiError::IdentityExists(_)
            | PkiError::WrongPassphrase(_)
            | PkiError::PassphraseRequired(_)
            | PkiError::Io { .. }
            | PkiError::Crypto(_) => ApiError::internal("signing failed", &error),
        }
    }
}

impl From<csrgate_hooks::HookError> for ApiError {
    fn from(error: csrgate_hooks::HookError) -> Self {
        use csrgate_hooks::HookError;
        match &error {
            HookError::Failed { .. } => {
                tracing::warn!(%error, "plugin failed; request refused");
                ApiError::new(ErrorCode::PluginFailed, error.to_string())
            }
            HookError::PresignRefused { .. } => {
                tracing::warn!(%error, "presign plugin refused");
                ApiError::new(ErrorCode::PluginPresignRefused, error.to_string())
            }
            HookError::InvalidTemplate { .. } => {
                tracing::warn!(%error, "presign plugin produced an invalid template");
                ApiError::new(ErrorCode::PluginInvalidTemplate, error.to_string())
            }
            HookError::Load { .. } | HookError::Engine(_) => {
                ApiError::internal("plugin engine failed", &error)
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) => {
                tracing::error!(%error, "store write failed");
                ApiError::new(
                    ErrorCode::StoreUnavailable,
                    "the store is unavailable; nothing was recorded or changed, retry later",
                )
            }
            StoreError::NotFound(serial) => {
                ApiError::not_found(format!("no certificate with serial {serial}"))
            }
            StoreError::ClientMismatch(serial) => ApiError::new(
                ErrorCode::ReplaceForbidden,
                format!("certificate {serial} was issued to another client hash"),
            ),
            StoreError::InvalidCursor(cursor) => ApiError::new(
                ErrorCode::InvalidCursor,
                format!("cursor {cursor:?} was not handed out by this server"),
            ),
            StoreError::AlreadyRevoked(serial) => ApiError::new(
                ErrorCode::AlreadyRevoked,
                format!("certificate {serial} is already revoked"),
            ),
            StoreError::AlreadyReplaced(serial) => ApiError::new(
                ErrorCode::AlreadyReplaced,
                format!("certificate {serial} was already renewed or rotated"),
            ),
            // The store's own faults (a serial the CSPRNG repeated, a damaged database).
            StoreError::Open { .. }
            | StoreError::SchemaVersion { .. }
            | StoreError::DuplicateSerial(_)
            | StoreError::AuditBroken(_)
            | StoreError::Corrupt { .. }
            // Not raised on a request's path: quotas are settled in the plugin call, CRL
            // signing failures in the publisher.
            | StoreError::QuotaExceeded { .. }
            | StoreError::Build(_) => ApiError::internal("store write failed", &error),
        }
    }
}
