//! The packages `scripts/package.sh` builds, handled by the distributions' own tools:
//! `lintian` judges each `.deb`; `dpkg` installs the `.deb`s on this machine and removes and
//! purges them again (only as root; kmod's tools must be the same files before, during and
//! after); `rpm` installs the `.rpm`s into a throwaway root and lists them; `systemd-analyze
//! verify` checks the unit where each package put it.
//!
//! The packages hold the static binary the qemu tests boot (`common::qemu::static_kabi`,
//! built once into `target/static` and passed to package.sh with `--bin`): the test checks
//! the packaging, not the release profile's optimisation.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The packages, built once per test process into `CARGO_TARGET_TMPDIR/packages`.
struct Packages {
    kabi_deb: PathBuf,
    names_deb: PathBuf,
    kabi_rpm: PathBuf,
    names_rpm: PathBuf,
}

fn packages() -> Option<&'static Packages> {
    static P: OnceLock<Option<Packages>> = OnceLock::new();
    P.get_or_init(|| {
        for tool in ["dpkg-deb", "rpmbuild", "readelf", "strip"] {
            if !common::require_tool(tool) {
                return None;
            }
        }
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("packages");
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&out).unwrap();
        // stripped, as the release profile ships it (lintian: unstripped-binary-or-object)
        let bin = out.join("kabi");
        let o = common::run(
            Command::new("strip")
                .arg("-o")
                .arg(&bin)
                .arg(common::qemu::static_kabi()),
        );
        assert!(o.status.success(), "strip: {}", text(&o));
        let t = Instant::now();
        let o = common::run(
            Command::new("bash")
                .arg(common::repo().join("scripts/package.sh"))
                .arg("--out")
                .arg(&out)
                .arg("--bin")
                .arg(&bin)
                .arg("all"),
        );
        assert!(o.status.success(), "package.sh failed: {}", text(&o));
        eprintln!("package.sh: {:.1} s", t.elapsed().as_secs_f64());
        let paths: Vec<PathBuf> = String::from_utf8(o.stdout)
            .unwrap()
            .lines()
            .map(PathBuf::from)
            .collect();
        let find = |prefix: &str, suffix: &str| {
            let hits: Vec<&PathBuf> = paths
                .iter()
                .filter(|p| {
                    let n = p.file_name().unwrap().to_str().unwrap();
                    n.starts_with(prefix) && n.ends_with(suffix)
                })
                .collect();
            assert_eq!(hits.len(), 1, "one {prefix}*{suffix} in {paths:?}");
            assert!(hits[0].is_file(), "{} is not a file", hits[0].display());
            hits[0].clone()
        };
        Some(Packages {
            kabi_deb: find("kabi_", "_amd64.deb"),
            names_deb: find("kabi-kmod-names_", "_all.deb"),
            kabi_rpm: find("kabi-", ".x86_64.rpm"),
            names_rpm: find("kabi-kmod-names-", ".noarch.rpm"),
        })
    })
    .as_ref()
}

/// `lintian` on each .deb: no error (`E:` line); warnings and the rest are printed.
#[test]
fn lintian_finds_no_error_in_the_debs() {
    if !common::require_tool("lintian") {
        return;
    }
    let Some(p) = packages() else { return };
    for deb in [&p.kabi_deb, &p.names_deb] {
        let t = Instant::now();
        let o = common::run(
            Command::new("lintian")
                .args(["--tag-display-limit", "0"])
                .arg(deb),
        );
        let out = String::from_utf8_lossy(&o.stdout);
        eprintln!(
            "lintian {} ({:.1} s):\n{out}{}",
            deb.display(),
            t.elapsed().as_secs_f64(),
            String::from_utf8_lossy(&o.stderr)
        );
        let errors: Vec<&str> = out.lines().filter(|l| l.starts_with("E: ")).collect();
        assert!(errors.is_empty(), "lintian errors:\n{}", errors.join("\n"));
        // lintian exits 2 on a failure of its own (not a package's fault): that is no pass
        assert!(o.status.success(), "{}", text(&o));
    }
}

