//! `kabi check`: will these modules load on that kernel, and if not, why (in the kernel's
//! words).

use crate::check::{Verdict, check_set_with_sigs};
use crate::kernel::source::{Depth, KernelSpec, resolve, vmlinuz_file};
use crate::kernel::target::Target;
use crate::module::Module;
use crate::sig::state::Lockdown;
use crate::sig::trust::TrustedKeys;
use crate::sig::{SigCheck, SigPolicy};
use crate::stablelist::{Stablelist, SupportFinding};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// Check against the installed kernel KVER (its symvers, modules and config under --root)
    #[arg(short = 'k', long, value_name = "KVER", group = "source")]
    pub kernel: Option<String>,
    /// Check against a Module.symvers file (plain, .gz, .xz, .zst)
    #[arg(long, value_name = "FILE", group = "source")]
    pub symvers: Option<PathBuf>,
    /// Check against a kernel image (x86 bzImage): vmlinux's exports and CRCs from the image
    /// itself; with --kernel, the image overrides that kernel's symvers for vmlinux symbols
    #[arg(long, value_name = "FILE", conflicts_with = "symvers")]
    pub vmlinuz: Option<PathBuf>,
    /// Check against the running kernel: /proc/kallsyms, and /proc/kcore for CRCs when
    /// readable (root); otherwise CRCs are reported as not verifiable
    #[arg(long, conflicts_with_all = ["symvers", "vmlinuz", "kernel"])]
    pub running: bool,
    /// Filesystem root the kernel is installed under (-b DIR, the old spelling, is accepted too)
    #[arg(long, short_alias = 'b', value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// Show every reason, note and unverified check
    #[arg(short, long)]
    pub verbose: bool,
    /// Print the verdicts as JSON
    #[arg(long)]
    pub json: bool,
    /// Trust the certificates of FILE (PEM, any number; or DER) for module signatures, as if
    /// they were in the kernel's secondary keyring (repeatable)
    #[arg(long, value_name = "FILE")]
    pub trusted_cert: Vec<PathBuf>,
    /// Check as if signatures were enforced (module.sig_enforce=1)
    #[arg(long)]
    pub sig_enforce: bool,
    /// Check as if the kernel were locked down at this level (at integrity and above a
    /// module without a valid signature is refused with EPERM)
    #[arg(long, value_name = "MODE", value_parser = ["none", "integrity", "confidentiality"])]
    pub lockdown: Option<String>,
    /// Do not read the kernel's trusted keys (image, /proc/keys, UEFI db and MOK): check
    /// signatures for form and enforcement only
    #[arg(long)]
    pub no_keys: bool,
    /// List the kernel's trusted keys and where each comes from, then the verdicts
    #[arg(long)]
    pub list_keys: bool,
    /// Report, apart from the verdict, every kernel symbol a module uses that is not on this
    /// kABI stablelist (RHEL's kabi_stablelist_<arch>, or the directory holding it, e.g.
    /// /lib/modules/kabi-current), as Red Hat's ksc does
    #[arg(long, value_name = "FILE|DIR")]
    pub stablelist: Option<PathBuf>,
    /// Module files, directories to check every module below, or names and aliases of the
    /// kernel's modules (looked up as kabi info does)
    #[arg(required = true, value_name = "MODULE|DIR|NAME")]
    pub modules: Vec<PathBuf>,
}

/// Exit codes of `kabi check`, by their meaning here (the table is [`super::exit`]).
pub mod exit {
    /// Bad usage or unreadable input (a module or the kernel's ABI).
    pub use crate::cli::exit::ERROR;
    /// At least one module would be refused.
    pub use crate::cli::exit::FAILED as INCOMPATIBLE;
    /// Every module would load.
    pub use crate::cli::exit::OK as COMPATIBLE;
}

fn target(args: &CheckArgs) -> Result<Target, crate::Error> {
    let mut t = target_abi(args)?;
    let root = crate::root::Root::open(&args.root)?;
    let mut policy = if args.running {
        SigPolicy::running(&root)?
    } else if args.symvers.is_some() || (args.vmlinuz.is_some() && args.kernel.is_none()) {
        // a symvers file or an image alone: no installed kernel to read more of
        let mut p = SigPolicy::with_config(t.sig.config.clone());
        if let Some(img) = &args.vmlinuz {
            p.sources.vmlinuz = Some(crate::sig::trust::Loc::host(img)?);
        }
        p
    } else {
        let kver = crate::kernel::source::release_or_running(&root, args.kernel.as_deref())?;
        let mut p = SigPolicy::installed(&root, &kver)?;
        if let Some(img) = &args.vmlinuz {
            p.sources.vmlinuz = Some(crate::sig::trust::Loc::host(img)?);
        }
        p
    };
    if args.no_keys {
        policy.sources = Default::default();
    }
    policy.trust_files(&args.trusted_cert)?;
    if args.sig_enforce {
        policy.force_enforce("--sig-enforce");
    }
    if let Some(l) = args.lockdown.as_deref().and_then(Lockdown::from_word) {
        policy.enforcement.lockdown = l;
        policy.enforcement.lockdown_by = vec![format!("--lockdown {}", l.name())];
    }
    t.sig = policy;
    Ok(t)
}

