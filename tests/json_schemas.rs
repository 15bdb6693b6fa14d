//! Every `--json` output is described by a schema in `docs/schemas/` (JSON Schema 2020-12,
//! closed with `additionalProperties: false` wherever the shape is closed), and real output
//! validates against it, with the `boon` validator (a maintained JSON Schema implementation
//! that passes the official test suite).

mod common;

use serde_json::Value;

fn schema_path(schema: &str) -> String {
    common::repo()
        .join("docs/schemas")
        .join(schema)
        .to_string_lossy()
        .into_owned()
}

/// The errors of validating `v` against `schema` (a file of docs/schemas, with an optional
/// `#/$defs/...` fragment), as text; empty when valid.
fn errors(schema: &str, v: &Value) -> String {
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    let i = compiler
        .compile(&schema_path(schema), &mut schemas)
        .unwrap_or_else(|e| panic!("{schema}: {e:#}"));
    match schemas.validate(v, i) {
        Ok(()) => String::new(),
        Err(e) => format!("{e:#}"),
    }
}

/// `out` is one JSON document, valid against `schema`; returns it.
fn check(schema: &str, out: &[u8]) -> Value {
    let v: Value = serde_json::from_slice(out).unwrap_or_else(|e| {
        panic!("{schema}: {e}: {}", String::from_utf8_lossy(out));
    });
    let e = errors(schema, &v);
    assert!(e.is_empty(), "{schema}:\n{e}");
    assert_eq!(
        v["format"], 1,
        "{schema}: every document carries the format"
    );
    v
}

/// The same document with a field nobody described added to an object at `pointer`: the
/// schema must refuse it.
fn refuses_an_undescribed_field(schema: &str, v: &Value, pointer: &str) {
    let mut bad = v.clone();
    let o = bad
        .pointer_mut(pointer)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("{schema}: no object at {pointer}"));
    o.insert("undescribed_field".into(), Value::Bool(true));
    assert!(
        !errors(schema, &bad).is_empty(),
        "{schema}: an undescribed field at {pointer} was accepted"
    );
}

/// Every object a schema describes with `properties` is closed (`additionalProperties:
/// false`), so that a field kabi adds without describing it fails the tests above.
#[test]
fn every_schema_is_closed_and_compiles() {
    fn walk(s: &Value, at: &str, open: &mut Vec<String>) {
        match s {
            Value::Object(o) => {
                if o.contains_key("properties")
                    && o.get("additionalProperties") != Some(&Value::Bool(false))
                {
                    open.push(at.to_string());
                }
                for (k, x) in o {
                    walk(x, &format!("{at}/{k}"), open);
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    walk(x, &format!("{at}/{i}"), open);
                }
            }
            _ => {}
        }
    }
    let dir = common::repo().join("docs/schemas");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        let s: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        let mut open = Vec::new();
        walk(&s, "#", &mut open);
        assert!(open.is_empty(), "{name}: open objects at {open:?}");
        assert_eq!(s["properties"]["format"]["const"], 1, "{name}");
        // compiles (every $ref resolves)
        errors(&name, &Value::Null);
        n += 1;
    }
    assert!(n >= 5);
}

/// The validator refuses what it should: a missing field, a value outside an enum, an
/// undescribed field, a wrong type, a problem kind that does not exist.
#[test]
fn the_schemas_refuse_what_they_should() {
    let verdict = serde_json::json!({
        "name": "m", "path": null, "loads": false, "errno": "EINVAL",
        "problems": [{"kind": "crc-mismatch", "errno": "EINVAL", "message": "EINVAL: m: ...",
            "symbol": "s", "module_crc": 1, "kernel_crc": 2, "provider": "vmlinux", "weak": false}],
        "notes": [{"kind": "taint", "flag": "O", "message": "m: loading out-of-tree module taints kernel."}],
        "unverified": []
    });
    let at = "check.schema.json#/$defs/verdict";
    assert_eq!(errors(at, &verdict), "");
    let mut bad = Vec::new();
    for (ptr, val) in [
        ("/loads", Value::Null),
        ("/errno", "EWHATEVER".into()),
        ("/problems/0/kind", "crc-mismatched".into()),
        ("/problems/0/module_crc", "1".into()),
        ("/notes/0/flag", "OO".into()),
    ] {
        let mut v = verdict.clone();
        *v.pointer_mut(ptr).unwrap() = val;
        bad.push(v);
    }
    let mut v = verdict.clone();
    v.as_object_mut().unwrap().remove("loads");
    bad.push(v);
    let mut v = verdict.clone();
    v["problems"][0].as_object_mut().unwrap().remove("symbol");
    bad.push(v);
    let mut v = verdict.clone();
    v["problems"][0]["extra"] = 1.into();
    bad.push(v);
    for v in bad {
        assert!(!errors(at, &v).is_empty(), "{v} accepted");
    }
}

