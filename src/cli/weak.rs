//! `kabi weak-modules` (and the binary invoked as `weak-modules`): RHEL's interface;
//! `kabi weak status`: what is linked where, and why not.

use super::exit;
use crate::root::Root;
use crate::weak::ops::{self, Op};
use crate::weak::{Kernels, Layout, status};
use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, clap::Args)]
#[command(
    about = "Link compatible out-of-tree modules into other kernels' weak-updates/ (RHEL's weak-modules)",
    after_help = "Modules for --add-modules and --remove-modules are read from standard input, one path per line.\n\
        \n\
        Where this differs from RHEL's weak-modules script:\n  \
        * Compatibility is decided by kabi's own loader checks (CRCs, missing symbols, GPL-only,\n    \
          namespaces, vermagic), for the modules being linked together as a group: a symbol is\n    \
          provided by any compatible module of the group that exports it. kmod's depmod is not\n    \
          run (kabi writes the indexes itself).\n  \
        * --dry-run changes nothing at all (the script runs dracut even then).\n  \
        * --remove-kernel rewrites the indexes of a kernel that is still installed and indexed\n    \
          (the script leaves them stale). Of a kernel being removed (neither modules.dep nor\n    \
          modules.dep.bin, or neither kernel/ nor modules.order any more: kernel-install's\n    \
          50-depmod and new-kernel-pkg --rmmoddep delete the indexes before RHEL's %preun runs\n    \
          weak-modules) it writes none\n    \
          and removes kabi's files that no package owns (modules.kabi-cache, modules.weakdep).\n    \
          The same holds for any run that leaves such a kernel without links.\n  \
        * --add-kernel links, for each module path, the newest compatible copy among the other\n    \
          kernels' extra/ (the script links the newest copy, and no copy when that one is\n    \
          incompatible).\n  \
        * A module the target kernel has in its own extra/ or updates/ is not linked.\n  \
        * Each kernel's weak-updates/ changes in one atomic step; a lock serializes runs.\n\
        \n\
        Initramfs images (/boot/initramfs-KVER.img, initrd.img-KVER, initrd-KVER) of the kernels\n\
        whose modules changed are rebuilt, as by RHEL's script, with dracut when it is installed\n\
        (or --dracut PROG): PROG -f IMAGE KVER. For another --basedir they are only named (dracut\n\
        059 follows the absolute weak-updates links as the host sees them), unless --dracut is\n\
        given: then dracut is also given --kmoddir BASEDIR/lib/modules/KVER, and --sysroot BASEDIR\n\
        when dracut is installed there (else BASEDIR's dracut.conf and dracut.conf.d).\n\
        --no-initramfs leaves them alone (kernel-install and dracut's own hooks build new ones)."
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
    /// Neither rebuild nor name the initramfs images of changed kernels
    #[arg(long)]
    pub no_initramfs: bool,
    /// Filesystem root
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub basedir: PathBuf,
    /// Rebuild the initramfs images of changed kernels with PROG (default: the host's dracut)
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
        /// Filesystem root (--basedir DIR, the old spelling, is accepted too)
        #[arg(long, alias = "basedir", value_name = "DIR", default_value = "/")]
        root: PathBuf,
        /// SUSE's conventions: /usr/lib/modules, links keep the module's top directory
        #[arg(long)]
        suse: bool,
        /// Print the state as JSON (docs/schemas/weak-status.schema.json)
        #[arg(long)]
        json: bool,
    },
}

/// The most kabi reads of a module list on standard input.
const MAX_LIST: u64 = 16 << 20;

/// The module paths of standard input as paths inside the root, or the first one that is
/// not below it.
fn module_list(root: &Root) -> Result<Vec<PathBuf>, String> {
    let mut input = String::new();
    std::io::stdin()
        .take(MAX_LIST)
        .read_to_string(&mut input)
        .map_err(|e| format!("cannot read the module list: {e}"))?;
    let mut out = Vec::new();
    for l in input.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let inside = root.inside(Path::new(l)).ok_or_else(|| {
            format!(
                "{l}: not below the root {}; nothing was changed",
                root.path().display()
            )
        })?;
        out.push(inside);
    }
    Ok(out)
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
        return exit::FAILED;
    }
    let root = match Root::open(&a.basedir) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("weak-modules: {e}");
            return exit::FAILED;
        }
    };
    let layout = Layout { suse: a.suse };
    let opts = ops::Options {
        dry_run: a.dry_run,
        verbose: a.verbose,
        no_initramfs: a.no_initramfs,
        dracut: a.dracut.clone(),
    };
    let kver = || a.kver.clone().unwrap_or_else(super::running_release);
    let op = if a.add_modules || a.remove_modules {
        let modules = match module_list(&root) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("weak-modules: {e}");
                return exit::FAILED;
            }
        };
        if modules.is_empty() {
            return exit::OK;
        }
        if a.add_modules {
            Op::AddModules(modules)
        } else {
            Op::RemoveModules(modules)
        }
    } else {
        let k = kver();
        if k.is_empty() {
            eprintln!(
                "weak-modules: which kernel? give KVER: the running kernel's release \
                 (/proc/sys/kernel/osrelease) cannot be read; is /proc mounted?"
            );
            return exit::FAILED;
        }
        if crate::depmod::check_release(&k).is_err() {
            eprintln!("weak-modules: '{k}' is not a kernel release");
            return exit::FAILED;
        }
        if a.add_kernel {
            Op::AddKernel(k)
        } else {
            Op::RemoveKernel(k)
        }
    };
    let k = crate::weak::Kernels::new(&root, layout);
    let res = ops::run_in(&k, &op, &opts);
    // the process ends right after: freeing each kernel's symbol map (tens of thousands of
    // strings) would cost milliseconds
    std::mem::forget(k);
    match res {
        Ok(out) => {
            for r in &out.recovered {
                eprintln!("weak-modules: {r}");
            }
            if a.verbose || a.dry_run {
                for m in &out.plan.messages {
                    println!("{m}");
                }
            }
            if a.dry_run {
                print_plan(&root, &out);
            }
            if !a.dry_run {
                report_images(&root, &out, a.verbose);
            }
            exit::failed_if(!out.failed.is_empty())
        }
        Err(e) => {
            eprintln!("weak-modules: {e}");
            exit::FAILED
        }
    }
}

