//! End-to-end: `csrgate inspect` on what csrgate and openssl write (certificate, chain, request,
//! CRL, PKCS#12), checked against openssl's own reading of the same files, and with `--url` the
//! status a running csrgate's OCSP responder gives.

use std::process::Command;

use crate::support::*;

const TOKEN: &str = "0123456789abcdef-inspect-ops";

fn inspect(args: &[&str]) -> std::process::Output {
    csrgate()
        .arg("inspect")
        .args(args)
        .output()
        .expect("csrgate inspect")
}

fn inspect_json(args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let output = inspect(&all);
    assert!(output.status.success(), "{}", text(&output.stderr));
    serde_json::from_slice::<Vec<serde_json::Value>>(&output.stdout).expect("json array")
}

#[test]
fn inspect_reads_every_kind_of_file_and_asks_ocsp() {
    let ws = Workspace::new();
    let identity = ws.create_identity("ca", "ec:p256", "Inspect CA", None);
    let daemon = start_with_admin(&ws, &identity, TOKEN, "");
    let csr = ws.csr(
        "app",
        P256,
        "/CN=app.internal",
        &["-addext", "subjectAltName=DNS:app.internal,IP:10.0.0.7"],
    );
    let (status, body) = daemon.put_file(
        "/inspect",
        &csr,
        &["Accept: application/pem-certificate-chain"],
    );
    assert_eq!(status, 200, "{body}");
    let chain = ws.write("chain.pem", body.as_bytes());
    let leaf = ws.path("leaf.pem");
    let out = Command::new("openssl")
        .args(["x509", "-in"])
        .arg(&chain)
        .arg("-out")
        .arg(&leaf)
        .output()
        .expect("x509");
    assert!(out.status.success());
    let (revoked_serial, revoked) = issue_json(&ws, &daemon, "inspect", "gone");
    let (status, body) = daemon.revoke(&revoked_serial, "keyCompromise", TOKEN);
    assert_eq!(status, 200, "{body}");

    // A certificate: the fields openssl reads, the same.
    let parts = inspect_json(&[leaf.to_str().expect("utf8")]);
    assert_eq!(parts.len(), 1);
    let part = &parts[0];
    assert_eq!(part["kind"], "certificate");
    let openssl_serial = openssl_x509(&leaf, &["-serial"]);
    assert_eq!(
        part["serial"].as_str().expect("serial").to_uppercase(),
        openssl_serial.trim().trim_start_matches("serial=")
    );
    let fingerprint = openssl_x509(&leaf, &["-fingerprint", "-sha256"]);
    assert!(
        fingerprint.contains(part["sha256"].as_str().expect("sha256")),
        "{fingerprint} vs {part}"
    );
    assert_eq!(part["subject"], "CN=app.internal");
    assert_eq!(part["ca"], "false");
    assert_eq!(
        part["subject_alt_names"],
        serde_json::json!(["DNS:app.internal", "IP:10.0.0.7"])
    );
    assert!(
        part["key"].as_str().expect("key").contains("P-256"),
        "{part}"
    );
    let extensions = part["extensions"].to_string();
    assert!(
        extensions.contains("basicConstraints, critical: CA:FALSE"),
        "{extensions}"
    );
    assert!(
        extensions.contains("serverAuth, clientAuth"),
        "{extensions}"
    );

    // A chain, asked about over OCSP: the leaf is good (its issuer is in the file), the CA is
    // self-signed; the revoked one says so.
    let parts = inspect_json(&[chain.to_str().expect("utf8"), "--url", &daemon.base_url]);
    assert_eq!(parts.len(), 2);
    assert!(
        parts[0]["status"]
            .as_str()
            .expect("status")
            .starts_with("good"),
        "{:?}",
        parts[0]
    );
    assert!(
        parts[1]["status"]
            .as_str()
            .expect("status")
            .contains("self-signed")
    );
    let output = inspect(&[revoked.to_str().expect("utf8"), "--url", &daemon.base_url]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let shown = text(&output.stdout);
    assert!(
        shown.contains("status (OCSP)") && shown.contains("revoked (keyCompromise)"),
        "{shown}"
    );

    // A request, a CRL.
    let parts = inspect_json(&[csr.to_str().expect("utf8")]);
    assert_eq!(parts[0]["kind"], "certificate request");
    assert_eq!(parts[0]["self_signature"], "valid");
    assert_eq!(
        parts[0]["subject_alt_names"],
        serde_json::json!(["DNS:app.internal", "IP:10.0.0.7"])
    );
    let (_, crl) = daemon.curl("/crl.pem", &[]);
    let crl = ws.write("crl.pem", crl.as_bytes());
    let parts = inspect_json(&[crl.to_str().expect("utf8")]);
    assert_eq!(parts[0]["kind"], "crl");
    assert_eq!(parts[0]["entries"], "1");
    assert!(
        parts[0]["revoked"][0]
            .as_str()
            .expect("entry")
            .starts_with(&revoked_serial),
        "{:?}",
        parts[0]
    );

    // A PKCS#12 bundle, opened with its password.
    let password = ws.write("password", b"a bundle password, long enough\n");
    let bundle = ws.path("bundle.p12");
    let fetched = Command::new("curl")
        .args(["-sS", "--fail", "-o"])
        .arg(&bundle)
        .args(["-H", &format!("Authorization: Bearer {TOKEN}"), "-H", "Content-Type: application/json", "--data"])
        .arg(r#"{"client_hash":"inspect","subject_alt_names":["DNS:p12.internal"],"password":"a bundle password, long enough"}"#)
        .arg(format!("{}/certificates/generate", daemon.base_url))
        .output()
        .expect("curl");
    assert!(fetched.status.success(), "{}", text(&fetched.stderr));
    let parts = inspect_json(&[
        bundle.to_str().expect("utf8"),
        "--password-file",
        password.to_str().expect("utf8"),
    ]);
    let kinds: Vec<&str> = parts
        .iter()
        .map(|p| p["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(kinds, ["private key", "certificate", "certificate"]);
    assert_eq!(
        parts[1]["subject_alt_names"],
        serde_json::json!(["DNS:p12.internal"])
    );
    let wrong = ws.write("wrong", b"not the password at all\n");
    let output = inspect(&[
        bundle.to_str().expect("utf8"),
        "--password-file",
        wrong.to_str().expect("utf8"),
    ]);
    assert_eq!(output.status.code(), Some(65));
    assert!(
        text(&output.stderr).contains("password does not open"),
        "{}",
        text(&output.stderr)
    );

    // Not a PKI file.
    let junk = ws.write("junk.bin", b"just some bytes");
    let output = inspect(&[junk.to_str().expect("utf8")]);
    assert_eq!(output.status.code(), Some(65));
    assert!(
        text(&output.stderr).contains("not a certificate, certificate request, CRL"),
        "{}",
        text(&output.stderr)
    );
}
