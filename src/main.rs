//! One multicall binary: what it does depends on the name it was invoked as.
//!
//! `main` is the C entry point itself (`no_main`): the standard library's start-up would
//! otherwise read `/proc/self/maps` and install a signal stack for its stack-overflow message,
//! some twenty system calls and 100,000 instructions before the first line of kabi, paid by
//! every `modprobe` udev runs at boot. What of that start-up matters is done here: the
//! standard descriptors are made sure to be open, SIGPIPE is the default, and a panic ends the
//! process with status 101 as it would have.

// The test harness of this target brings its own `main`.
#![cfg_attr(not(test), no_main)]
#![cfg_attr(test, allow(dead_code))]

use std::ffi::OsString;

// Without the standard start-up, `std::env::args_os()` has the arguments only where the C
// library hands them to `.init_array` functions (glibc); elsewhere it would be empty and every
// personality would run without arguments.
#[cfg(all(not(test), not(target_env = "gnu")))]
compile_error!("kabi's own C entry point needs glibc (std::env::args_os() without std's start-up)");

type Entry = fn(Vec<OsString>) -> i32;

/// argv[0] basename → entry point (kmod's model: `main` only looks the name up).
const COMMANDS: &[(&str, Entry)] = &[
    ("modinfo", kabi::cli::main_modinfo),
    ("depmod", kabi::cli::main_depmod),
    ("weak-modules", kabi::cli::main_weak_modules),
    ("weak-modules2", kabi::cli::main_weak_modules2),
    ("modprobe", kabi::cli::main_modprobe),
    ("insmod", kabi::cli::main_insmod),
    ("rmmod", kabi::cli::main_rmmod),
    ("lsmod", kabi::cli::main_lsmod),
    ("init", kabi::cli::main_init),
    ("kabi", kabi::cli::main_kabi),
];

/// Descriptors 0, 1 and 2 open: a closed one is opened on `/dev/null`, so that no file kabi
/// opens later becomes its standard output or error (and receives its messages). One `poll`.
/// Where `/dev/null` cannot be opened (kabi as the `/init` of an initramfs without
/// `/dev/console`, the kernel's built-in one included: the kernel then starts it with nothing
/// open, before any `/dev` exists; the standard start-up aborted there, a kernel panic) the
/// place is held by a descriptor of `/` opened `O_PATH`, on which reads and writes fail
/// (`EBADF`, which the standard streams ignore); `run_init` puts the console there once
/// devtmpfs is mounted.
fn sanitize_standard_fds() {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: `fds` is a valid array of three pollfd; a zero timeout does not wait.
    let polled = unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) } >= 0;
    for p in fds {
        let closed = if polled {
            p.revents & libc::POLLNVAL != 0
        } else {
            // SAFETY: F_GETFD on a descriptor number only reads its flags
            let r = unsafe { libc::fcntl(p.fd, libc::F_GETFD) };
            r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EBADF)
        };
        if closed {
            // SAFETY: constant NUL-terminated paths; the descriptor is the lowest free one,
            // which is the closed standard descriptor (the lower ones are open by now)
            unsafe {
                if libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) < 0 {
                    libc::open(c"/".as_ptr(), libc::O_PATH | libc::O_DIRECTORY);
                }
            }
        }
    }
}

fn run() -> i32 {
    let args: Vec<OsString> = std::env::args_os().collect();
    let invoked = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("kabi");
    let entry = COMMANDS
        .iter()
        .find(|(name, _)| *name == invoked)
        .map(|(_, f)| *f)
        .unwrap_or(kabi::cli::main_kabi);
    if invoked != "init" {
        tune_heap();
    }
    entry(args)
}

/// glibc's allocator set for a command that runs and exits (`M_TOP_PAD`, `M_MMAP_THRESHOLD`,
/// `M_TRIM_THRESHOLD`), in bytes. By default the allocator adapts as it goes: a block of
/// 128 KiB or more is mapped on its own until one is freed, which raises the threshold to
/// that size; a thread's heap starts at 128 KiB and grows by the pages an allocation needs,
/// one `mprotect` at a time; freed memory at a heap's top is given back. So what a run costs
/// depended on the order of its frees: a cold `depmod` of the 4,023 `.ko.zst` of Debian's
/// amd64 tree took 243 or 296 ms (twice the system time) between two builds that differed
/// in how files were opened, and a `depmod` after one link changed in a 1,100-module tree
/// made 750 `mprotect` calls, its threads contending for the address space's lock (now about
/// 20). Fixed: the main heap grows 16 MiB at a time and a thread's heap starts with 16 MiB
/// (reserved, not resident, until used); blocks up to 32 MiB (a decompressed module) come
/// from a heap and are reused; up to 64 MiB freed at a heap's top are kept rather than given
/// back and faulted in again. A run's peak memory grows by what it keeps for reuse (a cold
/// `depmod` of the amd64 tree: 55 to 63 MiB by `scripts/bench-depmod.sh`; kmod's: 76 MiB).
/// The values are accepted by 64-bit glibc (32 MiB is its largest mapping threshold); an
/// administrator's `GLIBC_TUNABLES` for them is overridden.
///
/// What a thread's heap keeps after a decode is not counted in the decompression budget
/// ([`kabi::compress::BUDGET`]), and glibc gives threads heaps of their own up to eight per
/// CPU: at `-j 16` on two CPUs, eight zstd bombs left 11 heaps of 19 MiB each resident and
/// the peak went from 439-520 MiB (`-j 2`) to 585-723 MiB. So the heaps are also limited to
/// one more than the CPUs the process may run on ([`heap_count`]; glibc hands them out in
/// turn, the main thread's among them): what they keep grows with the machine, as the
/// default thread count does, not with `-j`.
const HEAP: [(libc::c_int, libc::c_int); 3] = [
    (libc::M_TOP_PAD, 16 << 20),
    (
        libc::M_MMAP_THRESHOLD,
        kabi::compress::HEAP_MAPPED_FROM as libc::c_int,
    ),
    (libc::M_TRIM_THRESHOLD, 64 << 20),
];

