//! ACME (RFC 8555) for certbot, lego, Caddy, Traefik and cert-manager: a directory at
//! `/acme/directory` and one per client hash at `/acme/<client_hash>/directory`, accounts (with
//! optional External Account Binding), orders for DNS names and IP addresses (RFC 8738),
//! http-01 and tls-alpn-01 (RFC 8737) challenges, finalization through the signing pipeline
//! (the PUT's path: issuance rules, authorize, presign, the store, postsign), certificate
//! download, key rollover, account deactivation and revocation. Served on TLS listeners only
//! (RFC 8555 6.1); off unless `acme = true`.
//!
//! Every answer carries a fresh `Replay-Nonce` and the directory's `Link` (6.5, 7.1); every
//! error is a problem document (6.7). Accounts, orders and authorizations live in the store
//! (both backends), so a restart or another replica continues where one left off.

mod handlers;
mod nonce;
mod objects;
mod problem;
mod settings;
mod validation;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use csrgate_pki::{Jwk, JwsKey, JwsRequest};
use csrgate_store::AcmeKind;

pub use settings::{AcmeConfig, AcmeSettings};

use nonce::Nonces;

/// Account keys kept parsed: checking a key (its point on the curve) costs as much as a
/// signature verification, and an account's key is the same for every request it signs.
const CACHED_ACCOUNT_KEYS: usize = 10_000;

/// ACME's process-wide state: the nonces and the parsed account keys.
pub(crate) struct AcmeState {
    nonces: Nonces,
    /// By the key's RFC 7638 canonical JSON (what the account stores): a key's text fixes the
    /// key, so an entry is never stale.
    account_keys: quick_cache::sync::Cache<String, Jwk>,
}

impl Default for AcmeState {
    fn default() -> Self {
        AcmeState {
            nonces: Nonces::default(),
            account_keys: quick_cache::sync::Cache::new(CACHED_ACCOUNT_KEYS),
        }
    }
}

impl AcmeState {
    /// The stored account key `canonical`, parsed (once).
    pub(crate) fn account_key(&self, canonical: &str) -> Result<Jwk, Problem> {
        if let Some(key) = self.account_keys.get(canonical) {
            return Ok(key);
        }
        let key = Jwk::parse(canonical.as_bytes())?;
        self.account_keys.insert(canonical.to_owned(), key.clone());
        Ok(key)
    }
}
use objects::{Account, AccountStatus, Stored};
use problem::{Problem, ProblemType};

use crate::routes::{Limits, read_body};
use crate::{ClientHash, Gateway};

/// The media type of every ACME request body (RFC 8555 6.2).
const JOSE_JSON: &str = "application/jose+json";

/// The media type of problem documents (RFC 7807 3).
const PROBLEM_JSON: &str = "application/problem+json";

/// The routes, on every listener; plain ones and servers without `acme = true` answer 404.
/// Per-directory endpoints first: their last segments are no object id (ids are hex).
pub(crate) fn configure(config: &mut web::ServiceConfig) {
    for prefix in ["/acme", "/acme/{client_hash}"] {
        config
            .route(
                &format!("{prefix}/directory"),
                web::get().to(handlers::directory),
            )
            .route(
                &format!("{prefix}/new-nonce"),
                web::head().to(handlers::new_nonce),
            )
            .route(
                &format!("{prefix}/new-nonce"),
                web::get().to(handlers::new_nonce),
            )
            .route(
                &format!("{prefix}/new-account"),
                web::post().to(handlers::new_account),
            )
            .route(
                &format!("{prefix}/new-order"),
                web::post().to(handlers::new_order),
            )
            .route(
                &format!("{prefix}/revoke-cert"),
                web::post().to(handlers::revoke_cert),
            )
            .route(
                &format!("{prefix}/key-change"),
                web::post().to(handlers::key_change),
            );
    }
    config
        .route("/acme/account/{id}", web::post().to(handlers::account))
        .route(
            "/acme/account/{id}/orders",
            web::post().to(handlers::orders),
        )
        .route(
            "/acme/order/{account}/{id}",
            web::post().to(handlers::order),
        )
        .route(
            "/acme/order/{account}/{id}/finalize",
            web::post().to(handlers::finalize),
        )
        .route("/acme/authz/{id}", web::post().to(handlers::authorization))
        .route(
            "/acme/challenge/{id}/{kind}",
            web::post().to(handlers::challenge),
        )
        .route(
            "/acme/certificate/{serial}",
            web::post().to(handlers::certificate),
        );
}

