//! The hook stages of the signing pipeline: authorize, presign, postsign.
//!
//! No plugin host is wired in yet, so every stage is the identity: authorize allows, presign returns
//! the template unchanged, postsign observes nothing. The WASM host replaces the bodies of these
//! three methods; the pipeline around them does not change.

use csrgate_pki::{CertificateTemplate, IssuedCertificate, ValidatedCsr};

use crate::ClientHash;
use crate::api_error::ApiError;

/// The configured hooks (none yet).
#[derive(Debug, Default)]
pub struct Hooks {
    _private: (),
}

impl Hooks {
    /// Every authorize hook must allow; the first denial becomes a 403.
    pub(crate) async fn authorize(
        &self,
        _client_hash: &ClientHash,
        _csr: &ValidatedCsr,
    ) -> Result<(), ApiError> {
        Ok(())
    }

    /// Threads the template through the presign hooks in order.
    pub(crate) async fn presign(
        &self,
        _client_hash: &ClientHash,
        _csr: &ValidatedCsr,
        template: CertificateTemplate,
    ) -> Result<CertificateTemplate, ApiError> {
        Ok(template)
    }

    /// Shows the signed and persisted certificate to the postsign hooks; failures are only logged.
    pub(crate) async fn postsign(&self, _client_hash: &ClientHash, _issued: &IssuedCertificate) {}
}
