#![no_main]
//! depmod.d text, then the choice between same-named modules with what it configured.

use kabi::tree::config::DepmodConfig;
use libfuzzer_sys::fuzz_target;
use std::hint::black_box;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut cfg = DepmodConfig::default();
    cfg.parse("fuzz.conf", &text, "6.1.0-56-amd64");
    let d = "/lib/modules/6.1.0-56-amd64";
    let paths = [
        format!("{d}/kernel/lib/m.ko"),
        format!("{d}/updates/m.ko.xz"),
        format!("{d}/extra/vendor/m.ko"),
        "/opt/ext/m.ko".to_string(),
    ];
    black_box(cfg.select(d, &paths));
    for a in &paths {
        for b in &paths {
            black_box(cfg.keep_existing(d, a, b));
        }
    }
    black_box(cfg.excluded("build"));
});
