//! The appended module signature (`~Module signature appended~\n`), spec §3.

use cms::cert::x509::der::Decode;
use serde::Serialize;

pub const MAGIC: &[u8] = b"~Module signature appended~\n";
/// `struct module_signature`: algo, hash, id_type, signer_len, key_id_len, pad[3], be32 sig_len.
pub const HEADER_LEN: usize = 12;

/// Names of the legacy `hash` index (kernel 3.7 enum, as kmod has it).
const HASH_NAMES: [&str; 9] = [
    "md4", "md5", "sha1", "rmd160", "sha256", "sha384", "sha512", "sha224", "sm3",
];
const ID_TYPES: [&str; 3] = ["PGP", "X509", "PKCS#7"];
const ALGOS: usize = 2;
pub const ID_PKCS7: u8 = 2;

/// The raw `struct module_signature`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SigHeader {
    pub algo: u8,
    pub hash: u8,
    pub id_type: u8,
    pub signer_len: u8,
    pub key_id_len: u8,
    pub pad: [u8; 3],
    pub sig_len: u32,
}

impl SigHeader {
    fn parse(b: &[u8; HEADER_LEN]) -> SigHeader {
        SigHeader {
            algo: b[0],
            hash: b[1],
            id_type: b[2],
            signer_len: b[3],
            key_id_len: b[4],
            pad: [b[5], b[6], b[7]],
            sig_len: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        }
    }
}

/// A signature trailer that was found and is structurally sound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub header: SigHeader,
    /// Length of the module image in front of the trailer.
    pub module_len: usize,
    /// `signer_len` bytes of signer name (legacy formats; empty for PKCS#7).
    pub signer: Vec<u8>,
    /// `key_id_len` bytes of key identifier (legacy formats; empty for PKCS#7).
    pub key_id: Vec<u8>,
    /// `sig_len` bytes: for PKCS#7 the DER `ContentInfo`, otherwise the raw signature.
    pub sig: Vec<u8>,
}

/// What the end of a (decompressed) module file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trailer {
    Unsigned,
    Signed(Signature),
    /// The marker is there but what precedes it is inconsistent (the kernel says -EBADMSG).
    Malformed(String),
}

/// Split a decompressed module into its ELF image and its signature trailer.
/// A malformed trailer leaves the image whole, as the ELF may still be read.
pub fn split(data: &[u8]) -> (&[u8], Trailer) {
    match parse_trailer(data) {
        Ok(None) => (data, Trailer::Unsigned),
        Ok(Some(sig)) => (&data[..sig.module_len], Trailer::Signed(sig)),
        Err(why) => (data, Trailer::Malformed(why)),
    }
}

fn parse_trailer(data: &[u8]) -> Result<Option<Signature>, String> {
    let Some(size) = data.len().checked_sub(MAGIC.len()) else {
        return Ok(None);
    };
    if &data[size..] != MAGIC {
        return Ok(None);
    }
    let size = size
        .checked_sub(HEADER_LEN)
        .ok_or("signature marker without room for struct module_signature")?;
    let hdr: &[u8; HEADER_LEN] = data[size..size + HEADER_LEN]
        .try_into()
        .map_err(|_| "short signature header")?;
    let header = SigHeader::parse(hdr);
    if header.sig_len == 0 {
        return Err("signature length is zero".into());
    }
    let total = header.signer_len as usize + header.key_id_len as usize + header.sig_len as usize;
    if total >= size {
        return Err(format!(
            "signature length {} exceeds the {} bytes in front of it",
            total, size
        ));
    }
    let module_len = size - total;
    let signer_end = module_len + header.signer_len as usize;
    let key_end = signer_end + header.key_id_len as usize;
    Ok(Some(Signature {
        header,
        module_len,
        signer: data[module_len..signer_end].to_vec(),
        key_id: data[signer_end..key_end].to_vec(),
        sig: data[key_end..size].to_vec(),
    }))
}

