//! Round trip of kmod's binary index: whatever set of (key, value, priority) is inserted into
//! [`IndexBuilder`] is read back by [`Index`] exactly: every key with all its values, in
//! kmod's order (ascending priority; among equal priorities the value inserted last comes
//! first, as `index_add_value` inserts before the first value whose priority is >=), no
//! key that was not inserted, and wildcard lookups that agree with glibc's `fnmatch(3)`
//! (what libkmod's `index_searchwild` calls) over the inserted patterns.
//!
//! Keys come from a realistic mix: module names, `modules.alias` patterns of the buses the
//! kernel knows (pci, usb, acpi, of, platform, x86cpu, …) with `*`, `?` and `[...]`,
//! `symbol:` keys, the empty key, and arbitrary 7-bit ASCII; values are module names, dep
//! lines and arbitrary (also non-ASCII) text.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::raw::{c_char, c_int};

use kabi::index::{Index, IndexBuilder};
use proptest::prelude::*;

unsafe extern "C" {
    /// glibc's fnmatch(3), the matcher libkmod uses (flags 0).
    fn fnmatch(pattern: *const c_char, string: *const c_char, flags: c_int) -> c_int;
}

/// glibc `fnmatch(pattern, text, 0) == 0`; the process never calls setlocale, so the C
/// locale matches byte by byte.
fn glibc_fnmatch(pattern: &str, text: &str) -> bool {
    let (p, t) = (CString::new(pattern).unwrap(), CString::new(text).unwrap());
    // SAFETY: both are valid NUL-terminated strings that outlive the call.
    unsafe { fnmatch(p.as_ptr(), t.as_ptr(), 0) == 0 }
}

type Model = BTreeMap<String, Vec<(String, u32)>>;

/// kmod's order of the values of one key: each new value goes before the first value whose
/// priority is >= its own. Duplicates are kept.
fn model(entries: &[(String, String, u32)]) -> Model {
    let mut m = Model::new();
    for (k, v, p) in entries {
        let vals = m.entry(k.clone()).or_default();
        let pos = vals.iter().position(|(_, q)| q >= p).unwrap_or(vals.len());
        vals.insert(pos, (v.clone(), *p));
    }
    m
}

fn flatten(m: &Model) -> Vec<(String, String, u32)> {
    m.iter()
        .flat_map(|(k, vs)| vs.iter().map(move |(v, p)| (k.clone(), v.clone(), *p)))
        .collect()
}

fn build(entries: &[(String, String, u32)]) -> Vec<u8> {
    let mut b = IndexBuilder::new();
    for (k, v, p) in entries {
        b.insert(k, v, *p)
            .unwrap_or_else(|e| panic!("insert({k:?}, {v:?}, {p}): {e}"));
    }
    let bytes = b.write();
    assert_eq!(
        b.try_write().as_ref(),
        Ok(&bytes),
        "write and try_write agree"
    );
    bytes
}

fn module_name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_]{0,15}"
}

/// Keys as depmod inserts them (aliases already normalized: `-` only inside brackets),
/// plus anything 7-bit.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => module_name(),
        2 => "pci:v0000[0-9A-F]{4}d0000[0-9A-F]{4}sv\\*sd\\*bc[0-9A-F]{2}sc\\*i\\*",
        1 => "pci:v\\*d\\*sv\\*sd\\*bc0[0-9]sc0[0-9]i\\*",
        2 => "usb:v[0-9A-F]{4}p[0-9A-F]{4}d\\*dc\\*dsc\\*dp\\*ic[0-9A-F]{2}isc\\*ip\\*in\\*",
        1 => "usb:v[0-9A-F]{4}p[0-9A-F]{4}d0[0-9]\\[0-[1-9]\\]\\*dc\\*dsc\\*dp\\*ic\\*isc\\*ip\\*in\\*",
        1 => "acpi\\*:[A-Z]{3}[0-9A-F]{4}:\\*",
        1 => "of:N\\*T\\*C[a-z]{2,6},[a-z0-9_]{2,10}(C\\*)?",
        1 => "platform:[a-z0-9_]{1,12}",
        1 => "x86cpu:vendor:\\*:family:\\*:model:\\*:feature:\\*00[0-9A-F]{2}\\*",
        1 => "(fs|crypto|char_major|block_major|net_pf)_[a-z0-9_]{1,8}",
        1 => "devname:[a-z/]{1,10}",
        1 => "[a-z:_]{0,4}\\?[a-z]{0,3}",
        1 => "[a-z]{0,3}\\[(!|\\^)?[a-c](-[d-f])?\\][a-z*]{0,3}",
        3 => "symbol:[a-zA-Z_][a-zA-Z0-9_]{0,24}",
        1 => "",
        1 => "[ -~]{0,12}",
        1 => "[\\x01-\\x7f]{0,8}",
        // a tiny alphabet: keys that are prefixes of each other and split nodes
        3 => "[ab*_]{0,5}",
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => module_name(),
        1 => "kernel/[a-z/]{1,20}\\.ko(\\.xz|\\.zst)?:( kernel/[a-z]{1,8}\\.ko){0,3}",
        1 => "",
        1 => "[ -~]{0,20}",
        1 => "\\PC{0,6}",
    ]
}

