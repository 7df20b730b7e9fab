//! What every backend of the store must do alike: each test here runs once on sled and once on
//! PostgreSQL (a fresh database per test in the cluster `TEST_POSTGRES_URL` names,
//! which `tests/run` starts; without it the PostgreSQL half fails and says so).

use std::time::Duration;

use csrgate_store::{
    AcmeKind, AuditAction, CertificateRecord, CertificateStatus, Imported, PostgresConfig,
    Predecessor, Revocation, RevocationReason, RevocationStatus, Serial, Store, StoreError,
    StoreStats, StoredCrl,
};

/// The serial written `hex`.
fn s(hex: &str) -> Serial {
    hex.parse().expect("a serial in hex")
}

/// A store under test and what it takes to open it again.
enum Fixture {
    Sled(tempfile::TempDir),
    Postgres(PostgresConfig),
}

impl Fixture {
    /// A plain SQL session on a PostgreSQL fixture's database, to do what csrgate never does
    /// (damage rows, pretend a newer schema).
    async fn sql(&self) -> tokio_postgres::Client {
        let Fixture::Postgres(config) = self else {
            panic!("only a PostgreSQL fixture has SQL")
        };
        let (client, connection) = tokio_postgres::connect(&config.url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        client
    }

    fn sled() -> Self {
        Fixture::Sled(tempfile::tempdir().expect("tmp"))
    }

    /// A new, empty database in the test cluster.
    async fn postgres() -> Self {
        let url = std::env::var("TEST_POSTGRES_URL").expect(
            "TEST_POSTGRES_URL is not set: run the tests with tests/run, which starts a \
             PostgreSQL cluster, or point it at one (a role that may CREATE DATABASE)",
        );
        let name = format!("csrgate_test_{:016x}", rand_u64());
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .expect("connect to the test cluster");
        let driver = tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create database");
        drop(client);
        let _ = driver.await;
        Fixture::Postgres(PostgresConfig {
            url: database_url(&url, &name),
            password: None,
            pool_size: 8,
            ca_file: None,
        })
    }

    /// Opens the store (again): a reopened sled directory, or a new pool on the same database.
    async fn open(&self) -> Store {
        match self {
            Fixture::Sled(dir) => Store::open(dir.path()).expect("open sled"),
            Fixture::Postgres(config) => Store::connect_postgres(config)
                .await
                .expect("connect postgres"),
        }
    }
}

/// `url` with its database replaced by `name`.
fn database_url(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let authority_end = base
        .find("://")
        .map(|i| i + 3)
        .and_then(|start| base[start..].find('/').map(|i| start + i))
        .unwrap_or(base.len());
    format!("{}/{name}{query}", &base[..authority_end])
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish()
}

/// Each test, once per backend.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sled {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Fixture::sled()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Fixture::postgres().await).await;
                }
            )*
        }
    };
}

on_both_backends!(
    records_survive_reopen_with_indexes,
    duplicate_serial_writes_nothing,
    concurrent_inserts_all_land,
    a_taken_serial_among_concurrent_inserts_refuses_only_its_own,
    revoke_delete_crl_numbers_and_audit,
    pages_visit_every_certificate_once_while_new_ones_arrive,
    rotation_revokes_the_old_one_for_the_same_client_only,
    renewal_links_without_revoking,
    imports_are_idempotent_and_bring_later_revocations,
    crl_numbers_continue_from_an_adopted_ca_and_never_go_back,
    issue_crl_numbers_and_signs_the_unexpired_entries,
    plugin_namespaces_are_separate_and_quotas_hold,
    revocation_status_reads,
    acme_objects_are_created_once_and_swapped_from_what_was_read,
    retention_prunes_expired_records_in_bounded_batches,
    a_snapshot_restores_into_the_other_backend,
);

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

/// The serials issued to `client`, oldest first.
async fn serials_for_client(store: &Store, client: &str) -> Vec<String> {
    store
        .certificates_for_client(client)
        .await
        .expect("scan")
        .into_iter()
        .map(|r| r.serial.to_string())
        .collect()
}

/// The audit chain's actions, oldest first.
async fn actions(store: &Store) -> Vec<AuditAction> {
    store
        .audit_entries(0, 1000)
        .await
        .expect("audit")
        .into_iter()
        .map(|e| e.event.action)
        .collect()
}

async fn records_survive_reopen_with_indexes(fixture: Fixture) {
    {
        let store = fixture.open().await;
        for (serial, client, issued, not_after) in [
            ("0a", "abc", 100, 1_000),
            ("0b", "abc", 200, 500),
            ("0c", "abd", 300, -5),
        ] {
            store
                .insert_certificate(&record(serial, client, issued, not_after))
                .await
                .expect("insert");
        }
        store.flush().await.expect("flush");
    }
    let store = fixture.open().await;
    assert_eq!(
        store.certificate(&s("0a")).await.expect("get"),
        Some(record("0a", "abc", 100, 1_000))
    );
    assert_eq!(serials_for_client(&store, "abc").await, ["0a", "0b"]);
    assert_eq!(
        store
            .serials_expiring_between(-10, 600)
            .await
            .expect("range"),
        [s("0c"), s("0b")]
    );
    assert_eq!(
        store.stats().await.expect("stats"),
        StoreStats {
            certificates: 3,
            client_index_entries: 3,
            expiry_index_entries: 3
        }
    );
}

