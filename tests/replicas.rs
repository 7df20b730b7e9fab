//! Several replicas on one PostgreSQL store (issue 20): they issue, revoke and publish CRLs as
//! one CA; one replica's death or the database's restart loses nothing acknowledged; a store
//! copied from sled serves as it did. Needs the cluster `tests/run` starts (TEST_POSTGRES_URL).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::tls::{TestCa, free_port, https};
use crate::support::*;

const TOKEN: &str = "replica-test-admin-token-0123456789";

/// `tests/postgres COMMAND DIR PORT` for a cluster of a test's own (stopping the shared one
/// would fail the tests running beside), listening on TCP at `listen` too when not empty;
/// its output (the URL, for `start`).
fn own_cluster(command: &str, dir: &Path, port: u16, listen: &str) -> String {
    let output = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/postgres"))
        .arg(command)
        .arg(dir)
        .arg(port.to_string())
        .env("POSTGRES_LISTEN", listen)
        .output()
        .expect("tests/postgres");
    assert!(
        output.status.success(),
        "{command}: {}",
        text(&output.stderr)
    );
    text(&output.stdout).trim().to_owned()
}

/// A new database in the test cluster (or the cluster at `cluster_url`), and its URL.
pub fn postgres_database(cluster_url: &str, hint: &str) -> String {
    let name = format!(
        "e2e_{hint}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() % 1_000_000_000)
    );
    create_database(cluster_url, &name);
    cluster_url.replacen("/postgres?", &format!("/{name}?"), 1)
}

/// The test cluster's URL; tests/run starts it.
pub fn test_cluster() -> String {
    std::env::var("TEST_POSTGRES_URL").expect(
        "TEST_POSTGRES_URL is not set: run the tests with tests/run, which starts a PostgreSQL \
         cluster (tests/postgres start)",
    )
}

/// A replica: `csrgate serve` on `url`'s database with the shared identity, its own data
/// directory (plugin cache) and the admin token.
fn replica(ws: &Workspace, identity: &Path, url: &str, name: &str, extra: &str) -> Daemon {
    let tokens = ws.write("admin-tokens", format!("ops {TOKEN}\n").as_bytes());
    let config = ws.write(
        &format!("{name}.toml"),
        format!(
            "admin_tokens_file = \"{}\"\nstore = \"postgres\"\npostgres_url = \"{url}\"\n{extra}",
            tokens.display()
        )
        .as_bytes(),
    );
    Daemon::start(
        identity,
        &ws.path(&format!("data-{name}")),
        &["--config", config.to_str().expect("utf8")],
    )
}

/// The serial of a 200 answer.
fn serial_of(body: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(body).expect("json");
    value["serial"].as_str().expect("serial").to_owned()
}

/// The serials a replica's CRL lists, and its CRL Number.
fn crl_of(ws: &Workspace, daemon: &Daemon, name: &str) -> (HashSet<String>, u64) {
    let (status, pem) = daemon.curl("/crl.pem", &[]);
    assert_eq!(status, 200, "{pem}");
    let file = ws.write(name, pem.as_bytes());
    let text = openssl_show("crl", &file, &["-noout", "-text"]);
    let number = text
        .lines()
        .skip_while(|l| !l.contains("X509v3 CRL Number"))
        .nth(1)
        .map(|l| l.trim().to_owned())
        .expect("a CRL Number");
    let serials = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Serial Number: "))
        .map(|s| s.trim_start_matches('0').to_lowercase())
        .collect();
    (serials, number.parse().expect("decimal CRL Number"))
}

/// Issues `count` certificates through `daemon` from `threads` threads, each with its own CSR;
/// returns the serials of the 200 answers and the other statuses seen.
fn issue_load(
    ws: &Workspace,
    daemon: &Daemon,
    name: &str,
    threads: usize,
    count: usize,
) -> (Vec<String>, Vec<u16>) {
    let serials = Arc::new(Mutex::new(Vec::new()));
    let others = Arc::new(Mutex::new(Vec::new()));
    std::thread::scope(|scope| {
        for t in 0..threads {
            let csr = ws.csr(
                &format!("{name}-{t}"),
                P256,
                &format!("/CN={name}-{t}.internal"),
                &[],
            );
            let (serials, others) = (Arc::clone(&serials), Arc::clone(&others));
            scope.spawn(move || {
                for _ in 0..count / threads {
                    let (status, body) = daemon.put_file(&format!("/{name}"), &csr, &[]);
                    if status == 200 {
                        serials.lock().expect("lock").push(serial_of(&body));
                    } else {
                        others.lock().expect("lock").push(status);
                    }
                }
            });
        }
    });
    let serials = serials.lock().expect("lock").clone();
    let others = others.lock().expect("lock").clone();
    (serials, others)
}

