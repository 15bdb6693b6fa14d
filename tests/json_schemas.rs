//! Every `--json` output is described by a schema in `docs/schemas/`, and real output
//! validates against it (a small validator of the JSON Schema keywords used there: type,
//! enum, properties, required, additionalProperties: false, items).

mod common;

use serde_json::Value;

fn type_ok(t: &str, v: &Value) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        _ => false,
    }
}

fn validate(schema: &Value, v: &Value, at: &str, errs: &mut Vec<String>) {
    if let Some(t) = schema.get("type") {
        let ok = match t {
            Value::String(t) => type_ok(t, v),
            Value::Array(ts) => ts.iter().any(|t| type_ok(t.as_str().unwrap_or(""), v)),
            _ => true,
        };
        if !ok {
            errs.push(format!("{at}: expected type {t}, found {v}"));
            return;
        }
    }
    if let Some(Value::Array(allowed)) = schema.get("enum")
        && !allowed.contains(v)
    {
        errs.push(format!("{at}: {v} is not one of {allowed:?}"));
    }
    if let (Some(o), Some(props)) = (
        v.as_object(),
        schema.get("properties").and_then(Value::as_object),
    ) {
        for r in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let r = r.as_str().unwrap();
            if !o.contains_key(r) {
                errs.push(format!("{at}: missing required {r}"));
            }
        }
        for (k, x) in o {
            match props.get(k) {
                Some(s) => validate(s, x, &format!("{at}.{k}"), errs),
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    errs.push(format!("{at}: property {k} is not in the schema"))
                }
                None => {}
            }
        }
    }
    if let (Some(a), Some(items)) = (v.as_array(), schema.get("items")) {
        for (i, x) in a.iter().enumerate() {
            validate(items, x, &format!("{at}[{i}]"), errs);
        }
    }
}

fn check(schema: &str, out: &[u8]) {
    let s: Value = serde_json::from_str(
        &std::fs::read_to_string(common::repo().join("docs/schemas").join(schema)).unwrap(),
    )
    .unwrap();
    let v: Value = serde_json::from_slice(out).unwrap_or_else(|e| panic!("{schema}: {e}"));
    let mut errs = Vec::new();
    validate(&s, &v, "$", &mut errs);
    assert!(errs.is_empty(), "{schema}:\n{}", errs.join("\n"));
}

#[test]
fn the_validator_rejects_what_it_should() {
    let s: Value = serde_json::json!({"type": "object", "required": ["a"], "additionalProperties": false,
        "properties": {"a": {"enum": ["x"]}}});
    for bad in [
        serde_json::json!({}),
        serde_json::json!({"a": "y"}),
        serde_json::json!({"a": "x", "b": 1}),
        serde_json::json!([]),
    ] {
        let mut e = Vec::new();
        validate(&s, &bad, "$", &mut e);
        assert!(!e.is_empty(), "{bad} accepted");
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
    for abi in ["55", "56"] {
        if common::weak::vendor_modules(abi).is_none() {
            return;
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let Some(r) = common::weak::weak_root(tmp.path(), &["55", "56"], &["55"]) else {
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
            .arg(r.kver("56")),
    );
    assert!(o.status.success());
    let o = common::run(
        common::kabi()
            .args(["weak", "status", "--json", "--root"])
            .arg(&r.root),
    );
    check("weak-status.schema.json", &o.stdout);
    let o = common::run(
        common::kabi()
            .args(["verify", "--json", "-k", r.kver("56"), "--root"])
            .arg(&r.root),
    );
    check("verify.schema.json", &o.stdout);
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
