//! Replay nonces (RFC 8555 6.5): HMAC-derived, redeemed once, across replicas and restarts.
//!
//! A nonce is base64url of `issued-at (8 octets, Unix seconds) ‖ 16 random octets ‖ the first
//! 16 octets of HMAC-SHA256(key, the 24 before)`. Handing one out writes nothing; a request's
//! nonce is checked against the MAC and its age ([`NONCE_LIFETIME_SECS`]), then redeemed by an
//! insert-if-absent into the store, which exactly one request (on any replica) wins. The key is
//! made once and kept in the store, so every replica and every restart accepts the others'
//! nonces; redeemed ones are removed once they could no longer be accepted anyway. Why not a
//! stored row per nonce (step-ca) or Boulder's per-instance counters: decision 0033.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use csrgate_store::{AcmeKind, Store, StoreError};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::sign::Signer;

use super::problem::{Problem, ProblemType};

/// How long a nonce is accepted after it was handed out (seconds).
pub(crate) const NONCE_LIFETIME_SECS: i64 = 3600;

/// How often redeemed nonces past their lifetime are removed (seconds).
const PRUNE_EVERY_SECS: i64 = 300;

/// The id of the nonce key among [`AcmeKind::NonceKey`] objects.
const KEY_ID: &str = "hmac";

const STAMP: usize = 8;
const RANDOM: usize = 16;
const MAC: usize = 16;

/// The nonce key (loaded from the store once) and when redeemed nonces were last pruned.
#[derive(Default)]
pub(crate) struct Nonces {
    key: OnceLock<PKey<Private>>,
    last_prune: AtomicI64,
}

impl Nonces {
    /// The shared key: the store's, made there by the first replica that needed one.
    async fn key(&self, store: &Store) -> Result<&PKey<Private>, StoreError> {
        if let Some(key) = self.key.get() {
            return Ok(key);
        }
        let mut fresh = [0u8; 32];
        openssl::rand::rand_bytes(&mut fresh)
            .map_err(|e| StoreError::Unavailable(format!("no randomness: {e}")))?;
        store
            .acme_insert(AcmeKind::NonceKey, KEY_ID, &fresh)
            .await?;
        let stored = store
            .acme_get(AcmeKind::NonceKey, KEY_ID)
            .await?
            .and_then(|bytes| <[u8; 32]>::try_from(bytes.as_slice()).ok())
            .ok_or_else(|| StoreError::Corrupt {
                key: "acme nonce key".into(),
                reason: "not 32 octets".into(),
            })?;
        let key =
            PKey::hmac(&stored).map_err(|e| StoreError::Unavailable(format!("HMAC key: {e}")))?;
        Ok(self.key.get_or_init(|| key))
    }

    /// A new nonce.
    ///
    /// # Errors
    /// The store cannot give the key (the first time only).
    pub(crate) async fn issue(&self, store: &Store, now: i64) -> Result<String, StoreError> {
        let key = self.key(store).await?;
        let mut nonce = [0u8; STAMP + RANDOM + MAC];
        nonce[..STAMP].copy_from_slice(&(now as u64).to_be_bytes());
        openssl::rand::rand_bytes(&mut nonce[STAMP..STAMP + RANDOM])
            .map_err(|e| StoreError::Unavailable(format!("no randomness: {e}")))?;
        let mac = mac(key, &nonce[..STAMP + RANDOM])?;
        nonce[STAMP + RANDOM..].copy_from_slice(&mac[..MAC]);
        Ok(URL_SAFE_NO_PAD.encode(nonce))
    }

    /// Accepts `nonce` once: made by this CA (any replica), not older than
    /// [`NONCE_LIFETIME_SECS`], never redeemed before; else `badNonce` (RFC 8555 6.5), which
    /// clients answer by retrying with the fresh nonce of the answer.
    pub(crate) async fn redeem(&self, store: &Store, nonce: &str, now: i64) -> Result<(), Problem> {
        let bad = |why: &str| {
            Problem::new(
                ProblemType::BadNonce,
                format!("{why}; retry with the Replay-Nonce of this answer"),
            )
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(nonce)
            .ok()
            .filter(|bytes| bytes.len() == STAMP + RANDOM + MAC)
            .ok_or_else(|| bad("the nonce was not made by this server"))?;
        let key = self.key(store).await?;
        let mac = mac(key, &bytes[..STAMP + RANDOM])?;
        if !openssl::memcmp::eq(&mac[..MAC], &bytes[STAMP + RANDOM..]) {
            return Err(bad("the nonce was not made by this server"));
        }
        let mut stamp = [0u8; STAMP];
        stamp.copy_from_slice(&bytes[..STAMP]);
        let issued_at = u64::from_be_bytes(stamp) as i64;
        if issued_at > now + 60 || now - issued_at > NONCE_LIFETIME_SECS {
            return Err(bad("the nonce has expired"));
        }
        let id = format!("{:016x}.{nonce}", issued_at as u64);
        if !store.acme_insert(AcmeKind::RedeemedNonce, &id, b"").await? {
            return Err(bad("the nonce was used already"));
        }
        self.prune_now_and_then(store, now).await;
        Ok(())
    }

    /// Removes redeemed nonces past their lifetime, at most every [`PRUNE_EVERY_SECS`] per
    /// process. A failure only leaves them for the next time.
    async fn prune_now_and_then(&self, store: &Store, now: i64) {
        let last = self.last_prune.load(Ordering::Relaxed);
        if now - last < PRUNE_EVERY_SECS
            || self
                .last_prune
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let bound = format!("{:016x}", (now - NONCE_LIFETIME_SECS - 60).max(0) as u64);
        match store
            .acme_remove_below(AcmeKind::RedeemedNonce, &bound)
            .await
        {
            Ok(removed) => tracing::debug!(removed, "expired ACME nonces removed"),
            Err(error) => tracing::warn!(%error, "cannot remove expired ACME nonces"),
        }
    }
}

fn mac(key: &PKey<Private>, data: &[u8]) -> Result<Vec<u8>, StoreError> {
    let crypto = |e: openssl::error::ErrorStack| StoreError::Unavailable(format!("HMAC: {e}"));
    let mut signer = Signer::new(MessageDigest::sha256(), key).map_err(crypto)?;
    signer.update(data).map_err(crypto)?;
    signer.sign_to_vec().map_err(crypto)
}
