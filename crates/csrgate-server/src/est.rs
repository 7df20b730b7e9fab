//! EST, Enrollment over Secure Transport (RFC 7030), for network gear and IoT clients: under
//! `/.well-known/est/` and `/.well-known/est/<label>/`, where the label is the client hash,
//! `cacerts` (4.1), `simpleenroll` (4.2.1), `simplereenroll` (4.2.2) and `csrattrs` (4.5).
//! Served on TLS listeners only (RFC 7030 3.2.2: EST is HTTPS); elsewhere the paths are 404.
//!
//! Enrollment authenticates with HTTP Basic credentials from `est_credentials_file` (or the
//! systemd credential `est-credentials`), each bound to one client hash; re-enrollment with the
//! certificate being renewed as the TLS client certificate, which must be the one csrgate stored
//! (byte for byte), valid, not revoked, and is revoked as superseded by the new one in the same
//! write (a rotation). Both then take the path a `PUT /<client_hash>` takes: intake, issuance
//! rules, authorize, presign, signing, the store, postsign. Answers are base64 certs-only PKCS#7
//! (RFC 7030 4.1.3, 4.2.3).

use std::path::Path;
use std::time::Instant;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError as _, web};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest as _, Sha256};

use csrgate_hooks::model::Via;

use crate::api_error::ApiError;
use crate::error_code::ErrorCode;
use crate::generation::Generation;
use crate::routes::{Limits, read_body};
use crate::{ClientHash, Gateway};

/// Name of the systemd credential holding EST credentials (`LoadCredential=est-credentials:...`).
pub const CREDENTIAL: &str = "est-credentials";

/// The media type of EST's certificate answers (RFC 7030 4.1.3, 4.2.3).
const CERTS_ONLY: &str = "application/pkcs7-mime; smime-type=certs-only";

/// The realm named in `WWW-Authenticate` (RFC 7617).
const REALM: &str = "Basic realm=\"csrgate EST\", charset=\"UTF-8\"";

/// Shortest password accepted: EST passwords are machine secrets kept as SHA-256 (as admin
/// tokens are), so they must be long enough not to be guessed from the hash.
const MIN_PASSWORD_CHARS: usize = 16;

/// Who may enroll over EST: HTTP Basic credentials, each bound to one client hash.
#[derive(Clone, Default)]
pub struct EstCredentials {
    entries: Vec<EstCredential>,
}

#[derive(Clone)]
struct EstCredential {
    client_hash: ClientHash,
    /// SHA-256 of `username:password`, compared in constant time.
    digest: [u8; 32],
    username: String,
}

impl std::fmt::Debug for EstCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let users: Vec<&str> = self.entries.iter().map(|e| e.username.as_str()).collect();
        f.debug_struct("EstCredentials")
            .field("users", &users)
            .finish_non_exhaustive()
    }
}

impl EstCredentials {
    /// Reads credentials: the systemd credential wins over `file`. Each non-empty, non-`#` line
    /// is `CLIENT_HASH USERNAME PASSWORD`: the client hash the credential enrolls for (the one an
    /// EST label must name, if the client sends one), then HTTP Basic's user name (no `:`) and
    /// password (at least 16 characters, kept only as a SHA-256 hash).
    ///
    /// # Errors
    /// The file cannot be read, or a line is malformed (the message names the line).
    pub fn load(file: Option<&Path>) -> Result<Self, String> {
        let Some(path) = crate::secret_file::source(CREDENTIAL, file) else {
            return Ok(EstCredentials::default());
        };
        let text = crate::secret_file::read(&path, "EST credentials")?;
        let mut entries = Vec::new();
        for (number, line) in crate::secret_file::entries(&text) {
            let at = || format!("{} line {number}", path.display());
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [client_hash, username, password] = fields.as_slice() else {
                return Err(format!("{}: expected CLIENT_HASH USERNAME PASSWORD", at()));
            };
            let client_hash = ClientHash::parse(client_hash).ok_or_else(|| {
                format!(
                    "{}: the client hash must be 1 to 128 ASCII letters or digits",
                    at()
                )
            })?;
            if username.contains(':') {
                return Err(format!(
                    "{}: a user name cannot contain ':' (RFC 7617)",
                    at()
                ));
            }
            if password.chars().count() < MIN_PASSWORD_CHARS {
                return Err(format!(
                    "{}: passwords must be at least {MIN_PASSWORD_CHARS} characters",
                    at()
                ));
            }
            if entries
                .iter()
                .any(|e: &EstCredential| e.username == *username)
            {
                return Err(format!("{}: user {username:?} is listed twice", at()));
            }
            entries.push(EstCredential {
                client_hash,
                digest: Sha256::digest(format!("{username}:{password}")).into(),
                username: (*username).to_owned(),
            });
        }
        Ok(EstCredentials { entries })
    }

