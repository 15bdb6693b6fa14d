#!/usr/bin/env bash
# Re-create testdata/modules/: a handful of small, real Debian kernel modules.
# (Run once by a developer; the result is committed. The tests use the committed files.)
# The ABIs stay pinned here on purpose: the committed directories are named for them (and
# checksummed in SHA256SUMS), and no test needs the archive to still hold them. Once they
# leave it, this script can no longer re-create the same files; re-creating the fixtures
# from other ABIs means renaming the directories in the tests that name them too.
#
# Two amd64 ABIs (6.1.0-47 cloud, 6.1.0-56 generic: different CRCs, same module names) and
# one small module of each other Debian architecture, for ELF32/64 and big-endian coverage.
# Packages come from Debian's archive with `apt-get download` and are unpacked with
# `dpkg-deb -x`; foreign architectures need `dpkg --add-architecture ARCH && apt-get update`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${KABI_CACHE:-$HOME/.cache/kabi}
out="$here/lib/modules"
mkdir -p "$cache/arch" "$out" "$here/symvers"

amd64_mods="lib/crc-itu-t.ko drivers/net/dummy.ko net/netfilter/nf_conntrack_ftp.ko net/netfilter/xt_nat.ko"

copy() { # root kver relpath...
    local root=$1 kver=$2; shift 2
    for rel in "$@"; do
        mkdir -p "$out/$kver/kernel/$(dirname "$rel")"
        cp "$root/lib/modules/$kver/kernel/$rel" "$out/$kver/kernel/$rel"
    done
}

r47=$("$here/fetch-kernel.sh" cloud-amd64 47)
copy "$r47" 6.1.0-47-cloud-amd64 $amd64_mods
r56=$("$here/fetch-kernel.sh" amd64 56)
copy "$r56" 6.1.0-56-amd64 $amd64_mods drivers/dma/idxd/idxd_bus.ko

# Foreign architectures (ABI 47): package:arch flavour
for spec in linux-image-6.1.0-47-686-unsigned:i386:686 \
            linux-image-6.1.0-47-armmp:armhf:armmp \
            linux-image-6.1.0-47-arm64-unsigned:arm64:arm64 \
            linux-image-6.1.0-47-powerpc64le:ppc64el:powerpc64le \
            linux-image-6.1.0-47-s390x:s390x:s390x; do
    IFS=: read -r pkg arch flavour <<<"$spec"
    (cd "$cache/arch" && { ls "${pkg}_"*"_$arch.deb" >/dev/null 2>&1 || apt-get download "$pkg:$arch"; })
    dir="$cache/arch/unpacked-$arch"
    [ -d "$dir" ] || dpkg-deb -x "$cache/arch/${pkg}_"*"_$arch.deb" "$dir"
    copy "$dir" "6.1.0-47-$flavour" lib/crc-itu-t.ko drivers/net/dummy.ko
done
# a weak undefined symbol (mach_cell), only seen on ppc64el
copy "$cache/arch/unpacked-ppc64el" 6.1.0-47-powerpc64le drivers/ata/pata_sil680.ko

(cd "$out" && find . -name '*.ko' | sort | xargs sha256sum) > "$here/SHA256SUMS"
echo "wrote $out ($(du -sh "$out" | cut -f1))"

# Module.symvers lines of the two amd64 ABIs for the modules above (the exports' truth).
for kver in 6.1.0-47-cloud-amd64 6.1.0-56-amd64; do
    root=$("$here/fetch-kernel.sh" "${kver#6.1.0-*-}" "$(echo "$kver" | cut -d- -f2)")
    (cd "$out/$kver/kernel" && find . -name '*.ko' | sed 's|^\./||; s|\.ko$||') > /tmp/kabi-owners.$$
    awk -F'\t' 'NR==FNR {want[$1]=1; next} ($3 in want)' /tmp/kabi-owners.$$ \
        "$root/usr/src/linux-headers-$kver/Module.symvers" > "$here/symvers/$kver.symvers"
    rm -f /tmp/kabi-owners.$$
done
