//! `kabi load` inside a real booted Debian kernel (cloud-amd64: the newest, or the `new` of
//! `common::kernels` where modules of `old` and `other` are loaded) under qemu TCG, with
//! the static kabi as `/init` of an initramfs that holds nothing else.

mod common;

use common::qemu::{self, Initramfs};
use std::path::Path;
use std::time::Duration;

/// Generous: `check --running` reads kallsyms and kcore, about 1.4 s per call under TCG on a
/// loaded 2-core machine, and one boot runs 300 of them.
const TIMEOUT: Duration = Duration::from_secs(900);

fn compressed(src: &Path, tool: &str, dir: &Path) -> std::path::PathBuf {
    let ext = if tool == "xz" { "xz" } else { "zst" };
    let out = dir.join(format!(
        "{}.{ext}",
        src.file_name().unwrap().to_string_lossy()
    ));
    let args: &[&str] = if tool == "xz" {
        &["--check=crc32", "--lzma2=dict=1MiB", "-c"]
    } else {
        &["-q", "-c"]
    };
    let o = common::run(std::process::Command::new(tool).args(args).arg(src));
    assert!(o.status.success(), "{tool} failed");
    std::fs::write(&out, o.stdout).unwrap();
    out
}

/// Same-ABI modules with deep dependencies, by name and by alias, with parameters from the
/// command line and modprobe.d, plain, .ko.xz and .ko.zst; an already loaded module, a
/// blacklisted alias and a missing module; then parallel loading.
#[test]
fn loads_with_dependencies_parameters_and_compression() {
    if !qemu::require_qemu() || !common::require_tool("xz") || !common::require_tool("zstd") {
        return;
    }
    let Some(root) = common::fetch_kernel("cloud-amd64", None) else {
        return;
    };
    let (dir, _) = common::module_dir(&root);
    let tmp = tempfile::tempdir().unwrap();
    let fat_xz = compressed(&dir.join("kernel/fs/fat/fat.ko"), "xz", tmp.path());
    let vfat_xz = compressed(&dir.join("kernel/fs/fat/vfat.ko"), "xz", tmp.path());
    let isofs_zst = compressed(&dir.join("kernel/fs/isofs/isofs.ko"), "zstd", tmp.path());
    let script = "\
load -v dummy numdummies=2
load udf
load fs-vfat
load isofs
load nf_conntrack_ftp
load -a xfs nf_nat_ftp btrfs
lsmod
unload -r btrfs xfs nf_nat_ftp
load -v -j 2 -a xfs nf_nat_ftp btrfs
lsmod
load --coldplug -v
load dummy
load fs-iso9660
load no_such_module
load nls_utf8
unload -r udf
lsmod
";
    let mut ird = Initramfs::kabi(script);
    ird.add_file(
        "/etc/modprobe.d/test.conf",
        b"blacklist isofs\noptions udf uid=0\ninstall nls_utf8 /bin/true\n",
        0o644,
    );
    let mods: Vec<String> = [
        "kernel/drivers/net/dummy.ko",
        "kernel/fs/udf/udf.ko",
        "kernel/drivers/cdrom/cdrom.ko",
        "kernel/lib/crc-itu-t.ko",
        "kernel/lib/libcrc32c.ko",
        "kernel/net/netfilter/nf_conntrack.ko",
        "kernel/net/netfilter/nf_conntrack_ftp.ko",
        "kernel/net/netfilter/nf_nat.ko",
        "kernel/net/netfilter/nf_nat_ftp.ko",
        "kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko",
        "kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko",
        "kernel/fs/xfs/xfs.ko",
        "kernel/fs/btrfs/btrfs.ko",
        "kernel/lib/raid6/raid6_pq.ko",
        "kernel/crypto/xor.ko",
        "kernel/lib/zstd/zstd_compress.ko",
        "kernel/crypto/blake2b_generic.ko",
        "kernel/arch/x86/crypto/crc32c-intel.ko",
        "kernel/fs/nls/nls_utf8.ko",
    ]
    .iter()
    .filter(|m| dir.join(m).is_file())
    .map(|m| m.to_string())
    .collect();
    let refs: Vec<&str> = mods.iter().map(String::as_str).collect();
    let extra = [
        (fat_xz.as_path(), "kernel/fs/fat/fat.ko.xz"),
        (vfat_xz.as_path(), "kernel/fs/fat/vfat.ko.xz"),
        (isofs_zst.as_path(), "kernel/fs/isofs/isofs.ko.zst"),
    ];
    let kver = ird.add_modules(&root, &refs, &extra);
    let log = qemu::boot(&qemu::vmlinuz(&root), &ird.finish(), "", TIMEOUT);
    eprintln!("booted in {:.1} s:\n{}", log.elapsed.as_secs_f64(), log.raw);
    log.assert_done();
    let ok = |line: &str| {
        let r = log.find(line);
        assert_eq!(r.exit, Some(0), "{line}:\n{}", r.output);
    };
    for l in [
        "load -v dummy numdummies=2",
        "load udf",
        "load fs-vfat",
        "load isofs",
        "load nf_conntrack_ftp",
        "load -a xfs nf_nat_ftp btrfs",
        "unload -r btrfs xfs nf_nat_ftp",
        "load -v -j 2 -a xfs nf_nat_ftp btrfs",
        "load --coldplug -v",
        "load dummy",
        "unload -r udf",
    ] {
        ok(l);
    }
    // serial and parallel loading of the same set end in the same state
    let lsmods: Vec<&str> = log
        .runs
        .iter()
        .filter(|r| r.line == "lsmod")
        .map(|r| r.output.as_str())
        .collect();
    let set = |out: &str| -> std::collections::BTreeSet<String> {
        out.lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().next().map(str::to_string))
            .collect()
    };
    assert_eq!(
        set(lsmods[0]),
        set(lsmods[1]),
        "serial vs parallel end state"
    );
    let serial = log.find("load -a xfs nf_nat_ftp btrfs").secs.unwrap();
    let parallel = log
        .find("load -v -j 2 -a xfs nf_nat_ftp btrfs")
        .secs
        .unwrap();
    eprintln!(
        "in the guest (2 vCPUs, TCG): serial {serial:.3} s, parallel (-j 2) {parallel:.3} s, ratio {:.2}",
        serial / parallel
    );
    let cold = log.find("load --coldplug -v");
    assert!(cold.output.contains("coldplug:"), "{}", cold.output);
    let lsmod = lsmods[0];
    for m in [
        "dummy",
        "udf",
        "cdrom",
        "crc_itu_t",
        "vfat",
        "fat",
        "isofs",
        "nf_conntrack_ftp",
        "nf_conntrack",
        "nf_defrag_ipv4",
        "xfs",
        "btrfs",
        "nf_nat_ftp",
    ] {
        assert!(
            lsmod
                .lines()
                .any(|l| l.split_whitespace().next() == Some(m)),
            "{m} not in /proc/modules:\n{lsmod}"
        );
    }
    // an alias of a blacklisted module (loaded by name before): nothing to do, as kmod
    let bl = log.find("load fs-iso9660");
    assert_eq!(bl.exit, Some(0), "{}", bl.output);
    // an install command with no /bin/sh in the initramfs: refused, never loaded instead
    let nosh = log.find("load nls_utf8");
    assert_eq!(nosh.exit, Some(1), "{}", nosh.output);
    assert!(
        nosh.output
            .contains("there is no shell (/bin/sh) to run it"),
        "{}",
        nosh.output
    );
    assert!(
        !log.runs.last().unwrap().output.contains("nls_utf8"),
        "{}",
        log.runs.last().unwrap().output
    );
    let missing = log.find("load no_such_module");
    assert_eq!(missing.exit, Some(1));
    assert!(
        missing.output.contains(&format!(
            "Module no_such_module not found in directory /lib/modules/{kver}"
        )),
        "{}",
        missing.output
    );
    // unload -r took udf and its unused dependency crc_itu_t out; cdrom stays: isofs uses it
    let after = &log.runs.last().unwrap().output;
    let has = |m: &str| {
        after
            .lines()
            .any(|l| l.split_whitespace().next() == Some(m))
    };
    for m in ["udf", "crc_itu_t"] {
        assert!(!has(m), "{m} still loaded:\n{after}");
    }
    assert!(has("cdrom") && has("isofs"), "{after}");
    assert!(after.lines().any(|l| l.starts_with("dummy ")), "{after}");
}

