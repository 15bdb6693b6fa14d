//! `depmod`: scan a module tree in parallel (through a scan cache), compute the dependency
//! graph as kmod does, and write kmod-compatible `modules.*` files atomically.

pub mod cache;
pub mod graph;
pub mod index;
pub mod order;
pub mod output;
pub mod scan;

use crate::error::Error;
use crate::tree::config::DepmodConfig;
use cache::{Cache, FileKey, Scanned};
use graph::{Graph, KernelSymbols, Message, ModuleIn, Settings};
use rayon::prelude::*;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
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
    /// Seconds spent in each phase: (name, seconds), in order.
    pub phases: Vec<(&'static str, f64)>,
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

    fn cache_path(&self) -> Option<PathBuf> {
        match &self.cache {
            CacheMode::Off => None,
            CacheMode::InTree => Some(Path::new(&self.dirname()).join(CACHE_NAME)),
            CacheMode::File(p) => Some(p.clone()),
        }
    }
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

/// Run depmod. Messages (kmod's warnings and errors, in kmod's words) go to `log` as they
/// are produced.
pub fn run(opts: &Options, log: &mut dyn FnMut(&Message)) -> Result<Summary, DepmodError> {
    let dirname = opts.dirname();
    let mut summary = Summary::default();
    let mut clock = std::time::Instant::now();
    let mut phase = |summary: &mut Summary, name: &'static str| {
        let now = std::time::Instant::now();
        summary.phases.push((name, (now - clock).as_secs_f64()));
        clock = now;
    };
    if opts.maybe_all {
        // kmod: -A with -n does nothing at all
        if opts.to_stdout {
            summary.up_to_date = true;
            return Ok(summary);
        }
        match up_to_date(&dirname) {
            Ok(true) => {
                summary.up_to_date = true;
                return Ok(summary);
            }
            Ok(false) => {}
            Err(e) => log(&Message::Error(e)),
        }
    }
    // every message of the run, for the cache to replay
    let mut all: Vec<Message> = Vec::new();
    let mut msgs: Vec<Message> = Vec::new();
    let kernel = kernel_symbols(opts, &mut msgs)?;
    let settings = Settings {
        print_unknown: opts.print_unknown && kernel.is_some(),
        sym_prefix: opts.sym_prefix,
    };
    if opts.print_unknown && kernel.is_none() {
        msgs.push(Message::Warning("-e needs -E or -F".into()));
    }

    // which files, with their identities
    let mut config_text = String::new();
    let (files, keys): (Vec<String>, Vec<Result<FileKey, String>>) = if opts.modules.is_empty() {
        let root = opts.root.clone().unwrap_or_else(|| PathBuf::from("/"));
        let cfg = DepmodConfig::load(&root, &opts.kver, opts.config.as_deref());
        config_text = format!("{cfg:?}");
        for w in &cfg.warnings {
            msgs.push(Message::Error(w.clone()));
        }
        let (walked, problems) = cfg.walk_reporting(&dirname);
        if let Err(e) = std::fs::read_dir(&dirname) {
            msgs.extend(problems.into_iter().take(1).map(Message::Error));
            emit(&mut msgs, &mut all, log);
            return Err(DepmodError::Fatal(format!(
                "could not search modules: {}",
                errno_text(&e)
            )));
        }
        msgs.extend(problems.into_iter().map(Message::Error));
        let paths: Vec<String> = walked.iter().map(|(p, _)| p.clone()).collect();
        let mut meta: rustc_hash::FxHashMap<&str, &std::fs::Metadata> =
            walked.iter().map(|(p, m)| (p.as_str(), m)).collect();
        cfg.select(&dirname, &paths)
            .into_iter()
            .map(|(_, p)| {
                let k = meta
                    .remove(p.as_str())
                    .map(FileKey::of)
                    .ok_or_else(|| format!("{p}: vanished during the scan"));
                (p, k)
            })
            .unzip()
    } else {
        let mut v = Vec::new();
        for p in &opts.modules {
            if !p.is_absolute() {
                emit(&mut msgs, &mut all, log);
                return Err(DepmodError::Fatal(format!(
                    "{}: not absolute path.",
                    p.display()
                )));
            }
            v.push(p.to_string_lossy().into_owned());
        }
        let mut keys = Vec::with_capacity(v.len());
        for p in &v {
            match std::fs::metadata(p) {
                Ok(m) => keys.push(Ok(FileKey::of(&m))),
                Err(e) => {
                    emit(&mut msgs, &mut all, log);
                    return Err(DepmodError::Fatal(format!(
                        "could not create module {p}: {}",
                        errno_text(&e)
                    )));
                }
            }
        }
        (v, keys)
    };

    phase(&mut summary, "walk");
    // nothing changed since the last run, which wrote what is there: nothing to do
    let cache_path = opts.cache_path();
    let inputs = input_hash(opts, &dirname, &config_text, &files, &keys);
    let shortcut = !opts.to_stdout && !opts.print_unknown && !opts.warn_dups;
    if let (true, Some(p)) = (shortcut, &cache_path) {
        if let Some(fp) = cache::Fingerprint::load(p) {
            if fp.inputs == inputs && outputs_intact(&dirname, &fp.outputs) {
                msgs.extend(fp.messages.iter().map(|(l, t)| match l {
                    0 => Message::Warning(t.clone()),
                    _ => Message::Error(t.clone()),
                }));
                emit(&mut msgs, &mut all, log);
                summary.modules = files.len();
                summary.cached = files.len();
                summary.unchanged = OUTPUTS.iter().map(|s| s.to_string()).collect();
                summary.up_to_date = true;
                return Ok(summary);
            }
        }
    }
    emit(&mut msgs, &mut all, log);

    // scan, through the cache
    let old = match &cache_path {
        Some(p) => {
            let (c, why) = Cache::load(p);
            if let Some(why) = why {
                log(&Message::Warning(why)); // about this run only: not replayed
            }
            c
        }
        None => Cache::default(),
    };
    phase(&mut summary, "load cache");
    let scanned = scan_files(&files, &keys, &old, opts.progress);
    phase(&mut summary, "scan");
    let mut new_cache = Cache::default();
    if !opts.modules.is_empty() {
        new_cache.entries = old.entries.clone();
    }
    let mut mods = Vec::with_capacity(files.len());
    for ((path, key), (result, hit)) in files.iter().zip(&keys).zip(scanned) {
        if hit {
            summary.cached += 1;
        } else {
            summary.scanned += 1;
        }
        if let Ok(key) = key {
            new_cache
                .entries
                .insert(path.clone(), (*key, result.clone()));
        }
        match result {
            Ok(record) => {
                let rel = path
                    .strip_prefix(&dirname)
                    .and_then(|r| r.strip_prefix('/'))
                    .map(str::to_string);
                mods.push(ModuleIn {
                    name: output::path_to_modname(path),
                    path: path.clone(),
                    rel,
                    record,
                });
            }
            Err(e) => {
                summary.failed += 1;
                msgs.push(Message::Warning(format!("{e}: left out of the indexes")));
            }
        }
    }
    // explicit module lists may name two files of one module: kmod keeps the first
    if !opts.modules.is_empty() {
        let mut seen = rustc_hash::FxHashSet::default();
        mods.retain(|m| seen.insert(m.name.clone()));
    }
    summary.modules = mods.len();

    let order_path = format!("{dirname}/modules.order");
    let order = read_input(&dirname, "modules.order", &mut msgs);
    let mods = graph::order_modules(mods, order.as_deref(), &order_path, &mut msgs);
    let g = match graph::build(mods, kernel.as_ref(), settings, std::mem::take(&mut msgs)) {
        Ok(g) => g,
        Err(c) => {
            let mut m = c.messages;
            emit(&mut m, &mut all, log);
            return Err(DepmodError::Cycles(c.cycles));
        }
    };
    msgs = g.messages.clone();
    emit(&mut msgs, &mut all, log);

    phase(&mut summary, "graph");
    let files_out = render(&g, opts, &dirname, &mut msgs);
    phase(&mut summary, "render");
    emit(&mut msgs, &mut all, log);
    if opts.to_stdout {
        let mut out = std::io::stdout().lock();
        for (_, data) in &files_out {
            out.write_all(data).map_err(|e| Error::io("<stdout>", e))?;
        }
        out.flush().map_err(|e| Error::io("<stdout>", e))?;
        return Ok(summary);
    }
    for (name, data) in &files_out {
        let path = Path::new(&dirname).join(name);
        if std::fs::read(&path).is_ok_and(|old| old == *data) {
            summary.unchanged.push(name.to_string());
            continue;
        }
        write_atomic(&path, data).map_err(|e| Error::io(&path, e))?;
        summary.written.push(name.to_string());
    }
    // `-A` compares module times with modules.dep's: keep it current even when unchanged
    if summary.unchanged.iter().any(|n| n == "modules.dep") {
        let p = Path::new(&dirname).join("modules.dep");
        if let Ok(f) = std::fs::File::options().write(true).open(&p) {
            let _ = f.set_modified(std::time::SystemTime::now());
        }
    }

    phase(&mut summary, "write");
    // the cache last: its fingerprint describes the files just written
    if let Some(p) = &cache_path {
        new_cache.fingerprint = cache::Fingerprint {
            inputs,
            outputs: OUTPUTS
                .iter()
                .filter_map(|n| {
                    let m = std::fs::metadata(Path::new(&dirname).join(n)).ok()?;
                    Some((n.to_string(), FileKey::of(&m)))
                })
                .collect(),
            messages: all
                .iter()
                .map(|m| match m {
                    Message::Warning(t) => (0, t.clone()),
                    Message::Error(t) => (1, t.clone()),
                })
                .collect(),
        };
        if let Err(e) = write_atomic(p, &new_cache.encode()) {
            log(&Message::Warning(format!(
                "could not write the scan cache {}: {e}",
                p.display()
            )));
        }
    }
    // freeing a whole tree's records costs milliseconds: do it off the caller's path (a
    // process that exits first lets the kernel reclaim it all at once)
    std::thread::spawn(move || drop((g, new_cache, old, files_out)));
    Ok(summary)
}

