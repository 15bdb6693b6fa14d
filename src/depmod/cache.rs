//! The scan cache: what [`super::scan`] extracted from each module file, keyed by the file's
//! path and identity (size, mtime, ctime, inode, device), so that a rescan of an unchanged
//! tree reads no module.
//!
//! The cache is a derived file and is never trusted: a wrong magic, another format or kabi
//! version, a bad checksum or any decoding error makes it empty, and the scan rebuilds it.
//!
//! It also records the last run's [`Fingerprint`]: a hash of every input and the identity of
//! every file written. When both still hold, the outputs are exactly what a new run would
//! write, and there is nothing to do.
//!
//! Layout (integers little-endian): `KABISCAN`, u32 format, u32 length of the version
//! string, the version string; then two checksummed blocks, each as u64 length, u32 CRC-32,
//! bytes: the fingerprint (u64 input hash, u32 count of outputs, each name and
//! [`FileKey`], u32 count of messages, each u8 level and text, then u8 0, or 1 and the
//! [`Tree`]: the root's path; u32 count of top directories, each path, u64 device, u64
//! inode and u32 count of entries, each name and u8 kind; u32 count of paths looked at, each path, u8 resolution,
//! u8 kind and [`FileKey`]; u32 count of files, each path shown, path, u8 resolution and
//! [`FileKey`]; paths and names as u32 length and bytes) and the payload: u32 count,
//! then per file: path, [`FileKey`], u8 state (0 parsed, 1 error), then either the error
//! text or the record: its text (every string of it, one after another: the exports' names,
//! the dependency symbols' names, the `.modinfo` values), then the exports (u32 count; each
//! u32 length of its name in the text, u64 CRC), the dependency symbols (u32 count; each
//! length, u64 CRC, u8 weak 0 or 1) and the `.modinfo` records (u32 count; each u8 key,
//! length). The lengths must add up to the text's, each string whole characters.

use super::scan::{InfoKey, Record, Span};
use rustc_hash::FxHashMap;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

const MAGIC: &[u8; 8] = b"KABISCAN";
const FORMAT: u32 = 4;
/// Extraction rules belong to this build: another build's cache is not reused. The build is
/// known by the version and the identity of the running executable.
pub fn build_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let exe = std::env::current_exe()
            .and_then(std::fs::metadata)
            .map(|m| format!("{}:{}.{}", m.size(), m.mtime(), m.mtime_nsec()))
            .unwrap_or_default();
        format!("{} {exe}", env!("CARGO_PKG_VERSION"))
    })
}

/// What identifies one state of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileKey {
    pub size: u64,
    pub mtime: (i64, u32),
    pub ctime: (i64, u32),
    pub ino: u64,
    pub dev: u64,
}

impl FileKey {
    pub fn of(m: &std::fs::Metadata) -> FileKey {
        FileKey {
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec() as u32),
            ctime: (m.ctime(), m.ctime_nsec() as u32),
            ino: m.ino(),
            dev: m.dev(),
        }
    }
}

impl From<&crate::root::Stat> for FileKey {
    fn from(s: &crate::root::Stat) -> FileKey {
        FileKey {
            size: s.size,
            mtime: s.mtime,
            ctime: s.ctime,
            ino: s.ino,
            dev: s.dev,
        }
    }
}

/// The most kabi reads of a cache file (a whole amd64 tree's is about 2 MB).
pub const CACHE_CAP: u64 = 256 << 20;

/// The result of scanning one file: its record, or the error text.
pub type Scanned = Result<Arc<Record>, String>;

#[derive(Debug, Default, Clone)]
pub struct Cache {
    pub entries: FxHashMap<String, (FileKey, Scanned)>,
    /// The paths whose entries were taken from the old cache as they were (its record
    /// decoded, the file's key unchanged): [`Cache::encode_records_reusing`] copies their
    /// encoded bytes from it instead of encoding them again.
    pub reused: rustc_hash::FxHashSet<String>,
    pub fingerprint: Fingerprint,
}

/// A cache's records block, encoded, with its CRC-32: in pieces, each either bytes this run
/// encoded or a run of entries of the old cache's file, written from where they lie there
/// (a cache where a few files changed is then written without copying the megabytes of the
/// others into a buffer, which costs a page fault per 4 KiB).
pub struct Records<'o> {
    /// What this run encoded.
    new: Vec<u8>,
    /// The old cache's file.
    old: &'o [u8],
    pieces: Vec<Piece>,
    pub crc: u32,
}

/// A piece of a records block: a range of [`Records::new`] or of [`Records::old`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    New(std::ops::Range<usize>),
    Old(std::ops::Range<usize>),
}

/// The most pieces a records block is written in (one `writev`, an `iovec` each): beyond,
/// its pieces are copied into one buffer.
const MAX_PIECES: usize = 64;

impl Records<'_> {
    /// Its pieces, in order.
    pub fn pieces(&self) -> Vec<&[u8]> {
        self.pieces
            .iter()
            .map(|p| match p {
                Piece::New(r) => &self.new[r.clone()],
                Piece::Old(r) => &self.old[r.clone()],
            })
            .collect()
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.pieces.iter().map(|p| p.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Its bytes, in one buffer.
    pub fn to_vec(&self) -> Vec<u8> {
        self.pieces().concat()
    }

    /// The same bytes, none of them borrowed from the old file.
    fn owned(self) -> Records<'static> {
        if self.pieces.iter().all(|p| matches!(p, Piece::New(_))) {
            return Records {
                new: self.new,
                old: &[],
                pieces: self.pieces,
                crc: self.crc,
            };
        }
        let all = self.to_vec();
        Records {
            pieces: vec![Piece::New(0..all.len())],
            new: all,
            old: &[],
            crc: self.crc,
        }
    }

    /// Add bytes this run encoded (`new[from..]`, just written there).
    fn push_new(&mut self, from: usize) {
        let to = self.new.len();
        match self.pieces.last_mut() {
            Some(Piece::New(r)) if r.end == from => r.end = to,
            _ if from == to => {}
            _ => self.pieces.push(Piece::New(from..to)),
        }
    }

    /// Add a range of the old file.
    fn push_old(&mut self, at: std::ops::Range<usize>) {
        match self.pieces.last_mut() {
            Some(Piece::Old(r)) if r.end == at.start => r.end = at.end,
            _ => self.pieces.push(Piece::Old(at)),
        }
    }
}

impl Piece {
    fn len(&self) -> usize {
        match self {
            Piece::New(r) | Piece::Old(r) => r.len(),
        }
    }
}

/// What the last run read and wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// Hash of every input (see `depmod::input_hash`); 0 when unknown.
    pub inputs: u64,
    /// Each file written (or confirmed) by that run, with its identity afterwards.
    pub outputs: Vec<(String, FileKey)>,
    /// The run's messages: (0 warning, 1 error; text).
    pub messages: Vec<(u8, String)>,
    /// The run's walk, when it can be checked again without reading it (see
    /// [`super::snapshot`]).
    pub tree: Option<Tree>,
}

/// A walk as [`super::snapshot`] checks it again: what it found in its top directories,
/// the identity of every directory it entered below them, and the files it chose.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tree {
    /// The root's path (absolute links are resolved against it).
    pub root: Vec<u8>,
    /// Each top directory.
    pub tops: Vec<TopRecord>,
    /// Each other path the walk looked at below them (directories, links, where links
    /// lead): path inside the root, how to resolve it (a [`resolve`] code), kind code, key.
    pub paths: Vec<(Vec<u8>, u8, u8, FileKey)>,
    /// Each chosen module file, in order: path shown, path inside the root, how to resolve
    /// it, key.
    pub files: Vec<(String, Vec<u8>, u8, FileKey)>,
}

/// A top directory of a recorded walk.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TopRecord {
    /// Inside the root, as the walk was given it.
    pub rel: Vec<u8>,
    /// The directory's device and inode.
    pub dev: u64,
    pub ino: u64,
    /// Its relevant entries, in `readdir` order: name, kind code.
    pub entries: Vec<(Vec<u8>, u8)>,
}

