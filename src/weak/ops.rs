//! Running a weak-modules operation: under the modules lock, complete what crashed runs left,
//! read one snapshot, plan, and (unless `--dry-run`) apply the plan kernel by kernel, each as
//! a transaction; then rebuild the initramfs images that hold a changed module when asked to.

use super::plan::{self, Plan, Snapshot};
use super::{Kernels, Layout, txn};
use crate::error::Error;
use crate::root::Root;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub dry_run: bool,
    pub verbose: bool,
    pub no_initramfs: bool,
    /// Run this program as `PROG -f IMAGE KVER` for each initramfs to rebuild.
    pub dracut: Option<PathBuf>,
}

/// What to do.
#[derive(Debug, Clone)]
pub enum Op {
    /// Module files, as paths inside the root.
    AddModules(Vec<PathBuf>),
    RemoveModules(Vec<PathBuf>),
    AddKernel(String),
    RemoveKernel(String),
}

/// What a run did.
#[derive(Debug, Default)]
pub struct Outcome {
    pub plan: Plan,
    /// Interrupted runs completed before planning (or, in a dry run, that would be).
    pub recovered: Vec<String>,
    /// Images rebuilt with `--dracut`.
    pub rebuilt: Vec<PathBuf>,
}

/// How long one initramfs rebuild may take before it is stopped.
pub const DRACUT_TIMEOUT: Duration = Duration::from_secs(1800);

/// Run `op` on `root`.
pub fn run(root: &Root, layout: Layout, op: &Op, opts: &Options) -> Result<Outcome, Error> {
    if !root.is_dir(layout.base()) {
        // no kernel at all: nothing to link, nothing to remove
        return Ok(Outcome::default());
    }
    let _lock = crate::depmod::lock(root)?;
    let k = Kernels::new(root, layout);
    let mut out = Outcome {
        recovered: recover_all(&k, opts.dry_run, opts.verbose)?,
        ..Outcome::default()
    };
    let snap = Snapshot::read(&k)?;
    let mut p = match op {
        Op::AddModules(m) => plan::add_modules(&k, &snap, m)?,
        Op::RemoveModules(m) => plan::remove_modules(&k, &snap, m)?,
        Op::AddKernel(krel) => plan::add_kernel(&k, &snap, krel)?,
        Op::RemoveKernel(krel) => plan::remove_kernel(&snap, krel),
    };
    if !opts.no_initramfs {
        plan::images(&k, &mut p);
    }
    out.plan = p;
    if opts.dry_run {
        return Ok(out);
    }
    for kp in out.plan.changed() {
        let Ok(kdir) = root.open_dir(layout.kernel(&kp.krel)) else {
            continue; // the kernel is gone (remove-kernel after its files)
        };
        let st = super::state::read(root, &kdir, &kp.krel)?;
        txn::apply(root, &kdir, &st, &kp.after, opts.verbose)?;
    }
    if let (false, Some(prog)) = (opts.no_initramfs, &opts.dracut) {
        for img in &out.plan.images {
            rebuild(root, prog, img)?;
            out.rebuilt.push(root.display(&img.path));
        }
    }
    Ok(out)
}

/// Complete what interrupted runs left in every kernel of `k` (in a dry run, only say what
/// would be completed) and remove their staging trees. The caller holds the modules lock.
/// Returns what was done, one line per kernel.
pub fn recover_all(k: &Kernels, dry_run: bool, verbose: bool) -> Result<Vec<String>, Error> {
    let mut done = Vec::new();
    for krel in k.all() {
        let kdir = k.root.open_dir(k.layout.kernel(&krel))?;
        let st = super::state::read(k.root, &kdir, &krel)?;
        if st.pending.is_none() && st.stale.is_empty() {
            continue;
        }
        if dry_run {
            if st.pending.is_some() {
                done.push(format!(
                    "kernel {krel}: an interrupted run's change would be completed first"
                ));
            }
        } else if let Some(m) = txn::recover(k.root, &kdir, &st, verbose)? {
            done.push(m);
        } else {
            txn::clean_stale(&kdir, &st)?;
        }
    }
    Ok(done)
}

/// `PROG -f IMAGE KVER`, waited for at most [`DRACUT_TIMEOUT`].
pub fn rebuild(root: &Root, prog: &std::path::Path, img: &plan::Image) -> Result<(), Error> {
    let image = root.display(&img.path);
    let mut child = std::process::Command::new(prog)
        .arg("-f")
        .arg(&image)
        .arg(&img.krel)
        .spawn()
        .map_err(|e| Error::io(prog, e))?;
    let start = std::time::Instant::now();
    loop {
        match child.try_wait().map_err(|e| Error::io(prog, e))? {
            Some(st) if st.success() => return Ok(()),
            Some(st) => {
                return Err(Error::Usage(format!(
                    "{} -f {} {} failed ({st})",
                    prog.display(),
                    image.display(),
                    img.krel
                )));
            }
            None if start.elapsed() > DRACUT_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::Usage(format!(
                    "{} -f {} {} did not finish in {} s; stopped",
                    prog.display(),
                    image.display(),
                    img.krel,
                    DRACUT_TIMEOUT.as_secs()
                )));
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}
