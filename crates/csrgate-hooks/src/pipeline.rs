//! A loaded plugin set and the three hook stages over it. Every call gets a fresh `Store` and
//! instance (nothing leaks between requests), a deadline counted in epoch ticks and a memory
//! limit; a trap, deadline or limit fails the call closed and the daemon carries on.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};
use wasmtime::Store;

use crate::bindings::{v0_1, v0_2};
use crate::engine::TICK;
use crate::host_api::{CallState, KvStore};
use crate::model::{CertificateTemplate, SignedCertificate, SigningRequest};
use crate::spec::{Hook, MAX_MEMORY_BYTES, PluginSpec};
use crate::{HookEngine, HookError, compile_cache};

/// The answer of the authorize stage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthorizeOutcome {
    /// Every authorize plugin allowed (or there are none).
    Allowed,
    /// The first plugin that denied, and its reason.
    Denied {
        /// Plugin name.
        plugin: String,
        /// The plugin's reason, for the client.
        reason: String,
    },
}

/// What a plugin author can do about an `init` that grows linear memory
/// ([`PluginInfo::init_grows_memory`]).
pub const INIT_GROWS_MEMORY_ADVICE: &str =
    "allocate less in init, or link with more initial memory (see plugins/README.md)";

/// What was loaded, for logs and `csrgate plugin check`.
#[derive(Clone, Debug)]
pub struct PluginInfo {
    /// Name from the configuration.
    pub name: String,
    /// Path of the component.
    pub path: PathBuf,
    /// Hooks it is attached to.
    pub hooks: Vec<Hook>,
    /// SHA-256 of the wasm, hex.
    pub sha256: String,
    /// True when compiled code came from the on-disk cache.
    pub from_cache: bool,
    /// Per-call deadline.
    pub deadline: Duration,
    /// Memory limit in bytes.
    pub memory_bytes: usize,
    /// The contract version the component was linked against, e.g. "0.1.0".
    pub contract: &'static str,
    /// `init` grew a linear memory past its initial size: since every request starts a fresh
    /// instance, every request pays for that grow again (see plugins/README.md).
    pub init_grows_memory: bool,
}

struct LoadedPlugin {
    name: Arc<str>,
    info: PluginInfo,
    pre: Pre,
    config_json: String,
    deadline_ticks: u64,
    kv_quota: u64,
}

/// How a plugin call ended, for metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallOutcome {
    /// Returned normally (allowed, a template, or observed).
    Ok,
    /// An authorize plugin denied.
    Denied,
    /// Trapped, timed out, hit its memory limit, refused or returned an invalid template.
    Failed,
}

/// Receives one report per plugin call (the daemon's metrics).
pub trait CallObserver: Send + Sync {
    /// One call of `plugin` at `hook` ended with `outcome` after `elapsed`.
    fn observe(&self, plugin: &str, hook: Hook, outcome: CallOutcome, elapsed: Duration);

    /// One call of `plugin` had `kv_refused` key-value writes refused (per-call caps, quota)
    /// and `logs_dropped` log lines dropped over the per-call cap. Called only when either is
    /// non-zero.
    fn limited(&self, plugin: &str, kv_refused: u64, logs_dropped: u64) {
        let _ = (plugin, kv_refused, logs_dropped);
    }
}

/// The plugins of one configuration generation, in configuration order.
pub struct PluginSet {
    engine: Option<HookEngine>,
    kv: Option<Arc<dyn KvStore>>,
    plugins: Vec<LoadedPlugin>,
    observer: Option<Arc<dyn CallObserver>>,
}

impl std::fmt::Debug for PluginSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.plugins.iter().map(|p| &p.info))
            .finish()
    }
}

struct Call {
    store: Store<CallState>,
    instance: Instance,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

/// A loaded component, by the contract version whose world it exports.
enum Pre {
    V0_2(v0_2::PluginPre<CallState>),
    V0_1(v0_1::PluginPre<CallState>),
}

/// An instance, by contract version.
enum Instance {
    V0_2(v0_2::Plugin),
    V0_1(v0_1::Plugin),
}

/// A request in each contract version's types, converted once per request and only for the
/// versions its plugins use.
struct WitRequest<'a> {
    model: &'a SigningRequest,
    v0_2: std::sync::OnceLock<v0_2::wit::SigningRequest>,
    v0_1: std::sync::OnceLock<v0_1::wit::SigningRequest>,
}

