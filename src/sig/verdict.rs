//! The kernel's `module_sig_check()` (`kernel/module/signing.c`, v6.1 as Debian builds it)
//! computed from a module's bytes and a [`SigPolicy`]:
//!
//! 1. no `~Module signature appended~\n` at the end (or a "mangled" load with
//!    `MODULE_INIT_IGNORE_*` flags): -ENODATA, "unsigned module";
//! 2. `mod_check_sig()`: `sig_len` must fit (-EBADMSG), `id_type` must be PKCS#7 (-ENOPKG,
//!    `module: not signed with expected PKCS#7 message`), the other header fields zero
//!    (-EBADMSG, `module: PKCS#7 signature info has unexpected non-zero params`);
//! 3. `verify_pkcs7_signature()` over the module's first `len - 28 - 12 - sig_len` bytes:
//!    the message parsed ([`super::pkcs7`]), detached, of type `data`, without authenticated
//!    attributes (-EKEYREJECTED otherwise); each signer's digest algorithm available in the
//!    kernel (-ENOPKG when none is); then `pkcs7_validate_trust()`: the signer's key looked up
//!    by its key id in the secondary keyring (which links the builtin and machine keyrings),
//!    -ENOKEY if none; the signature verified with it, -EKEYREJECTED if it does not; Debian
//!    then retries -ENOKEY against `.platform`; a verified module whose SHA-256 is blacklisted
//!    is -EKEYREJECTED.
//!
//! -ENODATA, -ENOPKG and -ENOKEY are forgiven unless signatures are enforced ("Loading of
//! %s is rejected", -EKEYREJECTED), then `security_locked_down(LOCKDOWN_MODULE_SIGNATURE)`
//! decides (-EPERM under lockdown); any other error refuses the module, enforced or not.
//!
//! The module body is hashed only when a trusted key matched and the signature must be
//! verified; a check from the parsed trailer alone ([`check_trailer`]) stops there.

use super::cert::{Cert, PublicKey, hex};
use super::keys::Keyring;
use super::pkcs7::{self, HashAlgo, Refusal, SigAlgo, SignerInfo};
use super::trust::{SigPolicy, TrustedKey, TrustedKeys};
use crate::errno::Errno;
use crate::module::signature::{HEADER_LEN, ID_PKCS7, MAGIC, Trailer};
use serde::Serialize;

/// Why a module counts as not (validly) signed in a way the kernel may forgive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Soft {
    /// -ENODATA
    Unsigned,
    /// -ENOPKG
    UnsupportedCrypto,
    /// -ENOKEY
    UnavailableKey,
}

impl Soft {
    /// The words `module_sig_check()` uses (`Loading of %s is rejected`).
    pub fn reason(self) -> &'static str {
        match self {
            Soft::Unsigned => "unsigned module",
            Soft::UnsupportedCrypto => "module with unsupported crypto",
            Soft::UnavailableKey => "module with unavailable key",
        }
    }
    pub fn errno(self) -> Errno {
        match self {
            Soft::Unsigned => Errno::ENODATA,
            Soft::UnsupportedCrypto => Errno::ENOPKG,
            Soft::UnavailableKey => Errno::ENOKEY,
        }
    }
}

/// What the signature check comes to, before enforcement is applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum Outcome {
    /// The signature verifies with a trusted key: the module loads untainted.
    Verified { key: String, keyring: Keyring },
    /// Forgiven unless enforced (taint E), refused under enforcement or lockdown.
    Soft { why: Soft, detail: String },
    /// Refused whether enforced or not.
    Refused { errno: Errno, detail: String },
    /// kabi cannot tell (no keys known, a key known without its certificate, the module body
    /// not read, crypto kabi does not implement).
    Unknown { detail: String },
}

/// The signature check of one module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SigCheck {
    #[serde(flatten)]
    pub outcome: Outcome,
    /// What the kernel logs while checking (before any "Loading of ... is rejected").
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub log: Vec<String>,
    /// The first signer, when the message parsed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<SignerInfo>,
}

impl SigCheck {
    fn soft(why: Soft, detail: impl Into<String>) -> SigCheck {
        SigCheck {
            outcome: Outcome::Soft {
                why,
                detail: detail.into(),
            },
            log: Vec::new(),
            signer: None,
        }
    }
    fn refused(r: Refusal) -> SigCheck {
        if r.errno == Errno::ENOPKG {
            return SigCheck {
                outcome: Outcome::Soft {
                    why: Soft::UnsupportedCrypto,
                    detail: r.detail,
                },
                log: r.log,
                signer: None,
            };
        }
        SigCheck {
            outcome: Outcome::Refused {
                errno: r.errno,
                detail: r.detail,
            },
            log: r.log,
            signer: None,
        }
    }
    fn unknown(detail: impl Into<String>) -> SigCheck {
        SigCheck {
            outcome: Outcome::Unknown {
                detail: detail.into(),
            },
            log: Vec::new(),
            signer: None,
        }
    }
    pub fn is_verified(&self) -> bool {
        matches!(self.outcome, Outcome::Verified { .. })
    }
}

/// The full check on a decompressed module file (image plus trailer).
pub fn check_image(image: &[u8], policy: &SigPolicy) -> SigCheck {
    check_image_flags(image, policy, false)
}

