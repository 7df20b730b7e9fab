//! Admin endpoints (bearer token) and the public CRL endpoints.

use actix_web::http::header::{self, Header as _};
use actix_web::{HttpRequest, HttpResponse, web};
use csrgate_pki::Serial;
use csrgate_store::{CertificateRecord, CertificateStatus};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::Gateway;
use crate::admin::Admin;
use crate::admin_bodies::{
    BundleFormat, GenerateRequest, RenewRequest, RevokeRequest, bad_request,
};
use crate::api_error::ApiError;
use crate::error_code::ErrorCode;

/// The public CRL endpoints.
pub(crate) fn configure_public(config: &mut web::ServiceConfig) {
    config
        .route("/crl", web::get().to(crl_der))
        .route("/crl.pem", web::get().to(crl_pem))
        .route("/crl/root.pem", web::get().to(crl_root_pem))
        .route("/crl-chain.pem", web::get().to(crl_chain_pem));
}

/// The admin API.
pub(crate) fn configure_admin(config: &mut web::ServiceConfig) {
    config
        .route("/audit", web::get().to(audit))
        .route("/store/snapshot", web::post().to(snapshot))
        .route("/metrics", web::get().to(metrics))
        .route("/certificates", web::get().to(list))
        .route("/certificates/expiring", web::get().to(expiring))
        .route("/certificates/generate", web::post().to(generate))
        .route("/certificates/cosign", web::post().to(cosign))
        .route("/certificates/{serial}", web::get().to(show))
        .route("/certificates/{serial}/renew", web::post().to(renew))
        .route("/certificates/{serial}/chain.pem", web::get().to(chain_pem))
        .route("/certificates/{serial}", web::delete().to(delete))
        .route("/certificates/{serial}/revoke", web::post().to(revoke));
}

pub(crate) fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// A certificate as the admin API shows it; `status` is computed on read.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct CertificateView {
    serial: String,
    client_hash: String,
    status: &'static str,
    subject: String,
    subject_alt_names: Vec<String>,
    not_before: String,
    not_after: String,
    issued_at: String,
    sha256_fingerprint: String,
    public_key_sha1: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    revocation: Option<RevocationView>,
    deleted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    replaces: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    replaced_by: Option<String>,
    pem: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct RevocationView {
    reason: String,
    revoked_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    invalidity_date: Option<String>,
    actor: String,
}

fn view(record: CertificateRecord) -> CertificateView {
    let status = status_of(&record, OffsetDateTime::now_utc().unix_timestamp());
    CertificateView {
        replaces: record.replaces.as_ref().map(Serial::to_string),
        replaced_by: record.replaced_by.as_ref().map(Serial::to_string),
        status,
        pem: csrgate_pki::certificate_pem_from_der(&record.der).unwrap_or_default(),
        not_before: rfc3339(record.not_before),
        not_after: rfc3339(record.not_after),
        issued_at: rfc3339(record.issued_at),
        revocation: record.revocation.map(|r| RevocationView {
            reason: r.reason.to_string(),
            revoked_at: rfc3339(r.revoked_at),
            invalidity_date: r.invalidity_date.map(rfc3339),
            actor: r.actor,
        }),
        serial: record.serial.to_string(),
        client_hash: record.client_hash,
        subject: record.subject,
        subject_alt_names: record.subject_alt_names,
        sha256_fingerprint: record.sha256_fingerprint,
        public_key_sha1: record.public_key_sha1,
        deleted: record.deleted,
    }
}

/// The record named by a path's serial, or 400 (not a serial) / 404 (unknown).
async fn stored(gateway: &Gateway, serial: &str) -> Result<CertificateRecord, ApiError> {
    let serial = parse_serial(serial)?;
    gateway
        .store()
        .certificate(&serial)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no certificate with serial {serial}")))
}

fn parse_serial(text: &str) -> Result<Serial, ApiError> {
    text.parse::<Serial>().map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidSerial,
            format!("{text:?} is not a serial number in hex"),
        )
    })
}

