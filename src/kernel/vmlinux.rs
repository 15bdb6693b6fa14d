//! A kernel's exported ABI straight from its x86 `vmlinuz` (bzImage), without Module.symvers
//! (spec §6).
//!
//! The bzImage header locates the compressed payload (§6.1); the payload is `vmlinux` with its
//! symbols stripped but its section headers kept (§6.2), so the export tables `__ksymtab*`,
//! `__kcrctab*` and `__ksymtab_strings` are found by section name and decoded through the
//! sections' virtual addresses (§6.3, layouts and CRC encodings of §1.6).

use super::abi::{KernelSymbol, VMLINUX};
use crate::compress::{corrupt, read_capped};
use crate::error::{Error, ParseError};
use crate::module::ExportKind;
use crate::module::elf::{ElfFile, Section, cstr_at};
use serde::Serialize;
use std::ops::Range;
use std::path::Path;

/// The largest decompressed payload accepted; a real vmlinux is well below 512 MiB.
pub const VMLINUX_LIMIT: u64 = 512 * 1024 * 1024;

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

// ---------------------------------------------------------------------------------------------
// bzImage header and payload (spec §6.1)

/// The fields of the x86 boot header this module uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootHeader {
    /// Boot protocol version, e.g. 0x020f.
    pub protocol: u16,
    /// Real-mode setup size in sectors (0 in the file already replaced by 4).
    pub setup_sects: u32,
    /// File offset of the version string, if the header has one.
    pub version_offset: Option<usize>,
    /// File range of the compressed payload (protocol 2.08+).
    pub payload: Option<Range<usize>>,
}

const BOOT_FLAG_AT: usize = 0x1FE;
const HDRS_AT: usize = 0x202;

fn le16(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(d.get(at..at + 2)?.try_into().ok()?))
}

fn le32(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(d.get(at..at + 4)?.try_into().ok()?))
}

fn bz_error(reason: impl Into<String>) -> ParseError {
    ParseError::Decompress {
        format: "bzImage",
        reason: reason.into(),
    }
}

/// Check the boot signature and read the header. A payload that lies outside the file is an
/// error (a truncated image); a protocol too old to locate it gives `payload: None`.
pub fn parse_header(d: &[u8]) -> Result<BootHeader, ParseError> {
    match le16(d, BOOT_FLAG_AT) {
        Some(0xAA55) => {}
        Some(v) => {
            return Err(bz_error(format!(
                "expected boot_flag 0xAA55 at offset 0x1FE, found 0x{v:04X}"
            )));
        }
        None => {
            return Err(bz_error(format!(
                "expected a boot header at offset 0x1F1, but the file has only {} bytes",
                d.len()
            )));
        }
    }
    match d.get(HDRS_AT..HDRS_AT + 4) {
        Some(b"HdrS") => {}
        other => {
            return Err(bz_error(format!(
                "expected \"HdrS\" at offset 0x202, found {}",
                other.map_or_else(|| "the end of the file".to_string(), hex)
            )));
        }
    }
    let protocol = le16(d, 0x206).ok_or_else(|| bz_error("boot header ends before 0x208"))?;
    let setup_sects = match d[0x1F1] {
        0 => 4,
        n => n as u32,
    };
    let version_offset = le16(d, 0x20E)
        .filter(|&p| p != 0 && protocol >= 0x200)
        .map(|p| p as usize + 0x200);
    let payload = if protocol >= 0x208 {
        let (Some(off), Some(len)) = (le32(d, 0x248), le32(d, 0x24C)) else {
            return Err(bz_error(format!(
                "boot protocol {}.{:02} has payload_offset/payload_length at 0x248, but the file \
                 has only {} bytes",
                protocol >> 8,
                protocol & 0xff,
                d.len()
            )));
        };
        let start = (setup_sects as u64 + 1) * 512 + off as u64;
        let end = start + len as u64;
        if len == 0 {
            return Err(bz_error("payload_length (at 0x24C) is 0"));
        }
        if end > d.len() as u64 {
            return Err(bz_error(format!(
                "the payload (file offset {start}, payload_length {len}) extends beyond the end \
                 of the file ({} bytes): the image is truncated",
                d.len()
            )));
        }
        Some(start as usize..end as usize)
    } else {
        None
    };
    Ok(BootHeader {
        protocol,
        setup_sects,
        version_offset,
        payload,
    })
}