/// The signature facts as kmod's `modinfo` shows them (built with OpenSSL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SigInfo {
    /// `PKCS#7`, `X509` or `PGP`.
    pub id_type: &'static str,
    /// PKCS#7: the signer's issuer common name; legacy: the stored signer name.
    #[serde(serialize_with = "crate::module::ser_bytes_lossy")]
    pub signer: Vec<u8>,
    /// PKCS#7: the signer's certificate serial number; legacy: the key id.
    #[serde(serialize_with = "crate::module::ser_hex")]
    pub key_id: Vec<u8>,
    pub hash_algo: &'static str,
    /// PKCS#7: the signer info's encrypted digest; legacy: the raw signature.
    #[serde(serialize_with = "crate::module::ser_hex")]
    pub signature: Vec<u8>,
}

impl Signature {
    /// What kmod would report, or `None` where kmod reports no signature at all.
    pub fn info(&self) -> Option<SigInfo> {
        let h = &self.header;
        if h.algo as usize >= ALGOS
            || h.hash as usize >= HASH_NAMES.len()
            || h.id_type as usize >= ID_TYPES.len()
        {
            return None;
        }
        let id_type = ID_TYPES[h.id_type as usize];
        if h.id_type == ID_PKCS7 {
            let p = pkcs7_signer(&self.sig)?;
            return Some(SigInfo {
                id_type,
                signer: p.issuer_cn,
                key_id: p.serial,
                hash_algo: p.hash_algo,
                signature: p.signature,
            });
        }
        Some(SigInfo {
            id_type,
            signer: self.signer.clone(),
            key_id: self.key_id.clone(),
            hash_algo: HASH_NAMES[h.hash as usize],
            signature: self.sig.clone(),
        })
    }

    /// The kernel's `mod_check_sig()` verdict on the trailer's form (not its cryptography):
    /// `Err((errno name, message))` where the kernel would refuse or not verify.
    pub fn kernel_form_check(&self) -> Result<(), (&'static str, &'static str)> {
        let h = &self.header;
        if h.id_type != ID_PKCS7 {
            return Err(("ENOPKG", "not signed with expected PKCS#7 message"));
        }
        if h.algo != 0 || h.hash != 0 || h.signer_len != 0 || h.key_id_len != 0 || h.pad != [0; 3] {
            return Err((
                "EBADMSG",
                "PKCS#7 signature info has unexpected non-zero params",
            ));
        }
        Ok(())
    }
}

/// The first signer of a PKCS#7 `SignedData`, as kmod reads it with OpenSSL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkcs7Signer {
    pub issuer_cn: Vec<u8>,
    pub serial: Vec<u8>,
    pub hash_algo: &'static str,
    pub signature: Vec<u8>,
}

/// Parse the DER `ContentInfo { signedData }` of a module signature. `None` if it is not one,
/// if it has no issuer-and-serial signer, or if its digest is not one the kernel knows.
pub fn pkcs7_signer(der: &[u8]) -> Option<Pkcs7Signer> {
    use cms::cert::IssuerAndSerialNumber;
    use cms::content_info::ContentInfo;
    use cms::signed_data::{SignedData, SignerIdentifier};

    let ci = ContentInfo::from_der(der).ok()?;
    if ci.content_type.to_string() != "1.2.840.113549.1.7.2" {
        return None;
    }
    let sd: SignedData = ci.content.decode_as().ok()?;
    let si = sd.signer_infos.0.iter().next()?;
    let SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
        issuer,
        serial_number,
    }) = &si.sid
    else {
        return None;
    };
    let hash_algo = digest_name(&si.digest_alg.oid.to_string())?;
    Some(Pkcs7Signer {
        issuer_cn: issuer_common_name(issuer),
        serial: bignum_bytes(serial_number.as_bytes()),
        hash_algo,
        signature: si.signature.as_bytes().to_vec(),
    })
}

/// kmod's `x509_name_to_str`: the first commonName entry; if there is none, kmod's loop
/// leaves it on the last entry and returns that one's data. Printed as a C string.
fn issuer_common_name(name: &cms::cert::x509::name::Name) -> Vec<u8> {
    const CN: &str = "2.5.4.3";
    let entries: Vec<_> = name.0.iter().flat_map(|rdn| rdn.0.iter()).collect();
    let chosen = entries
        .iter()
        .find(|e| e.oid.to_string() == CN)
        .or(entries.last());
    let Some(e) = chosen else { return Vec::new() };
    let bytes = e.value.value();
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    bytes[..end].to_vec()
}

