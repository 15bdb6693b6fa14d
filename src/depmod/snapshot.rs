//! The walk of an unchanged tree, known without reading the tree again.
//!
//! A run on an unchanged tree spends most of its time walking it: opening and reading
//! every directory (about 900 in a Debian amd64 tree) to find the files the last run
//! already found. A directory's entries change only together with its change time (an
//! entry added, removed or renamed updates it, as does any change of the directory
//! itself). So the last run's walk still holds while every path it looked at below its top
//! directories resolves, as the walk resolved it, to the same file (device and inode) with
//! the same type, size and times: every directory (entered, or passed over as one entered
//! before or as its own ancestor), every link (the link itself: a link is replaced, never
//! changed) and where each link leads, and every file it chose. The top directories are
//! read again: they also hold the outputs, which every run replaces, so their times say
//! nothing; their relevant entries ([`walk::relevant`]) must be the same, and the top
//! directories themselves the ones the configuration names now. Checking all that takes
//! one `stat` per path (which the walk makes too), instead of an `open`, two `getdents`, a
//! `stat` and a `close` per directory.
//!
//! A time has a granularity (a clock tick, or more on some file systems): a directory the
//! walk read could change again within the tick its times were set in, and keep them. So a
//! walk is recorded only when everything it recorded last changed at least [`SETTLE`]
//! before the walk began; else the next run walks again (and records then). A file system
//! whose clock runs more than that behind the host's is not protected.
//!
//! A walk that met a problem is not recorded (what it could not open or `stat` has no
//! identity to check). The configuration (which entries are skipped, which file of a
//! module is chosen) is in the run's input hash, which the caller compares as for any run.
//! Each path is resolved inside the root: one the walk reached without a link from the
//! top directory it is below (names only), one it reached through a link as the root
//! resolves links. Paths are checked shallowest first, so that the directories a path
//! goes through were found to be those directories (not links) before a `stat` goes
//! through them. A path that leads back to a top directory is compared by its identity
//! alone (device and inode).

use super::cache::{FileKey, TopRecord, Tree, resolve};
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

/// The kind code of a path that leads to a top directory: only its identity (device and
/// inode) is compared, as its times move with every run's outputs (its entries are
/// compared instead).
const TOP: u8 = 4;

/// The most top directories a recorded walk has (the module directory and the external
/// ones): a walk with more is not recorded.
pub const MAX_TOPS: usize = 64;

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
/// when it met a problem, did not record what it looked at, or something it recorded
/// changed less than `settle` before it began.
pub fn record<'a>(
    root: &Root,
    w: &Walk,
    chosen: impl Iterator<Item = &'a Walked>,
    began: SystemTime,
    settle: Duration,
) -> Option<Tree> {
    if !w.problems.is_empty() || w.unrecorded || w.tops.len() > MAX_TOPS {
        return None;
    }
    if w.tops.iter().map(|t| t.entries.len()).sum::<usize>() > Tree::MAX_TOP_ENTRIES {
        return None;
    }
    let before = settled_before(began, settle);
    let settled = |s: &Stat| s.ctime < before;
    let top_keys: Vec<(u64, u64)> = w.tops.iter().filter_map(|t| t.key).collect();
    let chosen: Vec<&Walked> = chosen.collect();
    // a chosen file reached through a link is recorded once, as a file
    let linked_files: std::collections::HashSet<&Path> = chosen
        .iter()
        .filter(|f| f.follow)
        .map(|f| f.rel.as_path())
        .collect();
    let mut tops = Vec::with_capacity(w.tops.len());
    for t in &w.tops {
        let (dev, ino) = t.key?;
        tops.push(TopRecord {
            rel: t.rel.as_os_str().as_bytes().to_vec(),
            dev,
            ino,
            entries: t
                .entries
                .iter()
                .map(|e| (e.name.as_bytes().to_vec(), kind_code(e.kind)))
                .collect(),
        });
    }
    let mut paths = Vec::with_capacity(w.looked.len());
    for l in &w.looked {
        if l.follow && linked_files.contains(l.rel.as_path()) {
            continue;
        }
        let rel = l.rel.as_os_str().as_bytes().to_vec();
        let how = how(l.follow, l.linked);
        if l.stat.is_dir() && top_keys.contains(&(l.stat.dev, l.stat.ino)) {
            let identity = FileKey {
                size: 0,
                mtime: (0, 0),
                ctime: (0, 0),
                ino: l.stat.ino,
                dev: l.stat.dev,
            };
            paths.push((rel, how, TOP, identity));
            continue;
        }
        if !settled(&l.stat) {
            return None;
        }
        paths.push((rel, how, kind_code(l.stat.kind), FileKey::from(&l.stat)));
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
        paths,
        files,
    })
}

