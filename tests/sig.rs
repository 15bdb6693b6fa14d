//! Module signatures on the host, against real artefacts: Debian's kernel images and modules,
//! `scripts/sign-file` from Debian's `linux-kbuild-6.1`, keys made by openssl, UEFI signature
//! lists written by efitools' `cert-to-efi-sig-list`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use kabi::sig::{Outcome, SigPolicy, Soft};

/// `scripts/sign-file` of the linux-kbuild-6.1 that `build-vendor.sh` unpacked for `kver`.
fn sign_file(vendor: &Path, kver: &str) -> PathBuf {
    let cache = vendor.parent().unwrap().parent().unwrap();
    let p = cache
        .join("headers")
        .join(kver)
        .join("usr/lib/linux-kbuild-6.1/scripts/sign-file");
    assert!(p.is_file(), "{} is missing", p.display());
    p
}

fn openssl(args: &[&str], dir: &Path) {
    let o = common::run(Command::new("openssl").current_dir(dir).args(args));
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// An RSA key of `bits` and its self-signed certificate (PEM; and the certificate in DER).
fn rsa_key(dir: &Path, name: &str, bits: u32) -> (PathBuf, PathBuf, PathBuf) {
    let (key, pem, der) = (
        format!("{name}.key"),
        format!("{name}.pem"),
        format!("{name}.der"),
    );
    openssl(
        &[
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
            &format!("/CN=kabi {name}/O=kabi test signers"),
            "-newkey",
            &format!("rsa:{bits}"),
            "-keyout",
            &key,
            "-out",
            &pem,
        ],
        dir,
    );
    openssl(&["x509", "-in", &pem, "-outform", "DER", "-out", &der], dir);
    (dir.join(key), dir.join(pem), dir.join(der))
}

/// The module without its signature trailer.
fn unsigned(data: &[u8]) -> Vec<u8> {
    kabi::module::signature::split(data).0.to_vec()
}

/// `n` modules spread over the tree (every k-th of the sorted list), unsigned.
fn sample(mod_dir: &Path, n: usize) -> Vec<(String, Vec<u8>)> {
    let all = common::walk(&mod_dir.join("kernel"), &|p| {
        p.extension().is_some_and(|e| e == "ko")
    });
    let step = (all.len() / n).max(1);
    all.iter()
        .step_by(step)
        .take(n)
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(p).unwrap(),
            )
        })
        .collect()
}

