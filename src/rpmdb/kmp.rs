//! SUSE's kernel module packages (KMPs), as `weak-modules2` sees them: pure functions over a
//! package list (data in, data out, no filesystem).
//!
//! Each rule below names the function of `weak-modules2` (openSUSE/suse-module-tools) it
//! comes from. Two generations of the script exist: the current one (modules under
//! `/usr/lib/modules`, required of a KMP's file list) and SLE 15's (modules under
//! `(/usr)?/lib/modules`, `/usr` stripped). This model accepts both layouts and keeps each
//! module's path as the package has it ([`KmpModule::path`]) besides the part that matters
//! for links ([`KmpModule::rel`]), so the caller can follow either.
//!
//! * **Name** (`add_kmp`, `find_kmps`): a KMP is a package named `BASENAME-kmp-FLAVOR`:
//!   `add_kmp` takes the flavour as what follows the *last* dash of the name
//!   (`${kmpshort##*-}`) and the basename as what precedes the last `-kmp-`
//!   (`${kmpshort%-kmp-*}`); `find_kmps` then lists the packages whose name matches the
//!   glob `BASENAME-kmp-FLAVOR` (`*-kmp-FLAVOR` for every KMP of a flavour). So a flavour
//!   never holds a dash, and a name such as `foo-kmp-rt-debug` is no KMP of any flavour the
//!   script would look for. See [`parse_kmp_name`].
//! * **Kernel flavour** (`kernel_changed`: `flavor=${1##*-}`; `add_kmp`, `remove_kmp`: a
//!   kernel is considered when its release matches `*-$flavor`): what follows the last dash
//!   of the kernel release. For Debian's kernels this is `amd64` for `6.1.0-56-amd64`,
//!   `6.1.0-56-cloud-amd64` and `6.1.0-56-rt-amd64` alike, so a Debian-built KMP is named
//!   `NAME-kmp-amd64` and is considered for all three; the symbol check then decides. See
//!   [`kernel_flavor`], [`kernel_has_flavor`].
//! * **`kmp_in_kernel`** (`find_kmps`): a package that provides `kmp_in_kernel` (a KMP built
//!   from the kernel's own spec file, fate#319339) is skipped.
//! * **Modules** (`find_kmps`): the package's files matching
//!   `^(/usr)?/lib/modules/[^/]+/.+\.ko(\.gz|\.xz|\.zst)?$`; a KMP without any is skipped with
//!   `WARNING: NVR does not contain any kernel modules` ([`KmpError::NoModules`]).
//! * **Built-for kernel** (`check_kmp`): every module must lie below the same
//!   `lib/modules/KREL` (else `Error: package NVR seems to contain modules for multiple kernel
//!   versions`), and none below `KREL/kernel/` or `KREL/weak-updates/` (else `Error: package
//!   NVR must not install modules into kernel/ or weak-updates/`). Both errors make
//!   `find_kmps` fail as a whole in the script. Any other directory (`updates/`, `extra/`,
//!   ...) is accepted.
//! * **Basenames** (`check_kmp`: `sed -e 's:.*/::' | sort -u`): the modules' file names with
//!   their extensions (`a.ko`, `b.ko.xz`): what the overlap check (`basenames_are_unique`)
//!   compares with the files of `updates/`, `extra/` and `weak-updates/`. The initrd check
//!   (`strip_mod_extensions`) compares names without `.ko[.gz|.xz|.zst]`: [`module_name`].
//! * **Links** (`symlink_to_module`): a module is linked into kernel R as
//!   `R/weak-updates/<its path below lib/modules/KREL/>`.
//! * **Order** (`find_kmps`: `rpm -qa --qf '%{n}-%{v}-%{r}'` piped through `rpmsort -r`):
//!   newest first, comparing name (bytewise), then version, then release with
//!   [`rpmvercmp`]. The epoch is *not* part of the order (the script never prints it): see
//!   [`kmp_order`]; [`super::evr_cmp`] is rpm's full order for whoever needs it.
//! * **Same KMP** (`__previous_version_of_kmp`: `${old_kmp%-*-*} == ${new_kmp%-*-*}`):
//!   versions of one KMP are the packages of the same name.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use super::package::Package;
use super::vercmp::rpmvercmp;

/// The provide that marks a KMP built from the kernel's own spec file.
pub const KMP_IN_KERNEL: &str = "kmp_in_kernel";

