//! kabi under kmod's names (`modprobe`, `insmod`, `rmmod`, `lsmod`, `modinfo`) and as
//! `kabi load`, against Debian's kmod 30 on a real kernel tree indexed by kmod's depmod:
//! standard output, standard error and exit status byte for byte, for a matrix of
//! modprobe.d files and kernel command lines and for every option of kmod's tools.
//!
//! Nothing here loads a module into the machine running the tests: only what kmod does not
//! insert is run (`-n`, `--show-depends`, `-R`, `-c`, dumps, errors before any insert, install
//! commands that only echo). What the kernel decides is compared in qemu (`qemu_kmod.rs`).

mod common;

use common::kmodtools::{Out, Run, indexed_root, kabi_in_ns, namespace_flags};
use std::path::Path;

/// One configuration of the matrix: modprobe.d files, the kernel command line, and the
/// names and aliases asked for.
struct Case {
    label: &'static str,
    files: &'static [(&'static str, &'static str)],
    cmdline: &'static str,
    queries: &'static [&'static str],
}

const Q: &[&str] = &["dummy", "udf", "fs-udf", "xfs"];

const CASES: &[Case] = &[
    Case {
        label: "empty",
        files: &[],
        cmdline: "",
        queries: Q,
    },
    Case {
        label: "options with a value",
        files: &[("a.conf", "options dummy numdummies=3\n")],
        cmdline: "",
        queries: Q,
    },
    Case {
        label: "options without a value",
        files: &[("a.conf", "options dummy foo\n")],
        cmdline: "",
        queries: Q,
    },
    Case {
        label: "options on several lines",
        files: &[(
            "a.conf",
            "options udf uid=1000\noptions udf gid=100\noptions cdrom debug=1\n",
        )],
        cmdline: "",
        queries: Q,
    },
    Case {
        label: "quoted option values",
        files: &[("a.conf", "options dummy x=\"a b\" y='c d'\n")],
        cmdline: "",
        queries: Q,
    },
    Case {
        label: "spaces and tabs kept",
        files: &[("a.conf", "options dummy   a=1\t b=2  \n")],
        cmdline: "",
        queries: Q,
    },
    Case {
        label: "continued lines",
        files: &[(
            "a.conf",
            "options dummy a=1 \\\n  b=2\nalias my-fs \\\nudf\n",
        )],
        cmdline: "",
        queries: &["dummy", "my-fs"],
    },
    Case {
        label: "options by alias name",
        files: &[(
            "a.conf",
            "alias my-net dummy\noptions my-net a=1\noptions my_net b=2\n",
        )],
        cmdline: "",
        queries: &["my-net", "my_net", "dummy"],
    },
    Case {
        label: "alias",
        files: &[("a.conf", "alias my-fs udf\n")],
        cmdline: "",
        queries: &["my-fs", "my_fs", "udf"],
    },
    Case {
        label: "alias wildcard",
        files: &[("a.conf", "alias fs-my* udf\nalias x?y dummy\n")],
        cmdline: "",
        queries: &["fs-mything", "xay", "xy"],
    },
    Case {
        label: "alias to nothing",
        files: &[("a.conf", "alias mod-simple deaddood\n")],
        cmdline: "",
        queries: &["mod-simple"],
    },
    Case {
        label: "alias shadows a module",
        files: &[("a.conf", "alias dummy udf\n")],
        cmdline: "",
        queries: &["dummy", "udf"],
    },
    Case {
        label: "alias not chained",
        files: &[("a.conf", "alias a-1 b-1\nalias b-1 dummy\n")],
        cmdline: "",
        queries: &["a-1", "b-1"],
    },
    Case {
        label: "alias to two modules",
        files: &[("a.conf", "alias two dummy\nalias two udf\n")],
        cmdline: "",
        queries: &["two"],
    },
    Case {
        label: "alias with brackets",
        files: &[("a.conf", "alias x[0-9]-y dummy\n")],
        cmdline: "",
        queries: &["x5-y", "x5_y", "xa-y"],
    },
    Case {
        label: "alias for an index alias",
        files: &[("a.conf", "alias fs-udf dummy\n")],
        cmdline: "",
        queries: &["fs-udf"],
    },
    Case {
        label: "blacklist a name",
        files: &[("a.conf", "blacklist udf\n")],
        cmdline: "",
        queries: &["udf", "fs-udf", "-b udf", "-b fs-udf"],
    },
    Case {
        label: "blacklist an aliased module",
        files: &[("a.conf", "alias my-fs udf\nblacklist udf\n")],
        cmdline: "",
        queries: &["my-fs", "-b my-fs"],
    },
    Case {
        label: "blacklist a dependency",
        files: &[("a.conf", "blacklist cdrom\n")],
        cmdline: "",
        queries: &["udf", "-b udf", "isofs"],
    },
    Case {
        label: "blacklist with dashes",
        files: &[("a.conf", "blacklist crc-itu-t\nblacklist nls-utf8\n")],
        cmdline: "",
        queries: &["-b crc-itu-t", "-b nls_utf8", "udf"],
    },
    Case {
        label: "modprobe.blacklist=",
        files: &[],
        cmdline: "root=/dev/vda modprobe.blacklist=udf,isofs",
        queries: &["fs-udf", "fs-iso9660", "-b udf", "udf"],
    },
    Case {
        label: "modprobe.blacklist= with dashes and empty items",
        files: &[],
        cmdline: "modprobe.blacklist=,crc-itu-t,,vfat",
        queries: &["fs-vfat", "-b crc-itu-t", "udf"],
    },
    Case {
        label: "softdep pre",
        files: &[("a.conf", "softdep dummy pre: nls-utf8\n")],
        cmdline: "",
        queries: Q,
    },
    Case {
        label: "softdep post",
        files: &[("a.conf", "softdep dummy post: nls_utf8 isofs\n")],
        cmdline: "",
        queries: Q,
    },
    Case {
        label: "softdep pre and post",
        files: &[("a.conf", "softdep udf pre: nls_utf8 post: dummy isofs\n")],
        cmdline: "",
        queries: Q,
    },
    Case {
        label: "softdep first line wins",
        files: &[(
            "a.conf",
            "softdep dummy pre: nls_utf8\nsoftdep dummy pre: isofs\n",
        )],
        cmdline: "",
        queries: Q,
    },
    Case {
        label: "softdep words before pre: dropped",
        files: &[("a.conf", "softdep dummy isofs pre: nls_utf8\n")],
        cmdline: "",
        queries: Q,
    },
    Case {
        label: "softdep wildcard",
        files: &[("a.conf", "softdep dumm* pre: nls_utf8\n")],
        cmdline: "",
        queries: Q,
    },
    Case {
        label: "softdep through an alias",
        files: &[("a.conf", "softdep dummy pre: fs-udf crc32c\n")],
        cmdline: "",
        queries: Q,
    },
    Case {
        label: "softdep cycle",
        files: &[(
            "a.conf",
            "softdep dummy pre: isofs\nsoftdep isofs pre: dummy\n",
        )],
        cmdline: "",
        queries: &["dummy", "isofs"],
    },
    Case {
        label: "softdep on a dependency",
        files: &[("a.conf", "softdep cdrom pre: nls_utf8 post: dummy\n")],
        cmdline: "",
        queries: &["udf", "isofs"],
    },
    Case {
        label: "softdep on nothing",
        files: &[("a.conf", "softdep dummy pre: nosuch post: alsonot\n")],
        cmdline: "",
        queries: Q,
    },
    Case {
        label: "softdep names kmod cannot look up",
        files: &[("a.conf", "softdep dummy pre: a]b post: x[y nls_utf8\n")],
        cmdline: "",
        queries: Q,
    },
    Case {
        label: "softdep to a blacklisted module",
        files: &[("a.conf", "softdep dummy pre: isofs\nblacklist isofs\n")],
        cmdline: "",
        queries: &["dummy", "-b dummy"],
    },
    Case {
        label: "softdep beside modules.softdep",
        files: &[("a.conf", "softdep cifs pre: dummy\n")],
        cmdline: "",
        queries: &["cifs", "btrfs", "xfs"],
    },
    Case {
        label: "install",
        files: &[("a.conf", "install dummy /bin/true\n")],
        cmdline: "",
        queries: Q,
    },
    Case {
        label: "install with $CMDLINE_OPTS",
        files: &[(
            "a.conf",
            "install dummy echo $CMDLINE_OPTS; echo again $CMDLINE_OPTS\noptions dummy a=1\n",
        )],
        cmdline: "dummy.b=2",
        queries: Q,
    },
    Case {
        label: "install on a dependency",
        files: &[("a.conf", "install cdrom /bin/true\n")],
        cmdline: "",
        queries: &["udf", "isofs"],
    },
    Case {
        label: "install wildcard",
        files: &[("a.conf", "install dumm* /bin/true\n")],
        cmdline: "",
        queries: Q,
    },
    Case {
        label: "install for a name without a module",
        files: &[(
            "a.conf",
            "install only-cmd /bin/true\nremove only-rm /bin/true\n",
        )],
        cmdline: "",
        queries: &["only-cmd", "only_cmd", "only-rm"],
    },
    Case {
        label: "install ignored with softdeps",
        files: &[(
            "a.conf",
            "install dummy /bin/true\nsoftdep dummy pre: nls_utf8\n",
        )],
        cmdline: "",
        queries: &["dummy", "-i dummy"],
    },
    Case {
        label: "install, -i",
        files: &[("a.conf", "install udf /bin/true\ninstall cdrom /bin/true\n")],
        cmdline: "",
        queries: &["-i udf", "--ignore-install udf", "udf"],
    },
    Case {
        label: "install and remove shown by -c",
        files: &[(
            "a.conf",
            "install cramfs /bin/false\nremove dummy echo bye\nremove udf /bin/true $CMDLINE_OPTS\n",
        )],
        cmdline: "",
        queries: &["cramfs", "-r dummy", "-r udf"],
    },
    Case {
        label: "kernel command line options",
        files: &[],
        cmdline: "root=/dev/vda dummy.numdummies=4 udf.uid=1 mod_simple.x=1",
        queries: Q,
    },
    Case {
        label: "kernel command line valueless",
        files: &[],
        cmdline: "dummy.foo udf.bar=1 quiet",
        queries: Q,
    },
    Case {
        label: "kernel command line quoted",
        files: &[],
        cmdline: "\"dummy.dyndbg=file drivers/x.c +mpf\" udf.x=\"a b\" \"udf.y\"",
        queries: Q,
    },
    Case {
        label: "kernel command line odd tokens",
        files: &[],
        cmdline: "dummy.a.b=1 .x=1 dummy.=2 a=b.c d.e dum[my.q=1 d]x.p=2 nls-utf8.z=3",
        queries: &["dummy", "nls_utf8"],
    },
    Case {
        label: "kernel command line and modprobe.d",
        files: &[("a.conf", "options dummy a=1\n")],
        cmdline: "dummy.b=2 dummy.a=3",
        queries: Q,
    },
    Case {
        label: "comments and bad lines",
        files: &[(
            "a.conf",
            "# comment\n  # indented\nfoo bar\noptions\noptions dummy\nalias x\nblacklist\ninclude /etc/x\nconfig y\n\n\t\noptions dummy ok=1\n",
        )],
        cmdline: "",
        queries: Q,
    },
    Case {
        label: "backslash escapes and CRLF",
        files: &[("a.conf", "options dummy a=\\x\\\\y\r\nalias my-fs udf\r\n")],
        cmdline: "",
        queries: &["dummy", "my-fs"],
    },
    Case {
        label: "brackets refused",
        files: &[(
            "a.conf",
            "alias a[b x\nalias y z]\nblacklist q]\noptions m] a=1\nsoftdep s] pre: x\ninstall i] true\nalias ok[1-2] dummy\n",
        )],
        cmdline: "",
        queries: &["ok1", "ok3"],
    },
    Case {
        label: "files sorted by name",
        files: &[
            ("b.conf", "options dummy b=1\nsoftdep dummy pre: isofs\n"),
            ("a.conf", "options dummy a=1\nsoftdep dummy pre: nls_utf8\n"),
            ("c.conf", "alias my-x dummy\n"),
        ],
        cmdline: "",
        queries: &["dummy", "my-x"],
    },
    Case {
        label: "only .conf files, not hidden ones",
        files: &[
            ("x.txt", "options dummy txt=1\n"),
            (".hidden.conf", "options dummy hidden=1\n"),
            ("y.alias", "alias from-alias-file dummy\n"),
            ("z.conf", "options dummy z=1\n"),
        ],
        cmdline: "",
        queries: &["dummy", "from-alias-file"],
    },
    Case {
        label: "a dependency's options",
        files: &[("a.conf", "options crc-itu-t x=1\noptions libcrc32c y=2\n")],
        cmdline: "crc_itu_t.z=3",
        queries: Q,
    },
    Case {
        label: "built-in module and alias",
        files: &[(
            "a.conf",
            "options ext4 a=1\nalias my-ext fs-ext4\nsoftdep ext4 pre: dummy\n",
        )],
        cmdline: "",
        queries: &["ext4", "fs-ext4", "my-ext", "crc32c"],
    },
    Case {
        label: "symbols",
        files: &[],
        cmdline: "",
        queries: &["symbol:crc_itu_t", "symbol:nosuch", "symbol:crc*"],
    },
    Case {
        label: "device aliases",
        files: &[("a.conf", "blacklist virtio_net\n")],
        cmdline: "",
        queries: &[
            "virtio:d00000001v00001AF4",
            "pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00",
        ],
    },
    Case {
        label: "not found",
        files: &[],
        cmdline: "",
        queries: &["nosuch", "a]b", "no-such-module"],
    },
    Case {
        label: "everything at once",
        files: &[
            (
                "10-a.conf",
                "alias my-fs udf\noptions udf uid=0\nsoftdep udf pre: nls_utf8 post: dummy\nblacklist isofs\ninstall cramfs /bin/false\n",
            ),
            (
                "20-b.conf",
                "options dummy numdummies=2\nremove dummy /bin/true\n",
            ),
        ],
        cmdline: "udf.gid=5 modprobe.blacklist=vfat \"dummy.x=a b\"",
        queries: &["my-fs", "udf", "dummy", "fs-vfat", "fs-iso9660", "cramfs"],
    },
];

