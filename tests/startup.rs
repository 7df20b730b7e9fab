//! End-to-end: start-up refuses to run without a usable passphrase, identity or configuration, and
//! binds nothing when it refuses; a restart keeps every record, even after SIGKILL.

use std::net::TcpListener;

use crate::support::*;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn assert_not_listening(port: u16) {
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port {port} is bound"
    );
}

#[test]
fn wrong_or_missing_passphrase_exits_without_listening() {
    let ws = Workspace::new();
    let identity = ws.create_identity("ca", "ec:p256", "E2E Root", None);
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");

    let wrong = csrgate()
        .args(["serve", "--listen", &listen, "--identity"])
        .arg(&identity)
        .arg("--data")
        .arg(ws.path("data"))
        .env("CA_PASSPHRASE", "not the passphrase")
        .output()
        .expect("run");
    assert_eq!(wrong.status.code(), Some(77), "{}", text(&wrong.stderr));
    assert!(text(&wrong.stderr).contains("passphrase"));
    assert!(!text(&wrong.stderr).contains("listening"));
    assert!(
        !text(&wrong.stderr).contains("not the passphrase"),
        "the passphrase was echoed"
    );
    assert_not_listening(port);
    assert!(
        !ws.path("data").exists(),
        "the store must not be opened before the key is unlocked"
    );

    let missing = csrgate()
        .args(["serve", "--listen", &listen, "--identity"])
        .arg(&identity)
        .arg("--data")
        .arg(ws.path("data"))
        .output()
        .expect("run");
    assert_eq!(missing.status.code(), Some(77), "{}", text(&missing.stderr));
    let message = text(&missing.stderr);
    for way in [
        "CREDENTIALS_DIRECTORY",
        "--passphrase-file",
        "CA_PASSPHRASE",
        "terminal",
    ] {
        assert!(
            message.contains(way),
            "the message does not name {way}: {message}"
        );
    }
    assert_not_listening(port);
}

#[test]
fn passphrase_sources_in_order() {
    let ws = Workspace::new();
    let identity = ws.create_identity("ca", "ec:p256", "E2E Root", None);
    let good_file = ws.write("good-pass", format!("{PASSPHRASE}\n").as_bytes());
    let credentials = ws.path("creds");
    std::fs::create_dir(&credentials).expect("mkdir");
    std::fs::write(credentials.join("ca-passphrase"), PASSPHRASE).expect("write");
    let bad_file = ws.write("bad-pass", b"wrong");

    // --passphrase-file wins over a wrong CA_PASSPHRASE.
    let daemon = Daemon::try_start(
        &identity,
        &ws.path("data1"),
        &["--passphrase-file", good_file.to_str().expect("utf8")],
        &[("CA_PASSPHRASE", "wrong")],
    )
    .expect("file beats env");
    assert!(
        daemon
            .log()
            .contains("CA passphrase from the file named by --passphrase-file"),
        "{}",
        daemon.log()
    );
    daemon.stop();
    // Named in the configuration file, the log says so (not the flag).
    let config = ws.write(
        "passphrase.toml",
        format!("passphrase_file = \"{}\"\n", good_file.display()).as_bytes(),
    );
    let daemon = Daemon::try_start(
        &identity,
        &ws.path("data3"),
        &["--config", config.to_str().expect("utf8")],
        &[],
    )
    .expect("passphrase_file from the configuration");
    assert!(
        daemon
            .log()
            .contains("CA passphrase from the file named by the passphrase_file setting"),
        "{}",
        daemon.log()
    );
    daemon.stop();
    // The systemd credential wins over a wrong --passphrase-file.
    let credentials_dir = credentials.to_str().expect("utf8");
    let daemon = Daemon::try_start(
        &identity,
        &ws.path("data2"),
        &["--passphrase-file", bad_file.to_str().expect("utf8")],
        &[("CREDENTIALS_DIRECTORY", credentials_dir)],
    )
    .expect("credential beats file");
    assert!(daemon.log().contains("systemd credential"));
    daemon.stop();
}

#[test]
fn missing_identity_and_bad_config_are_distinct_failures() {
    let ws = Workspace::new();
    let nothing = csrgate()
        .args(["serve", "--listen", "127.0.0.1:0", "--identity"])
        .arg(ws.path("absent"))
        .arg("--data")
        .arg(ws.path("data"))
        .env("CA_PASSPHRASE", PASSPHRASE)
        .output()
        .expect("run");
    assert_eq!(nothing.status.code(), Some(66), "{}", text(&nothing.stderr));
    assert!(text(&nothing.stderr).contains("identity create"));

    let config = ws.write(
        "bad.toml",
        b"listen = [\"127.0.0.1:0\"]\nmax_body_byte = 10\n",
    );
    let bad = csrgate()
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .expect("run");
    assert_eq!(bad.status.code(), Some(78), "{}", text(&bad.stderr));
    assert!(text(&bad.stderr).contains("max_body_byte"));
}

