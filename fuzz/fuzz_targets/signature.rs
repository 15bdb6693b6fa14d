#![no_main]
//! The appended-signature trailer (`signature::split`, `Signature::info`,
//! `Signature::kernel_form_check`) and the PKCS#7 reader on the raw input.

use kabi::module::signature::{self, Trailer};
use libfuzzer_sys::fuzz_target;
use std::hint::black_box;

fuzz_target!(|data: &[u8]| {
    let (image, trailer) = signature::split(data);
    assert!(data.starts_with(image));
    match &trailer {
        Trailer::Signed(sig) => {
            assert_eq!(sig.module_len, image.len());
            let _ = black_box((sig.info(), sig.kernel_form_check()));
        }
        Trailer::Unsigned | Trailer::Malformed(_) => assert_eq!(image.len(), data.len()),
    }
    black_box(signature::pkcs7_signer(data));
});
