//! The sled backend's own tests: crash recovery, tampering with its trees, keys, locking.
//! What both backends must do alike is in `tests/backends.rs`.

use super::SledStore;
use super::insert::PendingInsert;
use super::keys::{encode, order_preserving};
use super::lifecycle::{audit_head, event_for};
use crate::audit::AuditEntry;
use crate::{
    AuditAction, CertificateRecord, CertificateStatus, RevocationReason, Serial, StoreError,
    StoreStats,
};

/// The serial written `hex`.
fn s(hex: &str) -> Serial {
    hex.parse().expect("a serial in hex")
}

fn record(serial: &str, client: &str, issued_at: i64, not_after: i64) -> CertificateRecord {
    CertificateRecord {
        serial: s(serial),
        client_hash: client.into(),
        subject: "CN=test".into(),
        subject_alt_names: vec!["DNS:test".into()],
        public_key_sha1: "00".repeat(20),
        sha256_fingerprint: "11".repeat(32),
        not_before: issued_at,
        not_after,
        issued_at,
        status: CertificateStatus::Valid,
        der: vec![0x30, 0x00, 0xff],
        revocation: None,
        deleted: false,
        replaces: None,
        replaced_by: None,
    }
}

/// The serials the client index lists for `client`, oldest first.
fn serials_for_client(store: &SledStore, client: &str) -> Vec<String> {
    store
        .certificates_for_client(client)
        .expect("scan")
        .into_iter()
        .map(|r| r.serial.to_string())
        .collect()
}

/// A crash can stop a new certificate's insert after any of its writes, and sled keeps a
/// prefix of them. For every prefix that kept the record, the reopened store holds the whole
/// certificate, its index entries and its audit entry; for the one that did not (the pending
/// entry alone), none of it. Either way no pending entry is left and the chain goes on.
#[tokio::test]
async fn an_insert_cut_short_after_any_write_is_finished_at_open() {
    let new = record("0b", "abc", 200, 2_000);
    for kept in 0..=6 {
        let dir = tempfile::tempdir().expect("tmp");
        {
            let store = SledStore::open(dir.path()).expect("open");
            store
                .insert_certificate(&record("0a", "abc", 100, 1_000))
                .await
                .expect("insert");
            let inner = store.inner().expect("inner");
            let head = audit_head(&inner.meta.get("audit_head").expect("get")).expect("head");
            let pending = PendingInsert {
                sequence: inner.db.generate_id().expect("id"),
                audit: AuditEntry::new(
                    head.seq + 1,
                    200,
                    event_for(AuditAction::Issue, &new, "client"),
                    head.hash,
                ),
            };
            inner
                .pending_inserts
                .insert("0b", encode(&pending).expect("encode"))
                .expect("pending");
            let value = encode(&new).expect("encode");
            let writes = pending
                .writes(&new, value, &inner.insert_trees())
                .expect("writes");
            assert_eq!(writes.len(), 6);
            for (tree, key, value) in writes.into_iter().take(kept) {
                tree.insert(key, value).expect("write");
            }
            inner.db.flush().expect("flush");
        }
        let store = SledStore::open(dir.path()).expect("reopen settles the insert");
        let finished = kept > 0;
        let count = if finished { 2 } else { 1 };
        assert_eq!(
            store.certificate(&s("0b")).expect("get"),
            finished.then(|| new.clone()),
            "kept {kept}"
        );
        assert_eq!(
            serials_for_client(&store, "abc"),
            ["0a", "0b"][..count],
            "kept {kept}"
        );
        assert_eq!(
            store.stats().expect("stats"),
            StoreStats {
                certificates: count,
                client_index_entries: count,
                expiry_index_entries: count
            },
            "kept {kept}"
        );
        assert_eq!(
            store.verify_audit().expect("chain"),
            count as u64,
            "kept {kept}"
        );
        assert!(store.inner().expect("inner").pending_inserts.is_empty());
        store
            .insert_certificate(&record("0c", "abd", 300, 3_000))
            .await
            .expect("insert after recovery");
        assert_eq!(
            store.verify_audit().expect("chain"),
            count as u64 + 1,
            "kept {kept}"
        );
    }
}

