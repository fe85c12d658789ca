#!/usr/bin/env bash
# bench/mpi_mnist.sh [BUILD_DIR] [IMAGES] [MODEL]
# Data-parallel MNIST throughput: mnist_train on 1, 2 and 4 MPI ranks (one
# OpenMP thread each; beyond the machine's core count the ranks are
# oversubscribed), global batch 64 split over the ranks, one epoch of IMAGES
# training images (default 4096) of the default net. Prints images/s of the
# training loop (test-set evaluation excluded) and the gradient bytes each
# rank all-reduces per step, as the trainer reports them.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
images=${2:-4096}
model=${3:-default}
bin=$build/examples/mnist/mnist_train
[ -x "$bin" ] || { echo "build first: cmake -S . -B $build && cmake --build $build" >&2; exit 1; }
bash scripts/fetch_mnist.sh data/mnist >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "model $model, $images images, global batch 64, 1 thread per rank, $(nproc) cores"
printf "%5s %10s %10s %12s %16s\n" ranks batch/rank "s/epoch" images/s "MB/step/rank"
for np in 1 2 4; do
  flags=(--data "$PWD/data/mnist" --model "$model" --limit-train "$images" --limit-test 1000 --epochs 1
         --batch-size $((64 / np)) --threads 1 --metrics "$work/m.csv" --plot "$work/p.svg")
  if [ "$np" -eq 1 ]; then
    out=$(cd "$work" && "$OLDPWD/$bin" "${flags[@]}")
  else
    out=$(cd "$work" && mpirun --oversubscribe --allow-run-as-root --bind-to none -np "$np" "$OLDPWD/$bin" "${flags[@]}")
  fi
  secs=$(tail -1 "$work/m.csv" | cut -d, -f5) # training seconds of the epoch, written by rank 0
  mb=$(sed -n 's/.* \([0-9.]*\) MB all-reduced per step/\1/p' <<<"$out")
  printf "%5d %10d %10s %12.0f %16s\n" "$np" $((64 / np)) "$secs" "$(echo "$images / $secs" | bc -l)" "${mb:-0}"
done
