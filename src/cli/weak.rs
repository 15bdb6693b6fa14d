//! `kabi weak-modules` (and the binary invoked as `weak-modules`): RHEL's interface;
//! `kabi weak status`: what is linked where, and why not.

use crate::weak::{Layout, links, ops};
use std::io::Read;
use std::path::PathBuf;

#[derive(Debug, Clone, clap::Args)]
#[command(
    about = "Link compatible out-of-tree modules into other kernels' weak-updates/ (RHEL's weak-modules)",
    after_help = "Modules for --add-modules and --remove-modules are read from standard input, one path per line.\n\
        \n\
        Where this differs from RHEL's weak-modules script:\n  \
        * Compatibility is decided by kabi's own loader checks (CRCs, missing symbols, GPL-only,\n    \
          namespaces, vermagic), for the modules being linked together as a group; no depmod runs.\n  \
        * --dry-run changes nothing at all (the script runs dracut even then).\n  \
        * --remove-kernel rewrites the kernel's indexes (the script leaves them stale).\n  \
        * --add-kernel links the newest kernel's compatible copy of a module (the script links the\n    \
          newest copy, and nothing when that one is incompatible).\n  \
        * A module the target kernel has in its own extra/ or updates/ is not linked.\n  \
        * Each kernel's weak-updates/ changes in one atomic step; a lock serializes runs.\n  \
        * Initramfs images of changed kernels are reported; --dracut PROG rebuilds them."
)]
pub struct WeakModulesArgs {
    /// Link the modules read from standard input into every compatible installed kernel
    #[arg(long)]
    pub add_modules: bool,
    /// Remove the links to the modules read from standard input
    #[arg(long)]
    pub remove_modules: bool,
    /// Link every compatible module of the other kernels into KVER (default: running kernel)
    #[arg(long)]
    pub add_kernel: bool,
    /// Remove every link of KVER (default: running kernel)
    #[arg(long)]
    pub remove_kernel: bool,
    /// Say what would be done; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Print every decision
    #[arg(long)]
    pub verbose: bool,
    /// Do not report or rebuild initramfs images
    #[arg(long)]
    pub no_initramfs: bool,
    /// Filesystem root
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub basedir: PathBuf,
    /// Rebuild the initramfs of each changed kernel with PROG -f IMAGE KVER
    #[arg(long, value_name = "PROG")]
    pub dracut: Option<PathBuf>,
    /// Accepted for compatibility; no effect
    #[arg(long, hide = true)]
    pub delete_modules: bool,
    /// Accepted for compatibility; no effect
    #[arg(long, value_name = "PROG", hide = true)]
    pub check_initramfs_prog: Option<PathBuf>,
    /// SUSE's conventions: /usr/lib/modules, links keep the module's top directory
    #[arg(long)]
    pub suse: bool,
    /// Kernel release for --add-kernel / --remove-kernel
    #[arg(value_name = "KVER")]
    pub kver: Option<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct WeakArgs {
    #[command(subcommand)]
    pub command: WeakCommand,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum WeakCommand {
    /// For every kernel: each module of the other kernels' extra/ and each weak-updates link:
    /// linked or not, compatible or not and why, dangling links
    Status {
        #[arg(long, value_name = "DIR", default_value = "/")]
        basedir: PathBuf,
        #[arg(long)]
        suse: bool,
        #[arg(long)]
        json: bool,
    },
}

pub fn run_weak_modules(a: &WeakModulesArgs) -> i32 {
    if a.delete_modules {
        println!("WARNING: --delete-modules is deprecated, no effect");
    }
    let ops_n = [
        a.add_modules,
        a.remove_modules,
        a.add_kernel,
        a.remove_kernel,
    ]
    .iter()
    .filter(|x| **x)
    .count();
    if ops_n != 1 {
        eprintln!(
            "weak-modules: give exactly one of --add-modules, --remove-modules, --add-kernel, --remove-kernel"
        );
        return 1;
    }
    let layout = Layout {
        basedir: a.basedir.clone(),
        suse: a.suse,
    };
    let opts = ops::Options {
        dry_run: a.dry_run,
        verbose: a.verbose,
        no_initramfs: a.no_initramfs,
        dracut: a.dracut.clone(),
    };
    let _lock = match links::lock(&layout.modules()) {
        Ok(l) => Some(l),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            eprintln!(
                "weak-modules: cannot lock {}: {e}",
                layout.modules().display()
            );
            return 1;
        }
    };
    let kver = || a.kver.clone().unwrap_or_else(super::running_release);
    let result = if a.add_modules || a.remove_modules {
        let mut input = String::new();
        if let Err(e) = std::io::stdin().read_to_string(&mut input) {
            eprintln!("weak-modules: cannot read the module list: {e}");
            return 1;
        }
        let modules: Vec<PathBuf> = input
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(PathBuf::from)
            .collect();
        if modules.is_empty() {
            return 0;
        }
        if a.add_modules {
            ops::add_modules(&layout, &modules, &opts)
        } else {
            ops::remove_modules(&layout, &modules, &opts)
        }
    } else if a.add_kernel {
        ops::add_kernel(&layout, &kver(), &opts)
    } else {
        ops::remove_kernel(&layout, &kver(), &opts)
    };
    match result {
        Ok(out) => {
            if a.verbose || a.dry_run {
                for m in &out.messages {
                    println!("{m}");
                }
            }
            for (img, why) in &out.unreadable {
                eprintln!(
                    "weak-modules: cannot read {}: {why}; rebuild it to be safe",
                    img.display()
                );
            }
            if !a.no_initramfs && a.dracut.is_none() {
                for (img, held) in &out.initramfs {
                    println!(
                        "weak-modules: {} holds changed modules ({}): rebuild it",
                        img.display(),
                        held.join(", ")
                    );
                }
            }
            0
        }
        Err(e) => {
            eprintln!("weak-modules: {e}");
            1
        }
    }
}

pub fn run_weak(a: &WeakArgs) -> i32 {
    match &a.command {
        WeakCommand::Status {
            basedir,
            suse,
            json,
        } => {
            let layout = Layout {
                basedir: basedir.clone(),
                suse: *suse,
            };
            let st = match ops::status(&layout) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("kabi weak status: {e}");
                    return 2;
                }
            };
            if *json {
                println!("{}", serde_json::to_string_pretty(&st).unwrap_or_default());
            } else {
                for k in &st {
                    println!(
                        "kernel {}{}",
                        k.kernel,
                        if k.symvers.is_none() {
                            " (no symvers file: not a target)"
                        } else {
                            ""
                        }
                    );
                    for e in &k.entries {
                        let verdict = if e.compatible {
                            "compatible"
                        } else {
                            "incompatible"
                        };
                        println!(
                            "  {:<10} {:<12} weak-updates/{} -> {} (built for {})",
                            e.state,
                            verdict,
                            e.link.display(),
                            e.module.display(),
                            e.built_for
                        );
                        for r in &e.reasons {
                            for line in r.lines() {
                                println!("             {line}");
                            }
                        }
                    }
                }
            }
            // 1 when something is broken: a dangling or stale link
            let broken = st
                .iter()
                .flat_map(|k| &k.entries)
                .any(|e| e.state == "dangling" || e.state == "stale");
            i32::from(broken)
        }
    }
}
