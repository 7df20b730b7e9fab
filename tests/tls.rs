//! End-to-end: native TLS. The daemon serves HTTPS itself (TLS 1.2 and later, the configured
//! chain), checked with `curl --cacert` and `openssl s_client`; client certificates authenticate
//! on the admin API (mTLS), a client without one is refused there; `admin_listen` keeps the
//! admin API off the public socket; a SIGHUP swaps the certificate under load without a failed
//! request; `csrgate cert` speaks https.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::support::tls::*;
use crate::support::*;

fn s_client(port: u16, ca: &Path, extra: &[&str]) -> String {
    let output = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-CAfile",
        ])
        .arg(ca)
        .args(extra)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("s_client");
    format!("{}{}", text(&output.stdout), text(&output.stderr))
}

#[test]
fn the_daemon_serves_tls_itself_with_the_configured_chain() {
    let ws = Workspace::new();
    let identity = ws.create_identity("ca", "ec:p256", "TLS CA", None);
    let tls_ca = TestCa::new(&ws, "tls-root");
    // The TLS key is encrypted with the CA passphrase: csrgate uses the CA's passphrase sources.
    let (chain, key) = tls_ca.server(&ws, "server", "csrgate.test", PASSPHRASE);
    let port = free_port();
    let daemon = start_with_config(
        &ws,
        &identity,
        &format!(
            "listen_tls = [\"127.0.0.1:{port}\"]\ntls_certificate = \"{}\"\ntls_private_key = \"{}\"\n",
            chain.display(),
            key.display()
        ),
    );
    assert!(
        daemon.log().contains("TLS certificate loaded"),
        "{}",
        daemon.log()
    );

    let csr = ws.csr("leaf", P256, "/CN=over.tls", &[]);
    let (exit, status, body) = curl_tls(
        &tls_ca.certificate,
        &https(port, "/tlsclient"),
        &["-X", "PUT", "--data-binary", &format!("@{}", csr.display())],
    );
    assert_eq!((exit, status), (0, 200), "{body}");
    // Without EST credentials, the EST paths are not there.
    let (exit, status, body) = curl_tls(
        &tls_ca.certificate,
        &https(port, "/.well-known/est/cacerts"),
        &[],
    );
    assert_eq!((exit, status), (0, 404), "{body}");
    assert!(body.contains("est_credentials_file"), "{body}");
    let (exit, _, _) = curl_tls(&identity.join("ca.cert.pem"), &https(port, "/health"), &[]);
    assert_eq!(
        exit, 60,
        "a client that does not trust the TLS CA refuses the server"
    );

    let modern = s_client(port, &tls_ca.certificate, &["-showcerts"]);
    assert!(modern.contains("Verify return code: 0 (ok)"), "{modern}");
    assert!(
        modern.contains("Protocol  : TLSv1.3") || modern.contains("New, TLSv1.3"),
        "{modern}"
    );
    assert_eq!(
        modern.matches("-----BEGIN CERTIFICATE-----").count(),
        2,
        "the served chain is the leaf and the configured CA: {modern}"
    );
    assert!(
        modern.contains("CN=csrgate.test") || modern.contains("CN = csrgate.test"),
        "{modern}"
    );
    let tls12 = s_client(port, &tls_ca.certificate, &["-tls1_2"]);
    assert!(
        tls12.contains("Server certificate") && tls12.contains("Verify return code: 0 (ok)"),
        "TLS 1.2 works: {tls12}"
    );
    let tls11 = s_client(port, &tls_ca.certificate, &["-tls1_1"]);
    assert!(
        !tls11.contains("Server certificate") && tls11.contains("no peer certificate available"),
        "TLS 1.1 is refused: {tls11}"
    );
    daemon.stop();
}

