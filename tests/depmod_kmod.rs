//! `kabi depmod` against Debian's kmod 30 `depmod`, on real Debian kernels: the same input
//! tree is given to both tools (two identical copies under one temp dir, `kmod/` and `kabi/`,
//! whose paths have the same length), with the same explicit `-C <conf.d>`, and every file
//! kmod writes must come out byte for byte the same from kabi (and with the same mode);
//! exit status, stdout and stderr must be equal too, with each root's path replaced by
//! `<ROOT>`. kabi may write `modules.weakdep` and its scan cache `modules.kabi-cache`
//! besides, nothing else.
//!
//! Module files are hard-linked from the cache of unpacked kernels (the other files are
//! copied); a test that changes a module first replaces the link by a copy, so the cache is
//! never written. Everything the tools write goes to the temp dir.
//!
//! Scenarios: the full amd64 tree; the cloud tree (plus a second warm run, `-a`, and
//! changed, replaced, rewritten-in-place, removed and added modules); the cloud tree as
//! `.ko.xz` and as `.ko.zst` (recompressed once, cached under
//! `$KABI_CACHE/recompressed/<kver>-{xz,zst}`); depmod.d with `updates/`, `extra/`,
//! symlinked `weak-updates/`, `override`, `search`, `exclude` and `external`, with and
//! without `modules.order`; `-e` with `-E` (the modules of the `other` kernel of `common::kernels` against the
//! Module.symvers of `new`, whose `module_layout` differs) and
//! with `-F` (the stub System.map of the image package, and one made from the symvers);
//! `-n`; an explicit list of modules; `-A`; `-w` and `-v`; dependency cycles (made by
//! renaming an undefined symbol of a module to an export of a module that needs it); an
//! empty module directory; files kmod skips or reports (`build/`, FIFO, dangling symlink,
//! `.ko.gz`, which Debian's zlib-less kmod does not know); a relative `-b` with and without
//! a trailing slash and no KVER; command-line errors. The `.bin` indexes of the cloud tree
//! are also read back by kmod itself: `modprobe -d ROOT -S KVER --show-depends` of about
//! 200 module names, aliases, built-in modules and symbols must print the same for both
//! roots.
//!
//! Where kabi differs from kmod by design, only the rest is compared: `-v` (kabi prints its
//! own summary; exit status and files compared), a module path that cannot be read (kabi
//! reports it and leaves it out; kmod stops).

mod common;
use common::*;
use kabi::index::Index;
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

/// What kmod 30's depmod writes, in its order.
const KMOD_FILES: [&str; 10] = [
    "modules.dep",
    "modules.dep.bin",
    "modules.alias",
    "modules.alias.bin",
    "modules.softdep",
    "modules.symbols",
    "modules.symbols.bin",
    "modules.builtin.bin",
    "modules.builtin.alias.bin",
    "modules.devname",
];
/// What kabi may write besides.
const KABI_ONLY: [&str; 2] = ["modules.weakdep", "modules.kabi-cache"];

fn is_module(name: &str) -> bool {
    [".ko", ".ko.xz", ".ko.zst", ".ko.gz"]
        .iter()
        .any(|e| name.ends_with(e))
}

fn is_output(name: &str) -> bool {
    KMOD_FILES.contains(&name) || KABI_ONLY.contains(&name)
}

/// Recreate `src` at `dst`: directories made, symlinks recreated as they are, modules
/// hard-linked (copied if `link` is false or linking fails), other files copied; depmod's
/// outputs are left out.
fn copy_tree(src: &Path, dst: &Path, link: bool) {
    std::fs::create_dir_all(dst).unwrap_or_else(|e| panic!("{}: {e}", dst.display()));
    for e in std::fs::read_dir(src).unwrap_or_else(|e| panic!("{}: {e}", src.display())) {
        let e = e.unwrap();
        let (from, to) = (e.path(), dst.join(e.file_name()));
        let name = e.file_name().to_string_lossy().into_owned();
        let ft = e.file_type().unwrap();
        if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&from).unwrap(), &to).unwrap();
        } else if ft.is_dir() {
            copy_tree(&from, &to, link);
        } else if is_output(&name) {
            continue;
        } else if !(link && is_module(&name) && std::fs::hard_link(&from, &to).is_ok()) {
            std::fs::copy(&from, &to)
                .unwrap_or_else(|e| panic!("copy {} {}: {e}", from.display(), to.display()));
        }
    }
}

/// Replace a (possibly hard-linked) file by a private copy with the same content and mtime,
/// so that it can be changed without touching the cache it was linked from.
fn break_link(path: &Path) {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mtime = std::fs::metadata(path).unwrap().modified().unwrap();
    std::fs::remove_file(path).unwrap();
    std::fs::write(path, data).unwrap();
    set_mtime(path, mtime);
}

/// Set a file's mtime. The file must not be a hard link into the cache (see `break_link`).
fn set_mtime(path: &Path, t: SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(t))
        .unwrap_or_else(|e| panic!("set mtime of {}: {e}", path.display()));
}

