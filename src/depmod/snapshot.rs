//! The walk of an unchanged tree, known without reading the tree again.
//!
//! A run on an unchanged tree spends most of its time walking it: opening and reading
//! every directory (about 900 in a Debian amd64 tree) to find the files the last run
//! already found. A directory's entries change only together with its change time (an
//! entry added, removed or renamed updates it, as does any change of the directory
//! itself), so the last run's walk still holds while every directory it entered below its
//! top directories is the same directory (device and inode) with the same size and times.
//! The top directories are read: they also hold the outputs, which every run replaces.
//! Checking all that takes one `stat` per directory and per chosen file (which the walk
//! makes too), instead of an `open`, two `getdents`, a `stat` and a `close` per directory.
//!
//! A time has a granularity (a clock tick, or more on some file systems): a directory the
//! walk read could change again within the tick its times were set in, and keep them. So a
//! walk is recorded only when every directory and file it recorded last changed at least
//! [`SETTLE`] before the walk began; else the next run walks again (and records then).
//! A file system whose clock runs more than that behind the host's is not protected.
//!
//! Only what the walk depends on is checked: the root's path, the top directories' relevant
//! entries ([`walk::relevant`]), each directory's identity, each chosen file's identity.
//! The configuration (which entries are skipped, which file of a module is chosen) is in
//! the run's input hash, which the caller compares as for any run. A walk that met a
//! problem is not recorded (a directory it could not open has no identity to check).

use super::Chosen;
use super::cache::{FileKey, Tree, resolve};
use crate::root::{Kind, Root, Stat};
use crate::tree::walk::{self, Visitor, Walk, Walked};
use std::ffi::OsStr;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How long before a walk began everything it records must have last changed.
pub const SETTLE: Duration = Duration::from_secs(2);

fn kind_code(k: Kind) -> u8 {
    match k {
        Kind::File => 0,
        Kind::Dir => 1,
        Kind::Symlink => 2,
        Kind::Other => 3,
    }
}

/// How an entry the walk reached (`follow`: through a link; `linked`: in a directory it
/// reached through one) is resolved again: as the walk resolved it.
fn how(follow: bool, linked: bool) -> u8 {
    match (follow, linked) {
        (true, _) => resolve::FOLLOW,
        (false, true) => resolve::IN_ROOT,
        (false, false) => resolve::ITSELF,
    }
}

/// `began - settle` as a file time (seconds and nanoseconds since the epoch).
fn settled_before(began: SystemTime, settle: Duration) -> (i64, u32) {
    let t = began
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_sub(settle);
    (t.as_secs() as i64, t.subsec_nanos())
}

/// The walk `w` (begun at `began`), which chose `chosen`, as a tree to check later: `None`
/// when it met a problem, did not record its directories, or something it found changed
/// less than `settle` before it began.
pub fn record<'a>(
    root: &Root,
    w: &Walk,
    chosen: impl Iterator<Item = &'a Walked>,
    began: SystemTime,
    settle: Duration,
) -> Option<Tree> {
    if !w.problems.is_empty() || w.unrecorded {
        return None;
    }
    let before = settled_before(began, settle);
    let settled = |s: &Stat| s.ctime < before;
    let tops = w
        .tops
        .iter()
        .map(|t| {
            let entries = t
                .entries
                .iter()
                .map(|e| (e.name.as_bytes().to_vec(), kind_code(e.kind)))
                .collect();
            (t.rel.as_os_str().as_bytes().to_vec(), entries)
        })
        .collect();
    let mut dirs = Vec::with_capacity(w.dirs.len());
    for d in &w.dirs {
        if !settled(&d.stat) {
            return None;
        }
        dirs.push((
            d.rel.as_os_str().as_bytes().to_vec(),
            how(d.follow, d.linked),
            FileKey::from(&d.stat),
        ));
    }
    let mut files = Vec::new();
    for f in chosen {
        if !settled(&f.stat) {
            return None;
        }
        files.push((
            f.display.clone(),
            f.rel.as_os_str().as_bytes().to_vec(),
            how(f.follow, f.linked),
            FileKey::from(&f.stat),
        ));
    }
    Some(Tree {
        root: root.path().as_os_str().as_bytes().to_vec(),
        tops,
        dirs,
        files,
    })
}

/// The files the walk recorded in `tree` chose, if a walk with `v` would find them again
/// as they were: `None` as soon as anything differs (the caller then walks).
pub fn check(root: &Root, v: &dyn Visitor, tree: &Tree) -> Option<Vec<Chosen>> {
    use rayon::prelude::*;
    if tree.root != root.path().as_os_str().as_bytes() {
        return None;
    }
    let mut buf = Vec::new();
    let mut tops = Vec::with_capacity(tree.tops.len());
    for (rel, entries) in &tree.tops {
        let rel = Path::new(OsStr::from_bytes(rel));
        let mut d = root.open_dir(rel).ok()?;
        let now = d.read_entries(&mut buf).ok()?;
        let mut now = now.iter().filter(|e| walk::relevant(v, e));
        let same = entries.iter().all(|(name, kind)| {
            now.next()
                .is_some_and(|e| e.name.as_bytes() == name && kind_code(e.kind) == *kind)
        }) && now.next().is_none();
        if !same {
            return None;
        }
        tops.push((rel.to_path_buf(), d));
    }
    // a path that names the entry itself is resolved from the top directory it is in (as
    // the walk resolved it, opening one component after another), one reached through a
    // link with links resolved inside the root (as the walk resolved it)
    let key_of = |rel: &[u8], how: u8| -> Option<(Kind, FileKey)> {
        let rel = Path::new(OsStr::from_bytes(rel));
        let st = if how == resolve::FOLLOW {
            root.stat(rel).ok()?
        } else if how == resolve::IN_ROOT {
            root.lstat(rel).ok()?
        } else {
            let (fd, rest) = tops
                .iter()
                .find_map(|(top, d)| {
                    let rest = rel.strip_prefix(top).ok()?;
                    (!rest.as_os_str().is_empty()).then_some((d.as_fd(), rest))
                })
                .unwrap_or((root.fd(), rel));
            Stat::from(&rustix::fs::statat(fd, rest, rustix::fs::AtFlags::SYMLINK_NOFOLLOW).ok()?)
        };
        Some((st.kind, FileKey::from(&st)))
    };
    let dirs_same = tree
        .dirs
        .par_iter()
        .with_min_len(64)
        .all(|(rel, how, key)| key_of(rel, *how) == Some((Kind::Dir, *key)));
    if !dirs_same {
        return None;
    }
    tree.files
        .par_iter()
        .with_min_len(64)
        .map(|(shown, rel, how, key)| {
            (key_of(rel, *how)? == (Kind::File, *key)).then(|| Chosen {
                display: shown.clone(),
                rel: PathBuf::from(OsStr::from_bytes(rel)),
                key: Ok(*key),
            })
        })
        .collect()
}