fn target_abi(args: &CheckArgs) -> Result<Target, crate::Error> {
    let root = crate::root::Root::open(&args.root)?;
    if args.running {
        return resolve(&root, &KernelSpec::Running, Depth::Full);
    }
    if let Some(p) = &args.symvers {
        return resolve(&root, &KernelSpec::Symvers(p.clone()), Depth::Full);
    }
    if let Some(img) = &args.vmlinuz {
        let from_image = vmlinuz_file(img)?;
        let Some(kver) = &args.kernel else {
            return Ok(from_image);
        };
        let mut t = resolve(&root, &KernelSpec::Installed(kver.clone()), Depth::Full)?;
        let syms: Vec<_> = from_image.abi.symbols.into_values().collect();
        t.abi.merge(img.display().to_string(), syms);
        return Ok(t);
    }
    let kver = crate::kernel::source::release_or_running(&root, args.kernel.as_deref())?;
    resolve(&root, &KernelSpec::Installed(kver), Depth::Full)
}

/// Expand directories into the modules below them.
pub fn collect(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            out.extend(crate::kernel::tree::module_files(p));
        } else {
            out.push(p.clone());
        }
    }
    out
}

/// Is `arg` a module name or alias rather than a path: no such file, no `/`, no module
/// suffix (kmod's modinfo decides the same way).
fn is_name(arg: &std::path::Path) -> bool {
    let Some(s) = arg.to_str() else { return false };
    !s.is_empty()
        && !s.contains('/')
        && crate::module::strip_module_ext(s).is_none()
        && std::fs::symlink_metadata(arg).is_err()
}

/// The arguments as module files: directories expanded, names and aliases looked up in the
/// kernel's module directory under the root (built-in modules are said and left out).
/// An argument that is neither a file nor a module of the kernel is an error.
fn files_of(args: &CheckArgs, target: &Target) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    let mut dir = None;
    for a in &args.modules {
        if !is_name(a) {
            out.extend(collect(std::slice::from_ref(a)));
            continue;
        }
        let dir = dir.get_or_insert_with(|| {
            let root = args.root.to_str().filter(|r| *r != "/");
            let kver = target
                .release
                .clone()
                .or_else(|| args.kernel.clone())
                .unwrap_or_else(super::running_release);
            super::module_dir(root, Some(&kver))
        });
        let name = a.to_string_lossy();
        let found = super::info::resolve(&name, dir, false).map_err(|_| {
            format!(
                "{name}: no such file, and no module or alias of that name in {}",
                dir.dir
            )
        })?;
        for f in found {
            match f {
                crate::tree::lookup::Found::File { path, .. } => out.push(path),
                crate::tree::lookup::Found::Builtin { name } => {
                    eprintln!("kabi check: {name} is built into the kernel: it always loads");
                }
            }
        }
    }
    Ok(out)
}

/// The last line of the text report.
pub fn summary(target: &Target, verdicts: &[Verdict], unreadable: usize) -> String {
    let refused = verdicts.iter().filter(|v| !v.compatible()).count();
    let mut s = format!(
        "kabi check: kernel {}: {} modules, {refused} would be refused",
        target.release.as_deref().unwrap_or("(release unknown)"),
        verdicts.len()
    );
    if unreadable > 0 {
        s.push_str(&format!(", {unreadable} could not be read"));
    }
    let (n, checks) = incomplete(verdicts);
    if n > 0 {
        s.push_str(&format!(
            "; incomplete: {n} accepted without every check ({}; -v says why)",
            checks.join(", ")
        ));
    }
    s
}

