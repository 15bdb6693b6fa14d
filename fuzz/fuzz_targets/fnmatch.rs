#![no_main]
//! `glob::fnmatch`: the input is `pattern NUL text` (no NUL: all pattern, empty text).

use kabi::glob::fnmatch;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (pattern, text) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let matched = fnmatch(pattern, text);
    // Oracles that hold for any fnmatch: without metacharacters it is equality, `*` matches
    // everything, and a text always matches itself once every metacharacter is escaped.
    if !pattern.iter().any(|b| b"*?[\\".contains(b)) {
        assert_eq!(matched, pattern == text);
    }
    assert!(fnmatch(b"*", text));
    let escaped: Vec<u8> = text
        .iter()
        .flat_map(|&b| {
            if b"*?[\\".contains(&b) {
                vec![b'\\', b]
            } else {
                vec![b]
            }
        })
        .collect();
    assert!(fnmatch(&escaped, text));
});
