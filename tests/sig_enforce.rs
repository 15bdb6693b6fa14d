//! The kernel's signature verdict (`module_sig_check()` and lockdown) applied beyond
//! `kabi check`: in `kabi verify`, in `kabi weak status` and in `kabi load`'s prediction, on
//! real Debian cloud-amd64 kernels (their images hold the build key that signed their own
//! modules) and the unsigned vendor modules built against their headers.
//!
//! The kernels are the `old` and `new` of `common::kernels` (identical symvers, each built
//! with its own key). The modules used, for kernel new:
//! * `kabi_vendor_a` / `kabi_vendor_b`: unsigned (-ENODATA: taint E, refused when enforced);
//! * new's own `dummy`: signed by new's build key (verified: loads even when enforced);
//! * old's `nlmon`: signed by old's build key, which new does not trust (-ENOKEY: taint E,
//!   refused when enforced);
//! * new's `veth` with one byte of its build-id changed: its signature no longer verifies with
//!   the trusted key (-EKEYREJECTED, refused enforced or not).

mod common;

use common::weak::weak_root;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `lib/modules/<kver>/<rel>` of an unpacked kernel.
fn in_tree(kernel: &Path, rel: &str) -> PathBuf {
    let (dir, _) = common::module_dir(kernel);
    dir.join(rel)
}

/// Copy `from` to `to` (a new file: never a hard link into the cache).
fn put(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(to);
    std::fs::write(to, std::fs::read(from).unwrap()).unwrap();
}

/// A copy of a signed module with one byte of its `.note.gnu.build-id` descriptor changed:
/// it still parses, its signature no longer matches its bytes.
fn tampered(from: &Path, to: &Path) {
    let mut b = std::fs::read(from).unwrap();
    assert_eq!(&b[0x40 + 12..0x40 + 16], b"GNU\0", "build-id note first");
    b[0x58] ^= 0x5a;
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(to);
    std::fs::write(to, b).unwrap();
}

/// Switch `CONFIG_MODULE_SIG_FORCE` of the root's `boot/config-<kver>` (a copy) on or off.
fn sig_force(root: &Path, kver: &str, on: bool) {
    let p = root.join(format!("boot/config-{kver}"));
    let t = std::fs::read_to_string(&p).unwrap();
    let (off_line, on_line) = (
        "# CONFIG_MODULE_SIG_FORCE is not set",
        "CONFIG_MODULE_SIG_FORCE=y",
    );
    let t = if on {
        assert!(t.contains(off_line) || t.contains(on_line));
        t.replace(off_line, on_line)
    } else {
        t.replace(on_line, off_line)
    };
    std::fs::remove_file(&p).unwrap();
    std::fs::write(&p, t).unwrap();
}

