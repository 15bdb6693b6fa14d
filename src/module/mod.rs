//! One kernel module file, read completely: compression, signature, ELF, `.modinfo`,
//! imports with CRCs, exports with CRCs, undefined symbols.

pub mod elf;
pub(crate) mod exports;
pub mod modinfo;
pub mod show;
pub mod signature;
pub(crate) mod versions;

#[cfg(test)]
mod testelf;

use crate::compress::{self, Compression};
use crate::error::{Error, ParseError};
use serde::{Serialize, Serializer};
use std::path::Path;

pub use elf::Ident;
pub use exports::{Export, ExportKind};
pub use modinfo::ModinfoEntry;
pub use signature::{SigInfo, Signature, Trailer};
pub use versions::{ExtVersions, VersionEntry, Versions, VersionsFormat};

/// A symbol the module needs from elsewhere (`SHN_UNDEF` in `.symtab`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Undefined {
    pub name: String,
    pub weak: bool,
}

/// How much of a module to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// Everything, including the symbol table: exports and undefined symbols.
    Full,
    /// Sections only: `.modinfo`, `__versions`, extended versions, `struct module` size and
    /// the signature; `exports` and `undefined` are left empty. What `info` and `modversions`
    /// need, at a fraction of the cost.
    Sections,
}

/// Everything kabi knows about one module file.
#[derive(Debug, Clone, Serialize)]
pub struct Module {
    /// The module name: `.modinfo name=`, else `struct module.name`, else the file name.
    pub name: String,
    pub compression: Compression,
    /// Size of the decompressed image including any signature trailer.
    pub image_size: u64,
    pub elf: Ident,
    pub modinfo: Vec<ModinfoEntry>,
    pub versions: Versions,
    pub ext_versions: ExtVersions,
    pub exports: Vec<Export>,
    pub undefined: Vec<Undefined>,
    /// `sh_size` of `.gnu.linkonce.this_module` (`sizeof(struct module)` it was built for).
    pub this_module_size: Option<u64>,
    #[serde(serialize_with = "ser_trailer")]
    pub signature: Trailer,
}

impl Module {
    /// Read and parse a module file of any supported compression.
    pub fn open(path: impl AsRef<Path>) -> Result<Module, Error> {
        Module::open_with(path, Detail::Full)
    }

    /// Read and parse a module file to the given level of detail.
    pub fn open_with(path: impl AsRef<Path>, detail: Detail) -> Result<Module, Error> {
        let path = path.as_ref();
        let root = crate::root::Root::host()?;
        let abs = std::path::absolute(path).map_err(|e| Error::io(path, e))?;
        Module::read_in(&root, &abs, detail).map_err(|e| match e {
            Error::Io { source, .. } => Error::io(path, source),
            Error::Parse { source, .. } => Error::parse(path, source),
            e => e,
        })
    }

    /// Read and parse the module file `rel` inside `root` (a regular file, at most
    /// [`crate::root::caps::MODULE`] bytes, its memory counted in the shared budget).
    pub fn read_in(root: &crate::root::Root, rel: &Path, detail: Detail) -> Result<Module, Error> {
        let shown = root.display(rel);
        let (f, st) = root.open_file(rel)?;
        let data = compress::read_file(&f, st.size, crate::root::caps::MODULE)
            .map_err(|e| Error::parse(&shown, e))?;
        Module::parse_file_with(&data, rel, detail).map_err(|e| Error::parse(&shown, e))
    }

    /// Parse the bytes of a module file; `path` only supplies the fallback name.
    pub fn parse_file(data: &[u8], path: &Path) -> Result<Module, ParseError> {
        Module::parse_file_with(data, path, Detail::Full)
    }

    pub fn parse_file_with(data: &[u8], path: &Path, detail: Detail) -> Result<Module, ParseError> {
        let image = decompress(data)?;
        let compression = Compression::detect(data).unwrap_or(Compression::None);
        let mut m = Module::parse_image_with(&image, detail)?;
        m.compression = compression;
        if m.name.is_empty() {
            m.name = name_from_path(path);
        }
        Ok(m)
    }

    /// Parse a decompressed module image (ELF plus optional signature trailer). The name is
    /// empty when neither `.modinfo` nor `struct module` gives one.
    pub fn parse_image(image: &[u8]) -> Result<Module, ParseError> {
        Module::parse_image_with(image, Detail::Full)
    }

