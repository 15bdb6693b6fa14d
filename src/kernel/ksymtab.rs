//! The export tables of a stripped vmlinux (spec §6.3): `__ksymtab*`, `__kcrctab*` and the
//! strings they point to, decoded from the ELF file's sections (also what kallsyms + kcore
//! give from memory).

use super::abi::{KernelSymbol, VMLINUX};
use crate::error::ParseError;
use crate::module::ExportKind;
use crate::module::elf::{ElfFile, Section, cstr_at};

/// The table suffixes: `__ksymtab<suffix>` with its license class.
const TABLES: &[(&str, ExportKind)] = &[
    ("", ExportKind::Plain),
    ("_gpl", ExportKind::Gpl),
    ("_gpl_future", ExportKind::GplFuture),
    ("_unused", ExportKind::Unused),
    ("_unused_gpl", ExportKind::UnusedGpl),
];

/// The layout of one `struct kernel_symbol` (spec §1.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// `int value_offset, name_offset[, namespace_offset]`, each relative to itself.
    Prel32 { namespace: bool },
    /// `unsigned long value; const char *name[, *namespace]`.
    Absolute { ptr: usize, namespace: bool },
}

impl Layout {
    fn entry(self) -> usize {
        match self {
            Layout::Prel32 { namespace } => 4 * (2 + namespace as usize),
            Layout::Absolute { ptr, namespace } => ptr * (2 + namespace as usize),
        }
    }
    fn field(self) -> usize {
        match self {
            Layout::Prel32 { .. } => 4,
            Layout::Absolute { ptr, .. } => ptr,
        }
    }
    fn has_namespace(self) -> bool {
        match self {
            Layout::Prel32 { namespace } | Layout::Absolute { namespace, .. } => namespace,
        }
    }
    /// Candidates in order of likelihood for the ELF class.
    fn candidates(bits: u8) -> [Layout; 6] {
        let p12 = Layout::Prel32 { namespace: true };
        let p8 = Layout::Prel32 { namespace: false };
        let a = |ptr, namespace| Layout::Absolute { ptr, namespace };
        if bits == 64 {
            [p12, p8, a(8, true), a(8, false), a(4, true), a(4, false)]
        } else {
            [a(4, true), a(4, false), p12, p8, a(8, true), a(8, false)]
        }
    }
}

/// One decoded table: names, namespaces and CRCs in table order.
struct Decoded {
    kind: ExportKind,
    names: Vec<(String, String)>,
    crcs: Option<Vec<u32>>,
    flags: Option<Vec<u8>>,
    sorted: bool,
}

/// The exports of a stripped `vmlinux` ELF, read from its section headers, sorted by name.
pub fn exports(vmlinux: &[u8]) -> Result<Vec<KernelSymbol>, ParseError> {
    exports_of(&ElfFile::parse(vmlinux, |_| false)?)
}

