//! fnmatch(3) without flags, as kmod matches `modules.alias` patterns: `*`, `?`, `[...]`
//! (with `!` or `^` negation and ranges) and `\` escapes. Iterative, no recursion.

pub fn fnmatch(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    star = Some((p, t));
                    p += 1;
                    continue;
                }
                b'?' => {
                    p += 1;
                    t += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, next)) = class(pattern, p, text[t]) {
                        if matched {
                            p = next;
                            t += 1;
                            continue;
                        }
                    } else if text[t] == b'[' {
                        // an unterminated bracket is a literal '['
                        p += 1;
                        t += 1;
                        continue;
                    }
                }
                b'\\' if p + 1 < pattern.len() => {
                    if pattern[p + 1] == text[t] {
                        p += 2;
                        t += 1;
                        continue;
                    }
                }
                c => {
                    if c == text[t] {
                        p += 1;
                        t += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((sp, st)) => {
                p = sp + 1;
                t = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Match `c` against the bracket expression at `pattern[start] == b'['`.
/// Returns (matched, index after `]`), or `None` if the bracket is not terminated.
fn class(pattern: &[u8], start: usize, c: u8) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = matches!(pattern.get(i), Some(b'!') | Some(b'^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let lo = *pattern.get(i)?;
        if lo == b']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        let lo = if lo == b'\\' {
            i += 1;
            *pattern.get(i)?
        } else {
            lo
        };
        if pattern.get(i + 1) == Some(&b'-') && pattern.get(i + 2).is_some_and(|&h| h != b']') {
            let hi = pattern[i + 2];
            if lo <= c && c <= hi {
                matched = true;
            }
            i += 3;
        } else {
            if lo == c {
                matched = true;
            }
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fnmatch;

    #[test]
    fn globs() {
        let m = |p: &str, t: &str| fnmatch(p.as_bytes(), t.as_bytes());
        assert!(m("fs-udf", "fs-udf"));
        assert!(!m("fs-udf", "fs-ud"));
        assert!(m(
            "pci:v00008086d*sv*sd*bc*sc*i*",
            "pci:v00008086d00001234sv0sd0bc02sc00i00"
        ));
        assert!(!m("pci:v00008086d*", "pci:v00001234d0"));
        assert!(m("a?c", "abc"));
        assert!(m("x[0-9]y", "x5y"));
        assert!(!m("x[!0-9]y", "x5y"));
        assert!(m("x[]]y", "x]y"));
        assert!(m("*", ""));
        assert!(m("a\\*b", "a*b"));
        assert!(!m("a\\*b", "axb"));
        assert!(m(
            "usb:v*p*d*dc*dsc*dp*ic08isc06ip50in*",
            "usb:v1p2d3dc0dsc0dp0ic08isc06ip50in00"
        ));
    }
}
