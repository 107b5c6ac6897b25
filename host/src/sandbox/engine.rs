//! The one wasmtime `Engine` of the process, its epoch ticker, and the on-disk cache
//! of compiled components.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Config, Engine};

use super::SandboxError;

/// How often the epoch advances: the granularity of CPU-time limits.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Guest instances that may be alive at once (bounds `--jobs`).
pub const POOL_INSTANCES: u32 = 256;
/// Bytes of each pooled table and fiber stack kept resident between instances.
pub const KEEP_RESIDENT: usize = 128 * 1024;
/// Bytes of the pages a guest wrote in a pooled linear memory that are reset with a
/// memset and kept resident (with `PAGEMAP_SCAN`, only written pages count); what
/// it wrote beyond this is given back with `madvise`.
pub const MEMORY_KEEP_RESIDENT: usize = 1 << 20;
/// The largest linear memory any guest may have, whatever its limit says.
pub const MAX_GUEST_MEMORY: usize = 4 << 30;

/// The process's one engine (its pool reserves address space, so there is exactly one).
pub fn shared_engine() -> Result<Engine, SandboxError> {
    static ENGINE: std::sync::OnceLock<Result<Engine, String>> = std::sync::OnceLock::new();
    ENGINE
        .get_or_init(|| {
            new_engine().map_err(|e| match e {
                SandboxError::Engine(m) => m,
                other => other.to_string(),
            })
        })
        .clone()
        .map_err(SandboxError::Engine)
}

/// Build an engine: component model, epoch interruption, cranelift, pooling.
fn new_engine() -> Result<Engine, SandboxError> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.cranelift_opt_level(wasmtime::OptLevel::Speed);
    // Guests get a bounded native stack; deep recursion traps instead of crashing.
    config.max_wasm_stack(1 << 20);
    // A fresh Store per evaluation is cheap when memories, tables and fiber stacks
    // come from a pool instead of fresh mappings.
    let mut pool = wasmtime::PoolingAllocationConfig::default();
    pool.total_component_instances(POOL_INSTANCES)
        .total_core_instances(POOL_INSTANCES * 8)
        .total_memories(POOL_INSTANCES * 2)
        .total_tables(POOL_INSTANCES * 4)
        .total_stacks(POOL_INSTANCES)
        .max_memories_per_component(4)
        .max_core_instances_per_component(16)
        .max_memory_size(MAX_GUEST_MEMORY)
        // Reset the first pages of a released memory, table and fiber stack with a
        // memset instead of madvise: no page faults and no TLB shootdowns on the next
        // evaluation (measured in docs/benchmarks.md).
        .linear_memory_keep_resident(MEMORY_KEEP_RESIDENT)
        .table_keep_resident(KEEP_RESIDENT)
        .async_stack_keep_resident(KEEP_RESIDENT)
        // Find the pages a guest actually wrote (Linux 6.7+ `PAGEMAP_SCAN`) and reset
        // only those, instead of the first `*_keep_resident` bytes: a Rust guest's
        // first megabyte is its stack, written from the top down, so the fixed prefix
        // was never the part it used and every evaluation paid `madvise`, TLB
        // shootdowns and page faults for the pages above it. Older kernels fall back
        // to the prefix.
        .pagemap_scan(wasmtime::Enabled::Auto);
    config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
    let engine = Engine::new(&config).map_err(|e| SandboxError::Engine(format!("{e:#}")))?;
    start_epoch_ticker(&engine);
    Ok(engine)
}

/// A background thread advancing the epoch every [`EPOCH_TICK`]; it holds only a weak
/// reference so it ends when the engine is dropped.
fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("kazi-epoch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(EPOCH_TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        })
        .expect("spawn the epoch ticker thread");
}

/// Run `fut` to completion on one of kazi's guest threads (a pool of plain OS threads
/// driving futures with [`tokio::runtime::Handle::block_on`]), never on a runtime
/// worker. A guest blocked in a host call that cannot be interrupted then blocks only
/// its own thread: the caller's wall-clock timeout, measured on the runtime, still
/// fires, and the runtime keeps serving everything else. The pool grows when every
/// thread is busy; its threads never exit, and the process does not wait for them.
pub fn run_off_thread<T: Send + 'static>(
    fut: impl Future<Output = T> + Send + 'static,
) -> tokio::sync::oneshot::Receiver<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let handle = tokio::runtime::Handle::current();
    guest_threads().submit(Box::new(move || {
        let _ = tx.send(handle.block_on(fut));
    }));
    rx
}

