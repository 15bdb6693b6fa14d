//! `kabi diff-abi A B`: what changed between two kernels' ABIs, and which modules it breaks.

use super::exit;
use crate::check::check_set;
use crate::kernel::diff::diff;
use crate::kernel::source::KernelSpec;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Clone, clap::Args)]
pub struct DiffAbiArgs {
    /// The old kernel: an installed release (under --root), a symvers file, or a module tree
    #[arg(value_name = "OLD")]
    pub old: String,
    /// The new kernel, in the same forms
    #[arg(value_name = "NEW")]
    pub new: String,
    /// Filesystem root installed releases are under (-b DIR, the old spelling, is accepted too)
    #[arg(long, short_alias = 'b', value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// Modules (files or directories) to check against NEW: which break, and through what
    #[arg(short = 'm', long = "modules", value_name = "MODULE|DIR", num_args = 1..)]
    pub modules: Vec<PathBuf>,
    /// Only the vmlinux symbols of each side
    #[arg(long)]
    pub vmlinux_only: bool,
    /// List every symbol, not just the counts
    #[arg(short, long)]
    pub verbose: bool,
    /// Print the comparison (and the verdicts of --modules) as JSON
    /// (docs/schemas/diff-abi.schema.json)
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &DiffAbiArgs) -> i32 {
    let load = |a: &str| {
        let root = crate::root::Root::open(&args.root)?;
        crate::kernel::source::resolve(
            &root,
            &KernelSpec::guess(a),
            crate::kernel::source::Depth::Full,
        )
    };
    let (old, new) = match (load(&args.old), load(&args.new)) {
        (Ok(o), Ok(n)) => (o, n),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("kabi diff-abi: ERROR: {e}");
            return exit::ERROR;
        }
    };
    let (oa, na) = if args.vmlinux_only {
        (
            old.abi.clone().vmlinux_only(),
            new.abi.clone().vmlinux_only(),
        )
    } else {
        (old.abi.clone(), new.abi.clone())
    };
    let d = diff(&oa, &na);
    let mut breaks = Vec::new();
    if !args.modules.is_empty() {
        let (mods, bad) =
            super::check::load_modules(&super::check::collect(&args.modules), "diff-abi");
        if bad {
            return exit::ERROR;
        }
        breaks = check_set(&mods, &new);
    }
    let mut out = String::new();
    if args.json {
        out = crate::report::json_document(&serde_json::json!({
            "old": old.abi.sources, "new": new.abi.sources, "diff": d,
            "modules": breaks,
        }));
    } else {
        out.push_str(&format!(
            "{} symbols added, {} removed, {} CRCs changed, {} GPL-only changed, {} namespaces changed\n",
            d.added.len(),
            d.removed.len(),
            d.crc_changed.len(),
            d.gpl_changed.len(),
            d.namespace_changed.len()
        ));
        if args.verbose {
            for s in &d.added {
                out.push_str(&format!("added        {s}\n"));
            }
            for s in &d.removed {
                out.push_str(&format!("removed      {s}\n"));
            }
            for (s, a, b) in &d.crc_changed {
                let h = |c: &Option<u32>| c.map_or("none".to_string(), |c| format!("0x{c:08x}"));
                out.push_str(&format!("crc          {s} {} -> {}\n", h(a), h(b)));
            }
            for (s, a, b) in &d.gpl_changed {
                out.push_str(&format!("export type  {s} {a} -> {b}\n"));
            }
            for (s, a, b) in &d.namespace_changed {
                out.push_str(&format!("namespace    {s} '{a}' -> '{b}'\n"));
            }
        }
        if !breaks.is_empty() {
            let bad = breaks.iter().filter(|v| !v.compatible()).count();
            out.push_str(&format!("{bad} of {} modules break:\n", breaks.len()));
            for v in breaks.iter().filter(|v| !v.compatible()) {
                let syms: Vec<&str> = v.problems.iter().filter_map(|p| p.symbol()).collect();
                let shown = syms.iter().take(8).copied().collect::<Vec<_>>().join(", ");
                let more = if syms.len() > 8 {
                    format!(" (+{})", syms.len() - 8)
                } else {
                    String::new()
                };
                let why = if syms.is_empty() {
                    v.problems
                        .first()
                        .map(|p| p.describe_line(&v.name))
                        .unwrap_or_default()
                } else {
                    format!("through {shown}{more}")
                };
                out.push_str(&format!("  {:<24} {why}\n", v.name));
            }
        }
    }
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
    exit::failed_if(breaks.iter().any(|v| !v.compatible()))
}
