#!/usr/bin/env bash
# kabi weak-modules against RHEL's weak-modules script and against the depmod work the script
# does: wall time, CPU time, peak RSS, on roots of real Debian cloud-amd64 kernels with
# generated vendor modules.
# The kernels are found by role (testdata/kernel-roles.sh), not by ABI number: OLD and NEW with
# identical symvers, OTHER with another module_layout (below: old, new, other).
#
#   scripts/bench-weak.sh [N] [RHEL_SCRIPT]     N rounds (default 5, or $N); the arguments in
#                                               any order (a number is N)
#
# RHEL_SCRIPT (or $RHEL_WEAK_MODULES) is the path of RHEL's weak-modules, a public bash script
# (kmod's package in RHEL 8/9; e.g. the file `weak-modules` of the eurolinux-enterprise-linux-
# sources/kmod repository). It is not part of kabi and never copied into it: give its path.
# Without it (or when the file is absent) sections 2 and 3 time kabi alone and say so.
#
# Setup (cached parts are reused):
#   1. testdata/build-vendor.sh old (unpacks the cloud-amd64 old headers into
#      $KABI_CACHE/headers/, default ~/.cache/kabi), then testdata/vendor-many/build.sh old:
#      20 generated modules, kabi_bench_a01..a10 and b01..b10 (bNN uses aNN's export; the a's
#      use exports of the kernel's own crc7, libcrc32c and crc-itu-t modules), built with
#      gcc-12, cached in $KABI_CACHE/vendor-many/6.1.0-OLD-cloud-amd64/; for the scaling table
#      also `build.sh old cloud-amd64 100` (200 modules, a001..a100 and b001..b100, cached in
#      .../6.1.0-OLD-cloud-amd64-p100/; building them takes a few minutes once).
#   2. kabi built as the packages ship it (scripts/build-shipped.sh: static), run from a copy.
#   3. The store: testdata/make-weak-root.sh STORE other old new (in a temporary directory, removed
#      at the end; KEEP=1 keeps it), then each kernel's kernel/ tree replaced by a private copy
#      (about 90 MB each). Every root below is made from the store by hard links (`cp -al`),
#      with private copies of each kernel's modules.* files. Why private: kabi's scan cache
#      knows a file by its size, times, inode and device, and a hard link made or removed
#      anywhere changes the file's ctime; roots linked to the shared cache would see their
#      scan caches go stale whenever another user of the cache makes or removes a root.
#      Environment shim for the script (documented differences from a RHEL host): Debian's
#      /boot/System.map-K is an 83-byte stub, so every root's System.map-K is synthesised
#      from K's symvers (`ffffffff81000000 R __ksymtab_SYM` for every vmlinux export: what
#      depmod -F reads of a real one); without it the script's final `depmod -ae -F` warns
#      about every symbol of every module.
#
# Section 1: kabi --add-kernel against the depmod work of RHEL's script (no script needed).
#   Root: the store's kernels with the 20 modules installed as regular files into
#   6.1.0-OLD-cloud-amd64/extra/bench/ and kmod's `depmod -b ROOT -C ROOT/etc/depmod.d old`, as
#   a KMP's %post would. old and new have identical symvers, so all 20 are compatible with new;
#   other's module_layout differs, so none is compatible with other.
#   Workloads (K = 6.1.0-NEW-cloud-amd64; -b ROOT -C ROOT/etc/depmod.d on every depmod):
#   kabi cold          kabi weak-modules --basedir ROOT --add-kernel K --no-initramfs, after
#                      an untimed --remove-kernel K; new's depmod scan cache
#                      (modules.kabi-cache) present, as after any earlier kabi run
#   kabi cold, no cache   the same with K/modules.kabi-cache deleted before the run
#   kabi no-op         the same again right after `kabi cold`: everything already linked
#   kmod depmod -aeE   depmod -aeE SYMVERS K, once, in the linked state (SYMVERS = K's
#                      symvers, uncompressed): the unit RHEL's script repeats in its
#                      validation loop (at least twice per kernel); run on a hard-linked
#                      copy of the root whose links name the root's own path, as RHEL's
#                      script writes them under --basedir (kabi's name /lib/modules/...,
#                      the installed system's path, which depmod -b cannot follow here)
#   RHEL minimum       2 x depmod -naeE SYMVERS K (output to /dev/null) + 1 x
#                      depmod -ae -F SYSTEM.MAP K, timed together: the least depmod work the
#                      script does for one --add-kernel (its own shell, rpm, cp and dracut
#                      work not counted).
#   Before timing, one pass runs each workload once under GNU time (peak RSS; warms the page
#   cache) and verifies: after `kabi cold`, new's weak-updates/ holds 20 links to old's
#   extra/bench/ modules, new's modules.dep lists each bNN with aNN and aNN's kernel module,
#   `kabi no-op` leaves the links untouched (same inodes), kmod's depmod -aeE warns about
#   nothing and writes the same modules.* files as kabi did (a difference prints MISMATCH,
#   the run goes on); `kabi weak-modules --add-kernel 6.1.0-OTHER-cloud-amd64` (untimed, once)
#   links nothing. Then N rounds, each running every workload once; odd rounds do the
#   cached-scan cold run first, even rounds the no-cache one. The table gives the median wall
#   time (bash $EPOCHREALTIME around the command), peak RSS, and the ratio to one kmod
#   depmod -aeE.
#
# Section 2: the four modes side by side, RHEL's script and kabi, 3 kernels, 20 modules.
#   Two roots from the same base (the store's 3 kernels, the 20 modules in old's extra/bench
#   as fresh regular files, old indexed by kmod's depmod): one for the script, one for kabi
#   (whose every kernel is indexed once more by `kabi depmod`, untimed, so its scan caches
#   exist as after any earlier kabi run; the indexes it writes are kmod's, byte for byte).
#   Each round runs on each root, in this order, the life of a vendor package:
#     --add-modules      the 20 module paths on standard input (a KMP's %post)
#     --remove-kernel    6.1.0-NEW-cloud-amd64 (that kernel's removal)
#     --add-kernel       6.1.0-NEW-cloud-amd64 (its installation: every compatible module of
#                        the other kernels' extra/ linked in)
#     --remove-modules   the 20 paths, after the files were deleted (a KMP's %postun)
#   each as `weak-modules --basedir ROOT --no-initramfs [--dracut /bin/true] MODE`; before a
#   round the modules are installed again as new files. So each tool starts every step from
#   the state its own previous step left. Before every step, untimed: `sync` (neither tool
#   pays for dirty data of the other or of the setup). Each step is timed by a small python3
#   wrapper: wall time (fork to wait) and CPU time (user + system of the process and every
#   child it waited for, from wait4's rusage). After each step the links are checked: new
#   holds 20 after --add-modules and --add-kernel, none after --remove-kernel and
#   --remove-modules; other none ever; after --add-kernel new's modules.dep must be the same from
#   both tools (else a MISMATCH note). The table gives medians and script/kabi ratios.
#   Script shims: `--dracut /bin/true` (the script refuses to run without an executable
#   dracut, which --no-initramfs never runs); /sbin/depmod and /sbin/modinfo are called by
#   absolute path: where they are missing (a Debian without merged /usr and without kmod's
#   /sbin links) a copy of the script with those two paths replaced by `command -v`'s is run
#   instead. The script, run with --basedir, also links old's own modules into old's
#   weak-updates (its `/lib/modules/$krel/*` test ignores BASEDIR) and links with targets
#   that name BASEDIR; that is its behaviour, timed as it is.
#
# Section 3: scaling. The same rounds for 3, 10 and 30 kernels ($SCALE_KERNELS) with 20 and
#   200 modules ($SCALE_MODULES): kernels beyond the store's three are replicas of the real
#   trees under other release names, 6.1.0-101-cloud-amd64, -102, ... (the i-th a copy of
#   new, other, old, new, other, ... in turn): lib/modules/<release> made by hard links (`cp -al`)
#   to the original's tree with private copies of its modules.* files (its indexes, valid
#   as they are: modules.dep holds relative paths), and boot/{symvers,config,System.map,
#   vmlinuz}-<release> hard links to the original's. A replica has the original's ABI, so the
#   modules link into the replicas of old and new and not into those of other. kabi runs N rounds
#   per cell; the script $SCALE_SCRIPT_ROUNDS (default 1) per cell, each step stopped after
#   $SCRIPT_TIMEOUT seconds (default 900): a step stopped is shown as >T, and once a cell was
#   stopped, the script is not run on larger cells (shown as `time-boxed`), nor on cells
#   after its total time in section 3 passed $SCRIPT_BUDGET seconds (default 3600).
#   SCALE=0 skips section 3.
#   LIFECYCLE=rhel (sections 2 and 3): each tool's steps run as within RHEL's kernel package
#   scripts: before --remove-kernel, untimed, new's indexes are deleted as %preun's
#   `kernel-install remove` deletes them (systemd's 50-depmod.install); before --add-kernel,
#   untimed, kmod's `depmod -a` indexes new as %post modules does (without kabi's scan cache).
#   Without it the kernel stays installed and indexed throughout.
#
# Environment: N (rounds, overridden by the argument), KEEP=1 (keep the temporary
# directory), KABI (a kabi binary to use instead of building one), KABI_CACHE,
# RHEL_WEAK_MODULES, SCALE, SCALE_KERNELS, SCALE_MODULES, SCALE_SCRIPT_ROUNDS,
# SCRIPT_TIMEOUT, SCRIPT_BUDGET, SECTIONS (default "1 2 3"), LIFECYCLE.
# Needs: what testdata/build-vendor.sh and make-weak-root.sh need (apt-get, dpkg-deb, make,
# gcc-12, binutils, flock, kmod's depmod, gzip), cargo, GNU time (/usr/bin/time), python3,
# coreutils' timeout.
set -euo pipefail
export LC_ALL=C
export PATH="$PATH:/usr/sbin:/sbin"

