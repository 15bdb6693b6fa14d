//! Fixtures of the rpm database and KMP tests: SUSE-style KMP rpms holding the vendor modules
//! built against real Debian headers, 300 small noarch rpms, and roots where Debian's `rpm`
//! installed them (`rpm --root ROOT --dbpath DBPATH -i --nodeps --noscripts`, which writes
//! the SQLite backend and the packages' files into ROOT).
//!
//! The rpms come from `testdata/build-kmp.sh OLD OTHER SPARE PAE` (cached in
//! `~/.cache/kabi/kmp/OLD-OTHER-SPARE-PAE`; see its header for the list), given the kernels of
//! the roles of `super::kernels` (cloud-amd64 `old`, `other`, `spare`; the newest 686-pae ABI):
//! [`KmpRpms`] names each package for them. As with [`super::fetch_kernel`], a failure is a test failure in CI and a skip
//! elsewhere.
//!
//! ```ignore
//! let Some(rpms) = common::kmp::kmp_rpms() else { return };
//! let root = tempfile::tempdir().unwrap();
//! common::kmp::install(root.path(), common::kmp::VAR_LIB_RPM,
//!     &[rpms.rpm(&rpms.v10(1))]);
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{in_ci, require_tool, testdata};

/// RHEL's and older SUSE's database directory.
pub const VAR_LIB_RPM: &str = "/var/lib/rpm";
/// SUSE's, Fedora ≥ 36's and RHEL 10's.
pub const SYSIMAGE_RPM: &str = "/usr/lib/sysimage/rpm";

/// The KMP names of the flavour the fixtures use (`amd64`: what follows the last dash of
/// Debian's `6.1.0-NN-cloud-amd64`).
pub const KMP_FLAVOUR: &str = "amd64";

/// The rpms built by `testdata/build-kmp.sh`.
#[derive(Debug, Clone)]
pub struct KmpRpms {
    /// The cache directory (`RPMS/`, `many/`, `index.txt`).
    pub dir: PathBuf,
    /// (file name, name, epoch, version, release) of each package of `RPMS/`.
    pub index: Vec<(String, String, Option<u32>, String, String)>,
    /// The same for `weak2/` (KMPs only weak-modules2's tests install).
    pub weak2: Vec<(String, String, Option<u32>, String, String)>,
    /// The cloud-amd64 ABIs the vendor modules were built for: `old` (compatible with
    /// `new`), `other` (another `module_layout`), `spare` (the symvers of `old`, a kernel
    /// not installed), and the 686-pae ABI of the pae KMP.
    pub old: &'static str,
    pub other: &'static str,
    pub spare: Option<&'static str>,
    pub pae: String,
}

impl KmpRpms {
    /// `kabi-vendor-kmp-amd64-1.0_k6.1.0_OLD-RELEASE` (releases 1 and 2).
    pub fn v10(&self, release: u32) -> String {
        format!("kabi-vendor-kmp-amd64-1.0_k6.1.0_{}-{release}", self.old)
    }
    /// `kabi-vendor-kmp-amd64-1.1_k6.1.0_OTHER-1`: a newer version built for `other`.
    pub fn v11(&self) -> String {
        format!("kabi-vendor-kmp-amd64-1.1_k6.1.0_{}-1", self.other)
    }
    /// `kabi-vendor-kmp-amd64-0.9_k6.1.0_OTHER-1`: SLE 15's `/lib/modules` layout.
    pub fn v09(&self) -> String {
        format!("kabi-vendor-kmp-amd64-0.9_k6.1.0_{}-1", self.other)
    }
    /// `kabi-vendor-kmp-amd64-1.2_k6.1.0_SPARE-1` (in `weak2/`), with its ABI; None (a skip,
    /// a failure in CI) when the apt lists offer no `spare` kernel.
    pub fn v12(&self) -> Option<(String, &'static str)> {
        let spare = super::kernels::cloud()?.spare()?;
        Some((format!("kabi-vendor-kmp-amd64-1.2_k6.1.0_{spare}-1"), spare))
    }
    /// `kabi-other-kmp-amd64-1.0_k6.1.0_OLD-1`: overlaps kabi-vendor's basename.
    pub fn other_kmp(&self) -> String {
        format!("kabi-other-kmp-amd64-1.0_k6.1.0_{}-1", self.old)
    }
    /// `kabi-vendor-kmp-pae-1.0_k6.1.0_PAE-1` (i686).
    pub fn pae_kmp(&self) -> String {
        format!("kabi-vendor-kmp-pae-1.0_k6.1.0_{}-1", self.pae)
    }
    /// `kabi-inkernel-kmp-amd64-6.1.0_OLD-1`.
    pub fn inkernel(&self) -> String {
        format!("kabi-inkernel-kmp-amd64-6.1.0_{}-1", self.old)
    }

