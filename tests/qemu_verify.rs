//! `kabi verify` in an initramfs as dracut builds one: the kernel's modules are there, but
//! no symvers file and no kernel image. The kernel is running, so kabi takes its ABI from it
//! (kallsyms, CRCs from kcore): a healthy host gives no false alarm (before the one kernel
//! resolver, verify reported `Unknown symbol _printk` for vendor modules that then loaded),
//! and a broken one is still caught, with the kernel's reason.

mod common;

use common::qemu::{self, Initramfs};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(300);

#[test]
fn verify_without_symvers_or_image_judges_by_the_running_kernel() {
    let Some(kr) = common::kernels::cloud() else {
        return;
    };
    if !qemu::require_qemu() {
        return;
    }
    let (Some(v_other), Some(v_old)) = (
        common::weak::vendor_modules(kr.other),
        common::weak::vendor_modules(kr.old),
    ) else {
        return;
    };
    let Some(root) = kr.fetch(kr.new) else {
        return;
    };
    let (_, kver) = common::module_dir(&root);
    let boot = |broken: bool| {
        let script = "verify -k KVER\ndepmod\nload kabi_vendor_b\nlsmod\n".replace("KVER", &kver);
        let mut ird = Initramfs::kabi(&script);
        for (abi, v) in [(kr.old, &v_old), (kr.other, &v_other)] {
            for m in ["kabi_vendor_a.ko", "kabi_vendor_b.ko"] {
                ird.add_file(
                    &format!("/lib/modules/6.1.0-{abi}-cloud-amd64/extra/kabi-vendor/{m}"),
                    &std::fs::read(v.join(m)).unwrap(),
                    0o644,
                );
            }
        }
        let weak = format!("/lib/modules/{kver}/weak-updates/kabi-vendor");
        let from = if broken { kr.other } else { kr.old };
        for m in ["kabi_vendor_a.ko", "kabi_vendor_b.ko"] {
            ird.add_symlink(
                &format!("{weak}/{m}"),
                &format!("/lib/modules/6.1.0-{from}-cloud-amd64/extra/kabi-vendor/{m}"),
            );
        }
        // a few of the kernel's own modules and its indexes, as dracut copies them; no
        // /boot at all
        ird.add_modules(&root, &["kernel/drivers/net/dummy.ko"], &[]);
        qemu::boot(&qemu::vmlinuz(&root), &ird.finish(), "", TIMEOUT)
    };
    let healthy = boot(false);
    healthy.assert_done();
    let v = healthy.find(&format!("verify -k {kver}"));
    assert_eq!(
        v.exit,
        Some(0),
        "no false alarm on a healthy host:\n{}",
        v.output
    );
    assert!(
        !v.output.contains("Unknown symbol") && v.output.contains("kabi_vendor_b"),
        "{}",
        v.output
    );
    assert_eq!(
        healthy.find("load kabi_vendor_b").exit,
        Some(0),
        "{}",
        healthy.raw
    );
    assert!(healthy.find("lsmod").output.contains("kabi_vendor_b"));

    let broken = boot(true);
    broken.assert_done();
    let v = broken.find(&format!("verify -k {kver}"));
    assert_eq!(v.exit, Some(1), "{}", v.output);
    assert!(
        v.output
            .contains("kabi_vendor_a: disagrees about version of symbol module_layout"),
        "the kernel's own reason, from its memory:\n{}",
        v.output
    );
    // and the kernel agrees
    assert_ne!(
        broken.find("load kabi_vendor_b").exit,
        Some(0),
        "{}",
        broken.raw
    );
}
