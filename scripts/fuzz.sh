#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz, clang, ASan+UBSan) in build-fuzz and
# runs each on a temporary copy of its seed corpus (so the repository is never
# modified), either for a fixed number of inputs (`ci`, the default: what CI
# runs, so a CI run replays exactly the inputs a developer already ran clean on
# the same Debian clang) or for SECONDS each (exploration, not reproducible:
# how far it gets depends on the machine's speed). Fails if any target reports a crash,
# sanitizer error, timeout, leak or broken check. Artifacts (the inputs that
# failed) are kept in the printed temporary directory: commit them under
# tests/fuzz/regressions/<name>/ together with the fix.
# The seed is fixed (NB_FUZZ_SEED, default 1); NB_FUZZ_TARGETS picks targets
# (default "idx hdf5 conv").
# Usage: scripts/fuzz.sh [ci|SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-ci}
targets=(${NB_FUZZ_TARGETS:-idx hdf5 conv})
# Inputs per target in ci mode: about a minute each on the 2-core CI machine.
declare -A ci_runs=([idx]=300000 [hdf5]=9000 [conv]=500000)

echo "== libFuzzer build (build-fuzz)"
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DNB_FUZZ=ON -DNB_BUILD_TESTS=OFF \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNB_NATIVE="${NB_NATIVE:-OFF}" >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target "${targets[@]/#/fuzz_}"

work=$(mktemp -d "${TMPDIR:-/tmp}/nbfuzz.XXXXXX")
status=0
keep=0
for t in "${targets[@]}"; do
  mkdir -p "$work/$t/corpus" "$work/$t/artifacts"
  # Seeds are given by name in sorted order (not read from a directory, whose
  # listing order differs between file systems) and the corpus is never
  # reloaded, so the input sequence depends on nothing but the seed.
  seeds=$(ls -d "$PWD"/tests/fuzz/corpus/"$t"/* | LC_ALL=C sort | paste -sd, -)
  if [ "$mode" = ci ]; then
    # -max_total_time only guards against a runaway; the run count ends it.
    # -timeout (one input) is a hang guard too: CI's verdict must not depend
    # on how busy the machine is.
    budget=(-runs="${ci_runs[$t]}" -max_total_time=3600 -timeout=600)
    echo "== fuzz_$t for ${ci_runs[$t]} inputs"
  else
    budget=(-max_total_time="$mode" -timeout=10) # exploring: slow inputs are findings
    echo "== fuzz_$t for ${mode}s"
  fi
  # One thread for nabla's kernels: the fuzz inputs are tiny, and libFuzzer
  # runs one process. Leaks are checked by LeakSanitizer; fast_unwind_on_malloc=0
  # gives full stacks through libhdf5 (built without frame pointers) so that
  # tests/fuzz/lsan.supp can match HDF5's own allocators exactly.
  if ! OMP_NUM_THREADS=1 ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1:fast_unwind_on_malloc=0 \
       LSAN_OPTIONS=suppressions="$PWD/tests/fuzz/lsan.supp" \
       UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
       build-fuzz/tests/fuzz/fuzz_"$t" "${budget[@]}" -rss_limit_mb=2048 -malloc_limit_mb=1048576 \
         -seed="${NB_FUZZ_SEED:-1}" -seed_inputs="$seeds" -reload=0 -print_final_stats=1 \
         -artifact_prefix="$work/$t/artifacts/" "$work/$t/corpus" \
         >"$work/$t/log" 2>&1; then
    # A crash whose innermost frame (past libc's mem* and ASan's interceptors)
    # is inside libhdf5 itself is a bug of Debian's libhdf5 1.10 on corrupt
    # files, which nabla cannot fix: report it, keep the input, do not fail.
    # Anything with a nabla frame first, any leak, hang or broken contract fails.
    frame=$(grep -E '^ +#[0-9]+ ' "$work/$t/log" | grep -vE '__interceptor_|__mem[a-z_]*|string/|sanitizer_common' | head -1 || true)
    if grep -q 'ERROR: AddressSanitizer: \(SEGV\|heap-buffer-overflow\)' "$work/$t/log" && [[ "$frame" == *libhdf5* ]]; then
      echo "fuzz_$t: crash inside libhdf5 itself (not nabla's code; known class, see tests/fuzz/README.md):"
      echo "  $frame"
      echo "  input kept: $(ls "$work/$t/artifacts/" | tr '\n' ' ')in $work/$t/artifacts/"
      keep=1
      continue
    fi
    echo "fuzz_$t FAILED; log: $work/$t/log, failing inputs: $work/$t/artifacts/"
    grep -E 'ERROR|runtime error|SUMMARY|contract broken' "$work/$t/log" | head -20 || true
    status=1
  else
    grep -E '^stat::number_of_executed_units|^Done' "$work/$t/log" || true
  fi
done
if [ "$status" -eq 0 ] && [ "$keep" -eq 0 ]; then rm -rf "$work"; fi
exit "$status"
