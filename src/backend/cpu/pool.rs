//! 2-D pooling on the CPU, one (image, channel) plane per task. The common 2×2 window with
//! stride 2 has its own loops over row pairs; other geometries take the general loops, which
//! visit each window in the same order (row by row), so both give identical bits.
//!
//! Max pooling for training records each window's argmax (the first position holding the
//! maximum, as an index into the window), so its backward reads that small buffer and `dy`
//! instead of the whole input again: by the backward pass the input has long left the cache.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::{filled, CHUNK, PARALLEL_MIN};
use crate::backend::spec::{Conv2dGeom, Pool};

/// Run `f(plane_index, plane)` over the planes of `out`, in parallel when `work` is large.
fn per_plane<T: Send>(
    out: &mut [T],
    plane: usize,
    work: usize,
    f: impl Fn(usize, &mut [T]) + Sync + Send,
) {
    if work < PARALLEL_MIN {
        out.chunks_mut(plane).enumerate().for_each(|(p, o)| f(p, o));
    } else {
        out.par_chunks_mut(plane)
            .enumerate()
            .for_each(|(p, o)| f(p, o));
    }
}

fn is_2x2_stride_2(g: &Conv2dGeom) -> bool {
    (g.kh, g.kw, g.sh, g.sw) == (2, 2, 2, 2)
}

/// Offset in the plane of the first cell of the window under output (oy, ox).
#[inline]
fn window_start(g: &Conv2dGeom, oy: usize, ox: usize) -> usize {
    oy * g.sh * g.w + ox * g.sw
}

/// Fold the values of a window in order (row by row) with `step`.
#[inline]
fn fold_window<A>(
    x: &[f32],
    g: &Conv2dGeom,
    start: usize,
    init: A,
    mut step: impl FnMut(A, usize, f32) -> A,
) -> A {
    let mut acc = init;
    for ky in 0..g.kh {
        for (kx, &v) in x[start + ky * g.w..][..g.kw].iter().enumerate() {
            acc = step(acc, ky * g.kw + kx, v);
        }
    }
    acc
}

/// One step of a first-argmax scan: NaN never wins, a later value only when strictly larger.
/// Index −1 means no number was seen (an all-NaN window: its maximum gets no gradient).
#[inline]
fn argmax_step((best, at): (f32, f32), i: usize, v: f32) -> (f32, f32) {
    if v > best || (at < 0.0 && !v.is_nan()) {
        (v, i as f32)
    } else {
        (best, at)
    }
}

/// Pooling of one plane into `y` (and for max with `argmax`, each window's first maximum).
fn forward_plane(
    kind: Pool,
    x: &[f32],
    y: &mut [MaybeUninit<f32>],
    mut argmax: Option<&mut [MaybeUninit<f32>]>,
    g: &Conv2dGeom,
) {
    let area = (g.kh * g.kw) as f32;
    for oy in 0..g.oh {
        for ox in 0..g.ow {
            let (o, start) = (oy * g.ow + ox, window_start(g, oy, ox));
            let v = match kind {
                Pool::Avg => fold_window(x, g, start, 0.0, |acc, _, v| acc + v) / area,
                Pool::Max => {
                    let (best, at) =
                        fold_window(x, g, start, (f32::NEG_INFINITY, -1.0), argmax_step);
                    if let Some(a) = argmax.as_deref_mut() {
                        a[o].write(at);
                    }
                    best
                }
            };
            y[o].write(v);
        }
    }
}

/// Max over 2×2 windows with stride 2, a pair of rows at a time, without branches (so the
/// loop vectorises): the maximum folds with `f32::max` as the general path does, and the argmax
/// is the first cell equal to it, picked with selects.
fn max_plane_2x2(
    x: &[f32],
    y: &mut [MaybeUninit<f32>],
    mut argmax: Option<&mut [MaybeUninit<f32>]>,
    g: &Conv2dGeom,
) {
    let first_equal = |c: [f32; 4], m: f32| {
        let at = if c[3] == m { 3.0 } else { -1.0 };
        let at = if c[2] == m { 2.0 } else { at };
        let at = if c[1] == m { 1.0 } else { at };
        if c[0] == m {
            0.0
        } else {
            at
        }
    };
    for oy in 0..g.oh {
        let r0 = x[2 * oy * g.w..][..2 * g.ow].chunks_exact(2);
        let r1 = x[(2 * oy + 1) * g.w..][..2 * g.ow].chunks_exact(2);
        let yrow = &mut y[oy * g.ow..][..g.ow];
        let cells = r0.zip(r1).map(|(a, b)| [a[0], a[1], b[0], b[1]]);
        match argmax {
            None => {
                for (o, c) in yrow.iter_mut().zip(cells) {
                    o.write(f32::NEG_INFINITY.max(c[0]).max(c[1]).max(c[2]).max(c[3]));
                }
            }
            Some(ref mut am) => {
                let arow = &mut am[oy * g.ow..][..g.ow];
                for ((o, a), c) in yrow.iter_mut().zip(arow.iter_mut()).zip(cells) {
                    let m = f32::NEG_INFINITY.max(c[0]).max(c[1]).max(c[2]).max(c[3]);
                    o.write(m);
                    a.write(first_equal(c, m));
                }
            }
        }
    }
}

