//! The CUDA backend: one device per process, opened by `open`, with every kernel compiled once by
//! NVRTC, launched on one stream, and matrix products through cuBLAS.
//!
//! The driver, NVRTC and cuBLAS are loaded at run time (cudarc's dynamic loading), so kiln builds
//! and runs on machines without CUDA; `open` probes for each library first, because cudarc
//! panics when one is missing, and turns every failure into an error that says what is absent.
//!
//! Memory comes from the driver's stream-ordered pool (`cuMemAllocAsync`), told to keep what is
//! freed: the per-step buffers of a training step are reused without going back to the driver.
//!
//! A failure on the open device (out of memory, a faulting kernel, a failed copy) never ends the
//! process: the first one is recorded and kept, like CUDA's own sticky errors. From then on
//! nothing more is launched, copied or allocated (allocations return placeholders of the right
//! length), data read back is NaN, and the sync points (`Gpu::check`, `Storage::try_to_vec`)
//! report the failure as an error for the caller to handle.

mod kernels;
pub mod nccl;
mod ops;

use std::collections::HashMap;
use std::fmt::Display;
use std::sync::{Arc, OnceLock};

use cudarc::cublas::CudaBlas;
use cudarc::driver::{CudaContext, CudaFunction, CudaSlice, CudaStream, LaunchConfig};

use kernels::BLOCK;
pub use kernels::{compile_options, declared_kernels, KernelFile, FILES as KERNEL_FILES};
pub use ops::{download, duplicate, upload, Cuda};

/// The open device: its stream, cuBLAS handle and compiled kernels.
pub struct Gpu {
    pub ordinal: usize,
    pub name: String,
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    blas: CudaBlas,
    kernels: HashMap<&'static str, CudaFunction>,
    /// The first failure, as `what: driver error`; never cleared.
    error: OnceLock<String>,
}

static GPU: OnceLock<Gpu> = OnceLock::new();

/// Whether the CUDA driver library can be loaded at all (no device is touched).
pub fn driver_present() -> bool {
    // SAFETY: only tries to dlopen the library by its usual names.
    unsafe { cudarc::driver::sys::is_culib_present() }
}

/// Open device `ordinal` for this process (once; a second call with the same ordinal returns the
/// open device).
pub fn open(ordinal: usize) -> Result<&'static Gpu, String> {
    if let Some(g) = GPU.get() {
        return if g.ordinal == ordinal {
            Ok(g)
        } else {
            Err(format!(
                "cuda:{ordinal}: this process already uses cuda:{}",
                g.ordinal
            ))
        };
    }
    let gpu = Gpu::open(ordinal)?;
    Ok(GPU.get_or_init(|| gpu))
}

/// The open device, if this process opened one.
pub fn opened() -> Option<&'static Gpu> {
    GPU.get()
}

/// The open device. Only reachable through CUDA storage, which exists only after `open`.
pub(crate) fn gpu() -> &'static Gpu {
    GPU.get()
        .expect("CUDA storage exists only after the device was opened")
}

