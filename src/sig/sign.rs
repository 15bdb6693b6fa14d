//! Signing a module the way `scripts/sign-file` does (with OpenSSL's CMS, `CMS_NOCERTS |
//! CMS_BINARY | CMS_DETACHED | CMS_NOATTR`), without OpenSSL or a kernel tree:
//!
//! ```text
//! ContentInfo { signedData, [0] SignedData {
//!     version 1 (3 with a key identifier), digestAlgorithms { hash },
//!     encapContentInfo { data } (detached), no certificates,
//!     signerInfos { SignerInfo { version 1 | 3, issuerAndSerialNumber | [0] subjectKeyIdentifier,
//!         hash, rsaEncryption NULL | ecdsa-with-<hash>, signature } } } }
//! ```
//!
//! then `struct module_signature` (only `id_type = 2` and `sig_len`) and the marker. PKCS#1
//! v1.5 RSA signatures are deterministic, so an RSA signature is byte-identical to
//! `sign-file`'s; ECDSA signatures (RFC 6979 here, random in OpenSSL) verify but differ.

use super::cert::{Cert, PublicKey, looks_pem, pem_blocks};
use super::pkcs7::HashAlgo;
use crate::module::signature::{ID_PKCS7, MAGIC};
use cms::cert::IssuerAndSerialNumber;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{ObjectIdentifier, OctetString, SetOfVec};
use der::{Any, Decode, Encode};
use spki::AlgorithmIdentifierOwned;

/// Why signing failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SignError(pub String);

fn err(s: impl Into<String>) -> SignError {
    SignError(s.into())
}

/// A private key to sign with.
pub enum SigningKey {
    Rsa(Box<rsa::RsaPrivateKey>),
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SigningKey::Rsa(_) => "SigningKey::Rsa",
            SigningKey::P256(_) => "SigningKey::P256",
            SigningKey::P384(_) => "SigningKey::P384",
        })
    }
}

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_EC: &str = "1.2.840.10045.2.1";

impl SigningKey {
    /// Read a private key: PEM (`PRIVATE KEY`, `RSA PRIVATE KEY`, `EC PRIVATE KEY`; other
    /// blocks such as a certificate are skipped, as in the kernel's `signing_key.pem`) or DER
    /// PKCS#8. Encrypted keys are not supported.
    pub fn from_bytes(data: &[u8]) -> Result<SigningKey, SignError> {
        if looks_pem(data) {
            for (label, der) in pem_blocks(data).map_err(|e| err(e.0))? {
                match label.as_str() {
                    "PRIVATE KEY" => return SigningKey::from_pkcs8(&der),
                    "RSA PRIVATE KEY" => {
                        use rsa::pkcs1::DecodeRsaPrivateKey;
                        let k = rsa::RsaPrivateKey::from_pkcs1_der(&der)
                            .map_err(|e| err(format!("RSA PRIVATE KEY: {e}")))?;
                        return Ok(SigningKey::Rsa(Box::new(k)));
                    }
                    "EC PRIVATE KEY" => {
                        if let Ok(k) = p256::SecretKey::from_sec1_der(&der) {
                            return Ok(SigningKey::P256(k.into()));
                        }
                        let k = p384::SecretKey::from_sec1_der(&der).map_err(|e| {
                            err(format!("EC PRIVATE KEY (P-256 or P-384 expected): {e}"))
                        })?;
                        return Ok(SigningKey::P384(k.into()));
                    }
                    "ENCRYPTED PRIVATE KEY" => {
                        return Err(err(
                            "the private key is encrypted; decrypt it first (openssl pkey -in KEY -out PLAIN)",
                        ));
                    }
                    _ => {}
                }
            }
            return Err(err("no private key block in the PEM text"));
        }
        SigningKey::from_pkcs8(data)
    }

    fn from_pkcs8(der: &[u8]) -> Result<SigningKey, SignError> {
        let info = pkcs8::PrivateKeyInfo::from_der(der)
            .map_err(|e| err(format!("not a PKCS#8 private key: {e}")))?;
        match info.algorithm.oid.to_string().as_str() {
            OID_RSA => {
                use rsa::pkcs8::DecodePrivateKey;
                let k = rsa::RsaPrivateKey::from_pkcs8_der(der)
                    .map_err(|e| err(format!("RSA private key: {e}")))?;
                Ok(SigningKey::Rsa(Box::new(k)))
            }
            OID_EC => {
                use p256::pkcs8::DecodePrivateKey;
                if let Ok(k) = p256::SecretKey::from_pkcs8_der(der) {
                    return Ok(SigningKey::P256(k.into()));
                }
                let k = p384::SecretKey::from_pkcs8_der(der)
                    .map_err(|e| err(format!("EC private key (P-256 or P-384 expected): {e}")))?;
                Ok(SigningKey::P384(k.into()))
            }
            other => Err(err(format!("unsupported private key algorithm {other}"))),
        }
    }