/// A path below a top directory, relative to it: only names (none empty, `.` or `..`).
fn below<'p>(rel: &'p [u8], top: &[u8]) -> Option<&'p [u8]> {
    let top = top.strip_prefix(b"/").unwrap_or(top);
    let rest = rel.strip_prefix(top)?.strip_prefix(b"/")?;
    let names = rest
        .split(|&b| b == b'/')
        .all(|c| !c.is_empty() && c != b"." && c != b"..");
    names.then_some(rest)
}

/// How deep a path is (its separators): a directory is shallower than what is below it.
fn depth(rel: &[u8]) -> usize {
    rel.iter().filter(|&&b| b == b'/').count()
}

/// Would a walk with `v` from the top directories `tops` (inside the root, in walk order)
/// find what the walk recorded in `tree` found, and choose its files as they were? `false`
/// as soon as anything differs (the caller then walks).
pub fn check(root: &Root, v: &dyn Visitor, tops: &[PathBuf], tree: &Tree) -> bool {
    holds(root, v, tops, tree).is_some()
}

fn holds(root: &Root, v: &dyn Visitor, tops: &[PathBuf], tree: &Tree) -> Option<()> {
    use rayon::prelude::*;
    if tree.root != root.path().as_os_str().as_bytes() || tree.tops.len() != tops.len() {
        return None;
    }
    let mut buf = Vec::new();
    let mut opened = Vec::with_capacity(tops.len());
    for (top, now_rel) in tree.tops.iter().zip(tops) {
        if top.rel.as_slice() != now_rel.as_os_str().as_bytes() {
            return None;
        }
        let mut d = root.open_dir(now_rel).ok()?;
        // the same directory (a path that leads to it is compared by this identity alone),
        // with the same entries
        let st = rustix::fs::fstat(&d).ok()?;
        if (st.st_dev, st.st_ino) != (top.dev, top.ino) {
            return None;
        }
        let now = d.read_entries(&mut buf).ok()?;
        let mut now = now.iter().filter(|e| walk::relevant(v, e));
        let same = top.entries.iter().all(|(name, kind)| {
            now.next()
                .is_some_and(|e| e.name.as_bytes() == name && kind_code(e.kind) == *kind)
        }) && now.next().is_none();
        if !same {
            return None;
        }
        opened.push((now_rel.as_os_str().as_bytes(), d));
    }
    // each path resolved as the walk resolved it: an entry itself from the top directory it
    // is below (the deepest, names only: the walk opened one component after another); one
    // reached through a link, or below a directory that was, with links resolved inside the
    // root
    let key_of = |rel: &[u8], how: u8| -> Option<Stat> {
        match how {
            resolve::FOLLOW => root.stat(OsStr::from_bytes(rel)).ok(),
            resolve::IN_ROOT => root.lstat(OsStr::from_bytes(rel)).ok(),
            _ => {
                let (top, d) = opened
                    .iter()
                    .filter(|(top, _)| below(rel, top).is_some())
                    .max_by_key(|(top, _)| top.len())?;
                let rest = OsStr::from_bytes(below(rel, top)?);
                let st = rustix::fs::statat(d.as_fd(), rest, rustix::fs::AtFlags::SYMLINK_NOFOLLOW);
                Some(Stat::from(&st.ok()?))
            }
        }
    };
    let same = |&(_, rel, how, kind, key): &(usize, &[u8], u8, u8, FileKey)| {
        key_of(rel, how).is_some_and(|st| match kind {
            TOP => st.is_dir() && (st.dev, st.ino) == (key.dev, key.ino),
            k => k == kind_code(st.kind) && FileKey::from(&st) == key,
        })
    };
    // shallower paths first, each depth in parallel: a path's directories are known to be
    // the directories they were (not links) before a `stat` goes through them
    let mut all: Vec<(usize, &[u8], u8, u8, FileKey)> = tree
        .paths
        .iter()
        .map(|(rel, how, kind, key)| (depth(rel), rel.as_slice(), *how, *kind, *key))
        .chain(tree.files.iter().map(|(_, rel, how, key)| {
            (
                depth(rel),
                rel.as_slice(),
                *how,
                kind_code(Kind::File),
                *key,
            )
        }))
        .collect();
    all.sort_by_key(|c| c.0);
    all.chunk_by(|a, b| a.0 == b.0)
        .all(|level| level.par_iter().with_min_len(64).all(same))
        .then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_below_a_top_is_names_only() {
        let p = |s: &str| below(s.as_bytes(), b"lib/modules/k").map(<[u8]>::to_vec);
        assert_eq!(
            p("lib/modules/k/kernel/a.ko"),
            Some(b"kernel/a.ko".to_vec())
        );
        assert_eq!(
            below(b"lib/modules/k/x", b"/lib/modules/k"),
            Some(b"x".as_slice())
        );
        for no in [
            "lib/modules/k",
            "lib/modules/k/",
            "lib/modules/kk/a.ko",
            "lib/modules/k/../../../etc",
            "lib/modules/k/kernel/../../../../etc",
            "lib/modules/k/./a.ko",
            "lib/modules/k//a.ko",
            "lib/modules/other/a.ko",
            "/etc",
        ] {
            assert_eq!(p(no), None, "{no}");
        }
        assert!(depth(b"a/b") < depth(b"a/b/c.ko"));
    }

    #[test]
    fn a_record_naming_paths_outside_its_tops_is_not_checked_outside_the_root() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::create_dir_all(r.join("lib/modules/k/kernel")).unwrap();
        let root = Root::open(r).unwrap();
        let etc = Stat::from(&rustix::fs::stat("/etc").unwrap());
        let kernel = root.lstat("lib/modules/k/kernel").unwrap();
        let top = root.lstat("lib/modules/k").unwrap();
        let tree = |path: &str, key: &Stat| Tree {
            root: r.as_os_str().as_bytes().to_vec(),
            tops: vec![TopRecord {
                rel: b"lib/modules/k".to_vec(),
                dev: top.dev,
                ino: top.ino,
                entries: vec![(b"kernel".to_vec(), 1)],
            }],
            paths: vec![(
                path.as_bytes().to_vec(),
                resolve::ITSELF,
                1,
                FileKey::from(key),
            )],
            files: Vec::new(),
        };
        let tops = [PathBuf::from("lib/modules/k")];
        let cfg = crate::tree::config::DepmodConfig::default();
        // the record as a walk makes it holds
        assert!(check(
            &root,
            &cfg,
            &tops,
            &tree("lib/modules/k/kernel", &kernel)
        ));
        // the host's /etc, named by `..` or absolutely, with its own key: never stat'ed there
        for p in ["lib/modules/k/../../../../../../../../etc", "/etc", "etc"] {
            assert!(!check(&root, &cfg, &tops, &tree(p, &etc)), "{p}");
        }
        // other top directories than the configuration's now
        let other = [PathBuf::from("lib/modules/k"), PathBuf::from("ext")];
        assert!(!check(
            &root,
            &cfg,
            &other,
            &tree("lib/modules/k/kernel", &kernel)
        ));
    }
}
