//! `kabi check`: will these modules load on that kernel, and if not, why (in the kernel's
//! words).

use crate::check::{Note, Verdict, check_set};
use crate::kernel::source::{Depth, KernelSpec, resolve, vmlinuz_file};
use crate::kernel::target::Target;
use crate::module::Module;
use std::io::Write;
use std::path::PathBuf;

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
    /// Filesystem root the kernel is installed under
    #[arg(short = 'b', long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// Show every reason, note and unverified check
    #[arg(short, long)]
    pub verbose: bool,
    /// Print the verdicts as JSON
    #[arg(long)]
    pub json: bool,
    /// Module files, directories to check every module below, or names and aliases of the
    /// kernel's modules (looked up as kabi info does)
    #[arg(required = true, value_name = "MODULE|DIR|NAME")]
    pub modules: Vec<PathBuf>,
}

/// Exit codes of `kabi check`.
pub mod exit {
    /// Every module would load.
    pub const COMPATIBLE: i32 = 0;
    /// At least one module would be refused.
    pub const INCOMPATIBLE: i32 = 1;
    /// Bad usage or unreadable input (a module or the kernel's ABI).
    pub const ERROR: i32 = 2;
}

fn target(args: &CheckArgs) -> Result<Target, crate::Error> {
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
    s
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
                let first = p.kernel_message(&v.name);
                let first = first.lines().next().unwrap_or("").to_string();
                let more = v.problems.len() - 1;
                let tail = if more > 0 {
                    format!(" (+{more} more)")
                } else {
                    String::new()
                };
                let msg = if first.is_empty() {
                    format!("{p:?}")
                } else {
                    first
                };
                ("FAIL", format!("{} {msg}{tail}", p.errno()))
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
                let msg = p.kernel_message(&v.name);
                let msg = if msg.is_empty() {
                    format!("{p:?}")
                } else {
                    msg.replace('\n', "; ")
                };
                s.push_str(&format!("      {:<12} {msg}{detail}\n", p.errno()));
            }
            for n in &v.notes {
                let msg = match n {
                    Note::Taint { flag, message } => format!("taint {flag}: {message}"),
                    Note::NoSymbolVersion { symbol } => {
                        format!("{}: no symbol version for {symbol}", v.name)
                    }
                    Note::StructModuleSize { module, kernel } => format!(
                        "struct module size {module} differs from the kernel's {kernel} (not checked before 6.4)"
                    ),
                };
                s.push_str(&format!("      note         {msg}\n"));
            }
            for u in &v.unverified {
                s.push_str(&format!("      unverified   {u}\n"));
            }
        }
    }
    s
}

pub fn run(args: &CheckArgs) -> i32 {
    let target = match target(args) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("kabi check: ERROR: {e}");
            return exit::ERROR;
        }
    };
    let files = match files_of(args, &target) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("kabi check: ERROR: {e}");
            return exit::ERROR;
        }
    };
    if files.is_empty() {
        if args.modules.iter().all(|a| is_name(a)) {
            return exit::COMPATIBLE; // only built-in modules were named
        }
        eprintln!("kabi check: ERROR: no module files in {:?}", args.modules);
        return exit::ERROR;
    }
    let (mods, bad_input) = load_modules(&files, "check");
    let verdicts = check_set(&mods, &target);
    let out = if args.json {
        serde_json::to_string_pretty(&serde_json::json!({
            "kernel": { "release": target.release, "sources": target.abi.sources, "config": target.config },
            "verdicts": verdicts,
        }))
        .unwrap_or_default()
            + "\n"
    } else {
        let mut t = render_table(&verdicts, args.verbose);
        t.push_str(&summary(&target, &verdicts, files.len() - mods.len()));
        t.push('\n');
        t
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

/// For tests and other commands: parse and check modules against a target.
pub fn check_paths(paths: &[PathBuf], target: &Target) -> Result<Vec<Verdict>, crate::Error> {
    let mods = collect(paths)
        .into_iter()
        .map(|p| Module::open(&p).map(|m| (p, m)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(check_set(&mods, target))
}