/// Who does a signature's arithmetic (the digest of the module and the public-key operation)
/// once a trusted key is found for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Math {
    /// kabi does: the check ends in a verdict.
    #[default]
    Here,
    /// The kernel about to be given the module does: with a trusted key found the check ends
    /// in [`Outcome::Unknown`] and reads no more of the module. Where nothing enforces
    /// signatures (no `sig_enforce`, no lockdown) the signature is not read at all: a key the
    /// kernel lacks, a form it refuses, an unsupported digest only taint or are refused by
    /// the kernel before anything else, so the verdict is [`Outcome::Unknown`] at once. For
    /// an insert: the kernel verifies a signature before it looks at anything else of the
    /// module, so one that does not verify is refused there without anything of it loaded
    /// (the file was read: security modules that watch the kernel's reads, LoadPin and IMA,
    /// see it as they see every module given to the kernel), and verifying it first would
    /// double the cost of every signed load (in an emulated guest 2-3 ms a module, as much
    /// as the kernel's own check). Where signatures are enforced, everything before the
    /// arithmetic (the form of the message, the digests the kernel supports, which key, if
    /// any, the kernel trusts for it) is still decided here: an unsigned module, or one
    /// signed by a key the kernel lacks, is refused before its dependencies are inserted.
    Kernel,
}

/// Whether a signature the kernel cannot verify keeps a module out: enforced signatures, or
/// lockdown (which makes the errors `module_sig_check` otherwise tolerates fatal).
fn enforces(policy: &SigPolicy) -> bool {
    policy.enforcement.enforced || policy.enforcement.lockdown != super::state::Lockdown::None
}

/// [`check_image`], with the arithmetic done by `math`.
pub fn check_image_math(image: &[u8], policy: &SigPolicy, math: Math) -> SigCheck {
    check_image_with(image, policy, false, math)
}

/// As [`check_image`], for a load with `MODULE_INIT_IGNORE_MODVERSIONS` or
/// `MODULE_INIT_IGNORE_VERMAGIC` (`mangled`): the signature is then not looked at.
pub fn check_image_flags(image: &[u8], policy: &SigPolicy, mangled: bool) -> SigCheck {
    check_image_with(image, policy, mangled, Math::Here)
}

fn check_image_with(image: &[u8], policy: &SigPolicy, mangled: bool, math: Math) -> SigCheck {
    let marker = MAGIC.len();
    if mangled || image.len() <= marker || &image[image.len() - marker..] != MAGIC {
        return SigCheck::soft(Soft::Unsigned, "no signature appended");
    }
    // nothing enforced: whatever the signature, the kernel decides on it before it looks at
    // anything else of the module, and any refusal of it is made there (see [`Math::Kernel`])
    if math == Math::Kernel && !enforces(policy) {
        return SigCheck::unknown(
            "signatures are not enforced: the kernel checks the signature itself",
        );
    }
    let modlen = image.len() - marker;
    // mod_verify_sig
    if modlen <= HEADER_LEN {
        return SigCheck::refused(Refusal::new(
            Errno::EBADMSG,
            "no room for the signature header",
        ));
    }
    let hdr = &image[modlen - HEADER_LEN..modlen];
    let sig_len = u32::from_be_bytes([hdr[8], hdr[9], hdr[10], hdr[11]]) as usize;
    if let Err(r) = mod_check_sig(hdr, modlen) {
        return SigCheck::refused(r);
    }
    let body_len = modlen - HEADER_LEN - sig_len;
    let blob = &image[body_len..modlen - HEADER_LEN];
    verify_message(blob, Some(&image[..body_len]), Some(image), policy, math)
}

/// `mod_check_sig()` on the 12-byte header of a file whose length without the marker is
/// `file_len`.
fn mod_check_sig(hdr: &[u8], file_len: usize) -> Result<(), Refusal> {
    let sig_len = u32::from_be_bytes([hdr[8], hdr[9], hdr[10], hdr[11]]) as usize;
    if sig_len >= file_len - HEADER_LEN {
        return Err(Refusal::new(
            Errno::EBADMSG,
            format!(
                "signature length {sig_len} exceeds the {} bytes in front of it",
                file_len - HEADER_LEN
            ),
        ));
    }
    if hdr[2] != ID_PKCS7 {
        return Err(Refusal::logged(
            Errno::ENOPKG,
            "module: not signed with expected PKCS#7 message",
        ));
    }
    if hdr[0] != 0 || hdr[1] != 0 || hdr[3] != 0 || hdr[4] != 0 || hdr[5..8] != [0, 0, 0] {
        return Err(Refusal::logged(
            Errno::EBADMSG,
            "module: PKCS#7 signature info has unexpected non-zero params",
        ));
    }
    Ok(())
}

