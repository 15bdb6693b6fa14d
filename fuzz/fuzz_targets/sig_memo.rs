#![no_main]
//! The `/run/kabi/sig-verified` reader (signatures verified before, kept between
//! `kabi load`s) on arbitrary bytes. Never a panic; what it reads is sorted, bounded, and a
//! render with any entry added reads back holding that entry and every old one.

use kabi::sig::memo::{MAX, contains, parse, render};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(entries) = parse(data) else { return };
    assert!(entries.len() <= MAX);
    let e: [u8; 32] = std::array::from_fn(|i| data.get(i).copied().unwrap_or(0x5a));
    let out = render(entries, &e);
    let back = parse(&out).expect("a render reads back");
    assert!(contains(back, &e));
    assert!(back.windows(2).all(|w| w[0] < w[1]), "sorted, no duplicate");
    if entries.len() < MAX {
        assert!(entries.iter().all(|x| contains(back, x)));
    }
});
