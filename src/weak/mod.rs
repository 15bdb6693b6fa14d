//! weak-updates: which out-of-tree modules of one kernel may be used by another, decided by
//! kabi's own loader checks, and the `weak-updates/` symlinks that say so (RHEL's
//! `weak-modules`, spec §7.7).
//!
//! Every change to a kernel's `weak-updates/` is made as one step: the new tree is built
//! beside the old one and the two are exchanged with `renameat2(RENAME_EXCHANGE)`, so that
//! a crash at any point leaves the old tree or the new one.

pub mod initramfs;
pub mod links;
pub mod ops;

use crate::check::{Problem, check_set};
use crate::error::Error;
use crate::kernel::target::Target;
use crate::kernel::{abi::KernelAbi, symvers};
use crate::module::{Detail, Module};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use links::Links;

/// Where things are: the filesystem root and the distribution's conventions.
#[derive(Debug, Clone)]
pub struct Layout {
    pub basedir: PathBuf,
    /// SUSE: `/usr/lib/modules`, links keep the module's top directory.
    pub suse: bool,
}

impl Layout {
    pub fn modules(&self) -> PathBuf {
        self.basedir.join(if self.suse {
            "usr/lib/modules"
        } else {
            "lib/modules"
        })
    }
    pub fn kernel_dir(&self, krel: &str) -> PathBuf {
        self.modules().join(krel)
    }
    pub fn weak_dir(&self, krel: &str) -> PathBuf {
        self.kernel_dir(krel).join("weak-updates")
    }

    /// The kernel's symvers file: `/boot/symvers-K.gz` (RHEL), or beside its modules.
    pub fn symvers(&self, krel: &str) -> Option<PathBuf> {
        let b = &self.basedir;
        [
            b.join(format!("boot/symvers-{krel}.gz")),
            b.join(format!("boot/symvers-{krel}")),
            self.kernel_dir(krel).join("symvers.gz"),
            self.kernel_dir(krel).join("symvers"),
        ]
        .into_iter()
        .find(|p| p.is_file())
    }

    /// Kernels that are installed: a module directory and a symvers file. Oldest first
    /// (version order, as `rpmsort`).
    pub fn installed_kernels(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.modules())
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.path().is_dir())
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|k| !k.starts_with('.') && self.symvers(k).is_some())
                    .collect()
            })
            .unwrap_or_default();
        v.sort_by(|a, b| version_cmp(a, b));
        v
    }

    /// Kernels with an `extra/` directory (whatever their symvers), oldest first.
    pub fn kernels_with_extra(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.modules())
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.path().join("extra").is_dir())
                    .filter_map(|e| e.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default();
        v.sort_by(|a, b| version_cmp(a, b));
        v
    }

    /// The link path of `module` (built for `mkrel`) in kernel `krel`'s `weak-updates/`,
    /// relative to that directory: the path below the module's top directory (`extra/`,
    /// `updates/`); SUSE keeps the top directory. A module outside any module directory is
    /// linked under its full path.
    pub fn link_rel(&self, module: &Path, mkrel: &str) -> PathBuf {
        let below = module
            .strip_prefix(&self.basedir)
            .ok()
            .and_then(|p| {
                let p = p.strip_prefix("usr").unwrap_or(p);
                p.strip_prefix("lib/modules").ok()?.strip_prefix(mkrel).ok()
            })
            .and_then(|rest| {
                let mut c = rest.components();
                let top = c.next()?;
                let sub = c.as_path();
                (!sub.as_os_str().is_empty()).then(|| {
                    if self.suse {
                        Path::new(top.as_os_str()).join(sub)
                    } else {
                        sub.to_path_buf()
                    }
                })
            });
        below.unwrap_or_else(|| module.strip_prefix("/").unwrap_or(module).to_path_buf())
    }
}

