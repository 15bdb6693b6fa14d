//! What the target kernel's loader needs to know beyond its symbols: its vermagic, the size
//! of its `struct module`, its architecture and its module-loading configuration.

use super::abi::KernelAbi;
use crate::module::{Ident, Module};
use serde::Serialize;
use std::path::Path;

/// The configuration switches that change the loader's verdict (from `/boot/config-<kver>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LoaderConfig {
    /// `CONFIG_MODVERSIONS`: CRCs are checked.
    pub modversions: bool,
    /// `CONFIG_MODULE_FORCE_LOAD`: a missing version or vermagic only taints (F).
    pub force_load: bool,
    /// `CONFIG_MODULE_SIG_FORCE` or `module.sig_enforce=1`: unsigned modules are refused.
    pub sig_enforce: bool,
    /// `CONFIG_MODULE_ALLOW_MISSING_NAMESPACE_IMPORTS`: a missing import only warns.
    pub allow_missing_ns: bool,
}

impl Default for LoaderConfig {
    /// What a distribution kernel has (Debian, RHEL): modversions on, force-load on.
    fn default() -> Self {
        LoaderConfig {
            modversions: true,
            force_load: true,
            sig_enforce: false,
            allow_missing_ns: false,
        }
    }
}

impl LoaderConfig {
    /// Read the switches from a kernel `.config` text; absent options are off.
    pub fn from_kconfig(text: &str) -> LoaderConfig {
        let on = |name: &str| text.lines().any(|l| l.trim() == format!("{name}=y"));
        LoaderConfig {
            modversions: on("CONFIG_MODVERSIONS"),
            force_load: on("CONFIG_MODULE_FORCE_LOAD"),
            sig_enforce: on("CONFIG_MODULE_SIG_FORCE"),
            allow_missing_ns: on("CONFIG_MODULE_ALLOW_MISSING_NAMESPACE_IMPORTS"),
        }
    }
}

/// A kernel to check modules against.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// The kernel release (`6.1.0-56-amd64`), when known.
    pub release: Option<String>,
    pub abi: KernelAbi,
    /// The kernel's vermagic string, taken from one of its own modules.
    pub vermagic: Option<Vec<u8>>,
    /// `sizeof(struct module)`, from the `.gnu.linkonce.this_module` of one of its modules.
    pub this_module_size: Option<u64>,
    pub arch: Option<Ident>,
    pub config: LoaderConfig,
    /// `false` when CRCs could not be known (kallsyms without kcore): CRC checks are skipped
    /// and the verdict says so.
    pub crcs_known: bool,
}

impl Target {
    /// Take vermagic, `struct module` size and architecture from one of the kernel's own
    /// modules.
    pub fn learn_from_module(&mut self, m: &Module) {
        if self.vermagic.is_none() {
            self.vermagic = m.vermagic().map(<[u8]>::to_vec);
        }
        if self.this_module_size.is_none() {
            self.this_module_size = m.this_module_size;
        }
        if self.arch.is_none() {
            self.arch = Some(m.elf);
        }
    }

    /// Read `/boot/config-<kver>` under `root` if it is there.
    pub fn read_config(&mut self, root: &Path, kver: &str) -> bool {
        match std::fs::read_to_string(root.join(format!("boot/config-{kver}"))) {
            Ok(t) => {
                self.config = LoaderConfig::from_kconfig(&t);
                true
            }
            Err(_) => false,
        }
    }

    /// Read `/boot/config-<kver>` inside `root` if it is there.
    pub fn read_config_in(&mut self, root: &crate::root::Root, kver: &str) -> bool {
        match root.read_string(format!("boot/config-{kver}"), crate::root::caps::CONFIG) {
            Ok(t) => {
                self.config = LoaderConfig::from_kconfig(&t);
                true
            }
            Err(_) => false,
        }
    }

    /// `(major, minor)` of the release, for rules that changed over time.
    pub fn version(&self) -> Option<(u32, u32)> {
        let r = self.release.as_deref()?;
        let mut it = r.split(['.', '-']);
        Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
    }
}