fn priority() -> impl Strategy<Value = u32> {
    // few distinct priorities (ties decide the order of values), and the full range
    prop_oneof![3 => 0u32..4, 1 => any::<u32>()]
}

fn entries() -> impl Strategy<Value = Vec<(String, String, u32)>> {
    prop::collection::vec((key(), value(), priority()), 0..80)
}

/// Keys near `k` that may not be in the index: extensions, truncations, a changed last
/// character.
fn neighbours(k: &str) -> Vec<String> {
    let mut v = vec![format!("{k}x"), format!("{k}_"), format!("{k}*")];
    if let Some((i, _)) = k.char_indices().last() {
        v.push(k[..i].to_string());
        v.push(format!("{}~", &k[..i]));
    }
    v
}

/// A concrete string that pattern `k` probably matches: `*` removed, `?` and bracket
/// classes replaced by a character. Whether it really matches is decided by fnmatch.
fn instance(k: &str) -> String {
    let mut out = String::new();
    let mut chars = k.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => {}
            '?' => out.push('Q'),
            '[' => {
                let mut first = None;
                for d in chars.by_ref() {
                    if d == ']' && first.is_some() {
                        break;
                    }
                    if first.is_none() && d != '!' && d != '^' {
                        first = Some(d);
                    }
                }
                out.push(first.unwrap_or('['));
            }
            c => out.push(c),
        }
    }
    out
}

