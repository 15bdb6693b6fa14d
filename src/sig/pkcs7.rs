//! A module signature's PKCS#7 message as the kernel parses it
//! (`crypto/asymmetric_keys/pkcs7_parser.c` with the grammar of `pkcs7.asn1`), with the errno
//! and log line of each way the kernel refuses one.
//!
//! The DER is decoded by the `cms` crate; the kernel's semantic checks are then applied in the
//! order its ASN.1 decoder would meet them. A message the `cms` crate cannot decode is what the
//! kernel's BER decoder rejects with -EBADMSG (a BER-only encoding the kernel would accept is
//! not produced by `sign-file` nor by `kabi sign`).

use super::cert::{Cert, hex};
use crate::errno::Errno;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{SignedData, SignerIdentifier};
use der::{Decode, Encode};
use serde::Serialize;

const OID_SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
const OID_DATA: &str = "1.2.840.113549.1.7.1";
const OID_MS_INDIRECT: &str = "1.3.6.1.4.1.311.2.1.4";
const OID_CONTENT_TYPE: &str = "1.2.840.113549.1.9.3";
const OID_MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";
const OID_SIGNING_TIME: &str = "1.2.840.113549.1.9.5";
const OID_SMIME_CAPS: &str = "1.2.840.113549.1.9.15";
const OID_MS_OPUS: &str = "1.3.6.1.4.1.311.2.1.12";
const OID_MS_STATEMENT: &str = "1.3.6.1.4.1.311.2.1.11";

/// A digest algorithm the kernel's PKCS#7 parser knows (`pkcs7_sig_note_digest_algo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HashAlgo {
    Md4,
    Md5,
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
    Sm3,
    Streebog256,
    Streebog512,
}

impl HashAlgo {
    pub fn from_oid(oid: &str) -> Option<HashAlgo> {
        Some(match oid {
            "1.2.840.113549.2.4" => HashAlgo::Md4,
            "1.2.840.113549.2.5" => HashAlgo::Md5,
            "1.3.14.3.2.26" => HashAlgo::Sha1,
            "2.16.840.1.101.3.4.2.4" => HashAlgo::Sha224,
            "2.16.840.1.101.3.4.2.1" => HashAlgo::Sha256,
            "2.16.840.1.101.3.4.2.2" => HashAlgo::Sha384,
            "2.16.840.1.101.3.4.2.3" => HashAlgo::Sha512,
            "1.2.156.10197.1.401" => HashAlgo::Sm3,
            "1.2.643.7.1.1.2.2" => HashAlgo::Streebog256,
            "1.2.643.7.1.1.2.3" => HashAlgo::Streebog512,
            _ => return None,
        })
    }

    /// The kernel's (crypto API) name.
    pub fn name(self) -> &'static str {
        match self {
            HashAlgo::Md4 => "md4",
            HashAlgo::Md5 => "md5",
            HashAlgo::Sha1 => "sha1",
            HashAlgo::Sha224 => "sha224",
            HashAlgo::Sha256 => "sha256",
            HashAlgo::Sha384 => "sha384",
            HashAlgo::Sha512 => "sha512",
            HashAlgo::Sm3 => "sm3",
            HashAlgo::Streebog256 => "streebog256",
            HashAlgo::Streebog512 => "streebog512",
        }
    }

    pub fn from_name(name: &str) -> Option<HashAlgo> {
        [
            HashAlgo::Md4,
            HashAlgo::Md5,
            HashAlgo::Sha1,
            HashAlgo::Sha224,
            HashAlgo::Sha256,
            HashAlgo::Sha384,
            HashAlgo::Sha512,
            HashAlgo::Sm3,
            HashAlgo::Streebog256,
            HashAlgo::Streebog512,
        ]
        .into_iter()
        .find(|h| h.name() == name)
    }

    /// The digest of `data`, for the algorithms kabi can compute (SHA-1 and SHA-2).
    pub fn digest(self, data: &[u8]) -> Option<Vec<u8>> {
        use sha2::Digest;
        Some(match self {
            HashAlgo::Sha1 => sha1::Sha1::digest(data).to_vec(),
            HashAlgo::Sha224 => sha2::Sha224::digest(data).to_vec(),
            HashAlgo::Sha256 => sha2::Sha256::digest(data).to_vec(),
            HashAlgo::Sha384 => sha2::Sha384::digest(data).to_vec(),
            HashAlgo::Sha512 => sha2::Sha512::digest(data).to_vec(),
            _ => return None,
        })
    }
}

/// The signer's public-key algorithm (`pkcs7_sig_note_pkey_algo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SigAlgo {
    Rsa,
    Ecdsa,
    Sm2,
    Ecrdsa,
}