async fn duplicate_serial_writes_nothing(fixture: Fixture) {
    let store = fixture.open().await;
    store
        .insert_certificate(&record("0a", "abc", 1, 2))
        .await
        .expect("insert");
    let again = store.insert_certificate(&record("0a", "other", 5, 9)).await;
    assert!(
        matches!(again, Err(StoreError::DuplicateSerial(_))),
        "{again:?}"
    );
    assert_eq!(store.stats().await.expect("stats").client_index_entries, 1);
    let stored = store
        .certificate(&s("0a"))
        .await
        .expect("get")
        .expect("some");
    assert_eq!(stored.client_hash, "abc");
    assert_eq!(actions(&store).await, [AuditAction::Issue]);
    assert_eq!(store.verify_audit().await.expect("chain"), 1);
}

async fn concurrent_inserts_all_land(fixture: Fixture) {
    let store = fixture.open().await;
    let mut tasks = Vec::new();
    for i in 1..=200 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .insert_certificate(&record(&format!("{i:x}"), "c", i, i))
                .await
        }));
    }
    for task in tasks {
        task.await.expect("join").expect("insert");
    }
    assert_eq!(store.stats().await.expect("stats").certificates, 200);
    assert_eq!(store.verify_audit().await.expect("one chain"), 200);
}

/// Concurrent inserts share transactions (PostgreSQL batches them); one whose serial is taken
/// is refused alone, and the rest land with one intact chain.
async fn a_taken_serial_among_concurrent_inserts_refuses_only_its_own(fixture: Fixture) {
    let store = fixture.open().await;
    store
        .insert_certificate(&record("2a", "first", 1, 2))
        .await
        .expect("insert");
    let mut tasks = Vec::new();
    for i in 1..=64 {
        let store = store.clone();
        // Number 42 (0x2a) repeats the serial stored above.
        tasks.push(tokio::spawn(async move {
            store
                .insert_certificate(&record(&format!("{i:x}"), "c", i, i))
                .await
        }));
    }
    let mut refused = Vec::new();
    for task in tasks {
        if let Err(error) = task.await.expect("join") {
            refused.push(error);
        }
    }
    assert!(
        matches!(refused.as_slice(), [StoreError::DuplicateSerial(serial)] if *serial == s("2a")),
        "{refused:?}"
    );
    assert_eq!(store.stats().await.expect("stats").certificates, 64);
    assert_eq!(
        store
            .certificate(&s("2a"))
            .await
            .expect("get")
            .expect("kept")
            .client_hash,
        "first"
    );
    assert_eq!(store.verify_audit().await.expect("one chain"), 64);
}

async fn revoke_delete_crl_numbers_and_audit(fixture: Fixture) {
    {
        let store = fixture.open().await;
        store
            .insert_certificate(&record("0a", "abc", 100, 1_000))
            .await
            .expect("insert");
        store
            .insert_certificate(&record("0b", "abc", 100, 50))
            .await
            .expect("insert");
        let revoked = store
            .revoke(
                &s("0a"),
                RevocationReason::KeyCompromise,
                Some(90),
                "ops",
                200,
            )
            .await
            .expect("revoke");
        assert_eq!(revoked.status, CertificateStatus::Revoked);
        assert!(matches!(
            store
                .revoke(&s("0a"), RevocationReason::Superseded, None, "ops", 201)
                .await,
            Err(StoreError::AlreadyRevoked(_))
        ));
        assert!(matches!(
            store
                .revoke(&s("ff"), RevocationReason::Superseded, None, "ops", 201)
                .await,
            Err(StoreError::NotFound(_))
        ));
        store
            .revoke(&s("0b"), RevocationReason::Superseded, None, "ops", 202)
            .await
            .expect("revoke");
        // Deleting keeps the CRL entry.
        store.delete(&s("0a"), "ops", 203).await.expect("delete");
        assert!(matches!(
            store.delete(&s("0a"), "ops", 204).await,
            Err(StoreError::NotFound(_))
        ));
        let entries = store.revoked_entries(60).await.expect("entries");
        assert_eq!(
            entries.len(),
            1,
            "0b expired at 50, 0a stays though deleted"
        );
        assert_eq!(entries[0].serial, s("0a"));
        assert_eq!(entries[0].reason, RevocationReason::KeyCompromise);
        assert_eq!(entries[0].invalidity_date, Some(90));
        assert_eq!(store.next_crl_number().await.expect("n"), 1);
        assert_eq!(store.next_crl_number().await.expect("n"), 2);
        store.flush().await.expect("flush");
    }
    let store = fixture.open().await;
    assert_eq!(
        store.next_crl_number().await.expect("n"),
        3,
        "CRL numbers survive restarts"
    );
    assert_eq!(store.verify_audit().await.expect("intact"), 5);
    use AuditAction::{Delete, Issue, Revoke};
    assert_eq!(
        actions(&store).await,
        [Issue, Issue, Revoke, Revoke, Delete]
    );
    assert_eq!(store.audit_entries(3, 100).await.expect("after").len(), 2);
    let listed = store
        .list_certificates(None, None, 10, &|_| true)
        .await
        .expect("list");
    assert_eq!(
        listed
            .records
            .iter()
            .map(|r| r.serial.to_string())
            .collect::<Vec<_>>(),
        ["0b"],
        "deleted records are not listed"
    );
}