/// The parts of a KMP's package name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KmpName<'a> {
    /// What precedes the last `-kmp-` (`kqemu` of `kqemu-kmp-default`).
    pub basename: &'a str,
    /// What follows the last dash (`default`).
    pub flavor: &'a str,
}

/// Split a package name `BASENAME-kmp-FLAVOR`; None when the name is not of that form
/// (see the module documentation: the flavour is what follows the last dash and the name
/// must end in `-kmp-FLAVOR`).
pub fn parse_kmp_name(name: &str) -> Option<KmpName<'_>> {
    let (before, flavor) = name.rsplit_once('-')?;
    if flavor.is_empty() {
        return None;
    }
    let basename = before.strip_suffix("-kmp")?;
    if basename.is_empty() {
        return None;
    }
    Some(KmpName { basename, flavor })
}

/// The flavour of a kernel release: what follows its last dash (`default` of
/// `6.4.0-150600.23.25-default`, `amd64` of `6.1.0-56-cloud-amd64`); None without a dash.
pub fn kernel_flavor(krel: &str) -> Option<&str> {
    krel.rsplit_once('-')
        .map(|(_, f)| f)
        .filter(|f| !f.is_empty())
}

/// Is kernel `krel` of `flavor` (`case $krel in *-$flavor)` of `add_kmp`)?
pub fn kernel_has_flavor(krel: &str, flavor: &str) -> bool {
    !flavor.is_empty()
        && krel
            .strip_suffix(flavor)
            .is_some_and(|rest| rest.ends_with('-'))
}

/// Split `NAME-VERSION-RELEASE` at its last two dashes (`${kmp%-*-*}` and friends).
pub fn split_nvr(nvr: &str) -> Option<(&str, &str, &str)> {
    let (nv, release) = nvr.rsplit_once('-')?;
    let (name, version) = nv.rsplit_once('-')?;
    (!name.is_empty() && !version.is_empty() && !release.is_empty())
        .then_some((name, version, release))
}

/// A module name without directory and without `.ko[.gz|.xz|.zst]`
/// (`strip_mod_extensions`); None when the file is no module.
pub fn module_name(file_name: &str) -> Option<&str> {
    for ext in [".ko", ".ko.gz", ".ko.xz", ".ko.zst"] {
        if let Some(stem) = file_name.strip_suffix(ext) {
            return Some(stem);
        }
    }
    None
}

/// One module of a KMP.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct KmpModule {
    /// The path as the package lists it (`/usr/lib/modules/KREL/updates/x.ko` or
    /// `/lib/modules/KREL/updates/x.ko`).
    pub path: PathBuf,
    /// The path below `lib/modules/KREL/` (`updates/x.ko`): where the module's weak-updates
    /// link goes in another kernel, below `weak-updates/`.
    pub rel: PathBuf,
    /// The file name (`x.ko`).
    pub basename: String,
}

impl KmpModule {
    /// The module's link in another kernel, relative to that kernel's modules directory:
    /// `weak-updates/<rel>` (`symlink_to_module`).
    pub fn weak_link(&self) -> PathBuf {
        Path::new("weak-updates").join(&self.rel)
    }
}

/// A KMP: a package of a KMP name with modules built for one kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kmp {
    pub name: String,
    pub basename: String,
    pub flavor: String,
    pub epoch: Option<u32>,
    pub version: String,
    pub release: String,
    /// The kernel release the modules were built for (the directory below lib/modules).
    pub krel: String,
    /// The modules, sorted by path.
    pub modules: Vec<KmpModule>,
}

impl Kmp {
    /// `NAME-VERSION-RELEASE`, the form the script passes around.
    pub fn nvr(&self) -> String {
        format!("{}-{}-{}", self.name, self.version, self.release)
    }

    /// The modules' file names, sorted and unique (`basenames-$kmp`).
    pub fn basenames(&self) -> BTreeSet<&str> {
        self.modules.iter().map(|m| m.basename.as_str()).collect()
    }

    /// The modules' names without extensions, sorted and unique (for the initrd check).
    pub fn module_names(&self) -> BTreeSet<&str> {
        self.modules
            .iter()
            .filter_map(|m| module_name(&m.basename))
            .collect()
    }

    /// Is this KMP considered for kernel `krel` (same flavour)?
    pub fn is_for_kernel(&self, krel: &str) -> bool {
        kernel_has_flavor(krel, &self.flavor)
    }
}

