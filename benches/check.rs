//! `kabi check` costs: reading a Module.symvers, parsing a whole cloud tree, and checking
//! every module of ABI 47 against ABI 56 (the analysis alone).

use criterion::{Criterion, criterion_group, criterion_main};
use kabi::check::check_set;
use kabi::kernel::abi::KernelAbi;
use kabi::kernel::target::Target;
use kabi::kernel::{symvers, tree};
use std::hint::black_box;
use std::path::PathBuf;
use std::process::Command;

fn fetch(abi: &str) -> PathBuf {
    let out = Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/fetch-kernel.sh"
    ))
    .args(["cloud-amd64", abi])
    .output()
    .expect("run testdata/fetch-kernel.sh");
    assert!(
        out.status.success(),
        "cannot fetch cloud-amd64 {abi}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

fn kver(root: &std::path::Path) -> String {
    std::fs::read_dir(root.join("lib/modules"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name()
        .into_string()
        .unwrap()
}

fn bench(c: &mut Criterion) {
    let (old, new) = (fetch("47"), fetch("56"));
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
