//! Test harness for the end-to-end tests: temp workspaces, identities made with the real
//! `csrgate identity create`, CSRs made with `openssl req`, a daemon spawned on 127.0.0.1:0 and
//! driven with `curl`. Nothing is mocked.

// Shared with the gateway benchmark, which uses other parts of it.
#[allow(dead_code)]
pub mod acme_client;
pub mod tls;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const PASSPHRASE: &str = "correct horse battery staple";
pub const BIN: &str = env!("CARGO_BIN_EXE_csrgate");

/// A temporary directory for one test.
pub struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Self {
        Workspace {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `csrgate identity create` with the test passphrase; `issuer` names another identity here.
    pub fn create_identity(
        &self,
        name: &str,
        key: &str,
        cn: &str,
        issuer: Option<&str>,
    ) -> PathBuf {
        let dir = self.path(name);
        let mut command = csrgate();
        command
            .args(["identity", "create", "--dir"])
            .arg(&dir)
            .args([
                "-f",
                "CN",
                cn,
                "-f",
                "O",
                "csrgate e2e",
                "--key",
                key,
                "-v",
                "5y",
            ])
            .env("CA_PASSPHRASE", PASSPHRASE)
            .env("CA_ISSUER_PASSPHRASE", PASSPHRASE);
        if let Some(issuer) = issuer {
            command
                .arg("--issuer")
                .arg(self.path(issuer))
                .args(["--path-len", "0"]);
        }
        let output = command.output().expect("run identity create");
        assert!(
            output.status.success(),
            "identity create failed: {}",
            text(&output.stderr)
        );
        dir
    }

    /// A CSR made by `openssl req`. `key` is an `-newkey` argument list, e.g. `["ec", "-pkeyopt",
    /// "ec_paramgen_curve:P-256"]`; `extra` goes to the end of the command line.
    pub fn csr(&self, name: &str, key: &[&str], subject: &str, extra: &[&str]) -> PathBuf {
        let csr = self.path(&format!("{name}.csr"));
        let output = Command::new("openssl")
            .args(["req", "-new", "-nodes", "-newkey"])
            .args(key)
            .arg("-keyout")
            .arg(self.path(&format!("{name}.key")))
            .args(["-subj", subject, "-out"])
            .arg(&csr)
            .args(extra)
            .output()
            .expect("run openssl req");
        assert!(
            output.status.success(),
            "openssl req failed: {}",
            text(&output.stderr)
        );
        csr
    }

    pub fn write(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).expect("write");
        path
    }
}

pub const P256: &[&str] = &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"];
pub const P384: &[&str] = &["ec", "-pkeyopt", "ec_paramgen_curve:P-384"];
pub const RSA2048: &[&str] = &["rsa:2048"];
pub const RSA1024: &[&str] = &["rsa:1024"];
pub const ED25519: &[&str] = &["ed25519"];

