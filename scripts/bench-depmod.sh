#!/usr/bin/env bash
# kabi depmod against kmod's depmod on real module trees: wall time, peak RSS, same output.
#
#   scripts/bench-depmod.sh [ROOT...]
#
# ROOT holds lib/modules/<kver>/ (or is the <kver> directory itself). Default: for each
# flavour in $FLAVOURS (default "amd64") the Debian tree printed by
# testdata/fetch-kernel.sh FLAVOUR (cached under ~/.cache/kabi/trees).
#
# Trees. From each ROOT, three trees are prepared under $BENCH_DIR/<kver>/<kind> (default
# BENCH_DIR=${TMPDIR:-/tmp}/kabi-bench-depmod) and reused by later runs when complete (built
# in <kind>.tmp, renamed when done, stamped with the source and module count):
#   plain  the modules as .ko (hardlinks to ROOT's files; compressed sources are decompressed)
#   xz     every module `xz --check=crc32 --lzma2=dict=1MiB -f`, as the kernel's Makefile does
#   zst    every module `zstd -T0 --rm -f -q`, as the kernel's Makefile does
# (compression runs in parallel, xargs -P$(nproc), on each file so zstd records the content
# size as the kernel's build does). Each kind has two roots, <kind>/kmod and <kind>/kabi, with
# hardlinked module files (neither tool writes a module) but their own copies of
# modules.order, modules.builtin and modules.builtin.modinfo (modules.order keeps the .ko
# names, as the kernel writes it) and their own outputs. Module files are never hardlinked to
# anything a tool writes: outputs already in ROOT are not copied.
#
# Commands (the same empty configuration directory for both, so /etc/depmod.d is ignored):
#   kmod       depmod -a -b ROOT -C EMPTY KVER            (outputs removed before each run)
#   kabi cold  kabi depmod -a -b ROOT -C EMPTY KVER       (outputs and modules.kabi-cache
#              removed before each run: every module is read, every file written)
#   kabi warm  the same right after, cache and outputs present, tree unchanged (reads no module)
#   decompress kabi depmod --decompress-only -a -b ROOT KVER (every module read as a cold
#              run's walk reads it: in the directory the walk has open, only the sections a
#              scan needs of a plain ELF file, the others whole and decompressed; nothing
#              parsed or written: the floor of a cold run), when the binary accepts the
#              option (it may be hidden from --help); otherwise n/a. Binaries before
#              commit 7238261 read every file whole, resolved from the root: a higher floor
#              for plain trees (72 instead of 46 ms for Debian's amd64 tree).
# (-j JOBS is added to the kabi commands when JOBS is set.)
#
# Before timing, a verification pass per tree (which also warms the page cache and measures
# peak RSS with GNU /usr/bin/time -f %M) removes every output from both roots, runs kmod, kabi
# cold and kabi warm once each and compares every file kmod wrote (modules.dep, .dep.bin,
# .alias, .alias.bin, .softdep, .symbols, .symbols.bin, .builtin.bin, .builtin.alias.bin,
# .devname and any other modules.* output) with kabi's, after the cold and after the warm run.
# A difference prints a MISMATCH line (repeated at the end) and the run goes on (the outputs
# stay in the roots). modules.weakdep, which kabi writes as kmod 33 does but kmod 30 does not,
# is a note, not a mismatch. Diagnostics of the warm run: its -v summary, and with strace
# installed the number of module files it opens (should be 0).
# Then N rounds per tree: kmod, kabi cold, kabi warm, decompress, in that order each round;
# the table gives the median wall time (bash $EPOCHREALTIME around the command, no wrapper).
# A warning is printed when the load average shows other work competing for the CPUs.
#
# Page cache: hot for every run (the verification pass reads every file first). COLD_CACHE=1
# instead drops the page cache (sync; echo 3 >/proc/sys/vm/drop_caches, machine-wide!) before
# every timed and verification run; needs root and a writable drop_caches, else a note says
# the runs stay hot.
#
# Environment:
#   N=5              rounds per tree
#   TREES="plain xz zst"   which kinds to prepare and time
#   FLAVOURS=amd64   Debian flavours fetched when no ROOT is given (e.g. "amd64 cloud-amd64")
#   COLD_CACHE=0     1: drop the page cache before each run (see above)
#   JOBS=            passed to kabi as -j JOBS when set (default: kabi's own)
#   KABI=            a kabi binary to use instead of scripts/build-shipped.sh's (the static one
#                    the packages install)
#   BENCH_DIR        where the trees are prepared (see above); REBUILD=1 prepares them anew
# If the kabi binary has no `depmod` subcommand yet, only kmod is timed (kabi columns n/a).
# Needs kmod (depmod), xz, zstd and GNU time (installed with apt-get when root and missing).
set -euo pipefail
export LC_ALL=C
export PATH="$PATH:/usr/sbin:/sbin"

