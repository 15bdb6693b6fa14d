//! One multicall binary: what it does depends on the name it was invoked as.
//!
//! `main` is the C entry point itself (`no_main`): the standard library's start-up would
//! otherwise read `/proc/self/maps` and install a signal stack for its stack-overflow message,
//! some twenty system calls and 100,000 instructions before the first line of kabi, paid by
//! every `modprobe` udev runs at boot. What of that start-up matters is done here: the
//! standard descriptors are made sure to be open, SIGPIPE is the default, and a panic ends the
//! process with status 101 as it would have.

#![no_main]

use std::ffi::OsString;

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
fn sanitize_standard_fds() {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: `fds` is a valid array of three pollfd; a zero timeout does not wait.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) };
    if r < 0 {
        return;
    }
    for p in fds {
        if p.revents & libc::POLLNVAL != 0 {
            // SAFETY: a constant NUL-terminated path; the descriptor is the lowest free
            // one, which is the closed standard descriptor (the lower ones are open).
            unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
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
    entry(args)
}

#[unsafe(no_mangle)]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    sanitize_standard_fds();
    // A closed pipe ends the program quietly, as it does kmod's tools (the default
    // disposition, whatever the parent left).
    // SAFETY: at the start of main, before any thread: restores the default disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // the arguments come from glibc's `.init_array` call, as under the standard start-up
    let code = std::panic::catch_unwind(run).unwrap_or(101);
    // flushes standard output, as returning from a Rust `main` would
    std::process::exit(code)
}
