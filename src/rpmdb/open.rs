//! Opening a file below a root the way every data file is opened: resolved inside the root
//! (`openat2` with `RESOLVE_IN_ROOT`, so an absolute symlink such as
//! `var/lib/rpm -> /usr/lib/sysimage/rpm` means the root's own `/usr/...`), non-blocking
//! (a FIFO in place of a file cannot hang the reader), and refused unless it is a regular file.

use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};

/// Open `rel` (a path relative to the root; a leading `/` is ignored) below `root` read-only.
/// `Ok(None)` when it does not exist; an error when it exists but is not a regular file or
/// cannot be opened. The returned path is `root` joined with `rel`, for messages.
pub fn open_regular(root: &Path, rel: &Path) -> io::Result<Option<(File, PathBuf)>> {
    let rel = rel.strip_prefix("/").unwrap_or(rel);
    let shown = root.join(rel);
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    let fd: OwnedFd = {
        let dir = match rustix::fs::open(
            root,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(d) => d,
            Err(e) => return Err(io::Error::from(e)),
        };
        match rustix::fs::openat2(
            &dir,
            rel,
            flags,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        ) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) | Err(rustix::io::Errno::NOTDIR) => return Ok(None),
            // kernels before 5.6: the path as it is (the same as RESOLVE_IN_ROOT unless a
            // symlink on the way is absolute or climbs out)
            Err(rustix::io::Errno::NOSYS) => match rustix::fs::open(&shown, flags, Mode::empty()) {
                Ok(fd) => fd,
                Err(rustix::io::Errno::NOENT) | Err(rustix::io::Errno::NOTDIR) => {
                    return Ok(None);
                }
                Err(e) => return Err(e.into()),
            },
            Err(e) => return Err(e.into()),
        }
    };
    let st = rustix::fs::fstat(&fd)?;
    let kind = rustix::fs::FileType::from_raw_mode(st.st_mode);
    if kind != rustix::fs::FileType::RegularFile {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a regular file ({kind:?})"),
        ));
    }
    Ok(Some((File::from(fd), shown)))
}
