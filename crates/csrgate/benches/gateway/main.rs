//! Benchmark (not a test): certificates per second through the real daemon, against the crypto
//! it cannot avoid and against a peer, in one run.
//!
//! 1. Baseline: verify a CSR and sign a certificate with openssl in this process, one core.
//! 2. For each scenario (CA P-256 / RSA-2048; hooks none / 3 no-op Rust plugins / the example
//!    chain / one Python plugin), start the release `csrgate serve` with a fresh identity and
//!    store (durable, the default), send pre-generated CSRs over C keep-alive connections, and
//!    print certs/s, latency, server CPU per certificate and peak RSS, with ratios to the baseline.
//! 3. The same CSRs and load against `cfssl serve` (Debian's golang-cfssl), side by side.
//! 4. EST and ACME (issue 21) beside a PUT over the same TLS listener.
//! 5. The cached CRL and OCSP (a cached answer; a nonce, signed per request) under the same
//!    load, against one raw P-256 signature; start-up to READY with 5 precompiled plugins.
//!
//! Run: cargo bench -p csrgate --bench gateway [-- --seconds 5 --runs 3 --concurrency 32]
//! (`--only "P-256 no plugins"` runs the scenarios whose label contains that text, for A/B runs
//! while profiling; it skips the peer and start-up. `GATEWAY_BENCH_BINARY=path` measures
//! another build of the daemon.)
//! Micro-benchmarks of one plugin call and of CRL builds are `plugin_call` (csrgate-hooks) and
//! `crl_build` (csrgate-server); BENCHMARKS.md runs all three.

mod acme;
// The tests' ACME client, shared; the benchmark uses part of it.
#[allow(dead_code)]
#[path = "../../../../tests/support/acme_client.rs"]
mod acme_client;
mod crypto;
mod est;
mod floors;
mod http_load;
mod large_store;
mod ocsp;
mod postgres;
mod servers;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::crypto::CaKey;
use crate::floors::Floor;
use crate::servers::Server;

const BINARY: &str = env!("CARGO_BIN_EXE_csrgate");
const CLIENT_HASHES: usize = 8;
const CSRS: usize = 256;

/// Printed for `--help`, and after an unknown argument.
const USAGE: &str = "\
usage: cargo bench -p csrgate --bench gateway [-- OPTIONS]
  --seconds S       length of each measured run (default 5)
  --runs N          runs per scenario; medians are printed (default 3)
  --concurrency C   keep-alive connections of the load generator (default 32)
  --no-peer         skip cfssl
  --only TEXT       only the scenarios and floors whose label contains TEXT (implies --no-peer)
  --large-store N   also a sled store of N certificates against a fresh one (start-up, rate,
                    memory, bytes on disk per certificate)
  --postgres        also P-256 no plugins on PostgreSQL (one and two replicas) and cfssl with
                    its PostgreSQL certdb, on a throwaway cluster (tests/postgres)
environment: GATEWAY_BENCH_BINARY=/path/to/csrgate measures another build of the daemon";

/// Command-line knobs; `--bench` (added by cargo) is ignored.
#[derive(Debug)]
pub(crate) struct Options {
    pub(crate) seconds: f64,
    pub(crate) runs: usize,
    pub(crate) concurrency: usize,
    peer: bool,
    only: Option<String>,
    postgres: bool,
    large_store: Option<usize>,
}

impl Options {
    fn parse() -> anyhow::Result<Options> {
        let mut options = Options {
            seconds: 5.0,
            runs: 3,
            concurrency: 32,
            peer: true,
            only: None,
            postgres: false,
            large_store: None,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
            match arg.as_str() {
                "--seconds" => options.seconds = value()?.parse()?,
                "--runs" => options.runs = value()?.parse()?,
                "--concurrency" => options.concurrency = value()?.parse()?,
                "--no-peer" => options.peer = false,
                "--postgres" => options.postgres = true,
                "--large-store" => options.large_store = Some(value()?.parse()?),
                "--only" => {
                    options.only = Some(value()?);
                    options.peer = false;
                }
                "--bench" => {}
                "--help" | "-h" => {
                    println!("{USAGE}");
                    std::process::exit(0);
                }
                other => bail!("unknown argument {other}\n{USAGE}"),
            }
        }
        Ok(options)
    }
}

