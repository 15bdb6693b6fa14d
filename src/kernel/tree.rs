//! A kernel's own module tree as an ABI source: the exports of its `.ko` files.

use super::abi::KernelSymbol;
use crate::module::Module;
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// Every module file (`.ko`, `.ko.xz`, `.ko.zst`, `.ko.gz`) below `dir`, sorted.
pub fn module_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(p),
                Ok(t)
                    if (t.is_file() || t.is_symlink())
                        && p.file_name()
                            .and_then(|n| n.to_str())
                            .and_then(crate::module::strip_module_ext)
                            .is_some() =>
                {
                    out.push(p);
                }
                _ => {}
            }
        }
    }
    out.sort();
    out
}

/// Parse every module below `dir` in parallel; bad files come back as errors, in order.
pub fn parse_all(files: &[PathBuf]) -> Vec<Result<Module, crate::Error>> {
    files.par_iter().map(Module::open).collect()
}

/// The owner column Module.symvers would give a module file below `dir`:
/// `drivers/cdrom/cdrom` for `<dir>/kernel/drivers/cdrom/cdrom.ko`.
pub fn owner_of(dir: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(dir).unwrap_or(file);
    let mut parts = rel.components();
    if rel.components().count() > 1 {
        parts.next(); // kernel/, extra/, updates/ ...
    }
    let s = parts.as_path().to_string_lossy();
    crate::module::strip_module_ext(&s)
        .unwrap_or(&s)
        .to_string()
}

/// The exports of one parsed module as kernel symbols.
pub fn exports_of(m: &Module, owner: &str) -> Vec<KernelSymbol> {
    m.exports
        .iter()
        .map(|e| KernelSymbol {
            name: e.name.clone(),
            crc: e.crc,
            kind: e.kind,
            namespace: e.namespace.clone(),
            owner: owner.to_string(),
        })
        .collect()
}
