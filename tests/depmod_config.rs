//! depmod.d semantics against Debian's kmod depmod: the same module placed in several
//! directories (and external directories) under many configurations; the file kabi keeps for
//! each module name must be the one kmod's depmod writes into modules.dep.

mod common;
use common::*;
use kabi::tree::config::DepmodConfig;
use std::path::Path;
use std::process::Command;

const KVER: &str = "6.1.0-56-amd64";
const PLACES: &[&str] = &[
    "kernel/lib",
    "updates",
    "extra",
    "extra/vendor",
    "weak-updates",
    "updates/sub",
    "kgraft",
];

/// depmod's choice per module: the first field of each modules.dep line.
fn kmod_choice(root: &Path, conf: &Path) -> Vec<String> {
    let out = run(Command::new("depmod")
        .arg("-b")
        .arg(root)
        .arg("-C")
        .arg(conf)
        .arg(KVER));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dep =
        std::fs::read_to_string(root.join("lib/modules").join(KVER).join("modules.dep")).unwrap();
    let mut v: Vec<String> = dep
        .lines()
        .map(|l| l.split(':').next().unwrap().to_string())
        .collect();
    v.sort();
    v
}

fn kabi_choice(root: &Path, conf: &Path) -> Vec<String> {
    let dirname = root
        .join("lib/modules")
        .join(KVER)
        .to_string_lossy()
        .into_owned();
    let r = kabi::root::Root::open(root).unwrap();
    let cfg = DepmodConfig::load(&r, KVER, Some(&[conf.to_path_buf()]));
    let walk = cfg
        .walk(&r, &dirname, &Path::new("lib/modules").join(KVER), false)
        .unwrap();
    let files: Vec<String> = walk.files.into_iter().map(|w| w.display).collect();
    let mut v: Vec<String> = cfg
        .select(&dirname, &files)
        .into_iter()
        .map(|(_, p)| {
            p.strip_prefix(&format!("{dirname}/"))
                .map(str::to_string)
                .unwrap_or(p)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn the_same_files_are_kept_as_by_kmod() {
    if !require_tool("depmod") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let dir = root.join("lib/modules").join(KVER);
    let src = testdata().join("lib/modules").join(KVER).join("kernel");
    let (a, b) = (
        src.join("lib/crc-itu-t.ko"),
        src.join("drivers/net/dummy.ko"),
    );
    for p in PLACES {
        std::fs::create_dir_all(dir.join(p)).unwrap();
        std::fs::copy(&a, dir.join(p).join("crc-itu-t.ko")).unwrap();
    }
    // a second module only in some places, a third only in kernel/
    for p in ["kernel/lib", "weak-updates", "extra/vendor"] {
        std::fs::copy(&b, dir.join(p).join("dummy.ko")).unwrap();
    }
    std::fs::copy(
        src.join("net/netfilter/xt_nat.ko"),
        dir.join("kernel/lib/xt_nat.ko"),
    )
    .unwrap();
    let (ext1, ext2) = (root.join("opt/ext1"), root.join("opt/ext2"));
    for e in [&ext1, &ext2] {
        std::fs::create_dir_all(e.join("sub")).unwrap();
        std::fs::copy(&a, e.join("sub/crc-itu-t.ko")).unwrap();
        std::fs::copy(&b, e.join("dummy.ko")).unwrap();
    }
    let externals = format!(
        "external * {}\nexternal 6\\.1 {}\n",
        ext1.display(),
        ext2.display()
    );
    let confs: Vec<String> = vec![
        String::new(),
        "search updates extra built-in weak-updates\n".into(),
        "search updates extra weak-updates kgraft built-in\n".into(),
        "search weak-updates built-in\n".into(),
        "search built-in updates\n".into(),
        "search extra updates\nsearch weak-updates\n".into(),
        format!("search external built-in\n{externals}"),
        format!("search built-in external updates\n{externals}"),
        format!("search updates external\n{externals}"),
        format!("search updates\n{externals}"),
        "override crc-itu-t * extra/vendor\nsearch updates extra built-in\n".into(),
        "override crc-itu-t * kernel/lib\noverride dummy * weak-updates\n".into(),
        "override crc-itu-t ^5\\. extra/vendor\n".into(),
        "search updates extra\nexclude updates\n".into(),
        "exclude extra weak-updates\nsearch extra weak-updates built-in\n".into(),
        "search extra\\\n updates\n".into(),
    ];
    let conf_dir = root.join("conf.d");
    let mut outcomes = std::collections::BTreeSet::new();
    for (i, text) in confs.iter().enumerate() {
        let _ = std::fs::remove_dir_all(&conf_dir);
        std::fs::create_dir_all(&conf_dir).unwrap();
        std::fs::write(conf_dir.join("50-test.conf"), text).unwrap();
        if i % 3 == 1 {
            // a second file: sorted by name, so 10-* is read first
            std::fs::write(conf_dir.join("10-first.conf"), "search kgraft\n").unwrap();
        }
        let (k, ours) = (kmod_choice(root, &conf_dir), kabi_choice(root, &conf_dir));
        assert_eq!(ours, k, "configuration {i}:\n{text}");
        outcomes.insert(k);
    }
    // the configurations really lead depmod to different files
    assert!(
        outcomes.len() >= 8,
        "only {} distinct outcomes",
        outcomes.len()
    );
}