fn mtime(path: &Path) -> SystemTime {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The cache of kernels and recompressed trees (as testdata/fetch-kernel.sh).
fn cache_root() -> PathBuf {
    match std::env::var_os("KABI_CACHE") {
        Some(c) if !c.is_empty() => PathBuf::from(c),
        _ => PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/kabi"),
    }
}

/// Is `kabi depmod` in this build? Checked after the kmod side of a test has run, so that
/// the kmod half is exercised even before the command exists.
fn require_kabi_depmod() {
    let out = run(kabi().args(["depmod", "--help"]));
    assert!(
        out.status.success(),
        "`kabi depmod --help` failed: the depmod command is not in this build\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Kmod,
    Kabi,
}
use Side::{Kabi, Kmod};

impl Side {
    fn name(self) -> &'static str {
        match self {
            Kmod => "kmod",
            Kabi => "kabi",
        }
    }
}

/// One run of a depmod: exit status, and stdout and stderr with the root replaced by
/// `<ROOT>`.
#[derive(Debug)]
struct Run {
    status: Option<i32>,
    stdout: String,
    stderr: String,
    secs: f64,
}

/// Two identical trees: `<tmp>/kmod` and `<tmp>/kabi`, each `ROOT/lib/modules/KVER`, and
/// `<tmp>/shared` for what both see at the same path (conf.d, external directories,
/// symvers, vendor modules).
struct Pair {
    tmp: tempfile::TempDir,
    kver: String,
}

impl Pair {
    /// A pair of copies of module directory `src` (modules hard-linked).
    fn new(src: &Path, kver: &str) -> Pair {
        let tmp = tempfile::tempdir().unwrap();
        let p = Pair {
            tmp,
            kver: kver.to_string(),
        };
        for s in [Kmod, Kabi] {
            copy_tree(src, &p.dir(s), true);
        }
        std::fs::create_dir_all(p.conf()).unwrap();
        p
    }

    /// A pair over a cached Debian kernel, or None (skipped: no kmod or no kernel).
    fn fetch(flavour: &str, abi: Option<&str>) -> Option<Pair> {
        if !require_tool("depmod") {
            return None;
        }
        let root = fetch_kernel(flavour, abi)?;
        let (src, kver) = module_dir(&root);
        Some(Pair::new(&src, &kver))
    }

    fn root(&self, s: Side) -> PathBuf {
        self.tmp.path().join(s.name())
    }
    fn dir(&self, s: Side) -> PathBuf {
        self.root(s).join("lib/modules").join(&self.kver)
    }
    /// Files both tools reach: inside kabi's root (kabi reads nothing outside its root),
    /// named by their outside path (which kabi maps inside its root, and kmod reads).
    fn shared(&self) -> PathBuf {
        self.root(Kabi).join("shared")
    }
    fn conf(&self) -> PathBuf {
        self.shared().join("depmod.d")
    }

    /// Apply the same change to both module directories.
    fn both(&self, f: impl Fn(&Path)) {
        for s in [Kmod, Kabi] {
            f(&self.dir(s));
        }
    }

    fn normalize(&self, s: Side, b: &[u8]) -> String {
        String::from_utf8_lossy(b).replace(&self.root(s).to_string_lossy().into_owned(), "<ROOT>")
    }

    /// `depmod -b ROOT -C CONF OPTS... KVER MODULES...` with the tool of side `s`.
    fn depmod(&self, s: Side, opts: &[&str], modules: &[PathBuf]) -> Run {
        let mut cmd = match s {
            Kmod => Command::new("depmod"),
            Kabi => {
                let mut c = kabi();
                c.arg("depmod");
                c
            }
        };
        let mut args: Vec<OsString> = vec!["-b".into(), self.root(s).into(), "-C".into()];
        args.push(self.conf().into());
        args.extend(opts.iter().map(OsString::from));
        args.push(self.kver.clone().into());
        args.extend(modules.iter().map(OsString::from));
        cmd.args(&args);
        let t = Instant::now();
        let out = run(&mut cmd);
        Run {
            status: out.status.code(),
            stdout: self.normalize(s, &out.stdout),
            stderr: self.normalize(s, &out.stderr),
            secs: t.elapsed().as_secs_f64(),
        }
    }

    /// Run both tools with the same options, kmod first; kmod's run, and the differences.
    fn run_both(
        &self,
        what: &str,
        opts: &[&str],
        modules: &dyn Fn(Side) -> Vec<PathBuf>,
    ) -> (Run, Vec<String>) {
        let k = self.depmod(Kmod, opts, &modules(Kmod));
        require_kabi_depmod();
        let a = self.depmod(Kabi, opts, &modules(Kabi));
        eprintln!(
            "{what}: kmod {:.2} s, kabi {:.2} s (exit {:?} / {:?})",
            k.secs, a.secs, k.status, a.status
        );
        let problems = same_run(what, &k, &a);
        (k, problems)
    }

    /// Every file kmod wrote, equal in kabi's tree (bytes and mode); and no other file in
    /// kabi's top directory than kmod's and KABI_ONLY.
    fn compare_outputs(&self, what: &str) -> Vec<String> {
        let mut problems = Vec::new();
        let (kd, ad) = (self.dir(Kmod), self.dir(Kabi));
        for name in KMOD_FILES {
            let (kp, ap) = (kd.join(name), ad.join(name));
            match (std::fs::read(&kp), std::fs::read(&ap)) {
                (Ok(k), Ok(a)) => {
                    if k != a {
                        problems.push(format!("{what}: {name}: {}", describe(name, &k, &a)));
                    }
                    let mode =
                        |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
                    if mode(&kp) != mode(&ap) {
                        problems.push(format!(
                            "{what}: {name}: mode kmod {:o}, kabi {:o}",
                            mode(&kp),
                            mode(&ap)
                        ));
                    }
                }
                (Ok(_), Err(e)) => problems.push(format!("{what}: {name}: kabi wrote none ({e})")),
                (Err(e), _) => panic!("{what}: kmod wrote no {name}: {e}"),
            }
        }
        let listing = |d: &Path, skip: &[&str]| -> BTreeSet<String> {
            std::fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| !skip.contains(&n.as_str()))
                .collect()
        };
        let (kl, al) = (listing(&kd, &[]), listing(&ad, &KABI_ONLY));
        if kl != al {
            problems.push(format!(
                "{what}: directory listings differ: only kmod {:?}, only kabi {:?}",
                kl.difference(&al).collect::<Vec<_>>(),
                al.difference(&kl).collect::<Vec<_>>()
            ));
        }
        problems
    }

    fn kmod_text(&self, name: &str) -> String {
        let p = self.dir(Kmod).join(name);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    /// The modules of kmod's tree, relative paths (sanity checks).
    fn module_count(&self) -> usize {
        walk(&self.dir(Kmod), &|p| is_module(&p.to_string_lossy())).len()
    }

    /// Path of the module file named `name` (without extension) under side `s`'s kernel/.
    fn find(&self, s: Side, name: &str) -> PathBuf {
        let found = walk(&self.dir(s).join("kernel"), &|p| {
            let f = p.file_name().unwrap().to_string_lossy();
            is_module(&f) && f.split('.').next() == Some(name)
        });
        assert_eq!(found.len(), 1, "module {name}: {found:?}");
        found.into_iter().next().unwrap()
    }

    /// Snapshot of the outputs of side `s`: (name, inode, mtime, bytes).
    fn snapshot(&self, s: Side) -> Vec<(String, u64, SystemTime, Vec<u8>)> {
        KMOD_FILES
            .iter()
            .filter_map(|n| {
                let p = self.dir(s).join(n);
                let m = std::fs::metadata(&p).ok()?;
                Some((
                    n.to_string(),
                    m.ino(),
                    m.modified().unwrap(),
                    std::fs::read(&p).unwrap(),
                ))
            })
            .collect()
    }
}

fn no_modules(_: Side) -> Vec<PathBuf> {
    Vec::new()
}

/// Exit status, stdout and stderr of two runs.
fn same_run(what: &str, k: &Run, a: &Run) -> Vec<String> {
    let mut problems = Vec::new();
    if k.status != a.status {
        problems.push(format!(
            "{what}: exit status kmod {:?}, kabi {:?}; kabi stderr: {}",
            k.status,
            a.status,
            a.stderr.lines().take(5).collect::<Vec<_>>().join(" | ")
        ));
    }
    if k.stdout != a.stdout {
        problems.push(format!(
            "{what}: stdout differs: {}",
            first_difference(k.stdout.as_bytes(), a.stdout.as_bytes())
        ));
    }
    if k.stderr != a.stderr {
        problems.push(format!(
            "{what}: stderr differs ({} / {} lines): {}",
            k.stderr.lines().count(),
            a.stderr.lines().count(),
            first_difference(k.stderr.as_bytes(), a.stderr.as_bytes())
        ));
    }
    problems
}

/// How two versions of an output file differ: the first differing line of a text file; of
/// an index, the first differing byte and the first differing entry.
fn describe(name: &str, kmod: &[u8], kabi: &[u8]) -> String {
    if !name.ends_with(".bin") {
        return first_difference(kmod, kabi);
    }
    let at = kmod
        .iter()
        .zip(kabi)
        .position(|(a, b)| a != b)
        .unwrap_or(kmod.len().min(kabi.len()));
    let hint = match (Index::parse(kmod), Index::parse(kabi)) {
        (Ok(k), Ok(a)) => {
            let (ek, ea) = (k.entries(), a.entries());
            match ek.iter().zip(&ea).find(|(x, y)| x != y) {
                Some((x, y)) => format!("first differing entry: kmod {x:?}, kabi {y:?}"),
                None if ek.len() != ea.len() => format!(
                    "entries: kmod {}, kabi {}; first extra: {:?}",
                    ek.len(),
                    ea.len(),
                    ek.get(ea.len()).or(ea.get(ek.len()))
                ),
                None => "same entries, different layout".into(),
            }
        }
        (k, a) => format!("parse: kmod {:?}, kabi {:?}", k.err(), a.err()),
    };
    format!(
        "bytes differ at offset {at} (kmod {} bytes, kabi {} bytes); {hint}",
        kmod.len(),
        kabi.len()
    )
}

fn assert_no_problems(problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

fn assert_success(what: &str, r: &Run) {
    assert_eq!(
        r.status,
        Some(0),
        "{what}: kmod depmod failed: {}",
        r.stderr
    );
}

/// Run both tools on the pair as it is and compare everything.
fn differential(p: &Pair, what: &str, opts: &[&str]) -> Vec<String> {
    let (k, mut problems) = p.run_both(what, opts, &no_modules);
    assert_success(what, &k);
    problems.extend(p.compare_outputs(what));
    problems
}

// ---------------------------------------------------------------------------------------
// modprobe reads both roots' indexes

/// A string that an alias pattern matches: `*` dropped, `?` and classes replaced.
fn alias_instance(pattern: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '*' => {}
            '?' => out.push('Q'),
            '[' => {
                let first = chars.next()?;
                if first == '!' || first == '^' {
                    return None;
                }
                out.push(first);
                for d in chars.by_ref() {
                    if d == ']' {
                        break;
                    }
                }
            }
            c => out.push(c),
        }
    }
    Some(out)
}

