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
    let (Some(old), Some(new)) = (
        fetch_kernel("cloud-amd64", Some("47")),
        fetch_kernel("cloud-amd64", Some("56")),
    ) else {
        return;
    };
    let (new_dir, kver) = module_dir(&new);
    let (old_dir, _) = module_dir(&old);
    let image = new.join(format!("boot/vmlinuz-{kver}"));
    let symvers = new.join(format!("usr/src/linux-headers-{kver}/Module.symvers"));
    // vmlinux-only modules of both ABIs: compatible if and only if built for 56
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
        .args(["check", "--json", "-b"])
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
