//! The files depmod writes, rendered byte for byte as kmod 30 writes them (its `output_*`
//! functions), plus `modules.weakdep` as kmod 33 writes it.

use super::graph::{Graph, Message, ModuleIn};
use super::scan::InfoKey;
use crate::index::{IndexBuilder, SortedIndex};
use std::io::Write;

/// kmod's `alias_normalize`: `-` becomes `_` outside `[...]`; `None` for an unmatched
/// bracket.
pub fn alias_normalize(alias: &str) -> Option<std::borrow::Cow<'_, str>> {
    // most aliases have nothing to change: borrowed, no copy
    if !needs_normalizing(alias) {
        return Some(std::borrow::Cow::Borrowed(alias));
    }
    let mut out = String::with_capacity(alias.len());
    let mut chars = alias.chars();
    while let Some(c) = chars.next() {
        match c {
            '-' => out.push('_'),
            ']' => return None,
            '[' => {
                out.push('[');
                loop {
                    match chars.next() {
                        Some(']') => {
                            out.push(']');
                            break;
                        }
                        Some(c) => out.push(c),
                        None => return None,
                    }
                }
            }
            c => out.push(c),
        }
    }
    Some(std::borrow::Cow::Owned(out))
}

/// Whether [`alias_normalize`] has anything to change or refuse in `alias` (a byte loop:
/// a `char` pattern decodes each character).
fn needs_normalizing(alias: &str) -> bool {
    alias.bytes().any(|b| matches!(b, b'-' | b'[' | b']'))
}

/// kmod's `modname_normalize` of a path's base name: up to the first `.`, `-` as `_`.
pub fn path_to_modname(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    base.split('.').next().unwrap_or("").replace('-', "_")
}

/// Everything the indexes are made of, computed once from the graph.
pub struct Outputs<'g> {
    g: &'g Graph,
    /// Each module's `modules.dep` line (without newline): its path, then all transitive
    /// dependencies sorted by topological index.
    dep_lines: Vec<String>,
}

impl<'g> Outputs<'g> {
    pub fn new(g: &'g Graph) -> Self {
        use rayon::prelude::*;
        // dependencies have a larger topological index than their users: compute those first
        let mut by_sort: Vec<usize> = (0..g.mods.len()).collect();
        by_sort.sort_by_key(|&i| std::cmp::Reverse(g.dep_sort[i]));
        let mut closure: Vec<Vec<usize>> = vec![Vec::new(); g.mods.len()];
        let mut seen = vec![usize::MAX; g.mods.len()];
        for &m in &by_sort {
            let mut all = Vec::new();
            for &d in &g.deps[m] {
                for &x in std::iter::once(&d).chain(closure[d].iter()) {
                    if seen[x] != m {
                        seen[x] = m;
                        all.push(x);
                    }
                }
            }
            all.sort_by_key(|&x| g.dep_sort[x]);
            closure[m] = all;
        }
        let dep_lines = (0..g.mods.len())
            .into_par_iter()
            .map(|i| {
                let m = &g.mods[i];
                let mut line = String::with_capacity(64 * (1 + closure[i].len()));
                line.push_str(m.dep_path());
                line.push(':');
                for &d in &closure[i] {
                    line.push(' ');
                    line.push_str(g.mods[d].dep_path());
                }
                line
            })
            .collect();
        Outputs { g, dep_lines }
    }