/// The check from a module's parsed trailer alone: everything but the digest, which needs
/// the module body ([`Outcome::Unknown`] when a key matched and the signature would have to
/// be verified).
pub fn check_trailer(trailer: &Trailer, policy: &SigPolicy) -> SigCheck {
    match trailer {
        Trailer::Unsigned => SigCheck::soft(Soft::Unsigned, "no signature appended"),
        Trailer::Malformed(why) => SigCheck::refused(Refusal::new(Errno::EBADMSG, why.clone())),
        Trailer::Signed(sig) => {
            let h = &sig.header;
            let mut raw = [0u8; HEADER_LEN];
            raw[0] = h.algo;
            raw[1] = h.hash;
            raw[2] = h.id_type;
            raw[3] = h.signer_len;
            raw[4] = h.key_id_len;
            raw[5..8].copy_from_slice(&h.pad);
            raw[8..].copy_from_slice(&h.sig_len.to_be_bytes());
            let file_len =
                sig.module_len + sig.signer.len() + sig.key_id.len() + sig.sig.len() + HEADER_LEN;
            if let Err(r) = mod_check_sig(&raw, file_len) {
                return SigCheck::refused(r);
            }
            verify_message(&sig.sig, None, None, policy, Math::Here)
        }
    }
}

/// What a key lookup finds.
enum Found<'a> {
    Key(&'a TrustedKey, &'a Cert),
    /// A key of that description is in a keyring, its certificate is not known.
    DescriptionOnly(&'a TrustedKey),
    None,
}

/// `find_asymmetric_key(keyring, id)`: a key any of whose ids equals `id`.
fn find_key<'a>(keys: impl Iterator<Item = &'a TrustedKey>, si: &SignerInfo) -> Found<'a> {
    let mut maybe = None;
    for k in keys {
        match &k.cert {
            Some(c) => {
                if c.key_ids().contains(&si.auth_id) {
                    return Found::Key(k, c);
                }
            }
            None => {
                // known by description only: `subject: skid-or-serial`
                let (subject, id_hex) = k.description.rsplit_once(": ").unwrap_or(("", ""));
                let by_skid = si.skid.as_ref().is_some_and(|s| hex(s) == id_hex);
                let by_name = si.issuer.as_deref() == Some(subject)
                    && (si.serial.as_ref().is_some_and(|s| hex(s) == id_hex) || !id_hex.is_empty());
                if by_skid || by_name {
                    maybe = Some(k);
                }
            }
        }
    }
    maybe.map_or(Found::None, Found::DescriptionOnly)
}

/// The crypto of one verification, unless it succeeded before: with a cache directory
/// (`kabi load`), successes are kept ([`super::memo`]).
fn memoized(
    key: &Cert,
    si: &SignerInfo,
    digest: &[u8],
    policy: &SigPolicy,
    verify: impl FnOnce() -> Result<(), Option<Errno>>,
) -> Result<(), Option<Errno>> {
    let (Some(cache), Some(boot)) = (&policy.sources.cache, super::memo::boot_id()) else {
        return verify();
    };
    let algos = format!("{} {:?} {:?}", key.pkey_algo, si.pkey, si.hash);
    let e = super::memo::entry(&boot, key, &algos, &si.signature, digest);
    if cache.verified(&e) {
        return Ok(());
    }
    #[cfg(test)]
    MEMO_MISSES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let r = verify();
    if r.is_ok() {
        cache.remember_verified(&e);
    }
    r
}

/// Verifications made with a cache directory (the tests count them).
#[cfg(test)]
static MEMO_MISSES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Verify one signer's signature with `key` over `digest`: `public_key_verify_signature()`.
/// `Err(None)`: kabi cannot tell.
fn verify_with(
    key: &Cert,
    si: &SignerInfo,
    digest: &[u8],
    policy: &SigPolicy,
) -> Result<(), Option<Errno>> {
    use rsa::Pkcs1v15Sign;
    let cfg = &policy.config;
    match (&key.key, si.pkey) {
        (PublicKey::Rsa(k), SigAlgo::Rsa) => {
            if !cfg.rsa {
                return Err(Some(Errno::ENOENT));
            }
            let scheme = match si.hash {
                HashAlgo::Sha1 => Pkcs1v15Sign::new::<sha1::Sha1>(),
                HashAlgo::Sha224 => Pkcs1v15Sign::new::<sha2::Sha224>(),
                HashAlgo::Sha256 => Pkcs1v15Sign::new::<sha2::Sha256>(),
                HashAlgo::Sha384 => Pkcs1v15Sign::new::<sha2::Sha384>(),
                HashAlgo::Sha512 => Pkcs1v15Sign::new::<sha2::Sha512>(),
                // pkcs1pad has no DigestInfo for these: the verification fails
                HashAlgo::Md4 | HashAlgo::Sm3 | HashAlgo::Streebog256 | HashAlgo::Streebog512 => {
                    return Err(Some(Errno::EINVAL));
                }
                HashAlgo::Md5 => return Err(None),
            };
            memoized(key, si, digest, policy, || {
                k.verify(scheme, digest, &si.signature)
                    .map_err(|_| Some(Errno::EKEYREJECTED))
            })
        }
        (PublicKey::P256(k), SigAlgo::Ecdsa) => {
            use p256::ecdsa::signature::hazmat::PrehashVerifier;
            if !cfg.ecdsa {
                return Err(Some(Errno::ENOENT));
            }
            let sig = p256::ecdsa::Signature::from_der(&si.signature)
                .map_err(|_| Some(Errno::EBADMSG))?;
            memoized(key, si, digest, policy, || {
                k.verify_prehash(digest, &sig)
                    .map_err(|_| Some(Errno::EKEYREJECTED))
            })
        }
        (PublicKey::P384(k), SigAlgo::Ecdsa) => {
            use p384::ecdsa::signature::hazmat::PrehashVerifier;
            if !cfg.ecdsa {
                return Err(Some(Errno::ENOENT));
            }
            let sig = p384::ecdsa::Signature::from_der(&si.signature)
                .map_err(|_| Some(Errno::EBADMSG))?;
            memoized(key, si, digest, policy, || {
                k.verify_prehash(digest, &sig)
                    .map_err(|_| Some(Errno::EKEYREJECTED))
            })
        }
        (PublicKey::Other, _) => Err(None),
        // the key's algorithm and the signature's differ
        _ => Err(Some(Errno::EKEYREJECTED)),
    }
}

