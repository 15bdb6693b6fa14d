//! X.509 certificates as the kernel's asymmetric-key subsystem sees them
//! (`crypto/asymmetric_keys/x509_cert_parser.c`, `x509_public_key.c`): the names it makes up
//! for subject and issuer, the key identifiers a signature is matched against, the key's
//! description (what `/proc/keys` shows) and the public key itself.
//!
//! Parsing is done by `x509-cert`; this file only derives the kernel's view from it.

use der::{Decode, Encode, Header, Reader, SliceReader};
use serde::Serialize;
use x509_cert::Certificate;

const OID_CN: &str = "2.5.4.3";
const OID_O: &str = "2.5.4.10";
const OID_EMAIL: &str = "1.2.840.113549.1.9.1";
const OID_SKID: &str = "2.5.29.14";
const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_EC: &str = "1.2.840.10045.2.1";
const OID_P192: &str = "1.2.840.10045.3.1.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";
const OID_SM2: &str = "1.2.156.10197.1.301";
const OID_GOST256: &str = "1.2.643.7.1.1.1.1";
const OID_GOST512: &str = "1.2.643.7.1.1.1.2";

/// The largest certificate accepted (the kernel's list format allows 64 KiB per entry).
pub const MAX_CERT: usize = 64 * 1024;

/// Why a certificate could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CertError(pub String);

/// A public key kabi can verify signatures with, or the kernel's name of one it cannot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    Rsa(rsa::RsaPublicKey),
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    /// A key the kernel may know (`ecdsa-nist-p192`, `sm2`, `ecrdsa`) but kabi cannot use.
    Other,
}

/// One certificate, with the facts the kernel derives from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cert {
    /// The kernel's name for the subject (`x509_fabricate_name`: CN, or "O: CN", or O, or
    /// email).
    pub subject: String,
    /// The same for the issuer.
    pub issuer: String,
    /// The serial number as encoded (two's complement, with any leading zero byte).
    #[serde(serialize_with = "crate::module::ser_hex")]
    pub serial: Vec<u8>,
    /// The subjectKeyIdentifier extension, if present.
    #[serde(serialize_with = "ser_opt_hex")]
    pub skid: Option<Vec<u8>>,
    /// The kernel's public-key algorithm name: `rsa`, `ecdsa-nist-p256`, `ecdsa-nist-p384`,
    /// `ecdsa-nist-p192`, `sm2`, `ecrdsa`, or the OID when the kernel knows none.
    pub pkey_algo: String,
    /// Key size in bits (RSA modulus, EC field), 0 when unknown.
    pub key_bits: u32,
    /// `notBefore` / `notAfter`, seconds since the epoch.
    pub valid_from: u64,
    pub valid_to: u64,
    /// DER content of the issuer `Name` (what `issuer + serial` key ids are made of).
    #[serde(skip)]
    pub raw_issuer: Vec<u8>,
    #[serde(skip)]
    pub raw_subject: Vec<u8>,
    #[serde(skip)]
    pub key: PublicKey,
    /// The whole certificate, DER.
    #[serde(skip)]
    pub der: Vec<u8>,
}

fn ser_opt_hex<S: serde::Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(b) => s.serialize_str(&hex(b)),
        None => s.serialize_none(),
    }
}

/// Lower-case hex, as the kernel's `%*phN` and `bin2hex` print.
pub fn hex(b: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(char::from(DIGITS[usize::from(x >> 4)]));
        s.push(char::from(DIGITS[usize::from(x & 15)]));
    }
    s
}

/// The value of one hexadecimal digit (either case).
fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The bytes of [`hex`]'s text (either case); `None` for anything else (an odd length, a
/// character that is not a hexadecimal digit). Two digits a byte, decoded directly: `kabi
/// load` decodes this boot's facts from the snapshot's header on every call.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return None;
    }
    b.chunks_exact(2)
        .map(|p| Some(nibble(p[0])? << 4 | nibble(p[1])?))
        .collect()
}

/// The content octets of one DER TLV (drops tag and length).
fn content_of(tlv: &[u8]) -> Result<&[u8], der::Error> {
    let mut r = SliceReader::new(tlv)?;
    let h = Header::decode(&mut r)?;
    let start = usize::try_from(r.position())?;
    let len = usize::try_from(h.length)?;
    tlv.get(start..start.saturating_add(len)).ok_or_else(|| {
        der::ErrorKind::Incomplete {
            expected_len: h.length,
            actual_len: r.input_len(),
        }
        .into()
    })
}

