//! Challenge validation (RFC 8555 8.3 http-01, RFC 8737 tls-alpn-01, RFC 8555 8.4 dns-01):
//! csrgate connects to the identifier (or `acme_validation_address`), or asks DNS (the system's
//! resolvers, or `acme_dns_resolver`), and checks the key authorization it finds there.
//! Each attempt, resolution included, is bounded by [`VALIDATION_TIMEOUT`]; at most
//! [`MAX_CONCURRENT_VALIDATIONS`] run at once. Redirects are not followed and no proxy is used,
//! so a validation reaches only the address the identifier names (or `acme_validation_address`)
//! on the configured port; what the target served is not echoed into the problem.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode, SslVersion};

use super::objects::{ChallengeType, Identifier, IdentifierType};
use super::problem::{Problem, ProblemType};
use super::settings::AcmeSettings;

/// How long one validation may take, connection to answer.
pub(crate) const VALIDATION_TIMEOUT: Duration = Duration::from_secs(10);

/// The most of an http-01 answer read: a key authorization is under 200 octets.
const MAX_HTTP01_BODY: u64 = 4096;

/// `acme-tls/1` as an ALPN protocol list (RFC 8737 6.2).
const ACME_TLS_ALPN: &[u8] = b"\x0aacme-tls/1";

/// Validations under way at most, server-wide: each holds a connection (and, for http-01, a
/// blocking thread) for up to [`VALIDATION_TIMEOUT`]; more wait their turn.
const MAX_CONCURRENT_VALIDATIONS: usize = 16;

/// How long a validation waits for a slot before the client is asked to retry.
const SLOT_WAIT: Duration = Duration::from_secs(2);

static SLOTS: tokio::sync::Semaphore =
    tokio::sync::Semaphore::const_new(MAX_CONCURRENT_VALIDATIONS);

/// Validates `kind` for `identifier`, whose key authorization (RFC 8555 8.1) is
/// `key_authorization`. `Ok` when the responder proves control; the problem says what was
/// wrong, without echoing what the target served.
pub(crate) async fn validate(
    kind: ChallengeType,
    identifier: &Identifier,
    token: &str,
    key_authorization: &str,
    settings: &AcmeSettings,
) -> Result<(), Problem> {
    // A slot within a short wait, or the client is told to retry (its challenge stays
    // pending): validations of blackholed targets must not queue everyone else's.
    let _slot = match tokio::time::timeout(SLOT_WAIT, SLOTS.acquire()).await {
        Ok(Ok(slot)) => slot,
        Ok(Err(_)) => {
            return Err(Problem::new(
                ProblemType::ServerInternal,
                "the validator is shutting down",
            ));
        }
        Err(_) => {
            return Err(Problem::new(
                ProblemType::RateLimited,
                "every validator is busy: ask for this challenge again in a few seconds",
            )
            .with_status(503));
        }
    };
    let attempt = async {
        match kind {
            ChallengeType::Http01 => {
                let address = target(identifier, settings.http01_port, settings).await?;
                let (identifier, token, key_authorization, port) = (
                    identifier.clone(),
                    token.to_owned(),
                    key_authorization.to_owned(),
                    settings.http01_port,
                );
                // ureq blocks; its own global timeout ends the thread's work as ours ends the wait.
                tokio::task::spawn_blocking(move || {
                    http01(&identifier, address, port, &token, &key_authorization)
                })
                .await
                .map_err(|panicked| {
                    Problem::new(
                        ProblemType::ServerInternal,
                        format!("validation failed inside the server: {panicked}"),
                    )
                })?
            }
            ChallengeType::TlsAlpn01 => {
                let address = target(identifier, settings.tls_alpn01_port, settings).await?;
                tls_alpn01(identifier, address, key_authorization).await
            }
            ChallengeType::Dns01 => dns01(identifier, key_authorization, settings).await,
        }
    };
    match tokio::time::timeout(VALIDATION_TIMEOUT, attempt).await {
        Ok(outcome) => outcome,
        Err(_) => Err(Problem::new(
            ProblemType::Connection,
            format!(
                "no complete answer within {} s",
                VALIDATION_TIMEOUT.as_secs()
            ),
        )),
    }
}

