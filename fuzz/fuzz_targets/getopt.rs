#![no_main]
//! GNU getopt_long emulation on arbitrary argument vectors (split at NUL bytes) and
//! `$MODPROBE_OPTIONS` splitting: never a panic; every operand given is kept.

use kabi::cli::getopt::{HasArg, getopt_long, long, split_modprobe_options};
use libfuzzer_sys::fuzz_target;

const LONG: &[kabi::cli::getopt::LongOpt] = &[
    long("all", HasArg::No, 'a' as i32),
    long("remove", HasArg::No, 'r' as i32),
    long("remove-holders", HasArg::No, 5),
    long("config", HasArg::Required, 'C' as i32),
    long("opt", HasArg::Optional, 'o' as i32),
];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let args: Vec<String> = text.split('\0').map(str::to_string).collect();
    if let Ok(p) = getopt_long("modprobe", &args, "arC:o::", LONG) {
        assert!(p.operands.len() <= args.len());
    }
    let _ = split_modprobe_options(&text);
});
