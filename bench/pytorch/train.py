#!/usr/bin/env python3
"""PyTorch equivalents of kiln's reference configs, for bench/run.py: same data (the shipped
CSVs; the CNN and the ResNet read the same digits from the CSV as 28x28 images), same model,
optimizer, batch size and epochs, and the same encoding of category and text columns (the
tokenizer and vocabulary rules of kiln's README, in seq_data.py). Prints one JSON object: first_step_at (Unix seconds), epoch_seconds, and the
test metric; saves the model's state dict for predict.py.

With DEVICE (e.g. cuda), the data moves to the device once before training, as kiln does,
and the result also holds inference samples/s (forward passes of 1,000 rows without gradients).

MODE (GPU benchmark): eager (default), autocast (eager under torch.autocast(bfloat16), as
kiln's train.precision = "bf16"), or compile (torch.compile(mode="reduce-overhead"): CUDA
graphs and fused kernels). On CUDA the result also holds peak_gpu_bytes,
torch.cuda.max_memory_allocated over the run.

resnet18 reads the synthetic CIFAR-10-shaped data of bench/cifar/make_data.py
(bench/cifar/data/cifar_synth.npz): ResNet-18 for 32x32 inputs as bench/cifar/resnet18.toml.

Usage: [SEED=42] train.py {mlp,cnn,linreg,rnn,resnet,resnet18,spam,penguins} ROOT MODEL_OUT [DEVICE [MODE]]
"""
import contextlib
import json
import os
import sys
import time

import numpy as np
import torch
from torch import nn

import seq_data


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
        "rnn": lambda: RowLSTM(),
        "resnet": lambda: ResNet(),
        "resnet18": lambda: ResNet18(),
        "spam": lambda: TextTransformer(vocab=8000, steps=64),
        "penguins": lambda: nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 2)),
    }


class RowLSTM(nn.Module):
    """configs/mnist_rnn.toml: 28 steps of 28 pixels, LSTM 128, the last step, Linear 10."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(28, 128, batch_first=True)
        self.out = nn.Linear(128, 10)

    def forward(self, x):
        _, (h, _) = self.lstm(x.reshape(-1, 28, 28))
        return self.out(h[-1])


class Residual(nn.Module):
    """conv 3x3 relu, then conv-bn-relu-conv-bn added to it, relu, max pool 2."""

    def __init__(self, cin, c):
        super().__init__()
        self.stem = nn.Conv2d(cin, c, 3, padding=1)
        self.branch = nn.Sequential(nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
                                    nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        s = torch.relu(self.stem(x))
        return nn.functional.max_pool2d(torch.relu(s + self.branch(s)), 2)


class ResNet(nn.Module):
    """configs/mnist_resnet.toml."""

    def __init__(self):
        super().__init__()
        self.stages = nn.Sequential(Residual(1, 16), Residual(16, 32))
        self.out = nn.Linear(32, 10)

    def forward(self, x):
        return self.out(self.stages(x).mean((2, 3)))


class BasicBlock(nn.Module):
    """ResNet's basic block: conv-bn-relu-conv-bn plus the shortcut (a 1x1 conv + bn where the
    shape changes), relu; kiln's bench/cifar/resnet18.toml spells each layer out."""

    def __init__(self, cin, c, stride):
        super().__init__()
        self.branch = nn.Sequential(nn.Conv2d(cin, c, 3, stride, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
                                    nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c))
        self.shortcut = (nn.Sequential(nn.Conv2d(cin, c, 1, stride, bias=False), nn.BatchNorm2d(c))
                         if stride != 1 or cin != c else nn.Identity())

    def forward(self, x):
        return torch.relu(self.shortcut(x) + self.branch(x))


class ResNet18(nn.Module):
    """bench/cifar/resnet18.toml: 3x3 stem of 64, 4 stages of 2 blocks, global average pool,
    Linear 10 (11.17 M weights)."""

    def __init__(self):
        super().__init__()
        layers = [nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU()]
        cin = 64
        for c, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
            layers += [BasicBlock(cin, c, stride), BasicBlock(c, c, 1)]
            cin = c
        self.body = nn.Sequential(*layers)
        self.out = nn.Linear(512, 10)

    def forward(self, x):
        return self.out(self.body(x.reshape(-1, 3, 32, 32)).mean((2, 3)))