#[utoipa::path(
    get,
    path = "/certificates/{serial}",
    tag = "admin",
    security(("bearer" = [])),
    params(("serial" = String, Path, description = "serial number, hex")),
    responses(
        (status = 200, description = "the certificate", body = CertificateView),
        (status = 401, description = "unauthorized: no bearer token", body = crate::api_error::ErrorBody),
        (status = 403, description = "forbidden: wrong token", body = crate::api_error::ErrorBody),
        (status = 404, description = "not_found", body = crate::api_error::ErrorBody),
    )
)]
pub(crate) async fn show(
    _admin: Admin,
    path: web::Path<String>,
    gateway: web::Data<Gateway>,
) -> Result<HttpResponse, ApiError> {
    let record = stored(&gateway, &path).await?;
    Ok(HttpResponse::Ok().json(view(record)))
}

#[utoipa::path(
    get,
    path = "/certificates/{serial}/chain.pem",
    tag = "admin",
    security(("bearer" = [])),
    params(("serial" = String, Path, description = "serial number, hex")),
    responses(
        (status = 200, description = "the certificate followed by the CA chain", content_type = "application/pem-certificate-chain", body = String),
        (status = 401, description = "unauthorized", body = crate::api_error::ErrorBody),
        (status = 404, description = "not_found", body = crate::api_error::ErrorBody),
    )
)]
pub(crate) async fn chain_pem(
    _admin: Admin,
    path: web::Path<String>,
    gateway: web::Data<Gateway>,
) -> Result<HttpResponse, ApiError> {
    let record = stored(&gateway, &path).await?;
    let leaf = csrgate_pki::certificate_pem_from_der(&record.der)
        .map_err(|e| ApiError::internal("stored certificate unreadable", &e))?;
    Ok(HttpResponse::Ok()
        .content_type("application/pem-certificate-chain")
        .body(format!("{leaf}{}", gateway.identity().chain_pem())))
}

#[utoipa::path(
    post,
    path = "/certificates/{serial}/revoke",
    tag = "admin",
    security(("bearer" = [])),
    params(("serial" = String, Path, description = "serial number, hex")),
    request_body = crate::admin_bodies::RevokeBody,
    responses(
        (status = 200, description = "revoked; the CRL is republished", body = CertificateView),
        (status = 401, description = "unauthorized: no bearer token", body = crate::api_error::ErrorBody),
        (status = 403, description = "forbidden: wrong token", body = crate::api_error::ErrorBody),
        (status = 400, description = "invalid_request (e.g. removeFromCRL)", body = crate::api_error::ErrorBody),
        (status = 404, description = "not_found", body = crate::api_error::ErrorBody),
        (status = 409, description = "already_revoked", body = crate::api_error::ErrorBody),
    )
)]
pub(crate) async fn revoke(
    admin: Admin,
    path: web::Path<String>,
    body: web::Bytes,
    gateway: web::Data<Gateway>,
) -> Result<HttpResponse, ApiError> {
    let actor = admin.actor;
    let serial = parse_serial(&path)?;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let RevokeRequest {
        reason,
        invalidity_date,
    } = RevokeRequest::parse(&body, now)?;
    let record = gateway
        .store()
        .revoke(&serial, reason, invalidity_date, &actor, now)
        .await?;
    tracing::info!(%serial, reason = reason.name(), actor, "certificate revoked");
    gateway.rebuild_crl_logged().await;
    Ok(HttpResponse::Ok().json(view(record)))
}

#[utoipa::path(
    delete,
    path = "/certificates/{serial}",
    tag = "admin",
    security(("bearer" = [])),
    params(("serial" = String, Path, description = "serial number, hex")),
    responses(
        (status = 200, description = "hidden from listings; a revoked certificate stays in the CRL", body = CertificateView),
        (status = 401, description = "unauthorized: no bearer token", body = crate::api_error::ErrorBody),
        (status = 403, description = "forbidden: wrong token", body = crate::api_error::ErrorBody),
        (status = 404, description = "not_found", body = crate::api_error::ErrorBody),
    )
)]
pub(crate) async fn delete(
    admin: Admin,
    path: web::Path<String>,
    gateway: web::Data<Gateway>,
) -> Result<HttpResponse, ApiError> {
    let actor = admin.actor;
    let serial = parse_serial(&path)?;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let record = gateway.store().delete(&serial, &actor, now).await?;
    tracing::info!(%serial, actor, "certificate deleted from listings");
    Ok(HttpResponse::Ok().json(view(record)))
}

