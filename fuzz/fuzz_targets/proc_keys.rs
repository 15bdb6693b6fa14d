#![no_main]
//! The running kernel's text: `/proc/keys` lines and key descriptions, the lockdown file,
//! `module.sig_enforce` and `lockdown=` on a command line, a kernel `.config`'s switches.

use kabi::sig::{keys, state};
use libfuzzer_sys::fuzz_target;
use std::hint::black_box;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (all, bad) = keys::parse_proc_keys(text);
    assert!(all.len() + bad <= text.lines().count());
    for k in &all {
        black_box((
            k.keyring_name(),
            k.x509(),
            k.is_keyring(),
            k.is_asymmetric(),
        ));
    }
    black_box(state::parse_lockdown_file(text));
    black_box(state::parse_cmdline(text));
    let cfg = state::SigConfig::from_kconfig(text);
    black_box(state::Enforcement::at_boot(
        &cfg,
        Some(text),
        kabi::sig::efi::SecureBoot::Enabled,
    ));
});
