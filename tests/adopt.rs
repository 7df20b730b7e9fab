//! End-to-end: a CA run by hand with OpenSSL is adopted as it is (issue 19, item 5, first part).
//! `serve` unlocks the CA key in each encrypted PEM form OpenSSL writes (traditional
//! `Proc-Type: 4,ENCRYPTED` RSA and EC keys, PKCS#8 with PBES2) next to `ca.cert.pem` or
//! `ca.crt.pem`, and what it issues verifies against that CA with `openssl verify`.

use std::path::Path;
use std::process::Command;

use crate::support::*;

fn openssl(args: &[&str], dir: &Path) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        text(&output.stderr)
    );
}

/// (name, the commands that write `key.pem` encrypted with the test passphrase, certificate
/// file name)
const FORMS: &[(&str, &[&[&str]], &str)] = &[
    (
        "rsa-traditional",
        &[&[
            "genrsa",
            "-traditional",
            "-aes256",
            "-passout",
            "env:PASS",
            "-out",
            "key.pem",
            "2048",
        ]],
        "ca.cert.pem",
    ),
    (
        "ec-traditional",
        &[
            &[
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
                "plain.pem",
            ],
            &[
                "ec",
                "-in",
                "plain.pem",
                "-aes256",
                "-passout",
                "env:PASS",
                "-out",
                "key.pem",
            ],
        ],
        "ca.crt.pem",
    ),
    (
        "pkcs8-pbes2",
        &[
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-384",
                "-out",
                "plain.pem",
            ],
            &[
                "pkcs8",
                "-topk8",
                "-v2",
                "aes-256-cbc",
                "-in",
                "plain.pem",
                "-passout",
                "env:PASS",
                "-out",
                "key.pem",
            ],
        ],
        "ca.crt.pem",
    ),
];

#[test]
fn an_openssl_made_ca_is_served_in_every_encrypted_key_form() {
    let ws = Workspace::new();
    for (name, commands, certificate) in FORMS {
        let dir = ws.path(name);
        std::fs::create_dir_all(&dir).expect("mkdir");
        for command in *commands {
            let output = Command::new("openssl")
                .args(*command)
                .current_dir(&dir)
                .env("PASS", PASSPHRASE)
                .output()
                .expect("run openssl");
            assert!(output.status.success(), "{name}: {}", text(&output.stderr));
        }
        let _ = std::fs::remove_file(dir.join("plain.pem"));
        let key = std::fs::read_to_string(dir.join("key.pem")).expect("key");
        assert!(key.contains("ENCRYPTED"), "{name}: the key is encrypted");
        openssl(
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                "key.pem",
                "-passin",
                &format!("pass:{PASSPHRASE}"),
                "-subj",
                &format!("/CN=Hand-run {name} CA"),
                "-days",
                "30",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
                "-out",
                certificate,
            ],
            &dir,
        );
        std::fs::rename(dir.join("key.pem"), dir.join("ca.private_key.pem")).expect("rename");

        let daemon = Daemon::start(&dir, &ws.path(&format!("data-{name}")), &[]);
        let csr = ws.csr(&format!("leaf-{name}"), P256, "/CN=adopted.example", &[]);
        let (status, body) = daemon.put_file("/adopted", &csr, &[]);
        assert_eq!(status, 200, "{name}: {body}");
        let leaf = leaf_from_answer(&ws, &format!("leaf-{name}"), &body);
        let verified = openssl_verify(&dir.join(certificate), None, &leaf);
        assert!(
            verified.status.success(),
            "{name}: {}",
            text(&verified.stdout)
        );
        daemon.stop();
    }
}
