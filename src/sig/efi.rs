//! UEFI signature databases (`db`, `dbx`, `MokListRT`, `MokListXRT`) as the kernel reads them
//! at boot (`security/integrity/platform_certs/efi_parser.c`, `load_uefi.c`), and the Secure
//! Boot state, from efivarfs (`/sys/firmware/efi/efivars/NAME-GUID`: a 4-byte attribute word,
//! then the variable's data).
//!
//! An `EFI_SIGNATURE_LIST` is `{ GUID type; u32 list_size; u32 header_size; u32 sig_size }`,
//! a header of `header_size` bytes, then entries of `sig_size` bytes, each an owner GUID and the
//! signature data (a DER certificate for `EFI_CERT_X509_GUID`, a SHA-256 for
//! `EFI_CERT_SHA256_GUID`). Lists follow each other to the end of the variable.

use super::cert::Cert;
use serde::Serialize;

/// `EFI_CERT_X509_GUID` a5c059a1-94e4-4aa7-87b5-ab155c2bf072, in its byte order on disk.
pub const CERT_X509: [u8; 16] = guid(
    0xa5c059a1,
    0x94e4,
    0x4aa7,
    [0x87, 0xb5, 0xab, 0x15, 0x5c, 0x2b, 0xf0, 0x72],
);
/// `EFI_CERT_SHA256_GUID` c1c41626-504c-4092-aca9-41f936934328.
pub const CERT_SHA256: [u8; 16] = guid(
    0xc1c41626,
    0x504c,
    0x4092,
    [0xac, 0xa9, 0x41, 0xf9, 0x36, 0x93, 0x43, 0x28],
);
/// `EFI_CERT_X509_SHA256_GUID` 3bd2a492-96c0-4079-b420-fcf98ef103ed.
pub const CERT_X509_SHA256: [u8; 16] = guid(
    0x3bd2a492,
    0x96c0,
    0x4079,
    [0xb4, 0x20, 0xfc, 0xf9, 0x8e, 0xf1, 0x03, 0xed],
);
/// The GUID of `db` / `dbx`: `EFI_IMAGE_SECURITY_DATABASE_GUID`.
pub const IMAGE_SECURITY_DATABASE: &str = "d719b2cb-3d3a-4596-a3bc-dad00e67656f";
/// The GUID of shim's variables (`MokListRT`, `MokListXRT`, `MokIgnoreDB`).
pub const SHIM_LOCK: &str = "605dab50-e046-4300-abb6-3dd810dd8b23";
/// The GUID of `SecureBoot`: `EFI_GLOBAL_VARIABLE`.
pub const GLOBAL_VARIABLE: &str = "8be4df61-93ca-11d2-aa0d-00e098032b8c";

const fn guid(a: u32, b: u16, c: u16, d: [u8; 8]) -> [u8; 16] {
    let a = a.to_le_bytes();
    let b = b.to_le_bytes();
    let c = c.to_le_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5], d[6],
        d[7],
    ]
}

/// One entry of a signature list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    X509(Vec<u8>),
    Sha256([u8; 32]),
    /// The TBS hash of a certificate (`EFI_CERT_X509_SHA256`), as in dbx.
    X509Sha256([u8; 32]),
    Other {
        sig_type: [u8; 16],
        data: Vec<u8>,
    },
}

/// Why a signature database could not be read (the kernel says -EBADMSG).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("EFI signature list at byte {offset}: {reason}")]
pub struct EslError {
    pub offset: usize,
    pub reason: &'static str,
}

/// Parse a sequence of `EFI_SIGNATURE_LIST`s with the kernel's size checks. Entries of lists
/// before a bad one are returned with the error, as the kernel has loaded them by then.
pub fn parse_lists(mut data: &[u8]) -> (Vec<Entry>, Option<EslError>) {
    let mut out = Vec::new();
    let mut offset = 0usize;
    while !data.is_empty() {
        let err = |reason| Some(EslError { offset, reason });
        if data.len() < 28 {
            return (out, err("shorter than a list header"));
        }
        let mut sig_type = [0u8; 16];
        sig_type.copy_from_slice(&data[..16]);
        let u = |at: usize| {
            u32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]) as usize
        };
        let (lsize, hsize, esize) = (u(16), u(20), u(24));
        if lsize > data.len() {
            return (out, err("list size overruns the variable"));
        }
        if lsize < 28 || lsize - 28 < hsize || esize < 16 || (lsize - 28 - hsize) < esize {
            return (out, err("bad size combination"));
        }
        let elsize = lsize - 28 - hsize;
        if elsize % esize != 0 {
            return (out, err("entries do not fill the list"));
        }
        let entries = &data[28 + hsize..lsize];
        for e in entries.chunks_exact(esize) {
            let body = &e[16..];
            out.push(match sig_type {
                CERT_X509 => Entry::X509(body.to_vec()),
                CERT_SHA256 if body.len() == 32 => {
                    Entry::Sha256(body.try_into().unwrap_or([0; 32]))
                }
                CERT_X509_SHA256 if body.len() >= 32 => {
                    Entry::X509Sha256(body[..32].try_into().unwrap_or([0; 32]))
                }
                _ => Entry::Other {
                    sig_type,
                    data: body.to_vec(),
                },
            });
        }
        data = &data[lsize..];
        offset += lsize;
    }
    (out, None)
}

