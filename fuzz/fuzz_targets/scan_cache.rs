#![no_main]
//! The scan cache decoder on arbitrary bytes: never panics; what it accepts re-encodes to
//! something that decodes to the same entries; the fingerprint read alone from the prefix
//! never panics and agrees with the whole decode whenever that accepts the bytes; the lazy
//! reader (`Stored`: checked and indexed whole, each record decoded when asked for) never
//! panics, accepts what the whole decode accepts and gives the same records (it also accepts
//! records whose text is not UTF-8, which decode refuses and its `get` gives as misses).
//! Replacing the fingerprint (`with_fingerprint`) never panics; on a file decode accepts it
//! gives a file with the same entries and the new fingerprint.

use kabi::depmod::cache;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let prefix = cache::Fingerprint::from_prefix(data);
    let stored = cache::Stored::parse(data.to_vec().into());
    match cache::decode(data) {
        Some(c) => {
            let again = cache::decode(&c.encode()).expect("our own encoding decodes");
            assert_eq!(again.entries, c.entries);
            // every string of every record is had (the spans were checked: nothing panics)
            for (_, s) in c.entries.values() {
                if let Ok(r) = s {
                    let n = r.exports().map(|(n, _)| n.len()).sum::<usize>()
                        + r.deps().map(|d| d.name.len()).sum::<usize>()
                        + r.info().map(|(_, v)| v.len()).sum::<usize>();
                    std::hint::black_box(n);
                }
            }
            assert_eq!(again.fingerprint, c.fingerprint);
            assert_eq!(prefix.as_ref(), Some(&c.fingerprint));
            let stored = stored.expect("the lazy reader accepts what decode accepts");
            assert_eq!(stored.len(), c.entries.len());
            assert_eq!(stored.fingerprint, c.fingerprint);
            for (path, (key, scanned)) in &c.entries {
                assert_eq!(stored.get(path, key).as_ref(), Some(scanned));
            }
            let fp = cache::Fingerprint {
                tree: None,
                ..c.fingerprint.clone()
            };
            let swapped = cache::with_fingerprint(data, &fp).expect("a cache file");
            let d = cache::decode(&swapped).expect("the same records under another fingerprint");
            assert_eq!(d.entries, c.entries);
            assert_eq!(d.fingerprint, fp);
        }
        None => {
            let _ = cache::with_fingerprint(data, &cache::Fingerprint::default());
            if let Ok(s) = stored {
                for (path, key) in s.keys() {
                    let _ = s.get(path, key);
                }
            }
        }
    }
});
