//! End-to-end: the CSR zoo. Requests made at test time by every CSR-producing tool `tests/run`
//! installs on a fresh Debian machine (`openssl req`, GnuTLS `certtool`, NSS `certutil`, Java
//! `keytool`, Go's crypto/x509, Python `cryptography`, rcgen), each sent to the real daemon. A
//! request is either issued, and then the certificate passes `openssl verify`, Go's
//! `x509.Verify` and `cryptography`'s verifier (both stricter than openssl), names the
//! request's subject (same RDN structure and values), its SANs and its key; or it is refused
//! with a 400 naming the attribute to change. A missing tool fails the test: run `tests/run`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

/// What a request must get.
enum Want {
    /// 200; the certificate's SANs in `openssl x509 -ext subjectAltName` form, and the DNS name
    /// the strict verifiers check.
    Issued(String, String),
    /// 400 `invalid_csr` whose message contains this.
    Refused(&'static str),
}

/// One request of the zoo.
struct Specimen {
    tool: &'static str,
    csr: PathBuf,
    want: Want,
}

fn zoo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/zoo")
}

/// Runs a tool, failing with what to do when it is not installed.
fn run(command: &mut Command) -> std::process::Output {
    let program = command.get_program().to_string_lossy().into_owned();
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}; tests/run installs the zoo's tools"));
    assert!(
        output.status.success(),
        "{program} failed: {}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    output
}

/// `openssl req` in the shapes people use: every key type, with and without SANs, `-text`,
/// RSASSA-PSS, a multi-valued RDN, and the string types other string masks write (TeletexString,
/// BMPString).
fn openssl_specimens(ws: &Workspace) -> Vec<Specimen> {
    let san = |name: &str| format!("subjectAltName=DNS:{name}");
    let mut out = vec![
        Specimen {
            tool: "openssl req rsa:2048",
            csr: ws.csr(
                "o-rsa",
                RSA2048,
                "/C=DE/O=Zoo/CN=rsa.example.com",
                &["-addext", &san("rsa.example.com")],
            ),
            want: issued_for("rsa.example.com"),
        },
        Specimen {
            tool: "openssl req P-256",
            csr: ws.csr(
                "o-p256",
                P256,
                "/CN=p256.example.com",
                &["-addext", "subjectAltName=DNS:p256.example.com,IP:10.0.0.7"],
            ),
            want: Want::Issued(
                "DNS:p256.example.com, IP Address:10.0.0.7".into(),
                "p256.example.com".into(),
            ),
        },
        Specimen {
            tool: "openssl req P-384 without SANs",
            csr: ws.csr("o-p384", P384, "/O=Zoo/CN=p384.example.com", &[]),
            want: issued_for("p384.example.com"),
        },
        Specimen {
            tool: "openssl req Ed25519",
            csr: ws.csr(
                "o-ed25519",
                ED25519,
                "/CN=ed.example.com",
                &["-addext", &san("ed.example.com")],
            ),
            want: issued_for("ed.example.com"),
        },
        Specimen {
            tool: "openssl req -text",
            csr: ws.csr(
                "o-text",
                P256,
                "/CN=text.example.com",
                &["-text", "-addext", &san("text.example.com")],
            ),
            want: issued_for("text.example.com"),
        },
        Specimen {
            tool: "openssl req RSASSA-PSS",
            csr: ws.csr(
                "o-pss",
                RSA2048,
                "/CN=pss.example.com",
                &[
                    "-sha256",
                    "-sigopt",
                    "rsa_padding_mode:pss",
                    "-addext",
                    &san("pss.example.com"),
                ],
            ),
            want: issued_for("pss.example.com"),
        },
        Specimen {
            tool: "openssl req -multivalue-rdn",
            csr: ws.csr(
                "o-multi",
                P256,
                "/O=Zoo/OU=routers+CN=multi.example.com",
                &["-multivalue-rdn"],
            ),
            want: issued_for("multi.example.com"),
        },
    ];
    // string_mask decides which string type openssl writes: "default" picks TeletexString for
    // Latin-1 text, "pkix" BMPString for text beyond PrintableString.
    for (mask, name) in [("default", "t61"), ("pkix", "bmp")] {
        let config = ws.write(
            &format!("{name}.cnf"),
            format!("[req]\ndistinguished_name = dn\nstring_mask = {mask}\nutf8 = yes\n[dn]\n")
                .as_bytes(),
        );
        let host = format!("{name}.example.com");
        let csr = ws.csr(
            &format!("o-{name}"),
            P256,
            "/O=Zoë Café/CN=Zoë",
            &[
                "-config",
                config.to_str().expect("utf8"),
                "-addext",
                &san(&host),
            ],
        );
        let shown = text(&run(Command::new("openssl").args(["asn1parse", "-in"]).arg(&csr)).stdout);
        let tag = if name == "t61" {
            "T61STRING"
        } else {
            "BMPSTRING"
        };
        assert!(shown.contains(tag), "{mask} wrote no {tag}: {shown}");
        out.push(Specimen {
            tool: if name == "t61" {
                "openssl req TeletexString subject"
            } else {
                "openssl req BMPString subject"
            },
            csr,
            want: issued_for(&host),
        });
    }
    out
}

