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

/// The ABIs (`NN` of 6.1.0-NN) of a flavour that the apt lists offer with image and
/// headers, oldest first (`testdata/fetch-kernel.sh --abis`).
pub fn kernel_abis(flavour: &str) -> Vec<u32> {
    let mut cmd = Command::new(testdata().join("fetch-kernel.sh"));
    cmd.args(["--abis", flavour]);
    if let Some(arch) = debian_arch(flavour) {
        cmd.env("ARCH", arch);
    }
    let out = cmd.output().expect("run testdata/fetch-kernel.sh --abis");
    let mut abis: Vec<u32> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    abis.sort_unstable();
    abis
}

/// A fetched kernel: its root (see [`fetch_kernel`]), ABI and exports
/// (`usr/src/linux-headers-<kver>/Module.symvers`: symbol -> CRC, export type, namespace).
pub struct FetchedKernel {
    pub root: PathBuf,
    pub abi: u32,
    pub kver: String,
    pub symvers: std::collections::BTreeMap<String, (String, String, String)>,
}

impl FetchedKernel {
    fn fetch(flavour: &str, abi: u32) -> Option<FetchedKernel> {
        let root = fetch_kernel(flavour, Some(&abi.to_string()))?;
        let (_, kver) = module_dir(&root);
        let text = std::fs::read_to_string(
            root.join(format!("usr/src/linux-headers-{kver}/Module.symvers")),
        )
        .ok()?;
        let symvers = text
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                let at = |i: usize| f.get(i).copied().unwrap_or_default().to_string();
                (f.len() >= 4).then(|| (at(1), (at(0), at(3), at(4))))
            })
            .collect();
        Some(FetchedKernel {
            root,
            abi,
            kver,
            symvers,
        })
    }

    /// The CRC of `module_layout`, which every module of a MODVERSIONS kernel is checked
    /// against: two kernels whose CRCs differ refuse each other's modules.
    pub fn module_layout(&self) -> Option<&str> {
        self.symvers
            .get("module_layout")
            .map(|(crc, _, _)| crc.as_str())
    }
}

/// How many ABIs a property search fetches at most (each is a download the first time).
const SEARCH_LIMIT: usize = 6;

/// The two kernels of `flavour`, older then newer, with the newest newer ABI whose
/// Module.symvers is identical to an older one's: modules built for the older load on the
/// newer (Debian's ABI-compatible updates, e.g. 6.1.0-56 and -57). Found by property, not by
/// number: the archive moves. `None` (after a SKIPPED message; a failure in CI) when the apt
/// lists offer no such pair.
pub fn kernels_with_identical_symvers(flavour: &str) -> Option<(FetchedKernel, FetchedKernel)> {
    let abis = kernel_abis(flavour);
    let mut newer: Option<FetchedKernel> = None;
    for &abi in abis.iter().rev().take(SEARCH_LIMIT) {
        let Some(k) = FetchedKernel::fetch(flavour, abi) else {
            continue; // in the lists, not in the archive
        };
        if let Some(n) = newer.take()
            && n.symvers == k.symvers
        {
            return Some((k, n));
        }
        newer = Some(k);
    }
    assert!(
        !in_ci(),
        "no two {flavour} kernels with identical symvers in {abis:?}"
    );
    eprintln!("SKIPPED: no two {flavour} kernels with identical symvers in {abis:?}");
    None
}

/// The newest kernel of `flavour` and the newest older one whose `module_layout` CRC
/// differs (older, newer): every module of one is refused by the other (e.g. 6.1.0-47 and
/// -56). Found by property, as [`kernels_with_identical_symvers`].
pub fn kernels_with_different_layout(flavour: &str) -> Option<(FetchedKernel, FetchedKernel)> {
    let abis = kernel_abis(flavour);
    let mut newest: Option<FetchedKernel> = None;
    for &abi in abis.iter().rev().take(SEARCH_LIMIT) {
        let Some(k) = FetchedKernel::fetch(flavour, abi) else {
            continue;
        };
        match &newest {
            None => newest = Some(k),
            Some(n) if k.module_layout().is_some() && k.module_layout() != n.module_layout() => {
                return Some((k, newest.take()?));
            }
            Some(_) => {}
        }
    }
    assert!(
        !in_ci(),
        "no two {flavour} kernels with different module_layout in {abis:?}"
    );
    eprintln!("SKIPPED: no two {flavour} kernels with different module_layout in {abis:?}");
    None
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