fn hash_supported(policy: &SigPolicy, h: HashAlgo) -> bool {
    policy.config.hashes.contains(&h)
}

/// The PKCS#7 part of the check. `body`: the signed bytes, when read; `whole`: the whole
/// file (for the hash blacklist).
fn verify_message(
    blob: &[u8],
    body: Option<&[u8]>,
    whole: Option<&[u8]>,
    policy: &SigPolicy,
    math: Math,
) -> SigCheck {
    let msg = match pkcs7::parse(blob) {
        Ok(m) => m,
        Err(r) => return SigCheck::refused(r),
    };
    let mut c = judge_message(&msg, body, whole, policy, math).unwrap_or_else(|verdict| *verdict);
    c.signer = msg.signers.first().cloned();
    c
}

/// The kernel's checks of a parsed message, in its order: the form a module signature must
/// have, the certificates the message carries, then the trusted keys (secondary search first,
/// then `.platform`) and the hash blacklist. `Err` is a verdict reached before the end.
fn judge_message(
    msg: &pkcs7::Message,
    body: Option<&[u8]>,
    whole: Option<&[u8]>,
    policy: &SigPolicy,
    math: Math,
) -> Result<SigCheck, Box<SigCheck>> {
    module_signature_form(msg)?;
    let mut digests = Digests {
        body,
        done: Vec::new(),
    };
    let unsupported: Vec<bool> = msg
        .signers
        .iter()
        .map(|s| !hash_supported(policy, s.hash))
        .collect();
    verify_carried_certs(msg, &unsupported, &mut digests, policy)?;
    if unsupported.iter().all(|&u| u) {
        let names: Vec<&str> = msg.signers.iter().map(|s| s.hash.name()).collect();
        return Ok(SigCheck::soft(
            Soft::UnsupportedCrypto,
            format!("the kernel cannot compute {}", names.join(", ")),
        ));
    }
    let keys = policy.keys();
    if !keys.authoritative {
        return Ok(SigCheck::unknown(
            "the kernel's trusted keys are not known (no kernel image, /proc/keys or --trusted-cert)",
        ));
    }
    // pkcs7_validate_trust: secondary (builtin, machine, given) first, then .platform
    let mut passes = vec![true];
    if policy.platform_fallback {
        passes.push(false);
    }
    for secondary in passes {
        let search = TrustSearch {
            msg,
            unsupported: &unsupported,
            keys,
            secondary,
            math,
        };
        match search.run(&mut digests, policy)? {
            Pass::Verified(key, keyring) => {
                not_blacklisted(keys, whole)?;
                return Ok(SigCheck {
                    outcome: Outcome::Verified { key, keyring },
                    log: Vec::new(),
                    signer: None,
                });
            }
            Pass::OnlyUnsupportedDigests => {
                return Ok(SigCheck::soft(
                    Soft::UnsupportedCrypto,
                    "no signer with a digest the kernel can compute",
                ));
            }
            Pass::NoKey => {}
        }
    }
    let who = msg
        .signers
        .first()
        .map(SignerInfo::describe)
        .unwrap_or_default();
    Ok(SigCheck::soft(
        Soft::UnavailableKey,
        format!(
            "signed by {who}, which is none of the {} keys the kernel trusts",
            keys.keys.len()
        ),
    ))
}

/// `mod_verify_sig` and `pkcs7_verify(VERIFYING_MODULE_SIGNATURE)`: detached, of data, no
/// authenticated attributes.
fn module_signature_form(msg: &pkcs7::Message) -> Result<(), Box<SigCheck>> {
    let refuse = |errno, line| Err(Box::new(SigCheck::refused(Refusal::logged(errno, line))));
    if msg.has_content {
        return refuse(Errno::EBADMSG, "PKCS#7 signature with non-detached data");
    }
    if !msg.data_type_is_data {
        return refuse(
            Errno::EKEYREJECTED,
            "PKCS7: Invalid module sig (not pkcs7-data)",
        );
    }
    if msg.have_authattrs {
        return refuse(
            Errno::EKEYREJECTED,
            "PKCS7: Invalid module sig (has authattrs)",
        );
    }
    Ok(())
}

/// The body's digests, computed once per algorithm and only when a key must verify them.
struct Digests<'a> {
    body: Option<&'a [u8]>,
    done: Vec<(HashAlgo, Vec<u8>)>,
}

impl Digests<'_> {
    /// The digest of the body, or the verdict that it cannot be had.
    fn of(&mut self, h: HashAlgo) -> Result<Vec<u8>, Box<SigCheck>> {
        if let Some((_, d)) = self.done.iter().find(|(a, _)| *a == h) {
            return Ok(d.clone());
        }
        let d = self
            .body
            .and_then(|b| h.digest(b))
            .ok_or_else(|| Box::new(SigCheck::unknown(not_read(self.body, h))))?;
        self.done.push((h, d.clone()));
        Ok(d)
    }
}

