//! ACME problem documents (RFC 8555 6.7, RFC 7807): every ACME error leaves as one, with a type
//! from ACME's namespace, a detail that says what to change, and the HTTP status.

use serde::{Deserialize, Serialize};

use crate::api_error::ApiError;
use crate::error_code::ErrorCode;

/// The error types of RFC 8555 6.7 csrgate answers with (`urn:ietf:params:acme:error:<name>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum ProblemType {
    AccountDoesNotExist,
    AlreadyRevoked,
    BadCsr,
    BadNonce,
    BadPublicKey,
    BadRevocationReason,
    BadSignatureAlgorithm,
    Connection,
    Dns,
    ExternalAccountRequired,
    IncorrectResponse,
    InvalidContact,
    Malformed,
    OrderNotReady,
    RateLimited,
    RejectedIdentifier,
    ServerInternal,
    Tls,
    Unauthorized,
    UnsupportedContact,
    UnsupportedIdentifier,
}

impl ProblemType {
    /// The name after `urn:ietf:params:acme:error:`.
    fn name(self) -> &'static str {
        match self {
            ProblemType::AccountDoesNotExist => "accountDoesNotExist",
            ProblemType::AlreadyRevoked => "alreadyRevoked",
            ProblemType::BadCsr => "badCSR",
            ProblemType::BadNonce => "badNonce",
            ProblemType::BadPublicKey => "badPublicKey",
            ProblemType::BadRevocationReason => "badRevocationReason",
            ProblemType::BadSignatureAlgorithm => "badSignatureAlgorithm",
            ProblemType::Connection => "connection",
            ProblemType::Dns => "dns",
            ProblemType::ExternalAccountRequired => "externalAccountRequired",
            ProblemType::IncorrectResponse => "incorrectResponse",
            ProblemType::InvalidContact => "invalidContact",
            ProblemType::Malformed => "malformed",
            ProblemType::OrderNotReady => "orderNotReady",
            ProblemType::RateLimited => "rateLimited",
            ProblemType::RejectedIdentifier => "rejectedIdentifier",
            ProblemType::ServerInternal => "serverInternal",
            ProblemType::Tls => "tls",
            ProblemType::Unauthorized => "unauthorized",
            ProblemType::UnsupportedContact => "unsupportedContact",
            ProblemType::UnsupportedIdentifier => "unsupportedIdentifier",
        }
    }
}

/// A problem: its type, detail and HTTP status. Kept in orders and challenges as their `error`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Problem {
    #[serde(rename = "type", with = "urn")]
    pub(crate) kind: ProblemType,
    pub(crate) detail: String,
    pub(crate) status: u16,
}

/// `type` as the URN (RFC 8555 6.7).
mod urn {
    use super::ProblemType;

    const PREFIX: &str = "urn:ietf:params:acme:error:";

    pub(super) fn serialize<S: serde::Serializer>(
        kind: &ProblemType,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("{PREFIX}{}", kind.name()))
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<ProblemType, D::Error> {
        let text: String = serde::Deserialize::deserialize(deserializer)?;
        let name = text.strip_prefix(PREFIX).unwrap_or(&text);
        serde_json::from_value(serde_json::Value::String(name.to_owned()))
            .or_else(|_| {
                // badCSR's spelling is not camelCase's.
                if name == "badCSR" {
                    Ok(ProblemType::BadCsr)
                } else {
                    Err(())
                }
            })
            .map_err(|()| serde::de::Error::custom(format!("unknown ACME problem type {text}")))
    }
}

impl Problem {
    /// A problem of `kind` with the status RFC 8555 and its registry use for it.
    pub(crate) fn new(kind: ProblemType, detail: impl Into<String>) -> Self {
        let status = match kind {
            ProblemType::Unauthorized => 403,
            ProblemType::ServerInternal => 500,
            ProblemType::OrderNotReady => 403,
            _ => 400,
        };
        Problem {
            kind,
            detail: detail.into(),
            status,
        }
    }

    /// The same problem with another HTTP status.
    pub(crate) fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// `malformed`.
    pub(crate) fn malformed(detail: impl Into<String>) -> Self {
        Problem::new(ProblemType::Malformed, detail)
    }

    /// `malformed` with 404: no such object (RFC 8555 has no type of its own for it).
    pub(crate) fn not_found(detail: impl Into<String>) -> Self {
        Problem::malformed(detail).with_status(404)
    }

    /// `unauthorized` (403).
    pub(crate) fn unauthorized(detail: impl Into<String>) -> Self {
        Problem::new(ProblemType::Unauthorized, detail)
    }
}

impl From<csrgate_pki::JwsError> for Problem {
    fn from(error: csrgate_pki::JwsError) -> Self {
        use csrgate_pki::JwsError;
        let kind = match &error {
            JwsError::Malformed(_) => ProblemType::Malformed,
            JwsError::BadSignatureAlgorithm(_) => ProblemType::BadSignatureAlgorithm,
            JwsError::BadPublicKey(_) => ProblemType::BadPublicKey,
            JwsError::BadSignature => ProblemType::Malformed,
        };
        Problem::new(kind, error.to_string())
    }
}

impl From<ApiError> for Problem {
    /// The pipeline's refusals in ACME's terms, detail unchanged: a denial (issuance rule or
    /// plugin) is `rejectedIdentifier`, a CSR the intake refuses `badCSR`, what is the server's
    /// fault `serverInternal` with the same status (never a 5xx for a client's mistake).
    fn from(error: ApiError) -> Self {
        let status = error.status_code_u16();
        let detail = match error.denied_by() {
            Some(by) => format!("denied by {by}: {}", error.message()),
            None => error.message().to_owned(),
        };
        let kind = match error.error_code() {
            ErrorCode::Denied => ProblemType::RejectedIdentifier,
            ErrorCode::InvalidCsr | ErrorCode::WeakKey => ProblemType::BadCsr,
            ErrorCode::Unauthorized | ErrorCode::Forbidden => ProblemType::Unauthorized,
            ErrorCode::AlreadyRevoked => ProblemType::AlreadyRevoked,
            _ if status >= 500 => ProblemType::ServerInternal,
            _ => ProblemType::Malformed,
        };
        Problem {
            kind,
            detail,
            status,
        }
    }
}

impl From<csrgate_store::StoreError> for Problem {
    fn from(error: csrgate_store::StoreError) -> Self {
        Problem::from(ApiError::from(error))
    }
}