#[test]
fn client_certificates_open_the_admin_api_and_their_absence_does_not() {
    let ws = Workspace::new();
    let identity = ws.create_identity("ca", "ec:p256", "mTLS CA", None);
    let tls_ca = TestCa::new(&ws, "tls-root");
    let (chain, key) = tls_ca.server(&ws, "server", "csrgate.test", PASSPHRASE);
    let (ops_cert, ops_key) = tls_ca.issue(
        &ws,
        "ops",
        "/CN=ops/O=Example",
        "extendedKeyUsage=clientAuth\n",
    );
    let stranger_ca = TestCa::new(&ws, "stranger-root");
    let (stranger_cert, stranger_key) = stranger_ca.issue(
        &ws,
        "stranger",
        "/CN=stranger",
        "extendedKeyUsage=clientAuth\n",
    );
    let port = free_port();
    let daemon = start_with_config(
        &ws,
        &identity,
        &format!(
            "listen_tls = [\"127.0.0.1:{port}\"]\ntls_certificate = \"{}\"\ntls_private_key = \"{}\"\ntls_client_ca = \"{}\"\n",
            chain.display(),
            key.display(),
            tls_ca.certificate.display()
        ),
    );
    let ca = &tls_ca.certificate;
    let as_ops = [
        "--cert",
        ops_cert.to_str().expect("utf8"),
        "--key",
        ops_key.to_str().expect("utf8"),
    ];

    // The public API needs no client certificate.
    let csr = ws.csr("leaf", P256, "/CN=public.tls", &[]);
    let put = ["-X", "PUT", "--data-binary"];
    let body = format!("@{}", csr.display());
    let (exit, status, answer) = curl_tls(
        ca,
        &https(port, "/pub1"),
        &[&put[..], &[body.as_str()]].concat(),
    );
    assert_eq!((exit, status), (0, 200), "{answer}");
    let serial = serde_json::from_str::<serde_json::Value>(&answer).expect("json")["serial"]
        .as_str()
        .expect("serial")
        .to_owned();

    let (_, status, answer) = curl_tls(ca, &https(port, "/certificates"), &[]);
    assert_eq!(status, 401, "no certificate, no token: {answer}");
    let (_, status, answer) = curl_tls(ca, &https(port, "/certificates"), &as_ops);
    assert_eq!(status, 200, "{answer}");
    let (exit, status, _) = curl_tls(
        ca,
        &https(port, "/certificates"),
        &[
            "--cert",
            stranger_cert.to_str().expect("utf8"),
            "--key",
            stranger_key.to_str().expect("utf8"),
        ],
    );
    assert!(
        exit != 0 || status != 200,
        "a certificate of another CA is refused in the handshake"
    );

    // The certificate's subject is the actor in the audit chain.
    let revoke_url = https(port, &format!("/certificates/{serial}/revoke"));
    let (_, status, answer) = curl_tls(
        ca,
        &revoke_url,
        &[
            &as_ops[..],
            &["-X", "POST", "--data", "{\"reason\": \"superseded\"}"],
        ]
        .concat(),
    );
    assert_eq!(status, 200, "{answer}");
    let (_, status, audit) = curl_tls(ca, &https(port, "/audit"), &as_ops);
    assert_eq!(status, 200);
    assert!(audit.contains("cert:CN=ops,O=Example"), "{audit}");

    // csrgate cert speaks https, authenticated by the same certificate.
    let listed = csrgate()
        .args(["cert", "list", "--json", "--url", &https(port, "")])
        .arg("--cacert")
        .arg(ca)
        .args(as_ops)
        .output()
        .expect("cert list");
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    assert!(
        text(&listed.stdout).contains(&serial),
        "{}",
        text(&listed.stdout)
    );
    daemon.stop();
}

