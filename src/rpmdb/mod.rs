//! The installed-package database of a root, read natively (no `rpm` binary, no librpm).
//!
//! * [`header`]: rpm's header blob (index entries over a data store), checked entry by entry.
//! * [`package`]: a [`Package`] from a header: name, epoch, version, release, arch, files,
//!   provides, requires.
//! * [`vercmp`]: rpm's version ordering ([`rpmvercmp`], [`evr_cmp`]).
//! * [`mod@locate`]: where a root keeps its database and in which format.
//! * [`sqlite`]: the SQLite backend (`rpmdb.sqlite`), opened read-only and immutable.
//! * [`ndb`]: rpm's ndb backend (`Packages.db`, SUSE), read with plain reads, no lock taken.
//! * [`kmp`]: the SUSE kernel-module-package model built on the package list (pure).
//!
//! The BerkeleyDB format (`Packages`: RHEL ≤ 8, SLE 12, SLE 15 before SP3) is recognised and
//! refused with [`RpmDbError::Unsupported`]: no rpm that writes it could be built here to make
//! a real database to test a reader against (rpm 4.18 only reads it, `bdb_ro`).
//!
//! Every file is reached through the [`Root`] (resolved inside it, only regular files read).
//!
//! ```no_run
//! let root = kabi::root::Root::open("/")?;
//! let db = kabi::rpmdb::read_root(&root)?.expect("an rpm database");
//! for p in &db.packages {
//!     println!("{}", p.nvr());
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub(crate) mod header;
pub mod kmp;
pub(crate) mod locate;
pub mod ndb;
pub(crate) mod package;
pub(crate) mod sqlite;
pub mod tag;
pub(crate) mod vercmp;

use std::path::PathBuf;

use crate::root::Root;

pub use header::{Header, HeaderError};
pub use locate::{Backend, Location, locate};
pub use package::{Dependency, Package, PackageError};
pub use vercmp::{Evr, evr_cmp, rpmvercmp};

/// A database that could not be read; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum RpmDbError {
    /// Opening or reading through the root (the message names the file).
    #[error(transparent)]
    Root(#[from] crate::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a readable rpm SQLite database: {msg}")]
    Sqlite { path: PathBuf, msg: String },
    #[error("{path}: not a readable rpm ndb database: {source}")]
    Ndb {
        path: PathBuf,
        #[source]
        source: ndb::NdbError,
    },
    #[error("{path}: package #{instance}: {source}")]
    Package {
        path: PathBuf,
        instance: u32,
        #[source]
        source: PackageError,
    },
    #[error(
        "{path}: the rpm database is in the {} format, which kabi does not read (only sqlite \
         and ndb: convert it with `rpmdb --rebuilddb --define '_db_backend sqlite'`)",
        backend.name()
    )]
    Unsupported { path: PathBuf, backend: Backend },
}

/// The packages installed in a root.
#[derive(Debug, Clone)]
pub struct RpmDb {
    /// The database file read (the root's path joined with the database's).
    pub path: PathBuf,
    pub location: Location,
    /// Every installed package, in database order.
    pub packages: Vec<Package>,
    /// A non-empty `-wal` file lay next to the database: changes of an rpm transaction that
    /// is still running (or crashed) may be missing from `packages`.
    pub pending_wal: bool,
}

impl RpmDb {
    /// The packages called `name`.
    pub fn by_name<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Package> + 'a {
        self.packages.iter().filter(move |p| p.name == name)
    }
}

/// Read the database found at `location` below `root`.
pub fn read(root: &Root, location: &Location) -> Result<RpmDb, RpmDbError> {
    let rel = location.file();
    let path = root.display(&rel);
    if let backend @ Backend::Bdb = location.backend {
        return Err(RpmDbError::Unsupported { path, backend });
    }
    let (file, _) = root.open_file(&rel)?;
    let (packages, pending_wal) = match location.backend {
        Backend::Ndb => (ndb::NdbDb::open(file, &path)?.packages()?, false),
        _ => {
            let db = sqlite::SqliteDb::open(file, &path)?;
            let mut wal = rel.into_os_string();
            wal.push("-wal");
            let pending = root.stat(&wal).is_ok_and(|s| s.is_file() && s.size > 0);
            (db.packages()?, pending)
        }
    };
    Ok(RpmDb {
        path,
        location: location.clone(),
        packages,
        pending_wal,
    })
}

/// Find and read the root's database; `Ok(None)` when the root has none.
pub fn read_root(root: &Root) -> Result<Option<RpmDb>, RpmDbError> {
    match locate(root)? {
        Some(loc) => read(root, &loc).map(Some),
        None => Ok(None),
    }
}
