#!/usr/bin/env bash
# deb.sh SOURCE_DIR BUILD_DIR VERSION mpi|nompi
# `cpack -G DEB` on BUILD_DIR makes libnabla-dev_VERSION_ARCH.deb; it is
# installed with `apt-get install ./libnabla-dev_*.deb`, tests/install/consumer
# is built against it with find_package(nabla) and pkg-config (the system's
# copy, under /usr) and run, and the package is removed again, whatever happens.
# Needs root and apt-get (exit 77, skipped, otherwise). A lock keeps two
# suites on one machine from installing and removing it under each other.
set -euo pipefail
src=$(cd "$1" && pwd); build=$(cd "$2" && pwd); version=$3; mpi=$4
here="$src/tests/install"
pkg=libnabla-dev
major=${version%%.*}

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null || ! command -v dpkg-shlibdeps >/dev/null; then
  echo "deb test: skipped (needs root, apt-get and dpkg-shlibdeps)"; exit 77
fi
fail() { echo "deb test: FAILED: $*" >&2; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nabla-deb.XXXXXX")
quiet() {
  local log="$tmp/last.log"
  "$@" >"$log" 2>&1 || { cat "$log" >&2; fail "$*"; }
}
export DEBIAN_FRONTEND=noninteractive
apt=(apt-get -y -q -o DPkg::Lock::Timeout=600)

exec 9>/tmp/nabla-deb-test.lock
flock -w 3600 9 || fail "another deb test held /tmp/nabla-deb-test.lock for an hour"
if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed"; then
  rm -rf "$tmp"
  fail "$pkg is already installed on this machine; this test installs and removes its own: apt-get remove $pkg first"
fi
installed=0
cleanup() {
  if [ "$installed" = 1 ]; then "${apt[@]}" purge "$pkg" >"$tmp/remove.log" 2>&1 || cat "$tmp/remove.log" >&2; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

echo "== cpack -G DEB"
quiet cpack -G DEB --config "$build/CPackConfig.cmake" -B "$tmp/pkg"
debs=("$tmp/pkg/${pkg}_${version}"*.deb)
[ -f "${debs[0]}" ] || fail "cpack made no ${pkg}_${version}*.deb in $tmp/pkg: $(ls "$tmp/pkg")"
deb=${debs[0]}
dpkg-deb -f "$deb" Package Version Depends
contents=$(dpkg-deb -c "$deb" | awk '{print $6}')
for f in usr/include/nabla.h usr/include/nabla/version.h "usr/lib/libnabla.so.$version" usr/lib/libnabla.a \
         usr/lib/cmake/nabla/nablaConfig.cmake usr/lib/pkgconfig/nabla.pc; do
  grep -qx "./$f" <<<"$contents" || fail "$deb lacks /$f"
done

echo "== apt-get install ./$(basename "$deb")"
cp "$deb" "$tmp/"
installed=1
(cd "$tmp" && quiet "${apt[@]}" install "./$(basename "$deb")")
[ "$(pkg-config --variable=prefix nabla)" = /usr ] || fail "the package's nabla.pc says prefix $(pkg-config --variable=prefix nabla)"

# Only the system's copy may be found: no private prefixes from the environment.
unset PKG_CONFIG_PATH CMAKE_PREFIX_PATH
echo "== find_package(nabla) against /usr"
mkdir "$tmp/find_package"
cp "$here/consumer/CMakeLists.txt" "$here/consumer/consumer.c" "$tmp/find_package/"
quiet cmake -S "$tmp/find_package" -B "$tmp/find_package/build" -DCMAKE_BUILD_TYPE=Release
grep -qx "nabla_DIR:PATH=/usr/lib/cmake/nabla" "$tmp/find_package/build/CMakeCache.txt" ||
  fail "find_package found $(grep '^nabla_DIR' "$tmp/find_package/build/CMakeCache.txt")"
quiet cmake --build "$tmp/find_package/build" -j2
echo "== pkg-config against /usr"
quiet cc -O2 -o "$tmp/consumer_pc" "$tmp/find_package/consumer.c" $(pkg-config --cflags --libs nabla)
for exe in "$tmp/find_package/build/consumer" "$tmp/consumer_pc"; do
  lib=$(ldd "$exe" | awk '/libnabla\.so/ {print $3}')
  [ -n "$lib" ] && [ "$(realpath "$lib")" = "$(realpath "/usr/lib/libnabla.so.$major")" ] ||
    fail "$exe loads libnabla from '$lib', not /usr/lib"
done
for exe in "$tmp/find_package/build/consumer" "$tmp/find_package/build/consumer_static" "$tmp/consumer_pc"; do
  (cd "$tmp" && "$exe" "$tmp/weights.h5" "$mpi") || fail "$exe did not pass"
done

echo "== apt-get purge $pkg"
quiet "${apt[@]}" purge "$pkg"
installed=0
[ ! -e /usr/include/nabla.h ] && [ ! -e "/usr/lib/libnabla.so.$major" ] || fail "removing $pkg left files behind"
echo "deb test: the package installs, builds the consumer and is removed"
