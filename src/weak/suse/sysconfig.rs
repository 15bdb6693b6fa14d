//! Shell-style variable files (`/etc/sysconfig/kernel`): the value of one variable, read as
//! the shell would assign it, without running anything.
//!
//! SUSE's `weak-modules2` (SLE 15) sources `/etc/sysconfig/kernel` and reads
//! `INITRD_MODULES`. Here the file is parsed, never executed: an assignment `NAME=VALUE` at
//! the start of a line (after blanks, optionally after `export`), where VALUE is a run of
//! unquoted characters, `'...'` (taken literally) and `"..."` (`\"`, `\\`, `\$` and `` \` ``
//! unescaped; other text literal) pieces, ending at an unquoted blank, `;`, `#` or the end of
//! the line. Quoted pieces may span lines. The last assignment wins. Expansions (`$X`,
//! `$(...)`) are not performed: they are kept as text, as no sysconfig file of SUSE's writes
//! them. Comments (`#` at the start of a word) and every other line are skipped.

/// The longest file read (sysconfig files are a few kilobytes).
pub const MAX_FILE: u64 = 1 << 20;

/// The value of the last assignment to `name` in `text`; None when there is none.
pub fn value(text: &[u8], name: &str) -> Option<String> {
    let mut found = None;
    let mut i = 0;
    while i < text.len() {
        // start of a line: blanks, then optionally `export `
        let mut j = skip_blanks(text, i);
        if let Some(rest) = text.get(j..)
            && rest.starts_with(b"export")
            && rest.get(6).is_some_and(|&c| c == b' ' || c == b'\t')
        {
            j = skip_blanks(text, j + 6);
        }
        let name_end = j + text
            .get(j..)
            .unwrap_or_default()
            .iter()
            .take_while(|&&c| c == b'_' || c.is_ascii_alphanumeric())
            .count();
        let is_assignment =
            name_end > j && !text[j].is_ascii_digit() && text.get(name_end) == Some(&b'=');
        if is_assignment {
            let (v, next) = word(text, name_end + 1);
            if &text[j..name_end] == name.as_bytes() {
                found = Some(String::from_utf8_lossy(&v).into_owned());
            }
            i = next;
        }
        // on to the next line
        match text
            .get(i..)
            .and_then(|r| r.iter().position(|&c| c == b'\n'))
        {
            Some(n) => i += n + 1,
            None => break,
        }
    }
    found
}

fn skip_blanks(text: &[u8], mut i: usize) -> usize {
    while text.get(i).is_some_and(|&c| c == b' ' || c == b'\t') {
        i += 1;
    }
    i
}

/// One shell word starting at `i`: its value and where it ends.
fn word(text: &[u8], mut i: usize) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    while let Some(&c) = text.get(i) {
        match c {
            b' ' | b'\t' | b'\n' | b';' => break,
            b'#' if out.is_empty() => break,
            b'\'' => {
                let body = text.get(i + 1..).unwrap_or_default();
                let n = body.iter().position(|&c| c == b'\'').unwrap_or(body.len());
                out.extend_from_slice(&body[..n]);
                i += n + 2;
            }
            b'"' => {
                i += 1;
                while let Some(&c) = text.get(i) {
                    match c {
                        b'"' => break,
                        b'\\' if matches!(text.get(i + 1), Some(b'"' | b'\\' | b'$' | b'`')) => {
                            out.push(text[i + 1]);
                            i += 2;
                        }
                        b'\\' if text.get(i + 1) == Some(&b'\n') => i += 2,
                        _ => {
                            out.push(c);
                            i += 1;
                        }
                    }
                }
                i += 1;
            }
            b'\\' => {
                match text.get(i + 1) {
                    Some(b'\n') => {}
                    Some(&n) => out.push(n),
                    None => {}
                }
                i += 2;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    (out, i.min(text.len()))
}

/// The words of a value, as the shell splits an unquoted expansion (`printf '%s\n'
/// $INITRD_MODULES`).
pub fn words(v: &str) -> impl Iterator<Item = &str> {
    v.split([' ', '\t', '\n']).filter(|w| !w.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_as_the_shell_reads_them() {
        let text = br#"
## Type:        string
# INITRD_MODULES="commented out"
INITRD_MODULES="a b"
  export OTHER='x y' # trailing comment
INITRD_MODULES=" kabi_vendor_a	mlx5_core "   # the last one wins
QUOTED="it's \"fine\" \$HOME"
MIXED=ab'c d'"e f"g
MULTI="one
two"
EMPTY=
NOT AN=assignment
"#;
        assert_eq!(
            value(text, "INITRD_MODULES").as_deref(),
            Some(" kabi_vendor_a\tmlx5_core ")
        );
        assert_eq!(
            words(&value(text, "INITRD_MODULES").unwrap()).collect::<Vec<_>>(),
            ["kabi_vendor_a", "mlx5_core"]
        );
        assert_eq!(value(text, "OTHER").as_deref(), Some("x y"));
        assert_eq!(
            value(text, "QUOTED").as_deref(),
            Some(r#"it's "fine" $HOME"#)
        );
        assert_eq!(value(text, "MIXED").as_deref(), Some("abc de fg"));
        assert_eq!(value(text, "MULTI").as_deref(), Some("one\ntwo"));
        assert_eq!(value(text, "EMPTY").as_deref(), Some(""));
        assert_eq!(value(text, "AN"), None);
        assert_eq!(value(text, "MISSING"), None);
    }

    #[test]
    fn never_panics_on_truncated_input() {
        for t in [
            &b"A=\"unterminated"[..],
            b"A='unterminated",
            b"A=\\",
            b"A=\"\\",
            b"export",
            b"export ",
            b"=x",
            b"1A=x",
        ] {
            let _ = value(t, "A");
        }
        assert_eq!(value(b"A=\"open", "A").as_deref(), Some("open"));
        assert_eq!(value(b"1A=x", "1A"), None);
    }
}
