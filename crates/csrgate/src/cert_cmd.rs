//! `csrgate cert list|show|revoke|renew`: the admin API of a running daemon from the shell.
//! Human tables by default, `--json` for scripts (the API's own JSON).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use clap::{Args, Subcommand};
use serde_json::Value;

use crate::exit::{Failure, code};

/// Where the daemon is and how to authenticate.
#[derive(Debug, Args)]
pub struct Connection {
    /// The daemon's admin API: http://... or https://... (its listen_tls or admin_listen).
    #[arg(
        long,
        env = "CA_ADMIN_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    url: String,
    /// For https: the CA certificate(s), PEM, that issued the daemon's TLS certificate (e.g.
    /// identity/ca.cert.pem under --dev). Without it the system's trust store is used.
    #[arg(long, value_name = "FILE", global = true)]
    cacert: Option<PathBuf>,
    /// For an mTLS admin API: a client certificate (PEM, chain after it) instead of a token.
    #[arg(long, value_name = "FILE", global = true, requires = "key")]
    cert: Option<PathBuf>,
    /// The client certificate's private key (PEM, unencrypted).
    #[arg(long, value_name = "FILE", global = true, requires = "cert")]
    key: Option<PathBuf>,
    /// Admin token. Prefer --token-file or CA_ADMIN_TOKEN: a flag shows in `ps`.
    #[arg(long, global = true, conflicts_with = "token_file")]
    token: Option<String>,
    /// File holding the admin token: its first line that is not empty or a `#` comment, either
    /// the token alone (identity/dev-admin-token) or `NAME TOKEN` as in the daemon's
    /// admin_tokens_file.
    #[arg(long, value_name = "FILE", global = true)]
    token_file: Option<PathBuf>,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// List certificates, newest first (all pages).
    List {
        /// valid, revoked or expired.
        #[arg(long)]
        status: Option<String>,
        /// Only this client hash.
        #[arg(long)]
        client_hash: Option<String>,
        /// Only those expiring within this period, e.g. 30d.
        #[arg(long, value_name = "PERIOD")]
        expiring_within: Option<String>,
    },
    /// Show one certificate, with its PEM.
    Show {
        /// Serial in hex.
        serial: String,
    },
    /// Revoke a certificate; the CRL is republished at once.
    Revoke {
        /// Serial in hex.
        serial: String,
        /// RFC 5280 reason: keyCompromise, superseded, cessationOfOperation, affiliationChanged, ...
        #[arg(long, default_value = "unspecified")]
        reason: String,
        /// When the key was compromised (RFC 3339).
        #[arg(long, value_name = "TIME")]
        invalidity_date: Option<String>,
    },
    /// Have the daemon generate a key and issue its certificate through the normal pipeline
    /// (issuance rules, authorize, presign, postsign), and write the key, the certificate and
    /// the chain to --out: PKCS#12 (PBES2 AES-256, PBKDF2-SHA256) or, with --pem, PEM. The key
    /// is not kept by the daemon. The password comes from --password-file, else
    /// CA_BUNDLE_PASSWORD, else a prompt (twice); at least 12 characters.
    ///
    /// Example: csrgate cert generate --client-hash web01 -f CN app.internal --san DNS:app.internal --out app.p12
    Generate {
        /// The client hash to issue to (its issuance rule and plugins apply).
        #[arg(long)]
        client_hash: String,
        /// A subject field, repeatable, in order: C, ST, L, O, OU, CN, emailAddress.
        #[arg(short = 'f', long = "field", num_args = 2, value_names = ["KEY", "VALUE"])]
        field: Vec<String>,
        /// A SAN, repeatable: DNS:name, IP:address, email:address, URI:uri.
        #[arg(long = "san", value_name = "SAN")]
        san: Vec<String>,
        /// Key type: ec:p256, ec:p384, rsa:2048, rsa:3072, rsa:4096, ed25519.
        #[arg(long, default_value = "ec:p256")]
        key_type: String,
        /// Validity, e.g. 30d (default: the daemon's).
        #[arg(long, value_name = "PERIOD")]
        validity: Option<String>,
        /// PEM (key, certificate, chain) instead of PKCS#12; the key is encrypted with the
        /// password unless --no-password.
        #[arg(long)]
        pem: bool,
        /// With --pem: an unencrypted key (the file is still written 0600).
        #[arg(long, requires = "pem")]
        no_password: bool,
        /// The bundle's password, first line of FILE.
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
        /// Where to write the bundle (created 0600; an existing file is not overwritten).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Re-issue a certificate made elsewhere under this CA (same subject, SANs and key,
    /// CA:FALSE, validity clamped to the policy), recorded and audited.
    Cosign {
        /// The certificate, PEM or DER.
        file: PathBuf,
        /// The client hash to record it under.
        #[arg(long, default_value = "cosigned")]
        client_hash: String,
    },
    /// Renew a certificate: same key and subject, new serial.
    Renew {
        /// Serial in hex.
        serial: String,
        /// Validity of the new certificate, e.g. 90d (default: the daemon's).
        #[arg(long, value_name = "PERIOD")]
        validity: Option<String>,
    },
}

struct Client {
    agent: ureq::Agent,
    base: String,
    /// `None` when a client certificate authenticates.
    token: Option<String>,
}

/// The token of a token file: the first line that is not empty or a comment, `TOKEN` or
/// `NAME TOKEN` (the daemon's admin_tokens_file format).
fn token_in(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|line| !line.is_empty() && !line.starts_with('#'))
        .and_then(|line| line.split_whitespace().last())
        .unwrap_or_default()
        .to_owned()
}

