//! Fixtures of the weak-modules tests: out-of-tree "vendor" modules built against real
//! Debian kernel headers, and RHEL-shaped roots with several kernels installed side by side.
//!
//! Both come from scripts in `testdata/` (cached in `~/.cache/kabi`, see their headers):
//! `build-vendor.sh ABI` builds `testdata/vendor/` (`kabi_vendor_a.ko`, which exports the GPL
//! function `kabi_vendor_a_hello`, and `kabi_vendor_b.ko`, which uses it), and
//! `make-weak-root.sh ROOT ABI... --vendor ABI...` lays out a root of cloud-amd64 kernels.
//! As with [`super::fetch_kernel`], a failure is a test failure in CI and a skip elsewhere.
//!
//! The tests give them the kernels of `super::kernels` by role. Facts these fixtures give
//! (checked with kmod's depmod): the vendor modules built for `old` are compatible with `new`
//! (byte-identical symvers); those built for `other` are not with `new`: both disagree about
//! `module_layout`, `kabi_vendor_a` also about the CRCs of whichever of the symbols it
//! imports changed between the two (see [`disagreeing`]; for 6.1.0-47 and -56 they were
//! `param_ops_uint`, `__pci_register_driver`, `pci_unregister_driver`, `kmalloc_trace` and
//! `kmalloc_caches`).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{in_ci, require_tool, testdata};

/// The flavour of every kernel of a [`WeakRoot`].
pub const FLAVOUR: &str = "cloud-amd64";

/// The kernel release of a cloud-amd64 ABI: `6.1.0-ABI-cloud-amd64`.
pub fn kver_of(abi: &str) -> String {
    format!("6.1.0-{abi}-{FLAVOUR}")
}

/// Run a fixture script; its trimmed stdout, or None (skip) / panic (CI) on failure.
fn run_script(what: &str, cmd: &mut Command) -> Option<String> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr);
        assert!(!in_ci(), "{what} failed: {msg}");
        eprintln!("SKIPPED: {what} failed: {msg}");
        return None;
    }
    Some(String::from_utf8(out.stdout).unwrap().trim().to_string())
}

/// The directory holding `kabi_vendor_a.ko` and `kabi_vendor_b.ko` built for cloud-amd64
/// ABI `abi` (and their `Module.symvers`), from `testdata/build-vendor.sh` (cached; the first
/// build of an ABI downloads about 13 MB of headers and takes some seconds). The directory is
/// in the shared cache: copy the modules before changing them.
pub fn vendor_modules(abi: &str) -> Option<PathBuf> {
    let mut cmd = Command::new(testdata().join("build-vendor.sh"));
    cmd.args([abi, FLAVOUR]);
    run_script(
        &format!("building the vendor modules for ABI {abi}"),
        &mut cmd,
    )
    .map(PathBuf::from)
}

/// A RHEL-shaped root made by `testdata/make-weak-root.sh` (see there for its layout).
#[derive(Debug, Clone)]
pub struct WeakRoot {
    /// The root directory (what `-b` takes).
    pub root: PathBuf,
    /// The kernel releases installed, in the order of the ABIs given.
    pub kvers: Vec<String>,
}

impl WeakRoot {
    /// The kernel release of `abi`, which must be one of the root's kernels.
    pub fn kver(&self, abi: &str) -> &str {
        let want = kver_of(abi);
        self.kvers
            .iter()
            .find(|k| **k == want)
            .unwrap_or_else(|| panic!("ABI {abi} is not installed in {:?}", self.kvers))
    }

    /// `ROOT/lib/modules/<kver>`.
    pub fn module_dir(&self, abi: &str) -> PathBuf {
        self.root.join("lib/modules").join(self.kver(abi))
    }

    /// Where `--vendor abi` installed the vendor modules: `lib/modules/<kver>/extra/kabi-vendor`.
    pub fn extra(&self, abi: &str) -> PathBuf {
        self.module_dir(abi).join("extra/kabi-vendor")
    }

