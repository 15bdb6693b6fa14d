//! `kabi load --show-depends` against kmod's `modprobe --show-depends` on the real cloud tree:
//! the same modules in the same order, with modprobe.d options, soft dependencies, aliases
//! and built-ins, for a sample of ~250 names and aliases.

mod common;

use common::*;
use std::process::Command;

fn show(cmd: &mut Command) -> (Option<i32>, String) {
    let o = run(cmd);
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

#[test]
fn show_depends_equals_modprobe() {
    if !require_tool("modprobe") {
        return;
    }
    let Some((tmp, dir, kver)) = linked_cloud_tree() else {
        return;
    };
    let root = tmp.path();
    let conf = root.join("etc/modprobe.d");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(
        conf.join("test.conf"),
        "options dummy numdummies=3\noptions udf uid=1000 \\\n gid=100\n\
         softdep xfs pre: crc32c_generic post: dummy\nalias my-fs udf\n",
    )
    .unwrap();
    let out = run(kabi()
        .args(["depmod", "--root"])
        .arg(root)
        .arg("-C")
        .arg(root.join("etc/depmod.d-none"))
        .arg(&kver));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // names: every 8th module, plus aliases, built-ins, the configured ones and a missing one
    let dep = std::fs::read_to_string(dir.join("modules.dep")).unwrap();
    let mut queries: Vec<String> = dep
        .lines()
        .step_by(8)
        .filter_map(|l| kabi::tree::lookup::module_name_of(l.split(':').next()?))
        .collect();
    let alias = std::fs::read_to_string(dir.join("modules.alias")).unwrap();
    queries.extend(
        alias
            .lines()
            .skip(1)
            .step_by(97)
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter(|a| !a.contains(['*', '?', '[']))
            .map(str::to_string),
    );
    for q in [
        "dummy",
        "udf",
        "xfs",
        "my-fs",
        "fs-udf",
        "ext4",
        "crc32c",
        "no-such-module",
    ] {
        queries.push(q.to_string());
    }
    assert!(queries.len() > 150, "{}", queries.len());

    let mut differences = Vec::new();
    for q in &queries {
        let kmod = show(
            Command::new("modprobe")
                .arg("-d")
                .arg(root)
                .arg("-S")
                .arg(&kver)
                .arg("-C")
                .arg(&conf)
                .arg("--show-depends")
                .arg(q),
        );
        let ours = show(
            kabi()
                .args(["load", "--root"])
                .arg(root)
                .arg("-S")
                .arg(&kver)
                .arg("--show-depends")
                .arg(q),
        );
        if kmod != ours {
            differences.push(format!("{q}:\n  kmod {kmod:?}\n  kabi {ours:?}"));
        }
    }
    assert!(
        differences.is_empty(),
        "{} of {} differ:\n{}",
        differences.len(),
        queries.len(),
        differences.join("\n")
    );
}
