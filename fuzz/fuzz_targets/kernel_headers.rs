#![no_main]
//! A kernel headers tree's text files as kabi reads them (`kernel::headers`): a `#define`'s
//! string (`utsrelease.h`, `randomize_layout_hash.h`) and the vermagic built from a release
//! and a configuration text. The input is split in three at NUL bytes.

use kabi::kernel::headers::{define_string, vermagic};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\0');
    let (a, b, c) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next(),
    );
    if let Some(v) = define_string(a, "UTS_RELEASE") {
        assert!(!v.contains('"') && v.len() <= a.len());
    }
    if let Some(m) = vermagic(a, b, c) {
        assert!(m.starts_with(a) && m.len() <= a.len() + b.len() + c.map_or(0, str::len) + 128);
    }
});