#[test]
fn admin_listen_keeps_the_admin_api_off_the_public_socket() {
    let ws = Workspace::new();
    let identity = ws.create_identity("ca", "ec:p256", "Split CA", None);
    let token = "split-admin-token-0123456789";
    let tokens = ws.write("tokens", format!("ops {token}\n").as_bytes());
    let admin_port = free_port();
    let socket = ws.path("admin.sock");
    let daemon = start_with_config(
        &ws,
        &identity,
        &format!(
            "admin_tokens_file = \"{}\"\nadmin_listen = [\"127.0.0.1:{admin_port}\", \"unix:{}\"]\n",
            tokens.display(),
            socket.display()
        ),
    );
    let bearer = format!("Authorization: Bearer {token}");
    let (status, body) = daemon.curl("/certificates", &["-H".into(), bearer.clone()]);
    assert_eq!(
        (status, error_code(&body).as_str()),
        (404, "not_found"),
        "public socket: {body}"
    );
    let csr = ws.csr("leaf", P256, "/CN=split", &[]);
    assert_eq!(
        daemon.put_file("/splitclient", &csr, &[]).0,
        200,
        "the public API stays"
    );

    let admin = |path: &str, extra: &[&str]| {
        let output = Command::new("curl")
            .args([
                "-sS",
                "--max-time",
                "20",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
            ])
            .args(extra)
            .arg(path)
            .output()
            .expect("curl");
        text(&output.stdout).trim().parse::<u16>().unwrap_or(0)
    };
    let over_tcp = format!("http://127.0.0.1:{admin_port}");
    assert_eq!(
        admin(&format!("{over_tcp}/certificates"), &["-H", &bearer]),
        200
    );
    assert_eq!(admin(&format!("{over_tcp}/certificates"), &[]), 401);
    assert_eq!(
        admin(
            &format!("{over_tcp}/splitclient"),
            &["-X", "PUT", "--data-binary", &format!("@{}", csr.display())]
        ),
        404,
        "no issuance on the admin socket"
    );
    let unix = [
        "--unix-socket",
        socket.to_str().expect("utf8"),
        "-H",
        &bearer,
    ];
    assert_eq!(admin("http://localhost/certificates", &unix), 200);
    daemon.stop();
}

