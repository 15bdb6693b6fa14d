//! What a kernel headers tree (`/usr/src/linux-headers-K`, `/lib/modules/K/build`) says of
//! its kernel beyond `Module.symvers`: the release (`include/generated/utsrelease.h`), the
//! configuration (`include/config/auto.conf`, else `.config`) and from both the vermagic the
//! kernel compares a module's with (`VERMAGIC_STRING`, `include/linux/vermagic.h`).

use std::collections::BTreeSet;
use std::path::Path;

/// The kernel of a headers tree, as far as the tree tells.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    /// `UTS_RELEASE` (Debian's `include/config/kernel.release` holds the upstream version,
    /// not the release: `utsrelease.h` is read first).
    pub release: Option<String>,
    /// The configuration text.
    pub config: Option<String>,
    /// `RANDSTRUCT_HASHED_SEED` (`include/generated/randomize_layout_hash.h`), when present.
    pub randstruct_seed: Option<String>,
}

/// The most kabi reads of one file of a headers tree.
const CAP: u64 = crate::root::caps::CONFIG;

impl Headers {
    /// Read the tree `dir` (a path on the host; links followed). `None` when `dir` holds
    /// neither a release nor a configuration: it is no headers tree.
    pub fn read(dir: &Path) -> Option<Headers> {
        let root = crate::root::Root::host().ok()?;
        let abs = std::path::absolute(dir).ok()?;
        let text = |rel: &str| {
            root.read(abs.join(rel), CAP)
                .ok()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
        };
        let release = text("include/generated/utsrelease.h")
            .and_then(|t| define_string(&t, "UTS_RELEASE"))
            .or_else(|| {
                text("include/config/kernel.release")
                    .map(|t| t.trim().to_string())
                    .filter(|r| !r.is_empty() && !r.contains(char::is_whitespace))
            });
        let config = text("include/config/auto.conf").or_else(|| text(".config"));
        if release.is_none() && config.is_none() {
            return None;
        }
        let randstruct_seed = text("include/generated/randomize_layout_hash.h")
            .and_then(|t| define_string(&t, "RANDSTRUCT_HASHED_SEED"));
        Some(Headers {
            release,
            config,
            randstruct_seed,
        })
    }

    /// `VERMAGIC_STRING` of this kernel; `None` when the release or configuration is not
    /// known or the architecture's part is not one kabi knows.
    pub fn vermagic(&self) -> Option<String> {
        vermagic(
            self.release.as_deref()?,
            self.config.as_deref()?,
            self.randstruct_seed.as_deref(),
        )
    }
}

/// The string value of `#define NAME "value"` in a C header.
pub fn define_string(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let rest = l.trim_start().strip_prefix("#define")?;
        let rest = rest.trim_start().strip_prefix(name)?;
        if !rest.starts_with([' ', '\t']) {
            return None;
        }
        let v = rest.trim().strip_prefix('"')?;
        let v = v.strip_suffix('"')?;
        (!v.contains(['"', '\\'])).then(|| v.to_string())
    })
}

/// The options set to `y` in a kconfig text (`CONFIG_X=y`).
fn enabled(config: &str) -> BTreeSet<&str> {
    config
        .lines()
        .filter_map(|l| l.trim().strip_suffix("=y"))
        .filter(|k| k.starts_with("CONFIG_") && !k.contains(char::is_whitespace))
        .collect()
}

/// x86's `MODULE_PROC_FAMILY` (arch/x86/include/asm/vermagic.h), in the header's order.
const X86_32_FAMILIES: &[(&str, &str)] = &[
    ("M486SX", "486SX "),
    ("M486", "486 "),
    ("M586", "586 "),
    ("M586TSC", "586TSC "),
    ("M586MMX", "586MMX "),
    ("MCORE2", "CORE2 "),
    ("MATOM", "ATOM "),
    ("M686", "686 "),
    ("MPENTIUMII", "PENTIUMII "),
    ("MPENTIUMIII", "PENTIUMIII "),
    ("MPENTIUMM", "PENTIUMM "),
    ("MPENTIUM4", "PENTIUM4 "),
    ("MK6", "K6 "),
    ("MK7", "K7 "),
    ("MK8", "K8 "),
    ("MELAN", "ELAN "),
    ("MCRUSOE", "CRUSOE "),
    ("MEFFICEON", "EFFICEON "),
    ("MWINCHIPC6", "WINCHIPC6 "),
    ("MWINCHIP3D", "WINCHIP3D "),
    ("MCYRIXIII", "CYRIXIII "),
    ("MVIAC3_2", "VIAC3-2 "),
    ("MVIAC7", "VIAC7 "),
    ("MGEODEGX1", "GEODEGX1 "),
    ("MGEODE_LX", "GEODE "),
];

