#!/usr/bin/env bash
# Two (or more) kabi binaries against each other on one tree: cold `kabi depmod` runs,
# alternated round by round, and the decompress-only floor of the first binary in each round.
#
#   scripts/ab-depmod.sh ROOT KABI_A KABI_B [KABI...]
#
# ROOT holds lib/modules/<kver>/ with exactly one <kver>: a scratch tree, whose outputs are
# removed and rewritten (e.g. one prepared by scripts/bench-depmod.sh:
# $BENCH_DIR/<kver>/plain/kabi; ROOT=/ is refused). Each round runs, for each binary in
# turn, `kabi depmod -a -b ROOT -C EMPTY KVER` with every output and modules.kabi-cache
# removed first (a cold run: every module read, every file written), then the first binary's
# `depmod --decompress-only` (the floor bench-depmod.sh reports; give the newest binary
# first: older ones read whole files there, a higher floor). The binaries are copied
# first (a rebuild during the run changes nothing). Prints each median wall time (bash
# $EPOCHREALTIME around the command) and its ratio to the floor's median. Alternating, in
# one run, is what makes a difference of a few milliseconds visible on a host whose load
# drifts: compare only figures from the same run.
#
# Environment: N=21 rounds.
set -euo pipefail
export LC_ALL=C
N=${N:-21}
die() { echo "ab-depmod.sh: $*" >&2; exit 1; }
[ $# -ge 3 ] || die "usage: ab-depmod.sh ROOT KABI_A KABI_B [KABI...]"
[[ $N =~ ^[1-9][0-9]*$ ]] || die "N must be a positive integer"
root=$1; shift
[ "$(realpath -m "$root")" != / ] || die "ROOT=/ would rewrite this system's indexes: give a scratch tree"
kvers=("$root"/lib/modules/*/)
[ ${#kvers[@]} = 1 ] && [ -d "${kvers[0]}" ] || die "$root: want exactly one lib/modules/<kver>/"
dir=${kvers[0]%/}
kver=${dir##*/}
snap=$(mktemp -d "${TMPDIR:-/tmp}/ab-depmod.XXXXXX")
trap 'rm -rf "$snap"' EXIT
mkdir "$snap/empty-depmod.d"
bins=()
for b in "$@"; do
    [ -x "$b" ] || die "$b: not an executable"
    c="$snap/$(( ${#bins[@]} + 1 ))-$(basename "$b")"
    cp "$b" "$c"
    bins+=("$c")
done
outputs=(modules.dep modules.dep.bin modules.alias modules.alias.bin modules.softdep
    modules.weakdep modules.symbols modules.symbols.bin modules.builtin.bin
    modules.builtin.alias.bin modules.devname modules.kabi-cache)
clean() { for o in "${outputs[@]}"; do rm -f "$dir/$o"; done; }
declare -A times
timed() { # KEY COMMAND...
    local s e
    s=$EPOCHREALTIME
    "${@:2}" >/dev/null 2>&1 || die "failed: ${*:2}"
    e=$EPOCHREALTIME
    times[$1]+="$(echo "$e - $s" | bc) "
}
for ((i = 1; i <= N; i++)); do
    for b in "${bins[@]}"; do
        clean
        timed "$b" "$b" depmod -a -b "$root" -C "$snap/empty-depmod.d" "$kver"
    done
    timed floor "${bins[0]}" depmod --decompress-only -a -b "$root" -C "$snap/empty-depmod.d" "$kver"
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
floor=$(echo "${times[floor]}" | median)
echo "tree: $dir ($(find "$dir" -name '*.ko*' | wc -l) modules); N=$N rounds, alternated"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-40s %9s %9s\n' binary median_s /floor
printf '%-40s %9s %9s\n' "floor (decompress-only, first binary)" "$floor" 1.000
for ((k = 0; k < ${#bins[@]}; k++)); do
    m=$(echo "${times[${bins[$k]}]}" | median)
    printf '%-40s %9s %9s\n' "$(basename "${@:k+1:1}") ($((k + 1)))" "$m" "$(echo "scale=3; $m / $floor" | bc)"
done