fn depmod(root: &Path, kver: &str) {
    let o = common::run(
        Command::new("depmod")
            .arg("-b")
            .arg(root)
            .arg("-C")
            .arg(root.join("etc/depmod.d"))
            .arg(kver),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// `kabi verify --json -k KVER -b ROOT`: (exit code, findings by module name).
fn verify(root: &Path, kver: &str) -> (Option<i32>, std::collections::BTreeMap<String, Value>) {
    let o = common::run(
        common::kabi()
            .args(["verify", "--json", "-k", kver, "--root"])
            .arg(root),
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    assert_eq!(v["errors"], serde_json::json!([]), "{v:#}");
    let by_name = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap().to_string(), f.clone()))
        .collect();
    (o.status.code(), by_name)
}

fn reasons(f: &Value) -> Vec<String> {
    f["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect()
}

/// The first reason of finding `name`, which must be incompatible.
fn refused(found: &std::collections::BTreeMap<String, Value>, name: &str) -> String {
    let f = &found[name];
    assert_eq!(f["state"], "incompatible", "{name}: {f:#}");
    reasons(f).join("\n")
}

fn ok(found: &std::collections::BTreeMap<String, Value>, name: &str) {
    let f = &found[name];
    assert_eq!(f["state"], "ok", "{name}: {f:#}");
}

/// `kabi verify` judges signatures as the kernel would: with the kernel's own keys (its
/// image's build key), its configuration (`CONFIG_MODULE_SIG_FORCE`) and, for the running
/// release, its command line (`module.sig_enforce=1`) and lockdown state.
#[test]
fn verify_applies_the_signature_verdict() {
    let Some(kr) = common::kernels::cloud() else {
        return;
    };
    if !common::require_tool("depmod") {
        return;
    }
    let Some(k_old) = kr.fetch(kr.old) else {
        return;
    };
    let Some(k_new) = kr.fetch(kr.new) else {
        return;
    };
    if common::weak::vendor_modules(kr.new).is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let Some(r) = weak_root(&tmp.path().join("root"), &[kr.new], &[kr.new]) else {
        return;
    };
    let kver = r.kver(kr.new).to_string();
    let root = r.root.clone();
    let updates = r.module_dir(kr.new).join("updates");
    put(
        &in_tree(&k_old, "kernel/drivers/net/nlmon.ko"),
        &updates.join("nlmon.ko"),
    );
    tampered(
        &in_tree(&k_new, "kernel/drivers/net/veth.ko"),
        &updates.join("veth.ko"),
    );
    let conf = root.join("etc/modules-load.d");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(conf.join("host.conf"), "dummy\n").unwrap();
    depmod(&root, &kver);

    // not enforced: unsigned and unknown-key modules taint (E) and load; the tampered one is
    // refused all the same
    let (code, found) = verify(&root, &kver);
    assert_eq!(code, Some(1), "{found:#?}");
    for name in ["kabi_vendor_a", "kabi_vendor_b", "nlmon"] {
        ok(&found, name);
        let notes = found[name]["notes"].to_string();
        assert!(
            notes.contains("taint E: ")
                && notes.contains(
                    "module verification failed: signature and/or required key missing - tainting kernel"
                ),
            "{name}: {notes}"
        );
    }
    assert!(
        found["kabi_vendor_a"]["signature"]
            .as_str()
            .unwrap()
            .starts_with("unsigned module"),
        "{:#}",
        found["kabi_vendor_a"]
    );
    assert!(
        found["nlmon"]["signature"]
            .as_str()
            .unwrap()
            .starts_with("module with unavailable key"),
        "{:#}",
        found["nlmon"]
    );
    ok(&found, "dummy");
    let sig = found["dummy"]["signature"].as_str().unwrap();
    assert!(
        sig.starts_with("verified with 'Build time autogenerated kernel key: ")
            && sig.ends_with("(.builtin_trusted_keys)"),
        "{sig}"
    );
    let why = refused(&found, "veth");
    assert!(
        why.starts_with("EKEYREJECTED: ")
            && why.contains("the signature does not verify with the trusted key 'Build time autogenerated kernel key: "),
        "{why}"
    );
    std::fs::remove_file(updates.join("veth.ko")).unwrap();
    depmod(&root, &kver);

    // CONFIG_MODULE_SIG_FORCE=y: only the module signed by the kernel's key loads
    sig_force(&root, &kver, true);
    let (code, found) = verify(&root, &kver);
    assert_eq!(code, Some(1), "{found:#?}");
    for name in ["kabi_vendor_a", "kabi_vendor_b"] {
        let why = refused(&found, name);
        assert!(
            why.starts_with("EKEYREJECTED: Loading of unsigned module is rejected"),
            "{name}: {why}"
        );
    }
    let why = refused(&found, "nlmon");
    assert!(
        why.starts_with("EKEYREJECTED: Loading of module with unavailable key is rejected"),
        "{why}"
    );
    ok(&found, "dummy");
    sig_force(&root, &kver, false);
    assert_eq!(verify(&root, &kver).0, Some(0));

    // the running release: enforcement from its command line, lockdown from securityfs
    let proc = root.join("proc");
    std::fs::create_dir_all(proc.join("sys/kernel")).unwrap();
    std::fs::write(proc.join("sys/kernel/osrelease"), format!("{kver}\n")).unwrap();
    std::fs::write(proc.join("cmdline"), "ro quiet module.sig_enforce=1\n").unwrap();
    let (code, found) = verify(&root, &kver);
    assert_eq!(code, Some(1), "{found:#?}");
    let why = refused(&found, "kabi_vendor_a");
    assert!(
        why.starts_with("EKEYREJECTED: Loading of unsigned module is rejected"),
        "{why}"
    );
    ok(&found, "dummy");
    std::fs::write(proc.join("cmdline"), "ro quiet\n").unwrap();
    let sec = root.join("sys/kernel/security");
    std::fs::create_dir_all(&sec).unwrap();
    std::fs::write(sec.join("lockdown"), "none [integrity] confidentiality\n").unwrap();
    let (code, found) = verify(&root, &kver);
    assert_eq!(code, Some(1), "{found:#?}");
    let why = refused(&found, "nlmon");
    assert!(
        why.starts_with(
            "EPERM: Lockdown: modprobe: unsigned module loading is restricted; see man kernel_lockdown.7"
        ),
        "{why}"
    );
    ok(&found, "dummy");
    std::fs::write(sec.join("lockdown"), "[none] integrity confidentiality\n").unwrap();
    assert_eq!(verify(&root, &kver).0, Some(0));
}

/// `kabi weak status` judges the modules another kernel's `extra/` offers to kernel `new` with
/// its signature policy as installed: its configuration and its image's key.
#[test]
fn weak_status_applies_the_signature_verdict() {
    let Some(kr) = common::kernels::cloud() else {
        return;
    };
    let Some(k_old) = kr.fetch(kr.old) else {
        return;
    };
    let Some(k_new) = kr.fetch(kr.new) else {
        return;
    };
    if common::weak::vendor_modules(kr.old).is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let Some(r) = weak_root(&tmp.path().join("root"), &[kr.old, kr.new], &[kr.old]) else {
        return;
    };
    let k = r.kver(kr.new).to_string();
    let extra_old = r.module_dir(kr.old).join("extra/signed");
    put(
        &in_tree(&k_old, "kernel/drivers/net/nlmon.ko"),
        &extra_old.join("nlmon.ko"),
    );
    put(
        &in_tree(&k_new, "kernel/drivers/net/dummy.ko"),
        &extra_old.join("dummy.ko"),
    );
    tampered(
        &in_tree(&k_new, "kernel/drivers/net/veth.ko"),
        &extra_old.join("veth.ko"),
    );
    let status = || {
        let o = common::run(
            common::kabi()
                .args(["weak", "status", "--json", "--root"])
                .arg(&r.root),
        );
        let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
            panic!(
                "{e}: {}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        });
        let kernel = v["kernels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["kernel"] == k.as_str())
            .unwrap()
            .clone();
        kernel["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let file = e["module"].as_str().unwrap();
                let name = Path::new(file).file_stem().unwrap().to_string_lossy();
                (name.into_owned(), e.clone())
            })
            .collect::<std::collections::BTreeMap<String, Value>>()
    };
    let compatible = |e: &std::collections::BTreeMap<String, Value>, name: &str| {
        assert_eq!(e[name]["compatible"], true, "{name}: {:#}", e[name]);
    };
    let refused = |e: &std::collections::BTreeMap<String, Value>, name: &str| -> String {
        assert_eq!(e[name]["compatible"], false, "{name}: {:#}", e[name]);
        reasons(&e[name]).join("\n")
    };

    let e = status();
    for name in ["kabi_vendor_a", "kabi_vendor_b", "nlmon", "dummy"] {
        compatible(&e, name);
    }
    let why = refused(&e, "veth");
    assert!(
        why.starts_with("EKEYREJECTED: veth: the signature does not verify with the trusted key 'Build time autogenerated kernel key: "),
        "{why}"
    );

    sig_force(&r.root, &k, true);
    let e = status();
    let why = refused(&e, "kabi_vendor_a");
    assert!(
        why.starts_with("EKEYREJECTED: Loading of unsigned module is rejected"),
        "{why}"
    );
    let why = refused(&e, "nlmon");
    assert!(
        why.starts_with("EKEYREJECTED: Loading of module with unavailable key is rejected"),
        "{why}"
    );
    compatible(&e, "dummy");
}

/// A system root for `kabi load`'s prediction: `kernel` running (its image and
/// configuration in `boot/`, its exports in `proc/kallsyms`, from its Module.symvers).
fn running_root(dir: &Path, kernel: &Path) -> (PathBuf, String) {
    let (_, kver) = common::module_dir(kernel);
    for rel in [
        format!("boot/vmlinuz-{kver}"),
        format!("boot/config-{kver}"),
    ] {
        put(&kernel.join(&rel), &dir.join(&rel));
    }
    let symvers = std::fs::read_to_string(
        kernel.join(format!("usr/src/linux-headers-{kver}/Module.symvers")),
    )
    .unwrap();
    let kallsyms: String = symvers
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.get(2) == Some(&"vmlinux"))
                .then(|| format!("0000000000000000 r __ksymtab_{}\n", f[1]))
        })
        .collect();
    let proc = dir.join("proc");
    std::fs::create_dir_all(proc.join("sys/kernel")).unwrap();
    std::fs::write(proc.join("kallsyms"), kallsyms).unwrap();
    std::fs::write(proc.join("sys/kernel/osrelease"), format!("{kver}\n")).unwrap();
    std::fs::write(proc.join("cmdline"), "ro quiet\n").unwrap();
    (proc, kver)
}