N=${N:-5}
TREES=${TREES:-plain xz zst}
FLAVOURS=${FLAVOURS:-amd64}
COLD_CACHE=${COLD_CACHE:-0}
JOBS=${JOBS:-}
REBUILD=${REBUILD:-0}
BENCH_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}/kabi-bench-depmod}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cmdline="$0${*:+ $*}"

die() { echo "bench-depmod.sh: $*" >&2; exit 1; }
note() { echo "bench-depmod.sh: $*" >&2; }

# --- prerequisites -------------------------------------------------------------------------
[[ $N =~ ^[1-9][0-9]*$ ]] || die "N must be a positive integer"
[ -z "$JOBS" ] || [[ $JOBS =~ ^[1-9][0-9]*$ ]] || die "JOBS must be a positive integer"
for k in $TREES; do
    case $k in plain | xz | zst) ;; *) die "TREES: unknown kind '$k' (plain, xz, zst)" ;; esac
done
command -v depmod >/dev/null || die "kmod's depmod is not installed (Debian: apt-get install kmod)"
kmod_version=$(depmod --version 2>/dev/null | head -1)
case $kmod_version in
    kmod*) ;;
    *) die "depmod is not kmod's (depmod --version: '$kmod_version')" ;;
esac
kmod_features=$(depmod --version 2>/dev/null | sed -n 2p)
for t in xz zstd; do
    command -v "$t" >/dev/null || die "$t is not installed (Debian: apt-get install xz-utils zstd)"
done
if ! /usr/bin/time -f %M true >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing GNU time (apt-get install time)" >&2
        apt-get install -y -qq time >/dev/null 2>&1 \
            || { apt-get update -qq >/dev/null 2>&1; apt-get install -y -qq time >/dev/null 2>&1; } \
            || die "apt-get install time failed"
    fi
    /usr/bin/time -f %M true >/dev/null 2>&1 || die "GNU time (/usr/bin/time) is missing: apt-get install time"
fi

page_cache="hot (every file read by the verification pass before timing)"
drop_caches=0
if [ "$COLD_CACHE" = 1 ]; then
    if [ "$(id -u)" = 0 ] && (sync && echo 3 >/proc/sys/vm/drop_caches) 2>/dev/null; then
        drop_caches=1
        page_cache="cold (sync; echo 3 >/proc/sys/vm/drop_caches before every run)"
    else
        note "COLD_CACHE=1 needs root and a writable /proc/sys/vm/drop_caches: runs stay hot"
        page_cache="hot (COLD_CACHE=1 asked, but drop_caches is not writable here)"
    fi
fi
drop() { if [ "$drop_caches" = 1 ]; then sync; echo 3 >/proc/sys/vm/drop_caches; fi; }

# --- kabi ----------------------------------------------------------------------------------
if [ -n "${KABI:-}" ]; then
    kabi=$KABI
else
    echo "building kabi as shipped (scripts/build-shipped.sh) ..." >&2
    kabi=$(bash "$repo/scripts/build-shipped.sh") || die "scripts/build-shipped.sh failed"
fi
[ -x "$kabi" ] || die "no kabi binary (KABI is not executable)"
kabi_src=$kabi
kabi_rev=$(cd "$repo" && git describe --always --dirty 2>/dev/null || echo '?')
# Run a snapshot: a rebuild of the binary during the benchmark (another cargo build)
# must not mix two binaries (and a new binary may rightly ignore the old one's scan cache).
snap=$(mktemp -d "${TMPDIR:-/tmp}/bench-depmod-bin.XXXXXX")
trap 'rm -rf "$snap"' EXIT
cp "$kabi" "$snap/kabi"
kabi=$snap/kabi
have_kabi=0 have_decomp=0
if "$kabi" depmod --help >/dev/null 2>&1; then
    have_kabi=1
    # the option may be hidden from --help: clap accepts it before --help only if it exists
    if "$kabi" depmod --help 2>&1 | grep -q -- '--decompress-only' \
        || "$kabi" depmod --decompress-only --help >/dev/null 2>&1; then have_decomp=1; fi