/// Whether `daemon` has the record of `serial` (admin API).
fn recorded(daemon: &Daemon, serial: &str) -> bool {
    let (status, _) = daemon.curl(
        &format!("/certificates/{serial}"),
        &["-H".into(), format!("Authorization: Bearer {TOKEN}")],
    );
    status == 200
}

/// Two replicas issue under load with no duplicate serial; a revocation on either is in the
/// other's CRL within a second; CRL Numbers strictly increase across both; OCSP on either
/// answers from the shared store; the plugin-free listing shows every certificate on both.
#[test]
fn two_replicas_act_as_one_ca() {
    let ws = Workspace::new();
    let identity = ws.create_identity("identity", "ec:p256", "Replica CA", None);
    let url = postgres_database(&test_cluster(), "pair");
    let a = replica(&ws, &identity, &url, "a", "");
    let b = replica(&ws, &identity, &url, "b", "");

    let mut all = Vec::new();
    std::thread::scope(|scope| {
        let on_a = scope.spawn(|| issue_load(&ws, &a, "loada", 4, 60));
        let on_b = scope.spawn(|| issue_load(&ws, &b, "loadb", 4, 60));
        for handle in [on_a, on_b] {
            let (serials, others) = handle.join().expect("load");
            assert!(others.is_empty(), "every request answered 200: {others:?}");
            all.extend(serials);
        }
    });
    assert_eq!(all.len(), 120);
    let distinct: HashSet<&String> = all.iter().collect();
    assert_eq!(distinct.len(), all.len(), "no serial issued twice");
    for serial in all.iter().step_by(7) {
        assert!(
            recorded(&a, serial) && recorded(&b, serial),
            "{serial} on both"
        );
    }

    // Revocations alternate between the replicas; each is in the other's CRL within a second
    // and the CRL Number only goes up, whoever built it.
    let (_, mut last_number) = crl_of(&ws, &a, "start.crl");
    for (i, serial) in all.iter().take(4).enumerate() {
        let (revoker, other) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let (status, body) = revoker.revoke(serial, "keyCompromise", TOKEN);
        assert_eq!(status, 200, "{body}");
        let revoked_at = Instant::now();
        let number = loop {
            let (serials, number) = crl_of(&ws, other, &format!("other-{i}.crl"));
            if serials.contains(serial) {
                break number;
            }
            assert!(
                revoked_at.elapsed() < Duration::from_secs(1),
                "revocation {i} not in the other replica's CRL after a second"
            );
            std::thread::sleep(Duration::from_millis(25));
        };
        assert!(
            number > last_number,
            "CRL Number {number} after {last_number}"
        );
        let (_, own) = crl_of(&ws, revoker, &format!("own-{i}.crl"));
        assert!(
            own >= number,
            "the revoker serves its own CRL ({own} >= {number})"
        );
        last_number = number.max(own);
    }

    // OCSP on the replica that did not revoke says revoked at once (status read per request).
    let (leaf_serial, leaf) = issue_json(&ws, &a, "ocsp", "ocsp-leaf");
    let (status, body) = a.revoke(&leaf_serial, "superseded", TOKEN);
    assert_eq!(status, 200, "{body}");
    let ca = ws.write("ca.pem", b.curl("/ca.pem", &[]).1.as_bytes());
    let ocsp = Command::new("openssl")
        .args(["ocsp", "-issuer"])
        .arg(&ca)
        .arg("-CAfile")
        .arg(&ca)
        .arg("-cert")
        .arg(&leaf)
        .args(["-url", &format!("{}/ocsp", b.base_url)])
        .output()
        .expect("openssl ocsp");
    let said = text(&ocsp.stdout);
    assert!(said.contains(": revoked"), "{said}{}", text(&ocsp.stderr));

    // One audit chain for both replicas, intact.
    let verify = csrgate()
        .args(["audit", "verify", "--postgres", &url])
        .output()
        .expect("audit verify");
    assert!(verify.status.success(), "{}", text(&verify.stderr));
    assert!(
        text(&verify.stdout).contains(&format!("{} entries", 120 + 1 + 4 + 1)),
        "{}",
        text(&verify.stdout)
    );
}

