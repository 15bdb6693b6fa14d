//! Where a root keeps its rpm database, and in which format.
//!
//! The directories tried, in order: the root's `%_dbpath` when its rpm macro files give a
//! literal path (`/usr/lib/rpm/macros`, `/usr/lib/rpm/macros.d/macros.*`, `/etc/rpm/macros.*`,
//! `/etc/rpm/macros`, the last definition winning as in rpm; `%{_var}`, `%{_usr}` and
//! `%{_prefix}` are expanded, any other macro makes the value unusable and it is skipped),
//! then `/usr/lib/sysimage/rpm` (SUSE, Fedora ≥ 36, RHEL 10), then `/var/lib/rpm` (RHEL ≤ 9,
//! older SUSE; often a symlink to the former). In a directory, the files tell the backend:
//! `rpmdb.sqlite` (SQLite), `Packages.db` (ndb), `Packages` (BerkeleyDB), in that order of
//! preference.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::RpmDbError;
use crate::root::Root;

/// The database formats rpm has used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `rpmdb.sqlite`: rpm ≥ 4.16 (RHEL 9, Fedora ≥ 33, openSUSE Tumbleweed since 2024,
    /// SLE 16, Debian's rpm 4.18).
    Sqlite,
    /// `Packages.db`: rpm's own "ndb" format (SLE 15 SP?, openSUSE until 2024).
    Ndb,
    /// `Packages`: BerkeleyDB (RHEL ≤ 8, SLE 12, SLE 15 before ndb).
    Bdb,
}

impl Backend {
    /// The file name of the package table in the database directory.
    pub fn file_name(self) -> &'static str {
        match self {
            Backend::Sqlite => "rpmdb.sqlite",
            Backend::Ndb => "Packages.db",
            Backend::Bdb => "Packages",
        }
    }

    /// rpm's name of the backend (`%_db_backend`).
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Ndb => "ndb",
            Backend::Bdb => "bdb",
        }
    }
}

/// A database found below a root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The database directory as the root sees it (e.g. `/var/lib/rpm`).
    pub dbpath: PathBuf,
    pub backend: Backend,
}

impl Location {
    /// The package file as the root sees it (e.g. `/var/lib/rpm/rpmdb.sqlite`).
    pub fn file(&self) -> PathBuf {
        self.dbpath.join(self.backend.file_name())
    }
}

/// The standard database directories, tried after the macro files' `%_dbpath`.
pub const DBPATHS: [&str; 2] = ["/usr/lib/sysimage/rpm", "/var/lib/rpm"];

const MAX_MACRO_FILE: u64 = 1 << 20;

/// The `%_dbpath` the root's macro files define, when it is a literal path.
pub fn macro_dbpath(root: &Root) -> Option<PathBuf> {
    let mut files: Vec<PathBuf> = vec![PathBuf::from("/usr/lib/rpm/macros")];
    let sorted_dir = |dir: &str, prefix: &str| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = root
            .list(dir)
            .into_iter()
            .flatten()
            .filter(|e| e.name.as_bytes().starts_with(prefix.as_bytes()))
            .map(|e| Path::new(dir).join(&e.name))
            .collect();
        v.sort();
        v
    };
    files.extend(sorted_dir("/usr/lib/rpm/macros.d", "macros."));
    files.extend(sorted_dir("/etc/rpm", "macros."));
    files.push(PathBuf::from("/etc/rpm/macros"));
    let mut found = None;
    for f in files {
        let Ok(text) = root.read_string(&f, MAX_MACRO_FILE) else {
            continue;
        };
        for line in text.lines() {
            let line = line.trim_start();
            let Some(rest) = line.strip_prefix("%_dbpath") else {
                continue;
            };
            if !rest.starts_with([' ', '\t']) {
                continue; // %_dbpath_rebuild and the like
            }
            let value = rest
                .trim()
                .replace("%{_var}", "/var")
                .replace("%{_usr}", "/usr")
                .replace("%{_prefix}", "/usr");
            found = (value.starts_with('/') && !value.contains('%')).then(|| PathBuf::from(value));
        }
    }
    found
}

/// Find the root's rpm database. `Ok(None)` when there is none (a minimal image). A database
/// file that exists but is no regular file (a FIFO, a directory) is an error.
pub fn locate(root: &Root) -> Result<Option<Location>, RpmDbError> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(d) = macro_dbpath(root) {
        dirs.push(d);
    }
    for d in DBPATHS {
        if !dirs.iter().any(|x| x == Path::new(d)) {
            dirs.push(PathBuf::from(d));
        }
    }
    for dbpath in dirs {
        for backend in [Backend::Sqlite, Backend::Ndb, Backend::Bdb] {
            let rel = dbpath.join(backend.file_name());
            match root.stat(&rel) {
                Ok(st) if st.is_file() => return Ok(Some(Location { dbpath, backend })),
                // not a regular file: say so, naming it
                Ok(_) => {
                    return Err(root.open_file(&rel).err().map(RpmDbError::from).unwrap_or(
                        RpmDbError::Io {
                            path: root.display(&rel),
                            source: std::io::Error::other("not a regular file"),
                        },
                    ));
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                    ) => {}
                Err(source) => {
                    return Err(RpmDbError::Io {
                        path: root.display(&rel),
                        source,
                    });
                }
            }
        }
    }
    Ok(None)
}
