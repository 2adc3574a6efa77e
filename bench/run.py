#!/usr/bin/env python3
"""kiln against PyTorch, side by side, on this machine: trains kiln's reference configs and the
same workloads in PyTorch (bench/pytorch/, when `import torch` works), both with 2 threads, then
predicts the 2,000-row MNIST test CSV in a fresh process with each. Prints a Markdown table of
medians over --repeat runs with the kiln / PyTorch ratio of each figure.

With --device cuda, the GPU half: mnist_mlp, mnist_cnn and (with --only mlp,cnn,resnet18)
ResNet-18 on synthetic CIFAR-10-shaped data (bench/cifar/make_data.py; made here when missing),
each trained by kiln in f32 and in bf16 (train.precision) and by PyTorch eager in f32, eager
under torch.autocast(bfloat16), and torch.compile(mode="reduce-overhead"), with the model and
data on the GPU. Figures: training samples/s, seconds per epoch, test accuracy, start to the
first step, wall time, peak GPU memory (kiln's pool high-water mark from its log against
torch.cuda.max_memory_allocated), and inference samples/s (f32); no predict. Ratios: kiln
against torch.compile and against eager autocast.

Workloads: linreg, mlp, cnn (the default set), and rnn (LSTM on MNIST rows), resnet (residual
convnet on the MNIST PNG folders), spam (2-block transformer encoder on the SpamAssassin text),
penguins (a table with category columns); `--only all` runs every one.

Usage: python3 bench/run.py [--repeat 3] [--python PYTHON_WITH_TORCH] [--only mlp,cnn,linreg]
                            [--device cpu|cuda] [--no-build] [--kiln PATH] [--epochs N]
Needs GNU time (/usr/bin/time, Debian package `time`) for peak memory. Only the standard
library is used here, so any python3 runs it.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KILN = ROOT / "target" / "release" / "kiln"
CONFIGS = {"linreg": "configs/linreg.toml", "mlp": "configs/mnist_mlp.toml", "cnn": "configs/mnist_cnn.toml",
           "rnn": "configs/mnist_rnn.toml", "resnet": "configs/mnist_resnet.toml", "spam": "configs/spam.toml",
           "penguins": "configs/penguins.toml", "resnet18": "bench/cifar/resnet18.toml"}
CIFAR = ROOT / "bench" / "cifar" / "data"
# Training rows of each workload (kiln's run.json does not count them).
ROWS = {"linreg": 100, "mlp": 8000, "cnn": 8000, "rnn": 8000, "resnet": 8000, "spam": 4686, "penguins": 265}
# PyTorch's threads slow down badly when they spin on a shared machine; a passive wait policy
# is fair to it and is recorded in the table's header.
# --torch-omp active lets them spin (OpenMP's default): PyTorch's LSTM and convolutions run
# about twice as fast that way here, so those rows are measured both ways.
TORCH_ENV = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}


def timed(cmd, env=None, stdout=subprocess.PIPE):
    """Run cmd under GNU time: (started_at, wall seconds, peak RSS MiB, stdout). Where GNU time
    is missing (a GPU machine's image), the child's own rusage from wait4 gives the same peak."""
    if not os.path.exists("/usr/bin/time"):
        return timed_wait4(cmd, env)
    with tempfile.NamedTemporaryFile(suffix=".time") as t:
        started = time.time()
        out = subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", t.name, *cmd], env=env, stdout=stdout,
                             stderr=subprocess.PIPE, text=True, cwd=ROOT)
        if out.returncode != 0:
            sys.exit(f"{' '.join(map(str, cmd))} failed:\n{out.stderr}")
        wall, kib = open(t.name).read().split()[-2:]
        return started, float(wall), int(kib) / 1024, out.stdout


def timed_wait4(cmd, env=None):
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.time()
        p = subprocess.Popen([str(c) for c in cmd], env=env, stdout=out, stderr=err, cwd=ROOT)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.time() - started
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        if p.returncode != 0:
            sys.exit(f"{' '.join(map(str, cmd))} failed:\n{err.read().decode(errors='replace')}")
        return started, wall, usage.ru_maxrss / 1024, out.read().decode()


def kiln_train(name, work, device, precision="f32", extra=()):
    run = work / f"kiln-{name}-{time.time_ns()}"
    started, wall, rss, _ = timed([KILN, "train", CONFIGS[name], "--threads", "2", "--quiet", "--run-dir", run,
                                   "--device", device, "--precision", precision, *extra])
    info = json.loads((run / "run.json").read_text())
    lines = (run / "metrics.csv").read_text().splitlines()
    header = lines[0].split(",")
    seconds = [float(l.split(",")[header.index("seconds")]) for l in lines[1:]]
    test = info.get("test") or {}
    metric = ("accuracy", test.get("accuracy")) if "accuracy" in test else ("mse", float(lines[-1].split(",")[header.index("train_loss")]))
    rows = ROWS[name]
    result = dict(first_step=info["first_step_at"] - started, epoch_seconds=seconds, rows=rows, wall=wall, rss=rss,
                  metric=metric, run=run)
    peak = [l for l in (run / "train.log").read_text().splitlines() if l.startswith("GPU memory: peak ")]
    if peak:
        result["gpu_mib"] = float(peak[-1].split()[3])
    if device == "cuda" and precision == "f32":
        _, _, _, out = timed([KILN, "bench", CONFIGS[name], "--device", "cuda", "--threads", "2"])
        line = next(l for l in out.splitlines() if l.startswith("inference:"))
        result["inference"] = float(line.split(",")[1].split()[0])
    return result


def torch_train(name, work, python, device, mode="eager"):
    model = work / f"torch-{name}-{time.time_ns()}.pt"
    started, wall, rss, out = timed([python, "bench/pytorch/train.py", name, ROOT, model, device, mode],
                                    env=TORCH_ENV)
    r = json.loads(out.strip().splitlines()[-1])
    metric = next(iter(r["test"].items()))
    result = dict(first_step=r["first_step_at"] - started, epoch_seconds=r["epoch_seconds"], rows=r["train_rows"],
                  wall=wall, rss=rss, metric=metric, model=model,
                  inference=r.get("inference_samples_per_s") if mode == "eager" else None)
    if "peak_gpu_bytes" in r:
        result["gpu_mib"] = r["peak_gpu_bytes"] / 2**20
    return result


def summarize(runs):
    """Medians: samples/s over the epochs after the first, seconds per epoch, and the rest."""
    def med(f):
        return statistics.median(f(r) for r in runs)
    later = lambda r: r["epoch_seconds"][1:] or r["epoch_seconds"]
    figures = {
        "samples/s": med(lambda r: r["rows"] * len(later(r)) / sum(later(r))),
        "s/epoch": med(lambda r: statistics.mean(later(r))),
        runs[0]["metric"][0]: med(lambda r: r["metric"][1]),
        "start→first step s": med(lambda r: r["first_step"]),
        "wall s": med(lambda r: r["wall"]),
        "peak RSS MiB": med(lambda r: r["rss"]),
    }
    if runs[0].get("gpu_mib"):
        figures["peak GPU MiB"] = med(lambda r: r["gpu_mib"])
    if runs[0].get("inference"):
        figures["inference samples/s (batch 1,000)"] = med(lambda r: r["inference"])
    return figures


# The GPU table's columns: kiln in each precision, PyTorch in each mode.
GPU_KILN = ("f32", "bf16")
GPU_TORCH = ("eager", "autocast", "compile")


def gpu_table(results):
    """One row per workload and figure, a column per variant, then kiln / PyTorch ratios (for a
    time or memory figure, below 1 is kiln's win; for a rate, above 1)."""
    cols = [f"kiln {p}" for p in GPU_KILN] + [f"torch {m}" for m in GPU_TORCH]
    ratios = [("kiln bf16 / torch compile", "kiln bf16", "torch compile"),
              ("kiln bf16 / torch autocast", "kiln bf16", "torch autocast"),
              ("kiln f32 / torch eager", "kiln f32", "torch eager")]
    fmt = lambda v: "–" if v is None else (f"{v:,.0f}" if v >= 100 else f"{v:.3g}")
    lines = ["| workload | figure | " + " | ".join(cols + [r[0] for r in ratios]) + " |",
             "|---|---|" + "---:|" * (len(cols) + len(ratios))]
    for name, variants in results.items():
        figures = list(dict.fromkeys(f for v in variants.values() if v for f in v))
        for fig in figures:
            vals = {c: (variants.get(c) or {}).get(fig) for c in cols}
            cells = [fmt(vals[c]) for c in cols]
            cells += [f"{vals[a] / vals[b]:.2f}" if vals[a] and vals[b] else "–" for _, a, b in ratios]
            lines.append(f"| {name} | {fig} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def gpu_runs(names, work, a, has_torch):
    """Every variant of every workload on the GPU, --repeat times each."""
    results = {}
    for name in names:
        variants = {}
        extra = ("--set", f"train.epochs={a.epochs}") if a.epochs else ()
        for p in GPU_KILN:
            variants[f"kiln {p}"] = summarize([kiln_train(name, work, "cuda", p, extra) for _ in range(a.repeat)])
        for m in GPU_TORCH if has_torch else ():
            env_epochs = {"EPOCHS": str(a.epochs)} if a.epochs else {}
            TORCH_ENV.update(env_epochs)
            variants[f"torch {m}"] = summarize([torch_train(name, work, a.python, "cuda", m)
                                                for _ in range(a.repeat)])
        results[name] = variants
        print(gpu_table({name: variants}), file=sys.stderr, flush=True)  # each workload as it ends
    return results


def table(results):
    lines = ["| workload | figure | kiln | PyTorch | kiln / PyTorch |", "|---|---|---:|---:|---:|"]
    for name, (k, t) in results.items():
        for fig, kv in k.items():
            tv = t.get(fig) if t else None
            ratio = f"{kv / tv:.2f}" if tv else "–"
            fmt = lambda v: "–" if v is None else (f"{v:,.0f}" if v >= 100 else f"{v:.3g}")
            lines.append(f"| {name} | {fig} | {fmt(kv)} | {fmt(tv)} | {ratio} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--python", default=sys.executable, help="a python where `import torch` works")
    ap.add_argument("--only", default=None, help="default: linreg,mlp,cnn (mlp,cnn on cuda)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--no-build", action="store_true", help="use the kiln binary already built")
    ap.add_argument("--torch-omp", default="passive", choices=["passive", "active"],
                    help="PyTorch's OpenMP wait policy (default passive)")
    ap.add_argument("--kiln", default=None, help="the kiln binary (default target/release/kiln; implies --no-build)")
    ap.add_argument("--epochs", type=int, default=None, help="override every workload's epochs (GPU half only)")
    a = ap.parse_args()
    global KILN
    if a.kiln:
        KILN, a.no_build = Path(a.kiln).resolve(), True
    TORCH_ENV["OMP_WAIT_POLICY"] = a.torch_omp.upper()
    a.only = a.only or ("mlp,cnn" if a.device == "cuda" else "linreg,mlp,cnn")
    if a.only == "all":
        a.only = ",".join(CONFIGS)
    if not a.no_build:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    has_torch = subprocess.run([a.python, "-c", "import torch"], capture_output=True).returncode == 0
    if not has_torch:
        print(f"PyTorch not importable from {a.python}: kiln only (pip install torch numpy)", file=sys.stderr)
    load = os.getloadavg()[0]
    names = a.only.split(",")
    if "resnet18" in names:
        rows = {"train": 10240, "test": 2048}
        if not (CIFAR / "train.csv").exists() or not (CIFAR / "cifar_synth.npz").exists():
            subprocess.run([a.python if has_torch else sys.executable, "bench/cifar/make_data.py", "--out", CIFAR,
                            "--train", str(rows["train"]), "--test", str(rows["test"])], cwd=ROOT, check=True)
        with open(CIFAR / "train.csv", "rb") as f:
            ROWS["resnet18"] = sum(1 for _ in f) - 1
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if a.device == "cuda":
            results = gpu_runs(names, work, a, has_torch)
        last = {}
        for name in names if a.device == "cpu" else ():
            k = [kiln_train(name, work, a.device) for _ in range(a.repeat)]
            t = [torch_train(name, work, a.python, a.device) for _ in range(a.repeat)] if has_torch else None
            results[name] = (summarize(k), summarize(t) if t else None)
            last[name] = (k[-1], t[-1] if t else None)
        if "mlp" in last and a.device == "cpu":
            k_run, t_run = last["mlp"]
            kp = [timed([KILN, "predict", k_run["run"], "datasets/mnist/test.csv.gz", "--output", work / "k.csv"]) for _ in range(a.repeat)]
            kp = {"wall s": statistics.median(r[1] for r in kp), "peak RSS MiB": statistics.median(r[2] for r in kp)}
            tp = None
            if t_run:
                tp = [timed([a.python, "bench/pytorch/predict.py", ROOT, t_run["model"], work / "t.csv"], env=TORCH_ENV) for _ in range(a.repeat)]
                tp = {"wall s": statistics.median(r[1] for r in tp), "peak RSS MiB": statistics.median(r[2] for r in tp)}
            results["predict (2,000 rows, fresh process)"] = (kp, tp)
    torch_version = subprocess.run([a.python, "-c", "import torch; print(torch.__version__)"], capture_output=True, text=True).stdout.strip() if has_torch else "absent"
    kiln_version = subprocess.run([KILN, "--version"], capture_output=True, text=True).stdout.strip()
    gpu = ""
    if a.device == "cuda":
        gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True).stdout.strip()
        gpu = f"GPU {gpu}, "
    print(f"# {time.strftime('%Y-%m-%d')}, {gpu}{os.cpu_count()} cores, 2 threads each, medians of {a.repeat}; "
          f"{kiln_version}, torch {torch_version} (OMP_WAIT_POLICY={TORCH_ENV['OMP_WAIT_POLICY']}); 1-min load average at start {load:.2f}\n")
    print(gpu_table(results) if a.device == "cuda" else table(results))


if __name__ == "__main__":
    main()