/// kill -9 of one replica while both issue: every certificate either acknowledged is in the
/// store, and the survivor keeps serving.
#[test]
fn a_replica_killed_under_load_loses_nothing_acknowledged() {
    let ws = Workspace::new();
    let identity = ws.create_identity("identity", "ec:p256", "Replica CA", None);
    let url = postgres_database(&test_cluster(), "kill");
    let a = replica(&ws, &identity, &url, "a", "");
    let b = replica(&ws, &identity, &url, "b", "");
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let a_pid = a.pid();
    let a_url = a.base_url.clone();
    std::thread::scope(|scope| {
        for t in 0..3 {
            let csr = ws.csr(&format!("k{t}"), P256, &format!("/CN=k{t}.internal"), &[]);
            let acknowledged = Arc::clone(&acknowledged);
            let a_url = a_url.clone();
            scope.spawn(move || {
                let started = Instant::now();
                while started.elapsed() < Duration::from_secs(3) {
                    let output = Command::new("curl")
                        .args(["-sS", "-m", "5", "-w", "\n%{http_code}", "-X", "PUT"])
                        .arg("--data-binary")
                        .arg(format!("@{}", csr.display()))
                        .arg(format!("{a_url}/killed"))
                        .output()
                        .expect("curl");
                    let out = text(&output.stdout);
                    if let Some((body, code)) = out.rsplit_once('\n')
                        && code == "200"
                    {
                        acknowledged.lock().expect("lock").push(serial_of(body));
                    }
                }
            });
        }
        let acknowledged = Arc::clone(&acknowledged);
        let b = &b;
        let ws = &ws;
        scope.spawn(move || {
            std::thread::sleep(Duration::from_millis(1200));
            let _ = Command::new("kill")
                .args(["-KILL", &a_pid.to_string()])
                .status();
            let (serials, others) = issue_load(ws, b, "survivor", 2, 20);
            assert!(others.is_empty(), "the survivor answers 200: {others:?}");
            acknowledged.lock().expect("lock").extend(serials);
        });
    });
    a.kill();
    let acknowledged = acknowledged.lock().expect("lock").clone();
    let by_killed = acknowledged.len().saturating_sub(20);
    assert!(
        by_killed >= 10,
        "the killed replica acknowledged {by_killed} before it died"
    );
    for serial in &acknowledged {
        assert!(
            recorded(&b, serial),
            "acknowledged {serial} is in the store"
        );
    }
}