/// How a path of a [`Tree`] is resolved to check it again.
pub mod resolve {
    /// The entry itself, below the top directory whose path begins it (or the root).
    pub const ITSELF: u8 = 0;
    /// Links followed inside the root, the last one too (an entry that is a link).
    pub const FOLLOW: u8 = 1;
    /// Links on the way followed inside the root, not the last one (an entry in a directory
    /// reached through a link).
    pub const IN_ROOT: u8 = 2;
}

fn resolve(r: &mut Reader) -> Option<u8> {
    r.u8().filter(|&c| c <= resolve::IN_ROOT)
}

impl Tree {
    /// The most entries all top directories of a recorded walk hold together (a Debian
    /// tree's has a few): a walk with more is not recorded, a cache with more is refused
    /// (what it would take to decode stays within a few megabytes).
    pub const MAX_TOP_ENTRIES: usize = 1 << 16;

    fn encode(&self, p: &mut Vec<u8>) {
        put_bytes(p, &self.root);
        put_u32(p, self.tops.len() as u32);
        for t in &self.tops {
            put_bytes(p, &t.rel);
            put_u64(p, t.dev);
            put_u64(p, t.ino);
            put_u32(p, t.entries.len() as u32);
            for (name, kind) in &t.entries {
                put_bytes(p, name);
                p.push(*kind);
            }
        }
        put_u32(p, self.paths.len() as u32);
        for (rel, how, kind, key) in &self.paths {
            put_bytes(p, rel);
            p.push(*how);
            p.push(*kind);
            put_key(p, key);
        }
        put_u32(p, self.files.len() as u32);
        for (shown, rel, how, key) in &self.files {
            put_str(p, shown);
            put_bytes(p, rel);
            p.push(*how);
            put_key(p, key);
        }
    }

    fn decode(r: &mut Reader) -> Option<Tree> {
        let root = r.bytes()?.to_vec();
        let n = r.count(24)?;
        if n > super::snapshot::MAX_TOPS {
            return None;
        }
        let mut tops = Vec::with_capacity(n);
        let mut left = Tree::MAX_TOP_ENTRIES;
        for _ in 0..n {
            let rel = r.bytes()?.to_vec();
            let (dev, ino) = (r.u64()?, r.u64()?);
            let m = r.count(5)?;
            left = left.checked_sub(m)?;
            let mut entries = Vec::with_capacity(m);
            for _ in 0..m {
                entries.push((r.bytes()?.to_vec(), r.u8()?));
            }
            tops.push(TopRecord {
                rel,
                dev,
                ino,
                entries,
            });
        }
        let n = r.count(54)?;
        let mut paths = Vec::with_capacity(n);
        for _ in 0..n {
            paths.push((r.bytes()?.to_vec(), resolve(r)?, r.u8()?, get_key(r)?));
        }
        let n = r.count(57)?;
        let mut files = Vec::with_capacity(n);
        for _ in 0..n {
            files.push((r.str()?, r.bytes()?.to_vec(), resolve(r)?, get_key(r)?));
        }
        Some(Tree {
            root,
            tops,
            paths,
            files,
        })
    }
}

/// Where the entry whose state byte is at `at` in `data` starts, when its path and key are
/// there before it as `path` and `key` encode (they are, in a file the loader indexed).
fn entry_head(data: &[u8], at: usize, path: &str, key: &FileKey) -> Option<usize> {
    let from = at.checked_sub(4 + path.len() + 48)?;
    let head = data.get(from..at)?;
    let (len, rest) = head.split_at(4);
    let (name, k) = rest.split_at(path.len());
    (len == (path.len() as u32).to_le_bytes() && name == path.as_bytes() && k == key_bytes(key))
        .then_some(from)
}

fn put_key(p: &mut Vec<u8>, k: &FileKey) {
    p.extend_from_slice(&key_bytes(k));
}

/// A key as the cache stores it: size, mtime (seconds, nanoseconds), ctime (the same),
/// inode, device, little-endian.
fn key_bytes(k: &FileKey) -> [u8; 48] {
    let mut b = [0u8; 48];
    b[..8].copy_from_slice(&k.size.to_le_bytes());
    b[8..16].copy_from_slice(&(k.mtime.0 as u64).to_le_bytes());
    b[16..20].copy_from_slice(&k.mtime.1.to_le_bytes());
    b[20..28].copy_from_slice(&(k.ctime.0 as u64).to_le_bytes());
    b[28..32].copy_from_slice(&k.ctime.1.to_le_bytes());
    b[32..40].copy_from_slice(&k.ino.to_le_bytes());
    b[40..].copy_from_slice(&k.dev.to_le_bytes());
    b
}

fn get_key(r: &mut Reader) -> Option<FileKey> {
    Some(FileKey {
        size: r.u64()?,
        mtime: (r.u64()? as i64, r.u32()?),
        ctime: (r.u64()? as i64, r.u32()?),
        ino: r.u64()?,
        dev: r.u64()?,
    })
}

impl Fingerprint {
    fn encode(&self) -> Vec<u8> {
        let mut p = Vec::new();
        put_u64(&mut p, self.inputs);
        put_u32(&mut p, self.outputs.len() as u32);
        for (n, k) in &self.outputs {
            put_str(&mut p, n);
            put_key(&mut p, k);
        }
        put_u32(&mut p, self.messages.len() as u32);
        for (l, m) in &self.messages {
            p.push(*l);
            put_str(&mut p, m);
        }
        match &self.tree {
            None => p.push(0),
            Some(t) => {
                p.push(1);
                t.encode(&mut p);
            }
        }
        p
    }

    fn decode(data: &[u8]) -> Option<Fingerprint> {
        let mut r = Reader { data };
        let inputs = r.u64()?;
        let n = r.count(48)?;
        let mut outputs = Vec::with_capacity(n);
        for _ in 0..n {
            outputs.push((r.str()?, get_key(&mut r)?));
        }
        let n = r.count(5)?;
        let mut messages = Vec::with_capacity(n);
        for _ in 0..n {
            messages.push((r.u8()?, r.str()?));
        }
        let tree = match r.bool()? {
            false => None,
            true => Some(Tree::decode(&mut r)?),
        };
        r.data.is_empty().then_some(Fingerprint {
            inputs,
            outputs,
            messages,
            tree,
        })
    }

    /// Read only the fingerprint of the cache file `name` in `dir` (a regular file, not
    /// through a link): the header and the first block, checksummed as a whole load checks
    /// them; the records after it are neither read nor checked (a whole load checks them).
    ///
    /// The file is mapped, so only the pages of the fingerprint are read (a whole tree's
    /// cache is megabytes; its fingerprint a few hundred bytes). Mapping is safe here: kabi
    /// replaces the cache by rename (`Dir::write_atomic`), never rewrites it in place, so
    /// the mapped file is never truncated under the mapping.
    pub fn load(dir: &crate::root::Dir, name: &std::ffi::OsStr) -> Option<Fingerprint> {
        let (f, st) = dir.open_file(name).ok()?;
        let data = crate::root::Mapped::new(f, st.size, CACHE_CAP).ok()?;
        Fingerprint::from_prefix(&data)
    }

    /// The fingerprint at the start of a cache file's bytes (what follows it is ignored).
    pub fn from_prefix(data: &[u8]) -> Option<Fingerprint> {
        let mut r = Reader { data };
        header(&mut r)?;
        Fingerprint::decode(get_block(&mut r)?)
    }
}

/// A well-formed header of another format or build.
fn is_foreign(data: &[u8]) -> bool {
    let mut r = Reader { data };
    (|| {
        if r.take(8)? != MAGIC {
            return None;
        }
        let format = r.u32()?;
        let build = r.str()?;
        Some(format != FORMAT || build != build_id())
    })()
    .unwrap_or(false)
}

fn header(r: &mut Reader) -> Option<()> {
    let ok = r.take(8)? == MAGIC && r.u32()? == FORMAT;
    let build = r.str()?;
    // a fuzzer cannot know the build; it is the only check it may skip
    (ok && (cfg!(fuzzing) || build == build_id())).then_some(())
}

fn put_block(out: &mut Vec<u8>, block: &[u8]) {
    put_u64(out, block.len() as u64);
    put_u32(out, crc32fast::hash(block));
    out.extend_from_slice(block);
}

