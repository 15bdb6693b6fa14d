//! rpm's header blob, as rpm stores one per installed package in its database.
//!
//! The layout (rpm's `lib/header.c`: `hdrblobInit`, `hdrblobVerifyRegion`,
//! `hdrblobVerifyInfo`, `hdrblobImport`), every number big-endian:
//!
//! ```text
//!   il: u32          number of index entries
//!   dl: u32          size of the data store in bytes
//!   il × { tag: u32, type: u32, offset: i32, count: u32 }     the index
//!   dl bytes         the data store
//! ```
//!
//! The first entry of a package header is normally a *region* tag (`HEADERIMMUTABLE`, 63, or
//! `HEADERIMAGE`/`HEADERSIGNATURES`): type BIN, count 16, its offset pointing at a 16-byte
//! *trailer* in the data store, itself an index entry whose negated offset is the size of the
//! region's index (`ril × 16`). The entries after the region's `ril` ones are "dribbles",
//! tags rpm added at install time (install time, file states, ...); a dribble replaces a
//! region entry of the same tag (and a dribble BASENAMES drops OLDFILENAMES), as
//! `hdrblobImport` does. A header without a region tag (an old v3 header) has only plain
//! entries.
//!
//! Every entry is checked before anything is read through it, with rpm's own limits: at most
//! 65535 entries, a data store under 256 MiB, the blob exactly `8 + 16 × il + dl` bytes, tags
//! from 100 up, known types, counts in 1..=dl (and under 2^20 for arrays), aligned offsets,
//! data that lies inside the store, strings NUL-terminated inside it, entries that do not
//! overlap each other or the region trailer. Nothing is allocated from a count that has not
//! been checked against the blob's size. rpm's final check that the entries pack the store
//! without gaps is not made: a reader gains nothing from refusing a header it can read.

use super::tag::{self, Type};

/// rpm's cap on the number of index entries (`HEADER_TAGS_MAX`).
pub const MAX_ENTRIES: u32 = 0xffff;
/// rpm's cap on the data store (`HEADER_DATA_MAX`).
pub const MAX_DATA: u32 = 0x0fff_ffff;
/// rpm's cap on the number of elements of an array entry (`HEADER_ARRAY_MAX`).
pub const MAX_ARRAY: u32 = 0x000f_ffff;

const ENTRY_SIZE: usize = 16;

/// What is wrong with a header blob (the caller names the database and the package).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("header blob of {0} bytes is shorter than its 8-byte intro")]
    TooShort(usize),
    #[error("header has {0} index entries, more than rpm's limit of 65535")]
    TooManyEntries(u32),
    #[error("header data store of {0} bytes exceeds rpm's limit of 256 MiB")]
    DataTooLarge(u32),
    #[error("header blob is {actual} bytes, its counts say 8 + 16 × {il} + {dl} = {expected}")]
    SizeMismatch {
        actual: usize,
        il: u32,
        dl: u32,
        expected: u64,
    },
    #[error("header has no index entries")]
    Empty,
    #[error("region tag {tag}: {reason}")]
    Region { tag: u32, reason: String },
    #[error("index entry {index} (tag {tag}, type {ty}, offset {offset}, count {count}): {reason}")]
    Entry {
        index: u32,
        tag: u32,
        ty: u32,
        offset: i32,
        count: u32,
        reason: &'static str,
    },
    #[error("tag {tag} has type {ty}, expected {expected}")]
    WrongType {
        tag: u32,
        ty: u32,
        expected: &'static str,
    },
}

/// One checked index entry.
#[derive(Debug, Clone, Copy)]
struct Entry {
    tag: u32,
    ty: Type,
    /// Offset of the data in the data store (checked: `offset + len <= dl`).
    offset: u32,
    count: u32,
    /// Length of the data in bytes (for strings, up to and including the last NUL).
    len: u32,
}

/// A parsed header: checked index entries over the blob's data store.
#[derive(Debug, Clone)]
pub struct Header<'a> {
    data: &'a [u8],
    /// The entries to look tags up in, sorted by tag, one per tag (dribbles already applied).
    entries: Vec<Entry>,
    region: Option<u32>,
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// The raw fields of index entry `i` (the caller checked that the index is inside the blob).
fn raw_entry(index: &[u8], i: u32) -> (u32, u32, i32, u32) {
    let at = i as usize * ENTRY_SIZE;
    let f = |k: usize| be32(index, at + 4 * k).unwrap_or(0);
    (f(0), f(1), f(2) as i32, f(3))
}

