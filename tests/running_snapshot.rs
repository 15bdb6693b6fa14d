//! `kabi load`'s prediction keeps the running kernel's ABI under `/run/kabi` between
//! invocations: written by the first prediction of a boot, reused while the boot id, the
//! release and the loaded modules say it still describes the kernel, brought up to date by
//! kabi after its own loads, the kernel's own modules loaded since read from their files, and
//! rebuilt when someone else loaded any other module. The system root
//! here is a directory with the files the predictor reads (`proc/kallsyms`, `proc/modules`,
//! the boot id, the release) around a real Debian module; whether the snapshot or kallsyms
//! served a prediction is seen from the verdict itself: kallsyms is emptied after the first
//! run, so a prediction that read it again finds no symbol.

mod common;

use kabi::load::predict::{Predict, RunningPredictor};
use std::fs;
use std::path::{Path, PathBuf};

struct System {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    dirname: PathBuf,
    module: PathBuf,
    needs: Vec<String>,
    /// The real kernel's module directory.
    src: PathBuf,
}

impl System {
    fn new() -> Option<System> {
        let kernel = common::fetch_kernel("cloud-amd64", None)?;
        let (dir, kver) = common::module_dir(&kernel);
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let dirname = root.join("lib/modules").join(&kver);
        let module = dirname.join("kernel/fs/nls/nls_cp437.ko");
        fs::create_dir_all(module.parent().unwrap()).unwrap();
        fs::copy(dir.join("kernel/fs/nls/nls_cp437.ko"), &module).unwrap();
        fs::write(dirname.join("modules.dep"), "kernel/fs/nls/nls_cp437.ko:\n").unwrap();
        let m = kabi::Module::open(&module).unwrap();
        let needs: Vec<String> = m.undefined.iter().map(|u| u.name.clone()).collect();
        assert!(!needs.is_empty());
        fs::create_dir_all(root.join("proc/sys/kernel/random")).unwrap();
        fs::create_dir_all(root.join("run")).unwrap();
        let s = System {
            _tmp: tmp,
            root,
            dirname,
            module,
            needs,
            src: dir.clone(),
        };
        s.write("proc/sys/kernel/osrelease", &format!("{kver}\n"));
        s.write("proc/sys/kernel/random/boot_id", "b0b0b0b0-1111\n");
        s.write("proc/modules", "dummy 16384 0 - Live 0xffffffffc0001000\n");
        s.kallsyms(true);
        Some(s)
    }

    /// [`System::new`] for a test that needs root (the snapshot is kept for root only):
    /// `None` when not root, which fails under `CI=true`.
    fn as_root() -> Option<System> {
        if !is_root() {
            assert!(
                !common::in_ci(),
                "the snapshot is kept for root only: run as root (CI=true)"
            );
            eprintln!("SKIPPED: not root");
            return None;
        }
        System::new()
    }

    fn write(&self, rel: &str, text: &str) {
        fs::write(self.root.join(rel), text).unwrap();
    }

    /// kallsyms naming every symbol the module needs (`full`), or nothing.
    fn kallsyms(&self, full: bool) {
        let mut t = String::new();
        if full {
            for (i, n) in self.needs.iter().enumerate() {
                t += &format!(
                    "{:016x} r __ksymtab_{n}\n",
                    0xffff_ffff_8100_0000u64 + i as u64 * 16
                );
            }
            t += "ffffffffc0001000 r __ksymtab_dummy_export\t[dummy]\n";
        }
        self.write("proc/kallsyms", &t);
    }

    fn predictor(&self) -> RunningPredictor {
        RunningPredictor::new(&self.root.join("proc"), Some(self.dirname.clone())).learning(true)
    }

    /// One run: a prediction for the module; if `loaded` (the new `/proc/modules`), the
    /// module is inserted; its source; then the end of the run.
    fn run(&self, loaded: Option<&str>) -> (Result<(), String>, String) {
        let mut p = self.predictor();
        let verdict = p.admit("nls_cp437", &self.module);
        if let Some(list) = loaded
            && verdict.is_ok()
        {
            p.loaded(&self.module);
            self.write("proc/modules", list);
        }
        let source = p.source().unwrap_or_default();
        p.finish();
        (verdict, source)
    }