/// `request` with `Authorization: Bearer` when a token is used.
fn authorized<B>(
    request: ureq::RequestBuilder<B>,
    bearer: Option<&str>,
) -> ureq::RequestBuilder<B> {
    match bearer {
        Some(bearer) => request.header("Authorization", bearer),
        None => request,
    }
}

/// An HTTP(S) agent that trusts `cacert` (else the platform's roots), for public endpoints
/// (`csrgate inspect --url`).
pub(crate) fn public_agent(cacert: Option<&PathBuf>) -> anyhow::Result<ureq::Agent> {
    Ok(ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .tls_config(tls_config_for(cacert, None, None)?)
        .build()
        .into())
}

/// The TLS settings for https URLs: openssl (native-tls) with the given roots and client
/// certificate.
fn tls_config(connection: &Connection) -> anyhow::Result<ureq::tls::TlsConfig> {
    tls_config_for(
        connection.cacert.as_ref(),
        connection.cert.as_ref(),
        connection.key.as_ref(),
    )
}

fn tls_config_for(
    cacert: Option<&PathBuf>,
    cert: Option<&PathBuf>,
    key: Option<&PathBuf>,
) -> anyhow::Result<ureq::tls::TlsConfig> {
    use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};
    let read = |path: &PathBuf| {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
    };
    let certificates = |path: &PathBuf| -> anyhow::Result<Vec<Certificate<'static>>> {
        let pem = read(path)?;
        let certificates: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(PemItem::Certificate(certificate)) => Some(certificate),
                _ => None,
            })
            .collect();
        if certificates.is_empty() {
            return Err(anyhow!("{}: no PEM certificate in it", path.display()));
        }
        Ok(certificates)
    };
    let roots = match cacert {
        Some(path) => RootCerts::new_with_certs(&certificates(path)?),
        None => RootCerts::PlatformVerifier,
    };
    let client_cert = match (cert, key) {
        (Some(cert), Some(key)) => {
            let key = PrivateKey::from_pem(&read(key)?)
                .with_context(|| format!("{}: not a PEM private key", key.display()))?;
            Some(ClientCert::new_with_certs(&certificates(cert)?, key))
        }
        _ => None,
    };
    Ok(TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::NativeTls)
        .root_certs(roots)
        .client_cert(client_cert)
        .build())
}

