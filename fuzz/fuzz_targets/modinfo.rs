#![no_main]
//! `module::modinfo::parse` on a raw `.modinfo` section.

use kabi::module::modinfo;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let entries = modinfo::parse(data);
    for e in &entries {
        assert!(!e.key.contains(&0) && !e.value.contains(&0));
        assert!(e.key.len() + e.value.len() <= data.len());
    }
    if let Some(e) = entries.first() {
        let key = String::from_utf8_lossy(&e.key);
        if let Some(v) = modinfo::first(&entries, &key) {
            assert!(modinfo::all(&entries, &key).next().is_some());
            std::hint::black_box(v);
        }
    }
});
