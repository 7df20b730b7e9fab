//! End-to-end: the real daemon signs CSRs of every accepted key type made by `openssl req`, sent
//! with `curl`, and every certificate passes `openssl verify` and the structural checks of the
//! issue (v3, SANs, CA:FALSE, serial ≤ 20 octets, issuer = CA subject).

use crate::support::*;

#[test]
fn each_key_type_is_signed_and_verifies() {
    let ws = Workspace::new();
    let identity = ws.create_identity("ca", "ec:p256", "E2E Root", None);
    let daemon = Daemon::start(&identity, &ws.path("data"), &[]);
    let ca = identity.join("ca.cert.pem");
    let ca_subject = openssl_x509(&ca, &["-subject"]);

    for (name, key) in [
        ("rsa", RSA2048),
        ("p256", P256),
        ("p384", P384),
        ("ed25519", ED25519),
    ] {
        let csr = ws.csr(
            name,
            key,
            &format!("/CN={name}.internal/O=Clients"),
            &[
                "-addext",
                &format!("subjectAltName=DNS:{name}.internal,IP:10.0.0.7,email:ops@example.org"),
            ],
        );
        // curl's default Content-Type for --data-binary is x-www-form-urlencoded: accepted anyway.
        let (status, body) = daemon.put_file("/abc123", &csr, &[]);
        assert_eq!(status, 200, "{name}: {body}");
        let json: serde_json::Value = serde_json::from_str(&body).expect("json");
        for field in [
            "signed_x509_pem",
            "chain_pem",
            "serial",
            "not_before",
            "not_after",
        ] {
            assert!(json[field].is_string(), "{name}: missing {field} in {body}");
        }
        let leaf = ws.write(
            &format!("{name}.pem"),
            json["signed_x509_pem"].as_str().expect("pem").as_bytes(),
        );
        let verify = openssl_verify(&ca, None, &leaf);
        assert!(
            verify.status.success(),
            "{name}: openssl verify: {}{}",
            text(&verify.stdout),
            text(&verify.stderr)
        );

        let dump = openssl_x509(&leaf, &["-text"]);
        assert!(dump.contains("Version: 3 (0x2)"), "{name}: not v3\n{dump}");
        assert!(dump.contains("CA:FALSE"), "{name}: no CA:FALSE\n{dump}");
        assert!(
            dump.contains("DNS:") && dump.contains(&format!("{name}.internal")),
            "{name}: SAN lost\n{dump}"
        );
        assert!(
            dump.contains("IP Address:10.0.0.7"),
            "{name}: IP SAN lost\n{dump}"
        );
        assert!(
            dump.contains("email:ops@example.org"),
            "{name}: email SAN lost\n{dump}"
        );
        assert!(
            dump.contains("Subject Key Identifier") && dump.contains("Authority Key Identifier")
        );
        assert!(
            !dump.to_lowercase().contains("sha1with"),
            "{name}: SHA-1 signature\n{dump}"
        );
        let issuer = openssl_x509(&leaf, &["-issuer"]);
        assert_eq!(
            issuer.trim_start_matches("issuer="),
            ca_subject.trim_start_matches("subject=")
        );

        let serial_hex = json["serial"].as_str().expect("serial");
        assert!(
            serial_hex.len() <= 40,
            "{name}: serial {serial_hex} longer than 20 octets"
        );
        let openssl_serial = openssl_x509(&leaf, &["-serial"]);
        assert_eq!(
            openssl_serial
                .trim()
                .trim_start_matches("serial=")
                .trim_start_matches('0')
                .to_lowercase(),
            serial_hex.trim_start_matches('0')
        );
    }
    assert!(!daemon.log().contains("panicked"));
}

#[test]
fn intermediate_chain_verifies_to_the_root() {
    let ws = Workspace::new();
    let root = ws.create_identity("root", "ec:p384", "E2E Root", None);
    let intermediate = ws.create_identity("inter", "rsa:2048", "E2E Intermediate", Some("root"));
    assert!(intermediate.join("ca.chain.pem").exists());
    let daemon = Daemon::start(&intermediate, &ws.path("data"), &[]);

    let csr = ws.csr(
        "leaf",
        P256,
        "/CN=leaf.internal",
        &["-addext", "subjectAltName=DNS:leaf.internal"],
    );
    let (status, body) = daemon.put_file("/client42", &csr, &[]);
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("json");
    let leaf = ws.write(
        "leaf.pem",
        json["signed_x509_pem"].as_str().expect("pem").as_bytes(),
    );
    let chain = ws.write(
        "chain.pem",
        json["chain_pem"].as_str().expect("chain").as_bytes(),
    );
    let root_cert = root.join("ca.cert.pem");
    let verify = openssl_verify(&root_cert, Some(&chain), &leaf);
    assert!(
        verify.status.success(),
        "chain: {}{}",
        text(&verify.stdout),
        text(&verify.stderr)
    );
    // Without the intermediate the leaf must not verify against the root alone.
    assert!(!openssl_verify(&root_cert, None, &leaf).status.success());

    // GET /ca.pem serves the chain: intermediate then root.
    let (status, ca_pem) = daemon.curl("/ca.pem", &[]);
    assert_eq!(status, 200);
    assert_eq!(ca_pem.matches("BEGIN CERTIFICATE").count(), 2);
    let served = ws.write("served.pem", ca_pem.as_bytes());
    let verify = openssl_verify(&root_cert, Some(&served), &leaf);
    assert!(verify.status.success());
}

#[test]
fn alias_path_der_body_and_pem_chain_answer() {
    let ws = Workspace::new();
    let identity = ws.create_identity("ca", "ed25519", "E2E Ed25519 CA", None);
    let daemon = Daemon::start(&identity, &ws.path("data"), &[]);
    let ca = identity.join("ca.cert.pem");

    // ssl_api's path, DER body, and asking for the PEM chain instead of JSON.
    let csr = ws.csr("der", P256, "/CN=der.internal", &["-outform", "DER"]);
    let (status, body) = daemon.put_file(
        "/api/csr/Legacy01",
        &csr,
        &[
            "Accept: application/pem-certificate-chain",
            "Content-Type: application/pkcs10",
        ],
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("-----BEGIN CERTIFICATE-----"), "{body}");
    assert_eq!(body.matches("BEGIN CERTIFICATE").count(), 2, "leaf + CA");
    let leaf = ws.write("leaf.pem", body.as_bytes());
    assert!(openssl_verify(&ca, None, &leaf).status.success());
    assert!(openssl_x509(&leaf, &["-text"]).contains("ED25519"));

    // A CSR that asks for CA:TRUE still gets CA:FALSE.
    let csr = ws.csr(
        "wants-ca",
        P256,
        "/CN=sneaky",
        &["-addext", "basicConstraints=critical,CA:TRUE"],
    );
    let (status, body) = daemon.put_file("/abc", &csr, &[]);
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("json");
    let leaf = ws.write(
        "sneaky.pem",
        json["signed_x509_pem"].as_str().expect("pem").as_bytes(),
    );
    let dump = openssl_x509(&leaf, &["-text"]);
    assert!(
        dump.contains("CA:FALSE") && !dump.contains("CA:TRUE"),
        "{dump}"
    );

    let (status, health) = daemon.curl("/health", &[]);
    assert_eq!((status, health.contains("ok")), (200, true));
}