/// `kabi load`'s prediction before an insert judges the signature as the running kernel
/// would now: `module.sig_enforce=1` (or sysfs's `sig_enforce`) refuses an unsigned module
/// with EKEYREJECTED, lockdown with EPERM naming the loading process, in the kernel's
/// words; a module signed by the kernel's key is admitted.
#[test]
fn load_prediction_applies_the_running_signature_policy() {
    let Some(kr) = common::kernels::cloud() else {
        return;
    };
    use kabi::load::predict::{Predict, RunningPredictor};
    let Some(kernel) = kr.fetch(kr.newest) else {
        return;
    };
    let Some(vendor) = common::weak::vendor_modules(kr.newest) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let (proc, _) = running_root(tmp.path(), &kernel);
    let unsigned = vendor.join("kabi_vendor_a.ko");
    let dummy = in_tree(&kernel, "kernel/drivers/net/dummy.ko");
    let admit = |name: &str, path: &Path| RunningPredictor::new(&proc, None).admit(name, path);

    // not enforced: both admitted (the unsigned one taints)
    assert_eq!(admit("kabi_vendor_a", &unsigned), Ok(()));
    assert_eq!(admit("dummy", &dummy), Ok(()));

    std::fs::write(proc.join("cmdline"), "ro module.sig_enforce=1\n").unwrap();
    let why = admit("kabi_vendor_a", &unsigned).unwrap_err();
    assert_eq!(
        why, "  EKEYREJECTED: Loading of unsigned module is rejected",
        "{why}"
    );
    assert_eq!(admit("dummy", &dummy), Ok(()));

    // sysfs is the truth for the running kernel once it exists
    let param = tmp.path().join("sys/module/module/parameters");
    std::fs::create_dir_all(&param).unwrap();
    std::fs::write(param.join("sig_enforce"), "N\n").unwrap();
    std::fs::write(proc.join("cmdline"), "ro\n").unwrap();
    assert_eq!(admit("kabi_vendor_a", &unsigned), Ok(()));
    std::fs::write(param.join("sig_enforce"), "Y\n").unwrap();
    assert!(admit("kabi_vendor_a", &unsigned).is_err());
    std::fs::write(param.join("sig_enforce"), "N\n").unwrap();

    let sec = tmp.path().join("sys/kernel/security");
    std::fs::create_dir_all(&sec).unwrap();
    std::fs::write(sec.join("lockdown"), "none [integrity] confidentiality\n").unwrap();
    std::fs::create_dir_all(proc.join("self")).unwrap();
    std::fs::write(proc.join("self/comm"), "kabi\n").unwrap();
    let why = admit("kabi_vendor_a", &unsigned).unwrap_err();
    assert!(
        why.starts_with(
            "  EPERM: Lockdown: kabi: unsigned module loading is restricted; see man kernel_lockdown.7"
        ),
        "{why}"
    );
    assert_eq!(admit("dummy", &dummy), Ok(()));
    std::fs::write(sec.join("lockdown"), "[none] integrity confidentiality\n").unwrap();

    // a signature that does not verify with the kernel's key: the arithmetic is the
    // kernel's, which refuses the module before anything of it is loaded; the prediction
    // admits it, and says why once the kernel refused it, enforced or not
    let bad = tmp.path().join("bad/dummy.ko");
    tampered(&dummy, &bad);
    let rejected = "  EKEYREJECTED: dummy: the signature does not verify with the trusted key 'Build time autogenerated kernel key: ";
    for enforce in ["N\n", "Y\n"] {
        std::fs::write(param.join("sig_enforce"), enforce).unwrap();
        let mut p = RunningPredictor::new(&proc, None);
        assert_eq!(p.admit("dummy", &bad), Ok(()), "sig_enforce {enforce}");
        let why = p.explain("dummy", &bad, None).expect("a reason");
        assert!(why.starts_with(rejected), "sig_enforce {enforce}: {why}");
        // the module as it is is admitted, and explained by nothing
        assert_eq!(p.explain("dummy", &dummy, None), None);
    }
    // refused for another reason too (a symbol the kernel no longer exports): the kernel's
    // first reason is the signature's, and the prediction says so before the insert
    let m = kabi::Module::open(&dummy).unwrap();
    let gone = &m.undefined.first().expect("dummy imports symbols").name;
    let kallsyms = std::fs::read_to_string(proc.join("kallsyms")).unwrap();
    let without: String = kallsyms
        .lines()
        .filter(|l| !l.ends_with(&format!(" __ksymtab_{gone}")))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(without.len() < kallsyms.len(), "{gone} not in kallsyms");
    std::fs::write(proc.join("kallsyms"), without).unwrap();
    for enforce in ["N\n", "Y\n"] {
        std::fs::write(param.join("sig_enforce"), enforce).unwrap();
        let why = admit("dummy", &dummy).unwrap_err();
        assert!(why.contains(&format!("Unknown symbol {gone}")), "{why}");
        let why = admit("dummy", &bad).unwrap_err();
        assert!(why.starts_with(rejected), "sig_enforce {enforce}: {why}");
    }
}
