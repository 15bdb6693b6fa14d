#!/usr/bin/env bash
# kabi weak-modules --add-kernel on a realistic root (3 kernels, 20 vendor modules) against
# the depmod work RHEL's weak-modules script does for the same job: wall time, peak RSS.
#
#   scripts/bench-weak.sh [N]          N rounds (default 5, or $N)
#
# Setup (cached parts are reused):
#   1. testdata/build-vendor.sh 55 (unpacks the cloud-amd64 ABI 55 headers into
#      $KABI_CACHE/headers/, default ~/.cache/kabi), then testdata/vendor-many/build.sh 55:
#      20 generated modules, kabi_bench_a01..a10 and b01..b10 (bNN uses aNN's export; the a's
#      use exports of the kernel's own crc7, libcrc32c and crc-itu-t modules), built with
#      gcc-12, cached in $KABI_CACHE/vendor-many/6.1.0-55-cloud-amd64/.
#   2. cargo build --release (target/release/kabi, or $CARGO_TARGET_DIR).
#   3. testdata/make-weak-root.sh ROOT 47 55 56 (ROOT in a temporary directory, removed at
#      the end; KEEP=1 keeps it), the 20 modules installed as regular files into
#      ROOT/lib/modules/6.1.0-55-cloud-amd64/extra/bench/ and kmod's
#      `depmod -b ROOT -C ROOT/etc/depmod.d 6.1.0-55-cloud-amd64`, as a KMP's %post would.
#      55 and 56 have identical symvers, so all 20 are compatible with 56; 47's module_layout
#      differs, so none is compatible with 47.
#
# Workloads (K = 6.1.0-56-cloud-amd64; -b ROOT -C ROOT/etc/depmod.d on every depmod):
#   kabi cold          kabi weak-modules --basedir ROOT --add-kernel K --no-initramfs, after
#                      an untimed --remove-kernel K; 56's depmod scan cache
#                      (modules.kabi-cache) present, as after any earlier kabi run
#   kabi cold, no cache   the same with K/modules.kabi-cache deleted before the run
#   kabi no-op         the same again right after `kabi cold`: everything already linked
#   kmod depmod -aeE   depmod -aeE SYMVERS K, once, in the linked state (SYMVERS = K's
#                      symvers, uncompressed): the unit RHEL's script repeats in its
#                      validation loop (at least twice per kernel)
#   RHEL minimum       2 x depmod -naeE SYMVERS K (output to /dev/null) + 1 x
#                      depmod -ae -F SYSTEM.MAP K, timed together: the least depmod work the
#                      script does for one --add-kernel (its own shell, rpm, cp and dracut
#                      work not counted). Debian's System.map is a one-line stub, so SYSTEM.MAP
#                      is synthesised from the symvers (`ffffffff81000000 R __ksymtab_SYM` for
#                      every vmlinux export: what depmod -F reads of a real one).
# Before timing, one pass runs each workload once under GNU time (peak RSS; warms the page
# cache) and verifies: after `kabi cold`, 56's weak-updates/ holds 20 links to 55's
# extra/bench/ modules, 56's modules.dep lists each bNN with aNN and aNN's kernel module,
# `kabi no-op` leaves the links untouched (same inodes), kmod's depmod -aeE warns about
# nothing and writes the same modules.* files as kabi did (a difference prints MISMATCH, the
# run goes on); `kabi weak-modules --add-kernel 6.1.0-47-cloud-amd64` (untimed, once) links
# nothing. Then N rounds, each running every workload once; odd rounds do the cached-scan
# cold run first, even rounds the no-cache one. The table gives the median wall time
# (bash $EPOCHREALTIME around the command), peak RSS, and the ratio to one kmod depmod -aeE.
#
# Environment: N (rounds, overridden by the argument), KEEP=1 (keep the root), KABI (a kabi
# binary to use instead of building one), KABI_CACHE.
# Needs: what testdata/build-vendor.sh and make-weak-root.sh need (apt-get, dpkg-deb, make,
# gcc-12, binutils, flock, kmod's depmod, gzip), cargo, GNU time (/usr/bin/time).
set -euo pipefail
export LC_ALL=C
export PATH="$PATH:/usr/sbin:/sbin"

N=${1:-${N:-5}}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
flavour=cloud-amd64
k47=6.1.0-47-$flavour k55=6.1.0-55-$flavour k56=6.1.0-56-$flavour

die() { echo "bench-weak.sh: $*" >&2; exit 1; }
now() { echo "$EPOCHREALTIME"; }
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'; }

