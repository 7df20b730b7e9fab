//! Loading plugin sets (start-up, SIGHUP, `csrgate plugin run`) with one engine, and the plugins'
//! key-value stores in the daemon's store. Swapping them is `generation.rs`'s.

use std::path::PathBuf;
use std::sync::Arc;

use csrgate_hooks::{
    HookEngine, HookError, KvFuture, KvStore, KvWrite, PluginSet, PluginSpec, quota_refusal,
};
use csrgate_store::{Store, StoreError};

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
        PluginLoader::new(cache_dir, Arc::new(StoreKv { store }))
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

/// The plugins' key-value stores, kept in the daemon's store (which keeps the quota: sled counts
/// each namespace once and then keeps the count; PostgreSQL measures it under a lock shared by
/// every replica).
struct StoreKv {
    store: Store,
}

impl KvStore for StoreKv {
    fn get<'a>(&'a self, plugin: &'a str, key: &'a str) -> KvFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            self.store
                .plugin_kv_get(plugin, key)
                .await
                .map_err(|e| private(plugin, &e))
        })
    }

    fn usage<'a>(&'a self, plugin: &'a str) -> KvFuture<'a, u64> {
        Box::pin(async move {
            self.store
                .plugin_kv_usage(plugin)
                .await
                .map_err(|e| private(plugin, &e))
        })
    }

    fn apply<'a>(&'a self, plugin: &'a str, writes: &'a [KvWrite], quota: u64) -> KvFuture<'a, ()> {
        Box::pin(async move {
            let batch: Vec<(&str, Option<&[u8]>)> = writes
                .iter()
                .map(|w| (w.key.as_str(), w.value.as_deref()))
                .collect();
            match self.store.plugin_kv_apply(plugin, &batch, quota).await {
                Ok(()) => Ok(()),
                Err(StoreError::QuotaExceeded { quota }) => Err(quota_refusal(quota)),
                Err(error) => Err(private(plugin, &error)),
            }
        })
    }
}

/// A store failure as the plugin (and, through its failure, the requester) sees it: that the
/// store is unavailable, not the database's own words (paths, hosts); those go to the log.
fn private(plugin: &str, error: &StoreError) -> String {
    tracing::warn!(plugin, %error, "plugin key-value store failed");
    "the key-value store is unavailable".to_owned()
}