/// Compare kernel releases as version strings: runs of digits numerically, the rest as text.
pub fn version_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn parts(s: &str) -> Vec<Result<u64, &str>> {
        let mut out = Vec::new();
        let mut rest = s;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits > 0 {
                out.push(Ok(rest[..digits].parse().unwrap_or(u64::MAX)));
                rest = &rest[digits..];
            } else {
                let n = rest.bytes().take_while(|b| !b.is_ascii_digit()).count();
                out.push(Err(&rest[..n]));
                rest = &rest[n..];
            }
        }
        out
    }
    let (pa, pb) = (parts(a), parts(b));
    for (x, y) in pa.iter().zip(&pb) {
        let o = match (x, y) {
            (Ok(x), Ok(y)) => x.cmp(y),
            (Err(x), Err(y)) => x.cmp(y),
            (Ok(_), Err(_)) => std::cmp::Ordering::Greater,
            (Err(_), Ok(_)) => std::cmp::Ordering::Less,
        };
        if o.is_ne() {
            return o;
        }
    }
    pa.len().cmp(&pb.len())
}

/// The kernel release a module was built for: the first word of its vermagic; else the
/// directory below `lib/modules/` it sits in.
pub fn module_krel(path: &Path) -> Option<String> {
    if let Ok(m) = Module::open_with(path, Detail::Sections) {
        if let Some(v) = m.vermagic() {
            let v = String::from_utf8_lossy(v);
            if let Some(w) = v.split_whitespace().next() {
                return Some(w.to_string());
            }
        }
    }
    let s = path.to_string_lossy();
    let rest = s.split_once("/lib/modules/")?.1;
    rest.split('/').next().map(str::to_string)
}

/// The module name of a file: its name without `.ko[.xz|.zst|.gz]`, `-` as `_`.
pub fn module_name(path: &Path) -> String {
    crate::module::name_from_path(path)
}

/// Why a proposed link was not made.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Refusal {
    /// Relative to `weak-updates/`.
    pub link: PathBuf,
    pub target: PathBuf,
    /// The symbols at fault, as weak-modules lists them.
    pub symbols: Vec<String>,
    /// Every reason in the kernel's words.
    pub reasons: Vec<String>,
}

/// The outcome for one kernel.
#[derive(Debug, Clone, Default)]
pub struct Decision {
    pub accepted: Links,
    pub refused: Vec<Refusal>,
    /// Proposed links not made because the kernel has that module in its own `extra/` or
    /// `updates/`: (link, target, the kernel's own file).
    pub shadowed: Vec<(PathBuf, PathBuf, PathBuf)>,
}

/// The kernel `krel` as its loader sees it: its symvers (vmlinux and in-tree modules, with
/// CRCs), its configuration, vermagic and `struct module` size from one of its modules.
pub fn kernel_target(layout: &Layout, krel: &str) -> Result<Target, Error> {
    let symvers_path = layout.symvers(krel).ok_or_else(|| {
        Error::Usage(format!(
            "kernel {krel}: no symvers file (boot/symvers-{krel}.gz) under {}",
            layout.basedir.display()
        ))
    })?;
    let mut t = Target {
        release: Some(krel.to_string()),
        crcs_known: true,
        abi: KernelAbi::from_symbols(
            symvers_path.display().to_string(),
            symvers::read(&symvers_path)?,
        ),
        ..Target::default()
    };
    t.read_config(&layout.basedir, krel);
    // one in-tree module gives vermagic, struct module size and architecture
    let own = layout.kernel_dir(krel).join("kernel");
    let mut stack = vec![own];
    'find: while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if crate::module::strip_module_ext(&e.file_name().to_string_lossy()).is_some() {
                if let Ok(m) = Module::open_with(&p, Detail::Sections) {
                    t.learn_from_module(&m);
                    break 'find;
                }
            }
        }
    }
    Ok(t)
}

/// The modules of kernel `krel`'s own `extra/` and `updates/` (real files, not links).
pub fn own_modules(layout: &Layout, krel: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for top in ["updates", "extra"] {
        let dir = layout.kernel_dir(krel).join(top);
        if dir.is_dir() {
            out.extend(crate::kernel::tree::module_files(&dir));
        }
    }
    out
}

