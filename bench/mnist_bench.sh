#!/usr/bin/env bash
# mnist_bench.sh [EPOCH_FRACTION | --limit-train N] [--threads "1 2"] [--build DIR] [--out FILE]
#
# One training epoch of PyTorch's MNIST example net (batch 64, Adadelta lr 1)
# in nabla (build/examples/mnist/mnist_train) and in PyTorch
# (bench/mnist_torch.py, the same net from tools/mnist_nets.py, run with
# jemalloc and with glibc's malloc over OpenBLAS), at 1 and 2 threads. Prints
# seconds per epoch, nabla's time over PyTorch-at-its-best's, and each as a
# multiple of the machine's limit (FLOPs per epoch / measured FMA peak);
# writes bench/results/mnist-<date>-<commit>.json (compare two with
# bench/compare.py). With a fraction (0.1) or --limit-train N only the first
# images are trained on and seconds per epoch are extrapolated to 60000.
# Needs a Release build (cmake -S . -B build -DCMAKE_BUILD_TYPE=Release &&
# cmake --build build -j2) and data/mnist (scripts/fetch_mnist.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in -h|--help) sed -n '2,15s/^# \{0,1\}//p' "$0"; exit 0 ;; esac
bash bench/setup.sh
exec /usr/bin/python3 bench/mnist_run.py "$@"