/// About 200 names modprobe resolves through the indexes: module names, instances of
/// alias patterns, built-in modules, symbols, and a name that is nowhere.
fn modprobe_sample(p: &Pair) -> Vec<String> {
    fn every<T: Clone>(v: &[T], n: usize) -> Vec<T> {
        let step = (v.len() / n).max(1);
        v.iter().step_by(step).take(n).cloned().collect()
    }
    let dep = p.kmod_text("modules.dep");
    let names: Vec<String> = dep
        .lines()
        .map(|l| {
            let path = l.split(':').next().unwrap();
            let base = path.rsplit('/').next().unwrap();
            base.split('.').next().unwrap().replace('-', "_")
        })
        .collect();
    let aliases: Vec<String> = p
        .kmod_text("modules.alias")
        .lines()
        .filter_map(|l| l.strip_prefix("alias "))
        .filter_map(|l| alias_instance(l.rsplit_once(' ')?.0))
        .collect();
    let builtin: Vec<String> = p
        .kmod_text("modules.builtin")
        .lines()
        .map(|l| {
            let base = l.rsplit('/').next().unwrap();
            base.split('.').next().unwrap().to_string()
        })
        .collect();
    let symbols: Vec<String> = p
        .kmod_text("modules.symbols")
        .lines()
        .filter_map(|l| Some(l.strip_prefix("alias ")?.split(' ').next()?.to_string()))
        .collect();
    let mut sample = every(&names, 100);
    sample.extend(every(&aliases, 70));
    sample.extend(every(&builtin, 20));
    sample.extend(every(&symbols, 10));
    sample.push("no_such_module_kabi".into());
    sample
}

fn modprobe_same(p: &Pair, what: &str) -> Vec<String> {
    let sample = modprobe_sample(p);
    assert!(sample.len() > 150, "sample of {} names only", sample.len());
    let show = |s: Side, name: &str| -> (Option<i32>, String, String) {
        let out = run(Command::new("modprobe")
            .arg("-d")
            .arg(p.root(s))
            .arg("-S")
            .arg(&p.kver)
            .arg("--show-depends")
            .arg(name));
        (
            out.status.code(),
            p.normalize(s, &out.stdout),
            p.normalize(s, &out.stderr),
        )
    };
    let mut problems = Vec::new();
    let mut resolved = 0;
    for name in &sample {
        let (k, a) = (show(Kmod, name), show(Kabi, name));
        if k.0 == Some(0) {
            resolved += 1;
        }
        if k != a {
            problems.push(format!(
                "{what}: modprobe --show-depends {name}: kmod-built root {k:?}, kabi-built root {a:?}"
            ));
        }
    }
    assert!(
        resolved * 10 > sample.len() * 8,
        "modprobe resolved only {resolved} of {} names on kmod's root",
        sample.len()
    );
    eprintln!(
        "{what}: modprobe --show-depends of {} names ({resolved} resolved)",
        sample.len()
    );
    problems.truncate(10);
    problems
}

// ---------------------------------------------------------------------------------------
// a. b. plain trees

#[test]
fn full_amd64_tree() {
    let Some(p) = Pair::fetch("amd64", None) else {
        return;
    };
    let problems = differential(&p, "amd64", &[]);
    let n = p.kmod_text("modules.dep").lines().count();
    assert_eq!(n, p.module_count(), "kmod: one modules.dep line per module");
    assert!(n > 3000, "{n} modules");
    assert_no_problems(&problems);
    assert!(
        p.dir(Kabi).join("modules.kabi-cache").is_file(),
        "kabi wrote no scan cache"
    );
}

#[test]
fn cloud_tree_and_modprobe_reads_it() {
    let Some(p) = Pair::fetch("cloud-amd64", None) else {
        return;
    };
    let mut problems = differential(&p, "cloud", &[]);
    let n = p.kmod_text("modules.dep").lines().count();
    assert_eq!(n, p.module_count(), "kmod: one modules.dep line per module");
    assert!(
        p.dir(Kabi).join("modules.kabi-cache").is_file(),
        "kabi wrote no scan cache"
    );
    problems.extend(modprobe_same(&p, "cloud"));
    assert_no_problems(&problems);
}

