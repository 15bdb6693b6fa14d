//! kabi on hostile and damaged trees, as an adversary and an unlucky administrator would
//! leave them: symbolic links where directories are expected, FIFOs, loops, huge and sparse
//! files, decompression bombs, `..` in paths, a kill at every step. Each test checks what
//! happened outside the root (a listing of OUTSIDE before and after: paths, types, link
//! targets, sizes, mtimes), not only inside, and that no command hangs (each runs under a
//! deadline).
//!
//! The roots are real: the Debian cloud-amd64 kernels of roles `old` and `new` of
//! `common::kernels` (identical symvers) with vendor modules built against old's headers
//! (tests/common/weak.rs).

mod common;

use common::weak::{WeakRoot, vendor_modules, weak_root};
use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Everything below `dir`, without following links: (path, kind, link target, size, mtime).
fn listing(dir: &Path) -> Vec<(String, char, String, u64, i64, i64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let t = m.file_type();
            let kind = if t.is_symlink() {
                'l'
            } else if t.is_dir() {
                stack.push(p.clone());
                'd'
            } else if t.is_file() {
                'f'
            } else {
                'o'
            };
            let target = if t.is_symlink() {
                std::fs::read_link(&p).unwrap().display().to_string()
            } else {
                String::new()
            };
            out.push((
                p.strip_prefix(dir).unwrap().display().to_string(),
                kind,
                target,
                if t.is_dir() { 0 } else { m.size() },
                m.mtime(),
                m.mtime_nsec(),
            ));
        }
    }
    out.sort();
    out
}

/// A directory outside the root with a bit of everything in it.
fn outside(tmp: &Path) -> PathBuf {
    let o = tmp.join("OUTSIDE");
    std::fs::create_dir_all(o.join("sub/deeper")).unwrap();
    std::fs::write(o.join("file"), b"precious").unwrap();
    std::fs::write(o.join("sub/x.ko"), b"not a module").unwrap();
    symlink("/nonexistent", o.join("dangling.ko")).unwrap();
    symlink("file", o.join("sub/link")).unwrap();
    o
}

/// Run with a deadline: a hang is a failure, never a stuck test.
fn run_within(cmd: &mut Command, stdin: &[u8], secs: u64) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let mut input = child.stdin.take().unwrap();
    let _ = input.write_all(stdin);
    drop(input);
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > Duration::from_secs(secs) {
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            panic!(
                "{cmd:?} did not finish in {secs} s (it hangs)\nstderr: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn weak(r: &WeakRoot, args: &[&str], stdin: &str) -> Output {
    let mut c = common::kabi();
    c.arg("weak-modules")
        .arg("--basedir")
        .arg(&r.root)
        .args(args);
    run_within(&mut c, stdin.as_bytes(), 120)
}

fn vendor_list(r: &WeakRoot) -> String {
    let kr = common::kernels::cloud().expect("the kernels by role, resolved by setup()");
    ["kabi_vendor_a.ko", "kabi_vendor_b.ko"]
        .iter()
        .map(|m| format!("{}\n", r.extra(kr.old).join(m).display()))
        .collect()
}

fn setup(tmp: &Path) -> Option<WeakRoot> {
    let kr = common::kernels::cloud()?;
    if !common::require_tool("gcc-12") || !common::require_tool("depmod") {
        return None;
    }
    vendor_modules(kr.old)?;
    weak_root(&tmp.join("root"), &[kr.old, kr.new], &[kr.old])
}

/// The module links of a kernel: link path → target.
fn links(r: &WeakRoot, abi: &str) -> Vec<(String, String)> {
    let (l, _) = kabi::weak::links::read(&r.weak_updates(abi));
    l.into_iter()
        .map(|(a, b)| (a.display().to_string(), b.display().to_string()))
        .collect()
}

/// Kernel `abi`'s links and its modules.dep agree (every link whose target exists is in
/// modules.dep, nothing else of weak-updates/ is), and nothing a run leaves when it is
/// killed remains: no staging or leftover tree, no intent record, no temporary file.
fn agree(r: &WeakRoot, abi: &str) {
    let dir = r.module_dir(abi);
    let dep = std::fs::read_to_string(dir.join("modules.dep")).unwrap();
    let in_dep: BTreeSet<String> = dep
        .lines()
        .filter_map(|l| l.split(':').next())
        .filter_map(|p| p.strip_prefix("weak-updates/"))
        .map(str::to_string)
        .collect();
    let live: BTreeSet<String> = links(r, abi)
        .into_iter()
        .filter(|(_, t)| r.root.join(t.trim_start_matches('/')).is_file())
        .map(|(l, _)| l)
        .collect();
    assert_eq!(
        in_dep, live,
        "kernel {abi}: modules.dep and weak-updates/ disagree"
    );
    for e in std::fs::read_dir(&dir).unwrap() {
        let n = e.unwrap().file_name().to_string_lossy().into_owned();
        let left = n.starts_with(".weak-updates.kabi-")
            || n.starts_with("weak-updates.kabi-leftover-")
            || n == ".kabi-weak-txn"
            || n.starts_with(".kabi-tmp.")
            || (n.starts_with('.') && n.ends_with(".tmp"));
        assert!(!left, "kernel {abi}: {n} was left behind");
    }
    // kmod's modprobe reads the indexes the same way
    for (l, _) in links(r, abi) {
        let name = Path::new(&l)
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let o = common::run(
            Command::new("modprobe")
                .args(["-n", "-v", "-d"])
                .arg(&r.root)
                .args(["-S", r.kver(abi), &name]),
        );
        assert!(
            o.status.success() && String::from_utf8_lossy(&o.stdout).contains(&l),
            "kmod's modprobe does not find {l}: {}",
            text(&o)
        );
    }
}

#[test]
fn a_staging_link_stops_the_run_and_nothing_outside_changes() {
    let Some(kr) = common::kernels::cloud() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let Some(r) = setup(tmp.path()) else { return };
    let out = outside(tmp.path());
    let before = listing(&out);
    let k_new = r.kver(kr.new).to_string();
    let staging = r.module_dir(kr.new).join(".weak-updates.kabi-1");
    symlink(&out, &staging).unwrap();
    for args in [
        vec!["--remove-kernel", "--no-initramfs", &k_new],
        vec!["--add-kernel", "--dry-run", &k_new],
        vec!["--add-kernel", "--no-initramfs", &k_new],
    ] {
        let o = weak(&r, &args, "");
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(&staging.display().to_string())
                && err.contains("is a symbolic link where a directory is expected"),
            "{}",
            text(&o)
        );
        assert_eq!(
            listing(&out),
            before,
            "{args:?} changed something outside the root"
        );
    }
    assert!(
        staging.is_symlink(),
        "the planted link is left for the administrator"
    );
}

