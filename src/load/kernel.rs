//! What the loader asks of the running kernel, behind one trait: [`KernelOps`]. The real
//! implementation, [`LiveKernel`], uses `finit_module` (the file itself, or a decompressed
//! memfd; `init_module` last), `delete_module`, `/sys/module`, `/proc/modules`,
//! `/dev/kmsg` and `/bin/sh`, every path taken from one [`System`] value; tests use the
//! recording fake of [`super::fake`].

use crate::compress::Compression;
use std::io;
use std::path::{Path, PathBuf};

/// `MODULE_INIT_IGNORE_MODVERSIONS`.
pub const IGNORE_MODVERSIONS: u32 = 1;
/// `MODULE_INIT_IGNORE_VERMAGIC`.
pub const IGNORE_VERMAGIC: u32 = 2;
/// `MODULE_INIT_COMPRESSED_FILE`.
pub const COMPRESSED_FILE: u32 = 4;
/// `delete_module` flag `O_NONBLOCK` (kmod always passes it).
pub const REMOVE_NOWAIT: u32 = 0o4000;
/// `delete_module` flag `O_TRUNC`: force (rmmod `-f`).
pub const REMOVE_FORCE: u32 = 0o1000;

/// Where the running system is seen: `/proc`, `/sys`, `/dev/kmsg` and the shell that runs
/// modprobe.d `install` / `remove` commands. One value, so that nothing below hard-codes a
/// path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct System {
    pub proc: PathBuf,
    pub sys: PathBuf,
    pub kmsg: PathBuf,
    pub shell: PathBuf,
}

impl Default for System {
    fn default() -> Self {
        System::host()
    }
}

impl System {
    /// The machine kabi runs on.
    pub fn host() -> System {
        System::under(Path::new("/"))
    }

    /// A system whose `/proc`, `/sys`, `/dev` and `/bin/sh` live below `root`.
    pub fn under(root: &Path) -> System {
        System {
            proc: root.join("proc"),
            sys: root.join("sys"),
            kmsg: root.join("dev/kmsg"),
            shell: root.join("bin/sh"),
        }
    }

    /// `uname -r`, from `<proc>/sys/kernel/osrelease`.
    pub fn release(&self) -> Option<String> {
        // this machine's own: what uname says (one system call; the same text)
        if self.proc == Path::new("/proc") {
            let u = rustix::system::uname();
            return Some(u.release().to_string_lossy().into_owned()).filter(|s| !s.is_empty());
        }
        let b = read_small(&self.proc.join("sys/kernel/osrelease"), 4096)?;
        Some(String::from_utf8_lossy(&b).trim().to_string()).filter(|s| !s.is_empty())
    }

    /// `<proc>/cmdline`, as kmod reads it (at most 4095 bytes).
    pub fn cmdline(&self) -> Option<Vec<u8>> {
        read_small(&self.proc.join("cmdline"), 4095)
    }
}

/// A module's state in the kernel, as `kmod_module_get_initstate` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitState {
    Live,
    Coming,
    Going,
    /// Not in the kernel (no `/sys/module/<name>`): the errno.
    Absent(i32),
}