    /// The files made from the module array alone.
    pub fn mod_files(&self) -> ModFiles<'g> {
        ModFiles::new(&self.g.mods)
    }

    /// Each module's `modules.dep` line, in module order.
    pub fn dep_lines(&self) -> &[String] {
        &self.dep_lines
    }

    pub fn modules_dep(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.dep_lines.iter().map(|l| l.len() + 1).sum());
        for l in &self.dep_lines {
            out.extend_from_slice(l.as_bytes());
            out.push(b'\n');
        }
        out
    }

    pub fn modules_dep_bin(&self, warn_dups: bool, msgs: &mut Vec<Message>) -> Vec<u8> {
        let mut idx = Idx::new(warn_dups, self.g.mods.len());
        for (i, m) in self.g.mods.iter().enumerate() {
            let line = &self.dep_lines[i];
            if insert(&mut idx, &m.name, line, i as u32, msgs) && warn_dups {
                msgs.push(Message::Warning(format!("duplicate module deps:\n{line}")));
            }
        }
        write_index(idx, "modules.dep.bin", msgs)
    }

    pub fn modules_symbols(&self) -> Vec<u8> {
        Self::symbols_text(self.g)
    }

    pub fn modules_symbols_bin(&self, warn_dups: bool, msgs: &mut Vec<Message>) -> Vec<u8> {
        Self::symbols_bin(self.g, warn_dups, msgs)
    }

    /// `modules.symbols` (no `modules.dep` line needed).
    pub fn symbols_text(g: &Graph) -> Vec<u8> {
        let mut out = b"# Aliases for symbols, used by symbol_request().\n".to_vec();
        for (name, owner) in g.symbols() {
            line(&mut out, &["alias symbol:", name, " ", &g.mods[owner].name]);
        }
        out
    }

    /// `modules.symbols.bin` (no `modules.dep` line needed).
    pub fn symbols_bin(g: &Graph, warn_dups: bool, msgs: &mut Vec<Message>) -> Vec<u8> {
        const PREFIX: &str = "symbol:";
        // every key in one text, then the index borrows them from it (symbol names are
        // about 20 bytes: the text grows a few times at most)
        let mut keys = String::with_capacity(g.symbols().len() * (PREFIX.len() + 24));
        for (name, _) in g.symbols() {
            keys.push_str(PREFIX);
            keys.push_str(name);
        }
        let mut idx = Idx::new(warn_dups, g.symbols().len());
        let mut at = 0;
        for (name, owner) in g.symbols() {
            let alias = &keys[at..at + PREFIX.len() + name.len()];
            at += alias.len();
            let modname = &g.mods[owner].name;
            if insert(&mut idx, alias, modname, owner as u32, msgs) && warn_dups {
                msgs.push(Message::Warning(format!(
                    "duplicate module syms:\n{alias} {modname}"
                )));
            }
        }
        write_index(idx, "modules.symbols.bin", msgs)
    }
}

/// The files made from the module array alone (its order and each module's record): they
/// need no dependency graph, so they can be rendered while it is computed.
pub struct ModFiles<'m> {
    mods: &'m [ModuleIn],
}

impl<'m> ModFiles<'m> {
    pub fn new(mods: &'m [ModuleIn]) -> Self {
        ModFiles { mods }
    }

    fn info(&self, key: InfoKey) -> impl Iterator<Item = (usize, &str)> {
        self.mods.iter().enumerate().flat_map(move |(i, m)| {
            m.record
                .info()
                .filter(move |(k, _)| *k == key)
                .map(move |(_, v)| (i, v))
        })
    }

    pub fn modules_alias(&self) -> Vec<u8> {
        let mut out = b"# Aliases extracted from modules themselves.\n".to_vec();
        for (i, v) in self.info(InfoKey::Alias) {
            line(&mut out, &["alias ", v, " ", &self.mods[i].name]);
        }
        out
    }

    pub fn modules_alias_bin(&self, warn_dups: bool, msgs: &mut Vec<Message>) -> Vec<u8> {
        // the few aliases normalization changes (or refuses), made first and kept by their
        // place among the aliases: the index borrows its keys; the rest are the records' own
        // text
        // (and counted on the way: the index is made for all of them)
        let mut count = 0;
        let changed: Vec<(usize, Option<std::borrow::Cow<str>>)> = self
            .info(InfoKey::Alias)
            .inspect(|_| count += 1)
            .enumerate()
            .filter(|(_, (_, v))| needs_normalizing(v))
            .map(|(at, (_, v))| (at, alias_normalize(v)))
            .collect();
        let mut changed = changed.iter().peekable();
        let mut idx = Idx::new(warn_dups, count);
        for (at, (i, v)) in self.info(InfoKey::Alias).enumerate() {
            let alias = match changed.next_if(|(c, _)| *c == at) {
                None => v,
                Some((_, Some(a))) => a,
                Some((_, None)) => {
                    msgs.push(Message::Warning(format!("Unmatched bracket in {v}")));
                    continue;
                }
            };
            let name = &self.mods[i].name;
            if insert(&mut idx, alias, name, i as u32, msgs) && warn_dups {
                msgs.push(Message::Warning(format!(
                    "duplicate module alias:\n{alias} {name}"
                )));
            }
        }
        write_index(idx, "modules.alias.bin", msgs)
    }