fn confdir(tmp: &Path, case: &Case) -> std::path::PathBuf {
    let d = tmp.join(format!(
        "conf-{}",
        case.label.replace([' ', '/', '$', '=', ','], "_")
    ));
    std::fs::create_dir_all(&d).unwrap();
    for (n, t) in case.files {
        std::fs::write(d.join(n), t).unwrap();
    }
    d
}

fn words(s: &str) -> Vec<&str> {
    s.split(' ').collect()
}

/// ≥ 50 configurations × (modprobe -c, and per query --show-depends and -n -v), kabi as
/// `modprobe` byte for byte; `kabi load` prints kmod's standard output and exit status.
#[test]
fn configuration_matrix_equals_kmod() {
    let Some((root, kver)) = indexed_root() else {
        return;
    };
    if namespace_flags().is_none() {
        return;
    }
    assert!(CASES.len() >= 50, "{} configurations", CASES.len());
    let tmp = tempfile::tempdir().unwrap();
    let root_s = root.to_string_lossy().into_owned();
    let mut diffs = Vec::new();
    let mut compared = 0;
    for case in CASES {
        let conf = confdir(tmp.path(), case);
        let conf_s = conf.to_string_lossy().into_owned();
        let base = [
            "-C",
            conf_s.as_str(),
            "-d",
            root_s.as_str(),
            "-S",
            kver.as_str(),
        ];
        let mut runs: Vec<Vec<&str>> = vec![[&base[..], &["-c"]].concat()];
        for q in case.queries {
            let q = words(q);
            runs.push([&base[..], &["--show-depends"], &q[..]].concat());
            runs.push([&base[..], &["-n", "-v"], &q[..]].concat());
            // installs that only echo or succeed run for real (nothing is inserted)
            if case.files.iter().any(|(_, t)| t.contains("install dumm")) && q == ["dummy"] {
                runs.push([&base[..], &q[..]].concat());
            }
        }
        for args in &runs {
            let (kmod, _, diff) = Run::new("modprobe", args).cmdline(case.cmdline).compare();
            compared += 1;
            if let Some(d) = diff {
                diffs.push(format!("[{}] {d}", case.label));
                continue;
            }
            // kabi load: the same standard output and exit status
            if args.contains(&"-c") {
                continue;
            }
            let mut la: Vec<String> = vec!["load".into(), "--root".into(), root_s.clone()];
            la.extend(["-S", kver.as_str(), "-C", conf_s.as_str()].map(String::from));
            la.extend(args[6..].iter().map(|s| s.to_string()));
            if !(args.contains(&"-n") || args.contains(&"--show-depends")) || args.contains(&"-r") {
                continue;
            }
            let ours = kabi_in_ns(case.cmdline, &la);
            compared += 1;
            if ours.stdout != kmod.stdout || ours.code != kmod.code {
                diffs.push(format!(
                    "[{}] kabi {}:\n=== kmod\n{}=== kabi load\n{}",
                    case.label,
                    la.join(" "),
                    kmod.text(),
                    ours.text()
                ));
            }
        }
    }
    eprintln!(
        "{} configurations, {compared} runs compared, {} differ",
        CASES.len(),
        diffs.len()
    );
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}

