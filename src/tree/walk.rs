//! Walking a module tree below a [`Root`]: depth-first in `readdir` order, as kmod's depmod
//! walks, but through directory descriptors: a directory symbolic link is followed only
//! inside the root, and no directory (by device and inode) is entered twice, so a loop of
//! links ends the walk of that branch instead of running forever.

use crate::root::{Dir, Entry, Kind, Root, Stat};
use std::path::{Path, PathBuf};

/// One file the walk found.
#[derive(Debug, Clone)]
pub struct Walked {
    /// The path as kmod forms it (`<dirname>/<rel>`), for indexes and messages.
    pub display: String,
    /// The path inside the root to read it by (for a link whose target names the root by its
    /// outside path, that target).
    pub rel: PathBuf,
    /// The file's `stat` (a link followed inside the root).
    pub stat: Stat,
    /// Reached through a link: `rel` is to be resolved with links followed inside the root
    /// (else it names the file itself, below directories the walk entered).
    pub follow: bool,
    /// In a directory reached through a link (itself or one above it): `rel` names the
    /// entry itself, but the links on the way must be resolved inside the root.
    pub linked: bool,
}

/// One path a walk looked at below its top directory, other than the files it found: a
/// directory (entered, or passed over as one entered before or as its own ancestor), a link
/// (the link itself), or where a link leads.
#[derive(Debug, Clone)]
pub struct Looked {
    /// Inside the root, as the walk resolved it.
    pub rel: PathBuf,
    /// Resolved with links followed inside the root, the last one too (see
    /// [`Walked::follow`]).
    pub follow: bool,
    /// Below a directory reached through a link (see [`Walked::linked`]).
    pub linked: bool,
    /// Its `stat` as the walk saw it (a directory's before reading it).
    pub stat: Stat,
}

/// A walk's top directory (as the walk was given it) and the entries of it the walk acted on
/// ([`relevant`]), in `readdir` order.
#[derive(Debug, Clone)]
pub struct Top {
    pub rel: PathBuf,
    /// Its device and inode (`None`: its `stat` failed).
    pub key: Option<(u64, u64)>,
    pub entries: Vec<Entry>,
}

/// What to do with each entry.
pub trait Visitor: Sync {
    /// Skip this entry name (at any depth)?
    fn skip(&self, name: &str) -> bool;
    /// Is this a file of interest (by its name)?
    fn wants(&self, name: &str) -> bool;
    /// Stop the walk once this many files were found? (By default it goes to the end.)
    fn enough(&self, _found: usize) -> bool {
        false
    }
    /// Walk subdirectories in parallel? (The result is the same as a serial walk's; a visitor
    /// that stops early with [`Visitor::enough`] must say no: the parallel walk reads it
    /// all.)
    fn parallel(&self) -> bool {
        false
    }
    /// Work on a file of interest while its directory is open: `file` is the regular file
    /// `name` of `dir` (not reached through a link of its own), as the walk just `lstat`ed
    /// it. Called in the walk's thread, before the walk goes on; by default nothing.
    fn found(&self, _dir: &Dir, _name: &str, _file: &Walked) {}
}

/// The walk's findings: files in walk order and problems in kmod's words; and, from the
/// parallel walk, every other path it looked at and what it found in each top directory
/// (what a later run checks to know the walk would find the same: see `depmod::snapshot`).
#[derive(Debug, Default)]
pub struct Walk {
    pub files: Vec<Walked>,
    pub problems: Vec<String>,
    pub looked: Vec<Looked>,
    pub tops: Vec<Top>,
    /// Some walk did not record what it looked at (a serial walk, or a `stat` that failed):
    /// `looked` and `tops` are incomplete.
    pub unrecorded: bool,
    /// Set by the caller: record what the walk looks at (`looked`, `tops`; costs a `stat`
    /// per link). Without it, `unrecorded` is set.
    pub record: bool,
}

