#!/usr/bin/env bash
# kabi against kmod on one real module tree: wall time (median of N runs) and peak RSS.
#
#   scripts/bench-vs-kmod.sh [ROOT]
#
# ROOT holds lib/modules/<kver>/ (or is the <kver> directory itself); default: the Debian
# amd64 tree printed by testdata/fetch-kernel.sh amd64.
#
#   info        modinfo FILE...  vs  kabi info FILE...        all modules, one call each
#                (xargs -0 with a huge -n and the largest -s, so one call if the list fits)
#   modversions modprobe --dump-modversions FILE  vs  kabi modversions FILE
#                one module per call (modprobe takes one), a loop over LOOP modules
#
# Before timing, each workload runs once under GNU time (peak RSS, max over calls) and the
# two outputs and exit codes must be identical (cmp), so both did the same work; that run
# also warms the page cache. Then N rounds, kmod and kabi alternating. Environment:
# N (default 5), LOOP (default 200). Parse-only numbers come from `cargo bench --bench parse`
# and are shown here when its results exist under the target directory.
set -euo pipefail
export LC_ALL=C
export PATH="$PATH:/usr/sbin:/sbin"

N=${N:-5}
LOOP=${LOOP:-200}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

die() { echo "bench-vs-kmod.sh: $*" >&2; exit 1; }

# --- prerequisites -------------------------------------------------------------------------
for t in modinfo modprobe; do
    command -v "$t" >/dev/null || die "kmod's $t is not installed (Debian: apt-get install kmod)"
done
kmod_version=$(modinfo --version 2>/dev/null | head -1)
case $kmod_version in
    kmod*) ;;
    *) die "modinfo is not kmod's (modinfo --version: '$kmod_version')" ;;
esac
if ! /usr/bin/time -f %M true >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing GNU time (apt-get install time)" >&2
        apt-get install -y -qq time >/dev/null 2>&1 \
            || { apt-get update -qq >/dev/null 2>&1; apt-get install -y -qq time >/dev/null 2>&1; } \
            || die "apt-get install time failed"
    fi
    /usr/bin/time -f %M true >/dev/null 2>&1 || die "GNU time (/usr/bin/time) is missing: apt-get install time"
fi
[[ $N =~ ^[1-9][0-9]*$ ]] || die "N must be a positive integer"
[[ $LOOP =~ ^[1-9][0-9]*$ ]] || die "LOOP must be a positive integer"

# --- the tree ------------------------------------------------------------------------------
root=${1:-}
if [ -z "$root" ]; then
    root=$("$repo/testdata/fetch-kernel.sh" amd64) || die "testdata/fetch-kernel.sh amd64 failed"
fi
[ -d "$root" ] || die "$root: not a directory"
if [ -d "$root/kernel" ]; then
    kdir=$root