/// A page of certificates.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct CertificateList {
    certificates: Vec<CertificateView>,
    /// Present when more pages follow.
    next_cursor: Option<String>,
}

/// A page of the audit chain.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct AuditPage {
    /// Entries: seq, time, action, serial, client_hash, actor, prev_hash, hash.
    #[schema(value_type = Vec<Object>)]
    entries: Vec<csrgate_store::AuditEntry>,
}

/// Query of `GET /certificates`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
    client_hash: Option<String>,
    expiring_within: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

fn status_of(record: &CertificateRecord, now: i64) -> &'static str {
    match record.status {
        CertificateStatus::Revoked => "revoked",
        _ if record.not_after <= now => "expired",
        _ => "valid",
    }
}

/// An optional JSON body: empty (or whitespace) means all defaults; anything else must parse.
fn period(text: &str) -> Result<i64, ApiError> {
    text.parse::<csrgate_pki::ValidityPeriod>()
        .map(|p| p.as_seconds())
        .map_err(|e| bad_request(e.to_string()))
}

#[utoipa::path(
    get,
    path = "/certificates",
    tag = "admin",
    security(("bearer" = [])),
    params(("status" = Option<String>, Query, description = "valid, revoked or expired"), ("client_hash" = Option<String>, Query), ("expiring_within" = Option<String>, Query, description = "e.g. 30d"), ("limit" = Option<usize>, Query, description = "1 to 1000, default 100"), ("cursor" = Option<String>, Query)),
    responses(
        (status = 200, description = "newest first; pass next_cursor back as cursor", body = CertificateList),
        (status = 401, description = "unauthorized: no bearer token", body = crate::api_error::ErrorBody),
        (status = 403, description = "forbidden: wrong token", body = crate::api_error::ErrorBody),
        (status = 400, description = "invalid_request, invalid_cursor", body = crate::api_error::ErrorBody),
    )
)]
pub(crate) async fn list(
    _admin: Admin,
    request: HttpRequest,
    gateway: web::Data<Gateway>,
) -> Result<HttpResponse, ApiError> {
    let query = web::Query::<ListQuery>::from_query(request.query_string())
        .map_err(|e| bad_request(format!("query: {e}")))?
        .into_inner();
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(bad_request("limit is 1 to 1000".into()));
    }
    let wanted_status = match query.status.as_deref() {
        None => None,
        Some(s @ ("valid" | "revoked" | "expired")) => Some(s.to_owned()),
        Some(other) => {
            return Err(bad_request(format!(
                "status {other:?}: use valid, revoked or expired"
            )));
        }
    };
    if let Some(hash) = query.client_hash.as_deref()
        && crate::ClientHash::parse(hash).is_none()
    {
        // No record has such a hash; refused here, as neither store should be asked (a NUL
        // is not even text to PostgreSQL).
        return Err(bad_request(format!(
            "client_hash {hash:?}: 1 to 128 ASCII letters or digits"
        )));
    }
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let horizon = query
        .expiring_within
        .as_deref()
        .map(period)
        .transpose()?
        .map(|s| now + s);
    let keep = |record: &CertificateRecord| {
        wanted_status
            .as_deref()
            .is_none_or(|s| status_of(record, now) == s)
            && horizon.is_none_or(|h| record.not_after > now && record.not_after <= h)
    };
    let page = gateway
        .store()
        .list_certificates(
            query.client_hash.as_deref(),
            query.cursor.as_deref(),
            limit,
            &keep,
        )
        .await?;
    Ok(HttpResponse::Ok().json(CertificateList {
        certificates: page.records.into_iter().map(view).collect(),
        next_cursor: page.next_cursor,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpiringQuery {
    within: Option<String>,
}

#[utoipa::path(
    get,
    path = "/certificates/expiring",
    tag = "admin",
    security(("bearer" = [])),
    params(("within" = Option<String>, Query, description = "default 30d")),
    responses(
        (status = 200, description = "valid certificates expiring within the period, soonest first", body = CertificateList),
        (status = 401, description = "unauthorized: no bearer token", body = crate::api_error::ErrorBody),
        (status = 403, description = "forbidden: wrong token", body = crate::api_error::ErrorBody),
    )
)]
pub(crate) async fn expiring(
    _admin: Admin,
    request: HttpRequest,
    gateway: web::Data<Gateway>,
) -> Result<HttpResponse, ApiError> {
    let query = web::Query::<ExpiringQuery>::from_query(request.query_string())
        .map_err(|e| bad_request(format!("query: {e}")))?;
    let within = period(query.within.as_deref().unwrap_or("30d"))?;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let mut certificates = Vec::new();
    for serial in gateway
        .store()
        .serials_expiring_between(now + 1, now + within + 1)
        .await?
    {
        if let Some(record) = gateway.store().certificate(&serial).await?
            && !record.deleted
            && record.revocation.is_none()
        {
            certificates.push(view(record));
        }
    }
    Ok(HttpResponse::Ok().json(CertificateList {
        certificates,
        next_cursor: None,
    }))
}

#[utoipa::path(
    post,
    path = "/certificates/{serial}/renew",
    tag = "admin",
    security(("bearer" = [])),
    params(("serial" = String, Path, description = "serial number, hex")),
    request_body = crate::admin_bodies::RenewBody,
    responses(
        (status = 200, description = "the new certificate (same key and subject)", body = CertificateView),
        (status = 401, description = "unauthorized: no bearer token", body = crate::api_error::ErrorBody),
        (status = 403, description = "forbidden: wrong token", body = crate::api_error::ErrorBody),
        (status = 404, description = "not_found", body = crate::api_error::ErrorBody),
        (status = 409, description = "already_revoked, already_replaced (renewed or rotated before)", body = crate::api_error::ErrorBody),
    )
)]
pub(crate) async fn renew(
    admin: Admin,
    path: web::Path<String>,
    body: web::Bytes,
    gateway: web::Data<Gateway>,
) -> Result<HttpResponse, ApiError> {
    let actor = admin.actor;
    let serial = parse_serial(&path)?;
    let RenewRequest { validity } = RenewRequest::parse(&body)?;
    let (issued, _client) = gateway
        .renew(&admin.generation, &serial, validity, &actor)
        .await?;
    tracing::info!(old = %serial, new = %issued.serial, actor, "certificate renewed");
    let record = gateway
        .store()
        .certificate(&issued.serial)
        .await?
        .ok_or_else(|| ApiError::internal("renewed record missing", &issued.serial))?;
    Ok(HttpResponse::Ok().json(view(record)))
}

