#!/usr/bin/env bash
# Fetch Debian's initramfs-tools (and what its mkinitramfs needs that a minimal system lacks:
# klibc, busybox, cpio) with `apt-get download`, unpack them into a cache, and print a
# directory laid out as /usr to be overlaid on the system's /usr in a private mount
# namespace (tests/initramfs_tools.rs). Nothing is installed: initramfs-tools conflicts with
# dracut, and installing it runs update-initramfs for the machine's own kernels.
#
#   testdata/fetch-initramfs-tools.sh      → prints CACHE/initramfs-tools/usr
#
# Cache: $KABI_CACHE (default ~/.cache/kabi), guarded by a lock.
set -euo pipefail
cache=${KABI_CACHE:-$HOME/.cache/kabi}
dir="$cache/initramfs-tools"
pkgs="initramfs-tools initramfs-tools-core klibc-utils libklibc busybox cpio"
die() { echo "fetch-initramfs-tools.sh: $*" >&2; exit 1; }
# shellcheck source=testdata/apt-lists.sh
. "$(dirname "${BASH_SOURCE[0]}")/apt-lists.sh"

if [ -f "$dir/.complete" ]; then
    echo "$dir/usr"
    exit 0
fi
mkdir -p "$cache/debs"
exec 8>"$cache/.lock-initramfs-tools"
flock -w 1800 8 || die "timed out waiting for another fetch"
if [ -f "$dir/.complete" ]; then
    echo "$dir/usr"
    exit 0
fi
cd "$cache/debs"
exec 9>"$cache/debs/.lock"
flock -w 1800 9 || die "timed out waiting for the apt lock of $cache/debs"
for pkg in $pkgs; do
    if ! ls "${pkg}_"*.deb >/dev/null 2>&1; then
        apt-get download "$pkg" >/dev/null 2>&1 \
            || { apt_lists_update "$(host_lists_lock)"; apt-get download "$pkg" >/dev/null 2>&1; } \
            || die "apt-get download $pkg failed"
    fi
done
flock -u 9
rm -rf "$dir.tmp"
mkdir -p "$dir.tmp/unpacked" "$dir.tmp/usr/bin" "$dir.tmp/usr/lib"
for pkg in $pkgs; do
    dpkg-deb -x "$(ls "${pkg}_"*.deb | head -1)" "$dir.tmp/unpacked"
done
u="$dir.tmp/unpacked"
cp -a "$u/usr/." "$dir.tmp/usr/"
# bookworm's packages still ship /bin and /lib: on a merged-/usr system they live in /usr
[ -d "$u/bin" ] && cp -a "$u/bin/." "$dir.tmp/usr/bin/"
[ -d "$u/lib" ] && cp -a "$u/lib/." "$dir.tmp/usr/lib/"
[ -x "$dir.tmp/usr/sbin/mkinitramfs" ] || die "no mkinitramfs in the unpacked packages"
cp -a "$u/etc/initramfs-tools" "$dir.tmp/etc-initramfs-tools"
touch "$dir.tmp/.complete"
rm -rf "$dir"
mv "$dir.tmp" "$dir"
echo "$dir/usr"