#[test]
fn a_weak_updates_link_stops_every_command() {
    let Some(kr) = common::kernels::cloud() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let Some(r) = setup(tmp.path()) else { return };
    let out = outside(tmp.path());
    let before = listing(&out);
    let k_new = r.kver(kr.new).to_string();
    let w = r.weak_updates(kr.new);
    std::fs::remove_dir(&w).unwrap();
    symlink(&out, &w).unwrap();
    let list = vendor_list(&r);
    for (args, stdin) in [
        (vec!["--add-kernel", "--no-initramfs", &k_new], ""),
        (vec!["--add-modules", "--no-initramfs"], list.as_str()),
        (vec!["--remove-modules", "--no-initramfs"], list.as_str()),
        (vec!["--remove-kernel", "--no-initramfs", &k_new], ""),
    ] {
        let o = weak(&r, &args, stdin);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(&format!(
                "{}: is a symbolic link where a directory is expected",
                w.display()
            )),
            "{}",
            text(&o)
        );
        assert_eq!(
            listing(&out),
            before,
            "{args:?} changed something outside the root"
        );
    }
    let st = run_within(
        common::kabi()
            .args(["weak", "status", "--root"])
            .arg(&r.root),
        b"",
        60,
    );
    assert_eq!(st.status.code(), Some(2), "{}", text(&st));
    assert!(String::from_utf8_lossy(&st.stderr).contains("is a symbolic link"));
    assert_eq!(listing(&out), before);
    // nothing was made beside it either
    let names: Vec<String> = std::fs::read_dir(r.module_dir(kr.new))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("weak-updates") && n != "weak-updates")
        .collect();
    assert!(names.is_empty(), "{names:?}");
}