/// Length of `count` NUL-terminated strings starting at `from` in `data`, or None if the
/// store ends before the last NUL (rpm's `strtaglen`).
fn strings_len(data: &[u8], from: usize, count: u32) -> Option<u32> {
    let mut pos = from;
    for _ in 0..count {
        let rest = data.get(pos..)?;
        let nul = rest.iter().position(|&c| c == 0)?;
        pos += nul + 1;
    }
    u32::try_from(pos - from).ok()
}

/// The region a header's first entry opens (`HEADERIMAGE`, `HEADERSIGNATURES`, `HEADERIMMUTABLE`).
#[derive(Debug, Clone, Copy)]
struct Region {
    tag: u32,
    /// Entries in the region, the region tag included.
    ril: u32,
    /// End of the region's data (the trailer's end).
    rdl: u32,
}

/// The index and data store sizes (`il`, `dl`) of a blob, checked against its length and
/// rpm's limits.
fn sizes(blob: &[u8]) -> Result<(u32, u32), HeaderError> {
    let (Some(il), Some(dl)) = (be32(blob, 0), be32(blob, 4)) else {
        return Err(HeaderError::TooShort(blob.len()));
    };
    if il > MAX_ENTRIES {
        return Err(HeaderError::TooManyEntries(il));
    }
    if dl > MAX_DATA {
        return Err(HeaderError::DataTooLarge(dl));
    }
    let expected = 8 + ENTRY_SIZE as u64 * u64::from(il) + u64::from(dl);
    if blob.len() as u64 != expected {
        return Err(HeaderError::SizeMismatch {
            actual: blob.len(),
            il,
            dl,
            expected,
        });
    }
    if il == 0 {
        return Err(HeaderError::Empty);
    }
    Ok((il, dl))
}

/// The region, if the first entry is a region tag: its trailer checked as rpm's
/// `hdrblobVerifyRegion` does.
fn region(index: &[u8], data: &[u8], il: u32, dl: u32) -> Result<Option<Region>, HeaderError> {
    let (first_tag, first_ty, first_off, first_count) = raw_entry(index, 0);
    if !(tag::HEADERIMAGE..tag::HEADERREGIONS).contains(&first_tag) {
        return Ok(None);
    }
    let bad = |reason: String| HeaderError::Region {
        tag: first_tag,
        reason,
    };
    if first_ty != Type::Bin as u32 || first_count != ENTRY_SIZE as u32 {
        return Err(bad(format!(
            "type {first_ty} count {first_count}, expected BIN of 16 bytes"
        )));
    }
    let trailer_at = u32::try_from(first_off)
        .ok()
        .filter(|o| o.checked_add(ENTRY_SIZE as u32).is_some_and(|e| e <= dl))
        .ok_or_else(|| {
            bad(format!(
                "trailer offset {first_off} outside the data store of {dl} bytes"
            ))
        })?;
    let t = &data[trailer_at as usize..trailer_at as usize + ENTRY_SIZE];
    let (mut t_tag, t_ty, t_off, t_count) = raw_entry(t, 0);
    // old packages have HEADERIMAGE in the signature region's trailer (rpm fixes it up)
    if first_tag == tag::HEADERSIGNATURES && t_tag == tag::HEADERIMAGE {
        t_tag = tag::HEADERSIGNATURES;
    }
    if t_tag != first_tag || t_ty != Type::Bin as u32 || t_count != ENTRY_SIZE as u32 {
        return Err(bad(format!(
            "bad trailer: tag {t_tag} type {t_ty} offset {t_off} count {t_count}"
        )));
    }
    let region_index = t_off.checked_neg().and_then(|v| u32::try_from(v).ok());
    let Some(region_index) = region_index.filter(|v| v.is_multiple_of(ENTRY_SIZE as u32)) else {
        return Err(bad(format!("bad trailer offset {t_off}")));
    };
    let ril = region_index / ENTRY_SIZE as u32;
    if ril > il || ril == 0 {
        return Err(bad(format!("region of {ril} entries in a header of {il}")));
    }
    Ok(Some(Region {
        tag: first_tag,
        ril,
        rdl: trailer_at + ENTRY_SIZE as u32,
    }))
}

