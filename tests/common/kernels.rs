//! The real Debian kernels of the tests, found by property, never by ABI number: the archive
//! moves (ABIs leave it, a fresh machine's apt lists may be stale), so a test names the role a
//! kernel plays and [`roles`] finds today's kernel for it among the ABIs the apt lists offer.
//!
//! The roles (cloud-amd64 today: newest 57, old 56, new 57, other 54, spare 55, partial 53/54):
//! * `newest`: the newest ABI, for a test that needs any real kernel;
//! * `old` and `new`: the newest two ABIs whose `Module.symvers` are identical (Debian's
//!   ABI-compatible rebuilds): a module built for `old` loads on `new`;
//! * `other`: the newest ABI older than `new` whose `module_layout` CRC differs from `new`'s
//!   (and so from `old`'s): each refuses every module of the other;
//! * `spare`: a third ABI with the same symvers as `old` and `new` (a newer version of a
//!   vendor package built for a kernel that is not installed);
//! * `partial`: two consecutive ABIs with the same `module_layout` and some other CRCs of
//!   the symbols both export: some modules of the older load on the newer, some do not.
//!
//! The search is `testdata/kernel-roles.sh` (the scripts use it too): only the headers package
//! of a candidate is fetched (`fetch-kernel.sh --symvers`, ~1.5 MB); a test fetches the whole
//! kernel of the roles it uses.
//! The same roles serve every test, so the suite downloads few kernels. Resolved once per test
//! process. A role that cannot be found is a test failure in CI and a skip elsewhere, with
//! the ABIs seen in the message.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use super::{debian_arch, fetch_kernel, in_ci, testdata};

/// A kernel's exports: symbol -> (CRC, owner, export type, namespace), from its Module.symvers.
pub type Symvers = BTreeMap<String, (String, String, String, String)>;

/// Parse a Module.symvers text (`CRC\tSYMBOL\tOWNER\tTYPE[\tNAMESPACE]` lines).
pub fn parse_symvers(text: &str) -> Symvers {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let at = |i: usize| f.get(i).copied().unwrap_or_default().to_string();
            (f.len() >= 4).then(|| (at(1), (at(0), at(2), at(3), at(4))))
        })
        .collect()
}

