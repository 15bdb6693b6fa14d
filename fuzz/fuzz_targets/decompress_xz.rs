#![no_main]
//! `compress::decompress(Compression::Xz, ..)` with a 64 MiB output cap. The magic is
//! prepended when missing so that mutations are not wasted on it.

use kabi::compress::{Compression, decompress};
use libfuzzer_sys::fuzz_target;

const MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0x00];
const LIMIT: u64 = 64 << 20;

fuzz_target!(|data: &[u8]| {
    let input = if data.starts_with(MAGIC) {
        data.to_vec()
    } else {
        [MAGIC, data].concat()
    };
    assert_eq!(Compression::detect(&input), Some(Compression::Xz));
    if let Ok(out) = decompress(Compression::Xz, &input, LIMIT) {
        assert!(out.len() as u64 <= LIMIT);
    }
});
