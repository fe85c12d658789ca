#!/usr/bin/env bash
# Runs nabla under valgrind memcheck: a build without -march=native (valgrind
# cannot decode AVX-512) in build-vg, then a short MNIST training run, the
# HDF5 tests and the other fast test executables, each with
#   --leak-check=full --error-exitcode=1
# Errors of every kind (invalid reads/writes, uninitialised values, definite
# and indirect leaks) fail the run. The only suppressions are those of
# scripts/valgrind.supp: libgomp's thread pool, which is never torn down.
# Usage: scripts/valgrind.sh     (needs data/mnist: scripts/fetch_mnist.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

echo "== valgrind build (build-vg, NB_NATIVE=OFF)"
cmake -S . -B build-vg -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNB_NATIVE=OFF >/dev/null
cmake --build build-vg -j"$jobs"
bash scripts/fetch_mnist.sh data/mnist
# test_io compares against the PyTorch twin's file: make it first.
(cd build-vg && ctest -R '^ref_io$' --output-on-failure >/dev/null)

vg=(valgrind --tool=memcheck --leak-check=full --errors-for-leak-kinds=definite,indirect
    --show-leak-kinds=definite,indirect --error-exitcode=1 --track-origins=yes
    --suppressions=scripts/valgrind.supp --quiet)
# --errors-for-leak-kinds=definite,indirect: "possibly lost" and "still
# reachable" blocks are memory that is still pointed to at exit (libgomp's
# pool, HDF5's and glibc's one-time caches); they are not leaks of nabla's.
# Definite and indirect leaks are what a missing free produces, and fail.

status=0
run() {
  echo "-- $*"
  if ! OMP_NUM_THREADS=2 CK_FORK=no NB_TEST_DATA="$PWD/build-vg/testdata" "${vg[@]}" "$@"; then
    echo "valgrind FAILED: $*"
    status=1
  fi
}

echo "== MNIST training run"
run build-vg/examples/mnist/mnist_train --model small --epochs 1 --limit-train 512 --limit-test 256 --threads 2 \
    --data data/mnist --out "$(mktemp -d)"

echo "== test executables"
# test_io (HDF5) first; the rest are those that finish in reasonable time under valgrind.
for t in io fuzz_regressions idx tensor; do
  if [ -x build-vg/tests/test_$t ]; then (cd build-vg/tests && run ./test_$t); fi
done
exit "$status"
