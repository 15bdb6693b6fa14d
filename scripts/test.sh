#!/usr/bin/env bash
# Everything CI checks: install what the tests need, then format, lints and all tests.
# The differential tests fetch real Debian kernels (cached in ~/.cache/kabi) and compare with
# Debian's kmod; with CI=true a missing tool or package is a failure, never a skip.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
# a CI run builds everything once: incremental state would only take disk (0.7 GB)
if [ "${CI:-}" = true ]; then export CARGO_INCREMENTAL=0; fi
cargo fmt --all -- --check
cargo clippy --all-targets --features crash-injection,gen-docs --quiet -- -D warnings
cargo clippy --all-targets --quiet -- -D warnings
# the guest measurements' code (compiled only with their cfgs, below), in their target directory
RUSTFLAGS='--cfg kabi_touch --cfg kabi_phases' CARGO_TARGET_DIR=target/touch \
    cargo clippy --all-targets --quiet -- -D warnings
# crash-injection: the tests kill kabi at each of its crash points (KABI_CRASH_AT=N);
# gen-docs: the man pages and completions of dist/ are checked against the command line
cargo test --all-targets --features crash-injection,gen-docs
# Two measurements in a real kernel under qemu, built once in a target directory of their own
# (each guest binary is built with only its own cfg, in its own directory; a cfg keeps every
# symbol name, so both are laid out by build/hot-functions.txt as the shipped binary is):
# - where one `kabi load` spends its time, phase by phase (the marks are compiled in only with
#   --cfg kabi_phases; see src/phase.rs);
# - the functions a load runs, against build/hot-functions.txt (--cfg kabi_touch builds a
#   kabi that reports its code pages).
RUSTFLAGS='--cfg kabi_touch --cfg kabi_phases' CARGO_TARGET_DIR=target/touch \
    cargo test --release --test qemu_phases --test qemu_code_touch -- --nocapture
# every fuzz target built and run briefly (a crash fails the run; the long campaign is
# `bash fuzz/run-all.sh 600`)
bash fuzz/run-all.sh 5