/// One heap more than the CPUs this process may run on (`sched_getaffinity`: one system
/// call); none when that is unknown (more CPUs than the call's set holds), and glibc's
/// default stays.
fn heap_count() -> Option<libc::c_int> {
    let cpus = rustix::thread::sched_getaffinity(None).ok()?.count();
    libc::c_int::try_from(cpus.saturating_add(1)).ok()
}

/// [`HEAP`], for every personality but `/init`, which lives on after its work, it and the
/// commands it runs itself (forked from it, see `run_child`): in an initramfs memory is
/// scarce, and glibc's defaults give it back.
fn tune_heap() {
    let arenas = heap_count().map(|n| (libc::M_ARENA_MAX, n));
    for (param, value) in HEAP.into_iter().chain(arenas) {
        // SAFETY: before any thread is started; mallopt only sets the allocator's parameter
        // (a value it refuses leaves the default)
        unsafe {
            libc::mallopt(param, value);
        }
    }
}

#[cfg(not(test))]
#[unsafe(no_mangle)]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    kabi::phase::mark("main");
    sanitize_standard_fds();
    // A closed pipe ends the program quietly, as it does kmod's tools (the default
    // disposition, whatever the parent left).
    // SAFETY: at the start of main, before any thread: restores the default disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // the arguments come from glibc's `.init_array` call, as under the standard start-up
    let code = std::panic::catch_unwind(run).unwrap_or(101);
    kabi::phase::mark("end");
    kabi::phase::dump();
    #[cfg(kabi_touch)]
    if std::env::var_os("KABI_TOUCH").is_some() {
        touch_dump();
    }
    // flushes standard output, as returning from a Rust `main` would
    std::process::exit(code)
}

/// For `tests/qemu_code_touch.rs` only (compiled with `--cfg kabi_touch`, never shipped): each
/// mapping of the process as it ends, and which of its pages are mapped
/// (`/proc/self/pagemap`, bit 63), to standard error as `TOUCH START PERMS PATH PAGES
/// PRESENT: INDEX...`. With the kernel's fault-around at one page, a mapped page of code is a
/// page that ran.
#[cfg(kabi_touch)]
fn touch_dump() {
    use std::io::{Read, Seek, SeekFrom};
    let (Ok(maps), Ok(mut pagemap)) = (
        std::fs::read_to_string("/proc/self/maps"),
        std::fs::File::open("/proc/self/pagemap"),
    ) else {
        eprintln!("TOUCH unavailable");
        return;
    };
    let mut out = String::new();
    for l in maps.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        let Some((a, b)) = f.first().and_then(|r| r.split_once('-')) else {
            continue;
        };
        let (Ok(a), Ok(b)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) else {
            continue;
        };
        let pages = usize::try_from((b - a) / 4096).unwrap_or(0);
        let mut entries = vec![0u8; pages * 8];
        if pagemap.seek(SeekFrom::Start(a / 4096 * 8)).is_err()
            || pagemap.read_exact(&mut entries).is_err()
        {
            continue;
        }
        let present: Vec<String> = entries
            .chunks_exact(8)
            .enumerate()
            .filter(|(_, e)| e[7] & 0x80 != 0)
            .map(|(i, _)| i.to_string())
            .collect();
        out += &format!(
            "TOUCH {a:x} {} {} {pages} {}: {}\n",
            f.get(1).unwrap_or(&"-"),
            f.get(5).unwrap_or(&"-"),
            present.len(),
            present.join(" ")
        );
    }
    eprint!("{out}");
}

#[cfg(test)]
mod tests {
    /// With standard output closed and no `/dev/null` (a private mount namespace with an
    /// empty `/dev`), descriptor 1 is held by an `O_PATH` placeholder, not left for the next
    /// file kabi opens. Run in a child process (root only: it needs a mount namespace).
    #[test]
    fn a_closed_standard_descriptor_is_held_even_without_dev_null() {
        if !rustix::process::geteuid().is_root() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "run as root (CI=true)"
            );
            return;
        }
        // SAFETY: the child only makes system calls and exits
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: in the child alone: its own mount namespace, an empty /dev, fd 1 closed
            let code = unsafe {
                if libc::unshare(libc::CLONE_NEWNS) != 0
                    || libc::mount(
                        c"none".as_ptr(),
                        c"/".as_ptr(),
                        std::ptr::null(),
                        libc::MS_REC | libc::MS_PRIVATE,
                        std::ptr::null(),
                    ) != 0
                    || libc::mount(
                        c"none".as_ptr(),
                        c"/dev".as_ptr(),
                        c"tmpfs".as_ptr(),
                        0,
                        std::ptr::null(),
                    ) != 0
                {
                    2
                } else {
                    libc::close(1);
                    super::sanitize_standard_fds();
                    let fl = libc::fcntl(1, libc::F_GETFL);
                    let held = fl >= 0 && (fl & libc::O_PATH) != 0;
                    if held { 0 } else { 1 }
                }
            };
            // SAFETY: leave the child without the test harness's exit handlers
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: waiting for the child just made
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status));
        assert_eq!(
            libc::WEXITSTATUS(status),
            0,
            "2: no mount namespace; 1: fd 1 not held"
        );
    }
}
