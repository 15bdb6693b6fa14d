//! `__versions` (imports with CRCs) and the extended modversions tables (spec §1.4, §1.5).

use super::elf::{ElfFile, cstr_at};
use serde::Serialize;

/// One imported symbol version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionEntry {
    pub name: String,
    /// The CRC as stored: on 64-bit classic tables an `unsigned long` (upper half normally 0).
    pub crc: u64,
}

/// The layout a `__versions` section was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VersionsFormat {
    /// Upstream: 64-byte `struct modversion_info` records.
    Classic,
    /// Ubuntu's variable-length records (`u32 next; u32 crc; char name[]`).
    VariableLength,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum Versions {
    Absent,
    Present {
        format: VersionsFormat,
        /// `SHF_ALLOC` set: the kernel's `find_sec()` only sees the table when it is.
        alloc: bool,
        entries: Vec<VersionEntry>,
    },
    Malformed {
        reason: String,
    },
}

pub const RECORD: usize = 64;

pub fn parse(elf: &ElfFile) -> Versions {
    let Some((_, sec)) = elf.section_by_name("__versions") else {
        return Versions::Absent;
    };
    let Some(data) = sec.data else {
        return Versions::Malformed {
            reason: "__versions has no contents (SHT_NOBITS)".into(),
        };
    };
    let alloc = sec.is_alloc();
    let present = |format, entries| Versions::Present {
        format,
        alloc,
        entries,
    };
    let ptr = elf.ident.ptr_size();
    match classic(elf, data, ptr, true) {
        Some(entries) => present(VersionsFormat::Classic, entries),
        None => match variable_length(elf, data) {
            Some(entries) => present(VersionsFormat::VariableLength, entries),
            // kmod reads any multiple of 64 bytes as classic; do the same before giving up
            None => match classic(elf, data, ptr, false) {
                Some(entries) => present(VersionsFormat::Classic, entries),
                None => Versions::Malformed {
                    reason: format!(
                        "__versions: {} bytes is neither 64-byte records nor variable-length records",
                        data.len()
                    ),
                },
            },
        },
    }
}

/// 64-byte records; with `strict`, every name must end inside its slot and (64-bit) every
/// upper CRC half must be zero, which tells the classic layout from the variable one.
fn classic(elf: &ElfFile, data: &[u8], ptr: usize, strict: bool) -> Option<Vec<VersionEntry>> {
    if !data.len().is_multiple_of(RECORD) {
        return None;
    }
    data.chunks_exact(RECORD)
        .map(|rec| {
            let crc = elf.read_uint(rec, 0, ptr)?;
            let slot = &rec[ptr..];
            let name = match cstr_at(slot, 0) {
                Some(n) => n,
                None if strict => return None,
                None => slot,
            };
            if strict && crc >> 32 != 0 {
                return None;
            }
            Some(VersionEntry {
                name: dedot(name),
                crc,
            })
        })
        .collect()
}

/// Ubuntu's variable-length layout, terminated by an all-zero 8-byte entry.
fn variable_length(elf: &ElfFile, data: &[u8]) -> Option<Vec<VersionEntry>> {
    let mut out = Vec::new();
    let mut off = 0usize;
    loop {
        let next = elf.read_uint(data, off as u64, 4)? as usize;
        let crc = elf.read_uint(data, off as u64 + 4, 4)?;
        if next == 0 {
            return (crc == 0 && data[off..].iter().all(|&b| b == 0)).then_some(out);
        }
        if next < 12 || !next.is_multiple_of(4) {
            return None;
        }
        let rec = data.get(off..off.checked_add(next)?)?;
        let name = cstr_at(&rec[8..], 0)?;
        out.push(VersionEntry {
            name: dedot(name),
            crc,
        });
        off += next;
    }
}

/// kmod drops a leading `.` (ppc64 ELFv1 function descriptors).
fn dedot(name: &[u8]) -> String {
    let n = name.strip_prefix(b".").unwrap_or(name);
    String::from_utf8_lossy(n).into_owned()
}

/// `__version_ext_crcs` + `__version_ext_names` (6.14+).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum ExtVersions {
    Absent,
    Present { entries: Vec<VersionEntry> },
    Malformed { reason: String },
}

