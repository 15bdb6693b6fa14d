#![no_main]
//! A kernel image: the bzImage header, payload discovery and decompression, and the export
//! tables of the vmlinux ELF (also fed the raw input as an ELF).

use kabi::kernel::vmlinux;
use libfuzzer_sys::fuzz_target;
use std::hint::black_box;

fuzz_target!(|data: &[u8]| {
    black_box(vmlinux::parse_header(data).ok());
    if let Ok((_, payload)) = vmlinux::payload(data) {
        black_box(vmlinux::exports(&payload).ok());
    }
    black_box(vmlinux::exports(data).ok());
});
