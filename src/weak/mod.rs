//! weak-updates: which out-of-tree modules of one kernel may be used by another, decided by
//! kabi's own loader checks, and the `weak-updates/` symlinks that say so (RHEL's
//! `weak-modules`, spec §7.7).
//!
//! Decide first, act second: [`state`] reads one snapshot of a root, [`plan`] computes from
//! it, as a value, every link to add and remove, the indexes to rewrite and the initramfs
//! images affected; `--dry-run` prints that plan and stops. [`txn`] applies it, one
//! transaction per kernel: an intent record written and flushed first, then the whole
//! `weak-updates/` tree exchanged in one `renameat2(RENAME_EXCHANGE)` ([`links`]), then the
//! kernel's indexes, then the record removed. Whatever point a crash hits, the next kabi
//! command that touches that kernel finds the record and completes it.

pub mod initramfs;
pub mod links;
pub(crate) mod ops;
pub(crate) mod plan;
pub(crate) mod state;
pub(crate) mod status;
pub mod suse;
pub(crate) mod txn;

use crate::check::{Problem, check_set_with_sigs};
use crate::error::Error;
use crate::kernel::symvers;
use crate::kernel::target::Target;
use crate::module::{Detail, Module};
use crate::root::Root;
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

pub use links::Links;

/// The distribution's conventions.
#[derive(Debug, Clone, Copy, Default)]
pub struct Layout {
    /// SUSE: `/usr/lib/modules`, links keep the module's top directory.
    pub suse: bool,
}

