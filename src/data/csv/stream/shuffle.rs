//! The approximate shuffle of a streamed epoch: a buffer of rows; once full, each incoming
//! row takes the place of a uniformly drawn one, which leaves; at the end the rest leave in a
//! random order. A row moves at most `capacity` places earlier than in the file, so this
//! shuffles well only when the buffer is large next to runs of similar rows (a file sorted by
//! class needs a buffer of more than a class's rows).

use crate::tensor::Rng;

pub struct ShuffleBuffer<T> {
    slots: Vec<T>,
    capacity: usize,
    rng: Rng,
}

impl<T> ShuffleBuffer<T> {
    /// A buffer of `capacity` items (0: items pass straight through, in order).
    pub fn new(capacity: usize, rng: Rng) -> ShuffleBuffer<T> {
        ShuffleBuffer {
            slots: Vec::with_capacity(capacity.min(1 << 20)),
            capacity,
            rng,
        }
    }

    /// Take `item`; returns the one that leaves, if any.
    pub fn push(&mut self, item: T) -> Option<T> {
        if self.capacity == 0 {
            return Some(item);
        }
        if self.slots.len() < self.capacity {
            self.slots.push(item);
            return None;
        }
        let at = self.rng.below(self.capacity);
        Some(std::mem::replace(&mut self.slots[at], item))
    }

    /// After the last `push`: one of the items left, drawn uniformly; `None` when empty.
    pub fn drain_one(&mut self) -> Option<T> {
        if self.slots.is_empty() {
            return None;
        }
        let at = self.rng.below(self.slots.len());
        Some(self.slots.swap_remove(at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(n: u32, capacity: usize, seed: u64) -> Vec<u32> {
        let mut b = ShuffleBuffer::new(capacity, Rng::new(seed));
        let mut out: Vec<u32> = (0..n).filter_map(|i| b.push(i)).collect();
        out.extend(std::iter::from_fn(|| b.drain_one()));
        out
    }

    #[test]
    fn a_seeded_permutation_or_file_order() {
        let a = order(100, 10, 1);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
        assert_eq!(a, order(100, 10, 1));
        assert_ne!(a, order(100, 10, 2));
        assert_ne!(a, sorted);
        assert_eq!(order(20, 0, 1), (0..20).collect::<Vec<_>>());
        // A buffer larger than the input is a full shuffle of it.
        assert_eq!(order(5, 50, 3).len(), 5);
    }
}