/// `x509_fabricate_name`: the last CN, O and emailAddress of the name, combined as the kernel
/// combines them.
pub fn fabricated_name(name: &x509_cert::name::Name) -> String {
    let mut cn: Option<&[u8]> = None;
    let mut o: Option<&[u8]> = None;
    let mut email: Option<&[u8]> = None;
    for atv in name.0.iter().flat_map(|rdn| rdn.0.iter()) {
        let v = atv.value.value();
        match atv.oid.to_string().as_str() {
            OID_CN => cn = Some(v),
            OID_O => o = Some(v),
            OID_EMAIL => email = Some(v),
            _ => {}
        }
    }
    // an empty string counts as absent (the kernel tests the sizes)
    let cn = cn.filter(|v| !v.is_empty());
    let o = o.filter(|v| !v.is_empty());
    let email = email.filter(|v| !v.is_empty());
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    match (cn, o, email) {
        (Some(cn), Some(o), _) => {
            // the CN alone when it begins with the O, or shares its first 7 bytes with it
            let prefixed = cn.len() >= o.len() && cn.starts_with(o);
            let similar = cn.len() >= 7 && o.len() >= 7 && cn[..7] == o[..7];
            if prefixed || similar {
                text(cn)
            } else {
                format!("{}: {}", text(o), text(cn))
            }
        }
        (Some(cn), None, _) => text(cn),
        (None, Some(o), _) => text(o),
        (None, None, Some(e)) => text(e),
        (None, None, None) => String::new(),
    }
}

impl Cert {
    /// Parse one DER certificate (trailing bytes are an error).
    pub fn from_der(der_bytes: &[u8]) -> Result<Cert, CertError> {
        if der_bytes.len() > MAX_CERT {
            return Err(CertError(format!(
                "certificate of {} bytes exceeds {MAX_CERT}",
                der_bytes.len()
            )));
        }
        let c = Certificate::from_der(der_bytes)
            .map_err(|e| CertError(format!("not an X.509 certificate: {e}")))?;
        let tbs = &c.tbs_certificate;
        let bad = |what: &str, e: der::Error| CertError(format!("{what}: {e}"));
        let issuer_der = tbs.issuer.to_der().map_err(|e| bad("issuer", e))?;
        let subject_der = tbs.subject.to_der().map_err(|e| bad("subject", e))?;
        let serial_der = tbs.serial_number.to_der().map_err(|e| bad("serial", e))?;
        let raw_issuer = content_of(&issuer_der)
            .map_err(|e| bad("issuer", e))?
            .to_vec();
        let raw_subject = content_of(&subject_der)
            .map_err(|e| bad("subject", e))?
            .to_vec();
        let serial = content_of(&serial_der)
            .map_err(|e| bad("serial", e))?
            .to_vec();
        let mut skid = None;
        for ext in tbs.extensions.iter().flatten() {
            if ext.extn_id.to_string() == OID_SKID {
                // x509_process_extension: an OCTET STRING with a short-form length
                let v = ext.extn_value.as_bytes();
                if skid.is_some() || v.len() < 3 || v[0] != 0x04 || v[1] as usize != v.len() - 2 {
                    return Err(CertError(
                        "malformed or repeated subjectKeyIdentifier".into(),
                    ));
                }
                skid = Some(v[2..].to_vec());
            }
        }
        let (pkey_algo, key, key_bits) = public_key(&tbs.subject_public_key_info)?;
        let secs = |t: &x509_cert::time::Time| t.to_unix_duration().as_secs();
        Ok(Cert {
            subject: fabricated_name(&tbs.subject),
            issuer: fabricated_name(&tbs.issuer),
            serial,
            skid,
            pkey_algo,
            key_bits,
            valid_from: secs(&tbs.validity.not_before),
            valid_to: secs(&tbs.validity.not_after),
            raw_issuer,
            raw_subject,
            key,
            der: der_bytes.to_vec(),
        })
    }

    /// The key id made of the serial number and the issuer (`asymmetric_key_generate_id`):
    /// what a PKCS#7 `issuerAndSerialNumber` signer is matched against.
    pub fn id(&self) -> Vec<u8> {
        let mut v = self.serial.clone();
        v.extend_from_slice(&self.raw_issuer);
        v
    }

    /// Every id the kernel files the key under: issuer+serial, subjectKeyIdentifier, subject.
    pub fn key_ids(&self) -> Vec<Vec<u8>> {
        let mut ids = vec![self.id()];
        if let Some(s) = &self.skid {
            ids.push(s.clone());
        }
        ids.push(self.raw_subject.clone());
        ids
    }