async fn pages_visit_every_certificate_once_while_new_ones_arrive(fixture: Fixture) {
    let store = fixture.open().await;
    for i in 0..25 {
        store
            .insert_certificate(&record(
                // Serials scrambled against insertion order, as random serials are.
                &format!("{:02x}", 0x40 + (i * 7) % 25),
                if i % 2 == 0 { "even" } else { "odd" },
                // All in the same second: order must not depend on the random serials.
                7,
                1_000,
            ))
            .await
            .expect("insert");
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    // Certificates issued while paging get serials below every existing one.
    let mut next = 1;
    loop {
        let page = store
            .list_certificates(None, cursor.as_deref(), 7, &|_| true)
            .await
            .expect("page");
        seen.extend(page.records.iter().map(|r| r.serial.to_string()));
        // Issue newer certificates between pages: they must not show up in later pages.
        store
            .insert_certificate(&record(&format!("{next:x}"), "even", 7, 1_000))
            .await
            .expect("insert");
        next += 1;
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let expected: Vec<String> = (0..25)
        .rev()
        .map(|i| format!("{:02x}", 0x40 + (i * 7) % 25))
        .collect();
    assert_eq!(seen, expected, "newest first, each exactly once");

    let odd = store
        .list_certificates(Some("odd"), None, 100, &|_| true)
        .await
        .expect("odd");
    assert_eq!(odd.records.len(), 12);
    assert!(odd.next_cursor.is_none());
    let filtered = store
        .list_certificates(None, None, 100, &|r| {
            ("40".."43").contains(&r.serial.to_string().as_str())
        })
        .await
        .expect("filtered");
    assert_eq!(filtered.records.len(), 3);
    let odd_page = store
        .list_certificates(Some("odd"), None, 5, &|_| true)
        .await
        .expect("odd page");
    let odd_cursor = odd_page.next_cursor.expect("more odd ones");
    assert!(
        matches!(
            store
                .list_certificates(Some("even"), Some(&odd_cursor), 5, &|_| true)
                .await,
            Err(StoreError::InvalidCursor(_))
        ),
        "a cursor of another client's listing"
    );
    for bad in ["zz", "-1", "0", "99999999999999999999999"] {
        assert!(
            matches!(
                store.list_certificates(None, Some(bad), 5, &|_| true).await,
                Err(StoreError::InvalidCursor(_))
            ),
            "cursor {bad:?}"
        );
    }
}

fn successor_of(old: &str, action: AuditAction) -> Predecessor {
    Predecessor {
        serial: s(old),
        revoke_as: (action == AuditAction::Rotate).then_some(RevocationReason::Superseded),
        action,
        actor: "client".into(),
    }
}

async fn rotation_revokes_the_old_one_for_the_same_client_only(fixture: Fixture) {
    let store = fixture.open().await;
    store
        .insert_certificate(&record("0a", "abc", 1, 1_000))
        .await
        .expect("insert");
    let rotate = |old: &str| successor_of(old, AuditAction::Rotate);
    let foreign = store
        .insert_successor(&record("0b", "other", 2, 1_000), &rotate("0a"))
        .await;
    assert!(matches!(foreign, Err(StoreError::ClientMismatch(_))));
    assert!(
        store.certificate(&s("0b")).await.expect("get").is_none(),
        "nothing written"
    );
    store
        .insert_successor(&record("0c", "abc", 3, 1_000), &rotate("0a"))
        .await
        .expect("rotate");
    let old = store
        .certificate(&s("0a"))
        .await
        .expect("get")
        .expect("some");
    assert_eq!(old.status, CertificateStatus::Revoked);
    assert_eq!(old.replaced_by, Some(s("0c")));
    assert_eq!(
        old.revocation.expect("revoked").reason,
        RevocationReason::Superseded
    );
    let new = store
        .certificate(&s("0c"))
        .await
        .expect("get")
        .expect("some");
    assert_eq!(new.replaces, Some(s("0a")));
    assert_eq!(store.revoked_entries(0).await.expect("crl").len(), 1);
    let again = store
        .insert_successor(&record("0d", "abc", 4, 1_000), &rotate("0a"))
        .await;
    assert!(matches!(again, Err(StoreError::AlreadyRevoked(_))));
    assert!(matches!(
        store
            .insert_successor(&record("0e", "abc", 4, 1_000), &rotate("ff"))
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.verify_audit().await.expect("audit"), 3);
    use AuditAction::{Issue, Revoke, Rotate};
    assert_eq!(actions(&store).await, [Issue, Revoke, Rotate]);
}

async fn renewal_links_without_revoking(fixture: Fixture) {
    let store = fixture.open().await;
    store
        .insert_certificate(&record("0a", "abc", 1, 1_000))
        .await
        .expect("insert");
    let renew = successor_of("0a", AuditAction::Renew);
    store
        .insert_successor(&record("0b", "abc", 2, 2_000), &renew)
        .await
        .expect("renew");
    let old = store
        .certificate(&s("0a"))
        .await
        .expect("get")
        .expect("some");
    assert_eq!(old.status, CertificateStatus::Valid);
    assert_eq!(old.replaced_by, Some(s("0b")));
    let twice = store
        .insert_successor(&record("0c", "abc", 3, 2_000), &renew)
        .await;
    assert!(matches!(twice, Err(StoreError::AlreadyReplaced(_))));
    assert!(store.certificate(&s("0c")).await.expect("get").is_none());
    assert_eq!(
        actions(&store).await,
        [AuditAction::Issue, AuditAction::Renew]
    );
}

async fn imports_are_idempotent_and_bring_later_revocations(fixture: Fixture) {
    let store = fixture.open().await;
    let valid = record("0a", "imported", 1, 1_000);
    assert_eq!(
        store
            .import_certificate(&valid, "ops", 10)
            .await
            .expect("import"),
        Imported::Added
    );
    assert_eq!(
        store
            .import_certificate(&valid, "ops", 11)
            .await
            .expect("again"),
        Imported::AlreadyPresent
    );
    let mut revoked = valid.clone();
    revoked.status = CertificateStatus::Revoked;
    revoked.revocation = Some(Revocation {
        revoked_at: 12,
        reason: RevocationReason::KeyCompromise,
        invalidity_date: None,
        actor: "openssl ca".into(),
    });
    assert_eq!(
        store
            .import_certificate(&revoked, "ops", 13)
            .await
            .expect("revoked since"),
        Imported::Revoked
    );
    assert_eq!(
        store
            .import_certificate(&revoked, "ops", 14)
            .await
            .expect("third"),
        Imported::AlreadyPresent
    );
    assert!(matches!(
        store.revocation_status(&s("0a")).await.expect("status"),
        RevocationStatus::Revoked(entry) if entry.reason == RevocationReason::KeyCompromise
    ));
    store.flush().await.expect("flush");
    assert_eq!(
        actions(&store).await,
        [AuditAction::Import, AuditAction::Revoke]
    );
}

async fn crl_numbers_continue_from_an_adopted_ca_and_never_go_back(fixture: Fixture) {
    let store = fixture.open().await;
    store.continue_crl_numbers_from(1).await.expect("no-op");
    assert_eq!(store.next_crl_number().await.expect("n"), 1);
    store
        .continue_crl_numbers_from(0x20)
        .await
        .expect("continue");
    assert_eq!(store.next_crl_number().await.expect("n"), 0x20);
    store
        .continue_crl_numbers_from(5)
        .await
        .expect("lower: ignored");
    assert_eq!(store.next_crl_number().await.expect("n"), 0x21);
}

/// A CRL built through the store: unexpired entries, the next number, and (PostgreSQL) kept
/// for the other replicas, which hear of it.
async fn issue_crl_numbers_and_signs_the_unexpired_entries(fixture: Fixture) {
    let store = fixture.open().await;
    // sled has one process; PostgreSQL replicas are separate pools on one database.
    let other_replica = match &fixture {
        Fixture::Sled(_) => store.clone(),
        Fixture::Postgres(_) => fixture.open().await,
    };
    let mut notices = other_replica.crl_notices();
    for (serial, not_after) in [("0a", 1_000), ("0b", 50)] {
        store
            .insert_certificate(&record(serial, "abc", 1, not_after))
            .await
            .expect("insert");
        store
            .revoke(&s(serial), RevocationReason::Superseded, None, "ops", 10)
            .await
            .expect("revoke");
    }
    let sign = |tag: &'static str| -> csrgate_store::CrlSigner<'static> {
        Box::new(move |entries, number| {
            Ok(StoredCrl {
                number,
                this_update: 100,
                next_update: 200,
                entries: entries.len(),
                der: entries
                    .iter()
                    .flat_map(|e| e.serial.to_string().into_bytes())
                    .collect(),
                pem: tag.into(),
            })
        })
    };
    let first = store.issue_crl(60, None, sign("first")).await.expect("crl");
    assert_eq!(
        (first.number, first.entries, first.der.as_slice()),
        (1, 1, &b"0a"[..])
    );
    let refused = store
        .issue_crl(60, None, Box::new(|_, _| Err("no key".into())))
        .await;
    assert!(matches!(refused, Err(StoreError::Build(ref why)) if why == "no key"));
    if store.is_shared() {
        let notices = notices.as_mut().expect("postgres announces CRLs");
        tokio::time::timeout(Duration::from_secs(1), notices.changed())
            .await
            .expect("the other replica heard of the CRL within a second")
            .expect("listener alive");
        let latest = other_replica
            .latest_crl()
            .await
            .expect("latest")
            .expect("one");
        assert_eq!(latest, first);
        // Fresh enough: the stored CRL is reused, no number is spent.
        let reused = other_replica
            .issue_crl(60, Some(100), sign("second"))
            .await
            .expect("reuse");
        assert_eq!(reused.pem, "first");
        let rebuilt = other_replica
            .issue_crl(60, Some(101), sign("second"))
            .await
            .expect("rebuild");
        assert_eq!((rebuilt.pem.as_str(), rebuilt.number), ("second", 3));
        // A revocation dated at or after the newest CRL's thisUpdate (its replica's rebuild
        // failed, say): a refresh builds, even within the freshness window.
        store
            .insert_certificate(&record("0e", "abc", 1, 1_000))
            .await
            .expect("insert");
        store
            .revoke(&s("0e"), RevocationReason::Superseded, None, "ops", 100)
            .await
            .expect("revoke");
        let after_revocation = other_replica
            .issue_crl(60, Some(100), sign("third"))
            .await
            .expect("rebuild after a revocation");
        assert_eq!(
            (after_revocation.pem.as_str(), after_revocation.entries),
            ("third", 2)
        );
    } else {
        assert!(notices.is_none());
        assert_eq!(store.latest_crl().await.expect("latest"), None);
    }
}

async fn plugin_namespaces_are_separate_and_quotas_hold(fixture: Fixture) {
    let store = fixture.open().await;
    store
        .plugin_kv_apply("a", &[("k", Some(b"1"))], 100)
        .await
        .expect("set");
    store
        .plugin_kv_apply("ab", &[("k", Some(b"2"))], 100)
        .await
        .expect("set");
    assert_eq!(
        store.plugin_kv_get("a", "k").await.expect("get"),
        Some(b"1".to_vec())
    );
    assert_eq!(
        store.plugin_kv_entries("a").await.expect("scan"),
        vec![("k".to_owned(), b"1".to_vec())]
    );
    assert_eq!(store.plugin_kv_usage("a").await.expect("usage"), 2);
    // 2 bytes used; 8 more (key "big" + 5) would make 10 > 9: refused, nothing written.
    let over = store
        .plugin_kv_apply("a", &[("big", Some(b"12345")), ("k", Some(b"2"))], 9)
        .await;
    assert!(
        matches!(over, Err(StoreError::QuotaExceeded { quota: 9 })),
        "{over:?}"
    );
    assert_eq!(
        store.plugin_kv_get("a", "k").await.expect("get"),
        Some(b"1".to_vec())
    );
    assert_eq!(store.plugin_kv_get("a", "big").await.expect("get"), None);
    // The same write with a delete beside it frees 2 bytes: 8 <= 9, accepted as one.
    store
        .plugin_kv_apply("a", &[("big", Some(b"12345")), ("k", None)], 9)
        .await
        .expect("fits with the delete");
    assert_eq!(store.plugin_kv_usage("a").await.expect("usage"), 8);
    store
        .plugin_kv_apply("a", &[("big", None), ("k", Some(b"1"))], 9)
        .await
        .expect("back");
    // Shrinking is always allowed, even over the quota.
    store
        .plugin_kv_apply("a", &[("k", None)], 0)
        .await
        .expect("delete");
    assert_eq!(store.plugin_kv_get("a", "k").await.expect("get"), None);
    assert_eq!(store.plugin_kv_usage("a").await.expect("usage"), 0);
    assert_eq!(
        store.plugin_kv_get("ab", "k").await.expect("get"),
        Some(b"2".to_vec())
    );
}

async fn revocation_status_reads(fixture: Fixture) {
    let store = fixture.open().await;
    store
        .insert_certificate(&record("0a", "abc", 1, 1_000))
        .await
        .expect("insert");
    assert_eq!(
        store.revocation_status(&s("0a")).await.expect("status"),
        RevocationStatus::Good
    );
    assert_eq!(
        store.revocation_status(&s("0b")).await.expect("status"),
        RevocationStatus::Unknown
    );
    store
        .revoke(
            &s("0a"),
            RevocationReason::CessationOfOperation,
            None,
            "ops",
            5,
        )
        .await
        .expect("revoke");
    store.delete(&s("0a"), "ops", 6).await.expect("delete");
    assert!(matches!(
        store.revocation_status(&s("0a")).await.expect("status"),
        RevocationStatus::Revoked(entry) if entry.revoked_at == 5 && entry.not_after == 1_000
    ));
}

async fn retention_prunes_expired_records_in_bounded_batches(fixture: Fixture) {
    let store = fixture.open().await;
    for i in 0..5 {
        store
            .insert_certificate(&record(&format!("e{i}"), "old", 1, 100 + i))
            .await
            .expect("insert");
    }
    store
        .revoke(&s("e1"), RevocationReason::KeyCompromise, None, "ops", 50)
        .await
        .expect("revoke");
    for serial in ["c0", "c1"] {
        store
            .insert_certificate(&record(serial, "current", 1, 10_000))
            .await
            .expect("insert");
    }
    let prune = || store.prune_expired(1_000, 3, "retention", 2_000);
    assert_eq!(prune().await.expect("first batch"), 3);
    assert_eq!(prune().await.expect("second batch"), 2);
    assert_eq!(prune().await.expect("nothing left"), 0);
    assert_eq!(
        store.stats().await.expect("stats"),
        StoreStats {
            certificates: 2,
            client_index_entries: 2,
            expiry_index_entries: 2
        },
        "index entries go with their records"
    );
    assert_eq!(store.certificate(&s("e1")).await.expect("get"), None);
    assert_eq!(
        store.revocation_status(&s("e1")).await.expect("status"),
        RevocationStatus::Unknown
    );
    assert!(
        store
            .revoked_entries(i64::MIN)
            .await
            .expect("crl")
            .is_empty()
    );
    assert!(serials_for_client(&store, "old").await.is_empty());
    let listed = store
        .list_certificates(None, None, 10, &|_| true)
        .await
        .expect("list");
    assert_eq!(listed.records.len(), 2);
    let in_order: Vec<String> = store
        .records_in_order(0, 10)
        .await
        .expect("in order")
        .into_iter()
        .map(|(_, r)| r.serial.to_string())
        .collect();
    assert_eq!(in_order, ["c0", "c1"]);
    let entries = store.audit_entries(0, 100).await.expect("audit");
    let pruned: Vec<String> = entries
        .iter()
        .filter(|e| e.event.action == AuditAction::Prune)
        .map(|e| e.event.serial.to_string())
        .collect();
    assert_eq!(
        pruned,
        ["e0", "e1", "e2", "e3", "e4"],
        "oldest first, each audited"
    );
    assert!(entries.iter().all(|e| e.event.action != AuditAction::Prune
        || (e.event.actor == "retention" && e.time == 2_000)));
    assert_eq!(store.verify_audit().await.expect("chain"), 5 + 1 + 2 + 5);
}

/// Tampering with the chain in the database is found, as it is in sled's trees.
#[tokio::test]
async fn postgres_audit_tampering_is_detected() {
    let fixture = Fixture::postgres().await;
    let store = fixture.open().await;
    for serial in ["0a", "0b", "0c"] {
        store
            .insert_certificate(&record(serial, "abc", 1, 2))
            .await
            .expect("insert");
    }
    assert_eq!(store.verify_audit().await.expect("intact"), 3);
    let client = fixture.sql().await;
    client
        .batch_execute(
            "UPDATE audit SET entry = replace(entry, '\"client\"', '\"someone\"') WHERE seq = 2",
        )
        .await
        .expect("edit");
    let error = store.verify_audit().await.expect_err("edited");
    assert!(error.to_string().contains("entry 2"), "{error}");
    client
        .batch_execute(
            "UPDATE audit SET entry = replace(entry, '\"someone\"', '\"client\"') WHERE seq = 2;
             DELETE FROM audit WHERE seq = 3",
        )
        .await
        .expect("remove the newest");
    let error = store.verify_audit().await.expect_err("truncated");
    assert!(error.to_string().contains("head"), "{error}");
}

/// A revocation whose stored reason no RFC 5280 name matches fails the CRL's read and the OCSP
/// status (never omitted, never `good`), as in sled.
#[tokio::test]
async fn postgres_unreadable_revocation_reason_is_an_error() {
    let fixture = Fixture::postgres().await;
    let store = fixture.open().await;
    store
        .insert_certificate(&record("0a", "abc", 1, 1_000))
        .await
        .expect("insert");
    store
        .revoke(&s("0a"), RevocationReason::KeyCompromise, None, "ops", 5)
        .await
        .expect("revoke");
    let client = fixture.sql().await;
    client
        .batch_execute(
            "UPDATE revoked SET entry = replace(entry, '\"keyCompromise\"', '\"retired\"')",
        )
        .await
        .expect("damage");
    for error in [
        store.revoked_entries(10).await.expect_err("CRL entries"),
        store
            .revocation_status(&s("0a"))
            .await
            .expect_err("OCSP status"),
    ] {
        assert!(
            matches!(&error, StoreError::Corrupt { reason, .. } if reason.contains("retired")),
            "{error}"
        );
    }
}

/// A database migrated by a newer csrgate is refused, not written to.
#[tokio::test]
async fn postgres_newer_schema_is_refused() {
    let fixture = Fixture::postgres().await;
    drop(fixture.open().await);
    let client = fixture.sql().await;
    let Fixture::Postgres(config) = &fixture else {
        unreachable!()
    };
    let newer = csrgate_store::POSTGRES_SCHEMA_VERSION + 1;
    client
        .execute(
            "INSERT INTO csrgate_schema (version) VALUES ($1)",
            &[&newer],
        )
        .await
        .expect("pretend a newer csrgate migrated");
    match Store::connect_postgres(config).await {
        Err(StoreError::SchemaVersion { found, .. }) => assert_eq!(found, newer.to_string()),
        other => panic!("expected a schema refusal, got {other:?}"),
    }
    let with_password = PostgresConfig {
        url: "postgres://csrgate:hunter2@127.0.0.1/csrgate".into(),
        password: None,
        pool_size: 1,
        ca_file: None,
    };
    let refused = Store::connect_postgres(&with_password).await;
    assert!(
        matches!(&refused, Err(StoreError::Open { reason, .. }) if reason.contains("postgres_password_file")),
        "{refused:?}"
    );
}

/// Counts what a copy reports, as the CLI's progress bar would show it.
#[derive(Default)]
struct Counted(std::sync::Mutex<Vec<(&'static str, u64)>>);

impl csrgate_store::CopyProgress for Counted {
    fn stage(&self, name: &'static str, _total: Option<u64>) {
        self.0.lock().expect("lock").push((name, 0));
    }
    fn advance(&self, items: u64) {
        if let Some(last) = self.0.lock().expect("lock").last_mut() {
            last.1 += items;
        }
    }
}

/// An ACME account and an order whose value moved on once, for copies to carry.
async fn add_acme_objects(store: &Store) {
    assert!(
        store
            .acme_insert(AcmeKind::Account, "acct1", b"{\"status\":\"valid\"}")
            .await
            .expect("insert")
    );
    assert!(
        store
            .acme_insert(AcmeKind::Order, "acct1/o1", b"pending")
            .await
            .expect("insert")
    );
    assert!(
        store
            .acme_replace(AcmeKind::Order, "acct1/o1", b"pending", b"valid")
            .await
            .expect("replace")
    );
}

/// ACME's state: one winner of an insert, a swap only from the value read, prefix scans in
/// byte order, time-ordered ids removed below a bound; all of it after a reopen.
async fn acme_objects_are_created_once_and_swapped_from_what_was_read(fixture: Fixture) {
    let store = fixture.open().await;
    assert!(
        store
            .acme_insert(AcmeKind::AccountKey, "thumb", b"a1")
            .await
            .expect("insert")
    );
    assert!(
        !store
            .acme_insert(AcmeKind::AccountKey, "thumb", b"a2")
            .await
            .expect("insert")
    );
    assert_eq!(
        store
            .acme_get(AcmeKind::AccountKey, "thumb")
            .await
            .expect("get"),
        Some(b"a1".to_vec())
    );
    // Kinds are separate key spaces.
    assert_eq!(
        store
            .acme_get(AcmeKind::Account, "thumb")
            .await
            .expect("get"),
        None
    );
    // Concurrent inserts of one id: exactly one wins.
    let mut racers = Vec::new();
    for i in 0..8u8 {
        let store = store.clone();
        racers.push(tokio::spawn(async move {
            store
                .acme_insert(AcmeKind::RedeemedNonce, "0000000000000001.n", &[i])
                .await
                .expect("insert")
        }));
    }
    let mut winners = 0;
    for racer in racers {
        winners += usize::from(racer.await.expect("join"));
    }
    assert_eq!(winners, 1);

    assert!(
        store
            .acme_insert(AcmeKind::Order, "a1/o1", b"pending")
            .await
            .expect("insert")
    );
    assert!(
        !store
            .acme_replace(AcmeKind::Order, "a1/o1", b"ready", b"valid")
            .await
            .expect("swap"),
        "not from a value it no longer holds"
    );
    assert!(
        store
            .acme_replace(AcmeKind::Order, "a1/o1", b"pending", b"ready")
            .await
            .expect("swap")
    );
    assert!(
        !store
            .acme_replace(AcmeKind::Order, "a1/o9", b"pending", b"ready")
            .await
            .expect("swap"),
        "not a missing one"
    );
    assert!(
        store
            .acme_insert(AcmeKind::Order, "a1/o2", b"pending")
            .await
            .expect("insert")
    );
    assert!(
        store
            .acme_insert(AcmeKind::Order, "a10/o1", b"pending")
            .await
            .expect("insert")
    );
    let listed: Vec<String> = store
        .acme_scan(AcmeKind::Order, "a1/")
        .await
        .expect("scan")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(listed, ["a1/o1", "a1/o2"]);

    for at in [5u64, 9, 10, 11] {
        store
            .acme_insert(AcmeKind::RedeemedNonce, &format!("{at:016x}.x"), b"")
            .await
            .expect("insert");
    }
    let removed = store
        .acme_remove_below(AcmeKind::RedeemedNonce, &format!("{:016x}", 10))
        .await
        .expect("remove");
    assert_eq!(removed, 3, "the racers' 1, then 5 and 9");
    store.flush().await.expect("flush");
    drop(store);
    let store = fixture.open().await;
    let left: Vec<String> = store
        .acme_scan(AcmeKind::RedeemedNonce, "")
        .await
        .expect("scan")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(left, [format!("{:016x}.x", 10), format!("{:016x}.x", 11)]);
    assert_eq!(
        store.acme_get(AcmeKind::Order, "a1/o1").await.expect("get"),
        Some(b"ready".to_vec())
    );
    assert_eq!(
        store.acme_scan(AcmeKind::Account, "").await.expect("scan"),
        []
    );
}

/// Everything a store holds that a copy must carry, as comparable values.
async fn contents(
    store: &Store,
) -> (
    Vec<CertificateRecord>,
    Vec<csrgate_store::AuditEntry>,
    Vec<(String, Vec<u8>)>,
    u64,
    Vec<csrgate_store::RevokedEntry>,
    Vec<(String, Vec<u8>)>,
) {
    let mut records = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .list_certificates(None, cursor.as_deref(), 7, &|_| true)
            .await
            .expect("list");
        records.extend(page.records);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    for serial in ["0d"] {
        // Deleted records are not listed; read them directly.
        records.extend(store.certificate(&s(serial)).await.expect("get"));
    }
    let audit = store.audit_entries(0, 10_000).await.expect("audit");
    let kv = store.plugin_kv_entries("ledger").await.expect("kv");
    let crl = store.crl_number_issued().await.expect("crl number");
    let mut revoked = store.revoked_entries(i64::MIN).await.expect("revoked");
    revoked.sort_by(|a, b| a.serial.cmp(&b.serial));
    let mut acme = store.acme_scan(AcmeKind::Account, "").await.expect("acme");
    acme.extend(store.acme_scan(AcmeKind::Order, "").await.expect("acme"));
    (records, audit, kv, crl, revoked, acme)
}

/// sled → PostgreSQL → sled carries every record (in listing order), every revocation, the
/// audit chain with the same hashes, the plugins' entries and the CRL Number; a copy run again
/// (as after an interruption, with more issued since) finishes it; a destination with a
/// history of its own is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_round_trips_sled_postgres_sled() {
    let source = Fixture::sled();
    let first = source.open().await;
    for i in 0..23 {
        first
            .insert_certificate(&record(
                &format!("{:02x}", 0x40 + (i * 7) % 23),
                "abc",
                7,
                2_000,
            ))
            .await
            .expect("insert");
    }
    for (serial, action) in [("0a", AuditAction::Renew), ("0c", AuditAction::Rotate)] {
        first
            .insert_certificate(&record(serial, "abc", 1, 1_000))
            .await
            .expect("insert");
        let next = format!("{serial}1");
        first
            .insert_successor(
                &record(&next, "abc", 2, 1_000),
                &successor_of(serial, action),
            )
            .await
            .expect("successor");
    }
    first
        .insert_certificate(&record("0d", "abc", 1, 1_000))
        .await
        .expect("insert");
    first
        .revoke(&s("0d"), RevocationReason::KeyCompromise, Some(1), "ops", 3)
        .await
        .expect("revoke");
    first.delete(&s("0d"), "ops", 4).await.expect("delete");
    first
        .plugin_kv_apply(
            "ledger",
            &[("seen", Some(b"3")), ("bin", Some(&[0, 255]))],
            1000,
        )
        .await
        .expect("kv");
    first
        .continue_crl_numbers_from(42)
        .await
        .expect("crl numbers");
    add_acme_objects(&first).await;
    let expected = contents(&first).await;

    let middle = Fixture::postgres().await;
    let postgres = middle.open().await;
    let progress = Counted::default();
    let report = first
        .copy_to(&postgres, &progress)
        .await
        .expect("sled to postgres");
    assert_eq!(report.certificates, 28);
    assert_eq!(report.certificates_written, 28);
    assert_eq!(report.audit_entries, expected.1.len() as u64);
    assert_eq!(
        (report.plugin_entries, report.crl_number, report.revocations),
        (2, 41, 2)
    );
    assert_eq!(
        progress.0.lock().expect("lock").first(),
        Some(&("certificates", 28)),
        "progress told"
    );
    assert_eq!(
        contents(&postgres).await,
        expected,
        "postgres holds what sled held"
    );
    assert_eq!(postgres.next_crl_number().await.expect("n"), 42);

    // More issued at the source, then the copy run again: only the rest is written.
    first
        .insert_certificate(&record("77", "late", 9, 2_000))
        .await
        .expect("insert");
    let expected = contents(&first).await;
    let again = first
        .copy_to(&postgres, &Counted::default())
        .await
        .expect("resumed");
    assert_eq!(
        (
            again.certificates,
            again.certificates_written,
            again.audit_written
        ),
        (29, 1, 1)
    );

    let back = Fixture::sled();
    let returned = back.open().await;
    postgres
        .copy_to(&returned, &Counted::default())
        .await
        .expect("postgres to sled");
    let mut round_trip = contents(&returned).await;
    // The CRL Number went on at the PostgreSQL store (42 was taken there).
    assert_eq!(round_trip.3, 42);
    round_trip.3 = expected.3;
    assert_eq!(round_trip, expected, "the round trip changes nothing");
    assert_eq!(
        returned.verify_audit().await.expect("chain"),
        expected.1.len() as u64
    );

    // A store with a history of its own is not merged into.
    let other = Fixture::sled();
    let other_store = other.open().await;
    other_store
        .insert_certificate(&record("99", "other", 1, 2))
        .await
        .expect("insert");
    let refused = first.copy_to(&other_store, &Counted::default()).await;
    assert!(
        matches!(refused, Err(StoreError::AuditBroken(_))),
        "{refused:?}"
    );
    assert!(
        other_store
            .certificate(&s("0a"))
            .await
            .expect("get")
            .is_none(),
        "nothing written into it"
    );

    // A copy that went live since (a revocation made there) is not copied over again: its
    // revocation would be rolled back.
    postgres
        .revoke(&s("0a1"), RevocationReason::KeyCompromise, None, "ops", 5)
        .await
        .expect("revoke on the live copy");
    let refused = first.copy_to(&postgres, &Counted::default()).await;
    assert!(
        matches!(refused, Err(StoreError::AuditBroken(_))),
        "{refused:?}"
    );
    assert!(
        postgres
            .certificate(&s("0a1"))
            .await
            .expect("get")
            .expect("kept")
            .revocation
            .is_some(),
        "the live copy's revocation stays"
    );
}

/// A snapshot of either backend, restored into the other, holds the same records, revocations,
/// chain and plugin entries; its CRL Numbers continue past the gap; a store with a history of
/// its own is not restored into; a snapshot cut short is refused.
async fn a_snapshot_restores_into_the_other_backend(fixture: Fixture) {
    let store = fixture.open().await;
    for i in 0..7 {
        store
            .insert_certificate(&record(&format!("{:02x}", 0x40 + i), "snap", 1, 2_000))
            .await
            .expect("insert");
    }
    store
        .insert_certificate(&record("0d", "abc", 1, 1_000))
        .await
        .expect("insert");
    store
        .revoke(&s("0d"), RevocationReason::KeyCompromise, None, "ops", 3)
        .await
        .expect("revoke");
    store.delete(&s("0d"), "ops", 4).await.expect("delete");
    store
        .plugin_kv_apply("ledger", &[("seen", Some(b"7"))], 1_000)
        .await
        .expect("kv");
    store
        .continue_crl_numbers_from(9)
        .await
        .expect("crl numbers");
    add_acme_objects(&store).await;
    let expected = contents(&store).await;
    let mut snapshot = Vec::new();
    let summary = store.write_snapshot(&mut snapshot).await.expect("snapshot");
    assert_eq!((summary.certificates, summary.audit_entries), (8, 10));

    let other = match fixture {
        Fixture::Sled(_) => Fixture::postgres().await,
        Fixture::Postgres(_) => Fixture::sled(),
    };
    let restored = other.open().await;
    let report = restored
        .restore_snapshot(&mut snapshot.as_slice(), &Counted::default())
        .await
        .expect("restore");
    assert_eq!((report.certificates, report.audit_entries), (8, 10));
    let mut got = contents(&restored).await;
    assert_eq!(got.3, 8 + csrgate_store::RESTORED_CRL_NUMBER_GAP);
    got.3 = expected.3;
    assert_eq!(got, expected);
    // Again: nothing more to write (a finished restore run twice), still verified.
    let again = restored
        .restore_snapshot(&mut snapshot.as_slice(), &Counted::default())
        .await
        .expect("again");
    assert_eq!((again.certificates_written, again.audit_written), (0, 0));

    let busy = Fixture::sled();
    let busy_store = busy.open().await;
    busy_store
        .insert_certificate(&record("99", "own", 1, 2))
        .await
        .expect("insert");
    let refused = busy_store
        .restore_snapshot(&mut snapshot.as_slice(), &Counted::default())
        .await;
    assert!(
        matches!(refused, Err(StoreError::AuditBroken(_))),
        "{refused:?}"
    );

    let cut = &snapshot[..snapshot.len() - 20];
    let fresh = Fixture::sled();
    let cut_short = fresh
        .open()
        .await
        .restore_snapshot(&mut &cut[..], &Counted::default())
        .await;
    assert!(
        matches!(cut_short, Err(StoreError::Corrupt { .. })),
        "{cut_short:?}"
    );
}
