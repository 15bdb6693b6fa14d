//! One multicall binary: what it does depends on the name it was invoked as.

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

fn main() {
    // A closed pipe ends the program quietly, as it does kmod's tools (Rust ignores SIGPIPE
    // and turns it into write errors).
    // SAFETY: at the start of main, before any thread: restores the default disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
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
    std::process::exit(entry(args));
}