/// The Module.symvers of `6.1.0-ABI-FLAVOUR` (the unpacked kernel's, or the headers
/// package's alone), or None when it cannot be fetched (an ABI in the lists that left the
/// archive: a search goes on without it).
pub fn symvers_of(flavour: &str, abi: u32) -> Option<Symvers> {
    let mut cmd = Command::new(testdata().join("fetch-kernel.sh"));
    cmd.args(["--symvers", flavour, &abi.to_string()]);
    if let Some(arch) = debian_arch(flavour) {
        cmd.env("ARCH", arch);
    }
    let out = cmd
        .output()
        .expect("run testdata/fetch-kernel.sh --symvers");
    if !out.status.success() {
        eprintln!(
            "note: no symvers for 6.1.0-{abi}-{flavour}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return None;
    }
    let path = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Some(parse_symvers(&text))
}

/// The CRC of `module_layout` in `symvers`.
pub fn module_layout(symvers: &Symvers) -> Option<&str> {
    symvers.get("module_layout").map(|(crc, ..)| crc.as_str())
}

/// The kernels of one flavour by role (see the module's documentation). ABIs as strings
/// (`"57"`), ready for `fetch_kernel` and the testdata scripts.
#[derive(Debug)]
pub struct Kernels {
    pub flavour: &'static str,
    /// The ABIs the apt lists offer with image and headers, oldest first.
    pub abis: Vec<u32>,
    pub newest: &'static str,
    pub old: &'static str,
    pub new: &'static str,
    pub other: &'static str,
    spare: Option<&'static str>,
    partial: Option<(&'static str, &'static str)>,
}

/// A failed property search: a failure in CI, a skip elsewhere.
fn missing(what: &str) {
    assert!(!in_ci(), "{what}");
    eprintln!("SKIPPED: {what}");
}

impl Kernels {
    /// `6.1.0-ABI-FLAVOUR`.
    pub fn kver(&self, abi: &str) -> String {
        format!("6.1.0-{abi}-{}", self.flavour)
    }

    /// The unpacked kernel of `abi` (one of the roles), see [`fetch_kernel`].
    pub fn fetch(&self, abi: &str) -> Option<PathBuf> {
        fetch_kernel(self.flavour, Some(abi))
    }

    /// The third ABI with `old`'s and `new`'s symvers (a skip, or a failure in CI, without).
    pub fn spare(&self) -> Option<&'static str> {
        if self.spare.is_none() {
            missing(&format!(
                "no third {} ABI with the symvers of {} and {} in {:?}",
                self.flavour, self.old, self.new, self.abis
            ));
        }
        self.spare
    }

    /// The `spare` ABI if there is one, without a message.
    pub fn spare_quiet(&self) -> Option<&'static str> {
        self.spare
    }

    /// Two consecutive ABIs (older, newer) with the same `module_layout` and some other
    /// CRCs (a skip, or a failure in CI, without).
    pub fn partial(&self) -> Option<(&'static str, &'static str)> {
        if self.partial.is_none() {
            missing(&format!(
                "no two consecutive {} ABIs with one module_layout and other CRCs in {:?}",
                self.flavour, self.abis
            ));
        }
        self.partial
    }

    /// `testdata/kernel-roles.sh FLAVOUR`, the one implementation of the roles (the scripts
    /// use it too), read.
    fn resolve(flavour: &'static str) -> Option<Kernels> {
        let mut cmd = Command::new(testdata().join("kernel-roles.sh"));
        cmd.arg(flavour);
        if let Some(arch) = debian_arch(flavour) {
            cmd.env("ARCH", arch);
        }
        let out = cmd.output().expect("run testdata/kernel-roles.sh");
        if !out.status.success() {
            missing(&format!(
                "the {flavour} kernels by role: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            return None;
        }
        let line = String::from_utf8(out.stdout).unwrap();
        let role = |name: &str| -> Option<&'static str> {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
                .filter(|v| !v.is_empty())
                .map(|v| &*Box::leak(v.to_string().into_boxed_str()))
        };
        let required = |name: &str| {
            role(name).unwrap_or_else(|| panic!("kernel-roles.sh printed no {name}: {line}"))
        };
        let k = Kernels {
            flavour,
            newest: required("newest"),
            old: required("old"),
            new: required("new"),
            other: required("other"),
            spare: role("spare"),
            partial: role("partial").map(|p| {
                p.split_once(',')
                    .unwrap_or_else(|| panic!("kernel-roles.sh: partial={p}"))
            }),
            abis: role("abis")
                .unwrap_or_default()
                .split(',')
                .filter_map(|a| a.parse().ok())
                .collect(),
        };
        eprintln!("kernels of {flavour} by role: {}", line.trim());
        Some(k)
    }
}

/// The kernels of `flavour` by role, resolved once per test process. None (after a SKIPPED
/// message; a failure in CI) when a role of `old`, `new`, `other` has no kernel.
pub fn roles(flavour: &str) -> Option<&'static Kernels> {
    static CACHE: OnceLock<Mutex<HashMap<String, Option<&'static Kernels>>>> = OnceLock::new();
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(k) = cache.get(flavour) {
        return *k;
    }
    let name: &'static str = Box::leak(flavour.to_string().into_boxed_str());
    let k = Kernels::resolve(name).map(|k| &*Box::leak(Box::new(k)));
    cache.insert(flavour.to_string(), k);
    k
}

/// The cloud-amd64 kernels by role: the flavour most tests use (the smallest image).
pub fn cloud() -> Option<&'static Kernels> {
    roles("cloud-amd64")
}
