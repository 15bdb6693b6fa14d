//! `kabi load` / `unload` / `lsmod`, the binary as `modprobe`, `insmod`, `rmmod`, `lsmod`,
//! and as `/init` of an initramfs that holds nothing else.

use crate::load::{LoadError, Loader, Options, Step};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// Print what would be done; load nothing
    #[arg(short = 'n', long = "dry-run")]
    pub dry_run: bool,
    /// Print the dependency chain as kmod does (insmod PATH PARAMS / builtin NAME)
    #[arg(long)]
    pub show_depends: bool,
    /// Quiet: no error for a module that is not found
    #[arg(short, long)]
    pub quiet: bool,
    #[arg(short, long)]
    pub verbose: bool,
    /// Load even when kabi check predicts a failure; the kernel ignores versions
    #[arg(short, long)]
    pub force: bool,
    /// Apply the blacklist to module names too
    #[arg(short = 'b', long)]
    pub use_blacklist: bool,
    /// Skip kabi's prediction: let the kernel decide
    #[arg(long)]
    pub no_check: bool,
    /// Every argument is a module (no parameters)
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Filesystem root of /lib/modules
    #[arg(short = 'd', long = "dirname", value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// Kernel release (default: the running kernel's)
    #[arg(short = 'S', long = "set-version", value_name = "KVER")]
    pub kver: Option<String>,
    /// Load with up to N threads where the dependency graph allows (with -a or --coldplug)
    #[arg(short = 'j', long = "jobs", value_name = "N", default_value_t = 1)]
    pub jobs: usize,
    /// Load what the devices in /sys/devices ask for (their modalias)
    #[arg(long)]
    pub coldplug: bool,
    /// NAME (module, alias or file), then its parameters (param=value ...)
    #[arg(
        value_name = "NAME [PARAM=VALUE...]",
        required_unless_present = "coldplug"
    )]
    pub args: Vec<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct UnloadArgs {
    /// Also remove the dependencies no longer used
    #[arg(short = 'r', long)]
    pub remove_dependencies: bool,
    #[arg(short, long)]
    pub verbose: bool,
    #[arg(value_name = "NAME", required = true)]
    pub names: Vec<String>,
}

fn cmdline() -> String {
    std::fs::read_to_string("/proc/cmdline").unwrap_or_default()
}

pub fn run_load(a: &LoadArgs) -> i32 {
    let kver = a.kver.clone().unwrap_or_else(super::running_release);
    let mut l = Loader::new(&a.root, &kver, &cmdline());
    let opts = Options {
        dry_run: a.dry_run || a.show_depends,
        force: a.force,
        use_blacklist: a.use_blacklist,
        no_check: a.no_check,
        verbose: a.verbose,
    };
    let (names, params): (Vec<String>, Vec<String>) = if a.coldplug {
        let n = l.coldplug_names();
        if a.verbose {
            println!("kabi: coldplug: {} modules wanted by the devices", n.len());
        }
        (n, Vec::new())
    } else if a.all {
        (a.args.clone(), Vec::new())
    } else {
        (vec![a.args[0].clone()], a.args[1..].to_vec())
    };
    if (a.jobs > 1 || a.coldplug) && !opts.dry_run {
        return load_many(&mut l, &names, &opts, a);
    }
    let mut status = 0;
    for q in &names {
        let resolved = match l.resolve(q, &opts) {
            Ok(r) => r,
            Err(e) => {
                if !(a.quiet && matches!(e, LoadError::NotFound(..))) {
                    eprintln!("modprobe: FATAL: {e}");
                }
                status = 1;
                continue;
            }
        };
        for name in resolved {
            let steps = match l.plan(&name, &params) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("modprobe: FATAL: {e}");
                    status = 1;
                    continue;
                }
            };
            for s in steps {
                match s {
                    Step::Builtin { name } => {
                        if a.show_depends {
                            println!("builtin {name}");
                        } else if a.verbose {
                            println!("kabi: {name} is built in");
                        }
                    }
                    Step::Loaded { name } => {
                        if a.verbose {
                            println!("kabi: {name} is already loaded");
                        }
                    }
                    Step::Insmod { name, path, params } => {
                        if a.show_depends || a.dry_run || a.verbose {
                            println!("insmod {} {params}", path.display());
                        }
                        if opts.dry_run {
                            continue;
                        }
                        if let Some(Step::Loaded { .. } | Step::Builtin { .. }) = l.state(&name) {
                            if a.verbose {
                                println!("kabi: {name} is already loaded");
                            }
                            continue;
                        }
                        if let Err(e) = l.insert(&name, &path, &params, &opts) {
                            eprintln!("modprobe: ERROR: {e}");
                            status = 1;
                            break;
                        }
                    }
                }
            }
        }
    }
    status
}