/// A crash at each crash point of an --add-modules run (KABI_CRASH_AT=N), then the next
/// command, in turn weak-modules itself, depmod and verify, and in a second pass kabi load:
/// afterwards links and indexes agree and nothing of the crashed run remains.
#[test]
fn a_crash_at_every_point_is_completed_by_the_next_command() {
    let Some(kr) = common::kernels::cloud() else {
        return;
    };
    assert!(
        cfg!(feature = "crash-injection") || !common::in_ci(),
        "build the tests with --features crash-injection (scripts/test.sh does)"
    );
    if !cfg!(feature = "crash-injection") {
        eprintln!("SKIPPED: no crash points without --features crash-injection");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let Some(r) = setup(tmp.path()) else { return };
    let out = outside(tmp.path());
    let outside_before = listing(&out);
    let k_new = r.kver(kr.new).to_string();
    let list = vendor_list(&r);
    let count = tmp.path().join("count");
    let reset = |r: &WeakRoot| {
        let o = weak(r, &["--remove-kernel", "--no-initramfs", &k_new], "");
        assert!(o.status.success(), "{}", text(&o));
        assert!(links(r, kr.new).is_empty());
    };
    let mut completions = [0usize; 4];
    let mut n = 0;
    // pass 0: the next command in turn weak-modules, depmod, verify; pass 1: always kabi load
    for pass in 0..2 {
        reset(&r);
        n = 0;
        loop {
            n += 1;
            assert!(n < 100, "the run never completes");
            let mut c = common::kabi();
            c.arg("weak-modules")
                .args(["--add-modules", "--no-initramfs", "--basedir"])
                .arg(&r.root)
                .env("KABI_CRASH_AT", n.to_string())
                .env("KABI_CRASH_COUNT", &count);
            let o = run_within(&mut c, list.as_bytes(), 120);
            if o.status.success() {
                agree(&r, kr.new);
                assert_eq!(links(&r, kr.new).len(), 2);
                break;
            }
            // the next command, whichever it is, puts the kernel in order
            let next = if pass == 0 { n % 3 } else { 3 };
            let o = match next {
                0 => weak(&r, &["--add-modules", "--no-initramfs"], &list),
                1 => run_within(
                    common::kabi()
                        .args(["depmod", "--root"])
                        .arg(&r.root)
                        .arg(&k_new),
                    b"",
                    120,
                ),
                2 => run_within(
                    common::kabi()
                        .args(["verify", "-k", &k_new, "--root"])
                        .arg(&r.root),
                    b"",
                    120,
                ),
                // kabi load in a user namespace of its own: without CAP_SYS_MODULE it cannot
                // insert anything into this machine's kernel, whatever it decides
                _ => run_within(
                    Command::new("unshare")
                        .args(["--user", "--map-root-user"])
                        .arg(env!("CARGO_BIN_EXE_kabi"))
                        .args(["load", "--root"])
                        .arg(&r.root)
                        .args(["-S", &k_new, "kabi_vendor_a"]),
                    b"",
                    120,
                ),
            };
            assert!(
                o.status.code() == Some(0) || (next >= 2 && o.status.code() == Some(1)),
                "after a crash at point {n}: {}",
                text(&o)
            );
            agree(&r, kr.new);
            let l = links(&r, kr.new).len();
            assert!(l == 0 || l == 2, "crash at point {n}: {l} links");
            if l == 2 {
                completions[next] += 1;
            }
            reset(&r);
            agree(&r, kr.new);
        }
    }
    let points: usize = std::fs::read_to_string(&count).unwrap().parse().unwrap();
    assert!(n > 5 && points >= n - 1, "{n} runs, {points} crash points");
    // some crashes left the change half done, and each kind of command completed one
    assert!(
        completions.iter().all(|&c| c > 0),
        "completions by weak-modules, depmod, verify, load: {completions:?}"
    );
    assert_eq!(listing(&out), outside_before);
}

/// kill -9 at random moments of --add-modules and --remove-kernel runs: after each, the
/// next run leaves links and indexes in agreement.
#[test]
fn random_kills_leave_links_and_indexes_in_agreement() {
    let Some(kr) = common::kernels::cloud() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let Some(r) = setup(tmp.path()) else { return };
    let k_new = r.kver(kr.new).to_string();
    let list = vendor_list(&r);
    // how long a run takes, to kill inside it
    let t = Instant::now();
    assert!(
        weak(&r, &["--add-modules", "--no-initramfs"], &list)
            .status
            .success()
    );
    let span = t.elapsed().as_micros() as u64;
    let mut seed = 0x9e3779b97f4a7c15u64;
    for round in 0..15 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let (args, stdin): (Vec<&str>, &str) = if round % 2 == 0 {
            (vec!["--remove-kernel", "--no-initramfs", &k_new], "")
        } else {
            (vec!["--add-modules", "--no-initramfs"], list.as_str())
        };
        let mut child = common::kabi()
            .arg("weak-modules")
            .arg("--basedir")
            .arg(&r.root)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        std::thread::sleep(Duration::from_micros(seed % span.max(1)));
        let _ = child.kill();
        let _ = child.wait();
        let o = weak(&r, &args, stdin);
        assert!(o.status.success(), "round {round}: {}", text(&o));
        agree(&r, kr.new);
    }
}

