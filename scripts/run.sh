#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine: install dependencies, fetch
# MNIST, build, train the default CNN and print the final test accuracy.
# Extra arguments go to the trainer (see build/examples/mnist/mnist_train --help),
# e.g. scripts/run.sh --epochs 14 for PyTorch's full recipe, or
# scripts/run.sh --model resnet --fashion for the residual net on Fashion-MNIST
# (which this script then installs too).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/fetch_mnist.sh
for arg in "$@"; do
  if [ "$arg" = "--fashion" ]; then bash scripts/fetch_mnist.sh --fashion >/dev/null; fi
done
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
exec ./build/examples/mnist/mnist_train "$@"
