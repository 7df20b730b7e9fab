//! The signing pipeline, one stage per step: intake → authorize → template → presign → sign →
//! persist → postsign. The 200 is only possible after persist returned, i.e. after the flush.
//! `prepare` (everything before signing) is shared with `csrgate plugin run`.

use std::sync::Arc;

use csrgate_hooks::{AuthorizeOutcome, PluginSet};
use csrgate_pki::{
    CertificateTemplate, Identity, IdentitySummary, IssuedCertificate, SigningPolicy, ValidatedCsr,
};
use csrgate_store::{CertificateRecord, CertificateStatus, Predecessor, Store, StoreError};
use time::OffsetDateTime;

use crate::admin::AdminTokens;
use crate::api_error::ApiError;
use crate::crl_publisher::CrlPublisher;
use crate::error_code::ErrorCode;
use crate::{ClientHash, Hooks, bridge};

/// Everything a request needs: the unlocked CA, the policy, the hooks, the store, the CRL and
/// the admin tokens.
#[derive(Debug)]
pub struct Gateway {
    identity: Identity,
    policy: std::sync::RwLock<Arc<SigningPolicy>>,
    hooks: Arc<Hooks>,
    store: Store,
    crl: CrlPublisher,
    admin: std::sync::RwLock<Arc<AdminTokens>>,
    metrics: crate::SharedMetrics,
}

/// The outcome of the stages before signing.
#[derive(Debug)]
pub struct Prepared {
    /// The checked CSR.
    pub csr: ValidatedCsr,
    /// The template after every presign plugin, checked.
    pub template: CertificateTemplate,
}

/// Intake, authorize, template and presign: everything up to (not including) signing.
pub async fn prepare(
    ca: &IdentitySummary,
    policy: &SigningPolicy,
    plugins: &PluginSet,
    client_hash: &ClientHash,
    body: &[u8],
) -> Result<Prepared, ApiError> {
    let csr = ValidatedCsr::parse_under(body, policy)?;
    if csr.requests_ca() {
        tracing::info!(%client_hash, "the CSR asks for CA:TRUE; the certificate is CA:FALSE as always");
    }
    prepare_validated(ca, policy, plugins, client_hash, csr, None, true).await
}

/// The stages after intake. `validity` overrides the policy's default (renewals); `authorize`
/// is false for operator-initiated renewals, which only pass presign (and postsign).
async fn prepare_validated(
    ca: &IdentitySummary,
    policy: &SigningPolicy,
    plugins: &PluginSet,
    client_hash: &ClientHash,
    csr: ValidatedCsr,
    validity: Option<csrgate_pki::ValidityPeriod>,
    authorize: bool,
) -> Result<Prepared, ApiError> {
    let mut template = ca.template_for(&csr, policy, OffsetDateTime::now_utc());
    if let Some(validity) = validity {
        template.not_after = template.not_before + validity.as_duration();
        ca.check_template(&template, policy)
            .map_err(|e| ApiError::new(ErrorCode::InvalidValidity, e.to_string()))?;
    }
    if plugins.is_empty() {
        return Ok(Prepared { csr, template });
    }
    let request = bridge::signing_request(client_hash, &csr);
    if authorize
        && let AuthorizeOutcome::Denied { plugin, reason } = plugins.authorize(&request).await?
    {
        return Err(ApiError::denied(&plugin, reason));
    }
    let check = |candidate: &csrgate_hooks::model::CertificateTemplate| {
        let parsed = bridge::template_from_model(candidate.clone())?;
        ca.check_template(&parsed, policy)
            .map_err(|e| e.to_string())
    };
    let presigned = plugins
        .presign(&request, bridge::template_to_model(&template), &check)
        .await?;
    let mut presigned = bridge::template_from_model(presigned).map_err(|reason| {
        ApiError::internal("presign result unreadable after its check", &reason)
    })?;
    if presigned.subject.same_attributes(&template.subject) {
        // Unchanged by the plugins: keep the request's RDN structure (multi-valued RDNs).
        presigned.subject = template.subject;
    }
    Ok(Prepared {
        csr,
        template: presigned,
    })
}

