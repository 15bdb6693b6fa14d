//! The ABI read straight from a real Debian `vmlinuz` equals the `vmlinux` lines of the same
//! kernel's Module.symvers: every symbol, CRC, license class and namespace.

mod common;

use common::{fetch_kernel, module_dir, require_tool};
use kabi::kernel::vmlinux::{self, VmlinuzAbi, read_vmlinuz};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// An unpacked kernel: its vmlinuz, its Module.symvers and its release.
struct Kernel {
    vmlinuz: PathBuf,
    symvers: PathBuf,
    kver: String,
}

fn kernel(flavour: &str, abi: Option<&str>) -> Option<Kernel> {
    let root = fetch_kernel(flavour, abi)?;
    let (_, kver) = module_dir(&root);
    Some(Kernel {
        vmlinuz: root.join(format!("boot/vmlinuz-{kver}")),
        symvers: root.join(format!("usr/src/linux-headers-{kver}/Module.symvers")),
        kver,
    })
}

/// The `vmlinux` lines of a Module.symvers, normalised to `KernelSymbol::symvers_line()`'s
/// form (five fields, lower-case 8-digit CRC) and sorted.
fn symvers_vmlinux(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut v: Vec<String> = text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            if f.get(2) != Some(&"vmlinux") {
                return None;
            }
            let crc = u32::from_str_radix(f[0].trim_start_matches("0x"), 16).unwrap();
            Some(format!(
                "0x{crc:08x}\t{}\tvmlinux\t{}\t{}",
                f[1],
                f[3],
                f.get(4).copied().unwrap_or("")
            ))
        })
        .collect();
    v.sort();
    v
}

fn lines(abi: &VmlinuzAbi) -> Vec<String> {
    let mut v: Vec<String> = abi.symbols.iter().map(|s| s.symvers_line()).collect();
    v.sort();
    v
}

fn assert_same(what: &str, got: &[String], want: &[String]) {
    if got == want {
        return;
    }
    let missing: Vec<&String> = want.iter().filter(|l| !got.contains(l)).take(5).collect();
    let extra: Vec<&String> = got.iter().filter(|l| !want.contains(l)).take(5).collect();
    panic!(
        "{what}: {} symbols read, Module.symvers has {}; missing (first 5): {missing:#?}; \
         unexpected (first 5): {extra:#?}",
        got.len(),
        want.len()
    );
}

/// read_vmlinuz equals Module.symvers; returns the ABI for further checks.
fn check(flavour: &str, abi: Option<&str>) -> Option<(Kernel, VmlinuzAbi)> {
    let k = kernel(flavour, abi)?;
    let t = Instant::now();
    let got = read_vmlinuz(&k.vmlinuz).unwrap_or_else(|e| panic!("{e}"));
    let elapsed = t.elapsed();
    let want = symvers_vmlinux(&k.symvers);
    assert!(want.len() > 5000, "{}: too few vmlinux lines", k.kver);
    assert_same(&k.kver, &lines(&got), &want);
    // The result is sorted by name, the kernel's own order.
    assert!(got.symbols.windows(2).all(|w| w[0].name < w[1].name));
    let version = got.version.as_deref().expect("a version string");
    assert!(
        version.starts_with(&format!("{} ", k.kver)),
        "{}: version string {version:?}",
        k.kver
    );
    assert_eq!(got.release(), Some(k.kver.as_str()));
    let gpl = got.symbols.iter().filter(|s| s.kind.is_gpl_only()).count();
    let ns = got
        .symbols
        .iter()
        .filter(|s| !s.namespace.is_empty())
        .count();
    eprintln!(
        "{}: {} symbols equal to Module.symvers ({gpl} GPL-only, {ns} in a namespace), \
         read in {elapsed:.2?}",
        k.kver,
        got.symbols.len()
    );
    Some((k, got))
}

#[test]
fn cloud_amd64_newest() {
    check("cloud-amd64", None);
}

#[test]
fn amd64_newest() {
    check("amd64", None);
}

/// An older build than the newest, another `module_layout` (role `other` of
/// `common::kernels`).
#[test]
fn cloud_amd64_older_abi() {
    let Some(k) = common::kernels::cloud() else {
        return;
    };
    check("cloud-amd64", Some(k.other));
}

/// i386: ELF32 with absolute-pointer entries (12 bytes: value, name, namespace), fetched
/// through a private apt list (testdata/fetch-kernel.sh with ARCH=i386); the newest ABI.
#[test]
fn i686_newest_absolute_pointers() {
    check("686", None);
}

/// The payload compression Debian uses, by magic at the header's payload offset.
fn payload_format(bzimage: &[u8]) -> &'static str {
    let h = vmlinux::parse_header(bzimage).unwrap();
    vmlinux::PayloadFormat::detect(&bzimage[h.payload.unwrap()])
        .unwrap()
        .name()
}

