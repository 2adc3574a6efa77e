#!/usr/bin/env python3
"""PyTorch equivalents of kiln's reference configs, for bench/run.py: same data (the shipped
CSVs; the CNN reads the same digits from the CSV as 28x28 images), same model, optimizer, batch
size and epochs. Prints one JSON object: first_step_at (Unix seconds), epoch_seconds, and the
test metric; saves the model's state dict for predict.py.

With DEVICE (e.g. cuda), the data moves to the device once before training, as kiln does,
and the result also holds inference samples/s (forward passes of 1,000 rows without gradients).

Usage: train.py {mlp,cnn,linreg} ROOT MODEL_OUT [DEVICE]
"""
import json
import sys
import time

import numpy as np
import torch
from torch import nn


def load(path, target_first=True):
    data = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float32)
    return (data[:, 1:], data[:, 0]) if target_first else (data[:, :-1], data[:, -1])


def models():
    return {
        "mlp": lambda: nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Dropout(0.2), nn.Linear(128, 10)),
        "cnn": lambda: nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(1600, 128), nn.ReLU(), nn.Linear(128, 10)),
        "linreg": lambda: nn.Linear(1, 1),
    }


def mnist(root, cnn):
    x, y = load(f"{root}/datasets/mnist/train.csv.gz")
    tx, ty = load(f"{root}/datasets/mnist/test.csv.gz")
    x, tx = x / 255.0, tx / 255.0
    if cnn:  # as kiln's mnist_cnn config: normalized with the training images' statistics
        mean, std = x.mean(), x.std()
        x, tx = ((x - mean) / std).reshape(-1, 1, 28, 28), ((tx - mean) / std).reshape(-1, 1, 28, 28)
    return (torch.from_numpy(x), torch.from_numpy(y).long()), (torch.from_numpy(tx), torch.from_numpy(ty).long())


def inference_rate(model, x, iters=20):
    """Samples/s of forward passes over x after two warm-ups, synchronizing only at the ends."""
    for _ in range(2):
        model(x)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iters):
        model(x)
    torch.cuda.synchronize()
    return iters * len(x) / (time.perf_counter() - start)


def main():
    workload, root, model_out = sys.argv[1], sys.argv[2], sys.argv[3]
    device = torch.device(sys.argv[4] if len(sys.argv) > 4 else "cpu")
    torch.set_num_threads(2)
    torch.manual_seed(42)
    model = models()[workload]().to(device)
    if workload == "linreg":
        x, y = load(f"{root}/datasets/linreg/linreg.csv", target_first=False)
        train = (torch.from_numpy(x), torch.from_numpy(y).reshape(-1, 1))
        test, epochs, batch, lossf = None, 1000, 100, nn.MSELoss()
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
    else:
        train, test = mnist(root, workload == "cnn")
        epochs, batch = (5, 32) if workload == "mlp" else (3, 64)
        lossf = nn.CrossEntropyLoss()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    train = tuple(t.to(device) for t in train)
    test = tuple(t.to(device) for t in test) if test is not None else None
    n = len(train[0])
    first_step_at, epoch_seconds = None, []
    for _ in range(epochs):
        start = time.perf_counter()
        model.train()
        order = (torch.randperm(n) if workload != "linreg" else torch.arange(n)).to(device)
        for i in range(0, n, batch):
            idx = order[i:i + batch]
            opt.zero_grad()
            loss = lossf(model(train[0][idx]), train[1][idx])
            loss.backward()
            opt.step()
            if first_step_at is None:
                first_step_at = time.time()
        if device.type == "cuda":
            torch.cuda.synchronize()
        epoch_seconds.append(time.perf_counter() - start)
    result = {"first_step_at": first_step_at, "epoch_seconds": epoch_seconds, "train_rows": n}
    model.eval()
    with torch.no_grad():
        if test is None:
            result["test"] = {"mse": float(lossf(model(train[0]), train[1]))}
        else:
            pred = model(test[0]).argmax(1)
            result["test"] = {"accuracy": float((pred == test[1]).float().mean())}
        if device.type == "cuda" and test is not None:
            result["inference_samples_per_s"] = inference_rate(model, test[0][:1000])
    torch.save(model.state_dict(), model_out)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
