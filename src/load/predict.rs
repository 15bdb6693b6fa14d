//! kabi's prediction before an insert (`kabi load` only): the kernel's verdict on the
//! module, from `kabi check` against the running kernel. Behind a trait so that the source
//! of the running kernel's ABI can change (the executor only calls [`Predict::admit`] and
//! [`Predict::loaded`]).

use super::snapshot::{self, Header, LoadedModule, Snapshot};
use crate::check::check_with_sig;
use crate::kernel::abi::KernelSymbol;
use crate::kernel::target::Target;
use crate::module::Module;
use std::path::{Path, PathBuf};

/// Predicts whether the kernel will accept a module.
pub trait Predict {
    /// `Err(why)`, in the kernel's words, when the kernel will refuse the module. A
    /// predictor may leave to the kernel a check the kernel makes before anything else and
    /// that refuses without loading anything (a signature's arithmetic, see
    /// [`crate::sig::Math::Kernel`]): [`Predict::explain`] then says why after the refusal.
    fn admit(&mut self, name: &str, path: &Path) -> Result<(), String>;
    /// [`Predict::admit`] of `path` already open as `file` (a regular file of `len` bytes),
    /// the file that will be given to the kernel: the verdict is on the bytes inserted.
    fn admit_file(
        &mut self,
        name: &str,
        path: &Path,
        _file: &std::fs::File,
        _len: u64,
    ) -> Result<(), String> {
        self.admit(name, path)
    }
    /// Why the kernel refused `path`, which it was given (as `file`, `len` bytes, when the
    /// caller still has it open): the full verdict, every check made here (`None` when it
    /// finds no reason). Not for a forced insert, which the kernel judges otherwise.
    fn explain(
        &mut self,
        name: &str,
        path: &Path,
        _file: Option<(&std::fs::File, u64)>,
    ) -> Option<String> {
        self.admit(name, path).err()
    }
    /// The module was loaded: its exports serve the next predictions.
    fn loaded(&mut self, path: &Path);
    /// The module was admitted and will be inserted before the modules that need it (a
    /// parallel load predicts ahead of the inserts): the next predictions may count on its
    /// exports; [`Predict::loaded`] follows once it is in.
    fn assume(&mut self, _path: &Path) {}
    /// The run is over: keep what is worth keeping for the next one.
    fn finish(&mut self) {}
    /// Where the kernel's ABI came from, once something was predicted (for `-v`).
    fn source(&self) -> Option<String> {
        None
    }
}

/// The running kernel: `/proc/kallsyms` (with CRCs from `/proc/kcore` when readable),
/// vermagic and `struct module` size from one of its own modules, and its signature policy as
/// it is now ([`crate::sig::SigPolicy::running`] of the system root, the directory holding
/// `proc`: `module.sig_enforce`, lockdown, the trusted keys). Built on first use, from the
/// snapshot of this boot under `run/kabi` when it still describes the kernel (see
/// [`super::snapshot`]); the keys are read only where signatures are enforced (or the
/// kernel is locked down), or to say why the kernel refused a module.
pub struct RunningPredictor {
    proc: PathBuf,
    /// The running kernel's module directory (one of its modules gives vermagic and
    /// `struct module` size).
    dirname: PathBuf,
    base: Option<Base>,
    /// Exports of the modules this run loaded, and of those admitted ahead of their insert
    /// ([`Predict::assume`]); only those of `loaded_names` go into the snapshot.
    extra: rustc_hash::FxHashMap<String, KernelSymbol>,
    /// The modules admitted and not yet loaded, by path: name and exports (`loaded` and
    /// `assume` then read nothing).
    admitted: rustc_hash::FxHashMap<PathBuf, (String, Vec<KernelSymbol>)>,
    /// Names of the modules loaded by this run (the snapshot may take their exports).
    loaded_names: std::collections::HashSet<String>,
    /// Whether loaded modules unknown to the snapshot may be read from `dirname` (it is the
    /// running release's own directory on this machine: [`RunningPredictor::learning`]).
    learn: bool,
    /// Modules loaded (true) or to be loaded (false) by this run that were not admitted
    /// first (the kernel's own, see [`super::Options::own_modules`]): their exports are read
    /// only if a prediction or the snapshot comes to need them.
    unread: Vec<(PathBuf, bool)>,
    /// The system root (the directory holding `proc`), opened once.
    sysroot: std::sync::OnceLock<Option<crate::root::Root>>,
}

