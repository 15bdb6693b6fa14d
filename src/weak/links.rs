//! Replacing a kernel's whole `weak-updates/` tree in one atomic step, through directory
//! descriptors only.
//!
//! The new tree is built in `.weak-updates.kabi-<pid>` beside the old one (the module links,
//! plus hard links to every other entry and copies of other links, so nothing else is lost),
//! flushed, then exchanged with the old tree by `renameat2(RENAME_EXCHANGE)` (or renamed into
//! place when there is none). The old tree, now under the temporary name, is taken apart:
//! only symbolic links, entries that also exist (same inode) in the new tree, and emptied
//! directories are removed; anything else is put aside as `weak-updates.kabi-leftover-*`.
//! Every step goes through a directory descriptor and never follows a link.

use super::state::{LEFTOVER_PREFIX, Other, STAGING_PREFIX};
use crate::error::Error;
use crate::root::{Dir, Kind};
use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

/// Link path relative to `weak-updates/` → the link's target, as stored.
pub type Links = BTreeMap<PathBuf, PathBuf>;

/// The staging tree of this process.
pub fn staging_name() -> OsString {
    format!("{STAGING_PREFIX}{}", std::process::id()).into()
}

fn io(dir: &Dir, name: impl AsRef<Path>) -> impl FnOnce(std::io::Error) -> Error {
    let shown = dir.show(name);
    move |e| Error::io(shown, e)
}

/// The parent directory of `rel` below `top`, made if missing, and the last component.
fn parent_of<'a>(top: &Dir, rel: &'a Path, create: bool) -> Result<(Dir, &'a OsStr), Error> {
    let name = rel
        .file_name()
        .ok_or_else(|| Error::io(top.show(rel), std::io::Error::other("not a file name")))?;
    let parent = rel.parent().unwrap_or(Path::new(""));
    let dir = if create {
        top.create_sub(parent)?
    } else {
        top.sub(parent)?
    };
    Ok((dir, name))
}

/// Replace `weak-updates/` of the kernel directory `kdir` by a tree holding exactly `links`,
/// keeping every entry of `others`. The caller holds the modules lock and has removed stale
/// staging trees.
pub fn replace(kdir: &Dir, links: &Links, others: &[Other]) -> Result<(), Error> {
    let staging = staging_name();
    if kdir.lstat(&staging).is_ok() {
        dismantle(kdir, &staging, None)?;
    }
    kdir.mkdir(&staging, 0o755).map_err(io(kdir, &staging))?;
    let new = kdir.sub(&staging)?;
    crate::crash::point();
    for (rel, target) in links {
        let (dir, name) = parent_of(&new, rel, true)?;
        dir.symlink(target, name).map_err(io(&dir, name))?;
        crate::crash::point();
    }
    let old = match kdir.lstat("weak-updates") {
        Ok(s) if s.kind == Kind::Dir => Some(kdir.sub("weak-updates")?),
        _ => None,
    };
    if let Some(old) = &old {
        for o in others {
            let (to, name) = parent_of(&new, o.path(), true)?;
            match o {
                Other::Entry(p) => {
                    let (from, _) = parent_of(old, p, false)?;
                    from.hard_link(name, &to, name).map_err(io(&to, name))?;
                }
                Other::Link(_, target) => to.symlink(target, name).map_err(io(&to, name))?,
            }
        }
    }
    // the new tree on disk before it takes the old one's place: each of its directories
    // flushed (its entries, and with them the links and hard links made in it), not the
    // whole file system (`syncfs` would also write out every other process's dirty data:
    // seconds on a busy host)
    for rel in tree_dirs(
        links
            .keys()
            .map(PathBuf::as_path)
            .chain(others.iter().map(Other::path)),
    ) {
        let synced = if rel.as_os_str().is_empty() {
            new.sync()
        } else {
            new.sub(&rel)?.sync()
        };
        synced.map_err(io(&new, &rel))?;
    }
    crate::crash::point();
    match old {
        Some(old) => {
            kdir.exchange(&staging, kdir, "weak-updates")
                .map_err(io(kdir, "weak-updates"))?;
            kdir.sync().map_err(io(kdir, ""))?;
            crate::crash::point();
            // `old` now names the new tree (descriptors follow the directory, not the name)
            let _ = old;
            let fresh = kdir.sub("weak-updates")?;
            dismantle(kdir, &staging, Some(&fresh))?;
        }
        None => {
            kdir.rename_noreplace(&staging, kdir, "weak-updates")
                .map_err(io(kdir, "weak-updates"))?;
            kdir.sync().map_err(io(kdir, ""))?;
        }
    }
    crate::crash::point();
    Ok(())
}

/// Every directory of a tree holding `paths` (relative to its top, which is `""` and always
/// one of them), the deepest first.
fn tree_dirs<'a>(paths: impl Iterator<Item = &'a Path>) -> Vec<PathBuf> {
    let mut dirs = std::collections::BTreeSet::from([PathBuf::new()]);
    for p in paths {
        dirs.extend(p.ancestors().skip(1).map(Path::to_path_buf));
    }
    let mut v: Vec<PathBuf> = dirs.into_iter().collect();
    v.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    v
}