/// Is the entry `e` one a walk with `v` acts on (enters, follows, reads or reports)?
/// Entries it passes over without a look (names skipped, names that are not valid UTF-8,
/// regular files it does not want) are not.
pub fn relevant(v: &dyn Visitor, e: &crate::root::Entry) -> bool {
    match e.name_str() {
        None => false,
        Some(name) if v.skip(name) => false,
        Some(name) => e.kind != Kind::File || v.wants(name),
    }
}

/// Walk the directory `rel` (inside `root`; links on the way to it followed inside the root),
/// naming what it finds `display/...`. `seen` holds the directories already entered (shared
/// between the walks of one run). Returns `Err` with kmod's message when the directory
/// itself cannot be opened.
pub fn walk(
    root: &Root,
    rel: &Path,
    display: &str,
    v: &dyn Visitor,
    seen: &mut rustc_hash::FxHashSet<(u64, u64)>,
    out: &mut Walk,
) -> Result<(), String> {
    let mut dir = root
        .open_dir(rel)
        .map_err(|e| format!("could not open directory {display}: {}", io_text(&e)))?;
    let key = dir_stat(&dir).ok().map(|st| (st.dev, st.ino));
    if let Some(k) = key {
        seen.insert(k);
    }
    if v.parallel() {
        let ctx = Ctx {
            root,
            v,
            record: out.record,
        };
        out.unrecorded |= !out.record || key.is_none();
        let mut top = Top {
            rel: rel.to_path_buf(),
            key,
            entries: Vec::new(),
        };
        let chain = Chain { key, up: None };
        let items = ctx.items(dir, display, false, &chain, Some(&mut top.entries));
        out.tops.push(top);
        replay_items(items, seen, out);
        return Ok(());
    }
    out.unrecorded = true;
    let mut w = Walker {
        root,
        v,
        seen,
        out,
        buf: Vec::new(),
    };
    let _ = w.walk_dir(&mut dir, display);
    Ok(())
}

/// Walk on, or stop: enough files were found.
type Flow = std::ops::ControlFlow<()>;

fn dir_stat(dir: &Dir) -> std::io::Result<Stat> {
    Ok(Stat {
        kind: Kind::Dir,
        ..Stat::from(&rustix::fs::fstat(dir)?)
    })
}

/// One walk's state: what it walks with and what it found so far.
struct Walker<'a> {
    root: &'a Root,
    v: &'a dyn Visitor,
    seen: &'a mut rustc_hash::FxHashSet<(u64, u64)>,
    out: &'a mut Walk,
    /// The `getdents` buffer, kept from one directory to the next.
    buf: Vec<u8>,
}

impl Walker<'_> {
    fn walk_dir(&mut self, dir: &mut Dir, display: &str) -> Flow {
        let entries = match dir.read_entries(&mut self.buf) {
            Ok(e) => e,
            Err(e) => {
                self.out.problems.push(format!(
                    "could not read directory {display}: {}",
                    io_text(&e)
                ));
                return Flow::Continue(());
            }
        };
        let ctx = Ctx {
            root: self.root,
            v: self.v,
            record: false,
        };
        for e in &entries {
            match ctx.step(dir, display, false, e).0 {
                Step::Nothing => {}
                Step::File(w) => self.out.files.push(w),
                Step::Problem(p) => self.out.problems.push(p),
                Step::Enter(sub, path, _) => self.enter(sub, &path)?,
            }
            if self.v.enough(self.out.files.len()) {
                return Flow::Break(());
            }
        }
        Flow::Continue(())
    }

    /// Enter a subdirectory unless it was entered before (a loop or a second link to it).
    fn enter(&mut self, mut sub: Dir, display: &str) -> Flow {
        match dir_stat(&sub) {
            Ok(st) if !self.seen.insert((st.dev, st.ino)) => Flow::Continue(()),
            _ => self.walk_dir(&mut sub, display),
        }
    }
}

/// What one walk reads with.
#[derive(Clone, Copy)]
struct Ctx<'a> {
    root: &'a Root,
    v: &'a dyn Visitor,
    /// Record what the walk looks at (see [`Looked`]).
    record: bool,
}

