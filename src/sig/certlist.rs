//! The certificates built into a kernel image: vmlinux's `system_certificate_list`
//! (`certs/system_certificates.S`), which `load_system_certificate_list()` loads into
//! `.builtin_trusted_keys` at boot.
//!
//! The list is in `.init.rodata` (linked into `.init.data` on x86): the certificates back to
//! back, each a DER SEQUENCE with a two-byte length (`30 82 hi lo`, the only form
//! `x509_load_certificate_list()` accepts); with `CONFIG_SYSTEM_EXTRA_CERTIFICATE` a
//! zero-filled reserve and an `int`; then, 8-aligned, `system_certificate_list_size` and
//! `module_cert_size` as `unsigned long`. A distribution vmlinux has section headers but no
//! symbol table, so the list is found by its shape: a run of certificates, starting 8-aligned,
//! followed (after zeros only) by a size word equal to the run's length and a second word equal
//! to the length of its first certificates (the module signing certificate, possibly none).
//! Nothing else in an image has that shape by accident.

use super::cert::{Cert, tlv_len};
use crate::error::ParseError;
use crate::module::elf::ElfFile;
use serde::Serialize;

/// The longest zero-filled reserve searched past the list (`CONFIG_SYSTEM_EXTRA_CERTIFICATE_SIZE`
/// defaults to 4096).
const MAX_RESERVE: usize = 1024 * 1024;

/// What a kernel image builds into `.builtin_trusted_keys`.
#[derive(Debug, Clone, Serialize)]
pub struct SystemCerts {
    /// The certificates the kernel loads, in list order.
    pub certs: Vec<Cert>,
    /// Entries the kernel would fail to load (`Problem loading in-kernel X.509 certificate`).
    pub errors: Vec<String>,
    /// The section that holds the list, and its virtual address.
    pub section: String,
    pub vaddr: u64,
    /// `system_certificate_list_size` and `module_cert_size`.
    pub list_size: u64,
    pub module_cert_size: u64,
}

fn word(data: &[u8], at: usize, size: usize, big: bool) -> Option<u64> {
    let b = data.get(at..at.checked_add(size)?)?;
    let mut v = 0u64;
    if big {
        for &x in b {
            v = (v << 8) | x as u64;
        }
    } else {
        for &x in b.iter().rev() {
            v = (v << 8) | x as u64;
        }
    }
    Some(v)
}

/// The list at `start` in `data` if it is one: its end and `module_cert_size`.
fn list_at(data: &[u8], start: usize, wsize: usize, big: bool) -> Option<(usize, u64)> {
    // walk certificates as x509_load_certificate_list() does
    let mut ends = vec![start];
    let mut p = start;
    while data.get(p..p + 2) == Some(&[0x30, 0x82]) {
        let len = tlv_len(&data[p..])?;
        p += len;
        ends.push(p);
    }
    if p == start {
        return None;
    }
    // then zeros (padding, the reserve of CONFIG_SYSTEM_EXTRA_CERTIFICATE) up to the size
    // word, 8-aligned: the first non-zero byte lies in it
    let first = (p + 7) & !7;
    let limit = first.saturating_add(MAX_RESERVE).min(data.len());
    let nz = p + data.get(p..limit)?.iter().position(|&b| b != 0)?;
    if nz < first {
        return None;
    }
    let q = nz & !7;
    let size = word(data, q, wsize, big)?;
    if size == 0 || !ends.iter().any(|&e| (e - start) as u64 == size) {
        return None;
    }
    // module_cert_size follows, aligned to 8
    let m = (q + wsize + 7) & !7;
    let msize = word(data, m, wsize, big)?;
    (msize <= size && ends.iter().any(|&e| (e - start) as u64 == msize))
        .then_some((start + size as usize, msize))
}

