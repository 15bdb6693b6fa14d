#!/usr/bin/env bash
# Build a RHEL-shaped root with several real Debian cloud-amd64 kernels installed side by
# side, optionally with the vendor modules of testdata/vendor/ installed for some of them:
# the ground on which `weak-modules` (and `kabi weak-modules`) works.
#
#   testdata/make-weak-root.sh ROOT ABI... [--vendor ABI]...
#   e.g.  make-weak-root.sh /tmp/r 54 56 57 --vendor 56 --vendor 54
#   (the tests give the kernels of roles other, old and new of testdata/kernel-roles.sh)
#
# For each ABI (kver = 6.1.0-ABI-cloud-amd64, the kernel from fetch-kernel.sh):
#   ROOT/lib/modules/<kver>/kernel/          hard links to the cached tree's modules (cp -al)
#   ROOT/lib/modules/<kver>/modules.builtin, modules.builtin.modinfo, modules.order
#                                            private copies; `build`/`source` links as is
#   ROOT/lib/modules/<kver>/{extra,updates,weak-updates}/   empty, as RHEL's kernel-core has
#   ROOT/lib/modules/<kver>/modules.*        written by depmod (see below)
#   ROOT/boot/symvers-<kver>.gz              the headers' Module.symvers, gzipped
#   ROOT/boot/{vmlinuz,System.map,config}-<kver>   copies (System.map is Debian's stub)
# With --vendor ABI (repeatable; ABI must be one of the kernels), the modules that
# build-vendor.sh built for that ABI are installed as regular files, as an RPM KMP does:
#   ROOT/lib/modules/<kver>/extra/kabi-vendor/kabi_vendor_{a,b}.ko
# ROOT/etc/depmod.d/dist.conf is RHEL's (`search updates extra built-in weak-updates`), and
# kmod's `depmod -b ROOT -C ROOT/etc/depmod.d KVER` is run for each kernel, so the indexes
# exist as after a package install.
#
# Nothing in the cache is ever written: only files under kernel/ are hard links, and the
# files depmod writes are new files. A test must not modify a file under kernel/ in place
# (replacing or deleting it is fine). Without hard links (ROOT on another filesystem than
# the cache) the modules are copied instead (about 90 MB per kernel).
#
# ROOT must be absent or empty: the script refuses a non-empty one. It prints the kvers, one
# per line, in the order of the ABIs given.
# Needs: fetch-kernel.sh's and build-vendor.sh's tools (only with --vendor), kmod's depmod,
# gzip. Cache: $KABI_CACHE (default ~/.cache/kabi).
set -euo pipefail
usage="usage: make-weak-root.sh ROOT ABI... [--vendor ABI]..."
die() { echo "make-weak-root.sh: $*" >&2; exit 1; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
flavour=cloud-amd64

root=${1:?$usage}
shift
abis=() vendor=()
while [ $# -gt 0 ]; do
    case $1 in
        --vendor) [ $# -ge 2 ] || die "$usage"; vendor+=("$2"); shift 2 ;;
        --vendor=*) vendor+=("${1#--vendor=}"); shift ;;
        -*) die "unknown option $1; $usage" ;;
        *) abis+=("$1"); shift ;;
    esac
done
[ ${#abis[@]} -gt 0 ] || die "$usage"
for a in "${abis[@]}" "${vendor[@]}"; do
    [[ $a =~ ^[0-9]+$ ]] || die "ABI must be a number like 57, not '$a'"
done
for v in "${vendor[@]}"; do
    [[ " ${abis[*]} " == *" $v "* ]] || die "--vendor $v: ABI $v is not among the kernels (${abis[*]})"
done
depmod=$(command -v depmod || true)
[ -n "$depmod" ] || [ ! -x /sbin/depmod ] || depmod=/sbin/depmod
[ -n "$depmod" ] || die "kmod's depmod is missing (run scripts/deps.sh)"

if [ -e "$root" ]; then
    [ -d "$root" ] || die "$root exists and is not a directory"
    [ -z "$(ls -A "$root")" ] || die "$root is not empty: give an absent or empty directory"
fi
mkdir -p "$root/boot" "$root/etc/depmod.d"
root=$(cd "$root" && pwd)
cat >"$root/etc/depmod.d/dist.conf" <<'EOF'
#
# depmod.conf
#

# override default search ordering for kmod packaging
search updates extra built-in weak-updates
EOF

for abi in "${abis[@]}"; do
    kver="6.1.0-$abi-$flavour"
    tree=$("$here/fetch-kernel.sh" "$flavour" "$abi") || die "fetch-kernel.sh $flavour $abi failed"
    from="$tree/lib/modules/$kver"
    to="$root/lib/modules/$kver"
    [ ! -e "$to" ] || die "ABI $abi given twice"
    mkdir -p "$to"
    if ! cp -al "$from/kernel" "$to/kernel" 2>/dev/null; then
        rm -rf "$to/kernel"
        echo "make-weak-root.sh: cannot hard-link from $tree (another filesystem?): copying" >&2
        cp -a --reflink=auto "$from/kernel" "$to/kernel"
    fi
    for f in "$from"/*; do
        case $(basename "$f") in
            kernel) ;;
            *) cp -P --preserve=mode,timestamps "$f" "$to/" ;;
        esac
    done
    mkdir -p "$to/extra" "$to/updates" "$to/weak-updates"
    symvers="$tree/usr/src/linux-headers-$kver/Module.symvers"
    [ -f "$symvers" ] || die "$tree: no Module.symvers for $kver"
    gzip -9n <"$symvers" >"$root/boot/symvers-$kver.gz"
    for f in vmlinuz System.map config; do
        [ -f "$tree/boot/$f-$kver" ] || die "$tree: no boot/$f-$kver"
        cp --preserve=mode,timestamps "$tree/boot/$f-$kver" "$root/boot/"
    done
done

for abi in "${vendor[@]}"; do
    kver="6.1.0-$abi-$flavour"
    built=$("$here/build-vendor.sh" "$abi" "$flavour") || die "build-vendor.sh $abi failed"
    dest="$root/lib/modules/$kver/extra/kabi-vendor"
    mkdir -p "$dest"
    install -m 0644 "$built/kabi_vendor_a.ko" "$built/kabi_vendor_b.ko" "$dest/"
done

for abi in "${abis[@]}"; do
    kver="6.1.0-$abi-$flavour"
    "$depmod" -b "$root" -C "$root/etc/depmod.d" "$kver" || die "depmod -b $root $kver failed"
    echo "$kver"
done
