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
        // one pass over the file (a distribution's has 10,000 lines), not one per option
        let mut c = LoaderConfig {
            modversions: false,
            force_load: false,
            sig_enforce: false,
            allow_missing_ns: false,
        };
        for l in text.lines() {
            match l.trim() {
                "CONFIG_MODVERSIONS=y" => c.modversions = true,
                "CONFIG_MODULE_FORCE_LOAD=y" => c.force_load = true,
                "CONFIG_MODULE_SIG_FORCE=y" => c.sig_enforce = true,
                "CONFIG_MODULE_ALLOW_MISSING_NAMESPACE_IMPORTS=y" => c.allow_missing_ns = true,
                _ => {}
            }
        }
        c
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
    /// What decides the signature check: the kernel's switches, its enforcement state and
    /// where its trusted keys come from (none by default: signatures are then checked for form
    /// and enforcement only). `crate::sig::SigPolicy::installed` / `running` fill it.
    pub sig: crate::sig::SigPolicy,
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
                self.sig
                    .set_config(crate::sig::state::SigConfig::from_kconfig(&t));
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
                self.sig
                    .set_config(crate::sig::state::SigConfig::from_kconfig(&t));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kconfig_switches_are_read_in_one_pass_and_absent_ones_are_off() {
        let off = LoaderConfig::from_kconfig("# CONFIG_MODVERSIONS is not set\nCONFIG_X=y\n");
        assert_eq!(
            off,
            LoaderConfig {
                modversions: false,
                force_load: false,
                sig_enforce: false,
                allow_missing_ns: false
            }
        );
        let text = "CONFIG_A=m\n  CONFIG_MODVERSIONS=y  \nCONFIG_MODULE_FORCE_LOAD=y\n\
                    CONFIG_MODULE_SIG_FORCE=m\nCONFIG_MODULE_ALLOW_MISSING_NAMESPACE_IMPORTS=y\n";
        let c = LoaderConfig::from_kconfig(text);
        assert!(c.modversions && c.force_load && c.allow_missing_ns);
        // only `=y` turns a switch on
        assert!(!c.sig_enforce);
    }
}
