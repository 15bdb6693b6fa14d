//! What depmod needs from one module file, extracted exactly as kmod 30 does it
//! (libkmod-elf.c): the symbols it exports with their CRCs (`kmod_elf_get_symbols`), the
//! symbols it needs with the CRCs it expects (`kmod_elf_get_dependency_symbols`), and its
//! `alias`, `softdep` and `weakdep` `.modinfo` records.
//!
//! For a plain (uncompressed) file only the ELF header, the section table and the few
//! sections used are read; the rest of the buffer stays as zero pages that are never touched.

use crate::compress::Compression;
use crate::error::{Error, ParseError};
use crate::module::elf::{ElfFile, cstr_at};
use crate::module::modinfo;
use object::elf;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// A symbol a module needs: an undefined `.symtab` entry, or a `__versions` entry that no
/// undefined symbol named (`module_layout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DepSymbol<'r> {
    pub name: &'r str,
    /// From `__versions` (first entry of that name), 0 when absent.
    pub crc: u64,
    pub weak: bool,
}

/// The `.modinfo` keys depmod writes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InfoKey {
    Alias,
    Softdep,
    Weakdep,
}

impl InfoKey {
    pub fn as_str(self) -> &'static str {
        match self {
            InfoKey::Alias => "alias",
            InfoKey::Softdep => "softdep",
            InfoKey::Weakdep => "weakdep",
        }
    }
    fn from_key(key: &[u8]) -> Option<InfoKey> {
        match key {
            b"alias" => Some(InfoKey::Alias),
            b"softdep" => Some(InfoKey::Softdep),
            b"weakdep" => Some(InfoKey::Weakdep),
            _ => None,
        }
    }
    pub(crate) fn to_u8(self) -> u8 {
        self as u8
    }
    pub(crate) fn from_u8(v: u8) -> Option<InfoKey> {
        [InfoKey::Alias, InfoKey::Softdep, InfoKey::Weakdep]
            .get(v as usize)
            .copied()
    }
}

/// Where a string is in a [`Record`]'s text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Span {
    pub(crate) start: u32,
    pub(crate) len: u32,
}

/// Everything depmod takes from one module. Its strings (hundreds of symbol names) are one
/// text, each named by a [`Span`]: a handful of allocations per module instead of one per
/// name, in the scan, in the scan cache and when freed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    pub(crate) text: String,
    /// Exported symbols with their CRCs, in `.symtab` order (`__crc_*`), or the strings of
    /// `__ksymtab_strings` (CRC 0) when the module has no `__crc_` symbol.
    pub(crate) exports: Vec<(Span, u64)>,
    /// Needed symbols: name, CRC, weak.
    pub(crate) deps: Vec<(Span, u64, bool)>,
    /// `alias`, `softdep` and `weakdep` records in `.modinfo` order.
    pub(crate) info: Vec<(InfoKey, Span)>,
}

impl Record {
    /// The string at `s` (empty if `s` is not one of this record's: never for a record
    /// built by [`RecordBuilder`] or decoded by the scan cache, which checks every span).
    pub(crate) fn str(&self, s: Span) -> &str {
        let start = s.start as usize;
        self.text.get(start..start + s.len as usize).unwrap_or("")
    }

    /// Exported symbols with their CRCs.
    pub fn exports(&self) -> impl ExactSizeIterator<Item = (&str, u64)> + Clone {
        self.exports.iter().map(|&(n, c)| (self.str(n), c))
    }

    /// Needed symbols, in kmod's order.
    pub fn deps(&self) -> impl ExactSizeIterator<Item = DepSymbol<'_>> + Clone {
        self.deps.iter().map(|&(n, crc, weak)| DepSymbol {
            name: self.str(n),
            crc,
            weak,
        })
    }

    /// Every span, in the order the scan cache writes them: exports, dependency symbols,
    /// `.modinfo` values.
    pub(crate) fn spans(&self) -> impl Iterator<Item = Span> + '_ {
        let e = self.exports.iter().map(|&(s, _)| s);
        let d = self.deps.iter().map(|&(s, _, _)| s);
        e.chain(d).chain(self.info.iter().map(|&(_, s)| s))
    }

    /// Every string, in that order.
    pub(crate) fn strings(&self) -> impl Iterator<Item = &str> + '_ {
        self.spans().map(|s| self.str(s))
    }

    /// The `alias`, `softdep` and `weakdep` records.
    pub fn info(&self) -> impl ExactSizeIterator<Item = (InfoKey, &str)> + Clone {
        self.info.iter().map(|&(k, v)| (k, self.str(v)))
    }
}

