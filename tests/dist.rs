//! What `dist/` ships, each run for real: the systemd unit through `systemd-analyze verify`,
//! the kernel-install plugin on a throwaway multi-kernel root, the dracut module's
//! `module-setup.sh` and hook against dracut's function names in a throwaway tree (the real
//! dracut builds and boots images in tests/qemu_dracut.rs), and `scripts/install.sh` into a
//! throwaway root in both layouts.

mod common;

use std::path::Path;
use std::process::Command;

fn dist(p: &str) -> std::path::PathBuf {
    common::repo().join("dist").join(p)
}

fn text(o: &std::process::Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `systemd-analyze verify --root` of a unit installed at `/etc/systemd/system` of a
/// throwaway root holding kabi at /usr/bin/kabi; `man` (which checks `Documentation=`) finds
/// dist/'s pages through MANPATH.
fn analyze(unit: &str) -> std::process::Output {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let root = root.as_path();
    let man8 = tmp.path().join("man/man8");
    std::fs::create_dir_all(&man8).unwrap();
    std::fs::copy(dist("man/kabi-verify.8"), man8.join("kabi-verify.8")).unwrap();
    std::fs::create_dir_all(root.join("usr/bin")).unwrap();
    std::fs::create_dir_all(root.join("etc/systemd/system")).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_kabi"), root.join("usr/bin/kabi")).unwrap();
    std::fs::write(root.join("etc/systemd/system/kabi-verify.service"), unit).unwrap();
    common::run(
        Command::new("systemd-analyze")
            .env("MANPATH", tmp.path().join("man"))
            .arg("verify")
            .arg(format!("--root={}", root.display()))
            .arg("/etc/systemd/system/kabi-verify.service"),
    )
}

#[test]
fn systemd_unit_verifies_and_is_ordered_before_modules_load() {
    if !common::require_tool("systemd-analyze") {
        return;
    }
    let unit = std::fs::read_to_string(dist("systemd/kabi-verify.service")).unwrap();
    for line in [
        "Type=oneshot",
        "Before=systemd-modules-load.service sysinit.target shutdown.target",
        "Documentation=man:kabi-verify(8)",
        "RequiresMountsFor=/var/lib/prometheus/node-exporter",
        "SuccessExitStatus=1",
        "TimeoutStartSec=90",
        "ExecStart=/usr/bin/kabi verify --quiet --timeout 60 --metrics /var/lib/prometheus/node-exporter/kabi.prom",
    ] {
        assert!(unit.lines().any(|l| l == line), "no `{line}` in the unit");
    }
    // the man page the unit names exists
    assert!(dist("man/kabi-verify.8").is_file());
    let ok = analyze(&unit);
    assert!(ok.status.success() && ok.stderr.is_empty(), "{}", text(&ok));
    // the check can fail: a broken copy is refused
    let bad = analyze(&unit.replace("Type=oneshot", "Type=oneshoot"));
    assert!(
        !bad.stderr.is_empty(),
        "systemd-analyze accepted a bad unit"
    );
}

/// The command of the unit, run as the unit runs it on a host without node_exporter (no
/// collector directory): the metrics file is skipped, not a failure; a host with the
/// directory gets the file.
#[test]
fn the_units_command_needs_no_collector() {
    let unit = std::fs::read_to_string(dist("systemd/kabi-verify.service")).unwrap();
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart=/usr/bin/kabi "))
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let metrics = tmp.path().join("node-exporter/kabi.prom");
    let args: Vec<String> = exec
        .split_whitespace()
        .map(|a| {
            if a.ends_with("kabi.prom") {
                metrics.display().to_string()
            } else {
                a.to_string()
            }
        })
        .collect();
    // an empty root: no kernel to verify, exit 2, but nothing about the metrics directory
    // fails the run beyond that
    let root = tempfile::tempdir().unwrap();
    let run = || {
        common::run(
            common::kabi()
                .args(&args)
                .arg("--root")
                .arg(root.path())
                .args(["--kernel", "6.1.0-0-cloud-amd64"]),
        )
    };
    let o = run();
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("does not exist: metrics not written"),
        "{}",
        text(&o)
    );
    assert!(!metrics.exists());
    std::fs::create_dir_all(metrics.parent().unwrap()).unwrap();
    let o2 = run();
    assert!(metrics.is_file(), "{}", text(&o2));
    assert_eq!(o.status.code(), o2.status.code());
}

