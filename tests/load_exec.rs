//! The loader's executor on a recording fake of the kernel ([`kabi::load::fake::FakeKernel`]):
//! plans and executions without a kernel. A small module directory is written with kmod's
//! binary indexes (kabi's writer, byte-identical to kmod's depmod), modprobe.d text is
//! parsed as libkmod does, and each test asserts the calls the kernel received, the lines
//! shown and the messages, as kmod 30's modprobe/rmmod would produce them.

use kabi::index::IndexBuilder;
use kabi::load::config::ModprobeConfig;
use kabi::load::exec::Probe;
use kabi::load::fake::{Call, FakeKernel, touch_module};
use kabi::load::index::ModuleIndex;
use kabi::load::{Event, Level, Loader, Options};
use std::path::Path;

/// modules.dep of the test tree: name → (path, deps in modules.dep order).
const DEP: &[(&str, &str, &[&str])] = &[
    (
        "udf",
        "kernel/fs/udf/udf.ko",
        &["kernel/lib/crc-itu-t.ko", "kernel/drivers/cdrom/cdrom.ko"],
    ),
    ("crc_itu_t", "kernel/lib/crc-itu-t.ko", &[]),
    ("cdrom", "kernel/drivers/cdrom/cdrom.ko", &[]),
    (
        "isofs",
        "kernel/fs/isofs/isofs.ko",
        &["kernel/drivers/cdrom/cdrom.ko"],
    ),
    ("dummy", "kernel/drivers/net/dummy.ko", &[]),
    ("nls_utf8", "kernel/fs/nls/nls_utf8.ko", &[]),
    ("xfs", "kernel/fs/xfs/xfs.ko", &["kernel/lib/libcrc32c.ko"]),
    ("libcrc32c", "kernel/lib/libcrc32c.ko", &[]),
    ("crc32c_generic", "kernel/crypto/crc32c_generic.ko", &[]),
    ("cramfs", "kernel/fs/cramfs/cramfs.ko", &[]),
];

struct Tree {
    _tmp: tempfile::TempDir,
    dir: String,
}

fn write_index(path: &Path, entries: &[(&str, &str)]) {
    let mut b = IndexBuilder::new();
    for (i, (k, v)) in entries.iter().enumerate() {
        b.insert(k, v, i as u32).unwrap();
    }
    std::fs::write(path, b.write()).unwrap();
}

/// The module files (empty: the fake does not read them) and the indexes kmod reads.
fn tree() -> Tree {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("lib/modules/6.1.0-test");
    std::fs::create_dir_all(&dir).unwrap();
    let mut dep = Vec::new();
    for (name, path, deps) in DEP {
        touch_module(&dir, path);
        dep.push((
            *name,
            format!("{path}: {}", deps.join(" ")).trim_end().to_string(),
        ));
    }
    let dep_refs: Vec<(&str, &str)> = dep.iter().map(|(n, l)| (*n, l.as_str())).collect();
    write_index(&dir.join("modules.dep.bin"), &dep_refs);
    write_index(
        &dir.join("modules.alias.bin"),
        &[
            ("fs_udf", "udf"),
            ("fs_iso9660", "isofs"),
            ("crc32c", "crc32c_generic"),
            ("pci:v00008086d*sv*sd*bc*sc*i*", "dummy"),
        ],
    );
    write_index(
        &dir.join("modules.symbols.bin"),
        &[("symbol:crc_itu_t", "crc_itu_t")],
    );
    write_index(
        &dir.join("modules.builtin.bin"),
        &[("ext4", ""), ("crc32c_intel", "")],
    );
    write_index(
        &dir.join("modules.builtin.alias.bin"),
        &[("fs_ext4", "ext4")],
    );
    Tree {
        dir: dir.to_string_lossy().into_owned(),
        _tmp: tmp,
    }
}

fn config(text: &str, cmdline: &str) -> ModprobeConfig {
    let mut c = ModprobeConfig::default();
    c.parse_file(text.as_bytes(), "test.conf");
    c.parse_kcmdline(cmdline.as_bytes());
    assert!(c.messages.is_empty(), "{:?}", c.messages);
    c
}

/// Run `f` with a loader on the tree, collecting its events.
fn with<'k>(t: &Tree, cfg: ModprobeConfig, k: &'k FakeKernel) -> (Loader<'k>, Vec<Event>) {
    (
        Loader::new(ModuleIndex::new(&t.dir, true), cfg, k),
        Vec::new(),
    )
}

/// The lines shown, with the module directory cut from paths (for compact assertions).
fn shown(ev: &[Event]) -> Vec<String> {
    ev.iter()
        .filter_map(|e| match e {
            Event::Show(s) | Event::ShowNow(s) => {
                Some(match (s.find(' '), s.find("/lib/modules/6.1.0-test/")) {
                    (Some(sp), Some(at)) if s.starts_with("insmod ") => {
                        let rest = &s[at + "/lib/modules/6.1.0-test/".len()..];
                        format!("{}{rest}", &s[..=sp])
                    }
                    _ => s.clone(),
                })
            }
            _ => None,
        })
        .collect()
}

fn messages(ev: &[Event]) -> Vec<String> {
    ev.iter()
        .filter_map(|e| match e {
            Event::Tool(l, s) => Some(format!("{}: {s}", l.name())),
            Event::Lib(l, at, s) => Some(format!("{} {at}: {s}", l.name())),
            _ => None,
        })
        .collect()
}

fn probe(l: &mut Loader, q: &str, extra: Option<&str>, o: &Options, ev: &mut Vec<Event>) -> bool {
    l.modprobe(q, extra, o, &mut |e| ev.push(e))
}

