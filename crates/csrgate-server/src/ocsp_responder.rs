//! The OCSP responder (RFC 6960, with RFC 5019's profile for caching): `POST /ocsp` and
//! `GET /ocsp/<base64 request>`. Answers for a single known CertID without a nonce are signed
//! once and kept (the status they were signed for, thisUpdate and nextUpdate) until that status
//! changes or half of their validity has passed, so a busy responder signs nothing per request; a request with a
//! nonce, or with several CertIDs, is signed when it arrives. The status is read from the store
//! on every request (two point reads), so a revocation is answered at once and no cache can
//! say good of a revoked certificate.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use csrgate_pki::{
    CertId, CertStatus, Identity, OcspErrorStatus, OcspRequest, OcspSigner, Passphrase,
    ValidityPeriod,
};
use csrgate_store::{RevocationStatus, Store};
use time::OffsetDateTime;

use crate::Gateway;

/// Answers kept at most. S3-FIFO eviction (quick_cache) keeps the certificates asked about
/// often when a scan of random serials passes through.
const CACHE_ENTRIES: usize = 100_000;

/// The largest request body accepted: a request for 16 CertIDs with a nonce is under 2 KiB.
const MAX_REQUEST_BYTES: usize = 16 * 1024;

/// The media types of RFC 6960 appendix C.
const OCSP_REQUEST: &str = "application/ocsp-request";
const OCSP_RESPONSE: &str = "application/ocsp-response";

/// A delegated responder is renewed when less than this part of its validity is left.
const RENEW_WHEN_LEFT: f64 = 1.0 / 3.0;

/// How a delegated responder certificate is renewed: where its files are, the passphrase that
/// encrypts its key (the CA's, when the CA key is encrypted), and for how long a new one is valid.
#[derive(Debug)]
pub struct DelegatedRenewal {
    /// The identity directory holding `ocsp-signer.crt` and `ocsp-signer.key`.
    pub dir: PathBuf,
    /// Encrypts the new key; `None` leaves it unencrypted (as the CA key is).
    pub passphrase: Option<Arc<Passphrase>>,
    /// Validity of each new responder certificate.
    pub validity: ValidityPeriod,
}

/// One signed answer, kept for the CertID it answers.
#[derive(Debug)]
struct CachedAnswer {
    status: CertStatus,
    der: web::Bytes,
    this_update: OffsetDateTime,
    next_update: OffsetDateTime,
}

/// What the responder said, for the HTTP layer and the metrics.
#[derive(Debug)]
pub struct OcspAnswer {
    der: web::Bytes,
    /// thisUpdate and nextUpdate of a successful answer that HTTP caches may keep (no nonce).
    cacheable: Option<(OffsetDateTime, OffsetDateTime)>,
    /// `cached`, `signed`, `malformed`, `unauthorized`, `unavailable`.
    outcome: &'static str,
}

impl OcspAnswer {
    /// The DER OCSPResponse.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// `cached` (a kept answer, no signature), `signed`, `malformed`, `unauthorized` or
    /// `unavailable` (internalError or tryLater).
    pub fn outcome(&self) -> &'static str {
        self.outcome
    }
}

/// The responder: the current signer and the answers signed so far.
pub struct OcspResponder {
    signer: RwLock<Option<Arc<OcspSigner>>>,
    cache: quick_cache::sync::Cache<CertId, Arc<CachedAnswer>>,
    validity: ValidityPeriod,
    ca_not_after: OffsetDateTime,
    renewal: Option<DelegatedRenewal>,
}

impl std::fmt::Debug for OcspResponder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OcspResponder")
            .field("validity", &self.validity)
            .field("renewal", &self.renewal)
            .finish_non_exhaustive()
    }
}

impl OcspResponder {
    /// A responder signing with `signer` (`None`: every request gets `tryLater` until one is
    /// installed), whose answers are valid for `validity` (the CRL's period) but never past
    /// the CA certificate (`ca_not_after`).
    pub fn new(
        signer: Option<OcspSigner>,
        validity: ValidityPeriod,
        ca_not_after: OffsetDateTime,
        renewal: Option<DelegatedRenewal>,
    ) -> Self {
        OcspResponder {
            signer: RwLock::new(signer.map(Arc::new)),
            cache: quick_cache::sync::Cache::new(CACHE_ENTRIES),
            validity,
            ca_not_after,
            renewal,
        }
    }