/// The hook configurations measured.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Hooks {
    None,
    ThreeNoop,
    ExampleChain,
    Python,
}

impl Hooks {
    fn label(self) -> &'static str {
        match self {
            Hooks::None => "no plugins",
            Hooks::ThreeNoop => "3 no-op (authorize)",
            Hooks::ExampleChain => "example chain (4)",
            Hooks::Python => "1 Python (authorize)",
        }
    }

    fn toml(self) -> String {
        let clients: Vec<String> = (0..CLIENT_HASHES)
            .map(|i| format!("\"bench{i}\""))
            .collect();
        let clients = format!("clients = [{}]", clients.join(", "));
        match self {
            Hooks::None => String::new(),
            Hooks::ThreeNoop => (0..3)
                .map(|i| plugin(&format!("noop{i}"), &component("noop"), "authorize", "", ""))
                .collect(),
            Hooks::ExampleChain => example_chain(&clients),
            Hooks::Python => plugin(
                "python-allowlist",
                &csrgate_test_plugins::python_allowlist(),
                "authorize",
                "memory = \"128MiB\"\ndeadline = \"2s\"\n",
                &clients,
            ),
        }
    }
}

fn component(name: &str) -> PathBuf {
    csrgate_test_plugins::component(name)
}

fn example_chain(clients: &str) -> String {
    [
        plugin(
            "allow",
            &component("allow_clients"),
            "authorize",
            "",
            clients,
        ),
        plugin(
            "sans",
            &component("san_policy"),
            "authorize",
            "",
            "dns_suffixes = [\"internal\"]\nip_networks = [\"10.0.0.0/8\"]",
        ),
        plugin(
            "cdp",
            &component("cdp_aia"),
            "presign",
            "",
            "crl_url = \"http://ca.example.internal/crl\"\nocsp_url = \"http://ocsp.example.internal\"",
        ),
        plugin(
            "ledger",
            &component("fingerprint_ledger"),
            "postsign",
            "",
            "",
        ),
    ]
    .concat()
}

fn plugin(name: &str, path: &Path, hook: &str, extra: &str, config: &str) -> String {
    format!(
        "\n[[plugins]]\nname = \"{name}\"\npath = {:?}\nhooks = [\"{hook}\"]\n{extra}[plugins.config]\n{config}\n",
        path.display().to_string()
    )
}

/// Medians over the runs of one scenario.
#[derive(Debug)]
pub(crate) struct Figures {
    pub(crate) per_second: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
    pub(crate) server_cpu_us: f64,
    pub(crate) client_cpu_us: f64,
    pub(crate) peak_rss_mib: f64,
}

