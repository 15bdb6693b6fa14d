//! Module.symvers (spec §4.1): `crc\tsymbol\towner\texport type\tnamespace`, in its 3-, 4-
//! and both 5-column layouts, plain or compressed; and where distributions ship it (§4.2).

use super::abi::KernelSymbol;
use crate::error::{Error, ParseError};
use crate::module::ExportKind;
use std::path::{Path, PathBuf};

/// Parse a Module.symvers text. Lines are split on tabs only (a namespace column may be
/// empty); a line with fewer than three fields is an error naming the line.
pub fn parse(text: &str) -> Result<Vec<KernelSymbol>, ParseError> {
    parse_kept(text, &|_| true)
}

/// [`parse`], keeping only the symbols whose name `keep` accepts. Every line is still
/// checked, so a file is refused whatever is asked of it; a symbol not kept costs no
/// allocation (a distribution's file has 15,000 to 30,000 lines, a module needs a few dozen).
pub fn parse_kept(
    text: &str,
    keep: &dyn Fn(&str) -> bool,
) -> Result<Vec<KernelSymbol>, ParseError> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while start < bytes.len() {
        let (end, line) = match memchr::memchr(b'\n', &bytes[start..]) {
            // as `str::lines`: a `\r` before the line break is not part of the line
            Some(n) => {
                let l = &text[start..start + n];
                (start + n, l.strip_suffix('\r').unwrap_or(l))
            }
            None => (bytes.len(), &text[start..]),
        };
        start = end + 1;
        i += 1;
        if line.trim().is_empty() {
            continue;
        }
        let f = fields(line);
        let f = &f.0[..f.1];
        let bad = |why: &str| ParseError::section(&format!("line {i}"), why.to_string());
        if f.len() < 3 {
            return Err(bad(
                "expected at least 3 tab-separated fields (crc, symbol, owner)",
            ));
        }
        let crc =
            parse_crc(f[0]).ok_or_else(|| bad("the CRC is not a hex number like 0x1234abcd"))?;
        if f[1].is_empty() {
            return Err(bad("empty symbol name"));
        }
        // 5.4-5.5 put the namespace third: crc sym ns owner type
        let (owner, kind, ns) = if f.len() >= 5 && f[4].starts_with("EXPORT_") {
            (f[3], f[4], f[2])
        } else {
            (
                f[2],
                f.get(3).copied().unwrap_or("EXPORT_SYMBOL"),
                f.get(4).copied().unwrap_or(""),
            )
        };
        let kind = export_kind(kind).ok_or_else(|| bad("unknown export type"))?;
        if keep(f[1]) {
            out.push(KernelSymbol {
                name: f[1].to_string(),
                crc: Some(crc),
                kind,
                namespace: ns.to_string(),
                owner: owner.to_string(),
            });
        }
    }
    Ok(out)
}

/// The first five tab-separated fields of `line` (a sixth and later are not looked at) and
/// how many there are.
fn fields(line: &str) -> ([&str; 5], usize) {
    let mut f: [&str; 5] = [""; 5];
    let mut n = 0;
    let mut from = 0;
    for tab in memchr::memchr_iter(b'\t', line.as_bytes()) {
        f[n] = &line[from..tab];
        n += 1;
        from = tab + 1;
        if n == 5 {
            return (f, n);
        }
    }
    f[n] = &line[from..];
    (f, n + 1)
}

fn parse_crc(s: &str) -> Option<u32> {
    let h = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
    u64::from_str_radix(h, 16).ok().map(|v| v as u32)
}

pub fn export_kind(s: &str) -> Option<ExportKind> {
    Some(match s {
        "EXPORT_SYMBOL" => ExportKind::Plain,
        "EXPORT_SYMBOL_GPL" => ExportKind::Gpl,
        "EXPORT_SYMBOL_GPL_FUTURE" => ExportKind::GplFuture,
        "EXPORT_UNUSED_SYMBOL" => ExportKind::Unused,
        "EXPORT_UNUSED_SYMBOL_GPL" => ExportKind::UnusedGpl,
        _ => return None,
    })
}

/// Read a symvers file, plain or gzip/xz/zstd (chosen by magic).
pub fn read(path: &Path) -> Result<Vec<KernelSymbol>, Error> {
    let root = crate::root::Root::host()?;
    let abs = std::path::absolute(path).map_err(|e| Error::io(path, e))?;
    let raw = root
        .read(&abs, crate::root::caps::INDEX)
        .map_err(|e| match e {
            Error::Io { source, .. } => Error::io(path, source),
            e => e,
        })?;
    parse_bytes(raw, path, &|_| true)
}

