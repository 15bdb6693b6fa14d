#!/usr/bin/env bash
# Install what kabi's build, demo and tests need on Debian 12 (idempotent).
# kmod is the reference implementation the differential tests compare against.
# gcc-12, make, binutils and libelf1 build the vendor modules of testdata/vendor/ against
# Debian headers (testdata/build-vendor.sh; flock from util-linux serialises it).
# qemu-system-x86 boots a real Debian kernel with kabi as /init (tests/qemu_boot.rs).
set -euo pipefail
pkgs="kmod xz-utils zstd gzip bzip2 lz4 apt dpkg bc time gcc-12 make binutils libelf1 util-linux qemu-system-x86 systemd"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if [ -n "$missing" ]; then
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
fi
command -v cargo >/dev/null || { echo "deps.sh: cargo is missing: install Rust (rustup) first" >&2; exit 1; }
# cargo-fuzz builds and runs fuzz/ (every parser's target) on the stable toolchain
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --quiet
