//! The differential test over a whole real kernel: every module of Debian's
//! linux-image-<abi>-amd64-unsigned (about 4,000), compared with Debian's kmod byte for byte:
//! `kabi info` vs `modinfo`, `kabi modversions` vs `modprobe --dump-modversions`, and the
//! exports read from the modules vs the module lines of that kernel's `Module.symvers`.
//! Then the same on .ko.xz, .ko.zst and .ko.gz copies of a sample.

mod common;
use common::*;
use kabi::Module;
use std::path::{Path, PathBuf};
use std::process::Command;

struct Tree {
    root: PathBuf,
    kver: String,
    modules: Vec<PathBuf>,
}

fn amd64_tree() -> Option<Tree> {
    let root = fetch_kernel("amd64", None)?;
    let (dir, kver) = module_dir(&root);
    let modules = walk(&dir, &|p| p.to_string_lossy().ends_with(".ko"));
    assert!(
        modules.len() > 3000,
        "{} modules only in {}",
        modules.len(),
        dir.display()
    );
    Some(Tree {
        root,
        kver,
        modules,
    })
}

/// `modinfo` and `kabi info` over `files` in batches; the names of the modules that differ.
fn info_differences(
    files: &[PathBuf],
    fixup: &dyn Fn(&Path, Vec<u8>) -> Vec<u8>,
    kmod_files: &[PathBuf],
) -> Vec<String> {
    let mut bad = Vec::new();
    for (chunk, kchunk) in files.chunks(500).zip(kmod_files.chunks(500)) {
        let kmod = run(Command::new("modinfo").args(kchunk));
        assert!(
            kmod.status.success(),
            "modinfo failed: {}",
            String::from_utf8_lossy(&kmod.stderr)
        );
        let ours = run(kabi().arg("info").args(chunk));
        assert!(
            ours.status.success(),
            "kabi info failed: {}",
            String::from_utf8_lossy(&ours.stderr)
        );
        let (k, o) = (split_blocks(&kmod.stdout), split_blocks(&ours.stdout));
        assert_eq!(
            k.len(),
            kchunk.len(),
            "modinfo printed {} blocks for {} files",
            k.len(),
            kchunk.len()
        );
        assert_eq!(
            o.len(),
            chunk.len(),
            "kabi printed {} blocks for {} files",
            o.len(),
            chunk.len()
        );
        for ((file, kb), ob) in chunk.iter().zip(k).zip(o) {
            let kb = fixup(file, kb.to_vec());
            if kb != ob {
                bad.push(format!("{}: {}", file.display(), first_difference(&kb, ob)));
            }
        }
    }
    bad
}

