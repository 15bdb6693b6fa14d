//! `kabi weak-modules` on real multi-kernel roots: the Debian cloud-amd64 kernels of roles
//! `other`, `old` and `new` of `common::kernels` (old and new have identical symvers; other
//! another `module_layout`) with "vendor" modules built by the test against each ABI's
//! headers (b needs a's export).

mod common;

use common::weak::{WeakRoot, vendor_modules, weak_root};
use common::{kabi, run};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Output;

fn weak_modules(r: &WeakRoot, args: &[&str], stdin: &[PathBuf], env: &[(&str, &str)]) -> Output {
    let mut cmd = kabi();
    cmd.arg("weak-modules")
        .arg("--basedir")
        .arg(&r.root)
        .arg("--verbose")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("run kabi weak-modules");
    let list: String = stdin.iter().map(|p| format!("{}\n", p.display())).collect();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(list.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Every module link below a kernel's weak-updates/: relative path → target.
fn links(dir: &Path) -> Vec<(String, String)> {
    let (l, _) = kabi::weak::links::read(dir);
    l.into_iter()
        .map(|(a, b)| (a.display().to_string(), b.display().to_string()))
        .collect()
}

/// A path of the root as a link written for it names it: where it will be once the root is
/// deployed, without the root's own path in front.
fn inside(r: &WeakRoot, p: &Path) -> String {
    Path::new("/")
        .join(p.strip_prefix(&r.root).unwrap())
        .display()
        .to_string()
}

fn vendor(r: &WeakRoot, abi: &str) -> Vec<PathBuf> {
    let d = r.extra(abi);
    vec![d.join("kabi_vendor_a.ko"), d.join("kabi_vendor_b.ko")]
}

/// A gzip-compressed cpio `newc` archive of empty files, after an uncompressed early one.
fn initramfs(files: &[&str]) -> Vec<u8> {
    fn entry(v: &mut Vec<u8>, name: &str) {
        let fields = [1, 0o100644, 0, 0, 1, 0, 0, 0, 0, 0, 0, name.len() + 1, 0];
        v.extend_from_slice(b"070701");
        for f in fields {
            v.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        v.extend_from_slice(name.as_bytes());
        v.push(0);
        while !v.len().is_multiple_of(4) {
            v.push(0);
        }
    }
    let mut early = Vec::new();
    entry(&mut early, "kernel/x86/microcode/AuthenticAMD.bin");
    entry(&mut early, "TRAILER!!!");
    early.resize(512, 0);
    let mut main = Vec::new();
    for f in files {
        entry(&mut main, f);
    }
    entry(&mut main, "TRAILER!!!");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&main).unwrap();
    early.extend(gz.finish().unwrap());
    early
}

fn setup(dir: &Path) -> Option<WeakRoot> {
    let kr = common::kernels::cloud()?;
    for abi in [kr.other, kr.old, kr.new] {
        vendor_modules(abi)?;
    }
    weak_root(dir, &[kr.other, kr.old, kr.new], &[kr.other, kr.old])
}

#[test]
fn vendor_modules_of_old_link_into_new_and_others_do_not() {
    let Some(kr) = common::kernels::cloud() else {
        return;
    };
    if !common::require_tool("gcc-12") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let Some(r) = setup(tmp.path()) else { return };
    let (k_other, k_old, k_new) = (r.kver(kr.other), r.kver(kr.old), r.kver(kr.new));

    // old's initramfs holds its vendor module; other's holds none
    let img = |k: &str| r.root.join(format!("boot/initramfs-{k}.img"));
    std::fs::write(
        img(k_old),
        initramfs(&[
            "init",
            &format!("usr/lib/modules/{k_old}/extra/kabi-vendor/kabi_vendor_a.ko"),
        ]),
    )
    .unwrap();
    std::fs::write(img(k_other), initramfs(&["init"])).unwrap();

    // old's vendor modules: compatible with new (identical symvers), not with other
    let o = weak_modules(&r, &["--add-modules"], &vendor(&r, kr.old), &[]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains(&format!(
            "weak-modules: {} holds changed modules (usr/lib/modules/{k_old}/extra/kabi-vendor/kabi_vendor_a.ko): rebuild it",
            img(k_old).display()
        )),
        "{}",
        text(&o)
    );
    assert!(
        !out.contains(&img(k_other).display().to_string()),
        "{}",
        text(&o)
    );
    assert!(
        out.contains(&format!(
            "Module kabi_vendor_a.ko from kernel {k_old} is compatible with kernel {k_new}"
        )),
        "{}",
        text(&o)
    );
    // other has its own build of the vendor modules: old's are not linked there
    assert!(
        out.contains(&format!(
            "found kabi_vendor_a.ko for {k_other} while installing for {k_old}, not linked"
        )),
        "{}",
        text(&o)
    );
    let l_new = links(&r.weak_updates(kr.new));
    assert_eq!(
        l_new,
        vec![
            (
                "kabi-vendor/kabi_vendor_a.ko".to_string(),
                inside(&r, &vendor(&r, kr.old)[0])
            ),
            (
                "kabi-vendor/kabi_vendor_b.ko".to_string(),
                inside(&r, &vendor(&r, kr.old)[1])
            ),
        ]
    );
    assert!(links(&r.weak_updates(kr.other)).is_empty());
    // new's indexes were rewritten: b depends on a through weak-updates
    let dep = std::fs::read_to_string(r.root.join("lib/modules").join(k_new).join("modules.dep"))
        .unwrap();
    assert!(
        dep.contains(
            "weak-updates/kabi-vendor/kabi_vendor_b.ko: weak-updates/kabi-vendor/kabi_vendor_a.ko"
        ),
        "{dep}"
    );

    // the same again changes nothing: the links keep their identity
    let ino =
        std::fs::symlink_metadata(r.weak_updates(kr.new).join("kabi-vendor/kabi_vendor_a.ko"))
            .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
            .unwrap();
    let o = weak_modules(
        &r,
        &["--add-modules", "--no-initramfs"],
        &vendor(&r, kr.old),
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    let ino2 =
        std::fs::symlink_metadata(r.weak_updates(kr.new).join("kabi-vendor/kabi_vendor_a.ko"))
            .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
            .unwrap();
    assert_eq!(
        ino, ino2,
        "a second run with the same input changes nothing"
    );

    // other's vendor modules: refused by old and new, as a group, and the state falls back
    let o = weak_modules(
        &r,
        &["--add-modules", "--no-initramfs"],
        &vendor(&r, kr.other),
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for (m, built) in ["kabi_vendor_a.ko", "kabi_vendor_b.ko"]
        .iter()
        .zip(vendor(&r, kr.other))
    {
        let line = out
            .lines()
            .find(|l| {
                l.starts_with(&format!(
                    "Module {m} from kernel {k_other} is not compatible with kernel {k_new} in symbols: "
                ))
            })
            .unwrap_or_else(|| panic!("no refusal of {m}: {}", text(&o)));
        assert!(line.contains(" module_layout"), "{line}");
        // the refusal names every CRC that changed, as kmod's tools find them
        let named: Vec<&str> = line
            .split_once(" in symbols: ")
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        let Some(changed) = common::weak::disagreeing(&built, kr.new) else {
            return;
        };
        assert!(changed.contains("module_layout"), "{changed:?}");
        for sym in &changed {
            assert!(named.contains(&sym.as_str()), "{sym} not named: {line}");
        }
    }
    assert_eq!(
        links(&r.weak_updates(kr.new)),
        l_new,
        "new keeps old's links"
    );
    assert!(links(&r.weak_updates(kr.old)).is_empty());

    // status tells both stories
    let st = run(kabi()
        .args(["weak", "status", "--json", "--root"])
        .arg(&r.root));
    let json: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(json["format"], 1);
    let k = json["kernels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kernel"] == k_new)
        .unwrap();
    let entries = k["entries"].as_array().unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e["state"] == "linked" && e["compatible"] == true && e["built_for"] == k_old)
    );
    assert!(entries.iter().any(|e| e["state"] == "not-linked"
        && e["compatible"] == false
        && e["built_for"] == k_other
        && e["reasons"].to_string().contains("module_layout")));
    assert_eq!(st.status.code(), Some(0), "nothing broken");

    // removing old's package: the files go, then --remove-modules drops the links
    for m in vendor(&r, kr.old) {
        std::fs::remove_file(&m).unwrap();
    }
    let st = run(kabi().args(["weak", "status", "--root"]).arg(&r.root));
    assert_eq!(st.status.code(), Some(1), "dangling links are reported");
    assert!(String::from_utf8_lossy(&st.stdout).contains("dangling"));
    let o = weak_modules(
        &r,
        &["--remove-modules", "--no-initramfs"],
        &vendor(&r, kr.old),
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(links(&r.weak_updates(kr.new)).is_empty(), "{}", text(&o));
    let dep = std::fs::read_to_string(r.root.join("lib/modules").join(k_new).join("modules.dep"))
        .unwrap();
    assert!(!dep.contains("kabi_vendor"), "new's indexes rewritten");
}

#[test]
fn add_kernel_takes_the_newest_compatible_copy_and_remove_kernel_cleans_up() {
    let Some(kr) = common::kernels::cloud() else {
        return;
    };
    if !common::require_tool("gcc-12") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let Some(r) = setup(tmp.path()) else { return };
    let k_new = r.kver(kr.new);
    // a file that is not a link must survive everything
    std::fs::create_dir_all(r.weak_updates(kr.new)).unwrap();
    std::fs::write(r.weak_updates(kr.new).join("README"), b"not ours").unwrap();

    let o = weak_modules(&r, &["--add-kernel", "--no-initramfs", k_new], &[], &[]);
    assert!(o.status.success(), "{}", text(&o));
    // other and old both offer kabi-vendor/kabi_vendor_a.ko: old's (newest, compatible) wins
    let l = links(&r.weak_updates(kr.new));
    assert_eq!(l.len(), 2, "{l:?}\n{}", text(&o));
    assert!(l.iter().all(|(_, t)| t.contains(r.kver(kr.old))), "{l:?}");

    // dry run of remove-kernel: nothing changes
    let o = weak_modules(&r, &["--remove-kernel", "--dry-run", k_new], &[], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(links(&r.weak_updates(kr.new)), l);

    let o = weak_modules(&r, &["--remove-kernel", "--no-initramfs", k_new], &[], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(links(&r.weak_updates(kr.new)).is_empty());
    assert_eq!(
        std::fs::read(r.weak_updates(kr.new).join("README")).unwrap(),
        b"not ours"
    );
    let dep = std::fs::read_to_string(r.root.join("lib/modules").join(k_new).join("modules.dep"))
        .unwrap();
    assert!(
        !dep.contains("kabi_vendor"),
        "indexes rewritten after --remove-kernel"
    );

    // b alone cannot be linked: its provider a is not offered with it
    let o = weak_modules(
        &r,
        &["--add-modules", "--no-initramfs"],
        &vendor(&r, kr.old)[1..],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(links(&r.weak_updates(kr.new)).is_empty(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("kabi_vendor_a_hello"),
        "{}",
        text(&o)
    );
}

/// The process is killed at every crash point of an --add-modules run: after each kill,
/// new's weak-updates/ is exactly as before or exactly as after, its modules.dep is whole,
/// and a run without a crash then reaches the final state.
#[test]
fn a_crash_at_any_point_leaves_the_old_or_the_new_state() {
    let Some(kr) = common::kernels::cloud() else {
        return;
    };
    if !common::require_tool("gcc-12") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let Some(r) = setup(tmp.path()) else { return };
    let w_new = r.weak_updates(kr.new);
    let before = links(&w_new);
    let expected: Vec<(String, String)> = ["kabi_vendor_a.ko", "kabi_vendor_b.ko"]
        .iter()
        .zip(vendor(&r, kr.old))
        .map(|(n, t)| (format!("kabi-vendor/{n}"), inside(&r, &t)))
        .collect();
    let mut points = 0;
    let after = loop {
        points += 1;
        assert!(points < 200, "the run never completes");
        let n = points.to_string();
        let o = weak_modules(
            &r,
            &["--add-modules", "--no-initramfs"],
            &vendor(&r, kr.old),
            &[("KABI_CRASH_AT", &n)],
        );
        let now = links(&w_new);
        let dep = r
            .root
            .join("lib/modules")
            .join(r.kver(kr.new))
            .join("modules.dep");
        let bin = std::fs::read(dep.with_extension("dep.bin")).unwrap();
        assert!(
            kabi::index::Index::parse(&bin).is_ok(),
            "modules.dep.bin is whole after a crash at point {n}"
        );
        if o.status.success() {
            break now;
        }
        assert!(
            now == before || now == expected,
            "crash at point {n}: neither before nor after: {now:?}"
        );
        // undo for the next round: back to the state before
        if now != before {
            let o = weak_modules(
                &r,
                &["--remove-kernel", "--no-initramfs", r.kver(kr.new)],
                &[],
                &[],
            );
            assert!(o.status.success(), "{}", text(&o));
        }
    };
    assert_eq!(after, expected);
    assert!(points > 3, "the run has crash points ({points})");
}

/// On a Debian-layout root the symvers file is only in the headers package
/// (`/usr/src/linux-headers-K/Module.symvers`, plain): the kernels are targets all the same,
/// and the links are the ones a RHEL-layout root gets.
#[test]
fn a_debian_layout_root_links_like_a_rhel_one() {
    let Some(kr) = common::kernels::cloud() else {
        return;
    };
    if !common::require_tool("gcc-12") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let Some(r) = setup(tmp.path()) else { return };
    for abi in [kr.other, kr.old, kr.new] {
        let k = r.kver(abi).to_string();
        let gz = r.symvers(abi);
        let plain = {
            use std::io::Read;
            let mut s = Vec::new();
            flate2::read::GzDecoder::new(std::fs::File::open(&gz).unwrap())
                .read_to_end(&mut s)
                .unwrap();
            s
        };
        let hdr = r.root.join(format!("usr/src/linux-headers-{k}"));
        std::fs::create_dir_all(&hdr).unwrap();
        std::fs::write(hdr.join("Module.symvers"), plain).unwrap();
        std::fs::remove_file(gz).unwrap();
    }
    let o = weak_modules(
        &r,
        &["--add-modules", "--no-initramfs"],
        &vendor(&r, kr.old),
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    let want: Vec<(String, String)> = ["kabi_vendor_a.ko", "kabi_vendor_b.ko"]
        .iter()
        .zip(vendor(&r, kr.old))
        .map(|(n, t)| (format!("kabi-vendor/{n}"), inside(&r, &t)))
        .collect();
    assert_eq!(links(&r.weak_updates(kr.new)), want, "{}", text(&o));
    assert!(links(&r.weak_updates(kr.other)).is_empty());
    // the same refusal of other's modules, in the same words
    let o = weak_modules(
        &r,
        &["--add-modules", "--no-initramfs"],
        &vendor(&r, kr.other),
        &[],
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains(&format!(
            "Module kabi_vendor_b.ko from kernel {} is not compatible with kernel {} in symbols:  module_layout",
            r.kver(kr.other),
            r.kver(kr.new)
        )),
        "{}",
        text(&o)
    );
}

/// Two modules of one module name built for different kernels, offered together: other's
/// `kabi_vendor_a` installed under another file name (`kabi_vendor_a_47.ko`) beside the
/// vendor modules, old's `kabi_vendor_a` and `kabi_vendor_b`. For new a symbol is provided by
/// any compatible module that exports it: old's `kabi_vendor_b` takes `kabi_vendor_a_hello`
/// from old's `kabi_vendor_a`, whatever other's copy is; only other's copy is refused. (Measured
/// with RHEL's weak-modules on the same root: `--add-modules` refuses `kabi_vendor_a_47.ko`
/// alone and falls back; `--add-kernel` links old's `kabi_vendor_a` and `kabi_vendor_b`.)
#[test]
fn a_symbol_is_provided_by_any_compatible_module_of_the_batch() {
    let Some(kr) = common::kernels::cloud() else {
        return;
    };
    if !common::require_tool("gcc-12") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let Some(r) = setup(tmp.path()) else { return };
    let (k_other, k_old, k_new) = (r.kver(kr.other), r.kver(kr.old), r.kver(kr.new));
    let old_a = r.extra(kr.other).join("kabi_vendor_a_47.ko");
    std::fs::copy(&vendor(&r, kr.other)[0], &old_a).unwrap();
    let mut batch = vendor(&r, kr.old);
    batch.push(old_a.clone());

    let o = weak_modules(&r, &["--add-modules", "--no-initramfs"], &batch, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let refused: Vec<&str> = out
        .lines()
        .filter(|l| l.contains(&format!("is not compatible with kernel {k_new}")))
        .collect();
    assert_eq!(refused.len(), 1, "{}", text(&o));
    assert!(
        refused[0].starts_with(&format!(
            "Module kabi_vendor_a_47.ko from kernel {k_other} is not compatible with kernel {k_new} in symbols:  module_layout"
        )),
        "{}",
        text(&o)
    );
    assert!(!out.contains("kabi_vendor_a_hello"), "{}", text(&o));
    // one module of the batch is refused: the kernel keeps its state, as the script does
    assert!(
        out.contains(&format!(
            "Falling back weak-modules state for kernel {k_new}"
        )),
        "{}",
        text(&o)
    );
    assert!(links(&r.weak_updates(kr.new)).is_empty(), "{}", text(&o));

    // every kernel's extra/: old's kabi_vendor_a and kabi_vendor_b are linked into new,
    // other's two builds of kabi_vendor_a are not
    let o = weak_modules(&r, &["--add-kernel", "--no-initramfs", k_new], &[], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let want: Vec<(String, String)> = ["kabi_vendor_a.ko", "kabi_vendor_b.ko"]
        .iter()
        .zip(vendor(&r, kr.old))
        .map(|(n, t)| (format!("kabi-vendor/{n}"), inside(&r, &t)))
        .collect();
    assert_eq!(links(&r.weak_updates(kr.new)), want, "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains(&format!(
            "Module kabi_vendor_b.ko from kernel {k_old} is compatible with kernel {k_new}"
        )),
        "{}",
        text(&o)
    );
}

/// `--add-kernel` where the newest copy of a module is incompatible and an older one is
/// compatible: kabi links the older copy, as its `--help` says. The target is a kernel with
/// other's symvers under another release (6.1.0-0-cloud-amd64, no real ABI: other's modules and symvers), so
/// other's vendor modules are compatible with it and old's (newer) are not. (RHEL's
/// weak-modules, run on the same root, links old's copies, finds them incompatible and
/// removes them: no copy at all.)
#[test]
fn add_kernel_links_the_older_compatible_copy_when_the_newest_is_refused() {
    let Some(kr) = common::kernels::cloud() else {
        return;
    };
    if !common::require_tool("gcc-12") {
        return;
    }
    let help = run(kabi().args(["weak-modules", "--help"]));
    let help = String::from_utf8_lossy(&help.stdout).replace("\n    ", " ");
    assert!(
        help.contains("--add-kernel links, for each module path, the newest compatible copy among the other kernels' extra/"),
        "{help}"
    );
    let tmp = tempfile::tempdir().unwrap();
    let Some(r) = setup(tmp.path()) else { return };
    let (k_other, k_old) = (r.kver(kr.other), r.kver(kr.old));
    let k_copy = common::weak::kver_of("0");
    let (d47, d_copy) = (
        r.module_dir(kr.other),
        r.root.join("lib/modules").join(&k_copy),
    );
    std::fs::create_dir_all(d_copy.join("extra")).unwrap();
    std::fs::create_dir_all(d_copy.join("weak-updates")).unwrap();
    // the modules as hard links (never written), the rest as copies
    let o = run(std::process::Command::new("cp")
        .arg("-al")
        .arg(d47.join("kernel"))
        .arg(&d_copy));
    assert!(o.status.success(), "{o:?}");
    for f in [
        "modules.builtin",
        "modules.builtin.modinfo",
        "modules.order",
    ] {
        std::fs::copy(d47.join(f), d_copy.join(f)).unwrap();
    }
    for f in ["symvers", "config"] {
        let from = r.root.join(format!("boot/{f}-{k_other}"));
        let from = if from.exists() {
            from
        } else {
            r.root.join(format!("boot/{f}-{k_other}.gz"))
        };
        let name = from
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace(k_other, &k_copy);
        std::fs::copy(&from, r.root.join("boot").join(name)).unwrap();
    }

    let o = weak_modules(&r, &["--add-kernel", "--no-initramfs", &k_copy], &[], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let want: Vec<(String, String)> = ["kabi_vendor_a.ko", "kabi_vendor_b.ko"]
        .iter()
        .zip(vendor(&r, kr.other))
        .map(|(n, t)| (format!("kabi-vendor/{n}"), inside(&r, &t)))
        .collect();
    assert_eq!(links(&d_copy.join("weak-updates")), want, "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains(&format!(
            "Module kabi_vendor_b.ko from kernel {k_other} is compatible with kernel {k_copy}"
        )),
        "{}",
        text(&o)
    );
    assert!(
        !out.contains(&format!("from kernel {k_old} is compatible")),
        "{}",
        text(&o)
    );
}

/// The index files systemd's `50-depmod.install` deletes on `remove`.
const INDEXES: [&str; 11] = [
    "modules.alias",
    "modules.alias.bin",
    "modules.builtin.bin",
    "modules.builtin.alias.bin",
    "modules.dep",
    "modules.dep.bin",
    "modules.devname",
    "modules.softdep",
    "modules.weakdep",
    "modules.symbols",
    "modules.symbols.bin",
];

/// Every path below `dir` (links not followed) but those below `except`, with its type,
/// size, inode and modification time.
fn listing(dir: &Path, except: &Path) -> Vec<(PathBuf, String)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.starts_with(except) {
                continue;
            }
            let m = std::fs::symlink_metadata(&p).unwrap();
            out.push((
                p.clone(),
                format!(
                    "{:?} {} {} {}.{}",
                    m.file_type(),
                    m.size(),
                    m.ino(),
                    m.mtime(),
                    m.mtime_nsec()
                ),
            ));
            if m.is_dir() {
                todo.push(p);
            }
        }
    }
    out.sort();
    out
}

/// RHEL's kernel `%preun` runs `kernel-install remove K`, whose `50-depmod.install` (systemd's
/// own, its `/lib/modules` replaced by the root's) deletes K's indexes, and then `weak-modules --remove-kernel K`. kabi removes K's links and writes no
/// index for K, and removes its own scan cache: nothing is left in K's module directory that
/// no package owns, so the package's removal can remove the directory. So at every point the
/// run is killed at (`KABI_CRASH_AT`), with the next run completing it. Nothing outside K's
/// module directory changes.
#[test]
fn remove_kernel_after_kernel_install_remove_writes_no_index() {
    let Some(kr) = common::kernels::cloud() else {
        return;
    };
    if !common::require_tool("gcc-12") {
        return;
    }
    let plugin = Path::new("/usr/lib/kernel/install.d/50-depmod.install");
    if !plugin.is_file() {
        assert!(
            !common::in_ci(),
            "systemd's {} is missing",
            plugin.display()
        );
        eprintln!("SKIPPED: no {}", plugin.display());
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let Some(r) = setup(tmp.path()) else { return };
    let k_new = r.kver(kr.new).to_string();
    let mdir = r.module_dir(kr.new);
    // systemd's plugin, with the root's module directories for /lib/modules (its only path),
    // and without modules.weakdep in its list, as systemd 252 has it in RHEL 9: kabi's depmod
    // writes that file, and kabi removes it
    let text_of = std::fs::read_to_string(plugin).unwrap();
    assert!(text_of.contains("\"/lib/modules/$KERNEL_VERSION/modules.dep\""));
    let lib_modules = r.root.join("lib/modules");
    let ours = tmp.path().join("50-depmod.install");
    let script: String = text_of
        .replace("/lib/modules", &lib_modules.display().to_string())
        .lines()
        .filter(|l| !l.contains("/modules.weakdep\""))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&ours, script).unwrap();
    let kernel_install_remove = || {
        let o = run(std::process::Command::new("sh")
            .arg(&ours)
            .args(["remove", &k_new])
            .env("KERNEL_INSTALL_VERBOSE", "0"));
        assert!(o.status.success(), "50-depmod.install remove: {}", text(&o));
        for n in INDEXES.iter().filter(|n| **n != "modules.weakdep") {
            assert!(!mdir.join(n).exists(), "50-depmod.install left {n}");
        }
        assert!(mdir.join("modules.weakdep").is_file());
    };
    let names = |d: &Path| -> std::collections::BTreeSet<String> {
        std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    let crash = cfg!(feature = "crash-injection");
    let mut point = 0;
    loop {
        point += 1;
        assert!(point < 100, "the run never completes");
        let o = weak_modules(&r, &["--add-kernel", "--no-initramfs", &k_new], &[], &[]);
        assert!(o.status.success(), "{}", text(&o));
        let linked = links(&r.weak_updates(kr.new));
        assert_eq!(linked.len(), 2, "{linked:?}");
        assert!(mdir.join(kabi::depmod::CACHE_NAME).is_file());
        kernel_install_remove();
        let before = names(&mdir);
        let outside = listing(&r.root, &mdir);
        if point == 1 {
            let o = weak_modules(&r, &["--dry-run", "--remove-kernel", &k_new], &[], &[]);
            assert!(o.status.success(), "{}", text(&o));
            let out = String::from_utf8_lossy(&o.stdout);
            assert!(
                out.contains(&format!(
                    "would leave the indexes of kernel {k_new} as they are"
                )) && !out.contains("would rewrite"),
                "{}",
                text(&o)
            );
            assert_eq!(names(&mdir), before, "a dry run changes nothing");
        }
        let n = point.to_string();
        let env: &[(&str, &str)] = if crash { &[("KABI_CRASH_AT", &n)] } else { &[] };
        let o = weak_modules(&r, &["--remove-kernel", "--no-initramfs", &k_new], &[], env);
        let completed = o.status.success();
        if !completed {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(
                o.status.signal(),
                Some(6),
                "killed at point {n} (abort), not failed: {}",
                text(&o)
            );
            let now = links(&r.weak_updates(kr.new));
            assert!(
                now.is_empty() || now == linked,
                "crash at point {n}: neither before nor after: {now:?}"
            );
            // the next command completes it
            let o = weak_modules(&r, &["--remove-kernel", "--no-initramfs", &k_new], &[], &[]);
            assert!(
                o.status.success(),
                "after a crash at point {n}: {}",
                text(&o)
            );
        }
        assert!(links(&r.weak_updates(kr.new)).is_empty());
        let mut expected = before.clone();
        for unowned in [kabi::depmod::CACHE_NAME, "modules.weakdep"] {
            assert!(expected.remove(unowned), "no {unowned} before");
        }
        assert_eq!(
            names(&mdir),
            expected,
            "crash at point {n}: the module directory holds what the package and the links left, \
             no index and none of kabi's files"
        );
        assert_eq!(
            listing(&r.root, &mdir),
            outside,
            "crash at point {n}: something outside the kernel's module directory changed"
        );
        if completed {
            break;
        }
    }
    eprintln!(
        "--remove-kernel of a kernel being removed: killed at {} points",
        point - 1
    );
    assert!(!crash || point > 3, "the run has crash points ({point})");

    // installed, and indexed by its binary index alone (the text modules.dep deleted): the
    // indexes modprobe reads follow the links
    let o = weak_modules(&r, &["--add-kernel", "--no-initramfs", &k_new], &[], &[]);
    assert!(o.status.success(), "{}", text(&o));
    std::fs::remove_file(mdir.join("modules.dep")).unwrap();
    let o = weak_modules(&r, &["--remove-kernel", "--no-initramfs", &k_new], &[], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(links(&r.weak_updates(kr.new)).is_empty());
    let dep = std::fs::read_to_string(mdir.join("modules.dep")).unwrap();
    assert!(
        !dep.is_empty() && !dep.contains("kabi_vendor"),
        "indexes rewritten"
    );
    let bin = std::fs::read(mdir.join("modules.dep.bin")).unwrap();
    assert!(
        !bin.windows(11).any(|w| w == b"kabi_vendor"),
        "modules.dep.bin no longer names the links"
    );

    // a temporary file a killed writer left in a kernel no run changes: a dry run leaves it,
    // the next run (under the lock) removes it
    let tmp_name = r.module_dir(kr.old).join(".kabi-tmp.modules.dep.999999.0");
    std::fs::write(&tmp_name, b"half").unwrap();
    let o = weak_modules(&r, &["--dry-run", "--remove-kernel", &k_new], &[], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(tmp_name.exists(), "a dry run removes nothing");
    let o = weak_modules(&r, &["--remove-kernel", "--no-initramfs", &k_new], &[], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        !tmp_name.exists(),
        "the killed writer's temporary file is left"
    );
}
