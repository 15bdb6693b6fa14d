//! The keys a kernel trusts for modules, gathered from every source there is, and the policy
//! value ([`SigPolicy`]) a [`crate::kernel::target::Target`] carries: enforcement, the kernel's
//! crypto, and the trusted keys, loaded lazily (decoding a `vmlinuz` costs a few hundred
//! milliseconds; a run that meets no signed module never pays it).
//!
//! Sources, by keyring:
//! * `.builtin_trusted_keys`: the image's `system_certificate_list` ([`super::certlist`]);
//! * the running kernel's keyrings as `/proc/keys` lists them, members read with
//!   `KEYCTL_READ` ([`super::keys`]); a key listed there but found in no certificate source is
//!   known by its description only;
//! * `.platform` (UEFI `db`) and `.machine` (`MokListRT`; Debian trusts MOK keys, so they go
//!   to `.machine`, which the secondary keyring links) from efivarfs ([`super::efi`]);
//!   `dbx` and `MokListXRT` SHA-256 entries, and `/proc/keys` `blacklist` keys (`bin:`), are
//!   the hashes of modules the kernel refuses;
//! * certificates given on the command line (`--trusted-cert`).

use super::boot::{BootFacts, FileId};
use super::cert::{Cert, parse_bundle};
use super::efi::{self, SecureBoot};
use super::keys::{Keyring, ProcKey, parse_proc_keys};
use super::state::{Enforcement, Lockdown, SigConfig, parse_lockdown_file};
use crate::error::Error;
use crate::root::Root;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// The largest file read as a key source (a vmlinuz is ~15 MB).
const MAX_SOURCE: u64 = crate::root::caps::IMAGE;

/// Read a regular file of the host (a path given on the command line), refusing anything
/// else (a FIFO, a device) and anything over `cap`.
pub fn read_regular(path: &Path, cap: u64) -> Result<Vec<u8>, Error> {
    Root::host()?.read(absolute(path), cap)
}

/// A path of the host as an absolute one (a relative path is relative to the current
/// directory, not to `/`).
fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    std::env::current_dir()
        .map(|d| d.join(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

/// A file or directory inside a root (`--root`, or `/` for paths of the host), read only
/// through the root's descriptor.
#[derive(Clone)]
pub struct Loc {
    root: Arc<Root>,
    rel: PathBuf,
}

impl Loc {
    pub fn new(root: &Root, rel: impl Into<PathBuf>) -> Result<Loc, Error> {
        Ok(Loc {
            root: Arc::new(root.try_clone()?),
            rel: rel.into(),
        })
    }
    /// A path of the host (given on the command line).
    pub fn host(path: impl AsRef<Path>) -> Result<Loc, Error> {
        Loc::new(&Root::host()?, absolute(path.as_ref()))
    }
    /// Another path inside the same root (sharing its descriptor).
    pub fn sibling(&self, rel: impl Into<PathBuf>) -> Loc {
        Loc {
            root: self.root.clone(),
            rel: rel.into(),
        }
    }
    pub fn join(&self, name: impl AsRef<Path>) -> Loc {
        Loc {
            root: self.root.clone(),
            rel: self.rel.join(name),
        }
    }
    /// Where it is, as the user would name it.
    pub fn shown(&self) -> PathBuf {
        self.root.display(&self.rel)
    }
    pub fn read(&self, cap: u64) -> Result<Vec<u8>, Error> {
        self.root.read(&self.rel, cap)
    }
    pub fn is_dir(&self) -> bool {
        self.root.is_dir(&self.rel)
    }
    /// Was this verification kept in this (cache) directory before? ([`super::memo`])
    pub fn verified(&self, e: &super::memo::Entry) -> bool {
        super::memo::known(&self.root, &self.rel, e)
    }
    /// Keep this verification in this (cache) directory.
    pub fn remember_verified(&self, e: &super::memo::Entry) {
        super::memo::remember(&self.root, &self.rel, e)
    }
}

impl std::fmt::Debug for Loc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.shown().display())
    }
}

impl Serialize for Loc {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.shown().display())
    }
}

/// A small pseudo-file (procfs, sysfs, efivarfs) inside a root, capped.
fn read_small(root: &Root, rel: &str, cap: u64) -> Option<Vec<u8>> {
    root.read(rel, cap).ok()
}