/// Modules of other ABIs in the new kernel: kabi's prediction (`check --running`) equals what
/// the kernel does when asked to load them with the check bypassed (`load --no-check`),
/// module by module: old's (identical symvers) load, other's are refused; among them the vendor
/// module built by the test against each ABI's headers.
#[test]
fn predicted_verdicts_equal_the_kernels() {
    let Some(kr) = common::kernels::cloud() else {
        return;
    };
    if !qemu::require_qemu() {
        return;
    }
    let Some(root) = kr.fetch(kr.new) else {
        return;
    };
    // modules built into new are skipped by a load (as modprobe does): not a verdict
    let (dir56, _) = common::module_dir(&root);
    let builtin56 = std::fs::read_to_string(dir56.join("modules.builtin")).unwrap_or_default();
    let builtin: Vec<String> = builtin56
        .lines()
        .filter_map(kabi::tree::lookup::module_name_of)
        .collect();
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut script = String::new();
    let mut expected = Vec::new();
    // other first: its modules fail, so none is loaded when old's of the same names come
    for abi in [kr.other, kr.old] {
        let Some(other) = common::fetch_kernel("cloud-amd64", Some(abi)) else {
            return;
        };
        let (odir, _) = common::module_dir(&other);
        let dep = std::fs::read_to_string(odir.join("modules.dep"))
            .or_else(|_| {
                // the unpacked tree may have no index: use kabi's
                let o = common::run(
                    common::kabi()
                        .args(["depmod", "-n", "--root"])
                        .arg(&other)
                        .arg(odir.file_name().unwrap()),
                );
                Ok::<_, std::io::Error>(String::from_utf8_lossy(&o.stdout).into_owned())
            })
            .unwrap();
        // leaf modules (no dependencies) of library-like directories: their init needs no
        // hardware, so the kernel's answer is about the ABI only
        let picks: Vec<&str> = dep
            .lines()
            .filter(|l| l.ends_with(':'))
            .map(|l| l.trim_end_matches(':'))
            .filter(|p| {
                p.starts_with("kernel/fs/")
                    || p.starts_with("kernel/crypto/")
                    || p.starts_with("kernel/lib/")
                    || p.starts_with("kernel/net/")
            })
            .filter(|p| {
                kabi::tree::lookup::module_name_of(p).is_some_and(|n| !builtin.contains(&n))
            })
            .take(150)
            .collect();
        // and the vendor module the test builds against this ABI's headers
        if let Some(v) = common::weak::vendor_modules(abi) {
            let guest = format!("/abi{abi}/vendor/kabi_vendor_a.ko");
            files.push((
                guest.clone(),
                std::fs::read(v.join("kabi_vendor_a.ko")).unwrap(),
            ));
            script.push_str(&format!(
                "check --running {guest}\nload --no-check {guest}\n"
            ));
            expected.push((abi, guest));
        }
        for p in picks {
            let data = std::fs::read(odir.join(p)).unwrap();
            let guest = format!("/abi{abi}/{}", p.trim_start_matches("kernel/"));
            files.push((guest.clone(), data));
            script.push_str(&format!(
                "check --running {guest}\nload --no-check {guest}\n"
            ));
            expected.push((abi, guest));
        }
    }
    let mut ird = Initramfs::kabi(&script);
    for (g, d) in &files {
        ird.add_file(g, d, 0o644);
    }
    ird.add_modules(&root, &["kernel/lib/crc-itu-t.ko"], &[]);
    let log = qemu::boot(&qemu::vmlinuz(&root), &ird.finish(), "", TIMEOUT);
    eprintln!("booted in {:.1} s", log.elapsed.as_secs_f64());
    log.assert_done();
    if std::env::var_os("KABI_SHOW_CONSOLE").is_some() {
        eprintln!("{}", log.raw);
    }
    let mut table = Vec::new();
    let mut mismatches = Vec::new();
    for (abi, guest) in &expected {
        let predicted = log.find(&format!("check --running {guest}"));
        let actual = log.find(&format!("load --no-check {guest}"));
        let p_ok = predicted.exit == Some(0);
        // the loader's verdict: a refusal is ENOEXEC / EKEYREJECTED / EBADMSG, or a symbol the
        // loader would not resolve; a module whose own init fails (efivarfs without EFI:
        // ENODEV; tcrypt's self-tests) was accepted by the loader
        // (ENOENT is worded as kmod words it, "Unknown symbol in module, or unknown
        // parameter": whether a symbol was missing is in the kernel's own words)
        let o = &actual.output;
        let kernel_said = o.split_once("the kernel says:").map_or("", |x| x.1);
        let refused = o.contains("(ENOEXEC)")
            || o.contains("(EKEYREJECTED)")
            || o.contains("(EBADMSG)")
            || kernel_said.contains("disagrees about version")
            || kernel_said.contains("Unknown symbol");
        let a_ok = actual.exit == Some(0) || !refused;
        table.push(format!("{abi} {guest}: predicted {p_ok}, kernel {a_ok}"));
        if p_ok != a_ok {
            mismatches.push(format!(
                "{guest}: predicted {p_ok} ({}), kernel {a_ok} ({})",
                predicted.output.trim(),
                actual.output.trim()
            ));
        }
        if *abi == kr.other {
            assert!(!a_ok, "other's {guest} loaded in new:\n{}", actual.output);
        }
    }
    let count = |abi: &str, want: &str| {
        table
            .iter()
            .filter(|t| t.starts_with(abi) && t.ends_with(want))
            .count()
    };
    eprintln!(
        "{} modules compared: ABI {} (other) refused {} (of {}), ABI {} (old) loaded {} (of {})",
        table.len(),
        kr.other,
        count(kr.other, "kernel false"),
        count(kr.other, ""),
        kr.old,
        count(kr.old, "kernel true"),
        count(kr.old, "")
    );
    assert!(
        expected.len() >= 300,
        "only {} modules compared",
        expected.len()
    );
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    assert!(
        expected
            .iter()
            .zip(&table)
            .any(|((abi, _), t)| *abi == kr.old && t.ends_with("kernel true")),
        "some of old's modules load in new"
    );
}