/// The kernel, as the loader uses it.
pub trait KernelOps: Sync {
    /// Insert a module file with these parameters and `MODULE_INIT_*` flags.
    fn insert(&self, path: &Path, params: &str, flags: u32) -> io::Result<()>;
    /// [`KernelOps::insert`] of `path` already open as `file` (a regular file of `len`
    /// bytes, from [`open_regular_sized`]): the kernel gets the file the caller read.
    fn insert_file(
        &self,
        _file: &std::fs::File,
        _len: u64,
        path: &Path,
        params: &str,
        flags: u32,
    ) -> io::Result<()> {
        self.insert(path, params, flags)
    }
    /// `delete_module(name, flags)`.
    fn delete(&self, name: &str, flags: u32) -> io::Result<()>;
    /// `/sys/module/<name>/initstate` (a directory without it: coming, as kmod 30 says).
    fn initstate(&self, name: &str) -> InitState;
    /// `/sys/module/<name>/refcnt`.
    fn refcnt(&self, name: &str) -> io::Result<i64>;
    /// `/sys/module/<name>/holders`, in directory order.
    fn holders(&self, name: &str) -> io::Result<Vec<String>>;
    /// The names `/proc/modules` lists, in its order.
    fn loaded(&self) -> io::Result<Vec<String>>;
    /// A loaded module's size (`/sys/module/<name>/coresize`, else `/proc/modules`).
    fn size(&self, name: &str) -> io::Result<i64>;
    /// A cursor on the kernel log at its current end.
    fn log_cursor(&self) -> Option<Box<dyn LogCursor + Send>>;
    /// Run a modprobe.d command as `system(3)` does (`sh -c COMMAND`) with
    /// `MODPROBE_MODULE=module` in its environment; its exit status (`Err` when it could
    /// not be run at all).
    fn run_command(&self, command: &str, module: &str) -> io::Result<i32>;
    /// Whether commands can be run at all (a shell exists).
    fn can_run_commands(&self) -> bool;
    /// `/sys/devices/**/modalias` values (for coldplug), sorted and unique.
    fn modaliases(&self) -> Vec<String>;
}

/// Messages the kernel logged after a point.
pub trait LogCursor {
    /// The records logged since the cursor was made (or last read), text only.
    fn read_new(&mut self) -> Vec<String>;
}

/// The real kernel.
#[derive(Debug, Clone)]
pub struct LiveKernel {
    pub system: System,
}

impl LiveKernel {
    pub fn new(system: System) -> LiveKernel {
        LiveKernel { system }
    }

    fn module_dir(&self, name: &str) -> PathBuf {
        self.system.sys.join("module").join(name)
    }

    /// Which compressed format the kernel decompresses itself (`/sys/module/compression`).
    fn kernel_decompresses(&self, kind: Compression) -> bool {
        read_small(&self.system.sys.join("module/compression"), 64)
            .map(|s| String::from_utf8_lossy(&s).trim() == kind.name())
            .unwrap_or(false)
    }
}

impl KernelOps for LiveKernel {
    fn insert(&self, path: &Path, params: &str, flags: u32) -> io::Result<()> {
        let (f, len) = open_regular_sized(path)?;
        self.insert_file(&f, len, path, params, flags)
    }

    fn insert_file(
        &self,
        f: &std::fs::File,
        len: u64,
        path: &Path,
        params: &str,
        flags: u32,
    ) -> io::Result<()> {
        let params = std::ffi::CString::new(params).map_err(io::Error::other)?;
        let mut head = [0u8; 8];
        let n = rustix::io::pread(f, &mut head, 0)?;
        let kind = Compression::detect(&head[..n]).unwrap_or(Compression::None);
        let flags = flags as i32;
        if kind == Compression::None {
            return rustix::system::finit_module(f, &params, flags).map_err(Into::into);
        }
        if self.kernel_decompresses(kind) {
            match rustix::system::finit_module(f, &params, flags | COMPRESSED_FILE as i32) {
                Err(rustix::io::Errno::OPNOTSUPP) => {}
                r => return r.map_err(Into::into),
            }
        }
        // decompressed here, into memory the kernel reads through a file descriptor
        if len > crate::compress::DEFAULT_LIMIT {
            return Err(io::Error::other(format!(
                "{}: {len} bytes is larger than a module can be",
                path.display()
            )));
        }
        // from its start, whatever a caller's reads did to the offset
        let mut data = Vec::with_capacity(len as usize);
        let mut at = 0u64;
        while at < len {
            let mut chunk = vec![0u8; (len - at).min(1 << 20) as usize];
            let n = std::os::unix::fs::FileExt::read_at(f, &mut chunk, at)?;
            if n == 0 {
                break;
            }
            data.extend_from_slice(&chunk[..n]);
            at += n as u64;
        }
        let image = crate::compress::decompress(kind, &data, crate::compress::DEFAULT_LIMIT)
            .map_err(io::Error::other)?;
        let fd = rustix::fs::memfd_create("kabi-module", rustix::fs::MemfdFlags::CLOEXEC)?;
        let mut file = std::fs::File::from(fd);
        io::Write::write_all(&mut file, &image)?;
        match rustix::system::finit_module(&file, &params, flags) {
            Err(rustix::io::Errno::NOSYS) | Err(rustix::io::Errno::BADF) => {
                if flags != 0 {
                    return Err(io::Error::from_raw_os_error(22));
                }
                rustix::system::init_module(&image, &params).map_err(Into::into)
            }
            r => r.map_err(Into::into),
        }
    }