/// `kabi sign` equals `scripts/sign-file` byte for byte (RSA 2048 and 4096; sha1, sha224,
/// sha256, sha384, sha512; issuer+serial and -k key identifier; key and certificate in one
/// PEM or apart, certificate PEM or DER), on 40 real modules of the Debian tree and the vendor
/// modules; a compressed module is signed inside and compressed again.
#[test]
fn sign_is_byte_identical_to_sign_file() {
    if !common::require_tool("openssl") || !common::require_tool("xz") {
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
    let sign_file = sign_file(&vendor, &kver);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let keys = [rsa_key(dir, "rsa2048", 2048), rsa_key(dir, "rsa4096", 4096)];
    // the kernel's signing_key.pem layout: key and certificate in one file
    let (k0, p0, _) = &keys[0];
    let both = dir.join("both.pem");
    let mut b = std::fs::read(k0).unwrap();
    b.extend(std::fs::read(p0).unwrap());
    std::fs::write(&both, b).unwrap();

    let mut modules = sample(&mod_dir, 40);
    for v in ["kabi_vendor_a.ko", "kabi_vendor_b.ko"] {
        modules.push((v.into(), std::fs::read(vendor.join(v)).unwrap()));
    }
    let hashes = ["sha256", "sha512", "sha1", "sha384", "sha224"];
    let (mut t_ref, mut t_kabi, mut compared) = (0f64, 0f64, 0usize);
    for (i, (name, data)) in modules.iter().enumerate() {
        let input = dir.join(format!("in-{i}-{name}"));
        std::fs::write(&input, unsigned(data)).unwrap();
        let (key, pem, der) = &keys[i % 2];
        let hash = hashes[i % hashes.len()];
        let keyid = i % 3 == 2;
        // sign-file HASH KEY X509 MODULE DEST
        let want = dir.join(format!("ref-{i}.ko"));
        let mut sf = Command::new(&sign_file);
        if keyid {
            sf.arg("-k");
        }
        sf.arg(hash).arg(key).arg(der).arg(&input).arg(&want);
        let t = Instant::now();
        let o = common::run(&mut sf);
        t_ref += t.elapsed().as_secs_f64();
        assert!(
            o.status.success(),
            "sign-file: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let got = dir.join(format!("kabi-{i}.ko"));
        let mut ks = common::kabi();
        ks.args(["sign", "--hash", hash]);
        if keyid {
            ks.arg("--keyid");
        }
        if i % 4 == 0 && i % 2 == 0 {
            ks.arg("--key").arg(&both);
        } else {
            ks.arg("--key")
                .arg(key)
                .arg("--cert")
                .arg(if i % 5 == 0 { der } else { pem });
        }
        ks.arg("-o").arg(&got).arg(&input);
        let t = Instant::now();
        let o = common::run(&mut ks);
        t_kabi += t.elapsed().as_secs_f64();
        assert!(
            o.status.success(),
            "kabi sign: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let (a, b) = (std::fs::read(&want).unwrap(), std::fs::read(&got).unwrap());
        assert!(
            a == b,
            "{name} ({hash}, keyid {keyid}): kabi sign differs from sign-file: {}",
            common::first_difference(&a, &b)
        );
        compared += 1;
        // signing a signed module replaces its signature: the same bytes again
        let again = dir.join(format!("again-{i}.ko"));
        let o = common::run(
            common::kabi()
                .args(["sign", "--hash", hash])
                .args(if keyid { &["--keyid"][..] } else { &[][..] })
                .arg("--key")
                .arg(key)
                .arg("--cert")
                .arg(pem)
                .arg("-o")
                .arg(&again)
                .arg(&got),
        );
        assert!(o.status.success());
        assert!(
            std::fs::read(&again).unwrap() == a,
            "{name}: re-signing changed it"
        );
    }
    // a compressed module: signed inside, compressed again; the image is sign-file's
    let (name, data) = &modules[1];
    let plain = dir.join("z.ko");
    std::fs::write(&plain, unsigned(data)).unwrap();
    let xz = common::run(
        Command::new("xz")
            .args(["--check=crc32", "-k", "-f"])
            .arg(&plain),
    );
    assert!(xz.status.success());
    let ko_xz = dir.join("z.ko.xz");
    let (key, pem, der) = &keys[0];
    let o = common::run(
        common::kabi()
            .args(["sign", "--key"])
            .arg(key)
            .arg("--cert")
            .arg(pem)
            .arg(&ko_xz),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = common::run(
        Command::new(&sign_file)
            .arg("sha256")
            .arg(key)
            .arg(der)
            .arg(&plain),
    );
    assert!(o.status.success());
    let inner = common::run(Command::new("xz").arg("-dc").arg(&ko_xz)).stdout;
    assert!(
        inner == std::fs::read(&plain).unwrap(),
        "{name}.xz: the signed image differs from sign-file's"
    );
    // and the kernel-side check accepts what kabi signed, with that certificate trusted
    let o = common::run(
        common::kabi()
            .args(["sign", "--verify", "--trusted-cert"])
            .arg(pem)
            .arg(&ko_xz)
            .arg(dir.join("kabi-0.ko")),
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("verified")).count(),
        2,
        "{out}"
    );
    eprintln!(
        "{compared} modules signed byte-identically; sign-file {:.3} s, kabi sign {:.3} s (each a process per module)",
        t_ref, t_kabi
    );
}

/// The certificates kabi extracts from Debian images (zstd and xz payloads, five ABIs) verify
/// every sampled module of their own tree and none of another ABI's (a different build key).
#[test]
fn builtin_certificates_verify_their_own_modules_only() {
    let Some(kr) = common::kernels::cloud() else {
        return;
    };
    let mut trees = Vec::new();
    for (flavour, abi) in [
        ("cloud-amd64", None),
        ("amd64", None),
        ("cloud-amd64", Some(kr.old)),
        ("cloud-amd64", Some(kr.other)),
    ] {
        let Some(root) = common::fetch_kernel(flavour, abi) else {
            return;
        };
        trees.push(root);
    }
    let mut keys = Vec::new();
    for root in &trees {
        let img = common::qemu::vmlinuz(root);
        let t = Instant::now();
        let certs = kabi::sig::trust::builtin_certs(&img).unwrap();
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(certs.len(), 1, "{}: {certs:?}", img.display());
        let c = &certs[0];
        assert_eq!(c.subject, "Build time autogenerated kernel key");
        assert_eq!(c.issuer, c.subject, "self-signed");
        assert_eq!((c.pkey_algo.as_str(), c.key_bits), ("rsa", 4096));
        eprintln!(
            "{}: {} in {secs:.3} s (debug build)",
            img.file_name().unwrap().to_string_lossy(),
            c.description()
        );
        keys.push(c.description());
    }
    let mut uniq = keys.clone();
    uniq.sort();
    uniq.dedup();
    assert_eq!(
        uniq.len(),
        keys.len(),
        "a different build key per ABI: {keys:?}"
    );

    for (i, root) in trees.iter().enumerate() {
        let (mod_dir, _) = common::module_dir(root);
        let own = SigPolicy::for_image(&common::qemu::vmlinuz(root)).unwrap();
        let other_root = &trees[(i + 1) % trees.len()];
        let other = SigPolicy::for_image(&common::qemu::vmlinuz(other_root)).unwrap();
        let mods = sample(&mod_dir, 60);
        let t = Instant::now();
        for (name, data) in &mods {
            let sc = kabi::sig::verdict::check_image(data, &own);
            assert!(
                matches!(&sc.outcome, Outcome::Verified { key, .. } if *key == keys[i]),
                "{name}: {sc:?}"
            );
        }
        let per = t.elapsed().as_secs_f64() / mods.len() as f64;
        for (name, data) in &mods {
            let sc = kabi::sig::verdict::check_image(data, &other);
            assert!(
                matches!(
                    sc.outcome,
                    Outcome::Soft {
                        why: Soft::UnavailableKey,
                        ..
                    }
                ),
                "{name} against another ABI's key: {sc:?}"
            );
        }
        eprintln!(
            "{}: {} modules verified, {:.2} ms each (debug build)",
            mod_dir.display(),
            mods.len(),
            per * 1e3
        );
    }
}

fn efi_var(root: &Path, name: &str, guid: &str, data: &[u8]) {
    let d = root.join("sys/firmware/efi/efivars");
    std::fs::create_dir_all(&d).unwrap();
    let mut v = vec![0x07, 0, 0, 0]; // NV | BS | RT
    v.extend_from_slice(data);
    std::fs::write(d.join(format!("{name}-{guid}")), v).unwrap();
}

/// A root with the unpacked kernel's image, configuration and Module.symvers (copies: a
/// root's links lead inside it, never to the cache).
fn root_of(kernel: &Path, dir: &Path) -> (PathBuf, String) {
    let (_, kver) = common::module_dir(kernel);
    let root = dir.join("root");
    for rel in [
        format!("boot/vmlinuz-{kver}"),
        format!("boot/config-{kver}"),
        format!("usr/src/linux-headers-{kver}/Module.symvers"),
    ] {
        let to = root.join(&rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(kernel.join(&rel), &to).unwrap();
    }
    (root, kver)
}

/// UEFI `db`, `MokListRT` and `dbx` as efitools writes them, in an efivarfs under a root:
/// a module signed by a db certificate verifies against `.platform`, one signed by a MOK
/// certificate against `.machine` (Secure Boot on), a db-signed module whose hash is in dbx is
/// refused; Secure Boot means lockdown on Debian's kernel: an unsigned module gets EPERM.
#[test]
fn uefi_db_mok_and_dbx() {
    if !common::require_tool("openssl") || !common::require_tool("cert-to-efi-sig-list") {
        return;
    }
    let Some(kernel) = common::fetch_kernel("cloud-amd64", None) else {
        return;
    };
    let (_, kver) = common::module_dir(&kernel);
    let abi = kver.split('-').nth(1).unwrap().to_string();
    let Some(vendor) = common::weak::vendor_modules(&abi) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (db_key, db_pem, _) = rsa_key(dir, "db", 2048);
    let (mok_key, mok_pem, _) = rsa_key(dir, "mok", 2048);
    let esl = |pem: &Path, out: &str| {
        let o = common::run(
            Command::new("cert-to-efi-sig-list")
                .arg("-g")
                .arg("11111111-2222-3333-4444-555555555555")
                .arg(pem)
                .arg(dir.join(out)),
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::read(dir.join(out)).unwrap()
    };
    let db = esl(&db_pem, "db.esl");
    let mok = esl(&mok_pem, "mok.esl");
    let sign = |key: &Path, pem: &Path, module: &str, out: &str| {
        let p = dir.join(out);
        let o = common::run(
            common::kabi()
                .arg("sign")
                .arg("--key")
                .arg(key)
                .arg("--cert")
                .arg(pem)
                .arg("-o")
                .arg(&p)
                .arg(vendor.join(module)),
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        p
    };
    let by_db = sign(&db_key, &db_pem, "kabi_vendor_a.ko", "kabi_vendor_a-db.ko");
    let by_mok = sign(
        &mok_key,
        &mok_pem,
        "kabi_vendor_a.ko",
        "kabi_vendor_a-mok.ko",
    );
    let blocked = sign(&db_key, &db_pem, "kabi_vendor_b.ko", "kabi_vendor_b-db.ko");
    let unsigned = vendor.join("kabi_vendor_a.ko");
    // dbx: an EFI_CERT_SHA256 list with the hash of the whole blocked file
    use sha2::Digest;
    let h = sha2::Sha256::digest(std::fs::read(&blocked).unwrap());
    let mut dbx = kabi::sig::efi::CERT_SHA256.to_vec();
    dbx.extend_from_slice(&(28u32 + 48).to_le_bytes());
    dbx.extend_from_slice(&0u32.to_le_bytes());
    dbx.extend_from_slice(&48u32.to_le_bytes());
    dbx.extend_from_slice(&[0x77; 16]);
    dbx.extend_from_slice(&h);

    let (root, kver) = root_of(&kernel, dir);
    efi_var(&root, "db", kabi::sig::efi::IMAGE_SECURITY_DATABASE, &db);
    efi_var(&root, "dbx", kabi::sig::efi::IMAGE_SECURITY_DATABASE, &dbx);
    efi_var(&root, "MokListRT", kabi::sig::efi::SHIM_LOCK, &mok);
    efi_var(&root, "SecureBoot", kabi::sig::efi::GLOBAL_VARIABLE, &[1]);
    let check = |extra: &[&Path]| {
        let mut c = common::kabi();
        c.args(["check", "-v", "--list-keys", "--root"])
            .arg(&root)
            .args(["-k", &kver]);
        c.args(extra);
        let o = common::run(&mut c);
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let out = check(&[&by_db]);
    assert!(out.contains("key      .platform"), "{out}");
    assert!(out.contains("key      .machine"), "{out}");
    assert!(out.contains("lockdown integrity (EFI Secure Boot"), "{out}");
    assert!(out.starts_with("keys"), "{out}");
    assert!(
        out.contains("signature    verified with 'kabi test signers: kabi db: ")
            && out.contains("(.platform)"),
        "{out}"
    );
    let out = check(&[&by_mok]);
    assert!(
        out.contains("(.machine)") && out.lines().any(|l| l.starts_with("ok ")),
        "{out}"
    );
    let out = check(&[&blocked]);
    assert!(
        out.contains("FAIL  kabi_vendor_b  EKEYREJECTED Module hash ")
            && out.contains(" is blacklisted"),
        "{out}"
    );
    let out = check(&[&unsigned]);
    assert!(
        out.contains(
            "FAIL  kabi_vendor_a  EPERM Lockdown: modprobe: unsigned module loading is restricted; see man kernel_lockdown.7"
        ),
        "{out}"
    );
    // without Secure Boot: no lockdown, and MOK is not loaded (load_uefi_certs)
    efi_var(&root, "SecureBoot", kabi::sig::efi::GLOBAL_VARIABLE, &[0]);
    let out = check(&[&unsigned, &by_mok]);
    assert!(out.contains("lockdown none"), "{out}");
    assert!(!out.contains("key      .machine"), "{out}");
    assert!(out.contains("taint E: kabi_vendor_a"), "{out}");
}

/// A stablelist written for the test: every symbol the vendor modules use but three; the
/// findings are exactly those three (kabi_vendor_b's use of kabi_vendor_a's export is within
/// the set), in text and JSON, from a file and from a directory.
#[test]
fn stablelist_findings() {
    let Some(root) = common::fetch_kernel("cloud-amd64", None) else {
        return;
    };
    let (_, kver) = common::module_dir(&root);
    let abi = kver.split('-').nth(1).unwrap().to_string();
    let Some(vendor) = common::weak::vendor_modules(&abi) else {
        return;
    };
    let a = vendor.join("kabi_vendor_a.ko");
    let b = vendor.join("kabi_vendor_b.ko");
    // what they import, by kabi modversions (the __versions table)
    let imports = |m: &Path| -> Vec<String> {
        let o = common::run(common::kabi().arg("modversions").arg(m));
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1).map(str::to_string))
            .filter(|s| s != "module_layout")
            .collect()
    };
    let mut used: Vec<String> = imports(&a);
    used.extend(
        imports(&b)
            .into_iter()
            .filter(|s| s != "kabi_vendor_a_hello"),
    );
    used.sort();
    used.dedup();
    assert!(used.len() > 6, "{used:?}");
    let off: Vec<String> = vec![
        used[0].clone(),
        used[2].clone(),
        used[used.len() - 1].clone(),
    ];
    let tmp = tempfile::tempdir().unwrap();
    let mut list = String::from("[rhel9_x86_64_stablelist]\n");
    for s in used.iter().filter(|s| !off.contains(s)) {
        list.push_str(&format!("\t{s}\n"));
    }
    list.push_str("\tsome_other_symbol\n");
    std::fs::create_dir(tmp.path().join("kabi-current")).unwrap();
    let file = tmp.path().join("kabi-current/kabi_stablelist_x86_64");
    std::fs::write(&file, &list).unwrap();
    for list_arg in [file.clone(), tmp.path().join("kabi-current")] {
        let o = common::run(
            common::kabi()
                .args(["check", "--no-keys", "--root"])
                .arg(&root)
                .args(["-k", &kver, "--json", "--stablelist"])
                .arg(&list_arg)
                .arg(&a)
                .arg(&b),
        );
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let support = v["support"].as_array().unwrap();
        let mut found: Vec<String> = support
            .iter()
            .flat_map(|s| s["not_on_list"].as_array().unwrap().iter())
            .map(|o| o["symbol"].as_str().unwrap().to_string())
            .collect();
        found.sort();
        found.dedup();
        let mut want = off.clone();
        want.sort();
        assert_eq!(found, want, "{}", String::from_utf8_lossy(&o.stdout));
        // the verdicts are the loader's, unaffected (both load on their own kernel)
        assert_eq!(o.status.code(), Some(0));
        // providers are named from the target kernel
        for s in support {
            for o in s["not_on_list"].as_array().unwrap() {
                assert_eq!(o["provider"], "vmlinux", "{o}");
            }
        }
    }
    let o = common::run(
        common::kabi()
            .args(["check", "--no-keys", "--root"])
            .arg(&root)
            .args(["-k", &kver, "--stablelist"])
            .arg(&file)
            .arg(&a)
            .arg(&b),
    );
    let text = String::from_utf8_lossy(&o.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("support  kabi_vendor_a"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("not on kabi_stablelist_x86_64"), "{line}");
    // a list that is not one
    std::fs::write(&file, "[x]\n\tnot a symbol\n").unwrap();
    let o = common::run(
        common::kabi()
            .args(["check", "--no-keys", "--stablelist"])
            .arg(&file)
            .args(["--symvers"])
            .arg(root.join(format!("usr/src/linux-headers-{kver}/Module.symvers")))
            .arg(&a),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("line 2: not a symbol name"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