/// Every option of kmod 30's modprobe (long ones by unique prefix), its usage errors and
/// messages; the call Debian's initramfs-tools makes; `$MODPROBE_OPTIONS`.
#[test]
fn modprobe_options_equal_kmod() {
    let Some((root, kver)) = indexed_root() else {
        return;
    };
    if namespace_flags().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let conf = tmp.path().join("conf");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(
        conf.join("t.conf"),
        "alias mod-simple deaddood\nalias my-fs udf\nblacklist isofs\n\
         install cramfs /bin/false\ninstall dummy echo INSTALL $CMDLINE_OPTS $MODPROBE_MODULE; exit 3\n\
         remove dummy echo REMOVING\noptions udf uid=1\nsoftdep udf post: nls_utf8\n",
    )
    .unwrap();
    let dummy = root.join(format!("lib/modules/{kver}/kernel/drivers/net/dummy.ko"));
    let (r, c, d) = (
        root.to_string_lossy().into_owned(),
        conf.to_string_lossy().into_owned(),
        dummy.to_string_lossy().into_owned(),
    );
    let k = kver.as_str();
    let set_version = format!("--set-version={k}");
    let base: Vec<&str> = vec!["-C", &c, "-d", &r, "-S", k];
    let cases: Vec<Vec<&str>> = vec![
        // Debian's initramfs-tools (hook-functions, manual_add_modules)
        vec![
            "--all",
            &set_version,
            "--ignore-install",
            "--quiet",
            "--show-depends",
            "udf",
            "nosuch",
            "dummy",
            "fs-vfat",
            "mod-simple",
        ],
        vec![
            "--all",
            &set_version,
            "--ignore-install",
            "--show-depends",
            "udf",
            "nosuch",
        ],
        vec!["--show-depends", "-q", "mod-simple"],
        vec!["-a", "-n", "-v", "udf", "nosuch", "dummy"],
        vec!["-R", "my-fs"],
        vec!["--resolve-alias", "fs-udf"],
        vec!["-R", "nosuch"],
        vec!["-R", "-q", "nosuch"],
        vec!["-D", "xfs"],
        vec!["--show-dep", "xfs"],
        vec!["--show-", "xfs"],
        vec!["--sh", "xfs"],
        vec!["--show", "-v", "udf"],
        vec!["--dry-run", "-v", "udf"],
        vec!["-n", "udf"],
        vec!["-n", "-v", "udf", "uid=5", "x=a b", "y='c d'"],
        vec!["-n", "-v", "--first-time", "udf"],
        vec!["-n", "-v", "-f", "udf"],
        vec!["-n", "-v", "--force-vermagic", "--force-modversion", "udf"],
        vec!["-n", "-v", "-b", "isofs"],
        vec!["-n", "-v", "--use-blacklist", "fs-iso9660"],
        vec!["-n", "-v", "-i", "dummy"],
        vec!["-n", "-v", "--ignore-remove", "dummy"],
        vec!["dummy", "x=1"],
        vec!["-v", "dummy"],
        vec!["-q", "dummy"],
        vec!["cramfs"],
        vec!["-q", "cramfs"],
        vec!["mod-simple"],
        vec!["nosuch"],
        vec!["-q", "nosuch"],
        vec!["-a", "nosuch", "alsonot"],
        vec!["-a", "-q", "nosuch", "alsonot"],
        vec!["-c"],
        vec!["--showconfig"],
        vec!["--show-config"],
        vec!["--dump-modversions", &d],
        vec!["--show-modversions", &d],
        vec!["--show-exports", &d],
        vec!["--dump-modversions", "/nonexistent.ko"],
        vec!["-r", "-n", "-v", "dummy"],
        vec!["-r", "-v", "dummy"],
        vec!["--remove", "nosuch"],
        vec!["-r", "-q", "nosuch"],
        vec!["-r", "--first-time", "udf"],
        vec!["-r", "-n", "-v", "--remove-holders", "udf"],
        vec!["-r", "-n", "-v", "--remove-dependencies", "udf"],
        vec!["-r", "-n", "-v", "--remove-", "udf"],
        vec!["-r", "-w", "100", "udf"],
        vec!["-r", "--wait=0x10", "udf"],
        vec!["-r", "-w", "1x", "udf"],
        vec!["-r", "-a", "-n", "-v", "udf", "dummy", "ext4"],
        vec!["-r", "ext4"],
        vec!["-s", "-n", "-v", "udf"],
        vec![],
        vec!["-h"],
        vec!["--help"],
        vec!["--bogus"],
        vec!["--all=1", "udf"],
        vec!["--config"],
        vec!["-x"],
        vec!["-C"],
        vec!["-n", "-v", "--", "udf"],
        vec!["udf", "-n", "-v"],
    ];
    let mut diffs = Vec::new();
    for extra in &cases {
        let mut args = base.clone();
        args.extend(extra.iter().copied());
        if let Some(d) = Run::new("modprobe", &args).compare().2 {
            diffs.push(d);
        }
    }
    // $MODPROBE_OPTIONS is read before the command line
    for env in ["-n -v", "-q", "-v -C /nonexistent"] {
        let args: Vec<&str> = vec!["-d", &r, "-S", k, "udf"];
        if let Some(d) = Run::new("modprobe", &args)
            .env("MODPROBE_OPTIONS", env)
            .compare()
            .2
        {
            diffs.push(format!("MODPROBE_OPTIONS={env}: {d}"));
        }
    }
    // -V: kabi's own version in kmod's layout
    let v = Run::new("modprobe", &["-V"]).run(true);
    let text = String::from_utf8_lossy(&v.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(v.code, 0);
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(
        lines[0],
        format!("kabi version {}", env!("CARGO_PKG_VERSION"))
    );
    assert!(
        lines[1].split(' ').all(|f| f.starts_with(['+', '-'])),
        "{text}"
    );
    eprintln!(
        "{} modprobe invocations compared, {} differ",
        cases.len() + 3,
        diffs.len()
    );
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}

/// insmod takes a file and nothing else; rmmod's checks and messages; lsmod's table (on
/// the machine running the tests) and its refusal of arguments; modinfo's options, the
/// last field option winning, a module file named by modules.dep but missing.
#[test]
fn insmod_rmmod_lsmod_modinfo_equal_kmod() {
    let Some((root, kver)) = indexed_root() else {
        return;
    };
    if namespace_flags().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty.ko");
    std::fs::write(&empty, b"").unwrap();
    let garbage = tmp.path().join("garbage.ko");
    std::fs::write(&garbage, b"not a module").unwrap();
    // a module directory whose modules.dep names files that are not there
    let bare = tmp.path().join("bare");
    let bdir = bare.join(format!("lib/modules/{kver}"));
    std::fs::create_dir_all(&bdir).unwrap();
    for f in [
        "modules.dep",
        "modules.dep.bin",
        "modules.alias",
        "modules.alias.bin",
        "modules.builtin",
        "modules.builtin.bin",
    ] {
        std::fs::copy(root.join(format!("lib/modules/{kver}/{f}")), bdir.join(f)).unwrap();
    }
    let s = |p: &Path| p.to_string_lossy().into_owned();
    let (r, b, e, g) = (s(&root), s(&bare), s(&empty), s(&garbage));
    let udf = format!("{r}/lib/modules/{kver}/kernel/fs/udf/udf.ko");
    let k = kver.as_str();
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("insmod", vec![]),
        ("insmod", vec!["dummy"]),
        ("insmod", vec!["-"]),
        ("insmod", vec![&e]),
        ("insmod", vec!["/nonexistent.ko", "a=1"]),
        ("insmod", vec!["--help"]),
        ("insmod", vec!["--he"]),
        ("insmod", vec!["-x"]),
        ("insmod", vec!["--force", &e]),
        ("rmmod", vec![]),
        ("rmmod", vec!["nosuch"]),
        ("rmmod", vec!["-v", "nosuch", "alsonot"]),
        ("rmmod", vec!["-s", "nosuch"]),
        ("rmmod", vec!["-w", "nosuch"]),
        ("rmmod", vec!["--verb", "nosuch"]),
        ("rmmod", vec!["-h"]),
        ("rmmod", vec!["--bogus"]),
        ("rmmod", vec![&udf]),
        ("lsmod", vec![]),
        ("lsmod", vec!["x"]),
        ("lsmod", vec!["-h"]),
        ("modinfo", vec![]),
        ("modinfo", vec!["--bogus"]),
        ("modinfo", vec!["-h"]),
        ("modinfo", vec![&udf]),
        ("modinfo", vec!["-a", "-l", &udf]),
        ("modinfo", vec!["-l", "-a", &udf]),
        ("modinfo", vec!["-F", "license", "-d", &udf]),
        ("modinfo", vec!["-d", "--field=author", &udf]),
        ("modinfo", vec!["--auth", &udf]),
        ("modinfo", vec!["-0", "-F", "alias", &udf]),
        ("modinfo", vec!["-p", &udf]),
        (
            "modinfo",
            vec!["-b", &r, "-k", k, "fs-udf", "nosuch", "ext4"],
        ),
        ("modinfo", vec!["-m", "-b", &r, "-k", k, "udf", "fs-udf"]),
        // (modules without dependencies: kmod reports a missing dependency file with the
        // address of its context, which cannot be reproduced)
        (
            "modinfo",
            vec!["-b", &b, "-k", k, "-F", "filename", "dummy"],
        ),
        ("modinfo", vec!["-b", &b, "-k", k, "-n", "cdrom"]),
        ("modinfo", vec!["-b", &b, "-k", k, "dummy"]),
        ("modinfo", vec!["-b", &b, "-k", k, "-a", "dummy"]),
        (
            "modinfo",
            vec!["-b", &b, "-k", k, "-F", "filename", "rtnl-link-dummy"],
        ),
        ("modinfo", vec![&e]),
        ("modinfo", vec![&g]),
    ];
    let mut diffs = Vec::new();
    for (prog, args) in &cases {
        if let Some(d) = Run::new(prog, args).compare().2 {
            diffs.push(d);
        }
    }
    // -V of each: kabi's version in kmod's layout
    for prog in ["insmod", "rmmod", "modinfo"] {
        let v = Run::new(prog, &["-V"]).run(true);
        assert_eq!(v.code, 0, "{prog} -V");
        assert!(
            String::from_utf8_lossy(&v.stdout).starts_with("kabi version "),
            "{prog}: {}",
            v.text()
        );
    }
    eprintln!(
        "{} invocations compared, {} differ",
        cases.len(),
        diffs.len()
    );
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}

