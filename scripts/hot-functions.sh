#!/usr/bin/env bash
# Regenerate build/hot-functions.txt: the functions one `kabi load` runs, in the order the
# linker is to place them first (`--symbol-ordering-file`, lld: the toolchain's default
# linker on x86_64 Linux), so that a load touches a few 64 KiB windows of the static
# binary's code instead of dozens. Each window costs a page fault on first touch (the kernel
# maps 64 KiB of a file around a fault); under qemu's TCG a fault costs 12-18 microseconds
# (tests/qemu_code_touch.rs; tests/code_order.rs checks the file against the binary).
#
#   scripts/hot-functions.sh          (needs root, valgrind, qemu and what
#                                      scripts/bench-load.sh and the qemu tests need)
#
# Two sources, merged:
# 1. The guest: tests/qemu_code_touch.rs (built with --cfg kabi_touch) boots the Debian cloud
#    kernel with a kabi whose every function starts a page, and lists the functions whose
#    pages each kind of load ran (predicted, --no-check, the kernel's own module, already
#    loaded, a plan, as modprobe). They come first: those every kind ran, then those of some
#    kinds, then those of a predicted load only, each group in callgrind's order of cost.
# 2. The host: scripts/bench-load.sh with N=1, its kabi replaced by a wrapper that runs the
#    release binary under callgrind (names not demangled); every function callgrind saw run,
#    plus the kernel-file fast path (`kabi::root::kernelfs`, which valgrind's missing
#    `openat2` hides), in the order of their cost (the hottest first), after the guest's.
# Symbols the binary does not define are dropped.
set -euo pipefail
export LC_ALL=C
repo=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "hot-functions.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (scripts/bench-load.sh does)"
command -v valgrind >/dev/null || die "valgrind is missing: apt-get install valgrind"
command -v nm >/dev/null || die "nm (binutils) is missing"

target=x86_64-unknown-linux-gnu
out=$(mktemp -d "${TMPDIR:-/tmp}/kabi-hot.XXXXXX")
trap 'rm -rf "$out"' EXIT
# built as the guests' and the packages' binary is (static, whole-program, debug info
# stripped, the symbol table kept), without an order: the names of kabi's functions carry a
# hash of the build's profile, which must be theirs (a link argument does not change it)
(cd "$repo" && RUSTFLAGS='-C target-feature=+crt-static -C relocation-model=static' \
    CARGO_TARGET_DIR="$repo/target/hot" CARGO_PROFILE_RELEASE_DEBUG=0 \
    CARGO_PROFILE_RELEASE_STRIP=debuginfo \
    cargo build --release --quiet --bin kabi --target "$target") || die "cargo build failed"
bin=$repo/target/hot/$target/release/kabi
cat >"$out/kabi" <<EOF
#!/bin/sh
exec valgrind --tool=callgrind --demangle=no --callgrind-out-file="$out/cg.%p" "$bin" "\$@"
EOF
chmod +x "$out/kabi"
KABI=$out/kabi N=1 bash "$repo/scripts/bench-load.sh" 1 >"$out/bench.log" 2>&1 ||
    { cat "$out/bench.log" >&2; die "scripts/bench-load.sh failed"; }
ls "$out"/cg.* >/dev/null 2>&1 || die "callgrind wrote no profile"

# functions of `.text` only: the linker orders nothing into `.init`, `.fini` or the C
# library's `__libc_freeres_fn`
nm --defined-only --format=sysv "$bin" | awk -F '|' '{ for (i = 1; i <= NF; i++) gsub(/^ +| +$/, "", $i) } $3 ~ /^[tTwW]$/ && $7 == ".text" {print $1}' |
    sort -u >"$out/defined"
# inclusive cost per function name, summed over the runs: `fn=(id) name` defines an id, the
# lines that follow until the next fn= are its own cost ("line cost" pairs)
awk '
    /^fn=\(/ {
        id = $1; sub(/^fn=/, "", id)
        name = $0; sub(/^fn=\([0-9]+\) ?/, "", name)
        if (name != "") names[id] = name
        cur = names[id]; next
    }
    /^(cfn|cfi|cfl|calls|fl|fi|fe|ob|cob)=/ { if ($0 ~ /^calls=/) skip = 1; next }
    /^[0-9+*-]/ { if (skip) { skip = 0; next } if (cur != "") cost[cur] += $2; next }
    END { for (n in cost) print cost[n], n }
' "$out"/cg.* | sort -k1,1nr | awk '{print $2}' >"$out/by-cost"
{
    grep -vE '^(0x|\(below)' "$out/by-cost"
    # (the same symbols in the same order, mangled and demangled)
    paste -d '\t' <(nm -p --defined-only "$bin") <(nm -p --defined-only -C "$bin") |
        awk -F '\t' '$2 ~ /kabi::root::kernelfs/ {split($1, m, " "); print m[3]}'
} | awk '!seen[$0]++' | grep -Fxf "$out/defined" >"$out/host"

# the guest's functions (FUNCTION<TAB>KINDS), in a target directory of their own: the cfg
# rebuilds everything
(cd "$repo" && RUSTFLAGS='--cfg kabi_touch' CARGO_TARGET_DIR="$repo/target/touch" \
    KABI_TOUCH_OUT="$out/guest" CI=true \
    cargo test --release --quiet --test qemu_code_touch -- --nocapture) >"$out/guest.log" 2>&1 ||
    { cat "$out/guest.log" >&2; die "tests/qemu_code_touch.rs failed"; }
[ -s "$out/guest" ] || die "the guest listed no functions"
# (the kinds of load: as many as the most any one function was run by)
kinds=$(awk -F '\t' '{ n = split($2, k, ","); if (n > m) m = n } END { print m }' "$out/guest")
awk -F '\t' -v kinds="$kinds" '
    FNR == NR { rank[$1] = FNR; next }
    {
        n = split($2, k, ",")
        group = (n == kinds) ? 0 : ($2 == "predicted") ? 2 : 1
        printf "%d\t%09d\t%s\n", group, ($1 in rank) ? rank[$1] : 999999999, $1
    }
' "$out/host" "$out/guest" | sort -t "$(printf '\t')" -k1,1n -k2,2n -k3,3 | cut -f3 >"$out/guest.sorted"
cat "$out/guest.sorted" "$out/host" | awk '!seen[$0]++' | grep -Fxf "$out/defined" >"$out/hot"
n=$(wc -l <"$out/hot")
[ "$n" -ge 100 ] || die "only $n hot functions found: the profile is not what it should be"
mkdir -p "$repo/build"
{
    echo "# The functions one 'kabi load' runs, hottest first: the linker places them first"
    echo "# (--symbol-ordering-file). Made by scripts/hot-functions.sh; checked by"
    echo "# tests/code_order.rs. $n symbols: $(wc -l <"$out/guest.sorted") run in the guest (tests/qemu_code_touch.rs),"
    echo "# then those only callgrind saw on the host."
    cat "$out/hot"
} >"$repo/build/hot-functions.txt"
echo "build/hot-functions.txt: $n functions"
