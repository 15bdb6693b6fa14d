//! Running a weak-modules operation: under the modules lock, complete what crashed runs left,
//! read one snapshot, plan, and (unless `--dry-run`) apply the plan kernel by kernel, each as
//! a transaction; then rebuild the initramfs images of the kernels whose modules changed, as
//! RHEL's script does, when dracut is there (or report them when it is not).

use super::plan::{self, Plan, Snapshot};
use super::{Kernels, Layout, txn};
use crate::error::Error;
use crate::root::Root;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub dry_run: bool,
    pub verbose: bool,
    /// Neither rebuild nor report initramfs images.
    pub no_initramfs: bool,
    /// The dracut program (a path on the host). `None`: the host's dracut when the root is
    /// the host (see [`dracut_of`]); for another root, the images are only named.
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
    /// The initramfs images of the kernels whose modules changed (none with
    /// `--no-initramfs`), each with the command that rebuilds it, if any.
    pub images: Vec<Rebuild>,
    /// Images rebuilt (as seen from outside the root).
    pub rebuilt: Vec<PathBuf>,
    /// Images whose rebuild failed, and why.
    pub failed: Vec<(PathBuf, String)>,
}

/// An initramfs image of a kernel whose modules changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rebuild {
    pub krel: String,
    /// Inside the root.
    pub path: PathBuf,
    /// The changed module files it holds (paths inside the image); empty when it holds none
    /// of them (the kernel's dracut configuration may still want them).
    pub held: Vec<String>,
    /// Set when the image could not be read.
    pub unreadable: Option<String>,
    /// The program and arguments that rebuild it; `None` when there is no dracut.
    pub command: Option<Vec<OsString>>,
}

/// The image names distributions give a kernel's initramfs, inside the root: RHEL and
/// Fedora's, Debian and Ubuntu's, SUSE's.
pub fn image_candidates(layout: Layout, krel: &str) -> Vec<PathBuf> {
    let rhel = PathBuf::from(format!("boot/initramfs-{krel}.img"));
    let debian = PathBuf::from(format!("boot/initrd.img-{krel}"));
    let suse = PathBuf::from(format!("boot/initrd-{krel}"));
    if layout.suse {
        vec![suse, rhel, debian]
    } else {
        vec![rhel, debian, suse]
    }
}

/// Where dracut is looked for.
const DRACUT_PATH: &[&str] = &[
    "usr/bin/dracut",
    "usr/sbin/dracut",
    "sbin/dracut",
    "bin/dracut",
];

/// The first executable dracut in the usual places inside the root, as a path on the host.
pub fn dracut_of(root: &Root) -> Option<PathBuf> {
    DRACUT_PATH
        .iter()
        .find(|p| {
            root.stat(p)
                .is_ok_and(|s| s.is_file() && s.mode & 0o111 != 0)
        })
        .map(|p| root.display(p))
}

/// The command that rebuilds `image` (inside the root) of kernel `krel` with `prog`.
///
/// On the host: `PROG -f IMAGE KVER`, RHEL's call. For another root: dracut is told where
/// the kernel's modules are (`--kmoddir ROOT/lib/modules/KVER`); when the root has dracut
/// installed (`usr/lib/dracut/modules.d`), `--sysroot ROOT` makes dracut take its modules,
/// configuration and programs from the root, as for an image being built; otherwise (a root
/// that holds only kernels) the host's dracut builds the image from the root's modules, with
/// the root's `etc/dracut.conf` and `etc/dracut.conf.d` when it has them.
///
/// dracut 059 follows a module's symbolic link as the host sees it, also under `--sysroot`
/// (libkmod resolves the dependencies): a weak-updates link names its target by its absolute
/// path inside the root, so for another root an image is rebuilt only when `--dracut` asks
/// for it (see [`Options::dracut`]).
pub fn dracut_command(
    root: &Root,
    layout: Layout,
    prog: &Path,
    image: &Path,
    krel: &str,
) -> Vec<OsString> {
    let mut c: Vec<OsString> = vec![prog.into(), "-f".into()];
    if !root.is_host() {
        c.push("--kmoddir".into());
        c.push(root.display(layout.kernel(krel)).into());
        if root.is_dir("usr/lib/dracut/modules.d") {
            c.push("--sysroot".into());
            c.push(root.path().into());
        } else {
            if root.is_file("etc/dracut.conf") {
                c.push("--conf".into());
                c.push(root.display("etc/dracut.conf").into());
            }
            if root.is_dir("etc/dracut.conf.d") {
                c.push("--confdir".into());
                c.push(root.display("etc/dracut.conf.d").into());
            }
        }
    }
    c.push(root.display(image).into());
    c.push(krel.into());
    c
}

