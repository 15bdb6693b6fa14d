//! SUSE's `weak-modules2`: weak-updates per kernel module package (KMP), as the script of
//! openSUSE/suse-module-tools does it, decided by kabi's own checks.
//!
//! The model is SUSE's, not RHEL's: a KMP `NAME-kmp-FLAVOR` (an installed rpm, read from the
//! root's database by [`crate::rpmdb`], or a module list on standard input) is considered for
//! the kernels of its flavour only; its modules, below `updates/` or `extra/` of the kernel it
//! was built for, are linked into another kernel as `weak-updates/<path below that kernel's
//! module directory>` when kabi's loader check accepts them there as a group; among versions
//! of one KMP the newest compatible one is linked; a KMP whose module file names are already
//! in the kernel's `updates/`, `extra/` or `weak-updates/` is not linked. See [`plan`] for
//! each operation, [`initrd`] for the initramfs.
//!
//! As in RHEL mode ([`super::ops`]): one lock for the run, interrupted runs completed first,
//! one snapshot of the root, a pure plan (printed by `--dry-run`, which changes nothing), and
//! each kernel's new link set applied as one transaction ([`super::txn`]) with kabi's depmod.
//!
//! The modules directory: `/usr/lib/modules` when it is the same directory as `/lib/modules`
//! (merged /usr, current SUSE; links then name `/usr/lib/modules/...` as the current script
//! writes them), else `/lib/modules` (SLE 15; links name `/lib/modules/...`). kabi's depmod
//! and lock work through `/lib/modules`, so a root with only `/usr/lib/modules` is refused.

pub(crate) mod initrd;
pub(crate) mod plan;
pub mod sysconfig;

use super::plan::Snapshot;
use super::{Kernels, Layout, ops, state, txn};
use crate::error::Error;
use crate::root::{Kind, Root};
use crate::rpmdb::Package;
use std::path::{Path, PathBuf};

/// The environment `weak-modules2` honours, as values.
#[derive(Debug, Clone)]
pub struct Env {
    /// `$DRACUT` (default `/usr/bin/dracut`): run as `DRACUT -f IMAGE KREL`.
    pub dracut: PathBuf,
    /// `dracut` is an executable file (on the machine kabi runs on, which runs it).
    pub dracut_installed: bool,
    /// `$INITRD_IN_POSTTRANS` is set: kernels are only marked in `/run/regenerate-initrd/`.
    pub initrd_in_posttrans: bool,
    /// `$KMP_NEEDS_MKINITRD` is set and not the number 0: a kernel whose modules changed
    /// always needs a new initramfs.
    pub kmp_needs_mkinitrd: bool,
}

/// dracut's path when `$DRACUT` is not set.
pub const DEFAULT_DRACUT: &str = "/usr/bin/dracut";

impl Env {
    /// From environment variables (`get("DRACUT")`, ...), as the script reads them.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Env {
        let set = |n: &str| get(n).filter(|v| !v.is_empty());
        let dracut = PathBuf::from(set("DRACUT").unwrap_or_else(|| DEFAULT_DRACUT.into()));
        let dracut_installed = is_executable(&dracut);
        Env {
            dracut,
            dracut_installed,
            initrd_in_posttrans: set("INITRD_IN_POSTTRANS").is_some(),
            kmp_needs_mkinitrd: set("KMP_NEEDS_MKINITRD").is_some_and(|v| !is_zero(&v)),
        }
    }
}

/// `test "$V" -eq 0` (bash: blanks around, an optional sign, decimal digits).
fn is_zero(v: &str) -> bool {
    let t = v.trim_matches([' ', '\t', '\n']);
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && digits.bytes().all(|b| b == b'0')
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// How much the script says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Always (warnings, errors, `FAILED to add`).
    Warn,
    /// With `-v` (`log`).
    Log,
    /// With `-vv` (`dlog`).
    Debug,
    /// With `--debug`: the symbol errors behind a refusal.
    Sym,
}

/// One line the script would print (on standard error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub level: Level,
    pub text: String,
}

