//! The verdict the kernel's loader would give a module on a target kernel, with every
//! reason, in the loader's order (spec §2.2, §2.3, §2.4, §1.7).
//!
//! `check_set` resolves a set of modules to a fixed point, as RHEL's weak-modules does: a
//! symbol provided by another module of the set counts only if that module is itself
//! compatible; when several modules of the set export it (two builds of one module), any
//! compatible one provides it.

use crate::kernel::abi::KernelSymbol;
use crate::kernel::target::Target;
use crate::module::{ExtVersions, Module, Versions};
use crate::sig::state::Lockdown;
use crate::sig::{Outcome as SigOutcome, SigCheck, Soft};
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use serde::Serialize;
use std::path::PathBuf;

/// Licenses the kernel treats as GPL-compatible (`include/linux/license.h`).
const GPL_COMPATIBLE: &[&[u8]] = &[
    b"GPL",
    b"GPL v2",
    b"GPL and additional rights",
    b"Dual BSD/GPL",
    b"Dual MIT/GPL",
    b"Dual MPL/GPL",
];

/// A reason the kernel would refuse the module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Problem {
    /// The signature trailer or its PKCS#7 message is malformed, or the signature does not
    /// verify with the trusted key it names: refused whether signatures are enforced or not,
    /// with the verifier's errno (EBADMSG, EKEYREJECTED, EINVAL, ...).
    BadSignature {
        errno: &'static str,
        reason: String,
        /// What the kernel logs (often nothing).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        log: Vec<String>,
    },
    /// Signature enforcement is on and the module is unsigned.
    Unsigned,
    /// Signature enforcement is on and the signature uses crypto the kernel lacks (or is not
    /// PKCS#7).
    UnsupportedCrypto {
        reason: String,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        log: Vec<String>,
    },
    /// Signature enforcement is on and the module is signed with a key the kernel does not
    /// trust.
    UnavailableKey { signer: String },
    /// Lockdown (integrity or above): a module the kernel would otherwise accept without a
    /// valid signature is refused. `comm` is the loading process's name, which the kernel's
    /// message names.
    Lockdown { reason: &'static str, comm: String },
    /// ELF class, byte order or machine differ from the kernel's.
    WrongArchitecture { module: String, kernel: String },
    /// `.gnu.linkonce.this_module` size differs from the kernel's `struct module` (6.4+).
    StructModuleSize { module: u64, kernel: u64 },
    /// `module_layout` CRC differs: the module was built for another `struct module`.
    ModuleLayout { module_crc: u64, kernel_crc: u32 },
    /// The module has no `__versions` and the kernel has no MODULE_FORCE_LOAD.
    NoVersions,
    /// vermagic differs (`same_magic`).
    Vermagic { module: String, kernel: String },
    /// The module has no vermagic and the kernel has no MODULE_FORCE_LOAD.
    NoVermagic,
    /// The module exports symbols without CRCs on a modversions kernel, without FORCE_LOAD.
    ExportsWithoutVersions,
    /// A needed symbol's CRC differs from the provider's.
    CrcMismatch {
        symbol: String,
        module_crc: u64,
        kernel_crc: u32,
        provider: String,
        /// Weak reference: the kernel still checks it once resolved (depmod does not).
        weak: bool,
    },
    /// A needed (non-weak) symbol is provided by nobody.
    MissingSymbol { symbol: String },
    /// The symbol is GPL-only and the module's license is not GPL-compatible.
    GplOnly {
        symbol: String,
        provider: String,
        license: String,
    },
    /// The symbol is in a namespace the module does not import.
    NamespaceNotImported {
        symbol: String,
        namespace: String,
        provider: String,
    },
    /// The provider is another module of the set that is itself incompatible.
    ProviderIncompatible { symbol: String, provider: String },
}

