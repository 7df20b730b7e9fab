//! Loading plugin sets (start-up, SIGHUP, `csrgate plugin run`) with one engine, and the plugins'
//! key-value stores in the daemon's store. Swapping them is `generation.rs`'s.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use csrgate_hooks::{
    HookEngine, HookError, KvStore, KvWrite, PluginSet, PluginSpec, kv_delta, quota_refusal,
};
use csrgate_store::Store;

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
        PluginLoader::new(
            cache_dir,
            Arc::new(StoreKv {
                store,
                usage: Mutex::new((0, HashMap::new())),
            }),
        )
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

/// The plugins' key-value stores, kept in the daemon's store. Each namespace's size is scanned
/// once and then kept up to date here, so the quota check costs no scan per write.
struct StoreKv {
    store: Store,
    /// Bytes per plugin namespace, as of a number of store reopens (a reopen loses unflushed
    /// writes, so the sizes are counted again). The lock also serialises applies, so concurrent
    /// calls cannot overshoot a quota together.
    usage: Mutex<(u64, HashMap<String, u64>)>,
}

impl StoreKv {
    fn usage_in(
        &self,
        (reopens, usage): &mut (u64, HashMap<String, u64>),
        plugin: &str,
    ) -> Result<u64, String> {
        let now = self.store.reopens();
        if *reopens != now {
            usage.clear();
            *reopens = now;
        }
        if let Some(bytes) = usage.get(plugin) {
            return Ok(*bytes);
        }
        let bytes = self
            .store
            .plugin_kv_usage(plugin)
            .map_err(|e| e.to_string())?;
        usage.insert(plugin.to_owned(), bytes);
        Ok(bytes)
    }
}

impl KvStore for StoreKv {
    fn get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.store
            .plugin_kv_get(plugin, key)
            .map_err(|e| e.to_string())
    }

    fn usage(&self, plugin: &str) -> Result<u64, String> {
        let mut usage = self.usage.lock().map_err(|_| "kv usage lock poisoned")?;
        self.usage_in(&mut usage, plugin)
    }

    fn apply(&self, plugin: &str, writes: &[KvWrite], quota: u64) -> Result<(), String> {
        let mut usage = self.usage.lock().map_err(|_| "kv usage lock poisoned")?;
        let used = self.usage_in(&mut usage, plugin)?;
        let delta = kv_delta(writes, |key| {
            self.get(plugin, key).map(|value| value.map(|v| v.len()))
        })?;
        let after = used.saturating_add_signed(delta);
        if delta > 0 && after > quota {
            return Err(quota_refusal(quota));
        }
        let batch: Vec<(&str, Option<&[u8]>)> = writes
            .iter()
            .map(|w| (w.key.as_str(), w.value.as_deref()))
            .collect();
        self.store
            .plugin_kv_apply(plugin, &batch)
            .map_err(|e| e.to_string())?;
        usage.1.insert(plugin.to_owned(), after);
        Ok(())
    }
}
