#!/usr/bin/env bash
# Reading a root's rpm database: kabi's native reader (examples/rpmdb_qa.rs, the library's
# rpmdb::read_root) against Debian's rpm 4.18, on a root with 310 packages (the KMP fixtures
# of testdata/build-kmp.sh and its 300 small noarch packages) in SQLite, and on the committed
# ndb database (30 packages, testdata/rpmdb/ndb) for kabi alone (Debian's rpm has no ndb).
#
#   scripts/bench-rpmdb.sh [N]        N rounds (default 20)
#
# Workloads, each run N times, the median wall time printed (process start included):
#   rpm -qa            rpm --root ROOT --dbpath /usr/lib/sysimage/rpm -qa --nosignature --nodigest
#   kabi -qa           target/release/examples/rpmdb_qa ROOT (every header parsed: name, epoch,
#                      version, release, arch, files, provides, requires)
#   rpm -qal / kabi --files   the same with every file listed
# The outputs of each pair are compared first (sorted; a difference fails the script).
set -euo pipefail
rounds=${1:-${N:-20}}
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
eval "$(testdata/kernel-roles.sh cloud-amd64)" # the KMPs' kernels by role
pae=$(ARCH=i386 testdata/fetch-kernel.sh --abis 686-pae | tail -n 1)
kmpdir=$(testdata/build-kmp.sh "$old" "$other" "${spare:--}" "$pae")
cargo build --release --example rpmdb_qa -q
qa="${CARGO_TARGET_DIR:-$here/target}/release/examples/rpmdb_qa"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
root="$tmp/root"
rpm --root "$root" --dbpath /usr/lib/sysimage/rpm -i --nodeps --noscripts --nosignature \
    --ignorearch "$kmpdir"/RPMS/*.rpm "$kmpdir"/many/*.rpm 2>/dev/null
ndbroot="$tmp/ndb"
mkdir -p "$ndbroot/var/lib/rpm"
cp testdata/rpmdb/ndb/Packages.db "$ndbroot/var/lib/rpm/"

rpmq() { rpm --root "$root" --dbpath /usr/lib/sysimage/rpm --nosignature --nodigest "$@"; }
diff <(rpmq -qa | sort) <("$qa" "$root" | sort) >/dev/null || { echo "MISMATCH: -qa" >&2; exit 1; }
diff <(rpmq -qal | grep -v '^(contains no files)$' | sort) <("$qa" "$root" --files | sort) >/dev/null \
    || { echo "MISMATCH: -qal" >&2; exit 1; }
n=$(rpmq -qa | wc -l)
nn=$("$qa" "$ndbroot" | wc -l)
echo "$n packages, $(rpmq -qal | wc -l) files; outputs agree"

median() { # COMMAND...: median wall time in ms over $rounds runs
    local i t0 t1 times=()
    for ((i = 0; i < rounds; i++)); do
        t0=$(date +%s%N)
        "$@" >/dev/null
        t1=$(date +%s%N)
        times+=($(((t1 - t0) / 1000)))
    done
    printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)]/1000}'
}
printf '%-34s %10s\n' workload "median ms"
printf '%-34s %10s\n' "rpm -qa ($n, sqlite)" "$(median rpmq -qa)"
printf '%-34s %10s\n' "kabi -qa ($n, sqlite)" "$(median "$qa" "$root")"
printf '%-34s %10s\n' "rpm -qal ($n, sqlite)" "$(median rpmq -qal)"
printf '%-34s %10s\n' "kabi --files ($n, sqlite)" "$(median "$qa" "$root" --files)"
printf '%-34s %10s\n' "kabi -qa ($nn, ndb)" "$(median "$qa" "$ndbroot")"