#[utoipa::path(
    post,
    path = "/certificates/generate",
    tag = "admin",
    security(("bearer" = [])),
    request_body(content = crate::admin_bodies::GenerateBody, content_type = "application/json"),
    responses(
        (status = 200, description = "the key, the certificate and the chain: PKCS#12 (PBES2 AES-256-CBC, PBKDF2-HMAC-SHA256) or PEM; the key is not kept", content_type = "application/x-pkcs12", body = Vec<u8>),
        (status = 400, description = "invalid_request: the body; invalid_csr: a subject or SAN the policy refuses", body = crate::api_error::ErrorBody),
        (status = 401, description = "unauthorized", body = crate::api_error::ErrorBody),
        (status = 403, description = "forbidden, or denied by an issuance rule or authorize plugin", body = crate::api_error::ErrorBody),
        (status = 503, description = "plugin_failed, store_unavailable", body = crate::api_error::ErrorBody),
    )
)]
pub(crate) async fn generate(
    admin: Admin,
    body: web::Bytes,
    gateway: web::Data<Gateway>,
) -> Result<HttpResponse, ApiError> {
    let request = GenerateRequest::parse(&body)?;
    let spec = request.key_type;
    // RSA generation and PBKDF2 take a CPU for up to a second: off the worker thread.
    let key = web::block(move || csrgate_pki::GeneratedKey::generate(spec))
        .await
        .map_err(|e| ApiError::internal("key generation did not run", &e))??;
    let csr = key.csr_der(&request.subject, &request.subject_alt_names)?;
    let issued = gateway
        .generate(
            &admin.generation,
            &request.client_hash,
            &csr,
            request.validity,
            &admin.actor,
        )
        .await?;
    tracing::info!(client_hash = %request.client_hash, serial = %issued.serial, actor = admin.actor, "key generated and certificate issued");
    let chain = gateway.identity().chain_pem().to_owned();
    let serial = issued.serial.to_string();
    let no_store = (header::CACHE_CONTROL, "no-store");
    match request.format {
        BundleFormat::Pkcs12 => {
            let password = request.password.unwrap_or_default();
            let name = request
                .subject
                .common_name()
                .map_or_else(|| serial.clone(), str::to_owned);
            let der = issued.der.clone();
            let bundle = web::block(move || key.pkcs12(&der, &chain, &password, &name))
                .await
                .map_err(|e| ApiError::internal("PKCS#12 did not run", &e))??;
            Ok(HttpResponse::Ok()
                .content_type("application/x-pkcs12")
                .insert_header(no_store)
                .insert_header((
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{serial}.p12\""),
                ))
                .body(bundle))
        }
        BundleFormat::Pem => {
            let mut pem = key.pem(request.password.as_deref().map(String::as_str))?;
            pem.extend_from_slice(issued.pem.as_bytes());
            pem.extend_from_slice(chain.as_bytes());
            Ok(HttpResponse::Ok()
                .content_type("application/x-pem-file")
                .insert_header(no_store)
                .body(pem.to_vec()))
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct CosignQuery {
    client_hash: Option<String>,
}

#[utoipa::path(
    post,
    path = "/certificates/cosign",
    tag = "admin",
    security(("bearer" = [])),
    params(("client_hash" = Option<String>, Query, description = "the client hash to record it under (default `cosigned`)")),
    request_body(content = Vec<u8>, description = "a certificate made elsewhere, PEM or DER", content_type = "application/pkix-cert"),
    responses(
        (status = 200, description = "re-issued under this CA: same subject, SANs and key, CA:FALSE, validity clamped to the policy; recorded and audited", body = CertificateView),
        (status = 400, description = "invalid_request: not a certificate; invalid_csr / weak_key: a name or key today's policy refuses", body = crate::api_error::ErrorBody),
        (status = 401, description = "unauthorized", body = crate::api_error::ErrorBody),
        (status = 403, description = "forbidden, or denied by an issuance rule", body = crate::api_error::ErrorBody),
        (status = 503, description = "plugin_failed, store_unavailable", body = crate::api_error::ErrorBody),
    )
)]
pub(crate) async fn cosign(
    admin: Admin,
    query: web::Query<CosignQuery>,
    body: web::Bytes,
    gateway: web::Data<Gateway>,
) -> Result<HttpResponse, ApiError> {
    let client_hash = query.client_hash.as_deref().unwrap_or("cosigned");
    let client_hash = crate::ClientHash::parse(client_hash).ok_or_else(|| {
        bad_request("client_hash must be 1 to 128 ASCII letters or digits".into())
    })?;
    let der = if body.windows(11).any(|w| w == b"-----BEGIN ") {
        csrgate_pki::CertificateFacts::from_pem(&body)
            .map_err(|e| bad_request(format!("the body is not a PEM certificate: {e}")))?
            .der
    } else {
        body.to_vec()
    };
    let issued = gateway
        .cosign(&admin.generation, &client_hash, &der, &admin.actor)
        .await?;
    tracing::info!(%client_hash, serial = %issued.serial, actor = admin.actor, "certificate co-signed");
    let record = gateway
        .store()
        .certificate(&issued.serial)
        .await?
        .ok_or_else(|| ApiError::internal("co-signed record missing", &issued.serial))?;
    Ok(HttpResponse::Ok().json(view(record)))
}

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Prometheus / OpenMetrics text", content_type = "application/openmetrics-text", body = String),
        (status = 401, description = "unauthorized", body = crate::api_error::ErrorBody),
    )
)]
pub(crate) async fn metrics(
    _admin: Admin,
    gateway: web::Data<Gateway>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(gateway.metrics().render(&gateway)))
}

