#!/usr/bin/env bash
# Stage what bench/gpu_session.sh runs on a GPU machine that has no Rust toolchain and no
# network: the release binary, the release build of tests/cuda.rs, and (when OpenMPI builds
# here) a binary with the mpi feature, in .gpu/ (git-ignored), plus the repository path they
# were built in (the test binary has it compiled in: CARGO_MANIFEST_DIR and the kiln binary's
# path), which the session links to its copy of the tree. Run here, from the repository root,
# then make ONE device call (README, "GPU session"):
#
#   bash bench/gpu_prepare.sh
#   device run: command "bash bench/gpu_session.sh", carry [".gpu"], timeout_s 600
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd -P)
target="${CARGO_TARGET_DIR:-$root/target}"
mkdir -p .gpu
rm -f .gpu/*

echo "== cargo build --release (kiln)"
CARGO_TARGET_DIR="$target" cargo build --release --locked
cp "$target/release/kiln" .gpu/kiln

echo "== cargo test --release --test cuda --no-run"
exe=$(CARGO_TARGET_DIR="$target" cargo test --release --locked --test cuda --no-run --message-format=json \
      | python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "cuda" and m.get("executable"):
        print(m["executable"])')
[ -n "$exe" ] || { echo "no test executable for tests/cuda.rs" >&2; exit 1; }
cp "$exe" .gpu/cuda-tests
# The test binary runs the kiln binary at the path it was built with: the same build.
[ "$(readlink -f "$target/release/kiln")" = "$(readlink -f "$root/target/release/kiln")" ] || {
    echo "CARGO_TARGET_DIR must be $root/target: the test binary looks for kiln there" >&2; exit 1; }

if command -v mpicc >/dev/null; then
    echo "== cargo build --release --features mpi (kiln-mpi)"
    CARGO_TARGET_DIR="$root/target/mpi" cargo build --release --locked --features mpi
    cp "$root/target/mpi/release/kiln" .gpu/kiln-mpi
else
    echo "== no mpicc here: .gpu/kiln-mpi not built (the session skips mpirun, saying so)"
fi

echo "$root" > .gpu/root
git rev-parse HEAD > .gpu/commit
git status --porcelain | grep -v '^??' >/dev/null && echo "dirty" >> .gpu/commit || true
du -ch .gpu | tail -1
echo "staged in .gpu/ for bench/gpu_session.sh (built in $root at $(head -1 .gpu/commit))"