/// `modprobe --dump-modversions` (one file per call) vs `kabi modversions`, on 2 threads.
fn modversions_differences(files: &[PathBuf], kmod_files: &[PathBuf]) -> Vec<String> {
    let pairs: Vec<(&PathBuf, &PathBuf)> = files.iter().zip(kmod_files).collect();
    let half = pairs.len().div_ceil(2).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = pairs
            .chunks(half)
            .map(|chunk| {
                s.spawn(move || {
                    let mut bad = Vec::new();
                    for (ours_f, kmod_f) in chunk {
                        let kmod = run(Command::new("modprobe")
                            .arg("--dump-modversions")
                            .arg(kmod_f));
                        let ours = run(kabi().arg("modversions").arg(ours_f));
                        if kmod.stdout != ours.stdout || !ours.status.success() {
                            bad.push(format!(
                                "{}: {}",
                                ours_f.display(),
                                first_difference(&kmod.stdout, &ours.stdout)
                            ));
                        }
                    }
                    bad
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    })
}

fn assert_none(what: &str, bad: &[String], total: usize) {
    assert!(
        bad.is_empty(),
        "{what}: {} of {total} modules differ; first ones:\n{}",
        bad.len(),
        bad.iter().take(10).cloned().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn every_module_of_a_full_tree_matches_kmod() {
    if !require_tool("modinfo") || !require_tool("modprobe") {
        return;
    }
    let Some(tree) = amd64_tree() else { return };
    let n = tree.modules.len();
    let bad = info_differences(&tree.modules, &|_, b| b, &tree.modules);
    assert_none("kabi info vs modinfo", &bad, n);
    let bad = modversions_differences(&tree.modules, &tree.modules);
    assert_none("kabi modversions vs modprobe --dump-modversions", &bad, n);
    eprintln!(
        "{n} modules of {}: info and modversions identical to kmod",
        tree.kver
    );
}

#[test]
fn exports_of_every_module_equal_module_symvers() {
    let Some(tree) = amd64_tree() else { return };
    let symvers = tree.root.join(format!(
        "usr/src/linux-headers-{}/Module.symvers",
        tree.kver
    ));
    let text =
        std::fs::read_to_string(&symvers).unwrap_or_else(|e| panic!("{}: {e}", symvers.display()));
    let mut want: Vec<&str> = text
        .lines()
        .filter(|l| l.split('\t').nth(2) != Some("vmlinux"))
        .collect();
    want.sort_unstable();
    let mut got: Vec<String> = Vec::new();
    for p in &tree.modules {
        let m = Module::open(p).unwrap_or_else(|e| panic!("{e}"));
        let owner = kabi::module::show::symvers_owner(p);
        let lines = kabi::module::show::render_exports(&m, &owner);
        got.extend(
            String::from_utf8(lines)
                .unwrap()
                .lines()
                .map(str::to_string),
        );
    }
    got.sort_unstable();
    assert!(
        want.len() > 10_000,
        "{} module export lines only",
        want.len()
    );
    let missing: Vec<_> = want
        .iter()
        .filter(|l| got.binary_search_by(|g| g.as_str().cmp(l)).is_err())
        .take(5)
        .collect();
    let extra: Vec<_> = got
        .iter()
        .filter(|g| want.binary_search(&g.as_str()).is_err())
        .take(5)
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}\nextra {extra:?}"
    );
    assert_eq!(got.len(), want.len());
}

/// Copies of every 20th module, compressed as the kernel's build does.
fn compressed_sample(
    tree: &Tree,
    dir: &Path,
    ext: &str,
    cmd: &[&str],
) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let sample: Vec<&PathBuf> = tree.modules.iter().step_by(20).collect();
    let mut packed = Vec::new();
    for (i, src) in sample.iter().enumerate() {
        let name = format!("{i:04}-{}{ext}", src.file_name().unwrap().to_string_lossy());
        let dst = dir.join(name);
        let out = Command::new(cmd[0])
            .args(&cmd[1..])
            .arg(src)
            .output()
            .unwrap();
        assert!(out.status.success(), "{cmd:?} {}", src.display());
        std::fs::write(&dst, out.stdout).unwrap();
        packed.push(dst);
    }
    (packed, sample.into_iter().cloned().collect())
}

#[test]
fn compressed_copies_match_kmod() {
    if !require_tool("modinfo")
        || !require_tool("xz")
        || !require_tool("zstd")
        || !require_tool("gzip")
    {
        return;
    }
    let Some(tree) = amd64_tree() else { return };
    let tmp = tempfile::tempdir().unwrap();
    for (ext, cmd) in [
        (
            ".xz",
            &["xz", "-c", "-T1", "--check=crc32", "--lzma2=dict=1MiB"][..],
        ),
        (".zst", &["zstd", "-c", "-q", "-19"]),
    ] {
        let (packed, _) = compressed_sample(&tree, tmp.path(), ext, cmd);
        let bad = info_differences(&packed, &|_, b| b, &packed);
        assert_none(
            &format!("kabi info vs modinfo on {ext}"),
            &bad,
            packed.len(),
        );
        let bad = modversions_differences(&packed, &packed);
        assert_none(&format!("modversions on {ext}"), &bad, packed.len());
    }
    // Debian's kmod has no zlib: compare .ko.gz with modinfo of the uncompressed original,
    // the filename line being the only difference.
    let (packed, plain) = compressed_sample(&tree, tmp.path(), ".gz", &["gzip", "-c", "-n", "-9"]);
    let features = run(Command::new("modinfo").arg("-V"));
    if String::from_utf8_lossy(&features.stdout).contains("-ZLIB") {
        // this kmod cannot read it at all: "Module X.ko.gz not found", exit 1
        let kmod_on_gz = run(Command::new("modinfo").arg(&packed[0]));
        assert_eq!(kmod_on_gz.status.code(), Some(1));
        assert!(kmod_on_gz.stdout.is_empty());
    }
    let fix = |gz: &Path, block: Vec<u8>| {
        let text = String::from_utf8(block).unwrap();
        let (first, rest) = text.split_once('\n').unwrap();
        assert!(first.starts_with("filename:"));
        format!("{:<16}{}\n{rest}", "filename:", gz.display()).into_bytes()
    };
    let bad = info_differences(&packed, &fix, &plain);
    assert_none(
        "kabi info on .gz vs modinfo on the plain module",
        &bad,
        packed.len(),
    );
    let bad = modversions_differences(&packed, &plain);
    assert_none("modversions on .gz", &bad, packed.len());
}
