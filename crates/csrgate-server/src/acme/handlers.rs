//! The ACME endpoints (RFC 8555 7): each reads and verifies its request through
//! [`super::intake`], acts on the stored objects, and answers through [`super::answer`].

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use csrgate_pki::{Jwk, JwsKey, JwsRequest, RevocationReason, SubjectAltName};
use csrgate_store::{AcmeKind, Serial};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::objects::{
    self, Account, AccountStatus, Authorization, AuthzStatus, Challenge, ChallengeStatus,
    ChallengeType, Identifier, IdentifierType, Order, OrderStatus, Stored, changed_meanwhile,
};
use super::problem::{Problem, ProblemType};
use super::{
    AcmeState, KeyUse, Reply, Urls, Verified, answer, intake, now, require_acme, timestamp,
};
use crate::routes::Limits;
use crate::{ClientHash, Gateway};

/// How long orders and authorizations stay pending (seconds): a week, as Let's Encrypt's.
const PENDING_LIFETIME_SECS: i64 = 7 * 24 * 3600;

/// How long a valid authorization is reused by the order that holds it (seconds).
const AUTHORIZATION_LIFETIME_SECS: i64 = 30 * 24 * 3600;

/// commonName (RFC 5280 4.1.2.6, X.520).
const COMMON_NAME: &str = "2.5.4.3";

/// Identifiers per order at most (as SANs per CSR).
const MAX_IDENTIFIERS: usize = 100;

/// Contacts per account at most.
const MAX_CONTACTS: usize = 8;

/// What every endpoint needs: the gateway, the body limits and ACME's state.
pub(crate) struct Cx {
    gateway: web::Data<Gateway>,
    limits: web::Data<Limits>,
    state: web::Data<AcmeState>,
}

impl FromRequest for Cx {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let missing = || actix_web::error::ErrorInternalServerError("ACME state missing");
        std::future::ready((|| {
            Ok(Cx {
                gateway: request
                    .app_data::<web::Data<Gateway>>()
                    .cloned()
                    .ok_or_else(missing)?,
                limits: request
                    .app_data::<web::Data<Limits>>()
                    .cloned()
                    .ok_or_else(missing)?,
                state: request
                    .app_data::<web::Data<AcmeState>>()
                    .cloned()
                    .ok_or_else(missing)?,
            })
        })())
    }
}

impl Cx {
    /// The URLs of the request's directory, once ACME is known to be served here.
    fn urls(&self, request: &HttpRequest) -> Result<Urls, Problem> {
        require_acme(request, &self.gateway)?;
        Urls::of(request, &self.gateway.generation().acme)
    }

    async fn verify(
        &self,
        request: &HttpRequest,
        payload: web::Payload,
        urls: &Urls,
        key_use: KeyUse,
    ) -> Result<Verified, Problem> {
        intake(
            request,
            payload,
            &self.gateway,
            &self.limits,
            &self.state,
            urls,
            key_use,
        )
        .await
    }

    async fn answer(
        &self,
        outcome: Result<Reply, Problem>,
        urls: Option<&Urls>,
        route: &'static str,
    ) -> HttpResponse {
        answer(outcome, &self.gateway, &self.state, urls, route).await
    }
}

/// One endpoint's frame: URLs, verification, the work, the answer.
macro_rules! endpoint {
    ($request:ident, $payload:ident, $cx:ident, $route:literal, $key_use:expr, |$urls:ident, $verified:ident| $work:expr) => {{
        let urls = $cx.urls(&$request);
        let outcome = async {
            let $urls = urls.as_ref().map_err(Clone::clone)?;
            let $verified = $cx.verify(&$request, $payload, $urls, $key_use).await?;
            $work.await
        }
        .await;
        $cx.answer(outcome, urls.as_ref().ok(), $route).await
    }};
}

/// A JSON payload; an empty one (POST-as-GET) is malformed where a body is due.
fn parse_payload<T: DeserializeOwned>(jws: &JwsRequest, what: &str) -> Result<T, Problem> {
    serde_json::from_slice(&jws.payload)
        .map_err(|e| Problem::malformed(format!("the {what} payload: {e}")))
}

/// The account of a `kid` request (always there: [`intake`] checked it).
fn signer(verified: &Verified) -> Result<&Stored<Account>, Problem> {
    verified
        .account
        .as_ref()
        .ok_or_else(|| Problem::malformed("this request is signed by an account (kid)"))
}

/// `GET /acme[/<client_hash>]/directory` (RFC 8555 7.1.1).
pub(crate) async fn directory(request: HttpRequest, cx: Cx) -> HttpResponse {
    let urls = cx.urls(&request);
    let outcome = urls.as_ref().map_err(Clone::clone).map(|urls| {
        Reply::json(
            StatusCode::OK,
            json!({
                "newNonce": urls.endpoint("new-nonce"),
                "newAccount": urls.endpoint("new-account"),
                "newOrder": urls.endpoint("new-order"),
                "revokeCert": urls.endpoint("revoke-cert"),
                "keyChange": urls.endpoint("key-change"),
                "meta": {
                    "externalAccountRequired": cx.gateway.generation().acme.eab_required(),
                },
            }),
        )
    });
    cx.answer(outcome, urls.as_ref().ok(), "directory").await
}

/// `HEAD|GET .../new-nonce` (RFC 8555 7.2): 200 to HEAD, 204 to GET, the nonce in the header.
pub(crate) async fn new_nonce(request: HttpRequest, cx: Cx) -> HttpResponse {
    let urls = cx.urls(&request);
    let status = if request.method() == actix_web::http::Method::HEAD {
        StatusCode::OK
    } else {
        StatusCode::NO_CONTENT
    };
    let outcome = urls
        .as_ref()
        .map_err(Clone::clone)
        .map(|_| Reply::empty(status));
    cx.answer(outcome, urls.as_ref().ok(), "new-nonce").await
}

/// newAccount's payload (RFC 8555 7.3); `termsOfServiceAgreed` and fields of later drafts are
/// ignored (csrgate has no terms to agree to).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewAccount {
    #[serde(default)]
    contact: Vec<String>,
    #[serde(default)]
    only_return_existing: bool,
    external_account_binding: Option<Value>,
}

