//! GNU `getopt_long`, as kmod's tools parse their arguments with it (glibc 2.36): short
//! options clustered (`-nv`, `-Cfile`), long options by unique prefix (`--show-dep`),
//! `--name=value`, argument permutation (options may follow operands; `--` ends options;
//! `POSIXLY_CORRECT` or a leading `+` stops at the first operand), and glibc's messages,
//! word for word, with `argv[0]` as given.
//!
//! A parse is a list of [`Opt`] in command-line order (a tool applies them in order, so the
//! last of `-a -l` wins) and the operands in their order, or the first error's message
//! (the tool then exits 1, as kmod's do on `'?'`).

/// Whether a long option takes an argument (`no_argument`, `required_argument`,
/// `optional_argument`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HasArg {
    No,
    Required,
    Optional,
}

/// One entry of a `struct option` table: the name, its argument, and the value `getopt_long`
/// returns (a short option character, or a small number for long-only options).
#[derive(Debug, Clone, Copy)]
pub struct LongOpt {
    pub name: &'static str,
    pub has_arg: HasArg,
    pub val: i32,
}

/// A long option table entry.
pub const fn long(name: &'static str, has_arg: HasArg, val: i32) -> LongOpt {
    LongOpt { name, has_arg, val }
}

/// One option found: its value (as `getopt_long` returns it) and its argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opt {
    pub val: i32,
    pub arg: Option<String>,
}

/// A successful parse.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    pub opts: Vec<Opt>,
    pub operands: Vec<String>,
}

impl Parsed {
    /// Is option `val` present?
    pub fn has(&self, val: i32) -> bool {
        self.opts.iter().any(|o| o.val == val)
    }
}

/// A short option of an optstring: its argument kind.
fn short_kind(optstring: &str, c: char) -> Option<HasArg> {
    if c == ':' || c == '+' || c == '-' {
        return None;
    }
    let b = optstring.as_bytes();
    let i = optstring.find(c)?;
    let len = c.len_utf8();
    let colon1 = b.get(i + len) == Some(&b':');
    let colon2 = colon1 && b.get(i + len + 1) == Some(&b':');
    Some(if colon2 {
        HasArg::Optional
    } else if colon1 {
        HasArg::Required
    } else {
        HasArg::No
    })
}

/// Parse `args` (without `argv[0]`) as glibc's `getopt_long(argc, argv, optstring, longopts)`
/// would, with error messages naming `prog` (`argv[0]`). `Err` holds the message that glibc
/// prints to stderr (newline included).
pub fn getopt_long(
    prog: &str,
    args: &[String],
    optstring: &str,
    longopts: &[LongOpt],
) -> Result<Parsed, String> {
    let posix = optstring.starts_with('+') || std::env::var_os("POSIXLY_CORRECT").is_some();
    let optstring = optstring.trim_start_matches(['+', '-']);
    let mut out = Parsed::default();
    let mut i = 0usize;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            out.operands.extend(args[i + 1..].iter().cloned());
            break;
        }
        if !a.starts_with('-') || a == "-" {
            if posix {
                out.operands.extend(args[i..].iter().cloned());
                break;
            }
            out.operands.push(a.clone());
            i += 1;
            continue;
        }
        if let Some(body) = a.strip_prefix("--") {
            i = long_option(prog, args, i, body, longopts, &mut out)?;
            continue;
        }
        // a cluster of short options
        let chars: Vec<char> = a[1..].chars().collect();
        let mut k = 0usize;
        i += 1;
        while k < chars.len() {
            let c = chars[k];
            k += 1;
            let Some(kind) = short_kind(optstring, c) else {
                return Err(format!("{prog}: invalid option -- '{c}'\n"));
            };
            let rest: String = chars[k..].iter().collect();
            match kind {
                HasArg::No => out.opts.push(Opt {
                    val: c as i32,
                    arg: None,
                }),
                HasArg::Optional => {
                    out.opts.push(Opt {
                        val: c as i32,
                        arg: (!rest.is_empty()).then_some(rest),
                    });
                    break;
                }
                HasArg::Required => {
                    let arg = if !rest.is_empty() {
                        rest
                    } else if i < args.len() {
                        i += 1;
                        args[i - 1].clone()
                    } else {
                        return Err(format!("{prog}: option requires an argument -- '{c}'\n"));
                    };
                    out.opts.push(Opt {
                        val: c as i32,
                        arg: Some(arg),
                    });
                    break;
                }
            }
        }
    }
    Ok(out)
}

