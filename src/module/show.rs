//! kmod's text forms of a module: what `modinfo` prints (`modinfo_do()`, byte for byte),
//! what `modprobe --dump-modversions` and `--show-exports` print, and Module.symvers lines.
//! Pure functions of a parsed [`Module`] (or its image); the commands only write them out.

use super::{ModinfoEntry, Module, Versions};
use std::path::Path;

/// `strerror(errno)` as kmod's messages print it.
fn strerror(errno: i32) -> String {
    crate::error::errno_text(&std::io::Error::from_raw_os_error(errno))
}

/// What `modinfo` shows for one module: its file (or `None` if built in), name and records.
pub struct Shown {
    pub filename: Option<String>,
    pub name: String,
    pub records: Vec<ModinfoEntry>,
}

/// kmod's list: `.modinfo` records, then the signature fields when kmod can read them.
pub fn records(m: &Module) -> Vec<ModinfoEntry> {
    let mut out = m.modinfo.clone();
    if let super::Trailer::Signed(sig) = &m.signature
        && let Some(info) = sig.info()
    {
        let rec = |k: &str, v: Vec<u8>| ModinfoEntry {
            key: k.as_bytes().to_vec(),
            value: v,
        };
        out.push(rec("sig_id", info.id_type.as_bytes().to_vec()));
        out.push(rec("signer", info.signer));
        out.push(rec("sig_key", wrapped_hex(&info.key_id)));
        out.push(rec("sig_hashalgo", info.hash_algo.as_bytes().to_vec()));
        out.push(rec("signature", wrapped_hex(&info.signature)));
    }
    out
}

/// `AB:CD:...` with `\n\t\t` after every 20 bytes, as kmod prints keys and signatures.
pub fn wrapped_hex(b: &[u8]) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = Vec::with_capacity(b.len() * 3 + b.len() / 20 * 3);
    for (i, &x) in b.iter().enumerate() {
        s.push(HEX[(x >> 4) as usize]);
        s.push(HEX[(x & 15) as usize]);
        if i + 1 < b.len() {
            s.push(b':');
            if (i + 1) % 20 == 0 {
                s.extend_from_slice(b"\n\t\t");
            }
        }
    }
    s
}

/// Render one module exactly as kmod's `modinfo_do()`.
pub fn render(shown: &Shown, field: Option<&str>, sep: u8, out: &mut Vec<u8>) {
    let filename = shown.filename.as_deref().unwrap_or("(builtin)");
    if shown.filename.is_none() {
        match field {
            None => line(out, "name:", shown.name.as_bytes(), sep),
            Some("name") => value(out, shown.name.as_bytes(), sep),
            _ => {}
        }
    }
    match field {
        Some("filename") => return value(out, filename.as_bytes(), sep),
        None => line(out, "filename:", filename.as_bytes(), sep),
        _ => {}
    }
    if field == Some("parm") {
        for p in params(&shown.records) {
            value(out, &p.render_short(), sep);
        }
        return;
    }
    let mut parm_records = Vec::new();
    for r in &shown.records {
        if let Some(f) = field {
            if r.key == f.as_bytes() {
                value(out, &r.value, sep);
            }
            continue;
        }
        if r.key == b"parm" || r.key == b"parmtype" {
            parm_records.push(r.clone());
            continue;
        }
        if sep == 0 {
            out.extend_from_slice(&r.key);
            out.push(b'=');
            value(out, &r.value, sep);
            continue;
        }
        // printf("%s:%-*s%s%c", key, 15 - keylen, "", value): a negative width pads too
        out.extend_from_slice(&r.key);
        out.push(b':');
        let pad = (15 - r.key.len() as i64).unsigned_abs() as usize;
        out.extend(std::iter::repeat_n(b' ', pad));
        value(out, &r.value, sep);
    }
    if field.is_none() {
        for p in params(&parm_records) {
            line(out, "parm:", &p.render_full(), sep);
        }
    }
}

fn value(out: &mut Vec<u8>, v: &[u8], sep: u8) {
    out.extend_from_slice(v);
    out.push(sep);
}

/// `printf("%-16s%s%c", label, value, sep)`.
pub fn line(out: &mut Vec<u8>, label: &str, v: &[u8], sep: u8) {
    out.extend_from_slice(format!("{label:<16}").as_bytes());
    value(out, v, sep);
}

struct Param {
    name: Vec<u8>,
    desc: Option<Vec<u8>>,
    ty: Option<Vec<u8>>,
}

impl Param {
    /// Full listing: `name:desc (type)`, `name:type`, `name:desc`.
    fn render_full(&self) -> Vec<u8> {
        self.render(false)
    }
    /// `-p` / `-F parm`: `name:desc (type)`, `name: (type)`, `name:desc`.
    fn render_short(&self) -> Vec<u8> {
        self.render(true)
    }
    fn render(&self, short: bool) -> Vec<u8> {
        let mut s = self.name.clone();
        s.push(b':');
        match (&self.desc, &self.ty) {
            (None, ty) => {
                let ty = ty.as_deref().unwrap_or_default();
                if short {
                    s.extend_from_slice(b" (");
                    s.extend_from_slice(ty);
                    s.push(b')');
                } else {
                    s.extend_from_slice(ty);
                }
            }
            (Some(d), Some(ty)) => {
                s.extend_from_slice(d);
                s.extend_from_slice(b" (");
                s.extend_from_slice(ty);
                s.push(b')');
            }
            (Some(d), None) => s.extend_from_slice(d),
        }
        s
    }
}