    pub fn modules_softdep(&self) -> Vec<u8> {
        let mut out = b"# Soft dependencies extracted from modules themselves.\n".to_vec();
        for (i, v) in self.info(InfoKey::Softdep) {
            line(&mut out, &["softdep ", &self.mods[i].name, " ", v]);
        }
        out
    }

    /// As kmod 33 writes it; kmod 30 writes no such file.
    pub fn modules_weakdep(&self) -> Vec<u8> {
        let mut out = b"# Weak dependencies extracted from modules themselves.\n".to_vec();
        for (i, v) in self.info(InfoKey::Weakdep) {
            line(&mut out, &["weakdep ", &self.mods[i].name, " ", v]);
        }
        out
    }

    pub fn has_weakdeps(&self) -> bool {
        self.info(InfoKey::Weakdep).next().is_some()
    }

    pub fn modules_devname(&self, msgs: &mut Vec<Message>) -> Vec<u8> {
        let mut out = Vec::new();
        for m in self.mods {
            let mut devname: Option<&str> = None;
            let mut dev: Option<(char, u32, u32)> = None;
            for (k, v) in m.record.info() {
                if k != InfoKey::Alias {
                    continue;
                }
                if let Some(d) = v.strip_prefix("devname:") {
                    devname = Some(d);
                } else if let Some(mm) = scan_major_minor(v, "char-major-") {
                    dev = Some(('c', mm.0, mm.1));
                } else if let Some(mm) = scan_major_minor(v, "block-major-") {
                    dev = Some(('b', mm.0, mm.1));
                }
                if dev.is_some() && devname.is_some() {
                    break;
                }
            }
            let Some(devname) = devname else { continue };
            match dev {
                Some((t, major, minor)) => {
                    if out.is_empty() {
                        out.extend_from_slice(
                            b"# Device nodes to trigger on-demand module loading.\n",
                        );
                    }
                    let _ = writeln!(out, "{} {devname} {t}{major}:{minor}", m.name);
                }
                None => msgs.push(Message::Error(format!(
                    "Module '{}' has devname ({devname}) but lacks major and minor information. Ignoring.",
                    m.name
                ))),
            }
        }
        out
    }
}

/// Append the pieces and a newline.
fn line(out: &mut Vec<u8>, pieces: &[&str]) {
    for p in pieces {
        out.extend_from_slice(p.as_bytes());
    }
    out.push(b'\n');
}

/// `sscanf(value, "char-major-%u-%u", ...) == 2`: two unsigned numbers after the prefix
/// (leading whitespace and a sign allowed by `%u`; anything may follow the second).
fn scan_major_minor(value: &str, prefix: &str) -> Option<(u32, u32)> {
    let rest = value.strip_prefix(prefix)?;
    let (major, rest) = scan_u(rest)?;
    let rest = rest.strip_prefix('-')?;
    let (minor, _) = scan_u(rest)?;
    Some((major, minor))
}