/// A stored revocation whose reason no RFC 5280 name matches (damage, or a store written by
/// something else) fails the read of the CRL's entries and the OCSP status: never omitted from
/// the CRL, never answered `good`.
#[tokio::test]
async fn an_unreadable_revocation_reason_is_an_error_not_an_omission() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = SledStore::open(dir.path()).expect("open");
    store
        .insert_certificate(&record("0a", "abc", 100, 1_000))
        .await
        .expect("insert");
    store
        .revoke(&s("0a"), RevocationReason::KeyCompromise, None, "ops", 200)
        .await
        .expect("revoke");
    assert_eq!(store.revoked_entries(300).expect("entries").len(), 1);
    let revoked = &store.inner().expect("open").revoked;
    let stored = revoked.get("0a").expect("get").expect("some");
    let damaged = String::from_utf8(stored.to_vec())
        .expect("json")
        .replace("\"keyCompromise\"", "\"retired\"");
    revoked.insert("0a", damaged.as_bytes()).expect("damage");
    for error in [
        store.revoked_entries(300).expect_err("CRL entries"),
        store.revocation_status(&s("0a")).expect_err("OCSP status"),
    ] {
        assert!(
            matches!(&error, StoreError::Corrupt { reason, .. } if reason.contains("retired")),
            "{error}"
        );
    }
}

/// An entry edited in the `audit` tree (as an intruder with the files would) is named by
/// verification. (Revoke, delete, CRL Numbers and the chain they write are tested on both
/// backends in `tests/backends.rs`.)
#[tokio::test]
async fn an_edited_audit_entry_is_detected() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = SledStore::open(dir.path()).expect("open");
    for serial in ["0a", "0b"] {
        store
            .insert_certificate(&record(serial, "abc", 100, 1_000))
            .await
            .expect("insert");
    }
    store
        .revoke(&s("0a"), RevocationReason::KeyCompromise, None, "ops", 200)
        .await
        .expect("revoke");
    assert_eq!(store.verify_audit().expect("intact"), 3);
    // Edit one entry: verification names it.
    let key = 2u64.to_be_bytes();
    let mut entry: AuditEntry = serde_json::from_slice(
        &store
            .inner()
            .expect("open")
            .audit
            .get(key)
            .expect("get")
            .expect("some"),
    )
    .expect("json");
    entry.event.actor = "someone else".into();
    store
        .inner()
        .expect("open")
        .audit
        .insert(key, serde_json::to_vec(&entry).expect("json"))
        .expect("insert");
    let error = store.verify_audit().expect_err("tampered");
    assert!(error.to_string().contains("entry 2"), "{error}");
}

#[tokio::test]
async fn removing_the_newest_audit_entry_is_detected() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = SledStore::open(dir.path()).expect("open");
    store
        .insert_certificate(&record("0a", "abc", 1, 2))
        .await
        .expect("insert");
    store
        .insert_certificate(&record("0b", "abc", 1, 2))
        .await
        .expect("insert");
    store
        .inner()
        .expect("open")
        .audit
        .remove(2u64.to_be_bytes())
        .expect("remove");
    assert!(store.verify_audit().is_err());
}

#[test]
fn a_second_opener_is_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let _first = SledStore::open(dir.path()).expect("open");
    // sled takes an exclusive file lock; a second daemon on the same data dir must not start.
    let second = SledStore::open(dir.path());
    assert!(
        matches!(&second, Err(StoreError::Open { reason, .. }) if reason.contains("already running")),
        "{second:?}"
    );
}

#[test]
fn a_new_data_directory_is_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let parent = tempfile::tempdir().expect("tmp");
    let dir = parent.path().join("data");
    let _store = SledStore::open(&dir).expect("open");
    let mode = std::fs::metadata(&dir).expect("meta").permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "{mode:o}");
}

#[test]
fn order_preserving_keys_sort_numerically() {
    let values = [i64::MIN, -5, -1, 0, 1, 5, i64::MAX];
    for pair in values.windows(2) {
        assert!(order_preserving(pair[0]).to_be_bytes() < order_preserving(pair[1]).to_be_bytes());
    }
}