/// A second run on an unchanged tree (warm cache, with `-a`) writes the same files; then
/// changes to modules are seen: one module's file replaced by another module's, one
/// rewritten in place with the same size and mtime, one removed, one added.
#[test]
fn warm_cache_and_changed_modules() {
    let Some(p) = Pair::fetch("cloud-amd64", None) else {
        return;
    };
    let mut problems = differential(&p, "cloud cold", &[]);
    let first = p.snapshot(Kabi);
    assert_eq!(first.len(), KMOD_FILES.len());

    // unchanged tree: same bytes (kmod's tree is left as it was)
    let a = p.depmod(Kabi, &["-a"], &[]);
    eprintln!("cloud warm: kabi {:.2} s", a.secs);
    assert_eq!(a.status, Some(0), "warm run: {}", a.stderr);
    assert!(
        a.stdout.is_empty() && a.stderr.is_empty(),
        "warm run printed {a:?}"
    );
    for ((n, _, _, old), (_, _, _, new)) in first.iter().zip(&p.snapshot(Kabi)) {
        if old != new {
            problems.push(format!("warm run: {n} changed: {}", describe(n, old, new)));
        }
    }
    problems.extend(differential(&p, "cloud warm -a", &["-a"]));

    // dummy.ko gets xt_nat.ko's content: its deps and aliases change, its name does not
    p.both(|d| {
        let rel = |name: &str| {
            walk(&d.join("kernel"), &|f| f.file_name().unwrap() == name)
                .into_iter()
                .next()
                .unwrap_or_else(|| panic!("{name} not in {}", d.display()))
        };
        let dummy = rel("dummy.ko");
        std::fs::remove_file(&dummy).unwrap();
        std::fs::copy(rel("xt_nat.ko"), &dummy).unwrap();
    });
    problems.extend(differential(&p, "dummy.ko replaced by xt_nat.ko", &[]));
    assert!(
        p.kmod_text("modules.dep")
            .lines()
            .any(|l| l.starts_with("kernel/drivers/net/dummy.ko: ") && l.contains("nf_nat.ko")),
        "kmod did not see the new dummy.ko"
    );

    // virtio_net.ko rewritten in place: same inode, size and mtime, one alias changed
    // (first made a private copy, and kabi's cache made to know that copy)
    let vnet: Vec<PathBuf> = [Kmod, Kabi]
        .iter()
        .map(|&s| p.find(s, "virtio_net"))
        .collect();
    for f in &vnet {
        break_link(f);
    }
    let a = p.depmod(Kabi, &[], &[]);
    assert_eq!(a.status, Some(0), "{}", a.stderr);
    for f in &vnet {
        let (t, mut data) = (mtime(f), std::fs::read(f).unwrap());
        let at = data
            .windows(13)
            .position(|w| w == b"alias=virtio:")
            .expect("virtio_net has a virtio: alias");
        data[at + 6] = b'w'; // "virtio:..." -> "wirtio:..."
        use std::io::{Seek, SeekFrom, Write};
        let mut file = std::fs::File::options().write(true).open(f).unwrap();
        file.seek(SeekFrom::Start(at as u64 + 6)).unwrap();
        file.write_all(&data[at + 6..at + 7]).unwrap();
        drop(file);
        set_mtime(f, t);
    }
    problems.extend(differential(&p, "virtio_net.ko rewritten in place", &[]));
    assert!(
        p.kmod_text("modules.alias").contains("alias wirtio:"),
        "kmod did not see the rewritten alias"
    );

    // a module removed, one added (a copy of dummy.ko under another name)
    p.both(|d| {
        let f = walk(&d.join("kernel"), &|f| f.file_name().unwrap() == "udf.ko");
        std::fs::remove_file(&f[0]).unwrap();
        std::fs::copy(
            d.join("kernel/drivers/net/dummy.ko"),
            d.join("kernel/drivers/net/dummy2.ko"),
        )
        .unwrap();
    });
    problems.extend(differential(&p, "udf.ko removed, dummy2.ko added", &[]));
    assert_no_problems(&problems);
}

// ---------------------------------------------------------------------------------------
// c. compressed trees

