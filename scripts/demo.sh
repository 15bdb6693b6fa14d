#!/usr/bin/env bash
# Build kabi and run its main job on real Debian modules: read a module of two kernel ABIs
# completely (as kmod's modinfo / modprobe --dump-modversions would) and show why the old
# one cannot load in the new kernel.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo build --release --quiet
kabi=./target/release/kabi
old=testdata/lib/modules/6.1.0-47-cloud-amd64/kernel/drivers/net/dummy.ko
new=testdata/lib/modules/6.1.0-56-amd64/kernel/drivers/net/dummy.ko

echo "== kabi info (byte-identical to kmod's modinfo) =="
$kabi info "$new"
echo
echo "== the same module built for two ABIs: imported symbol versions that differ =="
join -t $'\t' -1 2 -2 2 -o 0,1.1,2.1 \
    <($kabi modversions "$old" | sort -t $'\t' -k2) \
    <($kabi modversions "$new" | sort -t $'\t' -k2) \
    | awk -F'\t' '$2 != $3 { printf "  %-28s 6.1.0-47: %s  6.1.0-56: %s\n", $1, $2, $3 }'
echo
echo "== exports of a module, in Module.symvers format =="
$kabi modversions --exports testdata/lib/modules/6.1.0-56-amd64/kernel/drivers/dma/idxd/idxd_bus.ko
if command -v modinfo >/dev/null; then
    cmp <($kabi info "$new") <(modinfo "$new") && echo && echo "kabi info and kmod's modinfo agree byte for byte."
fi
