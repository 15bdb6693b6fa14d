//! `kabi depmod` (and the binary invoked as `depmod`): kmod depmod's options and output.

use super::exit;
use crate::depmod::{self, CacheMode, DepmodError, Options};
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Debug, Clone, clap::Args)]
#[command(
    about = "Generate modules.dep and the other module indexes, as kmod's depmod does",
    after_help = "Differences from kmod 30's depmod:\n  \
        * With a root (depmod -b ROOT, kabi depmod --root ROOT) and no -C, the depmod.d files\n    \
          under ROOT are read (kmod reads the host's).\n  \
        * With a root, symbolic links and `external` directories lead inside ROOT, as under chroot\n    \
          (kmod follows them on the host); nothing outside ROOT is read or written.\n  \
        * A directory is never entered twice (a loop of links ends); only regular files are read,\n    \
          at most 384 MiB each, and decompression shares one 512 MiB memory budget.\n  \
        * Runs that write take a lock (shared with kabi weak-modules) and complete a weak-updates\n    \
          change an interrupted weak-modules run left; temporary files of killed runs are removed.\n  \
        * A module file that cannot be read is reported and left out (kmod lists it without dependencies).\n  \
        * modules.weakdep is written too (as kmod 33 does).\n  \
        * .ko.gz modules are indexed like .ko.xz and .ko.zst (Debian's kmod 30 is built without\n    \
          zlib and skips them).\n  \
        * What each file yields is kept in a scan cache (<module dir>/modules.kabi-cache): an\n    \
          unchanged file is not read again. A damaged or foreign cache is ignored and rebuilt.\n  \
        * Files whose content would not change are left as they are (modules.dep is touched)."
)]
pub struct DepmodArgs {
    /// Probe all modules (the default when no module is named)
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Only if a module is newer than modules.dep
    #[arg(short = 'A', long = "quick")]
    pub quick: bool,
    /// Use DIR as the filesystem root for /lib/modules
    #[arg(short = 'b', long = "basedir", value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Use these configuration files or directories instead of the depmod.d defaults
    #[arg(short = 'C', long = "config", value_name = "PATH")]
    pub config: Vec<PathBuf>,
    /// Module.symvers of the kernel: resolve its symbols and check CRCs (with -e, report)
    #[arg(short = 'E', long = "symvers", value_name = "FILE")]
    pub symvers: Option<PathBuf>,
    /// System.map of the kernel: resolve its symbols
    #[arg(short = 'F', long = "filesyms", value_name = "FILE")]
    pub filesyms: Option<PathBuf>,
    /// Report unresolved symbols and CRC mismatches (needs -E or -F)
    #[arg(short = 'e', long = "errsyms")]
    pub errsyms: bool,
    /// Write the text files to standard output instead of the module directory
    #[arg(short = 'n', long = "show", visible_alias = "dry-run")]
    pub show: bool,
    /// Architecture symbol prefix to ignore
    #[arg(short = 'P', long = "symbol-prefix", value_name = "CHAR")]
    pub symbol_prefix: Option<String>,
    /// Warn on duplicate dependencies, aliases and symbol versions
    #[arg(short = 'w', long = "warn")]
    pub warn: bool,
    /// Print what was done (counts, cache use, files written)
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
    /// Deprecated kmod options, accepted and ignored
    #[arg(short = 'u', hide = true)]
    pub deprecated_u: bool,
    #[arg(short = 'q', long = "quiet", hide = true)]
    pub deprecated_q: bool,
    #[arg(short = 'r', long = "root", hide = true)]
    pub deprecated_r: bool,
    #[arg(short = 'm', long = "map", hide = true)]
    pub deprecated_m: bool,
    /// Do not read or write the scan cache
    #[arg(long)]
    pub no_cache: bool,
    /// Keep the scan cache in FILE instead of the module directory
    #[arg(long, value_name = "FILE", conflicts_with = "no_cache")]
    pub cache: Option<PathBuf>,
    /// Threads for scanning (default: one per CPU)
    #[arg(short = 'j', long = "jobs", value_name = "N")]
    pub jobs: Option<usize>,
    /// Only read every module of the tree as a cold run reads it, parse nothing, and report
    /// the time (measurement aid: the floor of a cold run)
    #[arg(long, hide = true)]
    pub decompress_only: bool,
    /// Kernel release (default: the running kernel's), then optional module files
    #[arg(value_name = "KVER")]
    pub kver: Option<String>,
    /// Module files (absolute paths) instead of the whole tree
    #[arg(value_name = "MODULE")]
    pub modules: Vec<PathBuf>,
}

/// kmod's `is_version_number`: `sscanf("%u.%u") == 2`.
fn is_version_number(s: &str) -> bool {
    let mut parts = s.splitn(2, '.');
    let a = parts.next().unwrap_or("");
    let b = parts.next().unwrap_or("");
    let digits = |t: &str| t.bytes().take_while(u8::is_ascii_digit).count() > 0;
    digits(a) && a.bytes().all(|c| c.is_ascii_digit()) && digits(b)
}

