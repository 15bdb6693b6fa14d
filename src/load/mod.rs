//! Loading modules as modprobe does, with `finit_module`: find the module (indexes or a scan
//! of the tree), load its dependencies first (and its soft dependencies), skip what is
//! loaded or built in, apply modprobe.d and command-line options and blacklists, predict the
//! kernel's verdict with `kabi check` first, and read the kernel's reason after a failure.

pub mod config;

use crate::check::{Verdict, check};
use crate::compress::Compression;
use crate::depmod::index::Index;
use crate::kernel::abi::KernelSymbol;
use crate::kernel::target::Target;
use crate::module::Module;
use crate::tree::lookup::{Found, ModuleDir, module_name_of, normalize, normalize_alias};
use config::ModprobeConfig;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// `MODULE_INIT_COMPRESSED_FILE`.
pub const COMPRESSED_FILE: i32 = 4;
/// `MODULE_INIT_IGNORE_MODVERSIONS | MODULE_INIT_IGNORE_VERMAGIC` (force).
pub const FORCE_FLAGS: i32 = 1 | 2;

/// What to do with one request.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Show what would be loaded; load nothing.
    pub dry_run: bool,
    /// Load even when the check predicts a failure, and ask the kernel to ignore
    /// modversions and vermagic.
    pub force: bool,
    /// Apply blacklists to names too (modprobe `-b`); aliases are always filtered.
    pub use_blacklist: bool,
    /// Do not predict: let the kernel decide (its flags unchanged).
    pub no_check: bool,
    pub verbose: bool,
}

/// One step of a load plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `insmod PATH PARAMS`.
    Insmod {
        name: String,
        path: PathBuf,
        params: String,
    },
    /// Already loaded (live in `/sys/module` or listed in `/proc/modules`).
    Loaded { name: String },
    /// Built into the kernel.
    Builtin { name: String },
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("Module {0} not found in directory {1}")]
    NotFound(String, String),
    #[error("Module {0} is blacklisted")]
    Blacklisted(String),
    #[error("could not insert '{name}': {reason}")]
    Insert { name: String, reason: String },
    #[error("{name}: kabi check predicts the kernel will refuse it (use --force to try):\n{why}")]
    Predicted { name: String, why: String },
    #[error(transparent)]
    Io(#[from] crate::Error),
}

/// The machine's module state and configuration.
pub struct Loader {
    pub dir: ModuleDir,
    pub config: ModprobeConfig,
    /// Module name → its `modules.dep` line (relative path, dependencies), from the index.
    deps: HashMap<String, (String, Vec<String>)>,
    /// From `modules.softdep`.
    softdeps: HashMap<String, (Vec<String>, Vec<String>)>,
    /// The running kernel, for the checks (built on first use).
    target: Option<Target>,
    /// Exports of the modules loaded by this run (providers for the next checks).
    extra: rustc_hash::FxHashMap<String, KernelSymbol>,
    sys: PathBuf,
    /// `modules.builtin`, read once.
    builtin: BTreeSet<String>,
    /// `modules.alias.bin`, read once.
    alias_bin: Option<Vec<u8>>,
    proc: PathBuf,
}

impl Loader {
    /// A loader for `<root>/lib/modules/<kver>`, with the root's modprobe.d and `cmdline`.
    pub fn new(root: &Path, kver: &str, cmdline: &str) -> Loader {
        let r = root.to_string_lossy();
        let dir = ModuleDir::new((r != "/").then(|| r.trim_end_matches('/')), kver);
        let mut config = ModprobeConfig::load(root);
        config.apply_cmdline(cmdline);
        let mut l = Loader {
            dir,
            config,
            deps: HashMap::new(),
            softdeps: HashMap::new(),
            target: None,
            extra: Default::default(),
            sys: root.join("sys"),
            builtin: BTreeSet::new(),
            alias_bin: None,
            proc: root.join("proc"),
        };
        l.read_indexes();
        l
    }

    fn file(&self, name: &str) -> PathBuf {
        PathBuf::from(format!("{}/{name}", self.dir.dir))
    }

