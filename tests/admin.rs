//! What an administrator meets at the edges: `kabi check NAME` looked up as `kabi info` does,
//! with a summary line; `kabi weak status` on a root without kernels; `--json` options that
//! say what they print; the messages when `/proc` is not mounted.

mod common;

use clap::CommandFactory;
use common::{kabi, module_dir, run};

fn text(o: &std::process::Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `kabi check dummy` finds the kernel's own dummy.ko by name; the report ends with a
/// summary line; a name that is no module is an error naming where it was looked for; a
/// module of another ABI (a kernel whose module_layout differs) is refused and counted.
#[test]
fn check_takes_module_names_and_sums_up() {
    let Some((old, new)) = common::kernels_with_different_layout("cloud-amd64") else {
        return;
    };
    let (root, kver) = (new.root, new.kver);
    let check = |args: &[&std::ffi::OsStr]| {
        run(kabi()
            .args(["check", "--root"])
            .arg(&root)
            .args(["-k", &kver])
            .args(args))
    };
    let o = check(&["dummy".as_ref()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{}", text(&o));
    assert!(
        lines[0].starts_with("ok") && lines[0].contains("dummy"),
        "{}",
        text(&o)
    );
    assert_eq!(
        lines[1],
        format!("kabi check: kernel {kver}: 1 modules, 0 would be refused")
    );

    let o = check(&["no_such_module_x".as_ref()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no_such_module_x: no such file, and no module or alias of that name in")
            && err.contains(&format!("{}/lib/modules/{kver}", root.display())),
        "{}",
        text(&o)
    );

    // the old kernel's udf (and its crc-itu-t) by path, and the new one's dummy by name: 2
    // refused of 3
    let (old_dir, _) = module_dir(&old.root);
    let udf = old_dir.join("kernel/fs/udf/udf.ko");
    let crc = old_dir.join("kernel/lib/crc-itu-t.ko");
    let o = check(&[udf.as_os_str(), crc.as_os_str(), "dummy".as_ref()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.lines().last()
            == Some(&format!("kabi check: kernel {kver}: 3 modules, 2 would be refused")[..]),
        "{}",
        text(&o)
    );
    // --json has no summary line: it stays one JSON document
    let o = check(&["--json".as_ref(), "dummy".as_ref()]);
    serde_json::from_slice::<serde_json::Value>(&o.stdout).expect("one JSON document");
}

#[test]
fn weak_status_without_kernels_says_so() {
    let o = run(kabi().args(["weak", "status", "--root", "/nonexistent/kabi-root"]));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("/nonexistent/kabi-root"),
        "{}",
        text(&o)
    );
    let empty = tempfile::tempdir().unwrap();
    let o = run(kabi().args(["weak", "status", "--root"]).arg(empty.path()));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no kernel module directories"),
        "{}",
        text(&o)
    );
}

/// With `/proc` not mounted (an empty tmpfs over it, in a mount namespace of this test
/// only), the commands that default to the running kernel say which file they could not
/// read, never an empty release. Needs root for the namespace.
#[test]
fn without_proc_the_messages_name_it() {
    if !rustix::process::geteuid().is_root() {
        assert!(!common::in_ci(), "CI runs the tests as root");
        eprintln!("SKIPPED: needs root for a mount namespace");
        return;
    }
    let o = run(std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(
            "mount -t tmpfs none /proc || exit 99; \"$0\" verify; echo \"exit $?\"; \
             \"$0\" weak-modules --add-kernel --dry-run; echo \"exit $?\"",
        )
        .arg(env!("CARGO_BIN_EXE_kabi")));
    let all = text(&o);
    assert!(o.status.success(), "{all}");
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["exit 2", "exit 1"],
        "{all}"
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("kabi verify: which kernel? /proc/sys/kernel/osrelease"),
        "{all}"
    );
    assert!(
        err.contains("weak-modules: which kernel? give KVER") && err.contains("/proc mounted?"),
        "{all}"
    );
    assert!(
        !err.contains("kernel :"),
        "an empty release is never shown: {all}"
    );
}

/// Each `--json` option says what it prints.
#[test]
fn every_json_option_has_a_help_text() {
    fn walk(cmd: &clap::Command, path: &str, found: &mut usize) {
        for a in cmd.get_arguments() {
            if a.get_long() == Some("json") {
                *found += 1;
                assert!(
                    a.get_help().is_some_and(|h| h.to_string().contains("JSON")),
                    "kabi {path} --json has no help text"
                );
            }
        }
        for s in cmd.get_subcommands() {
            walk(s, &format!("{path} {}", s.get_name()), found);
        }
    }
    let mut found = 0;
    walk(&kabi::cli::Cli::command(), "", &mut found);
    // info, check, diff-abi, weak status, verify
    assert_eq!(found, 5);
}

/// The root is `--root DIR` in every kabi subcommand that has one (shown in the help; the old
/// spellings `-b DIR` and `--basedir DIR` parse to the same root and are hidden), while the
/// interfaces kabi reimplements keep theirs: RHEL's `weak-modules --basedir`, and under kmod's
/// names `depmod -b/--basedir` (with `-r/--root` the ignored deprecated flag) and
/// `modinfo -b/--basedir`.
#[test]
fn the_root_is_spelled_root_in_every_subcommand() {
    fn walk(cmd: &clap::Command, path: &str, roots: &mut Vec<String>) {
        for a in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
            let long = a.get_long().unwrap_or_default();
            if ["root", "basedir", "dirname"].contains(&long) {
                if path == " weak-modules" {
                    assert_eq!(long, "basedir", "RHEL's weak-modules keeps --basedir");
                    continue;
                }
                assert_eq!(long, "root", "kabi{path} --{long}");
                assert_eq!(a.get_short(), None, "kabi{path}: -b is a hidden alias");
                assert!(a.get_num_args().is_none_or(|n| n.takes_values()));
                let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
                let aliases = a.get_short_and_visible_aliases();
                assert!(aliases.is_none(), "kabi{path}: {aliases:?}");
                roots.push(path.trim().to_string());
                // a subcommand that had another spelling says it is still accepted (load, unload
                // and weak-modules2 had none)
                if ![" load", " unload", " weak-modules2"].contains(&path) {
                    assert!(help.contains("old spelling"), "kabi{path}: {help}");
                }
            }
        }
        for s in cmd.get_subcommands() {
            walk(s, &format!("{path} {}", s.get_name()), roots);
        }
    }
    let mut roots = Vec::new();
    walk(&kabi::cli::Cli::command(), "", &mut roots);
    roots.sort();
    assert_eq!(
        roots,
        [
            "check",
            "depmod",
            "diff-abi",
            "info",
            "load",
            "modversions",
            "sign",
            "unload",
            "verify",
            "weak status",
            "weak-modules2"
        ]
    );

    // the old spellings still parse, to the same root
    let root_of = |args: &[&str]| -> String {
        let m = kabi::cli::Cli::command()
            .try_get_matches_from(args)
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        let mut m = &m;
        while let Some((_, sub)) = m.subcommand() {
            m = sub;
        }
        m.get_raw("root")
            .and_then(|mut v| v.next())
            .map(|v| v.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let cases: &[&[&str]] = &[
        &["kabi", "check", "-k", "K", "m.ko"],
        &["kabi", "verify"],
        &["kabi", "diff-abi", "A", "B"],
        &["kabi", "info", "m"],
        &["kabi", "modversions", "m"],
        &["kabi", "depmod"],
        &["kabi", "sign", "--verify", "m.ko"],
        &["kabi", "weak", "status"],
    ];
    for case in cases {
        let (head, tail) = case.split_at(2);
        for spelling in ["--root", "-b", "--basedir"] {
            if spelling == "--basedir" && ["check", "verify", "diff-abi", "sign"].contains(&head[1])
            {
                continue; // these never had --basedir
            }
            if spelling == "-b" && head[1] == "weak" {
                continue; // nor -b
            }
            let mut args = head.to_vec();
            if head[1] == "weak" {
                args.push("status");
                args.extend([spelling, "/srv/r"]);
            } else {
                args.extend([spelling, "/srv/r"]);
                args.extend(tail);
            }
            assert_eq!(root_of(&args), "/srv/r", "{args:?}");
        }
    }

    // kmod's names keep kmod's spellings
    let dir = tempfile::tempdir().unwrap();
    for name in ["depmod", "modinfo", "modprobe"] {
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_kabi"), dir.path().join(name)).unwrap();
    }
    let help = |name: &str| {
        let o = run(std::process::Command::new(dir.path().join(name)).arg("--help"));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert!(
        help("depmod").contains("-b, --basedir <DIR>"),
        "{}",
        help("depmod")
    );
    assert!(
        help("modinfo").contains("-b, --basedir=DIR"),
        "{}",
        help("modinfo")
    );
    assert!(
        help("modprobe").contains("-d, --dirname=DIR"),
        "{}",
        help("modprobe")
    );
    let o = run(std::process::Command::new(dir.path().join("depmod")).args([
        "--root",
        "-b",
        "/nonexistent/kabi-root",
        "1.2.3",
    ]));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("Ignored deprecated option"), "{}", text(&o));
    assert!(err.contains("/nonexistent/kabi-root"), "{}", text(&o));
}

/// A wrong command line exits 2 as `kabi COMMAND` (the exit table, `kabi::cli::exit`) and 1
/// under kmod's names and as the weak-modules scripts, as Debian's kmod 30 does; `--help`
/// exits 0 everywhere.
#[test]
fn a_wrong_command_line_exits_as_the_table_says() {
    use kabi::cli::exit;
    let dir = tempfile::tempdir().unwrap();
    let names = [
        "modprobe",
        "insmod",
        "rmmod",
        "modinfo",
        "depmod",
        "weak-modules",
        "weak-modules2",
    ];
    for name in names {
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_kabi"), dir.path().join(name)).unwrap();
        let o = run(std::process::Command::new(dir.path().join(name)).arg("--bogus-option"));
        assert_eq!(
            o.status.code(),
            Some(exit::KMOD_USAGE),
            "{name}: {}",
            text(&o)
        );
        if ["modprobe", "insmod", "rmmod", "modinfo", "depmod"].contains(&name)
            && common::require_tool(name)
        {
            let k = run(std::process::Command::new(name).arg("--bogus-option"));
            assert_eq!(
                k.status.code(),
                o.status.code(),
                "kmod's {name}: {}",
                text(&k)
            );
        }
    }
    for sub in [
        "check",
        "verify",
        "diff-abi",
        "info",
        "modversions",
        "depmod",
        "load",
        "unload",
        "weak-modules",
        "weak-modules2",
        "sign",
    ] {
        let o = run(kabi().args([sub, "--bogus-option"]));
        assert_eq!(
            o.status.code(),
            Some(exit::USAGE),
            "kabi {sub}: {}",
            text(&o)
        );
        let o = run(kabi().args([sub, "--help"]));
        assert_eq!(
            o.status.code(),
            Some(exit::OK),
            "kabi {sub} --help: {}",
            text(&o)
        );
    }
    assert_eq!((exit::USAGE, exit::KMOD_USAGE), (2, 1));
}
