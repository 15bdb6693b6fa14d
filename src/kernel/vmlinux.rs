//! A kernel's exported ABI straight from its x86 `vmlinuz` (bzImage), without Module.symvers
//! (spec §6).
//!
//! The bzImage header locates the compressed payload (§6.1); the payload is `vmlinux` with its
//! symbols stripped but its section headers kept (§6.2), so the export tables `__ksymtab*`,
//! `__kcrctab*` and `__ksymtab_strings` are found by section name and decoded through the
//! sections' virtual addresses (§6.3, layouts and CRC encodings of §1.6).

use super::abi::KernelSymbol;
use crate::error::Error;
use serde::Serialize;
use std::path::Path;

pub use super::ksymtab::*;
pub use crate::bzimage::*;

/// What a `vmlinuz` says about its kernel.
#[derive(Debug, Clone, Serialize)]
pub struct VmlinuzAbi {
    /// The header's kernel version string (`6.1.0-56-amd64 (debian-kernel@…) #1 SMP …`).
    pub version: Option<String>,
    /// Every export of vmlinux, sorted by name.
    pub symbols: Vec<KernelSymbol>,
}

impl VmlinuzAbi {
    /// The kernel release: the first word of the version string.
    pub fn release(&self) -> Option<&str> {
        self.version.as_deref()?.split_whitespace().next()
    }
}

/// Read a `vmlinuz` (or an uncompressed `vmlinux`) and return its version string and exports.
pub fn read_vmlinuz(path: &Path) -> Result<VmlinuzAbi, Error> {
    let root = crate::root::Root::host()?;
    let abs = std::path::absolute(path).map_err(|e| Error::io(path, e))?;
    let data = root
        .read(&abs, crate::root::caps::IMAGE)
        .map_err(|e| match e {
            Error::Io { source, .. } => Error::io(path, source),
            e => e,
        })?;
    read_vmlinuz_bytes(&data, path)
}

