//! `kabi sign`: sign a module as `scripts/sign-file` does (byte for byte with an RSA key),
//! without OpenSSL or a kernel tree; `kabi sign --verify`: would the kernel accept the
//! signature?

use crate::compress::Compression;
use crate::sig::cert::{Cert, parse_bundle};
use crate::sig::pkcs7::HashAlgo;
use crate::sig::sign::{SignOptions, SigningKey, pkcs7_signature, sign_image};
use crate::sig::trust::read_regular;
use crate::sig::{Outcome, SigPolicy};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, clap::Args)]
pub struct SignArgs {
    /// Digest algorithm (what CONFIG_MODULE_SIG_HASH names)
    #[arg(long = "hash", value_name = "ALGO", default_value = "sha256",
          value_parser = ["sha1", "sha224", "sha256", "sha384", "sha512"])]
    pub hash: String,
    /// Private key, PEM (PKCS#8, PKCS#1 RSA or SEC1 EC; the kernel's signing_key.pem, which
    /// also holds the certificate, works) or DER PKCS#8
    #[arg(long, value_name = "FILE", required_unless_present = "verify")]
    pub key: Option<PathBuf>,
    /// The signer's X.509 certificate, PEM or DER (default: the certificate in the key file)
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// Name the signer by its subjectKeyIdentifier instead of issuer and serial (sign-file -k)
    #[arg(long)]
    pub keyid: bool,
    /// Write the signed module to FILE and keep the original (default: replace the module,
    /// atomically)
    #[arg(short = 'o', long, value_name = "FILE", conflicts_with = "verify")]
    pub output: Option<PathBuf>,
    /// Write only the detached PKCS#7 signature, to MODULE.p7s (or -o FILE); the module is
    /// not changed (sign-file -d)
    #[arg(short = 'd', long, conflicts_with = "verify")]
    pub detached: bool,
    /// Also write the PKCS#7 signature to MODULE.p7s (sign-file -p)
    #[arg(short = 'p', long, conflicts_with_all = ["verify", "detached"])]
    pub save_sig: bool,
    /// Do not sign: say whether the kernel would accept each module's signature (against
    /// --trusted-cert, a kernel image, an installed kernel or the running kernel)
    #[arg(long)]
    pub verify: bool,
    /// --verify: trust these certificates (repeatable)
    #[arg(long, value_name = "FILE")]
    pub trusted_cert: Vec<PathBuf>,
    /// --verify: the keys built into this kernel image
    #[arg(long, value_name = "FILE")]
    pub vmlinuz: Option<PathBuf>,
    /// --verify: the keys of the installed kernel KVER (its image, this host's UEFI db and MOK)
    #[arg(short = 'k', long, value_name = "KVER")]
    pub kernel: Option<String>,
    /// --verify: the running kernel's keyrings
    #[arg(long, conflicts_with_all = ["kernel", "vmlinuz"])]
    pub running: bool,
    /// Filesystem root for --kernel and --running (-b DIR, the old spelling, is accepted too)
    #[arg(long, short_alias = 'b', value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// Module files (plain, .xz, .zst or .gz: a compressed module is signed inside and
    /// compressed again in the same format)
    #[arg(required = true, value_name = "MODULE")]
    pub modules: Vec<PathBuf>,
}

/// Exit codes of `kabi sign`, by their meaning here (the table is [`super::exit`]).
pub mod exit {
    /// Bad usage, unreadable key, certificate or module, or a write failed.
    pub use crate::cli::exit::ERROR;
    /// --verify: some signature would not be accepted.
    pub use crate::cli::exit::FAILED as REJECTED;
    /// Signed (or, with --verify, every signature verifies).
    pub use crate::cli::exit::OK;
}

fn compress(kind: Compression, image: &[u8]) -> std::io::Result<Vec<u8>> {
    match kind {
        Compression::None => Ok(image.to_vec()),
        Compression::Xz => {
            // CRC32: the check the kernel's xz decoder and kmod use
            let stream =
                liblzma::stream::Stream::new_easy_encoder(6, liblzma::stream::Check::Crc32)
                    .map_err(std::io::Error::other)?;
            let mut enc = liblzma::write::XzEncoder::new_stream(Vec::new(), stream);
            enc.write_all(image)?;
            enc.finish()
        }
        Compression::Zstd => zstd::encode_all(image, 19),
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            enc.write_all(image)?;
            enc.finish()
        }
    }
}

