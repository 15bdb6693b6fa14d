//! What the running kernel's signature policy takes from files that stay the same for a boot:
//! the options of its configuration that matter (`/boot/config-RELEASE`, known by the file's
//! identity, since a package may replace it), its command line and the firmware's Secure Boot
//! variable. `kabi load` keeps them in the `/run` snapshot of the boot
//! ([`crate::load::snapshot`]), so that a load does not read and parse the configuration
//! (260 KB on a Debian kernel) or the command line again: only what can change during a boot
//! is read per load (`sig_enforce`, lockdown, the configuration's `stat`, and the Secure Boot
//! variable until it is found).

use super::cert::{hex, unhex};
use super::efi::SecureBoot;

/// The identity of a file when it was read: device, inode, size, modification time and
/// change time (seconds, nanoseconds). Another file at the name, or the same one rewritten, has
/// another: a write sets the change time, which no one can set back.
pub type FileId = (u64, u64, u64, (i64, u32), (i64, u32));

/// The boot's facts of a running kernel's signature policy (see the module's description).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BootFacts {
    /// The configuration, as read: its identity and the lines of the options used
    /// ([`super::state::used_lines`]); `None` when there was no regular file at its name, or
    /// it could not be read (then a file there now is read again).
    pub config: Option<(FileId, Vec<u8>)>,
    /// `/proc/cmdline`, when it was read.
    pub cmdline: Option<Vec<u8>>,
    /// The Secure Boot variable, when it was read (it cannot change during a boot). Never
    /// [`SecureBoot::Unknown`]: on a UEFI machine the kernel makes `efivars` an empty
    /// directory until efivarfs is mounted there, so a variable not found may be found later.
    pub secure_boot: Option<SecureBoot>,
}

/// The longest command line kept (the kernel's `COMMAND_LINE_SIZE` is 2,048 on x86, 4,096 on
/// some architectures): a longer one is read per load.
const CMDLINE_MAX: usize = 4096;

/// The longest `sig_boot` value read: the command line's hex and the few configuration lines
/// fit well below.
const VALUE_MAX: usize = 16 << 10;

impl BootFacts {
    /// The facts as one line's value: `config=-|DEV:INO:SIZE:MSEC:MNSEC:CSEC:CNSEC:HEX
    /// cmdline=-|HEX secure_boot=-|enabled|disabled`.
    pub fn render(&self) -> String {
        let config = match &self.config {
            None => "-".to_string(),
            Some(((dev, ino, size, (ms, mns), (cs, cns)), lines)) => {
                format!("{dev}:{ino}:{size}:{ms}:{mns}:{cs}:{cns}:{}", hex(lines))
            }
        };
        let cmdline = self
            .cmdline
            .as_deref()
            .filter(|c| c.len() <= CMDLINE_MAX)
            .map_or("-".to_string(), hex);
        let secure_boot = match self.secure_boot {
            Some(SecureBoot::Enabled) => "enabled",
            Some(SecureBoot::Disabled) => "disabled",
            None | Some(SecureBoot::Unknown) => "-",
        };
        format!("config={config} cmdline={cmdline} secure_boot={secure_boot}")
    }

    /// The facts [`BootFacts::render`] wrote; `None` for anything else.
    pub fn parse(v: &str) -> Option<BootFacts> {
        if v.len() > VALUE_MAX {
            return None;
        }
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
                let mut f = c.splitn(8, ':');
                // each number in its own type (a time's seconds may be negative)
                let mut num = || f.next()?.parse::<i128>().ok();
                let mut u = || u64::try_from(num()?).ok();
                let (dev, ino, size) = (u()?, u()?, u()?);
                let mut time = || {
                    let s = i64::try_from(num()?).ok()?;
                    Some((s, u32::try_from(num()?).ok()?))
                };
                let id = (dev, ino, size, time()?, time()?);
                Some((id, unhex(f.next()?)?))
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
                (64769, 1234, 260_000, (1_700_000_000, 999_999_999), (-4, 5)),
                b"CONFIG_MODULE_SIG=y\n".to_vec(),
            )),
            cmdline: Some(b"BOOT_IMAGE=/vmlinuz ro lockdown=integrity\n".to_vec()),
            secure_boot: Some(SecureBoot::Enabled),
        };
        let no_options = BootFacts {
            config: Some(((1, 2, 3, (4, 5), (6, 7)), Vec::new())),
            cmdline: None,
            secure_boot: Some(SecureBoot::Disabled),
        };
        for f in [all, no_options, BootFacts::default()] {
            assert_eq!(
                BootFacts::parse(&f.render()),
                Some(f.clone()),
                "{}",
                f.render()
            );
        }
        // what may be found later is not kept: a command line too long to keep, Secure Boot
        // not found
        let not_kept = BootFacts {
            cmdline: Some(vec![b'x'; CMDLINE_MAX + 1]),
            secure_boot: Some(SecureBoot::Unknown),
            ..BootFacts::default()
        };
        assert_eq!(
            BootFacts::parse(&not_kept.render()),
            Some(BootFacts::default())
        );
        let long = format!("config={} cmdline=- secure_boot=-", ":".repeat(VALUE_MAX));
        for bad in [
            "",
            "config=- cmdline=-",
            "config=- cmdline=- secure_boot=- more",
            "cmdline=- config=- secure_boot=-",
            "config=1:2:3:4:5:6:7 cmdline=- secure_boot=-",
            "config=1:2:3:4:5:6:7:ab:cd cmdline=- secure_boot=-",
            "config=1:2:x:4:5:6:7: cmdline=- secure_boot=-",
            "config=-1:2:3:4:5:6:7: cmdline=- secure_boot=-",
            "config=1:2:3:4:-5:6:7: cmdline=- secure_boot=-",
            "config=1:2:3:4:5:6:7:abc cmdline=- secure_boot=-",
            "config=1:2:3:4:5:6:7:zz cmdline=- secure_boot=-",
            "config=- cmdline=0 secure_boot=-",
            "config=- cmdline=- secure_boot=on",
            "config=- cmdline=- secure_boot=unknown",
            "config=-  cmdline=- secure_boot=-",
            &long,
        ] {
            assert_eq!(BootFacts::parse(bad), None, "{bad:?}");
        }
    }
}
