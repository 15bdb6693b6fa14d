//! What kabi finds where depmod is blind: a real module of the `old` kernel that loads in the
//! `new` one (byte-identical symvers; `common::kernels`) is altered in one `.modinfo` record at a time, each a change the
//! kernel's loader refuses and `depmod -e -E` does not notice.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const MODULE: &str = "kernel/crypto/ofb.ko"; // imports CRYPTO_INTERNAL, GPL, vmlinux-only

struct Setup {
    new_root: PathBuf,
    new_kver: String,
    old_kver: String,
    original: Vec<u8>,
}

fn setup() -> Option<Setup> {
    let k = kernels::cloud()?;
    let old = k.fetch(k.old)?;
    let new_root = k.fetch(k.new)?;
    let (old_dir, old_kver) = module_dir(&old);
    let (_, new_kver) = module_dir(&new_root);
    let original = std::fs::read(old_dir.join(MODULE)).unwrap();
    Some(Setup {
        new_root,
        new_kver,
        old_kver,
        original,
    })
}

/// Replace `from` by `to` (same length) once in `data`.
fn patch(data: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let at = data
        .windows(from.len())
        .position(|w| w == from)
        .unwrap_or_else(|| panic!("{} not found in the module", String::from_utf8_lossy(from)));
    let mut d = data.to_vec();
    d[at..at + to.len()].copy_from_slice(to);
    d
}

/// `kabi check --json` against the installed `new` kernel: (exit code, problems).
fn kabi_check(s: &Setup, file: &Path) -> (i32, Vec<serde_json::Value>) {
    let out = run(kabi()
        .args(["check", "--json", "--root"])
        .arg(&s.new_root)
        .args(["-k", &s.new_kver])
        .arg(file));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (
        out.status.code().unwrap(),
        v["verdicts"][0]["problems"].as_array().unwrap().clone(),
    )
}

/// depmod's warnings about `file` when checked against the `new` kernel's symvers.
fn depmod_warnings(s: &Setup, file: &Path) -> Vec<String> {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("lib/modules/6.1.0-0-x");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(file, dir.join("m.ko")).unwrap();
    let symvers = s.new_root.join(format!(
        "usr/src/linux-headers-{}/Module.symvers",
        s.new_kver
    ));
    let out = run(Command::new("depmod")
        .arg("-n")
        .arg("-b")
        .arg(tmp.path())
        .arg("-e")
        .arg("-E")
        .arg(symvers)
        .arg("6.1.0-0-x"));
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains("m.ko"))
        .map(str::to_string)
        .collect()
}