[[ $N =~ ^[1-9][0-9]*$ ]] || die "N must be a positive integer, not '$N'"
depmod=$(command -v depmod || true)
[ -n "$depmod" ] || die "kmod's depmod is missing (run scripts/deps.sh)"
kmod_version=$("$depmod" --version 2>/dev/null | head -1)
case $kmod_version in kmod*) ;; *) die "$depmod is not kmod's (--version: '$kmod_version')" ;; esac
/usr/bin/time -f %M true >/dev/null 2>&1 || die "GNU time (/usr/bin/time) is missing: apt-get install time"
command -v gcc-12 >/dev/null || die "gcc-12 is missing (run scripts/deps.sh)"

# --- setup ---------------------------------------------------------------------------------
setup_log=()
t=$(now)
"$repo/testdata/build-vendor.sh" 55 "$flavour" >/dev/null || die "testdata/build-vendor.sh 55 failed"
setup_log+=("build-vendor.sh 55 (headers)      $(since "$t") s")
t=$(now)
built=$("$repo/testdata/vendor-many/build.sh" 55 "$flavour") || die "testdata/vendor-many/build.sh 55 failed"
setup_log+=("vendor-many/build.sh 55 (20 .ko)  $(since "$t") s")
mods=()
for f in "$built"/kabi_bench_*.ko; do [ -f "$f" ] && mods+=("${f##*/}"); done
[ ${#mods[@]} -eq 20 ] || die "$built: expected 20 modules, found ${#mods[@]}"

t=$(now)
if [ -n "${KABI:-}" ]; then
    kabi=$KABI
else
    echo "building kabi (cargo build --release) ..." >&2
    (cd "$repo" && cargo build --release --quiet --bin kabi) || die "cargo build --release failed"
    kabi=${CARGO_TARGET_DIR:-$repo/target}/release/kabi
fi
[ -x "$kabi" ] || die "no kabi binary at $kabi"
setup_log+=("cargo build --release             $(since "$t") s")

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kabi-bench-weak.XXXXXX")
if [ "${KEEP:-0}" = 1 ]; then
    trap 'echo "kept $tmp" >&2' EXIT
else
    trap 'rm -rf "$tmp"' EXIT
fi
root=$tmp/root
t=$(now)
"$repo/testdata/make-weak-root.sh" "$root" 47 55 56 >/dev/null || die "make-weak-root.sh failed"
setup_log+=("make-weak-root.sh 47 55 56        $(since "$t") s")
t=$(now)
mkdir -p "$root/lib/modules/$k55/extra/bench"
for m in "${mods[@]}"; do install -m 0644 "$built/$m" "$root/lib/modules/$k55/extra/bench/"; done
"$depmod" -b "$root" -C "$root/etc/depmod.d" "$k55" || die "depmod $k55 failed"
setup_log+=("install 20 modules + depmod 55    $(since "$t") s")

md=$root/lib/modules/$k56
symvers=$tmp/symvers-$k56
gzip -dc "$root/boot/symvers-$k56.gz" >"$symvers"
sysmap=$tmp/System.map-$k56
awk -F'\t' '$3 == "vmlinux" { print "ffffffff81000000 R __ksymtab_" $2 }' "$symvers" >"$sysmap"
[ -s "$sysmap" ] || die "no vmlinux export in $symvers"
nsym=$(wc -l <"$symvers") nmap=$(wc -l <"$sysmap")
nkmod=$(find "$md/kernel" -name '*.ko*' | wc -l)

# --- workloads: $1 = RSS file (GNU time appends peak KiB) or empty -------------------------
timed() { # RSSFILE CMD...
    local rss=$1; shift
    if [ -n "$rss" ]; then /usr/bin/time -a -o "$rss" -f %M "$@"; else "$@"; fi
}
weak() { "$kabi" weak-modules --basedir "$root" --no-initramfs "$@"; }
clean() { # untimed: 56 without links (and, with "nocache", without its scan cache)
    weak --remove-kernel "$k56" >"$tmp/clean.out" 2>&1 || { cat "$tmp/clean.out" >&2; die "remove-kernel $k56 failed"; }
    [ -z "$(find "$md/weak-updates" -mindepth 1 -print -quit)" ] || die "remove-kernel left $md/weak-updates non-empty"
    if [ "${1:-}" = nocache ]; then rm -f "$md/modules.kabi-cache"; fi
}
kabi_add() { timed "$1" "$kabi" weak-modules --basedir "$root" --no-initramfs --add-kernel "$k56" >"$tmp/add.out" 2>&1; }
kmod_aeE() { timed "$1" "$depmod" -b "$root" -C "$root/etc/depmod.d" -aeE "$symvers" "$k56" >"$tmp/kmod.out" 2>&1; }
rhel_min() {
    timed "$1" "$depmod" -b "$root" -C "$root/etc/depmod.d" -naeE "$symvers" "$k56" >/dev/null 2>>"$tmp/rhel.err" &&
    timed "$1" "$depmod" -b "$root" -C "$root/etc/depmod.d" -naeE "$symvers" "$k56" >/dev/null 2>>"$tmp/rhel.err" &&
    timed "$1" "$depmod" -b "$root" -C "$root/etc/depmod.d" -ae -F "$sysmap" "$k56" >/dev/null 2>>"$tmp/rhel.err"
}
elapsed=
run_w() { # NAME RSSFILE: untimed preparation, then the workload; its wall time in $elapsed
    local w=$1 rss=$2 t0 t1 rc=0
    case $w in
        cold) clean ;;
        nocache) clean nocache ;;
    esac
    : >"$tmp/rhel.err"
    t0=$EPOCHREALTIME
    case $w in
        cold | nocache | noop) kabi_add "$rss" || rc=$? ;;
        kmod) kmod_aeE "$rss" || rc=$? ;;
        rhel) rhel_min "$rss" || rc=$? ;;
    esac
    t1=$EPOCHREALTIME
    if [ "$rc" != 0 ]; then
        cat "$tmp/add.out" "$tmp/kmod.out" "$tmp/rhel.err" 2>/dev/null | tail -n 20 >&2
        die "workload $w failed (exit $rc)"
    fi
    elapsed=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')
}

