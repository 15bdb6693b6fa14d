#![no_main]
//! UEFI signature lists (`db`, `dbx`, `MokListRT`) with the kernel's size checks, the
//! certificates in them, and efivarfs files (`SecureBoot`).

use kabi::sig::efi;
use libfuzzer_sys::fuzz_target;
use std::hint::black_box;

fuzz_target!(|data: &[u8]| {
    let (entries, err) = efi::parse_lists(data);
    if err.is_none() {
        // every entry came from a list that fits
        assert!(entries.len() <= data.len() / 16);
    }
    black_box(&entries);
    let (certs, errors) = efi::certificates(data);
    black_box((certs.len(), errors));
    black_box(efi::secure_boot_from_var(data));
    black_box(efi::efivar_data(data));
});
