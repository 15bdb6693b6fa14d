//! The file names inside an initramfs image: concatenated cpio `newc` archives (an
//! uncompressed early-microcode archive first, as dracut and initramfs-tools write it), each
//! plain or compressed with gzip, xz or zstd.

use crate::compress::{self, Compression};

/// Every path in the image (without a leading `./`), in archive order.
pub fn list(data: &[u8]) -> Result<Vec<String>, String> {
    list_at(data, 0)
}

/// A compressed segment holds archives, which may end in another compressed segment: at
/// most a few levels in any real image.
const MAX_NESTING: usize = 4;

fn list_at(data: &[u8], depth: usize) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let mut pos = 0;
    loop {
        while pos < data.len() && data[pos] == 0 {
            pos += 1; // padding between archives
        }
        let rest = &data[pos..];
        if rest.is_empty() {
            return Ok(names);
        }
        if rest.starts_with(b"070701") || rest.starts_with(b"070702") {
            pos += archive(rest, &mut names)?;
            continue;
        }
        return match Compression::detect(rest) {
            Some(_) if depth >= MAX_NESTING => Err(format!(
                "at offset {pos}: compressed data nested more than {MAX_NESTING} levels deep"
            )),
            Some(kind) if kind != Compression::None => {
                let inner = compress::decompress(kind, rest, compress::DEFAULT_LIMIT * 4)
                    .map_err(|e| format!("at offset {pos}: {e}"))?;
                names.extend(list_at(&inner, depth + 1)?);
                Ok(names)
            }
            _ => Err(format!(
                "at offset {pos}: neither a cpio archive nor gzip, xz or zstd data"
            )),
        };
    }
}

/// One `newc` archive up to and including its trailer: the bytes it takes.
fn archive(data: &[u8], names: &mut Vec<String>) -> Result<usize, String> {
    let align = |n: usize| n.div_ceil(4) * 4;
    let mut pos = 0;
    loop {
        let h = data
            .get(pos..pos + 110)
            .ok_or_else(|| format!("cpio header at {pos} is truncated"))?;
        if !(h.starts_with(b"070701") || h.starts_with(b"070702")) {
            return Err(format!("bad cpio magic at {pos}"));
        }
        let field = |i: usize| -> Result<usize, String> {
            let s = std::str::from_utf8(&h[6 + 8 * i..14 + 8 * i]).map_err(|e| e.to_string())?;
            usize::from_str_radix(s, 16).map_err(|e| format!("cpio header at {pos}: {e}"))
        };
        let filesize = field(6)?;
        let namesize = field(11)?;
        let name_end = pos
            .checked_add(110 + namesize)
            .ok_or("cpio name size overflows")?;
        let name = data
            .get(pos + 110..name_end)
            .ok_or_else(|| format!("cpio name at {pos} is truncated"))?;
        let name = String::from_utf8_lossy(name.strip_suffix(&[0]).unwrap_or(name)).into_owned();
        let data_start = align(name_end);
        let next = data_start
            .checked_add(align(filesize))
            .ok_or("cpio file size overflows")?;
        if name == "TRAILER!!!" {
            return Ok(data_start.min(data.len()));
        }
        if next > data.len() + 3 {
            return Err(format!("cpio entry {name} is truncated"));
        }
        names.push(name.trim_start_matches("./").to_string());
        pos = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, body: &[u8]) -> Vec<u8> {
        let mut v = format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            1,
            0o100644,
            0,
            0,
            1,
            0,
            body.len(),
            0,
            0,
            0,
            0,
            name.len() + 1,
            0
        )
        .into_bytes();
        v.extend_from_slice(name.as_bytes());
        v.push(0);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v.extend_from_slice(body);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    fn cpio(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut v = Vec::new();
        for (n, b) in files {
            v.extend(entry(n, b));
        }
        v.extend(entry("TRAILER!!!", b""));
        v
    }

    #[test]
    fn early_microcode_then_compressed_main_archive() {
        let mut img = cpio(&[("kernel/x86/microcode/GenuineIntel.bin", b"ucode")]);
        img.resize(512, 0);
        let main = cpio(&[
            (
                "./usr/lib/modules/k/weak-updates/v/kabi_vendor_a.ko",
                b"\x7fELF",
            ),
            ("init", b"#!/bin/sh"),
        ]);
        let mut with_zstd = img.clone();
        with_zstd.extend(zstd::encode_all(&main[..], 3).unwrap());
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &main).unwrap();
        let mut with_gzip = img.clone();
        with_gzip.extend(gz.finish().unwrap());
        for image in [with_zstd, with_gzip] {
            assert_eq!(
                list(&image).unwrap(),
                [
                    "kernel/x86/microcode/GenuineIntel.bin",
                    "usr/lib/modules/k/weak-updates/v/kabi_vendor_a.ko",
                    "init"
                ]
            );
        }
        assert!(list(b"garbage").is_err());
        assert!(
            list(&main[..main.len() - 40]).is_err(),
            "a truncated archive"
        );
    }
}
