//! `kabi weak status`: for every kernel, every module of the other kernels' `extra/` and every
//! link of its own `weak-updates/`: linked or not, compatible or not and why, dangling links,
//! links into removed kernels, interrupted runs. Reads only.

use super::state::WeakState;
use super::{Kernels, Links, krel_of_path};
use crate::error::Error;
use std::collections::BTreeSet;
use std::path::PathBuf;

/// Where one module stands with one kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkState {
    /// Linked, and (if `compatible`) the kernel will load it.
    Linked,
    /// Not linked.
    NotLinked,
    /// Linked, but the target is gone.
    Dangling,
    /// Linked, but the kernel would refuse it.
    Stale,
    /// Not linked: the kernel has its own copy in `extra/` or `updates/`.
    Shadowed,
}

impl LinkState {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::Linked => "linked",
            LinkState::NotLinked => "not-linked",
            LinkState::Dangling => "dangling",
            LinkState::Stale => "stale",
            LinkState::Shadowed => "shadowed",
        }
    }

    /// Broken: something is linked that will not load.
    pub fn is_broken(self) -> bool {
        matches!(self, LinkState::Dangling | LinkState::Stale)
    }
}

/// One line of `kabi weak status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Entry {
    /// The module file (a module of another kernel's `extra/`, or a link's target), inside
    /// the root.
    pub module: PathBuf,
    /// The kernel it was built for.
    pub built_for: String,
    /// Its path in this kernel's `weak-updates/`.
    pub link: PathBuf,
    pub state: LinkState,
    pub compatible: bool,
    /// Why not, in the kernel's words.
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct KernelStatus {
    pub kernel: String,
    /// Inside the root.
    pub symvers: Option<PathBuf>,
    /// An interrupted weak-modules run left its change half done (the next writing kabi
    /// command completes it).
    pub interrupted: Option<String>,
    pub entries: Vec<Entry>,
}

/// The status of every kernel of the root.
pub fn status(k: &Kernels) -> Result<Vec<KernelStatus>, Error> {
    let extras: Vec<(String, PathBuf)> = k
        .with_extra()
        .into_iter()
        .flat_map(|krel| {
            k.module_files(&k.layout.kernel(&krel).join("extra"))
                .into_iter()
                .map(move |m| (krel.clone(), m))
        })
        .collect();
    let mut out = Vec::new();
    for krel in k.all() {
        let kdir = k.root.open_dir(k.layout.kernel(&krel))?;
        let st = super::state::read(k.root, &kdir, &krel)?;
        out.push(kernel_status(k, &st, &extras)?);
    }
    Ok(out)
}

fn kernel_status(
    k: &Kernels,
    st: &WeakState,
    extras: &[(String, PathBuf)],
) -> Result<KernelStatus, Error> {
    let krel = st.krel.as_str();
    let symvers = k.symvers(krel);
    let mut entries = Vec::new();
    // links whose target is gone
    let mut live = Links::new();
    for (l, t) in &st.links {
        if k.root.is_file(t) {
            live.insert(l.clone(), t.clone());
            continue;
        }
        let built_for = k.module_krel(t).unwrap_or_default();
        let gone = !built_for.is_empty() && !k.root.is_dir(k.layout.kernel(&built_for));
        entries.push(Entry {
            module: t.clone(),
            built_for: built_for.clone(),
            link: l.clone(),
            state: LinkState::Dangling,
            compatible: false,
            reasons: vec![if gone {
                format!("the link points into kernel {built_for}, which is no longer installed")
            } else {
                "the link's target does not exist".into()
            }],
        });
    }
    // what could be linked, as groups: each other kernel's extra/ modules together, then the
    // linked modules that are in no extra/ of another kernel
    let mut groups: Vec<Links> = Vec::new();
    let mut offered: BTreeSet<PathBuf> = BTreeSet::new();
    let mut last: Option<&str> = None;
    for (other, m) in extras {
        if other == krel {
            continue;
        }
        let Some(link) = k.layout.link_rel(m, other) else {
            continue;
        };
        if last != Some(other.as_str()) {
            groups.push(Links::new());
            last = Some(other);
        }
        if let Some(g) = groups.last_mut() {
            g.insert(link, m.clone());
        }
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
        let decision = match symvers {
            Some(_) => Some(k.decide(krel, proposal)?),
            None => None,
        };
        for (l, t) in proposal {
            let linked = live.get(l) == Some(t);
            let built_for = k
                .module_krel(t)
                .or_else(|| krel_of_path(t))
                .unwrap_or_default();
            let plain = if linked {
                LinkState::Linked
            } else {
                LinkState::NotLinked
            };
            let (state, compatible, reasons) = match &decision {
                None => (
                    plain,
                    false,
                    vec!["no symvers file for this kernel: compatibility unknown".into()],
                ),
                Some(d) => {
                    if d.accepted.get(l) == Some(t) {
                        (plain, true, vec![])
                    } else if let Some(r) = d.refused.iter().find(|r| &r.link == l) {
                        (
                            if linked {
                                LinkState::Stale
                            } else {
                                LinkState::NotLinked
                            },
                            false,
                            r.reasons.clone(),
                        )
                    } else if let Some((_, _, mine)) = d.shadowed.iter().find(|s| &s.0 == l) {
                        (
                            LinkState::Shadowed,
                            true,
                            vec![format!("the kernel has its own {}", mine.display())],
                        )
                    } else {
                        (LinkState::NotLinked, false, vec![])
                    }
                }
            };
            entries.push(Entry {
                module: t.clone(),
                built_for,
                link: l.clone(),
                state,
                compatible,
                reasons,
            });
        }
    }
    Ok(KernelStatus {
        kernel: krel.to_string(),
        symvers,
        interrupted: st.pending.as_ref().map(|p| match p {
            Ok(_) => "an interrupted weak-modules run left its change half done; the next weak-modules or depmod run completes it".to_string(),
            Err(e) => format!("an interrupted weak-modules run left a record that cannot be read: {e}"),
        }),
        entries,
    })
}
