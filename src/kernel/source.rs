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
    t.read_config(root, kver);
    if !found {
        return Err(Error::Usage(format!(
            "kernel {kver}: no symvers file ({}) and no modules in {}",
            symvers::candidates(root, kver)
                .iter()
                .map(|p| p.display().to_string())
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

/// What a command-line kernel argument names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelSpec {
    Installed {
        root: PathBuf,
        kver: String,
    },
    Symvers(PathBuf),
    /// A module directory (`.../lib/modules/<kver>`) or an unpacked root holding one kernel.
    Tree(PathBuf),
}

impl KernelSpec {
    /// Guess from an argument: an existing file is a symvers file; an existing directory a
    /// module tree or root; anything else a release installed under `root`.
    pub fn guess(arg: &str, root: &Path) -> KernelSpec {
        let p = Path::new(arg);
        if p.is_file() {
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
