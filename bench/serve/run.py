#!/usr/bin/env python3
"""`kiln serve` under load beside the server a Python user would write for the same model
(FastAPI on uvicorn with PyTorch, bench/serve/python_server.py) and, for reference, the same
server on onnxruntime with kiln's ONNX export. One mnist_mlp instance per request (TF Serving's
row format), wrk as the load generator on loopback, at 1, 8 and 64 connections. Prints a
Markdown table: requests/s, p50 and p99 latency, failed requests, each server's peak RSS.

Usage: python3 bench/serve/run.py [--python PYTHON_WITH_TORCH_FASTAPI] [--duration 10]
                                  [--connections 1,8,64] [--no-build]
Needs wrk (Debian package `wrk`; installed with apt-get when missing and run as root) and, for
the Python servers, fastapi, uvicorn, torch, safetensors, onnxruntime and numpy in --python.
"""
import argparse
import gzip
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
KILN = ROOT / "target" / "release" / "kiln"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port, proc, seconds=60):
    end = time.time() + seconds
    while time.time() < end:
        if proc.poll() is not None:
            sys.exit(f"the server exited: {proc.args}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"no server on port {port}")


def peak_rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def to_ms(v):
    n, unit = re.match(r"([\d.]+)(us|ms|s)", v).groups()
    return float(n) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def wrk(url, script, connections, duration):
    threads = min(2, connections)
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "-s", script, url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = to_ms(re.search(r"\s50%\s+(\S+)", out).group(1))
    p99 = to_ms(re.search(r"\s99%\s+(\S+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    failed = 0
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        failed += int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        failed += sum(int(g) for g in m.groups())
    return rps, p50, p99, total, failed


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", default="1,8,64")
    ap.add_argument("--no-build", action="store_true")
    a = ap.parse_args()
    if shutil.which("wrk") is None:
        if os.geteuid() != 0:
            sys.exit("wrk is missing: apt-get install wrk")
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, stdout=subprocess.DEVNULL)
    if not a.no_build:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    conns = [int(c) for c in a.connections.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run = tmp / "mlp"
        subprocess.run([KILN, "train", "configs/mnist_mlp.toml", "--quiet", "--threads", "2", "--run-dir", run],
                       cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        onnx = tmp / "mlp.onnx"
        subprocess.run([KILN, "export", run, "-o", onnx], cwd=ROOT, check=True, stderr=subprocess.DEVNULL)
        with gzip.open(ROOT / "datasets/mnist/test.csv.gz", "rt") as f:
            f.readline()
            row = [float(v) for v in f.readline().strip().split(",")[1:]]
        body = json.dumps({"instances": [row]})
        script = tmp / "post.lua"
        script.write_text('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                          f"wrk.body = {json.dumps(body)}\n")
        has_python = subprocess.run([a.python, "-c", "import fastapi, uvicorn, torch, safetensors, onnxruntime"],
                                    capture_output=True).returncode == 0
        servers = [("kiln serve", lambda p: [KILN, "serve", f"mlp={run}", "--port", str(p), "--threads", "2"], {})]
        if has_python:
            for backend, label in (("torch", "FastAPI + PyTorch"), ("onnx", "FastAPI + onnxruntime")):
                servers.append((label, lambda p: [a.python, ROOT / "bench/serve/python_server.py", run, onnx, str(p)],
                                {"BACKEND": backend, "OMP_NUM_THREADS": "2"}))
        else:
            print(f"{a.python} lacks fastapi/uvicorn/torch/safetensors/onnxruntime: kiln only", file=sys.stderr)
        rows = []
        for label, cmd, env in servers:
            port = free_port()
            proc = subprocess.Popen(cmd(port), cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            try:
                wait_for(port, proc)
                url = f"http://127.0.0.1:{port}/v1/models/mlp:predict"
                check = subprocess.run(["curl", "-sf", "-X", "POST", "-H", "content-type: application/json",
                                        "--data-binary", f"@-", url], input=body, capture_output=True, text=True)
                assert json.loads(check.stdout)["predictions"][0]["class"] == "7", check.stdout
                wrk(url, script, 8, 2)  # warm-up
                for c in conns:
                    rps, p50, p99, total, failed = wrk(url, script, c, a.duration)
                    rows.append([label, c, rps, p50, p99, total, failed])
                    print(f"{label} c={c}: {rps:,.0f} req/s p50 {p50:.2f} ms p99 {p99:.2f} ms, {failed} failed",
                          file=sys.stderr)
                rss = peak_rss_mib(proc.pid)
                for r in rows:
                    if r[0] == label:
                        r.append(rss)
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
    load = os.getloadavg()[0]
    print(f"# {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, wrk {a.duration} s per row on 127.0.0.1, "
          f"one mnist_mlp instance per request; 1-min load average at end {load:.2f}\n")
    print("| server | connections | requests/s | p50 ms | p99 ms | requests | failed | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, c, rps, p50, p99, total, failed, rss in rows:
        print(f"| {label} | {c} | {rps:,.0f} | {p50:.2f} | {p99:.2f} | {total:,} | {failed} | {rss:.1f} |")
    base = {c: rps for label, c, rps, *_ in rows if label == "kiln serve"}
    for label, c, rps, *_ in rows:
        if label != "kiln serve":
            print(f"\nkiln serve / {label} at {c} connections: {base[c] / rps:.1f}x requests/s", end="")
    print()


if __name__ == "__main__":
    main()
