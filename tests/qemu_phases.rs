//! Where one `kabi load` spends its time in a real kernel: the Debian cloud kernel under qemu
//! TCG, kabi as `/init` built with `--cfg kabi_phases` (laid out as the shipped binary is:
//! the cfg keeps every symbol name), busybox-static beside it, the kernel's independent
//! `fs/nls` modules as a vendor's (`/vendor/X.ko`). Run by `scripts/test.sh` as its own step
//! (`RUSTFLAGS='--cfg kabi_touch --cfg kabi_phases' CARGO_TARGET_DIR=target/touch cargo test
//! --release --test qemu_phases -- --nocapture`); without the cfg this file is empty.
//!
//! After one untimed predicted load (the snapshot of the running kernel is written), each
//! module is loaded in turns by busybox `modprobe`, by `kabi load` (predicted) and by `kabi
//! load --no-check`, each unloaded before the next. kabi prints its phase marks
//! (`KABI_PHASES=1`, see `src/phase.rs`). The test asserts that every command exits 0, that a
//! predicted load passes every phase of the prediction in order and `--no-check` none of them,
//! and prints the median time and page faults of each phase (no time is asserted: the figures
//! go to the notes).

#![cfg(kabi_phases)]

mod common;

use common::qemu::{self, Initramfs, median};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(900);

#[test]
fn where_a_load_spends_its_time() {
    let Some(bench) = qemu::nls_bench() else {
        return;
    };
    let (names, root) = (&bench.names, &bench.root);
    let mut script = String::from("!/bin/busybox mkdir -p /run\n");
    // the first prediction of the boot reads kallsyms and writes the snapshot: not measured
    script += &format!(
        "!/bin/kabi load /vendor/{}.ko\nunload {}\n",
        names[0], names[0]
    );
    for n in names {
        script += &format!("!KABI_PAIR=busybox /bin/busybox modprobe {n}\nunload {n}\n");
        script +=
            &format!("!KABI_PAIR=kabi KABI_PHASES=1 /bin/kabi load /vendor/{n}.ko\nunload {n}\n");
        script += &format!(
            "!KABI_PAIR=nocheck KABI_PHASES=1 /bin/kabi load --no-check /vendor/{n}.ko\nunload {n}\n"
        );
    }
    // the phase build is laid out as the shipped one: the cfg keeps the names that
    // build/hot-functions.txt lists (a cargo feature renamed every kabi function, so the list
    // did not apply); a few may differ where the marks change what is inlined
    let exe = std::fs::read(qemu::static_kabi_guest()).unwrap();
    let missing = hot_functions_missing(&exe);
    assert!(
        missing.len() * 50 <= hot_functions().len(),
        "{} of build/hot-functions.txt's {} symbols are not in the phase build, e.g. {:?}",
        missing.len(),
        hot_functions().len(),
        &missing[..missing.len().min(5)]
    );
    eprintln!(
        "{} of {} listed symbols not in the phase build",
        missing.len(),
        hot_functions().len()
    );
    let mut ird = Initramfs::kabi(&script);
    bench.add_to(&mut ird);
    let log = qemu::boot(&qemu::vmlinuz(root), &ird.finish(), "", TIMEOUT);
    eprintln!("booted in {:.1} s", log.elapsed.as_secs_f64());
    log.assert_done();
    for r in &log.runs {
        assert_eq!(r.exit, Some(0), "{}:\n{}", r.line, r.output);
    }
    // every phase of a predicted load, in order; --no-check passes none of the prediction's
    const PREDICTED: &[&str] = &[
        "main", "args", "pending", "loader", "lookup", "running", "snapshot", "policy", "module",
        "verdict", "prepare", "insert", "update", "end", "total",
    ];
    const UNCHECKED: &[&str] = &[
        "main", "args", "pending", "loader", "prepare", "insert", "end", "total",
    ];
    for (kind, want) in [
        ("busybox", None),
        ("kabi", Some(PREDICTED)),
        ("nocheck", Some(UNCHECKED)),
    ] {
        let runs: Vec<&common::qemu::Run> = log
            .runs
            .iter()
            .filter(|r| r.line.starts_with(&format!("!KABI_PAIR={kind} ")))
            .collect();
        assert_eq!(runs.len(), names.len(), "{kind}");
        let mut t: Vec<f64> = runs.iter().map(|r| r.secs.expect("a time")).collect();
        eprintln!(
            "{kind}: {} runs, median {:.1} ms",
            runs.len(),
            median(&mut t) * 1e3
        );
        let Some(want) = want else { continue };
        let mut phases: Vec<Vec<f64>> = vec![Vec::new(); want.len()];
        let mut faults: Vec<Vec<f64>> = vec![Vec::new(); want.len()];
        for r in &runs {
            let marks: Vec<(&str, f64, f64)> = r
                .output
                .lines()
                .filter_map(|l| l.strip_prefix("PHASE "))
                .map(|l| {
                    let f: Vec<&str> = l.split(' ').collect();
                    let [n, us, pf] = f[..] else {
                        panic!("not PHASE NAME MICROSECONDS FAULTS: {l}");
                    };
                    let num = |v: &str| -> f64 { v.parse().expect("a number") };
                    (n, num(us), num(pf))
                })
                .collect();
            let names: Vec<&str> = marks.iter().map(|(n, _, _)| *n).collect();
            assert_eq!(names, want, "{}:\n{}", r.line, r.output);
            for (i, (_, us, pf)) in marks.iter().enumerate() {
                phases[i].push(*us);
                faults[i].push(*pf);
            }
        }
        eprintln!("  {:<10} {:>8} {:>7}", "phase", "us", "faults");
        for ((n, vs), fs) in want.iter().zip(&mut phases).zip(&mut faults) {
            eprintln!("  {n:<10} {:>8.0} {:>7.0}", median(vs), median(fs));
        }
    }
}

/// The symbols `build/hot-functions.txt` lists (its comment lines left out).
fn hot_functions() -> Vec<String> {
    let path = common::repo().join("build/hot-functions.txt");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// The listed symbols the executable `exe` does not define.
fn hot_functions_missing(exe: &[u8]) -> Vec<String> {
    use object::{Object, ObjectSymbol};
    let elf = object::File::parse(exe).expect("the phase build is an ELF file");
    let defined: std::collections::HashSet<&str> = elf
        .symbols()
        .filter(|s| s.is_definition())
        .filter_map(|s| s.name().ok())
        .collect();
    hot_functions()
        .into_iter()
        .filter(|n| !defined.contains(n.as_str()))
        .collect()
}
