#!/usr/bin/env bash
# run.sh SOURCE_DIR BUILD_DIR VERSION mpi|nompi
# nabla as a user's program gets it: `cmake --install BUILD_DIR` into a
# temporary prefix, then tests/install/consumer (copied out of the source
# tree) built against that prefix with find_package(nabla) (shared and
# static targets), with `pkg-config --cflags --libs nabla`, with
# `pkg-config --static --cflags --libs nabla` (libnabla.a), and as
# tests/install/subdir, which add_subdirectory()s the source tree. Each
# program runs (it trains, saves and loads; see consumer.c) and must have
# used the copy under test: the temporary prefix, never a system-wide nabla.
set -euo pipefail
src=$(cd "$1" && pwd); build=$(cd "$2" && pwd); version=$3; mpi=$4
here="$src/tests/install"
cc=${CC:-cc}
major=${version%%.*}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nabla-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix="$tmp/prefix"
fail() { echo "install test: FAILED: $*" >&2; exit 1; }
# quiet CMD...: run CMD, showing its output only when it fails.
quiet() {
  local log="$tmp/last.log"
  "$@" >"$log" 2>&1 || { cat "$log" >&2; fail "$*"; }
}
# uses_lib BINARY DIR: BINARY loads libnabla.so from DIR.
uses_lib() {
  local got
  got=$(ldd "$1" | awk '/libnabla\.so/ {print $3}')
  [ "$got" = "$2/libnabla.so.$major" ] || fail "$1 loads libnabla from '${got:-nowhere}', expected $2/libnabla.so.$major"
}
# static_only BINARY: BINARY does not need libnabla.so at all.
static_only() {
  if readelf -d "$1" | grep -q 'NEEDED.*libnabla'; then fail "$1 should contain libnabla.a but needs libnabla.so"; fi
}
run() { (cd "$tmp" && "$@" "$tmp/weights.h5" "$mpi") || fail "$* did not pass"; }

echo "== cmake --install $build --prefix $prefix"
quiet cmake --install "$build" --prefix "$prefix"
for f in include/nabla.h include/nabla/core.h include/nabla/version.h \
         "lib/libnabla.so.$version" lib/libnabla.a lib/pkgconfig/nabla.pc \
         lib/cmake/nabla/nablaConfig.cmake lib/cmake/nabla/nablaConfigVersion.cmake lib/cmake/nabla/nablaTargets.cmake; do
  [ -f "$prefix/$f" ] || fail "$prefix/$f was not installed"
done
[ "$(readlink "$prefix/lib/libnabla.so")" = "libnabla.so.$major" ] || fail "lib/libnabla.so should link to libnabla.so.$major"
soname=$(readelf -d "$prefix/lib/libnabla.so.$version" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
[ "$soname" = "libnabla.so.$major" ] || fail "soname is '$soname', expected libnabla.so.$major"
if find "$prefix" -name '*.in' -o -name '*.c' | grep .; then fail "sources or templates installed"; fi
grep -q "NB_VERSION_STRING \"$version\"" "$prefix/include/nabla/version.h" || fail "version.h does not say $version"

echo "== find_package(nabla): nabla::nabla and nabla::nabla_static"
mkdir "$tmp/find_package"
cp "$here/consumer/CMakeLists.txt" "$here/consumer/consumer.c" "$tmp/find_package/"
quiet cmake -S "$tmp/find_package" -B "$tmp/find_package/build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix"
grep -qx "nabla_DIR:PATH=$prefix/lib/cmake/nabla" "$tmp/find_package/build/CMakeCache.txt" ||
  fail "find_package found $(grep '^nabla_DIR' "$tmp/find_package/build/CMakeCache.txt"), not $prefix"
quiet cmake --build "$tmp/find_package/build" -j2
uses_lib "$tmp/find_package/build/consumer" "$prefix/lib"
static_only "$tmp/find_package/build/consumer_static"
run "$tmp/find_package/build/consumer"
run "$tmp/find_package/build/consumer_static"

echo "== pkg-config --cflags --libs nabla"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
[ "$(pkg-config --variable=prefix nabla)" = "$prefix" ] || fail "pkg-config finds nabla in $(pkg-config --variable=prefix nabla), not $prefix"
[ "$(pkg-config --modversion nabla)" = "$version" ] || fail "pkg-config --modversion nabla is not $version"
cp "$here/consumer/consumer.c" "$tmp/"
# The prefix is not a system directory: -rpath tells the program where libnabla.so is.
quiet "$cc" -O2 -o "$tmp/consumer_pc" "$tmp/consumer.c" $(pkg-config --cflags --libs nabla) -Wl,-rpath,"$prefix/lib"
uses_lib "$tmp/consumer_pc" "$prefix/lib"
run "$tmp/consumer_pc"

echo "== pkg-config --static --cflags --libs nabla (libnabla.a)"
# With both libnabla.so and libnabla.a installed, -lnabla means the .so:
# -l:libnabla.a asks for the archive, and --static adds what it needs.
quiet "$cc" -O2 -o "$tmp/consumer_pc_static" "$tmp/consumer.c" \
  $(pkg-config --static --cflags --libs nabla | sed 's/-lnabla\b/-l:libnabla.a/')
static_only "$tmp/consumer_pc_static"
run "$tmp/consumer_pc_static"
unset PKG_CONFIG_PATH

echo "== add_subdirectory(nabla) of the source tree"
mkdir "$tmp/subdir"
cp "$here/subdir/CMakeLists.txt" "$here/consumer/consumer.c" "$tmp/subdir/"
ln -s "$src" "$tmp/subdir/nabla"
quiet cmake -S "$tmp/subdir" -B "$tmp/subdir/build" -DCMAKE_BUILD_TYPE=Release
# nabla is not the top-level project there: its tests, examples and benchmarks stay off.
for d in tests examples bench; do
  [ ! -e "$tmp/subdir/build/nabla/$d" ] || fail "add_subdirectory(nabla) configured nabla's $d"
done
quiet cmake --build "$tmp/subdir/build" -j2
uses_lib "$tmp/subdir/build/consumer" "$tmp/subdir/build/nabla"
run "$tmp/subdir/build/consumer"

echo "install test: all consumers built and passed"