/// What must stay what it is on the host: kmod's binary and every name pointing at it, and
/// weak-modules (which Debian does not have), as (path, device, inode, size, mtime, link).
fn kmod_state() -> Vec<String> {
    let mut v = Vec::new();
    for p in [
        "/usr/bin/kmod",
        "/bin/kmod",
        "/sbin/modprobe",
        "/sbin/depmod",
        "/sbin/insmod",
        "/sbin/rmmod",
        "/sbin/lsmod",
        "/sbin/modinfo",
        "/usr/sbin/modprobe",
        "/usr/sbin/depmod",
        "/usr/sbin/weak-modules",
        "/usr/bin/lsmod",
    ] {
        let s = match std::fs::symlink_metadata(p) {
            Ok(m) => {
                let link = std::fs::read_link(p)
                    .map(|t| t.display().to_string())
                    .unwrap_or_default();
                let target = std::fs::metadata(p)
                    .map(|m| format!("{}:{}", m.dev(), m.ino()))
                    .unwrap_or_default();
                format!(
                    "{p} {}:{} {} {} -> {link} ({target})",
                    m.dev(),
                    m.ino(),
                    m.size(),
                    m.mtime()
                )
            }
            Err(e) => format!("{p}: {}", e.kind()),
        };
        v.push(s);
    }
    v
}

