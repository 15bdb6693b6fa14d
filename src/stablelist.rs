//! RHEL's kABI stablelists (`kabi_stablelist_<arch>`, formerly `kabi_whitelist_<arch>`, as
//! the `kernel-abi-stablelists` package installs them under `/lib/modules/kabi-current/`):
//! the kernel symbols Red Hat keeps stable across a release's updates. A module that uses a
//! symbol off the list may load today and break with the next errata kernel: a support
//! finding, reported beside the loader's verdict, as Red Hat's `ksc` reports it.
//!
//! Format: section headers in brackets (`[rhel9_x86_64_stablelist]`), then one symbol per
//! line, indented with a tab; `#` comments and blank lines are ignored.

use crate::error::Error;
use crate::module::Module;
use rustc_hash::FxHashSet as HashSet;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The largest list accepted (RHEL 9's x86_64 list is ~100 KB).
const MAX_LIST: u64 = 64 << 20;

/// A parsed stablelist.
#[derive(Debug, Clone, Default)]
pub struct Stablelist {
    /// Where it was read from.
    pub path: PathBuf,
    /// The section names (`rhel9_x86_64_stablelist`).
    pub sections: Vec<String>,
    pub symbols: HashSet<String>,
}

/// Why a stablelist could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ListError {
    pub line: usize,
    pub reason: String,
}

/// Parse the text of a stablelist.
pub fn parse(data: &[u8]) -> Result<(Vec<String>, HashSet<String>), ListError> {
    let text = std::str::from_utf8(data).map_err(|e| ListError {
        line: data[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1,
        reason: "not UTF-8 text".into(),
    })?;
    let mut sections = Vec::new();
    let mut symbols = HashSet::default();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let name = rest.strip_suffix(']').ok_or_else(|| ListError {
                line: i + 1,
                reason: format!("section header without ']': {line:?}"),
            })?;
            sections.push(name.to_string());
            continue;
        }
        let mut words = line.split_whitespace();
        let sym = words.next().unwrap_or_default();
        if words.next().is_some() || !sym.bytes().all(symbol_byte) {
            return Err(ListError {
                line: i + 1,
                reason: format!("not a symbol name: {line:?}"),
            });
        }
        symbols.insert(sym.to_string());
    }
    Ok((sections, symbols))
}

fn symbol_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'$'
}

/// The architecture names RHEL uses in list file names, for an ELF machine.
pub fn arch_name(machine: u16) -> Option<&'static str> {
    Some(match machine {
        62 => "x86_64",
        183 => "aarch64",
        21 => "ppc64le",
        22 => "s390x",
        _ => return None,
    })
}

impl Stablelist {
    /// Read a list file, or from a directory (`/lib/modules/kabi-current`) the list for
    /// `arch` (`kabi_stablelist_<arch>`, else `kabi_whitelist_<arch>`).
    pub fn read(path: &Path, arch: Option<&str>) -> Result<Stablelist, Error> {
        let file = if path.is_dir() {
            let arch = arch.ok_or_else(|| {
                Error::Usage(format!(
                    "{}: a directory of stablelists needs the modules' architecture",
                    path.display()
                ))
            })?;
            ["kabi_stablelist_", "kabi_whitelist_"]
                .iter()
                .map(|p| path.join(format!("{p}{arch}")))
                .find(|p| p.is_file())
                .ok_or_else(|| {
                    Error::Usage(format!(
                        "{}: no kabi_stablelist_{arch} (or kabi_whitelist_{arch}) in it",
                        path.display()
                    ))
                })?
        } else {
            path.to_path_buf()
        };
        let data = crate::sig::trust::read_regular(&file, MAX_LIST)?;
        let (sections, symbols) =
            parse(&data).map_err(|e| Error::io(&file, std::io::Error::other(e.to_string())))?;
        Ok(Stablelist {
            path: file,
            sections,
            symbols,
        })
    }

    pub fn contains(&self, sym: &str) -> bool {
        self.symbols.contains(sym)
    }
}

/// A module's use of symbols off the list.
#[derive(Debug, Clone, Serialize)]
pub struct SupportFinding {
    pub name: String,
    pub path: Option<PathBuf>,
    /// The list checked against.
    pub stablelist: PathBuf,
    /// How many kernel symbols the module uses.
    pub kernel_symbols: usize,
    /// Those not on the list, sorted, with their provider when the target kernel is known.
    pub not_on_list: Vec<OffList>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OffList {
    pub symbol: String,
    /// `vmlinux` or the providing module, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
}

impl SupportFinding {
    pub fn supported(&self) -> bool {
        self.not_on_list.is_empty()
    }
}

/// What `ksc` checks: every symbol the module needs from the kernel (undefined symbols and
/// `__versions` entries, `module_layout` aside) that no module of `set` provides, against
/// the list. `provider` names where the target kernel has a symbol.
pub fn check(
    m: &Module,
    path: Option<PathBuf>,
    list: &Stablelist,
    set: &HashSet<&str>,
    provider: &dyn Fn(&str) -> Option<String>,
) -> SupportFinding {
    let mut needed: Vec<&str> = m.undefined.iter().map(|u| u.name.as_str()).collect();
    if let crate::module::Versions::Present { entries, .. } = &m.versions {
        needed.extend(entries.iter().map(|e| e.name.as_str()));
    }
    needed.sort_unstable();
    needed.dedup();
    needed.retain(|s| *s != "module_layout" && !set.contains(s) && !s.is_empty());
    let not_on_list = needed
        .iter()
        .filter(|s| !list.contains(s))
        .map(|s| OffList {
            symbol: s.to_string(),
            provider: provider(s),
        })
        .collect();
    SupportFinding {
        name: m.name.clone(),
        path,
        stablelist: list.path.clone(),
        kernel_symbols: needed.len(),
        not_on_list,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rhel_format() {
        let (sections, syms) = parse(
            b"[rhel9_x86_64_stablelist]\n\t__alloc_pages\n\tkmalloc_caches\n\n# comment\n[more]\n  printk\n",
        )
        .unwrap();
        assert_eq!(sections, ["rhel9_x86_64_stablelist", "more"]);
        assert_eq!(syms.len(), 3);
        assert!(syms.contains("kmalloc_caches") && syms.contains("printk"));
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(parse(b"[ok]\n\ta b\n").unwrap_err().line, 2);
        assert_eq!(parse(b"[broken\n").unwrap_err().line, 1);
        assert_eq!(parse(b"\tx\n\xff\n").unwrap_err().line, 2);
        assert!(parse(b"").unwrap().1.is_empty());
    }
}
