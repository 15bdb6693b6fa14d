//! `kabi weak-modules2` (SUSE's interface) on real packages: SUSE-shaped roots (merged /usr)
//! with the Debian cloud-amd64 kernels of roles `other`, `old` and `new` of `common::kernels`
//! (flavour `amd64`: what follows the last dash; old and new have identical symvers, other
//! another `module_layout`; the KMP 1.2 is built for `spare`, a third kernel with those
//! symvers, not installed), and the KMP rpms of
//! testdata/build-kmp.sh installed by Debian's rpm into the root's database, as a package
//! manager leaves them before the KMP's %post runs `weak-modules2 --add-kmp NVR`.
//!
//! The expected behaviour is SUSE's weak-modules2 script (openSUSE/suse-module-tools), in its
//! words: `Package K added to kernel R`, `... replaced by ...`, `... kept in kernel R (not
//! replaced by ...)`, `FAILED to add K in kernel R`, `Please run "..." as soon as your system
//! is complete.`.

mod common;

use common::kmp::{self, KmpRpms, SYSIMAGE_RPM};
use common::weak::{kver_of, suse_root};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Output;

const MULTI: &str = "kabi-multi-kmp-amd64-1.0-1";
const EMPTY: &str = "kabi-empty-kmp-amd64-1.0-1";
const DOC: &str = "kabi-vendor-doc-1.0-1";

/// The variables weak-modules2 reads: removed from every run, set by the test where wanted.
const ENV: &[&str] = &[
    "WM2_VERBOSE",
    "WM2_DEBUG",
    "WM2_LOGFILE",
    "DRACUT",
    "INITRD_IN_POSTTRANS",
    "KMP_NEEDS_MKINITRD",
];

