//! What both backends share about ACME's state (RFC 8555 7.1): its kinds of object, each a key
//! space of its own, holding opaque values (the server's JSON) under text ids.
//!
//! The store knows no ACME semantics: it offers what the protocol's state machine needs to be
//! correct across replicas and restarts: insert-if-absent (one account per key, a nonce
//! redeemed once), compare-and-swap (an order or authorization moves on from the state it was
//! read in, never over another replica's change), and range removal (expired nonces).

use serde::{Deserialize, Serialize};

/// A kind of ACME object; each is its own key space. The numbers are stored (sled key prefix,
/// PostgreSQL column): never renumber one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AcmeKind {
    /// The server's nonce key (one id, `hmac`): shared by every replica, kept across restarts.
    NonceKey = 1,
    /// Nonces redeemed, by `<issued-at, 16 hex digits>.<nonce>` so old ones range-remove.
    RedeemedNonce = 2,
    /// Accounts (RFC 8555 7.1.2), by account id.
    Account = 3,
    /// Account ids by their key's RFC 7638 thumbprint: one account per key.
    AccountKey = 4,
    /// Orders (7.1.3), by `<account id>/<order id>`, so an account's orders list by prefix.
    Order = 5,
    /// Authorizations with their challenges (7.1.4), by authorization id.
    Authorization = 6,
    /// The order (`<account id>/<order id>`) a certificate was issued for, by serial: who may
    /// revoke it (7.6).
    CertificateOrder = 7,
    /// External account binding keys used (7.3.4: one account per key id), by key id.
    BoundKey = 8,
    /// An account's latest valid authorization per identifier, by
    /// `<account id>/<type>:<value>`: reused by its next orders while valid (7.4).
    ValidAuthorization = 9,
}

impl AcmeKind {
    /// Every kind, in their stored order.
    pub const ALL: [AcmeKind; 9] = [
        AcmeKind::NonceKey,
        AcmeKind::RedeemedNonce,
        AcmeKind::Account,
        AcmeKind::AccountKey,
        AcmeKind::Order,
        AcmeKind::Authorization,
        AcmeKind::CertificateOrder,
        AcmeKind::BoundKey,
        AcmeKind::ValidAuthorization,
    ];

    /// The stored number.
    pub(crate) fn code(self) -> u8 {
        self as u8
    }

    /// The kind a stored number names.
    pub(crate) fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.code() == code)
    }
}