/// What one directory entry gives.
enum Step {
    Nothing,
    File(Walked),
    Problem(String),
    /// A directory to enter (unless entered before), its path as shown, and whether it
    /// was reached through a link.
    Enter(Dir, String, bool),
}

impl Ctx<'_> {
    /// The entry `e` of `dir` (shown as `display`; `linked`: reached through a link): files
    /// are stat'ed, directories opened. When recording, a link also gives what the walk saw
    /// of it: the link itself, and where it leads when that is a file (a directory is
    /// recorded as the walk reaches it); `None` when that cannot be had (the walk is then
    /// not recorded).
    fn step(
        &self,
        dir: &Dir,
        display: &str,
        linked: bool,
        e: &Entry,
    ) -> (Step, Option<Vec<Looked>>) {
        let (root, v) = (self.root, self.v);
        let Some(name) = e.name_str() else {
            return (Step::Nothing, Some(Vec::new()));
        };
        if v.skip(name) {
            return (Step::Nothing, Some(Vec::new()));
        }
        let path = format!("{display}/{name}");
        if matches!(e.kind, Kind::Symlink | Kind::Other) {
            let rel = dir.rel().join(name);
            let inner = link_inside(root, dir, name, &rel);
            let target = root.stat(&inner);
            // a link that leads nowhere is a problem: nothing is recorded then anyway
            let looked = match (&target, self.record) {
                (Ok(st), true) => dir.lstat(name).ok().map(|own| {
                    let mut l = vec![Looked {
                        rel,
                        follow: false,
                        linked,
                        stat: own,
                    }];
                    if !st.is_dir() {
                        l.push(Looked {
                            rel: inner.clone(),
                            follow: true,
                            linked,
                            stat: *st,
                        });
                    }
                    l
                }),
                _ => Some(Vec::new()),
            };
            return (self.link_step(display, name, path, inner, target), looked);
        }
        let step = match e.kind {
            // no link is followed: `sub` opens the one component with O_NOFOLLOW
            Kind::Dir => match dir.sub(name) {
                Ok(sub) => Step::Enter(sub, path, false),
                Err(err) => Step::Problem(format!(
                    "openat({display}, {name}, O_RDONLY): {}",
                    io_text(&err)
                )),
            },
            Kind::File if !v.wants(name) => Step::Nothing,
            Kind::File => match dir.lstat(name) {
                Ok(stat) => {
                    let w = Walked {
                        display: path,
                        rel: dir.rel().join(name),
                        stat,
                        follow: false,
                        linked,
                    };
                    if stat.is_file() {
                        v.found(dir, name, &w);
                    }
                    Step::File(w)
                }
                Err(err) => Step::Problem(format!(
                    "fstatat({display}, {name}): {}",
                    crate::error::errno_text(&err)
                )),
            },
            Kind::Symlink | Kind::Other => unreachable!("handled above"),
        };
        (step, Some(Vec::new()))
    }

    /// A link's step (or an entry of another type, which `stat` then reports): where it
    /// leads (`inner`, with its `target` stat) is entered or found as the entry itself.
    fn link_step(
        &self,
        display: &str,
        name: &str,
        path: String,
        inner: PathBuf,
        target: std::io::Result<Stat>,
    ) -> Step {
        match target {
            Ok(st) if st.is_dir() => match self.root.open_dir(&inner) {
                Ok(sub) => Step::Enter(sub, path, true),
                Err(err) => Step::Problem(format!(
                    "openat({display}, {name}, O_RDONLY): {}",
                    io_text(&err)
                )),
            },
            Ok(st) if st.is_file() => match self.v.wants(name) {
                true => Step::File(Walked {
                    display: path,
                    rel: inner,
                    stat: st,
                    follow: true,
                    linked: false,
                }),
                false => Step::Nothing,
            },
            Ok(st) => Step::Problem(format!(
                "unsupported file type {path}: {:o}",
                st.mode & 0o170000
            )),
            Err(err) => Step::Problem(format!(
                "fstatat({display}, {name}): {}",
                crate::error::errno_text(&err)
            )),
        }
    }
}