/// Where the request's directory lives: `https://<host>/acme` or `.../acme/<client_hash>`.
#[derive(Clone, Debug)]
pub(crate) struct Urls {
    /// `https://<host>`, as the client addressed this server.
    origin: String,
    /// The client hash of a per-client directory.
    client_hash: Option<ClientHash>,
}

impl Urls {
    fn of(request: &HttpRequest, acme: &AcmeConfig) -> Result<Self, Problem> {
        let client_hash = match request.match_info().get("client_hash") {
            None => None,
            Some(segment) => Some(
                ClientHash::parse(segment)
                    .filter(|hash| acme.issues_for(hash))
                    .ok_or_else(|| {
                        Problem::not_found(
                            "no ACME directory for this client hash (acme_client_hashes)",
                        )
                    })?,
            ),
        };
        let host = request.connection_info().host().to_owned();
        Ok(Urls {
            origin: format!("https://{host}"),
            client_hash,
        })
    }

    fn directory_prefix(&self) -> String {
        match &self.client_hash {
            Some(hash) => format!("{}/acme/{hash}", self.origin),
            None => format!("{}/acme", self.origin),
        }
    }

    fn directory(&self) -> String {
        format!("{}/directory", self.directory_prefix())
    }

    fn endpoint(&self, name: &str) -> String {
        format!("{}/{name}", self.directory_prefix())
    }

    fn account(&self, id: &str) -> String {
        format!("{}/acme/account/{id}", self.origin)
    }

    fn order(&self, id: &str) -> String {
        format!("{}/acme/order/{id}", self.origin)
    }

    fn authorization(&self, id: &str) -> String {
        format!("{}/acme/authz/{id}", self.origin)
    }

    fn challenge(&self, authorization: &str, kind: objects::ChallengeType) -> String {
        format!(
            "{}/acme/challenge/{authorization}/{}",
            self.origin,
            kind.name()
        )
    }

    fn certificate(&self, serial: &str) -> String {
        format!("{}/acme/certificate/{serial}", self.origin)
    }

    /// The account id a `kid` names, if it is one of this server's account URLs.
    fn account_id<'k>(&self, kid: &'k str) -> Option<&'k str> {
        kid.strip_prefix(&self.origin)?
            .strip_prefix("/acme/account/")
    }
}

/// A verified request: its JWS and, for `kid` requests, the account that signed it.
pub(crate) struct Verified {
    pub(crate) jws: JwsRequest,
    /// The account (`kid` requests): valid, its key verified the signature.
    pub(crate) account: Option<Stored<Account>>,
    /// The key (`jwk` requests), which verified the signature.
    pub(crate) jwk: Option<Jwk>,
}

/// Which key a request may be signed with (RFC 8555 6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyUse {
    /// `jwk` only: newAccount.
    Jwk,
    /// `kid` only: everything else.
    Kid,
    /// Either: revokeCert (the account, or the certificate's own key).
    Either,
}

/// ACME is served on TLS listeners of servers with `acme = true`; elsewhere its paths are 404.
fn require_acme(request: &HttpRequest, gateway: &Gateway) -> Result<(), Problem> {
    if !gateway.generation().acme.settings.enabled {
        return Err(Problem::not_found(
            "ACME is not enabled on this server (acme = true)",
        ));
    }
    if request.conn_data::<crate::tls::TlsConnection>().is_none() {
        return Err(Problem::not_found(
            "ACME is served on TLS listeners only (listen_tls): use https://",
        ));
    }
    Ok(())
}

