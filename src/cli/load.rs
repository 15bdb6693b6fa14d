//! `kabi load` / `unload` / `lsmod`, and the binary as `/init` of an initramfs that holds
//! nothing else. The work is the library's ([`crate::load`]); this file parses and renders.
//!
//! `kabi load` behaves as kmod's modprobe (the same plan, the same skips, the same
//! messages, `-n` silent without `-v`), plus: the kernel's verdict is predicted before the
//! insert of each module that is not the running kernel's own (`--no-check` to let the
//! kernel decide; its own modules are inserted at once, and the prediction says why when the
//! kernel refuses one), a failure names its errno and what the
//! kernel logged, `-j N` loads in parallel, `--coldplug` loads what the devices ask for, a
//! directory without `modules.dep.bin` is read from `modules.dep` or scanned. With
//! `--root DIR`, the module directory and the modprobe.d directories are those below DIR
//! (kmod's `-d` reads the host's modprobe.d); the running kernel is always the host's.

use super::exit;
use super::kmod::Log;
use crate::load::config::{DIRS, ModprobeConfig};
use crate::load::exec::insert_failure;
use crate::load::index::ModuleIndex;
use crate::load::kernel::{LiveKernel, System};
use crate::load::predict::RunningPredictor;
use crate::load::{Event, Level, Loader, Options};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// Do not load; with -v, print what would be done
    #[arg(short = 'n', long = "dry-run")]
    pub dry_run: bool,
    /// Print the dependency chain as kmod does (insmod PATH PARAMS / builtin NAME)
    #[arg(short = 'D', long)]
    pub show_depends: bool,
    /// Quiet: no messages
    #[arg(short, long)]
    pub quiet: bool,
    /// Print each insmod (and install command) as it is done
    #[arg(short, long)]
    pub verbose: bool,
    /// Load even when kabi check predicts a failure; the kernel ignores versions
    #[arg(short, long)]
    pub force: bool,
    /// Apply the blacklist to module names too (aliases always are)
    #[arg(short = 'b', long)]
    pub use_blacklist: bool,
    /// Skip modprobe.d install commands
    #[arg(short = 'i', long = "ignore-install")]
    pub ignore_install: bool,
    /// Fail if the module is already loaded
    #[arg(long)]
    pub first_time: bool,
    /// Skip kabi's prediction: let the kernel decide
    #[arg(long)]
    pub no_check: bool,
    /// Every argument is a module (no parameters)
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Root of the module tree and of the modprobe.d directories
    #[arg(long = "root", value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// Kernel release (default: the running kernel's)
    #[arg(short = 'S', long = "set-version", value_name = "KVER")]
    pub kver: Option<String>,
    /// modprobe.d files or directories to read instead of the default ones
    #[arg(short = 'C', long = "config", value_name = "PATH")]
    pub config: Vec<PathBuf>,
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