impl SigAlgo {
    fn from_oid(oid: &str) -> Option<SigAlgo> {
        Some(match oid {
            "1.2.840.113549.1.1.1" => SigAlgo::Rsa,
            "1.2.840.10045.4.1"
            | "1.2.840.10045.4.3.1"
            | "1.2.840.10045.4.3.2"
            | "1.2.840.10045.4.3.3"
            | "1.2.840.10045.4.3.4" => SigAlgo::Ecdsa,
            "1.2.156.10197.1.501" => SigAlgo::Sm2,
            "1.2.643.7.1.1.1.1" | "1.2.643.7.1.1.1.2" => SigAlgo::Ecrdsa,
            _ => return None,
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            SigAlgo::Rsa => "rsa",
            SigAlgo::Ecdsa => "ecdsa",
            SigAlgo::Sm2 => "sm2",
            SigAlgo::Ecrdsa => "ecrdsa",
        }
    }
}

/// One `SignerInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignerInfo {
    /// The key id the kernel looks the signing key up by: serial number + issuer for a
    /// version 1 signer, the subjectKeyIdentifier for version 3.
    #[serde(serialize_with = "crate::module::ser_hex")]
    pub auth_id: Vec<u8>,
    /// The issuer's name as the kernel makes it up (version 1 signers).
    pub issuer: Option<String>,
    #[serde(serialize_with = "ser_opt_hex")]
    pub serial: Option<Vec<u8>>,
    #[serde(serialize_with = "ser_opt_hex")]
    pub skid: Option<Vec<u8>>,
    pub hash: HashAlgo,
    pub pkey: SigAlgo,
    pub has_authattrs: bool,
    #[serde(skip)]
    pub signature: Vec<u8>,
}

fn ser_opt_hex<S: serde::Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(b) => s.serialize_str(&hex(b)),
        None => s.serialize_none(),
    }
}

impl SignerInfo {
    /// How a person would name the signer: the issuer and serial, or the key identifier.
    pub fn describe(&self) -> String {
        match (&self.issuer, &self.serial, &self.skid) {
            (Some(i), Some(s), _) => format!("{i}: serial {}", hex(s)),
            (_, _, Some(k)) => format!("key identifier {}", hex(k)),
            _ => "an unnamed signer".into(),
        }
    }
}

/// The parsed message.
#[derive(Debug, Clone)]
pub struct Message {
    /// The content type is `data` (else Authenticode's `msIndirectData`).
    pub data_type_is_data: bool,
    /// The message carries its content (is not detached).
    pub has_content: bool,
    /// Certificates carried in the message.
    pub certs: Vec<Cert>,
    pub signers: Vec<SignerInfo>,
    /// Some signer has authenticated attributes (`have_authattrs`).
    pub have_authattrs: bool,
}

/// A refusal: the errno and what the kernel logs (possibly nothing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    pub errno: crate::errno::Errno,
    pub log: Vec<String>,
    /// What went wrong, for people (the kernel often says nothing).
    pub detail: String,
}

impl Refusal {
    pub fn new(errno: crate::errno::Errno, detail: impl Into<String>) -> Refusal {
        Refusal {
            errno,
            log: Vec::new(),
            detail: detail.into(),
        }
    }
    pub fn logged(errno: crate::errno::Errno, line: impl Into<String>) -> Refusal {
        let line = line.into();
        Refusal {
            errno,
            detail: line.clone(),
            log: vec![line],
        }
    }
}

/// Parse a module signature's PKCS#7 message as `pkcs7_parse_message()` does.
pub fn parse(der_bytes: &[u8]) -> Result<Message, Refusal> {
    let sd = signed_data(der_bytes)?;
    let version = match sd.version {
        CmsVersion::V1 => 1,
        CmsVersion::V3 => 3,
        _ => {
            return Err(Refusal::logged(
                Errno::EINVAL,
                "PKCS7: Unsupported SignedData version",
            ));
        }
    };
    let data_type = sd.encap_content_info.econtent_type.to_string();
    if data_type != OID_DATA && data_type != OID_MS_INDIRECT {
        return Err(Refusal::new(
            Errno::EINVAL,
            format!("PKCS7: Unsupported data type (content type {data_type})"),
        ));
    }
    let certs = carried_certs(&sd)?;
    let signers = sd
        .signer_infos
        .0
        .iter()
        .map(|si| signer_info(si, version, &data_type))
        .collect::<Result<Vec<_>, _>>()?;
    // pkcs7_check_authattrs
    let inconsistent =
        || Refusal::logged(Errno::EINVAL, "PKCS7: Inconsistently supplied authAttrs");
    let want = signers.first().ok_or_else(inconsistent)?.has_authattrs;
    if signers.iter().any(|s| s.has_authattrs != want) {
        return Err(inconsistent());
    }
    Ok(Message {
        data_type_is_data: data_type == OID_DATA,
        has_content: sd.encap_content_info.econtent.is_some(),
        certs,
        signers,
        have_authattrs: want,
    })
}