#[test]
fn dependencies_first_with_options_from_config_cmdline_and_caller() {
    let t = tree();
    let k = FakeKernel::new().with_deps("udf", &["crc_itu_t", "cdrom"]);
    let (mut l, mut ev) = with(
        &t,
        config(
            "options udf uid=1000\noptions cdrom debug=1\n",
            "udf.gid=100 x",
        ),
        &k,
    );
    let o = Options {
        show: true,
        ..Options::default()
    };
    assert!(probe(&mut l, "fs-udf", Some("mode=1"), &o, &mut ev));
    // modules.dep lists crc-itu-t then cdrom: kmod loads them in reverse
    assert_eq!(k.inserted(), ["cdrom", "crc_itu_t", "udf"]);
    assert_eq!(
        shown(&ev),
        [
            "insmod kernel/drivers/cdrom/cdrom.ko debug=1 \n",
            "insmod kernel/lib/crc-itu-t.ko \n",
            "insmod kernel/fs/udf/udf.ko uid=1000 gid=100 mode=1\n"
        ]
    );
    let params: Vec<String> = k
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::Insert { params, .. } => Some(params),
            _ => None,
        })
        .collect();
    assert_eq!(params, ["debug=1 ", "", "uid=1000 gid=100 mode=1"]);
}

#[test]
fn a_failing_dependency_stops_the_list_a_failing_softdep_does_not() {
    let t = tree();
    let k = FakeKernel::new()
        .failing(
            "cdrom",
            8,
            "cdrom: disagrees about version of symbol module_layout",
        )
        .failing("nls_utf8", 19, "nls_utf8: init failed");
    let (mut l, mut ev) = with(&t, config("softdep isofs post: nls-utf8\n", ""), &k);
    let o = Options::default();
    assert!(!probe(&mut l, "udf", None, &o, &mut ev));
    // cdrom failed: crc_itu_t and udf are never tried
    assert_eq!(k.inserted(), ["cdrom"]);
    assert_eq!(
        messages(&ev),
        [
            "INFO libkmod-module.c:949 kmod_module_insert_module: Failed to insert module '"
                .to_string()
                + &t.dir
                + "/kernel/drivers/cdrom/cdrom.ko': Exec format error\n",
            "ERROR: could not insert 'udf': Exec format error\n".to_string(),
        ]
    );
    // with --predict-style messages the kernel's own words are attached
    let (mut l, mut ev) = with(&t, config("softdep dummy post: nls-utf8\n", ""), &k);
    assert!(probe(&mut l, "dummy", None, &o, &mut ev), "{ev:?}");
    assert_eq!(k.inserted(), ["cdrom", "dummy", "nls_utf8"]);
    assert!(k.loaded_now().contains(&"dummy".to_string()));
}

#[test]
fn loaded_and_builtin_modules_are_skipped_first_time_refuses() {
    let t = tree();
    let k = FakeKernel::new().preload("cdrom");
    let (mut l, mut ev) = with(&t, ModprobeConfig::default(), &k);
    let o = Options {
        show: true,
        ..Options::default()
    };
    assert!(probe(&mut l, "udf", None, &o, &mut ev));
    assert_eq!(
        k.inserted(),
        ["crc_itu_t", "udf"],
        "cdrom was loaded already"
    );
    // the module itself loaded: nothing at all
    let before = k.calls().len();
    assert!(probe(&mut l, "udf", None, &o, &mut ev));
    assert_eq!(k.calls().len(), before);
    // --first-time: an error, in kmod's words
    let mut ev = Vec::new();
    let ft = Options {
        first_time: true,
        ..o.clone()
    };
    assert!(!probe(&mut l, "udf", None, &ft, &mut ev));
    assert_eq!(
        messages(&ev),
        ["ERROR: could not insert 'udf': Module already in kernel\n"]
    );
    // built in (modules.builtin.bin): never inserted; --show-depends says `builtin`
    let mut ev = Vec::new();
    assert!(probe(&mut l, "ext4", None, &o, &mut ev));
    assert!(shown(&ev).is_empty());
    let sd = Options {
        dry_run: true,
        ignore_loaded: true,
        show: true,
        ..Options::default()
    };
    let mut ev = Vec::new();
    assert!(probe(&mut l, "fs-ext4", None, &sd, &mut ev));
    assert_eq!(shown(&ev), ["builtin ext4\n"]);
    assert_eq!(k.inserted(), ["crc_itu_t", "udf"]);
}

