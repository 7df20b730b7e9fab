//! What a plugin can reach: the `host` interface (log, key-value store, time) and an empty WASI
//! context (no preopened directories, no environment, no arguments, no sockets, output discarded).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::csrgate::hooks::host::{self, LogLevel};

/// Largest KV key, in bytes.
const MAX_KEY_BYTES: usize = 256;
/// Largest KV value, in bytes.
const MAX_VALUE_BYTES: usize = 64 * 1024;
/// Longest log message kept; the rest is cut.
const MAX_LOG_BYTES: usize = 4096;

/// Persistence for the plugins' key-value stores, namespaced by plugin name. The daemon backs it
/// with its store; `plugin run` uses [`MemoryKv`].
pub trait KvStore: Send + Sync + 'static {
    /// Reads `key` of `plugin`.
    fn get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, String>;
    /// Writes `key` of `plugin`.
    fn set(&self, plugin: &str, key: &str, value: &[u8]) -> Result<(), String>;
    /// Removes `key` of `plugin`.
    fn delete(&self, plugin: &str, key: &str) -> Result<(), String>;
}

/// A [`KvStore`] in memory, for offline runs and tests.
#[derive(Debug, Default)]
pub struct MemoryKv {
    entries: Mutex<BTreeMap<(String, String), Vec<u8>>>,
}

impl MemoryKv {
    /// Everything stored for `plugin`, by key.
    pub fn entries_of(&self, plugin: &str) -> BTreeMap<String, Vec<u8>> {
        self.entries
            .lock()
            .map(|map| {
                map.iter()
                    .filter(|((p, _), _)| p == plugin)
                    .map(|((_, k), v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl KvStore for MemoryKv {
    fn get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, String> {
        let map = self
            .entries
            .lock()
            .map_err(|_| "kv lock poisoned".to_owned())?;
        Ok(map.get(&(plugin.to_owned(), key.to_owned())).cloned())
    }

    fn set(&self, plugin: &str, key: &str, value: &[u8]) -> Result<(), String> {
        let mut map = self
            .entries
            .lock()
            .map_err(|_| "kv lock poisoned".to_owned())?;
        map.insert((plugin.to_owned(), key.to_owned()), value.to_vec());
        Ok(())
    }

    fn delete(&self, plugin: &str, key: &str) -> Result<(), String> {
        let mut map = self
            .entries
            .lock()
            .map_err(|_| "kv lock poisoned".to_owned())?;
        map.remove(&(plugin.to_owned(), key.to_owned()));
        Ok(())
    }
}

/// The memory and instance limits of one call, which also notice when the guest grows a linear
/// memory beyond its initial size. Every call starts a fresh instance, so a guest that grows in
/// `init` grows again on every request, and each grow costs the host `mprotect`s and a TLB
/// shootdown (docs/decisions/0019-plugins-target-wasip2.md): `csrgate plugin check` and the
/// load log say so.
pub(crate) struct CallLimits {
    limits: StoreLimits,
    grew_memory: bool,
}

impl CallLimits {
    /// True once a linear memory grew past the size it was created with.
    pub(crate) fn grew_memory(&self) -> bool {
        self.grew_memory
    }
}

impl ResourceLimiter for CallLimits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // wasmtime asks with `current == 0` when it creates a memory at instantiation; only a
        // later request is the guest growing (a memory declared with 0 pages is missed on its
        // first grow, which no toolchain we know emits).
        if current > 0 && desired > current {
            self.grew_memory = true;
        }
        self.limits.memory_growing(current, desired, maximum)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.memory_grow_failed(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

/// The data of one call's `Store`: everything the guest can touch through imports.
pub(crate) struct CallState {
    plugin: Arc<str>,
    kv: Arc<dyn KvStore>,
    pub(crate) limits: CallLimits,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl CallState {
    pub(crate) fn new(plugin: Arc<str>, kv: Arc<dyn KvStore>, memory_bytes: usize) -> Self {
        CallState {
            plugin,
            kv,
            limits: CallLimits {
                limits: wasmtime::StoreLimitsBuilder::new()
                    .memory_size(memory_bytes)
                    .instances(64)
                    .tables(64)
                    .memories(16)
                    .trap_on_grow_failure(true)
                    .build(),
                grew_memory: false,
            },
            // The builder's defaults are what we want: no preopens, no env, no args, stdin
            // empty, stdout/stderr discarded, sockets denied.
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
        }
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(format!("keys are 1 to {MAX_KEY_BYTES} bytes"));
    }
    Ok(())
}

impl host::Host for CallState {
    fn log(&mut self, level: LogLevel, message: String) {
        let mut message = message;
        if message.len() > MAX_LOG_BYTES {
            let mut cut = MAX_LOG_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push_str(" [cut]");
        }
        let plugin = &*self.plugin;
        match level {
            LogLevel::Trace => tracing::trace!(plugin, "{message}"),
            LogLevel::Debug => tracing::debug!(plugin, "{message}"),
            LogLevel::Info => tracing::info!(plugin, "{message}"),
            LogLevel::Warn => tracing::warn!(plugin, "{message}"),
            LogLevel::Error => tracing::error!(plugin, "{message}"),
        }
    }

    fn kv_get(&mut self, key: String) -> Option<Vec<u8>> {
        check_key(&key).ok()?;
        match self.kv.get(&self.plugin, &key) {
            Ok(value) => value,
            Err(error) => {
                tracing::warn!(plugin = &*self.plugin, %error, "plugin KV read failed");
                None
            }
        }
    }

    fn kv_set(&mut self, key: String, value: Vec<u8>) -> Result<(), String> {
        check_key(&key)?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(format!("values are at most {MAX_VALUE_BYTES} bytes"));
        }
        self.kv.set(&self.plugin, &key, &value)
    }

    fn kv_delete(&mut self, key: String) -> Result<(), String> {
        check_key(&key)?;
        self.kv.delete(&self.plugin, &key)
    }

    fn now(&mut self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    }
}

impl crate::bindings::csrgate::hooks::types::Host for CallState {}
