//! The command layer: parse arguments, call the library, render. No logic of its own.

pub(crate) mod check;
pub(crate) mod depmod;
pub(crate) mod diff_abi;
#[cfg(feature = "gen-docs")]
pub mod docs;
pub mod exit;
pub mod getopt;
pub(crate) mod info;
pub(crate) mod kmod;
pub(crate) mod load;
pub(crate) mod modversions;
pub(crate) mod sign;
pub(crate) mod verify;
pub(crate) mod weak;
pub(crate) mod weak2;

use crate::tree::lookup::ModuleDir;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "kabi",
    version,
    about = "Kernel-module ABI compatibility: will this module load on that kernel, and why not",
    long_about = None
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show a module's information, exactly as kmod's modinfo does (or --json)
    Info(info::InfoArgs),
    /// Dump a module's imported symbol versions (__versions), as modprobe --dump-modversions
    Modversions(modversions::ModversionsArgs),
    /// Will these modules load on that kernel? Every reason, in the kernel's words
    Check(check::CheckArgs),
    /// What changed between two kernels' ABIs, and which modules that breaks
    DiffAbi(diff_abi::DiffAbiArgs),
    /// Generate modules.dep and the binary indexes, byte for byte as kmod's depmod
    // kmod's spelling (-b/--basedir DIR, -r/--root ignored) is the `depmod` personality's;
    // here the root is --root DIR, as in every subcommand, with -b/--basedir kept hidden
    #[command(
        mut_arg("root", |a| a
            .long("root")
            .short(None)
            .short_alias('b')
            .alias("basedir")
            .help("Use DIR as the filesystem root for /lib/modules (-b DIR and --basedir DIR, \
                   the old spellings, are accepted too)")),
        mut_arg("deprecated_r", |a| a.long(None)),
    )]
    Depmod(depmod::DepmodArgs),
    /// RHEL's weak-modules: link compatible modules into other kernels' weak-updates/
    WeakModules(weak::WeakModulesArgs),
    /// SUSE's weak-modules2: link compatible kernel module packages (KMPs) into other kernels
    WeakModules2(weak2::WeakModules2Args),
    /// Weak-updates state: kabi weak status
    Weak(weak::WeakArgs),
    /// Load modules with their dependencies, as modprobe (checked first)
    Load(load::LoadArgs),
    /// Remove modules (-r: and their unused dependencies)
    Unload(load::UnloadArgs),
    /// List loaded modules
    Lsmod,
    /// Will the modules this host expects load on this kernel? (boot-time check)
    Verify(verify::VerifyArgs),
    /// Sign modules as scripts/sign-file does (--verify: would the kernel accept them?)
    Sign(sign::SignArgs),
    /// Write the man pages and shell completions into DIR (for maintainers: dist/)
    #[cfg(feature = "gen-docs")]
    #[command(hide = true)]
    GenDocs { dir: std::path::PathBuf },
}

/// The module directory `-b ROOT -k KVER` name: `ROOT/lib/modules/KVER`, KVER defaulting to
/// the running kernel's release.
pub fn module_dir(root: Option<&str>, kver: Option<&str>) -> ModuleDir {
    let kver = kver.map(str::to_string).unwrap_or_else(running_release);
    ModuleDir::new(root, &kver, Some(crate::depmod::dep_lines_in))
}

/// `uname -r`.
pub fn running_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Entry point for `kabi ...`.
pub fn main_kabi(args: Vec<std::ffi::OsString>) -> i32 {
    if args.get(1).is_some_and(|a| a == "load") {
        return main_load(args);
    }
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => return exit::parse_failure(&e, exit::USAGE),
    };
    match &cli.command {
        Command::Info(a) => info::run(a),
        Command::Modversions(a) => modversions::run(a),
        Command::Check(a) => check::run(a),
        Command::DiffAbi(a) => diff_abi::run(a),
        Command::Depmod(a) => depmod::run(a),
        Command::WeakModules(a) => weak::run_weak_modules(a),
        Command::WeakModules2(a) => weak2::run(a, "kabi weak-modules2"),
        Command::Weak(a) => weak::run_weak(a),
        Command::Load(a) => load::run_load(a),
        Command::Unload(a) => load::run_unload(a),
        Command::Lsmod => load::run_lsmod(),
        Command::Verify(a) => verify::run(a),
        Command::Sign(a) => sign::run(a),
        #[cfg(feature = "gen-docs")]
        Command::GenDocs { dir } => match docs::write(dir) {
            Ok(()) => exit::OK,
            Err(e) => {
                eprintln!("kabi gen-docs: {}: {e}", dir.display());
                exit::FAILED
            }
        },
    }
}

