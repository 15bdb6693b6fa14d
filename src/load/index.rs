//! A kernel's module directory as libkmod looks modules up in it: `modules.dep.bin` by name,
//! `modules.alias.bin` and `modules.symbols.bin` by wildcard, `modules.builtin.bin` and
//! `modules.builtin.alias.bin` for built-in modules. Each index is read when first needed.
//!
//! kmod reads only the binary indexes. For `kabi load` (not under the kmod names) a
//! directory without `modules.dep.bin` falls back to `modules.dep`, then to a scan of the
//! tree with the depmod code, in memory.

use crate::index::{Index, Lazy};
use crate::root::Mapped;
use std::cell::OnceCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// An index file is refused above this size.
pub const MAX_INDEX: u64 = 256 << 20;

/// One module directory.
pub struct ModuleIndex {
    /// `<root>/lib/modules/<kver>`, as kmod builds the string.
    pub dirname: String,
    /// Only the binary indexes, as kmod (no fallback).
    pub strict: bool,
    dep_bin: OnceCell<Option<Mapped>>,
    dep_text: OnceCell<HashMap<String, String>>,
    alias_bin: OnceCell<Option<Mapped>>,
    symbols_bin: OnceCell<Option<Mapped>>,
    builtin_bin: OnceCell<Option<Mapped>>,
    builtin_alias_bin: OnceCell<Option<Mapped>>,
    builtin_text: OnceCell<Vec<String>>,
}

/// A regular file of at most [`MAX_INDEX`] bytes.
pub fn read_index_file(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    let (f, len) = super::kernel::open_regular_sized(path).ok()?;
    if len > MAX_INDEX {
        return None;
    }
    let mut data = Vec::with_capacity(len as usize);
    f.take(MAX_INDEX).read_to_end(&mut data).ok()?;
    Some(data)
}

/// A binary index, mapped as libkmod maps it: a lookup reads the few nodes on its path, not
/// the whole file (the indexes are replaced by rename, by kmod's depmod and kabi's alike).
fn map_index_file(path: &Path) -> Option<Mapped> {
    let (f, len) = super::kernel::open_regular_sized(path).ok()?;
    Mapped::new(f, len, MAX_INDEX).ok()
}

impl ModuleIndex {
    pub fn new(dirname: &str, strict: bool) -> ModuleIndex {
        ModuleIndex {
            dirname: dirname.to_string(),
            strict,
            dep_bin: OnceCell::new(),
            dep_text: OnceCell::new(),
            alias_bin: OnceCell::new(),
            symbols_bin: OnceCell::new(),
            builtin_bin: OnceCell::new(),
            builtin_alias_bin: OnceCell::new(),
            builtin_text: OnceCell::new(),
        }
    }

    pub fn file(&self, name: &str) -> PathBuf {
        PathBuf::from(format!("{}/{name}", self.dirname))
    }