impl Problem {
    /// The errno `init_module`/`finit_module` would return for this reason.
    pub fn errno(&self) -> &'static str {
        match self {
            Problem::BadSignature { errno, .. } => errno,
            Problem::Unsigned
            | Problem::UnsupportedCrypto { .. }
            | Problem::UnavailableKey { .. } => "EKEYREJECTED",
            Problem::Lockdown { .. } => "EPERM",
            Problem::CrcMismatch { .. } | Problem::NamespaceNotImported { .. } => "EINVAL",
            Problem::MissingSymbol { .. }
            | Problem::GplOnly { .. }
            | Problem::ProviderIncompatible { .. } => "ENOENT",
            _ => "ENOEXEC",
        }
    }

    /// What the kernel prints for it (dmesg), for the module called `m`.
    pub fn kernel_message(&self, m: &str) -> String {
        match self {
            Problem::BadSignature { log, .. } => log.join("\n"),
            Problem::Unsigned => "Loading of unsigned module is rejected".into(),
            Problem::UnsupportedCrypto { log, .. } => log
                .iter()
                .map(String::as_str)
                .chain(["Loading of module with unsupported crypto is rejected"])
                .collect::<Vec<_>>()
                .join("\n"),
            Problem::UnavailableKey { .. } => {
                "Loading of module with unavailable key is rejected".into()
            }
            Problem::Lockdown { reason, comm } => format!(
                "Lockdown: {comm}: {} loading is restricted; see man kernel_lockdown.7",
                lockdown_words(reason)
            ),
            Problem::WrongArchitecture { module, .. } => {
                format!("Invalid architecture in ELF header: {module}")
            }
            Problem::StructModuleSize { .. } => format!(
                "module {m}: .gnu.linkonce.this_module section size must match the kernel's built struct module size at run time"
            ),
            Problem::ModuleLayout { .. } => {
                format!("{m}: disagrees about version of symbol module_layout")
            }
            Problem::NoVersions | Problem::NoVermagic | Problem::ExportsWithoutVersions => {
                String::new()
            }
            Problem::Vermagic { module, kernel } => {
                format!("{m}: version magic '{module}' should be '{kernel}'")
            }
            Problem::CrcMismatch { symbol, .. } => format!(
                "{m}: disagrees about version of symbol {symbol}\n{m}: Unknown symbol {symbol} (err -22)"
            ),
            Problem::MissingSymbol { symbol }
            | Problem::GplOnly { symbol, .. }
            | Problem::ProviderIncompatible { symbol, .. } => {
                format!("{m}: Unknown symbol {symbol} (err -2)")
            }
            Problem::NamespaceNotImported {
                symbol, namespace, ..
            } => format!(
                "{m}: module uses symbol ({symbol}) from namespace {namespace}, but does not import it.\n{m}: Unknown symbol {symbol} (err -22)"
            ),
        }
    }

    /// The symbol this reason is about, if any.
    pub fn symbol(&self) -> Option<&str> {
        match self {
            Problem::ModuleLayout { .. } => Some("module_layout"),
            Problem::CrcMismatch { symbol, .. }
            | Problem::MissingSymbol { symbol }
            | Problem::GplOnly { symbol, .. }
            | Problem::NamespaceNotImported { symbol, .. }
            | Problem::ProviderIncompatible { symbol, .. } => Some(symbol),
            _ => None,
        }
    }
}

/// `lockdown_reasons[LOCKDOWN_MODULE_SIGNATURE]` is "unsigned module loading" whatever the
/// signature's defect.
fn lockdown_words(_reason: &str) -> &'static str {
    "unsigned module"
}

impl Problem {
    /// A refusal by the signature check (`module_sig_check()`, or lockdown after it).
    pub fn is_signature(&self) -> bool {
        matches!(
            self,
            Problem::BadSignature { .. }
                | Problem::Unsigned
                | Problem::UnsupportedCrypto { .. }
                | Problem::UnavailableKey { .. }
                | Problem::Lockdown { .. }
        )
    }

    /// One line (or a few) for a report on module `m`: the errno, then the kernel's words,
    /// then what kabi found when that adds to them.
    pub fn describe(&self, m: &str) -> String {
        let msg = self.kernel_message(m);
        match (msg.is_empty(), self.explain()) {
            (true, Some(e)) => format!("{}: {m}: {e}", self.errno()),
            (true, None) => format!("{} ({m})", self.errno()),
            (false, Some(e)) => format!("{}: {msg} ({e})", self.errno()),
            (false, None) => format!("{}: {msg}", self.errno()),
        }
    }

    /// What went wrong, for people, when the kernel says nothing (or little).
    pub fn explain(&self) -> Option<String> {
        match self {
            Problem::BadSignature { reason, .. } | Problem::UnsupportedCrypto { reason, .. } => {
                Some(reason.clone())
            }
            Problem::UnavailableKey { signer } => Some(signer.clone()),
            Problem::Lockdown { reason, .. } => Some(format!("{reason}, kernel locked down")),
            _ => None,
        }
    }
}

/// Something the kernel would accept but say, or taint the kernel for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Note {
    /// Taint flag and the kernel's message.
    Taint { flag: char, message: String },
    /// `no symbol version for X`: accepted without a CRC check.
    NoSymbolVersion { symbol: String },
    /// `struct module` size differs, on a kernel older than 6.4 that does not check it.
    StructModuleSize { module: u64, kernel: u64 },
}

/// The loader's verdict on one module.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub name: String,
    pub path: Option<PathBuf>,
    /// Empty: the module loads.
    pub problems: Vec<Problem>,
    pub notes: Vec<Note>,
    /// Checks that could not be made for lack of information (e.g. no CRCs known).
    pub unverified: Vec<String>,
    /// The signature check as the kernel's `module_sig_check()` would make it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<crate::sig::SigCheck>,
}