/// `POST .../new-account` (RFC 8555 7.3): finds the key's account or creates one, bound to
/// the directory's client hash or the EAB key's.
pub(crate) async fn new_account(
    request: HttpRequest,
    payload: web::Payload,
    cx: Cx,
) -> HttpResponse {
    endpoint!(
        request,
        payload,
        cx,
        "new-account",
        KeyUse::Jwk,
        |urls, verified| async {
            let jwk = verified
                .jwk
                .as_ref()
                .ok_or_else(|| Problem::malformed("newAccount is signed with jwk"))?;
            let body: NewAccount = parse_payload(&verified.jws, "newAccount")?;
            let store = cx.gateway.store();
            let thumbprint = jwk.thumbprint();
            if let Some(existing) = account_of_key(&cx.gateway, &thumbprint).await? {
                // RFC 8555 7.3.6: a deactivated account's key authorizes nothing more.
                if existing.status != AccountStatus::Valid {
                    return Err(Problem::unauthorized(
                        "the account of this key is deactivated: use another key",
                    ));
                }
                return Ok(Reply::json(StatusCode::OK, account_view(urls, &existing))
                    .at(urls.account(&existing.id)));
            }
            if body.only_return_existing {
                return Err(Problem::new(
                    ProblemType::AccountDoesNotExist,
                    "no account has this key",
                ));
            }
            let contact = checked_contacts(body.contact)?;
            let generation = cx.gateway.generation();
            let acme = &generation.acme;
            let (client_hash, eab_key_id) = match (
                &body.external_account_binding,
                acme.eab_required(),
            ) {
                (None, true) => {
                    return Err(Problem::new(
                        ProblemType::ExternalAccountRequired,
                        "this server binds accounts to external accounts: register with an EAB key \
                     id and MAC key from the operator (certbot --eab-kid --eab-hmac-key; \
                     lego --eab --kid --hmac)",
                    ));
                }
                (Some(_), false) => {
                    return Err(Problem::malformed(
                        "this server takes no external account binding",
                    ));
                }
                (None, false) => {
                    let client_hash = match &urls.client_hash {
                        Some(hash) => hash.clone(),
                        None => acme.default_client_hash().cloned().ok_or_else(|| {
                            Problem::new(ProblemType::ServerInternal, "acme_client_hashes is empty")
                        })?,
                    };
                    (client_hash, None)
                }
                (Some(binding), true) => {
                    let (key_id, bound) = verify_eab(binding, jwk, &verified.jws.url, acme)?;
                    if let Some(directory) = &urls.client_hash
                        && *directory != bound
                    {
                        return Err(Problem::unauthorized(format!(
                            "EAB key {key_id:?} is for client hash {bound}, not this directory's {directory}: use /acme/{bound}/directory or /acme/directory"
                        )));
                    }
                    (bound, Some(key_id))
                }
            };
            let account = Account {
                id: objects::new_id()?,
                status: AccountStatus::Valid,
                key: jwk.canonical_json(),
                thumbprint: thumbprint.clone(),
                contact,
                client_hash: client_hash.to_string(),
                eab_key_id: eab_key_id.clone(),
                created_at: now(),
            };
            // The account first (an orphan if this request loses a race below), then the key
            // index, which decides between concurrent requests with one key, then the EAB key,
            // bound once.
            if let Some(key_id) = &eab_key_id
                && store.acme_get(AcmeKind::BoundKey, key_id).await?.is_some()
            {
                return Err(eab_key_taken(key_id));
            }
            objects::create(store, AcmeKind::Account, &account.id, &account).await?;
            if let Some(existing) = claim_key(&cx.gateway, &thumbprint, &account.id).await? {
                return Ok(Reply::json(StatusCode::OK, account_view(urls, &existing))
                    .at(urls.account(&existing.id)));
            }
            if let Some(key_id) = &eab_key_id
                && !store
                    .acme_insert(AcmeKind::BoundKey, key_id, account.id.as_bytes())
                    .await?
            {
                // Bound to another account: this one, made for nothing, is closed.
                if let Some(made) =
                    objects::load::<Account>(store, AcmeKind::Account, &account.id).await?
                {
                    let mut closed = made.value.clone();
                    closed.status = AccountStatus::Deactivated;
                    objects::swap(store, AcmeKind::Account, &account.id, &made, closed).await?;
                }
                return Err(eab_key_taken(key_id));
            }
            tracing::info!(via = "acme", account = %account.id, %client_hash, eab = ?eab_key_id, "ACME account created");
            Ok(
                Reply::json(StatusCode::CREATED, account_view(urls, &account))
                    .at(urls.account(&account.id)),
            )
        }
    )
}

/// Points the key index at account `id` for `thumbprint`, unless an account holds that key:
/// then that account (a concurrent newAccount with the same key, or a key change to a key in
/// use). An entry naming an account whose key changed since is taken over.
async fn claim_key(
    gateway: &Gateway,
    thumbprint: &str,
    id: &str,
) -> Result<Option<Account>, Problem> {
    let store = gateway.store();
    if store
        .acme_insert(AcmeKind::AccountKey, thumbprint, id.as_bytes())
        .await?
    {
        return Ok(None);
    }
    if let Some(holder) = account_of_key(gateway, thumbprint).await? {
        return Ok(Some(holder));
    }
    let stale = store
        .acme_get(AcmeKind::AccountKey, thumbprint)
        .await?
        .unwrap_or_default();
    if !store
        .acme_replace(AcmeKind::AccountKey, thumbprint, &stale, id.as_bytes())
        .await?
    {
        return Err(changed_meanwhile());
    }
    Ok(None)
}

/// The refusal of an EAB key bound already (RFC 8555 7.3.4: one account per key).
fn eab_key_taken(key_id: &str) -> Problem {
    Problem::unauthorized(format!(
        "EAB key {key_id:?} is bound to another account already: ask the operator for a new one"
    ))
}

/// The valid account whose key has `thumbprint` (an index entry left by a key rollover names
/// an account whose key changed: none).
async fn account_of_key(gateway: &Gateway, thumbprint: &str) -> Result<Option<Account>, Problem> {
    let store = gateway.store();
    let Some(id) = store.acme_get(AcmeKind::AccountKey, thumbprint).await? else {
        return Ok(None);
    };
    let id = String::from_utf8_lossy(&id).into_owned();
    let account: Option<Stored<Account>> = objects::load(store, AcmeKind::Account, &id).await?;
    Ok(account
        .map(|stored| stored.value)
        .filter(|account| account.thumbprint == thumbprint))
}

/// `mailto:` contacts only (RFC 8555 7.3: the server may refuse other schemes).
fn checked_contacts(contact: Vec<String>) -> Result<Vec<String>, Problem> {
    if contact.len() > MAX_CONTACTS {
        return Err(Problem::new(
            ProblemType::InvalidContact,
            format!("at most {MAX_CONTACTS} contacts"),
        ));
    }
    for entry in &contact {
        let Some(address) = entry.strip_prefix("mailto:") else {
            return Err(Problem::new(
                ProblemType::UnsupportedContact,
                format!(
                    "contact {:?}: only mailto: addresses",
                    entry.chars().take(64).collect::<String>()
                ),
            ));
        };
        if SubjectAltName::email(address).is_err() || address.contains(',') {
            return Err(Problem::new(
                ProblemType::InvalidContact,
                format!(
                    "contact {:?} is not one e-mail address",
                    entry.chars().take(64).collect::<String>()
                ),
            ));
        }
    }
    Ok(contact)
}

