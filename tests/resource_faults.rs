//! End-to-end resource faults: a full or read-only data directory (a small tmpfs, remounted),
//! an exposed CA key file, more connections than configured, and slowloris clients. The daemon
//! must answer 503 store_unavailable without writing half of anything, recover when the disk
//! does, warn about (or refuse) the key, queue connections, and cut slow clients off.

use std::io::{Read as _, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::*;

/// A tmpfs of `size` mounted for the test, unmounted when dropped.
struct SmallDisk {
    mountpoint: PathBuf,
}

impl SmallDisk {
    /// Needs root (mount). A machine where this fails cannot run the test: that is a failure,
    /// not a skip.
    fn mount(at: PathBuf, size: &str) -> SmallDisk {
        std::fs::create_dir_all(&at).expect("mountpoint");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&at)
            .status()
            .expect("run mount");
        assert!(status.success(), "mount tmpfs at {} failed", at.display());
        SmallDisk { mountpoint: at }
    }

    fn remount(&self, mode: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(&self.mountpoint)
            .status()
            .expect("run mount");
        assert!(status.success(), "remount {mode}");
    }

    /// Fills the disk with a file until writes fail.
    fn fill(&self) -> PathBuf {
        let filler = self.mountpoint.join("filler");
        let mut file = std::fs::File::create(&filler).expect("filler");
        let chunk = vec![0u8; 64 * 1024];
        while file.write_all(&chunk).is_ok() {}
        let _ = file.sync_all();
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.mountpoint)
            .status();
    }
}

