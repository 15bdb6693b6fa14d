//! kabi's allocator settings (`HEAP` in `src/main.rs`), seen from outside: a cold
//! `kabi depmod -j 2` of Debian's cloud tree (1,121 modules read and indexed by two threads)
//! under `strace -f`. With glibc's defaults each worker thread's heap grows by the pages an
//! allocation needs, one `mprotect` at a time (hundreds per run); with kabi's settings it
//! starts with 16 MiB and is not shrunk. (`/init` keeps glibc's defaults, as it lives on
//! after its work; it is not run here.)
//!
//! The tree is hard-linked from the cache of unpacked kernels into a temp dir
//! ([`common::linked_tree`]); kabi writes only there.

mod common;
use common::*;
use std::process::Command;

/// The system calls of one run of `kabi` with `args`, counted by `strace -f -c` (name → calls).
fn syscalls(args: &[&std::ffi::OsStr]) -> std::collections::BTreeMap<String, u64> {
    let tmp = tempfile::tempdir().unwrap();
    let table = tmp.path().join("strace.txt");
    let out = Command::new("strace")
        .args(["-f", "-qq", "-c", "-U", "name,calls", "-o"])
        .arg(&table)
        .arg(env!("CARGO_BIN_EXE_kabi"))
        .args(args)
        .output()
        .expect("run strace");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&table).unwrap();
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let name = f.next()?;
            let calls = f.next()?.parse().ok()?;
            Some((name.to_string(), calls))
        })
        .collect()
}

#[test]
fn a_threaded_depmod_grows_its_heaps_in_steps() {
    if !require_tool("strace") {
        return;
    }
    // a column table (`-U`, strace 5.6 and later) and ptrace allowed here
    let probe = Command::new("strace")
        .args(["-qq", "-c", "-U", "name,calls", "-o", "/dev/null", "true"])
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        assert!(!in_ci(), "strace -c -U cannot trace here");
        eprintln!("skipped: strace -c -U cannot trace here");
        return;
    }
    let Some((tmp, dir, kver)) = linked_cloud_tree() else {
        return;
    };
    let root = tmp.path();
    let conf = root.join("etc/depmod.d-none");
    let calls = syscalls(&[
        "depmod".as_ref(),
        "-j".as_ref(),
        "2".as_ref(),
        "--root".as_ref(),
        root.as_os_str(),
        "-C".as_ref(),
        conf.as_os_str(),
        kver.as_ref(),
    ]);
    // it did the work the figure is about: every module read by two threads, the indexes
    // and the scan cache written
    assert!(dir.join("modules.dep.bin").is_file());
    assert!(dir.join("modules.kabi-cache").is_file());
    let clones = calls.get("clone3").or(calls.get("clone")).copied();
    assert!(clones.unwrap_or(0) >= 1, "no thread was started: {calls:?}");
    let opened =
        calls.get("openat2").copied().unwrap_or(0) + calls.get("openat").copied().unwrap_or(0);
    assert!(opened > 1000, "the modules were not read: {calls:?}");
    // glibc's defaults: 300 (a debug build) to 1,000 (a release build) here
    let mprotect = calls.get("mprotect").copied().unwrap_or(0);
    assert!(
        mprotect < 100,
        "{mprotect} mprotect calls: the heaps grew page by page ({calls:?})"
    );
}