/// The cloud kernels by role, once the vendor modules built against `old` and `new` exist
/// (identical symvers: `old`'s are offered to `new`).
fn old_and_new_with_vendor_modules() -> Option<&'static common::kernels::Kernels> {
    let k = common::kernels::cloud()?;
    for abi in [k.old, k.new] {
        common::weak::vendor_modules(abi)?;
    }
    Some(k)
}

#[test]
fn kernel_install_plugin_links_and_unlinks_and_drops_the_cache() {
    if !common::require_tool("gcc-12") {
        return;
    }
    let Some(k) = old_and_new_with_vendor_modules() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let Some(r) = common::weak::weak_root(tmp.path(), &[k.old, k.new], &[k.old]) else {
        return;
    };
    let knew = r.kver(k.new);
    let plugin = dist("kernel-install/45-kabi-weak-modules.install");
    let run = |cmd: &str| {
        common::run(
            Command::new(&plugin)
                .env("KABI", env!("CARGO_BIN_EXE_kabi"))
                .env("KABI_BASEDIR", &r.root)
                .env("KERNEL_INSTALL_VERBOSE", "1")
                .args([cmd, knew, "/boot/entry"])
                .arg(r.root.join(format!("boot/vmlinuz-{knew}"))),
        )
    };
    // an image of new from before the links: on this root (not the host, no --dracut) it is
    // named for a rebuild
    let img = r.root.join(format!("boot/initramfs-{knew}.img"));
    std::fs::write(&img, b"").unwrap();
    let o = run("add");
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains(&format!(
            "+{} weak-modules --add-kernel {knew}",
            env!("CARGO_BIN_EXE_kabi")
        )),
        "{}",
        text(&o)
    );
    let (links, _) = kabi::weak::links::read(&r.weak_updates(k.new));
    assert_eq!(links.len(), 2, "{links:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&img.display().to_string())
            || out.contains(&img.display().to_string()),
        "the stale image is named: {}",
        text(&o)
    );
    // kabi's depmod left its scan cache in new's module directory
    let cache = r.module_dir(k.new).join("modules.kabi-cache");
    assert!(cache.is_file(), "no {}", cache.display());
    let o = run("remove");
    assert!(o.status.success(), "{}", text(&o));
    assert!(kabi::weak::links::read(&r.weak_updates(k.new)).0.is_empty());
    assert!(!cache.exists(), "the scan cache goes with the kernel");
}

