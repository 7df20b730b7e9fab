//! csrgate-server: the only crate that knows actix-web. It owns the configuration, the HTTP routes
//! and API types, the mapping of errors to stable codes, and the signing pipeline that combines the
//! identity (csrgate-pki), the hooks and the store (csrgate-store).

#![forbid(unsafe_code)]

mod acme;
mod admin;
pub mod admin_bodies;
mod admin_routes;
mod api_error;
mod bridge;
mod client_hash;
mod config;
mod crl_publisher;
mod error_code;
mod est;
mod expect;
mod generation;
mod hooks;
mod issuance;
mod issuer_crl;
mod metrics;
mod ocsp_responder;
pub mod openapi;
mod pipeline;
mod routes;
mod runtime;
mod secret_file;
mod tls;

pub use acme::{AcmeConfig, AcmeSettings};
pub use admin::AdminTokens;
pub use api_error::ApiError;
pub use bridge::template_json;
pub use client_hash::ClientHash;
pub use config::{
    AdminListen, ConfigError, LogFormat, OcspResponderKind, ServerConfig, SettingsSources,
    StoreBackend, dev_admin_token_file, dev_tls_files,
};
pub use crl_publisher::{CrlPublisher, PublishedCrl};
pub use error_code::ErrorCode;
pub use est::EstCredentials;
pub use generation::{Generation, GenerationParts, Generations};
pub use hooks::PluginLoader;
pub use issuance::{IssuancePolicy, IssuanceRule, Refusal};
pub use issuer_crl::IssuerCrl;
pub use metrics::{Metrics, SharedMetrics};
pub use ocsp_responder::{DelegatedRenewal, OcspAnswer, OcspResponder};
pub use pipeline::{DryRun, Gateway, Prepared, dry_run, prepare};
pub use runtime::{Listener, Reload, bind, run, warn_if_open};
pub use tls::{TlsFiles, TlsMaterial};
