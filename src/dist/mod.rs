//! The processes a run trains on: a world of `size` ranks, this one `rank`, and the collectives
//! data-parallel training needs (a sum of numbers on every rank, bytes from rank 0, bytes from
//! every rank). A plain launch is a world of one, where every collective is the identity. With
//! the `mpi` cargo feature, a launch under `mpirun` joins MPI's world; without it, a launch as
//! one of several ranks is refused, so N ranks never train N separate runs.
//!
//! MPI is called only from the thread that joined it (MPI_THREAD_FUNNELED): the training loop's
//! thread; rayon's workers never touch it.

#[cfg(feature = "mpi")]
mod mpi_world;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use crate::error::{Error, Result};

/// This process's place among the ranks of a training job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct World {
    pub rank: usize,
    pub size: usize,
}

static WORLD: OnceLock<World> = OnceLock::new();

/// Set when the error a rank returns is one every rank reached at the same point.
static AGREED: AtomicBool = AtomicBool::new(false);
/// Set when this rank's error only relays another rank's (which that rank prints).
static RELAYED: AtomicBool = AtomicBool::new(false);

/// Mark `e` as an error every rank reaches together (it came from values all ranks share),
/// so the job ends normally rather than by abort, and rank 0 records it first.
pub fn agreed<E>(e: E) -> E {
    AGREED.store(true, Ordering::SeqCst);
    e
}

/// The environment variables in which launchers give the world size: OpenMPI, MPICH/Hydra
/// (and Intel MPI), MVAPICH.
const WORLD_SIZE_VARS: [&str; 3] = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE"];

/// The world size a launcher announced, with the variable that said it.
fn launched_size() -> Option<(&'static str, usize)> {
    launcher_says(&WORLD_SIZE_VARS)
}