/// Write `data` to `path` atomically: a temporary file in the same directory, flushed,
/// renamed over it; an existing file's permissions are kept.
fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("no file name"))?;
    let tmp = dir.join(format!(
        ".{}.kabi-sign.{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let res = (|| {
        let mut f = std::fs::File::options()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(data)?;
        if let Ok(m) = std::fs::metadata(path) {
            f.set_permissions(std::fs::Permissions::from_mode(
                m.permissions().mode() & 0o7777,
            ))?;
        }
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

fn p7s_path(module: &Path) -> PathBuf {
    let mut s = module.as_os_str().to_owned();
    s.push(".p7s");
    PathBuf::from(s)
}

fn load_signer(args: &SignArgs) -> Result<(SigningKey, Cert), String> {
    let key_path = args.key.as_ref().ok_or("--key is required to sign")?;
    let key_data = read_regular(key_path, 1 << 20).map_err(|e| e.to_string())?;
    let key =
        SigningKey::from_bytes(&key_data).map_err(|e| format!("{}: {e}", key_path.display()))?;
    let (cert_path, cert_data) = match &args.cert {
        Some(c) => (c, read_regular(c, 1 << 20).map_err(|e| e.to_string())?),
        None => (key_path, key_data),
    };
    let certs = parse_bundle(&cert_data).map_err(|e| {
        if args.cert.is_none() {
            format!(
                "{}: no certificate in the key file ({e}); give one with --cert",
                cert_path.display()
            )
        } else {
            format!("{}: {e}", cert_path.display())
        }
    })?;
    let cert = certs.into_iter().find(|c| key.matches(c)).ok_or_else(|| {
        format!(
            "{}: no certificate for the private key {}",
            cert_path.display(),
            key_path.display()
        )
    })?;
    Ok((key, cert))
}

fn sign_one(
    path: &Path,
    args: &SignArgs,
    key: &SigningKey,
    cert: &Cert,
    opts: SignOptions,
) -> Result<String, String> {
    let data = read_regular(path, crate::compress::DEFAULT_LIMIT).map_err(|e| e.to_string())?;
    let kind = Compression::detect(&data).ok_or_else(|| {
        format!(
            "{}: not an ELF module nor xz, zstd or gzip data",
            path.display()
        )
    })?;
    let image = crate::compress::decompress(kind, &data, crate::compress::DEFAULT_LIMIT)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if args.detached {
        let (body, _) = crate::module::signature::split(&image);
        let p7 = pkcs7_signature(body, key, cert, opts)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let out = args.output.clone().unwrap_or_else(|| p7s_path(path));
        write_atomic(&out, &p7).map_err(|e| format!("{}: {e}", out.display()))?;
        return Ok(format!(
            "{}: detached signature written to {}",
            path.display(),
            out.display()
        ));
    }
    let (signed, had) =
        sign_image(&image, key, cert, opts).map_err(|e| format!("{}: {e}", path.display()))?;
    if args.save_sig {
        let (body, _) = crate::module::signature::split(&signed);
        let p7 = &signed[body.len()..signed.len() - 12 - crate::module::signature::MAGIC.len()];
        let out = p7s_path(path);
        write_atomic(&out, p7).map_err(|e| format!("{}: {e}", out.display()))?;
    }
    let bytes =
        compress(kind, &signed).map_err(|e| format!("{}: compressing: {e}", path.display()))?;
    let out = args.output.clone().unwrap_or_else(|| path.to_path_buf());
    write_atomic(&out, &bytes).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(format!(
        "{}: signed with '{}' ({}){}{}",
        out.display(),
        cert.description(),
        opts.hash.name(),
        if had {
            ", replacing the signature it had"
        } else {
            ""
        },
        if kind == Compression::None {
            String::new()
        } else {
            format!(", {} again", kind.name())
        }
    ))
}

fn verify_policy(args: &SignArgs) -> Result<SigPolicy, crate::Error> {
    let root = crate::root::Root::open(&args.root)?;
    let mut p = if args.running {
        SigPolicy::running(&root)?
    } else if let Some(k) = &args.kernel {
        SigPolicy::installed(&root, k)?
    } else {
        SigPolicy::default()
    };
    if let Some(img) = &args.vmlinuz {
        p.sources.vmlinuz = Some(crate::sig::trust::Loc::host(img)?);
    }
    p.trust_files(&args.trusted_cert)?;
    if !p.has_key_sources() {
        return Err(crate::Error::Usage(
            "--verify needs keys to verify against: --trusted-cert, --vmlinuz, --kernel or --running".into(),
        ));
    }
    Ok(p)
}

fn run_verify(args: &SignArgs) -> i32 {
    let policy = match verify_policy(args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("kabi sign: ERROR: {e}");
            return exit::ERROR;
        }
    };
    let mut code = exit::OK;
    let mut out = String::new();
    for m in &args.modules {
        match crate::sig::check_file(m, &policy) {
            Ok(sc) => {
                let line = match &sc.outcome {
                    Outcome::Verified { key, keyring } => {
                        format!(
                            "verified  {}  with '{key}' ({})",
                            m.display(),
                            keyring.name()
                        )
                    }
                    Outcome::Soft { why, detail } => {
                        code = code.max(exit::REJECTED);
                        format!("{:<9} {}  {detail}", why.errno(), m.display())
                    }
                    Outcome::Refused { errno, detail } => {
                        code = code.max(exit::REJECTED);
                        format!("{errno:<9} {}  {detail}", m.display())
                    }
                    Outcome::Unknown { detail } => {
                        code = code.max(exit::REJECTED);
                        format!("unknown   {}  {detail}", m.display())
                    }
                };
                out.push_str(&line);
                out.push('\n');
                for l in &sc.log {
                    out.push_str(&format!("          kernel: {l}\n"));
                }
            }
            Err(e) => {
                eprintln!("kabi sign: ERROR: {e}");
                code = exit::ERROR;
            }
        }
    }
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
    code
}

pub fn run(args: &SignArgs) -> i32 {
    if args.verify {
        return run_verify(args);
    }
    if args.output.is_some() && args.modules.len() > 1 {
        eprintln!("kabi sign: ERROR: -o takes one module");
        return exit::ERROR;
    }
    let (key, cert) = match load_signer(args) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("kabi sign: ERROR: {e}");
            return exit::ERROR;
        }
    };
    let opts = SignOptions {
        hash: HashAlgo::from_name(&args.hash).unwrap_or(HashAlgo::Sha256),
        use_keyid: args.keyid,
    };
    let mut code = exit::OK;
    for m in &args.modules {
        match sign_one(m, args, &key, &cert, opts) {
            Ok(msg) => println!("{msg}"),
            Err(e) => {
                eprintln!("kabi sign: ERROR: {e}");
                code = exit::ERROR;
            }
        }
    }
    code
}
