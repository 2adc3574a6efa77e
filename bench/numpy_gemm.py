#!/usr/bin/env python3
"""numpy's (OpenBLAS's) f32 GEMM GFLOP/s, the reference the engine benchmark prints beside
kiln's. Usage: numpy_gemm.py SPEC... with SPEC = MxKxN[:FLAGS], FLAGS two letters n or t for
op(A) and op(B) (default nn); prints `SPEC GFLOPS` per line. The caller sets the thread count
through OPENBLAS_NUM_THREADS / OMP_NUM_THREADS."""
import sys
import time

import numpy as np


def operands(spec):
    dims, _, flags = spec.partition(":")
    m, k, n = (int(v) for v in dims.split("x"))
    flags = flags or "nn"
    ta, tb = flags[0] == "t", flags[1] == "t"
    rng = np.random.default_rng(0)
    a = rng.standard_normal((k, m) if ta else (m, k), dtype=np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n), dtype=np.float32)
    return (a.T if ta else a), (b.T if tb else b), 2 * m * k * n


def gflops(spec, min_seconds=0.5):
    a, b, flops = operands(spec)
    a @ b  # warm up
    samples = []
    for _ in range(5):
        reps, start = 0, time.perf_counter()
        while True:
            a @ b
            reps += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds / 5:
                break
        samples.append(flops * reps / elapsed / 1e9)
    return sorted(samples)[len(samples) // 2]


for arg in sys.argv[1:]:
    print(arg, f"{gflops(arg):.1f}", flush=True)
