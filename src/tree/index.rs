//! One module directory's indexes (`modules.dep`, `modules.alias`, `modules.builtin`,
//! `modules.builtin.modinfo`, `modules.softdep`, `modules.symbols`), read once each, when
//! first needed, from inside a [`Root`]; the binary indexes are looked up node by node
//! ([`Lazy`]) as libkmod does, never parsed whole. Without `modules.dep` the tree itself is
//! scanned in memory (kabi's depmod, nothing written).

use crate::glob::fnmatch;
use crate::index::Lazy;
use crate::module::{ModinfoEntry, modinfo, strip_module_ext};
use crate::root::{Root, caps};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// What a name or alias resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hit {
    /// A module file: its name and its `modules.dep` path (relative to the module
    /// directory, or absolute inside the root for an `external` directory).
    File {
        name: String,
        rel: String,
    },
    Builtin {
        name: String,
    },
}

/// One `modules.dep` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepEntry {
    pub rel: String,
    pub deps: Vec<String>,
}

/// Module name → its `pre:` and `post:` soft dependencies.
pub type Softdeps = BTreeMap<String, (Vec<String>, Vec<String>)>;

/// A module directory's indexes.
pub struct ModuleIndex {
    root: Root,
    /// How `modules.dep` is computed when the directory has none.
    scan: Option<DepScan>,
    kver: String,
    /// Inside the root.
    rel: PathBuf,
    dep_bin: OnceLock<Option<Vec<u8>>>,
    dep_text: OnceLock<BTreeMap<String, DepEntry>>,
    alias_bin: OnceLock<Option<Vec<u8>>>,
    alias_text: OnceLock<Option<String>>,
    builtin: OnceLock<Option<BTreeSet<String>>>,
    builtin_modinfo: OnceLock<Option<Vec<u8>>>,
    softdep: OnceLock<Softdeps>,
}

/// `-` and `_` are the same in module names (kmod's `modname_normalize`).
pub fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

/// `kernel/fs/udf/udf.ko.xz` → `udf` (normalized).
pub fn module_name_of(rel: &str) -> Option<String> {
    let base = rel.rsplit('/').next()?;
    Some(normalize(strip_module_ext(base)?))
}

/// Computes the `modules.dep` lines of `lib/modules/<kver>` in memory, for a directory without
/// one (what depmod would write: the depmod layer's `dep_lines_in`). The tree layer reads
/// indexes; it does not make them, so whoever builds a [`ModuleIndex`] above depmod hands it in.
pub type DepScan = fn(&Root, &str) -> Vec<String>;

impl ModuleIndex {
    /// Without `modules.dep`, compute the dependencies with `scan` (else there are none).
    pub fn with_scan(mut self, scan: DepScan) -> ModuleIndex {
        self.scan = Some(scan);
        self
    }

    /// The indexes of `lib/modules/<kver>` inside `root`.
    pub fn new(root: &Root, kver: &str) -> Result<ModuleIndex, crate::Error> {
        super::check_release(kver).map_err(crate::Error::Usage)?;
        Ok(ModuleIndex {
            root: root.try_clone()?,
            scan: None,
            kver: kver.to_string(),
            rel: Path::new("lib/modules").join(kver),
            dep_bin: OnceLock::new(),
            dep_text: OnceLock::new(),
            alias_bin: OnceLock::new(),
            alias_text: OnceLock::new(),
            builtin: OnceLock::new(),
            builtin_modinfo: OnceLock::new(),
            softdep: OnceLock::new(),
        })
    }

    pub fn root(&self) -> &Root {
        &self.root
    }

    pub fn kver(&self) -> &str {
        &self.kver
    }

    /// The module directory inside the root.
    pub fn rel(&self) -> &Path {
        &self.rel
    }

    /// The module directory as kmod names it: `<root>/lib/modules/<kver>`.
    pub fn dirname(&self) -> String {
        let r = self.root.path().to_string_lossy();
        format!(
            "{}/lib/modules/{}",
            if self.root.is_host() {
                ""
            } else {
                r.trim_end_matches('/')
            },
            self.kver
        )
    }

