//! ACME's objects as stored (RFC 8555 7.1.2 to 7.1.6): accounts, orders, authorizations and
//! their challenges, and how they are read and moved on (compare-and-swap on what was read, so
//! two requests or two replicas never both move one object from the same state).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use csrgate_store::{AcmeKind, Store};

use super::problem::Problem;

/// An account (RFC 8555 7.1.2), stored under its id.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Account {
    pub(crate) id: String,
    pub(crate) status: AccountStatus,
    /// The account key, RFC 7638 canonical JSON (`Jwk::canonical_json`).
    pub(crate) key: String,
    /// Its RFC 7638 thumbprint (the [`AcmeKind::AccountKey`] index).
    pub(crate) thumbprint: String,
    pub(crate) contact: Vec<String>,
    /// The client hash its certificates are issued to (a directory's or an EAB key's).
    pub(crate) client_hash: String,
    /// The EAB key id it was bound with, if any.
    pub(crate) eab_key_id: Option<String>,
    /// Unix seconds.
    pub(crate) created_at: i64,
}

/// RFC 8555 7.1.6's account states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum AccountStatus {
    Valid,
    Deactivated,
}

/// What an order or authorization is for (RFC 8555 7.1.3; `ip`: RFC 8738).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Identifier {
    #[serde(rename = "type")]
    pub(crate) kind: IdentifierType,
    /// A DNS name (lower case) or an IP address in its canonical text.
    pub(crate) value: String,
}

/// The identifier types csrgate validates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum IdentifierType {
    Dns,
    Ip,
}

/// An order (RFC 8555 7.1.3), stored under `<account id>/<order id>`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Order {
    pub(crate) id: String,
    pub(crate) account: String,
    /// `pending`, `processing`, `valid` or `invalid` as written; `ready` is derived from the
    /// authorizations when read ([`Order::status_with`]).
    pub(crate) status: OrderStatus,
    /// Unix seconds.
    pub(crate) expires: i64,
    pub(crate) identifiers: Vec<Identifier>,
    /// Authorization ids, one per identifier, in the same order.
    pub(crate) authorizations: Vec<String>,
    pub(crate) error: Option<Problem>,
    /// The serial of the certificate issued, once `valid`.
    pub(crate) certificate: Option<String>,
    /// Unix seconds when finalization began (while `processing`).
    #[serde(default)]
    pub(crate) processing_since: Option<i64>,
}

/// RFC 8555 7.1.6's order states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum OrderStatus {
    Pending,
    Ready,
    Processing,
    Valid,
    Invalid,
}

impl Order {
    /// The order's state given its authorizations' (RFC 8555 7.1.6): `pending` becomes `ready`
    /// when all are valid, `invalid` when one is not pending or valid or it expired.
    pub(crate) fn status_with(&self, authorizations: &[Authorization], now: i64) -> OrderStatus {
        match self.status {
            OrderStatus::Processing
                if self
                    .processing_since
                    .is_none_or(|since| now - since > super::handlers::STALE_ORDER_SECS) =>
            {
                OrderStatus::Invalid
            }
            OrderStatus::Pending if now >= self.expires => OrderStatus::Invalid,
            OrderStatus::Pending
                if authorizations.iter().any(|a| {
                    !matches!(a.status_at(now), AuthzStatus::Pending | AuthzStatus::Valid)
                }) =>
            {
                OrderStatus::Invalid
            }
            OrderStatus::Pending
                if authorizations
                    .iter()
                    .all(|a| a.status_at(now) == AuthzStatus::Valid) =>
            {
                OrderStatus::Ready
            }
            status => status,
        }
    }
}

/// An authorization with its challenges (RFC 8555 7.1.4), stored under its id.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Authorization {
    pub(crate) id: String,
    pub(crate) account: String,
    /// For a wildcard order's name, its base name (`example.com` for `*.example.com`).
    pub(crate) identifier: Identifier,
    /// Whether it authorizes the wildcard of `identifier` (validated by dns-01 only).
    #[serde(default)]
    pub(crate) wildcard: bool,
    pub(crate) status: AuthzStatus,
    /// Unix seconds.
    pub(crate) expires: i64,
    pub(crate) challenges: Vec<Challenge>,
}

/// RFC 8555 7.1.6's authorization states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum AuthzStatus {
    Pending,
    Valid,
    Invalid,
    Deactivated,
    Expired,
}

impl Authorization {
    /// Its state at `now`: a pending or valid one past `expires` is `expired`.
    pub(crate) fn status_at(&self, now: i64) -> AuthzStatus {
        match self.status {
            AuthzStatus::Pending | AuthzStatus::Valid if now >= self.expires => {
                AuthzStatus::Expired
            }
            status => status,
        }
    }
}