/// --dry-run touches nothing at all: not the leftovers of a crashed run, not its record.
#[test]
fn a_dry_run_touches_nothing() {
    let Some(kr) = common::kernels::cloud() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let Some(r) = setup(tmp.path()) else { return };
    let k_new = r.kver(kr.new).to_string();
    let dir = r.module_dir(kr.new);
    std::fs::create_dir_all(dir.join(".weak-updates.kabi-999/x")).unwrap();
    symlink(
        "/lib/modules/x.ko",
        dir.join(".weak-updates.kabi-999/x/x.ko"),
    )
    .unwrap();
    std::fs::write(dir.join(".kabi-weak-txn"), b"{damaged").unwrap();
    std::fs::write(dir.join(".modules.dep.12.34.tmp"), b"half").unwrap();
    let before = listing(&r.root);
    for (args, stdin) in [
        (vec!["--add-modules", "--dry-run"], vendor_list(&r)),
        (vec!["--add-kernel", "--dry-run", &k_new], String::new()),
        (vec!["--remove-kernel", "--dry-run", &k_new], String::new()),
    ] {
        let o = weak(&r, &args, &stdin);
        assert!(o.status.success(), "{args:?}: {}", text(&o));
        assert_eq!(listing(&r.root), before, "{args:?} changed the root");
    }
    let o = weak(&r, &["--add-modules", "--dry-run"], &vendor_list(&r));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("would link weak-updates/kabi-vendor/kabi_vendor_a.ko")
            && out.contains(&format!("would rewrite the indexes of kernel {k_new}")),
        "{}",
        text(&o)
    );
    // the real run cleans all of it up
    let o = weak(&r, &["--add-modules", "--no-initramfs"], &vendor_list(&r));
    assert!(o.status.success(), "{}", text(&o));
    agree(&r, kr.new);
    assert_eq!(links(&r, kr.new).len(), 2);
}

#[test]
fn module_paths_outside_the_root_are_refused() {
    let Some(kr) = common::kernels::cloud() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let Some(r) = setup(tmp.path()) else { return };
    let out = outside(tmp.path());
    std::fs::copy(
        r.extra(kr.old).join("kabi_vendor_a.ko"),
        out.join("vendor_a.ko"),
    )
    .unwrap();
    let before = listing(&out);
    let root_before = listing(&r.root);
    for line in [
        format!("/../../../../../{}/vendor_a.ko", out.display()),
        format!("{}/../OUTSIDE/vendor_a.ko", r.root.display()),
        out.join("vendor_a.ko").display().to_string(),
    ] {
        let o = weak(
            &r,
            &["--add-modules", "--no-initramfs"],
            &format!("{line}\n"),
        );
        assert_eq!(o.status.code(), Some(1), "{line}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("not below the root"),
            "{}",
            text(&o)
        );
        assert_eq!(listing(&out), before, "{line}");
        assert_eq!(listing(&r.root), root_before, "{line}");
    }
}

#[test]
fn a_directory_link_in_weak_updates_is_kept_and_not_gone_through() {
    let Some(kr) = common::kernels::cloud() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let Some(r) = setup(tmp.path()) else { return };
    let out = outside(tmp.path());
    let before = listing(&out);
    let k_new = r.kver(kr.new).to_string();
    symlink(&out, r.weak_updates(kr.new).join("kabi-vendor")).unwrap();
    for _ in 0..2 {
        let o = weak(
            &r,
            &["--add-kernel", "--no-initramfs", "--verbose", &k_new],
            "",
        );
        assert!(o.status.success(), "{}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stdout)
                .contains("weak-updates/kabi-vendor is a symbolic link"),
            "{}",
            text(&o)
        );
        assert_eq!(
            std::fs::read_link(r.weak_updates(kr.new).join("kabi-vendor")).unwrap(),
            out
        );
        assert_eq!(listing(&out), before);
    }
}

