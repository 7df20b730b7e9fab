//! End-to-end: revocation, the CRL and the audit chain, checked with openssl's own CRL and chain
//! verification. Admin endpoints need a bearer token; public ones do not.

mod support;

use std::process::Command;

use support::*;

const TOKEN: &str = "0123456789abcdef-operator-token";

fn crl_number(crl_pem: &std::path::Path) -> u64 {
    let out = Command::new("openssl")
        .args(["crl", "-noout", "-crlnumber", "-in"])
        .arg(crl_pem)
        .output()
        .expect("openssl crl");
    let text = text(&out.stdout);
    let hex = text
        .trim()
        .trim_start_matches("crlNumber=")
        .trim_start_matches("0x");
    u64::from_str_radix(hex, 16).unwrap_or_else(|_| panic!("crlNumber in {text:?}"))
}

fn fetch_crl(ws: &Workspace, daemon: &Daemon, name: &str) -> std::path::PathBuf {
    let (status, body) = daemon.curl("/crl.pem", &[]);
    assert_eq!(status, 200, "{body}");
    ws.write(name, body.as_bytes())
}

fn issue(ws: &Workspace, daemon: &Daemon, name: &str) -> (String, std::path::PathBuf) {
    let csr = ws.csr(name, P256, &format!("/CN={name}.internal"), &[]);
    let (status, body) = daemon.put_file("/client1", &csr, &[]);
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("json");
    let pem = ws.write(
        &format!("{name}.pem"),
        json["signed_x509_pem"].as_str().expect("pem").as_bytes(),
    );
    (json["serial"].as_str().expect("serial").to_owned(), pem)
}

fn admin(
    daemon: &Daemon,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    let mut args: Vec<String> = vec!["-X".into(), method.into()];
    if let Some(token) = token {
        args.push("-H".into());
        args.push(format!("Authorization: Bearer {token}"));
    }
    if let Some(body) = body {
        args.extend([
            "-H".into(),
            "Content-Type: application/json".into(),
            "--data".into(),
            body.into(),
        ]);
    }
    daemon.curl(path, &args)
}

