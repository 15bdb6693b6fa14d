#!/usr/bin/env bash
# One `kabi load` against one kmod `modprobe`, per invocation, on the host: wall time (median
# of N runs each, the two alternating in one run), page faults and peak RSS (GNU time).
#
#   scripts/bench-load.sh [N]          (N invocations per command, default 51; needs root)
#
# The tree is a real Debian kernel (the newest cloud-amd64 ABI, testdata/kernel-roles.sh,
# fetched by testdata/fetch-kernel.sh), copied by hard links into a temporary root with its
# own modules.* indexes written by kmod's depmod, and its /boot (image, config). Both tools
# read that root: `modprobe -d ROOT -S KVER` and `kabi load --root ROOT -S KVER`.
#
# The running kernel those two consult is a stand-in, in a private mount namespace
# (unshare -m; nothing outside it sees a change): /proc is bind-mounted from a directory
# holding `kallsyms` (vmlinux's exports as `__ksymtab_SYM` lines, made from the kernel's
# Module.symvers, GPL ones inside the __ksymtab_gpl range), `modules` (nls_cp437 and
# nls_utf8 loaded), `sys/kernel/osrelease` (KVER), `sys/kernel/random/boot_id`, `cmdline`,
# and a link to the real /proc/self; /sys/module is bind-mounted from a directory in which
# those two modules are `live`. /proc/kcore is absent, so kabi's prediction knows vmlinux's
# symbols by name only (as for a non-root caller).
#
# Cases (each: the kmod command, then the kabi command, alternating, N times):
#   loaded     modprobe nls_cp437 / kabi load nls_cp437: already loaded, both exit 0 early
#   plan       modprobe -n -v nls_ascii / kabi load -n -v nls_ascii: the plan, nothing inserted
#   insert     modprobe nls_ascii / kabi load nls_ascii: everything up to finit_module, which
#              fails (ENOSYS) because this host's kernel has no module support; kabi predicts
#              first (its snapshot of the stand-in kernel under /run/kabi, written by an
#              untimed first run, is then reused). Run only where the real /proc/modules is
#              absent: nothing can be loaded by accident. Twice: with the root's /boot visible
#              at /boot, and with /boot empty. The stand-in kernel enforces no signatures, so
#              kabi's prediction reads no keys in either (a key the kernel lacks would only
#              taint; the signature's arithmetic is the kernel's). Once more with signatures
#              enforced (`sig_enforce` Y in the stand-in /sys/module): kabi then looks for the
#              signer's key among the image's certificates (kept in /run/kabi/builtin-certs).
# The exit codes of the two tools must match in every case (else MISMATCH). /run/kabi is
# a private tmpfs inside the namespace: the host's is not touched.
#
# kabi is the binary the packages install (scripts/build-shipped.sh; KABI=PATH for another).
# Under sudo, build it as yourself first (`bash scripts/build-shipped.sh`), or cargo run as
# root leaves root's files in target/package.
# Needs: root, util-linux's unshare, kmod (modprobe, depmod), GNU time, cargo, what
# testdata/fetch-kernel.sh needs (apt-get, dpkg-deb).
set -euo pipefail
export LC_ALL=C
export PATH="$PATH:/usr/sbin:/sbin"
N=${1:-${N:-51}}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
die() { echo "bench-load.sh: $*" >&2; exit 1; }
[[ $N =~ ^[1-9][0-9]*$ ]] || die "N must be a positive integer, not '$N'"
[ "$(id -u)" = 0 ] || die "needs root (a private mount namespace for the stand-in /proc)"
command -v unshare >/dev/null || die "unshare (util-linux) is missing"
/usr/bin/time -f %M true >/dev/null 2>&1 || die "GNU time (/usr/bin/time) is missing: apt-get install time"
for t in modprobe depmod; do command -v $t >/dev/null || die "kmod's $t is missing"; done
case $(modprobe --version 2>/dev/null | head -1) in kmod*) ;; *) die "modprobe is not kmod's" ;; esac