    /// A `modules.dep` path as a path inside the root.
    pub fn path(&self, rel: &str) -> PathBuf {
        if rel.starts_with('/') {
            PathBuf::from(rel)
        } else {
            Path::new("/").join(&self.rel).join(rel)
        }
    }

    /// A `modules.dep` path as seen from outside the root (what kmod prints).
    pub fn display(&self, rel: &str) -> String {
        if rel.starts_with('/') {
            rel.to_string()
        } else {
            format!("{}/{rel}", self.dirname())
        }
    }

    fn file(&self, name: &str) -> Option<Vec<u8>> {
        self.root.read(self.rel.join(name), caps::INDEX).ok()
    }

    /// The `modules.dep` entry of a (normalized) module name: from `modules.dep.bin`, else
    /// `modules.dep`, else a scan of the tree in memory.
    pub fn dep(&self, name: &str) -> Option<DepEntry> {
        if let Some(bin) = self.dep_bin.get_or_init(|| self.file("modules.dep.bin"))
            && let Ok(idx) = Lazy::open(bin)
        {
            return idx.search(name).and_then(|line| parse_dep_line(&line));
        }
        self.dep_text().get(name).cloned()
    }

    /// Every `modules.dep` entry (the text file, or the tree scanned in memory).
    pub fn dep_text(&self) -> &BTreeMap<String, DepEntry> {
        self.dep_text.get_or_init(|| {
            let lines: Vec<String> = match self.file("modules.dep") {
                Some(t) => String::from_utf8_lossy(&t)
                    .lines()
                    .map(str::to_string)
                    .collect(),
                None => self
                    .scan
                    .map(|scan| scan(&self.root, &self.kver))
                    .unwrap_or_default(),
            };
            lines
                .iter()
                .filter_map(|l| {
                    let e = parse_dep_line(l)?;
                    Some((module_name_of(&e.rel)?, e))
                })
                .collect()
        })
    }

    /// Modules whose alias patterns match `alias` (normalized), in kmod's order:
    /// `modules.alias.bin`, else `modules.alias`.
    pub fn aliases(&self, alias: &str) -> Vec<String> {
        if let Some(bin) = self
            .alias_bin
            .get_or_init(|| self.file("modules.alias.bin"))
            && let Ok(idx) = Lazy::open(bin)
        {
            return idx.search_wild(alias).into_iter().map(|(v, _)| v).collect();
        }
        let Some(text) = self.alias_text.get_or_init(|| {
            self.file("modules.alias")
                .map(|t| String::from_utf8_lossy(&t).into_owned())
        }) else {
            return Vec::new();
        };
        let mut out: Vec<String> = Vec::new();
        for line in text.lines() {
            let mut it = line.split_whitespace();
            let (Some("alias"), Some(pat), Some(module)) = (it.next(), it.next(), it.next()) else {
                continue;
            };
            // depmod writes patterns raw here but normalized into modules.alias.bin, the
            // index kmod's lookups read: compare normalized with normalized
            if fnmatch(normalize_alias(pat).as_bytes(), alias.as_bytes()) {
                let m = normalize(module);
                if !out.contains(&m) {
                    out.push(m);
                }
            }
        }
        out
    }

    /// Is this (normalized) name a built-in module?
    pub fn is_builtin(&self, name: &str) -> bool {
        let listed = self.builtin.get_or_init(|| {
            self.file("modules.builtin").map(|t| {
                String::from_utf8_lossy(&t)
                    .lines()
                    .filter_map(module_name_of)
                    .collect()
            })
        });
        match listed {
            Some(set) => set.contains(name),
            None => !self.builtin_modinfo(name).is_empty(),
        }
    }

    fn builtin_modinfo_data(&self) -> Option<&Vec<u8>> {
        self.builtin_modinfo
            .get_or_init(|| self.file("modules.builtin.modinfo"))
            .as_ref()
    }