/// Where the kernel's symbols are looked up.
enum Symbols {
    /// vmlinux's exports (written once per boot) and the loaded modules' (rewritten after
    /// each load by kabi).
    Snapshots {
        vmlinux: Box<Snapshot>,
        modules: Box<Snapshot>,
    },
    Map(crate::kernel::abi::KernelAbi),
}

/// The running kernel as this run knows it.
struct Base {
    /// Everything but the symbols (`abi` stays empty).
    target: Target,
    symbols: Symbols,
    /// Modules unloaded since the snapshot: their exports are gone.
    gone: std::collections::HashSet<String>,
    /// `/proc/modules` when the run began.
    modules: Vec<LoadedModule>,
    /// The boot id when the run began (the snapshot's key; the same until the machine
    /// restarts).
    boot_id: String,
    /// The snapshot may be read and written (root, a boot id).
    cache: bool,
    /// How the base was made, for `-v`.
    from_snapshot: bool,
    /// Loaded modules unknown to the snapshot, read from their files ([`learn_own`]) (their
    /// exports are copied by [`RunningPredictor::base`] into `extra`, for the predictions
    /// and the snapshot's update).
    learned: Vec<Learned>,
    /// The modules file read, `(dev, ino)`: a record is appended to it only while it is the
    /// same file.
    modules_file: Option<(u64, u64)>,
    /// The modules file, open for appending (see [`read_snapshot`]).
    modules_fd: Option<std::fs::File>,
    /// `run/kabi`, opened once to read the snapshot and kept to append to it.
    run_dir: Option<crate::root::Dir>,
}

/// Why a verdict did not admit a module.
enum Deferred {
    /// Refused, in the kernel's words.
    Refused(String),
    /// Refused for another reason while the signature's arithmetic was left to the kernel,
    /// which checks the signature first: the verdict must be made again with it done here.
    Signature,
}

/// The snapshot's directory below the system root.
const RUN_DIR: &str = "run/kabi";
/// vmlinux's exports and the kernel's facts: written once per boot.
const RUN_FILE: &str = "running-abi";
/// The loaded modules and their exports: rewritten after each run that loaded one.
const RUN_MODULES: &str = "running-modules";

fn read_trimmed(root: &crate::root::Root, rel: &str) -> String {
    root.read(rel, 4096)
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default()
}

fn proc_modules(root: &crate::root::Root) -> Option<Vec<LoadedModule>> {
    let b = root.read("proc/modules", crate::root::caps::INDEX).ok()?;
    Some(snapshot::parse_proc_modules(&String::from_utf8_lossy(&b)))
}

/// The snapshot file of `dir` (`run/kabi`), if it is a regular file owned by root and
/// writable by no one else, with its `(dev, ino)`. Mapped when `mapped` (vmlinux's: a
/// prediction reads a few of its pages); else read (the modules', a few KiB) from a
/// descriptor also open for appending, which is given back to add this run's record to the
/// file without opening it again ([`crate::root::Dir::append_open`]).
fn read_snapshot(
    dir: &crate::root::Dir,
    name: &str,
    mapped: bool,
) -> Option<(Snapshot, (u64, u64), Option<std::fs::File>)> {
    let (data, st, kept) = match mapped {
        true => {
            let (f, st) = dir.open_root_owned(name)?;
            let data = crate::root::Mapped::new(f, st.size, snapshot::CAP).ok()?;
            (data, st, None)
        }
        false => {
            // read-only where it cannot be written (a read-only /run, an immutable file): the
            // snapshot is used all the same, and this run's record is not appended
            let (f, st, writable) = match dir.open_root_owned_rw(name) {
                Some((f, st)) => (f, st, true),
                None => {
                    let (f, st) = dir.open_root_owned(name)?;
                    (f, st, false)
                }
            };
            // the file as it was at its `fstat`: a record another run appends afterwards is
            // not read (this run's update then finds a module it does not know, and leaves
            // the file to the next run); one caught in the middle of its write is refused by
            // its `+end` line, and the next run rebuilds the file
            if st.size > snapshot::CAP {
                return None;
            }
            let mut data = vec![0; usize::try_from(st.size).ok()?];
            std::io::Read::read_exact(&mut &f, &mut data).ok()?;
            (data.into(), st, writable.then_some(f))
        }
    };
    Some((Snapshot::parse(data).ok()?, (st.dev, st.ino), kept))
}

