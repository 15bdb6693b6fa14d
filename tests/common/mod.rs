//! Shared helpers of the integration tests.
#![allow(dead_code)]

pub mod kernels;
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

/// A temp root holding `lib/modules/KVER` as hard links to the module directory `sdir` (of
/// the cache of unpacked kernels), without the indexes depmod writes nor kabi's scan cache:
/// the root, and the module directory in it. A tool that writes there replaces files (by
/// rename), never writing through a link into the cache.
pub fn linked_tree(sdir: &Path, kver: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("lib/modules").join(kver);
    std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
    let st = Command::new("cp")
        .arg("-al")
        .arg(sdir)
        .arg(dir.parent().unwrap())
        .status()
        .unwrap();
    assert!(st.success(), "cp -al {}", sdir.display());
    for f in kabi::depmod::OUTPUTS.iter().chain(&["modules.kabi-cache"]) {
        let _ = std::fs::remove_file(dir.join(f));
    }
    (tmp, dir)
}

/// The newest cloud-amd64 kernel's module directory as [`linked_tree`] gives it, and its
/// release (`None`: the kernel could not be fetched, which outside CI skips the test).
pub fn linked_cloud_tree() -> Option<(tempfile::TempDir, PathBuf, String)> {
    let src = fetch_kernel("cloud-amd64", None)?;
    let (sdir, kver) = module_dir(&src);
    let (tmp, dir) = linked_tree(&sdir, &kver);
    Some((tmp, dir, kver))
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
/// (`usr/src/linux-headers-<kver>/Module.symvers`).
pub struct FetchedKernel {
    pub root: PathBuf,
    pub abi: u32,
    pub kver: String,
    pub symvers: kernels::Symvers,
}

impl FetchedKernel {
    pub fn fetch(flavour: &str, abi: &str) -> Option<FetchedKernel> {
        let root = fetch_kernel(flavour, Some(abi))?;
        let (_, kver) = module_dir(&root);
        let path = root.join(format!("usr/src/linux-headers-{kver}/Module.symvers"));
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Some(FetchedKernel {
            root,
            abi: abi.parse().expect("an ABI number"),
            kver,
            symvers: kernels::parse_symvers(&text),
        })
    }

    /// The CRC of `module_layout`, which every module of a MODVERSIONS kernel is checked
    /// against: two kernels whose CRCs differ refuse each other's modules.
    pub fn module_layout(&self) -> Option<&str> {
        kernels::module_layout(&self.symvers)
    }
}

/// The kernels of roles `old` and `new` of `flavour` (see [`kernels`]): the newest two ABIs
/// whose Module.symvers are identical, so that modules built for the older load on the newer
/// (Debian's ABI-compatible updates). `None` (after a SKIPPED message; a failure in CI)
/// when the apt lists offer no such pair.
pub fn kernels_with_identical_symvers(flavour: &str) -> Option<(FetchedKernel, FetchedKernel)> {
    let k = kernels::roles(flavour)?;
    Some((
        FetchedKernel::fetch(flavour, k.old)?,
        FetchedKernel::fetch(flavour, k.new)?,
    ))
}

/// The kernels of roles `other` and `new` of `flavour` (older, newer; see [`kernels`]): their
/// `module_layout` CRCs differ, so every module of one is refused by the other.
pub fn kernels_with_different_layout(flavour: &str) -> Option<(FetchedKernel, FetchedKernel)> {
    let k = kernels::roles(flavour)?;
    Some((
        FetchedKernel::fetch(flavour, k.other)?,
        FetchedKernel::fetch(flavour, k.new)?,
    ))
}

/// The Debian architecture of a kernel flavour other than amd64's.
pub(crate) fn debian_arch(flavour: &str) -> Option<&'static str> {
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