/// Builds a [`Record`], its strings appended to one text (bytes that are not UTF-8
/// replaced, as `String::from_utf8_lossy` does).
#[derive(Default)]
pub struct RecordBuilder {
    r: Record,
}

impl RecordBuilder {
    fn span(&mut self, b: &[u8]) -> Span {
        let start = self.r.text.len();
        // a module is at most 384 MiB (caps::MODULE, compress::DEFAULT_LIMIT), its text at
        // most three times that (a replacement character for each byte): below 4 GiB
        match std::str::from_utf8(b) {
            Ok(s) => self.r.text.push_str(s),
            Err(_) => self.r.text.push_str(&String::from_utf8_lossy(b)),
        }
        match (
            u32::try_from(start),
            u32::try_from(self.r.text.len() - start),
        ) {
            (Ok(start), Ok(len)) => Span { start, len },
            _ => Span::default(),
        }
    }

    pub fn export(&mut self, name: &[u8], crc: u64) {
        let n = self.span(name);
        self.r.exports.push((n, crc));
    }

    pub fn dep(&mut self, name: &[u8], crc: u64, weak: bool) {
        let n = self.span(name);
        self.r.deps.push((n, crc, weak));
    }

    pub fn info(&mut self, key: InfoKey, value: &[u8]) {
        let v = self.span(value);
        self.r.info.push((key, v));
    }

    pub fn finish(mut self) -> Record {
        self.r.text.shrink_to_fit();
        self.r
    }
}

/// Files up to this size are read whole: one `read` costs less than finding the parts.
const WHOLE_READ_MAX: u64 = 64 * 1024;
/// What the sections-only reader reads from the end of a file in one go: the section
/// table, `.shstrtab`, and usually `.strtab` and the end of `.symtab`.
const TAIL: u64 = 48 * 1024;
/// Wanted ranges closer than this are read with one call.
const MERGE_GAP: u64 = 16 * 1024;

/// Read and extract one module file named by its path (outside any root).
pub fn scan_file(path: &Path) -> Result<Record, Error> {
    let root = crate::root::Root::host()?;
    scan_in(&root, path, &path.to_string_lossy())
}

/// Read and extract the module file `rel` inside `root` (`shown` names it in errors). Only
/// a regular file is read, at the size of the file opened (not the size a walk saw before);
/// one larger than [`crate::root::caps::MODULE`] is refused before anything is allocated;
/// the memory it takes counts in the shared budget.
pub fn scan_in(root: &crate::root::Root, rel: &Path, shown: &str) -> Result<Record, Error> {
    let (file, st) = root.open_file(rel).map_err(|e| rename(e, shown))?;
    scan_opened(&file, st.size, shown)
}

/// Read and extract the module file `name` of the directory `dir`, which a walk has just
/// `lstat`ed as the regular file `seen` (see [`crate::root::Dir::open_stated_file`]; `shown`
/// names it in errors): as [`scan_in`], without resolving a path from the root.
pub fn scan_at(
    dir: &crate::root::Dir,
    name: &str,
    seen: &crate::root::Stat,
    shown: &str,
) -> Result<Record, Error> {
    opened_at(dir, name, seen, shown, scan_opened)
}

/// Open the file `name` of `dir` that a walk has just `lstat`ed as the regular file `seen`
/// (`shown` names it in errors), and read it with `read` (a scan, or the floor's reading).
fn opened_at<T>(
    dir: &crate::root::Dir,
    name: &str,
    seen: &crate::root::Stat,
    shown: &str,
    read: fn(&File, u64, &str) -> Result<T, Error>,
) -> Result<T, Error> {
    let (file, st) = dir
        .open_stated_file(name, seen)
        .map_err(|e| rename(e, shown))?;
    read(&file, st.size, shown)
}