/// The cloud tree with every module compressed as the kernel's `modules_install` does,
/// built once in parallel and cached (built in a temp dir, then renamed: a killed run
/// leaves no half tree).
fn recompressed(src: &Path, kver: &str, kind: &str) -> PathBuf {
    let dest = cache_root()
        .join("recompressed")
        .join(format!("{kver}-{kind}"));
    if dest.is_dir() {
        return dest;
    }
    let stem = format!("{kver}-{kind}.tmp.");
    // what a killed run left (its process is gone)
    if let Ok(entries) = std::fs::read_dir(dest.parent().unwrap()) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix(&stem)
                && !Path::new("/proc").join(pid).exists()
            {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let tmp = dest.with_file_name(format!("{stem}{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    copy_tree(src, &tmp, false);
    let files = walk(&tmp, &|p| p.to_string_lossy().ends_with(".ko"));
    let (tool, args): (&str, &[&str]) = match kind {
        "xz" => ("xz", &["--check=crc32", "--lzma2=dict=1MiB"]),
        "zst" => ("zstd", &["-q", "--rm"]),
        _ => unreachable!(),
    };
    assert!(
        require_tool(tool),
        "{tool} is needed to build the {kind} tree"
    );
    let t = Instant::now();
    let chunks: Vec<&[PathBuf]> = files.chunks(24).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(chunk) = chunks.get(i) else { break };
                    let out = run(Command::new(tool).args(args).args(*chunk));
                    assert!(
                        out.status.success(),
                        "{tool}: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            });
        }
    });
    let left = walk(&tmp, &|p| p.to_string_lossy().ends_with(".ko")).len();
    assert_eq!(left, 0, "{left} modules left uncompressed");
    eprintln!(
        "built {} ({} modules) in {:.1} s",
        dest.display(),
        files.len(),
        t.elapsed().as_secs_f64()
    );
    if std::fs::rename(&tmp, &dest).is_err() {
        // another run finished first
        let _ = std::fs::remove_dir_all(&tmp);
        assert!(dest.is_dir(), "cannot create {}", dest.display());
    }
    dest
}

fn compressed_cloud_tree(kind: &str) {
    if !require_tool("depmod") {
        return;
    }
    let Some(root) = fetch_kernel("cloud-amd64", None) else {
        return;
    };
    let (src, kver) = module_dir(&root);
    let dir = recompressed(&src, &kver, kind);
    let p = Pair::new(&dir, &kver);
    let problems = differential(&p, &format!("cloud .ko.{kind}"), &[]);
    let dep = p.kmod_text("modules.dep");
    assert_eq!(dep.lines().count(), p.module_count());
    assert!(
        dep.lines().all(|l| l
            .split(':')
            .next()
            .unwrap()
            .ends_with(&format!(".ko.{kind}"))),
        "kmod's modules.dep names other files than .ko.{kind}"
    );
    assert_no_problems(&problems);
}

#[test]
fn cloud_tree_xz() {
    compressed_cloud_tree("xz");
}

#[test]
fn cloud_tree_zst() {
    compressed_cloud_tree("zst");
}

// ---------------------------------------------------------------------------------------
// d. depmod.d

/// The cloud tree plus modules in updates/, extra/, updates/sub/ (excluded), extra/vendor/,
/// weak-updates/ (symlinks: absolute to a vendor directory outside the tree, relative into
/// the tree) and an external directory; vendor modules come from the amd64 tree of the
/// same ABI (names the cloud tree does not have; 8139too needs mii).
fn config_pair() -> Option<Pair> {
    let p = Pair::fetch("cloud-amd64", None)?;
    let amd64 = fetch_kernel("amd64", None)?;
    let (adir, _) = module_dir(&amd64);
    let from_amd64 = |name: &str| -> PathBuf {
        let f = walk(&adir.join("kernel"), &|f| f.file_name().unwrap() == name);
        assert_eq!(f.len(), 1, "{name} in the amd64 tree: {f:?}");
        f[0].clone()
    };
    let (vendor, ext) = (p.shared().join("vendor"), p.shared().join("ext"));
    std::fs::create_dir_all(&vendor).unwrap();
    std::fs::create_dir_all(&ext).unwrap();
    for m in ["mii.ko", "soundcore.ko"] {
        std::fs::copy(from_amd64(m), vendor.join(m)).unwrap();
    }
    std::fs::copy(from_amd64("8139too.ko"), ext.join("8139too.ko")).unwrap();
    std::fs::copy(p.find(Kmod, "libcrc32c"), ext.join("libcrc32c.ko")).unwrap();
    let (e1000, e1000e) = (from_amd64("e1000.ko"), from_amd64("e1000e.ko"));
    p.both(|d| {
        let k = |name: &str| {
            let f = walk(&d.join("kernel"), &|f| f.file_name().unwrap() == name);
            f.into_iter().next().unwrap_or_else(|| panic!("{name}"))
        };
        for sub in ["updates/sub", "extra/vendor", "weak-updates"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        for (m, to) in [
            ("dummy.ko", "updates"),
            ("udf.ko", "updates"),
            ("dummy.ko", "extra"),
            ("xt_nat.ko", "extra"),
            ("vfat.ko", "extra"),
            ("fat.ko", "updates/sub"),
        ] {
            std::fs::copy(k(m), d.join(to).join(m)).unwrap();
        }
        std::fs::copy(&e1000, d.join("extra/vendor/e1000.ko")).unwrap();
        std::fs::copy(&e1000e, d.join("updates/sub/e1000e.ko")).unwrap();
        for m in ["mii.ko", "soundcore.ko"] {
            std::os::unix::fs::symlink(vendor.join(m), d.join("weak-updates").join(m)).unwrap();
        }
        std::os::unix::fs::symlink(
            "../kernel/drivers/net/dummy.ko",
            d.join("weak-updates/dummy.ko"),
        )
        .unwrap();
    });
    Some(p)
}

fn write_conf(p: &Pair, files: &[(&str, String)]) {
    let _ = std::fs::remove_dir_all(p.conf());
    std::fs::create_dir_all(p.conf()).unwrap();
    for (name, text) in files {
        std::fs::write(p.conf().join(name), text).unwrap();
    }
}

/// The first field of each modules.dep line of kmod's output.
fn kmod_choices(p: &Pair) -> Vec<String> {
    p.kmod_text("modules.dep")
        .lines()
        .map(|l| l.split(':').next().unwrap().to_string())
        .collect()
}

#[test]
fn depmod_d_search_override_exclude_external() {
    let Some(p) = config_pair() else {
        return;
    };
    let ext = p.shared().join("ext");
    write_conf(
        &p,
        &[
            (
                "50-kabi.conf",
                format!(
                    "# kabi test\nsearch updates extra built-in weak-updates\n\
                     override udf * kernel/fs/udf\nexclude sub\nexternal * {}\n",
                    ext.display()
                ),
            ),
            ("10-first.conf", "# only a comment\n\n".into()),
        ],
    );
    let problems = differential(&p, "depmod.d", &[]);
    let c = kmod_choices(&p);
    for want in [
        "updates/dummy.ko",
        "kernel/fs/udf/udf.ko",
        "extra/xt_nat.ko",
        "extra/vfat.ko",
        "extra/vendor/e1000.ko",
        "weak-updates/mii.ko",
        "weak-updates/soundcore.ko",
        "kernel/lib/libcrc32c.ko",
        &format!("{}/8139too.ko", ext.display()),
    ] {
        assert!(c.iter().any(|x| x == want), "kmod did not choose {want}");
    }
    assert!(
        !c.iter()
            .any(|x| x.contains("e1000e") || x.contains("/sub/"))
    );
    assert_no_problems(&problems);
}

#[test]
fn depmod_d_without_modules_order() {
    let Some(p) = config_pair() else {
        return;
    };
    p.both(|d| std::fs::remove_file(d.join("modules.order")).unwrap());
    let ext = p.shared().join("ext");
    write_conf(
        &p,
        &[(
            "kabi.conf",
            format!(
                "search external updates built-in extra weak-updates\n\
                 external 6\\.1\\.0-.* {}\noverride dummy * extra\nexclude sub vendor\n",
                ext.display()
            ),
        )],
    );
    let problems = differential(&p, "depmod.d, no modules.order", &[]);
    let c = kmod_choices(&p);
    for want in [
        "extra/dummy.ko",
        "updates/udf.ko",
        "kernel/net/netfilter/xt_nat.ko",
        "kernel/fs/fat/vfat.ko",
        &format!("{}/libcrc32c.ko", ext.display()),
    ] {
        assert!(c.iter().any(|x| x == want), "kmod did not choose {want}");
    }
    assert!(!c.iter().any(|x| x.contains("e1000")));
    assert_no_problems(&problems);
}

// ---------------------------------------------------------------------------------------
// e. -e with -E and -F

/// Module.symvers of cloud-amd64 ABI `abi`.
fn symvers_of(abi: &str) -> Option<String> {
    let root = kernels::cloud()?.fetch(abi)?;
    let (_, kver) = module_dir(&root);
    let s = root.join(format!("usr/src/linux-headers-{kver}/Module.symvers"));
    assert!(s.is_file(), "{}", s.display());
    Some(s.to_string_lossy().into_owned())
}

fn count_warnings(stderr: &str) -> (usize, usize) {
    let n = |what: &str| stderr.lines().filter(|l| l.contains(what)).count();
    (
        n(" disagrees about version of symbol "),
        n(" needs unknown symbol "),
    )
}

#[test]
fn unknown_and_disagreeing_symbols_with_symvers() {
    let Some(kn) = kernels::cloud() else { return };
    let Some(p) = Pair::fetch("cloud-amd64", Some(kn.other)) else {
        return;
    };
    let (Some(sv_new), Some(sv_other)) = (symvers_of(kn.new), symvers_of(kn.other)) else {
        return;
    };
    // other's modules against new's symvers: every module disagrees (module_layout at least)
    let (k, mut problems) = p.run_both("other -e -E new", &["-e", "-E", &sv_new], &no_modules);
    assert_success("-e -E", &k);
    let (dis, unk) = count_warnings(&k.stderr);
    let modules = walk(&p.dir(Kmod), &|f| f.extension().is_some_and(|e| e == "ko")).len();
    eprintln!("kmod: {dis} disagreements, {unk} unknown symbols in {modules} modules");
    assert!(modules > 1000 && dis > modules, "kmod: {dis} / {unk}");
    problems.extend(p.compare_outputs("other -e -E new"));

    // its own symvers: nothing to say
    let (k, more) = p.run_both("other -e -E other", &["-e", "-E", &sv_other], &no_modules);
    assert_eq!(count_warnings(&k.stderr), (0, 0), "{}", k.stderr);
    problems.extend(more);

    // -E without -e: checked but not printed; -e without -E or -F: kmod's warning;
    // -E and -F: -E wins
    let (k, more) = p.run_both("other -E new", &["-E", &sv_new], &no_modules);
    assert!(k.stderr.is_empty(), "{}", k.stderr);
    problems.extend(more);
    let (k, more) = p.run_both("other -e", &["-e"], &no_modules);
    assert!(k.stderr.contains("-e needs -E or -F"), "{}", k.stderr);
    problems.extend(more);
    problems.extend(p.compare_outputs("other -e"));
    let stub = Path::new(&sv_new)
        .ancestors()
        .nth(4)
        .unwrap()
        .join("boot")
        .read_dir()
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|f| {
            f.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("System.map-")
        })
        .expect("boot/System.map-* of new");
    let stub = stub.to_string_lossy().into_owned();
    let (k, more) = p.run_both(
        "other -e -E new -F",
        &["-e", "-E", &sv_new, "-F", &stub],
        &no_modules,
    );
    assert_eq!(count_warnings(&k.stderr), (dis, unk));
    problems.extend(more);
    assert_no_problems(&problems);
}

#[test]
fn unknown_symbols_with_system_map() {
    let Some(kn) = kernels::cloud() else { return };
    let Some(p) = Pair::fetch("cloud-amd64", Some(kn.other)) else {
        return;
    };
    let Some(root_new) = kn.fetch(kn.new) else {
        return;
    };
    let (_, kver_new) = module_dir(&root_new);
    let mut problems = Vec::new();

    // the image package's System.map: an 83-byte stub, so every vmlinux symbol is unknown
    let stub = root_new.join(format!("boot/System.map-{kver_new}"));
    assert!(stub.is_file(), "{}", stub.display());
    let stub = stub.to_string_lossy().into_owned();
    let (k, more) = p.run_both("other -e -F stub", &["-e", "-F", &stub], &no_modules);
    problems.extend(more);
    let (dis, unk) = count_warnings(&k.stderr);
    assert!(
        dis == 0 && unk > 10_000,
        "kmod with the stub: {dis} / {unk}"
    );

    // a System.map made from new's Module.symvers, every 40th vmlinux symbol left out, with
    // lines of other types around
    let symvers = std::fs::read_to_string(
        root_new.join(format!("usr/src/linux-headers-{kver_new}/Module.symvers")),
    )
    .unwrap();
    let mut map = String::new();
    for (i, line) in symvers
        .lines()
        .filter(|l| l.contains("\tvmlinux\t"))
        .enumerate()
    {
        let sym = line.split('\t').nth(1).unwrap();
        map.push_str(&format!("ffffffff81{i:06x} T {sym}\n"));
        if i % 40 != 7 {
            map.push_str(&format!("ffffffff82{i:06x} r __ksymtab_{sym}\n"));
        }
    }
    let made = p.shared().join("System.map");
    std::fs::create_dir_all(p.shared()).unwrap();
    std::fs::write(&made, map).unwrap();
    let made = made.to_string_lossy().into_owned();
    let (k, more) = p.run_both("other -e -F made", &["-e", "-F", &made], &no_modules);
    problems.extend(more);
    problems.extend(p.compare_outputs("other -e -F made"));
    let (dis, unk) = count_warnings(&k.stderr);
    eprintln!("kmod with a made System.map: {dis} disagreements, {unk} unknown");
    assert!(dis == 0 && unk > 0 && unk < 10_000, "kmod: {dis} / {unk}");
    assert_no_problems(&problems);
}

// ---------------------------------------------------------------------------------------
// f. g. h. -n, a list of modules, -A

#[test]
fn dry_run_prints_and_writes_nothing() {
    let Some(p) = Pair::fetch("cloud-amd64", None) else {
        return;
    };
    let (k, mut problems) = p.run_both("cloud -n", &["-n"], &no_modules);
    assert_success("-n", &k);
    assert!(
        k.stdout.contains("kernel/fs/udf/udf.ko: "),
        "kmod -n printed no modules.dep"
    );
    assert!(
        k.stdout.len() > 300_000,
        "kmod -n printed {} bytes",
        k.stdout.len()
    );
    for s in [Kmod, Kabi] {
        for n in KMOD_FILES {
            if p.dir(s).join(n).exists() {
                assert!(s == Kabi, "kmod -n wrote {n}");
                problems.push(format!("kabi -n wrote {n}"));
            }
        }
    }
    // -A -n does nothing at all
    let (k, more) = p.run_both("cloud -A -n", &["-A", "-n"], &no_modules);
    assert!(k.stdout.is_empty(), "kmod -A -n printed something");
    problems.extend(more);
    assert_no_problems(&problems);
}

#[test]
fn explicit_list_of_modules() {
    let Some(p) = Pair::fetch("cloud-amd64", None) else {
        return;
    };
    let names = [
        "xt_nat",
        "nf_nat",
        "nf_conntrack",
        "x_tables",
        "libcrc32c",
        "nf_defrag_ipv4",
        "nf_defrag_ipv6",
        "udf",
        "crc-itu-t",
        "vfat",
        "fat",
        "btrfs",
        "dummy",
    ];
    // and one module outside the module directory (same path for both)
    let outside = p.shared().join("list/virtio_net.ko");
    std::fs::create_dir_all(outside.parent().unwrap()).unwrap();
    std::fs::copy(p.find(Kmod, "virtio_net"), &outside).unwrap();
    let modules = |s: Side| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = names.iter().map(|n| p.find(s, n)).collect();
        v.push(outside.clone());
        v
    };
    let (k, mut problems) = p.run_both("module list", &[], &modules);
    assert_success("module list", &k);
    problems.extend(p.compare_outputs("module list"));
    let dep = p.kmod_text("modules.dep");
    assert_eq!(dep.lines().count(), names.len() + 1, "{dep}");
    assert!(dep.contains(&format!("{}:", outside.display())), "{dep}");
    assert_no_problems(&problems);
}

