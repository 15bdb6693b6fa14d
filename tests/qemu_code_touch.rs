//! Which functions of the static binary one `kabi load` runs in a real kernel, for
//! `build/hot-functions.txt` (`scripts/hot-functions.sh` runs this; built only with
//! `RUSTFLAGS='--cfg kabi_touch'`, else this file is empty).
//!
//! The guest is the Debian cloud kernel under qemu TCG with a kabi built for it
//! ([`common::qemu::static_kabi_touch`]): every function of kabi's own code starts a page, and
//! `KABI_TOUCH=1` makes the process print, as it ends, the pages of each of its mappings that
//! are mapped (`/proc/self/pagemap`). With the kernel's fault-around set to one page
//! (`/sys/kernel/debug/fault_around_bytes`), a page of code is mapped only if it ran, so the
//! pages name the functions: one function per page for kabi's own code, the few functions of
//! a page for the C library's (compiled without the alignment), all of them taken.
//!
//! Each kind of invocation a machine runs per device or per module is measured, three times
//! each on different modules: a vendor module predicted (`kabi load /vendor/NAME.ko`, the
//! snapshot of the running kernel made by an earlier load), the same `--no-check`, the
//! kernel's own module by name, the same already loaded, a plan (`-n -v`), and kabi as
//! `modprobe`. The test asserts that every command exits 0, that every measured process
//! reported its code pages, and that the prediction's functions are among a predicted
//! load's and not among an unchecked one's (the pages name the functions). It prints how
//! many functions each kind ran and how many of them `build/hot-functions.txt` lacks, and
//! writes `FUNCTION<TAB>KINDS` lines to `$KABI_TOUCH_OUT` when that is set.
#![cfg(kabi_touch)]

mod common;

use common::qemu::{self, Initramfs};
use object::{Object, ObjectSymbol, SymbolKind};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(900);

/// The kinds of invocation, each with its command for module `n`, in the order they run
/// (`own` loads `n` and `loaded` finds it loaded; the others are each followed by an unload).
fn kinds(n: &str) -> Vec<(&'static str, String)> {
    vec![
        ("predicted", format!("/bin/kabi load /vendor/{n}.ko")),
        (
            "nocheck",
            format!("/bin/kabi load --no-check /vendor/{n}.ko"),
        ),
        ("own", format!("/bin/kabi load {n}")),
        ("loaded", format!("/bin/kabi load {n}")),
        ("plan", format!("/bin/kabi load -n -v {n}")),
        ("modprobe", format!("/sbin/modprobe {n}")),
    ]
}

/// Kabi's text symbols: (address, size, name), sorted by address.
fn text_symbols(elf: &[u8]) -> Vec<(u64, u64, String)> {
    let f = object::File::parse(elf).unwrap();
    let mut v: Vec<(u64, u64, String)> = f
        .symbols()
        .filter(|s| s.kind() == SymbolKind::Text && s.is_definition() && s.size() > 0)
        .filter_map(|s| Some((s.address(), s.size(), s.name().ok()?.to_string())))
        .collect();
    v.sort();
    v
}

/// The pages of the executable's code mapping that the run's `TOUCH` report lists, as
/// addresses.
fn code_pages(output: &str) -> Option<Vec<u64>> {
    let line = output
        .lines()
        .find(|l| l.starts_with("TOUCH ") && l.contains(" r-xp ") && l.contains("/init"))?;
    let (head, pages) = line.split_once(':')?;
    let base = u64::from_str_radix(head.split(' ').nth(1)?, 16).ok()?;
    pages
        .split_whitespace()
        .map(|p| p.parse::<u64>().ok().map(|p| base + p * 4096))
        .collect()
}

