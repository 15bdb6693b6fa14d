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

use super::Chosen;
use super::cache::{FileKey, Tree, resolve};
use crate::root::{Kind, Root, Stat};
use crate::tree::walk::{self, Visitor, Walk, Walked};
use std::ffi::OsStr;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
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

/// A path below a top directory, relative to it: only names (no `..`, no root).
fn below<'p>(rel: &'p Path, top: &Path) -> Option<&'p Path> {
    let top = top.strip_prefix("/").unwrap_or(top);
    let rest = rel.strip_prefix(top).ok()?;
    let names = rest.components().all(|c| matches!(c, Component::Normal(_)));
    (names && !rest.as_os_str().is_empty()).then_some(rest)
}

/// The files the walk recorded in `tree` chose, if a walk with `v` from the top directories
/// `tops` (inside the root, in walk order) would find them again as they were: `None` as
/// soon as anything differs (the caller then walks).
pub fn check(root: &Root, v: &dyn Visitor, tops: &[PathBuf], tree: &Tree) -> Option<Vec<Chosen>> {
    use rayon::prelude::*;
    if tree.root != root.path().as_os_str().as_bytes() || tree.tops.len() != tops.len() {
        return None;
    }
    let mut buf = Vec::new();
    let mut opened = Vec::with_capacity(tops.len());
    for ((rel, entries), now_rel) in tree.tops.iter().zip(tops) {
        if rel.as_slice() != now_rel.as_os_str().as_bytes() {
            return None;
        }
        let mut d = root.open_dir(now_rel).ok()?;
        let now = d.read_entries(&mut buf).ok()?;
        let mut now = now.iter().filter(|e| walk::relevant(v, e));
        let same = entries.iter().all(|(name, kind)| {
            now.next()
                .is_some_and(|e| e.name.as_bytes() == name && kind_code(e.kind) == *kind)
        }) && now.next().is_none();
        if !same {
            return None;
        }
        opened.push((now_rel.as_path(), d));
    }
    // each path resolved as the walk resolved it: an entry itself from the top directory it
    // is below (the deepest, names only: the walk opened one component after another); one
    // reached through a link, or below a directory that was, with links resolved inside the
    // root
    let key_of = |rel: &Path, how: u8| -> Option<Stat> {
        match how {
            resolve::FOLLOW => root.stat(rel).ok(),
            resolve::IN_ROOT => root.lstat(rel).ok(),
            _ => {
                let (d, rest) = opened
                    .iter()
                    .filter_map(|(top, d)| Some((d, below(rel, top)?)))
                    .min_by_key(|(_, rest)| rest.components().count())?;
                let st = rustix::fs::statat(d.as_fd(), rest, rustix::fs::AtFlags::SYMLINK_NOFOLLOW);
                Some(Stat::from(&st.ok()?))
            }
        }
    };
    let same = |(rel, how, kind, key): &(&Path, u8, u8, FileKey)| {
        key_of(rel, *how).is_some_and(|st| match *kind {
            TOP => st.is_dir() && (st.dev, st.ino) == (key.dev, key.ino),
            k => k == kind_code(st.kind) && FileKey::from(&st) == *key,
        })
    };
    // shallower paths first, each depth in parallel: a path's directories are known to be
    // the directories they were (not links) before a `stat` goes through them
    let mut all: Vec<(&Path, u8, u8, FileKey)> = tree
        .paths
        .iter()
        .map(|(rel, how, kind, key)| (Path::new(OsStr::from_bytes(rel)), *how, *kind, *key))
        .chain(tree.files.iter().map(|(_, rel, how, key)| {
            let rel = Path::new(OsStr::from_bytes(rel));
            (rel, *how, kind_code(Kind::File), *key)
        }))
        .collect();
    all.sort_by_cached_key(|(rel, _, _, _)| rel.components().count());
    for depth in all.chunk_by(|a, b| a.0.components().count() == b.0.components().count()) {
        if !depth.par_iter().with_min_len(64).all(same) {
            return None;
        }
    }
    Some(
        tree.files
            .iter()
            .map(|(shown, rel, _, key)| Chosen {
                display: shown.clone(),
                rel: PathBuf::from(OsStr::from_bytes(rel)),
                key: Ok(*key),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_below_a_top_is_names_only() {
        let top = Path::new("lib/modules/k");
        let p = |s: &str| below(Path::new(s), top).map(Path::to_path_buf);
        assert_eq!(p("lib/modules/k/kernel/a.ko"), Some("kernel/a.ko".into()));
        assert_eq!(
            below(Path::new("lib/modules/k/x"), Path::new("/lib/modules/k")),
            Some(Path::new("x"))
        );
        assert_eq!(p("lib/modules/k"), None);
        assert_eq!(p("lib/modules/k/../../../etc"), None);
        assert_eq!(p("lib/modules/k/kernel/../../../../etc"), None);
        assert_eq!(p("lib/modules/other/a.ko"), None);
        assert_eq!(p("/etc"), None);
    }

    struct Ko;
    impl Visitor for Ko {
        fn skip(&self, _: &str) -> bool {
            false
        }
        fn wants(&self, name: &str) -> bool {
            name.ends_with(".ko")
        }
    }

    #[test]
    fn a_record_naming_paths_outside_its_tops_is_not_checked_outside_the_root() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::create_dir_all(r.join("lib/modules/k/kernel")).unwrap();
        let root = Root::open(r).unwrap();
        let etc = Stat::from(&rustix::fs::stat("/etc").unwrap());
        let kernel = root.lstat("lib/modules/k/kernel").unwrap();
        let tree = |path: &str, key: &Stat| Tree {
            root: r.as_os_str().as_bytes().to_vec(),
            tops: vec![(b"lib/modules/k".to_vec(), vec![(b"kernel".to_vec(), 1)])],
            paths: vec![(
                path.as_bytes().to_vec(),
                resolve::ITSELF,
                1,
                FileKey::from(key),
            )],
            files: Vec::new(),
        };
        let tops = [PathBuf::from("lib/modules/k")];
        // the record as a walk makes it holds
        assert_eq!(
            check(&root, &Ko, &tops, &tree("lib/modules/k/kernel", &kernel)).map(|f| f.len()),
            Some(0)
        );
        // the host's /etc, named by `..` or absolutely, with its own key: never stat'ed there
        for p in ["lib/modules/k/../../../../../../../../etc", "/etc", "etc"] {
            assert_eq!(
                check(&root, &Ko, &tops, &tree(p, &etc)).map(|f| f.len()),
                None,
                "{p}"
            );
        }
        // other top directories than the configuration's now
        let other = [PathBuf::from("lib/modules/k"), PathBuf::from("ext")];
        assert!(check(&root, &Ko, &other, &tree("lib/modules/k/kernel", &kernel)).is_none());
    }
}
