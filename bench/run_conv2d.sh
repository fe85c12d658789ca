#!/usr/bin/env bash
# Conv2d benchmark, nabla against PyTorch at its best, at 1 and 2 threads.
# Installs the PyTorch side's OpenBLAS and jemalloc if missing (bench/setup.sh),
# then runs bench/conv2d_run.py: prints the table and writes
# bench/results/conv2d-<date>-<commit>.json (compare two with bench/compare.py).
# Usage: bench/run_conv2d.sh [REPEATS] [conv2d_run.py options: --threads "1 2",
#        --only NAME,NAME, --build DIR, --out FILE]   (after a Release build in build/)
set -euo pipefail
cd "$(dirname "$0")/.."
bash bench/setup.sh
args=()
if [ $# -gt 0 ] && [[ "$1" =~ ^[0-9]+$ ]]; then
  args+=(--repeats "$1")
  shift
fi
exec /usr/bin/python3 bench/conv2d_run.py "${args[@]}" "$@"
