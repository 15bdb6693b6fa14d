#!/usr/bin/env bash
# Build kabi as the packages ship it and print the binary's path: a static PIE (glibc,
# +crt-static; the release profile: LTO, one codegen unit), the functions of a load placed
# first (build/hot-functions.txt: a load then touches a few 64 KiB windows of the code, not
# dozens; tests/code_order.rs), the symbols stripped by the linker. Its own target directory,
# target/package (the usual target/ is left alone).
#
#   scripts/build-shipped.sh      the path on standard output, cargo's messages on standard error
#
# scripts/package.sh packs this binary, and the benchmarks time it: it is what users run.
# `cargo build --release` makes a dynamically linked one, whose start (the dynamic loader, its
# relocations and page faults) costs about 0.4-0.6 ms more per invocation, as much as a whole
# `kabi load` of an already loaded module takes with the static one.
# Debian 12's own cargo is too old for this crate (edition 2024): the machine's rustup cargo
# builds it. Needs cargo with the x86_64-unknown-linux-gnu target, and readelf (binutils).
# Run as root (`sudo bash scripts/bench-load.sh`), it leaves root's files in target/package:
# build it as yourself first (cargo then has nothing to do), or give the benchmark KABI=PATH.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
die() { echo "build-shipped.sh: $*" >&2; exit 1; }
target=x86_64-unknown-linux-gnu
# the check below must not pass for want of the tool
command -v readelf >/dev/null || die "readelf is missing (apt-get install binutils)"
mkdir -p "$repo/target/package"
# the list under a name of its content: cargo relinks when the list changes (it does not look
# into files named by link arguments). The names in the list carry a hash of the build's
# profile: built with the profile of scripts/hot-functions.sh (debug info stripped)
order=$repo/target/package/hot-functions.$(cksum <"$repo/build/hot-functions.txt" | cut -d' ' -f1).txt
[ -f "$order" ] || cp "$repo/build/hot-functions.txt" "$order"
us=$'\x1f'
(cd "$repo" &&
    CARGO_ENCODED_RUSTFLAGS="-C${us}target-feature=+crt-static${us}-C${us}link-arg=-Wl,--symbol-ordering-file=$order${us}-C${us}link-arg=-Wl,--no-warn-symbol-ordering${us}-C${us}link-arg=-Wl,--strip-all" \
        RUSTFLAGS= CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_RELEASE_STRIP=debuginfo \
        CARGO_TARGET_DIR="$repo/target/package" \
        cargo build --release --locked --quiet --bin kabi --target "$target" >&2) ||
    die "cargo build failed"
bin=$repo/target/package/$target/release/kabi
[ -x "$bin" ] || die "$bin is not an executable"
if readelf -lW "$bin" | grep -q 'Requesting program interpreter'; then
    die "$bin is dynamically linked: the packages ship the static binary"
fi
echo "$bin"
