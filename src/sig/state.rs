//! Whether a kernel enforces module signatures, and what it can verify: from its
//! configuration, its command line, `/sys/module/module/parameters/sig_enforce`, the lockdown
//! mode (`/sys/kernel/security/lockdown`) and Secure Boot.
//!
//! * `sig_enforce` starts as `CONFIG_MODULE_SIG_FORCE` and is a `bool_enable_only` parameter
//!   (`module.sig_enforce` on the command line, or written to sysfs): it can only be switched
//!   on (`kernel/module/signing.c`).
//! * Lockdown (`security/lockdown/lockdown.c`) is raised by `lockdown=` on the command line,
//!   by `CONFIG_LOCK_DOWN_KERNEL_FORCE_*`, and on distribution kernels with
//!   `CONFIG_LOCK_DOWN_IN_EFI_SECURE_BOOT` by booting with Secure Boot (integrity). At
//!   `integrity` or above, a module the kernel would accept unsigned is refused with -EPERM.

use super::efi::SecureBoot;
use super::pkcs7::HashAlgo;
use serde::Serialize;

/// The lockdown level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Lockdown {
    #[default]
    None,
    Integrity,
    Confidentiality,
}

impl Lockdown {
    pub fn from_word(w: &str) -> Option<Lockdown> {
        Some(match w {
            "none" => Lockdown::None,
            "integrity" => Lockdown::Integrity,
            "confidentiality" => Lockdown::Confidentiality,
            _ => return None,
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            Lockdown::None => "none",
            Lockdown::Integrity => "integrity",
            Lockdown::Confidentiality => "confidentiality",
        }
    }
}

/// The current level in `/sys/kernel/security/lockdown` (`none [integrity] confidentiality`).
pub fn parse_lockdown_file(text: &str) -> Option<Lockdown> {
    text.split_whitespace()
        .find_map(|w| w.strip_prefix('[')?.strip_suffix(']'))
        .and_then(Lockdown::from_word)
}

/// `kstrtobool` as module parameters use it; a parameter without a value is `true`.
pub fn kstrtobool(v: Option<&str>) -> Option<bool> {
    let Some(v) = v else { return Some(true) };
    let b = v.as_bytes();
    match b.first()? {
        b'y' | b'Y' | b'1' => Some(true),
        b'n' | b'N' | b'0' => Some(false),
        b'o' | b'O' => match b.get(1)? {
            b'n' | b'N' => Some(true),
            b'f' | b'F' => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// What a kernel command line says: `module.sig_enforce` and `lockdown=`. Parameter names
/// treat `-` and `_` alike, as the kernel does; quoted values are not expected here.
pub fn parse_cmdline(cmdline: &str) -> (Option<bool>, Option<Lockdown>) {
    let mut enforce = None;
    let mut lockdown = None;
    for word in cmdline.split_whitespace() {
        if word == "--" {
            break; // the rest is for init
        }
        let (name, value) = match word.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (word, None),
        };
        let name = name.replace('-', "_");
        if name == "module.sig_enforce" {
            // bool_enable_only: once on, it stays on
            if let Some(b) = kstrtobool(value) {
                enforce = Some(enforce.unwrap_or(false) || b);
            }
        } else if name == "lockdown"
            && let Some(l) = value.and_then(Lockdown::from_word)
        {
            lockdown = Some(lockdown.map_or(l, |old: Lockdown| old.max(l)));
        }
    }
    (enforce, lockdown)
}

/// The configuration switches that bear on signatures (from `/boot/config-<kver>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SigConfig {
    /// `CONFIG_MODULE_SIG`: signatures are checked at all (else no taint E, nothing refused).
    pub module_sig: bool,
    /// `CONFIG_MODULE_SIG_FORCE`.
    pub sig_force: bool,
    /// `CONFIG_LOCK_DOWN_IN_EFI_SECURE_BOOT` (a distribution patch): Secure Boot means lockdown.
    pub lockdown_in_secure_boot: bool,
    /// `CONFIG_LOCK_DOWN_KERNEL_FORCE_INTEGRITY` / `_CONFIDENTIALITY`.
    pub forced_lockdown: Lockdown,
    /// `CONFIG_SECURITY_LOCKDOWN_LSM`: the lockdown LSM exists.
    pub lockdown_lsm: bool,
    /// Digests the kernel can compute (built in or as a module).
    pub hashes: Vec<HashAlgo>,
    /// `CONFIG_CRYPTO_RSA`, `CONFIG_CRYPTO_ECDSA`.
    pub rsa: bool,
    pub ecdsa: bool,
    /// `CONFIG_INTEGRITY_PLATFORM_KEYRING`: the `.platform` keyring exists (distribution
    /// kernels then also verify modules against it).
    pub platform_keyring: bool,
    /// `false` when these are assumptions, no configuration having been read.
    pub from_config: bool,
}

impl Default for SigConfig {
    /// What a distribution kernel has, when its configuration is not at hand.
    fn default() -> Self {
        SigConfig {
            module_sig: true,
            sig_force: false,
            lockdown_in_secure_boot: true,
            forced_lockdown: Lockdown::None,
            lockdown_lsm: true,
            hashes: vec![
                HashAlgo::Sha1,
                HashAlgo::Sha224,
                HashAlgo::Sha256,
                HashAlgo::Sha384,
                HashAlgo::Sha512,
            ],
            rsa: true,
            ecdsa: true,
            platform_keyring: true,
            from_config: false,
        }
    }
}

impl SigConfig {
    /// Read the switches from a kernel `.config` text (`=y` and `=m` both count for crypto).
    pub fn from_kconfig(text: &str) -> SigConfig {
        SigConfig::from_kconfig_bytes(text.as_bytes())
    }

    /// [`SigConfig::from_kconfig`] of the file's bytes (not validated as UTF-8 first: only
    /// the few lines used are looked at).
    pub fn from_kconfig_bytes(text: &[u8]) -> SigConfig {
        let values = kconfig_values(text);
        let value = |name: &str| {
            let i = USED.iter().position(|u| *u == name);
            debug_assert!(i.is_some(), "{name} is not in USED");
            i.and_then(|i| values[i])
        };
        let on = |name: &str| value(name).is_some_and(|v| v == b"y");
        let have = |name: &str| value(name).is_some_and(|v| v == b"y" || v == b"m");
        let mut hashes = Vec::new();
        let mut add = |cond: bool, h: &[HashAlgo]| {
            if cond {
                hashes.extend_from_slice(h);
            }
        };
        add(have("CONFIG_CRYPTO_MD4"), &[HashAlgo::Md4]);
        add(have("CONFIG_CRYPTO_MD5"), &[HashAlgo::Md5]);
        add(have("CONFIG_CRYPTO_SHA1"), &[HashAlgo::Sha1]);
        add(
            have("CONFIG_CRYPTO_SHA256"),
            &[HashAlgo::Sha224, HashAlgo::Sha256],
        );
        add(
            have("CONFIG_CRYPTO_SHA512"),
            &[HashAlgo::Sha384, HashAlgo::Sha512],
        );
        add(
            have("CONFIG_CRYPTO_SM3_GENERIC") || have("CONFIG_CRYPTO_SM3"),
            &[HashAlgo::Sm3],
        );
        add(
            have("CONFIG_CRYPTO_STREEBOG"),
            &[HashAlgo::Streebog256, HashAlgo::Streebog512],
        );
        SigConfig {
            module_sig: on("CONFIG_MODULE_SIG"),
            sig_force: on("CONFIG_MODULE_SIG_FORCE"),
            lockdown_in_secure_boot: on("CONFIG_LOCK_DOWN_IN_EFI_SECURE_BOOT"),
            forced_lockdown: if on("CONFIG_LOCK_DOWN_KERNEL_FORCE_CONFIDENTIALITY") {
                Lockdown::Confidentiality
            } else if on("CONFIG_LOCK_DOWN_KERNEL_FORCE_INTEGRITY") {
                Lockdown::Integrity
            } else {
                Lockdown::None
            },
            lockdown_lsm: on("CONFIG_SECURITY_LOCKDOWN_LSM"),
            hashes,
            rsa: have("CONFIG_CRYPTO_RSA"),
            ecdsa: have("CONFIG_CRYPTO_ECDSA"),
            platform_keyring: on("CONFIG_INTEGRITY_PLATFORM_KEYRING"),
            from_config: true,
        }
    }
}

/// Whether, and why, signatures are enforced and the kernel locked down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Enforcement {
    /// `is_module_sig_enforced()`.
    pub enforced: bool,
    /// What switched enforcement on (`CONFIG_MODULE_SIG_FORCE`, `module.sig_enforce=1 on the
    /// command line`, ...).
    pub enforced_by: Vec<String>,
    pub lockdown: Lockdown,
    pub lockdown_by: Vec<String>,
    pub secure_boot: Option<SecureBoot>,
}

impl Enforcement {
    pub fn enforce(&mut self, why: impl Into<String>) {
        self.enforced = true;
        self.enforced_by.push(why.into());
    }
    pub fn lock_down(&mut self, level: Lockdown, why: impl Into<String>) {
        if level > Lockdown::None {
            self.lockdown = self.lockdown.max(level);
            self.lockdown_by.push(why.into());
        }
    }

