//! Debian's real dracut builds an initramfs of a real Debian cloud kernel with kabi's dracut
//! module, the kernel boots it under qemu, and the console tells:
//!
//! The kernels are the cloud-amd64 `other`, `old` and `new` of `common::kernels` (old and new
//! have identical symvers, other another `module_layout`).
//! * a healthy host: a new kernel (new) is installed as a linux-image package's postinst does,
//!   `run-parts /etc/kernel/postinst.d KVER /boot/vmlinuz-KVER`: kabi's hook (`45-kabi`) links
//!   the compatible vendor modules of old into new's weak-updates/ with `kabi weak-modules`,
//!   then dracut's own hook builds `/boot/initrd.img-KVER` with the module enabled by the
//!   package's `/etc/dracut.conf.d/90-kabi.conf`. In the initramfs, kabi verify says nothing
//!   on the console (its summary goes to the kernel log) and the vendor module loads;
//! * a broken host: other's vendor modules linked into new's weak-updates/: the console shows
//!   `dracut Warning: kabi verify: ...` with the kernel's reason, and the kernel refuses the
//!   module.
//!
//! Nothing on the host changes: everything runs in a private mount namespace (`unshare -m`)
//! where `/usr` is an overlay holding what `scripts/install.sh` installs (the static kabi,
//! the dracut module, the depmod.d order) and a test dracut module, and `/lib/modules`,
//! `/boot`, `/etc/kernel` and `/etc/dracut.conf.d` are the test root's. The test module
//! (`99kabitest`) accepts `root=kabitest` and, after kabi's pre-udev hook, loads
//! `kabi_vendor_b` with modprobe, prints `/proc/modules` and kabi's kernel-log lines between
//! markers, and powers the machine off.

mod common;

use common::qemu;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const BOOT_TIMEOUT: Duration = Duration::from_secs(600);

/// Run inside the private mount namespace: `work root kver mode`.
const NAMESPACE: &str = r#"set -euo pipefail
work=$1 root=$2 kver=$3 mode=$4
mount -t overlay kabitest -o "lowerdir=/usr,upperdir=$work/ov/upper,workdir=$work/ov/work" /usr
# the package's files (merged /usr: /lib is usr/lib)
cp -a "$work/stage/usr/." /usr/
cp -a "$work/stage/lib/." /usr/lib/
cp -a "$work/kabitest" /usr/lib/dracut/modules.d/99kabitest
mkdir -p /usr/lib/modules
mount --bind "$root/lib/modules" /usr/lib/modules
mount --bind "$root/boot" /boot
mount --bind "$work/etc-kernel" /etc/kernel
mount --bind "$work/dracut.conf.d" /etc/dracut.conf.d
case $mode in
    install)
        # what linux-image-KVER's postinst runs
        run-parts --verbose --exit-on-error --arg="$kver" --arg="/boot/vmlinuz-$kver" \
            /etc/kernel/postinst.d ;;
    rebuild)
        depmod "$kver"
        dracut -q --force "/boot/initrd.img-$kver" "$kver" ;;
    kernel-install)
        # an image of the kernel exists already (a placeholder: the one a distribution's own
        # hook built before the links); kabi's plugin rebuilds it
        : >"/boot/initramfs-$kver.img"
        kernel-install --verbose add "$kver" "/boot/vmlinuz-$kver" ;;
esac
"#;

const TEST_MODULE_SETUP: &str = r#"#!/bin/bash
# the test's dracut module: only when asked for
check() { return 255; }
depends() { echo base; }
install() {
    inst_multiple cat grep dmesg
    inst_hook cmdline 90 "$moddir/kabitest-root.sh"
    inst_hook pre-udev 90 "$moddir/kabitest.sh"
}
"#;

const TEST_ROOT_HOOK: &str = r#"#!/bin/sh
# root=kabitest: this test's root, accepted as a root handler would
[ "$root" = kabitest ] && rootok=1
"#;

