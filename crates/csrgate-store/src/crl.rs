//! The CRL as the store keeps it: built by the caller (who holds the CA key), numbered and, on
//! PostgreSQL, stored and announced so every replica serves the same one.

use crate::RevokedEntry;

/// One signed CRL (RFC 5280 5.1) with what serving it needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCrl {
    /// CRL Number (5.2.3).
    pub number: u64,
    /// thisUpdate, Unix seconds.
    pub this_update: i64,
    /// nextUpdate, Unix seconds.
    pub next_update: i64,
    /// Entries listed.
    pub entries: usize,
    /// DER.
    pub der: Vec<u8>,
    /// PEM.
    pub pem: String,
}

/// Signs a CRL listing the entries under the CRL Number given; the error is the caller's
/// explanation (it becomes [`crate::StoreError::Build`]).
pub type CrlSigner<'a> =
    Box<dyn FnOnce(&[RevokedEntry], u64) -> Result<StoredCrl, String> + Send + 'a>;