#[test]
fn maybe_all_rebuilds_only_when_outdated() {
    let Some(p) = Pair::fetch("cloud-amd64", None) else {
        return;
    };
    // no modules.dep yet: -A builds everything
    let mut problems = differential(&p, "-A, no modules.dep", &["-A"]);
    assert!(
        p.dir(Kmod).join("modules.dep").is_file(),
        "kmod -A built nothing"
    );

    // up to date: nothing is touched, also with a newer file that is not a module
    let still = |what: &str, problems: &mut Vec<String>| {
        let before = [p.snapshot(Kmod), p.snapshot(Kabi)];
        problems.extend(p.run_both(what, &["-A"], &no_modules).1);
        for (s, old) in [Kmod, Kabi].into_iter().zip(before) {
            let new = p.snapshot(s);
            let changed: Vec<&String> = old
                .iter()
                .zip(&new)
                .filter(|(a, b)| a.1 != b.1 || a.2 != b.2)
                .map(|(a, _)| &a.0)
                .collect();
            if !changed.is_empty() {
                let msg = format!("{what}: {} rewrote {changed:?}", s.name());
                assert!(s == Kabi, "{msg}");
                problems.push(msg);
            }
        }
    };
    still("-A, up to date", &mut problems);
    let dep_time =
        mtime(&p.dir(Kmod).join("modules.dep")).max(mtime(&p.dir(Kabi).join("modules.dep")));
    let later = dep_time + Duration::from_secs(10);
    p.both(|d| {
        let f = d.join("kernel/notes.txt");
        std::fs::write(&f, "not a module\n").unwrap();
        set_mtime(&f, later);
    });
    still("-A, a newer non-module file", &mut problems);

    // a module newer than modules.dep (by whole seconds): rebuilt
    p.both(|d| {
        let f = walk(&d.join("kernel"), &|f| f.file_name().unwrap() == "dummy.ko")[0].clone();
        break_link(&f);
        set_mtime(&f, later);
    });
    let before = p.snapshot(Kabi);
    problems.extend(differential(&p, "-A, a newer module", &["-A"]));
    let after = p.snapshot(Kabi);
    let dep = |s: &[(String, u64, SystemTime, Vec<u8>)]| (s[0].1, s[0].2);
    if dep(&before) == dep(&after) {
        problems.push("-A, a newer module: kabi did not rewrite modules.dep".into());
    }
    assert_no_problems(&problems);
}

// ---------------------------------------------------------------------------------------
// cycles

/// `module`'s file with one undefined symbol renamed (every `\0old\0` of the file, so the
/// symbol table and `__versions` alike) to an export of `provider` of the same length: the
/// module then needs `provider`.
fn needing(p: &Pair, module: &str, provider: &str) -> Vec<u8> {
    let path = p.find(Kmod, module);
    let m = kabi::Module::open(&path).unwrap_or_else(|e| panic!("{e}"));
    let prov = kabi::Module::open(p.find(Kmod, provider)).unwrap_or_else(|e| panic!("{e}"));
    let mut data = std::fs::read(&path).unwrap();
    let (old, new) = m
        .undefined
        .iter()
        .filter(|u| !u.weak && u.name.len() >= 8)
        .find_map(|u| {
            let e = prov.exports.iter().find(|e| e.name.len() == u.name.len())?;
            Some((u.name.clone(), e.name.clone()))
        })
        .unwrap_or_else(|| panic!("no symbol of {module} to rename to an export of {provider}"));
    let (old, new) = (format!("\0{old}\0"), format!("\0{new}\0"));
    let mut n = 0;
    let mut at = 0;
    while let Some(i) = data[at..]
        .windows(old.len())
        .position(|w| w == old.as_bytes())
    {
        data[at + i..at + i + old.len()].copy_from_slice(new.as_bytes());
        at += i + old.len() - 1;
        n += 1;
    }
    assert!(n > 0, "{old:?} not found in {module}");
    data
}