fn get_block<'a>(r: &mut Reader<'a>) -> Option<&'a [u8]> {
    let len = usize::try_from(r.u64()?).ok()?;
    let crc = r.u32()?;
    let b = r.take(len)?;
    // under the fuzzer the checksum is not checked, so that what it guards gets exercised
    (cfg!(fuzzing) || crc32fast::hash(b) == crc).then_some(b)
}

impl Cache {
    /// The cached result for `path` if the file is still the same.
    pub fn get(&self, path: &str, key: &FileKey) -> Option<Scanned> {
        self.entries
            .get(path)
            .filter(|(k, _)| k == key)
            .map(|(_, s)| s.clone())
    }

    pub fn encode(&self) -> Vec<u8> {
        let records = self.encode_records();
        let mut out = self.encode_head(&records);
        for p in records.pieces() {
            out.extend_from_slice(p);
        }
        out
    }

    /// The records block (every entry; not the fingerprint), with its checksum: what
    /// [`Cache::encode_head`] puts a header and the fingerprint before.
    pub fn encode_records(&self) -> Records<'static> {
        self.encode_records_reusing(&Stored::default()).owned()
    }

    /// [`Cache::encode_records`], each entry of [`Cache::reused`] copied from `old` (the
    /// cache it was decoded from) as it is there: its encoding, byte for byte, since the
    /// encoding of a decoded record is the bytes it was decoded from. A cache where few files
    /// changed (a weak-updates link added) is written at the speed of a copy.
    pub fn encode_records_reusing<'o>(&self, old: &'o Stored) -> Records<'o> {
        let mut paths: Vec<(&String, &(FileKey, Scanned))> = self.entries.iter().collect();
        paths.sort_unstable_by(|a, b| a.0.cmp(b.0));
        // an entry's state byte and record as the old cache has them, when reused: where
        // they are in its file, widened to the entry's path and key before them when those
        // are there as this run encodes them (they always are: the old file's entries are
        // those bytes), so that entries that follow each other there are one piece
        let copied: Vec<Option<(std::ops::Range<usize>, bool)>> = paths
            .iter()
            .map(|(path, (key, _))| {
                if !self.reused.contains(*path) {
                    return None;
                }
                let (k, at) = old.index.get(*path)?;
                if k != key {
                    return None;
                }
                old.data.get(at.clone())?;
                Some(match entry_head(&old.data, at.start, path, k) {
                    Some(from) => (from..at.end, true),
                    None => (at.clone(), false),
                })
            })
            .collect();
        // what this run encodes, in one buffer of the size it will have (a cold run's
        // records are megabytes)
        let str_len = |s: &str| 4 + s.len();
        // which records are written from their text as it is
        let whole: Vec<bool> = paths
            .iter()
            .zip(&copied)
            .map(|((_, (_, s)), c)| c.is_none() && s.as_ref().is_ok_and(|r| contiguous(r)))
            .collect();
        let size = 4 + paths
            .iter()
            .zip(&copied)
            .zip(&whole)
            .map(|(((path, (_, s)), c), &w)| match (c, s) {
                (Some((_, true)), _) => 0,
                (Some((_, false)), _) => str_len(path) + 48,
                (None, Err(e)) => str_len(path) + 48 + 1 + str_len(e),
                (None, Ok(r)) => str_len(path) + 48 + 1 + record_len(r, w),
            })
            .sum::<usize>();
        let copied_any = copied.iter().any(Option::is_some);
        let mut out = Records {
            new: Vec::with_capacity(size),
            old: &old.data[..],
            pieces: Vec::new(),
            crc: 0,
        };
        put_u32(&mut out.new, self.entries.len() as u32);
        out.push_new(0);
        for (((path, (k, s)), c), w) in paths.into_iter().zip(copied).zip(whole) {
            let from = out.new.len();
            match (c, s) {
                (Some((c, with_head)), _) => {
                    if !with_head {
                        // the record alone: its path and key are encoded here
                        put_str(&mut out.new, path);
                        put_key(&mut out.new, k);
                        out.push_new(from);
                    }
                    out.push_old(c);
                }
                (None, Err(e)) => {
                    put_str(&mut out.new, path);
                    put_key(&mut out.new, k);
                    out.new.push(1);
                    put_str(&mut out.new, e);
                    out.push_new(from);
                }
                (None, Ok(r)) => {
                    put_str(&mut out.new, path);
                    put_key(&mut out.new, k);
                    out.new.push(0);
                    put_record(&mut out.new, r, w);
                    out.push_new(from);
                }
            }
        }
        debug_assert_eq!(
            out.new.len(),
            size,
            "the encoded bytes' size computed ahead"
        );
        // written in a few pieces, or copied into one buffer
        if out.pieces.len() > MAX_PIECES {
            let all = out.to_vec();
            out.pieces = vec![Piece::New(0..all.len())];
            out.new = all;
        }
        let mut h = crc32fast::Hasher::new();
        for p in out.pieces() {
            h.update(p);
        }
        out.crc = h.finalize();
        // the copies are of the old file as it is now: it must still be what was checked
        // when it was loaded (kabi replaces it by rename, but another writer may have
        // changed it in place), else its bytes would get a checksum of their own here. So it
        // is checked after they were hashed: a change before is seen here, one after makes
        // the bytes written differ from their CRC, and the next load refuses the file
        if copied_any && !old.records_intact() {
            return self.encode_records();
        }
        out
    }

    /// The start of the cache file whose records block is `records`: header, fingerprint
    /// block, and the records block's length and checksum (its bytes follow).
    pub fn encode_head(&self, records: &Records) -> Vec<u8> {
        let mut out = file_head(&self.fingerprint, 0);
        let at = out.len() - 12;
        out[at..at + 8].copy_from_slice(&(records.len() as u64).to_le_bytes());
        out[at + 8..].copy_from_slice(&records.crc.to_le_bytes());
        out
    }

    /// The encoding of a cache of exactly the entries of `stored` (the same paths, keys and
    /// results) with this fingerprint: `stored`'s records block is taken as it is, not
    /// encoded anew. (`stored` must have been loaded from a file, not be empty.)
    pub fn encode_reusing(&self, stored: &Stored) -> Vec<u8> {
        encode_file(&self.fingerprint, &stored.data[stored.payload.clone()])
    }
}

/// The cache file `data` with its fingerprint replaced by `fp`, its records block taken as
/// it is (length, CRC and bytes; checked when the file is next loaded whole). `None` when
/// `data` is not a cache file of this build.
pub fn with_fingerprint(data: &[u8], fp: &Fingerprint) -> Option<Vec<u8>> {
    let mut r = Reader { data };
    header(&mut r)?;
    get_block(&mut r)?;
    let rest = r.data;
    let len = usize::try_from(u64::from_le_bytes(rest.get(..8)?.try_into().ok()?)).ok()?;
    (rest.len() == len.checked_add(12)?).then(|| encode_file(fp, rest))
}

/// Header, fingerprint block, and the records block as given (length, CRC and bytes).
fn encode_file(fingerprint: &Fingerprint, records: &[u8]) -> Vec<u8> {
    let mut out = file_head(fingerprint, records.len());
    out.truncate(out.len() - 12);
    out.extend_from_slice(records);
    out
}

/// Header and fingerprint block, then 12 bytes for the records block's length and CRC, in
/// a buffer with room for `records` more bytes.
fn file_head(fingerprint: &Fingerprint, records: usize) -> Vec<u8> {
    let fp = fingerprint.encode();
    let mut out = Vec::with_capacity(records + fp.len() + build_id().len() + 64);
    out.extend_from_slice(MAGIC);
    put_u32(&mut out, FORMAT);
    put_str(&mut out, build_id());
    put_block(&mut out, &fp);
    out.extend_from_slice(&[0; 12]);
    out
}

/// A cache file as read: its bytes (mapped, see [`Fingerprint::load`] for why that is
/// safe), checked whole when loaded (checksums, and the structure of every record: counts,
/// lengths, state and key bytes), but each record decoded only when asked for, by the
/// parallel scan that uses it. A record that does not decode then (text that is not UTF-8,
/// which kabi never writes, under a good checksum) is a miss: the file is read again.
pub struct Stored {
    data: crate::root::Mapped,
    pub fingerprint: Fingerprint,
    /// Per path: the file's key and where its state byte and record are in `data`.
    index: FxHashMap<String, (FileKey, std::ops::Range<usize>)>,
    /// The records block (length, CRC and bytes) in `data`.
    payload: std::ops::Range<usize>,
    /// The records block's length and CRC fields as they were when loaded.
    loaded_head: [u8; 12],
}