fn is_wild(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

fn check_roundtrip(entries: &[(String, String, u32)]) -> Result<(), TestCaseError> {
    let bytes = build(entries);
    let idx = Index::parse(&bytes).map_err(|e| TestCaseError::fail(format!("parse: {e}")))?;
    let m = model(entries);

    // every key, every value, kmod's order; nothing else
    prop_assert_eq!(idx.entries(), flatten(&m));
    for (k, vs) in &m {
        prop_assert_eq!(&idx.search_all(k), vs, "search_all({:?})", k);
        prop_assert_eq!(
            idx.search(k),
            vs.first().map(|(v, _)| v.clone()),
            "search({:?})",
            k
        );
    }
    for k in m.keys().flat_map(|k| neighbours(k)) {
        if !m.contains_key(&k) {
            prop_assert_eq!(
                idx.search(&k),
                None,
                "search({:?}) of a key never inserted",
                k
            );
            prop_assert!(idx.search_all(&k).is_empty(), "search_all({:?})", k);
        }
    }
    if !m.contains_key("") {
        prop_assert_eq!(idx.search(""), None);
    }

    // wildcard lookups of literal strings: the values of every stored pattern that glibc's
    // fnmatch matches, merged by ascending priority. The trie descends literally up to the
    // first wildcard character of a key, which equals fnmatch of the whole key unless the
    // key has a backslash before it: such sets are left out of this part.
    if m.keys().any(|k| k.contains('\\')) {
        return Ok(());
    }
    let mut queries: Vec<String> = m.keys().map(|k| instance(k)).collect();
    queries.extend(m.keys().filter(|k| !is_wild(k)).cloned());
    queries.extend(["pci:v00008086d000010D3sv00008086sd00000000bc02sc00i00".to_string()]);
    queries.extend([String::new(), "a".into(), "ab_b".into()]);
    for q in queries.iter().filter(|q| !is_wild(q)) {
        let got = idx.search_wild(q);
        prop_assert!(
            got.windows(2).all(|w| w[0].1 <= w[1].1),
            "search_wild({:?}) not in ascending priority: {:?}",
            q,
            got
        );
        let mut want: Vec<(String, u32)> = m
            .iter()
            .filter(|(k, _)| glibc_fnmatch(k, q))
            .flat_map(|(_, vs)| vs.iter().cloned())
            .collect();
        let mut got_sorted = got.clone();
        got_sorted.sort();
        want.sort();
        prop_assert_eq!(got_sorted, want, "search_wild({:?})", q);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_entry_is_read_back_in_kmod_order(entries in entries()) {
        check_roundtrip(&entries)?;
    }

    /// Many values under few keys: duplicates, ties, priority order.
    #[test]
    fn values_of_shared_keys_keep_kmod_order(
        entries in prop::collection::vec(
            ("[ab]{0,2}", "[a-z]{0,3}", 0u32..3),
            0..60,
        ),
    ) {
        check_roundtrip(&entries)?;
    }

    /// With one value per key, the bytes depend only on the set, not on the order of
    /// insertion (the trie's shape is canonical).
    #[test]
    fn bytes_do_not_depend_on_insertion_order(
        map in prop::collection::btree_map(key(), (value(), priority()), 0..60),
        seed in any::<u64>(),
    ) {
        let ordered: Vec<(String, String, u32)> =
            map.iter().map(|(k, (v, p))| (k.clone(), v.clone(), *p)).collect();
        let mut shuffled = ordered.clone();
        // a deterministic shuffle from the seed (xorshift)
        let mut s = seed | 1;
        for i in (1..shuffled.len()).rev() {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            shuffled.swap(i, (s % (i as u64 + 1)) as usize);
        }
        prop_assert_eq!(build(&ordered), build(&shuffled));
        check_roundtrip(&shuffled)?;
    }

    /// Keys with non-ASCII characters and keys or values with NUL are refused, and a
    /// refused insertion leaves the index as it was.
    #[test]
    fn refused_insertions_change_nothing(
        entries in entries(),
        bad in prop::collection::vec(
            (0usize..80, prop_oneof![
                ("[a-z]{0,4}[\u{80}-\u{10ffff}][a-z]{0,4}", value()),
                ("[a-z]{0,4}\\x00[a-z]{0,4}", value()),
                (key(), "[a-z]{0,4}\\x00[a-z]{0,4}"),
            ], priority()),
            1..6,
        ),
    ) {
        let mut b = IndexBuilder::new();
        for (i, (k, v, p)) in entries.iter().enumerate() {
            for (_, (bk, bv), bp) in bad.iter().filter(|(at, _, _)| *at == i) {
                prop_assert!(b.insert(bk, bv, *bp).is_err(), "insert({:?}, {:?}) accepted", bk, bv);
            }
            b.insert(k, v, *p).unwrap();
        }
        for (_, (bk, bv), bp) in bad.iter().filter(|(at, _, _)| *at >= entries.len()) {
            prop_assert!(b.insert(bk, bv, *bp).is_err(), "insert({:?}, {:?}) accepted", bk, bv);
        }
        prop_assert_eq!(b.write(), build(&entries));
    }
}

#[test]
fn empty_index_has_no_keys() {
    let bytes = build(&[]);
    assert_eq!(bytes.len(), 12, "header only");
    let idx = Index::parse(&bytes).unwrap();
    assert!(idx.entries().is_empty());
    for k in ["", "a", "symbol:printk", "pci:v00008086d*"] {
        assert_eq!(idx.search(k), None);
        assert!(idx.search_all(k).is_empty());
        assert!(idx.search_wild(k).is_empty());
    }
}

#[test]
fn empty_key_and_empty_value() {
    let e = |k: &str, v: &str, p: u32| (k.to_string(), v.to_string(), p);
    let entries = [
        e("", "root", 2),
        e("", "", 1),
        e("a", "", 0),
        e("", "r2", 2),
    ];
    let bytes = build(&entries);
    let idx = Index::parse(&bytes).unwrap();
    assert_eq!(
        idx.search_all(""),
        vec![("".to_string(), 1), ("r2".into(), 2), ("root".into(), 2)]
    );
    assert_eq!(idx.search("a").as_deref(), Some(""));
    assert_eq!(idx.entries().len(), 4);
    check_roundtrip(&entries).unwrap();
}

#[test]
fn glibc_fnmatch_is_what_we_think() {
    assert!(glibc_fnmatch("pci:v*d*", "pci:v1d2"));
    assert!(glibc_fnmatch("a[b-c]d", "acd"));
    assert!(!glibc_fnmatch("a[!b-c]d", "acd"));
    assert!(glibc_fnmatch("a[b", "a[b"));
    assert!(!glibc_fnmatch("a?", "a"));
}