/// The database stopped and started again under load: 503 store_unavailable meanwhile (never
/// a hang, never a 500), then 200 again without restarting the replica.
#[test]
fn a_database_restart_is_503_then_recovers_by_itself() {
    let ws = Workspace::new();
    let identity = ws.create_identity("identity", "ec:p256", "Replica CA", None);
    // A cluster of its own: stopping the shared one would fail the tests running beside.
    let cluster_dir = ws.path("pg");
    let port = 54330 + (std::process::id() % 500) as u16;
    let cluster = |command: &str| own_cluster(command, &cluster_dir, port, "");
    let cluster_url = cluster("start");
    let url = postgres_database(&cluster_url, "restart");
    let daemon = replica(&ws, &identity, &url, "r", "");
    let other = replica(&ws, &identity, &url, "o", "");
    let csr = ws.csr("r", P256, "/CN=r.internal", &[]);
    assert_eq!(daemon.put_file("/restart", &csr, &[]).0, 200);

    // Load on both replicas for the whole stop and start; every answer is 200 or 503.
    let stop = std::sync::atomic::AtomicBool::new(false);
    let statuses = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for target in [&daemon, &other] {
            let (csr, stop, statuses) = (&csr, &stop, &statuses);
            scope.spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let (status, body) = target.put_file("/restart", csr, &[]);
                    statuses.lock().expect("lock").push((status, body));
                }
            });
        }
        std::thread::sleep(Duration::from_millis(500));
        cluster("stop");
        let (status, body) = daemon.put_file("/restart", &csr, &[]);
        assert_eq!(
            (status, error_code(&body).as_str()),
            (503, "store_unavailable"),
            "{body}"
        );
        let (status, _) = daemon.curl(
            "/certificates",
            &["-H".into(), format!("Authorization: Bearer {TOKEN}")],
        );
        assert_eq!(status, 503, "reads too");
        std::thread::sleep(Duration::from_millis(500));
        cluster("start");
        let back = Instant::now();
        loop {
            let (status, body) = daemon.put_file("/restart", &csr, &[]);
            if status == 200 {
                break;
            }
            assert_eq!(status, 503, "{body}");
            assert!(
                back.elapsed() < Duration::from_secs(15),
                "not recovered: {body}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let statuses = statuses.into_inner().expect("lock");
    for (status, body) in &statuses {
        assert!(
            *status == 200 || (*status == 503 && error_code(body) == "store_unavailable"),
            "under load, only 200 or 503 store_unavailable: {status} {body}"
        );
    }
    assert!(
        statuses.iter().any(|(s, _)| *s == 503),
        "the outage was seen"
    );
    assert!(
        statuses.last().is_some_and(|(s, _)| *s == 200),
        "and recovered from, without a restart"
    );

    // The CRL listeners are back too: a revocation on one replica reaches the other's CRL
    // (within the 30 s poll at worst; within a second when the listener reconnected).
    let (serials, _) = issue_load(&ws, &daemon, "after", 1, 1);
    let (status, body) = daemon.revoke(&serials[0], "superseded", TOKEN);
    assert_eq!(status, 200, "{body}");
    let revoked_at = Instant::now();
    loop {
        let (listed, _) = crl_of(&ws, &other, "after.crl");
        if listed.contains(&serials[0]) {
            break;
        }
        assert!(
            revoked_at.elapsed() < Duration::from_secs(3),
            "the other replica's CRL after the database restart"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(daemon);
    drop(other);
    cluster("stop");
}

/// `csrgate store copy` from a stopped daemon's sled store into PostgreSQL, a replica serving
/// it (records, revocations, the audit chain), and back into sled.
#[test]
fn a_sled_store_copied_to_postgres_and_back_serves_as_before() {
    let ws = Workspace::new();
    let identity = ws.create_identity("identity", "ec:p256", "Copied CA", None);
    let daemon = start_with_admin(&ws, &identity, TOKEN, "");
    let mut serials = Vec::new();
    for i in 0..3 {
        serials.push(issue_json(&ws, &daemon, "copied", &format!("c{i}")).0);
    }
    assert_eq!(daemon.revoke(&serials[1], "keyCompromise", TOKEN).0, 200);
    assert_eq!(daemon.stop().code(), Some(0));

    let url = postgres_database(&test_cluster(), "copy");
    let copy = |from: String, to: String| {
        let output = csrgate()
            .args(["store", "copy", "--from", &from, "--to", &to])
            .output()
            .expect("store copy");
        assert!(output.status.success(), "{}", text(&output.stderr));
        text(&output.stdout)
    };
    let data = ws.path("data");
    let said = copy(format!("sled:{}", data.display()), url.clone());
    assert!(said.contains("3 certificates (3 written now)"), "{said}");
    // Run again (as after an interruption): nothing more to write, verified again.
    let said = copy(format!("sled:{}", data.display()), url.clone());
    assert!(said.contains("3 certificates (0 written now)"), "{said}");

    let replica = replica(&ws, &identity, &url, "copied", "");
    for serial in &serials {
        assert!(recorded(&replica, serial), "{serial} copied");
    }
    let (listed, _) = crl_of(&ws, &replica, "copied.crl");
    assert!(listed.contains(&serials[1]), "the revocation came along");
    drop(replica);

    let back: PathBuf = ws.path("data-back");
    copy(url.clone(), format!("sled:{}", back.display()));
    assert_eq!(stored_certificates(&back), 3);
    let verify = csrgate()
        .args(["audit", "verify", "--data"])
        .arg(&back)
        .output()
        .expect("audit verify");
    assert!(verify.status.success(), "{}", text(&verify.stderr));
    let refused = csrgate()
        .args(["store", "copy", "--from", &url, "--to", &url])
        .output()
        .expect("store copy");
    assert_eq!(refused.status.code(), Some(78), "{}", text(&refused.stderr));
}

/// A replica that cannot reach its database at start exits 69 (systemd restarts it), before
/// binding anything; one whose URL holds a password is refused as configuration (78).
#[test]
fn an_unreachable_database_stops_the_start_with_69() {
    let ws = Workspace::new();
    let identity = ws.create_identity("identity", "ec:p256", "Replica CA", None);
    for (url, code) in [
        (
            "postgresql:///csrgate?host=/nonexistent-socket-dir&user=csrgate",
            69,
        ),
        ("postgres://csrgate:hunter2@127.0.0.1/csrgate", 78),
    ] {
        let config = ws.write(
            "unreachable.toml",
            format!("store = \"postgres\"\npostgres_url = \"{url}\"\n").as_bytes(),
        );
        let failure = Daemon::try_start(
            &identity,
            &ws.path("data"),
            &["--config", config.to_str().expect("utf8")],
            &[("CA_PASSPHRASE", PASSPHRASE)],
        )
        .err()
        .expect("no start");
        assert_eq!(failure.status.code(), Some(code), "{}", failure.log);
        assert!(!failure.log.contains(" listening "), "{}", failure.log);
        assert!(
            !failure.log.contains("hunter2"),
            "the password is not logged: {}",
            failure.log
        );
    }
}

/// PostgreSQL over TCP with TLS: `sslmode=require` encrypts and verifies the server's
/// certificate against `postgres_ca_file`; a certificate from another CA, or a URL without
/// `sslmode=require` against a server that accepts only TLS, stops the start (69).
#[test]
fn tls_to_postgres_is_required_when_asked_and_verified() {
    let ws = Workspace::new();
    let identity = ws.create_identity("identity", "ec:p256", "Replica CA", None);
    let cluster_dir = ws.path("pg-tls");
    let port = 54900 + (std::process::id() % 90) as u16;
    let cluster = |command: &str| own_cluster(command, &cluster_dir, port, "127.0.0.1");
    let socket_url = cluster("start");
    let url = postgres_database(&socket_url, "tls");
    let database = url
        .split_once("/e2e_")
        .and_then(|(_, rest)| rest.split_once('?'))
        .map(|(name, _)| format!("e2e_{name}"))
        .expect("database name");

    // A CA and a server certificate for localhost, and another CA; the server's files where
    // the cluster's user can read them.
    let pg_ca = TestCa::new(&ws, "pg-ca");
    let other_ca = TestCa::new(&ws, "pg-other-ca");
    let (server_crt, server_key) = pg_ca.issue(
        &ws,
        "pg-server",
        "/CN=localhost",
        "subjectAltName = DNS:localhost, IP:127.0.0.1\n",
    );
    std::fs::copy(&server_crt, cluster_dir.join("server.crt")).expect("server certificate");
    std::fs::copy(&server_key, cluster_dir.join("server.key")).expect("server key");
    if text(&Command::new("id").arg("-u").output().expect("id").stdout).trim() == "0" {
        let chown = Command::new("chown")
            .args(["postgres:", "server.key", "server.crt"])
            .current_dir(&cluster_dir)
            .status()
            .expect("chown");
        assert!(chown.success());
    }
    let data = cluster_dir.join("data");
    let mut conf = std::fs::read_to_string(data.join("postgresql.conf")).expect("conf");
    conf.push_str(&format!(
        "\nssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
        cluster_dir.join("server.crt").display(),
        cluster_dir.join("server.key").display()
    ));
    std::fs::write(data.join("postgresql.conf"), conf).expect("conf");
    // Over TCP, TLS only.
    std::fs::write(
        data.join("pg_hba.conf"),
        "local all all trust\nhostssl all all 127.0.0.1/32 trust\n",
    )
    .expect("hba");
    cluster("stop");
    cluster("start");

    let tcp_url = format!("postgres://csrgate@localhost:{port}/{database}");
    let ca = pg_ca.certificate.clone();
    let other_ca = other_ca.certificate.clone();
    let config = |name: &str, url: &str, ca_file: &Path| {
        ws.write(
            &format!("{name}.toml"),
            format!(
                "store = \"postgres\"\npostgres_url = \"{url}\"\npostgres_ca_file = \"{}\"\n",
                ca_file.display()
            )
            .as_bytes(),
        )
    };
    let start = |config: &Path| {
        Daemon::try_start(
            &identity,
            &ws.path("data"),
            &["--config", config.to_str().expect("utf8")],
            &[("CA_PASSPHRASE", PASSPHRASE)],
        )
    };
    let good = config("good", &format!("{tcp_url}?sslmode=require"), &ca);
    let daemon = start(&good).expect("starts over TLS");
    let csr = ws.csr("tls", P256, "/CN=tls.internal", &[]);
    assert_eq!(daemon.put_file("/overtls", &csr, &[]).0, 200);
    drop(daemon);

    for (name, url, ca_file, why) in [
        (
            "wrong-ca",
            format!("{tcp_url}?sslmode=require"),
            &other_ca,
            "certificate verify failed",
        ),
        ("plain", tcp_url.clone(), &ca, "no pg_hba.conf entry"),
    ] {
        let failure = start(&config(name, &url, ca_file))
            .err()
            .unwrap_or_else(|| panic!("{name}: started"));
        assert_eq!(failure.status.code(), Some(69), "{name}: {}", failure.log);
        assert!(failure.log.contains(why), "{name}: {}", failure.log);
    }
    cluster("stop");
}

/// `store backup` of a running sled store while it issues: a consistent snapshot (the restore
/// verifies counts and the chain against its header), restored into sled and into PostgreSQL;
/// a truncated snapshot is refused and the restore finished by running it again with the
/// whole file; an existing file is never overwritten.
#[test]
fn a_running_store_is_backed_up_consistently_and_restored_anywhere() {
    let ws = Workspace::new();
    let identity = ws.create_identity("identity", "ec:p256", "Backed-up CA", None);
    let daemon = start_with_admin(&ws, &identity, TOKEN, "");
    let mut serials = Vec::new();
    for i in 0..3 {
        serials.push(issue_json(&ws, &daemon, "backedup", &format!("b{i}")).0);
    }
    assert_eq!(daemon.revoke(&serials[0], "keyCompromise", TOKEN).0, 200);
    let snapshot = ws.path("csrgate.snapshot");
    let backup = |to: &Path| {
        csrgate()
            .args([
                "store",
                "backup",
                "--url",
                &daemon.base_url,
                "--token",
                TOKEN,
                "--to",
            ])
            .arg(to)
            .output()
            .expect("store backup")
    };
    // Issuing goes on while the snapshot is taken.
    let (output, (issued, others)) = std::thread::scope(|scope| {
        let load = scope.spawn(|| issue_load(&ws, &daemon, "during", 2, 40));
        std::thread::sleep(Duration::from_millis(100));
        let output = backup(&snapshot);
        (output, load.join().expect("load"))
    });
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(others.is_empty() && issued.len() == 40, "{others:?}");
    let again = backup(&snapshot);
    assert_eq!(again.status.code(), Some(73), "never over an existing file");
    assert_eq!(daemon.stop().code(), Some(0));

    let restore = |to: String, from: &Path| {
        csrgate()
            .args(["store", "restore", "--from"])
            .arg(from)
            .args(["--to", &to])
            .output()
            .expect("store restore")
    };
    let restored = ws.path("restored");
    let said = restore(format!("sled:{}", restored.display()), &snapshot);
    assert!(said.status.success(), "{}", text(&said.stderr));
    let count = stored_certificates(&restored);
    assert!((3..=43).contains(&count), "{count}");
    let verify = csrgate()
        .args(["audit", "verify", "--data"])
        .arg(&restored)
        .output()
        .expect("verify");
    assert!(verify.status.success(), "{}", text(&verify.stderr));

    let url = postgres_database(&test_cluster(), "restore");
    let said = restore(url.clone(), &snapshot);
    assert!(said.status.success(), "{}", text(&said.stderr));
    let replica = replica(&ws, &identity, &url, "restored", "");
    for serial in &serials {
        assert!(recorded(&replica, serial), "{serial} restored");
    }
    let (listed, _) = crl_of(&ws, &replica, "restored.crl");
    assert!(listed.contains(&serials[0]), "the revocation came along");
    drop(replica);

    // A truncated snapshot: refused, what was read kept; the whole file finishes the job.
    let whole = std::fs::read_to_string(&snapshot).expect("snapshot");
    let cut: String = whole
        .lines()
        .take(whole.lines().count() / 2)
        .map(|l| format!("{l}\n"))
        .collect();
    let truncated = ws.write("truncated.snapshot", cut.as_bytes());
    let partial = ws.path("partial");
    let said = restore(format!("sled:{}", partial.display()), &truncated);
    assert_eq!(said.status.code(), Some(65), "{}", text(&said.stderr));
    assert!(
        text(&said.stderr).contains("truncated"),
        "{}",
        text(&said.stderr)
    );
    let said = restore(format!("sled:{}", partial.display()), &snapshot);
    assert!(said.status.success(), "{}", text(&said.stderr));
    assert_eq!(stored_certificates(&partial), count);
}

/// Two replicas on one PostgreSQL store (issue 20's setup) are one ACME server: a nonce made by
/// one is accepted by the other, once; an account made through one is found through the other.
#[test]
fn replicas_share_nonces_and_accounts() {
    let ws = Workspace::new();
    let url = postgres_database(&test_cluster(), "acme");
    let identity = ws.create_identity("ca", "ec:p256", "ACME CA", None);
    let tls_ca = TestCa::new(&ws, "tls-root");
    let (chain, key) = tls_ca.server(&ws, "server", "csrgate.test", PASSPHRASE);
    let start = |name: &str| {
        let port = free_port();
        let config = ws.write(
            &format!("{name}.toml"),
            format!(
                "listen_tls = [\"127.0.0.1:{port}\"]\ntls_certificate = \"{}\"\n\
                 tls_private_key = \"{}\"\nstore = \"postgres\"\npostgres_url = \"{url}\"\n\
                 acme = true\nopen_issuance = true\n",
                chain.display(),
                key.display(),
            )
            .as_bytes(),
        );
        let daemon = Daemon::start(
            &identity,
            &ws.path(&format!("data-{name}")),
            &["--config", config.to_str().expect("utf8")],
        );
        (daemon, https(port, "/acme/directory"))
    };
    let (_a, directory_a) = start("a");
    let (_b, directory_b) = start("b");
    let mut at_a = crate::support::acme_client::AcmeClient::new(&directory_a, &tls_ca.certificate);
    let mut at_b = crate::support::acme_client::AcmeClient::new(&directory_b, &tls_ca.certificate);

    // A nonce from A, spent at B (a new account), then refused at A.
    let nonce = at_a.nonce();
    let new_account = at_b.url("newAccount");
    let body = at_b.sign(
        &new_account,
        Some(&serde_json::json!({"termsOfServiceAgreed": true})),
        Some(&nonce),
        true,
    );
    let made = at_b.post_raw(&new_account, &body, "application/jose+json");
    assert_eq!(made.status, 201, "{made:?}");
    let account_id = made
        .location
        .clone()
        .expect("Location")
        .rsplit('/')
        .next()
        .map(str::to_owned);
    let again = at_a.url("newAccount");
    let replay = at_b.sign(
        &again,
        Some(&serde_json::json!({"termsOfServiceAgreed": true})),
        Some(&nonce),
        true,
    );
    let replayed = at_a.post_raw(&again, &replay, "application/jose+json");
    assert_eq!(
        (replayed.status, replayed.problem().as_str()),
        (400, "badNonce"),
        "{replayed:?}"
    );

    // The account made at B is found at A (same id, A's URL).
    let nonce = at_a.nonce();
    let body = at_b.sign(
        &again,
        Some(&serde_json::json!({"onlyReturnExisting": true})),
        Some(&nonce),
        true,
    );
    let found = at_a.post_raw(&again, &body, "application/jose+json");
    assert_eq!(found.status, 200, "{found:?}");
    assert_eq!(
        found
            .location
            .as_deref()
            .and_then(|l| l.rsplit('/').next())
            .map(str::to_owned),
        account_id
    );
    assert!(
        found
            .location
            .as_deref()
            .is_some_and(|l| l.starts_with(&directory_a.replace("/acme/directory", "")))
    );
}
