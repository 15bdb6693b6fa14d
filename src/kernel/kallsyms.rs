//! The running kernel's ABI (spec §5.1): `/proc/kallsyms` names every export (`__ksymtab_<sym>`)
//! and the addresses of the export tables; with `/proc/kcore` (root) the tables themselves are
//! read from memory, giving every vmlinux export with its CRC, GPL flag and namespace.
//! Without kcore the names are still known, GPL-ness too (from which table an entry lies in),
//! but not the CRCs: a verdict then says CRCs were not verifiable.

use super::abi::{KernelSymbol, VMLINUX};
use crate::error::{Error, ParseError};
use crate::module::ExportKind;
use crate::module::elf::{ElfFile, Ident, Section};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// One `/proc/kallsyms` line: `address type name [module]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub addr: u64,
    pub kind: char,
    pub name: String,
    pub module: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Kallsyms {
    pub entries: Vec<Entry>,
}

/// Parse `/proc/kallsyms` text; malformed lines are errors naming the line.
pub fn parse(text: &str) -> Result<Kallsyms, ParseError> {
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut f = line.split_whitespace();
        let (Some(a), Some(t), Some(n)) = (f.next(), f.next(), f.next()) else {
            if line.trim().is_empty() {
                continue;
            }
            return Err(ParseError::section(
                &format!("line {}", i + 1),
                "expected: address type name [module]",
            ));
        };
        let addr = u64::from_str_radix(a, 16).map_err(|_| {
            ParseError::section(&format!("line {}", i + 1), "the address is not hexadecimal")
        })?;
        let module = f
            .next()
            .map(|m| m.trim_start_matches('[').trim_end_matches(']').to_string());
        entries.push(Entry {
            addr,
            kind: t.chars().next().unwrap_or('?'),
            name: n.to_string(),
            module,
        });
    }
    Ok(Kallsyms { entries })
}

impl Kallsyms {
    /// The address of a vmlinux symbol.
    pub fn addr(&self, name: &str) -> Option<u64> {
        self.entries
            .iter()
            .find(|e| e.module.is_none() && e.name == name)
            .map(|e| e.addr)
    }

    /// True when the addresses are hidden (`kptr_restrict`, not root): all zero.
    pub fn addresses_hidden(&self) -> bool {
        !self.entries.is_empty() && self.entries.iter().all(|e| e.addr == 0)
    }

    fn range(&self, table: &str) -> Option<(u64, u64)> {
        let start = self.addr(&format!("__start___{table}"))?;
        let stop = self.addr(&format!("__stop___{table}"))?;
        (stop >= start).then_some((start, stop))
    }