const TEST_HOOK: &str = r#"#!/bin/sh
# pre-udev 90, after kabi's hook (10): load the vendor module as the host would, show what
# the kernel holds and what kabi verify logged, then power off
modprobe kabi_vendor_b
echo "KABITEST-MODPROBE: $?"
echo "KABITEST-MODULES-BEGIN"
cat /proc/modules
echo "KABITEST-MODULES-END"
echo "KABITEST-LOG-BEGIN"
dmesg | grep 'kabi verify'
echo "KABITEST-LOG-END"
echo o >/proc/sysrq-trigger
sleep 60
"#;

fn text(o: &std::process::Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn write(p: &Path, data: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The lines of the console between `KABITEST-<what>-BEGIN` and `-END`.
fn section<'a>(raw: &'a str, what: &str) -> Vec<&'a str> {
    let (b, e) = (
        format!("KABITEST-{what}-BEGIN"),
        format!("KABITEST-{what}-END"),
    );
    raw.lines()
        .skip_while(|l| !l.contains(&b))
        .skip(1)
        .take_while(|l| !l.contains(&e))
        .collect()
}

/// The namespace script in `mode`, bounded by `timeout(1)`.
fn in_namespace(work: &Path, root: &Path, kver: &str, mode: &str) -> std::process::Output {
    let t = Instant::now();
    let o = common::run(
        Command::new("timeout")
            .args([
                "600",
                "unshare",
                "-m",
                "--propagation",
                "private",
                "bash",
                "-c",
            ])
            .arg(NAMESPACE)
            .arg("kabitest")
            .arg(work)
            .arg(root)
            .arg(kver)
            .arg(mode),
    );
    eprintln!(
        "namespace {mode}: {:.1} s\n{}",
        t.elapsed().as_secs_f64(),
        text(&o)
    );
    assert!(o.status.success(), "{mode} in the namespace: {}", text(&o));
    o
}

/// A throwaway root (cloud-amd64 other, old, new; vendor modules in other's and old's extra/) and
/// the files the namespace puts in place.
struct Setup {
    _tmp: tempfile::TempDir,
    r: common::weak::WeakRoot,
    kver: String,
    work: std::path::PathBuf,
}

fn setup() -> Option<Setup> {
    let kr = common::kernels::cloud()?;
    if !rustix::process::geteuid().is_root() {
        assert!(
            !common::in_ci(),
            "CI runs the tests as root: mount namespaces need it"
        );
        eprintln!("SKIPPED: a private mount namespace with overlays needs root");
        return None;
    }
    for tool in ["dracut", "unshare", "run-parts", "depmod", "gcc-12"] {
        if !common::require_tool(tool) {
            return None;
        }
    }
    let dracut_hook = Path::new("/etc/kernel/postinst.d/dracut");
    assert!(
        dracut_hook.is_file(),
        "Debian's dracut package installs {}",
        dracut_hook.display()
    );
    for abi in [kr.other, kr.old] {
        common::weak::vendor_modules(abi)?;
    }
    let tmp = tempfile::tempdir().unwrap();
    let r = common::weak::weak_root(
        &tmp.path().join("root"),
        &[kr.other, kr.old, kr.new],
        &[kr.other, kr.old],
    )?;
    let kver = r.kver(kr.new).to_string();
    let work = tmp.path().join("work");

    // what the package installs, with the static binary
    let stage = work.join("stage");
    let o = common::run(
        Command::new("bash")
            .arg(common::repo().join("scripts/install.sh"))
            .arg("--destdir")
            .arg(&stage)
            .args(["--layout", "debian", "--bin"])
            .arg(qemu::static_kabi()),
    );
    assert!(o.status.success(), "install.sh: {}", text(&o));
    // the administrator opts in, as the file says
    let conf = std::fs::read_to_string(stage.join("etc/dracut.conf.d/90-kabi.conf")).unwrap();
    assert!(
        conf.contains("\n#add_dracutmodules+=\" kabi \"\n"),
        "{conf}"
    );
    let confd = work.join("dracut.conf.d");
    write(
        &confd.join("90-kabi.conf"),
        &conf.replace("\n#add_dracutmodules", "\nadd_dracutmodules"),
        0o644,
    );
    // a small generic image that holds the vendor module, gzip for the kernel
    write(
        &confd.join("50-kabitest.conf"),
        "hostonly=\"no\"\ndracutmodules+=\" base kabitest \"\nadd_drivers+=\" kabi_vendor_b \"\n\
         compress=\"gzip\"\nearly_microcode=\"no\"\n",
        0o644,
    );
    // the kernel hooks: kabi's and dracut's, no other
    let hooks = work.join("etc-kernel/postinst.d");
    write(
        &hooks.join("45-kabi"),
        &std::fs::read_to_string(stage.join("etc/kernel/postinst.d/45-kabi")).unwrap(),
        0o755,
    );
    write(
        &hooks.join("dracut"),
        &std::fs::read_to_string(dracut_hook).unwrap(),
        0o755,
    );
    let m = work.join("kabitest");
    write(&m.join("module-setup.sh"), TEST_MODULE_SETUP, 0o755);
    write(&m.join("kabitest-root.sh"), TEST_ROOT_HOOK, 0o755);
    write(&m.join("kabitest.sh"), TEST_HOOK, 0o755);
    for d in ["ov/upper", "ov/work"] {
        std::fs::create_dir_all(work.join(d)).unwrap();
    }
    Some(Setup {
        _tmp: tmp,
        r,
        kver,
        work,
    })
}