type GuestJob = Box<dyn FnOnce() + Send>;

/// The pool behind [`run_off_thread`].
struct GuestThreads {
    jobs: std::sync::Mutex<std::sync::mpsc::Sender<GuestJob>>,
    queue: std::sync::Arc<std::sync::Mutex<std::sync::mpsc::Receiver<GuestJob>>>,
    threads: std::sync::atomic::AtomicUsize,
    busy: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

fn guest_threads() -> &'static GuestThreads {
    static POOL: std::sync::OnceLock<GuestThreads> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        GuestThreads {
            jobs: std::sync::Mutex::new(tx),
            queue: std::sync::Arc::new(std::sync::Mutex::new(rx)),
            threads: std::sync::atomic::AtomicUsize::new(0),
            busy: std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0)),
        }
    })
}

impl GuestThreads {
    fn submit(&self, job: GuestJob) {
        use std::sync::atomic::Ordering::SeqCst;
        let pending = self.busy.fetch_add(1, SeqCst) + 1;
        if pending > self.threads.load(SeqCst) {
            self.threads.fetch_add(1, SeqCst);
            let (queue, busy) = (self.queue.clone(), self.busy.clone());
            std::thread::Builder::new()
                .name("kazi-guest".into())
                .spawn(move || {
                    loop {
                        let job = queue.lock().expect("guest queue").recv();
                        let Ok(job) = job else { return };
                        // A panicking job must not take the thread (and its count) away.
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                        busy.fetch_sub(1, SeqCst);
                    }
                })
                .expect("start a guest thread");
        }
        let _ = self.jobs.lock().expect("guest jobs").send(job);
    }
}

/// sha256 of a component's bytes, hex.
pub fn digest_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Compiled-component cache: `<dir>/components/<sha256>-<engine hash>.cwasm`,
/// written atomically into a directory only kazi writes.
#[derive(Debug, Clone)]
pub struct ArtifactCache {
    dir: Option<PathBuf>,
    engine_key: String,
}

/// A `Hasher` that feeds sha256, so the engine's compatibility hash is stable.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

impl ArtifactCache {
    /// The cache under `dir` (`None` disables caching).
    pub fn new(engine: &Engine, dir: Option<PathBuf>) -> Self {
        let mut h = ShaHasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut h);
        let engine_key = hex::encode(&h.0.finalize()[..8]);
        Self {
            dir: dir.map(|d| d.join("components")),
            engine_key,
        }
    }

    /// The default location: `$KAZI_CACHE`, else the user cache dir + `kazi`.
    pub fn default_dir() -> Option<PathBuf> {
        match std::env::var_os("KAZI_CACHE") {
            Some(d) if !d.is_empty() => Some(PathBuf::from(d)),
            _ => dirs::cache_dir().map(|d| d.join("kazi")),
        }
    }

    fn path_for(&self, digest: &str) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|d| d.join(format!("{digest}-{}.cwasm", self.engine_key)))
    }

    /// Load the compiled form of `bytes` (whose sha256 is `digest`), compiling and
    /// storing it on a miss. A cache that cannot be written only costs speed.
    pub fn load(&self, engine: &Engine, digest: &str, bytes: &[u8]) -> wasmtime::Result<Component> {
        let Some(path) = self.path_for(digest) else {
            return Component::new(engine, bytes);
        };
        if path.is_file() {
            if let Ok(component) = deserialize(engine, &path) {
                return Ok(component);
            }
            tracing::warn!(path = %path.display(), "ignoring an unreadable cached component; recompiling");
        }
        let component = Component::new(engine, bytes)?;
        if let Err(e) = store_atomically(&path, &component) {
            tracing::debug!(path = %path.display(), error = %e, "could not write the component cache");
        }
        Ok(component)
    }
}