/// Extract from an open regular file of `size` bytes.
fn scan_opened(file: &File, size: u64, shown: &str) -> Result<Record, Error> {
    read_opened(file, size, shown, scan_sparse, scan_bytes)
}

/// How a scan reads an open regular file of `size` bytes (`shown` names it in errors): one
/// over [`crate::root::caps::MODULE`] is refused before anything is allocated; one over
/// [`WHOLE_READ_MAX`] is first given to `sparse` under the shared memory budget, and what
/// it returns is the answer; else (or when it returns `None`) the whole file is read and
/// given to `whole`.
fn read_opened<T>(
    file: &File,
    size: u64,
    shown: &str,
    sparse: impl Fn(&File, u64) -> Option<T>,
    whole: impl FnOnce(&[u8]) -> Result<T, ParseError>,
) -> Result<T, Error> {
    let cap = crate::root::caps::MODULE;
    if size > cap {
        return Err(Error::parse(
            shown,
            ParseError::FileTooLarge { size, limit: cap },
        ));
    }
    if size > WHOLE_READ_MAX {
        let tried = crate::compress::BUDGET.run(|lease| {
            lease.resize(size)?;
            Ok(sparse(file, size))
        });
        if let Ok((Some(r), _lease)) = tried {
            return Ok(r);
        }
    }
    let data = crate::compress::read_file(file, size, cap).map_err(|e| Error::parse(shown, e))?;
    whole(&data).map_err(|e| Error::parse(shown, e))
}

/// Read the module file `name` of `dir` as [`scan_at`] reads it (only the sections it needs
/// of a plain ELF file over [`WHOLE_READ_MAX`], else the whole file, decompressed) and parse
/// nothing: the floor of a cold scan's reading (`depmod --decompress-only`). Returns the
/// bytes a scan would parse (the file's size for a sparse read).
pub fn read_only_at(
    dir: &crate::root::Dir,
    name: &str,
    seen: &crate::root::Stat,
    shown: &str,
) -> Result<u64, Error> {
    opened_at(dir, name, seen, shown, read_only_opened)
}

/// [`read_only_at`] for the file `rel` inside `root` (as [`scan_in`] opens it).
pub fn read_only_in(root: &crate::root::Root, rel: &Path, shown: &str) -> Result<u64, Error> {
    let (file, st) = root.open_file(rel).map_err(|e| rename(e, shown))?;
    read_only_opened(&file, st.size, shown)
}

/// [`read_only_at`] on an open regular file of `size` bytes. (The sparse read is taken as
/// it is: the scan also parses it and checks that every CRC lies in a section read, else
/// reads the whole file; Debian's modules always pass.)
fn read_only_opened(file: &File, size: u64, shown: &str) -> Result<u64, Error> {
    read_opened(
        file,
        size,
        shown,
        |file, size| read_sparse(file, size).ok().flatten().map(|_| size),
        |data| Ok(crate::module::decompress(data)?.len() as u64),
    )
}

/// An error about a path inside the root, named as the caller names the file.
fn rename(e: Error, shown: &str) -> Error {
    match e {
        Error::Io { source, .. } => Error::io(shown, source),
        Error::Parse { source, .. } => Error::parse(shown, source),
        e => e,
    }
}

/// The sections-only path: `None` on any surprise (not plain ELF, a file changed under us,
/// an odd layout, a CRC outside the sections read); the caller then reads the whole file.
#[doc(hidden)]
pub fn scan_sparse(file: &File, size: u64) -> Option<Record> {
    let sparse = read_sparse(file, size).ok()??;
    let bytes = sparse.buf.bytes(size as usize);
    let elf = ElfFile::parse(bytes, |_| false).ok()?;
    // every CRC must live in a section that was read, or the whole file is needed
    crc_sections_loaded(&elf, &sparse.loaded).then(|| extract(&elf))
}

/// Extract from the bytes of a module file of any supported compression.
pub fn scan_bytes(data: &[u8]) -> Result<Record, ParseError> {
    let image = crate::module::decompress(data)?;
    scan_image(&image)
}

