#!/usr/bin/env bash
# Build the out-of-tree "vendor" modules of testdata/vendor/ against a real Debian kernel's
# headers, print the directory that holds them.
#
#   testdata/build-vendor.sh ABI [FLAVOUR]        e.g.  build-vendor.sh 57   (cloud-amd64)
#
# Output: $KABI_CACHE/vendor/6.1.0-ABI-FLAVOUR/ with kabi_vendor_a.ko and kabi_vendor_b.ko
# (debug info stripped, like an installed module; unsigned), plus the build's Module.symvers
# (the exported kabi_vendor_a_hello with its CRC, owner `kabi_vendor_a`) and build.log. kabi_vendor_b imports
# kabi_vendor_a_hello, so its .modinfo says `depends: kabi_vendor_a`.
#
# How: linux-headers-6.1.0-ABI-FLAVOUR, linux-headers-6.1.0-ABI-common and a linux-kbuild-6.1
# (the lowest version in the apt lists that satisfies the headers' dependency: the archive
# keeps only a few, and kbuild holds host tools only, so an exact match is not needed) are
# fetched with `apt-get download` into $KABI_CACHE/debs (shared with fetch-kernel.sh) and
# unpacked with dpkg-deb (nothing is installed) into one root,
# $KABI_CACHE/headers/6.1.0-ABI-FLAVOUR/, where the headers' relative `scripts` and `tools`
# links reach usr/lib/linux-kbuild-6.1. The flavour's Makefile includes the common one by
# the absolute path /usr/src/..., so the build names the common Makefile with -f; kbuild
# then derives srctree from it and no path in the headers needs fixing:
#
#   make -C ROOT/usr/src/linux-headers-KVER -f ROOT/usr/src/linux-headers-ABI-common/Makefile \
#        M=BUILD modules
#
# The build happens in a temporary directory renamed into place; it is redone when a file of
# testdata/vendor/ (or this script) is newer than the cached result. Concurrent callers are
# serialised with flock. Cache: $KABI_CACHE (default ~/.cache/kabi).
# ARCH=i386 (a Debian architecture other than the machine's) builds for a foreign flavour such
# as 686-pae: the flavour's headers package comes through the private apt list directory that
# fetch-kernel.sh keeps for that architecture ($KABI_CACHE/apt-ARCH), the common headers and
# linux-kbuild-6.1 (host tools) are the machine's; the headers' own Makefile sets the target
# architecture, and the machine's gcc-12 compiles for i386 (-m32).
# Needs: apt-get, dpkg-deb, make, gcc-12 (the compiler Debian's 6.1 kernels are built with),
# binutils, libelf1, flock (scripts/deps.sh installs them).
set -euo pipefail
abi=${1:?usage: build-vendor.sh ABI [FLAVOUR]}
flavour=${2:-cloud-amd64}
cache=${KABI_CACHE:-$HOME/.cache/kabi}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src="$here/vendor"
kver="6.1.0-$abi-$flavour"
hroot="$cache/headers/$kver"
out="$cache/vendor/$kver"

die() { echo "build-vendor.sh: $*" >&2; exit 1; }
# shellcheck source=testdata/apt-lists.sh
. "$here/apt-lists.sh"

[[ $abi =~ ^[0-9]+$ ]] || die "ABI must be a number like 57, not '$abi'"
for tool in apt-get apt-cache dpkg-deb make gcc-12 strip flock; do
    command -v "$tool" >/dev/null || die "$tool is missing (run scripts/deps.sh)"
done
mkdir -p "$cache/debs" "$cache/headers" "$cache/vendor"

exec 9>"$cache/vendor/.lock-$kver"
flock 9

# Up to date? (.complete is touched after the build; any newer source means rebuild)
if [ -f "$out/.complete" ] && [ -z "$(find "$src" "${BASH_SOURCE[0]}" -newer "$out/.complete" -print -quit)" ]; then
    echo "$out"
    exit 0
fi

