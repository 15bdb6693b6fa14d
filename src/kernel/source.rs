//! Building a [`Target`] from whichever sources are at hand for a kernel.
//!
//! Precedence (a later source overrides an earlier one for the same symbol):
//! symvers file < the kernel's own module tree (`kernel/`) < vmlinuz < running kernel.
//! The installed files are what the loader will see, so they win over a symvers file that
//! may be stale; the running kernel's memory wins over everything.

use super::abi::{KernelAbi, KernelSymbol};
use super::target::Target;
use super::{symvers, tree};
use crate::error::Error;
use std::path::{Path, PathBuf};

/// The ABI of an installed kernel `kver` under `root`: its symvers file if any, the exports of
/// its own modules (below `lib/modules/<kver>/kernel`), vermagic, `struct module` size and
/// architecture from those modules, and its loader configuration from `/boot/config-<kver>`.
pub fn installed_kernel(root: &Path, kver: &str) -> Result<Target, Error> {
    let dir = root.join("lib/modules").join(kver);
    let mut t = Target {
        release: Some(kver.to_string()),
        crcs_known: true,
        ..Target::default()
    };
    let mut found = false;
    if let Some(p) = symvers::find(root, kver) {
        t.abi.merge(p.display().to_string(), symvers::read(&p)?);
        found = true;
    }
    let own = dir.join("kernel");
    if own.is_dir() {
        let files = tree::module_files(&own);
        let mut syms: Vec<KernelSymbol> = Vec::new();
        for (res, f) in tree::parse_all(&files).into_iter().zip(&files) {
            // a bad module of the kernel's own is skipped: it provides nothing
            if let Ok(m) = res {
                t.learn_from_module(&m);
                syms.extend(tree::exports_of(&m, &tree::owner_of(&dir, f)));
            }
        }
        if !files.is_empty() {
            t.abi.merge(own.display().to_string(), syms);
            found = true;
        }
    }
    if t.abi
        .sources
        .first()
        .is_none_or(|s| s.starts_with(&own.display().to_string()))
    {
        // no symvers file: the kernel image itself gives vmlinux's exports and CRCs
        let image = root.join(format!("boot/vmlinuz-{kver}"));
        if image.is_file() {
            let v = super::vmlinux::read_vmlinuz(&image)?;
            let mut merged = KernelAbi::from_symbols(image.display().to_string(), v.symbols);
            for src in std::mem::take(&mut t.abi.sources) {
                merged.sources.push(src);
            }
            for (name, sym) in std::mem::take(&mut t.abi.symbols) {
                merged.symbols.insert(name, sym);
            }
            t.abi = merged;
            found = true;
        }
    }
    t.read_config(root, kver);
    if !found {
        return Err(Error::Usage(format!(
            "kernel {kver}: no symvers file ({}) and no modules in {}",
            symvers::candidates(kver)
                .iter()
                .map(|p| root.join(p).display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            own.display()
        )));
    }
    Ok(t)
}

/// A target known only from a symvers file (no vermagic, no struct module size).
pub fn symvers_file(path: &Path) -> Result<Target, Error> {
    Ok(Target {
        abi: KernelAbi::from_symbols(path.display().to_string(), symvers::read(path)?),
        crcs_known: true,
        ..Target::default()
    })
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

/// The running kernel: vmlinux's exports from `/proc/kallsyms` (+ `/proc/kcore` as root),
/// over the exports of its own module tree, with its config from `/boot/config-<release>`.
pub fn running_kernel(root: &Path) -> Result<Target, Error> {
    let proc = root.join("proc");
    let release = std::fs::read_to_string(proc.join("sys/kernel/osrelease"))
        .map(|s| s.trim().to_string())
        .map_err(|e| Error::io(proc.join("sys/kernel/osrelease"), e))?;
    let (syms, crcs_known) = super::kallsyms::running(&proc)?;
    let mut t = installed_kernel(root, &release).unwrap_or_else(|_| Target {
        release: Some(release.clone()),
        ..Target::default()
    });
    t.abi
        .merge(proc.join("kallsyms").display().to_string(), syms);
    t.crcs_known = crcs_known;
    Ok(t)
}

/// Is this file an x86 boot image (`HdrS` at 0x202)?
pub fn is_bzimage(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 0x206];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && &head[0x202..0x206] == b"HdrS"
}

/// What a command-line kernel argument names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelSpec {
    Installed {
        root: PathBuf,
        kver: String,
    },
    Symvers(PathBuf),
    Vmlinuz(PathBuf),
    /// A module directory (`.../lib/modules/<kver>`) or an unpacked root holding one kernel.
    Tree(PathBuf),
}

impl KernelSpec {
    /// Guess from an argument: an existing file is a kernel image or a symvers file; an existing directory a
    /// module tree or root; anything else a release installed under `root`.
    pub fn guess(arg: &str, root: &Path) -> KernelSpec {
        let p = Path::new(arg);
        if p.is_file() && is_bzimage(p) {
            KernelSpec::Vmlinuz(p.to_path_buf())
        } else if p.is_file() {
            KernelSpec::Symvers(p.to_path_buf())
        } else if p.is_dir() {
            KernelSpec::Tree(p.to_path_buf())
        } else {
            KernelSpec::Installed {
                root: root.to_path_buf(),
                kver: arg.to_string(),
            }
        }
    }

    pub fn load(&self) -> Result<Target, Error> {
        match self {
            KernelSpec::Installed { root, kver } => installed_kernel(root, kver),
            KernelSpec::Symvers(p) => symvers_file(p),
            KernelSpec::Vmlinuz(p) => vmlinuz_file(p),
            KernelSpec::Tree(d) => {
                // `<root>/lib/modules/<kver>` or a root with exactly one kernel in it
                if let (Some(kver), Some(base)) = (d.file_name(), d.parent())
                    && base.ends_with("lib/modules")
                {
                    let root = base
                        .parent()
                        .and_then(Path::parent)
                        .unwrap_or(Path::new("/"));
                    return installed_kernel(root, &kver.to_string_lossy());
                }
                let kvers: Vec<String> = std::fs::read_dir(d.join("lib/modules"))
                    .map_err(|e| Error::io(d.join("lib/modules"), e))?
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                match kvers.as_slice() {
                    [kver] => installed_kernel(d, kver),
                    _ => Err(Error::Usage(format!(
                        "{}: holds {} kernels ({}); name one",
                        d.display(),
                        kvers.len(),
                        kvers.join(", ")
                    ))),
                }
            }
        }
    }
}
