//! The exit codes of every command, in one table. Boot hooks, package scripts and
//! administrators' scripts depend on them.
//!
//! | code | as `kabi COMMAND` | under kmod's names, RHEL's and SUSE's |
//! |---|---|---|
//! | 0 | [`OK`]: done; the answer is yes (every module would load, is signed, is linked) | 0 |
//! | 1 | [`FAILED`]: the answer is no (a module would be refused), or part of what was asked could not be done (a module not found, a write failed) | 1 |
//! | 2 | [`ERROR`]: no answer: the command line is wrong ([`USAGE`]), or an input that the answer needs could not be read | 1 ([`KMOD_USAGE`]) |
//!
//! kmod's tools (`modprobe`, `insmod`, `rmmod`, `lsmod`, `modinfo`, `depmod`) return
//! `EXIT_FAILURE` for every error, a wrong command line too (Debian's kmod 30:
//! `modprobe --bogus; echo $?` prints 1, as do `depmod`, `modinfo`, `insmod`, `rmmod`), and so
//! do RHEL's `weak-modules` and SUSE's `weak-modules2` scripts: invoked by those names, kabi
//! does the same. Which commands use 2 for an unreadable input (check, diff-abi, verify, sign,
//! weak status) and which 1 (the kmod-like ones: info, modversions, depmod, load, unload,
//! weak-modules, weak-modules2) is in each command's page (`kabi gen-docs`, src/cli/docs.rs).

/// Done; the answer is yes.
pub const OK: i32 = 0;
/// The answer is no, or part of what was asked failed.
pub const FAILED: i32 = 1;
/// No answer: an input could not be read, or the command line is wrong.
pub const ERROR: i32 = 2;
/// The command line is wrong (as `kabi COMMAND`).
pub const USAGE: i32 = ERROR;
/// Any failure under kmod's names (`EXIT_FAILURE`).
pub const KMOD_FAILURE: i32 = 1;
/// The command line is wrong, under kmod's names and as RHEL's and SUSE's scripts.
pub const KMOD_USAGE: i32 = KMOD_FAILURE;

/// The status `/init` reports (`KABI-EXIT:`) for a line whose program could not be run, as a
/// shell's 127.
pub const NOT_RUN: i32 = 127;
/// The status `/init` reports for a line whose process did not exit (killed by a signal, or
/// not waited for), as a shell's 128 and above.
pub const NO_STATUS: i32 = 128;

/// The table as the documents show it (the `kabi` page's EXIT STATUS, README): code, meaning.
pub const TABLE: &[(i32, &str)] = &[
    (
        OK,
        "Done; the answer is yes (every module would load, is signed, is linked).",
    ),
    (
        FAILED,
        "The answer is no (a module would be refused), or part of what was asked could not be done (a module was not found, a write failed).",
    ),
    (
        ERROR,
        "No answer: the command line is wrong, or an input the answer needs could not be read. Invoked as modprobe, insmod, rmmod, lsmod, modinfo, depmod, weak-modules or weak-modules2, every failure (a wrong command line too) exits 1, as kmod's tools and RHEL's and SUSE's scripts do.",
    ),
];

/// The exit code for a command line clap could not parse, after printing clap's message:
/// `usage` ([`USAGE`] or [`KMOD_USAGE`]) for an error, [`OK`] for `--help` and `--version`.
pub fn parse_failure(e: &clap::Error, usage: i32) -> i32 {
    let _ = e.print();
    if e.use_stderr() { usage } else { OK }
}

/// [`FAILED`] when something failed, else [`OK`].
pub const fn failed_if(failed: bool) -> i32 {
    if failed { FAILED } else { OK }
}

/// [`KMOD_FAILURE`] when something failed, else [`OK`] (kmod's `EXIT_FAILURE`/`EXIT_SUCCESS`).
pub const fn kmod_failed_if(failed: bool) -> i32 {
    if failed { KMOD_FAILURE } else { OK }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented table has one row per code, in order, and kmod's names exit 1 for a
    /// wrong command line where kabi exits 2.
    #[test]
    fn the_table_is_the_codes() {
        let codes: Vec<i32> = TABLE.iter().map(|(c, _)| *c).collect();
        assert_eq!(codes, [OK, FAILED, ERROR]);
        assert_eq!((OK, FAILED, ERROR), (0, 1, 2));
        assert_eq!((USAGE, KMOD_USAGE), (2, 1));
        assert_eq!((failed_if(true), failed_if(false)), (1, 0));
        assert_eq!((kmod_failed_if(true), kmod_failed_if(false)), (1, 0));
    }
}
