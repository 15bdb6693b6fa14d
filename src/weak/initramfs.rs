//! The file names inside an initramfs image: concatenated cpio `newc` archives (an
//! uncompressed early-microcode archive first, as dracut and initramfs-tools write it), each
//! plain or compressed with gzip, xz or zstd.
//!
//! The image is read as a stream: file contents are decompressed and thrown away as they
//! pass, never held. What it may cost is bounded: at most [`MAX_STREAM`] bytes are produced
//! at each level, compressed segments nest at most [`MAX_NESTING`] levels, at most
//! [`MAX_NAMES`] names are kept, and each decoder's window counts in the shared memory budget.

use crate::compress::{self, BUDGET, Compression};
use std::io::Read;

/// A compressed segment holds archives, which may end in another compressed segment: at
/// most a few levels in any real image.
pub const MAX_NESTING: usize = 4;
/// The most bytes read or decompressed at one level of an image (real images with firmware
/// are below 1 GiB uncompressed).
pub const MAX_STREAM: u64 = 4 << 30;
/// The most names kept.
pub const MAX_NAMES: usize = 1 << 20;
/// The longest name a cpio entry may have (`PATH_MAX`).
const MAX_NAME: usize = 4096;

/// Every path in the image (without a leading `./`), in archive order.
pub fn list(data: &[u8]) -> Result<Vec<String>, String> {
    scan(data, &|_| true)
}

/// The paths in the image read from `reader` for which `want` is true, in archive order.
pub fn scan(reader: impl Read, want: &dyn Fn(&str) -> bool) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let mut s = Stream::new(reader);
    level(&mut s, 0, want, &mut names)?;
    Ok(names)
}

/// A reader that can look a few bytes ahead and counts what it produced.
struct Stream<'a> {
    inner: Box<dyn Read + 'a>,
    buf: Vec<u8>,
    pos: usize,
    /// Bytes consumed so far.
    offset: u64,
}

impl<'a> Stream<'a> {
    fn new(inner: impl Read + 'a) -> Self {
        Stream {
            inner: Box::new(inner),
            buf: Vec::with_capacity(64 << 10),
            pos: 0,
            offset: 0,
        }
    }

    /// At least `n` bytes buffered, unless the input ends first: the bytes buffered.
    fn peek(&mut self, n: usize) -> Result<&[u8], String> {
        if self.buf.len() - self.pos < n {
            self.buf.drain(..self.pos);
            self.pos = 0;
            let mut chunk = [0u8; 16 << 10];
            while self.buf.len() < n {
                let got = match self.inner.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(k) => k,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(format!("at offset {}: {e}", self.offset)),
                };
                self.buf.extend_from_slice(&chunk[..got]);
            }
        }
        Ok(&self.buf[self.pos..])
    }

    fn consume(&mut self, n: usize) -> Result<(), String> {
        self.offset += n as u64;
        if self.offset > MAX_STREAM {
            return Err(format!(
                "more than {MAX_STREAM} bytes at one level: not an initramfs kabi inspects"
            ));
        }
        self.pos += n;
        Ok(())
    }

    /// Read and discard `n` bytes (a file's contents); false if the input ended first.
    fn skip(&mut self, mut n: u64) -> Result<bool, String> {
        while n > 0 {
            let have = self.peek(1)?.len();
            if have == 0 {
                return Ok(false);
            }
            let k = (have as u64).min(n) as usize;
            self.consume(k)?;
            n -= k as u64;
            if self.pos == self.buf.len() {
                self.buf.clear();
                self.pos = 0;
            }
        }
        Ok(true)
    }
}

impl Read for Stream<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos < self.buf.len() {
            let k = out.len().min(self.buf.len() - self.pos);
            out[..k].copy_from_slice(&self.buf[self.pos..self.pos + k]);
            self.pos += k;
            self.offset += k as u64;
            return Ok(k);
        }
        let k = self.inner.read(out)?;
        self.offset += k as u64;
        Ok(k)
    }
}

/// One level: archives, padding, then possibly a compressed segment (the next level).
fn level(
    s: &mut Stream<'_>,
    depth: usize,
    want: &dyn Fn(&str) -> bool,
    names: &mut Vec<String>,
) -> Result<(), String> {
    loop {
        // padding between archives
        loop {
            let b = s.peek(1)?;
            if b.is_empty() {
                return Ok(());
            }
            let zeros = b.iter().take_while(|&&x| x == 0).count();
            if zeros == 0 {
                break;
            }
            s.consume(zeros)?;
        }
        let at = s.offset;
        let head = s.peek(6)?;
        if head.starts_with(b"070701") || head.starts_with(b"070702") {
            archive(s, want, names)?;
            continue;
        }
        let kind = Compression::detect(head);
        return match kind {
            Some(Compression::None) | None => Err(format!(
                "at offset {at}: neither a cpio archive nor gzip, xz or zstd data"
            )),
            Some(_) if depth >= MAX_NESTING => Err(format!(
                "at offset {at}: compressed data nested more than {MAX_NESTING} levels deep"
            )),
            Some(kind) => {
                let head = s.peek(64)?.to_vec();
                segment(s, kind, &head, depth, want, names)
                    .map_err(|e| format!("at offset {at}: {e}"))
            }
        };
    }
}

