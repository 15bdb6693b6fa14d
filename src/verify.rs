//! `kabi verify`: will the modules this host expects load on this kernel? The expected set is
//! what systemd's modules-load.d and the command line name, every module of the kernel's
//! `extra/`, `updates/` and `weak-updates/`, and optionally what is loaded now.

use crate::check::check_set;
use crate::module::Module;
use crate::tree::lookup::{Found, ModuleDir, normalize};
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
    /// The file, when the source is a module directory.
    pub path: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub name: String,
    pub source: String,
    pub path: Option<PathBuf>,
    /// `ok`, `incompatible`, `missing`, `dangling-link`, `link-to-removed-kernel`,
    /// `builtin`, `unverifiable`.
    pub state: String,
    pub reasons: Vec<String>,
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
        !matches!(self.state.as_str(), "ok" | "builtin")
    }
}

/// The module names of modules-load.d files (`*.conf`, `#` and `;` comments), the first
/// directory's file winning for equal names, and of `modules-load=` / `rd.modules-load=`.
pub fn wanted_by_config(root: &Path, cmdline: &str) -> Vec<Wanted> {
    let mut files: BTreeMap<String, PathBuf> = BTreeMap::new();
    for d in MODULES_LOAD_DIRS {
        let Ok(rd) = std::fs::read_dir(root.join(d)) else {
            continue;
        };
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.ends_with(".conf") {
                files.entry(n).or_insert_with(|| e.path());
            }
        }
    }
    let mut out = Vec::new();
    for (n, p) in &files {
        for line in std::fs::read_to_string(p).unwrap_or_default().lines() {
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

/// Every module file (or link) below the kernel's `extra/`, `updates/`, `weak-updates/`.
pub fn wanted_by_tree(dir: &Path) -> Vec<Wanted> {
    let mut out = Vec::new();
    for top in ["extra", "updates", "weak-updates"] {
        let mut stack = vec![dir.join(top)];
        while let Some(d) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in rd.flatten() {
                let p = e.path();
                let Ok(t) = e.file_type() else { continue };
                let name = e.file_name().to_string_lossy().into_owned();
                if t.is_dir() {
                    stack.push(p);
                } else if crate::module::strip_module_ext(&name).is_some() {
                    out.push(Wanted {
                        name: crate::module::name_from_path(&p),
                        source: top.into(),
                        path: Some(p),
                    });
                }
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// Verify kernel `kver` under `root` for the wanted modules.
pub fn verify(root: &Path, kver: &str, wanted: Vec<Wanted>) -> Report {
    let t0 = std::time::Instant::now();
    let r = root.to_string_lossy();
    let md = ModuleDir::new((r != "/").then(|| r.trim_end_matches('/')), kver);
    let dir = PathBuf::from(&md.dir);
    let mut errors = Vec::new();
    // the kernel's symvers covers vmlinux and its in-tree modules: enough, and fast; without
    // one, its own module tree (and image) are read
    let r = crate::root::Root::open(root);
    let from_symvers = r.as_ref().map_err(|e| e.to_string()).and_then(|r| {
        let k = crate::weak::Kernels::new(r, crate::weak::Layout::default());
        let t = k.target(kver);
        t.as_ref().clone()
    });
    let target = match from_symvers
        .or_else(|_| crate::kernel::source::installed_kernel(root, kver).map_err(|e| e.to_string()))
    {
        Ok(t) => Some(t),
        Err(e) => {
            errors.push(e.to_string());
            None
        }
    };
    // modules.dep once, instead of a lookup per name
    let by_name: std::collections::HashMap<String, PathBuf> =
        std::fs::read_to_string(dir.join("modules.dep"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let rel = l.split_once(':')?.0;
                let n = crate::tree::lookup::module_name_of(rel)?;
                Some((
                    n,
                    if rel.starts_with('/') {
                        PathBuf::from(rel)
                    } else {
                        dir.join(rel)
                    },
                ))
            })
            .collect();
    let mut findings = Vec::new();
    let mut to_open: Vec<(usize, PathBuf)> = Vec::new();
    let mut set: Vec<(PathBuf, Module)> = Vec::new();
    let mut slot: Vec<(usize, usize)> = Vec::new(); // (finding index, set index)
    let mut seen = std::collections::BTreeSet::new();
    for w in wanted {
        if !seen.insert((w.name.clone(), w.path.clone())) {
            continue;
        }
        let mut f = Finding {
            name: w.name.clone(),
            source: w.source.clone(),
            path: w.path.clone(),
            state: "ok".into(),
            reasons: Vec::new(),
        };
        let path = match &w.path {
            Some(p) => {
                if std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink())
                    && !p.exists()
                {
                    let target = std::fs::read_link(p).unwrap_or_default();
                    let krel = crate::weak::krel_of_path(&target).unwrap_or_default();
                    let gone = !root.join("lib/modules").join(&krel).is_dir();
                    f.state = if gone {
                        "link-to-removed-kernel".into()
                    } else {
                        "dangling-link".into()
                    };
                    f.reasons.push(format!(
                        "{} -> {} does not exist",
                        p.display(),
                        target.display()
                    ));
                    findings.push(f);
                    continue;
                }
                Some(p.clone())
            }
            None if by_name.contains_key(&w.name) => Some(by_name[&w.name].clone()),
            None => match md.lookup(&w.name).into_iter().next() {
                Some(Found::File { path, .. }) => Some(path),
                Some(Found::Builtin { .. }) => {
                    f.state = "builtin".into();
                    None
                }
                None => {
                    f.state = "missing".into();
                    f.reasons
                        .push(format!("module {} not found in {}", w.name, dir.display()));
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
    // read the modules in parallel
    use rayon::prelude::*;
    let opened: Vec<(usize, PathBuf, Result<Module, crate::Error>)> = to_open
        .into_par_iter()
        .map(|(fi, p)| {
            let m = Module::open(&p);
            (fi, p, m)
        })
        .collect();
    for (fi, p, m) in opened {
        match m {
            Ok(m) => {
                slot.push((fi, set.len()));
                set.push((p, m));
            }
            Err(e) => {
                findings[fi].state = "incompatible".into();
                findings[fi].reasons.push(e.to_string());
            }
        }
    }
    match &target {
        Some(t) => {
            let verdicts = check_set(&set, t);
            for (fi, si) in slot {
                let v = &verdicts[si];
                if !v.compatible() {
                    findings[fi].state = "incompatible".into();
                    findings[fi].reasons = v
                        .problems
                        .iter()
                        .map(|p| {
                            let msg = p.kernel_message(&set[si].1.name);
                            if msg.is_empty() {
                                format!("{} ({})", p.errno(), set[si].1.name)
                            } else {
                                format!("{}: {msg}", p.errno())
                            }
                        })
                        .collect();
                }
            }
        }
        None => {
            for (fi, _) in slot {
                findings[fi].state = "unverifiable".into();
            }
        }
    }
    let up = crate::root::Root::open(root)
        .map_err(|e| e.to_string())
        .and_then(|r| crate::depmod::up_to_date(&r, &Path::new("lib/modules").join(kver), &md.dir));
    let index_stale = match up {
        Ok(true) => None,
        Ok(false) => Some("a module is newer than modules.dep: run depmod".into()),
        Err(e) => Some(e),
    };
    Report {
        kernel: kver.to_string(),
        findings,
        index_stale,
        errors,
        seconds: t0.elapsed().as_secs_f64(),
    }
}

/// The report as a Prometheus textfile-collector file (node_exporter's convention).
pub fn metrics(r: &Report) -> String {
    let mut s = String::new();
    let esc = |v: &str| {
        v.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    };
    s.push_str("# HELP kabi_verify_success 1 when every expected module will load.\n");
    s.push_str("# TYPE kabi_verify_success gauge\n");
    s.push_str(&format!(
        "kabi_verify_success{{kernel=\"{}\"}} {}\n",
        esc(&r.kernel),
        i32::from(r.exit_code() == 0)
    ));
    s.push_str("# HELP kabi_verify_exit_code kabi verify's exit code (0 good, 1 problem, 2 could not verify).\n");
    s.push_str("# TYPE kabi_verify_exit_code gauge\n");
    s.push_str(&format!(
        "kabi_verify_exit_code{{kernel=\"{}\"}} {}\n",
        esc(&r.kernel),
        r.exit_code()
    ));
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for f in &r.findings {
        *counts.entry(f.state.as_str()).or_default() += 1;
    }
    s.push_str("# HELP kabi_verify_modules Expected modules by verdict.\n");
    s.push_str("# TYPE kabi_verify_modules gauge\n");
    for (state, n) in counts {
        s.push_str(&format!(
            "kabi_verify_modules{{kernel=\"{}\",state=\"{state}\"}} {n}\n",
            esc(&r.kernel)
        ));
    }
    s.push_str(
        "# HELP kabi_verify_problem One per module that will not load, with the first reason.\n",
    );
    s.push_str("# TYPE kabi_verify_problem gauge\n");
    for f in r.findings.iter().filter(|f| f.is_problem()) {
        s.push_str(&format!(
            "kabi_verify_problem{{kernel=\"{}\",module=\"{}\",state=\"{}\",reason=\"{}\"}} 1\n",
            esc(&r.kernel),
            esc(&f.name),
            esc(&f.state),
            esc(f.reasons.first().map(String::as_str).unwrap_or(""))
        ));
    }
    s.push_str("# HELP kabi_verify_index_stale 1 when modules.dep is older than a module.\n");
    s.push_str("# TYPE kabi_verify_index_stale gauge\n");
    s.push_str(&format!(
        "kabi_verify_index_stale{{kernel=\"{}\"}} {}\n",
        esc(&r.kernel),
        i32::from(r.index_stale.is_some())
    ));
    s.push_str("# HELP kabi_verify_duration_seconds How long the verification took.\n");
    s.push_str("# TYPE kabi_verify_duration_seconds gauge\n");
    s.push_str(&format!(
        "kabi_verify_duration_seconds{{kernel=\"{}\"}} {:.6}\n",
        esc(&r.kernel),
        r.seconds
    ));
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
        let w = wanted_by_config(
            tmp.path(),
            "quiet modules-load=udf,xfs rd.modules-load=vfat",
        );
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