struct Suse {
    _tmp: tempfile::TempDir,
    /// The root.
    dir: PathBuf,
    /// A directory beside the root, for what is not in it.
    outside: PathBuf,
    rpms: KmpRpms,
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The two vendor modules of the KMP built for ABI `abi`, as links in another kernel name
/// them: (path below weak-updates/, target).
fn expected(abi: &str) -> Vec<(String, String)> {
    ["kabi_vendor_a.ko", "kabi_vendor_b.ko"]
        .iter()
        .map(|m| {
            (
                format!("updates/kabi-vendor/{m}"),
                format!("/usr/lib/modules/{}/updates/kabi-vendor/{m}", kver_of(abi)),
            )
        })
        .collect()
}

/// Every entry below `dir` with its type, size, mtime, inode and link target: what "nothing
/// changed" compares.
fn listing(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, d: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        let mut entries: Vec<_> = rd.map(|e| e.unwrap().path()).collect();
        entries.sort();
        for p in entries {
            let m = std::fs::symlink_metadata(&p).unwrap();
            let target = std::fs::read_link(&p)
                .map(|t| t.display().to_string())
                .unwrap_or_default();
            out.push(format!(
                "{} {:o} {} {}.{} {} {target}",
                p.strip_prefix(base).unwrap().display(),
                m.mode(),
                if m.is_dir() { 0 } else { m.len() },
                m.mtime(),
                m.mtime_nsec(),
                m.ino(),
            ));
            if m.file_type().is_dir() {
                walk(base, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out
}

/// Assert that two listings are the same, showing only what differs.
#[track_caller]
fn same(before: &[String], after: &[String], what: &str) {
    if before == after {
        return;
    }
    let gone: Vec<&String> = before.iter().filter(|l| !after.contains(l)).collect();
    let new: Vec<&String> = after.iter().filter(|l| !before.contains(l)).collect();
    panic!("{what}: changed\nbefore only: {gone:#?}\nafter only: {new:#?}");
}

/// A gzip-compressed cpio `newc` archive of empty files, after an uncompressed early one
/// (what dracut writes).
fn initramfs(files: &[String]) -> Vec<u8> {
    fn entry(v: &mut Vec<u8>, name: &str) {
        let fields = [1, 0o100644, 0, 0, 1, 0, 0, 0, 0, 0, 0, name.len() + 1, 0];
        v.extend_from_slice(b"070701");
        for f in fields {
            v.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        v.extend_from_slice(name.as_bytes());
        v.push(0);
        while !v.len().is_multiple_of(4) {
            v.push(0);
        }
    }
    let mut early = Vec::new();
    entry(&mut early, "kernel/x86/microcode/AuthenticAMD.bin");
    entry(&mut early, "TRAILER!!!");
    early.resize(512, 0);
    let mut main = Vec::new();
    for f in files {
        entry(&mut main, f);
    }
    entry(&mut main, "TRAILER!!!");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&main).unwrap();
    early.extend(gz.finish().unwrap());
    early
}

impl Suse {
    /// A SUSE root with the kernels of `abis`; None (skip) without the tools.
    fn new(abis: &[&str]) -> Option<Suse> {
        if !common::require_tool("rpm") || !common::require_tool("gcc-12") {
            return None;
        }
        let rpms = kmp::kmp_rpms()?;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("root");
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("keep"), b"not the root's").unwrap();
        suse_root(&dir, abis)?;
        Some(Suse {
            _tmp: tmp,
            dir,
            outside,
            rpms,
        })
    }

    fn k(&self, abi: &str) -> String {
        kver_of(abi)
    }

    fn kdir(&self, abi: &str) -> PathBuf {
        self.dir.join("usr/lib/modules").join(self.k(abi))
    }

    fn install(&self, nvrs: &[&str]) {
        let files: Vec<PathBuf> = nvrs.iter().map(|n| self.rpms.rpm(n)).collect();
        kmp::install(&self.dir, SYSIMAGE_RPM, &files);
    }

    /// `rpm -ql NVR` inside the root (what a KMP's %postun pipes into --remove-kmp).
    fn ql(&self, nvr: &str) -> String {
        let o = kmp::rpm_cmd(&self.dir, SYSIMAGE_RPM)
            .args(["-ql", nvr])
            .output()
            .unwrap();
        assert!(o.status.success(), "rpm -ql {nvr}: {}", text(&o));
        String::from_utf8(o.stdout).unwrap()
    }

    /// `rpm -e --nodeps --noscripts NVR`; returns its file list as it was.
    fn erase(&self, nvr: &str) -> String {
        let list = self.ql(nvr);
        let o = kmp::rpm_cmd(&self.dir, SYSIMAGE_RPM)
            .args(["-e", "--nodeps", "--noscripts", nvr])
            .output()
            .unwrap();
        assert!(o.status.success(), "rpm -e {nvr}: {}", text(&o));
        list
    }

    /// `kabi weak-modules2 --root ROOT ARGS` with `stdin` and only the environment given.
    fn wm2(&self, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Output {
        let mut cmd = common::kabi();
        cmd.arg("weak-modules2")
            .arg("--root")
            .arg(&self.dir)
            .args(args);
        for v in ENV {
            cmd.env_remove(v);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        run_with_stdin(&mut cmd, stdin)
    }

    /// The module links of a kernel's weak-updates/: (path below it, target).
    fn links(&self, abi: &str) -> Vec<(String, String)> {
        let (l, _) = kabi::weak::links::read(&self.kdir(abi).join("weak-updates"));
        l.into_iter()
            .map(|(a, b)| (a.display().to_string(), b.display().to_string()))
            .collect()
    }

    fn dep(&self, abi: &str) -> String {
        std::fs::read_to_string(self.kdir(abi).join("modules.dep")).unwrap()
    }

    /// The inode of a link of new's weak-updates/ (to see that it was left alone).
    fn ino(&self, abi: &str, rel: &str) -> u64 {
        std::fs::symlink_metadata(self.kdir(abi).join("weak-updates").join(rel))
            .unwrap()
            .ino()
    }

    /// What dracut needs to be "installed" for the script: /etc/fstab, and a program that
    /// records its arguments in `log` (exiting with `status`).
    fn dracut(&self, status: i32) -> (PathBuf, PathBuf) {
        std::fs::create_dir_all(self.dir.join("etc")).unwrap();
        std::fs::write(
            self.dir.join("etc/fstab"),
            b"/dev/vda1 / ext4 defaults 0 1\n",
        )
        .unwrap();
        let prog = self.outside.join(format!("dracut-{status}"));
        let log = self.outside.join("dracut.log");
        std::fs::write(
            &prog,
            format!(
                "#!/bin/sh\necho \"$@\" >> '{}'\nexit {status}\n",
                log.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&prog, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        (prog, log)
    }
}

fn run_with_stdin(cmd: &mut std::process::Command, stdin: &str) -> Output {
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("run kabi");
    let mut input = child.stdin.take().unwrap();
    // the command may not read it
    let _ = input.write_all(stdin.as_bytes());
    drop(input);
    child.wait_with_output().unwrap()
}

fn ok(o: &Output) {
    assert_eq!(o.status.code(), Some(0), "{}", text(o));
}

fn has(o: &Output, line: &str) {
    assert!(
        stderr(o).lines().any(|l| l == line),
        "no line {line:?} in\n{}",
        text(o)
    );
}

#[test]
fn add_kmp_links_into_the_compatible_kernels_of_its_flavour_only() {
    let Some(kr) = common::kernels::cloud() else {
        return;
    };
    let Some(s) = Suse::new(&[kr.other, kr.old, kr.new]) else {
        return;
    };
    let (v10, pae_kmp) = (&s.rpms.v10(1), &s.rpms.pae_kmp());
    let (k_other, k_old, k_new) = (s.k(kr.other), s.k(kr.old), s.k(kr.new));
    // a kernel of another flavour (xen) with new's very ABI: compatible, but not a candidate
    let xen = &format!("6.1.0-{}-cloud-xen", kr.new);
    let cp = std::process::Command::new("cp")
        .arg("-al")
        .arg(s.kdir(kr.new))
        .arg(s.dir.join("usr/lib/modules").join(xen))
        .status()
        .unwrap();
    assert!(cp.success());
    for f in ["symvers", "System.map", "config"] {
        let ext = if f == "symvers" { ".gz" } else { "" };
        std::fs::copy(
            s.dir.join(format!("boot/{f}-{k_new}{ext}")),
            s.dir.join(format!("boot/{f}-{xen}{ext}")),
        )
        .unwrap();
    }
    s.install(&[v10, pae_kmp, DOC]);

    // the i686 KMP of flavour pae: no pae kernel here, nothing happens
    let o = s.wm2(&["-v", "--add-kmp", pae_kmp], "", &[]);
    ok(&o);
    assert!(!stderr(&o).contains("added"), "{}", text(&o));

    let o = s.wm2(&["-v", "--add-kmp", v10], "", &[]);
    ok(&o);
    has(&o, &format!("Package {v10} added to kernel {k_new}"));
    has(&o, &format!("FAILED to add {v10} in kernel {k_other}"));
    has(
        &o,
        &format!("Package {v10} does not need to be added to kernel {k_old}"),
    );
    assert!(!stderr(&o).contains(xen), "{}", text(&o));
    assert_eq!(s.links(kr.new), expected(kr.old));
    for abi in [kr.other, kr.old] {
        assert!(s.links(abi).is_empty(), "{abi}: {:?}", s.links(abi));
    }
    let (xl, _) =
        kabi::weak::links::read(&s.dir.join("usr/lib/modules").join(xen).join("weak-updates"));
    assert!(xl.is_empty(), "{xl:?}");
    // ... though kabi's check would accept the modules there
    let chk = common::run(
        common::kabi()
            .args(["check", "--root"])
            .arg(&s.dir)
            .args(["-k", xen])
            .arg(s.kdir(kr.old).join("updates/kabi-vendor/kabi_vendor_a.ko"))
            .arg(s.kdir(kr.old).join("updates/kabi-vendor/kabi_vendor_b.ko")),
    );
    assert_eq!(chk.status.code(), Some(0), "{}", text(&chk));
    // other's refusal says why with -v
    assert!(stderr(&o).contains("module_layout"), "{}", text(&o));
    // the indexes: new through weak-updates, old its own updates/
    assert!(
        s.dep(kr.new).contains(
            "weak-updates/updates/kabi-vendor/kabi_vendor_b.ko: weak-updates/updates/kabi-vendor/kabi_vendor_a.ko"
        ),
        "{}",
        s.dep(kr.new)
    );
    assert!(
        s.dep(kr.old)
            .contains("updates/kabi-vendor/kabi_vendor_b.ko: updates/kabi-vendor/kabi_vendor_a.ko")
    );
    assert!(!s.dep(kr.other).contains("kabi_vendor"));

    // once more: nothing to do, the links keep their identity
    let ino = s.ino(kr.new, "updates/kabi-vendor/kabi_vendor_a.ko");
    let o = s.wm2(&["-v", "--add-kmp", v10], "", &[]);
    ok(&o);
    has(
        &o,
        &format!("Package {v10} does not need to be added to kernel {k_new}"),
    );
    assert_eq!(s.ino(kr.new, "updates/kabi-vendor/kabi_vendor_a.ko"), ino);
    // without -v only what the script always prints
    let o = s.wm2(&["--add-kmp", v10], "", &[]);
    ok(&o);
    assert!(!stderr(&o).contains("Package "), "{}", text(&o));
    has(&o, &format!("FAILED to add {v10} in kernel {k_other}"));
}

#[test]
fn a_newer_compatible_version_replaces_the_older_and_remove_kmp_falls_back() {
    let Some(kr) = common::kernels::cloud() else {
        return;
    };
    let Some(s) = Suse::new(&[kr.other, kr.old, kr.new]) else {
        return;
    };
    let Some((v12, spare)) = s.rpms.v12() else {
        return;
    };
    let (v10, v12) = (&s.rpms.v10(1), &v12);
    let (k_other, k_old, k_new) = (s.k(kr.other), s.k(kr.old), s.k(kr.new));
    s.install(&[v10]);
    ok(&s.wm2(&["--add-kmp", v10], "", &[]));
    assert_eq!(s.links(kr.new), expected(kr.old));

    // 1.2 is built for spare (not installed here; symvers identical to old's and new's)
    s.install(&[v12]);
    let o = s.wm2(&["-v", "--add-kmp", v12], "", &[]);
    ok(&o);
    has(
        &o,
        &format!("Package {v10} replaced by package {v12} in kernel {k_new}"),
    );
    // old has 1.0's files in its updates/: the names overlap
    has(&o, &format!("FAILED to add {v12} in kernel {k_old}"));
    assert!(
        stderr(&o).contains(
            "kabi_vendor_a.ko: a file of that name is already in updates/kabi-vendor/kabi_vendor_a.ko"
        ),
        "{}",
        text(&o)
    );
    has(&o, &format!("FAILED to add {v12} in kernel {k_other}"));
    assert_eq!(s.links(kr.new), expected(spare));
    assert!(s.links(kr.old).is_empty());
    // the directory of spare, made by the package, is no kernel
    assert!(!stderr(&o).contains(&kver_of(spare)), "{}", text(&o));

    // 1.2 removed: its links give way to 1.0's again
    let list = s.erase(v12);
    let o = s.wm2(&["-v", "--remove-kmp", v12], &list, &[]);
    ok(&o);
    has(
        &o,
        &format!("Package {v12} replaced by package {v10} in kernel {k_new}"),
    );
    assert_eq!(s.links(kr.new), expected(kr.old));
    assert!(
        s.dep(kr.new)
            .contains("weak-updates/updates/kabi-vendor/kabi_vendor_a.ko")
    );

    // 1.0 removed too: nothing left to link
    let list = s.erase(v10);
    let o = s.wm2(&["-v", "--remove-kmp", v10], &list, &[]);
    ok(&o);
    has(&o, &format!("Package {v10} removed from kernel {k_new}"));
    has(&o, &format!("Package {v10} removed from kernel {k_old}"));
    assert!(s.links(kr.new).is_empty());
    assert!(!s.dep(kr.new).contains("kabi_vendor"), "{}", s.dep(kr.new));
    assert!(!s.dep(kr.old).contains("kabi_vendor"), "{}", s.dep(kr.old));
}

#[test]
fn an_incompatible_newer_version_keeps_the_older_links() {
    let Some(kr) = common::kernels::cloud() else {
        return;
    };
    let Some(s) = Suse::new(&[kr.other, kr.old, kr.new]) else {
        return;
    };
    let (v10, v11) = (&s.rpms.v10(1), &s.rpms.v11());
    let (k_other, k_old, k_new) = (s.k(kr.other), s.k(kr.old), s.k(kr.new));
    s.install(&[v10]);
    ok(&s.wm2(&["--add-kmp", v10], "", &[]));
    let ino = s.ino(kr.new, "updates/kabi-vendor/kabi_vendor_b.ko");

    // 1.1 is newer but built for other, whose module_layout differs
    s.install(&[v11]);
    let o = s.wm2(&["-v", "--add-kmp", v11], "", &[]);
    ok(&o);
    has(
        &o,
        &format!("Package {v10} kept in kernel {k_new} (not replaced by {v11})"),
    );
    has(
        &o,
        &format!("Package {v11} does not need to be added to kernel {k_other}"),
    );
    has(&o, &format!("FAILED to add {v11} in kernel {k_old}"));
    assert!(stderr(&o).contains("module_layout"), "{}", text(&o));
    assert_eq!(s.links(kr.new), expected(kr.old));
    assert_eq!(s.ino(kr.new, "updates/kabi-vendor/kabi_vendor_b.ko"), ino);
    assert!(
        s.dep(kr.other)
            .contains("updates/kabi-vendor/kabi_vendor_a.ko")
    );

    // removing 1.0: 1.1 is the only other version, and new cannot load it
    let list = s.erase(v10);
    let o = s.wm2(&["-v", "--remove-kmp", v10], &list, &[]);
    ok(&o);
    has(&o, &format!("Package {v10} removed from kernel {k_new}"));
    has(
        &o,
        "Weak-updates symlinks to no other kabi-vendor-kmp-amd64 package could be created",
    );
    assert!(s.links(kr.new).is_empty());
}

#[test]
fn overlapping_module_names_are_refused() {
    let Some(kr) = common::kernels::cloud() else {
        return;
    };
    let Some(s) = Suse::new(&[kr.other, kr.old, kr.new]) else {
        return;
    };
    let (v10, other_kmp) = (&s.rpms.v10(1), &s.rpms.other_kmp());
    let (k_old, k_new) = (s.k(kr.old), s.k(kr.new));
    s.install(&[v10, other_kmp]);
    ok(&s.wm2(&["--add-kmp", v10], "", &[]));
    // kabi-other's updates/kabi-other/kabi_vendor_a.ko has the name of kabi-vendor's
    let o = s.wm2(&["-v", "--add-kmp", other_kmp], "", &[]);
    ok(&o);
    has(&o, &format!("FAILED to add {other_kmp} in kernel {k_new}"));
    assert!(
        stderr(&o).contains(
            "kabi_vendor_a.ko: a file of that name is already in weak-updates/updates/kabi-vendor/kabi_vendor_a.ko"
        ),
        "{}",
        text(&o)
    );
    has(
        &o,
        &format!("Package {other_kmp} does not need to be added to kernel {k_old}"),
    );
    assert_eq!(s.links(kr.new), expected(kr.old));

    // the other way round: kabi-other alone is compatible with new, then kabi-vendor clashes
    ok(&s.wm2(&["--remove-kernel", &k_new], "", &[]));
    assert!(s.links(kr.new).is_empty());
    let o = s.wm2(&["-v", "--add-kmp", other_kmp], "", &[]);
    ok(&o);
    has(&o, &format!("Package {other_kmp} added to kernel {k_new}"));
    assert_eq!(
        s.links(kr.new),
        [(
            "updates/kabi-other/kabi_vendor_a.ko".to_string(),
            format!("/usr/lib/modules/{k_old}/updates/kabi-other/kabi_vendor_a.ko")
        )]
    );
    let o = s.wm2(&["-v", "--add-kmp", v10], "", &[]);
    ok(&o);
    has(&o, &format!("FAILED to add {v10} in kernel {k_new}"));
    assert_eq!(s.links(kr.new).len(), 1);
}

#[test]
fn add_kernel_and_add_kernel_modules_link_every_compatible_kmp() {
    let Some(kr) = common::kernels::cloud() else {
        return;
    };
    let Some(s) = Suse::new(&[kr.other, kr.old, kr.new]) else {
        return;
    };
    let (v10, v11, pae_kmp, inkernel) = (
        &s.rpms.v10(1),
        &s.rpms.v11(),
        &s.rpms.pae_kmp(),
        &s.rpms.inkernel(),
    );
    let k_new = s.k(kr.new);
    // the KMPs came before kernel new: none was linked into it
    s.install(&[v10, v11, inkernel, EMPTY, DOC, pae_kmp]);
    let o = s.wm2(&["-v", "--add-kernel", &k_new], "", &[]);
    ok(&o);
    has(
        &o,
        &format!("WARNING: {EMPTY} does not contain any kernel modules"),
    );
    has(&o, &format!("Package {v10} added to kernel {k_new}"));
    assert_eq!(s.links(kr.new), expected(kr.old), "{}", text(&o));
    // the kmp_in_kernel package is never linked
    assert!(!stderr(&o).contains(inkernel), "{}", text(&o));
    assert!(
        s.dep(kr.new)
            .contains("weak-updates/updates/kabi-vendor/kabi_vendor_b.ko")
    );
    // a kernel package always wants its initrd; dracut is missing here
    has(
        &o,
        &format!(
            "Please run \"/usr/bin/dracut -f /boot/initrd-{k_new} {k_new}\" as soon as your system is complete."
        ),
    );

    // a kernel subpackage with modules: the same walk
    ok(&s.wm2(&["--remove-kernel", &k_new], "", &[]));
    assert!(s.links(kr.new).is_empty());
    let list = format!(
        "/usr/lib/modules/{k_new}/kernel/lib/crc7.ko\n/usr/lib/modules/{k_new}/kernel/lib/libcrc32c.ko\n"
    );
    let o = s.wm2(&["-v", "--add-kernel-modules", &k_new], &list, &[]);
    ok(&o);
    has(&o, &format!("Package {v10} added to kernel {k_new}"));
    assert_eq!(s.links(kr.new), expected(kr.old));
    // removing a subpackage removes no link (as the script)
    let o = s.wm2(&["-v", "--remove-kernel-modules", &k_new], &list, &[]);
    ok(&o);
    has(
        &o,
        &format!("Package {v10} does not need to be added to kernel {k_new}"),
    );
    assert_eq!(s.links(kr.new), expected(kr.old));

    // a KMP with modules for two kernels makes the script's find_kmps fail: nothing walked
    s.install(&[MULTI]);
    ok(&s.wm2(&["--remove-kernel", &k_new], "", &[]));
    let o = s.wm2(&["-v", "--add-kernel", &k_new], "", &[]);
    ok(&o);
    has(
        &o,
        &format!("Error: package {MULTI} seems to contain modules for multiple kernel versions"),
    );
    assert!(s.links(kr.new).is_empty(), "{}", text(&o));
    // ... but not another KMP's own add
    let o = s.wm2(&["-v", "--add-kmp", v10], "", &[]);
    ok(&o);
    assert_eq!(s.links(kr.new), expected(kr.old));

    // kmp_in_kernel: --add-kmp of it does nothing
    let before = listing(&s.dir);
    let o = s.wm2(&["-v", "--add-kmp", inkernel], "", &[]);
    ok(&o);
    same(&before, &listing(&s.dir), "dir");
}

#[test]
fn dry_run_changes_nothing() {
    let Some(kr) = common::kernels::cloud() else {
        return;
    };
    let Some(s) = Suse::new(&[kr.other, kr.old, kr.new]) else {
        return;
    };
    let Some((v12, spare)) = s.rpms.v12() else {
        return;
    };
    let (v10, v11, v12) = (&s.rpms.v10(1), &s.rpms.v11(), &v12);
    let (k_old, k_new) = (s.k(kr.old), s.k(kr.new));
    s.install(&[v10, v11, v12]);
    ok(&s.wm2(&["--add-kmp", v10], "", &[]));
    let (dracut, log) = s.dracut(0);
    let dracut = dracut.display().to_string();
    std::fs::write(s.dir.join(format!("boot/initrd-{k_old}")), initramfs(&[])).unwrap();
    std::fs::write(
        s.dir.join(format!("boot/initrd-{k_new}")),
        initramfs(&[format!(
            "usr/lib/modules/{k_new}/weak-updates/updates/kabi-vendor/kabi_vendor_a.ko"
        )]),
    )
    .unwrap();
    let list = s.ql(v10);
    let before = listing(&s.dir);
    let outside = listing(&s.outside);
    let kmods = format!("/usr/lib/modules/{k_new}/kernel/lib/crc7.ko\n");
    type Run<'a> = (Vec<&'a str>, &'a str, Vec<(&'a str, &'a str)>);
    let runs: Vec<Run> = vec![
        (vec!["--add-kmp", v12], "", vec![("DRACUT", &dracut)]),
        (
            vec!["--add-kmp", v12],
            "",
            vec![("DRACUT", &dracut), ("INITRD_IN_POSTTRANS", "1")],
        ),
        (vec!["--remove-kmp", v10], &list, vec![("DRACUT", &dracut)]),
        (vec!["--add-kernel", &k_new], "", vec![("DRACUT", &dracut)]),
        (vec!["--remove-kernel", &k_new], "", vec![]),
        (
            vec!["--add-kernel-modules", &k_new],
            &kmods,
            vec![("DRACUT", &dracut), ("INITRD_IN_POSTTRANS", "1")],
        ),
        (vec!["--remove-kernel-modules", &k_new], &kmods, vec![]),
    ];
    let mut outputs = Vec::new();
    for (args, stdin, env) in &runs {
        let mut a = vec!["--dry-run", "-vv"];
        a.extend(args);
        let o = s.wm2(&a, stdin, env);
        ok(&o);
        same(&before, &listing(&s.dir), &format!("{args:?}"));
        outputs.push(String::from_utf8_lossy(&o.stdout).into_owned());
    }
    same(&outside, &listing(&s.outside), "outside");
    assert!(!log.exists(), "dracut ran in a dry run");
    // what the runs would have done
    let root = s.dir.display();
    assert!(
        outputs[0].contains(&format!(
            "would link weak-updates/updates/kabi-vendor/kabi_vendor_a.ko -> /usr/lib/modules/{}/updates/kabi-vendor/kabi_vendor_a.ko in kernel {k_new}",
            kver_of(spare)
        )),
        "{}",
        outputs[0]
    );
    assert!(
        outputs[0].contains(&format!(
            "would run {dracut} -f {root}/boot/initrd-{k_new} {k_new}"
        )),
        "{}",
        outputs[0]
    );
    assert!(
        outputs[1].contains(&format!(
            "would create {root}/run/regenerate-initrd/{k_new}"
        )),
        "{}",
        outputs[1]
    );
    // (1.0 removed: 1.2, the newest other compatible version, would take its place)
    assert!(
        outputs[2].contains(&format!(
            "would link weak-updates/updates/kabi-vendor/kabi_vendor_b.ko -> /usr/lib/modules/{}/updates/kabi-vendor/kabi_vendor_b.ko in kernel {k_new}",
            kver_of(spare)
        )),
        "{}",
        outputs[2]
    );
    assert!(
        outputs[4].contains(&format!(
            "would remove weak-updates/updates/kabi-vendor/kabi_vendor_b.ko in kernel {k_new}"
        )),
        "{}",
        outputs[4]
    );
    // then for real: the dry run's plan is what happens
    let o = s.wm2(&["--add-kmp", v12], "", &[("DRACUT", &dracut)]);
    ok(&o);
    assert_eq!(s.links(kr.new), expected(spare));
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        format!("-f {root}/boot/initrd-{k_new} {k_new}\n")
    );
}

#[test]
fn the_initramfs_is_rebuilt_when_the_script_would() {
    let Some(kr) = common::kernels::cloud() else {
        return;
    };
    let Some(s) = Suse::new(&[kr.other, kr.old, kr.new]) else {
        return;
    };
    let v10 = &s.rpms.v10(1);
    let (k_other, k_old, k_new) = (s.k(kr.other), s.k(kr.old), s.k(kr.new));
    s.install(&[v10]);
    let (dracut, log) = s.dracut(0);
    let dracut = dracut.display().to_string();
    let root = s.dir.display().to_string();
    let image = |k: &str| s.dir.join(format!("boot/initrd-{k}"));
    // new's image holds the vendor module (from an earlier link), old's and other's do not
    std::fs::write(
        image(&k_new),
        initramfs(&[
            "init".into(),
            format!("usr/lib/modules/{k_new}/weak-updates/updates/kabi-vendor/kabi_vendor_a.ko"),
        ]),
    )
    .unwrap();
    for k in [&k_other, &k_old] {
        std::fs::write(
            image(k),
            initramfs(&[
                "init".into(),
                format!("usr/lib/modules/{k}/kernel/lib/crc7.ko"),
            ]),
        )
        .unwrap();
    }
    // the dracut runs since the last look
    let rebuilt = |_: &Output| -> Vec<String> {
        let l = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        l.lines().map(str::to_string).collect()
    };
    let cmd = |k: &str| format!("-f {root}/boot/initrd-{k} {k}");

    // a changed module in the image: new only (old is the KMP's own kernel: its image does not
    // hold the modules; other refused them)
    let o = s.wm2(&["-v", "--add-kmp", v10], "", &[("DRACUT", &dracut)]);
    ok(&o);
    has(
        &o,
        &format!("changed initrd modules for kernel {k_new}: kabi_vendor_a"),
    );
    has(
        &o,
        &format!("changed initrd modules for kernel {k_old}: none"),
    );
    has(&o, &format!("{dracut} {}", cmd(&k_new)));
    assert_eq!(rebuilt(&o), [cmd(&k_new)]);

    // INITRD_MODULES names one: old too
    std::fs::create_dir_all(s.dir.join("etc/sysconfig")).unwrap();
    std::fs::write(
        s.dir.join("etc/sysconfig/kernel"),
        "## Type: string\nINITRD_MODULES=\"ahci kabi_vendor_b\"\n",
    )
    .unwrap();
    let o = s.wm2(&["--add-kmp", v10], "", &[("DRACUT", &dracut)]);
    ok(&o);
    assert_eq!(rebuilt(&o), [cmd(&k_old), cmd(&k_new)]);
    std::fs::remove_file(s.dir.join("etc/sysconfig/kernel")).unwrap();

    // KMP_NEEDS_MKINITRD: every kernel the KMP touched; "0" is off
    let o = s.wm2(
        &["--add-kmp", v10],
        "",
        &[("DRACUT", &dracut), ("KMP_NEEDS_MKINITRD", "1")],
    );
    ok(&o);
    assert_eq!(rebuilt(&o), [cmd(&k_old), cmd(&k_new)]);
    let o = s.wm2(
        &["--add-kmp", v10],
        "",
        &[("DRACUT", &dracut), ("KMP_NEEDS_MKINITRD", "0")],
    );
    ok(&o);
    assert_eq!(rebuilt(&o), [cmd(&k_new)]);

    // INITRD_IN_POSTTRANS: only marked, in the root
    let o = s.wm2(
        &["--add-kmp", v10],
        "",
        &[("DRACUT", &dracut), ("INITRD_IN_POSTTRANS", "1")],
    );
    ok(&o);
    assert!(rebuilt(&o).is_empty());
    let marks: Vec<String> = std::fs::read_dir(s.dir.join("run/regenerate-initrd"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(marks, std::slice::from_ref(&k_new));
    std::fs::remove_dir_all(s.dir.join("run")).unwrap();

    // no dracut (or no /etc/fstab): say what to run, for each kernel looked at
    let o = s.wm2(
        &["--add-kmp", v10],
        "",
        &[("DRACUT", "/nonexistent/dracut")],
    );
    ok(&o);
    for k in [&k_old, &k_new] {
        has(
            &o,
            &format!(
                "Please run \"/nonexistent/dracut -f /boot/initrd-{k} {k}\" as soon as your system is complete."
            ),
        );
    }
    std::fs::rename(s.dir.join("etc/fstab"), s.dir.join("etc/fstab.off")).unwrap();
    let o = s.wm2(&["--add-kmp", v10], "", &[("DRACUT", &dracut)]);
    ok(&o);
    has(
        &o,
        &format!(
            "Please run \"{dracut} -f /boot/initrd-{k_new} {k_new}\" as soon as your system is complete."
        ),
    );
    assert!(rebuilt(&o).is_empty());
    std::fs::rename(s.dir.join("etc/fstab.off"), s.dir.join("etc/fstab")).unwrap();

    // no image yet: built; an image that cannot be read: rebuilt to be safe
    std::fs::remove_file(image(&k_old)).unwrap();
    std::fs::write(image(&k_new), b"not an initramfs").unwrap();
    let o = s.wm2(&["--add-kmp", v10], "", &[("DRACUT", &dracut)]);
    ok(&o);
    assert_eq!(rebuilt(&o), [cmd(&k_old), cmd(&k_new)]);
    assert!(
        stderr(&o).contains("rebuilding it to be safe"),
        "{}",
        text(&o)
    );

    // a kernel package: always
    let o = s.wm2(&["--add-kernel", &k_other], "", &[("DRACUT", &dracut)]);
    ok(&o);
    assert_eq!(rebuilt(&o), [cmd(&k_other)]);

    // no kernel image: a warning, no rebuild
    std::fs::remove_file(s.dir.join(format!("boot/vmlinuz-{k_other}"))).unwrap();
    let o = s.wm2(&["--add-kernel", &k_other], "", &[("DRACUT", &dracut)]);
    ok(&o);
    has(
        &o,
        &format!("WARNING: kernel image for {k_other} not found!"),
    );
    assert!(rebuilt(&o).is_empty());

    // dracut fails: the run fails
    let (bad, _) = s.dracut(3);
    let o = s.wm2(
        &["--add-kernel", &k_new],
        "",
        &[("DRACUT", &bad.display().to_string())],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains("failed"), "{}", text(&o));
}

#[test]
fn without_an_rpm_database_the_module_list_comes_on_standard_input() {
    let Some(kr) = common::kernels::cloud() else {
        return;
    };
    let Some(s) = Suse::new(&[kr.other, kr.old, kr.new]) else {
        return;
    };
    let v10 = &s.rpms.v10(1);
    let k_new = s.k(kr.new);
    s.install(&[v10]);
    let list = s.ql(v10);
    // a minimal image: the files, no database
    std::fs::remove_dir_all(s.dir.join("usr/lib/sysimage/rpm")).unwrap();

    let o = s.wm2(&["-v", "--add-kmp", v10], "", &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    has(
        &o,
        &format!(
            "ERROR: package {v10} is not in the rpm database and no module list was given on standard input"
        ),
    );
    assert!(s.links(kr.new).is_empty());

    let o = s.wm2(&["-v", "--add-kmp", v10], &list, &[]);
    ok(&o);
    has(&o, &format!("Package {v10} added to kernel {k_new}"));
    assert_eq!(s.links(kr.new), expected(kr.old));

    // the list may name the root from outside
    let outside_list: String = list
        .lines()
        .map(|l| format!("{}{l}\n", s.dir.display()))
        .collect();
    let o = s.wm2(&["-v", "--remove-kmp", v10], &outside_list, &[]);
    ok(&o);
    has(&o, &format!("Package {v10} removed from kernel {k_new}"));
    assert!(s.links(kr.new).is_empty());
}

#[test]
fn hostile_roots_change_nothing_outside() {
    let Some(kr) = common::kernels::cloud() else {
        return;
    };
    let Some(s) = Suse::new(&[kr.other, kr.old, kr.new]) else {
        return;
    };
    let v10 = &s.rpms.v10(1);
    let k_old = s.k(kr.old);
    s.install(&[v10]);
    let outside = listing(&s.outside);

    // weak-updates/ of new is a link out of the root: the run stops before changing anything
    let w_new = s.kdir(kr.new).join("weak-updates");
    std::fs::remove_dir(&w_new).unwrap();
    std::os::unix::fs::symlink(&s.outside, &w_new).unwrap();
    let before = listing(&s.dir);
    let o = s.wm2(&["-v", "--add-kmp", v10], "", &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains("weak-updates"), "{}", text(&o));
    assert!(stderr(&o).contains("symbolic link"), "{}", text(&o));
    same(&before, &listing(&s.dir), "dir");
    same(&outside, &listing(&s.outside), "outside");
    std::fs::remove_file(&w_new).unwrap();
    std::fs::create_dir(&w_new).unwrap();

    // module lists naming files outside the root: nothing to do with them
    let before = listing(&s.dir);
    let list = format!(
        "/usr/lib/modules/../../../../{0}/keep.ko\n{0}/usr/lib/modules/{k_old}/updates/kabi-vendor/kabi_vendor_a.ko\n",
        s.outside.display()
    );
    let o = s.wm2(&["-v", "--remove-kmp", v10], &list, &[]);
    ok(&o);
    has(
        &o,
        &format!("WARNING: {v10} does not contain any kernel modules"),
    );
    same(&before, &listing(&s.dir), "dir");
    same(&outside, &listing(&s.outside), "outside");

    // a module reached through a link out of the root is read inside the root (where it
    // is not): refused, nothing linked
    std::fs::copy(
        s.kdir(kr.old).join("updates/kabi-vendor/kabi_vendor_a.ko"),
        s.outside.join("kabi_vendor_a.ko"),
    )
    .unwrap();
    let outside = listing(&s.outside);
    std::os::unix::fs::symlink(&s.outside, s.kdir(kr.old).join("updates/evil")).unwrap();
    let evil = "kabi-evil-kmp-amd64-1.0-1";
    let o = s.wm2(
        &["-v", "--add-kmp", evil],
        &format!("/usr/lib/modules/{k_old}/updates/evil/kabi_vendor_a.ko\n"),
        &[],
    );
    ok(&o);
    has(
        &o,
        &format!("FAILED to add {evil} in kernel {}", s.k(kr.new)),
    );
    assert!(s.links(kr.new).is_empty());
    same(&outside, &listing(&s.outside), "outside");
    std::fs::remove_file(s.kdir(kr.old).join("updates/evil")).unwrap();

    // run/ is a link out of the root: the marker is not made through it
    let (dracut, _) = s.dracut(0);
    std::os::unix::fs::symlink(&s.outside, s.dir.join("run")).unwrap();
    let outside = listing(&s.outside);
    let o = s.wm2(
        &["--add-kmp", v10],
        "",
        &[
            ("DRACUT", &dracut.display().to_string()),
            ("INITRD_IN_POSTTRANS", "1"),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains("symbolic link"), "{}", text(&o));
    same(&outside, &listing(&s.outside), "outside");
}

#[test]
fn remove_kernel_removes_links_only() {
    let Some(kr) = common::kernels::cloud() else {
        return;
    };
    let Some(s) = Suse::new(&[kr.other, kr.old, kr.new]) else {
        return;
    };
    let v10 = &s.rpms.v10(1);
    let k_new = s.k(kr.new);
    s.install(&[v10]);
    ok(&s.wm2(&["--add-kmp", v10], "", &[]));
    let w_new = s.kdir(kr.new).join("weak-updates");
    std::fs::write(w_new.join("README"), b"not a link").unwrap();

    // the kernel is still installed: its links go, its indexes follow, the file stays
    let o = s.wm2(&["-v", "--remove-kernel", &k_new], "", &[]);
    ok(&o);
    assert!(s.links(kr.new).is_empty());
    assert_eq!(std::fs::read(w_new.join("README")).unwrap(), b"not a link");
    assert!(!s.dep(kr.new).contains("kabi_vendor"));
    std::fs::remove_file(w_new.join("README")).unwrap();

    // the kernel package is gone (its files removed by rpm), only the links and kabi's scan
    // cache (no package's) are left
    ok(&s.wm2(&["--add-kernel", &k_new], "", &[]));
    assert_eq!(s.links(kr.new), expected(kr.old));
    assert!(s.kdir(kr.new).join(kabi::depmod::CACHE_NAME).is_file());
    for e in std::fs::read_dir(s.kdir(kr.new)).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap();
        if name == "weak-updates" || name == kabi::depmod::CACHE_NAME {
            continue;
        }
        if p.is_symlink() || !p.is_dir() {
            std::fs::remove_file(&p).unwrap();
        } else {
            std::fs::remove_dir_all(&p).unwrap();
        }
    }
    for f in ["System.map", "config", "vmlinuz"] {
        std::fs::remove_file(s.dir.join(format!("boot/{f}-{k_new}"))).unwrap();
    }
    std::fs::remove_file(s.dir.join(format!("boot/symvers-{k_new}.gz"))).unwrap();
    let o = s.wm2(&["--dry-run", "--remove-kernel", &k_new], "", &[]);
    ok(&o);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&format!(
            "would remove weak-updates/updates/kabi-vendor/kabi_vendor_a.ko in kernel {k_new}"
        )),
        "{}",
        text(&o)
    );
    assert_eq!(s.links(kr.new), expected(kr.old));
    let o = s.wm2(&["--remove-kernel", &k_new], "", &[]);
    ok(&o);
    assert!(!s.kdir(kr.new).exists(), "{}", text(&o));
    // the other kernels are untouched
    assert!(
        s.kdir(kr.old)
            .join("updates/kabi-vendor/kabi_vendor_a.ko")
            .is_file()
    );
}

/// SLE 15's layout: /lib/modules is a directory of its own, links name /lib/modules/...
#[test]
fn an_sle15_root_links_below_lib_modules() {
    let Some(kr) = common::kernels::cloud() else {
        return;
    };
    if !common::require_tool("gcc-12") {
        return;
    }
    let Some(vendor) = common::weak::vendor_modules(kr.old) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let Some(r) = common::weak::weak_root(tmp.path(), &[kr.other, kr.old, kr.new], &[]) else {
        return;
    };
    let (k_old, k_new) = (r.kver(kr.old), r.kver(kr.new));
    // the name of the KMP built for old (not installed: the modules are copied by hand)
    let v10 = &format!("kabi-vendor-kmp-amd64-1.0_k6.1.0_{}-1", kr.old);
    let upd = r.module_dir(kr.old).join("updates/kabi-vendor");
    std::fs::create_dir_all(&upd).unwrap();
    for m in ["kabi_vendor_a.ko", "kabi_vendor_b.ko"] {
        std::fs::copy(vendor.join(m), upd.join(m)).unwrap();
    }
    // the module list as SLE 15's KMPs have it (and as the current ones: both name the files)
    let list = format!(
        "/lib/modules/{k_old}/updates/kabi-vendor/kabi_vendor_a.ko\n/usr/lib/modules/{k_old}/updates/kabi-vendor/kabi_vendor_b.ko\n"
    );
    let mut cmd = common::kabi();
    cmd.args(["weak-modules2", "-v", "--root"])
        .arg(&r.root)
        .args(["--add-kmp", v10]);
    for v in ENV {
        cmd.env_remove(v);
    }
    let o = run_with_stdin(&mut cmd, &list);
    ok(&o);
    has(&o, &format!("Package {v10} added to kernel {k_new}"));
    let (l, _) = kabi::weak::links::read(&r.weak_updates(kr.new));
    let l: Vec<(String, String)> = l
        .into_iter()
        .map(|(a, b)| (a.display().to_string(), b.display().to_string()))
        .collect();
    assert_eq!(
        l,
        ["kabi_vendor_a.ko", "kabi_vendor_b.ko"].map(|m| (
            format!("updates/kabi-vendor/{m}"),
            format!("/lib/modules/{k_old}/updates/kabi-vendor/{m}")
        ))
    );
    let dep = std::fs::read_to_string(r.module_dir(kr.new).join("modules.dep")).unwrap();
    assert!(
        dep.contains("weak-updates/updates/kabi-vendor/kabi_vendor_b.ko"),
        "{dep}"
    );
}

#[test]
fn the_command_line_is_the_scripts() {
    let tmp = tempfile::tempdir().unwrap();
    // a root with an empty modules directory
    std::fs::create_dir_all(tmp.path().join("root/lib/modules")).unwrap();
    let root = tmp.path().join("root");
    let bin = tmp.path().join("weak-modules2");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_kabi"), &bin).unwrap();
    let wm2 = |args: &[&str], env: &[(&str, &str)]| {
        let mut c = std::process::Command::new(&bin);
        c.args(args);
        for v in ENV {
            c.env_remove(v);
        }
        for (k, v) in env {
            c.env(k, v);
        }
        run_with_stdin(&mut c, "")
    };
    let o = wm2(&[], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with(
            "ERROR: Please specify one of the --add-* or --remove-* options\nUsage:\n    weak-modules2 --add-kmp kmp-name-version-release\n"
        ),
        "{}",
        text(&o)
    );
    let o = wm2(&["--add-kmp"], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).starts_with("ERROR: Option --add-kmp requires exactly one argument\n"));
    let o = wm2(&["--add-kernel", "a", "b"], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).starts_with("ERROR: Too many arguments to --add-kernel\n"));
    let o = wm2(&["--frobnicate"], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("Usage:"), "{}", text(&o));
    let o = wm2(&["--usage"], &[]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("Usage:\n"));
    let o = wm2(&["-h"], &[]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .contains("--remove-kmp kmp-name-version-release < module-list")
    );
    let o = wm2(
        &["--root", root.to_str().unwrap(), "--add-kernel", "../x"],
        &[],
    );
    assert_eq!(o.status.code(), Some(1));
    // the last mode given wins (getopt); a name that is no KMP's fails
    let o = wm2(
        &[
            "--root",
            root.to_str().unwrap(),
            "--remove-kernel",
            "--add-kmp",
            "foo-1-1",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        stderr(&o).contains("foo-1-1 is not the name-version-release of a kernel module package")
    );
    // --logfile (and WM2_LOGFILE): standard error appended to the file
    let logf = tmp.path().join("wm2.log");
    std::fs::write(&logf, "earlier\n").unwrap();
    let o = wm2(
        &[
            "--root",
            root.to_str().unwrap(),
            "--logfile",
            logf.to_str().unwrap(),
            "--add-kmp",
            "foo-1-1",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!("weak-modules2: appending output to {}\n", logf.display())
    );
    let logged = std::fs::read_to_string(&logf).unwrap();
    assert!(
        logged.starts_with("earlier\nERROR: foo-1-1 is not"),
        "{logged}"
    );
    let o = wm2(
        &["--root", root.to_str().unwrap(), "--add-kmp", "foo-1-1"],
        &[("WM2_LOGFILE", logf.to_str().unwrap())],
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        std::fs::read_to_string(&logf)
            .unwrap()
            .matches("ERROR: foo-1-1")
            .count(),
        2
    );
}