/// Extract from a decompressed module image.
pub fn scan_image(image: &[u8]) -> Result<Record, ParseError> {
    let aligned;
    let image = if image.as_ptr().align_offset(8) != 0 {
        aligned = to_words(image);
        words_as_bytes(&aligned, image.len())
    } else {
        image
    };
    let elf = ElfFile::parse(image, |_| false)?;
    Ok(extract(&elf))
}

/// Only decompress a file inside `root` (for measuring the decoder's share of a scan).
pub fn decompress_in(root: &crate::root::Root, rel: &Path) -> Result<u64, Error> {
    let data = root.read(rel, crate::root::caps::MODULE)?;
    let image = crate::module::decompress(&data).map_err(|e| Error::parse(root.display(rel), e))?;
    Ok(image.len() as u64)
}

/// The extraction proper, on a parsed ELF file.
pub fn extract(elf: &ElfFile) -> Record {
    let mut b = RecordBuilder::default();
    // the text's size, roughly: every symbol's name and the records kept
    let names: usize = elf.symbols.iter().map(|s| s.name.len()).sum();
    b.r.text.reserve(names + 256);
    exports(elf, &mut b);
    dependency_symbols(elf, &mut b);
    if let Some(data) = elf.section_by_name(".modinfo").and_then(|(_, s)| s.data) {
        for (key, value) in modinfo::records(data) {
            if let Some(k) = InfoKey::from_key(key) {
                b.info(k, value);
            }
        }
    }
    b.finish()
}

/// kmod's `kmod_elf_get_symbols`.
fn exports(elf: &ElfFile, b: &mut RecordBuilder) {
    let mut any = false;
    for s in elf.symbols.iter().skip(1) {
        if let Some(name) = s.name.strip_prefix(b"__crc_") {
            b.export(name, resolve_crc(elf, s.value, s.shndx));
            any = true;
        }
    }
    if any {
        return;
    }
    // fallback: every string of __ksymtab_strings
    let Some(strings) = elf
        .section_by_name("__ksymtab_strings")
        .and_then(|(_, s)| s.data)
    else {
        return;
    };
    let start = strings
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(strings.len())
        .min(strings.len().saturating_sub(1));
    let body = &strings[start..];
    if body.len() <= 1 {
        return;
    }
    for s in body.split(|&b| b == 0).filter(|s| !s.is_empty()) {
        b.export(s, 0);
    }
}

/// kmod's `kmod_elf_resolve_crc`: an absolute (or undefined) symbol's value is the CRC;
/// otherwise the value is an offset into the symbol's section holding a 32-bit CRC.
/// `u64::MAX` (kmod's `(uint64_t)-1`) when that cannot be read.
fn resolve_crc(elf: &ElfFile, value: u64, shndx: u16) -> u64 {
    if shndx == elf::SHN_ABS || shndx == elf::SHN_UNDEF {
        return value;
    }
    let Some(sec) = elf.sections.get(shndx as usize) else {
        return u64::MAX;
    };
    if value > sec.size.wrapping_sub(4) {
        return u64::MAX;
    }
    sec.data
        .and_then(|d| elf.read_uint(d, value, 4))
        .unwrap_or(u64::MAX)
}

