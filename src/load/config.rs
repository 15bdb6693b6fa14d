//! modprobe.d (spec §8): `options`, `alias`, `blacklist`, `softdep`; and the kernel command
//! line's `modprobe.blacklist=`, `module.param=value`.

use crate::tree::lookup::normalize;
use std::collections::BTreeMap;
use std::path::Path;

pub const DIRS: &[&str] = &[
    "etc/modprobe.d",
    "run/modprobe.d",
    "usr/local/lib/modprobe.d",
    "usr/lib/modprobe.d",
    "lib/modprobe.d",
];

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModprobeConfig {
    /// Module name → each `options` line's text after the name (raw, as kmod keeps it), in
    /// file order; the command line's `mod.param=value` are entries too.
    pub options: BTreeMap<String, Vec<String>>,
    /// (pattern, module) in file order.
    pub aliases: Vec<(String, String)>,
    pub blacklist: Vec<String>,
    /// Module → (pre, post).
    pub softdeps: BTreeMap<String, (Vec<String>, Vec<String>)>,
}

impl ModprobeConfig {
    /// Apply one file's text.
    pub fn parse(&mut self, text: &str) {
        let mut joined = String::new();
        for raw in text.lines() {
            if let Some(head) = raw.strip_suffix('\\') {
                joined.push_str(head);
                continue;
            }
            joined.push_str(raw);
            let line = std::mem::take(&mut joined);
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let w: Vec<&str> = line.split_whitespace().collect();
            match w.as_slice() {
                ["options", m, _, ..] => {
                    // the raw remainder after the module name, inner spacing kept
                    let after = line["options".len()..].trim_start();
                    let rest = after[m.len()..].trim_start();
                    self.options
                        .entry(normalize(m))
                        .or_default()
                        .push(rest.to_string());
                }
                ["alias", pat, m, ..] => self
                    .aliases
                    .push((crate::tree::lookup::normalize_alias(pat), normalize(m))),
                ["blacklist", m, ..] => self.blacklist.push(normalize(m)),
                ["softdep", m, rest @ ..] => {
                    // as kmod: only the first softdep line of a module is used
                    if self.softdeps.contains_key(&normalize(m)) {
                        continue;
                    }
                    let e = self.softdeps.entry(normalize(m)).or_default();
                    let mut post = false;
                    for x in rest {
                        match *x {
                            "pre:" => post = false,
                            "post:" => post = true,
                            d if post => e.1.push(normalize(d)),
                            d => e.0.push(normalize(d)),
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// The `*.conf` files of the default directories under `root`, sorted by file name, the
    /// first directory's file winning for equal names (as kmod).
    pub fn load(root: &Path) -> ModprobeConfig {
        let mut files: BTreeMap<String, std::path::PathBuf> = BTreeMap::new();
        for d in DIRS {
            let Ok(rd) = std::fs::read_dir(root.join(d)) else {
                continue;
            };
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.ends_with(".conf") {
                    files.entry(name).or_insert_with(|| e.path());
                }
            }
        }
        let mut c = ModprobeConfig::default();
        for p in files.values() {
            if let Ok(t) = std::fs::read_to_string(p) {
                c.parse(&t);
            }
        }
        c
    }

    /// Add the command line: `modprobe.blacklist=a,b` and `mod.param=value` (quotes kept
    /// together as the kernel parses them).
    pub fn apply_cmdline(&mut self, cmdline: &str) {
        for word in split_cmdline(cmdline) {
            let Some((key, value)) = word.split_once('=') else {
                continue;
            };
            if key == "modprobe.blacklist" {
                self.blacklist
                    .extend(value.split(',').filter(|s| !s.is_empty()).map(normalize));
                continue;
            }
            if let Some((module, param)) = key.split_once('.') {
                if !module.is_empty() && !param.is_empty() {
                    self.options
                        .entry(normalize(module))
                        .or_default()
                        .push(format!("{param}={value}"));
                }
            }
        }
    }

    pub fn is_blacklisted(&self, name: &str) -> bool {
        self.blacklist.iter().any(|b| b == name)
    }
}

/// Words of a command line; double quotes group (and are kept, as the kernel passes them).
pub fn split_cmdline(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modprobe_d_and_cmdline() {
        let mut c = ModprobeConfig::default();
        c.parse(
            "# x\noptions dummy numdummies=3\nalias my-net dummy\nblacklist pcspkr\n\
             softdep udf pre: crc-itu-t post: nls_utf8\noptions dummy \\\n  foo=1\n",
        );
        c.apply_cmdline("root=/dev/vda quiet dummy.bar=\"a b\" modprobe.blacklist=floppy,snd-pcsp");
        assert_eq!(c.options["dummy"], ["numdummies=3", "foo=1", "bar=\"a b\""]);
        assert_eq!(c.aliases, [("my_net".to_string(), "dummy".to_string())]);
        assert!(c.is_blacklisted("pcspkr") && c.is_blacklisted("snd_pcsp"));
        assert_eq!(
            c.softdeps["udf"],
            (vec!["crc_itu_t".to_string()], vec!["nls_utf8".to_string()])
        );
    }
}