/// The header's version string, if present and terminated within 512 bytes.
fn version_string(d: &[u8], h: &BootHeader) -> Option<String> {
    let off = h.version_offset?;
    let window = d.get(off..d.len().min(off + 512))?;
    let s = cstr_at(window, 0)?;
    let s = String::from_utf8_lossy(s).trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The version string and the decompressed `vmlinux` of a bzImage.
///
/// The payload is found through the header; if the header is missing, too old or its payload
/// does not decompress to an ELF, the image is scanned for compression magics (as
/// `scripts/extract-vmlinux` does) and each candidate tried until one yields an ELF. An input
/// that already is an ELF is returned as is.
pub fn payload(bzimage: &[u8]) -> Result<(Option<String>, Vec<u8>), ParseError> {
    if bzimage.is_empty() {
        return Err(ParseError::Empty);
    }
    if bzimage.starts_with(ELF_MAGIC) {
        return Ok((None, bzimage.to_vec()));
    }
    let header = parse_header(bzimage);
    let version = header
        .as_ref()
        .ok()
        .and_then(|h| version_string(bzimage, h));
    let first_error = match &header {
        Ok(BootHeader {
            payload: Some(range),
            ..
        }) => match decompress_elf(&bzimage[range.clone()], range.start) {
            Ok(v) => return Ok((version, v)),
            Err(e) => Some(e),
        },
        Ok(h) => Some(bz_error(format!(
            "boot protocol {}.{:02} is older than 2.08 (no payload_offset)",
            h.protocol >> 8,
            h.protocol & 0xff
        ))),
        Err(_) => None,
    };
    if let Some(v) = scan(bzimage) {
        return Ok((version, v));
    }
    Err(match (first_error, header) {
        // The header located a payload: its error is the informative one.
        (Some(e), _) => e,
        (None, Err(ParseError::Decompress { reason, .. })) => bz_error(format!(
            "not an x86 bzImage ({reason}), and no compressed ELF was found by scanning for \
             gzip, bzip2, lzma, xz, lz4 or zstd magics"
        )),
        (None, Err(e)) => e,
        (None, Ok(_)) => bz_error("no payload found"),
    })
}

const ELF_MAGIC: &[u8] = b"\x7fELF";

/// Payload compression formats, recognised by magic (spec §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadFormat {
    Gzip,
    Bzip2,
    Lzma,
    Xz,
    Lzo,
    Lz4Legacy,
    Zstd,
}

/// The magics `scripts/extract-vmlinux` scans for.
const MAGICS: &[(PayloadFormat, &[u8])] = &[
    (PayloadFormat::Gzip, &[0x1f, 0x8b, 0x08]),
    (PayloadFormat::Xz, &[0xfd, b'7', b'z', b'X', b'Z', 0x00]),
    (PayloadFormat::Bzip2, b"BZh"),
    (PayloadFormat::Lzma, &[0x5d, 0x00, 0x00]),
    (PayloadFormat::Lzo, &[0x89, b'L', b'Z', b'O', 0x00]),
    (PayloadFormat::Lz4Legacy, &LZ4_LEGACY_MAGIC),
    (PayloadFormat::Zstd, &[0x28, 0xb5, 0x2f, 0xfd]),
];

impl PayloadFormat {
    pub fn detect(data: &[u8]) -> Option<PayloadFormat> {
        MAGICS
            .iter()
            .find(|(_, m)| data.starts_with(m))
            .map(|(f, _)| *f)
    }

    pub fn name(self) -> &'static str {
        match self {
            PayloadFormat::Gzip => "gzip",
            PayloadFormat::Bzip2 => "bzip2",
            PayloadFormat::Lzma => "lzma",
            PayloadFormat::Xz => "xz",
            PayloadFormat::Lzo => "lzo",
            PayloadFormat::Lz4Legacy => "lz4",
            PayloadFormat::Zstd => "zstd",
        }
    }
}