impl<'a> WitRequest<'a> {
    fn new(model: &'a SigningRequest) -> Self {
        WitRequest {
            model,
            v0_2: std::sync::OnceLock::new(),
            v0_1: std::sync::OnceLock::new(),
        }
    }

    fn v0_2(&self) -> &v0_2::wit::SigningRequest {
        self.v0_2.get_or_init(|| self.model.into())
    }

    fn v0_1(&self) -> &v0_1::wit::SigningRequest {
        self.v0_1.get_or_init(|| self.model.into())
    }
}

impl PluginSet {
    /// A set without plugins: authorize allows, presign passes the template through.
    pub fn empty() -> Self {
        PluginSet {
            engine: None,
            kv: None,
            plugins: Vec::new(),
            observer: None,
        }
    }

    /// Loads every plugin of `specs`: reads and compiles (or loads from cache) each component,
    /// links it against the host, and calls `init` once with its configuration. Any failure
    /// refuses the whole set, so a broken configuration never replaces a working one.
    pub async fn load(
        engine: &HookEngine,
        specs: &[PluginSpec],
        kv: Arc<dyn KvStore>,
    ) -> Result<Self, HookError> {
        let mut plugins = Vec::with_capacity(specs.len());
        let mut compile_ms = Vec::with_capacity(specs.len());
        for spec in specs {
            let load_error = |reason: String| HookError::Load {
                plugin: spec.name.clone(),
                reason,
            };
            if plugins.iter().any(|p: &LoadedPlugin| *p.name == *spec.name) {
                return Err(load_error("the name is used twice".into()));
            }
            if spec.hooks.is_empty() {
                return Err(load_error("attached to no hook (set hooks = [...])".into()));
            }
            if spec.memory_bytes == 0 || spec.memory_bytes > MAX_MEMORY_BYTES {
                return Err(load_error(format!(
                    "memory must be 1 byte to {} MiB",
                    MAX_MEMORY_BYTES >> 20
                )));
            }
            if spec.deadline.is_zero() || spec.deadline > Duration::from_secs(10) {
                return Err(load_error("deadline must be between 1 ms and 10 s".into()));
            }
            let wasm = std::fs::read(&spec.path)
                .map_err(|e| load_error(format!("cannot read {}: {e}", spec.path.display())))?;
            let started = Instant::now();
            let (component, from_cache) = compile_cache::component(
                &engine.inner.engine,
                &wasm,
                engine.inner.cache_dir.as_deref(),
            )
            .map_err(|e| load_error(format!("not a usable component: {e:#}")))?;
            let instance_pre = engine
                .inner
                .linker
                .instantiate_pre(&component)
                .map_err(|e| load_error(format!("does not fit csrgate:hooks@{} (or imports more than the host offers): {e:#}", v0_2::CONTRACT_VERSION)))?;
            // The newest contract whose world the component exports.
            let (pre, contract) = match v0_2::PluginPre::new(instance_pre.clone()) {
                Ok(pre) => (Pre::V0_2(pre), v0_2::CONTRACT_VERSION),
                Err(newest) => match v0_1::PluginPre::new(instance_pre) {
                    Ok(pre) => (Pre::V0_1(pre), v0_1::CONTRACT_VERSION),
                    Err(_) => {
                        return Err(load_error(format!(
                            "does not export the csrgate:hooks@{} plugin world (nor @{}): {newest:#}",
                            v0_2::CONTRACT_VERSION,
                            v0_1::CONTRACT_VERSION
                        )));
                    }
                },
            };
            let deadline_ticks = (spec.deadline.as_nanos() / TICK.as_nanos()) as u64 + 1;
            let plugin = LoadedPlugin {
                name: Arc::from(spec.name.as_str()),
                info: PluginInfo {
                    name: spec.name.clone(),
                    path: spec.path.clone(),
                    hooks: spec.hooks.clone(),
                    sha256: hex::encode(Sha256::digest(&wasm)),
                    from_cache,
                    deadline: spec.deadline,
                    memory_bytes: spec.memory_bytes,
                    contract,
                    init_grows_memory: false,
                },
                pre,
                config_json: spec.config_json.clone(),
                deadline_ticks,
                kv_quota: spec.kv_quota_bytes,
            };
            compile_ms.push(started.elapsed().as_millis() as u64);
            plugins.push(plugin);
        }
        let mut set = PluginSet {
            engine: Some(engine.clone()),
            kv: Some(kv),
            plugins,
            observer: None,
        };
        // Run `init` once per plugin so a configuration the plugin refuses is a load error.
        for index in 0..set.plugins.len() {
            let plugin = &set.plugins[index];
            let call = set.start(plugin).await.map_err(|e| HookError::Load {
                plugin: plugin.info.name.clone(),
                reason: match e {
                    HookError::Failed { reason, .. } => reason,
                    other => other.to_string(),
                },
            })?;
            let grows = call.store.data().limits.grew_memory();
            if grows {
                tracing::warn!(
                    plugin = plugin.info.name,
                    "init grows linear memory, so every request pays for the grow again: \
                     {INIT_GROWS_MEMORY_ADVICE}"
                );
            }
            set.plugins[index].info.init_grows_memory = grows;
        }
        // Logged only now that every plugin's `init` accepted its configuration.
        for (plugin, load_ms) in set.plugins.iter().zip(compile_ms) {
            tracing::info!(
                plugin = plugin.info.name,
                hooks = ?plugin.info.hooks,
                from_cache = plugin.info.from_cache,
                load_ms,
                "plugin loaded"
            );
        }
        Ok(set)
    }