impl Layout {
    /// The directory of the kernels' module directories, inside the root.
    pub fn base(&self) -> &'static Path {
        Path::new(if self.suse {
            "usr/lib/modules"
        } else {
            "lib/modules"
        })
    }

    /// A kernel's module directory, inside the root.
    pub fn kernel(&self, krel: &str) -> PathBuf {
        self.base().join(krel)
    }

    /// The link path of `module` (a path inside the root, built for `mkrel`) in another
    /// kernel's `weak-updates/`: the path below the module's top directory (`extra/`,
    /// `updates/`); SUSE keeps the top directory. A module outside any module directory is
    /// linked under its full path. `None` when that would not be a plain relative path.
    pub fn link_rel(&self, module: &Path, mkrel: &str) -> Option<PathBuf> {
        let p = module.strip_prefix("/").unwrap_or(module);
        let below = p
            .strip_prefix("usr")
            .unwrap_or(p)
            .strip_prefix("lib/modules")
            .ok()
            .and_then(|r| r.strip_prefix(mkrel).ok())
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
        let rel = below.unwrap_or_else(|| p.to_path_buf());
        let plain = !rel.as_os_str().is_empty()
            && rel.components().all(|c| matches!(c, Component::Normal(_)))
            && rel.to_str().is_some();
        plain.then_some(rel)
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

/// The kernel release a module (a path inside the root) was built for: the first word of
/// its vermagic; else the directory below `lib/modules/` it sits in.
pub fn module_krel(root: &Root, path: &Path) -> Option<String> {
    if let Ok(m) = Module::read_in(root, path, Detail::Sections)
        && let Some(v) = m.vermagic()
    {
        let v = String::from_utf8_lossy(v);
        if let Some(w) = v.split_whitespace().next() {
            return Some(w.to_string());
        }
    }
    krel_of_path(path)
}

/// The directory below `lib/modules/` a path sits in.
pub fn krel_of_path(path: &Path) -> Option<String> {
    let s = path.to_string_lossy();
    let rest = s.split_once("lib/modules/")?.1;
    rest.split('/')
        .next()
        .filter(|k| !k.is_empty())
        .map(str::to_string)
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

/// A kernel's own `extra/` and `updates/` modules, parsed.
type OwnModules = std::rc::Rc<Vec<(PathBuf, Module)>>;

/// A kernel's target as read, and the names its symvers symbols were kept for (`None`:
/// all of them; see [`crate::kernel::source::installed_kept`]).
type ReadTarget = (
    std::rc::Rc<Result<Target, String>>,
    Option<rustc_hash::FxHashSet<String>>,
);

/// What is known of the kernels of one root during one run: each kernel's [`Target`] and
/// own modules are read once, however many decisions are made.
pub struct Kernels<'r> {
    pub root: &'r Root,
    pub layout: Layout,
    targets: std::cell::RefCell<BTreeMap<String, ReadTarget>>,
    own: std::cell::RefCell<BTreeMap<String, OwnModules>>,
    /// Proposed modules read by [`Kernels::prefetch`] (a module offered to several kernels
    /// is read once); unreadable ones are left out, to be read and refused by the decision.
    proposed: std::cell::RefCell<BTreeMap<PathBuf, Module>>,
    krels: std::cell::RefCell<BTreeMap<PathBuf, Option<String>>>,
    /// Judge signatures too (`kabi weak status`): each kernel's [`crate::sig::SigPolicy`] as
    /// installed, each proposed module's signature checked from its bytes. Off for the
    /// weak-modules operations, which link as RHEL's and SUSE's scripts do.
    signatures: bool,
}

impl<'r> Kernels<'r> {
    pub fn new(root: &'r Root, layout: Layout) -> Self {
        Kernels {
            root,
            layout,
            targets: Default::default(),
            own: Default::default(),
            proposed: Default::default(),
            krels: Default::default(),
            signatures: false,
        }
    }

    /// [`Kernels::new`], judging module signatures as each kernel would at its next boot on
    /// this host (`kabi weak status`).
    pub fn with_signatures(root: &'r Root, layout: Layout) -> Self {
        Kernels {
            signatures: true,
            ..Kernels::new(root, layout)
        }
    }

    /// [`module_krel`], read once per file.
    pub fn module_krel(&self, path: &Path) -> Option<String> {
        if let Some(k) = self.krels.borrow().get(path) {
            return k.clone();
        }
        let k = module_krel(self.root, path);
        self.krels
            .borrow_mut()
            .insert(path.to_path_buf(), k.clone());
        k
    }

    /// The kernel's symvers file (inside the root), wherever the distribution puts it.
    pub fn symvers(&self, krel: &str) -> Option<PathBuf> {
        symvers::find_in(self.root, krel)
    }

    /// Every kernel with a module directory, oldest first (version order, as `rpmsort`).
    pub fn all(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .root
            .list(self.layout.base())
            .map(|entries| {
                entries
                    .into_iter()
                    .filter_map(|e| e.name.into_string().ok())
                    .filter(|k| !k.starts_with('.') && self.root.is_dir(self.layout.kernel(k)))
                    .collect()
            })
            .unwrap_or_default();
        v.sort_by(|a, b| version_cmp(a, b));
        v
    }

    /// Kernels that can be targets: a module directory and a symvers file.
    pub fn installed(&self) -> Vec<String> {
        self.all()
            .into_iter()
            .filter(|k| self.symvers(k).is_some())
            .collect()
    }

    /// Kernels with an `extra/` directory (whatever their symvers), oldest first.
    pub fn with_extra(&self) -> Vec<String> {
        self.all()
            .into_iter()
            .filter(|k| self.root.is_dir(self.layout.kernel(k).join("extra")))
            .collect()
    }

    /// The module files below a directory of the root (links followed inside the root),
    /// as paths inside the root, sorted.
    pub fn module_files(&self, dir: &Path) -> Vec<PathBuf> {
        struct Ko;
        impl crate::tree::walk::Visitor for Ko {
            fn skip(&self, _: &str) -> bool {
                false
            }
            fn wants(&self, name: &str) -> bool {
                crate::module::strip_module_ext(name).is_some()
            }
        }
        let mut w = crate::tree::walk::Walk::default();
        let mut seen = Default::default();
        if crate::tree::walk::walk(self.root, dir, "", &Ko, &mut seen, &mut w).is_err() {
            return Vec::new();
        }
        let mut v: Vec<PathBuf> = w
            .files
            .into_iter()
            .map(|f| {
                Path::new("/")
                    .join(dir)
                    .join(f.display.trim_start_matches('/'))
            })
            .collect();
        v.sort();
        v
    }

    /// The kernel `krel` as its loader sees it: its symvers (vmlinux and in-tree modules,
    /// with CRCs), its configuration, vermagic and `struct module` size from one of its
    /// modules. With `names`, a target [`Kernels::prefetch`] read for some symbols serves
    /// when it kept these; otherwise (and without `names`) the whole target is read, once:
    /// a kernel's symvers file is read at most twice, however many decisions are made.
    fn target(&self, krel: &str, names: Option<&[&str]>) -> std::rc::Rc<Result<Target, String>> {
        if let Some((t, kept)) = self.targets.borrow().get(krel) {
            let covers = match (kept, names) {
                (None, _) => true,
                (Some(k), Some(n)) => n.iter().all(|n| k.contains(*n)),
                (Some(_), None) => false,
            };
            if covers {
                return t.clone();
            }
        }
        let t = std::rc::Rc::new(
            read_target(self.root, krel, self.signatures, None).map_err(|e| e.to_string()),
        );
        self.targets
            .borrow_mut()
            .insert(krel.to_string(), (t.clone(), None));
        t
    }

    /// Before the decisions on these proposals (kernel, the module files it may be given),
    /// read side by side each proposed module once and each kernel's target (a symvers file
    /// to decompress and check: milliseconds), keeping of its symbols only those that the
    /// kernel's own `extra/` and `updates/` modules and its proposed modules name
    /// ([`crate::check::wanted`]). An empty proposal needs no target.
    pub fn prefetch(&self, proposals: &[(String, Vec<PathBuf>)]) {
        use rayon::prelude::*;
        let mut paths: Vec<&PathBuf> = proposals
            .iter()
            .flat_map(|(_, files)| files)
            .filter(|p| !self.proposed.borrow().contains_key(*p))
            .collect();
        paths.sort();
        paths.dedup();
        let root = self.root;
        let read: Vec<(PathBuf, Module)> = paths
            .into_par_iter()
            .filter_map(|p| {
                Module::read_in(root, p, Detail::Full)
                    .ok()
                    .map(|m| (p.clone(), m))
            })
            .collect();
        self.proposed.borrow_mut().extend(read);
        let asks: Vec<(String, rustc_hash::FxHashSet<String>)> = proposals
            .iter()
            .filter(|(krel, files)| {
                !files.is_empty() && !self.targets.borrow().contains_key(krel.as_str())
            })
            .map(|(krel, files)| {
                let own = self.own(krel);
                let proposed = self.proposed.borrow();
                let names = own
                    .iter()
                    .map(|(_, m)| m)
                    .chain(files.iter().filter_map(|p| proposed.get(p)))
                    .flat_map(crate::check::wanted)
                    .map(str::to_string)
                    .collect();
                (krel.clone(), names)
            })
            .collect();
        let signatures = self.signatures;
        let read: Vec<(
            String,
            Result<Target, String>,
            rustc_hash::FxHashSet<String>,
        )> = asks
            .into_par_iter()
            .map(|(k, names)| {
                let t = read_target(root, &k, signatures, Some(&names)).map_err(|e| e.to_string());
                (k, t, names)
            })
            .collect();
        let mut targets = self.targets.borrow_mut();
        for (k, t, names) in read {
            targets.insert(k, (std::rc::Rc::new(t), Some(names)));
        }
    }

    /// The modules of kernel `krel`'s own `extra/` and `updates/` (real files, not links),
    /// parsed; unreadable ones are left out.
    pub fn own(&self, krel: &str) -> OwnModules {
        if let Some(o) = self.own.borrow().get(krel) {
            return o.clone();
        }
        let mut files = Vec::new();
        for top in ["updates", "extra"] {
            files.extend(self.module_files(&self.layout.kernel(krel).join(top)));
        }
        use rayon::prelude::*;
        let parsed: Vec<(PathBuf, Module)> = files
            .into_par_iter()
            .filter_map(|p| {
                Module::read_in(self.root, &p, Detail::Full)
                    .ok()
                    .map(|m| (p, m))
            })
            .collect();
        let o = std::rc::Rc::new(parsed);
        self.own.borrow_mut().insert(krel.to_string(), o.clone());
        o
    }

    /// Decide which of the proposed links kernel `krel` can use: each target module is
    /// checked with the kernel's loader rules against the kernel's symbols, its own `extra/`
    /// and `updates/` modules and the other proposed modules, as one set: a module whose
    /// provider in the set is refused is refused too.
    pub fn decide(&self, krel: &str, proposal: &Links) -> Result<Decision, Error> {
        if proposal.is_empty() {
            // nothing to judge: the kernel's target is not even read
            return Ok(Decision::default());
        }
        // a kernel whose target is known to be unreadable, or that has no symvers file, is
        // answered before any module is read (weak-modules2 asks it module by module); the
        // files are looked for only while nothing is known of it
        let known: Option<Result<(), String>> = self
            .targets
            .borrow()
            .get(krel)
            .map(|(t, _)| t.as_ref().as_ref().map(|_| ()).map_err(|e| e.clone()));
        match known {
            Some(Err(e)) => return Err(Error::Usage(e)),
            Some(Ok(())) => {}
            None if self.symvers(krel).is_none() => {
                let t = self.target(krel, None);
                t.as_ref().as_ref().map_err(|e| Error::Usage(e.clone()))?;
            }
            None => {}
        }
        // with signatures, a module is read with the kernel's policy: the whole target first
        let whole = if self.signatures {
            let t = self.target(krel, None);
            t.as_ref().as_ref().map_err(|e| Error::Usage(e.clone()))?;
            Some(t)
        } else {
            None
        };
        let own = self.own(krel);
        let own_names: BTreeMap<String, PathBuf> = own
            .iter()
            .map(|(p, _)| (module_name(p), p.clone()))
            .collect();
        let mut decision = Decision::default();
        let mut set: Vec<(PathBuf, Module)> = own.iter().cloned().collect();
        let n_own = set.len();
        let mut candidates: Vec<(PathBuf, PathBuf)> = Vec::new();
        let mut to_read: Vec<(PathBuf, PathBuf)> = Vec::new();
        for (link, tgt) in proposal {
            if let Some(mine) = own_names.get(&module_name(tgt)) {
                decision
                    .shadowed
                    .push((link.clone(), tgt.clone(), mine.clone()));
                continue;
            }
            to_read.push((link.clone(), tgt.clone()));
        }
        use rayon::prelude::*;
        type Read = Result<(Module, Option<crate::sig::SigCheck>), Error>;
        let root = self.root;
        let policy = whole
            .as_ref()
            .and_then(|t| t.as_ref().as_ref().ok())
            .map(|t| &t.sig);
        let guard = self.proposed.borrow();
        let proposed: &BTreeMap<PathBuf, Module> = &guard;
        let read: Vec<(PathBuf, PathBuf, Read)> = to_read
            .into_par_iter()
            .map(|(l, t)| {
                let m = match (policy, proposed.get(&t)) {
                    (Some(policy), _) => crate::sig::read_module_in(
                        root,
                        &t,
                        Detail::Full,
                        policy,
                        crate::sig::Math::Here,
                    )
                    .map(|(m, sc)| (m, Some(sc))),
                    (None, Some(m)) => Ok((m.clone(), None)),
                    (None, None) => Module::read_in(root, &t, Detail::Full).map(|m| (m, None)),
                };
                (l, t, m)
            })
            .collect();
        drop(guard);
        // the kernel's own modules are judged from their trailers
        let mut sigs: Vec<Option<crate::sig::SigCheck>> = vec![None; n_own];
        for (link, tgt, m) in read {
            match m {
                Ok((m, sc)) => {
                    candidates.push((link, tgt.clone()));
                    set.push((tgt, m));
                    sigs.push(sc);
                }
                Err(e) => decision.refused.push(Refusal {
                    link,
                    target: tgt,
                    symbols: Vec::new(),
                    reasons: vec![e.to_string()],
                }),
            }
        }
        let target = match whole {
            Some(t) => t,
            None => {
                let names: Vec<&str> = set
                    .iter()
                    .flat_map(|(_, m)| crate::check::wanted(m))
                    .collect();
                self.target(krel, Some(&names))
            }
        };
        let target = target
            .as_ref()
            .as_ref()
            .map_err(|e| Error::Usage(e.clone()))?;
        let verdicts = check_set_with_sigs(&set, target, &sigs);
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
                    reasons: v.problems.iter().map(|p| p.describe(name)).collect(),
                });
            }
        }
        Ok(decision)
    }
}

