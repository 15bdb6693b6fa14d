//! The x86 boot image (bzImage): its header, its version string and its compressed payload
//! (gzip, bzip2, xz, lzma, zstd, lz4 legacy), decompressed to the vmlinux ELF file (spec §6.1).

use crate::compress::{corrupt, read_capped};
use crate::error::ParseError;
use crate::module::elf::cstr_at;
use std::ops::Range;

/// The largest decompressed payload accepted; a real vmlinux is well below 512 MiB.
pub const VMLINUX_LIMIT: u64 = 512 * 1024 * 1024;

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
pub(crate) fn version_string(d: &[u8], h: &BootHeader) -> Option<String> {
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
        if decodes_to_elf(format, &data[i..])
            && let Ok(v) = decompress_hinted(format, &data[i..], VMLINUX_LIMIT, 0)
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

/// A streaming decoder of one `format` stream at the start of `data` (not LZ4 legacy or LZO,
/// which have no streaming decoder here).
fn decoder<'a>(
    format: PayloadFormat,
    data: &'a [u8],
) -> Result<Box<dyn std::io::Read + 'a>, ParseError> {
    let name = format.name();
    Ok(match format {
        PayloadFormat::Gzip => Box::new(flate2::read::GzDecoder::new(data)),
        PayloadFormat::Bzip2 => Box::new(bzip2::read::BzDecoder::new(data)),
        PayloadFormat::Xz => {
            let dec = liblzma::stream::Stream::new_stream_decoder(DECODER_MEMORY, 0)
                .map_err(|e| corrupt(name, e))?;
            Box::new(liblzma::read::XzDecoder::new_stream(data, dec))
        }
        PayloadFormat::Lzma => {
            let dec = liblzma::stream::Stream::new_lzma_decoder(DECODER_MEMORY)
                .map_err(|e| corrupt(name, e))?;
            Box::new(liblzma::read::XzDecoder::new_stream(data, dec))
        }
        PayloadFormat::Zstd => {
            let mut dec = zstd::stream::read::Decoder::with_buffer(data)
                .map_err(|e| corrupt(name, e))?
                .single_frame();
            dec.window_log_max(27).map_err(|e| corrupt(name, e))?;
            Box::new(dec)
        }
        PayloadFormat::Lzo => {
            return Err(corrupt(name, "LZO-compressed kernels are not supported"));
        }
        PayloadFormat::Lz4Legacy => return Err(corrupt(name, "no streaming decoder")),
    })
}

/// Does the `format` stream at the start of `data` begin with an ELF magic? Decodes only the
/// first bytes, so that a scan rejects a false magic without decoding the whole stream (an
/// LZMA "stream" of random bytes decodes to megabytes before its error).
fn decodes_to_elf(format: PayloadFormat, data: &[u8]) -> bool {
    let mut head = [0u8; ELF_MAGIC.len()];
    match format {
        PayloadFormat::Lzo => false,
        // Its first block is at most 8 MiB and decodes fast; the full decode decides.
        PayloadFormat::Lz4Legacy => true,
        _ => decoder(format, data).is_ok_and(|mut r| {
            let mut got = 0;
            while got < head.len() {
                match r.read(&mut head[got..]) {
                    Ok(0) => return false,
                    Ok(n) => got += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => return false,
                }
            }
            head == *ELF_MAGIC
        }),
    }
}

/// `decompress` with a guess of the output size for the first allocation (0: none).
fn decompress_hinted(
    format: PayloadFormat,
    data: &[u8],
    limit: u64,
    hint: u64,
) -> Result<Vec<u8>, ParseError> {
    match format {
        PayloadFormat::Lz4Legacy => lz4_legacy_hinted(data, limit, hint.min(limit)),
        _ => read_capped(
            || decoder(format, data),
            format.name(),
            data.len(),
            limit,
            Some(hint.min(limit)),
        ),
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

#[cfg(test)]
mod probe_tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn the_scan_probe_decodes_only_to_the_elf_magic() {
        let elf = b"\x7fELF\x02\x01\x01rest of an elf file".repeat(100);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&elf).unwrap();
        let gz = gz.finish().unwrap();
        assert!(decodes_to_elf(PayloadFormat::Gzip, &gz));
        let mut not_elf = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        not_elf.write_all(b"MZ not an elf").unwrap();
        assert!(!decodes_to_elf(
            PayloadFormat::Gzip,
            &not_elf.finish().unwrap()
        ));
        assert!(decodes_to_elf(
            PayloadFormat::Zstd,
            &zstd::encode_all(&elf[..], 1).unwrap()
        ));
        // A false LZMA magic followed by noise: rejected from its first bytes.
        let mut noise = vec![
            0x5d, 0, 0, 0x80, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ];
        let mut x = 0x1234_5678u32;
        noise.extend((0..100_000).map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        }));
        assert!(!decodes_to_elf(PayloadFormat::Lzma, &noise));
        assert!(!decodes_to_elf(PayloadFormat::Lzo, b"\x89LZO\0"));
        // Truncated before four bytes of output: no.
        assert!(!decodes_to_elf(PayloadFormat::Gzip, &gz[..12]));
    }
}