    /// The key's description (`x509_key_preparse`): subject, then the subjectKeyIdentifier
    /// (else the serial number) in hex. `/proc/keys` and the boot log show this.
    pub fn description(&self) -> String {
        let id = self.skid.as_deref().unwrap_or(&self.serial);
        format!("{}: {}", self.subject, hex(id))
    }

    /// The SHA-256 fingerprint of the DER certificate, in hex.
    pub fn fingerprint(&self) -> String {
        use sha2::Digest;
        hex(&sha2::Sha256::digest(&self.der))
    }
}

fn public_key(
    spki: &spki::SubjectPublicKeyInfoOwned,
) -> Result<(String, PublicKey, u32), CertError> {
    let oid = spki.algorithm.oid.to_string();
    let bits = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| CertError("public key bit string has unused bits".into()))?;
    match oid.as_str() {
        OID_RSA => {
            use rsa::pkcs1::DecodeRsaPublicKey;
            use rsa::traits::PublicKeyParts;
            let k = rsa::RsaPublicKey::from_pkcs1_der(bits)
                .map_err(|e| CertError(format!("RSA public key: {e}")))?;
            let n = k.n().bits() as u32;
            Ok(("rsa".into(), PublicKey::Rsa(k), n))
        }
        OID_EC => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as::<der::asn1::ObjectIdentifier>().ok())
                .map(|o| o.to_string())
                .ok_or_else(|| CertError("EC public key without a named curve".into()))?;
            match curve.as_str() {
                OID_P256 => {
                    let k = p256::ecdsa::VerifyingKey::from_sec1_bytes(bits)
                        .map_err(|e| CertError(format!("P-256 public key: {e}")))?;
                    Ok(("ecdsa-nist-p256".into(), PublicKey::P256(k), 256))
                }
                OID_P384 => {
                    let k = p384::ecdsa::VerifyingKey::from_sec1_bytes(bits)
                        .map_err(|e| CertError(format!("P-384 public key: {e}")))?;
                    Ok(("ecdsa-nist-p384".into(), PublicKey::P384(k), 384))
                }
                OID_P192 => Ok(("ecdsa-nist-p192".into(), PublicKey::Other, 192)),
                OID_SM2 => Ok(("sm2".into(), PublicKey::Other, 256)),
                other => Ok((format!("ec:{other}"), PublicKey::Other, 0)),
            }
        }
        OID_SM2 => Ok(("sm2".into(), PublicKey::Other, 256)),
        OID_GOST256 | OID_GOST512 => Ok(("ecrdsa".into(), PublicKey::Other, 0)),
        other => Ok((other.to_string(), PublicKey::Other, 0)),
    }
}

/// Certificates in a file: PEM (any number of `CERTIFICATE` blocks, other blocks such as a
/// private key ignored), one DER certificate, or DER certificates back to back (the kernel's
/// list format).
pub fn parse_bundle(data: &[u8]) -> Result<Vec<Cert>, CertError> {
    if looks_pem(data) {
        let mut out = Vec::new();
        for (label, der) in pem_blocks(data)? {
            if label == "CERTIFICATE" || label == "X509 CERTIFICATE" {
                out.push(Cert::from_der(&der)?);
            }
        }
        if out.is_empty() {
            return Err(CertError("no CERTIFICATE block in the PEM text".into()));
        }
        return Ok(out);
    }
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let len = tlv_len(rest).ok_or_else(|| {
            CertError(format!(
                "not PEM, and no DER certificate at byte {}",
                data.len() - rest.len()
            ))
        })?;
        out.push(Cert::from_der(&rest[..len])?);
        rest = &rest[len..];
    }
    if out.is_empty() {
        return Err(CertError("empty certificate file".into()));
    }
    Ok(out)
}

/// The full length of the DER SEQUENCE at the start of `d`, if it is one that fits.
pub fn tlv_len(d: &[u8]) -> Option<usize> {
    if d.first() != Some(&0x30) {
        return None;
    }
    let (hdr, len) = match *d.get(1)? {
        n @ 0..=0x7f => (2, n as usize),
        0x81 => (3, *d.get(2)? as usize),
        0x82 => (4, u16::from_be_bytes([*d.get(2)?, *d.get(3)?]) as usize),
        0x83 => (
            5,
            u32::from_be_bytes([0, *d.get(2)?, *d.get(3)?, *d.get(4)?]) as usize,
        ),
        _ => return None,
    };
    let total = hdr + len;
    (total <= d.len()).then_some(total)
}

