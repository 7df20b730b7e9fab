//! csrgate-server: the only crate that knows actix-web. It owns the configuration, the HTTP routes
//! and API types, the mapping of errors to stable codes, and the signing pipeline that combines the
//! identity (csrgate-pki), the hooks and the store (csrgate-store).

#![forbid(unsafe_code)]

mod api_error;
mod client_hash;
mod config;
mod hooks;
mod pipeline;
mod routes;
mod runtime;

pub use client_hash::ClientHash;
pub use config::{ConfigError, ServerConfig, SettingsSources};
pub use hooks::Hooks;
pub use pipeline::Gateway;
pub use runtime::{bind, run};