    /// True when no credential is configured: then nobody can enroll over EST.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The credential of the request's `Authorization: Basic` (RFC 7617), or 401.
    fn authenticate(&self, request: &HttpRequest) -> Result<&EstCredential, ApiError> {
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
            .and_then(|(_, encoded)| STANDARD.decode(encoded.trim()).ok());
        let Some(presented) = presented else {
            return Err(ApiError::new(
                ErrorCode::Unauthorized,
                "EST enrollment needs HTTP Basic credentials (curl -u USER:PASSWORD)",
            ));
        };
        let digest: [u8; 32] = Sha256::digest(&presented).into();
        let mut found = None;
        for entry in &self.entries {
            if crate::admin::digests_equal(&entry.digest, &digest) {
                found = Some(entry);
            }
        }
        found.ok_or_else(|| {
            ApiError::new(
                ErrorCode::Unauthorized,
                if self.entries.is_empty() {
                    "no EST credentials are configured on this server (est_credentials_file)"
                } else {
                    "the EST user name or password is not valid"
                },
            )
        })
    }
}

/// The routes, on every listener: a plain one answers 404 (see [`require_est`]).
pub(crate) fn configure(config: &mut web::ServiceConfig) {
    config
        .route("/.well-known/est/cacerts", web::get().to(cacerts))
        .route("/.well-known/est/{label}/cacerts", web::get().to(cacerts))
        .route(
            "/.well-known/est/simpleenroll",
            web::post().to(simpleenroll),
        )
        .route(
            "/.well-known/est/{label}/simpleenroll",
            web::post().to(simpleenroll),
        )
        .route(
            "/.well-known/est/simplereenroll",
            web::post().to(simplereenroll),
        )
        .route(
            "/.well-known/est/{label}/simplereenroll",
            web::post().to(simplereenroll),
        )
        .route("/.well-known/est/csrattrs", web::get().to(csrattrs))
        .route("/.well-known/est/{label}/csrattrs", web::get().to(csrattrs));
}

/// EST is HTTPS only (RFC 7030 3.2.2): a request on a plain listener is 404, so no password
/// ever crosses one in clear (the client learns nothing but where to go); so is every EST path
/// of a server without EST credentials.
fn require_est(request: &HttpRequest, generation: &Generation) -> Result<(), ApiError> {
    if request.conn_data::<crate::tls::TlsConnection>().is_none() {
        return Err(ApiError::not_found(
            "EST is served on TLS listeners only (listen_tls): use https://",
        ));
    }
    if generation.est.is_empty() {
        return Err(ApiError::not_found(
            "EST is not configured on this server (est_credentials_file)",
        ));
    }
    Ok(())
}

/// The client hash a request enrolls for: its credential's, which the label must name if
/// present (RFC 7030 3.2.2's optional label segment is the client hash).
fn enrolling_client(
    request: &HttpRequest,
    generation: &Generation,
) -> Result<ClientHash, ApiError> {
    let credential = generation.est.authenticate(request)?;
    check_label(
        request,
        &credential.client_hash,
        &format!("EST user {:?}", credential.username),
    )?;
    Ok(credential.client_hash.clone())
}

