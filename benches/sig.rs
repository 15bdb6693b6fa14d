//! What a module signature check costs: the certificates of a kernel image (decoding the
//! image), the check of one module (SHA-256 over the body, one RSA-4096 verification), its
//! parts, and signing.

mod common;

use common::{fetch, kver};
use criterion::{Criterion, criterion_group, criterion_main};
use kabi::sig::cert::parse_bundle;
use kabi::sig::sign::{SignOptions, SigningKey, sign_image};
use kabi::sig::{SigPolicy, pkcs7::HashAlgo, verdict};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let root = fetch(None);
    let k = kver(&root);
    let img = root.join(format!("boot/vmlinuz-{k}"));
    let m = std::fs::read(root.join(format!("lib/modules/{k}/kernel/fs/xfs/xfs.ko"))).unwrap();
    let small =
        std::fs::read(root.join(format!("lib/modules/{k}/kernel/drivers/net/dummy.ko"))).unwrap();
    let policy = SigPolicy::for_image(&img).unwrap();
    assert!(verdict::check_image(&m, &policy).is_verified());

    let mut g = c.benchmark_group("sig");
    g.sample_size(10);
    g.bench_function("certificates of a zstd vmlinuz (decode + find)", |b| {
        b.iter(|| {
            let data = std::fs::read(&img).unwrap();
            let (_, vmlinux) = kabi::kernel::vmlinux::payload(&data).unwrap();
            black_box(kabi::sig::certlist::find(&vmlinux).unwrap())
        })
    });
    g.bench_function(format!("check_image xfs.ko ({} KB)", m.len() / 1000), |b| {
        b.iter(|| black_box(verdict::check_image(&m, &policy)))
    });
    g.bench_function(
        format!("check_image dummy.ko ({} KB)", small.len() / 1000),
        |b| b.iter(|| black_box(verdict::check_image(&small, &policy))),
    );
    g.bench_function("sha256 of xfs.ko", |b| {
        b.iter(|| black_box(HashAlgo::Sha256.digest(&m)))
    });
    g.bench_function("PKCS#7 parse of a module signature", |b| {
        let (body, _) = kabi::module::signature::split(&small);
        let blob = &small[body.len()..small.len() - 40];
        b.iter(|| black_box(kabi::sig::pkcs7::parse(blob).unwrap()))
    });
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/sig/");
    let key = SigningKey::from_bytes(&std::fs::read(format!("{dir}rsa2048.key")).unwrap()).unwrap();
    let cert = parse_bundle(&std::fs::read(format!("{dir}rsa2048.pem")).unwrap())
        .unwrap()
        .remove(0);
    let opts = SignOptions {
        hash: HashAlgo::Sha256,
        use_keyid: false,
    };
    g.bench_function("sign dummy.ko, RSA-2048", |b| {
        b.iter(|| black_box(sign_image(&small, &key, &cert, opts).unwrap()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
