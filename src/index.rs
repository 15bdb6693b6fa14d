//! kmod's binary index (`modules.dep.bin`, `modules.alias.bin`, `modules.symbols.bin`,
//! `modules.builtin.bin`, `modules.builtin.alias.bin`): a writer whose output is
//! byte-identical to what kmod 30's `depmod` writes for the same insertions, and a reader
//! with kmod's exact (`index_search`) and wildcard (`index_searchwild`) lookups.
//!
//! Format (all integers big-endian u32): header `0xB007F457`, version `0x00020001`, a
//! reference to the root node. A node reference holds the node's file offset in its low 28
//! bits and flags in the high nibble: PREFIX, VALUES, CHILDS. A node is, in that order and
//! each part only when flagged: its prefix (NUL-terminated); `u8 first`, `u8 last` and
//! `last - first + 1` child references (0 = none); `u32 count` and `count` records
//! `{u32 priority, NUL-terminated value}` sorted by ascending priority.
//!
//! The trie is a Patricia trie: a child reached through character `c` holds in its prefix
//! the characters after `c`. kmod up to 33 writes children before their parent
//! (post-order); this writer does the same, so the root is the last node of the file.
//!
//! Both sides are pure functions on bytes. The reader validates the whole file in
//! [`Index::parse`] (bounds, structure, every node reached once: a file whose references
//! form a cycle or share a node is rejected), so lookups afterwards cannot fail.

use rustc_hash::FxHashSet;

use crate::glob::fnmatch;

/// `0xB007F457`: "BOOTFAST".
pub const INDEX_MAGIC: u32 = 0xB007_F457;
/// Major version 2, minor 1. Readers check only the major version.
pub const INDEX_VERSION: u32 = 0x0002_0001;

const NODE_PREFIX: u32 = 0x8000_0000;
const NODE_VALUES: u32 = 0x4000_0000;
const NODE_CHILDS: u32 = 0x2000_0000;
const NODE_MASK: u32 = 0x0FFF_FFFF;
const HEADER_LEN: usize = 12;

/// Errors of building or reading an index. Each says what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    #[error(
        "module index: bad character 0x{byte:02x} in key {key:?}: only 7-bit ASCII is supported"
    )]
    NonAsciiKey { key: String, byte: u8 },
    #[error("module index: {what} {text:?} contains a NUL byte, which the format cannot store")]
    Nul { what: &'static str, text: String },
    #[error(
        "module index too large: node offset {offset:#x} does not fit in 28 bits (limit 256 MiB)"
    )]
    TooLarge { offset: usize },
    #[error("not a kmod index: magic {found:#010x}, expected {INDEX_MAGIC:#010x}")]
    BadMagic { found: u32 },
    #[error("unsupported kmod index version {found:#010x}: expected major version 2 (0x0002xxxx)")]
    BadVersion { found: u32 },
    #[error("truncated kmod index: at offset {offset} expected {expected}")]
    Truncated { offset: usize, expected: String },
    #[error(
        "kmod index node reference {reference:#010x} points outside the file: expected an offset in {HEADER_LEN}..={len}"
    )]
    BadReference { reference: u32, len: usize },
    #[error(
        "kmod index node at offset {offset}: child range first {first:#04x} > last {last:#04x}, expected first <= last"
    )]
    BadChildRange { offset: usize, first: u8, last: u8 },
    #[error(
        "kmod index node at offset {offset} is referenced more than once (a cycle or a shared node): expected a tree"
    )]
    RepeatedNode { offset: usize },
}

// ---------------------------------------------------------------------------------------
// Writer

/// Bytes of [`IndexBuilder::bytes`] or [`SortedIndex::bytes`]: a key, a node's prefix or a
/// value.
#[derive(Debug, Default, Clone, Copy)]
struct Span {
    start: usize,
    len: usize,
}

/// No value: the end of a node's list.
const NO_VALUE: u32 = u32::MAX;

#[derive(Debug, Default, Clone)]
struct WNode {
    prefix: Span,
    children: Children,
    /// The node's first value in [`IndexBuilder::values`] ([`NO_VALUE`]: none). Each node's
    /// values are a list sorted by ascending priority; a value is inserted before the first
    /// one whose priority is >= its own (so among equal priorities the newest comes first).
    first: u32,
}

/// One value of a node: its priority, its text, the node's next value.
#[derive(Debug, Clone, Copy)]
struct WValue {
    priority: u32,
    text: Span,
    next: u32,
}

/// Builds an index exactly as kmod 30's `depmod` does (`index_create`, `index_insert`,
/// `index_write`): the same insertions in the same order give the same bytes. Prefixes and
/// values are kept in one buffer and values in one list, so an insertion allocates nothing
/// but a new branch's list of children.
#[derive(Debug, Clone)]
pub struct IndexBuilder {
    /// `nodes[0]` is the root.
    nodes: Vec<WNode>,
    values: Vec<WValue>,
    /// Every prefix and value.
    bytes: Vec<u8>,
}

impl Default for IndexBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl IndexBuilder {
    pub fn new() -> Self {
        IndexBuilder {
            nodes: vec![WNode {
                first: NO_VALUE,
                ..WNode::default()
            }],
            values: Vec::new(),
            bytes: Vec::new(),
        }
    }

    /// Adds `value` with `priority` under `key`. Like depmod, duplicates are kept (depmod
    /// only warns with `-w`); values of one key stay sorted by ascending priority, a new
    /// value going before existing values of the same priority.
    ///
    /// Keys must be 7-bit ASCII (depmod: `Module index: bad character ... only 7-bit ASCII
    /// is supported`). Neither keys nor values may contain NUL. depmod only logs non-ASCII
    /// values and writes them anyway; so does this.
    pub fn insert(&mut self, key: &str, value: &str, priority: u32) -> Result<(), IndexError> {
        self.insert_reporting(key, value, priority).map(|_| ())
    }

