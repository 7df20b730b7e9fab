//! The published CRL: built from the store's revoked entries, signed, and served from memory.
//! Rebuilt after every revocation and in the background at half its validity, so it is never
//! stale (tiny-ca's CRL was stale until someone refreshed it). With replicas on PostgreSQL, one
//! builds at a time, the others adopt what it stored when they hear of it (LISTEN/NOTIFY), and
//! a refresh reuses a CRL another replica built recently instead of building one more.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use csrgate_pki::{CrlEntry, Identity, ValidityPeriod};
use csrgate_store::{RevokedEntry, Store, StoredCrl};
use time::OffsetDateTime;

/// One signed CRL, with the HTTP validators computed once.
#[derive(Debug)]
pub struct PublishedCrl {
    /// CRL Number (RFC 5280 5.2.3).
    pub number: u64,
    /// DER.
    pub der: Vec<u8>,
    /// PEM.
    pub pem: String,
    /// thisUpdate.
    pub this_update: OffsetDateTime,
    /// nextUpdate.
    pub next_update: OffsetDateTime,
    /// Entries listed.
    pub entries: usize,
    /// Strong ETag: `"crl-<CRL Number>"`. Last-Modified is thisUpdate.
    pub etag: actix_web::http::header::EntityTag,
}

/// Builds and holds the current CRL.
#[derive(Debug)]
pub struct CrlPublisher {
    current: RwLock<Option<Arc<PublishedCrl>>>,
    validity: ValidityPeriod,
    /// Serialises rebuilds so numbers are published in order.
    building: tokio::sync::Mutex<()>,
    /// Rebuilds that failed since start (metric `crl_build_failures_total`).
    failures: AtomicU64,
}

impl CrlPublisher {
    /// A publisher whose CRLs are valid for `validity` (nextUpdate - thisUpdate).
    pub fn new(validity: ValidityPeriod) -> Self {
        CrlPublisher {
            current: RwLock::new(None),
            validity,
            building: tokio::sync::Mutex::new(()),
            failures: AtomicU64::new(0),
        }
    }

