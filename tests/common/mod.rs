//! Shared helpers of the integration tests.
#![allow(dead_code)]

pub mod kmodtools;
pub mod kmp;
pub mod qemu;
pub mod weak;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn kabi() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kabi"))
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn testdata() -> PathBuf {
    repo().join("testdata")
}

/// Every committed test module, sorted.
pub fn testdata_modules() -> Vec<PathBuf> {
    let mut v = walk(&testdata().join("lib/modules"), &|p| {
        p.extension().is_some_and(|e| e == "ko")
    });
    v.sort();
    assert!(v.len() >= 15, "testdata/lib/modules is incomplete: {v:?}");
    v
}

pub fn walk(dir: &Path, keep: &dyn Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let e = e.unwrap();
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            } else if keep(&p) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Is `tool` runnable? If not: in CI that is a failure (the differential tests must run
/// there); elsewhere the test says so on stderr and is skipped.
pub fn require_tool(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            !in_ci(),
            "{tool} is missing: .ci/run must install it (CI=true)"
        );
        eprintln!("SKIPPED: {tool} is not installed (install Debian's kmod to run this test)");
    }
    found
}

/// A real Debian kernel unpacked by testdata/fetch-kernel.sh (cached). In CI a failure to
/// fetch is a test failure; elsewhere it skips with a message.
pub fn fetch_kernel(flavour: &str, abi: Option<&str>) -> Option<PathBuf> {
    let mut cmd = Command::new(testdata().join("fetch-kernel.sh"));
    cmd.arg(flavour);
    if let Some(arch) = debian_arch(flavour) {
        cmd.env("ARCH", arch);
    }
    if let Some(a) = abi {
        cmd.arg(a);
    }
    let out = cmd.output().expect("run testdata/fetch-kernel.sh");
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr);
        assert!(!in_ci(), "fetching the {flavour} kernel failed: {msg}");
        eprintln!("SKIPPED: could not fetch the {flavour} kernel: {msg}");
        return None;
    }
    Some(PathBuf::from(String::from_utf8(out.stdout).unwrap().trim()))
}

/// The Debian architecture of a kernel flavour other than amd64's.
fn debian_arch(flavour: &str) -> Option<&'static str> {
    Some(match flavour {
        "686" | "686-pae" => "i386",
        "armmp" | "armmp-lpae" => "armhf",
        "arm64" => "arm64",
        "powerpc64le" => "ppc64el",
        "s390x" => "s390x",
        _ => return None,
    })
}

/// `<root>/lib/modules/<kver>` of an unpacked kernel, and its kver.
pub fn module_dir(root: &Path) -> (PathBuf, String) {
    let base = root.join("lib/modules");
    let kver = std::fs::read_dir(&base)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .next()
        .expect("a kernel release directory");
    (base.join(&kver), kver)
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Split `modinfo`-style output of many modules into one block per module, at the
/// `filename:` lines that start each block.
pub fn split_blocks(out: &[u8]) -> Vec<&[u8]> {
    let mut starts: Vec<usize> = Vec::new();
    let mut at_line_start = true;
    for (i, &b) in out.iter().enumerate() {
        if at_line_start && out[i..].starts_with(b"filename:") {
            starts.push(i);
        }
        at_line_start = b == b'\n';
    }
    starts
        .iter()
        .enumerate()
        .map(|(k, &s)| &out[s..starts.get(k + 1).copied().unwrap_or(out.len())])
        .collect()
}

/// The first differing line of two outputs, for messages.
pub fn first_difference(a: &[u8], b: &[u8]) -> String {
    let (a, b) = (String::from_utf8_lossy(a), String::from_utf8_lossy(b));
    for (i, (x, y)) in a.lines().zip(b.lines()).enumerate() {
        if x != y {
            return format!("line {}: kmod {x:?} / kabi {y:?}", i + 1);
        }
    }
    format!(
        "lengths differ: kmod {} lines, kabi {} lines",
        a.lines().count(),
        b.lines().count()
    )
}