/// Decompress a payload found at file offset `at` and check that it is an ELF.
fn decompress_elf(data: &[u8], at: usize) -> Result<Vec<u8>, ParseError> {
    let Some(format) = PayloadFormat::detect(data) else {
        return Err(bz_error(format!(
            "the payload at file offset {at} starts with {}, which is no known compression \
             magic (gzip, bzip2, lzma, xz, lzo, lz4, zstd)",
            hex(&data[..data.len().min(8)])
        )));
    };
    // The kernel build appends the decompressed size (u32 LE) to the payload: a good first
    // allocation when plausible.
    let hint = le32(data, data.len().saturating_sub(4))
        .map(|n| n as u64)
        .filter(|&n| n <= (data.len() as u64).saturating_mul(32))
        .unwrap_or(0);
    let out = decompress_hinted(format, data, VMLINUX_LIMIT, hint)?;
    if !out.starts_with(ELF_MAGIC) {
        return Err(ParseError::elf(format!(
            "the {} payload at file offset {at} decompresses to {} bytes starting with {}, \
             not to an ELF vmlinux (is this an x86 bzImage?)",
            format.name(),
            out.len(),
            hex(&out[..out.len().min(8)])
        )));
    }
    if let Err(e) = complete_elf(&out) {
        return Err(ParseError::elf(format!(
            "the {} payload at file offset {at} decompresses to an incomplete ELF: {e}",
            format.name()
        )));
    }
    Ok(out)
}

/// Does the ELF reach its section header table? (A truncated stream gives a prefix.)
fn complete_elf(d: &[u8]) -> Result<(), String> {
    let big = d.get(5) == Some(&2);
    let rd = |at: usize, n: usize| -> Option<u64> {
        let b = d.get(at..at + n)?;
        Some(if big {
            b.iter().fold(0, |v, &x| (v << 8) | x as u64)
        } else {
            b.iter().rev().fold(0, |v, &x| (v << 8) | x as u64)
        })
    };
    let (shoff, shentsize, shnum) = match d.get(4) {
        Some(2) => (rd(0x28, 8), rd(0x3A, 2), rd(0x3C, 2)),
        Some(1) => (rd(0x20, 4), rd(0x2E, 2), rd(0x30, 2)),
        _ => return Err("unknown ELF class".into()),
    };
    let (Some(shoff), Some(shentsize), Some(shnum)) = (shoff, shentsize, shnum) else {
        return Err(format!(
            "only {} bytes, shorter than an ELF header",
            d.len()
        ));
    };
    let end = shoff.saturating_add(shentsize * shnum);
    if end > d.len() as u64 {
        return Err(format!(
            "its section headers end at byte {end}, but it has only {} bytes (truncated)",
            d.len()
        ));
    }
    Ok(())
}

/// Try every compression magic in the image, in file order, until one decompresses to an ELF.
fn scan(data: &[u8]) -> Option<Vec<u8>> {
    const MAX_ATTEMPTS: usize = 256;
    let mut attempts = 0;
    for i in 0..data.len() {
        let Some(format) = PayloadFormat::detect(&data[i..]) else {
            continue;
        };
        if format == PayloadFormat::Lzo {
            continue;
        }
        attempts += 1;
        if attempts > MAX_ATTEMPTS {
            return None;
        }
        if let Ok(v) = decompress_hinted(format, &data[i..], VMLINUX_LIMIT, 0)
            && v.starts_with(ELF_MAGIC)
            && complete_elf(&v).is_ok()
        {
            return Some(v);
        }
    }
    None
}

/// The most memory an xz or lzma decoder of a kernel image may use (its dictionary: the
/// kernel's own images use at most 32 MiB).
const DECODER_MEMORY: u64 = crate::compress::MAX_WINDOW + (1 << 20);

/// Decompress one stream of `format` at the start of `data`, ignoring whatever follows it (a
/// bzImage appends the decompressed size, and a scanned stream is followed by more code).
pub fn decompress(format: PayloadFormat, data: &[u8], limit: u64) -> Result<Vec<u8>, ParseError> {
    decompress_hinted(format, data, limit, 0)
}