/// Replace the snapshot (best effort: a kabi that cannot write `/run` only predicts more
/// slowly). Not flushed to disk: it is valid for this boot only (a crash of the machine ends
/// the boot), and `/run` is a tmpfs on any system with systemd.
fn write_snapshot(root: &crate::root::Root, files: &[(&str, &[u8])]) {
    root.write_cache_unflushed(RUN_DIR, files);
}

/// The header of the modules file: which boot, which kernel, which modules.
fn modules_header(h: &Header, modules: Vec<LoadedModule>) -> Header {
    Header {
        boot_id: h.boot_id.clone(),
        release: h.release.clone(),
        modules,
        ..Header::default()
    }
}

/// A module of the running kernel's own tree (the first `kernel/` entry of `modules.dep`).
fn sample_module(dirname: &Path) -> Option<Module> {
    let dep = crate::load::index::read_index_file(&dirname.join("modules.dep"))?;
    let text = String::from_utf8_lossy(&dep);
    text.lines()
        .filter_map(|l| l.split_once(':').map(|(m, _)| m))
        .filter(|m| m.starts_with("kernel/"))
        .take(8)
        .find_map(|m| Module::open_with(dirname.join(m), crate::module::Detail::Sections).ok())
}

/// A loaded module read from its file (see [`learn_own`]).
struct Learned {
    /// As `/proc/modules` showed it when it was read.
    loaded: LoadedModule,
    /// Its name and exports, from its file.
    name: String,
    exports: Vec<KernelSymbol>,
    /// The build id the kernel showed for it, equal to its file's.
    build_id: Vec<u8>,
}

impl Learned {
    /// Whether the module `/proc/modules` shows now under this name is another than the one
    /// read: loaded again elsewhere, or at the same size and address with another build id
    /// (`after`: `/proc/modules` now, sorted).
    fn replaced(&self, sys: &crate::root::Root, after: &[LoadedModule]) -> bool {
        let Some(now) = after.iter().find(|m| m.name == self.loaded.name) else {
            return false;
        };
        *now != self.loaded || loaded_build_id(sys, &now.name).as_deref() != Some(&self.build_id)
    }
}

/// The build id the kernel shows for the loaded module `name`.
fn loaded_build_id(sys: &crate::root::Root, name: &str) -> Option<Vec<u8>> {
    let path = Path::new("sys/module")
        .join(name)
        .join("notes/.note.gnu.build-id");
    sys.read(path, 4096).ok()
}

/// At most this many loaded modules unknown to the snapshot are read from their files (see
/// [`learn_own`]); with more, kallsyms is read.
const LEARN_MAX: usize = 32;

/// The exports of loaded modules the snapshot does not know, read from their files, when
/// each is one of the running kernel's own modules and that file is the one loaded: found by
/// its name in the index of the running release's directory `dirname`, below its `kernel/`
/// by plain names, not a link, carrying the name it is loaded under, live (not still
/// loading: its init may fail), and with the GNU build id the kernel shows for the loaded
/// module (`/sys/module/NAME/notes`), so that a file replaced since, or another module of
/// the same name loaded from elsewhere, is never taken for it. Such modules are what
/// `kabi load` inserts without a prediction (see [`super::Options::own_modules`]), or
/// another tool loaded. `None` when one is not, or there are more than [`LEARN_MAX`]: the
/// snapshot cannot describe the kernel then, and kallsyms is read.
fn learn_own(
    sys: &crate::root::Root,
    dirname: &Path,
    release: &str,
    unknown: &[&LoadedModule],
) -> Option<Vec<Learned>> {
    if unknown.len() > LEARN_MAX || dirname.file_name()? != std::ffi::OsStr::new(release) {
        return None;
    }
    let index = crate::load::index::ModuleIndex::new(dirname.to_str()?, true);
    let own = dirname.join("kernel");
    // the module files, named by their paths on this machine
    let host = crate::root::Root::host().ok()?;
    unknown
        .iter()
        .map(|lm| {
            let line = index.dep_line(&lm.name)?;
            let path = index.join(line.split_once(':')?.0);
            let below = path.strip_prefix(&own).ok()?;
            if !below
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)))
                || !std::fs::symlink_metadata(&path).ok()?.is_file()
            {
                return None;
            }
            let sysdir = Path::new("sys/module").join(&lm.name);
            if sys.read(sysdir.join("initstate"), 32).ok()? != b"live\n" {
                return None;
            }
            let loaded_id = loaded_build_id(sys, &lm.name)?;
            let (f, st) = host.open_file(&path).ok()?;
            let data = crate::compress::read_file(&f, st.size, crate::root::caps::MODULE).ok()?;
            let image = crate::module::decompress(&data).ok()?;
            if build_id_note(&image)? != loaded_id.as_slice() {
                return None;
            }
            let m = Module::parse_image(&image).ok()?;
            (m.name.replace('-', "_") == lm.name).then(|| Learned {
                loaded: (*lm).clone(),
                exports: crate::kernel::tree::exports_of(&m, &m.name),
                name: m.name,
                build_id: loaded_id,
            })
        })
        .collect()
}

