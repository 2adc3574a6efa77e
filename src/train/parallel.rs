//! Data-parallel training across the ranks of a `dist::World`: each rank takes its share of
//! every global batch, and after each backward pass the ranks agree on the gradients (those of
//! the global batch, as one process would compute them), the loss, and whether to stop.
//! Metrics and evaluations are each rank's share, summed; the model starts from rank 0's state.
//! In a world of one every function here is the identity or close to it.

use std::time::{Duration, Instant};

use crate::dist::World;
use crate::error::{Error, Result};
use crate::metrics::Accumulator;
use crate::tensor::Tensor;

/// What the ranks agreed on after a step.
pub struct Agreed {
    /// The global batch's loss.
    pub loss: f32,
    /// Some rank was asked to stop (Ctrl-C, SIGTERM).
    pub stop: bool,
    /// Some rank's clock passed `train.max_time`.
    pub time_up: bool,
    /// Some rank could not read its rows (a bad row of a streamed file): no step is taken.
    pub failed: bool,
}

/// How the gradients travel, and the time spent in their all-reduce, for the log.
#[derive(Default)]
pub struct ReduceTime {
    pub total: Duration,
    pub steps: u64,
    /// Summed on the GPUs by NCCL (else through the host by MPI).
    pub on_device: bool,
}

/// For GPU ranks: join NCCL (rank 0's unique id sent over MPI) when every rank can load it.
/// Returns whether gradients are summed on the devices; else they go through the host.
pub fn join_nccl(world: &World) -> Result<bool> {
    use crate::backend::cuda::nccl;
    if world.is_single() || world.any(!nccl::present()) {
        return Ok(false);
    }
    let mut id = match world.is_lead() {
        true => nccl::unique_id().map_err(Error::Runtime)?,
        false => Vec::new(),
    };
    world.broadcast(&mut id);
    nccl::join(world.rank, world.size, &id).map_err(Error::Runtime)?;
    Ok(true)
}

/// `reduce_step` with the gradients summed where they are, by NCCL; the loss, weights and
/// flags (a few numbers) still go through MPI.
fn reduce_step_on_device(
    world: &World,
    params: &[(String, Tensor)],
    local: (f32, f64),
    flags: (bool, bool, bool),
    time: &mut ReduceTime,
) -> Result<Agreed> {
    use crate::backend::{cuda::nccl, Storage};
    let _guard = crate::autograd::no_grad();
    let w = local.1 as f32;
    let grads: Vec<Tensor> = params
        .iter()
        .map(|(_, p)| match p.grad() {
            Some(g) => g.mul_scalar(w),
            None => Tensor::zeros_on(p.shape().clone(), p.device()),
        })
        .collect();
    let mut tail = tail_of(params, local, flags);
    let started = Instant::now();
    {
        let mut guards: Vec<_> = grads.iter().map(|g| g.storage_mut()).collect();
        let mut slices: Vec<_> = guards
            .iter_mut()
            .map(|g| match &mut **g {
                Storage::Cuda(s) => s,
                Storage::Cpu(_) => unreachable!("NCCL is joined only for GPU ranks"),
            })
            .collect();
        nccl::sum_in_place(&mut slices).map_err(Error::Runtime)?;
    }
    world.sum_f32(&mut tail);
    time.total += started.elapsed();
    time.steps += 1;
    let (agreed, had, total) = read_tail(&tail);
    for (((_, p), g), &had) in params.iter().zip(&grads).zip(had) {
        if had > 0.0 && total > 0.0 {
            p.set_grad(g.mul_scalar(1.0 / total));
        }
    }
    Ok(agreed)
}

/// Sum the ranks' gradients into the global batch's and write it to every parameter.
/// Each rank averaged its loss over its share (`weight`: rows, or class weights); the sum of
/// `gradient × weight` over ranks, over the sum of weights, is the average over the global
/// batch. One buffer carries everything: the gradients, then the tail (`tail_of`).
pub fn reduce_step(
    world: &World,
    params: &[(String, Tensor)],
    local: (f32, f64),
    flags: (bool, bool, bool),
    time: &mut ReduceTime,
) -> Result<Agreed> {
    if time.on_device {
        return reduce_step_on_device(world, params, local, flags, time);
    }
    let numel: usize = params.iter().map(|(_, p)| p.numel()).sum();
    let mut buf = Vec::with_capacity(numel + params.len() + 5);
    let w = local.1 as f32;
    for (_, p) in params {
        match p.grad() {
            Some(g) => buf.extend(g.try_to_vec()?.into_iter().map(|v| v * w)),
            None => buf.resize(buf.len() + p.numel(), 0.0),
        }
    }
    buf.extend(tail_of(params, local, flags));
    let started = Instant::now();
    world.sum_f32(&mut buf);
    time.total += started.elapsed();
    time.steps += 1;
    let (agreed, had, total) = read_tail(&buf[numel..]);
    let mut at = 0;
    for ((_, p), &had) in params.iter().zip(had) {
        let n = p.numel();
        if had > 0.0 && total > 0.0 {
            let g: Vec<f32> = buf[at..at + n].iter().map(|v| v / total).collect();
            p.set_grad(Tensor::from_vec(g, p.shape().clone()).to_device(p.device()));
        }
        at += n;
    }
    Ok(agreed)
}

