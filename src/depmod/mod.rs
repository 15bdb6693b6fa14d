//! `depmod`: scan a module tree in parallel (through a scan cache), compute the dependency
//! graph as kmod does, and write kmod-compatible `modules.*` files atomically.

pub mod cache;
pub mod graph;
pub(crate) mod order;
pub mod output;
pub mod scan;
pub mod snapshot;

use crate::error::Error;
use crate::root::{Dir, Lock, Root};
use crate::tree::config::DepmodConfig;
use cache::{Cache, FileKey, Scanned, Stored};
use graph::{Graph, KernelSymbols, Message, ModuleIn, Settings};
use rayon::prelude::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The cache file's name in the module directory (Debian's and Fedora's kernel packages
/// remove `modules.*` with the kernel, so it goes with them).
pub const CACHE_NAME: &str = "modules.kabi-cache";

/// Where the scan cache lives.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CacheMode {
    /// `<module dir>/modules.kabi-cache`.
    #[default]
    InTree,
    Off,
    File(PathBuf),
}

/// What to do: kmod depmod's options.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `-b`: made absolute; `None` for `/`.
    pub root: Option<PathBuf>,
    pub kver: String,
    /// `-C`: configuration files or directories instead of the defaults under the root.
    pub config: Option<Vec<PathBuf>>,
    /// `-E`: Module.symvers of the kernel (CRCs are checked).
    pub symvers: Option<PathBuf>,
    /// `-F`: System.map of the kernel.
    pub system_map: Option<PathBuf>,
    /// `-e`.
    pub print_unknown: bool,
    /// `-w`.
    pub warn_dups: bool,
    /// `-n`: write the text files to standard output, nothing to disk.
    pub to_stdout: bool,
    /// `-A`: do nothing when `modules.dep` is newer than every module.
    pub maybe_all: bool,
    /// Explicit module files (absolute paths); empty: the whole tree.
    pub modules: Vec<PathBuf>,
    pub cache: CacheMode,
    /// `-P`.
    pub sym_prefix: Option<u8>,
    /// Show a progress line on standard error (only worth it on a terminal).
    pub progress: bool,
    /// How long before a run began everything its walk records for the next run must have
    /// last changed (`None`: [`snapshot::SETTLE`]; tests shorten it).
    pub settle: Option<std::time::Duration>,
}

