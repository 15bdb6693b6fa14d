//! Finding a module by name or alias in a module directory, as kmod's
//! `kmod_module_new_from_lookup` does: `modules.dep` (by name), `modules.alias` (fnmatch
//! patterns), then built-in modules (`modules.builtin`, `modules.builtin.modinfo`). Without a
//! `modules.dep`, the tree itself is searched for a file of that name.

use crate::glob::fnmatch;
use crate::module::{ModinfoEntry, modinfo, strip_module_ext};
use std::path::{Path, PathBuf};

/// A module directory: `<root>/lib/modules/<kver>`, kept as the string kmod would build.
#[derive(Debug, Clone)]
pub struct ModuleDir {
    pub dir: String,
}

/// What a name or alias resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    File { name: String, path: PathBuf },
    Builtin { name: String },
}

/// `-` and `_` are the same in module names (kmod's `modname_normalize`).
pub fn normalize(name: &str) -> String {
    name.replace('-', "_")
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

impl ModuleDir {
    /// `<root>/lib/modules/<kver>`, with kmod's plain string concatenation.
    pub fn new(root: Option<&str>, kver: &str) -> ModuleDir {
        ModuleDir {
            dir: format!("{}/lib/modules/{}", root.unwrap_or(""), kver),
        }
    }

    fn file(&self, name: &str) -> PathBuf {
        PathBuf::from(format!("{}/{}", self.dir, name))
    }

    fn module_path(&self, rel: &str) -> PathBuf {
        if rel.starts_with('/') {
            PathBuf::from(rel)
        } else {
            self.file(rel)
        }
    }

    /// Resolve a name or alias to the modules it means, in kmod's order.
    pub fn lookup(&self, query: &str) -> Vec<Found> {
        let name = normalize(query);
        if let Some(path) = self.by_name(&name) {
            return vec![Found::File { name, path }];
        }
        let alias = normalize_alias(query);
        let by_alias = self.by_alias(&alias);
        if !by_alias.is_empty() {
            return by_alias;
        }
        if self.is_builtin(&name) {
            return vec![Found::Builtin { name }];
        }
        self.by_builtin_alias(&alias)
    }

    /// Built-in modules with a matching `alias=` in `modules.builtin.modinfo` (what depmod
    /// indexes as `modules.builtin.alias.bin`).
    fn by_builtin_alias(&self, alias: &str) -> Vec<Found> {
        let Ok(data) = std::fs::read(self.file("modules.builtin.modinfo")) else {
            return Vec::new();
        };
        let mut out: Vec<Found> = Vec::new();
        for rec in modinfo::parse(&data) {
            let Some(module) = rec.key.strip_suffix(b".alias") else {
                continue;
            };
            let pattern = normalize_alias(&String::from_utf8_lossy(&rec.value));
            if !fnmatch(pattern.as_bytes(), alias.as_bytes()) {
                continue;
            }
            let name = normalize(&String::from_utf8_lossy(module));
            if !out
                .iter()
                .any(|f| matches!(f, Found::Builtin { name: n } if *n == name))
            {
                out.push(Found::Builtin { name });
            }
        }
        out
    }

    /// A module of this (normalized) name: from `modules.dep`, else by walking the tree.
    pub fn by_name(&self, name: &str) -> Option<PathBuf> {
        match std::fs::read_to_string(self.file("modules.dep")) {
            Ok(dep) => dep.lines().find_map(|line| {
                let rel = line.split_once(':')?.0;
                (module_name_of(rel)? == name).then(|| self.module_path(rel))
            }),
            Err(_) => walk_for(Path::new(&self.dir), name),
        }
    }

    fn by_alias(&self, alias: &str) -> Vec<Found> {
        let Ok(text) = std::fs::read_to_string(self.file("modules.alias")) else {
            return Vec::new();
        };
        let mut out: Vec<Found> = Vec::new();
        for line in text.lines() {
            let mut it = line.split_whitespace();
            let (Some("alias"), Some(pat), Some(module)) = (it.next(), it.next(), it.next()) else {
                continue;
            };
            // depmod writes patterns raw here but normalized into modules.alias.bin, the
            // index kmod's lookups read: compare normalized with normalized
            if !fnmatch(normalize_alias(pat).as_bytes(), alias.as_bytes()) {
                continue;
            }
            let module = normalize(module);
            if out
                .iter()
                .any(|f| matches!(f, Found::File { name, .. } if *name == module))
            {
                continue;
            }
            if let Some(path) = self.by_name(&module) {
                out.push(Found::File { name: module, path });
            }
        }
        out
    }

    fn is_builtin(&self, name: &str) -> bool {
        if let Ok(text) = std::fs::read_to_string(self.file("modules.builtin")) {
            return text.lines().filter_map(module_name_of).any(|n| n == name);
        }
        !self.builtin_modinfo(name).is_empty()
    }

    /// `modules.builtin.modinfo` records of a built-in module (`name.key=value\0`).
    pub fn builtin_modinfo(&self, name: &str) -> Vec<ModinfoEntry> {
        let Ok(data) = std::fs::read(self.file("modules.builtin.modinfo")) else {
            return Vec::new();
        };
        let prefix = format!("{name}.");
        let mut out = Vec::new();
        for rec in modinfo::parse(&data) {
            // modinfo::parse split at '=', so the module prefix is in the key
            if let Some(key) = rec.key.strip_prefix(prefix.as_bytes()) {
                out.push(ModinfoEntry {
                    key: key.to_vec(),
                    value: rec.value,
                });
            }
        }
        out
    }
}

/// `kernel/fs/udf/udf.ko.xz` → `udf` (normalized).
pub fn module_name_of(rel: &str) -> Option<String> {
    let base = rel.rsplit('/').next()?;
    Some(normalize(strip_module_ext(base)?))
}

fn walk_for(dir: &Path, name: &str) -> Option<PathBuf> {
    let mut stack = vec![dir.to_path_buf()];
    let mut found: Vec<PathBuf> = Vec::new();
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            let p = e.path();
            if ft.is_dir() {
                stack.push(p);
            } else if e
                .file_name()
                .to_str()
                .and_then(module_name_of)
                .is_some_and(|n| n == name)
            {
                found.push(p);
            }
        }
    }
    found.sort();
    found.into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases_normalize() {
        assert_eq!(normalize("crc-itu-t"), "crc_itu_t");
        assert_eq!(normalize_alias("fs-udf"), "fs_udf");
        assert_eq!(normalize_alias("pci:v[a-f]-x"), "pci:v[a-f]_x");
        assert_eq!(
            module_name_of("kernel/lib/crc-itu-t.ko.zst").as_deref(),
            Some("crc_itu_t")
        );
        assert_eq!(module_name_of("kernel/lib/README"), None);
    }

    #[test]
    fn finds_in_a_tree_without_indexes() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_str().unwrap();
        let d = tmp.path().join("lib/modules/1.0/kernel/fs");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("my-fs.ko.xz"), b"x").unwrap();
        let md = ModuleDir::new(Some(root), "1.0");
        assert_eq!(
            md.lookup("my_fs"),
            vec![Found::File {
                name: "my_fs".into(),
                path: d.join("my-fs.ko.xz")
            }]
        );
        assert!(md.lookup("other").is_empty());
    }

    #[test]
    fn alias_and_builtin_files() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_str().unwrap();
        let d = tmp.path().join("lib/modules/1.0");
        std::fs::create_dir_all(d.join("kernel")).unwrap();
        std::fs::write(d.join("kernel/udf.ko"), b"x").unwrap();
        std::fs::write(d.join("modules.dep"), "kernel/udf.ko: kernel/cdrom.ko\n").unwrap();
        std::fs::write(
            d.join("modules.alias"),
            "alias fs-udf udf\nalias pci:v*d1* udf\n",
        )
        .unwrap();
        std::fs::write(d.join("modules.builtin"), "kernel/fs/ext4/ext4.ko\n").unwrap();
        std::fs::write(
            d.join("modules.builtin.modinfo"),
            b"ext4.license=GPL\0ext4.alias=fs-ext4\0xfs.license=GPL\0",
        )
        .unwrap();
        let md = ModuleDir::new(Some(root), "1.0");
        let udf = Found::File {
            name: "udf".into(),
            path: PathBuf::from(format!("{root}/lib/modules/1.0/kernel/udf.ko")),
        };
        assert_eq!(md.lookup("fs-udf"), vec![udf.clone()]);
        assert_eq!(md.lookup("pci:v1d1x"), vec![udf]);
        assert_eq!(
            md.lookup("ext4"),
            vec![Found::Builtin {
                name: "ext4".into()
            }]
        );
        let info = md.builtin_modinfo("ext4");
        assert_eq!(info.len(), 2);
        assert_eq!(info[1].value, b"fs-ext4");
    }
}