/// Reads and verifies a request (RFC 8555 6.2 to 6.5): the media type, the body within
/// `max_body_bytes`, the JWS, `url` equal to the URL requested, the key (`kid`: a valid account
/// of this server), the signature, then the nonce, redeemed once.
pub(crate) async fn intake(
    request: &HttpRequest,
    payload: web::Payload,
    gateway: &Gateway,
    limits: &Limits,
    state: &AcmeState,
    urls: &Urls,
    key_use: KeyUse,
) -> Result<Verified, Problem> {
    let media_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    if !media_type.is_some_and(|m| m.eq_ignore_ascii_case(JOSE_JSON)) {
        return Err(Problem::malformed(format!(
            "ACME requests are Content-Type: {JOSE_JSON} (RFC 8555 6.2)"
        ))
        .with_status(415));
    }
    let body = read_body(request, payload, limits).await.map_err(|error| {
        let status = error.status_code_u16();
        Problem::malformed(error.message().to_owned()).with_status(status)
    })?;
    let jws = JwsRequest::parse(&body)?;
    let requested = format!("{}{}", urls.origin, request.uri().path());
    if jws.url != requested {
        return Err(Problem::unauthorized(format!(
            "the JWS url {:?} is not the URL requested, {requested} (RFC 8555 6.4)",
            jws.url.chars().take(200).collect::<String>()
        )));
    }
    let store = gateway.store();
    let (account, jwk) = match (&jws.key, key_use) {
        (JwsKey::Jwk(_), KeyUse::Kid) => {
            return Err(Problem::malformed(
                "this request is signed by an account: send kid (the account URL), not jwk",
            ));
        }
        (JwsKey::Kid(_), KeyUse::Jwk) => {
            return Err(Problem::malformed(
                "newAccount is signed with the account's key: send jwk, not kid",
            ));
        }
        (JwsKey::Jwk(jwk), _) => {
            jws.verify(jwk)?;
            (None, Some(jwk.clone()))
        }
        (JwsKey::Kid(kid), _) => {
            let id = urls.account_id(kid).ok_or_else(|| {
                Problem::new(
                    ProblemType::AccountDoesNotExist,
                    "kid is not an account URL of this server",
                )
                .with_status(401)
            })?;
            let account: Stored<Account> = objects::load(store, AcmeKind::Account, id)
                .await?
                .ok_or_else(|| {
                    Problem::new(ProblemType::AccountDoesNotExist, "no such account")
                        .with_status(401)
                })?;
            jws.verify(&state.account_key(&account.value.key)?)?;
            if account.value.status != AccountStatus::Valid {
                return Err(Problem::unauthorized("the account is deactivated"));
            }
            standing(&account.value, &gateway.generation().acme)?;
            (Some(account), None)
        }
    };
    let nonce = jws.nonce.as_deref().ok_or_else(|| {
        Problem::new(
            ProblemType::BadNonce,
            "the protected header has no nonce (RFC 8555 6.5)",
        )
    })?;
    state.nonces.redeem(store, nonce, now()).await?;
    Ok(Verified { jws, account, jwk })
}

/// Whether an account may still act under the current configuration: its client hash still
/// issues through ACME, and, where new accounts need an EAB key, its own key is still
/// configured (removing a key from `acme_eab_file` withdraws the accounts bound with it).
fn standing(account: &Account, acme: &AcmeConfig) -> Result<(), Problem> {
    let issues = ClientHash::parse(&account.client_hash).is_some_and(|hash| acme.issues_for(&hash));
    if !issues {
        return Err(Problem::unauthorized(format!(
            "client hash {} no longer issues through ACME (acme_client_hashes)",
            account.client_hash
        )));
    }
    if acme.eab_required()
        && account
            .eab_key_id
            .as_deref()
            .is_none_or(|key_id| acme.eab_key(key_id).is_none())
    {
        return Err(Problem::unauthorized(
            "the account's external account binding is not configured (any more): register \
             again with an EAB key from the operator",
        ));
    }
    Ok(())
}

/// What a handler answers: a status, a body and the links and location that go with it.
pub(crate) struct Reply {
    status: StatusCode,
    body: ReplyBody,
    location: Option<String>,
    links: Vec<String>,
}

