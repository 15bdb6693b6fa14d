//! The filesystem below a root (`--root`, `-b`, `--basedir`, `-d`, or `/`), reached only
//! through directory descriptors.
//!
//! * Reading: a path below the root is resolved with `openat2(RESOLVE_IN_ROOT |
//!   RESOLVE_NO_MAGICLINKS)` from the root's descriptor: symbolic links are followed, but an
//!   absolute link and `..` stay inside the root, as under `chroot` (every merged-/usr system
//!   has `lib -> usr/lib`; a weak-updates link names `/lib/modules/K/extra/x.ko`, which is
//!   the module *inside* the root). Where `openat2` is missing (Linux < 5.6, or a seccomp
//!   filter that refuses it) the same resolution is done one component at a time
//!   ([`resolve_walk`]). Only regular files are read as data: a file is first opened with
//!   `O_PATH` and checked with `fstat`, so a FIFO, a device or a socket is never opened for
//!   reading (no hang, no side effect such as arming a watchdog), and its size is checked
//!   against a cap before anything is allocated.
//! * Writing: a [`Dir`] is a directory descriptor. Below it every path is walked one component
//!   at a time with `O_NOFOLLOW | O_DIRECTORY`, so nothing written, renamed or deleted is
//!   reached through a symbolic link; links are read with `readlinkat` and made with
//!   `symlinkat`, never followed. A file is replaced by writing a temporary file in the same
//!   directory, flushing it, and renaming it over the old one.

mod kernelfs;

pub use kernelfs::read as read_kernel_file;

use crate::error::Error;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

/// What one `stat` says about a file: its type and the identity kabi's caches use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub kind: Kind,
    pub size: u64,
    pub mtime: (i64, u32),
    pub ctime: (i64, u32),
    pub ino: u64,
    pub dev: u64,
    pub mode: u32,
    pub uid: u32,
}

/// The type of a directory entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    /// FIFO, socket, device: never read as data.
    Other,
}

impl Kind {
    fn of(t: FileType) -> Kind {
        match t {
            FileType::RegularFile => Kind::File,
            FileType::Directory => Kind::Dir,
            FileType::Symlink => Kind::Symlink,
            _ => Kind::Other,
        }
    }

    /// What the kernel calls it, for messages.
    pub fn describe(self, mode: u32) -> &'static str {
        match self {
            Kind::File => "a regular file",
            Kind::Dir => "a directory",
            Kind::Symlink => "a symbolic link",
            Kind::Other => match mode & 0o170000 {
                0o010000 => "a FIFO",
                0o140000 => "a socket",
                0o020000 => "a character device",
                0o060000 => "a block device",
                _ => "a special file",
            },
        }
    }
}

impl Stat {
    pub(crate) fn from(st: &rustix::fs::Stat) -> Stat {
        Stat {
            kind: Kind::of(FileType::from_raw_mode(st.st_mode)),
            size: st.st_size as u64,
            mtime: (st.st_mtime, st.st_mtime_nsec as u32),
            ctime: (st.st_ctime, st.st_ctime_nsec as u32),
            ino: st.st_ino,
            dev: st.st_dev,
            mode: st.st_mode,
            uid: st.st_uid,
        }
    }

    pub fn is_file(&self) -> bool {
        self.kind == Kind::File
    }
    pub fn is_dir(&self) -> bool {
        self.kind == Kind::Dir
    }
}

/// A directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: OsString,
    /// The entry itself (a symbolic link is [`Kind::Symlink`], never followed).
    pub kind: Kind,
}

impl Entry {
    pub fn name_str(&self) -> Option<&str> {
        self.name.to_str()
    }
}

/// The files kabi reads are small next to these caps; anything larger is refused before a
/// byte of it is allocated.
pub mod caps {
    /// A module file (plain or compressed) read whole.
    pub const MODULE: u64 = 384 << 20;
    /// An index (`modules.dep`, `modules.alias.bin`, ...), a symvers file, `kallsyms`.
    pub const INDEX: u64 = 256 << 20;
    /// A configuration file (`modprobe.d`, `depmod.d`, `modules-load.d`, `/proc/cmdline`).
    pub const CONFIG: u64 = 16 << 20;
    /// A kernel image.
    pub const IMAGE: u64 = 256 << 20;
}

/// How an `openat2` call fared on this kernel: unknown, works, or missing (fall back to the
/// component walk).
static OPENAT2: AtomicU8 = AtomicU8::new(0);
const OPENAT2_OK: u8 = 1;
const OPENAT2_MISSING: u8 = 2;

/// The most symbolic links one resolution follows (the kernel's `MAXSYMLINKS`).
const MAX_LINKS: usize = 40;

/// A filesystem root, opened once.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

impl Root {
    /// Open the directory `path` as a root. The path of the root itself is the caller's
    /// choice and is resolved normally; everything below it is not.
    pub fn open(path: impl AsRef<Path>) -> Result<Root, Error> {
        let path = path.as_ref();
        let shown = if path.as_os_str().is_empty() {
            PathBuf::from("/")
        } else {
            path.to_path_buf()
        };
        let fd = rustix::fs::open(
            &shown,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::io(&shown, e.into()))?;
        Ok(Root { fd, path: shown })
    }

    /// Another handle on the same root.
    pub fn try_clone(&self) -> Result<Root, Error> {
        Ok(Root {
            fd: rustix::io::fcntl_dupfd_cloexec(&self.fd, 0)
                .map_err(|e| Error::io(&self.path, e.into()))?,
            path: self.path.clone(),
        })
    }

    /// The root `/`.
    pub fn host() -> Result<Root, Error> {
        Root::open("/")
    }

