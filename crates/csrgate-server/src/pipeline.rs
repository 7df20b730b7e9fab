//! The signing pipeline, one stage per step: intake → authorize → template → presign → sign →
//! persist → postsign. The 200 is only possible after persist returned, i.e. after the flush.

use csrgate_pki::{Identity, IssuedCertificate, SigningPolicy, ValidatedCsr};
use csrgate_store::{CertificateRecord, CertificateStatus, Store, StoreError};
use time::OffsetDateTime;

use crate::api_error::ApiError;
use crate::{ClientHash, Hooks};

/// Everything a request needs: the unlocked CA, the policy, the hooks and the store.
#[derive(Debug)]
pub struct Gateway {
    identity: Identity,
    policy: SigningPolicy,
    hooks: Hooks,
    store: Store,
}

impl Gateway {
    /// Assembles the gateway from its parts.
    pub fn new(identity: Identity, policy: SigningPolicy, hooks: Hooks, store: Store) -> Self {
        Gateway {
            identity,
            policy,
            hooks,
            store,
        }
    }

    /// The CA identity (public parts are served at `/ca.pem`).
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Runs one CSR through every stage and returns the durable, signed certificate.
    pub(crate) async fn issue(
        &self,
        client_hash: &ClientHash,
        body: &[u8],
    ) -> Result<IssuedCertificate, ApiError> {
        let csr = ValidatedCsr::parse(body)?;
        if csr.requests_ca() {
            tracing::info!(%client_hash, "the CSR asks for CA:TRUE; the certificate is CA:FALSE as always");
        }
        self.hooks.authorize(client_hash, &csr).await?;
        let template = self
            .identity
            .template_for(&csr, &self.policy, OffsetDateTime::now_utc());
        let template = self.hooks.presign(client_hash, &csr, template).await?;
        let issued = self.sign_and_persist(client_hash, &csr, &template).await?;
        self.hooks.postsign(client_hash, &issued).await;
        Ok(issued)
    }

    async fn sign_and_persist(
        &self,
        client_hash: &ClientHash,
        csr: &ValidatedCsr,
        template: &csrgate_pki::CertificateTemplate,
    ) -> Result<IssuedCertificate, ApiError> {
        // A serial collision among 2^159 values means a broken RNG or a replayed store write, not
        // bad luck; one retry with a fresh serial tells those apart in the log.
        for attempt in 0..2 {
            let issued = self.identity.sign(csr, template, &self.policy)?;
            let record = record_of(client_hash, csr, &issued);
            match self.store.insert_certificate(&record).await {
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
    }
}
