#!/usr/bin/env python3
"""All-reduce time per training step on paper: a ring all-reduce of S bytes over N machines
sends 2(N-1)/N * S bytes from each machine and takes 2(N-1) latency-bound rounds, so

    t = 2 (N - 1) / N * S / B + 2 (N - 1) * a

with B the link bandwidth (bytes/s) and a the time of one round (TCP on a LAN: ~30 us).
Prints a Markdown table for kiln's MNIST models and a 100 M parameter model at 10 and
100 Gbit/s for 2-64 machines, so a user can put it beside their step time.
"""
import argparse

MODELS = [("mnist_mlp", 101_770), ("mnist_cnn", 225_034), ("100 M params", 100_000_000)]


def allreduce_seconds(params, machines, gbit, round_seconds):
    size = params * 4  # f32 gradients
    bandwidth = gbit * 1e9 / 8
    n = machines
    return 2 * (n - 1) / n * size / bandwidth + 2 * (n - 1) * round_seconds


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--round-us", type=float, default=30.0, help="latency of one round, us")
    args = p.parse_args()
    machines = [2, 4, 8, 16, 32, 64]
    print("| model (f32 gradients) | link | " + " | ".join(f"N={n}" for n in machines) + " |")
    print("|---|---|" + "---:|" * len(machines))
    for name, params in MODELS:
        for gbit in (10, 100):
            cells = []
            for n in machines:
                t = allreduce_seconds(params, n, gbit, args.round_us * 1e-6)
                cells.append(f"{t * 1e3:.2f} ms" if t < 1 else f"{t:.2f} s")
            mb = params * 4 / 1e6
            print(f"| {name} ({mb:,.1f} MB) | {gbit} Gbit/s | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
