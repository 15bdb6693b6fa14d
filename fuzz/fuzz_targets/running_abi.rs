#![no_main]
//! The `/run/kabi/running-abi` snapshot reader (`kabi load`'s cached running-kernel ABI) on
//! arbitrary bytes: the header parse, lookups by binary search over the raw lines, the walk
//! over every symbol and an update; the signature policy's boot facts of its `sig_boot` line;
//! and the `/proc/modules` reader. Never a panic; whatever is found by name is found again
//! after a render of what was read, and boot facts read back as they were.

use kabi::load::snapshot::{Snapshot, parse_proc_modules, render};
use kabi::sig::boot::BootFacts;
use libfuzzer_sys::fuzz_target;
use std::hint::black_box;

fuzz_target!(|data: &[u8]| {
    black_box(parse_proc_modules(&String::from_utf8_lossy(data)));
    let Ok(s) = Snapshot::parse(data.to_vec()) else {
        return;
    };
    if let Some(f) = s.header.sig_boot.as_deref().and_then(BootFacts::parse) {
        assert_eq!(BootFacts::parse(&f.render()), Some(f), "boot facts read back");
    }
    let all: Vec<_> = s.symbols().collect();
    for name in ["printk", "_printk", "module_layout", "", "a"] {
        black_box(s.get(name));
    }
    for sym in all.iter().take(32) {
        black_box(s.get(&sym.name));
    }
    let refs: Vec<_> = all.iter().take(4).collect();
    let updated = s.updated(&s.header, &|o: &str| o.len() % 2 == 0, &refs);
    assert!(Snapshot::parse(updated).is_ok(), "an update reads back");
    // a render of what was read is sorted: every symbol it can write is found by name there
    let again = Snapshot::parse(render(&s.header, &all)).expect("a render reads back");
    let writable = |f: &str| !f.contains(['\t', '\n', '\r']);
    for sym in all.iter().take(64) {
        if !sym.name.contains(' ')
            && writable(&sym.name)
            && writable(&sym.owner)
            && writable(&sym.namespace)
        {
            assert!(again.get(&sym.name).is_some(), "{:?} lost", sym.name);
        }
    }
});
