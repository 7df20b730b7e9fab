//! The wasmtime engine, set up once: component model, async calls, epoch interruption with one
//! ticker thread, and a pooling allocator tuned so that a fresh instance per call stays cheap.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::HookError;
use crate::bindings::{v0_1, v0_2};
use crate::host_api::CallState;
use crate::spec::MAX_MEMORY_BYTES;

/// One epoch tick. Deadlines are counted in ticks, so this is their resolution.
pub(crate) const TICK: Duration = Duration::from_millis(1);

/// Concurrent plugin instances at most; callers beyond it wait for a slot. Sized well below the
/// pool's capacity so that instantiation never fails for lack of slots.
const MAX_CONCURRENT_CALLS: usize = 64;

/// The shared engine. Cheap to clone.
#[derive(Clone)]
pub struct HookEngine {
    pub(crate) inner: Arc<EngineInner>,
}

pub(crate) struct EngineInner {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<CallState>,
    pub(crate) cache_dir: Option<PathBuf>,
    pub(crate) permits: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for HookEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookEngine")
            .field("cache_dir", &self.inner.cache_dir)
            .finish_non_exhaustive()
    }
}

impl HookEngine {
    /// Builds the engine. `cache_dir` keeps compiled plugins across restarts (None: compile every
    /// time).
    pub fn new(cache_dir: Option<PathBuf>) -> Result<Self, HookError> {
        let engine_error = |e: wasmtime::Error| HookError::Engine(format!("{e:#}"));
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(256)
            .total_core_instances(2048)
            .total_memories(512)
            .total_tables(2048)
            .total_stacks(256)
            .max_memory_size(MAX_MEMORY_BYTES)
            // Keep the first pages of each slot resident and reset them with memset: without
            // this, every fresh instance page-faults its memory back in, and throughput falls
            // as threads are added.
            .linear_memory_keep_resident(1 << 20)
            .table_keep_resident(64 << 10)
            .pagemap_scan(Enabled::Auto);
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(engine_error)?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(engine_error)?;
        v0_2::Plugin::add_to_linker::<CallState, HasSelf<CallState>>(&mut linker, |state| state)
            .map_err(engine_error)?;
        v0_1::Plugin::add_to_linker::<CallState, HasSelf<CallState>>(&mut linker, |state| state)
            .map_err(engine_error)?;

        let weak = engine.weak();
        std::thread::Builder::new()
            .name("csrgate-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(TICK);
                }
            })
            .map_err(|e| HookError::Engine(format!("cannot start the epoch ticker: {e}")))?;

        Ok(HookEngine {
            inner: Arc::new(EngineInner {
                engine,
                linker,
                cache_dir,
                permits: Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_CALLS)),
            }),
        })
    }
}
