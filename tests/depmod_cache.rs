//! The scan cache and the run fingerprint of `kabi depmod`, on a small tree of real modules
//! (testdata): a warm run reads no module and writes nothing; a changed file is read again;
//! a damaged cache is ignored and rebuilt, with the same result; a bad module file is left
//! out and the run succeeds; a changed output is rewritten.

mod common;

use kabi::depmod::{self, CacheMode, Options, graph::Message};
use std::os::unix::fs::symlink;
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

/// A run whose walk is recorded at once (the tree was just made).
fn settled(root: &Path) -> Options {
    Options {
        settle: Some(std::time::Duration::ZERO),
        ..opts(root)
    }
}

fn dep(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("modules.dep")).unwrap()
}

#[test]
fn an_unchanged_tree_is_known_from_the_last_walk_and_every_change_is_seen() {
    let (tmp, dir) = tree();
    let o = settled(tmp.path());
    // everything the walk records changed before it began
    std::thread::sleep(std::time::Duration::from_millis(30));
    let (cold, _) = run(&o);
    assert!(!cold.tree_known);
    let first = outputs(&dir);
    let (warm, _) = run(&o);
    assert!(warm.up_to_date && warm.tree_known, "{warm:?}");
    assert_eq!(warm.modules, cold.modules);

    let lib = dir.join("kernel/lib");
    let crc = lib.join("crc-itu-t.ko");
    let known = |what: &str| {
        let (s, _) = run(&o);
        assert!(!s.tree_known, "{what}: the walk was skipped: {s:?}");
        std::thread::sleep(std::time::Duration::from_millis(30));
        let (s2, _) = run(&o);
        assert!(
            s2.up_to_date && s2.tree_known,
            "{what}: not recorded again: {s2:?}"
        );
        s
    };

    // a module added below a directory: its directory's times moved
    std::fs::copy(&crc, lib.join("kabi_copy.ko")).unwrap();
    known("a file added");
    assert!(
        dep(&dir).contains("kernel/lib/kabi_copy.ko:"),
        "{}",
        dep(&dir)
    );
    // and removed again
    std::fs::remove_file(lib.join("kabi_copy.ko")).unwrap();
    known("a file removed");
    assert_eq!(outputs(&dir), first);

    // a module added in the top directory, whose times every run moves: read, not trusted
    std::fs::copy(&crc, dir.join("kabi_top.ko")).unwrap();
    known("a file added at the top");
    assert!(dep(&dir).contains("kabi_top.ko:"), "{}", dep(&dir));
    std::fs::remove_file(dir.join("kabi_top.ko")).unwrap();
    known("a file removed at the top");
    assert_eq!(outputs(&dir), first);

    // a module rewritten in place (the same inode): read again
    let other = common::walk(&dir, &|p| {
        p.extension().is_some_and(|e| e == "ko") && !p.ends_with("crc-itu-t.ko")
    })
    .pop()
    .unwrap();
    let saved = std::fs::read(&crc).unwrap();
    let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&crc).unwrap());
    std::fs::write(&crc, std::fs::read(&other).unwrap()).unwrap();
    assert_eq!(
        std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&crc).unwrap()),
        ino
    );
    let s = known("a file rewritten in place");
    assert_eq!(s.scanned, 1, "{s:?}");
    assert!(
        !std::fs::read_to_string(dir.join("modules.symbols"))
            .unwrap()
            .contains("symbol:crc_itu_t ")
    );
    std::fs::write(&crc, &saved).unwrap();
    known("a file rewritten back");
    assert_eq!(outputs(&dir), first);

    // a file added and its directory's modification time set back: its change time moved
    let before = std::fs::metadata(&lib).unwrap().modified().unwrap();
    std::fs::copy(&crc, lib.join("kabi_hidden.ko")).unwrap();
    std::fs::File::open(&lib)
        .unwrap()
        .set_modified(before)
        .unwrap();
    assert_eq!(std::fs::metadata(&lib).unwrap().modified().unwrap(), before);
    known("a file added behind a restored modification time");
    assert!(dep(&dir).contains("kabi_hidden.ko:"), "{}", dep(&dir));
    std::fs::remove_file(lib.join("kabi_hidden.ko")).unwrap();
    known("a hidden file removed");

    // a directory replaced by a link to a copy of it, elsewhere in the root: the same
    // modules under the same paths, but another directory
    let copy = tmp.path().join("elsewhere");
    std::fs::create_dir(&copy).unwrap();
    for f in std::fs::read_dir(&lib).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, copy.join(f.file_name().unwrap())).unwrap();
    }
    std::fs::rename(&lib, tmp.path().join("lib.orig")).unwrap();
    std::os::unix::fs::symlink("/elsewhere", &lib).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(30));
    known("a directory replaced by a link");
    assert_eq!(outputs(&dir), first);

    // the cache of a fresh tree: with the default settling time nothing is recorded, and
    // each run walks
    let (tmp2, _) = tree();
    let o2 = opts(tmp2.path());
    for _ in 0..3 {
        let (s, _) = run(&o2);
        assert!(!s.tree_known, "{s:?}");
    }
}