impl Gateway {
    /// Assembles the gateway from its parts.
    pub fn new(
        identity: Identity,
        policy: SigningPolicy,
        hooks: Arc<Hooks>,
        store: Store,
        admin: AdminTokens,
        crl_validity: csrgate_pki::ValidityPeriod,
        metrics: crate::SharedMetrics,
    ) -> Self {
        Gateway {
            identity,
            policy: std::sync::RwLock::new(Arc::new(policy)),
            hooks,
            store,
            crl: CrlPublisher::new(crl_validity),
            admin: std::sync::RwLock::new(Arc::new(admin)),
            metrics,
        }
    }

    /// The signing policy requests use now.
    pub fn policy(&self) -> Arc<SigningPolicy> {
        match self.policy.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Swaps in a new signing policy and admin token set (SIGHUP); requests in flight keep theirs.
    pub fn reconfigure(&self, policy: SigningPolicy, admin: AdminTokens) {
        match self.policy.write() {
            Ok(mut guard) => *guard = Arc::new(policy),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(policy),
        }
        match self.admin.write() {
            Ok(mut guard) => *guard = Arc::new(admin),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(admin),
        }
    }

    pub(crate) fn metrics(&self) -> &crate::SharedMetrics {
        &self.metrics
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    pub(crate) fn crl(&self) -> &CrlPublisher {
        &self.crl
    }

    pub(crate) fn admin(&self) -> Arc<AdminTokens> {
        match self.admin.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    pub(crate) fn crl_refresh_in(&self) -> std::time::Duration {
        self.crl.refresh_in()
    }

    /// Builds and publishes a fresh CRL.
    pub async fn rebuild_crl(&self) -> Result<(), String> {
        self.crl
            .rebuild(&self.identity, &self.store)
            .await
            .map(drop)
    }

    /// The CA identity (public parts are served at `/ca.pem`).
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The hooks, for reloading.
    pub fn hooks(&self) -> &Arc<Hooks> {
        &self.hooks
    }

    /// Runs one CSR through every stage and returns the durable, signed certificate. With
    /// `replaces`, the new certificate rotates that one: it is revoked as superseded in the same
    /// write, and only if it was issued to the same client hash.
    pub(crate) async fn issue(
        &self,
        client_hash: &ClientHash,
        body: &[u8],
        replaces: Option<String>,
    ) -> Result<IssuedCertificate, ApiError> {
        // Held until the write is durable, so that a flush waits for this request (see Store).
        let intent = self.store.write_intent();
        let plugins = self.hooks.current();
        let policy = self.policy();
        let Prepared { csr, template } = prepare(
            self.identity.summary(),
            &policy,
            &plugins,
            client_hash,
            body,
        )
        .await?;
        let predecessor = replaces.map(|serial| Predecessor {
            serial,
            revoke_as: Some("superseded".into()),
            action: "rotate".into(),
            actor: "client".into(),
        });
        let rotated = predecessor.is_some();
        let issued = self
            .sign_and_persist(client_hash, &csr, &template, &policy, predecessor.as_ref())
            .await?;
        drop(intent);
        if rotated {
            self.rebuild_crl_logged().await;
        }
        self.postsign(&plugins, client_hash, &issued).await;
        Ok(issued)
    }

    /// Renews `serial`: same public key, subject and SANs, a new serial, `validity` (or the
    /// default), through presign and postsign; the new record is linked to the old one.
    pub(crate) async fn renew(
        &self,
        serial: &str,
        validity: Option<csrgate_pki::ValidityPeriod>,
        actor: &str,
    ) -> Result<(IssuedCertificate, String), ApiError> {
        let old = self
            .store
            .certificate(serial)?
            .filter(|r| !r.deleted)
            .ok_or_else(|| ApiError::not_found(format!("no certificate with serial {serial}")))?;
        if old.revocation.is_some() {
            return Err(ApiError::new(
                ErrorCode::AlreadyRevoked,
                format!("certificate {serial} is revoked and cannot be renewed"),
            ));
        }
        let client_hash = ClientHash::parse(&old.client_hash)
            .ok_or_else(|| ApiError::internal("stored client hash unreadable", &old.client_hash))?;
        let policy = self.policy();
        let csr = ValidatedCsr::from_certificate(&old.der, &policy).map_err(|e| match e {
            csrgate_pki::PkiError::InvalidCsr(why) => ApiError::new(
                ErrorCode::InvalidRequest,
                format!(
                    "certificate {serial} cannot be renewed under the current signing policy \
                     ({why}); rotate it with a new request instead"
                ),
            ),
            other => ApiError::from(other),
        })?;
        let plugins = self.hooks.current();
        let Prepared { csr, template } = prepare_validated(
            self.identity.summary(),
            &policy,
            &plugins,
            &client_hash,
            csr,
            validity,
            false,
        )
        .await?;
        let predecessor = Predecessor {
            serial: serial.to_owned(),
            revoke_as: None,
            action: "renew".into(),
            actor: actor.to_owned(),
        };
        let issued = self
            .sign_and_persist(&client_hash, &csr, &template, &policy, Some(&predecessor))
            .await?;
        self.postsign(&plugins, &client_hash, &issued).await;
        Ok((issued, old.client_hash))
    }

    pub(crate) async fn rebuild_crl_logged(&self) {
        if let Err(error) = self.rebuild_crl().await {
            // The revocation is durable; the background refresher will publish it.
            tracing::error!(%error, "CRL rebuild after revocation failed");
        }
    }

    async fn postsign(
        &self,
        plugins: &PluginSet,
        client_hash: &ClientHash,
        issued: &IssuedCertificate,
    ) {
        if plugins.is_empty() {
            return;
        }
        let certificate = bridge::signed_certificate(client_hash, issued);
        for failure in plugins.postsign(&certificate).await {
            self.hooks.count_postsign_failure();
            tracing::warn!(%client_hash, serial = %issued.serial, error = %failure, "postsign hook failed; the certificate stands");
        }
    }

    async fn sign_and_persist(
        &self,
        client_hash: &ClientHash,
        csr: &ValidatedCsr,
        template: &CertificateTemplate,
        policy: &SigningPolicy,
        predecessor: Option<&Predecessor>,
    ) -> Result<IssuedCertificate, ApiError> {
        // A serial collision (two draws of 104 random bits in the same millisecond) means a broken
        // RNG or a replayed store write, not bad luck; one retry with a fresh serial tells those
        // apart in the log.
        for attempt in 0..2 {
            let issued = self.identity.sign(csr, template, policy)?;
            let record = record_of(client_hash, csr, &issued);
            let stored = match predecessor {
                Some(old) => self.store.insert_successor(&record, old).await,
                None => self.store.insert_certificate(&record).await,
            };
            match stored {
                Ok(()) => return Ok(issued),
                Err(StoreError::DuplicateSerial(serial)) if attempt == 0 => {
                    tracing::error!(%serial, "serial collision; signing again with a new serial");
                }
                Err(error) => return Err(error.into()),
            }
        }
        Err(ApiError::internal(
            "signing failed",
            &"repeated serial collision",
        ))
    }
}

fn record_of(
    client_hash: &ClientHash,
    csr: &ValidatedCsr,
    issued: &IssuedCertificate,
) -> CertificateRecord {
    CertificateRecord {
        serial: issued.serial.to_string(),
        client_hash: client_hash.to_string(),
        subject: issued.subject.to_string(),
        subject_alt_names: issued
            .subject_alt_names
            .iter()
            .map(ToString::to_string)
            .collect(),
        public_key_sha1: csr.public_key_sha1().to_owned(),
        sha256_fingerprint: issued.sha256_fingerprint.clone(),
        not_before: issued.not_before.unix_timestamp(),
        not_after: issued.not_after.unix_timestamp(),
        issued_at: OffsetDateTime::now_utc().unix_timestamp(),
        status: CertificateStatus::Valid,
        der: issued.der.clone(),
        revocation: None,
        deleted: false,
        replaces: None,
        replaced_by: None,
    }
}