N=${N:-5}
rhel=${RHEL_WEAK_MODULES:-}
for a in "$@"; do
    if [[ $a =~ ^[0-9]+$ ]]; then N=$a; else rhel=$a; fi
done
SECTIONS=${SECTIONS:-1 2 3}
LIFECYCLE=${LIFECYCLE:-}
# the files systemd's 50-depmod.install deletes on `kernel-install remove`
INDEXES="modules.alias modules.alias.bin modules.builtin.bin modules.builtin.alias.bin modules.dep
modules.dep.bin modules.devname modules.softdep modules.weakdep modules.symbols modules.symbols.bin"
INDEXES=$(echo $INDEXES)
SCALE=${SCALE:-1}
SCALE_KERNELS=${SCALE_KERNELS:-3 10 30}
SCALE_MODULES=${SCALE_MODULES:-20 200}
SCALE_SCRIPT_ROUNDS=${SCALE_SCRIPT_ROUNDS:-1}
SCRIPT_TIMEOUT=${SCRIPT_TIMEOUT:-900}
SCRIPT_BUDGET=${SCRIPT_BUDGET:-3600}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
want() { [[ " $SECTIONS " == *" $1 "* ]]; }
flavour=cloud-amd64
# the kernels by role (testdata/kernel-roles.sh): old and new with identical symvers, other
# with another module_layout
eval "$("$repo/testdata/kernel-roles.sh" "$flavour")" || { echo "testdata/kernel-roles.sh $flavour failed" >&2; exit 1; }
k_other=6.1.0-$other-$flavour k_old=6.1.0-$old-$flavour k_new=6.1.0-$new-$flavour

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
command -v python3 >/dev/null || die "python3 is missing (run scripts/deps.sh)"
command -v timeout >/dev/null || die "timeout (coreutils) is missing"
for v in SCALE_SCRIPT_ROUNDS SCRIPT_TIMEOUT SCRIPT_BUDGET; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a number, not '${!v}'"
done
for k in $SCALE_KERNELS; do [[ $k =~ ^[0-9]+$ ]] && [ "$k" -ge 3 ] || die "SCALE_KERNELS: $k is not a number >= 3"; done
for m in $SCALE_MODULES; do
    [[ $m =~ ^[0-9]+$ ]] && [ $((m % 2)) = 0 ] && [ "$m" -ge 2 ] || die "SCALE_MODULES: $m is not an even number >= 2"