    pub fn parse_image_with(image: &[u8], detail: Detail) -> Result<Module, ParseError> {
        // the ELF reader needs 8-byte alignment; a caller's slice may not have it
        let words: Vec<u64>;
        let image = if image.as_ptr().align_offset(8) != 0 {
            words = aligned_copy(image);
            // SAFETY: `words` holds at least `image.len()` initialized bytes and outlives `image`
            unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), image.len()) }
        } else {
            image
        };
        let (elf_bytes, trailer) = signature::split(image);
        let elf = match detail {
            Detail::Full => elf::ElfFile::parse(elf_bytes, exports::wants_relocs)?,
            Detail::Sections => elf::ElfFile::parse_sections(elf_bytes)?,
        };
        let modinfo = elf
            .section_by_name(".modinfo")
            .and_then(|(_, s)| s.data)
            .map(modinfo::parse)
            .unwrap_or_default();
        let this_module = elf
            .section_by_name(".gnu.linkonce.this_module")
            .map(|(_, s)| s);
        let name = modinfo::first(&modinfo, "name")
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .or_else(|| this_module.and_then(|s| struct_module_name(&elf, s.data?)))
            .unwrap_or_default();
        let undefined = elf
            .symbols
            .iter()
            .skip(1)
            .filter(|s| s.is_undefined() && !s.name.is_empty())
            .map(|s| Undefined {
                name: String::from_utf8_lossy(s.name).into_owned(),
                weak: s.is_weak(),
            })
            .collect();
        Ok(Module {
            name,
            compression: Compression::None,
            image_size: image.len() as u64,
            elf: elf.ident,
            versions: versions::parse(&elf),
            ext_versions: versions::parse_ext(&elf),
            exports: exports::parse(&elf),
            undefined,
            this_module_size: this_module.map(|s| s.size),
            modinfo,
            signature: trailer,
        })
    }

    /// The first `.modinfo` value of `key`.
    pub fn modinfo_first(&self, key: &str) -> Option<&[u8]> {
        modinfo::first(&self.modinfo, key)
    }

    pub fn vermagic(&self) -> Option<&[u8]> {
        self.modinfo_first("vermagic")
    }
}

/// `data` copied into 8-byte-aligned storage.
fn aligned_copy(data: &[u8]) -> Vec<u64> {
    let mut words = vec![0u64; data.len().div_ceil(8)];
    for (w, chunk) in words.iter_mut().zip(data.chunks(8)) {
        let mut b = [0u8; 8];
        b[..chunk.len()].copy_from_slice(chunk);
        *w = u64::from_ne_bytes(b);
    }
    words
}

/// A module image: the file's own bytes, or what they decompressed to (counted in the
/// memory budget until dropped).
pub enum Image<'a> {
    Plain(&'a [u8]),
    Decoded(compress::Decoded),
}

impl std::ops::Deref for Image<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Image::Plain(d) => d,
            Image::Decoded(d) => d,
        }
    }
}

/// Decompress a module file (chosen by magic bytes) with the default output cap.
pub fn decompress(data: &[u8]) -> Result<Image<'_>, ParseError> {
    match Compression::detect(data) {
        Some(Compression::None) => Ok(Image::Plain(data)),
        Some(kind) => compress::decompress(kind, data, compress::DEFAULT_LIMIT).map(Image::Decoded),
        None if data.is_empty() => Err(ParseError::Empty),
        None => Err(ParseError::UnknownFormat(hex_prefix(data))),
    }
}

fn hex_prefix(data: &[u8]) -> String {
    data.iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `struct module.name`: offset 24 on 64-bit, 12 on 32-bit (spec §1.3); accepted only if it
/// is a printable C string inside `MODULE_NAME_LEN`.
fn struct_module_name(elf: &elf::ElfFile, data: &[u8]) -> Option<String> {
    let (off, len) = if elf.ident.bits == 64 {
        (24, 56)
    } else {
        (12, 60)
    };
    let field = data.get(off..off + len)?;
    let name = elf::cstr_at(field, 0)?;
    (!name.is_empty() && name.iter().all(|b| b.is_ascii_graphic()))
        .then(|| String::from_utf8_lossy(name).into_owned())
}

/// The module name a file name implies: basename without `.ko[.ext]`, `-` as `_`.
pub fn name_from_path(path: &Path) -> String {
    let base = path
        .file_name()
        .map(|b| b.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = strip_module_ext(&base).unwrap_or(&base);
    stem.replace('-', "_")
}

/// `foo.ko`, `foo.ko.xz`, `foo.ko.zst`, `foo.ko.gz` → `foo`.
pub fn strip_module_ext(name: &str) -> Option<&str> {
    [".ko", ".ko.xz", ".ko.zst", ".ko.gz"]
        .iter()
        .find_map(|ext| name.strip_suffix(ext))
}

pub(crate) fn ser_bytes_lossy<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(b))
}

pub(crate) fn ser_hex<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex_colon(b))
}

/// `01:AB:...`, upper case, as kmod prints keys and signatures (without its line breaks).
pub fn hex_colon(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn ser_trailer<S: Serializer>(t: &Trailer, s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    #[serde(tag = "state", rename_all = "kebab-case")]
    enum View<'a> {
        Unsigned,
        Signed {
            header: &'a signature::SigHeader,
            #[serde(flatten)]
            info: Option<SigInfo>,
        },
        Malformed {
            reason: &'a str,
        },
    }
    match t {
        Trailer::Unsigned => View::Unsigned,
        Trailer::Signed(sig) => View::Signed {
            header: &sig.header,
            info: sig.info(),
        },
        Trailer::Malformed(r) => View::Malformed { reason: r },
    }
    .serialize(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unaligned_input_parses() {
        let real = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/lib/modules/6.1.0-56-amd64/kernel/lib/crc-itu-t.ko"
        ))
        .unwrap();
        let mut shifted = vec![0u8; real.len() + 1];
        shifted[1..].copy_from_slice(&real);
        let a = Module::parse_image(&real).unwrap();
        let b = Module::parse_image(&shifted[1..]).unwrap();
        assert_eq!(a.name, b.name);
        assert_eq!(a.exports, b.exports);
        assert_eq!(a.versions, b.versions);
    }
}