/// `modprobe --dump-modversions` on a module without `__versions`: kmod's message and exit
/// status; `kabi modversions` says the same.
#[test]
fn dump_modversions_without_versions() {
    let Some((root, kver)) = indexed_root() else {
        return;
    };
    if namespace_flags().is_none() || !common::require_tool("objcopy") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = root.join(format!("lib/modules/{kver}/kernel/drivers/net/dummy.ko"));
    let m = tmp.path().join("noversions.ko");
    let o = common::run(
        std::process::Command::new("objcopy")
            .arg("--remove-section=__versions")
            .arg(&src)
            .arg(&m),
    );
    assert!(o.status.success());
    let ms = m.to_string_lossy().into_owned();
    let (kmod, _, diff) = Run::new("modprobe", &["--dump-modversions", &ms]).compare();
    assert!(diff.is_none(), "{}", diff.unwrap());
    assert_eq!(kmod.code, 1);
    assert_eq!(
        String::from_utf8_lossy(&kmod.stderr),
        format!("modprobe: FATAL: could not get modversions of {ms}: No such file or directory\n")
    );
    let ours = common::run(common::kabi().args(["modversions"]).arg(&m));
    assert_eq!(ours.status.code(), Some(1));
    assert!(ours.stdout.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&ours.stderr),
        format!(
            "kabi modversions: ERROR: could not get modversions of {ms}: No such file or directory\n"
        )
    );
}

