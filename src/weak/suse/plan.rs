//! The SUSE operations as plans: from one snapshot of a root and the installed packages, the
//! links each kernel is to have, the kernels whose indexes are rewritten, the initramfs work,
//! and what `weak-modules2` would say, in its order and words. Nothing here writes.
//!
//! Each kernel's `weak-updates/` is simulated as the script changes it, step by step (the
//! script works on the real tree and on temporary copies; here a [`Links`] value per kernel),
//! and every compatibility question is answered by [`Kernels::decide`] on the kernel's whole
//! link set as a group: kabi's loader check where the script runs `depmod -ae -E symvers` on
//! a copy of the tree.

use super::initrd::{self, Changed};
use super::{Env, Level, Message, Op};
use crate::rpmdb::Package;
use crate::rpmdb::kmp::{self, FoundKmps, Kmp, KmpError};
use crate::weak::plan::{KernelPlan, Snapshot};
use crate::weak::state::Other;
use crate::weak::{Kernels, Links, Refusal};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A whole run's plan.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Every kernel whose links were looked at: what it has and what it is to have.
    pub kernels: Vec<KernelPlan>,
    /// Kernels whose indexes are rewritten (those whose links change are rewritten by their
    /// transaction), in the order the script runs depmod.
    pub depmod: Vec<String>,
    /// Initramfs work, in order.
    pub initrd: Vec<initrd::Step>,
    /// What the script would print, in order.
    pub messages: Vec<Message>,
    /// The script would exit with 1 (a KMP it refuses, no usable module list...).
    pub failed: bool,
    /// `--remove-kernel` of a kernel whose package is gone: its `weak-updates/` is taken
    /// apart (links only) and its module directory removed if that leaves it empty.
    pub dismantle: Option<String>,
}

impl Plan {
    /// Kernels whose links change.
    pub fn changed(&self) -> impl Iterator<Item = &KernelPlan> {
        self.kernels.iter().filter(|k| k.changes())
    }
}

/// Why a KMP cannot be linked into a kernel.
#[derive(Debug, Clone)]
enum Why {
    /// Module file names already present (`basenames_are_unique`): (name, where).
    Overlap(Vec<(String, String)>),
    /// A link path blocked by an entry of `weak-updates/` kabi keeps.
    Blocked(String),
    /// kabi's loader check refuses these modules (the reasons in the kernel's words).
    Refused(Vec<String>),
    /// The kernel's ABI cannot be read.
    NoAbi(String),
}

impl Why {
    fn lines(&self) -> Vec<String> {
        match self {
            Why::Overlap(v) => v
                .iter()
                .map(|(n, w)| format!("{n}: a file of that name is already in {w}"))
                .collect(),
            Why::Blocked(s) | Why::NoAbi(s) => vec![s.clone()],
            Why::Refused(r) => r.clone(),
        }
    }
}

/// One kernel as the plan changes it.
#[derive(Debug, Clone)]
struct KState {
    before: Links,
    links: Links,
    others: Vec<Other>,
    rewrite: bool,
    /// [`crate::weak::state::WeakState::indexed`].
    indexed: bool,
    /// File names below `updates/` and `extra/` (not directories) → where (for messages).
    own_names: BTreeMap<String, String>,
    /// The refusals of `links` as they are (cached; cleared when `links` changes).
    refused: Option<Result<Vec<Refusal>, String>>,
}

struct Planner<'a, 'r> {
    k: &'a Kernels<'r>,
    snap: &'a Snapshot,
    env: &'a Env,
    plan: Plan,
    states: BTreeMap<String, KState>,
    /// Kernels warned about a missing ABI.
    no_abi: BTreeSet<String>,
}

/// The most entries read below one kernel's `updates/` and `extra/`.
const MAX_OWN_ENTRIES: usize = 1 << 20;
/// The deepest directory level read there.
const MAX_OWN_DEPTH: usize = 64;