/// Where to connect for `identifier` on `port`: the configured validation address, or what the
/// name resolves to (the caller's deadline bounds the lookup).
async fn target(
    identifier: &Identifier,
    port: u16,
    settings: &AcmeSettings,
) -> Result<SocketAddr, Problem> {
    if let Some(address) = settings.validation_address {
        return Ok(SocketAddr::new(address, port));
    }
    match identifier.kind {
        IdentifierType::Ip => identifier
            .value
            .parse::<IpAddr>()
            .map(|ip| SocketAddr::new(ip, port))
            .map_err(|_| Problem::malformed("the identifier is not an IP address")),
        // Fully qualified (a trailing dot): the resolver's search domains never extend it.
        IdentifierType::Dns => tokio::net::lookup_host((format!("{}.", identifier.value), port))
            .await
            .ok()
            .and_then(|mut addresses| addresses.next())
            .ok_or_else(|| {
                Problem::new(
                    ProblemType::Connection,
                    format!("{} does not resolve", identifier.value),
                )
            }),
    }
}

/// http-01 (RFC 8555 8.3): `GET http://<identifier>:<port>/.well-known/acme-challenge/<token>`
/// must answer 200 with the key authorization (surrounding whitespace ignored).
fn http01(
    identifier: &Identifier,
    address: SocketAddr,
    port: u16,
    token: &str,
    key_authorization: &str,
) -> Result<(), Problem> {
    let host = match identifier.kind {
        IdentifierType::Ip if identifier.value.contains(':') => format!("[{}]", identifier.value),
        _ => identifier.value.clone(),
    };
    let host = if port == 80 {
        host
    } else {
        format!("{host}:{port}")
    };
    let url = format!("http://{address}/.well-known/acme-challenge/{token}");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(VALIDATION_TIMEOUT))
        .max_redirects(0)
        .http_status_as_error(false)
        .user_agent("csrgate-acme-validator")
        // Straight to the target: no proxy from the environment.
        .proxy(None)
        .build()
        .into();
    let mut response = agent
        .get(&url)
        .header("Host", &host)
        .call()
        .map_err(|e| {
            Problem::new(
                ProblemType::Connection,
                format!("http-01: cannot fetch http://{host}/.well-known/acme-challenge/{token} from {address}: {e}"),
            )
        })?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(Problem::unauthorized(format!(
            "http-01: http://{host}/.well-known/acme-challenge/{token} answered {status}, not 200"
        )));
    }
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_HTTP01_BODY)
        .read_to_string()
        .map_err(|e| {
            Problem::new(
                ProblemType::IncorrectResponse,
                format!("http-01: the answer is not a key authorization: {e}"),
            )
        })?;
    if body.trim() != key_authorization {
        return Err(Problem::new(
            ProblemType::IncorrectResponse,
            format!(
                "http-01: http://{host}/.well-known/acme-challenge/{token} holds something else \
                 than this challenge's key authorization"
            ),
        ));
    }
    Ok(())
}

/// tls-alpn-01 (RFC 8737 3): a TLS handshake offering only `acme-tls/1`, with the identifier
/// as SNI (an IP's reverse name, RFC 8738 6), must present a certificate for exactly the
/// identifier carrying SHA-256 of the key authorization.
async fn tls_alpn01(
    identifier: &Identifier,
    address: SocketAddr,
    key_authorization: &str,
) -> Result<(), Problem> {
    let tls = |detail: String| Problem::new(ProblemType::Tls, format!("tls-alpn-01: {detail}"));
    let stream = tokio::net::TcpStream::connect(address).await.map_err(|e| {
        Problem::new(
            ProblemType::Connection,
            format!("tls-alpn-01: cannot connect to {address}: {e}"),
        )
    })?;
    let (server_name, alpn_identifier) = match identifier.kind {
        IdentifierType::Dns => (
            identifier.value.clone(),
            csrgate_pki::AlpnIdentifier::Dns(&identifier.value),
        ),
        IdentifierType::Ip => {
            let ip: IpAddr = identifier
                .value
                .parse()
                .map_err(|_| Problem::malformed("the identifier is not an IP address"))?;
            (reverse_name(ip), csrgate_pki::AlpnIdentifier::Ip(ip))
        }
    };
    let mut builder =
        SslConnector::builder(SslMethod::tls_client()).map_err(|e| tls(e.to_string()))?;
    // The validation certificate is self-signed by design: what it must hold is checked below.
    builder.set_verify(SslVerifyMode::NONE);
    builder
        .set_min_proto_version(Some(SslVersion::TLS1_2))
        .map_err(|e| tls(e.to_string()))?;
    builder
        .set_alpn_protos(ACME_TLS_ALPN)
        .map_err(|e| tls(e.to_string()))?;
    let connector = builder.build();
    let mut configuration = connector.configure().map_err(|e| tls(e.to_string()))?;
    configuration.set_verify_hostname(false);
    let ssl = configuration
        .into_ssl(&server_name)
        .map_err(|e| tls(e.to_string()))?;
    let mut stream = tokio_openssl::SslStream::new(ssl, stream).map_err(|e| tls(e.to_string()))?;
    std::pin::Pin::new(&mut stream)
        .connect()
        .await
        .map_err(|e| tls(format!("the handshake with {address} failed: {e}")))?;
    if stream.ssl().selected_alpn_protocol() != Some(b"acme-tls/1") {
        return Err(tls(format!(
            "{address} did not negotiate the acme-tls/1 protocol"
        )));
    }
    let certificate = stream
        .ssl()
        .peer_certificate()
        .ok_or_else(|| tls(format!("{address} presented no certificate")))?;
    let der = certificate.to_der().map_err(|e| tls(e.to_string()))?;
    let digest = openssl::sha::sha256(key_authorization.as_bytes());
    csrgate_pki::check_tls_alpn_certificate(&der, alpn_identifier, &digest).map_err(|why| {
        Problem::new(
            ProblemType::IncorrectResponse,
            format!("tls-alpn-01: the certificate of {address}: {why}"),
        )
    })
}

