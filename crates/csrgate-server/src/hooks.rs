//! The hook stages of the signing pipeline over the current plugin set, and the glue that loads
//! and swaps plugin sets (start-up, SIGHUP, `csrgate plugin run`).
//!
//! A request takes the current set once (an `Arc`) and uses it for every stage, so a reload never
//! changes the plugins under a request in flight: it finishes on the old set.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use csrgate_hooks::{HookEngine, HookError, KvStore, PluginSet, PluginSpec};
use csrgate_store::Store;

/// The current plugin set and its generation (1 at start-up, +1 per successful reload).
pub struct Hooks {
    current: RwLock<Arc<PluginSet>>,
    generation: AtomicU64,
    postsign_failures: AtomicU64,
    observer: Option<Arc<dyn csrgate_hooks::CallObserver>>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("generation", &self.generation())
            .field("plugins", &self.current())
            .finish_non_exhaustive()
    }
}

impl Default for Hooks {
    fn default() -> Self {
        Hooks::new(PluginSet::empty())
    }
}

impl Hooks {
    /// Starts with `set` as generation 1.
    pub fn new(set: PluginSet) -> Self {
        Hooks {
            current: RwLock::new(Arc::new(set)),
            generation: AtomicU64::new(1),
            postsign_failures: AtomicU64::new(0),
            observer: None,
        }
    }

    /// Starts with `set` as generation 1; this and every later set report their calls to
    /// `observer` (the daemon's metrics).
    pub fn observed(set: PluginSet, observer: Arc<dyn csrgate_hooks::CallObserver>) -> Self {
        let mut hooks = Hooks::new(set.with_observer(Arc::clone(&observer)));
        hooks.observer = Some(observer);
        hooks
    }

    /// The set requests use now.
    pub fn current(&self) -> Arc<PluginSet> {
        match self.current.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Makes `set` current; requests already running keep the old one. Returns the new generation.
    pub fn replace(&self, set: PluginSet) -> u64 {
        let set = match &self.observer {
            Some(observer) => set.with_observer(Arc::clone(observer)),
            None => set,
        };
        let set = Arc::new(set);
        match self.current.write() {
            Ok(mut guard) => *guard = set,
            Err(poisoned) => *poisoned.into_inner() = set,
        }
        self.generation.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// The current generation.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    pub(crate) fn count_postsign_failure(&self) {
        self.postsign_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Postsign failures since start.
    pub fn postsign_failures(&self) -> u64 {
        self.postsign_failures.load(Ordering::Relaxed)
    }
}

/// Loads plugin sets with one engine for the life of the process (the engine is made on first
/// use, so a daemon without plugins never sets up wasmtime).
#[derive(Clone)]
pub struct PluginLoader {
    engine: Arc<std::sync::OnceLock<HookEngine>>,
    cache_dir: Option<PathBuf>,
    kv: Arc<dyn KvStore>,
}

impl std::fmt::Debug for PluginLoader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginLoader")
            .field("cache_dir", &self.cache_dir)
            .finish_non_exhaustive()
    }
}

impl PluginLoader {
    /// A loader whose plugins keep their key-value stores in `kv`.
    pub fn new(cache_dir: Option<PathBuf>, kv: Arc<dyn KvStore>) -> Self {
        PluginLoader {
            engine: Arc::new(std::sync::OnceLock::new()),
            cache_dir,
            kv,
        }
    }

    /// A loader for the daemon: key-value stores in `store`.
    pub fn for_store(cache_dir: Option<PathBuf>, store: Store) -> Self {
        PluginLoader::new(cache_dir, Arc::new(StoreKv(store)))
    }

    /// Compiles and initialises `specs`. Blocking (it compiles); call it from a thread that is not
    /// running an async runtime: start-up, the reload thread, the CLI.
    pub fn load_blocking(&self, specs: &[PluginSpec]) -> Result<PluginSet, HookError> {
        if specs.is_empty() {
            return Ok(PluginSet::empty());
        }
        let engine = match self.engine.get() {
            Some(engine) => engine.clone(),
            None => {
                let engine = HookEngine::new(self.cache_dir.clone())?;
                self.engine.get_or_init(|| engine).clone()
            }
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| HookError::Engine(format!("cannot start a runtime for loading: {e}")))?;
        runtime.block_on(PluginSet::load(&engine, specs, Arc::clone(&self.kv)))
    }
}

/// The plugins' key-value stores, kept in the daemon's store.
struct StoreKv(Store);

impl KvStore for StoreKv {
    fn get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.0.plugin_kv_get(plugin, key).map_err(|e| e.to_string())
    }

    fn set(&self, plugin: &str, key: &str, value: &[u8]) -> Result<(), String> {
        self.0
            .plugin_kv_set(plugin, key, value)
            .map_err(|e| e.to_string())
    }

    fn delete(&self, plugin: &str, key: &str) -> Result<(), String> {
        self.0
            .plugin_kv_delete(plugin, key)
            .map_err(|e| e.to_string())
    }
}
