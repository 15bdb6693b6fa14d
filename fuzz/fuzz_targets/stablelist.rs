#![no_main]
//! RHEL's kABI stablelists (`kabi_stablelist_<arch>`).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((sections, symbols)) = kabi::stablelist::parse(data) {
        assert!(sections.len() + symbols.len() <= data.len());
        for s in &symbols {
            assert!(!s.is_empty() && !s.contains(char::is_whitespace));
        }
    }
});
