//! The verdict the kernel's loader would give a module on a target kernel, with every
//! reason, in the loader's order (spec §2.2, §2.3, §2.4, §1.7).
//!
//! `check_set` resolves a set of modules to a fixed point, as RHEL's weak-modules does: a
//! symbol provided by another module of the set counts only if that module is itself
//! compatible; when several modules of the set export it (two builds of one module), any
//! compatible one provides it.

use crate::errno::Errno;
use crate::kernel::abi::KernelSymbol;
use crate::kernel::target::{LoaderConfig, Target};
use crate::module::{ExtVersions, Module, Versions};
use crate::sig::state::Lockdown;
use crate::sig::{Outcome as SigOutcome, SigCheck, Soft};
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use serde::{Serialize, Serializer};
use std::fmt;
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
///
/// Serialized (inside a verdict) as an object with a closed `kind` (kebab-case), the variant's
/// fields, its `errno` and its `message` (see [`ProblemJson`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Problem {
    /// The signature trailer or its PKCS#7 message is malformed, or the signature does not
    /// verify with the trusted key it names: refused whether signatures are enforced or not,
    /// with the verifier's errno (EBADMSG, EKEYREJECTED, EINVAL, ...).
    BadSignature {
        /// Serialized once, as every problem's `errno` ([`ProblemJson`]).
        #[serde(skip)]
        errno: Errno,
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

/// What `try_to_force_load()` would say with CONFIG_MODULE_FORCE_LOAD; without it the kernel
/// refuses silently, and kabi says why in the kernel's words plus this.
const SILENT: &str = "refused without CONFIG_MODULE_FORCE_LOAD; the kernel logs nothing";

impl Problem {
    /// The errno `init_module`/`finit_module` returns for this reason (`kernel/module/main.c`,
    /// `version.c`, `signing.c`).
    pub fn errno(&self) -> Errno {
        match self {
            // the verifier's errno (EBADMSG, EKEYREJECTED, EINVAL, ENOMEM, ...)
            Problem::BadSignature { errno, .. } => *errno,
            // module_sig_check(): the soft errors become -EKEYREJECTED under enforcement
            Problem::Unsigned
            | Problem::UnsupportedCrypto { .. }
            | Problem::UnavailableKey { .. } => Errno::EKEYREJECTED,
            // security_locked_down(LOCKDOWN_MODULE_SIGNATURE)
            Problem::Lockdown { .. } => Errno::EPERM,
            // elf_validity_cache_copy(), check_modstruct_version(), check_modinfo(),
            // find_module_sections(): the whole load fails with -ENOEXEC
            Problem::WrongArchitecture { .. }
            | Problem::StructModuleSize { .. }
            | Problem::ModuleLayout { .. }
            | Problem::NoVersions
            | Problem::Vermagic { .. }
            | Problem::NoVermagic
            | Problem::ExportsWithoutVersions => Errno::ENOEXEC,
            // resolve_symbol(): check_version() or the namespace refused: ERR_PTR(-EINVAL)
            Problem::CrcMismatch { .. } | Problem::NamespaceNotImported { .. } => Errno::EINVAL,
            // resolve_symbol(): not found (GPL-only symbols are invisible to non-GPL modules)
            Problem::MissingSymbol { .. }
            | Problem::GplOnly { .. }
            | Problem::ProviderIncompatible { .. } => Errno::ENOENT,
        }
    }

    /// What the kernel prints for it (dmesg), one entry a line, for the module called `m`
    /// (`None`: without the module-name prefix). Empty when the kernel refuses silently
    /// (see [`Problem::logged`]).
    fn log_lines(&self, m: Option<&str>) -> Vec<String> {
        let pre = m.map(|m| format!("{m}: ")).unwrap_or_default();
        let unknown = |symbol: &str, errno: Errno| {
            format!("{pre}Unknown symbol {symbol} (err -{})", errno.code())
        };
        match self {
            Problem::BadSignature { log, .. } => log.clone(),
            Problem::Unsigned => vec!["Loading of unsigned module is rejected".into()],
            Problem::UnsupportedCrypto { log, .. } => {
                let mut l = log.clone();
                l.push("Loading of module with unsupported crypto is rejected".into());
                l
            }
            Problem::UnavailableKey { .. } => {
                vec!["Loading of module with unavailable key is rejected".into()]
            }
            Problem::Lockdown { reason, comm } => vec![format!(
                "Lockdown: {comm}: {} loading is restricted; see man kernel_lockdown.7",
                lockdown_words(reason)
            )],
            Problem::WrongArchitecture { module, .. } => {
                vec![format!("Invalid architecture in ELF header: {module}")]
            }
            Problem::StructModuleSize { .. } => vec![format!(
                "{}.gnu.linkonce.this_module section size must match the kernel's built struct module size at run time",
                m.map(|m| format!("module {m}: ")).unwrap_or_default()
            )],
            Problem::ModuleLayout { .. } => {
                vec![format!(
                    "{pre}disagrees about version of symbol module_layout"
                )]
            }
            Problem::NoVersions | Problem::NoVermagic | Problem::ExportsWithoutVersions => {
                Vec::new()
            }
            Problem::Vermagic { module, kernel } => {
                vec![format!(
                    "{pre}version magic '{module}' should be '{kernel}'"
                )]
            }
            Problem::CrcMismatch { symbol, .. } => vec![
                format!("{pre}disagrees about version of symbol {symbol}"),
                unknown(symbol, Errno::EINVAL),
            ],
            Problem::MissingSymbol { symbol }
            | Problem::GplOnly { symbol, .. }
            | Problem::ProviderIncompatible { symbol, .. } => {
                vec![unknown(symbol, Errno::ENOENT)]
            }
            Problem::NamespaceNotImported {
                symbol, namespace, ..
            } => vec![
                format!(
                    "{pre}module uses symbol ({symbol}) from namespace {namespace}, but does not import it."
                ),
                unknown(symbol, Errno::EINVAL),
            ],
        }
    }

    /// Whether the kernel logs anything when it refuses for this reason.
    pub fn logged(&self) -> bool {
        !self.log_lines(None).is_empty()
    }

    /// The refusal in the kernel's words, for the module called `m` (`None`: without the
    /// module-name prefix), one entry a line; never empty. What the kernel logs; where it
    /// refuses silently, the words its own code uses for the reason (`try_to_force_load()`'s
    /// "bad vermagic", "no versions for exported symbols", `check_version()`'s
    /// "module_layout"), saying that the kernel logs nothing.
    fn word_lines(&self, m: Option<&str>) -> Vec<String> {
        let pre = m.map(|m| format!("{m}: ")).unwrap_or_default();
        match self {
            Problem::NoVersions => vec![format!(
                "{pre}module_layout: no symbol versions (__versions) ({SILENT})"
            )],
            Problem::NoVermagic => vec![format!("{pre}bad vermagic: none ({SILENT})")],
            Problem::ExportsWithoutVersions => {
                vec![format!("{pre}no versions for exported symbols ({SILENT})")]
            }
            Problem::BadSignature { log, reason, .. } if log.is_empty() => {
                vec![format!("{pre}{reason} (the kernel logs nothing)")]
            }
            _ => self.log_lines(m),
        }
    }

    /// The refusal in the kernel's words for the module called `m`, lines joined by `\n`;
    /// never empty (see [`Problem::logged`] for whether the kernel really prints it).
    pub fn kernel_message(&self, m: &str) -> String {
        self.word_lines(Some(m)).join("\n")
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

    /// The one rendering of a problem of the module called `m`: `ERRNO: the kernel's words
    /// (what kabi adds)`, lines joined by `\n`. `Display` is the same without the module name.
    pub fn describe(&self, m: &str) -> String {
        Described(self, Some(m)).to_string()
    }

    /// [`Problem::describe`] without the errno: the kernel's words, then what kabi adds in
    /// parentheses.
    pub fn message(&self, m: &str) -> String {
        self.message_of(Some(m))
    }

    fn message_of(&self, m: Option<&str>) -> String {
        let words = self.word_lines(m).join("\n");
        match self.explain() {
            Some(e) => format!("{words} ({e})"),
            None => words,
        }
    }

    /// [`Problem::describe`] on one line (the kernel's lines joined by `; `).
    pub fn describe_line(&self, m: &str) -> String {
        self.describe(m).replace('\n', "; ")
    }
}

/// `lockdown_reasons[LOCKDOWN_MODULE_SIGNATURE]` is "unsigned module loading" whatever the
/// signature's defect.
fn lockdown_words(_reason: &str) -> &'static str {
    "unsigned module"
}

/// A problem with the name of its module, rendered.
struct Described<'a>(&'a Problem, Option<&'a str>);

impl fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Described(p, m) = self;
        write!(f, "{}: {}", p.errno(), p.message_of(*m))
    }
}