    /// `modules.dep.bin` (or `modules.dep`); without either, the tree is scanned with the
    /// depmod code, in memory.
    fn read_indexes(&mut self) {
        fn add(deps: &mut HashMap<String, (String, Vec<String>)>, line: &str) {
            if let Some((path, rest)) = line.split_once(':') {
                if let Some(name) = module_name_of(path) {
                    let d = rest.split_whitespace().map(str::to_string).collect();
                    deps.insert(name, (path.to_string(), d));
                }
            }
        }
        let mut deps = HashMap::new();
        if let Ok(bin) = std::fs::read(self.file("modules.dep.bin")) {
            if let Ok(idx) = Index::parse(&bin) {
                for (_, v, _) in idx.entries() {
                    add(&mut deps, &v);
                }
            }
        }
        if deps.is_empty() {
            if let Ok(text) = std::fs::read_to_string(self.file("modules.dep")) {
                text.lines().for_each(|l| add(&mut deps, l));
            }
        }
        if deps.is_empty() {
            for line in crate::depmod::dep_lines(&self.dir.dir) {
                add(&mut deps, &line);
            }
        }
        self.deps = deps;
        self.builtin = std::fs::read_to_string(self.file("modules.builtin"))
            .map(|t| t.lines().filter_map(module_name_of).collect())
            .unwrap_or_default();
        self.alias_bin = std::fs::read(self.file("modules.alias.bin")).ok();
        if let Ok(text) = std::fs::read_to_string(self.file("modules.softdep")) {
            let mut c = ModprobeConfig::default();
            c.parse(&text);
            self.softdeps = c.softdeps.into_iter().collect();
        }
    }

    fn path_of(&self, rel: &str) -> PathBuf {
        if rel.starts_with('/') {
            PathBuf::from(rel)
        } else {
            self.file(rel)
        }
    }

    /// Is it loaded (`/sys/module/<name>/initstate`, or `/proc/modules`)? Built in
    /// (`/sys/module/<name>` without `initstate`, or `modules.builtin`)?
    pub fn state(&self, name: &str) -> Option<Step> {
        let m = self.sys.join("module").join(name);
        if m.join("initstate").exists() {
            return Some(Step::Loaded { name: name.into() });
        }
        if let Ok(text) = std::fs::read_to_string(self.proc.join("modules")) {
            if text.lines().any(|l| l.split(' ').next() == Some(name)) {
                return Some(Step::Loaded { name: name.into() });
            }
        }
        if self.builtin.contains(name) || (m.is_dir() && !self.deps.contains_key(name)) {
            return Some(Step::Builtin { name: name.into() });
        }
        None
    }

    /// Resolve what the user named: a file, a module name, a modprobe.d alias, an alias of
    /// the module index, a built-in module. Names, in kmod's order.
    pub fn resolve(&self, query: &str, opts: &Options) -> Result<Vec<String>, LoadError> {
        let p = Path::new(query);
        if p.is_file()
            && crate::module::strip_module_ext(query.rsplit('/').next().unwrap_or(query)).is_some()
        {
            return Ok(vec![format!("path:{query}")]);
        }
        let name = normalize(query);
        // modprobe.d aliases first
        let alias = normalize_alias(query);
        let mut from_config: Vec<String> = self
            .config
            .aliases
            .iter()
            .filter(|(pat, _)| crate::glob::fnmatch(pat.as_bytes(), alias.as_bytes()))
            .map(|(_, m)| m.clone())
            .collect();
        from_config.dedup();
        if !from_config.is_empty() {
            return Ok(from_config);
        }
        if self.deps.contains_key(&name) {
            if opts.use_blacklist && self.config.is_blacklisted(&name) {
                return Err(LoadError::Blacklisted(name));
            }
            return Ok(vec![name]);
        }
        // modules.alias.bin, as kmod searches it: every matching pattern gives its module,
        // duplicates included, in priority order
        if let Some(bin) = &self.alias_bin {
            if let Ok(idx) = Index::parse(bin) {
                let hits: Vec<String> = idx
                    .search_wild(&alias)
                    .into_iter()
                    .map(|(v, _)| v)
                    .collect();
                if !hits.is_empty() {
                    let ok: Vec<String> = hits
                        .into_iter()
                        .filter(|n| !self.config.is_blacklisted(n))
                        .collect();
                    if ok.is_empty() {
                        return Err(LoadError::Blacklisted(name));
                    }
                    return Ok(ok);
                }
            }
        }
        let found = self.dir.lookup(query);
        let mut out = Vec::new();
        for f in found {
            let n = match f {
                Found::File { name, .. } | Found::Builtin { name } => name,
            };
            // an alias never resolves to a blacklisted module
            if !self.config.is_blacklisted(&n) {
                out.push(n);
            }
        }
        if out.is_empty() {
            if self.dir.lookup(query).is_empty() {
                return Err(LoadError::NotFound(query.to_string(), self.dir.dir.clone()));
            }
            return Err(LoadError::Blacklisted(name));
        }
        Ok(out)
    }