/// Why a KMP cannot be used (the script's messages).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KmpError {
    /// `find_kmps` skips such a package with this warning.
    #[error("WARNING: {nvr} does not contain any kernel modules")]
    NoModules { nvr: String },
    /// `check_kmp` fails (and with it `find_kmps`).
    #[error("Error: package {nvr} seems to contain modules for multiple kernel versions")]
    MultipleKernels { nvr: String, krels: Vec<String> },
    /// `check_kmp` fails (and with it `find_kmps`).
    #[error("Error: package {nvr} must not install modules into kernel/ or weak-updates/")]
    ForbiddenDir { nvr: String, path: PathBuf },
}

/// A module path of a KMP's file list split into (KREL, path below `lib/modules/KREL/`);
/// None unless it matches `^(/usr)?/lib/modules/[^/]+/.+\.ko(\.gz|\.xz|\.zst)?$`.
pub fn split_module_path(path: &Path) -> Option<(&str, &Path)> {
    let below = path
        .strip_prefix("/usr/lib/modules")
        .or_else(|_| path.strip_prefix("/lib/modules"))
        .ok()?;
    let mut comps = below.components();
    let Some(Component::Normal(krel)) = comps.next() else {
        return None;
    };
    let krel = krel.to_str()?;
    let rel = comps.as_path();
    // `.+\.ko...`: something below KREL whose name ends in a module extension; the regex's
    // `.+` may span directories, and needs at least one character before `.ko`
    let file = rel.file_name()?.to_str()?;
    let stem = module_name(file)?;
    if rel.components().count() == 1 && stem.is_empty() {
        return None;
    }
    if comps.any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    Some((krel, rel))
}

/// The KMP a package list entry describes, from its name, version and file list
/// (`find_kmps` + `check_kmp` for one package). None when the name is no KMP name.
/// (`kmp_in_kernel` is the caller's business: see [`kmp_of_package`].)
pub fn kmp_from_files<'a>(
    name: &str,
    epoch: Option<u32>,
    version: &str,
    release: &str,
    files: impl IntoIterator<Item = &'a Path>,
) -> Option<Result<Kmp, KmpError>> {
    let kn = parse_kmp_name(name)?;
    let nvr = format!("{name}-{version}-{release}");
    let mut modules = Vec::new();
    let mut krels = BTreeSet::new();
    for f in files {
        let Some((krel, rel)) = split_module_path(f) else {
            continue;
        };
        krels.insert(krel.to_string());
        modules.push(KmpModule {
            path: f.to_path_buf(),
            rel: rel.to_path_buf(),
            basename: rel
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
        });
    }
    if modules.is_empty() {
        return Some(Err(KmpError::NoModules { nvr }));
    }
    if krels.len() != 1 {
        return Some(Err(KmpError::MultipleKernels {
            nvr,
            krels: krels.into_iter().collect(),
        }));
    }
    if let Some(m) = modules.iter().find(|m| {
        let first = m.rel.components().next();
        first == Some(Component::Normal("kernel".as_ref()))
            || first == Some(Component::Normal("weak-updates".as_ref()))
    }) {
        return Some(Err(KmpError::ForbiddenDir {
            nvr,
            path: m.path.clone(),
        }));
    }
    modules.sort();
    modules.dedup();
    Some(Ok(Kmp {
        name: name.to_string(),
        basename: kn.basename.to_string(),
        flavor: kn.flavor.to_string(),
        epoch,
        version: version.to_string(),
        release: release.to_string(),
        krel: krels.into_iter().next().unwrap_or_default(),
        modules,
    }))
}

/// The KMP an installed package is: None when its name is no KMP name or it provides
/// `kmp_in_kernel` (`find_kmps` skips it).
pub fn kmp_of_package(p: &Package) -> Option<Result<Kmp, KmpError>> {
    if p.provides_name(KMP_IN_KERNEL) {
        return None;
    }
    kmp_from_files(
        &p.name,
        p.epoch,
        &p.version,
        &p.release,
        p.files.iter().map(PathBuf::as_path),
    )
}

/// The KMP whose package is already gone, from `--remove-kmp NVR` and the module list on
/// standard input (`remove_kmp`: the list replaces the file list; SLE 15's script strips a
/// leading `/usr`, the current one takes the paths as they are: both forms are accepted).
pub fn kmp_from_module_list(nvr: &str, list: &str) -> Option<Result<Kmp, KmpError>> {
    let (name, version, release) = split_nvr(nvr)?;
    let paths: Vec<PathBuf> = list
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .map(PathBuf::from)
        .collect();
    kmp_from_files(
        name,
        None,
        version,
        release,
        paths.iter().map(PathBuf::as_path),
    )
}