impl fmt::Display for Problem {
    /// `ERRNO: the kernel's words (what kabi adds)`, without the module name (use
    /// [`Problem::describe`] to name it).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Described(self, None).fmt(f)
    }
}

/// A problem as a verdict's JSON carries it: its `kind` and fields, the `errno` and the
/// `message` ([`Problem::describe`] of the module).
#[derive(Serialize)]
pub struct ProblemJson<'a> {
    #[serde(flatten)]
    pub problem: &'a Problem,
    pub errno: Errno,
    pub message: String,
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

    /// What went wrong, for people, beyond the kernel's words (signature and lockdown
    /// details).
    pub fn explain(&self) -> Option<String> {
        match self {
            Problem::BadSignature { reason, log, .. } if !log.is_empty() => Some(reason.clone()),
            Problem::UnsupportedCrypto { reason, .. } => Some(reason.clone()),
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

impl Note {
    /// The one rendering of a note on the module called `m`, in the kernel's words where it
    /// has some.
    pub fn describe(&self, m: &str) -> String {
        match self {
            Note::Taint { flag, message } => format!("taint {flag}: {message}"),
            Note::NoSymbolVersion { symbol } => format!("{m}: no symbol version for {symbol}"),
            Note::StructModuleSize { module, kernel } => format!(
                "struct module size {module} differs from the kernel's {kernel} (not checked before 6.4)"
            ),
        }
    }
}

/// The loader's verdict on one module.
///
/// JSON: `name`, `path`, `loads` (no problem), `errno` (what the load returns: the first
/// problem's, or null), `problems` (each a [`ProblemJson`]), `notes`, `unverified` and, when
/// computed, `signature`.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub name: String,
    pub path: Option<PathBuf>,
    /// Empty: the module loads.
    pub problems: Vec<Problem>,
    pub notes: Vec<Note>,
    /// Checks that could not be made for lack of information (e.g. no CRCs known).
    pub unverified: Vec<String>,
    /// The signature check as the kernel's `module_sig_check()` would make it.
    pub signature: Option<crate::sig::SigCheck>,
}

impl Verdict {
    pub fn compatible(&self) -> bool {
        self.problems.is_empty()
    }
    /// The errno of the first reason: what the load would return.
    pub fn errno(&self) -> Option<Errno> {
        self.problems.first().map(Problem::errno)
    }
}

impl Serialize for Verdict {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Out<'a> {
            name: &'a str,
            path: &'a Option<PathBuf>,
            loads: bool,
            errno: Option<Errno>,
            problems: Vec<ProblemJson<'a>>,
            notes: &'a [Note],
            unverified: &'a [String],
            #[serde(skip_serializing_if = "Option::is_none")]
            signature: &'a Option<crate::sig::SigCheck>,
        }
        Out {
            name: &self.name,
            path: &self.path,
            loads: self.compatible(),
            errno: self.errno(),
            problems: self
                .problems
                .iter()
                .map(|p| ProblemJson {
                    problem: p,
                    errno: p.errno(),
                    message: p.describe(&self.name),
                })
                .collect(),
            notes: &self.notes,
            unverified: &self.unverified,
            signature: &self.signature,
        }
        .serialize(s)
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

/// The names a verdict on `m` looks up in the kernel's ABI (its undefined symbols, the
/// symbols it recorded versions of, `module_layout`), sorted: a target holding these
/// symbols of a kernel's gives the verdict the whole kernel would.
pub fn wanted(m: &Module) -> Vec<&str> {
    let mut v: Vec<&str> = m.undefined.iter().map(|u| u.name.as_str()).collect();
    if let crate::module::Versions::Present { entries, .. } = &m.versions {
        v.extend(entries.iter().map(|e| e.name.as_str()));
    }
    v.push("module_layout");
    v.sort_unstable();
    v.dedup();
    v
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
            errno: *errno,
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

/// The loader's checks of one module, in its order (`load_module`): the first problem is the
/// one the kernel reports.
fn check_inner(
    m: &Module,
    path: Option<PathBuf>,
    target: &Target,
    extra: &dyn Providers,
    sig: Option<&SigCheck>,
) -> Verdict {
    let mut v = Verdict {
        name: m.name.clone(),
        path,
        problems: Vec::new(),
        notes: Vec::new(),
        unverified: Vec::new(),
        signature: None,
    };
    let l = Loading::new(m, target);

    // 1. signature
    let sc = match sig {
        Some(sc) => sc.clone(),
        None => crate::sig::verdict::check_trailer(&m.signature, &target.sig),
    };
    signature_step(&mut v, &sc, target);
    v.signature = Some(sc);
    // 2. ELF sanity against the kernel's architecture and struct module
    elf_step(&mut v, m, target);
    // 3. module_layout (check_modstruct_version)
    module_layout_step(&mut v, &l);
    // 4. vermagic
    vermagic_step(&mut v, m, target);
    // 5. taints that do not fail
    taint_step(&mut v, &l);
    // 6. every needed symbol (simplify_symbols)
    symbols_step(&mut v, &l, extra);

    v.problems.dedup();
    // the module has no symbol versions at all: one reason, whichever symbol finds it out
    let mut seen = false;
    v.problems
        .retain(|p| !matches!(p, Problem::NoVersions) || !std::mem::replace(&mut seen, true));
    v
}

/// What the loader knows of one module while it checks it on one kernel.
struct Loading<'a> {
    m: &'a Module,
    target: &'a Target,
    cfg: LoaderConfig,
    /// Symbol CRCs are compared: modversions, and the kernel's CRCs known.
    crcs: bool,
    /// The CRCs the module recorded ([`recorded_crcs`]).
    recorded: Option<HashMap<&'a str, u64>>,
    /// The module's license is GPL-compatible.
    gpl: bool,
    /// The namespaces the module imports (`import_ns=`).
    imports: Vec<&'a str>,
}

impl<'a> Loading<'a> {
    fn new(m: &'a Module, target: &'a Target) -> Self {
        let cfg = target.config;
        Loading {
            m,
            target,
            cfg,
            crcs: cfg.modversions && target.crcs_known,
            recorded: recorded_crcs(m),
            gpl: is_gpl_compatible(m),
            imports: m
                .modinfo
                .iter()
                .filter(|e| e.key == b"import_ns")
                .map(|e| std::str::from_utf8(&e.value).unwrap_or(""))
                .collect(),
        }
    }

    /// The CRC the module recorded for `name`: `None` when it has no table the kernel uses,
    /// `Some(None)` when the table has no entry of that name.
    fn recorded_crc(&self, name: &str) -> Option<Option<u64>> {
        self.recorded.as_ref().map(|r| r.get(name).copied())
    }

    /// The module's license as the kernel's messages name it.
    fn license(&self) -> String {
        self.m
            .modinfo_first("license")
            .map(lossy)
            .unwrap_or_else(|| "unspecified".into())
    }

    /// Taking `need` from the provider `p` (`resolve_symbol`): GPL-only, then its CRC
    /// (`check_version`), then its namespace.
    fn take(&self, need: &Need, p: &KernelSymbol) -> Resolution {
        let mut r = Resolution::default();
        if !self.gpl && p.kind.is_gpl_only() {
            r.problems.push(Problem::GplOnly {
                symbol: need.name.into(),
                provider: p.owner.clone(),
                license: self.license(),
            });
            return r;
        }
        if self.crcs
            && let Some(kc) = p.crc
        {
            match self.recorded_crc(need.name) {
                Some(Some(mc)) if mc != kc as u64 => r.problems.push(Problem::CrcMismatch {
                    symbol: need.name.into(),
                    module_crc: mc,
                    kernel_crc: kc,
                    provider: p.owner.clone(),
                    weak: need.weak,
                }),
                Some(Some(_)) => {}
                Some(None) => r.no_version = true,
                None if self.cfg.force_load => r.force_taint = true,
                None => r.problems.push(Problem::NoVersions),
            }
        }
        if !p.namespace.is_empty()
            && !namespace_allowed(&self.m.name, &p.namespace, &self.imports)
            && !self.cfg.allow_missing_ns
        {
            r.problems.push(Problem::NamespaceNotImported {
                symbol: need.name.into(),
                namespace: p.namespace.clone(),
                provider: p.owner.clone(),
            });
        }
        r
    }
}

/// ELF class, byte order and machine against the kernel's, and the size of `struct module`
/// (refused from 6.4 on, noted before).
fn elf_step(v: &mut Verdict, m: &Module, target: &Target) {
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
}

/// `check_modstruct_version`: the module's `module_layout` CRC against the kernel's.
fn module_layout_step(v: &mut Verdict, l: &Loading) {
    if !l.cfg.modversions {
        return;
    }
    match (
        l.recorded_crc("module_layout"),
        l.target.abi.get("module_layout"),
    ) {
        (None, _) => {
            if l.cfg.force_load {
                force_taint(v, "module_layout");
            } else {
                v.problems.push(Problem::NoVersions);
            }
        }
        (Some(Some(mc)), Some(k)) if l.crcs => match k.crc {
            Some(kc) if mc != kc as u64 => v.problems.push(Problem::ModuleLayout {
                module_crc: mc,
                kernel_crc: kc,
            }),
            _ => {}
        },
        (Some(_), None) if l.crcs => v
            .unverified
            .push("module_layout (the kernel's ABI does not list it)".into()),
        _ => {}
    }
}

/// `check_modinfo`'s vermagic (`same_magic`).
fn vermagic_step(v: &mut Verdict, m: &Module, target: &Target) {
    let cfg = target.config;
    match (m.vermagic(), &target.vermagic) {
        (None, _) => {
            if cfg.force_load {
                force_taint(v, "bad vermagic");
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
}

/// The taints of `check_modinfo` (out-of-tree, license, staging), and exports without
/// versions (refused unless the kernel can force the load).
fn taint_step(v: &mut Verdict, l: &Loading) {
    let m = l.m;
    if m.modinfo_first("intree").is_none() {
        v.notes.push(Note::Taint {
            flag: 'O',
            message: format!("{}: loading out-of-tree module taints kernel.", v.name),
        });
    }
    if !l.gpl {
        v.notes.push(Note::Taint {
            flag: 'P',
            message: format!(
                "{}: module license '{}' taints kernel.",
                v.name,
                l.license()
            ),
        });
    }
    if m.modinfo_first("staging").is_some() {
        v.notes.push(Note::Taint { flag: 'C', message: format!("{}: module is from the staging directory, the quality is unknown, you have been warned.", v.name) });
    }
    if l.cfg.modversions && !m.exports.is_empty() && m.exports.iter().all(|e| e.crc.is_none()) {
        if l.cfg.force_load {
            force_taint(v, "no versions for exported symbols");
        } else {
            v.problems.push(Problem::ExportsWithoutVersions);
        }
    }
}

/// `simplify_symbols`: every needed symbol from the first provider the module can take it
/// from (the set's members before the kernel), else the first provider's reasons.
fn symbols_step(v: &mut Verdict, l: &Loading, extra: &dyn Providers) {
    for need in needs(l.m) {
        if need.name == "module_layout" {
            continue; // checked by module_layout_step
        }
        let cands = providers_of(need.name, extra, l.target);
        if cands.is_empty() {
            if !need.weak {
                v.problems.push(Problem::MissingSymbol {
                    symbol: need.name.into(),
                });
            }
            continue;
        }
        let Some(r) = first_takable(cands, |p| l.take(&need, p)) else {
            continue;
        };
        v.problems.extend(r.problems);
        if r.no_version {
            v.notes.push(Note::NoSymbolVersion {
                symbol: need.name.into(),
            });
        }
        if r.force_taint {
            force_taint(v, need.name);
        }
    }
    if !l.crcs && l.cfg.modversions {
        v.unverified
            .push("symbol CRCs (the kernel's CRCs are not known)".into());
    }
}

/// The candidate providers of a symbol: the set's members when any exports it, else the
/// kernel's own export (none: the symbol is missing).
fn providers_of<'a>(
    name: &str,
    extra: &'a dyn Providers,
    target: &'a Target,
) -> &'a [KernelSymbol] {
    let cands = extra.candidates(name);
    if !cands.is_empty() {
        return cands;
    }
    target
        .abi
        .get(name)
        .map(std::slice::from_ref)
        .unwrap_or(&[])
}

/// The resolution from the first candidate that gives no problem, else the first
/// candidate's (`None` without candidates).
fn first_takable(
    cands: &[KernelSymbol],
    judge: impl Fn(&KernelSymbol) -> Resolution,
) -> Option<Resolution> {
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
    chosen
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
    let exporters = set_exporters(mods);
    let set = ModuleSet {
        mods,
        target,
        sigs,
        uses: set_uses(mods, &exporters),
        exporters,
    };
    // Greatest fixed point: a module is compatible when every symbol it needs has a
    // provider it can take it from among the compatible members (or the kernel). A symbol
    // is provided by any compatible member that exports it; one whose every exporter in the
    // set is refused is refused with it. Compatibility only shrinks from round to round.
    let mut alive = vec![true; mods.len()];
    let mut verdicts: Vec<Option<Verdict>> = vec![None; mods.len()];
    let mut recheck: Vec<bool> = vec![true; mods.len()];
    let mut extra: HashMap<&str, Vec<KernelSymbol>> = set
        .exporters
        .iter()
        .map(|(&name, exp)| (name, set_candidates(exp, &alive)))
        .collect();
    loop {
        let mut died = Vec::new();
        for i in 0..mods.len() {
            if !alive[i] || !recheck[i] {
                continue;
            }
            let v = set.member_verdict(i, &extra, &alive);
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
            extra.insert(name, set_candidates(&set.exporters[name], &alive));
        }
        // only the modules that take a symbol a newly refused member exports
        for (i, r) in recheck.iter_mut().enumerate() {
            *r = alive[i] && set.uses[i].iter().any(|sym| changed.contains(sym));
        }
    }
    verdicts
        .into_iter()
        .map(|v| v.expect("every module is checked"))
        .collect()
}

/// Every member of the set exporting each symbol, in set order, with what it exports (a
/// member's first export of a name: the one the kernel takes).
fn set_exporters(mods: &[(PathBuf, Module)]) -> HashMap<&str, Vec<(usize, KernelSymbol)>> {
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
    exporters
}

/// The symbols each member needs that other members export.
fn set_uses<'a>(
    mods: &'a [(PathBuf, Module)],
    exporters: &HashMap<&str, Vec<(usize, KernelSymbol)>>,
) -> Vec<Vec<&'a str>> {
    mods.iter()
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
        .collect()
}