    /// The load plan of one module name, built as kmod's `__kmod_module_get_probe_list`:
    /// each hard dependency (deepest first) with its soft dependencies around it, then the
    /// module's own `pre:` soft dependencies, the module, its `post:` ones. A module reached
    /// through a soft dependency is planned once; a hard dependency may appear twice, as in
    /// kmod (the second load finds it loaded).
    pub fn plan(&self, name: &str, params: &[String]) -> Result<Vec<Step>, LoadError> {
        let mut steps = Vec::new();
        let mut seen = BTreeSet::new();
        if let Some(path) = name.strip_prefix("path:") {
            let m = crate::module::name_from_path(Path::new(path));
            steps.push(Step::Insmod {
                params: self.params(&m, params),
                name: m,
                path: PathBuf::from(path),
            });
            return Ok(steps);
        }
        self.probe_list(name, params, &mut steps, &mut seen, 0)?;
        Ok(steps)
    }

    fn probe_list(
        &self,
        name: &str,
        params: &[String],
        steps: &mut Vec<Step>,
        seen: &mut BTreeSet<String>,
        depth: usize,
    ) -> Result<(), LoadError> {
        if !seen.insert(name.to_string()) || depth > 32 {
            return Ok(());
        }
        let deps: Vec<String> = match self.deps.get(name) {
            Some((_, d)) => d.iter().rev().filter_map(|x| module_name_of(x)).collect(),
            None if self.state(name).is_some() => Vec::new(),
            None => return Err(LoadError::NotFound(name.to_string(), self.dir.dir.clone())),
        };
        for d in &deps {
            self.fill_softdep(d, &[], steps, seen, depth)?;
        }
        self.fill_softdep(name, params, steps, seen, depth)
    }

    fn fill_softdep(
        &self,
        name: &str,
        params: &[String],
        steps: &mut Vec<Step>,
        seen: &mut BTreeSet<String>,
        depth: usize,
    ) -> Result<(), LoadError> {
        let (pre, post) = self
            .config
            .softdeps
            .get(name)
            .or_else(|| self.softdeps.get(name))
            .cloned()
            .unwrap_or_default();
        for p in &pre {
            for n in self.resolve(p, &Options::default()).unwrap_or_default() {
                self.probe_list(&n, &[], steps, seen, depth + 1)?;
            }
        }
        steps.push(match self.deps.get(name) {
            Some((rel, _)) => Step::Insmod {
                name: name.to_string(),
                path: self.path_of(rel),
                params: self.params(name, params),
            },
            None => self
                .state(name)
                .unwrap_or(Step::Builtin { name: name.into() }),
        });
        for p in &post {
            for n in self.resolve(p, &Options::default()).unwrap_or_default() {
                self.probe_list(&n, &[], steps, seen, depth + 1)?;
            }
        }
        Ok(())
    }