/// Decide which of the proposed links kernel `krel` can use: each target module is checked
/// with the kernel's loader rules against the kernel's symbols, its own `extra/` and
/// `updates/` modules and the other proposed modules, as one set: a module whose provider
/// in the set is refused is refused too.
pub fn decide(layout: &Layout, krel: &str, proposal: &Links) -> Result<Decision, Error> {
    let target = kernel_target(layout, krel)?;
    let own = own_modules(layout, krel);
    let own_names: BTreeMap<String, PathBuf> =
        own.iter().map(|p| (module_name(p), p.clone())).collect();
    let mut decision = Decision::default();
    let mut set: Vec<(PathBuf, Module)> = Vec::new();
    let mut candidates: Vec<(PathBuf, PathBuf)> = Vec::new(); // (link, target), set index = own.len() + i
    for p in &own {
        if let Ok(m) = Module::open(p) {
            set.push((p.clone(), m));
        }
    }
    let n_own = set.len();
    for (link, tgt) in proposal {
        if let Some(mine) = own_names.get(&module_name(tgt)) {
            decision
                .shadowed
                .push((link.clone(), tgt.clone(), mine.clone()));
            continue;
        }
        match Module::open(tgt) {
            Ok(m) => {
                candidates.push((link.clone(), tgt.clone()));
                set.push((tgt.clone(), m));
            }
            Err(e) => decision.refused.push(Refusal {
                link: link.clone(),
                target: tgt.clone(),
                symbols: Vec::new(),
                reasons: vec![e.to_string()],
            }),
        }
    }
    let verdicts = check_set(&set, &target);
    for (i, (link, tgt)) in candidates.into_iter().enumerate() {
        let v = &verdicts[n_own + i];
        if v.compatible() {
            decision.accepted.insert(link, tgt);
        } else {
            let name = &set[n_own + i].1.name;
            decision.refused.push(Refusal {
                link,
                target: tgt,
                symbols: v
                    .problems
                    .iter()
                    .filter_map(Problem::symbol)
                    .map(str::to_string)
                    .collect(),
                reasons: v
                    .problems
                    .iter()
                    .map(|p| {
                        let msg = p.kernel_message(name);
                        if msg.is_empty() {
                            format!("{name}: {p:?}")
                        } else {
                            msg
                        }
                    })
                    .collect(),
            });
        }
    }
    Ok(decision)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_paths_follow_rhel_and_suse() {
        let rhel = Layout {
            basedir: PathBuf::from("/r"),
            suse: false,
        };
        let m = Path::new("/r/lib/modules/6.1.0-55-cloud-amd64/extra/mlnx/mlx5_core.ko");
        assert_eq!(
            rhel.link_rel(m, "6.1.0-55-cloud-amd64"),
            Path::new("mlnx/mlx5_core.ko")
        );
        let usr = Path::new("/r/usr/lib/modules/6.1.0-55-cloud-amd64/updates/x.ko.xz");
        assert_eq!(
            rhel.link_rel(usr, "6.1.0-55-cloud-amd64"),
            Path::new("x.ko.xz")
        );
        // not in a module directory: its full path
        assert_eq!(
            rhel.link_rel(Path::new("/opt/acfs/oracleacfs.ko"), "k"),
            Path::new("opt/acfs/oracleacfs.ko")
        );
        let suse = Layout {
            basedir: PathBuf::from("/"),
            suse: true,
        };
        assert_eq!(
            suse.link_rel(Path::new("/usr/lib/modules/k/updates/a/b.ko"), "k"),
            Path::new("updates/a/b.ko")
        );
    }

    #[test]
    fn versions_sort_numerically() {
        let mut v = vec![
            "6.1.0-56-cloud-amd64",
            "6.1.0-9-cloud-amd64",
            "5.14.0-427.el9.x86_64",
            "6.1.0-47-cloud-amd64",
        ];
        v.sort_by(|a, b| version_cmp(a, b));
        assert_eq!(
            v,
            [
                "5.14.0-427.el9.x86_64",
                "6.1.0-9-cloud-amd64",
                "6.1.0-47-cloud-amd64",
                "6.1.0-56-cloud-amd64"
            ]
        );
    }
}
