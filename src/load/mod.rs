//! Loading and removing modules as kmod 30's modprobe, insmod, rmmod and lsmod do, with the
//! kernel behind [`kernel::KernelOps`].
//!
//! * [`config`]: modprobe.d and the kernel command line, as libkmod reads them.
//! * [`index`]: the module directory's indexes, read when needed.
//! * This module: modules as libkmod's pool holds them (one object per name, or per name
//!   and alias), `kmod_module_new_from_lookup`, dependencies and soft dependencies, and the
//!   probe list (`__kmod_module_get_probe_list`).
//! * [`exec`]: the executor: probe-insert with its break-on-error rule, install and remove
//!   commands, `modprobe -r`'s removal algorithm, rmmod, insmod, lsmod, parallel loads.
//!   Everything it prints goes out as [`Event`]s; the command layer renders them.
//! * [`kernel`]: the kernel (`finit_module`, `/sys/module`, `/dev/kmsg`, `/bin/sh`) and
//!   [`fake`]: a recording fake of it.
//! * [`predict`]: kabi's own addition for `kabi load`: the kernel's verdict predicted before
//!   each insert (`kabi check` against the running kernel).

pub mod config;
pub mod exec;
pub mod fake;
pub mod index;
pub mod kernel;
pub mod predict;
pub(crate) mod schedule;
pub mod snapshot;

use config::ModprobeConfig;
use index::{ModuleIndex, alias_normalize, kmod_modname};
use kernel::{InitState, KernelOps};
use std::path::{Path, PathBuf};

/// Message priorities, as syslog numbers them (kmod's tools filter and name them so).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Crit = 2,
    Err = 3,
    Warning = 4,
    Notice = 5,
    Info = 6,
    Debug = 7,
}

impl Level {
    /// kmod's name of the priority.
    pub fn name(self) -> &'static str {
        match self {
            Level::Crit => "FATAL",
            Level::Err => "ERROR",
            Level::Warning => "WARNING",
            Level::Notice => "NOTICE",
            Level::Info => "INFO",
            Level::Debug => "DEBUG",
        }
    }
}

/// What the loader reports while it works, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A line kmod prints on stdout when showing what it does (`-v`, `-n -v`,
    /// `--show-depends`): `insmod PATH OPTS`, `install CMD OPTS`, `builtin NAME`,
    /// `rmmod NAME`, `remove CMD`. With its newline. kmod leaves the `insmod`/`install`/
    /// `builtin` lines in stdio's buffer (a command run meanwhile prints first when stdout
    /// is a pipe): those are `Show`; the `rmmod`/`remove` lines are flushed: `ShowNow`.
    Show(String),
    /// A shown line kmod flushes at once.
    ShowNow(String),
    /// A line always printed on stdout (`modprobe -R`'s names).
    Out(String),
    /// A message of the tool itself (modprobe's `LOG`/`ERR`), with its newline. A message
    /// at [`Level::Crit`] ends kmod's tool when it is printed.
    Tool(Level, String),
    /// A message of libkmod: level, `file.c:LINE function` as Debian's build prints it,
    /// text with its newline.
    Lib(Level, &'static str, String),
}

/// Where events go.
pub type Sink<'a> = &'a mut dyn FnMut(Event);

