//! End-to-end: closed by default. A production start with nothing restricting issuance is
//! refused before anything touches the disk; `open_issuance` and `--dev` start with a warning;
//! `[[issuance]]` rules allow and deny the right names through a real daemon, with curl and
//! `openssl req` CSRs; `plugin run` shows the rules' decision.

use std::process::Stdio;

use crate::support::*;

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"))
}

#[test]
fn a_production_start_without_rules_is_refused_with_exit_78() {
    let ws = Workspace::new();
    let identity = ws.create_identity("ca", "ec:p256", "Closed CA", None);
    let refused = csrgate()
        .env_remove("CSRGATE_OPEN_ISSUANCE")
        .args(["serve", "--listen", "127.0.0.1:0", "--identity"])
        .arg(&identity)
        .arg("--data")
        .arg(ws.path("data"))
        .env("CA_PASSPHRASE", PASSPHRASE)
        .output()
        .expect("run");
    let stderr = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(78), "{stderr}");
    for needed in [
        "nothing restricts issuance",
        "[[issuance]]",
        "open_issuance = true",
    ] {
        assert!(stderr.contains(needed), "{needed:?} missing from {stderr}");
    }
    assert!(!stderr.contains("listening"), "{stderr}");
    assert!(!ws.path("data").exists(), "nothing may be created on disk");
}

/// `csrgate serve` for `identity` without the harness's `CSRGATE_OPEN_ISSUANCE`, plus `extra`.
fn serve_closed(
    ws: &Workspace,
    identity: &std::path::Path,
    extra: &[&str],
) -> std::process::Command {
    let mut command = csrgate();
    command
        .env_remove("CSRGATE_OPEN_ISSUANCE")
        .env("CA_PASSPHRASE", PASSPHRASE)
        .args(["serve", "--listen", "127.0.0.1:0", "--identity"])
        .arg(identity)
        .arg("--data")
        .arg(ws.path("data"))
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

#[test]
fn open_issuance_starts_warns_and_shows_in_health() {
    let ws = Workspace::new();
    let identity = ws.create_identity("ca", "ec:p256", "Open CA", None);
    let config = ws.write("open.toml", b"open_issuance = true\n");
    let daemon = Daemon::spawn(serve_closed(
        &ws,
        &identity,
        &["--config", config.to_str().expect("utf8")],
    ))
    .expect("open_issuance = true starts");
    assert!(daemon.log().contains("OPEN ISSUANCE"), "{}", daemon.log());
    let (status, body) = daemon.curl("/health", &[]);
    assert_eq!(status, 200);
    assert_eq!(json(&body)["open_issuance"], true, "{body}");
    daemon.stop();
}

#[test]
fn dev_mode_is_open_and_its_admin_token_opens_the_lifecycle_api() {
    let ws = Workspace::new();
    let identity = ws.path("dev-identity");
    let dev = || {
        let mut command = serve_closed(&ws, &identity, &["--dev"]);
        command.env_remove("CA_PASSPHRASE");
        command
    };
    let daemon = Daemon::spawn(dev()).expect("--dev starts");
    let token_file = identity.join("dev-admin-token");
    let token = std::fs::read_to_string(&token_file).expect("the dev admin token exists");
    let token = token.trim();
    assert!(token.len() >= 32, "{token:?}");
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&token_file)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the token file is private: {mode:o}");
    }
    assert!(daemon.log().contains("dev-admin-token"), "{}", daemon.log());
    let csr = ws.csr("leaf", P256, "/CN=dev.example", &[]);
    let (status, body) = daemon.put_file("/devclient", &csr, &[]);
    assert_eq!(status, 200, "{body}");
    let bearer = format!("Authorization: Bearer {token}");
    let (status, body) = daemon.curl("/certificates", &["-H".into(), bearer.clone()]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        json(&body)["certificates"].as_array().map(Vec::len),
        Some(1)
    );
    let (status, _) = daemon.curl(
        "/certificates",
        &[
            "-H".into(),
            "Authorization: Bearer wrong-wrong-wrong-wrong".into(),
        ],
    );
    assert_eq!(status, 403);
    let (_, health) = daemon.curl("/health", &[]);
    assert_eq!(json(&health)["open_issuance"], true);
    daemon.stop();

    // The same token at the next start: it is kept, not replaced.
    let again = Daemon::spawn(dev()).expect("restart");
    let (status, _) = again.curl("/certificates", &["-H".into(), bearer]);
    assert_eq!(status, 200);
    again.stop();
}

const RULES: &str = r#"
[[issuance]]
name = "web"
clients = ["web01"]
dns = ["www.example.com", ".web.example.internal"]
ip = ["10.1.0.0/16"]
key_types = ["ec-p256", "rsa"]
min_rsa_bits = 3072
max_validity = "30d"

[[issuance]]
name = "mesh"
dns = [".svc.example.internal"]
wildcards = true
uri_prefixes = ["spiffe://example.org/"]
email_domains = ["example.com"]
"#;

/// (client, subject, SAN extension or "", key, expected status, fragment of the message)
type Case = (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    u16,
    &'static str,
);

