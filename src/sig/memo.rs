//! Signatures already verified, kept between runs in a directory of the system (`/run/kabi`
//! for `kabi load`): the prediction before each load checks the module's signature as the
//! kernel will, and an RSA verification costs about 1.7 ms of a 3.5 ms `kabi load` on a fast
//! host (more under emulation), where kmod's `modprobe` pays none.
//!
//! Only successes are kept, each as the SHA-256 of everything the verification read: the
//! certificate (DER), the signature's algorithms, the signature and the digest it signs,
//! salted with the boot id. A verification is a pure function of those bytes, so an entry
//! never goes stale during a boot; a changed module, key or signature gives another entry.
//! The salt makes every entry of an earlier boot miss: the file is not flushed to disk, and
//! what a crash leaves of it where `/run` is on a disk (stale blocks of another file, which
//! someone could have filled with entries computed from public bytes) was written before the
//! boot id of the next boot could be known. The file is `KABISIGV` followed by the entries,
//! 32 bytes each, sorted, at most [`MAX`]: a lookup is a binary search, and a full file
//! starts over.

use super::cert::Cert;
use crate::root::Root;
use sha2::{Digest, Sha256};

/// The file's name in the cache directory.
pub const FILE: &str = "sig-verified";
const MAGIC: &[u8; 8] = b"KABISIGV";
/// The most entries kept (128 KiB).
pub const MAX: usize = 4096;

/// One verification's entry.
pub type Entry = [u8; 32];

/// The running kernel's boot id, the entries' salt (`None`: no memo).
pub fn boot_id() -> Option<Vec<u8>> {
    crate::root::read_kernel_file("proc/sys/kernel/random/boot_id", 64)?
        .ok()
        .filter(|b| b.len() > 30)
}