    /// Signs with `signer` from now on; answers signed by the previous one are dropped.
    pub fn install(&self, signer: OcspSigner) {
        let signer = Arc::new(signer);
        match self.signer.write() {
            Ok(mut guard) => *guard = Some(signer),
            Err(poisoned) => *poisoned.into_inner() = Some(signer),
        }
        self.cache.clear();
    }

    fn signer(&self) -> Option<Arc<OcspSigner>> {
        match self.signer.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The answer to one DER OCSPRequest. Never fails: what cannot be answered is an unsigned
    /// error response (malformedRequest, unauthorized for another CA's CertID, internalError
    /// when the store cannot be read, tryLater without a signer).
    pub async fn answer(&self, request: &[u8], store: &Store) -> OcspAnswer {
        let error = |status: OcspErrorStatus, outcome| OcspAnswer {
            der: web::Bytes::from(status.response_der()),
            cacheable: None,
            outcome,
        };
        let request = match OcspRequest::parse(request) {
            Ok(request) => request,
            Err(why) => {
                tracing::debug!(%why, "OCSP request refused");
                return error(OcspErrorStatus::MalformedRequest, "malformed");
            }
        };
        let Some(signer) = self.signer() else {
            return error(OcspErrorStatus::TryLater, "unavailable");
        };
        if !request.cert_ids.iter().all(|id| signer.answers_for(id)) {
            return error(OcspErrorStatus::Unauthorized, "unauthorized");
        }
        let mut entries = Vec::with_capacity(request.cert_ids.len());
        for id in &request.cert_ids {
            match status_of(store, id).await {
                Ok(status) => entries.push((id, status)),
                Err(why) => {
                    tracing::error!(serial = %id.serial, %why, "OCSP status unreadable");
                    return error(OcspErrorStatus::InternalError, "unavailable");
                }
            }
        }
        let now = now();
        let cacheable = request.nonce.is_none() && entries.len() == 1;
        if cacheable
            && let [(id, status)] = entries.as_slice()
            && let Some(kept) = self.cache.get(*id)
            && kept.status == *status
            && now < kept.this_update + (kept.next_update - kept.this_update) / 2
        {
            return OcspAnswer {
                der: kept.der.clone(),
                cacheable: Some((kept.this_update, kept.next_update)),
                outcome: "cached",
            };
        }
        // Never valid past the CA, nor past a delegated signer's certificate: an answer its
        // signer's expiry invalidates would fail for every client that kept it.
        let mut next_update = (now + self.validity.as_duration()).min(self.ca_not_after);
        if let Some(delegated) = signer.delegated_responder() {
            next_update = next_update.min(delegated.not_after);
        }
        let signed = signer.sign_response(&entries, request.nonce.as_deref(), now, next_update);
        let der = match signed {
            Ok(der) => web::Bytes::from(der),
            Err(why) => {
                tracing::error!(%why, "OCSP response not signed");
                return error(OcspErrorStatus::InternalError, "unavailable");
            }
        };
        // Unknown serials are signed but not kept: a scan of random serials would otherwise
        // fill the cache with answers nobody asks for twice.
        if cacheable
            && let [(id, status)] = entries.as_slice()
            && *status != CertStatus::Unknown
        {
            self.cache.insert(
                (*id).clone(),
                Arc::new(CachedAnswer {
                    status: *status,
                    der: der.clone(),
                    this_update: now,
                    next_update,
                }),
            );
        }
        OcspAnswer {
            der,
            cacheable: cacheable.then_some((now, next_update)),
            outcome: "signed",
        }
    }

    /// How long until the delegated responder should be renewed (`None`: CA-signed, nothing to
    /// renew). Zero when it is due now (or there is none yet).
    pub fn renewal_in(&self) -> Option<Duration> {
        self.renewal.as_ref()?;
        let Some(delegated) = self.signer().and_then(|s| s.delegated_responder().cloned()) else {
            return Some(Duration::ZERO);
        };
        let life = delegated.not_after - delegated.not_before;
        let due = delegated.not_after - life * RENEW_WHEN_LEFT;
        Some(Duration::try_from(due - OffsetDateTime::now_utc()).unwrap_or(Duration::ZERO))
    }

    /// Issues a new delegated responder certificate (files replaced in the identity
    /// directory) and signs with it from now on. Errors: the message of the failed step.
    pub fn renew(&self, identity: &Identity) -> Result<(), String> {
        let Some(renewal) = &self.renewal else {
            return Ok(());
        };
        let signer = identity
            .issue_ocsp_signer(
                &renewal.dir,
                renewal.passphrase.as_deref(),
                renewal.validity,
            )
            .map_err(|e| e.to_string())?;
        if let Some(delegated) = signer.delegated_responder() {
            tracing::info!(serial = %delegated.serial, not_after = %delegated.not_after, "OCSP responder certificate renewed");
        }
        self.install(signer);
        Ok(())
    }
}

/// The store's status of the CertID's serial. Fails closed: a revocation that cannot be read
/// (the store's `Corrupt`, a date out of range) is an error, never `good`.
async fn status_of(store: &Store, id: &CertId) -> Result<CertStatus, String> {
    Ok(
        match store
            .revocation_status(&id.serial)
            .await
            .map_err(|e| e.to_string())?
        {
            RevocationStatus::Good => CertStatus::Good,
            RevocationStatus::Unknown => CertStatus::Unknown,
            RevocationStatus::Revoked(entry) => CertStatus::Revoked {
                revocation_time: OffsetDateTime::from_unix_timestamp(entry.revoked_at)
                    .map_err(|e| format!("revocation time: {e}"))?,
                reason: entry.reason,
            },
        },
    )
}

fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0).unwrap_or(now)
}

