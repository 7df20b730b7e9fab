//! OCSP under the same load: requests for certificates the measured daemon issued, made by
//! `openssl ocsp -reqout` (the client relying parties run), with and without a nonce.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use anyhow::{Context as _, bail};

use crate::http_load;
use crate::servers::{self, Server};

/// Complete HTTP requests, sent round-robin by the load generator.
type Load = Arc<Vec<Vec<u8>>>;

/// Certificates asked about.
const CERTIFICATES: usize = 32;

/// One request on a fresh connection (`Connection: close`): (status line, body).
fn exchange(address: SocketAddr, request: &[u8]) -> anyhow::Result<(String, Vec<u8>)> {
    let mut stream = TcpStream::connect(address)?;
    stream.write_all(request)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of headers")?;
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    let status = head.lines().next().unwrap_or_default().to_owned();
    Ok((status, answer[split + 4..].to_vec()))
}

fn closing(method: &str, path: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut bytes = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// The OCSP load for one daemon.
pub struct OcspLoad {
    /// Requests without a nonce (answered from the kept answers).
    pub cached: Load,
    /// The same with a nonce (signed per request).
    pub with_nonce: Load,
    /// The certificates asked about.
    pub leaves: Vec<PathBuf>,
}

/// Issues [`CERTIFICATES`] certificates through `PUT /bench0` and returns the OCSP requests for
/// them, each checked once to get a successful answer.
pub fn requests(
    address: SocketAddr,
    ca: &Path,
    csrs: &[Vec<u8>],
    work: &Path,
) -> anyhow::Result<OcspLoad> {
    let dir = work.join("ocsp");
    std::fs::create_dir_all(&dir)?;
    let mut plain = Vec::new();
    let mut with_nonce = Vec::new();
    let mut leaves = Vec::new();
    for (i, csr) in csrs.iter().take(CERTIFICATES).enumerate() {
        let (status, body) = exchange(
            address,
            &closing("PUT", "/bench0", "application/pkcs10", csr),
        )?;
        if !status.contains(" 200 ") {
            bail!("PUT for OCSP: {status}");
        }
        let json: serde_json::Value = serde_json::from_slice(&body)?;
        let leaf = dir.join(format!("leaf-{i}.pem"));
        std::fs::write(
            &leaf,
            json["signed_x509_pem"].as_str().context("no certificate")?,
        )?;
        for (nonce, list) in [(false, &mut plain), (true, &mut with_nonce)] {
            let out = dir.join(format!("request-{i}-{nonce}.der"));
            let mut command = Command::new("openssl");
            command
                .args(["ocsp", "-issuer"])
                .arg(ca)
                .arg("-cert")
                .arg(&leaf)
                .arg("-reqout")
                .arg(&out);
            if !nonce {
                command.arg("-no_nonce");
            }
            let made = command.output()?;
            if !made.status.success() {
                bail!(
                    "openssl ocsp -reqout: {}",
                    String::from_utf8_lossy(&made.stderr)
                );
            }
            let der = std::fs::read(&out)?;
            let (status, body) = exchange(
                address,
                &closing("POST", "/ocsp", "application/ocsp-request", &der),
            )?;
            let answer = openssl::ocsp::OcspResponse::from_der(&body)?;
            if !status.contains(" 200 ")
                || answer.status() != openssl::ocsp::OcspResponseStatus::SUCCESSFUL
            {
                bail!("OCSP answer {status}, {:?}", answer.status());
            }
            list.push(http_load::request(
                "POST",
                "/ocsp",
                "application/ocsp-request",
                &der,
            ));
        }
        leaves.push(leaf);
    }
    Ok(OcspLoad {
        cached: Arc::new(plain),
        with_nonce: Arc::new(with_nonce),
        leaves,
    })
}

/// `cfssl ocspserve` (Debian's golang-cfssl, installed by [`servers::start_cfssl`]'s check)
/// answering for `leaves` from responses `cfssl ocspsign` pre-signed with the same CA key: the
/// peer of csrgate's kept answers. It ignores nonces.
pub fn start_cfssl_ocspserve(
    work: &Path,
    identity: &Path,
    leaves: &[PathBuf],
) -> anyhow::Result<Server> {
    servers::ensure_cfssl()?;
    let dir = work.join("cfssl-ocsp");
    std::fs::create_dir_all(&dir)?;
    let key = dir.join("ca-key.pem");
    let decrypted = Command::new("openssl")
        .args(["pkey", "-passin", "env:CA_PASSPHRASE", "-in"])
        .arg(identity.join("ca.private_key.pem"))
        .arg("-out")
        .arg(&key)
        .env("CA_PASSPHRASE", servers::PASSPHRASE)
        .output()?;
    if !decrypted.status.success() {
        bail!(
            "openssl pkey: {}",
            String::from_utf8_lossy(&decrypted.stderr)
        );
    }
    let ca = identity.join("ca.cert.pem");
    let mut responses = String::new();
    for leaf in leaves {
        let signed = Command::new("cfssl")
            .args(["ocspsign", "-ca"])
            .arg(&ca)
            .arg("-responder")
            .arg(&ca)
            .arg("-responder-key")
            .arg(&key)
            .arg("-cert")
            .arg(leaf)
            .output()?;
        let json: serde_json::Value = serde_json::from_slice(&signed.stdout)
            .with_context(|| String::from_utf8_lossy(&signed.stderr).into_owned())?;
        responses.push_str(json["ocspResponse"].as_str().context("no ocspResponse")?);
        responses.push('\n');
    }
    let file = dir.join("responses");
    std::fs::write(&file, responses)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let address: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let log = dir.join("ocspserve.log");
    let started = std::time::Instant::now();
    let child = Command::new("cfssl")
        .args([
            "ocspserve",
            "-address",
            "127.0.0.1",
            "-port",
            &port.to_string(),
        ])
        .arg("-responses")
        .arg(&file)
        .args(["-loglevel", "4"])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .spawn()?;
    let mut server = Server::new(child, address, std::time::Duration::ZERO, log);
    servers::wait_listening(&mut server, started)?;
    Ok(server)
}