// The parallel walk. Each directory's entries are handled in parallel (rayon keeps their
// order), each subdirectory giving a `Node` of what it holds; then the tree of nodes is
// replayed in `readdir` order against the seen-set, as the serial walk would have met it.
// While collecting, a directory is cut short only when it is one of its own ancestors (a
// loop): the serial walk has those in its seen-set too, so the replay skips them the same
// way. A directory reached twice otherwise (two links to it) is collected twice, and the
// replay keeps the first, as the serial walk does.

/// The directories above the one being collected (by device and inode).
struct Chain<'a> {
    key: Option<(u64, u64)>,
    up: Option<&'a Chain<'a>>,
}

impl Chain<'_> {
    fn has(&self, key: (u64, u64)) -> bool {
        self.key == Some(key) || self.up.is_some_and(|u| u.has(key))
    }
}

/// One directory's findings, in `readdir` order.
struct Node {
    key: Option<(u64, u64)>,
    /// The directory as the walk reached it (`None`: its `stat` failed).
    dir: Option<Looked>,
    items: Vec<Item>,
}

enum Item {
    File(Walked),
    Problem(String),
    Sub(Node),
    /// What the walk saw of a link (`None`: it could not be had).
    Looked(Option<Vec<Looked>>),
}

thread_local! {
    /// Each thread's `getdents` buffer, kept from one directory to the next.
    static DIRENT_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Ctx<'_> {
    /// What `dir` holds (its subdirectories collected in parallel; `linked`: reached through
    /// a link). `top`, when given, receives the [`relevant`] entries of `dir` itself.
    fn items(
        &self,
        mut dir: Dir,
        display: &str,
        linked: bool,
        chain: &Chain,
        top: Option<&mut Vec<Entry>>,
    ) -> Vec<Item> {
        use rayon::prelude::*;
        let entries = DIRENT_BUF.with(|b| dir.read_entries(&mut b.borrow_mut()));
        let entries = match entries {
            Ok(e) => e,
            Err(e) => {
                return vec![Item::Problem(format!(
                    "could not read directory {display}: {}",
                    io_text(&e)
                ))];
            }
        };
        if let Some(top) = top {
            top.extend(entries.iter().filter(|e| relevant(self.v, e)).cloned());
        }
        let steps: Vec<[Option<Item>; 2]> = entries
            .par_iter()
            .with_max_len(16)
            .map(|e| {
                let (step, looked) = self.step(&dir, display, linked, e);
                let item = match step {
                    Step::Nothing => None,
                    Step::File(w) => Some(Item::File(w)),
                    Step::Problem(p) => Some(Item::Problem(p)),
                    Step::Enter(sub, path, follow) => {
                        Some(Item::Sub(self.node(sub, &path, follow, linked, chain)))
                    }
                };
                let any = looked.as_ref().is_none_or(|l| !l.is_empty());
                [any.then_some(Item::Looked(looked)), item]
            })
            .collect();
        steps.into_iter().flatten().flatten().collect()
    }

    /// A subdirectory's node (`follow`: reached through a link; `linked`: in a directory
    /// that was): empty when it is one of its own ancestors.
    fn node(&self, sub: Dir, display: &str, follow: bool, linked: bool, chain: &Chain) -> Node {
        let dir = dir_stat(&sub).ok().map(|stat| Looked {
            rel: sub.rel().to_path_buf(),
            follow,
            linked,
            stat,
        });
        let key = dir.as_ref().map(|d| (d.stat.dev, d.stat.ino));
        if key.is_some_and(|k| chain.has(k)) {
            return Node {
                key,
                dir,
                items: Vec::new(),
            };
        }
        let items = self.items(
            sub,
            display,
            linked || follow,
            &Chain {
                key,
                up: Some(chain),
            },
            None,
        );
        Node { key, dir, items }
    }
}

