//! Module.symvers (spec §4.1): `crc\tsymbol\towner\texport type\tnamespace`, in its 3-, 4-
//! and both 5-column layouts, plain or compressed; and where distributions ship it (§4.2).

use super::abi::KernelSymbol;
use crate::error::{Error, ParseError};
use crate::module::ExportKind;
use std::path::{Path, PathBuf};

/// Parse a Module.symvers text. Lines are split on tabs only (a namespace column may be
/// empty); a line with fewer than three fields is an error naming the line.
pub fn parse(text: &str) -> Result<Vec<KernelSymbol>, ParseError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |why: &str| ParseError::section(&format!("line {}", i + 1), why.to_string());
        // at most the 5 fields used (and whether there are more), without a vector per line
        let mut f: [&str; 5] = [""; 5];
        let mut n = 0;
        for (slot, v) in f.iter_mut().zip(line.split('\t')) {
            *slot = v;
            n += 1;
        }
        let f = &f[..n];
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
        out.push(KernelSymbol {
            name: f[1].to_string(),
            crc: Some(crc),
            kind: export_kind(kind).ok_or_else(|| bad("unknown export type"))?,
            namespace: ns.to_string(),
            owner: owner.to_string(),
        });
    }
    Ok(out)
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
    parse_bytes(raw, path)
}

fn parse_bytes(raw: Vec<u8>, path: &Path) -> Result<Vec<KernelSymbol>, Error> {
    let data = match crate::compress::Compression::detect(&raw) {
        Some(crate::compress::Compression::None) | None => raw,
        Some(kind) => crate::compress::decompress(kind, &raw, crate::compress::DEFAULT_LIMIT)
            .map_err(|e| Error::parse(path, e))?
            .into_vec(),
    };
    let text = String::from_utf8(data)
        .map_err(|_| Error::parse(path, ParseError::section("symvers", "not UTF-8 text")))?;
    parse(&text).map_err(|e| Error::parse(path, e))
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
    let shown = root.display(rel);
    let raw = root.read(rel, crate::root::caps::INDEX)?;
    parse_bytes(raw, &shown)
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
