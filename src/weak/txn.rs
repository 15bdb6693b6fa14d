//! One kernel's weak-updates change as a transaction over its links and its indexes.
//!
//! 1. The intent record `.kabi-weak-txn` (the complete set of links the kernel is to have)
//!    is written and flushed in the kernel's module directory.
//! 2. `weak-updates/` is replaced in one step ([`super::links::replace`]).
//! 3. The kernel's indexes are rewritten (kabi's depmod); unless the kernel is left without
//!    links and is not installed and indexed any more ([`keeps_indexes`]): then no index is
//!    written, and the files of kabi's that no package owns ([`UNOWNED`]) are removed.
//! 4. The record is removed.
//!
//! A crash anywhere leaves either no record (nothing happened, or everything did) or a
//! record, which the next kabi command that touches the kernel (weak-modules, depmod,
//! verify, load) completes: the links are made what the record says, the indexes
//! rewritten, the record removed. A record that cannot be read is undone instead: the links
//! stay as they are and only the indexes are rewritten to agree with them.

use super::Links;
use super::state::{Other, WeakState};
use crate::error::Error;
use crate::root::{Dir, Root};
use std::path::PathBuf;

/// The intent record's file name, in the kernel's module directory.
pub const RECORD: &str = ".kabi-weak-txn";
const FORMAT: u32 = 1;

/// What a transaction is to leave behind.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Record {
    pub format: u32,
    pub kernel: String,
    /// Link path below `weak-updates/` → target.
    pub links: std::collections::BTreeMap<String, String>,
}

impl Record {
    pub fn new(krel: &str, links: &Links) -> Option<Record> {
        let mut m = std::collections::BTreeMap::new();
        for (l, t) in links {
            m.insert(l.to_str()?.to_string(), t.to_str()?.to_string());
        }
        Some(Record {
            format: FORMAT,
            kernel: krel.to_string(),
            links: m,
        })
    }

    pub fn links(&self) -> Links {
        self.links
            .iter()
            .map(|(l, t)| (PathBuf::from(l), PathBuf::from(t)))
            .collect()
    }
}

/// The record of `kdir`, if there is one: `Err` with why when it cannot be used.
pub fn read_record(kdir: &Dir) -> Option<Result<Record, String>> {
    match kdir.read(RECORD, 64 << 20) {
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => Some(Err(e.to_string())),
        Ok(data) => Some(
            serde_json::from_slice::<Record>(&data)
                .map_err(|e| format!("{}: {e}", kdir.show(RECORD).display()))
                .and_then(|r| {
                    if r.format != FORMAT {
                        Err(format!(
                            "{}: format {}",
                            kdir.show(RECORD).display(),
                            r.format
                        ))
                    } else {
                        Ok(r)
                    }
                }),
        ),
    }
}

/// How the indexes are rewritten: kabi's depmod for one kernel (the caller holds the lock).
pub fn rewrite_indexes(root: &Root, krel: &str, verbose: bool) -> Result<(), Error> {
    let opts = crate::depmod::Options {
        root: (!root.is_host()).then(|| root.path().to_path_buf()),
        kver: krel.to_string(),
        ..crate::depmod::Options::default()
    };
    let mut log = |m: &crate::depmod::graph::Message| {
        if verbose {
            eprintln!("{m}");
        }
    };
    crate::depmod::run_locked(root, &opts, &mut log)
        .map(|_| ())
        .map_err(|e| Error::Usage(format!("depmod for {krel}: {e}")))
}

/// Remove the staging trees crashed runs left beside `weak-updates/` (the caller holds the
/// lock, so none of them belongs to a live run).
pub fn clean_stale(kdir: &Dir, st: &WeakState) -> Result<(), Error> {
    let fresh = kdir.sub("weak-updates").ok();
    for s in &st.stale {
        super::links::dismantle(kdir, s, fresh.as_ref())?;
    }
    Ok(())
}

/// Give kernel `krel` exactly `after` as its links, as one transaction (see the module
/// documentation). The caller holds the modules lock.
pub fn apply(
    root: &Root,
    kdir: &Dir,
    st: &WeakState,
    after: &Links,
    verbose: bool,
) -> Result<(), Error> {
    clean_stale(kdir, st)?;
    let rec = Record::new(&st.krel, after).ok_or_else(|| {
        Error::Usage(format!(
            "kernel {}: a link path or target is not valid UTF-8",
            st.krel
        ))
    })?;
    let json = serde_json::to_vec_pretty(&rec).map_err(|e| Error::Usage(e.to_string()))?;
    kdir.write_atomic(RECORD, &json, 0o644)?;
    crate::crash::point();
    let keep = keeps_indexes(after.is_empty(), st.indexed);
    // the links as they are already (a kernel being removed whose links went before, with
    // kabi's files left to remove): `weak-updates/` is not made again
    let same = st.links == *after && st.outside_targets.is_empty();
    let links = (!same).then_some(after);
    finish(root, kdir, &st.krel, links, &st.others, keep, verbose)
}

/// Are a kernel's indexes rewritten after its links change? Yes, unless the kernel is left
/// without links (`emptied`) and is not installed and indexed ([`WeakState::indexed`]):
/// that is a kernel being removed, whose indexes are being deleted with it (by
/// `kernel-install remove`'s `50-depmod.install`, `new-kernel-pkg --rmmoddep`, or the
/// package's own removal). Writing them again would leave files no package owns, which
/// keep the kernel's module directory from being removed.
pub fn keeps_indexes(emptied: bool, indexed: bool) -> bool {
    !emptied || indexed
}

