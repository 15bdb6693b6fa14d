//! `kabi depmod` costs on the real cloud-amd64 tree (1,121 modules): extraction of one
//! module per compression, the whole run cold (no cache), from the scan cache with the
//! outputs missing, and warm (nothing changed), and the graph plus rendering alone.
//! kmod's own `depmod -a` on the same trees is timed by `scripts/bench-depmod.sh`.

mod common;

use criterion::{Criterion, criterion_group, criterion_main};
use kabi::depmod::{self, CacheMode, Options, graph, output, scan};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A private copy of the tree (modules hard-linked) that runs may write into.
fn copy_tree(src: &Path, kver: &str, dst: &Path) {
    let from = src.join("lib/modules").join(kver);
    let to = dst.join("lib/modules");
    std::fs::create_dir_all(&to).unwrap();
    let st = Command::new("cp")
        .arg("-al")
        .arg(&from)
        .arg(&to)
        .status()
        .unwrap();
    assert!(st.success());
    for f in depmod::OUTPUTS {
        let _ = std::fs::remove_file(to.join(kver).join(f));
    }
}

fn bench(c: &mut Criterion) {
    let src = common::fetch(None);
    let kver = common::kver(&src);
    let tmp = tempfile::tempdir().unwrap();
    copy_tree(&src, &kver, tmp.path());
    let dir = tmp.path().join("lib/modules").join(&kver);
    let empty = tmp.path().join("empty-depmod.d");
    std::fs::create_dir_all(&empty).unwrap();

    // one module, each compression
    let udf = dir.join("kernel/fs/udf/udf.ko");
    let plain = std::fs::read(&udf).unwrap();
    let xz = {
        use std::io::Read;
        let mut out = Vec::new();
        liblzma::read::XzEncoder::new(&plain[..], 6)
            .read_to_end(&mut out)
            .unwrap();
        out
    };
    let zst = zstd::encode_all(&plain[..], 3).unwrap();
    let mut g = c.benchmark_group("depmod extract udf.ko");
    g.bench_function("plain, sections-only read", |b| {
        b.iter(|| black_box(scan::scan_file(&udf).unwrap()))
    });
    g.bench_function("plain, from memory", |b| {
        b.iter(|| black_box(scan::scan_bytes(&plain).unwrap()))
    });
    g.bench_function("xz, from memory", |b| {
        b.iter(|| black_box(scan::scan_bytes(&xz).unwrap()))
    });
    g.bench_function("zst, from memory", |b| {
        b.iter(|| black_box(scan::scan_bytes(&zst).unwrap()))
    });
    g.finish();

    let opts = |cache: CacheMode| Options {
        root: Some(tmp.path().to_path_buf()),
        kver: kver.clone(),
        config: Some(vec![empty.clone()]),
        cache,
        ..Options::default()
    };
    let mut quiet = |_: &graph::Message| {};
    let mut g = c.benchmark_group("depmod cloud tree (1121 modules)");
    g.sample_size(10);
    g.bench_function("cold: no cache", |b| {
        b.iter(|| black_box(depmod::run(&opts(CacheMode::Off), &mut quiet).unwrap()))
    });
    let cached = opts(CacheMode::InTree);
    depmod::run(&cached, &mut quiet).unwrap();
    g.bench_function("scan cache, outputs deleted", |b| {
        b.iter(|| {
            let _ = std::fs::remove_file(dir.join("modules.dep"));
            black_box(depmod::run(&cached, &mut quiet).unwrap())
        })
    });
    depmod::run(&cached, &mut quiet).unwrap();
    g.bench_function("warm: nothing changed", |b| {
        b.iter(|| {
            let s = depmod::run(&cached, &mut quiet).unwrap();
            assert!(s.up_to_date);
            black_box(s)
        })
    });

    // the calculation alone, from records in memory
    let files: Vec<PathBuf> = kabi::kernel::tree::module_files(&dir.join("kernel"));
    let mods: Vec<graph::ModuleIn> = files
        .iter()
        .map(|p| {
            let path = p.to_string_lossy().into_owned();
            graph::ModuleIn {
                name: output::path_to_modname(&path),
                rel: Some(p.strip_prefix(&dir).unwrap().to_string_lossy().into_owned()),
                record: std::sync::Arc::new(scan::scan_file(p).unwrap()),
                path,
            }
        })
        .collect();
    let order = std::fs::read(dir.join("modules.order")).ok();
    let root = kabi::root::Root::open(tmp.path()).unwrap();
    g.bench_function("graph and all outputs from records", |b| {
        b.iter(|| {
            let mut msgs = Vec::new();
            let m = graph::order_modules(mods.clone(), order.as_deref(), "o", &mut msgs);
            let gr = graph::build(m, None, graph::Settings::default(), msgs).unwrap();
            let mut msgs = Vec::new();
            black_box(depmod::render(
                &root,
                &gr,
                &opts(CacheMode::Off),
                &dir.to_string_lossy(),
                &mut msgs,
            ))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