/// kmod's `kmod_elf_get_dependency_symbols`.
fn dependency_symbols(elf: &ElfFile, b: &mut RecordBuilder) {
    let (crc_len, step) = if elf.ident.bits == 32 {
        (4usize, 64usize)
    } else {
        (8, 64)
    };
    let versions: &[u8] = elf
        .section_by_name("__versions")
        .and_then(|(_, s)| s.data)
        .filter(|d| d.len() % step == 0)
        .unwrap_or(&[]);
    let records: Vec<(&[u8], u64)> = versions
        .chunks_exact(step)
        .enumerate()
        .map(|(i, r)| {
            // the name is read as a C string from the record on, as kmod does
            let name = cstr_at(versions, (i * step + crc_len) as u64).unwrap_or(&r[crc_len..]);
            (name, elf.read_uint(r, 0, crc_len).unwrap_or(0))
        })
        .collect();
    let mut first: rustc_hash::FxHashMap<&[u8], usize> = Default::default();
    first.reserve(records.len());
    for (i, (name, _)) in records.iter().enumerate().rev() {
        first.insert(name, i);
    }
    let mut visited = vec![false; records.len()];
    let sparc = matches!(elf.ident.machine, elf::EM_SPARC | elf::EM_SPARCV9);
    for s in elf.symbols.iter().skip(1) {
        if s.shndx != elf::SHN_UNDEF || (sparc && s.kind == 13/* STT_REGISTER */) {
            continue;
        }
        if s.name.is_empty() {
            continue;
        }
        let crc = match first.get(s.name) {
            Some(&i) => {
                visited[i] = true;
                records[i].1
            }
            None => 0,
        };
        b.dep(s.name, crc, s.bind == elf::STB_WEAK);
    }
    for (i, (name, crc)) in records.iter().enumerate() {
        if !visited[i] {
            b.dep(name, *crc, false);
        }
    }
}

// --- reading only what is needed -------------------------------------------------------------

struct Sparse {
    buf: ZeroWords,
    /// Section indexes whose contents were read.
    loaded: Vec<bool>,
}

/// Modules up to this size are read sparsely into a buffer that each thread keeps, zeroed
/// again where it was written once the module is done: no allocation and no page fault per
/// module. (A fresh zeroed buffer of a module's size is cleared in full by the allocator,
/// recycled memory; a fresh mapping faults on every page the reads touch.) At most this
/// much stays allocated per thread.
const POOLED_MAX: usize = 4 << 20;

thread_local! {
    /// Each thread's buffer for the sparse reader: all zeros between uses.
    static POOL: std::cell::RefCell<AnonWords> = std::cell::RefCell::new(AnonWords::default());
}

/// Zero words in an anonymous private mapping of their own: the system's zero page until
/// written, each page faulted in only where touched. (`vec![0; n]` is `calloc`, which
/// clears in full, page faults and all, what it recycles from a thread's heap, and a
/// buffer of megabytes often is.)
struct AnonWords {
    ptr: std::ptr::NonNull<u64>,
    len: usize,
}

// SAFETY: the mapping is owned by the value alone (as a `Vec<u64>` owns its buffer)
unsafe impl Send for AnonWords {}

impl Default for AnonWords {
    fn default() -> AnonWords {
        AnonWords {
            ptr: std::ptr::NonNull::dangling(),
            len: 0,
        }
    }
}

impl AnonWords {
    /// `len` zero words; `None` when the system gives no mapping.
    fn new(len: usize) -> Option<AnonWords> {
        if len == 0 {
            return Some(AnonWords::default());
        }
        let bytes = len.checked_mul(8)?;
        use rustix::mm::{MapFlags, ProtFlags};
        // SAFETY: a new private anonymous mapping, at an address the system chooses
        let p = unsafe {
            rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                bytes,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE,
            )
        }
        .ok()?;
        Some(AnonWords {
            ptr: std::ptr::NonNull::new(p.cast())?,
            len,
        })
    }
}

impl std::ops::Deref for AnonWords {
    type Target = [u64];
    fn deref(&self) -> &[u64] {
        // SAFETY: `len` words, mapped readable and writable while `self` lives (or dangling
        // and empty), page aligned
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl std::ops::DerefMut for AnonWords {
    fn deref_mut(&mut self) -> &mut [u64] {
        // SAFETY: as above; the borrow is unique
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for AnonWords {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: the mapping made in `new`, of this size, no longer borrowed
            let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len * 8) };
        }
    }
}

/// Zeroed 8-byte words for one module's sparse read: the thread's pooled buffer, or a fresh
/// one for a module larger than [`POOLED_MAX`]. Every byte written goes through
/// [`ZeroWords::bytes_mut`], which remembers it, so that the pooled buffer is zeroed again
/// when this is dropped (whatever the outcome of the read).
struct ZeroWords {
    words: AnonWords,
    /// Words in use.
    len: usize,
    pooled: bool,
    /// Byte ranges written.
    dirty: Vec<(usize, usize)>,
}

