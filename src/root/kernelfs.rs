//! The running kernel's own files, `/proc` and `/sys` of the machine's root, read cheaply.
//!
//! `kabi load` reads a dozen of them per invocation (the release, the boot id, the command
//! line, `/proc/modules`, `/sys/module/NAME/initstate`, the signature switches), and udev
//! runs it once per device alias at boot. Through [`Root::read`](super::Root::read) each
//! costs eight system calls (an `O_PATH` probe, `fstat`, the real open, `fstat`, two closes,
//! two reads): the probe is there so that a FIFO or a device is never opened. Here:
//!
//! * `proc` and `sys` are opened once per process, and believed only when `fstatfs` says they
//!   are procfs and sysfs. Neither holds a device node, a FIFO or a socket: every name in them
//!   is a regular file, a directory or a link.
//! * A file is opened below them with `openat2(RESOLVE_BENEATH | RESOLVE_NO_XDEV |
//!   RESOLVE_NO_MAGICLINKS)`: it cannot be on another file system (a device bind-mounted over
//!   a name, efivarfs) nor reached through a process's `fd/` magic links, so it is one of
//!   those regular files, and needs no probe: `openat2`, two reads, `close`.
//! * What cannot change during a boot (the release, the boot id, the command line) is read
//!   once per process.
//!
//! Where `proc` or `sys` is anything else (a test's stand-in directory, a kernel without
//! `openat2`) the caller falls back to the general path, with its probe.

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use std::os::fd::OwnedFd;
use std::sync::{Mutex, OnceLock};

/// The kernel's file systems of the machine's root, when they are what they claim.
struct KernelFs {
    proc: Option<OwnedFd>,
    sys: Option<OwnedFd>,
}

static KERNEL_FS: OnceLock<KernelFs> = OnceLock::new();

/// Files that keep their contents for the whole boot.
const BOOT_CONSTANTS: [&str; 3] = [
    "proc/sys/kernel/osrelease",
    "proc/sys/kernel/random/boot_id",
    "proc/cmdline",
];

/// This process's reads of [`BOOT_CONSTANTS`] (at most one entry each).
static CONSTANTS: Mutex<Vec<(&'static str, Vec<u8>)>> = Mutex::new(Vec::new());

/// The directory `name` of the machine's root (`root`) if it is a file system of type
/// `magic`.
// the casts are needed where `f_type` or the constants are not `i64` (other ABIs)
#[allow(clippy::unnecessary_cast)]
fn open_kind(root: &OwnedFd, name: &str, magic: i64) -> Option<OwnedFd> {
    let fd = rustix::fs::openat2(
        root,
        name,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS,
    )
    .ok()?;
    let st = rustix::fs::fstatfs(&fd).ok()?;
    (st.f_type as i64 == magic).then_some(fd)
}

#[allow(clippy::unnecessary_cast)]
fn kernel_fs() -> &'static KernelFs {
    KERNEL_FS.get_or_init(|| {
        let root = rustix::fs::open(
            "/",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        );
        match root {
            Ok(root) => KernelFs {
                proc: open_kind(&root, "proc", libc::PROC_SUPER_MAGIC as i64),
                sys: open_kind(&root, "sys", libc::SYSFS_MAGIC as i64),
            },
            Err(_) => KernelFs {
                proc: None,
                sys: None,
            },
        }
    })
}

/// Files whose bytes one system call gives: the release (`uname`: the same UTS namespace's
/// string `osrelease` shows) and the task's name (`PR_GET_NAME`, the calling thread's, as
/// `/proc/thread-self/comm` shows it: the kernel's messages name the thread that calls
/// `finit_module`, and kabi's threads keep the name the process was started with).
fn asked_directly(rel: &str) -> Option<Vec<u8>> {
    let mut text = match rel {
        "proc/sys/kernel/osrelease" => rustix::system::uname().release().to_bytes().to_vec(),
        "proc/self/comm" => rustix::thread::name().ok()?.into_bytes(),
        _ => return None,
    };
    text.push(b'\n');
    Some(text)
}

fn capped(data: Vec<u8>, cap: u64) -> std::io::Result<Vec<u8>> {
    if data.len() as u64 > cap {
        return Err(std::io::Error::other(format!(
            "is more than the {cap} bytes kabi reads of such a file"
        )));
    }
    Ok(data)
}

/// Whether a read of `rel` that fills less than a page has read all of it: a sysfs
/// attribute is rendered whole (at most a page) by its first read, and a sysctl
/// (`proc/sys/...`) value too; a procfs file of several records (`proc/modules`) may stop
/// short of the buffer before its end, and is read to a read that returns nothing.
fn whole_in_one_read(rel: &str) -> bool {
    rel.starts_with("sys/") || rel.starts_with("proc/sys/")
}

/// Read all of an open kernel file, refusing more than `cap` bytes; `one_read`: see
/// [`whole_in_one_read`] (one system call fewer).
fn read_open(fd: &OwnedFd, cap: u64, one_read: bool) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = match rustix::io::read(fd, &mut buf) {
            Ok(n) => n,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&buf[..n]);
        if one_read && out.len() < buf.len() && out.len() as u64 <= cap {
            return Ok(out);
        }
        if out.len() as u64 > cap {
            return Err(std::io::Error::other(format!(
                "is more than the {cap} bytes kabi reads of such a file"
            )));
        }
    }
}