#[test]
fn install_commands_run_instead_of_the_module() {
    let t = tree();
    let cmd = "/sbin/modprobe --ignore-install dummy $CMDLINE_OPTS";
    let k = FakeKernel::new().command_exits("/bin/false", 1);
    let cfg = config(
        &format!("install dummy {cmd}\ninstall cramfs /bin/false\noptions dummy numdummies=2\n"),
        "",
    );
    let (mut l, mut ev) = with(&t, cfg.clone(), &k);
    let o = Options {
        show: true,
        ..Options::default()
    };
    assert!(probe(&mut l, "dummy", Some("x=1"), &o, &mut ev));
    assert_eq!(shown(&ev), [format!("install {cmd} numdummies=2 x=1\n")]);
    assert_eq!(
        k.calls(),
        [Call::Command {
            command: "/sbin/modprobe --ignore-install dummy numdummies=2 x=1".into(),
            module: "dummy".into()
        }]
    );
    assert!(k.inserted().is_empty(), "the module itself is never loaded");
    // `install cramfs /bin/false` forbids the module: refused, never loaded
    let mut ev = Vec::new();
    assert!(!probe(&mut l, "cramfs", None, &o, &mut ev));
    assert!(k.inserted().is_empty());
    assert_eq!(
        messages(&ev),
        [
            "ERROR libkmod-module.c:1047 command_do: Error running install command '/bin/false' for module cramfs: retcode 1\n",
            "ERROR: could not insert 'cramfs': Invalid argument\n"
        ]
    );
    // -i: the command is ignored and the module loaded
    let mut ev = Vec::new();
    let i = Options {
        ignore_commands: true,
        ..o.clone()
    };
    assert!(probe(&mut l, "cramfs", None, &i, &mut ev));
    assert_eq!(k.inserted(), ["cramfs"]);
    // no shell: refused with a clear error, never loaded instead
    let mut k2 = FakeKernel::new();
    k2.no_shell = true;
    let (mut l2, mut ev) = with(&t, cfg.clone(), &k2);
    assert!(!probe(&mut l2, "dummy", None, &o, &mut ev));
    assert!(k2.inserted().is_empty());
    assert!(
        messages(&ev)[0].contains("there is no shell (/bin/sh) to run it"),
        "{ev:?}"
    );
    // -n: printed, not run
    let k3 = FakeKernel::new();
    let (mut l3, mut ev) = with(&t, cfg, &k3);
    let n = Options {
        dry_run: true,
        show: true,
        ..Options::default()
    };
    assert!(probe(&mut l3, "dummy", None, &n, &mut ev));
    assert!(k3.calls().is_empty());
    assert_eq!(shown(&ev), [format!("install {cmd} numdummies=2 \n")]);
}

#[test]
fn a_module_with_soft_dependencies_ignores_its_install_command() {
    // libkmod's rule: `ignorecmd` is set for a module that has softdeps
    let t = tree();
    let k = FakeKernel::new();
    let (mut l, mut ev) = with(
        &t,
        config("install dummy /bin/true\nsoftdep dummy pre: crc32c\n", ""),
        &k,
    );
    let o = Options {
        show: true,
        ..Options::default()
    };
    assert!(probe(&mut l, "dummy", None, &o, &mut ev));
    assert_eq!(k.inserted(), ["crc32c_generic", "dummy"]);
    assert!(!k.calls().iter().any(|c| matches!(c, Call::Command { .. })));
}

#[test]
fn blacklisted_aliases_are_skipped_silently_names_only_with_b() {
    let t = tree();
    let k = FakeKernel::new();
    let cfg = config(
        "blacklist isofs\nalias my-cd isofs\n",
        "modprobe.blacklist=dummy",
    );
    let (mut l, mut ev) = with(&t, cfg, &k);
    let o = Options::default();
    for alias in [
        "fs-iso9660",
        "my-cd",
        "pci:v00008086d00001234sv0sd0bc0sc0i0",
    ] {
        assert!(probe(&mut l, alias, None, &o, &mut ev), "{alias}");
    }
    assert!(k.inserted().is_empty());
    assert!(messages(&ev).is_empty(), "kmod says nothing: {ev:?}");
    let id = l.lookup("my-cd").unwrap()[0];
    assert_eq!(
        l.probe_insert(id, &o, None, &mut |_| {}),
        Ok(Probe::Blacklisted)
    );
    // a name is loaded unless -b
    assert!(probe(&mut l, "isofs", None, &o, &mut ev));
    assert_eq!(k.inserted(), ["cdrom", "isofs"]);
    let b = Options {
        use_blacklist: true,
        ..o
    };
    assert!(probe(&mut l, "dummy", None, &b, &mut ev));
    assert_eq!(k.inserted(), ["cdrom", "isofs"]);
}

#[test]
fn not_found_messages_and_lookup_order() {
    let t = tree();
    let k = FakeKernel::new();
    let (mut l, mut ev) = with(
        &t,
        config(
            "alias mod-simple deaddood\ninstall only-cmd /bin/true\n",
            "",
        ),
        &k,
    );
    let o = Options::default();
    assert!(!probe(&mut l, "nosuch", None, &o, &mut ev));
    assert_eq!(
        messages(&ev),
        [format!(
            "FATAL: Module nosuch not found in directory {}\n",
            t.dir
        )]
    );
    // -a: a warning
    let mut ev = Vec::new();
    let a = Options {
        all: true,
        ..Options::default()
    };
    assert!(!probe(&mut l, "nosuch", None, &a, &mut ev));
    assert!(messages(&ev)[0].starts_with("WARNING: Module nosuch"));
    // an alias to nothing: kmod fails at insert time; dry run is silent and succeeds
    let mut ev = Vec::new();
    assert!(!probe(&mut l, "mod-simple", None, &o, &mut ev));
    assert_eq!(
        messages(&ev),
        [
            "ERROR libkmod-module.c:895 kmod_module_insert_module: could not find module by name='deaddood'\n",
            "ERROR: could not insert 'deaddood': Unknown symbol in module, or unknown parameter (see dmesg)\n"
        ]
    );
    let mut ev = Vec::new();
    let sd = Options {
        dry_run: true,
        ignore_loaded: true,
        show: true,
        ..Options::default()
    };
    assert!(probe(&mut l, "mod-simple", None, &sd, &mut ev));
    assert!(ev.is_empty());
    // lookup order: symbol:, a name that only has an install command
    let names = |l: &mut Loader, q: &str| -> Vec<String> {
        l.lookup(q)
            .unwrap()
            .into_iter()
            .map(|i| l.name(i).to_string())
            .collect()
    };
    assert_eq!(names(&mut l, "symbol:crc_itu_t"), ["crc_itu_t"]);
    assert_eq!(names(&mut l, "only-cmd"), ["only_cmd"]);
    assert_eq!(names(&mut l, "fs-ext4"), ["ext4"]);
    assert!(l.lookup("a]b").is_err());
}

