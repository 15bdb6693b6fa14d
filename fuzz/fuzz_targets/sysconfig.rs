#![no_main]
//! The shell-variable reader of SUSE's `/etc/sysconfig/kernel` (weak-modules2's
//! INITRD_MODULES) on arbitrary bytes: a value or none, never a panic, never more text than
//! the input holds.

use kabi::weak::suse::sysconfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for name in ["INITRD_MODULES", "A", "export"] {
        if let Some(v) = sysconfig::value(data, name) {
            assert!(v.len() <= data.len() * 3);
            assert!(sysconfig::words(&v).all(|w| !w.is_empty()));
        }
    }
});
