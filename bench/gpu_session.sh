#!/usr/bin/env bash
# Everything issue 16 needs a GPU for, in one device call of at most ~9 minutes, on a machine
# with an NVIDIA GPU, its driver, python3 with PyTorch, no Rust and no network. Stage the
# binaries first on the development machine (bash bench/gpu_prepare.sh), then run this with
# `.gpu` carried. Steps, each under its own time limit, results under $OUT (or ./gpu-out):
#
#   env.txt        GPU, driver, libraries found, commit of the binaries
#   cuda-tests.log REQUIRE_CUDA=1 REQUIRE_NVRTC=1: every CUDA test (tests/cuda.rs), among them
#                  the bf16/f16 ones: cast kernels against the CPU's rounding, products and
#                  convolutions against the CPU f32 reference, mnist_mlp and mnist_cnn floors in
#                  bf16, an f16 run that overflows and recovers by loss scaling
#   bench.txt      bench/run.py --device cuda: resnet18, mlp, cnn (kiln f32 and bf16, PyTorch
#                  eager, autocast bf16, torch.compile reduce-overhead); samples/s, peak GPU MiB;
#                  a table per workload as it ends, then the whole table
#   data.log       the synthetic data's generation
#   mpirun.log     mpirun -np 1 kiln train configs/mnist_mlp.toml --device cuda (if mpirun runs)
#   summary.txt    one PASS / FAIL / SKIP line per step, with the reason; also printed last
#
# It fails loudly: a step that fails is FAIL with its exit code and the script exits 1; a step
# that cannot run here (no mpirun, no torch) is SKIP with why, never silently left out.
# Not checked by this script: CUDA graphs (train.cuda_graphs is refused: capture is not built).
set -uo pipefail
cd "$(dirname "$0")/.."
here=$(pwd -P)
out="${OUT:-$here/gpu-out}"
mkdir -p "$out"
summary="$out/summary.txt"
# The whole script stays within this many seconds (a device call may run 600), so the last
# step's result still comes back: the benchmark gets what the tests leave.
deadline=${GPU_SESSION_SECONDS:-560}
: >"$summary"
failed=0
started=$(date +%s)

say() { echo "$*" | tee -a "$summary"; }
# step NAME SECONDS LOG COMMAND...: run with a time limit, record PASS / FAIL.
step() {
    local name=$1 limit=$2 log=$3
    shift 3
    local t0=$(date +%s)
    echo "== $name (limit ${limit}s)"
    timeout --kill-after=10 "$limit" "$@" >"$log" 2>&1
    local rc=$? dt=$(($(date +%s) - t0))
    if [ $rc -eq 0 ]; then
        say "PASS $name (${dt}s)"
    else
        [ $rc -eq 124 ] && rc="124 (timed out after ${limit}s)"
        say "FAIL $name: exit $rc (${dt}s); end of $(basename "$log"):"
        tail -n 15 "$log" | sed 's/^/    /' | tee -a "$summary"
        failed=1
    fi
}

# ---- what the binaries need -------------------------------------------------------------
for f in .gpu/kiln .gpu/cuda-tests .gpu/root; do
    if [ ! -e "$f" ]; then
        say "FAIL setup: $f missing: run bash bench/gpu_prepare.sh here and carry .gpu"
        exit 1
    fi
done
chmod +x .gpu/kiln .gpu/cuda-tests .gpu/kiln-mpi 2>/dev/null
# The test binary has the build's repository path compiled in (fixtures, configs, the kiln
# binary at <root>/target/release/kiln): make that path this copy of the tree.
built_in=$(cat .gpu/root)
if [ "$built_in" != "$here" ]; then
    if [ -e "$built_in" ] && [ "$(readlink -f "$built_in")" != "$here" ]; then
        say "FAIL setup: $built_in exists on this machine and is not this tree"
        exit 1
    fi
    mkdir -p "$(dirname "$built_in")" && ln -sfn "$here" "$built_in"
fi
mkdir -p target/release
cp .gpu/kiln target/release/kiln