/// dns-01 (RFC 8555 8.4): a TXT record at `_acme-challenge.<name>` holding base64url of
/// SHA-256 of the key authorization, looked up through `acme_dns_resolver` or the system's
/// resolvers (hickory-resolver; answers not cached, so a record just set is seen).
async fn dns01(
    identifier: &Identifier,
    key_authorization: &str,
    settings: &AcmeSettings,
) -> Result<(), Problem> {
    use base64::Engine as _;
    use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig, ResolverOpts};
    use hickory_resolver::name_server::TokioConnectionProvider;

    let dns = |detail: String| Problem::new(ProblemType::Dns, format!("dns-01: {detail}"));
    if identifier.kind != IdentifierType::Dns {
        return Err(Problem::malformed("dns-01 validates DNS names only"));
    }
    let mut builder = match settings.dns_resolver {
        Some(server) => hickory_resolver::Resolver::builder_with_config(
            ResolverConfig::from_parts(
                None,
                Vec::new(),
                NameServerConfigGroup::from_ips_clear(&[server.ip()], server.port(), true),
            ),
            TokioConnectionProvider::default(),
        ),
        None => hickory_resolver::Resolver::builder(TokioConnectionProvider::default())
            .map_err(|e| dns(format!("no system resolver configuration: {e}")))?,
    };
    // The system's options (resolv.conf) but for these two: no cache here, so a record just
    // published is seen (an upstream resolver may still cache), and half the deadline per try.
    let options: &mut ResolverOpts = builder.options_mut();
    options.cache_size = 0;
    options.timeout = VALIDATION_TIMEOUT / 2;
    let resolver = builder.build();
    let name = format!("_acme-challenge.{}.", identifier.value);
    let expected = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(openssl::sha::sha256(key_authorization.as_bytes()));
    let records = resolver
        .txt_lookup(name.as_str())
        .await
        .map_err(|e| dns(format!("no TXT record at {name}: {e}")))?;
    let found = records.iter().any(|txt| {
        txt.txt_data()
            .iter()
            .map(|part| part.as_ref())
            .collect::<Vec<&[u8]>>()
            .concat()
            == expected.as_bytes()
    });
    if !found {
        return Err(Problem::new(
            ProblemType::IncorrectResponse,
            format!("dns-01: no TXT record at {name} holds this challenge's digest"),
        ));
    }
    Ok(())
}

/// The reverse-mapping name of an address (RFC 8738 6: in-addr.arpa / ip6.arpa).
fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        IpAddr::V6(v6) => {
            let mut name = String::new();
            for octet in v6.octets().iter().rev() {
                name.push_str(&format!("{:x}.{:x}.", octet & 0xf, octet >> 4));
            }
            name.push_str("ip6.arpa");
            name
        }
    }
}

#[cfg(test)]
mod tests {
    use super::reverse_name;

    #[test]
    fn reverse_names_follow_rfc_8738() {
        assert_eq!(
            reverse_name("10.0.0.7".parse().expect("ip")),
            "7.0.0.10.in-addr.arpa"
        );
        assert_eq!(
            reverse_name("2001:db8::1".parse().expect("ip")),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
        );
    }
}
