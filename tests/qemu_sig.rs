//! Will the kernel trust it? Module signatures inside a real booted Debian kernel (cloud-amd64,
//! the newest ABI) under qemu TCG, with the static kabi as `/init`: the kernel is the judge.
//!
//! Six modules: an in-tree module signed by the build's key (`dummy`), the unsigned vendor
//! module (`kabi_vendor_a`), the other vendor module signed by `kabi sign` with a key of the
//! test's own (`kabi_vendor_b`), an in-tree module with one byte of its body flipped (`crc7`),
//! one whose end (the marker) is cut off (`ts_bm`), one whose PKCS#7 message is cut short
//! with the header and marker kept (`ts_kmp`). Three boots: `module.sig_enforce=1`, nothing,
//! `lockdown=integrity`. In each, for each module, kabi's prediction (`check --running`, in the
//! guest, with the image's certificates and `/proc/keys`) is compared with what the kernel
//! does (`load --no-check`): loads or not, errno, the kernel's message, taint E. The host's
//! prediction from the image alone (`check --vmlinuz`) must say the same. And the certificates
//! kabi extracts from the vmlinuz are those `/proc/keys` lists in `.builtin_trusted_keys`.

mod common;

use common::qemu::{self, Initramfs};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(300);

/// One test module: its name in the guest (`/sig/<file>`), the module's own name.
struct Case {
    file: &'static str,
    name: &'static str,
}

const CASES: [Case; 6] = [
    Case {
        file: "intree-dummy.ko",
        name: "dummy",
    },
    Case {
        file: "unsigned-kabi_vendor_a.ko",
        name: "kabi_vendor_a",
    },
    Case {
        file: "ownkey-kabi_vendor_b.ko",
        name: "kabi_vendor_b",
    },
    Case {
        file: "flipped-crc7.ko",
        name: "crc7",
    },
    Case {
        file: "trailer-cut-ts_bm.ko",
        name: "ts_bm",
    },
    Case {
        file: "sig-cut-ts_kmp.ko",
        name: "ts_kmp",
    },
];