def cifar_synth(root):
    d = np.load(f"{root}/bench/cifar/data/cifar_synth.npz")
    to = lambda x: torch.from_numpy(x.astype(np.float32) / 255.0)
    return ((to(d["x"]), torch.from_numpy(d["y"]).long()),
            (to(d["tx"]), torch.from_numpy(d["ty"]).long()))


class TextTransformer(nn.Module):
    """configs/spam.toml: token + learned position embeddings, 2 post-norm encoder blocks
    (4 heads, feed-forward 128, dropout 0.1), mean over the real tokens, Linear 2."""

    def __init__(self, vocab, steps, dim=64):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim, padding_idx=0)
        self.position = nn.Parameter(torch.randn(steps, dim) * 0.02)
        block = nn.TransformerEncoderLayer(dim, 4, 128, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(block, 2, enable_nested_tensor=False)
        self.out = nn.Linear(dim, 2)

    def forward(self, ids):
        ids = ids.long()
        real = (ids != 0).unsqueeze(-1).float()
        x = (self.embed(ids) + self.position) * real
        x = self.encoder(x, src_key_padding_mask=ids == 0)
        return self.out((x * real).sum(1) / real.sum(1).clamp(min=1))


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
    mode = sys.argv[5] if len(sys.argv) > 5 else "eager"
    if mode not in ("eager", "autocast", "compile"):
        sys.exit(f"MODE {mode!r}: eager, autocast or compile")
    torch.set_num_threads(2)
    torch.manual_seed(int(os.environ.get("SEED", "42")))  # bench/accuracy.py varies it
    model = models()[workload]().to(device)
    # What the step runs: the model itself, or its compiled form (CUDA graphs and fused
    # kernels; compiling happens in the first steps, so it counts in start -> first step).
    step_model = torch.compile(model, mode="reduce-overhead") if mode == "compile" else model
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if mode == "autocast"
                else contextlib.nullcontext())
    if workload == "linreg":
        x, y = load(f"{root}/datasets/linreg/linreg.csv", target_first=False)
        train = (torch.from_numpy(x), torch.from_numpy(y).reshape(-1, 1))
        test, epochs, batch, lossf = None, 1000, 100, nn.MSELoss()
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
    else:
        if workload == "spam":
            train, test = seq_data.spam(root)
        elif workload == "penguins":
            train, test = seq_data.penguins(root)
        elif workload == "resnet18":
            train, test = cifar_synth(root)
        else:
            train, test = mnist(root, workload in ("cnn", "resnet"))
        epochs, batch, lr = {"mlp": (5, 32, 1e-3), "penguins": (60, 16, 0.01), "spam": (4, 32, 1e-3),
                             "resnet18": (3, 256, 1e-3)}.get(workload, (3, 64, 1e-3))
        epochs = int(os.environ.get("EPOCHS", epochs))  # a smoke test shortens the run
        lossf = nn.CrossEntropyLoss()
        opt = torch.optim.Adam(model.parameters(), lr=lr)
    # configs/mnist_resnet.toml decays the rate to 0 over the run (cosine, per step, as kiln's
    # schedule): the batch norm running statistics then settle with the weights.
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * -(-len(train[0]) // batch))
             if workload == "resnet" else None)
    train = tuple(t.to(device) for t in train)
    test = tuple(t.to(device) for t in test) if test is not None else None
    n = len(train[0])
    limit = int(os.environ.get("LIMIT_BATCHES", "0"))  # a smoke test's few steps
    first_step_at, epoch_seconds = None, []
    for _ in range(epochs):
        start = time.perf_counter()
        model.train()
        order = (torch.randperm(n) if workload != "linreg" else torch.arange(n)).to(device)
        for i in range(0, n, batch):
            idx = order[i:i + batch]
            opt.zero_grad()
            with autocast:
                loss = lossf(step_model(train[0][idx]), train[1][idx])
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            if first_step_at is None:
                if device.type == "cuda":
                    torch.cuda.synchronize()  # the first step has run, not only been queued
                first_step_at = time.time()
            if limit and i // batch + 1 >= limit:
                break
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
    if device.type == "cuda":
        result["peak_gpu_bytes"] = torch.cuda.max_memory_allocated()
    result["mode"] = mode
    torch.save(model.state_dict(), model_out)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
