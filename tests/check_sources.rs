//! `kabi check` with the kernel's ABI from each kind of source gives the same verdicts.

mod common;
use common::*;
use std::path::Path;

fn verdicts(out: &std::process::Output) -> Vec<(String, bool)> {
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    v["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap().to_string(),
                v["problems"].as_array().unwrap().is_empty(),
            )
        })
        .collect()
}

#[test]
fn image_symvers_and_tree_agree() {
    // two kernels whose module_layout differs: each refuses the other's modules
    let Some(k) = kernels::cloud() else { return };
    let (Some(old), Some(new)) = (k.fetch(k.other), k.fetch(k.new)) else {
        return;
    };
    let (new_dir, kver) = module_dir(&new);
    let (old_dir, _) = module_dir(&old);
    let image = new.join(format!("boot/vmlinuz-{kver}"));
    let symvers = new.join(format!("usr/src/linux-headers-{kver}/Module.symvers"));
    // vmlinux-only modules of both ABIs: compatible if and only if built for the new one
    let mods: Vec<std::path::PathBuf> = [
        "kernel/lib/crc-itu-t.ko",
        "kernel/crypto/ofb.ko",
        "kernel/fs/configfs/configfs.ko",
    ]
    .iter()
    .flat_map(|m| [old_dir.join(m), new_dir.join(m)])
    .collect();

    let by_image = run(kabi()
        .args(["check", "--json", "--vmlinuz"])
        .arg(&image)
        .args(&mods));
    let by_symvers = run(kabi()
        .args(["check", "--json", "--symvers"])
        .arg(&symvers)
        .args(&mods));
    // an installed kernel without any symvers file: /boot/vmlinuz and the module tree
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("lib/modules")).unwrap();
    std::fs::create_dir_all(tmp.path().join("boot")).unwrap();
    // a root holds its files (kabi follows no link out of a root): hard links to the cache
    let st = std::process::Command::new("cp")
        .arg("-al")
        .arg(&new_dir)
        .arg(tmp.path().join("lib/modules").join(&kver))
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::copy(&image, tmp.path().join(format!("boot/vmlinuz-{kver}"))).unwrap();
    let by_install = run(kabi()
        .args(["check", "--json", "--root"])
        .arg(tmp.path())
        .args(["-k", &kver])
        .args(&mods));

    let want: Vec<(String, bool)> = mods
        .iter()
        .map(|p| {
            let name = kabi::Module::open(p).unwrap().name;
            (name, p.starts_with(&new_dir))
        })
        .collect();
    for (what, out) in [
        ("--vmlinuz", &by_image),
        ("--symvers", &by_symvers),
        ("installed, image only", &by_install),
    ] {
        assert_eq!(verdicts(out), want, "{what}");
        assert_eq!(out.status.code(), Some(1), "{what}: some are incompatible");
    }
    let v: serde_json::Value = serde_json::from_slice(&by_install.stdout).unwrap();
    let sources = v["kernel"]["sources"].as_array().unwrap();
    assert!(
        sources[0]
            .as_str()
            .unwrap()
            .ends_with(&format!("vmlinuz-{kver}")),
        "{sources:?}"
    );
    assert!(
        Path::new(sources[1].as_str().unwrap()).ends_with("kernel"),
        "{sources:?}"
    );
}

/// `--symvers` of a kernel headers tree (Debian's linux-headers of the `old` kernel, as
/// testdata/build-vendor.sh unpacks it), modules of the `new` one (identical symvers, another
/// release): the tree gives the release and the vermagic
/// (utsrelease.h, auto.conf), so a module whose vermagic the kernel refuses is refused in
/// the kernel's words. The same symvers file alone: the verdict is `ok`, and the summary
/// line and the JSON say it is incomplete.
#[test]
fn symvers_in_a_headers_tree_knows_the_vermagic() {
    if !require_tool("gcc-12") || !require_tool("objcopy") {
        return;
    }
    let Some(k) = kernels::cloud() else { return };
    let Some(vendor_old) = common::weak::vendor_modules(k.old) else {
        return;
    };
    let Some(new) = k.fetch(k.new) else {
        return;
    };
    let kold = common::weak::kver_of(k.old);
    let headers = vendor_old
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join(format!("headers/{kold}/usr/src/linux-headers-{kold}"));
    let symvers = headers.join("Module.symvers");
    assert!(symvers.is_file(), "{}", symvers.display());
    let tmp = tempfile::tempdir().unwrap();
    // the new kernel's ofb without __versions: the whole vermagic must match, release included
    let (new_dir, kver) = module_dir(&new);
    let ofb = tmp.path().join("ofb.ko");
    let o = run(std::process::Command::new("objcopy")
        .args(["--remove-section", "__versions"])
        .arg(new_dir.join("kernel/crypto/ofb.ko"))
        .arg(&ofb));
    assert!(o.status.success(), "{o:?}");

    let o = run(kabi().arg("check").arg("--symvers").arg(&symvers).arg(&ofb));
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains(&format!(
            "ofb: version magic '{kver} SMP preempt mod_unload modversions ' should be '{kold} SMP preempt mod_unload modversions '"
        )),
        "{out}"
    );
    assert!(
        out.lines().last().unwrap().starts_with(&format!(
            "kabi check: kernel {kold}: 1 modules, 1 would be refused"
        )),
        "{out}"
    );

    // the vendor module built against these headers: accepted, its vermagic checked
    let a = vendor_old.join("kabi_vendor_a.ko");
    let o = run(kabi()
        .args(["check", "--json", "--symvers"])
        .arg(&symvers)
        .arg(&a));
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["kernel"]["release"], kold.as_str());
    let unverified = v["verdicts"][0]["unverified"].to_string();
    assert!(!unverified.contains("vermagic"), "{unverified}");

    // the same file outside its tree: nothing says what the vermagic is
    let alone = tmp.path().join("Module.symvers");
    std::fs::copy(&symvers, &alone).unwrap();
    let o = run(kabi().arg("check").arg("--symvers").arg(&alone).arg(&ofb));
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}");
    let last = out.lines().last().unwrap();
    assert!(
        last.contains("0 would be refused; incomplete: 1 accepted without every check (")
            && last.contains("vermagic"),
        "{out}"
    );
    let o = run(kabi()
        .args(["check", "--json", "--symvers"])
        .arg(&alone)
        .arg(&ofb));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["complete"], false, "{v}");
    assert!(
        v["unverified"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u == "vermagic"),
        "{v}"
    );
    // a kernel whose every check is made says so too
    let o = run(kabi()
        .args(["check", "--json", "--root"])
        .arg(&new)
        .args(["-k", &kver])
        .arg(new_dir.join("kernel/crypto/ofb.ko")));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["complete"], true, "{v}");
}
