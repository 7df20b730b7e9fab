//! Benchmark (not a test): what recording one certificate costs, against sled itself.
//!
//! - `Store::insert_certificate` (a pending entry, six plain inserts over 6 trees including the
//!   audit entry, the pending entry removed, group commit), 32 writers on 2 runtime threads, as
//!   the daemon runs it;
//! - the same record bytes with plain `Tree::insert` into one tree and a flush per 10, the least
//!   sled can do for a durable record (baseline);
//! - the same 7 trees with plain inserts, one writer, no audit chain, no group commit;
//! - `Store::insert_certificate` again, into a store already holding 100,000 records.
//!
//! Prints CPU µs per record (this process, /proc/self/stat), KiB written (/proc/self/io) and
//! records per second of wall time; medians of 3 runs of 6,000 records.
//! Run: cargo bench -p csrgate-store --bench insert

use std::sync::atomic::{AtomicU64, Ordering};

use csrgate_store::{CertificateRecord, CertificateStatus, Serial, Store};

const RECORDS: usize = 6_000;
const WRITERS: usize = 32;
/// Records written before the last row is measured.
const GROWN_STORE_RECORDS: usize = 100_000;

/// A serial laid out as `csrgate_pki::generate_serial` lays them out (this crate does not depend
/// on csrgate-pki): `40`, a 48-bit issuance time, 104 bits that differ per serial. Where the keys
/// land in the store is part of what an insert costs (docs/decisions/0012-time-first-serials.md).
fn serial_like_csrgate_pki() -> Serial {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    // ~8 certificates per millisecond, as at the daemon's rate.
    let millis = 1_795_000_000_000 + n / 8;
    let spread = u128::from(n + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835) >> 24;
    format!("40{millis:012x}{spread:026x}")
        .parse()
        .expect("40 hex digits")
}

fn record(i: usize) -> CertificateRecord {
    CertificateRecord {
        serial: serial_like_csrgate_pki(),
        client_hash: format!("client{}", i % 8),
        subject: format!("CN=bench-{i}.internal"),
        subject_alt_names: vec![format!("DNS:bench-{i}.internal")],
        public_key_sha1: "00".repeat(20),
        sha256_fingerprint: "00".repeat(32),
        not_before: 1_700_000_000,
        not_after: 1_700_000_000 + 90 * 86_400 + i as i64,
        issued_at: 1_700_000_000,
        status: CertificateStatus::Valid,
        der: vec![0x30; 520],
        revocation: None,
        deleted: false,
        replaces: None,
        replaced_by: None,
    }
}

/// (CPU seconds, bytes written) of this process so far.
fn usage() -> (f64, u64) {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("stat");
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("stat format")
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    let io = std::fs::read_to_string("/proc/self/io").expect("io");
    let written = io
        .lines()
        .find_map(|line| line.strip_prefix("write_bytes: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    (ticks as f64 / 100.0, written)
}

/// One run of one way of recording, per record.
struct Sample {
    cpu_us: f64,
    kib_written: f64,
    /// Records per second of wall time: what the 32 writers waited for shows here, not in CPU.
    per_second: f64,
}

fn measure(run: impl FnOnce()) -> Sample {
    let (cpu0, written0) = usage();
    let started = std::time::Instant::now();
    run();
    let wall = started.elapsed().as_secs_f64();
    let (cpu1, written1) = usage();
    Sample {
        cpu_us: (cpu1 - cpu0) * 1e6 / RECORDS as f64,
        kib_written: (written1 - written0) as f64 / 1024.0 / RECORDS as f64,
        per_second: RECORDS as f64 / wall,
    }
}

/// `count` records through `Store::insert_certificate` from [`WRITERS`] concurrent writers.
fn write_records(runtime: &tokio::runtime::Runtime, store: &Store, count: usize) {
    runtime.block_on(async {
        let tasks: Vec<_> = (0..WRITERS)
            .map(|w| {
                let store = store.clone();
                tokio::spawn(async move {
                    for i in (w..count).step_by(WRITERS) {
                        let _intent = store.write_intent();
                        store.insert_certificate(&record(i)).await.expect("insert");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("writer");
        }
    });
}

fn store_inserts(runtime: &tokio::runtime::Runtime) -> Sample {
    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::open(dir.path()).expect("store");
    measure(|| write_records(runtime, &store, RECORDS))
}

fn sled_inserts(trees: usize) -> Sample {
    let dir = tempfile::tempdir().expect("tmp");
    let db = sled::Config::new()
        .path(dir.path())
        .mode(sled::Mode::HighThroughput)
        .flush_every_ms(None)
        .open()
        .expect("sled");
    let opened: Vec<sled::Tree> = (0..trees)
        .map(|t| db.open_tree(format!("t{t}")).expect("tree"))
        .collect();
    measure(|| {
        for i in 0..RECORDS {
            let record = record(i);
            let value = serde_json::to_vec(&record).expect("json");
            opened[0]
                .insert(record.serial.to_string().as_bytes(), value)
                .expect("insert");
            for (t, tree) in opened.iter().enumerate().skip(1) {
                let mut key = (i as u64).to_be_bytes().to_vec();
                key.extend_from_slice(record.serial.to_string().as_bytes());
                let value: &[u8] = if t == 5 { &[b'a'; 300] } else { &[] };
                tree.insert(key, value).expect("insert");
            }
            if i % 10 == 9 {
                db.flush().expect("flush");
            }
        }
        db.flush().expect("flush");
    })
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut rows: Vec<(&str, Vec<Sample>)> = vec![
        (
            "sled: 1 tree, plain insert, flush per 10 (baseline)",
            Vec::new(),
        ),
        ("sled: 7 trees, plain inserts, flush per 10", Vec::new()),
        (
            "Store::insert_certificate (pending entry + plain inserts, audit, group commit)",
            Vec::new(),
        ),
    ];
    for _ in 0..3 {
        rows[0].1.push(sled_inserts(1));
        rows[1].1.push(sled_inserts(7));
        rows[2].1.push(store_inserts(&runtime));
    }
    // A store that has outgrown sled's page cache (~1.6 KiB per record against 32 MiB): what an
    // insert costs must not grow with the store (docs/decisions/0012-time-first-serials.md).
    let grown = tempfile::tempdir().expect("tmp");
    let store = Store::open(grown.path()).expect("store");
    write_records(&runtime, &store, GROWN_STORE_RECORDS);
    let label =
        format!("the same, into a store of {GROWN_STORE_RECORDS} records (3 runs in a row)");
    let grown_runs = (0..3)
        .map(|_| measure(|| write_records(&runtime, &store, RECORDS)))
        .collect();
    rows.push((&label, grown_runs));
    println!("recording one certificate ({RECORDS} records, medians of 3 runs):");
    let baseline = median(rows[0].1.iter().map(|r| r.cpu_us).collect());
    for (label, runs) in &rows {
        let cpu = median(runs.iter().map(|r| r.cpu_us).collect());
        let kib = median(runs.iter().map(|r| r.kib_written).collect());
        let rate = median(runs.iter().map(|r| r.per_second).collect());
        println!(
            "  {label:<78} {cpu:>7.1} µs CPU ({:>4.1}x baseline), {kib:>5.1} KiB written, {rate:>6.0} records/s",
            cpu / baseline
        );
    }
}
