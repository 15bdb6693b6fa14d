//! `.modinfo`: `key=value` C strings separated by runs of NUL bytes (spec §1.2).

use serde::Serialize;

/// One `.modinfo` record. Bytes are kept as they are: modinfo output must be byte-identical.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModinfoEntry {
    #[serde(serialize_with = "crate::module::ser_bytes_lossy")]
    pub key: Vec<u8>,
    #[serde(serialize_with = "crate::module::ser_bytes_lossy")]
    pub value: Vec<u8>,
}

/// Split a `.modinfo` section into its records, in file order, as kmod does
/// (`kmod_elf_get_strings`): leading NUL padding is skipped, a section of at most one
/// remaining byte holds nothing, every maximal run of non-NUL bytes is one record, and a
/// record without `=` is a key with an empty value.
pub fn parse(section: &[u8]) -> Vec<ModinfoEntry> {
    records(section)
        .map(|(key, value)| ModinfoEntry {
            key: key.to_vec(),
            value: value.to_vec(),
        })
        .collect()
}

/// [`parse`] without copying: each record's key and value, borrowed from the section.
pub fn records(section: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let start = section
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(section.len());
    let body = &section[start.min(section.len().saturating_sub(1))..];
    // a body of at most one byte holds nothing
    let body = if body.len() <= 1 { &[][..] } else { body };
    // split at each NUL, empty pieces left out (memchr: a section is kilobytes of short
    // records, and a byte loop was a tenth of `depmod`'s extraction)
    let mut rest = body;
    std::iter::from_fn(move || {
        while !rest.is_empty() {
            let (rec, next) = match memchr::memchr(0, rest) {
                Some(nul) => (&rest[..nul], &rest[nul + 1..]),
                None => (rest, &[][..]),
            };
            rest = next;
            if !rec.is_empty() {
                return Some(match memchr::memchr(b'=', rec) {
                    Some(eq) => (&rec[..eq], &rec[eq + 1..]),
                    None => (rec, &[][..]),
                });
            }
        }
        None
    })
}

/// The first value of `key`, as the kernel reads single-valued keys.
pub fn first<'a>(entries: &'a [ModinfoEntry], key: &str) -> Option<&'a [u8]> {
    entries
        .iter()
        .find(|e| e.key == key.as_bytes())
        .map(|e| e.value.as_slice())
}

/// Every value of `key`, in file order.
pub fn all<'a>(entries: &'a [ModinfoEntry], key: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
    entries
        .iter()
        .filter(move |e| e.key == key.as_bytes())
        .map(|e| e.value.as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(e: &ModinfoEntry) -> (String, String) {
        (
            String::from_utf8_lossy(&e.key).into(),
            String::from_utf8_lossy(&e.value).into(),
        )
    }

    #[test]
    fn splits_and_skips_padding() {
        let sec = b"\0\0license=GPL\0\0\0alias=fs-udf\0depends=a,b\0intree\0name=udf\0";
        let got: Vec<_> = parse(sec).iter().map(kv).collect();
        assert_eq!(
            got,
            vec![
                ("license".into(), "GPL".into()),
                ("alias".into(), "fs-udf".into()),
                ("depends".into(), "a,b".into()),
                ("intree".into(), "".into()),
                ("name".into(), "udf".into()),
            ]
        );
        assert_eq!(first(&parse(sec), "name"), Some(&b"udf"[..]));
    }

    #[test]
    fn unterminated_last_and_tiny_sections() {
        assert_eq!(parse(b"a=1\0b=2").len(), 2);
        assert!(parse(b"").is_empty());
        assert!(parse(b"\0\0\0").is_empty());
        assert!(
            parse(b"\0\0x").is_empty(),
            "kmod ignores a single remaining byte"
        );
        assert_eq!(parse(b"=v\0").len(), 1);
    }

    proptest::proptest! {
        /// The records are the maximal runs of non-NUL bytes of the body, each split at its
        /// first `=`, for any bytes (runs of NUL, `=` anywhere, long and short sections).
        #[test]
        fn records_are_the_non_nul_runs(
            section in proptest::collection::vec(
                proptest::prop_oneof![proptest::strategy::Just(0u8), proptest::strategy::Just(b'='), 1u8..=255],
                0..200,
            )
        ) {
            let start = section.iter().position(|&b| b != 0).unwrap_or(section.len());
            let body = &section[start.min(section.len().saturating_sub(1))..];
            let body = if body.len() <= 1 { &[][..] } else { body };
            let want: Vec<(&[u8], &[u8])> = body
                .split(|&b| b == 0)
                .filter(|r| !r.is_empty())
                .map(|r| match r.iter().position(|&b| b == b'=') {
                    Some(eq) => (&r[..eq], &r[eq + 1..]),
                    None => (r, &[][..]),
                })
                .collect();
            proptest::prop_assert_eq!(records(&section).collect::<Vec<_>>(), want);
        }
    }
}
