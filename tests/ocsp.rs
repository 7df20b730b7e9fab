//! End-to-end: the OCSP responder (RFC 6960) asked by `openssl ocsp`, the client relying parties
//! and operators use: good, revoked (reason and time) and unknown, with and without a nonce,
//! SHA-1 and SHA-256 CertIDs, POST and GET, signed by the CA or by a delegated responder;
//! `ocsp_url` and `crl_url` in every certificate; malformed requests answered, never a 5xx.

use std::path::Path;
use std::process::Command;

use crate::support::*;

const TOKEN: &str = "0123456789abcdef-ocsp-operator";

/// A CA, a daemon with admin tokens and the given extra configuration, and its `ca.cert.pem`.
fn start(ws: &Workspace, extra_config: &str) -> (Daemon, std::path::PathBuf) {
    let identity = ws.create_identity("ca", "ec:p256", "OCSP CA", None);
    let daemon = start_with_admin(ws, &identity, TOKEN, extra_config);
    (daemon, identity.join("ca.cert.pem"))
}

fn issue(ws: &Workspace, daemon: &Daemon, name: &str) -> (String, std::path::PathBuf) {
    issue_json(ws, daemon, "ocspclient", name)
}

fn revoke(daemon: &Daemon, serial: &str, reason: &str) {
    let (status, body) = daemon.revoke(serial, reason, TOKEN);
    assert_eq!(status, 200, "{body}");
}

/// `openssl ocsp -issuer CA -CAfile CA -url …/ocsp ARGS`: (success, stdout + stderr).
fn openssl_ocsp(daemon: &Daemon, ca: &Path, args: &[&str]) -> (bool, String) {
    let output = Command::new("openssl")
        .arg("ocsp")
        .arg("-issuer")
        .arg(ca)
        .arg("-CAfile")
        .arg(ca)
        .args(["-url", &format!("{}/ocsp", daemon.base_url)])
        .args(["-timeout", "20"])
        .args(args)
        .output()
        .expect("openssl ocsp");
    (
        output.status.success(),
        format!("{}{}", text(&output.stdout), text(&output.stderr)),
    )
}

/// The status line openssl prints for `file`, e.g. `good`.
fn status_of(answer: &str, file: &Path) -> String {
    let prefix = format!("{}: ", file.display());
    answer
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no status for {} in:\n{answer}", file.display()))
        .trim()
        .to_owned()
}

fn post_ocsp(daemon: &Daemon, body: &Path) -> Vec<u8> {
    let output = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "20",
            "-H",
            "Content-Type: application/ocsp-request",
        ])
        .arg("--data-binary")
        .arg(format!("@{}", body.display()))
        .arg(format!("{}/ocsp", daemon.base_url))
        .output()
        .expect("curl");
    assert!(output.status.success(), "{}", text(&output.stderr));
    output.stdout
}