/// [`read_vmlinuz`] on the bytes of the file `path` names (for messages).
pub fn read_vmlinuz_bytes(data: &[u8], path: &Path) -> Result<VmlinuzAbi, Error> {
    let (version, vmlinux) = payload(data).map_err(|e| Error::parse(path, e))?;
    let symbols = exports(&vmlinux).map_err(|e| Error::parse(path, e))?;
    Ok(VmlinuzAbi { version, symbols })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ParseError;
    use crate::module::ExportKind;
    use std::io::Write;

    /// A bzImage-like image: setup (2 sectors + boot sector), header fields, version string and
    /// `payload` at payload_offset 0x40 of the protected-mode code, followed by 16 bytes.
    fn image(payload: &[u8]) -> Vec<u8> {
        let setup_sects = 2u8;
        let pm = (setup_sects as usize + 1) * 512;
        let mut d = vec![0u8; pm + 0x40];
        d[0x1F1] = setup_sects;
        d[0x1FE..0x200].copy_from_slice(&0xAA55u16.to_le_bytes());
        d[0x202..0x206].copy_from_slice(b"HdrS");
        d[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
        d[0x20E..0x210].copy_from_slice(&(0x300u16 - 0x200).to_le_bytes());
        d[0x248..0x24C].copy_from_slice(&0x40u32.to_le_bytes());
        d[0x24C..0x250].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        let v = b"6.1.0-99-test (someone@example) #1 SMP\0";
        d[0x300..0x300 + v.len()].copy_from_slice(v);
        d.extend_from_slice(payload);
        d.extend_from_slice(&[0xCC; 16]);
        d
    }

    /// An ELF64 header without section headers, then 50 kB of data.
    fn fake_elf() -> Vec<u8> {
        let mut v = b"\x7fELF\x02\x01\x01".to_vec();
        v.resize(64, 0);
        v.extend((0..50_000u32).map(|i| (i % 251) as u8));
        v
    }

    /// A payload as the kernel build writes it: the stream, then the size as u32 LE.
    fn with_size(mut stream: Vec<u8>, size: usize) -> Vec<u8> {
        stream.extend_from_slice(&(size as u32).to_le_bytes());
        stream
    }

    fn lz4_legacy_encode(data: &[u8], block: usize) -> Vec<u8> {
        let mut out = LZ4_LEGACY_MAGIC.to_vec();
        for chunk in data.chunks(block) {
            let c = lz4_flex::block::compress(chunk);
            out.extend_from_slice(&(c.len() as u32).to_le_bytes());
            out.extend_from_slice(&c);
        }
        out
    }

    #[test]
    fn header_fields() {
        let img = image(b"payload!");
        let h = parse_header(&img).unwrap();
        assert_eq!(h.protocol, 0x020f);
        assert_eq!(h.setup_sects, 2);
        assert_eq!(h.payload, Some(3 * 512 + 0x40..3 * 512 + 0x48));
        assert_eq!(
            crate::bzimage::version_string(&img, &h).as_deref(),
            Some("6.1.0-99-test (someone@example) #1 SMP")
        );
        // setup_sects 0 means 4
        let mut img4 = img.clone();
        img4[0x1F1] = 0;
        img4.resize(img.len() + 4096, 0);
        let h = parse_header(&img4).unwrap();
        assert_eq!(h.setup_sects, 4);
        assert_eq!(h.payload, Some(5 * 512 + 0x40..5 * 512 + 0x48));
        // Protocol 2.07 has no payload fields.
        let mut old = img.clone();
        old[0x206] = 0x07;
        assert_eq!(parse_header(&old).unwrap().payload, None);
        let e = payload(&old).unwrap_err().to_string();
        assert!(e.contains("older than 2.08"), "{e}");
    }

    #[test]
    fn every_format_with_trailing_data() {
        let elf = fake_elf();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&elf).unwrap();
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
        xz.write_all(&elf).unwrap();
        let opts = liblzma::stream::LzmaOptions::new_preset(1).unwrap();
        let alone = liblzma::stream::Stream::new_lzma_encoder(&opts).unwrap();
        let mut lzma = liblzma::write::XzEncoder::new_stream(Vec::new(), alone);
        lzma.write_all(&elf).unwrap();
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        bz.write_all(&elf).unwrap();
        let streams = [
            ("gzip", gz.finish().unwrap()),
            ("xz", xz.finish().unwrap()),
            ("lzma", lzma.finish().unwrap()),
            ("bzip2", bz.finish().unwrap()),
            ("zstd", zstd::encode_all(&elf[..], 3).unwrap()),
            ("lz4", lz4_legacy_encode(&elf, 20_000)),
        ];
        for (name, s) in streams {
            let payload_bytes = with_size(s, elf.len());
            assert_eq!(
                PayloadFormat::detect(&payload_bytes).map(|f| f.name()),
                Some(name)
            );
            let (version, out) = payload(&image(&payload_bytes)).unwrap_or_else(|e| {
                panic!("{name}: {e}");
            });
            assert_eq!(out, elf, "{name}");
            assert!(version.unwrap().starts_with("6.1.0-99-test "));
        }
    }

    #[test]
    fn lz4_legacy_framing() {
        let data: Vec<u8> = (0..100_000u32)
            .flat_map(|i| (i / 7).to_le_bytes())
            .collect();
        // Several blocks, a repeated magic (a second archive), then the size trailer.
        let mut s = lz4_legacy_encode(&data[..150_000], 50_000);
        s.extend_from_slice(&lz4_legacy_encode(&data[150_000..], 70_000));
        let s = with_size(s, data.len());
        assert_eq!(lz4_legacy(&s, 1 << 30).unwrap(), data);
        // Trailing code after the trailer (as in a scanned image) is not a block either.
        let mut t = s.clone();
        t.extend_from_slice(&[
            0x10, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4, 5, 6, 7, 8,
        ]);
        t.extend_from_slice(&[0x90; 100]);
        assert_eq!(lz4_legacy(&t, 1 << 30).unwrap(), data);
        // The cap is enforced.
        assert!(matches!(
            lz4_legacy(&s, 1000),
            Err(ParseError::TooLarge { limit: 1000, .. })
        ));
        // Errors: wrong magic, magic only, a corrupt or truncated first block.
        assert!(lz4_legacy(b"\x02\x21\x4c\x19abcd", 1 << 20).is_err());
        assert!(lz4_legacy(&LZ4_LEGACY_MAGIC, 1 << 20).is_err());
        let mut bad = LZ4_LEGACY_MAGIC.to_vec();
        bad.extend_from_slice(&8u32.to_le_bytes());
        bad.extend_from_slice(&[0xf0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        let e = lz4_legacy(&bad, 1 << 20).unwrap_err().to_string();
        assert!(
            e.starts_with("lz4 data is corrupt: block at offset 4"),
            "{e}"
        );
        let e = lz4_legacy(&s[..100], 1 << 20).unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
    }

    #[test]
    fn scans_when_there_is_no_header() {
        let elf = fake_elf();
        let mut blob = vec![0x1f, 0x8b, 0x08, 0, 0, 0]; // a false gzip magic first
        blob.extend_from_slice(&[0x5d, 0, 0, 0, 1, 2, 3]); // and a false lzma one
        blob.extend_from_slice(&with_size(lz4_legacy_encode(&elf, 30_000), elf.len()));
        blob.extend_from_slice(&[0x55; 300]);
        let (version, out) = payload(&blob).unwrap();
        assert_eq!((version, out), (None, elf.clone()));
        // A header whose payload_offset is wrong: found by scanning, version still read.
        let mut img = image(&with_size(
            zstd::encode_all(&elf[..], 1).unwrap(),
            elf.len(),
        ));
        img[0x248] = 0x20;
        let (version, out) = payload(&img).unwrap();
        assert!(version.is_some());
        assert_eq!(out, elf);
        // An ELF is its own payload.
        assert_eq!(payload(&elf).unwrap().1, elf);
    }

    #[test]
    fn errors_say_what_was_expected() {
        assert!(matches!(payload(b""), Err(ParseError::Empty)));
        let e = payload(&[0x42u8; 5000]).unwrap_err().to_string();
        assert!(e.contains("not an x86 bzImage"), "{e}");
        assert!(
            e.contains("expected boot_flag 0xAA55 at offset 0x1FE"),
            "{e}"
        );
        let e = payload(b"short").unwrap_err().to_string();
        assert!(e.contains("only 5 bytes"), "{e}");

        let elf = fake_elf();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&elf).unwrap();
        let img = image(&with_size(gz.finish().unwrap(), elf.len()));
        let cut = &img[..img.len() - 500];
        let e = payload(cut).unwrap_err().to_string();
        assert!(e.contains("extends beyond the end of the file"), "{e}");
        assert!(e.contains("truncated"), "{e}");

        // A payload that is not compressed / not an ELF.
        let e = payload(&image(&[0x11; 64])).unwrap_err().to_string();
        assert!(e.contains("no known compression magic"), "{e}");
        let z = zstd::encode_all(&b"not an elf"[..], 1).unwrap();
        let e = payload(&image(&z)).unwrap_err().to_string();
        assert!(e.contains("not to an ELF vmlinux"), "{e}");
        // An ELF whose section headers lie beyond its end (a truncated vmlinux).
        let mut short = fake_elf();
        short[0x28..0x30].copy_from_slice(&100_000u64.to_le_bytes());
        short[0x3A] = 64;
        short[0x3C] = 30;
        let z = zstd::encode_all(&short[..], 1).unwrap();
        let e = payload(&image(&z)).unwrap_err().to_string();
        assert!(e.contains("incomplete ELF"), "{e}");
        assert!(e.contains("section headers end at byte 101920"), "{e}");

        // HdrS missing.
        let mut img = image(b"x");
        img[0x202] = b'h';
        let e = payload(&img).unwrap_err().to_string();
        assert!(e.contains("expected \"HdrS\" at offset 0x202"), "{e}");
    }

    // --- export tables --------------------------------------------------------------------

    struct Sec {
        name: &'static str,
        addr: u64,
        data: Vec<u8>,
    }

    /// A linked ELF executable with the given allocated PROGBITS sections and a `.shstrtab`.
    fn elf_exec(bits: u8, big: bool, secs: &[Sec]) -> Vec<u8> {
        let w = |v: u64, n: usize| -> Vec<u8> {
            let b = v.to_le_bytes()[..n].to_vec();
            if big {
                b.into_iter().rev().collect()
            } else {
                b
            }
        };
        let (eh, sh, p) = if bits == 64 { (64, 64, 8) } else { (52, 40, 4) };
        let mut shstr = vec![0u8];
        let mut name_offs = Vec::new();
        for n in secs.iter().map(|s| s.name).chain([".shstrtab"]) {
            name_offs.push(shstr.len() as u64);
            shstr.extend_from_slice(n.as_bytes());
            shstr.push(0);
        }
        let mut body = Vec::new();
        let mut placed = Vec::new();
        for d in secs.iter().map(|s| &s.data).chain([&shstr]) {
            while (eh + body.len()) % 8 != 0 {
                body.push(0);
            }
            placed.push((eh + body.len()) as u64);
            body.extend_from_slice(d);
        }
        while (eh + body.len()) % 8 != 0 {
            body.push(0);
        }
        let shoff = (eh + body.len()) as u64;
        let mut out = b"\x7fELF".to_vec();
        out.extend([if bits == 64 { 2 } else { 1 }, if big { 2 } else { 1 }, 1]);
        out.extend([0u8; 9]);
        out.extend(w(2, 2)); // ET_EXEC
        out.extend(w(62, 2));
        out.extend(w(1, 4));
        out.extend(w(0, p));
        out.extend(w(0, p));
        out.extend(w(shoff, p));
        out.extend(w(0, 4));
        out.extend(w(eh as u64, 2));
        out.extend(w(0, 2));
        out.extend(w(0, 2));
        out.extend(w(sh as u64, 2));
        out.extend(w(secs.len() as u64 + 2, 2));
        out.extend(w(secs.len() as u64 + 1, 2));
        out.extend(body);
        out.extend(vec![0u8; sh]);
        let all: Vec<(u64, u64, u64, u32, u64)> = secs
            .iter()
            .map(|s| (s.addr, s.data.len() as u64, 2u64, 1u32, 0))
            .chain([(0, shstr.len() as u64, 0, 3, 0)])
            .collect();
        for (i, (addr, size, flags, ty, _)) in all.into_iter().enumerate() {
            out.extend(w(name_offs[i], 4));
            out.extend(w(ty as u64, 4));
            if bits == 64 {
                out.extend(w(flags, 8));
                out.extend(w(addr, 8));
                out.extend(w(placed[i], 8));
                out.extend(w(size, 8));
                out.extend(w(0, 4));
                out.extend(w(0, 4));
                out.extend(w(1, 8));
                out.extend(w(0, 8));
            } else {
                out.extend(w(flags, 4));
                out.extend(w(addr, 4));
                out.extend(w(placed[i], 4));
                out.extend(w(size, 4));
                out.extend(w(0, 4));
                out.extend(w(0, 4));
                out.extend(w(1, 4));
                out.extend(w(0, 4));
            }
        }
        out
    }

    /// Strings section content and the offsets of `items` in it.
    fn strtab(items: &[&str]) -> (Vec<u8>, Vec<u64>) {
        let mut d = Vec::new();
        let mut offs = Vec::new();
        for s in items {
            offs.push(d.len() as u64);
            d.extend_from_slice(s.as_bytes());
            d.push(0);
        }
        (d, offs)
    }

    fn lines(syms: &[KernelSymbol]) -> Vec<String> {
        syms.iter().map(|s| s.symvers_line()).collect()
    }

    #[test]
    fn prel32_with_namespaces_and_crcs() {
        const STR: u64 = 0xffff_ffff_8200_0000;
        const TAB: u64 = 0xffff_ffff_8100_0000;
        const GPL: u64 = 0xffff_ffff_8100_1000;
        let (strings, o) = strtab(&["alpha", "", "beta", "NS_X", "gamma"]);
        let prel = |at: u64, target: u64| (target.wrapping_sub(at) as u32).to_le_bytes();
        let mut tab = Vec::new();
        for (i, (name, ns)) in [(o[0], Some(o[1])), (o[2], Some(o[3]))].iter().enumerate() {
            let e = TAB + 12 * i as u64;
            tab.extend(prel(e, 0xffff_ffff_8000_0000));
            tab.extend(prel(e + 4, STR + name));
            match ns {
                Some(n) => tab.extend(prel(e + 8, STR + n)),
                None => tab.extend([0; 4]),
            }
        }
        let mut gpl = Vec::new();
        gpl.extend(prel(GPL, 0xffff_ffff_8000_0000));
        gpl.extend(prel(GPL + 4, STR + o[4]));
        gpl.extend([0u8; 4]);
        let elf = elf_exec(
            64,
            false,
            &[
                Sec {
                    name: "__ksymtab",
                    addr: TAB,
                    data: tab,
                },
                Sec {
                    name: "__ksymtab_gpl",
                    addr: GPL,
                    data: gpl,
                },
                Sec {
                    name: "__kcrctab",
                    addr: 0xffff_ffff_8100_2000,
                    data: [0x11111111u32, 0x22222222]
                        .iter()
                        .flat_map(|c| c.to_le_bytes())
                        .collect(),
                },
                Sec {
                    name: "__kcrctab_gpl",
                    addr: 0xffff_ffff_8100_3000,
                    data: 0xdeadbeefu32.to_le_bytes().to_vec(),
                },
                Sec {
                    name: "__ksymtab_strings",
                    addr: STR,
                    data: strings,
                },
            ],
        );
        assert_eq!(
            lines(&exports(&elf).unwrap()),
            [
                "0x11111111\talpha\tvmlinux\tEXPORT_SYMBOL\t",
                "0x22222222\tbeta\tvmlinux\tEXPORT_SYMBOL\tNS_X",
                "0xdeadbeef\tgamma\tvmlinux\tEXPORT_SYMBOL_GPL\t",
            ]
        );
    }

    #[test]
    fn absolute_layouts_any_class_and_byte_order() {
        for (bits, big, ns) in [
            (64, false, true),
            (64, true, false),
            (32, false, true),
            (32, true, false),
        ] {
            let p = bits as usize / 8;
            let w = |v: u64| -> Vec<u8> {
                let b = v.to_le_bytes()[..p].to_vec();
                if big {
                    b.into_iter().rev().collect()
                } else {
                    b
                }
            };
            let w32 = |v: u32| {
                if big {
                    v.to_be_bytes()
                } else {
                    v.to_le_bytes()
                }
            };
            let str_va = 0xc200_0000u64;
            let (strings, o) = strtab(&["a_sym", "b_sym", "MYNS", "c_sym"]);
            let entry = |name: u64, nsoff: Option<u64>| {
                let mut e = w(0xc100_0000);
                e.extend(w(str_va + name));
                if ns {
                    e.extend(w(nsoff.map_or(0, |n| str_va + n)));
                }
                e
            };
            let mut tab = entry(o[0], None);
            tab.extend(entry(o[1], Some(o[2])));
            let gpl = entry(o[3], None);
            let mut secs = vec![
                Sec {
                    name: "__ksymtab",
                    addr: 0xc180_0000,
                    data: tab,
                },
                Sec {
                    name: "__ksymtab_gpl",
                    addr: 0xc180_1000,
                    data: gpl,
                },
                Sec {
                    name: "__kcrctab",
                    addr: 0xc180_2000,
                    data: [w32(1), w32(2)].concat(),
                },
                Sec {
                    name: "__ksymtab_strings",
                    addr: str_va,
                    data: strings,
                },
            ];
            if !ns {
                // Old kernels: no namespace field and no CRC table for the GPL table.
                secs.push(Sec {
                    name: ".data",
                    addr: 0xc300_0000,
                    data: vec![0; 8],
                });
            }
            let got = exports(&elf_exec(bits, big, &secs)).unwrap();
            let ns_b = if ns { "MYNS" } else { "" };
            assert_eq!(
                lines(&got),
                [
                    "0x00000001\ta_sym\tvmlinux\tEXPORT_SYMBOL\t".to_string(),
                    format!("0x00000002\tb_sym\tvmlinux\tEXPORT_SYMBOL\t{ns_b}"),
                    "0x00000000\tc_sym\tvmlinux\tEXPORT_SYMBOL_GPL\t".to_string(),
                ],
                "bits {bits} big {big} ns {ns}"
            );
            assert_eq!(got[2].crc, None);
        }
    }

    #[test]
    fn kflagstab_gives_gpl_ness() {
        let str_va = 0x1000u64;
        let (strings, o) = strtab(&["one", "two"]);
        let prel = |at: u64, target: u64| (target.wrapping_sub(at) as u32).to_le_bytes();
        let tab_va = 0x2000u64;
        let mut tab = Vec::new();
        for (i, off) in o.iter().enumerate() {
            let e = tab_va + 12 * i as u64;
            tab.extend(prel(e, 0x3000));
            tab.extend(prel(e + 4, str_va + off));
            tab.extend([0; 4]);
        }
        let elf = elf_exec(
            64,
            false,
            &[
                Sec {
                    name: "__ksymtab",
                    addr: tab_va,
                    data: tab,
                },
                Sec {
                    name: "__kflagstab",
                    addr: 0x4000,
                    data: vec![0, 1],
                },
                Sec {
                    name: "__ksymtab_strings",
                    addr: str_va,
                    data: strings,
                },
            ],
        );
        let got = exports(&elf).unwrap();
        assert_eq!(got[0].kind, ExportKind::Plain);
        assert_eq!(got[1].kind, ExportKind::Gpl);
    }

    #[test]
    fn malformed_tables_are_errors() {
        let (strings, _) = strtab(&["x"]);
        let no_tab = elf_exec(
            64,
            false,
            &[Sec {
                name: "__ksymtab_strings",
                addr: 0x1000,
                data: strings.clone(),
            }],
        );
        let e = exports(&no_tab).unwrap_err().to_string();
        assert!(e.starts_with("section __ksymtab: missing"), "{e}");
        let no_str = elf_exec(
            64,
            false,
            &[Sec {
                name: "__ksymtab",
                addr: 0x2000,
                data: vec![0; 12],
            }],
        );
        let e = exports(&no_str).unwrap_err().to_string();
        assert!(e.starts_with("section __ksymtab_strings: missing"), "{e}");
        // Entries that point nowhere.
        let bad = elf_exec(
            64,
            false,
            &[
                Sec {
                    name: "__ksymtab",
                    addr: 0x2000,
                    data: vec![0x55; 48],
                },
                Sec {
                    name: "__ksymtab_strings",
                    addr: 0x1000,
                    data: strings,
                },
            ],
        );
        let e = exports(&bad).unwrap_err().to_string();
        assert!(e.contains("no known entry layout"), "{e}");
        assert!(e.contains("not a string in __ksymtab_strings"), "{e}");
        assert!(exports(b"\x7fELF\x02\x01\x01").is_err());
        assert!(exports(b"not elf at all").is_err());
    }
}