#[test]
fn info_check_and_diff_abi_outputs_validate() {
    let td = common::testdata();
    let m = td.join("lib/modules/6.1.0-56-amd64/kernel/net/netfilter/nf_conntrack_ftp.ko");
    let o = common::run(common::kabi().args(["info", "--json"]).arg(&m));
    check("info.schema.json", &o.stdout);
    let s47 = td.join("symvers/6.1.0-47-cloud-amd64.symvers");
    let s56 = td.join("symvers/6.1.0-56-amd64.symvers");
    let o = common::run(
        common::kabi()
            .args(["check", "--json", "--symvers"])
            .arg(&s47)
            .arg(&m),
    );
    check("check.schema.json", &o.stdout);
    let o = common::run(
        common::kabi()
            .args(["diff-abi", "--json"])
            .arg(&s47)
            .arg(&s56),
    );
    check("diff-abi.schema.json", &o.stdout);
}

#[test]
fn weak_status_and_verify_outputs_validate() {
    if !common::require_tool("gcc-12") {
        return;
    }
    // vendor modules of `old` offered to `new` (identical symvers: common::kernels)
    let Some(k) = common::kernels::cloud() else {
        return;
    };
    for abi in [k.old, k.new] {
        if common::weak::vendor_modules(abi).is_none() {
            return;
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let Some(r) = common::weak::weak_root(tmp.path(), &[k.old, k.new], &[k.old]) else {
        return;
    };
    let o = common::run(
        common::kabi()
            .args([
                "weak-modules",
                "--no-initramfs",
                "--add-kernel",
                "--basedir",
            ])
            .arg(&r.root)
            .arg(r.kver(k.new)),
    );
    assert!(o.status.success());
    let o = common::run(
        common::kabi()
            .args(["weak", "status", "--json", "--root"])
            .arg(&r.root),
    );
    let v = check("weak-status.schema.json", &o.stdout);
    refuses_an_undescribed_field("weak-status.schema.json", &v, "/kernels/0");
    refuses_an_undescribed_field("weak-status.schema.json", &v, "");
    let o = common::run(
        common::kabi()
            .args(["verify", "--json", "-k", r.kver(k.new), "--root"])
            .arg(&r.root),
    );
    let v = check("verify.schema.json", &o.stdout);
    let f = v["findings"].as_array().unwrap();
    // an incompatible finding has its first reason's errno, no other finding has one
    assert!(
        f.iter()
            .all(|x| (x["state"] == "incompatible") != x["errno"].is_null())
    );
    refuses_an_undescribed_field("verify.schema.json", &v, "/findings/0");
    refuses_an_undescribed_field("verify.schema.json", &v, "");
}

/// `check --json` with everything about signatures and support: keys listed, a module signed
/// by a trusted test key, an unsigned one under enforcement, stablelist findings.
#[test]
fn check_with_signatures_and_stablelist_validates() {
    let td = common::testdata();
    let tmp = tempfile::tempdir().unwrap();
    let m = td.join("lib/modules/6.1.0-56-amd64/kernel/net/netfilter/nf_conntrack_ftp.ko");
    let signed = tmp.path().join("signed.ko");
    let o = common::run(
        common::kabi()
            .args(["sign", "--key"])
            .arg(td.join("sig/rsa2048.key"))
            .arg("--cert")
            .arg(td.join("sig/rsa2048.pem"))
            .arg("-o")
            .arg(&signed)
            .arg(&m),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let list = tmp.path().join("kabi_stablelist_x86_64");
    std::fs::write(&list, "[rhel9_x86_64_stablelist]\n\tprintk\n").unwrap();
    let o = common::run(
        common::kabi()
            .args([
                "check",
                "--json",
                "--list-keys",
                "--sig-enforce",
                "--symvers",
            ])
            .arg(td.join("symvers/6.1.0-56-amd64.symvers"))
            .arg("--trusted-cert")
            .arg(td.join("sig/rsa2048.pem"))
            .arg("--stablelist")
            .arg(&list)
            .arg(&signed)
            .arg(td.join("lib/modules/6.1.0-56-amd64/kernel/lib/crc-itu-t.ko")),
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["verdicts"][0]["signature"]["result"], "verified", "{v}");
    assert_eq!(v["verdicts"][1]["signature"]["result"], "soft", "{v}");
    assert_eq!(
        v["verdicts"][1]["problems"][0]["kind"], "unavailable-key",
        "{v}"
    );
    assert!(
        !v["support"][0]["not_on_list"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    check("check.schema.json", &o.stdout);
}

/// Real Debian kernels (`common::kernels`): the modules of `other` (another `module_layout`)
/// and those of `new`, checked against the installed `new`; `info` on a directory of real modules; `diff-abi`
/// of the two kernels' symvers with those modules. Every document validates, the verdicts'
/// outcome fields agree with their problems, and an undescribed field anywhere we try is
/// refused.
#[test]
fn real_kernels_check_info_and_diff_abi_validate() {
    let Some(k) = common::kernels::cloud() else {
        return;
    };
    let Some(old) = k.fetch(k.other) else { return };
    let Some(new) = k.fetch(k.new) else { return };
    let (old_dir, old_kver) = common::module_dir(&old);
    let (new_dir, new_kver) = common::module_dir(&new);
    let o = common::run(
        common::kabi()
            .args(["check", "--json", "--root"])
            .arg(&new)
            .args(["-k", &new_kver])
            .arg(old_dir.join("kernel/fs/udf"))
            .arg(new_dir.join("kernel/fs/udf")),
    );
    assert_eq!(o.status.code(), Some(1));
    let v = check("check.schema.json", &o.stdout);
    let verdicts = v["verdicts"].as_array().unwrap();
    assert!(verdicts.iter().any(|x| x["loads"] == true));
    assert!(verdicts.iter().any(|x| x["loads"] == false));
    for x in verdicts {
        let problems = x["problems"].as_array().unwrap();
        assert_eq!(x["loads"], problems.is_empty(), "{x}");
        match problems.first() {
            None => assert!(x["errno"].is_null()),
            Some(p) => {
                assert_eq!(x["errno"], p["errno"]);
                // other's modules fail first on module_layout, -ENOEXEC, in the kernel's words
                assert_eq!(p["kind"], "module-layout");
                assert_eq!(p["errno"], "ENOEXEC");
                assert!(
                    p["message"]
                        .as_str()
                        .unwrap()
                        .ends_with("disagrees about version of symbol module_layout"),
                    "{p}"
                );
            }
        }
    }
    let bad = verdicts.iter().position(|x| x["loads"] == false).unwrap();
    for at in [
        String::new(),
        "/kernel".into(),
        "/kernel/config".into(),
        "/kernel/signatures/config".into(),
        format!("/verdicts/{bad}"),
        format!("/verdicts/{bad}/problems/0"),
        format!("/verdicts/{bad}/signature"),
    ] {
        refuses_an_undescribed_field("check.schema.json", &v, &at);
    }

    let o = common::run(
        common::kabi()
            .args(["info", "--json"])
            .arg(new_dir.join("kernel/fs/udf/udf.ko"))
            .arg(old_dir.join("kernel/fs/nls/nls_utf8.ko")),
    );
    let v = check("info.schema.json", &o.stdout);
    assert_eq!(v["modules"].as_array().unwrap().len(), 2);
    // a built-in module, by name
    let b = common::run(
        common::kabi()
            .args(["info", "--json", "-b"])
            .arg(&new)
            .args(["-k", &new_kver, "ext4"]),
    );
    let bv = check("info.schema.json", &b.stdout);
    assert_eq!(bv["modules"][0]["builtin"], "ext4");
    refuses_an_undescribed_field("info.schema.json", &bv, "/modules/0");
    assert_eq!(v["modules"][0]["module"]["versions"]["state"], "present");
    for at in [
        "/modules/0",
        "/modules/0/module",
        "/modules/0/module/versions",
        "/modules/0/module/ext_versions",
        "/modules/0/module/signature",
        "/modules/0/module/elf",
    ] {
        refuses_an_undescribed_field("info.schema.json", &v, at);
    }

    let symvers = |root: &std::path::Path, kver: &str| {
        root.join(format!("usr/src/linux-headers-{kver}/Module.symvers"))
    };
    let o = common::run(
        common::kabi()
            .args(["diff-abi", "--json"])
            .arg(symvers(&old, &old_kver))
            .arg(symvers(&new, &new_kver))
            .arg("-m")
            .arg(old_dir.join("kernel/fs/udf")),
    );
    assert_eq!(o.status.code(), Some(1), "udf breaks");
    let v = check("diff-abi.schema.json", &o.stdout);
    assert!(!v["diff"]["crc_changed"].as_array().unwrap().is_empty());
    assert_eq!(v["modules"][0]["loads"], false);
    for at in ["", "/diff", "/modules/0", "/modules/0/problems/0"] {
        refuses_an_undescribed_field("diff-abi.schema.json", &v, at);
    }
}
