//! What a plugin can reach: the `host` interface (log, key-value store, time) and an empty WASI
//! context (no preopened directories, no environment, no arguments, no sockets, output discarded).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::v0_1::csrgate::hooks::host as host_v0_1;
use crate::bindings::v0_2::csrgate::hooks::host::{self, LogLevel};

/// Largest KV key, in bytes.
const MAX_KEY_BYTES: usize = 256;
/// Largest KV value, in bytes.
const MAX_VALUE_BYTES: usize = 64 * 1024;
/// Longest log message kept; the rest is cut.
const MAX_LOG_BYTES: usize = 4096;
/// Key-value writes (sets and deletes) one call may make.
pub const MAX_KV_WRITES_PER_CALL: usize = 64;
/// Bytes (keys and values) one call may write.
pub const MAX_KV_BYTES_PER_CALL: usize = 256 * 1024;
/// Log lines one call may write; more are dropped and counted.
pub const MAX_LOG_LINES_PER_CALL: usize = 32;
/// Default of a plugin's total key-value quota (`kv_quota`): keys and values together.
pub const DEFAULT_KV_QUOTA_BYTES: u64 = 16 << 20;

/// One buffered key-value write of a call: a value to set, or `None` to delete the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvWrite {
    /// The key, 1 to 256 bytes.
    pub key: String,
    /// The new value (at most 64 KiB), or `None` to delete.
    pub value: Option<Vec<u8>>,
}

/// A [`KvStore`] answer: a boxed future, so the trait stays object-safe (`Arc<dyn KvStore>`);
/// the error is the text the plugin and the log see.
pub type KvFuture<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, String>> + Send + 'a>>;

/// Persistence for the plugins' key-value stores, namespaced by plugin name. The daemon backs it
/// with its store (sled, or PostgreSQL shared by every replica: hence async); `plugin run` uses
/// [`MemoryKv`].
///
/// A call's writes are buffered in the call and handed to [`KvStore::apply`] only when the call
/// succeeds: a plugin that traps or runs past its deadline leaves nothing behind.
pub trait KvStore: Send + Sync + 'static {
    /// Reads `key` of `plugin`.
    fn get<'a>(&'a self, plugin: &'a str, key: &'a str) -> KvFuture<'a, Option<Vec<u8>>>;
    /// Bytes (keys and values) stored for `plugin`.
    fn usage<'a>(&'a self, plugin: &'a str) -> KvFuture<'a, u64>;
    /// Applies one call's writes, all or none; refused (nothing written, the error is
    /// [`quota_refusal`]) when `plugin`'s keys and values would exceed `quota` bytes. The check
    /// and the write are one step, so concurrent calls cannot overshoot the quota together.
    fn apply<'a>(&'a self, plugin: &'a str, writes: &'a [KvWrite], quota: u64) -> KvFuture<'a, ()>;
}

/// The size change `writes` make to a namespace whose current values `old` returns: keys and
/// values count, a delete frees its key and value. For [`KvStore::apply`] implementations.
pub fn kv_delta(
    writes: &[KvWrite],
    mut old: impl FnMut(&str) -> Result<Option<usize>, String>,
) -> Result<i64, String> {
    let mut delta = 0i64;
    for write in writes {
        let before = old(&write.key)?.map_or(0, |len| (len + write.key.len()) as i64);
        let after = write
            .value
            .as_ref()
            .map_or(0, |value| (value.len() + write.key.len()) as i64);
        delta += after - before;
    }
    Ok(delta)
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
    fn get<'a>(&'a self, plugin: &'a str, key: &'a str) -> KvFuture<'a, Option<Vec<u8>>> {
        Box::pin(std::future::ready(self.get_now(plugin, key)))
    }

    fn usage<'a>(&'a self, plugin: &'a str) -> KvFuture<'a, u64> {
        Box::pin(std::future::ready(self.usage_now(plugin)))
    }

    fn apply<'a>(&'a self, plugin: &'a str, writes: &'a [KvWrite], quota: u64) -> KvFuture<'a, ()> {
        Box::pin(std::future::ready(self.apply_now(plugin, writes, quota)))
    }
}