    fn delete(&self, name: &str, flags: u32) -> io::Result<()> {
        let c = std::ffi::CString::new(name).map_err(io::Error::other)?;
        rustix::system::delete_module(&c, flags as i32).map_err(Into::into)
    }

    fn initstate(&self, name: &str) -> InitState {
        let dir = self.module_dir(name);
        match read_small(&dir.join("initstate"), 32) {
            Some(s) => match s.as_slice() {
                b"live\n" => InitState::Live,
                b"coming\n" => InitState::Coming,
                b"going\n" => InitState::Going,
                _ => InitState::Absent(22),
            },
            None => match rustix::fs::stat(&dir) {
                Ok(m) if rustix::fs::FileType::from_raw_mode(m.st_mode).is_dir() => {
                    InitState::Coming
                }
                Ok(_) => InitState::Absent(20),
                Err(e) => InitState::Absent(e.raw_os_error()),
            },
        }
    }

    fn refcnt(&self, name: &str) -> io::Result<i64> {
        let s = std::fs::read_to_string(self.module_dir(name).join("refcnt"))?;
        s.trim()
            .parse()
            .map_err(|_| io::Error::from_raw_os_error(22))
    }

    fn holders(&self, name: &str) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(self.module_dir(name).join("holders"))? {
            out.push(e?.file_name().to_string_lossy().into_owned());
        }
        Ok(out)
    }

    fn loaded(&self) -> io::Result<Vec<String>> {
        let text = std::fs::read_to_string(self.system.proc.join("modules"))?;
        Ok(text
            .lines()
            .filter_map(|l| l.split([' ', '\t']).next())
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .collect())
    }

    fn size(&self, name: &str) -> io::Result<i64> {
        let dir = self.module_dir(name);
        std::fs::metadata(&dir)?;
        if let Ok(s) = std::fs::read_to_string(dir.join("coresize")) {
            return s
                .trim()
                .parse()
                .map_err(|_| io::Error::from_raw_os_error(22));
        }
        let text = std::fs::read_to_string(self.system.proc.join("modules"))?;
        for l in text.lines() {
            let mut w = l.split([' ', '\t']);
            if w.next() == Some(name) {
                return w
                    .next()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| io::Error::from_raw_os_error(22));
            }
        }
        Err(io::Error::from_raw_os_error(2))
    }

    fn log_cursor(&self) -> Option<Box<dyn LogCursor + Send>> {
        use std::os::unix::fs::OpenOptionsExt;
        let f = std::fs::File::options()
            .read(true)
            .custom_flags(0o4000) // O_NONBLOCK
            .open(&self.system.kmsg)
            .ok()?;
        rustix::fs::seek(&f, rustix::fs::SeekFrom::End(0)).ok()?;
        Some(Box::new(Kmsg(f)))
    }

    fn run_command(&self, command: &str, module: &str) -> io::Result<i32> {
        use std::os::unix::process::CommandExt;
        // as system(3): execl("/bin/sh", "sh", "-c", command)
        let status = std::process::Command::new(&self.system.shell)
            .arg0("sh")
            .arg("-c")
            .arg(command)
            .env("MODPROBE_MODULE", module)
            .status()?;
        // system(3) as kmod reads it: WEXITSTATUS, which is 0 for a command killed by a signal
        Ok(status.code().unwrap_or(0))
    }

    fn can_run_commands(&self) -> bool {
        std::fs::metadata(&self.system.shell).is_ok_and(|m| m.is_file())
    }

    fn modaliases(&self) -> Vec<String> {
        let mut aliases = std::collections::BTreeSet::new();
        let mut stack = vec![self.system.sys.join("devices")];
        let mut seen = std::collections::HashSet::new();
        while let Some(d) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in rd.flatten() {
                let Ok(t) = e.file_type() else { continue };
                if t.is_dir() {
                    use std::os::unix::fs::MetadataExt;
                    if let Ok(m) = e.metadata()
                        && !seen.insert((m.dev(), m.ino()))
                    {
                        continue;
                    }
                    stack.push(e.path());
                } else if e.file_name() == "modalias"
                    && let Some(a) = read_small(&e.path(), 4096)
                {
                    let a = String::from_utf8_lossy(&a).trim().to_string();
                    if !a.is_empty() {
                        aliases.insert(a);
                    }
                }
            }
        }
        aliases.into_iter().collect()
    }
}

