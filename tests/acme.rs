//! End-to-end: ACME (RFC 8555) with the clients people run, unmodified: lego obtains, renews
//! and revokes certificates over http-01 and tls-alpn-01, certbot (RSA account keys) over
//! http-01, through the signing pipeline (issuance rules, an authorize plugin whose denial
//! fails the order with its reason); the README's command lines. A small client of our own
//! (`support::acme_client`) sends what they never would: replays, foreign keys, broken bodies,
//! IP identifiers (RFC 8738, which Debian's lego spells as DNS names), and orders that outlive
//! a restart.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::support::acme_client::{AcmeClient, Answer, b64, dns_responder, http01_responder};
use crate::support::tls::*;
use crate::support::*;

const TOKEN: &str = "acme-admin-token-0123456789";

/// A daemon serving ACME on a TLS listener, its validation ports and its CAs.
struct Acme {
    daemon: Daemon,
    port: u16,
    http01: u16,
    tls_alpn01: u16,
    /// csrgate's CA certificate (what `openssl verify` takes).
    ca: PathBuf,
    /// The TLS listener's root (what the clients trust).
    tls_root: PathBuf,
    identity: PathBuf,
    config: String,
}

impl Acme {
    /// With an issuance rule for `webteam` (names under `.example.test`, 127.0.0.0/8) and
    /// `extra` configuration lines.
    fn start(ws: &Workspace, extra: &str) -> Acme {
        let identity = ws.create_identity("ca", "ec:p256", "ACME CA", None);
        let tls_ca = TestCa::new(ws, "tls-root");
        let (chain, key) = tls_ca.server(ws, "server", "csrgate.test", PASSPHRASE);
        let tokens = ws.write("admin-tokens", format!("ops {TOKEN}\n").as_bytes());
        let (port, http01, tls_alpn01) = (free_port(), free_port(), free_port());
        let config = format!(
            "listen_tls = [\"127.0.0.1:{port}\"]\ntls_certificate = \"{}\"\ntls_private_key = \"{}\"\n\
             admin_tokens_file = \"{}\"\nacme = true\nacme_client_hashes = [\"acme\", \"webteam\"]\nacme_http01_port = {http01}\n\
             acme_tls_alpn01_port = {tls_alpn01}\nacme_validation_address = \"127.0.0.1\"\n{extra}\n\
             [[issuance]]\nname = \"web\"\nclients = [\"webteam\", \"acme\"]\ndns = [\".example.test\"]\nwildcards = true\nip = [\"127.0.0.0/8\"]\n",
            chain.display(),
            key.display(),
            tokens.display(),
        );
        let daemon = start_with_config(ws, &identity, &config);
        Acme {
            daemon,
            port,
            http01,
            tls_alpn01,
            ca: identity.join("ca.cert.pem"),
            tls_root: tls_ca.certificate.clone(),
            identity,
            config,
        }
    }

    fn directory(&self, client_hash: Option<&str>) -> String {
        match client_hash {
            Some(hash) => https(self.port, &format!("/acme/{hash}/directory")),
            None => https(self.port, "/acme/directory"),
        }
    }

    /// `lego ... ARGS` as the README runs it, in the workspace: (success, combined output).
    fn lego(&self, ws: &Workspace, directory: &str, args: &[&str]) -> (bool, String) {
        let output = Command::new("lego")
            .env("LEGO_CA_CERTIFICATES", &self.tls_root)
            .args(["--server", directory, "--path"])
            .arg(ws.path("lego"))
            .args(["--email", "t@x.test", "--accept-tos"])
            .args(args)
            .output()
            .expect("lego (tests/run installs it)");
        (
            output.status.success(),
            format!("{}{}", text(&output.stdout), text(&output.stderr)),
        )
    }

    /// The admin listing of `client_hash`: (serial, status) pairs.
    fn listed(&self, client_hash: &str) -> Vec<(String, String)> {
        let (status, body) = self.daemon.curl(
            &format!("/certificates?client_hash={client_hash}"),
            &["-H".into(), format!("Authorization: Bearer {TOKEN}")],
        );
        assert_eq!(status, 200, "{body}");
        let listing: Value = serde_json::from_str(&body).expect("json");
        listing["certificates"]
            .as_array()
            .expect("certificates")
            .iter()
            .map(|c| {
                (
                    c["serial"].as_str().expect("serial").to_owned(),
                    c["status"].as_str().expect("status").to_owned(),
                )
            })
            .collect()
    }
}

/// The serial of a PEM certificate file, as csrgate lists it (lower-case hex).
fn serial_of(file: &Path) -> String {
    openssl_x509(file, &["-noout", "-serial"])
        .trim()
        .trim_start_matches("serial=")
        .to_ascii_lowercase()
}

