#![no_main]
//! modprobe.d text and the kernel command line on arbitrary input: parsed, never a panic;
//! every option entry belongs to a normalized name.

use kabi::load::config::{ModprobeConfig, split_cmdline};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut c = ModprobeConfig::default();
    c.parse(&text);
    c.apply_cmdline(&text);
    let _ = split_cmdline(&text);
    assert!(c.options.keys().all(|k| !k.contains('-')));
});