#[test]
fn remove_takes_unused_dependencies_keeps_used_ones() {
    let t = tree();
    let k = FakeKernel::new()
        .with_deps("udf", &["crc_itu_t", "cdrom"])
        .with_deps("isofs", &["cdrom"]);
    let (mut l, mut ev) = with(&t, ModprobeConfig::default(), &k);
    let o = Options {
        show: true,
        all: true,
        ..Options::default()
    };
    for m in ["udf", "isofs"] {
        assert!(probe(&mut l, m, None, &o, &mut ev));
    }
    let mut ev = Vec::new();
    assert!(l.remove("udf", &o, &mut |e| ev.push(e)).is_ok());
    assert_eq!(shown(&ev), ["rmmod udf\n", "rmmod crc_itu_t\n"]);
    assert_eq!(k.loaded_now(), ["cdrom", "isofs"]);
    // in use: kmod's message, nothing removed
    let mut ev = Vec::new();
    assert_eq!(l.remove("cdrom", &o, &mut |e| ev.push(e)), Err(-16));
    assert_eq!(messages(&ev), ["WARNING: Module cdrom is in use.\n"]);
    // --remove-holders: isofs first, which takes its unused dependency cdrom with it; then
    // cdrom's own removal finds it gone (kmod's algorithm, step by step)
    let mut ev = Vec::new();
    let h = Options {
        remove_holders: true,
        ..o.clone()
    };
    assert_eq!(l.remove("cdrom", &h, &mut |e| ev.push(e)), Err(-2));
    assert_eq!(
        shown(&ev),
        ["rmmod isofs\n", "rmmod cdrom\n", "rmmod cdrom\n"]
    );
    assert_eq!(
        messages(&ev),
        [
            "ERROR libkmod-module.c:856 kmod_module_remove_module: could not remove 'cdrom': No such file or directory\n"
        ]
    );
    assert!(k.loaded_now().is_empty());
    // not loaded: nothing, unless --first-time
    let mut ev = Vec::new();
    assert!(l.remove("dummy", &o, &mut |e| ev.push(e)).is_ok());
    let f = Options {
        first_time: true,
        ..o.clone()
    };
    assert!(l.remove("dummy", &f, &mut |e| ev.push(e)).is_err());
    assert_eq!(messages(&ev), ["WARNING: Module dummy is not in kernel.\n"]);
    // built in
    let mut ev = Vec::new();
    assert!(l.remove("ext4", &o, &mut |e| ev.push(e)).is_err());
    assert_eq!(messages(&ev), ["WARNING: Module ext4 is builtin.\n"]);
}

#[test]
fn remove_commands_and_softdeps_on_removal() {
    let t = tree();
    let k = FakeKernel::new().preload("nls_utf8").preload("dummy");
    let (mut l, mut ev) = with(
        &t,
        config(
            "remove dummy echo bye $CMDLINE_OPTS\nsoftdep cdrom post: nls_utf8\n",
            "",
        ),
        &k,
    );
    let o = Options {
        show: true,
        ..Options::default()
    };
    assert!(l.remove("dummy", &o, &mut |e| ev.push(e)).is_ok());
    assert_eq!(shown(&ev), ["remove echo bye \n"]);
    assert_eq!(
        k.calls(),
        [Call::Command {
            command: "echo bye ".into(),
            module: "dummy".into()
        }]
    );
    // a module's post softdeps are removed before it, if loaded
    let k = FakeKernel::new().preload("cdrom").preload("nls_utf8");
    let (mut l, mut ev) = with(&t, config("softdep cdrom post: nls_utf8\n", ""), &k);
    assert!(l.remove("cdrom", &o, &mut |e| ev.push(e)).is_ok());
    assert_eq!(shown(&ev), ["rmmod nls_utf8\n", "rmmod cdrom\n"]);
}

#[test]
fn rmmod_checks_as_kmod() {
    let t = tree();
    let k = FakeKernel::new()
        .with_deps("isofs", &["cdrom"])
        .preload("cdrom")
        .builtin_dir("rcupdate");
    let (mut l, _) = with(&t, ModprobeConfig::default(), &k);
    let mut ev = Vec::new();
    let mut sink = |e: Event| ev.push(e);
    assert!(l.modprobe("isofs", None, &Options::default(), &mut sink));
    let args: Vec<String> = ["cdrom", "nosuch", "ext4", "isofs"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let failed = l.rmmod(&args, false, &mut sink);
    assert_eq!(failed, 3);
    assert_eq!(
        messages(&ev),
        [
            "ERROR: Module cdrom is in use by: isofs\n",
            "ERROR: Module nosuch is not currently loaded\n",
            "ERROR: Module ext4 is builtin.\n",
        ]
    );
    assert_eq!(k.loaded_now(), ["cdrom"]);
    // -f skips the checks; the kernel (here the fake) decides
    let mut ev = Vec::new();
    assert_eq!(l.rmmod(&["cdrom".into()], true, &mut |e| ev.push(e)), 0);
    assert!(k.loaded_now().is_empty());
    let flags: Vec<u32> = k
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::Delete { flags, .. } => Some(flags),
            _ => None,
        })
        .collect();
    assert_eq!(flags, [0o4000, 0o4000 | 0o1000]);
}

