#!/usr/bin/env sh
# The tools the aarch64 tests need (tests/test_aarch64.py, the cross-linker branch of
# tests/test_api.py): a cross compiler and qemu-user, from Debian's packages. Installed where this
# user may (root with apt-get, as in CI); elsewhere a note says which tests will be skipped.
set -eu
if command -v aarch64-linux-gnu-g++ >/dev/null && command -v qemu-aarch64 >/dev/null; then
  exit 0
fi
if [ "$(uname -m)" != "x86_64" ]; then
  exit 0
fi
PACKAGES="g++-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user"
install() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $PACKAGES >/dev/null 2>&1
}
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing $PACKAGES (Debian packages) for the aarch64 tests"
  # a failed install costs the aarch64 tests only (they skip and say why), never the suite
  install || { apt-get update -q >/dev/null 2>&1 && install; } ||
    echo "note: could not install them; the aarch64 tests will be skipped"
else
  echo "note: the aarch64 tests will be skipped; to run them: apt install $PACKAGES"
fi