/// `VERMAGIC_STRING` from the release and the configuration: `UTS_RELEASE " "` then `SMP `,
/// `preempt ` (`PREEMPT_BUILD`; `PREEMPT` before 5.16) or `preempt_rt `, `mod_unload `,
/// `modversions `, the architecture's part, the randstruct plugin's seed. Only x86's
/// architecture part is known: `None` on another architecture.
pub fn vermagic(release: &str, config: &str, randstruct_seed: Option<&str>) -> Option<String> {
    if release.is_empty() || release.contains(char::is_whitespace) {
        return None;
    }
    let on = enabled(config);
    let y = |name: &str| on.contains(format!("CONFIG_{name}").as_str());
    let arch = if y("X86_64") {
        ""
    } else if y("X86_32") {
        X86_32_FAMILIES
            .iter()
            .find(|(opt, _)| y(opt))
            .map(|(_, fam)| *fam)?
    } else {
        return None;
    };
    let mut s = format!("{release} ");
    if y("SMP") {
        s.push_str("SMP ");
    }
    if y("PREEMPT_BUILD") || (y("PREEMPT") && !y("PREEMPT_RT")) {
        s.push_str("preempt ");
    } else if y("PREEMPT_RT") {
        s.push_str("preempt_rt ");
    }
    if y("MODULE_UNLOAD") {
        s.push_str("mod_unload ");
    }
    if y("MODVERSIONS") {
        s.push_str("modversions ");
    }
    s.push_str(arch);
    if y("GCC_PLUGIN_RANDSTRUCT") {
        s.push_str("RANDSTRUCT_PLUGIN_");
        s.push_str(randstruct_seed?);
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defines_are_read_exactly() {
        let h = "/* x */\n#define UTS_RELEASE \"6.1.0-56-cloud-amd64\"\n";
        assert_eq!(
            define_string(h, "UTS_RELEASE").as_deref(),
            Some("6.1.0-56-cloud-amd64")
        );
        assert_eq!(define_string(h, "UTS"), None);
        assert_eq!(define_string("#define UTS_RELEASE 6", "UTS_RELEASE"), None);
        assert_eq!(
            define_string("#define UTS_RELEASE \"a\"b\"", "UTS_RELEASE"),
            None
        );
    }

    #[test]
    fn vermagic_follows_vermagic_h() {
        let cloud = "CONFIG_X86_64=y\nCONFIG_SMP=y\nCONFIG_PREEMPT_BUILD=y\nCONFIG_PREEMPT_VOLUNTARY=y\nCONFIG_MODULE_UNLOAD=y\nCONFIG_MODVERSIONS=y\n";
        assert_eq!(
            vermagic("6.1.0-56-cloud-amd64", cloud, None).as_deref(),
            Some("6.1.0-56-cloud-amd64 SMP preempt mod_unload modversions ")
        );
        let rt = "CONFIG_X86_64=y\nCONFIG_SMP=y\nCONFIG_PREEMPT_RT=y\nCONFIG_MODULE_UNLOAD=y\nCONFIG_MODVERSIONS=y\n";
        assert_eq!(
            vermagic("6.1.0-56-rt-amd64", rt, None).as_deref(),
            Some("6.1.0-56-rt-amd64 SMP preempt_rt mod_unload modversions ")
        );
        let pae = "CONFIG_X86_32=y\nCONFIG_M686=y\nCONFIG_SMP=y\nCONFIG_MODULE_UNLOAD=y\n# CONFIG_MODVERSIONS is not set\n";
        assert_eq!(
            vermagic("6.1.0-55-686-pae", pae, None).as_deref(),
            Some("6.1.0-55-686-pae SMP mod_unload 686 ")
        );
        // another architecture, a plugin seed not at hand, a bad release: not known
        assert_eq!(vermagic("6.1.0-1-arm64", "CONFIG_ARM64=y\n", None), None);
        let plugin = format!("{cloud}CONFIG_GCC_PLUGIN_RANDSTRUCT=y\n");
        assert_eq!(vermagic("6.1.0-1", &plugin, None), None);
        assert_eq!(
            vermagic("6.1.0-1", &plugin, Some("ab12")).as_deref(),
            Some("6.1.0-1 SMP preempt mod_unload modversions RANDSTRUCT_PLUGIN_ab12")
        );
        assert_eq!(vermagic("6.1 x", cloud, None), None);
    }
}