    fn snapshot(&self, name: &str) -> Option<String> {
        fs::read_to_string(self.root.join("run/kabi").join(name)).ok()
    }
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn from_kallsyms(source: &str) -> bool {
    source.ends_with("/proc/kallsyms")
}

#[test]
fn written_once_reused_updated_and_rebuilt() {
    let Some(s) = System::as_root() else { return };

    // 1. the first run reads kallsyms, writes both files, and loads nls_cp437
    let (v, src) = s.run(Some(
        "nls_cp437 12288 0 - Live 0xffffffffc0002000\ndummy 16384 0 - Live 0xffffffffc0001000\n",
    ));
    assert_eq!(v, Ok(()));
    assert!(from_kallsyms(&src), "{src}");
    let vmlinux = s.snapshot("running-abi").expect("running-abi written");
    assert!(
        vmlinux.starts_with("kabi-running-abi 1\nboot_id b0b0b0b0-1111\n"),
        "{vmlinux}"
    );
    for n in &s.needs {
        assert!(
            vmlinux.contains(&format!("\n{n}\t-\t")),
            "{n} missing:\n{vmlinux}"
        );
    }
    assert!(
        vmlinux.contains("vermagic "),
        "vermagic from the sample module"
    );
    assert!(
        !vmlinux.contains("dummy_export"),
        "module exports are not vmlinux's"
    );
    let modules = s.snapshot("running-modules").unwrap();
    assert!(
        modules.contains("module dummy 16384 ffffffffc0001000\n"),
        "{modules}"
    );
    assert!(
        modules.contains("module nls_cp437 12288 ffffffffc0002000\n"),
        "{modules}"
    );
    assert!(modules.contains("\ndummy_export\t-\t"), "{modules}");

    // 2. the next run does not read kallsyms (now empty) and still admits the module
    s.kallsyms(false);
    let (v, src) = s.run(None);
    assert_eq!(v, Ok(()), "from the snapshot");
    assert!(!from_kallsyms(&src), "{src}");
    assert_eq!(
        s.snapshot("running-abi").unwrap(),
        vmlinux,
        "vmlinux's file is not rewritten"
    );

    // 3. a module unloaded since: still the snapshot, and its exports are gone
    s.write(
        "proc/modules",
        "nls_cp437 12288 0 - Live 0xffffffffc0002000\n",
    );
    let (v, src) = s.run(None);
    assert_eq!((v, from_kallsyms(&src)), (Ok(()), false));
    // a record says it is gone: the module and its exports are no longer read from the file
    let modules = s.snapshot("running-modules").unwrap();
    assert!(
        modules.contains("\n+gone dummy 16384 ffffffffc0001000\n"),
        "{modules}"
    );
    let read = kabi::load::snapshot::Snapshot::parse(modules.clone().into_bytes()).unwrap();
    assert!(!read.header.modules.iter().any(|m| m.name == "dummy"));
    assert_eq!(read.get("dummy_export"), None, "{modules}");

    // 4a. one of the kernel's own modules loaded since (kabi inserts them without a
    // prediction; or another tool loaded it): read from its file, found through the index
    // below kernel/; still the snapshot (kallsyms is empty), and the snapshot takes it in
    // with its exports
    let own = "kernel/lib/crc-itu-t.ko";
    fs::create_dir_all(s.dirname.join("kernel/lib")).unwrap();
    fs::copy(s.src.join(own), s.dirname.join(own)).unwrap();
    let mut b = kabi::index::IndexBuilder::new();
    b.insert("crc_itu_t", &format!("{own}:"), 0).unwrap();
    b.insert("nls_cp437", "kernel/fs/nls/nls_cp437.ko:", 1)
        .unwrap();
    fs::write(s.dirname.join("modules.dep.bin"), b.write()).unwrap();
    let with_own = "crc_itu_t 16384 0 - Live 0xffffffffc0004000\n\
                    nls_cp437 12288 0 - Live 0xffffffffc0002000\n";
    // what the kernel shows of the loaded module: its state, its build id
    let sysdir = s.root.join("sys/module/crc_itu_t");
    fs::create_dir_all(sysdir.join("notes")).unwrap();
    let note = {
        use object::{Object, ObjectSection};
        let data = fs::read(s.dirname.join(own)).unwrap();
        let elf = object::File::parse(&*data).unwrap();
        let n = elf
            .section_by_name(".note.gnu.build-id")
            .expect("a build id");
        n.data().unwrap().to_vec()
    };
    let state = |st: &str, id: &[u8]| {
        fs::write(sysdir.join("initstate"), st).unwrap();
        fs::write(sysdir.join("notes/.note.gnu.build-id"), id).unwrap();
    };
    s.write("proc/modules", with_own);
    // a snapshot made from kallsyms without crc_itu_t, which is then loaded
    let fresh_snapshot = || {
        s.write(
            "proc/modules",
            "nls_cp437 12288 0 - Live 0xffffffffc0002000\n",
        );
        fs::remove_dir_all(s.root.join("run/kabi")).unwrap();
        s.kallsyms(true);
        assert_eq!(s.run(None).0, Ok(()));
        s.kallsyms(false);
        s.write("proc/modules", with_own);
    };
    // not the file loaded (another build id), or not live yet: kallsyms (empty) is read
    let mut other = note.clone();
    *other.last_mut().unwrap() ^= 1;
    for (st, id) in [("live\n", &other[..]), ("coming\n", &note[..])] {
        state(st, id);
        let (v, src) = s.run(None);
        assert!(from_kallsyms(&src) && v.is_err(), "{st} {src} {v:?}");
        // a good snapshot again (the failed run kept what it read: nothing)
        fresh_snapshot();
    }
    state("live\n", &note);
    let (v, src) = s.run(None);
    assert_eq!((v, from_kallsyms(&src)), (Ok(()), false), "{src}");
    let modules = s.snapshot("running-modules").unwrap();
    // appended as one record: the module and its export crc_itu_t
    assert!(
        modules.contains("\n+module crc_itu_t 16384 ffffffffc0004000\n+crc_itu_t\t")
            && modules
                .rsplit_once("\n+end ")
                .is_some_and(|(_, n)| n.trim_end().parse::<usize>().is_ok()),
        "{modules}"
    );
    // learned, then loaded again by another tool before the run ends (at another address,
    // or at the same with another build id): the run's record would give it the old
    // build's exports, so nothing is written, and the next run learns it again
    let reloaded = "crc_itu_t 16384 0 - Live 0xffffffffc0007000\n\
                    nls_cp437 12288 0 - Live 0xffffffffc0002000\n";
    for (after, id) in [(reloaded, &note[..]), (with_own, &other[..])] {
        fresh_snapshot();
        state("live\n", &note);
        let before = s.snapshot("running-modules").unwrap();
        let mut p = s.predictor();
        assert_eq!(p.admit("nls_cp437", &s.module), Ok(()));
        assert!(!from_kallsyms(&p.source().unwrap()));
        s.write("proc/modules", after);
        state("live\n", id);
        p.finish();
        assert_eq!(s.snapshot("running-modules").unwrap(), before, "{after}");
        state("live\n", &note);
    }
    // the same run with the module left as it was: its record is written
    s.write("proc/modules", with_own);
    let (v, src) = s.run(None);
    assert_eq!((v, from_kallsyms(&src)), (Ok(()), false), "{src}");
    assert!(
        s.snapshot("running-modules")
            .unwrap()
            .contains("\n+module crc_itu_t 16384 ffffffffc0004000\n+crc_itu_t\t")
    );

    // the same module through a link (which may lead anywhere): not read, kallsyms is
    s.write(
        "proc/modules",
        "nls_cp437 12288 0 - Live 0xffffffffc0002000
",
    );
    let _ = s.run(None);
    fs::remove_file(s.dirname.join(own)).unwrap();
    fs::copy(s.src.join(own), s.root.join("elsewhere.ko")).unwrap();
    std::os::unix::fs::symlink(s.root.join("elsewhere.ko"), s.dirname.join(own)).unwrap();
    s.write("proc/modules", with_own);
    let (v, src) = s.run(None);
    assert!(from_kallsyms(&src) && v.is_err(), "{src} {v:?}");
    s.write(
        "proc/modules",
        "nls_cp437 12288 0 - Live 0xffffffffc0002000
",
    );
    s.kallsyms(true);
    let _ = s.run(None);
    s.kallsyms(false);

    // 4. a module loaded by someone else (or reloaded: a new address), not one of the
    // kernel's own: rebuilt from kallsyms, which is empty now, so the prediction finds no
    // symbol
    s.write(
        "proc/modules",
        "nls_cp437 12288 0 - Live 0xffffffffc0002000\nforeign 4096 0 - Live 0xffffffffc0003000\n",
    );
    let (v, src) = s.run(None);
    assert!(from_kallsyms(&src), "{src}");
    let why = v.unwrap_err();
    assert!(why.contains("Unknown symbol"), "{why}");

    // 5. another boot: rebuilt
    s.kallsyms(true);
    let _ = s.run(None);
    s.write("proc/sys/kernel/random/boot_id", "another-boot\n");
    s.kallsyms(false);
    let (v, src) = s.run(None);
    assert!(from_kallsyms(&src) && v.is_err(), "{src} {v:?}");
}

#[test]
fn a_snapshot_it_cannot_trust_is_neither_read_nor_written_through() {
    let Some(s) = System::as_root() else { return };
    let (v, _) = s.run(None);
    assert_eq!(v, Ok(()));
    s.kallsyms(false);
    // writable by others: not read
    let file = s.root.join("run/kabi/running-abi");
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&file, fs::Permissions::from_mode(0o666)).unwrap();
    let (_, src) = s.run(None);
    assert!(
        from_kallsyms(&src),
        "a world-writable snapshot was used: {src}"
    );