/// Index entry `i`, checked as rpm's `hdrblobVerifyInfo` does; `end`: where the previous
/// entry's data ended.
fn checked_entry(
    index: &[u8],
    data: &[u8],
    i: u32,
    end: u32,
    region: Option<Region>,
) -> Result<Entry, HeaderError> {
    let dl = data.len() as u32; // <= MAX_DATA, checked by `sizes`
    let (tag, ty_raw, off, count) = raw_entry(index, i);
    let err = |reason| HeaderError::Entry {
        index: i,
        tag,
        ty: ty_raw,
        offset: off,
        count,
        reason,
    };
    if tag < tag::HEADERI18NTABLE {
        return Err(err("tag below 100 (a second region or a negative tag)"));
    }
    let ty = Type::from_u32(ty_raw).ok_or_else(|| err("unknown data type"))?;
    if count == 0 || count > dl {
        return Err(err("count out of range"));
    }
    let offset = u32::try_from(off).map_err(|_| err("negative offset"))?;
    if offset > dl {
        return Err(err("offset outside the data store"));
    }
    if end > offset {
        return Err(err("data overlaps the previous entry's"));
    }
    if !offset.is_multiple_of(ty.align()) {
        return Err(err("misaligned offset"));
    }
    if ty != Type::Bin && count > MAX_ARRAY {
        return Err(err("array larger than rpm's limit of 2^20 elements"));
    }
    let len = match ty.size() {
        Some(size) => {
            let len = u64::from(size) * u64::from(count);
            if len > u64::from(dl - offset) {
                return Err(err("data runs past the data store"));
            }
            len as u32
        }
        None => {
            if ty == Type::String && count != 1 {
                return Err(err("STRING entry with a count other than 1"));
            }
            strings_len(data, offset as usize, count)
                .ok_or_else(|| err("strings run past the data store"))?
        }
    };
    if len == 0 {
        return Err(err("empty data"));
    }
    let end = offset + len; // <= dl, checked above
    if let Some(r) = region
        && end > r.rdl - ENTRY_SIZE as u32
        && offset < r.rdl
    {
        return Err(err("data overlaps the region trailer"));
    }
    Ok(Entry {
        tag,
        ty,
        offset,
        count,
        len,
    })
}

impl<'a> Header<'a> {
    /// Parse and check a header blob as stored in the rpm database (no magic, no lead).
    pub fn parse(blob: &'a [u8]) -> Result<Header<'a>, HeaderError> {
        let (il, dl) = sizes(blob)?;
        // sizes agree with the blob: these slices are in bounds
        let index_end = 8 + il as usize * ENTRY_SIZE;
        let index = &blob[8..index_end];
        let data = &blob[index_end..];
        let region = region(index, data, il, dl)?;
        // every other entry
        let first_data = u32::from(region.is_some());
        let mut entries: Vec<Entry> = Vec::with_capacity((il - first_data) as usize);
        let mut end = 0u32;
        for i in first_data..il {
            let entry = checked_entry(index, data, i, end, region)?;
            end = entry.offset + entry.len;
            if region.is_some_and(|r| i >= r.ril) {
                // a dribble replaces a region entry of the same tag (hdrblobImport)
                entries.retain(|e| e.tag != entry.tag);
                if entry.tag == tag::BASENAMES {
                    entries.retain(|e| e.tag != tag::OLDFILENAMES);
                }
            }
            entries.push(entry);
        }
        // sort by tag, first occurrence wins for duplicates within one group
        entries.sort_by_key(|e| e.tag);
        entries.dedup_by_key(|e| e.tag);
        Ok(Header {
            data,
            entries,
            region: region.map(|r| r.tag),
        })
    }

    /// The region tag of the header (63 for a package header), None for a legacy header.
    pub fn region_tag(&self) -> Option<u32> {
        self.region
    }

    /// The tags present (sorted, region tags excluded).
    pub fn tags(&self) -> impl Iterator<Item = u32> + '_ {
        self.entries.iter().map(|e| e.tag)
    }

    fn entry(&self, tag: u32) -> Option<&Entry> {
        self.entries
            .binary_search_by_key(&tag, |e| e.tag)
            .ok()
            .and_then(|i| self.entries.get(i))
    }

