#!/usr/bin/env bash
# Runs nabla under valgrind memcheck: the default build (RelWithDebInfo) in
# build-vg, then a short MNIST training run, the HDF5 tests and the other fast
# test executables, each with
#   --leak-check=full --error-exitcode=1
# Valgrind cannot decode AVX-512 (and hides it from CPUID), so the runs use
# the AVX2 kernel set (NB_CPU=avx2); the main suite runs every set natively
# under ASan. test_cpu asks for avx512 here: valgrind's CPU lacks it, so
# that checks the fallback on a CPU without AVX-512.
# Errors of every kind (invalid reads/writes, uninitialised values, definite,
# indirect and possible leaks) fail the run. The only suppressions are those
# of scripts/valgrind.supp: libgomp's thread pool, which is never torn down.
# Usage: scripts/valgrind.sh     (needs data/mnist: scripts/fetch_mnist.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

echo "== valgrind build (build-vg)"
cmake -S . -B build-vg -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNB_NATIVE=OFF >/dev/null
cmake --build build-vg -j"$jobs"
bash scripts/fetch_mnist.sh data/mnist
# test_io, test_idx and test_data compare against their PyTorch twins' files: make them first.
(cd build-vg && ctest -R '^ref_(io|idx|data)$' --output-on-failure >/dev/null)

vg=(valgrind --tool=memcheck --leak-check=full --errors-for-leak-kinds=definite,indirect,possible
    --show-leak-kinds=definite,indirect,possible --error-exitcode=1 --track-origins=yes
    --suppressions="$PWD/scripts/valgrind.supp" --quiet)
# Definite, indirect AND possible leaks fail the run; the only possible leak
# expected is libgomp's never-joined thread pool, suppressed narrowly by
# scripts/valgrind.supp. "Still reachable" blocks (HDF5's and glibc's
# one-time caches, still pointed to at exit) are not errors.

root=$PWD
status=0
run() {
  echo "-- $*"
  # CK_EXCLUDE_TAGS=slow: test_io's forked-writer test checks atomic saves,
  # not memory, and takes minutes under valgrind.
  if ! NB_CPU=${NB_CPU:-avx2} OMP_NUM_THREADS=2 CK_FORK=no CK_EXCLUDE_TAGS=slow NB_TEST_DATA="$root/build-vg/testdata" \
       "${vg[@]}" "$@"; then
    echo "valgrind FAILED: $*"
    status=1
  fi
}

echo "== MNIST training run"
out=$(mktemp -d "${TMPDIR:-/tmp}/nbvg.XXXXXX")
run build-vg/examples/mnist/mnist_train --model small --epochs 1 --limit-train 512 --limit-test 256 --threads 2 \
    --data "$PWD/data/mnist" --metrics "$out/metrics.csv" --plot "$out/training.svg" --save "$out/model.h5"
# The residual net's recipe: parameter groups, SequentialLR, crop + flip, checkpoint.
run build-vg/examples/mnist/mnist_train --model resnet --width 4 --epochs 1 --limit-train 128 --limit-test 64 \
    --batch-size 64 --threads 2 --data "$PWD/data/mnist" --metrics "$out/metrics.csv" --plot "$out/training.svg" \
    --checkpoint "$out/ck.h5"
rm -rf "$out"

echo "== test executables"
# test_io (HDF5) first; the rest are those that finish in reasonable time under valgrind.
# test_fuzz_regressions is left to ASan: some of its inputs ask for hundreds of
# gigabytes, which must fail cleanly, and valgrind's allocator gets the
# process killed instead of returning NULL.
for t in io idx data tensor; do
  # (not in a subshell: run() must be able to set status)
  if [ -x build-vg/tests/test_$t ]; then cd build-vg/tests; run ./test_$t; cd "$root"; fi
done
cd build-vg/tests; NB_CPU=avx512 run ./test_cpu; cd "$root"
exit "$status"
