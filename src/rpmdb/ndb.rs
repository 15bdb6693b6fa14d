//! The ndb backend (`Packages.db`: rpm's own format, `lib/backend/ndb/rpmpkg.c`; SUSE's default
//! from SLE 15 SP3 / openSUSE until the move to SQLite). The other file of the backend,
//! `Index.db`, holds indexes derived from the headers and is not needed.
//!
//! Layout, every number little-endian, the file a whole number of 16-byte blocks:
//!
//! ```text
//!   0     header: magic "RpmP", version 0, generation, slotnpages, nextpkgidx (32 bytes,
//!         the first two slots of the first page)
//!   32    slots up to slotnpages × 4096: { magic "Slot", pkgidx, blkoff, blkcnt }, 16 bytes
//!         each; blkoff 0 is a free slot
//!   ...   blobs, each at blkoff × 16 spanning blkcnt × 16 bytes:
//!         head { "BlbS", pkgidx, generation, bloblen }, the header blob (bloblen bytes),
//!         zero padding, tail { adler32 of everything before it, bloblen, "BlbE" }
//! ```
//!
//! Checked as rpm checks them (`rpmpkgReadHeader`, `rpmpkgReadSlots`, `rpmpkgReadBlob`):
//! magic and version, file size a multiple of 16, every slot's magic, used slots inside the
//! file and past the slot pages, `blkcnt` exactly what `bloblen` needs, head and tail agreeing
//! on pkgidx, length and magic, and the Adler-32 checksum. Packages are listed in the order of
//! their blobs in the file, as rpm's `rpmpkgList` does. The parsing functions are pure (bytes
//! in); [`NdbDb`] does the reading, one blob at a time with `pread`, so memory stays bounded by
//! the largest blob rather than the file.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::RpmDbError;
use super::header::Header;
use super::package::Package;

pub const HEADER_SIZE: usize = 32;
pub const SLOT_SIZE: usize = 16;
pub const BLK_SIZE: u64 = 16;
pub const PAGE_SIZE: usize = 4096;
const BLOBHEAD_SIZE: u64 = 16;
const BLOBTAIL_SIZE: u64 = 12;

const PKGDB_MAGIC: u32 = u32::from_le_bytes(*b"RpmP");
const SLOT_MAGIC: u32 = u32::from_le_bytes(*b"Slot");
const BLOBHEAD_MAGIC: u32 = u32::from_le_bytes(*b"BlbS");
const BLOBTAIL_MAGIC: u32 = u32::from_le_bytes(*b"BlbE");

/// What is wrong with a `Packages.db` (the caller names the file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NdbError {
    #[error("shorter than the 32-byte ndb header")]
    TooShort,
    #[error("not an ndb package database (bad magic)")]
    BadMagic,
    #[error("ndb version {0}, expected 0")]
    Version(u32),
    #[error("size {0} is not a multiple of 16 bytes")]
    Size(u64),
    #[error("{slotnpages} slot pages do not fit in a file of {size} bytes")]
    SlotPages { slotnpages: u32, size: u64 },
    #[error("slot {0}: bad magic")]
    SlotMagic(usize),
    #[error("slot {slot} (package {pkgidx}): blocks {blkoff}+{blkcnt} {reason}")]
    Slot {
        slot: usize,
        pkgidx: u32,
        blkoff: u32,
        blkcnt: u32,
        reason: &'static str,
    },
    #[error("package {pkgidx}: {reason}")]
    Blob { pkgidx: u32, reason: &'static str },
}

fn le32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(s) => u32::from_le_bytes([s[0], s[1], s[2], s[3]]),
        None => 0,
    }
}

/// The file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NdbHeader {
    pub generation: u32,
    pub slotnpages: u32,
    pub nextpkgidx: u32,
}

/// Parse the 32-byte header of a file of `size` bytes.
pub fn parse_header(b: &[u8], size: u64) -> Result<NdbHeader, NdbError> {
    if b.len() < HEADER_SIZE || size < HEADER_SIZE as u64 {
        return Err(NdbError::TooShort);
    }
    if le32(b, 0) != PKGDB_MAGIC {
        return Err(NdbError::BadMagic);
    }
    let version = le32(b, 4);
    if version != 0 {
        return Err(NdbError::Version(version));
    }
    if !size.is_multiple_of(BLK_SIZE) {
        return Err(NdbError::Size(size));
    }
    let h = NdbHeader {
        generation: le32(b, 8),
        slotnpages: le32(b, 12),
        nextpkgidx: le32(b, 16),
    };
    if h.slotnpages == 0 || u64::from(h.slotnpages) * PAGE_SIZE as u64 > size {
        return Err(NdbError::SlotPages {
            slotnpages: h.slotnpages,
            size,
        });
    }
    Ok(h)
}