/// GnuTLS `certtool --generate-request` from a template.
fn certtool_specimen(ws: &Workspace) -> Specimen {
    let key = ws.path("gnutls.key");
    run(Command::new("certtool")
        .args(["--generate-privkey", "--key-type", "ecdsa", "--outfile"])
        .arg(&key));
    let template = ws.write(
        "gnutls.cfg",
        b"organization = \"Zoo\"\ncountry = \"DE\"\ncn = \"gnutls.example.com\"\n\
          dns_name = \"gnutls.example.com\"\nip_address = \"192.0.2.1\"\n",
    );
    let csr = ws.path("gnutls.csr");
    run(Command::new("certtool")
        .arg("--generate-request")
        .arg("--load-privkey")
        .arg(&key)
        .arg("--template")
        .arg(&template)
        .arg("--outfile")
        .arg(&csr));
    Specimen {
        tool: "GnuTLS certtool",
        csr,
        want: Want::Issued(
            "DNS:gnutls.example.com, IP Address:192.0.2.1".into(),
            "gnutls.example.com".into(),
        ),
    }
}

/// NSS `certutil -R -a`: text before the block and the `NEW CERTIFICATE REQUEST` label.
fn certutil_specimen(ws: &Workspace) -> Specimen {
    let db = ws.path("nssdb");
    std::fs::create_dir_all(&db).expect("nss dir");
    let database = format!("sql:{}", db.display());
    run(Command::new("certutil").args(["-N", "-d", &database, "--empty-password"]));
    let noise = ws.write("noise", &[0x5a; 64]);
    let csr = ws.path("nss.csr");
    run(Command::new("certutil")
        .args(["-R", "-d", &database, "-s", "CN=nss.example.com,O=Zoo"])
        .args(["-k", "ec", "-q", "nistp256", "-8", "nss.example.com", "-a"])
        .arg("-z")
        .arg(&noise)
        .arg("-o")
        .arg(&csr));
    let written = std::fs::read_to_string(&csr).expect("nss csr");
    assert!(
        written.contains("-----BEGIN NEW CERTIFICATE REQUEST-----")
            && !written.starts_with("-----"),
        "certutil's shape changed: {written}"
    );
    Specimen {
        tool: "NSS certutil",
        csr,
        want: issued_for("nss.example.com"),
    }
}

/// Java `keytool -certreq`: with the `Unknown` values its interactive prompt fills in (refused:
/// `C=Unknown` is no country), and with a real subject.
fn keytool_specimens(ws: &Workspace) -> Vec<Specimen> {
    let keystore = ws.path("keystore.p12");
    let mut out = Vec::new();
    for (alias, dname, want) in [
        (
            "prompted",
            "CN=java.example.com, OU=Unknown, O=Unknown, L=Unknown, ST=Unknown, C=Unknown",
            Want::Refused("C is 7 characters long; RFC 5280 allows exactly 2"),
        ),
        (
            "chosen",
            "CN=java.example.com, O=Zoo, C=DE",
            issued_for("java.example.com"),
        ),
    ] {
        run(Command::new("keytool")
            .args(["-genkeypair", "-storetype", "PKCS12", "-keystore"])
            .arg(&keystore)
            .args(["-storepass", "changeit", "-alias", alias])
            .args(["-keyalg", "EC", "-groupname", "secp256r1", "-dname", dname]));
        let csr = ws.path(&format!("java-{alias}.csr"));
        run(Command::new("keytool")
            .args(["-certreq", "-keystore"])
            .arg(&keystore)
            .args(["-storepass", "changeit", "-alias", alias])
            .args(["-ext", "SAN=dns:java.example.com", "-file"])
            .arg(&csr));
        out.push(Specimen {
            tool: if alias == "prompted" {
                "keytool, prompted defaults"
            } else {
                "keytool"
            },
            csr,
            want,
        });
    }
    out
}

