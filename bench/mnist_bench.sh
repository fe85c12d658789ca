#!/usr/bin/env bash
# mnist_bench.sh [EPOCH_FRACTION | --limit-train N] [--threads "1 2"]
#
# One training epoch of PyTorch's MNIST example net (batch 64, Adadelta lr 1)
# in nabla (build/examples/mnist/mnist_train) and in PyTorch
# (bench/mnist_torch.py, the same net from tools/mnist_nets.py), at 1 and 2
# threads. With a fraction (0.1) or --limit-train N only the first images are
# trained on and seconds per epoch are extrapolated linearly to 60000 images
# (the table says so). Both evaluate on the full 10000-image test set at batch
# 1000 after the (partial) epoch and report their peak resident memory.
# Needs a Release build (cmake -S . -B build && cmake --build build) and
# data/mnist (scripts/fetch_mnist.sh).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$root/build/examples/mnist/mnist_train"
data="$root/data/mnist"
limit=60000
threads="1 2"
while [ $# -gt 0 ]; do
  case "$1" in
    --limit-train) limit="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    -h|--help) sed -n '2,12s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) limit=$(python3 -c "import sys; print(max(64, round(60000 * float(sys.argv[1]))))" "$1"); shift ;;
  esac
done
[ -x "$bin" ] || { echo "mnist_bench: build $bin first" >&2; exit 1; }
[ -f "$data/train-images-idx3-ubyte" ] || { echo "mnist_bench: run scripts/fetch_mnist.sh first" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $limit training images (extrapolated to 60000), loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-7s | %-10s %-9s %-8s %-9s | %-10s %-9s %-8s %-9s | %s\n' threads "nabla s/ep" "img/s" "test%" "RSS MiB" \
  "torch s/ep" "img/s" "test%" "RSS MiB" "nabla/torch time"
for t in $threads; do
  out=$(cd "$work" && "$bin" --data "$data" --epochs 1 --limit-train "$limit" --threads "$t" \
        --metrics m.csv --plot p.svg)
  n_secs=$(sed -n 's/.*(\([0-9.]*\) s training).*/\1/p' <<<"$out" | tail -1)
  n_acc=$(sed -n 's/^final test accuracy: \([0-9.]*\)%.*/\1/p' <<<"$out")
  n_rss=$(sed -n 's/^peak resident memory: \([0-9]*\) MiB.*/\1/p' <<<"$out")
  tline=$(/usr/bin/python3 "$root/bench/mnist_torch.py" "$data" "$t" "$limit")
  get() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$tline"; }
  python3 - "$t" "$limit" "$n_secs" "$n_acc" "$n_rss" "$(get seconds)" "$(get test_acc)" "$(get peak_rss_mib)" <<'PY'
import sys
t, n, ns, na, nr, ts, ta, tr = sys.argv[1:]
n, ns, ts = int(n), float(ns), float(ts)
f = 60000 / n
print(f"{t:<7} | {ns * f:<10.1f} {n / ns:<9.0f} {na:<8} {nr:<9} | {ts * f:<10.1f} {n / ts:<9.0f} {ta:<8} {tr:<9} | {ns / ts:.2f}")
PY
done
