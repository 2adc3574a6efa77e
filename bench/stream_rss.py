#!/usr/bin/env python3
"""Peak memory of training on MNIST-shaped CSVs of growing size, streamed (`data.stream`)
against held in memory.

Writes `label,px0..px783` tables of about the asked sizes (the shipped MNIST training rows
repeated in a seeded order: 785 integer columns, label first, as datasets/mnist) once into a
cache folder outside the repository, trains configs/mnist_mlp.toml one epoch on each with
`data.stream = true`, and in memory for the sizes given to --in-memory, and prints peak RSS
(the child's own, from wait4) and training rows per second (wall clock, first pass and test
evaluation included). Python's standard library only.

    python3 bench/stream_rss.py --sizes 0.1,1,4 --in-memory 0.1,1
"""

import argparse
import gzip
import os
import random
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KILN = os.path.join(ROOT, "target", "release", "kiln")


def table(cache, gigabytes, seed):
    """The cached table of about `gigabytes` GB, written (atomically) when missing."""
    path = os.path.join(cache, f"mnist-{gigabytes}g-seed{seed}.csv")
    if os.path.exists(path):
        return path
    with gzip.open(os.path.join(ROOT, "datasets/mnist/train.csv.gz"), "rt") as f:
        header, *rows = f.read().splitlines()
    rng = random.Random(seed)
    target = int(gigabytes * 1e9)
    tmp = path + ".tmp"
    with open(tmp, "w") as out:
        out.write(header + "\n")
        written = len(header) + 1
        while written < target:
            rng.shuffle(rows)
            chunk = "\n".join(rows) + "\n"
            out.write(chunk)
            written += len(chunk)
    os.replace(tmp, path)
    return path


def rows_of(path):
    with open(path, "rb") as f:
        return sum(buf.count(b"\n") for buf in iter(lambda: f.read(1 << 24), b"")) - 1


def train(path, stream, extra):
    """Peak RSS (MiB) and seconds of one epoch of mnist_mlp on `path`."""
    runs = tempfile.mkdtemp(prefix="kiln-stream-rss-")
    args = [KILN, "train", "configs/mnist_mlp.toml", "--quiet", "--runs", runs,
            "--set", f"data.train={path!r}".replace("'", '"'), "--set", "train.epochs=1",
            "--set", f"data.stream={'true' if stream else 'false'}"] + extra
    start = time.monotonic()
    child = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.monotonic() - start
    err = child.stderr.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"kiln failed on {path}:\n{err}")
    return usage.ru_maxrss / 1024, seconds


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="0.1,1,4", help="table sizes in GB")
    ap.add_argument("--in-memory", default="0.1,1", help="sizes also trained in memory")
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "kiln-stream-rss"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--set", action="append", default=[], help="more --set KEY=VALUE")
    a = ap.parse_args()
    os.makedirs(a.cache, exist_ok=True)
    extra = [x for kv in a.set for x in ("--set", kv)]
    held = {float(s) for s in a.in_memory.split(",") if s}
    print("| file | rows | path | peak RSS MiB | seconds | rows/s |")
    print("|---|---|---|---|---|---|")
    for size in [float(s) for s in a.sizes.split(",")]:
        path = table(a.cache, size, a.seed)
        rows = rows_of(path)
        gb = os.path.getsize(path) / 1e9
        for stream in [True, False] if size in held else [True]:
            rss, seconds = train(path, stream, extra)
            kind = "stream" if stream else "in memory"
            print(f"| {gb:.2f} GB | {rows:,} | {kind} | {rss:,.0f} | {seconds:.1f} | "
                  f"{rows / seconds:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
