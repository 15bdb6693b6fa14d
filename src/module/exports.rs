//! Exported symbols with CRC, license class and namespace (spec §1.6, §1.7).
//!
//! The export tables (`__ksymtab`, `__ksymtab_gpl`, ...) of a `.ko` are filled by relocations,
//! so the names and namespaces are found by following the relocation of each entry's name and
//! namespace field into `__ksymtab_strings`. This covers every layout: PREL32 (`int` offsets,
//! 4.19+ on x86_64, arm64, ppc64, s390) and absolute pointers (32-bit and older kernels), with
//! RELA or REL relocations. CRCs come from the `__crc_<name>` symbols (absolute in older
//! kernels, a `u32` in `__kcrctab*` since 5.19), else from the parallel `__kcrctab*` entry.
//! GPL-ness comes from `__kflagstab` when present, else from the table's section name.

use super::elf::{ElfFile, Reloc, Section, cstr_at};
use object::elf::{SHN_ABS, SHN_UNDEF};
use serde::Serialize;
use std::collections::HashMap;

/// The export macro a symbol was exported with, as Module.symvers names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum ExportKind {
    #[serde(rename = "EXPORT_SYMBOL")]
    Plain,
    #[serde(rename = "EXPORT_SYMBOL_GPL")]
    Gpl,
    #[serde(rename = "EXPORT_SYMBOL_GPL_FUTURE")]
    GplFuture,
    #[serde(rename = "EXPORT_UNUSED_SYMBOL")]
    Unused,
    #[serde(rename = "EXPORT_UNUSED_SYMBOL_GPL")]
    UnusedGpl,
}

