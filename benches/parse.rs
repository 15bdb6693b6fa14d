//! Parse benchmarks on real Debian modules.
//!
//!   cargo bench --bench parse
//!
//! * `module/*`: one mid-size module (`kernel/fs/udf/udf.ko`) parsed from memory with
//!   `Module::parse_file`, as stored (plain) and recompressed the way the kernel's
//!   `modules_install` does (xz `--check=crc32 --lzma2=dict=1MiB`, zstd level 3, gzip -9 -n),
//!   so the difference to `plain` is the decompression cost.
//! * `tree/*`: every module of the tree, `Module::open` from disk (page cache warm after the
//!   first pass), sequentially and with rayon `par_iter` on a 2-thread pool; plus a sequential
//!   pass over bytes preloaded into memory (parse only, no `read`). Throughput is in modules.
//!
//! The tree is `$KABI_TREE` (a root holding `lib/modules/<kver>/`, or the `<kver>` directory
//! itself), else what `testdata/fetch-kernel.sh amd64` prints. No tree: the bench panics.

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use kabi::Module;
use rayon::prelude::*;
use std::hint::black_box;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The module of the single-module group, relative to the `<kver>` directory.
const ONE_MODULE: &str = "kernel/fs/udf/udf.ko";
/// Threads of the parallel whole-tree pass.
const THREADS: usize = 2;

/// The `lib/modules/<kver>` directory to measure.
fn module_dir() -> PathBuf {
    let root = match std::env::var_os("KABI_TREE") {
        Some(t) if !t.is_empty() => PathBuf::from(t),
        _ => fetch_tree(),
    };
    if root.join("kernel").is_dir() {
        return root;
    }
    let lm = root.join("lib/modules");
    let kvers: Vec<PathBuf> = std::fs::read_dir(&lm)
        .unwrap_or_else(|e| {
            panic!(
                "bench tree {}: cannot read {}: {e}",
                root.display(),
                lm.display()
            )
        })
        .filter_map(|d| d.ok().map(|d| d.path()))
        .filter(|p| p.join("kernel").is_dir())
        .collect();
    match kvers.as_slice() {
        [one] => one.clone(),
        [] => panic!(
            "bench tree {}: no lib/modules/<kver>/kernel",
            root.display()
        ),
        _ => panic!(
            "bench tree {}: several kernels under lib/modules; set KABI_TREE to one lib/modules/<kver>",
            root.display()
        ),
    }
}

fn fetch_tree() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/fetch-kernel.sh");
    let out = Command::new(&script)
        .arg("amd64")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "no module tree: KABI_TREE is unset and {} could not be run ({e}); \
             set KABI_TREE=<root with lib/modules/KVER>",
                script.display()
            )
        });
    if !out.status.success() {
        panic!(
            "no module tree: KABI_TREE is unset and `{} amd64` failed ({}):\n{}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let root = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if root.is_empty() {
        panic!(
            "no module tree: `{} amd64` printed nothing",
            script.display()
        );
    }
    PathBuf::from(root)
}