    /// `lib/modules/<kver>/weak-updates` (it exists, empty, as on RHEL).
    pub fn weak_updates(&self, abi: &str) -> PathBuf {
        self.module_dir(abi).join("weak-updates")
    }

    /// `ROOT/boot/symvers-<kver>.gz`.
    pub fn symvers(&self, abi: &str) -> PathBuf {
        self.root
            .join("boot")
            .join(format!("symvers-{}.gz", self.kver(abi)))
    }
}

/// Make a root in `dir` (absent or empty) with the cloud-amd64 kernels of `abis` and the
/// vendor modules of each ABI of `vendor` (each one of `abis`) installed in its `extra/`;
/// kmod's depmod has indexed every kernel. Module files under `kernel/` are hard links into
/// the cache: never modify one in place (replacing or deleting it is fine).
pub fn weak_root(dir: &Path, abis: &[&str], vendor: &[&str]) -> Option<WeakRoot> {
    let mut cmd = Command::new(testdata().join("make-weak-root.sh"));
    cmd.arg(dir).args(abis);
    for v in vendor {
        cmd.args(["--vendor", v]);
    }
    let what = format!("making a weak-modules root with ABIs {abis:?}, vendor {vendor:?}");
    let out = run_script(&what, &mut cmd)?;
    let kvers: Vec<String> = out.lines().map(str::to_string).collect();
    assert_eq!(
        kvers,
        abis.iter().map(|a| kver_of(a)).collect::<Vec<_>>(),
        "make-weak-root.sh printed unexpected kernel releases"
    );
    Some(WeakRoot {
        root: dir.to_path_buf(),
        kvers,
    })
}

/// A SUSE-shaped root in `dir` (absent or empty): the cloud-amd64 kernels of `abis` as
/// [`weak_root`] lays them out, then made a merged /usr as current SUSE has it: the module
/// directories in `usr/lib/modules`, with `lib -> usr/lib` (and `bin`, `sbin`, `lib64` the
/// same way), symvers and System.map in `/boot`. No vendor module is installed: KMP rpms
/// bring them (`common::kmp::install`).
pub fn suse_root(dir: &Path, abis: &[&str]) -> Option<WeakRoot> {
    let r = weak_root(dir, abis, &[])?;
    std::fs::create_dir_all(dir.join("usr")).unwrap();
    std::fs::rename(dir.join("lib"), dir.join("usr/lib")).unwrap();
    std::os::unix::fs::symlink("usr/lib", dir.join("lib")).unwrap();
    for d in ["bin", "sbin", "lib64"] {
        std::fs::create_dir_all(dir.join("usr").join(d)).unwrap();
        std::os::unix::fs::symlink(Path::new("usr").join(d), dir.join(d)).unwrap();
    }
    Some(r)
}

/// The symbols whose CRC `module` records (kmod's `modprobe --dump-modversions`, the
/// reference) and the cloud-amd64 kernel of `abi` exports with another CRC: what a loader
/// or `weak-modules` names when it refuses the module. None (a skip; a failure in CI)
/// without kmod's modprobe or the kernel's symvers.
pub fn disagreeing(module: &Path, abi: &str) -> Option<std::collections::BTreeSet<String>> {
    if !require_tool("modprobe") {
        return None;
    }
    let out = Command::new("modprobe")
        .arg("--dump-modversions")
        .arg(module)
        .output()
        .expect("run modprobe --dump-modversions");
    assert!(
        out.status.success(),
        "modprobe --dump-modversions {module:?}: {out:?}"
    );
    let symvers = super::kernels::symvers_of(FLAVOUR, abi.parse().expect("an ABI number"));
    let Some(symvers) = symvers else {
        assert!(!in_ci(), "no symvers for ABI {abi}");
        return None;
    };
    let parse = |crc: &str| u64::from_str_radix(crc.trim_start_matches("0x"), 16).ok();
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .filter(|(crc, sym)| {
                symvers
                    .get(*sym)
                    .is_some_and(|(theirs, ..)| parse(theirs) != parse(crc))
            })
            .map(|(_, sym)| sym.to_string())
            .collect(),
    )
}
