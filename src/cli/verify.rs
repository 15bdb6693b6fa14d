//! `kabi verify`: will this host's modules load on this kernel?

use super::exit;
use crate::root::Root;
use crate::verify::{Report, metrics, verify, wanted_by_config, wanted_by_tree, wanted_loaded};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Exit status: 0 every expected module will load; 1 a module will fail \
    (incompatible, missing, dangling weak link, link into a removed kernel) or the module \
    index is stale; 2 could not verify (no ABI of the kernel, unreadable tree, the deadline \
    passed)."
)]
pub struct VerifyArgs {
    /// Kernel release (default: the running kernel's)
    #[arg(short = 'k', long = "kernel", value_name = "KVER")]
    pub kernel: Option<String>,
    /// Filesystem root (-b DIR, the old spelling, is accepted too)
    #[arg(
        long = "root",
        short_alias = 'b',
        value_name = "DIR",
        default_value = "/"
    )]
    pub root: PathBuf,
    /// Also every module in /proc/modules
    #[arg(long)]
    pub loaded: bool,
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
    /// Print only the modules with problems and the summary line
    #[arg(short, long)]
    pub quiet: bool,
    /// Give up after SECS seconds (exit 2): a boot must not wait on kabi
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub timeout: u64,
    /// Write a Prometheus textfile-collector file (atomically); skipped when its directory
    /// does not exist (no collector installed)
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<PathBuf>,
}

/// The whole verification, from the arguments to the report.
fn report(a: &VerifyArgs) -> Result<Report, String> {
    let root = Root::open(&a.root).map_err(|e| e.to_string())?;
    let kver = crate::kernel::source::release_or_running(&root, a.kernel.as_deref())
        .map_err(|e| format!("which kernel? {e}"))?;
    let cmdline = if a.kernel.is_none() {
        root.read_string("proc/cmdline", crate::root::caps::CONFIG)
            .unwrap_or_default()
    } else {
        String::new()
    };
    let mut wanted = wanted_by_config(&root, &cmdline);
    wanted.extend(wanted_by_tree(&root, &kver));
    if a.loaded {
        wanted.extend(wanted_loaded(&root));
    }
    Ok(verify(&root, &kver, wanted))
}

fn print(a: &VerifyArgs, r: &Report) {
    let root = Root::open(&a.root).ok();
    let shown = |p: &std::path::Path| match &root {
        Some(root) => root.display(p).display().to_string(),
        None => p.display().to_string(),
    };
    if a.json {
        print!("{}", crate::report::json_document(r));
        return;
    }
    for e in &r.errors {
        println!("kabi verify: cannot verify kernel {}: {e}", r.kernel);
    }
    for f in &r.findings {
        if a.quiet && !f.is_problem() {
            continue;
        }
        println!(
            "{:<24} {:<22} {}{}",
            f.state.as_str(),
            f.name,
            f.source,
            f.path
                .as_ref()
                .map(|p| format!(" ({})", shown(p)))
                .unwrap_or_default()
        );
        for reason in &f.reasons {
            for l in reason.lines() {
                println!("    {l}");
            }
        }
    }
    if let Some(s) = &r.index_stale {
        println!("index-stale: {s}");
    }
    let bad = r.findings.iter().filter(|f| f.is_problem()).count();
    println!(
        "kabi verify: kernel {}: {} expected modules, {bad} with problems ({:.3} s)",
        r.kernel,
        r.findings.len(),
        r.seconds
    );
}

pub fn run(a: &VerifyArgs) -> i32 {
    // the work runs beside a deadline: whatever it meets, the caller (a boot) goes on
    let (tx, rx) = std::sync::mpsc::channel();
    let args = a.clone();
    std::thread::spawn(move || {
        let _ = tx.send(report(&args));
    });
    let r = match rx.recv_timeout(Duration::from_secs(a.timeout.max(1))) {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            eprintln!("kabi verify: {e}");
            return exit::ERROR;
        }
        Err(_) => {
            eprintln!(
                "kabi verify: gave up after {} s (--timeout); nothing was verified",
                a.timeout
            );
            return exit::ERROR;
        }
    };
    print(a, &r);
    if let Some(p) = &a.metrics {
        match p.parent() {
            Some(d) if !d.as_os_str().is_empty() && !d.is_dir() => {
                eprintln!(
                    "kabi verify: {} does not exist: metrics not written",
                    d.display()
                );
            }
            _ => {
                if let Err(e) = crate::root::write_file_atomic(p, metrics(&r).as_bytes(), 0o644) {
                    eprintln!("kabi verify: cannot write {}: {e}", p.display());
                    return exit::ERROR;
                }
            }
        }
    }
    r.exit_code()
}