#[test]
fn a_new_certificate_is_served_after_sighup_without_a_failed_request() {
    let ws = Workspace::new();
    let identity = ws.create_identity("ca", "ec:p256", "Reload TLS CA", None);
    let tls_ca = TestCa::new(&ws, "tls-root");
    let (first_chain, first_key) = tls_ca.server(&ws, "first", "first.test", PASSPHRASE);
    let (second_chain, second_key) = tls_ca.server(&ws, "second", "second.test", PASSPHRASE);
    let (chain, key) = (ws.path("served-chain.pem"), ws.path("served.key"));
    std::fs::copy(&first_chain, &chain).expect("copy");
    std::fs::copy(&first_key, &key).expect("copy");
    let port = free_port();
    let daemon = Arc::new(start_with_config(
        &ws,
        &identity,
        &format!(
            "listen_tls = [\"127.0.0.1:{port}\"]\ntls_certificate = \"{}\"\ntls_private_key = \"{}\"\n",
            chain.display(),
            key.display()
        ),
    ));
    let served = || s_client(port, &tls_ca.certificate, &[]);
    assert!(served().contains("first.test"));

    // Bounded load: 3 clients, new TLS connections, until told to stop or 150 each.
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let (stop, ca) = (Arc::clone(&stop), tls_ca.certificate.clone());
            std::thread::spawn(move || {
                let mut answers = Vec::new();
                for _ in 0..150 {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    answers.push(curl_tls(&ca, &https(port, "/health"), &[]));
                }
                answers
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    std::fs::copy(&second_chain, &chain).expect("copy");
    std::fs::copy(&second_key, &key).expect("copy");
    daemon.hup();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !served().contains("second.test") {
        assert!(
            Instant::now() < deadline,
            "the new certificate is not served:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    let mut total = 0;
    for worker in workers {
        for (exit, status, body) in worker.join().expect("worker") {
            assert_eq!(
                (exit, status),
                (0, 200),
                "a request failed across the reload: {body}"
            );
            total += 1;
        }
    }
    println!("{total} TLS requests across the certificate reload, none failed");
    assert!(total > 10, "the load did not run: {total}");

    // A key that does not match is refused; the running certificate stays.
    std::fs::copy(&first_key, &key).expect("copy");
    daemon.hup();
    daemon.wait_for_log("reload refused");
    assert!(
        daemon.log().contains("is not the key of the certificate"),
        "{}",
        daemon.log()
    );
    assert!(served().contains("second.test"));
}

#[test]
fn dev_mode_makes_its_own_tls_certificate() {
    let ws = Workspace::new();
    let identity = ws.path("dev-identity");
    let port = free_port();
    let config = ws.write(
        "dev.toml",
        format!("listen_tls = [\"127.0.0.1:{port}\"]\n").as_bytes(),
    );
    let mut command = csrgate();
    command
        .env_remove("CA_PASSPHRASE")
        .args(["serve", "--dev", "--listen", "127.0.0.1:0", "--identity"])
        .arg(&identity)
        .arg("--data")
        .arg(ws.path("data"))
        .arg("--config")
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let daemon = Daemon::spawn(command).expect("--dev with listen_tls starts");
    let (exit, status, body) = curl_tls(
        &identity.join("ca.cert.pem"),
        &format!("https://localhost:{port}/certificates"),
        &[
            "-H",
            &format!(
                "Authorization: Bearer {}",
                std::fs::read_to_string(identity.join("dev-admin-token"))
                    .expect("token")
                    .trim()
            ),
        ],
    );
    assert_eq!((exit, status), (0, 200), "{body}");
    daemon.stop();
}

/// csrgate's own CA as `tls_client_ca` would make every requester an admin (csrgate issues
/// clientAuth certificates): refused at start, with what to do instead.
#[test]
fn csrgates_own_ca_is_refused_as_the_client_ca() {
    let ws = Workspace::new();
    let identity = ws.create_identity("ca", "ec:p256", "Own CA", None);
    let tls_ca = TestCa::new(&ws, "tls-root");
    let (chain, key) = tls_ca.server(&ws, "server", "csrgate.test", PASSPHRASE);
    let config = ws.write(
        "own.toml",
        format!(
            "listen_tls = [\"127.0.0.1:{}\"]\ntls_certificate = \"{}\"\ntls_private_key = \"{}\"\ntls_client_ca = \"{}\"\n",
            free_port(),
            chain.display(),
            key.display(),
            identity.join("ca.cert.pem").display()
        )
        .as_bytes(),
    );
    let refused = Daemon::try_start(
        &identity,
        &ws.path("data"),
        &["--config", config.to_str().expect("utf8")],
        &[("CA_PASSPHRASE", PASSPHRASE)],
    )
    .err()
    .expect("refused");
    assert_eq!(refused.status.code(), Some(78), "{}", refused.log);
    assert!(refused.log.contains("csrgate's own CA"), "{}", refused.log);

    // An issuer above csrgate's CA vouches for it as much, even when the identity keeps no
    // chain file to compare with: an intermediate's root as the client CA is refused too.
    let root = ws.create_identity("root", "ec:p256", "Own Root", None);
    let intermediate = ws.create_identity("inter", "ec:p256", "Own Intermediate", Some("root"));
    std::fs::remove_file(intermediate.join("ca.chain.pem")).expect("no chain file");
    let config = ws.write(
        "root.toml",
        format!(
            "listen_tls = [\"127.0.0.1:{}\"]\ntls_certificate = \"{}\"\ntls_private_key = \"{}\"\ntls_client_ca = \"{}\"\n",
            free_port(),
            chain.display(),
            key.display(),
            root.join("ca.cert.pem").display()
        )
        .as_bytes(),
    );
    let refused = Daemon::try_start(
        &intermediate,
        &ws.path("data-inter"),
        &["--config", config.to_str().expect("utf8")],
        &[("CA_PASSPHRASE", PASSPHRASE)],
    )
    .err()
    .expect("refused");
    assert_eq!(refused.status.code(), Some(78), "{}", refused.log);
    assert!(
        refused.log.contains("vouches for csrgate's own CA"),
        "{}",
        refused.log
    );
}
