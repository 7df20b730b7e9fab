//! Key and value encodings of the sled trees (layouts in the module docs).
use crate::{CertificateRecord, Serial, StoreError};

pub(super) fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Unavailable(format!("cannot encode: {e}")))
}

/// A record's key in `certificates` and its keys in the three index trees (see the module docs
/// for their layout), the serial's text encoded once for all four.
pub(super) struct IndexKeys {
    pub(super) serial: Vec<u8>,
    pub(super) by_client: Vec<u8>,
    pub(super) by_expiry: Vec<u8>,
    pub(super) by_issued: Vec<u8>,
}

impl IndexKeys {
    pub(super) fn of(record: &CertificateRecord, sequence: u64) -> Self {
        let serial = serial_key(&record.serial);
        let mut by_issued = sequence.to_be_bytes().to_vec();
        by_issued.extend_from_slice(&serial);
        IndexKeys {
            by_client: client_key(&record.client_hash, sequence, &serial),
            by_expiry: time_key(record.not_after, &serial),
            by_issued,
            serial,
        }
    }
}

/// A serial's key in the certificates and revoked trees (and its suffix in the index keys): its
/// shown form, lower-case hex text, so the keys of the serials csrgate generates sort like the
/// numbers (all 40 digits) and stores written before serials were typed read the same.
pub(super) fn serial_key(serial: &Serial) -> Vec<u8> {
    serial.to_string().into_bytes()
}

/// The serial a key of [`serial_key`] names; a key that names none is damage, not a serial.
pub(super) fn serial_of_key(key: &[u8]) -> Result<Serial, StoreError> {
    crate::record::stored_serial(&String::from_utf8_lossy(key))
}

pub(super) fn decode(
    key: &impl std::fmt::Display,
    bytes: &[u8],
) -> Result<CertificateRecord, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        key: key.to_string(),
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

/// A `by_client` key: the client hash, NUL, the insertion sequence, then a [`serial_key`].
pub(super) fn client_key(client_hash: &str, sequence: u64, serial: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(client_hash.len() + 9 + serial.len());
    key.extend_from_slice(client_hash.as_bytes());
    key.push(0);
    key.extend_from_slice(&sequence.to_be_bytes());
    key.extend_from_slice(serial);
    key
}

/// An index key ordered by a time, then by serial (a [`serial_key`]).
pub(super) fn time_key(time: i64, serial: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + serial.len());
    key.extend_from_slice(&order_preserving(time).to_be_bytes());
    key.extend_from_slice(serial);
    key
}
