#!/usr/bin/env python3
"""Data-parallel scaling on this machine: training samples/s of mnist_mlp and mnist_cnn with
one process against N ranks under mpirun, at several threads per rank, and the time per step
spent in the gradient all-reduce (from the run's log). Needs kiln built with
`cargo build --release --features mpi` and OpenMPI's mpirun.

    python3 bench/scaling.py [--kiln target/release/kiln] [--layouts 1x2,2x1,1x1] [--repeats 3]

A layout RxT is R ranks of T threads each. samples/s is the median over epochs (after the
first) of training rows over the epoch's seconds in metrics.csv (no validation split, so an
epoch's seconds are training alone); the figure is the median over repeats.
"""
import argparse
import csv
import os
import re
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# config, training rows, epochs, global batch
MODELS = {
    "mnist_mlp": ("configs/mnist_mlp.toml", 8000, 4, 32),
    "mnist_cnn": ("configs/mnist_cnn.toml", 8000, 3, 64),
}


def run(kiln, config, ranks, threads, run_dir, epochs):
    args = [kiln, "train", config, "--quiet", "--run-dir", run_dir, "--threads", str(threads),
            "--set", f"train.epochs={epochs}", "--set", "data.valid_split=0.0"]
    if ranks > 1:
        args = ["mpirun", "--allow-run-as-root", "--oversubscribe", "--bind-to", "none",
                "-np", str(ranks)] + args
    subprocess.run(args, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(run_dir, "metrics.csv")) as f:
        seconds = [float(r["seconds"]) for r in csv.DictReader(f)]
    log = open(os.path.join(run_dir, "train.log")).read()
    m = re.search(r"all-reduce: ([0-9.]+) ms per step", log)
    return seconds, float(m.group(1)) if m else None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--kiln", default=os.path.join(ROOT, "target/release/kiln"))
    p.add_argument("--layouts", default="1x2,2x1,1x1")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--models", default="mnist_mlp,mnist_cnn")
    a = p.parse_args()
    print("| model | ranks × threads | samples/s | all-reduce ms/step | step ms | share in all-reduce |")
    print("|---|---|---:|---:|---:|---:|")
    for name in a.models.split(","):
        config, rows, epochs, batch = MODELS[name]
        for layout in a.layouts.split(","):
            ranks, threads = map(int, layout.split("x"))
            rates, reduces = [], []
            for _ in range(a.repeats):
                with tempfile.TemporaryDirectory() as d:
                    seconds, reduce_ms = run(a.kiln, config, ranks, threads, os.path.join(d, "run"), epochs)
                rates.append(statistics.median(rows / s for s in seconds[1:]))
                if reduce_ms is not None:
                    reduces.append(reduce_ms)
            rate = statistics.median(rates)
            step_ms = batch / rate * 1e3
            red = statistics.median(reduces) if reduces else None
            red_s = f"{red:.3f}" if red is not None else "–"
            share = f"{red / step_ms:.0%}" if red is not None else "–"
            print(f"| {name} | {ranks} × {threads} | {rate:,.0f} | {red_s} | {step_ms:.2f} | {share} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
