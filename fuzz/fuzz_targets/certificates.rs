#![no_main]
//! X.509 certificates as the kernel sees them (`sig::cert`: PEM or DER bundles, names, key
//! ids, descriptions) and the system certificate list of a vmlinux (`sig::certlist`: the
//! shape search over an ELF's sections and the list walk of `x509_load_certificate_list`).

use kabi::sig::{cert, certlist};
use libfuzzer_sys::fuzz_target;
use std::hint::black_box;

fn walk(c: &cert::Cert) {
    black_box((
        c.description(),
        c.key_ids(),
        c.id(),
        c.fingerprint(),
        &c.subject,
        &c.issuer,
    ));
}

fuzz_target!(|data: &[u8]| {
    if let Ok(certs) = cert::parse_bundle(data) {
        for c in &certs {
            walk(c);
        }
    }
    let list = certlist::decode(data, "fuzz".into(), 0, 0);
    assert!(list.certs.len() + list.errors.len() <= data.len() / 4 + 1);
    for c in &list.certs {
        walk(c);
    }
    if let Ok(Some(found)) = certlist::find(data) {
        assert!(found.list_size as usize <= data.len());
        for c in &found.certs {
            walk(c);
        }
    }
});