#[test]
fn records_survive_sigkill_and_restart() {
    let ws = Workspace::new();
    let identity = ws.create_identity("ca", "ec:p256", "E2E Root", None);
    let data = ws.path("data");
    let csr = ws.csr("leaf", P256, "/CN=durable", &[]);

    let daemon = Daemon::start(&identity, &data, &[]);
    let mut serials = Vec::new();
    for client in ["one", "two", "three"] {
        let (status, body) = daemon.put_file(&format!("/{client}"), &csr, &[]);
        assert_eq!(status, 200, "{body}");
        let json: serde_json::Value = serde_json::from_str(&body).expect("json");
        serials.push(json["serial"].as_str().expect("serial").to_owned());
    }
    // SIGKILL right after the answers: only what was flushed before the 200 can survive.
    daemon.kill();

    for serial in &serials {
        let show = csrgate()
            .args(["store", "show"])
            .args(store_args(&data))
            .arg(serial)
            .output()
            .expect("run");
        assert!(
            show.status.success(),
            "serial {serial} lost: {}",
            text(&show.stderr)
        );
        let record: serde_json::Value = serde_json::from_slice(&show.stdout).expect("json");
        assert_eq!(record["serial"], serial.as_str());
        assert_eq!(record["status"], "valid");
        assert_eq!(record["public_key_sha1"].as_str().map(str::len), Some(40));
    }

    let daemon = Daemon::start(&identity, &data, &[]);
    let (status, body) = daemon.put_file("/four", &csr, &[]);
    assert_eq!(status, 200, "{body}");
    assert!(daemon.stop().success());
    assert_eq!(stored_certificates(&data), 4);
}

#[test]
fn dev_mode_creates_identity_and_data_once() {
    let ws = Workspace::new();
    let identity = ws.path("identity");
    let data = ws.path("data");
    let daemon = Daemon::try_start(&identity, &data, &["--dev"], &[]).expect("dev start");
    assert!(daemon.log().contains("DEVELOPMENT CA"));
    let csr = ws.csr("leaf", P256, "/CN=dev", &[]);
    let (status, body) = daemon.put_file("/dev1", &csr, &[]);
    assert_eq!(status, 200, "{body}");
    daemon.stop();

    use std::os::unix::fs::PermissionsExt as _;
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode(&identity.join("dev-passphrase")), 0o600);
    assert_eq!(mode(&identity.join("ca.private_key.pem")), 0o600);
    let fingerprint = openssl_x509(&identity.join("ca.cert.pem"), &["-fingerprint", "-sha256"]);

    // Second start reuses the identity rather than making a new one.
    let daemon = Daemon::try_start(&identity, &data, &["--dev"], &[]).expect("dev restart");
    assert!(!daemon.log().contains("DEVELOPMENT CA"));
    daemon.stop();
    assert_eq!(
        fingerprint,
        openssl_x509(&identity.join("ca.cert.pem"), &["-fingerprint", "-sha256"])
    );
}

/// `serve --help` lists every key the configuration accepts, as the README promises: the keys are
/// read from the daemon's own refusal of an unknown key in each section, so a key added to the
/// configuration without its line in the help fails here.
#[test]
fn serve_help_lists_every_configuration_key() {
    let ws = Workspace::new();
    let help = csrgate()
        .args(["serve", "--help"])
        .output()
        .expect("run --help");
    assert!(help.status.success());
    let help = text(&help.stdout);
    for (section, config) in [
        ("top level", "unknown_key = 1\n"),
        ("[signing]", "[signing]\nunknown_key = 1\n"),
        ("[crl]", "[crl]\nunknown_key = 1\n"),
        ("[[issuance]]", "[[issuance]]\nunknown_key = 1\n"),
        ("[[plugins]]", "[[plugins]]\nunknown_key = 1\n"),
    ] {
        let file = ws.write("keys.toml", config.as_bytes());
        let refused = csrgate()
            .args(["serve", "--config"])
            .arg(&file)
            .output()
            .expect("run");
        assert_eq!(refused.status.code(), Some(78), "{section}");
        let stderr = text(&refused.stderr);
        // serde: "unknown field `x`, expected one of `a`, `b`" (or "expected `a`" for one).
        let expected = stderr
            .split(", expected ")
            .nth(1)
            .unwrap_or_else(|| panic!("{section}: no key list in {stderr:?}"));
        let keys: Vec<&str> = expected
            .split(" for key ")
            .next()
            .unwrap_or_default()
            .split('`')
            .skip(1)
            .step_by(2)
            .collect();
        assert!(!keys.is_empty(), "{section}: {stderr}");
        for key in keys {
            assert!(
                help.contains(key),
                "{section}: `serve --help` does not list the configuration key {key}"
            );
        }
    }
}

