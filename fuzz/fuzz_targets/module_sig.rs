#![no_main]
//! The kernel's `module_sig_check()` computed on the input as a module file: trailer, PKCS#7
//! message, key lookup and RSA / ECDSA verification against the test keys of testdata/sig
//! (trusted as given certificates), and from the parsed trailer alone.

use kabi::sig::cert::parse_bundle;
use kabi::sig::keys::Keyring;
use kabi::sig::trust::TrustedKeys;
use kabi::sig::{SigPolicy, pkcs7, verdict};
use libfuzzer_sys::fuzz_target;
use std::hint::black_box;
use std::sync::OnceLock;

fn policy() -> &'static SigPolicy {
    static P: OnceLock<SigPolicy> = OnceLock::new();
    P.get_or_init(|| {
        let mut certs = Vec::new();
        for pem in [
            &include_bytes!("../../testdata/sig/rsa2048.pem")[..],
            &include_bytes!("../../testdata/sig/p256.pem")[..],
            &include_bytes!("../../testdata/sig/p384.pem")[..],
        ] {
            certs.extend(parse_bundle(pem).expect("test certificate"));
        }
        let p = SigPolicy::default();
        p.set_keys(TrustedKeys::from_certs(certs, Keyring::Given, "fuzz"));
        p
    })
}

fuzz_target!(|data: &[u8]| {
    let p = policy();
    let sc = verdict::check_image(data, p);
    black_box(serde_json::to_vec(&sc).expect("a check always serializes"));
    black_box(verdict::check_image_flags(data, p, true));
    let _ = black_box(pkcs7::parse(data).map(|m| (m.signers.len(), m.certs.len())));
    if let Ok(m) = kabi::Module::parse_image(data) {
        black_box(verdict::check_trailer(&m.signature, p));
    }
});
