//! The signing pipeline, one stage per step: intake → issuance rules → authorize → template →
//! presign → sign → persist → postsign, all under one configuration generation. The 200 is only possible after persist returned, i.e. after the flush.
//! `prepare` (everything before signing) is shared with `csrgate plugin run`.

use std::borrow::Cow;
use std::sync::Arc;

use csrgate_hooks::model::Via;
use csrgate_hooks::{AuthorizeOutcome, PluginSet};
use csrgate_pki::{
    CertificateTemplate, Identity, IdentitySummary, IssuedCertificate, SigningPolicy, ValidatedCsr,
    ValidityPeriod,
};
use csrgate_store::{
    AuditAction, CertificateRecord, CertificateStatus, Predecessor, RevocationReason, Serial,
    Store, StoreError,
};
use time::OffsetDateTime;

use crate::api_error::ApiError;
use crate::crl_publisher::CrlPublisher;
use crate::error_code::ErrorCode;
use crate::generation::{Generation, Generations};
use crate::{ClientHash, bridge};

/// Everything a request needs: the unlocked CA, the current configuration generation (policy,
/// issuance rules, admin tokens, plugins), the store and the CRL.
#[derive(Debug)]
pub struct Gateway {
    identity: Identity,
    generations: Generations,
    store: Store,
    crl: CrlPublisher,
    ocsp: crate::OcspResponder,
    issuer_crl: Option<crate::IssuerCrl>,
    retention: Option<ValidityPeriod>,
    metrics: crate::SharedMetrics,
}

/// Certificates removed per retention batch (one transaction each).
pub const PRUNE_BATCH: usize = 500;

/// The outcome of the stages before signing.
#[derive(Debug)]
pub struct Prepared {
    /// The checked CSR.
    pub csr: ValidatedCsr,
    /// The template after every presign plugin, checked.
    pub template: CertificateTemplate,
}

/// Intake, the issuance rules, authorize, template and presign: everything up to (not
/// including) signing, under one `generation`.
pub async fn prepare(
    ca: &IdentitySummary,
    generation: &Generation,
    client_hash: &ClientHash,
    body: &[u8],
    via: Via,
) -> Result<Prepared, ApiError> {
    let csr = intake(generation, client_hash, body)?;
    prepare_validated(ca, generation, client_hash, csr, None, Authorize::Run, via).await
}

/// A request body, parsed and checked under the signing policy.
fn intake(
    generation: &Generation,
    client_hash: &ClientHash,
    body: &[u8],
) -> Result<ValidatedCsr, ApiError> {
    let csr = ValidatedCsr::parse_under(body, &generation.signing)?;
    if csr.requests_ca() {
        tracing::info!(%client_hash, "the CSR asks for CA:TRUE; the certificate is CA:FALSE as always");
    }
    Ok(csr)
}

/// What `csrgate plugin run` reports: every decision, not only the first refusal.
#[derive(Debug)]
pub struct DryRun {
    /// The issuance rules' decision: the rule that allowed (`None` when no rules are
    /// configured), or the refusal.
    pub issuance: Option<Result<Option<String>, crate::issuance::Refusal>>,
    /// Each authorize plugin's decision in order: `Ok(None)` allowed, `Ok(Some(reason))` denied.
    pub authorize: Vec<(String, Result<Option<String>, csrgate_hooks::HookError>)>,
    /// The template after presign, or why the request is refused.
    pub outcome: Result<Prepared, ApiError>,
}

