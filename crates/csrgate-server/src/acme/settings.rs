//! ACME's configuration: the `acme*` keys, validated, and the External Account Binding keys
//! (RFC 8555 7.3.4) read from `acme_eab_file`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::ClientHash;
use crate::config::ConfigError;

/// Name of the systemd credential holding EAB keys (`LoadCredential=acme-eab:...`); it wins over
/// `acme_eab_file`.
pub const EAB_CREDENTIAL: &str = "acme-eab";

/// Shortest EAB MAC key accepted: 256 bits, HS256's own output size (RFC 7518 3.2).
const MIN_EAB_KEY_BYTES: usize = 32;

/// The `acme*` configuration keys, checked.
#[derive(Clone, Debug)]
pub struct AcmeSettings {
    /// `acme = true`: serve ACME on the `listen_tls` listeners (off by default).
    pub enabled: bool,
    /// `acme_eab_file`: lines `KEY_ID CLIENT_HASH MAC_KEY` (MAC key in base64url, as
    /// `certbot --eab-hmac-key` and `lego --hmac` take it); the systemd credential `acme-eab`
    /// wins over it. When set, new accounts need an External Account Binding, and its key id
    /// decides their client hash.
    pub eab_file: Option<PathBuf>,
    /// `acme_client_hashes` (default `["acme"]`): the client hashes ACME issues for, and only
    /// ACME: `/acme/directory` issues for the first, `/acme/<client_hash>/directory` exists for
    /// each, EAB keys name one of them, and `PUT` and EST refuse them (their names are
    /// validated by challenges; a PUT's are not).
    pub client_hashes: Vec<ClientHash>,
    /// `acme_http01_port` (default 80, RFC 8555 8.3): where http-01 validation connects.
    pub http01_port: u16,
    /// `acme_tls_alpn01_port` (default 443, RFC 8737 3): where tls-alpn-01 validation connects.
    pub tls_alpn01_port: u16,
    /// `acme_validation_address`: connect every validation to this address instead of the one
    /// the identifier resolves to (tests on loopback; split-horizon networks). The HTTP Host
    /// and the TLS SNI still name the identifier.
    pub validation_address: Option<IpAddr>,
    /// `acme_dns_resolver` (`IP:PORT`): the DNS server dns-01 asks (default: the system's
    /// resolvers from /etc/resolv.conf).
    pub dns_resolver: Option<std::net::SocketAddr>,
}