/// One `--name[=value]` at `args[i]`; returns the index of the next argument.
fn long_option(
    prog: &str,
    args: &[String],
    i: usize,
    body: &str,
    longopts: &[LongOpt],
    out: &mut Parsed,
) -> Result<usize, String> {
    let (name, value) = match body.split_once('=') {
        Some((n, v)) => (n, Some(v.to_string())),
        None => (body, None),
    };
    let exact = longopts.iter().find(|o| o.name == name);
    let found = match exact {
        Some(o) => o,
        None => {
            let mut first: Option<(usize, &LongOpt)> = None;
            let mut ambiguous: Vec<usize> = Vec::new();
            for (idx, o) in longopts.iter().enumerate() {
                if !o.name.starts_with(name) {
                    continue;
                }
                match first {
                    None => first = Some((idx, o)),
                    Some((fi, f)) => {
                        if f.has_arg != o.has_arg || f.val != o.val {
                            if ambiguous.is_empty() {
                                ambiguous.push(fi);
                            }
                            ambiguous.push(idx);
                        }
                    }
                }
            }
            if !ambiguous.is_empty() {
                let mut msg = format!("{prog}: option '--{body}' is ambiguous; possibilities:");
                ambiguous.sort_unstable();
                for idx in ambiguous {
                    msg.push_str(&format!(" '--{}'", longopts[idx].name));
                }
                msg.push('\n');
                return Err(msg);
            }
            match first {
                Some((_, o)) => o,
                None => return Err(format!("{prog}: unrecognized option '--{body}'\n")),
            }
        }
    };
    let mut next = i + 1;
    let arg = match (found.has_arg, value) {
        (HasArg::No, Some(_)) => {
            return Err(format!(
                "{prog}: option '--{}' doesn't allow an argument\n",
                found.name
            ));
        }
        (HasArg::No, None) => None,
        (_, Some(v)) => Some(v),
        (HasArg::Optional, None) => None,
        (HasArg::Required, None) => {
            if next < args.len() {
                next += 1;
                Some(args[next - 1].clone())
            } else {
                return Err(format!(
                    "{prog}: option '--{}' requires an argument\n",
                    found.name
                ));
            }
        }
    };
    out.opts.push(Opt {
        val: found.val,
        arg,
    });
    Ok(next)
}

/// kmod's `prepend_options_from_env`: the words of `$MODPROBE_OPTIONS` (split at spaces;
/// a word that starts with a quote runs to the matching quote, a quote inside a word is
/// removed with its match) placed before the command line's own arguments.
pub fn split_modprobe_options(env: &str) -> Vec<String> {
    let b = env.as_bytes();
    let mut out: Vec<String> = Vec::new();
    let mut buf: Vec<u8> = b.to_vec();
    let mut start = 0usize; // start of the current word in buf
    let mut s = 0usize;
    let mut quote: Option<usize> = None;
    while s < buf.len() {
        match quote {
            None => {
                if buf[s] == b' ' {
                    out.push(String::from_utf8_lossy(&buf[start..s]).into_owned());
                    start = s + 1;
                } else if buf[s] == b'"' || buf[s] == b'\'' {
                    quote = Some(s);
                }
            }
            Some(q) => {
                if buf[s] == buf[q] {
                    if q == start {
                        out.push(String::from_utf8_lossy(&buf[start + 1..s]).into_owned());
                        start = s + 1;
                    } else {
                        // drop both quote characters
                        buf.remove(s);
                        buf.remove(q);
                        s -= 2;
                    }
                    quote = None;
                }
            }
        }
        s += 1;
    }
    if start < s.min(buf.len()) {
        out.push(String::from_utf8_lossy(&buf[start..s.min(buf.len())]).into_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: &[LongOpt] = &[
        long("all", HasArg::No, 'a' as i32),
        long("remove", HasArg::No, 'r' as i32),
        long("remove-dependencies", HasArg::No, 5),
        long("remove-holders", HasArg::No, 5),
        long("show-depends", HasArg::No, 'D' as i32),
        long("show-config", HasArg::No, 'c' as i32),
        long("show", HasArg::No, 'n' as i32),
        long("config", HasArg::Required, 'C' as i32),
    ];

    fn p(args: &[&str]) -> Result<Parsed, String> {
        let v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        getopt_long("modprobe", &v, "arDcnC:", LONG)
    }

    #[test]
    fn prefixes_permutation_and_messages() {
        let r = p(&["dummy", "--show-dep", "-nC", "x", "a=1"]).unwrap();
        assert_eq!(r.operands, ["dummy", "a=1"]);
        assert_eq!(
            r.opts,
            [
                Opt {
                    val: 'D' as i32,
                    arg: None
                },
                Opt {
                    val: 'n' as i32,
                    arg: None
                },
                Opt {
                    val: 'C' as i32,
                    arg: Some("x".into())
                }
            ]
        );
        // exact match wins over longer names; equal entries are not ambiguous
        assert_eq!(p(&["--show"]).unwrap().opts[0].val, 'n' as i32);
        assert_eq!(p(&["--remove-"]).unwrap().opts[0].val, 5);
        assert_eq!(
            p(&["--show-"]).unwrap_err(),
            "modprobe: option '--show-' is ambiguous; possibilities: '--show-depends' '--show-config'\n"
        );
        assert_eq!(
            p(&["--bogus=1"]).unwrap_err(),
            "modprobe: unrecognized option '--bogus=1'\n"
        );
        assert_eq!(
            p(&["--all=1"]).unwrap_err(),
            "modprobe: option '--all' doesn't allow an argument\n"
        );
        assert_eq!(
            p(&["--conf"]).unwrap_err(),
            "modprobe: option '--config' requires an argument\n"
        );
        assert_eq!(p(&["-x"]).unwrap_err(), "modprobe: invalid option -- 'x'\n");
        assert_eq!(
            p(&["-C"]).unwrap_err(),
            "modprobe: option requires an argument -- 'C'\n"
        );
        assert_eq!(p(&["--", "-n"]).unwrap().operands, ["-n"]);
        assert_eq!(
            p(&["--conf=a=b"]).unwrap().opts[0].arg.as_deref(),
            Some("a=b")
        );
    }

    #[test]
    fn modprobe_options_env() {
        assert_eq!(split_modprobe_options("-q -v"), ["-q", "-v"]);
        // as kmod: the space after a word quoted as a whole makes an empty word
        assert_eq!(
            split_modprobe_options("-C \"/a b\" x'y z'w"),
            ["-C", "/a b", "", "xy zw"]
        );
        assert_eq!(split_modprobe_options(""), Vec::<String>::new());
    }
}