/// Go's crypto/x509 and Python's `cryptography`, each for every key type they make.
fn program_specimens(ws: &Workspace, go: &Path) -> Vec<Specimen> {
    let mut out = Vec::new();
    for kind in ["p256", "rsa", "ed25519"] {
        let (go_name, py_name): (&'static str, &'static str) = match kind {
            "p256" => ("go-p256.example.com", "py-p256.example.com"),
            "rsa" => ("go-rsa.example.com", "py-rsa.example.com"),
            _ => ("go-ed25519.example.com", "py-ed25519.example.com"),
        };
        let csr = ws.path(&format!("go-{kind}.csr"));
        run(Command::new(go).args(["gen", kind, go_name]).arg(&csr));
        out.push(Specimen {
            tool: "Go crypto/x509",
            csr,
            want: issued_for(go_name),
        });
        let csr = ws.path(&format!("py-{kind}.csr"));
        run(Command::new(python())
            .arg(zoo_dir().join("zoo.py"))
            .args(["gen", kind, py_name])
            .arg(&csr));
        out.push(Specimen {
            tool: "Python cryptography",
            csr,
            want: issued_for(py_name),
        });
    }
    out
}

/// A request issued with the one DNS SAN `name`, which the strict verifiers check.
fn issued_for(name: &str) -> Want {
    Want::Issued(format!("DNS:{name}"), name.to_owned())
}

/// rcgen, in process.
fn rcgen_specimen(ws: &Workspace) -> Specimen {
    let key = rcgen::KeyPair::generate().expect("rcgen key");
    let mut params =
        rcgen::CertificateParams::new(vec!["rcgen.example.com".to_owned()]).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "rcgen.example.com");
    let pem = params
        .serialize_request(&key)
        .expect("rcgen csr")
        .pem()
        .expect("pem");
    Specimen {
        tool: "rcgen",
        csr: ws.write("rcgen.csr", pem.as_bytes()),
        want: issued_for("rcgen.example.com"),
    }
}

#[test]
fn every_tool_s_requests_are_issued_faithfully_or_refused_with_a_reason() {
    let ws = Workspace::new();
    let identity = ws.create_identity("ca", "ec:p256", "Zoo Root", None);
    let root = identity.join("ca.cert.pem");
    let go = ws.path("zoo-go");
    run(Command::new("go")
        .arg("build")
        .arg("-o")
        .arg(&go)
        .arg(zoo_dir().join("zoo.go")));

    let mut specimens = openssl_specimens(&ws);
    specimens.push(certtool_specimen(&ws));
    specimens.push(certutil_specimen(&ws));
    specimens.extend(keytool_specimens(&ws));
    specimens.extend(program_specimens(&ws, &go));
    specimens.push(rcgen_specimen(&ws));

    let data = ws.path("data");
    let daemon = Daemon::start(&identity, &data, &[]);
    let mut issued = 0;
    for (i, specimen) in specimens.iter().enumerate() {
        let tool = specimen.tool;
        let (status, body) = daemon.put_file("/zoo", &specimen.csr, &[]);
        match &specimen.want {
            Want::Refused(message) => {
                assert_eq!(status, 400, "{tool}: {body}");
                assert_eq!(error_code(&body), "invalid_csr", "{tool}: {body}");
                assert!(body.contains(*message), "{tool}: {body} lacks {message:?}");
            }
            Want::Issued(sans, dns) => {
                let (sans, dns) = (sans.as_str(), dns.as_str());
                assert_eq!(status, 200, "{tool}: {body}");
                issued += 1;
                let leaf = leaf_from_answer(&ws, &format!("leaf-{i}.pem"), &body);
                assert_issued_as_requested(tool, &root, &specimen.csr, &leaf, sans);
                run(Command::new(&go)
                    .arg("verify")
                    .arg(&root)
                    .arg(&leaf)
                    .arg(dns));
                run(Command::new(python())
                    .arg(zoo_dir().join("zoo.py"))
                    .arg("verify")
                    .arg(&root)
                    .arg(&leaf)
                    .arg(dns));
            }
        }
    }
    daemon.stop();
    assert_eq!(
        stored_certificates(&data),
        issued,
        "a refusal wrote a record"
    );
}
