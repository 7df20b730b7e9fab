//! A sled store of N certificates against a fresh one (`--large-store N`): start-up to READY,
//! certificates/s and server CPU under the same load, peak RSS, and bytes on disk per
//! certificate. The large store is filled through the store's own API (as the daemon writes,
//! time-first serials, group commit), not over HTTP, so a million records take a minute.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context as _, bail};
use csrgate_store::{CertificateRecord, CertificateStatus, Store};

use crate::servers;
use crate::{Options, measure, print_row};

/// Writers filling the store at once (as many requests as the load generator keeps open).
const WRITERS: usize = 32;

pub fn compare(
    binary: &Path,
    work: &Path,
    identity: &Path,
    requests: &Arc<Vec<Vec<u8>>>,
    (baseline_us, cores): (f64, f64),
    count: usize,
    options: &Options,
) -> anyhow::Result<()> {
    for (label, records) in [("fresh sled store", 0), ("sled store of", count)] {
        let scenario = work.join(format!("large-{records}"));
        std::fs::create_dir_all(&scenario)?;
        if records > 0 {
            let started = Instant::now();
            fill(&scenario.join("data"), records)?;
            println!(
                "  filled {records} records through the store API in {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
        let config = servers::csrgate_config(&scenario, identity, "")?;
        let server = servers::start_csrgate(binary, &scenario, &config)?;
        let ready = server.ready_after;
        let figures = measure(&server, requests, options)?;
        let label = if records > 0 {
            format!("csrgate P-256, {label} {records}")
        } else {
            format!("csrgate P-256, {label}")
        };
        print_row(&label, &figures, baseline_us, cores);
        drop(server);
        let stored = stored_certificates(binary, &scenario.join("data"))?;
        let bytes = disk_bytes(&scenario.join("data").join("sled"))?;
        println!(
            "{:<38} start-up to READY {:.0} ms; {stored} certificates, {:.0} bytes on disk each ({:.1} MiB)",
            "",
            ready.as_secs_f64() * 1e3,
            bytes as f64 / stored.max(1) as f64,
            bytes as f64 / (1 << 20) as f64
        );
        let _ = std::fs::remove_dir_all(&scenario);
    }
    Ok(())
}

/// `records` certificates in a new store at `data`, written by 32 concurrent writers.
fn fill(data: &Path, records: usize) -> anyhow::Result<()> {
    let store = Store::open(data)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let next = Arc::new(AtomicUsize::new(0));
    let progress = indicatif::ProgressBar::new(records as u64);
    runtime.block_on(async {
        let mut writers = Vec::new();
        for _ in 0..WRITERS {
            let (store, next, progress) = (store.clone(), Arc::clone(&next), progress.clone());
            writers.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= records {
                        return Ok::<(), csrgate_store::StoreError>(());
                    }
                    store.insert_certificate(&record(i)).await?;
                    progress.inc(1);
                }
            }));
        }
        for writer in writers {
            writer.await.context("writer")??;
        }
        store.flush().await?;
        anyhow::Ok(())
    })?;
    progress.finish_and_clear();
    Ok(())
}

/// A record shaped as the daemon writes them: a time-first serial (as csrgate-pki lays them
/// out: `40`, 48 bits of milliseconds, 104 bits that differ), a P-256 leaf's size of DER.
fn record(i: usize) -> CertificateRecord {
    let millis = 1_795_000_000_000u64 + (i as u64) / 8;
    let spread =
        u128::from(i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835) >> 24;
    CertificateRecord {
        serial: format!("40{millis:012x}{spread:026x}")
            .parse()
            .expect("40 hex digits"),
        client_hash: format!("bench{}", i % 8),
        subject: format!("CN=filled-{i}.internal"),
        subject_alt_names: vec![format!("DNS:filled-{i}.internal")],
        public_key_sha1: format!("{:040x}", i),
        sha256_fingerprint: format!("{:064x}", i),
        not_before: 1_795_000_000,
        not_after: 1_795_000_000 + 90 * 86_400 + (i as i64 % 86_400),
        issued_at: 1_795_000_000,
        status: CertificateStatus::Valid,
        der: vec![0x30; 560],
        revocation: None,
        deleted: false,
        replaces: None,
        replaced_by: None,
    }
}

fn stored_certificates(binary: &Path, data: &Path) -> anyhow::Result<u64> {
    let output = std::process::Command::new(binary)
        .args(["store", "stats", "--data"])
        .arg(data)
        .output()?;
    if !output.status.success() {
        bail!("store stats: {}", String::from_utf8_lossy(&output.stderr));
    }
    let value: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    value["certificates"].as_u64().context("count")
}

/// Bytes of the files under `dir`.
fn disk_bytes(dir: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    let mut dirs = vec![dir.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                dirs.push(entry.path());
            } else {
                total += meta.len();
            }
        }
    }
    Ok(total)
}
