//! Where the kernel decides: Debian's kmod 30 and kabi under kmod's names, side by side in
//! one boot of a real Debian kernel (cloud-amd64) under qemu TCG. kmod's binary and its
//! libraries, dash as `/bin/sh`, and the static kabi as `/init` (and, through symlinks, as
//! `modprobe`, `insmod`, `rmmod`, `lsmod`, `modinfo`) are in the initramfs. The same
//! sequence of commands runs with kmod, the modules are removed, then it runs with kabi:
//! every command must print the same thing and exit the same way (the kernel's own error
//! lines included), among them: loads with dependencies, already loaded, `--first-time`,
//! a module in use (rmmod, `modprobe -r`, `--remove-holders`), parameters the kernel
//! refuses, another ABI's module, blacklists from modprobe.d and the command line,
//! install and remove commands run by `/bin/sh` (one calling modprobe again), softdeps,
//! built-in modules, `rmmod -f`, lsmod with holders.

mod common;

use common::qemu::{self, Initramfs};
use std::path::Path;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(300);
const KMOD_PATH: &str = "PATH=/sbin:/bin:/usr/sbin:/usr/bin";
const KABI_PATH: &str = "PATH=/kabi/bin:/sbin:/bin:/usr/sbin:/usr/bin";

/// A host program and the shared libraries `ldd` names for it, at the same paths.
fn add_program(ird: &mut Initramfs, prog: &Path, guest: &str) {
    ird.add_file(guest, &std::fs::read(prog).unwrap(), 0o755);
    let o = common::run(std::process::Command::new("ldd").arg(prog));
    for lib in String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
    {
        let real = std::fs::canonicalize(lib).unwrap();
        ird.add_file(lib, &std::fs::read(&real).unwrap(), 0o755);
    }
}