impl Verdict {
    pub fn compatible(&self) -> bool {
        self.problems.is_empty()
    }
    /// The errno of the first reason: what the load would return.
    pub fn errno(&self) -> Option<&'static str> {
        self.problems.first().map(Problem::errno)
    }
}

/// `try_to_force_load()`: the module loads, the kernel is tainted F, and the kernel says so
/// only when it is not tainted F yet (`M: REASON: kernel tainted.`): one note per module,
/// the first reason in the loader's order, however many symbols lack a version.
fn force_taint(v: &mut Verdict, reason: &str) {
    if v.notes
        .iter()
        .any(|n| matches!(n, Note::Taint { flag: 'F', .. }))
    {
        return;
    }
    v.notes.push(Note::Taint {
        flag: 'F',
        message: format!("{}: {reason}: kernel tainted.", v.name),
    });
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn is_gpl_compatible(m: &Module) -> bool {
    m.modinfo_first("license")
        .is_some_and(|l| GPL_COMPATIBLE.contains(&l))
}

/// `same_magic()`: with CRCs, compare from the first space on (the release may differ).
pub fn same_magic(module: &[u8], kernel: &[u8], has_crcs: bool) -> bool {
    if has_crcs {
        let tail = |s: &[u8]| {
            s.iter()
                .position(|&b| b == b' ')
                .map_or(&[][..], |i| &s[i..])
                .to_vec()
        };
        tail(module) == tail(kernel)
    } else {
        module == kernel
    }
}

/// One needed symbol: kmod's dependency-symbol list (undefined symbols, plus `__versions`
/// entries that are no undefined symbol, such as `module_layout`).
struct Need<'a> {
    name: &'a str,
    weak: bool,
}

/// The CRCs the module recorded, as the kernel looks them up: the extended tables when
/// present, else the classic `__versions` when the kernel sees it (`SHF_ALLOC`); `None` when
/// there is no table the kernel would use.
fn recorded_crcs(m: &Module) -> Option<HashMap<&str, u64>> {
    let entries = match (&m.ext_versions, &m.versions) {
        (ExtVersions::Present { entries }, _) => entries,
        (
            _,
            Versions::Present {
                entries,
                alloc: true,
                ..
            },
        ) => entries,
        _ => return None,
    };
    // the kernel takes the first entry of a name
    let mut map = HashMap::with_capacity_and_hasher(entries.len(), Default::default());
    for e in entries.iter().rev() {
        map.insert(e.name.as_str(), e.crc);
    }
    Some(map)
}

fn has_classic_versions(m: &Module) -> bool {
    matches!(m.versions, Versions::Present { alloc: true, .. })
}

fn arch_name(i: &crate::module::Ident) -> String {
    format!(
        "ELF{} {} machine {}",
        i.bits,
        if i.big_endian {
            "big-endian"
        } else {
            "little-endian"
        },
        i.machine
    )
}

/// Check one module directly against `target`, with `extra` providers (other modules of
/// the set) looked up before the kernel's own symbols. The signature is judged from the
/// module's trailer alone (see [`check_with_sig`]).
pub fn check(
    m: &Module,
    path: Option<PathBuf>,
    target: &Target,
    extra: &HashMap<String, KernelSymbol>,
) -> Verdict {
    check_with_sig(m, path, target, extra, None)
}

/// The signature part of the verdict (`module_sig_check()`, the loader's first step), from a
/// computed [`SigCheck`] and the target's enforcement and lockdown state.
fn signature_step(v: &mut Verdict, sc: &SigCheck, target: &Target) {
    let pol = &target.sig;
    if !pol.config.module_sig {
        return; // the kernel does not look at signatures
    }
    let enforced = target.config.sig_enforce || pol.enforcement.enforced;
    match &sc.outcome {
        SigOutcome::Verified { .. } => {}
        SigOutcome::Refused { errno, detail } => v.problems.push(Problem::BadSignature {
            errno,
            reason: detail.clone(),
            log: sc.log.clone(),
        }),
        SigOutcome::Soft { why, detail } => {
            if enforced {
                v.problems.push(match why {
                    Soft::Unsigned => Problem::Unsigned,
                    Soft::UnsupportedCrypto => Problem::UnsupportedCrypto {
                        reason: detail.clone(),
                        log: sc.log.clone(),
                    },
                    Soft::UnavailableKey => Problem::UnavailableKey {
                        signer: detail.clone(),
                    },
                });
            } else if pol.enforcement.lockdown >= Lockdown::Integrity {
                v.problems.push(Problem::Lockdown {
                    reason: why.reason(),
                    comm: pol.loader_comm.clone(),
                });
            } else {
                v.notes.push(Note::Taint {
                    flag: 'E',
                    message: format!(
                        "{}: module verification failed: signature and/or required key missing - tainting kernel",
                        v.name
                    ),
                });
            }
        }
        SigOutcome::Unknown { detail } => v.unverified.push(format!("signature: {detail}")),
    }
}