    /// Whether `cert` holds this key's public half (`X509_check_private_key`).
    pub fn matches(&self, cert: &Cert) -> bool {
        match (self, &cert.key) {
            (SigningKey::Rsa(k), PublicKey::Rsa(p)) => &k.to_public_key() == p,
            (SigningKey::P256(k), PublicKey::P256(p)) => k.verifying_key() == p,
            (SigningKey::P384(k), PublicKey::P384(p)) => k.verifying_key() == p,
            _ => false,
        }
    }

    /// The raw signature of `digest` (a `hash` digest).
    fn sign_digest(&self, hash: HashAlgo, digest: &[u8]) -> Result<Vec<u8>, SignError> {
        match self {
            SigningKey::Rsa(k) => {
                use rsa::Pkcs1v15Sign;
                let scheme = match hash {
                    HashAlgo::Sha1 => Pkcs1v15Sign::new::<sha1::Sha1>(),
                    HashAlgo::Sha224 => Pkcs1v15Sign::new::<sha2::Sha224>(),
                    HashAlgo::Sha256 => Pkcs1v15Sign::new::<sha2::Sha256>(),
                    HashAlgo::Sha384 => Pkcs1v15Sign::new::<sha2::Sha384>(),
                    HashAlgo::Sha512 => Pkcs1v15Sign::new::<sha2::Sha512>(),
                    other => return Err(err(format!("cannot sign with {}", other.name()))),
                };
                k.sign(scheme, digest)
                    .map_err(|e| err(format!("RSA signing: {e}")))
            }
            SigningKey::P256(k) => {
                use p256::ecdsa::signature::hazmat::PrehashSigner;
                let s: p256::ecdsa::Signature = k
                    .sign_prehash(digest)
                    .map_err(|e| err(format!("ECDSA signing: {e}")))?;
                Ok(s.to_der().as_bytes().to_vec())
            }
            SigningKey::P384(k) => {
                use p384::ecdsa::signature::hazmat::PrehashSigner;
                let s: p384::ecdsa::Signature = k
                    .sign_prehash(digest)
                    .map_err(|e| err(format!("ECDSA signing: {e}")))?;
                Ok(s.to_der().as_bytes().to_vec())
            }
        }
    }

    fn signature_algorithm(&self, hash: HashAlgo) -> Result<AlgorithmIdentifierOwned, SignError> {
        let oid = |s: &str| ObjectIdentifier::new(s).map_err(|e| err(e.to_string()));
        Ok(match self {
            SigningKey::Rsa(_) => AlgorithmIdentifierOwned {
                oid: oid(OID_RSA)?,
                parameters: Some(Any::null()),
            },
            SigningKey::P256(_) | SigningKey::P384(_) => AlgorithmIdentifierOwned {
                oid: oid(match hash {
                    HashAlgo::Sha1 => "1.2.840.10045.4.1",
                    HashAlgo::Sha224 => "1.2.840.10045.4.3.1",
                    HashAlgo::Sha256 => "1.2.840.10045.4.3.2",
                    HashAlgo::Sha384 => "1.2.840.10045.4.3.3",
                    HashAlgo::Sha512 => "1.2.840.10045.4.3.4",
                    other => return Err(err(format!("cannot sign with {}", other.name()))),
                })?,
                parameters: None,
            },
        })
    }
}

fn hash_oid(h: HashAlgo) -> Result<ObjectIdentifier, SignError> {
    let s = match h {
        HashAlgo::Sha1 => "1.3.14.3.2.26",
        HashAlgo::Sha224 => "2.16.840.1.101.3.4.2.4",
        HashAlgo::Sha256 => "2.16.840.1.101.3.4.2.1",
        HashAlgo::Sha384 => "2.16.840.1.101.3.4.2.2",
        HashAlgo::Sha512 => "2.16.840.1.101.3.4.2.3",
        other => return Err(err(format!("cannot sign with {}", other.name()))),
    };
    ObjectIdentifier::new(s).map_err(|e| err(e.to_string()))
}