    /// How many rebuilds failed since start; the last good CRL stays published meanwhile.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// The CRL being served, if one was built.
    pub fn current(&self) -> Option<Arc<PublishedCrl>> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Builds, signs and publishes a new CRL from the store's revoked entries. Fails closed: a
    /// revoked entry that cannot be read stops the rebuild (logged with its serial and counted),
    /// and the last good CRL stays published, since a CRL that left an entry out would tell
    /// relying parties a revoked certificate is good.
    pub async fn rebuild(
        &self,
        identity: &Identity,
        store: &Store,
    ) -> Result<Arc<PublishedCrl>, String> {
        let outcome = self.try_rebuild(identity, store).await;
        // The callers log the error (it names the serial); here it is counted.
        if outcome.is_err() {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        outcome
    }

    /// Publishes a CRL another replica built moments ago (thisUpdate within the last eighth of
    /// a CRL's validity), or builds one: what the background refresh and the start-up do, so
    /// that replicas refreshing together build one CRL between them. Their timers agree (each
    /// is due half a validity after the CRL it serves); the first to take the store's lock
    /// builds, the others find its CRL newer than the eighth and reuse it. On sled it always
    /// builds.
    pub async fn refresh(
        &self,
        identity: &Identity,
        store: &Store,
    ) -> Result<Arc<PublishedCrl>, String> {
        let eighth: time::Duration = self.validity.as_duration() / 8;
        let fresh_since = (OffsetDateTime::now_utc() - eighth).unix_timestamp();
        let outcome = self.issue(identity, store, Some(fresh_since)).await;
        if outcome.is_err() {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        outcome
    }

    /// Serves the newest CRL in the store when it is newer than the one served: another replica
    /// built it. `Ok(None)` when there is nothing newer.
    pub async fn adopt_latest(&self, store: &Store) -> Result<Option<Arc<PublishedCrl>>, String> {
        let Some(stored) = store.latest_crl().await.map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        if self.current().is_some_and(|c| c.number >= stored.number) {
            return Ok(None);
        }
        let published = self.install(stored)?;
        tracing::info!(
            number = published.number,
            entries = published.entries,
            "CRL from another replica published"
        );
        Ok(Some(published))
    }

    async fn try_rebuild(
        &self,
        identity: &Identity,
        store: &Store,
    ) -> Result<Arc<PublishedCrl>, String> {
        self.issue(identity, store, None).await
    }

    /// Has the store build (or, from `fresh_since` on, reuse) a CRL signed by `identity`, and
    /// serves it.
    async fn issue(
        &self,
        identity: &Identity,
        store: &Store,
        fresh_since: Option<i64>,
    ) -> Result<Arc<PublishedCrl>, String> {
        let _serialised = self.building.lock().await;
        let now = OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap_or_else(|_| OffsetDateTime::now_utc());
        let next_update = (now + self.validity.as_duration()).min(identity.summary().not_after);
        let sign = Box::new(move |revoked: &[RevokedEntry], number: u64| {
            let entries = revoked
                .iter()
                .map(crl_entry)
                .collect::<Result<Vec<CrlEntry>, String>>()?;
            let crl = identity
                .sign_crl(&entries, number, now, next_update)
                .map_err(|e| e.to_string())?;
            Ok(StoredCrl {
                number: crl.number,
                this_update: crl.this_update.unix_timestamp(),
                next_update: crl.next_update.unix_timestamp(),
                entries: crl.entries,
                der: crl.der,
                pem: crl.pem,
            })
        });
        let stored = store
            .issue_crl(now.unix_timestamp(), fresh_since, sign)
            .await
            .map_err(|e| e.to_string())?;
        if self.current().is_some_and(|c| c.number >= stored.number) {
            // Reused, and already served (another replica's, adopted when announced).
            return self.current().ok_or_else(|| "no CRL".to_owned());
        }
        let published = self.install(stored)?;
        tracing::info!(number = published.number, entries = published.entries, next_update = %published.next_update, "CRL published");
        Ok(published)
    }

    /// Serves `stored` from now on, unless a CRL with a higher number is served already; returns
    /// the one served.
    fn install(&self, stored: StoredCrl) -> Result<Arc<PublishedCrl>, String> {
        let time = |unix: i64| {
            OffsetDateTime::from_unix_timestamp(unix).map_err(|e| format!("stored CRL time: {e}"))
        };
        let published = Arc::new(PublishedCrl {
            number: stored.number,
            etag: actix_web::http::header::EntityTag::new_strong(format!("crl-{}", stored.number)),
            this_update: time(stored.this_update)?,
            next_update: time(stored.next_update)?,
            entries: stored.entries,
            der: stored.der,
            pem: stored.pem,
        });
        // Adopting another replica's CRL and publishing our own run concurrently: whichever
        // installs last, the highest CRL Number is what stays served.
        let mut guard = match self.current.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        match guard.as_ref() {
            Some(current) if current.number >= published.number => Ok(Arc::clone(current)),
            _ => {
                *guard = Some(Arc::clone(&published));
                Ok(published)
            }
        }
    }

    /// How long until the current CRL should be rebuilt (half its validity after thisUpdate).
    pub fn refresh_in(&self) -> Duration {
        let Some(current) = self.current() else {
            return Duration::ZERO;
        };
        let half = (current.next_update - current.this_update) / 2;
        let due = current.this_update + half;
        let wait = due - OffsetDateTime::now_utc();
        Duration::try_from(wait)
            .unwrap_or(Duration::ZERO)
            .max(Duration::from_secs(1))
    }
}

/// One stored revocation as a CRL entry (RFC 5280 5.3: reasonCode, invalidityDate), or an error
/// naming the serial when a date cannot be written. Never skipped and never defaulted. (The
/// serial and reason are typed in the store: an unreadable one fails the read of the entries,
/// before this.)
fn crl_entry(entry: &RevokedEntry) -> Result<CrlEntry, String> {
    let unreadable = |what: &str| {
        format!(
            "the revocation of serial {} cannot be read ({what}); the CRL would leave it out",
            entry.serial
        )
    };
    Ok(CrlEntry {
        serial: entry.serial.clone(),
        revoked_at: OffsetDateTime::from_unix_timestamp(entry.revoked_at)
            .map_err(|_| unreadable("revocation date"))?,
        reason: entry.reason,
        invalidity_date: entry
            .invalidity_date
            .map(OffsetDateTime::from_unix_timestamp)
            .transpose()
            .map_err(|_| unreadable("invalidity date"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use csrgate_pki::{RevocationReason, Serial};

    /// Every part of a stored revocation is read, or the entry is an error naming its serial.
    #[test]
    fn unreadable_revocations_are_errors_not_omissions() {
        let good = RevokedEntry {
            serial: "40".repeat(20).parse().expect("serial"),
            revoked_at: 1_767_323_045,
            reason: RevocationReason::KeyCompromise,
            invalidity_date: Some(1_767_300_000),
            not_after: 1_800_000_000,
        };
        let entry = crl_entry(&good).expect("readable");
        assert_eq!(entry.reason, RevocationReason::KeyCompromise);
        assert_eq!(entry.serial, good.serial);
        assert_eq!(
            entry.invalidity_date.map(OffsetDateTime::unix_timestamp),
            good.invalidity_date
        );
        /// Damages one field of a stored revocation.
        type Damage = fn(&mut RevokedEntry);
        let broken: [(&str, Damage); 2] = [
            ("revocation date", |e| e.revoked_at = i64::MAX),
            ("invalidity date", |e| e.invalidity_date = Some(i64::MIN)),
        ];
        for (what, damage) in broken {
            let mut entry = good.clone();
            damage(&mut entry);
            let error = crl_entry(&entry).expect_err(what);
            assert!(
                error.contains(what) && error.contains(&entry.serial.to_string()),
                "{error}"
            );
        }
    }

    /// A certificate recorded and revoked straight through the store, at `revoked_at` (Unix
    /// seconds; the store takes any, as a store written by another version could hold).
    async fn revoke_one(store: &Store, revoked_at: i64) -> Serial {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let serial = csrgate_pki::generate_serial().expect("serial");
        let record = csrgate_store::CertificateRecord {
            serial: serial.clone(),
            client_hash: "crl".into(),
            subject: "CN=crl".into(),
            subject_alt_names: Vec::new(),
            public_key_sha1: "00".repeat(20),
            sha256_fingerprint: "00".repeat(32),
            not_before: now,
            not_after: now + 86_400,
            issued_at: now,
            status: csrgate_store::CertificateStatus::Valid,
            der: vec![0x30; 16],
            revocation: None,
            deleted: false,
            replaces: None,
            replaced_by: None,
        };
        store.insert_certificate(&record).await.expect("insert");
        store
            .revoke(
                &serial,
                RevocationReason::KeyCompromise,
                None,
                "test",
                revoked_at,
            )
            .await
            .expect("revoke");
        serial
    }

    /// Fail closed: a revocation the CRL cannot list stops the rebuild; the last good CRL stays
    /// published and the failure is counted.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unreadable_revocation_keeps_the_last_good_crl() {
        let dir = tempfile::tempdir().expect("tmp");
        let identity = Identity::create(
            &dir.path().join("ca"),
            &csrgate_pki::IdentityRequest {
                subject: csrgate_pki::DistinguishedName::from_fields(&[("CN", "CRL test CA")])
                    .expect("dn"),
                validity: ValidityPeriod::days(30),
                key: csrgate_pki::KeySpec::EcP256,
                path_len: None,
            },
            &csrgate_pki::Passphrase::new("crl test".into()).expect("passphrase"),
            None,
        )
        .expect("identity");
        let store = Store::open(&dir.path().join("data")).expect("store");
        let publisher = CrlPublisher::new(ValidityPeriod::days(7));

        revoke_one(&store, OffsetDateTime::now_utc().unix_timestamp()).await;
        let good = publisher
            .rebuild(&identity, &store)
            .await
            .expect("good CRL");
        assert_eq!(good.entries, 1);
        let unreadable = revoke_one(&store, i64::MAX).await;
        let error = publisher
            .rebuild(&identity, &store)
            .await
            .expect_err("an unreadable entry is not left out");
        assert!(
            error.contains(&unreadable.to_string()) && error.contains("revocation date"),
            "{error}"
        );
        let current = publisher.current().expect("still published");
        assert_eq!(current.etag, good.etag, "the last good CRL was replaced");
        assert_eq!(publisher.failures(), 1);
    }
}