/// The plan of `op` on the root of `k`, from the snapshot `snap` and the installed packages.
pub fn plan(k: &Kernels, snap: &Snapshot, env: &Env, op: &Op, packages: &[Package]) -> Plan {
    let mut p = Planner {
        k,
        snap,
        env,
        plan: Plan::default(),
        states: BTreeMap::new(),
        no_abi: BTreeSet::new(),
    };
    match op {
        Op::AddKmp { nvr, list } => p.add_kmp(nvr, list.as_deref(), packages),
        Op::RemoveKmp { nvr, list } => p.remove_kmp(nvr, list, packages),
        Op::AddKernel(krel) => p.kernel_changed(krel, &Changed::Kernel, packages),
        Op::AddKernelModules { krel, list } => {
            let changed = if env.initrd_in_posttrans {
                Changed::Modules(
                    list.lines()
                        .filter(|l| crate::module::strip_module_ext(l.trim_end()).is_some())
                        .filter_map(|l| l.trim_end().rsplit('/').next())
                        .map(str::to_string)
                        .collect(),
                )
            } else {
                // the kernel's base package may have built the initrd without this one
                Changed::Kernel
            };
            p.kernel_changed(krel, &changed, packages)
        }
        Op::RemoveKernelModules(krel) => {
            p.kernel_changed(krel, &Changed::Modules(BTreeSet::new()), packages)
        }
        Op::RemoveKernel(krel) => p.remove_kernel(krel),
    }
    p.finish()
}

/// `(KREL, path below lib/modules/KREL)` of a module path inside the root, as a package
/// lists it or a link names it (`/usr/lib/modules/...` and `/lib/modules/...` alike).
fn key(p: &Path) -> Option<(String, PathBuf)> {
    kmp::split_module_path(p).map(|(k, r)| (k.to_string(), r.to_path_buf()))
}

impl Planner<'_, '_> {
    fn say(&mut self, level: Level, text: impl Into<String>) {
        self.plan.messages.push(Message {
            level,
            text: text.into(),
        });
    }

    /// `/usr/lib/modules/KREL` (or `/lib/modules/KREL`), as the script names it.
    fn shown(&self, krel: &str) -> String {
        format!("/{}", self.k.layout.kernel(krel).display())
    }

    /// Is the kernel installed: a System.map (what the script asks for) or a symvers file?
    fn installed(&self, krel: &str) -> bool {
        let root = self.k.root;
        root.exists(self.k.layout.kernel(krel).join("System.map"))
            || root.exists(format!("boot/System.map-{krel}"))
            || self.k.symvers(krel).is_some()
    }

    /// The installed kernels of a flavour, in version order.
    fn kernels_of(&self, flavor: &str) -> Vec<String> {
        self.k
            .all()
            .into_iter()
            .filter(|krel| kmp::kernel_has_flavor(krel, flavor) && self.installed(krel))
            .collect()
    }

    fn st(&mut self, krel: &str) -> &mut KState {
        if !self.states.contains_key(krel) {
            let ws = self.snap.states.get(krel).cloned().unwrap_or_default();
            let own_names = self.own_names(krel);
            self.states.insert(
                krel.to_string(),
                KState {
                    before: ws.links.clone(),
                    links: ws.links,
                    others: ws.others,
                    rewrite: !ws.outside_targets.is_empty(),
                    indexed: ws.indexed,
                    own_names,
                    refused: None,
                },
            );
        }
        self.states.get_mut(krel).expect("inserted above")
    }

