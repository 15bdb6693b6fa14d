//! The certificates built into a kernel image, kept between runs in a directory of the system
//! (`/run/kabi` for `kabi load`): finding them means decompressing the whole image (about
//! 0.1 s, 18,000 page faults and 70 MiB for a Debian kernel), which a prediction before each
//! load must not pay. The file says which image it was read from (device, inode, size,
//! modification and change times); any difference and it is read again from the image.
//!
//! ```text
//! kabi-builtin-certs 1
//! image DEV INO SIZE MTIME_S MTIME_NS CTIME_S CTIME_NS
//! certs COUNT BYTES
//! <the certificates, DER, back to back>
//! ```

use super::cert::Cert;
use crate::root::{Root, Stat};

const MAGIC: &str = "kabi-builtin-certs 1";
/// The file's name in the cache directory.
pub const FILE: &str = "builtin-certs";
/// The largest cache file read (a kernel carries a few certificates of a few KiB).
const CAP: u64 = 4 << 20;

/// The identity of an image: what changes when it is replaced or rewritten.
fn identity(st: &Stat) -> String {
    format!(
        "image {} {} {} {} {} {} {}",
        st.dev, st.ino, st.size, st.mtime.0, st.mtime.1, st.ctime.0, st.ctime.1
    )
}

/// The cache file's bytes for `certs` read from the image `st` describes.
pub fn render(st: &Stat, certs: &[Cert]) -> Vec<u8> {
    let der: usize = certs.iter().map(|c| c.der.len()).sum();
    let mut out = format!("{MAGIC}\n{}\ncerts {} {der}\n", identity(st), certs.len()).into_bytes();
    for c in certs {
        out.extend_from_slice(&c.der);
    }
    out
}

/// The certificates of a cache file, if it was made from the image `st` describes.
pub fn parse(data: &[u8], st: &Stat) -> Option<Vec<Cert>> {
    let mut lines = data.splitn(4, |&b| b == b'\n');
    if lines.next()? != MAGIC.as_bytes() || lines.next()? != identity(st).as_bytes() {
        return None;
    }
    let counts = std::str::from_utf8(lines.next()?).ok()?;
    let mut f = counts.strip_prefix("certs ")?.split(' ');
    let (n, bytes): (usize, usize) = (f.next()?.parse().ok()?, f.next()?.parse().ok()?);
    let der = lines.next().unwrap_or(&[]);
    if f.next().is_some() || der.len() != bytes {
        return None;
    }
    if n == 0 {
        return der.is_empty().then(Vec::new);
    }
    let certs = super::cert::parse_bundle(der).ok()?;
    (certs.len() == n).then_some(certs)
}

/// The cached certificates of the image `st` describes, from `dir` below `root`: only a
/// regular file owned by root and writable by no one else is believed.
pub fn read(root: &Root, dir: &std::path::Path, st: &Stat) -> Option<Vec<Cert>> {
    let d = root.open_dir(dir).ok()?;
    let (f, fst) = d.open_root_owned(FILE)?;
    let data = crate::root::read_capped(f, fst.size, CAP).ok()?;
    parse(&data, st)
}

/// Keep `certs` of the image `st` describes in `dir` below `root` (root only, best effort:
/// without it the next run reads the image again).
pub fn write(root: &Root, dir: &std::path::Path, st: &Stat, certs: &[Cert]) {
    if rustix::process::geteuid().is_root() {
        root.write_cache(dir, &[(FILE, &render(st, certs))]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(size: u64) -> Stat {
        Stat {
            kind: crate::root::Kind::File,
            size,
            mtime: (1_700_000_000, 5),
            ctime: (1_700_000_001, 6),
            ino: 42,
            dev: 7,
            mode: 0o100644,
            uid: 0,
        }
    }

    fn certs() -> Vec<Cert> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/sig/");
        ["rsa2048", "p256", "p384"]
            .iter()
            .flat_map(|n| {
                let pem = std::fs::read(format!("{dir}{n}.pem")).unwrap();
                super::super::cert::parse_bundle(&pem).unwrap()
            })
            .collect()
    }

    #[test]
    fn round_trip_only_for_the_same_image() {
        let c = certs();
        assert_eq!(c.len(), 3);
        let st = stat(1000);
        let data = render(&st, &c);
        let back = parse(&data, &st).expect("same image");
        assert_eq!(back.len(), c.len());
        for (a, b) in back.iter().zip(&c) {
            assert_eq!(a.der, b.der);
        }
        // another image, or one rewritten: not believed
        assert!(parse(&data, &stat(1001)).is_none());
        let mut touched = stat(1000);
        touched.ctime.1 += 1;
        assert!(parse(&data, &touched).is_none());
        // cut short, or a count that does not match
        assert!(parse(&data[..data.len() - 1], &st).is_none());
        let text = String::from_utf8_lossy(&data).into_owned();
        let bad = text.replacen(&format!("certs {} ", c.len()), "certs 99 ", 1);
        assert!(parse(bad.as_bytes(), &st).is_none());
        // no certificate at all is a valid answer too
        assert_eq!(parse(&render(&st, &[]), &st).map(|v| v.len()), Some(0));
    }
}