#[test]
fn debian_payload_compression() {
    // Debian 12 builds the cloud kernels with KERNEL_LZ4 and the generic ones with KERNEL_XZ.
    for (flavour, want) in [("cloud-amd64", "lz4"), ("amd64", "xz")] {
        let Some(k) = kernel(flavour, None) else {
            return;
        };
        let img = std::fs::read(&k.vmlinuz).unwrap();
        assert_eq!(payload_format(&img), want, "{}", k.kver);
        // The header's payload decodes by itself (no scanning), to exactly the size the build
        // appended after the stream.
        let p = &img[vmlinux::parse_header(&img).unwrap().payload.unwrap()];
        let format = vmlinux::PayloadFormat::detect(p).unwrap();
        let out = vmlinux::decompress(format, p, vmlinux::VMLINUX_LIMIT).unwrap();
        let size = u32::from_le_bytes(p[p.len() - 4..].try_into().unwrap());
        assert_eq!(out.len(), size as usize, "{}", k.kver);
        assert!(out.starts_with(b"\x7fELF"));
        eprintln!(
            "{}: {want} payload of {} bytes, {} bytes decompressed",
            k.kver,
            p.len(),
            out.len()
        );
    }
}

/// The real vmlinux of a kernel, re-compressed by each CLI compressor the kernel build can
/// use and spliced into a copy of its bzImage (payload_length updated, the decompressed size
/// appended as the kernel build does): the ABI read is the same.
#[test]
fn rewrapped_payloads_give_the_same_abi() {
    let tools: [(&str, &[&str], &str); 6] = [
        ("gzip", &["-1", "-c"], "gzip"),
        ("bzip2", &["-1", "-c"], "bzip2"),
        ("xz", &["--format=lzma", "-0", "-c"], "lzma"),
        ("xz", &["--check=crc32", "-0", "-T1", "-c"], "xz"),
        ("lz4", &["-l", "-1", "-c"], "lz4"),
        ("zstd", &["-3", "-c", "-q"], "zstd"),
    ];
    let mut runnable = true;
    for tool in ["gzip", "bzip2", "xz", "lz4", "zstd"] {
        runnable &= require_tool(tool);
    }
    if !runnable {
        return;
    }
    let Some(k) = kernel("cloud-amd64", None) else {
        return;
    };
    let img = std::fs::read(&k.vmlinuz).unwrap();
    let want = lines(&read_vmlinuz(&k.vmlinuz).unwrap());
    let (_, raw) = vmlinux::payload(&img).unwrap();
    let range = vmlinux::parse_header(&img).unwrap().payload.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let raw_path = dir.path().join("vmlinux");
    std::fs::write(&raw_path, &raw).unwrap();

    let kver = k.kver.as_str();
    let raw = &raw;
    let results: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = tools
            .iter()
            .map(|(tool, args, format)| {
                let (img, raw_path, dir, want, range) =
                    (&img, &raw_path, dir.path(), &want, &range);
                s.spawn(move || {
                    let t = Instant::now();
                    let out = Command::new(tool)
                        .args(*args)
                        .stdin(File::open(raw_path).unwrap())
                        .stderr(Stdio::inherit())
                        .output()
                        .unwrap_or_else(|e| panic!("{tool}: {e}"));
                    assert!(out.status.success(), "{tool} {args:?} failed");
                    let mut payload = out.stdout;
                    assert_eq!(
                        vmlinux::PayloadFormat::detect(&payload).map(|f| f.name()),
                        Some(*format),
                        "{tool} {args:?}"
                    );
                    payload.extend_from_slice(&(raw.len() as u32).to_le_bytes());
                    let mut new = img[..range.start].to_vec();
                    new.extend_from_slice(&payload);
                    new.extend_from_slice(&img[range.end..]);
                    new[0x24C..0x250].copy_from_slice(&(payload.len() as u32).to_le_bytes());
                    let path = dir.join(format!("vmlinuz.{format}"));
                    std::fs::write(&path, &new).unwrap();
                    let compressed = t.elapsed();
                    let t = Instant::now();
                    let got = read_vmlinuz(&path).unwrap_or_else(|e| panic!("{e}"));
                    assert_eq!(payload_format(&new), *format);
                    assert_same(&format!("{kver} as {format}"), &lines(&got), want);
                    assert_eq!(got.release(), Some(kver));
                    format!(
                        "{format}: {} bytes, compressed in {compressed:.2?}, read in {:.2?}",
                        payload.len(),
                        t.elapsed()
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for r in results {
        eprintln!("{}: {r}", k.kver);
    }
}

#[test]
fn errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("vmlinuz-bogus");
    std::fs::write(&p, vec![0x42u8; 4096]).unwrap();
    let e = read_vmlinuz(&p).unwrap_err().to_string();
    assert!(e.starts_with(&p.display().to_string()), "{e}");
    assert!(e.contains("expected boot_flag 0xAA55"), "{e}");
    let missing = dir.path().join("nope");
    let e = read_vmlinuz(&missing).unwrap_err().to_string();
    assert!(e.starts_with(&missing.display().to_string()), "{e}");

    // A real image cut short: the header's payload runs past the end.
    let Some(k) = kernel("cloud-amd64", None) else {
        return;
    };
    let img = std::fs::read(&k.vmlinuz).unwrap();
    let cut = dir.path().join("vmlinuz-cut");
    std::fs::write(&cut, &img[..img.len() / 2]).unwrap();
    let e = read_vmlinuz(&cut).unwrap_err().to_string();
    assert!(e.contains("extends beyond the end of the file"), "{e}");
}