/// The candidates of a symbol among its exporters in the set: the compatible ones; when
/// none is left, all of them (the module is then refused for its provider).
fn set_candidates(exp: &[(usize, KernelSymbol)], alive: &[bool]) -> Vec<KernelSymbol> {
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
}

/// A set of modules checked together, with what each exports to and takes from the others.
struct ModuleSet<'a> {
    mods: &'a [(PathBuf, Module)],
    target: &'a Target,
    sigs: &'a [Option<SigCheck>],
    exporters: HashMap<&'a str, Vec<(usize, KernelSymbol)>>,
    uses: Vec<Vec<&'a str>>,
}

impl ModuleSet<'_> {
    /// Member `i`'s verdict in this round: the loader's, with the set's current candidates
    /// before the kernel's symbols; if it loads, a symbol it takes from the set whose every
    /// other exporter is refused refuses it too.
    fn member_verdict(
        &self,
        i: usize,
        extra: &HashMap<&str, Vec<KernelSymbol>>,
        alive: &[bool],
    ) -> Verdict {
        let (p, m) = &self.mods[i];
        let sig = self.sigs.get(i).and_then(Option::as_ref);
        let mut v = check_inner(m, Some(p.clone()), self.target, extra, sig);
        if v.compatible() {
            let bad: Vec<Problem> = self.uses[i]
                .iter()
                .filter_map(|&sym| {
                    let mut others = self.exporters[sym].iter().filter(|(j, _)| *j != i);
                    let first = others.clone().next()?;
                    others
                        .all(|(j, _)| !alive[*j])
                        .then(|| Problem::ProviderIncompatible {
                            symbol: sym.to_string(),
                            provider: self.mods[first.0].1.name.clone(),
                        })
                })
                .collect();
            v.problems.extend(bad);
        }
        v
    }
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

    /// One of every problem, as the loader would report them.
    pub(crate) fn every_problem() -> Vec<Problem> {
        let s = |x: &str| x.to_string();
        vec![
            Problem::BadSignature {
                errno: Errno::EBADMSG,
                reason: s("the signature trailer is cut short"),
                log: vec![],
            },
            Problem::BadSignature {
                errno: Errno::EKEYREJECTED,
                reason: s("does not verify"),
                log: vec![s("PKEY: signature verification failed")],
            },
            Problem::Unsigned,
            Problem::UnsupportedCrypto {
                reason: s("sm2"),
                log: vec![],
            },
            Problem::UnavailableKey { signer: s("k") },
            Problem::Lockdown {
                reason: "unsigned module",
                comm: s("modprobe"),
            },
            Problem::WrongArchitecture {
                module: s("ELF32"),
                kernel: s("ELF64"),
            },
            Problem::StructModuleSize {
                module: 1,
                kernel: 2,
            },
            Problem::ModuleLayout {
                module_crc: 1,
                kernel_crc: 2,
            },
            Problem::NoVersions,
            Problem::Vermagic {
                module: s("a"),
                kernel: s("b"),
            },
            Problem::NoVermagic,
            Problem::ExportsWithoutVersions,
            Problem::CrcMismatch {
                symbol: s("sym"),
                module_crc: 1,
                kernel_crc: 2,
                provider: s("vmlinux"),
                weak: false,
            },
            Problem::MissingSymbol { symbol: s("sym") },
            Problem::GplOnly {
                symbol: s("sym"),
                provider: s("vmlinux"),
                license: s("Proprietary"),
            },
            Problem::NamespaceNotImported {
                symbol: s("sym"),
                namespace: s("NS"),
                provider: s("vmlinux"),
            },
            Problem::ProviderIncompatible {
                symbol: s("sym"),
                provider: s("other"),
            },
        ]
    }

    /// Every problem is rendered in words (never as a Rust name, never empty), with its errno
    /// first; the silent refusals say that the kernel logs nothing.
    #[test]
    fn every_problem_has_words_and_an_errno() {
        for p in every_problem() {
            let d = p.describe("mod_x");
            let debug = format!("{p:?}");
            let variant = debug.split([' ', '{', '(']).next().unwrap();
            // "Lockdown:" is the kernel's own word
            assert!(
                variant == "Lockdown" || !d.contains(variant),
                "{d} names {variant}"
            );
            assert!(d.starts_with(&format!("{}: ", p.errno())), "{d}");
            assert!(!p.kernel_message("mod_x").is_empty(), "{debug}");
            assert!(!p.message("mod_x").is_empty());
            // Display is the same rendering without the module's name
            let shown = p.to_string();
            assert!(shown.starts_with(&format!("{}: ", p.errno())), "{shown}");
            assert!(!shown.contains("mod_x"));
            assert_eq!(p.logged(), !d.contains("the kernel logs nothing"), "{d}");
            // the kernel's "(err -N)" agrees with the errno returned
            if d.contains("Unknown symbol") {
                assert!(d.contains(&format!("(err -{})", p.errno().code())), "{d}");
            }
            assert!(!p.describe_line("mod_x").contains('\n'));
        }
        let words = |p: Problem| p.describe("m");
        assert_eq!(
            words(Problem::NoVermagic),
            "ENOEXEC: m: bad vermagic: none (refused without CONFIG_MODULE_FORCE_LOAD; the kernel logs nothing)"
        );
        assert!(
            words(Problem::ExportsWithoutVersions)
                .starts_with("ENOEXEC: m: no versions for exported symbols (")
        );
        assert!(words(Problem::NoVersions).starts_with("ENOEXEC: m: module_layout: "));
        assert_eq!(
            words(Problem::ModuleLayout {
                module_crc: 1,
                kernel_crc: 2
            }),
            "ENOEXEC: m: disagrees about version of symbol module_layout"
        );
    }

    /// The errno of each refusal is the kernel's: -ENOEXEC for what fails the whole load,
    /// -EINVAL for a symbol refused by check_version() or its namespace, -ENOENT for a symbol
    /// not found.
    #[test]
    fn errno_per_problem() {
        let got: Vec<(String, Errno)> = every_problem()
            .iter()
            .map(|p| {
                let j = serde_json::to_value(p).unwrap();
                (j["kind"].as_str().unwrap().to_string(), p.errno())
            })
            .collect();
        use Errno::*;
        let want = [
            ("bad-signature", EBADMSG),
            ("bad-signature", EKEYREJECTED),
            ("unsigned", EKEYREJECTED),
            ("unsupported-crypto", EKEYREJECTED),
            ("unavailable-key", EKEYREJECTED),
            ("lockdown", EPERM),
            ("wrong-architecture", ENOEXEC),
            ("struct-module-size", ENOEXEC),
            ("module-layout", ENOEXEC),
            ("no-versions", ENOEXEC),
            ("vermagic", ENOEXEC),
            ("no-vermagic", ENOEXEC),
            ("exports-without-versions", ENOEXEC),
            ("crc-mismatch", EINVAL),
            ("missing-symbol", ENOENT),
            ("gpl-only", ENOENT),
            ("namespace-not-imported", EINVAL),
            ("provider-incompatible", ENOENT),
        ];
        let want: Vec<(String, Errno)> = want.iter().map(|(k, e)| (k.to_string(), *e)).collect();
        assert_eq!(got, want);
    }

    /// A verdict's JSON: `loads`, the load's `errno`, and each problem with its kind, fields,
    /// errno and message, every key once.
    #[test]
    fn verdict_json_has_the_outcome_and_errnos() {
        let (m, t) = fixture();
        let ok = check(&m, None, &t, &HashMap::default());
        let j = serde_json::to_value(&ok).unwrap();
        assert_eq!(j["loads"], true);
        assert_eq!(j["errno"], serde_json::Value::Null);
        let mut bad = ok.clone();
        bad.problems = every_problem();
        let j = serde_json::to_value(&bad).unwrap();
        assert_eq!(j["loads"], false);
        assert_eq!(j["errno"], "EBADMSG");
        for (p, jp) in bad.problems.iter().zip(j["problems"].as_array().unwrap()) {
            assert_eq!(jp["errno"], p.errno().as_str());
            assert_eq!(jp["message"], p.describe(&bad.name));
        }
        // serde_json keeps the last of duplicate keys: the text has each key once
        let text = serde_json::to_string(
            &bad.problems[0..1]
                .iter()
                .map(|p| ProblemJson {
                    problem: p,
                    errno: p.errno(),
                    message: String::new(),
                })
                .collect::<Vec<_>>(),
        )
        .unwrap();
        assert_eq!(text.matches("\"errno\"").count(), 1, "{text}");
    }

    /// Every problem (each kind, with and without its optional fields) and every note is
    /// described by the verdict schema of docs/schemas, which refuses undescribed fields: a
    /// new variant or field fails here until the schema describes it.
    #[test]
    fn every_problem_is_described_by_the_schema() {
        let (m, t) = fixture();
        let mut v = check(&m, None, &t, &HashMap::default());
        v.problems = every_problem();
        v.notes = vec![
            Note::Taint {
                flag: 'O',
                message: "m: loading out-of-tree module taints kernel.".into(),
            },
            Note::NoSymbolVersion { symbol: "s".into() },
            Note::StructModuleSize {
                module: 1,
                kernel: 2,
            },
        ];
        let schema = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/schemas/check.schema.json#/$defs/verdict"
        );
        let mut schemas = boon::Schemas::new();
        let i = boon::Compiler::new()
            .compile(schema, &mut schemas)
            .unwrap_or_else(|e| panic!("{e:#}"));
        let j = serde_json::to_value(&v).unwrap();
        if let Err(e) = schemas.validate(&j, i) {
            panic!("{e:#}");
        }
        let mut extra = j.clone();
        extra["problems"][9]["undescribed"] = true.into();
        assert!(schemas.validate(&extra, i).is_err());
    }
}