/// kmod's parameter list: one entry per name, the last `parm`/`parmtype` value of each name
/// wins, and new names are pushed at the front (so they print in reverse order of first
/// appearance). Records without `:` are skipped (kmod prints an error for them).
fn params(records: &[ModinfoEntry]) -> Vec<Param> {
    let mut list: Vec<Param> = Vec::new();
    for r in records {
        let is_desc = r.key == b"parm";
        if !is_desc && r.key != b"parmtype" {
            continue;
        }
        let Some(colon) = r.value.iter().position(|&b| b == b':') else {
            eprintln!(
                "modinfo: ERROR: Found invalid \"{}={}\": missing ':'",
                String::from_utf8_lossy(&r.key),
                String::from_utf8_lossy(&r.value)
            );
            continue;
        };
        let name = &r.value[..colon];
        let rest = r.value[colon + 1..].to_vec();
        let idx = match list.iter().position(|p| p.name == name) {
            Some(i) => i,
            None => {
                list.push(Param {
                    name: name.to_vec(),
                    desc: None,
                    ty: None,
                });
                list.len() - 1
            }
        };
        if is_desc {
            list[idx].desc = Some(rest);
        } else {
            list[idx].ty = Some(rest);
        }
    }
    list.reverse();
    list
}

/// `0x%08lx\t%s\n` per entry, as kmod prints it (the full stored `unsigned long`). A
/// module without `__versions` is an error, as in kmod (`No such file or directory`).
pub fn render_versions(m: &Module) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    match &m.versions {
        Versions::Absent => return Err(strerror(2)),
        Versions::Present { entries, .. } => {
            for e in entries {
                out.extend_from_slice(format!("0x{:08x}\t{}\n", e.crc, e.name).as_bytes());
            }
        }
        Versions::Malformed { .. } => return Err(strerror(22)),
    }
    Ok(out)
}

/// `crc\tsymbol\tmodule\texport type\tnamespace\n`, as Module.symvers lines.
pub fn render_exports(m: &Module, owner: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for e in &m.exports {
        out.extend_from_slice(
            format!(
                "0x{:08x}\t{}\t{}\t{}\t{}\n",
                e.crc.unwrap_or(0),
                e.name,
                owner,
                e.kind.as_str(),
                e.namespace
            )
            .as_bytes(),
        );
    }
    out
}

/// The owner column Module.symvers would have: the path below `lib/modules/<kver>/<top>/`
/// without the `.ko[.ext]` suffix (`drivers/cdrom/cdrom`), else the bare module file stem.
pub fn symvers_owner(path: &Path) -> String {
    let s = path.to_string_lossy();
    let stem = |p: &str| super::strip_module_ext(p).unwrap_or(p).to_string();
    if let Some(i) = s.find("/lib/modules/") {
        let rest = &s[i + "/lib/modules/".len()..];
        // skip <kver>/<top>/
        let mut parts = rest.splitn(3, '/');
        if let (Some(_kver), Some(_top), Some(rel)) = (parts.next(), parts.next(), parts.next()) {
            return stem(rel);
        }
    }
    stem(
        &path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default(),
    )
}

/// kmod's `kmod_elf_get_symbols`: the `__crc_` symbols of the symbol table in its order
/// with their CRCs (read from the section they point into, or absolute), else the names of
/// `__ksymtab_strings` with CRC 0.
pub fn kmod_symbols(image: &[u8]) -> Result<Vec<(String, u64)>, i32> {
    use object::elf::{SHN_ABS, SHN_UNDEF};
    let elf = super::elf::ElfFile::parse(image, |_| false).map_err(|_| 8)?;
    let mut out = Vec::new();
    for s in &elf.symbols {
        let Some(name) = s.name.strip_prefix(b"__crc_") else {
            continue;
        };
        let crc = if s.shndx == SHN_ABS || s.shndx == SHN_UNDEF {
            s.value
        } else {
            elf.sections
                .get(s.shndx as usize)
                .filter(|sec| sec.size >= 4 && s.value <= sec.size - 4)
                .and_then(|sec| elf.read_uint(sec.data?, s.value, 4))
                .unwrap_or(u64::MAX)
        };
        out.push((String::from_utf8_lossy(name).into_owned(), crc));
    }
    if !out.is_empty() {
        return Ok(out);
    }
    let (_, strings) = elf.section_by_name("__ksymtab_strings").ok_or(2)?;
    let data = strings.data.unwrap_or(&[]);
    for w in data.split(|&b| b == 0) {
        if !w.is_empty() {
            out.push((String::from_utf8_lossy(w).into_owned(), 0));
        }
    }
    Ok(out)
}
