#!/usr/bin/env python3
"""A fresh PyTorch process that loads the MLP saved by train.py, reads the 2,000-row test CSV
and writes one prediction per row: the counterpart of `kiln predict RUN test.csv.gz`.

Usage: predict.py ROOT MODEL OUT_CSV
"""
import sys

import numpy as np
import torch

from train import models


def main():
    root, model_path, out = sys.argv[1:4]
    torch.set_num_threads(2)
    model = models()["mlp"]()
    model.load_state_dict(torch.load(model_path))
    model.eval()
    x = np.loadtxt(f"{root}/datasets/mnist/test.csv.gz", delimiter=",", skiprows=1, dtype=np.float32)[:, 1:] / 255.0
    with torch.no_grad():
        pred = model(torch.from_numpy(x)).argmax(1).numpy()
    np.savetxt(out, pred, fmt="%d", header="prediction", comments="")


if __name__ == "__main__":
    main()