# --- verification + peak RSS pass ----------------------------------------------------------
notes=()
declare -A rss
rss_of() { sort -n "$1" | tail -1; }
links_state() { find "$md/weak-updates" -type l -printf '%i %P -> %l\n' | sort; }

: >"$tmp/rss.nocache"; run_w nocache "$tmp/rss.nocache"
[ -f "$md/modules.kabi-cache" ] || notes+=("kabi did not write $md/modules.kabi-cache: the cold and cold-no-cache runs are the same")
: >"$tmp/rss.cold"; run_w cold "$tmp/rss.cold"
[ -f "$md/modules.kabi-cache" ] || die "no modules.kabi-cache after remove-kernel + add-kernel"
mapfile -t got < <(links_state)
[ ${#got[@]} -eq 20 ] || die "56's weak-updates has ${#got[@]} links, not 20: $(links_state)"
for m in "${mods[@]}"; do
    l=$md/weak-updates/bench/$m
    [ -L "$l" ] || die "no link $l"
    [ "$(readlink -f "$l")" = "$(readlink -f "$root/lib/modules/$k55/extra/bench/$m")" ] \
        || die "$l points to $(readlink "$l"), not 55's extra/bench/$m"
done
for ((i = 1; i <= 10; i++)); do
    n=$(printf '%02d' "$i")
    case $((i % 3)) in 0) kdep=kernel/lib/crc-itu-t.ko ;; 1) kdep=kernel/lib/crc7.ko ;; 2) kdep=kernel/lib/libcrc32c.ko ;; esac
    a=weak-updates/bench/kabi_bench_a$n.ko b=weak-updates/bench/kabi_bench_b$n.ko
    la=$(grep "^$a:" "$md/modules.dep") || die "modules.dep of 56 has no line for $a"
    lb=$(grep "^$b:" "$md/modules.dep") || die "modules.dep of 56 has no line for $b"
    [[ " ${la#*:} " == *" $kdep"* ]] || die "modules.dep: $a does not depend on $kdep: $la"
    [[ " ${lb#*:} " == *" $a "* && " ${lb#*:} " == *" $kdep"* ]] \
        || die "modules.dep: $b does not depend on $a and $kdep: $lb"
done
dep_example=$(grep "^weak-updates/bench/kabi_bench_b02.ko:" "$md/modules.dep")
mkdir "$tmp/kabi-out"
for f in "$md"/modules.*; do
    case $f in *.kabi-cache) ;; *) cp -p "$f" "$tmp/kabi-out/" ;; esac