/// A challenge (RFC 8555 7.1.5, 8).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Challenge {
    #[serde(rename = "type")]
    pub(crate) kind: ChallengeType,
    /// 32 random octets, base64url (RFC 8555 8.3: at least 128 bits).
    pub(crate) token: String,
    pub(crate) status: ChallengeStatus,
    /// Unix seconds, once valid.
    pub(crate) validated: Option<i64>,
    /// Unix seconds when the last validation started (while `processing`).
    #[serde(default)]
    pub(crate) attempted: Option<i64>,
    pub(crate) error: Option<Problem>,
}

/// The challenge types csrgate validates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum ChallengeType {
    /// RFC 8555 8.3.
    #[serde(rename = "http-01")]
    Http01,
    /// RFC 8737.
    #[serde(rename = "tls-alpn-01")]
    TlsAlpn01,
    /// RFC 8555 8.4.
    #[serde(rename = "dns-01")]
    Dns01,
}

impl ChallengeType {
    /// The name in URLs and JSON.
    pub(crate) fn name(self) -> &'static str {
        match self {
            ChallengeType::Http01 => "http-01",
            ChallengeType::TlsAlpn01 => "tls-alpn-01",
            ChallengeType::Dns01 => "dns-01",
        }
    }

    /// The type a URL segment names.
    pub(crate) fn parse(name: &str) -> Option<Self> {
        [
            ChallengeType::Http01,
            ChallengeType::TlsAlpn01,
            ChallengeType::Dns01,
        ]
        .into_iter()
        .find(|kind| kind.name() == name)
    }
}

/// RFC 8555 7.1.6's challenge states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ChallengeStatus {
    Pending,
    Processing,
    Valid,
    Invalid,
}

/// An object as read, with the stored bytes a later swap compares against.
#[derive(Debug)]
pub(crate) struct Stored<T> {
    pub(crate) value: T,
    raw: Vec<u8>,
}

/// Reads object `id` of `kind`.
pub(crate) async fn load<T: DeserializeOwned>(
    store: &Store,
    kind: AcmeKind,
    id: &str,
) -> Result<Option<Stored<T>>, Problem> {
    let Some(raw) = store.acme_get(kind, id).await? else {
        return Ok(None);
    };
    let value = serde_json::from_slice(&raw).map_err(|e| {
        tracing::error!(?kind, id, error = %e, "stored ACME object unreadable");
        Problem::new(
            super::problem::ProblemType::ServerInternal,
            "a stored object is unreadable; the server log has the details",
        )
    })?;
    Ok(Some(Stored { value, raw }))
}

/// Stores a new object; `false` when the id is taken.
pub(crate) async fn create<T: Serialize>(
    store: &Store,
    kind: AcmeKind,
    id: &str,
    value: &T,
) -> Result<bool, Problem> {
    Ok(store.acme_insert(kind, id, &encode(value)).await?)
}

/// Replaces `stored` with `value` if nobody changed it since it was read: the new object as
/// stored, or `None` when it changed (read it again and decide again).
pub(crate) async fn swap<T: Serialize>(
    store: &Store,
    kind: AcmeKind,
    id: &str,
    stored: &Stored<T>,
    value: T,
) -> Result<Option<Stored<T>>, Problem> {
    let raw = encode(&value);
    Ok(store
        .acme_replace(kind, id, &stored.raw, &raw)
        .await?
        .then_some(Stored { value, raw }))
}

/// The problem of a swap that lost to another request.
pub(crate) fn changed_meanwhile() -> Problem {
    Problem::malformed("the object changed while this request was handled; send it again")
        .with_status(409)
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Plain structs of strings, numbers and enums: serde_json cannot fail on them.
    serde_json::to_vec(value).unwrap_or_default()
}

/// A new random id: 12 octets in hex (24 digits, which no ACME endpoint name is).
pub(crate) fn new_id() -> Result<String, Problem> {
    Ok(hex::encode(random::<12>()?))
}

/// A new challenge token: 32 random octets, base64url (RFC 8555 8.1).
pub(crate) fn new_token() -> Result<String, Problem> {
    use base64::Engine as _;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random::<32>()?))
}

fn random<const N: usize>() -> Result<[u8; N], Problem> {
    let mut bytes = [0u8; N];
    openssl::rand::rand_bytes(&mut bytes).map_err(|e| {
        tracing::error!(error = %e, "no randomness");
        Problem::new(
            super::problem::ProblemType::ServerInternal,
            "no randomness; the server log has the details",
        )
    })?;
    Ok(bytes)
}
