#!/usr/bin/env bash
# Fuzz every target for SECONDS each (default 60), one after another, on the stable toolchain
# without a sanitizer (Rust's own checks: bounds, overflow with debug assertions, panics).
# Fails if any target crashes (or does not build); a crashing input is left in
# fuzz/artifacts/<target>/.
#
#   fuzz/run-all.sh [SECONDS]
#
# Logs: fuzz/artifacts/logs/<target>.log. Reproduce one crash:
#   cargo fuzz run --sanitizer none TARGET fuzz/artifacts/TARGET/crash-...
set -euo pipefail
secs=${1:-60}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
./seed.sh
mkdir -p artifacts/logs
# Build every target first, so that a compile error is reported as one and not as a crash.
cargo fuzz build --sanitizer none >artifacts/logs/build.log 2>&1 || {
    tail -n 30 artifacts/logs/build.log >&2
    echo "run-all.sh: the fuzz targets do not build (artifacts/logs/build.log)" >&2
    exit 2
}

failed=()
summary=()
for t in $(cargo fuzz list); do
    mkdir -p "corpus/$t"
    log=artifacts/logs/$t.log
    echo "== $t (${secs}s)"
    start=$(date +%s)
    if cargo fuzz run "$t" --sanitizer none -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
        status=ok
    elif grep -q 'failed to build fuzz script' "$log"; then # the sources changed meanwhile
        status=BUILD
        failed+=("$t")
    else
        status=CRASH
        failed+=("$t")
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true)
    summary+=("$(printf '%-16s %-5s %10s execs %5ss  %s' "$t" "$status" "${execs:-?}" \
        "$(($(date +%s) - start))" "$done_line")")
    echo "${summary[-1]}"
    if [ "$status" = CRASH ]; then
        grep -E -m 5 "panicked|ERROR: libFuzzer|SUMMARY|Test unit written" "$log" || true
    fi
done

echo
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "failed: ${failed[*]} (see fuzz/artifacts/)" >&2
    exit 1
fi