#[expect(
    unsafe_code,
    reason = "loading a precompiled artifact is unsafe by wasmtime's contract"
)]
fn deserialize(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: `path` lies in kazi's own cache directory, named by the sha256 of the
    // source component and the engine's compatibility hash, and is only ever written
    // by `store_atomically` from `Component::serialize` of this same engine
    // configuration (temp file + rename, so never half-written).
    unsafe { Component::deserialize_file(engine, path) }
}

fn store_atomically(path: &Path, component: &Component) -> std::io::Result<()> {
    let dir = path.parent().expect("cache path has a parent");
    std::fs::create_dir_all(dir)?;
    let bytes = component.serialize().map_err(std::io::Error::other)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, &bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A core module with a 3 MiB memory (48 pages, `kazi` at offset 16 from a data
    /// segment) exporting `probe(addr) -> i32`: it returns the word at `addr` and
    /// then writes a marker there.
    const PROBE_MODULE: &[u8] = &[
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
        0x01, 0x06, 0x01, 0x60, 0x01, 0x7f, 0x01, 0x7f, // type: (i32) -> i32
        0x03, 0x02, 0x01, 0x00, // function 0 has type 0
        0x05, 0x04, 0x01, 0x01, 0x30, 0x30, // memory: 48 pages, max 48
        0x07, 0x09, 0x01, 0x05, b'p', b'r', b'o', b'b', b'e', 0x00, 0x00, // export
        0x0a, 0x13, 0x01, 0x11, 0x00, // code: one body of 17 bytes, no locals
        0x20, 0x00, 0x28, 0x02, 0x00, // i32.load (local 0)
        0x20, 0x00, 0x41, 0xe7, 0x85, 0xfb, 0x02, 0x36, 0x02, 0x00, // i32.store marker
        0x0b, // end
        0x0b, 0x0a, 0x01, 0x00, 0x41, 0x10, 0x0b, 0x04, b'k', b'a', b'z', b'i', // data
    ];
    const MARKER: i32 = 0x5E_C2E7;

    #[test]
    fn a_fresh_instance_never_sees_what_the_previous_one_wrote() {
        // Pooled memories are reset between instances by writing back only the pages
        // a guest dirtied (PAGEMAP_SCAN) up to a budget, and by `madvise` beyond it.
        // Dirty every host page of the memory (more than the budget kept resident),
        // then check that the next instances, which reuse the slot, see a pristine
        // memory: zeros, and the data segment's bytes where the image has them.
        let engine = shared_engine().unwrap();
        let module = wasmtime::Module::new(&engine, PROBE_MODULE).unwrap();
        let pages = (48 * 65536) / 4096;
        assert!(pages * 4096 > MEMORY_KEEP_RESIDENT);
        for round in 0..4 {
            let mut store = wasmtime::Store::new(&engine, ());
            store.set_epoch_deadline(u64::MAX / 2);
            let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
            let probe = instance
                .get_typed_func::<i32, i32>(&mut store, "probe")
                .unwrap();
            let image = probe.call(&mut store, 16).unwrap();
            assert_eq!(image, i32::from_le_bytes(*b"kazi"), "round {round}: image");
            for page in 0..pages {
                let addr = i32::try_from(page * 4096 + 64).unwrap();
                let seen = probe.call(&mut store, addr).unwrap();
                assert_eq!(seen, 0, "round {round}: residue at {addr:#x}");
                assert_eq!(probe.call(&mut store, addr).unwrap(), MARKER);
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_guest_blocked_in_the_kernel_does_not_stop_the_clock() {
        // The job blocks its thread in a system call (as an `open` of a FIFO would);
        // the caller's timeout, on the runtime, still fires, and the runtime's only
        // worker stays free.
        let (unblock, blocked) = std::sync::mpsc::channel::<()>();
        let job = run_off_thread(async move {
            let _ = blocked.recv();
            "finished"
        });
        let waited = tokio::time::timeout(Duration::from_millis(200), job).await;
        assert!(waited.is_err(), "the timeout did not fire");
        // Other work still runs meanwhile.
        assert_eq!(run_off_thread(async { 2 + 2 }).await.unwrap(), 4);
        drop(unblock);
    }

    #[tokio::test]
    async fn jobs_run_to_completion_with_the_runtime_s_timers() {
        let v = run_off_thread(async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            7
        })
        .await
        .unwrap();
        assert_eq!(v, 7);
    }
}