impl ZeroWords {
    /// `None` when the system gives no memory for it.
    fn new(len: usize) -> Option<ZeroWords> {
        if len.saturating_mul(8) > POOLED_MAX {
            return Some(ZeroWords {
                words: AnonWords::new(len)?,
                len,
                pooled: false,
                dirty: Vec::new(),
            });
        }
        let mut words = POOL.with(|p| std::mem::take(&mut *p.borrow_mut()));
        if words.len() < len {
            // made once at its largest, faulted in only where written (grown step by step,
            // it would be copied and cleared at each step)
            words = AnonWords::new(POOLED_MAX / 8)?;
        }
        Some(ZeroWords {
            words,
            len,
            pooled: true,
            dirty: Vec::new(),
        })
    }

    /// The bytes of the module (`size` of them).
    fn bytes(&self, size: usize) -> &[u8] {
        words_as_bytes(&self.words[..self.len], size)
    }

    /// The bytes `start..end`, to be written.
    fn bytes_mut(&mut self, start: usize, end: usize) -> &mut [u8] {
        self.dirty.push((start, end));
        &mut words_as_bytes_mut(&mut self.words[..self.len])[start..end]
    }
}

impl Drop for ZeroWords {
    fn drop(&mut self) {
        if !self.pooled {
            return;
        }
        for &(start, end) in &self.dirty {
            let to = end.div_ceil(8).min(self.words.len());
            if let Some(w) = self.words.get_mut(start / 8..to) {
                w.fill(0);
            }
        }
        let words = std::mem::take(&mut self.words);
        POOL.with(|p| *p.borrow_mut() = words);
    }
}

fn to_words(data: &[u8]) -> Vec<u64> {
    let mut words = vec![0u64; data.len().div_ceil(8)];
    words_as_bytes_mut(&mut words)[..data.len()].copy_from_slice(data);
    words
}

fn words_as_bytes(words: &[u64], len: usize) -> &[u8] {
    // SAFETY: u64 has no padding and any byte pattern is valid; len <= 8 * words.len()
    let all = unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), words.len() * 8) };
    &all[..len]
}

fn words_as_bytes_mut(words: &mut [u64]) -> &mut [u8] {
    // SAFETY: as above; the borrow is unique
    unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), words.len() * 8) }
}

fn crc_sections_loaded(elf: &ElfFile, loaded: &[bool]) -> bool {
    elf.symbols.iter().skip(1).all(|s| {
        !s.name.starts_with(b"__crc_")
            || s.shndx == elf::SHN_ABS
            || s.shndx == elf::SHN_UNDEF
            || loaded.get(s.shndx as usize).copied().unwrap_or(true)
    })
}

/// Where an ELF file's section table is, from its header.
struct Geometry {
    is64: bool,
    be: bool,
    shoff: u64,
    shentsize: u64,
    shnum: u64,
    shstrndx: u64,
}

/// One section header, as far as the reader needs it.
struct Sh {
    name: u64,
    kind: u64,
    offset: u64,
    size: u64,
    link: u64,
}

/// An unsigned field of `n` bytes at `off`, in the file's byte order.
fn field(b: &[u8], off: usize, n: usize, be: bool) -> u64 {
    let s = &b[off..off + n];
    let mut v = 0u64;
    if be {
        for &x in s {
            v = (v << 8) | x as u64;
        }
    } else {
        for &x in s.iter().rev() {
            v = (v << 8) | x as u64;
        }
    }
    v
}

/// The section table's place from the first 64 bytes of a plain ELF file of `size` bytes;
/// `None` for anything unusual.
fn geometry(ident: &[u8; 64], size: u64) -> Option<Geometry> {
    if Compression::detect(ident) != Some(Compression::None) {
        return None;
    }
    let is64 = match ident[4] {
        1 => false,
        2 => true,
        _ => return None,
    };
    let be = match ident[5] {
        1 => false,
        2 => true,
        _ => return None,
    };
    let rd = |off, n| field(ident, off, n, be);
    let (shoff, shentsize, shnum, shstrndx) = if is64 {
        (rd(0x28, 8), rd(0x3a, 2), rd(0x3c, 2), rd(0x3e, 2))
    } else {
        (rd(0x20, 4), rd(0x2e, 2), rd(0x30, 2), rd(0x32, 2))
    };
    let want_ent = if is64 { 64 } else { 40 };
    if shentsize != want_ent || shnum == 0 || shstrndx >= shnum {
        return None;
    }
    if shoff
        .checked_add(shentsize * shnum)
        .is_none_or(|end| end > size)
    {
        return None;
    }
    Some(Geometry {
        is64,
        be,
        shoff,
        shentsize,
        shnum,
        shstrndx,
    })
}

