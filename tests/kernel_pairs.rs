//! Kernels chosen by property, not by ABI number (the archive moves: pinned ABIs leave it):
//! `common::kernels_with_identical_symvers` and `common::kernels_with_different_layout` find
//! their pairs among the ABIs the apt lists offer, and kabi agrees with the property: a
//! module of the older kernel of an identical pair loads on the newer, one of a pair whose
//! `module_layout` differs is refused.

mod common;

use common::{kabi, module_dir, run};

fn check_old_udf_on_new(old: &common::FetchedKernel, new: &common::FetchedKernel) -> Option<i32> {
    let (old_dir, _) = module_dir(&old.root);
    let o = run(kabi()
        .args(["check", "--root"])
        .arg(&new.root)
        .args(["-k", &new.kver])
        .arg(old_dir.join("kernel/fs/udf/udf.ko"))
        .arg(old_dir.join("kernel/lib/crc-itu-t.ko")));
    eprintln!("{}", String::from_utf8_lossy(&o.stdout));
    o.status.code()
}

#[test]
fn identical_symvers_pair_loads_each_others_modules() {
    let Some((old, new)) = common::kernels_with_identical_symvers("cloud-amd64") else {
        return;
    };
    assert!(old.abi < new.abi, "{} {}", old.abi, new.abi);
    assert_eq!(old.symvers, new.symvers);
    assert!(
        old.symvers.len() > 1000,
        "{}: {} exports",
        old.kver,
        old.symvers.len()
    );
    assert_eq!(
        check_old_udf_on_new(&old, &new),
        Some(0),
        "{} on {}",
        old.kver,
        new.kver
    );
}

#[test]
fn different_layout_pair_refuses_each_others_modules() {
    let Some((old, new)) = common::kernels_with_different_layout("cloud-amd64") else {
        return;
    };
    assert!(old.abi < new.abi, "{} {}", old.abi, new.abi);
    assert_ne!(old.module_layout(), new.module_layout());
    assert_eq!(
        check_old_udf_on_new(&old, &new),
        Some(1),
        "{} on {}",
        old.kver,
        new.kver
    );
}