/// A key the kernel trusts (or, from `/proc/keys` alone, has).
#[derive(Debug, Clone, Serialize)]
pub struct TrustedKey {
    pub keyring: Keyring,
    /// The key's description (`subject: skid-or-serial`).
    pub description: String,
    /// Where kabi found it.
    pub source: String,
    /// The certificate, when a source had it; `None` for a key known from `/proc/keys` only.
    #[serde(skip)]
    pub cert: Option<Arc<Cert>>,
    pub has_certificate: bool,
    /// What `/proc/keys` shows for it, when the running kernel's keyrings were read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proc_keys: Option<super::keys::X509Description>,
}

/// One source of keys and what it gave.
#[derive(Debug, Clone, Serialize)]
pub struct KeySource {
    pub source: String,
    pub keys: usize,
    /// Why the source gave nothing or not everything.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// The trusted keys of one kernel.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TrustedKeys {
    pub keys: Vec<TrustedKey>,
    pub sources: Vec<KeySource>,
    /// Whether the kernel's keyrings are known (from its image or `/proc/keys`): only then is
    /// a key found nowhere predicted as "unavailable".
    pub authoritative: bool,
    /// SHA-256 hashes of whole module files the kernel refuses (`bin:` blacklist entries).
    #[serde(skip)]
    pub blacklisted: Vec<[u8; 32]>,
    pub blacklisted_hashes: usize,
}

impl TrustedKeys {
    fn add_certs(&mut self, certs: Vec<Cert>, keyring: Keyring, source: &str) -> usize {
        let mut n = 0;
        for c in certs {
            let description = c.description();
            if self
                .keys
                .iter()
                .any(|k| k.keyring == keyring && k.description == description && k.cert.is_some())
            {
                continue;
            }
            self.keys.push(TrustedKey {
                keyring,
                description,
                source: source.to_string(),
                cert: Some(Arc::new(c)),
                has_certificate: true,
                proc_keys: None,
            });
            n += 1;
        }
        n
    }

    /// Keys with certificates, given directly (for tests and library callers).
    pub fn from_certs(certs: Vec<Cert>, keyring: Keyring, source: &str) -> TrustedKeys {
        let mut t = TrustedKeys {
            authoritative: true,
            ..TrustedKeys::default()
        };
        let n = t.add_certs(certs, keyring, source);
        t.sources.push(KeySource {
            source: source.to_string(),
            keys: n,
            problems: Vec::new(),
        });
        t
    }

    /// The keys searched for a module (`VERIFY_USE_SECONDARY_KEYRING`, then, on the
    /// distribution kernels that do, the platform keyring).
    pub fn in_search(&self, secondary: bool) -> impl Iterator<Item = &TrustedKey> {
        self.keys
            .iter()
            .filter(move |k| k.keyring.is_secondary_search() == secondary)
    }

    pub fn count(&self, keyring: Keyring) -> usize {
        self.keys.iter().filter(|k| k.keyring == keyring).count()
    }
}

/// Where a kernel's keys and state come from.
#[derive(Debug, Clone, Default, Serialize)]
pub struct KeySources {
    /// The kernel image, for `.builtin_trusted_keys`.
    pub vmlinuz: Option<Loc>,
    /// `/proc` of the running kernel (`keys`), for the keyrings as they are.
    pub proc: Option<Loc>,
    /// efivarfs (`/sys/firmware/efi/efivars`) for `db`, `MokListRT`, `dbx`, `MokListXRT`.
    pub efivars: Option<Loc>,
    /// `/sys/firmware/efi/mok-variables` (shim's MOKvar table), preferred for `MokListRT`.
    pub mok_variables: Option<Loc>,
    /// Certificate files given by the user.
    pub given: Vec<PathBuf>,
    /// MOK certificates go to `.machine` (`CONFIG_INTEGRITY_MACHINE_KEYRING`), else `.platform`.
    pub machine_keyring: bool,
    /// A directory where the image's certificates are kept between runs ([`super::cache`]):
    /// `run/kabi` of the system root for `kabi load`, none elsewhere. Not a source of keys:
    /// not reported.
    #[serde(skip)]
    pub cache: Option<Loc>,
}