/// A used slot: where package `pkgidx`'s blob lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub pkgidx: u32,
    pub blkoff: u32,
    pub blkcnt: u32,
}

/// The used slots of the slot pages `pages` (`slotnpages × 4096` bytes from the start of a
/// file of `size` bytes), sorted by blob offset (rpm's list order).
pub fn parse_slots(pages: &[u8], slotnpages: u32, size: u64) -> Result<Vec<Slot>, NdbError> {
    let need = slotnpages as usize * PAGE_SIZE;
    let Some(pages) = pages.get(..need) else {
        return Err(NdbError::SlotPages { slotnpages, size });
    };
    let fileblks = size / BLK_SIZE;
    let minblkoff = u64::from(slotnpages) * (PAGE_SIZE as u64 / BLK_SIZE);
    let mut slots = Vec::new();
    for (i, s) in pages
        .chunks_exact(SLOT_SIZE)
        .enumerate()
        .skip(HEADER_SIZE / SLOT_SIZE)
    {
        if le32(s, 0) != SLOT_MAGIC {
            return Err(NdbError::SlotMagic(i));
        }
        let (pkgidx, blkoff, blkcnt) = (le32(s, 4), le32(s, 8), le32(s, 12));
        if blkoff == 0 {
            continue;
        }
        let bad = |reason| NdbError::Slot {
            slot: i,
            pkgidx,
            blkoff,
            blkcnt,
            reason,
        };
        if u64::from(blkoff) + u64::from(blkcnt) > fileblks {
            return Err(bad("run past the end of the file (truncated database)"));
        }
        if pkgidx == 0 || blkcnt == 0 || u64::from(blkoff) < minblkoff {
            return Err(bad("are not a valid entry"));
        }
        slots.push(Slot {
            pkgidx,
            blkoff,
            blkcnt,
        });
    }
    slots.sort_by_key(|s| s.blkoff);
    Ok(slots)
}