flavour=cloud-amd64
eval "$("$repo/testdata/kernel-roles.sh" "$flavour")" || die "testdata/kernel-roles.sh failed"
src=$("$repo/testdata/fetch-kernel.sh" "$flavour" "$newest") || die "fetch-kernel.sh $flavour $newest failed"
kver=6.1.0-$newest-$flavour
symvers=$src/usr/src/linux-headers-$kver/Module.symvers
[ -f "$symvers" ] || die "$symvers missing"
[ -f "$src/boot/vmlinuz-$kver" ] || die "$src/boot/vmlinuz-$kver missing"

if [ -n "${KABI:-}" ]; then
    kabi=$KABI
else
    # the binary the packages install (static: its start costs less than a dynamic one's)
    kabi=$(bash "$repo/scripts/build-shipped.sh") || die "scripts/build-shipped.sh failed"
fi
[ -x "$kabi" ] || die "no kabi binary at $kabi"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kabi-bench-load.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
R=$tmp/root
mkdir -p "$R/lib/modules" "$R/boot" "$R/run"
cp -al "$src/lib/modules/$kver" "$R/lib/modules/"
# private indexes: kmod's, written into this root only
rm -f "$R/lib/modules/$kver"/modules.*.bin "$R/lib/modules/$kver"/modules.{dep,alias,softdep,symbols,devname}
for f in "$src/lib/modules/$kver"/modules.{order,builtin,builtin.modinfo}; do
    [ -f "$f" ] && { rm -f "$R/lib/modules/$kver/${f##*/}"; cp "$f" "$R/lib/modules/$kver/"; }
done
depmod -b "$R" "$kver" || die "depmod -b $R $kver failed"
ln "$src/boot/vmlinuz-$kver" "$src/boot/config-$kver" "$R/boot/"

# the stand-in kernel
P=$tmp/proc
mkdir -p "$P/sys/kernel/random" "$tmp/realproc" "$tmp/sysmodule" "$tmp/emptyboot"
echo "$kver" >"$P/sys/kernel/osrelease"
echo 3839813f-f92f-49a9-81bf-71c6269d423e >"$P/sys/kernel/random/boot_id"
echo "BOOT_IMAGE=/boot/vmlinuz-$kver root=/dev/vda1 ro quiet" >"$P/cmdline"
printf '%s\n' "nls_cp437 20480 0 - Live 0xffffffffc0a00000" \
    "nls_utf8 12288 0 - Live 0xffffffffc0a10000" >"$P/modules"
awk -F'\t' '$3 == "vmlinux" { if ($4 ~ /GPL/) g[++ng] = $2; else p[++np] = $2 }
    END {
        a = 0
        for (i = 1; i <= np; i++) printf "ffffffff81%06x r __ksymtab_%s\n", a++, p[i]
        printf "ffffffff81%06x r __start___ksymtab_gpl\n", a
        for (i = 1; i <= ng; i++) printf "ffffffff81%06x r __ksymtab_%s\n", a++, g[i]
        printf "ffffffff81%06x r __stop___ksymtab_gpl\n", a
    }' "$symvers" >"$P/kallsyms"
ln -s "$tmp/realproc/self" "$P/self"
for m in nls_cp437 nls_utf8; do
    mkdir -p "$tmp/sysmodule/$m"
    echo live >"$tmp/sysmodule/$m/initstate"
    echo 0 >"$tmp/sysmodule/$m/refcnt"
done
insert=1
[ -e /proc/modules ] && insert=0

cat >"$tmp/inner.sh" <<'EOF'
set -uo pipefail
# the stand-in kernel and a private /run, or nothing at all: without them the tools would
# read the host's /proc and kabi would write the host's /run/kabi
mount -t proc proc "$tmp/realproc" && mount --bind "$tmp/proc" /proc &&
    mount --bind "$tmp/sysmodule" /sys/module && mount -t tmpfs none /run ||
    { echo "bench-load.sh: the private mounts failed; nothing was run" >&2; exit 1; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) * 1000 }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# case label, then "kmod command" and "kabi command" as two strings