    /// The rpm file of `NAME-VERSION-RELEASE` in `RPMS/` or `weak2/`.
    pub fn rpm(&self, nvr: &str) -> PathBuf {
        let find = |index: &[(String, String, Option<u32>, String, String)]| {
            index
                .iter()
                .find(|(_, n, _, v, r)| format!("{n}-{v}-{r}") == nvr)
                .map(|(f, ..)| f.clone())
        };
        if let Some(f) = find(&self.index) {
            return self.dir.join("RPMS").join(f);
        }
        let f = find(&self.weak2).unwrap_or_else(|| {
            panic!(
                "no {nvr} among the KMP fixtures: {:?} {:?}",
                self.index, self.weak2
            )
        });
        self.dir.join("weak2").join(f)
    }

    /// Every rpm of `RPMS/` (the KMPs and kabi-vendor-doc), sorted by file name.
    pub fn all(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = self
            .index
            .iter()
            .map(|(f, ..)| self.dir.join("RPMS").join(f))
            .collect();
        v.sort();
        v
    }

    /// The 300 small noarch rpms of `many/`, sorted.
    pub fn many(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.dir.join("many"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v
    }
}

/// The KMP fixtures (built on first use: about 10 s once the vendor modules are cached).
pub fn kmp_rpms() -> Option<KmpRpms> {
    if !require_tool("rpmbuild") {
        return None;
    }
    let k = super::kernels::cloud()?;
    // a third kernel with old's symvers is needed by a few tests only (KmpRpms::v12)
    let spare = k.spare_quiet();
    let Some(&pae) = super::kernel_abis("686-pae").last() else {
        assert!(!in_ci(), "no 686-pae ABI in the apt lists");
        eprintln!("SKIPPED: no 686-pae ABI in the apt lists");
        return None;
    };
    let pae = pae.to_string();
    let out = Command::new(testdata().join("build-kmp.sh"))
        .args([k.old, k.other, spare.unwrap_or("-"), &pae])
        .output()
        .expect("run testdata/build-kmp.sh");
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr);
        assert!(!in_ci(), "building the KMP fixtures failed: {msg}");
        eprintln!("SKIPPED: building the KMP fixtures failed: {msg}");
        return None;
    }
    let dir = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    let index = |file: &Path| {
        let text = std::fs::read_to_string(file).unwrap();
        text.lines()
            .map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                assert_eq!(f.len(), 5, "bad {} line {l:?}", file.display());
                (
                    f[0].to_string(),
                    f[1].to_string(),
                    f[2].parse().ok(),
                    f[3].to_string(),
                    f[4].to_string(),
                )
            })
            .collect()
    };
    Some(KmpRpms {
        index: index(&dir.join("index.txt")),
        weak2: index(&dir.join("weak2/index.txt")),
        dir,
        old: k.old,
        other: k.other,
        spare,
        pae,
    })
}

/// Make `root` a merged-/usr root as current SUSE is (`lib -> usr/lib`, also `bin`, `sbin`,
/// `lib64`): call it before [`install`], so that a KMP's `/lib/modules/...` files (SLE 15's
/// layout) land in `usr/lib/modules/...` like the others.
pub fn merged_usr(root: &Path) {
    for d in ["bin", "sbin", "lib", "lib64"] {
        std::fs::create_dir_all(root.join("usr").join(d)).unwrap();
        std::os::unix::fs::symlink(Path::new("usr").join(d), root.join(d)).unwrap();
    }
}

/// `rpm --root ROOT --dbpath DBPATH ARGS...` (Debian's rpm).
pub fn rpm_cmd(root: &Path, dbpath: &str) -> Command {
    let mut c = Command::new("rpm");
    c.arg("--root").arg(root).args(["--dbpath", dbpath]);
    c
}

/// Install `rpms` into `root` with Debian's rpm, the database in `dbpath` (relative to the
/// root): `rpm --root ROOT --dbpath DBPATH -i --nodeps --noscripts --ignorearch RPM...` (the
/// pae KMP is i686). Panics on failure.
pub fn install(root: &Path, dbpath: &str, rpms: &[PathBuf]) {
    let out = rpm_cmd(root, dbpath)
        .args([
            "-i",
            "--nodeps",
            "--noscripts",
            "--nosignature",
            "--ignorearch",
        ])
        .args(rpms)
        .output()
        .expect("run rpm -i");
    assert!(
        out.status.success(),
        "rpm -i into {} failed: {}",
        root.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `rpm --root ROOT --dbpath DBPATH -qa --qf FORMAT`, its stdout as bytes.
pub fn rpm_qa(root: &Path, dbpath: &str, format: &str) -> Vec<u8> {
    let out = rpm_cmd(root, dbpath)
        .args(["-qa", "--nosignature", "--nodigest", "--qf", format])
        .output()
        .expect("run rpm -qa");
    assert!(
        out.status.success(),
        "rpm -qa failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
