#!/bin/sh
# Installs the Debian packages bnn-serve needs to build, test and run, when
# some are missing. Idempotent and quiet when everything is present.
# Usage: scripts/deps.sh [build|test|all]   (default: all)
set -eu
set -- ${1:-all}
BUILD_PKGS="make gcc pkg-config libmicrohttpd-dev libjansson-dev libpng-dev libopenblas-dev librandom123-dev nettle-dev"
# buildah + debootstrap: tests/integration/test_container.py builds and runs
# the real image (docker/buildah-build.sh).
TEST_PKGS="libcmocka-dev clang libclang-rt-14-dev clang-format pmccabe wrk curl python3 gnuplot-nox dataset-fashion-mnist chromium buildah debootstrap"
case "$1" in
  build) want="$BUILD_PKGS" ;;
  test|all) want="$BUILD_PKGS $TEST_PKGS" ;;
  *) echo "deps.sh: error: unknown set '$1' (build|test|all)" >&2; exit 2 ;;
esac
missing=""
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
# Node.js may come from Debian (nodejs + npm) or from another vendor's
# package that bundles npm and conflicts with Debian's npm: accept any working
# node and npm on PATH, install Debian's only when there is none.
if [ "$1" != build ]; then
  command -v node >/dev/null 2>&1 || missing="$missing nodejs"
  command -v npm >/dev/null 2>&1 || missing="$missing npm"
fi
[ -z "$missing" ] && exit 0
echo "deps.sh: installing:$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
