//! Summing gradients across the GPUs of a data-parallel job with NCCL, on the device and on
//! kiln's one stream (so it is ordered after the backward pass that wrote them). NCCL is loaded
//! at run time like the rest of CUDA; where it is absent the caller sums through the host.
//! The communicator lives on the training thread, which is the only one that calls it.

use std::cell::RefCell;

use cudarc::driver::CudaSlice;
use cudarc::nccl::safe::{Comm, Id, ReduceOp};

use super::gpu;

thread_local! {
    static COMM: RefCell<Option<Comm>> = const { RefCell::new(None) };
}

/// Whether libnccl loads on this machine.
pub fn present() -> bool {
    // SAFETY: only tries to dlopen the library by its usual names.
    unsafe { cudarc::nccl::sys::is_culib_present() }
}

/// A new job's identifier (rank 0 makes it; the others receive its bytes).
pub fn unique_id() -> Result<Vec<u8>, String> {
    let id = Id::new().map_err(|e| format!("NCCL: cannot make a unique id: {e:?}"))?;
    Ok(id.internal().iter().map(|&c| c as u8).collect())
}

/// Join the job's communicator as `rank` of `size`, on the open device's stream.
pub fn join(rank: usize, size: usize, id: &[u8]) -> Result<(), String> {
    let mut internal = [0 as std::ffi::c_char; 128];
    if id.len() != internal.len() {
        return Err(format!("NCCL: a unique id of {} bytes, not 128", id.len()));
    }
    for (dst, &b) in internal.iter_mut().zip(id) {
        *dst = b as std::ffi::c_char;
    }
    let comm = Comm::from_rank(gpu().stream.clone(), rank, size, Id::uninit(internal))
        .map_err(|e| format!("NCCL: rank {rank} of {size} cannot join: {e:?}"))?;
    COMM.with(|c| *c.borrow_mut() = Some(comm));
    Ok(())
}

/// Whether this thread joined a communicator.
pub fn joined() -> bool {
    COMM.with(|c| c.borrow().is_some())
}

/// Sum each buffer across the ranks, in place, as one NCCL group.
pub fn sum_in_place(buffers: &mut [&mut CudaSlice<f32>]) -> Result<(), String> {
    COMM.with(|c| {
        let c = c.borrow();
        let comm = c.as_ref().ok_or("NCCL: no communicator joined")?;
        let mut group = comm.group();
        for buf in buffers.iter_mut() {
            group
                .all_reduce_in_place(buf.as_view_mut(), &ReduceOp::Sum)
                .map_err(|e| format!("NCCL all-reduce: {e:?}"))?;
        }
        Ok(())
    })
}