impl Gpu {
    fn open(ordinal: usize) -> Result<Gpu, String> {
        // SAFETY (the three probes): each only tries to dlopen a library by its usual names.
        if !driver_present() {
            return Err("the NVIDIA driver library (libcuda.so) was not found: this machine has no usable NVIDIA GPU driver".into());
        }
        if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
            return Err("NVRTC (libnvrtc.so) was not found: install the CUDA runtime compiler (e.g. `pip install nvidia-cuda-nvrtc`) and add its lib folder to LD_LIBRARY_PATH".into());
        }
        if !unsafe { cudarc::cublas::sys::is_culib_present() } {
            return Err("cuBLAS (libcublas.so) was not found: install it (e.g. `pip install nvidia-cublas`) and add its lib folder to LD_LIBRARY_PATH".into());
        }
        let count =
            CudaContext::device_count().map_err(|e| format!("cannot count devices: {e}"))?;
        if ordinal >= count.max(0) as usize {
            return Err(format!(
                "cuda:{ordinal}: no such device ({count} CUDA device(s) found)"
            ));
        }
        let ctx = CudaContext::new(ordinal).map_err(|e| format!("cuda:{ordinal}: {e}"))?;
        // SAFETY: kiln uses one stream, so cudarc's cross-stream event tracking is unneeded;
        // disabling it before any allocation saves two events per buffer.
        unsafe { ctx.disable_event_tracking() };
        let name = ctx.name().unwrap_or_else(|_| "unknown GPU".into());
        let stream = ctx
            .new_stream()
            .map_err(|e| format!("cuda:{ordinal}: cannot create a stream: {e}"))?;
        keep_freed_memory(&ctx);
        let blas = CudaBlas::new(stream.clone())
            .map_err(|e| format!("cuda:{ordinal}: cannot start cuBLAS: {e}"))?;
        let (major, minor) = ctx
            .compute_capability()
            .map_err(|e| format!("cuda:{ordinal}: {e}"))?;
        let arch = format!("compute_{major}{minor}");
        let mut kernels = HashMap::new();
        for f in KERNEL_FILES {
            let module = compile(f, &arch).and_then(|ptx| {
                ctx.load_module(ptx)
                    .map_err(|e| format!("{}: cannot load the compiled module: {e}", f.file))
            })?;
            for &name in f.kernels {
                let func = module
                    .load_function(name)
                    .map_err(|e| format!("{}: kernel {name}: {e}", f.file))?;
                kernels.insert(name, func);
            }
        }
        Ok(Gpu {
            ordinal,
            name,
            ctx,
            stream,
            blas,
            kernels,
            error: OnceLock::new(),
        })
    }

    /// Record a failure. The first is kept: later ones are usually its consequences.
    fn fail(&self, what: &str, err: impl Display) {
        let _ = self.error.set(format!("{what}: {err}"));
    }

    /// Whether a failure has been recorded (without waiting for queued work).
    fn failed(&self) -> bool {
        self.error.get().is_some()
    }

    /// The first failure recorded so far, without waiting for queued work.
    pub fn error(&self) -> Option<&str> {
        self.error.get().map(String::as_str)
    }

    /// Wait for the queued work, then report the first failure, if any.
    pub fn check(&self) -> Result<(), String> {
        if !self.failed() {
            if let Err(e) = self.stream.synchronize() {
                self.fail("synchronize", e)
            }
        }
        self.error().map_or(Ok(()), |e| Err(e.to_string()))
    }

    /// The compiled kernel `name`, or `None` once the device has failed: nothing more is
    /// launched.
    fn kernel(&self, name: &str) -> Option<&CudaFunction> {
        if self.failed() {
            return None;
        }
        let f = self.kernels.get(name);
        if f.is_none() {
            self.fail("launch", format!("no kernel named {name}"));
        }
        f
    }

    /// Free and total device memory in bytes.
    pub fn memory(&self) -> Option<(usize, usize)> {
        self.ctx.mem_get_info().ok()
    }

    /// The most bytes kiln's buffers held at once so far: the stream-ordered pool's high-water
    /// mark of memory in use (comparable to PyTorch's `torch.cuda.max_memory_allocated`; the
    /// CUDA context and cuBLAS's workspace are outside it).
    pub fn peak_bytes(&self) -> Option<u64> {
        use cudarc::driver::sys;
        let mut pool = std::ptr::null_mut();
        let mut peak = 0u64;
        // SAFETY: plain driver calls on the current device with valid out-pointers; the
        // attribute is a 64-bit value.
        let ok = unsafe {
            sys::cuDeviceGetDefaultMemPool(&mut pool, self.ctx.cu_device())
                == sys::CUresult::CUDA_SUCCESS
                && sys::cuMemPoolGetAttribute(
                    pool,
                    sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_USED_MEM_HIGH,
                    (&mut peak as *mut u64).cast(),
                ) == sys::CUresult::CUDA_SUCCESS
        };
        ok.then_some(peak)
    }

    /// A buffer of `len` elements (floats, or the 16-bit operands of mixed products); a
    /// placeholder once the device has failed, or when this allocation fails (which is then
    /// recorded).
    fn alloc<T: cudarc::driver::DeviceRepr>(&self, len: usize) -> CudaSlice<T> {
        if self.failed() {
            return self.placeholder(len);
        }
        let r = if len == 0 {
            self.stream.null()
        } else {
            // SAFETY: every caller writes all `len` elements (a kernel or a copy) before reading.
            unsafe { self.stream.alloc::<T>(len) }
        };
        r.unwrap_or_else(|e| {
            self.fail(&format!("allocate {len} values"), e);
            self.placeholder(len)
        })
    }

    /// A buffer that says it holds `len` elements but owns no memory (a null device pointer):
    /// what allocations and copies return once the device has failed, so that lengths and
    /// shapes stay consistent while no more work runs.
    fn placeholder<T>(&self, len: usize) -> CudaSlice<T> {
        debug_assert!(self.failed(), "placeholders exist only after a failure");
        // SAFETY: the null pointer is never dereferenced. Placeholders are made only once a
        // failure is recorded, which is never cleared, and every launch (`kernel`), cuBLAS call
        // and copy checks for it first and then does nothing (`download` returns NaN without
        // reading). With event tracking off, making one calls no driver function; dropping one
        // asks the driver to free a null pointer, whose error cudarc records and ignores.
        unsafe { self.stream.upgrade_device_ptr(0, len) }
    }
}