impl MemoryKv {
    fn get_now(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, String> {
        let map = self
            .entries
            .lock()
            .map_err(|_| "kv lock poisoned".to_owned())?;
        Ok(map.get(&(plugin.to_owned(), key.to_owned())).cloned())
    }

    fn usage_now(&self, plugin: &str) -> Result<u64, String> {
        Ok(self
            .entries_of(plugin)
            .iter()
            .map(|(k, v)| (k.len() + v.len()) as u64)
            .sum())
    }

    fn apply_now(&self, plugin: &str, writes: &[KvWrite], quota: u64) -> Result<(), String> {
        let mut map = self
            .entries
            .lock()
            .map_err(|_| "kv lock poisoned".to_owned())?;
        let used: u64 = map
            .iter()
            .filter(|((p, _), _)| p == plugin)
            .map(|((_, k), v)| (k.len() + v.len()) as u64)
            .sum();
        let delta = kv_delta(writes, |key| {
            Ok(map.get(&(plugin.to_owned(), key.to_owned())).map(Vec::len))
        })?;
        if used.saturating_add_signed(delta) > quota && delta > 0 {
            return Err(quota_refusal(quota));
        }
        for write in writes {
            let key = (plugin.to_owned(), write.key.clone());
            match &write.value {
                Some(value) => map.insert(key, value.clone()),
                None => map.remove(&key),
            };
        }
        Ok(())
    }
}

/// The error a plugin (and the log) sees when its namespace is full.
pub fn quota_refusal(quota: u64) -> String {
    format!(
        "the plugin's key-value quota of {quota} bytes is used up (kv_quota); delete keys or ask the operator for more"
    )
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
    kv_quota: u64,
    /// This call's writes, newest per key; applied only when the call succeeds.
    pending: BTreeMap<String, Option<Vec<u8>>>,
    /// The size change the pending writes make to the namespace.
    pending_delta: i64,
    kv_writes: usize,
    kv_bytes: usize,
    /// Key-value writes refused (caps, quota), for metrics.
    pub(crate) kv_refused: u64,
    log_lines: usize,
    /// Log lines dropped over the per-call cap, for metrics.
    pub(crate) logs_dropped: u64,
    pub(crate) limits: CallLimits,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl CallState {
    pub(crate) fn new(
        plugin: Arc<str>,
        kv: Arc<dyn KvStore>,
        kv_quota: u64,
        memory_bytes: usize,
    ) -> Self {
        CallState {
            plugin,
            kv,
            kv_quota,
            pending: BTreeMap::new(),
            pending_delta: 0,
            kv_writes: 0,
            kv_bytes: 0,
            kv_refused: 0,
            log_lines: 0,
            logs_dropped: 0,
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

impl CallState {
    /// Applies this call's buffered writes (the call succeeded). Refused as a whole when the
    /// plugin's quota would be exceeded.
    pub(crate) async fn commit_kv(&mut self) -> Result<(), String> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let writes: Vec<KvWrite> = std::mem::take(&mut self.pending)
            .into_iter()
            .map(|(key, value)| KvWrite { key, value })
            .collect();
        self.kv.apply(&self.plugin, &writes, self.kv_quota).await
    }

    /// Buffers one write after the per-call caps and the quota (as far as this call can tell;
    /// [`KvStore::apply`] checks again when the call's writes land).
    async fn buffer_write(&mut self, key: String, value: Option<Vec<u8>>) -> Result<(), String> {
        check_key(&key)?;
        let bytes = key.len() + value.as_ref().map_or(0, Vec::len);
        let refused = if self.kv_writes >= MAX_KV_WRITES_PER_CALL {
            Some(format!(
                "at most {MAX_KV_WRITES_PER_CALL} key-value writes per call"
            ))
        } else if self.kv_bytes + bytes > MAX_KV_BYTES_PER_CALL {
            Some(format!(
                "at most {MAX_KV_BYTES_PER_CALL} bytes of key-value writes per call"
            ))
        } else {
            None
        };
        let delta = match refused {
            Some(_) => 0,
            None => self.delta_of(&key, value.as_ref().map(Vec::len)).await?,
        };
        let refused = match refused {
            Some(reason) => Some(reason),
            None if delta > 0 => {
                let used = self.kv.usage(&self.plugin).await.unwrap_or(u64::MAX);
                let after = used.saturating_add_signed(self.pending_delta + delta);
                (after > self.kv_quota).then(|| quota_refusal(self.kv_quota))
            }
            None => None,
        };
        if let Some(reason) = refused {
            self.kv_refused += 1;
            return Err(reason);
        }
        self.kv_writes += 1;
        self.kv_bytes += bytes;
        self.pending_delta += delta;
        self.pending.insert(key, value);
        Ok(())
    }

    /// The size change of writing a value of `len` bytes (`None`: deleting) at `key`, from what
    /// this call or the store holds there now.
    async fn delta_of(&mut self, key: &str, len: Option<usize>) -> Result<i64, String> {
        let now = match self.pending.get(key) {
            Some(pending) => pending.as_ref().map(Vec::len),
            None => self.kv.get(&self.plugin, key).await?.map(|v| v.len()),
        };
        let size = |len: Option<usize>| len.map_or(0, |l| (l + key.len()) as i64);
        Ok(size(len) - size(now))
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
    // PostgreSQL's text cannot hold NUL; refused on every store, so a plugin works on both.
    if key.contains('\0') {
        return Err("keys cannot contain NUL".into());
    }
    Ok(())
}

impl host::Host for CallState {
    fn log(&mut self, level: LogLevel, message: String) {
        if self.log_lines >= MAX_LOG_LINES_PER_CALL {
            self.logs_dropped += 1;
            return;
        }
        self.log_lines += 1;
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

    async fn kv_get(&mut self, key: String) -> wasmtime::Result<Option<Vec<u8>>> {
        if check_key(&key).is_err() {
            return Ok(None);
        }
        if let Some(pending) = self.pending.get(&key) {
            return Ok(pending.clone());
        }
        match self.kv.get(&self.plugin, &key).await {
            Ok(value) => Ok(value),
            Err(error) => {
                tracing::warn!(plugin = &*self.plugin, %error, "plugin KV read failed; the call fails closed");
                Err(wasmtime::Error::msg(format!(
                    "the key-value store could not be read: {error}"
                )))
            }
        }
    }

    async fn kv_set(&mut self, key: String, value: Vec<u8>) -> Result<(), String> {
        if value.len() > MAX_VALUE_BYTES {
            self.kv_refused += 1;
            return Err(format!("values are at most {MAX_VALUE_BYTES} bytes"));
        }
        self.buffer_write(key, Some(value)).await
    }

    async fn kv_delete(&mut self, key: String) -> Result<(), String> {
        self.buffer_write(key, None).await
    }

    fn now(&mut self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    }
}

impl crate::bindings::v0_2::csrgate::hooks::types::Host for CallState {}

/// Contract 0.1's `host` is 0.2's: the same functions, delegated.
impl host_v0_1::Host for CallState {
    fn log(&mut self, level: host_v0_1::LogLevel, message: String) {
        let level = match level {
            host_v0_1::LogLevel::Trace => LogLevel::Trace,
            host_v0_1::LogLevel::Debug => LogLevel::Debug,
            host_v0_1::LogLevel::Info => LogLevel::Info,
            host_v0_1::LogLevel::Warn => LogLevel::Warn,
            host_v0_1::LogLevel::Error => LogLevel::Error,
        };
        host::Host::log(self, level, message);
    }

    async fn kv_get(&mut self, key: String) -> wasmtime::Result<Option<Vec<u8>>> {
        host::Host::kv_get(self, key).await
    }

    async fn kv_set(&mut self, key: String, value: Vec<u8>) -> Result<(), String> {
        host::Host::kv_set(self, key, value).await
    }

    async fn kv_delete(&mut self, key: String) -> Result<(), String> {
        host::Host::kv_delete(self, key).await
    }

    fn now(&mut self) -> i64 {
        host::Host::now(self)
    }
}

impl crate::bindings::v0_1::csrgate::hooks::types::Host for CallState {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys every store can hold: 1 to 256 bytes, no NUL (PostgreSQL's text cannot hold one).
    #[test]
    fn keys_are_checked_the_same_for_every_store() {
        let long = "k".repeat(MAX_KEY_BYTES + 1);
        let fits = "k".repeat(MAX_KEY_BYTES);
        for (key, ok) in [
            ("seen/abc", true),
            (fits.as_str(), true),
            ("", false),
            (long.as_str(), false),
            ("a\0b", false),
        ] {
            assert_eq!(check_key(key).is_ok(), ok, "{key:?}");
        }
    }
}
