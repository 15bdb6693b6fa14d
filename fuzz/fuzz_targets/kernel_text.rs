#![no_main]
//! The text formats of a kernel's ABI: Module.symvers and /proc/kallsyms.

use libfuzzer_sys::fuzz_target;
use std::hint::black_box;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let all = kabi::kernel::symvers::parse(text);
    if let Ok(syms) = &all {
        for s in syms {
            black_box(s.symvers_line());
        }
    }
    // keeping some names: the same file refused, or exactly those of its symbols kept
    let keep = |n: &str| n.len() % 2 == 0;
    match (&all, kabi::kernel::symvers::parse_kept(text, &keep)) {
        (Ok(all), Ok(kept)) => {
            let want: Vec<_> = all.iter().filter(|s| keep(&s.name)).cloned().collect();
            assert_eq!(want, kept);
        }
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        (a, b) => panic!("parse {a:?}, parse_kept {b:?}"),
    }
    if let Ok(ks) = kabi::kernel::kallsyms::parse(text) {
        black_box(ks.exports_by_name());
        black_box(ks.addresses_hidden());
    }
});