/// Everything about signatures that a target kernel decides by: its switches, its
/// enforcement state and its trusted keys (loaded on first use).
#[derive(Debug, Clone, Serialize)]
pub struct SigPolicy {
    pub config: SigConfig,
    pub enforcement: Enforcement,
    /// Distribution kernels (Debian, Fedora, RHEL) also verify modules against `.platform`.
    pub platform_fallback: bool,
    pub sources: KeySources,
    /// The name of the process that will load modules (the kernel's lockdown message names
    /// it): the current one for the running kernel, else `modprobe`.
    pub loader_comm: String,
    /// Certificates given as values (library callers, tests).
    #[serde(skip)]
    pub preloaded: Vec<(Keyring, Arc<Cert>)>,
    #[serde(skip)]
    keys: Arc<OnceLock<TrustedKeys>>,
}

impl Default for SigPolicy {
    /// Nothing known but the defaults of a distribution kernel: no keys, not enforced.
    fn default() -> Self {
        SigPolicy {
            config: SigConfig::default(),
            enforcement: Enforcement::default(),
            platform_fallback: true,
            sources: KeySources::default(),
            loader_comm: "modprobe".into(),
            preloaded: Vec::new(),
            keys: Arc::new(OnceLock::new()),
        }
    }
}

/// The identity of a file [`BootFacts`] keeps.
fn file_id(st: &crate::root::Stat) -> FileId {
    (st.dev, st.ino, st.size, st.mtime, st.ctime)
}

/// The running kernel's release (`proc/sys/kernel/osrelease` inside the root).
fn release_of(root: &Root) -> Option<String> {
    let b = read_small(root, "proc/sys/kernel/osrelease", 256)?;
    Some(String::from_utf8_lossy(&b).trim().to_string()).filter(|s| !s.is_empty())
}

impl SigPolicy {
    /// A policy with `config`'s switches and no key source.
    pub fn with_config(config: SigConfig) -> SigPolicy {
        let mut p = SigPolicy {
            config,
            ..SigPolicy::default()
        };
        p.enforcement = Enforcement::at_boot(&p.config, None, SecureBoot::Unknown);
        p.platform_fallback = p.config.platform_keyring;
        p
    }

    /// The certificates of a kernel image (a path of the host) and nothing else.
    pub fn for_image(vmlinuz: &Path) -> Result<SigPolicy, Error> {
        let mut p = SigPolicy::default();
        p.sources.vmlinuz = Some(Loc::host(vmlinuz)?);
        Ok(p)
    }

    /// An installed kernel `kver` inside `root`, as it would be at its next boot on this
    /// host: its configuration, its image's certificates, this host's firmware keys and Secure
    /// Boot state; the running kernel's command line when `kver` is the running release.
    pub fn installed(root: &Root, kver: &str) -> Result<SigPolicy, Error> {
        let running = release_of(root).as_deref() == Some(kver);
        SigPolicy::installed_as(root, kver, running)
    }

    /// [`SigPolicy::installed`], told whether `kver` is the running release.
    fn installed_as(root: &Root, kver: &str, running: bool) -> Result<SigPolicy, Error> {
        Ok(SigPolicy::installed_with(root, kver, running, None)?.0)
    }

    /// [`SigPolicy::installed_as`], with the facts of this boot kept from an earlier run
    /// (`known`, see [`super::boot`]) standing for the files they came from where those cannot
    /// have changed; with the facts as they are now.
    fn installed_with(
        root: &Root,
        kver: &str,
        running: bool,
        known: Option<&BootFacts>,
    ) -> Result<(SigPolicy, BootFacts), Error> {
        let config_at = format!("boot/config-{kver}");
        // the file kept, when it is the one at the name now (one `stat`), else the file read
        let kept = known.and_then(|k| {
            let now = root
                .stat(&config_at)
                .ok()
                .filter(|s| s.is_file())
                .map(|s| file_id(&s));
            match (&k.config, now) {
                (Some((id, lines)), Some(now)) if *id == now => Some(Some((now, lines.clone()))),
                (None, None) => Some(None),
                _ => None,
            }
        });
        // (a file that cannot be read is not kept: it is read again while it is there)
        let config = match kept {
            Some(c) => c,
            None => root.open_file(&config_at).ok().and_then(|(f, st)| {
                let text = crate::root::read_capped(f, st.size, crate::root::caps::CONFIG).ok()?;
                Some((file_id(&st), super::state::used_lines(&text)))
            }),
        };
        let sig_config = config
            .as_ref()
            .map(|(_, lines)| SigConfig::from_kconfig_bytes(lines))
            .unwrap_or_default();
        // the command line cannot change during a boot
        let cmdline = match known.and_then(|k| k.cmdline.clone()) {
            Some(c) if running => Some(c),
            _ => running
                .then(|| read_small(root, "proc/cmdline", 64 << 10))
                .flatten(),
        };
        let efivars = Loc::new(root, "sys/firmware/efi/efivars")?;
        // no variables without their directory (a machine booted without UEFI): one lookup
        let efi = efivars.is_dir();
        let secure_boot = match (efi, known.and_then(|k| k.secure_boot)) {
            (true, Some(s)) => s,
            (true, None) => secure_boot(&efivars),
            (false, _) => SecureBoot::Unknown,
        };
        let mut p = SigPolicy::with_config(sig_config);
        let text = cmdline.as_deref().map(String::from_utf8_lossy);
        p.enforcement = Enforcement::at_boot(&p.config, text.as_deref(), secure_boot);
        // one descriptor of the root for all of them
        p.sources.vmlinuz = Some(efivars.sibling(format!("boot/vmlinuz-{kver}")));
        if efi {
            p.sources.mok_variables = Some(efivars.sibling("sys/firmware/efi/mok-variables"));
            p.sources.efivars = Some(efivars);
        }
        p.sources.machine_keyring = true;
        let facts = BootFacts {
            config,
            cmdline,
            // only what was found: efivarfs may be mounted on the directory later
            secure_boot: Some(secure_boot).filter(|s| efi && *s != SecureBoot::Unknown),
        };
        Ok((p, facts))
    }