/// The routes: `POST /ocsp` (and `POST /ocsp/`, where some clients put the request) and
/// `GET /ocsp/<base64>` (RFC 6960 A.1: the base64 DER, URL-encoded, as the last path part).
pub(crate) fn configure(config: &mut web::ServiceConfig) {
    config
        .route("/ocsp", web::post().to(post))
        .route("/ocsp/", web::post().to(post))
        .route("/ocsp/{request:.+}", web::get().to(get));
}

async fn post(request: HttpRequest, body: web::Bytes, gateway: web::Data<Gateway>) -> HttpResponse {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if !media_type.eq_ignore_ascii_case(OCSP_REQUEST) {
        tracing::debug!(content_type, "OCSP POST without application/ocsp-request");
    }
    respond(&gateway, &body).await
}

async fn get(request: HttpRequest, gateway: web::Data<Gateway>) -> HttpResponse {
    // The raw path: actix decodes %2F into '/', which base64 also uses, so decode ourselves.
    let raw = request
        .uri()
        .path()
        .strip_prefix("/ocsp/")
        .unwrap_or_default();
    let decoded = percent_encoding::percent_decode_str(raw).collect::<Vec<u8>>();
    let der = decode_base64(&decoded);
    respond(&gateway, &der.unwrap_or_default()).await
}

/// Standard base64 with or without padding; also the URL-safe alphabet some clients send.
fn decode_base64(text: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
}

async fn respond(gateway: &Gateway, request: &[u8]) -> HttpResponse {
    let answer = if request.len() > MAX_REQUEST_BYTES {
        OcspAnswer {
            der: web::Bytes::from(OcspErrorStatus::MalformedRequest.response_der()),
            cacheable: None,
            outcome: "malformed",
        }
    } else {
        gateway.ocsp().answer(request, gateway.store()).await
    };
    gateway.metrics().count_ocsp(answer.outcome());
    let mut response = HttpResponse::Ok();
    response.content_type(OCSP_RESPONSE);
    match answer.cacheable {
        // RFC 5019 6.2: caches may keep a response until nextUpdate.
        Some((this_update, next_update)) => {
            let max_age = (next_update - OffsetDateTime::now_utc())
                .whole_seconds()
                .max(0);
            response
                .insert_header((
                    header::CACHE_CONTROL,
                    format!("max-age={max_age}, public, no-transform, must-revalidate"),
                ))
                .insert_header((
                    header::LAST_MODIFIED,
                    header::HttpDate::from(std::time::SystemTime::from(this_update)),
                ))
                .insert_header((
                    header::EXPIRES,
                    header::HttpDate::from(std::time::SystemTime::from(next_update)),
                ))
                .insert_header((
                    header::ETAG,
                    format!("\"{}\"", hex::encode(openssl::sha::sha1(&answer.der))),
                ));
        }
        None => {
            response.insert_header((header::CACHE_CONTROL, "no-store"));
        }
    }
    response.body(answer.der)
}
