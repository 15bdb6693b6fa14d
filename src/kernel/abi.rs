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