    /// The names of the non-directories below the kernel's `updates/` and `extra/` (`find
    /// DIR -not -type d -printf '%f\n'`), links not followed below the top.
    fn own_names(&self, krel: &str) -> BTreeMap<String, String> {
        fn walk(
            d: &crate::root::Dir,
            rel: &Path,
            depth: usize,
            out: &mut BTreeMap<String, String>,
            n: &mut usize,
        ) {
            let Ok(entries) = d.entries() else { return };
            for e in entries {
                *n += 1;
                if *n > MAX_OWN_ENTRIES {
                    return;
                }
                let r = rel.join(&e.name);
                if e.kind == crate::root::Kind::Dir {
                    if depth < MAX_OWN_DEPTH
                        && let Ok(sub) = d.sub(&e.name)
                    {
                        walk(&sub, &r, depth + 1, out, n);
                    }
                } else if let Some(name) = e.name.to_str() {
                    out.entry(name.to_string())
                        .or_insert_with(|| r.display().to_string());
                }
            }
        }
        let mut out = BTreeMap::new();
        let mut n = 0;
        for top in ["updates", "extra"] {
            if let Ok(d) = self.k.root.open_dir(self.k.layout.kernel(krel).join(top)) {
                walk(&d, Path::new(top), 0, &mut out, &mut n);
            }
        }
        out
    }

    /// Where the module `m` of `kmp` is, inside the root (a link's target).
    fn target(&self, kmp: &Kmp, m: &kmp::KmpModule) -> PathBuf {
        Path::new("/")
            .join(self.k.layout.kernel(&kmp.krel))
            .join(&m.rel)
    }

    /// `kmp_is_present`: the KMP's own kernel, or every module linked where it belongs.
    fn present(&mut self, kmp: &Kmp, krel: &str) -> bool {
        if krel == kmp.krel {
            return true;
        }
        let st = self.st(krel);
        kmp.modules.iter().all(|m| {
            st.links.get(&m.rel).and_then(|t| key(t)) == Some((kmp.krel.clone(), m.rel.clone()))
        })
    }

    /// `previous_version_of_kmp`: the older version of the same KMP whose modules the links
    /// of `new`'s modules point to in `krel`, if that is all they point to. `known`: every KMP
    /// whose module list is known; `order`: the installed ones, newest first.
    fn previous(&mut self, new: &Kmp, krel: &str, known: &[Kmp], order: &[Kmp]) -> Option<Kmp> {
        let root = self.k.root;
        let st = self.st(krel);
        let mut old: Option<&Kmp> = None;
        for m in &new.modules {
            match st.links.get(&m.rel) {
                Some(t) => {
                    if !root.exists(t) {
                        continue; // a dangling link does not count
                    }
                    let tk = key(t)?;
                    // the versions of the same package owning that file, newest first
                    let owner = order
                        .iter()
                        .chain(known)
                        .filter(|c| c.name == new.name && c.nvr() != new.nvr())
                        .find(|c| c.modules.iter().any(|cm| c.krel == tk.0 && cm.rel == tk.1))?;
                    // it must be older than the new one
                    let pos = |x: &Kmp| order.iter().position(|o| o.nvr() == x.nvr());
                    match (pos(owner), pos(new)) {
                        (Some(_), None) => return None,
                        (Some(o), Some(n)) if o < n => return None,
                        _ => {}
                    }
                    old = Some(owner);
                }
                None => {
                    if st.others.iter().any(|o| o.path() == m.rel) {
                        return None; // something that is not a link is there
                    }
                }
            }
        }
        old.cloned()
    }

    /// The refusals among the kernel's links as they are now.
    fn refused_now(&mut self, krel: &str) -> Result<Vec<Refusal>, String> {
        if let Some(r) = &self.st(krel).refused {
            return r.clone();
        }
        let links = self.st(krel).links.clone();
        let r = self
            .k
            .decide(krel, &links)
            .map(|d| d.refused)
            .map_err(|e| e.to_string());
        self.st(krel).refused = Some(r.clone());
        r
    }

    /// Say once that a kernel's ABI cannot be read.
    fn warn_no_abi(&mut self, krel: &str, why: &str) {
        if self.no_abi.insert(krel.to_string()) {
            self.say(
                Level::Warn,
                format!(
                    "WARNING: symvers.gz not found for {krel}, no module can be linked into it: {why}"
                ),
            );
        }
    }