    /// The state a kernel with `cfg` would have when booted with `cmdline` under firmware
    /// reporting `secure_boot`.
    pub fn at_boot(cfg: &SigConfig, cmdline: Option<&str>, secure_boot: SecureBoot) -> Enforcement {
        let mut e = Enforcement {
            secure_boot: Some(secure_boot),
            ..Enforcement::default()
        };
        if cfg.sig_force {
            e.enforce("CONFIG_MODULE_SIG_FORCE=y");
        }
        if cfg.lockdown_lsm {
            e.lock_down(cfg.forced_lockdown, "CONFIG_LOCK_DOWN_KERNEL_FORCE_*");
        }
        if let Some(c) = cmdline {
            let (enf, lock) = parse_cmdline(c);
            if enf == Some(true) {
                e.enforce("module.sig_enforce on the kernel command line");
            }
            if let Some(l) = lock.filter(|_| cfg.lockdown_lsm) {
                e.lock_down(
                    l,
                    format!("lockdown={} on the kernel command line", l.name()),
                );
            }
        }
        if secure_boot == SecureBoot::Enabled && cfg.lockdown_in_secure_boot && cfg.lockdown_lsm {
            e.lock_down(
                Lockdown::Integrity,
                "EFI Secure Boot with CONFIG_LOCK_DOWN_IN_EFI_SECURE_BOOT",
            );
        }
        e
    }
}

/// The lines of a kernel configuration [`SigConfig`] reads (the first of each option used, in
/// a fixed order): [`SigConfig::from_kconfig_bytes`] makes of them what it makes of the whole
/// file, so they stand for it in the `/run` snapshot ([`super::boot`]).
pub fn used_lines(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, v) in USED.iter().zip(kconfig_values(text)) {
        if let Some(v) = v {
            out.extend_from_slice(name.as_bytes());
            out.push(b'=');
            out.extend_from_slice(v);
            out.push(b'\n');
        }
    }
    out
}