#[test]
fn lego_obtains_renews_and_revokes_over_http01_and_tls_alpn01() {
    let ws = Workspace::new();
    let acme = Acme::start(&ws, "");
    let directory = acme.directory(Some("webteam"));
    let http = format!("127.0.0.1:{}", acme.http01);

    // Obtain over http-01: lego's own server answers on the validation port.
    let (ok, out) = acme.lego(
        &ws,
        &directory,
        &[
            "-d",
            "app.example.test",
            "--http",
            "--http.port",
            &http,
            "run",
        ],
    );
    assert!(ok, "{out}");
    let certificate = ws.path("lego/certificates/app.example.test.crt");
    let verified = openssl_verify(&acme.ca, None, &certificate);
    assert!(verified.status.success(), "{}", text(&verified.stderr));
    let first = serial_of(&certificate);
    assert_eq!(
        acme.listed("webteam"),
        [(first.clone(), "valid".to_owned())]
    );
    let chain = std::fs::read_to_string(ws.path("lego/certificates/app.example.test.issuer.crt"))
        .expect("issuer");
    assert_eq!(
        chain.trim(),
        std::fs::read_to_string(&acme.ca).expect("ca").trim()
    );

    // Renew (the authorization is reused while valid): a new certificate, the old one kept.
    let (ok, out) = acme.lego(
        &ws,
        &directory,
        &[
            "-d",
            "app.example.test",
            "--http",
            "--http.port",
            &http,
            "renew",
            "--days",
            "9999",
            "--no-random-sleep",
        ],
    );
    assert!(ok, "{out}");
    let second = serial_of(&certificate);
    assert_ne!(first, second);
    assert!(
        openssl_verify(&acme.ca, None, &certificate)
            .status
            .success(),
        "renewed certificate verifies"
    );

    // Revoke with the account key: the CRL and the listing say so at once.
    let (ok, out) = acme.lego(&ws, &directory, &["-d", "app.example.test", "revoke"]);
    assert!(ok, "{out}");
    let mut listed = acme.listed("webteam");
    listed.sort();
    let mut expected = vec![(first, "valid".to_owned()), (second, "revoked".to_owned())];
    expected.sort();
    assert_eq!(listed, expected);

    // tls-alpn-01: lego answers the TLS handshake with its acme-tls/1 certificate.
    let tls = format!("127.0.0.1:{}", acme.tls_alpn01);
    let (ok, out) = acme.lego(
        &ws,
        &directory,
        &[
            "-d",
            "alpn.example.test",
            "--tls",
            "--tls.port",
            &tls,
            "run",
        ],
    );
    assert!(ok, "{out}");
    assert!(out.contains("TLS-ALPN-01"), "{out}");
    let alpn = ws.path("lego/certificates/alpn.example.test.crt");
    assert!(openssl_verify(&acme.ca, None, &alpn).status.success());
    assert!(
        openssl_x509(&alpn, &["-noout", "-ext", "subjectAltName"])
            .contains("DNS:alpn.example.test")
    );

    // A name the client cannot serve: the challenge fails with what the validator found.
    let (ok, out) = acme.lego(
        &ws,
        &directory,
        &[
            "-d",
            "nobody.example.test",
            "--http",
            "--http.port",
            "127.0.0.1:1",
            "run",
        ],
    );
    assert!(!ok, "{out}");
    assert!(out.contains("urn:ietf:params:acme:error:"), "{out}");
}

#[test]
fn certbot_obtains_renews_and_revokes_with_an_rsa_account_key() {
    let ws = Workspace::new();
    let acme = Acme::start(&ws, "");
    let directory = acme.directory(None);
    let dirs = |ws: &Workspace| -> Vec<String> {
        ["config", "work", "logs"]
            .iter()
            .flat_map(|d| {
                [
                    format!("--{d}-dir"),
                    ws.path(&format!("certbot/{d}")).display().to_string(),
                ]
            })
            .collect()
    };
    let certbot = |args: &[&str]| {
        let output = Command::new("certbot")
            .env("REQUESTS_CA_BUNDLE", &acme.tls_root)
            .args(args)
            .args(dirs(&ws))
            .output()
            .expect("certbot (tests/run installs it)");
        (
            output.status.success(),
            format!("{}{}", text(&output.stdout), text(&output.stderr)),
        )
    };
    let port = acme.http01.to_string();
    let (ok, out) = certbot(&[
        "certonly",
        "--standalone",
        "-n",
        "--agree-tos",
        "--register-unsafely-without-email",
        "--server",
        &directory,
        "--http-01-port",
        &port,
        "--http-01-address",
        "127.0.0.1",
        "-d",
        "web.example.test",
    ]);
    assert!(ok, "{out}");
    let live = ws.path("certbot/config/live/web.example.test");
    let certificate = live.join("cert.pem");
    let verified = openssl_verify(&acme.ca, None, &live.join("fullchain.pem"));
    assert!(verified.status.success(), "{}", text(&verified.stderr));
    let first = serial_of(&certificate);
    // /acme/directory issues to acme_client_hash (default "acme").
    assert_eq!(acme.listed("acme"), [(first.clone(), "valid".to_owned())]);

    let (ok, out) = certbot(&[
        "renew",
        "--force-renewal",
        "--no-random-sleep-on-renew",
        "-n",
    ]);
    assert!(ok, "{out}");
    let second = serial_of(&certificate);
    assert_ne!(first, second);

    let (ok, out) = certbot(&[
        "revoke",
        "-n",
        "--cert-name",
        "web.example.test",
        "--no-delete-after-revoke",
        "--reason",
        "keycompromise",
    ]);
    assert!(ok, "{out}");
    let revoked = acme
        .listed("acme")
        .into_iter()
        .find(|(serial, _)| *serial == second)
        .expect("listed");
    assert_eq!(revoked.1, "revoked");
    // The CRL carries it with certbot's reason.
    let (status, crl) = acme.daemon.curl("/crl.pem", &[]);
    assert_eq!(status, 200);
    let crl_file = ws.write("crl.pem", crl.as_bytes());
    let shown = openssl_show("crl", &crl_file, &["-noout", "-text"]);
    assert!(shown.to_ascii_lowercase().contains(&second), "{shown}");
    assert!(shown.contains("Key Compromise"), "{shown}");
}