fn write(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

#[test]
fn depmod_blind_spots() {
    if !require_tool("depmod") {
        return;
    }
    let Some(s) = setup() else { return };
    let tmp = tempfile::tempdir().unwrap();

    // the original loads, and neither tool complains
    let orig = write(tmp.path(), "ofb.ko", &s.original);
    assert_eq!(kabi_check(&s, &orig), (0, vec![]));
    assert!(depmod_warnings(&s, &orig).is_empty());

    // 1. namespace import removed: the kernel says "does not import it", -EINVAL
    let no_ns = write(
        tmp.path(),
        "no_ns.ko",
        &patch(
            &s.original,
            b"import_ns=CRYPTO_INTERNAL",
            b"import_nX=CRYPTO_INTERNAL",
        ),
    );
    let (code, problems) = kabi_check(&s, &no_ns);
    assert_eq!(code, 1);
    assert!(!problems.is_empty());
    assert!(
        problems
            .iter()
            .all(|p| p["kind"] == "namespace-not-imported" && p["namespace"] == "CRYPTO_INTERNAL"),
        "{problems:?}"
    );
    assert!(
        depmod_warnings(&s, &no_ns).is_empty(),
        "depmod does not check namespaces"
    );

    // 2. a licence that is not GPL-compatible: GPL-only symbols become invisible, -ENOENT
    let bsd = write(
        tmp.path(),
        "bsd.ko",
        &patch(&s.original, b"license=GPL\0", b"license=BSD\0"),
    );
    let (code, problems) = kabi_check(&s, &bsd);
    assert_eq!(code, 1);
    let gpl: Vec<_> = problems
        .iter()
        .filter(|p| p["kind"] == "gpl-only")
        .collect();
    assert!(!gpl.is_empty(), "{problems:?}");
    let symvers = std::fs::read_to_string(s.new_root.join(format!(
        "usr/src/linux-headers-{}/Module.symvers",
        s.new_kver
    )))
    .unwrap();
    for p in &gpl {
        let sym = p["symbol"].as_str().unwrap();
        assert!(
            symvers
                .lines()
                .any(|l| l.split('\t').nth(1) == Some(sym) && l.contains("EXPORT_SYMBOL_GPL")),
            "{sym} is GPL-only in Module.symvers"
        );
    }
    assert!(
        depmod_warnings(&s, &bsd).is_empty(),
        "depmod does not check licences"
    );

    // 3. a vermagic of another configuration: "version magic ... should be ...", -ENOEXEC
    let magic = write(
        tmp.path(),
        "magic.ko",
        &patch(
            &s.original,
            b"mod_unload modversions",
            b"mod_unload modversionz",
        ),
    );
    let (code, problems) = kabi_check(&s, &magic);
    assert_eq!(code, 1);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0]["kind"], "vermagic");
    assert!(
        problems[0]["kernel"]
            .as_str()
            .unwrap()
            .starts_with(&s.new_kver)
    );
    assert!(
        depmod_warnings(&s, &magic).is_empty(),
        "depmod does not check vermagic"
    );

    // the text report speaks the kernel's words
    let out = run(kabi()
        .args(["check", "-v", "--root"])
        .arg(&s.new_root)
        .args(["-k", &s.new_kver])
        .arg(&magic)
        .arg(&no_ns));
    let text = String::from_utf8_lossy(&out.stdout);
    let words = format!(
        "ofb: version magic '{} SMP preempt mod_unload modversionz ' should be '{} SMP preempt mod_unload modversions '",
        s.old_kver, s.new_kver
    );
    assert!(text.contains(&words), "{text}");
    assert!(
        text.contains("from namespace CRYPTO_INTERNAL, but does not import it."),
        "{text}"
    );

    // 4. the refusals the kernel makes without a word, on a kernel without
    // CONFIG_MODULE_FORCE_LOAD (Debian's has it: its headers tree, copied without it): no
    // vermagic, no __versions. -ENOEXEC, in the words of the kernel's code, never a Rust name
    let headers = s
        .new_root
        .join(format!("usr/src/linux-headers-{}", s.new_kver));
    let tree = tmp.path().join("headers");
    for f in [
        "Module.symvers",
        "include/generated/utsrelease.h",
        "include/config/auto.conf",
    ] {
        std::fs::create_dir_all(tree.join(f).parent().unwrap()).unwrap();
        let text = std::fs::read_to_string(headers.join(f)).unwrap();
        let kept: String = text
            .lines()
            .filter(|l| !l.starts_with("CONFIG_MODULE_FORCE_LOAD="))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(tree.join(f), kept).unwrap();
    }
    let no_magic = write(
        tmp.path(),
        "nomagic.ko",
        &patch(&s.original, b"vermagic=", b"vermagiq="),
    );
    // the section's name ("____versions" in .strtab is a symbol's)
    let no_versions = write(
        tmp.path(),
        "noversions.ko",
        &patch(&s.original, b"\0__versions\0", b"\0__versionz\0"),
    );
    for (f, kind, words) in [
        (&no_magic, "no-vermagic", "ofb: bad vermagic"),
        (
            &no_versions,
            "no-versions",
            "ofb: module_layout: no symbol versions",
        ),
    ] {
        let check = |json: bool| {
            run(kabi()
                .args(["check", "-v", "--symvers"])
                .arg(tree.join("Module.symvers"))
                .args(json.then_some("--json"))
                .arg(f))
        };
        let out = check(true);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["kernel"]["config"]["force_load"], false);
        let p = &v["verdicts"][0]["problems"][0];
        assert_eq!(p["kind"], kind, "{v}");
        // one reason, however many symbols find it out
        let same = v["verdicts"][0]["problems"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["kind"] == kind)
            .count();
        assert_eq!(same, 1, "{v}");
        assert_eq!(p["errno"], "ENOEXEC");
        let message = p["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("ENOEXEC: {words}")),
            "{message}"
        );
        assert!(message.contains("the kernel logs nothing"), "{message}");
        let out = check(false);
        let shown = String::from_utf8_lossy(&out.stdout);
        assert!(shown.contains(&format!("ENOEXEC {words}")), "{shown}");
        assert!(
            !shown.contains("NoVermagic") && !shown.contains("NoVersions"),
            "{shown}"
        );
    }
}