/// How to load (kmod's `KMOD_PROBE_*` flags and modprobe's switches).
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Do nothing, show what would be done (`-n`, and `--show-depends`).
    pub dry_run: bool,
    /// Treat loaded and built-in modules as absent (`--show-depends`).
    pub ignore_loaded: bool,
    /// Skip install and remove commands (`-i`).
    pub ignore_commands: bool,
    /// Fail when the module is already loaded, or not loaded for removal (`--first-time`).
    pub first_time: bool,
    /// Apply the blacklist to names too (`-b`); aliases always are.
    pub use_blacklist: bool,
    /// `MODULE_INIT_IGNORE_MODVERSIONS` (`--force-modversion`, `-f`).
    pub force_modversion: bool,
    /// `MODULE_INIT_IGNORE_VERMAGIC` (`--force-vermagic`, `-f`).
    pub force_vermagic: bool,
    /// Force removal (`-f` with `-r`).
    pub force_remove: bool,
    /// Remove holders first (`--remove-holders`).
    pub remove_holders: bool,
    /// Wait up to this long for a module's refcount to drop (`-w`).
    pub wait_msec: u64,
    /// `-a`: "not found" is a warning, not fatal.
    pub all: bool,
    /// Show the `insmod`/`install`/`rmmod` lines (modprobe's `-v` or `--show-depends`).
    pub show: bool,
    /// `-v` given (kabi's extra detail).
    pub verbose: bool,
    /// Predict the kernel's verdict before each insert (`kabi load`; never under the kmod
    /// names).
    pub predict: bool,
    /// Insert even when the prediction says the kernel will refuse.
    pub force: bool,
    /// The running kernel's own modules (`lib/modules/RELEASE/kernel` of the release that
    /// runs): as a rule built with the kernel, they are inserted without a prediction first
    /// and the prediction runs only when the kernel refuses one, to say why. The kernel
    /// makes every check the prediction models, so the verdict is the same; what a module
    /// placed there by someone else (a DKMS module installed below `kernel/`, or an
    /// in-tree module whose dependency `updates/` overrides) loses is the refusal before
    /// the insert, not the refusal. Every other module (`updates/`, `extra/`,
    /// `weak-updates/`, a path) is predicted before its insert.
    pub own_modules: Option<PathBuf>,
    /// Only print the names a query resolves to (`-R`).
    pub lookup_only: bool,
    /// kabi's own detail in a failure: the errno's name and what the kernel logged
    /// (`kabi load`; never under the kmod names).
    pub explain: bool,
}

impl Options {
    /// The `MODULE_INIT_*` flags of an insert.
    pub fn insert_flags(&self) -> u32 {
        let mut f = 0;
        if self.force_modversion {
            f |= kernel::IGNORE_MODVERSIONS;
        }
        if self.force_vermagic {
            f |= kernel::IGNORE_VERMAGIC;
        }
        f
    }

    /// The level of modprobe's `LOG()`: fatal, or a warning with `-a`.
    pub fn log_level(&self) -> Level {
        if self.all {
            Level::Warning
        } else {
            Level::Crit
        }
    }
}

/// Index of a module object in the loader's pool.
pub type ModId = usize;

/// A module as libkmod's `struct kmod_module` holds it.
#[derive(Debug, Clone, Default)]
pub struct Mod {
    pub name: String,
    /// The alias it was created from (config alias, index alias, symbol).
    pub alias: Option<String>,
    path: Option<PathBuf>,
    dep_init: bool,
    deps: Vec<ModId>,
    builtin: Option<bool>,
    install: Option<Option<String>>,
    remove: Option<Option<String>>,
    visited: bool,
    ignorecmd: bool,
    required: bool,
}

/// A failure of a load or removal: the errno kmod would return, and what kabi knows more
/// (the kernel's own words from its log, or why a prediction refused the module).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// A positive errno.
    pub errno: i32,
    pub detail: Option<String>,
    /// The prediction refused it (nothing was inserted).
    pub predicted: bool,
    /// Why, by the full prediction made after the kernel refused the module (one of its own,
    /// not predicted ahead, or one whose signature the prediction left to the kernel).
    pub why: Option<String>,
}

impl Failure {
    pub fn errno(errno: i32) -> Failure {
        Failure {
            errno,
            detail: None,
            predicted: false,
            why: None,
        }
    }

    /// Refused by the prediction (ENOEXEC), for `why`.
    pub fn predicted(why: String) -> Failure {
        Failure {
            errno: 8,
            detail: Some(why),
            predicted: true,
            why: None,
        }
    }
}

impl Options {
    /// Whether `path` names one of the running kernel's own modules (see `own_modules`):
    /// below that directory, by plain names (no `..`). Whether it is a link is the caller's
    /// to ask (a link there may lead anywhere).
    pub fn is_own(&self, path: &Path) -> bool {
        self.own_modules.as_deref().is_some_and(|d| {
            path.strip_prefix(d).is_ok_and(|rest| {
                rest.components().next().is_some()
                    && rest
                        .components()
                        .all(|c| matches!(c, std::path::Component::Normal(_)))
            })
        })
    }
}

