#!/usr/bin/env bash
# The Debian kernels the tests and scripts use, found by property among the ABIs the apt lists
# offer, never by number (the archive moves: ABIs leave it, a machine's lists may be stale).
#
#   testdata/kernel-roles.sh [FLAVOUR]      (default cloud-amd64)
#
# prints one line of ROLE=ABI words, e.g.
#   newest=57 old=56 new=57 other=54 spare=55 partial=53,54 abis=47,50,53,54,55,56,57
# * newest   the newest ABI with image and headers: for "any real kernel"
# * old new  the newest two neighbouring ABIs whose Module.symvers are identical (Debian's
#            ABI-compatible rebuilds): a module built for old loads on new
# * other    the newest ABI older than new whose module_layout CRC differs from new's: it and
#            new refuse each other's modules
# * spare    a third ABI (the neighbour below old) with the same symvers: empty when none
# * abis     every ABI the apt lists offer with image and headers, oldest first
# * partial  two neighbouring ABIs (older,newer) with one module_layout and some CRCs of the
#            symbols both export changed: some modules of the older load on the newer, some
#            do not; empty when none
# Only the headers package of each candidate is fetched (fetch-kernel.sh --symvers, ~1.5 MB),
# at most 10 candidates, newest first; an ABI whose headers cannot be fetched is passed over.
# Exits 1 (with a message naming the ABIs seen) when old, new or other cannot be found.
# ARCH as for fetch-kernel.sh. tests/common/kernels.rs reads this line.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
flavour=${1:-cloud-amd64}
die() { echo "kernel-roles.sh: $*" >&2; exit 1; }

mapfile -t listed < <("$here/fetch-kernel.sh" --abis "$flavour" | sort -n)
mapfile -t abis < <(printf '%s\n' "${listed[@]}" | sort -rn | head -n 10)
[ ${#abis[@]} -gt 0 ] || die "no $flavour ABI with image and headers in the apt lists"
# the candidates whose symvers could be read, newest first
seen=() files=()
for a in "${abis[@]}"; do
    if f=$("$here/fetch-kernel.sh" --symvers "$flavour" "$a" 2>/dev/null); then
        seen+=("$a")
        files+=("$f")
    fi
done
n=${#seen[@]}
[ "$n" -gt 0 ] || die "no $flavour ABI's headers could be fetched (of ${abis[*]})"
layout() { awk -F'\t' '$2 == "module_layout" { print $1; exit }' "$1"; }
same() { cmp -s <(sort "$1") <(sort "$2"); }
crc_changed() { # OLDER NEWER: a symbol both export with another CRC
    awk -F'\t' 'NR == FNR { crc[$2] = $1; next } ($2 in crc) && crc[$2] != $1 { found = 1; exit } END { exit !found }' "$1" "$2"
}

pair=
for ((i = 0; i + 1 < n; i++)); do
    if same "${files[i]}" "${files[i + 1]}"; then pair=$i; break; fi
done
[ -n "$pair" ] || die "no two neighbouring $flavour ABIs with identical symvers among ${seen[*]}"
new_layout=$(layout "${files[pair]}")
other=
for ((k = pair + 2; k < n; k++)); do
    l=$(layout "${files[k]}")
    if [ -n "$l" ] && [ "$l" != "$new_layout" ]; then other=${seen[k]}; break; fi
done
[ -n "$other" ] || die "no $flavour ABI older than ${seen[pair]} with another module_layout among ${seen[*]}"
spare=
if ((pair + 2 < n)) && same "${files[pair + 2]}" "${files[pair]}"; then spare=${seen[pair + 2]}; fi
partial=
for ((j = 0; j + 1 < n; j++)); do
    l=$(layout "${files[j]}")
    if [ -n "$l" ] && [ "$l" = "$(layout "${files[j + 1]}")" ] && crc_changed "${files[j + 1]}" "${files[j]}"; then
        partial=${seen[j + 1]},${seen[j]}
        break
    fi
done
all=$(IFS=,; echo "${listed[*]}")
echo "newest=${seen[0]} old=${seen[pair + 1]} new=${seen[pair]} other=$other spare=$spare partial=$partial abis=$all"