/// The order the plugin relies on: kernel-install runs it before 50-depmod and dracut's
/// 50-dracut, and run-parts runs the Debian hook before dracut's and initramfs-tools'.
#[test]
fn hooks_run_before_the_initramfs_generators() {
    let mut plugins = [
        "45-kabi-weak-modules.install",
        "50-depmod.install",
        "50-dracut.install",
        "85-initrd.install",
        "90-loaderentry.install",
    ];
    plugins.sort();
    assert_eq!(plugins[0], "45-kabi-weak-modules.install");
    assert!(dist("kernel-install/45-kabi-weak-modules.install").is_file());
    if !common::require_tool("run-parts") {
        return;
    }
    // run-parts' own order and name rules, on the hooks of Debian's generators and ours
    let tmp = tempfile::tempdir().unwrap();
    for n in ["dracut", "initramfs-tools", "dkms", "zz-update-grub"] {
        let p = tmp.path().join(n);
        std::fs::write(&p, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    std::fs::copy(
        dist("kernel/postinst.d/45-kabi"),
        tmp.path().join("45-kabi"),
    )
    .unwrap();
    let o = common::run(Command::new("run-parts").arg("--test").arg(tmp.path()));
    let order: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            Path::new(l)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(
        order.first().map(String::as_str),
        Some("45-kabi"),
        "{order:?}"
    );
    assert!(order.contains(&"dracut".to_string()), "{order:?}");
}

/// module-setup.sh and the hook against dracut's function names, in a throwaway tree: check()
/// answers 255 (only when asked for), 1 without a kabi; install() takes `kabi_binary`; the
/// hook is silent on success (the summary goes to info, the log) and on a failure warns with
/// every line of kabi's report.
#[test]
fn dracut_module_is_opt_in_and_its_hook_is_quiet_unless_something_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let initdir = tmp.path().join("initramfs");
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    // a `kabi` that records how it is called and answers with $KABI_TEST_EXIT
    let log = tmp.path().join("calls");
    let fake = bin.join("kabi-test");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\necho \"$@\" >> {}\nif [ \"$KABI_TEST_EXIT\" = 0 ]; then echo 'kabi verify: kernel K: 2 expected modules, 0 with problems (0.1 s)'; exit 0; fi\n\
             echo 'incompatible             kabi_vendor_b          weak-updates'\necho '    ENOEXEC: kabi_vendor_b: disagrees about version of symbol module_layout'\n\
             echo 'kabi verify: kernel K: 1 expected modules, 1 with problems (0.1 s)'\nexit \"$KABI_TEST_EXIT\"\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let moddir = dist("dracut/90kabi");
    // dracut's functions, acting on a throwaway initramfs tree
    let script = |setup: &str| {
        format!(
            r#"set -e
initdir={initdir}
moddir={moddir}
dracutsysrootdir=
DRACUT_PATH="/nonexistent"
find_binary() {{ for p in $DRACUT_PATH; do [ -x "$p/$1" ] && {{ echo "$p/$1"; return 0; }}; done; return 1; }}
inst_binary() {{ mkdir -p "$initdir$(dirname "$2")"; cp "$1" "$initdir$2"; }}
inst_hook() {{ mkdir -p "$initdir/lib/dracut/hooks/$1"; cp "$3" "$initdir/lib/dracut/hooks/$1/$2-$(basename "$3")"; }}
dinfo() {{ echo "DINFO: $*"; }}
warn() {{ echo "WARN: $*"; }}
info() {{ echo "INFO: $*"; }}
. "$moddir/module-setup.sh"
# not the machine's own /usr/bin/kabi (a package may be installed)
kabi_installed=/nonexistent/kabi
{setup}
"#,
            initdir = initdir.display(),
            moddir = moddir.display()
        )
    };
    let bash = |s: String, exit: &str| {
        common::run(
            Command::new("bash")
                .arg("-c")
                .arg(s)
                .env("KABI_TEST_EXIT", exit),
        )
    };
    // no kabi anywhere: check() says so and answers 1
    let o = bash(script("") + "set +e; check; echo \"check=$?\"", "0");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("check=1") && out.contains("DINFO: kabi: no kabi"),
        "{}",
        text(&o)
    );
    // kabi named in dracut.conf.d: 255, never included by default
    let conf = format!("kabi_binary={}", fake.display());
    let o = bash(script(&conf) + "set +e; check; echo \"check=$?\"", "0");
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("check=255"),
        "{}",
        text(&o)
    );
    // install() puts it at /usr/bin/kabi with the pre-udev hook
    let o = bash(script(&conf) + "install", "0");
    assert!(o.status.success(), "{}", text(&o));
    assert!(initdir.join("usr/bin/kabi").is_file());
    let hook = initdir.join("lib/dracut/hooks/pre-udev/10-kabi-verify.sh");
    assert!(hook.is_file());
    // the hook: `kabi` on PATH as the image has it
    std::fs::copy(&fake, bin.join("kabi")).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run_hook = |exit: &str| {
        common::run(
            Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "warn() {{ echo \"WARN: $*\"; }}; info() {{ echo \"INFO: $*\"; }}; . {}",
                    hook.display()
                ))
                .env("PATH", &path)
                .env("KABI_TEST_EXIT", exit),
        )
    };
    let o = run_hook("0");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!out.contains("WARN"), "a healthy host is quiet: {out}");
    assert!(out.contains("INFO: kabi verify: kernel K: 2 expected modules, 0 with problems"));
    let o = run_hook("1");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "the hook never fails the boot: {}",
        text(&o)
    );
    let warns: Vec<&str> = out.lines().filter(|l| l.starts_with("WARN: ")).collect();
    assert_eq!(
        warns,
        [
            "WARN: kabi verify: some expected kernel modules will not load:",
            "WARN: kabi verify: incompatible             kabi_vendor_b          weak-updates",
            "WARN: kabi verify:     ENOEXEC: kabi_vendor_b: disagrees about version of symbol module_layout",
            "WARN: kabi verify: kernel K: 1 expected modules, 1 with problems (0.1 s)",
        ],
        "{out}"
    );
    let o = run_hook("2");
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .contains("WARN: kabi verify: could not verify the kernel's modules (exit 2):"),
        "{}",
        text(&o)
    );
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(
        calls.lines().all(|l| l == "verify --quiet --timeout 30"),
        "{calls}"
    );
}