#[test]
fn parallel_load_reaches_the_serial_end_state_and_skips_dependents_of_failures() {
    let t = tree();
    let serial = FakeKernel::new();
    let (mut l, mut ev) = with(&t, ModprobeConfig::default(), &serial);
    let o = Options {
        all: true,
        ..Options::default()
    };
    for m in ["udf", "isofs", "xfs", "dummy"] {
        assert!(probe(&mut l, m, None, &o, &mut ev));
    }
    let par = FakeKernel::new();
    let (mut l, _) = with(&t, ModprobeConfig::default(), &par);
    let ids: Vec<usize> = ["udf", "isofs", "xfs", "dummy"]
        .iter()
        .flat_map(|m| l.lookup(m).unwrap())
        .collect();
    let r = l.load_parallel(&ids, &o, 3, &mut |_| {});
    assert!(r.iter().all(|(_, r)| r.is_ok()), "{r:?}");
    let mut a = serial.loaded_now();
    let mut b = par.loaded_now();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    // every module inserted once
    assert_eq!(par.inserted().len(), b.len());
    // a failing dependency: its dependents are not tried, the others are loaded
    let bad = FakeKernel::new().failing("cdrom", 8, "cdrom: bad");
    let (mut l, _) = with(&t, ModprobeConfig::default(), &bad);
    let ids: Vec<usize> = ["udf", "isofs", "dummy"]
        .iter()
        .flat_map(|m| l.lookup(m).unwrap())
        .collect();
    let r = l.load_parallel(&ids, &o, 2, &mut |_| {});
    let failed: Vec<&str> = r
        .iter()
        .filter(|(_, r)| r.is_err())
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(failed, ["cdrom", "udf", "isofs"]);
    assert!(!bad.inserted().contains(&"udf".to_string()));
    assert!(bad.loaded_now().contains(&"dummy".to_string()));
}

/// A parallel load fails where a serial one fails: an alias to a module no index knows (no
/// file, not built in) is ENOENT, not "built in"; with --first-time a module asked for that is
/// in the kernel already, or gets there before its insert, is EEXIST.
#[test]
fn parallel_load_fails_where_serial_load_fails() {
    let t = tree();
    let cfg = || config("alias mod-simple deaddood\n", "");
    let k = FakeKernel::new();
    let (mut l, mut ev) = with(&t, cfg(), &k);
    assert!(!probe(
        &mut l,
        "mod-simple",
        None,
        &Options::default(),
        &mut ev
    ));
    let k = FakeKernel::new();
    let (mut l, mut ev) = with(&t, cfg(), &k);
    let ids = l.lookup("mod-simple").unwrap();
    let mut sink = |e| ev.push(e);
    let r = l.load_parallel(&ids, &Options::default(), 2, &mut sink);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].1.as_ref().unwrap_err().errno, 2, "{r:?}");
    assert!(
        messages(&ev)
            .iter()
            .any(|m| m.contains("could not find module by name='deaddood'")),
        "{:?}",
        messages(&ev)
    );
    assert!(k.inserted().is_empty());

    let first = Options {
        first_time: true,
        ..Options::default()
    };
    for jobs in [1, 2] {
        let k = FakeKernel::new().preload("dummy");
        let (mut l, mut ev) = with(&t, ModprobeConfig::default(), &k);
        if jobs == 1 {
            assert!(!probe(&mut l, "dummy", None, &first, &mut ev));
            continue;
        }
        let ids: Vec<usize> = ["dummy", "xfs"]
            .iter()
            .flat_map(|m| l.lookup(m).unwrap())
            .collect();
        let r = l.load_parallel(&ids, &first, jobs, &mut |_| {});
        let dummy = r.iter().find(|(n, _)| n == "dummy").expect("reported");
        assert_eq!(dummy.1.as_ref().unwrap_err().errno, 17, "{r:?}");
        assert!(r.iter().any(|(n, r)| n == "xfs" && r.is_ok()), "{r:?}");
        // without --first-time it is no error, as serially
        let k = FakeKernel::new().preload("dummy");
        let (mut l, _) = with(&t, ModprobeConfig::default(), &k);
        let ids = l.lookup("dummy").unwrap();
        let r = l.load_parallel(&ids, &Options::default(), jobs, &mut |_| {});
        assert!(r.iter().all(|(_, r)| r.is_ok()), "{r:?}");
    }
    // in the kernel by the time of its insert (EEXIST from the kernel): an error for a
    // module asked for with --first-time, not for a dependency
    let k = FakeKernel::new()
        .failing("dummy", 17, "")
        .failing("cdrom", 17, "");
    let (mut l, _) = with(&t, ModprobeConfig::default(), &k);
    let ids: Vec<usize> = ["dummy", "udf"]
        .iter()
        .flat_map(|m| l.lookup(m).unwrap())
        .collect();
    let r = l.load_parallel(&ids, &first, 2, &mut |_| {});
    let of = |n: &str| r.iter().find(|(m, _)| m == n).map(|(_, r)| r.clone());
    assert_eq!(of("dummy").unwrap().unwrap_err().errno, 17, "{r:?}");
    assert!(
        of("cdrom").unwrap().is_ok() && of("udf").unwrap().is_ok(),
        "{r:?}"
    );
}