    /// [`Self::insert`], telling whether `key` already had this very value (what depmod's
    /// `-w` warns about).
    pub fn insert_reporting(
        &mut self,
        key: &str,
        value: &str,
        priority: u32,
    ) -> Result<bool, IndexError> {
        check_entry(key, value)?;
        let key = key.as_bytes();
        let mut n = 0usize;
        let mut i = 0usize;
        loop {
            // Make the node's prefix a prefix of key[i..], splitting the node if it is not.
            let p = self.nodes[n].prefix;
            let rest = key.get(i..).unwrap_or(&[]);
            let j = self
                .text(p)
                .iter()
                .zip(rest)
                .take_while(|(a, b)| a == b)
                .count();
            if j < p.len {
                // the node's prefix is not a prefix of key[i..]: split it
                let ch = self.bytes[p.start + j];
                let old = std::mem::take(&mut self.nodes[n]);
                let child = WNode {
                    prefix: Span {
                        start: p.start + j + 1,
                        len: p.len - j - 1,
                    },
                    children: old.children,
                    first: old.first,
                };
                let cid = self.nodes.len();
                self.nodes.push(child);
                self.nodes[n] = WNode {
                    prefix: Span {
                        start: p.start,
                        len: j,
                    },
                    children: Children(vec![(ch, cid)]),
                    first: NO_VALUE,
                };
            }
            i += j;
            let Some(&ch) = key.get(i) else {
                return Ok(self.add_value(n, value, priority));
            };
            match self.nodes[n].children.get(&ch) {
                Some(&c) => {
                    n = c;
                    i += 1;
                }
                None => {
                    let cid = self.nodes.len();
                    let prefix = self.push_bytes(&key[i + 1..]);
                    self.nodes.push(WNode {
                        prefix,
                        children: Children::default(),
                        first: NO_VALUE,
                    });
                    self.add_value(cid, value, priority);
                    self.nodes[n].children.insert(ch, cid);
                    return Ok(false);
                }
            }
        }
    }

    fn push_bytes(&mut self, b: &[u8]) -> Span {
        push_span(&mut self.bytes, b)
    }

    fn text(&self, s: Span) -> &[u8] {
        &self.bytes[s.start..s.start + s.len]
    }

    /// Node `n`'s values in order.
    fn node_values(&self, n: usize) -> impl Iterator<Item = &WValue> {
        let mut at = self.nodes[n].first;
        std::iter::from_fn(move || {
            let v = self.values.get(at as usize)?;
            at = v.next;
            Some(v)
        })
    }

    /// Add a value to node `n`'s list; whether it already had this text.
    fn add_value(&mut self, n: usize, value: &str, priority: u32) -> bool {
        let duplicate = self
            .node_values(n)
            .any(|v| self.text(v.text) == value.as_bytes());
        let text = self.push_bytes(value.as_bytes());
        let id = self.values.len() as u32;
        // the link to the first value whose priority is >= this one's
        let mut link: Option<usize> = None; // None: the node's `first`
        let mut at = self.nodes[n].first;
        while let Some(v) = self.values.get(at as usize) {
            if v.priority >= priority {
                break;
            }
            link = Some(at as usize);
            at = v.next;
        }
        self.values.push(WValue {
            priority,
            text,
            next: at,
        });
        match link {
            None => self.nodes[n].first = id,
            Some(l) => self.values[l].next = id,
        }
        duplicate
    }