fn parse_bytes(
    raw: Vec<u8>,
    path: &Path,
    keep: &dyn Fn(&str) -> bool,
) -> Result<Vec<KernelSymbol>, Error> {
    let data = match crate::compress::Compression::detect(&raw) {
        Some(crate::compress::Compression::None) | None => raw,
        Some(kind) => crate::compress::decompress(kind, &raw, crate::compress::DEFAULT_LIMIT)
            .map_err(|e| Error::parse(path, e))?
            .into_vec(),
    };
    let text = String::from_utf8(data)
        .map_err(|_| Error::parse(path, ParseError::section("symvers", "not UTF-8 text")))?;
    parse_kept(&text, keep).map_err(|e| Error::parse(path, e))
}

/// The usual places of a kernel's symvers file, inside a root, most specific first: RHEL's
/// `/boot/symvers-K.gz`, SUSE's and Fedora's beside the modules, Debian's in the headers
/// package, and a build tree.
pub fn candidates(kver: &str) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for base in [
        format!("boot/symvers-{kver}"),
        format!("lib/modules/{kver}/symvers"),
        format!("usr/lib/modules/{kver}/symvers"),
    ] {
        for ext in ["", ".gz", ".xz", ".zst"] {
            v.push(PathBuf::from(format!("{base}{ext}")));
        }
    }
    v.push(PathBuf::from(format!(
        "usr/src/linux-headers-{kver}/Module.symvers"
    )));
    v.push(PathBuf::from(format!(
        "lib/modules/{kver}/build/Module.symvers"
    )));
    v
}

/// The first symvers file of `kver` inside `root` (a regular file; links followed inside the
/// root).
pub fn find_in(root: &crate::root::Root, kver: &str) -> Option<PathBuf> {
    candidates(kver).into_iter().find(|p| root.is_file(p))
}

/// The first existing symvers file of `kver` under the directory `root`.
pub fn find(root: &Path, kver: &str) -> Option<PathBuf> {
    let r = crate::root::Root::open(root).ok()?;
    find_in(&r, kver).map(|p| root.join(p))
}

/// Read the symvers file `rel` inside `root`, plain or compressed.
pub fn read_in(root: &crate::root::Root, rel: &Path) -> Result<Vec<KernelSymbol>, Error> {
    read_in_kept(root, rel, &|_| true)
}