/// A program writing into a closed pipe dies of SIGPIPE, quietly, as kmod's tools do.
#[test]
fn closed_pipe_ends_quietly() {
    let Some((root, kver)) = indexed_root() else {
        return;
    };
    let r = root.to_string_lossy().into_owned();
    let bin = common::kmodtools::kabi_bin_dir();
    let runs: Vec<(std::path::PathBuf, Vec<String>)> = vec![
        (
            bin.join("modprobe"),
            vec![
                "-c".into(),
                "-d".into(),
                r.clone(),
                "-S".into(),
                kver.clone(),
            ],
        ),
        (
            bin.join("depmod"),
            vec!["-n".into(), "-b".into(), r.clone(), kver.clone()],
        ),
        (
            std::path::PathBuf::from(env!("CARGO_BIN_EXE_kabi")),
            vec![
                "depmod".into(),
                "-n".into(),
                "-b".into(),
                r.clone(),
                kver.clone(),
            ],
        ),
        (
            "/usr/sbin/modprobe".into(),
            vec![
                "-c".into(),
                "-d".into(),
                r.clone(),
                "-S".into(),
                kver.clone(),
            ],
        ),
    ];
    for (prog, args) in runs {
        let mut child = std::process::Command::new(&prog)
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        {
            let mut out = child.stdout.take().unwrap();
            let mut buf = [0u8; 16];
            std::io::Read::read_exact(&mut out, &mut buf).unwrap();
            // the pipe closes here
        }
        let o = child.wait_with_output().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            o.status.signal(),
            Some(13),
            "{} {args:?}: {:?} {}",
            prog.display(),
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            o.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// Under kmod's names `-d ROOT` reads the host's modprobe.d directories, not ROOT's (as
/// kmod does); `kabi load --root ROOT` reads ROOT's.
#[test]
fn configuration_directories_under_dirname_and_root() {
    let Some((root, kver)) = indexed_root() else {
        return;
    };
    if namespace_flags().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // a root of its own: the indexed tree linked in, a modprobe.d below it
    let own = tmp.path().join("root");
    std::fs::create_dir_all(own.join("lib/modules")).unwrap();
    std::os::unix::fs::symlink(
        root.join(format!("lib/modules/{kver}")),
        own.join(format!("lib/modules/{kver}")),
    )
    .unwrap();
    std::fs::create_dir_all(own.join("etc/modprobe.d")).unwrap();
    std::fs::write(
        own.join("etc/modprobe.d/root.conf"),
        "options dummy fromroot=1\n",
    )
    .unwrap();
    let o = own.to_string_lossy().into_owned();
    let args = ["-n", "-v", "-d", &o, "-S", &kver, "dummy"];
    let (kmod, _, diff) = Run::new("modprobe", &args).compare();
    assert!(diff.is_none(), "{}", diff.unwrap());
    assert!(!String::from_utf8_lossy(&kmod.stdout).contains("fromroot"));
    let ours = kabi_in_ns(
        "quiet",
        &["load", "--root", &o, "-S", &kver, "-n", "-v", "dummy"].map(String::from),
    );
    assert_eq!(ours.code, 0, "{}", ours.text());
    assert!(
        String::from_utf8_lossy(&ours.stdout).contains("dummy.ko fromroot=1"),
        "{}",
        ours.text()
    );
    let _ = Out::text;
}