/// The verdict on a file whose ELF image kabi cannot read, when the signature check (which
/// the kernel makes before it parses the ELF) already refuses it: `None` otherwise (the
/// kernel would go on and fail on the ELF; the caller reports the file as unreadable).
pub fn signature_only(
    name: &str,
    path: Option<PathBuf>,
    sc: &SigCheck,
    target: &Target,
    why_unreadable: &str,
) -> Option<Verdict> {
    let mut v = Verdict {
        name: name.to_string(),
        path,
        problems: Vec::new(),
        notes: Vec::new(),
        unverified: Vec::new(),
        signature: None,
    };
    signature_step(&mut v, sc, target);
    if v.problems.is_empty() {
        return None;
    }
    v.unverified
        .push(format!("everything after the signature: {why_unreadable}"));
    v.notes.clear();
    v.signature = Some(sc.clone());
    Some(v)
}

/// [`check`] with the signature check already computed from the module's bytes
/// ([`crate::sig::verdict::check_image`]); `None` judges it from the trailer alone.
pub fn check_with_sig(
    m: &Module,
    path: Option<PathBuf>,
    target: &Target,
    extra: &HashMap<String, KernelSymbol>,
    sig: Option<&SigCheck>,
) -> Verdict {
    check_inner(m, path, target, extra, sig)
}

/// Where a module's needed symbols come from before the kernel's own: every candidate
/// provider of a name, in order of preference.
trait Providers {
    fn candidates(&self, name: &str) -> &[KernelSymbol];
}

impl Providers for HashMap<String, KernelSymbol> {
    fn candidates(&self, name: &str) -> &[KernelSymbol] {
        self.get(name).map(std::slice::from_ref).unwrap_or(&[])
    }
}

