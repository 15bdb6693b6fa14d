//! The weak-modules operations: add or remove modules, add or remove a kernel; then the
//! indexes of each changed kernel are rewritten and initramfs images that hold changed
//! modules are named.

use super::{Decision, Layout, Links, decide, links, module_krel};
use crate::error::Error;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub dry_run: bool,
    pub verbose: bool,
    pub no_initramfs: bool,
    /// Run this program as `PROG -f IMAGE KVER` for each initramfs to rebuild.
    pub dracut: Option<PathBuf>,
}

/// What happened, for messages and tests.
#[derive(Debug, Default)]
pub struct Outcome {
    /// `--verbose` lines, in weak-modules' words.
    pub messages: Vec<String>,
    /// Kernels whose `weak-updates/` changed.
    pub changed: BTreeSet<String>,
    /// Per kernel: the file names of modules whose links changed (or that were added or
    /// removed for that kernel).
    pub changed_modules: BTreeMap<String, BTreeSet<String>>,
    /// Initramfs images that hold a changed module and need rebuilding, with the modules.
    pub initramfs: Vec<(PathBuf, Vec<String>)>,
    /// Images that could not be read (they are reported as needing a rebuild, to be safe).
    pub unreadable: Vec<(PathBuf, String)>,
    /// Per kernel: the decision made.
    pub decisions: BTreeMap<String, Decision>,
}

