#!/usr/bin/env bash
# kabi weak-modules2 --add-kmp (SUSE's interface) on a SUSE-shaped root with 3 kernels and 10
# KMPs, against the least work SUSE's weak-modules2 script does for the same call (its rpm
# queries and depmod runs): wall time (median of N rounds), peak RSS of kabi.
# The kernels are found by role (testdata/kernel-roles.sh), not by ABI number: OLD and NEW with
# identical symvers, OTHER with another module_layout (below: old, new, other).
#
#   scripts/bench-weak2.sh [N]          N rounds (default 5, or $N)
#
# Setup (cached parts are reused):
#   1. testdata/build-vendor.sh old and testdata/vendor-many/build.sh old: 20 modules
#      kabi_bench_a01..a10, b01..b10 built against the cloud-amd64 old headers (bNN uses
#      aNN's export; the a's use exports of crc7, libcrc32c, crc-itu-t).
#   2. kabi built as the packages ship it (scripts/build-shipped.sh: static), or $KABI.
#   3. testdata/make-weak-root.sh ROOT other old new, made a merged /usr (usr/lib/modules,
#      lib -> usr/lib) as current SUSE.
#   4. 10 KMP rpms built with rpmbuild in the temporary directory:
#      kabi-bench-NN-kmp-amd64-1.0_k6.1.0_OLD-1 holding kabi_bench_aNN.ko and kabi_bench_bNN.ko
#      in /usr/lib/modules/6.1.0-OLD-cloud-amd64/updates/kabi-bench-NN/, installed with
#      `rpm --root ROOT --dbpath /usr/lib/sysimage/rpm -i --nodeps --noscripts`; then
#      `kabi weak-modules2 --add-kmp` for KMPs 01..09 (untimed): 18 links in new.
#
# Workloads (NVR = kabi-bench-10-kmp-amd64-1.0_k6.1.0_OLD-1, K_OTHER/K_OLD/K_NEW the kernels):
#   kabi add        kabi weak-modules2 --root ROOT --add-kmp NVR, after an untimed
#                   --remove-kmp NVR (its rpm -ql on standard input) took its links out of new:
#                   decides other (refused: module_layout), old (its own kernel), new (linked),
#                   writes new's links, kabi's depmod of old and new, the initramfs decision
#                   (no dracut in the root: "Please run ...")
#   kabi no-op      the same again: everything present, old's and new's indexes rewritten as
#                   the script does
#   kabi dry-run    --dry-run --add-kmp NVR after the untimed --remove-kmp: the decision only
#   script minimum  what SUSE's weak-modules2 runs at least for one --add-kmp on 3 kernels of
#                   the KMP's flavour, one KMP version installed (its shell, temporary tree
#                   copies, lsinitrd and dracut not counted): rpm -qa NAME, rpm -q --provides
#                   NVR, rpm -ql NVR (find_kmps); 3 x depmod -naeE SYMVERS K (the consistency
#                   check of each kernel); 2 x depmod -naeE SYMVERS K (can_replace_kmp for other
#                   and new, here on the root itself, not on the script's copy made of
#                   symbolic links, which its own comments say is slower); 2 x depmod -ae -F
#                   SYSTEM.MAP K (run_depmod for old and new). Debian's System.map is a stub, so
#                   SYSTEM.MAP is made from the symvers as in bench-weak.sh.
# Before timing, one pass checks: after `kabi add`, new holds 20 links (10 to kabi-bench-10's
# modules), other and old none, new's modules.dep lists b10 with a10; the no-op changes no link.
#
# Environment: N, KEEP=1 (keep the root), KABI (a kabi binary), KABI_CACHE.
# Needs: what build-vendor.sh and make-weak-root.sh need, rpm/rpmbuild, kmod's depmod, cargo,
# GNU time (/usr/bin/time).
set -euo pipefail
export LC_ALL=C
export PATH="$PATH:/usr/sbin:/sbin"

