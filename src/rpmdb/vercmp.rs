//! rpm's version comparison: `rpmvercmp` on one version or release string, and the
//! epoch:version-release ordering built on it. Pure functions, byte strings in.
//!
//! The rules (rpm's `rpmio/rpmvercmp.c`, re-derived, checked against `rpm.vercmp` of the
//! real rpm by the differential test `tests/rpmdb.rs`):
//! * equal strings are equal;
//! * the strings are walked segment by segment; characters other than ASCII letters,
//!   digits, `~` and `^` only separate segments;
//! * `~` sorts before anything, even the end of the string (`1.0~rc1 < 1.0`);
//! * `^` sorts after the end of the string but before anything else (`1.0 < 1.0^git1 < 1.0.1`);
//! * a segment is a run of digits or a run of letters; a numeric segment is newer than an
//!   alphabetic one; numbers compare by value (leading zeros dropped, then the longer is
//!   larger, then bytewise), letters bytewise;
//! * when all segments compared equal, the string with something left (a segment) is newer;
//!   if only separators differ, they are equal (`1.0 == 1_0`).

use std::cmp::Ordering;

fn is_alnum(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}

/// Compare two version (or release) strings as rpm's `rpmvercmp` does.
pub fn rpmvercmp(a: &[u8], b: &[u8]) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (mut i, mut j) = (0usize, 0usize);
    while i < a.len() || j < b.len() {
        i = skip_separators(a, i);
        j = skip_separators(b, j);
        match mark_rule(a, i, b, j) {
            Mark::Decided(o) => return o,
            Mark::Both => {
                i += 1;
                j += 1;
                continue;
            }
            Mark::Neither => {}
        }
        if i >= a.len() || j >= b.len() {
            break;
        }
        match compare_segments(a, i, b, j) {
            Ok((ea, eb)) => (i, j) = (ea, eb),
            Err(o) => return o,
        }
    }
    match (i >= a.len(), j >= b.len()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        _ => Ordering::Greater,
    }
}

/// The first position from `k` on that is an ASCII letter or digit, `~`, `^` or the end:
/// every other character only separates segments.
fn skip_separators(s: &[u8], mut k: usize) -> usize {
    while k < s.len() && !is_alnum(s[k]) && s[k] != b'~' && s[k] != b'^' {
        k += 1;
    }
    k
}

/// What the `~` and `^` rules say at `a[i]` and `b[j]` (each past its separators).
#[derive(Debug, PartialEq, Eq)]
enum Mark {
    /// One string has a mark the other has not: the order is decided.
    Decided(Ordering),
    /// Both have the same mark: step over it in both.
    Both,
    /// Neither has a mark: compare segments.
    Neither,
}

/// `~` sorts before everything, even the end of a string; `^` likewise, except that the end
/// of a string (the base version) is older.
fn mark_rule(a: &[u8], i: usize, b: &[u8], j: usize) -> Mark {
    let at = |s: &[u8], k: usize| s.get(k).copied().unwrap_or(0);
    let (ca, cb) = (at(a, i), at(b, j));
    if ca == b'~' || cb == b'~' {
        if ca != b'~' {
            return Mark::Decided(Ordering::Greater);
        }
        if cb != b'~' {
            return Mark::Decided(Ordering::Less);
        }
        return Mark::Both;
    }
    if ca == b'^' || cb == b'^' {
        if i >= a.len() {
            return Mark::Decided(Ordering::Less);
        }
        if j >= b.len() {
            return Mark::Decided(Ordering::Greater);
        }
        if ca != b'^' {
            return Mark::Decided(Ordering::Greater);
        }
        if cb != b'^' {
            return Mark::Decided(Ordering::Less);
        }
        return Mark::Both;
    }
    Mark::Neither
}