impl Default for Stored {
    fn default() -> Stored {
        Stored {
            data: Vec::new().into(),
            fingerprint: Fingerprint::default(),
            index: FxHashMap::default(),
            payload: 0..0,
            loaded_head: [0; 12],
        }
    }
}

impl std::fmt::Debug for Stored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Stored({} files, {:?})", self.index.len(), self.data)
    }
}

impl Stored {
    /// Check a cache file's bytes and index its records: whatever [`decode`] accepts, and
    /// also files whose only fault is a record's text that is not UTF-8 (that record then
    /// gives no result).
    pub fn parse(data: crate::root::Mapped) -> Result<Stored, crate::root::Mapped> {
        match index(&data) {
            Some((fingerprint, index, payload)) => {
                let mut loaded_head = [0; 12];
                match data.get(payload.start..payload.start + 12) {
                    Some(h) => loaded_head.copy_from_slice(h),
                    None => return Err(data),
                }
                Ok(Stored {
                    data,
                    fingerprint,
                    index,
                    payload,
                    loaded_head,
                })
            }
            None => Err(data),
        }
    }

    /// Read the cache file `name` in `dir` (a regular file, not through a link); anything
    /// unusable gives an empty cache and the reason (the run then writes a new one).
    pub fn load(dir: &crate::root::Dir, name: &std::ffi::OsStr) -> (Stored, Option<String>) {
        let shown = dir.show(name);
        let mapped = dir.open_file(name).and_then(|(f, st)| {
            crate::root::Mapped::new(f, st.size, CACHE_CAP).map_err(|e| crate::Error::io(&shown, e))
        });
        match mapped {
            Ok(data) => match Stored::parse(data) {
                Ok(c) => (c, None),
                // another kabi build's cache (an upgrade): rebuilt without a word
                Err(data) if is_foreign(&data) => (Stored::default(), None),
                Err(_) => (
                    Stored::default(),
                    Some(format!(
                        "{}: not a valid kabi scan cache; rebuilding it",
                        shown.display()
                    )),
                ),
            },
            Err(crate::Error::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                (Stored::default(), None)
            }
            Err(e) => (
                Stored::default(),
                Some(format!("{e}; rebuilding the scan cache")),
            ),
        }
    }

    /// Whether the records block is still the one loaded: the length and CRC it was loaded
    /// with, and bytes that have that CRC (read again from the mapped file). A block
    /// rewritten in place under a CRC of its own is not the one the index describes.
    fn records_intact(&self) -> bool {
        let head = self.payload.start..self.payload.start + 12;
        if self.data.get(head) != Some(&self.loaded_head[..]) {
            return false;
        }
        let mut r = Reader {
            data: self.data.get(self.payload.clone()).unwrap_or(&[]),
        };
        get_block(&mut r).is_some() && r.data.is_empty()
    }

    /// How many files it has.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The cached result for `path` if the file is still the same.
    pub fn get(&self, path: &str, key: &FileKey) -> Option<Scanned> {
        let (k, at) = self.index.get(path)?;
        if k != key {
            return None;
        }
        record(&mut Reader {
            data: self.data.get(at.clone())?,
        })
    }

    /// Every path with its key.
    pub fn keys(&self) -> impl Iterator<Item = (&str, &FileKey)> {
        self.index.iter().map(|(p, (k, _))| (p.as_str(), k))
    }

    /// Every entry, decoded (a record that does not decode is left out).
    pub fn entries(&self) -> FxHashMap<String, (FileKey, Scanned)> {
        self.index
            .iter()
            .filter_map(|(p, (k, _))| Some((p.clone(), (*k, self.get(p, k)?))))
            .collect()
    }
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn put_str(out: &mut Vec<u8>, s: &str) {
    put_bytes(out, s.as_bytes());
}
fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_u32(out, b.len() as u32);
    out.extend_from_slice(b);
}

/// Whether `r`'s strings fill its text one after another, in the order the cache writes
/// them, each whole characters of it (a record built by the scan or decoded from the cache
/// always does): its text is then written as it is, and each string's length is its span's.
fn contiguous(r: &Record) -> bool {
    let mut at = 0usize;
    r.spans().all(|s| {
        let ok = s.start as usize == at;
        at += s.len as usize;
        ok && r.text.is_char_boundary(at)
    }) && at == r.text.len()
}

/// The bytes [`put_record`] writes (`whole`: [`contiguous`]).
fn record_len(r: &Record, whole: bool) -> usize {
    let text: usize = match whole {
        true => r.text.len(),
        false => r.strings().map(str::len).sum(),
    };
    4 + text + 4 + 12 * r.exports.len() + 4 + 13 * r.deps.len() + 4 + 5 * r.info.len()
}

/// `r` as the cache stores it (`whole`: [`contiguous`]); each fixed-size field group is
/// put in one piece.
fn put_record(p: &mut Vec<u8>, r: &Record, whole: bool) {
    // a string's length: its span's, which is the string's in a contiguous record (each
    // span is whole characters of the text)
    let len = |s: crate::depmod::scan::Span| match whole {
        true => s.len,
        false => r.str(s).len() as u32,
    };
    if whole {
        put_str(p, &r.text);
    } else {
        put_u32(p, r.strings().map(str::len).sum::<usize>() as u32);
        for s in r.strings() {
            p.extend_from_slice(s.as_bytes());
        }
    }
    put_u32(p, r.exports.len() as u32);
    for &(n, c) in &r.exports {
        let mut b = [0u8; 12];
        b[..4].copy_from_slice(&len(n).to_le_bytes());
        b[4..].copy_from_slice(&c.to_le_bytes());
        p.extend_from_slice(&b);
    }
    put_u32(p, r.deps.len() as u32);
    for &(n, crc, weak) in &r.deps {
        let mut b = [0u8; 13];
        b[..4].copy_from_slice(&len(n).to_le_bytes());
        b[4..12].copy_from_slice(&crc.to_le_bytes());
        b[12] = weak as u8;
        p.extend_from_slice(&b);
    }
    put_u32(p, r.info.len() as u32);
    for &(k, v) in &r.info {
        let mut b = [0u8; 5];
        b[0] = k.to_u8();
        b[1..].copy_from_slice(&len(v).to_le_bytes());
        p.extend_from_slice(&b);
    }
}

struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.data.len() < n {
            return None;
        }
        let (a, b) = self.data.split_at(n);
        self.data = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn str(&mut self) -> Option<String> {
        std::str::from_utf8(self.bytes()?).ok().map(str::to_string)
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    /// Past a string, not checking its UTF-8 (its decoding does).
    fn skip_str(&mut self) -> Option<()> {
        let n = self.u32()? as usize;
        self.take(n).map(|_| ())
    }
    /// The next string of a text of `len` bytes, `at` bytes of which were taken: its span.
    fn span(&mut self, at: &mut usize, len: usize) -> Option<Span> {
        let n = self.u32()?;
        let start = *at;
        *at = at.checked_add(n as usize).filter(|&end| end <= len)?;
        Some(Span {
            start: start as u32,
            len: n,
        })
    }
    fn bool(&mut self) -> Option<bool> {
        match self.u8()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }
    /// A count that cannot exceed what is left (each item takes at least `min` bytes).
    fn count(&mut self, min: usize) -> Option<usize> {
        let n = self.u32()? as usize;
        (n.checked_mul(min)? <= self.data.len()).then_some(n)
    }
}

/// Decode a cache file; `None` unless everything checks out.
pub fn decode(data: &[u8]) -> Option<Cache> {
    let (fingerprint, index, _) = index(data)?;
    let mut entries = FxHashMap::default();
    entries.reserve(index.len());
    for (path, (key, at)) in index {
        let scanned = record(&mut Reader {
            data: data.get(at)?,
        })?;
        entries.insert(path, (key, scanned));
    }
    Some(Cache {
        entries,
        fingerprint,
        reused: Default::default(),
    })
}

