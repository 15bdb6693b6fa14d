#![no_main]
//! The scan cache decoder on arbitrary bytes: never panics; what it accepts re-encodes to
//! something that decodes to the same entries; the fingerprint read alone from the prefix
//! never panics and agrees with the whole decode whenever that accepts the bytes.

use kabi::depmod::cache;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let prefix = cache::Fingerprint::from_prefix(data);
    if let Some(c) = cache::decode(data) {
        let again = cache::decode(&c.encode()).expect("our own encoding decodes");
        assert_eq!(again.entries.len(), c.entries.len());
        assert_eq!(again.fingerprint, c.fingerprint);
        assert_eq!(prefix.as_ref(), Some(&c.fingerprint));
    }
});