    /// `can_replace_kmp`: the kernel's links with `old`'s removed and `new`'s added, if no
    /// module file name overlaps and kabi's check accepts the new set (the new modules, and
    /// no link that was accepted before refused now).
    fn can_replace(&mut self, krel: &str, old: Option<&Kmp>, new: &Kmp) -> Result<Links, Why> {
        let mut links = self.st(krel).links.clone();
        if let Some(o) = old {
            for m in &o.modules {
                links.remove(&m.rel);
            }
        }
        let wanted = new.basenames();
        let st = self.st(krel);
        let mut overlap: Vec<(String, String)> = Vec::new();
        let in_weak = links
            .keys()
            .map(PathBuf::as_path)
            .chain(st.others.iter().map(Other::path));
        for p in in_weak {
            if let Some(n) = p.file_name().and_then(|n| n.to_str())
                && wanted.contains(n)
            {
                overlap.push((n.to_string(), format!("weak-updates/{}", p.display())));
            }
        }
        for n in &wanted {
            if let Some(w) = st.own_names.get(*n) {
                overlap.push((n.to_string(), w.clone()));
            }
        }
        if !overlap.is_empty() {
            overlap.sort();
            overlap.dedup();
            return Err(Why::Overlap(overlap));
        }
        for m in &new.modules {
            if let Some(why) = crate::weak::plan::conflict(&st.others, &m.rel) {
                return Err(Why::Blocked(why));
            }
        }
        for m in &new.modules {
            let t = self.target(new, m);
            links.insert(m.rel.clone(), t);
        }
        let d = match self.k.decide(krel, &links) {
            Ok(d) => d,
            Err(e) => {
                let e = e.to_string();
                self.warn_no_abi(krel, &e);
                return Err(Why::NoAbi(e));
            }
        };
        let ours: BTreeSet<&PathBuf> = new.modules.iter().map(|m| &m.rel).collect();
        let mut reasons: Vec<String> = Vec::new();
        for r in d.refused.iter().filter(|r| ours.contains(&r.link)) {
            reasons.extend(r.reasons.iter().cloned());
        }
        for (l, _, mine) in d.shadowed.iter().filter(|s| ours.contains(&s.0)) {
            reasons.push(format!(
                "{}: the kernel has its own {}",
                l.display(),
                mine.display()
            ));
        }
        if reasons.is_empty() {
            // nothing that loaded before may break
            let before: BTreeSet<(PathBuf, PathBuf)> = match self.refused_now(krel) {
                Ok(r) => r.into_iter().map(|r| (r.link, r.target)).collect(),
                Err(e) => return Err(Why::NoAbi(e)),
            };
            for r in d.refused.iter().filter(|r| !ours.contains(&r.link)) {
                if !before.contains(&(r.link.clone(), r.target.clone())) {
                    reasons.extend(
                        r.reasons.iter().map(|x| {
                            format!("{x} (weak-updates/{} would break)", r.link.display())
                        }),
                    );
                }
            }
        }
        if reasons.is_empty() {
            Ok(links)
        } else {
            Err(Why::Refused(reasons))
        }
    }

    fn commit(&mut self, krel: &str, links: Links) {
        let st = self.st(krel);
        if st.links != links {
            st.links = links;
            st.refused = None;
        }
    }

    fn depmod(&mut self, krel: &str) {
        if !self.plan.depmod.iter().any(|k| k == krel) {
            self.plan.depmod.push(krel.to_string());
        }
    }

    fn initrd(&mut self, krel: &str, changed: &Changed) {
        let kdir = self.k.layout.kernel(krel);
        let step = initrd::decide(
            self.k.root,
            &kdir,
            self.env,
            krel,
            changed,
            &mut self.plan.messages,
        );
        if let Some(s) = step
            && !self.plan.initrd.iter().any(|x| x.krel == s.krel)
        {
            self.plan.initrd.push(s);
        }
    }