/// How many modules are accepted with checks kabi could not make, and which checks (their
/// short names, sorted): such an `ok` is not the kernel's verdict yet.
pub fn incomplete(verdicts: &[Verdict]) -> (usize, Vec<String>) {
    let open: Vec<&Verdict> = verdicts
        .iter()
        .filter(|v| v.compatible() && !v.unverified.is_empty())
        .collect();
    let checks: std::collections::BTreeSet<String> = open
        .iter()
        .flat_map(|v| &v.unverified)
        .map(|u| {
            // "vermagic (the kernel's vermagic is not known)", "signature: ...": the name
            let end = [u.find(" ("), u.find(':')]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(u.len());
            u[..end].to_string()
        })
        .collect();
    (open.len(), checks.into_iter().collect())
}

/// Parse `files` in parallel; each unreadable one is reported (`kabi CMD: ERROR: ...`).
/// Returns the good modules and whether any was bad.
pub fn load_modules(files: &[PathBuf], cmd: &str) -> (Vec<(PathBuf, Module)>, bool) {
    let mut mods = Vec::with_capacity(files.len());
    let mut bad = false;
    for (res, f) in crate::kernel::tree::parse_all(files).into_iter().zip(files) {
        match res {
            Ok(m) => mods.push((f.clone(), m)),
            Err(e) => {
                eprintln!("kabi {cmd}: ERROR: {e}");
                bad = true;
            }
        }
    }
    (mods, bad)
}

/// Modules parsed with their signature checks, and the files that could not be parsed.
pub struct Loaded {
    pub mods: Vec<(PathBuf, Module)>,
    pub sigs: Vec<Option<SigCheck>>,
    /// Files whose ELF image does not parse but whose signature check could be made (the
    /// kernel checks the signature first): path, error, check.
    pub unparsed: Vec<(PathBuf, String, SigCheck)>,
    /// Some file could not be read at all.
    pub bad: bool,
}

/// Parse `files` in parallel and compute each one's signature check from the same bytes
/// (the module body is hashed only when a trusted key must verify it).
pub fn load_modules_with_sigs(files: &[PathBuf], cmd: &str, policy: &SigPolicy) -> Loaded {
    use rayon::prelude::*;
    type One = Result<(Result<Module, crate::Error>, SigCheck), crate::Error>;
    let results: Vec<One> = files
        .par_iter()
        .map(|f| {
            let data = crate::sig::trust::read_regular(f, crate::compress::DEFAULT_LIMIT)?;
            let image = crate::module::decompress(&data).map_err(|e| crate::Error::parse(f, e))?;
            let sc = crate::sig::verdict::check_image(&image, policy);
            let m = Module::parse_file(&image, f)
                .map(|mut m| {
                    m.compression = crate::compress::Compression::detect(&data)
                        .unwrap_or(crate::compress::Compression::None);
                    m
                })
                .map_err(|e| crate::Error::parse(f, e));
            Ok((m, sc))
        })
        .collect();
    let mut out = Loaded {
        mods: Vec::with_capacity(files.len()),
        sigs: Vec::with_capacity(files.len()),
        unparsed: Vec::new(),
        bad: false,
    };
    for (res, f) in results.into_iter().zip(files) {
        match res {
            Ok((Ok(m), sc)) => {
                out.mods.push((f.clone(), m));
                out.sigs.push(Some(sc));
            }
            Ok((Err(e), sc)) => out.unparsed.push((f.clone(), e.to_string(), sc)),
            Err(e) => {
                eprintln!("kabi {cmd}: ERROR: {e}");
                out.bad = true;
            }
        }
    }
    out
}