/// After a run: the images rebuilt (with `--verbose`), those that could not be, and, without
/// dracut, those to rebuild.
fn report_images(root: &Root, out: &ops::Outcome, verbose: bool) {
    for img in &out.images {
        let shown = root.display(&img.path);
        if img.command.is_some() {
            if verbose && out.rebuilt.contains(&shown) {
                println!("weak-modules: rebuilt {}", shown.display());
            }
        } else if let Some(why) = &img.unreadable {
            eprintln!(
                "weak-modules: cannot read {}: {why}; rebuild it to be safe",
                shown.display()
            );
        } else {
            println!("weak-modules: {}: rebuild it", image_why(&shown, img));
        }
    }
    for (img, why) in &out.failed {
        eprintln!("weak-modules: {} was not rebuilt: {why}", img.display());
    }
}

/// `IMAGE holds changed modules (...)`, or why else it is to be rebuilt.
fn image_why(shown: &Path, img: &ops::Rebuild) -> String {
    if img.held.is_empty() {
        format!(
            "{}: the modules of kernel {} changed",
            shown.display(),
            img.krel
        )
    } else {
        format!(
            "{} holds changed modules ({})",
            shown.display(),
            img.held.join(", ")
        )
    }
}

/// `--dry-run`: what a run would do, link by link.
fn print_plan(root: &Root, out: &ops::Outcome) {
    let plan = &out.plan;
    for kp in plan.changed() {
        for line in kp.dry_run_lines() {
            println!("{line}");
        }
        if kp.leaves_indexes {
            println!(
                "would leave the indexes of kernel {} as they are and remove kabi's files no package owns (modules.kabi-cache, modules.weakdep): no link left, the kernel is not installed and indexed",
                kp.krel
            );
        } else {
            println!("would rewrite the indexes of kernel {}", kp.krel);
        }
    }
    for img in &out.images {
        let shown = root.display(&img.path);
        match &img.command {
            Some(cmd) => println!(
                "would run {}",
                cmd.iter()
                    .map(|a| a.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            None => println!("{}: it would need a rebuild", image_why(&shown, img)),
        }
    }
    if plan.changed().next().is_none() {
        println!("nothing to change");
    }
}

pub fn run_weak(a: &WeakArgs) -> i32 {
    match &a.command {
        WeakCommand::Status { root, suse, json } => {
            let root = match Root::open(root) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("kabi weak status: {e}");
                    return exit::ERROR;
                }
            };
            let k = Kernels::with_signatures(&root, Layout { suse: *suse });
            if !root.is_dir(k.layout.base()) {
                eprintln!(
                    "kabi weak status: {}: no kernel module directories",
                    root.display(k.layout.base()).display()
                );
                return exit::ERROR;
            }
            let st = match status::status(&k) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("kabi weak status: {e}");
                    return exit::ERROR;
                }
            };
            if *json {
                print!(
                    "{}",
                    crate::report::json_document(&serde_json::json!({ "kernels": st }))
                );
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
                    if let Some(i) = &k.interrupted {
                        println!("  interrupted: {i}");
                    }
                    for e in &k.entries {
                        let verdict = if e.compatible {
                            "compatible"
                        } else {
                            "incompatible"
                        };
                        println!(
                            "  {:<10} {:<12} weak-updates/{} -> {} (built for {})",
                            e.state.as_str(),
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
            // 1 when something is broken: a dangling or stale link, an interrupted run
            let broken = st
                .iter()
                .any(|k| k.interrupted.is_some() || k.entries.iter().any(|e| e.state.is_broken()));
            exit::failed_if(broken)
        }
    }
}
