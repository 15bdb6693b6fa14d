#!/usr/bin/env bash
# Install what kabi's build, demo and tests need on Debian 12 (idempotent).
# kmod is the reference implementation the differential tests compare against.
# gcc-12, make, binutils and libelf1 build the vendor modules of testdata/vendor/ against
# Debian headers (testdata/build-vendor.sh; flock from util-linux serialises it).
# rpm (Debian's rpm 4.18 with rpmbuild) builds the KMP fixtures of testdata/build-kmp.sh and is
# the reference the rpm database reader is checked against; sqlite3 dumps real header blobs
# as seeds of the rpm_header fuzz target (fuzz/seed.sh).
# qemu-system-x86 boots a real Debian kernel with kabi as /init (tests/qemu_boot.rs);
# busybox-static is the modprobe kabi load is measured against in that guest
# (tests/qemu_load_cost.rs).
# openssl makes the signing keys of the signature tests (and is what sign-file links against);
# efitools' cert-to-efi-sig-list writes the UEFI signature lists kabi reads (tests/sig.rs).
# dracut (Debian's 059; it replaces initramfs-tools, which the tests take from their cache)
# builds the images tests/qemu_dracut.rs boots, with its kernel hook; lintian judges the .debs
# of scripts/package.sh (tests/packages.rs). strace counts the system calls of a threaded
# depmod (tests/heap.rs).
set -euo pipefail
pkgs="kmod xz-utils zstd gzip bzip2 lz4 apt dpkg bc time gcc-12 make binutils libelf1 util-linux qemu-system-x86 busybox-static systemd rpm sqlite3 openssl efitools dracut lintian strace"
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