    /// Reports every call to `observer` from now on.
    pub fn with_observer(mut self, observer: Arc<dyn CallObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    fn report(&self, plugin: &LoadedPlugin, hook: Hook, outcome: CallOutcome, started: Instant) {
        if let Some(observer) = &self.observer {
            observer.observe(&plugin.name, hook, outcome, started.elapsed());
        }
    }

    /// What was loaded, in order.
    pub fn plugins(&self) -> Vec<PluginInfo> {
        self.plugins.iter().map(|p| p.info.clone()).collect()
    }

    /// True when no plugin is loaded.
    pub fn is_empty(&self) -> bool {
        self.plugins.is_empty()
    }

    /// True when at least one plugin is attached to the authorize hook (it can refuse requests).
    pub fn has_authorize(&self) -> bool {
        self.attached(Hook::Authorize).next().is_some()
    }

    fn attached(&self, hook: Hook) -> impl Iterator<Item = &LoadedPlugin> {
        self.plugins
            .iter()
            .filter(move |p| p.info.hooks.contains(&hook))
    }

    /// Instantiates `plugin` in a fresh store and runs its `init`. The deadline, set before
    /// instantiation, covers instantiation, `init` and the hook together.
    async fn start(&self, plugin: &LoadedPlugin) -> Result<Call, HookError> {
        let failed = |reason: String| HookError::Failed {
            plugin: plugin.info.name.clone(),
            reason,
        };
        let (Some(engine), Some(kv)) = (&self.engine, &self.kv) else {
            return Err(failed("no engine".into()));
        };
        let permit = Arc::clone(&engine.inner.permits)
            .acquire_owned()
            .await
            .map_err(|_| failed("the plugin engine is shutting down".into()))?;
        let mut store = Store::new(
            &engine.inner.engine,
            CallState::new(
                Arc::clone(&plugin.name),
                Arc::clone(kv),
                plugin.kv_quota,
                plugin.info.memory_bytes,
            ),
        );
        store.limiter(|state| &mut state.limits);
        store.set_epoch_deadline(plugin.deadline_ticks);
        store.epoch_deadline_trap();
        let init = |e: wasmtime::Error| failed(describe(&e, plugin));
        let refused = |reason| failed(format!("init refused its configuration: {reason}"));
        let instance = match &plugin.pre {
            Pre::V0_2(pre) => {
                let instance = pre.instantiate_async(&mut store).await.map_err(init)?;
                instance
                    .call_init(&mut store, &plugin.config_json)
                    .await
                    .map_err(init)?
                    .map_err(refused)?;
                Instance::V0_2(instance)
            }
            Pre::V0_1(pre) => {
                let instance = pre.instantiate_async(&mut store).await.map_err(init)?;
                instance
                    .call_init(&mut store, &plugin.config_json)
                    .await
                    .map_err(init)?
                    .map_err(refused)?;
                Instance::V0_1(instance)
            }
        };
        Ok(Call {
            store,
            instance,
            _permit: permit,
        })
    }

    /// Runs the authorize plugins in order; the first denial wins.
    pub async fn authorize(&self, request: &SigningRequest) -> Result<AuthorizeOutcome, HookError> {
        let request = WitRequest::new(request);
        for plugin in self.attached(Hook::Authorize) {
            if let Some(reason) = self.authorize_with(plugin, &request).await? {
                return Ok(AuthorizeOutcome::Denied {
                    plugin: plugin.info.name.clone(),
                    reason,
                });
            }
        }
        Ok(AuthorizeOutcome::Allowed)
    }

    /// Runs every authorize plugin, also after a denial, and returns each one's decision in
    /// order: `Ok(None)` allowed, `Ok(Some(reason))` denied, `Err` failed. For
    /// `csrgate plugin run`, which shows every plugin's decision; requests use [`Self::authorize`].
    pub async fn authorize_each(
        &self,
        request: &SigningRequest,
    ) -> Vec<(String, Result<Option<String>, HookError>)> {
        let request = WitRequest::new(request);
        let mut decisions = Vec::new();
        for plugin in self.attached(Hook::Authorize) {
            let decision = self.authorize_with(plugin, &request).await;
            decisions.push((plugin.info.name.clone(), decision));
        }
        decisions
    }

    /// One authorize call in a fresh instance: `None` allowed, `Some(reason)` denied.
    async fn authorize_with(
        &self,
        plugin: &LoadedPlugin,
        request: &WitRequest<'_>,
    ) -> Result<Option<String>, HookError> {
        let started = Instant::now();
        let outcome = async {
            let mut call = self.start(plugin).await?;
            let store = &mut call.store;
            // The denial's reason, or None to allow.
            let returned = match &call.instance {
                Instance::V0_2(instance) => instance
                    .call_authorize(&mut *store, request.v0_2())
                    .await
                    .map(|decision| match decision {
                        v0_2::wit::Decision::Deny(reason) => Some(reason),
                        v0_2::wit::Decision::Allow => None,
                    }),
                Instance::V0_1(instance) => instance
                    .call_authorize(&mut *store, request.v0_1())
                    .await
                    .map(|decision| match decision {
                        v0_1::wit::Decision::Deny(reason) => Some(reason),
                        v0_1::wit::Decision::Allow => None,
                    }),
            }
            .map_err(|e| failed(plugin, &e));
            self.settle(plugin, &mut call, returned).await
        }
        .await;
        let decision = match outcome {
            Ok(decision) => decision,
            Err(error) => {
                self.report(plugin, Hook::Authorize, CallOutcome::Failed, started);
                return Err(error);
            }
        };
        let verdict = if decision.is_some() {
            CallOutcome::Denied
        } else {
            CallOutcome::Ok
        };
        self.report(plugin, Hook::Authorize, verdict, started);
        tracing::debug!(
            plugin = &*plugin.name,
            elapsed_us = started.elapsed().as_micros() as u64,
            "authorize"
        );
        Ok(decision)
    }

    /// Threads `template` through the presign plugins in order. `check` is the host's validation
    /// of a template; it runs after every plugin so that a bad result names its plugin.
    pub async fn presign(
        &self,
        request: &SigningRequest,
        template: CertificateTemplate,
        check: &(dyn Fn(&CertificateTemplate) -> Result<(), String> + Sync),
    ) -> Result<CertificateTemplate, HookError> {
        let mut template = template;
        let request = WitRequest::new(request);
        for plugin in self.attached(Hook::Presign) {
            let started = Instant::now();
            let outcome = self.presign_one(plugin, &request, &template, check).await;
            let next = match outcome {
                Ok(next) => {
                    self.report(plugin, Hook::Presign, CallOutcome::Ok, started);
                    next
                }
                Err(error) => {
                    self.report(plugin, Hook::Presign, CallOutcome::Failed, started);
                    return Err(error);
                }
            };
            template = next;
        }
        Ok(template)
    }

    async fn presign_one(
        &self,
        plugin: &LoadedPlugin,
        request: &WitRequest<'_>,
        template: &CertificateTemplate,
        check: &(dyn Fn(&CertificateTemplate) -> Result<(), String> + Sync),
    ) -> Result<CertificateTemplate, HookError> {
        {
            let mut call = self.start(plugin).await?;
            let store = &mut call.store;
            let returned = match &call.instance {
                Instance::V0_2(instance) => instance
                    .call_presign(&mut *store, request.v0_2(), &template.into())
                    .await
                    .map(|result| result.map(CertificateTemplate::from)),
                Instance::V0_1(instance) => instance
                    .call_presign(&mut *store, request.v0_1(), &template.into())
                    .await
                    .map(|result| result.map(CertificateTemplate::from)),
            }
            .map_err(|e| failed(plugin, &e));
            let result = self.settle(plugin, &mut call, returned).await?;
            let next: CertificateTemplate = result.map_err(|reason| HookError::PresignRefused {
                plugin: plugin.info.name.clone(),
                reason,
            })?;
            check(&next).map_err(|reason| HookError::InvalidTemplate {
                plugin: plugin.info.name.clone(),
                reason,
            })?;
            Ok(next)
        }
    }

    /// Shows the certificate to every postsign plugin. Failures are returned for logging and
    /// counting; they never undo the issuance.
    pub async fn postsign(&self, certificate: &SignedCertificate) -> Vec<HookError> {
        let mut failures = Vec::new();
        let v0_2_certificate = v0_2::wit::SignedCertificate::from(certificate);
        let v0_1_certificate = std::sync::OnceLock::new();
        for plugin in self.attached(Hook::Postsign) {
            let started = Instant::now();
            let outcome = match self.start(plugin).await {
                Ok(mut call) => {
                    let store = &mut call.store;
                    let returned = match &call.instance {
                        Instance::V0_2(instance) => {
                            instance.call_postsign(&mut *store, &v0_2_certificate).await
                        }
                        Instance::V0_1(instance) => {
                            let certificate = v0_1_certificate
                                .get_or_init(|| v0_1::wit::SignedCertificate::from(certificate));
                            instance.call_postsign(&mut *store, certificate).await
                        }
                    }
                    .map_err(|e| failed(plugin, &e));
                    self.settle(plugin, &mut call, returned).await
                }
                Err(error) => Err(error),
            };
            let verdict = if outcome.is_ok() {
                CallOutcome::Ok
            } else {
                CallOutcome::Failed
            };
            self.report(plugin, Hook::Postsign, verdict, started);
            if let Err(error) = outcome {
                failures.push(error);
            }
        }
        failures
    }
}

impl PluginSet {
    /// Ends a call: reports refused key-value writes and dropped log lines, then, when the hook
    /// returned (`returned` is `Ok`), applies the call's buffered writes. A trap or a deadline
    /// leaves nothing behind; an apply the quota refuses fails the call, closed.
    async fn settle<T>(
        &self,
        plugin: &LoadedPlugin,
        call: &mut Call,
        returned: Result<T, HookError>,
    ) -> Result<T, HookError> {
        let state = call.store.data_mut();
        let value = returned;
        let applied = match &value {
            Ok(_) => state.commit_kv().await,
            Err(_) => Ok(()),
        };
        let kv_refused = state.kv_refused + u64::from(applied.is_err());
        let logs_dropped = state.logs_dropped;
        if logs_dropped > 0 {
            tracing::warn!(
                plugin = &*plugin.name,
                dropped = logs_dropped,
                "plugin log lines over the limit of {} per call were dropped",
                crate::MAX_LOG_LINES_PER_CALL
            );
        }
        if (kv_refused > 0 || logs_dropped > 0)
            && let Some(observer) = &self.observer
        {
            observer.limited(&plugin.name, kv_refused, logs_dropped);
        }
        let value = value?;
        applied.map_err(|reason| HookError::Failed {
            plugin: plugin.info.name.clone(),
            reason: format!("its key-value writes were refused: {reason}"),
        })?;
        Ok(value)
    }
}

fn failed(plugin: &LoadedPlugin, error: &wasmtime::Error) -> HookError {
    HookError::Failed {
        plugin: plugin.info.name.clone(),
        reason: describe(error, plugin),
    }
}

/// Turns a wasmtime error into a sentence an operator can act on.
fn describe(error: &wasmtime::Error, plugin: &LoadedPlugin) -> String {
    if error.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt) {
        return format!(
            "deadline of {} ms exceeded",
            plugin.info.deadline.as_millis()
        );
    }
    let text = format!("{error:#}");
    if text.contains("forcing trap when growing memory") || text.contains("memory allocation") {
        return format!(
            "memory limit of {} MiB reached",
            plugin.info.memory_bytes >> 20
        );
    }
    let mut text = text.replace('\n', " ");
    if text.len() > 400 {
        let mut cut = 400;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    format!("trapped: {text}")
}