#[test]
fn depmod_survives_damaged_caches_huge_sparse_and_special_files() {
    let Some(kr) = common::kernels::cloud() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let Some(r) = setup(tmp.path()) else { return };
    let k_new = r.kver(kr.new).to_string();
    let dir = r.module_dir(kr.new);
    let depmod = |extra: &[&str]| {
        run_within(
            common::kabi()
                .args(["depmod", "--root"])
                .arg(&r.root)
                .args(extra)
                .arg(&k_new),
            b"",
            120,
        )
    };
    let o = depmod(&[]);
    assert!(o.status.success(), "{}", text(&o));
    let good = std::fs::read(dir.join("modules.dep")).unwrap();
    // item 4: a cache whose first block claims 2^40 bytes
    let cache = dir.join("modules.kabi-cache");
    let mut c = std::fs::read(&cache).unwrap();
    let at = 8 + 4 + 4 + u32::from_le_bytes(c[12..16].try_into().unwrap()) as usize;
    c[at..at + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    std::fs::write(&cache, &c).unwrap();
    for _ in 0..2 {
        let o = depmod(&[]);
        assert!(o.status.success(), "{}", text(&o));
        assert_eq!(std::fs::read(dir.join("modules.dep")).unwrap(), good);
    }
    assert_ne!(
        std::fs::read(&cache).unwrap(),
        c,
        "the damaged cache was rewritten"
    );
    // item 5: a 1 TiB sparse module, and a 3 GiB one: refused by size, nothing allocated
    for (name, size) in [("huge.ko", 1u64 << 40), ("sparse.ko", 3 << 30)] {
        let f = std::fs::File::create(dir.join("kernel").join(name)).unwrap();
        f.set_len(size).unwrap();
    }
    // item 7: a FIFO as a module and in place of an input file
    let fifo = |p: &Path| {
        rustix::fs::mknodat(
            rustix::fs::CWD,
            p,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap()
    };
    fifo(&dir.join("kernel/fifo.ko"));
    std::fs::rename(
        dir.join("modules.builtin"),
        dir.join("modules.builtin.saved"),
    )
    .unwrap();
    fifo(&dir.join("modules.builtin"));
    let o = depmod(&["-v"]);
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    for want in [
        "huge.ko: is 1099511627776 bytes, more than the 402653184 bytes",
        "sparse.ko: is 3221225472 bytes",
        "unsupported file type",
        "could not open modules.builtin",
    ] {
        assert!(err.contains(want), "no {want:?}: {}", text(&o));
    }
    std::fs::remove_file(dir.join("modules.builtin")).unwrap();
    std::fs::rename(
        dir.join("modules.builtin.saved"),
        dir.join("modules.builtin"),
    )
    .unwrap();
    // verify and weak status do not hang on a FIFO where a module or an index is expected
    let w = r.weak_updates(kr.new);
    fifo(&w.join("fifo.ko"));
    std::fs::rename(dir.join("modules.dep"), dir.join("modules.dep.saved")).unwrap();
    std::fs::rename(
        dir.join("modules.dep.bin"),
        dir.join("modules.dep.bin.saved"),
    )
    .unwrap();
    fifo(&dir.join("modules.dep"));
    fifo(&dir.join("modules.dep.bin"));
    let conf = r.root.join("etc/modules-load.d");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(conf.join("x.conf"), "dummy\n").unwrap();
    let o = run_within(
        common::kabi()
            .args(["verify", "-k", &k_new, "--root"])
            .arg(&r.root),
        b"",
        120,
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("is a FIFO, not a regular file"),
        "{}",
        text(&o)
    );
    let o = run_within(
        common::kabi()
            .args(["weak", "status", "--root"])
            .arg(&r.root),
        b"",
        120,
    );
    assert!(o.status.code().is_some(), "{}", text(&o));
    for n in ["modules.dep", "modules.dep.bin"] {
        std::fs::remove_file(dir.join(n)).unwrap();
        std::fs::rename(dir.join(format!("{n}.saved")), dir.join(n)).unwrap();
    }
}

#[test]
fn loops_links_and_temporaries_in_the_tree() {
    let Some(kr) = common::kernels::cloud() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let Some(r) = setup(tmp.path()) else { return };
    let out = outside(tmp.path());
    let before = listing(&out);
    let k_new = r.kver(kr.new).to_string();
    let dir = r.module_dir(kr.new);
    let depmod = || {
        run_within(
            common::kabi()
                .args(["depmod", "--root"])
                .arg(&r.root)
                .arg(&k_new),
            b"",
            120,
        )
    };
    assert!(depmod().status.success());
    let good = std::fs::read(dir.join("modules.dep")).unwrap();
    // item 11: two directory loops under kernel/
    symlink("..", dir.join("kernel/fs/loop-up")).unwrap();
    symlink(".", dir.join("kernel/net/loop-here")).unwrap();
    let o = depmod();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read(dir.join("modules.dep")).unwrap(),
        good,
        "a loop adds nothing"
    );
    assert_eq!(listing(&out), before);
    // item 10: temporaries of killed runs, this version's and older ones'
    for t in [".modules.dep.123.456789.tmp", ".kabi-tmp.modules.alias.7.0"] {
        std::fs::write(dir.join(t), b"half written").unwrap();
    }
    let o = depmod();
    assert!(o.status.success(), "{}", text(&o));
    for t in [".modules.dep.123.456789.tmp", ".kabi-tmp.modules.alias.7.0"] {
        assert!(!dir.join(t).exists(), "{t} left behind");
    }
    // item 12: an index that is a link to a file outside: replaced, never written through
    std::fs::copy(dir.join("modules.dep"), out.join("file")).unwrap();
    let before = listing(&out);
    std::fs::remove_file(dir.join("modules.dep")).unwrap();
    symlink(out.join("file"), dir.join("modules.dep")).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let o = depmod();
    assert!(o.status.success(), "{}", text(&o));
    assert!(!dir.join("modules.dep").is_symlink());
    assert_eq!(std::fs::read(dir.join("modules.dep")).unwrap(), good);
    assert_eq!(listing(&out), before, "the file outside was touched");
    // a release that is a path
    for bad in ["../../../OUTSIDE", "..", "a/b"] {
        let o = run_within(
            common::kabi()
                .args(["depmod", "--root"])
                .arg(&r.root)
                .arg(bad),
            b"",
            60,
        );
        assert_eq!(o.status.code(), Some(1), "{bad}: {}", text(&o));
        assert_eq!(listing(&out), before);
    }
}

/// item 9: depmod and weak-modules run side by side take the same lock: the indexes never
/// lack the links just made.
#[test]
fn depmod_and_weak_modules_take_turns() {
    let Some(kr) = common::kernels::cloud() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let Some(r) = setup(tmp.path()) else { return };
    let k_new = r.kver(kr.new).to_string();
    let list = vendor_list(&r);
    for round in 0..4 {
        let root = r.root.clone();
        let k = k_new.clone();
        let d = std::thread::spawn(move || {
            for _ in 0..3 {
                let o = run_within(
                    common::kabi().args(["depmod", "--root"]).arg(&root).arg(&k),
                    b"",
                    120,
                );
                assert!(o.status.success(), "{}", text(&o));
            }
        });
        let args = if round % 2 == 0 {
            vec!["--add-modules", "--no-initramfs"]
        } else {
            vec!["--remove-modules", "--no-initramfs"]
        };
        // remove-modules drops links only when the files are gone: alternate add and remove
        // by moving the files away and back
        if round % 2 == 1 {
            for m in ["kabi_vendor_a.ko", "kabi_vendor_b.ko"] {
                std::fs::rename(r.extra(kr.old).join(m), tmp.path().join(m)).unwrap();
            }
        }
        let o = weak(&r, &args, &list);
        assert!(o.status.success(), "{}", text(&o));
        d.join().unwrap();
        if round % 2 == 1 {
            for m in ["kabi_vendor_a.ko", "kabi_vendor_b.ko"] {
                std::fs::rename(tmp.path().join(m), r.extra(kr.old).join(m)).unwrap();
            }
        }
        agree(&r, kr.new);
    }
}

/// A cpio `newc` header for a regular file of `size` bytes named `name`.
fn cpio_header(name: &str, size: u64) -> Vec<u8> {
    let fields = [
        1,
        0o100644,
        0,
        0,
        1,
        0,
        size,
        0,
        0,
        0,
        0,
        name.len() as u64 + 1,
        0,
    ];
    let mut v = b"070701".to_vec();
    for f in fields {
        v.extend_from_slice(format!("{f:08x}").as_bytes());
    }
    v.extend_from_slice(name.as_bytes());
    v.push(0);
    while !v.len().is_multiple_of(4) {
        v.push(0);
    }
    v
}

/// Peak resident memory of a command, in MiB (GNU time's `%M`), with its output.
fn peak_rss(cmd: &[&std::ffi::OsStr], threads: &str) -> (u64, Output) {
    let mut c = Command::new("/usr/bin/time");
    c.args(["-f", "PEAK-RSS %M"])
        .args(cmd)
        .env("RAYON_NUM_THREADS", threads);
    let o = run_within(&mut c, b"", 600);
    let err = String::from_utf8_lossy(&o.stderr);
    let kb: u64 = err
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("PEAK-RSS "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS: {}", text(&o)));
    (kb / 1024, o)
}

/// item 6: decompression bombs in a module tree and an initramfs image nested two levels
/// deep: every thread shares one memory budget, so the peak stays the same at 2 and at 16
/// threads, well below what the bombs would take; an image that is a link to /dev/zero is
/// refused without being read.
#[test]
fn bombs_stay_within_the_memory_budget() {
    let Some(kr) = common::kernels::cloud() else {
        return;
    };
    if !common::require_tool("/usr/bin/time") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let Some(r) = setup(tmp.path()) else { return };
    let k_new = r.kver(kr.new).to_string();
    let dir = r.module_dir(kr.new);
    let gib = 1u64 << 30;
    let bomb = zstd::stream::encode_all(std::io::Read::take(std::io::repeat(0), gib), 3).unwrap();
    assert!(bomb.len() < 200_000, "{}", bomb.len());
    for i in 0..8 {
        std::fs::write(dir.join(format!("kernel/bomb{i}.ko.zst")), &bomb).unwrap();
    }
    let exe = std::ffi::OsString::from(env!("CARGO_BIN_EXE_kabi"));
    let root = r.root.clone().into_os_string();
    let mut peaks = Vec::new();
    for jobs in ["2", "16"] {
        let (mib, o) = peak_rss(
            &[
                &exe,
                "depmod".as_ref(),
                "--no-cache".as_ref(),
                "-j".as_ref(),
                jobs.as_ref(),
                "--root".as_ref(),
                &root,
                k_new.as_ref(),
            ],
            jobs,
        );
        assert!(o.status.success(), "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(
            err.matches("exceeds the limit of").count(),
            8,
            "every bomb is named: {}",
            text(&o)
        );
        eprintln!("kabi depmod -j {jobs}, 8 zstd bombs of 1 GiB: peak RSS {mib} MiB");
        peaks.push(mib);
    }
    // kabi check reads the kernel's whole tree (bombs included) to know its ABI
    let bombs_dir = tmp.path().join("bombs");
    std::fs::create_dir_all(&bombs_dir).unwrap();
    for i in 0..4 {
        std::fs::write(bombs_dir.join(format!("b{i}.ko.zst")), &bomb).unwrap();
    }
    for threads in ["2", "16"] {
        let (mib, o) = peak_rss(
            &[
                &exe,
                "check".as_ref(),
                "--root".as_ref(),
                &root,
                "-k".as_ref(),
                k_new.as_ref(),
                bombs_dir.as_os_str(),
            ],
            threads,
        );
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        eprintln!(
            "kabi check on {threads} threads, a tree and 4 modules that are zstd bombs of 1 GiB: peak RSS {mib} MiB"
        );
        peaks.push(mib);
    }
    // an initramfs image nested two levels deep, holding a 1 GiB file
    let mut cpio = cpio_header("big", gib);
    let tail = cpio_header("TRAILER!!!", 0);
    let stream = std::io::Read::chain(
        std::io::Read::chain(&cpio[..], std::io::Read::take(std::io::repeat(0), gib)),
        &tail[..],
    );
    let inner = zstd::stream::encode_all(stream, 3).unwrap();
    cpio.clear();
    let outer = zstd::stream::encode_all(&inner[..], 3).unwrap();
    std::fs::write(r.root.join(format!("boot/initramfs-{k_new}.img")), &outer).unwrap();
    // a link to /dev/zero leads to the root's own /dev/zero: here a FIFO, never opened for
    // reading (on the host's /dev/zero the old code grew past 6 GB)
    symlink(
        "/dev/zero",
        r.root
            .join(format!("boot/initramfs-{}.img", r.kver(kr.old))),
    )
    .unwrap();
    std::fs::create_dir_all(r.root.join("dev")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        r.root.join("dev/zero"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    let list = vendor_list(&r);
    for threads in ["2", "16"] {
        let mut c = Command::new("/usr/bin/time");
        c.args(["-f", "PEAK-RSS %M"])
            .arg(&exe)
            .args(["weak-modules", "--add-modules", "--basedir"])
            .arg(&r.root)
            .env("RAYON_NUM_THREADS", threads);
        // each round links afresh, and its depmod reads the bombs again
        let _ = weak(&r, &["--remove-kernel", "--no-initramfs", &k_new], "");
        let _ = std::fs::remove_file(dir.join("modules.kabi-cache"));
        let o = run_within(&mut c, list.as_bytes(), 600);
        weak_round(&r, &o, threads, &mut peaks);
    }
    // the bound: the 512 MiB budget plus kabi's own baseline, and what the threads' heaps
    // keep beyond the budget: kabi allows one heap more than the CPUs it may run on
    // (counted here as the binary counts them), up to 20 MiB each after a bomb, so a
    // machine with more than 2 CPUs is allowed that much more (at 16 threads on 2 CPUs,
    // before the heaps were limited: 723 MiB)
    let cpus = rustix::thread::sched_getaffinity(None).map_or(1, |set| set.count());
    let extra = cpus.min(16).saturating_sub(2) as u64 * 20;
    for p in &peaks {
        assert!(*p < 700 + extra, "peak RSS {p} MiB: {peaks:?}");
    }
    // and 16 threads cost little more than 2: the runs come in pairs (2, then 16)
    for pair in peaks.chunks(2) {
        assert!(
            pair[1] <= pair[0] + 150 + extra,
            "16 threads peak at {} MiB, 2 at {} MiB: {peaks:?}",
            pair[1],
            pair[0]
        );
    }
}

/// One weak-modules run of [`bombs_stay_within_the_memory_budget`]: checked and measured.
fn weak_round(r: &WeakRoot, o: &Output, threads: &str, peaks: &mut Vec<u64>) {
    let Some(kr) = common::kernels::cloud() else {
        return;
    };
    assert!(o.status.success(), "{}", text(o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("initramfs-{}.img", r.kver(kr.old)))
            && err.contains("is a FIFO, not a regular file"),
        "the /dev/zero image is refused: {}",
        text(o)
    );
    let mib: u64 = err
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("PEAK-RSS "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap()
        / 1024;
    eprintln!(
        "kabi weak-modules on {threads} threads, a nested 1 GiB initramfs and one that is /dev/zero: peak RSS {mib} MiB"
    );
    peaks.push(mib);
}

/// A crash at each crash point of a depmod run (every index write and the cache): the next
/// run writes exactly what an uninterrupted run writes, and leaves no temporary file.
#[test]
fn a_crash_at_every_point_of_depmod_is_repaired_by_the_next_run() {
    let Some(kr) = common::kernels::cloud() else {
        return;
    };
    assert!(
        cfg!(feature = "crash-injection") || !common::in_ci(),
        "build the tests with --features crash-injection (scripts/test.sh does)"
    );
    if !cfg!(feature = "crash-injection") {
        eprintln!("SKIPPED: no crash points without --features crash-injection");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let Some(r) = setup(tmp.path()) else { return };
    let k_new = r.kver(kr.new).to_string();
    let dir = r.module_dir(kr.new);
    let depmod = |env: &[(&str, String)]| {
        let mut c = common::kabi();
        c.args(["depmod", "--root"]).arg(&r.root).arg(&k_new);
        for (k, v) in env {
            c.env(k, v);
        }
        run_within(&mut c, b"", 120)
    };
    let outputs = || -> Vec<(String, Vec<u8>)> {
        kabi::depmod::OUTPUTS
            .iter()
            .map(|n| {
                (
                    n.to_string(),
                    std::fs::read(dir.join(n)).unwrap_or_default(),
                )
            })
            .collect()
    };
    // the reference: a vendor module added, one uninterrupted run
    std::fs::copy(
        r.extra(kr.old).join("kabi_vendor_a.ko"),
        dir.join("extra/kabi_vendor_a.ko"),
    )
    .unwrap();
    assert!(depmod(&[]).status.success());
    let want = outputs();
    let count = tmp.path().join("count");
    let mut n = 0;
    loop {
        n += 1;
        assert!(n < 100, "depmod never completes");
        // the crashing run sees a tree without the module, the repairing one with it: each
        // writes every output anew
        let m = dir.join("extra/kabi_vendor_a.ko");
        std::fs::rename(&m, dir.join("extra/kabi_vendor_a.ko.off")).unwrap();
        let o = depmod(&[
            ("KABI_CRASH_AT", n.to_string()),
            ("KABI_CRASH_COUNT", count.display().to_string()),
        ]);
        let crashed = !o.status.success();
        std::fs::rename(dir.join("extra/kabi_vendor_a.ko.off"), &m).unwrap();
        let o = depmod(&[]);
        assert!(
            o.status.success(),
            "after a crash at point {n}: {}",
            text(&o)
        );
        assert_eq!(outputs(), want, "after a crash at point {n}");
        for e in std::fs::read_dir(&dir).unwrap() {
            let name = e.unwrap().file_name();
            assert!(
                !kabi::root::is_temp_name(&name),
                "crash at point {n}: {name:?} left behind"
            );
        }
        if !crashed {
            break;
        }
    }
    assert!(n > 10, "depmod has crash points before each write ({n})");
}