/// The kernel `krel` as its loader sees it (see [`Kernels::target`]); of its symvers
/// symbols, with `names`, only those.
fn read_target(
    root: &Root,
    krel: &str,
    signatures: bool,
    names: Option<&rustc_hash::FxHashSet<String>>,
) -> Result<Target, Error> {
    if symvers::find_in(root, krel).is_none() {
        return Err(Error::Usage(format!(
            "kernel {krel}: no symvers file ({}) under {}",
            symvers::candidates(krel)
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            root.path().display()
        )));
    }
    let mut t = crate::kernel::source::installed_kept(
        root,
        krel,
        crate::kernel::source::Depth::Symvers,
        &|n| names.is_none_or(|k| k.contains(n)),
    )?;
    if signatures {
        t.sig = crate::sig::SigPolicy::installed(root, krel)?;
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_proposed_needs_no_target_and_targets_are_read_once() {
        let t = tempfile::tempdir().unwrap();
        let k = "6.1.0-1-amd64";
        std::fs::create_dir_all(t.path().join("lib/modules").join(k)).unwrap();
        std::fs::create_dir_all(t.path().join("boot")).unwrap();
        let root = Root::open(t.path()).unwrap();
        let ks = Kernels::new(&root, Layout::default());
        // no symvers at all: nothing to judge is no error, and reads nothing
        let d = ks.decide(k, &Links::new()).unwrap();
        assert!(d.accepted.is_empty() && d.refused.is_empty() && d.shadowed.is_empty());
        assert!(ks.targets.borrow().is_empty());
        // a proposal does need the kernel: without a symvers file it is an error naming it
        let one: Links = [(
            PathBuf::from("x/m.ko"),
            PathBuf::from("/lib/modules/6.1.0-2-amd64/extra/m.ko"),
        )]
        .into_iter()
        .collect();
        let e = ks.decide(k, &one).unwrap_err().to_string();
        assert!(e.contains("no symvers file"), "{e}");
        // answered before any module was read, and again from what is known
        assert!(ks.own.borrow().is_empty());
        let again = ks.decide(k, &one).unwrap_err().to_string();
        assert_eq!(again, e);
        assert!(ks.own.borrow().is_empty());
        // prefetched side by side: one entry per kernel, the same as read one by one
        std::fs::write(
            t.path().join("boot/symvers-6.1.0-1-amd64"),
            "0x12345678\tprintk\tvmlinux\tEXPORT_SYMBOL\t\n0x1\tother\tvmlinux\tEXPORT_SYMBOL\t\n",
        )
        .unwrap();
        let ks = Kernels::new(&root, Layout::default());
        let m = PathBuf::from("/lib/modules/6.1.0-2-amd64/extra/m.ko");
        ks.prefetch(&[
            (k.to_string(), vec![m.clone()]),
            ("6.1.0-9-amd64".to_string(), vec![m.clone()]),
            ("6.1.0-8-amd64".to_string(), vec![]),
        ]);
        {
            let targets = ks.targets.borrow();
            assert_eq!(targets.len(), 2, "a kernel given nothing is not read");
            // no module could be read: no symbol is named, none is kept
            let t1 = targets[k].0.as_ref().as_ref().unwrap();
            assert!(t1.abi.symbols.is_empty());
            assert!(targets["6.1.0-9-amd64"].0.is_err());
        }
        // a target kept for other names is read again, whole, and then answers any names
        let t = ks.target(k, Some(&["printk"]));
        let t = t.as_ref().as_ref().unwrap();
        assert_eq!(t.abi.get("printk").unwrap().crc, Some(0x12345678));
        assert_eq!(t.abi.symbols.len(), 2);
        assert!(ks.targets.borrow()[k].1.is_none());
        let again = ks.target(k, Some(&["other"]));
        assert_eq!(again.as_ref().as_ref().unwrap().abi.symbols.len(), 2);
        // a target read for the names asked serves them: not read again
        let ks = Kernels::new(&root, Layout::default());
        let printk: rustc_hash::FxHashSet<String> = ["printk".to_string()].into_iter().collect();
        let read = read_target(&root, k, false, Some(&printk)).map_err(|e| e.to_string());
        ks.targets
            .borrow_mut()
            .insert(k.to_string(), (std::rc::Rc::new(read), Some(printk)));
        let t = ks.target(k, Some(&["printk"]));
        assert_eq!(t.as_ref().as_ref().unwrap().abi.symbols.len(), 1);
        assert!(ks.targets.borrow()[k].1.is_some());
    }

    #[test]
    fn link_paths_follow_rhel_and_suse() {
        let rhel = Layout { suse: false };
        let m = Path::new("/lib/modules/6.1.0-55-cloud-amd64/extra/mlnx/mlx5_core.ko");
        assert_eq!(
            rhel.link_rel(m, "6.1.0-55-cloud-amd64").unwrap(),
            Path::new("mlnx/mlx5_core.ko")
        );
        let usr = Path::new("/usr/lib/modules/6.1.0-55-cloud-amd64/updates/x.ko.xz");
        assert_eq!(
            rhel.link_rel(usr, "6.1.0-55-cloud-amd64").unwrap(),
            Path::new("x.ko.xz")
        );
        // not in a module directory: its full path
        assert_eq!(
            rhel.link_rel(Path::new("/opt/acfs/oracleacfs.ko"), "k")
                .unwrap(),
            Path::new("opt/acfs/oracleacfs.ko")
        );
        let suse = Layout { suse: true };
        assert_eq!(
            suse.link_rel(Path::new("/usr/lib/modules/k/updates/a/b.ko"), "k")
                .unwrap(),
            Path::new("updates/a/b.ko")
        );
        // never a path that leaves weak-updates/
        assert_eq!(rhel.link_rel(Path::new("/../../x/a.ko"), "k"), None);
        assert_eq!(
            rhel.link_rel(Path::new("/lib/modules/k/extra/../../../a.ko"), "k"),
            None
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