pub(crate) fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Warm-up, then `runs` bounded runs; medians of each figure.
pub(crate) fn measure(
    server: &Server,
    requests: &Arc<Vec<Vec<u8>>>,
    options: &Options,
) -> anyhow::Result<Figures> {
    let duration = Duration::from_secs_f64(options.seconds);
    let warmup = http_load::run(
        server.address,
        server.tls,
        Arc::clone(requests),
        options.concurrency,
        Duration::from_secs(1),
    )?;
    if warmup.ok == 0 {
        bail!(
            "warm-up: no 200 at all (first failure: {:?})",
            warmup.first_failure
        );
    }
    let mut runs = Vec::new();
    for _ in 0..options.runs {
        let server_before = server.cpu_time()?;
        let client_before = servers::own_cpu_time()?;
        let mut report = http_load::run(
            server.address,
            server.tls,
            Arc::clone(requests),
            options.concurrency,
            duration,
        )?;
        let server_cpu = server.cpu_time()? - server_before;
        let client_cpu = servers::own_cpu_time()? - client_before;
        if report.failed > 0 {
            bail!(
                "{} of {} requests failed (first: {:?})",
                report.failed,
                report.failed + report.ok,
                report.first_failure
            );
        }
        let done = report.ok.max(1) as f64;
        runs.push([
            report.per_second(),
            report.latency_ms(0.5),
            report.latency_ms(0.99),
            report.latency_ms(1.0),
            server_cpu.as_secs_f64() * 1e6 / done,
            client_cpu.as_secs_f64() * 1e6 / done,
        ]);
    }
    let column = |i: usize| median(runs.iter().map(|run| run[i]).collect());
    if server.panics() > 0 {
        bail!("the server log mentions a panic");
    }
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

/// Per-scenario line: figures and their ratios to the baseline.
pub(crate) fn print_row(label: &str, figures: &Figures, baseline_us: f64, cores: f64) {
    let ceiling = cores * 1e6 / baseline_us;
    println!(
        "{label:<38} {:>8.0} /s ({:>4.0}% of ceiling)  p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>6.1} ms  server CPU {:>6.1} µs/cert ({:>4.2}x baseline)  client CPU {:>5.1} µs  peak RSS {:>5.1} MiB",
        figures.per_second,
        100.0 * figures.per_second / ceiling,
        figures.p50_ms,
        figures.p99_ms,
        figures.max_ms,
        figures.server_cpu_us,
        figures.server_cpu_us / baseline_us,
        figures.client_cpu_us,
        figures.peak_rss_mib,
    );
}

/// OCSP under the load: kept answers, signed answers (nonce), and `cfssl ocspserve` on the
/// same certificates and requests (always: the OCSP rows have no meaning without it).
fn measure_ocsp(
    server: &Server,
    load: &ocsp::OcspLoad,
    scenario: &Path,
    identity: &Path,
    options: &Options,
) -> anyhow::Result<()> {
    let signature_us = crypto::raw_p256_signature_us()?;
    for (label, requests) in [
        ("  POST /ocsp (cached: no nonce)", &load.cached),
        ("  POST /ocsp (nonce: signed each)", &load.with_nonce),
    ] {
        let figures = measure(server, requests, options).context(label)?;
        print_request_row(label, &figures, Some(signature_us));
    }
    match ocsp::start_cfssl_ocspserve(scenario, identity, &load.leaves) {
        Ok(peer) => {
            let figures = measure(&peer, &load.cached, options).context("cfssl ocspserve")?;
            print_request_row(
                "  cfssl ocspserve (pre-signed)",
                &figures,
                Some(signature_us),
            );
        }
        Err(error) => println!("cfssl ocspserve: not measured: {error:#}"),
    }
    Ok(())
}

/// A row for a request path other than issuance; `signature_us`: one raw P-256 signature, in
/// the same run, for paths that sign.
fn print_request_row(label: &str, figures: &Figures, signature_us: Option<f64>) {
    let against = signature_us.map_or(String::new(), |us| {
        format!(
            " ({:.2}x one raw P-256 signature, {us:.1} µs)",
            figures.server_cpu_us / us
        )
    });
    println!(
        "{label:<38} {:>8.0} /s  p50 {:>6.2} ms  p99 {:>6.2} ms  server CPU {:>6.1} µs/request{against}",
        figures.per_second, figures.p50_ms, figures.p99_ms, figures.server_cpu_us
    );
}

fn csrgate_requests(csrs: &[Vec<u8>]) -> Arc<Vec<Vec<u8>>> {
    Arc::new(
        csrs.iter()
            .enumerate()
            .map(|(i, csr)| {
                let path = format!("/bench{}", i % CLIENT_HASHES);
                http_load::request("PUT", &path, "application/pkcs10", csr)
            })
            .collect(),
    )
}

fn cfssl_requests(csrs: &[Vec<u8>]) -> anyhow::Result<Arc<Vec<Vec<u8>>>> {
    csrs.iter()
        .map(|csr| {
            let body = serde_json::json!({ "certificate_request": String::from_utf8_lossy(csr) });
            Ok(http_load::request(
                "POST",
                "/api/v1/cfssl/sign",
                "application/json",
                &serde_json::to_vec(&body)?,
            ))
        })
        .collect::<anyhow::Result<Vec<_>>>()
        .map(Arc::new)
}

fn main() -> anyhow::Result<()> {
    if let Ok(floor) = std::env::var(floors::FLOOR_ENV) {
        return floors::serve(&floor);
    }
    let options = Options::parse()?;
    // The daemon measured: this build's, or `GATEWAY_BENCH_BINARY` (to compare two builds; not
    // `CSRGATE_*`, which the daemon would read as configuration).
    let binary = std::env::var_os("GATEWAY_BENCH_BINARY")
        .map_or_else(|| PathBuf::from(BINARY), PathBuf::from);
    let cores = std::thread::available_parallelism().map_or(1, usize::from) as f64;
    let work = tempfile::tempdir()?;
    let csrs = crypto::client_csrs(CSRS)?;
    println!(
        "csrgate gateway benchmark: {cores} cores, C={}, {} runs x {} s (medians), {} P-256 client CSRs, release build",
        options.concurrency, options.runs, options.seconds, CSRS
    );
    println!(
        "ratios are to the raw baseline; ceiling = cores x 1e6 / raw µs (every core doing nothing but signatures)\n"
    );

    let mut baselines = Vec::new();
    for ca in [CaKey::P256, CaKey::Rsa2048] {
        let us = crypto::raw_signatures_us(ca)?;
        let x509 = crypto::x509_api_us(ca, &csrs)?;
        println!(
            "baseline, CA {:<8} raw: verify P-256 + sign {us:>6.1} µs/cert on one core ({:>6.0}/s per core, ceiling {:>6.0}/s); openssl X509 API path {x509:>6.1} µs ({:.2}x raw)",
            ca.label(),
            1e6 / us,
            cores * 1e6 / us,
            x509 / us
        );
        baselines.push((ca, us));
    }
    println!();

    let csrgate_load = csrgate_requests(&csrs);
    let selected = |label: &str| {
        options
            .only
            .as_ref()
            .is_none_or(|only| label.contains(only))
    };
    let floors: Vec<Floor> = [Floor::Http, Floor::HttpStore]
        .into_iter()
        .filter(|floor| selected(floor.label()))
        .collect();
    if !floors.is_empty() {
        for floor in floors {
            let server = floors::start(floor, work.path())?;
            let figures = measure(&server, &csrgate_load, &options).context(floor.label())?;
            print_row(floor.label(), &figures, baselines[0].1, cores);
        }
        println!(
            "  (a gateway on these parts spends at least the http+store floor plus the raw signatures per certificate)\n"
        );
    }
    let mut none_cpu = None;
    for (ca, baseline_us) in &baselines {
        let identity = work
            .path()
            .join(format!("identity-{}", ca.identity_flag().replace(':', "-")));
        servers::create_identity(&binary, &identity, *ca)?;
        let scenarios: &[Hooks] = match ca {
            CaKey::P256 => &[
                Hooks::None,
                Hooks::ThreeNoop,
                Hooks::ExampleChain,
                Hooks::Python,
            ],
            CaKey::Rsa2048 => &[Hooks::None, Hooks::ThreeNoop],
        };
        for hooks in scenarios {
            let label = format!("csrgate {} {}", ca.label(), hooks.label());
            if !selected(&label) {
                continue;
            }
            let scenario = work.path().join(format!(
                "{}-{hooks:?}",
                ca.identity_flag().replace(':', "-")
            ));
            std::fs::create_dir_all(&scenario)?;
            let config = servers::csrgate_config(&scenario, &identity, &hooks.toml())?;
            let server = servers::start_csrgate(&binary, &scenario, &config)?;
            let figures = measure(&server, &csrgate_load, &options).context(label.clone())?;
            print_row(&label, &figures, *baseline_us, cores);
            match hooks {
                Hooks::None => none_cpu = Some(figures.server_cpu_us),
                Hooks::ThreeNoop => {
                    if let Some(none) = none_cpu {
                        println!(
                            "{:<38} +{:.1} µs server CPU per certificate over no plugins",
                            "  3 no-op plugins cost",
                            figures.server_cpu_us - none
                        );
                    }
                }
                _ => {}
            }
            if *ca == CaKey::P256 && *hooks == Hooks::None {
                let crl = Arc::new(vec![http_load::request(
                    "GET",
                    "/crl.pem",
                    "text/plain",
                    b"",
                )]);
                let figures = measure(&server, &crl, &options).context("cached CRL")?;
                print_request_row("  GET /crl.pem (cached)", &figures, None);
                // A build from before the responder (an A/B against an older main) has no
                // /ocsp: its OCSP rows are skipped, the rest of the run stands.
                if let Some(count) = options.large_store {
                    large_store::compare(
                        &binary,
                        work.path(),
                        &identity,
                        &csrgate_load,
                        (*baseline_us, cores),
                        count,
                        &options,
                    )
                    .context("large store")?;
                }
                if options.postgres {
                    postgres::measure_backends(
                        &binary,
                        work.path(),
                        &identity,
                        &csrgate_load,
                        &cfssl_requests(&csrs)?,
                        (*baseline_us, cores),
                        &options,
                    )
                    .context("PostgreSQL")?;
                }
                match ocsp::requests(
                    server.address,
                    &identity.join("ca.cert.pem"),
                    &csrs,
                    &scenario,
                ) {
                    Ok(load) => measure_ocsp(&server, &load, &scenario, &identity, &options)?,
                    Err(error) => println!("  OCSP: not measured: {error:#}"),
                }
                // A build from before EST (an A/B against an older main) refuses the key: its
                // EST rows are skipped, the rest of the run stands.
                if let Err(error) = est::measure_est(
                    &binary,
                    work.path(),
                    &identity,
                    &csrs,
                    (*baseline_us, cores),
                    &options,
                ) {
                    println!("  EST: not measured: {error:#}");
                }
            }
        }
        if options.peer {
            match servers::start_cfssl(work.path(), *ca) {
                Ok(peer) => {
                    let figures = measure(&peer, &cfssl_requests(&csrs)?, &options)
                        .with_context(|| format!("cfssl {}", ca.label()))?;
                    print_row(
                        &format!("cfssl 1.2 {} (stores nothing, no hooks)", ca.label()),
                        &figures,
                        *baseline_us,
                        cores,
                    );
                }
                Err(error) => println!("cfssl {}: not measured: {error:#}", ca.label()),
            }
        }
        println!();
    }

    if options.only.is_none() {
        startup(&binary, &work.path().join("startup"))?;
    }
    Ok(())
}

/// Start-up to READY with 5 precompiled plugins: a first start compiles them into the cache,
/// then three starts are timed.
fn startup(binary: &Path, work: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(work)?;
    let identity = work.join("identity");
    servers::create_identity(binary, &identity, CaKey::P256)?;
    let clients = "clients = [\"bench0\"]";
    let plugins = format!(
        "{}{}",
        example_chain(clients),
        plugin("noop", &component("noop"), "authorize", "", "")
    );
    let config = servers::csrgate_config(work, &identity, &plugins)?;
    let cold = servers::start_csrgate(binary, work, &config)?.ready_after;
    let mut warm = Vec::new();
    for _ in 0..3 {
        warm.push(
            servers::start_csrgate(binary, work, &config)?
                .ready_after
                .as_secs_f64()
                * 1e3,
        );
    }
    println!(
        "start-up to READY, 5 plugins: first start (compiles) {:.0} ms; precompiled, median of 3: {:.0} ms",
        cold.as_secs_f64() * 1e3,
        median(warm)
    );
    Ok(())
}