/// The certificates of a signature database, with those that do not parse reported.
pub fn certificates(data: &[u8]) -> (Vec<Cert>, Vec<String>) {
    let (entries, err) = parse_lists(data);
    let mut certs = Vec::new();
    let mut errors: Vec<String> = err.into_iter().map(|e| e.to_string()).collect();
    for e in entries {
        if let Entry::X509(der) = e {
            match Cert::from_der(trim_der(&der)) {
                Ok(c) => certs.push(c),
                Err(e) => errors.push(e.to_string()),
            }
        }
    }
    (certs, errors)
}

/// Some firmware pads certificate entries; the kernel's parser reads the DER length.
fn trim_der(d: &[u8]) -> &[u8] {
    super::cert::tlv_len(d).map_or(d, |n| &d[..n])
}

/// The data of an efivarfs file: without its 4-byte attribute word.
pub fn efivar_data(file: &[u8]) -> Option<&[u8]> {
    file.get(4..)
}

/// Secure Boot as firmware reports it (`SecureBoot` is one byte, 1 when enabled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecureBoot {
    Enabled,
    Disabled,
    /// No EFI (BIOS boot), or efivars unreadable.
    Unknown,
}

pub fn secure_boot_from_var(file: &[u8]) -> SecureBoot {
    match efivar_data(file).and_then(|d| d.first()) {
        Some(1) => SecureBoot::Enabled,
        Some(_) => SecureBoot::Disabled,
        None => SecureBoot::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(sig_type: [u8; 16], hsize: usize, entries: &[&[u8]]) -> Vec<u8> {
        let esize = 16 + entries.first().map_or(0, |e| e.len());
        let lsize = 28 + hsize + esize * entries.len();
        let mut v = sig_type.to_vec();
        v.extend_from_slice(&(lsize as u32).to_le_bytes());
        v.extend_from_slice(&(hsize as u32).to_le_bytes());
        v.extend_from_slice(&(esize as u32).to_le_bytes());
        v.resize(v.len() + hsize, 0);
        for e in entries {
            v.extend_from_slice(&[0xee; 16]);
            v.extend_from_slice(e);
        }
        v
    }

    #[test]
    fn guids_are_in_disk_order() {
        assert_eq!(&CERT_X509[..4], &[0xa1, 0x59, 0xc0, 0xa5]);
        assert_eq!(
            &CERT_SHA256[8..],
            &[0xac, 0xa9, 0x41, 0xf9, 0x36, 0x93, 0x43, 0x28]
        );
    }

    #[test]
    fn lists_with_hashes_and_certificates() {
        let mut d = list(CERT_SHA256, 0, &[&[1; 32], &[2; 32]]);
        d.extend(list(CERT_X509, 4, &[b"\x30\x03\x02\x01\x01"]));
        let (entries, err) = parse_lists(&d);
        assert_eq!(err, None);
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[1], Entry::Sha256([2; 32]));
        assert_eq!(entries[2], Entry::X509(b"\x30\x03\x02\x01\x01".to_vec()));
        let (certs, errors) = certificates(&d);
        assert!(certs.is_empty());
        assert_eq!(errors.len(), 1, "the fake certificate does not parse");
    }

    #[test]
    fn bad_sizes_are_errors_with_what_came_before() {
        let mut d = list(CERT_SHA256, 0, &[&[1; 32]]);
        let mut bad = list(CERT_SHA256, 0, &[&[1; 32]]);
        bad[16] = 0xff; // list size overruns
        d.extend(bad);
        let (entries, err) = parse_lists(&d);
        assert_eq!(entries.len(), 1);
        assert_eq!(err.unwrap().offset, 76);
        assert!(parse_lists(&[0; 27]).1.is_some());
        let mut z = list(CERT_SHA256, 0, &[&[1; 32]]);
        z[24..28].copy_from_slice(&0u32.to_le_bytes()); // entry size 0
        assert!(parse_lists(&z).1.is_some());
    }

    #[test]
    fn secure_boot_variable() {
        assert_eq!(secure_boot_from_var(&[6, 0, 0, 0, 1]), SecureBoot::Enabled);
        assert_eq!(secure_boot_from_var(&[6, 0, 0, 0, 0]), SecureBoot::Disabled);
        assert_eq!(secure_boot_from_var(&[6, 0]), SecureBoot::Unknown);
    }
}