bench() {
    local label=$1 kc=$2 bc=$3 i a b ek eb
    local tk=() tb=()
    $kc >/dev/null 2>&1; ek=$?
    $bc >/dev/null 2>&1; eb=$?
    [ "$ek" = "$eb" ] || echo "MISMATCH $label: kmod exits $ek, kabi $eb"
    for ((i = 0; i < N; i++)); do
        a=$EPOCHREALTIME; $kc >/dev/null 2>&1; b=$EPOCHREALTIME; tk+=("$(ms "$a" "$b")")
        a=$EPOCHREALTIME; $bc >/dev/null 2>&1; b=$EPOCHREALTIME; tb+=("$(ms "$a" "$b")")
    done
    local mk mb fk fb
    mk=$(printf '%s\n' "${tk[@]}" | median)
    mb=$(printf '%s\n' "${tb[@]}" | median)
    /usr/bin/time -o "$tmp/time" -f '%R %M' $kc >/dev/null 2>&1; fk=$(tail -1 "$tmp/time")
    /usr/bin/time -o "$tmp/time" -f '%R %M' $bc >/dev/null 2>&1; fb=$(tail -1 "$tmp/time")
    printf '%-22s %9s %9s %7s   %6s %6s   %6s %6s   %s\n' "$label" "$mk" "$mb" \
        "$(awk -v a="$mk" -v b="$mb" 'BEGIN { printf "%.2f", b / a }')" \
        ${fk% *} $((${fk#* } / 1024)) ${fb% *} $((${fb#* } / 1024)) "exit $ek/$eb"
}
printf '%-22s %9s %9s %7s   %13s   %13s\n' case "kmod_ms" "kabi_ms" "x" "kmod flt/MiB" "kabi flt/MiB"
bench loaded "modprobe -d $R -S $kver nls_cp437" "$kabi load --root $R -S $kver nls_cp437"
bench "plan (-n -v)" "modprobe -n -v -d $R -S $kver nls_ascii" "$kabi load -n -v --root $R -S $kver nls_ascii"
if [ "$insert" = 1 ]; then
    mount --bind "$R/boot" /boot
    $kabi load --root "$R" -S "$kver" nls_ascii >/dev/null 2>&1
    [ -f /run/kabi/running-abi ] || echo "NOTE: kabi wrote no /run/kabi/running-abi"
    bench "insert, /boot" "modprobe -d $R -S $kver nls_ascii" "$kabi load --root $R -S $kver nls_ascii"
    [ -f /run/kabi/builtin-certs ] && echo "NOTE: kabi read the image's keys, which nothing here enforces"
    # signatures enforced (sig_enforce Y): the keys are looked for, from the image's
    # certificates (kept in /run/kabi/builtin-certs by an untimed first run)
    mkdir -p "$tmp/sysmodule/module/parameters"
    echo Y >"$tmp/sysmodule/module/parameters/sig_enforce"
    $kabi load --root "$R" -S "$kver" nls_ascii >/dev/null 2>&1
    [ -f /run/kabi/builtin-certs ] || echo "NOTE: kabi wrote no /run/kabi/builtin-certs"
    bench "insert, enforced" "modprobe -d $R -S $kver nls_ascii" "$kabi load --root $R -S $kver nls_ascii"
    rm -r "$tmp/sysmodule/module"
    mount --bind "$tmp/emptyboot" /boot
    bench "insert, no /boot" "modprobe -d $R -S $kver nls_ascii" "$kabi load --root $R -S $kver nls_ascii"
    bench "insert, --no-check" "modprobe -d $R -S $kver nls_ascii" "$kabi load --no-check --root $R -S $kver nls_ascii"
else
    echo "insert: skipped (this host's kernel loads modules: /proc/modules exists)"
fi
EOF
echo "kernel:  $kver ($src)"
echo "kabi:    $kabi ($(cd "$repo" && git describe --always --dirty 2>/dev/null || echo '?'))"
echo "kmod:    $(modprobe --version | head -1)"
echo "machine: $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg); N=$N per command"
echo
tmp=$tmp R=$R kver=$kver kabi=$kabi N=$N insert=$insert \
    unshare -m --propagation private bash "$tmp/inner.sh" || die "the measurement in a private mount namespace failed"
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
