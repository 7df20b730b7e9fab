//! The audit chain: every change appends an entry whose hash covers the previous entry's hash, so
//! editing or removing any entry breaks every hash after it.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::Serial;

/// The hash "before" the first entry.
pub(crate) const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What was done to a certificate. Stored and hashed by its name ([`AuditAction::name`]), so
/// the names never change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    /// Issued for a `PUT /<client_hash>` (or an ACME/EST request).
    Issue,
    /// Re-issued for the same key by an operator (`POST /certificates/{serial}/renew`).
    Renew,
    /// Re-issued for a new key; the old one revoked as superseded.
    Rotate,
    /// Revoked (RFC 5280 5.3.1 reason in the record).
    Revoke,
    /// Hidden from listings by an operator; a revoked one stays in the CRL.
    Delete,
    /// Adopted from another CA (`csrgate store import-openssl`).
    Import,
    /// Issued with a key csrgate generated (`POST /certificates/generate`).
    Generate,
    /// Re-signed from a certificate of another CA (`POST /certificates/cosign`).
    Cosign,
    /// Removed by retention: expired for longer than `retention`.
    Prune,
}

impl AuditAction {
    /// The stored name: `issue`, `renew`, `rotate`, `revoke`, `delete`, `import`, `generate`,
    /// `cosign` or `prune`.
    pub fn name(self) -> &'static str {
        match self {
            AuditAction::Issue => "issue",
            AuditAction::Renew => "renew",
            AuditAction::Rotate => "rotate",
            AuditAction::Revoke => "revoke",
            AuditAction::Delete => "delete",
            AuditAction::Import => "import",
            AuditAction::Generate => "generate",
            AuditAction::Cosign => "cosign",
            AuditAction::Prune => "prune",
        }
    }
}

impl std::fmt::Display for AuditAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What an audit entry says happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// What was done.
    pub action: AuditAction,
    /// The certificate concerned.
    pub serial: Serial,
    /// Its client hash.
    pub client_hash: String,
    /// Who did it: `client` for a PUT, the admin token's name otherwise.
    pub actor: String,
}

/// One link of the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the chain, from 1.
    pub seq: u64,
    /// When, Unix seconds.
    pub time: i64,
    /// What happened.
    #[serde(flatten)]
    pub event: AuditEvent,
    /// The previous entry's hash (zeros for the first).
    pub prev_hash: String,
    /// SHA-256 over `prev_hash` and this entry's fields.
    pub hash: String,
}

impl AuditEntry {
    pub(crate) fn new(seq: u64, time: i64, event: AuditEvent, prev_hash: String) -> Self {
        let mut entry = AuditEntry {
            seq,
            time,
            event,
            prev_hash,
            hash: String::new(),
        };
        entry.hash = entry.compute_hash();
        entry
    }

    /// The hash this entry should carry.
    pub fn compute_hash(&self) -> String {
        let mut hasher = Sha256::new();
        for part in [
            self.prev_hash.as_str(),
            &self.seq.to_string(),
            &self.time.to_string(),
            self.event.action.name(),
            &self.event.serial.to_string(),
            &self.event.client_hash,
            &self.event.actor,
        ] {
            // Length-prefixed, so no two different field lists hash alike.
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
        hex::encode(hasher.finalize())
    }
}

/// The head of the chain, kept in `meta` so appends serialise on one key.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct AuditHead {
    pub(crate) seq: u64,
    pub(crate) hash: String,
}

/// Checks a chain read in order. Returns the number of entries, or where it breaks.
pub fn verify_chain(entries: &[AuditEntry]) -> Result<u64, String> {
    let mut prev = GENESIS.to_owned();
    for (index, entry) in entries.iter().enumerate() {
        let expected_seq = index as u64 + 1;
        if entry.seq != expected_seq {
            return Err(format!(
                "entry {expected_seq} is missing (found seq {})",
                entry.seq
            ));
        }
        if entry.prev_hash != prev {
            return Err(format!(
                "entry {} does not link to the previous entry",
                entry.seq
            ));
        }
        if entry.compute_hash() != entry.hash {
            return Err(format!(
                "entry {} was altered (its hash does not match)",
                entry.seq
            ));
        }
        prev = entry.hash.clone();
    }
    Ok(entries.len() as u64)
}

/// Whether `entry` may follow `head`: next seq, linked to its hash, its own hash right.
pub(crate) fn check_next_link(
    head: &AuditHead,
    entry: &AuditEntry,
) -> Result<(), crate::StoreError> {
    if entry.seq != head.seq + 1 || entry.prev_hash != head.hash {
        return Err(crate::StoreError::AuditBroken(format!(
            "entry {} does not follow the destination's entry {}: the chains differ",
            entry.seq, head.seq
        )));
    }
    if entry.compute_hash() != entry.hash {
        return Err(crate::StoreError::AuditBroken(format!(
            "the source's entry {} was altered (its hash does not match)",
            entry.seq
        )));
    }
    Ok(())
}

/// Restoring `entry` where the destination already holds `stored` at its seq: the same entry
/// (an earlier, interrupted copy) is [`crate::Restored::Present`]; another is a history of the
/// destination's own.
pub(crate) fn already_there(
    stored: Option<&AuditEntry>,
    entry: &AuditEntry,
) -> Result<crate::Restored, crate::StoreError> {
    match stored {
        Some(stored) if stored.hash == entry.hash => Ok(crate::Restored::Present),
        _ => Err(crate::StoreError::AuditBroken(format!(
            "entry {} differs from the source's: the destination has a history of its own",
            entry.seq
        ))),
    }
}