/// Each way a link can change what the walk finds, with the directories it passed through
/// unchanged: the next run walks and finds it.
#[test]
fn a_changed_link_is_seen_wherever_it_leads() {
    let (tmp, dir) = tree();
    let r = tmp.path();
    let o = settled(r);
    let crc = dir.join("kernel/lib/crc-itu-t.ko");
    let module = std::fs::read(&crc).unwrap();
    for d in ["opt/v1", "opt/v2", "opt/w1", "opt/w2", "opt/vendor"] {
        std::fs::create_dir_all(r.join(d)).unwrap();
    }
    std::fs::write(r.join("opt/v1/kabi_one.ko"), &module).unwrap();
    std::fs::write(r.join("opt/v2/kabi_two.ko"), &module).unwrap();
    std::fs::write(r.join("opt/w1/kabi_w1.ko"), &module).unwrap();
    std::fs::write(r.join("opt/w2/kabi_w2.ko"), &module).unwrap();
    std::fs::write(r.join("opt/vendor/kabi_vendor.ko"), &module).unwrap();
    std::fs::write(r.join("opt/stuff"), b"not a module").unwrap();
    std::fs::write(r.join("opt/README"), b"text").unwrap();
    // two links to one directory in the top directory (whose times every run moves): the
    // second the walk meets is passed over
    symlink("/opt/v1", dir.join("first")).unwrap();
    symlink("/opt/v1", dir.join("again")).unwrap();
    let second = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n == "first" || n == "again")
        .nth(1)
        .unwrap();
    // a link below the top through another link outside the tree, to a directory reached
    // before
    symlink("/opt/v1", r.join("opt/chain")).unwrap();
    symlink("/opt/chain", dir.join("kernel/chained")).unwrap();
    // a top-level link naming the root by its outside path (as weak-modules --basedir does)
    symlink(r.join("opt/w1"), dir.join("vend")).unwrap();
    // links to files the walk does not want
    symlink("/opt/stuff", dir.join("kernel/stuff")).unwrap();
    symlink("/opt/README", dir.join("kernel/README")).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(30));
    let (cold, msgs) = run(&o);
    assert!(problems(&msgs).is_empty(), "{msgs:?}");
    let (warm, _) = run(&o);
    assert!(warm.up_to_date && warm.tree_known, "{warm:?} {cold:?}");

    let seen = |what: &str, want: &str| {
        let (s, msgs) = run(&o);
        assert!(!s.tree_known, "{what}: the walk was skipped: {s:?}");
        assert!(
            dep(&dir).contains(want),
            "{what}: {want} not in {}",
            dep(&dir)
        );
        std::thread::sleep(std::time::Duration::from_millis(30));
        let (s2, _) = run(&o);
        assert!(s2.tree_known, "{what}: not recorded again: {s2:?}");
        msgs
    };
    let second = dir.join(second);
    std::fs::remove_file(&second).unwrap();
    symlink("/opt/vendor", &second).unwrap();
    seen("a link passed over retargeted", "/kabi_vendor.ko:");
    std::fs::remove_file(r.join("opt/chain")).unwrap();
    symlink("/opt/v2", r.join("opt/chain")).unwrap();
    seen(
        "a link outside the tree retargeted",
        "kernel/chained/kabi_two.ko:",
    );
    std::fs::remove_file(dir.join("vend")).unwrap();
    symlink(r.join("opt/w2"), dir.join("vend")).unwrap();
    seen(
        "a link by the root's outside path retargeted",
        "vend/kabi_w2.ko:",
    );
    std::fs::remove_file(r.join("opt/stuff")).unwrap();
    std::fs::create_dir(r.join("opt/stuff")).unwrap();
    std::fs::write(r.join("opt/stuff/kabi_new.ko"), &module).unwrap();
    seen(
        "a linked file that became a directory",
        "kernel/stuff/kabi_new.ko:",
    );
    // a link that no longer leads anywhere: reported (and not again once it does)
    std::fs::remove_file(r.join("opt/README")).unwrap();
    let dangling = |msgs: &[String]| {
        msgs.iter()
            .any(|m| m.contains("README") && m.contains("No such file"))
    };
    let (s, msgs) = run(&o);
    assert!(!s.tree_known && dangling(&msgs), "{s:?} {msgs:?}");
    // a walk that met a problem is not recorded: each run walks (and says it again)
    std::thread::sleep(std::time::Duration::from_millis(30));
    let (s, msgs) = run(&o);
    assert!(
        s.up_to_date && !s.tree_known && dangling(&msgs),
        "{s:?} {msgs:?}"
    );
    std::fs::write(r.join("opt/README"), b"text").unwrap();
    let (s, msgs) = run(&o);
    assert!(!s.up_to_date, "a problem gone is a change: {s:?}");
    assert!(
        problems(&msgs).is_empty(),
        "a problem gone is not said again: {msgs:?}"
    );
}