/// Pooled planes `[n, c, oh, ow]`, and for max pooling with `with_argmax` the argmax buffer.
/// Tasks take whole planes, about `CHUNK` input elements each.
fn pool(kind: Pool, x: &[f32], g: &Conv2dGeom, with_argmax: bool) -> (Vec<f32>, Option<Vec<f32>>) {
    let (in_plane, out_plane) = (g.h * g.w, g.oh * g.ow);
    let len = g.n * g.c * out_plane;
    if out_plane == 0 {
        return (Vec::new(), with_argmax.then(Vec::new));
    }
    let per_task = (CHUNK / in_plane.max(1)).max(1) * out_plane;
    let planes =
        |first: usize, y: &mut [MaybeUninit<f32>], mut am: Option<&mut [MaybeUninit<f32>]>| {
            for (i, y) in y.chunks_mut(out_plane).enumerate() {
                let p = first / out_plane + i;
                let x = &x[p * in_plane..][..in_plane];
                let am = am
                    .as_deref_mut()
                    .map(|a| &mut a[i * out_plane..][..out_plane]);
                if kind == Pool::Max && is_2x2_stride_2(g) {
                    max_plane_2x2(x, y, am, g)
                } else {
                    forward_plane(kind, x, y, am, g)
                }
            }
        };
    let parallel = x.len() >= PARALLEL_MIN;
    if !(with_argmax && kind == Pool::Max) {
        let y = filled(len, |y| {
            if parallel {
                y.par_chunks_mut(per_task)
                    .enumerate()
                    .for_each(|(t, y)| planes(t * per_task, y, None));
            } else {
                planes(0, y, None);
            }
        });
        return (y, None);
    }
    let mut argmax = Vec::new();
    let y = filled(len, |y| {
        argmax = filled(len, |a| {
            if parallel {
                y.par_chunks_mut(per_task)
                    .zip(a.par_chunks_mut(per_task))
                    .enumerate()
                    .for_each(|(t, (y, a))| planes(t * per_task, y, Some(a)));
            } else {
                planes(0, y, Some(a));
            }
        });
    });
    (y, Some(argmax))
}

pub fn forward(kind: Pool, x: &[f32], g: &Conv2dGeom) -> Vec<f32> {
    pool(kind, x, g, false).0
}

/// Max pooling and each window's argmax (index into the window, −1 for none).
pub fn max_forward_with_argmax(x: &[f32], g: &Conv2dGeom) -> (Vec<f32>, Vec<f32>) {
    let (y, argmax) = pool(Pool::Max, x, g, true);
    (y, argmax.expect("max pooling records its argmax"))
}

/// dx of max pooling: each window's dy at its recorded argmax.
pub fn max_backward(argmax: &[f32], dy: &[f32], g: &Conv2dGeom) -> Vec<f32> {
    let (in_plane, out_plane) = (g.h * g.w, g.oh * g.ow);
    let len = g.n * g.c * in_plane;
    let work = argmax.len() * 4;
    if is_2x2_stride_2(g) {
        // Windows tile the plane: every cell is stored once (no zeroing pass first).
        return filled(len, |dx| {
            per_plane(dx, in_plane.max(1), work, |p, dx| {
                let (am, dy) = (&argmax[p * out_plane..], &dy[p * out_plane..]);
                max_backward_plane_2x2(&am[..out_plane], &dy[..out_plane], dx, g)
            })
        });
    }
    let mut dx = vec![0.0; len];
    per_plane(&mut dx, in_plane.max(1), work, |p, dx| {
        let (am, dy) = (&argmax[p * out_plane..], &dy[p * out_plane..]);
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let o = oy * g.ow + ox;
                if am[o] >= 0.0 {
                    let i = am[o] as usize;
                    dx[window_start(g, oy, ox) + (i / g.kw) * g.w + i % g.kw] += dy[o];
                }
            }
        }
    });
    dx
}

/// One plane of `max_backward` for 2×2 windows with stride 2: the four cells of each window
/// stored with selects (no branches, so it vectorises), then zeros past the last window.
fn max_backward_plane_2x2(am: &[f32], dy: &[f32], dx: &mut [MaybeUninit<f32>], g: &Conv2dGeom) {
    let width = 2 * g.ow;
    for oy in 0..g.oh {
        let (top, bottom) = dx[2 * oy * g.w..][..2 * g.w].split_at_mut(g.w);
        let windows = am[oy * g.ow..][..g.ow].iter().zip(&dy[oy * g.ow..][..g.ow]);
        let cells = top[..width]
            .chunks_exact_mut(2)
            .zip(bottom[..width].chunks_exact_mut(2));
        for ((&a, &d), (c0, c1)) in windows.zip(cells) {
            let pick = |i: f32| if a == i { d } else { 0.0 };
            c0[0].write(pick(0.0));
            c0[1].write(pick(1.0));
            c1[0].write(pick(2.0));
            c1[1].write(pick(3.0));
        }
        for cell in top[width..].iter_mut().chain(bottom[width..].iter_mut()) {
            cell.write(0.0);
        }
    }
    for cell in &mut dx[2 * g.oh * g.w..] {
        cell.write(0.0);
    }
}

/// dx of average pooling: each window's dy spread evenly over it.
pub fn avg_backward(dy: &[f32], g: &Conv2dGeom) -> Vec<f32> {
    let (in_plane, out_plane) = (g.h * g.w, g.oh * g.ow);
    let mut dx = vec![0.0; g.n * g.c * in_plane];
    let area = (g.kh * g.kw) as f32;
    per_plane(&mut dx, in_plane.max(1), dy.len() * g.kh * g.kw, |p, dx| {
        let dy = &dy[p * out_plane..][..out_plane];
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let (share, start) = (dy[oy * g.ow + ox] / area, window_start(g, oy, ox));
                for ky in 0..g.kh {
                    let row = start + ky * g.w;
                    dx[row..row + g.kw].iter_mut().for_each(|d| *d += share);
                }
            }
        }
    });
    dx
}
