//! TLS for the end-to-end tests: a test CA made with `openssl req -x509` (apart from
//! csrgate's), server and client certificates from it, and curl over TLS.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::{Daemon, Workspace, text};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

pub fn run(command: &mut Command) -> Output {
    let output = command.output().expect("run");
    assert!(
        output.status.success(),
        "{command:?}: {}",
        text(&output.stderr)
    );
    output
}

/// A test TLS CA made with `openssl req -x509`, apart from csrgate's own CA.
pub struct TestCa {
    pub certificate: PathBuf,
    pub key: PathBuf,
}

impl TestCa {
    pub fn new(ws: &Workspace, name: &str) -> TestCa {
        let certificate = ws.path(&format!("{name}.pem"));
        let key = ws.path(&format!("{name}.key"));
        run(Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args(["-nodes", "-days", "2", "-subj", &format!("/CN={name}")])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&certificate));
        TestCa { certificate, key }
    }

    /// A certificate for `subject` with `extensions` (an openssl extfile body), signed by this
    /// CA: (certificate, key) files.
    pub fn issue(
        &self,
        ws: &Workspace,
        name: &str,
        subject: &str,
        extensions: &str,
    ) -> (PathBuf, PathBuf) {
        let key = ws.path(&format!("{name}.key"));
        let csr = ws.path(&format!("{name}.csr"));
        let certificate = ws.path(&format!("{name}.crt"));
        let extfile = ws.write(&format!("{name}.ext"), extensions.as_bytes());
        run(Command::new("openssl")
            .args([
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args(["-nodes", "-subj", subject])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&csr));
        run(Command::new("openssl")
            .args(["x509", "-req", "-days", "1", "-in"])
            .arg(&csr)
            .arg("-CA")
            .arg(&self.certificate)
            .arg("-CAkey")
            .arg(&self.key)
            .arg("-extfile")
            .arg(&extfile)
            .arg("-out")
            .arg(&certificate));
        (certificate, key)
    }

    /// A server certificate for 127.0.0.1 and localhost, as a chain file (leaf, then this CA)
    /// and its key encrypted with `passphrase` (PKCS#8, AES-256).
    pub fn server(
        &self,
        ws: &Workspace,
        name: &str,
        cn: &str,
        passphrase: &str,
    ) -> (PathBuf, PathBuf) {
        let (leaf, key) = self.issue(
            ws,
            name,
            &format!("/CN={cn}"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        );
        let chain = ws.path(&format!("{name}-chain.pem"));
        let mut pem = std::fs::read(&leaf).expect("leaf");
        pem.extend(std::fs::read(&self.certificate).expect("ca"));
        std::fs::write(&chain, pem).expect("chain");
        let encrypted = ws.path(&format!("{name}-encrypted.key"));
        run(Command::new("openssl")
            .args(["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in"])
            .arg(&key)
            .arg("-out")
            .arg(&encrypted)
            .args(["-passout", &format!("pass:{passphrase}")]));
        (chain, encrypted)
    }
}

/// `csrgate serve` for `identity` with the configuration `toml` (written to the workspace).
pub fn start_with_config(ws: &Workspace, identity: &Path, toml: &str) -> Daemon {
    let config = ws.write("csrgate.toml", toml.as_bytes());
    Daemon::start(
        identity,
        &ws.path("data"),
        &["--config", config.to_str().expect("utf8")],
    )
}

pub fn https(port: u16, path: &str) -> String {
    format!("https://127.0.0.1:{port}{path}")
}

/// curl over TLS: (curl's exit code, HTTP status, body).
pub fn curl_tls(ca: &Path, url: &str, extra: &[&str]) -> (i32, u16, String) {
    let output = Command::new("curl")
        .args(["-sS", "--max-time", "20", "--cacert"])
        .arg(ca)
        .args(["-o", "-", "-w", "\n%{http_code}"])
        .args(extra)
        .arg(url)
        .output()
        .expect("curl");
    let out = text(&output.stdout);
    let (body, status) = out.rsplit_once('\n').unwrap_or(("", &out));
    (
        output.status.code().unwrap_or(-1),
        status.trim().parse().unwrap_or(0),
        body.to_owned(),
    )
}
