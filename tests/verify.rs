//! `kabi verify` on a real multi-kernel root (the cloud-amd64 kernels of roles other, old and
//! new of `common::kernels`) with vendor modules built against each ABI's headers: a healthy host exits 0; a broken weak link and an
//! incompatible vendor module give exit 1 with both reasons, in the report, the JSON and
//! the Prometheus metrics file.

mod common;

use common::weak::weak_root;
use std::path::PathBuf;

#[test]
fn healthy_then_broken_host() {
    if !common::require_tool("gcc-12") {
        return;
    }
    let Some(k) = common::kernels::cloud() else {
        return;
    };
    for abi in [k.other, k.old, k.new] {
        if common::weak::vendor_modules(abi).is_none() {
            return;
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let Some(r) = weak_root(tmp.path(), &[k.other, k.old, k.new], &[k.other, k.old]) else {
        return;
    };
    let k_new = r.kver(k.new).to_string();
    // the host wants dummy at boot; old's vendor modules are linked into new
    let conf = r.root.join("etc/modules-load.d");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(conf.join("host.conf"), "dummy\n").unwrap();
    let list: String = ["kabi_vendor_a.ko", "kabi_vendor_b.ko"]
        .iter()
        .map(|m| format!("{}\n", r.extra(k.old).join(m).display()))
        .collect();
    let mut child = common::kabi()
        .args([
            "weak-modules",
            "--add-modules",
            "--no-initramfs",
            "--basedir",
        ])
        .arg(&r.root)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), list.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success());

    let verify = |extra: &[&str]| {
        common::run(
            common::kabi()
                .args(["verify", "-k", &k_new, "--root"])
                .arg(&r.root)
                .args(extra),
        )
    };
    let ok = verify(&[]);
    let text = String::from_utf8_lossy(&ok.stdout).into_owned();
    assert_eq!(ok.status.code(), Some(0), "{text}");
    assert!(
        text.contains("ok") && text.contains("kabi_vendor_b"),
        "{text}"
    );

    // break it: the weak link of a points nowhere, and other's b is linked into new by hand
    let weak = r.weak_updates(k.new).join("kabi-vendor");
    std::fs::remove_file(weak.join("kabi_vendor_a.ko")).unwrap();
    std::os::unix::fs::symlink(
        r.root
            .join("lib/modules/6.1.0-40-cloud-amd64/extra/kabi-vendor/kabi_vendor_a.ko"),
        weak.join("kabi_vendor_a.ko"),
    )
    .unwrap();
    std::fs::remove_file(weak.join("kabi_vendor_b.ko")).unwrap();
    std::os::unix::fs::symlink(
        r.extra(k.other).join("kabi_vendor_b.ko"),
        weak.join("kabi_vendor_b.ko"),
    )
    .unwrap();
    let metrics: PathBuf = tmp.path().join("kabi.prom");
    let bad = verify(&["--metrics", metrics.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&bad.stdout).into_owned();
    assert_eq!(bad.status.code(), Some(1), "{text}");
    assert!(text.contains("link-to-removed-kernel"), "{text}");
    assert!(
        text.contains("incompatible")
            && text.contains("kabi_vendor_b: disagrees about version of symbol module_layout"),
        "{text}"
    );
    let prom = std::fs::read_to_string(&metrics).unwrap();
    assert!(
        prom.contains(&format!("kabi_verify_success{{kernel=\"{k_new}\"}} 0")),
        "{prom}"
    );
    assert!(
        prom.contains("state=\"link-to-removed-kernel\"")
            && prom.contains("module=\"kabi_vendor_b\""),
        "{prom}"
    );
    let json = verify(&["--json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let states: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["state"].as_str().unwrap())
        .collect();
    assert!(
        states.contains(&"ok") && states.contains(&"incompatible"),
        "{states:?}"
    );

    // a kernel with no symvers, no own modules and no image cannot be verified: exit 2
    std::fs::remove_file(r.root.join(format!("boot/symvers-{k_new}.gz"))).unwrap();
    std::fs::remove_file(r.root.join(format!("boot/vmlinuz-{k_new}"))).unwrap();
    let _ = std::fs::remove_dir_all(r.root.join("lib/modules").join(&k_new).join("kernel"));
    assert_eq!(verify(&[]).status.code(), Some(2));
}
