//! Finding a module by name or alias in a module directory, as kmod's
//! `kmod_module_new_from_lookup` does: `modules.dep` (by name), `modules.alias` (fnmatch
//! patterns), then built-in modules (`modules.builtin`, `modules.builtin.modinfo`). Without a
//! `modules.dep`, the tree itself is searched for a file of that name.

use super::index::{DepScan, Hit, ModuleIndex};
use crate::module::ModinfoEntry;
use std::path::PathBuf;
use std::sync::Arc;

pub use super::index::{module_name_of, normalize, normalize_alias};

/// A module directory: `<root>/lib/modules/<kver>`, named as kmod would name it, with its
/// indexes ([`ModuleIndex`]) read inside the root.
#[derive(Clone)]
pub struct ModuleDir {
    pub dir: String,
    idx: Option<Arc<ModuleIndex>>,
}

impl std::fmt::Debug for ModuleDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ModuleDir({})", self.dir)
    }
}

/// What a name or alias resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// A module file, its path as seen from outside the root.
    File {
        name: String,
        path: PathBuf,
    },
    Builtin {
        name: String,
    },
}

impl ModuleDir {
    /// `<root>/lib/modules/<kver>`, with kmod's plain string concatenation; without a
    /// `modules.dep`, the dependencies are computed with `scan` ([`DepScan`]).
    pub fn new(root: Option<&str>, kver: &str, scan: Option<DepScan>) -> ModuleDir {
        let idx = crate::root::Root::open(root.unwrap_or("/"))
            .and_then(|r| ModuleIndex::new(&r, kver))
            .ok()
            .map(|i| match scan {
                Some(s) => i.with_scan(s),
                None => i,
            })
            .map(Arc::new);
        ModuleDir {
            dir: format!("{}/lib/modules/{}", root.unwrap_or(""), kver),
            idx,
        }
    }

    /// The indexes, when the root could be opened.
    pub fn index(&self) -> Option<&ModuleIndex> {
        self.idx.as_deref()
    }

    fn found(&self, h: Hit) -> Found {
        match h {
            Hit::File { name, rel } => Found::File {
                name,
                path: PathBuf::from(self.show(&rel)),
            },
            Hit::Builtin { name } => Found::Builtin { name },
        }
    }

    /// A `modules.dep` path as seen from outside the root.
    fn show(&self, rel: &str) -> String {
        if rel.starts_with('/') {
            match &self.idx {
                Some(i) if !i.root().is_host() => i.root().display(rel).display().to_string(),
                _ => rel.to_string(),
            }
        } else {
            format!("{}/{rel}", self.dir)
        }
    }

    /// Resolve a name or alias to the modules it means, in kmod's order.
    pub fn lookup(&self, query: &str) -> Vec<Found> {
        let Some(idx) = &self.idx else {
            return Vec::new();
        };
        if !self.indexed() {
            // no index at all: the tree itself, by file name
            if let Some(path) = self.by_name(&normalize(query)) {
                return vec![Found::File {
                    name: normalize(query),
                    path,
                }];
            }
        }
        idx.lookup(query)
            .into_iter()
            .map(|h| self.found(h))
            .collect()
    }

    /// Has the directory a `modules.dep` (text or binary)?
    fn indexed(&self) -> bool {
        self.idx.as_ref().is_some_and(|i| {
            let r = i.root();
            r.is_file(i.rel().join("modules.dep")) || r.is_file(i.rel().join("modules.dep.bin"))
        })
    }

    /// A module of this (normalized) name: from `modules.dep`, else by walking the tree.
    pub fn by_name(&self, name: &str) -> Option<PathBuf> {
        let idx = self.idx.as_ref()?;
        if self.indexed() {
            return idx.dep(name).map(|e| PathBuf::from(self.show(&e.rel)));
        }
        walk_for(idx, name)
    }

    /// `modules.builtin.modinfo` records of a built-in module (`name.key=value\0`).
    pub fn builtin_modinfo(&self, name: &str) -> Vec<ModinfoEntry> {
        self.idx
            .as_ref()
            .map(|i| i.builtin_modinfo(name))
            .unwrap_or_default()
    }
}

/// The first file (in path order) of a module name below the module directory.
fn walk_for(idx: &ModuleIndex, name: &str) -> Option<PathBuf> {
    struct Named<'a>(&'a str);
    impl crate::tree::walk::Visitor for Named<'_> {
        fn skip(&self, _: &str) -> bool {
            false
        }
        fn wants(&self, n: &str) -> bool {
            module_name_of(n).is_some_and(|m| m == self.0)
        }
    }
    let mut w = crate::tree::walk::Walk::default();
    let mut seen = Default::default();
    let shown = idx.dirname();
    crate::tree::walk::walk(
        idx.root(),
        idx.rel(),
        &shown,
        &Named(name),
        &mut seen,
        &mut w,
    )
    .ok()?;
    w.files.into_iter().map(|f| PathBuf::from(f.display)).min()
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
        let md = ModuleDir::new(Some(root), "1.0", None);
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
        let md = ModuleDir::new(Some(root), "1.0", None);
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