fn metric(daemon: &Daemon, line_start: &str) -> u64 {
    let (status, body) = daemon.curl(
        "/metrics",
        &["-H".into(), format!("Authorization: Bearer {TOKEN}")],
    );
    assert_eq!(status, 200, "{body}");
    body.lines()
        .find_map(|line| line.strip_prefix(line_start))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn openssl_ocsp_sees_good_revoked_and_unknown_from_the_ca() {
    let ws = Workspace::new();
    let (daemon, ca) = start(
        &ws,
        "ocsp_url = \"http://ocsp.example.test/ocsp\"\ncrl_url = \"http://crl.example.test/ca.crl\"\n",
    );
    let (_, a) = issue(&ws, &daemon, "a");
    let (serial_b, b) = issue(&ws, &daemon, "b");

    // Every certificate names the responder and the CRL, without a plugin.
    let extensions = openssl_x509(&a, &["-ext", "authorityInfoAccess,crlDistributionPoints"]);
    assert!(
        extensions.contains("OCSP - URI:http://ocsp.example.test/ocsp"),
        "{extensions}"
    );
    assert!(
        extensions.contains("URI:http://crl.example.test/ca.crl"),
        "{extensions}"
    );

    // Good, with a nonce (openssl's default) and without, SHA-1 and SHA-256 CertIDs.
    for args in [
        vec!["-cert", "A", "-cert", "B"],
        vec!["-no_nonce", "-cert", "A", "-cert", "B"],
        vec!["-sha256", "-cert", "A", "-cert", "B"],
        vec!["-sha256", "-no_nonce", "-cert", "A"],
    ] {
        let args: Vec<&str> = args
            .iter()
            .map(|arg| match *arg {
                "A" => a_str(&a),
                "B" => a_str(&b),
                other => other,
            })
            .collect();
        let (ok, answer) = openssl_ocsp(&daemon, &ca, &args);
        assert!(
            ok && answer.contains("Response verify OK"),
            "{args:?}\n{answer}"
        );
        assert_eq!(status_of(&answer, &a), "good", "{answer}");
        if args.contains(&a_str(&b)) {
            assert_eq!(status_of(&answer, &b), "good", "{answer}");
        }
        // openssl checks the echoed nonce: "no nonce in response" or "nonce verify error".
        assert!(!answer.to_lowercase().contains("nonce"), "{answer}");
    }
    let (_, with_nonce) = openssl_ocsp(&daemon, &ca, &["-resp_text", "-cert", a_str(&a)]);
    assert!(with_nonce.contains("OCSP Nonce"), "{with_nonce}");
    let (_, without) = openssl_ocsp(
        &daemon,
        &ca,
        &["-resp_text", "-no_nonce", "-cert", a_str(&a)],
    );
    assert!(!without.contains("OCSP Nonce"), "{without}");

    // A cached answer is the same bytes; a revocation changes it at once.
    let request = ws.path("b-request.der");
    let (ok, answer) = openssl_ocsp(
        &daemon,
        &ca,
        &["-no_nonce", "-cert", a_str(&b), "-reqout", a_str(&request)],
    );
    assert!(ok, "{answer}");
    let first = post_ocsp(&daemon, &request);
    let cached_before = metric(&daemon, "csrgate_ocsp_responses_total{outcome=\"cached\"} ");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(
        post_ocsp(&daemon, &request),
        first,
        "a cached answer is not re-signed"
    );
    assert!(metric(&daemon, "csrgate_ocsp_responses_total{outcome=\"cached\"} ") > cached_before);

    revoke(&daemon, &serial_b, "keyCompromise");
    let (ok, answer) = openssl_ocsp(&daemon, &ca, &["-no_nonce", "-cert", a_str(&b)]);
    assert!(ok && answer.contains("Response verify OK"), "{answer}");
    assert_eq!(status_of(&answer, &b), "revoked", "{answer}");
    assert!(answer.contains("Reason: keyCompromise"), "{answer}");
    assert!(answer.contains("Revocation Time:"), "{answer}");
    assert_ne!(post_ocsp(&daemon, &request), first);

    // A serial this CA never issued: answered, signed each time, never kept.
    let cached_before = metric(&daemon, "csrgate_ocsp_responses_total{outcome=\"cached\"} ");
    for _ in 0..2 {
        let (ok, answer) = openssl_ocsp(&daemon, &ca, &["-no_nonce", "-serial", "0x1234abcd"]);
        assert!(ok && answer.contains("Response verify OK"), "{answer}");
        assert!(answer.contains("0x1234abcd: unknown"), "{answer}");
    }
    assert_eq!(
        metric(&daemon, "csrgate_ocsp_responses_total{outcome=\"cached\"} "),
        cached_before
    );

    // GET: the base64 request, URL-encoded, as the last path segment (RFC 6960 A.1).
    let der = std::fs::read(&request).expect("request");
    let encoded = base64_url_path(&der);
    let response = ws.path("get-response.der");
    let fetched = Command::new("curl")
        .args(["-sS", "--path-as-is", "--fail", "-o", a_str(&response)])
        .arg(format!("{}/ocsp/{encoded}", daemon.base_url))
        .output()
        .expect("curl");
    assert!(fetched.status.success(), "{}", text(&fetched.stderr));
    let output = Command::new("openssl")
        .args(["ocsp", "-respin"])
        .arg(&response)
        .arg("-issuer")
        .arg(&ca)
        .arg("-CAfile")
        .arg(&ca)
        .arg("-cert")
        .arg(&b)
        .output()
        .expect("openssl ocsp -respin");
    let answer = format!("{}{}", text(&output.stdout), text(&output.stderr));
    assert!(answer.contains("Response verify OK"), "{answer}");
    assert_eq!(status_of(&answer, &b), "revoked", "{answer}");
}

#[test]
fn malformed_and_foreign_requests_get_ocsp_errors_never_a_5xx() {
    let ws = Workspace::new();
    let (daemon, _) = start(&ws, "");
    let (_, leaf) = issue(&ws, &daemon, "leaf");
    let malformed = [0x30, 0x03, 0x0a, 0x01, 0x01];
    let bodies: [(&str, Vec<u8>); 4] = [
        ("garbage", b"not an OCSP request".to_vec()),
        ("empty", Vec::new()),
        ("a bare SEQUENCE", vec![0x30, 0x00]),
        ("oversized", vec![0x30; 64 * 1024]),
    ];
    for (name, body) in bodies {
        let file = ws.write(&format!("{}.der", name.replace(' ', "-")), &body);
        assert_eq!(post_ocsp(&daemon, &file), malformed, "{name}");
    }
    for path in ["/ocsp/not-base64!!", "/ocsp/AAAA", "/ocsp/%ZZ"] {
        let output = Command::new("curl")
            .args(["-sS", "--path-as-is", "-w", "\n%{http_code}"])
            .arg(format!("{}{path}", daemon.base_url))
            .output()
            .expect("curl");
        let out = output.stdout;
        let split = out.iter().rposition(|b| *b == b'\n').expect("status");
        assert_eq!(&out[split + 1..], b"200", "{path}");
        assert_eq!(&out[..split], malformed, "{path}");
    }
    // A certificate of another CA: this responder is not authoritative (RFC 5019 2.2.3).
    let other = ws.create_identity("other", "ec:p256", "Other CA", None);
    let (ok, answer) = openssl_ocsp(
        &daemon,
        &other.join("ca.cert.pem"),
        &["-cert", a_str(&leaf)],
    );
    assert!(!ok || answer.contains("unauthorized"), "{answer}");
    assert!(answer.contains("unauthorized (6)"), "{answer}");
}

#[test]
fn a_delegated_responder_signs_and_is_renewed_when_its_time_is_up() {
    let ws = Workspace::new();
    let identity = ws.create_identity("ca", "ec:p256", "Delegating CA", None);
    let ca = identity.join("ca.cert.pem");
    // Issued by the CLI, with so little validity that the daemon must renew it at start.
    let output = csrgate()
        .args(["identity", "ocsp-signer", "--dir"])
        .arg(&identity)
        .args(["--validity", "5s"])
        .env("CA_PASSPHRASE", PASSPHRASE)
        .output()
        .expect("identity ocsp-signer");
    assert!(output.status.success(), "{}", text(&output.stderr));
    let cli_serial = text(&output.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("serial:").map(|s| s.trim().to_owned()))
        .expect("serial printed");
    let responder = identity.join("ocsp-signer.crt");
    let key = identity.join("ocsp-signer.key");
    let described = openssl_x509(&responder, &["-text"]);
    assert!(described.contains("OCSP Signing"), "{described}");
    assert!(described.contains("OCSP No Check"), "{described}");
    assert!(
        described.contains("Delegating CA OCSP responder"),
        "{described}"
    );
    let key_pem = std::fs::read_to_string(&key).expect("key");
    assert!(
        key_pem.contains("ENCRYPTED PRIVATE KEY"),
        "the key is encrypted"
    );
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&key).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let tokens = ws.write("admin-tokens", format!("ops {TOKEN}\n").as_bytes());
    let config = ws.write(
        "csrgate.toml",
        format!(
            "admin_tokens_file = \"{}\"\nocsp_responder = \"delegated\"\n[crl]\nvalidity = \"10d\"\n",
            tokens.display()
        )
        .as_bytes(),
    );
    let daemon = Daemon::start(
        &identity,
        &ws.path("data"),
        &["--config", config.to_str().expect("utf8")],
    );
    daemon.wait_for_log("OCSP responder certificate renewed");
    let renewed = openssl_x509(&responder, &["-serial", "-noout"]);
    assert!(
        !renewed.to_lowercase().contains(&cli_serial),
        "renewed at start: {renewed} vs {cli_serial}"
    );

    let (serial, leaf) = issue(&ws, &daemon, "leaf");
    let (ok, answer) = openssl_ocsp(&daemon, &ca, &["-cert", a_str(&leaf), "-resp_text"]);
    assert!(ok && answer.contains("Response verify OK"), "{answer}");
    assert_eq!(status_of(&answer, &leaf), "good", "{answer}");
    assert!(
        answer.contains("CN=Delegating CA OCSP responder")
            || answer.contains("CN = Delegating CA OCSP responder"),
        "the response carries the responder certificate:\n{answer}"
    );
    // The CRL period is 10 days, the responder's certificate lasts 7: no answer outlives its
    // signer.
    let responder_not_after = openssl_x509(&responder, &["-enddate"]);
    let responder_not_after = responder_not_after.trim().trim_start_matches("notAfter=");
    let next_update = answer
        .lines()
        .find_map(|line| line.trim().strip_prefix("Next Update: "))
        .expect("Next Update");
    assert_eq!(next_update, responder_not_after, "{answer}");
    revoke(&daemon, &serial, "superseded");
    let (ok, answer) = openssl_ocsp(&daemon, &ca, &["-cert", a_str(&leaf)]);
    assert!(ok && answer.contains("Response verify OK"), "{answer}");
    assert_eq!(status_of(&answer, &leaf), "revoked", "{answer}");
    assert!(answer.contains("Reason: superseded"), "{answer}");
    daemon.stop();

    // Restarted with the renewed (7-day) certificate: loaded, not issued again.
    let before = std::fs::read(&responder).expect("crt");
    let daemon = Daemon::start(
        &identity,
        &ws.path("data"),
        &["--config", config.to_str().expect("utf8")],
    );
    let (ok, answer) = openssl_ocsp(&daemon, &ca, &["-cert", a_str(&leaf)]);
    assert!(ok && answer.contains("Response verify OK"), "{answer}");
    assert_eq!(std::fs::read(&responder).expect("crt"), before);
    assert!(!daemon.log().contains("renewed"), "{}", daemon.log());
}

fn a_str(path: &Path) -> &str {
    path.to_str().expect("utf8 path")
}

/// Base64 of `der`, with `+`, `/` and `=` percent-encoded for a path segment.
fn base64_url_path(der: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .encode(der)
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D")
}