/// Every `*.ko*` file below `dir`, sorted.
fn modules_below(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for e in entries {
            let e = e.unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            let p = e.path();
            let ty = e
                .file_type()
                .unwrap_or_else(|err| panic!("{}: {err}", p.display()));
            if ty.is_dir() {
                walk(&p, out);
            } else if ty.is_file()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(is_module_name)
            {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
    out
}

fn is_module_name(n: &str) -> bool {
    [".ko", ".ko.xz", ".ko.zst", ".ko.gz"]
        .iter()
        .any(|s| n.ends_with(s))
}

fn xz(data: &[u8]) -> Vec<u8> {
    use liblzma::stream::{Check, Filters, LzmaOptions, Stream};
    let mut opts = LzmaOptions::new_preset(6).expect("xz preset");
    opts.dict_size(1 << 20);
    let mut filters = Filters::new();
    filters.lzma2(&opts);
    let stream = Stream::new_stream_encoder(&filters, Check::Crc32).expect("xz encoder");
    let mut enc = liblzma::write::XzEncoder::new_stream(Vec::new(), stream);
    enc.write_all(data).expect("xz write");
    enc.finish().expect("xz finish")
}

fn zst(data: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(data, 3).expect("zstd")
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(data).expect("gzip write");
    enc.finish().expect("gzip finish")
}

fn bench_one_module(c: &mut Criterion, dir: &Path) {
    let path = dir.join(ONE_MODULE);
    let plain = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let reference =
        Module::parse_file(&plain, &path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        !reference.modinfo.is_empty() && !reference.undefined.is_empty(),
        "{}: parsed to an empty module; not a useful benchmark input",
        path.display()
    );
    let variants = [
        ("plain", plain.clone(), path.clone()),
        ("xz", xz(&plain), path.with_extension("ko.xz")),
        ("zst", zst(&plain), path.with_extension("ko.zst")),
        ("gz", gz(&plain), path.with_extension("ko.gz")),
    ];
    let mut g = c.benchmark_group("module");
    // Throughput in decompressed bytes, so the variants compare on the same work.
    g.throughput(Throughput::Bytes(plain.len() as u64));
    for (name, bytes, p) in &variants {
        // Same work: every variant must decode to the same facts.
        let m = Module::parse_file(bytes, p).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            m.modinfo, reference.modinfo,
            "{name}: modinfo differs from plain"
        );
        assert_eq!(
            m.undefined, reference.undefined,
            "{name}: undefined differs from plain"
        );
        assert_eq!(
            m.image_size,
            plain.len() as u64,
            "{name}: image size differs from plain"
        );
        eprintln!(
            "module: {ONE_MODULE} {name}: {} bytes in, {} bytes image",
            bytes.len(),
            plain.len()
        );
        g.bench_with_input(BenchmarkId::new("udf", name), bytes, |b, bytes| {
            b.iter(|| Module::parse_file(black_box(bytes), p).expect("parse"))
        });
    }
    g.finish();
}

fn bench_tree(c: &mut Criterion, dir: &Path) {
    let paths = modules_below(&dir.join("kernel"));
    assert!(
        !paths.is_empty(),
        "{}: no modules below kernel/",
        dir.display()
    );
    // One untimed pass: every module must parse (and the page cache is warm afterwards).
    let failed: Vec<String> = paths
        .iter()
        .filter_map(|p| Module::open(p).err().map(|e| e.to_string()))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} modules fail to parse:\n{}",
        failed.len(),
        paths.len(),
        failed.join("\n")
    );
    let n = paths.len();
    let bytes: u64 = paths
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum();
    eprintln!(
        "tree: {} ({n} modules, {:.1} MB)",
        dir.display(),
        bytes as f64 / 1e6
    );

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(THREADS)
        .build()
        .expect("rayon pool");

    let mut g = c.benchmark_group("tree");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8))
        .throughput(Throughput::Elements(n as u64));
    g.bench_function("open/sequential", |b| {
        b.iter(|| paths.iter().filter(|p| Module::open(p).is_ok()).count())
    });
    g.bench_function(format!("open/par_iter_{THREADS}_threads"), |b| {
        b.iter(|| pool.install(|| paths.par_iter().filter(|p| Module::open(p).is_ok()).count()))
    });
    let preloaded: Vec<(Vec<u8>, &PathBuf)> = paths
        .iter()
        .map(|p| {
            (
                std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
                p,
            )
        })
        .collect();
    g.bench_function("parse_file/sequential_preloaded", |b| {
        b.iter(|| {
            preloaded
                .iter()
                .filter(|(d, p)| Module::parse_file(black_box(d), p).is_ok())
                .count()
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    let dir = module_dir();
    bench_one_module(c, &dir);
    bench_tree(c, &dir);
}

criterion_group! {
    name = parse;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = benches
}
criterion_main!(parse);