/// A small file of the kernel's (procfs, sysfs), at most `cap` bytes.
///
/// The machine's own `/proc` and `/sys` are read through [`crate::root::read_kernel_file`]
/// (no probe, boot constants once per process).
fn read_small(path: &Path, cap: u64) -> Option<Vec<u8>> {
    use std::io::Read;
    if let Some(rel) = path.to_str().and_then(|p| p.strip_prefix('/'))
        && (rel.starts_with("proc/") || rel.starts_with("sys/"))
        && let Some(r) = crate::root::read_kernel_file(rel, 1 << 20)
    {
        let mut b = r.ok()?;
        b.truncate(cap as usize);
        return Some(b);
    }
    let f = std::fs::File::open(path).ok()?;
    let mut out = Vec::new();
    f.take(cap).read_to_end(&mut out).ok()?;
    Some(out)
}

/// Open a module file or an index: a regular file only, with its size. The path is `stat`ed
/// first (links followed, as the open follows them) and anything but a regular file is
/// refused unopened: opening a device has effects of its own (a watchdog armed, a tape
/// rewound, a terminal made the controlling one). The open (`O_NONBLOCK | O_NOCTTY`) must
/// then find the same file, still a regular one.
pub fn open_regular_sized(path: &Path) -> io::Result<(std::fs::File, u64)> {
    open_regular_as(path, None)
}

/// [`open_regular_sized`] with what `stat` of `path` (links followed) already said, when the
/// caller asked (one system call fewer).
fn open_regular_as(
    path: &Path,
    known: Option<&std::fs::Metadata>,
) -> io::Result<(std::fs::File, u64)> {
    use rustix::fs::{FileType, Mode, OFlags};
    use std::os::unix::fs::MetadataExt;
    let not_regular = || io::Error::other(format!("{}: not a regular file", path.display()));
    let (regular, dev, ino) = match known {
        Some(m) => (m.is_file(), m.dev(), m.ino()),
        None => {
            let st = rustix::fs::stat(path)?;
            let regular = FileType::from_raw_mode(st.st_mode) == FileType::RegularFile;
            (regular, st.st_dev as u64, st.st_ino as u64)
        }
    };
    if !regular {
        return Err(not_regular());
    }
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let now = rustix::fs::fstat(&fd)?;
    if FileType::from_raw_mode(now.st_mode) != FileType::RegularFile {
        return Err(not_regular());
    }
    if (now.st_dev as u64, now.st_ino as u64) != (dev, ino) {
        return Err(io::Error::other(format!(
            "{}: replaced while it was opened",
            path.display()
        )));
    }
    Ok((std::fs::File::from(fd), now.st_size as u64))
}

/// The identity of an open file's contents as `fstat` shows them: its size and modification
/// time (a write changes the time, at the clock's granularity). Not the change time: a file
/// that another is renamed over (unlinked, so its link count changes) keeps its contents.
type ContentsId = (u64, i64, u64);

fn contents_id(f: &std::fs::File) -> io::Result<ContentsId> {
    let st = rustix::fs::fstat(f)?;
    Ok((
        st.st_size as u64,
        st.st_mtime as i64,
        st.st_mtime_nsec as u64,
    ))
}