/// `pkcs7_verify_one` for the signers whose certificate the message carries: each signature
/// must verify with that certificate before any trust is looked for.
fn verify_carried_certs(
    msg: &pkcs7::Message,
    unsupported: &[bool],
    digests: &mut Digests,
    policy: &SigPolicy,
) -> Result<(), Box<SigCheck>> {
    for (si, unsup) in msg.signers.iter().zip(unsupported) {
        if *unsup {
            continue;
        }
        let Some(c) = msg.certs.iter().find(|c| c.id() == si.auth_id) else {
            continue;
        };
        let d = digests.of(si.hash)?;
        match verify_with(c, si, &d, policy) {
            Ok(()) => {}
            Err(Some(errno)) => {
                return Err(Box::new(SigCheck::refused(Refusal::new(
                    errno,
                    format!(
                        "the signature does not verify with the certificate in the message ({})",
                        c.description()
                    ),
                ))));
            }
            Err(None) => {
                return Err(Box::new(SigCheck::unknown(format!(
                    "kabi cannot verify {} signatures with {} keys",
                    si.pkey.name(),
                    c.pkey_algo
                ))));
            }
        }
    }
    Ok(())
}

/// What one pass over a search list of trusted keys found.
enum Pass {
    /// A signer verified with this key (description, keyring).
    Verified(String, Keyring),
    /// No signer with a key, and some signers' digests the kernel cannot compute.
    OnlyUnsupportedDigests,
    NoKey,
}

/// One pass of `pkcs7_validate_trust` over the secondary search list or `.platform`.
struct TrustSearch<'a> {
    msg: &'a pkcs7::Message,
    unsupported: &'a [bool],
    keys: &'a TrustedKeys,
    secondary: bool,
    math: Math,
}

impl TrustSearch<'_> {
    fn run(&self, digests: &mut Digests, policy: &SigPolicy) -> Result<Pass, Box<SigCheck>> {
        let mut cached = Soft::UnavailableKey;
        let mut any_ok = None;
        for (si, unsup) in self.msg.signers.iter().zip(self.unsupported) {
            if *unsup {
                cached = Soft::UnsupportedCrypto;
                continue;
            }
            match self.key_of(si) {
                Found::None => continue,
                Found::DescriptionOnly(k) => {
                    return Err(Box::new(SigCheck::unknown(format!(
                        "signed by {}; the kernel has key '{}' in {}, whose certificate kabi does not have",
                        si.describe(),
                        k.description,
                        k.keyring.name()
                    ))));
                }
                Found::Key(k, _) if self.math == Math::Kernel => {
                    return Err(Box::new(SigCheck::unknown(format!(
                        "signed by {} with the key '{}' the kernel trusts ({}): the kernel verifies the signature itself",
                        si.describe(),
                        k.description,
                        k.keyring.name()
                    ))));
                }
                Found::Key(k, c) => {
                    let d = digests.of(si.hash)?;
                    match verify_with(c, si, &d, policy) {
                        Ok(()) => any_ok = Some(Pass::Verified(k.description.clone(), k.keyring)),
                        Err(Some(_)) => {
                            return Err(Box::new(SigCheck::refused(Refusal::new(
                                Errno::EKEYREJECTED,
                                format!(
                                    "the signature does not verify with the trusted key '{}' ({})",
                                    k.description,
                                    k.keyring.name()
                                ),
                            ))));
                        }
                        Err(None) => {
                            return Err(Box::new(SigCheck::unknown(format!(
                                "kabi cannot verify {} signatures with {} keys ('{}')",
                                si.pkey.name(),
                                c.pkey_algo,
                                k.description
                            ))));
                        }
                    }
                }
            }
        }
        Ok(match any_ok {
            Some(v) => v,
            None if cached == Soft::UnsupportedCrypto => Pass::OnlyUnsupportedDigests,
            None => Pass::NoKey,
        })
    }

    /// The trusted key of a signer: a certificate of the message that is a trusted key, or
    /// the signer's key directly.
    fn key_of(&self, si: &SignerInfo) -> Found<'_> {
        let search = || self.keys.in_search(self.secondary);
        let Some(c) = self.msg.certs.iter().find(|c| c.id() == si.auth_id) else {
            return find_key(search(), si);
        };
        let ids: Vec<Vec<u8>> = [Some(c.id()), c.skid.clone()]
            .into_iter()
            .flatten()
            .collect();
        search()
            .find_map(|k| {
                let kc = k.cert.as_ref()?;
                kc.key_ids()
                    .iter()
                    .any(|i| ids.contains(i))
                    .then_some(Found::Key(k, kc))
            })
            .unwrap_or_else(|| find_key(search(), si))
    }
}

/// `mod_is_hash_blacklisted`: the whole file's SHA-256 is not on the blacklist.
fn not_blacklisted(keys: &TrustedKeys, whole: Option<&[u8]>) -> Result<(), Box<SigCheck>> {
    if keys.blacklisted.is_empty() {
        return Ok(());
    }
    let Some(w) = whole else {
        return Err(Box::new(SigCheck::unknown(
            "the module's hash is not computed (body not read) to look it up in the blacklist",
        )));
    };
    use sha2::Digest;
    let h: [u8; 32] = sha2::Sha256::digest(w).into();
    if keys.blacklisted.contains(&h) {
        let line = format!("Module hash {} is blacklisted", hex(&h));
        return Err(Box::new(SigCheck::refused(Refusal::logged(
            Errno::EKEYREJECTED,
            line,
        ))));
    }
    Ok(())
}

