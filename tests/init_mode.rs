//! The binary invoked as `init` mounts `/proc`, `/sys`, `/dev`, runs `/etc/kabi-init` and
//! powers the machine off, so it must refuse to run unless it is process 1.
//!
//! Both cases run inside a private PID and mount namespace (`unshare -p -f -m`), so that even
//! a kabi that wrongly went ahead would only mount in that namespace and `reboot()` would only
//! end it, never the machine running the tests.

mod common;

use std::process::Command;

fn ns_flags() -> Option<Vec<&'static str>> {
    if !common::require_tool("unshare") {
        return None;
    }
    for flags in [vec!["-p", "-f", "-m"], vec!["-r", "-p", "-f", "-m"]] {
        let ok = Command::new("unshare")
            .args(&flags)
            .args(["sh", "-c", "test $$ = 1"])
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(flags);
        }
    }
    assert!(!common::in_ci(), "no private PID namespace on this machine");
    eprintln!("SKIPPED: cannot make a private PID namespace here");
    None
}

#[test]
fn init_refuses_unless_process_1() {
    let Some(flags) = ns_flags() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let init = tmp.path().join("init");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_kabi"), &init).unwrap();
    // process 2 of the namespace (sh is 1): refused, nothing done
    let o = common::run(
        Command::new("unshare")
            .args(&flags)
            .arg("sh")
            .arg("-c")
            .arg("\"$0\"; echo \"status $?\"")
            .arg(&init),
    );
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(out.contains("status 1"), "{out}{err}");
    assert!(!out.contains("KABI-DONE"), "{out}");
    assert!(
        err.contains("invoked as init with process ID 2: init mode runs only as process 1"),
        "{err}"
    );
    // process 1 of its namespace: it runs (an empty script) and powers the namespace off
    let o = common::run(Command::new("unshare").args(&flags).arg(&init));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("KABI-DONE"),
        "as process 1 init ran nothing: {out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