fn short(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Make module paths absolute against the current directory, as weak-modules does.
pub fn absolute(modules: &[PathBuf]) -> Vec<PathBuf> {
    let cwd = std::env::current_dir().unwrap_or_default();
    modules
        .iter()
        .map(|m| {
            if m.is_absolute() {
                m.clone()
            } else {
                cwd.join(m)
            }
        })
        .collect()
}

/// The common core of every operation on kernel `krel`: from the current links compute the
/// proposal with `change`, decide, and (unless dry-run) put the result in place. `force`:
/// keep what is compatible even if part of the proposal is refused (add-kernel,
/// remove-modules); otherwise a refusal restores the previous state (add-modules).
fn update_kernel(
    layout: &Layout,
    krel: &str,
    opts: &Options,
    force: bool,
    out: &mut Outcome,
    change: &dyn Fn(&Links) -> Links,
) -> Result<(), Error> {
    let weak = layout.weak_dir(krel);
    links::clean_stale(&weak);
    let (before, others) = links::read(&weak);
    let proposal = change(&before);
    let d = decide(layout, krel, &proposal)?;
    for r in &d.refused {
        let mkrel = module_krel(&r.target).unwrap_or_default();
        let syms: String = r.symbols.iter().map(|s| format!(" {s}")).collect();
        out.messages.push(format!(
            "Module {} from kernel {mkrel} is not compatible with kernel {krel} in symbols: {syms}",
            short(&r.link)
        ));
    }
    for (_, tgt, mine) in &d.shadowed {
        out.messages.push(format!(
            "found {} for {krel} while installing for {}, not linked: the kernel has its own {}",
            short(tgt),
            module_krel(tgt).unwrap_or_default(),
            mine.display()
        ));
    }
    let mut after = d.accepted.clone();
    if !d.refused.is_empty() && !force {
        out.messages
            .push(format!("Falling back weak-modules state for kernel {krel}"));
        after = before.clone();
    }
    for (link, tgt) in &after {
        if before.get(link) != Some(tgt) {
            out.messages.push(format!(
                "Module {} from kernel {} is compatible with kernel {krel}",
                short(tgt),
                module_krel(tgt).unwrap_or_default()
            ));
        }
    }
    for (link, tgt) in &before {
        if !after.contains_key(link) {
            out.messages.push(format!(
                "Removing compatible module {} from kernel {krel}",
                short(tgt)
            ));
        }
    }
    let names = out.changed_modules.entry(krel.to_string()).or_default();
    for (l, t) in after.iter().chain(before.iter()) {
        if before.get(l) != after.get(l) {
            names.insert(short(t));
        }
    }
    if after != before {
        out.changed.insert(krel.to_string());
        if !opts.dry_run {
            links::replace(&weak, &after, &others).map_err(|e| Error::io(&weak, e))?;
        }
    }
    out.decisions.insert(krel.to_string(), d);
    Ok(())
}

/// `--add-modules`: link each module into every other installed kernel that can load it.
pub fn add_modules(layout: &Layout, modules: &[PathBuf], opts: &Options) -> Result<Outcome, Error> {
    let mut out = Outcome::default();
    let modules = absolute(modules);
    let krels: Vec<(PathBuf, String)> = modules
        .iter()
        .map(|m| (m.clone(), module_krel(m).unwrap_or_default()))
        .collect();
    for krel in layout.installed_kernels() {
        let own_dir = layout.kernel_dir(&krel);
        update_kernel(layout, &krel, opts, false, &mut out, &|before| {
            let mut p = before.clone();
            for (m, mkrel) in &krels {
                if m.starts_with(&own_dir) || mkrel == &krel {
                    continue; // the module's own kernel
                }
                p.insert(layout.link_rel(m, mkrel), m.clone());
            }
            p
        })?;
    }
    finish(layout, opts, &mut out, &modules)?;
    Ok(out)
}

/// `--remove-modules`: remove the links to these modules (when the module file itself is
/// gone: in an update, the new file is already in place and its links stay).
pub fn remove_modules(
    layout: &Layout,
    modules: &[PathBuf],
    opts: &Options,
) -> Result<Outcome, Error> {
    let mut out = Outcome::default();
    let modules = absolute(modules);
    for krel in layout.installed_kernels() {
        update_kernel(layout, &krel, opts, true, &mut out, &|before| {
            before
                .iter()
                .filter(|(_, tgt)| !modules.contains(tgt) || tgt.is_file())
                .map(|(l, t)| (l.clone(), t.clone()))
                .collect()
        })?;
    }
    finish(layout, opts, &mut out, &modules)?;
    Ok(out)
}

/// `--add-kernel`: link into `krel` every compatible module of the other kernels' `extra/`;
/// for a link path offered by several kernels, the newest kernel's compatible copy.
pub fn add_kernel(layout: &Layout, krel: &str, opts: &Options) -> Result<Outcome, Error> {
    if layout.symvers(krel).is_none() {
        return Err(Error::Usage(format!(
            "Symvers dump file {} not found",
            layout
                .basedir
                .join(format!("boot/symvers-{krel}.gz"))
                .display()
        )));
    }
    let mut out = Outcome::default();
    // every candidate per link path, newest kernel first
    let mut offers: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
    for k in layout.kernels_with_extra().iter().rev() {
        if k == krel {
            continue;
        }
        for m in crate::kernel::tree::module_files(&layout.kernel_dir(k).join("extra")) {
            offers.entry(layout.link_rel(&m, k)).or_default().push(m);
        }
    }
    // try the newest copies; where one is refused, offer the next older one, and so on
    let mut choice: BTreeMap<PathBuf, usize> = offers.keys().map(|k| (k.clone(), 0)).collect();
    loop {
        let proposal: Links = choice
            .iter()
            .filter_map(|(l, &i)| offers[l].get(i).map(|m| (l.clone(), m.clone())))
            .collect();
        let trial = decide(layout, krel, &proposal)?;
        let mut again = false;
        for r in &trial.refused {
            if let Some(i) = choice.get_mut(&r.link) {
                if *i + 1 < offers[&r.link].len() {
                    *i += 1;
                    again = true;
                }
            }
        }
        if !again {
            update_kernel(layout, krel, opts, true, &mut out, &|before| {
                // links of modules no longer offered are dropped; the proposal replaces them
                let mut p: Links = before
                    .iter()
                    .filter(|(_, t)| t.is_file() && !proposal.values().any(|v| v == *t))
                    .filter(|(l, _)| !proposal.contains_key(*l))
                    .map(|(l, t)| (l.clone(), t.clone()))
                    .collect();
                p.extend(proposal.clone());
                p
            })?;
            break;
        }
    }
    finish(layout, opts, &mut out, &[])?;
    Ok(out)
}

/// `--remove-kernel`: remove every link of `krel`'s `weak-updates/` (nothing else), and
/// rewrite its indexes if the kernel is still there.
pub fn remove_kernel(layout: &Layout, krel: &str, opts: &Options) -> Result<Outcome, Error> {
    let mut out = Outcome::default();
    let weak = layout.weak_dir(krel);
    links::clean_stale(&weak);
    let (before, others) = links::read(&weak);
    for tgt in before.values() {
        out.messages.push(format!(
            "Removing compatible module {} from kernel {krel}",
            short(tgt)
        ));
        out.changed_modules
            .entry(krel.to_string())
            .or_default()
            .insert(short(tgt));
    }
    if !before.is_empty() {
        out.changed.insert(krel.to_string());
        if !opts.dry_run {
            links::replace(&weak, &Links::new(), &others).map_err(|e| Error::io(&weak, e))?;
        }
    }
    finish(layout, opts, &mut out, &[])?;
    Ok(out)
}

/// After the links: each changed kernel's indexes, and the initramfs images to rebuild.
fn finish(
    layout: &Layout,
    opts: &Options,
    out: &mut Outcome,
    modules: &[PathBuf],
) -> Result<(), Error> {
    // the modules' own kernels: their initramfs may hold them
    for m in modules {
        if let Some(k) = module_krel(m) {
            if layout.kernel_dir(&k).is_dir() {
                out.changed_modules.entry(k).or_default().insert(short(m));
            }
        }
    }
    if opts.dry_run {
        return Ok(());
    }
    for krel in &out.changed {
        if !layout.kernel_dir(krel).is_dir() {
            continue;
        }
        let map = layout.basedir.join(format!("boot/System.map-{krel}"));
        let dopts = crate::depmod::Options {
            root: Some(layout.basedir.clone()),
            kver: krel.clone(),
            system_map: map.is_file().then_some(map),
            ..crate::depmod::Options::default()
        };
        let mut log = |m: &crate::depmod::graph::Message| {
            if opts.verbose {
                eprintln!("{m}");
            }
        };
        links::crash_point();
        let root = crate::root::Root::open(&layout.basedir)?;
        crate::depmod::run_locked(&root, &dopts, &mut log)
            .map_err(|e| Error::Usage(format!("depmod for {krel}: {e}")))?;
    }
    if opts.no_initramfs {
        return Ok(());
    }
    for (krel, names) in &out.changed_modules {
        if names.is_empty() {
            continue;
        }
        let img = layout.basedir.join(format!("boot/initramfs-{krel}.img"));
        let Ok(data) = std::fs::read(&img) else {
            continue; // no image: nothing to rebuild
        };
        let held: Vec<String> = match super::initramfs::list(&data) {
            Ok(files) => files
                .iter()
                .filter_map(|f| {
                    let base = f.rsplit('/').next().unwrap_or(f);
                    let stem = crate::module::strip_module_ext(base)?;
                    names
                        .iter()
                        .any(|n| crate::module::strip_module_ext(n) == Some(stem))
                        .then(|| f.clone())
                })
                .collect(),
            Err(e) => {
                out.unreadable.push((img.clone(), e));
                names.iter().cloned().collect()
            }
        };
        if held.is_empty() {
            continue;
        }
        out.initramfs.push((img.clone(), held));
        if let Some(prog) = opts.dracut.as_ref().filter(|p| p.is_file()) {
            let st = std::process::Command::new(prog)
                .arg("-f")
                .arg(&img)
                .arg(krel)
                .status()
                .map_err(|e| Error::io(prog, e))?;
            if !st.success() {
                return Err(Error::Usage(format!(
                    "{} -f {} {krel} failed ({st})",
                    prog.display(),
                    img.display()
                )));
            }
        }
    }
    Ok(())
}

/// The kernel directory a module file sits in (`lib/modules/<K>/...`).
fn module_krel_path(layout: &Layout, m: &Path) -> Option<String> {
    let rest = m.strip_prefix(layout.modules()).ok()?;
    rest.components()
        .next()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
}

/// One line of `kabi weak status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Entry {
    /// The module file (a module of another kernel's `extra/`, or a link's target).
    pub module: PathBuf,
    /// The kernel it was built for.
    pub built_for: String,
    /// Its path in this kernel's `weak-updates/`.
    pub link: PathBuf,
    /// `linked`, `not-linked`, `dangling` (target missing), `stale` (linked but refused),
    /// `shadowed` (the kernel has its own copy).
    pub state: String,
    pub compatible: bool,
    /// Why not, in the kernel's words.
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct KernelStatus {
    pub kernel: String,
    pub symvers: Option<PathBuf>,
    pub entries: Vec<Entry>,
}

/// For every kernel: every module of the other kernels' `extra/` and every link of its own
/// `weak-updates/`: linked or not, compatible or not and why, dangling links, links into
/// removed kernels. Changes nothing.
pub fn status(layout: &Layout) -> Result<Vec<KernelStatus>, Error> {
    let mut all: Vec<String> = std::fs::read_dir(layout.modules())
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().is_dir())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|k| !k.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    all.sort_by(|a, b| super::version_cmp(a, b));
    let extras: Vec<(String, PathBuf)> = layout
        .kernels_with_extra()
        .into_iter()
        .flat_map(|k| {
            crate::kernel::tree::module_files(&layout.kernel_dir(&k).join("extra"))
                .into_iter()
                .map(move |m| (k.clone(), m))
        })
        .collect();
    let mut out = Vec::new();
    for krel in all {
        let symvers = layout.symvers(&krel);
        let (links, _) = links::read(&layout.weak_dir(&krel));
        let mut entries = Vec::new();
        // links whose target is gone
        let mut live = Links::new();
        for (l, t) in &links {
            if t.is_file() {
                live.insert(l.clone(), t.clone());
            } else {
                let built_for = module_krel(t).unwrap_or_default();
                let gone = !layout.kernel_dir(&built_for).is_dir();
                entries.push(Entry {
                    module: t.clone(),
                    built_for: built_for.clone(),
                    link: l.clone(),
                    state: "dangling".into(),
                    compatible: false,
                    reasons: vec![if gone {
                        format!(
                            "the link points into kernel {built_for}, which is no longer installed"
                        )
                    } else {
                        "the link's target does not exist".into()
                    }],
                });
            }
        }
        // what could be linked, as groups: each other kernel's extra/ modules together, then
        // the linked modules that are in no extra/ of another kernel
        let mut groups: Vec<Links> = Vec::new();
        let mut offered: BTreeSet<PathBuf> = BTreeSet::new();
        for (k, m) in &extras {
            if *k == krel {
                continue;
            }
            let last_k = groups
                .last()
                .and_then(|g| g.values().next())
                .and_then(|t| module_krel_path(layout, t));
            if last_k.as_deref() != Some(k.as_str()) {
                groups.push(Links::new());
            }
            groups
                .last_mut()
                .unwrap()
                .insert(layout.link_rel(m, k), m.clone());
            offered.insert(m.clone());
        }
        let rest: Links = live
            .iter()
            .filter(|(_, t)| !offered.contains(*t))
            .map(|(l, t)| (l.clone(), t.clone()))
            .collect();
        if !rest.is_empty() {
            groups.push(rest);
        }
        for proposal in &groups {
            let decision = if symvers.is_some() {
                Some(decide(layout, &krel, proposal)?)
            } else {
                None
            };
            for (l, t) in proposal {
                let linked = live.get(l) == Some(t);
                let built_for = module_krel(t).unwrap_or_default();
                let (state, compatible, reasons) = match &decision {
                    None => (
                        if linked { "linked" } else { "not-linked" },
                        false,
                        vec!["no symvers file for this kernel: compatibility unknown".into()],
                    ),
                    Some(d) => {
                        if d.accepted.get(l) == Some(t) {
                            (if linked { "linked" } else { "not-linked" }, true, vec![])
                        } else if let Some(r) = d.refused.iter().find(|r| &r.link == l) {
                            (
                                if linked { "stale" } else { "not-linked" },
                                false,
                                r.reasons.clone(),
                            )
                        } else if let Some((_, _, mine)) = d.shadowed.iter().find(|s| &s.0 == l) {
                            (
                                "shadowed",
                                true,
                                vec![format!("the kernel has its own {}", mine.display())],
                            )
                        } else {
                            ("not-linked", false, vec![])
                        }
                    }
                };
                entries.push(Entry {
                    module: t.clone(),
                    built_for,
                    link: l.clone(),
                    state: state.into(),
                    compatible,
                    reasons,
                });
            }
        }
        out.push(KernelStatus {
            kernel: krel,
            symvers,
            entries,
        });
    }
    Ok(out)
}