    /// modprobe.d and command-line options (each entry as written, joined by a space), then
    /// the caller's, as kmod concatenates them.
    fn params(&self, name: &str, extra: &[String]) -> String {
        let config = self
            .config
            .options
            .get(name)
            .map(|v| {
                v.iter()
                    .filter(|o| !o.is_empty())
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        let extra = extra.join(" ");
        if config.is_empty() {
            extra
        } else {
            format!("{config} {extra}")
        }
    }

    /// The running kernel as the loader sees it: kallsyms (+ kcore CRCs when readable), and
    /// vermagic and `struct module` size from one of its installed modules.
    fn target(&mut self) -> &Target {
        if self.target.is_none() {
            let release = std::fs::read_to_string(self.proc.join("sys/kernel/osrelease"))
                .map(|s| s.trim().to_string())
                .unwrap_or_default();
            let mut t = Target {
                release: Some(release),
                ..Target::default()
            };
            if let Ok((syms, known)) = crate::kernel::kallsyms::running(&self.proc) {
                t.abi
                    .merge(self.proc.join("kallsyms").display().to_string(), syms);
                t.crcs_known = known;
            }
            if let Some((rel, _)) = self.deps.values().find(|(r, _)| r.starts_with("kernel/")) {
                if let Ok(m) = Module::open_with(self.path_of(rel), crate::module::Detail::Sections)
                {
                    t.learn_from_module(&m);
                }
            }
            self.target = Some(t);
        }
        self.target.as_ref().unwrap()
    }

    /// Predict the kernel's verdict on a module file.
    pub fn predict(&mut self, path: &Path) -> Result<(Module, Verdict), LoadError> {
        let m = Module::open(path)?;
        let extra = self.extra.clone();
        let t = self.target().clone();
        let v = check(&m, Some(path.to_path_buf()), &t, &extra);
        Ok((m, v))
    }

    /// Insert one module: check, then `finit_module` (the file itself when the kernel
    /// decompresses that format, else a decompressed memfd; `init_module` last).
    pub fn insert(
        &mut self,
        name: &str,
        path: &Path,
        params: &str,
        opts: &Options,
    ) -> Result<(), LoadError> {
        let m = self.admit(name, path, opts)?;
        insert_raw(name, &m.name, path, params, opts, &self.sys)?;
        self.record(&m);
        Ok(())
    }

    /// The check before a load: the module, or why the kernel will refuse it (unless
    /// `--force`).
    pub fn admit(&mut self, name: &str, path: &Path, opts: &Options) -> Result<Module, LoadError> {
        if opts.no_check {
            return Ok(Module::open(path)?);
        }
        let (m, v) = self.predict(path)?;
        if !v.compatible() && !opts.force {
            let why: Vec<String> = v
                .problems
                .iter()
                .map(|p| {
                    let msg = p.kernel_message(name);
                    format!(
                        "  {}: {}",
                        p.errno(),
                        if msg.is_empty() {
                            format!("{p:?}")
                        } else {
                            msg
                        }
                    )
                })
                .collect();
            return Err(LoadError::Predicted {
                name: name.to_string(),
                why: why.join("\n"),
            });
        }
        Ok(m)
    }

    /// A loaded module's exports serve the next checks.
    pub fn record(&mut self, m: &Module) {
        for e in &m.exports {
            self.extra.insert(
                e.name.clone(),
                KernelSymbol {
                    name: e.name.clone(),
                    crc: e.crc,
                    kind: e.kind,
                    namespace: e.namespace.clone(),
                    owner: m.name.clone(),
                },
            );
        }
    }

    /// Load many plans at once with up to `jobs` threads: a module starts when every module
    /// it depends on (among those being loaded) is in. Each result is attributed to its module.
    pub fn load_parallel(
        &mut self,
        plans: &[Vec<Step>],
        opts: &Options,
        jobs: usize,
    ) -> Vec<(String, Result<(), LoadError>)> {
        // the modules to insert, once each, with their dependencies among them
        let mut order: Vec<(String, PathBuf, String)> = Vec::new();
        for plan in plans {
            for s in plan {
                if let Step::Insmod { name, path, params } = s {
                    if !order.iter().any(|(n, _, _)| n == name) && self.state(name).is_none() {
                        order.push((name.clone(), path.clone(), params.clone()));
                    }
                }
            }
        }
        let names: BTreeSet<String> = order.iter().map(|(n, _, _)| n.clone()).collect();
        let among: HashMap<String, Vec<String>> = order
            .iter()
            .map(|(n, _, _)| {
                let d = self
                    .deps
                    .get(n)
                    .map(|(_, d)| {
                        d.iter()
                            .filter_map(|x| module_name_of(x))
                            .filter(|x| names.contains(x))
                            .collect()
                    })
                    .unwrap_or_default();
                (n.clone(), d)
            })
            .collect();
        let deps_of = |n: &str| -> Vec<String> { among.get(n).cloned().unwrap_or_default() };
        // level = 1 + the deepest dependency's level (plans are in dependency order)
        let mut level: HashMap<String, usize> = HashMap::new();
        for (n, _, _) in &order {
            let l = deps_of(n)
                .iter()
                .filter_map(|d| level.get(d))
                .max()
                .map_or(0, |m| m + 1);
            level.insert(n.clone(), l);
        }
        let max = level.values().copied().max().unwrap_or(0);
        let mut results: Vec<(String, Result<(), LoadError>)> = Vec::new();
        let mut failed: BTreeSet<String> = BTreeSet::new();
        for lv in 0..=max {
            let mut batch: Vec<(String, PathBuf, String, Module)> = Vec::new();
            for (n, p, params) in order.iter().filter(|(n, _, _)| level[n] == lv) {
                if let Some(d) = deps_of(n).into_iter().find(|d| failed.contains(d)) {
                    failed.insert(n.clone());
                    results.push((
                        n.clone(),
                        Err(LoadError::Insert {
                            name: n.clone(),
                            reason: format!("its dependency {d} failed to load"),
                        }),
                    ));
                    continue;
                }
                match self.admit(n, p, opts) {
                    Ok(m) => batch.push((n.clone(), p.clone(), params.clone(), m)),
                    Err(e) => {
                        failed.insert(n.clone());
                        results.push((n.clone(), Err(e)));
                    }
                }
            }
            let sys = self.sys.clone();
            let outcome: Vec<Result<(), LoadError>> = std::thread::scope(|sc| {
                let mut out = Vec::new();
                for chunk in batch.chunks(jobs.max(1)) {
                    let handles: Vec<_> = chunk
                        .iter()
                        .map(|(n, p, params, _)| {
                            let sys = &sys;
                            sc.spawn(move || insert_raw(n, n, p, params, opts, sys))
                        })
                        .collect();
                    for h in handles {
                        out.push(h.join().unwrap_or_else(|_| {
                            Err(LoadError::Insert {
                                name: String::new(),
                                reason: "loader thread panicked".into(),
                            })
                        }));
                    }
                }
                out
            });
            for ((n, _, _, m), r) in batch.into_iter().zip(outcome) {
                if r.is_ok() {
                    self.record(&m);
                } else {
                    failed.insert(n.clone());
                }
                results.push((n, r));
            }
        }
        results
    }

    /// Every device's `modalias` under `/sys/devices`, resolved to modules (coldplug).
    pub fn coldplug_names(&self) -> Vec<String> {
        let mut aliases = BTreeSet::new();
        let mut stack = vec![self.sys.join("devices")];
        while let Some(d) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in rd.flatten() {
                let Ok(t) = e.file_type() else { continue };
                if t.is_dir() && !t.is_symlink() {
                    stack.push(e.path());
                } else if e.file_name() == "modalias" {
                    if let Ok(a) = std::fs::read_to_string(e.path()) {
                        let a = a.trim();
                        if !a.is_empty() {
                            aliases.insert(a.to_string());
                        }
                    }
                }
            }
        }
        let mut names = Vec::new();
        for a in aliases {
            for n in self.resolve(&a, &Options::default()).unwrap_or_default() {
                if !names.contains(&n) {
                    names.push(n);
                }
            }
        }
        names
    }
}

/// `finit_module` with the kernel's reason from `/dev/kmsg` on failure.
/// `kname` is the module's own name (`.modinfo name=`), which the kernel's messages use.
pub fn insert_raw(
    name: &str,
    kname: &str,
    path: &Path,
    params: &str,
    opts: &Options,
    sys: &Path,
) -> Result<(), LoadError> {
    let flags = if opts.force { FORCE_FLAGS } else { 0 };
    let kmsg = Kmsg::open();
    finit(path, params, flags, sys).map_err(|e| {
        let said = kmsg.map(|k| k.read_about(kname)).unwrap_or_default();
        let mut reason = format!("{} ({})", strerror(&e), errno_name(&e));
        if !said.is_empty() {
            reason.push_str(&format!("; the kernel says: {}", said.join("; ")));
        }
        LoadError::Insert {
            name: name.to_string(),
            reason,
        }
    })
}

fn strerror(e: &std::io::Error) -> String {
    crate::depmod::errno_text(e)
}

fn errno_name(e: &std::io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(1) => "EPERM",
        Some(2) => "ENOENT",
        Some(8) => "ENOEXEC",
        Some(12) => "ENOMEM",
        Some(14) => "EFAULT",
        Some(17) => "EEXIST",
        Some(19) => "ENODEV",
        Some(16) => "EBUSY",
        Some(22) => "EINVAL",
        Some(74) => "EBADMSG",
        Some(95) => "EOPNOTSUPP",
        Some(129) => "EKEYREJECTED",
        Some(38) => "ENOSYS",
        _ => "errno",
    }
}