fn section_headers(table: &[u8], g: &Geometry) -> Vec<Sh> {
    let rd = |e: &[u8], off, n| field(e, off, n, g.be);
    table
        .chunks_exact(g.shentsize as usize)
        .map(|e| {
            if g.is64 {
                Sh {
                    name: rd(e, 0, 4),
                    kind: rd(e, 4, 4),
                    offset: rd(e, 0x18, 8),
                    size: rd(e, 0x20, 8),
                    link: rd(e, 0x28, 4),
                }
            } else {
                Sh {
                    name: rd(e, 0, 4),
                    kind: rd(e, 4, 4),
                    offset: rd(e, 0x10, 4),
                    size: rd(e, 0x14, 4),
                    link: rd(e, 0x18, 4),
                }
            }
        })
        .collect()
}

/// The sections depmod reads: `.modinfo`, `__versions`, the symbol table and its strings,
/// `__ksymtab_strings`, `__kcrctab*`, and the section names.
fn wanted_sections(sh: &[Sh], names: &[u8], shstrndx: usize) -> Vec<bool> {
    let mut want = vec![false; sh.len()];
    want[shstrndx] = true;
    for (i, s) in sh.iter().enumerate() {
        let name = cstr_at(names, s.name).unwrap_or(b"");
        let needed = matches!(
            name,
            b".modinfo" | b"__versions" | b".symtab" | b".strtab" | b"__ksymtab_strings"
        ) || name.starts_with(b"__kcrctab")
            || s.kind == elf::SHT_SYMTAB as u64
            || s.kind == elf::SHT_SYMTAB_SHNDX as u64;
        if needed {
            want[i] = true;
            if s.kind == elf::SHT_SYMTAB as u64 && (s.link as usize) < sh.len() {
                want[s.link as usize] = true;
            }
        }
    }
    want
}

