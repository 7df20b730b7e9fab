//! Prometheus metrics (prometheus-client, OpenMetrics text): requests by route and status,
//! issuance latency, plugin calls by outcome and their latency, store flushes and their latency,
//! CRL age/size, the configuration generation. Running totals are counters (`*_total`),
//! latencies histograms. Served at `GET /metrics` to admins only.

use std::sync::Arc;
use std::time::Duration;

use csrgate_hooks::{CallObserver, CallOutcome, Hook};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    plugin: String,
    hook: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginLabels {
    plugin: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OcspLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    plugin: String,
    hook: String,
}

fn latency_histogram() -> Histogram {
    // 10 us .. ~10 s
    Histogram::new(exponential_buckets(1e-5, 3.0, 13))
}

/// Every metric of the daemon.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    issuance_seconds: Histogram,
    plugin_calls: Family<CallLabels, Counter>,
    plugin_seconds: Family<LatencyLabels, Histogram, fn() -> Histogram>,
    plugin_kv_refused: Family<PluginLabels, Counter>,
    plugin_logs_dropped: Family<PluginLabels, Counter>,
    store_flushes: Counter,
    store_flushed_writes: Counter,
    store_flush_seconds: Histogram,
    crl_age_seconds: Gauge<f64, AtomicU64>,
    crl_entries: Gauge,
    crl_bytes: Gauge,
    plugin_generation: Gauge,
    postsign_failures: Counter,
    crl_build_failures: Counter,
    ocsp_responses: Family<OcspLabels, Counter>,
    /// Serialises the scrape-time catch-up of `crl_build_failures` (a delta, added once).
    scrape: std::sync::Mutex<()>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("csrgate");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route pattern and status",
            requests.clone(),
        );
        let issuance_seconds = latency_histogram();
        registry.register(
            "issuance_seconds",
            "Time to answer a successful PUT: checks, hooks, signing and the durable write",
            issuance_seconds.clone(),
        );
        let plugin_calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "plugin_calls",
            "Plugin calls by plugin, hook and outcome (ok, denied, failed)",
            plugin_calls.clone(),
        );
        let plugin_seconds: Family<LatencyLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "plugin_call_seconds",
            "Plugin call latency (fresh instance, init and hook)",
            plugin_seconds.clone(),
        );
        let plugin_kv_refused = Family::<PluginLabels, Counter>::default();
        registry.register(
            "plugin_kv_refused",
            "Plugin key-value writes refused: per-call caps (64 writes, 256 KiB) or the plugin's kv_quota",
            plugin_kv_refused.clone(),
        );
        let plugin_logs_dropped = Family::<PluginLabels, Counter>::default();
        registry.register(
            "plugin_log_lines_dropped",
            "Plugin log lines dropped over the cap of 32 per call",
            plugin_logs_dropped.clone(),
        );
        let store_flushes = Counter::default();
        registry.register(
            "store_flushes",
            "Group-commit flushes",
            store_flushes.clone(),
        );
        let store_flushed_writes = Counter::default();
        registry.register(
            "store_flushed_writes",
            "Writes acknowledged by those flushes (batch size = writes / flushes)",
            store_flushed_writes.clone(),
        );
        let store_flush_seconds = latency_histogram();
        registry.register(
            "store_flush_seconds",
            "Time of one group-commit flush (fsync), the wait every issuance and revocation pays",
            store_flush_seconds.clone(),
        );
        let crl_age_seconds = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "crl_age_seconds",
            "Seconds since the published CRL's thisUpdate",
            crl_age_seconds.clone(),
        );
        let crl_entries = Gauge::default();
        registry.register(
            "crl_entries",
            "Revoked certificates in the published CRL",
            crl_entries.clone(),
        );
        let crl_bytes = Gauge::default();
        registry.register(
            "crl_bytes",
            "Size of the published CRL, DER",
            crl_bytes.clone(),
        );
        let plugin_generation = Gauge::default();
        registry.register(
            "plugin_set_generation",
            "Plugin set generation (1 at start, +1 per reload)",
            plugin_generation.clone(),
        );
        let postsign_failures = Counter::default();
        registry.register(
            "postsign_failures",
            "Postsign hook failures (the certificate stands)",
            postsign_failures.clone(),
        );
        let crl_build_failures = Counter::default();
        registry.register(
            "crl_build_failures",
            "CRL rebuilds that failed (the last good CRL stays published)",
            crl_build_failures.clone(),
        );
        let ocsp_responses = Family::<OcspLabels, Counter>::default();
        registry.register(
            "ocsp_responses",
            "OCSP answers by outcome: cached (no signature), signed, malformed, unauthorized (another CA), unavailable",
            ocsp_responses.clone(),
        );
        Metrics {
            registry,
            ocsp_responses,
            requests,
            issuance_seconds,
            plugin_calls,
            plugin_seconds,
            plugin_kv_refused,
            plugin_logs_dropped,
            store_flushes,
            store_flushed_writes,
            store_flush_seconds,
            crl_age_seconds,
            crl_entries,
            crl_bytes,
            plugin_generation,
            postsign_failures,
            crl_build_failures,
            scrape: std::sync::Mutex::new(()),
        }
    }
}

