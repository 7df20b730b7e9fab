//! Configuration: defaults, then the TOML file (`--config`), then `CSRGATE_*` environment variables,
//! then command-line flags; the merged result is validated into a [`ServerConfig`] before anything
//! is opened or bound.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use csrgate_hooks::{DEFAULT_DEADLINE, DEFAULT_MEMORY_BYTES, Hook, PluginSpec};
use csrgate_pki::{ExtendedKeyUsage, KeyAlgorithm, SigningPolicy, SubjectAltName, ValidityPeriod};
use serde::Deserialize;

use crate::ClientHash;
use crate::issuance::{IssuancePolicy, IssuanceRule};
use crate::tls::TlsFiles;

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A source could not be read or merged (unreadable file, TOML syntax, unknown key, wrong type).
    #[error("configuration: {0}")]
    Source(String),
    /// A value parsed but is not acceptable.
    #[error("configuration key `{key}`: {reason}")]
    Invalid {
        /// The dotted key, e.g. `signing.default_validity`.
        key: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// What the command line contributes; `None`/empty means "not given on the command line".
#[derive(Clone, Debug, Default)]
pub struct SettingsSources {
    /// `--config FILE`.
    pub config_file: Option<PathBuf>,
    /// `--listen ADDR` (repeatable).
    pub listen: Vec<String>,
    /// `--identity DIR`.
    pub identity: Option<PathBuf>,
    /// `--data DIR`.
    pub data: Option<PathBuf>,
    /// `--dev`.
    pub dev: bool,
    /// `--passphrase-file FILE`.
    pub passphrase_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    listen: Vec<String>,
    identity: PathBuf,
    data: PathBuf,
    dev: bool,
    passphrase_file: Option<PathBuf>,
    max_body_bytes: u64,
    signing: RawSigning,
    plugin_cache: Option<PathBuf>,
    #[serde(default)]
    plugins: Vec<RawPlugin>,
    admin_tokens_file: Option<PathBuf>,
    est_credentials_file: Option<PathBuf>,
    acme: bool,
    acme_eab_file: Option<PathBuf>,
    acme_client_hashes: Vec<String>,
    acme_http01_port: u16,
    acme_tls_alpn01_port: u16,
    acme_validation_address: Option<String>,
    acme_dns_resolver: Option<String>,
    crl: RawCrl,
    listen_unix: Option<PathBuf>,
    listen_unix_mode: String,
    strict_permissions: bool,
    max_connections: usize,
    request_timeout: String,
    #[serde(default)]
    issuance: Vec<RawIssuanceRule>,
    open_issuance: bool,
    log_level: String,
    log_format: String,
    listen_tls: Vec<String>,
    tls_certificate: Option<PathBuf>,
    tls_private_key: Option<PathBuf>,
    tls_key_passphrase_file: Option<PathBuf>,
    tls_client_ca: Option<PathBuf>,
    admin_listen: Vec<String>,
    ocsp_url: Option<String>,
    crl_url: Option<String>,
    ocsp_responder: String,
    root_crl: Option<PathBuf>,
    retention: Option<String>,
    store: String,
    postgres_url: Option<String>,
    postgres_password_file: Option<PathBuf>,
    postgres_pool_size: usize,
    postgres_ca_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIssuanceRule {
    name: String,
    clients: Option<Vec<String>>,
    #[serde(default)]
    dns: Vec<String>,
    #[serde(default)]
    wildcards: bool,
    #[serde(default)]
    ip: Vec<String>,
    #[serde(default)]
    email_domains: Vec<String>,
    #[serde(default)]
    uri_prefixes: Vec<String>,
    key_types: Option<Vec<String>>,
    min_rsa_bits: Option<u32>,
    max_validity: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCrl {
    validity: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlugin {
    name: String,
    path: PathBuf,
    hooks: Vec<String>,
    deadline: Option<String>,
    memory: Option<String>,
    kv_quota: Option<String>,
    #[serde(default)]
    config: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSigning {
    default_validity: String,
    max_validity: String,
    backdate: String,
    extended_key_usage: Vec<String>,
    allow_sha1_requests: bool,
    allow_single_label_wildcards: bool,
}

/// The validated configuration of `csrgate serve`.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// TCP addresses to listen on.
    pub listen: Vec<SocketAddr>,
    /// The identity directory.
    pub identity_dir: PathBuf,
    /// The data directory (the store).
    pub data_dir: PathBuf,
    /// Development mode: create a throw-away identity and data dir when absent.
    pub dev: bool,
    /// A file holding the CA passphrase.
    pub passphrase_file: Option<PathBuf>,
    /// The largest accepted request body.
    pub max_body_bytes: usize,
    /// Rules for leaf certificates.
    pub policy: SigningPolicy,
    /// Where compiled plugins are cached (default `<data>/plugin-cache`).
    pub plugin_cache: PathBuf,
    /// Plugins in configuration order.
    pub plugins: Vec<PluginSpec>,
    /// File of admin tokens (`NAME TOKEN` per line); the credential `admin-tokens` wins over it.
    pub admin_tokens_file: Option<PathBuf>,
    /// File of EST credentials (`CLIENT_HASH USERNAME PASSWORD` per line, RFC 7030 3.2.3); the
    /// credential `est-credentials` wins over it. EST is served on `listen_tls` listeners.
    pub est_credentials_file: Option<PathBuf>,
    /// ACME (RFC 8555) on the `listen_tls` listeners: `acme = true` and the `acme_*` keys.
    pub acme: crate::acme::AcmeSettings,
    /// nextUpdate − thisUpdate of every CRL.
    pub crl_validity: ValidityPeriod,
    /// A Unix stream socket to listen on as well (when not socket-activated).
    pub listen_unix: Option<PathBuf>,
    /// Its file mode, e.g. 0o660 so that nginx's group can connect.
    pub listen_unix_mode: u32,
    /// Refuse to start when the CA key file is readable by group or others (else: warn).
    pub strict_permissions: bool,
    /// Open connections at most; further ones wait in the listen backlog.
    pub max_connections: usize,
    /// How long a client may take to send a request's head, and then its body.
    pub request_timeout: std::time::Duration,
    /// The `[[issuance]]` rules.
    pub issuance: IssuancePolicy,
    /// TCP addresses to serve HTTPS on, with `tls`.
    pub listen_tls: Vec<SocketAddr>,
    /// The TLS certificate, key and client CA (`None` without TLS listeners).
    pub tls: Option<TlsFiles>,
    /// A file holding the TLS key's passphrase when it differs from the CA's.
    pub tls_key_passphrase_file: Option<PathBuf>,
    /// `--dev` makes the TLS certificate itself (from the development CA) when it is absent.
    pub dev_tls: bool,
    /// Admin-only listeners; when any is set, the public listeners serve no admin endpoint.
    pub admin_listen: Vec<AdminListen>,
    /// What to log: a tracing filter (`info`, `warn,csrgate_hooks=debug`); `RUST_LOG` wins.
    pub log_level: String,
    /// How to log: one text line or one JSON object per event.
    pub log_format: LogFormat,
    /// `open_issuance = true`: the operator accepts that nothing restricts issuance.
    pub open_issuance: bool,
    /// Who signs OCSP responses (`ocsp_responder`).
    pub ocsp_responder: OcspResponderKind,
    /// The issuer's CRL file (`root_crl`), served at `/crl/root.pem` and `/crl-chain.pem`.
    pub root_crl: Option<PathBuf>,
    /// The store of record (`store`, `postgres_*`).
    pub store: StoreBackend,
    /// `retention`: certificates expired for longer are removed (audited); `None` keeps all.
    pub retention: Option<ValidityPeriod>,
    /// `--dev` without configured admin tokens: the development token file in the identity
    /// directory (`dev-admin-token`), created at start when absent.
    pub dev_admin_token: Option<PathBuf>,
}

/// The store of record: `store = "sled"` (default: embedded, in the data directory) or
/// `store = "postgres"`, shared by several replicas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreBackend {
    /// sled in `<data>/sled`.
    Sled,
    /// PostgreSQL at `postgres_url` (libpq URL without a password).
    Postgres {
        /// `postgres_url`, e.g. `postgres://csrgate@db.internal/csrgate`.
        url: String,
        /// `postgres_password_file`; the systemd credential `postgres-password` wins over it.
        password_file: Option<PathBuf>,
        /// `postgres_pool_size`: connections this replica keeps at most (default 16).
        pool_size: usize,
        /// `postgres_ca_file`: the CA certificates the server's must chain to under
        /// `sslmode=require` (default: the system's trust store).
        ca_file: Option<PathBuf>,
    },
}

/// Who signs OCSP responses (RFC 6960 4.2.2.2): `ocsp_responder = "ca"` (default) or
/// `"delegated"`: a responder certificate in the identity directory
/// (`ocsp-signer.crt`/`.key`, made by `csrgate identity ocsp-signer` or at start), renewed by
/// the daemon when a third of its validity is left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OcspResponderKind {
    /// The CA key signs.
    Ca,
    /// The delegated responder certificate's key signs.
    Delegated,
}

/// An admin-only listener (`admin_listen`): `IP:PORT` (HTTP), `tls://IP:PORT` (HTTPS with the
/// TLS material, client certificates included) or `unix:/path` (mode `listen_unix_mode`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminListen {
    /// Plain HTTP on TCP.
    Tcp(SocketAddr),
    /// HTTPS on TCP.
    Tls(SocketAddr),
    /// A Unix stream socket.
    Unix(PathBuf),
}

impl std::str::FromStr for AdminListen {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Some(path) = text.strip_prefix("unix:") {
            let path = PathBuf::from(path);
            return if path.is_absolute() {
                Ok(AdminListen::Unix(path))
            } else {
                Err(format!("{text:?}: a Unix socket path must be absolute"))
            };
        }
        let (tls, address) = match text.strip_prefix("tls://") {
            Some(address) => (true, address),
            None => (false, text),
        };
        let address = address
            .parse::<SocketAddr>()
            .map_err(|_| format!("{text:?}: use IP:PORT, tls://IP:PORT or unix:/absolute/path"))?;
        Ok(if tls {
            AdminListen::Tls(address)
        } else {
            AdminListen::Tcp(address)
        })
    }
}