/// Replay collected findings in order, skipping each directory entered before.
fn replay_items(items: Vec<Item>, seen: &mut rustc_hash::FxHashSet<(u64, u64)>, out: &mut Walk) {
    for item in items {
        match item {
            Item::File(w) => out.files.push(w),
            Item::Problem(p) => out.problems.push(p),
            Item::Looked(Some(l)) => out.looked.extend(l),
            Item::Looked(None) => out.unrecorded = true,
            Item::Sub(n) => {
                // recorded whether entered or passed over (what the path leads to decides)
                match n.dir {
                    Some(d) if out.record => out.looked.push(d),
                    Some(_) => {}
                    None => out.unrecorded = true,
                }
                if n.key.is_none_or(|k| seen.insert(k)) {
                    replay_items(n.items, seen, out);
                }
            }
        }
    }
}

/// Where the entry `name` (at `rel`) leads inside the root: itself, or, for a link whose
/// target names the root by its outside path (as RHEL's `weak-modules --basedir` writes
/// its links), that target inside the root.
fn link_inside(root: &Root, dir: &Dir, name: &str, rel: &Path) -> PathBuf {
    if !root.is_host()
        && let Ok(t) = dir.read_link(name)
        && t.is_absolute()
        && let Some(inner) = root.inside(&t)
    {
        return inner;
    }
    rel.to_path_buf()
}