/// `kabi load ...`, the command run once per module (as udev runs modprobe), parsed with the
/// definition of `load` alone: building every subcommand's would cost each load a few
/// hundred microseconds (tens of milliseconds in an emulated guest). The help and errors are
/// those of `kabi load` in the full definition (a test compares them).
///
/// The common forms do not build clap's parser at all ([`load::LoadArgs::quick`]).
fn main_load(mut args: Vec<std::ffi::OsString>) -> i32 {
    args.remove(1);
    if let Some(a) = load::LoadArgs::quick(&args[1..]) {
        return load::run_load(&a);
    }
    match LoadCli::try_parse_from(args) {
        Ok(c) => load::run_load(&c.args),
        Err(e) => exit::parse_failure(&e, exit::USAGE),
    }
}

/// The `load` subcommand on its own (see [`main_load`]).
#[derive(Debug, Parser)]
#[command(
    name = "kabi-load",
    bin_name = "kabi load",
    about = "Load modules with their dependencies, as modprobe (checked first)",
    long_about = None
)]
pub struct LoadCli {
    #[command(flatten)]
    pub args: load::LoadArgs,
}

/// Entry point for the binary invoked as `modinfo` (kmod's options, `getopt_long`).
pub fn main_modinfo(args: Vec<std::ffi::OsString>) -> i32 {
    kmod::main_modinfo(args)
}

/// Entry point for the binary invoked as `depmod`.
pub fn main_depmod(args: Vec<std::ffi::OsString>) -> i32 {
    #[derive(Parser)]
    #[command(name = "depmod", version)]
    struct Depmod {
        #[command(flatten)]
        args: depmod::DepmodArgs,
    }
    match Depmod::try_parse_from(args) {
        Ok(m) => depmod::run(&m.args),
        Err(e) => exit::parse_failure(&e, exit::KMOD_USAGE),
    }
}

/// Entry point for the binary invoked as `weak-modules`.
pub fn main_weak_modules(args: Vec<std::ffi::OsString>) -> i32 {
    #[derive(Parser)]
    #[command(name = "weak-modules", version)]
    struct W {
        #[command(flatten)]
        args: weak::WeakModulesArgs,
    }
    match W::try_parse_from(args) {
        Ok(m) => weak::run_weak_modules(&m.args),
        Err(e) => exit::parse_failure(&e, exit::KMOD_USAGE),
    }
}

/// Entry point for the binary invoked as `weak-modules2` (SUSE's
/// `/usr/lib/module-init-tools/weak-modules2`): every command-line error exits 1, as there.
pub fn main_weak_modules2(args: Vec<std::ffi::OsString>) -> i32 {
    #[derive(Parser)]
    #[command(name = "weak-modules2", version, disable_help_flag = true)]
    struct W {
        #[command(flatten)]
        args: weak2::WeakModules2Args,
    }
    match W::try_parse_from(args) {
        Ok(m) => weak2::run(&m.args, "weak-modules2"),
        Err(e) if e.use_stderr() => weak2::parse_error("weak-modules2", &e),
        Err(e) => exit::parse_failure(&e, exit::KMOD_USAGE),
    }
}

/// Entry points for the binary invoked as `modprobe`, `insmod`, `rmmod`, `lsmod`: kmod 30's
/// tools, option for option ([`kmod`]).
pub fn main_modprobe(args: Vec<std::ffi::OsString>) -> i32 {
    kmod::main_modprobe(args)
}

pub fn main_insmod(args: Vec<std::ffi::OsString>) -> i32 {
    kmod::main_insmod(args)
}

pub fn main_rmmod(args: Vec<std::ffi::OsString>) -> i32 {
    kmod::main_rmmod(args)
}

pub fn main_lsmod(args: Vec<std::ffi::OsString>) -> i32 {
    kmod::main_lsmod(args)
}

