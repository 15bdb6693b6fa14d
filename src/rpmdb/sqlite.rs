//! The SQLite backend (`rpmdb.sqlite`, rpm ≥ 4.16: RHEL 9, Fedora, openSUSE/SLE 16, Debian's
//! rpm 4.18): one table `Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)`
//! holding each installed package's header blob; the other tables are indexes rpm derives
//! from the headers, not needed here.
//!
//! The database is opened strictly read-only and *immutable* (`file:…?immutable=1` with
//! `SQLITE_OPEN_READ_ONLY | SQLITE_OPEN_URI`): SQLite then takes no lock and never creates
//! a `-wal`, `-shm` or `-journal` file next to it, so reading a root's database writes
//! nothing into the root and cannot wait on rpm's locks. The price: pages still in a
//! `-wal` file that rpm has not checkpointed are not seen. rpm checkpoints when it closes
//! the database, so that only happens while an rpm transaction runs (or after one crashed);
//! [`super::RpmDb::pending_wal`] reports a non-empty `-wal` file so the caller can say so.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::RpmDbError;
use super::header::{Header, MAX_DATA};
use super::package::Package;

/// Largest blob SQLite will hand over: a header's 8-byte intro, 65535 index entries and
/// rpm's largest data store. A database claiming a larger one is refused by SQLite itself
/// (SQLITE_TOOBIG) instead of being allocated.
const MAX_BLOB: i32 = (8 + 16 * 0xffff + MAX_DATA as usize) as i32;

/// An open `rpmdb.sqlite`.
pub struct SqliteDb {
    conn: Connection,
    path: PathBuf,
    /// Kept open so that `/proc/self/fd/N` (what SQLite was given) stays valid.
    _file: File,
}

impl SqliteDb {
    /// Open the database file `file` (already opened and checked to be a regular file;
    /// `path` names it in messages).
    pub fn open(file: File, path: &Path) -> Result<SqliteDb, RpmDbError> {
        let err = |msg: String| RpmDbError::Sqlite {
            path: path.to_path_buf(),
            msg,
        };
        // SQLite opens by name: give it the very file we checked, through /proc when there
        let by_fd = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
        let target = if by_fd.exists() {
            by_fd
        } else {
            path.to_path_buf()
        };
        let uri = format!("file:{}?immutable=1", uri_escape(&target));
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&uri, flags).map_err(|e| err(e.to_string()))?;
        conn.set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_LENGTH, MAX_BLOB)
            .map_err(|e| err(e.to_string()))?;
        Ok(SqliteDb {
            conn,
            path: path.to_path_buf(),
            _file: file,
        })
    }

    /// Every package's header blob with its number, in database order.
    pub fn for_each_blob(
        &self,
        mut f: impl FnMut(u32, &[u8]) -> Result<(), RpmDbError>,
    ) -> Result<(), RpmDbError> {
        let err = |e: rusqlite::Error| RpmDbError::Sqlite {
            path: self.path.clone(),
            msg: e.to_string(),
        };
        let mut stmt = self
            .conn
            .prepare("SELECT hnum, blob FROM Packages ORDER BY hnum")
            .map_err(err)?;
        let mut rows = stmt.query([]).map_err(err)?;
        while let Some(row) = rows.next().map_err(err)? {
            let hnum: i64 = row.get(0).map_err(err)?;
            let hnum = u32::try_from(hnum).map_err(|_| RpmDbError::Sqlite {
                path: self.path.clone(),
                msg: format!("package number {hnum} out of range"),
            })?;
            let blob = row.get_ref(1).map_err(err)?;
            let bytes = blob.as_blob().map_err(|_| RpmDbError::Sqlite {
                path: self.path.clone(),
                msg: format!("package #{hnum}: the header is not a blob"),
            })?;
            f(hnum, bytes)?;
        }
        Ok(())
    }

    /// Every installed package.
    pub fn packages(&self) -> Result<Vec<Package>, RpmDbError> {
        let mut out = Vec::new();
        self.for_each_blob(|hnum, blob| {
            let pkg = Header::parse(blob)
                .map_err(Into::into)
                .and_then(|h| Package::from_header(hnum, &h))
                .map_err(|source| RpmDbError::Package {
                    path: self.path.clone(),
                    instance: hnum,
                    source,
                })?;
            out.push(pkg);
            Ok(())
        })?;
        Ok(out)
    }
}

/// Percent-escape what a SQLite URI path must not hold raw (`?`, `#`, `%`, and non-ASCII or
/// control bytes).
fn uri_escape(p: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut s = String::new();
    for &b in p.as_os_str().as_bytes() {
        if b.is_ascii_graphic() && !matches!(b, b'?' | b'#' | b'%') {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}
