//! End-to-end: a CA run by hand with OpenSSL is adopted as it is (issue 19, item 5, first part).
//! `serve` unlocks the CA key in each encrypted PEM form OpenSSL writes (traditional
//! `Proc-Type: 4,ENCRYPTED` RSA and EC keys, PKCS#8 with PBES2) next to `ca.cert.pem` or
//! `ca.crt.pem`, and what it issues verifies against that CA with `openssl verify`.

use std::path::Path;
use std::process::Command;

use crate::support::*;

/// `openssl ARGS` in `dir`, with the test passphrase in $PASS (`-passin env:PASS`).
fn openssl(args: &[&str], dir: &Path) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .env("PASS", PASSPHRASE)
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

/// The `openssl ca` configuration of a hand-run CA in `dir` (database, serial, crlnumber,
/// newcerts), as the OpenSSL Cookbook and most internal CAs set it up.
fn ca_config(dir: &Path) -> String {
    format!(
        "[ca]\ndefault_ca = CA_default\n\
         [CA_default]\ndir = {}\ndatabase = $dir/index.txt\nnew_certs_dir = $dir/newcerts\n\
         serial = $dir/serial\ncrlnumber = $dir/crlnumber\ncertificate = $dir/ca.cert.pem\n\
         private_key = $dir/ca.private_key.pem\ndefault_md = sha256\ndefault_days = 365\n\
         default_crl_days = 30\npolicy = policy_any\ncopy_extensions = copy\nunique_subject = no\n\
         [policy_any]\ncommonName = supplied\norganizationName = optional\n\
         [v3_intermediate]\nbasicConstraints = critical, CA:true, pathlen:0\n\
         keyUsage = critical, keyCertSign, cRLSign\nsubjectKeyIdentifier = hash\n\
         authorityKeyIdentifier = keyid\n\
         [v3_leaf]\nbasicConstraints = CA:false\nkeyUsage = critical, digitalSignature\n\
         extendedKeyUsage = serverAuth, clientAuth\nsubjectKeyIdentifier = hash\n\
         authorityKeyIdentifier = keyid\n",
        dir.display()
    )
}

/// `openssl ca -config DIR/openssl.cnf ARGS` with the passphrase in $PASS.
fn openssl_ca(dir: &Path, args: &[&str]) {
    let mut all = vec![
        "ca",
        "-batch",
        "-config",
        "openssl.cnf",
        "-passin",
        "env:PASS",
    ];
    all.extend_from_slice(args);
    let output = Command::new("openssl")
        .args(&all)
        .current_dir(dir)
        .env("PASS", PASSPHRASE)
        .output()
        .expect("openssl ca");
    assert!(
        output.status.success(),
        "openssl {all:?}: {}",
        text(&output.stderr)
    );
}

fn new_ca_dir(ws: &Workspace, name: &str) -> std::path::PathBuf {
    let dir = ws.path(name);
    std::fs::create_dir_all(dir.join("newcerts")).expect("mkdir");
    std::fs::write(dir.join("index.txt"), "").expect("index");
    std::fs::write(dir.join("serial"), "1000\n").expect("serial");
    std::fs::write(dir.join("crlnumber"), "1000\n").expect("crlnumber");
    std::fs::write(dir.join("openssl.cnf"), ca_config(&dir)).expect("cnf");
    dir
}