/// The TLS files of `--dev` when none are configured: made from the development CA.
pub fn dev_tls_files(identity_dir: &Path) -> (PathBuf, PathBuf) {
    (
        identity_dir.join("dev-tls.crt"),
        identity_dir.join("dev-tls.key"),
    )
}

/// The form of log lines (`log_format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// `2026-11-29T10:00:00Z  INFO message key=value`, without the time under journald.
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `fields` (with `message`).
    Json,
}

/// The development admin token file of `--dev` (`<identity>/dev-admin-token`).
pub fn dev_admin_token_file(identity_dir: &Path) -> PathBuf {
    identity_dir.join("dev-admin-token")
}

/// The largest `max_body_bytes` accepted: a CSR is a few KiB; megabytes only help an attacker.
const MAX_BODY_LIMIT: u64 = 1 << 20;

impl ServerConfig {
    /// Merges every source and validates the result.
    pub fn load(sources: &SettingsSources) -> Result<Self, ConfigError> {
        let source_error = |e: config::ConfigError| ConfigError::Source(e.to_string());
        let defaults = SigningPolicy::default();
        let eku_defaults: Vec<String> = defaults
            .extended_key_usage
            .iter()
            .map(ToString::to_string)
            .collect();
        let mut builder = config::Config::builder()
            .set_default("listen", vec!["127.0.0.1:8080"])
            .and_then(|b| b.set_default("identity", "identity"))
            .and_then(|b| b.set_default("data", "data"))
            .and_then(|b| b.set_default("dev", false))
            .and_then(|b| b.set_default("max_body_bytes", 64 * 1024))
            .and_then(|b| {
                b.set_default(
                    "signing.default_validity",
                    defaults.default_validity.to_string(),
                )
            })
            .and_then(|b| b.set_default("signing.max_validity", defaults.max_validity.to_string()))
            .and_then(|b| b.set_default("signing.backdate", defaults.backdate.to_string()))
            .and_then(|b| b.set_default("signing.extended_key_usage", eku_defaults))
            .and_then(|b| b.set_default("signing.allow_sha1_requests", false))
            .and_then(|b| b.set_default("signing.allow_single_label_wildcards", false))
            .and_then(|b| b.set_default("crl.validity", "7d"))
            .and_then(|b| b.set_default("listen_unix_mode", "0660"))
            .and_then(|b| b.set_default("strict_permissions", false))
            .and_then(|b| b.set_default("max_connections", 1024))
            .and_then(|b| b.set_default("request_timeout", "10s"))
            .and_then(|b| b.set_default("open_issuance", false))
            .and_then(|b| b.set_default("log_level", "info"))
            .and_then(|b| b.set_default("log_format", "text"))
            .and_then(|b| b.set_default("listen_tls", Vec::<String>::new()))
            .and_then(|b| b.set_default("admin_listen", Vec::<String>::new()))
            .and_then(|b| b.set_default("ocsp_responder", "ca"))
            .and_then(|b| b.set_default("store", "sled"))
            .and_then(|b| b.set_default("postgres_pool_size", 16))
            .and_then(|b| b.set_default("acme", false))
            .and_then(|b| b.set_default("acme_client_hashes", vec!["acme"]))
            .and_then(|b| b.set_default("acme_http01_port", 80))
            .and_then(|b| b.set_default("acme_tls_alpn01_port", 443))
            .map_err(source_error)?;
        if let Some(file) = &sources.config_file {
            if !file.is_file() {
                return Err(ConfigError::Source(format!(
                    "config file {} does not exist or is not a file",
                    file.display()
                )));
            }
            builder = builder
                .add_source(config::File::from(file.as_path()).format(config::FileFormat::Toml));
        }
        builder = builder.add_source(
            config::Environment::with_prefix("CSRGATE")
                .prefix_separator("_")
                .separator("__")
                .list_separator(",")
                .with_list_parse_key("listen")
                .with_list_parse_key("listen_tls")
                .with_list_parse_key("admin_listen")
                .with_list_parse_key("acme_client_hashes")
                .with_list_parse_key("signing.extended_key_usage")
                .try_parsing(true),
        );
        if !sources.listen.is_empty() {
            builder = builder
                .set_override("listen", sources.listen.clone())
                .map_err(source_error)?;
        }
        for (key, value) in [
            ("identity", &sources.identity),
            ("data", &sources.data),
            ("passphrase_file", &sources.passphrase_file),
        ] {
            if let Some(path) = value {
                builder = builder
                    .set_override(key, path.to_string_lossy().into_owned())
                    .map_err(source_error)?;
            }
        }
        if sources.dev {
            builder = builder.set_override("dev", true).map_err(source_error)?;
        }
        let raw: RawSettings = builder
            .build()
            .and_then(config::Config::try_deserialize)
            .map_err(source_error)?;
        raw.validate()
    }
}