# download the PKG[=VERSION]s not in $cache/debs yet, in one apt-get call (each costs seconds)
cached_deb() { # the cached .deb of PKG[=VERSION], if any
    local pkg=${1%%=*} ver=${1#*=} pattern
    if [ "$ver" = "$1" ]; then pattern="${pkg}_*.deb"; else pattern="${pkg}_${ver}_*.deb"; fi
    find . -maxdepth 1 -name "$pattern" -printf '%f\n' | sort -V | tail -n 1
}
download() { # [--foreign] PKG[=VERSION]...
    local p missing=() opts=() lock="$(host_lists_lock)"
    if [ "$1" = --foreign ]; then
        shift
        local apt_opts
        private_apt_lists "$ARCH"
        opts=("${apt_opts[@]}")
        lock="$cache/apt-$ARCH/.lock-update"
    fi
    for p in "$@"; do [ -n "$(cached_deb "$p")" ] || missing+=("$p"); done
    [ ${#missing[@]} -gt 0 ] || return 0
    # the debs directory is shared with fetch-kernel.sh: one apt-get at a time
    (
    flock -w 1800 7 || die "timed out waiting for the apt lock of $cache/debs"
    apt-get "${opts[@]}" download "${missing[@]}" >/dev/null 2>&1 \
        || { apt_lists_update "$lock" "${opts[@]}"; apt-get "${opts[@]}" download "${missing[@]}" >/dev/null 2>&1; } \
        || die "apt-get download ${missing[*]} failed (is ABI $abi still in the archive? apt-cache search --names-only '^linux-headers-6.1.0-[0-9]+-$flavour\$')"
    ) 7>"$cache/debs/.lock"
}

if [ ! -f "$hroot/.complete" ]; then
    cd "$cache/debs"
    if [ -n "${ARCH:-}" ] && [ "$ARCH" != "$(dpkg --print-architecture)" ]; then
        download --foreign "linux-headers-$kver"
        download "linux-headers-6.1.0-$abi-common"
    else
        download "linux-headers-$kver" "linux-headers-6.1.0-$abi-common"
    fi
    hdr=$(cached_deb "linux-headers-$kver")
    common=$(cached_deb "linux-headers-6.1.0-$abi-common")
    # linux-kbuild-6.1 (>= V) or (= V), from the headers package's Depends
    dep=$(dpkg-deb -f "$hdr" Depends | tr ',' '\n' | sed -n -E 's/^ *linux-kbuild-6\.1 \(([<>=]+) ([^)]+)\).*/\1 \2/p')
    [ -n "$dep" ] || die "$hdr: no linux-kbuild-6.1 dependency in $(dpkg-deb -f "$hdr" Depends)"
    op=${dep%% *} want=${dep#* }
    case $op in
        '=') rel=eq ;; '>=') rel=ge ;; *) die "$hdr: unexpected dependency linux-kbuild-6.1 ($dep)" ;;
    esac
    versions() { # every linux-kbuild-6.1 version known: cached .debs, then the apt lists
        { for f in linux-kbuild-6.1_*_*.deb; do [ -e "$f" ] && dpkg-deb -f "$f" Version; done
          apt-cache madison linux-kbuild-6.1 2>/dev/null \
              | awk -F' *[|] *' -v arch="$(dpkg --print-architecture)" '$1 ~ /linux-kbuild-6\.1$/ && $3 ~ (" " arch " Packages$") {print $2}'
        } | sort -u
    }
    pick() { # the lowest known version satisfying the dependency
        local best="" v
        while read -r v; do
            [ -n "$v" ] || continue
            dpkg --compare-versions "$v" "$rel" "$want" || continue
            if [ -z "$best" ] || dpkg --compare-versions "$v" lt "$best"; then best=$v; fi
        done < <(versions)
        echo "$best"
    }
    kb=$(pick)
    if [ -z "$kb" ]; then
        apt_lists_update "$(host_lists_lock)" || true
        kb=$(pick)
    fi
    [ -n "$kb" ] || die "no linux-kbuild-6.1 version satisfying ($op $want) in the apt lists (have: $(versions | tr '\n' ' '))"
    download "linux-kbuild-6.1=$kb"
    kbuild=$(cached_deb "linux-kbuild-6.1=$kb")

    rm -rf "$hroot.tmp"
    mkdir -p "$hroot.tmp"
    for deb in "$hdr" "$common" "$kbuild"; do
        dpkg-deb -x "$deb" "$hroot.tmp"
    done
    [ -f "$hroot.tmp/usr/src/linux-headers-$kver/Makefile" ] || die "$hdr: no usr/src/linux-headers-$kver/Makefile"
    [ -x "$hroot.tmp/usr/lib/linux-kbuild-6.1/scripts/mod/modpost" ] || die "$kbuild: no scripts/mod/modpost"
    printf '%s\n' "$hdr" "$common" "$kbuild" >"$hroot.tmp/.packages"
    touch "$hroot.tmp/.complete"
    rm -rf "$hroot"
    mv "$hroot.tmp" "$hroot"
fi

tmp=$(mktemp -d "$cache/vendor/.build-$kver.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/build" "$tmp/out"
cp "$src/Kbuild" "$src"/*.c "$tmp/build/"
if ! make -C "$hroot/usr/src/linux-headers-$kver" \
        -f "$hroot/usr/src/linux-headers-6.1.0-$abi-common/Makefile" \
        M="$tmp/build" modules >"$tmp/out/build.log" 2>&1; then
    tail -n 30 "$tmp/out/build.log" >&2
    die "building the vendor modules against $kver failed (log above)"
fi
for m in kabi_vendor_a kabi_vendor_b; do
    [ -f "$tmp/build/$m.ko" ] || die "the build made no $m.ko (see $tmp/out/build.log)"
    strip --strip-debug -o "$tmp/out/$m.ko" "$tmp/build/$m.ko"
done
# owners as module names (the temporary build directory is gone after this)
sed "s|\t$tmp/build/|\t|" "$tmp/build/Module.symvers" >"$tmp/out/Module.symvers"
touch "$tmp/out/.complete"
rm -rf "$out"
mv "$tmp/out" "$out"
echo "$out"