/// The `SignedData` of a `ContentInfo` (the only type the kernel supports).
fn signed_data(der_bytes: &[u8]) -> Result<SignedData, Refusal> {
    let ci = ContentInfo::from_der(der_bytes).map_err(|e| {
        Refusal::new(
            Errno::EBADMSG,
            format!("the PKCS#7 message does not decode: {e}"),
        )
    })?;
    if ci.content_type.to_string() != OID_SIGNED_DATA {
        return Err(Refusal::logged(
            Errno::EINVAL,
            "PKCS7: Only support pkcs7_signedData type",
        ));
    }
    ci.content.decode_as().map_err(|e| {
        Refusal::new(
            Errno::EBADMSG,
            format!("the PKCS#7 SignedData does not decode: {e}"),
        )
    })
}

/// The X.509 certificates the message carries.
fn carried_certs(sd: &SignedData) -> Result<Vec<Cert>, Refusal> {
    let mut certs = Vec::new();
    for choice in sd.certificates.iter().flat_map(|s| s.0.iter()) {
        let cms::cert::CertificateChoices::Certificate(c) = choice else {
            return Err(Refusal::new(
                Errno::EBADMSG,
                "a certificate of the message is not an X.509 certificate",
            ));
        };
        let bad =
            |e: String| Refusal::new(Errno::EBADMSG, format!("certificate in the message: {e}"));
        let der = c.to_der().map_err(|e| bad(e.to_string()))?;
        certs.push(Cert::from_der(&der).map_err(|e| bad(e.to_string()))?);
    }
    Ok(certs)
}

/// One signer, as `pkcs7_note_signerinfo_version`, the signer identifier actions,
/// `pkcs7_sig_note_digest_algo`, `..._pkey_algo` and `pkcs7_note_signed_info` note it;
/// `version`: the SignedData's, `data_type`: its content type's OID.
fn signer_info(
    si: &cms::signed_data::SignerInfo,
    version: u8,
    data_type: &str,
) -> Result<SignerInfo, Refusal> {
    // pkcs7_note_signerinfo_version
    let expect_skid = match si.version {
        CmsVersion::V1 if version == 1 => false,
        CmsVersion::V3 if version != 1 => true,
        CmsVersion::V1 | CmsVersion::V3 => {
            return Err(Refusal::logged(
                Errno::EBADMSG,
                "PKCS7: SignedData-SignerInfo version mismatch",
            ));
        }
        _ => {
            return Err(Refusal::logged(
                Errno::EINVAL,
                "PKCS7: Unsupported SignerInfo version",
            ));
        }
    };
    let (mut issuer, mut serial, mut skid, mut raw_issuer) = (None, None, None, Vec::new());
    match &si.sid {
        SignerIdentifier::IssuerAndSerialNumber(ias) => {
            let bad =
                |e: der::Error| Refusal::new(Errno::EBADMSG, format!("signer identifier: {e}"));
            let name = ias.issuer.to_der().map_err(bad)?;
            let ser = ias.serial_number.to_der().map_err(bad)?;
            raw_issuer = strip_header(&name).to_vec();
            serial = Some(strip_header(&ser).to_vec());
            issuer = Some(super::cert::fabricated_name(&ias.issuer));
        }
        SignerIdentifier::SubjectKeyIdentifier(k) => {
            skid = Some(k.0.as_bytes().to_vec());
        }
    }
    let digest_oid = si.digest_alg.oid.to_string();
    let hash = HashAlgo::from_oid(&digest_oid).ok_or_else(|| {
        Refusal::new(
            Errno::ENOPKG,
            format!("Unsupported digest algo (OID {digest_oid})"),
        )
    })?;
    let has_authattrs = si.signed_attrs.is_some();
    if let Some(attrs) = &si.signed_attrs {
        check_authattrs(attrs, data_type)?;
    }
    let pkey_oid = si.signature_algorithm.oid.to_string();
    let pkey = SigAlgo::from_oid(&pkey_oid).ok_or_else(|| {
        Refusal::new(
            Errno::ENOPKG,
            format!("Unsupported pkey algo (OID {pkey_oid})"),
        )
    })?;
    if data_type != OID_DATA && !has_authattrs {
        return Err(Refusal::logged(
            Errno::EBADMSG,
            "PKCS7: Authenticode requires AuthAttrs",
        ));
    }
    // pkcs7_note_signed_info: the id the key is looked up by
    let auth_id = if expect_skid {
        skid.clone().unwrap_or_default()
    } else {
        let mut v = serial.clone().unwrap_or_default();
        v.extend_from_slice(&raw_issuer);
        v
    };
    Ok(SignerInfo {
        auth_id,
        issuer,
        serial,
        skid,
        hash,
        pkey,
        has_authattrs,
        signature: si.signature.as_bytes().to_vec(),
    })
}