    /// Every export the kernel names (`__ksymtab_<sym>`), vmlinux's and loaded modules',
    /// without CRCs or namespaces. A vmlinux entry lying in `__ksymtab_gpl` is GPL-only.
    pub fn exports_by_name(&self) -> Vec<KernelSymbol> {
        let gpl = if self.addresses_hidden() {
            None
        } else {
            self.range("ksymtab_gpl")
        };
        let mut out: Vec<KernelSymbol> = self
            .entries
            .iter()
            .filter_map(|e| {
                let name = e.name.strip_prefix("__ksymtab_")?;
                if name == "strings" {
                    return None;
                }
                let kind = match (e.module.is_none(), gpl) {
                    (true, Some((a, b))) if (a..b).contains(&e.addr) => ExportKind::Gpl,
                    _ => ExportKind::Plain,
                };
                Some(KernelSymbol {
                    name: name.to_string(),
                    crc: None,
                    kind,
                    namespace: String::new(),
                    owner: e.module.clone().unwrap_or_else(|| VMLINUX.to_string()),
                })
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}

/// Something that can read the kernel's memory at a virtual address.
pub trait Memory {
    fn read(&self, va: u64, len: usize) -> Option<Vec<u8>>;
}

/// `/proc/kcore`: an ELF64 core file whose `PT_LOAD` segments map kernel virtual addresses.
pub struct Kcore {
    file: std::fs::File,
    /// (vaddr, file offset, size)
    segments: Vec<(u64, u64, u64)>,
}

impl Kcore {
    pub fn open(path: &Path) -> Result<Kcore, Error> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        Kcore::from_file(file, path)
    }

    /// An open kcore file (`path` names it in errors).
    pub fn from_file(mut file: std::fs::File, path: &Path) -> Result<Kcore, Error> {
        let io = |e| Error::io(path, e);
        let mut eh = [0u8; 64];
        file.read_exact(&mut eh).map_err(io)?;
        let bad = |why: &str| Error::parse(path, ParseError::elf(why.to_string()));
        if &eh[..4] != b"\x7fELF" || eh[4] != 2 || eh[5] != 1 {
            return Err(bad("expected a little-endian ELF64 core file"));
        }
        let u16_at = |o: usize| u16::from_le_bytes([eh[o], eh[o + 1]]) as u64;
        let phoff = u64::from_le_bytes(eh[32..40].try_into().unwrap_or([0; 8]));
        let (phentsize, phnum) = (u16_at(54), u16_at(56));
        if phentsize != 56 || phnum == 0 || phnum > 4096 {
            return Err(bad("unexpected program header table"));
        }
        let mut ph = vec![0u8; (phentsize * phnum) as usize];
        file.seek(SeekFrom::Start(phoff)).map_err(io)?;
        file.read_exact(&mut ph).map_err(io)?;
        let segments = ph
            .chunks_exact(56)
            .filter(|p| u32::from_le_bytes([p[0], p[1], p[2], p[3]]) == 1) // PT_LOAD
            .map(|p| {
                let q = |o: usize| u64::from_le_bytes(p[o..o + 8].try_into().unwrap_or([0; 8]));
                (q(16), q(8), q(32))
            })
            .collect();
        Ok(Kcore { file, segments })
    }
}

impl Memory for Kcore {
    fn read(&self, va: u64, len: usize) -> Option<Vec<u8>> {
        let &(vaddr, off, _) = self
            .segments
            .iter()
            .find(|(v, _, s)| va >= *v && va.checked_add(len as u64).is_some_and(|e| e <= v + s))?;
        let mut buf = vec![0u8; len];
        let mut f = &self.file;
        f.seek(SeekFrom::Start(off + (va - vaddr))).ok()?;
        f.read_exact(&mut buf).ok()?;
        Some(buf)
    }
}

/// The longest name read at the end of the string table.
const NAME_SLACK: u64 = 512;

/// vmlinux's exports with CRCs, GPL flags and namespaces, read from memory at the table
/// addresses kallsyms gives (x86_64 layout: 12-byte PREL32 entries, u32 CRCs).
pub fn exports_from_memory(
    ks: &Kallsyms,
    mem: &dyn Memory,
) -> Result<Vec<KernelSymbol>, ParseError> {
    if ks.addresses_hidden() {
        return Err(ParseError::section(
            "kallsyms",
            "addresses are hidden (kptr_restrict; run as root)",
        ));
    }
    let missing =
        |t: &str| ParseError::section("kallsyms", format!("no __start___{t}/__stop___{t}"));
    let tabs = [
        (
            "ksymtab",
            ks.range("ksymtab").ok_or_else(|| missing("ksymtab"))?,
        ),
        (
            "ksymtab_gpl",
            ks.range("ksymtab_gpl")
                .ok_or_else(|| missing("ksymtab_gpl"))?,
        ),
    ];
    let unreadable = |what: &str, va: u64| {
        ParseError::section(what, format!("memory at {va:#x} is not readable"))
    };
    let mut owned: Vec<(String, u64, Vec<u8>)> = Vec::new();
    let (mut lo, mut hi) = (u64::MAX, 0u64);
    for (name, (start, stop)) in tabs {
        let len = (stop - start) as usize;
        let data = if len == 0 {
            Vec::new()
        } else {
            mem.read(start, len)
                .ok_or_else(|| unreadable(name, start))?
        };
        // the name and namespace fields point into __ksymtab_strings, whose bounds kallsyms
        // does not give: read the span they cover
        for (i, e) in data.chunks_exact(12).enumerate() {
            for f in [4u64, 8] {
                let rel =
                    i32::from_le_bytes(e[f as usize..f as usize + 4].try_into().unwrap_or([0; 4]));
                if rel != 0 {
                    let va = (start + i as u64 * 12 + f).wrapping_add(rel as i64 as u64);
                    lo = lo.min(va);
                    hi = hi.max(va);
                }
            }
        }
        let entries = (len / 12) as u64;
        let crc_tab = format!("kcrctab{}", name.strip_prefix("ksymtab").unwrap_or(""));
        if let Some(crc_va) = ks.addr(&format!("__start___{crc_tab}"))
            && entries > 0
        {
            let crcs = mem
                .read(crc_va, (entries * 4) as usize)
                .ok_or_else(|| unreadable(&crc_tab, crc_va))?;
            owned.push((format!("__{crc_tab}"), crc_va, crcs));
        }
        owned.push((format!("__{name}"), start, data));
    }
    if hi >= lo {
        // everything up to the last name's start, then that name up to its NUL
        let mut strings = mem
            .read(lo, (hi - lo) as usize)
            .ok_or_else(|| unreadable("__ksymtab_strings", lo))?;
        for k in 0..NAME_SLACK {
            let b = mem
                .read(hi + k, 1)
                .ok_or_else(|| unreadable("__ksymtab_strings", hi + k))?;
            strings.push(b[0]);
            if b[0] == 0 {
                break;
            }
        }
        owned.push(("__ksymtab_strings".to_string(), lo, strings));
    }
    let mut sections = vec![Section {
        name: b"",
        sh_type: 0,
        flags: 0,
        size: 0,
        addr: 0,
        info: 0,
        data: None,
    }];
    for (name, addr, data) in &owned {
        sections.push(Section {
            name: name.as_bytes(),
            sh_type: object::elf::SHT_PROGBITS,
            flags: object::elf::SHF_ALLOC as u64,
            size: data.len() as u64,
            addr: *addr,
            info: 0,
            data: Some(data),
        });
    }
    let elf = ElfFile {
        ident: Ident {
            bits: 64,
            big_endian: false,
            machine: object::elf::EM_X86_64,
            e_type: object::elf::ET_CORE,
        },
        data: &[],
        sections,
        symbols: Vec::new(),
        relocs: Vec::new(),
    };
    super::vmlinux::exports_of(&elf)
}

/// The running kernel's ABI: vmlinux's exports from memory when `/proc/kcore` is readable,
/// else the names from kallsyms without CRCs (`crcs_known` false).
pub fn running(proc: &Path) -> Result<(Vec<KernelSymbol>, bool), Error> {
    let ks_path = proc.join("kallsyms");
    let text = std::fs::read_to_string(&ks_path).map_err(|e| Error::io(&ks_path, e))?;
    let ks = parse(&text).map_err(|e| Error::parse(&ks_path, e))?;
    let by_name = ks.exports_by_name();
    let kcore = proc.join("kcore");
    let from_memory = Kcore::open(&kcore)
        .ok()
        .and_then(|k| exports_from_memory(&ks, &k).ok());
    match from_memory {
        Some(mut syms) => {
            // loaded modules' exports are known by name only
            syms.extend(by_name.into_iter().filter(|s| s.owner != VMLINUX));
            Ok((syms, true))
        }
        None => Ok((by_name, false)),
    }
}