/// What rides with the gradients: whether each parameter has one on this rank, the loss times
/// the weight, the weight, and the three flags.
fn tail_of(
    params: &[(String, Tensor)],
    (loss, weight): (f32, f64),
    (stop, time_up, failed): (bool, bool, bool),
) -> Vec<f32> {
    let flag = |b: bool| f32::from(u8::from(b));
    let w = weight as f32;
    let mut tail: Vec<f32> = params
        .iter()
        .map(|(_, p)| flag(p.grad().is_some()))
        .collect();
    tail.extend([loss * w, w, flag(stop), flag(time_up), flag(failed)]);
    tail
}

/// The summed tail: what the ranks agree on, which parameters had a gradient on some rank,
/// and the total weight.
fn read_tail(tail: &[f32]) -> (Agreed, &[f32], f32) {
    let (had, sums) = tail.split_at(tail.len() - 5);
    let total = sums[1];
    let agreed = Agreed {
        loss: if total > 0.0 { sums[0] / total } else { 0.0 },
        stop: sums[2] > 0.0,
        time_up: sums[3] > 0.0,
        failed: sums[4] > 0.0,
    };
    (agreed, had, total)
}

/// The statistics of every rank's share, summed (on every rank).
pub fn merged(world: &World, acc: &Accumulator) -> Result<Accumulator> {
    if world.is_single() {
        return Ok(acc.clone());
    }
    let bytes = serde_json::to_vec(acc).expect("statistics serialize");
    let mut all = Accumulator::default();
    for (rank, part) in world.gather(&bytes).iter().enumerate() {
        let part: Accumulator = serde_json::from_slice(part)
            .map_err(|e| Error::Runtime(format!("rank {rank}'s metrics: {e}")))?;
        if rank == 0 {
            all = part;
        } else {
            all.merge(&part);
        }
    }
    Ok(all)
}

/// The mean over ranks of state that is not learned (batch norm's running statistics): each
/// rank's follows its own shares; the model evaluated and saved holds their mean, on every rank.
pub fn average_buffers(world: &World, buffers: &[(String, Tensor)]) -> Result<()> {
    if world.is_single() || buffers.is_empty() {
        return Ok(());
    }
    let mut buf = Vec::new();
    for (_, t) in buffers {
        buf.extend(t.try_to_vec()?);
    }
    world.sum_f32(&mut buf);
    let n = world.size as f32;
    let mut at = 0;
    for (_, t) in buffers {
        let v: Vec<f32> = buf[at..at + t.numel()].iter().map(|x| x / n).collect();
        at += t.numel();
        *t.storage_mut() = crate::backend::Storage::from_vec(t.device(), v);
    }
    Ok(())
}

/// Rank 0's tensors (weights, optimizer state) and `extra` bytes (training progress) on every
/// rank, so all ranks start, resume and evaluate from the same state, whatever each read.
pub fn share_state(world: &World, tensors: &[(String, Tensor)], extra: &mut Vec<u8>) -> Result<()> {
    if world.is_single() {
        return Ok(());
    }
    let mut bytes = Vec::new();
    if world.is_lead() {
        bytes.extend((extra.len() as u64).to_le_bytes());
        bytes.extend_from_slice(extra);
        for (_, t) in tensors {
            bytes.extend(t.try_to_vec()?.iter().flat_map(|v| v.to_le_bytes()));
        }
    }
    world.broadcast(&mut bytes);
    if world.is_lead() {
        return Ok(());
    }
    let expected: usize = 8 + tensors.iter().map(|(_, t)| t.numel() * 4).sum::<usize>();
    let len = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize);
    let Some(len) = len.filter(|&l| bytes.len() == expected + l) else {
        return Err(Error::Runtime(format!(
            "rank {}: rank 0's model state has {} bytes, this rank's model needs {expected} plus its progress: the ranks built different models (different configs or data?)",
            world.rank,
            bytes.len()
        )));
    };
    *extra = bytes[8..8 + len].to_vec();
    let mut at = 8 + len;
    for (_, t) in tensors {
        let n = t.numel() * 4;
        let v: Vec<f32> = bytes[at..at + n]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect();
        at += n;
        *t.storage_mut() = crate::backend::Storage::from_vec(t.device(), v);
    }
    Ok(())
}

/// Check that every rank ends training with the same parameters (each applied the same
/// averaged gradients to the same start): a checksum of each rank's parameter bits, compared.
/// Returns the checksum; ranks that drifted apart are an error naming them.
pub fn same_parameters(world: &World, params: &[(String, Tensor)]) -> Result<u64> {
    // FNV-1a over the parameters' bits, in order.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (_, p) in params {
        for v in p.try_to_vec()? {
            for byte in v.to_bits().to_le_bytes() {
                hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
            }
        }
    }
    let all = world.gather(&hash.to_le_bytes());
    let differ: Vec<String> = all
        .iter()
        .enumerate()
        .filter(|(_, b)| *b != &all[0])
        .map(|(r, _)| r.to_string())
        .collect();
    if differ.is_empty() {
        return Ok(hash);
    }
    Err(crate::dist::agreed(Error::Runtime(format!(
        "the ranks' parameters differ after training (ranks {} against rank 0): a rank computed differently",
        differ.join(", ")
    ))))
}