/// The order of `rpmsort` on `%{n}-%{v}-%{r}` lines: name bytewise, then version, then
/// release by [`rpmvercmp`] (ascending; `find_kmps` sorts newest first with `-r`).
pub fn kmp_order(a: &Kmp, b: &Kmp) -> Ordering {
    a.name
        .as_bytes()
        .cmp(b.name.as_bytes())
        .then_with(|| rpmvercmp(a.version.as_bytes(), b.version.as_bytes()))
        .then_with(|| rpmvercmp(a.release.as_bytes(), b.release.as_bytes()))
}

/// What `find_kmps BASENAME FLAVOR` finds in a package list.
#[derive(Debug, Clone, Default)]
pub struct FoundKmps {
    /// The usable KMPs, newest first ([`kmp_order`] reversed; ties keep database order).
    pub kmps: Vec<Kmp>,
    /// Packages skipped with a warning ([`KmpError::NoModules`]).
    pub warnings: Vec<KmpError>,
    /// Packages that make the script's `find_kmps` fail ([`KmpError::MultipleKernels`],
    /// [`KmpError::ForbiddenDir`]).
    pub errors: Vec<KmpError>,
    /// Packages of a matching name skipped because they provide `kmp_in_kernel`.
    pub in_kernel: Vec<String>,
}

/// The KMPs of `flavor` in a package list, of one basename (`Some("kqemu")`) or all
/// (`None`: the script's `'*'`): `find_kmps`.
pub fn find_kmps(packages: &[Package], basename: Option<&str>, flavor: &str) -> FoundKmps {
    let mut found = FoundKmps::default();
    for p in packages {
        let Some(kn) = parse_kmp_name(&p.name) else {
            continue;
        };
        if kn.flavor != flavor || basename.is_some_and(|b| b != kn.basename) {
            continue;
        }
        if p.provides_name(KMP_IN_KERNEL) {
            found.in_kernel.push(p.nvr());
            continue;
        }
        match kmp_of_package(p) {
            Some(Ok(k)) => found.kmps.push(k),
            Some(Err(e @ KmpError::NoModules { .. })) => found.warnings.push(e),
            Some(Err(e)) => found.errors.push(e),
            None => {}
        }
    }
    found.kmps.sort_by(|a, b| kmp_order(b, a));
    found
}