/// The binary as `init`: the initramfs personality, only as process 1.
pub fn main_init(_args: Vec<std::ffi::OsString>) -> i32 {
    load::run_init()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the quick parser of `kabi load` accepts, clap parses to the same arguments; it
    /// accepts the forms udev and scripts use.
    #[test]
    fn the_quick_load_parser_agrees_with_clap() {
        use proptest::prelude::*;
        let words = [
            "-n",
            "--dry-run",
            "-D",
            "--show-depends",
            "-q",
            "--quiet",
            "-v",
            "--verbose",
            "-f",
            "--force",
            "-b",
            "--use-blacklist",
            "-i",
            "--ignore-install",
            "--first-time",
            "--no-check",
            "-a",
            "--all",
            "--coldplug",
            "-nv",
            "-j",
            "2",
            "--jobs=2",
            "-S",
            "6.1.0-9-amd64",
            "--root",
            "/r",
            "-C",
            "/etc/x.conf",
            "--",
            "-",
            "--help",
            "-h",
            "-V",
            "--bogus",
            "-1",
            "nls_utf8",
            "snd-hda",
            "x=1",
            "y=-1",
            "opt=a,b",
            "",
            "é",
            "--verbose=true",
            "-vv",
        ];
        let quick = |v: &[&str]| {
            let os: Vec<std::ffi::OsString> = v.iter().map(Into::into).collect();
            load::LoadArgs::quick(&os)
        };
        let clap = |v: &[&str]| LoadCli::try_parse_from(["kabi"].iter().chain(v.iter()));
        let agree = |v: &[&str]| {
            if let Some(q) = quick(v) {
                let c = clap(v).unwrap_or_else(|e| panic!("{v:?}: quick accepts, clap: {e}"));
                assert_eq!(format!("{q:?}"), format!("{:?}", c.args), "{v:?}");
            }
        };
        // the forms udev and scripts use are taken by the quick parser
        for v in [
            &["nls_utf8"][..],
            &["-v", "nls_utf8"],
            &["-n", "-v", "nls_utf8", "x=1", "y=-1"],
            &["--no-check", "-q", "snd-hda", "opt=a,b"],
            &["-a", "nls_utf8", "snd-hda"],
            &["nls_utf8", "-v"],
            &["--coldplug"],
        ] {
            assert!(quick(v).is_some(), "{v:?}");
            agree(v);
        }
        // and clap's own business is left to it
        for v in [
            &[][..],
            &["-nv", "x"],
            &["-v", "-v", "x"],
            &["--help"],
            &["-j", "2", "x"],
        ] {
            assert!(quick(v).is_none(), "{v:?}");
        }
        proptest!(ProptestConfig::with_cases(4000), |(idx in proptest::collection::vec(0..words.len(), 0..7))| {
            let v: Vec<&str> = idx.iter().map(|&i| words[i]).collect();
            agree(&v);
        });
    }

    /// `kabi load` parsed alone says what the full definition says: the same help, the same
    /// errors, the same arguments.
    #[test]
    fn load_alone_parses_as_in_the_full_definition() {
        let cases: &[&[&str]] = &[
            &["--help"],
            &["-h"],
            &[],
            &["--bogus", "x"],
            &["--version"],
            &["-V"],
            &["-j", "x", "a"],
            &["-n", "-v", "--root", "/r", "nls_utf8", "x=1"],
            &["-a", "-j", "2", "a", "b"],
        ];
        for c in cases {
            let full = Cli::try_parse_from(["kabi", "load"].iter().chain(c.iter()));
            let alone = LoadCli::try_parse_from(["kabi"].iter().chain(c.iter()));
            match (full, alone) {
                (Ok(f), Ok(a)) => {
                    let Command::Load(f) = f.command else {
                        panic!("{c:?}: not load")
                    };
                    assert_eq!(format!("{f:?}"), format!("{:?}", a.args), "{c:?}");
                }
                (Err(f), Err(a)) => {
                    assert_eq!(f.kind(), a.kind(), "{c:?}");
                    assert_eq!(f.render().to_string(), a.render().to_string(), "{c:?}");
                }
                (f, a) => panic!("{c:?}: full {:?}, alone {:?}", f.map(|_| ()), a.map(|_| ())),
            }
        }
    }
}