pub fn parse_ext(elf: &ElfFile) -> ExtVersions {
    let crcs = elf.section_by_name("__version_ext_crcs");
    let names = elf.section_by_name("__version_ext_names");
    let (crcs, names) = match (crcs, names) {
        (None, None) => return ExtVersions::Absent,
        (Some((_, c)), Some((_, n))) => (c, n),
        _ => {
            return ExtVersions::Malformed {
                reason: "extended version crc+name presence does not match".into(),
            };
        }
    };
    let (Some(crcs), Some(names)) = (crcs.data, names.data) else {
        return ExtVersions::Malformed {
            reason: "extended version sections have no contents".into(),
        };
    };
    let mut entries = Vec::with_capacity(crcs.len() / 4);
    let mut off = 0u64;
    for i in 0..crcs.len() / 4 {
        let crc = elf.read_uint(crcs, i as u64 * 4, 4).unwrap_or(0);
        let Some(name) = cstr_at(names, off) else {
            return ExtVersions::Malformed {
                reason: "more extended version crcs than names".into(),
            };
        };
        off += name.len() as u64 + 1;
        entries.push(VersionEntry {
            name: dedot(name),
            crc,
        });
    }
    ExtVersions::Present { entries }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::module::testelf::{Sec, build};

    fn parse_with(bits: u8, be: bool, secs: &[Sec]) -> (Versions, ExtVersions) {
        let img = build(bits, be, secs);
        let elf = ElfFile::parse(&img, |_| false).unwrap();
        (parse(&elf), parse_ext(&elf))
    }

    fn classic_record(bits: u8, be: bool, crc: u32, name: &str) -> Vec<u8> {
        let mut r = if bits == 64 {
            if be {
                (crc as u64).to_be_bytes().to_vec()
            } else {
                (crc as u64).to_le_bytes().to_vec()
            }
        } else if be {
            crc.to_be_bytes().to_vec()
        } else {
            crc.to_le_bytes().to_vec()
        };
        r.extend_from_slice(name.as_bytes());
        r.resize(RECORD, 0);
        r
    }

    #[test]
    fn classic_records_in_every_class_and_byte_order() {
        for (bits, be) in [(64, false), (64, true), (32, false), (32, true)] {
            let mut data = classic_record(bits, be, 0x1234_5678, "module_layout");
            data.extend(classic_record(bits, be, 0xdead_beef, ".dotted"));
            let (v, ext) = parse_with(
                bits,
                be,
                &[Sec {
                    name: "__versions",
                    alloc: true,
                    data,
                }],
            );
            let Versions::Present {
                format,
                alloc,
                entries,
            } = v
            else {
                panic!("{v:?}")
            };
            assert_eq!(format, VersionsFormat::Classic);
            assert!(alloc);
            assert_eq!(
                entries[0],
                VersionEntry {
                    name: "module_layout".into(),
                    crc: 0x1234_5678
                }
            );
            assert_eq!(
                entries[1].name, "dotted",
                "a leading dot is dropped as kmod does"
            );
            assert_eq!(ext, ExtVersions::Absent);
        }
    }

    #[test]
    fn cleared_alloc_bit_is_reported() {
        let data = classic_record(64, false, 1, "x");
        let (v, _) = parse_with(
            64,
            false,
            &[Sec {
                name: "__versions",
                alloc: false,
                data,
            }],
        );
        assert!(matches!(v, Versions::Present { alloc: false, .. }));
    }

    #[test]
    fn ubuntu_variable_length_records() {
        let mut data = Vec::new();
        for (crc, name) in [
            (0xaabbccddu32, "misc_register"),
            (
                7,
                "a_rather_long_symbol_name_beyond_fifty_five_bytes_for_sure_yes",
            ),
        ] {
            let mut n = name.as_bytes().to_vec();
            n.push(0);
            while n.len() % 4 != 0 {
                n.push(0);
            }
            data.extend(((8 + n.len()) as u32).to_le_bytes());
            data.extend(crc.to_le_bytes());
            data.extend(n);
        }
        data.extend([0u8; 8]);
        let (v, _) = parse_with(
            64,
            false,
            &[Sec {
                name: "__versions",
                alloc: true,
                data,
            }],
        );
        let Versions::Present {
            format, entries, ..
        } = v
        else {
            panic!("{v:?}")
        };
        assert_eq!(format, VersionsFormat::VariableLength);
        assert_eq!(entries.len(), 2);
        assert_eq!(
            entries[0],
            VersionEntry {
                name: "misc_register".into(),
                crc: 0xaabbccdd
            }
        );
        assert!(entries[1].name.len() > 55);
    }

    #[test]
    fn neither_layout_is_malformed() {
        let (v, _) = parse_with(
            64,
            false,
            &[Sec {
                name: "__versions",
                alloc: true,
                data: vec![1; 70],
            }],
        );
        assert!(matches!(v, Versions::Malformed { .. }), "{v:?}");
    }

    #[test]
    fn extended_modversions() {
        let long = "_RNvNtCs1234_4core3fmt9Formatter9write_str_with_a_very_long_rust_mangled_name";
        let mut crcs = Vec::new();
        crcs.extend(0x11111111u32.to_be_bytes());
        crcs.extend(0x22222222u32.to_be_bytes());
        let names = format!("printk\0{long}\0").into_bytes();
        let (_, ext) = parse_with(
            64,
            true,
            &[
                Sec {
                    name: "__version_ext_crcs",
                    alloc: true,
                    data: crcs.clone(),
                },
                Sec {
                    name: "__version_ext_names",
                    alloc: true,
                    data: names,
                },
            ],
        );
        let ExtVersions::Present { entries } = ext else {
            panic!("{ext:?}")
        };
        assert_eq!(
            entries[0],
            VersionEntry {
                name: "printk".into(),
                crc: 0x11111111
            }
        );
        assert_eq!(
            entries[1],
            VersionEntry {
                name: long.into(),
                crc: 0x22222222
            }
        );

        // more CRCs than names, and one section without the other: the kernel's two errors
        let (_, ext) = parse_with(
            64,
            false,
            &[
                Sec {
                    name: "__version_ext_crcs",
                    alloc: true,
                    data: crcs.clone(),
                },
                Sec {
                    name: "__version_ext_names",
                    alloc: true,
                    data: b"printk\0".to_vec(),
                },
            ],
        );
        assert_eq!(
            ext,
            ExtVersions::Malformed {
                reason: "more extended version crcs than names".into()
            }
        );
        let (_, ext) = parse_with(
            64,
            false,
            &[Sec {
                name: "__version_ext_crcs",
                alloc: true,
                data: crcs,
            }],
        );
        assert_eq!(
            ext,
            ExtVersions::Malformed {
                reason: "extended version crc+name presence does not match".into()
            }
        );
    }
}
