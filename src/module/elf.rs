//! A uniform, bounds-checked view of an ELF relocatable object of any class and byte order.
//!
//! `object`'s low-level ELF API does the header, section and symbol-table checks; this module
//! turns the result into one plain shape (all numbers as `u64`) so that the rest of the parser
//! is written once for ELF32/ELF64 and little/big endian.

use crate::error::ParseError;
use object::elf;
use object::read::elf::{FileHeader, Rel, Rela, SectionHeader, Sym};
use object::{Endianness, FileKind};

/// ELF class and byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Ident {
    /// 32 or 64.
    pub bits: u8,
    pub big_endian: bool,
    pub machine: u16,
    pub e_type: u16,
}

impl Ident {
    pub fn ptr_size(&self) -> usize {
        self.bits as usize / 8
    }
}

#[derive(Debug, Clone)]
pub struct Section<'a> {
    pub name: &'a [u8],
    pub sh_type: u32,
    pub flags: u64,
    pub size: u64,
    /// `sh_addr`: the virtual address of the section in a linked image (0 in a `.ko`).
    pub addr: u64,
    pub info: u32,
    /// File contents; `None` for `SHT_NOBITS`.
    pub data: Option<&'a [u8]>,
}

impl Section<'_> {
    pub fn is_alloc(&self) -> bool {
        self.flags & elf::SHF_ALLOC as u64 != 0
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Symbol<'a> {
    pub name: &'a [u8],
    pub value: u64,
    pub shndx: u16,
    pub bind: u8,
    pub kind: u8,
}

impl Symbol<'_> {
    pub fn is_undefined(&self) -> bool {
        self.shndx == elf::SHN_UNDEF
    }
    pub fn is_weak(&self) -> bool {
        self.bind == elf::STB_WEAK
    }
}

/// One relocation, already resolved to its symbol index; `addend` is `None` for `SHT_REL`
/// (the addend is then the content of the field being relocated).
#[derive(Debug, Clone, Copy)]
pub struct Reloc {
    pub offset: u64,
    pub sym: u32,
    pub addend: Option<i64>,
}

#[derive(Debug)]
pub struct ElfFile<'a> {
    pub ident: Ident,
    pub data: &'a [u8],
    pub sections: Vec<Section<'a>>,
    pub symbols: Vec<Symbol<'a>>,
    /// Relocations per target section index, for the sections `want_relocs` asked for.
    pub relocs: Vec<(usize, Vec<Reloc>)>,
}

impl<'a> ElfFile<'a> {
    /// Parse `data`. Relocation sections are decoded only for target sections whose name
    /// satisfies `want_relocs` (the symbol tables of exports), since decoding all is costly.
    pub fn parse(data: &'a [u8], want_relocs: impl Fn(&[u8]) -> bool) -> Result<Self, ParseError> {
        Self::parse_with(data, true, &want_relocs)
    }

    /// Parse the header and section table only: no symbols, no relocations (what `.modinfo`,
    /// `__versions` and the signature need).
    pub fn parse_sections(data: &'a [u8]) -> Result<Self, ParseError> {
        Self::parse_with(data, false, &|_| false)
    }

    fn parse_with(
        data: &'a [u8],
        symbols: bool,
        want_relocs: &dyn Fn(&[u8]) -> bool,
    ) -> Result<Self, ParseError> {
        match FileKind::parse(data).map_err(|e| ParseError::elf(e.to_string()))? {
            FileKind::Elf32 => {
                parse_as::<elf::FileHeader32<Endianness>>(data, symbols, want_relocs)
            }
            FileKind::Elf64 => {
                parse_as::<elf::FileHeader64<Endianness>>(data, symbols, want_relocs)
            }
            other => Err(ParseError::elf(format!("not an ELF object ({other:?})"))),
        }
    }

    pub fn section_by_name(&self, name: &str) -> Option<(usize, &Section<'a>)> {
        self.sections
            .iter()
            .enumerate()
            .skip(1)
            .find(|(_, s)| s.name == name.as_bytes())
    }

    pub fn relocs_for(&self, section: usize) -> &[Reloc] {
        self.relocs
            .iter()
            .find(|(t, _)| *t == section)
            .map(|(_, r)| r.as_slice())
            .unwrap_or(&[])
    }

    /// An unsigned integer of `size` bytes (1, 2, 4 or 8) at `off` in `bytes`, in file byte order.
    pub fn read_uint(&self, bytes: &[u8], off: u64, size: usize) -> Option<u64> {
        let start = usize::try_from(off).ok()?;
        let b = bytes.get(start..start.checked_add(size)?)?;
        let mut v: u64 = 0;
        if self.ident.big_endian {
            for &x in b {
                v = (v << 8) | x as u64;
            }
        } else {
            for &x in b.iter().rev() {
                v = (v << 8) | x as u64;
            }
        }
        Some(v)
    }
}

/// The NUL-terminated string at `off` in `bytes` (without the NUL), if terminated in bounds.
pub fn cstr_at(bytes: &[u8], off: u64) -> Option<&[u8]> {
    let start = usize::try_from(off).ok()?;
    let rest = bytes.get(start..)?;
    let end = memchr::memchr(0, rest)?;
    Some(&rest[..end])
}

