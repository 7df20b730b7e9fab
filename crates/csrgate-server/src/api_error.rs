//! API errors: every failure leaves as `{"error": {"code", "message"}}` with a stable code.
//! A 500 says nothing about what broke inside; the log does.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use csrgate_pki::PkiError;
use csrgate_store::StoreError;
use serde::Serialize;

/// An error answered to a client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
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
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// An internal failure: logged in full here, answered as a bare 500.
    pub(crate) fn internal(context: &str, error: &dyn std::fmt::Display) -> Self {
        tracing::error!(%error, "{context}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the server log has the details",
        )
    }

    /// An authorize plugin said no: 403 with the plugin's own reason as the message.
    pub(crate) fn denied(plugin: &str, reason: String) -> Self {
        tracing::info!(plugin, %reason, "denied by plugin");
        ApiError::new(StatusCode::FORBIDDEN, "denied", reason)
    }

    /// The message sent to the client.
    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub(crate) fn status_code_u16(&self) -> u16 {
        self.status.as_u16()
    }

    pub(crate) fn error_response_public(&self) -> HttpResponse {
        ResponseError::error_response(self)
    }

    /// The stable code, e.g. `invalid_csr`.
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message.clone(),
            },
        })
    }
}

impl From<PkiError> for ApiError {
    fn from(error: PkiError) -> Self {
        match error {
            PkiError::InvalidCsr(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_csr", error.to_string())
            }
            PkiError::WeakKey(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "weak_key", error.to_string())
            }
            PkiError::InvalidTemplate(_) => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "invalid_template",
                error.to_string(),
            ),
            other => ApiError::internal("signing failed", &other),
        }
    }
}

impl From<csrgate_hooks::HookError> for ApiError {
    fn from(error: csrgate_hooks::HookError) -> Self {
        use csrgate_hooks::HookError;
        match &error {
            HookError::Failed { .. } => {
                tracing::warn!(%error, "plugin failed; request refused");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "plugin_failed",
                    error.to_string(),
                )
            }
            HookError::PresignRefused { .. } => {
                tracing::warn!(%error, "presign plugin refused");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "plugin_presign_refused",
                    error.to_string(),
                )
            }
            HookError::InvalidTemplate { .. } => {
                tracing::warn!(%error, "presign plugin produced an invalid template");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "plugin_invalid_template",
                    error.to_string(),
                )
            }
            _ => ApiError::internal("plugin engine failed", &error),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) => {
                tracing::error!(%error, "store write failed");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "the certificate could not be recorded durably; nothing was issued, retry later",
                )
            }
            StoreError::NotFound(serial) => {
                ApiError::not_found(format!("no certificate with serial {serial}"))
            }
            StoreError::ClientMismatch(serial) => ApiError::new(
                StatusCode::FORBIDDEN,
                "replace_forbidden",
                format!("certificate {serial} was issued to another client hash"),
            ),
            StoreError::InvalidCursor(cursor) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_cursor",
                format!("cursor {cursor:?} was not handed out by this server"),
            ),
            StoreError::AlreadyRevoked(serial) => ApiError::new(
                StatusCode::CONFLICT,
                "already_revoked",
                format!("certificate {serial} is already revoked"),
            ),
            StoreError::AlreadyReplaced(serial) => ApiError::new(
                StatusCode::CONFLICT,
                "already_replaced",
                format!("certificate {serial} was already renewed or rotated"),
            ),
            other => ApiError::internal("store write failed", &other),
        }
    }
}