impl Providers for HashMap<&str, Vec<KernelSymbol>> {
    fn candidates(&self, name: &str) -> &[KernelSymbol] {
        self.get(name).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// What taking one needed symbol from one provider gives.
#[derive(Default)]
struct Resolution {
    problems: Vec<Problem>,
    no_version: bool,
    force_taint: bool,
}

fn check_inner(
    m: &Module,
    path: Option<PathBuf>,
    target: &Target,
    extra: &dyn Providers,
    sig: Option<&SigCheck>,
) -> Verdict {
    let name = m.name.clone();
    let mut v = Verdict {
        name,
        path,
        problems: Vec::new(),
        notes: Vec::new(),
        unverified: Vec::new(),
        signature: None,
    };
    let cfg = target.config;
    let crcs = cfg.modversions && target.crcs_known;
    let recorded = recorded_crcs(m);
    let recorded_crc = |name: &str| recorded.as_ref().map(|r| r.get(name).copied());

    // 1. signature
    let sc = match sig {
        Some(sc) => sc.clone(),
        None => crate::sig::verdict::check_trailer(&m.signature, &target.sig),
    };
    signature_step(&mut v, &sc, target);
    v.signature = Some(sc);

    // 2. ELF sanity against the kernel's architecture and struct module
    if let Some(k) = &target.arch
        && (k.bits, k.big_endian, k.machine) != (m.elf.bits, m.elf.big_endian, m.elf.machine)
    {
        v.problems.push(Problem::WrongArchitecture {
            module: arch_name(&m.elf),
            kernel: arch_name(k),
        });
    }
    match (m.this_module_size, target.this_module_size) {
        (Some(a), Some(b)) if a != b => {
            if target.version().is_some_and(|ver| ver >= (6, 4)) {
                v.problems.push(Problem::StructModuleSize {
                    module: a,
                    kernel: b,
                });
            } else {
                v.notes.push(Note::StructModuleSize {
                    module: a,
                    kernel: b,
                });
            }
        }
        (_, None) => v
            .unverified
            .push("struct module size (no module of the target kernel at hand)".into()),
        _ => {}
    }

    // 3. module_layout (check_modstruct_version)
    if cfg.modversions {
        match (
            recorded_crc("module_layout"),
            target.abi.get("module_layout"),
        ) {
            (None, _) => {
                if cfg.force_load {
                    force_taint(&mut v, "module_layout");
                } else {
                    v.problems.push(Problem::NoVersions);
                }
            }
            (Some(Some(mc)), Some(k)) if crcs => match k.crc {
                Some(kc) if mc != kc as u64 => v.problems.push(Problem::ModuleLayout {
                    module_crc: mc,
                    kernel_crc: kc,
                }),
                _ => {}
            },
            (Some(_), None) if crcs => v
                .unverified
                .push("module_layout (the kernel's ABI does not list it)".into()),
            _ => {}
        }
    }

    // 4. vermagic
    match (m.vermagic(), &target.vermagic) {
        (None, _) => {
            if cfg.force_load {
                force_taint(&mut v, "bad vermagic");
            } else {
                v.problems.push(Problem::NoVermagic);
            }
        }
        (Some(mm), Some(km)) => {
            if !same_magic(mm, km, cfg.modversions && has_classic_versions(m)) {
                v.problems.push(Problem::Vermagic {
                    module: lossy(mm),
                    kernel: lossy(km),
                });
            }
        }
        (Some(_), None) => v
            .unverified
            .push("vermagic (the kernel's vermagic is not known)".into()),
    }

    // 5. taints that do not fail
    if m.modinfo_first("intree").is_none() {
        v.notes.push(Note::Taint {
            flag: 'O',
            message: format!("{}: loading out-of-tree module taints kernel.", v.name),
        });
    }
    let gpl = is_gpl_compatible(m);
    if !gpl {
        let lic = m
            .modinfo_first("license")
            .map(lossy)
            .unwrap_or_else(|| "unspecified".into());
        v.notes.push(Note::Taint {
            flag: 'P',
            message: format!("{}: module license '{lic}' taints kernel.", v.name),
        });
    }
    if m.modinfo_first("staging").is_some() {
        v.notes.push(Note::Taint { flag: 'C', message: format!("{}: module is from the staging directory, the quality is unknown, you have been warned.", v.name) });
    }
    if cfg.modversions && !m.exports.is_empty() && m.exports.iter().all(|e| e.crc.is_none()) {
        if cfg.force_load {
            force_taint(&mut v, "no versions for exported symbols");
        } else {
            v.problems.push(Problem::ExportsWithoutVersions);
        }
    }

    // 6. every needed symbol (simplify_symbols)
    let imports: Vec<&str> = m
        .modinfo
        .iter()
        .filter(|e| e.key == b"import_ns")
        .map(|e| std::str::from_utf8(&e.value).unwrap_or(""))
        .collect();
    for need in needs(m) {
        if need.name == "module_layout" {
            continue; // checked above
        }
        let mut cands = extra.candidates(need.name);
        if cands.is_empty() {
            cands = target
                .abi
                .get(need.name)
                .map(std::slice::from_ref)
                .unwrap_or(&[]);
        }
        if cands.is_empty() {
            if !need.weak {
                v.problems.push(Problem::MissingSymbol {
                    symbol: need.name.into(),
                });
            }
            continue;
        }
        // the first provider the module can take the symbol from; else the first one's
        // reasons
        let judge = |p: &KernelSymbol| {
            let mut r = Resolution::default();
            if !gpl && p.kind.is_gpl_only() {
                r.problems.push(Problem::GplOnly {
                    symbol: need.name.into(),
                    provider: p.owner.clone(),
                    license: m
                        .modinfo_first("license")
                        .map(lossy)
                        .unwrap_or_else(|| "unspecified".into()),
                });
                return r;
            }
            if crcs && let Some(kc) = p.crc {
                match recorded_crc(need.name) {
                    Some(Some(mc)) if mc != kc as u64 => r.problems.push(Problem::CrcMismatch {
                        symbol: need.name.into(),
                        module_crc: mc,
                        kernel_crc: kc,
                        provider: p.owner.clone(),
                        weak: need.weak,
                    }),
                    Some(Some(_)) => {}
                    Some(None) => r.no_version = true,
                    None if cfg.force_load => r.force_taint = true,
                    None => r.problems.push(Problem::NoVersions),
                }
            }
            if !p.namespace.is_empty()
                && !namespace_allowed(&v.name, &p.namespace, &imports)
                && !cfg.allow_missing_ns
            {
                r.problems.push(Problem::NamespaceNotImported {
                    symbol: need.name.into(),
                    namespace: p.namespace.clone(),
                    provider: p.owner.clone(),
                });
            }
            r
        };
        let mut chosen = None;
        for p in cands {
            let r = judge(p);
            let ok = r.problems.is_empty();
            if ok || chosen.is_none() {
                chosen = Some(r);
            }
            if ok {
                break;
            }
        }
        let Some(r) = chosen else { continue };
        v.problems.extend(r.problems);
        if r.no_version {
            v.notes.push(Note::NoSymbolVersion {
                symbol: need.name.into(),
            });
        }
        if r.force_taint {
            force_taint(&mut v, need.name);
        }
    }
    if !crcs && cfg.modversions {
        v.unverified
            .push("symbol CRCs (the kernel's CRCs are not known)".into());
    }
    v.problems.dedup();
    v
}

/// `verify_namespace_is_imported` plus 6.16's `module:` namespaces.
fn namespace_allowed(module: &str, ns: &str, imports: &[&str]) -> bool {
    if imports.contains(&ns) {
        return true;
    }
    let Some(list) = ns.strip_prefix("module:") else {
        return false;
    };
    let norm = |s: &str| s.replace('-', "_");
    list.split(',').any(|pat| match pat.strip_suffix('*') {
        Some(prefix) => norm(module).starts_with(&norm(prefix)),
        None => norm(pat) == norm(module),
    })
}

fn needs(m: &Module) -> Vec<Need<'_>> {
    let mut out: Vec<Need> = m
        .undefined
        .iter()
        .map(|u| Need {
            name: &u.name,
            weak: u.weak,
        })
        .collect();
    if let Versions::Present { entries, .. } = &m.versions {
        let undefined: HashSet<&str> = m.undefined.iter().map(|u| u.name.as_str()).collect();
        for e in entries {
            if !undefined.contains(e.name.as_str()) {
                out.push(Need {
                    name: &e.name,
                    weak: false,
                });
            }
        }
    }
    out
}

/// Check a set of modules together: each one's exports serve the others, and a module is
/// compatible only if every symbol it takes from the set has a compatible provider there
/// (resolved to a fixed point; with several exporters of a name, the first compatible one
/// the module can take it from).
pub fn check_set(mods: &[(PathBuf, Module)], target: &Target) -> Vec<Verdict> {
    check_set_with_sigs(mods, target, &[])
}

/// [`check_set`] with each module's signature check computed from its bytes (`sigs[i]` for
/// `mods[i]`; missing or `None` entries are judged from the trailer alone).
pub fn check_set_with_sigs(
    mods: &[(PathBuf, Module)],
    target: &Target,
    sigs: &[Option<SigCheck>],
) -> Vec<Verdict> {
    // every member exporting each symbol, in set order, with what it exports
    let mut exporters: HashMap<&str, Vec<(usize, KernelSymbol)>> = HashMap::default();
    for (i, (_, m)) in mods.iter().enumerate() {
        for e in &m.exports {
            let v = exporters.entry(e.name.as_str()).or_default();
            if v.last().is_some_and(|(j, _)| *j == i) {
                continue; // the kernel takes a module's first export of a name
            }
            v.push((
                i,
                KernelSymbol {
                    name: e.name.clone(),
                    crc: e.crc,
                    kind: e.kind,
                    namespace: e.namespace.clone(),
                    owner: m.name.clone(),
                },
            ));
        }
    }
    // the symbols each module needs that other members export, and those members
    let uses: Vec<Vec<&str>> = mods
        .iter()
        .enumerate()
        .map(|(i, (_, m))| {
            needs(m)
                .into_iter()
                .filter(|n| {
                    exporters
                        .get(n.name)
                        .is_some_and(|e| e.iter().any(|(j, _)| *j != i))
                })
                .map(|n| n.name)
                .collect()
        })
        .collect();
    // Greatest fixed point: a module is compatible when every symbol it needs has a
    // provider it can take it from among the compatible members (or the kernel). A symbol
    // is provided by any compatible member that exports it; one whose every exporter in the
    // set is refused is refused with it. Compatibility only shrinks from round to round.
    let mut alive = vec![true; mods.len()];
    let mut verdicts: Vec<Option<Verdict>> = vec![None; mods.len()];
    let mut recheck: Vec<bool> = vec![true; mods.len()];
    // the candidates of each symbol: its compatible exporters; when none is left, all of
    // them (the module is then refused for its provider)
    let candidates = |exp: &[(usize, KernelSymbol)], alive: &[bool]| -> Vec<KernelSymbol> {
        let live: Vec<KernelSymbol> = exp
            .iter()
            .filter(|(j, _)| alive[*j])
            .map(|(_, k)| k.clone())
            .collect();
        if live.is_empty() {
            exp.iter().map(|(_, k)| k.clone()).collect()
        } else {
            live
        }
    };
    let mut extra: HashMap<&str, Vec<KernelSymbol>> = exporters
        .iter()
        .map(|(&name, exp)| (name, candidates(exp, &alive)))
        .collect();
    loop {
        let mut died = Vec::new();
        for i in 0..mods.len() {
            if !alive[i] || !recheck[i] {
                continue;
            }
            let (p, m) = &mods[i];
            let sig = sigs.get(i).and_then(Option::as_ref);
            let mut v = check_inner(m, Some(p.clone()), target, &extra, sig);
            if v.compatible() {
                let bad: Vec<Problem> = uses[i]
                    .iter()
                    .filter_map(|&sym| {
                        let mut others = exporters[sym].iter().filter(|(j, _)| *j != i);
                        let first = others.clone().next()?;
                        others
                            .all(|(j, _)| !alive[*j])
                            .then(|| Problem::ProviderIncompatible {
                                symbol: sym.to_string(),
                                provider: mods[first.0].1.name.clone(),
                            })
                    })
                    .collect();
                v.problems.extend(bad);
            }
            if !v.compatible() {
                died.push(i);
            }
            verdicts[i] = Some(v);
        }
        if died.is_empty() {
            break;
        }
        let mut changed: HashSet<&str> = HashSet::default();
        for &j in &died {
            alive[j] = false;
            changed.extend(mods[j].1.exports.iter().map(|e| e.name.as_str()));
        }
        for &name in &changed {
            extra.insert(name, candidates(&exporters[name], &alive));
        }
        // only the modules that take a symbol a newly refused member exports
        for (i, r) in recheck.iter_mut().enumerate() {
            *r = alive[i] && uses[i].iter().any(|sym| changed.contains(sym));
        }
    }
    verdicts
        .into_iter()
        .map(|v| v.expect("every module is checked"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::abi::KernelAbi;
    use crate::module::{ExportKind, Trailer, Undefined, VersionEntry};

    const CRC_ITU_T: &[u8] =
        include_bytes!("../testdata/lib/modules/6.1.0-56-amd64/kernel/lib/crc-itu-t.ko");

    /// The real module, and a kernel that provides exactly what it needs, with its CRCs.
    fn fixture() -> (Module, Target) {
        let m = Module::parse_image(CRC_ITU_T).unwrap();
        let Versions::Present { entries, .. } = &m.versions else {
            panic!()
        };
        let syms = entries
            .iter()
            .map(|e| KernelSymbol {
                name: e.name.clone(),
                crc: Some(e.crc as u32),
                kind: ExportKind::Plain,
                namespace: String::new(),
                owner: "vmlinux".into(),
            })
            .collect();
        let t = Target {
            release: Some("6.1.0-56-amd64".into()),
            abi: KernelAbi::from_symbols("test", syms),
            vermagic: m.vermagic().map(<[u8]>::to_vec),
            this_module_size: m.this_module_size,
            arch: Some(m.elf),
            crcs_known: true,
            ..Target::default()
        };
        (m, t)
    }

    fn problems(m: &Module, t: &Target) -> Vec<Problem> {
        check(m, None, t, &HashMap::default()).problems
    }

    #[test]
    fn the_fixture_loads() {
        let (m, t) = fixture();
        let v = check(&m, None, &t, &HashMap::default());
        assert!(v.compatible(), "{:?}", v.problems);
        assert!(v.unverified.iter().any(|u| u.starts_with("signature")));
    }

    #[test]
    fn struct_module_size_fails_from_6_4_and_is_a_note_before() {
        let (m, mut t) = fixture();
        t.this_module_size = Some(m.this_module_size.unwrap() + 64);
        let v = check(&m, None, &t, &HashMap::default());
        assert!(v.compatible());
        assert!(
            matches!(v.notes.last(), Some(Note::StructModuleSize { .. }))
                || v.notes
                    .iter()
                    .any(|n| matches!(n, Note::StructModuleSize { .. }))
        );
        t.release = Some("6.5.0-1-amd64".into());
        let p = problems(&m, &t);
        assert!(matches!(p[0], Problem::StructModuleSize { .. }), "{p:?}");
        assert_eq!(p[0].errno(), "ENOEXEC");
    }

    #[test]
    fn signature_enforcement_refuses_unsigned_and_malformed_always() {
        let (mut m, mut t) = fixture();
        m.signature = Trailer::Unsigned;
        let v = check(&m, None, &t, &HashMap::default());
        assert!(v.problems.is_empty(), "only a taint without enforcement");
        assert!(
            v.notes
                .iter()
                .any(|n| matches!(n, Note::Taint { flag: 'E', .. })),
            "{:?}",
            v.notes
        );
        t.config.sig_enforce = true;
        assert_eq!(problems(&m, &t), vec![Problem::Unsigned]);
        assert_eq!(Problem::Unsigned.errno(), "EKEYREJECTED");
        t.config.sig_enforce = false;
        m.signature = Trailer::Malformed("x".into());
        assert_eq!(problems(&m, &t)[0].errno(), "EBADMSG");
        // lockdown refuses what is forgiven without enforcement, with EPERM
        m.signature = Trailer::Unsigned;
        t.sig
            .enforcement
            .lock_down(crate::sig::state::Lockdown::Integrity, "test");
        let p = problems(&m, &t);
        assert_eq!(p[0].errno(), "EPERM");
        assert_eq!(
            p[0].kernel_message("x"),
            "Lockdown: modprobe: unsigned module loading is restricted; see man kernel_lockdown.7"
        );
        // a kernel without CONFIG_MODULE_SIG looks at nothing
        t.sig.config.module_sig = false;
        let v = check(&m, None, &t, &HashMap::default());
        assert!(
            v.problems.is_empty()
                && v.notes
                    .iter()
                    .all(|n| !matches!(n, Note::Taint { flag: 'E', .. }))
        );
    }

    #[test]
    fn architecture_mismatch() {
        let (m, mut t) = fixture();
        let mut arch = m.elf;
        arch.machine = 183; // aarch64
        t.arch = Some(arch);
        assert!(matches!(
            problems(&m, &t)[0],
            Problem::WrongArchitecture { .. }
        ));
    }

    #[test]
    fn weak_symbols_may_be_missing_but_are_versioned_when_present() {
        let (mut m, mut t) = fixture();
        m.undefined.push(Undefined {
            name: "maybe_there".into(),
            weak: true,
        });
        assert!(
            problems(&m, &t).is_empty(),
            "an unresolved weak symbol is fine"
        );
        if let Versions::Present { entries, .. } = &mut m.versions {
            entries.push(VersionEntry {
                name: "maybe_there".into(),
                crc: 1,
            });
        }
        t.abi.merge(
            "x",
            vec![KernelSymbol {
                name: "maybe_there".into(),
                crc: Some(2),
                kind: ExportKind::Plain,
                namespace: String::new(),
                owner: "vmlinux".into(),
            }],
        );
        let p = problems(&m, &t);
        assert!(
            matches!(&p[0], Problem::CrcMismatch { weak: true, symbol, .. } if symbol == "maybe_there"),
            "{p:?}"
        );
    }

    #[test]
    fn unversioned_symbol_is_accepted_with_a_note_and_crcs_unknown_skip_checks() {
        let (mut m, mut t) = fixture();
        let Versions::Present { entries, .. } = &mut m.versions else {
            panic!()
        };
        let dropped = entries
            .iter()
            .position(|e| e.name != "module_layout")
            .unwrap();
        let name = entries.remove(dropped).name;
        let v = check(&m, None, &t, &HashMap::default());
        assert!(v.compatible());
        assert!(v.notes.contains(&Note::NoSymbolVersion { symbol: name }));
        // a kernel whose CRCs are unknown (kallsyms without kcore): no CRC verdicts at all
        for s in t.abi.symbols.values_mut() {
            s.crc = s.crc.map(|c| c ^ 1);
        }
        assert!(!problems(&m, &t).is_empty());
        t.crcs_known = false;
        let v = check(&m, None, &t, &HashMap::default());
        assert!(v.compatible());
        assert!(v.unverified.iter().any(|u| u.starts_with("symbol CRCs")));
    }

    #[test]
    fn a_module_without_versions_taints_f_once() {
        let (mut m, mut t) = fixture();
        // the module imports two more of the kernel's symbols, then loses its __versions
        for name in ["kabi_one", "kabi_two"] {
            m.undefined.push(Undefined {
                name: name.into(),
                weak: false,
            });
            t.abi.merge(
                "x",
                vec![KernelSymbol {
                    name: name.into(),
                    crc: Some(7),
                    kind: ExportKind::Plain,
                    namespace: String::new(),
                    owner: "vmlinux".into(),
                }],
            );
        }
        m.versions = Versions::Absent;
        let v = check(&m, None, &t, &HashMap::default());
        assert!(v.compatible(), "force-load accepts it: {:?}", v.problems);
        let f: Vec<&Note> = v
            .notes
            .iter()
            .filter(|n| matches!(n, Note::Taint { flag: 'F', .. }))
            .collect();
        // try_to_force_load() prints only while the kernel is not tainted F yet: the first
        // reason, module_layout (check_modstruct_version comes first)
        assert_eq!(
            f,
            [&Note::Taint {
                flag: 'F',
                message: "crc_itu_t: module_layout: kernel tainted.".into()
            }],
            "{:?}",
            v.notes
        );
        // without MODULE_FORCE_LOAD: refused once, ENOEXEC
        let mut t = t;
        t.config.force_load = false;
        assert_eq!(problems(&m, &t), vec![Problem::NoVersions]);
    }

    #[test]
    fn extended_versions_take_precedence_over_classic() {
        let (mut m, t) = fixture();
        let Versions::Present { entries, .. } = &m.versions else {
            panic!()
        };
        let mut ext = entries.clone();
        ext[0].crc ^= 0xffff; // only the extended table disagrees
        let sym = ext[0].name.clone();
        m.ext_versions = ExtVersions::Present { entries: ext };
        let p = problems(&m, &t);
        assert!(p.iter().any(|p| p.symbol() == Some(sym.as_str())), "{p:?}");
    }

    #[test]
    fn vermagic_comparison_ignores_release_only_with_crcs() {
        let a = b"6.1.0-47-cloud-amd64 SMP preempt mod_unload modversions ";
        let b = b"6.1.0-56-cloud-amd64 SMP preempt mod_unload modversions ";
        assert!(same_magic(a, b, true));
        assert!(!same_magic(a, b, false));
        assert!(!same_magic(
            a,
            b"6.1.0-56-rt-amd64 SMP preempt_rt mod_unload modversions ",
            true
        ));
    }

    #[test]
    fn module_namespaces() {
        assert!(namespace_allowed("foo", "NS", &["NS"]));
        assert!(!namespace_allowed("foo", "NS", &[]));
        assert!(namespace_allowed("kvm-amd", "module:kvm,kvm_amd", &[]));
        assert!(namespace_allowed("snd_hda_x", "module:snd-hda*", &[]));
        assert!(!namespace_allowed("other", "module:kvm", &[]));
    }
}