fn not_read(body: Option<&[u8]>, h: HashAlgo) -> String {
    if body.is_none() {
        "a trusted key matches; the module body was not read to verify the signature".into()
    } else {
        format!("kabi cannot compute {} digests", h.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sig::cert::{Cert, parse_bundle};
    use crate::sig::sign::{
        SignOptions, SigningKey, append_signature, pkcs7_signature, sign_image,
    };
    use std::sync::Arc;

    const MODULE: &[u8] =
        include_bytes!("../../testdata/lib/modules/6.1.0-56-amd64/kernel/lib/crc-itu-t.ko");

    fn key(name: &str) -> (SigningKey, Cert) {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/sig/");
        let k = std::fs::read(format!("{dir}{name}.key")).unwrap();
        let c = std::fs::read(format!("{dir}{name}.pem")).unwrap();
        (
            SigningKey::from_bytes(&k).unwrap(),
            parse_bundle(&c).unwrap().remove(0),
        )
    }

    fn body() -> &'static [u8] {
        crate::module::signature::split(MODULE).0
    }

    fn trusting(certs: &[&Cert]) -> SigPolicy {
        let mut p = SigPolicy::default();
        for c in certs {
            p.preloaded.push((Keyring::Given, Arc::new((*c).clone())));
        }
        p
    }

    fn sign(name: &str, hash: HashAlgo) -> (Vec<u8>, Cert) {
        let (k, c) = key(name);
        let opts = SignOptions {
            hash,
            use_keyid: false,
        };
        (sign_image(MODULE, &k, &c, opts).unwrap().0, c)
    }

    fn soft(sc: &SigCheck) -> Option<Soft> {
        match sc.outcome {
            Outcome::Soft { why, .. } => Some(why),
            _ => None,
        }
    }

    fn errno(sc: &SigCheck) -> Option<&'static str> {
        match sc.outcome {
            Outcome::Refused { errno, .. } => Some(errno.as_str()),
            _ => None,
        }
    }

    #[test]
    fn rsa_and_ecdsa_signatures_verify_and_fail_as_the_kernel_would() {
        for (name, hash) in [
            ("rsa2048", HashAlgo::Sha256),
            ("rsa2048", HashAlgo::Sha1),
            ("rsa2048", HashAlgo::Sha512),
            ("p256", HashAlgo::Sha256),
            ("p256", HashAlgo::Sha384),
            ("p384", HashAlgo::Sha384),
        ] {
            let (signed, cert) = sign(name, hash);
            let p = trusting(&[&cert]);
            let sc = check_image(&signed, &p);
            assert!(sc.is_verified(), "{name} {hash:?}: {sc:?}");
            assert_eq!(sc.signer.as_ref().unwrap().hash, hash);
            // one body byte flipped: the signature does not verify, EKEYREJECTED
            let mut bad = signed.clone();
            bad[100] ^= 1;
            assert_eq!(
                errno(&check_image(&bad, &p)),
                Some("EKEYREJECTED"),
                "{name}"
            );
            // another key trusted only: unavailable key
            let (_, other) = key(if name == "rsa2048" { "p256" } else { "rsa2048" });
            let sc = check_image(&signed, &trusting(&[&other]));
            assert_eq!(soft(&sc), Some(Soft::UnavailableKey), "{name}");
            // the key known by description only (as /proc/keys shows it): kabi cannot tell
            let mut p = SigPolicy::default();
            p.preloaded.clear();
            let mut keys =
                crate::sig::trust::TrustedKeys::from_certs(vec![], Keyring::Builtin, "x");
            keys.keys.push(crate::sig::trust::TrustedKey {
                keyring: Keyring::Builtin,
                description: cert.description(),
                source: "/proc/keys".into(),
                cert: None,
                has_certificate: false,
                proc_keys: None,
            });
            let sc = verify_with_keys(&signed, keys);
            assert!(
                matches!(sc.outcome, Outcome::Unknown { .. }),
                "{name}: {sc:?}"
            );
        }
    }

    #[test]
    fn a_verification_that_succeeded_is_kept_and_not_made_again() {
        use std::sync::atomic::Ordering::SeqCst;
        // the kept file is believed only when root's
        if !crate::test_is_root() {
            return;
        }
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("run")).unwrap();
        let root = crate::root::Root::open(t.path()).unwrap();
        let file = t.path().join("run/kabi").join(crate::sig::memo::FILE);
        let entries = || {
            let data = std::fs::read(&file).unwrap();
            crate::sig::memo::parse(&data).unwrap().len()
        };
        for (name, hash) in [("rsa2048", HashAlgo::Sha256), ("p256", HashAlgo::Sha256)] {
            let (signed, cert) = sign(name, hash);
            let mut p = trusting(&[&cert]);
            p.sources.cache = Some(crate::sig::trust::Loc::new(&root, "run/kabi").unwrap());
            let before = MEMO_MISSES.load(SeqCst);
            assert!(check_image(&signed, &p).is_verified(), "{name}");
            assert_eq!(
                MEMO_MISSES.load(SeqCst),
                before + 1,
                "{name}: verified once"
            );
            let kept = entries();
            // the same check again: the same verdict, from the file
            assert!(check_image(&signed, &p).is_verified(), "{name}");
            assert_eq!(
                MEMO_MISSES.load(SeqCst),
                before + 1,
                "{name}: not verified again"
            );
            // a failed verification is made each time and never kept
            let mut bad = signed.clone();
            bad[100] ^= 1;
            for n in 2..4 {
                assert_eq!(errno(&check_image(&bad, &p)), Some("EKEYREJECTED"));
                assert_eq!(MEMO_MISSES.load(SeqCst), before + n);
            }
            assert_eq!(entries(), kept);
        }
        assert_eq!(entries(), 2);
    }

    #[test]
    fn the_arithmetic_may_be_left_to_the_kernel() {
        let (signed, cert) = sign("rsa2048", HashAlgo::Sha256);
        let p = trusting(&[&cert]);
        let mut bad = signed.clone();
        bad[100] ^= 1;
        assert_eq!(
            errno(&check_image_math(&bad, &p, Math::Here)),
            Some("EKEYREJECTED")
        );
        let (_, other) = key("p256");
        let unknown = |sc: &SigCheck, why: &str| match &sc.outcome {
            Outcome::Unknown { detail } => assert!(detail.starts_with(why), "{detail}"),
            o => panic!("{o:?}"),
        };
        // a message that does not parse: refused, whoever does the arithmetic, once the
        // signature is read
        let mut garbled = signed.clone();
        let sig_len = {
            let h = &garbled[garbled.len() - MAGIC.len() - HEADER_LEN..garbled.len() - MAGIC.len()];
            u32::from_be_bytes([h[8], h[9], h[10], h[11]]) as usize
        };
        let msg_at = garbled.len() - MAGIC.len() - HEADER_LEN - sig_len;
        garbled[msg_at] ^= 0xff;
        assert_eq!(
            errno(&check_image_math(&garbled, &p, Math::Here)),
            Some("EBADMSG")
        );
        // nothing enforced: the signature is not read at all (a key the kernel lacks, a
        // message it cannot parse only taint, or are refused before anything else)
        assert!(!p.enforcement.enforced);
        for (image, keys) in [
            (&signed, &p),
            (&bad, &p),
            (&garbled, &p),
            (&signed, &trusting(&[&other])),
        ] {
            let sc = check_image_math(image, keys, Math::Kernel);
            unknown(
                &sc,
                "signatures are not enforced: the kernel checks the signature itself",
            );
            assert!(sc.signer.is_none(), "the message was not read");
        }
        // an unsigned module is still told apart (no marker: nothing to read)
        assert_eq!(
            soft(&check_image_math(body(), &p, Math::Kernel)),
            Some(Soft::Unsigned)
        );
        // lockdown makes what would only taint fatal: the signature is read
        let mut locked = trusting(&[&other]);
        locked.enforcement.lockdown = crate::sig::state::Lockdown::Integrity;
        assert_eq!(
            soft(&check_image_math(&signed, &locked, Math::Kernel)),
            Some(Soft::UnavailableKey)
        );
        assert_eq!(
            errno(&check_image_math(&garbled, &locked, Math::Kernel)),
            Some("EBADMSG")
        );
        // enforced: a trusted key found, no verdict whether the signature verifies or not
        let enforced = |mut p: SigPolicy| {
            p.enforcement.enforce("a test");
            p
        };
        let p = enforced(p);
        for image in [&signed, &bad] {
            let sc = check_image_math(image, &p, Math::Kernel);
            unknown(&sc, "signed by ");
            assert!(sc.signer.is_some());
        }
        // what comes before the arithmetic is decided as before
        assert_eq!(
            soft(&check_image_math(body(), &p, Math::Kernel)),
            Some(Soft::Unsigned)
        );
        assert_eq!(
            soft(&check_image_math(
                &signed,
                &enforced(trusting(&[&other])),
                Math::Kernel
            )),
            Some(Soft::UnavailableKey)
        );
    }

    /// `check_image` with a given key set.
    fn verify_with_keys(image: &[u8], keys: crate::sig::trust::TrustedKeys) -> SigCheck {
        let p = SigPolicy::default();
        p.set_keys_for_test(keys);
        check_image(image, &p)
    }

    #[test]
    fn key_identifier_signers_and_ecdsa_without_kernel_support() {
        let (k, c) = key("p256");
        let opts = SignOptions {
            hash: HashAlgo::Sha256,
            use_keyid: true,
        };
        let (signed, _) = sign_image(MODULE, &k, &c, opts).unwrap();
        let mut p = trusting(&[&c]);
        let sc = check_image(&signed, &p);
        assert!(sc.is_verified(), "{sc:?}");
        assert!(sc.signer.as_ref().unwrap().skid.is_some());
        // Debian's cloud kernel has no CONFIG_CRYPTO_ECDSA: the key cannot verify, refused
        p.config.ecdsa = false;
        assert_eq!(errno(&check_image(&signed, &p)), Some("EKEYREJECTED"));
    }

    #[test]
    fn trailer_form_and_unsupported_crypto() {
        let (signed, cert) = sign("rsa2048", HashAlgo::Sha256);
        let mut p = trusting(&[&cert]);
        // unsigned, and a marker cut off: -ENODATA
        assert_eq!(soft(&check_image(body(), &p)), Some(Soft::Unsigned));
        assert_eq!(
            soft(&check_image(&signed[..signed.len() - 1], &p)),
            Some(Soft::Unsigned)
        );
        // a mangled load ignores the signature
        assert_eq!(
            soft(&check_image_flags(&signed, &p, true)),
            Some(Soft::Unsigned)
        );
        let hdr = signed.len() - MAGIC.len() - HEADER_LEN;
        // id_type not PKCS#7: -ENOPKG with the kernel's line
        let mut x = signed.clone();
        x[hdr + 2] = 1;
        let sc = check_image(&x, &p);
        assert_eq!(soft(&sc), Some(Soft::UnsupportedCrypto));
        assert_eq!(sc.log, ["module: not signed with expected PKCS#7 message"]);
        // non-zero params: -EBADMSG with its line
        let mut x = signed.clone();
        x[hdr + 5] = 1;
        let sc = check_image(&x, &p);
        assert_eq!(errno(&sc), Some("EBADMSG"));
        assert_eq!(
            sc.log,
            ["module: PKCS#7 signature info has unexpected non-zero params"]
        );
        // sig_len beyond the file: -EBADMSG, silently
        let mut x = signed.clone();
        x[hdr + 8..hdr + 12].copy_from_slice(&u32::MAX.to_be_bytes());
        let sc = check_image(&x, &p);
        assert_eq!(errno(&sc), Some("EBADMSG"));
        assert!(sc.log.is_empty());
        // a digest the kernel cannot compute: -ENOPKG
        p.config.hashes.retain(|h| *h != HashAlgo::Sha256);
        assert_eq!(
            soft(&check_image(&signed, &p)),
            Some(Soft::UnsupportedCrypto)
        );
    }

    #[test]
    fn the_trailer_alone_tells_all_but_the_digest() {
        let (signed, cert) = sign("rsa2048", HashAlgo::Sha256);
        let m = crate::module::Module::parse_image(&signed).unwrap();
        let sc = check_trailer(&m.signature, &trusting(&[&cert]));
        assert!(matches!(sc.outcome, Outcome::Unknown { .. }), "{sc:?}");
        let (_, other) = key("p256");
        let sc = check_trailer(&m.signature, &trusting(&[&other]));
        assert_eq!(soft(&sc), Some(Soft::UnavailableKey));
        // no keys known at all: nothing to say about a signed module
        let sc = check_trailer(&m.signature, &SigPolicy::default());
        assert!(matches!(sc.outcome, Outcome::Unknown { .. }), "{sc:?}");
    }

    #[test]
    fn messages_the_kernel_refuses_for_modules() {
        let (k, c) = key("rsa2048");
        let p = trusting(&[&c]);
        let opts = SignOptions {
            hash: HashAlgo::Sha256,
            use_keyid: false,
        };
        let p7 = pkcs7_signature(body(), &k, &c, opts).unwrap();
        // re-encode with the content attached: "PKCS#7 signature with non-detached data"
        use cms::content_info::ContentInfo;
        use cms::signed_data::SignedData;
        use der::{Decode, Encode};
        let ci = ContentInfo::from_der(&p7).unwrap();
        let mut sd: SignedData = ci.content.decode_as().unwrap();
        sd.encap_content_info.econtent =
            Some(der::Any::new(der::Tag::OctetString, b"x".to_vec()).unwrap());
        let attached = ContentInfo {
            content_type: ci.content_type,
            content: der::Any::encode_from(&sd).unwrap(),
        }
        .to_der()
        .unwrap();
        let sc = check_image(&append_signature(body(), &attached), &p);
        assert_eq!(errno(&sc), Some("EBADMSG"));
        assert_eq!(sc.log, ["PKCS#7 signature with non-detached data"]);
        // a content type other than data: EINVAL from the parser
        let mut sd2: SignedData = ci.content.decode_as().unwrap();
        sd2.encap_content_info.econtent_type = der::asn1::ObjectIdentifier::new_unwrap("1.2.3.4");
        let odd = ContentInfo {
            content_type: ci.content_type,
            content: der::Any::encode_from(&sd2).unwrap(),
        }
        .to_der()
        .unwrap();
        assert_eq!(
            errno(&check_image(&append_signature(body(), &odd), &p)),
            Some("EINVAL")
        );
        // garbage where the message should be: EBADMSG
        let junk = append_signature(body(), &[0x30, 0x03, 0x02, 0x01, 0x01]);
        assert_eq!(errno(&check_image(&junk, &p)), Some("EBADMSG"));
    }

    #[test]
    fn a_blacklisted_module_hash_is_refused() {
        let (signed, cert) = sign("rsa2048", HashAlgo::Sha256);
        use sha2::Digest;
        let h: [u8; 32] = sha2::Sha256::digest(&signed).into();
        let mut keys =
            crate::sig::trust::TrustedKeys::from_certs(vec![cert], Keyring::Given, "test");
        keys.blacklisted.push(h);
        let sc = verify_with_keys(&signed, keys);
        assert_eq!(errno(&sc), Some("EKEYREJECTED"));
        assert!(sc.log[0].starts_with("Module hash ") && sc.log[0].ends_with(" is blacklisted"));
    }
}