done
: >"$tmp/rss.noop"; run_w noop "$tmp/rss.noop"
[ "$(links_state)" = "$(printf '%s\n' "${got[@]}")" ] || die "the no-op run changed 56's weak-updates"
for f in "$tmp"/kabi-out/*; do
    cmp -s "$f" "$md/$(basename "$f")" || die "the no-op run changed $(basename "$f")"
done
: >"$tmp/rss.kmod"; run_w kmod "$tmp/rss.kmod"
[ ! -s "$tmp/kmod.out" ] || { head -n 5 "$tmp/kmod.out" >&2; die "kmod depmod -aeE warned on the linked state (above)"; }
mismatch=()
for f in "$md"/modules.*; do
    b=$(basename "$f")
    case $b in modules.kabi-cache | modules.builtin | modules.builtin.modinfo | modules.order) continue ;; esac
    if [ ! -f "$tmp/kabi-out/$b" ]; then
        mismatch+=("$b: written by kmod, not by kabi")
    elif ! cmp -s "$f" "$tmp/kabi-out/$b"; then
        mismatch+=("$b: kabi's differs from kmod's depmod -aeE")
    fi
done
for f in "$tmp"/kabi-out/*; do
    b=$(basename "$f")
    [ -f "$md/$b" ] || mismatch+=("$b: written by kabi, not by kmod")
done
# (modules.weakdep, which kabi writes as kmod 33 does and kmod 30 does not, stays from kabi's
# run: kmod does not remove it, so it compares equal)
for m in "${mismatch[@]}"; do
    echo "MISMATCH $m" >&2
    notes+=("MISMATCH $m")
done
: >"$tmp/rss.rhel"; run_w rhel "$tmp/rss.rhel"
rhel_warn=$(grep -c WARNING "$tmp/rhel.err" || true)
[ "$rhel_warn" = 0 ] || notes+=("RHEL minimum: depmod printed $rhel_warn warnings (first: $(grep -m1 WARNING "$tmp/rhel.err"))")
for w in cold nocache noop kmod rhel; do rss[$w]=$(rss_of "$tmp/rss.$w"); done

# 47: a different module_layout CRC, so nothing of 55 may be linked there
weak --verbose --add-kernel "$k47" >"$tmp/k47.out" 2>&1 || { cat "$tmp/k47.out" >&2; die "--add-kernel $k47 failed"; }
n47=$(find "$root/lib/modules/$k47/weak-updates" -type l | wc -l)
[ "$n47" = 0 ] || die "--add-kernel $k47 linked $n47 modules (expected none)"
refused47=$(grep -c "not compatible with kernel $k47" "$tmp/k47.out" || true)
layout47=$(grep "not compatible with kernel $k47" "$tmp/k47.out" | grep -c module_layout || true)

# --- timed rounds --------------------------------------------------------------------------
declare -A times
order_odd=(cold noop kmod rhel nocache)
order_even=(nocache kmod rhel cold noop)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for ((r = 1; r <= N; r++)); do
    if ((r % 2)); then order=("${order_odd[@]}"); else order=("${order_even[@]}"); fi
    for w in "${order[@]}"; do
        run_w "$w" ""
        times[$w]+="$elapsed "
    done
    [ "$(find "$md/weak-updates" -type l | wc -l)" = 20 ] || die "round $r: 56 does not have its 20 links"
    echo "round $r/$N done" >&2
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.4f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
declare -A med
for w in "${!times[@]}"; do med[$w]=$(echo "${times[$w]}" | median); done
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# --- report --------------------------------------------------------------------------------
echo
echo "setup:"
printf '  %s\n' "${setup_log[@]}"
echo "root:    $root (kernels $k47, $k55, $k56; $nkmod modules in 56's kernel/)"
echo "vendor:  20 modules in $k55/extra/bench ($built), 10 pairs bNN -> aNN -> crc7|libcrc32c|crc-itu-t"
echo "symvers: $nsym exports of $k56; System.map synthesised: $nmap __ksymtab_ lines"
echo "kabi:    $kabi ($(cd "$repo" && git describe --always --dirty 2>/dev/null || echo '?'))"
echo "kmod:    $kmod_version ($depmod)"
echo "machine: $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)); load average $load_before before timing, $load_after after"
echo "checks:  56: 20 links, modules.dep e.g. '$dep_example'"
echo "         47: no link; $refused47 'not compatible' lines ($layout47 naming module_layout)"
echo "runs:    N=$N rounds, wall time median (s), page cache hot; peak RSS from one run (max over its processes)"
echo
printf '%-44s %10s %12s %14s\n' "workload" "median_s" "peak_RSS_MB" "vs_kmod_-aeE"
row() { printf '%-44s %10s %12s %14s\n' "$1" "${med[$2]}" "$(mb "${rss[$2]}")" "$(ratio "${med[$2]}" "${med[kmod]}")"; }
row "kabi --add-kernel, cold (scan cache kept)" cold
row "kabi --add-kernel, cold (no scan cache)" nocache
row "kabi --add-kernel, no-op (all linked)" noop
row "kmod depmod -aeE (once)" kmod
row "RHEL minimum: 2x depmod -naeE + depmod -ae -F" rhel
echo
echo "all times (s):"
for w in cold nocache noop kmod rhel; do printf '  %-8s %s\n' "$w" "${times[$w]}"; done
if [ ${#notes[@]} -gt 0 ]; then
    echo
    printf 'note: %s\n' "${notes[@]}"
fi
