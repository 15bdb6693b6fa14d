//! `kabi weak-modules2` (and the binary invoked as `weak-modules2`): SUSE's interface, what a
//! kernel module package's scriptlets call (`/usr/lib/module-init-tools/weak-modules2`).

use super::exit;
use crate::root::Root;
use crate::weak::suse::{self, Env, Level, Message, Op};
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

const MODES: [&str; 6] = [
    "add_kmp",
    "remove_kmp",
    "add_kernel",
    "remove_kernel",
    "add_kernel_modules",
    "remove_kernel_modules",
];

#[derive(Debug, Clone, clap::Args)]
#[command(
    about = "SUSE's weak-modules2: link compatible kernel module packages (KMPs) into other kernels' weak-updates/",
    disable_help_flag = true,
    args_override_self = true,
    after_help = "Standard input: the module list for --remove-kmp, --add-kernel-modules and, when the package is not\n\
        in the root's rpm database (or there is none), --add-kmp.\n\
        \n\
        Environment: WM2_VERBOSE (0-3), WM2_DEBUG (1), WM2_LOGFILE, DRACUT (default /usr/bin/dracut),\n\
        INITRD_IN_POSTTRANS, KMP_NEEDS_MKINITRD.\n\
        \n\
        Where this differs from SUSE's weak-modules2 script:\n  \
        * Compatibility is kabi's own loader check of the kernel's whole link set (CRCs, missing\n    \
          symbols, GPL-only, namespaces, vermagic) against its symvers; no depmod runs to decide.\n    \
          A KMP is refused only for its own modules, or for a link it would break, not for an\n    \
          older link that was already broken.\n  \
        * The installed packages are read from the rpm database (sqlite, ndb) natively; no rpm runs.\n  \
        * --dry-run changes nothing at all and prints what would change.\n  \
        * --remove-kernel removes only links (anything else in weak-updates/ is put aside) and\n    \
          rewrites the indexes of a kernel that is still installed and indexed; of a kernel\n    \
          being removed it writes none and removes kabi's files that no package owns\n    \
          (modules.kabi-cache, modules.weakdep).\n  \
        * Each kernel's weak-updates/ changes in one atomic step; a lock serializes runs.\n  \
        * The initramfs is read natively; INITRD_MODULES of /etc/sysconfig/kernel counts.\n  \
        * --root DIR works on another root (SUSE's script has no such option)."
)]
pub struct WeakModules2Args {
    /// To be called in %post of a KMP: link KMP-NAME-VERSION-RELEASE into every compatible kernel
    #[arg(long, action = clap::ArgAction::SetTrue, overrides_with_all = MODES)]
    pub add_kmp: bool,
    /// To be called in %postun of a KMP (module list on standard input): remove its links, link another version instead
    #[arg(long, action = clap::ArgAction::SetTrue, overrides_with_all = MODES)]
    pub remove_kmp: bool,
    /// To be called in %post of a kernel: link every compatible KMP into KREL (default: the running kernel)
    #[arg(long, action = clap::ArgAction::SetTrue, overrides_with_all = MODES)]
    pub add_kernel: bool,
    /// To be called in %postun of a kernel: remove KREL's links (default: the running kernel)
    #[arg(long, action = clap::ArgAction::SetTrue, overrides_with_all = MODES)]
    pub remove_kernel: bool,
    /// To be called in %post of a kernel subpackage (module list on standard input)
    #[arg(long, action = clap::ArgAction::SetTrue, overrides_with_all = MODES)]
    pub add_kernel_modules: bool,
    /// To be called in %postun of a kernel subpackage (module list on standard input)
    #[arg(long, action = clap::ArgAction::SetTrue, overrides_with_all = MODES)]
    pub remove_kernel_modules: bool,
    /// Say what is done (repeat for more)
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Change nothing; print what would change
    #[arg(long)]
    pub dry_run: bool,
    /// Print the symbol errors behind each refusal
    #[arg(long)]
    pub debug: bool,
    /// Append standard error to FILE (a relative name is taken in /var/log)
    #[arg(long, value_name = "FILE")]
    pub logfile: Option<PathBuf>,
    /// Print the usage lines
    #[arg(long)]
    pub usage: bool,
    /// Print help
    #[arg(short = 'h', long)]
    pub help: bool,
    /// Filesystem root to work on
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// The package's NAME-VERSION-RELEASE or the kernel release
    #[arg(value_name = "ARG")]
    pub args: Vec<String>,
}