/// What to do.
#[derive(Debug, Clone)]
pub enum Op {
    /// `--add-kmp NVR`; `list`: the KMP's module list (standard input), used when the
    /// package is not in the root's database.
    AddKmp {
        nvr: String,
        list: Option<String>,
    },
    /// `--remove-kmp NVR` with the KMP's module list.
    RemoveKmp {
        nvr: String,
        list: String,
    },
    AddKernel(String),
    RemoveKernel(String),
    /// `--add-kernel-modules KREL` with the subpackage's module list.
    AddKernelModules {
        krel: String,
        list: String,
    },
    RemoveKernelModules(String),
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub dry_run: bool,
    /// depmod's warnings on standard error.
    pub verbose: bool,
}

/// What a run did.
#[derive(Debug, Default)]
pub struct Outcome {
    pub plan: plan::Plan,
    /// Interrupted runs completed before planning (or, in a dry run, that would be).
    pub recovered: Vec<String>,
    /// What was run, in the script's words (`-v`): dracut, the markers.
    pub done: Vec<Message>,
    /// What failed while applying (the run exits 1).
    pub errors: Vec<String>,
}

/// The modules directory of a SUSE root (see the module documentation); None when the
/// root has none (nothing to do).
pub fn layout(root: &Root) -> Result<Option<Layout>, Error> {
    let dir = |p: &str| root.stat(p).ok().filter(|s| s.is_dir());
    Ok(match (dir("usr/lib/modules"), dir("lib/modules")) {
        (None, None) => None,
        (Some(_), None) => {
            return Err(Error::Usage(format!(
                "{} exists but {} does not: kabi works in a merged /usr (/lib -> usr/lib, as current SUSE) or in /lib/modules (SLE 15)",
                root.display("usr/lib/modules").display(),
                root.display("lib/modules").display()
            )));
        }
        (Some(u), Some(l)) if u.dev == l.dev && u.ino == l.ino => Some(Layout { suse: true }),
        (_, Some(_)) => Some(Layout { suse: false }),
    })
}

/// Run `op` on `root` with the installed `packages` (empty when the root has no database).
/// Errors before anything is planned are `Err`; errors while applying are in
/// [`Outcome::errors`].
pub fn run(
    root: &Root,
    op: &Op,
    env: &Env,
    opts: &Options,
    packages: &[Package],
) -> Result<Outcome, Error> {
    let Some(layout) = layout(root)? else {
        return Ok(Outcome::default());
    };
    let _lock = crate::depmod::lock(root)?;
    let k = Kernels::new(root, layout);
    let recovered = ops::recover_all(&k, opts.dry_run, opts.verbose)?;
    let snap = Snapshot::read(&k)?;
    let mut out = Outcome {
        plan: plan::plan(&k, &snap, env, op, packages),
        recovered,
        ..Outcome::default()
    };
    if !opts.dry_run {
        apply(&k, env, opts, &mut out);
    }
    Ok(out)
}

/// Apply the plan: each kernel's links as a transaction, the other indexes, the removal of
/// a gone kernel's links, then the initramfs work. A failed transaction stops what follows;
/// a failed depmod or dracut stops only that kernel's work (as the script goes on).
fn apply(k: &Kernels, env: &Env, opts: &Options, out: &mut Outcome) {
    let root = k.root;
    let mut indexed: Vec<String> = Vec::new();
    let dismantle = out.plan.dismantle.clone();
    for kp in out.plan.changed() {
        if dismantle.as_deref() == Some(kp.krel.as_str()) {
            continue;
        }
        let r = root.open_dir(k.layout.kernel(&kp.krel)).and_then(|kdir| {
            let st = state::read(root, &kdir, &kp.krel)?;
            txn::apply(root, &kdir, &st, &kp.after, opts.verbose)
        });
        if let Err(e) = r {
            out.errors.push(format!("kernel {}: {e}", kp.krel));
            return;
        }
        // a transaction that left the indexes alone does not stand for a depmod asked for
        if !kp.leaves_indexes {
            indexed.push(kp.krel.clone());
        }
    }
    let mut failed: Vec<String> = Vec::new();
    for krel in &out.plan.depmod {
        if indexed.contains(krel) {
            continue;
        }
        if let Err(e) = txn::rewrite_indexes(root, krel, opts.verbose) {
            out.errors.push(e.to_string());
            failed.push(krel.clone());
        }
    }
    if let Some(krel) = &dismantle
        && let Err(e) = remove_gone_kernel(k, krel)
    {
        out.errors.push(format!("kernel {krel}: {e}"));
        return;
    }
    for step in &out.plan.initrd {
        if failed.contains(&step.krel) {
            continue;
        }
        match &step.action {
            initrd::Action::Dracut { image } => {
                out.done.push(Message {
                    level: Level::Log,
                    text: format!(
                        "{} -f {} {}",
                        env.dracut.display(),
                        root.display(image).display(),
                        step.krel
                    ),
                });
                let img = super::plan::Image {
                    krel: step.krel.clone(),
                    path: image.clone(),
                    held: Vec::new(),
                    unreadable: None,
                };
                if let Err(e) = ops::rebuild(root, &env.dracut, &img) {
                    out.errors.push(e.to_string());
                }
            }
            initrd::Action::Mark => {
                let m = initrd::mark_path(&step.krel);
                out.done.push(Message {
                    level: Level::Log,
                    text: format!("touch {}", root.display(&m).display()),
                });
                if let Err(e) = mark(root, &step.krel) {
                    out.errors.push(e.to_string());
                }
            }
        }
    }
}