    /// An index read when first needed, looked up node by node as libkmod does.
    fn bin<'a>(&self, cell: &'a OnceCell<Option<Mapped>>, name: &str) -> Option<Lazy<'a>> {
        let data = cell
            .get_or_init(|| map_index_file(&self.file(name)))
            .as_ref()?;
        Lazy::open(data).ok()
    }

    /// The `modules.dep` line of a module name (`path: dep dep`), as `kmod_search_moddep`.
    pub fn dep_line(&self, name: &str) -> Option<String> {
        if let Some(idx) = self.bin(&self.dep_bin, "modules.dep.bin") {
            return idx.search(name);
        }
        if self.strict {
            return None;
        }
        self.dep_text
            .get_or_init(|| self.read_dep_text())
            .get(name)
            .cloned()
    }

    /// Without `modules.dep.bin`: `modules.dep`, else a scan of the tree.
    fn read_dep_text(&self) -> HashMap<String, String> {
        let mut out = HashMap::new();
        let mut add = |line: &str| {
            if let Some((path, _)) = line.split_once(':') {
                let name = kmod_modname(path);
                if !name.is_empty() {
                    out.entry(name).or_insert_with(|| line.to_string());
                }
            }
        };
        match read_index_file(&self.file("modules.dep")) {
            Some(text) => String::from_utf8_lossy(&text).lines().for_each(&mut add),
            None => crate::depmod::dep_lines(&self.dirname)
                .iter()
                .for_each(|l| add(l)),
        }
        out
    }

    /// Every module name the directory knows (for coldplug and tests).
    pub fn names(&self) -> Vec<String> {
        let whole = self
            .dep_bin
            .get_or_init(|| map_index_file(&self.file("modules.dep.bin")))
            .as_ref()
            .and_then(|d| Index::parse(d).ok());
        if let Some(idx) = whole {
            return idx.entries().into_iter().map(|(k, _, _)| k).collect();
        }
        if self.strict {
            return Vec::new();
        }
        let mut v: Vec<String> = self
            .dep_text
            .get_or_init(|| self.read_dep_text())
            .keys()
            .cloned()
            .collect();
        v.sort();
        v
    }

    /// `modules.alias.bin` matches of a (normalized) alias: module names in kmod's order.
    pub fn aliases(&self, alias: &str) -> Option<Vec<String>> {
        let idx = self.bin(&self.alias_bin, "modules.alias.bin")?;
        Some(idx.search_wild(alias).into_iter().map(|(v, _)| v).collect())
    }

    /// `modules.symbols.bin` matches of `symbol:NAME`.
    pub fn symbols(&self, key: &str) -> Option<Vec<String>> {
        let idx = self.bin(&self.symbols_bin, "modules.symbols.bin")?;
        Some(idx.search_wild(key).into_iter().map(|(v, _)| v).collect())
    }

    /// Is `name` listed in `modules.builtin.bin` (or `modules.builtin` for `kabi load`)?
    pub fn is_builtin(&self, name: &str) -> bool {
        if let Some(idx) = self.bin(&self.builtin_bin, "modules.builtin.bin") {
            return idx.search(name).is_some();
        }
        if self.strict {
            return false;
        }
        self.builtin_text
            .get_or_init(|| {
                read_index_file(&self.file("modules.builtin"))
                    .map(|t| {
                        String::from_utf8_lossy(&t)
                            .lines()
                            .map(kmod_modname)
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .iter()
            .any(|n| n == name)
    }

    /// `modules.builtin.alias.bin` matches of an alias.
    pub fn builtin_aliases(&self, alias: &str) -> Option<Vec<String>> {
        let idx = self.bin(&self.builtin_alias_bin, "modules.builtin.alias.bin")?;
        Some(idx.search_wild(alias).into_iter().map(|(v, _)| v).collect())
    }

    /// `(key, value)` of every entry of an index, in kmod's dump order (`modprobe -c`).
    pub fn dump(&self, name: &str) -> Vec<(String, String)> {
        let Some(data) = read_index_file(&self.file(name)) else {
            return Vec::new();
        };
        Index::parse(&data)
            .map(|i| i.entries().into_iter().map(|(k, v, _)| (k, v)).collect())
            .unwrap_or_default()
    }

    /// A path of a `modules.dep` line made absolute the way kmod joins it.
    pub fn join(&self, rel: &str) -> PathBuf {
        if rel.starts_with('/') {
            PathBuf::from(rel)
        } else {
            self.file(rel)
        }
    }
}

/// kmod's `path_to_modname` / `modname_normalize`: the base name up to its first `.`, with
/// `-` made `_`.
pub fn kmod_modname(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    base.split('.').next().unwrap_or("").replace('-', "_")
}

/// kmod's `alias_normalize`: `-` made `_` outside `[...]`; `None` for an unmatched `]` or
/// an unclosed `[`.
pub fn alias_normalize(alias: &str) -> Option<String> {
    let mut out = String::with_capacity(alias.len());
    let mut in_bracket = false;
    for c in alias.chars() {
        match c {
            '[' if !in_bracket => in_bracket = true,
            ']' if in_bracket => in_bracket = false,
            ']' => return None,
            '-' if !in_bracket => {
                out.push('_');
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    (!in_bracket).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_kmod() {
        assert_eq!(kmod_modname("kernel/fs/nls/nls-utf8.ko.xz"), "nls_utf8");
        assert_eq!(kmod_modname("/etc/passwd"), "passwd");
        assert_eq!(
            alias_normalize("pci:v[0-9]-x").as_deref(),
            Some("pci:v[0-9]_x")
        );
        assert_eq!(alias_normalize("a]"), None);
        assert_eq!(alias_normalize("a[b"), None);
    }
}