/// The External Account Binding (RFC 8555 7.3.4): a JWS over the account key, MACed (HS256,
/// HS384, HS512) with the EAB key its `kid` names, `url` the newAccount URL, no nonce. Returns
/// the key id and its client hash.
fn verify_eab(
    binding: &Value,
    jwk: &Jwk,
    url: &str,
    acme: &super::AcmeConfig,
) -> Result<(String, ClientHash), Problem> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Flattened {
        protected: String,
        payload: String,
        signature: String,
    }
    #[derive(Deserialize)]
    struct Header {
        alg: String,
        kid: String,
        url: String,
        nonce: Option<Value>,
    }
    let bad = |why: &str| Problem::malformed(format!("externalAccountBinding: {why}"));
    let decode = |what: &str, text: &str| {
        URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| bad(&format!("{what} is not base64url")))
    };
    let flattened: Flattened = serde_json::from_value(binding.clone())
        .map_err(|e| bad(&format!("a flattened JWS: {e}")))?;
    let header: Header = serde_json::from_slice(&decode("protected", &flattened.protected)?)
        .map_err(|e| bad(&format!("the protected header: {e}")))?;
    if header.nonce.is_some() {
        return Err(bad("the binding carries no nonce (RFC 8555 7.3.4)"));
    }
    if header.url != url {
        return Err(bad("its url is the newAccount URL"));
    }
    let digest = match header.alg.as_str() {
        "HS256" => openssl::hash::MessageDigest::sha256(),
        "HS384" => openssl::hash::MessageDigest::sha384(),
        "HS512" => openssl::hash::MessageDigest::sha512(),
        other => {
            return Err(Problem::new(
                ProblemType::BadSignatureAlgorithm,
                format!(
                    "externalAccountBinding: alg {:?}: use HS256",
                    other.chars().take(16).collect::<String>()
                ),
            ));
        }
    };
    let key = acme.eab_key(&header.kid).ok_or_else(|| {
        Problem::unauthorized(format!(
            "externalAccountBinding: no EAB key {:?} on this server",
            header.kid.chars().take(64).collect::<String>()
        ))
    })?;
    let bound = Jwk::parse(&decode("payload", &flattened.payload)?)?;
    if bound.thumbprint() != jwk.thumbprint() {
        return Err(bad(
            "its payload is the account key the request is signed with",
        ));
    }
    let signature = decode("signature", &flattened.signature)?;
    let mac = openssl::pkey::PKey::hmac(&key.mac_key)
        .and_then(|pkey| {
            let mut signer = openssl::sign::Signer::new(digest, &pkey)?;
            signer.update(flattened.protected.as_bytes())?;
            signer.update(b".")?;
            signer.update(flattened.payload.as_bytes())?;
            signer.sign_to_vec()
        })
        .map_err(|e| Problem::new(ProblemType::ServerInternal, format!("HMAC: {e}")))?;
    if mac.len() != signature.len() || !openssl::memcmp::eq(&mac, &signature) {
        return Err(Problem::unauthorized(
            "externalAccountBinding: the MAC does not verify with this EAB key",
        ));
    }
    Ok((header.kid, key.client_hash.clone()))
}

fn account_view(urls: &Urls, account: &Account) -> Value {
    json!({
        "status": account.status,
        "contact": account.contact,
        "orders": format!("{}/orders", urls.account(&account.id)),
        "createdAt": timestamp(account.created_at),
    })
}

/// What an account update may change (RFC 8555 7.3.2: other fields, `orders` and
/// `termsOfServiceAgreed` among them, are ignored).
#[derive(Deserialize)]
struct AccountUpdate {
    status: Option<AccountStatus>,
    contact: Option<Vec<String>>,
}

/// `POST /acme/account/<id>` (RFC 8555 7.3.2, 7.3.6): the account (POST-as-GET), new contacts,
/// or `{"status": "deactivated"}`, which is final.
pub(crate) async fn account(
    request: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    cx: Cx,
) -> HttpResponse {
    endpoint!(
        request,
        payload,
        cx,
        "account",
        KeyUse::Kid,
        |urls, verified| async {
            let stored = signer(&verified)?;
            if stored.value.id != *path {
                return Err(Problem::unauthorized(
                    "an account reads and changes only itself",
                ));
            }
            if verified.jws.payload.is_empty() {
                return Ok(Reply::json(
                    StatusCode::OK,
                    account_view(urls, &stored.value),
                ));
            }
            let update: AccountUpdate = parse_payload(&verified.jws, "account update")?;
            let mut account = stored.value.clone();
            // `valid` is what it is already: nothing to do (7.3.2).
            if update.status == Some(AccountStatus::Deactivated) {
                account.status = AccountStatus::Deactivated;
            }
            if let Some(contact) = update.contact {
                account.contact = checked_contacts(contact)?;
            }
            let store = cx.gateway.store();
            let saved = objects::swap(
                store,
                AcmeKind::Account,
                &account.id.clone(),
                stored,
                account,
            )
            .await?
            .ok_or_else(changed_meanwhile)?;
            if saved.value.status == AccountStatus::Deactivated {
                tracing::info!(via = "acme", account = %saved.value.id, "ACME account deactivated");
            }
            Ok(Reply::json(
                StatusCode::OK,
                account_view(urls, &saved.value),
            ))
        }
    )
}

