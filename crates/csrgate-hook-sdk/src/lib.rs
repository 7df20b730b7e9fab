//! csrgate-hook-sdk: write a csrgate hook plugin in Rust.
//!
//! Implement [`Plugin`] (every hook has a default: authorize allows, presign returns the template
//! unchanged, postsign does nothing), then export it:
//!
//! ```no_run
//! use csrgate_hook_sdk::{Decision, Plugin, SigningRequest};
//!
//! #[derive(serde::Deserialize)]
//! struct AllowClients {
//!     clients: Vec<String>,
//! }
//!
//! impl Plugin for AllowClients {
//!     fn init(config: &str) -> Result<Self, String> {
//!         csrgate_hook_sdk::parse_config(config)
//!     }
//!
//!     fn authorize(&self, request: &SigningRequest) -> Decision {
//!         if self.clients.iter().any(|c| *c == request.client_hash) {
//!             Decision::Allow
//!         } else {
//!             Decision::Deny(format!("client {} is not on the allowlist", request.client_hash))
//!         }
//!     }
//! }
//!
//! csrgate_hook_sdk::export_plugin!(AllowClients);
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2` (crate-type `cdylib`); the
//! `.wasm` in `target/wasm32-wasip2/release/` is the component csrgate loads (keep to that target:
//! its allocator never grows linear memory for small allocations, and a component that grows
//! memory in every instance pays two `mprotect`s and a TLB shootdown per call). The contract is
//! `wit/v0.2.0/hooks.wit` in the csrgate repository; this crate depends on nothing of the host.

#![forbid(unsafe_code)]

#[doc(hidden)]
#[allow(clippy::too_many_arguments, missing_docs)] // generated code
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/v0.2.0",
        world: "plugin",
        pub_export_macro: true,
        export_macro_name: "__export_plugin_world",
        default_bindings_module: "csrgate_hook_sdk::bindings",
    });
}

pub use bindings::csrgate::hooks::types::{
    CertificateTemplate, Decision, ExtendedKeyUsage, Extension, KeyAlgorithm, KeyUsage,
    NameAttribute, RequestVia, SignedCertificate, SigningRequest, SubjectAltName,
};

/// The contract version this SDK implements.
pub const CONTRACT_VERSION: &str = "0.2.0";

/// A hook plugin. csrgate creates a fresh instance for every request, calls [`Plugin::init`]
/// with the configuration and then one hook, so `self` lives for one request only.
pub trait Plugin: Sized + Send + Sync + 'static {
    /// Builds the plugin from its configuration table (JSON text, `{}` when none is configured).
    /// Use [`parse_config`] for serde types. An error refuses the plugin at load time.
    fn init(config: &str) -> Result<Self, String>;

    /// May this request be signed? The default allows.
    fn authorize(&self, _request: &SigningRequest) -> Decision {
        Decision::Allow
    }

    /// Returns the template to sign. The default returns it unchanged.
    fn presign(
        &self,
        _request: &SigningRequest,
        template: CertificateTemplate,
    ) -> Result<CertificateTemplate, String> {
        Ok(template)
    }

    /// Observes the signed, recorded certificate. The default does nothing.
    fn postsign(&self, _certificate: &SignedCertificate) {}
}

/// Parses the JSON configuration into a serde type, with a readable error.
pub fn parse_config<T: serde::de::DeserializeOwned>(config: &str) -> Result<T, String> {
    serde_json::from_str(config).map_err(|e| format!("invalid plugin configuration: {e}"))
}

/// Exports a [`Plugin`] implementation as the component's `init`/`authorize`/`presign`/`postsign`.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        #[doc(hidden)]
        struct __CsrgateHookGuest;

        #[doc(hidden)]
        static __CSRGATE_HOOK_PLUGIN: ::std::sync::OnceLock<$plugin> = ::std::sync::OnceLock::new();

        impl __CsrgateHookGuest {
            fn plugin() -> ::std::result::Result<&'static $plugin, ::std::string::String> {
                __CSRGATE_HOOK_PLUGIN
                    .get()
                    .ok_or_else(|| ::std::string::String::from("the plugin was not initialised"))
            }
        }

        impl $crate::bindings::Guest for __CsrgateHookGuest {
            fn init(config: ::std::string::String) -> ::std::result::Result<(), ::std::string::String> {
                let plugin = <$plugin as $crate::Plugin>::init(&config)?;
                let _ = __CSRGATE_HOOK_PLUGIN.set(plugin);
                Ok(())
            }

            fn authorize(request: $crate::SigningRequest) -> $crate::Decision {
                match Self::plugin() {
                    Ok(plugin) => $crate::Plugin::authorize(plugin, &request),
                    Err(why) => $crate::Decision::Deny(why),
                }
            }

            fn presign(
                request: $crate::SigningRequest,
                template: $crate::CertificateTemplate,
            ) -> ::std::result::Result<$crate::CertificateTemplate, ::std::string::String> {
                $crate::Plugin::presign(Self::plugin()?, &request, template)
            }

            fn postsign(certificate: $crate::SignedCertificate) {
                if let Ok(plugin) = Self::plugin() {
                    $crate::Plugin::postsign(plugin, &certificate);
                }
            }
        }

        $crate::bindings::__export_plugin_world!(__CsrgateHookGuest with_types_in $crate::bindings);
    };
}

/// Logging into the daemon's log, tagged with the plugin's name; at most 32 lines per call (the rest
/// are dropped and counted in `csrgate_plugin_log_lines_dropped_total`).
pub mod log {
    use crate::bindings::csrgate::hooks::host::{self, LogLevel};

    /// Logs at debug level.
    pub fn debug(message: &str) {
        host::log(LogLevel::Debug, message);
    }

    /// Logs at info level.
    pub fn info(message: &str) {
        host::log(LogLevel::Info, message);
    }

    /// Logs at warn level.
    pub fn warn(message: &str) {
        host::log(LogLevel::Warn, message);
    }

    /// Logs at error level.
    pub fn error(message: &str) {
        host::log(LogLevel::Error, message);
    }
}

/// The plugin's private key-value store, persisted by the daemon. Writes are buffered in the
/// call and applied when the hook returns (a trapped or timed-out call writes nothing); `get`
/// sees the call's own writes. Per call at most 64 writes and 256 KiB; the whole namespace at
/// most the plugin's `kv_quota` (default 16 MiB). A refused write is an `Err` naming the limit.
pub mod kv {
    use crate::bindings::csrgate::hooks::host;

    /// Reads a value.
    pub fn get(key: &str) -> Option<Vec<u8>> {
        host::kv_get(key)
    }

    /// Writes a value (key ≤ 256 bytes, value ≤ 64 KiB).
    pub fn set(key: &str, value: &[u8]) -> Result<(), String> {
        host::kv_set(key, value)
    }

    /// Removes a key.
    pub fn delete(key: &str) -> Result<(), String> {
        host::kv_delete(key)
    }
}

/// Wall-clock time, Unix seconds.
pub fn now() -> i64 {
    bindings::csrgate::hooks::host::now()
}

/// The DNS names among a request's or template's SANs.
pub fn dns_names(sans: &[SubjectAltName]) -> impl Iterator<Item = &str> {
    sans.iter().filter_map(|san| match san {
        SubjectAltName::Dns(name) => Some(name.as_str()),
        _ => None,
    })
}

/// True when `name` equals `suffix` without its leading dot, or ends with `suffix` at a label
/// boundary: `dns_name_under("a.example.org", "example.org")` and `(.., ".example.org")` are true,
/// `dns_name_under("badexample.org", "example.org")` is false. Case-insensitive.
pub fn dns_name_under(name: &str, suffix: &str) -> bool {
    let name = name.to_ascii_lowercase();
    let suffix = suffix.trim_start_matches('.').to_ascii_lowercase();
    if suffix.is_empty() {
        return false;
    }
    name == suffix || name.ends_with(&format!(".{suffix}"))
}

/// True when the IP address text `ip` lies in the network `cidr` ("10.0.0.0/8", "fd00::/8").
/// Unparsable input is never inside.
pub fn ip_in_network(ip: &str, cidr: &str) -> bool {
    use std::net::IpAddr;
    let Some((network, prefix)) = cidr.split_once('/') else {
        return false;
    };
    let (Ok(ip), Ok(network), Ok(prefix)) = (
        ip.parse::<IpAddr>(),
        network.parse::<IpAddr>(),
        prefix.parse::<u32>(),
    ) else {
        return false;
    };
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(net)) if prefix <= 32 => {
            let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) if prefix <= 128 => {
            let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// Adds a CRL distribution point URI to the template unless it is already there.
pub fn add_crl_distribution_point(template: &mut CertificateTemplate, uri: &str) {
    if !template.crl_distribution_points.iter().any(|u| u == uri) {
        template.crl_distribution_points.push(uri.to_owned());
    }
}

/// Sets the template's validity to `days` from its not-before (the host still clamps nothing:
/// it refuses a template past the CA's validity or the configured maximum).
pub fn set_validity_days(template: &mut CertificateTemplate, days: i64) {
    template.not_after = template
        .not_before
        .saturating_add(days.saturating_mul(86_400));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_suffixes_match_at_label_boundaries() {
        assert!(dns_name_under("a.example.org", "example.org"));
        assert!(dns_name_under("A.Example.ORG", ".example.org"));
        assert!(dns_name_under("example.org", ".example.org"));
        assert!(!dns_name_under("badexample.org", "example.org"));
        assert!(!dns_name_under("example.org.evil", "example.org"));
        assert!(!dns_name_under("x", ""));
    }

    #[test]
    fn networks_contain_their_addresses_only() {
        assert!(ip_in_network("10.0.0.7", "10.0.0.0/8"));
        assert!(!ip_in_network("11.0.0.7", "10.0.0.0/8"));
        assert!(ip_in_network("1.2.3.4", "0.0.0.0/0"));
        assert!(ip_in_network("fd00::1", "fd00::/8"));
        assert!(!ip_in_network("fe80::1", "fd00::/8"));
        assert!(!ip_in_network("10.0.0.7", "fd00::/8"));
        assert!(!ip_in_network("10.0.0.7", "10.0.0.0/33"));
        assert!(!ip_in_network("junk", "10.0.0.0/8"));
    }
}
