#![no_main]
//! modprobe.d text and the kernel command line on arbitrary input, as libkmod reads them:
//! parsed, never a panic; every module name has its `-` made `_` (outside brackets), every
//! kept command has text, and the rendering of `modprobe -c` is produced.

use kabi::load::config::{ModprobeConfig, kcmdline_options, split_cmdline};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut c = ModprobeConfig::default();
    c.parse_file(data, "fuzz.conf");
    c.parse_kcmdline(data);
    let _ = kcmdline_options(data);
    let _ = split_cmdline(&String::from_utf8_lossy(data));
    // outside a bracket group (from a `[` to the next `]`) no name keeps a `-`
    for (m, _) in c.options.iter().chain(&c.install).chain(&c.remove) {
        let mut in_group = false;
        for ch in m.chars() {
            match ch {
                '[' if !in_group => in_group = true,
                ']' if in_group => in_group = false,
                '-' => assert!(in_group, "{m}"),
                _ => {}
            }
        }
    }
    assert!(c.install.iter().all(|(_, cmd)| !cmd.is_empty()));
    let _ = c.render();
    let _ = c.options_of("a", Some("b"));
    let _ = c.softdep("x");
});