/// The test's own signing key and certificate (openssl, RSA 2048).
fn own_key(dir: &Path) -> (PathBuf, PathBuf) {
    let key = dir.join("key.pem");
    let cert = dir.join("cert.pem");
    let o = common::run(
        Command::new("openssl")
            .args([
                "req",
                "-new",
                "-nodes",
                "-utf8",
                "-sha256",
                "-days",
                "3650",
                "-batch",
                "-x509",
                "-subj",
                "/CN=kabi test vendor key/O=kabi test",
                "-newkey",
                "rsa:2048",
                "-keyout",
            ])
            .arg(&key)
            .arg("-out")
            .arg(&cert),
    );
    assert!(
        o.status.success(),
        "openssl req: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    (key, cert)
}

/// The offset of the signature trailer's PKCS#7 message in a signed module, and its length.
fn pkcs7_range(data: &[u8]) -> (usize, usize) {
    let n = data.len() - 28 - 12;
    let sig_len = u32::from_be_bytes(data[n + 8..n + 12].try_into().unwrap()) as usize;
    (n - sig_len, sig_len)
}

/// The six module files of [`CASES`].
fn make_cases(mod_dir: &Path, vendor: &Path, tmp: &Path) -> Vec<(String, Vec<u8>)> {
    let read = |p: PathBuf| std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let (key, cert) = own_key(tmp);
    let signed_b = tmp.join("kabi_vendor_b.signed.ko");
    let o = common::run(
        common::kabi()
            .args(["sign", "--key"])
            .arg(&key)
            .arg("--cert")
            .arg(&cert)
            .arg("-o")
            .arg(&signed_b)
            .arg(vendor.join("kabi_vendor_b.ko")),
    );
    assert!(
        o.status.success(),
        "kabi sign: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mut flipped = read(mod_dir.join("kernel/lib/crc7.ko"));
    flipped[0x200] ^= 0x01; // in the ELF body, far from the trailer
    let bm = read(mod_dir.join("kernel/lib/ts_bm.ko"));
    let trailer_cut = bm[..bm.len() - 10].to_vec(); // the marker is gone
    let kmp = read(mod_dir.join("kernel/lib/ts_kmp.ko"));
    let (at, len) = pkcs7_range(&kmp);
    let cut = 64;
    let mut sig_cut = kmp[..at + len - cut].to_vec();
    sig_cut.extend_from_slice(&[0, 0, 2, 0, 0, 0, 0, 0]);
    sig_cut.extend_from_slice(&((len - cut) as u32).to_be_bytes());
    sig_cut.extend_from_slice(b"~Module signature appended~\n");
    let files = [
        read(mod_dir.join("kernel/drivers/net/dummy.ko")),
        read(vendor.join("kabi_vendor_a.ko")),
        read(signed_b),
        flipped,
        trailer_cut,
        sig_cut,
    ];
    CASES
        .iter()
        .zip(files)
        .map(|(c, d)| (format!("/sig/{}", c.file), d))
        .collect()
}

/// What kabi predicts or the kernel does for one module.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Result_ {
    loads: bool,
    errno: Option<String>,
    /// The kernel's message about the refusal (empty: it says nothing).
    message: String,
    taint_e: bool,
}

/// kabi's prediction from `check -v` text: the module's block (its verdict line
/// `ok|FAIL name [ERRNO message]`, then its indented reasons and notes).
fn prediction(out: &str, name: &str) -> Result_ {
    let lines: Vec<&str> = out.lines().collect();
    let at = lines
        .iter()
        .position(|l| {
            let mut w = l.split_whitespace();
            matches!(w.next(), Some("ok" | "FAIL")) && w.next() == Some(name)
        })
        .unwrap_or_else(|| panic!("no verdict for {name} in:\n{out}"));
    let block: Vec<&str> = lines[at + 1..]
        .iter()
        .take_while(|l| l.starts_with("      "))
        .map(|l| l.trim())
        .collect();
    let first = lines[at];
    let loads = first.starts_with("ok");
    let errno = (!loads).then(|| first.split_whitespace().nth(2).unwrap().to_string());
    // the kernel's words: the reason line of the first problem; "(...)" is kabi's explanation
    let message = match &errno {
        None => String::new(),
        Some(e) => {
            let detail = block
                .iter()
                .find(|l| l.starts_with(e.as_str()))
                .map(|l| l[e.len()..].trim().to_string())
                .unwrap_or_default();
            match detail.find(" (") {
                _ if detail.starts_with('(') => String::new(),
                // kabi's words for a refusal the kernel makes without a message
                _ if detail.ends_with("(the kernel logs nothing)") => String::new(),
                Some(i) => detail[..i].to_string(),
                None => detail,
            }
        }
    };
    Result_ {
        loads,
        errno,
        message,
        taint_e: block.iter().any(|l| {
            l.starts_with(&format!(
                "note         taint E: {name}: module verification failed"
            ))
        }),
    }
}

/// The kernel's verdict: `load --no-check` (exit, errno), the console lines printed meanwhile
/// (`loglevel=6` lets `pr_notice` through), and the module's taint flags read afterwards.
fn actual(load_out: &str, exit: Option<i32>, taint: Option<&str>) -> Result_ {
    let loads = exit == Some(0);
    let errno = (!loads).then(|| {
        load_out
            .split(['(', ')'])
            .find(|w| w.starts_with('E') && w.chars().all(|c| c.is_ascii_uppercase()))
            .unwrap_or("?")
            .to_string()
    });
    let known = [
        "Loading of ",
        "Lockdown: ",
        "module: not signed with expected PKCS#7 message",
        "PKCS7: ",
    ];
    let message = load_out
        .lines()
        .filter_map(|l| {
            // console lines: "[    1.234567] text"
            let text = l.split_once("] ").map_or(l, |(_, t)| t);
            known
                .iter()
                .any(|k| text.starts_with(k))
                .then(|| text.trim().to_string())
        })
        .collect::<Vec<_>>()
        .join("\n");
    Result_ {
        loads,
        errno,
        message,
        taint_e: taint.is_some_and(|t| t.contains('E')),
    }
}

/// `loaded   NAME is loaded in the running kernel (taint: XY)` lines.
fn taints(out: &str) -> Vec<(String, String)> {
    out.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("loaded   ")?;
            let (name, t) = rest.split_once(" is loaded in the running kernel (taint: ")?;
            Some((name.to_string(), t.trim_end_matches(')').to_string()))
        })
        .collect()
}

