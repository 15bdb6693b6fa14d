#![no_main]
//! The initramfs reader (concatenated cpio newc, plain or gzip/xz/zstd) on arbitrary bytes:
//! an error or a list of names, never a panic.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = kabi::weak::initramfs::list(data);
});