impl LoadArgs {
    /// `kabi load`'s arguments (after `load`) in the forms udev and scripts use: boolean
    /// flags one per argument (`-v`, `--dry-run`), then or among them the name and its
    /// parameters. `None` for anything else (an option with a value, grouped or repeated
    /// flags, `--`, `-h`, no name, an argument that is not UTF-8): clap parses those, with
    /// its messages. What this accepts, clap parses the same way (a property test compares
    /// them); it only saves building clap's parser, 90,000 instructions per load.
    pub fn quick(args: &[std::ffi::OsString]) -> Option<LoadArgs> {
        let mut a = LoadArgs {
            dry_run: false,
            show_depends: false,
            quiet: false,
            verbose: false,
            force: false,
            use_blacklist: false,
            ignore_install: false,
            first_time: false,
            no_check: false,
            all: false,
            root: PathBuf::from("/"),
            kver: None,
            config: Vec::new(),
            jobs: 1,
            coldplug: false,
            args: Vec::new(),
        };
        for raw in args {
            let s = raw.to_str()?;
            if !s.starts_with('-') {
                a.args.push(s.to_string());
                continue;
            }
            let flag = match s {
                "-n" | "--dry-run" => &mut a.dry_run,
                "-D" | "--show-depends" => &mut a.show_depends,
                "-q" | "--quiet" => &mut a.quiet,
                "-v" | "--verbose" => &mut a.verbose,
                "-f" | "--force" => &mut a.force,
                "-b" | "--use-blacklist" => &mut a.use_blacklist,
                "-i" | "--ignore-install" => &mut a.ignore_install,
                "--first-time" => &mut a.first_time,
                "--no-check" => &mut a.no_check,
                "-a" | "--all" => &mut a.all,
                "--coldplug" => &mut a.coldplug,
                _ => return None,
            };
            // clap refuses a flag given twice
            if std::mem::replace(flag, true) {
                return None;
            }
        }
        (!a.args.is_empty() || a.coldplug).then_some(a)
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct UnloadArgs {
    /// Remove as modprobe -r does: remove commands, soft dependencies, and the dependencies
    /// no longer used
    #[arg(short = 'r', long)]
    pub remove_dependencies: bool,
    /// Print each rmmod
    #[arg(short, long)]
    pub verbose: bool,
    /// Do not remove; with -v, print what would be done
    #[arg(short = 'n', long = "dry-run")]
    pub dry_run: bool,
    /// Force the removal (dangerous)
    #[arg(short, long)]
    pub force: bool,
    /// With -r, remove the modules holding it first
    #[arg(long)]
    pub remove_holders: bool,
    /// Wait up to MSEC for the module's reference count to drop
    #[arg(short = 'w', long = "wait", value_name = "MSEC", default_value_t = 0)]
    pub wait: u64,
    /// Root of the module tree and of the modprobe.d directories (with -r)
    #[arg(long = "root", value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// Kernel release (default: the running kernel's)
    #[arg(short = 'S', long = "set-version", value_name = "KVER")]
    pub kver: Option<String>,
    #[arg(value_name = "NAME", required = true)]
    pub names: Vec<String>,
}

/// `<root>/lib/modules/<kver>` as kmod spells it (`/` adds nothing).
fn dirname(root: &Path, kver: &str) -> String {
    let r = root.to_string_lossy();
    let r = r.trim_end_matches('/');
    format!("{r}/lib/modules/{kver}")
}

/// The loader's inputs for a root: its module directory and its modprobe.d files.
fn loader_parts(
    root: &Path,
    kver: Option<&str>,
    config: &[PathBuf],
    system: &System,
) -> (ModuleIndex, ModprobeConfig) {
    let kver = kver
        .map(str::to_string)
        .or_else(|| system.release())
        .unwrap_or_else(super::kmod::uname_release);
    let dir = dirname(root, &kver);
    let paths: Vec<PathBuf> = if config.is_empty() {
        DIRS.iter().map(|d| root.join(d)).collect()
    } else {
        config.to_vec()
    };
    let cfg = ModprobeConfig::load(Some(Path::new(&dir)), &paths, system.cmdline().as_deref());
    (ModuleIndex::new(&dir, false), cfg)
}

/// Complete what an interrupted `weak-modules` run left in the kernel's module directory
/// before its indexes are read, so that the links and `modules.dep` agree (a dry run only
/// says so). Failing to complete it is reported; the load goes on with the tree as it is.
fn complete_pending(root: &Path, kver: Option<&str>, system: &System, dry_run: bool) {
    let Some(kver) = kver
        .map(str::to_string)
        .or_else(|| system.release())
        .filter(|k| crate::depmod::check_release(k).is_ok())
    else {
        return;
    };
    let Ok(r) = crate::root::Root::open(root) else {
        return;
    };
    let layout = crate::weak::Layout::default();
    if dry_run {
        let pending = r
            .open_dir(layout.kernel(&kver))
            .is_ok_and(|d| d.lstat(crate::weak::txn::RECORD).is_ok());
        if pending {
            eprintln!(
                "kabi: kernel {kver}: an interrupted weak-modules run is pending; the next kabi command that writes completes it"
            );
        }
        return;
    }
    match crate::weak::txn::recover_if_pending(&r, layout, &kver) {
        Ok(Some(m)) => eprintln!("kabi: {m}"),
        Ok(None) => {}
        Err(e) => eprintln!("kabi: WARNING: {e}"),
    }
}

pub fn run_load(a: &LoadArgs) -> i32 {
    crate::phase::mark("args");
    let system = System::host();
    complete_pending(
        &a.root,
        a.kver.as_deref(),
        &system,
        a.dry_run || a.show_depends,
    );
    crate::phase::mark("pending");
    let (index, config) = loader_parts(&a.root, a.kver.as_deref(), &a.config, &system);
    crate::phase::mark("loader");
    for m in &config.messages {
        eprint!("{}", m.render());
    }
    let kernel = LiveKernel::new(system.clone());
    let mut l = Loader::new(index, config, &kernel);
    let opts = Options {
        dry_run: a.dry_run || a.show_depends,
        ignore_loaded: a.show_depends,
        ignore_commands: a.ignore_install,
        first_time: a.first_time,
        use_blacklist: a.use_blacklist,
        force_modversion: a.force,
        force_vermagic: a.force,
        all: a.all || a.coldplug,
        show: a.verbose || a.show_depends,
        verbose: a.verbose,
        predict: !a.no_check,
        force: a.force,
        explain: true,
        own_modules: own_modules(&a.root, a.kver.as_deref(), &system),
        ..Options::default()
    };
    if opts.predict && !opts.dry_run {
        l.predictor = Some(Box::new(
            RunningPredictor::new(&system.proc, Some(PathBuf::from(&l.index.dirname)))
                .learning(opts.own_modules.is_some()),
        ));
    }
    let verbose = if a.quiet {
        0
    } else if a.verbose {
        Level::Notice as i32
    } else {
        Level::Warning as i32
    };
    let log = Log::new("kabi", verbose);
    let show = opts.show;
    let mut sink = |e: Event| log.event(e, show);
    let (names, params): (Vec<String>, Option<String>) = if a.coldplug {
        let n = l.coldplug_names();
        if a.verbose {
            println!("kabi: coldplug: {} modules wanted by the devices", n.len());
        }
        (n, None)
    } else if a.all {
        (a.args.clone(), None)
    } else {
        let p = a.args[1..].join(" ");
        (vec![a.args[0].clone()], (!p.is_empty()).then_some(p))
    };
    let status = if in_parallel(a.jobs, a.coldplug, params.as_deref(), opts.dry_run) {
        load_many(&mut l, &names, &opts, a, &log, &mut sink)
    } else {
        let mut failed = false;
        for q in &names {
            if !l.modprobe(q, params.as_deref(), &opts, &mut sink) {
                failed = true;
            }
        }
        exit::failed_if(failed)
    };
    if let Some(p) = l.predictor.as_mut() {
        p.finish();
        crate::phase::mark("update");
        if a.verbose
            && let Some(from) = p.source()
        {
            println!("kabi: the running kernel's ABI came from {from}");
        }
    }
    // the process ends with this command: its mapped indexes and snapshots and its
    // descriptors go with it (a dozen system calls per load, as udev runs it, saved); a
    // long-lived process (kabi as PID 1 running a command itself) frees them
    if !LONG_LIVED.load(std::sync::atomic::Ordering::Relaxed) {
        std::mem::forget(l);
    }
    status
}

/// The running kernel's own modules, `/lib/modules/RELEASE/kernel`, when the modules loaded
/// are the running release's of this machine's root (see [`Options::own_modules`]).
fn own_modules(root: &Path, kver: Option<&str>, system: &System) -> Option<PathBuf> {
    if root != Path::new("/") {
        return None;
    }
    let running = system.release()?;
    if kver.is_some_and(|k| k != running) {
        return None;
    }
    Some(PathBuf::from(dirname(root, &running)).join("kernel"))
}

/// Set while this process outlives the command it runs (`kabi` as `/init`).
static LONG_LIVED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Many modules at once, in parallel where the dependency graph allows.
/// Whether a load goes through the parallel schedule: `-j N` or coldplug, not a dry run, and
/// not one module given parameters (the schedule takes none: it would drop them), which is
/// loaded as one command loads it.
fn in_parallel(jobs: usize, coldplug: bool, params: Option<&str>, dry_run: bool) -> bool {
    (coldplug || (jobs > 1 && params.is_none())) && !dry_run
}

fn load_many(
    l: &mut Loader,
    names: &[String],
    opts: &Options,
    a: &LoadArgs,
    log: &Log,
    sink: &mut dyn FnMut(Event),
) -> i32 {
    let mut status = 0;
    let mut ids = Vec::new();
    for q in names {
        match l.resolve(q) {
            Ok(v) => ids.extend(v),
            Err(message) => {
                sink(Event::Tool(opts.log_level(), message));
                status = 1;
            }
        }
    }
    let t = std::time::Instant::now();
    let results = l.load_parallel(&ids, opts, a.jobs.max(1), sink);
    for (name, r) in &results {
        match r {
            Ok(()) => {
                if a.verbose {
                    println!("kabi: loaded {name}");
                }
            }
            Err(f) => {
                log.tool(Level::Err, &insert_failure(name, f, opts));
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
    let system = System::host();
    let kernel = LiveKernel::new(system.clone());
    let verbose = if a.verbose {
        Level::Notice as i32
    } else {
        Level::Warning as i32
    };
    let log = Log::new("kabi", verbose);
    let opts = Options {
        dry_run: a.dry_run,
        force_remove: a.force,
        remove_holders: a.remove_holders,
        wait_msec: a.wait,
        show: a.verbose,
        verbose: a.verbose,
        all: true,
        ..Options::default()
    };
    let mut sink = |e: Event| log.event(e, opts.show);
    if !a.remove_dependencies {
        let (index, _) = loader_parts(&a.root, a.kver.as_deref(), &[], &system);
        let mut l = Loader::new(index, ModprobeConfig::default(), &kernel);
        if a.dry_run {
            for n in &a.names {
                sink(Event::ShowNow(format!("rmmod {n}\n")));
            }
            return exit::OK;
        }
        return exit::failed_if(l.rmmod(&a.names, a.force, &mut sink) > 0);
    }
    let (index, config) = loader_parts(&a.root, a.kver.as_deref(), &[], &system);
    for m in &config.messages {
        eprint!("{}", m.render());
    }
    let mut l = Loader::new(index, config, &kernel);
    let mut failed = false;
    for n in &a.names {
        if l.remove(n, &opts, &mut sink).is_err() {
            failed = true;
        }
    }
    exit::failed_if(failed)
}

pub fn run_lsmod() -> i32 {
    super::kmod::lsmod(&LiveKernel::new(System::host()))
}

/// `/init` of a bare initramfs: mount /proc, /sys and /dev, run each line of
/// `/etc/kabi-init` as a kabi command line, or a line starting with `!` as a program
/// (`!NAME=VALUE PROGRAM ARGS`), printing `KABI-RUN:` / `KABI-EXIT:` markers around each on
/// the console, then power off. Only as PID 1: anywhere else it would
/// mount over the host's directories and power the machine off.
/// Started with no `/dev/console` in the initramfs, init had nothing open: its standard
/// descriptors hold `O_PATH` placeholders (see `main`). Now that devtmpfs is mounted, the
/// console takes their place, so that what the commands print is seen.
fn console_on_placeholders() {
    use rustix::fs::OFlags;
    let held: Vec<i32> = (0..3)
        .filter(|&fd| {
            // SAFETY: F_GETFL on a standard descriptor number only reads its flags
            let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
            fl >= 0 && (fl & libc::O_PATH) != 0
        })
        .collect();
    if held.is_empty() {
        return;
    }
    let Ok(console) = rustix::fs::open(
        "/dev/console",
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    ) else {
        return;
    };
    for fd in held {
        // SAFETY: dup2 onto a standard descriptor this process holds a placeholder at
        unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&console), fd) };
    }
}

pub fn run_init() -> i32 {
    LONG_LIVED.store(true, std::sync::atomic::Ordering::Relaxed);
    let pid = rustix::process::getpid();
    if !pid.is_init() {
        eprintln!(
            "kabi: invoked as init with process ID {}: init mode runs only as process 1 \
             (the /init of an initramfs); nothing done",
            pid.as_raw_nonzero()
        );
        return exit::FAILED;
    }
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
    console_on_placeholders();
    let script = std::fs::read_to_string("/etc/kabi-init").unwrap_or_default();
    for line in script.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        println!("KABI-RUN: {line}");
        let words: Vec<String> = crate::load::config::split_cmdline(line.trim_start_matches('!'))
            .into_iter()
            .map(|w| w.trim_matches('"').to_string())
            .collect();
        let t = std::time::Instant::now();
        // a command that would exit (a fatal message) must not end PID 1: run it in a child
        let code = if line.starts_with('!') {
            run_program(&words)
        } else {
            let mut args: Vec<std::ffi::OsString> = vec!["kabi".into()];
            args.extend(words.into_iter().map(Into::into));
            run_child(args)
        };
        use std::io::Write;
        let _ = std::io::stdout().flush();
        println!("KABI-EXIT: {code} ({:.3} s)", t.elapsed().as_secs_f64());
    }
    println!("KABI-DONE");
    let _ = std::io::Write::flush(&mut std::io::stdout());
    rustix::fs::sync();
    let _ = rustix::system::reboot(rustix::system::RebootCommand::PowerOff);
    exit::OK
}

/// A `!` line of `/etc/kabi-init`: `[NAME=VALUE...] PROGRAM ARGS...`, run as a shell would
/// (the program found in `PATH`, by default `/sbin:/bin:/usr/sbin:/usr/bin`), its status.
fn run_program(words: &[String]) -> i32 {
    let is_assignment = |w: &str| {
        w.split_once('=').is_some_and(|(k, _)| {
            !k.is_empty()
                && !k.starts_with(|c: char| c.is_ascii_digit())
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
    };
    let n = words.iter().take_while(|w| is_assignment(w)).count();
    let Some(prog) = words.get(n) else {
        return exit::NOT_RUN;
    };
    let mut c = std::process::Command::new(prog);
    c.args(&words[n + 1..])
        .env("PATH", "/sbin:/bin:/usr/sbin:/usr/bin");
    for w in &words[..n] {
        if let Some((k, v)) = w.split_once('=') {
            c.env(k, v);
        }
    }
    match c.status() {
        Ok(s) => s.code().unwrap_or(exit::NO_STATUS),
        Err(e) => {
            eprintln!("kabi init: {prog}: {e}");
            exit::NOT_RUN
        }
    }
}

/// Run one `/etc/kabi-init` line in a child process (`fork`), so that a command ending the
/// process (kmod's fatal messages do) returns its status here.
fn run_child(args: Vec<std::ffi::OsString>) -> i32 {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    // SAFETY: PID 1 runs single-threaded here; the child only runs kabi's command and exits
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        LONG_LIVED.store(false, std::sync::atomic::Ordering::Relaxed);
        let code = super::main_kabi(args);
        let _ = std::io::stdout().flush();
        // SAFETY: leave the child without running the parent's exit handlers
        unsafe { libc::_exit(code) };
    }
    if pid < 0 {
        return super::main_kabi(args);
    }
    let mut status = 0;
    // SAFETY: waiting for the child just made
    if unsafe { libc::waitpid(pid, &mut status, 0) } < 0 {
        return exit::NO_STATUS;
    }
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        exit::NO_STATUS + libc::WTERMSIG(status)
    }
}

#[cfg(test)]
mod tests {
    use super::in_parallel;

    /// `kabi load -j 4 foo debug=1` loads foo with its parameter (serially); the parallel
    /// schedule is for several modules, coldplug, and one module without parameters.
    #[test]
    fn parameters_are_never_dropped_by_a_parallel_load() {
        assert!(!in_parallel(4, false, Some("debug=1"), false));
        assert!(in_parallel(4, false, None, false));
        assert!(!in_parallel(1, false, None, false));
        assert!(in_parallel(1, true, None, false));
        assert!(!in_parallel(4, true, None, true));
    }
}