/// C's `%u`: optional white space, optional sign, digits; wraps modulo 2^32 like glibc's
/// `strtoul` result stored into an `unsigned int`.
fn scan_u(s: &str) -> Option<(u32, &str)> {
    let s = s.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (neg, s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let mut v: u64 = 0;
    for b in s[..digits].bytes() {
        v = v.saturating_mul(10).saturating_add((b - b'0') as u64);
    }
    let v = if v > u32::MAX as u64 {
        u32::MAX
    } else {
        v as u32
    };
    Some((if neg { v.wrapping_neg() } else { v }, &s[digits..]))
}

/// An index being made: its entries sorted and written at once ([`SortedIndex`]), or, when
/// duplicates are to be told as they are inserted (`-w`), kmod's trie grown key by key
/// ([`IndexBuilder`]). The same bytes either way.
enum Idx<'a> {
    Sorted(SortedIndex<'a>),
    Trie(IndexBuilder),
}

impl Idx<'_> {
    /// An index for about `n` entries.
    fn new(warn_dups: bool, n: usize) -> Self {
        match warn_dups {
            true => Idx::Trie(IndexBuilder::new()),
            false => Idx::Sorted(SortedIndex::with_capacity(n)),
        }
    }
}

/// Add an entry (a refused one is an error message); whether it duplicates one (told only
/// by an index made for `-w`).
fn insert<'a>(
    idx: &mut Idx<'a>,
    key: &'a str,
    value: &'a str,
    prio: u32,
    msgs: &mut Vec<Message>,
) -> bool {
    let added = match idx {
        Idx::Trie(t) => t.insert_reporting(key, value, prio),
        Idx::Sorted(s) => s.insert(key, value, prio).map(|()| false),
    };
    added.unwrap_or_else(|e| {
        msgs.push(Message::Error(e.to_string()));
        false
    })
}

fn write_index(idx: Idx, name: &str, msgs: &mut Vec<Message>) -> Vec<u8> {
    let written = match idx {
        Idx::Trie(t) => t.try_write(),
        Idx::Sorted(mut s) => s.try_write(),
    };
    written.unwrap_or_else(|e| {
        msgs.push(Message::Error(format!("{name}: {e}")));
        Vec::new()
    })
}

/// `modules.builtin.bin` from the text of `modules.builtin`.
pub fn builtin_bin(text: &[u8], msgs: &mut Vec<Message>) -> Vec<u8> {
    // each line's module name (or the line refused), made first: the index borrows them
    let names: Vec<Result<String, String>> = text
        .split_inclusive(|&b| b == b'\n')
        .map(|line| {
            let line = String::from_utf8_lossy(line);
            let line = line.trim_end_matches('\n');
            match line.as_bytes().first().is_some_and(u8::is_ascii_alphabetic) {
                true => Ok(path_to_modname(line)),
                false => Err(line.to_string()),
            }
        })
        .collect();
    let mut idx = Idx::new(false, names.len());
    for name in &names {
        match name {
            Ok(name) => {
                insert(&mut idx, name, "", 0, msgs);
            }
            Err(line) => msgs.push(Message::Error(format!(
                "Invalid modules.builtin line: {line}"
            ))),
        }
    }
    write_index(idx, "modules.builtin.bin", msgs)
}