/// The fingerprint of a cache file, where each path's state byte and record are, and where
/// its records block is: every checksum and the structure of every record checked (counts,
/// lengths, state and key bytes; the paths' UTF-8, not the records'), nothing but the paths
/// allocated.
#[allow(clippy::type_complexity)]
fn index(
    data: &[u8],
) -> Option<(
    Fingerprint,
    FxHashMap<String, (FileKey, std::ops::Range<usize>)>,
    std::ops::Range<usize>,
)> {
    let mut r = Reader { data };
    header(&mut r)?;
    let fingerprint = Fingerprint::decode(get_block(&mut r)?)?;
    let block_start = data.len() - r.data.len();
    let payload = get_block(&mut r)?;
    if !r.data.is_empty() {
        return None;
    }
    let payload_start = data.len() - payload.len();
    let mut r = Reader { data: payload };
    let n = r.count(50)?;
    let mut index = FxHashMap::default();
    index.reserve(n);
    for _ in 0..n {
        let path = r.str()?;
        let key = get_key(&mut r)?;
        let start = payload_start + (payload.len() - r.data.len());
        skip_record(&mut r)?;
        let end = payload_start + (payload.len() - r.data.len());
        index.insert(path, (key, start..end));
    }
    r.data
        .is_empty()
        .then_some((fingerprint, index, block_start..data.len()))
}

/// Past one state byte and record, checking them as [`record`] decodes them (but for the
/// UTF-8 of their text).
fn skip_record(r: &mut Reader) -> Option<()> {
    match r.u8()? {
        1 => r.skip_str(),
        0 => {
            let n = r.u32()? as usize;
            r.take(n)?;
            let mut at = 0;
            for _ in 0..r.count(12)? {
                r.span(&mut at, n)?;
                r.u64()?;
            }
            for _ in 0..r.count(13)? {
                r.span(&mut at, n)?;
                r.u64()?;
                r.bool()?;
            }
            for _ in 0..r.count(5)? {
                InfoKey::from_u8(r.u8()?)?;
                r.span(&mut at, n)?;
            }
            (at == n).then_some(())
        }
        _ => None,
    }
}