/// Many modules at once, in parallel where the dependency graph allows.
fn load_many(l: &mut Loader, names: &[String], opts: &Options, a: &LoadArgs) -> i32 {
    let mut status = 0;
    let mut plans = Vec::new();
    for q in names {
        match l.resolve(q, opts) {
            Ok(r) => {
                for n in r {
                    match l.plan(&n, &[]) {
                        Ok(p) => plans.push(p),
                        Err(e) => {
                            eprintln!("modprobe: FATAL: {e}");
                            status = 1;
                        }
                    }
                }
            }
            Err(e) => {
                if !(a.quiet && matches!(e, LoadError::NotFound(..))) {
                    eprintln!("modprobe: FATAL: {e}");
                }
                status = 1;
            }
        }
    }
    let t = std::time::Instant::now();
    let results = l.load_parallel(&plans, opts, a.jobs.max(1));
    for (name, r) in &results {
        match r {
            Ok(()) => {
                if a.verbose {
                    println!("kabi: loaded {name}");
                }
            }
            Err(e) => {
                eprintln!("modprobe: ERROR: {e}");
                status = 1;
            }
        }
    }
    if a.verbose {
        println!(
            "kabi: {} modules in {:.3} s with {} jobs",
            results.len(),
            t.elapsed().as_secs_f64(),
            a.jobs.max(1)
        );
    }
    status
}

pub fn run_unload(a: &UnloadArgs) -> i32 {
    let mut status = 0;
    let kver = super::running_release();
    let l = Loader::new(Path::new("/"), &kver, "");
    for n in &a.names {
        let name = crate::tree::lookup::normalize(n);
        let mut todo = vec![name.clone()];
        if a.remove_dependencies {
            if let Ok(steps) = l.plan(&name, &[]) {
                // the dependencies, users first
                for s in steps.iter().rev() {
                    if let Step::Insmod { name: d, .. } | Step::Loaded { name: d } = s {
                        if *d != name && !todo.contains(d) {
                            todo.push(d.clone());
                        }
                    }
                }
            }
        }
        for (i, m) in todo.iter().enumerate() {
            let users = crate::load::loaded(Path::new("/proc"))
                .into_iter()
                .find(|x| x.0 == *m)
                .map(|x| x.2);
            if i > 0 && users != Some(0) {
                continue; // a dependency still in use (or not loaded) stays
            }
            if a.verbose {
                println!("rmmod {m}");
            }
            if let Err(e) = crate::load::unload(m) {
                if i == 0 {
                    eprintln!(
                        "rmmod: ERROR: could not remove module {m}: {}",
                        crate::depmod::errno_text(&e)
                    );
                    status = 1;
                    break;
                }
            }
        }
    }
    status
}

pub fn run_lsmod() -> i32 {
    println!("Module                  Size  Used by");
    for (name, size, used, by) in crate::load::loaded(Path::new("/proc")) {
        println!("{name:<19} {size:>8}  {used} {by}");
    }
    0
}

/// `/init` of a bare initramfs: mount /proc, /sys and /dev, run each line of
/// `/etc/kabi-init` as a kabi command line (printing `KABI-RUN:` / `KABI-EXIT:` markers
/// around each on the console), then power off.
pub fn run_init() -> i32 {
    use rustix::mount::{MountFlags, mount};
    // the console is a terminal: no colour codes in messages read back from it
    // SAFETY: PID 1 sets this before any other thread exists
    unsafe { std::env::set_var("NO_COLOR", "1") };
    let _ = std::fs::create_dir_all("/proc");
    let _ = std::fs::create_dir_all("/sys");
    let _ = std::fs::create_dir_all("/dev");
    let _ = mount("proc", "/proc", "proc", MountFlags::empty(), None);
    let _ = mount("sysfs", "/sys", "sysfs", MountFlags::empty(), None);
    let _ = mount("devtmpfs", "/dev", "devtmpfs", MountFlags::empty(), None);
    let script = std::fs::read_to_string("/etc/kabi-init").unwrap_or_default();
    for line in script.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        println!("KABI-RUN: {line}");
        let mut args: Vec<std::ffi::OsString> = vec!["kabi".into()];
        args.extend(
            crate::load::config::split_cmdline(line)
                .into_iter()
                .map(|w| w.trim_matches('"').to_string().into()),
        );
        let t = std::time::Instant::now();
        let code = super::main_kabi(args);
        use std::io::Write;
        let _ = std::io::stdout().flush();
        println!("KABI-EXIT: {code} ({:.3} s)", t.elapsed().as_secs_f64());
    }
    println!("KABI-DONE");
    let _ = std::io::Write::flush(&mut std::io::stdout());
    rustix::fs::sync();
    let _ = rustix::system::reboot(rustix::system::RebootCommand::PowerOff);
    0
}