    /// The running kernel: its keyrings (`/proc/keys`), its enforcement as it is now
    /// (`/sys/module/module/parameters/sig_enforce`, `/sys/kernel/security/lockdown`, else the
    /// command line), its image's certificates (`/boot/vmlinuz-$(uname -r)`) to verify with.
    pub fn running(root: &Root) -> Result<SigPolicy, Error> {
        Ok(SigPolicy::running_with(root, release_of(root).as_deref(), None)?.0)
    }

    /// [`SigPolicy::running`], told the running release (read by the caller already; `None`
    /// when it could not be), with the facts of this boot an earlier run kept (`known`, see
    /// [`super::boot`]); with the facts as they are now, for the next run.
    pub fn running_with(
        root: &Root,
        release: Option<&str>,
        known: Option<&BootFacts>,
    ) -> Result<(SigPolicy, BootFacts), Error> {
        let (mut p, facts) =
            SigPolicy::installed_with(root, release.unwrap_or_default(), release.is_some(), known)?;
        p.sources.proc = Some(match &p.sources.vmlinuz {
            Some(l) => l.sibling("proc"),
            None => Loc::new(root, "proc")?,
        });
        if let Some(c) = read_small(root, "proc/self/comm", 64) {
            let c = String::from_utf8_lossy(&c).trim().to_string();
            if !c.is_empty() {
                p.loader_comm = c;
            }
        }
        if let Some(b) = read_small(root, "sys/module/module/parameters/sig_enforce", 16) {
            let on = super::state::kstrtobool(Some(String::from_utf8_lossy(&b).trim()));
            if on == Some(true) && !p.enforcement.enforced {
                p.enforcement
                    .enforce("/sys/module/module/parameters/sig_enforce is Y");
            }
        } else if let Some(b) = facts
            .cmdline
            .clone()
            .or_else(|| read_small(root, "proc/cmdline", 64 << 10))
        {
            let (enf, _) = super::state::parse_cmdline(&String::from_utf8_lossy(&b));
            if enf == Some(true) && !p.enforcement.enforced {
                p.enforcement
                    .enforce("module.sig_enforce on the kernel command line");
            }
        }
        if let Some(l) = read_small(root, "sys/kernel/security/lockdown", 256)
            .and_then(|b| parse_lockdown_file(&String::from_utf8_lossy(&b)))
        {
            // the file is the truth for the running kernel
            p.enforcement.lockdown = l;
            p.enforcement.lockdown_by = if l > Lockdown::None {
                vec!["/sys/kernel/security/lockdown".into()]
            } else {
                Vec::new()
            };
        }
        Ok((p, facts))
    }

    /// The policy kernel `kver` of `root` decides by: [`SigPolicy::running`] when `kver` is
    /// the running release (`proc/sys/kernel/osrelease` inside the root), else
    /// [`SigPolicy::installed`]. Nothing is read of the keys until a signed module needs them.
    pub fn of_kernel(root: &Root, kver: &str) -> Result<SigPolicy, Error> {
        if release_of(root).as_deref() == Some(kver) {
            SigPolicy::running(root)
        } else {
            SigPolicy::installed(root, kver)
        }
    }