/// A module opened for its prediction and then its insert ([`KernelOps::insert_file`]): the
/// verdict is on the file the kernel gets, even if another file is renamed over its path.
#[derive(Debug)]
pub struct Opened {
    pub file: std::fs::File,
    pub len: u64,
    id: ContentsId,
}

impl Opened {
    /// [`open_regular_sized`], with the identity of the contents as opened; `known`: what
    /// `stat` of `path` already said.
    pub fn open(path: &Path, known: Option<&std::fs::Metadata>) -> io::Result<Opened> {
        let (file, len) = open_regular_as(path, known)?;
        let id = contents_id(&file)?;
        Ok(Opened { file, len, id })
    }

    /// Not rewritten in place since it was opened (so not since it was judged).
    pub fn unchanged(&self) -> bool {
        contents_id(&self.file).is_ok_and(|id| id == self.id)
    }
}

/// `/dev/kmsg`, positioned at its end.
struct Kmsg(std::fs::File);

impl LogCursor for Kmsg {
    fn read_new(&mut self) -> Vec<String> {
        use std::io::Read;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 8192];
        // each read returns one record; stop at EAGAIN (no more), bounded in count
        for _ in 0..10_000 {
            match self.0.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let rec = String::from_utf8_lossy(&buf[..n]);
                    let msg = rec.split_once(';').map(|x| x.1).unwrap_or(&rec);
                    out.push(msg.lines().next().unwrap_or("").to_string());
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Was `path` opened since the watch began? (inotify's `IN_OPEN`, read without waiting.)
    fn opened_since(inot: &std::os::fd::OwnedFd) -> bool {
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 1024];
        let mut r = rustix::fs::inotify::Reader::new(inot, &mut buf);
        let mut seen = false;
        while let Ok(e) = r.next() {
            seen |= e.events().contains(rustix::fs::inotify::ReadFlags::OPEN);
        }
        seen
    }

    #[test]
    fn only_a_regular_file_is_opened_and_anything_else_is_refused_unopened() {
        use rustix::fs::inotify;
        let t = tempfile::tempdir().unwrap();
        let fifo = t.path().join("m.ko");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let link = t.path().join("link.ko");
        std::os::unix::fs::symlink("m.ko", &link).unwrap();
        let inot =
            inotify::init(inotify::CreateFlags::NONBLOCK | inotify::CreateFlags::CLOEXEC).unwrap();
        inotify::add_watch(&inot, &fifo, inotify::WatchFlags::OPEN).unwrap();
        for p in [&fifo, &link] {
            let e = open_regular_sized(p).unwrap_err();
            assert!(e.to_string().contains("not a regular file"), "{e}");
        }
        // the same when the caller's stat is given
        let known = std::fs::metadata(&link).unwrap();
        let e = Opened::open(&link, Some(&known)).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        assert!(!opened_since(&inot), "the FIFO was opened");
        // the watch works: a regular file is opened, with its size
        let file = t.path().join("r.ko");
        std::fs::write(&file, b"\x7fELF module").unwrap();
        inotify::add_watch(&inot, &file, inotify::WatchFlags::OPEN).unwrap();
        let (_f, len) = open_regular_sized(&file).unwrap();
        assert_eq!(len, 11);
        assert!(opened_since(&inot));
        // a stat of another file than the one opened (replaced in between): refused
        let other = t.path().join("other.ko");
        std::fs::write(&other, b"\x7fELF other").unwrap();
        let stale = std::fs::metadata(&other).unwrap();
        let e = Opened::open(&file, Some(&stale)).unwrap_err();
        assert!(
            e.to_string().contains("replaced while it was opened"),
            "{e}"
        );
        let o = Opened::open(&file, Some(&std::fs::metadata(&file).unwrap())).unwrap();
        assert!(o.len == 11 && o.unchanged());
        // a directory is refused too, and a missing file says so
        assert!(open_regular_sized(t.path()).is_err());
        let e = open_regular_sized(&t.path().join("none.ko")).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(2));
    }
}
