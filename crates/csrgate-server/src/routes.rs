//! HTTP routes and API types: `PUT /<client_hash>`, `PUT /api/csr/<client_hash>`, `GET /ca.pem`,
//! `GET /health`, and a JSON 404 for everything else.

use std::time::Instant;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt as _;
use serde::Serialize;
use time::format_description::well_known::Rfc3339;

use csrgate_hooks::model::Via;

use crate::api_error::ApiError;
use crate::error_code::ErrorCode;
use crate::{ClientHash, Gateway};

/// Request limits taken from the configuration.
#[derive(Debug)]
pub(crate) struct Limits {
    pub(crate) max_body_bytes: usize,
    /// How long the body may take to arrive (`request_timeout`).
    pub(crate) body_timeout: std::time::Duration,
}

/// The media type of a PEM chain (RFC 8555 section 9.1).
const PEM_CHAIN: &str = "application/pem-certificate-chain";

/// The routes of a listener: `/health` always, the public endpoints and/or the admin API (an
/// `admin_listen` takes the admin API off the public listeners).
pub(crate) fn configure(config: &mut web::ServiceConfig, public: bool, admin: bool) {
    config.route("/health", web::get().to(health));
    if admin {
        config.configure(crate::admin_routes::configure_admin);
    }
    if public {
        config
            .configure(crate::admin_routes::configure_public)
            .configure(crate::ocsp_responder::configure)
            .configure(crate::est::configure)
            .configure(crate::acme::configure)
            .route("/ca.pem", web::get().to(ca_pem))
            .route("/openapi.json", web::get().to(crate::openapi::document))
            .route("/api/csr/{client_hash}", web::put().to(issue))
            .route("/{client_hash}", web::put().to(issue));
    }
    config.default_service(web::to(not_found));
}

/// The body of a successful `PUT`: ssl_api's `signed_x509_pem` plus what a client needs next.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct IssueResponse {
    signed_x509_pem: String,
    chain_pem: String,
    serial: String,
    not_before: String,
    not_after: String,
}

#[utoipa::path(
    put,
    path = "/{client_hash}",
    tag = "public",
    params(
        ("client_hash" = String, Path, description = "1 to 128 ASCII letters or digits"),
        ("replaces" = Option<String>, Query, description = "rotation: serial (hex) of this client's certificate to revoke as superseded"),
    ),
    request_body(content = Vec<u8>, description = "a PKCS#10 CSR, PEM or DER, whatever the Content-Type", content_type = "application/pkcs10"),
    responses(
        (status = 200, description = "signed and recorded", body = IssueResponse),
        (status = 400, description = "invalid_csr, weak_key, invalid_serial", body = crate::api_error::ErrorBody),
        (status = 403, description = "denied (by a plugin; the message is its reason) or replace_forbidden", body = crate::api_error::ErrorBody),
        (status = 404, description = "not_found: bad client hash or unknown serial", body = crate::api_error::ErrorBody),
        (status = 409, description = "already_revoked, already_replaced (rotation)", body = crate::api_error::ErrorBody),
        (status = 413, description = "body_too_large", body = crate::api_error::ErrorBody),
        (status = 500, description = "plugin_invalid_template, plugin_presign_refused, internal", body = crate::api_error::ErrorBody),
        (status = 503, description = "plugin_failed, store_unavailable", body = crate::api_error::ErrorBody),
    )
)]
pub(crate) async fn issue(
    request: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    gateway: web::Data<Gateway>,
    limits: web::Data<Limits>,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let segment = path.into_inner();
    // The grammar has no '%': a percent-encoded hash is refused rather than decoded, so one
    // client has exactly one spelling in logs and records.
    let raw_path_is_plain = !request.uri().path().contains('%');
    let Some(client_hash) = ClientHash::parse(&segment).filter(|_| raw_path_is_plain) else {
        tracing::info!(status = 404, code = "not_found", "rejected client hash");
        return Err(ApiError::not_found(
            "the client hash must be 1 to 128 ASCII letters or digits",
        ));
    };
    let outcome = async {
        let replaces = replaces_parameter(&request)?;
        let body = read_body(&request, payload, &limits).await?;
        // One generation for the whole request: policy, rules and plugins from the same reload.
        let generation = gateway.generation();
        gateway
            .issue(&generation, &client_hash, &body, replaces, Via::Put)
            .await
    }
    .await;
    let latency_us = started.elapsed().as_micros() as u64;
    let issued = match outcome {
        Ok(issued) => issued,
        Err(error) => {
            tracing::info!(%client_hash, status = error.status_code_u16(), code = error.code(), latency_us, "request refused");
            return Err(error);
        }
    };
    tracing::info!(%client_hash, serial = %issued.serial, status = 200, latency_us, "certificate issued");
    gateway.metrics().observe_issuance(started.elapsed());
    let chain_pem = format!("{}{}", issued.pem, gateway.identity().chain_pem());
    if wants_pem_chain(&request) {
        return Ok(HttpResponse::Ok().content_type(PEM_CHAIN).body(chain_pem));
    }
    let format = |t: time::OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
    Ok(HttpResponse::Ok().json(IssueResponse {
        signed_x509_pem: issued.pem.clone(),
        chain_pem,
        serial: issued.serial.to_string(),
        not_before: format(issued.not_before),
        not_after: format(issued.not_after),
    }))
}

