//! The one place that knows where a kernel's ABI comes from: [`resolve`] builds the
//! [`Target`] a command checks against, for check, weak-modules, verify, load and diff-abi
//! alike.
//!
//! An installed kernel `K` (inside a [`Root`]) has these sources, in [`SOURCES`] order; a
//! later source overrides an earlier one symbol by symbol (the files the loader will see win
//! over a symvers file that may be stale, the running kernel's memory over everything):
//!
//! | source | when |
//! |---|---|
//! | symvers file ([`symvers::candidates`]: `/boot/symvers-K*`, `/lib/modules/K/symvers*`, the headers' `Module.symvers`) | always, if there is one |
//! | the kernel image `/boot/vmlinuz-K` (vmlinux's exports and CRCs) | when there is no symvers file |
//! | the kernel's own modules (`/lib/modules/K/kernel`) | with [`Depth::Full`], or when there is neither a symvers file nor an image |
//! | the running kernel (`/proc/kallsyms`, CRCs from `/proc/kcore` as root) | when `K` is the running kernel of this root and there is neither a symvers file nor an image (an initramfs) |
//!
//! Vermagic, `struct module` size and architecture come from one of the kernel's own
//! modules; the loader's switches from `/boot/config-K`.

use super::abi::{KernelAbi, KernelSymbol};
use super::target::Target;
use super::{symvers, tree};
use crate::error::Error;
use crate::module::{Detail, Module};
use crate::root::Root;
use std::path::{Path, PathBuf};

/// How much of an installed kernel to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// The symvers file (or image) and one module: what weak-modules and verify need, fast.
    Symvers,
    /// Also the exports of every module of the kernel's own tree, which override the
    /// symvers file (it may be stale): what `kabi check -k` reads.
    Full,
}

/// One kind of ABI source, in the order they are merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Symvers,
    Image,
    ModuleTree,
    Running,
}

/// The sources of an installed kernel, lowest precedence first.
pub const SOURCES: &[SourceKind] = &[
    SourceKind::Symvers,
    SourceKind::Image,
    SourceKind::ModuleTree,
    SourceKind::Running,
];

/// What a kernel argument names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelSpec {
    /// A kernel release installed in the root.
    Installed(String),
    /// The kernel running this root (its release from `/proc`).
    Running,
    /// A Module.symvers file (named from outside the root).
    Symvers(PathBuf),
    /// A kernel image file (named from outside the root).
    Vmlinuz(PathBuf),
    /// A module directory (`.../lib/modules/<kver>`) or an unpacked root holding one kernel.
    Tree(PathBuf),
}

impl KernelSpec {
    /// Guess from an argument: an existing file is a kernel image or a symvers file; an
    /// existing directory a module tree or root; anything else a release installed under
    /// the root.
    pub fn guess(arg: &str) -> KernelSpec {
        let p = Path::new(arg);
        if p.is_file() && is_bzimage(p) {
            KernelSpec::Vmlinuz(p.to_path_buf())
        } else if p.is_file() {
            KernelSpec::Symvers(p.to_path_buf())
        } else if p.is_dir() {
            KernelSpec::Tree(p.to_path_buf())
        } else {
            KernelSpec::Installed(arg.to_string())
        }
    }
}

/// The kernel `spec` names, as its loader sees it.
pub fn resolve(root: &Root, spec: &KernelSpec, depth: Depth) -> Result<Target, Error> {
    match spec {
        KernelSpec::Installed(k) => installed_kept(root, k, depth, &|_| true),
        KernelSpec::Running => {
            let k = running_release(root)?;
            installed_or_running(root, &k, depth)
        }
        KernelSpec::Symvers(p) => symvers_file(p),
        KernelSpec::Vmlinuz(p) => vmlinuz_file(p),
        KernelSpec::Tree(d) => tree_dir(d, depth),
    }
}

/// The running kernel's release, as `/proc` inside the root says.
pub fn running_release(root: &Root) -> Result<String, Error> {
    root.read_string("proc/sys/kernel/osrelease", 4096)
        .map(|s| s.trim().to_string())
        .and_then(|s| {
            if s.is_empty() {
                Err(Error::Usage(format!(
                    "{}: empty; is /proc mounted?",
                    root.display("proc/sys/kernel/osrelease").display()
                )))
            } else {
                Ok(s)
            }
        })
}

/// The release named, or the running kernel's: the usual default of `-k KVER`.
pub fn release_or_running(root: &Root, kver: Option<&str>) -> Result<String, Error> {
    match kver {
        Some(k) => Ok(k.to_string()),
        None => running_release(&Root::host()?).or_else(|_| running_release(root)),
    }
}

