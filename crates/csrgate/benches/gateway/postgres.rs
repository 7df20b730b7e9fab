//! The PostgreSQL store under the gateway's load (`--postgres`): one replica and two replicas
//! on one database, beside sled in the same run, and cfssl with its PostgreSQL certdb. Server
//! CPU per certificate counts csrgate's processes and the database's (every backend process of
//! the cluster): a store that moves work into the database must not look cheaper for it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::crypto::CaKey;
use crate::http_load::{self, LoadReport};
use crate::servers::{self, Server};
use crate::{Figures, Options, median};

/// A throwaway cluster (tests/postgres) for the run; stopped when dropped.
pub struct Cluster {
    dir: PathBuf,
    pub url: String,
}

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/postgres");
const PORT: &str = "54391";

impl Cluster {
    pub fn start(work: &Path) -> anyhow::Result<Cluster> {
        let dir = work.join("postgres");
        let output = Command::new(SCRIPT)
            .arg("start")
            .arg(&dir)
            .arg(PORT)
            .output()?;
        if !output.status.success() {
            bail!(
                "tests/postgres start: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let url = String::from_utf8(output.stdout)?.trim().to_owned();
        Ok(Cluster { dir, url })
    }

    /// A new database; its URL (`postgresql:///NAME?host=...`) and libpq key-value form.
    pub fn database(&self, name: &str) -> anyhow::Result<(String, String)> {
        let output = Command::new("psql")
            .arg(&self.url)
            .args(["-qc", &format!("CREATE DATABASE {name}")])
            .output()?;
        if !output.status.success() {
            bail!(
                "create database: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let url = self.url.replacen("/postgres?", &format!("/{name}?"), 1);
        let keywords = format!(
            "host={} port={PORT} user=csrgate dbname={name} sslmode=disable",
            self.dir.display()
        );
        Ok((url, keywords))
    }

    /// CPU time of every process of the cluster (postmaster and its backends), so far.
    pub fn cpu_time(&self) -> anyhow::Result<Duration> {
        let pid_file = std::fs::read_to_string(self.dir.join("data/postmaster.pid"))?;
        let postmaster: u32 = pid_file.lines().next().context("pid")?.trim().parse()?;
        let mut total = Duration::ZERO;
        for entry in std::fs::read_dir("/proc")? {
            let Ok(pid) = entry?.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            let parent = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if pid == postmaster || parent == Some(postmaster) {
                // Counts children that ran during the window and are still alive (backends
                // live as long as their connection; the pools keep theirs).
                total += servers::cpu_time_of(&stat)?;
            }
        }
        Ok(total)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(SCRIPT).arg("stop").arg(&self.dir).output();
    }
}

/// Medians over runs against `servers` together (the load split between them), with the
/// database's CPU added to theirs; `database_share` is the database's part of the CPU figure.
fn measure_set(
    servers: &[&Server],
    cluster: &Cluster,
    requests: &Arc<Vec<Vec<u8>>>,
    options: &Options,
) -> anyhow::Result<(Figures, f64)> {
    let addresses: Vec<SocketAddr> = servers.iter().map(|s| s.address).collect();
    let per_server = (options.concurrency / servers.len()).max(1);
    let load = |duration: Duration| -> anyhow::Result<LoadReport> {
        let reports = std::thread::scope(|scope| {
            let handles: Vec<_> = addresses
                .iter()
                .map(|address| {
                    let requests = Arc::clone(requests);
                    scope.spawn(move || {
                        http_load::run(*address, false, requests, per_server, duration)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .map_err(|_| anyhow::anyhow!("load thread panicked"))
                })
                .collect::<anyhow::Result<Vec<_>>>()
        })?;
        let mut merged = LoadReport::default();
        for report in reports {
            let report = report?;
            merged.ok += report.ok;
            merged.failed += report.failed;
            merged.first_failure = merged.first_failure.or(report.first_failure);
            merged.latencies_us.extend(report.latencies_us);
            merged.elapsed = merged.elapsed.max(report.elapsed);
        }
        Ok(merged)
    };
    let cpu = || -> anyhow::Result<(Duration, Duration)> {
        let mut csrgate = Duration::ZERO;
        for server in servers {
            csrgate += server.cpu_time()?;
        }
        Ok((csrgate, cluster.cpu_time()?))
    };
    let warmup = load(Duration::from_secs(1))?;
    if warmup.ok == 0 {
        bail!(
            "warm-up: no 200 (first failure: {:?})",
            warmup.first_failure
        );
    }
    let mut runs = Vec::new();
    for _ in 0..options.runs {
        let (csrgate_before, database_before) = cpu()?;
        let client_before = servers::own_cpu_time()?;
        let mut report = load(Duration::from_secs_f64(options.seconds))?;
        let (csrgate_after, database_after) = cpu()?;
        let client = servers::own_cpu_time()? - client_before;
        if report.failed > 0 {
            bail!(
                "{} of {} requests failed (first: {:?})",
                report.failed,
                report.failed + report.ok,
                report.first_failure
            );
        }
        let done = report.ok.max(1) as f64;
        let database = (database_after.saturating_sub(database_before)).as_secs_f64() * 1e6 / done;
        let csrgate = (csrgate_after - csrgate_before).as_secs_f64() * 1e6 / done;
        runs.push([
            report.per_second(),
            report.latency_ms(0.5),
            report.latency_ms(0.99),
            report.latency_ms(1.0),
            csrgate + database,
            client.as_secs_f64() * 1e6 / done,
            database,
        ]);
    }
    let column = |i: usize| median(runs.iter().map(|run| run[i]).collect());
    let mut peak = 0.0f64;
    for server in servers {
        peak = peak.max(server.peak_rss_mib()?);
        if server.panics() > 0 {
            bail!("a server log mentions a panic");
        }
    }
    Ok((
        Figures {
            per_second: column(0),
            p50_ms: column(1),
            p99_ms: column(2),
            max_ms: column(3),
            server_cpu_us: column(4),
            client_cpu_us: column(5),
            peak_rss_mib: peak,
        },
        column(6),
    ))
}

/// csrgate P-256 without plugins on PostgreSQL, one replica then two, and cfssl with its
/// PostgreSQL certdb, on the CSRs and load the sled row above used; rows scaled as the others
/// (the raw baseline in µs, the cores).
pub fn measure_backends(
    binary: &Path,
    work: &Path,
    identity: &Path,
    requests: &Arc<Vec<Vec<u8>>>,
    cfssl_requests: &Arc<Vec<Vec<u8>>>,
    (baseline_us, cores): (f64, f64),
    options: &Options,
) -> anyhow::Result<()> {
    let cluster = Cluster::start(work)?;
    for replicas in [1usize, 2] {
        let (url, _) = cluster.database(&format!("bench_{replicas}"))?;
        let mut servers = Vec::new();
        for i in 0..replicas {
            let scenario = work.join(format!("postgres-{replicas}-{i}"));
            std::fs::create_dir_all(&scenario)?;
            let config = servers::csrgate_config(
                &scenario,
                identity,
                &format!("store = \"postgres\"\npostgres_url = {url:?}\n"),
            )?;
            servers.push(servers::start_csrgate(binary, &scenario, &config)?);
        }
        let refs: Vec<&Server> = servers.iter().collect();
        let label = format!("csrgate P-256 no plugins, PostgreSQL x{replicas}");
        let (figures, database) =
            measure_set(&refs, &cluster, requests, options).context(label.clone())?;
        crate::print_row(&label, &figures, baseline_us, cores);
        println!("{:<38} of which PostgreSQL {database:.1} µs/cert", "");
    }
    let (_, keywords) = cluster.database("cfssl")?;
    let schema = Command::new("psql")
        .arg(cluster.url.replacen("/postgres?", "/cfssl?", 1))
        .args(["-v", "ON_ERROR_STOP=1", "-qc", CFSSL_SCHEMA])
        .output()?;
    if !schema.status.success() {
        bail!("cfssl schema: {}", String::from_utf8_lossy(&schema.stderr));
    }
    let db_config = work.join("cfssl-db.json");
    std::fs::write(
        &db_config,
        serde_json::json!({ "driver": "postgres", "data_source": keywords }).to_string(),
    )?;
    let cfssl_work = work.join("cfssl-postgres");
    std::fs::create_dir_all(&cfssl_work)?;
    let peer = servers::start_cfssl_with(
        &cfssl_work,
        CaKey::P256,
        &["-db-config".as_ref(), db_config.as_os_str()],
    )?;
    let (figures, database) =
        measure_set(&[&peer], &cluster, cfssl_requests, options).context("cfssl with certdb")?;
    crate::print_row(
        "cfssl 1.2 P-256, PostgreSQL certdb",
        &figures,
        baseline_us,
        cores,
    );
    println!("{:<38} of which PostgreSQL {database:.1} µs/cert", "");
    let stored = Command::new("psql")
        .arg(cluster.url.replacen("/postgres?", "/cfssl?", 1))
        .args(["-tAc", "SELECT count(*) FROM certificates"])
        .output()?;
    println!(
        "{:<38} (cfssl recorded {} certificates in its certdb)",
        "",
        String::from_utf8_lossy(&stored.stdout).trim()
    );
    Ok(())
}

/// cfssl's certdb tables for PostgreSQL (its certdb/pg migration 001, the version 1.2 reads).
const CFSSL_SCHEMA: &str = "CREATE TABLE certificates (
  serial_number            bytea NOT NULL,
  authority_key_identifier bytea NOT NULL,
  ca_label                 bytea,
  status                   bytea NOT NULL,
  reason                   int,
  expiry                   timestamptz,
  revoked_at               timestamptz,
  pem                      bytea NOT NULL,
  PRIMARY KEY(serial_number, authority_key_identifier)
);
CREATE TABLE ocsp_responses (
  serial_number            bytea NOT NULL,
  authority_key_identifier bytea NOT NULL,
  body                     bytea NOT NULL,
  expiry                   timestamptz,
  PRIMARY KEY(serial_number, authority_key_identifier),
  FOREIGN KEY(serial_number, authority_key_identifier)
    REFERENCES certificates(serial_number, authority_key_identifier)
);";