/// `?replaces=<serial>`: rotation. Any other query parameter is refused rather than ignored.
fn replaces_parameter(request: &HttpRequest) -> Result<Option<csrgate_pki::Serial>, ApiError> {
    let query = request.query_string();
    if query.is_empty() {
        return Ok(None);
    }
    let mut replaces = None;
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key != "replaces" || replaces.is_some() {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "the only query parameter is replaces=<serial>",
            ));
        }
        let serial = value.parse::<csrgate_pki::Serial>().map_err(|_| {
            ApiError::new(
                ErrorCode::InvalidSerial,
                format!("{value:?} is not a serial number in hex"),
            )
        })?;
        replaces = Some(serial);
    }
    Ok(replaces)
}

fn wants_pem_chain(request: &HttpRequest) -> bool {
    request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| {
            accept.split(',').any(|part| {
                part.split(';')
                    .next()
                    .is_some_and(|m| m.trim().eq_ignore_ascii_case(PEM_CHAIN))
            })
        })
}

/// Reads the body up to `limit` bytes; a declared or actual larger body is a 413 without reading on.
pub(crate) async fn read_body(
    request: &HttpRequest,
    mut payload: web::Payload,
    limits: &Limits,
) -> Result<Vec<u8>, ApiError> {
    let limit = limits.max_body_bytes;
    let too_large = || crate::expect::body_too_large(limit);
    let declared = crate::expect::declared_length(request.headers());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large());
    }
    let mut body = Vec::with_capacity(declared.map_or(4096, |len| len as usize));
    let read = async {
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| {
                ApiError::new(
                    ErrorCode::BodyUnreadable,
                    format!("cannot read the request body: {e}"),
                )
            })?;
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(())
    };
    // actix bounds the wait for the request head, not for the body: a client trickling a
    // body would otherwise hold its connection (and a worker's attention) forever.
    match actix_web::rt::time::timeout(limits.body_timeout, read).await {
        Ok(outcome) => outcome.map(|()| body),
        Err(_) => Err(ApiError::new(
            ErrorCode::BodyTimeout,
            format!(
                "the request body did not arrive within {} s",
                limits.body_timeout.as_secs()
            ),
        )),
    }
}

/// The most header bytes (names and values) a request may carry. actix accepts far larger
/// heads; no client of a CA needs more than a few hundred bytes.
pub(crate) const MAX_HEADER_BYTES: usize = 16 * 1024;

/// 431 `headers_too_large` for a request whose headers exceed [`MAX_HEADER_BYTES`].
pub(crate) fn refuse_oversized_head(request: &HttpRequest) -> Option<ApiError> {
    let size: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    (size > MAX_HEADER_BYTES).then(|| {
        ApiError::new(
            ErrorCode::HeadersTooLarge,
            format!("the request headers exceed {MAX_HEADER_BYTES} bytes"),
        )
    })
}

/// ssl_api's path for `PUT /{client_hash}`; same behaviour.
#[utoipa::path(
    put,
    path = "/api/csr/{client_hash}",
    tag = "public",
    params(("client_hash" = String, Path, description = "1 to 128 ASCII letters or digits")),
    request_body(content = Vec<u8>, description = "a PKCS#10 CSR, PEM or DER", content_type = "application/pkcs10"),
    responses((status = 200, description = "signed and recorded", body = IssueResponse))
)]
#[allow(dead_code)]
pub(crate) fn issue_ssl_api_path() {}

#[utoipa::path(get, path = "/ca.pem", tag = "public",
    responses((status = 200, description = "the CA certificate, or the chain for an intermediate", content_type = "application/x-pem-file", body = String)))]
pub(crate) async fn ca_pem(gateway: web::Data<Gateway>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/x-pem-file")
        .body(gateway.identity().chain_pem().to_owned())
}

#[utoipa::path(get, path = "/health", tag = "public", responses((status = 200, description = "{\"status\": \"ok\", \"open_issuance\": false}; open_issuance is true when nothing restricts who gets which certificate")))]
pub(crate) async fn health(gateway: web::Data<Gateway>) -> HttpResponse {
    let open = gateway.generation().issuance_is_open();
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok", "open_issuance": open }))
}

async fn not_found(request: HttpRequest) -> Result<HttpResponse, ApiError> {
    tracing::debug!(method = %request.method(), path = %request.path(), "no route");
    Err(ApiError::not_found(
        "no such endpoint: PUT /<client_hash> with a CSR, GET /ca.pem, GET /crl, GET /health",
    ))
}