/// The segments at `a[i]` and `b[j]` (both on an ASCII letter or digit): a run of digits or
/// a run of letters, of the kind `a`'s starts with. `Ok` with where each ends when they are
/// equal, `Err` with the order when they differ.
fn compare_segments(a: &[u8], i: usize, b: &[u8], j: usize) -> Result<(usize, usize), Ordering> {
    let numeric = a.get(i).is_some_and(u8::is_ascii_digit);
    let (ea, eb) = (run_end(a, i, numeric), run_end(b, j, numeric));
    if ea == i {
        // cannot happen: a's segment starts with an alphanumeric character
        return Err(Ordering::Less);
    }
    if eb == j {
        // the segments are of different kinds: numeric is newer
        return Err(if numeric {
            Ordering::Greater
        } else {
            Ordering::Less
        });
    }
    let (mut sa, mut sb) = (&a[i..ea], &b[j..eb]);
    if numeric {
        sa = strip_leading_zeros(sa);
        sb = strip_leading_zeros(sb);
        match sa.len().cmp(&sb.len()) {
            Ordering::Equal => {}
            other => return Err(other),
        }
    }
    match sa.cmp(sb) {
        Ordering::Equal => Ok((ea, eb)),
        other => Err(other),
    }
}

/// The end of the run of digits (`numeric`) or of ASCII letters starting at `from`.
fn run_end(s: &[u8], from: usize, numeric: bool) -> usize {
    let mut k = from;
    while k < s.len()
        && (if numeric {
            s[k].is_ascii_digit()
        } else {
            s[k].is_ascii_alphabetic()
        })
    {
        k += 1;
    }
    k
}

fn strip_leading_zeros(mut s: &[u8]) -> &[u8] {
    while s.first() == Some(&b'0') {
        s = &s[1..];
    }
    s
}

/// An epoch:version-release.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Evr {
    /// None when there is no epoch (compared as 0).
    pub epoch: Option<u32>,
    pub version: String,
    /// None when there is no release (a dependency's `>= 1.0`); an installed package always
    /// has one.
    pub release: Option<String>,
}

impl Evr {
    /// Parse `[EPOCH:]VERSION[-RELEASE]` as rpm's `parseEVR` does: the epoch is the leading
    /// digits when a colon follows them (an empty one is 0; one beyond 2^32 - 1 is taken as
    /// 2^32 - 1), the release is what follows the last dash after the epoch.
    pub fn parse(s: &str) -> Evr {
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        let (epoch, rest) = match s.as_bytes().get(digits) {
            Some(b':') => (
                Some(if digits == 0 {
                    0
                } else {
                    s[..digits].parse().unwrap_or(u32::MAX)
                }),
                &s[digits + 1..],
            ),
            _ => (None, s),
        };
        let (version, release) = match rest.rsplit_once('-') {
            Some((v, r)) => (v, Some(r.to_string())),
            None => (rest, None),
        };
        Evr {
            epoch,
            version: version.to_string(),
            release,
        }
    }
}

/// rpm's ordering of two EVRs (`rpmverCmp`, `rpmVersionCompare`): epoch (a missing epoch is
/// 0), then version, then release, each with [`rpmvercmp`]; a missing release is older than
/// any release, two missing ones are equal.
pub fn evr_cmp(a: &Evr, b: &Evr) -> Ordering {
    a.epoch
        .unwrap_or(0)
        .cmp(&b.epoch.unwrap_or(0))
        .then_with(|| rpmvercmp(a.version.as_bytes(), b.version.as_bytes()))
        .then_with(|| match (&a.release, &b.release) {
            (Some(x), Some(y)) => rpmvercmp(x.as_bytes(), y.as_bytes()),
            (x, y) => x.is_some().cmp(&y.is_some()),
        })
}

