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

/// The roles of `common::kernels` (from `testdata/kernel-roles.sh`) hold what their names
/// promise, read back from the headers' Module.symvers: other < old < new <= newest; old,
/// new and spare identical; other's `module_layout` another; partial one layout, some CRCs
/// changed.
#[test]
fn roles_hold_their_properties() {
    use common::kernels::{module_layout, symvers_of};
    let Some(k) = common::kernels::cloud() else {
        return;
    };
    let n = |a: &str| a.parse::<u32>().unwrap();
    assert!(n(k.other) < n(k.old) && n(k.old) < n(k.new) && n(k.new) <= n(k.newest));
    assert!(k.abis.iter().all(|&a| a <= n(k.newest)), "{:?}", k.abis);
    let sv = |a: &str| symvers_of(k.flavour, n(a)).expect("the symvers of a role");
    let (old, new, other) = (sv(k.old), sv(k.new), sv(k.other));
    assert_eq!(old, new);
    assert!(module_layout(&other).is_some());
    assert_ne!(module_layout(&other), module_layout(&new));
    if let Some(spare) = k.spare() {
        assert_eq!(sv(spare), new, "spare {spare}");
    }
    if let Some((x, y)) = k.partial() {
        let (a, b) = (sv(x), sv(y));
        assert_ne!(a, b);
        assert_eq!(module_layout(&a), module_layout(&b));
        assert!(
            a.iter().any(|(s, v)| b.get(s).is_some_and(|w| w.0 != v.0)),
            "{x} -> {y}: no CRC changed"
        );
    }
}
