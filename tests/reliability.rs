//! End-to-end reliability: nothing acknowledged is lost when the daemon is killed with SIGKILL
//! under load, and racing lifecycle operations on one certificate leave one consistent outcome.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::*;

const TOKEN: &str = "0123456789abcdef-reliability-token";
const ITERATIONS: usize = 20;
const CLIENTS: usize = 4;

fn bearer() -> String {
    format!("Authorization: Bearer {TOKEN}")
}

/// A daemon with admin tokens on `data`, started with the same identity every time.
fn start(ws: &Workspace, identity: &std::path::Path, data: &std::path::Path) -> Daemon {
    let tokens = ws.path("admin-tokens");
    if !tokens.exists() {
        ws.write("admin-tokens", format!("ops {TOKEN}\n").as_bytes());
    }
    let config = ws.path("csrgate.toml");
    if !config.exists() {
        ws.write(
            "csrgate.toml",
            format!("admin_tokens_file = \"{}\"\n", tokens.display()).as_bytes(),
        );
    }
    Daemon::start(
        identity,
        data,
        &["--config", config.to_str().expect("utf8")],
    )
}

/// A small deterministic generator: enough to pick kill moments without a dependency.
struct Xorshift(u64);

impl Xorshift {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

/// `csrgate audit verify` on a stopped daemon's data directory.
fn assert_audit_chain_verifies(data: &std::path::Path) {
    let audit = csrgate()
        .args(["audit", "verify"])
        .args(store_args(data))
        .output()
        .expect("audit verify");
    assert!(
        audit.status.success(),
        "audit chain: {}",
        text(&audit.stderr)
    );
}

fn serial_of(body: &str) -> Option<String> {
    let json: serde_json::Value = serde_json::from_str(body).ok()?;
    json["serial"].as_str().map(str::to_owned)
}

/// Serials listed in a PEM CRL, as openssl prints them (upper-case hex).
fn crl_serials(ws: &Workspace, daemon: &Daemon, name: &str) -> BTreeSet<String> {
    let (status, pem) = daemon.request("GET", "/crl.pem", &[], b"");
    assert_eq!(status, 200, "{pem}");
    let file = ws.write(name, pem.as_bytes());
    let output = Command::new("openssl")
        .args(["crl", "-noout", "-text", "-in"])
        .arg(&file)
        .output()
        .expect("openssl crl");
    assert!(output.status.success(), "{}", text(&output.stderr));
    text(&output.stdout)
        .lines()
        .filter_map(|line| line.trim().strip_prefix("Serial Number: "))
        .map(|serial| serial.trim().to_ascii_uppercase())
        .collect()
}

/// openssl prints serials with an even number of digits; the API without leading zeros.
fn crl_form(serial: &str) -> String {
    let upper = serial.to_ascii_uppercase();
    if upper.len() % 2 == 1 {
        format!("0{upper}")
    } else {
        upper
    }
}

#[test]
fn sigkill_under_load_loses_no_acknowledged_certificate_or_revocation() {
    let ws = Workspace::new();
    let identity = ws.create_identity("ca", "ec:p256", "Crash CA", None);
    let data = ws.path("data");
    let csr = std::fs::read(ws.csr("load", P256, "/CN=crash.internal", &[])).expect("csr");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as u64;
    let mut random = Xorshift(seed | 1);
    println!("kill moments from seed {seed}");

    let mut acknowledged: Vec<String> = Vec::new();
    let mut revoked: BTreeSet<String> = BTreeSet::new();
    let mut previous: Vec<String> = Vec::new();
    for iteration in 0..ITERATIONS {
        // The store must open every time, and hold what the last run acknowledged.
        let daemon = start(&ws, &identity, &data);
        for serial in &previous {
            let (status, body) =
                daemon.request("GET", &format!("/certificates/{serial}"), &[&bearer()], b"");
            assert_eq!(
                status, 200,
                "iteration {iteration}: acknowledged {serial} lost: {body}"
            );
        }
        // Revoke one acknowledged certificate; once answered 200 it must stay in the CRL.
        if let Some(serial) =
            acknowledged.get(random.below(acknowledged.len().max(1) as u64) as usize)
            && !revoked.contains(serial)
        {
            let (status, body) = daemon.request(
                "POST",
                &format!("/certificates/{serial}/revoke"),
                &[&bearer(), "Content-Type: application/json"],
                br#"{"reason":"keyCompromise"}"#,
            );
            assert_eq!(status, 200, "revoke {serial}: {body}");
            revoked.insert(serial.clone());
        }

        let stop = Arc::new(AtomicBool::new(false));
        let acks = Arc::new(Mutex::new(Vec::new()));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|i| {
                let (stop, acks) = (Arc::clone(&stop), Arc::clone(&acks));
                let address = daemon.address().to_owned();
                let csr = csr.clone();
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let (status, body) =
                            raw_request(&address, "PUT", &format!("/crash{i}"), &[], &csr);
                        match status {
                            200 => acks
                                .lock()
                                .expect("acks")
                                .push(serial_of(&body).expect("200 has a serial")),
                            // The daemon died mid-request: nothing was acknowledged.
                            0 => break,
                            other => panic!("unexpected status {other}: {body}"),
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(150 + random.below(600)));
        daemon.kill();
        stop.store(true, Ordering::Relaxed);
        for client in clients {
            client.join().expect("client thread");
        }
        previous = std::mem::take(&mut *acks.lock().expect("acks"));
        assert!(
            !previous.is_empty(),
            "iteration {iteration}: no request was answered before the kill"
        );
        acknowledged.extend(previous.iter().cloned());
    }

    let started = Instant::now();
    let daemon = start(&ws, &identity, &data);
    let mut found = 0usize;
    for serial in &acknowledged {
        let (status, body) =
            daemon.request("GET", &format!("/certificates/{serial}"), &[&bearer()], b"");
        assert_eq!(status, 200, "acknowledged {serial} lost: {body}");
        found += 1;
    }
    let listed = crl_serials(&ws, &daemon, "final.crl.pem");
    for serial in &revoked {
        assert!(
            listed.contains(&crl_form(serial)),
            "revoked {serial} missing from the CRL {listed:?}"
        );
    }
    let log = daemon.log();
    assert!(!log.contains("panicked"), "{log}");
    assert!(daemon.stop().success());
    assert_audit_chain_verifies(&data);
    println!(
        "crash durability: {ITERATIONS} SIGKILLs, acknowledged {}, found {found}, lost {}, revoked {} all in the CRL ({:.1} s to check)",
        acknowledged.len(),
        acknowledged.len() - found,
        revoked.len(),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn racing_revoke_renew_and_rotate_on_one_serial_leave_one_outcome() {
    let ws = Workspace::new();
    let identity = ws.create_identity("ca", "ec:p256", "Race CA", None);
    let data = ws.path("data");
    let daemon = start(&ws, &identity, &data);
    let csr = std::fs::read(ws.csr("race", P256, "/CN=race.internal", &[])).expect("csr");
    let mut outcomes = Vec::new();
    for round in 0..5 {
        let (status, body) = daemon.request("PUT", "/racer", &[], &csr);
        assert_eq!(status, 200, "{body}");
        let serial = serial_of(&body).expect("serial");
        // 12 clients at once: 4 revoke, 4 renew, 4 rotate (PUT ?replaces=).
        let barrier = Arc::new(std::sync::Barrier::new(12));
        let racers: Vec<_> = (0..12)
            .map(|i| {
                let barrier = Arc::clone(&barrier);
                let address = daemon.address().to_owned();
                let serial = serial.clone();
                let csr = csr.clone();
                std::thread::spawn(move || {
                    let auth = bearer();
                    let json = "Content-Type: application/json";
                    barrier.wait();
                    let (kind, (status, body)) = match i % 3 {
                        0 => (
                            "revoke",
                            raw_request(
                                &address,
                                "POST",
                                &format!("/certificates/{serial}/revoke"),
                                &[&auth, json],
                                br#"{"reason":"superseded"}"#,
                            ),
                        ),
                        1 => (
                            "renew",
                            raw_request(
                                &address,
                                "POST",
                                &format!("/certificates/{serial}/renew"),
                                &[&auth, json],
                                b"{}",
                            ),
                        ),
                        _ => (
                            "rotate",
                            raw_request(
                                &address,
                                "PUT",
                                &format!("/racer?replaces={serial}"),
                                &[],
                                &csr,
                            ),
                        ),
                    };
                    (kind, status, body)
                })
            })
            .collect();
        let results: Vec<(&str, u16, String)> = racers
            .into_iter()
            .map(|racer| racer.join().expect("racer"))
            .collect();
        for (kind, status, body) in &results {
            assert!(
                *status == 200 || *status == 409,
                "round {round}: {kind} answered {status}: {body}"
            );
            if *status == 409 {
                let code = error_code(body);
                assert!(
                    code == "already_revoked" || code == "already_replaced",
                    "round {round}: {kind}: {code}"
                );
            }
        }
        let winners: Vec<_> = results
            .iter()
            .filter(|(_, status, _)| *status == 200)
            .collect();
        let (status, body) =
            daemon.request("GET", &format!("/certificates/{serial}"), &[&bearer()], b"");
        assert_eq!(status, 200, "{body}");
        let record: serde_json::Value = serde_json::from_str(&body).expect("json");
        // One history: at most one successor (renewal or rotation) and at most one revocation
        // (a revoke, or the rotation's "superseded"), and the record says which.
        let count = |kind: &str| winners.iter().filter(|(k, _, _)| *k == kind).count();
        let (revokes, renews, rotates) = (count("revoke"), count("renew"), count("rotate"));
        assert!(
            renews + rotates <= 1 && revokes + rotates <= 1,
            "round {round}: {revokes} revocations, {renews} renewals, {rotates} rotations: {results:?}"
        );
        assert_eq!(
            record["status"] == "revoked",
            revokes + rotates == 1,
            "round {round}: {record}"
        );
        if let Some((_, _, body)) = winners.iter().find(|(k, _, _)| *k != "revoke") {
            let successor = serial_of(body).expect("successor serial");
            assert_eq!(
                record["replaced_by"],
                successor.as_str(),
                "round {round}: {record}"
            );
        } else {
            assert!(record["replaced_by"].is_null(), "round {round}: {record}");
        }
        outcomes.push(
            winners
                .iter()
                .map(|(kind, _, _)| *kind)
                .collect::<Vec<_>>()
                .join("+"),
        );
    }
    println!("race outcomes per round: {outcomes:?}");
    let log = daemon.log();
    assert!(!log.contains("panicked"), "{log}");
    assert!(daemon.stop().success());
    assert_audit_chain_verifies(&data);
}
