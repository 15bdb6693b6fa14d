//! SUSE's initramfs decision (`needs_initrd` and `build_initrd` of `weak-modules2`): whether a
//! kernel whose modules changed needs its `/boot/initrd-KREL` rebuilt, and how.
//!
//! In order, for kernel KREL:
//! 1. a `kdump` kernel never (its image is made by mkdumprd);
//! 2. without dracut (`$DRACUT`, default `/usr/bin/dracut`, executable) or without
//!    `/etc/fstab`, or with `/.buildenv` (a package build root): never, and the script says
//!    `Please run "$DRACUT -f /boot/initrd-KREL KREL" as soon as your system is complete.`;
//! 3. `KMP_NEEDS_MKINITRD` set (and not the number 0): yes;
//! 4. a kernel package (`--add-kernel`): yes;
//! 5. no `/boot/initrd-KREL` yet: yes;
//! 6. yes when a changed module's name (without `.ko[.gz|.xz|.zst]`) is the name of a module
//!    file below `lib/modules/` in the image (read here as a stream, not by `lsinitrd`) or a
//!    word of `INITRD_MODULES` in `/etc/sysconfig/kernel`; an image that cannot be read counts
//!    as holding them.
//!
//! Then the kernel image must exist (`vmlinuz`, `image`, ... in the module directory or in
//! `/boot`), else `WARNING: kernel image for KREL not found!`; with `INITRD_IN_POSTTRANS` the
//! kernel is only marked (`/run/regenerate-initrd/KREL`, made at the end of the package
//! transaction), otherwise `$DRACUT -f /boot/initrd-KREL KREL` runs.

use super::{Env, Level, Message};
use crate::root::Root;
use crate::rpmdb::kmp::module_name;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// What changed in a kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changed {
    /// The kernel itself (a kernel package): always rebuilt.
    Kernel,
    /// These module files (base names, with or without extension).
    Modules(BTreeSet<String>),
}

/// What is to be done for one kernel's initramfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Run `$DRACUT -f IMAGE KREL` (IMAGE inside the root).
    Dracut { image: PathBuf },
    /// Create `/run/regenerate-initrd/KREL` inside the root.
    Mark,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub krel: String,
    pub action: Action,
}

/// The file names of kernel images the script looks for, in its order.
const IMAGES: &[&str] = &[
    "vmlinuz", "image", "vmlinux", "linux", "bzImage", "uImage", "Image", "zImage",
];

/// The initramfs of `krel`, inside the root.
pub fn image_path(krel: &str) -> PathBuf {
    PathBuf::from(format!("boot/initrd-{krel}"))
}

/// The marker of a delayed rebuild, inside the root.
pub fn mark_path(krel: &str) -> PathBuf {
    Path::new("run/regenerate-initrd").join(krel)
}

/// Can dracut run for this root (step 2)?
pub fn dracut_usable(root: &Root, env: &Env) -> bool {
    root.exists("etc/fstab") && !root.exists(".buildenv") && env.dracut_installed
}

/// Decide for kernel `krel` (module directory `kdir`, inside the root); messages in the
/// script's words go to `msgs`.
pub fn decide(
    root: &Root,
    kdir: &Path,
    env: &Env,
    krel: &str,
    changed: &Changed,
    msgs: &mut Vec<Message>,
) -> Option<Step> {
    let say = |msgs: &mut Vec<Message>, level, text: String| msgs.push(Message { level, text });
    if krel.contains("kdump") {
        return None;
    }
    if !dracut_usable(root, env) {
        say(
            msgs,
            Level::Warn,
            format!(
                "Please run \"{} -f /boot/initrd-{krel} {krel}\" as soon as your system is complete.",
                env.dracut.display()
            ),
        );
        return None;
    }
    let needed = if env.kmp_needs_mkinitrd {
        say(
            msgs,
            Level::Debug,
            "needs_initrd: yes, KMP_NEEDS_MKINITRD is set".into(),
        );
        true
    } else {
        match changed {
            Changed::Kernel => {
                say(
                    msgs,
                    Level::Debug,
                    "needs_initrd: yes, kernel package".into(),
                );
                true
            }
            Changed::Modules(m) => modules_need_it(root, krel, m, msgs),
        }
    };
    if !needed {
        return None;
    }
    let has_image = IMAGES
        .iter()
        .any(|x| root.exists(kdir.join(x)) || root.exists(format!("boot/{x}-{krel}")));
    if !has_image {
        say(
            msgs,
            Level::Warn,
            format!("WARNING: kernel image for {krel} not found!"),
        );
        return None;
    }
    let action = if env.initrd_in_posttrans {
        Action::Mark
    } else {
        Action::Dracut {
            image: image_path(krel),
        }
    };
    Some(Step {
        krel: krel.to_string(),
        action,
    })
}

/// Steps 5 and 6.
fn modules_need_it(
    root: &Root,
    krel: &str,
    changed: &BTreeSet<String>,
    msgs: &mut Vec<Message>,
) -> bool {
    let stems: BTreeSet<&str> = changed
        .iter()
        .map(|n| module_name(n).unwrap_or(n))
        .collect();
    let image = image_path(krel);
    let file = match root.open_file(&image) {
        Ok((f, _)) => f,
        Err(crate::Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            msgs.push(Message {
                level: Level::Debug,
                text: "needs_initrd: yes, initrd doesn't exist yet".into(),
            });
            return true;
        }
        Err(e) => {
            msgs.push(Message {
                level: Level::Warn,
                text: format!("WARNING: cannot read {e}; rebuilding it to be safe"),
            });
            return true;
        }
    };
    let want = |f: &str| {
        f.contains("lib/modules/")
            && f.rsplit('/')
                .next()
                .and_then(module_name)
                .is_some_and(|s| stems.contains(s))
    };
    let mut held: BTreeSet<String> =
        match crate::weak::initramfs::scan(std::io::BufReader::new(file), &want) {
            Ok(names) => names
                .iter()
                .filter_map(|f| f.rsplit('/').next().and_then(module_name))
                .map(str::to_string)
                .collect(),
            Err(e) => {
                msgs.push(Message {
                    level: Level::Warn,
                    text: format!(
                        "WARNING: cannot read {}: {e}; rebuilding it to be safe",
                        root.display(&image).display()
                    ),
                });
                return true;
            }
        };
    // the modules the administrator wants in the initrd
    if let Ok(text) = root.read("etc/sysconfig/kernel", super::sysconfig::MAX_FILE)
        && let Some(v) = super::sysconfig::value(&text, "INITRD_MODULES")
    {
        held.extend(
            super::sysconfig::words(&v)
                .filter(|w| stems.contains(w))
                .map(str::to_string),
        );
    }
    let list: Vec<&str> = held.iter().map(String::as_str).collect();
    msgs.push(Message {
        level: Level::Log,
        text: format!(
            "changed initrd modules for kernel {krel}: {}",
            if list.is_empty() {
                "none".to_string()
            } else {
                list.join(" ")
            }
        ),
    });
    !held.is_empty()
}