#[test]
fn revoke_publishes_a_crl_that_openssl_enforces() {
    let ws = Workspace::new();
    let identity = ws.create_identity("ca", "ec:p256", "Lifecycle CA", None);
    let ca = identity.join("ca.cert.pem");
    let tokens = ws.write(
        "admin-tokens",
        format!("# name token\nops {TOKEN}\n").as_bytes(),
    );
    let config = ws.write(
        "csrgate.toml",
        format!("admin_tokens_file = \"{}\"\n", tokens.display()).as_bytes(),
    );
    let data = ws.path("data");
    let daemon = Daemon::start(
        &identity,
        &data,
        &["--config", config.to_str().expect("utf8")],
    );

    let (serial_a, pem_a) = issue(&ws, &daemon, "a");
    let (serial_b, pem_b) = issue(&ws, &daemon, "b");

    let first = fetch_crl(&ws, &daemon, "crl0.pem");
    let check = Command::new("openssl")
        .args(["crl", "-noout", "-CAfile"])
        .arg(&ca)
        .arg("-in")
        .arg(&first)
        .output()
        .expect("openssl crl");
    assert!(
        check.status.success() && text(&check.stderr).contains("verify OK"),
        "{}",
        text(&check.stderr)
    );
    let n0 = crl_number(&first);

    // Authentication: none → 401, wrong → 403, right → 200.
    let path = format!("/certificates/{serial_a}");
    assert_eq!(admin(&daemon, "GET", &path, None, None).0, 401);
    let (status, body) = admin(&daemon, "GET", &path, Some("wrong-token-wrong-token"), None);
    assert_eq!((status, error_code(&body).as_str()), (403, "forbidden"));
    let (status, body) = admin(&daemon, "GET", &path, Some(TOKEN), None);
    assert_eq!(status, 200, "{body}");
    let shown: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(shown["status"], "valid");
    assert_eq!(shown["client_hash"], "client1");
    // Public endpoints need no token.
    assert_eq!(daemon.curl("/crl", &[]).0, 200);

    // Revoke A.
    let revoke = format!("/certificates/{serial_a}/revoke");
    let (status, body) = admin(
        &daemon,
        "POST",
        &revoke,
        Some(TOKEN),
        Some(r#"{"reason":"keyCompromise","invalidity_date":"2026-01-02T03:04:05Z"}"#),
    );
    assert_eq!(status, 200, "{body}");
    let revoked: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(revoked["status"], "revoked");
    assert_eq!(revoked["revocation"]["actor"], "ops");
    let (status, body) = admin(
        &daemon,
        "POST",
        &revoke,
        Some(TOKEN),
        Some(r#"{"reason":"superseded"}"#),
    );
    assert_eq!(
        (status, error_code(&body).as_str()),
        (409, "already_revoked")
    );
    let (status, body) = admin(
        &daemon,
        "POST",
        &format!("/certificates/{serial_b}/revoke"),
        Some(TOKEN),
        Some(r#"{"reason":"removeFromCRL"}"#),
    );
    assert_eq!(
        (status, error_code(&body).as_str()),
        (400, "invalid_request"),
        "{body}"
    );

    let after = fetch_crl(&ws, &daemon, "crl1.pem");
    let n1 = crl_number(&after);
    assert!(n1 > n0, "CRL number must grow: {n0} -> {n1}");
    let dump = Command::new("openssl")
        .args(["crl", "-noout", "-text", "-in"])
        .arg(&after)
        .output()
        .expect("crl");
    let dump = text(&dump.stdout);
    assert!(dump.contains(&serial_a.to_uppercase()), "{dump}");
    assert!(dump.contains("Key Compromise"), "{dump}");
    assert!(dump.contains("Invalidity Date"), "{dump}");
    assert!(
        dump.contains("X509v3 CRL Number") && dump.contains("X509v3 Authority Key Identifier"),
        "{dump}"
    );

    let with_crl = |leaf: &std::path::Path| {
        Command::new("openssl")
            .args(["verify", "-crl_check", "-CAfile"])
            .arg(&ca)
            .arg("-CRLfile")
            .arg(&after)
            .arg(leaf)
            .output()
            .expect("openssl verify")
    };
    let rejected = with_crl(&pem_a);
    assert!(!rejected.status.success());
    assert!(
        text(&rejected.stdout).contains("revoked") || text(&rejected.stderr).contains("revoked")
    );
    assert!(with_crl(&pem_b).status.success(), "B is not revoked");

    // Conditional GET.
    let etag = {
        let out = Command::new("curl")
            .args(["-sS", "-D", "-", "-o", "/dev/null"])
            .arg(format!("{}/crl", daemon.base_url))
            .output()
            .expect("curl");
        text(&out.stdout)
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .starts_with("etag:")
                    .then(|| l[5..].trim().to_owned())
            })
            .expect("ETag header")
    };
    let (status, _) = daemon.curl("/crl", &["-H".into(), format!("If-None-Match: {etag}")]);
    assert_eq!(status, 304);

    // Delete A: gone from view, still in the CRL (revoke B forces a new CRL).
    assert_eq!(admin(&daemon, "DELETE", &path, Some(TOKEN), None).0, 200);
    let (status, _) = admin(
        &daemon,
        "POST",
        &format!("/certificates/{serial_b}/revoke"),
        Some(TOKEN),
        Some(r#"{"reason":"superseded"}"#),
    );
    assert_eq!(status, 200);
    let latest = fetch_crl(&ws, &daemon, "crl2.pem");
    let n2 = crl_number(&latest);
    assert!(n2 > n1);
    let dump = text(
        &Command::new("openssl")
            .args(["crl", "-noout", "-text", "-in"])
            .arg(&latest)
            .output()
            .expect("crl")
            .stdout,
    );
    assert!(
        dump.contains(&serial_a.to_uppercase()),
        "deleted but revoked stays listed:\n{dump}"
    );
    assert!(
        dump.contains(&serial_b.to_uppercase()) && dump.contains("Superseded"),
        "{dump}"
    );

    assert!(daemon.stop().success());
    let verify = csrgate()
        .args(["audit", "verify", "--data"])
        .arg(&data)
        .output()
        .expect("audit");
    assert!(verify.status.success(), "{}", text(&verify.stderr));
    assert!(
        text(&verify.stdout).contains("intact: 5 entries"),
        "{}",
        text(&verify.stdout)
    );

    // CRL numbers keep growing across restarts.
    let daemon = Daemon::start(
        &identity,
        &data,
        &["--config", config.to_str().expect("utf8")],
    );
    let restarted = fetch_crl(&ws, &daemon, "crl3.pem");
    assert!(crl_number(&restarted) > n2);
}
