//! The collectives of `World` on MPI (the `mpi` crate over the system's OpenMPI or MPICH).
//! The universe lives on the thread that joined it, as MPI_THREAD_FUNNELED asks.

use std::cell::RefCell;

use mpi::collective::SystemOperation;
use mpi::datatype::PartitionMut;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

use super::World;
use crate::error::{Error, Result};

thread_local! {
    static UNIVERSE: RefCell<Option<Universe>> = const { RefCell::new(None) };
}

/// Initialise MPI (once, on this thread) and return this rank's place.
pub fn init() -> Result<World> {
    let (universe, _) = mpi::initialize_with_threading(mpi::Threading::Funneled)
        .ok_or_else(|| Error::Runtime("MPI was already initialised".into()))?;
    let w = universe.world();
    let world = World {
        rank: w.rank() as usize,
        size: w.size() as usize,
    };
    UNIVERSE.with(|u| *u.borrow_mut() = Some(universe));
    Ok(world)
}

fn with_world<T>(f: impl FnOnce(&SimpleCommunicator) -> T) -> T {
    UNIVERSE.with(|u| {
        let u = u.borrow();
        let universe = u
            .as_ref()
            .expect("MPI collectives run on the thread that joined the world");
        f(&universe.world())
    })
}

pub fn sum<T: Equivalence + Copy>(buf: &mut [T]) {
    let send = buf.to_vec();
    with_world(|w| w.all_reduce_into(&send[..], buf, SystemOperation::sum()));
}

pub fn broadcast(bytes: &mut Vec<u8>) {
    with_world(|w| {
        let root = w.process_at_rank(0);
        let mut len = bytes.len() as u64;
        root.broadcast_into(&mut len);
        bytes.resize(len as usize, 0);
        root.broadcast_into(&mut bytes[..]);
    })
}

pub fn gather(bytes: &[u8]) -> Vec<Vec<u8>> {
    with_world(|w| {
        let size = w.size() as usize;
        let mut counts = vec![0i32; size];
        w.all_gather_into(&(bytes.len() as i32), &mut counts[..]);
        let displs: Vec<i32> = counts
            .iter()
            .scan(0, |at, &c| {
                let d = *at;
                *at += c;
                Some(d)
            })
            .collect();
        let total = counts.iter().map(|&c| c as usize).sum();
        let mut all = vec![0u8; total];
        {
            let mut parts = PartitionMut::new(&mut all[..], &counts[..], &displs[..]);
            w.all_gather_varcount_into(bytes, &mut parts);
        }
        counts
            .iter()
            .zip(&displs)
            .map(|(&c, &d)| all[d as usize..(d + c) as usize].to_vec())
            .collect()
    })
}

/// End every rank of the job now, with `code` as mpirun's exit status.
pub fn abort(code: i32) -> ! {
    with_world(|w| w.abort(code))
}

/// MPI_Finalize: every rank calls it once, at the end.
pub fn finalize() {
    UNIVERSE.with(|u| drop(u.borrow_mut().take()));
}