/// The first of the launchers' variables `vars` that is set to a count, with its name.
fn launcher_says(vars: &[&'static str]) -> Option<(&'static str, usize)> {
    vars.iter().find_map(|&var| {
        let n = std::env::var(var).ok()?.trim().parse::<usize>().ok()?;
        Some((var, n))
    })
}

/// How many ranks of the job run on this machine (OpenMPI, MPICH/Hydra), for the default
/// thread count; 1 for a plain launch.
pub fn ranks_on_this_machine() -> usize {
    launcher_says(&["OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"]).map_or(1, |(_, n)| n.max(1))
}

/// This rank's index among the ranks on its machine (OpenMPI, MPICH/Hydra): the GPU it takes.
/// 0 for a plain launch.
pub fn local_rank() -> usize {
    launcher_says(&["OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID"]).map_or(0, |(_, n)| n)
}

/// The world this process trains in: joined on first use (MPI is initialised here when the
/// process was launched as one of several ranks).
pub fn world() -> World {
    *WORLD.get_or_init(|| World { rank: 0, size: 1 })
}

/// Join the launch's world for training: a world of one without a launcher; under `mpirun`
/// with N > 1, MPI's world (feature `mpi`), or an error saying why not.
pub fn join() -> Result<World> {
    if let Some(w) = WORLD.get() {
        return Ok(*w);
    }
    let joined = match launched_size() {
        Some((var, n)) if n > 1 => join_launched(var, n)?,
        _ => World { rank: 0, size: 1 },
    };
    Ok(*WORLD.get_or_init(|| joined))
}

#[cfg(feature = "mpi")]
fn join_launched(_var: &str, _n: usize) -> Result<World> {
    mpi_world::init()
}

#[cfg(not(feature = "mpi"))]
fn join_launched(var: &str, n: usize) -> Result<World> {
    Err(Error::Usage(format!(
        "launched as one of {n} MPI ranks ({var}={n}), but this kiln was built without MPI: each rank would train and write a run of its own; build with `cargo build --release --features mpi` (README: Training on several processes), or run without mpirun"
    )))
}

/// Every rank's verdict on a step that may fail on some ranks alone (reading the config and
/// data, creating the run): all go on, or all stop here together, the ranks that failed with
/// their own error and the others with one naming them, before anything is written.
pub fn all_ok<T>(result: Result<T>) -> Result<T> {
    let w = world();
    if w.is_single() {
        return result;
    }
    let verdicts = w.gather(&[u8::from(result.is_err())]);
    let failed: Vec<String> = verdicts
        .iter()
        .enumerate()
        .filter(|(_, v)| v.first() == Some(&1))
        .map(|(rank, _)| rank.to_string())
        .collect();
    if failed.is_empty() {
        return result;
    }
    AGREED.store(true, Ordering::SeqCst);
    match result {
        Err(e) => Err(e),
        Ok(_) => {
            RELAYED.store(true, Ordering::SeqCst);
            let s = if failed.len() > 1 { "s" } else { "" };
            Err(Error::Usage(format!(
                "rank{s} {} of {} could not go on (the error{s} above)",
                failed.join(", "),
                w.size
            )))
        }
    }
}

/// Refuse to run as one of several ranks (every command but train: each rank would do all of
/// its work and write its outputs).
pub fn refuse_launch(command: &str) -> Result<()> {
    match launched_size() {
        Some((var, n)) if n > 1 => Err(Error::Usage(format!(
            "launched as one of {n} MPI ranks ({var}={n}): {command} does not run across processes, and each rank would do all of it; run it without mpirun (kiln train runs data-parallel under mpirun)"
        ))),
        _ => Ok(()),
    }
}

impl World {
    /// Rank 0 writes the run and prints; the others train and stay quiet.
    pub fn is_lead(&self) -> bool {
        self.rank == 0
    }

    pub fn is_single(&self) -> bool {
        self.size == 1
    }

    /// Element-wise sum across ranks, in place.
    pub fn sum_f32(&self, buf: &mut [f32]) {
        #[cfg(feature = "mpi")]
        if self.size > 1 {
            mpi_world::sum(buf);
        }
        let _ = buf;
    }

    pub fn sum_f64(&self, buf: &mut [f64]) {
        #[cfg(feature = "mpi")]
        if self.size > 1 {
            mpi_world::sum(buf);
        }
        let _ = buf;
    }

    /// Rank 0's bytes on every rank.
    pub fn broadcast(&self, bytes: &mut Vec<u8>) {
        #[cfg(feature = "mpi")]
        if self.size > 1 {
            mpi_world::broadcast(bytes);
        }
        let _ = bytes;
    }

    /// Every rank's bytes, in rank order, on every rank.
    pub fn gather(&self, bytes: &[u8]) -> Vec<Vec<u8>> {
        #[cfg(feature = "mpi")]
        if self.size > 1 {
            return mpi_world::gather(bytes);
        }
        vec![bytes.to_vec()]
    }

    /// The element-wise maximum across ranks (a flag any rank raised).
    pub fn any(&self, flag: bool) -> bool {
        let mut v = [f64::from(u8::from(flag))];
        self.sum_f64(&mut v);
        v[0] > 0.0
    }

    /// Rows `[lo, hi)` of `n` that this rank takes: contiguous, sizes differing by at most one.
    pub fn share(&self, n: usize) -> std::ops::Range<usize> {
        (n * self.rank / self.size)..(n * (self.rank + 1) / self.size)
    }
}

/// End a training process's part in the world: with several ranks, an error of one rank alone
/// ends the whole job at once (the other ranks would wait forever in their next collective),
/// with the error's exit code; otherwise (success, an interruption or an error every rank
/// reached at the same point) MPI is finalised. Rank 0 returns the result to report; the
/// others print their own error (prefixed with their rank) and exit with its code here.
pub fn finish<T>(result: Result<T>) -> Result<T> {
    let w = world();
    if w.is_single() {
        return result;
    }
    let agreed = AGREED.load(Ordering::SeqCst);
    if let Err(e) = &result {
        let own = !matches!(e, Error::Interrupted(_)) && !RELAYED.load(Ordering::SeqCst);
        if !w.is_lead() && own {
            eprintln!("error (rank {} of {}): {e}", w.rank, w.size);
        }
        if !agreed && !matches!(e, Error::Interrupted(_)) {
            if w.is_lead() {
                eprintln!("error (rank 0 of {}): {e}", w.size);
            }
            abort(e.exit_code());
        }
    }
    finalize();
    if w.is_lead() {
        return result;
    }
    std::process::exit(result.as_ref().err().map_or(0, Error::exit_code))
}

#[cfg(feature = "mpi")]
fn abort(code: i32) -> ! {
    mpi_world::abort(code)
}

#[cfg(not(feature = "mpi"))]
fn abort(code: i32) -> ! {
    std::process::exit(code)
}

#[cfg(feature = "mpi")]
fn finalize() {
    mpi_world::finalize()
}

#[cfg(not(feature = "mpi"))]
fn finalize() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_every_row_once() {
        for size in 1..6 {
            for n in 0..20 {
                let mut next = 0;
                for rank in 0..size {
                    let s = World { rank, size }.share(n);
                    assert_eq!(s.start, next, "size {size} n {n} rank {rank}");
                    assert!(s.len() <= n.div_ceil(size) && s.len() >= n / size);
                    next = s.end;
                }
                assert_eq!(next, n);
            }
        }
    }
}