/// The most kabi reads of a module list on standard input.
const MAX_LIST: u64 = 16 << 20;

/// The command lines of the help text, one per operation.
fn synopsis(prog: &str) -> Vec<(String, &'static str)> {
    vec![
        (
            format!("{prog} --add-kmp kmp-name-version-release"),
            "Called in %post of a kernel module package: links its modules into the\n\
             \tweak-updates/ of every compatible kernel of its flavour and rebuilds the\n\
             \tinitrd where needed.",
        ),
        (
            format!("{prog} --remove-kmp kmp-name-version-release < module-list"),
            "Called in %postun of a kernel module package: removes its links (the\n\
             \tpackage is gone, so its modules are read from standard input) and links\n\
             \tthe newest other compatible version instead, if any.",
        ),
        (
            format!("{prog} --add-kernel kernel-release"),
            "Called in %post of a kernel package: links every compatible kernel module\n\
             \tpackage into it and rebuilds its initrd.",
        ),
        (
            format!("{prog} --remove-kernel kernel-release"),
            "Called in %postun of a kernel package: removes its weak-updates links.",
        ),
        (
            format!("{prog} --add-kernel-modules kernel-release < module-list"),
            "Called in %post of a kernel subpackage holding modules only: links the\n\
             \tpackages that have become compatible and rebuilds the initrd if needed.",
        ),
        (
            format!("{prog} --remove-kernel-modules kernel-release < module-list"),
            "Called in %postun of a kernel subpackage holding modules only.",
        ),
        (
            format!("{prog} --verbose ..."),
            "Say what is done; twice for details.",
        ),
        (
            format!("{prog} --dry-run ..."),
            "Change nothing; print what would change.",
        ),
    ]
}

fn help(prog: &str) -> String {
    let mut s = String::new();
    for (line, what) in synopsis(prog) {
        s.push_str(&format!("{line}\n\t{what}\n\n"));
    }
    s.push_str(&format!(
        "{prog} --root DIR ...\n\tWork on the root DIR instead of /.\n"
    ));
    s
}

fn usage(prog: &str) -> String {
    let mut s = String::from("Usage:\n");
    for (line, _) in synopsis(prog) {
        s.push_str(&format!("    {line}\n"));
    }
    s
}

/// The usage error of the script: `ERROR: ...` and the usage lines, exit 1.
fn usage_error(prog: &str, msg: &str) -> i32 {
    eprintln!("ERROR: {msg}");
    eprint!("{}", usage(prog));
    exit::KMOD_USAGE
}

/// A clap error for the binary invoked as `weak-modules2`: the message and the usage lines
/// on standard error, exit 1 (as getopt's failure in the script).
pub fn parse_error(prog: &str, e: &clap::Error) -> i32 {
    let _ = e.print();
    eprint!("{}", usage(prog));
    exit::KMOD_USAGE
}

/// Standard input, up to [`MAX_LIST`] bytes; empty when it is a terminal.
fn read_stdin() -> Result<String, String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Ok(String::new());
    }
    let mut s = String::new();
    stdin
        .take(MAX_LIST)
        .read_to_string(&mut s)
        .map_err(|e| format!("cannot read the module list on standard input: {e}"))?;
    Ok(s)
}

/// A module list as paths inside the root: lines naming the root from outside
/// (`ROOT/usr/lib/...`) lose the root; the others are taken as paths inside it (what
/// `rpm --root ROOT -ql` prints).
fn inside_list(root: &Root, text: &str) -> String {
    let mut out = String::new();
    for l in text.lines() {
        let l = l.trim();
        if l.is_empty() {
            continue;
        }
        let p = Path::new(l);
        let inside = if !root.is_host() && p.starts_with(root.path()) {
            root.inside(p)
                .map(|x| x.display().to_string())
                .unwrap_or_default()
        } else {
            l.to_string()
        };
        out.push_str(&inside);
        out.push('\n');
    }
    out
}

/// What the run prints, filtered by level.
struct Say {
    verbose: u8,
    debug: bool,
}

impl Say {
    fn wants(&self, level: Level) -> bool {
        match level {
            Level::Warn => true,
            Level::Log => self.verbose >= 1,
            Level::Debug => self.verbose >= 2,
            Level::Sym => self.debug,
        }
    }

