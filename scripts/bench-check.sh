#!/usr/bin/env bash
# kabi check vs kmod's depmod -e -E on the same tree, in one run, as ratios.
# Every cloud-amd64 module of ABI X (about 1,120) checked against ABI Y's Module.symvers; medians
# of N runs (default 7). Usage: scripts/bench-check.sh [X Y [N]]; without X Y, the kernels of
# roles other and new (testdata/kernel-roles.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 2 ]; then # by role (testdata/kernel-roles.sh): other's modules on new (another module_layout)
    eval "$(testdata/kernel-roles.sh cloud-amd64)"
    set -- "$other" "$new" "$@"
fi
x=$1; y=$2; n=${3:-7}
command -v depmod >/dev/null || { echo "bench-check.sh: kmod's depmod is missing (apt-get install kmod)" >&2; exit 1; }
# the binary the packages install (static)
kabi=$(bash scripts/build-shipped.sh)
rx=$(testdata/fetch-kernel.sh cloud-amd64 "$x"); ry=$(testdata/fetch-kernel.sh cloud-amd64 "$y")
kx=$(ls "$rx/lib/modules"); ky=$(ls "$ry/lib/modules")
symvers="$ry/usr/src/linux-headers-$ky/Module.symvers"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/lib/modules"; ln -s "$rx/lib/modules/$kx" "$tmp/lib/modules/$kx"
count=$(find "$rx/lib/modules/$kx/kernel" -name '*.ko*' | wc -l)

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
timeit() { # command... -> seconds (median of n)
    for _ in $(seq "$n"); do
        local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1 || true; e=$(date +%s.%N)
        echo "$e - $s" | bc -l
    done | median
}
rss() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1; }

# warm the page cache once
cat $(find "$rx/lib/modules/$kx/kernel" -name '*.ko*') > /dev/null
t_dep=$(timeit depmod -n -b "$tmp" -e -E "$symvers" "$kx")
t_kabi=$(timeit "$kabi" check --symvers "$symvers" "$rx/lib/modules/$kx/kernel")
t_kabi1=$(timeit taskset -c 0 "$kabi" check --symvers "$symvers" "$rx/lib/modules/$kx/kernel")
m_dep=$(rss depmod -n -b "$tmp" -e -E "$symvers" "$kx" || true)
m_kabi=$(rss "$kabi" check --symvers "$symvers" "$rx/lib/modules/$kx/kernel" || true)
printf '%s modules of %s checked against %s (median of %s runs, %s cores)\n' "$count" "$kx" "$ky" "$n" "$(nproc)"
printf '%-34s %9s %12s\n' tool seconds "peak RSS KiB"
printf '%-34s %9.3f %12s\n' "depmod -n -e -E" "$t_dep" "$m_dep"
printf '%-34s %9.3f %12s\n' "kabi check --symvers" "$t_kabi" "$m_kabi"
printf '%-34s %9.3f\n' "kabi check --symvers (1 core)" "$t_kabi1"
printf 'ratio depmod/kabi: %.2fx (1 core: %.2fx)\n' "$(echo "$t_dep / $t_kabi" | bc -l)" "$(echo "$t_dep / $t_kabi1" | bc -l)"