pub(crate) fn looks_pem(data: &[u8]) -> bool {
    let start = data
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(0);
    data[start..].starts_with(b"-----BEGIN ")
        || data
            .windows(11)
            .take(64 * 1024)
            .any(|w| w == b"-----BEGIN ")
            && std::str::from_utf8(data).is_ok()
}

/// Every PEM block of a text: (label, decoded DER).
pub(crate) fn pem_blocks(data: &[u8]) -> Result<Vec<(String, Vec<u8>)>, CertError> {
    let text = std::str::from_utf8(data).map_err(|_| CertError("PEM text is not UTF-8".into()))?;
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(begin) = rest.find("-----BEGIN ") {
        let block = &rest[begin..];
        let label_end = block[11..]
            .find("-----")
            .ok_or_else(|| CertError("unterminated PEM BEGIN line".into()))?;
        let label = &block[11..11 + label_end];
        let end_marker = format!("-----END {label}-----");
        let end = block
            .find(&end_marker)
            .ok_or_else(|| CertError(format!("PEM block {label} has no END line")))?;
        let whole = &block[..end + end_marker.len()];
        let (l, der) = pem_rfc7468::decode_vec(whole.as_bytes())
            .map_err(|e| CertError(format!("PEM block {label}: {e}")))?;
        out.push((l.to_string(), der));
        rest = &block[end + end_marker.len()..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_digits_decode_as_the_number_parser_reads_them_and_nothing_else_does() {
        // every pair of characters of the first 256 code points: a byte when both are hex
        // digits, as `u8::from_str_radix` reads them (which also takes a leading `+`: no
        // hex text has one), else nothing
        for a in 0..256u32 {
            for b in 0..256u32 {
                let s: String = [a, b].iter().map(|&c| char::from_u32(c).unwrap()).collect();
                let digits = s.chars().all(|c| c.is_ascii_hexdigit());
                let want = digits.then(|| vec![u8::from_str_radix(&s, 16).unwrap()]);
                assert_eq!(unhex(&s), want, "{s:?}");
            }
        }
        assert_eq!(unhex(""), Some(Vec::new()));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("+f"), None);
        let all: Vec<u8> = (0..=255).collect();
        let text = hex(&all);
        assert_eq!(
            text,
            all.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        assert_eq!(unhex(&text), Some(all.clone()));
        assert_eq!(unhex(&text.to_uppercase()), Some(all));
    }

    #[test]
    fn name_fabrication_follows_the_kernel() {
        use std::str::FromStr;
        let n = |s: &str| x509_cert::name::Name::from_str(s).unwrap();
        assert_eq!(fabricated_name(&n("CN=abc")), "abc");
        assert_eq!(
            fabricated_name(&n("CN=Build time autogenerated kernel key")),
            "Build time autogenerated kernel key"
        );
        // CN prefixed by O: CN alone
        assert_eq!(
            fabricated_name(&n("CN=Debian Secure Boot CA,O=Debian")),
            "Debian Secure Boot CA"
        );
        // O and CN share their first 7 bytes: CN alone
        assert_eq!(
            fabricated_name(&n("CN=Example signing key,O=Example Inc")),
            "Example signing key"
        );
        assert_eq!(
            fabricated_name(&n("CN=kabi test key,O=kabi")),
            "kabi test key"
        );
        assert_eq!(fabricated_name(&n("CN=key,O=Vendor")), "Vendor: key");
        assert_eq!(fabricated_name(&n("O=Vendor")), "Vendor");
        assert_eq!(fabricated_name(&n("C=DE")), "");
    }

    #[test]
    fn der_sequence_lengths() {
        assert_eq!(tlv_len(&[0x30, 0x00]), Some(2));
        assert_eq!(tlv_len(&[0x30, 0x82, 0x00, 0x01, 0xaa]), Some(5));
        assert_eq!(tlv_len(&[0x30, 0x82, 0x00, 0x02, 0xaa]), None);
        assert_eq!(tlv_len(&[0x31, 0x00]), None);
        assert_eq!(tlv_len(&[]), None);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(parse_bundle(b"").is_err());
        assert!(parse_bundle(b"\x30\x03\x02\x01\x01").is_err());
        assert!(parse_bundle(b"-----BEGIN CERTIFICATE-----\nAAAA\n").is_err());
        assert!(
            parse_bundle(b"-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n").is_err()
        );
    }
}