/// The contents of a module image's `.note.gnu.build-id` section: the bytes the kernel shows
/// in `/sys/module/NAME/notes/.note.gnu.build-id`.
fn build_id_note(image: &[u8]) -> Option<&[u8]> {
    use object::{Object, ObjectSection};
    let elf = object::File::parse(image).ok()?;
    elf.section_by_name(".note.gnu.build-id")?.data().ok()
}

/// What this run read of the running kernel: the system root when the snapshot may be used
/// (root, a boot id), the boot, the release, `/proc/modules`.
struct Running<'a> {
    /// The running release's module directory, when its own modules may be read from it
    /// (see [`learn_own`]).
    dirname: Option<&'a Path>,
    root: Option<&'a crate::root::Root>,
    boot_id: String,
    release: String,
    modules: Option<&'a Vec<LoadedModule>>,
}

/// This boot's snapshot files, read (see [`Running::read_snapshots`]).
struct SnapshotFiles {
    dir: crate::root::Dir,
    vmlinux: Snapshot,
    modules: Snapshot,
    /// The modules file's `(dev, ino)`, and its descriptor when it may be appended to.
    modules_file: (u64, u64),
    modules_fd: Option<std::fs::File>,
}

impl Running<'_> {
    /// This boot's snapshot files, when both are of this boot and release (and the snapshot
    /// may be used at all).
    fn read_snapshots(&self) -> Option<SnapshotFiles> {
        let (r, Some(_)) = (self.root?, self.modules) else {
            return None;
        };
        let dir = r.open_dir(RUN_DIR).ok()?;
        let (Some((vmlinux, _, _)), Some((modules, modules_file, modules_fd))) = (
            read_snapshot(&dir, RUN_FILE, true),
            read_snapshot(&dir, RUN_MODULES, false),
        ) else {
            return None;
        };
        let current = [&vmlinux.header, &modules.header]
            .iter()
            .all(|h| h.boot_id == self.boot_id && h.release == self.release);
        current.then_some(SnapshotFiles {
            dir,
            vmlinux,
            modules,
            modules_file,
            modules_fd,
        })
    }

    /// The base from this boot's snapshot `files`, if it still describes the kernel (every
    /// loaded module known to it), with the kernel's facts added to `target`.
    fn snapshot_base(&self, files: SnapshotFiles, target: &Target) -> Option<Base> {
        let (Some(r), Some(now)) = (self.root, self.modules) else {
            return None;
        };
        let SnapshotFiles {
            dir,
            vmlinux,
            modules: mods,
            modules_file,
            modules_fd,
        } = files;
        // loaded since and unknown to it: the kernel's own modules are read from their files
        let unknown: Vec<&LoadedModule> = now
            .iter()
            .filter(|m| mods.header.modules.binary_search(m).is_err())
            .collect();
        let learned = match unknown.is_empty() {
            true => Vec::new(),
            false => learn_own(r, self.dirname?, &self.release, &unknown)?,
        };
        let h = &vmlinux.header;
        let mut target = target.clone();
        target.crcs_known = h.crcs_known;
        target.vermagic = h.vermagic.clone();
        target.this_module_size = h.this_module_size;
        target.arch = h.arch;
        let gone = mods
            .header
            .modules
            .iter()
            .filter(|m| now.binary_search(m).is_err())
            .map(|m| m.name.clone())
            .collect();
        Some(Base {
            target,
            symbols: Symbols::Snapshots {
                vmlinux: Box::new(vmlinux),
                modules: Box::new(mods),
            },
            gone,
            modules: now.clone(),
            boot_id: self.boot_id.clone(),
            cache: true,
            from_snapshot: true,
            learned,
            modules_file: Some(modules_file),
            modules_fd,
            run_dir: Some(dir),
        })
    }
}

