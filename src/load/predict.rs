//! kabi's prediction before an insert (`kabi load` only): the kernel's verdict on the
//! module, from `kabi check` against the running kernel. Behind a trait so that the source
//! of the running kernel's ABI can change (the executor only calls [`Predict::admit`] and
//! [`Predict::loaded`]).

use crate::check::check_with_sig;
use crate::kernel::abi::KernelSymbol;
use crate::kernel::target::Target;
use crate::module::Module;
use std::path::{Path, PathBuf};

/// Predicts whether the kernel will accept a module.
pub trait Predict {
    /// `Err(why)`, in the kernel's words, when the kernel will refuse the module.
    fn admit(&mut self, name: &str, path: &Path) -> Result<(), String>;
    /// The module was loaded: its exports serve the next predictions.
    fn loaded(&mut self, path: &Path);
}

/// The running kernel: `/proc/kallsyms` (with CRCs from `/proc/kcore` when readable),
/// vermagic and `struct module` size from one of its own modules, and its signature policy as
/// it is now ([`crate::sig::SigPolicy::running`] of the system root, the directory holding
/// `proc`: `module.sig_enforce`, lockdown, the trusted keys). Built on first use; the keys
/// are read only when a signed module must be verified.
pub struct RunningPredictor {
    proc: PathBuf,
    /// A module of the running kernel's tree (for vermagic and `struct module` size).
    sample: Option<PathBuf>,
    target: Option<Target>,
    extra: rustc_hash::FxHashMap<String, KernelSymbol>,
}

impl RunningPredictor {
    pub fn new(proc: &Path, sample: Option<PathBuf>) -> RunningPredictor {
        RunningPredictor {
            proc: proc.to_path_buf(),
            sample,
            target: None,
            extra: Default::default(),
        }
    }

    fn target(&mut self) -> &Target {
        if self.target.is_none() {
            let release = std::fs::read_to_string(self.proc.join("sys/kernel/osrelease"))
                .map(|s| s.trim().to_string())
                .unwrap_or_default();
            let mut t = Target {
                release: Some(release),
                ..Target::default()
            };
            if let Ok((syms, known)) = crate::kernel::kallsyms::running(&self.proc) {
                t.abi
                    .merge(self.proc.join("kallsyms").display().to_string(), syms);
                t.crcs_known = known;
            }
            if let Some(p) = &self.sample
                && let Ok(m) = Module::open_with(p, crate::module::Detail::Sections)
            {
                t.learn_from_module(&m);
            }
            // without a readable system root, signatures are judged by a distribution
            // kernel's defaults (not enforced, no keys)
            if let Ok(root) = crate::root::Root::open(self.proc.parent().unwrap_or(Path::new("/")))
                && let Ok(p) = crate::sig::SigPolicy::running(&root)
            {
                t.sig = p;
            }
            self.target = Some(t);
        }
        self.target.get_or_insert_with(Target::default)
    }
}

impl Predict for RunningPredictor {
    fn admit(&mut self, name: &str, path: &Path) -> Result<(), String> {
        let host = crate::root::Root::host().map_err(|e| e.to_string())?;
        let abs = std::path::absolute(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let extra = self.extra.clone();
        let t = self.target().clone();
        // the module and its signature check from one read of the file
        let (m, sc) = Module::read_in_with_sig(&host, &abs, crate::module::Detail::Full, &t.sig)
            .map_err(|e| e.to_string())?;
        let v = check_with_sig(&m, Some(path.to_path_buf()), &t, &extra, Some(&sc));
        if v.compatible() {
            return Ok(());
        }
        let why: Vec<String> = v
            .problems
            .iter()
            .map(|p| format!("  {}", p.describe(name)))
            .collect();
        Err(why.join("\n"))
    }

    fn loaded(&mut self, path: &Path) {
        let Ok(m) = Module::open(path) else {
            return;
        };
        for e in &m.exports {
            self.extra.insert(
                e.name.clone(),
                KernelSymbol {
                    name: e.name.clone(),
                    crc: e.crc,
                    kind: e.kind,
                    namespace: e.namespace.clone(),
                    owner: m.name.clone(),
                },
            );
        }
    }
}
