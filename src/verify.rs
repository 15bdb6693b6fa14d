//! `kabi verify`: will the modules this host expects load on this kernel? The expected set is
//! what systemd's modules-load.d and the command line name, every module of the kernel's
//! `extra/`, `updates/` and `weak-updates/`, and optionally what is loaded now. Everything is
//! read inside the root, without following a link out of it; a FIFO or a device where a
//! module is expected is a finding, never a hang.

use crate::check::{Verdict, check_set_with_sigs};
use crate::kernel::source::{Depth, KernelSpec, resolve};
use crate::kernel::target::Target;
use crate::module::{Detail, Module};
use crate::root::{Dir, Kind, Root, caps};
use crate::tree::index::{Hit, ModuleIndex, normalize};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const MODULES_LOAD_DIRS: &[&str] = &[
    "etc/modules-load.d",
    "run/modules-load.d",
    "usr/local/lib/modules-load.d",
    "usr/lib/modules-load.d",
    "lib/modules-load.d",
];

/// Why a module is expected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Wanted {
    pub name: String,
    /// `modules-load.d/<file>`, `cmdline`, `extra`, `updates`, `weak-updates`, `loaded`.
    pub source: String,
    /// The file, inside the root, when the source is a module directory.
    pub path: Option<PathBuf>,
}

/// The verdict on one expected module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    Ok,
    Builtin,
    Incompatible,
    Missing,
    DanglingLink,
    LinkToRemovedKernel,
    /// No ABI of the kernel could be had.
    Unverifiable,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Ok => "ok",
            State::Builtin => "builtin",
            State::Incompatible => "incompatible",
            State::Missing => "missing",
            State::DanglingLink => "dangling-link",
            State::LinkToRemovedKernel => "link-to-removed-kernel",
            State::Unverifiable => "unverifiable",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub name: String,
    pub source: String,
    /// Inside the root.
    pub path: Option<PathBuf>,
    pub state: State,
    /// Incompatible: what loading it returns (the first reason's errno).
    pub errno: Option<crate::errno::Errno>,
    pub reasons: Vec<String>,
    /// What the kernel would say but load anyway (taints), in its words.
    pub notes: Vec<String>,
    /// The kernel's signature check of the module file (`module_sig_check()`), when read:
    /// `verified with KEY (KEYRING)`, `unsigned module`, ...
    pub signature: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub kernel: String,
    pub findings: Vec<Finding>,
    /// `modules.dep` older than a module of the tree (kmod's `-A` test), or missing.
    pub index_stale: Option<String>,
    /// What could not be verified at all (no symvers, unreadable tree).
    pub errors: Vec<String>,
    pub seconds: f64,
}

impl Report {
    /// 0: all good; 1: a module will fail (or the index is stale); 2: could not verify.
    pub fn exit_code(&self) -> i32 {
        if !self.errors.is_empty() {
            2
        } else if self.index_stale.is_some() || self.findings.iter().any(|f| f.is_problem()) {
            1
        } else {
            0
        }
    }
}

impl Finding {
    pub fn is_problem(&self) -> bool {
        !matches!(self.state, State::Ok | State::Builtin)
    }
}

/// The module names of modules-load.d files (`*.conf`, `#` and `;` comments), the first
/// directory's file winning for equal names, and of `modules-load=` / `rd.modules-load=`.
pub fn wanted_by_config(root: &Root, cmdline: &str) -> Vec<Wanted> {
    let mut files: BTreeMap<String, PathBuf> = BTreeMap::new();
    for d in MODULES_LOAD_DIRS {
        for e in root.list(d).unwrap_or_default() {
            let n = e.name.to_string_lossy().into_owned();
            if n.ends_with(".conf") {
                files.entry(n).or_insert_with(|| Path::new(d).join(&e.name));
            }
        }
    }
    let mut out = Vec::new();
    for (n, p) in &files {
        for line in root
            .read_string(p, caps::CONFIG)
            .unwrap_or_default()
            .lines()
        {
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
                continue;
            }
            out.push(Wanted {
                name: normalize(l),
                source: format!("modules-load.d/{n}"),
                path: None,
            });
        }
    }
    for w in crate::load::config::split_cmdline(cmdline) {
        let Some((k, v)) = w.split_once('=') else {
            continue;
        };
        if k == "modules-load" || k == "rd.modules-load" {
            for m in v.split(',').filter(|m| !m.is_empty()) {
                out.push(Wanted {
                    name: normalize(m),
                    source: "cmdline".into(),
                    path: None,
                });
            }
        }
    }
    out
}

