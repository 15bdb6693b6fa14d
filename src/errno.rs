//! The errno values the kernel's module loader and signature verifier return, as a closed set:
//! every reason kabi gives for a refusal maps to one of them (no "other" case), and they are
//! printed and serialized by their C names (`ENOEXEC`), as `strerror`'s users know them.

use serde::Serialize;
use std::fmt;

/// An errno `init_module`/`finit_module` (or the signature check inside them) returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[allow(clippy::upper_case_acronyms)]
pub enum Errno {
    /// Operation not permitted: lockdown, `module_blacklist=`.
    EPERM,
    /// No such file or directory: an unknown symbol (`Unknown symbol S (err -2)`).
    ENOENT,
    /// Exec format error ("Invalid module format"): ELF, `struct module`, `module_layout`,
    /// vermagic, missing versions.
    ENOEXEC,
    /// Out of memory (the verifier).
    ENOMEM,
    /// Invalid argument: a symbol CRC or namespace refused (`Unknown symbol S (err -22)`).
    EINVAL,
    /// Not a data message: a malformed signature trailer or PKCS#7 message.
    EBADMSG,
    /// No data available: the module is unsigned (forgiven unless enforced).
    ENODATA,
    /// Package not installed: crypto the kernel lacks (forgiven unless enforced).
    ENOPKG,
    /// Required key not available (forgiven unless enforced).
    ENOKEY,
    /// Key was rejected by service: a signature that does not verify, or a soft refusal under
    /// enforcement.
    EKEYREJECTED,
}

impl Errno {
    /// The C name (`"ENOEXEC"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Errno::EPERM => "EPERM",
            Errno::ENOENT => "ENOENT",
            Errno::ENOEXEC => "ENOEXEC",
            Errno::ENOMEM => "ENOMEM",
            Errno::EINVAL => "EINVAL",
            Errno::EBADMSG => "EBADMSG",
            Errno::ENODATA => "ENODATA",
            Errno::ENOPKG => "ENOPKG",
            Errno::ENOKEY => "ENOKEY",
            Errno::EKEYREJECTED => "EKEYREJECTED",
        }
    }

    /// The number on Linux (what the kernel logs as `err -N`, and `-N` is returned).
    pub fn code(self) -> i32 {
        match self {
            Errno::EPERM => libc::EPERM,
            Errno::ENOENT => libc::ENOENT,
            Errno::ENOEXEC => libc::ENOEXEC,
            Errno::ENOMEM => libc::ENOMEM,
            Errno::EINVAL => libc::EINVAL,
            Errno::EBADMSG => libc::EBADMSG,
            Errno::ENODATA => libc::ENODATA,
            Errno::ENOPKG => libc::ENOPKG,
            Errno::ENOKEY => libc::ENOKEY,
            Errno::EKEYREJECTED => libc::EKEYREJECTED,
        }
    }

    /// Every value, for schemas and tests.
    pub const ALL: [Errno; 10] = [
        Errno::EPERM,
        Errno::ENOENT,
        Errno::ENOEXEC,
        Errno::ENOMEM,
        Errno::EINVAL,
        Errno::EBADMSG,
        Errno::ENODATA,
        Errno::ENOPKG,
        Errno::ENOKEY,
        Errno::EKEYREJECTED,
    ];
}

impl fmt::Display for Errno {
    /// The C name; honours width and alignment (`{:<12}`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl PartialEq<&str> for Errno {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_codes_and_padding() {
        for e in Errno::ALL {
            // the serialized form is the C name
            assert_eq!(
                serde_json::to_value(e).unwrap(),
                serde_json::json!(e.as_str())
            );
            assert!(e.code() > 0);
        }
        assert_eq!(Errno::ENOEXEC.code(), 8);
        assert_eq!(Errno::EKEYREJECTED.code(), 129);
        assert_eq!(format!("{:<9}|", Errno::EPERM), "EPERM    |");
        assert_eq!(Errno::EINVAL, "EINVAL");
    }
}
