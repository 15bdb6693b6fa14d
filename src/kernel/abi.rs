//! `KernelAbi`: every symbol a kernel provides, with CRC, license class, namespace and owner.

use crate::module::ExportKind;
use serde::Serialize;

/// Who provides a symbol: `vmlinux`, or a module path as Module.symvers writes it
/// (`drivers/cdrom/cdrom`, without `.ko`).
pub const VMLINUX: &str = "vmlinux";

/// One exported symbol of a kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KernelSymbol {
    pub name: String,
    /// `None` where the source gives no CRC (a kernel without modversions, or kallsyms
    /// without kcore).
    pub crc: Option<u32>,
    pub kind: ExportKind,
    /// Empty when the symbol is in no namespace.
    pub namespace: String,
    pub owner: String,
}

impl KernelSymbol {
    /// The Module.symvers line of this symbol (CRC 0 when unknown).
    pub fn symvers_line(&self) -> String {
        format!(
            "0x{:08x}\t{}\t{}\t{}\t{}",
            self.crc.unwrap_or(0),
            self.name,
            self.owner,
            self.kind.as_str(),
            self.namespace
        )
    }
}

/// Every symbol a kernel provides, by name. Built from one or more sources; a later source
/// overrides an earlier one for the same name (see [`KernelAbi::merge`]).
#[derive(Debug, Clone, Default)]
pub struct KernelAbi {
    pub symbols: rustc_hash::FxHashMap<String, KernelSymbol>,
    /// What the symbols came from, in merge order (for reports).
    pub sources: Vec<String>,
}

impl KernelAbi {
    pub fn from_symbols(source: impl Into<String>, symbols: Vec<KernelSymbol>) -> KernelAbi {
        let mut abi = KernelAbi::default();
        abi.merge(source, symbols);
        abi
    }

    /// Add `symbols`; for a name already present the new one wins (kmod's depmod: the last
    /// provider wins).
    pub fn merge(&mut self, source: impl Into<String>, symbols: Vec<KernelSymbol>) {
        self.sources.push(source.into());
        self.symbols.reserve(symbols.len());
        for s in symbols {
            self.symbols.insert(s.name.clone(), s);
        }
    }

    /// Keep only the symbols owned by vmlinux (what `depmod -E` reads from a symvers file).
    pub fn vmlinux_only(mut self) -> KernelAbi {
        self.symbols.retain(|_, s| s.owner == VMLINUX);
        self
    }

    pub fn get(&self, name: &str) -> Option<&KernelSymbol> {
        self.symbols.get(name)
    }

    /// True when at least one symbol has a non-zero CRC: the kernel has modversions.
    pub fn has_crcs(&self) -> bool {
        self.symbols.values().any(|s| s.crc.is_some_and(|c| c != 0))
    }

    /// Every symbol, sorted by name.
    pub fn sorted(&self) -> Vec<&KernelSymbol> {
        let mut v: Vec<_> = self.symbols.values().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }
}