    /// Take a kernel configuration's switches (keeping the key sources and any enforcement
    /// already established).
    pub fn set_config(&mut self, config: SigConfig) {
        let at_boot = Enforcement::at_boot(&config, None, SecureBoot::Unknown);
        for why in at_boot.enforced_by {
            if !self.enforcement.enforced_by.contains(&why) {
                self.enforcement.enforce(why);
            }
        }
        for why in at_boot.lockdown_by {
            self.enforcement.lock_down(at_boot.lockdown, why);
        }
        self.platform_fallback = config.platform_keyring;
        self.config = config;
    }

    /// Switch enforcement on (as `module.sig_enforce=1` would).
    pub fn force_enforce(&mut self, why: &str) {
        if !self.enforcement.enforced {
            self.enforcement.enforce(why);
        }
    }

    /// Add certificate files to trust (`--trusted-cert`): read now, so a bad file is an error
    /// of the command line.
    pub fn trust_files(&mut self, files: &[PathBuf]) -> Result<(), Error> {
        for f in files {
            let data = read_regular(f, 16 << 20)?;
            let certs = parse_bundle(&data).map_err(|e| {
                Error::io(f, std::io::Error::other(format!("not a certificate: {e}")))
            })?;
            for c in certs {
                self.preloaded.push((Keyring::Given, Arc::new(c)));
            }
            self.sources.given.push(f.clone());
        }
        Ok(())
    }

    /// Whether any key source is configured (else signatures can be checked for form only).
    pub fn has_key_sources(&self) -> bool {
        self.sources.vmlinuz.is_some()
            || self.sources.proc.is_some()
            || self.sources.efivars.is_some()
            || !self.preloaded.is_empty()
    }

    /// The trusted keys, loaded on first use.
    pub fn keys(&self) -> &TrustedKeys {
        self.keys.get_or_init(|| self.load_keys())
    }

    /// Use `keys` as the trusted keys (tests and library callers that gathered them).
    pub fn set_keys(&self, keys: TrustedKeys) -> bool {
        self.keys.set(keys).is_ok()
    }

    #[cfg(test)]
    pub(crate) fn set_keys_for_test(&self, keys: TrustedKeys) {
        assert!(self.set_keys(keys));
    }

    /// Whether the keys were loaded already (for reporting without forcing the load).
    pub fn keys_loaded(&self) -> Option<&TrustedKeys> {
        self.keys.get()
    }

    fn load_keys(&self) -> TrustedKeys {
        let mut t = TrustedKeys::default();
        if let Some(img) = &self.sources.vmlinuz {
            let (n, problems) = match builtin_certs_cached(img, self.sources.cache.as_ref()) {
                Ok(certs) => {
                    t.authoritative = true;
                    (t.add_certs(certs, Keyring::Builtin, "vmlinuz"), Vec::new())
                }
                Err(e) => (0, vec![e]),
            };
            t.sources.push(KeySource {
                source: img.shown().display().to_string(),
                keys: n,
                problems,
            });
        }
        if let Some(efivars) = &self.sources.efivars {
            self.load_efi(&mut t, efivars);
        }
        let mut given = Vec::new();
        for (ring, c) in &self.preloaded {
            if *ring == Keyring::Given {
                given.push((**c).clone());
            } else {
                let n = t.add_certs(vec![(**c).clone()], *ring, "given");
                t.authoritative |= n > 0;
            }
        }
        if !given.is_empty() {
            // the user names the keys to trust: a signer among none of them is unavailable
            t.authoritative = true;
            let n = t.add_certs(given, Keyring::Given, "--trusted-cert");
            t.sources.push(KeySource {
                source: "--trusted-cert".into(),
                keys: n,
                problems: Vec::new(),
            });
        }
        if let Some(proc) = &self.sources.proc {
            load_proc_keys(&mut t, proc);
        }
        t.blacklisted_hashes = t.blacklisted.len();
        t
    }