fn err(e: object::read::Error) -> ParseError {
    ParseError::elf(e.to_string())
}

fn parse_as<'a, H: FileHeader<Endian = Endianness>>(
    data: &'a [u8],
    with_symbols: bool,
    want_relocs: &dyn Fn(&[u8]) -> bool,
) -> Result<ElfFile<'a>, ParseError> {
    let header = H::parse(data).map_err(err)?;
    let endian = header.endian().map_err(err)?;
    let ident = Ident {
        bits: if header.is_class_64() { 64 } else { 32 },
        big_endian: endian == Endianness::Big,
        machine: header.e_machine(endian),
        e_type: header.e_type(endian),
    };
    let table = header.sections(endian, data).map_err(err)?;
    let sections = sections_of::<H>(&table, endian, data)?;
    if !with_symbols {
        return Ok(ElfFile {
            ident,
            data,
            sections,
            symbols: Vec::new(),
            relocs: Vec::new(),
        });
    }
    let symbols = symbols_of::<H>(&table, endian, data)?;
    let relocs = relocs_of::<H>(
        &table,
        &sections,
        endian,
        data,
        header.is_mips64el(endian),
        want_relocs,
    )?;
    Ok(ElfFile {
        ident,
        data,
        sections,
        symbols,
        relocs,
    })
}

type Table<'a, H> = object::read::elf::SectionTable<'a, H, &'a [u8]>;

/// Every section, with its data when it has some in the file.
fn sections_of<'a, H: FileHeader<Endian = Endianness>>(
    table: &Table<'a, H>,
    endian: Endianness,
    data: &'a [u8],
) -> Result<Vec<Section<'a>>, ParseError> {
    let mut sections = Vec::with_capacity(table.len());
    for (i, sh) in table.iter().enumerate() {
        let name = table
            .section_name(endian, sh)
            .map_err(|e| ParseError::elf(format!("section {i}: name: {e}")))?;
        let sh_type = sh.sh_type(endian);
        let data = if sh_type == elf::SHT_NOBITS {
            None
        } else {
            Some(sh.data(endian, data).map_err(|_| {
                ParseError::elf(format!(
                    "section {} ({}) lies outside the file",
                    i,
                    String::from_utf8_lossy(name)
                ))
            })?)
        };
        sections.push(Section {
            name,
            sh_type,
            flags: sh.sh_flags(endian).into(),
            size: sh.sh_size(endian).into(),
            addr: sh.sh_addr(endian).into(),
            info: sh.sh_info(endian),
            data,
        });
    }
    Ok(sections)
}

/// The symbol table.
fn symbols_of<'a, H: FileHeader<Endian = Endianness>>(
    table: &Table<'a, H>,
    endian: Endianness,
    data: &'a [u8],
) -> Result<Vec<Symbol<'a>>, ParseError> {
    let symtab = table
        .symbols(endian, data, elf::SHT_SYMTAB)
        .map_err(|e| ParseError::section(".symtab", e.to_string()))?;
    let mut symbols = Vec::with_capacity(symtab.len());
    for (i, sym) in symtab.iter().enumerate() {
        let name = symtab
            .symbol_name(endian, sym)
            .map_err(|e| ParseError::section(".symtab", format!("symbol {i}: {e}")))?;
        symbols.push(Symbol {
            name,
            value: sym.st_value(endian).into(),
            shndx: sym.st_shndx(endian),
            bind: sym.st_bind(),
            kind: sym.st_type(),
        });
    }
    Ok(symbols)
}

/// The relocations of the sections `want_relocs` names: (target section, relocations).
fn relocs_of<'a, H: FileHeader<Endian = Endianness>>(
    table: &Table<'a, H>,
    sections: &[Section<'a>],
    endian: Endianness,
    data: &'a [u8],
    is_mips64el: bool,
    want_relocs: &dyn Fn(&[u8]) -> bool,
) -> Result<Vec<(usize, Vec<Reloc>)>, ParseError> {
    let mut relocs = Vec::new();
    for sh in table.iter() {
        let target = sh.sh_info(endian) as usize;
        let Some(target_name) = sections.get(target).map(|s| s.name) else {
            continue;
        };
        if !want_relocs(target_name) {
            continue;
        }
        let list: Vec<Reloc> = match sh.sh_type(endian) {
            elf::SHT_RELA => {
                let (rela, _) = sh
                    .rela(endian, data)
                    .map_err(|e| ParseError::section("relocations", e.to_string()))?
                    .unwrap_or((&[], object::SectionIndex(0)));
                rela.iter()
                    .map(|r| Reloc {
                        offset: r.r_offset(endian).into(),
                        sym: r.r_sym(endian, is_mips64el),
                        addend: Some(r.r_addend(endian).into()),
                    })
                    .collect()
            }
            elf::SHT_REL => {
                let (rel, _) = sh
                    .rel(endian, data)
                    .map_err(|e| ParseError::section("relocations", e.to_string()))?
                    .unwrap_or((&[], object::SectionIndex(0)));
                rel.iter()
                    .map(|r| Reloc {
                        offset: r.r_offset(endian).into(),
                        sym: r.r_sym(endian),
                        addend: None,
                    })
                    .collect()
            }
            _ => continue,
        };
        relocs.push((target, list));
    }
    Ok(relocs)
}
