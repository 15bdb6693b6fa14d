#![no_main]
//! The text formats of a kernel's ABI: Module.symvers and /proc/kallsyms.

use libfuzzer_sys::fuzz_target;
use std::hint::black_box;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(syms) = kabi::kernel::symvers::parse(text) {
        for s in &syms {
            black_box(s.symvers_line());
        }
    }
    if let Ok(ks) = kabi::kernel::kallsyms::parse(text) {
        black_box(ks.exports_by_name());
        black_box(ks.addresses_hidden());
    }
});