impl AcmeSettings {
    /// Checks the raw `acme*` values.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the key.
    pub(crate) fn validate(
        enabled: bool,
        eab_file: Option<PathBuf>,
        client_hashes: &[String],
        http01_port: u16,
        tls_alpn01_port: u16,
        validation_address: Option<&str>,
        dns_resolver: Option<&str>,
    ) -> Result<Self, ConfigError> {
        let client_hashes = client_hashes
            .iter()
            .map(|text| {
                ClientHash::parse(text).ok_or_else(|| ConfigError::Invalid {
                    key: "acme_client_hashes",
                    reason: format!("{text:?} is not a client hash (1 to 128 letters or digits)"),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if client_hashes.is_empty() {
            return Err(ConfigError::Invalid {
                key: "acme_client_hashes",
                reason: "list at least one client hash for ACME to issue for".into(),
            });
        }
        if http01_port == 0 || tls_alpn01_port == 0 {
            return Err(ConfigError::Invalid {
                key: "acme_http01_port",
                reason: "validation ports are 1 to 65535".into(),
            });
        }
        let validation_address = validation_address
            .map(|text| {
                text.trim()
                    .parse::<IpAddr>()
                    .map_err(|_| ConfigError::Invalid {
                        key: "acme_validation_address",
                        reason: format!("{text:?} is not an IP address"),
                    })
            })
            .transpose()?;
        let dns_resolver = dns_resolver
            .map(|text| {
                text.trim()
                    .parse::<std::net::SocketAddr>()
                    .map_err(|_| ConfigError::Invalid {
                        key: "acme_dns_resolver",
                        reason: format!("{text:?} is not IP:PORT (e.g. 10.0.0.53:53)"),
                    })
            })
            .transpose()?;
        if !enabled && eab_file.is_some() {
            return Err(ConfigError::Invalid {
                key: "acme_eab_file",
                reason: "EAB keys are set but ACME is off: add acme = true".into(),
            });
        }
        Ok(AcmeSettings {
            enabled,
            eab_file,
            client_hashes,
            http01_port,
            tls_alpn01_port,
            validation_address,
            dns_resolver,
        })
    }
}

impl Default for AcmeSettings {
    fn default() -> Self {
        AcmeSettings {
            enabled: false,
            eab_file: None,
            client_hashes: ClientHash::parse("acme").into_iter().collect(),
            http01_port: 80,
            tls_alpn01_port: 443,
            validation_address: None,
            dns_resolver: None,
        }
    }
}

/// One External Account Binding key: the client hash its accounts get, and the MAC key.
#[derive(Clone)]
pub(crate) struct EabKey {
    pub(crate) client_hash: ClientHash,
    pub(crate) mac_key: Vec<u8>,
}

/// ACME's part of a configuration generation: the settings and the EAB keys they name.
#[derive(Clone, Debug, Default)]
pub struct AcmeConfig {
    /// The checked `acme*` keys.
    pub settings: AcmeSettings,
    eab: HashMap<String, EabKey>,
}

impl std::fmt::Debug for EabKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EabKey")
            .field("client_hash", &self.client_hash)
            .finish_non_exhaustive()
    }
}

impl AcmeConfig {
    /// Reads the EAB keys `settings` names (each non-empty, non-`#` line
    /// `KEY_ID CLIENT_HASH MAC_KEY`, the MAC key base64url of at least 32 octets).
    ///
    /// # Errors
    /// The file cannot be read or a line is malformed (the message names the line).
    pub fn load(settings: &AcmeSettings) -> Result<Self, String> {
        let mut eab = HashMap::new();
        let source = crate::secret_file::source(EAB_CREDENTIAL, settings.eab_file.as_deref());
        if let Some(path) = source.filter(|_| settings.enabled) {
            eab = read_eab_file(&path)?;
            if let Some((key_id, key)) = eab
                .iter()
                .find(|(_, key)| !settings.client_hashes.contains(&key.client_hash))
            {
                return Err(format!(
                    "{}: EAB key {key_id:?} is for client hash {}, which is not in acme_client_hashes",
                    path.display(),
                    key.client_hash
                ));
            }
            if eab.is_empty() {
                return Err(format!(
                    "{} holds no EAB key: every new account would be refused",
                    path.display()
                ));
            }
        }
        Ok(AcmeConfig {
            settings: settings.clone(),
            eab,
        })
    }

    /// Whether new accounts need an External Account Binding (the directory's
    /// `externalAccountRequired`, RFC 8555 7.1.1).
    pub(crate) fn eab_required(&self) -> bool {
        !self.eab.is_empty()
    }

    /// Whether ACME issues for `client_hash` (and so `PUT` and EST do not).
    pub fn issues_for(&self, client_hash: &ClientHash) -> bool {
        self.settings.enabled && self.settings.client_hashes.contains(client_hash)
    }

    /// The client hash of `/acme/directory` (the first of `acme_client_hashes`).
    pub(crate) fn default_client_hash(&self) -> Option<&ClientHash> {
        self.settings.client_hashes.first()
    }

    /// The EAB key with id `key_id`.
    pub(crate) fn eab_key(&self, key_id: &str) -> Option<&EabKey> {
        self.eab.get(key_id)
    }
}

fn read_eab_file(path: &Path) -> Result<HashMap<String, EabKey>, String> {
    let text = crate::secret_file::read(path, "ACME EAB keys")?;
    let mut keys = HashMap::new();
    for (number, line) in crate::secret_file::entries(&text) {
        let at = || format!("{} line {number}", path.display());
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [key_id, client_hash, mac_key] = fields.as_slice() else {
            return Err(format!("{}: expected KEY_ID CLIENT_HASH MAC_KEY", at()));
        };
        let client_hash = ClientHash::parse(client_hash).ok_or_else(|| {
            format!(
                "{}: the client hash must be 1 to 128 letters or digits",
                at()
            )
        })?;
        let mac_key = URL_SAFE_NO_PAD
            .decode(mac_key.trim_end_matches('='))
            .map_err(|_| format!("{}: the MAC key is base64url", at()))?;
        if mac_key.len() < MIN_EAB_KEY_BYTES {
            return Err(format!(
                "{}: the MAC key must be at least {MIN_EAB_KEY_BYTES} octets (openssl rand -base64 32 | tr '+/' '-_')",
                at()
            ));
        }
        if keys
            .insert(
                (*key_id).to_owned(),
                EabKey {
                    client_hash,
                    mac_key,
                },
            )
            .is_some()
        {
            return Err(format!("{}: key id {key_id:?} is listed twice", at()));
        }
    }
    Ok(keys)
}