impl RunningPredictor {
    pub fn new(proc: &Path, dirname: Option<PathBuf>) -> RunningPredictor {
        RunningPredictor {
            proc: proc.to_path_buf(),
            dirname: dirname.unwrap_or_default(),
            base: None,
            extra: Default::default(),
            admitted: Default::default(),
            loaded_names: Default::default(),
            unread: Default::default(),
            learn: false,
            sysroot: Default::default(),
        }
    }

    /// Let the snapshot take in loaded modules it does not know that are the running
    /// kernel's own, read from `dirname` ([`learn_own`]); only when `dirname` is the running
    /// release's directory of this machine (`kabi load` without `--root`).
    pub fn learning(mut self, on: bool) -> Self {
        self.learn = on;
        self
    }

    /// Read the exports of the modules in `unread` (see there).
    fn settle(&mut self) {
        for (path, loaded) in std::mem::take(&mut self.unread) {
            // loaded before the base was made: the base has its exports already (from
            // kallsyms, the snapshot or its file)
            let name = crate::load::index::kmod_modname(&path.to_string_lossy());
            if loaded
                && self.base.as_ref().is_some_and(|b| {
                    b.modules
                        .binary_search_by(|m| m.name.as_str().cmp(&name))
                        .is_ok()
                })
            {
                continue;
            }
            let Ok(m) = Module::open(&path) else {
                continue;
            };
            for e in crate::kernel::tree::exports_of(&m, &m.name) {
                self.extra.insert(e.name.clone(), e);
            }
            if loaded {
                self.loaded_names.insert(m.name.clone());
            }
        }
    }

    /// Note a module not admitted first: `loaded` when it is in.
    fn note_unread(&mut self, path: &Path, loaded: bool) {
        match self.unread.iter_mut().find(|(p, _)| p == path) {
            Some(e) => e.1 |= loaded,
            None => self.unread.push((path.to_path_buf(), loaded)),
        }
    }

    fn system_root(&self) -> Option<&crate::root::Root> {
        self.sysroot
            .get_or_init(|| {
                crate::root::Root::open(self.proc.parent().unwrap_or(Path::new("/"))).ok()
            })
            .as_ref()
    }

    fn base(&mut self) -> &Base {
        if self.base.is_none() {
            let b = self.make_base();
            // the modules read from their files count as loaded by this run: the snapshot
            // takes them in when it is brought up to date
            for l in &b.learned {
                for e in &l.exports {
                    self.extra.insert(e.name.clone(), e.clone());
                }
                self.loaded_names.insert(l.name.clone());
            }
            self.base = Some(b);
        }
        self.base.as_ref().expect("just made")
    }

