#![no_main]
//! `Module::parse_image`: a decompressed module image (ELF plus optional signature trailer).

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = kabi::Module::parse_image(data) {
        assert_eq!(m.image_size, data.len() as u64);
        common::exercise(&m);
    }
});
