//! The certificate record: what the store keeps about every issued certificate.

use serde::{Deserialize, Serialize};

use crate::{AuditAction, RevocationReason, Serial};

/// Lifecycle state kept in the record. "Expired" is not stored: it is computed on read from
/// `not_after`, so a record never needs a write to age.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertificateStatus {
    /// Issued and not revoked.
    Valid,
    /// Revoked.
    Revoked,
}

/// One issued certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateRecord {
    /// Serial number (the primary key; stored in its shown form, lower-case hex).
    pub serial: Serial,
    /// The client hash from the request path.
    pub client_hash: String,
    /// The certificate subject, for display.
    pub subject: String,
    /// SANs in `DNS:name` / `IP:addr` / `email:` / `URI:` form.
    pub subject_alt_names: Vec<String>,
    /// ssl_api's `public_key_hash`: lower-case hex SHA-1 of the SubjectPublicKeyInfo DER.
    pub public_key_sha1: String,
    /// SHA-256 of the certificate DER, lower-case hex.
    pub sha256_fingerprint: String,
    /// Start of validity, Unix seconds.
    pub not_before: i64,
    /// End of validity, Unix seconds.
    pub not_after: i64,
    /// When csrgate signed it, Unix seconds.
    pub issued_at: i64,
    /// Valid or revoked.
    pub status: CertificateStatus,
    /// The certificate DER (base64 in the stored form).
    #[serde(with = "base64_bytes")]
    pub der: Vec<u8>,
    /// Set when the certificate was revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation: Option<Revocation>,
    /// Deleted from listings by an operator. A revoked certificate stays in the CRL regardless.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    /// The certificate this one renewed or rotated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<Serial>,
    /// The certificate that renewed or rotated this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced_by: Option<Serial>,
}

impl CertificateRecord {
    /// The CRL's entry for this certificate when it is revoked.
    pub fn revoked_entry(&self) -> Option<RevokedEntry> {
        self.revocation.as_ref().map(|revocation| RevokedEntry {
            serial: self.serial.clone(),
            revoked_at: revocation.revoked_at,
            reason: revocation.reason,
            invalidity_date: revocation.invalidity_date,
            not_after: self.not_after,
        })
    }
}

/// Why and when a certificate was revoked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// When, Unix seconds.
    pub revoked_at: i64,
    /// Why (RFC 5280 5.3.1; stored by name, e.g. `keyCompromise`).
    pub reason: RevocationReason,
    /// When the key is known or suspected to have been compromised, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalidity_date: Option<i64>,
    /// Who revoked it.
    pub actor: String,
}

/// One entry of the CRL as the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokedEntry {
    /// Its serial.
    pub serial: Serial,
    /// When, Unix seconds.
    pub revoked_at: i64,
    /// Why (RFC 5280 5.3.1).
    pub reason: RevocationReason,
    /// Invalidity date, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalidity_date: Option<i64>,
    /// The certificate's not-after: the entry leaves the CRL after it.
    pub not_after: i64,
}

/// The serial a stored key or column names, in its stored form only; any other text is damage.
pub(crate) fn stored_serial(text: &str) -> Result<Serial, crate::StoreError> {
    text.parse::<Serial>()
        .ok()
        .filter(|serial| serial.to_string() == text)
        .ok_or_else(|| crate::StoreError::Corrupt {
            key: text.to_owned(),
            reason: "not a serial in its stored form (lower-case hex, two digits an octet)".into(),
        })
}

pub(crate) mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

/// A serial's revocation status as the store knows it (RFC 6960 4.2.1 `CertStatus`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RevocationStatus {
    /// Recorded and not revoked.
    Good,
    /// Revoked: the entry the CRL lists.
    Revoked(RevokedEntry),
    /// No certificate with this serial is recorded.
    Unknown,
}

/// What [`crate::Store::import_certificate`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Imported {
    /// The record (and its revocation) was added.
    Added,
    /// A certificate with this serial was stored already; nothing was written.
    AlreadyPresent,
    /// It was stored already as valid, and is now recorded as revoked (with a `revoke` audit
    /// entry): the other CA revoked it since the last import.
    Revoked,
}

/// A page of [`crate::Store::list_certificates`].
#[derive(Clone, Debug)]
pub struct ListPage {
    /// Records, newest first.
    pub records: Vec<CertificateRecord>,
    /// Pass it as `cursor` for the next page; `None` on the last page. Opaque: each backend
    /// hands out and accepts its own.
    pub next_cursor: Option<String>,
}

/// How a new certificate relates to the one it replaces.
#[derive(Clone, Debug)]
pub struct Predecessor {
    /// The replaced certificate.
    pub serial: Serial,
    /// `Some(reason)` revokes it (rotation: `superseded`); `None` only links it (renewal).
    pub revoke_as: Option<RevocationReason>,
    /// Audit action for the new certificate: [`AuditAction::Renew`] or [`AuditAction::Rotate`].
    pub action: AuditAction,
    /// Who asked.
    pub actor: String,
}

/// Counts for operators and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreStats {
    /// Stored certificate records.
    pub certificates: usize,
    /// Entries in the client-hash index.
    pub client_index_entries: usize,
    /// Entries in the expiry index.
    pub expiry_index_entries: usize,
}

/// What restoring one item of another store (`store copy`) did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restored {
    /// It was not there; now it is.
    Added,
    /// It was there, different (the source changed since an interrupted copy); now it is the
    /// source's.
    Updated,
    /// It was there already, the same.
    Present,
}
