#![no_main]
//! `rpmdb::Header::parse` on a header blob as rpm stores it in its database, then everything
//! the package and KMP layers read from it.

use kabi::rpmdb::{Header, Package, kmp, tag};
use libfuzzer_sys::fuzz_target;
use std::hint::black_box;

fuzz_target!(|data: &[u8]| {
    let Ok(h) = Header::parse(data) else { return };
    for t in h.tags().collect::<Vec<_>>() {
        if let Ok(Some(v)) = h.strings(t) {
            assert!(v.iter().map(|s| s.len() + 1).sum::<usize>() <= data.len());
        }
        black_box(h.u32s(t).ok());
    }
    black_box(h.string(tag::NAME).ok());
    if let Ok(p) = Package::from_header(1, &h) {
        assert!(p.files.len() <= data.len());
        black_box((p.nvr(), p.evr().to_string()));
        for d in p.provides.iter().chain(&p.requires) {
            black_box(d.to_string());
        }
        if let Some(Ok(k)) = kmp::kmp_of_package(&p) {
            black_box((k.nvr(), k.basenames(), k.module_names()));
            for m in &k.modules {
                black_box(m.weak_link());
            }
        }
    }
});
