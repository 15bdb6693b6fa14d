#![no_main]
//! `Module::parse_file`: a whole module file of any compression, then everything `kabi info`
//! does with the result.

mod common;

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = kabi::Module::parse_file(data, Path::new("/fuzz/input-mod.ko.xz")) {
        assert!(!m.name.is_empty(), "parse_file always names the module");
        common::exercise(&m);
    }
});