    /// The warnings of `find_kmps`; false (and the run fails) when it would fail.
    fn found_ok(&mut self, found: &FoundKmps) -> bool {
        for w in &found.warnings {
            self.say(Level::Warn, w.to_string());
        }
        for n in &found.in_kernel {
            self.say(
                Level::Debug,
                format!("find_kmps: {n} provides kmp_in_kernel: skipped"),
            );
        }
        if let Some(e) = found.errors.first() {
            self.say(Level::Warn, e.to_string());
            return false;
        }
        let list: Vec<String> = found.kmps.iter().map(Kmp::nvr).collect();
        self.say(
            Level::Debug,
            format!("find_kmps: kmps found: {}", list.join(" ")),
        );
        true
    }

    /// The script's `Warning: ... is inconsistent` when links of the kernel fail kabi's
    /// check already.
    fn inconsistent(&mut self, krel: &str) -> Vec<Refusal> {
        match self.refused_now(krel) {
            Ok(r) => r,
            Err(e) => {
                self.warn_no_abi(krel, &e);
                Vec::new()
            }
        }
    }

    fn say_refusals(&mut self, level: Level, refused: &[Refusal]) {
        for r in refused {
            for x in r.reasons.iter().flat_map(|x| x.lines()) {
                self.say(level, format!("  weak-updates/{}: {x}", r.link.display()));
            }
        }
    }

    fn say_why(&mut self, level: Level, why: &Why) {
        for l in why.lines().iter().flat_map(|x| x.lines()) {
            self.say(level, format!("  {l}"));
        }
    }

    /// `find_kmps` for the KMP `nvr` names: its name, its flavour and the installed KMPs of
    /// its base name and flavour. `None` (and the run fails) when `nvr` is no KMP's or
    /// `find_kmps` would fail.
    fn find_for(&mut self, nvr: &str, packages: &[Package]) -> Option<(String, String, FoundKmps)> {
        let (name, basename, flavor) = self.parse_nvr(nvr)?;
        let found = kmp::find_kmps(packages, Some(&basename), &flavor);
        if !self.found_ok(&found) {
            self.plan.failed = true;
            return None;
        }
        Some((name, flavor, found))
    }

    /// `--add-kmp NVR`.
    fn add_kmp(&mut self, nvr: &str, list: Option<&str>, packages: &[Package]) {
        let Some((name, flavor, found)) = self.find_for(nvr, packages) else {
            return;
        };
        let mut known = found.kmps.clone();
        let Some(kmp) = self.kmp_to_add(nvr, list, &found, &mut known) else {
            return;
        };
        debug_assert_eq!(kmp.name, name);
        let order = found.kmps;
        for krel in self.kernels_of(&flavor) {
            self.add_kmp_to(&krel, nvr, &kmp, &known, &order);
        }
    }

    /// The KMP `--add-kmp NVR` adds: the installed one, else the one of the module list
    /// given (added to `known`). `None` when there is nothing to add: the package is
    /// `kmp_in_kernel`, or unknown (then the run fails, unless the list was merely empty).
    fn kmp_to_add(
        &mut self,
        nvr: &str,
        list: Option<&str>,
        found: &FoundKmps,
        known: &mut Vec<Kmp>,
    ) -> Option<Kmp> {
        if let Some(k) = found.kmps.iter().find(|k| k.nvr() == nvr) {
            return Some(k.clone());
        }
        if found.in_kernel.iter().any(|n| n == nvr) {
            self.say(
                Level::Log,
                format!("Package {nvr} provides kmp_in_kernel: nothing to link"),
            );
            return None;
        }
        match list.and_then(|l| kmp::kmp_from_module_list(nvr, l)) {
            Some(Ok(k)) => {
                known.push(k.clone());
                Some(k)
            }
            Some(Err(e @ KmpError::NoModules { .. })) if !list.unwrap_or("").is_empty() => {
                self.say(Level::Warn, e.to_string());
                None
            }
            Some(Err(e @ (KmpError::MultipleKernels { .. } | KmpError::ForbiddenDir { .. }))) => {
                self.say(Level::Warn, e.to_string());
                self.plan.failed = true;
                None
            }
            _ => {
                self.say(
                    Level::Warn,
                    format!(
                        "ERROR: package {nvr} is not in the rpm database and no module list was given on standard input"
                    ),
                );
                self.plan.failed = true;
                None
            }
        }
    }

