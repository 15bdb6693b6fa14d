//! The running kernel's keys as `/proc/keys` lists them (`security/keys/proc.c`), and which
//! of the system keyrings holds each (`KEYCTL_READ` on the keyring).
//!
//! A line is `serial flags usage expiry perm uid gid type description`, the type cut to nine
//! characters (`asymmetri`). An X.509 key's description is the one `x509_key_preparse()`
//! proposed (`subject: skid-or-serial in hex`) followed by what `asymmetric_key_describe()`
//! adds: `: X509.rsa`, the last four bytes of the subjectKeyIdentifier, and ` []`. A keyring's
//! is its name followed by `: N` leaves or `: empty`.

use serde::Serialize;

/// The keyrings `module_sig_check()` may consult, and keys given to kabi directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Keyring {
    /// `.builtin_trusted_keys`: the image's own certificates.
    #[serde(rename = ".builtin_trusted_keys")]
    Builtin,
    /// `.secondary_trusted_keys`: keys added at run time (signed by a trusted key).
    #[serde(rename = ".secondary_trusted_keys")]
    Secondary,
    /// `.machine`: MOK keys (linked into the secondary keyring).
    #[serde(rename = ".machine")]
    Machine,
    /// `.platform`: UEFI db (and MOK without a machine keyring); distribution kernels
    /// (Debian, Fedora, RHEL) fall back to it for modules.
    #[serde(rename = ".platform")]
    Platform,
    /// Certificates given to kabi (`--trusted-cert`), trusted like the secondary keyring.
    #[serde(rename = "given")]
    Given,
}

impl Keyring {
    pub fn name(self) -> &'static str {
        match self {
            Keyring::Builtin => ".builtin_trusted_keys",
            Keyring::Secondary => ".secondary_trusted_keys",
            Keyring::Machine => ".machine",
            Keyring::Platform => ".platform",
            Keyring::Given => "given",
        }
    }
    pub fn from_name(s: &str) -> Option<Keyring> {
        Some(match s {
            ".builtin_trusted_keys" => Keyring::Builtin,
            ".secondary_trusted_keys" => Keyring::Secondary,
            ".machine" => Keyring::Machine,
            ".platform" => Keyring::Platform,
            _ => return None,
        })
    }
    /// Searched first (`VERIFY_USE_SECONDARY_KEYRING`: the secondary keyring links the
    /// builtin and machine ones); the platform keyring only when that finds no key.
    pub fn is_secondary_search(self) -> bool {
        !matches!(self, Keyring::Platform)
    }
}

/// One line of `/proc/keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcKey {
    pub serial: u32,
    pub flags: String,
    pub perm: u32,
    pub uid: u32,
    /// The key type as shown (cut to 9 characters: `asymmetri`, `keyring`).
    pub key_type: String,
    /// The whole description as shown.
    pub description: String,
}

/// What an X.509 key's description in `/proc/keys` tells.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct X509Description {
    /// The description the key was created with: `subject: hexid`.
    pub description: String,
    pub subject: String,
    /// The subjectKeyIdentifier (else the serial number) in hex.
    pub id_hex: String,
    /// `X509.rsa`, `X509.ecdsa-nist-p256` ...
    pub subtype: String,
    /// The last four bytes of the subjectKeyIdentifier, in hex, when the key has one.
    pub skid_tail: Option<String>,
}

impl ProcKey {
    pub fn is_keyring(&self) -> bool {
        self.key_type == "keyring"
    }
    pub fn is_asymmetric(&self) -> bool {
        self.key_type == "asymmetri" || self.key_type == "asymmetric"
    }
    /// A keyring's name (`.builtin_trusted_keys: 1` → `.builtin_trusted_keys`).
    pub fn keyring_name(&self) -> Option<&str> {
        if !self.is_keyring() {
            return None;
        }
        Some(
            self.description
                .rsplit_once(": ")
                .map_or(self.description.as_str(), |(n, _)| n),
        )
    }
    /// The parts of an asymmetric key's description.
    pub fn x509(&self) -> Option<X509Description> {
        if !self.is_asymmetric() {
            return None;
        }
        let d = self.description.strip_suffix(" []")?;
        // `desc: X509.algo[ skidtail]`
        let (desc, tail) = d.rsplit_once(": ")?;
        let mut parts = tail.split(' ');
        let subtype = parts.next()?.to_string();
        let skid_tail = parts.next().map(str::to_string);
        if parts.next().is_some() {
            return None;
        }
        let (subject, id_hex) = desc.rsplit_once(": ")?;
        Some(X509Description {
            description: desc.to_string(),
            subject: subject.to_string(),
            id_hex: id_hex.to_string(),
            subtype,
            skid_tail,
        })
    }
}