/// Create `/run/regenerate-initrd/KREL` inside the root (never through a link).
fn mark(root: &Root, krel: &str) -> Result<(), Error> {
    let dir = root.open_dir("")?.create_sub("run/regenerate-initrd")?;
    dir.write_atomic(krel, b"", 0o644)
}

/// `--remove-kernel` of a kernel whose package is gone: `weak-updates/` is renamed aside in
/// one step and taken apart (links and emptied directories; anything else is put aside as
/// `weak-updates.kabi-leftover-*`), then the kernel's module directory is removed if empty.
fn remove_gone_kernel(k: &Kernels, krel: &str) -> Result<(), Error> {
    let kdir = k.root.open_dir(k.layout.kernel(krel))?;
    match kdir.lstat("weak-updates") {
        Ok(s) if s.kind == Kind::Dir => {
            let staging = super::links::staging_name();
            kdir.rename_noreplace("weak-updates", &kdir, &staging)
                .map_err(|e| Error::io(kdir.show("weak-updates"), e))?;
            kdir.sync().map_err(|e| Error::io(kdir.path(), e))?;
            super::links::dismantle(&kdir, &staging, None)?;
        }
        Ok(s) => {
            return Err(Error::io(
                kdir.show("weak-updates"),
                std::io::Error::other(format!(
                    "is {} where a directory is expected; remove it (kabi does not go through it)",
                    s.kind.describe(s.mode)
                )),
            ));
        }
        Err(_) => {}
    }
    // kabi's files that are no package's: left, they would keep the directory
    txn::drop_unowned(&kdir)?;
    drop(kdir);
    // `rmdir`: only an empty directory goes
    let base = k.root.open_dir(k.layout.base())?;
    let _ = base.rmdir(krel);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_as_the_script_reads_it() {
        let env = |vars: &[(&str, &str)]| {
            let vars: Vec<(String, String)> = vars
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect();
            Env::from_vars(move |n| vars.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()))
        };
        let e = env(&[]);
        assert_eq!(e.dracut, Path::new(DEFAULT_DRACUT));
        assert!(!e.initrd_in_posttrans && !e.kmp_needs_mkinitrd);
        assert!(env(&[("INITRD_IN_POSTTRANS", "1")]).initrd_in_posttrans);
        assert!(!env(&[("INITRD_IN_POSTTRANS", "")]).initrd_in_posttrans);
        for (v, needs) in [
            ("1", true),
            ("yes", true),
            ("0", false),
            ("00", false),
            (" 0 ", false),
            ("-0", false),
            ("", false),
            ("0x0", true),
        ] {
            assert_eq!(
                env(&[("KMP_NEEDS_MKINITRD", v)]).kmp_needs_mkinitrd,
                needs,
                "KMP_NEEDS_MKINITRD={v:?}"
            );
        }
        let e = env(&[("DRACUT", "/bin/sh")]);
        assert!(e.dracut_installed);
        assert!(!env(&[("DRACUT", "/nonexistent/dracut")]).dracut_installed);
    }
}