/// How to sign.
#[derive(Debug, Clone, Copy)]
pub struct SignOptions {
    pub hash: HashAlgo,
    /// Name the signer by its subjectKeyIdentifier (`sign-file -k`), not issuer and serial.
    pub use_keyid: bool,
}

/// The detached PKCS#7 (CMS) signature of `data`, DER.
pub fn pkcs7_signature(
    data: &[u8],
    key: &SigningKey,
    cert: &Cert,
    opts: SignOptions,
) -> Result<Vec<u8>, SignError> {
    if !key.matches(cert) {
        return Err(err(format!(
            "the private key does not belong to the certificate '{}'",
            cert.description()
        )));
    }
    let digest = opts
        .hash
        .digest(data)
        .ok_or_else(|| err(format!("cannot sign with {}", opts.hash.name())))?;
    let signature = key.sign_digest(opts.hash, &digest)?;
    let x509 = x509_cert::Certificate::from_der(&cert.der)
        .map_err(|e| err(format!("certificate: {e}")))?;
    let (version, sid) = if opts.use_keyid {
        let skid = cert.skid.clone().ok_or_else(|| {
            err("the certificate has no subjectKeyIdentifier to name the signer by")
        })?;
        (
            CmsVersion::V3,
            SignerIdentifier::SubjectKeyIdentifier(x509_cert::ext::pkix::SubjectKeyIdentifier(
                OctetString::new(skid).map_err(|e| err(e.to_string()))?,
            )),
        )
    } else {
        (
            CmsVersion::V1,
            SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
                issuer: x509.tbs_certificate.issuer.clone(),
                serial_number: x509.tbs_certificate.serial_number.clone(),
            }),
        )
    };
    let digest_alg = AlgorithmIdentifierOwned {
        oid: hash_oid(opts.hash)?,
        parameters: None,
    };
    let si = SignerInfo {
        version,
        sid,
        digest_alg: digest_alg.clone(),
        signed_attrs: None,
        signature_algorithm: key.signature_algorithm(opts.hash)?,
        signature: OctetString::new(signature).map_err(|e| err(e.to_string()))?,
        unsigned_attrs: None,
    };
    let mut digest_algorithms = SetOfVec::new();
    digest_algorithms
        .insert(digest_alg)
        .map_err(|e| err(e.to_string()))?;
    let mut infos = SetOfVec::new();
    infos.insert(si).map_err(|e| err(e.to_string()))?;
    let sd = SignedData {
        version,
        digest_algorithms,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: ObjectIdentifier::new("1.2.840.113549.1.7.1")
                .map_err(|e| err(e.to_string()))?,
            econtent: None,
        },
        certificates: None,
        crls: None,
        signer_infos: SignerInfos(infos),
    };
    let ci = ContentInfo {
        content_type: ObjectIdentifier::new("1.2.840.113549.1.7.2")
            .map_err(|e| err(e.to_string()))?,
        content: Any::encode_from(&sd).map_err(|e| err(e.to_string()))?,
    };
    ci.to_der().map_err(|e| err(e.to_string()))
}

/// `data` followed by the signature trailer for `pkcs7`.
pub fn append_signature(data: &[u8], pkcs7: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + pkcs7.len() + 12 + MAGIC.len());
    out.extend_from_slice(data);
    out.extend_from_slice(pkcs7);
    out.extend_from_slice(&[0, 0, ID_PKCS7, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&(pkcs7.len() as u32).to_be_bytes());
    out.extend_from_slice(MAGIC);
    out
}

/// Sign a decompressed module image: any existing signature is dropped first (`sign-file`
/// would sign it along and append a second one). Returns the signed image.
pub fn sign_image(
    image: &[u8],
    key: &SigningKey,
    cert: &Cert,
    opts: SignOptions,
) -> Result<(Vec<u8>, bool), SignError> {
    let (body, trailer) = crate::module::signature::split(image);
    let had = !matches!(trailer, crate::module::Trailer::Unsigned);
    let body = if matches!(trailer, crate::module::Trailer::Malformed(_)) {
        return Err(err(format!(
            "the module's signature trailer is malformed ({trailer:?}); refusing to sign over it"
        )));
    } else {
        body
    };
    let p7 = pkcs7_signature(body, key, cert, opts)?;
    Ok((append_signature(body, &p7), had))
}
