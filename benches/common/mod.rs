//! Shared by the benches: the real Debian kernels, fetched (and cached) by
//! testdata/fetch-kernel.sh.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The unpacked root of a cloud-amd64 kernel (`None`: the newest ABI with headers).
pub fn fetch(abi: Option<&str>) -> PathBuf {
    let mut cmd = Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/fetch-kernel.sh"
    ));
    cmd.arg("cloud-amd64");
    if let Some(a) = abi {
        cmd.arg(a);
    }
    let out = cmd.output().expect("run testdata/fetch-kernel.sh");
    assert!(
        out.status.success(),
        "cannot fetch cloud-amd64 {abi:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// The kernel release under `root/lib/modules`.
pub fn kver(root: &Path) -> String {
    std::fs::read_dir(root.join("lib/modules"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name()
        .into_string()
        .unwrap()
}