    fn print(&self, msgs: &[Message]) {
        for m in msgs.iter().filter(|m| self.wants(m.level)) {
            eprintln!("{}", m.text);
        }
    }
}

/// Send standard error to the end of `file` (`exec 2>>FILE`).
fn redirect_stderr(file: &Path) -> Result<(), String> {
    let f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(file)
        .map_err(|e| format!("{}: {e}", file.display()))?;
    rustix::stdio::dup2_stderr(&f).map_err(|e| format!("{}: {e}", file.display()))
}

pub fn run(a: &WeakModules2Args, prog: &str) -> i32 {
    if a.help {
        print!("{}", help(prog));
        return exit::OK;
    }
    if a.usage {
        print!("{}", usage(prog));
        return exit::OK;
    }
    let (mode, arg) = match mode_and_argument(a, prog) {
        Ok(m) => m,
        Err(code) => return code,
    };
    let say = match verbosity_and_log(a, prog) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let fail = |e: &dyn std::fmt::Display| {
        eprintln!("{prog}: {e}");
        exit::KMOD_FAILURE
    };
    let kernel_op = matches!(
        mode,
        "--add-kernel" | "--remove-kernel" | "--add-kernel-modules" | "--remove-kernel-modules"
    );
    if kernel_op && crate::depmod::check_release(&arg).is_err() {
        return fail(&format!("'{arg}' is not a kernel release"));
    }
    let root = match Root::open(&a.root) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    let db = match crate::rpmdb::read_root(&root) {
        Ok(db) => db,
        Err(e) => return fail(&e),
    };
    let packages = db.as_ref().map(|d| &d.packages[..]).unwrap_or_default();
    let op = match operation(mode, arg, &root, db.as_ref(), prog) {
        Ok(op) => op,
        Err(e) => return fail(&e),
    };
    let env = Env::from_vars(|n| std::env::var(n).ok());
    let opts = suse::Options {
        dry_run: a.dry_run,
        verbose: say.verbose >= 2,
    };
    let out = match suse::run(&root, &op, &env, &opts, packages) {
        Ok(o) => o,
        Err(e) => return fail(&e),
    };
    for r in &out.recovered {
        eprintln!("{prog}: {r}");
    }
    say.print(&out.plan.messages);
    if a.dry_run {
        print_plan(&root, &env, &out.plan);
    }
    say.print(&out.done);
    for e in &out.errors {
        eprintln!("{prog}: {e}");
    }
    exit::kmod_failed_if(out.plan.failed || !out.errors.is_empty())
}

/// The one mode given and its argument (for --add-kernel and --remove-kernel, the running
/// kernel's release by default), or the script's usage error.
fn mode_and_argument(a: &WeakModules2Args, prog: &str) -> Result<(&'static str, String), i32> {
    let modes = [
        (a.add_kmp, "--add-kmp"),
        (a.remove_kmp, "--remove-kmp"),
        (a.add_kernel, "--add-kernel"),
        (a.remove_kernel, "--remove-kernel"),
        (a.add_kernel_modules, "--add-kernel-modules"),
        (a.remove_kernel_modules, "--remove-kernel-modules"),
    ];
    let Some(mode) = modes.iter().find(|(on, _)| *on).map(|(_, m)| *m) else {
        return Err(usage_error(
            prog,
            "Please specify one of the --add-* or --remove-* options",
        ));
    };
    let arg = match mode {
        "--add-kernel" | "--remove-kernel" => {
            if a.args.len() > 1 {
                return Err(usage_error(prog, &format!("Too many arguments to {mode}")));
            }
            a.args
                .first()
                .cloned()
                .unwrap_or_else(super::running_release)
        }
        _ => {
            if a.args.len() != 1 {
                return Err(usage_error(
                    prog,
                    &format!("Option {mode} requires exactly one argument"),
                ));
            }
            a.args[0].clone()
        }
    };
    Ok((mode, arg))
}