/// Pass messages on to `log`, keeping them in `all`.
fn emit(msgs: &mut Vec<Message>, all: &mut Vec<Message>, log: &mut dyn FnMut(&Message)) {
    for m in msgs.drain(..) {
        log(&m);
        all.push(m);
    }
}

/// Are the files of the last run still exactly as it left them?
fn outputs_intact(dirname: &str, outputs: &[(String, FileKey)]) -> bool {
    outputs.len() == OUTPUTS.len()
        && outputs.iter().all(|(n, k)| {
            std::fs::metadata(Path::new(dirname).join(n)).is_ok_and(|m| FileKey::of(&m) == *k)
        })
}

/// A hash of everything a run's result depends on: the build of kabi, the options, the
/// configuration, the module files chosen (in order, with their identities) and the other
/// inputs' identities.
fn input_hash(
    opts: &Options,
    dirname: &str,
    config: &str,
    files: &[String],
    keys: &[Result<FileKey, String>],
) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    cache::build_id().hash(&mut h);
    dirname.hash(&mut h);
    config.hash(&mut h);
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
    let key_of = |p: &Path| std::fs::metadata(p).ok().map(|m| FileKey::of(&m));
    let key_hash = |k: Option<FileKey>, h: &mut std::collections::hash_map::DefaultHasher| {
        if let Some(k) = k {
            (k.size, k.mtime, k.ctime, k.ino, k.dev).hash(h);
        } else {
            0u8.hash(h);
        }
    };
    for p in [&opts.symvers, &opts.system_map].into_iter().flatten() {
        key_hash(key_of(p), &mut h);
    }
    for n in [
        "modules.order",
        "modules.builtin",
        "modules.builtin.modinfo",
    ] {
        key_hash(key_of(&Path::new(dirname).join(n)), &mut h);
    }
    for (f, k) in files.iter().zip(keys) {
        f.hash(&mut h);
        key_hash(k.as_ref().ok().copied(), &mut h);
    }
    h.finish()
}

