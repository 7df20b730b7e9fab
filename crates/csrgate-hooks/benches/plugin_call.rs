//! Micro-benchmark (not a test): what plugin calls cost. Prints medians of repeated batches, as a
//! ratio against the same run's baseline (the stage with no plugins), for:
//! - one authorize call on the `noop` component (fresh store + instance + init + hook);
//! - a whole request's hook stages with 3 `noop` plugins attached to authorize, presign and
//!   postsign (9 calls) and with 3 attached to authorize only (3 calls).
//!
//! Run: cargo bench -p csrgate-hooks --bench plugin_call

use std::sync::Arc;
use std::time::{Duration, Instant};

use csrgate_hooks::model::{
    CertificateTemplate, KeyAlgorithm, NameAttribute, SignedCertificate, SigningRequest,
};
use csrgate_hooks::{Hook, HookEngine, MemoryKv, PluginSet, PluginSpec};

const BATCH: usize = 2_000;
const BATCHES: usize = 7;

fn request() -> SigningRequest {
    SigningRequest {
        client_hash: "abc123".into(),
        public_key_sha1: "00".repeat(20),
        key_algorithm: KeyAlgorithm::EcP256,
        key_bits: 256,
        subject: vec![NameAttribute {
            oid: "2.5.4.3".into(),
            value: "bench".into(),
        }],
        subject_alt_names: Vec::new(),
        requested_extensions: Vec::new(),
        csr_der: vec![0x30; 300],
        via: csrgate_hooks::model::Via::Put,
    }
}

fn template() -> CertificateTemplate {
    CertificateTemplate {
        subject: vec![NameAttribute {
            oid: "2.5.4.3".into(),
            value: "bench".into(),
        }],
        subject_alt_names: Vec::new(),
        not_before: 0,
        not_after: 86_400,
        key_usage: Vec::new(),
        extended_key_usage: Vec::new(),
        crl_distribution_points: Vec::new(),
        ocsp_urls: Vec::new(),
        ca_issuer_urls: Vec::new(),
        extra_extensions: Vec::new(),
    }
}

fn certificate() -> SignedCertificate {
    SignedCertificate {
        client_hash: "abc123".into(),
        serial: "01".into(),
        sha256_fingerprint: "00".repeat(32),
        not_before: 0,
        not_after: 86_400,
        der: vec![0x30; 500],
    }
}

async fn set_of(engine: &HookEngine, count: usize, hooks: &[Hook]) -> PluginSet {
    let specs: Vec<PluginSpec> = (0..count)
        .map(|i| PluginSpec {
            name: format!("noop{i}"),
            path: csrgate_test_plugins::component("noop"),
            hooks: hooks.to_vec(),
            config_json: "{}".into(),
            deadline: Duration::from_millis(50),
            memory_bytes: 32 << 20,
            kv_quota_bytes: csrgate_hooks::DEFAULT_KV_QUOTA_BYTES,
        })
        .collect();
    PluginSet::load(engine, &specs, Arc::new(MemoryKv::default()))
        .await
        .expect("load")
}

async fn request_stages(set: &PluginSet) {
    let request = request();
    set.authorize(&request).await.expect("authorize");
    set.presign(&request, template(), &|_| Ok(()))
        .await
        .expect("presign");
    assert!(set.postsign(&certificate()).await.is_empty());
}

/// Median over batches of the per-iteration wall time, in microseconds.
async fn median_us(set: &PluginSet) -> f64 {
    let mut per_iteration = Vec::with_capacity(BATCHES);
    request_stages(set).await; // warm-up
    for _ in 0..BATCHES {
        let started = Instant::now();
        for _ in 0..BATCH {
            request_stages(set).await;
        }
        per_iteration.push(started.elapsed().as_secs_f64() * 1e6 / BATCH as f64);
    }
    per_iteration.sort_by(|a, b| a.total_cmp(b));
    per_iteration[BATCHES / 2]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let engine = HookEngine::new(None).expect("engine");
        let none = PluginSet::empty();
        let one_authorize = set_of(&engine, 1, &[Hook::Authorize]).await;
        let three_authorize = set_of(&engine, 3, &[Hook::Authorize]).await;
        let three_all = set_of(&engine, 3, &[Hook::Authorize, Hook::Presign, Hook::Postsign]).await;

        let baseline = median_us(&none).await;
        let one = median_us(&one_authorize).await;
        let three = median_us(&three_authorize).await;
        let nine = median_us(&three_all).await;
        println!("plugin call cost, medians of {BATCHES} batches of {BATCH} requests (single thread)");
        println!("  no plugins (baseline)                      {baseline:8.2} us/request");
        println!("  1 noop, authorize                          {one:8.2} us/request  (+{:.2} us, {:.1}x baseline)", one - baseline, one / baseline);
        println!("  3 noop, authorize                          {three:8.2} us/request  (+{:.2} us; {:.2} us per call)", three - baseline, (three - baseline) / 3.0);
        println!("  3 noop, authorize+presign+postsign (9 calls) {nine:6.2} us/request  (+{:.2} us; {:.2} us per call)", nine - baseline, (nine - baseline) / 9.0);
    });
}