    fn make_base(&self) -> Base {
        let root = self.system_root();
        let text = |rel: &str| root.map(|r| read_trimmed(r, rel)).unwrap_or_default();
        let release = text("proc/sys/kernel/osrelease");
        let boot_id = text("proc/sys/kernel/random/boot_id");
        let modules = root.and_then(proc_modules);
        crate::phase::mark("running");
        let cache = rustix::process::geteuid().is_root() && !boot_id.is_empty();
        let kernel = Running {
            dirname: self.learn.then_some(self.dirname.as_path()),
            root: root.filter(|_| cache),
            boot_id,
            release,
            modules: modules.as_ref(),
        };
        let files = kernel.read_snapshots();
        crate::phase::mark("snapshot");
        // the policy's facts that stay the same for a boot, as the snapshot keeps them
        let known = files
            .as_ref()
            .and_then(|f| f.vmlinux.header.sig_boot.as_deref())
            .and_then(crate::sig::boot::BootFacts::parse);
        // without a readable system root, signatures are judged by a distribution
        // kernel's defaults (not enforced, no keys)
        let (mut sig, facts) = root
            .and_then(|r| {
                let release = Some(kernel.release.as_str()).filter(|s| !s.is_empty());
                crate::sig::SigPolicy::running_with(r, release, known.as_ref()).ok()
            })
            .unwrap_or_default();
        // the image's certificates, found by decompressing it, are kept in run/kabi too
        if let (true, Some(r)) = (cache, &root) {
            sig.sources.cache = match &sig.sources.vmlinuz {
                Some(l) => Some(l.sibling(RUN_DIR)),
                None => crate::sig::trust::Loc::new(r, RUN_DIR).ok(),
            };
        }
        let target = Target {
            release: Some(kernel.release.clone()),
            sig,
            ..Target::default()
        };
        match files.and_then(|f| kernel.snapshot_base(f, &target)) {
            Some(base) => base,
            None => self.kallsyms_base(&kernel, target, &facts),
        }
    }

    /// The base read from kallsyms (and a sample module), kept as this boot's snapshot when
    /// `/proc/modules` did not change meanwhile.
    fn kallsyms_base(
        &self,
        k: &Running,
        mut target: Target,
        facts: &crate::sig::boot::BootFacts,
    ) -> Base {
        let mut abi = crate::kernel::abi::KernelAbi::default();
        if let Ok((syms, known)) = crate::kernel::kallsyms::running(&self.proc) {
            abi.merge(self.proc.join("kallsyms").display().to_string(), syms);
            target.crcs_known = known;
        }
        if let Some(m) = sample_module(&self.dirname) {
            target.learn_from_module(&m);
        }
        if let (Some(r), Some(now)) = (k.root, k.modules)
            // a module loaded or unloaded meanwhile: kallsyms may not match the list
            && proc_modules(r).as_ref() == Some(now)
        {
            let header = Header {
                boot_id: k.boot_id.clone(),
                release: k.release.clone(),
                crcs_known: target.crcs_known,
                vermagic: target.vermagic.clone(),
                this_module_size: target.this_module_size,
                arch: target.arch,
                sig_boot: Some(facts.render()),
                modules: Vec::new(),
            };
            let (vmlinux, mods): (Vec<&KernelSymbol>, Vec<&KernelSymbol>) = abi
                .symbols
                .values()
                .partition(|s| s.owner == crate::kernel::abi::VMLINUX);
            let modules_header = modules_header(&header, now.clone());
            write_snapshot(
                r,
                &[
                    (RUN_FILE, &snapshot::render(&header, vmlinux)),
                    (RUN_MODULES, &snapshot::render(&modules_header, mods)),
                ],
            );
        }
        Base {
            target,
            symbols: Symbols::Map(abi),
            gone: Default::default(),
            modules: k.modules.cloned().unwrap_or_default(),
            boot_id: k.boot_id.clone(),
            cache: k.root.is_some(),
            from_snapshot: false,
            learned: Vec::new(),
            modules_file: None,
            modules_fd: None,
            run_dir: None,
        }
    }

    /// Whether this run's prediction came from the `/run` snapshot (`None`: nothing was
    /// predicted).
    pub fn used_snapshot(&self) -> Option<bool> {
        self.base.as_ref().map(|b| b.from_snapshot)
    }

    /// The target a verdict on `m` needs: the kernel's facts and just the symbols `m` names.
    fn target_for(&mut self, m: &Module) -> Target {
        let base = self.base();
        let mut t = base.target.clone();
        let found: Vec<KernelSymbol> = crate::check::wanted(m)
            .into_iter()
            .filter_map(|n| match &base.symbols {
                Symbols::Snapshots { vmlinux, modules } => {
                    vmlinux.get(n).or_else(|| modules.get(n))
                }
                Symbols::Map(a) => a.get(n).cloned(),
            })
            .filter(|s| !base.gone.contains(&s.owner))
            .collect();
        t.abi.merge("the running kernel", found);
        t
    }