#[test]
fn kmod_and_kabi_agree_in_a_real_kernel() {
    let Some(kr) = common::kernels::cloud() else {
        return;
    };
    if !qemu::require_qemu() || !common::require_tool("modprobe") || !common::require_tool("ldd") {
        return;
    }
    let Some(root) = kr.fetch(kr.new) else {
        return;
    };
    let Some(old) = kr.fetch(kr.other) else {
        return;
    };
    let (_, kver) = common::module_dir(&root);
    let (odir, _) = common::module_dir(&old);
    let steps: Vec<String> = [
        "lsmod",
        "modprobe -v udf",
        "lsmod",
        "modprobe --first-time udf",
        "modprobe -v udf",
        "rmmod cdrom",
        "modprobe -r cdrom",
        "modprobe -r -v --remove-holders cdrom",
        "lsmod",
        "modprobe -r -v udf",
        "lsmod",
        "modprobe dummy numdummies=abc",
        "modprobe -v dummy",
        &format!("insmod /lib/modules/{kver}/kernel/drivers/net/dummy.ko"),
        "modprobe -v --first-time dummy",
        "lsmod",
        "rmmod -v dummy",
        "rmmod dummy",
        "insmod /abi47/dummy.ko",
        "modprobe -v fs-iso9660",
        "modprobe -v -b isofs",
        "modprobe -v fs-vfat",
        "modprobe -v cramfs",
        "modprobe -v dummy2",
        "lsmod",
        "modprobe -r -v dummy2",
        "lsmod",
        "modprobe -v xfs",
        "lsmod",
        "modprobe -r -v xfs",
        "lsmod",
        "modprobe -r ext4",
        "modprobe -c",
        "modprobe -n -v udf",
        "modprobe -v isofs",
        "rmmod -f isofs",
        "modprobe -r -v cdrom",
        "lsmod",
        "modinfo -F filename udf",
        "modprobe -v -a dummy nls_utf8 nosuch",
        "lsmod",
        "modprobe -r -a -v dummy nls_utf8",
        "lsmod",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let reset = format!(
        "!{KMOD_PATH} rmmod udf isofs xfs dummy cramfs cdrom crc_itu_t libcrc32c nls_utf8 crc32c_intel"
    );
    let mut script = String::new();
    for path in [KMOD_PATH, KABI_PATH] {
        for s in &steps {
            script.push_str(&format!("!{path} {s}\n"));
        }
        script.push_str(&reset);
        script.push('\n');
    }
    let mut ird = Initramfs::kabi(&script);
    add_program(&mut ird, Path::new("/usr/bin/kmod"), "/usr/bin/kmod");
    add_program(&mut ird, Path::new("/bin/dash"), "/bin/sh");
    for n in ["modprobe", "insmod", "rmmod", "lsmod", "modinfo", "depmod"] {
        ird.add_symlink(&format!("/sbin/{n}"), "/usr/bin/kmod");
        ird.add_symlink(&format!("/kabi/bin/{n}"), "/init");
    }
    ird.add_file(
        "/etc/modprobe.d/test.conf",
        b"blacklist isofs\ninstall cramfs /bin/false\n\
          install dummy2 echo INSTALLING $CMDLINE_OPTS $MODPROBE_MODULE; modprobe --ignore-install dummy $CMDLINE_OPTS\n\
          options dummy2 numdummies=1\nremove dummy2 echo REMOVING; rmmod dummy\n\
          softdep xfs pre: nls_utf8\n",
        0o644,
    );
    ird.add_file(
        "/abi47/dummy.ko",
        &std::fs::read(odir.join("kernel/drivers/net/dummy.ko")).unwrap(),
        0o644,
    );
    let mods = [
        "kernel/fs/udf/udf.ko",
        "kernel/drivers/cdrom/cdrom.ko",
        "kernel/lib/crc-itu-t.ko",
        "kernel/fs/isofs/isofs.ko",
        "kernel/drivers/net/dummy.ko",
        "kernel/fs/xfs/xfs.ko",
        "kernel/lib/libcrc32c.ko",
        "kernel/arch/x86/crypto/crc32c-intel.ko",
        "kernel/fs/nls/nls_utf8.ko",
        "kernel/fs/fat/fat.ko",
        "kernel/fs/fat/vfat.ko",
    ];
    ird.add_modules(&root, &mods, &[]);
    let log = qemu::boot(
        &qemu::vmlinuz(&root),
        &ird.finish(),
        "dummy.numdummies=3 modprobe.blacklist=vfat \"udf.x=a b\"",
        TIMEOUT,
    );
    eprintln!("booted in {:.1} s", log.elapsed.as_secs_f64());
    log.assert_done();
    let n = steps.len();
    let mut diffs = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        let (k, b) = (log.run(i), log.run(n + 1 + i));
        assert!(k.line.ends_with(s.as_str()) && b.line.ends_with(s.as_str()));
        if k.output != b.output || k.exit != b.exit {
            diffs.push(format!(
                "{s}:\n=== kmod (exit {:?})\n{}=== kabi (exit {:?})\n{}",
                k.exit, k.output, b.exit, b.output
            ));
        }
    }
    // the sequence did what it says: loads, refusals by the kernel, commands
    let kmod = |i: usize| log.run(i);
    assert!(
        kmod(1).output.contains("insmod /lib/modules/"),
        "{}",
        kmod(1).output
    );
    assert!(kmod(2).output.contains("udf"), "{}", kmod(2).output);
    assert_eq!(kmod(3).exit, Some(1));
    assert!(
        kmod(5).output.contains("is in use by: udf"),
        "{}",
        kmod(5).output
    );
    assert!(
        kmod(11).output.contains("Invalid argument"),
        "{}",
        kmod(11).output
    );
    assert!(
        kmod(18).output.contains("Invalid module format"),
        "{}",
        kmod(18).output
    );
    assert!(
        kmod(23).output.contains("INSTALLING numdummies=1 dummy2"),
        "{}",
        kmod(23).output
    );
    assert!(kmod(24).output.contains("dummy"), "{}", kmod(24).output);
    assert!(kmod(25).output.contains("REMOVING"), "{}", kmod(25).output);
    eprintln!(
        "{n} commands compared in one boot, {} differ; kmod's log:\n{}",
        diffs.len(),
        (0..n)
            .map(|i| format!("$ {}\n{}", steps[i], log.run(i).output))
            .collect::<String>()
    );
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}