#[test]
fn an_authorize_plugin_denial_fails_the_order_with_its_reason() {
    let ws = Workspace::new();
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plugin-cache");
    let plugin = |name: &str, wasm: &str, config: &str| {
        format!(
            "[[plugins]]\nname = \"{name}\"\npath = \"{}\"\nhooks = [\"authorize\"]\n[plugins.config]\n{config}\n",
            csrgate_test_plugins::component(wasm).display()
        )
    };
    let acme = Acme::start(
        &ws,
        &format!(
            "plugin_cache = \"{}\"\n{}{}",
            cache.display(),
            plugin(
                "names",
                "san_policy",
                "dns_suffixes = [\"allowed.example.test\"]"
            ),
            // Contract 0.2's `via`: this CA issues through ACME only.
            plugin("doors", "front_doors", "allow = [\"acme\"]"),
        ),
    );
    let directory = acme.directory(Some("webteam"));
    let http = format!("127.0.0.1:{}", acme.http01);
    let (ok, out) = acme.lego(
        &ws,
        &directory,
        &[
            "-d",
            "www.allowed.example.test",
            "--http",
            "--http.port",
            &http,
            "run",
        ],
    );
    assert!(ok, "{out}");
    // Validated (the client controls the name), then denied by the plugin at finalize.
    let (ok, out) = acme.lego(
        &ws,
        &directory,
        &[
            "-d",
            "blocked.example.test",
            "--http",
            "--http.port",
            &http,
            "run",
        ],
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("urn:ietf:params:acme:error:rejectedIdentifier")
            && out.contains(
                "denied by names: SAN DNS:blocked.example.test is outside the allowed names"
            ),
        "{out}"
    );
    assert_eq!(
        acme.listed("webteam").len(),
        1,
        "nothing issued for the denied name"
    );

    // The same name by PUT: refused, the client hash issues through ACME only.
    let csr = ws.csr(
        "put",
        &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "/CN=www.allowed.example.test",
        &["-addext", "subjectAltName=DNS:www.allowed.example.test"],
    );
    let (status, body) = acme.daemon.put_file("/webteam", &csr, &[]);
    assert_eq!(status, 403, "{body}");
    assert_eq!(error_code(&body), "denied", "{body}");
    assert!(
        body.contains("client hash webteam issues through ACME only"),
        "{body}"
    );
    assert_eq!(acme.listed("webteam").len(), 1);
}

/// A P-256 CSR for `sans` (openssl's syntax) with an empty subject, DER.
fn csr_der(ws: &Workspace, name: &str, sans: &str) -> Vec<u8> {
    csr_der_with(ws, name, "/", sans)
}