    /// The root as the user named it.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Is this the machine's own `/`?
    pub fn is_host(&self) -> bool {
        self.path == Path::new("/")
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Where `rel` (inside the root) is seen from outside it, for messages.
    pub fn display(&self, rel: impl AsRef<Path>) -> PathBuf {
        let rel = strip_root(rel.as_ref());
        if rel.as_os_str().is_empty() {
            self.path.clone()
        } else {
            self.path.join(rel)
        }
    }

    /// A path given from outside the root (a module named on standard input, say) as a path
    /// inside it: `ROOT/x/y` gives `/x/y`. `None` when, with `..` taken lexically, it is not
    /// below the root. A relative path is taken against the current directory.
    pub fn inside(&self, outside: &Path) -> Option<PathBuf> {
        let abs = if outside.is_absolute() {
            outside.to_path_buf()
        } else {
            std::env::current_dir().ok()?.join(outside)
        };
        let abs = normalize_lexically(&abs)?;
        let root = normalize_lexically(&self.path)?;
        let rest = abs.strip_prefix(&root).ok()?;
        Some(Path::new("/").join(rest))
    }

    /// An `O_PATH` descriptor of `rel`, resolved inside the root; the last component is
    /// followed when `follow`.
    pub fn open_path(&self, rel: &Path, follow: bool) -> std::io::Result<OwnedFd> {
        let mut flags = OFlags::PATH | OFlags::CLOEXEC;
        if !follow {
            flags |= OFlags::NOFOLLOW;
        }
        self.resolve(rel, flags)
    }

    fn resolve(&self, rel: &Path, flags: OFlags) -> std::io::Result<OwnedFd> {
        let rel = strip_root(rel);
        let rel = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        open_in_root(self.fd.as_fd(), rel, flags)
    }

    /// `stat` of `rel`, links followed inside the root.
    pub fn stat(&self, rel: impl AsRef<Path>) -> std::io::Result<Stat> {
        let fd = self.open_path(rel.as_ref(), true)?;
        Ok(Stat::from(&rustix::fs::fstat(&fd)?))
    }

    /// `lstat` of `rel`: the last component is not followed.
    pub fn lstat(&self, rel: impl AsRef<Path>) -> std::io::Result<Stat> {
        let fd = self.open_path(rel.as_ref(), false)?;
        Ok(Stat::from(&rustix::fs::fstat(&fd)?))
    }

    pub fn exists(&self, rel: impl AsRef<Path>) -> bool {
        self.stat(rel).is_ok()
    }

    pub fn is_dir(&self, rel: impl AsRef<Path>) -> bool {
        self.stat(rel).is_ok_and(|s| s.is_dir())
    }

    pub fn is_file(&self, rel: impl AsRef<Path>) -> bool {
        self.stat(rel).is_ok_and(|s| s.is_file())
    }

    /// The target of the symbolic link `rel` (its parents resolved inside the root).
    pub fn read_link(&self, rel: impl AsRef<Path>) -> std::io::Result<PathBuf> {
        let rel = rel.as_ref();
        let (parent, name) = split_last(strip_root(rel))?;
        let dir = self.resolve(parent, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC)?;
        let t = rustix::fs::readlinkat(&dir, name, Vec::new())?;
        Ok(PathBuf::from(OsString::from_vec(t.into_bytes())))
    }

    /// Open the regular file `rel` for reading, with its `stat`. Anything else (a FIFO, a
    /// device, a directory) is refused without being opened for reading.
    pub fn open_file(&self, rel: impl AsRef<Path>) -> Result<(File, Stat), Error> {
        let rel = rel.as_ref();
        let shown = || self.display(rel);
        let probe = self
            .open_path(rel, true)
            .map_err(|e| Error::io(shown(), e))?;
        let st = Stat::from(&rustix::fs::fstat(&probe).map_err(|e| Error::io(shown(), e.into()))?);
        if !st.is_file() {
            return Err(not_regular(shown(), st));
        }
        let fd = self
            .resolve(
                rel,
                OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            )
            .map_err(|e| Error::io(shown(), e))?;
        let now = Stat::from(&rustix::fs::fstat(&fd).map_err(|e| Error::io(shown(), e.into()))?);
        if !now.is_file() || now.ino != st.ino || now.dev != st.dev {
            return Err(Error::io(
                shown(),
                std::io::Error::other("the file was replaced while it was being opened"),
            ));
        }
        Ok((File::from(fd), now))
    }

    /// The whole regular file `rel`, refused when larger than `cap` bytes. The kernel's own
    /// files of the machine's root (`/proc`, `/sys`) are read without the probe when they
    /// are on procfs and sysfs ([`kernelfs`]).
    pub fn read(&self, rel: impl AsRef<Path>, cap: u64) -> Result<Vec<u8>, Error> {
        let rel = rel.as_ref();
        if self.is_host()
            && let Some(r) = strip_root(rel)
                .to_str()
                .and_then(|s| kernelfs::read(s, cap))
        {
            return r.map_err(|e| Error::io(self.display(rel), e));
        }
        let (f, st) = self.open_file(rel)?;
        read_capped(f, st.size, cap).map_err(|e| Error::io(self.display(rel), e))
    }

    /// [`Root::read`] as text (invalid UTF-8 is replaced).
    pub fn read_string(&self, rel: impl AsRef<Path>, cap: u64) -> Result<String, Error> {
        let data = self.read(rel, cap)?;
        Ok(String::from_utf8(data)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }

    /// Replace `files` (name, bytes) in the cache directory `dir` below this root, made if
    /// missing below an existing parent (`run/kabi`): best effort for caches that only save
    /// time. Writers take the directory's lock without waiting: one that does not get it
    /// leaves the update to the other. Returns whether every file was written.
    pub fn write_cache(&self, dir: impl AsRef<Path>, files: &[(&str, &[u8])]) -> bool {
        self.cache_write(dir.as_ref(), files, true)
    }

    /// [`Root::write_cache`] without flushing to disk (two system calls fewer, for caches
    /// rewritten on every `kabi load`): only for files whose readers refuse or cannot be
    /// misled by what a crash of the machine may leave of an unflushed file (nothing, the old
    /// bytes, zeroed or stale blocks), such as files valid for one boot only. A killed
    /// process loses nothing: the file is renamed into place whole either way.
    pub fn write_cache_unflushed(&self, dir: impl AsRef<Path>, files: &[(&str, &[u8])]) -> bool {
        self.cache_write(dir.as_ref(), files, false)
    }

    fn cache_write(&self, dir: &Path, files: &[(&str, &[u8])], flush: bool) -> bool {
        let dir = strip_root(dir);
        let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
            return false;
        };
        let Ok(d) = self.open_dir(parent).and_then(|p| p.create_sub(name)) else {
            return false;
        };
        let Ok(_lock) = d.lock(Duration::ZERO, &mut || {}) else {
            return false;
        };
        files.iter().all(|(name, data)| {
            d.replace_via(Path::new(name), &[data], 0o644, flush, true)
                .is_ok()
        })
    }

    /// The directory `rel`, links followed inside the root.
    pub fn open_dir(&self, rel: impl AsRef<Path>) -> Result<Dir, Error> {
        let rel = rel.as_ref();
        let fd = self
            .resolve(rel, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC)
            .map_err(|e| Error::io(self.display(rel), e))?;
        Ok(Dir {
            fd,
            path: self.display(rel),
            rel: strip_root(rel).to_path_buf(),
        })
    }

    /// The entries of directory `rel` (links followed inside the root to reach it).
    pub fn list(&self, rel: impl AsRef<Path>) -> Result<Vec<Entry>, Error> {
        self.open_dir(rel)?.entries()
    }
}

/// A directory descriptor: the only way kabi writes, renames or deletes.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    /// As seen from outside the root, for messages.
    path: PathBuf,
    /// Inside the root, without a leading `/`.
    rel: PathBuf,
}

impl AsFd for Dir {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Dir {
    /// The directory as seen from outside the root.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory inside the root (no leading `/`).
    pub fn rel(&self) -> &Path {
        &self.rel
    }

    /// `name` in this directory, as seen from outside the root.
    pub fn show(&self, name: impl AsRef<Path>) -> PathBuf {
        self.path.join(name)
    }

    /// The subdirectory `rel`, walked one component at a time without following any
    /// symbolic link: a link, or anything but a directory, on the way is an error naming it.
    pub fn sub(&self, rel: impl AsRef<Path>) -> Result<Dir, Error> {
        self.walk(rel.as_ref(), false)
    }

    /// [`Dir::sub`], creating the missing directories (mode 0755).
    pub fn create_sub(&self, rel: impl AsRef<Path>) -> Result<Dir, Error> {
        self.walk(rel.as_ref(), true)
    }

    fn walk(&self, rel: &Path, create: bool) -> Result<Dir, Error> {
        // the directory reached so far; `None` while it is `self` (whose descriptor is
        // duplicated only when `rel` names nothing below it)
        let mut opened: Option<Dir> = None;
        for c in rel.components() {
            let cur = opened.as_ref().unwrap_or(self);
            let name = match c {
                Component::Normal(n) => n,
                Component::CurDir => continue,
                _ => {
                    return Err(Error::io(
                        self.show(rel),
                        std::io::Error::other("the path leaves its directory"),
                    ));
                }
            };
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let fd = match rustix::fs::openat(&cur.fd, name, flags, Mode::empty()) {
                Err(Errno::NOENT) if create => {
                    match rustix::fs::mkdirat(&cur.fd, name, Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(Error::io(cur.show(name), e.into())),
                    }
                    rustix::fs::openat(&cur.fd, name, flags, Mode::empty())
                }
                r => r,
            };
            let fd = fd.map_err(|e| cur.not_a_dir(name, e))?;
            opened = Some(Dir {
                fd,
                path: cur.path.join(name),
                rel: cur.rel.join(name),
            });
        }
        match opened {
            Some(d) => Ok(d),
            None => Ok(Dir {
                fd: rustix::io::fcntl_dupfd_cloexec(&self.fd, 0)
                    .map_err(|e| Error::io(&self.path, e.into()))?,
                path: self.path.clone(),
                rel: self.rel.clone(),
            }),
        }
    }

    /// An error for `name`, which was to be a directory: says what it is instead.
    fn not_a_dir(&self, name: &OsStr, e: Errno) -> Error {
        let shown = self.show(name);
        match (e, self.lstat(name)) {
            (Errno::LOOP | Errno::NOTDIR, Ok(st)) if st.kind != Kind::Dir => Error::io(
                shown,
                std::io::Error::other(format!(
                    "is {} where a directory is expected; refusing to go through it",
                    st.kind.describe(st.mode)
                )),
            ),
            _ => Error::io(shown, e.into()),
        }
    }

    /// Every entry (not `.` and `..`), with its own type (links not followed).
    pub fn entries(&self) -> Result<Vec<Entry>, Error> {
        let mut d =
            rustix::fs::Dir::read_from(&self.fd).map_err(|e| Error::io(&self.path, e.into()))?;
        let mut out = Vec::new();
        while let Some(e) = d.read() {
            let e = e.map_err(|e| Error::io(&self.path, e.into()))?;
            out.extend(self.entry_of(e.file_name().to_bytes(), e.file_type()));
        }
        Ok(out)
    }

    /// A `getdents` entry as an [`Entry`]: `None` for `.`, `..`, and an entry of unknown
    /// type gone before its `lstat`.
    fn entry_of(&self, name: &[u8], t: FileType) -> Option<Entry> {
        if name == b"." || name == b".." {
            return None;
        }
        let name = OsString::from_vec(name.to_vec());
        let kind = match t {
            FileType::Unknown => self.lstat(&name).ok()?.kind,
            t => Kind::of(t),
        };
        Some(Entry { name, kind })
    }

    /// [`Dir::entries`] for a walk that reads each directory once: read from this
    /// descriptor itself at its current position (all of it, the first time; nothing, a
    /// second time), with `buf` as the `getdents` buffer (kept between directories), where
    /// `entries` opens the directory anew for each call.
    pub fn read_entries(&mut self, buf: &mut Vec<u8>) -> Result<Vec<Entry>, Error> {
        // room for many entries per `getdents`, and always for the longest name
        if buf.capacity() < 32 << 10 {
            buf.reserve(32 << 10);
        }
        let mut out = Vec::new();
        let mut d = rustix::fs::RawDir::new(&self.fd, buf.spare_capacity_mut());
        while let Some(e) = d.next() {
            let e = e.map_err(|e| Error::io(&self.path, e.into()))?;
            out.extend(self.entry_of(e.file_name().to_bytes(), e.file_type()));
        }
        Ok(out)
    }

    /// `lstat` of an entry.
    pub fn lstat(&self, name: impl AsRef<Path>) -> std::io::Result<Stat> {
        let name = one_name(name.as_ref())?;
        Ok(Stat::from(&rustix::fs::statat(
            &self.fd,
            name,
            AtFlags::SYMLINK_NOFOLLOW,
        )?))
    }