    fn load_efi(&self, t: &mut TrustedKeys, efivars: &Loc) {
        let var = |name: &str, guid: &str| {
            efivars
                .join(format!("{name}-{guid}"))
                .read(16 << 20)
                .ok()
                .and_then(|b| efi::efivar_data(&b).map(<[u8]>::to_vec))
        };
        let add_list = |t: &mut TrustedKeys, what: &str, data: Option<Vec<u8>>, ring: Keyring| {
            let Some(d) = data else { return };
            let (certs, problems) = efi::certificates(&d);
            let n = t.add_certs(certs, ring, what);
            t.sources.push(KeySource {
                source: format!("UEFI:{what}"),
                keys: n,
                problems,
            });
        };
        let ignore_db = var("MokIgnoreDB", efi::SHIM_LOCK).is_some();
        if !ignore_db {
            add_list(
                t,
                "db",
                var("db", efi::IMAGE_SECURITY_DATABASE),
                Keyring::Platform,
            );
        }
        let blacklist = |t: &mut TrustedKeys, data: Option<Vec<u8>>| {
            if let Some(d) = data {
                for e in efi::parse_lists(&d).0 {
                    if let efi::Entry::Sha256(h) = e {
                        t.blacklisted.push(h);
                    }
                }
            }
        };
        blacklist(t, var("dbx", efi::IMAGE_SECURITY_DATABASE));
        // MOK lists are trusted only under Secure Boot (load_uefi_certs)
        if secure_boot(efivars) == SecureBoot::Enabled {
            blacklist(t, var("MokListXRT", efi::SHIM_LOCK));
            let mok = self
                .sources
                .mok_variables
                .as_ref()
                .and_then(|d| d.join("MokListRT").read(16 << 20).ok())
                .or_else(|| var("MokListRT", efi::SHIM_LOCK));
            let ring = if self.sources.machine_keyring {
                Keyring::Machine
            } else {
                Keyring::Platform
            };
            add_list(t, "MokListRT", mok, ring);
        }
    }
}

/// The Secure Boot state efivarfs reports.
pub fn secure_boot(efivars: &Loc) -> SecureBoot {
    efivars
        .join(format!("SecureBoot-{}", efi::GLOBAL_VARIABLE))
        .read(64)
        .map(|b| efi::secure_boot_from_var(&b))
        .unwrap_or(SecureBoot::Unknown)
}

/// The certificates built into a kernel image (a path of the host).
pub fn builtin_certs(vmlinuz: &Path) -> Result<Vec<Cert>, String> {
    builtin_certs_at(&Loc::host(vmlinuz).map_err(|e| e.to_string())?)
}

/// The certificates built into a kernel image. Decoding an image is the costly part of a
/// signature check (80 ms for a zstd image, 500 ms for xz): a process decodes each image once.
pub fn builtin_certs_at(vmlinuz: &Loc) -> Result<Vec<Cert>, String> {
    use std::collections::HashMap;
    use std::sync::Mutex;
    type Memo = Mutex<HashMap<(u64, u64, i64, u64), Result<Vec<Cert>, String>>>;
    static MEMO: OnceLock<Memo> = OnceLock::new();
    let shown = vmlinuz.shown();
    let st = vmlinuz
        .root
        .stat(&vmlinuz.rel)
        .map_err(|e| format!("{}: {e}", shown.display()))?;
    let id = (st.dev, st.ino, st.mtime.0, st.size);
    let memo = MEMO.get_or_init(Default::default);
    if let Some(r) = memo.lock().ok().and_then(|m| m.get(&id).cloned()) {
        return r;
    }
    let r = (|| {
        let data = vmlinuz.read(MAX_SOURCE).map_err(|e| e.to_string())?;
        let (_, vmlinux) =
            crate::bzimage::payload(&data).map_err(|e| format!("{}: {e}", shown.display()))?;
        let list = super::certlist::find(&vmlinux)
            .map_err(|e| format!("{}: {e}", shown.display()))?
            .ok_or_else(|| {
                format!(
                    "{}: no system certificate list found in the image",
                    shown.display()
                )
            })?;
        Ok(list.certs)
    })();
    if let Ok(mut m) = memo.lock() {
        m.insert(id, r.clone());
    }
    r
}

/// [`builtin_certs_at`] through the cache directory `cache`, when there is one.
fn builtin_certs_cached(vmlinuz: &Loc, cache: Option<&Loc>) -> Result<Vec<Cert>, String> {
    let Some(cache) = cache else {
        return builtin_certs_at(vmlinuz);
    };
    let st = vmlinuz
        .root
        .stat(&vmlinuz.rel)
        .map_err(|e| format!("{}: {e}", vmlinuz.shown().display()))?;
    if let Some(certs) = super::cache::read(&cache.root, &cache.rel, &st) {
        return Ok(certs);
    }
    let certs = builtin_certs_at(vmlinuz)?;
    // only if the image is still the one read
    if vmlinuz.root.stat(&vmlinuz.rel).is_ok_and(|now| now == st) {
        super::cache::write(&cache.root, &cache.rel, &st, &certs);
    }
    Ok(certs)
}