fn boot_and_compare(
    root: &Path,
    kver: &str,
    files: &[(String, Vec<u8>)],
    append: &str,
    expect: &[(bool, Option<&str>, &str, bool)],
) -> qemu::BootLog {
    // one check of the six as a set (kabi_vendor_b needs kabi_vendor_a's export), the loads
    // in the same order, then a check that reads the loaded modules' taints
    let all: Vec<String> = CASES.iter().map(|c| format!("/sig/{}", c.file)).collect();
    let mut script = String::from("check --running --list-keys /sig/intree-dummy.ko\n");
    script.push_str(&format!("check --running -v {}\n", all.join(" ")));
    for c in &CASES {
        script.push_str(&format!("load --no-check /sig/{}\n", c.file));
    }
    // predicted: the arithmetic of a signature whose key the kernel trusts is the kernel's
    script.push_str("load /sig/flipped-crc7.ko\n");
    script.push_str(&format!("check --running {}\n", all.join(" ")));
    let mut ird = Initramfs::kabi(&script);
    for (g, d) in files {
        ird.add_file(g, d, 0o644);
    }
    ird.add_file(
        &format!("/boot/vmlinuz-{kver}"),
        &std::fs::read(qemu::vmlinuz(root)).unwrap(),
        0o644,
    );
    ird.add_file(
        &format!("/boot/config-{kver}"),
        &std::fs::read(root.join(format!("boot/config-{kver}"))).unwrap(),
        0o644,
    );
    ird.add_modules(root, &["kernel/drivers/net/dummy.ko"], &[]);
    let log = qemu::boot(&qemu::vmlinuz(root), &ird.finish(), append, TIMEOUT);
    eprintln!("boot with '{append}': {:.1} s", log.elapsed.as_secs_f64());
    if std::env::var_os("KABI_SHOW_CONSOLE").is_some() {
        eprintln!("{}", log.raw);
    }
    log.assert_done();
    // the prediction leaves a signature to the kernel once it found the key: the kernel
    // refuses, and kabi's full check then says why, in the kernel's words
    let flipped = log.find("load /sig/flipped-crc7.ko");
    assert_eq!(flipped.exit, Some(1), "{}", flipped.output);
    for want in [
        // named by its file, as kmod names a module given by its path
        "could not insert 'flipped_crc7': Key was rejected by service (EKEYREJECTED)",
        "kabi check says why:\n  EKEYREJECTED: flipped_crc7: the signature does not verify with the trusted key '",
    ] {
        assert!(flipped.output.contains(want), "{want}:\n{}", flipped.output);
    }
    assert!(
        !flipped.output.contains("predicts the kernel will refuse"),
        "verified before the insert:\n{}",
        flipped.output
    );
    let after = log.runs.last().unwrap();
    let t = taints(&after.output);
    let checked = log.run(1);
    let mut table = Vec::new();
    for (c, want) in CASES.iter().zip(expect) {
        let p = checked;
        let predicted = prediction(&p.output, c.name);
        let l = log.find(&format!("load --no-check /sig/{}", c.file));
        let taint = t.iter().find(|(n, _)| n == c.name).map(|(_, t)| t.as_str());
        let got = actual(&l.output, l.exit, taint);
        table.push(format!(
            "{:<28} kernel: {} {:<13} {:<55} E={} | kabi: {} {:<13} {}",
            c.file,
            if got.loads { "loads  " } else { "refused" },
            got.errno.clone().unwrap_or_default(),
            got.message.replace('\n', " / "),
            got.taint_e,
            if predicted.loads {
                "loads  "
            } else {
                "refused"
            },
            predicted.errno.clone().unwrap_or_default(),
            predicted.message.replace('\n', " / "),
        ));
        assert_eq!(
            predicted, got,
            "{} with '{append}': kabi predicted\n{}\nthe kernel did\n{}\n(taints {t:?})",
            c.file, p.output, l.output
        );
        // and what the issue says the kernel does
        let (loads, errno, message, taint_e) = *want;
        assert_eq!(got.loads, loads, "{}: {}", c.file, l.output);
        assert_eq!(got.errno.as_deref(), errno, "{}: {}", c.file, l.output);
        assert!(
            got.message.contains(message),
            "{}: expected '{message}' in '{}'",
            c.file,
            got.message
        );
        assert_eq!(got.taint_e, taint_e, "{}: taint {taint:?}", c.file);
    }
    eprintln!("with '{append}':\n{}", table.join("\n"));
    log
}