/// Runs `body` through intake, the issuance rules, every authorize plugin (all of them, also
/// after a denial) and, when all allowed, presign. Signs nothing.
pub async fn dry_run(
    ca: &IdentitySummary,
    generation: &Generation,
    client_hash: &ClientHash,
    body: &[u8],
) -> DryRun {
    let mut report = DryRun {
        issuance: None,
        authorize: Vec::new(),
        outcome: Err(ApiError::new(ErrorCode::Internal, "not run")),
    };
    let csr = match ValidatedCsr::parse_under(body, &generation.signing) {
        Ok(csr) => csr,
        Err(error) => {
            report.outcome = Err(error.into());
            return report;
        }
    };
    if !generation.issuance.is_empty() {
        let rule = generation
            .issuance
            .rule_for(client_hash)
            .map(|rule| rule.name.clone());
        report.issuance = Some(generation.issuance.check(client_hash, &csr).map(|_| rule));
    }
    let request = bridge::signing_request(client_hash, &csr, Via::Put);
    report.authorize = generation.plugins.authorize_each(&request).await;
    let first_denial = report
        .authorize
        .iter()
        .find_map(|(plugin, decision)| match decision {
            Ok(Some(reason)) => Some(ApiError::denied(plugin, reason.clone())),
            Ok(None) => None,
            Err(error) => Some(ApiError::new(ErrorCode::PluginFailed, error.to_string())),
        });
    report.outcome = match first_denial {
        Some(denial) => Err(denial),
        None => {
            prepare_validated(
                ca,
                generation,
                client_hash,
                csr,
                None,
                Authorize::Skip,
                Via::Put,
            )
            .await
        }
    };
    report
}

/// How a new record enters the audit chain: its action and actor, or the predecessor it
/// renews or rotates (which carries both).
#[derive(Clone, Copy, Debug)]
struct Recorded<'a> {
    action: AuditAction,
    actor: &'a str,
    predecessor: Option<&'a Predecessor>,
}

impl<'a> Recorded<'a> {
    fn by(action: AuditAction, actor: &'a str, predecessor: Option<&'a Predecessor>) -> Self {
        Recorded {
            action,
            actor,
            predecessor,
        }
    }
}

/// Whether the authorize plugins run: client requests yes; operator-initiated renewals only
/// pass presign (and postsign).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Authorize {
    Run,
    Skip,
}

/// The signing policy narrowed by the issuance rule's maximum validity, if it has one.
fn narrowed(policy: &SigningPolicy, max: Option<ValidityPeriod>) -> Cow<'_, SigningPolicy> {
    match max {
        Some(max) if max < policy.max_validity || max < policy.default_validity => {
            Cow::Owned(SigningPolicy {
                max_validity: max.min(policy.max_validity),
                default_validity: max.min(policy.default_validity),
                ..policy.clone()
            })
        }
        _ => Cow::Borrowed(policy),
    }
}

