//! The floors under csrgate's figures, each measured as a server process of its own under the
//! same load: actix-web answering every PUT with a certificate-sized JSON body and doing nothing
//! else (`http`), and the same plus one durable `Store::insert_certificate` per request
//! (`http+store`). Added to the raw signature baseline, they bound from below what any gateway
//! built on these parts (actix-web, sled through csrgate-store) can reach on this machine.
//!
//! The benchmark runs itself as the floor server: with `CSRGATE_BENCH_FLOOR` set, `main` serves
//! instead of measuring, so the server's CPU is read from /proc as csrgate's is.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::{Context as _, bail};
use csrgate_store::{CertificateRecord, CertificateStatus, Store};

use crate::servers::Server;

/// Set to a [`Floor`]'s name, the benchmark serves that floor.
pub const FLOOR_ENV: &str = "CSRGATE_BENCH_FLOOR";
const DATA_ENV: &str = "CSRGATE_BENCH_FLOOR_DATA";

/// What a floor server does per request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Floor {
    /// Read the body, answer a fixed certificate-sized JSON.
    Http,
    /// The same plus one durable certificate record.
    HttpStore,
}

impl Floor {
    pub fn name(self) -> &'static str {
        match self {
            Floor::Http => "http",
            Floor::HttpStore => "http+store",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Floor::Http => "floor: actix-web answering 2 KiB, no work",
            Floor::HttpStore => "floor: the same + one durable record",
        }
    }
}

/// Starts this benchmark binary as the floor server `floor`, storing (if it does) in `work`.
pub fn start(floor: Floor, work: &Path) -> anyhow::Result<Server> {
    let log = work.join(format!("floor-{}.log", floor.name().replace('+', "-")));
    let started = Instant::now();
    let mut child = Command::new(std::env::current_exe()?)
        .env(FLOOR_ENV, floor.name())
        .env(DATA_ENV, work.join(format!("floor-data-{}", floor.name())))
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log)?)
        .spawn()?;
    let mut first = String::new();
    BufReader::new(child.stdout.take().context("floor stdout")?).read_line(&mut first)?;
    let Some(address) = first.trim().strip_prefix("listening ") else {
        let _ = child.kill();
        bail!(
            "floor server did not start: {first:?} {}",
            std::fs::read_to_string(&log)?
        );
    };
    Ok(Server::new(child, address.parse()?, started.elapsed(), log))
}

/// The floor server's `main`: serves until killed.
pub fn serve(name: &str) -> anyhow::Result<()> {
    let floor = [Floor::Http, Floor::HttpStore]
        .into_iter()
        .find(|f| f.name() == name)
        .with_context(|| format!("unknown floor {name}"))?;
    let store = match floor {
        Floor::Http => None,
        Floor::HttpStore => Some(Store::open(Path::new(
            &std::env::var(DATA_ENV).context("floor data directory")?,
        ))?),
    };
    // As large as csrgate's JSON answer for a P-256 certificate (PEM leaf, chain, serial, dates).
    let answer = Arc::new(format!("{{\"signed_x509_pem\":\"{}\"}}", "A".repeat(2_000)));
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    actix_web::rt::System::new().block_on(async move {
        let server = HttpServer::new(move || {
            let state = (store.clone(), Arc::clone(&answer));
            App::new()
                .app_data(web::Data::new(state))
                .route("/{client_hash}", web::put().to(answer_put))
        })
        .workers(workers)
        .disable_signals()
        .bind("127.0.0.1:0")?;
        println!("listening {}", server.addrs()[0]);
        server.run().await
    })?;
    Ok(())
}

type FloorState = (Option<Store>, Arc<String>);

async fn answer_put(
    state: web::Data<FloorState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let (store, answer) = state.get_ref();
    if let Some(store) = store {
        let _intent = store.write_intent();
        if let Err(error) = store.insert_certificate(&record(&path, &body)).await {
            return HttpResponse::ServiceUnavailable().body(error.to_string());
        }
    }
    HttpResponse::Ok()
        .content_type("application/json")
        .body(answer.as_str().to_owned())
}

/// A record the size of a real P-256 certificate's.
fn record(client_hash: &str, csr: &[u8]) -> CertificateRecord {
    // The daemon's own serials: their layout decides where in the store each record lands.
    let serial = csrgate_pki::generate_serial().expect("the CSPRNG answers");
    CertificateRecord {
        subject: format!("CN={serial}.internal"),
        subject_alt_names: vec![format!("DNS:{serial}.internal")],
        serial,
        client_hash: client_hash.to_owned(),
        public_key_sha1: "00".repeat(20),
        sha256_fingerprint: "00".repeat(32),
        not_before: 1_700_000_000,
        not_after: 1_700_000_000 + 90 * 86_400,
        issued_at: 1_700_000_000,
        status: CertificateStatus::Valid,
        der: csr.iter().copied().cycle().take(560).collect(),
        revocation: None,
        deleted: false,
        replaces: None,
        replaced_by: None,
    }
}
