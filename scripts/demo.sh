#!/usr/bin/env bash
# Build kabi and run its main job on real Debian kernels: an errata kernel arrives; which
# modules built for the older kernels will still load on it, and why the others will not.
# Fetches four Debian cloud kernels (about 30 MB each, cached in ~/.cache/kabi), found by role
# (testdata/kernel-roles.sh): a pair with one module_layout and other CRCs (partial), and a
# pair with identical symvers (old, new).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo build --release --quiet
kabi=./target/release/kabi
# (not $old/$new: kernel-roles.sh below sets those to ABI numbers)
old_ko=testdata/lib/modules/6.1.0-47-cloud-amd64/kernel/drivers/net/dummy.ko
new_ko=testdata/lib/modules/6.1.0-56-amd64/kernel/drivers/net/dummy.ko

echo "== kabi info (byte-identical to kmod's modinfo) =="
$kabi info "$new_ko"
echo
echo "== the same module built for two ABIs: imported symbol versions that differ =="
join -t $'\t' -1 2 -2 2 -o 0,1.1,2.1 \
    <($kabi modversions "$old_ko" | sort -t $'\t' -k2) \
    <($kabi modversions "$new_ko" | sort -t $'\t' -k2) \
    | awk -F'\t' '$2 != $3 { printf "  %-28s 6.1.0-47: %s  6.1.0-56: %s\n", $1, $2, $3 }'
echo
echo "== exports of a module, in Module.symvers format =="
$kabi modversions --exports testdata/lib/modules/6.1.0-56-amd64/kernel/drivers/dma/idxd/idxd_bus.ko
echo
eval "$(testdata/kernel-roles.sh cloud-amd64)"
[ -n "$partial" ] || { echo "demo.sh: no partial pair in the apt lists" >&2; exit 1; }
echo "== an errata kernel arrives: what changed between 6.1.0-${partial%,*} and 6.1.0-${partial#*,}? =="
r53=$(testdata/fetch-kernel.sh cloud-amd64 "${partial%,*}"); r54=$(testdata/fetch-kernel.sh cloud-amd64 "${partial#*,}")
r55=$(testdata/fetch-kernel.sh cloud-amd64 "$old"); r56=$(testdata/fetch-kernel.sh cloud-amd64 "$new")
k53=$(ls "$r53/lib/modules"); k54=$(ls "$r54/lib/modules"); k55=$(ls "$r55/lib/modules"); k56=$(ls "$r56/lib/modules")
$kabi diff-abi "$r53/usr/src/linux-headers-$k53/Module.symvers" "$r54/usr/src/linux-headers-$k54/Module.symvers" \
    -m "$r53/lib/modules/$k53/kernel/drivers/net/ethernet/intel" | head -8 || true
echo
echo "== will 6.1.0-$old's filesystem modules load on 6.1.0-$new? (against its symvers, own modules and config) =="
$kabi check --root "$r56" -k "$k56" "$r55/lib/modules/$k55/kernel/fs/udf" "$r55/lib/modules/$k55/kernel/fs/xfs" "$r55/lib/modules/$k55/kernel/lib/crc-itu-t.ko" \
    && echo "exit 0: all compatible"
echo
echo "== and the 6.1.0-47 build of dummy.ko? every reason, in the kernel's words =="
$kabi check -v --root "$r56" -k "$k56" "$old_ko" | head -12 || true
echo
echo "== kabi depmod on a copy of the 6.1.0-$new cloud tree: cold, then warm; compared with kmod's depmod =="
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for side in kabi kmod; do
    mkdir -p "$work/$side/lib/modules" "$work/empty"
    cp -al "$r56/lib/modules/$k56" "$work/$side/lib/modules/"
done
$kabi depmod -v --root "$work/kabi" -C "$work/empty" "$k56"
$kabi depmod -v --root "$work/kabi" -C "$work/empty" "$k56"
if command -v depmod >/dev/null || [ -x /usr/sbin/depmod ]; then
    PATH=$PATH:/usr/sbin depmod -b "$work/kmod" -C "$work/empty" "$k56"
    for f in modules.dep modules.dep.bin modules.alias modules.alias.bin modules.softdep \
        modules.symbols modules.symbols.bin modules.builtin.bin modules.builtin.alias.bin modules.devname; do
        cmp "$work/kabi/lib/modules/$k56/$f" "$work/kmod/lib/modules/$k56/$f"
    done && echo "all 10 files kmod's depmod writes are byte-identical."
fi
echo
if command -v modinfo >/dev/null; then
    cmp <($kabi info "$new_ko") <(modinfo "$new_ko") && echo && echo "kabi info and kmod's modinfo agree byte for byte."
fi