enum ReplyBody {
    Json(serde_json::Value),
    Problem(Problem),
    PemChain(String),
    Empty,
}

impl Reply {
    pub(crate) fn json(status: StatusCode, body: serde_json::Value) -> Self {
        Reply {
            status,
            body: ReplyBody::Json(body),
            location: None,
            links: Vec::new(),
        }
    }

    /// A problem document answered with headers (key rollover's 409 names the other account).
    pub(crate) fn problem(problem: Problem) -> Self {
        Reply {
            status: StatusCode::from_u16(problem.status)
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            body: ReplyBody::Problem(problem),
            location: None,
            links: Vec::new(),
        }
    }

    pub(crate) fn pem_chain(pem: String) -> Self {
        Reply {
            status: StatusCode::OK,
            body: ReplyBody::PemChain(pem),
            location: None,
            links: Vec::new(),
        }
    }

    pub(crate) fn empty(status: StatusCode) -> Self {
        Reply {
            status,
            body: ReplyBody::Empty,
            location: None,
            links: Vec::new(),
        }
    }

    pub(crate) fn at(mut self, location: String) -> Self {
        self.location = Some(location);
        self
    }

    pub(crate) fn link(mut self, url: &str, relation: &str) -> Self {
        self.links.push(format!("<{url}>;rel=\"{relation}\""));
        self
    }
}

/// The HTTP answer: the reply or the problem, with a fresh nonce and the directory link on both
/// (RFC 8555 6.5, 7.1), and `Cache-Control: no-store` (nonces must not be cached).
pub(crate) async fn answer(
    outcome: Result<Reply, Problem>,
    gateway: &Gateway,
    state: &AcmeState,
    urls: Option<&Urls>,
    route: &'static str,
) -> HttpResponse {
    // Where ACME is off (or the path names no directory) the answer is a plain 404: no nonce
    // is made, nor the nonce key.
    let nonce = match urls {
        Some(_) => state.nonces.issue(gateway.store(), now()).await.map(Some),
        None => Ok(None),
    };
    let outcome = match (outcome, &nonce) {
        (Ok(_), Err(error)) => Err(Problem::from(csrgate_store::StoreError::Unavailable(
            error.to_string(),
        ))),
        (outcome, _) => outcome,
    };
    let mut response = match outcome {
        Ok(reply) => {
            let mut builder = HttpResponse::build(reply.status);
            if let Some(location) = reply.location {
                builder.insert_header((header::LOCATION, location));
            }
            for link in reply.links {
                builder.append_header((header::LINK, link));
            }
            match reply.body {
                ReplyBody::Json(body) => builder.json(body),
                ReplyBody::PemChain(pem) => builder
                    .content_type("application/pem-certificate-chain")
                    .body(pem),
                ReplyBody::Problem(problem) => builder
                    .content_type(PROBLEM_JSON)
                    .body(serde_json::to_string(&problem).unwrap_or_default()),
                ReplyBody::Empty => builder.finish(),
            }
        }
        Err(problem) => {
            tracing::info!(via = "acme", route, status = problem.status, kind = ?problem.kind, detail = %problem.detail, "ACME request refused");
            let status =
                StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            HttpResponse::build(status)
                .content_type(PROBLEM_JSON)
                .body(serde_json::to_string(&problem).unwrap_or_default())
        }
    };
    let headers = response.headers_mut();
    if let Ok(Some(nonce)) = &nonce
        && let Ok(value) = header::HeaderValue::from_str(nonce)
    {
        headers.insert(header::HeaderName::from_static("replay-nonce"), value);
    }
    if let Some(urls) = urls
        && let Ok(value) =
            header::HeaderValue::from_str(&format!("<{}>;rel=\"index\"", urls.directory()))
    {
        headers.append(header::LINK, value);
    }
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

/// Unix seconds now.
pub(crate) fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// RFC 3339 text of Unix seconds (ACME's timestamps, RFC 8555 7.1).
fn timestamp(unix: i64) -> String {
    crate::admin_routes::rfc3339(unix)
}