/// The files kabi's depmod writes in a kernel's module directory that no package owns and
/// not every removal of a kernel deletes: its scan cache, and `modules.weakdep` (kmod 30 and
/// RHEL's kmod write none; the `50-depmod.install` of systemd 252 as RHEL 9 ships it and the
/// `postrm` of Debian 12's kernels predate it). Left behind, either keeps the kernel's module
/// directory from being removed.
pub const UNOWNED: [&str; 2] = [crate::depmod::CACHE_NAME, "modules.weakdep"];

/// Remove [`UNOWNED`] from the kernel's module directory `kdir`: only for a kernel that is
/// not installed and indexed, whose indexes are being removed.
pub fn drop_unowned(kdir: &Dir) -> Result<(), Error> {
    for name in UNOWNED {
        match kdir.unlink(name) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::io(kdir.show(name), e));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Steps 2 to 4, from a record (`links`) or without one (undo: the indexes only); `keep`:
/// step 3 rewrites the indexes (else it removes [`UNOWNED`]).
fn finish(
    root: &Root,
    kdir: &Dir,
    krel: &str,
    links: Option<&Links>,
    others: &[Other],
    keep: bool,
    verbose: bool,
) -> Result<(), Error> {
    if let Some(l) = links {
        super::links::replace(kdir, l, others)?;
    }
    crate::crash::point();
    if keep {
        rewrite_indexes(root, krel, verbose)?;
    } else {
        if verbose {
            eprintln!(
                "kernel {krel}: no links left and the kernel is not installed and indexed (neither kernel/ nor modules.order, or neither modules.dep nor modules.dep.bin): its indexes are left as they are"
            );
        }
        drop_unowned(kdir)?;
        // what killed writers left here (a depmod run would remove it; the caller holds the
        // lock every writer of this directory takes)
        kdir.clean_temps();
    }
    crate::crash::point();
    match kdir.unlink(RECORD) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(Error::io(kdir.show(RECORD), e));
        }
        _ => {}
    }
    kdir.sync().map_err(|e| Error::io(kdir.path(), e))
}

/// Complete (or, for a record that cannot be read, undo) the interrupted transaction of
/// kernel `krel`, if there is one. The caller holds the modules lock. Returns what was done.
pub fn recover(
    root: &Root,
    kdir: &Dir,
    st: &WeakState,
    verbose: bool,
) -> Result<Option<String>, Error> {
    let Some(pending) = &st.pending else {
        return Ok(None);
    };
    clean_stale(kdir, st)?;
    match pending {
        Ok(rec) => {
            let links = rec.links();
            let same = links == st.links && st.outside_targets.is_empty();
            finish(
                root,
                kdir,
                &st.krel,
                (!same).then_some(&links),
                &st.others,
                keeps_indexes(links.is_empty(), st.indexed),
                verbose,
            )?;
            Ok(Some(format!(
                "kernel {}: completed the weak-updates change of an interrupted run",
                st.krel
            )))
        }
        Err(why) => {
            let keep = keeps_indexes(st.links.is_empty(), st.indexed);
            finish(root, kdir, &st.krel, None, &st.others, keep, verbose)?;
            let done = if keep {
                "the indexes were rewritten to agree with the links as they are"
            } else {
                "the kernel has no links and is not installed and indexed: its indexes were left as they are"
            };
            Ok(Some(format!(
                "kernel {}: an interrupted run's record could not be read ({why}); {done}",
                st.krel
            )))
        }
    }
}

/// For commands that only read (verify, load) and depmod: complete an interrupted
/// transaction of kernel `krel` under `root` if there is one, and remove what interrupted runs
/// left (staging trees, temporary files), under the modules lock; otherwise say why not.
/// `Ok(None)`: nothing was pending (one read of the kernel's directory when nothing is
/// left behind).
pub fn recover_if_pending(
    root: &Root,
    layout: super::Layout,
    krel: &str,
) -> Result<Option<String>, String> {
    let Ok(mut kdir) = root.open_dir(layout.kernel(krel)) else {
        return Ok(None);
    };
    if !left_behind(&mut kdir) {
        return Ok(None);
    }
    let _lock = crate::depmod::lock(root).map_err(|e| e.to_string())?;
    let st = super::state::read(root, &kdir, krel).map_err(|e| e.to_string())?;
    let done = if st.pending.is_some() {
        recover(root, &kdir, &st, false).map_err(|e| {
            format!(
                "kernel {krel}: an interrupted weak-modules run left {} and it could not be completed: {e}",
                kdir.show(RECORD).display()
            )
        })?
    } else {
        clean_stale(&kdir, &st).map_err(|e| e.to_string())?;
        None
    };
    kdir.clean_temps();
    Ok(done)
}

/// Did an interrupted run leave something in the kernel's module directory: its intent
/// record, a staging tree, a temporary file? (One read of the directory, from `kdir`'s own
/// descriptor: `kabi load` asks before every load.)
fn left_behind(kdir: &mut Dir) -> bool {
    kdir.read_entries(&mut Vec::new()).is_ok_and(|es| {
        es.iter().any(|e| {
            e.name == RECORD
                || e.name
                    .to_str()
                    .is_some_and(|n| n.starts_with(super::state::STAGING_PREFIX))
                || (e.kind == crate::root::Kind::File && crate::root::is_temp_name(&e.name))
        })
    })
}