/// The images of the kernels whose modules changed (but not of a kernel being removed),
/// with the changed modules each holds, and the command that rebuilds each.
fn images(root: &Root, layout: Layout, op: &Op, plan: &Plan, opts: &Options) -> Vec<Rebuild> {
    let prog = opts
        .dracut
        .clone()
        .or_else(|| root.is_host().then(|| dracut_of(root)).flatten());
    let mut out = Vec::new();
    for (krel, names) in &plan.changed_modules {
        if names.is_empty() || matches!(op, Op::RemoveKernel(k) if k == krel) {
            continue;
        }
        for path in image_candidates(layout, krel) {
            if root.lstat(&path).is_err() {
                continue; // no image of that name
            }
            let (held, unreadable) = match held_in(root, &path, names) {
                Ok(h) => (h, None),
                Err(e) => (Vec::new(), Some(e)),
            };
            out.push(Rebuild {
                krel: krel.clone(),
                command: prog
                    .as_deref()
                    .map(|p| dracut_command(root, layout, p, &path, krel)),
                held,
                unreadable,
                path,
            });
        }
    }
    out
}

/// How long one initramfs rebuild may take before it is stopped.
pub const DRACUT_TIMEOUT: Duration = Duration::from_secs(1800);

/// Run `op` on the root of `k`. `k` is the caller's, not read yet: it reads what it needs once the lock is held (a process
/// that exits right after may leave it unfreed).
pub fn run_in(k: &Kernels, op: &Op, opts: &Options) -> Result<Outcome, Error> {
    let (root, layout) = (k.root, k.layout);
    if !root.is_dir(layout.base()) {
        // no kernel at all: nothing to link, nothing to remove
        return Ok(Outcome::default());
    }
    let _lock = crate::depmod::lock(root)?;
    crate::phase::mark("weak lock");
    let mut out = Outcome {
        recovered: recover_all(k, opts.dry_run, opts.verbose)?,
        ..Outcome::default()
    };
    crate::phase::mark("weak recover");
    let snap = Snapshot::read(k)?;
    crate::phase::mark("weak snapshot");
    let p = match op {
        Op::AddModules(m) => plan::add_modules(k, &snap, m)?,
        Op::RemoveModules(m) => plan::remove_modules(k, &snap, m)?,
        Op::AddKernel(krel) => plan::add_kernel(k, &snap, krel)?,
        Op::RemoveKernel(krel) => plan::remove_kernel(&snap, krel),
    };
    crate::phase::mark("weak plan");
    if !opts.no_initramfs {
        out.images = images(root, layout, op, &p, opts);
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
        crate::phase::mark("weak state");
        txn::apply(root, &kdir, &st, &kp.after, opts.verbose)?;
        crate::phase::mark("weak apply");
    }
    for img in &out.images {
        let Some(cmd) = &img.command else { continue };
        match run_bounded(cmd) {
            Ok(()) => out.rebuilt.push(root.display(&img.path)),
            Err(e) => out.failed.push((root.display(&img.path), e)),
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
            // what a run killed while writing left (its record, say), now that no
            // transaction is pending: a kernel whose indexes are not rewritten has no depmod
            // run to remove it
            if st.temps && !dry_run {
                kdir.clean_temps();
            }
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

/// `PROG -f IMAGE KVER` on the host (SUSE's call), waited for at most [`DRACUT_TIMEOUT`].
pub fn rebuild(root: &Root, prog: &Path, img: &plan::Image) -> Result<(), Error> {
    let cmd: Vec<OsString> = vec![
        prog.into(),
        "-f".into(),
        root.display(&img.path).into(),
        img.krel.clone().into(),
    ];
    run_bounded(&cmd).map_err(Error::Usage)
}

/// The files of `image` (inside the root) that are one of the modules `names` (file names,
/// any compression suffix), read as a stream within [`super::initramfs`]'s bounds.
fn held_in(
    root: &Root,
    image: &Path,
    names: &std::collections::BTreeSet<String>,
) -> Result<Vec<String>, String> {
    let stems: std::collections::BTreeSet<&str> = names
        .iter()
        .filter_map(|n| crate::module::strip_module_ext(n))
        .collect();
    let want = |f: &str| {
        let base = f.rsplit('/').next().unwrap_or(f);
        crate::module::strip_module_ext(base).is_some_and(|s| stems.contains(s))
    };
    let (f, _) = root.open_file(image).map_err(|e| e.to_string())?;
    super::initramfs::scan(std::io::BufReader::new(f), &want)
}

/// Run `cmd`, waited for at most [`DRACUT_TIMEOUT`]; its output goes where ours goes.
fn run_bounded(cmd: &[OsString]) -> Result<(), String> {
    let shown = cmd
        .iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = std::process::Command::new(&cmd[0])
        .args(&cmd[1..])
        .stdin(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    // while dracut runs (minutes), the memory this run freed goes back to the system
    // rather than stay kept for reuse (see `HEAP` in main.rs)
    crate::compress::release_freed_heap();
    let start = std::time::Instant::now();
    loop {
        match child.try_wait().map_err(|e| format!("{shown}: {e}"))? {
            Some(st) if st.success() => return Ok(()),
            Some(st) => return Err(format!("{shown} failed ({st})")),
            None if start.elapsed() > DRACUT_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{shown} did not finish in {} s; stopped",
                    DRACUT_TIMEOUT.as_secs()
                ));
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(c: &[OsString]) -> Vec<String> {
        c.iter().map(|a| a.to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn dracut_is_called_as_rhel_calls_it_on_the_host() {
        let root = Root::host().unwrap();
        let c = dracut_command(
            &root,
            Layout::default(),
            Path::new("/usr/bin/dracut"),
            Path::new("boot/initramfs-6.1.0-56-cloud-amd64.img"),
            "6.1.0-56-cloud-amd64",
        );
        assert_eq!(
            args(&c),
            [
                "/usr/bin/dracut",
                "-f",
                "/boot/initramfs-6.1.0-56-cloud-amd64.img",
                "6.1.0-56-cloud-amd64"
            ]
        );
    }

    #[test]
    fn another_root_is_passed_as_kmoddir_and_sysroot_or_its_configuration() {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        std::fs::create_dir_all(r.join("etc/dracut.conf.d")).unwrap();
        let root = Root::open(r).unwrap();
        let k = "6.1.0-56-cloud-amd64";
        let cmd = |layout| {
            args(&dracut_command(
                &root,
                layout,
                Path::new("/usr/bin/dracut"),
                Path::new("boot/initrd.img-6.1.0-56-cloud-amd64"),
                k,
            ))
        };
        let p = |rel: &str| r.join(rel).display().to_string();
        // a root holding only kernels: the host's dracut with the root's configuration
        assert_eq!(
            cmd(Layout::default()),
            [
                "/usr/bin/dracut".to_string(),
                "-f".into(),
                "--kmoddir".into(),
                p(&format!("lib/modules/{k}")),
                "--confdir".into(),
                p("etc/dracut.conf.d"),
                p(&format!("boot/initrd.img-{k}")),
                k.into()
            ]
        );
        // a root with dracut installed: --sysroot; SUSE's module directory
        std::fs::create_dir_all(r.join("usr/lib/dracut/modules.d")).unwrap();
        assert_eq!(
            cmd(Layout { suse: true }),
            [
                "/usr/bin/dracut".to_string(),
                "-f".into(),
                "--kmoddir".into(),
                p(&format!("usr/lib/modules/{k}")),
                "--sysroot".into(),
                r.display().to_string(),
                p(&format!("boot/initrd.img-{k}")),
                k.into()
            ]
        );
    }

    #[test]
    fn every_distributions_image_name() {
        let k = "6.1.0-56-amd64";
        let names: Vec<String> = image_candidates(Layout::default(), k)
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "boot/initramfs-6.1.0-56-amd64.img",
                "boot/initrd.img-6.1.0-56-amd64",
                "boot/initrd-6.1.0-56-amd64"
            ]
        );
        assert_eq!(
            image_candidates(Layout { suse: true }, k)[0],
            Path::new("boot/initrd-6.1.0-56-amd64")
        );
    }
}