/// The stages after intake. `validity` overrides the policy's default (renewals).
async fn prepare_validated(
    ca: &IdentitySummary,
    generation: &Generation,
    client_hash: &ClientHash,
    csr: ValidatedCsr,
    validity: Option<ValidityPeriod>,
    authorize: Authorize,
    via: Via,
) -> Result<Prepared, ApiError> {
    let max_validity = generation
        .issuance
        .check(client_hash, &csr)
        .map_err(|refusal| ApiError::denied(&refusal.denied_by(), refusal.reason))?;
    let policy = narrowed(&generation.signing, max_validity);
    let policy = policy.as_ref();
    // Whole seconds, as in the certificate (template_for does the same).
    let now = OffsetDateTime::now_utc();
    let now = now.replace_nanosecond(0).unwrap_or(now);
    let mut template = ca.template_for(&csr, policy, now);
    if let Some(validity) = validity {
        // From now, as for a PUT: counting from the backdated notBefore made a renewal
        // `backdate` shorter than asked.
        template.not_after = now + validity.as_duration();
        ca.check_template(&template, policy)
            .map_err(|e| ApiError::new(ErrorCode::InvalidValidity, e.to_string()))?;
    }
    let plugins = &generation.plugins;
    if plugins.is_empty() {
        return Ok(Prepared { csr, template });
    }
    let request = bridge::signing_request(client_hash, &csr, via);
    if authorize == Authorize::Run
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
        generations: Generations,
        store: Store,
        crl_validity: ValidityPeriod,
        metrics: crate::SharedMetrics,
    ) -> Self {
        // Signing with the CA key needs nothing the unlock did not already check; a delegated
        // responder replaces it through `with_ocsp`.
        let ocsp = crate::OcspResponder::new(
            csrgate_pki::OcspSigner::for_ca(&identity).ok(),
            crl_validity,
            identity.summary().not_after,
            None,
        );
        Gateway {
            identity,
            generations,
            store,
            crl: CrlPublisher::new(crl_validity),
            ocsp,
            issuer_crl: None,
            retention: None,
            metrics,
        }
    }

    /// The gateway removing certificates expired for longer than `retention` (see
    /// [`Gateway::prune_expired`]).
    pub fn with_retention(mut self, retention: ValidityPeriod) -> Self {
        self.retention = Some(retention);
        self
    }

    /// Retention, once: removes every certificate expired for longer than the configured
    /// `retention`, in batches of [`PRUNE_BATCH`] with a pause between them so issuance is not
    /// held up; each removal is audited (actor `retention`). Returns how many went; 0 without
    /// `retention`.
    pub async fn prune_expired(&self) -> Result<usize, csrgate_store::StoreError> {
        let Some(retention) = self.retention else {
            return Ok(0);
        };
        let mut total = 0;
        loop {
            let now = OffsetDateTime::now_utc().unix_timestamp();
            let before = now - retention.as_seconds();
            let pruned = self
                .store
                .prune_expired(before, PRUNE_BATCH, "retention", now)
                .await?;
            total += pruned;
            if pruned < PRUNE_BATCH {
                return Ok(total);
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    pub(crate) fn retention(&self) -> Option<ValidityPeriod> {
        self.retention
    }

    /// The gateway serving its issuer's CRL (`root_crl`) beside its own.
    pub fn with_issuer_crl(mut self, issuer_crl: crate::IssuerCrl) -> Self {
        self.issuer_crl = Some(issuer_crl);
        self
    }

    pub(crate) fn issuer_crl(&self) -> Option<&crate::IssuerCrl> {
        self.issuer_crl.as_ref()
    }

    /// The gateway answering OCSP with `responder` (a delegated responder certificate).
    pub fn with_ocsp(mut self, responder: crate::OcspResponder) -> Self {
        self.ocsp = responder;
        self
    }

    pub(crate) fn ocsp(&self) -> &crate::OcspResponder {
        &self.ocsp
    }

    /// The configuration generation requests use now: take it once per request.
    pub fn generation(&self) -> Arc<Generation> {
        self.generations.current()
    }

    /// The generations, for reloading.
    pub fn generations(&self) -> &Generations {
        &self.generations
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

    /// Publishes a CRL: one another replica built recently (PostgreSQL), or a new one. At
    /// start and at half a CRL's validity.
    pub async fn refresh_crl(&self) -> Result<(), String> {
        self.crl
            .refresh(&self.identity, &self.store)
            .await
            .map(drop)
    }

    /// Follows the CRLs other replicas publish (PostgreSQL; returns at once on sled): the
    /// newest stored one is served within moments of its announcement, and within 30 s should
    /// an announcement be lost.
    pub async fn follow_crls(&self) {
        let Some(mut notices) = self.store.crl_notices() else {
            return;
        };
        loop {
            // A notice, or every 30 s anyway: a listening connection can die without a word.
            tokio::select! {
                changed = notices.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                () = tokio::time::sleep(std::time::Duration::from_secs(30)) => {}
            }
            if let Err(error) = self.crl.adopt_latest(&self.store).await {
                tracing::warn!(%error, "cannot read the CRL another replica published; the refresh will");
            }
        }
    }

    /// The CA identity (public parts are served at `/ca.pem`).
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Runs one CSR through every stage and returns the durable, signed certificate. With
    /// `replaces`, the new certificate rotates that one: it is revoked as superseded in the same
    /// write, and only if it was issued to the same client hash. `via` tells plugins which
    /// front door the request came through.
    pub(crate) async fn issue(
        &self,
        generation: &Generation,
        client_hash: &ClientHash,
        body: &[u8],
        replaces: Option<Serial>,
        via: Via,
    ) -> Result<IssuedCertificate, ApiError> {
        let csr = intake(generation, client_hash, body)?;
        self.issue_parsed(generation, client_hash, csr, replaces, via, "client")
            .await
    }

    /// [`Gateway::issue`] of a CSR parsed already (ACME finalize checks its names first), in
    /// the audit chain as `actor`'s.
    pub(crate) async fn issue_parsed(
        &self,
        generation: &Generation,
        client_hash: &ClientHash,
        csr: ValidatedCsr,
        replaces: Option<Serial>,
        via: Via,
        actor: &str,
    ) -> Result<IssuedCertificate, ApiError> {
        if via != Via::Acme && generation.acme.issues_for(client_hash) {
            return Err(ApiError::denied(
                "acme_client_hashes",
                format!(
                    "client hash {client_hash} issues through ACME only, where every name is \
                     validated by a challenge: use https://<this server>/acme/{client_hash}/directory"
                ),
            ));
        }
        // Held until the write is durable, so that a flush waits for this request (see Store).
        let intent = self.store.write_intent();
        let Prepared { csr, template } = prepare_validated(
            self.identity.summary(),
            generation,
            client_hash,
            csr,
            None,
            Authorize::Run,
            via,
        )
        .await?;
        let predecessor = replaces.map(|serial| Predecessor {
            serial,
            revoke_as: Some(RevocationReason::Superseded),
            action: AuditAction::Rotate,
            actor: actor.into(),
        });
        let rotated = predecessor.is_some();
        let issued = self
            .sign_and_persist(
                client_hash,
                &csr,
                &template,
                &generation.signing,
                Recorded::by(AuditAction::Issue, actor, predecessor.as_ref()),
            )
            .await?;
        drop(intent);
        if rotated {
            self.rebuild_crl_logged().await;
        }
        self.postsign(&generation.plugins, client_hash, &issued)
            .await;
        Ok(issued)
    }

    /// Renews `serial`: same public key, subject and SANs, a new serial, `validity` (or the
    /// default), through presign and postsign; the new record is linked to the old one.
    pub(crate) async fn renew(
        &self,
        generation: &Generation,
        serial: &Serial,
        validity: Option<ValidityPeriod>,
        actor: &str,
    ) -> Result<(IssuedCertificate, String), ApiError> {
        let old = self
            .store
            .certificate(serial)
            .await?
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
        let csr =
            ValidatedCsr::from_certificate(&old.der, &generation.signing).map_err(|e| match e {
                csrgate_pki::PkiError::InvalidCsr(why) => ApiError::new(
                    ErrorCode::InvalidRequest,
                    format!(
                        "certificate {serial} cannot be renewed under the current signing policy \
                     ({why}); rotate it with a new request instead"
                    ),
                ),
                other => ApiError::from(other),
            })?;
        let Prepared { csr, template } = prepare_validated(
            self.identity.summary(),
            generation,
            &client_hash,
            csr,
            validity,
            Authorize::Skip,
            Via::Renew,
        )
        .await?;
        let predecessor = Predecessor {
            serial: serial.clone(),
            revoke_as: None,
            action: AuditAction::Renew,
            actor: actor.to_owned(),
        };
        let issued = self
            .sign_and_persist(
                &client_hash,
                &csr,
                &template,
                &generation.signing,
                Recorded::by(AuditAction::Renew, actor, Some(&predecessor)),
            )
            .await?;
        self.postsign(&generation.plugins, &client_hash, &issued)
            .await;
        Ok((issued, old.client_hash))
    }

    /// Issues a certificate for a key generated here (`POST /certificates/generate`): the CSR
    /// the key signs goes through intake, the issuance rules, authorize, presign, signing and
    /// postsign as a PUT does; audited as `generate` by `actor`. The key stays with the caller.
    pub(crate) async fn generate(
        &self,
        generation: &Generation,
        client_hash: &ClientHash,
        csr_der: &[u8],
        validity: Option<ValidityPeriod>,
        actor: &str,
    ) -> Result<IssuedCertificate, ApiError> {
        let csr = ValidatedCsr::parse_under(csr_der, &generation.signing)?;
        let recorded = Recorded::by(AuditAction::Generate, actor, None);
        self.issue_validated(
            generation,
            client_hash,
            csr,
            validity,
            Via::Generate,
            recorded,
        )
        .await
    }

    /// Re-issues a certificate made elsewhere under this CA (`POST /certificates/cosign`):
    /// its subject, SANs and key held to today's policy as a request would be, CA:FALSE and
    /// csrgate's key usage whatever it had (the predecessor co-signed CA:TRUE certificates), its
    /// remaining validity clamped to the policy (the default when it has expired), through the
    /// issuance rules, presign and postsign; audited as `cosign` by `actor`.
    pub(crate) async fn cosign(
        &self,
        generation: &Generation,
        client_hash: &ClientHash,
        certificate_der: &[u8],
        actor: &str,
    ) -> Result<IssuedCertificate, ApiError> {
        let not_a_certificate = |e: csrgate_pki::PkiError| match e {
            // A certificate that does not parse, or whose names are no text: the body is wrong.
            csrgate_pki::PkiError::InvalidParameter(why) => {
                ApiError::new(ErrorCode::InvalidRequest, why)
            }
            other => ApiError::from(other),
        };
        let facts =
            csrgate_pki::CertificateFacts::from_der(certificate_der).map_err(not_a_certificate)?;
        let csr = ValidatedCsr::from_certificate(certificate_der, &generation.signing)
            .map_err(not_a_certificate)?;
        // What it had left, clamped to the policy, the client's issuance rule and the CA.
        let now = OffsetDateTime::now_utc();
        let remaining = (facts.not_after - now).whole_seconds();
        let mut cap = generation
            .signing
            .max_validity
            .as_seconds()
            .min((self.identity.summary().not_after - now).whole_seconds());
        if let Ok(Some(rule_max)) = generation.issuance.check(client_hash, &csr) {
            cap = cap.min(rule_max.as_seconds());
        }
        let validity = (remaining > 0).then(|| ValidityPeriod::seconds(remaining.min(cap)));
        let recorded = Recorded::by(AuditAction::Cosign, actor, None);
        self.issue_validated(
            generation,
            client_hash,
            csr,
            validity,
            Via::Cosign,
            recorded,
        )
        .await
    }

    /// The stages after intake for an operator's issuance, then the durable record and postsign.
    async fn issue_validated(
        &self,
        generation: &Generation,
        client_hash: &ClientHash,
        csr: ValidatedCsr,
        validity: Option<ValidityPeriod>,
        via: Via,
        recorded: Recorded<'_>,
    ) -> Result<IssuedCertificate, ApiError> {
        // An operator's cosign re-issues what exists; authorize is for new requests.
        let authorize = if via == Via::Cosign {
            Authorize::Skip
        } else {
            Authorize::Run
        };
        let intent = self.store.write_intent();
        let ca = self.identity.summary();
        let Prepared { csr, template } =
            prepare_validated(ca, generation, client_hash, csr, validity, authorize, via).await?;
        let policy = &generation.signing;
        let issued = self
            .sign_and_persist(client_hash, &csr, &template, policy, recorded)
            .await?;
        drop(intent);
        self.postsign(&generation.plugins, client_hash, &issued)
            .await;
        Ok(issued)
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
            self.metrics.count_postsign_failure();
            tracing::warn!(%client_hash, serial = %issued.serial, error = %failure, "postsign hook failed; the certificate stands");
        }
    }

    async fn sign_and_persist(
        &self,
        client_hash: &ClientHash,
        csr: &ValidatedCsr,
        template: &CertificateTemplate,
        policy: &SigningPolicy,
        recorded: Recorded<'_>,
    ) -> Result<IssuedCertificate, ApiError> {
        // A serial collision (two draws of 104 random bits in the same millisecond) means a broken
        // RNG or a replayed store write, not bad luck; one retry with a fresh serial tells those
        // apart in the log.
        for attempt in 0..2 {
            let issued = self.identity.sign(csr, template, policy)?;
            let record = record_of(client_hash, csr, &issued);
            let stored = match recorded.predecessor {
                Some(old) => self.store.insert_successor(&record, old).await,
                None => {
                    self.store
                        .insert_certificate_as(&record, recorded.action, recorded.actor)
                        .await
                }
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
        serial: issued.serial.clone(),
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