/// `modules.builtin.alias.bin` from `modules.builtin.modinfo` (`name.key=value\0` records).
pub fn builtin_alias_bin(modinfo: &[u8], msgs: &mut Vec<Message>) -> Vec<u8> {
    let recs: Vec<&[u8]> = modinfo.split(|&b| b == 0).collect();
    // the last piece is not NUL-terminated: kmod drops it. Each alias record's module
    // name and normalized alias (or the alias refused), made first: the index borrows them
    let aliases: Vec<(String, Result<String, String>)> = recs[..recs.len() - 1]
        .iter()
        .filter_map(|rec| {
            let rec = String::from_utf8_lossy(rec);
            let (name, rest) = rec.split_once('.')?;
            let (key, value) = rest.split_once('=')?;
            if name.is_empty() || key != "alias" || value.is_empty() {
                return None;
            }
            let alias = alias_normalize(value)
                .map(std::borrow::Cow::into_owned)
                .ok_or_else(|| value.to_string());
            Some((name.to_string(), alias))
        })
        .collect();
    let mut idx = Idx::new(false, aliases.len());
    for (name, alias) in &aliases {
        match alias {
            Ok(alias) => {
                insert(&mut idx, alias, name, 0, msgs);
            }
            Err(value) => msgs.push(Message::Warning(format!("Unmatched bracket in {value}"))),
        }
    }
    write_index(idx, "modules.builtin.alias.bin", msgs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_normalization_is_kmods() {
        assert_eq!(
            alias_normalize("pci:v*d*sv*sd*bc0[1-2]sc*").unwrap(),
            "pci:v*d*sv*sd*bc0[1-2]sc*"
        );
        assert_eq!(alias_normalize("fs-udf").unwrap(), "fs_udf");
        assert_eq!(alias_normalize("a[b-c"), None);
        assert_eq!(alias_normalize("a]b"), None);
        assert_eq!(path_to_modname("kernel/fs/udf/udf-x.ko.xz\n"), "udf_x");
    }

    #[test]
    fn major_minor_is_scanned_like_sscanf() {
        assert_eq!(
            scan_major_minor("char-major-10-229", "char-major-"),
            Some((10, 229))
        );
        assert_eq!(scan_major_minor("char-major-10-*", "char-major-"), None);
        assert_eq!(
            scan_major_minor("block-major-8-0x", "block-major-"),
            Some((8, 0))
        );
    }

    /// Aliases that normalization changes, refuses or leaves, in two modules: each changed
    /// one is the key of its own value, a refused one is told once in its place among the
    /// messages, and the trie writer (`-w`) writes the same bytes and says the same.
    #[test]
    fn aliases_are_indexed_normalized_and_refused_in_their_place() {
        use crate::depmod::scan::{InfoKey, RecordBuilder};
        let module = |name: &str, aliases: &[&str]| {
            let mut r = RecordBuilder::default();
            for a in aliases {
                r.info(InfoKey::Alias, a.as_bytes());
            }
            ModuleIn {
                name: name.into(),
                path: format!("/lib/modules/k/kernel/{name}.ko"),
                rel: Some(format!("kernel/{name}.ko")),
                record: std::sync::Arc::new(r.finish()),
            }
        };
        let mods = [
            module("a", &["fs-a", "plain", "bad]", "x-[1-2]-y"]),
            module("b", &["of:N*T*Cfsl,b-c", "a[b", "plain", "\u{e9}"]),
        ];
        let f = ModFiles::new(&mods);
        let (mut sorted, mut trie) = (Vec::new(), Vec::new());
        let bin = f.modules_alias_bin(false, &mut sorted);
        assert_eq!(bin, f.modules_alias_bin(true, &mut trie));
        let text = |m: &[Message]| m.iter().map(|m| format!("{m:?}")).collect::<Vec<_>>();
        assert_eq!(text(&sorted), text(&trie[..sorted.len()]));
        let said = text(&sorted);
        assert_eq!(said.len(), 3, "{said:?}");
        assert!(said[0].contains("Unmatched bracket in bad]"), "{said:?}");
        assert!(said[1].contains("Unmatched bracket in a[b"), "{said:?}");
        assert!(said[2].contains("\u{e9}"), "{said:?}");
        let idx = crate::index::Index::parse(&bin).unwrap();
        assert_eq!(idx.search("fs_a").as_deref(), Some("a"));
        assert_eq!(idx.search("x_[1-2]_y").as_deref(), Some("a"));
        assert_eq!(idx.search("of:N*T*Cfsl,b_c").as_deref(), Some("b"));
        assert_eq!(
            idx.search_all("plain"),
            vec![("a".to_string(), 0), ("b".to_string(), 1)]
        );
        assert_eq!(idx.entries().len(), 5);
    }

    #[test]
    fn builtin_alias_records_are_split_like_kmod() {
        let mut msgs = Vec::new();
        let data = b"ext4.alias=fs-ext4\0ext4.license=GPL\0crc32c.alias=crypto-crc32c\0";
        let bin = builtin_alias_bin(data, &mut msgs);
        let idx = crate::index::Index::parse(&bin).unwrap();
        assert_eq!(idx.search("fs_ext4").as_deref(), Some("ext4"));
        assert_eq!(idx.search("crypto_crc32c").as_deref(), Some("crc32c"));
        assert!(msgs.is_empty());
    }
}
