//! The binary under kmod's names: `modprobe`, `insmod`, `rmmod`, `lsmod` (and `modinfo`'s
//! option parsing). Every option of kmod 30's tools, parsed as `getopt_long` does, with
//! kmod's meaning, messages and exit codes; the work is the library's ([`crate::load`]).

use super::exit;
use super::getopt::{self, HasArg, LongOpt, Opt, long};
use crate::load::config::{KMOD_DIRS, ModprobeConfig};
use crate::load::index::ModuleIndex;
use crate::load::kernel::{KernelOps, LiveKernel, System};
use crate::load::{Event, Level, Loader, Options};
use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

/// kabi's version in the layout of `kmod -V` (its name and version, then the features).
pub fn version_text() -> String {
    format!(
        "kabi version {}\n+ZSTD +XZ +ZLIB +LIBCRYPTO -EXPERIMENTAL\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// `argv[0]` as given, and its base name (`program_invocation_short_name`).
fn names(args: &[OsString]) -> (String, String) {
    let full = args
        .first()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_default();
    let short = full.rsplit('/').next().unwrap_or(&full).to_string();
    (full, short)
}

fn strings(args: &[OsString]) -> Vec<String> {
    args.iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

/// Where kmod's tools send messages: stderr (`prog: LEVEL: text`) or syslog, filtered by
/// the verbosity; a printed fatal message ends the program. Standard output is buffered as
/// stdio buffers it (by line on a terminal, in blocks of 4096 bytes elsewhere), so that what
/// kmod prints and what a command it runs prints come out in kmod's order.
pub struct Log {
    pub prog: String,
    /// Messages up to this priority are shown.
    pub verbose: i32,
    pub syslog: bool,
    out: std::cell::RefCell<Vec<u8>>,
    /// Whether stdout is a terminal (line-buffered then), asked on the first output.
    tty: std::cell::OnceCell<bool>,
}

/// stdio's buffer size for a pipe or a file.
const STDIO_BUFSIZ: usize = 4096;

impl Drop for Log {
    fn drop(&mut self) {
        self.flush();
    }
}

impl Log {
    pub fn new(prog: &str, verbose: i32) -> Log {
        Log {
            prog: prog.to_string(),
            verbose,
            syslog: false,
            out: std::cell::RefCell::new(Vec::new()),
            tty: std::cell::OnceCell::new(),
        }
    }

    /// Write what stdio would still hold.
    pub fn flush(&self) {
        let mut b = self.out.borrow_mut();
        if !b.is_empty() {
            print_out_bytes(&b);
            b.clear();
        }
    }

    /// `printf` to stdout.
    fn printf(&self, s: &str) {
        use std::io::IsTerminal;
        let mut b = self.out.borrow_mut();
        b.extend_from_slice(s.as_bytes());
        let full = b.len() >= STDIO_BUFSIZ;
        drop(b);
        if full || *self.tty.get_or_init(|| std::io::stdout().is_terminal()) {
            self.flush();
        }
    }

    fn emit(&self, level: Level, text: &str) {
        if self.syslog {
            syslog(&self.prog, level, text);
        } else {
            eprint!("{}: {}: {text}", self.prog, level.name());
        }
    }

    /// A message of the tool (`log_printf`).
    pub fn tool(&self, level: Level, text: &str) {
        if level as i32 > self.verbose {
            return;
        }
        self.emit(level, text);
        if level <= Level::Crit {
            // exit(3) flushes stdio
            self.flush();
            std::process::exit(1);
        }
    }

    /// A message of libkmod after the tool set its log function up (`log_kmod`).
    pub fn lib(&self, level: Level, at: &str, text: &str) {
        if level as i32 > self.verbose {
            return;
        }
        let (file_line, func) = at.split_once(' ').unwrap_or((at, ""));
        self.emit(level, &format!("../libkmod/{file_line} {func}() {text}"));
    }

    /// Render one event of the loader (`show`: print the `insmod`/`install` lines).
    pub fn event(&self, e: Event, show: bool) {
        match e {
            Event::Show(s) => {
                if show {
                    self.printf(&s);
                }
            }
            Event::ShowNow(s) => {
                if show {
                    self.printf(&s);
                    self.flush();
                }
            }
            Event::Out(s) => self.printf(&s),
            Event::Tool(l, t) => self.tool(l, &t),
            Event::Lib(l, at, t) => self.lib(l, at, &t),
        }
    }
}

/// Write to stdout and flush (a closed pipe kills the process with SIGPIPE, as kmod).
fn print_out(s: &str) {
    print_out_bytes(s.as_bytes());
}

fn print_out_bytes(s: &[u8]) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(s);
    let _ = o.flush();
}

/// `syslog(prio, "%s: %s", prioname, msg)` after `openlog(prog, LOG_CONS, LOG_DAEMON)`, sent
/// to `/dev/log`.
fn syslog(prog: &str, level: Level, text: &str) {
    let msg = format!(
        "<{}>{prog}: {}: {}",
        (3 << 3) | level as i32,
        level.name(),
        text.trim_end_matches('\n')
    );
    if let Ok(s) = std::os::unix::net::UnixDatagram::unbound() {
        let _ = s.send_to(msg.as_bytes(), "/dev/log");
    }
}

/// `uname -r`.
pub fn uname_release() -> String {
    rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned()
}

const MODPROBE_SHORT: &str = "arw:RibfDcnC:d:S:sqvVh";
const MODPROBE_LONG: &[LongOpt] = &[
    long("all", HasArg::No, 'a' as i32),
    long("remove", HasArg::No, 'r' as i32),
    long("remove-dependencies", HasArg::No, 5),
    long("remove-holders", HasArg::No, 5),
    long("wait", HasArg::Required, 'w' as i32),
    long("resolve-alias", HasArg::No, 'R' as i32),
    long("first-time", HasArg::No, 3),
    long("ignore-install", HasArg::No, 'i' as i32),
    long("ignore-remove", HasArg::No, 'i' as i32),
    long("use-blacklist", HasArg::No, 'b' as i32),
    long("force", HasArg::No, 'f' as i32),
    long("force-modversion", HasArg::No, 2),
    long("force-vermagic", HasArg::No, 1),
    long("show-depends", HasArg::No, 'D' as i32),
    long("showconfig", HasArg::No, 'c' as i32),
    long("show-config", HasArg::No, 'c' as i32),
    long("show-modversions", HasArg::No, 4),
    long("dump-modversions", HasArg::No, 4),
    long("show-exports", HasArg::No, 6),
    long("dry-run", HasArg::No, 'n' as i32),
    long("show", HasArg::No, 'n' as i32),
    long("config", HasArg::Required, 'C' as i32),
    long("dirname", HasArg::Required, 'd' as i32),
    long("set-version", HasArg::Required, 'S' as i32),
    long("syslog", HasArg::No, 's' as i32),
    long("quiet", HasArg::No, 'q' as i32),
    long("verbose", HasArg::No, 'v' as i32),
    long("version", HasArg::No, 'V' as i32),
    long("help", HasArg::No, 'h' as i32),
];

fn modprobe_help(p: &str) -> String {
    format!(
        "Usage:\n\
\t{p} [options] [-i] [-b] modulename\n\
\t{p} [options] -a [-i] [-b] modulename [modulename...]\n\
\t{p} [options] -r [-i] modulename\n\
\t{p} [options] -r -a [-i] modulename [modulename...]\n\
\t{p} [options] -c\n\
\t{p} [options] --dump-modversions filename\n\
Management Options:\n\
\t-a, --all                   Consider every non-argument to\n\
\t                            be a module name to be inserted\n\
\t                            or removed (-r)\n\
\t-r, --remove                Remove modules instead of inserting\n\
\t    --remove-dependencies   Deprecated: use --remove-holders\n\
\t    --remove-holders        Also remove module holders (use together with -r)\n\
\t-w, --wait <MSEC>           When removing a module, wait up to MSEC for\n\
\t                            module's refcount to become 0 so it can be\n\
\t                            removed (use together with -r)\n\
\t    --first-time            Fail if module already inserted or removed\n\
\t-i, --ignore-install        Ignore install commands\n\
\t-i, --ignore-remove         Ignore remove commands\n\
\t-b, --use-blacklist         Apply blacklist to resolved alias.\n\
\t-f, --force                 Force module insertion or removal.\n\
\t                            implies --force-modversions and\n\
\t                            --force-vermagic\n\
\t    --force-modversion      Ignore module's version\n\
\t    --force-vermagic        Ignore module's version magic\n\
\n\
Query Options:\n\
\t-R, --resolve-alias         Only lookup and print alias and exit\n\
\t-D, --show-depends          Only print module dependencies and exit\n\
\t-c, --showconfig            Print out known configuration and exit\n\
\t-c, --show-config           Same as --showconfig\n\
\t    --show-modversions      Dump module symbol version and exit\n\
\t    --dump-modversions      Same as --show-modversions\n\
\t    --show-exports          Only print module exported symbol versions and exit\n\
\n\
General Options:\n\
\t-n, --dry-run               Do not execute operations, just print out\n\
\t-n, --show                  Same as --dry-run\n\
\t-C, --config=FILE           Use FILE instead of default search paths\n\
\t-d, --dirname=DIR           Use DIR as filesystem root for /lib/modules\n\
\t-S, --set-version=VERSION   Use VERSION instead of `uname -r`\n\
\t-s, --syslog                print to syslog, not stderr\n\
\t-q, --quiet                 disable messages\n\
\t-v, --verbose               enables more messages\n\
\t-V, --version               show version\n\
\t-h, --help                  show this help\n"
    )
}

/// kmod's `env_modprobe_options_append`: options that nested modprobe calls (from install
/// commands) inherit through `$MODPROBE_OPTIONS`.
fn env_append(value: &str) {
    let new = match std::env::var("MODPROBE_OPTIONS") {
        Ok(old) => format!("{old} {value}"),
        Err(_) => value.to_string(),
    };
    // SAFETY: set while parsing the command line, before any thread exists
    unsafe { std::env::set_var("MODPROBE_OPTIONS", new) };
}

/// kmod's `options_from_array`: the parameters after the module name joined by spaces, a
/// value with a space quoted.
fn options_from_array(args: &[String]) -> Option<String> {
    if args.is_empty() {
        return None;
    }
    let mut out = String::new();
    for a in args {
        if !out.is_empty() {
            out.push(' ');
        }
        match a.split_once('=') {
            Some((k, v)) if !v.starts_with(['"', '\'']) && v.contains(' ') => {
                out.push_str(&format!("{k}=\"{v}\""));
            }
            _ => out.push_str(a),
        }
    }
    Some(out)
}

/// The binary as `modprobe`.
pub fn main_modprobe(args: Vec<OsString>) -> i32 {
    let (full, prog) = names(&args);
    let mut argv = strings(&args);
    if let Ok(env) = std::env::var("MODPROBE_OPTIONS") {
        let mut v = getopt::split_modprobe_options(&env);
        v.extend(argv);
        argv = v;
    }
    let parsed = match getopt::getopt_long(&full, &argv, MODPROBE_SHORT, MODPROBE_LONG) {
        Ok(p) => p,
        Err(msg) => {
            eprint!("{msg}");
            return exit::KMOD_USAGE;
        }
    };
    let o = match modprobe_options(&parsed.opts, &prog) {
        Ok(o) => o,
        Err(code) => return code,
    };
    let mut log = Log::new(&prog, Level::Warning as i32);
    log.syslog = o.syslog || !stderr_ok();
    if !o.show_config && parsed.operands.is_empty() {
        log.tool(Level::Err, "missing parameters. See -h.\n");
        return exit::KMOD_USAGE;
    }
    run_modprobe(&o, &parsed.operands, log)
}

/// modprobe's options applied in command-line order; `Err(status)` when modprobe stops
/// there (`-h`, `-V`, a bad `-w` value).
fn modprobe_options(opts: &[Opt], prog: &str) -> Result<ModprobeArgs, i32> {
    let early = Log::new(prog, Level::Warning as i32);
    let mut o = ModprobeArgs {
        verbose: Level::Warning as i32,
        ..ModprobeArgs::default()
    };
    for Opt { val, arg } in opts {
        let arg = arg.clone().unwrap_or_default();
        match char::from_u32(*val as u32)
            .filter(|_| *val > 6)
            .unwrap_or('\0')
        {
            'a' => o.opts.all = true,
            'r' => o.remove = true,
            'w' => match parse_ul(&arg) {
                Some(ms) => o.opts.wait_msec = ms,
                None => {
                    early.tool(Level::Err, &format!("unexpected wait value '{arg}'.\n"));
                    return Err(1);
                }
            },
            'i' => o.opts.ignore_commands = true,
            'b' => o.opts.use_blacklist = true,
            'f' => o.force = true,
            'D' => {
                o.opts.ignore_loaded = true;
                o.opts.dry_run = true;
                o.do_show = true;
            }
            'R' => o.lookup_only = true,
            'c' => o.show_config = true,
            'n' => o.opts.dry_run = true,
            'C' => {
                o.config.push(PathBuf::from(&arg));
                env_append("-C");
                env_append(&arg);
            }
            'd' => o.root = Some(arg),
            'S' => o.kver = Some(arg),
            's' => {
                env_append("-s");
                o.syslog = true;
            }
            'q' => {
                env_append("-q");
                o.verbose = 0;
            }
            'v' => {
                env_append("-v");
                o.verbose += 1;
            }
            'V' => {
                print_out(&version_text());
                return Err(0);
            }
            'h' => {
                print_out(&modprobe_help(prog));
                return Err(0);
            }
            // the long-only options (values 1 to 6)
            _ => match val {
                5 => o.opts.remove_holders = true,
                3 => o.opts.first_time = true,
                2 => o.opts.force_modversion = true,
                1 => o.opts.force_vermagic = true,
                4 => o.show_modversions = true,
                6 => o.show_exports = true,
                _ => return Err(1),
            },
        }
    }
    if o.force {
        o.opts.force_modversion = true;
        o.opts.force_vermagic = true;
        o.opts.force_remove = true;
    }
    o.opts.show = o.do_show || o.verbose > Level::Warning as i32;
    o.opts.verbose = o.verbose > Level::Warning as i32;
    Ok(o)
}

/// Is stderr usable (kmod falls back to syslog when it is not)?
fn stderr_ok() -> bool {
    rustix::fs::fstat(rustix::stdio::stderr()).is_ok()
}

/// `strtoul(arg, &end, 0)` with kmod's check: all of it a number.
fn parse_ul(s: &str) -> Option<u64> {
    let t = s.trim_start();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (radix, digits) = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        (16, h)
    } else if t.len() > 1 && t.starts_with('0') {
        (8, &t[1..])
    } else {
        (10, t)
    };
    if digits.is_empty() && radix != 8 {
        return None;
    }
    let v = if digits.is_empty() {
        0
    } else {
        u64::from_str_radix(digits, radix).ok()?
    };
    Some(if neg { v.wrapping_neg() } else { v })
}

#[derive(Default)]
struct ModprobeArgs {
    opts: Options,
    remove: bool,
    force: bool,
    do_show: bool,
    lookup_only: bool,
    show_config: bool,
    show_modversions: bool,
    show_exports: bool,
    config: Vec<PathBuf>,
    root: Option<String>,
    kver: Option<String>,
    syslog: bool,
    verbose: i32,
}

fn run_modprobe(o: &ModprobeArgs, args: &[String], mut log: Log) -> i32 {
    let system = System::host();
    let dirname = if o.root.is_some() || o.kver.is_some() {
        format!(
            "{}/lib/modules/{}",
            o.root.as_deref().unwrap_or(""),
            o.kver.clone().unwrap_or_else(uname_release)
        )
    } else {
        format!("/lib/modules/{}", uname_release())
    };
    let dirname = crate::load::absolute(&dirname);
    let paths: Vec<PathBuf> = if o.config.is_empty() {
        KMOD_DIRS.iter().map(PathBuf::from).collect()
    } else {
        o.config.clone()
    };
    let config = ModprobeConfig::load(
        Some(std::path::Path::new(&dirname)),
        &paths,
        system.cmdline().as_deref(),
    );
    for m in &config.messages {
        eprint!("{}", m.render());
    }
    log.verbose = o.verbose;
    let kernel = LiveKernel::new(system);
    let mut loader = Loader::new(ModuleIndex::new(&dirname, true), config, &kernel);
    let show = o.opts.show;
    let mut sink = |e: Event| log.event(e, show);
    if o.show_config {
        print_out(&loader.config.render());
        print_out("\n# End of configuration files. Dumping indexes now:\n\n");
        for idx in ["modules.alias.bin", "modules.symbols.bin"] {
            let mut s = String::new();
            for (k, v) in loader.index.dump(idx) {
                s.push_str(&format!("alias {k} {v}\n"));
            }
            print_out(&s);
        }
        return exit::OK;
    }
    if o.show_modversions || o.show_exports {
        return super::modversions::kmod_dump(&args[0], o.show_exports, &mut sink);
    }
    let mut opts = o.opts.clone();
    opts.lookup_only = o.lookup_only;
    let mut failed = false;
    if o.remove {
        for a in args {
            if loader.remove(a, &opts, &mut sink).is_err() {
                failed = true;
            }
        }
    } else if opts.all {
        for a in args {
            if !loader.modprobe(a, None, &opts, &mut sink) {
                failed = true;
            }
        }
    } else {
        let extra = options_from_array(&args[1..]);
        failed = !loader.modprobe(&args[0], extra.as_deref(), &opts, &mut sink);
    }
    exit::kmod_failed_if(failed)
}

/// The binary as `insmod`: one file and its parameters.
pub fn main_insmod(args: Vec<OsString>) -> i32 {
    let (full, prog) = names(&args);
    const LONG: &[LongOpt] = &[
        long("version", HasArg::No, 'V' as i32),
        long("help", HasArg::No, 'h' as i32),
    ];
    let parsed = match getopt::getopt_long(&full, &strings(&args), "psfVh", LONG) {
        Ok(p) => p,
        Err(msg) => {
            eprint!("{msg}");
            return exit::KMOD_USAGE;
        }
    };
    let log = Log::new(&prog, Level::Warning as i32);
    let mut force = false;
    for o in &parsed.opts {
        match o.val {
            v if v == 'p' as i32 || v == 's' as i32 => {}
            v if v == 'f' as i32 => force = true,
            v if v == 'h' as i32 => {
                print_out(&format!(
                    "Usage:\n\t{prog} [options] filename [args]\nOptions:\n\
                     \t-V, --version     show version\n\t-h, --help        show this help\n"
                ));
                return exit::OK;
            }
            v if v == 'V' as i32 => {
                print_out(&version_text());
                return exit::OK;
            }
            _ => return 1,
        }
    }
    let Some(file) = parsed.operands.first() else {
        log.tool(Level::Err, "missing filename.\n");
        return exit::KMOD_USAGE;
    };
    if file == "-" {
        log.tool(
            Level::Err,
            "this tool does not support loading from stdin!\n",
        );
        return exit::KMOD_USAGE;
    }
    let params = parsed.operands[1..].join(" ");
    let kernel = LiveKernel::new(System::host());
    let ok = crate::load::exec::insmod(&kernel, file, &params, force, &mut |e| log.event(e, false));
    exit::kmod_failed_if(!ok)
}

/// The binary as `rmmod`.
pub fn main_rmmod(args: Vec<OsString>) -> i32 {
    let (full, prog) = names(&args);
    const LONG: &[LongOpt] = &[
        long("force", HasArg::No, 'f' as i32),
        long("syslog", HasArg::No, 's' as i32),
        long("verbose", HasArg::No, 'v' as i32),
        long("version", HasArg::No, 'V' as i32),
        long("wait", HasArg::No, 'w' as i32),
        long("help", HasArg::No, 'h' as i32),
    ];
    let parsed = match getopt::getopt_long(&full, &strings(&args), "fsvVwh", LONG) {
        Ok(p) => p,
        Err(msg) => {
            eprint!("{msg}");
            return exit::KMOD_USAGE;
        }
    };
    let mut log = Log::new(&prog, Level::Warning as i32);
    let (mut force, mut verbose) = (false, Level::Err as i32);
    for o in &parsed.opts {
        match o.val {
            v if v == 'f' as i32 => force = true,
            v if v == 's' as i32 => log.syslog = true,
            v if v == 'v' as i32 => verbose += 1,
            v if v == 'h' as i32 => {
                print_out(&format!(
                    "Usage:\n\t{prog} [options] modulename ...\nOptions:\n\
                     \t-f, --force       forces a module unload and may crash your\n\
                     \t                  machine. This requires Forced Module Removal\n\
                     \t                  option in your kernel. DANGEROUS\n\
                     \t-s, --syslog      print to syslog, not stderr\n\
                     \t-v, --verbose     enables more messages\n\
                     \t-V, --version     show version\n\
                     \t-h, --help        show this help\n"
                ));
                return exit::OK;
            }
            v if v == 'V' as i32 => {
                print_out(&version_text());
                return exit::OK;
            }
            c => {
                let c = char::from_u32(c as u32).unwrap_or('?');
                log.tool(
                    Level::Err,
                    &format!("unexpected getopt_long() value '{c}'.\n"),
                );
                return exit::KMOD_USAGE;
            }
        }
    }
    if parsed.operands.is_empty() {
        log.tool(Level::Err, "missing module name.\n");
        return exit::KMOD_USAGE;
    }
    log.verbose = verbose;
    let kernel = LiveKernel::new(System::host());
    let dirname = format!("/lib/modules/{}", uname_release());
    let mut loader = Loader::new(
        ModuleIndex::new(&dirname, true),
        ModprobeConfig::default(),
        &kernel,
    );
    let failed = loader.rmmod(&parsed.operands, force, &mut |e| log.event(e, false));
    exit::kmod_failed_if(failed > 0)
}

/// The binary as `lsmod` (kmod 30's takes no options).
pub fn main_lsmod(args: Vec<OsString>) -> i32 {
    let (full, _) = names(&args);
    if args.len() != 1 {
        eprintln!("Usage: {full}");
        return exit::KMOD_USAGE;
    }
    let kernel = LiveKernel::new(System::host());
    lsmod(&kernel)
}

/// lsmod's table, or kmod's error.
pub fn lsmod(kernel: &dyn KernelOps) -> i32 {
    match crate::load::exec::lsmod(kernel) {
        Ok(rows) => {
            let mut s = String::from("Module                  Size  Used by\n");
            for r in rows {
                s.push_str(&r.render());
            }
            print_out(&s);
            exit::OK
        }
        Err(e) => {
            let msg = crate::depmod::errno_text(&e);
            eprintln!(
                "libkmod: ERROR ../libkmod/libkmod-module.c:1725 kmod_module_new_from_loaded: could not open /proc/modules: {msg}"
            );
            eprintln!("Error: could not get list of modules: {msg}");
            exit::KMOD_FAILURE
        }
    }
}

/// The binary as `modinfo`: kmod's options through `getopt_long` (the last of `-a -d -l -p
/// -n -F` wins), then `kabi info`'s work.
pub fn main_modinfo(args: Vec<OsString>) -> i32 {
    let (full, prog) = names(&args);
    const LONG: &[LongOpt] = &[
        long("author", HasArg::No, 'a' as i32),
        long("description", HasArg::No, 'd' as i32),
        long("license", HasArg::No, 'l' as i32),
        long("parameters", HasArg::No, 'p' as i32),
        long("filename", HasArg::No, 'n' as i32),
        long("null", HasArg::No, '0' as i32),
        long("modname", HasArg::No, 'm' as i32),
        long("field", HasArg::Required, 'F' as i32),
        long("set-version", HasArg::Required, 'k' as i32),
        long("basedir", HasArg::Required, 'b' as i32),
        long("version", HasArg::No, 'V' as i32),
        long("help", HasArg::No, 'h' as i32),
    ];
    let parsed = match getopt::getopt_long(&full, &strings(&args), "adlpn0mF:k:b:Vh", LONG) {
        Ok(p) => p,
        Err(msg) => {
            eprint!("{msg}");
            return exit::KMOD_USAGE;
        }
    };
    let log = Log::new(&prog, Level::Warning as i32);
    let mut a = super::info::InfoArgs::empty();
    a.prog = Some(prog.clone());
    for o in &parsed.opts {
        let arg = o.arg.clone();
        match char::from_u32(o.val as u32).unwrap_or('?') {
            'a' => a.field = Some("author".into()),
            'd' => a.field = Some("description".into()),
            'l' => a.field = Some("license".into()),
            'p' => a.field = Some("parm".into()),
            'n' => a.field = Some("filename".into()),
            '0' => a.null = true,
            'm' => a.modname = true,
            'F' => a.field = arg,
            'k' => a.kver = arg,
            'b' => a.root = arg,
            'h' => {
                print_out(&modinfo_help(&prog));
                return exit::OK;
            }
            'V' => {
                print_out(&version_text());
                return exit::OK;
            }
            _ => return 1,
        }
    }
    if parsed.operands.is_empty() {
        log.tool(Level::Err, "missing module or filename.\n");
        return exit::KMOD_USAGE;
    }
    a.modules = parsed.operands;
    super::info::run(&a)
}

fn modinfo_help(p: &str) -> String {
    format!(
        "Usage:\n\t{p} [options] <modulename|filename> [args]\nOptions:\n\
\t-a, --author                Print only 'author'\n\
\t-d, --description           Print only 'description'\n\
\t-l, --license               Print only 'license'\n\
\t-p, --parameters            Print only 'parm'\n\
\t-n, --filename              Print only 'filename'\n\
\t-0, --null                  Use \\0 instead of \\n\n\
\t-m, --modname               Handle argument as module name instead of alias or filename\n\
\t-F, --field=FIELD           Print only provided FIELD\n\
\t-k, --set-version=VERSION   Use VERSION instead of `uname -r`\n\
\t-b, --basedir=DIR           Use DIR as filesystem root for /lib/modules\n\
\t-V, --version               Show version\n\
\t-h, --help                  Show this help\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kmod_helpers() {
        assert_eq!(parse_ul("100"), Some(100));
        assert_eq!(parse_ul("0x10"), Some(16));
        assert_eq!(parse_ul("010"), Some(8));
        assert_eq!(parse_ul("1a"), None);
        assert_eq!(parse_ul(""), None);
        assert_eq!(
            options_from_array(&["a=1".into(), "b=x y".into(), "c='p q'".into()]).as_deref(),
            Some("a=1 b=\"x y\" c='p q'")
        );
        assert_eq!(options_from_array(&[]), None);
    }
}
