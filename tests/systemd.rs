//! End-to-end with systemd's own tools (no PID 1 needed): the units verify and score "OK" on
//! `systemd-analyze security`, socket activation over TCP and a Unix socket serves CSRs, and the
//! readiness protocol says READY=1 only when the port accepts and STOPPING=1 on SIGTERM.

use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

fn units_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../gunicorn-equivalent-systemd")
}

/// The units with ExecStart pointing at the binary under test.
fn installed_units(ws: &Workspace) -> PathBuf {
    let dir = ws.path("units");
    std::fs::create_dir_all(&dir).expect("mkdir");
    for unit in [
        "csrgate.service",
        "csrgate.socket",
        "csrgate-dev.service",
        "csrgate-crl-refresh.service",
        "csrgate-crl-refresh.timer",
        "csrgate-replica.service",
    ] {
        let text = std::fs::read_to_string(units_dir().join(unit)).expect("unit");
        std::fs::write(dir.join(unit), text.replace("/usr/bin/csrgate", BIN)).expect("write");
    }
    dir
}

#[test]
fn units_verify_and_the_service_scores_ok() {
    let ws = Workspace::new();
    let dir = installed_units(&ws);
    for unit in [
        "csrgate.service",
        "csrgate.socket",
        "csrgate-dev.service",
        "csrgate-crl-refresh.service",
        "csrgate-crl-refresh.timer",
        "csrgate-replica.service",
    ] {
        let out = Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(dir.join(unit))
            .output()
            .expect("systemd-analyze verify");
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{unit}: {}",
            text(&out.stderr)
        );
    }
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true"])
        .arg(dir.join("csrgate.service"))
        .output()
        .expect("systemd-analyze security");
    let report = text(&out.stdout);
    let score: f64 = report
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for csrgate.service:")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no score in:\n{report}{}", text(&out.stderr)));
    println!("systemd-analyze security: exposure {score}");
    assert!(score <= 2.5, "exposure {score} is above 2.5:\n{report}");
}

fn socket_activate(ws: &Workspace, identity: &Path, listen: &str) -> std::process::Child {
    Command::new("systemd-socket-activate")
        .args([
            "-l",
            listen,
            "-E",
            &format!("CA_PASSPHRASE={PASSPHRASE}"),
            "-E",
            "RUST_LOG=info",
            "-E",
            "CSRGATE_OPEN_ISSUANCE=true",
            BIN,
        ])
        .args(["serve", "--identity"])
        .arg(identity)
        .arg("--data")
        .arg(ws.path(&format!("data-{}", listen.len())))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("systemd-socket-activate")
}