/// kmod's options as a run's [`Options`]; `Err(exit status)` after a message.
fn options(a: &DepmodArgs) -> Result<Options, i32> {
    for (set, c) in [
        (a.deprecated_u, 'u'),
        (a.deprecated_q, 'q'),
        (a.deprecated_r, 'r'),
        (a.deprecated_m, 'm'),
    ] {
        if set {
            eprintln!("depmod: WARNING: Ignored deprecated option -{c}");
        }
    }
    let kver = match &a.kver {
        Some(k) if !is_version_number(k) => {
            eprintln!("depmod: ERROR: Bad version passed {k}");
            return Err(1);
        }
        Some(k) => k.clone(),
        None => super::running_release(),
    };
    let sym_prefix = match a.symbol_prefix.as_deref() {
        None => None,
        Some(p) if p.len() == 1 => Some(p.as_bytes()[0]),
        Some(_) => {
            eprintln!("depmod: FATAL: -P only takes a single char");
            return Err(1);
        }
    };
    let root = a.root.as_ref().map(|b| {
        if b.is_absolute() {
            b.clone()
        } else {
            std::env::current_dir().unwrap_or_default().join(b)
        }
    });
    Ok(Options {
        root,
        kver,
        config: (!a.config.is_empty()).then(|| a.config.clone()),
        symvers: a.symvers.clone(),
        system_map: a.filesyms.clone(),
        print_unknown: a.errsyms,
        warn_dups: a.warn,
        to_stdout: a.show,
        maybe_all: a.quick,
        modules: if a.all { Vec::new() } else { a.modules.clone() },
        cache: match (&a.cache, a.no_cache) {
            (_, true) => CacheMode::Off,
            (Some(f), _) => CacheMode::File(f.clone()),
            _ => CacheMode::InTree,
        },
        sym_prefix,
        progress: std::io::stderr().is_terminal() && !a.show,
        settle: None,
    })
}

/// `-v`: what the run did.
fn say(s: &depmod::Summary, secs: f64) {
    let list = |v: &[String]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(" ")
        }
    };
    if s.up_to_date && !s.unchanged.is_empty() {
        let how = if s.tree_known {
            "directories as the last run found them, "
        } else {
            ""
        };
        eprintln!(
            "depmod: {} modules, {how}nothing changed since the last run: nothing to do ({secs:.3} s)",
            s.modules
        );
    } else if s.up_to_date {
        eprintln!("depmod: modules.dep is newer than every module (-A): nothing to do");
    } else {
        eprintln!(
            "depmod: {} modules ({} read, {} from the scan cache, {} left out) in {secs:.3} s; written: {}; unchanged: {}",
            s.modules,
            s.scanned,
            s.cached,
            s.failed,
            list(&s.written),
            list(&s.unchanged),
        );
        let phases: Vec<String> = s
            .phases
            .iter()
            .map(|(n, t)| format!("{n} {:.1} ms", t * 1e3))
            .collect();
        eprintln!("depmod: phases: {}", phases.join(", "));
    }
    if !s.cleaned.is_empty() {
        eprintln!(
            "depmod: removed what killed runs left: {}",
            s.cleaned.join(" ")
        );
    }
}

/// `--decompress-only`: the reading (and decoding) share of a cold scan.
fn decompress_only(opts: &Options) -> i32 {
    let t = std::time::Instant::now();
    match depmod::decompress_only(opts) {
        Ok((n, bytes)) => {
            println!(
                "decompressed {n} modules, {bytes} bytes, in {:.3} s",
                t.elapsed().as_secs_f64()
            );
            exit::OK
        }
        Err(e) => {
            eprintln!("depmod: FATAL: {e}");
            exit::KMOD_FAILURE
        }
    }
}

/// Complete what an interrupted weak-modules run left in this kernel's directory.
fn recover(opts: &Options) -> Result<(), i32> {
    if opts.to_stdout {
        return Ok(());
    }
    let Ok(root) = opts.open_root() else {
        return Ok(()); // the run says why
    };
    match crate::weak::txn::recover_if_pending(&root, crate::weak::Layout::default(), &opts.kver) {
        Ok(Some(m)) => eprintln!("depmod: {m}"),
        Ok(None) => {}
        Err(e) => {
            eprintln!("depmod: ERROR: {e}");
            return Err(exit::KMOD_FAILURE);
        }
    }
    Ok(())
}

fn work(a: &DepmodArgs, opts: &Options) -> i32 {
    if a.decompress_only {
        return decompress_only(opts);
    }
    let t = std::time::Instant::now();
    if let Err(code) = recover(opts) {
        return code;
    }
    let mut log = |m: &depmod::graph::Message| eprintln!("{m}");
    match depmod::run(opts, &mut log) {
        Ok(s) => {
            if a.verbose {
                say(&s, t.elapsed().as_secs_f64());
            }
            exit::OK
        }
        Err(DepmodError::Cycles(_)) => exit::KMOD_FAILURE,
        Err(DepmodError::Fatal(m)) => {
            eprintln!("depmod: FATAL: {m}");
            exit::KMOD_FAILURE
        }
        Err(DepmodError::Io(e)) => {
            eprintln!("depmod: ERROR: {e}");
            exit::KMOD_FAILURE
        }
    }
}

pub fn run(a: &DepmodArgs) -> i32 {
    let opts = match options(a) {
        Ok(o) => o,
        Err(code) => return code,
    };
    match a.jobs {
        Some(n) if n > 0 => match rayon::ThreadPoolBuilder::new().num_threads(n).build() {
            Ok(pool) => pool.install(|| work(a, &opts)),
            Err(e) => {
                eprintln!("depmod: FATAL: cannot start {n} threads: {e}");
                exit::KMOD_FAILURE
            }
        },
        _ => work(a, &opts),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_numbers_as_kmod_reads_them() {
        assert!(is_version_number("6.1.0-56-amd64"));
        assert!(is_version_number("5.14"));
        assert!(!is_version_number("6"));
        assert!(!is_version_number("/lib/modules/x.ko"));
        assert!(!is_version_number("a.1"));
    }
}