/// Take apart the tree `name` of `kdir` (a staging tree, or the old tree after the
/// exchange): remove symbolic links, entries that also exist (same inode) at the same place
/// below `keep`, then emptied directories. If anything else remains, the tree is renamed to
/// `weak-updates.kabi-leftover-<time>` rather than lost. Returns the leftover's name, if any.
pub fn dismantle(kdir: &Dir, name: &OsStr, keep: Option<&Dir>) -> Result<Option<OsString>, Error> {
    fn walk(dir: &Dir, keep: Option<&Dir>) -> Result<bool, Error> {
        let mut empty = true;
        for e in dir.entries()? {
            let n = &e.name;
            match e.kind {
                Kind::Dir => {
                    let sub = dir.sub(n)?;
                    let keep_sub = keep.and_then(|k| k.sub(n).ok());
                    if walk(&sub, keep_sub.as_ref())? {
                        dir.rmdir(n).map_err(io(dir, n))?;
                    } else {
                        empty = false;
                    }
                }
                Kind::Symlink => dir.unlink(n).map_err(io(dir, n))?,
                _ => {
                    let twin = keep.and_then(|k| k.lstat(n).ok());
                    let me = dir.lstat(n).map_err(io(dir, n))?;
                    match twin {
                        Some(t) if t.ino == me.ino && t.dev == me.dev => {
                            dir.unlink(n).map_err(io(dir, n))?
                        }
                        _ => empty = false,
                    }
                }
            }
        }
        Ok(empty)
    }
    let tree = kdir.sub(name)?;
    if walk(&tree, keep)? {
        kdir.rmdir(name).map_err(io(kdir, name))?;
        kdir.sync().map_err(io(kdir, ""))?;
        return Ok(None);
    }
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let aside: OsString = format!("{LEFTOVER_PREFIX}{secs}-{}", std::process::id()).into();
    kdir.rename_noreplace(name, kdir, &aside)
        .map_err(io(kdir, name))?;
    kdir.sync().map_err(io(kdir, ""))?;
    Ok(Some(aside))
}

/// Every module link below a directory (outside any root; for tests and tools): relative
/// path → target as stored. Nothing is followed.
pub fn read(dir: &Path) -> (Links, Vec<PathBuf>) {
    let mut links = Links::new();
    let mut others = Vec::new();
    let Ok(root) = crate::root::Root::open(dir) else {
        return (links, others);
    };
    let Ok(top) = root.open_dir("") else {
        return (links, others);
    };
    fn walk(d: &Dir, rel: &Path, links: &mut Links, others: &mut Vec<PathBuf>) {
        let Ok(entries) = d.entries() else { return };
        for e in entries {
            let r = rel.join(&e.name);
            match e.kind {
                Kind::Dir => {
                    if let Ok(sub) = d.sub(&e.name) {
                        walk(&sub, &r, links, others);
                    }
                }
                Kind::Symlink
                    if e.name
                        .to_str()
                        .and_then(crate::module::strip_module_ext)
                        .is_some() =>
                {
                    if let Ok(t) = d.read_link(&e.name) {
                        links.insert(r, t);
                    }
                }
                _ => others.push(r),
            }
        }
    }
    walk(&top, Path::new(""), &mut links, &mut others);
    others.sort();
    (links, others)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::root::Root;

    #[test]
    fn every_directory_of_the_tree_is_flushed_deepest_first() {
        let paths: Vec<PathBuf> = ["extra/a/x.ko", "extra/b.ko", "top.ko", "extra/a/y.ko"]
            .iter()
            .map(PathBuf::from)
            .collect();
        let dirs = tree_dirs(paths.iter().map(PathBuf::as_path));
        let shown: Vec<&str> = dirs.iter().map(|d| d.to_str().unwrap()).collect();
        assert_eq!(shown, ["extra/a", "extra", ""]);
        assert_eq!(tree_dirs(std::iter::empty()), [PathBuf::new()]);
    }

    #[test]
    fn replace_keeps_other_entries_and_is_exact() {
        let tmp = tempfile::tempdir().unwrap();
        let k = tmp.path().join("k");
        let weak = k.join("weak-updates");
        std::fs::create_dir_all(weak.join("a")).unwrap();
        std::os::unix::fs::symlink("/x/old.ko", weak.join("a/old.ko")).unwrap();
        std::fs::write(weak.join("a/real.ko"), b"a real file").unwrap();
        std::os::unix::fs::symlink("/somewhere", weak.join("dirlink")).unwrap();
        let root = Root::open(tmp.path()).unwrap();
        let kdir = root.open_dir("k").unwrap();
        let st = crate::weak::state::read(&root, &kdir, "k").unwrap();
        assert_eq!(st.links.len(), 1);
        assert_eq!(
            st.others,
            [
                Other::Entry("a/real.ko".into()),
                Other::Link("dirlink".into(), "/somewhere".into())
            ]
        );
        let mut after = Links::new();
        after.insert("b/new.ko".into(), "/x/new.ko".into());
        replace(&kdir, &after, &st.others).unwrap();
        let (now, others2) = read(&weak);
        assert_eq!(now, after);
        assert_eq!(
            others2,
            [PathBuf::from("a/real.ko"), PathBuf::from("dirlink")]
        );
        assert_eq!(
            std::fs::read(weak.join("a/real.ko")).unwrap(),
            b"a real file"
        );
        assert_eq!(
            std::fs::read_link(weak.join("dirlink")).unwrap(),
            Path::new("/somewhere")
        );
        // nothing left beside it
        let names: Vec<String> = std::fs::read_dir(&k)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["weak-updates"]);
        // from nothing
        std::fs::create_dir_all(tmp.path().join("j")).unwrap();
        let jdir = root.open_dir("j").unwrap();
        replace(&jdir, &after, &[]).unwrap();
        assert_eq!(read(&tmp.path().join("j/weak-updates")).0, after);
    }
}
