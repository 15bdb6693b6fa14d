#![no_main]
//! `Module::parse_file`: a whole module file of any compression, then everything `kabi info`
//! does with the result; the sections-only parse must agree with the full one.

mod common;

use kabi::module::{Detail, Module};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("/fuzz/input-mod.ko.xz");
    let full = Module::parse_file(data, path);
    let sections = Module::parse_file_with(data, path, Detail::Sections);
    if let Ok(m) = &full {
        assert!(!m.name.is_empty(), "parse_file always names the module");
        common::exercise(m);
    }
    if let Ok(s) = &sections {
        common::exercise(s);
        if let Ok(m) = &full {
            common::check_sections(m, s);
        }
    }
});
