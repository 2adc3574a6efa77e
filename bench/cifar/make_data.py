#!/usr/bin/env python3
"""Synthetic data of CIFAR-10's shape for the GPU benchmark's ResNet-18 rows: 32x32 RGB images
of 10 classes, as CSV for kiln (column `label`, then the 3,072 pixel values 0-255 in channel,
row, column order, so `reshape = [3, 32, 32]` gives the [c, h, w] image) and as one .npz of
uint8 arrays for PyTorch (bench/pytorch/train.py reads it; np.loadtxt would take a minute).

Each class has a fixed random pattern; an image is its class's pattern at half strength plus
noise, so the task is learnable (accuracy says the training works) but not trivial. Everything
comes from one seed through numpy's PCG64 (np.random.default_rng), so the same seed and numpy
give the same bytes; the files are written, not committed (about 110 MB of CSV).

Usage: python3 bench/cifar/make_data.py [--out bench/cifar/data] [--train 10240] [--test 2048]
                                        [--seed 0]
"""
import argparse
import hashlib
from pathlib import Path

import numpy as np

CLASSES, SHAPE = 10, (3, 32, 32)


def images(rng, patterns, n):
    labels = rng.integers(0, CLASSES, n)
    noise = rng.normal(0.0, 1.0, (n, *SHAPE))
    x = 128.0 + 40.0 * patterns[labels] + 40.0 * noise
    return np.clip(np.rint(x), 0, 255).astype(np.uint8), labels.astype(np.uint8)


def write_csv(path, x, y):
    """label,p0,...,p3071 with one byte string per value looked up, not formatted."""
    text = np.array([str(i).encode() for i in range(256)], dtype=object)
    header = "label," + ",".join(f"p{i}" for i in range(x[0].size))
    with open(path, "wb") as f:
        f.write(header.encode() + b"\n")
        for img, label in zip(x.reshape(len(x), -1), y):
            f.write(text[label] + b"," + b",".join(text[img]) + b"\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "data"))
    ap.add_argument("--train", type=int, default=10240)
    ap.add_argument("--test", type=int, default=2048)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(a.seed)
    patterns = rng.normal(0.0, 1.0, (CLASSES, *SHAPE))
    train, test = images(rng, patterns, a.train), images(rng, patterns, a.test)
    write_csv(out / "train.csv", *train)
    write_csv(out / "test.csv", *test)
    np.savez(out / "cifar_synth.npz", x=train[0], y=train[1], tx=test[0], ty=test[1])
    digest = hashlib.sha256(train[0].tobytes() + train[1].tobytes()).hexdigest()[:16]
    print(f"{out}: {a.train} training and {a.test} test images, seed {a.seed}, pixels sha256 {digest}")


if __name__ == "__main__":
    main()