/// The options of a kernel configuration [`SigConfig`] uses.
const USED: [&str; 17] = [
    "CONFIG_CRYPTO_MD4",
    "CONFIG_CRYPTO_MD5",
    "CONFIG_CRYPTO_SHA1",
    "CONFIG_CRYPTO_SHA256",
    "CONFIG_CRYPTO_SHA512",
    "CONFIG_CRYPTO_SM3_GENERIC",
    "CONFIG_CRYPTO_SM3",
    "CONFIG_CRYPTO_STREEBOG",
    "CONFIG_MODULE_SIG",
    "CONFIG_MODULE_SIG_FORCE",
    "CONFIG_LOCK_DOWN_IN_EFI_SECURE_BOOT",
    "CONFIG_LOCK_DOWN_KERNEL_FORCE_CONFIDENTIALITY",
    "CONFIG_LOCK_DOWN_KERNEL_FORCE_INTEGRITY",
    "CONFIG_SECURITY_LOCKDOWN_LSM",
    "CONFIG_CRYPTO_RSA",
    "CONFIG_CRYPTO_ECDSA",
    "CONFIG_INTEGRITY_PLATFORM_KEYRING",
];

/// The first value of each of [`USED`] in a configuration's text (`CONFIG_X=value` lines,
/// blanks around a line ignored). One pass over the file (a distribution's has 10,000
/// lines): a search of the whole text per option cost 18 M instructions per kabi load, a map
/// of every option 3 M, a byte-by-byte split of the lines 1.3 M; lines found with memchr and
/// most passed over on one byte, 0.56 M.
fn kconfig_values(text: &[u8]) -> [Option<&[u8]>; USED.len()] {
    let mut values: [Option<&[u8]>; USED.len()] = [None; USED.len()];
    // the byte after `CONFIG_` of the options used
    const AT: usize = "CONFIG_".len();
    let mut after = [false; 256];
    for u in USED {
        after[usize::from(u.as_bytes()[AT])] = true;
    }
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', text).chain([text.len()]) {
        let l = text[start..end].trim_ascii();
        start = end + 1;
        // comments ("# CONFIG_X is not set"), blank lines, options not used
        if l.len() <= AT || !l.starts_with(b"CONFIG_") || !after[usize::from(l[AT])] {
            continue;
        }
        if let Some(eq) = memchr::memchr(b'=', l)
            && let Some(i) = USED.iter().position(|u| u.as_bytes() == &l[..eq])
        {
            values[i].get_or_insert(&l[eq + 1..]);
        }
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockdown_file() {
        assert_eq!(
            parse_lockdown_file("none [integrity] confidentiality\n"),
            Some(Lockdown::Integrity)
        );
        assert_eq!(
            parse_lockdown_file("[none] integrity confidentiality\n"),
            Some(Lockdown::None)
        );
        assert_eq!(parse_lockdown_file("garbage"), None);
    }

    #[test]
    fn command_line() {
        assert_eq!(parse_cmdline("ro module.sig_enforce=1"), (Some(true), None));
        assert_eq!(parse_cmdline("module.sig_enforce"), (Some(true), None));
        assert_eq!(parse_cmdline("module.sig-enforce=y"), (Some(true), None));
        // enable only: a later 0 does not switch it off
        assert_eq!(
            parse_cmdline("module.sig_enforce=1 module.sig_enforce=0"),
            (Some(true), None)
        );
        assert_eq!(parse_cmdline("module.sig_enforce=0"), (Some(false), None));
        assert_eq!(
            parse_cmdline("lockdown=integrity quiet -- module.sig_enforce=1"),
            (None, Some(Lockdown::Integrity))
        );
        assert_eq!(parse_cmdline("lockdown=bogus"), (None, None));
    }

    #[test]
    fn config_and_boot_state() {
        let cfg = SigConfig::from_kconfig(
            "CONFIG_MODULE_SIG=y\n# CONFIG_MODULE_SIG_FORCE is not set\nCONFIG_SECURITY_LOCKDOWN_LSM=y\nCONFIG_LOCK_DOWN_IN_EFI_SECURE_BOOT=y\nCONFIG_CRYPTO_SHA256=y\nCONFIG_CRYPTO_SHA512=m\nCONFIG_CRYPTO_RSA=y\n",
        );
        assert!(cfg.module_sig && !cfg.sig_force && !cfg.ecdsa);
        assert!(cfg.hashes.contains(&HashAlgo::Sha512) && !cfg.hashes.contains(&HashAlgo::Sha1));
        let e = Enforcement::at_boot(&cfg, Some("quiet"), SecureBoot::Disabled);
        assert!(!e.enforced && e.lockdown == Lockdown::None);
        let e = Enforcement::at_boot(&cfg, Some("module.sig_enforce=1"), SecureBoot::Enabled);
        assert!(e.enforced);
        assert_eq!(e.lockdown, Lockdown::Integrity);
        // bytes, not text: a line that is not UTF-8 does not matter; the first value of an
        // option counts; surrounding blanks do not
        let mut raw =
            b"CONFIG_LOCALVERSION=\"\xff\xfe\"\n  CONFIG_MODULE_SIG_FORCE=y \r\n".to_vec();
        raw.extend_from_slice(b"CONFIG_MODULE_SIG_FORCE=n\nCONFIG_CRYPTO_ECDSA=m\n");
        let b = SigConfig::from_kconfig_bytes(&raw);
        assert!(b.sig_force && b.ecdsa && !b.module_sig && b.from_config);
    }

    /// The configuration's options as the plain reading finds them: every line split at
    /// `\n`, trimmed, the first `CONFIG_X=` of each option used.
    fn plain_values(text: &[u8]) -> Vec<Option<&[u8]>> {
        let mut values = vec![None; USED.len()];
        for l in text.split(|&b| b == b'\n') {
            let l = l.trim_ascii();
            if let Some(eq) = l.iter().position(|&b| b == b'=')
                && let Some(i) = USED.iter().position(|u| u.as_bytes() == &l[..eq])
            {
                values[i].get_or_insert(&l[eq + 1..]);
            }
        }
        values
    }

    proptest::proptest! {
        #[test]
        fn a_configuration_is_read_as_the_plain_reading_reads_it(
            lines in proptest::collection::vec(
                (
                    proptest::sample::select(vec![" ", "", "\t", "# "]),
                    proptest::sample::select(
                        USED.iter()
                            .copied()
                            .chain(["CONFIG_", "CONFIG_CRYPTO_SHA", "CONFIG_X", "CONFIG_M", "CONFIG_MODULE_SIG_"])
                            .collect::<Vec<_>>(),
                    ),
                    proptest::sample::select(vec!["=y", "=m", "=n", "", "= y", "=\"\u{e9}\"", "=y\r"]),
                ),
                0..40,
            ),
            junk in proptest::collection::vec(proptest::num::u8::ANY, 0..8),
        ) {
            let mut text = Vec::new();
            for (pre, name, value) in &lines {
                text.extend_from_slice(pre.as_bytes());
                text.extend_from_slice(name.as_bytes());
                text.extend_from_slice(value.as_bytes());
                text.push(b'\n');
            }
            text.extend_from_slice(&junk);
            proptest::prop_assert_eq!(kconfig_values(&text).to_vec(), plain_values(&text));
        }
    }
}