#[test]
fn the_kernel_judges_signatures_as_kabi_predicts() {
    if !qemu::require_qemu() || !common::require_tool("openssl") {
        return;
    }
    let Some(root) = common::fetch_kernel("cloud-amd64", None) else {
        return;
    };
    let (mod_dir, kver) = common::module_dir(&root);
    let abi = kver.split('-').nth(1).unwrap().to_string();
    let Some(vendor) = common::weak::vendor_modules(&abi) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let files = make_cases(&mod_dir, &vendor, tmp.path());

    // the host's prediction from the image alone equals the guest's (checked below)
    let host = |extra: &[&str]| {
        let dir = tmp.path().join("host");
        std::fs::create_dir_all(&dir).unwrap();
        let mut cmd = common::kabi();
        cmd.args(["check", "-v", "--vmlinuz"])
            .arg(qemu::vmlinuz(&root));
        cmd.args(extra);
        for (g, d) in &files {
            let p = dir.join(Path::new(g).file_name().unwrap());
            std::fs::write(&p, d).unwrap();
            cmd.arg(p);
        }
        String::from_utf8_lossy(&common::run(&mut cmd).stdout).into_owned()
    };

    let refused = |errno: &'static str, msg: &'static str| (false, Some(errno), msg, false);
    // module.sig_enforce=1: only the build-key signed module loads
    let enforced = [
        (true, None, "", false),
        refused("EKEYREJECTED", "Loading of unsigned module is rejected"),
        refused(
            "EKEYREJECTED",
            "Loading of module with unavailable key is rejected",
        ),
        refused("EKEYREJECTED", ""),
        refused("EKEYREJECTED", "Loading of unsigned module is rejected"),
        refused("EBADMSG", ""),
    ];
    let log = boot_and_compare(
        &root,
        &kver,
        &files,
        "module.sig_enforce=1 loglevel=6",
        &enforced,
    );
    let on_host = host(&["--sig-enforce"]);
    for (c, (loads, errno, _, _)) in CASES.iter().zip(&enforced) {
        let p = prediction(&on_host, c.name);
        assert_eq!(
            (p.loads, p.errno.as_deref()),
            (*loads, *errno),
            "host, {}:\n{on_host}",
            c.file
        );
    }

    // the keys: what kabi extracts from the image is what /proc/keys lists
    let keys = &log.run(0).output;
    let builtin: Vec<&str> = keys
        .lines()
        .filter(|l| l.starts_with("key      .builtin_trusted_keys"))
        .collect();
    let certs = kabi::sig::trust::builtin_certs(&qemu::vmlinuz(&root)).unwrap();
    assert!(!certs.is_empty());
    assert_eq!(builtin.len(), certs.len(), "{keys}");
    for c in &certs {
        let skid = c
            .skid
            .as_ref()
            .expect("the build key has a subjectKeyIdentifier");
        let tail = kabi::sig::cert::hex(&skid[skid.len() - 4..]);
        let line = format!(
            "{} [X509.rsa {tail}] (vmlinuz + /proc/keys)",
            c.description()
        );
        assert!(
            builtin.iter().any(|l| l.ends_with(&line)),
            "{line} not among the kernel's builtin keys:\n{keys}"
        );
        assert!(c.description().starts_with(&format!(
            "{}: {}",
            c.subject,
            kabi::sig::cert::hex(skid)
        )));
    }
    eprintln!(
        "the image's certificates are the kernel's builtin keys:\n{}",
        builtin.join("\n")
    );

    // nothing enforced: unsigned and unknown-key modules load with taint E; a signature that
    // does not verify, or does not parse, is still refused
    let free = [
        (true, None, "", false),
        (true, None, "", true),
        (true, None, "", true),
        refused("EKEYREJECTED", ""),
        (true, None, "", true),
        refused("EBADMSG", ""),
    ];
    boot_and_compare(&root, &kver, &files, "loglevel=6", &free);
    let on_host = host(&[]);
    for (c, (loads, errno, _, taint)) in CASES.iter().zip(&free) {
        let p = prediction(&on_host, c.name);
        assert_eq!(
            (p.loads, p.errno.as_deref(), p.taint_e),
            (*loads, *errno, *taint),
            "host, {}:\n{on_host}",
            c.file
        );
    }

    // lockdown (what Secure Boot means on Debian): what would be forgiven is refused, EPERM
    let lock = "Lockdown: init: unsigned module loading is restricted; see man kernel_lockdown.7";
    let locked = [
        (true, None, "", false),
        refused("EPERM", lock),
        refused("EPERM", lock),
        refused("EKEYREJECTED", ""),
        refused("EPERM", lock),
        refused("EBADMSG", ""),
    ];
    boot_and_compare(
        &root,
        &kver,
        &files,
        "lockdown=integrity loglevel=6",
        &locked,
    );
}