/// The exports described by the `__ksymtab*`, `__kcrctab*`, `__kflagstab` and
/// `__ksymtab_strings` sections of `elf` (a vmlinux, or memory read from a running kernel
/// and presented as such sections), sorted by name.
pub fn exports_of(elf: &ElfFile) -> Result<Vec<KernelSymbol>, ParseError> {
    let mask = if elf.ident.bits == 64 {
        u64::MAX
    } else {
        u32::MAX as u64
    };
    let Some((_, strings)) = elf.section_by_name("__ksymtab_strings") else {
        return Err(ParseError::section(
            "__ksymtab_strings",
            "missing: expected a linked vmlinux with export tables (section headers of an \
             x86 vmlinux; raw Image files have none)",
        ));
    };
    let Some(strings_data) = strings.data else {
        return Err(ParseError::section(
            "__ksymtab_strings",
            "has no contents (SHT_NOBITS)",
        ));
    };
    if strings.addr == 0 {
        return Err(ParseError::section(
            "__ksymtab_strings",
            "has address 0: expected a linked vmlinux, not a relocatable object (.ko)",
        ));
    }
    let tables: Vec<(&str, ExportKind, &Section)> = TABLES
        .iter()
        .filter_map(|(suffix, kind)| {
            let name = format!("__ksymtab{suffix}");
            elf.section_by_name(&name).map(|(_, s)| (*suffix, *kind, s))
        })
        .collect();
    if tables.is_empty() {
        return Err(ParseError::section(
            "__ksymtab",
            "missing: expected __ksymtab and/or __ksymtab_gpl in a kernel that exports symbols",
        ));
    }
    let flagstab =
        match elf.section_by_name("__kflagstab") {
            Some((_, s)) => Some(s.data.ok_or_else(|| {
                ParseError::section("__kflagstab", "has no contents (SHT_NOBITS)")
            })?),
            None => None,
        };

    let ctx = Ctx {
        elf,
        mask,
        strings,
        strings_data,
    };
    let mut chosen: Option<Vec<Decoded>> = None;
    let mut reasons = Vec::new();
    for layout in Layout::candidates(elf.ident.bits) {
        match decode_all(&ctx, layout, &tables, flagstab) {
            Ok(d) => {
                if d.iter().all(|t| t.sorted) {
                    chosen = Some(d);
                    break;
                }
                chosen.get_or_insert(d);
            }
            Err(r) => reasons.push(format!("{}-byte {layout:?}: {r}", layout.entry())),
        }
    }
    let Some(decoded) = chosen else {
        return Err(ParseError::section(
            "__ksymtab",
            format!(
                "no known entry layout decodes the export tables: {}",
                reasons.join("; ")
            ),
        ));
    };

    let mut out = Vec::with_capacity(decoded.iter().map(|t| t.names.len()).sum());
    for t in decoded {
        for (i, (name, namespace)) in t.names.into_iter().enumerate() {
            let kind = match t.flags.as_ref().map(|f| f[i]) {
                Some(f) if f & 1 != 0 => ExportKind::Gpl,
                Some(_) => ExportKind::Plain,
                None => t.kind,
            };
            out.push(KernelSymbol {
                name,
                crc: t.crcs.as_ref().map(|c| c[i]),
                kind,
                namespace,
                owner: VMLINUX.to_string(),
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

struct Ctx<'e, 'a> {
    elf: &'e ElfFile<'a>,
    mask: u64,
    strings: &'e Section<'a>,
    strings_data: &'a [u8],
}

impl<'a> Ctx<'_, 'a> {
    /// The NUL-terminated string at virtual address `va`, which must lie in
    /// `__ksymtab_strings`.
    fn string(&self, va: u64) -> Option<&'a [u8]> {
        let off = va.checked_sub(self.strings.addr)?;
        if off >= self.strings_data.len() as u64 {
            return None;
        }
        cstr_at(self.strings_data, off)
    }

    /// Four bytes at virtual address `va` in any allocated section with contents.
    fn u32_at(&self, va: u64) -> Option<u32> {
        self.elf.sections.iter().skip(1).find_map(|s| {
            let data = s.data?;
            if !s.is_alloc() || s.addr == 0 {
                return None;
            }
            let off = va.checked_sub(s.addr)?;
            if off.checked_add(4)? > data.len() as u64 {
                return None;
            }
            self.elf.read_uint(data, off, 4).map(|v| v as u32)
        })
    }

    /// The target of the pointer-sized or PREL32 field at `off` in section `sec`.
    fn target(&self, layout: Layout, sec: &Section, data: &[u8], off: u64) -> Option<u64> {
        match layout {
            Layout::Prel32 { .. } => {
                let rel = self.elf.read_uint(data, off, 4)? as u32 as i32 as i64;
                if rel == 0 {
                    return Some(0);
                }
                Some(sec.addr.wrapping_add(off).wrapping_add(rel as u64) & self.mask)
            }
            Layout::Absolute { ptr, .. } => self.elf.read_uint(data, off, ptr),
        }
    }
}

fn decode_all(
    ctx: &Ctx,
    layout: Layout,
    tables: &[(&str, ExportKind, &Section)],
    flagstab: Option<&[u8]>,
) -> Result<Vec<Decoded>, String> {
    tables
        .iter()
        .map(|(suffix, kind, sec)| decode(ctx, layout, suffix, *kind, sec, flagstab))
        .collect()
}

fn decode(
    ctx: &Ctx,
    layout: Layout,
    suffix: &str,
    kind: ExportKind,
    sec: &Section,
    flagstab: Option<&[u8]>,
) -> Result<Decoded, String> {
    let table = format!("__ksymtab{suffix}");
    let data = sec
        .data
        .ok_or_else(|| format!("{table} has no contents (SHT_NOBITS)"))?;
    let entry = layout.entry();
    if data.len() % entry != 0 {
        return Err(format!(
            "{table} is {} bytes, not a multiple of {entry}",
            data.len()
        ));
    }
    let n = data.len() / entry;
    let field = layout.field() as u64;
    let mut names = Vec::with_capacity(n);
    let mut sorted = true;
    for i in 0..n {
        let base = (i * entry) as u64;
        let name_va = ctx
            .target(layout, sec, data, base + field)
            .ok_or_else(|| format!("{table} entry {i}: unreadable name field"))?;
        let name = ctx
            .string(name_va)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                format!(
                    "{table} entry {i}: name address 0x{name_va:x} is not a string in \
                     __ksymtab_strings"
                )
            })?;
        let namespace: &[u8] = if layout.has_namespace() {
            match ctx.target(layout, sec, data, base + 2 * field) {
                Some(0) => b"",
                Some(va) => ctx.string(va).ok_or_else(|| {
                    format!(
                        "{table} entry {i}: namespace address 0x{va:x} is not a string in \
                         __ksymtab_strings"
                    )
                })?,
                None => return Err(format!("{table} entry {i}: unreadable namespace field")),
            }
        } else {
            b""
        };
        let name = String::from_utf8_lossy(name).into_owned();
        if let Some((prev, _)) = names.last()
            && *prev >= name
        {
            sorted = false;
        }
        names.push((name, String::from_utf8_lossy(namespace).into_owned()));
    }

    let crc_name = format!("__kcrctab{suffix}");
    let crcs = match ctx.elf.section_by_name(&crc_name) {
        None => None,
        Some((_, crc_sec)) => Some(read_crcs(ctx, &crc_name, crc_sec, n)?),
    };
    // __kflagstab holds one byte per __ksymtab entry (and there is then no __ksymtab_gpl).
    let flags = match flagstab {
        Some(f) if suffix.is_empty() => {
            if f.len() != n {
                return Err(format!(
                    "__kflagstab has {} bytes for {n} entries of {table}",
                    f.len()
                ));
            }
            Some(f.to_vec())
        }
        _ => None,
    };
    Ok(Decoded {
        kind,
        names,
        crcs,
        flags,
        sorted,
    })
}

/// The CRCs of `n` exports from a `__kcrctab*` section: `u32` values (4.10+), place-relative
/// `s32` offsets to the CRC (`CONFIG_MODULE_REL_CRCS`, 4.10–5.18), or pointer-sized values
/// (≤ 4.9 on 64-bit).
fn read_crcs(ctx: &Ctx, name: &str, sec: &Section, n: usize) -> Result<Vec<u32>, String> {
    let data = sec
        .data
        .ok_or_else(|| format!("{name} has no contents (SHT_NOBITS)"))?;
    let elf = ctx.elf;
    if data.len() == 4 * n {
        let raw: Vec<u32> = (0..n)
            .map(|i| elf.read_uint(data, 4 * i as u64, 4).unwrap_or(0) as u32)
            .collect();
        // Place-relative CRCs: every entry points at 4 bytes of an allocated section. For
        // absolute CRCs (random 32-bit values) this is improbable once there are a few dozen.
        if n >= 16 {
            let rel: Option<Vec<u32>> = raw
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    let va = sec
                        .addr
                        .wrapping_add(4 * i as u64)
                        .wrapping_add(v as i32 as i64 as u64)
                        & ctx.mask;
                    ctx.u32_at(va)
                })
                .collect();
            if let Some(rel) = rel {
                return Ok(rel);
            }
        }
        Ok(raw)
    } else if elf.ident.bits == 64 && data.len() == 8 * n {
        Ok((0..n)
            .map(|i| elf.read_uint(data, 8 * i as u64, 8).unwrap_or(0) as u32)
            .collect())
    } else {
        Err(format!(
            "{name} is {} bytes, which fits no CRC size for {n} entries",
            data.len()
        ))
    }
}