/// PUTs `csr` until `want` answers (or `tries` run out); returns every (status, code) seen.
fn put_until(daemon: &Daemon, csr: &[u8], want: u16, tries: usize) -> Vec<(u16, String)> {
    let mut seen = Vec::new();
    for _ in 0..tries {
        let (status, body) = daemon.request("PUT", "/faults", &[], csr);
        let code = if status == 200 {
            String::new()
        } else {
            error_code(&body)
        };
        seen.push((status, code));
        if status == want {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    seen
}

fn assert_only(seen: &[(u16, String)], last: u16, others: &[(u16, &str)]) {
    assert_eq!(
        seen.last().map(|s| s.0),
        Some(last),
        "never got {last}: {seen:?}"
    );
    for (status, code) in seen {
        assert!(
            *status == last || others.iter().any(|(s, c)| s == status && c == code),
            "unexpected {status} {code:?} in {seen:?}"
        );
    }
}

#[test]
fn full_and_read_only_disks_answer_503_and_recover() {
    let ws = Workspace::new();
    let identity = ws.create_identity("ca", "ec:p256", "Faults CA", None);
    let disk = SmallDisk::mount(ws.path("disk"), "24m");
    let data = disk.mountpoint.join("data");
    let daemon = Daemon::start(&identity, &data, &[]);
    let csr = std::fs::read(ws.csr("faults", P256, "/CN=faults.internal", &[])).expect("csr");
    let mut acknowledged = 0;
    let ok = |seen: &[(u16, String)]| seen.iter().filter(|(s, _)| *s == 200).count();

    let seen = put_until(&daemon, &csr, 200, 1);
    assert_only(&seen, 200, &[]);
    acknowledged += ok(&seen);

    // Full: some requests may still fit; then 503 store_unavailable and nothing else.
    let filler = disk.fill();
    let seen = put_until(&daemon, &csr, 503, 200);
    acknowledged += ok(&seen);
    assert_only(&seen, 503, &[(200, "")]);
    assert_eq!(seen.last().expect("seen").1, "store_unavailable");
    // Still full: still refused, never a crash.
    let seen = put_until(&daemon, &csr, 200, 5);
    assert!(
        seen.iter()
            .all(|(s, c)| *s == 503 && c == "store_unavailable"),
        "{seen:?}"
    );
    // Space returns: the store reopens and signing resumes.
    std::fs::remove_file(&filler).expect("remove filler");
    let started = Instant::now();
    let seen = put_until(&daemon, &csr, 200, 50);
    assert_only(&seen, 200, &[(503, "store_unavailable")]);
    acknowledged += ok(&seen);
    println!(
        "disk full: recovered {:?} after space returned",
        started.elapsed()
    );

    // The log is read by another thread: under load it may trail the answers a little.
    daemon.wait_for_log("store reopened");
    let log = daemon.log();
    assert!(!log.contains("panicked"), "{log}");
    assert!(
        daemon.stop().success(),
        "the daemon must stop cleanly after recovering"
    );
    // Every acknowledged certificate is there; a refused one may be too (its write can reach
    // the disk before the failed flush), but never half of one: the audit chain verifies.
    let stored = stored_certificates(&data);
    assert!(
        stored as usize >= acknowledged,
        "{stored} stored < {acknowledged} acknowledged"
    );
    let audit = csrgate()
        .args(["audit", "verify"])
        .args(store_args(&data))
        .output()
        .expect("audit verify");
    assert!(
        audit.status.success(),
        "audit chain: {}",
        text(&audit.stderr)
    );
    // Read-only: a remount needs no open writers, so the daemon is stopped; it must refuse
    // to start with a clear error (no crash, nothing written), and start once writable. A
    // read-only error at run time takes the same path as the full disk above (any I/O error
    // marks the store failed).
    disk.remount("ro");
    let Err(refused) = Daemon::try_start(&identity, &data, &[], &[("CA_PASSPHRASE", PASSPHRASE)])
    else {
        panic!("a read-only store must not start");
    };
    assert_eq!(refused.status.code(), Some(73), "{}", refused.log);
    assert!(
        refused.log.contains("Read-only file system"),
        "{}",
        refused.log
    );
    disk.remount("rw");
    let daemon = Daemon::start(&identity, &data, &[]);
    let seen = put_until(&daemon, &csr, 200, 1);
    assert_only(&seen, 200, &[]);
    assert!(daemon.stop().success());
    println!(
        "resource faults: {} acknowledged, {stored} stored before the read-only round, audit chain intact",
        acknowledged
    );
}

#[test]
fn an_exposed_key_file_is_warned_about_and_refused_when_strict() {
    let ws = Workspace::new();
    let identity = ws.create_identity("ca", "ec:p256", "Perms CA", None);
    let key = identity.join("ca.private_key.pem");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");

    let daemon = Daemon::start(&identity, &ws.path("data"), &[]);
    let log = daemon.log();
    assert!(
        log.contains("SECURITY: the CA private key file is accessible to group or others"),
        "{log}"
    );
    assert!(daemon.stop().success());

    let strict = ws.write("strict.toml", b"strict_permissions = true\n");
    let Err(refused) = Daemon::try_start(
        &identity,
        &ws.path("data"),
        &["--config", strict.to_str().expect("utf8")],
        &[("CA_PASSPHRASE", PASSPHRASE)],
    ) else {
        panic!("strict_permissions must refuse a 0644 key");
    };
    assert_eq!(refused.status.code(), Some(77), "{}", refused.log);
    assert!(refused.log.contains("mode 644"), "{}", refused.log);

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let daemon = Daemon::start(
        &identity,
        &ws.path("data"),
        &["--config", strict.to_str().expect("utf8")],
    );
    assert!(!daemon.log().contains("SECURITY"));
    assert!(daemon.stop().success());
}

fn config_with(ws: &Workspace, text: &str) -> PathBuf {
    ws.write("limits.toml", text.as_bytes())
}

/// Opens a connection and sends `head` (possibly incomplete), then waits for the daemon to
/// answer or close: (bytes read, time until then).
fn hold(address: &str, head: &[u8], limit: Duration) -> (String, Duration) {
    let started = Instant::now();
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    stream.set_read_timeout(Some(limit)).expect("timeout");
    stream.write_all(head).expect("write");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

#[test]
fn excess_connections_queue_and_slow_clients_are_cut_off() {
    let ws = Workspace::new();
    let identity = ws.create_identity("ca", "ec:p256", "Limits CA", None);
    let config = config_with(&ws, "max_connections = 2\nrequest_timeout = \"2s\"\n");
    let daemon = Daemon::start(
        &identity,
        &ws.path("data"),
        &["--config", config.to_str().expect("utf8")],
    );
    let csr = std::fs::read(ws.csr("limits", P256, "/CN=limits.internal", &[])).expect("csr");

    // Slowloris: a head that never ends, and a body that stops half-way.
    let address = daemon.address().to_owned();
    let (answer, took) = hold(
        &address,
        b"PUT /slow HTTP/1.1\r\nHost: x\r\n",
        Duration::from_secs(30),
    );
    assert!(
        took < Duration::from_secs(10),
        "slow head held for {took:?}"
    );
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    let mut head = format!(
        "PUT /slow HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        csr.len()
    )
    .into_bytes();
    head.extend_from_slice(&csr[..csr.len() / 2]);
    let (answer, took) = hold(&address, &head, Duration::from_secs(30));
    assert!(
        took < Duration::from_secs(10),
        "slow body held for {took:?}"
    );
    assert!(
        answer.contains("408") && answer.contains("body_timeout"),
        "{answer}"
    );

    // 24 clients at once against a limit of 2 connections: all are served, in turn.
    let started = Instant::now();
    let clients: Vec<_> = (0..24)
        .map(|i| {
            let address = address.clone();
            let csr = csr.clone();
            std::thread::spawn(move || {
                raw_request(&address, "PUT", &format!("/queue{i}"), &[], &csr).0
            })
        })
        .collect();
    let statuses: Vec<u16> = clients
        .into_iter()
        .map(|c| c.join().expect("client"))
        .collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    // And idle connections holding the slots do not starve others for longer than the timeout.
    let idle: Vec<std::net::TcpStream> = (0..4)
        .map(|_| std::net::TcpStream::connect(&address).expect("idle"))
        .collect();
    let (status, body) = daemon.request("PUT", "/afteridle", &[], &csr);
    assert_eq!(status, 200, "{body}");
    drop(idle);
    println!(
        "connection limit 2: 24 concurrent clients served in {:?}",
        started.elapsed()
    );
    let log = daemon.log();
    assert!(!log.contains("panicked"), "{log}");
    assert!(daemon.stop().success());
}