/// The module directory, the configuration and the kernel: libkmod's context.
pub struct Loader<'k> {
    pub index: ModuleIndex,
    pub config: ModprobeConfig,
    pub kernel: &'k dyn KernelOps,
    pool: Vec<Mod>,
    keys: rustc_hash::FxHashMap<(String, Option<String>), ModId>,
    /// The prediction, made on first use (`kabi load` only).
    pub predictor: Option<Box<dyn predict::Predict + 'k>>,
}

const ENOENT: i32 = 2;
const EEXIST: i32 = 17;
const EINVAL: i32 = 22;

impl<'k> Loader<'k> {
    pub fn new(index: ModuleIndex, config: ModprobeConfig, kernel: &'k dyn KernelOps) -> Self {
        Loader {
            index,
            config,
            kernel,
            pool: Vec::new(),
            keys: Default::default(),
            predictor: None,
        }
    }

    pub fn module(&self, id: ModId) -> &Mod {
        &self.pool[id]
    }

    pub fn name(&self, id: ModId) -> &str {
        &self.pool[id].name
    }

    /// `kmod_module_new`: the pool's object for (name, alias).
    fn new_mod(&mut self, name: &str, alias: Option<&str>) -> ModId {
        let key = (name.to_string(), alias.map(str::to_string));
        if let Some(&id) = self.keys.get(&key) {
            return id;
        }
        let id = self.pool.len();
        self.pool.push(Mod {
            name: name.to_string(),
            alias: alias.map(str::to_string),
            ..Mod::default()
        });
        self.keys.insert(key, id);
        id
    }

    /// `kmod_module_new_from_name`.
    pub fn from_name(&mut self, name: &str) -> ModId {
        let n = kmod_modname(name);
        self.new_mod(&n, None)
    }

    /// `kmod_module_new_from_path`: the file must exist; its name comes from the path.
    pub fn from_path(&mut self, path: &str) -> Result<ModId, i32> {
        let abs = absolute(path);
        if let Err(e) = std::fs::metadata(&abs) {
            return Err(e.raw_os_error().unwrap_or(ENOENT));
        }
        let name = kmod_modname(path);
        if name.is_empty() {
            return Err(ENOENT);
        }
        let id = self.new_mod(&name, None);
        let m = &mut self.pool[id];
        match &m.path {
            None => m.path = Some(PathBuf::from(&abs)),
            Some(p) if *p == Path::new(&abs) => {}
            Some(_) => return Err(EEXIST),
        }
        m.builtin = Some(false);
        Ok(id)
    }

    /// `kmod_module_parse_depline`.
    fn parse_depline(&mut self, id: ModId, line: &str) {
        if self.pool[id].dep_init {
            return;
        }
        self.pool[id].dep_init = true;
        let Some((path, rest)) = line.split_once(':') else {
            return;
        };
        if self.pool[id].path.is_none() {
            self.pool[id].path = Some(self.index.join(path));
        }
        let mut deps = Vec::new();
        for d in rest.split([' ', '\t']).filter(|s| !s.is_empty()) {
            let p = self.index.join(d);
            match self.from_path(&p.to_string_lossy()) {
                Ok(dep) => deps.insert(0, dep),
                Err(_) => {
                    // kmod drops the whole list when a dependency is missing
                    self.pool[id].dep_init = false;
                    return;
                }
            }
        }
        self.pool[id].deps = deps;
    }

    fn ensure_deps(&mut self, id: ModId) {
        if !self.pool[id].dep_init
            && let Some(line) = self.index.dep_line(&self.pool[id].name.clone())
        {
            self.parse_depline(id, &line);
        }
    }

    /// `kmod_module_get_path`.
    pub fn path(&mut self, id: ModId) -> Option<PathBuf> {
        if self.pool[id].path.is_none() && !self.pool[id].dep_init {
            self.ensure_deps(id);
        }
        self.pool[id].path.clone()
    }

    /// `kmod_module_get_dependencies` (deepest first).
    pub fn deps(&mut self, id: ModId) -> Vec<ModId> {
        self.ensure_deps(id);
        self.pool[id].deps.clone()
    }

    /// `kmod_module_is_builtin`.
    pub fn is_builtin(&mut self, id: ModId) -> bool {
        if let Some(b) = self.pool[id].builtin {
            return b;
        }
        let b = self.index.is_builtin(&self.pool[id].name);
        self.pool[id].builtin = Some(b);
        b
    }