/// A label, when the path has one, must name `client_hash` (404 when it is no client hash,
/// 403 when it is another's); `who` is named in the refusal.
fn check_label(request: &HttpRequest, client_hash: &ClientHash, who: &str) -> Result<(), ApiError> {
    let Some(label) = request.match_info().get("label") else {
        return Ok(());
    };
    let Some(label) = ClientHash::parse(label) else {
        return Err(ApiError::not_found(
            "the EST label is the client hash: 1 to 128 ASCII letters or digits",
        ));
    };
    if label != *client_hash {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            format!("{who} enrolls for client hash {client_hash}, not {label}"),
        ));
    }
    Ok(())
}

/// What a re-enrollment's TLS client certificate allows.
enum Renewal {
    /// Renew this stored certificate.
    Due(csrgate_store::CertificateRecord),
    /// It was re-enrolled already (rotated: revoked as superseded), and this is its successor,
    /// valid: the answer a retry gets, so a device whose answer was lost still has its
    /// certificate (the certificate is public; only the new key's holder can use it).
    Done(csrgate_store::CertificateRecord),
}

/// What the TLS client certificate of a re-enrollment may do: it must be the very certificate
/// csrgate issued and stored, not deleted or expired; valid (renew it) or rotated already (its
/// successor is the answer). 403 otherwise, and without one (this endpoint takes no password).
async fn renewal(request: &HttpRequest, gateway: &Gateway) -> Result<Renewal, ApiError> {
    let Some(presented) = request.conn_data::<crate::tls::PresentedCertificate>() else {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "EST re-enrollment authenticates with the certificate being renewed as the TLS \
             client certificate (curl --cert device.pem --key device.key)",
        ));
    };
    let refused = |why: &str| {
        ApiError::new(
            ErrorCode::Forbidden,
            format!("the TLS client certificate cannot be re-enrolled: {why}"),
        )
    };
    let facts = csrgate_pki::CertificateFacts::from_der(&presented.der)
        .map_err(|_| refused("it is not a certificate csrgate can read"))?;
    let record = gateway
        .store()
        .certificate(&facts.serial)
        .await?
        .filter(|record| record.der == presented.der)
        .ok_or_else(|| refused("this CA did not issue it"))?;
    if record.deleted {
        return Err(refused("it was deleted by an operator"));
    }
    if record.not_after <= time::OffsetDateTime::now_utc().unix_timestamp() {
        return Err(refused("it has expired; enroll again with simpleenroll"));
    }
    let superseded = record
        .revocation
        .as_ref()
        .is_some_and(|r| r.reason == csrgate_store::RevocationReason::Superseded);
    if let Some(successor) = &record.replaced_by {
        let successor = gateway.store().certificate(successor).await?;
        return match successor {
            Some(successor)
                if superseded
                    && !successor.deleted
                    && successor.revocation.is_none()
                    && successor.client_hash == record.client_hash =>
            {
                Ok(Renewal::Done(successor))
            }
            _ => Err(refused(
                "it was renewed or rotated already, and its successor is no longer valid; \
                 enroll again with simpleenroll",
            )),
        };
    }
    if record.revocation.is_some() {
        return Err(refused("it is revoked; enroll again with simpleenroll"));
    }
    Ok(Renewal::Due(record))
}

/// A certs-only PKCS#7 answer: base64 in lines of 64 (RFC 7030 4.1.3: base64 per RFC 2045),
/// ended by LF alone, which `base64 -d` reads (a CR it refuses) and RFC 2045 decoders skip.
fn certs_only(der: &[u8]) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(CERTS_ONLY)
        .insert_header(("Content-Transfer-Encoding", "base64"))
        .body(csrgate_pki::base64_lines(der))
}

/// 401s carry the challenge (RFC 7235 3.1), so clients know to send credentials.
fn with_challenge(error: ApiError) -> HttpResponse {
    let mut response = error.error_response();
    if error.error_code() == ErrorCode::Unauthorized {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static(REALM),
        );
    }
    response
}

/// `GET cacerts` (RFC 7030 4.1): the CA certificate and its issuers, no authentication.
async fn cacerts(
    request: HttpRequest,
    gateway: web::Data<Gateway>,
) -> Result<HttpResponse, ApiError> {
    require_est(&request, &gateway.generation())?;
    Ok(certs_only(&gateway.identity().chain_pkcs7()?))
}