    /// The verdict on `path` (open as `opened`, if given): with the signature's arithmetic
    /// left to the kernel (see [`crate::sig::Math::Kernel`]) while the rest of the verdict
    /// admits the module, and done here when a refusal must be explained, since the kernel
    /// checks the signature first and its reason may then be the signature's.
    fn admit_from(
        &mut self,
        name: &str,
        path: &Path,
        opened: Option<(&std::fs::File, u64)>,
    ) -> Result<(), String> {
        match self.verdict_on(name, path, opened, crate::sig::Math::Kernel) {
            Err(Deferred::Signature) => {
                match self.verdict_on(name, path, opened, crate::sig::Math::Here) {
                    Err(Deferred::Refused(why)) => Err(why),
                    // (`Signature` comes only with the arithmetic left to the kernel)
                    Err(Deferred::Signature) | Ok(()) => Ok(()),
                }
            }
            Err(Deferred::Refused(why)) => Err(why),
            Ok(()) => Ok(()),
        }
    }

    fn verdict_on(
        &mut self,
        name: &str,
        path: &Path,
        opened: Option<(&std::fs::File, u64)>,
        math: crate::sig::Math,
    ) -> Result<(), Deferred> {
        let abs = std::path::absolute(path)
            .map_err(|e| Deferred::Refused(format!("{}: {e}", path.display())))?;
        crate::phase::mark("lookup");
        self.base();
        crate::phase::mark("policy");
        self.settle();
        // the base's policy, borrowed (its keys, loaded on first use, are shared)
        let sig = &self.base.as_ref().expect("just made").target.sig;
        let detail = crate::module::Detail::Full;
        // the module and its signature check from one read of the file
        let (m, sc) = match opened {
            Some((f, len)) => crate::sig::read_module_from(f, len, &abs, detail, sig, math),
            None => {
                // named by its path on this machine: the system root when that is `/`
                let own;
                let host = match self.system_root().filter(|r| r.is_host()) {
                    Some(r) => r,
                    None => {
                        own = crate::root::Root::host()
                            .map_err(|e| Deferred::Refused(e.to_string()))?;
                        &own
                    }
                };
                crate::sig::read_module_in(host, &abs, detail, sig, math)
            }
        }
        .map_err(|e| Deferred::Refused(e.to_string()))?;
        crate::phase::mark("module");
        let t = self.target_for(&m);
        let v = check_with_sig(&m, Some(path.to_path_buf()), &t, &self.extra, Some(&sc));
        crate::phase::mark("verdict");
        if v.compatible() {
            self.admitted.insert(
                path.to_path_buf(),
                (m.name.clone(), crate::kernel::tree::exports_of(&m, &m.name)),
            );
            return Ok(());
        }
        if math == crate::sig::Math::Kernel
            && matches!(sc.outcome, crate::sig::Outcome::Unknown { .. })
        {
            return Err(Deferred::Signature);
        }
        let why: Vec<String> = v
            .problems
            .iter()
            .map(|p| format!("  {}", p.describe(name)))
            .collect();
        Err(Deferred::Refused(why.join("\n")))
    }

