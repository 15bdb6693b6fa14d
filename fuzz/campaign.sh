#!/usr/bin/env bash
# The long fuzz campaign: every target until RUNS executions (default 10^7) or MAXSECS
# seconds (default 1800) each, whichever comes first; prints each target's execution count.
#
#   fuzz/campaign.sh [RUNS] [MAXSECS] [TARGET...]
#
# Logs: fuzz/artifacts/campaign/<target>.log; a crashing input in fuzz/artifacts/<target>/.
set -euo pipefail
runs=${1:-10000000}
secs=${2:-1800}
shift $(($# > 2 ? 2 : $#))
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
./seed.sh
mkdir -p artifacts/campaign
cargo fuzz build --sanitizer none >artifacts/campaign/build.log 2>&1 || {
    tail -n 30 artifacts/campaign/build.log >&2
    exit 2
}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
rc=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    log=artifacts/campaign/$t.log
    start=$(date +%s)
    if cargo fuzz run "$t" --sanitizer none -- -runs="$runs" -max_total_time="$secs" \
        -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
        status=ok
    else
        status=CRASH
        rc=1
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    printf '%-16s %-5s %11s execs %6ss\n' "$t" "$status" "${execs:-?}" "$(($(date +%s) - start))"
done
exit $rc