/// Every file depmod writes, in kmod's order, with its content. With `-n` only the text
/// files, as kmod prints them (and `modules.weakdep` only when a module has a weak
/// dependency, since kmod 30 prints none).
pub fn render(
    g: &Graph,
    opts: &Options,
    dirname: &str,
    msgs: &mut Vec<Message>,
) -> Vec<(&'static str, Vec<u8>)> {
    let o = output::Outputs::new(g);
    let w = opts.warn_dups;
    let mut files: Vec<(&'static str, Vec<u8>)> = Vec::new();
    if opts.to_stdout {
        files.push(("modules.dep", o.modules_dep()));
        files.push(("modules.alias", o.modules_alias()));
        files.push(("modules.softdep", o.modules_softdep()));
        if o.has_weakdeps() {
            files.push(("modules.weakdep", o.modules_weakdep()));
        }
        files.push(("modules.symbols", o.modules_symbols()));
        files.push(("modules.devname", o.modules_devname(msgs)));
        return files;
    }
    // every file in parallel; messages kept in kmod's order
    // a missing input gives an empty file, as kmod writes it (not an empty index)
    let builtin = read_input(dirname, "modules.builtin", msgs);
    let modinfo = read_input(dirname, "modules.builtin.modinfo", msgs);
    type Job<'a> = Box<dyn Fn(&mut Vec<Message>) -> Vec<u8> + Send + Sync + 'a>;
    let jobs: Vec<(&'static str, Job)> = vec![
        ("modules.dep", Box::new(|_| o.modules_dep())),
        ("modules.dep.bin", Box::new(|m| o.modules_dep_bin(w, m))),
        ("modules.alias", Box::new(|_| o.modules_alias())),
        ("modules.alias.bin", Box::new(|m| o.modules_alias_bin(w, m))),
        ("modules.softdep", Box::new(|_| o.modules_softdep())),
        ("modules.weakdep", Box::new(|_| o.modules_weakdep())),
        ("modules.symbols", Box::new(|_| o.modules_symbols())),
        (
            "modules.symbols.bin",
            Box::new(|m| o.modules_symbols_bin(w, m)),
        ),
        (
            "modules.builtin.bin",
            Box::new(|m| {
                builtin
                    .as_ref()
                    .map(|b| output::builtin_bin(b, m))
                    .unwrap_or_default()
            }),
        ),
        (
            "modules.builtin.alias.bin",
            Box::new(|m| {
                modinfo
                    .as_ref()
                    .map(|b| output::builtin_alias_bin(b, m))
                    .unwrap_or_default()
            }),
        ),
        ("modules.devname", Box::new(|m| o.modules_devname(m))),
    ];
    let results: Vec<(&'static str, Vec<u8>, Vec<Message>)> = jobs
        .par_iter()
        .map(|(name, job)| {
            let mut m = Vec::new();
            let data = job(&mut m);
            (*name, data, m)
        })
        .collect();
    for (name, data, m) in results {
        msgs.extend(m);
        files.push((name, data));
    }
    files
}

/// An input file of the module directory; a missing one is warned about as kmod does.
fn read_input(dirname: &str, name: &str, msgs: &mut Vec<Message>) -> Option<Vec<u8>> {
    match std::fs::read(Path::new(dirname).join(name)) {
        Ok(d) => Some(d),
        Err(e) => {
            msgs.push(Message::Warning(format!(
                "could not open {name} at {dirname}: {}",
                errno_text(&e)
            )));
            None
        }
    }
}

/// An I/O error as C's `%m` prints it ("No such file or directory").
pub fn errno_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Scan each file, taking unchanged ones from the cache. Per file: its identity (when it
/// could be stat'ed), the result, and whether it came from the cache.
pub fn scan_files(
    files: &[String],
    keys: &[Result<FileKey, String>],
    cache: &Cache,
    progress: bool,
) -> Vec<(Scanned, bool)> {
    let done = AtomicUsize::new(0);
    let finished = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        if progress {
            s.spawn(|| progress_line(files.len(), &done, &finished));
        }
        let out = files
            .par_iter()
            .zip(keys)
            .map(|(path, key)| {
                let r = scan_one(path, key, cache);
                done.fetch_add(1, Ordering::Relaxed);
                r
            })
            .collect();
        finished.store(true, Ordering::Relaxed);
        out
    })
}

fn scan_one(path: &str, key: &Result<FileKey, String>, cache: &Cache) -> (Scanned, bool) {
    let key = match key {
        Ok(k) => k,
        Err(e) => return (Err(e.clone()), false),
    };
    if let Some(hit) = cache.get(path, key) {
        return (hit, true);
    }
    let r = scan::scan_file_sized(Path::new(path), Some(key.size))
        .map(Arc::new)
        .map_err(|e| e.to_string());
    (r, false)
}

/// A progress line on standard error, redrawn a few times a second, shown only when the
/// scan takes long enough to be noticed; erased at the end.
fn progress_line(total: usize, done: &AtomicUsize, finished: &std::sync::atomic::AtomicBool) {
    let start = std::time::Instant::now();
    let mut shown = false;
    while !finished.load(Ordering::Relaxed) {
        std::thread::sleep(std::time::Duration::from_millis(100));
        if start.elapsed().as_millis() < 500 {
            continue;
        }
        let n = done.load(Ordering::Relaxed);
        let width = 30;
        let filled = (n * width).checked_div(total).unwrap_or(width);
        eprint!(
            "\r[{}{}] {n}/{total} modules",
            "#".repeat(filled),
            " ".repeat(width - filled)
        );
        shown = true;
    }
    if shown {
        eprint!("\r{}\r", " ".repeat(60));
    }
}

/// Decompress every module of the tree (nothing else): the decoder's share of a scan.
pub fn decompress_only(opts: &Options) -> Result<(usize, u64), DepmodError> {
    let root = opts.root.clone().unwrap_or_else(|| PathBuf::from("/"));
    let dirname = opts.dirname();
    let cfg = DepmodConfig::load(&root, &opts.kver, opts.config.as_deref());
    let files = cfg.walk(&dirname);
    let bytes: u64 = files
        .par_iter()
        .map(|f| scan::decompress_file(Path::new(f)).unwrap_or(0))
        .sum();
    Ok((files.len(), bytes))
}

/// The kernel's own symbols from `-E` or `-F`, parsed as kmod does.
fn kernel_symbols(
    opts: &Options,
    msgs: &mut Vec<Message>,
) -> Result<Option<KernelSymbols>, DepmodError> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|e| {
            DepmodError::Fatal(format!(
                "could not load {}: {}",
                p.display(),
                errno_text(&e)
            ))
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
        if let Some(pre) = prefix {
            if p.as_bytes().first() == Some(&pre) {
                p = &p[1..];
            }
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
pub fn up_to_date(dirname: &str) -> Result<bool, String> {
    if let Err(e) = std::fs::read_dir(dirname) {
        return Err(format!(
            "could not open directory {dirname}: {}",
            errno_text(&e)
        ));
    }
    let dep = std::fs::metadata(Path::new(dirname).join("modules.dep")).map_err(|e| {
        format!(
            "could not fstatat({dirname}, modules.dep): {}",
            errno_text(&e)
        )
    })?;
    let limit = dep.mtime();
    fn newer(dir: &Path, limit: i64) -> bool {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return false;
        };
        for e in rd.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if matches!(name.as_ref(), "." | ".." | "build" | "source") {
                continue;
            }
            let Ok(m) = std::fs::metadata(e.path()) else {
                continue;
            };
            if m.is_dir() {
                if newer(&e.path(), limit) {
                    return true;
                }
            } else if m.is_file()
                && crate::module::strip_module_ext(&name).is_some()
                && m.mtime() > limit
            {
                return true;
            }
        }
        false
    }
    Ok(!newer(Path::new(dirname), limit))
}

/// Write `data` to `path` through a temporary file in the same directory, flushed to disk
/// before it replaces the old file: a crash leaves the old or the new file, never a part.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tmp = dir.join(format!(".{name}.{}.{nanos}.tmp", std::process::id()));
    let result = (|| {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::File::options()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_data()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The `modules.dep` lines of a module directory computed in memory, nothing written: what a
/// loader uses when the tree has no index. The default search order (`updates`, then the
/// rest); unreadable modules are left out.
pub fn dep_lines(dirname: &str) -> Vec<String> {
    let cfg = DepmodConfig {
        search: vec![
            crate::tree::config::Search::Dir("updates".into()),
            crate::tree::config::Search::BuiltIn,
        ],
        ..DepmodConfig::default()
    };
    let walked = cfg.walk_entries(dirname);
    let paths: Vec<String> = walked.iter().map(|(p, _)| p.clone()).collect();
    let files: Vec<String> = cfg
        .select(dirname, &paths)
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    let keys: Vec<Result<FileKey, String>> = files
        .iter()
        .map(|p| {
            std::fs::metadata(p)
                .map(|m| FileKey::of(&m))
                .map_err(|e| e.to_string())
        })
        .collect();
    let scanned = scan_files(&files, &keys, &Cache::default(), false);
    let mods: Vec<ModuleIn> = files
        .iter()
        .zip(scanned)
        .filter_map(|(path, (r, _))| {
            Some(ModuleIn {
                name: output::path_to_modname(path),
                path: path.clone(),
                rel: path
                    .strip_prefix(dirname)
                    .and_then(|r| r.strip_prefix('/'))
                    .map(str::to_string),
                record: r.ok()?,
            })
        })
        .collect();
    let mut msgs = Vec::new();
    let order = std::fs::read(Path::new(dirname).join("modules.order")).ok();
    let mods = graph::order_modules(mods, order.as_deref(), "modules.order", &mut msgs);
    match graph::build(mods, None, Settings::default(), msgs) {
        Ok(g) => output::Outputs::new(&g).dep_lines().to_vec(),
        Err(_) => Vec::new(),
    }
}