/// Merge what `/proc/keys` says: which keys each system keyring holds. Keys already known with
/// their certificate are placed in their keyring; the others are added by description.
fn load_proc_keys(t: &mut TrustedKeys, proc: &Loc) {
    let path = proc.join("keys");
    let mut src = KeySource {
        source: path.shown().display().to_string(),
        keys: 0,
        problems: Vec::new(),
    };
    let text = match path.read(16 << 20) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) => {
            src.problems.push(e.to_string());
            t.sources.push(src);
            return;
        }
    };
    let (all, bad) = parse_proc_keys(&text);
    if bad > 0 {
        src.problems
            .push(format!("{bad} lines of {} not understood", src.source));
    }
    for k in all.iter().filter(|k| k.key_type == "blacklist") {
        if let Some(h) = k.description.strip_prefix("bin:").and_then(unhex32) {
            t.blacklisted.push(h);
        }
    }
    let by_serial = |s: u32| all.iter().find(|k| k.serial == s);
    let mut members: Vec<(Keyring, &ProcKey)> = Vec::new();
    for ring in all.iter().filter(|k| k.is_keyring()) {
        let Some(r) = ring.keyring_name().and_then(Keyring::from_name) else {
            continue;
        };
        match super::keys::keyring_members(ring.serial) {
            Ok(serials) => {
                for s in serials {
                    if let Some(k) = by_serial(s).filter(|k| k.is_asymmetric()) {
                        members.push((r, k));
                    }
                }
            }
            Err(e) => src.problems.push(format!(
                "keyctl read of {} ({:08x}): {e}",
                r.name(),
                ring.serial
            )),
        }
    }
    if members.is_empty() && !src.problems.is_empty() {
        t.sources.push(src);
        return;
    }
    t.authoritative = true;
    let read_rings: Vec<Keyring> = members.iter().map(|(r, _)| *r).collect();
    let mut confirmed: Vec<(Keyring, String)> = Vec::new();
    for (ring, k) in members {
        let Some(d) = k.x509() else { continue };
        src.keys += 1;
        confirmed.push((ring, d.description.clone()));
        // a certificate from another source with this description: it is this key
        let cert = t
            .keys
            .iter()
            .find(|x| x.description == d.description && x.cert.is_some())
            .and_then(|x| x.cert.clone());
        if let Some(existing) = t
            .keys
            .iter_mut()
            .find(|x| x.description == d.description && x.keyring == ring)
        {
            existing.source = format!("{} + /proc/keys", existing.source);
            existing.proc_keys = Some(d);
            continue;
        }
        t.keys.push(TrustedKey {
            keyring: ring,
            description: d.description.clone(),
            source: "/proc/keys".into(),
            has_certificate: cert.is_some(),
            cert,
            proc_keys: Some(d),
        });
    }
    // keys of the image the running kernel does not hold (it failed to load them): not
    // trusted; the keyrings /proc/keys showed are the truth
    t.keys.retain(|k| {
        !read_rings.contains(&k.keyring)
            || confirmed
                .iter()
                .any(|(r, d)| *r == k.keyring && *d == k.description)
    });
    t.sources.push(src);
}

fn unhex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Render a key list for people: keyring, description, where it came from.
pub fn describe_keys(t: &TrustedKeys) -> Vec<String> {
    t.keys
        .iter()
        .map(|k| {
            let algo = match (&k.cert, &k.proc_keys) {
                (_, Some(p)) => format!(
                    " [{}{}]",
                    p.subtype,
                    p.skid_tail
                        .as_ref()
                        .map(|t| format!(" {t}"))
                        .unwrap_or_default()
                ),
                (Some(c), None) => format!(" [X509.{}]", c.pkey_algo),
                (None, None) => String::new(),
            };
            format!(
                "{:<24} {}{algo}{} ({})",
                k.keyring.name(),
                k.description,
                if k.has_certificate {
                    ""
                } else {
                    " [no certificate]"
                },
                k.source
            )
        })
        .collect()
}