# libcuda comes with the driver; NVRTC and cuBLAS from the CUDA toolkit or PyTorch's wheels.
libdirs=$( (ls -d /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/local/cuda/lib64 /usr/local/cuda/targets/*/lib 2>/dev/null
            python3 - <<'PY' 2>/dev/null
import glob, os, site
for base in site.getsitepackages():
    for d in glob.glob(os.path.join(base, "nvidia", "*", "lib")) + glob.glob(os.path.join(base, "nvidia", "cu*", "lib")):
        print(d)
PY
          ) | while read -r d; do
                  for l in libcuda.so libnvrtc.so libcublas.so; do
                      ls "$d"/$l* >/dev/null 2>&1 && { echo "$d"; break; }
                  done
              done | sort -u | paste -sd:)
export LD_LIBRARY_PATH="${libdirs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
{
    echo "started $(date -u +%FT%TZ) in $here (binaries built in $built_in)"
    echo "commit $(cat .gpu/commit 2>/dev/null)"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1
    echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
    for l in libcuda.so.1 libnvrtc.so libcublas.so; do
        echo "$l: $(ldconfig -p 2>/dev/null | grep -m1 "$l" | awk '{print $NF}') $(echo "$LD_LIBRARY_PATH" | tr : '\n' | while read -r d; do ls "$d"/$l* 2>/dev/null; done | head -2 | paste -sd' ')"
    done
    python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())' 2>&1
    command -v mpirun && mpirun --version 2>&1 | head -1
    nproc
} >"$out/env.txt" 2>&1
cat "$out/env.txt"
if ! .gpu/kiln train configs/linreg.toml --device cuda --quiet --run-dir "$out/probe-run" >"$out/probe.log" 2>&1; then
    say "FAIL setup: kiln cannot train on CUDA here:"
    tail -5 "$out/probe.log" | sed 's/^/    /' | tee -a "$summary"
    cat "$summary"
    exit 1
fi
rm -rf "$out/probe-run" "$out/probe.log"
say "PASS setup: kiln trains on $(head -1 <(nvidia-smi --query-gpu=name --format=csv,noheader))"

# ---- 1. the CUDA tests, bf16/f16 included (about 2 minutes) -------------------------------
export REQUIRE_CUDA=1 REQUIRE_NVRTC=1
step "cuda tests (tests/cuda.rs, REQUIRE_CUDA=1)" 200 "$out/cuda-tests.log" .gpu/cuda-tests --test-threads 4
grep -E "^test .* (ok|FAILED)$|test result|SKIPPED|on CUDA" "$out/cuda-tests.log" | tail -n 40

# ---- 2. the GPU benchmark (about 4 minutes) -----------------------------------------------
if python3 -c 'import torch, numpy; assert torch.cuda.is_available()' 2>/dev/null; then
    torch_python=python3
else
    torch_python=""
    say "SKIP PyTorch side of the benchmark: python3 has no CUDA-enabled torch (kiln rows only)"
fi
if python3 -c 'import numpy' 2>/dev/null; then
    step "synthetic CIFAR-10-shaped data (bench/cifar/make_data.py)" 60 "$out/data.log" \
        python3 bench/cifar/make_data.py --train 10240 --test 2048
    args=(--device cuda --kiln .gpu/kiln --only resnet18,mlp,cnn --repeat 1)
    [ -n "$torch_python" ] && args+=(--python "$torch_python")
    # What is left before the deadline, less a minute for mpirun.
    left=$((deadline - ($(date +%s) - started) - 60))
    [ $left -lt 60 ] && left=60
    export PYTHONUNBUFFERED=1
    step "benchmark (bench/run.py ${args[*]})" "$left" "$out/bench.txt" python3 bench/run.py "${args[@]}"
    cat "$out/bench.txt"
else
    say "FAIL benchmark: python3 without numpy cannot make the synthetic data"
    failed=1
fi

# ---- 3. mpirun -np 1 on the GPU (world size 1, no NCCL) -----------------------------------
if [ -e .gpu/kiln-mpi ] && command -v mpirun >/dev/null && ldd .gpu/kiln-mpi | grep -q "not found"; then
    say "SKIP mpirun: kiln-mpi's libraries are missing here: $(ldd .gpu/kiln-mpi | grep 'not found' | paste -sd' ')"
elif [ -e .gpu/kiln-mpi ] && command -v mpirun >/dev/null; then
    step "mpirun -np 1 kiln train configs/mnist_mlp.toml --device cuda" 90 "$out/mpirun.log" \
        mpirun --allow-run-as-root -np 1 .gpu/kiln-mpi train configs/mnist_mlp.toml --device cuda --quiet \
        --run-dir "$out/mpirun-run"
    rm -rf "$out/mpirun-run"
else
    say "SKIP mpirun: $( [ -e .gpu/kiln-mpi ] && echo "no mpirun on this machine" || echo "no .gpu/kiln-mpi (no mpicc where it was prepared)")"
fi

say "total $(($(date +%s) - started))s; $( [ $failed -eq 0 ] && echo "all steps that ran passed" || echo "SOME STEPS FAILED")"
echo "==== summary"
cat "$summary"
exit $failed