    fn bytes(&self, e: &Entry) -> &'a [u8] {
        // checked at parse time: offset + len <= data.len()
        self.data
            .get(e.offset as usize..(e.offset + e.len) as usize)
            .unwrap_or(&[])
    }

    /// The strings of a string-typed tag (STRING, STRING_ARRAY or I18NSTRING: rpm lets
    /// string tags disagree on the exact string type), without their NULs.
    pub fn strings(&self, tag: u32) -> Result<Option<Vec<&'a [u8]>>, HeaderError> {
        let Some(e) = self.entry(tag) else {
            return Ok(None);
        };
        if !e.ty.is_string() {
            return Err(HeaderError::WrongType {
                tag,
                ty: e.ty as u32,
                expected: "a string type",
            });
        }
        let bytes = self.bytes(e);
        // count strings were found in exactly these bytes: the split yields count + 1 parts
        let mut out = Vec::with_capacity(e.count as usize);
        out.extend(bytes.split(|&c| c == 0).take(e.count as usize));
        Ok(Some(out))
    }

    /// The first string of a string-typed tag (for I18NSTRING, the "C" locale's).
    pub fn string(&self, tag: u32) -> Result<Option<&'a [u8]>, HeaderError> {
        Ok(self.strings(tag)?.and_then(|v| v.into_iter().next()))
    }

    /// The values of an INT32 tag.
    pub fn u32s(&self, tag: u32) -> Result<Option<Vec<u32>>, HeaderError> {
        let Some(e) = self.entry(tag) else {
            return Ok(None);
        };
        if e.ty != Type::Int32 {
            return Err(HeaderError::WrongType {
                tag,
                ty: e.ty as u32,
                expected: "INT32",
            });
        }
        let bytes = self.bytes(e);
        Ok(Some(
            bytes
                .chunks_exact(4)
                .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ))
    }

    /// The first value of an INT32 tag.
    pub fn u32(&self, tag: u32) -> Result<Option<u32>, HeaderError> {
        let Some(e) = self.entry(tag) else {
            return Ok(None);
        };
        if e.ty != Type::Int32 {
            return Err(HeaderError::WrongType {
                tag,
                ty: e.ty as u32,
                expected: "INT32",
            });
        }
        Ok(be32(self.bytes(e), 0))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Build a blob from (tag, type, count, data) entries, with or without an immutable
    /// region around all of them, aligning data as rpm does. For tests only.
    pub(crate) fn build(entries: &[(u32, Type, u32, Vec<u8>)], region: bool) -> Vec<u8> {
        let mut index: Vec<[u32; 4]> = Vec::new();
        let mut data: Vec<u8> = Vec::new();
        for (tag, ty, count, bytes) in entries {
            while !data.len().is_multiple_of(ty.align() as usize) {
                data.push(0);
            }
            index.push([*tag, *ty as u32, data.len() as u32, *count]);
            data.extend_from_slice(bytes);
        }
        if region {
            let ril = index.len() as u32 + 1;
            let trailer_at = data.len() as u32;
            for w in [
                tag::HEADERIMMUTABLE,
                Type::Bin as u32,
                (-((ril * 16) as i32)) as u32,
                16,
            ] {
                data.extend_from_slice(&w.to_be_bytes());
            }
            index.insert(0, [tag::HEADERIMMUTABLE, Type::Bin as u32, trailer_at, 16]);
        }
        let mut blob = Vec::new();
        blob.extend_from_slice(&(index.len() as u32).to_be_bytes());
        blob.extend_from_slice(&(data.len() as u32).to_be_bytes());
        for e in &index {
            for w in e {
                blob.extend_from_slice(&w.to_be_bytes());
            }
        }
        blob.extend_from_slice(&data);
        blob
    }

    fn s(v: &str) -> Vec<u8> {
        let mut b = v.as_bytes().to_vec();
        b.push(0);
        b
    }

    fn sample(region: bool) -> Vec<u8> {
        build(
            &[
                (tag::NAME, Type::String, 1, s("foo")),
                (tag::VERSION, Type::String, 1, s("1.0")),
                (tag::EPOCH, Type::Int32, 1, 7u32.to_be_bytes().to_vec()),
                (
                    tag::BASENAMES,
                    Type::StringArray,
                    2,
                    [s("a"), s("b")].concat(),
                ),
            ],
            region,
        )
    }

    #[test]
    fn reads_region_and_legacy_headers() {
        for region in [true, false] {
            let blob = sample(region);
            let h = Header::parse(&blob).unwrap();
            assert_eq!(h.region_tag(), region.then_some(tag::HEADERIMMUTABLE));
            assert_eq!(h.string(tag::NAME).unwrap(), Some(&b"foo"[..]));
            assert_eq!(h.u32(tag::EPOCH).unwrap(), Some(7));
            assert_eq!(
                h.strings(tag::BASENAMES).unwrap().unwrap(),
                vec![&b"a"[..], &b"b"[..]]
            );
            assert_eq!(h.string(tag::RELEASE).unwrap(), None);
            assert!(matches!(
                h.u32(tag::NAME),
                Err(HeaderError::WrongType { tag: 1000, .. })
            ));
        }
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let blob = sample(true);
        for n in 0..blob.len() {
            assert!(Header::parse(&blob[..n]).is_err(), "prefix {n} accepted");
        }
    }

    #[test]
    fn lying_counts_are_refused() {
        let blob = sample(true);
        // il claims more entries than the blob has
        let mut b = blob.clone();
        b[0..4].copy_from_slice(&0xffffu32.to_be_bytes());
        assert!(matches!(
            Header::parse(&b),
            Err(HeaderError::SizeMismatch { .. })
        ));
        let mut b = blob.clone();
        b[0..4].copy_from_slice(&0x10000u32.to_be_bytes());
        assert_eq!(
            Header::parse(&b).unwrap_err(),
            HeaderError::TooManyEntries(0x10000)
        );
        // the string-array count of BASENAMES (entry 4) says a million strings
        let mut b = blob.clone();
        let at = 8 + 4 * 16 + 12;
        b[at..at + 4].copy_from_slice(&0xfffffu32.to_be_bytes());
        assert!(matches!(
            Header::parse(&b),
            Err(HeaderError::Entry { index: 4, .. })
        ));
        // an offset past the store
        let mut b = blob.clone();
        let at = 8 + 16 + 8;
        b[at..at + 4].copy_from_slice(&0x7fff_0000u32.to_be_bytes());
        assert!(matches!(
            Header::parse(&b),
            Err(HeaderError::Entry { index: 1, .. })
        ));
        // a trailer that does not say how large the region is
        let mut b = blob;
        let il = u32::from_be_bytes(b[0..4].try_into().unwrap()) as usize;
        let trailer = u32::from_be_bytes(b[16..20].try_into().unwrap()) as usize;
        let at = 8 + il * 16 + trailer + 8;
        b[at..at + 4].copy_from_slice(&0u32.to_be_bytes());
        assert!(matches!(
            Header::parse(&b),
            Err(HeaderError::Region { tag: 63, .. })
        ));
    }

    #[test]
    fn dribbles_replace_region_entries() {
        // region: NAME=foo, OLDFILENAMES; dribble: NAME=bar, BASENAMES
        let mut blob = build(
            &[
                (tag::NAME, Type::String, 1, s("foo")),
                (tag::OLDFILENAMES, Type::StringArray, 1, s("/x")),
            ],
            true,
        );
        // append two dribble entries after the region: patch il, dl, index and data
        let il = u32::from_be_bytes(blob[0..4].try_into().unwrap());
        let index_end = 8 + il as usize * 16;
        let mut index = blob[8..index_end].to_vec();
        let mut data = blob[index_end..].to_vec();
        for (tag, bytes) in [(tag::NAME, s("bar")), (tag::BASENAMES, s("y"))] {
            let ty = if tag == tag::NAME {
                Type::String
            } else {
                Type::StringArray
            };
            for w in [tag, ty as u32, data.len() as u32, 1] {
                index.extend_from_slice(&w.to_be_bytes());
            }
            data.extend_from_slice(&bytes);
        }
        blob.clear();
        blob.extend_from_slice(&(il + 2).to_be_bytes());
        blob.extend_from_slice(&(data.len() as u32).to_be_bytes());
        blob.extend_from_slice(&index);
        blob.extend_from_slice(&data);
        let h = Header::parse(&blob).unwrap();
        assert_eq!(h.string(tag::NAME).unwrap(), Some(&b"bar"[..]));
        assert_eq!(h.strings(tag::OLDFILENAMES).unwrap(), None);
        assert_eq!(h.strings(tag::BASENAMES).unwrap(), Some(vec![&b"y"[..]]));
    }
}
