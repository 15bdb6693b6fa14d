//! `kabi diff-abi`: the change between two real kernels' ABIs, counted independently from
//! their Module.symvers files, and the modules it breaks equal `kabi check`'s verdicts.

mod common;
use common::*;
use std::collections::BTreeMap;

fn symvers_map(text: &str) -> BTreeMap<String, (String, String, String)> {
    text.lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (
                f[1].to_string(),
                (
                    f[0].to_string(),
                    f[3].to_string(),
                    f.get(4).unwrap_or(&"").to_string(),
                ),
            )
        })
        .collect()
}

/// The names of the modules with problems in a `--json` list of verdicts.
fn failing(verdicts: &serde_json::Value) -> Vec<String> {
    verdicts
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| !m["problems"].as_array().unwrap().is_empty())
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect()
}

/// Two consecutive kernels with one `module_layout` and some other CRCs (`common::kernels`).
#[test]
fn diff_of_a_partial_pair() {
    let Some(k) = kernels::cloud() else { return };
    let Some((x, y)) = k.partial() else { return };
    let (Some(a), Some(b)) = (k.fetch(x), k.fetch(y)) else {
        return;
    };
    let (adir, akver) = module_dir(&a);
    let (_, bkver) = module_dir(&b);
    let sa = a.join(format!("usr/src/linux-headers-{akver}/Module.symvers"));
    let sb = b.join(format!("usr/src/linux-headers-{bkver}/Module.symvers"));
    let (ma, mb) = (
        symvers_map(&std::fs::read_to_string(&sa).unwrap()),
        symvers_map(&std::fs::read_to_string(&sb).unwrap()),
    );
    let added = mb.keys().filter(|k| !ma.contains_key(*k)).count();
    let removed = ma.keys().filter(|k| !mb.contains_key(*k)).count();
    let crc = ma
        .iter()
        .filter(|(k, v)| mb.get(*k).is_some_and(|w| w.0 != v.0))
        .count();
    let gpl = ma
        .iter()
        .filter(|(k, v)| mb.get(*k).is_some_and(|w| w.1 != v.1))
        .count();
    let ns = ma
        .iter()
        .filter(|(k, v)| mb.get(*k).is_some_and(|w| w.2 != v.2))
        .count();
    assert!(crc > 0, "{x} -> {y}: no CRC changed");

    let mods = adir.join("kernel");
    let out = run(kabi()
        .args(["diff-abi", "--json"])
        .arg(&sa)
        .arg(&sb)
        .arg("-m")
        .arg(&mods));
    assert_eq!(
        out.status.code(),
        Some(1),
        "some modules break: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let d = &v["diff"];
    let len = |k: &str| d[k].as_array().unwrap().len();
    assert_eq!(
        (
            len("added"),
            len("removed"),
            len("crc_changed"),
            len("gpl_changed"),
            len("namespace_changed")
        ),
        (added, removed, crc, gpl, ns)
    );
    let text = run(kabi().arg("diff-abi").arg(&sa).arg(&sb));
    let first = String::from_utf8_lossy(&text.stdout)
        .lines()
        .next()
        .unwrap()
        .to_string();
    assert_eq!(
        first,
        format!(
            "{added} symbols added, {removed} removed, {crc} CRCs changed, {gpl} GPL-only changed, {ns} namespaces changed"
        )
    );

    // the modules that break are exactly those `kabi check` finds incompatible
    let broken = failing(&v["modules"]);
    let check = run(kabi()
        .args(["check", "--json", "--symvers"])
        .arg(&sb)
        .arg(&mods));
    let c: serde_json::Value = serde_json::from_slice(&check.stdout).unwrap();
    let incompatible = failing(&c["verdicts"]);
    assert!(!broken.is_empty());
    assert_eq!(broken, incompatible);
}

#[test]
fn identical_kernels_have_an_empty_diff() {
    let Some(k) = kernels::cloud() else { return };
    let (Some(a), Some(b)) = (k.fetch(k.old), k.fetch(k.new)) else {
        return;
    };
    let (_, ak) = module_dir(&a);
    let (_, bk) = module_dir(&b);
    let out = run(kabi()
        .arg("diff-abi")
        .arg(a.join(format!("usr/src/linux-headers-{ak}/Module.symvers")))
        .arg(b.join(format!("usr/src/linux-headers-{bk}/Module.symvers"))));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "0 symbols added, 0 removed, 0 CRCs changed, 0 GPL-only changed, 0 namespaces changed\n"
    );
}