/// One state byte and record, which must be all of `r`.
fn record(r: &mut Reader) -> Option<Scanned> {
    let scanned = match r.u8()? {
        1 => Err(r.str()?),
        0 => {
            let text = r.str()?;
            let n = text.len();
            let mut at = 0;
            // each string must be whole characters of the text
            let whole = |at: usize| text.is_char_boundary(at).then_some(());
            let ne = r.count(12)?;
            let mut exports = Vec::with_capacity(ne);
            for _ in 0..ne {
                let s = r.span(&mut at, n)?;
                whole(at)?;
                exports.push((s, r.u64()?));
            }
            let nd = r.count(13)?;
            let mut deps = Vec::with_capacity(nd);
            for _ in 0..nd {
                let s = r.span(&mut at, n)?;
                whole(at)?;
                deps.push((s, r.u64()?, r.bool()?));
            }
            let ni = r.count(5)?;
            let mut info = Vec::with_capacity(ni);
            for _ in 0..ni {
                let k = InfoKey::from_u8(r.u8()?)?;
                let s = r.span(&mut at, n)?;
                whole(at)?;
                info.push((k, s));
            }
            if at != n {
                return None;
            }
            Ok(Arc::new(Record {
                text,
                exports,
                deps,
                info,
            }))
        }
        _ => return None,
    };
    r.data.is_empty().then_some(scanned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::depmod::scan::Span;

    /// A record as the cache stores it, written string by string (the encoding's
    /// definition, as it was before lengths were taken from spans).
    fn reference_encoding(r: &Record) -> Vec<u8> {
        let mut p = Vec::new();
        put_u32(&mut p, r.strings().map(str::len).sum::<usize>() as u32);
        for s in r.strings() {
            p.extend_from_slice(s.as_bytes());
        }
        put_u32(&mut p, r.exports.len() as u32);
        for (n, c) in r.exports() {
            put_u32(&mut p, n.len() as u32);
            put_u64(&mut p, c);
        }
        put_u32(&mut p, r.deps.len() as u32);
        for d in r.deps() {
            put_u32(&mut p, d.name.len() as u32);
            put_u64(&mut p, d.crc);
            p.push(d.weak as u8);
        }
        put_u32(&mut p, r.info.len() as u32);
        for (k, v) in r.info() {
            p.push(k.to_u8());
            put_u32(&mut p, v.len() as u32);
        }
        p
    }

    /// Records built by the scan, and by hand: strings out of order, a string used twice,
    /// spans that split a character or leave the text. Each is encoded as the definition
    /// says, at the size computed ahead.
    #[test]
    fn a_record_is_encoded_as_its_strings_say_whatever_its_spans() {
        let sp = |start, len| Span { start, len };
        let mut built = crate::depmod::scan::RecordBuilder::default();
        built.export(b"crc_itu_t", 0x1234);
        built.dep("m\u{e9}tier".as_bytes(), 7, true);
        built.info(InfoKey::Alias, b"fs-udf");
        let built = built.finish();
        let hand = |text: &str, exports, deps, info| Record {
            text: text.to_string(),
            exports,
            deps,
            info,
        };
        let records = [
            built.clone(),
            // out of order
            hand(
                "ab",
                vec![(sp(1, 1), 1)],
                vec![(sp(0, 1), 2, false)],
                vec![],
            ),
            // one string used twice
            hand("ab", vec![(sp(0, 2), 1)], vec![(sp(0, 2), 2, true)], vec![]),
            // in order, filling the text, but splitting the character
            hand(
                "\u{e9}",
                vec![(sp(0, 1), 1)],
                vec![(sp(1, 1), 2, false)],
                vec![],
            ),
            // past the text's end
            hand("ab", vec![], vec![], vec![(InfoKey::Softdep, sp(1, 5))]),
            Record::default(),
        ];
        for (i, r) in records.iter().enumerate() {
            let whole = contiguous(r);
            assert_eq!(whole, i == 0 || i == 5, "record {i}: contiguous");
            let mut p = Vec::new();
            put_record(&mut p, r, whole);
            assert_eq!(p, reference_encoding(r), "record {i}");
            assert_eq!(p.len(), record_len(r, whole), "record {i}: size");
        }
    }

    /// The key of the sample files.
    const KEY: FileKey = FileKey {
        size: 10,
        mtime: (1, 2),
        ctime: (3, 4),
        ino: 5,
        dev: 6,
    };

    fn sample() -> Cache {
        let mut c = Cache::default();
        let key = KEY;
        let mut rec = crate::depmod::scan::RecordBuilder::default();
        rec.export(b"crc_itu_t", 0x1234);
        rec.dep(b"module_layout", 7, true);
        rec.info(InfoKey::Alias, b"fs-udf");
        rec.info(InfoKey::Weakdep, b"x");
        let rec = rec.finish();
        c.entries.insert("/a.ko".into(), (key, Ok(Arc::new(rec))));
        c.entries
            .insert("/b.ko".into(), (key, Err("bad ELF".into())));
        c.fingerprint = Fingerprint {
            inputs: 42,
            outputs: vec![("modules.dep".into(), key)],
            messages: vec![(0, "could not open modules.order".into())],
            tree: Some(Tree {
                root: b"/r".to_vec(),
                tops: vec![TopRecord {
                    rel: b"lib/modules/k".to_vec(),
                    dev: 8,
                    ino: 9,
                    entries: vec![(b"kernel".to_vec(), 1), (b"m\xff.ko".to_vec(), 0)],
                }],
                paths: vec![(b"lib/modules/k/kernel".to_vec(), 0, 1, key)],
                files: vec![("/a.ko".into(), b"lib/modules/k/a.ko".to_vec(), 2, key)],
            }),
        };
        c
    }

    #[test]
    fn round_trips() {
        let c = sample();
        let bytes = c.encode();
        let d = decode(&bytes).expect("decodes");
        assert_eq!(d.fingerprint, c.fingerprint);
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("cache");
        std::fs::write(&f, &bytes).unwrap();
        let d2 = crate::root::Root::open(dir.path())
            .unwrap()
            .open_dir("")
            .unwrap();
        assert_eq!(
            Fingerprint::load(&d2, "cache".as_ref()),
            Some(c.fingerprint.clone())
        );
        // a block length that claims a terabyte: refused, nothing allocated
        let mut huge = bytes.clone();
        let at = 8 + 4 + 4 + build_id().len();
        huge[at..at + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
        std::fs::write(&f, &huge).unwrap();
        assert_eq!(Fingerprint::load(&d2, "cache".as_ref()), None);
        let (empty, why) = Stored::load(&d2, "cache".as_ref());
        assert!(empty.is_empty() && why.is_some());
        assert_eq!(d.entries.len(), 2);
        for (p, (k, s)) in &c.entries {
            let (k2, s2) = &d.entries[p];
            assert_eq!(k, k2);
            assert_eq!(s, s2);
        }
    }

    /// A run where few files changed copies the others' records from the cache it read:
    /// the same bytes as encoding them all, and only entries still of the same file copied.
    #[test]
    fn unchanged_records_are_copied_from_the_old_cache() {
        let c = sample();
        let old = Stored::parse(c.encode().into()).unwrap_or_else(|_| panic!("a cache"));
        // a new run: /a.ko and /b.ko taken from the old cache, /c.ko scanned
        let mut new = Cache::default();
        for p in ["/a.ko", "/b.ko"] {
            let (k, _) = &c.entries[p];
            new.entries
                .insert(p.into(), (*k, old.get(p, k).expect("in the old cache")));
            new.reused.insert(p.into());
        }
        let mut rec = crate::depmod::scan::RecordBuilder::default();
        rec.export(b"crc7", 9);
        let (key_a, _) = c.entries["/a.ko"];
        new.entries
            .insert("/c.ko".into(), (key_a, Ok(Arc::new(rec.finish()))));
        let all = new.encode_records();
        let reusing = new.encode_records_reusing(&old);
        assert_eq!(reusing.to_vec(), all.to_vec());
        assert_eq!(reusing.crc, all.crc);
        assert_eq!(reusing.len(), all.len());
        // /a.ko and /b.ko follow each other in the old file: their entries, paths and keys
        // with them, are one piece of it, between the count and /c.ko encoded here
        assert_eq!(
            reusing
                .pieces
                .iter()
                .map(|p| matches!(p, Piece::Old(_)))
                .collect::<Vec<_>>(),
            [false, true, false]
        );
        assert!(all.pieces.iter().all(|p| matches!(p, Piece::New(_))));
        // what is copied is the old cache's bytes: an entry said to be reused whose file
        // is another now (its key changed) is encoded from its record instead
        let mut changed = new.clone();
        let mut rec = crate::depmod::scan::RecordBuilder::default();
        rec.export(b"other", 1);
        let key_b = FileKey { size: 11, ..key_a };
        changed
            .entries
            .insert("/a.ko".into(), (key_b, Ok(Arc::new(rec.finish()))));
        assert_eq!(
            changed.encode_records_reusing(&old).to_vec(),
            changed.encode_records().to_vec()
        );
        // and the copy is taken as it is, not re-encoded: a stale record under the same
        // key (which a scan never gives) comes out as the old cache has it
        let mut stale = changed.clone();
        let (_, a_now) = stale.entries["/a.ko"].clone();
        stale.entries.insert("/a.ko".into(), (key_a, a_now));
        assert_eq!(stale.encode_records_reusing(&old).to_vec(), all.to_vec());
        assert_ne!(stale.encode_records().to_vec(), all.to_vec());
    }

    /// Every other file changed: more pieces than [`MAX_PIECES`] are written as one buffer
    /// (one `write`), the same bytes.
    #[test]
    fn a_cache_of_scattered_changes_is_written_in_one_piece() {
        let key = KEY;
        let record = |sym: &[u8]| {
            let mut rec = crate::depmod::scan::RecordBuilder::default();
            rec.export(sym, 1);
            Ok(Arc::new(rec.finish()))
        };
        let mut c = Cache::default();
        for i in 0..200 {
            c.entries
                .insert(format!("/m{i:03}.ko"), (key, record(b"old")));
        }
        let old = Stored::parse(c.encode().into()).unwrap_or_else(|_| panic!("a cache"));
        let mut new = Cache::default();
        for i in 0..200 {
            let p = format!("/m{i:03}.ko");
            let s = match i % 2 {
                0 => {
                    new.reused.insert(p.clone());
                    old.get(&p, &key).expect("in the old cache")
                }
                _ => record(b"new"),
            };
            new.entries.insert(p, (key, s));
        }
        let reusing = new.encode_records_reusing(&old);
        assert_eq!(reusing.pieces, [Piece::New(0..reusing.len())]);
        assert_eq!(reusing.to_vec(), new.encode_records().to_vec());
        assert_eq!(reusing.crc, new.encode_records().crc);
        // 20 changed, among the first 41: the count, an old and a new piece per change,
        // the rest in one
        let mut few = new.clone();
        for i in (41..200).step_by(2) {
            let p = format!("/m{i:03}.ko");
            few.entries
                .insert(p.clone(), (key, old.get(&p, &key).unwrap()));
            few.reused.insert(p);
        }
        let r = few.encode_records_reusing(&old);
        assert_eq!(r.pieces.len(), 1 + 2 * 20 + 1);
        assert_eq!(r.to_vec(), few.encode_records().to_vec());
    }

    /// `bytes` as a cache file in a new directory, loaded: the directory (removed when
    /// dropped), the file, what was loaded and why it was not.
    fn on_disk(
        bytes: &[u8],
    ) -> (
        tempfile::TempDir,
        std::path::PathBuf,
        Stored,
        Option<String>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("cache");
        std::fs::write(&f, bytes).unwrap();
        let d = crate::root::Root::open(dir.path())
            .unwrap()
            .open_dir("")
            .unwrap();
        let (old, why) = Stored::load(&d, "cache".as_ref());
        (dir, f, old, why)
    }

    /// A new run's cache that took `paths` from `old` as `c` has them.
    fn reusing(c: &Cache, old: &Stored, paths: &[&str]) -> Cache {
        let mut new = Cache::default();
        for &p in paths {
            let (k, _) = &c.entries[p];
            new.entries
                .insert(p.into(), (*k, old.get(p, k).expect("decoded")));
            new.reused.insert(p.into());
        }
        new
    }

    /// A key for test entries.
    fn key_n(n: u64) -> FileKey {
        FileKey {
            size: n,
            mtime: (n as i64, 1),
            ctime: (-(n as i64), 2),
            ino: n * 7,
            dev: 3,
        }
    }

    /// A test record: an error for some seeds, else a few exports, a dependency, an alias.
    fn record_n(seed: u64) -> Scanned {
        if seed.is_multiple_of(5) {
            return Err(format!("error é {seed}"));
        }
        let mut b = crate::depmod::scan::RecordBuilder::default();
        for i in 0..seed % 4 {
            b.export(format!("sym{seed}_{i}").as_bytes(), seed * 31 + i);
        }
        if seed.is_multiple_of(3) {
            b.dep("dépend".as_bytes(), seed, seed.is_multiple_of(2));
        }
        if seed.is_multiple_of(7) {
            b.info(InfoKey::Alias, b"x");
        }
        Ok(Arc::new(b.finish()))
    }

    /// An old cache file holding `entries` in this order (a path may come twice).
    fn old_file(entries: &[(String, FileKey, Scanned)]) -> Vec<u8> {
        let mut block = Vec::new();
        put_u32(&mut block, entries.len() as u32);
        for (p, k, s) in entries {
            put_str(&mut block, p);
            put_key(&mut block, k);
            match s {
                Err(e) => {
                    block.push(1);
                    put_str(&mut block, e);
                }
                Ok(r) => {
                    block.push(0);
                    put_record(&mut block, r, contiguous(r));
                }
            }
        }
        let mut out = file_head(&Fingerprint::default(), 0);
        out.truncate(out.len() - 12);
        put_block(&mut out, &block);
        out
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(500))]
        /// Whatever the old file (any order, paths twice, errors, paths that are prefixes
        /// of others, not ASCII) and whatever the new run took from it (reused, said reused
        /// with another key now, scanned anew), the pieces are the bytes and CRC of a full
        /// encoding, at most MAX_PIECES of them, none empty, none that should have been one
        /// with the next, and the file they make decodes.
        #[test]
        fn pieces_are_the_full_encoding(
            old_entries in proptest::collection::vec((0u8..30, 0u64..4, 0u64..50), 0..60),
            new_entries in proptest::collection::vec((0u8..40, 0u64..4, 0u64..50, 0u8..4), 0..60),
        ) {
            let path = |i: u8| match i % 3 {
                0 => format!("/m{i}"),
                1 => format!("/m{i}.ko"),
                _ => format!("/é/{i}"),
            };
            let olds: Vec<(String, FileKey, Scanned)> = old_entries
                .iter()
                .map(|&(p, k, s)| (path(p), key_n(k), record_n(s)))
                .collect();
            let old = Stored::parse(old_file(&olds).into()).unwrap_or_else(|_| panic!("parses"));
            let mut new = Cache::default();
            for &(p, k, s, mode) in &new_entries {
                let p = path(p);
                match (mode, old.index.get(&p)) {
                    (0 | 1, Some((ok, _))) => {
                        let ok = *ok;
                        new.entries.insert(p.clone(), (ok, old.get(&p, &ok).unwrap()));
                        new.reused.insert(p);
                    }
                    (2, _) => {
                        new.entries.insert(p.clone(), (key_n(k + 100), record_n(s)));
                        new.reused.insert(p);
                    }
                    _ => {
                        new.reused.remove(&p);
                        new.entries.insert(p, (key_n(k), record_n(s)));
                    }
                }
            }
            let all = new.encode_records();
            let r = new.encode_records_reusing(&old);
            let v = r.to_vec();
            proptest::prop_assert_eq!(&v, &all.to_vec());
            proptest::prop_assert_eq!(r.crc, all.crc);
            proptest::prop_assert_eq!(r.crc, crc32fast::hash(&v));
            proptest::prop_assert_eq!(r.len(), v.len());
            proptest::prop_assert!(r.pieces.len() <= MAX_PIECES);
            for w in r.pieces.windows(2) {
                let one = match (&w[0], &w[1]) {
                    (Piece::Old(a), Piece::Old(b)) | (Piece::New(a), Piece::New(b)) => a.end == b.start,
                    _ => false,
                };
                proptest::prop_assert!(!one);
            }
            proptest::prop_assert!(r.pieces.iter().all(|p| p.len() > 0));
            let mut file = new.encode_head(&r);
            file.extend_from_slice(&v);
            proptest::prop_assert_eq!(decode(&file).expect("decodes").entries.len(), new.entries.len());
        }
    }

    /// Another writer rewrites the old file in place with a whole records block of the same
    /// length under a CRC of its own (an export CRC of /a.ko changed): it is not the block
    /// the index describes, so nothing is copied from it.
    #[test]
    fn a_block_rewritten_under_its_own_crc_is_not_copied() {
        let c = sample();
        let bytes = c.encode();
        let (_dir, f, old, _) = on_disk(&bytes);
        let new = reusing(&c, &old, &["/a.ko", "/b.ko"]);
        let mut other = bytes.clone();
        let at = other
            .windows(8)
            .position(|w| w == 0x1234u64.to_le_bytes())
            .unwrap();
        other[at..at + 8].copy_from_slice(&0x1235u64.to_le_bytes());
        let p = old.payload.clone();
        let crc = crc32fast::hash(&other[p.start + 12..]);
        other[p.start + 8..p.start + 12].copy_from_slice(&crc.to_le_bytes());
        std::os::unix::fs::FileExt::write_all_at(
            &std::fs::OpenOptions::new().write(true).open(&f).unwrap(),
            &other,
            0,
        )
        .unwrap();
        assert!(!old.records_intact());
        let r = new.encode_records_reusing(&old);
        assert_eq!(r.to_vec(), new.encode_records().to_vec());
        let mut file = new.encode_head(&r);
        file.extend_from_slice(&r.to_vec());
        let (_, a) = &decode(&file).unwrap().entries["/a.ko"];
        assert_eq!(a.as_ref().unwrap().exports().next().unwrap().1, 0x1234);
    }

    /// A writer that changes the old file in place once, at any moment of the encoding:
    /// the records come out with the CRC of what the run decoded, or with a CRC their bytes
    /// as written will not have (the next load refuses them), never with the CRC of bytes
    /// nobody checked. (With the check before the CRC, such a CRC came within 55 trials.)
    #[test]
    fn a_change_while_encoding_never_gets_a_crc_of_its_own() {
        use std::os::unix::fs::FileExt;
        let mut c = Cache::default();
        for i in 0..3000 {
            let mut b = crate::depmod::scan::RecordBuilder::default();
            for j in 0..20 {
                b.export(format!("symbol_number_{i}_{j}").as_bytes(), j);
            }
            c.entries
                .insert(format!("/m{i:05}.ko"), (key_n(i), Ok(Arc::new(b.finish()))));
        }
        let mut b = crate::depmod::scan::RecordBuilder::default();
        b.export(b"zz", 0xAAAA_5555_AAAA_5555);
        c.entries
            .insert("/zz.ko".into(), (key_n(1), Ok(Arc::new(b.finish()))));
        let bytes = c.encode();
        let (_dir, f, old, _) = on_disk(&bytes);
        let mut new = Cache::default();
        for (p, (k, _)) in &c.entries {
            new.entries.insert(p.clone(), (*k, old.get(p, k).unwrap()));
            new.reused.insert(p.clone());
        }
        let mut b = crate::depmod::scan::RecordBuilder::default();
        b.export(b"new", 1);
        new.entries
            .insert("/m00000.ko".into(), (key_n(77), Ok(Arc::new(b.finish()))));
        new.reused.remove("/m00000.ko");
        let good = new.encode_records();
        let (was, now) = (
            0xAAAA_5555_AAAA_5555u64.to_le_bytes(),
            0xBBBB_5555_AAAA_5555u64.to_le_bytes(),
        );
        let at = bytes.windows(8).position(|w| w == was).unwrap();
        let mut changed = good.to_vec();
        let at2 = changed.windows(8).position(|w| w == was).unwrap();
        changed[at2..at2 + 8].copy_from_slice(&now);
        let unchecked = crc32fast::hash(&changed);
        let fw = std::fs::OpenOptions::new().write(true).open(&f).unwrap();
        let t = std::time::Instant::now();
        let _ = new.encode_records_reusing(&old);
        let call = t.elapsed().as_nanos() as u64;
        for n in 1..=1000u64 {
            fw.write_all_at(&was, at as u64).unwrap();
            let w = fw.try_clone().unwrap();
            let delay = n.wrapping_mul(2_654_435_761) % call.max(1);
            let go = Arc::new(std::sync::Barrier::new(2));
            let g = go.clone();
            let th = std::thread::spawn(move || {
                g.wait();
                let t = std::time::Instant::now();
                while (t.elapsed().as_nanos() as u64) < delay {
                    std::hint::spin_loop();
                }
                w.write_all_at(&now, at as u64).unwrap();
            });
            go.wait();
            let r = new.encode_records_reusing(&old);
            th.join().unwrap();
            assert_ne!(r.crc, unchecked, "trial {n}: a CRC of bytes never checked");
        }
    }

    /// The old cache file changed in place after it was loaded (not by kabi, which replaces
    /// it by rename): its bytes are not copied under a checksum of their own, the records
    /// are encoded from what the run decoded.
    #[test]
    fn a_cache_changed_in_place_is_not_copied() {
        use std::io::{Seek, SeekFrom, Write};
        let c = sample();
        let bytes = c.encode();
        let (_dir, f, old, why) = on_disk(&bytes);
        assert!(why.is_none() && old.records_intact());
        let new = reusing(&c, &old, &["/a.ko", "/b.ko"]);
        // /a.ko's export CRC 0x1234 becomes 0x1235 in the mapped file
        let at = bytes
            .windows(8)
            .position(|w| w == 0x1234u64.to_le_bytes())
            .expect("the CRC in the file");
        let mut w = std::fs::OpenOptions::new().write(true).open(&f).unwrap();
        w.seek(SeekFrom::Start(at as u64)).unwrap();
        w.write_all(&0x1235u64.to_le_bytes()).unwrap();
        drop(w);
        assert!(!old.records_intact());
        assert_eq!(
            new.encode_records_reusing(&old).to_vec(),
            new.encode_records().to_vec()
        );
    }

    #[test]
    fn the_fingerprint_is_replaced_and_the_records_kept_as_they_are() {
        let c = sample();
        let bytes = c.encode();
        let fp = Fingerprint {
            tree: None,
            ..c.fingerprint.clone()
        };
        let again = with_fingerprint(&bytes, &fp).expect("a cache file");
        let d = decode(&again).expect("decodes");
        assert_eq!(d.fingerprint, fp);
        assert_eq!(d.entries.len(), 2);
        let records = |b: &[u8]| b[b.len() - c.encode_records().to_vec().len()..].to_vec();
        assert_eq!(records(&again), records(&bytes));
        // back: the original file, byte for byte
        assert_eq!(
            with_fingerprint(&again, &c.fingerprint),
            Some(bytes.clone())
        );
        // not a whole cache file: nothing
        assert_eq!(with_fingerprint(&bytes[..bytes.len() - 1], &fp), None);
        assert_eq!(with_fingerprint(b"KABISCAN", &fp), None);
    }

    #[test]
    fn the_fingerprint_is_read_from_the_prefix_alone() {
        let c = sample();
        let bytes = c.encode();
        let fp_len = c.fingerprint.encode().len();
        // the start of the records block: header, fingerprint block (u64 + u32 + bytes)
        let records = 8 + 4 + 4 + build_id().len() + 12 + fp_len;
        let dir = tempfile::tempdir().unwrap();
        let d = crate::root::Root::open(dir.path())
            .unwrap()
            .open_dir("")
            .unwrap();
        // the records block damaged, then cut off: the whole cache is refused, the
        // fingerprint is still had (so the records were neither read nor checked)
        let mut bad = bytes.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        for damaged in [bad, bytes[..records + 5].to_vec()] {
            assert!(decode(&damaged).is_none());
            std::fs::write(dir.path().join("cache"), &damaged).unwrap();
            assert_eq!(
                Fingerprint::load(&d, "cache".as_ref()),
                Some(c.fingerprint.clone())
            );
        }
        // the fingerprint block itself damaged: refused
        let mut bad = bytes.clone();
        bad[records - 1] ^= 0x01;
        std::fs::write(dir.path().join("cache"), &bad).unwrap();
        assert_eq!(Fingerprint::load(&d, "cache".as_ref()), None);
        // a link to a good cache is not followed
        std::fs::write(dir.path().join("real"), &bytes).unwrap();
        std::fs::remove_file(dir.path().join("cache")).unwrap();
        std::os::unix::fs::symlink("real", dir.path().join("cache")).unwrap();
        assert_eq!(Fingerprint::load(&d, "cache".as_ref()), None);
    }

    #[test]
    fn stored_records_are_decoded_when_asked_and_reused_as_written() {
        let c = sample();
        let bytes = c.encode();
        let s = Stored::parse(bytes.clone().into()).expect("parses");
        assert_eq!(s.len(), 2);
        assert_eq!(s.fingerprint, c.fingerprint);
        for (p, (k, want)) in &c.entries {
            assert_eq!(s.get(p, k).as_ref(), Some(want));
            let other = FileKey { size: 11, ..*k };
            assert_eq!(s.get(p, &other), None, "another state of the file");
        }
        assert_eq!(s.get("/c.ko", &c.entries["/a.ko"].0), None);
        assert_eq!(s.entries().len(), 2);
        // the records block reused with another fingerprint: the bytes a new encoding gives
        let mut next = c.clone();
        next.fingerprint.inputs = 43;
        next.fingerprint.messages.clear();
        assert_eq!(next.encode_reusing(&s), next.encode());
        // every damaged byte is refused (the checksums)
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x40;
            assert!(Stored::parse(b.into()).is_err(), "flip at {i} accepted");
        }
        // a record's text that is not UTF-8 under a good checksum: that record is a miss
        let records = 8 + 4 + 4 + build_id().len() + 12 + c.fingerprint.encode().len();
        let mut b = bytes.clone();
        let at = records
            + 12
            + b[records + 12..]
                .windows(6)
                .position(|w| w == b"fs-udf")
                .unwrap();
        b[at] = 0xff;
        let crc = crc32fast::hash(&b[records + 12..]);
        b[records + 8..records + 12].copy_from_slice(&crc.to_le_bytes());
        assert!(decode(&b).is_none());
        let s = Stored::parse(b.into()).expect("the structure is sound");
        let (ka, kb) = (&c.entries["/a.ko"].0, &c.entries["/b.ko"].0);
        assert_eq!(s.get("/a.ko", ka), None);
        assert_eq!(s.get("/b.ko", kb).as_ref(), Some(&c.entries["/b.ko"].1));
    }

    /// The cache's bytes with the records block's checksum made right again.
    fn rechecksum(c: &Cache, b: &mut [u8]) {
        let records = 8 + 4 + 4 + build_id().len() + 12 + c.fingerprint.encode().len();
        let crc = crc32fast::hash(&b[records + 12..]);
        b[records + 8..records + 12].copy_from_slice(&crc.to_le_bytes());
    }

    #[test]
    fn lengths_past_the_text_or_inside_a_character_are_refused() {
        let mut c = Cache::default();
        let key = sample().entries["/a.ko"].0;
        let mut rec = crate::depmod::scan::RecordBuilder::default();
        rec.info(InfoKey::Alias, "é".as_bytes());
        rec.export(b"sym", 1);
        let rec = rec.finish();
        // built out of order: encoded with the text in order all the same
        assert_eq!(rec.text, "ésym");
        assert_eq!(rec.exports().collect::<Vec<_>>(), [("sym", 1)]);
        assert_eq!(rec.info().collect::<Vec<_>>(), [(InfoKey::Alias, "é")]);
        let rec = Arc::new(rec);
        c.entries.insert("/a.ko".into(), (key, Ok(rec.clone())));
        let bytes = c.encode();
        let d = decode(&bytes).expect("decodes");
        let Ok(back) = &d.entries["/a.ko"].1 else {
            panic!("an error decoded")
        };
        assert_eq!(back.text, "symé");
        assert!(back.exports().eq(rec.exports()) && back.info().eq(rec.info()));
        // after the text: the export count, then its name's length
        let text = bytes
            .windows(5)
            .position(|w| w == "symé".as_bytes())
            .unwrap()
            + 5;
        let export_len = text + 4;
        let info_len = text + 4 + 12 + 4 + 4 + 1;
        assert_eq!(bytes[export_len..export_len + 4], 3u32.to_le_bytes());
        assert_eq!(bytes[info_len..info_len + 4], 2u32.to_le_bytes());
        // lengths past the text, or short of it: the structure is wrong, the cache refused
        for (at, len) in [(export_len, 3000u32), (info_len, 3), (info_len, 1)] {
            let mut b = bytes.clone();
            b[at..at + 4].copy_from_slice(&len.to_le_bytes());
            rechecksum(&c, &mut b);
            assert!(decode(&b).is_none(), "length {len} at {at}");
            assert!(Stored::parse(b.into()).is_err(), "length {len} at {at}");
        }
        // a name ending inside the two bytes of "é": the record is a miss
        let mut b = bytes.clone();
        b[export_len..export_len + 4].copy_from_slice(&4u32.to_le_bytes());
        b[info_len..info_len + 4].copy_from_slice(&1u32.to_le_bytes());
        rechecksum(&c, &mut b);
        assert!(decode(&b).is_none());
        let s = Stored::parse(b.into()).expect("the structure is sound");
        assert_eq!(s.get("/a.ko", &key), None);
    }

    #[test]
    fn any_damage_is_rejected() {
        let bytes = sample().encode();
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x40;
            assert!(decode(&b).is_none(), "flip at {i} accepted");
        }
        for n in 0..bytes.len() {
            assert!(decode(&bytes[..n]).is_none(), "truncation to {n} accepted");
        }
    }
}
