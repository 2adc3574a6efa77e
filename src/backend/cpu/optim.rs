//! Fused optimizer updates: one pass over each parameter, in PyTorch's order of operations.

use rayon::prelude::*;

use super::wide::widest;
use super::{CHUNK, PARALLEL_MIN};
use crate::backend::spec::{AdamStep, SgdStep};

/// Run `f` over matching chunks of a parameter and its companions, in parallel when large.
/// Each element's update depends only on that element, so the split cannot change results.
fn chunked<F>(p: &mut [f32], g: &[f32], f: F)
where
    F: Fn(usize, &mut [f32], &[f32]) + Sync + Send,
{
    if p.len() < PARALLEL_MIN {
        f(0, p, g);
    } else {
        p.par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK))
            .enumerate()
            .for_each(|(i, (p, g))| f(i * CHUNK, p, g));
    }
}

/// A raw pointer shared by chunks that each touch only their own disjoint range.
#[derive(Clone, Copy)]
struct SlotPtr(*mut f32);
// SAFETY: `chunked` hands each task a disjoint index range; the slot is accessed only there.
unsafe impl Send for SlotPtr {}
unsafe impl Sync for SlotPtr {}

impl SlotPtr {
    /// # Safety
    /// `start..start + len` must be in bounds and accessed by no other task at the same time.
    unsafe fn range<'a>(self, start: usize, len: usize) -> &'a mut [f32] {
        std::slice::from_raw_parts_mut(self.0.add(start), len)
    }
}

pub fn sgd(p: &mut [f32], g: &[f32], momentum: Option<&mut [f32]>, h: &SgdStep) {
    let (lr, wd, mu) = (h.lr, h.weight_decay, h.momentum);
    match momentum {
        None => chunked(p, g, |_, p, g| {
            for (p, &g) in p.iter_mut().zip(g) {
                *p -= lr * (g + wd * *p);
            }
        }),
        Some(buf) => {
            assert_eq!(buf.len(), p.len());
            let buf = SlotPtr(buf.as_mut_ptr());
            chunked(p, g, |start, p, g| {
                // SAFETY: this task's range of the buffer, the same as its range of `p`.
                let b = unsafe { buf.range(start, p.len()) };
                for ((p, &g), b) in p.iter_mut().zip(g).zip(b) {
                    let d = g + wd * *p;
                    *b = if h.first_step { d } else { mu * *b + d };
                    let step = if h.nesterov { d + mu * *b } else { *b };
                    *p -= lr * step;
                }
            })
        }
    }
}

/// Adam's per-element constants, copied out of the step so the loop reads registers (through
/// a reference, the compiler could not rule out a store to `p` changing them, and kept the
/// loop scalar).
#[derive(Clone, Copy)]
struct AdamConsts {
    b1: f32,
    b2: f32,
    eps: f32,
    wd: f32,
    step_size: f32,
    bc2_sqrt: f32,
    decay: f32,
}

/// One chunk of the update; `DECOUPLED` (AdamW) is a constant, so each loop has no branch and
/// vectorises.
#[inline(always)]
fn adam_chunk<const DECOUPLED: bool>(
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    k: AdamConsts,
) {
    let n = p.len();
    let (g, m, v) = (&g[..n], &mut m[..n], &mut v[..n]);
    for j in 0..n {
        let g = if DECOUPLED {
            p[j] *= k.decay;
            g[j]
        } else {
            g[j] + k.wd * p[j]
        };
        m[j] += (1.0 - k.b1) * (g - m[j]);
        v[j] = v[j] * k.b2 + (1.0 - k.b2) * g * g;
        p[j] -= k.step_size * m[j] / (v[j].sqrt() / k.bc2_sqrt + k.eps);
    }
}

widest!(fn adam_coupled(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], k: AdamConsts)
    = adam_chunk::<false>);
widest!(fn adam_decoupled(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], k: AdamConsts)
    = adam_chunk::<true>);

pub fn adam(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], h: &AdamStep) {
    assert!(m.len() == p.len() && v.len() == p.len());
    let c = h.corrections();
    let k = AdamConsts {
        b1: h.beta1,
        b2: h.beta2,
        eps: h.eps,
        wd: h.weight_decay,
        step_size: c.step_size,
        bc2_sqrt: c.bc2_sqrt,
        decay: c.decay,
    };
    let update = if h.decoupled {
        adam_decoupled
    } else {
        adam_coupled
    };
    let (m, v) = (SlotPtr(m.as_mut_ptr()), SlotPtr(v.as_mut_ptr()));
    chunked(p, g, |start, p, g| {
        // SAFETY: this task's ranges of the moments, the same as its range of `p`.
        let (m, v) = unsafe { (m.range(start, p.len()), v.range(start, p.len())) };
        update(p, g, m, v, k);
    });
}