/// The messages but those about the inputs this small tree lacks (`modules.order`, ...).
fn problems(msgs: &[String]) -> Vec<&String> {
    msgs.iter()
        .filter(|m| !m.contains("could not open modules."))
        .collect()
}

#[test]
fn the_configuration_warns_once_on_a_warm_run() {
    let (tmp, _) = tree();
    std::fs::write(tmp.path().join("empty/bad.conf"), "nonsense here\n").unwrap();
    let o = opts(tmp.path());
    let (_, cold) = run(&o);
    let (warm, again) = run(&o);
    assert!(warm.up_to_date);
    let bad = |m: &[String]| m.iter().filter(|m| m.contains("bad.conf")).count();
    assert_eq!(bad(&cold), 1, "the bad line is reported: {cold:?}");
    assert_eq!(again, cold);
}

/// A link back to the module directory (whose times every run moves) is compared by what it
/// leads to, not by those times: the walk stays recorded, the cache is not rewritten.
#[test]
fn a_link_back_to_the_module_directory_keeps_the_record() {
    let (tmp, dir) = tree();
    symlink("..", dir.join("kernel/top")).unwrap();
    symlink(format!("/lib/modules/{KVER}"), dir.join("kernel/lib/again")).unwrap();
    let o = settled(tmp.path());
    std::thread::sleep(std::time::Duration::from_millis(30));
    run(&o);
    let cache = dir.join(depmod::CACHE_NAME);
    let ino = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
    let before = ino(&cache);
    for _ in 0..3 {
        let (s, _) = run(&o);
        assert!(s.up_to_date && s.tree_known, "{s:?}");
    }
    assert_eq!(ino(&cache), before, "the cache was rewritten");
}

/// `-E FILE` relative to the working directory: a changed file there is a change.
#[test]
fn a_relative_symvers_file_is_watched_where_it_is_read() {
    let (tmp, _) = tree();
    let cwd = tmp.path().join("cwd");
    std::fs::create_dir(&cwd).unwrap();
    let symvers = cwd.join("Module.symvers");
    std::fs::write(
        &symvers,
        "0x1\tprintk\tvmlinux\tEXPORT_SYMBOL\n0xZZ\tbad1\tvmlinux\tE\n",
    )
    .unwrap();
    let depmod = |verbose: bool| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_kabi"));
        c.current_dir(&cwd).arg("depmod").arg("-b").arg(tmp.path());
        c.arg("-C").arg(tmp.path().join("empty"));
        if verbose {
            c.arg("-v");
        }
        let out = c.args(["-E", "Module.symvers", KVER]).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stderr).unwrap()
    };
    depmod(false);
    let warm = depmod(true);
    assert!(warm.contains("nothing changed"), "{warm}");
    std::fs::write(
        &symvers,
        "0x1\tprintk\tvmlinux\tEXPORT_SYMBOL\n0xQQ\tbad2\tvmlinux\tE\n0xRR\tbad3\tvmlinux\tE\n",
    )
    .unwrap();
    let changed = depmod(true);
    assert!(!changed.contains("nothing changed"), "{changed}");
}

/// An external directory given by a link, pointed elsewhere, while another link still leads
/// to the directory it was: that directory is no longer a top one, and what is added to it
/// is found.
#[test]
fn a_top_directory_swapped_for_another_is_seen() {
    let (tmp, dir) = tree();
    let r = tmp.path();
    for d in ["r1", "r2", "e2"] {
        std::fs::create_dir(r.join(d)).unwrap();
    }
    symlink("/r1", r.join("e1")).unwrap();
    symlink("/r1", r.join("e2/m")).unwrap();
    std::fs::write(
        r.join("empty/ext.conf"),
        "external * /e1\nexternal * /e2\nsearch updates external built-in\n",
    )
    .unwrap();
    let o = settled(r);
    std::thread::sleep(std::time::Duration::from_millis(30));
    run(&o);
    let (warm, _) = run(&o);
    assert!(warm.up_to_date && warm.tree_known, "{warm:?}");
    std::fs::remove_file(r.join("e1")).unwrap();
    symlink("/r2", r.join("e1")).unwrap();
    std::fs::copy(
        dir.join("kernel/lib/crc-itu-t.ko"),
        r.join("r1/kabi_swapped.ko"),
    )
    .unwrap();
    let (s, _) = run(&o);
    assert!(!s.tree_known, "{s:?}");
    assert!(
        dep(&dir).contains("/e2/m/kabi_swapped.ko:"),
        "{}",
        dep(&dir)
    );
}

