//! kabi's verdicts against what Debian's kmod `depmod -e -E SYMVERS` reports, on real Debian
//! cloud kernels: every module of ABI X checked against ABI Y, the pairs chosen by property
//! (`common::kernels`: another `module_layout`, identical symvers, one layout and other CRCs).
//!
//! depmod's check is a subset of the loader's: it compares the `__versions` CRCs of each
//! module with the `vmlinux` lines of the symvers file and with the exports of the other
//! modules of the tree, and reports unknown symbols. For exactly that configuration (the
//! kernel's vmlinux ABI, the tree's modules as the set, no vermagic) kabi's *direct* CRC and
//! missing-symbol problems must equal depmod's warnings, module by module and symbol by
//! symbol. The checks depmod cannot make are shown by the other tests.

mod common;
use common::*;
use kabi::check::{Problem, check_set};
use kabi::kernel::abi::KernelAbi;
use kabi::kernel::target::Target;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

type Findings = BTreeMap<String, BTreeSet<String>>; // module path -> {"disagrees sym" | "unknown sym"}

struct Kernel {
    root: PathBuf,
    kver: String,
}

impl Kernel {
    fn fetch(abi: &str) -> Option<Kernel> {
        let root = kernels::cloud()?.fetch(abi)?;
        let (_, kver) = module_dir(&root);
        Some(Kernel { root, kver })
    }
    fn dir(&self) -> PathBuf {
        self.root.join("lib/modules").join(&self.kver)
    }
    fn symvers(&self) -> PathBuf {
        self.root.join(format!(
            "usr/src/linux-headers-{}/Module.symvers",
            self.kver
        ))
    }
}

fn depmod_findings(x: &Kernel, y: &Kernel) -> Findings {
    // depmod writes nothing with -n; the tree is reached through a symlink in a temp root
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("lib/modules")).unwrap();
    std::os::unix::fs::symlink(x.dir(), tmp.path().join("lib/modules").join(&x.kver)).unwrap();
    let out = run(Command::new("depmod")
        .arg("-n")
        .arg("-b")
        .arg(tmp.path())
        .arg("-e")
        .arg("-E")
        .arg(y.symvers())
        .arg(&x.kver));
    assert!(
        out.status.success(),
        "depmod failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let prefix = tmp.path().join("lib/modules").join(&x.kver);
    let mut f = Findings::new();
    for line in String::from_utf8_lossy(&out.stderr).lines() {
        let Some(rest) = line.strip_prefix("depmod: WARNING: ") else {
            continue;
        };
        let (path, what) = if let Some((p, s)) = rest.split_once(" needs unknown symbol ") {
            (p, format!("unknown {s}"))
        } else if let Some((p, s)) = rest.split_once(" disagrees about version of symbol ") {
            (p, format!("disagrees {s}"))
        } else {
            continue;
        };
        let rel = Path::new(path)
            .strip_prefix(&prefix)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        f.entry(rel).or_default().insert(what);
    }
    f
}

fn kabi_findings(x: &Kernel, y: &Kernel) -> (Findings, Vec<kabi::check::Verdict>) {
    let abi = KernelAbi::from_symbols(
        "symvers",
        kabi::kernel::symvers::read(&y.symvers()).unwrap(),
    )
    .vmlinux_only();
    let target = Target {
        abi,
        crcs_known: true,
        ..Target::default()
    };
    let files = kabi::kernel::tree::module_files(&x.dir());
    let mods: Vec<(PathBuf, kabi::Module)> = kabi::kernel::tree::parse_all(&files)
        .into_iter()
        .zip(&files)
        .map(|(m, p)| (p.clone(), m.unwrap_or_else(|e| panic!("{e}"))))
        .collect();
    let verdicts = check_set(&mods, &target);
    let mut f = Findings::new();
    for v in &verdicts {
        let rel = v
            .path
            .as_ref()
            .unwrap()
            .strip_prefix(x.dir())
            .unwrap()
            .to_string_lossy()
            .into_owned();
        for p in &v.problems {
            let what = match p {
                Problem::ModuleLayout { .. } => "disagrees module_layout".to_string(),
                Problem::CrcMismatch {
                    symbol,
                    weak: false,
                    ..
                } => format!("disagrees {symbol}"),
                Problem::MissingSymbol { symbol } => format!("unknown {symbol}"),
                _ => continue,
            };
            f.entry(rel.clone()).or_default().insert(what);
        }
    }
    (f, verdicts)
}

fn compare(xa: &str, ya: &str) -> Option<(Findings, Vec<kabi::check::Verdict>)> {
    if !require_tool("depmod") {
        return None;
    }
    let (x, y) = (Kernel::fetch(xa)?, Kernel::fetch(ya)?);
    let dep = depmod_findings(&x, &y);
    let (ours, verdicts) = kabi_findings(&x, &y);
    let only_dep: Vec<_> = dep
        .iter()
        .filter(|(k, v)| ours.get(*k) != Some(v))
        .take(3)
        .collect();
    let only_ours: Vec<_> = ours
        .iter()
        .filter(|(k, v)| dep.get(*k) != Some(v))
        .take(3)
        .collect();
    assert!(
        dep == ours,
        "{xa}->{ya}: depmod and kabi differ\n depmod: {only_dep:?}\n kabi: {only_ours:?}"
    );
    let n: usize = dep.values().map(BTreeSet::len).sum();
    eprintln!(
        "{xa}->{ya}: {} modules with {n} findings, identical",
        dep.len()
    );
    Some((dep, verdicts))
}

#[test]
fn other_layout_to_new_breaks_every_module() {
    let Some(k) = kernels::cloud() else { return };
    let Some((f, verdicts)) = compare(k.other, k.new) else {
        return;
    };
    assert!(verdicts.len() > 1000);
    assert_eq!(f.len(), verdicts.len(), "depmod flags every module");
    assert!(verdicts.iter().all(|v| !v.compatible()));
    // the loader's first reason is module_layout, ENOEXEC, for every module
    assert!(
        verdicts
            .iter()
            .all(|v| matches!(v.problems[0], Problem::ModuleLayout { .. }))
    );
    assert!(
        verdicts
            .iter()
            .all(|v| v.errno().map(|e| e.as_str()) == Some("ENOEXEC"))
    );
    // module_layout and more: each module of a kernel with another layout disagrees about
    // some of the symbols it imports too
    let n: usize = f.values().map(BTreeSet::len).sum();
    assert!(n > 2 * verdicts.len(), "{n} findings");
}

#[test]
fn identical_symvers_are_fully_compatible() {
    let Some(k) = kernels::cloud() else { return };
    let Some((f, verdicts)) = compare(k.old, k.new) else {
        return;
    };
    assert!(f.is_empty());
    assert!(verdicts.len() > 1000);
    assert!(
        verdicts.iter().all(|v| v.compatible()),
        "{:?}",
        verdicts.iter().find(|v| !v.compatible())
    );
}

#[test]
fn one_layout_other_crcs_breaks_some_modules() {
    let Some((x, y)) = kernels::cloud().and_then(|k| k.partial()) else {
        return;
    };
    let Some((f, verdicts)) = compare(x, y) else {
        return;
    };
    assert!(!f.is_empty());
    let incompatible = verdicts.iter().filter(|v| !v.compatible()).count();
    assert!(incompatible >= f.len(), "fixed point can only add modules");
    assert!(
        incompatible < verdicts.len(),
        "the layout is the same: some load"
    );
    eprintln!(
        "{x}->{y}: {incompatible} of {} modules incompatible",
        verdicts.len()
    );
}