else
    shopt -s nullglob
    kdirs=("$root"/lib/modules/*/kernel)
    shopt -u nullglob
    [ ${#kdirs[@]} -ge 1 ] || die "$root: no lib/modules/<kver>/kernel"
    [ ${#kdirs[@]} -eq 1 ] || die "$root: several kernels under lib/modules; pass lib/modules/<kver>"
    kdir=$(dirname "${kdirs[0]}")
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench-vs-kmod.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

find "$kdir/kernel" -type f \( -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst' -o -name '*.ko.gz' \) \
    -print0 | sort -z >"$tmp/all"
mapfile -d '' all <"$tmp/all"
n=${#all[@]}
[ "$n" -gt 0 ] || die "$kdir/kernel: no modules"
mb=$(du -scb "${all[@]}" | tail -1 | awk '{ printf "%.1f", $1 / 1e6 }')

# LOOP modules spread evenly over the sorted list.
[ "$LOOP" -le "$n" ] || LOOP=$n
sel=()
for ((i = 0; i < LOOP; i++)); do sel+=("${all[i * n / LOOP]}"); done

# --- kabi ----------------------------------------------------------------------------------
# the binary the packages install (static: its start costs less than a dynamic one's)
echo "building kabi as shipped (scripts/build-shipped.sh) ..." >&2
kabi=$(bash "$repo/scripts/build-shipped.sh") || die "scripts/build-shipped.sh failed"
# where `cargo bench` leaves criterion's estimates
target_dir=${CARGO_TARGET_DIR:-$repo/target}

# --- one call for the whole list -----------------------------------------------------------
smax=$(xargs --show-limits </dev/null 2>&1 | sed -n 's/^Maximum length of command we could actually use: //p')
[ -n "$smax" ] || die "cannot read xargs --show-limits"
XARGS=(xargs -0 -n 1000000 -s "$smax")
calls=$("${XARGS[@]}" sh -c 'echo x' sh <"$tmp/all" | wc -l)

# --- workloads: $1 = output file, $2 = file for GNU time's peak RSS, or empty --------------
timed() { # [RSSFILE] CMD...: run CMD, under GNU time appending peak RSS to RSSFILE if given
    local rss=$1; shift
    if [ -n "$rss" ]; then /usr/bin/time -a -o "$rss" -f %M "$@"; else "$@"; fi
}
xargs_all() { # RSSFILE CMD...: CMD with all modules appended, as few calls as xargs can
    local rss=$1 pre=(); shift
    if [ -n "$rss" ]; then pre=(/usr/bin/time -a -o "$rss" -f %M); fi
    "${XARGS[@]}" "${pre[@]}" "$@" <"$tmp/all"
}
kmod_info() { xargs_all "$2" modinfo >"$1" 2>"$1.err"; }
kabi_info() { xargs_all "$2" "$kabi" info >"$1" 2>"$1.err"; }
kmod_mv() {
    local m
    for m in "${sel[@]}"; do timed "$2" modprobe --dump-modversions "$m" || return; done >"$1" 2>"$1.err"
}
kabi_mv() {
    local m
    for m in "${sel[@]}"; do timed "$2" "$kabi" modversions "$m" || return; done >"$1" 2>"$1.err"
}

run() { # NAME OUT [RSSFILE]: run workload NAME, print its exit code
    local rc=0
    "$1" "$2" "${3:-}" || rc=$?
    echo "$rc"
}

# --- sanity + peak RSS pass (also warms the page cache) ------------------------------------
declare -A rss rc
for w in kmod_info kabi_info kmod_mv kabi_mv; do
    : >"$tmp/$w.rss"
    rc[$w]=$(run "$w" "$tmp/$w.out" "$tmp/$w.rss")
    rss[$w]=$(sort -n "$tmp/$w.rss" | tail -1)
done
for pair in info mv; do
    a=kmod_$pair b=kabi_$pair
    [ "${rc[$a]}" = "${rc[$b]}" ] || die "$pair: exit codes differ: kmod ${rc[$a]}, kabi ${rc[$b]} (stderr: $tmp/$a.out.err $tmp/$b.out.err)"
    if ! cmp -s "$tmp/$a.out" "$tmp/$b.out"; then
        diff "$tmp/$a.out" "$tmp/$b.out" | head -20 >&2 || true
        trap - EXIT
        die "$pair: outputs differ (kept in $tmp)"
    fi
    [ "${rc[$a]}" = 0 ] || echo "note: $pair: both exit ${rc[$a]} (same output)" >&2
    [ -s "$tmp/$a.out" ] || die "$pair: empty output"
done
bytes_info=$(wc -c <"$tmp/kmod_info.out")
bytes_mv=$(wc -c <"$tmp/kmod_mv.out")

# --- timed rounds --------------------------------------------------------------------------
declare -A times
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for ((r = 1; r <= N; r++)); do
    for w in kmod_info kabi_info kmod_mv kabi_mv; do
        t0=$EPOCHREALTIME
        "$w" "$tmp/run.out" "" || true
        t1=$EPOCHREALTIME
        times[$w]+="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }') "
    done
    echo "round $r/$N done" >&2
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.4f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
declare -A med
for w in "${!times[@]}"; do med[$w]=$(echo "${times[$w]}" | median); done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# --- report --------------------------------------------------------------------------------
echo
echo "tree:    $kdir ($n modules, $mb MB)"
echo "kmod:    $kmod_version ($(command -v modinfo), $(command -v modprobe))"
echo "kabi:    $kabi ($(cd "$repo" && git describe --always --dirty 2>/dev/null || echo '?'))"
echo "machine: $(nproc) CPUs; load average $load_before before timing, $load_after after"
echo "runs:    N=$N per tool, kmod and kabi alternating; wall time median (all runs, seconds)"
echo "info:    all $n modules, $calls call(s) each (xargs -s $smax); outputs identical ($bytes_info bytes)"
echo "modver:  $LOOP modules, one call per module; outputs identical ($bytes_mv bytes)"
echo
printf '%-44s %10s %13s %10s\n' "tool" "median_s" "peak_RSS_KiB" "kmod/kabi"
printf '%-44s %10s %13s %10s\n' "modinfo FILE... ($n)" "${med[kmod_info]}" "${rss[kmod_info]}" ""
printf '%-44s %10s %13s %10s\n' "kabi info FILE... ($n)" "${med[kabi_info]}" "${rss[kabi_info]}" \
    "$(ratio "${med[kmod_info]}" "${med[kabi_info]}")"
printf '%-44s %10s %13s %10s\n' "modprobe --dump-modversions FILE (x$LOOP)" "${med[kmod_mv]}" "${rss[kmod_mv]}" ""
printf '%-44s %10s %13s %10s\n' "kabi modversions FILE (x$LOOP)" "${med[kabi_mv]}" "${rss[kabi_mv]}" \
    "$(ratio "${med[kmod_mv]}" "${med[kabi_mv]}")"
echo
echo "all times (s):"
for w in kmod_info kabi_info kmod_mv kabi_mv; do printf '  %-10s %s\n' "$w" "${times[$w]}"; done

# Parse-only throughput: the library without process start-up or output, from criterion.
crit="$target_dir/criterion"
if command -v jq >/dev/null && [ -f "$crit/tree/open_sequential/new/estimates.json" ]; then
    echo
    echo "parse only (last 'cargo bench --bench parse', $crit; median per iteration):"
    for b in tree/open_sequential tree/open_par_iter_2_threads tree/parse_file_sequential_preloaded \
        module/udf/plain module/udf/xz module/udf/zst module/udf/gz; do
        f="$crit/$b/new/estimates.json"
        [ -f "$f" ] || continue
        ns=$(jq -r .median.point_estimate "$f")
        el=$(jq -r '.throughput.Elements // empty' "$crit/$b/new/benchmark.json")
        if [ -n "$el" ]; then
            awk -v b="$b" -v ns="$ns" -v el="$el" \
                'BEGIN { printf "  %-40s %10.1f ms  %8.0f modules/s\n", b, ns / 1e6, el / (ns / 1e9) }'
        else
            awk -v b="$b" -v ns="$ns" 'BEGIN { printf "  %-40s %10.1f us\n", b, ns / 1e3 }'
        fi
    done
else
    echo
    echo "parse only: run 'cargo bench --bench parse' (results not found under $crit)"
fi
