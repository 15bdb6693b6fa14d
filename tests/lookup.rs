//! `kabi info -b ROOT -k KVER NAME|ALIAS` finds the same module as kmod's `modinfo`, in a
//! tree indexed by kmod's own depmod; and finds it without any index too.

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

const KVER: &str = "6.1.0-56-amd64";

fn copy_tree(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
}

/// A throwaway root holding the 6.1.0-56 testdata modules plus a built-in module.
fn root_with_builtin() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let md = tmp.path().join("lib/modules");
    std::fs::create_dir_all(&md).unwrap();
    copy_tree(&testdata().join("lib/modules").join(KVER), &md.join(KVER));
    let d = md.join(KVER);
    std::fs::write(
        d.join("modules.builtin"),
        "kernel/fs/ext4/ext4.ko\nkernel/lib/crc16.ko\n",
    )
    .unwrap();
    std::fs::write(
        d.join("modules.builtin.modinfo"),
        b"ext4.license=GPL\0ext4.description=Fourth Extended Filesystem\0ext4.alias=fs-ext4\0crc16.license=GPL\0",
    )
    .unwrap();
    tmp
}

fn both(root: &Path, args: &[&str]) -> (std::process::Output, std::process::Output) {
    let kmod = run(Command::new("modinfo")
        .arg("-b")
        .arg(root)
        .args(["-k", KVER])
        .args(args));
    let ours = run(kabi()
        .arg("info")
        .arg("--root")
        .arg(root)
        .args(["-k", KVER])
        .args(args));
    (kmod, ours)
}

#[test]
fn names_aliases_and_builtins_resolve_like_kmod() {
    if !require_tool("modinfo") || !require_tool("depmod") {
        return;
    }
    let tmp = root_with_builtin();
    let st = Command::new("depmod")
        .arg("-b")
        .arg(tmp.path())
        .arg(KVER)
        .status()
        .unwrap();
    assert!(st.success(), "kmod depmod failed");
    for args in [
        &["dummy"][..],
        &["crc-itu-t"],
        &["crc_itu_t"],
        &["-m", "crc-itu-t"],
        &["nf-conntrack-ftp"],
        &["nf_conntrack_ftp", "idxd_bus"],
        &["rtnl-link-dummy"],
        &["ip_conntrack_ftp"],
        &["ext4"],
        &["-F", "license", "ext4"],
        &["-F", "name", "ext4"],
        &["-F", "filename", "ext4"],
        &["fs-ext4"],
        &["no-such-module"],
        &["dummy", "no-such-module", "xt_nat"],
    ] {
        let (kmod, ours) = both(tmp.path(), args);
        assert_eq!(
            kmod.status.code(),
            ours.status.code(),
            "exit code of {args:?}"
        );
        assert!(
            kmod.stdout == ours.stdout,
            "{args:?}: {}",
            first_difference(&kmod.stdout, &ours.stdout)
        );
    }
}

#[test]
fn names_resolve_without_any_index() {
    let tmp = root_with_builtin();
    let out = run(kabi().arg("info").arg("--root").arg(tmp.path()).args([
        "-k",
        KVER,
        "-n",
        "nf-conntrack-ftp",
    ]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = format!(
        "{}/lib/modules/{KVER}/kernel/net/netfilter/nf_conntrack_ftp.ko\n",
        tmp.path().display()
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);
    let out =
        run(kabi()
            .arg("info")
            .arg("--root")
            .arg(tmp.path())
            .args(["-k", KVER, "missing_mod"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing_mod not found"));
}