    /// `kmod_module_get_initstate`: `None` when built in.
    pub fn initstate(&mut self, id: ModId) -> Option<InitState> {
        if self.is_builtin(id) {
            return None;
        }
        Some(self.kernel.initstate(&self.pool[id].name))
    }

    /// `module_is_inkernel`: live or built in.
    pub fn in_kernel(&mut self, id: ModId) -> bool {
        matches!(self.initstate(id), None | Some(InitState::Live))
    }

    /// `kmod_module_get_install_commands`.
    pub fn install_command(&mut self, id: ModId) -> Option<String> {
        if let Some(c) = &self.pool[id].install {
            return c.clone();
        }
        let c = self
            .config
            .install_command(&self.pool[id].name)
            .map(str::to_string);
        self.pool[id].install = Some(c.clone());
        c
    }

    /// `kmod_module_get_remove_commands`.
    pub fn remove_command(&mut self, id: ModId) -> Option<String> {
        if let Some(c) = &self.pool[id].remove {
            return c.clone();
        }
        let c = self
            .config
            .remove_command(&self.pool[id].name)
            .map(str::to_string);
        self.pool[id].remove = Some(c.clone());
        c
    }

    /// `kmod_module_get_options`.
    pub fn options(&self, id: ModId) -> Option<String> {
        let m = &self.pool[id];
        self.config.options_of(&m.name, m.alias.as_deref())
    }

    pub fn is_blacklisted(&self, id: ModId) -> bool {
        self.config.is_blacklisted(&self.pool[id].name)
    }

    /// `kmod_module_new_from_lookup`: what a name or alias means, in kmod's order: a
    /// modprobe.d alias, a module name, `symbol:`, a name with an install or remove
    /// command, an index alias, a built-in module, a built-in alias. `Err(errno)` for an
    /// alias kmod refuses (an unmatched bracket).
    pub fn lookup(&mut self, given: &str) -> Result<Vec<ModId>, i32> {
        let alias = alias_normalize(given).ok_or(EINVAL)?;
        // modprobe.d aliases (fnmatch of the configured pattern)
        let from_config: Vec<(String, String)> = self
            .config
            .aliases
            .iter()
            .filter(|(pat, _)| crate::glob::fnmatch(pat.as_bytes(), alias.as_bytes()))
            .cloned()
            .collect();
        if !from_config.is_empty() {
            return Ok(from_config
                .iter()
                .map(|(pat, m)| self.new_mod(m, Some(pat)))
                .collect());
        }
        // a module name
        if !alias.contains(':')
            && let Some(line) = self.index.dep_line(&alias)
        {
            let id = self.from_name(&alias);
            self.parse_depline(id, &line);
            return Ok(vec![id]);
        }
        if alias.starts_with("symbol:") {
            let hits = self.index.symbols(&alias).unwrap_or_default();
            if !hits.is_empty() {
                return Ok(hits.iter().map(|m| self.new_mod(m, Some(&alias))).collect());
            }
        }
        // a name with an install (else remove) command
        if let Some((m, c)) = self.config.install.iter().find(|(m, _)| *m == alias) {
            let (m, c) = (m.clone(), c.clone());
            let id = self.from_name(&m);
            self.pool[id].install = Some(Some(c));
            return Ok(vec![id]);
        }
        if let Some((m, c)) = self.config.remove.iter().find(|(m, _)| *m == alias) {
            let (m, c) = (m.clone(), c.clone());
            let id = self.from_name(&m);
            self.pool[id].remove = Some(Some(c));
            return Ok(vec![id]);
        }
        let hits = self.index.aliases(&alias).unwrap_or_default();
        if !hits.is_empty() {
            return Ok(hits.iter().map(|m| self.new_mod(m, Some(&alias))).collect());
        }
        if self.index.is_builtin(&alias) {
            let id = self.from_name(&alias);
            self.pool[id].builtin = Some(true);
            return Ok(vec![id]);
        }
        let hits = self.index.builtin_aliases(&alias).unwrap_or_default();
        Ok(hits
            .iter()
            .map(|m| {
                let id = self.new_mod(m, Some(&alias));
                self.pool[id].builtin = Some(true);
                id
            })
            .collect())
    }