done
# RHEL's script: skipped, with a message, when not given or absent
have_rhel=0 rhel_note=
if [ -z "$rhel" ]; then
    rhel_note="no RHEL weak-modules script given (argument or RHEL_WEAK_MODULES): sections 2 and 3 time kabi alone"
elif [ ! -f "$rhel" ]; then
    rhel_note="RHEL weak-modules script $rhel not found: sections 2 and 3 time kabi alone"
else
    have_rhel=1
    rhel=$(cd "$(dirname "$rhel")" && pwd)/$(basename "$rhel")
fi
[ -z "$rhel_note" ] || echo "bench-weak.sh: $rhel_note" >&2

# --- setup ---------------------------------------------------------------------------------
setup_log=()
t=$(now)
"$repo/testdata/build-vendor.sh" $old "$flavour" >/dev/null || die "testdata/build-vendor.sh $old failed"
setup_log+=("build-vendor.sh $old (headers)      $(since "$t") s")
t=$(now)
built=$("$repo/testdata/vendor-many/build.sh" $old "$flavour") || die "testdata/vendor-many/build.sh $old failed"
setup_log+=("vendor-many/build.sh $old (20 .ko)  $(since "$t") s")
mods=()
for f in "$built"/kabi_bench_*.ko; do [ -f "$f" ] && mods+=("${f##*/}"); done
[ ${#mods[@]} -eq 20 ] || die "$built: expected 20 modules, found ${#mods[@]}"

t=$(now)
if [ -n "${KABI:-}" ]; then
    kabi=$KABI
else
    echo "building kabi as shipped (scripts/build-shipped.sh) ..." >&2
    kabi=$(bash "$repo/scripts/build-shipped.sh") || die "scripts/build-shipped.sh failed"
fi
[ -x "$kabi" ] || die "no kabi binary at $kabi"
setup_log+=("build-shipped.sh                  $(since "$t") s")
kabi_rev=$(cd "$repo" && git describe --always --dirty 2>/dev/null || echo '?')

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kabi-bench-weak.XXXXXX")
if [ "${KEEP:-0}" = 1 ]; then
    trap 'echo "kept $tmp" >&2' EXIT
else
    trap 'rm -rf "$tmp"' EXIT
fi
# a snapshot: a rebuild of the binary during the run must not mix two binaries
cp "$kabi" "$tmp/kabi"
kabi_src=$kabi kabi=$tmp/kabi

# the store: other, old, new with private kernel/ trees and a System.map made from the symvers
store=$tmp/store
t=$(now)
"$repo/testdata/make-weak-root.sh" "$store" $other $old $new >/dev/null || die "make-weak-root.sh failed"
for k in "$k_other" "$k_old" "$k_new"; do
    kd=$store/lib/modules/$k
    cp -a "$kd/kernel" "$kd/kernel.private"
    rm -rf "$kd/kernel"
    mv "$kd/kernel.private" "$kd/kernel"
    gzip -dc "$store/boot/symvers-$k.gz" | awk -F'\t' '$3 == "vmlinux" { print "ffffffff81000000 R __ksymtab_" $2 }' \
        >"$store/boot/System.map-$k.new"
    [ -s "$store/boot/System.map-$k.new" ] || die "no vmlinux export in $store/boot/symvers-$k.gz"
    mv "$store/boot/System.map-$k.new" "$store/boot/System.map-$k"
done
setup_log+=("store: make-weak-root.sh $other $old $new + private copies  $(since "$t") s")

# clone_root SRC DST: DST made of hard links to SRC, with private copies of every kernel's
# modules.* files and of the vendor modules (nothing a tool writes or deletes is shared)
clone_root() {
    local src=$1 dst=$2 f
    cp -al "$src" "$dst"
    for f in "$dst"/lib/modules/*/modules.* "$dst"/lib/modules/*/extra/bench/*.ko; do
        [ -f "$f" ] || continue
        cp --remove-destination -p "$src/${f#"$dst"/}" "$f"
    done
}

root=$tmp/root
t=$(now)
clone_root "$store" "$root"
mkdir -p "$root/lib/modules/$k_old/extra/bench"
for m in "${mods[@]}"; do install -m 0644 "$built/$m" "$root/lib/modules/$k_old/extra/bench/"; done
"$depmod" -b "$root" -C "$root/etc/depmod.d" "$k_old" || die "depmod $k_old failed"
setup_log+=("install 20 modules + depmod $old    $(since "$t") s")

md=$root/lib/modules/$k_new
symvers=$tmp/symvers-$k_new
gzip -dc "$root/boot/symvers-$k_new.gz" >"$symvers"
sysmap=$tmp/System.map-$k_new
awk -F'\t' '$3 == "vmlinux" { print "ffffffff81000000 R __ksymtab_" $2 }' "$symvers" >"$sysmap"
[ -s "$sysmap" ] || die "no vmlinux export in $symvers"
nsym=$(wc -l <"$symvers") nmap=$(wc -l <"$sysmap")
nkmod=$(find "$md/kernel" -name '*.ko*' | wc -l)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.4f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
ratio() { if [ "$1" = n/a ] || [ "$2" = n/a ]; then echo n/a; else awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; fi; }
ratio0() { if [ "$1" = n/a ] || [ "$2" = n/a ]; then echo n/a; else awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", a / b }'; fi; }
notes=()
report1=()

if want 1; then

# --- workloads: $1 = RSS file (GNU time appends peak KiB) or empty -------------------------
timed() { # RSSFILE CMD...
    local rss=$1; shift
    if [ -n "$rss" ]; then /usr/bin/time -a -o "$rss" -f %M "$@"; else "$@"; fi
}
weak() { "$kabi" weak-modules --basedir "$root" --no-initramfs "$@"; }
clean() { # untimed: $new without links (and, with "nocache", without its scan cache)
    weak --remove-kernel "$k_new" >"$tmp/clean.out" 2>&1 || { cat "$tmp/clean.out" >&2; die "remove-kernel $k_new failed"; }
    [ -z "$(find "$md/weak-updates" -mindepth 1 -print -quit)" ] || die "remove-kernel left $md/weak-updates non-empty"
    if [ "${1:-}" = nocache ]; then rm -f "$md/modules.kabi-cache"; fi
}
kabi_add() { timed "$1" "$kabi" weak-modules --basedir "$root" --no-initramfs --add-kernel "$k_new" >"$tmp/add.out" 2>&1; }
# kmod's depmod runs on $kroot: the linked state with each link naming the root's own path,
# as RHEL's script writes them under --basedir (kabi's name the module as the installed
# system sees it, /lib/modules/..., which kmod's depmod -b would look up on this host)
kmod_aeE() { timed "$1" "$depmod" -b "$kroot" -C "$kroot/etc/depmod.d" -aeE "$symvers" "$k_new" >"$tmp/kmod.out" 2>&1; }
rhel_min() {
    timed "$1" "$depmod" -b "$kroot" -C "$kroot/etc/depmod.d" -naeE "$symvers" "$k_new" >/dev/null 2>>"$tmp/rhel.err" &&
    timed "$1" "$depmod" -b "$kroot" -C "$kroot/etc/depmod.d" -naeE "$symvers" "$k_new" >/dev/null 2>>"$tmp/rhel.err" &&
    timed "$1" "$depmod" -b "$kroot" -C "$kroot/etc/depmod.d" -ae -F "$sysmap" "$k_new" >/dev/null 2>>"$tmp/rhel.err"
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
declare -A rss
rss_of() { sort -n "$1" | tail -1; }
links_state() { find "$md/weak-updates" -type l -printf '%i %P -> %l\n' | sort; }

: >"$tmp/rss.nocache"; run_w nocache "$tmp/rss.nocache"
[ -f "$md/modules.kabi-cache" ] || notes+=("kabi did not write $md/modules.kabi-cache: the cold and cold-no-cache runs are the same")
: >"$tmp/rss.cold"; run_w cold "$tmp/rss.cold"
[ -f "$md/modules.kabi-cache" ] || die "no modules.kabi-cache after remove-kernel + add-kernel"
mapfile -t got < <(links_state)
[ ${#got[@]} -eq 20 ] || die "$new's weak-updates has ${#got[@]} links, not 20: $(links_state)"
for m in "${mods[@]}"; do
    l=$md/weak-updates/bench/$m
    [ -L "$l" ] || die "no link $l"
    # the link names the module as the installed system sees it (RHEL's convention), not
    # through this root: compare the target itself, not the host's view of it
    [ "$(readlink "$l")" = "/lib/modules/$k_old/extra/bench/$m" ] \
        || die "$l points to $(readlink "$l"), not /lib/modules/$k_old/extra/bench/$m"
done
for ((i = 1; i <= 10; i++)); do
    n=$(printf '%02d' "$i")
    case $((i % 3)) in 0) kdep=kernel/lib/crc-itu-t.ko ;; 1) kdep=kernel/lib/crc7.ko ;; 2) kdep=kernel/lib/libcrc32c.ko ;; esac
    a=weak-updates/bench/kabi_bench_a$n.ko b=weak-updates/bench/kabi_bench_b$n.ko
    la=$(grep "^$a:" "$md/modules.dep") || die "modules.dep of $new has no line for $a"
    lb=$(grep "^$b:" "$md/modules.dep") || die "modules.dep of $new has no line for $b"
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
[ "$(links_state)" = "$(printf '%s\n' "${got[@]}")" ] || die "the no-op run changed $new's weak-updates"
for f in "$tmp"/kabi-out/*; do
    cmp -s "$f" "$md/$(basename "$f")" || die "the no-op run changed $(basename "$f")"
done
# $kroot: hard links to $root (kmod replaces the files it writes by rename), its own
# weak-updates/ of $new with links naming the root's path
kroot=$tmp/kroot
kmd=$kroot/lib/modules/$k_new
cp -al "$root" "$kroot"
rm -rf "$kmd/weak-updates"
mkdir -p "$kmd/weak-updates/bench"
for m in "${mods[@]}"; do ln -s "$kroot/lib/modules/$k_old/extra/bench/$m" "$kmd/weak-updates/bench/$m"; done
: >"$tmp/rss.kmod"; run_w kmod "$tmp/rss.kmod"
[ ! -s "$tmp/kmod.out" ] || { head -n 5 "$tmp/kmod.out" >&2; die "kmod depmod -aeE warned on the linked state (above)"; }
mismatch=()
for f in "$kmd"/modules.*; do
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
    [ -f "$kmd/$b" ] || mismatch+=("$b: written by kabi, not by kmod")
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

# other: a different module_layout CRC, so nothing of old may be linked there
weak --verbose --add-kernel "$k_other" >"$tmp/k_other.out" 2>&1 || { cat "$tmp/k_other.out" >&2; die "--add-kernel $k_other failed"; }
n_other=$(find "$root/lib/modules/$k_other/weak-updates" -type l | wc -l)
[ "$n_other" = 0 ] || die "--add-kernel $k_other linked $n_other modules (expected none)"
refused_other=$(grep -c "not compatible with kernel $k_other" "$tmp/k_other.out" || true)
layout_other=$(grep "not compatible with kernel $k_other" "$tmp/k_other.out" | grep -c module_layout || true)

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
    [ "$(find "$md/weak-updates" -type l | wc -l)" = 20 ] || die "round $r: $new does not have its 20 links"
    echo "round $r/$N done" >&2
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

declare -A med
for w in "${!times[@]}"; do med[$w]=$(echo "${times[$w]}" | median); done

# --- section 1 report (printed at the end) ----------------------------------------------
{
    echo "== 1. kabi --add-kernel against the depmod work of RHEL's script (3 kernels, 20 modules)"
    echo "root:    $root (kernels $k_other, $k_old, $k_new; $nkmod modules in $new's kernel/)"
    echo "vendor:  20 modules in $k_old/extra/bench ($built), 10 pairs bNN -> aNN -> crc7|libcrc32c|crc-itu-t"
    echo "symvers: $nsym exports of $k_new; System.map synthesised: $nmap __ksymtab_ lines"
    echo "checks:  $new: 20 links, modules.dep e.g. '$dep_example'"
    echo "         $other: no link; $refused_other 'not compatible' lines ($layout_other naming module_layout)"
    echo "runs:    N=$N rounds, wall time median (s), page cache hot; peak RSS from one run (max over its processes);"
    echo "         load average $load_before before, $load_after after"
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
} >"$tmp/report1"
rm -rf "$root"
fi # section 1

# --- sections 2 and 3: the four modes, RHEL's script and kabi, one root each ----------------
# the timer: wall time from fork to wait, CPU time (user + system) of the process and of every
# child it waited for (wait4's rusage), peak RSS, exit code; appended to OUT as one line
cat >"$tmp/ptime.py" <<'EOF'
import os, sys, time
out, cmd = sys.argv[1], sys.argv[2:]
t0 = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(cmd[0], cmd)
    finally:
        os._exit(127)
_, status, ru = os.wait4(pid, 0)
wall = time.perf_counter() - t0
with open(out, "a") as f:
    f.write("%.6f %.6f %d %d\n" % (wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss, os.waitstatus_to_exitcode(status)))
EOF
rhel_run=
if [ "$have_rhel" = 1 ]; then
    # shim: the script calls /sbin/depmod and /sbin/modinfo by absolute path
    rhel_run=$rhel
    if [ ! -x /sbin/depmod ] || [ ! -x /sbin/modinfo ]; then
        modinfo=$(command -v modinfo || true)
        [ -n "$modinfo" ] || die "kmod's modinfo is missing (the script needs it)"
        sed -e "s|/sbin/depmod|$depmod|g" -e "s|/sbin/modinfo|$modinfo|g" "$rhel" >"$tmp/weak-modules.shim"
        rhel_run=$tmp/weak-modules.shim
        notes+=("the script was run as a copy with /sbin/depmod -> $depmod, /sbin/modinfo -> $modinfo")
    fi
fi
MODES=(add-modules remove-kernel add-kernel remove-modules)

# make_cell DIR KERNELS PAIRS: DIR/base with KERNELS kernels (the store's 3 and replicas) and
# 2*PAIRS vendor modules in old's extra/bench; DIR/script and DIR/kabi cloned from it
make_cell() {
    local dir=$1 nk=$2 pairs=$3 src=($new $other $old) i s d f b kv
    local base=$dir/base
    clone_root "$store" "$base"
    for ((i = 1; i <= nk - 3; i++)); do
        s=6.1.0-${src[$(((i - 1) % 3))]}-$flavour d=6.1.0-$((100 + i))-$flavour
        cp -al "$base/lib/modules/$s" "$base/lib/modules/$d"
        for f in "$base/lib/modules/$d"/modules.*; do cp --remove-destination -p "$base/lib/modules/$s/${f##*/}" "$f"; done
        for b in symvers config System.map vmlinuz; do
            f=$base/boot/$b-$s
            [ -f "$f" ] || f=$base/boot/$b-$s.gz
            [ -f "$f" ] || continue
            ln "$f" "${f/$s/$d}"
        done
    done
    vdir=$("$repo/testdata/vendor-many/build.sh" $old "$flavour" "$pairs") || die "vendor-many/build.sh $old $flavour $pairs failed"
    mkdir -p "$base/lib/modules/$k_old/extra/bench"
    install -m 0644 "$vdir"/kabi_bench_*.ko "$base/lib/modules/$k_old/extra/bench/"
    "$depmod" -b "$base" -C "$base/etc/depmod.d" "$k_old" || die "depmod $k_old failed in $base"
    clone_root "$base" "$dir/script"
    clone_root "$base" "$dir/kabi"
    # kabi's scan caches, as after any earlier kabi run (the indexes it writes are kmod's)
    for kv in $(ls "$dir/kabi/lib/modules"); do
        "$kabi" depmod --root "$dir/kabi" -C "$dir/kabi/etc/depmod.d" "$kv" >"$tmp/prep.out" 2>&1 \
            || { cat "$tmp/prep.out" >&2; die "kabi depmod $kv failed in $dir/kabi"; }
    done
}

nlinks() { find "$1/lib/modules/$2/weak-updates" -type l 2>/dev/null | wc -l; }
# the kernels of a cell that take the modules: new and the replicas of old and new
compatible() { local nk=$1 i n=1; for ((i = 1; i <= nk - 3; i++)); do [ $(((i - 1) % 3)) = 1 ] || n=$((n + 1)); done; echo "$n"; }

# run_step TOOL ROOT MODE TIMEFILE LIST: one timed step (sync first, untimed)
run_step() {
    local tool=$1 r=$2 mode=$3 tf=$4 list=$5 args=(--basedir "$r" --no-initramfs)
    case $mode in add-modules | remove-modules) ;; *) args+=(--"$mode" "$k_new") ;; esac
    case $mode in add-modules | remove-modules) args+=(--"$mode") ;; esac
    sync
    if [ "$tool" = script ]; then
        python3 "$tmp/ptime.py" "$tf" timeout "$SCRIPT_TIMEOUT" bash "$rhel_run" --dracut /bin/true "${args[@]}" \
            <"$list" >"$tmp/step.out" 2>&1
    else
        python3 "$tmp/ptime.py" "$tf" "$kabi" weak-modules "${args[@]}" <"$list" >"$tmp/step.out" 2>&1
    fi
}