const CASES: &[Case] = &[
    ("web01", "/CN=www.example.com", "", P256, 200, ""),
    (
        "web01",
        "/CN=Jane Doe",
        "DNS:api.web.example.internal,IP:10.1.2.3",
        P256,
        200,
        "",
    ),
    (
        "web01",
        "/CN=Jane Doe",
        "DNS:evil.example.com",
        P256,
        403,
        "issuance rule \"web\": DNS:evil.example.com is not allowed",
    ),
    (
        "web01",
        "/CN=Jane Doe",
        "DNS:www.example.com,IP:192.168.1.1",
        P256,
        403,
        "IP:192.168.1.1",
    ),
    (
        "web01",
        "/CN=Jane Doe",
        "DNS:*.web.example.internal",
        P256,
        403,
        "wildcard",
    ),
    (
        "web01",
        "/CN=Jane Doe",
        "DNS:www.example.com",
        P384,
        403,
        "allowed key types are ec-p256, rsa",
    ),
    (
        "web01",
        "/CN=Jane Doe",
        "DNS:www.example.com",
        RSA2048,
        403,
        "at least 3072 bits",
    ),
    (
        "other",
        "/CN=Jane Doe",
        "DNS:*.a.svc.example.internal,URI:spiffe://example.org/ns/x",
        P256,
        200,
        "",
    ),
    (
        "other",
        "/CN=Jane Doe",
        "email:ops@example.com",
        P256,
        200,
        "",
    ),
    (
        "other",
        "/CN=Jane Doe",
        "URI:spiffe://evil.org/x",
        P256,
        403,
        "issuance rule \"mesh\": URI:spiffe://evil.org/x",
    ),
    (
        "other",
        "/CN=www.example.com",
        "",
        P256,
        403,
        "DNS:www.example.com",
    ),
];

#[test]
fn issuance_rules_allow_and_deny_the_right_names() {
    let ws = Workspace::new();
    let identity = ws.create_identity("ca", "ec:p256", "Rules CA", None);
    let config = ws.write("rules.toml", RULES.as_bytes());
    let daemon = Daemon::spawn(serve_closed(
        &ws,
        &identity,
        &["--config", config.to_str().expect("utf8")],
    ))
    .expect("a configuration with rules starts without open_issuance");
    assert!(!daemon.log().contains("OPEN ISSUANCE"));
    let (_, health) = daemon.curl("/health", &[]);
    assert_eq!(json(&health)["open_issuance"], false, "{health}");
    let mut issued = 0u64;
    for (index, (client, subject, sans, key, status, fragment)) in CASES.iter().enumerate() {
        let extra: Vec<String> = if sans.is_empty() {
            Vec::new()
        } else {
            vec!["-addext".into(), format!("subjectAltName={sans}")]
        };
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let csr = ws.csr(&format!("case{index}"), key, subject, &extra);
        let (got, body) = daemon.put_file(&format!("/{client}"), &csr, &[]);
        assert_eq!(got, *status, "{client} {subject} {sans}: {body}");
        if *status == 200 {
            issued += 1;
            if *client == "web01" {
                let leaf = leaf_from_answer(&ws, &format!("case{index}"), &body);
                let dates = openssl_x509(&leaf, &["-noout", "-startdate", "-enddate"]);
                let answer = json(&body);
                let days = (time::OffsetDateTime::parse(
                    answer["not_after"].as_str().expect("not_after"),
                    &time::format_description::well_known::Rfc3339,
                )
                .expect("time")
                    - time::OffsetDateTime::parse(
                        answer["not_before"].as_str().expect("not_before"),
                        &time::format_description::well_known::Rfc3339,
                    )
                    .expect("time"))
                .whole_days();
                assert!(days <= 30, "max_validity 30d: {days} days ({dates})");
            }
        } else {
            assert_eq!(error_code(&body), "denied", "{body}");
            let message = json(&body)["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            assert!(
                message.contains(fragment),
                "{client} {sans}: {fragment:?} not in {message}"
            );
        }
    }
    daemon.stop();
    assert_eq!(
        stored_certificates(&ws.path("data")),
        issued,
        "refusals write nothing"
    );
}

#[test]
fn plugin_run_shows_the_rules_decision() {
    let ws = Workspace::new();
    let config = ws.write("rules.toml", RULES.as_bytes());
    // No identity: plugin run makes a throw-away CA.
    let plugin_run = |csr: &std::path::Path| {
        let output = csrgate()
            .args(["plugin", "run", "--config"])
            .arg(&config)
            .arg("--identity")
            .arg(ws.path("no-identity"))
            .args(["--client-hash", "web01"])
            .arg(csr)
            .output()
            .expect("run");
        let report = json(&text(&output.stdout));
        (output.status.code(), report, text(&output.stderr))
    };
    let evil = ws.csr(
        "evil",
        P256,
        "/CN=Jane Doe",
        &["-addext", "subjectAltName=DNS:evil.example.com"],
    );
    let (status, report, stderr) = plugin_run(&evil);
    assert_eq!(status, Some(65), "{stderr}");
    assert_eq!(report["issuance"]["decision"], "deny", "{report}");
    assert_eq!(report["issuance"]["rule"], "web");
    assert_eq!(report["denied_by"], "issuance:web");
    assert!(stderr.contains("throw-away CA"), "{stderr}");
    assert!(
        !ws.path("no-identity").exists(),
        "the throw-away CA is not kept"
    );

    let good = ws.csr("good", P256, "/CN=www.example.com", &[]);
    let (status, report, stderr) = plugin_run(&good);
    assert_eq!(status, Some(0), "{stderr}");
    assert_eq!(report["decision"], "allow", "{report}");
    assert_eq!(report["issuance"]["rule"], "web");
}
