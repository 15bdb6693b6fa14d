//! `kabi verify`: will this host's modules load on this kernel?

use crate::verify::{metrics, verify, wanted_by_config, wanted_by_tree};
use std::path::PathBuf;

#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Exit status: 0 every expected module will load; 1 a module will fail \
    (incompatible, missing, dangling weak link, link into a removed kernel) or the module \
    index is stale; 2 could not verify (no symvers file, unreadable tree)."
)]
pub struct VerifyArgs {
    /// Kernel release (default: the running kernel's)
    #[arg(short = 'k', long = "kernel", value_name = "KVER")]
    pub kernel: Option<String>,
    /// Filesystem root
    #[arg(short = 'b', long = "root", value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// Also every module in /proc/modules
    #[arg(long)]
    pub loaded: bool,
    #[arg(long)]
    pub json: bool,
    /// Write a Prometheus textfile-collector file (atomically)
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<PathBuf>,
}

pub fn run(a: &VerifyArgs) -> i32 {
    let kver = a.kernel.clone().unwrap_or_else(super::running_release);
    let cmdline = if a.kernel.is_none() {
        std::fs::read_to_string("/proc/cmdline").unwrap_or_default()
    } else {
        String::new()
    };
    let mut wanted = wanted_by_config(&a.root, &cmdline);
    let dir = a.root.join("lib/modules").join(&kver);
    wanted.extend(wanted_by_tree(&dir));
    if a.loaded {
        for (n, ..) in crate::load::loaded(&a.root.join("proc")) {
            wanted.push(crate::verify::Wanted {
                name: n,
                source: "loaded".into(),
                path: None,
            });
        }
    }
    let r = verify(&a.root, &kver, wanted);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
    } else {
        for e in &r.errors {
            println!("kabi verify: cannot verify kernel {kver}: {e}");
        }
        for f in &r.findings {
            println!(
                "{:<24} {:<22} {}{}",
                f.state,
                f.name,
                f.source,
                f.path
                    .as_ref()
                    .map(|p| format!(" ({})", p.display()))
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
            "kabi verify: kernel {kver}: {} expected modules, {bad} with problems ({:.3} s)",
            r.findings.len(),
            r.seconds
        );
    }
    if let Some(p) = &a.metrics {
        if let Err(e) = crate::root::write_file_atomic(p, metrics(&r).as_bytes(), 0o644) {
            eprintln!("kabi verify: cannot write {}: {e}", p.display());
            return 2;
        }
    }
    r.exit_code()
}
