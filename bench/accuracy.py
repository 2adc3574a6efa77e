#!/usr/bin/env python3
"""Test accuracy of kiln's shipped configs beside PyTorch's on the same data and model
(bench/pytorch/train.py), over several seeds: one seed's figure on a few thousand test rows
moves by a point or more with the initialisation alone. Prints a Markdown table of mean ± sample
standard deviation and the difference of the means.

Usage: python3 bench/accuracy.py [--seeds 1,2,3] [--only rnn,resnet,spam,penguins]
                                 [--python PYTHON_WITH_TORCH] [--no-build]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KILN = ROOT / "target" / "release" / "kiln"
sys.path.insert(0, str(ROOT / "bench"))
from run import CONFIGS, TORCH_ENV  # noqa: E402


def kiln_accuracy(name, seed, work):
    out = subprocess.run([KILN, "train", CONFIGS[name], "--threads", "2", "--quiet", "--json", "--run-dir",
                          work / f"k-{name}-{seed}", "--set", f"seed={seed}"], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout)["test"]["accuracy"]


def torch_accuracy(name, seed, work, python):
    out = subprocess.run([python, "bench/pytorch/train.py", name, ROOT, work / f"t-{name}-{seed}.pt"], cwd=ROOT,
                         capture_output=True, text=True, check=True, env={**TORCH_ENV, "SEED": str(seed)})
    return json.loads(out.stdout.strip().splitlines()[-1])["test"]["accuracy"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--only", default="rnn,resnet,spam,penguins")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--no-build", action="store_true")
    a = ap.parse_args()
    if not a.no_build:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    seeds = [int(s) for s in a.seeds.split(",")]
    fmt = lambda v: f"{statistics.mean(v):.4f} ± {statistics.stdev(v) if len(v) > 1 else 0:.4f}"
    lines = [f"seeds {a.seeds}", "", "| config | kiln test accuracy | PyTorch test accuracy | kiln − PyTorch (points) |",
             "|---|---:|---:|---:|"]
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.only.split(","):
            k = [kiln_accuracy(name, s, Path(tmp)) for s in seeds]
            t = [torch_accuracy(name, s, Path(tmp), a.python) for s in seeds]
            diff = 100 * (statistics.mean(k) - statistics.mean(t))
            lines.append(f"| {CONFIGS[name]} | {fmt(k)} | {fmt(t)} | {diff:+.2f} |")
            print(lines[-1], file=sys.stderr)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