/// One line per module; with `verbose`, every reason below it.
pub fn render_table(verdicts: &[Verdict], verbose: bool) -> String {
    let width = verdicts
        .iter()
        .map(|v| v.name.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let mut s = String::new();
    for v in verdicts {
        let (word, why) = match v.problems.first() {
            None => ("ok", String::new()),
            Some(p) => {
                let msg = p.kernel_message(&v.name);
                let first = msg.lines().next().unwrap_or("");
                let more = v.problems.len() - 1;
                let tail = if more > 0 {
                    format!(" (+{more} more)")
                } else {
                    String::new()
                };
                ("FAIL", format!("{} {first}{tail}", p.errno()))
            }
        };
        s.push_str(format!("{word:<4}  {:<width$}  {why}", v.name).trim_end());
        s.push('\n');
        if verbose {
            for p in &v.problems {
                let detail = match p {
                    crate::check::Problem::CrcMismatch {
                        module_crc,
                        kernel_crc,
                        provider,
                        ..
                    } => {
                        format!(" [module 0x{module_crc:08x}, {provider} 0x{kernel_crc:08x}]")
                    }
                    crate::check::Problem::ModuleLayout {
                        module_crc,
                        kernel_crc,
                    } => {
                        format!(" [module 0x{module_crc:08x}, kernel 0x{kernel_crc:08x}]")
                    }
                    crate::check::Problem::GplOnly {
                        provider, license, ..
                    } => {
                        format!(" [GPL-only in {provider}; license '{license}']")
                    }
                    crate::check::Problem::ProviderIncompatible { provider, .. } => {
                        format!(" [provided by incompatible module {provider}]")
                    }
                    _ => String::new(),
                };
                // the errno has its own column
                let msg = p.message(&v.name).replace('\n', "; ");
                s.push_str(&format!("      {:<12} {msg}{detail}\n", p.errno()));
            }
            for n in &v.notes {
                s.push_str(&format!("      note         {}\n", n.describe(&v.name)));
            }
            if let Some(crate::sig::SigCheck {
                outcome: crate::sig::Outcome::Verified { key, keyring },
                ..
            }) = &v.signature
            {
                s.push_str(&format!(
                    "      signature    verified with '{key}' ({})\n",
                    keyring.name()
                ));
            }
            for u in &v.unverified {
                s.push_str(&format!("      unverified   {u}\n"));
            }
        }
    }
    s
}

/// The support findings, one line per module with symbols off the list.
pub fn render_support(findings: &[SupportFinding], verbose: bool) -> String {
    let width = findings
        .iter()
        .map(|f| f.name.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let mut s = String::new();
    for f in findings {
        if f.supported() && !verbose {
            continue;
        }
        let list = f
            .stablelist
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if f.supported() {
            s.push_str(&format!(
                "support  {:<width$}  all {} kernel symbols on {list}\n",
                f.name, f.kernel_symbols
            ));
            continue;
        }
        let syms: Vec<&str> = f.not_on_list.iter().map(|o| o.symbol.as_str()).collect();
        s.push_str(&format!(
            "support  {:<width$}  {} of {} kernel symbols not on {list}: {}\n",
            f.name,
            syms.len(),
            f.kernel_symbols,
            syms.join(" ")
        ));
    }
    s
}

fn support_findings(
    args: &CheckArgs,
    mods: &[(PathBuf, Module)],
    target: &Target,
) -> Result<Vec<SupportFinding>, crate::Error> {
    let Some(path) = &args.stablelist else {
        return Ok(Vec::new());
    };
    let arch = mods
        .first()
        .and_then(|(_, m)| crate::stablelist::arch_name(m.elf.machine));
    let list = Stablelist::read(path, arch)?;
    let set: rustc_hash::FxHashSet<&str> = mods
        .iter()
        .flat_map(|(_, m)| m.exports.iter().map(|e| e.name.as_str()))
        .collect();
    let provider = |s: &str| target.abi.get(s).map(|k| k.owner.clone());
    Ok(mods
        .iter()
        .map(|(p, m)| crate::stablelist::check(m, Some(p.clone()), &list, &set, &provider))
        .collect())
}

/// For the running kernel: the taint flags of modules already loaded
/// (`/sys/module/NAME/taint`), by name.
fn loaded_taints(root: &Path, verdicts: &[Verdict]) -> Vec<(String, String)> {
    verdicts
        .iter()
        .filter_map(|v| {
            let p = root.join("sys/module").join(&v.name).join("taint");
            let t = std::fs::read_to_string(p).ok()?;
            root.join("sys/module")
                .join(&v.name)
                .join("initstate")
                .exists()
                .then(|| (v.name.clone(), t.trim().to_string()))
        })
        .collect()
}

pub fn run(args: &CheckArgs) -> i32 {
    let fail = |e: &dyn std::fmt::Display| {
        eprintln!("kabi check: ERROR: {e}");
        exit::ERROR
    };
    let target = match target(args) {
        Ok(t) => t,
        Err(e) => return fail(&e),
    };
    let files = match files_of(args, &target) {
        Ok(f) => f,
        Err(e) => return fail(&e),
    };
    if files.is_empty() {
        if args.modules.iter().all(|a| is_name(a)) {
            return exit::COMPATIBLE; // only built-in modules were named
        }
        return fail(&format_args!("no module files in {:?}", args.modules));
    }
    let (mods, verdicts, bad_input) = check_files(&files, &target);
    let support = match support_findings(args, &mods, &target) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let loaded = if args.running {
        loaded_taints(&args.root, &verdicts)
    } else {
        Vec::new()
    };
    let keys = if args.list_keys {
        Some(target.sig.keys())
    } else {
        target.sig.keys_loaded()
    };
    let report = Report {
        args,
        target: &target,
        verdicts: &verdicts,
        support: &support,
        loaded: &loaded,
        keys,
        unreadable: files.len().saturating_sub(verdicts.len()),
    };
    let out = if args.json {
        report.json()
    } else {
        report.text()
    };
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
    if bad_input {
        exit::ERROR
    } else if verdicts.iter().all(Verdict::compatible) {
        exit::COMPATIBLE
    } else {
        exit::INCOMPATIBLE
    }
}

/// Parse the files and check them as one set. A file whose ELF image cannot be read gets a
/// verdict from its signature alone when that already refuses it; otherwise it is reported
/// (`kabi check: ERROR: ...`). Returns the parsed modules, the verdicts and whether some
/// input was bad.
fn check_files(files: &[PathBuf], target: &Target) -> (Vec<(PathBuf, Module)>, Vec<Verdict>, bool) {
    let Loaded {
        mods,
        sigs,
        unparsed,
        mut bad,
    } = load_modules_with_sigs(files, "check", &target.sig);
    let mut verdicts = check_set_with_sigs(&mods, target, &sigs);
    for (path, err, sc) in &unparsed {
        let name = crate::tree::lookup::module_name_of(&path.to_string_lossy())
            .unwrap_or_else(|| path.display().to_string());
        match crate::check::signature_only(&name, Some(path.clone()), sc, target, err) {
            Some(v) => verdicts.push(v),
            None => {
                eprintln!("kabi check: ERROR: {err}");
                bad = true;
            }
        }
    }
    (mods, verdicts, bad)
}

/// Everything `kabi check` reports, rendered as text or JSON.
struct Report<'a> {
    args: &'a CheckArgs,
    target: &'a Target,
    verdicts: &'a [Verdict],
    support: &'a [SupportFinding],
    /// Taint flags of the checked modules already loaded in the running kernel.
    loaded: &'a [(String, String)],
    /// The kernel's trusted keys, when listed or read for a signature check.
    keys: Option<&'a TrustedKeys>,
    /// Files that could not be read.
    unreadable: usize,
}

impl Report<'_> {
    fn json(&self) -> String {
        let target = self.target;
        let (_, open_checks) = incomplete(self.verdicts);
        let mut doc = serde_json::json!({
            "kernel": {
                "release": target.release,
                "sources": target.abi.sources,
                "config": target.config,
                "signatures": {
                    "config": target.sig.config,
                    "enforcement": target.sig.enforcement,
                    "key_sources": target.sig.sources,
                    "keys": self.keys,
                },
            },
            "verdicts": self.verdicts,
            "complete": open_checks.is_empty(),
            "unverified": open_checks,
        });
        if self.args.stablelist.is_some() {
            doc["support"] = serde_json::json!(self.support);
        }
        if self.args.running {
            doc["loaded"] = self
                .loaded
                .iter()
                .map(|(n, t)| serde_json::json!({"name": n, "taint": t}))
                .collect();
        }
        crate::report::json_document(&doc)
    }

    fn text(&self) -> String {
        let mut s = String::new();
        if self.args.list_keys
            && let Some(k) = self.keys
        {
            s.push_str(&render_keys(self.target, k));
        }
        s.push_str(&render_table(self.verdicts, self.args.verbose));
        for (n, t) in self.loaded {
            s.push_str(&format!(
                "loaded   {n} is loaded in the running kernel (taint: {})\n",
                if t.is_empty() { "none" } else { t }
            ));
        }
        s.push_str(&render_support(self.support, self.args.verbose));
        s.push_str(&summary(self.target, self.verdicts, self.unreadable));
        s.push('\n');
        s
    }
}

/// `--list-keys`: where the kernel's trusted keys come from, each key, and the signature
/// policy.
fn render_keys(target: &Target, k: &TrustedKeys) -> String {
    let mut s = String::new();
    for src in &k.sources {
        s.push_str(&format!("keys     {} from {}", src.keys, src.source));
        for p in &src.problems {
            s.push_str(&format!("; {p}"));
        }
        s.push('\n');
    }
    for line in crate::sig::trust::describe_keys(k) {
        s.push_str(&format!("key      {line}\n"));
    }
    let e = &target.sig.enforcement;
    let by = |v: &[String]| {
        if v.is_empty() {
            String::new()
        } else {
            format!(" ({})", v.join(", "))
        }
    };
    s.push_str(&format!(
        "policy   signatures {}{}, lockdown {}{}\n",
        if e.enforced || target.config.sig_enforce {
            "enforced"
        } else {
            "not enforced"
        },
        by(&e.enforced_by),
        e.lockdown.name(),
        by(&e.lockdown_by),
    ));
    s
}
