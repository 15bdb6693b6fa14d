//! Module signatures and the keys a kernel trusts: will the kernel's `module_sig_check()`
//! accept this module's signature, and can kabi sign one so that it does?
//!
//! One concern per file:
//! * [`cert`]: X.509 certificates as the kernel sees them (names, key ids, descriptions);
//! * [`certlist`]: the certificates built into a vmlinux (`system_certificate_list`);
//! * [`keys`]: the running kernel's keyrings (`/proc/keys`, `KEYCTL_READ`);
//! * [`memo`]: signatures verified before, kept under `/run/kabi` between `kabi load`s;
//! * [`efi`]: UEFI signature lists (`db`, `dbx`, `MokListRT`) and the Secure Boot state;
//! * [`state`]: enforcement (`CONFIG_MODULE_SIG_FORCE`, `module.sig_enforce`, lockdown);
//! * [`pkcs7`]: a module signature's PKCS#7 message as the kernel parses it;
//! * [`trust`]: the trusted keys of a kernel from all sources, and the [`SigPolicy`];
//! * [`verdict`]: `module_sig_check()`, computed;
//! * [`sign`]: the signer (`scripts/sign-file`, byte for byte with RSA keys).
//!
//! The library API for callers (check, verify, weak status, load):
//! * a [`crate::kernel::target::Target`] carries a [`SigPolicy`] (`target.sig`);
//! * [`verdict::check_image`]`(image, &target.sig)` computes the [`SigCheck`] of a decompressed
//!   module file (hashing its body only when a trusted key must verify it);
//!   [`check_file`] reads and decompresses a file first;
//! * `crate::check::check_with_sig` / `check_set_with_sigs` turn it into the verdict's
//!   problems and notes; `check` / `check_set` use the trailer alone.

pub mod boot;
pub mod cache;
pub mod cert;
pub mod certlist;
pub mod efi;
pub mod keys;
pub mod memo;
pub mod pkcs7;
pub mod sign;
pub mod state;
pub mod trust;
pub mod verdict;

pub use trust::SigPolicy;
pub use verdict::{Math, Outcome, SigCheck, Soft};

use crate::compress::Compression;
use crate::error::Error;
use crate::module::{Detail, Module};
use std::path::Path;

/// [`Module::read_in`] and the kernel's signature check of the same file
/// ([`verdict::check_image`]), from one read: both come from the same decompressed image.
/// The keys of `policy` are loaded only if a signed module needs them, and the module body is
/// hashed only when a trusted key must verify it (and `math` says kabi does).
pub fn read_module_in(
    root: &crate::root::Root,
    rel: &Path,
    detail: Detail,
    policy: &SigPolicy,
    math: verdict::Math,
) -> Result<(Module, SigCheck), Error> {
    let shown = root.display(rel);
    let (f, st) = root.open_file(rel)?;
    read_module_from(&f, st.size, &shown, detail, policy, math)
}

/// [`read_module_in`] from a regular file already open (`size` bytes by its `fstat`), named
/// `shown`: the very file a caller then gives the kernel.
pub fn read_module_from(
    f: &std::fs::File,
    size: u64,
    shown: &Path,
    detail: Detail,
    policy: &SigPolicy,
    math: verdict::Math,
) -> Result<(Module, SigCheck), Error> {
    let rel = shown;
    let data = crate::compress::read_file(f, size, crate::root::caps::MODULE)
        .map_err(|e| Error::parse(shown, e))?;
    let image = crate::module::decompress(&data).map_err(|e| Error::parse(shown, e))?;
    let sc = verdict::check_image_math(&image, policy, math);
    let mut m = Module::parse_image_with(&image, detail).map_err(|e| Error::parse(shown, e))?;
    m.compression = Compression::detect(&data).unwrap_or(Compression::None);
    if m.name.is_empty() {
        m.name = crate::module::name_from_path(rel);
    }
    Ok((m, sc))
}

/// The signature check of a module file (plain or compressed), as the kernel would make it.
pub fn check_file(path: &Path, policy: &SigPolicy) -> Result<SigCheck, Error> {
    let data = trust::read_regular(path, crate::compress::DEFAULT_LIMIT)?;
    let image = crate::module::decompress(&data).map_err(|e| Error::parse(path, e))?;
    Ok(verdict::check_image(&image, policy))
}

/// [`check_file`] for many files, in parallel; `None` for a file that cannot be read (its
/// parse error is reported elsewhere).
pub fn check_files(paths: &[&Path], policy: &SigPolicy) -> Vec<Option<SigCheck>> {
    use rayon::prelude::*;
    paths
        .par_iter()
        .map(|p| check_file(p, policy).ok())
        .collect()
}