/// `rel` (`proc/...` or `sys/...`, relative to the machine's root) read through the kernel's
/// own file systems; `None` when they cannot be used for it (not procfs or sysfs, no
/// `openat2`): the caller then takes the general path.
pub fn read(rel: &str, cap: u64) -> Option<std::io::Result<Vec<u8>>> {
    let (top, rest) = rel.split_once('/')?;
    let fs = kernel_fs();
    let dir = match top {
        "proc" => fs.proc.as_ref()?,
        "sys" => fs.sys.as_ref()?,
        _ => return None,
    };
    // asked of the kernel directly: one system call instead of four, the same bytes
    if let Some(data) = asked_directly(rel) {
        return Some(capped(data, cap));
    }
    let constant = BOOT_CONSTANTS.iter().find(|c| **c == rel);
    if let Some(c) = constant {
        let known = CONSTANTS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, data)) = known.iter().find(|(k, _)| k == c) {
            return Some(capped(data.clone(), cap));
        }
    }
    let fd = match rustix::fs::openat2(
        dir,
        rest,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_XDEV | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(fd) => fd,
        // no openat2 here (or a filter refuses it), or the file is on another file system
        // mounted below (securityfs, efivarfs): the general path knows what to do
        Err(Errno::NOSYS) | Err(Errno::PERM) | Err(Errno::XDEV) => return None,
        Err(e) => return Some(Err(e.into())),
    };
    let data = read_open(&fd, cap, whole_in_one_read(rel));
    if let (Some(c), Ok(d)) = (constant, &data) {
        let mut known = CONSTANTS.lock().unwrap_or_else(|e| e.into_inner());
        if !known.iter().any(|(k, _)| k == c) {
            known.push((c, d.clone()));
        }
    }
    Some(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_and_sys_of_this_machine_read_as_the_general_path_reads_them() {
        // the fast path is taken where /proc is procfs (every test machine: cargo runs there)
        // a kernel or sandbox without openat2 has no fast path: nothing to test there (the
        // general path is tested in root::tests)
        let openat2 = rustix::fs::openat2(
            rustix::fs::CWD,
            "/",
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::empty(),
        );
        if matches!(openat2, Err(Errno::NOSYS) | Err(Errno::PERM)) {
            eprintln!("SKIPPED: no openat2 here");
            return;
        }
        let Some(r) = read("proc/sys/kernel/osrelease", 256) else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "/proc is not procfs: the fast path is not tested"
            );
            return;
        };
        let want = std::fs::read("/proc/sys/kernel/osrelease").unwrap();
        assert_eq!(r.unwrap(), want);
        // a boot constant is read once: the second answer is the same
        assert_eq!(
            read("proc/sys/kernel/osrelease", 256).unwrap().unwrap(),
            want
        );
        // the cap holds for the remembered copy too
        assert!(read("proc/sys/kernel/osrelease", 2).unwrap().is_err());
        // this task's name, asked of the kernel, reads as the file does
        assert_eq!(
            read("proc/self/comm", 64).unwrap().unwrap(),
            std::fs::read("/proc/thread-self/comm").unwrap()
        );
        // sysctl values and sysfs attributes, read in one read when short: all of them
        for rel in [
            "proc/sys/kernel/random/boot_id",
            "proc/sys/kernel/pid_max",
            "sys/devices/system/cpu/possible",
            "sys/kernel/uevent_seqnum",
        ] {
            let host = format!("/{rel}");
            if std::path::Path::new(&host).exists() {
                let want = std::fs::read(&host).unwrap();
                assert!(!want.is_empty(), "{host}");
                assert_eq!(read(rel, 4096).unwrap().unwrap(), want, "{host}");
            }
        }
        // several records, more than a page: read to the end
        let maps = read("proc/self/smaps", 4 << 20).unwrap().unwrap();
        assert!(maps.len() > 4096, "{}", maps.len());
        assert!(maps.ends_with(b"\n"));
        let cmdline = std::fs::read("/proc/cmdline").unwrap();
        assert_eq!(read("proc/cmdline", 64 << 10).unwrap().unwrap(), cmdline);
        // a file that is not there is an error, not a fall back
        let e = read("proc/sys/kernel/no-such-file", 256)
            .unwrap()
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
        // a magic link is not followed (its target could be anything: a FIFO, a device):
        // refused, or left to the general path, which refuses it too
        assert!(!matches!(read("proc/self/fd/0", 256), Some(Ok(_))));
        // `..` does not leave /proc here (the general path resolves it inside the root)
        assert!(!matches!(read("proc/../etc/passwd", 4096), Some(Ok(_))));
        // a file larger than the cap is refused
        assert!(read("proc/self/maps", 16).unwrap().is_err());
        // a file of another file system mounted below is left to the general path
        if std::path::Path::new("/sys/kernel/security/lockdown").exists() {
            assert!(read("sys/kernel/security/lockdown", 4096).is_none());
        }
        // another top directory is not this path's business
        assert!(read("etc/passwd", 4096).is_none());
    }
}