    /// The index file, byte for byte as kmod 30 writes it.
    ///
    /// # Panics
    /// If the file would exceed 256 MiB (node offsets have 28 bits); see [`Self::try_write`].
    pub fn write(&self) -> Vec<u8> {
        self.try_write().unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Self::write`], failing instead of panicking when an offset does not fit in 28
    /// bits (depmod would silently write a corrupt file).
    pub fn try_write(&self) -> Result<Vec<u8>, IndexError> {
        let mut out = Vec::with_capacity(HEADER_LEN + 64 * self.nodes.len());
        out.extend_from_slice(&INDEX_MAGIC.to_be_bytes());
        out.extend_from_slice(&INDEX_VERSION.to_be_bytes());
        out.extend_from_slice(&0u32.to_be_bytes());
        let mut refs = vec![0u32; self.nodes.len()];
        // Post-order: all children (in character order, each subtree complete), then the node.
        let mut stack: Vec<(usize, bool)> = vec![(0, false)];
        while let Some((n, expanded)) = stack.pop() {
            let node = &self.nodes[n];
            if !expanded {
                stack.push((n, true));
                stack.extend(node.children.0.iter().rev().map(|&(_, c)| (c, false)));
                continue;
            }
            let offset = out.len();
            if offset > NODE_MASK as usize {
                return Err(IndexError::TooLarge { offset });
            }
            let mut r = offset as u32;
            if node.prefix.len > 0 {
                out.extend_from_slice(self.text(node.prefix));
                out.push(0);
                r |= NODE_PREFIX;
            }
            if let (Some(&(first, _)), Some(&(last, _))) =
                (node.children.0.first(), node.children.0.last())
            {
                out.push(first);
                out.push(last);
                let mut next = node.children.0.iter().peekable();
                for ch in first..=last {
                    let cref = match next.next_if(|(c, _)| *c == ch) {
                        Some(&(_, c)) => refs[c],
                        None => 0,
                    };
                    out.extend_from_slice(&cref.to_be_bytes());
                }
                r |= NODE_CHILDS;
            }
            if node.first != NO_VALUE {
                let count = self.node_values(n).count() as u32;
                out.extend_from_slice(&count.to_be_bytes());
                for v in self.node_values(n) {
                    out.extend_from_slice(&v.priority.to_be_bytes());
                    out.extend_from_slice(self.text(v.text));
                    out.push(0);
                }
                r |= NODE_VALUES;
            }
            refs[n] = r;
        }
        out[8..12].copy_from_slice(&refs[0].to_be_bytes());
        Ok(out)
    }
}

/// The keys and values of an index, to be written at once: the same bytes as an
/// [`IndexBuilder`] given the same insertions in the same order, built by sorting the
/// entries rather than growing a trie one key at a time. The trie kmod's insertions make
/// depends only on the set of keys (a node's prefix is what all keys below it share: each
/// split happens where two keys part), and a node's values only on their priorities and
/// insertion order (ascending priority, the newest first among equals). So from the entries
/// sorted by key, priority and reverse insertion, each node's keys are a run of them and its
/// values the first of that run; one pass with a stack as deep as the trie writes each node
/// once its children are written (post-order, as kmod writes them). Its work is the sort
/// (comparisons as long as the prefixes keys share) and, per node, a comparison of its first
/// and last keys for the prefix they share and a binary search for the end of each child's
/// run. The keys and values are borrowed, not copied: an index of
/// 26,000 aliases is written from the modules' records with no second copy of its text.
/// What it does not do is tell duplicates as they are inserted
/// ([`IndexBuilder::insert_reporting`], for depmod's `-w`).
#[derive(Debug, Default, Clone)]
pub struct SortedIndex<'a> {
    /// Each insertion, in insertion order until written (then sorted).
    entries: Vec<Entry<'a>>,
}

/// One insertion of a [`SortedIndex`]: its key, value and priority as given (borrowed, not
/// copied), and its insertion number.
#[derive(Debug, Clone, Copy)]
struct Entry<'a> {
    key: &'a [u8],
    value: &'a [u8],
    priority: u32,
    seq: u32,
}

/// One node of [`SortedIndex::try_write`] while its children are written: its entries
/// (`lo..hi`, sorted), the key bytes its parent consumed (`d`; its prefix is `d..e`), its
/// own values (`lo..vend`), the next child's first entry (`pos`), the character its parent
/// reaches it by, and where its children's references start on the shared stack of them.
struct Pending {
    lo: usize,
    hi: usize,
    d: usize,
    e: usize,
    vend: usize,
    pos: usize,
    ch: u8,
    children: usize,
}

impl<'a> SortedIndex<'a> {
    pub fn new() -> Self {
        Self::default()
    }

    /// An index for about `n` insertions.
    pub fn with_capacity(n: usize) -> Self {
        SortedIndex {
            entries: Vec::with_capacity(n),
        }
    }

    /// Adds `value` with `priority` under `key`, refused as [`IndexBuilder::insert`] refuses
    /// it (a key not 7-bit ASCII, a NUL in the key or the value). Both are borrowed until
    /// the index is written.
    pub fn insert(
        &mut self,
        key: &'a str,
        value: &'a str,
        priority: u32,
    ) -> Result<(), IndexError> {
        check_entry(key, value)?;
        // past 2^32 insertions (a file far over the format's 256 MiB, refused when written)
        // the last ones share a number
        let seq = u32::try_from(self.entries.len()).unwrap_or(u32::MAX);
        self.entries.push(Entry {
            key: key.as_bytes(),
            value: value.as_bytes(),
            priority,
            seq,
        });
        Ok(())
    }

    /// The index file, byte for byte as [`IndexBuilder::try_write`] writes it for the same
    /// insertions. (The entries are sorted in place: writing again gives the same bytes.)
    pub fn try_write(&mut self) -> Result<Vec<u8>, IndexError> {
        // entries by key, then priority, then the newest first
        self.entries.sort_unstable_by(|a, b| {
            key_cmp(a.key, b.key)
                .then(a.priority.cmp(&b.priority))
                .then(b.seq.cmp(&a.seq))
        });
        let entries = &self.entries[..];
        let k = |i: usize| entries[i].key;
        // a node over the sorted entries lo..hi, whose parent consumed `d` key bytes
        let pending = |lo: usize, hi: usize, d: usize, ch: u8, root: bool, children: usize| {
            let e = if root || lo == hi {
                d
            } else {
                let (a, b) = (&k(lo)[d..], &k(hi - 1)[d..]);
                d + a.iter().zip(b).take_while(|(x, y)| x == y).count()
            };
            // its own values: the keys that end here, sorted before the longer ones
            let vend = lo + entries[lo..hi].partition_point(|x| x.key.len() == e);
            Pending {
                lo,
                hi,
                d,
                e,
                vend,
                pos: vend,
                ch,
                children,
            }
        };
        // about the file's size (its text, a count and priority per value, a child reference
        // per key); beyond the largest file the format allows, it grows as needed
        let text: usize = entries.iter().map(|x| x.key.len() + x.value.len()).sum();
        let guess = HEADER_LEN + text + 12 * entries.len();
        let mut out = Vec::with_capacity(guess.min(NODE_MASK as usize + 1));
        out.extend_from_slice(&INDEX_MAGIC.to_be_bytes());
        out.extend_from_slice(&INDEX_VERSION.to_be_bytes());
        out.extend_from_slice(&0u32.to_be_bytes());
        // the references of the children written so far, of every node on the stack, each
        // node's after its parent's (one vector for all: no allocation per node)
        let mut refs: Vec<(u8, u32)> = Vec::new();
        let mut stack = vec![pending(0, entries.len(), 0, 0, true, 0)];
        while let Some(top) = stack.last_mut() {
            if top.pos < top.hi {
                // the next child: the entries that go on with the same character (every
                // key from `pos` on is longer than `e`, and sorted by its byte there)
                let (lo, e) = (top.pos, top.e);
                let ch = k(lo)[e];
                let hi = lo + entries[lo..top.hi].partition_point(|x| x.key[e] == ch);
                top.pos = hi;
                let child = pending(lo, hi, e + 1, ch, false, refs.len());
                stack.push(child);
                continue;
            }
            let node = stack.pop().expect("the top");
            let offset = out.len();
            if offset > NODE_MASK as usize {
                return Err(IndexError::TooLarge { offset });
            }
            let mut r = offset as u32;
            if node.e > node.d {
                out.extend_from_slice(&k(node.lo)[node.d..node.e]);
                out.push(0);
                r |= NODE_PREFIX;
            }
            let children = &refs[node.children..];
            if let (Some(&(first, _)), Some(&(last, _))) = (children.first(), children.last()) {
                out.push(first);
                out.push(last);
                // a reference for every character from the first to the last, 0 for none
                let table = out.len();
                out.resize(table + 4 * (usize::from(last - first) + 1), 0);
                for &(c, cr) in children {
                    let at = table + 4 * usize::from(c - first);
                    out[at..at + 4].copy_from_slice(&cr.to_be_bytes());
                }
                r |= NODE_CHILDS;
            }
            if node.vend > node.lo {
                out.extend_from_slice(&((node.vend - node.lo) as u32).to_be_bytes());
                for x in &entries[node.lo..node.vend] {
                    out.extend_from_slice(&x.priority.to_be_bytes());
                    out.extend_from_slice(x.value);
                    out.push(0);
                }
                r |= NODE_VALUES;
            }
            refs.truncate(node.children);
            match stack.last() {
                Some(_) => refs.push((node.ch, r)),
                None => out[8..12].copy_from_slice(&r.to_be_bytes()),
            }
        }
        Ok(out)
    }
}

/// Byte strings in their order (`<[u8]>::cmp`'s), eight bytes at a time: index keys are
/// short and share long prefixes, where a call to `memcmp` per comparison costs more than
/// the comparison.
fn key_cmp(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let (mut a8, mut b8) = (a.chunks_exact(8), b.chunks_exact(8));
    for (x, y) in (&mut a8).zip(&mut b8) {
        let (x, y) = (
            u64::from_be_bytes(x.try_into().expect("8 bytes")),
            u64::from_be_bytes(y.try_into().expect("8 bytes")),
        );
        if x != y {
            return x.cmp(&y);
        }
    }
    // the rest of the shorter (under 8 bytes) against as much of the other
    let n = a.len().min(b.len()) / 8 * 8;
    let (a, b) = (&a[n..], &b[n..]);
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x.cmp(y);
        }
    }
    a.len().cmp(&b.len())
}

/// What [`IndexBuilder::insert`] refuses, in its order of checks.
fn check_entry(key: &str, value: &str) -> Result<(), IndexError> {
    // the common case in one pass a word at a time (`is_ascii`), the byte found only when
    // there is one
    if !key.is_ascii()
        && let Some(&byte) = key.as_bytes().iter().find(|&&b| b >= 0x80)
    {
        return Err(IndexError::NonAsciiKey {
            key: key.to_string(),
            byte,
        });
    }
    if memchr::memchr(0, key.as_bytes()).is_some() {
        return Err(IndexError::Nul {
            what: "key",
            text: key.to_string(),
        });
    }
    if memchr::memchr(0, value.as_bytes()).is_some() {
        return Err(IndexError::Nul {
            what: "value",
            text: value.to_string(),
        });
    }
    Ok(())
}

fn push_span(bytes: &mut Vec<u8>, b: &[u8]) -> Span {
    let start = bytes.len();
    bytes.extend_from_slice(b);
    Span {
        start,
        len: b.len(),
    }
}

/// A node's children, sorted by character (few per node: a vector beats a tree map).
#[derive(Debug, Default, Clone)]
struct Children(Vec<(u8, usize)>);

impl Children {
    fn get(&self, ch: &u8) -> Option<&usize> {
        self.0
            .binary_search_by_key(ch, |&(c, _)| c)
            .ok()
            .map(|i| &self.0[i].1)
    }
    fn insert(&mut self, ch: u8, node: usize) {
        match self.0.binary_search_by_key(&ch, |&(c, _)| c) {
            Ok(i) => self.0[i].1 = node,
            Err(i) => self.0.insert(i, (ch, node)),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Reader

const NO_CHILD: u32 = u32::MAX;

#[derive(Debug, Default, Clone)]
struct RNode<'a> {
    prefix: &'a [u8],
    first: u8,
    /// Node numbers (into `Index::nodes`) for characters `first..`; `NO_CHILD` = none.
    children: Vec<u32>,
    values: Vec<(u32, &'a [u8])>,
}

/// A parsed kmod index over borrowed bytes: every node checked (for tools and tests that
/// want the whole index); lookups read only the nodes they need, as [`Lazy`] does.
#[derive(Debug, Clone)]
pub struct Index<'a> {
    nodes: Vec<RNode<'a>>,
    root: Option<u32>,
    lazy: Lazy<'a>,
}

/// A kmod index read the way libkmod reads its mapped file: the header checked, then only
/// the nodes a lookup passes through, each bounds-checked when it is reached. A damaged
/// node ends the lookup as if the key were absent; a loop of references cannot make a
/// lookup run forever (each node is visited once).
#[derive(Debug, Clone, Copy)]
pub struct Lazy<'a> {
    data: &'a [u8],
    /// The root node's reference (its offset masked); 0: an empty index.
    root: u32,
}

fn be32(data: &[u8], at: usize, expected: &str) -> Result<u32, IndexError> {
    be32_or(data, at, || expected.to_string())
}

/// [`be32`] whose message is made only when it is needed (a lookup reads thousands of
/// values: formatting each one's description cost more than the lookup).
fn be32_or(data: &[u8], at: usize, expected: impl FnOnce() -> String) -> Result<u32, IndexError> {
    data.get(at..at + 4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| IndexError::Truncated {
            offset: at,
            expected: expected(),
        })
}

fn cstr<'a>(data: &'a [u8], at: usize, expected: &str) -> Result<&'a [u8], IndexError> {
    cstr_or(data, at, || expected.to_string())
}

fn cstr_or(data: &[u8], at: usize, expected: impl FnOnce() -> String) -> Result<&[u8], IndexError> {
    let rest = data.get(at..).unwrap_or(&[]);
    match rest.iter().position(|&b| b == 0) {
        Some(end) => Ok(&rest[..end]),
        None => Err(IndexError::Truncated {
            offset: at,
            expected: expected(),
        }),
    }
}

fn node_offset(data: &[u8], reference: u32) -> Result<usize, IndexError> {
    let off = (reference & NODE_MASK) as usize;
    if off < HEADER_LEN || off > data.len() {
        return Err(IndexError::BadReference {
            reference,
            len: data.len(),
        });
    }
    Ok(off)
}

/// Reads one node; child references are returned raw (0 = none) for the caller to resolve.
fn read_node<'a>(data: &'a [u8], reference: u32) -> Result<(RNode<'a>, Vec<u32>), IndexError> {
    let mut pos = node_offset(data, reference)?;
    let mut node = RNode::default();
    let mut child_refs = Vec::new();
    if reference & NODE_PREFIX != 0 {
        node.prefix = cstr(data, pos, "a NUL-terminated node prefix")?;
        pos += node.prefix.len() + 1;
    }
    if reference & NODE_CHILDS != 0 {
        let range = data
            .get(pos..pos + 2)
            .ok_or_else(|| IndexError::Truncated {
                offset: pos,
                expected: "the child range (u8 first, u8 last)".to_string(),
            })?;
        let (first, last) = (range[0], range[1]);
        if first > last {
            return Err(IndexError::BadChildRange {
                offset: pos,
                first,
                last,
            });
        }
        pos += 2;
        let count = usize::from(last - first) + 1;
        for k in 0..count {
            child_refs.push(be32_or(data, pos, || {
                format!("child reference {} of {count}", k + 1)
            })?);
            pos += 4;
        }
        node.first = first;
    }
    if reference & NODE_VALUES != 0 {
        let count = be32(data, pos, "the value count")? as usize;
        pos += 4;
        // each value takes at least 5 bytes: do not trust the count for the allocation
        let remaining = data.len().saturating_sub(pos);
        if count > remaining / 5 {
            return Err(IndexError::Truncated {
                offset: pos,
                expected: format!("{count} values (at least 5 bytes each)"),
            });
        }
        node.values.reserve(count);
        for k in 0..count {
            let priority = be32_or(data, pos, || format!("the priority of value {}", k + 1))?;
            pos += 4;
            let value = cstr_or(data, pos, || format!("NUL-terminated value {}", k + 1))?;
            pos += value.len() + 1;
            node.values.push((priority, value));
        }
    }
    Ok((node, child_refs))
}

/// kmod's `add_value`: insert before the first value with a priority >= `priority`.
fn merge_value<'a>(out: &mut Vec<(u32, &'a [u8])>, value: &'a [u8], priority: u32) {
    let pos = out
        .iter()
        .position(|(p, _)| *p >= priority)
        .unwrap_or(out.len());
    out.insert(pos, (priority, value));
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// C strings end at NUL: so does a lookup key.
fn c_key(key: &str) -> &[u8] {
    let b = key.as_bytes();
    &b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())]
}

impl<'a> Index<'a> {
    /// Checks the header (magic, major version) and reads every node reachable from the
    /// root, bounds-checked; rejects references that point outside the file, cycles and
    /// shared nodes.
    pub fn parse(data: &'a [u8]) -> Result<Self, IndexError> {
        let lazy = Lazy::open(data)?;
        let root_ref = lazy.root;
        let mut index = Index {
            nodes: Vec::new(),
            root: None,
            lazy,
        };
        if root_ref & NODE_MASK == 0 {
            return Ok(index);
        }
        let mut seen: FxHashSet<usize> = FxHashSet::default();
        seen.insert(node_offset(data, root_ref)?);
        index.nodes.push(RNode::default());
        index.root = Some(0);
        let mut work: Vec<(u32, usize)> = vec![(root_ref, 0)];
        while let Some((reference, slot)) = work.pop() {
            let (mut node, child_refs) = read_node(data, reference)?;
            node.children = Vec::with_capacity(child_refs.len());
            for cref in child_refs {
                if cref & NODE_MASK == 0 {
                    node.children.push(NO_CHILD);
                    continue;
                }
                let off = node_offset(data, cref)?;
                if !seen.insert(off) {
                    return Err(IndexError::RepeatedNode { offset: off });
                }
                let id = index.nodes.len();
                index.nodes.push(RNode::default());
                node.children.push(id as u32);
                work.push((cref, id));
            }
            index.nodes[slot] = node;
        }
        Ok(index)
    }

    /// The first (lowest-priority) value of `key`, like libkmod's `index_search`.
    pub fn search(&self, key: &str) -> Option<String> {
        self.lazy.search(key)
    }

    /// All values of exactly `key` with their priorities, in file order (ascending priority).
    pub fn search_all(&self, key: &str) -> Vec<(String, u32)> {
        self.lazy.search_all(key)
    }

    /// libkmod's `index_searchwild` (see [`Lazy::search_wild`]).
    pub fn search_wild(&self, key: &str) -> Vec<(String, u32)> {
        self.lazy.search_wild(key)
    }

    /// Every (key, value, priority) of the index, keys in byte order, values of a key in
    /// file order.
    pub fn entries(&self) -> Vec<(String, String, u32)> {
        let mut out = Vec::new();
        let Some(root) = self.root else {
            return out;
        };
        let mut stack: Vec<(u32, Vec<u8>)> = vec![(root, self.nodes[0].prefix.to_vec())];
        while let Some((n, key)) = stack.pop() {
            let node = &self.nodes[n as usize];
            for &(p, v) in &node.values {
                out.push((text(&key), text(v), p));
            }
            for (k, &c) in node.children.iter().enumerate().rev() {
                if c == NO_CHILD {
                    continue;
                }
                let mut ck = key.clone();
                ck.push(node.first.wrapping_add(k as u8));
                ck.extend_from_slice(self.nodes[c as usize].prefix);
                stack.push((c, ck));
            }
        }
        out
    }
}

/// One node as a lookup sees it.
struct LNode<'a> {
    prefix: &'a [u8],
    first: u8,
    /// Raw child references for characters `first..` (0: none).
    children: Vec<u32>,
    values: Vec<(u32, &'a [u8])>,
}

impl<'a> LNode<'a> {
    fn child(&self, ch: u8) -> Option<u32> {
        let k = ch.checked_sub(self.first)?;
        self.children
            .get(usize::from(k))
            .copied()
            .filter(|&c| c & NODE_MASK != 0)
    }
}

impl<'a> Lazy<'a> {
    /// Check the header (magic, major version) and take the root's reference.
    pub fn open(data: &'a [u8]) -> Result<Lazy<'a>, IndexError> {
        let magic = be32(data, 0, "the magic 0xb007f457")?;
        if magic != INDEX_MAGIC {
            return Err(IndexError::BadMagic { found: magic });
        }
        let version = be32(data, 4, "the version")?;
        if version >> 16 != INDEX_VERSION >> 16 {
            return Err(IndexError::BadVersion { found: version });
        }
        let root = be32(data, 8, "the root node reference")?;
        if root & NODE_MASK != 0 {
            node_offset(data, root)?;
        }
        Ok(Lazy { data, root })
    }

    fn node(&self, reference: u32) -> Option<LNode<'a>> {
        let (n, children) = read_node(self.data, reference).ok()?;
        Some(LNode {
            prefix: n.prefix,
            first: n.first,
            children,
            values: n.values,
        })
    }

    fn root(&self) -> Option<LNode<'a>> {
        (self.root & NODE_MASK != 0)
            .then(|| self.node(self.root))
            .flatten()
    }

    /// The node whose key is exactly `key` (`index_search__node`). Each step consumes a
    /// character of the key: bounded by its length.
    fn find(&self, key: &[u8]) -> Option<LNode<'a>> {
        let mut n = self.root()?;
        let mut i = 0;
        loop {
            if !key[i..].starts_with(n.prefix) {
                return None;
            }
            i += n.prefix.len();
            if i == key.len() {
                return Some(n);
            }
            n = self.node(n.child(key[i])?)?;
            i += 1;
        }
    }

    /// The first (lowest-priority) value of `key`, like libkmod's `index_search`.
    pub fn search(&self, key: &str) -> Option<String> {
        self.find(c_key(key))?.values.first().map(|(_, v)| text(v))
    }

    /// All values of exactly `key` with their priorities, in file order (ascending priority).
    pub fn search_all(&self, key: &str) -> Vec<(String, u32)> {
        self.find(c_key(key)).map_or_else(Vec::new, |n| {
            n.values.iter().map(|&(p, v)| (text(v), p)).collect()
        })
    }

    /// libkmod's `index_searchwild`: keys stored in the index may contain `*`, `?` and
    /// `[...]`; returns the values of every stored key that matches `key` (descending
    /// literally until a wildcard, then `fnmatch` on the rest), merged by ascending
    /// priority in kmod's order.
    pub fn search_wild(&self, key: &str) -> Vec<(String, u32)> {
        let key = c_key(key);
        let mut out: Vec<(u32, &'a [u8])> = Vec::new();
        let mut buf: Vec<u8> = Vec::new();
        let mut seen = FxHashSet::default();
        if let Some(root) = self.root() {
            self.wild_node(root, key, &mut buf, &mut out, &mut seen);
        }
        out.into_iter().map(|(p, v)| (text(v), p)).collect()
    }

    fn wild_node(
        &self,
        mut n: LNode<'a>,
        key: &[u8],
        buf: &mut Vec<u8>,
        out: &mut Vec<(u32, &'a [u8])>,
        seen: &mut FxHashSet<u32>,
    ) {
        let mut i = 0usize;
        loop {
            for (j, &ch) in n.prefix.iter().enumerate() {
                if matches!(ch, b'*' | b'?' | b'[') {
                    self.wild_all(&n, j, buf, &key[i + j..], out, seen);
                    return;
                }
                if key.get(i + j) != Some(&ch) {
                    return;
                }
            }
            i += n.prefix.len();
            for w in [b'*', b'?', b'['] {
                if let Some(c) = n.child(w).and_then(|c| self.node(c)) {
                    buf.push(w);
                    self.wild_all(&c, 0, buf, &key[i..], out, seen);
                    buf.pop();
                }
            }
            if i == key.len() {
                for &(p, v) in &n.values {
                    merge_value(out, v, p);
                }
                return;
            }
            match n.child(key[i]).and_then(|c| self.node(c)) {
                Some(c) => {
                    n = c;
                    i += 1;
                }
                None => return,
            }
        }
    }

    /// `index_searchwild__all`: every key below `start` (whose prefix from `j` on is
    /// pushed to `buf`) is matched with fnmatch against `subkey`; children first, in
    /// character order, then the node's own values. A node already visited is not
    /// entered again.
    fn wild_all(
        &self,
        start: &LNode<'a>,
        j: usize,
        buf: &mut Vec<u8>,
        subkey: &[u8],
        out: &mut Vec<(u32, &'a [u8])>,
        seen: &mut FxHashSet<u32>,
    ) {
        // frames: (node, next child slot, buf length before this node's characters)
        let mark = buf.len();
        buf.extend_from_slice(start.prefix.get(j..).unwrap_or(&[]));
        let first = LNode {
            prefix: start.prefix,
            first: start.first,
            children: start.children.clone(),
            values: start.values.clone(),
        };
        let mut stack: Vec<(LNode<'a>, usize, usize)> = vec![(first, 0, mark)];
        while let Some(top) = stack.last_mut() {
            let next = (top.1..top.0.children.len()).find(|&k| top.0.children[k] & NODE_MASK != 0);
            if let Some(k) = next {
                top.1 = k + 1;
                let r = top.0.children[k];
                let ch = top.0.first.wrapping_add(k as u8);
                if !seen.insert(r & NODE_MASK) {
                    continue;
                }
                let Some(c) = self.node(r) else { continue };
                let mark = buf.len();
                buf.push(ch);
                buf.extend_from_slice(c.prefix);
                stack.push((c, 0, mark));
            } else {
                if !top.0.values.is_empty() {
                    // a NUL pushed as a child character ends the C pattern
                    let pattern = buf.split(|&b| b == 0).next().unwrap_or(&[]);
                    if fnmatch(pattern, subkey) {
                        for &(p, v) in &top.0.values {
                            merge_value(out, v, p);
                        }
                    }
                }
                let mark = top.2;
                buf.truncate(mark);
                stack.pop();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn build(entries: &[(&str, &str, u32)]) -> Vec<u8> {
        let mut b = IndexBuilder::new();
        for &(k, v, p) in entries {
            b.insert(k, v, p).unwrap();
        }
        b.write()
    }

    fn be(v: u32) -> [u8; 4] {
        v.to_be_bytes()
    }

    #[test]
    fn empty_index_is_a_flagless_root_at_12() {
        let bytes = IndexBuilder::new().write();
        let mut want = Vec::new();
        want.extend(be(INDEX_MAGIC));
        want.extend(be(INDEX_VERSION));
        want.extend(be(12));
        assert_eq!(bytes, want);
        let idx = Index::parse(&bytes).unwrap();
        assert!(idx.entries().is_empty());
        assert_eq!(idx.search(""), None);
        assert!(idx.search_wild("x").is_empty());
    }

    #[test]
    fn one_key_children_before_parent() {
        let bytes = build(&[("a", "x", 1)]);
        let mut want = Vec::new();
        want.extend(be(INDEX_MAGIC));
        want.extend(be(INDEX_VERSION));
        want.extend(be(22 | NODE_CHILDS));
        // child 'a' at 12: no prefix, one value
        want.extend(be(1));
        want.extend(be(1));
        want.extend(b"x\0");
        // root at 22: children 'a'..'a'
        want.extend(b"aa");
        want.extend(be(12 | NODE_VALUES));
        assert_eq!(bytes, want);
    }

    #[test]
    fn prefix_split_and_key_ending_inside_a_prefix() {
        let bytes = build(&[("abcd", "1", 0), ("abxy", "2", 0), ("ab", "3", 0)]);
        // root "" -> 'a' node prefix "b" (value 3) -> 'c' "d" / 'x' "y"
        let mut want = Vec::new();
        want.extend(be(INDEX_MAGIC));
        want.extend(be(INDEX_VERSION));
        let c_off = 12u32; // "d\0" + 1 value "1"
        let x_off = c_off + 2 + 4 + 4 + 2;
        let a_off = x_off + 2 + 4 + 4 + 2;
        let root_off = a_off + 2 + 2 + 4 * 22 + 4 + 4 + 2;
        want.extend(be(root_off | NODE_CHILDS));
        want.extend(b"d\0");
        want.extend(be(1));
        want.extend(be(0));
        want.extend(b"1\0");
        want.extend(b"y\0");
        want.extend(be(1));
        want.extend(be(0));
        want.extend(b"2\0");
        want.extend(b"b\0");
        want.extend(b"cx");
        want.extend(be(c_off | NODE_PREFIX | NODE_VALUES));
        for _ in b'd'..b'x' {
            want.extend(be(0));
        }
        want.extend(be(x_off | NODE_PREFIX | NODE_VALUES));
        want.extend(be(1));
        want.extend(be(0));
        want.extend(b"3\0");
        want.extend(b"aa");
        want.extend(be(a_off | NODE_PREFIX | NODE_CHILDS | NODE_VALUES));
        assert_eq!(bytes, want);
        // insertion order does not change the shape
        assert_eq!(
            bytes,
            build(&[("ab", "3", 0), ("abxy", "2", 0), ("abcd", "1", 0)])
        );
        let idx = Index::parse(&bytes).unwrap();
        assert_eq!(idx.search("ab").as_deref(), Some("3"));
        assert_eq!(idx.search("abcd").as_deref(), Some("1"));
        assert_eq!(idx.search("abc"), None);
        assert_eq!(idx.search("a"), None);
        assert_eq!(idx.search("abxyz"), None);
    }

    #[test]
    fn values_sorted_by_priority_newest_first_among_equals_duplicates_kept() {
        let bytes = build(&[
            ("k", "b", 5),
            ("k", "a", 1),
            ("k", "c", 5),
            ("k", "c", 5),
            ("k", "z", 9),
        ]);
        let idx = Index::parse(&bytes).unwrap();
        let all = idx.search_all("k");
        let want: Vec<(String, u32)> = [("a", 1), ("c", 5), ("c", 5), ("b", 5), ("z", 9)]
            .iter()
            .map(|&(v, p)| (v.to_string(), p))
            .collect();
        assert_eq!(all, want);
        assert_eq!(idx.search("k").as_deref(), Some("a"));
    }

    #[test]
    fn rejects_non_ascii_and_nul() {
        let mut b = IndexBuilder::new();
        let e = b.insert("caf\u{e9}", "m", 0).unwrap_err();
        assert!(matches!(e, IndexError::NonAsciiKey { byte: 0xc3, .. }));
        assert!(e.to_string().contains("caf\u{e9}"), "{e}");
        assert!(b.insert("a\0b", "m", 0).is_err());
        assert!(b.insert("a", "m\0", 0).is_err());
        b.insert("a", "v\u{e9}", 0).unwrap(); // depmod only logs non-ASCII values
        assert_eq!(b.write().len(), 12 + (4 + 4 + 4) + (2 + 4));
    }

    #[test]
    fn wildcard_lookup() {
        let bytes = build(&[
            ("pci:v00008086d*sv*", "e1000", 3),
            ("pci:v*d*sv*", "generic", 7),
            ("pci:v0000108Ed*", "other", 1),
            ("usb:v1234p*", "usbmod", 2),
            ("acpi*:PNP0A03:*", "acpi", 4),
            ("exact", "ex", 0),
            ("ex[a-c]ct", "cls", 5),
        ]);
        let idx = Index::parse(&bytes).unwrap();
        let names =
            |k: &str| -> Vec<String> { idx.search_wild(k).into_iter().map(|(v, _)| v).collect() };
        assert_eq!(names("pci:v00008086d00001234sv0000"), ["e1000", "generic"]);
        assert_eq!(names("pci:v0000108Ed1sv2"), ["other", "generic"]);
        assert_eq!(names("usb:v1234p0001"), ["usbmod"]);
        assert_eq!(names("acpi:PNP0A03:"), ["acpi"]);
        assert_eq!(names("exact"), ["ex", "cls"]);
        assert_eq!(names("exbct"), ["cls"]);
        assert!(names("nothing").is_empty());
        assert_eq!(idx.search("exact").as_deref(), Some("ex"));
        assert_eq!(idx.search("exbct"), None);
    }

    #[test]
    fn malformed_files_are_errors() {
        let good = build(&[("alpha", "1", 1), ("alps", "2", 2), ("beta", "3", 3)]);
        assert!(matches!(
            Index::parse(&good[..11]),
            Err(IndexError::Truncated { .. })
        ));
        let mut bad = good.clone();
        bad[0] = 0;
        assert!(matches!(
            Index::parse(&bad),
            Err(IndexError::BadMagic { .. })
        ));
        let mut bad = good.clone();
        bad[4..8].copy_from_slice(&be(0x0003_0001));
        assert!(matches!(
            Index::parse(&bad),
            Err(IndexError::BadVersion { .. })
        ));
        // a minor version change is accepted
        let mut ok = good.clone();
        ok[4..8].copy_from_slice(&be(0x0002_0007));
        Index::parse(&ok).unwrap();

        // the root points at itself as its child 'a'
        let mut selfref = Vec::new();
        selfref.extend(be(INDEX_MAGIC));
        selfref.extend(be(INDEX_VERSION));
        selfref.extend(be(12 | NODE_CHILDS));
        selfref.extend(b"aa");
        selfref.extend(be(12 | NODE_CHILDS));
        let e = Index::parse(&selfref).unwrap_err();
        assert_eq!(e, IndexError::RepeatedNode { offset: 12 });

        // reference beyond the end
        let mut far = good.clone();
        far[8..12].copy_from_slice(&be(0x0FFF_FF00 | NODE_CHILDS));
        assert!(matches!(
            Index::parse(&far),
            Err(IndexError::BadReference { .. })
        ));
        // huge value count
        let mut huge = Vec::new();
        huge.extend(be(INDEX_MAGIC));
        huge.extend(be(INDEX_VERSION));
        huge.extend(be(12 | NODE_VALUES));
        huge.extend(be(u32::MAX));
        assert!(matches!(
            Index::parse(&huge),
            Err(IndexError::Truncated { .. })
        ));
        // every truncation and every single-byte corruption: no panic
        for len in 0..good.len() {
            let _ = Index::parse(&good[..len]);
        }
        for at in 0..good.len() {
            for v in [0u8, 1, 0x7f, 0x80, 0xff, 12] {
                let mut b = good.clone();
                b[at] = v;
                if let Ok(idx) = Index::parse(&b) {
                    let _ = idx.entries();
                    let _ = idx.search_wild("alpha");
                    let _ = idx.search("alps");
                }
            }
        }
    }

    /// kmod's order of the values of one key: insert before the first >= priority.
    fn model(entries: &[(String, String, u32)]) -> BTreeMap<String, Vec<(String, u32)>> {
        let mut m: BTreeMap<String, Vec<(String, u32)>> = BTreeMap::new();
        for (k, v, p) in entries {
            let vals = m.entry(k.clone()).or_default();
            let pos = vals.iter().position(|(_, q)| q >= p).unwrap_or(vals.len());
            vals.insert(pos, (v.clone(), *p));
        }
        m
    }

    fn entry_strategy() -> impl Strategy<Value = Vec<(String, String, u32)>> {
        // small alphabets so keys share prefixes and collide
        prop::collection::vec(("[ab*?\\[\\]c-]{0,6}", "[a-z0-9 :/.]{0,8}", 0u32..6), 0..40)
    }

    proptest! {
        #[test]
        fn written_entries_read_back(entries in entry_strategy()) {
            let mut b = IndexBuilder::new();
            for (k, v, p) in &entries {
                b.insert(k, v, *p).unwrap();
            }
            let bytes = b.write();
            let idx = Index::parse(&bytes).unwrap();
            let m = model(&entries);
            let flat: Vec<(String, String, u32)> = m
                .iter()
                .flat_map(|(k, vs)| vs.iter().map(move |(v, p)| (k.clone(), v.clone(), *p)))
                .collect();
            prop_assert_eq!(idx.entries(), flat);
            for (k, vs) in &m {
                prop_assert_eq!(&idx.search_all(k), vs);
                prop_assert_eq!(idx.search(k), vs.first().map(|(v, _)| v.clone()));
            }
        }

        #[test]
        fn wild_lookup_finds_the_matching_keys(
            entries in entry_strategy(),
            query in "[abc\\]-]{0,6}",
        ) {
            let mut b = IndexBuilder::new();
            for (k, v, p) in &entries {
                b.insert(k, v, *p).unwrap();
            }
            let bytes = b.write();
            let idx = Index::parse(&bytes).unwrap();
            let mut got = idx.search_wild(&query);
            got.sort();
            // descending literally until a wildcard, then fnmatch on the rest, is fnmatch
            // of the whole key when keys have no backslash (and a query without wildcards
            // reaches no node twice)
            let mut want: Vec<(String, u32)> = entries
                .iter()
                .filter(|(k, _, _)| fnmatch(k.as_bytes(), query.as_bytes()))
                .map(|(_, v, p)| (v.clone(), *p))
                .collect();
            want.sort();
            prop_assert_eq!(got, want);
        }

        /// The eight-bytes-at-a-time comparison is the slices' own order, for any lengths
        /// (shared prefixes, one a prefix of the other, bytes above 0x7f).
        #[test]
        fn key_order_is_the_slices_order(
            prefix in prop::collection::vec(any::<u8>(), 0..20),
            a in prop::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), Just(0xffu8), Just(0u8)], 0..20),
            b in prop::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), Just(0xffu8), Just(0u8)], 0..20),
        ) {
            let (a, b) = ([&prefix[..], &a].concat(), [&prefix[..], &b].concat());
            prop_assert_eq!(key_cmp(&a, &b), a.cmp(&b));
            prop_assert_eq!(key_cmp(&b, &a), b.cmp(&a));
            prop_assert_eq!(key_cmp(&a, &a), std::cmp::Ordering::Equal);
        }

        /// The sorted writer gives kmod's trie's bytes for any insertions, refusing the same
        /// entries with the same errors (keys and values over the whole byte range the
        /// format refuses some of: non-ASCII keys, NUL).
        #[test]
        fn the_sorted_writer_writes_the_tries_bytes(
            entries in prop::collection::vec(
                (
                    prop_oneof!["[ab*?c-]{0,6}", "[ab\u{0}\u{e9}]{0,3}", "symbol:[a-c_]{0,12}"],
                    prop_oneof!["[a-z0-9 :/.]{0,8}", "[a\u{0}]{0,2}"],
                    prop_oneof![0u32..4, Just(u32::MAX)],
                ),
                0..60,
            )
        ) {
            let (mut t, mut s) = (IndexBuilder::new(), SortedIndex::new());
            for (k, v, p) in &entries {
                prop_assert_eq!(t.insert(k, v, *p), s.insert(k, v, *p));
            }
            prop_assert_eq!(t.try_write(), s.try_write());
        }
    }

    /// Keys that are prefixes of one another, a key ending inside another's prefix, equal
    /// priorities (newest first), the empty key at the root, a long key: the same bytes as
    /// the trie's, and they read back.
    #[test]
    fn the_sorted_writer_agrees_on_the_awkward_shapes() {
        let long = "x".repeat(70_000);
        let entries: Vec<(&str, &str, u32)> = vec![
            ("abc", "1", 2),
            ("ab", "2", 1),
            ("abcd", "3", 2),
            ("abc", "4", 2),
            ("", "root", 0),
            ("b", "5", 0),
            ("abc", "6", 1),
            (&long, "long", 3),
            ("abd", "7", 0),
        ];
        let (mut t, mut s) = (IndexBuilder::new(), SortedIndex::new());
        for (k, v, p) in &entries {
            t.insert(k, v, *p).unwrap();
            s.insert(k, v, *p).unwrap();
        }
        let bytes = s.try_write().unwrap();
        assert_eq!(t.try_write().unwrap(), bytes);
        let idx = Index::parse(&bytes).unwrap();
        assert_eq!(
            idx.search_all("abc"),
            vec![("6".to_string(), 1), ("4".into(), 2), ("1".into(), 2)]
        );
        assert_eq!(idx.search(""), Some("root".to_string()));
        assert_eq!(idx.search(&long), Some("long".to_string()));
        assert_eq!(
            SortedIndex::new().try_write(),
            IndexBuilder::new().try_write()
        );
    }
}