/// Find the system certificate list of a vmlinux (ELF with section headers).
pub fn find(vmlinux: &[u8]) -> Result<Option<SystemCerts>, ParseError> {
    let elf = ElfFile::parse_sections(vmlinux)?;
    let wsize = elf.ident.ptr_size();
    let big = elf.ident.big_endian;
    // .init.data first (where x86 and most architectures put .init.rodata), then the rest
    let mut order: Vec<usize> = (1..elf.sections.len())
        .filter(|&i| elf.sections[i].is_alloc() && elf.sections[i].data.is_some())
        .collect();
    order.sort_by_key(|&i| {
        let n = elf.sections[i].name;
        !(n == b".init.data" || n == b".init.rodata")
    });
    for i in order {
        let s = &elf.sections[i];
        let Some(data) = s.data else { continue };
        let mut at = 0usize;
        // the list is 8-aligned in the section (which is at least 8-aligned itself)
        while at + 4 <= data.len() {
            if data[at] == 0x30
                && data[at + 1] == 0x82
                && let Some((end, msize)) = list_at(data, at, wsize, big)
            {
                return Ok(Some(decode(
                    &data[at..end],
                    String::from_utf8_lossy(s.name).into_owned(),
                    s.addr.wrapping_add(at as u64),
                    msize,
                )));
            }
            at += 8;
        }
    }
    Ok(None)
}

/// Decode the list as `x509_load_certificate_list()` walks it.
pub fn decode(list: &[u8], section: String, vaddr: u64, module_cert_size: u64) -> SystemCerts {
    let mut certs = Vec::new();
    let mut errors = Vec::new();
    let mut p = 0usize;
    while p < list.len() {
        let rest = &list[p..];
        if rest.len() < 4 || rest[0] != 0x30 || rest[1] != 0x82 {
            errors.push(format!(
                "Problem parsing in-kernel X.509 certificate list (at byte {p})"
            ));
            break;
        }
        let len = ((rest[2] as usize) << 8 | rest[3] as usize) + 4;
        if len > rest.len() {
            errors.push(format!(
                "Problem parsing in-kernel X.509 certificate list (at byte {p})"
            ));
            break;
        }
        match Cert::from_der(&rest[..len]) {
            Ok(c) => certs.push(c),
            Err(e) => errors.push(format!(
                "Problem loading in-kernel X.509 certificate at byte {p}: {e}"
            )),
        }
        p += len;
    }
    SystemCerts {
        certs,
        errors,
        section,
        vaddr,
        list_size: list.len() as u64,
        module_cert_size,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_cert(len: usize) -> Vec<u8> {
        let mut v = vec![0x30, 0x82, (len >> 8) as u8, len as u8];
        v.resize(len + 4, 0x5a);
        v
    }

    #[test]
    fn finds_list_by_shape_with_and_without_reserve() {
        for reserve in [0usize, 4096 + 8] {
            let mut d = vec![0x11u8; 64];
            let a = fake_cert(300);
            let b = fake_cert(500);
            d.extend_from_slice(&a);
            d.extend_from_slice(&b);
            let list_len = a.len() + b.len();
            d.resize(d.len() + reserve, 0);
            while !d.len().is_multiple_of(8) {
                d.push(0);
            }
            d.extend_from_slice(&(list_len as u64).to_le_bytes());
            d.extend_from_slice(&(a.len() as u64).to_le_bytes());
            d.extend_from_slice(&[0x22; 16]);
            assert_eq!(
                list_at(&d, 64, 8, false),
                Some((64 + list_len, a.len() as u64))
            );
            // a wrong size word: no list
            let at = d.len() - 32;
            d[at] ^= 1;
            assert_eq!(list_at(&d, 64, 8, false), None);
        }
    }

    #[test]
    fn truncated_or_garbage_lists_do_not_panic() {
        let mut d = vec![0x30, 0x82, 0xff, 0xff, 0, 0, 0, 0];
        assert_eq!(list_at(&d, 0, 8, false), None);
        d.truncate(3);
        assert_eq!(list_at(&d, 0, 8, false), None);
        let s = decode(&[0x30, 0x82, 0x00], "x".into(), 0, 0);
        assert!(s.certs.is_empty() && s.errors.len() == 1);
        let s = decode(&fake_cert(10), "x".into(), 0, 0);
        assert!(s.certs.is_empty() && s.errors.len() == 1);
    }
}
