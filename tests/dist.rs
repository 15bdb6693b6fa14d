//! What `dist/` ships, each run for real: the systemd unit through `systemd-analyze verify`,
//! the kernel-install plugin on a throwaway multi-kernel root, the dracut module's
//! `module-setup.sh` and hook with dracut's functions stubbed in a throwaway initramfs tree.

mod common;

use std::process::Command;

fn dist(p: &str) -> std::path::PathBuf {
    common::repo().join("dist").join(p)
}

#[test]
fn systemd_unit_verifies_and_is_ordered_before_modules_load() {
    if !common::require_tool("systemd-analyze") {
        return;
    }
    let unit = std::fs::read_to_string(dist("systemd/kabi-verify.service")).unwrap();
    assert!(unit.contains("Type=oneshot"));
    assert!(unit.contains("Before=systemd-modules-load.service"));
    let check = |text: &str| {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::create_dir_all(root.join("usr/bin")).unwrap();
        std::fs::create_dir_all(root.join("etc/systemd/system")).unwrap();
        std::fs::copy(env!("CARGO_BIN_EXE_kabi"), root.join("usr/bin/kabi")).unwrap();
        std::fs::write(root.join("etc/systemd/system/kabi-verify.service"), text).unwrap();
        common::run(
            Command::new("systemd-analyze")
                .arg("verify")
                .arg(format!("--root={}", root.display()))
                .arg("/etc/systemd/system/kabi-verify.service"),
        )
    };
    let ok = check(&unit);
    assert!(
        ok.status.success() && ok.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // the check can fail: a broken copy is refused
    let bad = check(&unit.replace("Type=oneshot", "Type=oneshoot"));
    assert!(
        !bad.stderr.is_empty(),
        "systemd-analyze accepted a bad unit"
    );
}

#[test]
fn kernel_install_plugin_links_and_unlinks() {
    if !common::require_tool("gcc-12") {
        return;
    }
    for abi in ["55", "56"] {
        if common::weak::vendor_modules(abi).is_none() {
            return;
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let Some(r) = common::weak::weak_root(tmp.path(), &["55", "56"], &["55"]) else {
        return;
    };
    let k56 = r.kver("56");
    let plugin = dist("kernel-install/50-kabi-weak-modules.install");
    let run = |cmd: &str| {
        common::run(
            Command::new(&plugin)
                .env("KABI", env!("CARGO_BIN_EXE_kabi"))
                .env("KABI_BASEDIR", &r.root)
                .args([cmd, k56, "/boot/entry"])
                .arg(r.root.join(format!("boot/vmlinuz-{k56}"))),
        )
    };
    let o = run("add");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (links, _) = kabi::weak::links::read(&r.weak_updates("56"));
    assert_eq!(links.len(), 2, "{links:?}");
    let o = run("remove");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(kabi::weak::links::read(&r.weak_updates("56")).0.is_empty());
}

#[test]
fn dracut_module_installs_kabi_and_its_hook_runs_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let initdir = tmp.path().join("initramfs");
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    // `kabi` on PATH records how it is called
    let log = tmp.path().join("calls");
    std::fs::write(
        bin.join("kabi"),
        format!("#!/bin/sh\necho \"$@\" >> {}\nexit 1\n", log.display()),
    )
    .unwrap();
    std::fs::set_permissions(
        bin.join("kabi"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let moddir = dist("dracut/90kabi");
    // dracut's functions, stubbed to act on a throwaway initramfs tree
    let script = format!(
        r#"set -e
initdir={initdir}
moddir={moddir}
require_binaries() {{ for b in "$@"; do command -v "$b" >/dev/null || return 1; done; }}
inst_binary() {{ mkdir -p "$initdir$(dirname "$2")"; cp "$1" "$initdir$2"; }}
inst_hook() {{ mkdir -p "$initdir/lib/dracut/hooks/$1"; cp "$3" "$initdir/lib/dracut/hooks/$1/$2-$(basename "$3")"; }}
warn() {{ echo "WARN: $*"; }}
. "$moddir/module-setup.sh"
check
install
. "$initdir/lib/dracut/hooks/pre-udev/10-kabi-verify.sh"
"#,
        initdir = initdir.display(),
        moddir = moddir.display()
    );
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let o = common::run(
        Command::new("bash")
            .arg("-c")
            .arg(&script)
            .env("PATH", path),
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(initdir.join("usr/bin/kabi").is_file());
    assert_eq!(
        std::fs::read_to_string(&log).unwrap().trim(),
        "verify --quiet --timeout 30"
    );
    assert!(
        out.contains("WARN: kabi verify"),
        "a failed verify is reported: {out}"
    );
}