/// What a run did.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    /// Modules in the indexes.
    pub modules: usize,
    /// Files read and parsed.
    pub scanned: usize,
    /// Files taken from the cache.
    pub cached: usize,
    /// Files left out because they could not be read.
    pub failed: usize,
    /// `-A` found everything up to date: nothing was done.
    pub up_to_date: bool,
    /// Files that were written (their content changed).
    pub written: Vec<String>,
    /// Files that already had the right content.
    pub unchanged: Vec<String>,
    /// Temporary files of killed runs that were removed.
    pub cleaned: Vec<String>,
    /// Seconds spent in each phase: (name, seconds), in order.
    pub phases: Vec<(&'static str, f64)>,
    /// Nothing had changed, and the tree was known from the last run's walk: no directory
    /// below the top ones was read (see [`snapshot`]).
    pub tree_known: bool,
}

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum DepmodError {
    #[error("{0}")]
    Fatal(String),
    #[error("dependency cycles: {}", .0.join("; "))]
    Cycles(Vec<String>),
    #[error(transparent)]
    Io(#[from] Error),
}

impl Options {
    /// `<root>/lib/modules/<kver>`, formed as kmod forms it.
    pub fn dirname(&self) -> String {
        // as kmod: "%s/lib/modules/%s" with the root as given (`-b /` gives `//lib/...`)
        let root = self
            .root
            .as_ref()
            .map(|r| r.to_string_lossy().into_owned())
            .unwrap_or_default();
        format!("{root}/lib/modules/{}", self.kver)
    }

    /// The module directory inside the root.
    pub fn rel(&self) -> PathBuf {
        Path::new("lib/modules").join(&self.kver)
    }

    /// The root, opened.
    pub fn open_root(&self) -> Result<Root, DepmodError> {
        check_release(&self.kver)?;
        Root::open(self.root.as_deref().unwrap_or(Path::new("/")))
            .map_err(|e| DepmodError::Fatal(format!("could not open the root: {e}")))
    }
}

/// A kernel release names one directory of `lib/modules`: never a path.
pub fn check_release(kver: &str) -> Result<(), DepmodError> {
    crate::tree::check_release(kver).map_err(DepmodError::Fatal)
}

/// The files a run writes (besides the cache), in kmod's order.
pub const OUTPUTS: &[&str] = &[
    "modules.dep",
    "modules.dep.bin",
    "modules.alias",
    "modules.alias.bin",
    "modules.softdep",
    "modules.weakdep",
    "modules.symbols",
    "modules.symbols.bin",
    "modules.builtin.bin",
    "modules.builtin.alias.bin",
    "modules.devname",
];

/// Take the lock every kabi writer of a root's module directories takes (on `lib/modules`
/// itself), waiting at most [`crate::root::LOCK_TIMEOUT`].
pub fn lock(root: &Root) -> Result<Lock, Error> {
    let dir = root.open_dir("lib/modules")?;
    let shown = dir.path().to_path_buf();
    dir.lock(crate::root::LOCK_TIMEOUT, &mut || {
        eprintln!(
            "kabi: waiting for another kabi that holds the lock on {}",
            shown.display()
        )
    })
}

/// Run depmod: under the modules lock when it writes. Messages (kmod's warnings and errors,
/// in kmod's words) go to `log` as they are produced.
pub fn run(opts: &Options, log: &mut dyn FnMut(&Message)) -> Result<Summary, DepmodError> {
    let root = opts.open_root()?;
    if opts.to_stdout {
        return run_locked(&root, opts, log);
    }
    let _lock = match lock(&root) {
        Ok(l) => l,
        // no lib/modules at all: the run reports the missing module directory
        Err(Error::Io { ref source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return run_locked(&root, opts, log);
        }
        Err(e) => return Err(DepmodError::Io(e)),
    };
    run_locked(&root, opts, log)
}

/// Run depmod in `root`; the caller holds the modules lock (see [`lock`]) when `opts`
/// writes.
pub fn run_locked(
    root: &Root,
    opts: &Options,
    log: &mut dyn FnMut(&Message),
) -> Result<Summary, DepmodError> {
    check_release(&opts.kver)?;
    let mut run = Run {
        root,
        opts,
        dirname: opts.dirname(),
        summary: Summary::default(),
        clock: std::time::Instant::now(),
        all: Vec::new(),
        log,
    };
    if opts.maybe_all && run.nothing_newer() {
        run.summary.up_to_date = true;
        return Ok(run.summary);
    }
    let keys = InputKeys::take(root, opts);
    let mut msgs: Vec<Message> = Vec::new();
    let kernel = kernel_symbols(opts, &mut msgs)?;
    let settings = Settings {
        print_unknown: opts.print_unknown && kernel.is_some(),
        sym_prefix: opts.sym_prefix,
    };
    if opts.print_unknown && kernel.is_none() {
        msgs.push(Message::Warning("-e needs -E or -F".into()));
    }
    let kdir = (!opts.to_stdout)
        .then(|| root.open_dir(opts.rel()).ok())
        .flatten();
    if let Some(k) = &kdir {
        run.summary.cleaned = k
            .clean_temps()
            .into_iter()
            .map(|n| n.to_string_lossy().into_owned())
            .collect();
    }
    let cache_at = opts.cache_location(root);
    let last = match (&cache_at, &kdir) {
        (Some((cdir, cname)), Some(_)) => cache::Fingerprint::load(cdir, cname),
        _ => None,
    };
    let cfg = opts
        .modules
        .is_empty()
        .then(|| load_config(root, opts, &mut msgs));
    // the last run's walk still holds: when nothing else changed either, done without
    // walking (else the walk below decides)
    if let (Some(cfg), Some(fp), Some(k)) = (&cfg, &last, &kdir)
        && let Some(tree) = &fp.tree
        && snapshot::check(root, cfg, &walk_tops(root, opts, cfg), tree)
    {
        // the files the walk would choose: the recorded ones, as they were (a walk that
        // met a problem is not recorded)
        let files = tree
            .files
            .iter()
            .map(|(shown, _, _, key)| (shown.as_str(), Some(*key)));
        let inputs = input_hash(opts, &run.dirname, &format!("{cfg:?}"), &[], &keys, files);
        if run.unchanged_since_last_run(fp, k, inputs, tree.files.len(), &mut msgs) {
            run.summary.tree_known = true;
            run.phase("check");
            return Ok(run.summary);
        }
    }
    // no scan cache to take records from: every module will be read, so each is read as the
    // walk finds it, with its directory open (and the walk's work spread over the scan's
    // threads). (`-n` has no module directory open, so no `last`: the cache is looked at.)
    let cached = last.is_some()
        || (kdir.is_none()
            && cache_at
                .as_ref()
                .is_some_and(|(d, n)| cache::Fingerprint::load(d, n).is_some()));
    let early = (!cached && cfg.is_some()).then(EarlyScans::default);
    let chosen = {
        // the walk prints nothing while it runs: its line is erased before any message
        let progress = early
            .as_ref()
            .and_then(|_| ProgressLine::start(opts.progress));
        let early = early.as_ref().map(|e| (e, progress.as_ref()));
        choose_files(root, opts, cfg, &run.dirname, early, &mut msgs)
    };
    let walked = early.map(EarlyScans::into_results).unwrap_or_default();
    let mut chosen = match chosen {
        Ok(c) => c,
        Err(e) => {
            run.emit(&mut msgs);
            return Err(e);
        }
    };
    run.phase("walk");
    // the inputs' hash: now when there is a last run to compare with; else it is needed
    // only for the cache written at the end, and is computed with the new cache, beside the
    // module array and the graph (the input files' identities were taken before any read)
    let inputs = last
        .as_ref()
        .map(|_| chosen_hash(opts, &run.dirname, &keys, &chosen));
    if let (Some(fp), Some(k), Some(inputs)) = (&last, &kdir, inputs)
        && run.unchanged_since_last_run(fp, k, inputs, chosen.files.len(), &mut msgs)
    {
        // the walk is recorded for the next run, when the last run's record is not it
        if let (Some((cdir, cname)), Some(tree)) = (&cache_at, chosen.tree.take())
            && fp.tree.as_ref() != Some(&tree)
        {
            record_tree(cdir, cname, fp, tree);
        }
        // a whole tree's paths: freed off the caller's path, as below
        std::thread::spawn(move || drop(chosen));
        return Ok(run.summary);
    }
    let tree = chosen.tree.take();
    run.emit(&mut msgs);
    let old = run.load_cache(cache_at.as_ref());
    // the scan cache's records (unless they are all the old cache's, which is then reused)
    // are encoded as soon as the new cache is made: while the module array is made and
    // ordered, then beside the graph
    let may_encode = cache_at.is_some() && !opts.to_stdout;
    let dirname = run.dirname.clone();
    let encode = |c: &Cache, all_old: bool| {
        let reuse = all_old && !old.is_empty() && c.entries.len() == old.len();
        let records = (may_encode && !reuse).then(|| c.encode_records_reusing(&old));
        let inputs = inputs.unwrap_or_else(|| chosen_hash(opts, &dirname, &keys, &chosen));
        (records, inputs)
    };
    // the files made from the module array alone are rendered while the graph is computed:
    // none depends on it
    let mut input_msgs = Vec::new();
    let inputs_read = (!opts.to_stdout).then(|| {
        (
            read_input(root, opts, &run.dirname, "modules.builtin", &mut input_msgs),
            read_input(
                root,
                opts,
                &run.dirname,
                "modules.builtin.modinfo",
                &mut input_msgs,
            ),
        )
    });
    let w = opts.warn_dups;
    let early = |mods: &[ModuleIn]| {
        inputs_read.as_ref().map(|(builtin, modinfo)| {
            render_mod_files(mods, builtin.as_deref(), modinfo.as_deref(), w)
        })
    };
    // the files that need the graph, rendered as soon as it is there (while the module
    // array's files may still be rendered)
    let late = |g: &Graph| inputs_read.is_some().then(|| render_graph_files(g, w));
    let prior = std::mem::take(&mut msgs);
    let graph = |mods: Vec<ModuleIn>, mut said: Vec<Message>| {
        let mut m = prior;
        m.append(&mut said);
        graph::build_with(mods, kernel.as_ref(), settings, m, early, late)
    };
    let (new_cache, (records, inputs), (built, early_files)) =
        run.scan(&chosen, &old, &walked, encode, graph);
    let (g, late_files) = match built {
        Ok(g) => g,
        Err(c) => {
            let mut m = c.messages;
            run.emit(&mut m);
            return Err(DepmodError::Cycles(c.cycles));
        }
    };
    msgs = g.messages.clone();
    run.emit(&mut msgs);
    run.phase("graph");
    let files_out = match (early_files, late_files) {
        (Some(early), Some(late)) => {
            msgs.append(&mut input_msgs);
            assemble(early, late, &mut msgs)
        }
        _ => render(root, &g, opts, &run.dirname, &mut msgs),
    };
    run.phase("render");
    run.emit(&mut msgs);
    if opts.to_stdout {
        let mut out = std::io::stdout().lock();
        for (_, data) in &files_out {
            out.write_all(data).map_err(|e| Error::io("<stdout>", e))?;
        }
        out.flush().map_err(|e| Error::io("<stdout>", e))?;
        return Ok(run.summary);
    }
    let kdir = kdir
        .ok_or_else(|| DepmodError::Fatal(format!("could not open directory {}", run.dirname)))?;
    write_outputs(&kdir, &files_out, &mut run.summary)?;
    // written: the indexes' bytes (megabytes) are not held while the scan cache is written
    drop(files_out);
    run.phase("write");
    let new_cache = match &cache_at {
        Some(at) => {
            let mut new_cache = new_cache;
            new_cache.fingerprint.tree = tree;
            let c = run.write_cache(at, &kdir, inputs, new_cache, &old, records);
            run.phase("cache");
            c
        }
        None => new_cache,
    };
    // freeing a whole tree's records costs milliseconds: do it off the caller's path (a
    // process that exits first lets the kernel reclaim it all at once)
    std::thread::spawn(move || drop((g, new_cache, old, walked)));
    Ok(run.summary)
}

/// One run's state: where, what was said (for the cache to replay), how long each phase
/// took.
struct Run<'a> {
    root: &'a Root,
    opts: &'a Options,
    dirname: String,
    summary: Summary,
    clock: std::time::Instant,
    /// Every message of the run, in order.
    all: Vec<Message>,
    log: &'a mut dyn FnMut(&Message),
}

impl Run<'_> {
    fn phase(&mut self, name: &'static str) {
        crate::phase::mark(name);
        let now = std::time::Instant::now();
        self.summary
            .phases
            .push((name, (now - self.clock).as_secs_f64()));
        self.clock = now;
    }

    /// Pass messages on to the log, keeping them.
    fn emit(&mut self, msgs: &mut Vec<Message>) {
        for m in msgs.drain(..) {
            (self.log)(&m);
            self.all.push(m);
        }
    }

    /// `-A`: is `modules.dep` newer than every module? (With `-n`, kmod does nothing at all.)
    fn nothing_newer(&mut self) -> bool {
        if self.opts.to_stdout {
            return true;
        }
        match up_to_date(self.root, &self.opts.rel(), &self.dirname) {
            Ok(up) => up,
            Err(e) => {
                (self.log)(&Message::Error(e));
                false
            }
        }
    }

    /// Nothing changed since the last run, which wrote what is there: replay its messages.
    fn unchanged_since_last_run(
        &mut self,
        fp: &cache::Fingerprint,
        kdir: &Dir,
        inputs: u64,
        modules: usize,
        msgs: &mut Vec<Message>,
    ) -> bool {
        let o = self.opts;
        if o.to_stdout || o.print_unknown || o.warn_dups {
            return false;
        }
        if fp.inputs != inputs || !outputs_intact(kdir, &fp.outputs) {
            return false;
        }
        // what this run said so far (the configuration's warnings) the last run said too,
        // from the same inputs: its messages are replayed instead, each once
        msgs.clear();
        msgs.extend(fp.messages.iter().map(|(l, t)| match l {
            0 => Message::Warning(t.clone()),
            _ => Message::Error(t.clone()),
        }));
        self.emit(msgs);
        let s = &mut self.summary;
        s.modules = modules;
        s.cached = modules;
        s.unchanged = OUTPUTS.iter().map(|s| s.to_string()).collect();
        s.up_to_date = true;
        true
    }

    /// The last run's scan cache, as its file is.
    fn load_cache(&mut self, cache_at: Option<&(Dir, std::ffi::OsString)>) -> Stored {
        let old = match cache_at {
            Some((cdir, cname)) => {
                let (c, why) = Stored::load(cdir, cname);
                if let Some(why) = why {
                    (self.log)(&Message::Warning(why)); // about this run only: not replayed
                }
                c
            }
            None => Stored::default(),
        };
        self.phase("load cache");
        old
    }

    /// Scan every chosen file through the old cache, then make the new cache and the
    /// ordered module array at the same time: `side` runs on the new cache as soon as it is
    /// made (told whether every file came from the old cache), `then` on the module array
    /// and the scan's messages as soon as it is ordered; each goes on while the other runs.
    fn scan<R: Send, T: Send>(
        &mut self,
        chosen: &ChosenFiles,
        old: &Stored,
        early: &Early,
        side: impl FnOnce(&Cache, bool) -> R + Send,
        then: impl FnOnce(Vec<ModuleIn>, Vec<Message>) -> T + Send,
    ) -> (Cache, R, T) {
        let scanned = scan_files(self.root, chosen, old, early, self.opts.progress);
        self.phase("scan");
        let order_path = format!("{}/modules.order", self.dirname);
        let mut later = Vec::new();
        let order = read_input(
            self.root,
            self.opts,
            &self.dirname,
            "modules.order",
            &mut later,
        );
        let explicit = !self.opts.modules.is_empty();
        let dirname = self.dirname.as_str();
        // the new cache and the ordered module array are made at the same time
        let ((new_cache, made), (next, counts, modules)) = rayon::join(
            || {
                let mut c = Cache::default();
                if explicit {
                    c.entries = old.entries();
                }
                c.entries.reserve(chosen.files.len());
                for (f, (result, hit)) in chosen.files.iter().zip(&scanned) {
                    if let Ok(key) = &f.key {
                        c.entries.insert(f.display.clone(), (*key, result.clone()));
                        if *hit {
                            c.reused.insert(f.display.clone());
                        }
                    }
                }
                let made = side(&c, scanned.iter().all(|(_, hit)| *hit));
                (c, made)
            },
            || {
                let mut said = Vec::new();
                let mut counts = [0usize; 3]; // cached, scanned, failed
                let mut mods = Vec::with_capacity(chosen.files.len());
                for (f, (result, hit)) in chosen.files.iter().zip(&scanned) {
                    counts[usize::from(!*hit)] += 1;
                    match result {
                        Ok(record) => mods.push(ModuleIn {
                            name: output::path_to_modname(&f.display),
                            path: f.display.clone(),
                            rel: f
                                .display
                                .strip_prefix(dirname)
                                .and_then(|r| r.strip_prefix('/'))
                                .map(str::to_string),
                            record: Arc::clone(record),
                        }),
                        Err(e) => {
                            counts[2] += 1;
                            said.push(Message::Warning(format!("{e}: left out of the indexes")));
                        }
                    }
                }
                // explicit module lists may name two files of one module: kmod keeps the
                // first
                if explicit {
                    let mut seen = rustc_hash::FxHashSet::default();
                    mods.retain(|m| seen.insert(m.name.clone()));
                }
                said.append(&mut later);
                let mods = graph::order_modules(mods, order.as_deref(), &order_path, &mut said);
                let modules = mods.len();
                (then(mods, said), counts, modules)
            },
        );
        self.summary.cached += counts[0];
        self.summary.scanned += counts[1];
        self.summary.failed += counts[2];
        self.summary.modules = modules;
        (new_cache, made, next)
    }

    /// The cache last: its fingerprint describes the files just written.
    fn write_cache(
        &mut self,
        (cdir, cname): &(Dir, std::ffi::OsString),
        kdir: &Dir,
        inputs: u64,
        mut cache: Cache,
        old: &Stored,
        records: Option<cache::Records<'_>>,
    ) -> Cache {
        cache.fingerprint = cache::Fingerprint {
            inputs,
            // the walk's record, as the caller put it there
            tree: cache.fingerprint.tree.take(),
            outputs: OUTPUTS
                .iter()
                .filter_map(|n| Some((n.to_string(), FileKey::from(&kdir.lstat(n).ok()?))))
                .collect(),
            messages: self
                .all
                .iter()
                .map(|m| match m {
                    Message::Warning(t) => (0, t.clone()),
                    Message::Error(t) => (1, t.clone()),
                })
                .collect(),
        };
        crate::crash::point();
        // not flushed: the cache is checked on every read and rebuilt when wrong, and the
        // outputs it describes were flushed before it (after a power loss an old cache's
        // fingerprint names files that were replaced since: the next run rebuilds)
        // without records encoded, every file came from the old cache, and it has no other:
        // its records block is what encoding them would give
        let written = match &records {
            Some(r) => {
                let head = cache.encode_head(r);
                let mut parts = vec![&head[..]];
                parts.extend(r.pieces());
                cdir.write_unflushed_parts(cname, &parts, 0o644)
            }
            None => cdir.write_unflushed(cname, &cache.encode_reusing(old), 0o644),
        };
        drop(records);
        if let Err(e) = written {
            (self.log)(&Message::Warning(format!(
                "could not write the scan cache: {e}"
            )));
        }
        cache
    }
}