    // run/kabi a link to a directory outside: nothing written there, nothing read from it
    let outside = tempfile::tempdir().unwrap();
    let planted = kabi_snapshot_for(&s, outside.path());
    fs::remove_dir_all(s.root.join("run/kabi")).unwrap();
    std::os::unix::fs::symlink(outside.path(), s.root.join("run/kabi")).unwrap();
    let before = listing(outside.path());
    let (_, src) = s.run(None);
    assert!(from_kallsyms(&src), "read through the link: {src}");
    assert_eq!(listing(outside.path()), before, "written through the link");
    assert!(planted.exists());
    // a FIFO where the snapshot should be: no hang, rebuilt
    fs::remove_file(s.root.join("run/kabi")).unwrap();
    fs::create_dir(s.root.join("run/kabi")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        s.root.join("run/kabi/running-abi"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let (_, src) = s.run(None);
    assert!(from_kallsyms(&src), "{src}");
}

/// A snapshot that would admit the module, planted in `dir` (to catch a read through a link).
fn kabi_snapshot_for(s: &System, dir: &Path) -> PathBuf {
    let p = dir.join("running-abi");
    fs::copy(s.root.join("run/kabi/running-abi"), &p).unwrap();
    fs::copy(
        s.root.join("run/kabi/running-modules"),
        dir.join("running-modules"),
    )
    .unwrap();
    p
}

fn listing(dir: &Path) -> Vec<(String, u64, std::time::SystemTime)> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                m.len(),
                m.modified().unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

/// The certificates built into the running kernel's image (found by decompressing it) are
/// kept in `run/kabi/builtin-certs` by the first prediction that looks for a signer's key
/// (signatures enforced), read back by the next ones while the image is the same file, and
/// read again from the image once it changed. Where nothing enforces signatures no key is
/// looked for, and the image is not read. A verification made to say why the kernel refused
/// a module (the prediction leaves it to the kernel) is kept in `run/kabi/sig-verified`.
#[test]
fn the_images_certificates_are_kept_while_the_image_is_the_same() {
    let Some(s) = System::as_root() else { return };
    let kernel = common::fetch_kernel("cloud-amd64", None).unwrap();
    let kver = common::module_dir(&kernel).1;
    let image = s.root.join(format!("boot/vmlinuz-{kver}"));
    fs::create_dir_all(image.parent().unwrap()).unwrap();
    fs::copy(kernel.join(format!("boot/vmlinuz-{kver}")), &image).unwrap();
    let signed = fs::read(&s.module).unwrap();
    assert!(
        signed.ends_with(b"~Module signature appended~\n"),
        "a signed module is needed"
    );

    let (v, _) = s.run(None);
    assert_eq!(v, Ok(()));
    let cache = s.root.join("run/kabi/builtin-certs");
    assert!(!cache.exists(), "the image read with nothing enforced");
    let param = s.root.join("sys/module/module/parameters");
    fs::create_dir_all(&param).unwrap();
    fs::write(param.join("sig_enforce"), "Y\n").unwrap();
    let (v, _) = s.run(None);
    assert_eq!(v, Ok(()));
    let first = fs::read(&cache).expect("builtin-certs written");
    let want = kabi::sig::trust::builtin_certs(&image).unwrap();
    assert!(!want.is_empty());
    let head = format!("certs {} ", want.len());
    assert!(
        String::from_utf8_lossy(&first).contains(&head),
        "{head} in {:?}",
        String::from_utf8_lossy(&first[..first.len().min(200)])
    );
    for c in &want {
        assert!(
            first.windows(c.der.len()).any(|w| w == c.der.as_slice()),
            "{} missing",
            c.subject
        );
    }
    let ino = |p: &Path| std::os::unix::fs::MetadataExt::ino(&fs::metadata(p).unwrap());
    let before = ino(&cache);
    // the prediction left the arithmetic to the kernel: nothing verified, nothing kept;
    // to say why the kernel refused it, the module's signature is verified with the image's
    // key: kept, one entry
    let memo = s.root.join("run/kabi").join(kabi::sig::memo::FILE);
    assert!(!memo.exists(), "verified before the insert");
    assert_eq!(s.predictor().explain("nls_cp437", &s.module, None), None);
    let kept = fs::read(&memo).expect("sig-verified written");
    assert_eq!(kabi::sig::memo::parse(&kept).map(<[_]>::len), Some(1));
    let memo_ino = ino(&memo);

    // the same image: the cache is read, not written again; the same module: its
    // verification is found, not made and kept again
    let (v, _) = s.run(None);
    assert_eq!(v, Ok(()));
    assert_eq!(s.predictor().explain("nls_cp437", &s.module, None), None);
    assert_eq!(
        ino(&cache),
        before,
        "rewritten although the image is the same"
    );
    assert_eq!(
        ino(&memo),
        memo_ino,
        "sig-verified rewritten for a known verification"
    );

    // the image rewritten in place (its change time moves): read from the image again
    let data = fs::read(&image).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    fs::write(&image, &data).unwrap();
    let (v, _) = s.run(None);
    assert_eq!(v, Ok(()));
    assert_ne!(ino(&cache), before, "a changed image must be read again");
    let der: usize = want.iter().map(|c| c.der.len()).sum();
    let again = fs::read(&cache).unwrap();
    assert_eq!(again[again.len() - der..], first[first.len() - der..]);
}

/// A parallel load predicts ahead of its inserts: a module admitted and assumed serves the
/// prediction of a module that needs it (udf needs crc-itu-t's export), and its exports reach
/// the snapshot only once it is really loaded.
#[test]
fn an_assumed_module_serves_predictions_but_only_a_loaded_one_the_snapshot() {
    let Some(s) = System::as_root() else { return };
    let kernel = common::fetch_kernel("cloud-amd64", None).unwrap();
    let (dir, _) = common::module_dir(&kernel);
    let copy = |rel: &str| {
        let to = s.dirname.join(rel);
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        fs::copy(dir.join(rel), &to).unwrap();
        to
    };
    let crc = copy("kernel/lib/crc-itu-t.ko");
    let udf = copy("kernel/fs/udf/udf.ko");
    let lib = copy("kernel/lib/libcrc32c.ko");
    let provided: Vec<String> = kabi::Module::open(&crc)
        .unwrap()
        .exports
        .iter()
        .map(|e| e.name.clone())
        .collect();
    assert!(provided.contains(&"crc_itu_t".to_string()), "{provided:?}");
    // the kernel exports everything both need, except what crc-itu-t provides
    let mut t = String::new();
    for m in [&crc, &udf, &lib] {
        for u in kabi::Module::open(m).unwrap().undefined {
            if !provided.contains(&u.name) {
                t += &format!("ffffffff81000000 r __ksymtab_{}\n", u.name);
            }
        }
    }
    s.write("proc/kallsyms", &t);

    // alone, udf is refused: its crc_itu_t is nowhere
    let mut p = s.predictor();
    let why = p.admit("udf", &udf).unwrap_err();
    assert!(why.contains("crc_itu_t"), "{why}");
    p.finish();

    // crc-itu-t admitted and assumed: udf is admitted; nothing loaded, so the snapshot of
    // the loaded modules does not get crc-itu-t's exports
    let mut p = s.predictor();
    assert_eq!(p.admit("crc_itu_t", &crc), Ok(()));
    p.assume(&crc);
    assert_eq!(p.admit("udf", &udf), Ok(()));
    p.finish();
    let modules = s.snapshot("running-modules").unwrap_or_default();
    assert!(!modules.contains("crc_itu_t\t"), "{modules}");

    // once loaded (and in /proc/modules), they are kept; libcrc32c, admitted and assumed
    // in the same run but never inserted (as when its insert fails), is not
    let mut p = s.predictor();
    assert_eq!(p.admit("crc_itu_t", &crc), Ok(()));
    p.assume(&crc);
    assert_eq!(p.admit("libcrc32c", &lib), Ok(()));
    p.assume(&lib);
    p.loaded(&crc);
    s.write(
        "proc/modules",
        "dummy 16384 0 - Live 0xffffffffc0001000\ncrc_itu_t 16384 0 - Live 0xffffffffc0004000\n",
    );
    p.finish();
    let modules = s.snapshot("running-modules").unwrap();
    assert!(modules.contains("\n+crc_itu_t\t"), "{modules}");
    assert!(!modules.contains("crc32c\t"), "{modules}");
    // the next run finds crc-itu-t's export in the record: udf is admitted from the snapshot
    // alone (kallsyms emptied)
    s.kallsyms(false);
    let mut p = s.predictor();
    assert_eq!(p.admit("udf", &udf), Ok(()));
    assert!(!from_kallsyms(&p.source().unwrap()));
    p.finish();

    // crc-itu-t reloaded (another address) by a run: its record replaces the module the file
    // knew, and the next run, from the snapshot alone, finds its export there
    s.write("proc/modules", "dummy 16384 0 - Live 0xffffffffc0001000\n");
    let mut p = s.predictor();
    assert_eq!(p.admit("crc_itu_t", &crc), Ok(()));
    p.loaded(&crc);
    s.write(
        "proc/modules",
        "dummy 16384 0 - Live 0xffffffffc0001000\ncrc_itu_t 16384 0 - Live 0xffffffffc0005000\n",
    );
    p.finish();
    let modules = s.snapshot("running-modules").unwrap();
    assert!(
        modules.contains("\n+gone crc_itu_t 16384 ffffffffc0004000\n+module crc_itu_t 16384 ffffffffc0005000\n+crc_itu_t\t0x09a34a2b\tEXPORT_SYMBOL\tcrc_itu_t\t\n+crc_itu_t_table\t0xd819a524\tEXPORT_SYMBOL\tcrc_itu_t\t\n+end "),
        "{modules}"
    );
    let mut p = s.predictor();
    assert_eq!(p.admit("udf", &udf), Ok(()));
    assert!(!from_kallsyms(&p.source().unwrap()));
    p.finish();
    // unloaded, nothing loaded: a record says so; once the file passed 64 KiB (here: a big
    // record of a module since gone) it is rewritten whole, the records merged into its
    // sorted lines, the modules gone left out
    s.write("proc/modules", "dummy 16384 0 - Live 0xffffffffc0001000\n");
    let mut p = s.predictor();
    let _ = p.admit("udf", &udf);
    p.finish();
    let modules = s.snapshot("running-modules").unwrap();
    assert!(
        modules.contains("\n+gone crc_itu_t 16384 ffffffffc0005000\n"),
        "{modules}"
    );
    let path = s.root.join("run/kabi/running-modules");
    let mut big = fs::read(&path).unwrap();
    let pad = kabi::load::snapshot::LoadedModule {
        name: "pad".into(),
        size: 4096,
        addr: 0xffff_ffff_c000_9000,
    };
    let syms: Vec<kabi::kernel::abi::KernelSymbol> = (0..2000)
        .map(|i| kabi::kernel::abi::KernelSymbol {
            name: format!("pad_symbol_{i:05}"),
            crc: None,
            kind: kabi::module::ExportKind::Plain,
            namespace: String::new(),
            owner: "pad".into(),
        })
        .collect();
    big.extend_from_slice(&kabi::load::snapshot::record(
        &[],
        &[&pad],
        &syms.iter().collect::<Vec<_>>(),
    ));
    assert!(big.len() > 64 << 10);
    fs::write(&path, &big).unwrap();
    let mut p = s.predictor();
    assert_eq!(p.admit("crc_itu_t", &crc), Ok(()));
    p.loaded(&crc);
    s.write(
        "proc/modules",
        "dummy 16384 0 - Live 0xffffffffc0001000\ncrc_itu_t 16384 0 - Live 0xffffffffc0006000\n",
    );
    p.finish();
    let modules = s.snapshot("running-modules").unwrap();
    assert!(
        !modules.contains("\n+") && !modules.contains("pad_symbol") && modules.len() < 64 << 10,
        "{}",
        &modules[..modules.len().min(2000)]
    );

    // a record cut short (a write that did not end): the file is refused, kallsyms is read
    s.write("proc/kallsyms", &t);
    let path = s.root.join("run/kabi/running-modules");
    let mut torn = fs::read(&path).unwrap();
    torn.extend_from_slice(
        b"+module libcrc32c 16384 ffffffffc0006000\n+crc32c\t-\tEXPORT_SYMBOL\tlibcrc32c\t\n",
    );
    fs::write(&path, &torn).unwrap();
    let mut p = s.predictor();
    let _ = p.admit("udf", &udf);
    assert!(from_kallsyms(&p.source().unwrap()));
}

/// A modules file that cannot be opened for writing (immutable here; a read-only `/run` is
/// the same to kabi) is read all the same: the prediction comes from the snapshot, and the
/// run's record is not written (adversarial review: the file was opened for reading and
/// appending at once, and a failed open made every run read kallsyms).
#[test]
fn a_snapshot_that_cannot_be_written_is_read_all_the_same() {
    let Some(s) = System::as_root() else { return };
    assert_eq!(s.run(None).0, Ok(()));
    let (v, src) = s.run(None);
    assert_eq!((v, from_kallsyms(&src)), (Ok(()), false), "{src}");
    let file = s.root.join("run/kabi/running-modules");
    let before = fs::read(&file).unwrap();
    let f = fs::File::open(&file).unwrap();
    use rustix::fs::IFlags;
    let flags = rustix::fs::ioctl_getflags(&f).unwrap_or(IFlags::empty());
    if let Err(e) = rustix::fs::ioctl_setflags(&f, flags | IFlags::IMMUTABLE) {
        // a file system without the attribute (tmpfs before 6.0, overlayfs)
        assert!(
            !common::in_ci(),
            "the immutable attribute cannot be set on the test's temporary directory: {e}"
        );
        eprintln!("SKIPPED: the immutable attribute cannot be set here: {e}");
        return;
    }
    assert!(fs::OpenOptions::new().append(true).open(&file).is_err());
    let (v, src) = s.run(Some("nls_cp437 12288 0 - Live 0xffffffffc0002000\n"));
    rustix::fs::ioctl_setflags(&f, flags).unwrap();
    assert_eq!((v, from_kallsyms(&src)), (Ok(()), false), "{src}");
    assert_eq!(fs::read(&file).unwrap(), before);
    // writable again, the module unloaded (the snapshot never knew it): the next run uses
    // the snapshot and appends its record
    s.write("proc/modules", "");
    let (v, src) = s.run(Some("nls_cp437 12288 0 - Live 0xffffffffc0002000\n"));
    assert_eq!((v, from_kallsyms(&src)), (Ok(()), false), "{src}");
    assert!(fs::read(&file).unwrap().len() > before.len());
}

/// The signature policy's facts that stay the same for a boot are kept in the snapshot
/// (`sig_boot`) and used while they still hold: the configuration's options while its file
/// is the one read (one rewritten since, here in place, to the same size and with its
/// modification time put back, is read again), the Secure Boot variable only once found (a
/// UEFI kernel shows `efivars` as an empty directory until efivarfs is mounted there: the
/// variable found later is read), and the command line, which cannot change during a boot,
/// as kept.
#[test]
fn the_policys_boot_facts_are_kept_while_their_files_are_the_same() {
    let Some(s) = System::as_root() else { return };
    // an unsigned module: judged by enforcement and lockdown alone
    let data = fs::read(&s.module).unwrap();
    fs::write(&s.module, kabi::module::signature::split(&data).0).unwrap();
    let kver = s.dirname.file_name().unwrap().to_str().unwrap().to_string();
    let config = s.root.join("boot").join(format!("config-{kver}"));
    fs::create_dir_all(config.parent().unwrap()).unwrap();
    let lock = "CONFIG_MODULE_SIG=y\nCONFIG_SECURITY_LOCKDOWN_LSM=y\nCONFIG_LOCK_DOWN_IN_EFI_SECURE_BOOT=y\n";
    let write_config = |force: char, when: u64| {
        fs::write(&config, format!("{lock}CONFIG_MODULE_SIG_FORCE={force}\n")).unwrap();
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(when);
        fs::File::options()
            .write(true)
            .open(&config)
            .unwrap()
            .set_modified(t)
            .unwrap();
    };
    write_config('n', 1_700_000_000);
    let meta = || fs::metadata(&config).unwrap();
    let first = meta();
    s.write("proc/cmdline", "ro quiet\n");
    // a UEFI machine before efivarfs is mounted
    let efivars = s.root.join("sys/firmware/efi/efivars");
    fs::create_dir_all(&efivars).unwrap();
    let rejected = "  EKEYREJECTED: Loading of unsigned module is rejected";

    // the first run reads kallsyms and every file of the policy, and keeps the facts
    let (v, source) = s.run(None);
    assert_eq!(v, Ok(()));
    assert!(from_kallsyms(&source), "{source}");
    let abi = s.snapshot("running-abi").expect("written");
    let facts = abi
        .lines()
        .find_map(|l| l.strip_prefix("sig_boot "))
        .expect("a sig_boot line");
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    assert!(facts.starts_with("config="), "{facts}");
    assert!(
        facts.contains(&hex(b"CONFIG_MODULE_SIG_FORCE=n\n")),
        "{facts}"
    );
    assert!(
        facts.ends_with(&format!(" cmdline={} secure_boot=-", hex(b"ro quiet\n"))),
        "{facts}"
    );

    // the command line kept is the one used (it cannot change during a boot)
    s.write("proc/cmdline", "ro module.sig_enforce=1\n");
    let (v, source) = s.run(None);
    assert_eq!(v, Ok(()));
    assert!(!from_kallsyms(&source), "{source}");

    // the configuration rewritten in place, same size, its modification time put back: its
    // change time tells (a coarse clock ticks at least every 10 ms)
    std::thread::sleep(std::time::Duration::from_millis(20));
    write_config('y', 1_700_000_000);
    {
        use std::os::unix::fs::MetadataExt;
        let now = meta();
        assert_eq!(
            (now.ino(), now.len(), now.mtime(), now.mtime_nsec()),
            (first.ino(), first.len(), first.mtime(), first.mtime_nsec())
        );
        assert_ne!(
            (now.ctime(), now.ctime_nsec()),
            (first.ctime(), first.ctime_nsec())
        );
    }
    assert_eq!(s.run(None).0, Err(rejected.to_string()));
    write_config('n', 1_700_000_000);
    assert_eq!(s.run(None).0, Ok(()));

    // efivarfs mounted since, with Secure Boot on: lockdown (this configuration's), so the
    // variable was read
    fs::write(
        efivars.join("SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"),
        [6, 0, 0, 0, 1],
    )
    .unwrap();
    let why = s.run(None).0.unwrap_err();
    assert!(
        why.starts_with("  EPERM: Lockdown: ")
            && why.contains("unsigned module loading is restricted"),
        "{why}"
    );
    // the snapshot of the boot, with its facts, is still the one written first
    assert_eq!(s.snapshot("running-abi").as_deref(), Some(abi.as_str()));
}

/// A boot's loads do not pile up records for every later prediction to read: once the
/// records of `running-modules` name `APPEND_MODULES_MAX` modules, the next update rewrites
/// the file whole, the records folded in, and the run after it still predicts from the
/// snapshot (kallsyms is empty by then).
#[test]
fn the_records_of_many_loads_are_folded_into_the_file() {
    use kabi::load::snapshot::{APPEND_MODULES_MAX, Snapshot};
    let Some(s) = System::as_root() else { return };
    // nls_cp437 loaded again at a new address each time: each run's record names the one
    // gone and the one loaded
    let addr = |i: u64| 0xffff_ffff_c010_0000u64 + i * 0x10000;
    let list = |i: u64| {
        format!(
            "dummy 16384 0 - Live 0xffffffffc0001000\nnls_cp437 12288 0 - Live 0x{:x}\n",
            addr(i)
        )
    };
    let (v, src) = s.run(Some(&list(0)));
    assert_eq!(v, Ok(()));
    assert!(from_kallsyms(&src), "{src}");
    s.kallsyms(false);
    let (mut most, mut folded) = (0, 0);
    for i in 1..=APPEND_MODULES_MAX as u64 {
        let (v, src) = s.run(Some(&list(i)));
        assert_eq!((v, from_kallsyms(&src)), (Ok(()), false), "run {i}: {src}");
        let text = s.snapshot("running-modules").unwrap();
        let snap = Snapshot::parse(text.clone().into_bytes()).unwrap();
        let n = snap.record_modules();
        assert!(
            n <= APPEND_MODULES_MAX + 1,
            "run {i}: {n} module lines\n{text}"
        );
        most = most.max(n);
        if n == 0 {
            folded += 1;
            // the module as it is now, among the sorted header's modules
            assert!(
                text.contains(&format!("\nmodule nls_cp437 12288 {:x}\n", addr(i)))
                    && !text.contains("\n+"),
                "run {i}:\n{text}"
            );
        }
    }
    assert!(
        most >= APPEND_MODULES_MAX - 1,
        "the records grew to {most} module lines"
    );
    assert!(folded >= 1, "never rewritten");
    let (v, src) = s.run(None);
    assert_eq!((v, from_kallsyms(&src)), (Ok(()), false), "{src}");
}