    /// `add_kmp` for one kernel of the KMP's flavour: nothing when its modules are linked
    /// already, else the links replacing those of its previous version, if kabi accepts them.
    fn add_kmp_to(&mut self, krel: &str, nvr: &str, kmp: &Kmp, known: &[Kmp], order: &[Kmp]) {
        self.say(
            Level::Debug,
            format!("add_kmp: processing {nvr} for {krel}"),
        );
        let bad = self.inconsistent(krel);
        if !bad.is_empty() {
            let shown = self.shown(krel);
            self.say(Level::Warn, format!("Warning: {shown} is inconsistent"));
            self.say(
                Level::Warn,
                "Warning: weak-updates symlinks might not be created",
            );
            self.say_refusals(Level::Sym, &bad);
        }
        let mut changed: BTreeSet<String> =
            kmp.basenames().into_iter().map(str::to_string).collect();
        if self.present(kmp, krel) {
            self.say(
                Level::Log,
                format!("Package {nvr} does not need to be added to kernel {krel}"),
            );
            self.depmod(krel);
            self.initrd(krel, &Changed::Modules(changed));
            return;
        }
        let old = self.previous(kmp, krel, known, order);
        let links = match self.can_replace(krel, old.as_ref(), kmp) {
            Ok(links) => links,
            Err(why) => {
                match &old {
                    Some(o) => self.say(
                        Level::Log,
                        format!(
                            "Package {} kept in kernel {krel} (not replaced by {nvr})",
                            o.nvr()
                        ),
                    ),
                    None => self.say(Level::Warn, format!("FAILED to add {nvr} in kernel {krel}")),
                }
                self.say_why(Level::Log, &why);
                return;
            }
        };
        self.commit(krel, links);
        match &old {
            None => self.say(Level::Log, format!("Package {nvr} added to kernel {krel}")),
            Some(o) => {
                changed.extend(o.basenames().into_iter().map(str::to_string));
                self.say(
                    Level::Log,
                    format!(
                        "Package {} replaced by package {nvr} in kernel {krel}",
                        o.nvr()
                    ),
                );
            }
        }
        self.depmod(krel);
        self.initrd(krel, &Changed::Modules(changed));
    }

    /// `--remove-kmp NVR` with the KMP's module list.
    fn remove_kmp(&mut self, nvr: &str, list: &str, packages: &[Package]) {
        let Some((_, flavor, found)) = self.find_for(nvr, packages) else {
            return;
        };
        let Some(kmp) = self.kmp_to_remove(nvr, list) else {
            return;
        };
        // the removed package's module list is the one given, whatever the database says
        let order: Vec<Kmp> = found.kmps.into_iter().filter(|k| k.nvr() != nvr).collect();
        for krel in self.kernels_of(&flavor) {
            if self.present(&kmp, &krel) {
                self.remove_kmp_from(&krel, nvr, &kmp, &order);
            }
        }
    }