/// How much to say (-v, `WM2_VERBOSE`, --debug, `WM2_DEBUG`), and standard error appended to
/// the log file (--logfile, `WM2_LOGFILE`; relative to /var/log), as the script does.
fn verbosity_and_log(a: &WeakModules2Args, prog: &str) -> Result<Say, i32> {
    let var = |n: &str| std::env::var(n).ok();
    let mut verbose = var("WM2_VERBOSE")
        .and_then(|v| v.parse::<u8>().ok())
        .filter(|v| *v <= 3)
        .unwrap_or(0)
        .saturating_add(a.verbose);
    let mut debug = a.debug || var("WM2_DEBUG").as_deref() == Some("1");
    if verbose > 2 {
        // the script traces every command from here: say everything
        verbose = 2;
        debug = true;
    }
    let logfile = a.logfile.clone().or_else(|| {
        var("WM2_LOGFILE")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });
    if let Some(f) = logfile {
        let f = if f.is_absolute() {
            f
        } else {
            Path::new("/var/log").join(f)
        };
        eprintln!("{prog}: appending output to {}", f.display());
        if let Err(e) = redirect_stderr(&f) {
            eprintln!("{prog}: {e}");
            return Err(exit::KMOD_FAILURE);
        }
    }
    Ok(Say { verbose, debug })
}

/// The operation of a mode, with the module list it reads from standard input (an installed
/// KMP's list comes from the rpm database instead).
fn operation(
    mode: &str,
    arg: String,
    root: &Root,
    db: Option<&crate::rpmdb::RpmDb>,
    prog: &str,
) -> Result<Op, String> {
    let list = || read_stdin().map(|t| inside_list(root, &t));
    Ok(match mode {
        "--add-kmp" => {
            let installed = db.is_some_and(|d| d.packages.iter().any(|p| p.nvr() == arg));
            let list = if installed {
                None
            } else {
                if let Some(d) = db
                    && d.pending_wal
                {
                    eprintln!(
                        "{prog}: {arg} is not in {}, whose -wal file holds changes of an rpm transaction not yet checkpointed",
                        d.path.display()
                    );
                }
                Some(list()?)
            };
            Op::AddKmp { nvr: arg, list }
        }
        "--remove-kmp" => Op::RemoveKmp {
            nvr: arg,
            list: list()?,
        },
        "--add-kernel" => Op::AddKernel(arg),
        "--remove-kernel" => Op::RemoveKernel(arg),
        "--add-kernel-modules" => Op::AddKernelModules {
            krel: arg,
            list: list()?,
        },
        _ => {
            // the list is read and not used, as the script does
            let _ = read_stdin();
            Op::RemoveKernelModules(arg)
        }
    })
}

/// `--dry-run`: what a run would change, on standard output.
fn print_plan(root: &Root, env: &Env, plan: &suse::plan::Plan) {
    let mut any = false;
    for kp in &plan.kernels {
        if plan.dismantle.as_deref() == Some(kp.krel.as_str()) {
            continue;
        }
        if !kp.changes() {
            continue;
        }
        any = true;
        for line in kp.dry_run_lines() {
            println!("{line}");
        }
    }
    let in_txn = |k: &&crate::weak::plan::KernelPlan| {
        k.changes() && plan.dismantle.as_deref() != Some(k.krel.as_str())
    };
    for k in plan
        .kernels
        .iter()
        .filter(in_txn)
        .filter(|k| k.leaves_indexes)
    {
        any = true;
        println!(
            "would leave the indexes of kernel {} as they are and remove kabi's files no package owns (modules.kabi-cache, modules.weakdep): no link left, the kernel is not installed and indexed",
            k.krel
        );
    }
    let mut indexed: Vec<&str> = plan
        .kernels
        .iter()
        .filter(in_txn)
        .filter(|k| !k.leaves_indexes)
        .map(|k| k.krel.as_str())
        .collect();
    for k in &plan.depmod {
        if !indexed.contains(&k.as_str()) {
            indexed.push(k);
        }
    }
    for k in indexed {
        any = true;
        println!("would rewrite the indexes of kernel {k}");
    }
    if let Some(k) = &plan.dismantle {
        any = true;
        if let Some(kp) = plan.kernels.iter().find(|p| &p.krel == k) {
            for l in kp.before.keys() {
                println!("would remove weak-updates/{} in kernel {k}", l.display());
            }
        }
        println!("would remove the module directory of kernel {k} if nothing else is left in it");
    }
    for step in &plan.initrd {
        any = true;
        match &step.action {
            suse::initrd::Action::Dracut { image } => println!(
                "would run {} -f {} {}",
                env.dracut.display(),
                root.display(image).display(),
                step.krel
            ),
            suse::initrd::Action::Mark => println!(
                "would create {}",
                root.display(suse::initrd::mark_path(&step.krel)).display()
            ),
        }
    }
    if !any {
        println!("nothing to change");
    }
}