/// `kabi verify` first thing in the initramfs, then the loads: a healthy host (old's vendor
/// modules linked into new) exits 0 and loads them; a host with a broken weak link and other's
/// incompatible vendor module linked exits 1 with both reasons on the console.
#[test]
fn verify_in_the_initramfs_healthy_and_broken() {
    let Some(kr) = common::kernels::cloud() else {
        return;
    };
    if !qemu::require_qemu() {
        return;
    }
    let (Some(v_other), Some(v_old)) = (
        common::weak::vendor_modules(kr.other),
        common::weak::vendor_modules(kr.old),
    ) else {
        return;
    };
    let Some(root) = kr.fetch(kr.new) else {
        return;
    };
    let (_, kver) = common::module_dir(&root);
    let symvers = root.join(format!("usr/src/linux-headers-{kver}/Module.symvers"));
    let gz = common::run(std::process::Command::new("gzip").arg("-c").arg(&symvers)).stdout;
    let boot = |broken: bool| {
        let script = "verify\ndepmod\nload kabi_vendor_b\nlsmod\n";
        let mut ird = Initramfs::kabi(script);
        ird.add_file(&format!("/boot/symvers-{kver}.gz"), &gz, 0o644);
        ird.add_file(
            &format!("/boot/config-{kver}"),
            &std::fs::read(root.join(format!("boot/config-{kver}"))).unwrap(),
            0o644,
        );
        for (abi, v) in [(kr.old, &v_old), (kr.other, &v_other)] {
            for m in ["kabi_vendor_a.ko", "kabi_vendor_b.ko"] {
                ird.add_file(
                    &format!("/lib/modules/6.1.0-{abi}-cloud-amd64/extra/kabi-vendor/{m}"),
                    &std::fs::read(v.join(m)).unwrap(),
                    0o644,
                );
            }
        }
        let weak = format!("/lib/modules/{kver}/weak-updates/kabi-vendor");
        let extra = |abi: &str, m: &str| {
            format!("/lib/modules/6.1.0-{abi}-cloud-amd64/extra/kabi-vendor/{m}")
        };
        let a = extra(kr.old, "kabi_vendor_a.ko");
        let b = extra(if broken { kr.other } else { kr.old }, "kabi_vendor_b.ko");
        ird.add_symlink(&format!("{weak}/kabi_vendor_a.ko"), &a);
        ird.add_symlink(&format!("{weak}/kabi_vendor_b.ko"), &b);
        if broken {
            ird.add_symlink(
                &format!("{weak}/kabi_vendor_c.ko"),
                "/lib/modules/6.1.0-40-cloud-amd64/extra/kabi-vendor/kabi_vendor_c.ko",
            );
        }
        ird.add_modules(&root, &["kernel/drivers/net/dummy.ko"], &[]);
        qemu::boot(&qemu::vmlinuz(&root), &ird.finish(), "", TIMEOUT)
    };
    let healthy = boot(false);
    healthy.assert_done();
    let v = healthy.find("verify");
    assert_eq!(v.exit, Some(0), "{}", v.output);
    assert_eq!(
        healthy.find("load kabi_vendor_b").exit,
        Some(0),
        "{}",
        healthy.raw
    );
    assert!(healthy.find("lsmod").output.contains("kabi_vendor_b"));

    let broken = boot(true);
    broken.assert_done();
    let v = broken.find("verify");
    assert_eq!(v.exit, Some(1), "{}", v.output);
    assert!(v.output.contains("link-to-removed-kernel"), "{}", v.output);
    assert!(
        v.output
            .contains("kabi_vendor_b: disagrees about version of symbol module_layout"),
        "{}",
        v.output
    );
    eprintln!("the broken host's verify on the console:\n{}", v.output);
}
