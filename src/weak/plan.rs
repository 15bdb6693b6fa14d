//! The weak-modules operations as plans: from one snapshot of a root, which links each kernel
//! is to have, what to say about it in weak-modules' words, and which initramfs images hold
//! a changed module. Nothing here writes.

use super::state::{Other, WeakState};
use super::{Decision, Kernels, Links};
use crate::error::Error;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every kernel's weak-updates state, read once.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub states: BTreeMap<String, WeakState>,
}

impl Snapshot {
    /// Read every kernel of the root. Stops at the first kernel whose `weak-updates/` (or a
    /// staging tree) is not a directory: nothing may be planned on such a root.
    pub fn read(k: &Kernels) -> Result<Snapshot, Error> {
        let mut states = BTreeMap::new();
        for krel in k.all() {
            let kdir = k.root.open_dir(k.layout.kernel(&krel))?;
            states.insert(krel.clone(), super::state::read(k.root, &kdir, &krel)?);
        }
        Ok(Snapshot { states })
    }

    fn state(&self, krel: &str) -> WeakState {
        self.states.get(krel).cloned().unwrap_or_else(|| WeakState {
            krel: krel.to_string(),
            ..WeakState::default()
        })
    }
}

/// What one kernel is to become.
#[derive(Debug, Clone, Default)]
pub struct KernelPlan {
    pub krel: String,
    pub before: Links,
    pub after: Links,
    pub decision: Decision,
    /// Proposed links that cannot be made where another entry of `weak-updates/` is kept:
    /// (link, target, why).
    pub conflicts: Vec<(PathBuf, PathBuf, String)>,
    /// Some links name the root by its outside path: the tree is rewritten even if the set
    /// of links stays the same.
    pub rewrite: bool,
    /// The kernel's indexes are not rewritten after its links change, and kabi's files that
    /// no package owns ([`super::txn::UNOWNED`]) are removed: no link is left and the kernel
    /// is not installed and indexed ([`super::txn::keeps_indexes`]).
    pub leaves_indexes: bool,
    /// With [`Self::leaves_indexes`]: kabi's unowned files ([`super::txn::UNOWNED`]) are
    /// there to remove, a change even when the links stay as they are.
    pub unowned: bool,
}

impl KernelPlan {
    /// What `--dry-run` says of this kernel's links: `would link ...` for each link made or
    /// retargeted, then `would remove ...` for each link taken away (RHEL and SUSE mode alike).
    pub fn dry_run_lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (l, t) in &self.after {
            if self.before.get(l) != Some(t) {
                out.push(format!(
                    "would link weak-updates/{} -> {} in kernel {}",
                    l.display(),
                    t.display(),
                    self.krel
                ));
            }
        }
        for l in self.before.keys() {
            if !self.after.contains_key(l) {
                out.push(format!(
                    "would remove weak-updates/{} in kernel {}",
                    l.display(),
                    self.krel
                ));
            }
        }
        out
    }

    pub fn changes(&self) -> bool {
        self.before != self.after
            || (self.rewrite && !self.after.is_empty())
            || (self.leaves_indexes && self.unowned)
    }
}

/// An initramfs image that holds changed modules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub krel: String,
    /// Inside the root.
    pub path: PathBuf,
    /// The module files in it that changed (paths inside the image).
    pub held: Vec<String>,
    /// Set when the image could not be read: it is named for a rebuild to be safe.
    pub unreadable: Option<String>,
}

/// A whole run's plan.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub kernels: Vec<KernelPlan>,
    /// weak-modules' `--verbose` lines, in order.
    pub messages: Vec<String>,
    /// Per kernel: the file names of modules whose links changed, or that were added or
    /// removed in that kernel's own tree.
    pub changed_modules: BTreeMap<String, BTreeSet<String>>,
}

impl Plan {
    /// Kernels whose links change.
    pub fn changed(&self) -> impl Iterator<Item = &KernelPlan> {
        self.kernels.iter().filter(|k| k.changes())
    }
}