/// OpenSSL `BN_bn2bin(ASN1_INTEGER_to_BN(x))`: the magnitude, big-endian, without leading zeros.
fn bignum_bytes(twos_complement: &[u8]) -> Vec<u8> {
    let negative = twos_complement.first().is_some_and(|b| b & 0x80 != 0);
    let mut mag = twos_complement.to_vec();
    if negative {
        // magnitude of a negative two's-complement number: invert and add one
        for b in mag.iter_mut() {
            *b = !*b;
        }
        for b in mag.iter_mut().rev() {
            let (v, carry) = b.overflowing_add(1);
            *b = v;
            if !carry {
                break;
            }
        }
    }
    let first = mag.iter().position(|&b| b != 0).unwrap_or(mag.len());
    mag.split_off(first)
}

/// The digests kmod maps (`obj_to_hash_algo`); any other makes kmod report no signature.
fn digest_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "1.2.840.113549.2.4" => "md4",
        "1.2.840.113549.2.5" => "md5",
        "1.3.14.3.2.26" => "sha1",
        "1.3.36.3.2.1" => "rmd160",
        "2.16.840.1.101.3.4.2.1" => "sha256",
        "2.16.840.1.101.3.4.2.2" => "sha384",
        "2.16.840.1.101.3.4.2.3" => "sha512",
        "2.16.840.1.101.3.4.2.4" => "sha224",
        "1.2.156.10197.1.401" => "sm3",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trailer(hdr: [u8; 12], body: &[u8]) -> Vec<u8> {
        let mut v = b"ELFIMAGE".to_vec();
        v.extend_from_slice(body);
        v.extend_from_slice(&hdr);
        v.extend_from_slice(MAGIC);
        v
    }

    #[test]
    fn unsigned_is_whole() {
        let (img, t) = split(b"\x7fELF plain");
        assert_eq!(img, b"\x7fELF plain");
        assert_eq!(t, Trailer::Unsigned);
    }

    #[test]
    fn legacy_trailer_splits() {
        // X509-style: algo RSA, sha1, signer "ab", key id "\x01\x02", sig "SIG"
        let data = trailer([1, 2, 1, 2, 2, 0, 0, 0, 0, 0, 0, 3], b"ab\x01\x02SIG");
        let (img, t) = split(&data);
        assert_eq!(img, b"ELFIMAGE");
        let Trailer::Signed(sig) = t else {
            panic!("{t:?}")
        };
        let info = sig.info().unwrap();
        assert_eq!(info.id_type, "X509");
        assert_eq!(info.signer, b"ab");
        assert_eq!(info.key_id, [1, 2]);
        assert_eq!(info.hash_algo, "sha1");
        assert_eq!(info.signature, b"SIG");
        assert_eq!(sig.kernel_form_check().unwrap_err().0, "ENOPKG");
    }

    #[test]
    fn inconsistent_lengths_are_malformed() {
        let data = trailer([0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0], b"x");
        assert!(matches!(split(&data).1, Trailer::Malformed(_)));
        let data = trailer([0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0], b"x");
        assert!(matches!(split(&data).1, Trailer::Malformed(_)));
        let mut short = vec![0u8; 5];
        short.extend_from_slice(MAGIC);
        assert!(matches!(split(&short).1, Trailer::Malformed(_)));
    }

    #[test]
    fn serial_magnitude() {
        assert_eq!(bignum_bytes(&[0x00, 0x80, 0x01]), vec![0x80, 0x01]);
        assert_eq!(bignum_bytes(&[0x00]), Vec::<u8>::new());
        assert_eq!(bignum_bytes(&[0xff]), vec![0x01]);
        assert_eq!(bignum_bytes(&[0x80, 0x00]), vec![0x80, 0x00]);
    }

    #[test]
    fn garbage_pkcs7_is_none() {
        assert_eq!(pkcs7_signer(b""), None);
        assert_eq!(pkcs7_signer(&[0x30, 0x82, 0xff, 0xff, 1, 2, 3]), None);
    }
}
