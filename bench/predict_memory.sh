#!/usr/bin/env bash
# Predict streams: peak memory does not grow with the input. Trains the linreg config once, then
# predicts over a 1,000-row and a 1,000,000-row CSV in fresh processes and prints each one's
# peak resident memory (GNU time, Debian package `time`) and wall time.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
./target/release/kiln train configs/linreg.toml --quiet --set train.epochs=200 --run-dir "$work/run" >/dev/null
python3 - "$work" <<'PY'
import random, sys
random.seed(0)
for rows in (1_000, 1_000_000):
    with open(f"{sys.argv[1]}/x{rows}.csv", "w") as f:
        f.write("x\n")
        f.writelines(f"{random.uniform(0, 2):.6f}\n" for _ in range(rows))
PY
echo "| input rows | peak RSS (MiB) | wall (s) | output rows |"
echo "|---:|---:|---:|---:|"
for rows in 1000 1000000; do
  /usr/bin/time -f "%M %e" -o "$work/time" ./target/release/kiln predict "$work/run" "$work/x$rows.csv" > "$work/out.csv"
  read -r kb secs < "$work/time"
  printf "| %d | %.1f | %s | %d |\n" "$rows" "$(echo "$kb / 1024" | bc -l)" "$secs" "$(($(wc -l < "$work/out.csv") - 1))"
done