impl std::fmt::Display for Evr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(e) = self.epoch {
            write!(f, "{e}:")?;
        }
        write!(f, "{}", self.version)?;
        if let Some(r) = &self.release {
            write!(f, "-{r}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    fn v(a: &str, b: &str) -> Ordering {
        rpmvercmp(a.as_bytes(), b.as_bytes())
    }

    /// Cases from rpm's own test suite (tests/rpmvercmp.at), and the tricky ones; the
    /// differential test in tests/rpmdb.rs checks many more against the real rpm.
    #[test]
    fn known_cases() {
        let cases: &[(&str, &str, Ordering)] = &[
            ("1.0", "1.0", Equal),
            ("1.0", "2.0", Less),
            ("2.0.1", "2.0", Greater),
            ("2.0", "2.0.1", Less),
            ("2.0.1a", "2.0.1", Greater),
            ("5.5p1", "5.5p2", Less),
            ("5.5p10", "5.5p1", Greater),
            ("10xyz", "10.1xyz", Less),
            ("xyz10", "xyz10.1", Less),
            ("xyz.4", "8", Less),
            ("8", "xyz.4", Greater),
            ("5.5p2", "5.6p1", Less),
            ("6.0.rc1", "6.0", Greater),
            ("10b2", "10a1", Greater),
            ("1.0aa", "1.0a", Greater),
            ("10.0001", "10.1", Equal),
            ("10.0001", "10.0039", Less),
            ("4.999.9", "5.0", Less),
            ("20101121", "20101122", Less),
            ("2_0", "2_0", Equal),
            ("2.0", "2_0", Equal),
            ("a", "a", Equal),
            ("a+", "a_", Equal),
            ("+", "_", Equal),
            ("1.0~rc1", "1.0", Less),
            ("1.0~rc1", "1.0~rc1", Equal),
            ("1.0~rc1", "1.0~rc2", Less),
            ("1.0~rc1~git123", "1.0~rc1", Less),
            ("1.0^", "1.0", Greater),
            ("1.0^git1", "1.0", Greater),
            ("1.0^git1", "1.01", Less),
            ("1.0^20160101", "1.0.1", Less),
            ("1.0^20160101^git1", "1.0^20160101", Greater),
            ("1.0~rc1^git1", "1.0~rc1", Greater),
            ("1.0^git1~pre", "1.0^git1", Less),
            ("1.0^git1", "1.0^git2", Less),
            ("a1", "1", Less),
            ("", "1", Less),
            ("007", "7", Equal),
            ("1.0_k6.1.0_55", "1.0_k6.1.0_56", Less),
        ];
        for &(a, b, want) in cases {
            assert_eq!(v(a, b), want, "rpmvercmp({a:?}, {b:?})");
            assert_eq!(v(b, a), want.reverse(), "rpmvercmp({b:?}, {a:?})");
        }
    }

    /// The steps on their own: where a segment comparison leaves each string, and what the
    /// marks decide at the end of one string.
    #[test]
    fn steps() {
        assert_eq!(skip_separators(b"._-1", 0), 3);
        assert_eq!(skip_separators(b"..~", 0), 2);
        assert_eq!(skip_separators(b"..", 0), 2);
        assert_eq!(compare_segments(b"007a", 0, b"7.b", 0), Ok((3, 1)));
        assert_eq!(compare_segments(b"abc1", 0, b"abc2", 0), Ok((3, 3)));
        assert_eq!(compare_segments(b"10", 0, b"9", 0), Err(Greater));
        assert_eq!(compare_segments(b"a", 0, b"1", 0), Err(Less));
        assert_eq!(compare_segments(b"1", 0, b"a", 0), Err(Greater));
        assert_eq!(mark_rule(b"1.0", 3, b"1.0^", 3), Mark::Decided(Less));
        assert_eq!(mark_rule(b"1.0", 3, b"1.0~", 3), Mark::Decided(Greater));
        assert_eq!(mark_rule(b"^a", 0, b"^b", 0), Mark::Both);
        assert_eq!(mark_rule(b"a", 0, b"b", 0), Mark::Neither);
    }

    #[test]
    fn evr_epoch_first_missing_is_zero() {
        let e = Evr::parse;
        assert_eq!(evr_cmp(&e("1:1.0-1"), &e("2.0-1")), Greater);
        assert_eq!(evr_cmp(&e("0:1.0-1"), &e("1.0-1")), Equal);
        assert_eq!(evr_cmp(&e("1.0-2"), &e("1.0-10")), Less);
        assert_eq!(evr_cmp(&e("1.0"), &e("1.0-1")), Less);
        assert_eq!(evr_cmp(&e(":1.0"), &e("0:1.0")), Equal);
        assert_eq!(
            e("3:1.0-1.2"),
            Evr {
                epoch: Some(3),
                version: "1.0".into(),
                release: Some("1.2".into())
            }
        );
        assert_eq!(e("1.0").to_string(), "1.0");
        assert_eq!(e("3:1.0-1").to_string(), "3:1.0-1");
    }
}
