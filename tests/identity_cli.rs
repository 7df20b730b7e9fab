//! End-to-end: `csrgate identity create|show` as an operator uses them.

use std::os::unix::fs::PermissionsExt as _;

use crate::support::*;

#[test]
fn create_writes_the_files_and_refuses_to_overwrite() {
    let ws = Workspace::new();
    let dir = ws.create_identity("ca", "rsa:3072", "Example CA", None);
    for name in [
        "ca.cert.pem",
        "ca.csr.pem",
        "ca.private_key.pem",
        "ca.public_key.pem",
    ] {
        assert!(dir.join(name).exists(), "{name} missing");
    }
    let key = dir.join("ca.private_key.pem");
    assert_eq!(
        std::fs::metadata(&key).expect("meta").permissions().mode() & 0o777,
        0o600
    );
    assert!(
        std::fs::read_to_string(&key)
            .expect("key")
            .starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    );
    // openssl agrees that the key is AES-256 encrypted PKCS#8 under our passphrase.
    let check = std::process::Command::new("openssl")
        .args([
            "pkey",
            "-noout",
            "-passin",
            &format!("pass:{PASSPHRASE}"),
            "-in",
        ])
        .arg(&key)
        .output()
        .expect("openssl pkey");
    assert!(check.status.success(), "{}", text(&check.stderr));
    let asn1 = std::process::Command::new("openssl")
        .args(["asn1parse", "-in"])
        .arg(&key)
        .output()
        .expect("asn1parse");
    assert!(
        text(&asn1.stdout).contains("aes-256-cbc"),
        "{}",
        text(&asn1.stdout)
    );

    let dump = openssl_x509(&dir.join("ca.cert.pem"), &["-text"]);
    assert!(dump.contains("CA:TRUE"), "{dump}");
    assert!(dump.contains("Certificate Sign, CRL Sign"), "{dump}");
    assert!(dump.contains("Subject Key Identifier"));
    assert!(dump.contains("Version: 3"));

    let again = csrgate()
        .args(["identity", "create", "--dir"])
        .arg(&dir)
        .args(["-f", "CN", "Other"])
        .env("CA_PASSPHRASE", PASSPHRASE)
        .output()
        .expect("run");
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("refusing to overwrite"),
        "{}",
        text(&again.stderr)
    );

    let show = csrgate()
        .args(["identity", "show", "--dir"])
        .arg(&dir)
        .output()
        .expect("run");
    assert!(show.status.success(), "{}", text(&show.stderr));
    let shown = text(&show.stdout);
    for expected in [
        "CN=Example CA",
        "RSA 3072 bits",
        "sha256:",
        "not after:",
        "key encrypted: yes",
    ] {
        assert!(shown.contains(expected), "{expected} missing from\n{shown}");
    }
}

#[test]
fn create_validates_its_arguments() {
    let ws = Workspace::new();
    let cases: [&[&str]; 4] = [
        &["-f", "XX", "nope"],
        &["-f", "CN", "ok", "--key", "rsa:1024"],
        &["-f", "CN", "ok", "-v", "10 years"],
        &["-f", "C", "USA"],
    ];
    for args in cases {
        let output = csrgate()
            .args(["identity", "create", "--dir"])
            .arg(ws.path("x"))
            .args(args)
            .env("CA_PASSPHRASE", PASSPHRASE)
            .output()
            .expect("run");
        assert!(!output.status.success(), "{args:?} was accepted");
        assert!(
            !ws.path("x").join("ca.private_key.pem").exists(),
            "{args:?} left a key behind"
        );
    }
}

#[test]
fn intermediate_is_signed_by_its_issuer_and_never_outlives_it() {
    let ws = Workspace::new();
    let root = ws.create_identity("root", "ec:p256", "Root", None);
    let inter = ws.path("inter");
    let output = csrgate()
        .args(["identity", "create", "--dir"])
        .arg(&inter)
        .args([
            "-f",
            "CN",
            "Inter",
            "-v",
            "50y",
            "--path-len",
            "0",
            "--issuer",
        ])
        .arg(&root)
        .env("CA_PASSPHRASE", "inter secret")
        .env("CA_ISSUER_PASSPHRASE", PASSPHRASE)
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", text(&output.stderr));
    let verify = openssl_verify(&root.join("ca.cert.pem"), None, &inter.join("ca.cert.pem"));
    assert!(verify.status.success(), "{}", text(&verify.stdout));
    let dump = openssl_x509(&inter.join("ca.cert.pem"), &["-text"]);
    assert!(
        dump.contains("pathlen:0") && dump.contains("Authority Key Identifier"),
        "{dump}"
    );
    let root_end = openssl_x509(&root.join("ca.cert.pem"), &["-enddate"]);
    let inter_end = openssl_x509(&inter.join("ca.cert.pem"), &["-enddate"]);
    assert_eq!(
        root_end, inter_end,
        "a 50y intermediate under a 5y root ends with the root"
    );
}
