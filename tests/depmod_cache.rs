//! The scan cache and the run fingerprint of `kabi depmod`, on a small tree of real modules
//! (testdata): a warm run reads no module and writes nothing; a changed file is read again;
//! a damaged cache is ignored and rebuilt, with the same result; a bad module file is left
//! out and the run succeeds; a changed output is rewritten.

mod common;

use kabi::depmod::{self, CacheMode, Options, graph::Message};
use std::path::{Path, PathBuf};

const KVER: &str = "6.1.0-56-amd64";

fn tree() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let src = common::testdata().join("lib/modules").join(KVER);
    let dir = tmp.path().join("lib/modules").join(KVER);
    for f in common::walk(&src, &|p| p.to_string_lossy().ends_with(".ko")) {
        let to = dir.join(f.strip_prefix(&src).unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&f, &to).unwrap();
    }
    std::fs::create_dir_all(tmp.path().join("empty")).unwrap();
    (tmp, dir)
}

fn opts(root: &Path) -> Options {
    Options {
        root: Some(root.to_path_buf()),
        kver: KVER.into(),
        config: Some(vec![root.join("empty")]),
        cache: CacheMode::InTree,
        ..Options::default()
    }
}

fn run(o: &Options) -> (depmod::Summary, Vec<String>) {
    let mut msgs = Vec::new();
    let s = depmod::run(o, &mut |m: &Message| msgs.push(m.to_string())).unwrap();
    (s, msgs)
}

fn outputs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    depmod::OUTPUTS
        .iter()
        .map(|n| (n.to_string(), std::fs::read(dir.join(n)).unwrap()))
        .collect()
}

#[test]
fn warm_runs_read_nothing_and_changes_are_picked_up() {
    let (tmp, dir) = tree();
    let o = opts(tmp.path());
    let (cold, _) = run(&o);
    assert!(cold.modules >= 5, "{cold:?}");
    assert_eq!(cold.scanned, cold.modules);
    assert_eq!(cold.cached, 0);
    assert_eq!(cold.written.len(), depmod::OUTPUTS.len());
    assert!(dir.join(depmod::CACHE_NAME).is_file());
    let first = outputs(&dir);

    // nothing changed: nothing read, nothing written, the same messages
    let dep_key = std::fs::metadata(dir.join("modules.dep")).unwrap();
    let (warm, _) = run(&o);
    assert!(warm.up_to_date);
    assert_eq!(warm.scanned, 0);
    assert!(warm.written.is_empty());
    let again = std::fs::metadata(dir.join("modules.dep")).unwrap();
    assert_eq!(dep_key.modified().unwrap(), again.modified().unwrap());

    // an output deleted: recomputed from the cache alone, identical
    std::fs::remove_file(dir.join("modules.alias.bin")).unwrap();
    let (from_cache, _) = run(&o);
    assert!(!from_cache.up_to_date);
    assert_eq!(from_cache.scanned, 0, "{from_cache:?}");
    assert_eq!(from_cache.written, ["modules.alias.bin"]);
    assert_eq!(outputs(&dir), first);

    // one module replaced by another file: only it is read again, and its symbols move
    let crc = common::walk(&dir, &|p| p.ends_with("crc-itu-t.ko"))
        .pop()
        .unwrap();
    std::fs::remove_file(&crc).unwrap();
    let (changed, _) = run(&o);
    assert_eq!(changed.scanned, 0, "a removed file needs no read");
    assert_eq!(changed.modules, cold.modules - 1);
    let symbols = std::fs::read_to_string(dir.join("modules.symbols")).unwrap();
    assert!(!symbols.contains("symbol:crc_itu_t "), "{symbols}");
    std::fs::copy(
        common::testdata()
            .join("lib/modules")
            .join(KVER)
            .join("kernel/lib/crc-itu-t.ko"),
        &crc,
    )
    .unwrap();
    let (back, _) = run(&o);
    assert_eq!(back.scanned, 1, "{back:?}");
    assert_eq!(outputs(&dir), first);
}

#[test]
fn a_damaged_cache_is_rebuilt_and_a_bad_module_left_out() {
    let (tmp, dir) = tree();
    let o = opts(tmp.path());
    run(&o);
    let first = outputs(&dir);
    let cache = dir.join(depmod::CACHE_NAME);
    let mut bytes = std::fs::read(&cache).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&cache, &bytes).unwrap();
    // the damage is in the records, not the fingerprint: force a rescan by a changed output
    std::fs::remove_file(dir.join("modules.dep")).unwrap();
    let (s, msgs) = run(&o);
    assert!(
        msgs.iter()
            .any(|m| m.contains("not a valid kabi scan cache")),
        "{msgs:?}"
    );
    assert_eq!(s.scanned, s.modules, "everything read again");
    assert_eq!(outputs(&dir), first);

    // a module that is not ELF: reported with its path, left out, the run succeeds
    let bad = dir.join("kernel/bad.ko");
    std::fs::write(&bad, b"not a module at all").unwrap();
    let (s, msgs) = run(&o);
    assert_eq!(s.failed, 1);
    let bad_s = bad.to_string_lossy();
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("depmod: WARNING: ") && m.contains(bad_s.as_ref())),
        "{msgs:?}"
    );
    let dep = std::fs::read_to_string(dir.join("modules.dep")).unwrap();
    assert!(!dep.contains("bad.ko"), "{dep}");
    // and the report comes again on a warm run
    let (warm, msgs) = run(&o);
    assert!(warm.up_to_date);
    assert!(msgs.iter().any(|m| m.contains(bad_s.as_ref())), "{msgs:?}");
}

#[test]
fn no_cache_means_no_cache_file_and_the_same_outputs() {
    let (tmp, dir) = tree();
    let mut o = opts(tmp.path());
    run(&o);
    let first = outputs(&dir);
    std::fs::remove_file(dir.join(depmod::CACHE_NAME)).unwrap();
    for n in depmod::OUTPUTS {
        std::fs::remove_file(dir.join(n)).unwrap();
    }
    o.cache = CacheMode::Off;
    let (s, _) = run(&o);
    assert_eq!(s.scanned, s.modules);
    assert!(!dir.join(depmod::CACHE_NAME).exists());
    assert_eq!(outputs(&dir), first);
}