#[derive(Debug, Deserialize)]
pub(crate) struct AuditQuery {
    #[serde(default)]
    after: u64,
    #[serde(default)]
    limit: Option<usize>,
}

#[utoipa::path(
    get,
    path = "/audit",
    tag = "admin",
    security(("bearer" = [])),
    params(("after" = Option<u64>, Query), ("limit" = Option<usize>, Query, description = "1 to 1000, default 100")),
    responses(
        (status = 200, description = "audit entries after the given sequence number, oldest first", body = AuditPage),
        (status = 401, description = "unauthorized: no bearer token", body = crate::api_error::ErrorBody),
        (status = 403, description = "forbidden: wrong token", body = crate::api_error::ErrorBody),
    )
)]
pub(crate) async fn audit(
    _admin: Admin,
    query: web::Query<AuditQuery>,
    gateway: web::Data<Gateway>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let entries = gateway.store().audit_entries(query.after, limit).await?;
    Ok(HttpResponse::Ok().json(AuditPage { entries }))
}

/// `POST /store/snapshot`: a consistent snapshot of the whole store as JSON lines (`csrgate
/// store backup`; `csrgate store restore` replays it). Taken into an unlinked temporary file
/// first, so sled's writes wait only for one pass over the store, not for the download.
#[utoipa::path(post, path = "/store/snapshot", tag = "admin",
    responses(
        (status = 200, description = "the snapshot: JSON lines (header, audit chain, certificates, revocations, plugin entries, CRL Number, end line)", content_type = "application/x-ndjson", body = String),
        (status = 401, description = "unauthorized: no bearer token", body = crate::api_error::ErrorBody),
        (status = 403, description = "forbidden: wrong token", body = crate::api_error::ErrorBody),
        (status = 503, description = "store_unavailable", body = crate::api_error::ErrorBody),
    )
)]
pub(crate) async fn snapshot(
    admin: Admin,
    gateway: web::Data<Gateway>,
) -> Result<HttpResponse, ApiError> {
    use std::io::{Read as _, Seek as _};
    let mut file = tempfile::tempfile()
        .map_err(|e| ApiError::internal("cannot create the snapshot file", &e))?;
    let summary = gateway.store().write_snapshot(&mut file).await?;
    tracing::info!(
        actor = admin.actor,
        certificates = summary.certificates,
        audit_entries = summary.audit_entries,
        "store snapshot taken"
    );
    file.rewind()
        .map_err(|e| ApiError::internal("cannot read the snapshot file", &e))?;
    let chunks = futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut chunk = vec![0; 256 * 1024];
        match file.read(&mut chunk) {
            Ok(0) => None,
            Ok(read) => {
                chunk.truncate(read);
                Some((Ok::<_, std::io::Error>(web::Bytes::from(chunk)), Some(file)))
            }
            Err(error) => Some((Err(error), None)),
        }
    });
    Ok(HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .streaming(chunks))
}