/// `GET csrattrs` (RFC 7030 4.5): csrgate asks for no particular attributes; 204 says so
/// (4.5.2). What a request may contain is the issuance rules' and plugins' to say.
async fn csrattrs(
    request: HttpRequest,
    gateway: web::Data<Gateway>,
) -> Result<HttpResponse, ApiError> {
    require_est(&request, &gateway.generation())?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST simpleenroll` (RFC 7030 4.2.1): a base64 DER PKCS#10, answered with the certificate.
async fn simpleenroll(
    request: HttpRequest,
    payload: web::Payload,
    gateway: web::Data<Gateway>,
    limits: web::Data<Limits>,
) -> HttpResponse {
    let started = Instant::now();
    let outcome = async {
        let generation = gateway.generation();
        require_est(&request, &generation)?;
        let client_hash = enrolling_client(&request, &generation)?;
        let body = read_body(&request, payload, &limits).await?;
        let csr = base64_body(&body)?;
        let issued = gateway
            .issue(&generation, &client_hash, &csr, None, Via::Est)
            .await?;
        tracing::info!(%client_hash, serial = %issued.serial, via = "est", status = 200, latency_us = started.elapsed().as_micros() as u64, "certificate issued");
        gateway.metrics().observe_issuance(started.elapsed());
        Ok(issued.der)
    }
    .await;
    answer(outcome)
}

/// `POST simplereenroll` (RFC 7030 4.2.2): a base64 DER PKCS#10 from the holder of a current
/// certificate (its TLS client certificate), answered with its successor; the old one is revoked
/// as superseded in the same write.
async fn simplereenroll(
    request: HttpRequest,
    payload: web::Payload,
    gateway: web::Data<Gateway>,
    limits: web::Data<Limits>,
) -> HttpResponse {
    let started = Instant::now();
    let outcome = async {
        let generation = gateway.generation();
        require_est(&request, &generation)?;
        let old = match renewal(&request, &gateway).await? {
            Renewal::Due(old) => old,
            Renewal::Done(successor) => {
                tracing::info!(client_hash = %successor.client_hash, serial = %successor.serial, via = "est", status = 200, "re-enrollment repeated: its certificate answered again");
                return Ok(successor.der);
            }
        };
        let client_hash = ClientHash::parse(&old.client_hash).ok_or_else(|| {
            ApiError::internal("stored client hash unreadable", &old.client_hash)
        })?;
        check_label(
            &request,
            &client_hash,
            &format!("certificate {}", old.serial),
        )?;
        let body = read_body(&request, payload, &limits).await?;
        let csr = base64_body(&body)?;
        let issued = gateway
            .issue(&generation, &client_hash, &csr, Some(old.serial.clone()), Via::Est)
            .await?;
        tracing::info!(%client_hash, serial = %issued.serial, replaces = %old.serial, via = "est", status = 200, latency_us = started.elapsed().as_micros() as u64, "certificate re-enrolled");
        gateway.metrics().observe_issuance(started.elapsed());
        Ok(issued.der)
    }
    .await;
    answer(outcome)
}

/// An enrollment's answer: the certificate (DER) as certs-only PKCS#7, or the refusal, logged,
/// with the challenge on a 401.
fn answer(outcome: Result<Vec<u8>, ApiError>) -> HttpResponse {
    let pkcs7 = outcome.and_then(|der| Ok(csrgate_pki::certs_only_pkcs7(&[&der])?));
    match pkcs7 {
        Ok(der) => certs_only(&der),
        Err(error) => {
            tracing::info!(
                via = "est",
                status = error.status_code_u16(),
                code = error.code(),
                "request refused"
            );
            with_challenge(error)
        }
    }
}

/// The request's DER: RFC 7030 4.2.1 sends base64 (RFC 2045: line breaks allowed).
fn base64_body(body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let compact: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    STANDARD.decode(&compact).map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidCsr,
            "an EST request body is a base64 DER PKCS#10 request (RFC 7030 4.2.1): \
             openssl req -outform DER | base64",
        )
    })
}
