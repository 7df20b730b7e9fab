//! The published CRL: built from the store's revoked entries, signed, and served from memory.
//! Rebuilt after every revocation and in the background at half its validity, so it is never
//! stale (tiny-ca's CRL was stale until someone refreshed it).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use csrgate_pki::{CrlEntry, Identity, RevocationReason, Serial, ValidityPeriod};
use csrgate_store::Store;
use time::OffsetDateTime;

/// One signed CRL, with the HTTP validators computed once.
#[derive(Debug)]
pub struct PublishedCrl {
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
    /// Strong ETag: the CRL Number.
    pub etag: String,
    /// HTTP date of thisUpdate.
    pub last_modified: String,
}

/// Builds and holds the current CRL.
#[derive(Debug)]
pub struct CrlPublisher {
    current: RwLock<Option<Arc<PublishedCrl>>>,
    validity: ValidityPeriod,
    /// Serialises rebuilds so numbers are published in order.
    building: tokio::sync::Mutex<()>,
}

impl CrlPublisher {
    /// A publisher whose CRLs are valid for `validity` (nextUpdate - thisUpdate).
    pub fn new(validity: ValidityPeriod) -> Self {
        CrlPublisher {
            current: RwLock::new(None),
            validity,
            building: tokio::sync::Mutex::new(()),
        }
    }

    /// The CRL being served, if one was built.
    pub fn current(&self) -> Option<Arc<PublishedCrl>> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Builds, signs and publishes a new CRL from the store's revoked entries.
    pub async fn rebuild(
        &self,
        identity: &Identity,
        store: &Store,
    ) -> Result<Arc<PublishedCrl>, String> {
        let _serialised = self.building.lock().await;
        let now = OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap_or_else(|_| OffsetDateTime::now_utc());
        let entries: Vec<CrlEntry> = store
            .revoked_entries(now.unix_timestamp())
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter_map(|entry| {
                Some(CrlEntry {
                    serial: entry.serial.parse::<Serial>().ok()?,
                    revoked_at: OffsetDateTime::from_unix_timestamp(entry.revoked_at).ok()?,
                    reason: entry
                        .reason
                        .parse::<RevocationReason>()
                        .unwrap_or(RevocationReason::Unspecified),
                    invalidity_date: entry
                        .invalidity_date
                        .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok()),
                })
            })
            .collect();
        let number = store.next_crl_number().await.map_err(|e| e.to_string())?;
        let next_update = (now + self.validity.as_duration()).min(identity.summary().not_after);
        let crl = identity
            .sign_crl(&entries, number, now, next_update)
            .map_err(|e| e.to_string())?;
        let published = Arc::new(PublishedCrl {
            etag: format!("\"crl-{}\"", crl.number),
            last_modified: http_date(now),
            der: crl.der,
            pem: crl.pem,
            this_update: crl.this_update,
            next_update: crl.next_update,
            entries: crl.entries,
        });
        match self.current.write() {
            Ok(mut guard) => *guard = Some(Arc::clone(&published)),
            Err(poisoned) => *poisoned.into_inner() = Some(Arc::clone(&published)),
        }
        tracing::info!(number, entries = published.entries, next_update = %published.next_update, "CRL published");
        Ok(published)
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

/// RFC 7231 IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
fn http_date(t: OffsetDateTime) -> String {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        DAYS[t.weekday().number_days_from_monday() as usize],
        t.day(),
        MONTHS[usize::from(u8::from(t.month())) - 1],
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn http_dates_are_imf_fixdate() {
        assert_eq!(
            super::http_date(time::macros::datetime!(1994-11-06 08:49:37 UTC)),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
    }
}
