//! The running-kernel source. This machine's own kernel has no /proc/kcore and no exports, so
//! the test derives both files from a real Debian vmlinux: a kallsyms text with the table
//! addresses and `__ksymtab_<sym>` labels of its section headers, and an ELF core file whose
//! PT_LOAD segments map the tables' virtual addresses, as /proc/kcore does. (Inside a booted
//! Debian kernel the same code reads the real files: the qemu suite.)

mod common;
use common::*;
use kabi::kernel::kallsyms;
use kabi::kernel::vmlinux;
use kabi::module::ExportKind;
use kabi::module::elf::ElfFile;
use std::fmt::Write as _;

/// An ELF64 little-endian core file with one PT_LOAD segment per (vaddr, bytes).
fn kcore(segments: &[(u64, &[u8])]) -> Vec<u8> {
    let phoff = 64u64;
    let mut data_off = phoff + 56 * segments.len() as u64;
    let mut out = Vec::new();
    out.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    out.extend(4u16.to_le_bytes()); // ET_CORE
    out.extend(62u16.to_le_bytes());
    out.extend(1u32.to_le_bytes());
    out.extend(0u64.to_le_bytes());
    out.extend(phoff.to_le_bytes());
    out.extend(0u64.to_le_bytes());
    out.extend(0u32.to_le_bytes());
    out.extend(64u16.to_le_bytes());
    out.extend(56u16.to_le_bytes());
    out.extend((segments.len() as u16).to_le_bytes());
    out.extend([0u8; 6]);
    for (va, d) in segments {
        out.extend(1u32.to_le_bytes()); // PT_LOAD
        out.extend(4u32.to_le_bytes());
        out.extend(data_off.to_le_bytes());
        out.extend(va.to_le_bytes());
        out.extend(0u64.to_le_bytes());
        out.extend((d.len() as u64).to_le_bytes());
        out.extend((d.len() as u64).to_le_bytes());
        out.extend(4096u64.to_le_bytes());
        data_off += d.len() as u64;
    }
    for (_, d) in segments {
        out.extend_from_slice(d);
    }
    out
}

#[test]
fn kallsyms_and_kcore_give_module_symvers() {
    let Some(root) = fetch_kernel("cloud-amd64", None) else {
        return;
    };
    let (_, kver) = module_dir(&root);
    let image = std::fs::read(root.join(format!("boot/vmlinuz-{kver}"))).unwrap();
    let (_, vmlinux_bytes) = vmlinux::payload(&image).unwrap();
    let elf = ElfFile::parse(&vmlinux_bytes, |_| false).unwrap();
    let sec = |n: &str| elf.section_by_name(n).unwrap().1.clone();
    let (ksymtab, gpl, crc, crc_gpl, strings) = (
        sec("__ksymtab"),
        sec("__ksymtab_gpl"),
        sec("__kcrctab"),
        sec("__kcrctab_gpl"),
        sec("__ksymtab_strings"),
    );

    let exports = vmlinux::exports(&vmlinux_bytes).unwrap();
    let mut text = String::from("ffffffff81000000 T _stext\nffffffff81000000 T _text\n");
    for (name, s) in [("ksymtab", &ksymtab), ("ksymtab_gpl", &gpl)] {
        writeln!(
            text,
            "{:016x} R __start___{name}\n{:016x} R __stop___{name}",
            s.addr,
            s.addr + s.size
        )
        .unwrap();
    }
    writeln!(
        text,
        "{:016x} R __start___kcrctab\n{:016x} R __start___kcrctab_gpl",
        crc.addr, crc_gpl.addr
    )
    .unwrap();
    for (table, kinds) in [(&ksymtab, [ExportKind::Plain]), (&gpl, [ExportKind::Gpl])] {
        let mut names: Vec<&str> = exports
            .iter()
            .filter(|e| kinds.contains(&e.kind))
            .map(|e| e.name.as_str())
            .collect();
        names.sort_unstable();
        for (i, n) in names.iter().enumerate() {
            writeln!(text, "{:016x} r __ksymtab_{n}", table.addr + 12 * i as u64).unwrap();
        }
    }
    // a loaded module's export: known by name only
    text.push_str("ffffffffc0a01000 r __ksymtab_cdrom_open\t[cdrom]\n");

    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("kallsyms"), &text).unwrap();

    // without kcore: names and GPL-ness, no CRCs
    let (by_name, crcs) = kallsyms::running(tmp.path()).unwrap();
    assert!(!crcs);
    let vm: Vec<_> = by_name.iter().filter(|s| s.owner == "vmlinux").collect();
    assert_eq!(vm.len(), exports.len());
    for (a, b) in vm.iter().zip(&exports) {
        assert_eq!((&a.name, a.kind, a.crc), (&b.name, b.kind, None));
    }
    assert!(
        by_name
            .iter()
            .any(|s| s.name == "cdrom_open" && s.owner == "cdrom")
    );

    // with kcore: every vmlinux line of Module.symvers
    let segs: Vec<(u64, &[u8])> = [&ksymtab, &gpl, &crc, &crc_gpl, &strings]
        .iter()
        .map(|s| (s.addr, s.data.unwrap()))
        .collect();
    std::fs::write(tmp.path().join("kcore"), kcore(&segs)).unwrap();
    let (from_memory, crcs) = kallsyms::running(tmp.path()).unwrap();
    assert!(crcs);
    let mut got: Vec<String> = from_memory
        .iter()
        .filter(|s| s.owner == "vmlinux")
        .map(|s| s.symvers_line())
        .collect();
    got.sort();
    let symvers =
        std::fs::read_to_string(root.join(format!("usr/src/linux-headers-{kver}/Module.symvers")))
            .unwrap();
    let mut want: Vec<&str> = symvers
        .lines()
        .filter(|l| l.split('\t').nth(2) == Some("vmlinux"))
        .collect();
    want.sort();
    assert!(want.len() > 9000);
    assert_eq!(got, want);
}

#[test]
fn hidden_addresses_and_bad_lines() {
    let ks = kallsyms::parse("0000000000000000 T _stext\n0000000000000000 r __ksymtab_printk\n")
        .unwrap();
    assert!(ks.addresses_hidden());
    assert_eq!(ks.exports_by_name().len(), 1);
    let e = kallsyms::parse("zzzz T x\n").unwrap_err().to_string();
    assert!(e.contains("line 1"), "{e}");
    let e = kallsyms::parse("ffff T\n").unwrap_err().to_string();
    assert!(e.contains("line 1"), "{e}");
}