/// The kernel running this root, from `/proc`: kallsyms over whatever is installed for it.
fn installed_or_running(root: &Root, krel: &str, depth: Depth) -> Result<Target, Error> {
    let mut t = installed_kept(root, krel, depth, &|_| true).unwrap_or_else(|_| Target {
        release: Some(krel.to_string()),
        ..Target::default()
    });
    let (syms, crcs) = running_symbols(root)?;
    t.abi
        .merge(root.display("proc/kallsyms").display().to_string(), syms);
    t.crcs_known = crcs;
    Ok(t)
}

/// The running kernel's exports: kallsyms, with CRCs and namespaces from kcore when it can
/// be read (root). The flag says whether CRCs are known.
pub fn running_symbols(root: &Root) -> Result<(Vec<KernelSymbol>, bool), Error> {
    let text = root.read_string("proc/kallsyms", crate::root::caps::INDEX)?;
    let ks = super::kallsyms::parse(&text)
        .map_err(|e| Error::parse(root.display("proc/kallsyms"), e))?;
    let by_name = ks.exports_by_name();
    let from_memory = root
        .open_file("proc/kcore")
        .ok()
        .and_then(|(f, _)| super::kallsyms::Kcore::from_file(f, &root.display("proc/kcore")).ok())
        .and_then(|k| super::kallsyms::exports_from_memory(&ks, &k).ok());
    Ok(match from_memory {
        Some(mut syms) => {
            // loaded modules' exports are known by name only
            syms.extend(
                by_name
                    .into_iter()
                    .filter(|s| s.owner != super::abi::VMLINUX),
            );
            (syms, true)
        }
        None => (by_name, false),
    })
}