    /// The target of the link `name`.
    pub fn read_link(&self, name: impl AsRef<Path>) -> std::io::Result<PathBuf> {
        let name = one_name(name.as_ref())?;
        let t = rustix::fs::readlinkat(&self.fd, name, Vec::new())?;
        Ok(PathBuf::from(OsString::from_vec(t.into_bytes())))
    }

    /// Make the symbolic link `name` -> `target`.
    pub fn symlink(&self, target: impl AsRef<Path>, name: impl AsRef<Path>) -> std::io::Result<()> {
        let name = one_name(name.as_ref())?;
        Ok(rustix::fs::symlinkat(target.as_ref(), &self.fd, name)?)
    }

    /// Remove the entry `name` (not a directory; a link itself, never its target).
    pub fn unlink(&self, name: impl AsRef<Path>) -> std::io::Result<()> {
        let name = one_name(name.as_ref())?;
        Ok(rustix::fs::unlinkat(&self.fd, name, AtFlags::empty())?)
    }

    /// Remove the empty directory `name`.
    pub fn rmdir(&self, name: impl AsRef<Path>) -> std::io::Result<()> {
        let name = one_name(name.as_ref())?;
        Ok(rustix::fs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR)?)
    }

    /// Make the directory `name`.
    pub fn mkdir(&self, name: impl AsRef<Path>, mode: u32) -> std::io::Result<()> {
        let name = one_name(name.as_ref())?;
        Ok(rustix::fs::mkdirat(
            &self.fd,
            name,
            Mode::from_raw_mode(mode),
        )?)
    }

    /// Hard-link the entry `name` (never following it) as `to_name` in `to`.
    pub fn hard_link(
        &self,
        name: impl AsRef<Path>,
        to: &Dir,
        to_name: impl AsRef<Path>,
    ) -> std::io::Result<()> {
        let name = one_name(name.as_ref())?;
        let to_name = one_name(to_name.as_ref())?;
        Ok(rustix::fs::linkat(
            &self.fd,
            name,
            &to.fd,
            to_name,
            AtFlags::empty(),
        )?)
    }

    /// Rename `name` to `to_name` in `to`, replacing what is there (not a directory).
    pub fn rename(
        &self,
        name: impl AsRef<Path>,
        to: &Dir,
        to_name: impl AsRef<Path>,
    ) -> std::io::Result<()> {
        self.rename_with(
            name.as_ref(),
            to,
            to_name.as_ref(),
            rustix::fs::RenameFlags::empty(),
        )
    }

    /// Exchange `name` and `to_name` (`renameat2(RENAME_EXCHANGE)`): both must exist.
    pub fn exchange(
        &self,
        name: impl AsRef<Path>,
        to: &Dir,
        to_name: impl AsRef<Path>,
    ) -> std::io::Result<()> {
        self.rename_with(
            name.as_ref(),
            to,
            to_name.as_ref(),
            rustix::fs::RenameFlags::EXCHANGE,
        )
    }

    /// Rename, refusing to replace an existing entry.
    pub fn rename_noreplace(
        &self,
        name: impl AsRef<Path>,
        to: &Dir,
        to_name: impl AsRef<Path>,
    ) -> std::io::Result<()> {
        self.rename_with(
            name.as_ref(),
            to,
            to_name.as_ref(),
            rustix::fs::RenameFlags::NOREPLACE,
        )
    }

    fn rename_with(
        &self,
        name: &Path,
        to: &Dir,
        to_name: &Path,
        flags: rustix::fs::RenameFlags,
    ) -> std::io::Result<()> {
        let name = one_name(name)?;
        let to_name = one_name(to_name)?;
        Ok(rustix::fs::renameat_with(
            &self.fd, name, &to.fd, to_name, flags,
        )?)
    }

    /// Set the times of the entry `name` to now (a link's own times, never its target's).
    pub fn touch(&self, name: impl AsRef<Path>) -> std::io::Result<()> {
        let name = one_name(name.as_ref())?;
        let now = rustix::fs::Timestamps {
            last_access: rustix::fs::Timespec {
                tv_sec: 0,
                tv_nsec: rustix::fs::UTIME_NOW,
            },
            last_modification: rustix::fs::Timespec {
                tv_sec: 0,
                tv_nsec: rustix::fs::UTIME_NOW,
            },
        };
        Ok(rustix::fs::utimensat(
            &self.fd,
            name,
            &now,
            AtFlags::SYMLINK_NOFOLLOW,
        )?)
    }

    /// Flush the directory itself (after entries were made, renamed or removed in it).
    pub fn sync(&self) -> std::io::Result<()> {
        Ok(rustix::fs::fsync(&self.fd)?)
    }

    /// Open the regular file `name` of this directory for reading (a link is not followed).
    pub fn open_file(&self, name: impl AsRef<Path>) -> Result<(File, Stat), Error> {
        let name = name.as_ref();
        let shown = self.show(name);
        let n = one_name(name).map_err(|e| Error::io(&shown, e))?;
        let probe = rustix::fs::openat(
            &self.fd,
            n,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::io(&shown, e.into()))?;
        let st = Stat::from(&rustix::fs::fstat(&probe).map_err(|e| Error::io(&shown, e.into()))?);
        self.open_stated_file(name, &st)
    }

    /// [`Dir::open_file`] for the entry `name` the caller has just `lstat`ed ([`Dir::lstat`])
    /// as the regular file `seen` (a walk that read the directory): that `lstat` is the
    /// probe, so the file is opened at once (`O_NOFOLLOW | O_NONBLOCK | O_NOCTTY`), then
    /// refused unless it is still a regular file with `seen`'s device and inode. The window
    /// between the check and the open is the one [`Dir::open_file`]'s probe leaves too (an
    /// entry replaced in it is opened, then refused), only longer by the caller's work.
    pub fn open_stated_file(
        &self,
        name: impl AsRef<Path>,
        seen: &Stat,
    ) -> Result<(File, Stat), Error> {
        let name = name.as_ref();
        let shown = || self.show(name);
        if !seen.is_file() {
            return Err(not_regular(shown(), *seen));
        }
        let n = one_name(name).map_err(|e| Error::io(shown(), e))?;
        let fd = rustix::fs::openat(
            &self.fd,
            n,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::io(shown(), e.into()))?;
        let now = Stat::from(&rustix::fs::fstat(&fd).map_err(|e| Error::io(shown(), e.into()))?);
        if !now.is_file() || now.ino != seen.ino || now.dev != seen.dev {
            return Err(Error::io(
                shown(),
                std::io::Error::other("the file was replaced while it was being opened"),
            ));
        }
        Ok((File::from(fd), now))
    }

