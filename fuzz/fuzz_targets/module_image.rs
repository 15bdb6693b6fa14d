#![no_main]
//! `Module::parse_image`: a decompressed module image (ELF plus optional signature trailer),
//! full and sections-only, from an aligned and from a misaligned buffer.

mod common;

use kabi::module::{Detail, Module};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let full = Module::parse_image(data);
    let (buf, off) = misaligned(data);
    let moved = Module::parse_image(&buf[off..off + data.len()]);
    assert_eq!(
        full.as_ref()
            .map(|m| serde_json::to_string(m).unwrap())
            .ok(),
        moved
            .as_ref()
            .map(|m| serde_json::to_string(m).unwrap())
            .ok(),
        "the result must not depend on the buffer's alignment"
    );
    if let Ok(m) = &full {
        assert_eq!(m.image_size, data.len() as u64);
        common::exercise(m);
    }
    if let Ok(s) = Module::parse_image_with(data, Detail::Sections) {
        common::exercise(&s);
        if let Ok(m) = &full {
            common::check_sections(m, &s);
        }
    }
});

/// `data` at an address that is not 8-byte aligned (libFuzzer's buffer always is), so that
/// the parser's aligned-copy path runs too. Returns the buffer and the offset of the copy.
fn misaligned(data: &[u8]) -> (Vec<u8>, usize) {
    let mut buf = vec![0u8; data.len() + 8];
    let off = (1..8)
        .find(|o| !(buf.as_ptr() as usize + o).is_multiple_of(8))
        .unwrap_or(1);
    buf[off..off + data.len()].copy_from_slice(data);
    (buf, off)
}
