#![no_main]
//! kmod's binary index reader on arbitrary bytes: parse, then every kind of lookup; and the
//! writer on entries derived from the input, read back; the sorted writer on the same
//! entries must write the same bytes and refuse the same ones.

use kabi::index::{Index, IndexBuilder, SortedIndex};
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
    let mut s = SortedIndex::new();
    let mut n = 0;
    for (i, line) in text.lines().take(256).enumerate() {
        if let Some((k, v)) = line.split_once(' ') {
            // priorities that repeat, so equal ones are ordered by insertion
            let added = b.insert(k, v, (i % 4) as u32);
            assert_eq!(added, s.insert(k, v, (i % 4) as u32));
            n += usize::from(added.is_ok());
        }
    }
    let written = b.try_write();
    assert_eq!(written, s.try_write(), "the sorted writer differs");
    if n > 0
        && let Ok(bytes) = written
    {
        let idx = Index::parse(&bytes).expect("our own index reads back");
        assert_eq!(idx.entries().len(), n);
    }
});