/// A compressed segment: its decoder's state is taken from the budget while it runs.
fn segment(
    s: &mut Stream<'_>,
    kind: Compression,
    head: &[u8],
    depth: usize,
    want: &dyn Fn(&str) -> bool,
    names: &mut Vec<String>,
) -> Result<(), String> {
    let state = match kind {
        Compression::Xz => {
            compress::xz_dictionary(head)
                .unwrap_or(64 << 20)
                .min(compress::MAX_WINDOW)
                + (1 << 20)
        }
        Compression::Zstd => compress::zstd_frame(head)
            .map_or(compress::MAX_WINDOW, |h| h.window)
            .min(compress::MAX_WINDOW),
        _ => 256 << 10,
    };
    // the stream cannot be read twice, so wait for the budget right away (bounded)
    let (_, _lease) = BUDGET
        .run(|lease| lease.resize(state))
        .map_err(|e| e.to_string())?;
    match kind {
        Compression::Gzip => {
            let mut inner = Stream::new(flate2::read::MultiGzDecoder::new(s));
            level(&mut inner, depth + 1, want, names)
        }
        Compression::Xz => {
            let dec =
                liblzma::stream::Stream::new_stream_decoder(state, liblzma::stream::CONCATENATED)
                    .map_err(|e| e.to_string())?;
            let mut inner = Stream::new(liblzma::read::XzDecoder::new_stream(s, dec));
            level(&mut inner, depth + 1, want, names)
        }
        Compression::Zstd => {
            let mut dec = zstd::stream::read::Decoder::new(s).map_err(|e| e.to_string())?;
            dec.window_log_max(27).map_err(|e| e.to_string())?;
            let mut inner = Stream::new(dec);
            level(&mut inner, depth + 1, want, names)
        }
        Compression::None => Ok(()),
    }
}

/// One `newc` archive up to and including its trailer.
fn archive(
    s: &mut Stream<'_>,
    want: &dyn Fn(&str) -> bool,
    names: &mut Vec<String>,
) -> Result<(), String> {
    let pad = |n: u64| (4 - n % 4) % 4;
    loop {
        let at = s.offset;
        let h = s.peek(110)?;
        if h.len() < 110 {
            return Err(format!("cpio header at {at} is truncated"));
        }
        if !(h.starts_with(b"070701") || h.starts_with(b"070702")) {
            return Err(format!("bad cpio magic at {at}"));
        }
        let field = |i: usize| -> Result<u64, String> {
            let f = &h[6 + 8 * i..14 + 8 * i];
            std::str::from_utf8(f)
                .ok()
                .and_then(|t| u64::from_str_radix(t, 16).ok())
                .ok_or_else(|| format!("cpio header at {at}: bad field {i}"))
        };
        let filesize = field(6)?;
        let namesize = field(11)? as usize;
        if namesize == 0 || namesize > MAX_NAME {
            return Err(format!("cpio header at {at}: name size {namesize}"));
        }
        s.consume(110)?;
        let n = s.peek(namesize)?;
        if n.len() < namesize {
            return Err(format!("cpio name at {at} is truncated"));
        }
        let raw = &n[..namesize];
        let name = String::from_utf8_lossy(raw.strip_suffix(&[0]).unwrap_or(raw)).into_owned();
        s.consume(namesize)?;
        // the name ends aligned to 4 bytes counted from the header
        if !s.skip(pad(110 + namesize as u64))? {
            return Err(format!("cpio entry {name} is truncated"));
        }
        if name == "TRAILER!!!" {
            return Ok(());
        }
        let body = filesize + pad(filesize);
        if !s.skip(body)? {
            return Err(format!("cpio entry {name} is truncated"));
        }
        let name = name.trim_start_matches("./").to_string();
        if want(&name) {
            if names.len() >= MAX_NAMES {
                return Err(format!("more than {MAX_NAMES} files"));
            }
            names.push(name);
        }
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
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
        std::io::Write::write_all(&mut xz, &main).unwrap();
        let mut with_xz = img.clone();
        with_xz.extend(xz.finish().unwrap());
        for image in [with_zstd, with_gzip, with_xz] {
            assert_eq!(
                list(&image).unwrap(),
                [
                    "kernel/x86/microcode/GenuineIntel.bin",
                    "usr/lib/modules/k/weak-updates/v/kabi_vendor_a.ko",
                    "init"
                ]
            );
            let only: Vec<String> = scan(&image[..], &|n| n.ends_with(".ko")).unwrap();
            assert_eq!(only, ["usr/lib/modules/k/weak-updates/v/kabi_vendor_a.ko"]);
        }
        assert!(list(b"garbage").is_err());
        assert!(
            list(&main[..main.len() - 40]).is_err(),
            "a truncated archive"
        );
    }

    #[test]
    fn nesting_and_size_are_bounded() {
        // an archive of zeros, compressed into itself five times
        let mut data = cpio(&[("big", &vec![0u8; 1 << 20])]);
        for _ in 0..6 {
            data = zstd::encode_all(&data[..], 19).unwrap();
        }
        let e = list(&data).unwrap_err();
        assert!(e.contains("nested more than"), "{e}");
        // a file claiming 16 GiB in a small stream: truncated, found without reading 16 GiB
        let mut h = entry("huge", b"");
        h[6 + 8 * 6..14 + 8 * 6].copy_from_slice(b"ffffffff");
        let e = list(&h).unwrap_err();
        assert!(e.contains("truncated"), "{e}");
    }
}