/// The installed kernel `krel`, from the sources of [`SOURCES`]; of its symvers file, only
/// the symbols whose name `keep` accepts are kept (the file is still read and checked whole),
/// for checks that look up only some symbols. The other sources and the rest of the target
/// are whole.
pub fn installed_kept(
    root: &Root,
    krel: &str,
    depth: Depth,
    keep: &dyn Fn(&str) -> bool,
) -> Result<Target, Error> {
    crate::tree::check_release(krel).map_err(Error::Usage)?;
    let dir = Path::new("lib/modules").join(krel);
    let own = dir.join("kernel");
    let mut t = Target {
        release: Some(krel.to_string()),
        crcs_known: true,
        ..Target::default()
    };
    let mut have_symbols = false;
    for kind in SOURCES {
        match kind {
            SourceKind::Symvers => {
                if let Some(p) = symvers::find_in(root, krel) {
                    t.abi.merge(
                        root.display(&p).display().to_string(),
                        symvers::read_in_kept(root, &p, keep)?,
                    );
                    have_symbols = true;
                }
            }
            SourceKind::Image => {
                let image = PathBuf::from(format!("boot/vmlinuz-{krel}"));
                if !have_symbols && root.is_file(&image) {
                    let shown = root.display(&image);
                    let data = root.read(&image, crate::root::caps::IMAGE)?;
                    let v = super::vmlinux::read_vmlinuz_bytes(&data, &shown)?;
                    t.abi.merge(shown.display().to_string(), v.symbols);
                    have_symbols = true;
                }
            }
            SourceKind::ModuleTree => {
                if depth != Depth::Full && have_symbols {
                    learn_from_own_module(root, &own, &mut t);
                    continue;
                }
                let files = module_files(root, &own, usize::MAX);
                let mut syms: Vec<KernelSymbol> = Vec::new();
                for (res, f) in parse_all(root, &files).into_iter().zip(&files) {
                    // a bad module of the kernel's own is skipped: it provides nothing
                    if let Ok(m) = res {
                        t.learn_from_module(&m);
                        syms.extend(tree::exports_of(&m, &owner_of(&dir, f)));
                    }
                }
                if !files.is_empty() {
                    t.abi.merge(root.display(&own).display().to_string(), syms);
                    have_symbols = true;
                }
            }
            SourceKind::Running => {
                // an initramfs: the kernel's own image and symvers are not there, but the
                // kernel itself is running
                let only_modules = t
                    .abi
                    .sources
                    .iter()
                    .all(|s| s.starts_with(&root.display(&own).display().to_string()));
                if only_modules
                    && running_release(root).is_ok_and(|r| r == krel)
                    && let Ok((syms, crcs)) = running_symbols(root)
                {
                    t.abi
                        .merge(root.display("proc/kallsyms").display().to_string(), syms);
                    t.crcs_known = crcs;
                    have_symbols = true;
                }
            }
        }
    }
    t.read_config_in(root, krel);
    if !have_symbols {
        return Err(Error::Usage(format!(
            "kernel {krel}: no symvers file ({}), no boot/vmlinuz-{krel} and no modules in {}",
            symvers::candidates(krel)
                .iter()
                .map(|p| root.display(p).display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            root.display(&own).display()
        )));
    }
    Ok(t)
}

/// Take vermagic, `struct module` size and architecture from the first of the kernel's own
/// modules (below `own`) that parses, walking no further than needed: the first few the walk
/// finds, or, when none of those parses, all of them.
fn learn_from_own_module(root: &Root, own: &Path, t: &mut Target) {
    const FIRST: usize = 4;
    let first = module_files(root, own, FIRST);
    let learn = |files: &[PathBuf], t: &mut Target| {
        files.iter().any(|f| {
            Module::read_in(root, f, Detail::Sections)
                .map(|m| t.learn_from_module(&m))
                .is_ok()
        })
    };
    if !learn(&first, t) && first.len() == FIRST {
        learn(&module_files(root, own, usize::MAX), t);
    }
}

/// The module files below `dir` inside the root, as paths inside it, sorted; the walk stops
/// once `limit` were found.
fn module_files(root: &Root, dir: &Path, limit: usize) -> Vec<PathBuf> {
    struct Ko(usize);
    impl crate::tree::walk::Visitor for Ko {
        fn skip(&self, _: &str) -> bool {
            false
        }
        fn wants(&self, name: &str) -> bool {
            crate::module::strip_module_ext(name).is_some()
        }
        fn enough(&self, found: usize) -> bool {
            found >= self.0
        }
    }
    let mut w = crate::tree::walk::Walk::default();
    let mut seen = Default::default();
    let shown = Path::new("/").join(dir).display().to_string();
    if crate::tree::walk::walk(root, dir, &shown, &Ko(limit), &mut seen, &mut w).is_err() {
        return Vec::new();
    }
    let mut v: Vec<PathBuf> = w
        .files
        .into_iter()
        .map(|f| PathBuf::from(f.display))
        .collect();
    v.sort();
    v
}

fn parse_all(root: &Root, files: &[PathBuf]) -> Vec<Result<Module, Error>> {
    use rayon::prelude::*;
    files
        .par_iter()
        .map(|f| Module::read_in(root, f, Detail::Full))
        .collect()
}

/// The owner column Module.symvers would give a module file below the module directory
/// `dir`: `drivers/cdrom/cdrom` for `/<dir>/kernel/drivers/cdrom/cdrom.ko`.
fn owner_of(dir: &Path, file: &Path) -> String {
    let file = file.strip_prefix("/").unwrap_or(file);
    tree::owner_of(dir, file)
}

/// A target known from a symvers file. When the file sits in a kernel headers tree
/// (`/usr/src/linux-headers-K/Module.symvers`, `/lib/modules/K/build/Module.symvers`), the
/// tree gives the release, the loader's configuration and the vermagic
/// ([`super::headers`]); the struct module size stays unknown.
pub fn symvers_file(path: &Path) -> Result<Target, Error> {
    let mut t = Target {
        abi: KernelAbi::from_symbols(path.display().to_string(), symvers::read(path)?),
        crcs_known: true,
        ..Target::default()
    };
    if let Some(h) = path.parent().and_then(super::headers::Headers::read) {
        t.vermagic = h.vermagic().map(String::into_bytes);
        if let Some(c) = &h.config {
            t.config = super::target::LoaderConfig::from_kconfig(c);
        }
        t.release = h.release;
    }
    Ok(t)
}

/// A target known only from a kernel image: vmlinux's exports and CRCs, and the release
/// from the image's version string.
pub fn vmlinuz_file(path: &Path) -> Result<Target, Error> {
    let v = super::vmlinux::read_vmlinuz(path)?;
    Ok(Target {
        release: v.release().map(str::to_string),
        abi: KernelAbi::from_symbols(path.display().to_string(), v.symbols),
        crcs_known: true,
        ..Target::default()
    })
}

/// `<root>/lib/modules/<kver>`, or a root with exactly one kernel in it.
fn tree_dir(d: &Path, depth: Depth) -> Result<Target, Error> {
    if let (Some(kver), Some(base)) = (d.file_name(), d.parent())
        && base.ends_with("lib/modules")
    {
        let root = base
            .parent()
            .and_then(Path::parent)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("/"));
        return installed_kept(&Root::open(root)?, &kver.to_string_lossy(), depth, &|_| {
            true
        });
    }
    let root = Root::open(d)?;
    let kvers: Vec<String> = root
        .list("lib/modules")?
        .into_iter()
        .map(|e| e.name.to_string_lossy().into_owned())
        .collect();
    match kvers.as_slice() {
        [kver] => installed_kept(&root, kver, depth, &|_| true),
        _ => Err(Error::Usage(format!(
            "{}: holds {} kernels ({}); name one",
            d.display(),
            kvers.len(),
            kvers.join(", ")
        ))),
    }
}

/// Is this file an x86 boot image (`HdrS` at 0x202)?
pub fn is_bzimage(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 0x206];
    Root::host()
        .and_then(|r| r.open_file(std::path::absolute(path).unwrap_or_default()))
        .is_ok_and(|(mut f, _)| f.read_exact(&mut head).is_ok())
        && &head[0x202..0x206] == b"HdrS"
}
