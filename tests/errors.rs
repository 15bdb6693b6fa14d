//! Bad input: every truncation, bit flip or empty file gives an error naming the file and
//! what is wrong, never a panic; a proptest mutates real modules at random.

mod common;
use common::*;
use kabi::Module;
use kabi::module::Trailer;
use proptest::prelude::*;
use std::path::{Path, PathBuf};

fn sample(rel: &str) -> Vec<u8> {
    std::fs::read(testdata().join("lib/modules").join(rel)).unwrap()
}

const SMALL: &str = "6.1.0-56-amd64/kernel/lib/crc-itu-t.ko";
const BIG_ENDIAN: &str = "6.1.0-47-s390x/kernel/drivers/net/dummy.ko";

fn module_len(data: &[u8]) -> usize {
    match Module::parse_image(data).unwrap().signature {
        Trailer::Signed(s) => s.module_len,
        other => panic!("testdata module not signed: {other:?}"),
    }
}

#[test]
fn empty_file_says_empty() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("empty.ko");
    std::fs::write(&p, b"").unwrap();
    let e = Module::open(&p).unwrap_err().to_string();
    assert_eq!(e, format!("{}: empty file", p.display()));
    let out = run(kabi().arg("info").arg(&p));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("empty.ko") && err.contains("empty file"),
        "{err}"
    );
}

#[test]
fn not_a_module_names_what_it_found() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("text.ko");
    std::fs::write(&p, b"#!/bin/sh\necho hi\n").unwrap();
    let e = Module::open(&p).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("{}: not an ELF file", p.display())),
        "{e}"
    );
    assert!(e.contains("23 21 2f 62"), "shows the leading bytes: {e}");
}

#[test]
fn missing_file_is_an_io_error_with_the_path() {
    let e = Module::open("/nonexistent/x.ko").unwrap_err().to_string();
    assert!(e.starts_with("/nonexistent/x.ko: "), "{e}");
}

#[test]
fn every_truncation_inside_the_elf_image_is_a_clear_error() {
    for rel in [SMALL, BIG_ENDIAN] {
        let data = sample(rel);
        let elf_len = module_len(&data);
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("cut.ko");
        // every 97th length and the boundaries: the section headers sit at the end
        let cuts: Vec<usize> = (0..elf_len)
            .step_by(97)
            .chain([1, 4, 63, 64, elf_len - 1])
            .collect();
        for cut in cuts {
            let e = Module::parse_file(&data[..cut], Path::new("cut.ko"))
                .expect_err(&format!("{rel} truncated to {cut} bytes parsed"));
            let msg = e.to_string();
            assert!(!msg.is_empty());
            std::fs::write(&p, &data[..cut]).unwrap();
            let full = Module::open(&p).unwrap_err().to_string();
            assert!(full.starts_with(&format!("{}: ", p.display())), "{full}");
        }
        // cut inside the signature: the ELF is whole, the file simply reads as unsigned
        let m = Module::parse_file(&data[..data.len() - 1], Path::new("x.ko")).unwrap();
        assert_eq!(m.signature, Trailer::Unsigned);
    }
}

#[test]
fn truncated_compressed_modules_name_the_format() {
    let data = sample(SMALL);
    let xz = {
        let mut e = liblzma_encode(&data);
        e.truncate(e.len() / 2);
        e
    };
    let msg = Module::parse_file(&xz, Path::new("x.ko.xz"))
        .unwrap_err()
        .to_string();
    assert!(msg.starts_with("xz data is corrupt"), "{msg}");
    let zst = zstd::encode_all(&data[..], 3).unwrap();
    let msg = Module::parse_file(&zst[..zst.len() / 2], Path::new("x.ko.zst"))
        .unwrap_err()
        .to_string();
    assert!(msg.starts_with("zstd data is corrupt"), "{msg}");
}

fn liblzma_encode(data: &[u8]) -> Vec<u8> {
    let out = std::process::Command::new("xz")
        .args(["-c", "-T1"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(data)?;
            c.wait_with_output()
        })
        .expect("xz");
    out.stdout
}

#[test]
fn bit_flips_in_the_headers_are_errors_or_parse_not_panic() {
    let data = sample(SMALL);
    let mut errors = 0;
    // every bit of the ELF header and of the first section headers
    let shoff = u64::from_le_bytes(data[0x28..0x30].try_into().unwrap()) as usize;
    let ranges = [0..64usize, shoff..(shoff + 64 * 8).min(data.len())];
    for r in ranges {
        for i in r {
            for bit in 0..8 {
                let mut d = data.clone();
                d[i] ^= 1 << bit;
                if let Err(e) = Module::parse_file(&d, Path::new("flip.ko")) {
                    assert!(!e.to_string().is_empty());
                    errors += 1;
                }
            }
        }
    }
    assert!(
        errors > 50,
        "flipping header bits should break the file often ({errors})"
    );
}

#[test]
fn cli_reports_bad_files_and_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.ko");
    std::fs::write(&bad, &sample(SMALL)[..1000]).unwrap();
    let good: PathBuf = testdata().join("lib/modules").join(SMALL);
    let out = run(kabi().arg("info").arg(&bad).arg(&good));
    assert_eq!(
        out.status.code(),
        Some(1),
        "a bad file makes the exit code 1"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(bad.to_str().unwrap()) && err.contains("invalid ELF"),
        "{err}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("crc-itu-t.ko"),
        "the good file is still shown: {stdout}"
    );
    let out = run(kabi().arg("modversions").arg(&bad));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.ko"));
}

fn mutate(mut data: Vec<u8>, flips: &[(usize, u8)], cut: Option<usize>) -> Vec<u8> {
    for &(pos, x) in flips {
        let n = data.len();
        if n > 0 {
            data[pos % n] ^= x;
        }
    }
    if let Some(c) = cut {
        let n = data.len();
        data.truncate(c % (n + 1));
    }
    data
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn mutated_modules_never_panic(
        which in 0usize..3,
        flips in proptest::collection::vec((any::<usize>(), 1u8..=255), 1..16),
        cut in proptest::option::of(any::<usize>()),
    ) {
        let rel = [SMALL, BIG_ENDIAN, "6.1.0-47-686/kernel/drivers/net/dummy.ko"][which];
        let data = mutate(sample(rel), &flips, cut);
        if let Ok(m) = Module::parse_file(&data, Path::new("m.ko")) {
            // whatever parsed must also render without panicking
            let mut out = Vec::new();
            let shown = kabi::module::show::Shown { filename: Some("m.ko".into()), name: m.name.clone(), records: kabi::module::show::records(&m) };
            kabi::module::show::render(&shown, None, b'\n', &mut out);
            let _ = kabi::module::show::render_versions(&m);
            let _ = serde_json::to_string(&m).unwrap();
        }
    }

    #[test]
    fn mutated_compressed_modules_never_panic(
        flips in proptest::collection::vec((any::<usize>(), 1u8..=255), 1..8),
        kind in 0usize..2,
    ) {
        let plain = sample(SMALL);
        let packed = if kind == 0 { zstd::encode_all(&plain[..], 3).unwrap() } else { liblzma_encode(&plain) };
        let data = mutate(packed, &flips, None);
        let _ = Module::parse_file(&data, Path::new("m.ko.zst"));
    }
}
