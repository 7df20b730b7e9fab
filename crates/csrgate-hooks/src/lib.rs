//! csrgate-hooks: the only crate that knows wasmtime. It loads hook plugins (WebAssembly
//! components implementing `wit/v0.2.0` or `wit/v0.1.0`), runs each call in a fresh sandboxed instance with a
//! deadline and a memory limit, and chains the calls into the authorize → presign → postsign
//! pipeline.
//!
//! The public API speaks the plain types of [`model`]; no wasmtime type crosses it. Persistence of
//! the plugins' key-value stores is the caller's, through [`KvStore`].

mod bindings;
mod compile_cache;
mod engine;
mod error;
mod host_api;
pub mod model;
mod pipeline;
mod spec;

pub use compile_cache::cache_dir_is_ours;
pub use engine::HookEngine;
pub use error::HookError;
pub use host_api::{
    DEFAULT_KV_QUOTA_BYTES, KvFuture, KvStore, KvWrite, MAX_KV_BYTES_PER_CALL,
    MAX_KV_WRITES_PER_CALL, MAX_LOG_LINES_PER_CALL, MemoryKv, kv_delta, quota_refusal,
};
pub use pipeline::{
    AuthorizeOutcome, CallObserver, CallOutcome, INIT_GROWS_MEMORY_ADVICE, PluginInfo, PluginSet,
};
pub use spec::{DEFAULT_DEADLINE, DEFAULT_MEMORY_BYTES, Hook, MAX_MEMORY_BYTES, PluginSpec};
