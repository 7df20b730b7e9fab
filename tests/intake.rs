//! End-to-end: requests shaped like the ones real tools and devices send
//! (`tests/fixtures/intake`, each reproduced from a public report against another CA) get the
//! answer a careful CA gives: issued with the subject and SANs asked for, or a 400 naming what to
//! change. No requester mistake is a 5xx, and a refusal writes nothing.

use std::path::{Path, PathBuf};

use crate::support::*;

const TOKEN: &str = "0123456789abcdef-intake-token";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/intake")
        .join(name)
}

/// What a request must get.
#[derive(Debug)]
enum Outcome {
    /// 200, with these SANs (`openssl x509 -ext subjectAltName` form, in order).
    Issued(&'static str),
    /// 400 with this code and a message containing every one of these texts.
    Refused(&'static str, &'static [&'static str]),
}

/// PUTs `file`, checks the outcome, and for an issued certificate checks it as a relying party
/// and the requester would (`assert_issued_as_requested`).
fn check(daemon: &Daemon, ws: &Workspace, root: &Path, file: &Path, want: &Outcome) -> bool {
    let (status, body) = daemon.put_file("/intake", file, &[]);
    let name = file.display();
    match want {
        Outcome::Issued(sans) => {
            assert_eq!(status, 200, "{name}: {body}");
            let leaf = leaf_from_answer(ws, "leaf.pem", &body);
            assert_issued_as_requested(&name.to_string(), root, file, &leaf, sans);
            true
        }
        Outcome::Refused(code, texts) => {
            assert_eq!(status, 400, "{name}: {body}");
            assert_eq!(error_code(&body), *code, "{name}: {body}");
            for t in *texts {
                assert!(body.contains(t), "{name}: {body} lacks {t:?}");
            }
            false
        }
    }
}

/// Every case of `tests/fixtures/intake/README.md`'s table.
#[test]
fn real_world_requests_get_the_expected_answers() {
    let ws = Workspace::new();
    let identity = ws.create_identity("ca", "ec:p256", "Intake Root", None);
    let root = identity.join("ca.cert.pem");
    let data = ws.path("data");
    let daemon = Daemon::start(&identity, &data, &[]);
    let cases = [
        (
            "long-cn.csr",
            Outcome::Refused(
                "invalid_csr",
                &["CN is 68 characters long", "allows at most 64"],
            ),
        ),
        // The last RDN holds two values; the certificate keeps that structure.
        (
            "multivalued-rdn.csr",
            Outcome::Issued("DNS:router1.example.com"),
        ),
        (
            "md5-signed.csr",
            Outcome::Refused("invalid_csr", &["md5WithRSAEncryption"]),
        ),
        (
            "text-before-pem.csr",
            Outcome::Issued("DNS:app.example.com"),
        ),
        (
            "wildcard-only-san.csr",
            Outcome::Refused("invalid_csr", &[r#"DNS SAN \"*\""#, "left-most label"]),
        ),
        (
            "ms-legacy-extension-request.csr",
            Outcome::Issued("DNS:app.example.com, DNS:alt.example.com"),
        ),
    ];
    let mut issued = 0;
    for (file, want) in &cases {
        issued += u64::from(check(&daemon, &ws, &root, &fixture(file), want));
    }
    daemon.stop();
    assert_eq!(
        stored_certificates(&data),
        issued,
        "a refusal wrote a record"
    );
}

/// RFC 6125/2818: names live in the SAN. A request without SANs whose CN is a DNS name or an IP
/// address gets it as its SAN; a CN that is not meant as a host name (a person) is issued as
/// asked, without SAN; one meant as a host name that no SAN could carry is refused.
#[test]
fn a_common_name_becomes_the_san_only_when_it_is_a_name() {
    let ws = Workspace::new();
    let identity = ws.create_identity("ca", "ec:p256", "Intake Root", None);
    let root = identity.join("ca.cert.pem");
    let daemon = Daemon::start(&identity, &ws.path("data"), &[]);
    let cases: [(&str, &str, Outcome); 7] = [
        (
            "localhost",
            "/CN=localhost",
            Outcome::Issued("DNS:localhost"),
        ),
        ("ip", "/CN=10.0.0.7", Outcome::Issued("IP Address:10.0.0.7")),
        ("person", "/CN=Jane Doe/O=Example", Outcome::Issued("")),
        (
            "wildcard",
            "/CN=*.example.com",
            Outcome::Issued("DNS:*.example.com"),
        ),
        // A CN meant as a host name follows the SAN's rules, or a client still reading the
        // CN would match what no SAN could name.
        (
            "one-label-wildcard",
            "/CN=*.internal",
            Outcome::Refused(
                "invalid_csr",
                &["*.internal", "allow_single_label_wildcards"],
            ),
        ),
        (
            "partial-wildcard",
            "/CN=a*.example.com",
            Outcome::Refused("invalid_csr", &["a*.example.com", "left-most label"]),
        ),
        (
            "san-wins",
            "/CN=a.example.com",
            Outcome::Issued("DNS:b.example.com"),
        ),
    ];
    for (name, subject, want) in &cases {
        let extra: &[&str] = if *name == "san-wins" {
            &["-addext", "subjectAltName=DNS:b.example.com"]
        } else {
            &[]
        };
        let csr = ws.csr(name, P256, subject, extra);
        check(&daemon, &ws, &root, &csr, want);
    }
}

/// SHA-1 self-signatures and one-label wildcards are refused by default and accepted when the
/// operator says so; MD5 never.
#[test]
fn legacy_requests_need_the_operator() {
    let ws = Workspace::new();
    let identity = ws.create_identity("ca", "ec:p256", "Intake Root", None);
    let root = identity.join("ca.cert.pem");
    let sha1 = ws.csr("sha1", RSA2048, "/CN=legacy.example.com", &["-sha1"]);
    let wildcard = ws.csr(
        "wildcard",
        P256,
        "/CN=svc",
        &["-addext", "subjectAltName=DNS:*.internal"],
    );
    let md5 = fixture("md5-signed.csr");

    let strict = Daemon::start(&identity, &ws.path("strict"), &[]);
    let refused = [
        (
            &sha1,
            Outcome::Refused(
                "invalid_csr",
                &["sha1WithRSAEncryption", "signing.allow_sha1_requests"],
            ),
        ),
        (
            &wildcard,
            Outcome::Refused(
                "invalid_csr",
                &["*.internal", "signing.allow_single_label_wildcards"],
            ),
        ),
        (
            &md5,
            Outcome::Refused("invalid_csr", &["md5WithRSAEncryption"]),
        ),
    ];
    for (file, want) in &refused {
        check(&strict, &ws, &root, file, want);
    }
    strict.stop();

    let config = ws.write(
        "legacy.toml",
        b"[signing]\nallow_sha1_requests = true\nallow_single_label_wildcards = true\n",
    );
    let legacy = Daemon::start(
        &identity,
        &ws.path("legacy"),
        &["--config", config.to_str().expect("utf8")],
    );
    let accepted = [
        (&sha1, Outcome::Issued("DNS:legacy.example.com")),
        (&wildcard, Outcome::Issued("DNS:*.internal")),
        (
            &md5,
            Outcome::Refused("invalid_csr", &["md5WithRSAEncryption"]),
        ),
    ];
    for (file, want) in &accepted {
        check(&legacy, &ws, &root, file, want);
    }
    // The certificate itself is never signed with SHA-1, whatever the request was.
    let (_, body) = legacy.put_file("/intake", &sha1, &[]);
    let leaf = leaf_from_answer(&ws, "sha1-leaf.pem", &body);
    let shown = openssl_x509(&leaf, &["-text"]);
    assert!(shown.contains("ecdsa-with-SHA256"), "{shown}");
}

/// A renewal re-issues a certificate's names, so they are held to the signing policy of today:
/// a one-label wildcard issued while the operator allowed it cannot be renewed once they stop
/// allowing it (a 400 that says to rotate), and nothing is written.
#[test]
fn renewals_are_held_to_the_current_policy() {
    let ws = Workspace::new();
    let identity = ws.create_identity("ca", "ec:p256", "Intake Root", None);
    let data = ws.path("data");
    let tokens = ws.write("admin-tokens", format!("ops {TOKEN}\n").as_bytes());
    let base = format!("admin_tokens_file = \"{}\"\n", tokens.display());
    let lenient = ws.write(
        "lenient.toml",
        format!("{base}[signing]\nallow_single_label_wildcards = true\n").as_bytes(),
    );
    let strict = ws.write("strict.toml", base.as_bytes());
    let csr = ws.csr(
        "wildcard",
        P256,
        "/CN=svc",
        &["-addext", "subjectAltName=DNS:*.internal"],
    );
    let renew = |daemon: &Daemon, serial: &str| {
        daemon.curl(
            &format!("/certificates/{serial}/renew"),
            &[
                "-X".into(),
                "POST".into(),
                "-H".into(),
                format!("Authorization: Bearer {TOKEN}"),
            ],
        )
    };
    let daemon = Daemon::start(
        &identity,
        &data,
        &["--config", lenient.to_str().expect("utf8")],
    );
    let (status, body) = daemon.put_file("/intake", &csr, &[]);
    assert_eq!(status, 200, "{body}");
    let value: serde_json::Value = serde_json::from_str(&body).expect("json");
    let serial = value["serial"].as_str().expect("serial").to_owned();
    let (status, body) = renew(&daemon, &serial);
    assert_eq!(status, 200, "allowed, a renewal works: {body}");
    let renewed: serde_json::Value = serde_json::from_str(&body).expect("json");
    let renewed = renewed["serial"].as_str().expect("serial").to_owned();
    daemon.stop();

    let daemon = Daemon::start(
        &identity,
        &data,
        &["--config", strict.to_str().expect("utf8")],
    );
    let (status, body) = renew(&daemon, &renewed);
    assert_eq!(status, 400, "{body}");
    assert_eq!(error_code(&body), "invalid_request", "{body}");
    assert!(body.contains("rotate it"), "{body}");
    daemon.stop();
    assert_eq!(
        stored_certificates(&data),
        2,
        "the refused renewal wrote a record"
    );
}

/// RFC 5280 5.3.2: the invalidity date is when the key was (or is suspected to have been)
/// compromised; one in the future is a 400 and revokes nothing.
#[test]
fn a_future_invalidity_date_is_refused() {
    let ws = Workspace::new();
    let identity = ws.create_identity("ca", "ec:p256", "Intake Root", None);
    let tokens = ws.write("admin-tokens", format!("ops {TOKEN}\n").as_bytes());
    let config = ws.write(
        "admin.toml",
        format!("admin_tokens_file = \"{}\"\n", tokens.display()).as_bytes(),
    );
    let daemon = Daemon::start(
        &identity,
        &ws.path("data"),
        &["--config", config.to_str().expect("utf8")],
    );
    let csr = ws.csr("leaf", P256, "/CN=leaf.example.com", &[]);
    let (status, body) = daemon.put_file("/intake", &csr, &[]);
    assert_eq!(status, 200, "{body}");
    let value: serde_json::Value = serde_json::from_str(&body).expect("json");
    let serial = value["serial"].as_str().expect("serial").to_owned();
    let revoke = |invalidity: &str| {
        daemon.curl(
            &format!("/certificates/{serial}/revoke"),
            &[
                "-X".into(),
                "POST".into(),
                "-H".into(),
                format!("Authorization: Bearer {TOKEN}"),
                "--data".into(),
                format!(r#"{{"reason":"keyCompromise","invalidity_date":"{invalidity}"}}"#),
            ],
        )
    };
    let next_year = time::OffsetDateTime::now_utc() + time::Duration::days(365);
    let future = next_year
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    let (status, body) = revoke(&future);
    assert_eq!(status, 400, "{body}");
    assert_eq!(error_code(&body), "invalid_request");
    assert!(body.contains("in the future"), "{body}");
    // Nothing was revoked: a past date still works, once.
    let (status, body) = revoke("2020-01-01T00:00:00Z");
    assert_eq!(status, 200, "{body}");
}

/// RFC 9110 10.1.1: a client that asks `Expect: 100-continue` for a body over the limit gets
/// its 413 at once, before it sends the body; one within the limit gets `100 Continue`, sends
/// its request and gets the certificate.
#[test]
fn expect_continue_is_answered_before_the_body() {
    use std::io::{Read as _, Write as _};
    let ws = Workspace::new();
    let identity = ws.create_identity("ca", "ec:p256", "Intake Root", None);
    let daemon = Daemon::start(&identity, &ws.path("data"), &[]);
    let csr = std::fs::read(ws.csr("leaf", P256, "/CN=continue.example.com", &[])).expect("csr");

    // Reads until `complete` says the answer so far is whole, or the 10 s deadline passes.
    let read_until = |stream: &mut std::net::TcpStream, complete: &dyn Fn(&str) -> bool| {
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .expect("timeout");
        let mut answer = Vec::new();
        let mut buffer = [0u8; 4096];
        while !complete(&String::from_utf8_lossy(&answer)) {
            match stream.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            }
        }
        String::from_utf8_lossy(&answer).into_owned()
    };

    let mut stream = std::net::TcpStream::connect(daemon.address()).expect("connect");
    write!(
        stream,
        "PUT /intake HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\nExpect: 100-continue\r\n\r\n"
    )
    .expect("head");
    // No body is sent: the answer must come anyway, and be the 413.
    let answer = read_until(&mut stream, &|a| a.contains("}}"));
    assert!(
        answer.starts_with("HTTP/1.1 413"),
        "the oversized request was not refused before its body: {answer:?}"
    );
    assert!(answer.contains("body_too_large"), "{answer}");

    let mut stream = std::net::TcpStream::connect(daemon.address()).expect("connect");
    write!(
        stream,
        "PUT /intake HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        csr.len()
    )
    .expect("head");
    let interim = read_until(&mut stream, &|a| a.contains("\r\n\r\n"));
    assert!(interim.starts_with("HTTP/1.1 100 Continue"), "{interim:?}");
    stream.write_all(&csr).expect("body");
    let answer = read_until(&mut stream, &|a| a.contains("\"not_after\""));
    assert!(answer.contains("HTTP/1.1 200"), "{answer}");
}