    /// Built-in modules with a matching `alias=` in `modules.builtin.modinfo`.
    pub fn builtin_aliases(&self, alias: &str) -> Vec<String> {
        let Some(data) = self.builtin_modinfo_data() else {
            return Vec::new();
        };
        let mut out: Vec<String> = Vec::new();
        for rec in modinfo::parse(data) {
            let Some(module) = rec.key.strip_suffix(b".alias") else {
                continue;
            };
            let pattern = normalize_alias(&String::from_utf8_lossy(&rec.value));
            if fnmatch(pattern.as_bytes(), alias.as_bytes()) {
                let name = normalize(&String::from_utf8_lossy(module));
                if !out.contains(&name) {
                    out.push(name);
                }
            }
        }
        out
    }

    /// `modules.builtin.modinfo` records of a built-in module (`name.key=value\0`).
    pub fn builtin_modinfo(&self, name: &str) -> Vec<ModinfoEntry> {
        let Some(data) = self.builtin_modinfo_data() else {
            return Vec::new();
        };
        let prefix = format!("{name}.");
        modinfo::parse(data)
            .into_iter()
            .filter_map(|rec| {
                // modinfo::parse split at '=', so the module prefix is in the key
                Some(ModinfoEntry {
                    key: rec.key.strip_prefix(prefix.as_bytes())?.to_vec(),
                    value: rec.value,
                })
            })
            .collect()
    }

    /// `modules.softdep`: the `pre:` and `post:` soft dependencies of a module.
    pub fn softdep(&self, name: &str) -> Option<&(Vec<String>, Vec<String>)> {
        self.softdep
            .get_or_init(|| {
                let Some(text) = self.file("modules.softdep") else {
                    return BTreeMap::new();
                };
                parse_softdeps(&String::from_utf8_lossy(&text))
            })
            .get(name)
    }

    /// A name or alias resolved as kmod's `kmod_module_new_from_lookup` does: a module
    /// name, then alias patterns, then a built-in module, then built-in aliases.
    pub fn lookup(&self, query: &str) -> Vec<Hit> {
        let name = normalize(query);
        if let Some(e) = self.dep(&name) {
            return vec![Hit::File { name, rel: e.rel }];
        }
        let alias = normalize_alias(query);
        let mut hits: Vec<Hit> = Vec::new();
        for m in self.aliases(&alias) {
            if hits
                .iter()
                .any(|h| matches!(h, Hit::File { name, .. } if *name == m))
            {
                continue;
            }
            if let Some(e) = self.dep(&m) {
                hits.push(Hit::File {
                    name: m,
                    rel: e.rel,
                });
            }
        }
        if !hits.is_empty() {
            return hits;
        }
        if self.is_builtin(&name) {
            return vec![Hit::Builtin { name }];
        }
        self.builtin_aliases(&alias)
            .into_iter()
            .map(|name| Hit::Builtin { name })
            .collect()
    }
}

/// `path: dep dep ...`.
pub fn parse_dep_line(line: &str) -> Option<DepEntry> {
    let (rel, rest) = line.split_once(':')?;
    Some(DepEntry {
        rel: rel.to_string(),
        deps: rest.split_whitespace().map(str::to_string).collect(),
    })
}

/// `softdep NAME pre: A B post: C` lines.
pub fn parse_softdeps(text: &str) -> Softdeps {
    let mut out = Softdeps::new();
    for line in text.lines() {
        let mut w = line.split_whitespace();
        if w.next() != Some("softdep") {
            continue;
        }
        let Some(name) = w.next() else { continue };
        let e = out.entry(normalize(name)).or_default();
        let mut post = false;
        for word in w {
            match word {
                "pre:" => post = false,
                "post:" => post = true,
                m if post => e.1.push(m.to_string()),
                m => e.0.push(m.to_string()),
            }
        }
    }
    out
}

/// kmod's `alias_normalize`: `-` becomes `_` except inside `[...]`.
pub fn normalize_alias(alias: &str) -> String {
    let mut out = String::with_capacity(alias.len());
    let mut in_bracket = false;
    for c in alias.chars() {
        match c {
            '[' => in_bracket = true,
            ']' => in_bracket = false,
            '-' if !in_bracket => {
                out.push('_');
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    out
}