/// Adler-32 (RFC 1950), as rpm checksums ndb blobs (a checksum, not a cryptographic hash).
pub fn adler32(data: &[u8]) -> u32 {
    const MOD: u32 = 65521;
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(5552) {
        for &x in chunk {
            a += u32::from(x);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

/// The header blob inside a slot's `blkcnt × 16` bytes.
pub fn parse_blob<'a>(region: &'a [u8], slot: &Slot) -> Result<&'a [u8], NdbError> {
    let bad = |reason| NdbError::Blob {
        pkgidx: slot.pkgidx,
        reason,
    };
    let total = u64::from(slot.blkcnt) * BLK_SIZE;
    if region.len() as u64 != total || total < BLOBHEAD_SIZE + BLOBTAIL_SIZE {
        return Err(bad("blob area too small"));
    }
    if le32(region, 0) != BLOBHEAD_MAGIC {
        return Err(bad("bad blob head magic"));
    }
    if le32(region, 4) != slot.pkgidx {
        return Err(bad("blob head names another package"));
    }
    let bloblen = u64::from(le32(region, 12));
    if u64::from(slot.blkcnt) != (BLOBHEAD_SIZE + bloblen + BLOBTAIL_SIZE).div_ceil(BLK_SIZE) {
        return Err(bad("blob length does not match its block count"));
    }
    let tail_at = region.len() - BLOBTAIL_SIZE as usize;
    let tail = &region[tail_at..];
    if le32(tail, 8) != BLOBTAIL_MAGIC {
        return Err(bad("bad blob tail magic"));
    }
    if u64::from(le32(tail, 4)) != bloblen {
        return Err(bad("blob head and tail disagree on the length"));
    }
    if le32(tail, 0) != adler32(&region[..tail_at]) {
        return Err(bad("Adler-32 checksum mismatch"));
    }
    // bloblen + head + tail <= region.len(), checked through blkcnt above
    Ok(&region[BLOBHEAD_SIZE as usize..BLOBHEAD_SIZE as usize + bloblen as usize])
}

/// Every header blob of a whole `Packages.db` held in memory, in rpm's order (for the fuzz
/// target and small files; [`NdbDb`] reads files blob by blob).
pub fn blobs(file: &[u8]) -> Result<Vec<(u32, &[u8])>, NdbError> {
    let size = file.len() as u64;
    let h = parse_header(file, size)?;
    let slots = parse_slots(file, h.slotnpages, size)?;
    let mut out = Vec::with_capacity(slots.len());
    for s in &slots {
        let start = s.blkoff as usize * BLK_SIZE as usize;
        let end = start + s.blkcnt as usize * BLK_SIZE as usize;
        // parse_slots checked blkoff + blkcnt <= size / 16
        let region = file.get(start..end).ok_or(NdbError::Blob {
            pkgidx: s.pkgidx,
            reason: "blob outside the file",
        })?;
        out.push((s.pkgidx, parse_blob(region, s)?));
    }
    Ok(out)
}

/// An open `Packages.db`.
pub struct NdbDb {
    file: File,
    path: PathBuf,
    size: u64,
    slots: Vec<Slot>,
}

impl NdbDb {
    /// Read the header and the slot pages of `file` (opened and checked to be a regular file;
    /// `path` names it in messages).
    pub fn open(file: File, path: &Path) -> Result<NdbDb, RpmDbError> {
        let io = |source| RpmDbError::Io {
            path: path.to_path_buf(),
            source,
        };
        let bad = |e: NdbError| RpmDbError::Ndb {
            path: path.to_path_buf(),
            source: e,
        };
        let size = file.metadata().map_err(io)?.len();
        let mut head = [0u8; HEADER_SIZE];
        if size >= HEADER_SIZE as u64 {
            file.read_exact_at(&mut head, 0).map_err(io)?;
        }
        let h = parse_header(&head, size).map_err(bad)?;
        // slotnpages × 4096 <= size, checked by parse_header
        let mut pages = vec![0u8; h.slotnpages as usize * PAGE_SIZE];
        file.read_exact_at(&mut pages, 0).map_err(io)?;
        let slots = parse_slots(&pages, h.slotnpages, size).map_err(bad)?;
        Ok(NdbDb {
            file,
            path: path.to_path_buf(),
            size,
            slots,
        })
    }

    /// Every installed package, in rpm's order.
    pub fn packages(&self) -> Result<Vec<Package>, RpmDbError> {
        let mut out = Vec::with_capacity(self.slots.len());
        let mut buf = Vec::new();
        for s in &self.slots {
            let len = u64::from(s.blkcnt) * BLK_SIZE;
            let off = u64::from(s.blkoff) * BLK_SIZE;
            if off + len > self.size {
                return Err(RpmDbError::Ndb {
                    path: self.path.clone(),
                    source: NdbError::Blob {
                        pkgidx: s.pkgidx,
                        reason: "blob outside the file",
                    },
                });
            }
            buf.resize(len as usize, 0);
            self.file
                .read_exact_at(&mut buf, off)
                .map_err(|source| RpmDbError::Io {
                    path: self.path.clone(),
                    source,
                })?;
            let blob = parse_blob(&buf, s).map_err(|source| RpmDbError::Ndb {
                path: self.path.clone(),
                source,
            })?;
            let pkg = Header::parse(blob)
                .map_err(Into::into)
                .and_then(|h| Package::from_header(s.pkgidx, &h))
                .map_err(|source| RpmDbError::Package {
                    path: self.path.clone(),
                    instance: s.pkgidx,
                    source,
                })?;
            out.push(pkg);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adler32_known_values() {
        assert_eq!(adler32(b""), 1);
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
        let big = vec![0xffu8; 100_000];
        // reference: zlib's adler32 of 100000 bytes of 0xff
        let (mut a, mut b) = (1u64, 0u64);
        for &x in &big {
            a = (a + u64::from(x)) % 65521;
            b = (b + a) % 65521;
        }
        assert_eq!(adler32(&big), ((b << 16) | a) as u32);
    }

    #[test]
    fn short_and_foreign_files_are_refused() {
        assert_eq!(blobs(b"").unwrap_err(), NdbError::TooShort);
        assert_eq!(blobs(&[0u8; 64]).unwrap_err(), NdbError::BadMagic);
        let mut h = [0u8; 48];
        h[..4].copy_from_slice(b"RpmP");
        h[12..16].copy_from_slice(&1000u32.to_le_bytes());
        assert!(matches!(blobs(&h), Err(NdbError::SlotPages { .. })));
    }
}