fn strip_header(tlv: &[u8]) -> &[u8] {
    let hdr = match tlv.get(1) {
        Some(n) if *n < 0x80 => 2,
        Some(n) => 2 + (*n & 0x7f) as usize,
        None => tlv.len(),
    };
    tlv.get(hdr..).unwrap_or(&[])
}

/// `pkcs7_sig_note_authenticated_attr` and `pkcs7_sig_note_set_of_authattrs`.
fn check_authattrs(attrs: &x509_cert::attr::Attributes, data_type: &str) -> Result<(), Refusal> {
    let authenticode = data_type == OID_MS_INDIRECT;
    let mut seen: Vec<&str> = Vec::new();
    let repeated = || {
        Refusal::logged(
            Errno::EKEYREJECTED,
            "PKCS7: Repeated/multivalue AuthAttrs not permitted",
        )
    };
    let mut has = |oid: &'static str| -> bool {
        if seen.contains(&oid) {
            return true;
        }
        seen.push(oid);
        false
    };
    for a in attrs.iter() {
        let oid = a.oid.to_string();
        for v in a.values.iter() {
            match oid.as_str() {
                OID_CONTENT_TYPE => {
                    if has(OID_CONTENT_TYPE) {
                        return Err(repeated());
                    }
                    let ct = v
                        .decode_as::<der::asn1::ObjectIdentifier>()
                        .map(|o| o.to_string())
                        .unwrap_or_default();
                    if ct != data_type {
                        return Err(Refusal::new(
                            Errno::EBADMSG,
                            "PKCS7: Mismatch between global data type and sinfo",
                        ));
                    }
                }
                OID_SIGNING_TIME if has(OID_SIGNING_TIME) => return Err(repeated()),
                OID_MESSAGE_DIGEST => {
                    if has(OID_MESSAGE_DIGEST) {
                        return Err(repeated());
                    }
                    if der::Tagged::tag(v) != der::Tag::OctetString {
                        return Err(Refusal::new(
                            Errno::EBADMSG,
                            "messageDigest is not an OCTET STRING",
                        ));
                    }
                }
                OID_SMIME_CAPS => {
                    if has(OID_SMIME_CAPS) {
                        return Err(repeated());
                    }
                    if !authenticode {
                        return Err(Refusal::logged(
                            Errno::EKEYREJECTED,
                            "PKCS7: S/MIME Caps only allowed with Authenticode",
                        ));
                    }
                }
                OID_MS_OPUS | OID_MS_STATEMENT => {
                    let key = if oid == OID_MS_OPUS {
                        OID_MS_OPUS
                    } else {
                        OID_MS_STATEMENT
                    };
                    if has(key) {
                        return Err(repeated());
                    }
                    if !authenticode {
                        return Err(Refusal::logged(
                            Errno::EKEYREJECTED,
                            "PKCS7: Authenticode AuthAttrs only allowed with Authenticode",
                        ));
                    }
                }
                _ => {}
            }
        }
    }
    if !seen.contains(&OID_CONTENT_TYPE) || !seen.contains(&OID_MESSAGE_DIGEST) {
        return Err(Refusal::logged(
            Errno::EBADMSG,
            "PKCS7: Missing required AuthAttr",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_ebadmsg() {
        assert_eq!(parse(b"").unwrap_err().errno, "EBADMSG");
        assert_eq!(parse(b"\x30\x03\x02\x01\x01").unwrap_err().errno, "EBADMSG");
        assert_eq!(
            parse(&[0x30, 0x82, 0xff, 0xff]).unwrap_err().errno,
            "EBADMSG"
        );
    }

    #[test]
    fn hash_names_round_trip() {
        for h in [
            HashAlgo::Sha1,
            HashAlgo::Sha256,
            HashAlgo::Sm3,
            HashAlgo::Streebog512,
        ] {
            assert_eq!(HashAlgo::from_name(h.name()), Some(h));
        }
        assert_eq!(HashAlgo::Sha256.digest(b"abc").unwrap().len(), 32);
        assert_eq!(HashAlgo::Md4.digest(b"abc"), None);
    }
}