#[utoipa::path(get, path = "/crl", tag = "public",
    responses((status = 200, description = "the current CRL, DER; ETag, Last-Modified, Cache-Control", content_type = "application/pkix-crl", body = Vec<u8>),
              (status = 304, description = "not modified (If-None-Match)")))]
pub(crate) async fn crl_der(request: HttpRequest, gateway: web::Data<Gateway>) -> HttpResponse {
    serve_crl(&request, &gateway, "application/pkix-crl", |crl| {
        crl.der.clone()
    })
}

#[utoipa::path(get, path = "/crl.pem", tag = "public",
    responses((status = 200, description = "the current CRL, PEM", content_type = "application/x-pem-file", body = String)))]
pub(crate) async fn crl_pem(request: HttpRequest, gateway: web::Data<Gateway>) -> HttpResponse {
    serve_crl(&request, &gateway, "application/x-pem-file", |crl| {
        crl.pem.clone().into_bytes()
    })
}

#[utoipa::path(get, path = "/crl/root.pem", tag = "public",
    responses((status = 200, description = "the issuer's CRL (root_crl, signed offline by `csrgate identity crl`), PEM", content_type = "application/x-pem-file", body = String),
              (status = 404, description = "not_found: no root_crl configured", body = crate::api_error::ErrorBody)))]