N=${1:-${N:-5}}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
flavour=cloud-amd64
# the kernels by role (testdata/kernel-roles.sh): old and new with identical symvers, other
# with another module_layout
eval "$("$repo/testdata/kernel-roles.sh" "$flavour")" || { echo "testdata/kernel-roles.sh $flavour failed" >&2; exit 1; }
k_other=6.1.0-$other-$flavour k_old=6.1.0-$old-$flavour k_new=6.1.0-$new-$flavour
dbpath=/usr/lib/sysimage/rpm

die() { echo "bench-weak2.sh: $*" >&2; exit 1; }
now() { echo "$EPOCHREALTIME"; }
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'; }

[[ $N =~ ^[1-9][0-9]*$ ]] || die "N must be a positive integer, not '$N'"
depmod=$(command -v depmod || true)
[ -n "$depmod" ] || die "kmod's depmod is missing (run scripts/deps.sh)"
for t in rpm rpmbuild gcc-12; do command -v "$t" >/dev/null || die "$t is missing (run scripts/deps.sh)"; done
/usr/bin/time -f %M true >/dev/null 2>&1 || die "GNU time (/usr/bin/time) is missing: apt-get install time"

# --- setup ---------------------------------------------------------------------------------
setup_log=()
t=$(now)
"$repo/testdata/build-vendor.sh" $old "$flavour" >/dev/null || die "testdata/build-vendor.sh $old failed"
built=$("$repo/testdata/vendor-many/build.sh" $old "$flavour") || die "testdata/vendor-many/build.sh $old failed"
setup_log+=("vendor modules (20 .ko)            $(since "$t") s")

t=$(now)
if [ -n "${KABI:-}" ]; then
    kabi=$KABI
else
    echo "building kabi as shipped (scripts/build-shipped.sh) ..." >&2
    kabi=$(bash "$repo/scripts/build-shipped.sh") || die "scripts/build-shipped.sh failed"
fi
[ -x "$kabi" ] || die "no kabi binary at $kabi"
setup_log+=("build-shipped.sh                   $(since "$t") s")

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kabi-bench-weak2.XXXXXX")
if [ "${KEEP:-0}" = 1 ]; then
    trap 'echo "kept $tmp" >&2' EXIT
else
    trap 'rm -rf "$tmp"' EXIT
fi
root=$tmp/root
t=$(now)
"$repo/testdata/make-weak-root.sh" "$root" $other $old $new >/dev/null || die "make-weak-root.sh failed"
mkdir "$root/usr"
mv "$root/lib" "$root/usr/lib"
ln -s usr/lib "$root/lib"
setup_log+=("make-weak-root.sh $other $old $new (SUSE)  $(since "$t") s")

t=$(now)
top=$tmp/rpmbuild
mkdir -p "$top/SPECS" "$top/RPMS"
nvrs=()
for ((i = 1; i <= 10; i++)); do
    n=$(printf '%02d' "$i")
    name=kabi-bench-$n-kmp-amd64
    dir=/usr/lib/modules/$k_old/updates/kabi-bench-$n
    cat >"$top/SPECS/$name.spec" <<EOF
Name: $name
Version: 1.0_k6.1.0_$old
Release: 1
Summary: kabi bench KMP $n
License: GPL-2.0-only
BuildArch: x86_64
AutoReqProv: no
Provides: kabi-bench-$n-kmp = 1.0_k6.1.0_$old
%description
A SUSE-style kernel module package for scripts/bench-weak2.sh.
%install
install -D -m 0644 $built/kabi_bench_a$n.ko %{buildroot}$dir/kabi_bench_a$n.ko
install -D -m 0644 $built/kabi_bench_b$n.ko %{buildroot}$dir/kabi_bench_b$n.ko
%files
$dir/kabi_bench_a$n.ko
$dir/kabi_bench_b$n.ko
EOF
    rpmbuild -bb --define "_topdir $top" --define "__os_install_post %{nil}" \
        --define "debug_package %{nil}" --define "_build_id_links none" \
        "$top/SPECS/$name.spec" >>"$tmp/rpmbuild.log" 2>&1 || { tail -n 20 "$tmp/rpmbuild.log" >&2; die "rpmbuild $name failed"; }
    nvrs+=("$name-1.0_k6.1.0_$old-1")
