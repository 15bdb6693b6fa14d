#![no_main]
//! kmod's binary index reader on arbitrary bytes: parse, then every kind of lookup; and the
//! writer on entries derived from the input, read back.

use kabi::index::{Index, IndexBuilder};
use libfuzzer_sys::fuzz_target;
use std::hint::black_box;

fuzz_target!(|data: &[u8]| {
    if let Ok(idx) = Index::parse(data) {
        let entries = idx.entries();
        for (k, _, _) in entries.iter().take(64) {
            black_box(idx.search(k));
            black_box(idx.search_all(k));
            black_box(idx.search_wild(k));
        }
        black_box(idx.search_wild("pci:v00008086d00001234sv*"));
    }
    // lines "key value" written and read back must round-trip
    let text = String::from_utf8_lossy(data);
    let mut b = IndexBuilder::new();
    let mut n = 0;
    for (i, line) in text.lines().take(256).enumerate() {
        if let Some((k, v)) = line.split_once(' ')
            && b.insert(k, v, i as u32).is_ok()
        {
            n += 1;
        }
    }
    if n > 0
        && let Ok(bytes) = b.try_write()
    {
        let idx = Index::parse(&bytes).expect("our own index reads back");
        assert_eq!(idx.entries().len(), n);
    }
});
