//! End-to-end: bad input gets the right status and stable code, and writes nothing. The daemon is
//! stopped afterwards and its store counted offline: only the one good request left a record.

use std::process::Command;

use crate::support::*;

#[test]
fn bad_requests_are_refused_and_write_nothing() {
    let ws = Workspace::new();
    let identity = ws.create_identity("ca", "ec:p256", "E2E Root", None);
    let data = ws.path("data");
    let daemon = Daemon::start(&identity, &data, &[]);

    let good = ws.csr("good", P256, "/CN=good", &[]);
    let weak = ws.csr("weak", RSA1024, "/CN=weak", &[]);
    let der = ws.csr("tamper", P256, "/CN=tamper-me", &["-outform", "DER"]);
    let mut bytes = std::fs::read(&der).expect("der");
    let at = bytes
        .windows(9)
        .position(|w| w == b"tamper-me")
        .expect("CN in DER");
    bytes[at] = b'T';
    let tampered_der = ws.write("tampered.der", &bytes);
    let pem = Command::new("openssl")
        .args(["req", "-inform", "DER", "-outform", "PEM", "-in"])
        .arg(&tampered_der)
        .output()
        .expect("openssl");
    assert!(pem.status.success(), "{}", text(&pem.stderr));
    let tampered_pem = ws.write("tampered.pem", &pem.stdout);
    let garbage = ws.write("garbage", b"this is not a certificate request");
    let empty = ws.write("empty", b"");
    let huge = ws.write("huge", &vec![b'A'; 70 * 1024]);
    let good_pem = std::fs::read_to_string(&good).expect("pem");
    let wrong_label = ws.write(
        "label.pem",
        good_pem
            .replace("CERTIFICATE REQUEST", "CERTIFICATE")
            .as_bytes(),
    );

    let cases: Vec<(&str, &std::path::Path, u16, &str)> = vec![
        ("/abc123", &garbage, 400, "invalid_csr"),
        ("/abc123", &empty, 400, "invalid_csr"),
        ("/abc123", &tampered_pem, 400, "invalid_csr"),
        ("/abc123", &tampered_der, 400, "invalid_csr"),
        ("/abc123", &wrong_label, 400, "invalid_csr"),
        ("/abc123", &weak, 400, "weak_key"),
        ("/abc123", &huge, 413, "body_too_large"),
        ("/a/b", &good, 404, "not_found"),
        ("/..", &good, 404, "not_found"),
        ("/ab-c", &good, 404, "not_found"),
        ("/%41%42", &good, 404, "not_found"),
        ("/api/csr/a.b", &good, 404, "not_found"),
    ];
    let long_hash = format!("/{}", "a".repeat(129));
    let mut all: Vec<(String, &std::path::Path, u16, &str)> = cases
        .into_iter()
        .map(|(p, f, s, c)| (p.to_owned(), f, s, c))
        .collect();
    all.push((long_hash, &good, 404, "not_found"));

    for (path, file, want_status, want_code) in &all {
        let (status, body) = daemon.put_file(path, file, &[]);
        assert_eq!(
            status,
            *want_status,
            "PUT {path} with {}: {body}",
            file.display()
        );
        assert_eq!(error_code(&body), *want_code, "PUT {path}: {body}");
    }
    // A client hash of exactly 128 characters is fine.
    let (status, body) = daemon.put_file(&format!("/{}", "b".repeat(128)), &good, &[]);
    assert_eq!(status, 200, "{body}");

    let log = daemon.log();
    assert!(!log.contains("panicked"), "{log}");
    assert!(!log.contains("BEGIN"), "CSR bytes leaked into the log");
    assert!(
        daemon.stop().success(),
        "SIGTERM should end the daemon cleanly"
    );
    assert_eq!(
        stored_certificates(&data),
        1,
        "only the good request may leave a record"
    );
}