/// The whole configuration is read and checked before anything is created on disk: a bad admin
/// token file stops a `--dev` start before the development identity or the store exist.
#[test]
fn configuration_faults_stop_the_start_before_any_side_effect() {
    let ws = Workspace::new();
    let tokens = ws.write("admin-tokens", b"ops short\n");
    let config = ws.write(
        "short-token.toml",
        format!("admin_tokens_file = \"{}\"\n", tokens.display()).as_bytes(),
    );
    let (identity, data) = (ws.path("identity"), ws.path("data"));
    let refused = csrgate()
        .args(["serve", "--dev", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--identity")
        .arg(&identity)
        .arg("--data")
        .arg(&data)
        .output()
        .expect("run");
    assert_eq!(refused.status.code(), Some(78), "{}", text(&refused.stderr));
    assert!(
        text(&refused.stderr).contains("at least 16 characters"),
        "{}",
        text(&refused.stderr)
    );
    assert!(!identity.exists(), "the dev identity was created first");
    assert!(!data.exists(), "the data directory was created first");
}

/// `log_format = "json"`: every line the daemon writes is one JSON object with timestamp, level,
/// target and fields; `log_level` from the file filters (RUST_LOG unset).
#[test]
fn json_logs_parse_and_the_level_comes_from_the_config() {
    use std::io::BufRead as _;
    let ws = Workspace::new();
    let identity = ws.create_identity("ca", "ec:p256", "Log CA", None);
    let config = ws.write(
        "json.toml",
        b"log_format = \"json\"\nlog_level = \"warn,csrgate_server=debug\"\n",
    );
    let mut child = csrgate()
        .env_remove("RUST_LOG")
        .env("CA_PASSPHRASE", PASSPHRASE)
        .args(["serve", "--listen", "127.0.0.1:0", "--identity"])
        .arg(&identity)
        .arg("--data")
        .arg(ws.path("data"))
        .arg("--config")
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let _ = lines_tx.send(line);
        }
    });
    let mut lines = Vec::new();
    let parse = |line: &str| -> serde_json::Value {
        serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    };
    let address = loop {
        let line = lines_rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no listening line in {lines:#?}"));
        let event = parse(&line);
        lines.push(line);
        if event["fields"]["message"] == "listening" {
            break event["fields"]["address"]
                .as_str()
                .expect("address")
                .to_owned();
        }
    };
    let csr = ws.csr("leaf", P256, "/CN=json.example", &[]);
    let body = std::fs::read(&csr).expect("csr");
    let (status, _) = raw_request(&address, "PUT", "/jsonclient", &[], &body);
    assert_eq!(status, 200);
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().expect("wait").success());
    lines.extend(lines_rx.try_iter());
    std::thread::sleep(std::time::Duration::from_millis(100));
    lines.extend(lines_rx.try_iter());
    let events: Vec<serde_json::Value> = lines.iter().map(|line| parse(line)).collect();
    for event in &events {
        for key in ["timestamp", "level", "target"] {
            assert!(event[key].is_string(), "{key} missing: {event}");
        }
        assert!(event["fields"]["message"].is_string(), "{event}");
        let level = event["level"].as_str().unwrap_or_default();
        let target = event["target"].as_str().unwrap_or_default();
        assert!(
            matches!(level, "WARN" | "ERROR") || target.starts_with("csrgate_server"),
            "log_level lets only warnings through outside csrgate_server: {event}"
        );
    }
    assert!(
        events
            .iter()
            .any(|e| e["fields"]["message"] == "certificate issued"
                && e["fields"]["client_hash"] == "jsonclient"),
        "{events:#?}"
    );
    assert!(
        !events
            .iter()
            .any(|e| e["fields"]["message"] == "CA identity unlocked"),
        "an INFO line of the binary passed the warn filter"
    );
}

/// Journald restarting (or the reader of a pipe going away) breaks stderr: the daemon keeps
/// serving and still stops on SIGTERM. tracing-subscriber used to report the failed write with
/// eprintln!, which panicked in whatever task logged, the SIGTERM handler included.
#[test]
fn a_broken_stderr_does_not_stop_the_daemon_from_serving_or_stopping() {
    use std::io::BufRead as _;
    let ws = Workspace::new();
    let identity = ws.create_identity("ca", "ec:p256", "Pipe CA", None);
    let mut child = csrgate()
        .env("CA_PASSPHRASE", PASSPHRASE)
        .args(["serve", "--listen", "127.0.0.1:0", "--identity"])
        .arg(&identity)
        .arg("--data")
        .arg(ws.path("data"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut lines = std::io::BufReader::new(child.stderr.take().expect("stderr")).lines();
    let address = loop {
        let line = lines.next().expect("a log line").expect("read");
        if line.contains(" listening ")
            && let Some(address) = line.split("address=").nth(1)
        {
            break address.trim().to_owned();
        }
    };
    drop(lines);
    let csr = ws.csr("leaf", P256, "/CN=pipe", &[]);
    let body = std::fs::read(&csr).expect("csr");
    for _ in 0..3 {
        let (status, _) = raw_request(&address, "PUT", "/pipeclient", &[], &body);
        assert_eq!(status, 200, "serving with stderr gone");
    }
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "{status:?}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "SIGTERM was ignored with a broken stderr"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