else
    note "$kabi has no working 'depmod' subcommand yet: only kmod is timed"
fi
kabi_jobs=()
[ -z "$JOBS" ] || kabi_jobs=(-j "$JOBS")

# --- the source trees ----------------------------------------------------------------------
roots=("$@")
if [ ${#roots[@]} -eq 0 ]; then
    for f in $FLAVOURS; do
        r=$("$repo/testdata/fetch-kernel.sh" "$f") || die "testdata/fetch-kernel.sh $f failed"
        roots+=("$r")
    done
fi
kdir_of() { # ROOT: print ROOT's lib/modules/<kver> directory
    local root=$1 kdirs
    [ -d "$root" ] || die "$root: not a directory"
    if [ -d "$root/kernel" ]; then
        (cd "$root" && pwd)
        return
    fi
    shopt -s nullglob
    kdirs=("$root"/lib/modules/*/kernel)
    shopt -u nullglob
    [ ${#kdirs[@]} -ge 1 ] || die "$root: no lib/modules/<kver>/kernel"
    [ ${#kdirs[@]} -eq 1 ] || die "$root: several kernels under lib/modules; pass lib/modules/<kver>"
    (cd "$(dirname "${kdirs[0]}")" && pwd)
}

mkdir -p "$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
empty="$BENCH_DIR/empty-depmod.d"
mkdir -p "$empty"
[ -z "$(ls -A "$empty")" ] || die "$empty must be empty"

# Files a depmod reads; every other modules.* in lib/modules/<kver> is an output.
is_input() { case $1 in modules.order | modules.builtin | modules.builtin.modinfo) return 0 ;; esac; return 1; }
OUTPUTS=(modules.dep modules.dep.bin modules.alias modules.alias.bin modules.softdep
    modules.symbols modules.symbols.bin modules.builtin.bin modules.builtin.alias.bin modules.devname)
CACHE=modules.kabi-cache
# Written by kabi but not by kmod 30 (kmod 33 writes it): a note, not a mismatch.
KNOWN_EXTRA=modules.weakdep

remove_outputs() { # DIR: remove every depmod output (and kabi's cache) from DIR
    local f
    for f in "$1"/modules.*; do
        [ -e "$f" ] || continue
        is_input "$(basename "$f")" || rm -f "$f"
    done
}
modules_in() { # DIR: NUL-separated module paths relative to DIR, sorted
    (cd "$1" && find . -type f \( -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst' -o -name '*.ko.gz' \) \
        -print0 | sort -z)
}

# prepare KDIR KVER KIND: print the tree directory holding kmod/ and kabi/ roots
prepare() {
    local src=$1 kver=$2 kind=$3 dir tmp mods nmods stamp r f
    dir="$BENCH_DIR/$kver/$kind"
    nmods=$(modules_in "$src" | tr -cd '\0' | wc -c)
    [ "$nmods" -gt 0 ] || die "$src: no modules"
    stamp="format=1 kind=$kind src=$src modules=$nmods"
    if [ "$REBUILD" != 1 ] && [ -f "$dir/.complete" ] && [ "$(cat "$dir/.complete")" = "$stamp" ]; then
        echo "$dir"
        return
    fi
    note "preparing $kver/$kind in $dir ($nmods modules) ..."
    tmp="$dir.tmp"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    mods="$tmp/mods"
    # 1. hardlinks of the source (a full copy across file systems), without its outputs;
    #    the inputs become real copies so nothing a tool may write shares an inode with ROOT
    if ! cp -al "$src" "$mods" 2>/dev/null; then
        rm -rf "$mods"
        note "cannot hardlink from $src (another file system?): copying"
        cp -a "$src" "$mods"
    fi
    rm -f "$mods/build" "$mods/source"
    remove_outputs "$mods"
    for f in modules.order modules.builtin modules.builtin.modinfo; do
        if [ -f "$src/$f" ]; then rm -f "$mods/$f"; cp "$src/$f" "$mods/$f"; fi
    done
    # 2. plain .ko everywhere (decompressing a compressed source in place of its hardlink)
    (cd "$mods" && find . -type f -name '*.ko.xz' -print0 | xargs -0 -r -P"$(nproc)" -n 32 xz -d -f -q)
    (cd "$mods" && find . -type f -name '*.ko.zst' -print0 | xargs -0 -r -P"$(nproc)" -n 32 zstd -d --rm -f -q)
    (cd "$mods" && find . -type f -name '*.ko.gz' -print0 | xargs -0 -r -P"$(nproc)" -n 32 gzip -d -f -q)
    # 3. compress as the kernel's modules_install does (-f: the files are hardlinks; the
    #    compressor writes a new file and unlinks the hardlink, the source is untouched)
    case $kind in
        xz) (cd "$mods" && find . -type f -name '*.ko' -print0 \
            | xargs -0 -r -P"$(nproc)" -n 16 xz --check=crc32 --lzma2=dict=1MiB -f) ;;
        zst) (cd "$mods" && find . -type f -name '*.ko' -print0 \
            | xargs -0 -r -P"$(nproc)" -n 16 zstd -T0 --rm -f -q) ;;
    esac
    [ "$(modules_in "$mods" | tr -cd '\0' | wc -c)" = "$nmods" ] || die "$tmp: module count changed while preparing"
    # 4. one root per tool: module files hardlinked, inputs copied
    for r in kmod kabi; do
        mkdir -p "$tmp/$r/lib/modules"
        cp -al "$mods" "$tmp/$r/lib/modules/$kver"
        for f in modules.order modules.builtin modules.builtin.modinfo; do
            if [ -f "$mods/$f" ]; then rm -f "$tmp/$r/lib/modules/$kver/$f"; cp "$mods/$f" "$tmp/$r/lib/modules/$kver/$f"; fi
        done
    done
    rm -rf "$mods"
    echo "$stamp" >"$tmp/.complete"
    rm -rf "$dir"
    mv "$tmp" "$dir"
    echo "$dir"
}

# --- commands ------------------------------------------------------------------------------
# Each: ROOT KVER OUT RSSFILE(or empty); stdout+stderr to OUT; returns the tool's exit code.
under_time() { # RSSFILE CMD...
    local rss=$1; shift
    if [ -n "$rss" ]; then /usr/bin/time -o "$rss" -f %M "$@"; else "$@"; fi
}
run_kmod() { under_time "$4" depmod -a -b "$1" -C "$empty" "$2" >"$3" 2>&1; }
run_cold() {
    rm -f "$1/lib/modules/$2/$CACHE"
    under_time "$4" "$kabi" depmod -a -b "$1" -C "$empty" "${kabi_jobs[@]}" "$2" >"$3" 2>&1
}
run_warm() { under_time "$4" "$kabi" depmod -a -b "$1" -C "$empty" "${kabi_jobs[@]}" "$2" >"$3" 2>&1; }
decomp_args=(-b)
run_decomp() { under_time "$4" "$kabi" depmod --decompress-only "${kabi_jobs[@]}" "${decomp_args[@]}" "$1" "$2" >"$3" 2>&1; }

# compare LABEL KMODDIR KABIDIR: MISMATCH lines for every output that differs; returns 1 if any
compare() {
    local label=$1 a=$2 b=$3 f name where bad=0 files=()
    declare -A seen=()
    for f in "${OUTPUTS[@]}"; do files+=("$f"); seen[$f]=1; done
    for f in "$a"/modules.*; do
        name=$(basename "$f")
        if [ ! -e "$f" ] || is_input "$name" || [ -n "${seen[$name]:-}" ]; then continue; fi
        files+=("$name"); seen[$name]=1
    done
    for name in "${files[@]}"; do
        if [ ! -e "$a/$name" ] && [ ! -e "$b/$name" ]; then
            continue
        elif [ ! -e "$a/$name" ]; then
            echo "MISMATCH $label: $name: written by kabi, not by kmod"; bad=1
        elif [ ! -e "$b/$name" ]; then
            echo "MISMATCH $label: $name: written by kmod, not by kabi"; bad=1
        elif ! cmp -s "$a/$name" "$b/$name"; then
            where=$(cmp "$a/$name" "$b/$name" 2>&1 | head -1 | sed "s|^cmp: ||; s|$a/$name|kmod's|g; s|$b/$name|kabi's|g; s|^kmod's kabi's differ: |first difference at |") || true
            echo "MISMATCH $label: $name: $where (kmod $(wc -c <"$a/$name") bytes, kabi $(wc -c <"$b/$name") bytes)"
            bad=1
        fi
    done
    for f in "$b"/modules.*; do
        name=$(basename "$f")
        if [ ! -e "$f" ] || is_input "$name" || [ "$name" = "$CACHE" ] || [ -n "${seen[$name]:-}" ]; then continue; fi
        if [ "$name" = "$KNOWN_EXTRA" ]; then continue; fi
        echo "MISMATCH $label: $name: written by kabi, not by kmod"; bad=1
    done
    return $bad
}

ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f", b - a }'; }
median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.4f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { if [ "$1" = n/a ] || [ "$2" = n/a ]; then echo n/a; else awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; fi; }
secs() { if [ "$1" = n/a ]; then echo n/a; else awk -v a="$1" 'BEGIN { printf "%.3f", a }'; fi; }
mib() { if [ -z "$1" ] || [ "$1" = n/a ]; then echo n/a; else awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; fi; }

# --- run -----------------------------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/bench-depmod.XXXXXX")
trap 'rm -rf "$work" "$snap"' EXIT
: >"$work/mismatches"
: >"$work/failures"

declare -A med rss info
rows=()
mismatches=0
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for root in "${roots[@]}"; do
    kdir=$(kdir_of "$root")
    kver=$(basename "$kdir")
    for kind in $TREES; do
        dir=$(prepare "$kdir" "$kver" "$kind")
        row="$kver/$kind"
        rows+=("$row")
        km="$dir/kmod" ka="$dir/kabi"
        kmd="$km/lib/modules/$kver" kad="$ka/lib/modules/$kver"
        nm=$(modules_in "$kmd" | tr -cd '\0' | wc -c)
        sz=$(find "$kmd" -type f \( -name '*.ko' -o -name '*.ko.*' \) -printf '%s\n' | awk '{ s += $1 } END { printf "%.0f", s / 1e6 }')
        info[$row]="$nm modules, $sz MB"

        # verification pass: outputs, RSS, warm page cache
        echo "== $row: verification pass ($dir)" >&2
        remove_outputs "$kmd"
        remove_outputs "$kad"
        drop
        rc=0; run_kmod "$km" "$kver" "$work/kmod.out" "$work/kmod.rss" || rc=$?
        [ "$rc" = 0 ] || echo "$row kmod depmod: exit $rc (verification pass)" >>"$work/failures"
        [ "$rc" = 0 ] || note "$row: kmod depmod exited $rc: $(head -3 "$work/kmod.out")"
        [ ! -s "$work/kmod.out" ] || note "$row: kmod depmod said: $(head -3 "$work/kmod.out")"
        rss[$row,kmod]=$(tail -1 "$work/kmod.rss")
        if [ "$have_kabi" = 1 ]; then
            drop
            rc=0; run_cold "$ka" "$kver" "$work/cold.out" "$work/cold.rss" || rc=$?
            [ "$rc" = 0 ] || echo "$row kabi depmod (cold): exit $rc (verification pass)" >>"$work/failures"
            [ "$rc" = 0 ] || note "$row: kabi depmod (cold) exited $rc: $(head -3 "$work/cold.out")"
            [ ! -s "$work/cold.out" ] || note "$row: kabi depmod (cold) said: $(head -3 "$work/cold.out")"
            rss[$row,cold]=$(tail -1 "$work/cold.rss")
            compare "$row cold" "$kmd" "$kad" >"$work/cmp" || mismatches=$((mismatches + 1))
            cat "$work/cmp" >>"$work/mismatches"; cat "$work/cmp"
            [ -e "$kad/$CACHE" ] || note "$row: the cold run wrote no $CACHE"
            drop
            rc=0; run_warm "$ka" "$kver" "$work/warm.out" "$work/warm.rss" || rc=$?
            [ "$rc" = 0 ] || echo "$row kabi depmod (warm): exit $rc (verification pass)" >>"$work/failures"
            [ "$rc" = 0 ] || note "$row: kabi depmod (warm) exited $rc: $(head -3 "$work/warm.out")"
            rss[$row,warm]=$(tail -1 "$work/warm.rss")
            compare "$row warm" "$kmd" "$kad" >"$work/cmp" || mismatches=$((mismatches + 1))
            cat "$work/cmp" >>"$work/mismatches"; cat "$work/cmp"
            # the warm run again with -v: how many modules were read, how many came from the cache
            "$kabi" depmod -v -a -b "$ka" -C "$empty" "${kabi_jobs[@]}" "$kver" >"$work/warm.v" 2>&1 || true
            v=$(sed -n 's/^depmod: //p' "$work/warm.v" | tail -1 | sed 's/; written:.*//') || true
            [ -z "$v" ] || info[$row]+="; warm -v: \"$v\""
            if [ -e "$kad/$KNOWN_EXTRA" ] && [ ! -e "$kmd/$KNOWN_EXTRA" ]; then
                info[$row]+="; kabi also writes $KNOWN_EXTRA ($(wc -c <"$kad/$KNOWN_EXTRA") bytes; kmod 30 does not, kmod 33 does)"
            fi
            if command -v strace >/dev/null; then
                # the warm run again, counting the module files it opens (cache still valid)
                strace -f -qq -e trace=open,openat,openat2 -o "$work/warm.strace" \
                    "$kabi" depmod -a -b "$ka" -C "$empty" "${kabi_jobs[@]}" "$kver" >/dev/null 2>&1 || true
                opened=$(grep -cE '\.ko(\.xz|\.zst|\.gz)?"' "$work/warm.strace" || true)
                info[$row]+="; warm run opens $opened module files (strace)"
                [ "$opened" = 0 ] || note "$row: the warm run opened $opened module files (expected 0)"
            fi
            decomp_ok=0
            if [ "$have_decomp" = 1 ]; then
                drop
                ok=0
                for v in "-a -b" "-b"; do
                    read -ra decomp_args <<<"$v"
                    rc=0; run_decomp "$ka" "$kver" "$work/decomp.out" "$work/decomp.rss" || rc=$?
                    if [ "$rc" = 0 ]; then ok=1; break; fi
                done
                if [ "$ok" = 1 ]; then
                    decomp_ok=1
                    rss[$row,decomp]=$(tail -1 "$work/decomp.rss")
                else
                    note "$row: kabi depmod --decompress-only failed ($rc): $(head -3 "$work/decomp.out")"
                fi
            fi
        fi

        # timed rounds
        declare -A times=()
        for ((r = 1; r <= N; r++)); do
            remove_outputs "$kmd"
            drop
            t0=$EPOCHREALTIME; rc=0; run_kmod "$km" "$kver" "$work/run.out" "" || rc=$?; t1=$EPOCHREALTIME
            [ "$rc" = 0 ] || { note "$row round $r: kmod exited $rc"; echo "$row kmod: exit $rc" >>"$work/failures"; }
            times[kmod]+="$(ms "$t0" "$t1") "
            if [ "$have_kabi" = 1 ]; then
                remove_outputs "$kad" # and the cache: everything is scanned and written
                drop
                t0=$EPOCHREALTIME; rc=0; run_cold "$ka" "$kver" "$work/run.out" "" || rc=$?; t1=$EPOCHREALTIME
                [ "$rc" = 0 ] || { note "$row round $r: kabi cold exited $rc"; echo "$row kabi cold: exit $rc" >>"$work/failures"; }
                times[cold]+="$(ms "$t0" "$t1") "
                drop
                t0=$EPOCHREALTIME; rc=0; run_warm "$ka" "$kver" "$work/run.out" "" || rc=$?; t1=$EPOCHREALTIME
                [ "$rc" = 0 ] || { note "$row round $r: kabi warm exited $rc"; echo "$row kabi warm: exit $rc" >>"$work/failures"; }
                times[warm]+="$(ms "$t0" "$t1") "
                if [ "$decomp_ok" = 1 ]; then
                    drop
                    t0=$EPOCHREALTIME; rc=0; run_decomp "$ka" "$kver" "$work/run.out" "" || rc=$?; t1=$EPOCHREALTIME
                    [ "$rc" = 0 ] || { note "$row round $r: kabi --decompress-only exited $rc"; echo "$row kabi --decompress-only: exit $rc" >>"$work/failures"; }
                    times[decomp]+="$(ms "$t0" "$t1") "
                fi
            fi
            echo "$row: round $r/$N done" >&2
        done
        for w in kmod cold warm decomp; do
            med[$row,$w]=$(echo "${times[$w]:-}" | median)
            info[$row,$w]=${times[$w]:-}
        done
    done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
busy=$(awk -v a="${load_before%% *}" -v b="${load_after%% *}" -v n="$(nproc)" 'BEGIN { print (a > n / 2 || b > n / 2) ? 1 : 0 }')

# --- report --------------------------------------------------------------------------------
echo
echo "command: $cmdline  (N=$N TREES=\"$TREES\"${JOBS:+ JOBS=$JOBS}$([ "$COLD_CACHE" != 1 ] || echo ' COLD_CACHE=1'))"
echo "machine: $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo); load average $load_before before, $load_after after"
if [ "$busy" = 1 ]; then
    echo "WARNING: the 1-minute load average exceeded nproc/2 before or after timing: other work"
    echo "         competed for the CPUs, the times are unreliable (rerun on a quiet machine)"
fi
echo "kmod:    $kmod_version ($kmod_features), $(command -v depmod)"
echo "kabi:    $kabi_src ($kabi_rev when the benchmark started; run from a copy)$([ "$have_kabi" = 1 ] || echo ' -- no depmod subcommand: kabi not timed')"
echo "xz:      $(xz --version | head -1); zstd: $(zstd --version | sed 's/^\*\*\* //; s/, by.*//')"
echo "config:  -C $empty (empty) for both tools${JOBS:+; kabi -j $JOBS}"
echo "cache:   page cache $page_cache"
echo "runs:    N=$N per command, median wall time in seconds; per round: kmod, kabi cold"
echo "         (modules.kabi-cache removed), kabi warm (cache present), decompress-only"
echo "trees:   $BENCH_DIR/<kver>/<kind>/{kmod,kabi}"
for row in "${rows[@]}"; do echo "         $row: ${info[$row]}"; done
echo
printf '%-26s %8s %10s %9s %10s %9s %10s %11s %18s\n' tree "kmod_s" "kabi_cold" "kmod/cold" "kabi_warm" \
    "kmod/warm" "decomp_s" "cold/decomp" "RSS_MiB kmod/kabi"
for row in "${rows[@]}"; do
    k=${med[$row,kmod]} c=${med[$row,cold]} w=${med[$row,warm]} d=${med[$row,decomp]}
    printf '%-26s %8s %10s %9s %10s %9s %10s %11s %18s\n' "$row" "$(secs "$k")" "$(secs "$c")" "$(ratio "$k" "$c")" \
        "$(secs "$w")" "$(ratio "$k" "$w")" "$(secs "$d")" "$(ratio "$c" "$d")" \
        "$(mib "${rss[$row,kmod]:-}")/$(mib "${rss[$row,cold]:-}")"
done
if [ "$have_kabi" = 1 ]; then
    echo
    echo "peak RSS (MiB) of the verification pass: kmod, kabi cold, kabi warm, decompress-only"
    for row in "${rows[@]}"; do
        printf '  %-26s %8s %8s %8s %8s\n' "$row" "$(mib "${rss[$row,kmod]:-}")" "$(mib "${rss[$row,cold]:-}")" \
            "$(mib "${rss[$row,warm]:-}")" "$(mib "${rss[$row,decomp]:-}")"
    done
fi
echo
echo "all times (s):"
for row in "${rows[@]}"; do
    for w in kmod cold warm decomp; do
        [ -z "${info[$row,$w]:-}" ] || printf '  %-26s %-7s %s\n' "$row" "$w" "${info[$row,$w]}"
    done
done
echo
if [ "$have_kabi" != 1 ]; then
    echo "outputs: not compared (kabi has no depmod subcommand)"
elif [ "$mismatches" = 0 ]; then
    echo "outputs: kabi's identical to kmod's for every tree, after the cold and the warm run"
else
    echo "outputs: MISMATCH in $mismatches comparison(s) (files kept in the trees):"
    sed 's/^/  /' "$work/mismatches"
fi
if [ -s "$work/failures" ]; then
    echo
    echo "failed runs (non-zero exit; their times are still counted):"
    sort "$work/failures" | uniq -c | sed 's/^/  /'
fi