#[test]
fn the_functions_a_load_runs_in_the_guest() {
    let Some(bench) = qemu::nls_bench() else {
        return;
    };
    let (names, root) = (&bench.names, &bench.root);
    let bin = qemu::static_kabi_touch();
    let exe = std::fs::read(&bin).unwrap();
    let syms = text_symbols(&exe);
    assert!(syms.len() > 1000, "{} text symbols", syms.len());

    let mut script = String::from("!/bin/busybox mkdir -p /run /sys/kernel/debug\n");
    // the snapshot of the running kernel, as every later prediction of the boot finds it
    script += &format!(
        "!/bin/kabi load /vendor/{}.ko\nunload {}\n",
        names[0], names[0]
    );
    script += "!/bin/busybox mount -t debugfs debugfs /sys/kernel/debug\n";
    script += "!/bin/busybox sh -c \"echo 4096 > /sys/kernel/debug/fault_around_bytes\"\n";
    for n in &names[1..4] {
        for (kind, cmd) in kinds(n) {
            script += &format!("!KABI_KIND={kind} KABI_TOUCH=1 {cmd}\n");
            if !matches!(kind, "own" | "plan") {
                script += &format!("unload {n}\n");
            }
        }
    }
    let mut ird = Initramfs::new();
    ird.add_file("/init", &exe, 0o755);
    ird.add_file("/etc/kabi-init", script.as_bytes(), 0o644);
    ird.add_symlink("/sbin/modprobe", "/init");
    bench.add_to(&mut ird);
    let log = qemu::boot(&qemu::vmlinuz(root), &ird.finish(), "", TIMEOUT);
    log.assert_done();
    for r in &log.runs {
        assert_eq!(r.exit, Some(0), "{}:\n{}", r.line, r.output);
    }

    // function name -> the kinds that ran it
    let mut ran: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    let mut per_kind: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let runs: Vec<_> = log
        .runs
        .iter()
        .filter(|r| r.line.contains("KABI_TOUCH=1"))
        .collect();
    assert_eq!(runs.len(), 3 * kinds("x").len());
    for r in runs {
        let kind = kinds("x")
            .into_iter()
            .map(|(k, _)| k)
            .find(|k| r.line.contains(&format!("KABI_KIND={k} ")))
            .unwrap();
        let pages = code_pages(&r.output)
            .unwrap_or_else(|| panic!("{}: no report of its code pages:\n{}", r.line, r.output));
        assert!(pages.len() > 20, "{}: {} pages", r.line, pages.len());
        for p in pages {
            // every function that has a byte on the page
            let first = syms.partition_point(|(a, s, _)| a + s <= p);
            for (a, _, name) in &syms[first..] {
                if *a >= p + 4096 {
                    break;
                }
                ran.entry(name.clone()).or_default().insert(kind);
                per_kind.entry(kind).or_default().insert(name.clone());
            }
        }
    }
    let listed: BTreeSet<String> =
        std::fs::read_to_string(common::repo().join("build/hot-functions.txt"))
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(|l| l.trim().to_string())
            .collect();
    // kabi's own functions (a page each: exactly those that ran; the C library's pages hold
    // several functions, not all of which ran) that the list lacks: the list is stale when
    // many are. Not when this run makes the new list (`scripts/hot-functions.sh`): a change
    // of the names (a dependency's features change every hash) is what it is run for
    let making_list = std::env::var_os("KABI_TOUCH_OUT").is_some();
    let own = |f: &&String| f.starts_with("_ZN") || f.starts_with("_R");
    for (kind, fns) in &per_kind {
        let ours: Vec<&String> = fns.iter().filter(own).collect();
        let missing = ours.iter().filter(|f| !listed.contains(**f)).count();
        eprintln!(
            "{kind:<10} {:>5} functions ({} of kabi's), {missing} of kabi's not in build/hot-functions.txt",
            fns.len(),
            ours.len()
        );
        assert!(
            making_list || missing * 10 <= ours.len(),
            "{kind}: {missing} of the {} functions of kabi it ran are not in build/hot-functions.txt: run scripts/hot-functions.sh",
            ours.len()
        );
    }
    // the pages name the functions: the prediction's run in a predicted load only
    let predictor = |k: &str| {
        per_kind[k]
            .iter()
            .any(|f| f.contains("RunningPredictor") && f.contains("make_base"))
    };
    assert!(predictor("predicted"), "a predicted load ran no prediction");
    assert!(
        !predictor("nocheck"),
        "a load --no-check ran the prediction"
    );
    if let Some(out) = std::env::var_os("KABI_TOUCH_OUT") {
        let text: String = ran
            .iter()
            .map(|(f, ks)| {
                format!(
                    "{f}\t{}\n",
                    ks.iter().copied().collect::<Vec<_>>().join(",")
                )
            })
            .collect();
        std::fs::write(&out, text).unwrap();
        eprintln!(
            "{} functions written to {}",
            ran.len(),
            std::path::Path::new(&out).display()
        );
    }
}
