#![no_main]
//! The `/run/kabi/builtin-certs` reader (the running kernel image's certificates kept between
//! `kabi load`s) on arbitrary bytes, as a whole file and after a valid header for a fixed
//! image (so that the certificate count and the DER are reached). Never a panic; what it
//! reads renders and reads back the same.

use kabi::root::{Kind, Stat};
use kabi::sig::cache::{parse, render};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let st = Stat {
        kind: Kind::File,
        size: 8 << 20,
        mtime: (1_700_000_000, 1),
        ctime: (1_700_000_000, 2),
        ino: 12,
        dev: 2049,
        mode: 0o100644,
        uid: 0,
    };
    let _ = parse(data, &st);
    let mut file = render(&st, &[]);
    // render ends with "certs 0 0\n": replace that line with the input
    let cut = file.len() - "certs 0 0\n".len();
    file.truncate(cut);
    file.extend_from_slice(data);
    if let Some(certs) = parse(&file, &st) {
        let again = parse(&render(&st, &certs), &st).expect("a render reads back");
        assert_eq!(again.len(), certs.len());
        for (a, b) in again.iter().zip(&certs) {
            assert_eq!(a.der, b.der);
        }
    }
});