    /// [`Dir::open_file`] for a file only root may have written (kabi's caches under
    /// `run/kabi`): `None` unless it is a regular file owned by root and writable by no one
    /// else (or when it cannot be opened).
    ///
    /// In a directory that itself is owned by root and writable by no one else, only root
    /// can have made `name`: it is opened at once (`O_NOFOLLOW | O_NONBLOCK`, then `fstat`),
    /// without the `O_PATH` probe of [`Dir::open_file`] (three system calls fewer per file,
    /// on every `kabi load`).
    pub fn open_root_owned(&self, name: impl AsRef<Path>) -> Option<(File, Stat)> {
        let dir = rustix::fs::fstat(&self.fd).ok()?;
        let (f, st) = if root_only(dir.st_mode, dir.st_uid) {
            let n = one_name(name.as_ref()).ok()?;
            let fd = rustix::fs::openat(
                &self.fd,
                n,
                OFlags::RDONLY
                    | OFlags::NOFOLLOW
                    | OFlags::NONBLOCK
                    | OFlags::NOCTTY
                    | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .ok()?;
            let st = Stat::from(&rustix::fs::fstat(&fd).ok()?);
            (File::from(fd), st)
        } else {
            self.open_file(name).ok()?
        };
        (st.is_file() && root_only(st.mode, st.uid)).then_some((f, st))
    }

    /// [`Dir::open_root_owned`] open for reading and for appending later
    /// ([`Dir::append_open`]): one open where a caller reads a file and may then add to it.
    /// Only in a directory owned by root and writable by no one else (else `None`).
    pub fn open_root_owned_rw(&self, name: impl AsRef<Path>) -> Option<(File, Stat)> {
        let dir = rustix::fs::fstat(&self.fd).ok()?;
        if !root_only(dir.st_mode, dir.st_uid) {
            return None;
        }
        let fd = rustix::fs::openat(
            &self.fd,
            one_name(name.as_ref()).ok()?,
            OFlags::RDWR
                | OFlags::APPEND
                | OFlags::NOFOLLOW
                | OFlags::NONBLOCK
                | OFlags::NOCTTY
                | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ok()?;
        let st = Stat::from(&rustix::fs::fstat(&fd).ok()?);
        (st.is_file() && root_only(st.mode, st.uid)).then(|| (File::from(fd), st))
    }

    /// Append `data` in one `write` to `file`, which [`Dir::open_root_owned_rw`] opened as
    /// `name` of this directory with the identity `(dev, ino)`, when `name` still is that
    /// file, owned by root and writable by no one else (not replaced by a rename meanwhile:
    /// one `fstatat`, not following a link). Nothing is created or written through a link.
    /// `O_APPEND`: writers appending at once do not mix their bytes. Best effort, for caches:
    /// false when anything is otherwise or the write is short (the reader then finds a
    /// record cut short and refuses the file).
    pub fn append_open(
        &self,
        name: impl AsRef<Path>,
        file: &File,
        data: &[u8],
        (dev, ino): (u64, u64),
    ) -> bool {
        let Ok(n) = one_name(name.as_ref()) else {
            return false;
        };
        let Ok(st) = rustix::fs::statat(&self.fd, n, AtFlags::SYMLINK_NOFOLLOW) else {
            return false;
        };
        let st = Stat::from(&st);
        if !st.is_file() || !root_only(st.mode, st.uid) || (st.dev, st.ino) != (dev, ino) {
            return false;
        }
        loop {
            match rustix::io::write(file, data) {
                Ok(w) => return w == data.len(),
                Err(Errno::INTR) => continue,
                Err(_) => return false,
            }
        }
    }

    /// The regular file `name` of this directory (not through a link), up to `cap` bytes.
    pub fn read(&self, name: impl AsRef<Path>, cap: u64) -> Result<Vec<u8>, Error> {
        let name = name.as_ref();
        let (f, st) = self.open_file(name)?;
        read_capped(f, st.size, cap).map_err(|e| Error::io(self.show(name), e))
    }

    /// Replace (or create) the file `name` with `data`: written to a temporary file in this
    /// directory, flushed, renamed over `name`, and the directory flushed. A crash leaves the
    /// old file or the new one, and at most a temporary file that [`Dir::clean_temps`]
    /// removes. A link at `name` is replaced, never written through.
    pub fn write_atomic(
        &self,
        name: impl AsRef<Path>,
        data: &[u8],
        mode: u32,
    ) -> Result<(), Error> {
        self.replace(name.as_ref(), &[data], mode, true)
    }

    /// [`Dir::write_atomic`] for a derived file that every reader checks (a checksum) and
    /// rebuilds when it is wrong, such as depmod's scan cache: replaced by rename the same way
    /// (a link at `name` is replaced, never written through; a reader sees the old file or
    /// the new one, whole), but nothing is flushed, which costs milliseconds of journal
    /// commit. After a power loss it may be the old file, the new one, or empty or damaged.
    pub fn write_unflushed(
        &self,
        name: impl AsRef<Path>,
        data: &[u8],
        mode: u32,
    ) -> Result<(), Error> {
        self.replace(name.as_ref(), &[data], mode, false)
    }

    /// [`Dir::write_unflushed`] of a file made of `parts`, one after another.
    pub fn write_unflushed_parts(
        &self,
        name: impl AsRef<Path>,
        parts: &[&[u8]],
        mode: u32,
    ) -> Result<(), Error> {
        self.replace(name.as_ref(), parts, mode, false)
    }

    /// [`Dir::write_atomic`] for several files, with the same guarantees for each (a link
    /// at a name is replaced, never written through; a reader sees the old file or the new
    /// one, whole; when this returns `Ok`, every file is on disk under its name), but
    /// flushed together: every new file is written to a temporary file, the temporary files
    /// are flushed at once (one journal commit serves them all instead of one per file),
    /// then each is renamed into place and the directory is flushed once. A crash point
    /// comes before each file's writing and before each rename; after a crash each name has
    /// its old file or its new one, and the temporary files left are removed by
    /// [`Dir::clean_temps`]. On an error nothing more is renamed and the temporary files not
    /// renamed yet are removed.
    pub fn write_atomic_all(&self, files: &[(&str, &[u8])], mode: u32) -> Result<(), Error> {
        let mut temps: Vec<(OsString, &OsStr, File)> = Vec::with_capacity(files.len());
        let unlink_all = |temps: &[(OsString, &OsStr, File)]| {
            for (tmp, _, _) in temps {
                let _ = rustix::fs::unlinkat(&self.fd, tmp, AtFlags::empty());
            }
        };
        for (name, data) in files {
            let shown = self.show(name);
            crate::crash::point();
            let written = (|| -> std::io::Result<(OsString, &OsStr, File)> {
                use std::io::Write;
                let n = one_name(Path::new(name))?;
                let tmp = temp_name(n);
                let fd = rustix::fs::openat(
                    &self.fd,
                    &tmp,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(mode),
                )?;
                let mut f = File::from(fd);
                let done = f
                    .write_all(data)
                    // the mode asked for, whatever the umask
                    .and_then(|_| Ok(rustix::fs::fchmod(&f, Mode::from_raw_mode(mode))?));
                if let Err(e) = done {
                    let _ = rustix::fs::unlinkat(&self.fd, &tmp, AtFlags::empty());
                    return Err(e);
                }
                Ok((tmp, n, f))
            })();
            match written {
                Ok(t) => temps.push(t),
                Err(e) => {
                    unlink_all(&temps);
                    return Err(Error::io(shown, e));
                }
            }
        }
        let files: Vec<&File> = temps.iter().map(|(_, _, f)| f).collect();
        let flushed = sync_all_at_once(&files, FLUSH_THREAD_STACK)
            .map_err(|(i, e)| Error::io(self.show(temps[i].1), e));
        if let Err(e) = flushed {
            unlink_all(&temps);
            return Err(e);
        }
        for (i, (tmp, n, _)) in temps.iter().enumerate() {
            crate::crash::point();
            if let Err(e) = rustix::fs::renameat(&self.fd, tmp, &self.fd, *n) {
                unlink_all(&temps[i..]);
                return Err(Error::io(self.show(n), e.into()));
            }
        }
        drop(temps);
        self.sync().map_err(|e| Error::io(&self.path, e))
    }

    fn replace(&self, name: &Path, parts: &[&[u8]], mode: u32, flush: bool) -> Result<(), Error> {
        self.replace_via(name, parts, mode, flush, false)
    }

    /// [`Dir::write_atomic`] for a writer that holds this directory's lock
    /// ([`Dir::lock`]): the temporary file has a fixed name per file (`.kabi-tmp.NAME`), so
    /// one a killed writer left is replaced here rather than found by reading the whole
    /// directory first ([`Dir::clean_temps`]), and at most one per file can ever be left.
    pub fn write_atomic_locked(
        &self,
        name: impl AsRef<Path>,
        data: &[u8],
        mode: u32,
    ) -> Result<(), Error> {
        self.replace_via(name.as_ref(), &[data], mode, true, true)
    }

    fn replace_via(
        &self,
        name: &Path,
        parts: &[&[u8]],
        mode: u32,
        flush: bool,
        locked: bool,
    ) -> Result<(), Error> {
        let shown = self.show(name);
        let n = one_name(name).map_err(|e| Error::io(&shown, e))?;
        let create = |t: &OsStr| {
            rustix::fs::openat(
                &self.fd,
                t,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(mode),
            )
        };
        let mut tmp = if locked {
            let mut t = OsString::from(TEMP_PREFIX);
            t.push(n);
            t
        } else {
            temp_name(n)
        };
        let opened = match create(&tmp) {
            // a leftover at the fixed name (a killed writer's: the lock says no live writer
            // uses it) is removed, whatever it is (a file or a link, never written through;
            // an empty directory); one that cannot be removed (a directory with something in
            // it) is left, and this write takes a name of its own
            Err(Errno::EXIST) if locked => {
                let gone = match rustix::fs::unlinkat(&self.fd, &tmp, AtFlags::empty()) {
                    Ok(()) => true,
                    Err(Errno::ISDIR) | Err(Errno::PERM) => {
                        rustix::fs::unlinkat(&self.fd, &tmp, AtFlags::REMOVEDIR).is_ok()
                    }
                    Err(_) => false,
                };
                if !gone {
                    tmp = temp_name(n);
                }
                create(&tmp)
            }
            r => r,
        };
        let fd = opened.map_err(|e| Error::io(&shown, e.into()))?;
        let result = (|| -> std::io::Result<()> {
            let mut f = File::from(fd);
            write_all_parts(&mut f, parts)?;
            // the mode asked for, whatever the umask
            rustix::fs::fchmod(&f, Mode::from_raw_mode(mode))?;
            if flush {
                f.sync_data()?;
            }
            drop(f);
            crate::crash::point();
            rustix::fs::renameat(&self.fd, &tmp, &self.fd, n)?;
            Ok(())
        })();
        if let Err(e) = result {
            let _ = rustix::fs::unlinkat(&self.fd, &tmp, AtFlags::empty());
            return Err(Error::io(shown, e));
        }
        if !flush {
            return Ok(());
        }
        self.sync().map_err(|e| Error::io(&self.path, e))
    }

    /// Remove the temporary files a killed writer left here: kabi's own (`.kabi-tmp.*`) and
    /// those of older kabi versions (`.NAME.PID.NANOS.tmp`). Only call it while holding the
    /// lock that every kabi writer of this directory takes. Returns what was removed.
    pub fn clean_temps(&self) -> Vec<OsString> {
        let mut removed = Vec::new();
        let Ok(entries) = self.entries() else {
            return removed;
        };
        for e in entries {
            if e.kind == Kind::File && is_temp_name(&e.name) && self.unlink(&e.name).is_ok() {
                removed.push(e.name);
            }
        }
        removed
    }

    /// Take an exclusive `flock` on this directory, waiting at most `timeout`; `waiting` is
    /// called once if the lock is not free at once.
    pub fn lock(&self, timeout: Duration, waiting: &mut dyn FnMut()) -> Result<Lock, Error> {
        let fd = rustix::fs::openat(
            &self.fd,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::io(&self.path, e.into()))?;
        let start = Instant::now();
        let mut told = false;
        loop {
            match rustix::fs::flock(&fd, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => return Ok(Lock { _fd: fd }),
                Err(Errno::WOULDBLOCK) | Err(Errno::INTR) => {}
                Err(e) => return Err(Error::io(&self.path, e.into())),
            }
            if start.elapsed() >= timeout {
                return Err(Error::io(
                    &self.path,
                    std::io::Error::other(format!(
                        "another kabi holds the lock on this directory; gave up after {} s",
                        timeout.as_secs()
                    )),
                ));
            }
            if !told {
                waiting();
                told = true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Replace the file `path` (named by the user, outside any root: a metrics file, say)
/// atomically, as [`Dir::write_atomic`] does; its directory must exist.
pub fn write_file_atomic(path: &Path, data: &[u8], mode: u32) -> Result<(), Error> {
    let abs = std::path::absolute(path).map_err(|e| Error::io(path, e))?;
    let (parent, name) = match (abs.parent(), abs.file_name()) {
        (Some(p), Some(n)) => (p.to_path_buf(), n.to_os_string()),
        _ => {
            return Err(Error::io(path, std::io::Error::other("not a file name")));
        }
    };
    let dir = Root::host()?.open_dir(&parent)?;
    dir.write_atomic(&name, data, mode)
}

/// An exclusive lock, held until dropped.
#[derive(Debug)]
pub struct Lock {
    _fd: OwnedFd,
}

/// How long a writer waits for another one before giving up.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(300);

fn not_regular(shown: PathBuf, st: Stat) -> Error {
    Error::io(
        shown,
        std::io::Error::other(format!(
            "is {}, not a regular file; not read",
            st.kind.describe(st.mode)
        )),
    )
}

/// Read an open file to its end, refusing one larger than `cap` (by its size, before
/// allocating, and again while reading: a file may grow).
pub fn read_capped(f: impl std::io::Read, size: u64, cap: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    if size > cap {
        return Err(std::io::Error::other(format!(
            "is {size} bytes, more than the {cap} bytes kabi reads of such a file"
        )));
    }
    let mut data = Vec::with_capacity(size as usize + 1);
    f.take(cap + 1).read_to_end(&mut data)?;
    if data.len() as u64 > cap {
        return Err(std::io::Error::other(format!(
            "grew beyond {cap} bytes while it was read"
        )));
    }
    Ok(data)
}

/// Owned by root and writable by no one else: a cache kabi may trust (`mode`, `uid` of a
/// `stat`).
fn root_only(mode: u32, uid: u32) -> bool {
    uid == 0 && mode & 0o022 == 0
}

/// `rel` without its leading `/` (paths inside the root may be written either way).
fn strip_root(rel: &Path) -> &Path {
    rel.strip_prefix("/").unwrap_or(rel)
}

/// The parent and the last component of a relative path.
fn split_last(rel: &Path) -> std::io::Result<(&Path, &OsStr)> {
    match (rel.parent(), rel.file_name()) {
        (Some(p), Some(n)) => Ok((
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            },
            n,
        )),
        _ => Err(std::io::Error::from(std::io::ErrorKind::InvalidInput)),
    }
}

/// A single path component, or an error.
fn one_name(name: &Path) -> std::io::Result<&OsStr> {
    let mut c = name.components();
    match (c.next(), c.next()) {
        (Some(Component::Normal(n)), None) => Ok(n),
        _ => Err(std::io::Error::other(format!(
            "{}: not a single file name",
            name.display()
        ))),
    }
}

/// `..` and `.` removed lexically from an absolute path; `None` if `..` would leave `/`.
pub fn normalize_lexically(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::Normal(n) => out.push(n),
        }
    }
    Some(out)
}

const TEMP_PREFIX: &str = ".kabi-tmp.";

fn temp_name(name: &OsStr) -> OsString {
    use std::sync::atomic::AtomicU64;
    static N: AtomicU64 = AtomicU64::new(0);
    let mut s = OsString::from(TEMP_PREFIX);
    s.push(name);
    s.push(format!(
        ".{}.{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    s
}

/// A temporary file of a kabi writer (this version's, or the `.NAME.PID.NANOS.tmp` of
/// earlier versions).
pub fn is_temp_name(name: &OsStr) -> bool {
    let b = name.as_bytes();
    if b.starts_with(TEMP_PREFIX.as_bytes()) {
        return true;
    }
    // .NAME.PID.NANOS.tmp
    let Some(inner) = b.strip_prefix(b".").and_then(|r| r.strip_suffix(b".tmp")) else {
        return false;
    };
    let parts: Vec<&[u8]> = inner.rsplitn(3, |&c| c == b'.').collect();
    parts.len() == 3
        && !parts[2].is_empty()
        && parts[..2]
            .iter()
            .all(|p| !p.is_empty() && p.iter().all(u8::is_ascii_digit))
}

/// Resolve `rel` inside the root `root` and open it with `flags`: `openat2` when the kernel
/// has it, else [`resolve_walk`].
fn open_in_root(root: BorrowedFd<'_>, rel: &Path, flags: OFlags) -> std::io::Result<OwnedFd> {
    if OPENAT2.load(Ordering::Relaxed) != OPENAT2_MISSING {
        match rustix::fs::openat2(
            root,
            rel,
            flags,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        ) {
            Err(Errno::NOSYS) | Err(Errno::PERM)
                if OPENAT2.load(Ordering::Relaxed) != OPENAT2_OK =>
            {
                OPENAT2.store(OPENAT2_MISSING, Ordering::Relaxed);
            }
            // the kernel refuses to hand out a magic link; say so as the walk would
            Err(Errno::XDEV) => return Err(std::io::Error::from_raw_os_error(libc_eloop())),
            r => {
                if r.is_ok() {
                    OPENAT2.store(OPENAT2_OK, Ordering::Relaxed);
                }
                return r.map_err(Into::into);
            }
        }
    }
    resolve_walk(root, rel, flags)
}

const fn libc_eloop() -> i32 {
    40
}

/// The resolution `openat2(RESOLVE_IN_ROOT)` does, one component at a time: `..` at the
/// root stays at the root, an absolute link restarts at the root, at most [`MAX_LINKS`]
/// links are followed. Each step opens the next component with `O_NOFOLLOW` from the
/// descriptor of the previous one, so nothing outside the root is ever reached, whatever
/// the tree and whatever changes in it meanwhile. The last component is opened with
/// `flags` (followed unless `flags` has `O_NOFOLLOW`).
pub fn resolve_walk(root: BorrowedFd<'_>, rel: &Path, flags: OFlags) -> std::io::Result<OwnedFd> {
    use std::collections::VecDeque;
    let follow_last = !flags.contains(OFlags::NOFOLLOW);
    let dup = |fd: BorrowedFd<'_>| -> std::io::Result<OwnedFd> {
        Ok(rustix::io::fcntl_dupfd_cloexec(fd, 0)?)
    };
    // the directories walked through, from the root (empty: at the root)
    let mut stack: Vec<OwnedFd> = Vec::new();
    let mut todo: VecDeque<OsString> = VecDeque::new();
    push_components(&mut todo, rel, false);
    let mut links = 0;
    loop {
        let Some(name) = todo.pop_front() else {
            // the path ended on a directory (or was empty): open it with the caller's flags
            let here = stack.last().map(|f| f.as_fd()).unwrap_or(root);
            return Ok(
                rustix::fs::openat(here, ".", flags & !OFlags::NOFOLLOW, Mode::empty()).or_else(
                    |_| {
                        dup(here).map_err(|e| match e.raw_os_error() {
                            Some(n) => Errno::from_raw_os_error(n),
                            None => Errno::IO,
                        })
                    },
                )?,
            );
        };
        if name == ".." {
            stack.pop();
            continue;
        }
        if name == "/" {
            stack.clear();
            continue;
        }
        let here = stack.last().map(|f| f.as_fd()).unwrap_or(root);
        let last = todo.is_empty();
        let probe = rustix::fs::openat(
            here,
            name.as_os_str(),
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let st = rustix::fs::fstat(&probe)?;
        let kind = Kind::of(FileType::from_raw_mode(st.st_mode));
        if kind == Kind::Symlink && (!last || follow_last) {
            links += 1;
            if links > MAX_LINKS {
                return Err(std::io::Error::from_raw_os_error(libc_eloop()));
            }
            let target = rustix::fs::readlinkat(here, name.as_os_str(), Vec::new())?;
            let target = PathBuf::from(OsString::from_vec(target.into_bytes()));
            push_components(&mut todo, &target, true);
            continue;
        }
        if last {
            return Ok(rustix::fs::openat(
                here,
                name.as_os_str(),
                flags | OFlags::NOFOLLOW,
                Mode::empty(),
            )?);
        }
        if kind != Kind::Dir {
            return Err(std::io::Error::from_raw_os_error(20)); // ENOTDIR
        }
        stack.push(probe);
    }
}

/// Put the components of `p` at the front of `todo` (a link's target replaces the link).
fn push_components(todo: &mut std::collections::VecDeque<OsString>, p: &Path, front: bool) {
    let mut parts: Vec<OsString> = Vec::new();
    for c in p.components() {
        match c {
            Component::RootDir => parts.push("/".into()),
            Component::ParentDir => parts.push("..".into()),
            Component::CurDir | Component::Prefix(_) => {}
            Component::Normal(n) => parts.push(n.to_os_string()),
        }
    }
    if front {
        for x in parts.into_iter().rev() {
            todo.push_front(x);
        }
    } else {
        todo.extend(parts);
    }
}

/// The most flushes [`sync_all_at_once`] waits on together.
const FLUSH_THREADS: usize = 16;
/// A flushing thread's stack: it only makes one system call.
const FLUSH_THREAD_STACK: usize = 64 * 1024;

/// `fdatasync` every file, up to [`FLUSH_THREADS`] at once (one thread each: a flush waits on
/// the disk, not on a CPU, so the file system commits them together). A thread that cannot
/// be made (a `pids` limit, no memory) is no error: that file is flushed on this thread.
/// The first failure, with the file's index.
fn sync_all_at_once(files: &[&File], stack: usize) -> Result<(), (usize, std::io::Error)> {
    for (c, chunk) in files.chunks(FLUSH_THREADS).enumerate() {
        std::thread::scope(|scope| {
            let flushes: Vec<_> = chunk
                .iter()
                .map(|f| {
                    std::thread::Builder::new()
                        .stack_size(stack)
                        .spawn_scoped(scope, || f.sync_data())
                        .map_err(|_| f.sync_data())
                })
                .collect();
            flushes.into_iter().enumerate().try_for_each(|(i, h)| {
                let done = match h {
                    Ok(h) => h
                        .join()
                        .unwrap_or_else(|_| Err(std::io::Error::other("the flush panicked"))),
                    Err(inline) => inline,
                };
                done.map_err(|e| (c * FLUSH_THREADS + i, e))
            })
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// Parts are written whole and in order, however many (more than a `writev` takes at
    /// once) and however the kernel splits the writes; empty parts are nothing.
    #[test]
    fn parts_are_written_in_order() {
        let t = tempfile::tempdir().unwrap();
        let d = Root::open(t.path()).unwrap().open_dir("").unwrap();
        let owned: Vec<Vec<u8>> = (0..3000u32)
            .map(|i| match i % 7 {
                0 => Vec::new(),
                k => vec![(i % 251) as u8; (k as usize) * 333],
            })
            .collect();
        let parts: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
        d.write_unflushed_parts("f", &parts, 0o644).unwrap();
        assert_eq!(std::fs::read(t.path().join("f")).unwrap(), owned.concat());
        d.write_unflushed_parts("g", &[], 0o644).unwrap();
        assert!(std::fs::read(t.path().join("g")).unwrap().is_empty());
    }

    /// A file opened on a walk's `lstat` is that regular file or nothing: an entry replaced
    /// since (another file, a FIFO, a link) is refused, without blocking and without
    /// following the link; a `stat` that was not of a regular file opens nothing.
    #[test]
    fn a_stated_file_is_opened_only_as_the_file_seen() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("m.ko"), b"module").unwrap();
        std::fs::write(t.path().join("other.ko"), b"other").unwrap();
        std::fs::write(t.path().join("outside"), b"secret").unwrap();
        let d = Root::open(t.path()).unwrap().open_dir("").unwrap();
        let seen = d.lstat("m.ko").unwrap();
        let (mut f, st) = d.open_stated_file("m.ko", &seen).unwrap();
        assert_eq!((st.ino, st.size), (seen.ino, 6));
        let mut s = String::new();
        std::io::Read::read_to_string(&mut f, &mut s).unwrap();
        assert_eq!(s, "module");
        let replaced = |d: &Dir, seen: &Stat| {
            let e = d.open_stated_file("m.ko", seen).unwrap_err().to_string();
            assert!(e.contains("m.ko"), "{e}");
            e
        };
        // another file renamed over it
        std::fs::rename(t.path().join("other.ko"), t.path().join("m.ko")).unwrap();
        assert!(replaced(&d, &seen).contains("replaced"));
        // a FIFO in its place: refused at once (no reader or writer ever comes)
        std::fs::remove_file(t.path().join("m.ko")).unwrap();
        rustix::fs::mknodat(
            &d.fd,
            "m.ko",
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        replaced(&d, &seen);
        // a link in its place, to a file outside: not followed
        std::fs::remove_file(t.path().join("m.ko")).unwrap();
        symlink(t.path().join("outside"), t.path().join("m.ko")).unwrap();
        replaced(&d, &seen);
        // a link in its place to the very file seen, moved: not followed either
        std::fs::remove_file(t.path().join("m.ko")).unwrap();
        std::fs::write(t.path().join("m.ko"), b"module").unwrap();
        let seen = d.lstat("m.ko").unwrap();
        std::fs::rename(t.path().join("m.ko"), t.path().join("m2.ko")).unwrap();
        symlink("m2.ko", t.path().join("m.ko")).unwrap();
        let e = d.open_stated_file("m.ko", &seen).unwrap_err();
        match e {
            Error::Io { source, .. } => assert_eq!(source.raw_os_error(), Some(libc::ELOOP)),
            e => panic!("{e}"),
        }
        // what a walk saw as something else is not opened at all, whatever is there now
        std::fs::remove_file(t.path().join("m.ko")).unwrap();
        std::fs::rename(t.path().join("m2.ko"), t.path().join("m.ko")).unwrap();
        let fifo = Stat {
            kind: Kind::Other,
            mode: 0o010644,
            ..seen
        };
        assert!(replaced(&d, &fifo).contains("not a regular file"));
        assert!(d.open_stated_file("m.ko", &seen).is_ok());
    }

    fn tree() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(root.join("usr/lib/modules/k/kernel")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("secret"), b"outside").unwrap();
        std::fs::write(root.join("usr/lib/modules/k/kernel/a.ko"), b"inside").unwrap();
        symlink("usr/lib", root.join("lib")).unwrap();
        // an absolute link: inside the root it means the root's own file
        std::fs::create_dir_all(root.join("weak")).unwrap();
        symlink("/lib/modules/k/kernel/a.ko", root.join("weak/a.ko")).unwrap();
        // links that try to leave
        symlink(&outside, root.join("escape")).unwrap();
        symlink("../../../../../../outside/secret", root.join("dotdot")).unwrap();
        symlink("loop2", root.join("loop1")).unwrap();
        symlink("loop1", root.join("loop2")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            root.join("fifo").as_path(),
            FileType::Fifo,
            Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        (tmp, root, outside)
    }

    /// Every resolution gives the same answer through openat2 and through the walk.
    fn both(root: &Root, rel: &str) -> (Result<Vec<u8>, String>, Result<Vec<u8>, String>) {
        let read = |fd: std::io::Result<OwnedFd>| -> Result<Vec<u8>, String> {
            let fd = fd.map_err(|e| e.to_string())?;
            let st = rustix::fs::fstat(&fd).map_err(|e| e.to_string())?;
            if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
                return Err("not a file".into());
            }
            std::fs::read(format!(
                "/proc/self/fd/{}",
                std::os::fd::AsRawFd::as_raw_fd(&fd)
            ))
            .map_err(|e| e.to_string())
        };
        let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK;
        let a = read(
            rustix::fs::openat2(
                root.fd(),
                rel,
                flags,
                Mode::empty(),
                ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
            )
            .map_err(Into::into),
        );
        let b = read(resolve_walk(root.fd(), Path::new(rel), flags));
        (a, b)
    }

    #[test]
    fn reads_stay_inside_the_root_with_openat2_and_the_walk() {
        let (_t, r, _o) = tree();
        let root = Root::open(&r).unwrap();
        for rel in [
            "lib/modules/k/kernel/a.ko",
            "weak/a.ko",
            "/weak/a.ko",
            "../../lib/modules/k/kernel/a.ko",
        ] {
            let (a, b) = both(&root, rel);
            assert_eq!(a.as_deref(), Ok(&b"inside"[..]), "{rel} (openat2)");
            assert_eq!(b.as_deref(), Ok(&b"inside"[..]), "{rel} (walk)");
        }
        for rel in ["escape/secret", "dotdot", "loop1", "nothing"] {
            let (a, b) = both(&root, rel);
            assert!(a.is_err() && b.is_err(), "{rel}: {a:?} / {b:?}");
        }
        assert_eq!(root.read("weak/a.ko", 100).unwrap(), b"inside");
        let e = root.read("fifo", 100).unwrap_err().to_string();
        assert!(e.contains("is a FIFO, not a regular file"), "{e}");
        let e = root
            .read("lib/modules/k/kernel/a.ko", 3)
            .unwrap_err()
            .to_string();
        assert!(e.contains("more than the 3 bytes"), "{e}");
        assert_eq!(
            root.read_link("weak/a.ko").unwrap(),
            Path::new("/lib/modules/k/kernel/a.ko")
        );
    }

    #[test]
    fn dir_operations_never_go_through_a_link() {
        let (_t, r, outside) = tree();
        let root = Root::open(&r).unwrap();
        let k = root.open_dir("lib/modules/k").unwrap();
        assert_eq!(k.rel(), Path::new("lib/modules/k"));
        symlink(&outside, r.join("usr/lib/modules/k/weak-updates")).unwrap();
        let e = k.create_sub("weak-updates/x").unwrap_err().to_string();
        assert!(
            e.contains("is a symbolic link where a directory is expected"),
            "{e}"
        );
        let e = k.sub("weak-updates").unwrap_err().to_string();
        assert!(
            e.contains("is a symbolic link where a directory is expected"),
            "{e}"
        );
        // no component: a descriptor of its own for the same directory
        let same = k.sub(".").unwrap();
        assert_eq!(same.rel(), k.rel());
        assert_eq!(same.entries().unwrap().len(), k.entries().unwrap().len());
        let e = k.create_sub("../x").unwrap_err().to_string();
        assert!(e.contains("leaves its directory"), "{e}");
        // nothing was made outside
        let names: Vec<_> = std::fs::read_dir(&outside)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["secret"]);
        // an atomic write replaces a link instead of writing through it
        symlink(
            outside.join("secret"),
            r.join("usr/lib/modules/k/modules.dep"),
        )
        .unwrap();
        k.write_atomic("modules.dep", b"new", 0o644).unwrap();
        assert_eq!(std::fs::read(outside.join("secret")).unwrap(), b"outside");
        assert_eq!(k.read("modules.dep", 10).unwrap(), b"new");
        // the same without flushing
        symlink(
            outside.join("secret"),
            r.join("usr/lib/modules/k/modules.kabi-cache"),
        )
        .unwrap();
        k.write_unflushed("modules.kabi-cache", b"derived", 0o644)
            .unwrap();
        assert_eq!(std::fs::read(outside.join("secret")).unwrap(), b"outside");
        assert_eq!(k.read("modules.kabi-cache", 10).unwrap(), b"derived");
        assert!(k.entries().unwrap().iter().all(|e| !is_temp_name(&e.name)));
    }

    #[test]
    fn files_are_flushed_on_this_thread_when_no_thread_can_be_made() {
        let t = tempfile::tempdir().unwrap();
        let files: Vec<File> = (0..40)
            .map(|i| File::create(t.path().join(format!("f{i}"))).unwrap())
            .collect();
        let refs: Vec<&File> = files.iter().collect();
        // more files than threads at once, in chunks
        sync_all_at_once(&refs, FLUSH_THREAD_STACK).unwrap();
        // a stack no thread can have: every spawn fails, every file is still flushed, no panic
        assert!(
            std::thread::Builder::new()
                .stack_size(usize::MAX / 2)
                .spawn(|| ())
                .is_err()
        );
        sync_all_at_once(&refs, usize::MAX / 2).unwrap();
        // a failure names its file, in either case (a pipe cannot be flushed)
        let (r, _w) = std::io::pipe().unwrap();
        let pipe = File::from(std::os::fd::OwnedFd::from(r));
        let mut with_pipe = refs.clone();
        with_pipe.insert(21, &pipe);
        for stack in [FLUSH_THREAD_STACK, usize::MAX / 2] {
            let (i, e) = sync_all_at_once(&with_pipe, stack).unwrap_err();
            assert_eq!((i, e.raw_os_error()), (21, Some(22)));
        }
    }

    #[test]
    fn write_atomic_all_replaces_each_file_and_leaves_no_temporary_file() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("target"), b"outside").unwrap();
        std::os::unix::fs::symlink("target", t.path().join("b")).unwrap();
        std::fs::write(t.path().join("a"), b"old").unwrap();
        let root = Root::open(t.path()).unwrap();
        let d = root.open_dir("").unwrap();
        d.write_atomic_all(&[("a", b"new a"), ("b", b"new b"), ("c", b"")], 0o640)
            .unwrap();
        assert_eq!(std::fs::read(t.path().join("a")).unwrap(), b"new a");
        // the link was replaced, its target left alone
        assert!(!t.path().join("b").is_symlink());
        assert_eq!(std::fs::read(t.path().join("b")).unwrap(), b"new b");
        assert_eq!(std::fs::read(t.path().join("target")).unwrap(), b"outside");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(t.path().join("c"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o640);
        // a name that is not one file name: an error, nothing renamed, nothing left
        let e = d
            .write_atomic_all(&[("a", b"newer"), ("x/y", b"z")], 0o644)
            .unwrap_err();
        assert!(e.to_string().contains("x/y"), "{e}");
        assert_eq!(std::fs::read(t.path().join("a")).unwrap(), b"new a");
        let mut names: Vec<_> = std::fs::read_dir(t.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["a", "b", "c", "target"]);
    }

    #[test]
    fn caches_flushed_or_not_are_written_whole_below_the_root_and_through_no_link() {
        for flushed in [true, false] {
            let (_t, root, outside) = tree();
            let r = Root::open(&root).unwrap();
            let write = |files: &[(&str, &[u8])]| match flushed {
                true => r.write_cache("run/kabi", files),
                false => r.write_cache_unflushed("run/kabi", files),
            };
            // no parent: nothing is made
            assert!(!write(&[("a", b"1")]));
            assert!(!root.join("run").exists());
            std::fs::create_dir(root.join("run")).unwrap();
            assert!(write(&[("a", b"1"), ("b", b"2")]));
            assert_eq!(std::fs::read(root.join("run/kabi/a")).unwrap(), b"1");
            assert_eq!(std::fs::read(root.join("run/kabi/b")).unwrap(), b"2");
            // a link at a file's name is replaced, not written through
            std::fs::remove_file(root.join("run/kabi/a")).unwrap();
            symlink(outside.join("secret"), root.join("run/kabi/a")).unwrap();
            assert!(write(&[("a", b"3")]));
            assert!(
                std::fs::symlink_metadata(root.join("run/kabi/a"))
                    .unwrap()
                    .is_file()
            );
            assert_eq!(std::fs::read(outside.join("secret")).unwrap(), b"outside");
            // another writer holds the lock: this one leaves it the update
            let d = r.open_dir("run/kabi").unwrap();
            let held = d.lock(Duration::ZERO, &mut || {}).unwrap();
            assert!(!write(&[("a", b"4")]));
            drop(held);
            assert_eq!(std::fs::read(root.join("run/kabi/a")).unwrap(), b"3");
            // the directory a link to one outside: refused, nothing written there
            std::fs::remove_dir_all(root.join("run/kabi")).unwrap();
            symlink(&outside, root.join("run/kabi")).unwrap();
            assert!(!write(&[("secret", b"5")]));
            assert_eq!(std::fs::read(outside.join("secret")).unwrap(), b"outside");
            let left: Vec<_> = std::fs::read_dir(&outside)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(left, ["secret"], "flushed: {flushed}");
        }
    }

    #[test]
    fn a_locked_write_replaces_what_a_killed_writer_left_and_follows_no_link() {
        let (_t, root, outside) = tree();
        let r = Root::open(&root).unwrap();
        let d = r.open_dir("weak").unwrap();
        // a killed writer's temporary file, and one that is a link to a file outside
        std::fs::write(root.join("weak/.kabi-tmp.cache"), b"half").unwrap();
        symlink(outside.join("secret"), root.join("weak/.kabi-tmp.other")).unwrap();
        let _lock = d.lock(Duration::ZERO, &mut || {}).unwrap();
        d.write_atomic_locked("cache", b"new", 0o644).unwrap();
        d.write_atomic_locked("other", b"mine", 0o644).unwrap();
        assert_eq!(std::fs::read(root.join("weak/cache")).unwrap(), b"new");
        assert_eq!(std::fs::read(root.join("weak/other")).unwrap(), b"mine");
        assert!(
            std::fs::symlink_metadata(root.join("weak/other"))
                .unwrap()
                .is_file()
        );
        // nothing was written through the link, and no temporary file is left
        assert_eq!(std::fs::read(outside.join("secret")).unwrap(), b"outside");
        let left: Vec<_> = std::fs::read_dir(root.join("weak"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| is_temp_name(n))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        // a directory left at the fixed name: removed when empty; when it is not, the
        // write takes a name of its own (and still succeeds, each time)
        std::fs::create_dir(root.join("weak/.kabi-tmp.cache")).unwrap();
        d.write_atomic_locked("cache", b"again", 0o644).unwrap();
        assert!(!root.join("weak/.kabi-tmp.cache").exists());
        std::fs::create_dir_all(root.join("weak/.kabi-tmp.cache/x")).unwrap();
        for data in [b"third", b"fourt"] {
            d.write_atomic_locked("cache", data, 0o644).unwrap();
            assert_eq!(std::fs::read(root.join("weak/cache")).unwrap(), data);
        }
        assert!(root.join("weak/.kabi-tmp.cache/x").is_dir());
    }

    #[test]
    fn an_append_goes_only_to_the_file_read_and_through_no_link() {
        use std::os::unix::fs::PermissionsExt;
        if !rustix::process::geteuid().is_root() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "the file must be root's: run as root (CI=true)"
            );
            eprintln!("SKIPPED: the file must be root's (run as root)");
            return;
        }
        let (_t, root, outside) = tree();
        let r = Root::open(&root).unwrap();
        let d = r.open_dir("weak").unwrap();
        let file = root.join("weak/cache");
        std::fs::write(&file, b"head\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let id = |p: &Path| {
            use std::os::unix::fs::MetadataExt;
            let m = std::fs::symlink_metadata(p).unwrap();
            (m.dev(), m.ino())
        };
        let read = id(&file);
        let (f, st) = d.open_root_owned_rw("cache").unwrap();
        assert_eq!((st.dev, st.ino), read);
        let mut text = String::new();
        std::io::Read::read_to_string(&mut &f, &mut text).unwrap();
        assert_eq!(text, "head\n");
        assert!(d.append_open("cache", &f, b"one\n", read));
        assert!(d.append_open("cache", &f, b"two\n", read));
        assert_eq!(std::fs::read(&file).unwrap(), b"head\none\ntwo\n");
        // writable by others: not opened, not appended to
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(d.open_root_owned_rw("cache").is_none());
        assert!(!d.append_open("cache", &f, b"x\n", read));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        // in a directory writable by others: not opened
        let weak = root.join("weak");
        std::fs::set_permissions(&weak, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(d.open_root_owned_rw("cache").is_none());
        std::fs::set_permissions(&weak, std::fs::Permissions::from_mode(0o755)).unwrap();
        // replaced since it was read (another inode): not appended to, neither file
        std::fs::write(root.join("weak/new"), b"other\n").unwrap();
        std::fs::rename(root.join("weak/new"), &file).unwrap();
        assert!(!d.append_open("cache", &f, b"x\n", read));
        assert_eq!(std::fs::read(&file).unwrap(), b"other\n");
        drop(f);
        // a link at the name, even to the very file read: not opened, nothing written
        // through it
        let (f, _) = d.open_root_owned_rw("cache").unwrap();
        let now = id(&file);
        std::fs::rename(&file, outside.join("moved")).unwrap();
        symlink(outside.join("moved"), &file).unwrap();
        assert!(d.open_root_owned_rw("cache").is_none());
        assert!(!d.append_open("cache", &f, b"x\n", now));
        assert_eq!(std::fs::read(outside.join("moved")).unwrap(), b"other\n");
        // a FIFO at the name: no hang, not opened, nothing written
        std::fs::remove_file(&file).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &file,
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        assert!(d.open_root_owned_rw("cache").is_none());
        assert!(!d.append_open("cache", &f, b"x\n", id(&file)));
        // missing: not created
        std::fs::remove_file(&file).unwrap();
        assert!(d.open_root_owned_rw("cache").is_none());
        assert!(!d.append_open("cache", &f, b"x\n", read));
        assert!(!file.exists());
    }

    #[test]
    fn temp_names_are_recognised_and_cleaned() {
        assert!(is_temp_name(OsStr::new(".kabi-tmp.modules.dep.12.0")));
        assert!(is_temp_name(OsStr::new(".modules.dep.1234.56789.tmp")));
        assert!(is_temp_name(OsStr::new(".modules.kabi-cache.1.2.tmp")));
        assert!(!is_temp_name(OsStr::new("modules.dep")));
        assert!(!is_temp_name(OsStr::new(".x.tmp")));
        assert!(!is_temp_name(OsStr::new(".a.b.c.tmp")));
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join(".modules.dep.1.2.tmp"), b"").unwrap();
        std::fs::write(t.path().join("keep"), b"").unwrap();
        let root = Root::open(t.path()).unwrap();
        let d = root.open_dir("").unwrap();
        assert_eq!(d.clean_temps(), [OsString::from(".modules.dep.1.2.tmp")]);
        assert_eq!(d.entries().unwrap().len(), 1);
    }

    #[test]
    fn inside_maps_outside_paths() {
        let root = Root::open("/tmp").unwrap();
        assert_eq!(
            root.inside(Path::new("/tmp/a/b.ko")),
            Some(PathBuf::from("/a/b.ko"))
        );
        assert_eq!(root.inside(Path::new("/tmp/../etc/x")), None);
        assert_eq!(root.inside(Path::new("/../../../../X/a.ko")), None);
        let host = Root::host().unwrap();
        assert_eq!(host.inside(Path::new("/a/../b")), Some(PathBuf::from("/b")));
    }

    #[test]
    fn the_lock_is_exclusive_and_bounded() {
        let t = tempfile::tempdir().unwrap();
        let root = Root::open(t.path()).unwrap();
        let d = root.open_dir("").unwrap();
        let held = d.lock(Duration::from_secs(1), &mut || {}).unwrap();
        let mut waited = false;
        let e = d
            .lock(Duration::from_millis(100), &mut || waited = true)
            .unwrap_err();
        assert!(
            waited && e.to_string().contains("another kabi holds the lock"),
            "{e}"
        );
        drop(held);
        d.lock(Duration::from_millis(100), &mut || {}).unwrap();
    }
}

/// Write `parts` one after another, in as few `writev` calls as the kernel takes (at most
/// 1,024 parts a call, `IOV_MAX`).
fn write_all_parts(f: &mut File, parts: &[&[u8]]) -> std::io::Result<()> {
    use std::io::{IoSlice, Write};
    let mut slices: Vec<IoSlice> = parts
        .iter()
        .filter(|p| !p.is_empty())
        .map(|p| IoSlice::new(p))
        .collect();
    let mut left = &mut slices[..];
    while !left.is_empty() {
        let n = left.len().min(1024);
        match f.write_vectored(&left[..n]) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(written) => IoSlice::advance_slices(&mut left, written),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A regular file's bytes, mapped read-only and private (`mmap`), or read when it cannot be
/// mapped (an empty file, a file system without `mmap`). A lookup then touches only the pages
/// it reads: the loader's snapshot of the running kernel is searched so, where reading all of
/// it costs a page fault per 4 KiB of buffer.
///
/// Only for files that are replaced by rename, never rewritten in place: a file truncated
/// while mapped would fault (`SIGBUS`) on the pages past its new end. kabi's own files under
/// `/run/kabi` are such files (root's, written by `write_atomic`).
pub struct Mapped {
    inner: MappedInner,
}

enum MappedInner {
    Map {
        ptr: *mut std::ffi::c_void,
        len: usize,
    },
    Read(Vec<u8>),
}

// SAFETY: the mapping is read-only and owned by this value alone
unsafe impl Send for Mapped {}
// SAFETY: only shared reads of immutable memory
unsafe impl Sync for Mapped {}

impl Mapped {
    /// Map `f` (of `size` bytes by its `fstat`), refused when larger than `cap`.
    pub fn new(f: File, size: u64, cap: u64) -> std::io::Result<Mapped> {
        if size > cap {
            return Err(std::io::Error::other(format!(
                "is {size} bytes, more than the {cap} bytes kabi reads of such a file"
            )));
        }
        if size > 0 {
            // SAFETY: a fresh private read-only mapping of the whole file; the kernel picks
            // the address; the pointer is only read through `Deref`, within `len`
            let mapped = unsafe {
                rustix::mm::mmap(
                    std::ptr::null_mut(),
                    size as usize,
                    rustix::mm::ProtFlags::READ,
                    rustix::mm::MapFlags::PRIVATE,
                    &f,
                    0,
                )
            };
            if let Ok(ptr) = mapped {
                return Ok(Mapped {
                    inner: MappedInner::Map {
                        ptr,
                        len: size as usize,
                    },
                });
            }
        }
        Ok(Mapped {
            inner: MappedInner::Read(read_capped(f, size, cap)?),
        })
    }
}

impl From<Vec<u8>> for Mapped {
    fn from(v: Vec<u8>) -> Mapped {
        Mapped {
            inner: MappedInner::Read(v),
        }
    }
}

impl std::ops::Deref for Mapped {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.inner {
            // SAFETY: `ptr` maps `len` readable bytes for the life of `self`
            MappedInner::Map { ptr, len } => unsafe {
                std::slice::from_raw_parts(*ptr as *const u8, *len)
            },
            MappedInner::Read(v) => v,
        }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        if let MappedInner::Map { ptr, len } = self.inner {
            // SAFETY: unmapping the mapping this value made, once
            let _ = unsafe { rustix::mm::munmap(ptr, len) };
        }
    }
}

impl std::fmt::Debug for Mapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mapped({} bytes)", self.len())
    }
}

#[cfg(test)]
mod mapped_tests {
    use super::*;

    #[test]
    fn mapped_is_the_file_and_capped() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let data: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&p, &data).unwrap();
        let open = || {
            let f = File::open(&p).unwrap();
            let n = f.metadata().unwrap().len();
            (f, n)
        };
        let (f, n) = open();
        let m = Mapped::new(f, n, 1 << 20).unwrap();
        assert!(matches!(m.inner, MappedInner::Map { .. }));
        assert_eq!(&m[..], &data[..]);
        // replaced by rename (as write_atomic does): the mapping keeps the old bytes
        std::fs::write(dir.path().join("g"), b"new").unwrap();
        std::fs::rename(dir.path().join("g"), &p).unwrap();
        assert_eq!(&m[..], &data[..]);
        let (f, n) = open();
        assert!(Mapped::new(f, n, 2).is_err(), "over the cap");
        std::fs::write(&p, b"").unwrap();
        let (f, n) = open();
        assert!(Mapped::new(f, n, 10).unwrap().is_empty());
    }
}
