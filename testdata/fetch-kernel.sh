#!/usr/bin/env bash
# Fetch and unpack a real Debian kernel (image + headers) into a cache, print its root.
#
#   testdata/fetch-kernel.sh FLAVOUR [ABI]     e.g.  amd64   cloud-amd64 57
#   (the tests choose ABIs by property: testdata/kernel-roles.sh)
#   testdata/fetch-kernel.sh --abis FLAVOUR    the ABIs that can be fetched, oldest first
#   testdata/fetch-kernel.sh --symvers FLAVOUR ABI   only that kernel's Module.symvers: prints
#                                              its path (the headers package alone, ~1.5 MB,
#                                              against ~27 MB for the image; for finding
#                                              kernels by property, tests/common/kernels.rs)
#
# FLAVOUR is a Debian kernel flavour (amd64, cloud-amd64, rt-amd64). Without ABI, the newest
# 6.1.0-NN ABI for which both linux-image-6.1.0-NN-FLAVOUR-unsigned and
# linux-headers-6.1.0-NN-FLAVOUR exist is chosen (the archive moves: choose by property).
# The unpacked root holds lib/modules/<kver>/ and usr/src/linux-headers-<kver>/Module.symvers.
# Cache: $KABI_CACHE (default ~/.cache/kabi). Needs apt-get and dpkg-deb; nothing is installed.
# ARCH=i386 (or another Debian architecture) fetches a foreign kernel through a private apt
# list directory in the cache, without adding the architecture to the machine's dpkg.
set -euo pipefail
list_only= symvers_only=
if [ "${1:-}" = --abis ]; then
    list_only=1
    shift
elif [ "${1:-}" = --symvers ]; then
    symvers_only=1
    shift
    [ -n "${2:-}" ] || { echo "usage: fetch-kernel.sh --symvers FLAVOUR ABI" >&2; exit 2; }
fi
flavour=${1:?usage: fetch-kernel.sh [--abis] FLAVOUR [ABI]}
abi=${2:-}
cache=${KABI_CACHE:-$HOME/.cache/kabi}
mkdir -p "$cache/debs" "$cache/trees"

die() { echo "fetch-kernel.sh: $*" >&2; exit 1; }
# shellcheck source=testdata/apt-lists.sh
. "$(dirname "${BASH_SOURCE[0]}")/apt-lists.sh"

apt_opts=()
update_lock="$(host_lists_lock)"
if [ -n "${ARCH:-}" ] && [ "$ARCH" != "$(dpkg --print-architecture)" ]; then
    private_apt_lists "$ARCH"
    update_lock="$cache/apt-$ARCH/.lock-update"
fi
apt-get() { command apt-get "${apt_opts[@]}" "$@"; }
apt-cache() { command apt-cache "${apt_opts[@]}" "$@"; }
lists_update() { apt_lists_update "$update_lock" "${apt_opts[@]}" || true; }

abis_of() { # list NN for which package pattern $1 (with NN placeholder) exists
    apt-cache search --names-only "^$1\$" | sed -E 's/^linux-[a-z]+-6\.1\.0-([0-9]+)-.*/\1/' | sort -n | uniq
}

if [ -z "$abi" ]; then
    img=$(abis_of "linux-image-6.1.0-[0-9]+-$flavour-unsigned")
    if [ -z "$img" ]; then
        lists_update
        img=$(abis_of "linux-image-6.1.0-[0-9]+-$flavour-unsigned")
    fi
    hdr=$(abis_of "linux-headers-6.1.0-[0-9]+-$flavour")
    both=$(comm -12 <(echo "$img") <(echo "$hdr") | sort -n)
    if [ -n "$list_only" ]; then
        echo "$both"
        exit 0
    fi
    abi=$(echo "$both" | tail -1)
    [ -n "$abi" ] || die "no 6.1.0-NN ABI has both linux-image-*-$flavour-unsigned and linux-headers-*-$flavour in the apt lists"
fi

[[ $abi =~ ^[0-9]+$ ]] || die "ABI must be a number like 57, not '$abi'"
kver="6.1.0-$abi-$flavour"
root="$cache/trees/$kver"
if [ -n "$symvers_only" ]; then
    # the unpacked tree's if there is one, else the headers package's, kept in $cache/symvers
    if [ -f "$root/.complete" ]; then
        echo "$root/usr/src/linux-headers-$kver/Module.symvers"
        exit 0
    fi
    mkdir -p "$cache/symvers"
    out="$cache/symvers/$kver.symvers"
    exec 8>"$cache/symvers/.lock-$kver"
    flock -w 1800 8 || die "timed out waiting for another fetch of $kver's symvers"
    if [ ! -f "$out" ]; then
        cd "$cache/debs"
        exec 9>"$cache/debs/.lock"
        flock -w 1800 9 || die "timed out waiting for the apt lock of $cache/debs"
        pkg="linux-headers-$kver"
        if ! ls "${pkg}_"*.deb >/dev/null 2>&1; then
            apt-get download "$pkg" >/dev/null 2>&1 \
                || { lists_update; apt-get download "$pkg" >/dev/null 2>&1; } \
                || die "apt-get download $pkg failed (is the ABI $abi still in the archive?)"
        fi
        flock -u 9
        deb=$(ls "${pkg}_"*.deb | sort -V | tail -n 1)
        dpkg-deb --fsys-tarfile "$deb" | tar -xO "./usr/src/linux-headers-$kver/Module.symvers" >"$out.tmp" \
            || die "$deb: no usr/src/linux-headers-$kver/Module.symvers"
        [ -s "$out.tmp" ] || die "$deb: an empty Module.symvers"
        mv "$out.tmp" "$out"
    fi
    echo "$out"
    exit 0
fi
if [ -f "$root/.complete" ]; then
    echo "$root"
    exit 0
fi

# One fetch per kernel at a time, and one apt-get at a time in the shared debs directory
# (two apt-get downloads of one package into one directory leave a .deb.FAILED).
exec 8>"$cache/trees/.lock-$kver"
flock -w 1800 8 || die "timed out waiting for another fetch of $kver"
if [ -f "$root/.complete" ]; then
    echo "$root"
    exit 0
fi
cd "$cache/debs"
exec 9>"$cache/debs/.lock"
flock -w 1800 9 || die "timed out waiting for the apt lock of $cache/debs"
for pkg in "linux-image-$kver-unsigned" "linux-headers-$kver"; do
    if ! ls "${pkg}_"*.deb >/dev/null 2>&1; then
        apt-get download "$pkg" >/dev/null 2>&1 \
            || { lists_update; apt-get download "$pkg" >/dev/null 2>&1; } \
            || die "apt-get download $pkg failed (is the ABI $abi still in the archive?)"
    fi
done
flock -u 9
rm -rf "$root.tmp"
mkdir -p "$root.tmp"
for deb in "linux-image-${kver}-unsigned_"*.deb "linux-headers-${kver}_"*.deb; do
    dpkg-deb -x "$deb" "$root.tmp"
done
[ -d "$root.tmp/lib/modules/$kver" ] || die "$kver: no lib/modules/$kver in the image package"
touch "$root.tmp/.complete"
rm -rf "$root"
mv "$root.tmp" "$root"
echo "$root"