# round TOOL DIR NK: the four steps on DIR/TOOL; times appended to DIR/t.TOOL.MODE; returns 1
# when a step failed or was stopped (the rest of the round is skipped)
round() {
    local tool=$1 dir=$2 nk=$3 r=$2/$1 mode tf rc want got n_other vdir
    local ncomp
    ncomp=$(compatible "$nk")
    vdir=$(ls -d "$dir/base/lib/modules/$k_old/extra/bench")
    # the modules installed again, as new files (a package install)
    rm -rf "$r/lib/modules/$k_old/extra/bench"
    mkdir -p "$r/lib/modules/$k_old/extra/bench"
    cp "$vdir"/*.ko "$r/lib/modules/$k_old/extra/bench/"
    find "$r/lib/modules/$k_old/extra/bench" -name '*.ko' | sort >"$dir/list.$tool"
    for mode in "${MODES[@]}"; do
        tf=$dir/t.$tool.$mode
        [ "$mode" != remove-modules ] || rm -f $(cat "$dir/list.$tool")
        if [ "$LIFECYCLE" = rhel ]; then
            # untimed, what RHEL's kernel package does around the step: %preun's
            # `kernel-install remove` (its 50-depmod.install deletes the indexes) before
            # --remove-kernel; %post modules' `depmod -a` before %posttrans' --add-kernel
            case $mode in
                remove-kernel) (cd "$r/lib/modules/$k_new" && rm -f $INDEXES) ;;
                add-kernel) depmod -b "$r" -C "$r/etc/depmod.d" -a "$k_new" ;;
            esac
        fi
        run_step "$tool" "$r" "$mode" "$tf" "$dir/list.$tool"
        rc=$(tail -1 "$tf" | cut -d' ' -f4)
        if [ "$rc" = 124 ]; then
            sed -i '$ s/^/stopped /' "$tf"
            return 1
        fi
        if [ "$rc" != 0 ]; then
            tail -n 20 "$tmp/step.out" >&2
            die "$tool --$mode failed (exit $rc) in $r"
        fi
        case $mode in add-modules | add-kernel) want=$(($(ls "$vdir" | wc -l))) ;; *) want=0 ;; esac
        got=$(nlinks "$r" "$k_new")
        [ "$got" = "$want" ] || notes+=("$tool --$mode ($nk kernels): $new has $got links, expected $want")
        n_other=$(nlinks "$r" "$k_other")
        [ "$n_other" = 0 ] || notes+=("$tool --$mode ($nk kernels): $other has $n_other links, expected none")
        if [ "$mode" = add-modules ] && [ "$tool" = kabi ]; then
            got=0
            for kv in $(ls "$r/lib/modules"); do [ "$(nlinks "$r" "$kv")" = 0 ] || got=$((got + 1)); done
            [ "$got" = "$ncomp" ] || notes+=("kabi --add-modules ($nk kernels): $got kernels got links, expected $ncomp")
        fi
    done
    return 0
}

# cell_report DIR NK NMODS: rows "NK NMODS MODE kabi_wall kabi_cpu script_wall script_cpu"
cell_rows() {
    local dir=$1 nk=$2 nm=$3 mode kw kc sw sc f
    for mode in "${MODES[@]}"; do
        f=$dir/t.kabi.$mode
        kw=$(cut -d' ' -f1 "$f" | median) kc=$(cut -d' ' -f2 "$f" | median)
        f=$dir/t.script.$mode
        if [ -s "$f" ] && grep -q '^stopped' "$f"; then
            sw=">$SCRIPT_TIMEOUT" sc=n/a
        elif [ -s "$f" ]; then
            sw=$(cut -d' ' -f1 "$f" | median) sc=$(cut -d' ' -f2 "$f" | median)
        else
            sw=${skip_why:-n/a} sc=n/a
        fi
        echo "$nk $nm $mode $kw $kc $sw $sc"
    done
}

declare -A rows2
if want 2; then
    echo "== section 2: the four modes, 3 kernels, 20 modules ==" >&2
    cell=$tmp/cell2
    mkdir -p "$cell"
    make_cell "$cell" 3 10
    load2_before=$(cut -d' ' -f1-3 /proc/loadavg)
    for ((r = 1; r <= N; r++)); do
        # alternate which tool goes first
        if ((r % 2)); then order=(kabi script); else order=(script kabi); fi
        for tool in "${order[@]}"; do
            [ "$tool" = kabi ] || [ "$have_rhel" = 1 ] || continue
            round "$tool" "$cell" 3 || notes+=("section 2 round $r: the script was stopped after $SCRIPT_TIMEOUT s")
        done
        if [ "$have_rhel" = 1 ] && [ "$r" = 1 ]; then
            : # $new's modules.dep from both tools after the same steps (remove-modules emptied them again)
        fi
        echo "section 2: round $r/$N done" >&2
    done
    load2_after=$(cut -d' ' -f1-3 /proc/loadavg)
    # one extra untimed check: after --add-kernel, new's modules.dep is the same from both tools
    if [ "$have_rhel" = 1 ]; then
        for tool in kabi script; do
            r=$cell/$tool
            rm -rf "$r/lib/modules/$k_old/extra/bench"; mkdir -p "$r/lib/modules/$k_old/extra/bench"
            cp "$cell/base/lib/modules/$k_old/extra/bench"/*.ko "$r/lib/modules/$k_old/extra/bench/"
            find "$r/lib/modules/$k_old/extra/bench" -name '*.ko' | sort >"$cell/list.$tool"
            run_step "$tool" "$r" add-kernel /dev/null "$cell/list.$tool"
        done
        if cmp -s "$cell/kabi/lib/modules/$k_new/modules.dep" "$cell/script/lib/modules/$k_new/modules.dep"; then
            check2="after --add-kernel, $new's modules.dep is byte-identical from both tools"
        else
            check2="MISMATCH: after --add-kernel, $new's modules.dep differs between the script's run and kabi's"
            notes+=("$check2")
        fi
    fi
    cell_rows "$cell" 3 20 >"$tmp/rows2"
    rm -rf "$cell"
fi

scale_rows=()
if want 3 && [ "$SCALE" != 0 ]; then
    script_spent=0 stopped_at=
    load3_before=$(cut -d' ' -f1-3 /proc/loadavg)
    for nk in $SCALE_KERNELS; do
        for nm in $SCALE_MODULES; do
            echo "== section 3: $nk kernels, $nm modules ==" >&2
            cell=$tmp/cell3
            rm -rf "$cell"; mkdir -p "$cell"
            make_cell "$cell" "$nk" $((nm / 2))
            for ((r = 1; r <= N; r++)); do
                round kabi "$cell" "$nk" || true
            done
            skip_why=
            if [ "$have_rhel" != 1 ]; then
                skip_why=n/a
            elif [ -n "$stopped_at" ]; then
                skip_why=time-boxed
            elif [ "$script_spent" -ge "$SCRIPT_BUDGET" ]; then
                skip_why=time-boxed
            else
                t0=$EPOCHREALTIME
                for ((r = 1; r <= SCALE_SCRIPT_ROUNDS; r++)); do
                    if ! round script "$cell" "$nk"; then
                        stopped_at="$nk kernels, $nm modules"
                        break
                    fi
                done
                script_spent=$((script_spent + $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", b - a }')))
            fi
            mapfile -t -O "${#scale_rows[@]}" scale_rows < <(cell_rows "$cell" "$nk" "$nm")
            rm -rf "$cell"
        done
    done
    load3_after=$(cut -d' ' -f1-3 /proc/loadavg)
fi

# --- report --------------------------------------------------------------------------------
echo
echo "setup:"
printf '  %s\n' "${setup_log[@]}"
echo "kabi:    $kabi_src ($kabi_rev; run from a copy)"
echo "kmod:    $kmod_version ($depmod)"
echo "script:  $([ "$have_rhel" = 1 ] && echo "$rhel ($(sha256sum "$rhel" | cut -c1-16)..., $(wc -l <"$rhel") lines)" || echo "$rhel_note")"
echo "machine: $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)); load average $load_start at the start"
echo
[ ! -f "$tmp/report1" ] || { cat "$tmp/report1"; echo; }
table() { # rows on stdin: NK NM MODE KW KC SW SC
    printf '%-8s %-8s %-16s %10s %10s %11s %11s %9s %9s\n' kernels modules mode kabi_wall kabi_cpu script_wall script_cpu wall_x cpu_x
    while read -r nk nm mode kw kc sw sc; do
        printf '%-8s %-8s %-16s %10s %10s %11s %11s %9s %9s\n' "$nk" "$nm" "--$mode" "$kw" "$kc" "$sw" "$sc" \
            "$(case $sw in n/a | time-boxed | '>'*) echo n/a ;; *) ratio0 "$sw" "$kw" ;; esac)" \
            "$(ratio0 "$sc" "$kc")"
    done
}
if [ -f "$tmp/rows2" ]; then
    echo "== 2. the four modes side by side: RHEL's script and kabi, 3 kernels ($k_other, $k_old, $k_new), 20 modules"
    echo "runs:    N=$N rounds, each the four steps in order on each tool's own root (see the header);"
    echo "         medians; wall = fork to wait, cpu = user + system of the tool and its children (s);"
    echo "         x = script / kabi; load average ${load2_before:-?} before, ${load2_after:-?} after"
    if [ "$LIFECYCLE" = rhel ]; then
        echo "         LIFECYCLE=rhel: new's indexes deleted before --remove-kernel, kmod's depmod -a before --add-kernel (untimed)"
    fi
    [ -z "${check2:-}" ] || echo "check:   $check2"
    echo
    table <"$tmp/rows2"
    echo
fi
if [ ${#scale_rows[@]} -gt 0 ]; then
    echo "== 3. scaling: kernels x vendor modules (replicas beyond the 3 real kernels; see the header)"
    echo "runs:    kabi N=$N rounds per cell, the script $SCALE_SCRIPT_ROUNDS; a script step stopped after $SCRIPT_TIMEOUT s shows"
    echo "         as >$SCRIPT_TIMEOUT; 'time-boxed': not run (a smaller cell was stopped, or the script's budget of"
    echo "         $SCRIPT_BUDGET s for this section was spent); load average ${load3_before:-?} before, ${load3_after:-?} after"
    [ -z "${stopped_at:-}" ] || echo "         the script was stopped at: $stopped_at"
    echo
    printf '%s\n' "${scale_rows[@]}" | table
    echo
fi
if [ ${#notes[@]} -gt 0 ]; then
    printf 'note: %s\n' "${notes[@]}"
fi