fn short(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Does the link path collide with an entry kept in `weak-updates/` (the entry itself, or a
/// non-directory where the link needs a directory)?
pub fn conflict(others: &[Other], link: &Path) -> Option<String> {
    others.iter().find_map(|o| {
        let p = o.path();
        (link == p || link.starts_with(p)).then(|| match o {
            Other::Link(_, t) => format!(
                "weak-updates/{} is a symbolic link (to {}) that kabi keeps and does not go through; remove it to let kabi link this module",
                p.display(),
                t.display()
            ),
            Other::Entry(_) => format!(
                "weak-updates/{} is a file that kabi keeps; remove it to let kabi link this module",
                p.display()
            ),
        })
    })
}

/// Read side by side the proposed modules and the targets of the kernels that will have
/// links to judge ([`Kernels::prefetch`]).
fn prefetch(
    k: &Kernels,
    snap: &Snapshot,
    kernels: &[String],
    propose: &dyn Fn(&str, &Links) -> Links,
) {
    let busy: Vec<(String, Vec<PathBuf>)> = kernels
        .iter()
        .map(|krel| {
            let p = propose(krel, &snap.state(krel).links);
            (krel.clone(), p.into_values().collect())
        })
        .collect();
    k.prefetch(&busy);
}

/// The common core of every operation on one kernel: from its current links compute the
/// proposal with `change`, decide, and say what changes. `force`: keep what is compatible
/// even if part of the proposal is refused (add-kernel, remove-modules); otherwise a refusal
/// keeps the previous state (add-modules).
fn update_kernel(
    k: &Kernels,
    st: &WeakState,
    force: bool,
    plan: &mut Plan,
    change: &dyn Fn(&Links) -> Links,
) -> Result<(), Error> {
    let krel = st.krel.as_str();
    let before = st.links.clone();
    let mut proposal = change(&before);
    let mut conflicts = Vec::new();
    proposal.retain(|l, t| match conflict(&st.others, l) {
        Some(why) => {
            conflicts.push((l.clone(), t.clone(), why));
            false
        }
        None => true,
    });
    let d = k.decide(krel, &proposal)?;
    for (l, _, why) in &conflicts {
        plan.messages.push(format!(
            "Module {} not linked into kernel {krel}: {why}",
            short(l)
        ));
    }
    for r in &d.refused {
        let mkrel = k.module_krel(&r.target).unwrap_or_default();
        let syms: String = r.symbols.iter().map(|s| format!(" {s}")).collect();
        plan.messages.push(format!(
            "Module {} from kernel {mkrel} is not compatible with kernel {krel} in symbols: {syms}",
            short(&r.link)
        ));
    }
    for (_, tgt, mine) in &d.shadowed {
        plan.messages.push(format!(
            "found {} for {krel} while installing for {}, not linked: the kernel has its own {}",
            short(tgt),
            k.module_krel(tgt).unwrap_or_default(),
            mine.display()
        ));
    }
    let mut after = d.accepted.clone();
    if !d.refused.is_empty() && !force {
        plan.messages
            .push(format!("Falling back weak-modules state for kernel {krel}"));
        after = before.clone();
    }
    for (link, tgt) in &after {
        if before.get(link) != Some(tgt) {
            plan.messages.push(format!(
                "Module {} from kernel {} is compatible with kernel {krel}",
                short(tgt),
                k.module_krel(tgt).unwrap_or_default()
            ));
        }
    }
    for (link, tgt) in &before {
        if !after.contains_key(link) {
            plan.messages.push(format!(
                "Removing compatible module {} from kernel {krel}",
                short(tgt)
            ));
        }
    }
    let names = plan.changed_modules.entry(krel.to_string()).or_default();
    for (l, t) in after.iter().chain(before.iter()) {
        if before.get(l) != after.get(l) {
            names.insert(short(t));
        }
    }
    plan.kernels.push(KernelPlan {
        krel: krel.to_string(),
        rewrite: !st.outside_targets.is_empty(),
        leaves_indexes: !super::txn::keeps_indexes(after.is_empty(), st.indexed),
        unowned: st.unowned,
        before,
        after,
        decision: d,
        conflicts,
    });
    Ok(())
}

/// The modules' own kernels: their initramfs images may hold them.
fn own_kernels(k: &Kernels, plan: &mut Plan, modules: &[PathBuf]) {
    for m in modules {
        if let Some(krel) = k.module_krel(m)
            && k.root.is_dir(k.layout.kernel(&krel))
        {
            plan.changed_modules
                .entry(krel)
                .or_default()
                .insert(short(m));
        }
    }
}

/// `--add-modules`: link each module (a path inside the root) into every other installed
/// kernel that can load it.
pub fn add_modules(k: &Kernels, snap: &Snapshot, modules: &[PathBuf]) -> Result<Plan, Error> {
    let mut plan = Plan::default();
    let mut offers: Vec<(PathBuf, String, PathBuf)> = Vec::new();
    for m in modules {
        if !k.root.is_file(m) {
            return Err(Error::io(
                k.root.display(m),
                std::io::Error::other("no such module file (a regular file inside the root)"),
            ));
        }
        let mkrel = k.module_krel(m).unwrap_or_default();
        let link = k.layout.link_rel(m, &mkrel).ok_or_else(|| {
            Error::Usage(format!(
                "{}: no weak-updates path can be formed for it",
                m.display()
            ))
        })?;
        offers.push((m.clone(), mkrel, link));
    }
    let propose = |krel: &str, before: &Links| {
        let own_dir = Path::new("/").join(k.layout.kernel(krel));
        let mut p = before.clone();
        for (m, mkrel, link) in &offers {
            if m.starts_with(&own_dir) || *mkrel == krel {
                continue; // the module's own kernel
            }
            p.insert(link.clone(), m.clone());
        }
        p
    };
    let kernels = k.installed();
    prefetch(k, snap, &kernels, &propose);
    for krel in &kernels {
        let st = snap.state(krel);
        update_kernel(k, &st, false, &mut plan, &|before| propose(krel, before))?;
    }
    own_kernels(k, &mut plan, modules);
    Ok(plan)
}

/// `--remove-modules`: remove the links to these modules (when the module file itself is
/// gone: in an update, the new file is already in place and its links stay).
pub fn remove_modules(k: &Kernels, snap: &Snapshot, modules: &[PathBuf]) -> Result<Plan, Error> {
    let mut plan = Plan::default();
    let propose = |_: &str, before: &Links| -> Links {
        before
            .iter()
            .filter(|(_, tgt)| !modules.contains(tgt) || k.root.is_file(tgt))
            .map(|(l, t)| (l.clone(), t.clone()))
            .collect()
    };
    let kernels = k.installed();
    prefetch(k, snap, &kernels, &propose);
    for krel in &kernels {
        let st = snap.state(krel);
        update_kernel(k, &st, true, &mut plan, &|before| propose(krel, before))?;
    }
    own_kernels(k, &mut plan, modules);
    Ok(plan)
}

/// `--add-kernel`: link into `krel` every compatible module of the other kernels' `extra/`;
/// for a link path offered by several kernels, the newest kernel's compatible copy.
pub fn add_kernel(k: &Kernels, snap: &Snapshot, krel: &str) -> Result<Plan, Error> {
    if k.symvers(krel).is_none() {
        return Err(Error::Usage(format!(
            "Symvers dump file {} not found",
            k.root.display(format!("boot/symvers-{krel}.gz")).display()
        )));
    }
    let mut plan = Plan::default();
    // every candidate per link path, newest kernel first
    let mut offers: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
    for other in k.with_extra().iter().rev() {
        if other == krel {
            continue;
        }
        for m in k.module_files(&k.layout.kernel(other).join("extra")) {
            if let Some(link) = k.layout.link_rel(&m, other) {
                offers.entry(link).or_default().push(m);
            }
        }
    }
    let st = snap.state(krel);
    // every module the trials below may judge, read once, and the kernel's symbols they name
    let every: Vec<PathBuf> = offers
        .values()
        .flatten()
        .chain(st.links.values())
        .cloned()
        .collect();
    k.prefetch(&[(krel.to_string(), every)]);
    // try the newest copies; where one is refused, offer the next older one, and so on
    let mut choice: BTreeMap<PathBuf, usize> = offers.keys().map(|l| (l.clone(), 0)).collect();
    let proposal = loop {
        let proposal: Links = choice
            .iter()
            .filter_map(|(l, &i)| offers[l].get(i).map(|m| (l.clone(), m.clone())))
            .collect();
        let trial = k.decide(krel, &proposal)?;
        let mut again = false;
        for r in &trial.refused {
            if let Some(i) = choice.get_mut(&r.link)
                && *i + 1 < offers[&r.link].len()
            {
                *i += 1;
                again = true;
            }
        }
        if !again {
            break proposal;
        }
    };
    update_kernel(k, &st, true, &mut plan, &|before| {
        // links of modules no longer offered are dropped; the proposal replaces them
        let mut p: Links = before
            .iter()
            .filter(|(_, t)| k.root.is_file(t) && !proposal.values().any(|v| v == *t))
            .filter(|(l, _)| !proposal.contains_key(*l))
            .map(|(l, t)| (l.clone(), t.clone()))
            .collect();
        p.extend(proposal.clone());
        p
    })?;
    Ok(plan)
}

/// `--remove-kernel`: remove every link of `krel`'s `weak-updates/` (nothing else). The
/// indexes follow while the kernel is installed and indexed; of a kernel being removed they
/// are left alone ([`super::txn::keeps_indexes`]).
pub fn remove_kernel(snap: &Snapshot, krel: &str) -> Plan {
    let mut plan = Plan::default();
    let st = snap.state(krel);
    for tgt in st.links.values() {
        plan.messages.push(format!(
            "Removing compatible module {} from kernel {krel}",
            short(tgt)
        ));
        plan.changed_modules
            .entry(krel.to_string())
            .or_default()
            .insert(short(tgt));
    }
    plan.kernels.push(KernelPlan {
        krel: krel.to_string(),
        before: st.links.clone(),
        after: Links::new(),
        rewrite: false,
        leaves_indexes: !super::txn::keeps_indexes(true, st.indexed),
        unowned: st.unowned,
        ..KernelPlan::default()
    });
    plan
}