/// `POST /acme/account/<id>/orders` (RFC 8555 7.1.2.1): the account's order URLs.
pub(crate) async fn orders(
    request: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    cx: Cx,
) -> HttpResponse {
    endpoint!(
        request,
        payload,
        cx,
        "orders",
        KeyUse::Kid,
        |urls, verified| async {
            let stored = signer(&verified)?;
            if stored.value.id != *path {
                return Err(Problem::unauthorized(
                    "an account lists only its own orders",
                ));
            }
            let orders = cx
                .gateway
                .store()
                .acme_scan(AcmeKind::Order, &format!("{}/", stored.value.id))
                .await?;
            let urls_of: Vec<String> = orders.iter().map(|(id, _)| urls.order(id)).collect();
            Ok(Reply::json(StatusCode::OK, json!({ "orders": urls_of })))
        }
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewOrder {
    identifiers: Vec<Identifier>,
    not_before: Option<Value>,
    not_after: Option<Value>,
}

/// An identifier as csrgate keeps it (DNS names in lower case, addresses in canonical text),
/// or why it cannot be ordered.
fn checked_identifier(identifier: &Identifier) -> Result<Identifier, Problem> {
    let rejected = |why: String| Problem::new(ProblemType::RejectedIdentifier, why);
    match identifier.kind {
        IdentifierType::Dns => {
            let name = identifier.value.to_ascii_lowercase();
            SubjectAltName::dns(&name).map_err(|e| rejected(e.to_string()))?;
            if let Some(base) = name.strip_prefix("*.")
                && (!base.contains('.') || base.parse::<IpAddr>().is_ok())
            {
                return Err(rejected(format!(
                    "{name}: a wildcard covers names under a domain of two labels or more"
                )));
            }
            if name.parse::<IpAddr>().is_ok() {
                return Err(rejected(format!(
                    "{name} is an IP address: order it as type ip"
                )));
            }
            Ok(Identifier {
                kind: IdentifierType::Dns,
                value: name,
            })
        }
        IdentifierType::Ip => {
            let ip: IpAddr = identifier.value.parse().map_err(|_| {
                Problem::malformed(format!(
                    "{:?} is not an IP address (RFC 8738 3)",
                    identifier.value.chars().take(64).collect::<String>()
                ))
            })?;
            Ok(Identifier {
                kind: IdentifierType::Ip,
                value: ip.to_string(),
            })
        }
    }
}

/// `POST .../new-order` (RFC 8555 7.4): an order with one pending authorization per
/// identifier, each offering http-01 and tls-alpn-01.
pub(crate) async fn new_order(request: HttpRequest, payload: web::Payload, cx: Cx) -> HttpResponse {
    endpoint!(
        request,
        payload,
        cx,
        "new-order",
        KeyUse::Kid,
        |urls, verified| async {
            let account = &signer(&verified)?.value;
            let body: NewOrder = serde_json::from_slice(&verified.jws.payload).map_err(|e| {
                let message = e.to_string();
                if message.contains("unknown variant") {
                    Problem::new(
                        ProblemType::UnsupportedIdentifier,
                        format!("identifiers are of type dns or ip: {message}"),
                    )
                } else {
                    Problem::malformed(format!("the newOrder payload: {message}"))
                }
            })?;
            if body.not_before.is_some() || body.not_after.is_some() {
                return Err(Problem::malformed(
                    "notBefore and notAfter are not supported: the validity is the signing policy's",
                ));
            }
            if body.identifiers.is_empty() || body.identifiers.len() > MAX_IDENTIFIERS {
                return Err(Problem::malformed(format!(
                    "an order has 1 to {MAX_IDENTIFIERS} identifiers"
                )));
            }
            let mut identifiers = Vec::with_capacity(body.identifiers.len());
            for identifier in &body.identifiers {
                let identifier = checked_identifier(identifier)?;
                if !identifiers.contains(&identifier) {
                    identifiers.push(identifier);
                }
            }
            let store = cx.gateway.store();
            let now = now();
            let expires = now + PENDING_LIFETIME_SECS;
            let mut authorizations = Vec::with_capacity(identifiers.len());
            for identifier in &identifiers {
                authorizations.push(authorization_for(store, account, identifier, now).await?);
            }
            let order = Order {
                id: format!("{}/{}", account.id, objects::new_id()?),
                account: account.id.clone(),
                status: OrderStatus::Pending,
                expires,
                identifiers,
                authorizations: authorizations.iter().map(|a| a.id.clone()).collect(),
                error: None,
                certificate: None,
                processing_since: None,
            };
            objects::create(store, AcmeKind::Order, &order.id, &order).await?;
            Ok(Reply::json(
                StatusCode::CREATED,
                order_view(urls, &order, &authorizations, now),
            )
            .at(urls.order(&order.id)))
        }
    )
}

/// The account's valid authorization for `identifier` if it stays valid for a day more
/// (RFC 8555 7.4 lets orders reuse them), else a new pending one: for a wildcard, of its base
/// name with dns-01 alone (RFC 8555 7.1.3); for other DNS names http-01, tls-alpn-01 and dns-01;
/// for an IP address http-01 and tls-alpn-01 (RFC 8738 7: no dns-01).
async fn authorization_for(
    store: &csrgate_store::Store,
    account: &Account,
    identifier: &Identifier,
    now: i64,
) -> Result<Authorization, Problem> {
    if let Some(id) = store
        .acme_get(
            AcmeKind::ValidAuthorization,
            &valid_authorization_key(&account.id, identifier),
        )
        .await?
    {
        let id = String::from_utf8_lossy(&id);
        let found: Option<Stored<Authorization>> =
            objects::load(store, AcmeKind::Authorization, &id).await?;
        // Defence in depth: the index's entry must be this account's authorization of exactly
        // this name (a wildcard's of the wildcard).
        let base = identifier.value.strip_prefix("*.");
        if let Some(found) = found
            && found.value.status_at(now + REUSE_MARGIN_SECS) == AuthzStatus::Valid
            && found.value.account == account.id
            && found.value.wildcard == base.is_some()
            && found.value.identifier.kind == identifier.kind
            && found.value.identifier.value == base.unwrap_or(&identifier.value)
        {
            return Ok(found.value);
        }
    }
    let base = identifier.value.strip_prefix("*.");
    let kinds: &[ChallengeType] = match (identifier.kind, base) {
        (IdentifierType::Dns, Some(_)) => &[ChallengeType::Dns01],
        (IdentifierType::Dns, None) => &[
            ChallengeType::Http01,
            ChallengeType::TlsAlpn01,
            ChallengeType::Dns01,
        ],
        (IdentifierType::Ip, _) => &[ChallengeType::Http01, ChallengeType::TlsAlpn01],
    };
    let authorization = Authorization {
        id: objects::new_id()?,
        account: account.id.clone(),
        identifier: Identifier {
            kind: identifier.kind,
            value: base.unwrap_or(&identifier.value).to_owned(),
        },
        wildcard: base.is_some(),
        status: AuthzStatus::Pending,
        expires: now + PENDING_LIFETIME_SECS,
        challenges: kinds
            .iter()
            .copied()
            .map(|kind| {
                Ok(Challenge {
                    kind,
                    token: objects::new_token()?,
                    status: ChallengeStatus::Pending,
                    validated: None,
                    attempted: None,
                    error: None,
                })
            })
            .collect::<Result<_, Problem>>()?,
    };
    objects::create(
        store,
        AcmeKind::Authorization,
        &authorization.id,
        &authorization,
    )
    .await?;
    Ok(authorization)
}

/// The [`AcmeKind::ValidAuthorization`] id of an account's identifier.
fn valid_authorization_key(account: &str, identifier: &Identifier) -> String {
    let kind = match identifier.kind {
        IdentifierType::Dns => "dns",
        IdentifierType::Ip => "ip",
    };
    format!("{account}/{kind}:{}", identifier.value)
}

/// Indexes a valid authorization for the account's next orders (the latest one wins).
async fn remember_valid(
    store: &csrgate_store::Store,
    account: &Account,
    authorization: &Authorization,
) -> Result<(), Problem> {
    // Keyed as orders name it: a wildcard's authorization serves wildcard orders only.
    let ordered = Identifier {
        kind: authorization.identifier.kind,
        value: if authorization.wildcard {
            format!("*.{}", authorization.identifier.value)
        } else {
            authorization.identifier.value.clone()
        },
    };
    let key = valid_authorization_key(&account.id, &ordered);
    let id = authorization.id.as_bytes();
    if !store
        .acme_insert(AcmeKind::ValidAuthorization, &key, id)
        .await?
    {
        let previous = store
            .acme_get(AcmeKind::ValidAuthorization, &key)
            .await?
            .unwrap_or_default();
        // Lost to a concurrent validation: either one serves.
        store
            .acme_replace(AcmeKind::ValidAuthorization, &key, &previous, id)
            .await?;
    }
    Ok(())
}

/// A challenge `processing` for longer than this (seconds) lost its validator (a restart) and
/// may be started again: three validation timeouts.
const STALE_VALIDATION_SECS: i64 = 3 * super::validation::VALIDATION_TIMEOUT.as_secs() as i64;

/// An order `processing` for longer than this (seconds) lost its finalizer (a restart
/// mid-issuance) and reads as `invalid`: issuance takes milliseconds.
pub(crate) const STALE_ORDER_SECS: i64 = 300;

/// How long past now a reused authorization must stay valid (seconds): a day, so an order
/// made on it has time to finish.
const REUSE_MARGIN_SECS: i64 = 24 * 3600;

fn order_view(urls: &Urls, order: &Order, authorizations: &[Authorization], now: i64) -> Value {
    let mut view = json!({
        "status": order.status_with(authorizations, now),
        "expires": timestamp(order.expires),
        "identifiers": order.identifiers,
        "authorizations": order.authorizations.iter().map(|id| urls.authorization(id)).collect::<Vec<_>>(),
        "finalize": format!("{}/finalize", urls.order(&order.id)),
    });
    if let Some(serial) = &order.certificate {
        view["certificate"] = json!(urls.certificate(serial));
    }
    if let Some(error) = &order.error {
        view["error"] = json!(error);
    }
    view
}

/// The order `<account>/<id>` of `account`, with its authorizations.
async fn owned_order(
    cx: &Cx,
    account: &Account,
    order_account: &str,
    id: &str,
) -> Result<(Stored<Order>, Vec<Authorization>), Problem> {
    let store = cx.gateway.store();
    let order_id = format!("{order_account}/{id}");
    let order: Stored<Order> = objects::load(store, AcmeKind::Order, &order_id)
        .await?
        .ok_or_else(|| Problem::not_found("no such order"))?;
    if order.value.account != account.id {
        return Err(Problem::unauthorized(
            "the order belongs to another account",
        ));
    }
    let mut authorizations = Vec::with_capacity(order.value.authorizations.len());
    for authz in &order.value.authorizations {
        let stored: Stored<Authorization> = objects::load(store, AcmeKind::Authorization, authz)
            .await?
            .ok_or_else(|| {
                Problem::new(
                    ProblemType::ServerInternal,
                    "an authorization of the order is missing",
                )
            })?;
        authorizations.push(stored.value);
    }
    Ok((order, authorizations))
}

/// `POST /acme/order/<account>/<id>` (RFC 8555 7.1.3, POST-as-GET).
pub(crate) async fn order(
    request: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
    cx: Cx,
) -> HttpResponse {
    endpoint!(
        request,
        payload,
        cx,
        "order",
        KeyUse::Kid,
        |urls, verified| async {
            let account = &signer(&verified)?.value;
            let (order, authorizations) = owned_order(&cx, account, &path.0, &path.1).await?;
            Ok(Reply::json(
                StatusCode::OK,
                order_view(urls, &order.value, &authorizations, now()),
            ))
        }
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Finalize {
    csr: String,
}

/// `POST /acme/order/<account>/<id>/finalize` (RFC 8555 7.4): the CSR must name exactly the
/// order's identifiers; then it takes the PUT's path (issuance rules, authorize, presign,
/// signing, the store, postsign) under the account's client hash. A refusal there leaves the
/// order `invalid` with the problem, which is also the answer.
pub(crate) async fn finalize(
    request: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
    cx: Cx,
) -> HttpResponse {
    let started = Instant::now();
    endpoint!(
        request,
        payload,
        cx,
        "finalize",
        KeyUse::Kid,
        |urls, verified| async {
            let account = &signer(&verified)?.value;
            let body: Finalize = parse_payload(&verified.jws, "finalize")?;
            let (order, authorizations) = owned_order(&cx, account, &path.0, &path.1).await?;
            let now = now();
            let status = order.value.status_with(&authorizations, now);
            if status != OrderStatus::Ready {
                return Err(Problem::new(
                    ProblemType::OrderNotReady,
                    format!(
                        "the order is {}, not ready: its authorizations must be valid first",
                        json!(status).as_str().unwrap_or_default()
                    ),
                ));
            }
            let der = URL_SAFE_NO_PAD.decode(&body.csr).map_err(|_| {
                Problem::new(ProblemType::BadCsr, "csr is base64url DER (RFC 8555 7.4)")
            })?;
            let generation = cx.gateway.generation();
            let csr = csrgate_pki::ValidatedCsr::parse_under(&der, &generation.signing)
                .map_err(|e| Problem::from(crate::ApiError::from(e)))?;
            check_csr_names(&csr, &order.value.identifiers)?;
            let account_key = cx.state.account_key(&account.key)?.public_key_der()?;
            if hex::encode(openssl::sha::sha1(&account_key)) == csr.public_key_sha1() {
                return Err(Problem::new(
                    ProblemType::BadCsr,
                    "the CSR's key is the account key: certify another key",
                ));
            }
            let client_hash = ClientHash::parse(&account.client_hash).ok_or_else(|| {
                Problem::new(
                    ProblemType::ServerInternal,
                    "the account's client hash is unreadable",
                )
            })?;
            let store = cx.gateway.store();
            let order_id = order.value.id.clone();
            let mut processing = order.value.clone();
            processing.status = OrderStatus::Processing;
            processing.processing_since = Some(now);
            let processing = objects::swap(store, AcmeKind::Order, &order_id, &order, processing)
                .await?
                .ok_or_else(changed_meanwhile)?;
            let mut done = processing.value.clone();
            done.processing_since = None;
            let actor = format!("acme:{}", account.id);
            let outcome = cx
                .gateway
                .issue_parsed(
                    &generation,
                    &client_hash,
                    csr,
                    None,
                    csrgate_hooks::model::Via::Acme,
                    &actor,
                )
                .await;
            let refusal = match outcome {
                Ok(issued) => {
                    // Linked before the order moves on: whatever happens next, the account
                    // can download and revoke what was issued.
                    if let Err(error) = store
                        .acme_insert(
                            AcmeKind::CertificateOrder,
                            &issued.serial.to_string(),
                            order_id.as_bytes(),
                        )
                        .await
                    {
                        // Issued and recorded: the order still moves on; only ACME's download
                        // and revocation of it need the link (the admin API has the record).
                        tracing::error!(%error, serial = %issued.serial, order = %order_id, "ACME certificate not linked to its order");
                    }
                    done.status = OrderStatus::Valid;
                    done.certificate = Some(issued.serial.to_string());
                    tracing::info!(%client_hash, serial = %issued.serial, via = "acme", account = %account.id, status = 200, latency_us = started.elapsed().as_micros() as u64, "certificate issued");
                    cx.gateway.metrics().observe_issuance(started.elapsed());
                    None
                }
                // The server's trouble (the store, a plugin's fault): the order stays ready,
                // so the client's retry can finalize it.
                Err(error) if error.status_code_u16() >= 500 => {
                    done.status = OrderStatus::Pending;
                    Some(Problem::from(error))
                }
                Err(error) => {
                    let problem = Problem::from(error);
                    done.status = OrderStatus::Invalid;
                    done.error = Some(problem.clone());
                    Some(problem)
                }
            };
            let saved =
                objects::swap(store, AcmeKind::Order, &order_id, &processing, done.clone()).await?;
            if saved.is_none() {
                tracing::warn!(order = %order_id, "ACME order changed while it was finalized");
            }
            if let Some(problem) = refusal {
                return Err(problem);
            }
            Ok(Reply::json(
                StatusCode::OK,
                order_view(urls, &done, &authorizations, now),
            )
            .at(urls.order(&order_id)))
        }
    )
}

/// RFC 8555 7.4: the CSR's names (SANs, and a common name if any) are exactly the order's.
fn check_csr_names(
    csr: &csrgate_pki::ValidatedCsr,
    identifiers: &[Identifier],
) -> Result<(), Problem> {
    let ordered: BTreeSet<(bool, String)> = identifiers
        .iter()
        .map(|i| (i.kind == IdentifierType::Ip, i.value.clone()))
        .collect();
    let mut requested = BTreeSet::new();
    for name in csr.subject_alt_names() {
        match name {
            SubjectAltName::Dns(dns) => requested.insert((false, dns.to_ascii_lowercase())),
            SubjectAltName::Ip(ip) => requested.insert((true, ip.to_string())),
            other => {
                return Err(Problem::new(
                    ProblemType::BadCsr,
                    format!(
                        "the CSR asks for {other:?}: an ACME order covers DNS names and IP addresses only"
                    ),
                ));
            }
        };
    }
    // Only common names, each one of the names: the certificate copies the subject, and a
    // common name or an organization no challenge validated would be vouched for all the same
    // (TLS clients still match host names against every CN).
    for attribute in csr.subject().attributes() {
        if attribute.oid != COMMON_NAME {
            return Err(Problem::new(
                ProblemType::BadCsr,
                format!(
                    "the CSR's subject holds {}: an ACME request's subject has common names only, \
                     each one of its subjectAltNames (or none at all)",
                    attribute.label()
                ),
            ));
        }
        let common_name = attribute.value.to_ascii_lowercase();
        let as_ip = common_name
            .parse::<IpAddr>()
            .map(|ip| (true, ip.to_string()));
        if !requested.contains(&(false, common_name.clone()))
            && !as_ip.is_ok_and(|ip| requested.contains(&ip))
        {
            return Err(Problem::new(
                ProblemType::BadCsr,
                format!("the CSR's common name {common_name:?} is not among its subjectAltNames"),
            ));
        }
    }
    if requested != ordered {
        let show = |set: &BTreeSet<(bool, String)>| {
            set.iter()
                .map(|(_, name)| name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(Problem::new(
            ProblemType::BadCsr,
            format!(
                "the CSR names {}; the order {}: they must be the same",
                show(&requested),
                show(&ordered)
            ),
        ));
    }
    Ok(())
}

fn authorization_view(urls: &Urls, authorization: &Authorization, now: i64) -> Value {
    let mut view = json!({
        "identifier": authorization.identifier,
        "status": authorization.status_at(now),
        "expires": timestamp(authorization.expires),
        // A valid authorization lists the challenge that validated it (RFC 8555 7.1.4).
        "challenges": authorization
            .challenges
            .iter()
            .filter(|challenge| {
                authorization.status != AuthzStatus::Valid
                    || challenge.status == ChallengeStatus::Valid
            })
            .map(|challenge| challenge_view(urls, &authorization.id, challenge))
            .collect::<Vec<_>>(),
    });
    if authorization.wildcard {
        view["wildcard"] = json!(true);
    }
    view
}

fn challenge_view(urls: &Urls, authorization: &str, challenge: &Challenge) -> Value {
    let mut view = json!({
        "type": challenge.kind,
        "url": urls.challenge(authorization, challenge.kind),
        "token": challenge.token,
        "status": challenge.status,
    });
    if let Some(validated) = challenge.validated {
        view["validated"] = json!(timestamp(validated));
    }
    if let Some(error) = &challenge.error {
        view["error"] = json!(error);
    }
    view
}

/// The authorization `id` of `account`.
async fn owned_authorization(
    cx: &Cx,
    account: &Account,
    id: &str,
) -> Result<Stored<Authorization>, Problem> {
    let stored: Stored<Authorization> =
        objects::load(cx.gateway.store(), AcmeKind::Authorization, id)
            .await?
            .ok_or_else(|| Problem::not_found("no such authorization"))?;
    if stored.value.account != account.id {
        return Err(Problem::unauthorized(
            "the authorization belongs to another account",
        ));
    }
    Ok(stored)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthorizationUpdate {
    status: AuthzStatus,
}

/// `POST /acme/authz/<id>` (RFC 8555 7.5, 7.5.2): the authorization (POST-as-GET), or
/// `{"status": "deactivated"}`.
pub(crate) async fn authorization(
    request: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    cx: Cx,
) -> HttpResponse {
    endpoint!(
        request,
        payload,
        cx,
        "authz",
        KeyUse::Kid,
        |urls, verified| async {
            let account = &signer(&verified)?.value;
            let stored = owned_authorization(&cx, account, &path).await?;
            let now = now();
            if verified.jws.payload.is_empty() {
                return Ok(Reply::json(
                    StatusCode::OK,
                    authorization_view(urls, &stored.value, now),
                ));
            }
            let update: AuthorizationUpdate = parse_payload(&verified.jws, "authorization update")?;
            if update.status != AuthzStatus::Deactivated {
                return Err(Problem::malformed(
                    "an authorization's status changes only to deactivated",
                ));
            }
            if !matches!(
                stored.value.status_at(now),
                AuthzStatus::Pending | AuthzStatus::Valid
            ) {
                return Err(Problem::malformed(
                    "only a pending or valid authorization is deactivated",
                ));
            }
            let mut deactivated = stored.value.clone();
            deactivated.status = AuthzStatus::Deactivated;
            let saved = objects::swap(
                cx.gateway.store(),
                AcmeKind::Authorization,
                &path,
                &stored,
                deactivated,
            )
            .await?
            .ok_or_else(changed_meanwhile)?;
            Ok(Reply::json(
                StatusCode::OK,
                authorization_view(urls, &saved.value, now),
            ))
        }
    )
}

/// `POST /acme/challenge/<authz>/<type>` (RFC 8555 7.5.1): `{}` asks csrgate to validate;
/// it does so before answering, so the answer already says `valid` or `invalid` (with the
/// problem found). An empty payload (POST-as-GET) reads the challenge.
pub(crate) async fn challenge(
    request: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
    cx: Cx,
) -> HttpResponse {
    endpoint!(
        request,
        payload,
        cx,
        "challenge",
        KeyUse::Kid,
        |urls, verified| async {
            let account = &signer(&verified)?.value;
            let (id, kind) = (&path.0, &path.1);
            let kind = ChallengeType::parse(kind)
                .ok_or_else(|| Problem::not_found("no such challenge"))?;
            let stored = owned_authorization(&cx, account, id).await?;
            let position = stored
                .value
                .challenges
                .iter()
                .position(|c| c.kind == kind)
                .ok_or_else(|| Problem::not_found("no such challenge"))?;
            let now = now();
            let up = urls.authorization(id);
            let current = &stored.value.challenges[position];
            // A validation under way for longer than this died with its process (a restart):
            // it may be started again.
            let stale = |challenge: &Challenge| {
                challenge.status == ChallengeStatus::Processing
                    && challenge
                        .attempted
                        .is_none_or(|at| now - at > STALE_VALIDATION_SECS)
            };
            if verified.jws.payload.is_empty()
                || stored.value.status_at(now) != AuthzStatus::Pending
                || !(current.status == ChallengeStatus::Pending || stale(current))
            {
                if !verified.jws.payload.is_empty() {
                    let _: Value = parse_payload(&verified.jws, "challenge")?;
                }
                return Ok(
                    Reply::json(StatusCode::OK, challenge_view(urls, id, current)).link(&up, "up"),
                );
            }
            let _: serde_json::Map<String, Value> = parse_payload(&verified.jws, "challenge")?;
            let store = cx.gateway.store();
            // Claimed first, so concurrent requests answer `processing` instead of validating
            // again.
            let mut claimed = stored.value.clone();
            claimed.challenges[position].status = ChallengeStatus::Processing;
            claimed.challenges[position].attempted = Some(now);
            let Some(claimed) =
                objects::swap(store, AcmeKind::Authorization, id, &stored, claimed).await?
            else {
                let again = owned_authorization(&cx, account, id).await?.value;
                return Ok(Reply::json(
                    StatusCode::OK,
                    challenge_view(urls, id, &again.challenges[position]),
                )
                .link(&up, "up"));
            };
            let token = claimed.value.challenges[position].token.clone();
            let key_authorization = format!("{token}.{}", account.thumbprint);
            let settings = cx.gateway.generation().acme.settings.clone();
            let outcome = super::validation::validate(
                kind,
                &claimed.value.identifier,
                &token,
                &key_authorization,
                &settings,
            )
            .await;
            let now = super::now();
            let mut updated = claimed.value.clone();
            let challenge = &mut updated.challenges[position];
            match outcome {
                Ok(()) => {
                    challenge.status = ChallengeStatus::Valid;
                    challenge.validated = Some(now);
                    updated.status = AuthzStatus::Valid;
                    updated.expires = updated.expires.max(now + AUTHORIZATION_LIFETIME_SECS);
                    tracing::info!(via = "acme", account = %account.id, identifier = %updated.identifier.value, challenge = kind.name(), "ACME challenge valid");
                }
                // No validator free: nothing was tried, the challenge is pending again and
                // the client retries.
                Err(problem) if problem.kind == ProblemType::RateLimited => {
                    challenge.status = ChallengeStatus::Pending;
                    challenge.attempted = None;
                    objects::swap(store, AcmeKind::Authorization, id, &claimed, updated).await?;
                    return Err(problem);
                }
                Err(problem) => {
                    tracing::info!(via = "acme", account = %account.id, identifier = %updated.identifier.value, challenge = kind.name(), detail = %problem.detail, "ACME challenge invalid");
                    challenge.status = ChallengeStatus::Invalid;
                    challenge.error = Some(problem);
                    updated.status = AuthzStatus::Invalid;
                }
            }
            let saved =
                match objects::swap(store, AcmeKind::Authorization, id, &claimed, updated).await? {
                    Some(saved) => saved.value,
                    // Deactivated meanwhile: that stands.
                    None => owned_authorization(&cx, account, id).await?.value,
                };
            if saved.status == AuthzStatus::Valid {
                remember_valid(cx.gateway.store(), account, &saved).await?;
            }
            Ok(Reply::json(
                StatusCode::OK,
                challenge_view(urls, id, &saved.challenges[position]),
            )
            .link(&up, "up"))
        }
    )
}

/// `POST /acme/certificate/<serial>` (RFC 8555 7.4.2, POST-as-GET): the certificate and the
/// CA's chain, PEM (`application/pem-certificate-chain`), to the account that ordered it.
pub(crate) async fn certificate(
    request: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    cx: Cx,
) -> HttpResponse {
    endpoint!(
        request,
        payload,
        cx,
        "certificate",
        KeyUse::Kid,
        |_urls, verified| async {
            let account = &signer(&verified)?.value;
            let serial: Serial = path
                .parse()
                .map_err(|_| Problem::not_found("no such certificate"))?;
            if !ordered_by(&cx, &serial, account).await? {
                return Err(Problem::not_found(
                    "no certificate of this account has that serial",
                ));
            }
            let record = cx
                .gateway
                .store()
                .certificate(&serial)
                .await?
                .filter(|record| !record.deleted)
                .ok_or_else(|| Problem::not_found("no such certificate"))?;
            let leaf = csrgate_pki::certificate_pem_from_der(&record.der)
                .map_err(|e| Problem::from(crate::ApiError::from(e)))?;
            Ok(Reply::pem_chain(format!(
                "{leaf}{}",
                cx.gateway.identity().chain_pem()
            )))
        }
    )
}

/// Whether `serial` was issued for an order of `account`.
async fn ordered_by(cx: &Cx, serial: &Serial, account: &Account) -> Result<bool, Problem> {
    let store = cx.gateway.store();
    let Some(order_id) = store
        .acme_get(AcmeKind::CertificateOrder, &serial.to_string())
        .await?
    else {
        return Ok(false);
    };
    Ok(String::from_utf8_lossy(&order_id)
        .split_once('/')
        .is_some_and(|(owner, _)| owner == account.id))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeCert {
    certificate: String,
    reason: Option<i32>,
}

/// `POST .../revoke-cert` (RFC 8555 7.6): by the account that ordered the certificate, or
/// signed with the certificate's own key (`jwk`). The CRL and OCSP answer it at once.
pub(crate) async fn revoke_cert(
    request: HttpRequest,
    payload: web::Payload,
    cx: Cx,
) -> HttpResponse {
    endpoint!(
        request,
        payload,
        cx,
        "revoke-cert",
        KeyUse::Either,
        |_urls, verified| async {
            let body: RevokeCert = parse_payload(&verified.jws, "revokeCert")?;
            let der = URL_SAFE_NO_PAD
                .decode(&body.certificate)
                .map_err(|_| Problem::malformed("certificate is base64url DER"))?;
            let facts = csrgate_pki::CertificateFacts::from_der(&der)
                .map_err(|e| Problem::malformed(format!("certificate: {e}")))?;
            let store = cx.gateway.store();
            let record = store
                .certificate(&facts.serial)
                .await?
                .filter(|record| record.der == der)
                .ok_or_else(|| Problem::not_found("this CA did not issue that certificate"))?;
            let actor = match (&verified.account, &verified.jwk) {
                (Some(account), _) => {
                    if !ordered_by(&cx, &facts.serial, &account.value).await? {
                        return Err(Problem::unauthorized(
                            "the certificate was not ordered by this account: sign with its key",
                        ));
                    }
                    format!("acme:{}", account.value.id)
                }
                (None, Some(jwk)) => {
                    let spki = jwk.public_key_der()?;
                    if hex::encode(openssl::sha::sha1(&spki)) != facts.public_key_sha1 {
                        return Err(Problem::unauthorized(
                            "the request is signed neither by an account nor by the certificate's key",
                        ));
                    }
                    "acme:certificate-key".to_owned()
                }
                (None, None) => return Err(Problem::malformed("no key")),
            };
            let reason = match body.reason {
                None => RevocationReason::Unspecified,
                Some(code) => RevocationReason::from_code(code)
                    .filter(|reason| {
                        !matches!(
                            reason,
                            RevocationReason::CertificateHold
                                | RevocationReason::CaCompromise
                                | RevocationReason::AaCompromise
                        )
                    })
                    .ok_or_else(|| {
                        Problem::new(
                            ProblemType::BadRevocationReason,
                            format!("reason {code}: use 0, 1, 3, 4, 5 or 9 (RFC 5280 5.3.1)"),
                        )
                    })?,
            };
            if record.deleted {
                return Err(Problem::not_found("this CA did not issue that certificate"));
            }
            store
                .revoke(&facts.serial, reason, None, &actor, now())
                .await
                .map_err(|error| match error {
                    csrgate_store::StoreError::AlreadyRevoked(_) => Problem::new(
                        ProblemType::AlreadyRevoked,
                        "the certificate is revoked already",
                    ),
                    other => Problem::from(other),
                })?;
            tracing::info!(serial = %facts.serial, reason = reason.name(), actor, via = "acme", "certificate revoked");
            cx.gateway.rebuild_crl_logged().await;
            Ok(Reply::empty(StatusCode::OK))
        }
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct KeyChange {
    account: String,
    old_key: Value,
}

/// `POST .../key-change` (RFC 8555 7.3.5): the outer JWS by the account's key, the inner by
/// the new key over `{account, oldKey}`, same `url`, no nonce.
pub(crate) async fn key_change(
    request: HttpRequest,
    payload: web::Payload,
    cx: Cx,
) -> HttpResponse {
    endpoint!(
        request,
        payload,
        cx,
        "key-change",
        KeyUse::Kid,
        |urls, verified| async {
            let stored = signer(&verified)?;
            let inner = JwsRequest::parse(&verified.jws.payload)?;
            let JwsKey::Jwk(new_key) = &inner.key else {
                return Err(Problem::malformed(
                    "the inner JWS carries the new key as jwk",
                ));
            };
            if inner.url != verified.jws.url {
                return Err(Problem::malformed("the inner JWS has the outer's url"));
            }
            if inner.nonce.is_some() {
                return Err(Problem::malformed(
                    "the inner JWS has no nonce (RFC 8555 7.3.5)",
                ));
            }
            inner.verify(new_key)?;
            let body: KeyChange = parse_payload(&inner, "inner keyChange")?;
            if body.account != urls.account(&stored.value.id) {
                return Err(Problem::unauthorized(
                    "the inner payload's account is not the signer",
                ));
            }
            let old_key = Jwk::parse(body.old_key.to_string().as_bytes())?;
            if old_key.thumbprint() != stored.value.thumbprint {
                return Err(Problem::unauthorized("oldKey is not the account's key"));
            }
            let thumbprint = new_key.thumbprint();
            if let Some(other) = claim_key(&cx.gateway, &thumbprint, &stored.value.id).await? {
                // RFC 8555 7.3.5: 409 with the other account's URL.
                return Ok(Reply::problem(
                    Problem::malformed("the new key belongs to another account already")
                        .with_status(409),
                )
                .at(urls.account(&other.id)));
            }
            let store = cx.gateway.store();
            let mut account = stored.value.clone();
            account.key = new_key.canonical_json();
            account.thumbprint = thumbprint;
            let saved = objects::swap(store, AcmeKind::Account, &stored.value.id, stored, account)
                .await?
                .ok_or_else(changed_meanwhile)?;
            tracing::info!(via = "acme", account = %saved.value.id, "ACME account key rolled over");
            Ok(Reply::json(
                StatusCode::OK,
                account_view(urls, &saved.value),
            ))
        }
    )
}