/// Two cycles made by renaming undefined symbols (nf_nat -> nf_conntrack -> nf_defrag_ipv6
/// -> nf_nat, ip_tables -> x_tables -> ip_tables): kmod reports each cycle and the count,
/// writes nothing and exits 1.
#[test]
fn dependency_cycles_are_errors() {
    let Some(p) = Pair::fetch("cloud-amd64", None) else {
        return;
    };
    let patched = [
        ("nf_defrag_ipv6", needing(&p, "nf_defrag_ipv6", "nf_nat")),
        ("x_tables", needing(&p, "x_tables", "ip_tables")),
    ];
    for s in [Kmod, Kabi] {
        for (m, data) in &patched {
            let f = p.find(s, m);
            std::fs::remove_file(&f).unwrap();
            std::fs::write(&f, data).unwrap();
        }
    }
    let (k, mut problems) = p.run_both("cycles", &[], &no_modules);
    assert_eq!(k.status, Some(1), "kmod: {}", k.stderr);
    assert_eq!(
        k.stderr.matches("Cycle detected").count(),
        2,
        "kmod: {}",
        k.stderr
    );
    assert!(
        k.stderr.contains("Found 5 modules in dependency cycles!"),
        "kmod: {}",
        k.stderr
    );
    for s in [Kmod, Kabi] {
        for n in KMOD_FILES {
            if p.dir(s).join(n).exists() {
                assert!(s == Kabi, "kmod wrote {n} despite the cycles");
                problems.push(format!("cycles: kabi wrote {n}"));
            }
        }
    }
    // the same with -n: nothing printed on stdout either
    let (k, more) = p.run_both("cycles -n", &["-n"], &no_modules);
    assert_eq!(k.status, Some(1));
    problems.extend(more);
    assert_no_problems(&problems);
}

// ---------------------------------------------------------------------------------------
// -w, -v, odd trees, command-line errors

/// `-w` (duplicate aliases: 18 on the amd64 tree) and `-v`.
#[test]
fn warn_duplicates_and_verbose() {
    let Some(p) = Pair::fetch("amd64", None) else {
        return;
    };
    let (k, mut problems) = p.run_both("amd64 -w", &["-w"], &no_modules);
    assert_success("-w", &k);
    assert!(
        k.stderr
            .contains("depmod: WARNING: duplicate module alias:"),
        "kmod -w: {}",
        k.stderr
    );
    problems.extend(p.compare_outputs("amd64 -w"));
    // -v: kmod prints a "needs" line per symbol on stdout, kabi a summary on stderr (its
    // own -v): only exit status and files are compared
    let k = p.depmod(Kmod, &["-v"], &[]);
    assert!(k.stdout.lines().count() > 5000, "kmod -v printed little");
    let a = p.depmod(Kabi, &["-v"], &[]);
    if k.status != a.status {
        problems.push(format!(
            "amd64 -v: exit kmod {:?}, kabi {:?}",
            k.status, a.status
        ));
    }
    problems.extend(p.compare_outputs("amd64 -v"));
    assert_no_problems(&problems);
}

/// A module directory with no module and none of modules.order, modules.builtin,
/// modules.builtin.modinfo: kmod writes every file, some of them empty.
#[test]
fn empty_module_directory() {
    if !require_tool("depmod") {
        return;
    }
    let src = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(src.path().join("kernel")).unwrap();
    let p = Pair::new(src.path(), "6.1.0-99-empty");
    let problems = differential(&p, "empty", &[]);
    assert_no_problems(&problems);
}

/// Files and directories kmod skips: `build` (skipped at any depth), a hidden directory
/// (walked), a directory named like a module, `.bak`, `.o`, `.KO`; then what kmod reports
/// and skips: a FIFO named `.ko` (`unsupported file type`) and a dangling symlink named
/// `.ko` (reported with an fd number: for these only exit status and files are compared,
/// and kabi must name both on stderr).
#[test]
fn odd_files_in_the_tree() {
    let Some(p) = Pair::fetch("cloud-amd64", None) else {
        return;
    };
    let Some(amd64) = fetch_kernel("amd64", None) else {
        return;
    };
    let (adir, _) = module_dir(&amd64);
    let from_amd64 = |name: &str| -> PathBuf {
        walk(&adir.join("kernel"), &|f| f.file_name().unwrap() == name)[0].clone()
    };
    let (mii, e1000, soundcore) = (
        from_amd64("mii.ko"),
        from_amd64("e1000.ko"),
        from_amd64("soundcore.ko"),
    );
    p.both(|d| {
        let x = d.join("extra");
        for sub in ["build", "sub/build", "y.ko", ".hidden"] {
            std::fs::create_dir_all(x.join(sub)).unwrap();
        }
        std::fs::copy(&mii, x.join("build/mii.ko")).unwrap();
        std::fs::copy(&e1000, x.join("sub/build/e1000.ko")).unwrap();
        std::fs::copy(&mii, x.join(".hidden/mii.ko")).unwrap();
        std::fs::copy(&e1000, x.join("y.ko/e1000.ko")).unwrap();
        std::fs::copy(&soundcore, x.join("soundcore.ko.bak")).unwrap();
        std::fs::copy(&soundcore, x.join("soundcore.o")).unwrap();
        std::fs::copy(&soundcore, x.join("SOUNDCORE.KO")).unwrap();
    });
    let mut problems = differential(&p, "odd files", &[]);
    let c = kmod_choices(&p);
    assert!(c.contains(&"extra/.hidden/mii.ko".to_string()), "{c:?}");
    assert!(c.contains(&"extra/y.ko/e1000.ko".to_string()), "{c:?}");
    assert!(
        !c.iter()
            .any(|c| c.contains("build/") || c.contains("soundcore"))
    );

    p.both(|d| {
        let x = d.join("extra");
        let out = run(Command::new("mkfifo").arg(x.join("fifo.ko")));
        assert!(out.status.success(), "mkfifo: {out:?}");
        std::os::unix::fs::symlink("/nonexistent/kabi.ko", x.join("dangling.ko")).unwrap();
    });
    let k = p.depmod(Kmod, &[], &[]);
    assert_success("fifo and dangling symlink", &k);
    assert!(
        k.stderr.contains("fifo.ko") && k.stderr.contains("dangling.ko"),
        "kmod: {}",
        k.stderr
    );
    let a = p.depmod(Kabi, &[], &[]);
    if a.status != Some(0) || !a.stderr.contains("fifo.ko") || !a.stderr.contains("dangling.ko") {
        problems.push(format!(
            "fifo and dangling symlink: kabi exit {:?}, stderr {:?} (kmod: {:?})",
            a.status, a.stderr, k.stderr
        ));
    }
    problems.extend(p.compare_outputs("fifo and dangling symlink"));
    assert_no_problems(&problems);
}