/// `dpkg` (retried for up to a minute while another dpkg or apt holds its lock).
fn dpkg(args: &[&str], debs: &[&Path]) -> Output {
    let start = Instant::now();
    loop {
        let o = common::run(
            Command::new("dpkg")
                .env("DEBIAN_FRONTEND", "noninteractive")
                .args(args)
                .args(debs),
        );
        let err = String::from_utf8_lossy(&o.stderr);
        if o.status.success() || !err.contains("lock") || start.elapsed() > Duration::from_secs(60)
        {
            return o;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

fn dpkg_status(pkg: &str) -> String {
    let o = common::run(Command::new("dpkg-query").args(["-W", "-f=${db:Status-Abbrev}", pkg]));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// Purges kabi's packages when a test fails half-way, so that the host is left as it was.
struct PurgeOnDrop;

impl Drop for PurgeOnDrop {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let o = dpkg(&["--purge", "kabi-kmod-names", "kabi"], &[]);
            eprintln!("cleanup: dpkg --purge: {}", text(&o));
        }
    }
}

/// `dpkg -i` of both .debs on this machine (as root: CI's machine is a throwaway one), then
/// `dpkg -r` and `dpkg --purge`: the files are where Debian expects them, the unit verifies,
/// the kmod names are offered without touching kmod, and nothing is left behind.
#[test]
fn dpkg_installs_and_removes_without_touching_kmod() {
    if !rustix::process::geteuid().is_root() {
        assert!(
            !common::in_ci(),
            "CI runs the tests as root: dpkg -i needs it"
        );
        eprintln!("SKIPPED: dpkg -i of the .debs needs root");
        return;
    }
    if !common::require_tool("dpkg") || !common::require_tool("systemd-analyze") {
        return;
    }
    let Some(p) = packages() else { return };
    // never over something that is not ours to remove
    for pkg in ["kabi", "kabi-kmod-names"] {
        let st = dpkg_status(pkg);
        assert!(
            st.is_empty() || st == "un",
            "package {pkg} is already known to dpkg ({st}): this test installs and purges it, \
             remove it first"
        );
    }
    for f in [
        "/usr/bin/kabi",
        "/usr/lib/kabi",
        "/lib/systemd/system/kabi-verify.service",
        "/usr/lib/dracut/modules.d/90kabi",
    ] {
        assert!(
            std::fs::symlink_metadata(f).is_err(),
            "{f} exists and belongs to no kabi package: this test would install over it and \
             then remove it; remove it first"
        );
    }
    let before = kmod_state();
    let _guard = PurgeOnDrop;

    let t = Instant::now();
    let o = dpkg(&["-i"], &[&p.kabi_deb, &p.names_deb]);
    assert!(o.status.success(), "dpkg -i: {}", text(&o));
    eprintln!("dpkg -i: {:.1} s", t.elapsed().as_secs_f64());
    assert_eq!(dpkg_status("kabi"), "ii");
    assert_eq!(dpkg_status("kabi-kmod-names"), "ii");

    // the package's own file list, and the paths Debian expects
    let listed = |pkg: &str| -> Vec<PathBuf> {
        let o = common::run(Command::new("dpkg").args(["-L", pkg]));
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8(o.stdout)
            .unwrap()
            .lines()
            .map(PathBuf::from)
            // files and links to files (not /lib, a link to usr/lib on a merged /usr)
            .filter(|p| std::fs::symlink_metadata(p).is_ok() && !p.is_dir())
            .collect()
    };
    let files = listed("kabi");
    let names = listed("kabi-kmod-names");
    for want in [
        "/usr/bin/kabi",
        "/usr/share/man/man8/kabi.8.gz",
        "/usr/share/man/man8/kabi-verify.8.gz",
        "/lib/systemd/system/kabi-verify.service",
        "/usr/lib/dracut/modules.d/90kabi/module-setup.sh",
        "/usr/lib/kernel/install.d/45-kabi-weak-modules.install",
        "/etc/kernel/postinst.d/45-kabi",
        "/etc/dracut.conf.d/90-kabi.conf",
        "/lib/depmod.d/kabi-weak-updates.conf",
        "/usr/share/doc/kabi/copyright",
    ] {
        assert!(
            files.iter().any(|f| f == Path::new(want)),
            "{want} is not installed by kabi: {files:?}"
        );
    }
    // the installed binary runs and is the one packaged
    let o = common::run(Command::new("/usr/bin/kabi").arg("--version"));
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read("/usr/bin/kabi").unwrap(),
        std::fs::read(Path::new(env!("CARGO_TARGET_TMPDIR")).join("packages/kabi")).unwrap()
    );
    if Path::new("/usr/bin/man").exists() {
        let o = common::run(Command::new("man").args(["-w", "kabi-verify"]));
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("/usr/share/man/man8/kabi-verify.8.gz"),
            "man does not find the page: {}",
            text(&o)
        );
    }
    // the unit, where the package put it, as systemd sees it
    let o = common::run(
        Command::new("systemd-analyze").args(["verify", "/lib/systemd/system/kabi-verify.service"]),
    );
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "systemd-analyze verify: {}",
        text(&o)
    );
    // kmod's names are offered in a directory on no PATH and weak-modules as an alternative
    assert_eq!(
        std::fs::read_link("/usr/lib/kabi/bin/modprobe").unwrap(),
        Path::new("/usr/bin/kabi")
    );
    assert_eq!(
        std::fs::read_link("/etc/alternatives/weak-modules").unwrap(),
        Path::new("/usr/lib/kabi/bin/weak-modules")
    );
    let during = kmod_state();
    let changed: Vec<String> = before
        .iter()
        .zip(&during)
        .filter(|(a, b)| a != b)
        .map(|(a, b)| format!("{a}\n  now {b}"))
        .collect();
    // the one name that may appear: weak-modules, which Debian's kmod does not have
    assert!(
        changed
            .iter()
            .all(|c| c.starts_with("/usr/sbin/weak-modules: ")),
        "kmod's files changed:\n{}",
        changed.join("\n")
    );
    let o = common::run(Command::new("dpkg").args(["-S", "/sbin/modprobe"]));
    assert!(
        String::from_utf8_lossy(&o.stdout).starts_with("kmod:"),
        "{}",
        text(&o)
    );

    // remove: everything but the conffiles goes; purge: those too
    let o = dpkg(&["-r", "kabi-kmod-names", "kabi"], &[]);
    assert!(o.status.success(), "dpkg -r: {}", text(&o));
    assert_eq!(dpkg_status("kabi"), "rc");
    for f in files.iter().chain(&names) {
        // conffiles (everything in /etc) stay until the purge
        let kept = f.starts_with("/etc/");
        assert_eq!(
            std::fs::symlink_metadata(f).is_ok(),
            kept,
            "{} after dpkg -r",
            f.display()
        );
    }
    assert!(std::fs::symlink_metadata("/usr/sbin/weak-modules").is_err());
    let o = dpkg(&["--purge", "kabi-kmod-names", "kabi"], &[]);
    assert!(o.status.success(), "dpkg --purge: {}", text(&o));
    for f in files.iter().chain(&names) {
        assert!(
            std::fs::symlink_metadata(f).is_err(),
            "{} is left after dpkg --purge",
            f.display()
        );
    }
    for d in [
        "/usr/lib/kabi",
        "/usr/lib/dracut/modules.d/90kabi",
        "/usr/share/doc/kabi",
    ] {
        assert!(std::fs::symlink_metadata(d).is_err(), "{d} is left");
    }
    assert!(matches!(dpkg_status("kabi").as_str(), "" | "un"));
    assert_eq!(kmod_state(), before, "kmod's files after the purge");
}

