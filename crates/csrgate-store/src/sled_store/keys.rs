//! Key and value encodings of the sled trees (layouts in the module docs).
use crate::{CertificateRecord, StoreError};

pub(super) fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Unavailable(format!("cannot encode: {e}")))
}

/// A record's keys in the three index trees (see the module docs for their layout).
pub(super) struct IndexKeys {
    pub(super) by_client: Vec<u8>,
    pub(super) by_expiry: Vec<u8>,
    pub(super) by_issued: Vec<u8>,
}

impl IndexKeys {
    pub(super) fn of(record: &CertificateRecord, sequence: u64) -> Self {
        let mut by_issued = sequence.to_be_bytes().to_vec();
        by_issued.extend_from_slice(record.serial.as_bytes());
        IndexKeys {
            by_client: client_key(&record.client_hash, sequence, &record.serial),
            by_expiry: time_key(record.not_after, &record.serial),
            by_issued,
        }
    }
}

pub(super) fn decode(key: &str, bytes: &[u8]) -> Result<CertificateRecord, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        key: key.to_owned(),
        reason: e.to_string(),
    })
}

/// Maps i64 onto u64 so that big-endian byte order is numeric order (negative times included).
pub(super) fn order_preserving(value: i64) -> u64 {
    (value as u64) ^ (1 << 63)
}

pub(super) fn plugin_key(plugin: &str, key: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(plugin.len() + 1 + key.len());
    out.extend_from_slice(plugin.as_bytes());
    out.push(0);
    out.extend_from_slice(key.as_bytes());
    out
}

/// A cursor's bytes; cursors are short, so longer text is refused before decoding.
pub(super) fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if text.len() > 1024 {
        return None;
    }
    hex::decode(text).ok()
}

pub(super) fn client_key(client_hash: &str, sequence: u64, serial: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(client_hash.len() + 9 + serial.len());
    key.extend_from_slice(client_hash.as_bytes());
    key.push(0);
    key.extend_from_slice(&sequence.to_be_bytes());
    key.extend_from_slice(serial.as_bytes());
    key
}

/// An index key ordered by a time, then by serial.
pub(super) fn time_key(time: i64, serial: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + serial.len());
    key.extend_from_slice(&order_preserving(time).to_be_bytes());
    key.extend_from_slice(serial.as_bytes());
    key
}