#[test]
fn dry_run_touches_nothing_and_kernel_log_is_attached() {
    let t = tree();
    let k = FakeKernel::new().failing(
        "dummy",
        8,
        "dummy: disagrees about version of symbol module_layout",
    );
    let (mut l, mut ev) = with(&t, ModprobeConfig::default(), &k);
    let n = Options {
        dry_run: true,
        ..Options::default()
    };
    assert!(probe(&mut l, "udf", None, &n, &mut ev));
    assert!(k.calls().is_empty());
    assert!(shown(&ev).len() == 3 && ev.iter().all(|e| matches!(e, Event::Show(_))));
    assert!(!ev.iter().any(|e| matches!(e, Event::ShowNow(_))));
    // kabi's own detail: the errno's name and the kernel's words
    let o = Options {
        explain: true,
        ..Options::default()
    };
    let mut ev = Vec::new();
    assert!(!probe(&mut l, "dummy", None, &o, &mut ev));
    let m = messages(&ev);
    assert_eq!(
        m.last().unwrap(),
        "ERROR: could not insert 'dummy': Exec format error (ENOEXEC); the kernel says: dummy: disagrees about version of symbol module_layout\n"
    );
    let _ = Level::Err;
}

/// A predictor that records what it is asked and refuses the names it is given.
struct Judge {
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    refuse: Vec<&'static str>,
}

impl kabi::load::predict::Predict for Judge {
    fn admit(&mut self, name: &str, _path: &Path) -> Result<(), String> {
        self.log.lock().unwrap().push(format!("admit {name}"));
        match self.refuse.contains(&name) {
            true => Err(format!("  {name}: disagrees about version of symbol x")),
            false => Ok(()),
        }
    }
    fn loaded(&mut self, path: &Path) {
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        self.log.lock().unwrap().push(format!("loaded {stem}"));
    }
}

#[test]
fn the_kernels_own_modules_are_inserted_first_and_predicted_only_to_explain_a_refusal() {
    let t = tree();
    let dir = Path::new(&t.dir);
    let o = Options {
        predict: true,
        explain: true,
        all: true,
        // kernel/fs is "the running kernel's own" here: udf, isofs, xfs, cramfs, nls_utf8;
        // cdrom, crc-itu-t, libcrc32c, dummy are not
        own_modules: Some(dir.join("kernel/fs")),
        ..Options::default()
    };
    // which paths count: below the directory by plain names only
    assert!(o.is_own(&dir.join("kernel/fs/udf/udf.ko")));
    assert!(!o.is_own(&dir.join("kernel/fs")));
    assert!(!o.is_own(&dir.join("kernel/fs/../drivers/net/dummy.ko")));
    assert!(!o.is_own(&dir.join("kernel/fsx/a.ko")));
    assert!(!o.is_own(&dir.join("updates/fs/udf/udf.ko")));
    assert!(!Options::default().is_own(&dir.join("kernel/fs/udf/udf.ko")));

    let run = |k: &FakeKernel, refuse: Vec<&'static str>, names: &[&str], jobs: usize| {
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (mut l, mut ev) = with(&t, ModprobeConfig::default(), k);
        l.predictor = Some(Box::new(Judge {
            log: log.clone(),
            refuse,
        }));
        let mut failures = Vec::new();
        if jobs > 1 {
            let ids: Vec<usize> = names.iter().flat_map(|m| l.lookup(m).unwrap()).collect();
            for (n, r) in l.load_parallel(&ids, &o, jobs, &mut |_| {}) {
                if let Err(f) = r {
                    failures.push(kabi::load::exec::insert_failure(&n, &f, &o));
                }
            }
        } else {
            for n in names {
                probe(&mut l, n, None, &o, &mut ev);
            }
            failures = messages(&ev);
        }
        let log = log.lock().unwrap().clone();
        (log, failures)
    };

    // udf (own) and its dependencies (not): only the dependencies are predicted
    let k = FakeKernel::new();
    let (log, failures) = run(&k, vec![], &["udf"], 1);
    assert_eq!(
        log,
        [
            "admit cdrom",
            "loaded cdrom",
            "admit crc_itu_t",
            "loaded crc-itu-t",
            "loaded udf"
        ]
    );
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(k.inserted(), ["cdrom", "crc_itu_t", "udf"]);

    // a module that is not the kernel's own and is predicted to fail is never inserted
    let k = FakeKernel::new();
    let (log, failures) = run(&k, vec!["dummy"], &["dummy"], 1);
    assert_eq!(log, ["admit dummy"]);
    assert!(k.inserted().is_empty());
    assert!(
        failures[0].contains("kabi check predicts the kernel will refuse it"),
        "{failures:?}"
    );

    // one of its own that the kernel refuses: inserted first, then predicted to say why
    let k = FakeKernel::new().failing("cramfs", 8, "cramfs: disagrees about version of symbol x");
    let (log, failures) = run(&k, vec!["cramfs"], &["cramfs"], 1);
    assert_eq!(k.inserted(), ["cramfs"]);
    assert_eq!(log, ["admit cramfs"]);
    assert_eq!(
        failures.last().unwrap(),
        "ERROR: could not insert 'cramfs': Exec format error (ENOEXEC); the kernel says: \
         cramfs: disagrees about version of symbol x; kabi check says why:\n  cramfs: \
         disagrees about version of symbol x\n"
    );

    // its init failing (ENODEV) is not a refusal the prediction could explain: not asked
    let k = FakeKernel::new().failing("cramfs", 19, "cramfs: no device");
    let (log, failures) = run(&k, vec!["cramfs"], &["cramfs"], 1);
    assert!(log.is_empty(), "{log:?}");
    assert!(
        !failures.last().unwrap().contains("kabi check"),
        "{failures:?}"
    );

    // the same in a parallel load: own modules are not predicted ahead, a refusal is explained
    let k = FakeKernel::new().failing("isofs", 8, "isofs: bad");
    let (log, failures) = run(&k, vec!["isofs"], &["isofs", "xfs"], 2);
    let mut admitted: Vec<&String> = log.iter().filter(|l| l.starts_with("admit")).collect();
    admitted.sort();
    // cdrom and libcrc32c ahead of their inserts; isofs after the kernel refused it
    assert_eq!(admitted, ["admit cdrom", "admit isofs", "admit libcrc32c"]);
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(
        failures[0].contains("; kabi check says why:\n  isofs: disagrees"),
        "{failures:?}"
    );
    assert!(k.loaded_now().contains(&"xfs".to_string()));

    // found in the kernel at its insert (EEXIST: someone else loaded a module of that name
    // meanwhile): a success for the load, as serially, but not this file's, so the
    // predictor is not told it loaded (its exports would describe another build)
    for jobs in [1, 2] {
        let k = FakeKernel::new().failing("dummy", 17, "");
        let (log, failures) = run(&k, vec![], &["dummy", "xfs"], jobs);
        assert!(
            !failures.iter().any(|f| f.contains("ERROR")),
            "{jobs}: {failures:?}"
        );
        assert!(log.contains(&"admit dummy".to_string()), "{jobs}: {log:?}");
        assert!(
            !log.contains(&"loaded dummy".to_string()),
            "{jobs}: {log:?}"
        );
        assert!(log.contains(&"loaded xfs".to_string()), "{jobs}: {log:?}");
    }

    // a link among its own modules may lead anywhere: predicted first, not inserted
    let f = dir.join("kernel/fs/nls/nls_utf8.ko");
    std::fs::remove_file(&f).unwrap();
    std::fs::write(dir.join("elsewhere.ko"), b"x").unwrap();
    std::os::unix::fs::symlink("../../../elsewhere.ko", &f).unwrap();
    let k = FakeKernel::new();
    let (log, _) = run(&k, vec!["nls_utf8"], &["nls_utf8"], 1);
    assert_eq!(log, ["admit nls_utf8"]);
    assert!(k.inserted().is_empty());
}

