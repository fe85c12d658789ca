#!/usr/bin/env bash
# Install what a PyTorch user's CPU setup has and the benchmarks need, from
# Debian's archive: an optimized BLAS for libtorch (Debian's libtorch1.13
# recommends libopenblas0, i.e. libopenblas0-pthread, which registers itself
# as the libblas.so.3 / liblapack.so.3 alternative above the reference
# libblas3; the benchmarks run PyTorch on the OpenMP build,
# libopenblas0-openmp, chosen per process: bench/torch_runtime.py) and
# jemalloc, the steady-state allocator PyTorch's tuning guide recommends
# (preloaded into the PyTorch process only).
# Idempotent: when everything is present it installs nothing, prints nothing
# and touches no network (like scripts/setup.sh).
set -euo pipefail

pkgs=(libopenblas0-pthread libopenblas0-openmp libjemalloc2)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "bench/setup: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
