//! `kabi check` costs: reading a Module.symvers, parsing a whole cloud tree, and checking
//! every module of ABI 47 against ABI 56 (the analysis alone).

mod common;

use common::{fetch, kver};
use criterion::{Criterion, criterion_group, criterion_main};
use kabi::check::check_set;
use kabi::kernel::abi::KernelAbi;
use kabi::kernel::target::Target;
use kabi::kernel::{symvers, tree};
use std::hint::black_box;
use std::path::PathBuf;

fn bench(c: &mut Criterion) {
    let (old, new) = (fetch(Some("47")), fetch(Some("56")));
    let (ko, kn) = (kver(&old), kver(&new));
    let symvers_path = new.join(format!("usr/src/linux-headers-{kn}/Module.symvers"));
    let files = tree::module_files(&old.join("lib/modules").join(&ko).join("kernel"));
    assert!(files.len() > 1000, "{} modules", files.len());

    let mut g = c.benchmark_group("check");
    g.sample_size(10);
    g.bench_function("read Module.symvers (14k lines)", |b| {
        b.iter(|| black_box(symvers::read(&symvers_path).unwrap()))
    });
    g.bench_function("parse 1121 cloud modules (rayon)", |b| {
        b.iter(|| black_box(tree::parse_all(&files)))
    });
    let mods: Vec<(PathBuf, kabi::Module)> = tree::parse_all(&files)
        .into_iter()
        .zip(&files)
        .map(|(m, p)| (p.clone(), m.unwrap()))
        .collect();
    let target = Target {
        abi: KernelAbi::from_symbols("symvers", symvers::read(&symvers_path).unwrap()),
        crcs_known: true,
        ..Target::default()
    };
    g.bench_function("check_set 1121 modules 47->56", |b| {
        b.iter(|| black_box(check_set(&mods, &target)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
