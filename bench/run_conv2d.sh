#!/usr/bin/env bash
# Runs the Conv2d benchmark for nabla and PyTorch side by side at 1 and 2
# threads and prints the table of medians and nabla/PyTorch time ratios
# (< 1 means nabla is faster). Writes bench/results/conv2d.json.
# Usage: bench/run_conv2d.sh [REPEATS]   (after building into build/)
set -euo pipefail
cd "$(dirname "$0")/.."
repeats=${1:-10}
out=bench/results
mkdir -p "$out"
: > "$out/conv2d.jsonl"
for t in 1 2; do
  ./build/bench/conv2d_bench bench/conv2d_configs.txt "$t" "$repeats" | tee -a "$out/conv2d.jsonl"
  /usr/bin/python3 bench/conv2d_bench_torch.py bench/conv2d_configs.txt "$t" "$repeats" | tee -a "$out/conv2d.jsonl"
done
/usr/bin/python3 bench/ratio_table.py "$out/conv2d.jsonl" "$out/conv2d.json"