impl RawSettings {
    fn validate(self) -> Result<ServerConfig, ConfigError> {
        if self.listen.is_empty() {
            return Err(ConfigError::Invalid {
                key: "listen",
                reason: "at least one address is needed".into(),
            });
        }
        let listen = self
            .listen
            .iter()
            .map(|text| {
                text.trim()
                    .parse::<SocketAddr>()
                    .map_err(|_| ConfigError::Invalid {
                        key: "listen",
                        reason: format!(
                            "{text:?} is not IP:PORT (e.g. 127.0.0.1:8080 or [::1]:8080)"
                        ),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !(1..=MAX_BODY_LIMIT).contains(&self.max_body_bytes) {
            return Err(ConfigError::Invalid {
                key: "max_body_bytes",
                reason: format!("must be between 1 and {MAX_BODY_LIMIT}"),
            });
        }
        let period = |key: &'static str, text: &str| {
            text.parse::<ValidityPeriod>()
                .map_err(|e| ConfigError::Invalid {
                    key,
                    reason: e.to_string(),
                })
        };
        let extended_key_usage = self
            .signing
            .extended_key_usage
            .iter()
            .map(|text| {
                text.trim()
                    .parse::<ExtendedKeyUsage>()
                    .map_err(|e| ConfigError::Invalid {
                        key: "signing.extended_key_usage",
                        reason: e.to_string(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if extended_key_usage.contains(&ExtendedKeyUsage::OcspSigning) {
            return Err(ConfigError::Invalid {
                key: "signing.extended_key_usage",
                reason: "OCSPSigning would let every certificate answer OCSP for the whole CA; \
                         the delegated responder has its own (`csrgate identity ocsp-signer`)"
                    .into(),
            });
        }
        for (key, url) in [("ocsp_url", &self.ocsp_url), ("crl_url", &self.crl_url)] {
            if let Some(url) = url
                && !(url.starts_with("http://") || url.starts_with("https://"))
            {
                return Err(ConfigError::Invalid {
                    key,
                    reason: format!(
                        "{url:?}: relying parties fetch it over HTTP (RFC 5280 4.2.1.13, RFC 6960 \
                         appendix A); give an http:// URL"
                    ),
                });
            }
        }
        let policy = SigningPolicy {
            default_validity: period("signing.default_validity", &self.signing.default_validity)?,
            max_validity: period("signing.max_validity", &self.signing.max_validity)?,
            backdate: period("signing.backdate", &self.signing.backdate)?,
            extended_key_usage,
            allow_sha1_requests: self.signing.allow_sha1_requests,
            allow_single_label_wildcards: self.signing.allow_single_label_wildcards,
            crl_distribution_points: self.crl_url.clone().into_iter().collect(),
            ocsp_urls: self.ocsp_url.clone().into_iter().collect(),
        };
        policy.check().map_err(|e| ConfigError::Invalid {
            key: "signing",
            reason: e.to_string(),
        })?;
        let plugins = self
            .plugins
            .into_iter()
            .map(RawPlugin::validate)
            .collect::<Result<Vec<_>, _>>()?;
        let mut names = std::collections::HashSet::new();
        if let Some(twice) = plugins.iter().find(|p| !names.insert(p.name.clone())) {
            return Err(ConfigError::Invalid {
                key: "plugins",
                reason: format!("the name {:?} is used twice", twice.name),
            });
        }
        let ocsp_responder = match self.ocsp_responder.as_str() {
            "ca" => OcspResponderKind::Ca,
            "delegated" => OcspResponderKind::Delegated,
            other => {
                return Err(ConfigError::Invalid {
                    key: "ocsp_responder",
                    reason: format!("{other:?}: expected \"ca\" or \"delegated\""),
                });
            }
        };
        let store = match (self.store.as_str(), self.postgres_url) {
            ("sled", None) => StoreBackend::Sled,
            ("sled", Some(_)) => {
                return Err(ConfigError::Invalid {
                    key: "postgres_url",
                    reason: "set, but store = \"sled\"; add store = \"postgres\" to use it".into(),
                });
            }
            ("postgres", None) => {
                return Err(ConfigError::Invalid {
                    key: "postgres_url",
                    reason: "store = \"postgres\" needs postgres_url, e.g. \
                             \"postgres://csrgate@db.internal/csrgate\""
                        .into(),
                });
            }
            ("postgres", Some(url)) => {
                let checked = csrgate_store::PostgresConfig {
                    url: url.clone(),
                    password: None,
                    pool_size: self.postgres_pool_size,
                    ca_file: self.postgres_ca_file.clone(),
                };
                if let Err(error) = checked.driver_config() {
                    return Err(ConfigError::Invalid {
                        key: "postgres_url",
                        reason: match error {
                            csrgate_store::StoreError::Open { reason, .. } => reason,
                            other => other.to_string(),
                        },
                    });
                }
                if !(1..=1024).contains(&self.postgres_pool_size) {
                    return Err(ConfigError::Invalid {
                        key: "postgres_pool_size",
                        reason: format!("{}: expected 1 to 1024", self.postgres_pool_size),
                    });
                }
                if let Err(error) = checked.tls() {
                    return Err(ConfigError::Invalid {
                        key: "postgres_ca_file",
                        reason: error.to_string(),
                    });
                }
                StoreBackend::Postgres {
                    url,
                    password_file: self.postgres_password_file,
                    pool_size: self.postgres_pool_size,
                    ca_file: self.postgres_ca_file,
                }
            }
            (other, _) => {
                return Err(ConfigError::Invalid {
                    key: "store",
                    reason: format!("{other:?}: expected \"sled\" or \"postgres\""),
                });
            }
        };
        let retention = self
            .retention
            .as_deref()
            .map(|text| period("retention", text))
            .transpose()?;
        if let Some(retention) = retention
            && retention.as_seconds() < 86_400
        {
            return Err(ConfigError::Invalid {
                key: "retention",
                reason: format!(
                    "{}s: at least 1d (certificates are removed that long after they expired)",
                    retention.as_seconds()
                ),
            });
        }
        let crl_validity = period("crl.validity", &self.crl.validity)?;
        if crl_validity.as_seconds() < 3600 {
            return Err(ConfigError::Invalid {
                key: "crl.validity",
                reason: "must be at least 1h".into(),
            });
        }
        let listen_unix_mode =
            u32::from_str_radix(self.listen_unix_mode.trim_start_matches("0o"), 8)
                .ok()
                .filter(|mode| *mode <= 0o777)
                .ok_or_else(|| ConfigError::Invalid {
                    key: "listen_unix_mode",
                    reason: format!(
                        "{:?} is not an octal file mode like 0660",
                        self.listen_unix_mode
                    ),
                })?;
        if self.max_connections == 0 || self.max_connections > 1 << 20 {
            return Err(ConfigError::Invalid {
                key: "max_connections",
                reason: "must be 1 to 1048576".into(),
            });
        }
        let request_timeout = period("request_timeout", &self.request_timeout)?;
        if !(1..=600).contains(&request_timeout.as_seconds()) {
            return Err(ConfigError::Invalid {
                key: "request_timeout",
                reason: "must be 1s to 10m".into(),
            });
        }
        let issuance = IssuancePolicy::new(
            self.issuance
                .into_iter()
                .map(RawIssuanceRule::validate)
                .collect::<Result<Vec<_>, _>>()?,
        );
        check_rules_apart(&issuance)?;
        let log_format = match self.log_format.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(ConfigError::Invalid {
                    key: "log_format",
                    reason: format!("{other:?}: use text or json"),
                });
            }
        };
        if self.log_level.trim().is_empty() {
            return Err(ConfigError::Invalid {
                key: "log_level",
                reason: "use a level (error, warn, info, debug, trace) or a filter like \
                         info,csrgate_hooks=debug"
                    .into(),
            });
        }
        let listen_tls = self
            .listen_tls
            .iter()
            .map(|text| {
                text.trim()
                    .parse::<SocketAddr>()
                    .map_err(|_| ConfigError::Invalid {
                        key: "listen_tls",
                        reason: format!("{text:?} is not IP:PORT (e.g. 0.0.0.0:8443)"),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let admin_listen = self
            .admin_listen
            .iter()
            .map(|text| {
                text.parse::<AdminListen>()
                    .map_err(|reason| ConfigError::Invalid {
                        key: "admin_listen",
                        reason,
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let needs_tls = !listen_tls.is_empty()
            || admin_listen
                .iter()
                .any(|a| matches!(a, AdminListen::Tls(_)));
        // EST is on with a credentials file or the systemd credential (which wins over it).
        let est_configured = self.est_credentials_file.is_some()
            || std::env::var_os("CREDENTIALS_DIRECTORY")
                .is_some_and(|dir| PathBuf::from(dir).join(crate::est::CREDENTIAL).exists());
        let (tls, dev_tls) = match (self.tls_certificate, self.tls_private_key) {
            (Some(certificate), Some(private_key)) => (
                Some(TlsFiles {
                    certificate,
                    private_key,
                    client_ca: self.tls_client_ca.clone(),
                    accept_any_client_certificate: est_configured,
                }),
                false,
            ),
            (None, None) if needs_tls && self.dev => {
                let (certificate, private_key) = dev_tls_files(&self.identity);
                (
                    Some(TlsFiles {
                        certificate,
                        private_key,
                        client_ca: self.tls_client_ca.clone(),
                        accept_any_client_certificate: est_configured,
                    }),
                    true,
                )
            }
            (None, None) => (None, false),
            _ => {
                return Err(ConfigError::Invalid {
                    key: "tls_certificate",
                    reason: "tls_certificate and tls_private_key go together".into(),
                });
            }
        };
        if needs_tls && tls.is_none() {
            return Err(ConfigError::Invalid {
                key: "listen_tls",
                reason: "a TLS listener needs tls_certificate and tls_private_key (PEM); \
                         --dev makes them from the development CA"
                    .into(),
            });
        }
        if !needs_tls && (tls.is_some() || self.tls_client_ca.is_some()) {
            return Err(ConfigError::Invalid {
                key: "tls_certificate",
                reason: "TLS files are set but no listener uses them: add listen_tls (or a \
                         tls:// admin_listen)"
                    .into(),
            });
        }
        if est_configured && listen_tls.is_empty() {
            return Err(ConfigError::Invalid {
                key: "est_credentials_file",
                reason: "EST credentials are set (the file or the est-credentials credential) \
                         but EST is served over TLS only (RFC 7030 3.2.2): add listen_tls"
                    .into(),
            });
        }
        let acme = crate::acme::AcmeSettings::validate(
            self.acme,
            self.acme_eab_file,
            &self.acme_client_hashes,
            self.acme_http01_port,
            self.acme_tls_alpn01_port,
            self.acme_validation_address.as_deref(),
            self.acme_dns_resolver.as_deref(),
        )?;
        if acme.enabled && listen_tls.is_empty() {
            return Err(ConfigError::Invalid {
                key: "acme",
                reason: "ACME is served over HTTPS only (RFC 8555 6.1): add listen_tls".into(),
            });
        }
        let uses_credential = std::env::var_os("CREDENTIALS_DIRECTORY")
            .is_some_and(|dir| PathBuf::from(dir).join(crate::admin::CREDENTIAL).exists());
        let dev_admin_token = (self.dev && self.admin_tokens_file.is_none() && !uses_credential)
            .then(|| dev_admin_token_file(&self.identity));
        Ok(ServerConfig {
            listen_tls,
            tls,
            tls_key_passphrase_file: self.tls_key_passphrase_file,
            dev_tls,
            admin_listen,
            log_level: self.log_level,
            log_format,
            issuance,
            open_issuance: self.open_issuance,
            admin_tokens_file: self.admin_tokens_file.or_else(|| dev_admin_token.clone()),
            est_credentials_file: self.est_credentials_file,
            acme,
            dev_admin_token,
            strict_permissions: self.strict_permissions,
            max_connections: self.max_connections,
            request_timeout: request_timeout.as_duration().unsigned_abs(),
            listen,
            listen_unix: self.listen_unix,
            listen_unix_mode,
            crl_validity,
            plugin_cache: self
                .plugin_cache
                .unwrap_or_else(|| self.data.join("plugin-cache")),
            plugins,
            identity_dir: self.identity,
            data_dir: self.data,
            dev: self.dev,
            passphrase_file: self.passphrase_file,
            max_body_bytes: self.max_body_bytes as usize,
            policy,
            ocsp_responder,
            root_crl: self.root_crl,
            store,
            retention,
        })
    }
}

impl RawPlugin {
    fn validate(self) -> Result<PluginSpec, ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid {
            key: "plugins",
            reason: format!("plugin {:?}: {reason}", self.name),
        };
        if !plugin_name_ok(&self.name) {
            return Err(invalid(
                "name must be 1 to 64 letters, digits, '-' or '_'".into(),
            ));
        }
        let hooks = self
            .hooks
            .iter()
            .map(|h| h.parse::<Hook>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(invalid)?;
        if hooks.is_empty() {
            return Err(invalid(
                "hooks is empty: list authorize, presign and/or postsign".into(),
            ));
        }
        let deadline = match &self.deadline {
            None => DEFAULT_DEADLINE,
            Some(text) => parse_millis(text)
                .ok_or_else(|| invalid(format!("deadline {text:?}: use e.g. 50ms or 2s")))?,
        };
        let memory_bytes = match &self.memory {
            None => DEFAULT_MEMORY_BYTES,
            Some(text) => parse_bytes(text)
                .ok_or_else(|| invalid(format!("memory {text:?}: use e.g. 32MiB")))?,
        };
        let kv_quota_bytes = match &self.kv_quota {
            None => csrgate_hooks::DEFAULT_KV_QUOTA_BYTES,
            Some(text) => parse_bytes(text)
                .filter(|bytes| (1..=1 << 30).contains(bytes))
                .ok_or_else(|| {
                    invalid(format!("kv_quota {text:?}: use e.g. 16MiB (at most 1GiB)"))
                })? as u64,
        };
        let config = self.config.unwrap_or_else(|| serde_json::json!({}));
        if !config.is_object() {
            return Err(invalid("config must be a table".into()));
        }
        Ok(PluginSpec {
            path: self.path,
            hooks,
            config_json: config.to_string(),
            deadline,
            memory_bytes,
            kv_quota_bytes,
            name: self.name,
        })
    }
}

/// Every key algorithm a rule may name, by [`KeyAlgorithm::name`].
const KEY_ALGORITHMS: [KeyAlgorithm; 5] = [
    KeyAlgorithm::Rsa,
    KeyAlgorithm::EcP256,
    KeyAlgorithm::EcP384,
    KeyAlgorithm::EcP521,
    KeyAlgorithm::Ed25519,
];

impl RawIssuanceRule {
    fn validate(self) -> Result<IssuanceRule, ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid {
            key: "issuance",
            reason: format!("rule {:?}: {reason}", self.name),
        };
        if !plugin_name_ok(&self.name) {
            return Err(invalid(
                "name must be 1 to 64 letters, digits, '-' or '_'".into(),
            ));
        }
        let clients = match &self.clients {
            None => None,
            Some(list) if list.is_empty() => {
                return Err(invalid(
                    "clients is empty: list client hashes, or leave clients out to cover every \
                     client no other rule names"
                        .into(),
                ));
            }
            Some(list) => Some(
                list.iter()
                    .map(|text| {
                        ClientHash::parse(text).ok_or_else(|| {
                            invalid(format!(
                                "client {text:?} is not a client hash (1 to 128 letters or digits)"
                            ))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        let dns = self
            .dns
            .iter()
            .map(|pattern| {
                let name = pattern.strip_prefix('.').unwrap_or(pattern);
                match SubjectAltName::dns(name) {
                    Ok(_) if !name.starts_with("*.") => Ok(pattern.to_ascii_lowercase()),
                    _ => Err(invalid(format!(
                        "dns {pattern:?}: write a name (www.example.com) or a suffix starting \
                         with '.' (.example.internal); set wildcards = true to allow *. names"
                    ))),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let ip = self
            .ip
            .iter()
            .map(|text| {
                text.parse::<ipnet::IpNet>()
                    .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map(|net| net.trunc())
                    .map_err(|_| {
                        invalid(format!(
                            "ip {text:?}: write an address or a CIDR range like 10.0.0.0/8"
                        ))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(domain) = self
            .email_domains
            .iter()
            .find(|d| d.is_empty() || d.contains('@') || SubjectAltName::dns(d).is_err())
        {
            return Err(invalid(format!(
                "email_domains {domain:?}: write the domain after the @, e.g. example.com"
            )));
        }
        // The authority must end in '/': `spiffe://example.org` would also match
        // `spiffe://example.org.evil/` and `spiffe://example.org@evil/`.
        let has_authority = |prefix: &str| {
            prefix.split_once("://").is_some_and(|(scheme, rest)| {
                !scheme.is_empty()
                    && rest.split_once('/').is_some_and(|(authority, _)| {
                        !authority.is_empty() && !authority.contains('@')
                    })
            })
        };
        if let Some(prefix) = self.uri_prefixes.iter().find(|p| !has_authority(p)) {
            return Err(invalid(format!(
                "uri_prefixes {prefix:?}: write a scheme, an authority and at least '/', e.g. \
                 spiffe://example.org/"
            )));
        }
        let key_types = self
            .key_types
            .as_ref()
            .map(|names| {
                names
                    .iter()
                    .map(|name| {
                        KEY_ALGORITHMS
                            .into_iter()
                            .find(|a| a.name().eq_ignore_ascii_case(name.trim()))
                            .ok_or_else(|| {
                                invalid(format!(
                                    "key type {name:?}: use rsa, ec-p256, ec-p384, ec-p521 or ed25519"
                                ))
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        let min_rsa_bits = self.min_rsa_bits.unwrap_or(2048);
        if !(2048..=8192).contains(&min_rsa_bits) {
            return Err(invalid("min_rsa_bits must be 2048 to 8192".into()));
        }
        let max_validity = self
            .max_validity
            .as_deref()
            .map(|text| {
                text.parse::<ValidityPeriod>()
                    .ok()
                    .filter(|p| p.as_seconds() > 0)
                    .ok_or_else(|| invalid(format!("max_validity {text:?}: use e.g. 30d or 12h")))
            })
            .transpose()?;
        Ok(IssuanceRule {
            name: self.name,
            clients,
            dns,
            wildcards: self.wildcards,
            ip,
            email_domains: self.email_domains,
            uri_prefixes: self.uri_prefixes,
            key_types,
            min_rsa_bits,
            max_validity,
        })
    }
}

/// Rules must not overlap: one name each, one rule per client hash, at most one rule for every
/// other client (a second would never apply).
fn check_rules_apart(policy: &IssuancePolicy) -> Result<(), ConfigError> {
    let invalid = |reason: String| {
        Err(ConfigError::Invalid {
            key: "issuance",
            reason,
        })
    };
    let mut names = std::collections::HashSet::new();
    let mut clients = std::collections::HashMap::new();
    let mut catch_all = None;
    for rule in policy.rules() {
        if !names.insert(rule.name.as_str()) {
            return invalid(format!("the rule name {:?} is used twice", rule.name));
        }
        match &rule.clients {
            None => {
                if let Some(first) = catch_all.replace(rule.name.as_str()) {
                    return invalid(format!(
                        "rules {first:?} and {:?} both leave out clients; only the first would apply",
                        rule.name
                    ));
                }
            }
            Some(list) => {
                for client in list {
                    if let Some(first) = clients.insert(client.as_str(), rule.name.as_str()) {
                        return invalid(format!(
                            "client {client} is in rules {first:?} and {:?}; list it in one",
                            rule.name
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

fn plugin_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `50ms`, `2s` → a duration (whole milliseconds).
fn parse_millis(text: &str) -> Option<std::time::Duration> {
    let text = text.trim();
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000)
    } else {
        return None;
    };
    let value: u64 = number.trim().parse().ok()?;
    Some(std::time::Duration::from_millis(value.checked_mul(scale)?))
}

/// `32MiB`, `512KiB`, `1GiB`, or plain bytes.
fn parse_bytes(text: &str) -> Option<usize> {
    let text = text.trim();
    let (number, scale) = [("GiB", 1usize << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)]
        .iter()
        .find_map(|(unit, scale)| text.strip_suffix(unit).map(|n| (n, *scale)))
        .unwrap_or((text, 1));
    number.trim().parse::<usize>().ok()?.checked_mul(scale)
}

impl ServerConfig {
    /// Closed by default: refuses a configuration in which neither an `[[issuance]]` rule nor an
    /// authorize plugin restricts issuance, unless `open_issuance = true` or `--dev`. `serve`
    /// and every reload call it; `plugin run` does not (it issues nothing).
    pub fn refuse_open_issuance(&self) -> Result<(), ConfigError> {
        let restricted = !self.issuance.is_empty()
            || self
                .plugins
                .iter()
                .any(|plugin| plugin.hooks.contains(&Hook::Authorize));
        if restricted || self.open_issuance || self.dev {
            return Ok(());
        }
        Err(ConfigError::Invalid {
            key: "issuance",
            reason: "nothing restricts issuance: every client that reaches the socket would get \
                     a certificate for any name. Add an [[issuance]] rule (see \
                     examples/csrgate.toml) or an authorize plugin, or set open_issuance = true \
                     to run an open CA on purpose (--dev allows it)"
                .into(),
        })
    }

    /// The identity directory.
    pub fn identity_dir(&self) -> &Path {
        &self.identity_dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn file_with(contents: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::Builder::new()
            .suffix(".toml")
            .tempfile()
            .expect("tmp");
        file.write_all(contents.as_bytes()).expect("write");
        file
    }

    #[test]
    fn defaults_are_safe() {
        let config = ServerConfig::load(&SettingsSources::default()).expect("defaults");
        assert_eq!(
            config.listen,
            vec!["127.0.0.1:8080".parse::<SocketAddr>().expect("addr")]
        );
        assert_eq!(config.max_body_bytes, 65_536);
        assert!(!config.dev);
        assert_eq!(config.policy, SigningPolicy::default());
    }

    #[test]
    fn file_then_flags_override() {
        let file = file_with(
            "listen = [\"127.0.0.1:9000\", \"[::1]:9001\"]\nmax_body_bytes = 1000\n\
             [signing]\ndefault_validity = \"30d\"\nextended_key_usage = [\"clientAuth\"]\n",
        );
        let mut sources = SettingsSources {
            config_file: Some(file.path().to_owned()),
            ..SettingsSources::default()
        };
        let config = ServerConfig::load(&sources).expect("file");
        assert_eq!(config.listen.len(), 2);
        assert_eq!(config.max_body_bytes, 1000);
        assert_eq!(config.policy.default_validity, ValidityPeriod::days(30));
        assert_eq!(
            config.policy.extended_key_usage,
            vec![ExtendedKeyUsage::ClientAuth]
        );
        sources.listen = vec!["127.0.0.1:0".into()];
        sources.data = Some("/tmp/elsewhere".into());
        let config = ServerConfig::load(&sources).expect("flags");
        assert_eq!(
            config.listen,
            vec!["127.0.0.1:0".parse::<SocketAddr>().expect("addr")]
        );
        assert_eq!(config.data_dir, PathBuf::from("/tmp/elsewhere"));
    }

    /// Closed by default: nothing restricting issuance is refused unless open_issuance or dev;
    /// a rule or an authorize plugin (not a presign one) restricts.
    #[test]
    fn an_open_ca_needs_to_be_asked_for() {
        let plugin = |hook: &str| {
            format!("[[plugins]]\nname = \"p\"\npath = \"p.wasm\"\nhooks = [\"{hook}\"]\n")
        };
        let cases = [
            (String::new(), false),
            ("open_issuance = true\n".to_owned(), true),
            ("dev = true\n".to_owned(), true),
            (
                "[[issuance]]\nname = \"all\"\ndns = [\".example.com\"]\n".to_owned(),
                true,
            ),
            (plugin("authorize"), true),
            (plugin("presign"), false),
        ];
        for (text, starts) in cases {
            let file = file_with(&text);
            let sources = SettingsSources {
                config_file: Some(file.path().to_owned()),
                ..SettingsSources::default()
            };
            let config = ServerConfig::load(&sources).expect(&text);
            let verdict = config.refuse_open_issuance();
            assert_eq!(verdict.is_ok(), starts, "{text:?}: {verdict:?}");
            if let Err(error) = verdict {
                assert!(
                    error.to_string().contains("open_issuance = true"),
                    "{error}"
                );
            }
        }
    }

    /// sled unless told otherwise; PostgreSQL with its URL, the password file and the pool.
    #[test]
    fn the_store_is_sled_by_default_and_postgres_when_configured() {
        let load = |contents: &str| {
            let file = file_with(contents);
            ServerConfig::load(&SettingsSources {
                config_file: Some(file.path().to_owned()),
                ..SettingsSources::default()
            })
            .expect("valid")
            .store
        };
        assert_eq!(load("open_issuance = true\n"), StoreBackend::Sled);
        assert_eq!(
            load(
                "open_issuance = true\nstore = \"postgres\"\n\
                 postgres_url = \"postgresql:///csrgate?host=/run/postgresql\"\n\
                 postgres_password_file = \"/etc/csrgate/pw\"\n"
            ),
            StoreBackend::Postgres {
                url: "postgresql:///csrgate?host=/run/postgresql".into(),
                password_file: Some(PathBuf::from("/etc/csrgate/pw")),
                pool_size: 16,
                ca_file: None,
            }
        );
    }

    #[test]
    fn plugins_are_parsed_in_order_with_defaults() {
        let file = file_with(
            "[[plugins]]\nname = \"allow\"\npath = \"a.wasm\"\nhooks = [\"authorize\"]\n\
             [plugins.config]\nclients = [\"abc\"]\n\
             [[plugins]]\nname = \"cdp\"\npath = \"b.wasm\"\nhooks = [\"presign\", \"postsign\"]\n\
             deadline = \"2s\"\nmemory = \"64MiB\"\n",
        );
        let sources = SettingsSources {
            config_file: Some(file.path().to_owned()),
            ..SettingsSources::default()
        };
        let config = ServerConfig::load(&sources).expect("plugins");
        assert_eq!(config.plugins.len(), 2);
        assert_eq!(config.plugins[0].name, "allow");
        assert_eq!(config.plugins[0].config_json, r#"{"clients":["abc"]}"#);
        assert_eq!(config.plugins[0].deadline, DEFAULT_DEADLINE);
        assert_eq!(config.plugins[1].hooks, vec![Hook::Presign, Hook::Postsign]);
        assert_eq!(
            config.plugins[1].deadline,
            std::time::Duration::from_secs(2)
        );
        assert_eq!(config.plugins[1].memory_bytes, 64 << 20);
        assert_eq!(config.plugins[1].config_json, "{}");
        assert_eq!(config.plugin_cache, PathBuf::from("data/plugin-cache"));
    }

    #[test]
    fn mistakes_are_reported_before_anything_starts() {
        let cases = [
            ("lissen = [\"127.0.0.1:1\"]", "lissen"),
            ("listen = [\"localhost\"]", "listen"),
            ("max_body_bytes = 0", "max_body_bytes"),
            (
                "[signing]\ndefault_validity = \"3 weeks\"",
                "default_validity",
            ),
            ("[signing]\ndefault_validity = \"900d\"", "maximum"),
            (
                "[signing]\nextended_key_usage = [\"anyThing\"]",
                "extended key usage",
            ),
            (
                "[signing]\nextended_key_usage = [\"serverAuth\", \"OCSPSigning\"]",
                "answer OCSP for the whole CA",
            ),
            ("ocsp_url = \"ldap://ca.example/ocsp\"", "ocsp_url"),
            ("crl_url = \"ca.example/crl\"", "crl_url"),
            ("ocsp_url = \"http://ca example/ocsp\"", "OCSP URL"),
            ("ocsp_responder = \"responder\"", "ocsp_responder"),
            ("store = \"mysql\"", "store"),
            ("retention = \"12h\"", "retention"),
            (
                "store = \"postgres\"\npostgres_url = \"postgres://db/x?sslmode=require\"\npostgres_ca_file = \"/nonexistent/ca.pem\"",
                "postgres_ca_file",
            ),
            ("retention = \"forever\"", "retention"),
            ("store = \"postgres\"", "postgres_url"),
            (
                "postgres_url = \"postgres://csrgate@db/csrgate\"",
                "postgres_url",
            ),
            (
                "store = \"postgres\"\npostgres_url = \"postgres://csrgate:secret@db/csrgate\"",
                "postgres_password_file",
            ),
            (
                "store = \"postgres\"\npostgres_url = \"mysql://db\"",
                "postgres_url",
            ),
            (
                "store = \"postgres\"\npostgres_url = \"postgres://db/x\"\npostgres_pool_size = 0",
                "postgres_pool_size",
            ),
            ("listen = ", "configuration"),
            (
                "[[plugins]]\nname = \"x\"\npath = \"x.wasm\"\nhooks = [\"sign\"]",
                "unknown hook",
            ),
            (
                "[[plugins]]\nname = \"x\"\npath = \"x.wasm\"\nhooks = []",
                "hooks is empty",
            ),
            (
                "[[plugins]]\nname = \"x y\"\npath = \"x.wasm\"\nhooks = [\"presign\"]",
                "name must be",
            ),
            (
                "[[plugins]]\nname = \"x\"\npath = \"x.wasm\"\nhooks = [\"presign\"]\ndeadline = \"fast\"",
                "deadline",
            ),
            (
                "[[plugins]]\nname = \"x\"\npath = \"x.wasm\"\nhooks = [\"presign\"]\n[[plugins]]\nname = \"x\"\npath = \"y.wasm\"\nhooks = [\"presign\"]",
                "used twice",
            ),
        ];
        let rule = |body: &str| format!("[[issuance]]\nname = \"r\"\n{body}");
        let rule_cases = [
            (rule("clients = []"), "clients is empty"),
            (rule("clients = [\"a-b\"]"), "not a client hash"),
            (rule("dns = [\"*.example.com\"]"), "wildcards = true"),
            (rule("dns = [\"exa mple.com\"]"), "dns"),
            (rule("ip = [\"10.0.0.0/33\"]"), "CIDR"),
            (rule("email_domains = [\"@example.com\"]"), "after the @"),
            (rule("uri_prefixes = [\"spiffe://\"]"), "scheme, an authority"),
            (rule("uri_prefixes = [\"spiffe://example.org\"]"), "at least '/'"),
            (rule("key_types = [\"dsa\"]"), "key type"),
            (rule("min_rsa_bits = 1024"), "2048 to 8192"),
            (rule("max_validity = \"soon\""), "max_validity"),
            (format!("{}\n{}", rule(""), rule("")), "used twice"),
            (
                "[[issuance]]\nname = \"a\"\n[[issuance]]\nname = \"b\"".into(),
                "both leave out clients",
            ),
            (
                "listen_tls = [\"127.0.0.1:8443\"]".into(),
                "needs tls_certificate and tls_private_key",
            ),
            (
                "tls_certificate = \"c.pem\"\ntls_private_key = \"k.pem\"".into(),
                "no listener uses them",
            ),
            (
                "listen_tls = [\"127.0.0.1:8443\"]\ntls_certificate = \"c.pem\"".into(),
                "go together",
            ),
            ("admin_listen = [\"unix:relative.sock\"]".into(), "absolute"),
            ("admin_listen = [\"localhost:9\"]".into(), "tls://IP:PORT"),
            (
                "[[issuance]]\nname = \"a\"\nclients = [\"x\"]\n[[issuance]]\nname = \"b\"\nclients = [\"x\"]".into(),
                "list it in one",
            ),
        ];
        let owned: Vec<(String, &str)> = cases
            .iter()
            .map(|(text, expected)| ((*text).to_owned(), *expected))
            .chain(rule_cases)
            .collect();
        for (text, expected) in &owned {
            let (text, expected) = (text.as_str(), *expected);
            let file = file_with(text);
            let sources = SettingsSources {
                config_file: Some(file.path().to_owned()),
                ..SettingsSources::default()
            };
            let error = ServerConfig::load(&sources).expect_err(text).to_string();
            assert!(error.contains(expected), "{text:?} gave {error:?}");
        }
        let missing = SettingsSources {
            config_file: Some("/nonexistent/csrgate.toml".into()),
            ..SettingsSources::default()
        };
        assert!(ServerConfig::load(&missing).is_err());
    }
}
