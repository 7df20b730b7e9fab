//! The servers under load: the release `csrgate serve` with a fresh identity and store, and the
//! cfssl peer. Both run as child processes; their CPU time and peak RSS are read from `/proc`.

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::crypto::{self, CaKey};

pub const PASSPHRASE: &str = "bench passphrase, not a secret";

/// A running server process, killed when dropped.
#[derive(Debug)]
pub struct Server {
    child: Child,
    pub address: SocketAddr,
    /// Spawn to `READY=1` (csrgate) or to the first accepted connection (cfssl).
    pub ready_after: Duration,
    log: PathBuf,
    /// Whether `address` speaks TLS.
    pub tls: bool,
}

impl Server {
    /// A server started elsewhere (the floor servers).
    pub fn new(child: Child, address: SocketAddr, ready_after: Duration, log: PathBuf) -> Self {
        Server {
            child,
            address,
            ready_after,
            log,
            tls: false,
        }
    }

    /// The address of the TLS listener the daemon logged (`listening ... tls=true`).
    pub fn tls_address(&self) -> anyhow::Result<SocketAddr> {
        Ok(std::fs::read_to_string(&self.log)?
            .lines()
            .filter(|line| line.contains(" listening ") && line.contains("tls=true"))
            .find_map(|line| line.split("address=").nth(1))
            .context("no TLS listening address in the log")?
            .trim()
            .parse()?)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// User + system CPU time consumed so far.
    pub fn cpu_time(&self) -> anyhow::Result<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))?;
        cpu_time_of(&stat)
    }

    /// Peak resident set size (VmHWM) in MiB.
    pub fn peak_rss_mib(&self) -> anyhow::Result<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let line = status
            .lines()
            .find(|line| line.starts_with("VmHWM:"))
            .context("no VmHWM")?;
        let kib: f64 = line
            .split_whitespace()
            .nth(1)
            .context("VmHWM value")?
            .parse()?;
        Ok(kib / 1024.0)
    }

    /// Lines of the server's log that mention a panic.
    pub fn panics(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .map(|log| log.matches("panicked").count())
            .unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The CPU time of this benchmark process (the load generator).
pub fn own_cpu_time() -> anyhow::Result<Duration> {
    cpu_time_of(&std::fs::read_to_string("/proc/self/stat")?)
}

pub fn cpu_time_of(stat: &str) -> anyhow::Result<Duration> {
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let after_name = stat.rsplit_once(')').context("stat format")?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    // USER_HZ is 100 on Linux for every architecture csrgate targets.
    Ok(Duration::from_millis(ticks * 10))
}

/// Creates a CA identity with the real CLI: `csrgate identity create`.
pub fn create_identity(binary: &Path, dir: &Path, ca: CaKey) -> anyhow::Result<()> {
    let output = Command::new(binary)
        .args(["identity", "create", "--dir"])
        .arg(dir)
        .args(["-f", "CN", "csrgate bench CA", "--key", ca.identity_flag()])
        .args(["-v", "5y"])
        .env("CA_PASSPHRASE", PASSPHRASE)
        .output()?;
    if !output.status.success() {
        bail!(
            "identity create: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// Whether `binary` is closed by default (its `serve --help` names `open_issuance`).
fn knows_open_issuance(binary: &Path) -> bool {
    Command::new(binary)
        .args(["serve", "--help"])
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains("open_issuance"))
}

/// Starts `csrgate serve --config <config>` (which names the identity, data and plugins) and
/// waits for its `READY=1` on a notify socket of our own, as systemd would.
pub fn start_csrgate(binary: &Path, work: &Path, config: &Path) -> anyhow::Result<Server> {
    let notify_path = work.join(format!("notify-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&notify_path);
    let notify = UnixDatagram::bind(&notify_path)?;
    notify.set_read_timeout(Some(Duration::from_secs(1)))?;
    let log = work.join("csrgate.log");
    let started = Instant::now();
    let mut command = Command::new(binary);
    command
        .arg("serve")
        .arg("--config")
        .arg(config)
        .env("CA_PASSPHRASE", PASSPHRASE)
        .env("NOTIFY_SOCKET", &notify_path);
    // The scenarios measure an open CA (an authorize plugin where their label says so). Builds
    // that are closed by default must be told; older ones (an A/B against main) refuse the key.
    if knows_open_issuance(binary) {
        command.env("CSRGATE_OPEN_ISSUANCE", "true");
    }
    let mut child = command
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .spawn()?;
    let mut message = [0u8; 4096];
    let ready_after = loop {
        if let Ok(read) = notify.recv(&mut message)
            && String::from_utf8_lossy(&message[..read])
                .lines()
                .any(|line| line == "READY=1")
        {
            break started.elapsed();
        }
        if let Some(status) = child.try_wait()? {
            bail!(
                "csrgate exited with {status}:\n{}",
                std::fs::read_to_string(&log)?
            );
        }
        if started.elapsed() > Duration::from_secs(300) {
            let _ = child.kill();
            bail!("csrgate did not become ready within 300 s");
        }
    };
    let _ = std::fs::remove_file(&notify_path);
    let text = std::fs::read_to_string(&log)?;
    let address = text
        .lines()
        .filter(|line| line.contains(" listening "))
        .find_map(|line| line.split("address=").nth(1))
        .context("no listening address in the log")?
        .trim()
        .parse()?;
    Ok(Server {
        child,
        address,
        ready_after,
        log,
        tls: false,
    })
}

/// Writes a `csrgate.toml` for a scenario: loopback on a free port, the given plugin sections.
pub fn csrgate_config(work: &Path, identity: &Path, plugins: &str) -> anyhow::Result<PathBuf> {
    let path = work.join("csrgate.toml");
    let mut file = std::fs::File::create(&path)?;
    writeln!(file, "listen = [\"127.0.0.1:0\"]")?;
    writeln!(file, "identity = {:?}", identity.display().to_string())?;
    writeln!(file, "data = {:?}", work.join("data").display().to_string())?;
    writeln!(
        file,
        "plugin_cache = {:?}",
        work.join("plugin-cache").display().to_string()
    )?;
    file.write_all(plugins.as_bytes())?;
    Ok(path)
}

/// Starts `cfssl serve` with a fresh CA of `ca`'s key type on a free loopback port; installs
/// Debian's golang-cfssl first when `cfssl` is missing. `None` when it cannot be had.
pub fn start_cfssl(work: &Path, ca: CaKey) -> anyhow::Result<Server> {
    start_cfssl_with(work, ca, &[])
}

/// `cfssl serve` with more arguments (`-db-config FILE`: its certdb).
pub fn start_cfssl_with(
    work: &Path,
    ca: CaKey,
    extra: &[&std::ffi::OsStr],
) -> anyhow::Result<Server> {
    ensure_cfssl()?;
    let key = ca.generate()?;
    let certificate = crypto::self_signed_ca(&key)?;
    let key_path = work.join("cfssl-ca-key.pem");
    let cert_path = work.join("cfssl-ca.pem");
    std::fs::write(&key_path, key.private_key_to_pem_pkcs8()?)?;
    std::fs::write(&cert_path, certificate.to_pem()?)?;
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let address: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let log = work.join("cfssl.log");
    let started = Instant::now();
    let child = Command::new("cfssl")
        .args(["serve", "-address", "127.0.0.1", "-port", &port.to_string()])
        .arg("-ca")
        .arg(&cert_path)
        .arg("-ca-key")
        .arg(&key_path)
        // Errors only: cfssl logs every request at its default level.
        .args(["-loglevel", "4"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .spawn()?;
    let mut server = Server {
        child,
        address,
        ready_after: Duration::ZERO,
        log,
        tls: false,
    };
    wait_listening(&mut server, started)?;
    Ok(server)
}

/// Installs Debian's golang-cfssl when `cfssl` is missing.
pub fn ensure_cfssl() -> anyhow::Result<()> {
    if which("cfssl").is_none() {
        eprintln!("cfssl is missing: installing Debian's golang-cfssl");
        let status = Command::new("sh")
            .args(["-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-cfssl"])
            .status()?;
        if !status.success() || which("cfssl").is_none() {
            bail!("cannot install golang-cfssl (apt-get exited with {status})");
        }
    }
    Ok(())
}

/// Waits (30 s at most) until a peer `server` started at `started` accepts connections.
pub fn wait_listening(server: &mut Server, started: Instant) -> anyhow::Result<()> {
    while TcpStream::connect(server.address).is_err() {
        if let Some(status) = server.child.try_wait()? {
            bail!(
                "the peer exited with {status}: {}",
                std::fs::read_to_string(&server.log)?
            );
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!("the peer did not listen within 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    server.ready_after = started.elapsed();
    Ok(())
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|path| path.is_file())
    })
}
