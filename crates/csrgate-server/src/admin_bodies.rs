//! The admin API's JSON request bodies, parsed into checked values before any handler acts on
//! them (and the entry point of the `admin_json` fuzz target). An empty body means defaults;
//! unknown fields are refused.

use csrgate_pki::{DistinguishedName, KeySpec, RevocationReason, SubjectAltName, ValidityPeriod};
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

/// Body of `POST /certificates/generate`.
#[derive(Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GenerateBody {
    /// The client hash the certificate is issued to (its rules and plugins apply).
    client_hash: Option<String>,
    /// Subject fields in order, e.g. `[["O", "Example"], ["CN", "app.internal"]]`.
    #[serde(default)]
    subject: Vec<(String, String)>,
    /// SANs as `DNS:name`, `IP:address`, `email:address`, `URI:uri`.
    #[serde(default)]
    subject_alt_names: Vec<String>,
    /// `ec:p256` (default), `ec:p384`, `rsa:2048`, `rsa:3072`, `rsa:4096`, `ed25519`.
    key_type: Option<String>,
    /// `pkcs12` (default) or `pem`.
    format: Option<String>,
    /// Encrypts the bundle (PKCS#12: required) or the PEM key (optional); at least 12 characters.
    password: Option<String>,
    /// Validity, e.g. `30d` (default: the policy's).
    validity: Option<String>,
}

impl std::fmt::Debug for GenerateBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenerateBody")
            .field("client_hash", &self.client_hash)
            .field("subject", &self.subject)
            .field("subject_alt_names", &self.subject_alt_names)
            .field("key_type", &self.key_type)
            .field("format", &self.format)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("validity", &self.validity)
            .finish()
    }
}

/// How a generated key is handed over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BundleFormat {
    /// PKCS#12 (RFC 7292), `application/x-pkcs12`.
    Pkcs12,
    /// PEM: the key (encrypted PKCS#8 when a password is given), the certificate, the chain.
    Pem,
}

/// A checked `POST /certificates/generate` body. The password is zeroized when dropped.
pub struct GenerateRequest {
    /// The client hash to issue to.
    pub client_hash: crate::ClientHash,
    /// The subject.
    pub subject: DistinguishedName,
    /// The SANs.
    pub subject_alt_names: Vec<SubjectAltName>,
    /// The key to generate.
    pub key_type: KeySpec,
    /// The answer's format.
    pub format: BundleFormat,
    /// The bundle's password.
    pub password: Option<zeroize::Zeroizing<String>>,
    /// The validity asked for.
    pub validity: Option<ValidityPeriod>,
}

impl std::fmt::Debug for GenerateRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenerateRequest")
            .field("client_hash", &self.client_hash)
            .field("subject", &self.subject.to_string())
            .field("subject_alt_names", &self.subject_alt_names)
            .field("key_type", &self.key_type)
            .field("format", &self.format)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("validity", &self.validity)
            .finish()
    }
}

impl GenerateRequest {
    /// Parses and checks the body; 400 `invalid_request` says what is wrong (a missing client
    /// hash, a subject field or SAN that does not parse, an unknown key type or format, a
    /// PKCS#12 without a password, a password under 12 characters).
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        const SHAPE: &str = r#"{"client_hash": "abc123", "subject": [["CN", "app.internal"]], "subject_alt_names": ["DNS:app.internal"], "key_type": "ec:p256", "format": "pkcs12", "password": "..."}"#;
        let body: GenerateBody = optional_json(body, SHAPE)?;
        let bad = |e: csrgate_pki::PkiError| bad_request(e.to_string());
        let client_hash = body
            .client_hash
            .as_deref()
            .and_then(crate::ClientHash::parse)
            .ok_or_else(|| {
                bad_request(format!(
                    "client_hash must be 1 to 128 ASCII letters or digits: {SHAPE}"
                ))
            })?;
        let subject = DistinguishedName::from_fields(&body.subject).map_err(bad)?;
        subject.check_bounds().map_err(bad)?;
        let subject_alt_names = body
            .subject_alt_names
            .iter()
            .map(|text| SubjectAltName::parse_tagged(text))
            .collect::<Result<Vec<_>, _>>()
            .map_err(bad)?;
        if subject.is_empty() && subject_alt_names.is_empty() {
            return Err(bad_request(
                "give a subject or at least one subject_alt_names entry".into(),
            ));
        }
        let key_type = body
            .key_type
            .as_deref()
            .unwrap_or("ec:p256")
            .parse::<KeySpec>()
            .map_err(bad)?;
        let format = match body.format.as_deref().unwrap_or("pkcs12") {
            "pkcs12" => BundleFormat::Pkcs12,
            "pem" => BundleFormat::Pem,
            other => {
                return Err(bad_request(format!(
                    "format {other:?}: use \"pkcs12\" or \"pem\""
                )));
            }
        };
        let password = body.password.map(zeroize::Zeroizing::new);
        match &password {
            None if format == BundleFormat::Pkcs12 => {
                return Err(bad_request(
                    "a PKCS#12 bundle needs a password: it is what protects the private key".into(),
                ));
            }
            Some(text) if text.chars().count() < csrgate_pki::MIN_BUNDLE_PASSWORD_CHARS => {
                return Err(bad_request(format!(
                    "the password must have at least {} characters",
                    csrgate_pki::MIN_BUNDLE_PASSWORD_CHARS
                )));
            }
            _ => {}
        }
        let validity = validity(body.validity.as_deref())?;
        Ok(GenerateRequest {
            client_hash,
            subject,
            subject_alt_names,
            key_type,
            format,
            password,
            validity,
        })
    }
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
        let validity = validity(body.validity.as_deref())?;
        Ok(RenewRequest { validity })
    }
}

/// A validity such as `90d`, when given.
fn validity(text: Option<&str>) -> Result<Option<ValidityPeriod>, ApiError> {
    text.map(|text| {
        text.parse::<ValidityPeriod>()
            .map_err(|e| bad_request(e.to_string()))
    })
    .transpose()
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
