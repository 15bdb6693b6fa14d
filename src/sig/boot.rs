//! What the running kernel's signature policy takes from files that stay the same for a boot:
//! the options of its configuration that matter (`/boot/config-RELEASE`, known by the file's
//! identity, since a package may replace it), its command line and the firmware's Secure Boot
//! variable. `kabi load` keeps them in the `/run` snapshot of the boot
//! ([`crate::load::snapshot`]), so that a load does not read and parse the configuration
//! (260 KB on a Debian kernel) or the command line again: only what can change during a boot
//! is read per load (`sig_enforce`, lockdown, whether efivarfs is mounted, the
//! configuration's `stat`).

use super::cert::{hex, unhex};
use super::efi::SecureBoot;

/// The identity of a file when it was read: device, inode, size, modification time (seconds,
/// nanoseconds). Another file at the name, or the same one rewritten, has another.
pub type FileId = (u64, u64, u64, i64, u32);

/// The boot's facts of a running kernel's signature policy (see the module's description).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BootFacts {
    /// The configuration: `None` when there was no regular file at its name, else the file's
    /// identity and the lines of the options used ([`super::state::used_lines`]; `None` when
    /// the file could not be read).
    pub config: Option<(FileId, Option<Vec<u8>>)>,
    /// `/proc/cmdline`, when it was read.
    pub cmdline: Option<Vec<u8>>,
    /// The Secure Boot variable, when efivarfs was mounted (it cannot change during a boot;
    /// efivarfs may be mounted later, so its absence is not kept).
    pub secure_boot: Option<SecureBoot>,
}

/// The longest command line kept (the kernel's `COMMAND_LINE_SIZE` is 2,048 on x86, 4,096 on
/// some architectures): a longer one is read per load.
const CMDLINE_MAX: usize = 4096;

impl BootFacts {
    /// The facts as one line's value: `config=-|DEV:INO:SIZE:SEC:NSEC:(HEX|-)
    /// cmdline=-|HEX secure_boot=-|enabled|disabled|unknown`.
    pub fn render(&self) -> String {
        let config = match &self.config {
            None => "-".to_string(),
            Some(((dev, ino, size, sec, nsec), lines)) => format!(
                "{dev}:{ino}:{size}:{sec}:{nsec}:{}",
                lines.as_deref().map_or("-".to_string(), hex)
            ),
        };
        let cmdline = self
            .cmdline
            .as_deref()
            .filter(|c| c.len() <= CMDLINE_MAX)
            .map_or("-".to_string(), hex);
        let secure_boot = match self.secure_boot {
            None => "-",
            Some(SecureBoot::Enabled) => "enabled",
            Some(SecureBoot::Disabled) => "disabled",
            Some(SecureBoot::Unknown) => "unknown",
        };
        format!("config={config} cmdline={cmdline} secure_boot={secure_boot}")
    }

    /// The facts [`BootFacts::render`] wrote; `None` for anything else.
    pub fn parse(v: &str) -> Option<BootFacts> {
        let mut words = v.split(' ');
        let mut field = |name: &str| words.next()?.strip_prefix(name)?.strip_prefix('=');
        let (config, cmdline, secure_boot) =
            (field("config")?, field("cmdline")?, field("secure_boot")?);
        if words.next().is_some() {
            return None;
        }
        let config = match config {
            "-" => None,
            c => {
                let f: Vec<&str> = c.split(':').collect();
                let [dev, ino, size, sec, nsec, lines] = f[..] else {
                    return None;
                };
                let id = (
                    dev.parse().ok()?,
                    ino.parse().ok()?,
                    size.parse().ok()?,
                    sec.parse().ok()?,
                    nsec.parse().ok()?,
                );
                let lines = match lines {
                    "-" => None,
                    l => Some(unhex(l)?),
                };
                Some((id, lines))
            }
        };
        let cmdline = match cmdline {
            "-" => None,
            c => Some(unhex(c)?).filter(|c| c.len() <= CMDLINE_MAX),
        };
        let secure_boot = match secure_boot {
            "-" => None,
            "enabled" => Some(SecureBoot::Enabled),
            "disabled" => Some(SecureBoot::Disabled),
            "unknown" => Some(SecureBoot::Unknown),
            _ => return None,
        };
        Some(BootFacts {
            config,
            cmdline,
            secure_boot,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_round_trip_and_nothing_else_reads_as_facts() {
        let all = BootFacts {
            config: Some((
                (64769, 1234, 260_000, 1_700_000_000, 999_999_999),
                Some(b"CONFIG_MODULE_SIG=y\n".to_vec()),
            )),
            cmdline: Some(b"BOOT_IMAGE=/vmlinuz ro lockdown=integrity\n".to_vec()),
            secure_boot: Some(SecureBoot::Enabled),
        };
        let unreadable = BootFacts {
            config: Some(((1, 2, 3, -4, 5), None)),
            cmdline: None,
            secure_boot: Some(SecureBoot::Unknown),
        };
        for f in [all, unreadable, BootFacts::default()] {
            assert_eq!(
                BootFacts::parse(&f.render()),
                Some(f.clone()),
                "{}",
                f.render()
            );
        }
        // a command line too long to keep is not kept (it is read per load)
        let long = BootFacts {
            cmdline: Some(vec![b'x'; CMDLINE_MAX + 1]),
            ..BootFacts::default()
        };
        assert_eq!(BootFacts::parse(&long.render()), Some(BootFacts::default()));
        for bad in [
            "",
            "config=- cmdline=-",
            "config=- cmdline=- secure_boot=- more",
            "cmdline=- config=- secure_boot=-",
            "config=1:2:3:4:5 cmdline=- secure_boot=-",
            "config=1:2:3:4:5:6:- cmdline=- secure_boot=-",
            "config=1:2:x:4:5:- cmdline=- secure_boot=-",
            "config=1:2:3:4:5:abc cmdline=- secure_boot=-",
            "config=1:2:3:4:5:zz cmdline=- secure_boot=-",
            "config=- cmdline=0 secure_boot=-",
            "config=- cmdline=- secure_boot=on",
            "config=-  cmdline=- secure_boot=-",
        ] {
            assert_eq!(BootFacts::parse(bad), None, "{bad:?}");
        }
    }
}
