//! The admin API's JSON request bodies, parsed into checked values before any handler acts on
//! them (and the entry point of the `admin_json` fuzz target). An empty body means defaults;
//! unknown fields are refused.

use csrgate_pki::{RevocationReason, ValidityPeriod};
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::ApiError;
use crate::error_code::ErrorCode;

/// Body of `POST /certificates/{serial}/revoke`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RevokeBody {
    /// RFC 5280 reason name; default `unspecified`.
    #[serde(default)]
    reason: Option<String>,
    /// RFC 3339 time the key is known or suspected to have been compromised.
    #[serde(default)]
    invalidity_date: Option<String>,
}

/// Body of `POST /certificates/{serial}/renew`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RenewBody {
    validity: Option<String>,
}

/// A checked `POST /certificates/{serial}/revoke` body.
#[derive(Debug, PartialEq, Eq)]
pub struct RevokeRequest {
    /// The RFC 5280 reason (`unspecified` when absent).
    pub reason: RevocationReason,
    /// When the key is known or suspected to have been compromised, Unix seconds.
    pub invalidity_date: Option<i64>,
}

impl RevokeRequest {
    /// Parses and checks the body at `now` (Unix seconds); 400 `invalid_request` says what is
    /// wrong. An `invalidity_date` after `now` is refused: it is when the key was, or is
    /// suspected to have been, compromised (RFC 5280 5.3.2), which cannot lie in the future.
    pub fn parse(body: &[u8], now: i64) -> Result<Self, ApiError> {
        let body: RevokeBody = optional_json(body, r#"{"reason": ..., "invalidity_date": ...}"#)?;
        let reason = body
            .reason
            .as_deref()
            .unwrap_or("unspecified")
            .parse::<RevocationReason>()
            .map_err(|e| bad_request(e.to_string()))?;
        let invalidity_date = body
            .invalidity_date
            .as_deref()
            .map(|text| {
                OffsetDateTime::parse(text, &Rfc3339)
                    .map(|t| t.unix_timestamp())
                    .map_err(|_| bad_request(format!("invalidity_date {text:?} is not RFC 3339")))
                    .and_then(|t| {
                        if t > now {
                            Err(bad_request(format!(
                                "invalidity_date {text:?} is in the future: it is when the key \
                                 was, or is suspected to have been, compromised (RFC 5280 5.3.2)"
                            )))
                        } else {
                            Ok(t)
                        }
                    })
            })
            .transpose()?;
        Ok(RevokeRequest {
            reason,
            invalidity_date,
        })
    }
}

/// A checked `POST /certificates/{serial}/renew` body.
#[derive(Debug, PartialEq, Eq)]
pub struct RenewRequest {
    /// The new certificate's validity (the policy's default when absent).
    pub validity: Option<ValidityPeriod>,
}

impl RenewRequest {
    /// Parses and checks the body; 400 `invalid_request` says what is wrong.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let body: RenewBody = optional_json(body, r#"{"validity": "90d"}"#)?;
        let validity = body
            .validity
            .as_deref()
            .map(|text| {
                text.parse::<ValidityPeriod>()
                    .map_err(|e| bad_request(e.to_string()))
            })
            .transpose()?;
        Ok(RenewRequest { validity })
    }
}

fn optional_json<T: serde::de::DeserializeOwned + Default>(
    body: &[u8],
    shape: &str,
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    // serde would also read a struct from a JSON array; only an object is a body.
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(bad_request(format!(
            "the body must be a JSON object {shape}"
        )));
    }
    serde_json::from_slice(body)
        .map_err(|e| bad_request(format!("the body must be JSON {shape}: {e}")))
}

pub(crate) fn bad_request(message: String) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-01-02T03:04:05Z
    const NOW: i64 = 1_767_323_045;

    #[test]
    fn revoke_bodies_parse_or_say_why() {
        assert_eq!(
            RevokeRequest::parse(b"", NOW).expect("empty"),
            RevokeRequest {
                reason: RevocationReason::Unspecified,
                invalidity_date: None
            }
        );
        let parsed = RevokeRequest::parse(
            br#"{"reason":"keyCompromise","invalidity_date":"2026-01-02T03:04:05Z"}"#,
            NOW,
        )
        .expect("full");
        assert_eq!(parsed.reason, RevocationReason::KeyCompromise);
        assert_eq!(parsed.invalidity_date, Some(1_767_323_045));
        for bad in [
            &br#"{"reason":"removeFromCRL"}"#[..],
            br#"{"reason":"keyCompromise","extra":1}"#,
            br#"{"invalidity_date":"yesterday"}"#,
            br#"{"invalidity_date":"2026-01-02T03:04:06Z"}"#, // one second after NOW
            br#"{"reason":7}"#,
            b"[]",
            b"\xff\xfe",
        ] {
            let error = RevokeRequest::parse(bad, NOW).expect_err("refused");
            assert_eq!(error.code(), "invalid_request");
        }
    }

    #[test]
    fn renew_bodies_parse_or_say_why() {
        assert_eq!(RenewRequest::parse(b"  ").expect("blank").validity, None);
        assert_eq!(
            RenewRequest::parse(br#"{"validity":"30d"}"#)
                .expect("30d")
                .validity
                .map(ValidityPeriod::as_seconds),
            Some(30 * 86_400)
        );
        for bad in [
            &br#"{"validity":"forever"}"#[..],
            br#"{"validity":"-1d"}"#,
            b"{",
        ] {
            assert_eq!(
                RenewRequest::parse(bad).expect_err("refused").code(),
                "invalid_request"
            );
        }
    }
}
