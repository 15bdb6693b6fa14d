//! kabi as `/init` of a bare initramfs, booted on a real Debian kernel under qemu (TCG).

mod common;

use std::time::Duration;

use common::qemu::{self, Initramfs};

/// Guests are slow under TCG, slower still next to the other tests: a boot takes about 5 s
/// alone.
const TIMEOUT: Duration = Duration::from_secs(180);

/// The smoke test of the harness: the kernel runs the static kabi as `/init`, which finds the
/// modules of the running kernel by name (the release from /proc), prints the markers on the
/// console and powers the guest off.
#[test]
fn init_runs_its_script_and_powers_off() {
    if !qemu::require_qemu() {
        return;
    }
    let Some(root) = common::fetch_kernel("cloud-amd64", None) else {
        return;
    };
    let mut ird = Initramfs::kabi("# a comment, then an empty line\n\ninfo dummy\nlsmod\n");
    let kver = ird.add_modules(&root, &["kernel/drivers/net/dummy.ko"], &[]);
    let log = qemu::boot(&qemu::vmlinuz(&root), &ird.finish(), "", TIMEOUT);
    eprintln!("booted in {:.1} s", log.elapsed.as_secs_f64());
    log.assert_done();
    assert!(!log.timed_out);
    let lines: Vec<&str> = log.runs.iter().map(|r| r.line.as_str()).collect();
    assert_eq!(lines, ["info dummy", "lsmod"], "{}", log.raw);

    let info = log.run(0);
    assert_eq!(info.exit, Some(0), "{}", log.raw);
    let want = format!("/lib/modules/{kver}/kernel/drivers/net/dummy.ko");
    assert!(
        info.output
            .lines()
            .any(|l| l.starts_with("filename:") && l.trim_end().ends_with(&want)),
        "no `filename: {want}` in:\n{}",
        info.output
    );
    assert!(
        info.output.contains("vermagic:") && info.output.contains(&kver),
        "{}",
        info.output
    );

    let lsmod = log.run(1);
    assert_eq!(lsmod.exit, Some(0), "{}", log.raw);
    assert!(lsmod.output.starts_with("Module"), "{}", lsmod.output);
}

/// The marker parser on a console where kernel lines interleave with the guest's output.
#[test]
fn markers_survive_kernel_lines() {
    let raw = "[    0.1] booting\nKABI-RUN: load dummy\n[    1.2] dummy: loaded\nok\n\
               KABI-EXIT: 1 (0.250 s)\n[    1.3] late line\nKABI-RUN: lsmod\n\
               [    1.4] x KABI-EXIT: 0 (0.001 s)\nKABI-RUN: check x\nKABI-DONE\n";
    let (runs, done) = qemu::BootLog::parse(raw);
    assert!(done);
    assert_eq!(runs.len(), 3);
    assert_eq!(runs[0].line, "load dummy");
    assert_eq!(runs[0].output, "[    1.2] dummy: loaded\nok\n");
    assert_eq!((runs[0].exit, runs[0].secs), (Some(1), Some(0.25)));
    assert_eq!((runs[1].exit, runs[1].secs), (Some(0), Some(0.001)));
    assert_eq!((runs[2].line.as_str(), runs[2].exit), ("check x", None));
}