impl ExportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ExportKind::Plain => "EXPORT_SYMBOL",
            ExportKind::Gpl => "EXPORT_SYMBOL_GPL",
            ExportKind::GplFuture => "EXPORT_SYMBOL_GPL_FUTURE",
            ExportKind::Unused => "EXPORT_UNUSED_SYMBOL",
            ExportKind::UnusedGpl => "EXPORT_UNUSED_SYMBOL_GPL",
        }
    }
    pub fn is_gpl_only(self) -> bool {
        matches!(self, ExportKind::Gpl | ExportKind::UnusedGpl)
    }
    /// The table suffix: `__ksymtab<suffix>` / `__kcrctab<suffix>`.
    fn from_suffix(s: &[u8]) -> Option<ExportKind> {
        Some(match s {
            b"" => ExportKind::Plain,
            b"_gpl" => ExportKind::Gpl,
            b"_gpl_future" => ExportKind::GplFuture,
            b"_unused" => ExportKind::Unused,
            b"_unused_gpl" => ExportKind::UnusedGpl,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Export {
    pub name: String,
    pub crc: Option<u32>,
    pub kind: ExportKind,
    /// Empty when the symbol is in no namespace.
    pub namespace: String,
}

/// Is this a section whose relocations the export parser needs?
pub fn wants_relocs(section_name: &[u8]) -> bool {
    section_name.starts_with(b"__ksymtab") && section_name != b"__ksymtab_strings"
}

pub fn parse(elf: &ElfFile) -> Vec<Export> {
    let crc_list = crc_symbol_list(elf);
    let crc_syms: HashMap<&str, u32> = crc_list.iter().map(|(n, c, _)| (n.as_str(), *c)).collect();
    let flags = elf.section_by_name("__kflagstab").and_then(|(_, s)| s.data);
    let mut out: Vec<Export> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();

    for (idx, sec) in elf.sections.iter().enumerate() {
        let Some(suffix) = sec.name.strip_prefix(b"__ksymtab") else {
            continue;
        };
        let Some(kind) = ExportKind::from_suffix(suffix) else {
            continue;
        };
        let Some(data) = sec.data else { continue };
        let relocs = elf.relocs_for(idx);
        let layout = Layout::of(elf, idx, sec, suffix, relocs.len());
        let kcrctab = elf
            .section_by_name(&format!("__kcrctab{}", String::from_utf8_lossy(suffix)))
            .and_then(|(_, s)| s.data);
        let count = data.len() / layout.entry;
        for i in 0..count {
            let base = (i * layout.entry) as u64;
            let Some(name) = string_at(elf, data, relocs, base + layout.name_off, layout.field)
            else {
                continue;
            };
            let namespace = layout
                .ns_off
                .and_then(|o| string_at(elf, data, relocs, base + o, layout.field))
                .unwrap_or_default();
            let name = String::from_utf8_lossy(name).into_owned();
            let crc = crc_syms.get(name.as_str()).copied().or_else(|| {
                kcrctab.and_then(|t| elf.read_uint(t, i as u64 * 4, 4).map(|v| v as u32))
            });
            let kind = match flags.and_then(|f| f.get(i)) {
                Some(f) if f & 1 != 0 => ExportKind::Gpl,
                Some(_) => ExportKind::Plain,
                None => kind,
            };
            seen.insert(name.clone(), out.len());
            out.push(Export {
                name,
                crc,
                kind,
                namespace: String::from_utf8_lossy(namespace).into_owned(),
            });
        }
    }

    // A `__crc_` symbol without a table entry we could read still names an export (kmod
    // lists exports this way); its license class comes from the section it lives in.
    for (name, crc, kind) in crc_list {
        if !seen.contains_key(name.as_str()) {
            seen.insert(name.clone(), out.len());
            out.push(Export {
                name,
                crc: Some(crc),
                kind,
                namespace: String::new(),
            });
        }
    }
    out
}

/// Where the name and namespace fields are in one table entry.
struct Layout {
    entry: usize,
    name_off: u64,
    ns_off: Option<u64>,
    /// Size of one field (for reading REL implicit addends).
    field: usize,
}

impl Layout {
    fn of(elf: &ElfFile, idx: usize, sec: &Section, suffix: &[u8], nrelocs: usize) -> Layout {
        let ptr = elf.ident.ptr_size();
        let size = sec.size as usize;
        // Count the entries: `__ksymtab_<name>` labels in this section, else the CRC table,
        // else relocations (three per entry when namespaces exist).
        let labels = elf
            .symbols
            .iter()
            .filter(|s| s.shndx as usize == idx && s.name.starts_with(b"__ksymtab_"))
            .count();
        let crc_entries = elf
            .section_by_name(&format!("__kcrctab{}", String::from_utf8_lossy(suffix)))
            .map(|(_, s)| s.size as usize / 4)
            .unwrap_or(0);
        let count = [labels, crc_entries, nrelocs / 3]
            .into_iter()
            .find(|&n| n > 0 && size.is_multiple_of(n))
            .unwrap_or(0);
        let entry = size.checked_div(count).unwrap_or(12);
        // 12: PREL32 with namespace (or 32-bit pointers); 8: two 32-bit fields;
        // 24 / 16: 64-bit pointers with / without namespace.
        match entry {
            24 => Layout {
                entry,
                name_off: 8,
                ns_off: Some(16),
                field: 8,
            },
            16 if ptr == 8 => Layout {
                entry,
                name_off: 8,
                ns_off: None,
                field: 8,
            },
            8 => Layout {
                entry,
                name_off: 4,
                ns_off: None,
                field: 4,
            },
            _ => Layout {
                entry: 12,
                name_off: 4,
                ns_off: Some(8),
                field: 4,
            },
        }
    }
}

/// Follow the relocation that fills the field at `off` to the string it points at.
fn string_at<'a>(
    elf: &ElfFile<'a>,
    table: &[u8],
    relocs: &[Reloc],
    off: u64,
    field: usize,
) -> Option<&'a [u8]> {
    let r = relocs.iter().find(|r| r.offset == off)?;
    let sym = elf.symbols.get(r.sym as usize)?;
    let addend = match r.addend {
        Some(a) => a,
        None => {
            let raw = elf.read_uint(table, off, field)?;
            if field == 4 {
                raw as u32 as i32 as i64
            } else {
                raw as i64
            }
        }
    };
    let target = elf.sections.get(sym.shndx as usize)?.data?;
    let pos = (sym.value as i64).checked_add(addend)?;
    cstr_at(target, u64::try_from(pos).ok()?)
}

/// `__crc_<name>` symbols resolved as kmod does: absolute or undefined symbols hold the CRC in
/// their value, others point at a `u32` inside their section.
fn crc_symbol_list(elf: &ElfFile) -> Vec<(String, u32, ExportKind)> {
    elf.symbols
        .iter()
        .filter_map(|s| {
            let name = s.name.strip_prefix(b"__crc_")?;
            let (crc, kind) = if s.shndx == SHN_ABS || s.shndx == SHN_UNDEF {
                (s.value as u32, ExportKind::Plain)
            } else {
                let sec = elf.sections.get(s.shndx as usize)?;
                let crc = elf.read_uint(sec.data?, s.value, 4)? as u32;
                let kind = sec
                    .name
                    .strip_prefix(b"__kcrctab")
                    .and_then(ExportKind::from_suffix)
                    .unwrap_or(ExportKind::Plain);
                (crc, kind)
            };
            Some((String::from_utf8_lossy(name).into_owned(), crc, kind))
        })
        .collect()
}
