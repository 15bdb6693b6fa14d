//! What a kernel's module directory holds of weak-updates, read without following any link:
//! the module links of `weak-updates/`, the other entries there (kept as they are), the
//! staging trees a crashed run left beside it, and a pending transaction.

use super::Links;
use super::txn::Record;
use crate::error::Error;
use crate::root::{Dir, Kind, Root};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The name of the temporary tree a run builds beside `weak-updates/`.
pub const STAGING_PREFIX: &str = ".weak-updates.kabi-";
/// Where a taken-apart tree that still held something else is put aside.
pub const LEFTOVER_PREFIX: &str = "weak-updates.kabi-leftover-";

/// An entry of `weak-updates/` that is not a module link: kept as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Other {
    /// A file, FIFO, device...: hard-linked into the new tree.
    Entry(PathBuf),
    /// A symbolic link that does not name a module (to a directory, say): made again with
    /// the same target, never followed.
    Link(PathBuf, PathBuf),
}

impl Other {
    pub fn path(&self) -> &Path {
        match self {
            Other::Entry(p) | Other::Link(p, _) => p,
        }
    }
}

/// One kernel's weak-updates state.
#[derive(Debug, Clone, Default)]
pub struct WeakState {
    pub krel: String,
    /// The module links: path below `weak-updates/` → target, as a path inside the root (a
    /// target that names the root by its outside path, as RHEL's script writes them with
    /// `--basedir`, is read as the path inside).
    pub links: Links,
    /// Links whose stored target differs from the target in `links` (they are rewritten
    /// when the kernel's links are next replaced).
    pub outside_targets: Vec<PathBuf>,
    pub others: Vec<Other>,
    /// Staging trees of crashed runs beside `weak-updates/`.
    pub stale: Vec<OsString>,
    /// The intent record of an interrupted run.
    pub pending: Option<Result<Record, String>>,
    /// The kernel is installed and indexed: its modules are there (`kernel/` is a directory,
    /// or `modules.order` a regular file: a kernel may have no module of its own) and so are
    /// its indexes (`modules.dep` or `modules.dep.bin` is a regular file); nothing followed.
    /// Not so while a kernel is being removed: RHEL's `%preun` runs `kernel-install remove`
    /// (whose `50-depmod.install` deletes the indexes) or `new-kernel-pkg --rmmoddep` before
    /// `weak-modules --remove-kernel`; Debian's hooks run after the package's files are gone.
    pub indexed: bool,
    /// Files kabi writes that no package owns and not every removal deletes are in the
    /// kernel's module directory ([`super::txn::UNOWNED`]).
    pub unowned: bool,
    /// A temporary file a killed writer left in the kernel's module directory (see
    /// [`crate::root::is_temp_name`]).
    pub temps: bool,
}

/// Read kernel `krel`'s state. `Err` when something is where a directory must be (a link
/// or a file as `weak-updates/`, or as a staging tree): the run stops, naming it.
pub fn read(root: &Root, kdir: &Dir, krel: &str) -> Result<WeakState, Error> {
    let mut st = WeakState {
        krel: krel.to_string(),
        ..WeakState::default()
    };
    for e in kdir.entries()? {
        let name = e.name.to_string_lossy();
        if name.starts_with(STAGING_PREFIX) {
            if e.kind != Kind::Dir {
                return Err(not_a_directory(kdir, &e.name, e.kind));
            }
            st.stale.push(e.name.clone());
        } else if e.kind == Kind::File && crate::root::is_temp_name(&e.name) {
            st.temps = true;
        }
    }
    st.pending = super::txn::read_record(kdir);
    let is = |name: &str, kind: Kind| kdir.lstat(name).is_ok_and(|s| s.kind == kind);
    st.indexed = (is("kernel", Kind::Dir) || is("modules.order", Kind::File))
        && (is("modules.dep", Kind::File) || is("modules.dep.bin", Kind::File));
    st.unowned = super::txn::UNOWNED.iter().any(|n| is(n, Kind::File));
    match kdir.lstat("weak-updates") {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(st),
        Err(e) => return Err(Error::io(kdir.show("weak-updates"), e)),
        Ok(s) if s.kind != Kind::Dir => {
            return Err(not_a_directory(kdir, "weak-updates".as_ref(), s.kind));
        }
        Ok(_) => {}
    }
    let weak = kdir.sub("weak-updates")?;
    read_tree(root, &weak, Path::new(""), &mut st)?;
    st.others.sort_by(|a, b| a.path().cmp(b.path()));
    Ok(st)
}

fn not_a_directory(kdir: &Dir, name: &std::ffi::OsStr, kind: Kind) -> Error {
    Error::io(
        kdir.show(name),
        std::io::Error::other(format!(
            "is {} where a directory is expected; remove it (kabi does not go through it)",
            kind.describe(0)
        )),
    )
}

fn read_tree(root: &Root, dir: &Dir, rel: &Path, st: &mut WeakState) -> Result<(), Error> {
    for e in dir.entries()? {
        let r = rel.join(&e.name);
        match e.kind {
            Kind::Dir => read_tree(root, &dir.sub(&e.name)?, &r, st)?,
            Kind::Symlink => {
                let target = dir
                    .read_link(&e.name)
                    .map_err(|x| Error::io(dir.show(&e.name), x))?;
                let is_module = e
                    .name
                    .to_str()
                    .and_then(crate::module::strip_module_ext)
                    .is_some();
                if is_module {
                    let inside = inside_target(root, dir.rel(), &target);
                    if inside != target {
                        st.outside_targets.push(r.clone());
                    }
                    st.links.insert(r, inside);
                } else {
                    st.others.push(Other::Link(r, target));
                }
            }
            _ => st.others.push(Other::Entry(r)),
        }
    }
    Ok(())
}

/// A link target as an absolute path inside the root: a relative target is taken from the
/// link's directory `at` (inside the root), `..` lexically; one that names the root by its
/// outside path (`ROOT/lib/modules/...`) is read as the path below it.
pub fn inside_target(root: &Root, at: &Path, target: &Path) -> PathBuf {
    if target.is_absolute() {
        if !root.is_host()
            && let Some(inner) = root.inside(target)
        {
            return inner;
        }
        return target.to_path_buf();
    }
    crate::root::normalize_lexically(&Path::new("/").join(at).join(target))
        .unwrap_or_else(|| target.to_path_buf())
}