/// Which compressed formats the running kernel decompresses itself
/// (`/sys/module/compression`: `zstd`, `xz` or `gzip`).
fn kernel_decompresses(sys: &Path, kind: Compression) -> bool {
    std::fs::read_to_string(sys.join("module/compression"))
        .map(|s| s.trim() == kind.name())
        .unwrap_or(false)
}

/// Load a module file with `finit_module`.
pub fn finit(path: &Path, params: &str, flags: i32, sys: &Path) -> std::io::Result<()> {
    use std::io::Read;
    let params = std::ffi::CString::new(params).map_err(std::io::Error::other)?;
    let mut f = std::fs::File::open(path)?;
    let mut head = [0u8; 8];
    let n = f.read(&mut head)?;
    let kind = Compression::detect(&head[..n]).unwrap_or(Compression::None);
    let f = std::fs::File::open(path)?;
    if kind == Compression::None {
        return rustix::system::finit_module(&f, &params, flags).map_err(Into::into);
    }
    if kernel_decompresses(sys, kind) {
        match rustix::system::finit_module(&f, &params, flags | COMPRESSED_FILE) {
            Err(rustix::io::Errno::OPNOTSUPP) => {}
            r => return r.map_err(Into::into),
        }
    }
    // decompress here, into memory the kernel reads through a file descriptor
    let data = std::fs::read(path)?;
    let image = crate::compress::decompress(kind, &data, crate::compress::DEFAULT_LIMIT)
        .map_err(std::io::Error::other)?;
    let fd = rustix::fs::memfd_create("kabi-module", rustix::fs::MemfdFlags::CLOEXEC)?;
    let mut file = std::fs::File::from(fd);
    std::io::Write::write_all(&mut file, &image)?;
    match rustix::system::finit_module(&file, &params, flags) {
        Err(rustix::io::Errno::NOSYS) | Err(rustix::io::Errno::BADF) => {
            if flags != 0 {
                return Err(std::io::Error::from_raw_os_error(22));
            }
            rustix::system::init_module(&image, &params).map_err(Into::into)
        }
        r => r.map_err(Into::into),
    }
}