/// `-n` (the indexes to standard output, the module directory not written) takes the
/// records of a scan cache in place, as a run that writes does: it reads no module.
#[test]
fn a_dry_run_takes_the_scan_cache() {
    let (tmp, _dir) = tree();
    let o = opts(tmp.path());
    let (cold, _) = run(&o);
    assert!(cold.modules >= 5, "{cold:?}");
    assert_eq!(cold.scanned, cold.modules);
    let dry = Options {
        to_stdout: true,
        ..o.clone()
    };
    let (s, _) = run(&dry);
    assert_eq!((s.scanned, s.cached), (0, cold.modules), "{s:?}");
    // without a cache, every module is read
    let (s, _) = run(&Options {
        cache: CacheMode::Off,
        ..dry
    });
    assert_eq!((s.scanned, s.cached), (cold.modules, 0), "{s:?}");
}

/// A module the walk reaches by many paths (two links to each directory of a chain: 256
/// paths) is opened for reading once, however many paths lead to it; the indexes name it
/// once, by the first path.
#[test]
fn a_module_reached_by_many_paths_is_read_once() {
    if !common::require_tool("strace") {
        return;
    }
    let (tmp, dir) = tree();
    let r = tmp.path();
    let depth = 8;
    for i in 0..=depth {
        std::fs::create_dir_all(r.join(format!("opt/l{i}"))).unwrap();
    }
    for i in 0..depth {
        for name in ["a", "b"] {
            symlink(
                format!("/opt/l{}", i + 1),
                r.join(format!("opt/l{i}/{name}")),
            )
            .unwrap();
        }
    }
    let one = common::walk(&dir, &|p| p.to_string_lossy().ends_with(".ko"))[0].clone();
    std::fs::copy(&one, r.join(format!("opt/l{depth}/deep.ko"))).unwrap();
    symlink("/opt/l0", dir.join("dag")).unwrap();
    let trace = r.join("trace");
    let out = std::process::Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=open,openat,openat2", "-o"])
        .arg(&trace)
        .arg(env!("CARGO_BIN_EXE_kabi"))
        .args(["depmod", "--no-cache", "-C"])
        .arg(r.join("empty"))
        .arg("--root")
        .arg(r)
        .arg(KVER)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let trace = std::fs::read_to_string(&trace).unwrap();
    let opened: Vec<&str> = trace
        .lines()
        .filter(|l| l.contains("deep.ko\"") && !l.contains("O_PATH"))
        .collect();
    assert_eq!(opened.len(), 1, "deep.ko opened to be read: {opened:#?}");
    let dep = std::fs::read_to_string(dir.join("modules.dep")).unwrap();
    let lines: Vec<&str> = dep.lines().filter(|l| l.contains("deep.ko")).collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    // the first path in `readdir` order, as kmod takes it
    assert!(lines[0].starts_with("dag/"), "{lines:?}");
    assert_eq!(lines[0].matches('/').count(), depth + 1, "{lines:?}");
}

/// `--decompress-only`, the floor of a cold run: every module a cold run indexes is read, as
/// the walk finds it (one padded past the whole-read size among them), nothing is parsed
/// and nothing is written; each counts the bytes a scan would parse (a plain file's size).
#[test]
fn the_floor_reads_every_module_and_writes_nothing() {
    let (tmp, dir) = tree();
    let big = dir.join("kernel/drivers/net/dummy.ko");
    let mut data = std::fs::read(&big).unwrap();
    data.resize(200 << 10, 0);
    std::fs::write(&big, &data).unwrap();
    let files = common::walk(&dir, &|p| p.to_string_lossy().ends_with(".ko"));
    let size: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    // and a link to a module (as weak-updates holds them): the walk does not read it, the
    // scan reads it from the root, and so does the floor
    std::fs::create_dir_all(dir.join("weak-updates")).unwrap();
    symlink(&big, dir.join("weak-updates/linked.ko")).unwrap();
    let o = opts(tmp.path());
    let (n, bytes) = depmod::decompress_only(&o).unwrap();
    assert_eq!((n, bytes), (files.len() + 1, size + data.len() as u64));
    for name in depmod::OUTPUTS.iter().chain([&depmod::CACHE_NAME]) {
        assert!(!dir.join(name).exists(), "{name} written");
    }
    let (cold, _) = run(&o);
    assert_eq!(cold.modules, n);
}