impl Client {
    fn new(connection: &Connection) -> anyhow::Result<Self> {
        if !connection.url.starts_with("https://") && !connection.url.starts_with("http://") {
            return Err(anyhow!(
                "--url {:?}: use http://HOST:PORT or https://HOST:PORT",
                connection.url
            ));
        }
        let token = match (&connection.token, &connection.token_file) {
            (Some(token), _) => Some(token.clone()),
            (None, Some(file)) => Some(token_in(
                &std::fs::read_to_string(file)
                    .with_context(|| format!("cannot read {}", file.display()))?,
            )),
            (None, None) => match std::env::var("CA_ADMIN_TOKEN") {
                Ok(token) => Some(token),
                Err(_) if connection.cert.is_some() => None,
                Err(_) => {
                    return Err(anyhow!(
                        "no admin token: use --token-file FILE, CA_ADMIN_TOKEN or --token (or \
                         --cert/--key on an mTLS admin API)"
                    ));
                }
            },
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .tls_config(tls_config(connection)?)
            .build()
            .into();
        Ok(Client {
            agent,
            base: connection.url.trim_end_matches('/').to_owned(),
            token,
        })
    }

    /// A POST whose answer is not JSON when it succeeds (a bundle): the body bytes, or the
    /// error document's code and message.
    fn post_for_bytes(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<Vec<u8>> {
        let url = format!("{}{path}", self.base);
        let bearer = self.token.as_ref().map(|token| format!("Bearer {token}"));
        let mut response = authorized(self.agent.post(&url), bearer.as_deref())
            .content_type(content_type)
            .send(body)
            .with_context(|| format!("cannot reach {url}"))?;
        let status = response.status().as_u16();
        let bytes = response
            .body_mut()
            .with_config()
            .limit(16 * 1024 * 1024)
            .read_to_vec()
            .context("cannot read the answer")?;
        if status >= 400 {
            let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let code = value["error"]["code"].as_str().unwrap_or("error");
            let message = value["error"]["message"].as_str().unwrap_or("");
            return Err(anyhow!("HTTP {status} {code}: {message}"));
        }
        Ok(bytes)
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let bearer = self.token.as_ref().map(|token| format!("Bearer {token}"));
        let bearer = bearer.as_deref();
        let result = match (method, body) {
            ("GET", _) => authorized(self.agent.get(&url), bearer).call(),
            ("DELETE", _) => authorized(self.agent.delete(&url), bearer).call(),
            (_, body) => authorized(self.agent.post(&url), bearer)
                .content_type("application/json")
                .send(body.unwrap_or(Value::Null).to_string()),
        };
        let mut response = result.with_context(|| format!("cannot reach {url}"))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .read_to_string()
            .context("cannot read the answer")?;
        let value: Value = serde_json::from_str(&text)
            .with_context(|| format!("HTTP {status}: not JSON: {text}"))?;
        if status >= 400 {
            let code = value["error"]["code"].as_str().unwrap_or("error");
            let message = value["error"]["message"].as_str().unwrap_or("");
            return Err(anyhow!("HTTP {status} {code}: {message}"));
        }
        Ok(value)
    }
}

/// `POST path` on the admin API with its answer streamed into `out` (a store snapshot, which
/// may take long: one hour at most); the error document's code and message when it fails.
/// Returns the bytes written.
pub(crate) fn download(
    connection: &Connection,
    path: &str,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<u64> {
    let client = Client::new(connection)?;
    let url = format!("{}{path}", client.base);
    let bearer = client.token.as_ref().map(|token| format!("Bearer {token}"));
    let mut response = authorized(client.agent.post(&url), bearer.as_deref())
        .config()
        .timeout_global(Some(Duration::from_secs(3600)))
        .build()
        .send_empty()
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status().as_u16();
    if status >= 400 {
        let text = response.body_mut().read_to_string().unwrap_or_default();
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let code = value["error"]["code"].as_str().unwrap_or("error");
        let message = value["error"]["message"].as_str().unwrap_or("");
        return Err(anyhow!("HTTP {status} {code}: {message}"));
    }
    std::io::copy(&mut response.body_mut().as_reader(), out).context("cannot read the answer")
}

/// Everything but RFC 3986's unreserved characters, percent-encoded: a query value.
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn encode(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, QUERY_VALUE).to_string()
}

pub fn run(connection: Connection, command: CertCommand) -> Result<(), Failure> {
    let failed = |e: anyhow::Error| Failure::new(code::UNAVAILABLE, e);
    let client = Client::new(&connection).map_err(|e| Failure::new(code::CONFIG, e))?;
    match command {
        CertCommand::List {
            status,
            client_hash,
            expiring_within,
        } => {
            let mut filters = String::new();
            for (key, value) in [
                ("status", &status),
                ("client_hash", &client_hash),
                ("expiring_within", &expiring_within),
            ] {
                if let Some(value) = value {
                    filters.push_str(&format!("&{key}={}", encode(value)));
                }
            }
            let mut all = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let mut path = format!("/certificates?limit=1000{filters}");
                if let Some(c) = &cursor {
                    path.push_str(&format!("&cursor={c}"));
                }
                let page = client.call("GET", &path, None).map_err(failed)?;
                all.extend(page["certificates"].as_array().cloned().unwrap_or_default());
                match page["next_cursor"].as_str() {
                    Some(next) => cursor = Some(next.to_owned()),
                    None => break,
                }
            }
            if connection.json {
                println!("{}", Value::Array(all));
            } else {
                println!(
                    "{:<40}  {:<8}  {:<20}  {:<20}  SUBJECT",
                    "SERIAL", "STATUS", "CLIENT", "NOT AFTER"
                );
                for c in &all {
                    println!(
                        "{:<40}  {:<8}  {:<20}  {:<20}  {}",
                        c["serial"].as_str().unwrap_or(""),
                        c["status"].as_str().unwrap_or(""),
                        c["client_hash"].as_str().unwrap_or(""),
                        c["not_after"].as_str().unwrap_or(""),
                        c["subject"].as_str().unwrap_or("")
                    );
                }
                println!("{} certificate(s)", all.len());
            }
            Ok(())
        }
        CertCommand::Show { serial } => {
            let value = client
                .call("GET", &format!("/certificates/{}", encode(&serial)), None)
                .map_err(failed)?;
            print_certificate(&value, connection.json);
            Ok(())
        }
        CertCommand::Revoke {
            serial,
            reason,
            invalidity_date,
        } => {
            let mut body = serde_json::json!({ "reason": reason });
            if let Some(date) = invalidity_date {
                body["invalidity_date"] = Value::String(date);
            }
            let value = client
                .call(
                    "POST",
                    &format!("/certificates/{}/revoke", encode(&serial)),
                    Some(body),
                )
                .map_err(failed)?;
            print_certificate(&value, connection.json);
            Ok(())
        }
        CertCommand::Generate {
            client_hash,
            field,
            san,
            key_type,
            validity,
            pem,
            no_password,
            password_file,
            out,
        } => {
            let subject: Vec<[&String; 2]> = field
                .chunks_exact(2)
                .map(|pair| [&pair[0], &pair[1]])
                .collect();
            let password = if no_password {
                None
            } else {
                Some(
                    bundle_password(password_file.as_deref())
                        .map_err(|e| Failure::new(code::NO_PERMISSION, e))?,
                )
            };
            let mut body = serde_json::json!({
                "client_hash": client_hash,
                "subject": subject,
                "subject_alt_names": san,
                "key_type": key_type,
                "format": if pem { "pem" } else { "pkcs12" },
            });
            if let Some(password) = &password {
                body["password"] = Value::String(password.to_string());
            }
            if let Some(validity) = validity {
                body["validity"] = Value::String(validity);
            }
            let bytes = zeroize::Zeroizing::new(
                client
                    .post_for_bytes(
                        "/certificates/generate",
                        "application/json",
                        body.to_string().into_bytes(),
                    )
                    .map_err(failed)?,
            );
            write_private(&out, &bytes).map_err(|e| Failure::new(code::IO, e))?;
            println!("wrote {} ({} bytes)", out.display(), bytes.len());
            Ok(())
        }
        CertCommand::Cosign { file, client_hash } => {
            let certificate = std::fs::read(&file)
                .with_context(|| format!("cannot read {}", file.display()))
                .map_err(|e| Failure::new(code::NO_INPUT, e))?;
            let bytes = client
                .post_for_bytes(
                    &format!("/certificates/cosign?client_hash={}", encode(&client_hash)),
                    "application/pkix-cert",
                    certificate,
                )
                .map_err(failed)?;
            let value: Value = serde_json::from_slice(&bytes)
                .context("the answer is not JSON")
                .map_err(failed)?;
            print_certificate(&value, connection.json);
            Ok(())
        }
        CertCommand::Renew { serial, validity } => {
            let body = match validity {
                Some(v) => serde_json::json!({ "validity": v }),
                None => serde_json::json!({}),
            };
            let value = client
                .call(
                    "POST",
                    &format!("/certificates/{}/renew", encode(&serial)),
                    Some(body),
                )
                .map_err(failed)?;
            print_certificate(&value, connection.json);
            Ok(())
        }
    }
}

/// The bundle password: given (`--password-file`, `CA_BUNDLE_PASSWORD`), else a prompt, twice.
fn bundle_password(file: Option<&std::path::Path>) -> anyhow::Result<zeroize::Zeroizing<String>> {
    if let Some(given) = crate::passphrase::bundle_password_given(file)? {
        return Ok(given);
    }
    let first = zeroize::Zeroizing::new(
        rpassword::prompt_password("bundle password: ")
            .context("no --password-file and no terminal")?,
    );
    let second = zeroize::Zeroizing::new(
        rpassword::prompt_password("again: ").context("cannot read from the terminal")?,
    );
    if *first != *second {
        return Err(anyhow!("the two passwords differ"));
    }
    Ok(first)
}

/// Writes `bytes` to a new file `path`, mode 0600 (it holds a private key).
fn write_private(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {} (it must not exist yet)", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn print_certificate(value: &Value, json: bool) {
    if json {
        println!("{value}");
        return;
    }
    for (label, key) in [
        ("serial", "serial"),
        ("status", "status"),
        ("client hash", "client_hash"),
        ("subject", "subject"),
        ("not before", "not_before"),
        ("not after", "not_after"),
        ("sha256", "sha256_fingerprint"),
        ("replaces", "replaces"),
        ("replaced by", "replaced_by"),
    ] {
        if let Some(text) = value[key].as_str() {
            println!("{label:<12} {text}");
        }
    }
    if let Some(sans) = value["subject_alt_names"]
        .as_array()
        .filter(|a| !a.is_empty())
    {
        let names: Vec<&str> = sans.iter().filter_map(Value::as_str).collect();
        println!("{:<12} {}", "SANs", names.join(", "));
    }
    if let Some(revocation) = value["revocation"].as_object() {
        println!(
            "{:<12} {} at {} by {}",
            "revoked",
            revocation
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or(""),
            revocation
                .get("revoked_at")
                .and_then(Value::as_str)
                .unwrap_or(""),
            revocation
                .get("actor")
                .and_then(Value::as_str)
                .unwrap_or("")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::token_in;

    #[test]
    fn token_files_in_both_formats() {
        for (text, token) in [
            ("abcdef0123456789\n", "abcdef0123456789"),
            (
                "# admins\n\nops abcdef0123456789\nother x\n",
                "abcdef0123456789",
            ),
            ("  ops   abcdef0123456789  ", "abcdef0123456789"),
            ("", ""),
        ] {
            assert_eq!(token_in(text), token, "{text:?}");
        }
    }
}