    /// The KMP of the module list `--remove-kmp NVR` was given; `None` when it has none (the
    /// run fails unless the list has no module).
    fn kmp_to_remove(&mut self, nvr: &str, list: &str) -> Option<Kmp> {
        match kmp::kmp_from_module_list(nvr, list) {
            Some(Ok(k)) => Some(k),
            Some(Err(e @ KmpError::NoModules { .. })) => {
                self.say(Level::Warn, e.to_string());
                None
            }
            Some(Err(e)) => {
                self.say(Level::Warn, e.to_string());
                self.plan.failed = true;
                None
            }
            None => {
                self.say(
                    Level::Warn,
                    format!("ERROR: {nvr} is not a package's name-version-release"),
                );
                self.plan.failed = true;
                None
            }
        }
    }

    /// `remove_kmp` for one kernel whose links point to the KMP's modules: the links
    /// removed, then those of the first other installed version kabi accepts (`order`,
    /// newest first) added.
    fn remove_kmp_from(&mut self, krel: &str, nvr: &str, kmp: &Kmp, order: &[Kmp]) {
        self.say(
            Level::Debug,
            format!("remove_kmp: processing {nvr} for {krel}"),
        );
        let bad = self.inconsistent(krel);
        if krel != kmp.krel {
            let mut links = self.st(krel).links.clone();
            for m in &kmp.modules {
                links.remove(&m.rel);
            }
            self.commit(krel, links);
        }
        let replaced = self.first_replacement(krel, order);
        let mut changed: BTreeSet<String> =
            kmp.basenames().into_iter().map(str::to_string).collect();
        match replaced {
            Some(o) => {
                changed.extend(o.basenames().into_iter().map(str::to_string));
                self.say(
                    Level::Log,
                    format!(
                        "Package {nvr} replaced by package {} in kernel {krel}",
                        o.nvr()
                    ),
                );
            }
            None => {
                self.say(
                    Level::Log,
                    format!("Package {nvr} removed from kernel {krel}"),
                );
                if !order.is_empty() {
                    self.say_no_other(krel, nvr, &kmp.name, &bad);
                }
            }
        }
        self.depmod(krel);
        self.initrd(krel, &Changed::Modules(changed));
    }

    /// The first of the other versions (`order`) whose modules kabi accepts in `krel`, its
    /// links committed.
    fn first_replacement(&mut self, krel: &str, order: &[Kmp]) -> Option<Kmp> {
        for other in order {
            self.say(
                Level::Debug,
                format!("remove_kmp: checking other KMP {}", other.nvr()),
            );
            match self.can_replace(krel, None, other) {
                Ok(links) => {
                    self.commit(krel, links);
                    return Some(other.clone());
                }
                Err(why) => self.say_why(Level::Debug, &why),
            }
        }
        None
    }

    /// Other versions of the KMP are installed but none could be linked in its place; the
    /// kernel's links that failed kabi's check before the removal (`bad`), if any.
    fn say_no_other(&mut self, krel: &str, nvr: &str, kmpshort: &str, bad: &[Refusal]) {
        self.say(
            Level::Log,
            format!("Weak-updates symlinks to no other {kmpshort} package could be created"),
        );
        if !bad.is_empty() {
            let shown = self.shown(krel);
            self.say(
                Level::Warn,
                format!("Warning: {shown} was inconsistent before removal of {nvr}"),
            );
            self.say_refusals(Level::Warn, bad);
        }
    }

    /// `kernel_changed`: `--add-kernel`, `--add-kernel-modules`, `--remove-kernel-modules`.
    fn kernel_changed(&mut self, krel: &str, changed: &Changed, packages: &[Package]) {
        if !self.installed(krel) {
            self.say(Level::Debug, "kernel_changed: kernel removed");
            return;
        }
        if !self.k.root.is_dir(self.k.layout.kernel(krel)) {
            self.say(Level::Debug, "kernel_changed: kernel without modules");
        } else {
            if let Some(flavor) = kmp::kernel_flavor(krel) {
                let found = kmp::find_kmps(packages, None, flavor);
                if self.found_ok(&found) {
                    self.walk(krel, &found.kmps);
                }
            }
            self.depmod(krel);
        }
        self.initrd(krel, changed);
    }