#[test]
fn socket_activation_over_tcp_and_unix_serves_csrs() {
    let ws = Workspace::new();
    let identity = ws.create_identity("ca", "ec:p256", "Activated CA", None);
    let csr = ws.csr("leaf", P256, "/CN=activated", &[]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let socket = ws.path("csrgate.sock");
    for (listen, curl_target) in [
        (
            format!("127.0.0.1:{port}"),
            vec![format!("http://127.0.0.1:{port}/activated")],
        ),
        (
            socket.display().to_string(),
            vec![
                "--unix-socket".to_owned(),
                socket.display().to_string(),
                "http://localhost/activated".to_owned(),
            ],
        ),
    ] {
        let mut activator = socket_activate(&ws, &identity, &listen);
        // The activator listens at once and starts the daemon on the first connection; wait for the
        // socket to exist, then send the CSR (it waits in the backlog while the daemon starts).
        let deadline = Instant::now() + Duration::from_secs(30);
        while !(socket.exists() || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()) {
            assert!(Instant::now() < deadline, "{listen} never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = Command::new("curl")
            .args([
                "-sS",
                "--max-time",
                "60",
                "-o",
                "-",
                "-w",
                "\n%{http_code}",
                "-X",
                "PUT",
                "--data-binary",
            ])
            .arg(format!("@{}", csr.display()))
            .args(&curl_target)
            .output()
            .expect("curl");
        let answer = text(&out.stdout);
        let _ = activator.kill();
        let _ = activator.wait();
        assert!(
            answer.trim_end().ends_with("200"),
            "{listen}: {answer}{}",
            text(&out.stderr)
        );
        assert!(answer.contains("signed_x509_pem"), "{listen}: {answer}");
    }
}

#[test]
fn ready_only_when_listening_and_stopping_on_sigterm() {
    let ws = Workspace::new();
    let identity = ws.create_identity("ca", "ec:p256", "Notify CA", None);
    let notify_path = ws.path("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).expect("bind NOTIFY_SOCKET");
    notify
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let mut child = csrgate()
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--identity",
        ])
        .arg(&identity)
        .arg("--data")
        .arg(ws.path("data"))
        .env("CA_PASSPHRASE", PASSPHRASE)
        .env("NOTIFY_SOCKET", &notify_path)
        .env("WATCHDOG_USEC", "400000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    let receive = |received: &mut Vec<String>, buffer: &mut [u8]| {
        let n = notify
            .recv(buffer)
            .expect("a notification before the timeout");
        let message = String::from_utf8_lossy(&buffer[..n]).into_owned();
        received.push(message.clone());
        message
    };
    loop {
        let message = receive(&mut received, &mut buffer);
        if message.lines().any(|l| l == "READY=1") {
            // READY means the port accepts, now.
            assert!(
                std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
                "READY before listening"
            );
            assert!(message.contains("STATUS="), "{message}");
            break;
        }
    }
    // The watchdog is petted at half of WATCHDOG_USEC.
    while !received.iter().any(|m| m.contains("WATCHDOG=1")) {
        receive(&mut received, &mut buffer);
    }
    // A request in flight when SIGTERM arrives is still answered. `Expect: 100-continue` makes the
    // server say when it has parsed the headers and is reading the body: from then on the request
    // is in flight, and the body is only sent after STOPPING=1.
    let csr = std::fs::read(ws.csr("leaf", P256, "/CN=draining", &[])).expect("csr");
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    write!(
        stream,
        "PUT /draining HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        csr.len()
    )
    .expect("headers");
    let mut interim = [0u8; 64];
    let n = stream.read(&mut interim).expect("100 Continue");
    assert!(
        String::from_utf8_lossy(&interim[..n]).starts_with("HTTP/1.1 100"),
        "{}",
        String::from_utf8_lossy(&interim[..n])
    );
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    while !received
        .iter()
        .any(|m| m.lines().any(|l| l == "STOPPING=1"))
    {
        receive(&mut received, &mut buffer);
    }
    stream.write_all(&csr).expect("body");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("answer");
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "the in-flight request was dropped: {answer}"
    );
    let status = child.wait().expect("wait");
    assert!(
        status.success(),
        "exit {status:?}; notifications {received:?}"
    );
}

#[test]
fn a_configured_unix_socket_serves_with_its_mode_and_survives_a_stale_file() {
    use std::os::unix::fs::PermissionsExt as _;
    let ws = Workspace::new();
    let identity = ws.create_identity("ca", "ec:p256", "Unix CA", None);
    let socket = ws.path("csrgate.sock");
    let config = ws.write(
        "unix.toml",
        format!(
            "listen_unix = \"{}\"\nlisten_unix_mode = \"0660\"\n",
            socket.display()
        )
        .as_bytes(),
    );
    let csr = ws.csr("leaf", P256, "/CN=unix", &[]);
    for round in 0..2 {
        let daemon = Daemon::start(
            &identity,
            &ws.path("data"),
            &["--config", config.to_str().expect("utf8")],
        );
        let mode = std::fs::metadata(&socket)
            .expect("socket")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o660);
        let out = Command::new("curl")
            .args([
                "-sS",
                "--max-time",
                "30",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--unix-socket",
            ])
            .arg(&socket)
            .args(["-X", "PUT", "--data-binary"])
            .arg(format!("@{}", csr.display()))
            .arg("http://localhost/unix1")
            .output()
            .expect("curl");
        assert_eq!(
            text(&out.stdout),
            "200",
            "round {round}: {}",
            text(&out.stderr)
        );
        // SIGKILL leaves the socket file behind; the next start must replace it.
        daemon.kill();
        assert!(socket.exists());
    }
    // A regular file in the way is never deleted.
    std::fs::remove_file(&socket).expect("rm");
    std::fs::write(&socket, b"precious").expect("write");
    let failed = Daemon::try_start(
        &identity,
        &ws.path("data"),
        &["--config", config.to_str().expect("utf8")],
        &[("CA_PASSPHRASE", PASSPHRASE)],
    );
    assert!(failed.is_err(), "started over a regular file");
    assert_eq!(std::fs::read(&socket).expect("still there"), b"precious");
}

#[test]
fn sighup_applies_a_new_policy_and_admin_tokens() {
    let ws = Workspace::new();
    let identity = ws.create_identity("ca", "ec:p256", "Reload CA", None);
    let (old_token, new_token) = ("old-token-0123456789", "new-token-0123456789");
    let tokens = ws.write("tokens", format!("ops {old_token}\n").as_bytes());
    let write_config = |validity: &str| {
        ws.write(
            "csrgate.toml",
            format!(
                "admin_tokens_file = \"{}\"\n[signing]\ndefault_validity = \"{validity}\"\n",
                tokens.display()
            )
            .as_bytes(),
        )
    };
    let config = write_config("90d");
    let daemon = Daemon::start(
        &identity,
        &ws.path("data"),
        &["--config", config.to_str().expect("utf8")],
    );
    let csr = ws.csr("leaf", P256, "/CN=reload", &[]);
    let days = |daemon: &Daemon| {
        let (status, body) = daemon.put_file("/reload1", &csr, &[]);
        assert_eq!(status, 200, "{body}");
        let json: serde_json::Value = serde_json::from_str(&body).expect("json");
        let parse = |key: &str| {
            time::OffsetDateTime::parse(
                json[key].as_str().expect("time"),
                &time::format_description::well_known::Rfc3339,
            )
            .expect("rfc3339")
        };
        (parse("not_after") - parse("not_before")).whole_days()
    };
    assert_eq!(days(&daemon), 90);
    let list = |token: &str| {
        daemon
            .curl(
                "/certificates",
                &["-H".into(), format!("Authorization: Bearer {token}")],
            )
            .0
    };
    assert_eq!(list(old_token), 200);

    write_config("10d");
    std::fs::write(&tokens, format!("ops {new_token}\n")).expect("tokens");
    daemon.hup();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !daemon.log().contains("generation=2") {
        assert!(
            Instant::now() < deadline,
            "no reload in the log:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(days(&daemon), 10);
    assert_eq!(list(new_token), 200);
    assert_eq!(
        list(old_token),
        403,
        "the old token is gone after the reload"
    );
}