#[test]
fn dracut_image_with_kabi_is_quiet_when_healthy_and_warns_when_broken() {
    let Some(kr) = common::kernels::cloud() else {
        return;
    };
    if !qemu::require_qemu() {
        return;
    }
    let Some(Setup {
        _tmp,
        r,
        kver,
        work,
    }) = setup()
    else {
        return;
    };
    let image = r.root.join(format!("boot/initrd.img-{kver}"));
    let vmlinuz = r.root.join(format!("boot/vmlinuz-{kver}"));
    // no_timer_check: a TCG guest on a loaded machine fails the IO-APIC timer check and panics
    let append = "no_timer_check rd.shell=0 rd.emergency=poweroff root=kabitest";
    let fresh_overlay = || {
        for d in ["ov/upper", "ov/work"] {
            std::fs::remove_dir_all(work.join(d)).unwrap();
            std::fs::create_dir_all(work.join(d)).unwrap();
        }
    };

    // --- healthy: the kernel's installation links old's modules and builds the image
    let o = in_namespace(&work, &r.root, &kver, "install");
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let at = |s: &str| {
        out.find(s)
            .unwrap_or_else(|| panic!("no {s:?} in the hooks' output:\n{out}"))
    };
    assert!(
        at("postinst.d/45-kabi") < at("postinst.d/dracut"),
        "kabi's hook runs before dracut's:\n{out}"
    );
    for m in ["kabi_vendor_a.ko", "kabi_vendor_b.ko"] {
        let link = std::fs::read_link(r.weak_updates(kr.new).join("kabi-vendor").join(m))
            .unwrap_or_else(|e| panic!("{m} is not linked into new's weak-updates: {e}\n{out}"));
        assert_eq!(
            link,
            Path::new("/lib/modules")
                .join(r.kver(kr.old))
                .join("extra/kabi-vendor")
                .join(m)
        );
    }
    assert!(
        image.is_file(),
        "dracut's hook built no {}",
        image.display()
    );
    let t = Instant::now();
    let healthy = qemu::boot(
        &vmlinuz,
        &std::fs::read(&image).unwrap(),
        append,
        BOOT_TIMEOUT,
    );
    eprintln!("healthy boot: {:.1} s", t.elapsed().as_secs_f64());
    let raw = &healthy.raw;
    assert!(
        raw.contains("KABITEST-MODPROBE: 0"),
        "the vendor module loads:\n{raw}\n{}",
        healthy.stderr
    );
    let modules = section(raw, "MODULES");
    for m in ["kabi_vendor_a ", "kabi_vendor_b "] {
        assert!(
            modules.iter().any(|l| l.starts_with(m)),
            "{m}not in /proc/modules:\n{raw}"
        );
    }
    assert!(
        !raw.contains("Warning: kabi verify"),
        "a warning on a healthy host:\n{raw}"
    );
    // kabi verify did run: its summary is in the kernel log only
    let log = section(raw, "LOG");
    assert!(
        log.iter().any(|l| l.contains(&format!(
            "kabi verify: kernel {kver}: 2 expected modules, 0 with problems"
        ))),
        "kabi verify's summary in the kernel log:\n{raw}"
    );

    // --- broken: other's modules linked into new, the image rebuilt
    for m in ["kabi_vendor_a.ko", "kabi_vendor_b.ko"] {
        let l = r.weak_updates(kr.new).join("kabi-vendor").join(m);
        std::fs::remove_file(&l).unwrap();
        std::os::unix::fs::symlink(
            Path::new("/lib/modules")
                .join(r.kver(kr.other))
                .join("extra/kabi-vendor")
                .join(m),
            &l,
        )
        .unwrap();
    }
    fresh_overlay();
    in_namespace(&work, &r.root, &kver, "rebuild");
    let t = Instant::now();
    let broken = qemu::boot(
        &vmlinuz,
        &std::fs::read(&image).unwrap(),
        append,
        BOOT_TIMEOUT,
    );
    eprintln!("broken boot: {:.1} s", t.elapsed().as_secs_f64());
    let raw = &broken.raw;
    for want in [
        "dracut Warning: kabi verify: some expected kernel modules will not load:",
        "dracut Warning: kabi verify:     ENOEXEC: kabi_vendor_b: disagrees about version of symbol module_layout",
        "dracut Warning: kabi verify:     ENOEXEC: kabi_vendor_a: disagrees about version of symbol module_layout",
    ] {
        assert!(
            // the first line may follow the firmware's escape sequences
            raw.lines().any(|l| l.ends_with(want)),
            "no {want:?} on the console:\n{raw}\n{}",
            broken.stderr
        );
    }
    // and the kernel agrees
    assert!(raw.contains("KABITEST-MODPROBE: 1"), "{raw}");
    assert!(
        section(raw, "MODULES")
            .iter()
            .all(|l| !l.starts_with("kabi_vendor")),
        "{raw}"
    );
}