/// The entry of verifying `signature` over `digest` with `key`'s certificate, `algos`
/// naming the signature and hash algorithms, during the boot `boot` ([`boot_id`]).
pub fn entry(boot: &[u8], key: &Cert, algos: &str, signature: &[u8], digest: &[u8]) -> Entry {
    let mut h = Sha256::new();
    for part in [
        MAGIC.as_slice(),
        boot,
        &key.der,
        algos.as_bytes(),
        signature,
        digest,
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    h.finalize().into()
}

/// The entries of a file's bytes; `None` when it is not one of ours.
pub fn parse(data: &[u8]) -> Option<&[Entry]> {
    let body = data.strip_prefix(MAGIC.as_slice())?;
    if body.len() % 32 != 0 || body.len() / 32 > MAX {
        return None;
    }
    let (entries, rest) = body.as_chunks::<32>();
    rest.is_empty().then_some(entries)
}

/// Is `e` among the entries? (A binary search: in a file that is not sorted it may miss an
/// entry, never find one that is not there.)
pub fn contains(entries: &[Entry], e: &Entry) -> bool {
    entries.binary_search(e).is_ok()
}

/// The file's bytes with `e` added (sorted, without duplicates); a full file starts over.
pub fn render(entries: &[Entry], e: &Entry) -> Vec<u8> {
    let mut v: Vec<Entry> = if entries.len() >= MAX {
        Vec::new()
    } else {
        entries.to_vec()
    };
    // a file not sorted (not written by kabi) only misses lookups; what is written is sorted
    v.push(*e);
    v.sort_unstable();
    v.dedup();
    let mut out = Vec::with_capacity(MAGIC.len() + v.len() * 32);
    out.extend_from_slice(MAGIC);
    for x in &v {
        out.extend_from_slice(x);
    }
    out
}

/// The file in `dir` below `root`, mapped: only a regular file owned by root and writable by
/// no one else is believed. (It is replaced by rename, never rewritten in place, so mapping
/// it is safe.)
fn load(root: &Root, dir: &std::path::Path) -> Option<crate::root::Mapped> {
    let d = root.open_dir(dir).ok()?;
    let (f, fst) = d.open_root_owned(FILE)?;
    crate::root::Mapped::new(f, fst.size, (MAGIC.len() + MAX * 32) as u64).ok()
}

/// Was this verification made and kept before?
pub fn known(root: &Root, dir: &std::path::Path, e: &Entry) -> bool {
    load(root, dir).is_some_and(|m| parse(&m).is_some_and(|v| contains(v, e)))
}

/// Keep `e` (root only, best effort: without it the next run verifies again).
pub fn remember(root: &Root, dir: &std::path::Path, e: &Entry) {
    if !rustix::process::geteuid().is_root() {
        return;
    }
    let old = load(root, dir);
    let entries = old.as_deref().and_then(parse).unwrap_or(&[]);
    // not flushed to disk: whatever a crash of the machine leaves of it (nothing, the old
    // entries, zeroed or stale blocks) was written during another boot, so its entries miss
    // ([`entry`]'s salt); `/run` is a tmpfs on systemd systems anyway
    root.write_cache_unflushed(dir, &[(FILE, &render(entries, e))]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_roots_regular_file_is_believed_and_nothing_outside_is_written() {
        use std::os::unix::fs::{PermissionsExt, symlink};
        if !crate::test_is_root() {
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("run/kabi");
        std::fs::create_dir_all(&dir).unwrap();
        let outside = t.path().join("outside");
        let e = [7u8; 32];
        let good = render(&[], &e);
        std::fs::write(&outside, &good).unwrap();
        let root = Root::open(t.path()).unwrap();
        let rel = std::path::Path::new("run/kabi");
        let file = dir.join(FILE);
        // absent: not known
        assert!(!known(&root, rel, &e));
        // a link to a good file, a FIFO (no hang), a file others may write, one too large
        symlink(&outside, &file).unwrap();
        assert!(!known(&root, rel, &e), "followed a link");
        std::fs::remove_file(&file).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &file,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        assert!(!known(&root, rel, &e), "read a FIFO");
        std::fs::remove_file(&file).unwrap();
        std::fs::write(&file, &good).unwrap();
        assert!(known(&root, rel, &e));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(!known(&root, rel, &e), "believed a file others may write");
        let mut big = good.clone();
        big.resize(MAGIC.len() + (MAX + 1) * 32, 0);
        std::fs::write(&file, &big).unwrap();
        assert!(!known(&root, rel, &e), "believed a file over the cap");
        // remembering where the file is a link replaces the link; the target is untouched
        std::fs::remove_file(&file).unwrap();
        symlink(&outside, &file).unwrap();
        remember(&root, rel, &[9u8; 32]);
        assert_eq!(
            std::fs::read(&outside).unwrap(),
            good,
            "wrote through a link"
        );
        assert!(
            std::fs::symlink_metadata(&file)
                .unwrap()
                .file_type()
                .is_file()
        );
        assert!(known(&root, rel, &[9u8; 32]));
    }

    fn cert() -> Cert {
        let pem = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/sig/rsa2048.pem"
        ))
        .unwrap();
        super::super::cert::parse_bundle(&pem).unwrap().remove(0)
    }

    #[test]
    fn entries_bind_every_input_and_the_file_stays_sorted_and_bounded() {
        let c = cert();
        let boot = boot_id().expect("the machine's boot id");
        let e = entry(&boot, &c, "rsa sha256", b"sig", b"digest");
        assert_eq!(e, entry(&boot, &c, "rsa sha256", b"sig", b"digest"));
        // any input changed, or moved between fields, or another boot: another entry
        let mut next_boot = boot.clone();
        next_boot[0] ^= 1;
        for other in [
            entry(&boot, &c, "rsa sha512", b"sig", b"digest"),
            entry(&boot, &c, "rsa sha256", b"sih", b"digest"),
            entry(&boot, &c, "rsa sha256", b"sig", b"digesu"),
            entry(&boot, &c, "rsa sha256", b"sigd", b"igest"),
            entry(&next_boot, &c, "rsa sha256", b"sig", b"digest"),
        ] {
            assert_ne!(e, other);
        }
        let mut other_key = c.clone();
        other_key.der.push(0);
        assert_ne!(e, entry(&boot, &other_key, "rsa sha256", b"sig", b"digest"));

        let one = render(&[], &e);
        let v = parse(&one).unwrap();
        assert!(contains(v, &e));
        assert!(!contains(v, &[0; 32]));
        let two = render(v, &[0; 32]);
        let v2 = parse(&two).unwrap();
        assert_eq!(v2, [[0; 32], e]);
        // adding a known entry changes nothing
        assert_eq!(render(v2, &e), two);
        // not ours, cut short, or too long: not believed
        assert!(parse(b"KABISIGW").is_none());
        assert!(parse(&two[..two.len() - 1]).is_none());
        let mut huge = MAGIC.to_vec();
        huge.resize(MAGIC.len() + (MAX + 1) * 32, 0);
        assert!(parse(&huge).is_none());
        // a full file starts over with the new entry
        let mut full = MAGIC.to_vec();
        for i in 0..MAX as u32 {
            let mut x = [0u8; 32];
            x[..4].copy_from_slice(&i.to_be_bytes());
            full.extend_from_slice(&x);
        }
        let v = parse(&full).unwrap();
        assert_eq!(v.len(), MAX);
        assert_eq!(parse(&render(v, &e)).unwrap(), [e]);
    }
}