#[test]
fn module_layout_is_the_first_reason_and_fatal() {
    let Some(k) = kernels::cloud() else { return };
    let Some(old) = k.fetch(k.other) else { return };
    let Some(new) = k.fetch(k.new) else { return };
    let (old_dir, _) = module_dir(&old);
    let (_, kver) = module_dir(&new);
    let out = run(kabi()
        .args(["check", "--json", "--root"])
        .arg(&new)
        .args(["-k", &kver])
        .arg(old_dir.join("kernel/fs/udf")));
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for verdict in v["verdicts"].as_array().unwrap() {
        assert_eq!(verdict["problems"][0]["kind"], "module-layout", "{verdict}");
    }
}

#[test]
fn usage_and_input_errors_exit_2() {
    let out = run(kabi().args(["check", "--symvers", "/nonexistent/Module.symvers", "x.ko"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/Module.symvers"));
    let out = run(kabi().args(["check", "--root", "/nonexistent", "-k", "1.2.3", "x.ko"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent: No such file"));
    let empty = tempfile::tempdir().unwrap();
    let out = run(kabi()
        .args(["check", "--root"])
        .arg(empty.path())
        .args(["-k", "1.2.3", "x.ko"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("kernel 1.2.3"));
    let out = run(kabi().args(["check", "--bogus"]));
    assert_eq!(out.status.code(), Some(2));
}

/// A module of the kernel stripped of its `__versions` loads on a force-load kernel (Debian's have
/// CONFIG_MODULE_FORCE_LOAD), tainting it F once: `try_to_force_load()` prints
/// `ofb: module_layout: kernel tainted.` and stays silent for every symbol after it.
#[test]
fn a_module_without_versions_gets_one_taint_f_note() {
    if !require_tool("objcopy") {
        return;
    }
    let Some(s) = setup() else { return };
    let tmp = tempfile::tempdir().unwrap();
    // the new kernel's own build: without __versions the whole vermagic must match (same_magic)
    let (new_dir, _) = module_dir(&s.new_root);
    let with = new_dir.join(MODULE);
    let without = tmp.path().join("ofb.ko");
    let out = run(Command::new("objcopy")
        .args(["--remove-section", "__versions"])
        .arg(&with)
        .arg(&without));
    assert!(out.status.success(), "{out:?}");
    let json = run(kabi()
        .args(["check", "--json", "--root"])
        .arg(&s.new_root)
        .args(["-k", &s.new_kver])
        .arg(&without));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&json.stderr)));
    let verdict = &v["verdicts"][0];
    assert_eq!(verdict["problems"], serde_json::json!([]), "{verdict}");
    let f: Vec<&serde_json::Value> = verdict["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "taint" && n["flag"] == "F")
        .collect();
    assert_eq!(
        f,
        [
            &serde_json::json!({"kind": "taint", "flag": "F", "message": "ofb: module_layout: kernel tainted."})
        ],
        "{verdict}"
    );
    // the module does import several symbols, each unversioned now
    let m = kabi::module::Module::parse_image(&std::fs::read(&without).unwrap()).unwrap();
    assert!(m.undefined.len() > 3, "{:?}", m.undefined);
}
