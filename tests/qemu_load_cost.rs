//! What one `kabi load` costs in a real kernel, side by side with busybox's `modprobe` in the
//! same boot (issue "Speed where users feel it"): the Debian cloud kernel under qemu TCG with
//! kabi as `/init`, busybox-static as `/bin/busybox`, and the kernel's `fs/nls` modules (30 or
//! more, independent of each other).
//!
//! One boot runs, in order:
//! 1. busybox `modprobe NAME`, one process per module, then `modprobe -r` of each;
//! 2. `kabi load NAME`, one process per module (a fresh exec of the static binary, as udev
//!    would run it), the first one with no snapshot of the running kernel's ABI under `/run`;
//!    then `kabi unload` of each;
//! 3. the same again (the snapshot now exists and must be used, not rebuilt);
//! 4. busybox `modprobe` and `kabi load` (predicted, without `-v`) in turns, module by
//!    module, each unloaded before the next: the figure to compare; with them in the same
//!    turns `kabi load --no-check` of the same file, which says what the prediction costs;
//! 5. for reference, ten loads without prediction (`--no-check`) and ten plans (`-n`);
//! 6. every module in one command, serially and with `-j 2`;
//! 7. side by side against one after the other, in three interleaved rounds (a guest's speed
//!    drifts during a boot): `kabi load -a` of every module serially and with `-j 2`, as the
//!    kernel's own modules (not predicted) and as vendor files (predicted); and what two
//!    loads side by side gain in this kernel at all: busybox `modprobe` of every module in
//!    one shell loop, and in two loops side by side (half the modules each).
//!
//! The test asserts what each step exists for: every module is loaded after each round and
//! gone after each unload, every command exits 0, the snapshot is written once per boot and
//! reused (the later rounds print no rebuild), and prints the per-invocation times. It asserts
//! no time: the figures go to the closing note (run with `--nocapture`).

mod common;

use common::qemu::{self, Initramfs, median};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(900);

