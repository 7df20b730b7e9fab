//! End-to-end: revocation for every level of the chain. A root revokes an intermediate offline
//! (`csrgate identity revoke`) and signs its own CRL (`csrgate identity crl`); a csrgate
//! intermediate serves that CRL beside its own (`/crl/root.pem`, `/crl-chain.pem`); and nginx,
//! as an mTLS server with `ssl_crl` on the chain file, lets a valid client certificate in (200)
//! and refuses a revoked one (400), while with csrgate's CRL alone it refuses every client.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

const TOKEN: &str = "0123456789abcdef-chain-operator";

fn root_crl(root: &Path) -> String {
    let output = csrgate()
        .args(["identity", "crl", "--dir"])
        .arg(root)
        .args(["--validity", "30d"])
        .env("CA_PASSPHRASE", PASSPHRASE)
        .output()
        .expect("identity crl");
    assert!(output.status.success(), "{}", text(&output.stderr));
    text(&output.stdout)
}

fn crl_text(file: &Path) -> String {
    openssl_show("crl", file, &["-text"])
}

/// nginx in the foreground on a free loopback port, as an mTLS server.
struct Nginx {
    child: Child,
    port: u16,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_nginx(
    ws: &Workspace,
    name: &str,
    server_chain: &Path,
    server_key: &Path,
    client_cas: &Path,
    crl: &Path,
) -> Nginx {
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let prefix = ws.path(name);
    std::fs::create_dir_all(prefix.join("logs")).expect("mkdir");
    let running_as_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| text(&out.stdout).trim() == "0");
    let config = format!(
        "{user}worker_processes 1;\npid {prefix}/nginx.pid;\nerror_log {prefix}/logs/error.log info;\n\
         events {{}}\nhttp {{\n  access_log off;\n  client_body_temp_path {prefix}/body;\n\
         proxy_temp_path {prefix}/proxy;\n  fastcgi_temp_path {prefix}/fastcgi;\n\
         uwsgi_temp_path {prefix}/uwsgi;\n  scgi_temp_path {prefix}/scgi;\n\
         server {{\n    listen 127.0.0.1:{port} ssl;\n    ssl_certificate {chain};\n\
         ssl_certificate_key {key};\n    ssl_client_certificate {cas};\n    ssl_verify_client on;\n\
         ssl_verify_depth 2;\n    ssl_crl {crl};\n\
         location / {{ return 200 \"hello $ssl_client_s_dn\\n\"; }}\n  }}\n}}\n",
        user = if running_as_root { "user root;\n" } else { "" },
        prefix = prefix.display(),
        chain = server_chain.display(),
        key = server_key.display(),
        cas = client_cas.display(),
        crl = crl.display(),
    );
    let conf = prefix.join("nginx.conf");
    std::fs::write(&conf, config).expect("conf");
    let child = Command::new("nginx")
        .arg("-p")
        .arg(&prefix)
        .arg("-c")
        .arg(&conf)
        .args(["-g", "daemon off;"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("nginx (Debian package nginx; tests/run installs it)");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "nginx did not listen: {}",
            std::fs::read_to_string(prefix.join("logs/error.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Nginx { child, port }
}

/// `curl` with a client certificate: the HTTP status.
fn client_status(nginx: &Nginx, root: &Path, cert: &Path, key: &Path) -> u16 {
    let output = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "20",
            "--cacert",
        ])
        .arg(root)
        .arg("--cert")
        .arg(cert)
        .arg("--key")
        .arg(key)
        .arg(format!("https://127.0.0.1:{}/", nginx.port))
        .output()
        .expect("curl");
    text(&output.stdout).trim().parse().unwrap_or(0)
}

#[test]
fn nginx_with_both_levels_of_crl_admits_valid_and_refuses_revoked_clients() {
    let ws = Workspace::new();
    let root = ws.create_identity("root", "ec:p256", "Chain Root", None);
    let inter = ws.create_identity("inter", "ec:p256", "Chain Intermediate", Some("root"));
    let first = root_crl(&root);
    assert!(first.contains("CRL Number 1, 0 entries"), "{first}");

    let root_crl_line = format!("root_crl = \"{}\"\n", root.join("ca.crl.pem").display());
    let daemon = start_with_admin(&ws, &inter, TOKEN, &root_crl_line);

    // The server's certificate and two clients', all from the intermediate.
    let server = ws.csr(
        "server",
        P256,
        "/CN=localhost",
        &["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
    );
    let (status, body) = daemon.put_file(
        "/web",
        &server,
        &["Accept: application/pem-certificate-chain"],
    );
    assert_eq!(status, 200, "{body}");
    let server_chain = ws.write("server-chain.pem", body.as_bytes());
    let (_, good) = issue_json(&ws, &daemon, "clients", "good");
    let (bad_serial, bad) = issue_json(&ws, &daemon, "clients", "bad");
    let (status, body) = daemon.revoke(&bad_serial, "keyCompromise", TOKEN);
    assert_eq!(status, 200, "{body}");

    // /crl/root.pem is the root's file; /crl-chain.pem is csrgate's CRL then the root's.
    let (status, served_root) = daemon.curl("/crl/root.pem", &[]);
    assert_eq!(status, 200);
    assert_eq!(
        served_root,
        std::fs::read_to_string(root.join("ca.crl.pem")).expect("root crl")
    );
    let (status, chain_crls) = daemon.curl("/crl-chain.pem", &[]);
    assert_eq!(status, 200);
    assert_eq!(
        chain_crls.matches("-----BEGIN X509 CRL-----").count(),
        2,
        "{chain_crls}"
    );
    let crl_chain = ws.write("crl-chain.pem", chain_crls.as_bytes());
    let (_, own) = daemon.curl("/crl.pem", &[]);
    let own_only = ws.write("crl-own.pem", own.as_bytes());
    let client_cas = ws.write(
        "client-cas.pem",
        [
            std::fs::read_to_string(root.join("ca.cert.pem")).expect("root"),
            std::fs::read_to_string(inter.join("ca.cert.pem")).expect("inter"),
        ]
        .concat()
        .as_bytes(),
    );
    let root_cert = root.join("ca.cert.pem");

    let nginx = start_nginx(
        &ws,
        "nginx-both",
        &server_chain,
        &ws.path("server.key"),
        &client_cas,
        &crl_chain,
    );
    assert_eq!(
        client_status(&nginx, &root_cert, &good, &ws.path("good.key")),
        200,
        "a valid client is let in"
    );
    assert_eq!(
        client_status(&nginx, &root_cert, &bad, &ws.path("bad.key")),
        400,
        "a revoked client is refused"
    );
    drop(nginx);

    // With csrgate's CRL alone nginx has no CRL for the intermediate's level: nobody gets in.
    let nginx = start_nginx(
        &ws,
        "nginx-own",
        &server_chain,
        &ws.path("server.key"),
        &client_cas,
        &own_only,
    );
    assert_eq!(
        client_status(&nginx, &root_cert, &good, &ws.path("good.key")),
        400
    );
    drop(nginx);

    // The root revokes another intermediate offline; its next CRL lists it under a new number,
    // and the running daemon serves the new file.
    let other = ws.create_identity("other", "ec:p256", "Retired Intermediate", Some("root"));
    let output = csrgate()
        .args(["identity", "revoke", "--dir"])
        .arg(&root)
        .arg("--cert")
        .arg(other.join("ca.cert.pem"))
        .args(["--reason", "cACompromise"])
        .output()
        .expect("identity revoke");
    assert!(output.status.success(), "{}", text(&output.stderr));
    let again = csrgate()
        .args(["identity", "revoke", "--dir"])
        .arg(&root)
        .arg("--cert")
        .arg(other.join("ca.cert.pem"))
        .output()
        .expect("identity revoke");
    assert!(!again.status.success(), "a second revocation is refused");
    let foreign = csrgate()
        .args(["identity", "revoke", "--dir"])
        .arg(&root)
        .arg("--cert")
        .arg(&good)
        .output()
        .expect("identity revoke");
    assert!(
        !foreign.status.success(),
        "the root did not issue a leaf of the intermediate"
    );
    assert!(
        text(&foreign.stderr).contains("not issued by"),
        "{}",
        text(&foreign.stderr)
    );
    let second = root_crl(&root);
    assert!(second.contains("CRL Number 2, 1 entries"), "{second}");
    let listed = crl_text(&root.join("ca.crl.pem"));
    let other_serial = openssl_x509(&other.join("ca.cert.pem"), &["-serial"]);
    let other_serial = other_serial.trim().trim_start_matches("serial=");
    assert!(listed.contains(other_serial), "{listed}");
    assert!(listed.contains("CA Compromise"), "{listed}");
    let (status, served_root) = daemon.curl("/crl/root.pem", &[]);
    assert_eq!(status, 200);
    assert_eq!(
        served_root,
        std::fs::read_to_string(root.join("ca.crl.pem")).expect("root crl")
    );
}

#[test]
fn root_crl_must_be_the_issuers() {
    let ws = Workspace::new();
    let root = ws.create_identity("root", "ec:p256", "Chain Root", None);
    let inter = ws.create_identity("inter", "ec:p256", "Chain Intermediate", Some("root"));
    let stranger = ws.create_identity("stranger", "ec:p256", "Stranger Root", None);
    root_crl(&stranger);
    root_crl(&root);
    // The root's very name, another key: only the signature tells them apart.
    let imposter = ws.create_identity("imposter", "ec:p256", "Chain Root", None);
    root_crl(&imposter);
    let two_blocks = ws.write(
        "two.pem",
        [
            std::fs::read_to_string(root.join("ca.crl.pem")).expect("crl"),
            std::fs::read_to_string(root.join("ca.crl.pem")).expect("crl"),
        ]
        .concat()
        .as_bytes(),
    );
    for (identity, crl, says) in [
        (
            &inter,
            stranger.join("ca.crl.pem"),
            "not a CRL signed by this CA's issuer",
        ),
        (
            &inter,
            imposter.join("ca.crl.pem"),
            "not a CRL signed by this CA's issuer",
        ),
        (&inter, two_blocks, "exactly one PEM block"),
        (&inter, ws.path("missing.pem"), "missing.pem"),
        (&root, root.join("ca.crl.pem"), "this CA is a root"),
    ] {
        let config = ws.write(
            "csrgate.toml",
            format!("root_crl = \"{}\"\n", crl.display()).as_bytes(),
        );
        let failure = Daemon::try_start(
            identity,
            &ws.path("data"),
            &["--config", config.to_str().expect("utf8")],
            &[("CA_PASSPHRASE", PASSPHRASE)],
        )
        .err()
        .expect("refused");
        assert_eq!(failure.status.code(), Some(78), "{}", failure.log);
        assert!(failure.log.contains(says), "{says}: {}", failure.log);
    }
    // Without root_crl an intermediate's /crl-chain.pem says what to configure.
    let daemon = Daemon::start(&inter, &ws.path("data2"), &[]);
    let (status, body) = daemon.curl("/crl-chain.pem", &[]);
    assert_eq!(
        (status, error_code(&body).as_str()),
        (404, "not_found"),
        "{body}"
    );
    assert!(body.contains("root_crl"), "{body}");
}