    /// A module's soft dependencies, resolved (`kmod_module_get_softdeps`): the first
    /// matching `softdep` line, each name looked up.
    pub fn softdeps(&mut self, id: ModId, sink: Sink) -> (Vec<ModId>, Vec<ModId>) {
        let Some(sd) = self.config.softdep(&self.pool[id].name).cloned() else {
            return (Vec::new(), Vec::new());
        };
        let mut resolve = |names: &[String], this: &mut Self| {
            let mut out = Vec::new();
            for n in names {
                match this.lookup(n) {
                    Ok(v) => out.extend(v),
                    Err(_) => sink(Event::Lib(
                        Level::Err,
                        "libkmod-module.c:1567 lookup_softdep",
                        format!("failed to lookup soft dependency '{n}', continuing anyway.\n"),
                    )),
                }
            }
            out
        };
        let pre = resolve(&sd.pre, self);
        let post = resolve(&sd.post, self);
        (pre, post)
    }

    /// `kmod_module_get_probe_list`: the modules to load for `id`, in order.
    pub fn probe_list(&mut self, id: ModId, ignorecmd: bool, sink: Sink) -> Vec<ModId> {
        for m in &mut self.pool {
            m.visited = false;
            m.required = false;
        }
        let mut list = Vec::new();
        self.get_probe_list(id, true, ignorecmd, &mut list, sink, 0);
        list
    }

    fn get_probe_list(
        &mut self,
        id: ModId,
        required: bool,
        ignorecmd: bool,
        list: &mut Vec<ModId>,
        sink: Sink,
        depth: usize,
    ) {
        if self.pool[id].visited || depth > 256 {
            return;
        }
        self.pool[id].visited = true;
        let deps = self.deps(id);
        if required {
            self.pool[id].required = true;
            for &d in &deps {
                self.pool[d].required = true;
            }
        }
        for &d in &deps {
            self.fill_softdep(d, list, sink, depth);
        }
        if ignorecmd {
            list.push(id);
            self.pool[id].ignorecmd = true;
        } else {
            self.fill_softdep(id, list, sink, depth);
        }
    }

    fn fill_softdep(&mut self, id: ModId, list: &mut Vec<ModId>, sink: Sink, depth: usize) {
        let (pre, post) = self.softdeps(id, sink);
        for m in &pre {
            self.get_probe_list(*m, false, false, list, sink, depth + 1);
        }
        list.push(id);
        self.pool[id].ignorecmd = !pre.is_empty() || !post.is_empty();
        for m in &post {
            self.get_probe_list(*m, false, false, list, sink, depth + 1);
        }
    }

    pub fn ignorecmd(&self, id: ModId) -> bool {
        self.pool[id].ignorecmd
    }

    pub fn required(&self, id: ModId) -> bool {
        self.pool[id].required
    }

    /// The names the devices ask for (`/sys/devices/**/modalias`), resolved.
    pub fn coldplug_names(&mut self) -> Vec<String> {
        let mut names = Vec::new();
        for a in self.kernel.modaliases() {
            for id in self.lookup(&a).unwrap_or_default() {
                let n = self.pool[id].name.clone();
                if !names.contains(&n) && !self.config.is_blacklisted(&n) {
                    names.push(n);
                }
            }
        }
        names
    }
}

/// kmod's `path_make_absolute_cwd`: the working directory prefixed, nothing normalized.
pub fn absolute(path: &str) -> String {
    if path.starts_with('/') {
        return path.to_string();
    }
    match std::env::current_dir() {
        Ok(cwd) => format!("{}/{}", cwd.display(), path),
        Err(_) => path.to_string(),
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

/// `strerror`, as glibc words it.
pub fn strerror(errno: i32) -> String {
    crate::depmod::errno_text(&std::io::Error::from_raw_os_error(errno))
}

/// The errno's symbolic name.
pub fn errno_name(errno: i32) -> &'static str {
    match errno {
        1 => "EPERM",
        2 => "ENOENT",
        8 => "ENOEXEC",
        11 => "EAGAIN",
        12 => "ENOMEM",
        14 => "EFAULT",
        16 => "EBUSY",
        17 => "EEXIST",
        19 => "ENODEV",
        22 => "EINVAL",
        38 => "ENOSYS",
        74 => "EBADMSG",
        95 => "EOPNOTSUPP",
        129 => "EKEYREJECTED",
        _ => "errno",
    }
}