/// The .rpms installed into a throwaway root with rpm (without scriptlets: the root has no
/// shell), listed, and erased again.
#[test]
fn rpm_installs_into_a_root_and_lists_its_files() {
    if !common::require_tool("rpm") || !common::require_tool("systemd-analyze") {
        return;
    }
    let Some(p) = packages() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let rpm = |args: &[&str], files: &[&Path]| {
        common::run(
            Command::new("rpm")
                .arg("--root")
                .arg(root)
                .args(["--dbpath", "/var/lib/rpm"])
                .args(args)
                .args(files),
        )
    };
    // the binary is static: the package requires no library
    let o = common::run(
        Command::new("rpm")
            .args(["-qp", "--requires"])
            .arg(&p.kabi_rpm),
    );
    assert!(o.status.success(), "{}", text(&o));
    let reqs = String::from_utf8_lossy(&o.stdout);
    assert!(
        !reqs.lines().any(|l| l.contains(".so")),
        "the static kabi requires libraries:\n{reqs}"
    );
    let o = rpm(
        &["-i", "--nodeps", "--noscripts"],
        &[&p.kabi_rpm, &p.names_rpm],
    );
    assert!(o.status.success(), "rpm -i: {}", text(&o));
    assert!(root.join("var/lib/rpm/rpmdb.sqlite").is_file());
    let o = rpm(&["-ql", "kabi"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let list = String::from_utf8(o.stdout).unwrap();
    let files: Vec<&str> = list.lines().collect();
    for want in [
        "/usr/bin/kabi",
        "/usr/share/man/man8/kabi.8",
        "/usr/share/man/man8/kabi-weak-modules.8",
        "/usr/lib/systemd/system/kabi-verify.service",
        "/usr/lib/dracut/modules.d/90kabi/module-setup.sh",
        "/usr/lib/dracut/modules.d/90kabi/kabi-verify.sh",
        "/etc/dracut.conf.d/90-kabi.conf",
        "/usr/lib/kernel/install.d/45-kabi-weak-modules.install",
        "/usr/share/licenses/kabi/LICENSE-MIT",
    ] {
        let page = want.strip_suffix(".8").map(|w| format!("{w}.8.gz"));
        assert!(
            files.contains(&want) || page.as_deref().is_some_and(|p| files.contains(&p)),
            "rpm -ql kabi lists no {want}:\n{list}"
        );
    }
    // every listed file is in the root
    for f in &files {
        let rel = f.trim_start_matches('/');
        assert!(
            std::fs::symlink_metadata(root.join(rel)).is_ok(),
            "{f} is listed but not installed"
        );
    }
    // the Debian paths are not in the rpm
    for no in ["/lib/depmod.d", "/etc/kernel/postinst.d", "/lib/systemd"] {
        assert!(
            !list.lines().any(|l| l.starts_with(no)),
            "{no} in the rpm:\n{list}"
        );
    }
    let o = rpm(&["-ql", "kabi-kmod-names"], &[]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("/usr/lib/kabi/bin/modprobe"),
        "{}",
        text(&o)
    );
    assert_eq!(
        std::fs::read_link(root.join("usr/lib/kabi/bin/modprobe")).unwrap(),
        Path::new("/usr/bin/kabi")
    );
    // the config file is marked so an upgrade keeps the administrator's edit
    let o = rpm(&["-qc", "kabi"], &[]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "/etc/dracut.conf.d/90-kabi.conf",
        "{}",
        text(&o)
    );
    // rpm -V: the installed files are what the package holds (the root has no /bin/sh)
    let o = rpm(&["-V", "--nodeps", "kabi", "kabi-kmod-names"], &[]);
    assert!(o.status.success(), "rpm -V: {}", text(&o));

    // the unit, installed by rpm, as systemd sees it (the pages through MANPATH)
    let o = common::run(
        Command::new("systemd-analyze")
            .env("MANPATH", root.join("usr/share/man"))
            .arg("verify")
            .arg(format!("--root={}", root.display()))
            .arg("/usr/lib/systemd/system/kabi-verify.service"),
    );
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "systemd-analyze verify: {}",
        text(&o)
    );

    let o = rpm(&["-e", "--noscripts", "kabi-kmod-names", "kabi"], &[]);
    assert!(o.status.success(), "rpm -e: {}", text(&o));
    for f in &files {
        let p = root.join(f.trim_start_matches('/'));
        assert!(
            std::fs::symlink_metadata(&p).map_or(true, |m| m.is_dir() && !f.contains("kabi")),
            "{f} is left after rpm -e"
        );
    }
    assert!(!root.join("usr/lib/kabi").exists());
}