/// An error of kabi's as C's `%m` would print it.
fn io_text(e: &crate::Error) -> String {
    match e {
        crate::Error::Io { source, .. } => crate::error::errno_text(source),
        e => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    struct Ko;
    impl Visitor for Ko {
        fn skip(&self, name: &str) -> bool {
            name == "build"
        }
        fn wants(&self, name: &str) -> bool {
            name.ends_with(".ko")
        }
    }

    /// The order of a depth-first walk in `readdir` order, as `std::fs::read_dir` lists.
    fn reference(dir: &Path, shown: &str, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().into_string().unwrap();
            let t = e.file_type().unwrap();
            if name == "build" {
                continue;
            }
            if t.is_dir() {
                reference(&e.path(), &format!("{shown}/{name}"), out);
            } else if t.is_file() && name.ends_with(".ko") {
                out.push(format!("{shown}/{name}"));
            }
        }
    }

    #[test]
    fn walks_in_readdir_order_through_large_directories() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        // more entries than one getdents buffer holds, names long enough to fill it
        let long = "x".repeat(200);
        for d in ["k/a", "k/b/c", "k/build/d", "k/e"] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        for i in 0..600 {
            std::fs::write(r.join(format!("k/a/{long}{i}.ko")), b"x").unwrap();
        }
        for f in [
            "k/b/c/m.ko",
            "k/b/n.ko",
            "k/build/d/no.ko",
            "k/e/o.ko",
            "k/p.ko",
            "k/q.txt",
        ] {
            std::fs::write(r.join(f), b"x").unwrap();
        }
        let mut want = Vec::new();
        reference(&r.join("k"), "/k", &mut want);
        assert_eq!(want.len(), 604);
        let root = Root::open(r).unwrap();
        let mut w = Walk::default();
        walk(
            &root,
            Path::new("k"),
            "/k",
            &Ko,
            &mut Default::default(),
            &mut w,
        )
        .unwrap();
        let got: Vec<&str> = w.files.iter().map(|f| f.display.as_str()).collect();
        assert_eq!(got, want);
        assert!(w.problems.is_empty(), "{:?}", w.problems);
        // a directory is read once from its own descriptor: a second read finds nothing
        let mut d = root.open_dir("k/a").unwrap();
        let mut buf = Vec::new();
        assert_eq!(d.read_entries(&mut buf).unwrap().len(), 600);
        assert!(d.read_entries(&mut buf).unwrap().is_empty());
        assert_eq!(d.entries().unwrap().len(), 600, "entries reads anew");
    }

    struct KoParallel;
    impl Visitor for KoParallel {
        fn skip(&self, name: &str) -> bool {
            Ko.skip(name)
        }
        fn wants(&self, name: &str) -> bool {
            Ko.wants(name)
        }
        fn parallel(&self) -> bool {
            true
        }
    }

    /// Files (shown path, path inside the root) and problems of one walk of `k` and then of
    /// `ext`, sharing the seen-set as a depmod run's walks do.
    fn walk_twice(root: &Root, v: &dyn Visitor) -> (Vec<(String, PathBuf)>, Vec<String>) {
        let mut w = Walk::default();
        let mut seen = Default::default();
        walk(root, Path::new("k"), "/k", v, &mut seen, &mut w).unwrap();
        walk(root, Path::new("ext"), "/ext", v, &mut seen, &mut w).unwrap();
        let files = w.files.into_iter().map(|f| (f.display, f.rel)).collect();
        (files, w.problems)
    }

    #[test]
    fn the_parallel_walk_finds_what_the_serial_walk_finds_in_its_order() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        for d in ["k/a/b/c", "k/d/e", "k/f", "shared/g", "ext/h"] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        for i in 0..40 {
            std::fs::write(r.join(format!("k/f/m{i}.ko")), b"x").unwrap();
            std::fs::create_dir(r.join(format!("k/d/e/s{i}"))).unwrap();
            std::fs::write(r.join(format!("k/d/e/s{i}/n{i}.ko")), b"x").unwrap();
        }
        for f in [
            "k/a/b/c/o.ko",
            "k/a/p.ko",
            "shared/g/q.ko",
            "shared/r.ko",
            "ext/h/s.ko",
        ] {
            std::fs::write(r.join(f), b"x").unwrap();
        }
        // loops, the same directory by two links and as itself, links out, broken links
        symlink("..", r.join("k/a/b/up")).unwrap();
        symlink("/k", r.join("k/a/top")).unwrap();
        symlink("/shared", r.join("k/a/one")).unwrap();
        symlink("../../shared", r.join("k/d/two")).unwrap();
        symlink("/shared/g", r.join("k/f/three")).unwrap();
        symlink("/k/a", r.join("ext/again")).unwrap();
        symlink("/nowhere", r.join("k/d/broken")).unwrap();
        symlink("/shared/r.ko", r.join("k/f/linked.ko")).unwrap();
        let root = Root::open(r).unwrap();
        let serial = walk_twice(&root, &Ko);
        let parallel = walk_twice(&root, &KoParallel);
        assert_eq!(parallel, serial);
        // the shared directory's files once, the problems reported
        let q = serial
            .0
            .iter()
            .filter(|(d, _)| d.ends_with("/q.ko"))
            .count();
        assert_eq!(q, 1, "{:?}", serial.0);
        assert_eq!(serial.0.len(), 40 + 40 + 6, "{:?}", serial.0);
        assert_eq!(
            serial.1,
            ["fstatat(/k/d, broken): No such file or directory"]
        );
    }

    #[test]
    fn loops_end_and_links_stay_inside() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path().join("r");
        let outside = t.path().join("outside");
        std::fs::create_dir_all(r.join("k/a/b")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("evil.ko"), b"x").unwrap();
        std::fs::write(r.join("k/a/b/m.ko"), b"x").unwrap();
        std::fs::write(r.join("k/a/n.ko"), b"x").unwrap();
        // two loops and a way out
        symlink("..", r.join("k/a/b/up")).unwrap();
        symlink("/k", r.join("k/a/top")).unwrap();
        symlink(&outside, r.join("k/out")).unwrap();
        let root = Root::open(&r).unwrap();
        let mut w = Walk::default();
        let mut seen = Default::default();
        walk(&root, Path::new("k"), "/k", &Ko, &mut seen, &mut w).unwrap();
        let mut names: Vec<&str> = w.files.iter().map(|f| f.display.as_str()).collect();
        names.sort();
        assert_eq!(names, ["/k/a/b/m.ko", "/k/a/n.ko"]);
        // the way out resolves inside the root, where there is no such directory
        assert!(
            w.problems == ["fstatat(/k, out): No such file or directory"],
            "{:?}",
            w.problems
        );
    }
}