/// scripts/install.sh into a throwaway root, in each layout, and with another prefix: every
/// file in its place, the scripts naming the installed kabi, the kmod names only on request
/// and off any PATH.
#[test]
fn install_puts_everything_in_place() {
    let install = |layout: &str, prefix: &str, names: bool| {
        let tmp = tempfile::tempdir().unwrap();
        let mut c = Command::new("bash");
        c.arg(common::repo().join("scripts/install.sh"))
            .arg("--destdir")
            .arg(tmp.path())
            .args([
                "--layout",
                layout,
                "--prefix",
                prefix,
                "--bin",
                env!("CARGO_BIN_EXE_kabi"),
            ]);
        if names {
            c.arg("--kmod-names");
        }
        let o = common::run(&mut c);
        assert!(o.status.success(), "{}", text(&o));
        tmp
    };
    let common_files = [
        "usr/bin/kabi",
        "usr/share/man/man8/kabi.8",
        "usr/share/man/man8/kabi-verify.8",
        "usr/share/man/man8/kabi-weak-modules.8",
        "usr/share/bash-completion/completions/kabi",
        "usr/share/fish/vendor_completions.d/kabi.fish",
        "usr/share/doc/kabi/CHANGELOG.md",
        "usr/lib/dracut/modules.d/90kabi/module-setup.sh",
        "usr/lib/dracut/modules.d/90kabi/kabi-verify.sh",
        "usr/lib/kernel/install.d/45-kabi-weak-modules.install",
        "etc/dracut.conf.d/90-kabi.conf",
    ];
    let deb = install("debian", "/usr", true);
    for f in common_files.iter().chain(&[
        "usr/share/zsh/vendor-completions/_kabi",
        "lib/systemd/system/kabi-verify.service",
        "usr/share/doc/kabi/LICENSE-MIT",
        "usr/share/doc/kabi/LICENSE-APACHE",
        "etc/kernel/postinst.d/45-kabi",
        "etc/kernel/postrm.d/45-kabi",
        "lib/depmod.d/kabi-weak-updates.conf",
    ]) {
        assert!(deb.path().join(f).is_file(), "debian: {f} missing");
    }
    assert!(!deb.path().join("usr/share/man/man1").exists());
    for n in [
        "modinfo",
        "depmod",
        "modprobe",
        "insmod",
        "rmmod",
        "lsmod",
        "weak-modules",
    ] {
        assert_eq!(
            std::fs::read_link(deb.path().join("usr/lib/kabi/bin").join(n)).unwrap(),
            Path::new("/usr/bin/kabi")
        );
        for d in ["usr/bin", "usr/sbin", "sbin", "bin"] {
            assert!(!deb.path().join(d).join(n).exists(), "{d}/{n} shadows kmod");
        }
    }
    let rpm = install("rpm", "/usr", false);
    for f in common_files.iter().chain(&[
        "usr/share/zsh/site-functions/_kabi",
        "usr/lib/systemd/system/kabi-verify.service",
        "usr/share/licenses/kabi/LICENSE-MIT",
    ]) {
        assert!(rpm.path().join(f).is_file(), "rpm: {f} missing");
    }
    assert!(!rpm.path().join("etc/kernel").exists());
    assert!(!rpm.path().join("lib/depmod.d").exists());
    assert!(
        !rpm.path().join("usr/lib/kabi").exists(),
        "kmod names only on request"
    );
    // another prefix: the scripts name that kabi
    let local = install("debian", "/usr/local", false);
    assert!(local.path().join("usr/local/bin/kabi").is_file());
    for f in [
        "usr/local/lib/systemd/system/kabi-verify.service",
        "usr/lib/dracut/modules.d/90kabi/module-setup.sh",
        "usr/lib/kernel/install.d/45-kabi-weak-modules.install",
        "etc/kernel/postinst.d/45-kabi",
    ] {
        let t = std::fs::read_to_string(local.path().join(f)).unwrap();
        assert!(t.contains("/usr/local/bin/kabi"), "{f}");
        assert!(!t.contains("/usr/bin/kabi"), "{f}");
    }
}