pub fn csrgate() -> Command {
    let mut command = Command::new(BIN);
    command
        .stdin(Stdio::null())
        .env_remove("CA_PASSPHRASE")
        .env_remove("CREDENTIALS_DIRECTORY");
    command.env("RUST_LOG", "info");
    // Most tests are about something else than who may get a certificate: they run an open CA
    // on purpose. The closed-by-default tests (startup.rs) remove this.
    command.env("CSRGATE_OPEN_ISSUANCE", "true");
    command
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A running `csrgate serve`.
pub struct Daemon {
    child: Option<Child>,
    pub base_url: String,
    log: Arc<Mutex<Vec<String>>>,
}

/// How a daemon start ended when it did not reach "listening".
#[derive(Debug)]
pub struct StartFailure {
    pub status: ExitStatus,
    pub log: String,
}

impl Daemon {
    /// Starts `csrgate serve --listen 127.0.0.1:0 --identity I --data D` with the test passphrase.
    pub fn start(identity: &Path, data: &Path, extra: &[&str]) -> Daemon {
        Daemon::try_start(identity, data, extra, &[("CA_PASSPHRASE", PASSPHRASE)])
            .expect("daemon starts")
    }

    pub fn try_start(
        identity: &Path,
        data: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Daemon, StartFailure> {
        let mut command = csrgate();
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--identity"])
            .arg(identity)
            .arg("--data")
            .arg(data)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());

        for (key, value) in env {
            command.env(key, value);
        }
        Daemon::spawn(command)
    }

    /// Spawns `command` (a `csrgate serve ...`, stderr piped) and waits until it listens.
    pub fn spawn(mut command: Command) -> Result<Daemon, StartFailure> {
        // The whole suite again on PostgreSQL (tests/run's second pass): a daemon given
        // `--data DIR` gets the database standing in for DIR, so a restart finds what it wrote.
        let data = command
            .get_args()
            .skip_while(|arg| *arg != "--data")
            .nth(1)
            .map(PathBuf::from);
        if let Some(url) = data.as_deref().and_then(postgres_store_for) {
            command
                .env("CSRGATE_STORE", "postgres")
                .env("CSRGATE_POSTGRES_URL", url);
        }
        let mut child = command.spawn().expect("spawn csrgate serve");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (address_tx, address_rx) = mpsc::channel();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains(" listening ")
                    && let Some(address) = line.split("address=").nth(1)
                {
                    let _ = address_tx.send(address.trim().to_owned());
                }
                sink.lock().expect("log lock").push(line);
            }
        });
        // The daemon either logs its address or exits; both are bounded by this timeout.
        match address_rx.recv_timeout(Duration::from_secs(60)) {
            Ok(address) => Ok(Daemon {
                child: Some(child),
                base_url: format!("http://{address}"),
                log,
            }),
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().expect("wait");
                std::thread::sleep(Duration::from_millis(50));
                let log = log.lock().expect("log lock").join("\n");
                Err(StartFailure { status, log })
            }
        }
    }

    /// `curl -X PUT --data-binary @file`, returning (status, body).
    pub fn put_file(&self, path: &str, file: &Path, headers: &[&str]) -> (u16, String) {
        let mut args: Vec<String> = vec![
            "-X".into(),
            "PUT".into(),
            "--data-binary".into(),
            format!("@{}", file.display()),
        ];
        for header in headers {
            args.push("-H".into());
            args.push((*header).into());
        }
        self.curl(path, &args)
    }

    /// Runs curl against `path` (appended verbatim, `--path-as-is`) and returns (status, body).
    pub fn curl(&self, path: &str, args: &[String]) -> (u16, String) {
        let output = Command::new("curl")
            .args([
                "-sS",
                "--path-as-is",
                "--max-time",
                "30",
                "-o",
                "-",
                "-w",
                "\n%{http_code}",
            ])
            .args(args)
            .arg(format!("{}{}", self.base_url, path))
            .output()
            .expect("run curl");
        let out = text(&output.stdout);
        let (body, status) = out.rsplit_once('\n').unwrap_or(("", &out));
        (status.trim().parse().unwrap_or(0), body.to_owned())
    }

    /// `host:port` the daemon listens on.
    pub fn address(&self) -> &str {
        self.base_url.trim_start_matches("http://")
    }

    /// One HTTP/1.1 request on a fresh connection, without curl (for load and exact bytes):
    /// returns (status, body), or status 0 when the connection failed.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[&str],
        body: &[u8],
    ) -> (u16, String) {
        raw_request(self.address(), method, path, headers, body)
    }

    /// SIGHUP: reload the configuration.
    pub fn hup(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits (60 s at most) until the log contains `needle`.
    pub fn wait_for_log(&self, needle: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !self.log().contains(needle) {
            assert!(
                std::time::Instant::now() < deadline,
                "no {needle:?} in the log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().expect("log lock").join("\n")
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        child.wait().expect("wait")
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill(mut self) {
        let mut child = self.child.take().expect("running");
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// See [`Daemon::request`]. Bounded: 30 s for the whole exchange.
pub fn raw_request(
    address: &str,
    method: &str,
    path: &str,
    headers: &[&str],
    body: &[u8],
) -> (u16, String) {
    use std::io::{Read as _, Write as _};
    let Ok(mut stream) = std::net::TcpStream::connect(address) else {
        return (0, String::new());
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(30)));
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for header in headers {
        head.push_str(header);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    // A server may answer and close before reading everything (e.g. 431 for a huge head): the
    // failed write is ignored and its answer read.
    let _ = stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body));
    let mut answer = Vec::new();
    if stream.read_to_end(&mut answer).is_err() && answer.is_empty() {
        return (0, String::new());
    }
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let Some((head, body)) = answer.split_once("\r\n\r\n") else {
        return (0, String::new());
    };
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (status, body.to_owned())
}

/// The JSON body of an error answer: (code, message).
pub fn error_code(body: &str) -> String {
    let value: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body:?}"));
    value["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {body}"))
        .to_owned()
}

/// `csrgate store stats` on a stopped daemon's store.
pub fn stored_certificates(data: &Path) -> u64 {
    let output = csrgate()
        .args(["store", "stats"])
        .args(store_args(data))
        .output()
        .expect("store stats");
    assert!(
        output.status.success(),
        "store stats: {}",
        text(&output.stderr)
    );
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    value["certificates"].as_u64().expect("count")
}

/// `openssl verify -CAfile root [-untrusted chain] leaf`.
pub fn openssl_verify(root: &Path, untrusted: Option<&Path>, leaf: &Path) -> Output {
    let mut command = Command::new("openssl");
    command.arg("verify").arg("-CAfile").arg(root);
    if let Some(chain) = untrusted {
        command.arg("-untrusted").arg(chain);
    }
    command.arg(leaf).output().expect("run openssl verify")
}

/// `openssl x509 -noout -text` (plus extra flags) of a PEM file.
pub fn openssl_x509(file: &Path, flags: &[&str]) -> String {
    let output = Command::new("openssl")
        .args(["x509", "-noout", "-in"])
        .arg(file)
        .args(flags)
        .output()
        .expect("run openssl x509");
    assert!(
        output.status.success(),
        "openssl x509: {}",
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// `openssl req|x509 -noout FLAGS -in FILE`, trimmed.
pub fn openssl_show(kind: &str, file: &Path, flags: &[&str]) -> String {
    let output = Command::new("openssl")
        .args([kind, "-noout"])
        .args(flags)
        .arg("-in")
        .arg(file)
        .output()
        .expect("run openssl");
    assert!(
        output.status.success(),
        "openssl {kind}: {}",
        text(&output.stderr)
    );
    text(&output.stdout).trim().to_owned()
}

/// A daemon on `identity` (data in `data`) whose admin API accepts `token` as the operator
/// `ops`, with `extra` lines of configuration.
pub fn start_with_admin(ws: &Workspace, identity: &Path, token: &str, extra: &str) -> Daemon {
    let tokens = ws.write("admin-tokens", format!("ops {token}\n").as_bytes());
    let config = ws.write(
        "csrgate.toml",
        format!("admin_tokens_file = \"{}\"\n{extra}", tokens.display()).as_bytes(),
    );
    Daemon::start(
        identity,
        &ws.path("data"),
        &["--config", config.to_str().expect("utf8")],
    )
}

impl Daemon {
    /// `POST /certificates/{serial}/revoke` with `reason`, as the operator holding `token`.
    pub fn revoke(&self, serial: &str, reason: &str, token: &str) -> (u16, String) {
        self.curl(
            &format!("/certificates/{serial}/revoke"),
            &[
                "-X".into(),
                "POST".into(),
                "-H".into(),
                format!("Authorization: Bearer {token}"),
                "-H".into(),
                "Content-Type: application/json".into(),
                "--data".into(),
                format!("{{\"reason\":\"{reason}\"}}"),
            ],
        )
    }
}

/// `PUT /<client_hash>` of a P-256 CSR for `CN=<name>.internal`, which must be answered 200:
/// (serial, the certificate written to `<name>.pem`).
pub fn issue_json(
    ws: &Workspace,
    daemon: &Daemon,
    client_hash: &str,
    name: &str,
) -> (String, PathBuf) {
    let csr = ws.csr(name, P256, &format!("/CN={name}.internal"), &[]);
    let (status, body) = daemon.put_file(&format!("/{client_hash}"), &csr, &[]);
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("json");
    let pem = ws.write(
        &format!("{name}.pem"),
        json["signed_x509_pem"].as_str().expect("pem").as_bytes(),
    );
    (json["serial"].as_str().expect("serial").to_owned(), pem)
}

/// Writes the `signed_x509_pem` of a 200 answer's JSON `body` to `name` in the workspace.
pub fn leaf_from_answer(ws: &Workspace, name: &str, body: &str) -> PathBuf {
    let value: serde_json::Value = serde_json::from_str(body).expect("json");
    ws.write(
        name,
        value["signed_x509_pem"].as_str().expect("pem").as_bytes(),
    )
}

/// Checks a certificate issued for `request` as a relying party and its requester would: it
/// verifies up to `root` with `openssl verify`, names the request's subject (`-nameopt RFC2253`
/// shows the RDN structure, `+` joining the values of a multi-valued RDN, and the values
/// whatever string types encode them), carries the request's key, and has exactly the SAN line
/// `sans` (`openssl x509 -ext subjectAltName` form, e.g. `DNS:a.example, IP Address:10.0.0.7`;
/// empty for none).
pub fn assert_issued_as_requested(
    what: &str,
    root: &Path,
    request: &Path,
    leaf: &Path,
    sans: &str,
) {
    let verified = openssl_verify(root, None, leaf);
    assert!(
        verified.status.success(),
        "{what}: openssl verify: {}",
        text(&verified.stdout)
    );
    let subject = ["-subject", "-nameopt", "RFC2253"];
    assert_eq!(
        openssl_show("x509", leaf, &subject),
        openssl_show("req", request, &subject),
        "{what}: the certificate names another DN than the request"
    );
    assert_eq!(
        openssl_show("x509", leaf, &["-pubkey"]),
        openssl_show("req", request, &["-pubkey"]),
        "{what}: the certificate carries another key"
    );
    let shown = openssl_show("x509", leaf, &["-ext", "subjectAltName"]);
    assert_eq!(
        shown.lines().nth(1).map(str::trim).unwrap_or_default(),
        sans,
        "{what}: SANs"
    );
}

/// The Python the tests run: `target/test-venv`'s, which `tests/run` makes with the packages the
/// tests need (`cryptography`), else `python3` from the PATH.
pub fn python() -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-venv/bin/python");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

/// With `TEST_STORE_BACKEND=postgres` (tests/run's second pass over this suite), the database
/// that stands in for the data directory `data`: created on first use in the cluster
/// `TEST_POSTGRES_URL` names. `None` on sled (the default).
pub fn postgres_store_for(data: &Path) -> Option<String> {
    use std::hash::{Hash as _, Hasher as _};
    if !on_postgres() {
        return None;
    }
    let cluster = std::env::var("TEST_POSTGRES_URL")
        .expect("TEST_STORE_BACKEND=postgres needs TEST_POSTGRES_URL (tests/run sets both)");
    let absolute = std::path::absolute(data).expect("absolute path");
    // DefaultHasher::new() has fixed keys: the same directory maps to the same database.
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    absolute.hash(&mut hasher);
    let name = format!("e2e_{:016x}", hasher.finish());
    static CREATED: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut created = CREATED.lock().expect("lock");
    if !created.contains(&name) {
        create_database(&cluster, &name);
        created.push(name.clone());
    }
    Some(cluster.replacen("/postgres?", &format!("/{name}?"), 1))
}

/// `CREATE DATABASE name` in the cluster at `cluster_url` (a database there already is fine).
/// A cluster that has just started, or concurrent CREATE DATABASEs copying template1, can
/// refuse for a moment: a few tries over 5 s.
pub fn create_database(cluster_url: &str, name: &str) {
    let mut stderr = String::new();
    for _ in 0..20 {
        let output = Command::new("psql")
            .arg(cluster_url)
            .args(["-qc", &format!("CREATE DATABASE {name}")])
            .output()
            .expect("psql");
        stderr = text(&output.stderr);
        if output.status.success() || stderr.contains("already exists") {
            return;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("create database {name}: {stderr}");
}

/// The arguments that point a store command at the store of a daemon started with
/// `--data DIR`: `--data DIR`, or `--postgres URL` in the PostgreSQL pass.
pub fn store_args(data: &Path) -> Vec<std::ffi::OsString> {
    match postgres_store_for(data) {
        Some(url) => vec!["--postgres".into(), url.into()],
        None => vec!["--data".into(), data.into()],
    }
}

/// Whether this is the PostgreSQL pass over the suite (`TEST_STORE_BACKEND=postgres`).
pub fn on_postgres() -> bool {
    std::env::var("TEST_STORE_BACKEND").as_deref() == Ok("postgres")
}

/// The PostgreSQL pass's database of the daemon started on `data`, dumped as SQL text
/// (`pg_dump`); `None` on sled.
pub fn store_dump(data: &Path) -> Option<Vec<u8>> {
    let url = postgres_store_for(data)?;
    let output = Command::new("pg_dump").arg(&url).output().expect("pg_dump");
    assert!(output.status.success(), "pg_dump: {}", text(&output.stderr));
    Some(output.stdout)
}