pub(crate) async fn crl_root_pem(gateway: web::Data<Gateway>) -> HttpResponse {
    match issuer_crl_pem(&gateway) {
        Ok(pem) => HttpResponse::Ok()
            .content_type("application/x-pem-file")
            .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
            .body(pem.as_bytes().to_vec()),
        Err(error) => error.error_response_public(),
    }
}

#[utoipa::path(get, path = "/crl-chain.pem", tag = "public",
    responses((status = 200, description = "this CA's CRL, then its issuer's (root_crl): a CRL for every level, as nginx ssl_crl wants; for a root CA its own CRL alone", content_type = "application/x-pem-file", body = String),
              (status = 404, description = "not_found: an intermediate without root_crl", body = crate::api_error::ErrorBody),
              (status = 503, description = "crl_unavailable", body = crate::api_error::ErrorBody)))]
pub(crate) async fn crl_chain_pem(gateway: web::Data<Gateway>) -> HttpResponse {
    let Some(own) = gateway.crl().current() else {
        return ApiError::new(ErrorCode::CrlUnavailable, "no CRL has been built yet")
            .error_response_public();
    };
    let is_root = gateway.identity().summary().chain_length == 1;
    let mut body = own.pem.clone().into_bytes();
    if !is_root {
        match issuer_crl_pem(&gateway) {
            Ok(pem) => body.extend_from_slice(pem.as_bytes()),
            Err(error) => return error.error_response_public(),
        }
    }
    HttpResponse::Ok()
        .content_type("application/x-pem-file")
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(body)
}

fn issuer_crl_pem(gateway: &Gateway) -> Result<std::sync::Arc<String>, ApiError> {
    let issuer_crl = gateway.issuer_crl().ok_or_else(|| {
        ApiError::not_found(
            "no root_crl is configured: sign the issuer's CRL with `csrgate identity crl --dir ROOT` \
             and name the file as root_crl",
        )
    })?;
    issuer_crl.pem().map_err(|why| {
        tracing::error!(%why, "root_crl unreadable");
        ApiError::new(ErrorCode::CrlUnavailable, "the issuer's CRL cannot be read")
    })
}

fn serve_crl(
    request: &HttpRequest,
    gateway: &Gateway,
    content_type: &str,
    body: impl Fn(&crate::crl_publisher::PublishedCrl) -> Vec<u8>,
) -> HttpResponse {
    let Some(crl) = gateway.crl().current() else {
        return ApiError::new(ErrorCode::CrlUnavailable, "no CRL has been built yet")
            .error_response_public();
    };
    let max_age = (crl.next_update - OffsetDateTime::now_utc())
        .whole_seconds()
        .clamp(0, 3600);
    // RFC 9110 13.1.2: weak comparison, any tag of the list, or `*`.
    let not_modified = match header::IfNoneMatch::parse(request) {
        Ok(header::IfNoneMatch::Any) => true,
        Ok(header::IfNoneMatch::Items(tags)) => tags.iter().any(|tag| tag.weak_eq(&crl.etag)),
        Err(_) => false,
    };
    let mut response = if not_modified {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header(header::ETag(crl.etag.clone()))
        .insert_header(header::LastModified(
            std::time::SystemTime::from(crl.this_update).into(),
        ))
        .insert_header((header::CACHE_CONTROL, format!("public, max-age={max_age}")));
    if not_modified {
        return response.finish();
    }
    response.content_type(content_type).body(body(&crl))
}