/// Debian's own removal of a kernel, with kabi's hook: the linux-image package's real
/// `postrm` (from its .deb; its `/lib/modules` and `/etc/kernel/postrm.d` pointed at the
/// root's and at a directory holding kabi's hook, `linux-update-symlinks` left out), after
/// the files of the image and headers packages were deleted as dpkg deletes them, for
/// `remove` and then `purge`.
/// kabi had linked modules into the kernel and indexed it (writing `modules.weakdep`, which
/// the postrm of kmod 30's Debian does not delete, and its scan cache). After `remove` the
/// links and kabi's files are gone and no index was written again; after `purge` the
/// kernel's module directory is gone; the other kernel is as it was.
#[test]
fn a_debian_purge_leaves_no_module_directory_behind() {
    for tool in ["gcc-12", "run-parts", "dpkg-deb"] {
        if !common::require_tool(tool) {
            return;
        }
    }
    let Some(k) = old_and_new_with_vendor_modules() else {
        return;
    };
    let Some(tree) = common::fetch_kernel("cloud-amd64", Some(k.new)) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let root_dir = tmp.path().join("root");
    let Some(r) = common::weak::weak_root(&root_dir, &[k.old, k.new], &[k.old]) else {
        return;
    };
    let knew = r.kver(k.new).to_string();
    let mdir = r.module_dir(k.new);
    // the package, as fetch-kernel.sh downloaded it beside the unpacked trees
    let debs = tree.parent().unwrap().parent().unwrap().join("debs");
    let find_deb = |prefix: String| {
        std::fs::read_dir(&debs)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                let n = p.file_name().unwrap().to_string_lossy();
                n.starts_with(&prefix) && n.ends_with(".deb")
            })
            .unwrap_or_else(|| panic!("no {prefix}*.deb in {}", debs.display()))
    };
    let deb = find_deb(format!("linux-image-{knew}-unsigned_"));
    // its `build` and `source` links are the headers package's
    let headers = find_deb(format!("linux-headers-{knew}_"));
    // the empty extra/ and updates/ the test root is made with are no package's
    for d in ["extra", "updates"] {
        if mdir.join(d).exists() {
            std::fs::remove_dir(mdir.join(d)).unwrap();
        }
    }

    let o = common::run(
        common::kabi()
            .args(["weak-modules", "--basedir"])
            .arg(&r.root)
            .args(["--no-initramfs", "--add-kernel", &knew]),
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(kabi::weak::links::read(&r.weak_updates(k.new)).0.len(), 2);
    for f in ["modules.weakdep", "modules.kabi-cache", "modules.dep"] {
        assert!(mdir.join(f).is_file(), "kabi wrote no {f}");
    }
    let old_dir = r.module_dir(k.old);
    let old_before = common::walk(&old_dir, &|_| true);
    let old_bytes: Vec<Vec<u8>> = old_before
        .iter()
        .filter(|p| p.is_file())
        .map(|p| std::fs::read(p).unwrap())
        .collect();

    // the postrm, pointed at the root and at a hook directory with kabi's hook alone
    let ctl = tmp.path().join("control");
    let o = common::run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&ctl));
    assert!(o.status.success(), "{}", text(&o));
    let postrm = std::fs::read_to_string(ctl.join("postrm")).unwrap();
    for needed in [
        "/etc/kernel/postrm.d",
        "rmdir /lib/modules/$version",
        "linux-update-symlinks",
    ] {
        assert!(postrm.contains(needed), "the postrm has no {needed:?}");
    }
    let hooks = tmp.path().join("postrm.d");
    std::fs::create_dir(&hooks).unwrap();
    std::fs::copy(dist("kernel/postrm.d/45-kabi"), hooks.join("45-kabi")).unwrap();
    std::fs::set_permissions(
        hooks.join("45-kabi"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let lib_modules = format!("{}/", r.root.join("lib/modules").display());
    let postrm = postrm
        .replace("/lib/modules/", &lib_modules)
        .replace("/etc/kernel/postrm.d", &hooks.display().to_string())
        .replace(
            "linux-update-symlinks",
            "kabi-test-no-linux-update-symlinks",
        );
    let script = tmp.path().join("postrm");
    std::fs::write(&script, postrm).unwrap();

    // dpkg deletes the packages' files, then the directories they leave empty
    let mut listing = String::new();
    for d in [&deb, &headers] {
        let o = common::run(Command::new("dpkg-deb").arg("-c").arg(d));
        assert!(o.status.success(), "{}", text(&o));
        listing.push_str(&String::from_utf8_lossy(&o.stdout));
    }
    let mut dirs = Vec::new();
    for line in listing.lines() {
        let Some(path) = line.split_whitespace().nth(5) else {
            continue;
        };
        let Some(rel) = path.strip_prefix("./") else {
            continue;
        };
        let p = r.root.join(rel.trim_end_matches('/'));
        if !p.starts_with(&mdir) {
            continue;
        }
        if line.starts_with('d') {
            dirs.push(p);
        } else {
            std::fs::remove_file(&p).unwrap();
        }
    }
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for d in dirs {
        let _ = std::fs::remove_dir(d);
    }
    assert!(
        !mdir.join("kernel").exists(),
        "the package's modules are gone"
    );

    let postrm = |op: &str| {
        let o = common::run(
            Command::new("sh")
                .arg(&script)
                .arg(op)
                .env("KABI", env!("CARGO_BIN_EXE_kabi"))
                .env("KABI_BASEDIR", &r.root),
        );
        assert!(o.status.success(), "postrm {op}: {}", text(&o));
    };
    let dep_before = std::fs::read(mdir.join("modules.dep")).unwrap();
    postrm("remove");
    assert!(!r.weak_updates(k.new).exists(), "the links are gone");
    for f in ["modules.kabi-cache", "modules.weakdep"] {
        assert!(!mdir.join(f).exists(), "{f} is left after remove");
    }
    assert!(
        std::fs::read(mdir.join("modules.dep")).unwrap() == dep_before,
        "the indexes of a kernel whose modules are gone are not written again"
    );
    postrm("purge");
    assert!(
        !mdir.exists(),
        "{} is left after purge: {:?}",
        mdir.display(),
        std::fs::read_dir(&mdir).map(|d| d.map(|e| e.unwrap().file_name()).collect::<Vec<_>>())
    );
    assert_eq!(common::walk(&old_dir, &|_| true), old_before);
    let old_after: Vec<Vec<u8>> = old_before
        .iter()
        .filter(|p| p.is_file())
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    assert!(old_after == old_bytes, "the other kernel's files changed");
}