/// The whole hand-run workflow, generated now: a root and an intermediate made with `openssl
/// req`/`openssl ca` (the intermediate's key from `genrsa -aes256`), leaves issued by the
/// intermediate with `openssl ca`, one revoked with a reason, one expired. csrgate serves that
/// intermediate, imports its index, and its CRL and OCSP tell the earlier revocation; the CRL
/// Number continues from OpenSSL's; a second import changes nothing.
#[test]
fn a_hand_run_openssl_ca_is_adopted_with_its_history() {
    let ws = Workspace::new();
    let root = new_ca_dir(&ws, "root");
    openssl(
        &[
            "req",
            "-x509",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-keyout",
            "ca.private_key.pem",
            "-passout",
            "env:PASS",
            "-subj",
            "/CN=Hand Root",
            "-days",
            "3650",
            "-out",
            "ca.cert.pem",
        ],
        &root,
    );
    let inter = new_ca_dir(&ws, "inter");
    openssl(
        &[
            "genrsa",
            "-aes256",
            "-passout",
            "env:PASS",
            "-out",
            "ca.private_key.pem",
            "2048",
        ],
        &inter,
    );
    openssl(
        &[
            "req",
            "-new",
            "-key",
            "ca.private_key.pem",
            "-passin",
            "env:PASS",
            "-subj",
            "/CN=Hand Intermediate",
            "-out",
            "ca.csr.pem",
        ],
        &inter,
    );
    openssl_ca(
        &root,
        &[
            "-extensions",
            "v3_intermediate",
            "-in",
            &format!("{}/ca.csr.pem", inter.display()),
            "-out",
            &format!("{}/ca.cert.pem", inter.display()),
            "-notext",
        ],
    );
    let chain = [
        std::fs::read_to_string(inter.join("ca.cert.pem")).expect("inter"),
        std::fs::read_to_string(root.join("ca.cert.pem")).expect("root"),
    ]
    .concat();
    std::fs::write(inter.join("ca.chain.pem"), chain).expect("chain");

    let mut leaves = Vec::new();
    for (name, dates) in [
        ("kept", None),
        ("later", None),
        ("revoked", None),
        ("old", Some(("20200101000000Z", "20210101000000Z"))),
    ] {
        let csr = ws.csr(name, P256, &format!("/CN={name}.hand.example"), &[]);
        let leaf = ws.path(&format!("{name}.pem"));
        let mut args = vec![
            "-extensions".to_owned(),
            "v3_leaf".to_owned(),
            "-in".to_owned(),
            csr.display().to_string(),
            "-out".to_owned(),
            leaf.display().to_string(),
            "-notext".to_owned(),
        ];
        if let Some((start, end)) = dates {
            args.extend([
                "-startdate".into(),
                start.into(),
                "-enddate".into(),
                end.into(),
            ]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        openssl_ca(&inter, &args);
        leaves.push(leaf);
    }
    openssl_ca(
        &inter,
        &[
            "-revoke",
            leaves[2].to_str().expect("utf8"),
            "-crl_reason",
            "keyCompromise",
        ],
    );
    openssl_ca(&inter, &["-updatedb"]);
    openssl_ca(&inter, &["-gencrl", "-out", "crl.pem"]);
    let index = std::fs::read_to_string(inter.join("index.txt")).expect("index");
    assert!(
        index.starts_with("V\t") && index.contains("\nR\t") && index.contains("\nE\t"),
        "{index}"
    );
    let openssl_next = u64::from_str_radix(
        std::fs::read_to_string(inter.join("crlnumber"))
            .expect("crlnumber")
            .trim(),
        16,
    )
    .expect("hex");

    // Import, twice.
    let data = ws.path("data");
    let import = || {
        let output = csrgate()
            .args(["store", "import-openssl"])
            .args(store_args(&data))
            .arg("--identity")
            .arg(&inter)
            .arg("--index")
            .arg(inter.join("index.txt"))
            .arg("--certs")
            .arg(inter.join("newcerts"))
            .arg("--crlnumber")
            .arg(inter.join("crlnumber"))
            .output()
            .expect("import");
        assert!(output.status.success(), "{}", text(&output.stderr));
        text(&output.stdout)
    };
    let first = import();
    assert!(
        first.contains("imported 4 certificates (1 revoked, 1 expired); 0 were stored already; 0 stored as valid are now revoked"),
        "{first}"
    );
    let audit_after_first = audit_entries(&data);
    let second = import();
    assert!(
        second.contains("imported 0 certificates (0 revoked, 0 expired); 4 were stored already; 0 stored as valid are now revoked"),
        "{second}"
    );
    assert_eq!(
        audit_entries(&data),
        audit_after_first,
        "a second import writes nothing"
    );
    // Revoked with openssl ca after the import: the next import applies the revocation.
    openssl_ca(
        &inter,
        &[
            "-revoke",
            leaves[1].to_str().expect("utf8"),
            "-crl_reason",
            "superseded",
        ],
    );
    let third = import();
    assert!(
        third.contains("3 were stored already; 1 stored as valid are now revoked"),
        "{third}"
    );
    assert_ne!(
        audit_entries(&data),
        audit_after_first,
        "the revocation is audited"
    );

    // Serve the adopted intermediate: the CRL lists the earlier revocation under a number past
    // OpenSSL's, OCSP says revoked for it and good for the other, and new issuance works.
    let daemon = Daemon::start(&inter, &data, &[]);
    let (status, crl) = daemon.curl("/crl.pem", &[]);
    assert_eq!(status, 200);
    let crl_file = ws.write("csrgate-crl.pem", crl.as_bytes());
    let shown = openssl_show("crl", &crl_file, &["-text"]);
    let revoked_serial = openssl_x509(&leaves[2], &["-serial", "-noout"]);
    let revoked_serial = revoked_serial.trim().trim_start_matches("serial=");
    assert!(shown.contains(revoked_serial), "{shown}");
    assert!(shown.contains("Key Compromise"), "{shown}");
    let number = openssl_show("crl", &crl_file, &["-crlnumber"]);
    let number = u64::from_str_radix(number.trim_start_matches("crlNumber=0x"), 16)
        .unwrap_or_else(|_| panic!("CRL Number in {number:?}"));
    assert!(
        number >= openssl_next,
        "CRL Number {number} continues from {openssl_next}"
    );
    let ca = inter.join("ca.cert.pem");
    let root_ca = root.join("ca.cert.pem");
    for (leaf, expected) in [
        (&leaves[0], "good"),
        (&leaves[1], "revoked"),
        (&leaves[2], "revoked"),
    ] {
        let output = Command::new("openssl")
            .arg("ocsp")
            .arg("-issuer")
            .arg(&ca)
            .arg("-CAfile")
            .arg(&root_ca)
            .arg("-cert")
            .arg(leaf)
            .args(["-url", &format!("{}/ocsp", daemon.base_url)])
            .output()
            .expect("openssl ocsp");
        let answer = format!("{}{}", text(&output.stdout), text(&output.stderr));
        assert!(answer.contains("Response verify OK"), "{answer}");
        assert!(
            answer.contains(&format!("{}: {expected}", leaf.display())),
            "{answer}"
        );
    }
    let csr = ws.csr("new", P256, "/CN=new.hand.example", &[]);
    let (status, body) = daemon.put_file("/adopted", &csr, &[]);
    assert_eq!(status, 200, "{body}");
    let leaf = leaf_from_answer(&ws, "new", &body);
    let verified = openssl_verify(&root_ca, Some(&ca), &leaf);
    assert!(verified.status.success(), "{}", text(&verified.stdout));
    daemon.stop();
}

/// The audit entries of a stopped daemon's store, as `csrgate store verify-audit` counts them.
fn audit_entries(data: &Path) -> String {
    let output = csrgate()
        .args(["store", "verify-audit"])
        .args(store_args(data))
        .output()
        .expect("verify-audit");
    assert!(output.status.success(), "{}", text(&output.stderr));
    text(&output.stdout)
}