/// Compile one kernel file to PTX for `arch`, quoting the compiler's log on failure.
pub fn compile(f: &KernelFile, arch: &str) -> Result<cudarc::nvrtc::Ptx, String> {
    let opts = cudarc::nvrtc::CompileOptions {
        options: compile_options(arch),
        name: Some(f.file.to_string()),
        ..Default::default()
    };
    cudarc::nvrtc::compile_ptx_with_opts(f.source(), opts).map_err(|e| match e {
        cudarc::nvrtc::CompileError::CompileError { log, .. } => {
            format!("{} does not compile:\n{}", f.file, log.to_string_lossy())
        }
        other => format!("{}: NVRTC: {other}", f.file),
    })
}

/// Raise the default memory pool's release threshold so freed blocks stay cached in the pool
/// instead of returning to the driver at every synchronization (a training step synchronizes
/// once, to read its loss). Best effort: without it allocation is slower, not wrong.
fn keep_freed_memory(ctx: &CudaContext) {
    use cudarc::driver::sys;
    let mut pool = std::ptr::null_mut();
    // SAFETY: plain driver calls on the current device with valid out-pointers.
    unsafe {
        if sys::cuDeviceGetDefaultMemPool(&mut pool, ctx.cu_device()) == sys::CUresult::CUDA_SUCCESS
        {
            let mut threshold = u64::MAX;
            sys::cuMemPoolSetAttribute(
                pool,
                sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
                (&mut threshold as *mut u64).cast(),
            );
        }
    }
}

/// Most blocks a launch asks for; the kernels loop over the rest.
const MAX_BLOCKS: usize = 65_535;

/// A launch shape for `n` independent elements: `BLOCK` threads a block, at most `MAX_BLOCKS`
/// blocks (the kernels' `GRID_STRIDE` loops cover the rest).
fn grid_for(n: usize) -> LaunchConfig {
    let blocks = n.div_ceil(BLOCK as usize).clamp(1, MAX_BLOCKS) as u32;
    LaunchConfig {
        grid_dim: (blocks, 1, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// A launch shape for kernels that give each of `items` outputs a whole block (a tree over
/// `BLOCK` partial results), at most `MAX_BLOCKS` blocks.
fn block_each(items: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (items.clamp(1, MAX_BLOCKS) as u32, 1, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    }
}