    /// After the run: bring the snapshot up to date with the modules this run loaded, if
    /// they are the only change to `/proc/modules` since it began; else leave it (the next
    /// run rebuilds it).
    pub fn update_snapshot(&mut self) {
        if self.base.is_none() {
            return;
        }
        self.settle();
        let Some(base) = &self.base else { return };
        let Some(root) = self.system_root() else {
            return;
        };
        if !base.cache {
            return;
        }
        let Some(after) = proc_modules(root) else {
            return;
        };
        let norm = |n: &str| n.replace('-', "_");
        let loaded: std::collections::HashSet<String> =
            self.loaded_names.iter().map(|n| norm(n)).collect();
        let new: Vec<&LoadedModule> = after
            .iter()
            .filter(|m| base.modules.binary_search(m).is_err())
            .collect();
        if new.is_empty() && base.gone.is_empty() && base.from_snapshot && base.learned.is_empty() {
            return;
        }
        if !new.iter().all(|m| loaded.contains(&norm(&m.name))) {
            return;
        }
        // a module read from its file and loaded again since by another tool: its exports
        // here are the old build's
        if base.learned.iter().any(|l| l.replaced(root, &after)) {
            return;
        }
        let still: std::collections::HashSet<&str> =
            after.iter().map(|m| m.name.as_str()).collect();
        let keep = |owner: &str| {
            owner != crate::kernel::abi::VMLINUX
                && still.contains(owner)
                && !base.gone.contains(owner)
        };
        let header = Header {
            boot_id: base.boot_id.clone(),
            release: base.target.release.clone().unwrap_or_default(),
            modules: after.clone(),
            ..Header::default()
        };
        // the modules really loaded and still there: an assumed one may have failed its
        // insert, a learned one may have gone meanwhile
        let added: Vec<&KernelSymbol> = self
            .extra
            .values()
            .filter(|s| self.loaded_names.contains(&s.owner) && still.contains(s.owner.as_str()))
            .collect();
        // one record appended to the modules file while it is small and its records name
        // few modules (else rewritten whole, the records folded in): the modules it knows
        // that are gone (unloaded, or loaded again elsewhere), those it does not know, loaded
        // by this run or learned from their files by it, and their exports
        if let (Symbols::Snapshots { modules, .. }, Some(file)) = (&base.symbols, base.modules_file)
            && (modules.file_len() as u64) < snapshot::APPEND_MAX
            && modules.record_modules() < snapshot::APPEND_MODULES_MAX
        {
            let known = &modules.header.modules;
            // loaded since the run began, at the size and address the file knew (a module
            // unloaded and loaded again can get them back): another build, maybe
            let again = |m: &&LoadedModule| {
                known.binary_search(m).is_ok() && base.modules.binary_search(m).is_err()
            };
            let gone: Vec<&LoadedModule> = known
                .iter()
                .filter(|m| after.binary_search(m).is_err())
                .chain(after.iter().filter(again))
                .collect();
            let unknown: Vec<&LoadedModule> = after
                .iter()
                .filter(|m| known.binary_search(m).is_err() || again(m))
                .collect();
            if (!unknown.is_empty() || !gone.is_empty())
                && let (Some(dir), Some(fd)) = (&base.run_dir, &base.modules_fd)
                && dir.append_open(
                    RUN_MODULES,
                    fd,
                    &snapshot::record(&gone, &unknown, &added),
                    file,
                )
            {
                return;
            }
        }
        // only the small file of the modules: vmlinux's stays as it is for the whole boot
        let data = match &base.symbols {
            Symbols::Snapshots { modules, .. } => modules.updated(&header, &keep, &added),
            Symbols::Map(a) => snapshot::render(
                &header,
                a.symbols
                    .values()
                    .filter(|s| keep(&s.owner))
                    .chain(added.iter().copied()),
            ),
        };
        write_snapshot(root, &[(RUN_MODULES, &data)]);
    }
}

impl Predict for RunningPredictor {
    fn finish(&mut self) {
        self.update_snapshot();
    }

    fn source(&self) -> Option<String> {
        Some(match self.used_snapshot()? {
            true => format!("the snapshot /{RUN_DIR}/{RUN_FILE} (and {RUN_MODULES}) of this boot"),
            false => format!("{}/kallsyms", self.proc.display()),
        })
    }

    fn admit(&mut self, name: &str, path: &Path) -> Result<(), String> {
        self.admit_from(name, path, None)
    }

    fn explain(
        &mut self,
        name: &str,
        path: &Path,
        file: Option<(&std::fs::File, u64)>,
    ) -> Option<String> {
        let why = match self.verdict_on(name, path, file, crate::sig::Math::Here) {
            Err(Deferred::Refused(why)) => Some(why),
            Err(Deferred::Signature) | Ok(()) => None,
        };
        // refused all the same: not to be inserted on the strength of this verdict
        self.admitted.remove(path);
        why
    }

    fn admit_file(
        &mut self,
        name: &str,
        path: &Path,
        file: &std::fs::File,
        len: u64,
    ) -> Result<(), String> {
        self.admit_from(name, path, Some((file, len)))
    }

    fn assume(&mut self, path: &Path) {
        match self.admitted.get(path) {
            Some((_, exports)) => {
                for e in exports {
                    self.extra.insert(e.name.clone(), e.clone());
                }
            }
            None => self.note_unread(path, false),
        }
    }

    fn loaded(&mut self, path: &Path) {
        let Some((name, exports)) = self.admitted.remove(path) else {
            self.note_unread(path, true);
            return;
        };
        self.loaded_names.insert(name);
        for e in exports {
            self.extra.insert(e.name.clone(), e);
        }
    }
}
