//! A kernel's `weak-updates/` tree: reading its links, and replacing the whole tree in one
//! atomic step.
//!
//! The new tree is built in `.weak-updates.kabi-<pid>` beside the old one (symbolic links,
//! plus hard links to any file that is not a symbolic link, so nothing else is lost), then
//! exchanged with the old tree by `renameat2(RENAME_EXCHANGE)` (or renamed into place when
//! there is none). The old tree, now under the temporary name, is taken apart: only symbolic
//! links, files that also exist in the new tree, and directories are removed. A temporary
//! tree left by a crash is cleaned up the same way by the next run.

use rustix::fs::{CWD, RenameFlags, renameat_with};
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Link path relative to `weak-updates/` → the link's target, as stored.
pub type Links = BTreeMap<PathBuf, PathBuf>;

const STAGING_PREFIX: &str = ".weak-updates.kabi-";

/// Fault injection for tests: `KABI_CRASH_AT=N` aborts the process at the N-th crash point
/// (counted over the whole run), as a power cut would.
pub fn crash_point() {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNT: AtomicU64 = AtomicU64::new(0);
    static AT: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    let at = *AT.get_or_init(|| {
        std::env::var("KABI_CRASH_AT")
            .ok()
            .and_then(|v| v.parse().ok())
    });
    if let Some(at) = at {
        if COUNT.fetch_add(1, Ordering::SeqCst) + 1 == at {
            std::process::abort();
        }
    }
}

/// The module links below `dir` (symbolic links whose name is a module file name), and the
/// other entries that are not directories (never touched).
pub fn read(dir: &Path) -> (Links, Vec<PathBuf>) {
    let mut links = Links::new();
    let mut others = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(t) = e.file_type() else { continue };
            let rel = p.strip_prefix(dir).unwrap_or(&p).to_path_buf();
            if t.is_dir() {
                stack.push(p);
            } else if t.is_symlink()
                && crate::module::strip_module_ext(&e.file_name().to_string_lossy()).is_some()
            {
                if let Ok(target) = std::fs::read_link(&p) {
                    links.insert(rel, target);
                }
            } else {
                others.push(rel);
            }
        }
    }
    (links, others)
}

/// Replace the tree at `weak` (a kernel's `weak-updates/`) by one holding exactly `links`,
/// keeping every entry of `others` (relative paths of non-link files) in place.
pub fn replace(weak: &Path, links: &Links, others: &[PathBuf]) -> std::io::Result<()> {
    let parent = weak.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(parent)?;
    let staging = parent.join(format!("{STAGING_PREFIX}{}", std::process::id()));
    if staging.exists() {
        dismantle(&staging, None)?;
    }
    std::fs::create_dir(&staging)?;
    crash_point();
    for (rel, target) in links {
        let p = staging.join(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d)?;
        }
        std::os::unix::fs::symlink(target, &p)?;
        crash_point();
    }
    for rel in others {
        let p = staging.join(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d)?;
        }
        std::fs::hard_link(weak.join(rel), &p)?;
    }
    crash_point();
    if std::fs::symlink_metadata(weak).is_ok() {
        renameat_with(CWD, &staging, CWD, weak, RenameFlags::EXCHANGE)?;
        crash_point();
        dismantle(&staging, Some(weak))?;
    } else {
        std::fs::rename(&staging, weak)?;
    }
    crash_point();
    Ok(())
}

/// Remove what a crashed run left beside `weak`.
pub fn clean_stale(weak: &Path) {
    let Some(parent) = weak.parent() else { return };
    let Ok(rd) = std::fs::read_dir(parent) else {
        return;
    };
    for e in rd.flatten() {
        if e.file_name().to_string_lossy().starts_with(STAGING_PREFIX) {
            let _ = dismantle(&e.path(), Some(weak));
        }
    }
}

/// Take apart a temporary tree: remove symbolic links, files that also exist (same inode)
/// in `keep` at the same relative path, then empty directories. Anything else stays, and
/// the tree is then renamed aside rather than lost.
fn dismantle(tree: &Path, keep: Option<&Path>) -> std::io::Result<()> {
    fn walk(dir: &Path, rel: &Path, keep: Option<&Path>) -> bool {
        let mut empty = true;
        let Ok(rd) = std::fs::read_dir(dir) else {
            return false;
        };
        for e in rd.flatten() {
            let p = e.path();
            let r = rel.join(e.file_name());
            let Ok(t) = e.file_type() else {
                empty = false;
                continue;
            };
            if t.is_dir() {
                if walk(&p, &r, keep) {
                    let _ = std::fs::remove_dir(&p);
                } else {
                    empty = false;
                }
            } else if t.is_symlink() {
                let _ = std::fs::remove_file(&p);
            } else {
                let twin = keep.and_then(|k| std::fs::symlink_metadata(k.join(&r)).ok());
                let me = std::fs::symlink_metadata(&p).ok();
                match (twin, me) {
                    (Some(a), Some(b)) if a.ino() == b.ino() && a.dev() == b.dev() => {
                        let _ = std::fs::remove_file(&p);
                    }
                    _ => empty = false,
                }
            }
        }
        empty
    }
    if walk(tree, Path::new(""), keep) {
        std::fs::remove_dir(tree)
    } else {
        let aside = tree.with_file_name(format!(
            "weak-updates.kabi-leftover-{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        ));
        std::fs::rename(tree, aside)
    }
}

/// An exclusive lock held for the whole run (on the modules directory itself: nothing is
/// created for it).
pub struct Lock(#[allow(dead_code)] std::fs::File);

pub fn lock(modules_dir: &Path) -> std::io::Result<Lock> {
    let f = std::fs::File::open(modules_dir)?;
    rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)?;
    Ok(Lock(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_keeps_other_files_and_is_exact() {
        let tmp = tempfile::tempdir().unwrap();
        let weak = tmp.path().join("k/weak-updates");
        std::fs::create_dir_all(weak.join("a")).unwrap();
        std::os::unix::fs::symlink("/x/old.ko", weak.join("a/old.ko")).unwrap();
        std::fs::write(weak.join("a/real.ko"), b"a real file").unwrap();
        let (before, others) = read(&weak);
        assert_eq!(before.len(), 1);
        assert_eq!(others, [PathBuf::from("a/real.ko")]);
        let mut after = Links::new();
        after.insert("b/new.ko".into(), "/x/new.ko".into());
        replace(&weak, &after, &others).unwrap();
        let (now, others2) = read(&weak);
        assert_eq!(now, after);
        assert_eq!(others2, others);
        assert_eq!(
            std::fs::read(weak.join("a/real.ko")).unwrap(),
            b"a real file"
        );
        // nothing left beside it
        let names: Vec<String> = std::fs::read_dir(tmp.path().join("k"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["weak-updates"]);
        // from nothing
        let fresh = tmp.path().join("j/weak-updates");
        replace(&fresh, &after, &[]).unwrap();
        assert_eq!(read(&fresh).0, after);
    }
}