/// `kernel-install add` (systemd's, as RHEL and Fedora install kernels) runs kabi's plugin
/// before 50-depmod: the compatible vendor modules are linked, and the existing image of the
/// kernel is rebuilt by dracut with them in it.
#[test]
fn kernel_install_links_and_rebuilds_the_image() {
    if !common::require_tool("kernel-install") || !common::require_tool("lsinitrd") {
        return;
    }
    let Some(Setup {
        _tmp,
        r,
        kver,
        work,
    }) = setup()
    else {
        return;
    };
    let kr = common::kernels::cloud().expect("the kernels by role, resolved by setup()");
    let kold = r.kver(kr.old);
    let o = in_namespace(&work, &r.root, &kver, "kernel-install");
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let at = |s: &str| {
        out.find(s)
            .unwrap_or_else(|| panic!("no {s:?} in kernel-install's output:\n{out}"))
    };
    assert!(
        at("45-kabi-weak-modules.install add") < at("50-depmod.install add"),
        "{out}"
    );
    let image = r.root.join(format!("boot/initramfs-{kver}.img"));
    assert!(
        out.contains(&format!("weak-modules: rebuilt /boot/initramfs-{kver}.img")),
        "{out}"
    );
    let o = common::run(Command::new("lsinitrd").arg(&image));
    assert!(o.status.success(), "lsinitrd: {}", text(&o));
    let list = String::from_utf8_lossy(&o.stdout);
    for m in ["kabi_vendor_a.ko", "kabi_vendor_b.ko"] {
        let link = format!(
            "usr/lib/modules/{kver}/weak-updates/kabi-vendor/{m} -> ../../../{kold}/extra/kabi-vendor/{m}"
        );
        assert!(
            list.lines().any(|l| l.ends_with(&link)),
            "no {link} in the image:\n{list}"
        );
        let target = format!("usr/lib/modules/{kold}/extra/kabi-vendor/{m}");
        assert!(
            list.lines()
                .any(|l| l.ends_with(&target) && l.starts_with('-')),
            "no {target} in the image:\n{list}"
        );
    }
    // kabi is in the image, with its hook
    assert!(
        list.contains("usr/lib/dracut/hooks/pre-udev/10-kabi-verify.sh"),
        "{list}"
    );
    assert!(list.lines().any(|l| l.ends_with(" usr/bin/kabi")), "{list}");
}