/// Every module file (or link) below the kernel's `extra/`, `updates/`, `weak-updates/`,
/// found without following any link.
pub fn wanted_by_tree(root: &Root, kver: &str) -> Vec<Wanted> {
    fn walk(dir: &Dir, top: &str, out: &mut Vec<Wanted>) {
        for e in dir.entries().unwrap_or_default() {
            let p = dir.rel().join(&e.name);
            match e.kind {
                Kind::Dir => {
                    if let Ok(sub) = dir.sub(&e.name) {
                        walk(&sub, top, out);
                    }
                }
                _ if e
                    .name_str()
                    .and_then(crate::module::strip_module_ext)
                    .is_some() =>
                {
                    out.push(Wanted {
                        name: crate::module::name_from_path(&p),
                        source: top.into(),
                        path: Some(Path::new("/").join(p)),
                    });
                }
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    let Ok(kdir) = root.open_dir(Path::new("lib/modules").join(kver)) else {
        return out;
    };
    for top in ["extra", "updates", "weak-updates"] {
        if let Ok(d) = kdir.sub(top) {
            walk(&d, top, &mut out);
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// What to read for the module file `p` (inside the root): itself, or for a link, its
/// target inside the root (a target that names the root by its outside path, as RHEL's
/// script writes them with `--basedir`, included); a link whose target is no file inside
/// the root is dangling, or points into a removed kernel.
fn follow(root: &Root, p: &Path) -> Result<PathBuf, (State, String)> {
    let Ok(st) = root.lstat(p) else {
        return Ok(p.to_path_buf());
    };
    if st.kind != Kind::Symlink || root.is_file(p) {
        return Ok(p.to_path_buf());
    }
    let target = root.read_link(p).unwrap_or_default();
    let at = p.parent().unwrap_or(Path::new("/"));
    let inside = crate::weak::state::inside_target(root, at, &target);
    if root.is_file(&inside) {
        return Ok(inside);
    }
    let krel = crate::weak::krel_of_path(&inside).unwrap_or_default();
    let gone = krel.is_empty() || !root.is_dir(Path::new("lib/modules").join(&krel));
    Err((
        if gone {
            State::LinkToRemovedKernel
        } else {
            State::DanglingLink
        },
        format!(
            "{} -> {} does not exist",
            root.display(p).display(),
            target.display()
        ),
    ))
}

/// Verify kernel `kver` inside `root` for the wanted modules.
pub fn verify(root: &Root, kver: &str, wanted: Vec<Wanted>) -> Report {
    let t0 = std::time::Instant::now();
    let mut errors = Vec::new();
    // an interrupted weak-modules run: complete it if this tree can be written, else say so
    if let Err(e) = crate::weak::txn::recover_if_pending(root, crate::weak::Layout::default(), kver)
    {
        errors.push(e);
    }
    let target = match resolve(
        root,
        &KernelSpec::Installed(kver.to_string()),
        Depth::Symvers,
    ) {
        Ok(mut t) => match crate::sig::SigPolicy::of_kernel(root, kver) {
            Ok(mut p) => {
                // the modules are loaded at boot (systemd-modules-load, udev's modprobe), not by kabi
                p.loader_comm = "modprobe".into();
                t.sig = p;
                Some(t)
            }
            Err(e) => {
                errors.push(format!("kernel {kver}: signature policy: {e}"));
                None
            }
        },
        Err(e) => {
            errors.push(e.to_string());
            None
        }
    };
    let idx = ModuleIndex::new(root, kver).map(|i| i.with_scan(crate::depmod::dep_lines_in));
    let (mut findings, to_open) = locate(root, idx.as_ref().ok(), wanted);
    judge(root, target.as_ref(), &mut findings, to_open);
    let index_stale = match &idx {
        Ok(i) => match crate::depmod::up_to_date(root, i.rel(), &i.dirname()) {
            Ok(true) => None,
            Ok(false) => Some("a module is newer than modules.dep: run depmod".into()),
            Err(e) => Some(e),
        },
        Err(e) => Some(e.to_string()),
    };
    Report {
        kernel: kver.to_string(),
        findings,
        index_stale,
        errors,
        seconds: t0.elapsed().as_secs_f64(),
    }
}

/// Each wanted module's finding so far, and the files still to read: (finding, path).
fn locate(
    root: &Root,
    idx: Option<&ModuleIndex>,
    wanted: Vec<Wanted>,
) -> (Vec<Finding>, Vec<(usize, PathBuf)>) {
    let mut findings = Vec::new();
    let mut to_open = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for w in wanted {
        if !seen.insert((w.name.clone(), w.path.clone())) {
            continue;
        }
        let mut f = Finding {
            name: w.name.clone(),
            source: w.source.clone(),
            path: w.path.clone(),
            state: State::Ok,
            errno: None,
            reasons: Vec::new(),
            notes: Vec::new(),
            signature: None,
        };
        let path = match &w.path {
            Some(p) => match follow(root, p) {
                Err((state, why)) => {
                    f.state = state;
                    f.reasons.push(why);
                    None
                }
                Ok(read) => {
                    to_open.push((findings.len(), read));
                    None
                }
            },
            None => match idx.and_then(|i| i.lookup(&w.name).into_iter().next().map(|h| (i, h))) {
                Some((i, Hit::File { rel, .. })) => Some(i.path(&rel)),
                Some((_, Hit::Builtin { .. })) => {
                    f.state = State::Builtin;
                    None
                }
                None => {
                    f.state = State::Missing;
                    f.reasons.push(format!(
                        "module {} not found in {}",
                        w.name,
                        idx.map(ModuleIndex::dirname).unwrap_or_default()
                    ));
                    None
                }
            },
        };
        if let Some(p) = path {
            f.path = Some(p.clone());
            to_open.push((findings.len(), p));
        }
        findings.push(f);
    }
    (findings, to_open)
}

/// Read the modules in parallel and check them, as one set, against the kernel; each
/// module's signature is checked from the same bytes with the kernel's [`crate::sig::SigPolicy`]
/// (its keys are loaded only when a signed module needs them).
fn judge(
    root: &Root,
    target: Option<&Target>,
    findings: &mut [Finding],
    to_open: Vec<(usize, PathBuf)>,
) {
    use rayon::prelude::*;
    type Read = Result<(Module, Option<crate::sig::SigCheck>), crate::Error>;
    let opened: Vec<(usize, PathBuf, Read)> = to_open
        .into_par_iter()
        .map(|(fi, p)| {
            let m = match target {
                Some(t) => crate::sig::read_module_in(
                    root,
                    &p,
                    Detail::Full,
                    &t.sig,
                    crate::sig::Math::Here,
                )
                .map(|(m, sc)| (m, Some(sc))),
                None => Module::read_in(root, &p, Detail::Full).map(|m| (m, None)),
            };
            (fi, p, m)
        })
        .collect();
    let mut set: Vec<(PathBuf, Module)> = Vec::new();
    let mut sigs: Vec<Option<crate::sig::SigCheck>> = Vec::new();
    let mut slot: Vec<(usize, usize)> = Vec::new(); // (finding index, set index)
    for (fi, p, m) in opened {
        match m {
            Ok((m, sc)) => {
                slot.push((fi, set.len()));
                set.push((p, m));
                sigs.push(sc);
            }
            Err(e) => {
                findings[fi].state = State::Incompatible;
                findings[fi].reasons.push(e.to_string());
            }
        }
    }
    let Some(t) = target else {
        for (fi, _) in slot {
            findings[fi].state = State::Unverifiable;
        }
        return;
    };
    let verdicts = check_set_with_sigs(&set, t, &sigs);
    for (fi, si) in slot {
        let v = &verdicts[si];
        let f = &mut findings[fi];
        f.notes = notes(v);
        f.signature = v.signature.as_ref().map(signature_summary);
        if !v.compatible() {
            f.state = State::Incompatible;
            f.errno = v.errno();
            f.reasons = v
                .problems
                .iter()
                .map(|p| p.describe(&set[si].1.name))
                .collect();
        }
    }
}

/// The verdict's notes, one line each.
fn notes(v: &Verdict) -> Vec<String> {
    v.notes.iter().map(|n| n.describe(&v.name)).collect()
}

/// One line on a signature check (before enforcement).
fn signature_summary(sc: &crate::sig::SigCheck) -> String {
    use crate::sig::Outcome;
    match &sc.outcome {
        Outcome::Verified { key, keyring } => {
            format!("verified with '{key}' ({})", keyring.name())
        }
        Outcome::Soft { why, detail } => format!("{} ({detail})", why.reason()),
        Outcome::Refused { errno, detail } => format!("refused, {errno}: {detail}"),
        Outcome::Unknown { detail } => format!("not verified: {detail}"),
    }
}

/// The modules `/proc/modules` lists (inside the root), as wanted.
pub fn wanted_loaded(root: &Root) -> Vec<Wanted> {
    root.read_string("proc/modules", caps::INDEX)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').next())
        .filter(|n| !n.is_empty())
        .map(|n| Wanted {
            name: n.to_string(),
            source: "loaded".into(),
            path: None,
        })
        .collect()
}

/// The report as a Prometheus textfile-collector file (node_exporter's convention).
pub fn metrics(r: &Report) -> String {
    let esc = |v: &str| {
        v.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    };
    let k = esc(&r.kernel);
    let mut s = String::new();
    let mut gauge = |name: &str, help: &str, lines: Vec<String>| {
        s.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
        for l in lines {
            s.push_str(&format!("{name}{l}\n"));
        }
    };
    gauge(
        "kabi_verify_success",
        "1 when every expected module will load.",
        vec![format!(
            "{{kernel=\"{k}\"}} {}",
            i32::from(r.exit_code() == 0)
        )],
    );
    gauge(
        "kabi_verify_exit_code",
        "kabi verify's exit code (0 good, 1 problem, 2 could not verify).",
        vec![format!("{{kernel=\"{k}\"}} {}", r.exit_code())],
    );
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for f in &r.findings {
        *counts.entry(f.state.as_str()).or_default() += 1;
    }
    gauge(
        "kabi_verify_modules",
        "Expected modules by verdict.",
        counts
            .into_iter()
            .map(|(state, n)| format!("{{kernel=\"{k}\",state=\"{state}\"}} {n}"))
            .collect(),
    );
    gauge(
        "kabi_verify_problem",
        "One per module that will not load, with the first reason.",
        r.findings
            .iter()
            .filter(|f| f.is_problem())
            .map(|f| {
                format!(
                    "{{kernel=\"{k}\",module=\"{}\",state=\"{}\",reason=\"{}\"}} 1",
                    esc(&f.name),
                    f.state.as_str(),
                    esc(f.reasons.first().map(String::as_str).unwrap_or(""))
                )
            })
            .collect(),
    );
    gauge(
        "kabi_verify_index_stale",
        "1 when modules.dep is older than a module.",
        vec![format!(
            "{{kernel=\"{k}\"}} {}",
            i32::from(r.index_stale.is_some())
        )],
    );
    gauge(
        "kabi_verify_duration_seconds",
        "How long the verification took.",
        vec![format!("{{kernel=\"{k}\"}} {:.6}", r.seconds)],
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_load_d_and_cmdline() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("etc/modules-load.d");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("a.conf"), "# c\n; c\nmlx5-core\n\ndummy\n").unwrap();
        std::fs::write(d.join("a.txt"), "ignored\n").unwrap();
        let u = tmp.path().join("usr/lib/modules-load.d");
        std::fs::create_dir_all(&u).unwrap();
        std::fs::write(u.join("a.conf"), "shadowed\n").unwrap();
        let root = Root::open(tmp.path()).unwrap();
        let w = wanted_by_config(&root, "quiet modules-load=udf,xfs rd.modules-load=vfat");
        let names: Vec<(&str, &str)> = w
            .iter()
            .map(|x| (x.name.as_str(), x.source.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("mlx5_core", "modules-load.d/a.conf"),
                ("dummy", "modules-load.d/a.conf"),
                ("udf", "cmdline"),
                ("xfs", "cmdline"),
                ("vfat", "cmdline")
            ]
        );
    }
}