/// A `.ko.gz` in the tree: Debian's kmod 30 is built without zlib, so for its depmod the
/// file is not a module at all.
#[test]
fn gzip_module_is_indexed_as_kmod_indexes_the_plain_file() {
    // Debian's kmod 30 is built without zlib and skips .ko.gz; kabi indexes it (documented
    // in `kabi depmod --help`). So kmod gets the plain file, kabi the gzip copy, and the
    // text files must agree once the file name is the same.
    let Some(p) = Pair::fetch("cloud-amd64", None) else {
        return;
    };
    let Some(amd64) = fetch_kernel("amd64", None) else {
        return;
    };
    let (adir, _) = module_dir(&amd64);
    let soundcore = walk(&adir.join("kernel"), &|f| {
        f.file_name().unwrap() == "soundcore.ko"
    })[0]
        .clone();
    let gz = run(Command::new("gzip").arg("-c").arg(&soundcore));
    assert!(gz.status.success());
    for s in [Kmod, Kabi] {
        let d = p.dir(s);
        std::fs::create_dir_all(d.join("extra")).unwrap();
        match s {
            Kmod => std::fs::copy(&soundcore, d.join("extra/soundcore.ko")).map(|_| ()),
            Kabi => std::fs::write(d.join("extra/soundcore.ko.gz"), &gz.stdout),
        }
        .unwrap();
    }
    let (k, mut problems) = p.run_both("a .ko.gz", &[], &no_modules);
    assert_success("kmod on the plain copy", &k);
    for f in [
        "modules.dep",
        "modules.alias",
        "modules.softdep",
        "modules.symbols",
        "modules.devname",
    ] {
        let kmod = std::fs::read_to_string(p.dir(Kmod).join(f)).unwrap();
        let kabi = std::fs::read_to_string(p.dir(Kabi).join(f))
            .unwrap()
            .replace("extra/soundcore.ko.gz", "extra/soundcore.ko");
        if kmod != kabi {
            problems.push(format!(
                "{f}: {}",
                first_difference(kmod.as_bytes(), kabi.as_bytes())
            ));
        }
    }
    let dep = std::fs::read_to_string(p.dir(Kabi).join("modules.dep")).unwrap();
    assert!(
        dep.contains("extra/soundcore.ko.gz:"),
        "kabi indexed the .ko.gz"
    );
    assert_no_problems(&problems);
}

/// What kmod refuses, with its exit status and message: a release that is not a version
/// number, a module directory that does not exist, a relative or missing module path, a
/// missing symvers or System.map. An unknown option: both fail (clap's message and exit
/// status are kabi's own).
#[test]
fn command_line_errors() {
    let Some(p) = Pair::fetch("cloud-amd64", None) else {
        return;
    };
    let run_args = |s: Side, args: &[&str]| -> Run {
        let mut cmd = match s {
            Kmod => Command::new("depmod"),
            Kabi => {
                let mut c = kabi();
                c.arg("depmod");
                c
            }
        };
        cmd.arg("-b")
            .arg(p.root(s))
            .arg("-C")
            .arg(p.conf())
            .args(args);
        let out = run(&mut cmd);
        Run {
            status: out.status.code(),
            stdout: p.normalize(s, &out.stdout),
            stderr: p.normalize(s, &out.stderr),
            secs: 0.0,
        }
    };
    let kver = p.kver.clone();
    let cases: Vec<Vec<&str>> = vec![
        vec!["-n", "notaversion"],
        vec!["-n", "9.9.9-none"],
        vec!["-n", &kver, "relative/x.ko"],
        vec!["-n", "-E", "/nonexistent/Module.symvers", &kver],
        vec!["-n", "-F", "/nonexistent/System.map", &kver],
    ];
    let mut problems = Vec::new();
    for args in &cases {
        let k = run_args(Kmod, args);
        assert_ne!(k.status, Some(0), "kmod accepted {args:?}");
        require_kabi_depmod();
        let a = run_args(Kabi, args);
        problems.extend(same_run(&format!("{args:?}"), &k, &a));
    }
    // a module path that does not exist: kmod stops (FATAL, exit 1); kabi reports it and
    // leaves it out ("a module file that cannot be read is reported and left out")
    let (k, a) = (
        run_args(Kmod, &["-n", &kver, "/nonexistent/x.ko"]),
        run_args(Kabi, &["-n", &kver, "/nonexistent/x.ko"]),
    );
    assert_eq!(k.status, Some(1));
    if !a.stderr.contains("/nonexistent/x.ko") {
        problems.push(format!(
            "a missing module path: kabi did not report it: {a:?}"
        ));
    }
    let (k, a) = (
        run_args(Kmod, &["--bogus", &kver]),
        run_args(Kabi, &["--bogus", &kver]),
    );
    assert_ne!(k.status, Some(0));
    if a.status == Some(0) {
        problems.push(format!("kabi accepted --bogus: {a:?}"));
    }
    for s in [Kmod, Kabi] {
        for n in KMOD_FILES {
            if p.dir(s).join(n).exists() {
                problems.push(format!("{} wrote {n}", s.name()));
            }
        }
    }
    assert_no_problems(&problems);
}

/// `-b` relative to the working directory and with a trailing slash (kmod keeps the `//`
/// in the paths it prints), and no KVER (the running kernel's release): the modules of the
/// `other` kernel under `lib/modules/$(uname -r)`, with `-e -E` the symvers of `new` (another
/// `module_layout`) so that paths are printed.
#[test]
fn relative_basedir_and_default_release() {
    if !require_tool("depmod") {
        return;
    }
    let Some(kn) = kernels::cloud() else { return };
    let Some(root_other) = kn.fetch(kn.other) else {
        return;
    };
    let Some(sv_new) = symvers_of(kn.new) else {
        return;
    };
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap()
        .trim()
        .to_string();
    let (src, _) = module_dir(&root_other);
    let p = Pair::new(&src, &release);
    let run_rel = |s: Side, slash: &str| -> Run {
        let mut cmd = match s {
            Kmod => Command::new("depmod"),
            Kabi => {
                let mut c = kabi();
                c.arg("depmod");
                c
            }
        };
        cmd.current_dir(p.tmp.path())
            .arg("-b")
            .arg(format!("{}{slash}", s.name()))
            .arg("-C")
            .arg(p.conf())
            .args(["-e", "-E", &sv_new]);
        let out = run(&mut cmd);
        Run {
            status: out.status.code(),
            stdout: p.normalize(s, &out.stdout),
            stderr: p.normalize(s, &out.stderr),
            secs: 0.0,
        }
    };
    let k = run_rel(Kmod, "");
    assert_success("relative -b", &k);
    require_kabi_depmod();
    let a = run_rel(Kabi, "");
    let mut problems = same_run("relative -b ROOT, no KVER", &k, &a);
    problems.extend(p.compare_outputs("relative -b ROOT, no KVER"));
    let k = run_rel(Kmod, "/");
    assert!(
        k.stderr
            .contains(&format!("<ROOT>//lib/modules/{release}/kernel/")),
        "kmod: {}",
        k.stderr.lines().next().unwrap_or("")
    );
    let a = run_rel(Kabi, "/");
    problems.extend(same_run("relative -b ROOT/, no KVER", &k, &a));
    problems.extend(p.compare_outputs("relative -b ROOT/, no KVER"));
    assert_no_problems(&problems);
}