/// `decompress` with a guess of the output size for the first allocation (0: none).
fn decompress_hinted(
    format: PayloadFormat,
    data: &[u8],
    limit: u64,
    hint: u64,
) -> Result<Vec<u8>, ParseError> {
    let name = format.name();
    let hint = hint.min(limit);
    match format {
        PayloadFormat::Gzip => read_capped(
            || Ok(flate2::read::GzDecoder::new(data)),
            name,
            data.len(),
            limit,
            Some(hint),
        ),
        PayloadFormat::Bzip2 => read_capped(
            || Ok(bzip2::read::BzDecoder::new(data)),
            name,
            data.len(),
            limit,
            Some(hint),
        ),
        PayloadFormat::Xz => read_capped(
            || {
                let dec = liblzma::stream::Stream::new_stream_decoder(DECODER_MEMORY, 0)
                    .map_err(|e| corrupt(name, e))?;
                Ok(liblzma::read::XzDecoder::new_stream(data, dec))
            },
            name,
            data.len(),
            limit,
            Some(hint),
        ),
        PayloadFormat::Lzma => read_capped(
            || {
                let dec = liblzma::stream::Stream::new_lzma_decoder(DECODER_MEMORY)
                    .map_err(|e| corrupt(name, e))?;
                Ok(liblzma::read::XzDecoder::new_stream(data, dec))
            },
            name,
            data.len(),
            limit,
            Some(hint),
        ),
        PayloadFormat::Zstd => read_capped(
            || {
                let mut dec = zstd::stream::read::Decoder::with_buffer(data)
                    .map_err(|e| corrupt(name, e))?
                    .single_frame();
                dec.window_log_max(27).map_err(|e| corrupt(name, e))?;
                Ok(dec)
            },
            name,
            data.len(),
            limit,
            Some(hint),
        ),
        PayloadFormat::Lz4Legacy => lz4_legacy_hinted(data, limit, hint),
        PayloadFormat::Lzo => Err(corrupt(name, "LZO-compressed kernels are not supported")),
    }
}

/// The magic of the LZ4 legacy format (`lz4 -l`), 0x184C2102 little-endian.
pub const LZ4_LEGACY_MAGIC: [u8; 4] = [0x02, 0x21, 0x4c, 0x18];
/// Every block of the legacy format decompresses to at most 8 MiB.
pub const LZ4_LEGACY_BLOCK: usize = 8 << 20;

/// Decode the LZ4 legacy format the kernel uses: the magic, then blocks of
/// `[u32 LE compressed length][raw LZ4 block]`. A repeated magic starts a new archive. The
/// stream ends at the end of the input or at a length that cannot be a block (0, longer than
/// the worst case of an 8 MiB block, or — with nothing after it — the bzImage's size trailer).
pub fn lz4_legacy(data: &[u8], limit: u64) -> Result<Vec<u8>, ParseError> {
    lz4_legacy_hinted(data, limit, 0)
}

fn lz4_legacy_hinted(data: &[u8], limit: u64, hint: u64) -> Result<Vec<u8>, ParseError> {
    const NAME: &str = "lz4";
    if !data.starts_with(&LZ4_LEGACY_MAGIC) {
        return Err(corrupt(NAME, "expected the legacy magic 02 21 4c 18"));
    }
    let bound = lz4_flex::block::get_maximum_output_size(LZ4_LEGACY_BLOCK);
    let mut out: Vec<u8> = Vec::with_capacity(hint.min(limit) as usize);
    let mut pos = 4usize;
    let mut blocks = 0usize;
    while let Some(len) = le32(data, pos) {
        if len.to_le_bytes() == LZ4_LEGACY_MAGIC {
            pos += 4;
            continue;
        }
        let len = len as usize;
        let body = pos + 4;
        let rest = data.len() - body;
        if len == 0 || len > bound || rest == 0 {
            break;
        }
        if len > rest {
            if blocks == 0 {
                return Err(corrupt(
                    NAME,
                    format!(
                        "block at offset {pos} is {len} bytes long, but only {rest} bytes follow \
                         (truncated)"
                    ),
                ));
            }
            break;
        }
        let start = out.len();
        if start as u64 >= limit {
            return Err(ParseError::TooLarge {
                format: NAME,
                limit,
            });
        }
        out.resize(start + LZ4_LEGACY_BLOCK, 0);
        match lz4_flex::block::decompress_into(&data[body..body + len], &mut out[start..]) {
            Ok(n) => out.truncate(start + n),
            Err(e) => {
                out.truncate(start);
                if blocks == 0 {
                    return Err(corrupt(NAME, format!("block at offset {pos}: {e}")));
                }
                // Data after the stream that happens to look like a block length.
                break;
            }
        }
        if out.len() as u64 > limit {
            return Err(ParseError::TooLarge {
                format: NAME,
                limit,
            });
        }
        blocks += 1;
        pos = body + len;
    }
    if blocks == 0 {
        return Err(corrupt(NAME, "no block follows the magic"));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Export tables of a stripped vmlinux (spec §6.3)

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

#[cfg(test)]
mod tests {
    use super::*;
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
            version_string(&img, &h).as_deref(),
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