/// Parse the text of `/proc/keys`. Lines that do not have the shape are skipped and counted.
pub fn parse_proc_keys(text: &str) -> (Vec<ProcKey>, usize) {
    let mut out = Vec::new();
    let mut bad = 0;
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(line) {
            Some(k) => out.push(k),
            None => bad += 1,
        }
    }
    (out, bad)
}

fn parse_line(line: &str) -> Option<ProcKey> {
    // eight whitespace-separated fields, then the description (which may contain spaces)
    let mut rest = line;
    let mut fields = [""; 8];
    for f in fields.iter_mut() {
        rest = rest.trim_start_matches(' ');
        let end = rest.find(' ').unwrap_or(rest.len());
        *f = &rest[..end];
        rest = &rest[end..];
    }
    let description = rest.strip_prefix(' ')?.trim_start_matches(' ').to_string();
    let [serial, flags, _usage, _expiry, perm, uid, gid, key_type] = fields;
    let _: u32 = gid.parse().ok()?;
    Some(ProcKey {
        serial: u32::from_str_radix(serial, 16).ok()?,
        flags: flags.to_string(),
        perm: u32::from_str_radix(perm, 16).ok()?,
        uid: uid.parse().ok()?,
        key_type: key_type.to_string(),
        description,
    })
}

/// The serials a keyring links to (`keyctl(KEYCTL_READ)`), for the running kernel.
#[cfg(target_os = "linux")]
pub fn keyring_members(serial: u32) -> std::io::Result<Vec<u32>> {
    const KEYCTL_READ: libc::c_long = 11;
    let mut buf: Vec<i32> = vec![0; 256];
    for _ in 0..4 {
        let bytes = buf.len() * 4;
        // SAFETY: the buffer is valid for `bytes` bytes; the kernel writes at most that many
        let n = unsafe {
            libc::syscall(
                libc::SYS_keyctl,
                KEYCTL_READ,
                serial as libc::c_long,
                buf.as_mut_ptr(),
                bytes as libc::c_long,
            )
        };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let n = n as usize;
        if n <= bytes {
            buf.truncate(n / 4);
            return Ok(buf.into_iter().map(|s| s as u32).collect());
        }
        // a keyring holds at most a few thousand keys; the size asked for is bounded
        if n > 1 << 20 {
            return Err(std::io::Error::other("keyring too large"));
        }
        buf = vec![0; n.div_ceil(4)];
    }
    Err(std::io::Error::other("keyring kept growing"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
0a3e6f52 I------     1 perm 1f0b0000     0     0 keyring   .builtin_trusted_keys: 1
1b2c3d4e I------     1 perm 1f010000     0     0 asymmetri Build time autogenerated kernel key: 8d02af3b9f75dd230deaf4e6abfbf08bd6558ab1: X509.rsa d6558ab1 []
22222222 I------     2 perm 1f0f0000     0     0 keyring   .secondary_trusted_keys: 1
33333333 I------     1 perm 1f030000     0     0 keyring   .platform: empty
44444444 I------     1 perm 1f030000     0     0 asymmetri Vendor: Signer: 01ab: X509.ecdsa-nist-p256 []
";

    #[test]
    fn lines_and_descriptions() {
        let (keys, bad) = parse_proc_keys(SAMPLE);
        assert_eq!(bad, 0);
        assert_eq!(keys.len(), 5);
        assert_eq!(keys[0].keyring_name(), Some(".builtin_trusted_keys"));
        assert_eq!(keys[3].keyring_name(), Some(".platform"));
        let d = keys[1].x509().unwrap();
        assert_eq!(d.subject, "Build time autogenerated kernel key");
        assert_eq!(d.id_hex, "8d02af3b9f75dd230deaf4e6abfbf08bd6558ab1");
        assert_eq!(d.subtype, "X509.rsa");
        assert_eq!(d.skid_tail.as_deref(), Some("d6558ab1"));
        // no skid: the serial, no tail; a subject with ": " in it
        let d = keys[4].x509().unwrap();
        assert_eq!(d.subject, "Vendor: Signer");
        assert_eq!(d.id_hex, "01ab");
        assert_eq!(d.skid_tail, None);
        assert_eq!(keys[1].serial, 0x1b2c3d4e);
    }

    #[test]
    fn junk_is_counted_not_fatal() {
        let (keys, bad) = parse_proc_keys("garbage\n0a3e6f52 I------\n\u{0}\u{1}");
        assert!(keys.is_empty());
        assert_eq!(bad, 3);
    }
}
