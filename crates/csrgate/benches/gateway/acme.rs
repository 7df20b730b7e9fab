//! The ACME row (issue 21): full issuances through the EST daemon's TLS listener — newOrder
//! (the account's authorization for its name validated once before, and reused, as Let's
//! Encrypt does), finalize, certificate download — beside the PUT and EST rows of the same
//! daemon and run. Each of `concurrency` threads is one ACME client with its own account and
//! keep-alive connection (the shared test client, `tests/support/acme_client.rs`).

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use openssl::hash::MessageDigest;
use openssl::x509::X509Req;
use openssl::x509::extension::SubjectAlternativeName;
use serde_json::json;

use crate::acme_client::{AcmeClient, b64, http01_responder};
use crate::servers::{self, Server};
use crate::{Figures, Options, median};

/// The http-01 responder's listener, bound before the daemon starts (its port goes into the
/// daemon's `acme_http01_port`), and the key authorizations it serves.
pub struct Responder {
    pub port: u16,
    answers: Arc<Mutex<Vec<(String, String)>>>,
}

impl Responder {
    pub fn start() -> anyhow::Result<Responder> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let answers = Arc::new(Mutex::new(Vec::new()));
        http01_responder(listener, Arc::clone(&answers));
        Ok(Responder { port, answers })
    }
}

/// One client, its account registered and `name` validated; what it finalizes with.
struct Client {
    acme: AcmeClient,
    csr: String,
}

/// A P-256 request for `name` alone (the order's one identifier), DER.
fn csr_for(name: &str) -> anyhow::Result<Vec<u8>> {
    let key = crate::crypto::CaKey::P256.generate()?;
    let mut request = X509Req::builder()?;
    request.set_pubkey(&key)?;
    let mut extensions = openssl::stack::Stack::new()?;
    let context = request.x509v3_context(None);
    extensions.push(SubjectAlternativeName::new().dns(name).build(&context)?)?;
    request.add_extensions(&extensions)?;
    request.sign(&key, MessageDigest::sha256())?;
    Ok(request.build().to_der()?)
}

/// Registers an account for `name`, validates it over http-01, returns the client.
fn prepared(directory: &str, name: &str, responder: &Responder) -> anyhow::Result<Client> {
    let mut acme = AcmeClient::unverified(directory);
    acme.register();
    let order = acme.post(
        &acme.url("newOrder"),
        Some(&json!({"identifiers": [{"type": "dns", "value": name}]})),
    );
    let authz_url = order.json()["authorizations"][0]
        .as_str()
        .context("no authorization")?
        .to_owned();
    let authz = acme.post(&authz_url, None).json();
    let challenge = authz["challenges"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["type"] == "http-01"))
        .context("no http-01 challenge")?
        .clone();
    let token = challenge["token"].as_str().context("token")?.to_owned();
    let answer = format!("{token}.{}", acme.thumbprint());
    responder
        .answers
        .lock()
        .map_err(|_| anyhow::anyhow!("responder lock"))?
        .push((token, answer));
    let validated = acme.post(challenge["url"].as_str().context("url")?, Some(&json!({})));
    if validated.json()["status"] != "valid" {
        bail!("http-01 for {name} failed: {}", validated.body);
    }
    let csr = csr_for(name)?;
    Ok(Client {
        acme,
        csr: b64(&csr),
    })
}

/// One issuance: newOrder (ready at once), finalize, download.
fn issue(client: &mut Client, name: &str) -> anyhow::Result<()> {
    let acme = &mut client.acme;
    let order = acme.post(
        &acme.url("newOrder"),
        Some(&json!({"identifiers": [{"type": "dns", "value": name}]})),
    );
    let order = order.json();
    if order["status"] != "ready" {
        bail!("the order is not ready: {order}");
    }
    let finalize = order["finalize"].as_str().context("finalize")?;
    let done = acme.post(finalize, Some(&json!({"csr": client.csr})));
    let done = done.json();
    let certificate = done["certificate"]
        .as_str()
        .with_context(|| format!("finalize: {done}"))?;
    let pem = acme.post(certificate, None);
    if pem.status != 200 || !pem.body.contains("BEGIN CERTIFICATE") {
        bail!("download: {} {}", pem.status, pem.body);
    }
    Ok(())
}

/// The clients, each with the name it orders.
type Pool = Vec<(String, Client)>;

/// Every client issues in a loop for `length`; the pool back, and each issuance's latency (ms).
fn round(pool: Pool, length: Duration) -> anyhow::Result<(Pool, Vec<f64>)> {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let workers: Vec<_> = pool
        .into_iter()
        .map(|(name, mut client)| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut latencies = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let begun = Instant::now();
                    issue(&mut client, &name)?;
                    latencies.push(begun.elapsed().as_secs_f64() * 1e3);
                }
                Ok::<_, anyhow::Error>(((name, client), latencies))
            })
        })
        .collect();
    std::thread::sleep(length.saturating_sub(started.elapsed()));
    stop.store(true, Ordering::Relaxed);
    let mut back = Vec::new();
    let mut latencies = Vec::new();
    for worker in workers {
        let (client, mut done) = worker
            .join()
            .map_err(|_| anyhow::anyhow!("an ACME client thread panicked"))??;
        back.push(client);
        latencies.append(&mut done);
    }
    Ok((back, latencies))
}

/// Full issuances per second over `options.concurrency` clients: a 1 s warm-up, then
/// `options.runs` runs; medians.
pub fn measure_acme(
    server: &Server,
    port: u16,
    responder: &Responder,
    options: &Options,
) -> anyhow::Result<Figures> {
    let directory = format!("https://127.0.0.1:{port}/acme/directory");
    let mut prepared_clients = Vec::with_capacity(options.concurrency);
    for i in 0..options.concurrency {
        let name = format!("acme{i}.bench.test");
        prepared_clients.push((name.clone(), prepared(&directory, &name, responder)?));
    }
    let mut pool: Pool = prepared_clients;
    (pool, _) = round(pool, Duration::from_secs(1))?;
    let mut runs = Vec::new();
    for _ in 0..options.runs {
        let server_before = server.cpu_time()?;
        let client_before = servers::own_cpu_time()?;
        let started = Instant::now();
        let (back, mut latencies) = round(pool, Duration::from_secs_f64(options.seconds))?;
        pool = back;
        let elapsed = started.elapsed().as_secs_f64();
        let server_cpu = server.cpu_time()? - server_before;
        let client_cpu = servers::own_cpu_time()? - client_before;
        latencies.sort_by(f64::total_cmp);
        let done = latencies.len().max(1) as f64;
        let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
        runs.push([
            latencies.len() as f64 / elapsed,
            at(0.5),
            at(0.99),
            at(1.0),
            server_cpu.as_secs_f64() * 1e6 / done,
            client_cpu.as_secs_f64() * 1e6 / done,
        ]);
    }
    if server.panics() > 0 {
        bail!("the server log mentions a panic");
    }
    let column = |i: usize| median(runs.iter().map(|run| run[i]).collect());
    Ok(Figures {
        per_second: column(0),
        p50_ms: column(1),
        p99_ms: column(2),
        max_ms: column(3),
        server_cpu_us: column(4),
        client_cpu_us: column(5),
        peak_rss_mib: server.peak_rss_mib()?,
    })
}