/// Write each output whose content changed (flushed together, a crash point before each
/// file and each rename: see [`Dir::write_atomic_all`]), and keep `modules.dep`'s time
/// current when it did not (`-A` compares module times with it).
fn write_outputs(
    kdir: &Dir,
    files_out: &[(&'static str, Vec<u8>)],
    summary: &mut Summary,
) -> Result<(), DepmodError> {
    let mut changed: Vec<(&str, &[u8])> = Vec::new();
    for (name, data) in files_out {
        // read without following a link: a link is replaced, never written through
        if kdir
            .read(name, crate::root::caps::INDEX)
            .is_ok_and(|old| old == *data)
        {
            summary.unchanged.push(name.to_string());
        } else {
            changed.push((name, data));
        }
    }
    if !changed.is_empty() {
        kdir.write_atomic_all(&changed, 0o644)?;
        summary
            .written
            .extend(changed.iter().map(|(n, _)| n.to_string()));
    }
    if summary.unchanged.iter().any(|n| n == "modules.dep") {
        let _ = kdir.touch("modules.dep");
    }
    Ok(())
}

/// One module file chosen for the run.
#[derive(Debug, Clone)]
pub struct Chosen {
    /// The path as kmod prints it.
    pub display: String,
    /// Inside the root.
    pub rel: PathBuf,
    /// Its identity, or why it could not be had.
    pub key: Result<FileKey, String>,
}

/// The files of a run, with the configuration they were chosen by (as text, for the
/// fingerprint), and the walk that found them as the next run is to check it (see
/// [`snapshot`]), when it can be.
#[derive(Debug, Default)]
pub struct ChosenFiles {
    pub files: Vec<Chosen>,
    pub config: String,
    pub tree: Option<cache::Tree>,
    /// What went wrong on the walk (a run that met another problem, or none, is not
    /// unchanged).
    pub problems: Vec<String>,
}

/// The top directories a walk of the tree starts from, in order (inside the root).
fn walk_tops(root: &Root, opts: &Options, cfg: &DepmodConfig) -> Vec<PathBuf> {
    let mut tops = vec![opts.rel()];
    tops.extend(cfg.external_dirs(root).into_iter().map(|(rel, _)| rel));
    tops
}

/// The depmod configuration of a run on the tree, its warnings added to `msgs`.
fn load_config(root: &Root, opts: &Options, msgs: &mut Vec<Message>) -> DepmodConfig {
    let cfg = DepmodConfig::load(root, &opts.kver, opts.config.as_deref());
    for w in &cfg.warnings {
        msgs.push(Message::Error(w.clone()));
    }
    cfg
}

/// Write the cache file again with `tree` in its fingerprint (`fp`, the file's), its
/// records as they are. Best effort, as the cache is: a failure leaves the file as it was.
fn record_tree(cdir: &Dir, cname: &std::ffi::OsStr, fp: &cache::Fingerprint, tree: cache::Tree) {
    let Ok((f, st)) = cdir.open_file(cname) else {
        return;
    };
    let Ok(data) = crate::root::Mapped::new(f, st.size, cache::CACHE_CAP) else {
        return;
    };
    let fp = cache::Fingerprint {
        tree: Some(tree),
        ..fp.clone()
    };
    if let Some(bytes) = cache::with_fingerprint(&data, &fp) {
        drop(data);
        let _ = cdir.write_unflushed(cname, &bytes, 0o644);
    }
}

/// Which files: the tree as the configuration `cfg` selects it (walked), or the explicit
/// list (`cfg` is `None`).
fn choose_files(
    root: &Root,
    opts: &Options,
    cfg: Option<DepmodConfig>,
    dirname: &str,
    early: Option<(&EarlyScans, Option<&ProgressLine>)>,
    msgs: &mut Vec<Message>,
) -> Result<ChosenFiles, DepmodError> {
    let Some(cfg) = cfg else {
        let mut files = Vec::new();
        for p in &opts.modules {
            if !p.is_absolute() {
                return Err(DepmodError::Fatal(format!(
                    "{}: not absolute path.",
                    p.display()
                )));
            }
            let rel = root.inside(p).ok_or_else(|| {
                DepmodError::Fatal(format!(
                    "{}: not below the root {}",
                    p.display(),
                    root.path().display()
                ))
            })?;
            let st = root.stat(&rel).map_err(|e| {
                DepmodError::Fatal(format!(
                    "could not create module {}: {}",
                    p.display(),
                    errno_text(&e)
                ))
            })?;
            files.push(Chosen {
                display: p.to_string_lossy().into_owned(),
                key: if st.is_file() {
                    Ok(FileKey::from(&st))
                } else {
                    Err(format!("{}: not a regular file", p.display()))
                },
                rel,
            });
        }
        return Ok(ChosenFiles {
            files,
            config: String::new(),
            tree: None,
            problems: Vec::new(),
        });
    };
    let began = std::time::SystemTime::now();
    let walk = match early {
        Some((early, progress)) => {
            let v = ScanningWalk {
                cfg: &cfg,
                early,
                progress,
            };
            cfg.walk_with(root, dirname, &opts.rel(), true, &v)
        }
        None => cfg.walk(root, dirname, &opts.rel(), true),
    };
    let walk = walk.map_err(|e| {
        msgs.push(Message::Error(e.clone()));
        let why = e.rsplit(": ").next().unwrap_or(&e).to_string();
        DepmodError::Fatal(format!("could not search modules: {why}"))
    })?;
    let picked = cfg.select_by(dirname, &walk.files, |w| w.display.as_str());
    let tree = snapshot::record(
        root,
        &walk,
        picked.iter().map(|&(_, i)| &walk.files[i]),
        began,
        opts.settle.unwrap_or(snapshot::SETTLE),
    );
    let problems = walk.problems.clone();
    msgs.extend(walk.problems.into_iter().map(Message::Error));
    // each file is chosen at most once: moved out of the walk, not copied
    let mut found: Vec<Option<crate::tree::walk::Walked>> =
        walk.files.into_iter().map(Some).collect();
    let files = picked
        .into_iter()
        .filter_map(|(_, i)| found.get_mut(i)?.take())
        .map(|w| Chosen {
            key: Ok(FileKey::from(&w.stat)),
            display: w.display,
            rel: w.rel,
        })
        .collect();
    Ok(ChosenFiles {
        files,
        config: format!("{cfg:?}"),
        tree,
        problems,
    })
}

impl Options {
    /// Where the scan cache is: a directory and a file name in it.
    fn cache_location(&self, root: &Root) -> Option<(Dir, std::ffi::OsString)> {
        match &self.cache {
            CacheMode::Off => None,
            CacheMode::InTree => Some((root.open_dir(self.rel()).ok()?, CACHE_NAME.into())),
            CacheMode::File(p) => {
                let name = p.file_name()?.to_os_string();
                let parent = match p.parent() {
                    Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                    _ => PathBuf::from("."),
                };
                // a cache file named on the command line is the user's own path
                let dir = Root::host()
                    .ok()?
                    .open_dir(std::path::absolute(&parent).ok()?)
                    .ok()?;
                Some((dir, name))
            }
        }
    }
}

/// Are the files of the last run still exactly as it left them (regular files with the
/// same identity: a link or a rewritten file is not)?
fn outputs_intact(kdir: &Dir, outputs: &[(String, FileKey)]) -> bool {
    outputs.len() == OUTPUTS.len()
        && outputs.iter().all(|(n, k)| {
            kdir.lstat(n)
                .is_ok_and(|st| st.is_file() && FileKey::from(&st) == *k)
        })
}

/// A hash of everything a run's result depends on: the build of kabi, the options, the
/// configuration, the module files chosen (in order, with their identities) and the other
/// inputs' identities.
fn chosen_hash(opts: &Options, dirname: &str, keys: &InputKeys, chosen: &ChosenFiles) -> u64 {
    let files = chosen
        .files
        .iter()
        .map(|f| (f.display.as_str(), f.key.as_ref().ok().copied()));
    input_hash(opts, dirname, &chosen.config, &chosen.problems, keys, files)
}

/// [`chosen_hash`] from its parts: the configuration (as text), the walk's problems, each
/// chosen file's path shown and identity.
fn input_hash<'a>(
    opts: &Options,
    dirname: &str,
    config: &str,
    problems: &[String],
    keys: &InputKeys,
    files: impl Iterator<Item = (&'a str, Option<FileKey>)>,
) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    cache::build_id().hash(&mut h);
    dirname.hash(&mut h);
    config.hash(&mut h);
    problems.hash(&mut h);
    format!(
        "{:?} {:?} {:?} {:?} {} {}",
        opts.symvers,
        opts.system_map,
        opts.sym_prefix,
        opts.modules,
        opts.print_unknown,
        opts.warn_dups
    )
    .hash(&mut h);
    let key_hash = |k: Option<FileKey>, h: &mut std::collections::hash_map::DefaultHasher| {
        if let Some(k) = k {
            (k.size, k.mtime, k.ctime, k.ino, k.dev).hash(h);
        } else {
            0u8.hash(h);
        }
    };
    for &k in &keys.0 {
        key_hash(k, &mut h);
    }
    for (shown, key) in files {
        shown.hash(&mut h);
        key_hash(key, &mut h);
    }
    h.finish()
}

/// The identities of the files a run reads besides the modules and its configuration
/// (whose text is hashed): `-E`'s or `-F`'s file, `modules.order`, `modules.builtin` and
/// `modules.builtin.modinfo`, in that order (`None`: not there).
struct InputKeys(Vec<Option<FileKey>>);

impl InputKeys {
    /// Taken before any of the files is read: a file changed after this makes the next
    /// run's identity differ from the recorded one, so the outputs made from what was read
    /// are not taken for current. (Taken after the read, a change in between would pair the
    /// new file's identity with outputs made from the old one.)
    fn take(root: &Root, opts: &Options) -> InputKeys {
        let mut keys = Vec::with_capacity(5);
        let host = Root::host().ok();
        for p in [&opts.symvers, &opts.system_map].into_iter().flatten() {
            // the file the run reads (see `kernel_symbols`)
            keys.push(
                host.as_ref()
                    .and_then(|r| r.stat(host_path(p)).ok())
                    .map(|s| FileKey::from(&s)),
            );
        }
        for n in [
            "modules.order",
            "modules.builtin",
            "modules.builtin.modinfo",
        ] {
            keys.push(
                root.stat(opts.rel().join(n))
                    .ok()
                    .map(|s| FileKey::from(&s)),
            );
        }
        InputKeys(keys)
    }
}

/// Every file depmod writes, in kmod's order, with its content. With `-n` only the text
/// files, as kmod prints them (and `modules.weakdep` only when a module has a weak
/// dependency, since kmod 30 prints none).
pub fn render(
    root: &Root,
    g: &Graph,
    opts: &Options,
    dirname: &str,
    msgs: &mut Vec<Message>,
) -> Vec<(&'static str, Vec<u8>)> {
    if opts.to_stdout {
        let o = output::Outputs::new(g);
        let f = o.mod_files();
        let mut files: Vec<(&'static str, Vec<u8>)> = Vec::new();
        files.push(("modules.dep", o.modules_dep()));
        files.push(("modules.alias", f.modules_alias()));
        files.push(("modules.softdep", f.modules_softdep()));
        if f.has_weakdeps() {
            files.push(("modules.weakdep", f.modules_weakdep()));
        }
        files.push(("modules.symbols", o.modules_symbols()));
        files.push(("modules.devname", f.modules_devname(msgs)));
        return files;
    }
    // a missing input gives an empty file, as kmod writes it (not an empty index)
    let builtin = read_input(root, opts, dirname, "modules.builtin", msgs);
    let modinfo = read_input(root, opts, dirname, "modules.builtin.modinfo", msgs);
    let w = opts.warn_dups;
    let (early, late) = rayon::join(
        || render_mod_files(&g.mods, builtin.as_deref(), modinfo.as_deref(), w),
        || render_graph_files(g, w),
    );
    assemble(early, late, msgs)
}

/// Files rendered, each with the messages its rendering gave.
type Rendered = Vec<(&'static str, Vec<u8>, Vec<Message>)>;

/// Every file made from the module array alone (and the builtin inputs), in parallel: the
/// longest (`modules.alias.bin`) first. A missing input gives an empty file, as kmod writes
/// it (not an empty index).
fn render_mod_files(
    mods: &[ModuleIn],
    builtin: Option<&[u8]>,
    modinfo: Option<&[u8]>,
    w: bool,
) -> Rendered {
    let f = output::ModFiles::new(mods);
    type Job<'a> = Box<dyn Fn(&mut Vec<Message>) -> Vec<u8> + Send + Sync + 'a>;
    let jobs: Vec<(&'static str, Job)> = vec![
        ("modules.alias.bin", Box::new(|m| f.modules_alias_bin(w, m))),
        ("modules.alias", Box::new(|_| f.modules_alias())),
        ("modules.softdep", Box::new(|_| f.modules_softdep())),
        ("modules.weakdep", Box::new(|_| f.modules_weakdep())),
        (
            "modules.builtin.bin",
            Box::new(|m| {
                builtin
                    .map(|b| output::builtin_bin(b, m))
                    .unwrap_or_default()
            }),
        ),
        (
            "modules.builtin.alias.bin",
            Box::new(|m| {
                modinfo
                    .map(|b| output::builtin_alias_bin(b, m))
                    .unwrap_or_default()
            }),
        ),
        ("modules.devname", Box::new(|m| f.modules_devname(m))),
    ];
    jobs.par_iter()
        .map(|(name, job)| {
            let mut m = Vec::new();
            let data = job(&mut m);
            (*name, data, m)
        })
        .collect()
}

/// Every file the dependency graph is needed for, in parallel.
fn render_graph_files(g: &Graph, w: bool) -> Rendered {
    let one = |name: &'static str, job: &dyn Fn(&mut Vec<Message>) -> Vec<u8>| {
        let mut m = Vec::new();
        let data = job(&mut m);
        (name, data, m)
    };
    let (symbols_bin, (deps, symbols)) = rayon::join(
        || {
            one("modules.symbols.bin", &|m| {
                output::Outputs::symbols_bin(g, w, m)
            })
        },
        || {
            let o = output::Outputs::new(g);
            rayon::join(
                || {
                    [
                        one("modules.dep", &|_| o.modules_dep()),
                        one("modules.dep.bin", &|m| o.modules_dep_bin(w, m)),
                    ]
                },
                || one("modules.symbols", &|_| output::Outputs::symbols_text(g)),
            )
        },
    );
    let mut out: Rendered = deps.into();
    out.push(symbols);
    out.push(symbols_bin);
    out
}

/// The files in kmod's order ([`OUTPUTS`]), their messages added to `msgs` in that order.
fn assemble(a: Rendered, b: Rendered, msgs: &mut Vec<Message>) -> Vec<(&'static str, Vec<u8>)> {
    let mut all: Rendered = a.into_iter().chain(b).collect();
    all.sort_by_key(|(name, _, _)| OUTPUTS.iter().position(|o| o == name));
    all.into_iter()
        .map(|(name, data, m)| {
            msgs.extend(m);
            (name, data)
        })
        .collect()
}

/// An input file of the module directory (a link is followed inside the root); a missing
/// one is warned about as kmod does.
fn read_input(
    root: &Root,
    opts: &Options,
    dirname: &str,
    name: &str,
    msgs: &mut Vec<Message>,
) -> Option<Vec<u8>> {
    match root.read(opts.rel().join(name), crate::root::caps::INDEX) {
        Ok(d) => Some(d),
        Err(e) => {
            let why = match &e {
                Error::Io { source, .. } => errno_text(source),
                e => e.to_string(),
            };
            msgs.push(Message::Warning(format!(
                "could not open {name} at {dirname}: {why}"
            )));
            None
        }
    }
}

pub use crate::error::errno_text;

/// Scan each file, taking unchanged ones from the cache. Per file: the result, and whether
/// it came from the cache.
fn scan_files(
    root: &Root,
    chosen: &ChosenFiles,
    cache: &Stored,
    early: &Early,
    progress: bool,
) -> Vec<(Scanned, bool)> {
    let files = &chosen.files;
    let line = ProgressLine::start(progress);
    if let Some(p) = &line {
        p.total.store(files.len(), Ordering::Relaxed);
    }
    files
        .par_iter()
        .map(|f| {
            let r = scan_one(root, f, cache, early);
            if let Some(p) = &line {
                p.done.fetch_add(1, Ordering::Relaxed);
            }
            r
        })
        .collect()
}

/// One file's result, and whether it came from the cache. A file the walk read
/// ([`EarlyScans`]) is taken from there, unless that read failed: then it is read again as
/// any other (a failure that lasts is then told in the same words as without the walk's
/// read; one that passed, such as a moment out of file descriptors, is gone).
fn scan_one(root: &Root, f: &Chosen, cache: &Stored, early: &Early) -> (Scanned, bool) {
    let key = match &f.key {
        Ok(k) => k,
        Err(e) => return (Err(e.clone()), false),
    };
    if let Some((k, slot)) = early.get(&f.display)
        && k == key
        && let Some(r @ Ok(_)) = slot.get()
    {
        return (r.clone(), false);
    }
    if let Some(hit) = cache.get(&f.display, key) {
        return (hit, true);
    }
    let r = scan::scan_in(root, &f.rel, &f.display)
        .map(Arc::new)
        .map_err(|e| e.to_string());
    (r, false)
}

/// Modules read by the walk ([`EarlyScans`]): by the path shown, with the key it saw and
/// the file's slot (filled by the end of the walk).
type Early = rustc_hash::FxHashMap<String, (FileKey, Slot)>;

/// The modules a walk read as it found them, while their directory was open (a run with no
/// scan cache, where every module is read anyway): the scan then takes these results
/// instead of opening each file again from the root. A file the walk meets again (by
/// another path: links to a directory, a directory walked twice) is not read again: its
/// result is shared, by device, inode and the rest of its key.
#[derive(Default)]
struct EarlyScans {
    found: std::sync::Mutex<EarlyFound>,
    /// Only read each file as the scan would, parse nothing (`--decompress-only`: the slot
    /// then holds an empty record).
    read_only: bool,
    /// The bytes read so far, when `read_only`.
    read: std::sync::atomic::AtomicU64,
}

/// Each path's result, and each file's (by device and inode), as one slot per file: the
/// thread that claims a file's slot reads it and fills the slot; a thread that meets the
/// file again takes the same slot (filled by the end of the walk) and reads nothing.
#[derive(Default)]
struct EarlyFound {
    by_path: rustc_hash::FxHashMap<String, (FileKey, Slot)>,
    by_file: rustc_hash::FxHashMap<(u64, u64), (FileKey, Slot)>,
}

type Slot = Arc<std::sync::OnceLock<Scanned>>;

impl EarlyScans {
    /// The results by path, as the walk left them: not copied into a map of their own
    /// (4,000 entries rehashed and their slots freed were 2 ms between the walk and the
    /// graph, with one thread idle).
    fn into_results(self) -> Early {
        let found = self.found.into_inner().unwrap_or_else(|e| e.into_inner());
        found.by_path
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, EarlyFound> {
        self.found.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The configuration's walk, reading each module it finds ([`EarlyScans`]).
struct ScanningWalk<'a> {
    cfg: &'a DepmodConfig,
    early: &'a EarlyScans,
    progress: Option<&'a ProgressLine>,
}

impl crate::tree::walk::Visitor for ScanningWalk<'_> {
    fn skip(&self, name: &str) -> bool {
        crate::tree::walk::Visitor::skip(self.cfg, name)
    }
    fn wants(&self, name: &str) -> bool {
        crate::tree::walk::Visitor::wants(self.cfg, name)
    }
    fn parallel(&self) -> bool {
        crate::tree::walk::Visitor::parallel(self.cfg)
    }
    fn found(&self, dir: &Dir, name: &str, file: &crate::tree::walk::Walked) {
        let key = FileKey::from(&file.stat);
        let inode = (key.dev, key.ino);
        // the file's slot, claimed when it is new (one lock, no read under it)
        let (slot, mine) = {
            let mut found = self.early.lock();
            let (slot, mine) = match found.by_file.get(&inode) {
                Some((k, slot)) if *k == key => (Arc::clone(slot), false),
                _ => {
                    let slot = Slot::default();
                    found.by_file.insert(inode, (key, Arc::clone(&slot)));
                    (slot, true)
                }
            };
            found
                .by_path
                .insert(file.display.clone(), (key, Arc::clone(&slot)));
            (slot, mine)
        };
        if mine {
            let r = match self.early.read_only {
                false => scan::scan_at(dir, name, &file.stat, &file.display).map(Arc::new),
                true => scan::read_only_at(dir, name, &file.stat, &file.display).map(|n| {
                    self.early.read.fetch_add(n, Ordering::Relaxed);
                    Arc::new(scan::Record::default())
                }),
            }
            .map_err(|e| e.to_string());
            let _ = slot.set(r);
            if let Some(p) = self.progress {
                p.done.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// A progress line on standard error, redrawn a few times a second while modules are read,
/// shown only when that takes long enough to be noticed; erased when dropped.
struct ProgressLine {
    counts: Arc<Progress>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What the progress line shows.
#[derive(Default)]
struct Progress {
    /// Modules to read (0 while the walk is still finding them).
    total: AtomicUsize,
    done: AtomicUsize,
    finished: std::sync::atomic::AtomicBool,
}

impl ProgressLine {
    fn start(on: bool) -> Option<ProgressLine> {
        if !on {
            return None;
        }
        let counts = Arc::new(Progress::default());
        let c = Arc::clone(&counts);
        let thread = std::thread::Builder::new()
            .spawn(move || progress_line(&c))
            .ok();
        Some(ProgressLine { counts, thread })
    }
}

impl std::ops::Deref for ProgressLine {
    type Target = Progress;
    fn deref(&self) -> &Progress {
        &self.counts
    }
}

impl Drop for ProgressLine {
    fn drop(&mut self) {
        self.counts.finished.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

fn progress_line(p: &Progress) {
    let start = std::time::Instant::now();
    let mut shown = false;
    loop {
        std::thread::park_timeout(std::time::Duration::from_millis(100));
        if p.finished.load(Ordering::Relaxed) {
            break;
        }
        if start.elapsed().as_millis() < 500 {
            continue;
        }
        let (n, total) = (
            p.done.load(Ordering::Relaxed),
            p.total.load(Ordering::Relaxed),
        );
        if total == 0 {
            eprint!("\r{n} modules read");
        } else {
            let width = 30;
            let filled = (n.min(total) * width).checked_div(total).unwrap_or(width);
            eprint!(
                "\r[{}{}] {n}/{total} modules",
                "#".repeat(filled),
                " ".repeat(width - filled)
            );
        }
        shown = true;
    }
    if shown {
        eprint!("\r{}\r", " ".repeat(60));
    }
}

/// Read every module of the tree as a cold run's walk reads it (each file as the walk finds
/// it, in the directory it has open; only the sections a scan needs of a plain ELF file, the
/// rest whole and decompressed) and nothing else: no parsing, no index, no write. The floor
/// of a cold run. Files named on the command line are read whole.
pub fn decompress_only(opts: &Options) -> Result<(usize, u64), DepmodError> {
    let root = opts.open_root()?;
    let mut msgs = Vec::new();
    let cfg = opts
        .modules
        .is_empty()
        .then(|| load_config(&root, opts, &mut msgs));
    let walking = cfg.is_some();
    let early = EarlyScans {
        read_only: true,
        ..EarlyScans::default()
    };
    let chosen = choose_files(
        &root,
        opts,
        cfg,
        &opts.dirname(),
        walking.then_some((&early, None)),
        &mut msgs,
    )?;
    // what the walk did not read (a link to a module file, a read that failed, files named
    // on the command line) is read from the root, as the scan reads it then
    let read = early.read.load(Ordering::Relaxed);
    let walked = early.into_results();
    let rest: u64 = chosen
        .files
        .par_iter()
        .filter(|f| {
            !walked
                .get(&f.display)
                .is_some_and(|(_, slot)| matches!(slot.get(), Some(Ok(_))))
        })
        .map(|f| scan::read_only_in(&root, &f.rel, &f.display).unwrap_or(0))
        .sum();
    Ok((chosen.files.len(), read + rest))
}

/// The kernel's own symbols from `-E` or `-F` (files named on the command line), parsed as
/// kmod does.
/// Where a file named on the command line (`-E`, `-F`) is on the host: a relative path from
/// the working directory, as the user means it.
fn host_path(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

fn kernel_symbols(
    opts: &Options,
    msgs: &mut Vec<Message>,
) -> Result<Option<KernelSymbols>, DepmodError> {
    let read = |p: &Path| {
        let fail =
            |why: String| DepmodError::Fatal(format!("could not load {}: {why}", p.display()));
        let host = Root::host().map_err(|e| fail(e.to_string()))?;
        host.read(host_path(p), crate::root::caps::INDEX)
            .map_err(|e| {
                fail(match &e {
                    Error::Io { source, .. } => errno_text(source),
                    e => e.to_string(),
                })
            })
    };
    if let Some(p) = &opts.symvers {
        let text = read(p)?;
        return Ok(Some(KernelSymbols {
            symbols: parse_symvers(&text, &p.to_string_lossy(), msgs),
            check_crcs: true,
        }));
    }
    if let Some(p) = &opts.system_map {
        let text = read(p)?;
        return Ok(Some(KernelSymbols {
            symbols: parse_system_map(&text, &p.to_string_lossy(), opts.sym_prefix, msgs),
            check_crcs: false,
        }));
    }
    Ok(None)
}

/// `depmod_load_symvers`: the `vmlinux` lines, fields split on blanks as `strtok` does.
pub fn parse_symvers(text: &[u8], name: &str, msgs: &mut Vec<Message>) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for (n, line) in text.split_inclusive(|&b| b == b'\n').enumerate() {
        let line = String::from_utf8_lossy(line);
        let mut f = line.split([' ', '\t']).filter(|s| !s.is_empty());
        let (Some(ver), Some(sym), Some(whence)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if whence != "vmlinux" {
            continue;
        }
        match parse_strtoull16(ver) {
            Some(crc) => out.push((sym.to_string(), crc)),
            None => msgs.push(Message::Error(format!(
                "{name}:{} Invalid symbol version {ver}: Success",
                n + 1
            ))),
        }
    }
    out
}

/// `strtoull(s, &end, 16)` with `*end == '\0'` required.
fn parse_strtoull16(s: &str) -> Option<u64> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .filter(|r| r.as_bytes().first().is_some_and(u8::is_ascii_hexdigit))
        .unwrap_or(t);
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let v = u64::from_str_radix(t, 16).unwrap_or(u64::MAX);
    Some(if neg { v.wrapping_neg() } else { v })
}

/// `depmod_load_system_map`: `ADDR TYPE __ksymtab_NAME` lines give the kernel's exports.
pub fn parse_system_map(
    text: &[u8],
    name: &str,
    prefix: Option<u8>,
    msgs: &mut Vec<Message>,
) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for (n, line) in text.split_inclusive(|&b| b == b'\n').enumerate() {
        let line = String::from_utf8_lossy(line);
        let third = line
            .split_once(' ')
            .and_then(|(_, r)| r.split_once(' '))
            .map(|(_, r)| r);
        let Some(mut p) = third else {
            msgs.push(Message::Error(format!(
                "{name}:{}: invalid line: {}",
                n + 1,
                line.trim_end_matches('\n')
            )));
            continue;
        };
        if let Some(pre) = prefix
            && p.as_bytes().first() == Some(&pre)
        {
            p = &p[1..];
        }
        if let Some(sym) = p.strip_prefix("__ksymtab_") {
            let sym = sym.split('\n').next().unwrap_or(sym);
            out.push((sym.to_string(), 0));
        }
    }
    out
}

/// kmod's `depfile_up_to_date`: `modules.dep` exists and no module file below the
/// directory (besides `build` and `source`) is newer. `Err` with kmod's message when
/// `modules.dep` cannot be examined (the caller then rebuilds).
pub fn up_to_date(root: &Root, rel: &Path, dirname: &str) -> Result<bool, String> {
    struct Modules;
    impl crate::tree::walk::Visitor for Modules {
        fn skip(&self, name: &str) -> bool {
            matches!(name, "build" | "source")
        }
        fn wants(&self, name: &str) -> bool {
            crate::module::strip_module_ext(name).is_some()
        }
        fn parallel(&self) -> bool {
            true
        }
    }
    let dir = root
        .open_dir(rel)
        .map_err(|e| format!("could not open directory {dirname}: {}", error_text(&e)))?;
    let dep = dir.lstat("modules.dep").map_err(|e| {
        format!(
            "could not fstatat({dirname}, modules.dep): {}",
            errno_text(&e)
        )
    })?;
    let mut walk = crate::tree::walk::Walk::default();
    let mut seen = Default::default();
    crate::tree::walk::walk(root, rel, dirname, &Modules, &mut seen, &mut walk)?;
    Ok(!walk.files.iter().any(|f| f.stat.mtime.0 > dep.mtime.0))
}

/// The text of an error as C's `%m` would print it, for an I/O error; else the message.
pub fn error_text(e: &Error) -> String {
    match e {
        Error::Io { source, .. } => errno_text(source),
        e => e.to_string(),
    }
}

/// The `modules.dep` lines of a module directory computed in memory, nothing written: what a
/// loader uses when the tree has no index. The default search order (`updates`, then the
/// rest); unreadable modules are left out.
pub fn dep_lines_in(root: &Root, kver: &str) -> Vec<String> {
    let opts = Options {
        kver: kver.to_string(),
        root: Some(root.path().to_path_buf()),
        ..Options::default()
    };
    let dirname = opts.dirname();
    let cfg = DepmodConfig {
        search: vec![
            crate::tree::config::Search::Dir("updates".into()),
            crate::tree::config::Search::BuiltIn,
        ],
        ..DepmodConfig::default()
    };
    let Ok(walk) = cfg.walk(root, &dirname, &opts.rel(), false) else {
        return Vec::new();
    };
    let paths: Vec<String> = walk.files.iter().map(|w| w.display.clone()).collect();
    let by_path: rustc_hash::FxHashMap<&str, &crate::tree::walk::Walked> =
        walk.files.iter().map(|w| (w.display.as_str(), w)).collect();
    let chosen = ChosenFiles {
        files: cfg
            .select(&dirname, &paths)
            .into_iter()
            .filter_map(|(_, p)| {
                let w = by_path.get(p.as_str())?;
                Some(Chosen {
                    rel: w.rel.clone(),
                    key: Ok(FileKey::from(&w.stat)),
                    display: p,
                })
            })
            .collect(),
        config: String::new(),
        tree: None,
        problems: Vec::new(),
    };
    let scanned = scan_files(root, &chosen, &Stored::default(), &Early::default(), false);
    let mods: Vec<ModuleIn> = chosen
        .files
        .iter()
        .zip(scanned)
        .filter_map(|(f, (r, _))| {
            Some(ModuleIn {
                name: output::path_to_modname(&f.display),
                path: f.display.clone(),
                rel: f
                    .display
                    .strip_prefix(&dirname)
                    .and_then(|r| r.strip_prefix('/'))
                    .map(str::to_string),
                record: r.ok()?,
            })
        })
        .collect();
    let mut msgs = Vec::new();
    let order = root
        .read(opts.rel().join("modules.order"), crate::root::caps::INDEX)
        .ok();
    let mods = graph::order_modules(mods, order.as_deref(), "modules.order", &mut msgs);
    match graph::build(mods, None, Settings::default(), msgs) {
        Ok(g) => output::Outputs::new(&g).dep_lines().to_vec(),
        Err(_) => Vec::new(),
    }
}

/// [`dep_lines_in`] for a module directory named by its full path.
pub fn dep_lines(dirname: &str) -> Vec<String> {
    let p = Path::new(dirname);
    match (p.parent(), p.file_name(), Root::host()) {
        (Some(base), Some(kver), Ok(_)) if base.ends_with("lib/modules") => {
            let root = base
                .parent()
                .and_then(Path::parent)
                .unwrap_or(Path::new("/"));
            match Root::open(if root.as_os_str().is_empty() {
                Path::new("/")
            } else {
                root
            }) {
                Ok(r) => dep_lines_in(&r, &kver.to_string_lossy()),
                Err(_) => Vec::new(),
            }
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scan takes what the walk read, unless that read failed: then the file is read
    /// again (a failure that has passed is gone; one that lasts is told as without the walk).
    #[test]
    fn a_failed_read_of_the_walk_is_tried_again() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/lib/modules");
        let root = Root::open(&dir).unwrap();
        let rel = PathBuf::from("6.1.0-56-amd64/kernel/lib/crc-itu-t.ko");
        let st = root.stat(&rel).unwrap();
        let f = Chosen {
            display: format!("/lib/modules/{}", rel.display()),
            rel,
            key: Ok(FileKey::from(&st)),
        };
        let key = FileKey::from(&st);
        let none = Stored::default();
        let mut early = Early::default();
        // the walk's read failed: read again, and it works
        let slot = |r: Scanned| Slot::new(std::sync::OnceLock::from(r));
        early.insert(
            f.display.clone(),
            (key, slot(Err("too many open files".into()))),
        );
        let (r, hit) = scan_one(&root, &f, &none, &early);
        assert!(r.is_ok() && !hit, "{r:?}");
        // the walk's read worked: taken as it is, not read again
        let walked = Arc::new(scan::scan_in(&root, &f.rel, &f.display).unwrap());
        early.insert(f.display.clone(), (key, slot(Ok(Arc::clone(&walked)))));
        let (r, _) = scan_one(&root, &f, &none, &early);
        assert!(Arc::ptr_eq(&r.unwrap(), &walked));
        // ... unless the file is no longer the one the walk read
        let other = FileKey {
            size: key.size + 1,
            ..key
        };
        early.insert(f.display.clone(), (other, slot(Ok(Arc::clone(&walked)))));
        let (r, _) = scan_one(&root, &f, &none, &early);
        assert!(!Arc::ptr_eq(&r.unwrap(), &walked));
        // ... or the walk's read never finished (its slot is empty): read here
        early.insert(f.display.clone(), (key, Slot::default()));
        let (r, hit) = scan_one(&root, &f, &none, &early);
        assert!(r.is_ok() && !hit, "{r:?}");
    }
}