impl Metrics {
    pub(crate) fn count_request(&self, route: &str, code: u16) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_owned(),
                code,
            })
            .inc();
    }

    pub(crate) fn count_ocsp(&self, outcome: &'static str) {
        self.ocsp_responses
            .get_or_create(&OcspLabels { outcome })
            .inc();
    }

    pub(crate) fn count_postsign_failure(&self) {
        self.postsign_failures.inc();
    }

    /// One group-commit flush of `writes` writes that took `elapsed` (the store's observer).
    pub fn observe_flush(&self, writes: u64, elapsed: Duration) {
        self.store_flushes.inc();
        self.store_flushed_writes.inc_by(writes);
        self.store_flush_seconds.observe(elapsed.as_secs_f64());
    }

    pub(crate) fn observe_issuance(&self, elapsed: Duration) {
        self.issuance_seconds.observe(elapsed.as_secs_f64());
    }

    /// The exposition text, with the sampled values (store, CRL, plugins) read now.
    pub(crate) fn render(&self, gateway: &crate::Gateway) -> String {
        let _scrape = self.scrape.lock();
        if let Some(crl) = gateway.crl().current() {
            let age = (time::OffsetDateTime::now_utc() - crl.this_update).as_seconds_f64();
            self.crl_age_seconds.set(age);
            self.crl_entries.set(crl.entries as i64);
            self.crl_bytes.set(crl.der.len() as i64);
        }
        self.plugin_generation
            .set(gateway.generation().number() as i64);
        // The publisher keeps the running total; the counter catches up to it.
        let failures = gateway.crl().failures();
        let counted = self.crl_build_failures.get();
        if failures > counted {
            self.crl_build_failures.inc_by(failures - counted);
        }
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            return String::new();
        }
        text
    }
}

impl CallObserver for Metrics {
    fn observe(&self, plugin: &str, hook: Hook, outcome: CallOutcome, elapsed: Duration) {
        let outcome = match outcome {
            CallOutcome::Ok => "ok",
            CallOutcome::Denied => "denied",
            CallOutcome::Failed => "failed",
        };
        self.plugin_calls
            .get_or_create(&CallLabels {
                plugin: plugin.to_owned(),
                hook: hook.to_string(),
                outcome: outcome.to_owned(),
            })
            .inc();
        self.plugin_seconds
            .get_or_create(&LatencyLabels {
                plugin: plugin.to_owned(),
                hook: hook.to_string(),
            })
            .observe(elapsed.as_secs_f64());
    }

    fn limited(&self, plugin: &str, kv_refused: u64, logs_dropped: u64) {
        let labels = PluginLabels {
            plugin: plugin.to_owned(),
        };
        self.plugin_kv_refused
            .get_or_create(&labels)
            .inc_by(kv_refused);
        self.plugin_logs_dropped
            .get_or_create(&labels)
            .inc_by(logs_dropped);
    }
}

/// Shared handle: the metrics outlive plugin sets (each reload attaches the same observer).
pub type SharedMetrics = Arc<Metrics>;