/// A P-256 CSR for `subject` and `sans` (openssl's syntax), DER.
fn csr_der_with(ws: &Workspace, name: &str, subject: &str, sans: &str) -> Vec<u8> {
    let der = ws.path(&format!("{name}.der"));
    let status = Command::new("openssl")
        .args([
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .arg("-keyout")
        .arg(ws.path(&format!("{name}.key")))
        .args([
            "-subj",
            subject,
            "-addext",
            &format!("subjectAltName={sans}"),
            "-outform",
            "DER",
        ])
        .arg("-out")
        .arg(&der)
        .status()
        .expect("openssl");
    assert!(status.success());
    std::fs::read(der).expect("der")
}

#[test]
fn ip_identifiers_and_orders_survive_a_restart() {
    let ws = Workspace::new();
    let mut acme = Acme::start(&ws, "");
    let mut client = AcmeClient::new(&acme.directory(Some("webteam")), &acme.tls_root);
    client.register();
    let order = client.post(
        &client.url("newOrder"),
        Some(&json!({"identifiers": [{"type": "ip", "value": "127.0.0.1"}]})),
    );
    assert_eq!(order.status, 201, "{order:?}");
    let order_url = order.location.clone().expect("Location");
    let authz_url = order.json()["authorizations"][0]
        .as_str()
        .expect("authz")
        .to_owned();
    let saved_nonce = client.nonce();

    // Restart: the order, the account and the nonce handed out before it are all still good.
    let _ = acme.daemon.stop();
    acme.daemon = start_with_config(&ws, &acme.identity, &acme.config);
    let body = client.sign(&authz_url, None, Some(&saved_nonce), false);
    let authz = client.post_raw(&authz_url, &body, "application/jose+json");
    assert_eq!(authz.status, 200, "{authz:?}");
    let authz = authz.json();
    assert_eq!(
        authz["identifier"],
        json!({"type": "ip", "value": "127.0.0.1"})
    );
    let challenge = authz["challenges"]
        .as_array()
        .expect("challenges")
        .iter()
        .find(|c| c["type"] == "http-01")
        .expect("http-01")
        .clone();
    let token = challenge["token"].as_str().expect("token").to_owned();
    let answers = Arc::new(Mutex::new(vec![(
        token.clone(),
        format!("{token}.{}", client.thumbprint()),
    )]));
    http01_responder(
        TcpListener::bind(("127.0.0.1", acme.http01)).expect("bind"),
        answers,
    );
    let validated = client.post(challenge["url"].as_str().expect("url"), Some(&json!({})));
    assert_eq!(validated.json()["status"], "valid", "{validated:?}");

    let ready = client.post(&order_url, None);
    assert_eq!(ready.json()["status"], "ready", "{ready:?}");
    // A CSR naming more than the order is refused, and leaves the order ready.
    let wider = csr_der(&ws, "wider", "IP:127.0.0.1,IP:127.0.0.2");
    let finalize = ready.json()["finalize"]
        .as_str()
        .expect("finalize")
        .to_owned();
    let refused = client.post(&finalize, Some(&json!({"csr": b64(&wider)})));
    assert_eq!(
        (refused.status, refused.problem().as_str()),
        (400, "badCSR"),
        "{refused:?}"
    );
    for (subject, why) in [
        ("/CN=127.0.0.1/O=Victim Inc", "subject holds O"),
        (
            "/CN=127.0.0.1/CN=victim.example.test",
            "common name \"victim.example.test\"",
        ),
    ] {
        let der = csr_der_with(&ws, "subject", subject, "IP:127.0.0.1");
        let refused = client.post(&finalize, Some(&json!({"csr": b64(&der)})));
        assert_eq!(
            (refused.status, refused.problem().as_str()),
            (400, "badCSR"),
            "{refused:?}"
        );
        assert!(
            refused.json()["detail"]
                .as_str()
                .unwrap_or_default()
                .contains(why),
            "{refused:?}"
        );
    }
    let csr = csr_der(&ws, "ip", "IP:127.0.0.1");
    let done = client.post(&finalize, Some(&json!({"csr": b64(&csr)})));
    assert_eq!(done.json()["status"], "valid", "{done:?}");
    let certificate_url = done.json()["certificate"]
        .as_str()
        .expect("certificate")
        .to_owned();
    let pem = client.post(&certificate_url, None);
    assert_eq!(pem.content_type, "application/pem-certificate-chain");
    let chain = ws.write("ip-chain.pem", pem.body.as_bytes());
    assert_eq!(
        pem.body.matches("BEGIN CERTIFICATE").count(),
        2,
        "leaf and CA"
    );
    assert!(openssl_verify(&acme.ca, None, &chain).status.success());
    assert!(
        openssl_x509(&chain, &["-noout", "-ext", "subjectAltName"])
            .contains("IP Address:127.0.0.1")
    );

    // Another account can neither read the order nor download the certificate.
    let mut other = AcmeClient::new(&acme.directory(Some("webteam")), &acme.tls_root);
    other.register();
    let peek = other.post(&order_url, None);
    assert_eq!(
        (peek.status, peek.problem().as_str()),
        (403, "unauthorized")
    );
    let peek = other.post(&certificate_url, None);
    assert_eq!(peek.status, 404, "{peek:?}");
}

/// How a refused request differs from a good newOrder of the account.
enum Bad {
    /// This body as it is.
    Body(&'static [u8]),
    /// Signed well, sent with this media type.
    MediaType(&'static str),
    /// Sent twice with one nonce (the first is accepted).
    Replayed,
    /// Signed with this nonce (or none).
    Nonce(Option<String>),
    /// Signed for the URL of this directory entry.
    SignedFor(&'static str),
    /// Signed by another key that claims the account's kid.
    Stranger,
    /// Signed with a kid that names no account.
    UnknownKid,
    /// Signed with the key as jwk.
    Jwk,
    /// An HMAC algorithm in the protected header.
    Hs256,
    /// This payload, signed well.
    Payload(Value),
    /// Finalize of a new order whose challenges were not met.
    FinalizeEarly,
}

impl Bad {
    /// Sends the request to `url` (newOrder), `payload` being the good order's.
    fn send(self, c: &mut AcmeClient, stranger: &AcmeClient, url: &str, payload: &Value) -> Answer {
        const JOSE: &str = "application/jose+json";
        let nonce = c.nonce();
        let signed = |c: &AcmeClient, nonce: Option<&str>| c.sign(url, Some(payload), nonce, false);
        match self {
            Bad::Body(body) => c.post_raw(url, body, JOSE),
            Bad::MediaType(media) => {
                let body = signed(c, Some(&nonce));
                c.post_raw(url, &body, media)
            }
            Bad::Replayed => {
                let body = signed(c, Some(&nonce));
                let first = c.post_raw(url, &body, JOSE);
                assert_eq!(first.status, 201, "{first:?}");
                c.post_raw(url, &body, JOSE)
            }
            Bad::Nonce(other) => {
                let body = signed(c, other.as_deref());
                c.post_raw(url, &body, JOSE)
            }
            Bad::SignedFor(entry) => {
                let body = c.sign(&c.url(entry), Some(payload), Some(&nonce), false);
                c.post_raw(url, &body, JOSE)
            }
            Bad::Stranger => {
                let body = signed(stranger, Some(&nonce));
                c.post_raw(url, &body, JOSE)
            }
            Bad::UnknownKid => {
                let real = c.kid.clone();
                c.kid = real.as_ref().map(|kid| format!("{kid}00"));
                let body = signed(c, Some(&nonce));
                c.kid = real;
                c.post_raw(url, &body, JOSE)
            }
            Bad::Jwk => {
                let body = c.sign(url, Some(payload), Some(&nonce), true);
                c.post_raw(url, &body, JOSE)
            }
            Bad::Hs256 => {
                let protected = json!({"alg": "HS256", "url": url, "nonce": nonce, "kid": c.kid});
                let body = json!({
                    "protected": b64(protected.to_string().as_bytes()),
                    "payload": b64(b"{}"),
                    "signature": b64(&[1; 32]),
                });
                c.post_raw(url, body.to_string().as_bytes(), JOSE)
            }
            Bad::Payload(other) => {
                let body = c.sign(url, Some(&other), Some(&nonce), false);
                c.post_raw(url, &body, JOSE)
            }
            Bad::FinalizeEarly => {
                let body = signed(c, Some(&nonce));
                let order = c.post_raw(url, &body, JOSE);
                let finalize = order.json()["finalize"]
                    .as_str()
                    .expect("finalize")
                    .to_owned();
                c.post(&finalize, Some(&json!({"csr": b64(b"not a csr")})))
            }
        }
    }
}

/// Each request csrgate must refuse, and the ACME problem it answers.
#[test]
fn bad_requests_get_acme_problem_documents_and_change_nothing() {
    let ws = Workspace::new();
    let acme = Acme::start(&ws, "max_body_bytes = 4096\n");
    let mut client = AcmeClient::new(&acme.directory(Some("webteam")), &acme.tls_root);
    client.register();
    let new_order = client.url("newOrder");
    let order = json!({"identifiers": [{"type": "dns", "value": "a.example.test"}]});

    // Another key claiming this account's kid.
    let mut stranger = AcmeClient::new(&acme.directory(Some("webteam")), &acme.tls_root);
    stranger.kid = client.kid.clone();
    let cases: [(&str, Bad, u16, &str); 15] = [
        ("not JSON", Bad::Body(b"{not json"), 400, "malformed"),
        (
            "wrong media type",
            Bad::MediaType("application/json"),
            415,
            "malformed",
        ),
        ("replayed nonce", Bad::Replayed, 400, "badNonce"),
        (
            "nonce not ours",
            Bad::Nonce(Some(b64(&[7; 40]))),
            400,
            "badNonce",
        ),
        ("no nonce", Bad::Nonce(None), 400, "badNonce"),
        (
            "url of another endpoint",
            Bad::SignedFor("revokeCert"),
            403,
            "unauthorized",
        ),
        (
            "signed by another key than the account's",
            Bad::Stranger,
            400,
            "malformed",
        ),
        (
            "unknown account",
            Bad::UnknownKid,
            401,
            "accountDoesNotExist",
        ),
        ("jwk where an account signs", Bad::Jwk, 400, "malformed"),
        ("HS256", Bad::Hs256, 400, "badSignatureAlgorithm"),
        (
            "oversized body",
            Bad::Payload(json!({"identifiers": [{"type": "dns", "value": "x".repeat(8000)}]})),
            413,
            "malformed",
        ),
        (
            "identifier type we do not validate",
            Bad::Payload(json!({"identifiers": [{"type": "email", "value": "a@example.test"}]})),
            400,
            "unsupportedIdentifier",
        ),
        (
            "a wildcard of a top-level domain",
            Bad::Payload(json!({"identifiers": [{"type": "dns", "value": "*.test"}]})),
            400,
            "rejectedIdentifier",
        ),
        (
            "an IP address as a DNS name",
            Bad::Payload(json!({"identifiers": [{"type": "dns", "value": "127.0.0.1"}]})),
            400,
            "rejectedIdentifier",
        ),
        (
            "finalize before the challenges",
            Bad::FinalizeEarly,
            403,
            "orderNotReady",
        ),
    ];
    for (name, bad, status, problem) in cases {
        let answer = bad.send(&mut client, &stranger, &new_order, &order);
        assert_eq!(
            (answer.status, answer.problem().as_str()),
            (status, problem),
            "{name}: {answer:?}"
        );
        assert_eq!(answer.content_type, "application/problem+json", "{name}");
        assert!(
            answer.nonce.is_some(),
            "{name}: every answer carries a nonce"
        );
        assert!(
            !answer.json()["detail"]
                .as_str()
                .unwrap_or_default()
                .is_empty(),
            "{name}"
        );
    }
    assert!(acme.listed("webteam").is_empty(), "nothing issued");

    // ACME is HTTPS only; directories exist only for acme_client_hashes.
    let (status, _) = acme.daemon.curl("/acme/directory", &[]);
    assert_eq!(status, 404);
    let (_, status, body) = curl_tls(
        &acme.tls_root,
        &https(acme.port, "/acme/other/directory"),
        &[],
    );
    assert_eq!(status, 404, "{body}");
}

#[test]
fn external_account_binding_decides_the_client_hash() {
    let ws = Workspace::new();
    let mac = b64(&[0x5a; 32]);
    let eab = ws.write(
        "acme-eab",
        format!("# KEY_ID CLIENT_HASH MAC_KEY\nkid-1 webteam {mac}\n").as_bytes(),
    );
    let acme = Acme::start(&ws, &format!("acme_eab_file = \"{}\"\n", eab.display()));
    let mut client = AcmeClient::new(&acme.directory(None), &acme.tls_root);
    assert_eq!(client.directory["meta"]["externalAccountRequired"], true);
    let url = client.url("newAccount");
    let nonce = client.nonce();
    let body = client.sign(
        &url,
        Some(&json!({"termsOfServiceAgreed": true})),
        Some(&nonce),
        true,
    );
    let refused = client.post_raw(&url, &body, "application/jose+json");
    assert_eq!(
        (refused.status, refused.problem().as_str()),
        (400, "externalAccountRequired")
    );

    // lego with the EAB key: its certificates go to the key's client hash.
    let (ok, out) = acme.lego(
        &ws,
        &acme.directory(None),
        &[
            "--eab",
            "--kid",
            "kid-1",
            "--hmac",
            &mac,
            "-d",
            "eab.example.test",
            "--http",
            "--http.port",
            &format!("127.0.0.1:{}", acme.http01),
            "run",
        ],
    );
    assert!(ok, "{out}");
    let serial = serial_of(&ws.path("lego/certificates/eab.example.test.crt"));
    assert_eq!(acme.listed("webteam"), [(serial, "valid".to_owned())]);

    // Withdrawn: the key taken out of the file (SIGHUP), its account can no longer order.
    std::fs::write(&eab, format!("kid-2 webteam {mac}\n")).expect("rewrite");
    acme.daemon.hup();
    acme.daemon.wait_for_log("reloaded");
    let (ok, out) = acme.lego(
        &ws,
        &acme.directory(None),
        &[
            "--eab",
            "--kid",
            "kid-1",
            "--hmac",
            &mac,
            "-d",
            "eab.example.test",
            "--http",
            "--http.port",
            &format!("127.0.0.1:{}", acme.http01),
            "renew",
            "--days",
            "9999",
            "--no-random-sleep",
        ],
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("external account binding is not configured"),
        "{out}"
    );

    // The key is bound once; a wrong MAC key is refused.
    for (kid, key, problem) in [
        ("kid-1", mac.clone(), "unauthorized"),
        ("kid-1", b64(&[1; 32]), "unauthorized"),
        ("kid-9", mac.clone(), "unauthorized"),
    ] {
        let mut second = AcmeClient::new(&acme.directory(None), &acme.tls_root);
        let url = second.url("newAccount");
        let protected = b64(json!({"alg": "HS256", "kid": kid, "url": url})
            .to_string()
            .as_bytes());
        let payload = b64(second.jwk().to_string().as_bytes());
        let signer = openssl::pkey::PKey::hmac(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &key)
                .expect("key"),
        )
        .expect("hmac");
        let mut hmac = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &signer)
            .expect("signer");
        hmac.update(format!("{protected}.{payload}").as_bytes())
            .expect("update");
        let binding = json!({"protected": protected, "payload": payload, "signature": b64(&hmac.sign_to_vec().expect("mac"))});
        let nonce = second.nonce();
        let body = second.sign(
            &url,
            Some(&json!({"termsOfServiceAgreed": true, "externalAccountBinding": binding})),
            Some(&nonce),
            true,
        );
        let answer = second.post_raw(&url, &body, "application/jose+json");
        assert_eq!(
            (answer.status, answer.problem().as_str()),
            (403, problem),
            "{kid}: {answer:?}"
        );
    }
}

#[test]
fn key_rollover_moves_the_account_and_deactivation_ends_it() {
    let ws = Workspace::new();
    let acme = Acme::start(&ws, "");
    let directory = acme.directory(Some("webteam"));
    let mut old = AcmeClient::new(&directory, &acme.tls_root);
    old.register();
    let kid = old.kid.clone().expect("kid");
    let mut new = AcmeClient::new(&directory, &acme.tls_root);
    let order = json!({"identifiers": [{"type": "dns", "value": "k.example.test"}]});

    // Inner JWS by the new key (jwk, no nonce) over {account, oldKey}; outer by the account.
    let url = old.url("keyChange");
    let inner = new.sign(
        &url,
        Some(&json!({"account": kid, "oldKey": old.jwk()})),
        None,
        true,
    );
    let inner: Value = serde_json::from_slice(&inner).expect("inner");
    let rolled = old.post(&url, Some(&inner));
    assert_eq!(rolled.status, 200, "{rolled:?}");

    // The old key no longer signs for the account; the new one does, and finds it.
    let refused = old.post(&old.url("newOrder"), Some(&order));
    assert_eq!(
        (refused.status, refused.problem().as_str()),
        (400, "malformed"),
        "{refused:?}"
    );
    let found = new.register();
    assert_eq!(found.status, 200, "{found:?}");
    assert_eq!(new.kid.as_deref(), Some(kid.as_str()));
    // The old key is free again: it makes a new account.
    old.kid = None;
    let fresh = old.register();
    assert_eq!(fresh.status, 201, "{fresh:?}");
    assert_ne!(old.kid.as_deref(), Some(kid.as_str()));

    // A key already in use cannot be rolled over to: 409 with that account's URL.
    let url = new.url("keyChange");
    let inner = old.sign(
        &url,
        Some(&json!({"account": kid, "oldKey": new.jwk()})),
        None,
        true,
    );
    let inner: Value = serde_json::from_slice(&inner).expect("inner");
    let conflict = new.post(&url, Some(&inner));
    assert_eq!(conflict.status, 409, "{conflict:?}");
    assert_eq!(conflict.location, old.kid);
    assert_eq!(conflict.content_type, "application/problem+json");

    // Deactivation is final: the account's requests are refused from then on.
    let gone = new.post(&kid, Some(&json!({"status": "deactivated"})));
    assert_eq!(gone.json()["status"], "deactivated", "{gone:?}");
    let refused = new.post(&new.url("newOrder"), Some(&order));
    assert_eq!(
        (refused.status, refused.problem().as_str()),
        (403, "unauthorized"),
        "{refused:?}"
    );
}

/// dns-01 (RFC 8555 8.4) through `acme_dns_resolver`, and with it wildcards: the order's
/// authorization is for the base name, offers dns-01 alone, and the certificate names the
/// wildcard; a TXT record with another digest is refused.
#[test]
fn dns01_validates_names_and_wildcards() {
    let ws = Workspace::new();
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
    let dns = socket.local_addr().expect("addr");
    let records = Arc::new(Mutex::new(Vec::new()));
    dns_responder(socket, Arc::clone(&records));
    let acme = Acme::start(&ws, &format!("acme_dns_resolver = \"{dns}\"\n"));
    let mut client = AcmeClient::new(&acme.directory(Some("webteam")), &acme.tls_root);
    client.register();
    let order = client.post(
        &client.url("newOrder"),
        Some(&json!({"identifiers": [
            {"type": "dns", "value": "*.wild.example.test"},
            {"type": "dns", "value": "wild.example.test"},
        ]})),
    );
    assert_eq!(order.status, 201, "{order:?}");
    let order_url = order.location.clone().expect("Location");
    let digest = |token: &str, thumbprint: &str| {
        b64(&openssl::sha::sha256(
            format!("{token}.{thumbprint}").as_bytes(),
        ))
    };
    for (index, authz_url) in order.json()["authorizations"]
        .as_array()
        .expect("authorizations")
        .clone()
        .into_iter()
        .enumerate()
    {
        let authz = client.post(authz_url.as_str().expect("url"), None).json();
        assert_eq!(authz["identifier"]["value"], "wild.example.test", "{authz}");
        let kinds: Vec<&str> = authz["challenges"]
            .as_array()
            .expect("challenges")
            .iter()
            .map(|c| c["type"].as_str().expect("type"))
            .collect();
        let wildcard = authz["wildcard"] == true;
        assert_eq!(wildcard, index == 0, "{authz}");
        if wildcard {
            assert_eq!(kinds, ["dns-01"]);
        } else {
            assert_eq!(kinds, ["http-01", "tls-alpn-01", "dns-01"]);
        }
        let challenge = authz["challenges"]
            .as_array()
            .expect("challenges")
            .iter()
            .find(|c| c["type"] == "dns-01")
            .expect("dns-01")
            .clone();
        let token = challenge["token"].as_str().expect("token");
        let url = challenge["url"].as_str().expect("url");
        if index == 0 {
            // A record with another digest first: refused, the authorization invalid.
            records
                .lock()
                .expect("lock")
                .push(("_acme-challenge.wild.example.test".into(), digest("x", "y")));
            let refused = client.post(url, Some(&json!({})));
            assert_eq!(refused.json()["status"], "invalid", "{refused:?}");
            assert_eq!(
                refused.json()["error"]["type"],
                "urn:ietf:params:acme:error:incorrectResponse",
                "{refused:?}"
            );
            records.lock().expect("lock").clear();
            continue;
        }
        records.lock().expect("lock").push((
            "_acme-challenge.wild.example.test".into(),
            digest(token, &client.thumbprint()),
        ));
        let validated = client.post(url, Some(&json!({})));
        assert_eq!(validated.json()["status"], "valid", "{validated:?}");
    }
    // The wildcard's authorization failed: the order is invalid. A new one, validated.
    let invalid = client.post(&order_url, None);
    assert_eq!(invalid.json()["status"], "invalid", "{invalid:?}");
    let order = client.post(
        &client.url("newOrder"),
        Some(&json!({"identifiers": [{"type": "dns", "value": "*.wild.example.test"}]})),
    );
    let wildcard_authz = order.json()["authorizations"][0]
        .as_str()
        .expect("authz")
        .to_owned();
    let authz = client.post(&wildcard_authz, None).json();
    let challenge = authz["challenges"][0].clone();
    records.lock().expect("lock").push((
        "_acme-challenge.wild.example.test".into(),
        digest(
            challenge["token"].as_str().expect("token"),
            &client.thumbprint(),
        ),
    ));
    let validated = client.post(challenge["url"].as_str().expect("url"), Some(&json!({})));
    assert_eq!(validated.json()["status"], "valid", "{validated:?}");
    let order_url = order.location.clone().expect("Location");
    let ready = client.post(&order_url, None);
    assert_eq!(ready.json()["status"], "ready", "{ready:?}");
    let finalize = ready.json()["finalize"]
        .as_str()
        .expect("finalize")
        .to_owned();
    let csr = csr_der(&ws, "wild", "DNS:*.wild.example.test");
    let done = client.post(&finalize, Some(&json!({"csr": b64(&csr)})));
    assert_eq!(done.json()["status"], "valid", "{done:?}");
    let pem = client.post(
        done.json()["certificate"].as_str().expect("certificate"),
        None,
    );
    let chain = ws.write("wild-chain.pem", pem.body.as_bytes());
    assert!(openssl_verify(&acme.ca, None, &chain).status.success());
    assert!(
        openssl_x509(&chain, &["-noout", "-ext", "subjectAltName"])
            .contains("DNS:*.wild.example.test")
    );

    // Each authorization serves its own kind of order: the base name's order gets the base
    // name's authorization (validated in the first order), not the wildcard's.
    let plain = client.post(
        &client.url("newOrder"),
        Some(&json!({"identifiers": [{"type": "dns", "value": "wild.example.test"}]})),
    );
    let plain_authz = plain.json()["authorizations"][0]
        .as_str()
        .expect("authz")
        .to_owned();
    assert_ne!(plain_authz, wildcard_authz);
    let authz = client.post(&plain_authz, None).json();
    assert_eq!(authz["status"], "valid", "{authz}");
    assert!(authz.get("wildcard").is_none(), "{authz}");
    // A wildcard of a name validated only as itself is not authorized by that.
    let other = client.post(
        &client.url("newOrder"),
        Some(&json!({"identifiers": [{"type": "dns", "value": "*.example.test"}]})),
    );
    let other_authz = other.json()["authorizations"][0]
        .as_str()
        .expect("authz")
        .to_owned();
    assert_eq!(client.post(&other_authz, None).json()["status"], "pending");
    let again = client.post(
        &client.url("newOrder"),
        Some(&json!({"identifiers": [{"type": "dns", "value": "*.wild.example.test"}]})),
    );
    assert_eq!(again.json()["status"], "ready", "{again:?}");
}