/// A predictor that admits everything and, asked after the kernel refused a module, finds
/// why (as the running kernel's predictor, which leaves a signature's arithmetic to the
/// kernel, finds a signature that does not verify).
struct Lenient {
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl kabi::load::predict::Predict for Lenient {
    fn admit(&mut self, name: &str, _path: &Path) -> Result<(), String> {
        self.log.lock().unwrap().push(format!("admit {name}"));
        Ok(())
    }
    fn explain(
        &mut self,
        name: &str,
        _path: &Path,
        file: Option<(&std::fs::File, u64)>,
    ) -> Option<String> {
        let how = if file.is_some() {
            "the file"
        } else {
            "the path"
        };
        self.log
            .lock()
            .unwrap()
            .push(format!("explain {name} from {how}"));
        Some(format!(
            "  EKEYREJECTED: {name}: the signature does not verify"
        ))
    }
    fn loaded(&mut self, _path: &Path) {}
}

#[test]
fn a_module_admitted_and_refused_by_the_kernel_is_explained_unless_forced() {
    let t = tree();
    let run = |force: bool, jobs: usize| {
        let k = FakeKernel::new().failing("dummy", 129, "");
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (mut l, mut ev) = with(&t, ModprobeConfig::default(), &k);
        l.predictor = Some(Box::new(Lenient { log: log.clone() }));
        let o = Options {
            predict: true,
            explain: true,
            force,
            ..Options::default()
        };
        let failures = if jobs > 1 {
            let ids = l.lookup("dummy").unwrap();
            l.load_parallel(&ids, &o, jobs, &mut |_| {})
                .into_iter()
                .filter_map(|(n, r)| {
                    r.err()
                        .map(|f| kabi::load::exec::insert_failure(&n, &f, &o))
                })
                .collect()
        } else {
            probe(&mut l, "dummy", None, &o, &mut ev);
            messages(&ev)
        };
        assert_eq!(k.inserted(), ["dummy"], "force {force}, jobs {jobs}");
        let log = log.lock().unwrap().clone();
        (log, failures)
    };
    // explained from the very file the kernel was given (one load), by path (parallel)
    for (jobs, from) in [(1, "the file"), (2, "the path")] {
        let (log, failures) = run(false, jobs);
        assert_eq!(log, ["admit dummy", &format!("explain dummy from {from}")]);
        assert!(
            failures.last().unwrap().contains(
                "Key was rejected by service (EKEYREJECTED); kabi check says why:\n  EKEYREJECTED: dummy: the signature does not verify"
            ),
            "{failures:?}"
        );
    }
    // forced, the kernel judges otherwise (no vermagic, no versions, no signature): no reason
    for jobs in [1, 2] {
        let (log, failures) = run(true, jobs);
        assert!(!log.iter().any(|l| l.starts_with("explain")), "{log:?}");
        assert!(
            !failures.last().unwrap().contains("kabi check says why"),
            "{failures:?}"
        );
    }
}

/// A predictor that reads the module from the descriptor it is given, then has the path
/// replaced (another writer, between the verdict and the insert): by rename, as a package
/// manager replaces a file, or rewritten in place (`cp` over it).
struct Swapper {
    read: std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
    by_path: std::sync::Arc<std::sync::Mutex<usize>>,
    in_place: bool,
}

impl kabi::load::predict::Predict for Swapper {
    fn admit(&mut self, _name: &str, _path: &Path) -> Result<(), String> {
        *self.by_path.lock().unwrap() += 1;
        Ok(())
    }
    fn admit_file(
        &mut self,
        _name: &str,
        path: &Path,
        file: &std::fs::File,
        len: u64,
    ) -> Result<(), String> {
        let mut data = vec![0u8; len as usize];
        let n = std::os::unix::fs::FileExt::read_at(file, &mut data, 0).unwrap();
        data.truncate(n);
        self.read.lock().unwrap().push(data);
        if self.in_place {
            std::fs::write(path, b"\x7fELF rewritten after the verdict").unwrap();
        } else {
            let new = path.with_extension("new");
            std::fs::write(&new, b"\x7fELF replaced after the verdict").unwrap();
            std::fs::rename(&new, path).unwrap();
        }
        Ok(())
    }
    fn loaded(&mut self, _path: &Path) {}
}

#[test]
fn a_predicted_module_is_inserted_from_the_file_the_prediction_read() {
    // serially and with -j 2 (the prediction on the submitting thread, the insert on a worker)
    for jobs in [1, 2] {
        let t = tree();
        let dir = Path::new(&t.dir);
        let path = dir.join("kernel/drivers/net/dummy.ko");
        let before = std::fs::read(&path).unwrap();
        let o = Options {
            predict: true,
            explain: true,
            ..Options::default()
        };
        let k = FakeKernel::new();
        let read = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let by_path = std::sync::Arc::new(std::sync::Mutex::new(0));
        let (mut l, mut ev) = with(&t, ModprobeConfig::default(), &k);
        l.predictor = Some(Box::new(Swapper {
            read: read.clone(),
            by_path: by_path.clone(),
            in_place: false,
        }));
        if jobs == 1 {
            assert!(probe(&mut l, "dummy", None, &o, &mut ev), "{ev:?}");
        } else {
            let ids = l.lookup("dummy").unwrap();
            let r = l.load_parallel(&ids, &o, jobs, &mut |_| {});
            assert!(r.iter().all(|(_, r)| r.is_ok()), "{r:?}");
        }
        assert_eq!(k.inserted(), ["dummy"], "-j {jobs}");
        // the prediction read the file once, from the descriptor; the kernel got that file,
        // not the one now at the path
        assert_eq!(*read.lock().unwrap(), std::slice::from_ref(&before));
        assert_eq!(*by_path.lock().unwrap(), 0);
        assert_eq!(k.inserted_bytes(), [before], "-j {jobs}");
        assert_ne!(std::fs::read(&path).unwrap(), k.inserted_bytes()[0]);
    }
}

#[test]
fn a_predicted_module_rewritten_in_place_after_its_verdict_is_not_inserted() {
    for jobs in [1, 2] {
        let t = tree();
        let o = Options {
            predict: true,
            ..Options::default()
        };
        let k = FakeKernel::new();
        let (mut l, mut ev) = with(&t, ModprobeConfig::default(), &k);
        l.predictor = Some(Box::new(Swapper {
            read: Default::default(),
            by_path: Default::default(),
            in_place: true,
        }));
        let failure = if jobs == 1 {
            assert!(!probe(&mut l, "dummy", None, &o, &mut ev));
            ev.iter()
                .find_map(|e| match e {
                    Event::Tool(_, m) if m.contains("could not insert") => Some(m.clone()),
                    _ => None,
                })
                .unwrap_or_else(|| panic!("{ev:?}"))
        } else {
            let ids = l.lookup("dummy").unwrap();
            let r = l.load_parallel(&ids, &o, jobs, &mut |_| {});
            let f = r[0].1.as_ref().unwrap_err();
            assert_eq!(f.errno, 11);
            kabi::load::exec::insert_failure("dummy", f, &o)
        };
        // the kernel never got the bytes nobody judged
        assert!(k.inserted().is_empty(), "-j {jobs}: {:?}", k.inserted());
        assert!(
            failure.starts_with("could not insert 'dummy': ")
                && failure.contains("dummy.ko changed while kabi checked it: not inserted"),
            "-j {jobs}: {failure}"
        );
    }
}

/// `kabi load -a /path/x.ko ...` with `-j N` resolves paths as a serial load does (it once
/// looked paths up as names and found none).
#[test]
fn a_path_names_that_file_in_a_serial_and_a_parallel_load() {
    let t = tree();
    let vendor = tempfile::tempdir().unwrap();
    let file = vendor.path().join("dummy.ko");
    std::fs::write(&file, b"\x7fELF the vendor's dummy").unwrap();
    let q = file.to_str().unwrap();
    for jobs in [1, 2] {
        let k = FakeKernel::new();
        let (mut l, mut ev) = with(&t, ModprobeConfig::default(), &k);
        if jobs == 1 {
            assert!(probe(&mut l, q, None, &Options::default(), &mut ev));
        } else {
            let ids = l.resolve(q).unwrap();
            assert_eq!(ids.len(), 1);
            let r = l.load_parallel(&ids, &Options::default(), jobs, &mut |_| {});
            assert!(r.iter().all(|(_, r)| r.is_ok()), "{r:?}");
        }
        assert_eq!(k.inserted(), ["dummy"], "{jobs}");
        // the file named, not the tree's module of that name
        assert_eq!(
            k.inserted_bytes(),
            [b"\x7fELF the vendor's dummy".to_vec()],
            "{jobs}"
        );
    }
    // what is not there: kmod's messages, for a path and for a name
    let k = FakeKernel::new();
    let (mut l, _) = with(&t, ModprobeConfig::default(), &k);
    let missing = vendor.path().join("gone.ko");
    assert_eq!(
        l.resolve(missing.to_str().unwrap()).unwrap_err(),
        format!(
            "Failed to get module from path {}: No such file or directory\n",
            missing.display()
        )
    );
    assert_eq!(
        l.resolve("nosuch").unwrap_err(),
        format!("Module nosuch not found in directory {}\n", t.dir)
    );
}
