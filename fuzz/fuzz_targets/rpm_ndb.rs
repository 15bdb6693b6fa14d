#![no_main]
//! `rpmdb::ndb::blobs` on a whole `Packages.db` in memory, then every blob through the header
//! parser.

use kabi::rpmdb::{Header, Package, ndb};
use libfuzzer_sys::fuzz_target;
use std::hint::black_box;

fuzz_target!(|data: &[u8]| {
    let Ok(blobs) = ndb::blobs(data) else { return };
    for (pkgidx, blob) in blobs {
        assert!(blob.len() <= data.len());
        if let Ok(h) = Header::parse(blob) {
            black_box(Package::from_header(pkgidx, &h).ok());
        }
    }
});
