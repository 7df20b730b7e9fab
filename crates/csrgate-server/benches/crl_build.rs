//! Benchmark (not a test): building and signing the CRL from the store, for 10,000 and 100,000
//! revoked certificates, the way a revocation does it (read the revoked entries, sign, publish).
//! Prints medians of 5 builds, and the same run's baseline of one bare P-256 signature.
//!
//! Run: cargo bench -p csrgate-server --bench crl_build

use std::time::Instant;

use csrgate_pki::{
    DistinguishedName, Identity, IdentityRequest, KeySpec, Passphrase, Serial, ValidityPeriod,
};
use csrgate_server::CrlPublisher;
use csrgate_store::{CertificateRecord, CertificateStatus, Store};

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
    let dir = tempfile::tempdir().expect("tmp");
    let identity = Identity::create(
        &dir.path().join("ca"),
        &IdentityRequest {
            subject: DistinguishedName::from_fields(&[("CN", "CRL bench CA")]).expect("dn"),
            validity: ValidityPeriod::days(3650),
            key: KeySpec::EcP256,
            path_len: None,
        },
        &Passphrase::new("bench".into()).expect("pass"),
        None,
    )
    .expect("identity");
    let store = Store::open(&dir.path().join("data")).expect("store");
    let publisher = CrlPublisher::new(ValidityPeriod::days(7));
    let now = time::OffsetDateTime::now_utc().unix_timestamp();

    let baseline = {
        let started = Instant::now();
        let entries = Vec::new();
        for _ in 0..100 {
            identity
                .sign_crl(
                    &entries,
                    1,
                    time::OffsetDateTime::now_utc(),
                    time::OffsetDateTime::now_utc() + time::Duration::days(1),
                )
                .expect("sign");
        }
        started.elapsed().as_secs_f64() * 1e3 / 100.0
    };
    println!("baseline: empty CRL (one P-256 signature) {baseline:.3} ms");

    let mut revoked = 0;
    for target in [10_000usize, 100_000] {
        runtime.block_on(async {
            let fill = Instant::now();
            // Concurrent writers share group commits; sequential ones would wait for an fsync each.
            while revoked < target {
                let batch = (target - revoked).min(1000);
                let mut tasks = Vec::with_capacity(batch);
                for _ in 0..batch {
                    let store = store.clone();
                    tasks.push(tokio::spawn(async move {
                        let serial = Serial::generate().expect("serial").to_string();
                        let record = CertificateRecord {
                            serial: serial.clone(),
                            client_hash: "bench".into(),
                            subject: "CN=bench".into(),
                            subject_alt_names: Vec::new(),
                            public_key_sha1: "00".repeat(20),
                            sha256_fingerprint: "00".repeat(32),
                            not_before: now,
                            not_after: now + 86_400 * 90,
                            issued_at: now,
                            status: CertificateStatus::Valid,
                            der: vec![0x30; 400],
                            revocation: None,
                            deleted: false,
                            replaces: None,
                            replaced_by: None,
                        };
                        store.insert_certificate(&record).await.expect("insert");
                        store.revoke(&serial, "keyCompromise", None, "bench", now).await.expect("revoke");
                    }));
                }
                for task in tasks {
                    task.await.expect("task");
                }
                revoked += batch;
            }
            println!("filled the store to {target} revocations in {:.1} s", fill.elapsed().as_secs_f64());
            let mut samples = Vec::new();
            let mut size = 0;
            for _ in 0..5 {
                let started = Instant::now();
                publisher.rebuild(&identity, &store).await.expect("rebuild");
                samples.push(started.elapsed().as_secs_f64() * 1e3);
                size = publisher.current().map_or(0, |crl| crl.der.len());
            }
            let ms = median(samples);
            println!(
                "CRL of {target} entries: {ms:.1} ms median (read + sign + publish), {:.1} MB DER, {:.0}x the bare signature",
                size as f64 / 1e6,
                ms / baseline
            );
        });
    }
}