    /// `walk_kmps`: try every KMP, newest first, until a round adds nothing or skips
    /// nothing.
    fn walk(&mut self, krel: &str, kmps: &[Kmp]) {
        let mut pending: Vec<Option<&Kmp>> = kmps.iter().map(Some).collect();
        loop {
            if pending.iter().all(Option::is_none) {
                break;
            }
            let (mut added, mut skipped) = (false, false);
            for slot in pending.iter_mut() {
                let Some(kmp) = *slot else { continue };
                let nvr = kmp.nvr();
                self.say(
                    Level::Debug,
                    format!("walk_kmps: checking {nvr} for {krel}"),
                );
                if self.present(kmp, krel) {
                    self.say(
                        Level::Log,
                        format!("Package {nvr} does not need to be added to kernel {krel}"),
                    );
                    *slot = None;
                    continue;
                }
                let old = self.previous(kmp, krel, kmps, kmps);
                match self.can_replace(krel, old.as_ref(), kmp) {
                    Ok(links) => {
                        self.commit(krel, links);
                        match &old {
                            None => self
                                .say(Level::Log, format!("Package {nvr} added to kernel {krel}")),
                            Some(o) => self.say(
                                Level::Log,
                                format!(
                                    "Package {} replaced by package {nvr} in kernel {krel}",
                                    o.nvr()
                                ),
                            ),
                        }
                        added = true;
                        *slot = None;
                    }
                    Err(why) => {
                        self.say(Level::Debug, format!("walk_kmps: skipped {nvr}"));
                        self.say_why(Level::Debug, &why);
                        skipped = true;
                    }
                }
            }
            if !(added && skipped) {
                break;
            }
        }
    }

    /// `--remove-kernel`.
    fn remove_kernel(&mut self, krel: &str) {
        if !self.k.root.is_dir(self.k.layout.kernel(krel)) {
            return;
        }
        let still_there = self.installed(krel)
            || self
                .k
                .root
                .is_dir(self.k.layout.kernel(krel).join("kernel"));
        if still_there {
            // the kernel is still installed: its links go, its indexes follow
            self.commit(krel, Links::new());
        } else {
            self.plan.dismantle = Some(krel.to_string());
            self.st(krel);
        }
    }

    /// NAME, BASENAME and FLAVOR of `NAME-VERSION-RELEASE` (`${kmp%-*-*}`, `${kmpshort%-kmp-*}`,
    /// `${kmpshort##*-}`); None (and the run fails) when it is no KMP's.
    fn parse_nvr(&mut self, nvr: &str) -> Option<(String, String, String)> {
        let parsed = kmp::split_nvr(nvr).and_then(|(name, _, _)| {
            kmp::parse_kmp_name(name).map(|k| {
                (
                    name.to_string(),
                    k.basename.to_string(),
                    k.flavor.to_string(),
                )
            })
        });
        if parsed.is_none() {
            self.say(
                Level::Warn,
                format!(
                    "ERROR: {nvr} is not the name-version-release of a kernel module package (NAME-kmp-FLAVOR-VERSION-RELEASE)"
                ),
            );
            self.plan.failed = true;
        }
        parsed
    }

    fn finish(mut self) -> Plan {
        let dismantle = self.plan.dismantle.clone();
        for (krel, st) in std::mem::take(&mut self.states) {
            let after = if dismantle.as_deref() == Some(krel.as_str()) {
                Links::new()
            } else {
                st.links
            };
            self.plan.kernels.push(KernelPlan {
                krel,
                leaves_indexes: !crate::weak::txn::keeps_indexes(after.is_empty(), st.indexed),
                before: st.before,
                after,
                rewrite: st.rewrite,
                ..KernelPlan::default()
            });
        }
        // kernels in version order
        self.plan
            .kernels
            .sort_by(|a, b| crate::weak::version_cmp(&a.krel, &b.krel));
        self.plan
    }
}