/// [`read_in`], keeping only the symbols whose name `keep` accepts ([`parse_kept`]).
pub fn read_in_kept(
    root: &crate::root::Root,
    rel: &Path,
    keep: &dyn Fn(&str) -> bool,
) -> Result<Vec<KernelSymbol>, Error> {
    let shown = root.display(rel);
    let raw = root.read(rel, crate::root::caps::INDEX)?;
    parse_bytes(raw, &shown, keep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_layouts() {
        let text = "0xe1cc2a05\tusb_stor_suspend\tdrivers/usb/storage/usb-storage\tEXPORT_SYMBOL_GPL\tUSB_STORAGE\n\
                    0x12345678\tprintk\tvmlinux\tEXPORT_SYMBOL\t\n\
                    0x00000001\told\tvmlinux\tEXPORT_SYMBOL_GPL\n\
                    0x00000002\tns54\tNS\tvmlinux\tEXPORT_SYMBOL\n\
                    0x00000003\tthree\tvmlinux\n";
        let s = parse(text).unwrap();
        assert_eq!(s.len(), 5);
        assert_eq!(s[0].namespace, "USB_STORAGE");
        assert_eq!(s[0].kind, ExportKind::Gpl);
        assert_eq!(s[0].owner, "drivers/usb/storage/usb-storage");
        assert_eq!(s[1].namespace, "");
        assert_eq!(
            s[1].symvers_line(),
            "0x12345678\tprintk\tvmlinux\tEXPORT_SYMBOL\t"
        );
        assert_eq!(
            (s[3].owner.as_str(), s[3].namespace.as_str()),
            ("vmlinux", "NS")
        );
        assert_eq!(s[4].kind, ExportKind::Plain);
    }

    /// The line-by-line reading of the first version (`str::lines`, `split('\t')`), kept as
    /// the reference the byte-level parser must agree with.
    fn reference(text: &str) -> Result<Vec<KernelSymbol>, String> {
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let f: Vec<&str> = line.split('\t').take(5).collect();
            let bad = |why: &str| format!("line {}: {why}", i + 1);
            if f.len() < 3 {
                return Err(bad("fields"));
            }
            let crc = parse_crc(f[0]).ok_or_else(|| bad("crc"))?;
            if f[1].is_empty() {
                return Err(bad("name"));
            }
            let (owner, kind, ns) = if f.len() >= 5 && f[4].starts_with("EXPORT_") {
                (f[3], f[4], f[2])
            } else {
                (
                    f[2],
                    f.get(3).copied().unwrap_or("EXPORT_SYMBOL"),
                    f.get(4).copied().unwrap_or(""),
                )
            };
            out.push(KernelSymbol {
                name: f[1].to_string(),
                crc: Some(crc),
                kind: export_kind(kind).ok_or_else(|| bad("kind"))?,
                namespace: ns.to_string(),
                owner: owner.to_string(),
            });
        }
        Ok(out)
    }

    proptest::proptest! {
        /// The same symbols, or an error on the same line, as the reference; and kept symbols
        /// are exactly the reference's symbols of those names, whatever else the file holds.
        #[test]
        fn agrees_with_the_line_by_line_reading(
            lines in proptest::collection::vec(
                proptest::collection::vec(
                    proptest::prop_oneof![
                        proptest::strategy::Just("0x1234abcd".to_string()),
                        proptest::strategy::Just("0X00000001".to_string()),
                        proptest::strategy::Just("EXPORT_SYMBOL".to_string()),
                        proptest::strategy::Just("EXPORT_SYMBOL_GPL".to_string()),
                        proptest::strategy::Just("vmlinux".to_string()),
                        proptest::strategy::Just(String::new()),
                        "[a-c_\\r ]{0,3}",
                    ],
                    0..7,
                ),
                0..8,
            ),
            ends in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just("\n"),
                    proptest::strategy::Just("\r\n"),
                    proptest::strategy::Just("\t\n"),
                ],
                8,
            ),
            no_last_break: bool,
        ) {
            let mut text = String::new();
            for (fields, end) in lines.iter().zip(&ends) {
                text.push_str(&fields.join("\t"));
                text.push_str(end);
            }
            // no line break at the very end: a `\r` there is the line's own
            if no_last_break {
                text.pop();
            }
            let want = reference(&text);
            let got = parse(&text);
            match (&want, &got) {
                (Ok(w), Ok(g)) => proptest::prop_assert_eq!(w, g),
                (Err(w), Err(g)) => {
                    let line = w.split(':').next().unwrap();
                    proptest::prop_assert!(g.to_string().contains(&format!("{line}:")), "{w} / {g}");
                }
                _ => proptest::prop_assert!(false, "{want:?} / {got:?}"),
            }
            let keep = |n: &str| n.starts_with('a');
            let kept = parse_kept(&text, &keep).map_err(|e| e.to_string());
            match (want, kept) {
                (Ok(w), Ok(k)) => {
                    let w: Vec<_> = w.into_iter().filter(|s| keep(&s.name)).collect();
                    proptest::prop_assert_eq!(w, k);
                }
                (Err(_), Err(_)) => {}
                (w, k) => proptest::prop_assert!(false, "{w:?} / {k:?}"),
            }
        }
    }

    #[test]
    fn a_carriage_return_ends_a_line_only_before_its_break() {
        let text = "0x1\ta\tvmlinux\r\n\n0x2\tb\tvmlinux\tEXPORT_SYMBOL\t\tmore\n0x3\tc\tvmlinux\r";
        let s = parse(text).unwrap();
        assert_eq!(s, reference(text).unwrap());
        let owners: Vec<&str> = s.iter().map(|s| s.owner.as_str()).collect();
        assert_eq!(owners, ["vmlinux", "vmlinux", "vmlinux\r"]);
        let e = parse("0x1\ta\tvmlinux\n\n0x2\tb\tvmlinux\tEXPORT_SYMBOL\r")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3") && e.contains("export type"), "{e}");
    }

    #[test]
    fn bad_lines_name_the_line() {
        let e = parse("0x1\ta\tvmlinux\n0x2 b vmlinux\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2"), "{e}");
        let e = parse("zz\ta\tvmlinux\n").unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("CRC"), "{e}");
    }
}