/// Byte ranges, sorted, those closer than [`MERGE_GAP`] merged into one.
fn merge_ranges(mut ranges: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    ranges.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for (start, end) in ranges {
        match merged.last_mut() {
            Some(last) if start <= last.1 + MERGE_GAP => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

/// Read the header, the section table and the sections depmod uses into a zeroed buffer of
/// the file's size, at their file offsets. `None` when the file is not a plain ELF file or
/// anything about it is unusual: then the caller reads it whole.
fn read_sparse(file: &File, size: u64) -> std::io::Result<Option<Sparse>> {
    let mut ident = [0u8; 64];
    if size < 64 {
        return Ok(None);
    }
    file.read_exact_at(&mut ident, 0)?;
    let Some(g) = geometry(&ident, size) else {
        return Ok(None);
    };
    let Some(mut buf) = ZeroWords::new((size as usize).div_ceil(8)) else {
        return Ok(None);
    };
    buf.bytes_mut(0, 64).copy_from_slice(&ident);
    // the tail: the section table and what usually precedes it
    let tail = g.shoff.min(size.saturating_sub(TAIL));
    file.read_exact_at(buf.bytes_mut(tail as usize, size as usize), tail)?;
    let have = |off: u64, len: u64| off >= tail || off + len <= 64;
    let table_end = (g.shoff + g.shentsize * g.shnum) as usize;
    let sh = section_headers(&buf.bytes(size as usize)[g.shoff as usize..table_end], &g);
    let in_file = |s: &Sh| {
        s.kind != elf::SHT_NOBITS as u64 && s.offset.checked_add(s.size).is_some_and(|e| e <= size)
    };
    let strtab = &sh[g.shstrndx as usize];
    if !in_file(strtab) {
        return Ok(None);
    }
    let names_range = strtab.offset as usize..(strtab.offset + strtab.size) as usize;
    if !have(strtab.offset, strtab.size) {
        file.read_exact_at(
            buf.bytes_mut(names_range.start, names_range.end),
            strtab.offset,
        )?;
    }
    let want = wanted_sections(
        &sh,
        &buf.bytes(size as usize)[names_range],
        g.shstrndx as usize,
    );
    // the wanted ranges not read yet, merged when close
    let ranges: Vec<(u64, u64)> = sh
        .iter()
        .zip(&want)
        .filter(|(s, w)| **w && in_file(s) && s.size > 0 && !have(s.offset, s.size))
        .map(|(s, _)| (s.offset, (s.offset + s.size).min(tail)))
        .collect();
    for (start, end) in merge_ranges(ranges) {
        file.read_exact_at(buf.bytes_mut(start as usize, end as usize), start)?;
    }
    let loaded = sh
        .iter()
        .zip(&want)
        .map(|(s, w)| *w && in_file(s))
        .collect();
    Ok(Some(Sparse { buf, loaded }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn testdata_module(rel: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/lib/modules")
            .join(rel)
    }

    fn find(dir: &Path, name: &str) -> Option<std::path::PathBuf> {
        for e in std::fs::read_dir(dir).ok()?.flatten() {
            let p = e.path();
            if p.is_dir() {
                if let Some(f) = find(&p, name) {
                    return Some(f);
                }
            } else if p.file_name().is_some_and(|n| n == name) {
                return Some(p);
            }
        }
        None
    }

    #[test]
    fn sparse_read_equals_whole_read_on_real_modules() {
        let root = testdata_module("");
        let mut n = 0;
        let mut stack = vec![root];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.to_string_lossy().ends_with(".ko") {
                    let whole = scan_bytes(&std::fs::read(&p).unwrap()).unwrap();
                    let f = File::open(&p).unwrap();
                    let size = f.metadata().unwrap().len();
                    let sparse = scan_sparse(&f, size).expect("a plain module reads sparsely");
                    assert_eq!(whole, sparse, "{}", p.display());
                    assert_eq!(whole, scan_file(&p).unwrap(), "{}", p.display());
                    n += 1;
                }
            }
        }
        assert!(n >= 10, "only {n} modules in testdata");
        // the thread's buffer was used, and was left all zeros
        POOL.with(|p| {
            let p = p.borrow();
            assert!(!p.is_empty());
            assert!(
                p.iter().all(|&w| w == 0),
                "the pooled buffer keeps old bytes"
            );
        });
        // one byte written anywhere is zeroed again, whatever happens next
        let mut z = ZeroWords::new(1000).unwrap();
        z.bytes_mut(4000, 7999).fill(0xff);
        z.bytes_mut(3, 4).fill(0xff);
        drop(z);
        POOL.with(|p| assert!(p.borrow().iter().all(|&w| w == 0)));
    }

    #[test]
    fn real_exports_imports_and_aliases() {
        let dir = testdata_module("6.1.0-56-amd64");
        let crc = scan_file(&find(&dir, "crc-itu-t.ko").unwrap()).unwrap();
        let names: Vec<&str> = crc.exports().map(|(n, _)| n).collect();
        assert_eq!(names, ["crc_itu_t_table", "crc_itu_t"], "in .symtab order");
        assert!(crc.exports().all(|(_, c)| c != 0 && c <= u32::MAX as u64));

        let ftp = scan_file(&find(&dir, "nf_conntrack_ftp.ko").unwrap()).unwrap();
        let dep = |n: &str| ftp.deps().find(|d| d.name == n);
        let exp = dep("nf_ct_expect_alloc").expect("ftp needs nf_ct_expect_alloc");
        assert_ne!(exp.crc, 0, "its CRC comes from __versions");
        assert!(!exp.weak);
        // module_layout is no undefined symbol: it is appended from the unvisited __versions
        assert_eq!(ftp.deps().last().unwrap().name, "module_layout");
        assert!(
            ftp.info()
                .any(|(k, v)| k == InfoKey::Alias && v == "nfct-helper-ftp")
        );
    }
}