#[test]
fn one_load_per_command_against_busybox() {
    let Some(qemu::NlsBench {
        busybox,
        root,
        dir,
        names,
        mods,
    }) = qemu::nls_bench()
    else {
        return;
    };

    let mut script = String::from("!/bin/busybox mkdir -p /run\n");
    for n in &names {
        script += &format!("!/bin/busybox modprobe {n}\n");
    }
    script += "!/bin/busybox lsmod\n";
    for n in &names {
        script += &format!("!/bin/busybox modprobe -r {n}\n");
    }
    // the kernel's own modules (lib/modules/KVER/kernel): inserted without a prediction
    for n in &names {
        script += &format!("!KABI_ROUND=own /bin/kabi load -v {n}\n");
    }
    script += "lsmod\n";
    script += &format!("unload {}\n", names.join(" "));
    // the same files as a vendor's modules (anywhere else): predicted before each insert
    for round in ["cold", "warm"] {
        for n in &names {
            script += &format!("!KABI_ROUND={round} /bin/kabi load -v /vendor/{n}.ko\n");
        }
        script += "lsmod\n";
        script += &format!("unload {}\n", names.join(" "));
    }
    // the figure to compare: busybox and kabi (predicted, without -v as busybox runs: what
    // -v prints costs time on the serial console) in turns, module by module, each module
    // unloaded before the next command, so that both meet the same kernel (a guest under
    // emulation slows down as a boot goes on: rounds one after the other do not compare)
    for n in &names {
        script += &format!("!KABI_PAIR=busybox /bin/busybox modprobe {n}\nunload {n}\n");
        script += &format!("!KABI_PAIR=kabi /bin/kabi load /vendor/{n}.ko\nunload {n}\n");
        // the same load without the prediction: what the prediction itself costs
        script +=
            &format!("!KABI_PAIR=nocheck /bin/kabi load --no-check /vendor/{n}.ko\nunload {n}\n");
    }
    for n in &names[..10] {
        script += &format!("!/bin/kabi load --no-check {n}\n");
    }
    script += &format!("unload {}\n", names[..10].join(" "));
    for n in &names[..10] {
        script += &format!("!/bin/kabi load -n {n}\n");
    }
    script += &format!("load -v -a {}\nlsmod\n", names.join(" "));
    script += &format!("unload {}\n", names.join(" "));
    script += &format!("load -v -j 2 -a {}\nlsmod\n", names.join(" "));
    let half = |r: usize| -> Vec<&str> {
        let every_other = names.iter().enumerate().filter(|(i, _)| i % 2 == r);
        every_other.map(|(_, n)| n.as_str()).collect()
    };
    let shell_loop = |v: &[&str]| {
        format!(
            "for m in {}; do /bin/busybox modprobe $m; done",
            v.join(" ")
        )
    };
    let all: Vec<&str> = names.iter().map(String::as_str).collect();
    let files: Vec<String> = names.iter().map(|n| format!("/vendor/{n}.ko")).collect();
    let side = [
        ("serial", format!("/bin/kabi load -a {}", names.join(" "))),
        ("par", format!("/bin/kabi load -j 2 -a {}", names.join(" "))),
        ("vserial", format!("/bin/kabi load -a {}", files.join(" "))),
        (
            "vpar",
            format!("/bin/kabi load -j 2 -a {}", files.join(" ")),
        ),
        (
            "bb1",
            format!("/bin/busybox sh -c \"{}\"", shell_loop(&all)),
        ),
        (
            "bb2",
            format!(
                "/bin/busybox sh -c \"({}) & ({}); wait\"",
                shell_loop(&half(1)),
                shell_loop(&half(0))
            ),
        ),
    ];
    script += &format!("unload {}\n", names.join(" "));
    for _ in 0..3 {
        for (kind, command) in &side {
            script += &format!("!KABI_SIDE={kind} {command}\nlsmod\n");
            script += &format!("unload {}\n", names.join(" "));
        }
    }
    script += &format!("load -a {}\n", names.join(" "));
    // own modules loaded without a prediction, then a vendor module predicted: the snapshot
    // (not kallsyms) serves it, the own modules read from their files (their build ids are
    // the ones the kernel shows), and takes them in
    script += &format!("unload {}\n", names.join(" "));
    script += &format!("load -a {}\n", names[..5].join(" "));
    script += &format!("!/bin/kabi load -v /vendor/{}.ko\n", names[5]);
    script += "!/bin/busybox cat /run/kabi/running-modules\n";
    // an "own" module the kernel refuses (another ABI's build, placed below kernel/): the
    // kernel is asked first, and the prediction then says why, in the kernel's words
    script += "!/bin/kabi load crc-itu-t\n";
    let refs: Vec<&str> = mods.iter().map(String::as_str).collect();
    let kver = common::module_dir(&root).1;
    let mut ird = Initramfs::kabi(&script.replace("KVER", &kver));
    ird.add_file("/bin/busybox", &std::fs::read(busybox).unwrap(), 0o755);
    ird.add_symlink("/bin/kabi", "/init");
    let Some(kr) = common::kernels::cloud() else {
        return;
    };
    let Some(other) = kr.fetch(kr.other) else {
        return;
    };
    let foreign = common::module_dir(&other).0.join("kernel/lib/crc-itu-t.ko");
    ird.add_modules(&root, &refs, &[(&foreign, "kernel/lib/crc-itu-t.ko")]);
    for (n, m) in names.iter().zip(&mods) {
        ird.add_file(
            &format!("/vendor/{n}.ko"),
            &std::fs::read(dir.join(m)).unwrap(),
            0o644,
        );
    }
    let log = qemu::boot(&qemu::vmlinuz(&root), &ird.finish(), "", TIMEOUT);
    eprintln!("booted in {:.1} s", log.elapsed.as_secs_f64());
    for r in &log.runs {
        eprintln!("{:>8.3} {}", r.secs.unwrap_or(-1.0), r.line);
    }
    log.assert_done();

    let loaded_after = |line: &str, from: usize| -> Vec<String> {
        let r = log.runs[from..]
            .iter()
            .find(|r| r.line == line)
            .unwrap_or_else(|| panic!("no {line} after run {from}:\n{}", log.raw));
        r.output
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|w| w.starts_with("nls_"))
            .map(str::to_string)
            .collect()
    };
    // the guest's time of every run of `prefix`, each of which must exit 0, `n` of them
    let times = |prefix: &str, n: usize| -> Vec<f64> {
        let v: Vec<f64> = log
            .runs
            .iter()
            .filter(|r| r.line.starts_with(prefix))
            .map(|r| {
                assert_eq!(r.exit, Some(0), "{}:\n{}", r.line, r.output);
                r.secs.expect("a time")
            })
            .collect();
        assert_eq!(v.len(), n, "{prefix}: runs");
        v
    };
    let mut bb = times("!/bin/busybox modprobe nls", names.len());
    let mut own = times("!KABI_ROUND=own", names.len());
    let mut cold = times("!KABI_ROUND=cold", names.len());
    let mut warm = times("!KABI_ROUND=warm", names.len());
    let mut pair_bb = times("!KABI_PAIR=busybox", names.len());
    let mut pair_kabi = times("!KABI_PAIR=kabi", names.len());
    let mut pair_nocheck = times("!KABI_PAIR=nocheck", names.len());
    // lsmod shows the kernel's names: '-' in a file name is '_'
    let mut sorted: Vec<String> = names.iter().map(|n| n.replace('-', "_")).collect();
    sorted.sort();
    let after = |line: &str, from: usize| {
        let mut l = loaded_after(line, from);
        l.sort();
        assert_eq!(l, sorted, "after {line} (from run {from})");
    };
    after("!/bin/busybox lsmod", 0);
    // each round ends with every module loaded
    let first = |prefix: &str| {
        log.runs
            .iter()
            .position(|r| r.line.starts_with(prefix))
            .unwrap_or_else(|| panic!("no run of {prefix}"))
    };
    for round in ["own", "cold", "warm"] {
        after("lsmod", first(&format!("!KABI_ROUND={round}")));
    }
    let first_kabi = first("!KABI_ROUND=cold");
    let serial = log.find(&format!("load -v -a {}", names.join(" ")));
    assert_eq!(serial.exit, Some(0), "{}", serial.output);
    let par = log.find(&format!("load -v -j 2 -a {}", names.join(" ")));
    assert_eq!(par.exit, Some(0), "{}", par.output);
    // side by side against one after the other: three runs of each, every one leaving every
    // module loaded; their median
    let side_median = |kind: &str| {
        let prefix = format!("!KABI_SIDE={kind} ");
        let mut v: Vec<f64> = Vec::new();
        for (i, r) in log.runs.iter().enumerate() {
            if r.line.starts_with(&prefix) {
                assert_eq!(r.exit, Some(0), "{}:\n{}", r.line, r.output);
                after("lsmod", i);
                v.push(r.secs.expect("a time"));
            }
        }
        assert_eq!(v.len(), 3, "{prefix}: runs");
        median(&mut v)
    };
    let [ser, par2, vser, vpar, bb1, bb2] =
        ["serial", "par", "vserial", "vpar", "bb1", "bb2"].map(side_median);

    let last_lsmod = log.runs.iter().rposition(|r| r.line == "lsmod").unwrap();
    after("lsmod", last_lsmod);
    for r in log.runs.iter().filter(|r| r.line.starts_with("unload ")) {
        assert_eq!(r.exit, Some(0), "{}:\n{}", r.line, r.output);
    }

    // the kernel's own modules are inserted without a prediction: nothing is read of the
    // running kernel's ABI (no source line); the first prediction of the boot (the first
    // vendor module) reads kallsyms and writes the snapshot; every later one (after loads by
    // kabi, and after unloads) reads the snapshot
    const SOURCE: &str = "kabi: the running kernel's ABI came from ";
    let no_prediction = |r: &common::qemu::Run| {
        assert!(
            !r.output.contains(SOURCE),
            "{}: predicted:\n{}",
            r.line,
            r.output
        );
    };
    for r in log
        .runs
        .iter()
        .filter(|r| r.line.starts_with("!KABI_ROUND=own"))
    {
        no_prediction(r);
    }
    let kabi_runs: Vec<&common::qemu::Run> = log
        .runs
        .iter()
        .filter(|r| {
            r.line.starts_with("!KABI_ROUND=cold") || r.line.starts_with("!KABI_ROUND=warm")
        })
        .collect();
    let from = |r: &common::qemu::Run| {
        r.output
            .lines()
            .find_map(|l| l.strip_prefix(SOURCE))
            .unwrap_or_else(|| panic!("{}: no source line:\n{}", r.line, r.output))
            .to_string()
    };
    assert_eq!(from(kabi_runs[0]), "/proc/kallsyms");
    for r in &kabi_runs[1..] {
        assert!(
            from(r).starts_with("the snapshot /run/kabi/running-abi"),
            "{}: {}",
            r.line,
            r.output
        );
    }
    for r in [serial, par] {
        no_prediction(r);
    }
    let after_own = log.find(&format!("!/bin/kabi load -v /vendor/{}.ko", names[5]));
    assert_eq!(after_own.exit, Some(0), "{}", after_own.output);
    assert!(
        from(after_own).starts_with("the snapshot"),
        "own modules loaded since made it read kallsyms:\n{}",
        after_own.output
    );
    let refused = log.find("!/bin/kabi load crc-itu-t");
    assert_eq!(refused.exit, Some(1), "{}", refused.output);
    for want in [
        "could not insert 'crc_itu_t': Exec format error (ENOEXEC)",
        // with modversions the kernel compares struct module's version before the release
        "the kernel says: crc_itu_t: disagrees about version of symbol module_layout",
        "kabi check says why:\n  ENOEXEC: crc_itu_t: disagrees about version of symbol module_layout",
    ] {
        assert!(refused.output.contains(want), "{want}:\n{}", refused.output);
    }
    assert!(
        !refused.output.contains("predicts the kernel will refuse"),
        "predicted before the insert:\n{}",
        refused.output
    );
    let snap = log.find("!/bin/busybox cat /run/kabi/running-modules");
    for n in &names[..6] {
        assert!(
            snap.output
                .contains(&format!("module {} ", n.replace('-', "_"))),
            "{n} not in the snapshot:\n{}",
            snap.output
        );
    }

    let no_check = median(&mut times("!/bin/kabi load --no-check", 10));
    let plan_only = median(&mut times("!/bin/kabi load -n", 10));
    let (sb, so, sc, sw): (f64, f64, f64, f64) = (
        bb.iter().sum(),
        own.iter().sum(),
        cold.iter().sum(),
        warm.iter().sum(),
    );
    let (spb, spk, spn): (f64, f64, f64) = (
        pair_bb.iter().sum(),
        pair_kabi.iter().sum(),
        pair_nocheck.iter().sum(),
    );
    let mpn = median(&mut pair_nocheck);
    let (mb, mo, mc, mw, mpb, mpk) = (
        median(&mut bb),
        median(&mut own),
        median(&mut cold),
        median(&mut warm),
        median(&mut pair_bb),
        median(&mut pair_kabi),
    );
    eprintln!(
        "{} modules, one command each (guest clock):\n\
         busybox modprobe   total {sb:.3} s  median {:.1} ms\n\
         kabi load (own)    total {so:.3} s  median {:.1} ms  ratio {:.2}x\n\
         as vendor modules, predicted:\n\
         kabi load (cold)   total {sc:.3} s  median {:.1} ms  first {:.1} ms  ratio {:.2}x\n\
         kabi load (warm)   total {sw:.3} s  median {:.1} ms  ratio {:.2}x\n\
         in turns, module by module (kabi predicted, without -v):\n\
         busybox modprobe   total {spb:.3} s  median {:.1} ms\n\
         kabi load          total {spk:.3} s  median {:.1} ms  ratio {:.2}x (medians {:.2}x)\n\
         kabi load --no-check total {spn:.3} s  median {:.1} ms  ratio {:.2}x (the prediction: {:.1} ms a load)\n\
         kabi load --no-check NAME (no prediction) median {:.1} ms; load -n (plan only) median {:.1} ms\n\
         kabi load -a       {:.3} s\n\
         kabi load -j 2 -a  {:.3} s\n\
         every module in one command, medians of 3 interleaved rounds:\n\
         kabi load -a (own)       {ser:.3} s; -j 2 {par2:.3} s ({:.2}x)\n\
         kabi load -a (vendor, predicted) {vser:.3} s; -j 2 {vpar:.3} s ({:.2}x)\n\
         busybox, one shell loop  {bb1:.3} s; two loops side by side {bb2:.3} s ({:.2}x)",
        names.len(),
        mb * 1e3,
        mo * 1e3,
        so / sb,
        mc * 1e3,
        log.runs[first_kabi].secs.unwrap() * 1e3,
        sc / sb,
        mw * 1e3,
        sw / sb,
        mpb * 1e3,
        mpk * 1e3,
        spk / spb,
        mpk / mpb,
        mpn * 1e3,
        spn / spb,
        (spk - spn) / names.len() as f64 * 1e3,
        no_check * 1e3,
        plan_only * 1e3,
        serial.secs.unwrap(),
        par.secs.unwrap(),
        ser / par2,
        vser / vpar,
        bb1 / bb2,
    );
}