done
rpm --root "$root" --dbpath "$dbpath" -i --nodeps --noscripts --nosignature "$top"/RPMS/x86_64/*.rpm \
    2>&1 | grep -v "^rpm: \(RPM should not\|However assuming\)" || true
[ "$(rpm --root "$root" --dbpath "$dbpath" -qa | wc -l)" = 10 ] || die "the 10 KMPs are not installed in $root"
setup_log+=("10 KMP rpms built and installed     $(since "$t") s")

t=$(now)
wm2() { env -u DRACUT -u INITRD_IN_POSTTRANS -u KMP_NEEDS_MKINITRD -u WM2_VERBOSE -u WM2_LOGFILE \
    "$kabi" weak-modules2 --root "$root" "$@"; }
for nvr in "${nvrs[@]:0:9}"; do
    wm2 --add-kmp "$nvr" >"$tmp/pre.out" 2>&1 || { cat "$tmp/pre.out" >&2; die "--add-kmp $nvr failed"; }
done
setup_log+=("kabi --add-kmp of KMPs 01..09       $(since "$t") s")
md=$root/usr/lib/modules/$k_new
[ "$(find "$md/weak-updates" -type l | wc -l)" = 18 ] || die "$new does not have 18 links after KMPs 01..09"

nvr=${nvrs[9]}
name=${nvr%-*-*}
list=$tmp/list-10
rpm --root "$root" --dbpath "$dbpath" -ql "$nvr" >"$list"
symvers=$tmp/symvers-$k_new
gzip -dc "$root/boot/symvers-$k_new.gz" >"$symvers"
sysmap=$tmp/System.map
awk -F'\t' '$3 == "vmlinux" { print "ffffffff81000000 R __ksymtab_" $2 }' "$symvers" >"$sysmap"

# --- workloads -----------------------------------------------------------------------------
unlink10() {
    wm2 --remove-kmp "$nvr" <"$list" >"$tmp/rm.out" 2>&1 || { cat "$tmp/rm.out" >&2; die "--remove-kmp $nvr failed"; }
    [ "$(find "$md/weak-updates" -type l | wc -l)" = 18 ] || die "--remove-kmp left $(find "$md/weak-updates" -type l | wc -l) links in $new"
}
q() { rpm --root "$root" --dbpath "$dbpath" --nodigest --nosignature "$@"; }
script_min() {
    q -qa --qf '%{n}-%{v}-%{r}\n' "$name" >/dev/null &&
    q -q --qf '[%{providename}\n]' "$nvr" >/dev/null &&
    q -ql "$nvr" >/dev/null || return 1
    local k
    for k in $k_other $k_old $k_new $k_other $k_new; do
        "$depmod" -b "$root" -C "$root/etc/depmod.d" -naeE "$symvers" "$k" >/dev/null 2>>"$tmp/script.err" || return 1
    done
    for k in $k_old $k_new; do
        "$depmod" -b "$root" -C "$root/etc/depmod.d" -ae -F "$sysmap" "$k" 2>>"$tmp/script.err" || return 1
    done
}
elapsed=
run_w() { # NAME [RSSFILE]
    local w=$1 rss=${2:-} t0 t1 rc=0
    case $w in add | dry) unlink10 ;; esac
    local pre=()
    [ -z "$rss" ] || pre=(/usr/bin/time -a -o "$rss" -f %M)
    t0=$EPOCHREALTIME
    case $w in
        add | noop) "${pre[@]}" "$kabi" weak-modules2 --root "$root" --add-kmp "$nvr" >"$tmp/w.out" 2>&1 || rc=$? ;;
        dry) "${pre[@]}" "$kabi" weak-modules2 --root "$root" --dry-run --add-kmp "$nvr" >"$tmp/w.out" 2>&1 || rc=$? ;;
        script) script_min || rc=$? ;;
    esac
    t1=$EPOCHREALTIME
    [ "$rc" = 0 ] || { tail -n 20 "$tmp/w.out" "$tmp/script.err" 2>/dev/null >&2; die "workload $w failed (exit $rc)"; }
    elapsed=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')
}

# --- checks --------------------------------------------------------------------------------
links() { find "$1/weak-updates" -type l -printf '%i %P -> %l\n' | sort; }
: >"$tmp/rss.add"
run_w add "$tmp/rss.add"
[ "$(find "$md/weak-updates" -type l | wc -l)" = 20 ] || die "$new has not 20 links after --add-kmp: $(links "$md")"
for m in a10 b10; do
    l=$md/weak-updates/updates/kabi-bench-10/kabi_bench_$m.ko
    [ "$(readlink "$l")" = "/usr/lib/modules/$k_old/updates/kabi-bench-10/kabi_bench_$m.ko" ] || die "$l -> $(readlink "$l")"
done
for k in $k_other $k_old; do
    [ -z "$(find "$root/usr/lib/modules/$k/weak-updates" -type l)" ] || die "$k has links"
done
grep -q "FAILED to add $nvr in kernel $k_other" "$tmp/w.out" || die "$other was not refused: $(cat "$tmp/w.out")"
dep=$(grep "^weak-updates/updates/kabi-bench-10/kabi_bench_b10.ko:" "$md/modules.dep") || die "no b10 in $new's modules.dep"
[[ $dep == *weak-updates/updates/kabi-bench-10/kabi_bench_a10.ko* ]] || die "b10 does not depend on a10: $dep"
before=$(links "$md")
: >"$tmp/rss.noop"
run_w noop "$tmp/rss.noop"
[ "$(links "$md")" = "$before" ] || die "the no-op run changed $new's links"
: >"$tmp/script.err"
run_w script
nwarn=$(grep -c "WARNING" "$tmp/script.err" || true)

# --- timed rounds --------------------------------------------------------------------------
declare -A times
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for ((r = 1; r <= N; r++)); do
    if ((r % 2)); then order=(add noop dry script); else order=(script dry noop add); fi
    for w in "${order[@]}"; do
        : >"$tmp/script.err"
        run_w "$w"
        times[$w]+="$elapsed "
    done
    echo "round $r/$N done" >&2
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.4f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
declare -A med
for w in "${!times[@]}"; do med[$w]=$(echo "${times[$w]}" | median); done
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo
echo "setup:"
printf '  %s\n' "${setup_log[@]}"
echo "root:    $root (merged /usr; kernels $k_other, $k_old, $k_new; 10 KMPs, 01..09 linked into $new)"
echo "kabi:    $kabi ($(cd "$repo" && git describe --always --dirty 2>/dev/null || echo '?'))"
echo "kmod:    $("$depmod" --version | head -1); rpm: $(rpm --version)"
echo "machine: $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)); load average $load_before before timing, $load_after after"
echo "checks:  $new: 20 links; $other refused; '$dep'; script minimum: depmod printed $nwarn WARNING lines ($other's refusal)"
echo "runs:    N=$N rounds, wall time median (s), page cache hot"
echo
printf '%-52s %10s %12s %16s\n' "workload" "median_s" "peak_RSS_MB" "vs_script_min"
row() { printf '%-52s %10s %12s %16s\n' "$1" "${med[$2]}" "${3:--}" "$(ratio "${med[$2]}" "${med[script]}")"; }
row "kabi weak-modules2 --add-kmp (links $new)" add "$(mb "$(sort -n "$tmp/rss.add" | tail -1)")"
row "kabi weak-modules2 --add-kmp (no-op)" noop "$(mb "$(sort -n "$tmp/rss.noop" | tail -1)")"
row "kabi weak-modules2 --dry-run --add-kmp" dry
row "script minimum: 3 rpm + 5 depmod -naeE + 2 depmod -F" script
echo
echo "all times (s):"
for w in add noop dry script; do printf '  %-7s %s\n' "$w" "${times[$w]}"; done