/// Every KMP name's flavour present in a package list (to run `find_kmps` per flavour).
pub fn flavors(packages: &[Package]) -> BTreeSet<&str> {
    packages
        .iter()
        .filter_map(|p| parse_kmp_name(&p.name).map(|k| k.flavor))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            parse_kmp_name("kqemu-kmp-default"),
            Some(KmpName {
                basename: "kqemu",
                flavor: "default"
            })
        );
        assert_eq!(
            parse_kmp_name("kabi-vendor-kmp-amd64"),
            Some(KmpName {
                basename: "kabi-vendor",
                flavor: "amd64"
            })
        );
        // the last -kmp- separates the basename
        assert_eq!(
            parse_kmp_name("a-kmp-b-kmp-rt").unwrap().basename,
            "a-kmp-b"
        );
        // a flavour never holds a dash: find_kmps' glob would not match this name
        assert_eq!(parse_kmp_name("foo-kmp-rt-debug"), None);
        assert_eq!(parse_kmp_name("kernel-default"), None);
        assert_eq!(parse_kmp_name("foo-kmp-"), None);
        assert_eq!(parse_kmp_name("-kmp-default"), None);
    }

    #[test]
    fn kernel_flavours() {
        assert_eq!(kernel_flavor("6.1.0-56-cloud-amd64"), Some("amd64"));
        assert_eq!(kernel_flavor("6.4.0-150600.23.25-default"), Some("default"));
        assert_eq!(kernel_flavor("6.1.0"), None);
        assert!(kernel_has_flavor("6.1.0-56-cloud-amd64", "amd64"));
        assert!(kernel_has_flavor("6.1.0-57-amd64", "amd64"));
        assert!(!kernel_has_flavor("6.1.0-57-amd64", "md64"));
        assert!(!kernel_has_flavor("6.1.0-56-cloud-amd64", "cloud-amd64x"));
        assert!(!kernel_has_flavor("amd64", "amd64"));
        assert!(!kernel_has_flavor("6.1.0-57-amd64", ""));
    }

    #[test]
    fn module_paths() {
        let ok = |p: &str| {
            split_module_path(Path::new(p)).map(|(k, r)| (k.to_string(), r.to_path_buf()))
        };
        assert_eq!(
            ok("/usr/lib/modules/6.1.0-55-cloud-amd64/updates/kabi-vendor/a.ko"),
            Some((
                "6.1.0-55-cloud-amd64".into(),
                "updates/kabi-vendor/a.ko".into()
            ))
        );
        assert_eq!(
            ok("/lib/modules/K/extra/b.ko.zst"),
            Some(("K".into(), "extra/b.ko.zst".into()))
        );
        assert_eq!(ok("/lib/modules/K/updates/"), None);
        assert_eq!(ok("/lib/modules/K/modules.dep"), None);
        assert_eq!(ok("/lib/modules/K/.ko"), None);
        assert_eq!(ok("/usr/share/doc/x.ko"), None);
        assert_eq!(ok("/lib/modules/K/updates/a.ko.bz2"), None);
    }

    fn kmp(files: &[&str]) -> Result<Kmp, KmpError> {
        kmp_from_files(
            "kv-kmp-default",
            None,
            "1.0_k6.4.0_1",
            "1",
            files.iter().map(Path::new),
        )
        .unwrap()
    }

    #[test]
    fn check_kmp_rules() {
        let k = kmp(&[
            "/usr/lib/modules/6.4.0-1-default/updates/kv/b.ko.xz",
            "/usr/lib/modules/6.4.0-1-default/updates/kv/a.ko",
            "/usr/lib/modules/6.4.0-1-default/updates/kv",
            "/usr/share/doc/kv/README",
        ])
        .unwrap();
        assert_eq!(k.krel, "6.4.0-1-default");
        assert_eq!(k.flavor, "default");
        assert_eq!(
            k.basenames().into_iter().collect::<Vec<_>>(),
            ["a.ko", "b.ko.xz"]
        );
        assert_eq!(k.module_names().into_iter().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(
            k.modules[0].weak_link(),
            Path::new("weak-updates/updates/kv/a.ko")
        );
        assert!(k.is_for_kernel("6.4.0-2-default"));
        assert!(!k.is_for_kernel("6.4.0-2-rt"));
        assert_eq!(
            kmp(&["/usr/share/doc/kv/README"]).unwrap_err(),
            KmpError::NoModules {
                nvr: "kv-kmp-default-1.0_k6.4.0_1-1".into()
            }
        );
        assert!(matches!(
            kmp(&["/lib/modules/A/updates/a.ko", "/lib/modules/B/updates/b.ko"]),
            Err(KmpError::MultipleKernels { .. })
        ));
        assert!(matches!(
            kmp(&["/lib/modules/A/weak-updates/a.ko"]),
            Err(KmpError::ForbiddenDir { .. })
        ));
        assert!(matches!(
            kmp(&["/lib/modules/A/kernel/drivers/a.ko"]),
            Err(KmpError::ForbiddenDir { .. })
        ));
    }

    #[test]
    fn order_is_rpmsort_of_nvr() {
        let mk = |v: &str, r: &str, e: Option<u32>| Kmp {
            epoch: e,
            version: v.into(),
            release: r.into(),
            ..kmp(&["/lib/modules/K/updates/a.ko"]).unwrap()
        };
        let mut v = [
            mk("1.0_k6.1.0_55", "1", None),
            mk("1.0_k6.1.0_55", "2", None),
            mk("1.0_k6.1.0_47", "10", Some(9)),
            mk("1.1_k6.1.0_47", "1", None),
        ];
        v.sort_by(|a, b| kmp_order(b, a));
        let got: Vec<String> = v.iter().map(Kmp::nvr).collect();
        // the epoch plays no part, as in the script's `%{n}-%{v}-%{r}`
        assert_eq!(
            got,
            [
                "kv-kmp-default-1.1_k6.1.0_47-1",
                "kv-kmp-default-1.0_k6.1.0_55-2",
                "kv-kmp-default-1.0_k6.1.0_55-1",
                "kv-kmp-default-1.0_k6.1.0_47-10",
            ]
        );
    }

    #[test]
    fn module_list_from_stdin() {
        let k = kmp_from_module_list(
            "kv-kmp-default-1.0-2",
            "/lib/modules/K/updates/a.ko\n\n/lib/modules/K/updates/b.ko\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(k.name, "kv-kmp-default");
        assert_eq!(k.release, "2");
        assert_eq!(k.modules.len(), 2);
        assert_eq!(split_nvr("kv-kmp-default"), Some(("kv", "kmp", "default")));
        assert_eq!(split_nvr("a-b"), None);
    }
}