/// `/dev/kmsg`, positioned at its end before a load, to read what the kernel says after.
struct Kmsg(std::fs::File);

impl Kmsg {
    fn open() -> Option<Kmsg> {
        use std::os::unix::fs::OpenOptionsExt;
        let f = std::fs::File::options()
            .read(true)
            .custom_flags(0o4000) // O_NONBLOCK
            .open("/dev/kmsg")
            .ok()?;
        rustix::fs::seek(&f, rustix::fs::SeekFrom::End(0)).ok()?;
        Some(Kmsg(f))
    }

    /// The new records that name the module.
    fn read_about(mut self, name: &str) -> Vec<String> {
        use std::io::Read;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 8192];
        while let Ok(n) = self.0.read(&mut buf) {
            if n == 0 {
                break;
            }
            let rec = String::from_utf8_lossy(&buf[..n]);
            let msg = rec.split_once(';').map(|x| x.1).unwrap_or(&rec);
            let msg = msg.lines().next().unwrap_or("").to_string();
            if msg.contains(name) {
                out.push(msg);
            }
        }
        out
    }
}

/// `/proc/modules` as lsmod shows it: (name, size, use count, users).
pub fn loaded(proc: &Path) -> Vec<(String, u64, u64, String)> {
    std::fs::read_to_string(proc.join("modules"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            Some((
                f.first()?.to_string(),
                f.get(1)?.parse().ok()?,
                f.get(2)?.parse().ok()?,
                f.get(3)?.trim_end_matches(',').replace('-', ""),
            ))
        })
        .collect()
}

/// Unload a module (`delete_module`, non-blocking like rmmod).
pub fn unload(name: &str) -> std::io::Result<()> {
    let c = std::ffi::CString::new(name).map_err(std::io::Error::other)?;
    rustix::system::delete_module(&c, 0o4000 /* O_NONBLOCK */).map_err(Into::into)
}
