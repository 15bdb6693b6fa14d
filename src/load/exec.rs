//! The executor: what kmod 30's modprobe, insmod, rmmod and lsmod do with a plan, against
//! [`KernelOps`](super::kernel::KernelOps). Messages go out as [`Event`]s in kmod's words;
//! the command layer prints them.

use super::kernel::{InitState, Opened, REMOVE_FORCE, REMOVE_NOWAIT};
use super::schedule::{Schedule, Step};
use super::{EEXIST, EINVAL, ENOENT, Event, Failure, Level, Loader, ModId, Options, Sink};
use std::collections::HashMap;
use std::path::PathBuf;

const EBUSY: i32 = 16;
const EAGAIN: i32 = 11;

/// How a probe ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    Done,
    /// Already in the kernel (live or built in): nothing done.
    InKernel,
    /// Blacklisted: skipped silently, as kmod does.
    Blacklisted,
}

/// One module inserted by a parallel load, or why not.
pub type LoadResult = (String, Result<(), Failure>);

impl Loader<'_> {
    /// kmod's `module_options_concat`.
    fn concat_options(&self, id: ModId, extra: Option<&str>) -> String {
        let own = self.options(id);
        match (own, extra.filter(|e| !e.is_empty())) {
            (None, None) => String::new(),
            (Some(o), None) => format!("{o} "),
            (None, Some(x)) => x.to_string(),
            (Some(o), Some(x)) => format!("{o} {x}"),
        }
    }

    /// `kmod_module_probe_insert_module`: the probe list of `id` loaded in order. A
    /// dependency's failure stops the list; a soft dependency's is ignored; a module
    /// already in the kernel is skipped.
    pub fn probe_insert(
        &mut self,
        id: ModId,
        opts: &Options,
        extra: Option<&str>,
        sink: Sink,
    ) -> Result<Probe, Failure> {
        if !opts.ignore_loaded && self.in_kernel(id) {
            return if opts.first_time {
                Err(Failure::errno(EEXIST))
            } else {
                Ok(Probe::InKernel)
            };
        }
        if self.is_blacklisted(id) && (self.module(id).alias.is_some() || opts.use_blacklist) {
            return Ok(Probe::Blacklisted);
        }
        let list = self.probe_list(id, opts.ignore_commands, sink);
        let mut result: Result<Probe, Failure> = Ok(Probe::Done);
        for m in list {
            let r = self.probe_one(m, id, opts, extra, sink);
            // "already loaded" stops the probe only for the module asked for with
            // --first-time; a soft dependency's failure is ignored
            if let Err(f) = &r {
                if f.errno == EEXIST && m == id && opts.first_time {
                    result = r.map(|_| Probe::Done);
                    break;
                }
                if f.errno == EEXIST || !self.required(m) {
                    result = Ok(Probe::Done);
                    continue;
                }
                result = r.map(|_| Probe::Done);
                break;
            }
            result = Ok(Probe::Done);
        }
        result
    }

    /// One module of a probe list.
    fn probe_one(
        &mut self,
        m: ModId,
        asked: ModId,
        opts: &Options,
        extra: Option<&str>,
        sink: Sink,
    ) -> Result<(), Failure> {
        if !opts.ignore_loaded && self.in_kernel(m) {
            return Err(Failure::errno(EEXIST));
        }
        let options = self.concat_options(m, if m == asked { extra } else { None });
        let cmd = self.install_command(m);
        match cmd {
            Some(cmd) if !self.ignorecmd(m) => {
                sink(Event::Show(format!("install {cmd} {options}\n")));
                if opts.dry_run {
                    return Ok(());
                }
                self.run_install(m, &cmd, &options, sink)
            }
            _ => {
                match self.path(m) {
                    Some(p) => sink(Event::Show(format!("insmod {} {options}\n", p.display()))),
                    None => {
                        if self.initstate(m).is_none() {
                            sink(Event::Show(format!("builtin {}\n", self.name(m))));
                        }
                    }
                }
                if opts.dry_run {
                    return Ok(());
                }
                self.insert(m, opts, &options, sink)
            }
        }
    }

    /// A module to insert that has no file (an alias to a name no index knows): kmod's
    /// error, `ENOENT`.
    fn no_file(&self, id: ModId, sink: Sink) -> Failure {
        sink(Event::Lib(
            Level::Err,
            "libkmod-module.c:895 kmod_module_insert_module",
            format!("could not find module by name='{}'\n", self.name(id)),
        ));
        Failure::errno(ENOENT)
    }

    /// `module_do_install_commands`: `$CMDLINE_OPTS` replaced by the options, the command
    /// run by the shell; a failure (or no shell to run it) refuses the module.
    fn run_install(
        &mut self,
        id: ModId,
        cmd: &str,
        options: &str,
        sink: Sink,
    ) -> Result<(), Failure> {
        let cmd = cmd.replace("$CMDLINE_OPTS", options);
        let name = self.name(id).to_string();
        // kabi's own messages (kmod's system() would report exit status 127)
        if !self.kernel.can_run_commands() {
            sink(Event::Tool(
                Level::Err,
                format!(
                    "Could not run install command '{cmd}' for module {name}: there is no shell (/bin/sh) to run it\n"
                ),
            ));
            return Err(Failure::errno(EINVAL));
        }
        match self.kernel.run_command(&cmd, &name) {
            Err(e) => {
                sink(Event::Tool(
                    Level::Err,
                    format!(
                        "Could not run install command '{cmd}' for module {name}: {}\n",
                        crate::depmod::errno_text(&e)
                    ),
                ));
                Err(Failure::errno(EINVAL))
            }
            Ok(0) => Ok(()),
            Ok(code) => {
                sink(Event::Lib(
                    Level::Err,
                    "libkmod-module.c:1047 command_do",
                    format!(
                        "Error running install command '{cmd}' for module {name}: retcode {code}\n"
                    ),
                ));
                Err(Failure::errno(EINVAL))
            }
        }
    }

    /// `kmod_module_insert_module`, preceded by kabi's prediction when asked for; after a
    /// failure, what the kernel logged about the module.
    pub fn insert(
        &mut self,
        id: ModId,
        opts: &Options,
        options: &str,
        sink: Sink,
    ) -> Result<(), Failure> {
        let Some(path) = self.path(id) else {
            return Err(self.no_file(id, sink));
        };
        // one lstat: whether the file is there to insert (kmod's check) and whether it is
        // a link (which may lead anywhere: never taken for one of the kernel's own modules)
        let (openable, link, meta) = openable(&path);
        let own = opts.is_own(&path) && !link;
        // a module predicted is opened once: the verdict is on the very file the kernel gets
        let mut opened = None;
        if opts.predict
            && !own
            && let Some(p) = self.predictor.as_mut()
        {
            let name = self.pool[id].name.as_str();
            opened = openable
                .as_ref()
                .ok()
                .and_then(|()| Opened::open(&path, meta.as_ref()).ok());
            let verdict = match &opened {
                Some(o) => p.admit_file(name, &path, &o.file, o.len),
                None => p.admit(name, &path),
            };
            if !opts.force {
                verdict.map_err(Failure::predicted)?;
                if let Some(f) = &opened {
                    unchanged_since_checked(f, &path)?;
                }
            }
        }
        let mut cursor = if opts.explain {
            self.kernel.log_cursor()
        } else {
            None
        };
        let mut flags = opts.insert_flags();
        if opts.force && opts.predict {
            flags |= super::kernel::IGNORE_MODVERSIONS | super::kernel::IGNORE_VERMAGIC;
        }
        crate::phase::mark("prepare");
        let inserted = openable.and_then(|()| match &opened {
            Some(o) => self
                .kernel
                .insert_file(&o.file, o.len, &path, options, flags),
            None => self.kernel.insert(&path, options, flags),
        });
        crate::phase::mark("insert");
        match inserted {
            Ok(()) => {
                if let Some(p) = self.predictor.as_mut() {
                    p.loaded(&path);
                }
                Ok(())
            }
            Err(e) => {
                let errno = e.raw_os_error().unwrap_or(EINVAL);
                sink(Event::Lib(
                    Level::Info,
                    "libkmod-module.c:949 kmod_module_insert_module",
                    format!(
                        "Failed to insert module '{}': {}\n",
                        path.display(),
                        super::strerror(errno)
                    ),
                ));
                let name = self.name(id).to_string();
                let said: Vec<String> = cursor
                    .as_mut()
                    .map(|c| c.read_new())
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|l| l.contains(&name))
                    .collect();
                // refused by the kernel's checks: the prediction says why (one of the kernel's
                // own modules, not predicted ahead; or one admitted with the signature's
                // arithmetic left to the kernel, see `Predict::explain`), of the very file
                // the kernel was given; not for a forced insert, which the kernel judges
                // otherwise (no vermagic, no symbol versions, the signature not looked at)
                let why = match (
                    opts.predict && !opts.force && refused_by_checks(errno),
                    self.predictor.as_mut(),
                ) {
                    (true, Some(p)) => {
                        p.explain(&name, &path, opened.as_ref().map(|o| (&o.file, o.len)))
                    }
                    _ => None,
                };
                drop(opened);
                Err(Failure {
                    errno,
                    detail: (!said.is_empty()).then(|| said.join("; ")),
                    predicted: false,
                    why,
                })
            }
        }
    }

    /// The modules a command-line query names, as kmod's modprobe takes it: a path (`/...`
    /// or `./...`) is that file; anything else a name or alias looked up in the indexes.
    /// Err: the message kmod prints.
    pub fn resolve(&mut self, query: &str) -> Result<Vec<ModId>, String> {
        if query.starts_with('/') || query.starts_with("./") {
            return self.from_path(query).map(|id| vec![id]).map_err(|e| {
                format!(
                    "Failed to get module from path {query}: {}\n",
                    super::strerror(e)
                )
            });
        }
        match self.lookup(query) {
            Ok(l) if !l.is_empty() => Ok(l),
            _ => Err(format!(
                "Module {query} not found in directory {}\n",
                self.index.dirname
            )),
        }
    }

    /// modprobe's `insmod()`: look the name up and probe each module it means; the result
    /// (true: success) is the last module's, as kmod's. Nothing found is a failure (after
    /// kmod's message).
    pub fn modprobe(
        &mut self,
        query: &str,
        extra: Option<&str>,
        opts: &Options,
        sink: Sink,
    ) -> bool {
        let list = match self.resolve(query) {
            Ok(l) => l,
            Err(message) => {
                sink(Event::Tool(opts.log_level(), message));
                return false;
            }
        };
        let mut ok = true;
        for id in list {
            if opts.lookup_only {
                sink(Event::Out(format!("{}\n", self.name(id))));
                continue;
            }
            ok = match self.probe_insert(id, opts, extra, sink) {
                Ok(_) => true,
                Err(f) => {
                    let name = self.name(id).to_string();
                    sink(Event::Tool(Level::Err, insert_failure(&name, &f, opts)));
                    false
                }
            };
        }
        ok
    }

    /// modprobe `-r` of one name (`rmmod()` in modprobe.c).
    pub fn remove(&mut self, query: &str, opts: &Options, sink: Sink) -> Result<(), i32> {
        let list = self.lookup(query).map_err(|e| -e)?;
        if list.is_empty() {
            sink(Event::Tool(
                opts.log_level(),
                format!("Module {query} not found.\n"),
            ));
            return Err(-ENOENT);
        }
        for id in list {
            self.remove_module(id, opts.remove_holders, false, opts, sink, 0)?;
        }
        Ok(())
    }

    /// modprobe's `rmmod_do_module`: post soft dependencies, holders (with
    /// `--remove-holders`), the module (or its remove command), its dependencies that
    /// became unused, pre soft dependencies.
    fn remove_module(
        &mut self,
        id: ModId,
        holders_too: bool,
        ignore_builtin: bool,
        opts: &Options,
        sink: Sink,
        depth: usize,
    ) -> Result<(), i32> {
        if depth > 64 {
            return Ok(());
        }
        let name = self.name(id).to_string();
        let (mut pre, mut post, mut cmd) = (Vec::new(), Vec::new(), None);
        if !opts.ignore_commands {
            (pre, post) = self.softdeps(id, sink);
            cmd = self.remove_command(id);
        }
        if cmd.is_none() && !opts.ignore_loaded {
            match self.initstate(id) {
                Some(InitState::Absent(_)) => {
                    if opts.first_time {
                        sink(Event::Tool(
                            opts.log_level(),
                            format!("Module {name} is not in kernel.\n"),
                        ));
                        return Err(-ENOENT);
                    }
                    return Ok(());
                }
                None => {
                    if ignore_builtin {
                        return Ok(());
                    }
                    sink(Event::Tool(
                        opts.log_level(),
                        format!("Module {name} is builtin.\n"),
                    ));
                    return Err(-ENOENT);
                }
                _ => {}
            }
        }
        for &m in post.iter().rev() {
            let _ = self.remove_module(m, false, true, opts, sink, depth + 1);
        }
        if holders_too {
            match self.kernel.holders(&name) {
                Ok(hs) => {
                    let ids: Vec<ModId> = hs.iter().map(|h| self.from_name(h)).collect();
                    for &h in ids.iter().rev() {
                        self.remove_module(h, false, true, opts, sink, depth + 1)?;
                    }
                }
                Err(e) => sink(Event::Lib(
                    Level::Err,
                    "libkmod-module.c:1998 kmod_module_get_holders",
                    format!(
                        "could not open '/sys/module/{name}/holders': {}\n",
                        crate::depmod::errno_text(&e)
                    ),
                )),
            }
        }
        if cmd.is_none()
            && !opts.ignore_loaded
            && opts.wait_msec == 0
            && let Ok(n) = self.kernel.refcnt(&name)
            && n > 0
        {
            sink(Event::Tool(
                opts.log_level(),
                format!("Module {name} is in use.\n"),
            ));
            return Err(-EBUSY);
        }
        self.remove_itself(&name, cmd.as_deref(), opts, sink)?;
        if cmd.is_none() {
            for d in self.deps(id) {
                let dn = self.name(d).to_string();
                if self.kernel.refcnt(&dn).ok() == Some(0) {
                    let _ = self.remove_one(&dn, opts, sink);
                }
            }
        }
        for &m in pre.iter().rev() {
            let _ = self.remove_module(m, false, true, opts, sink, depth + 1);
        }
        Ok(())
    }

    /// The module itself: its remove command (run by the shell, `$CMDLINE_OPTS` empty) or
    /// `delete_module`.
    fn remove_itself(
        &mut self,
        name: &str,
        cmd: Option<&str>,
        opts: &Options,
        sink: Sink,
    ) -> Result<(), i32> {
        let Some(c) = cmd.map(|c| c.replace("$CMDLINE_OPTS", "")) else {
            return self.remove_one(name, opts, sink);
        };
        sink(Event::ShowNow(format!("remove {c}\n")));
        if opts.dry_run {
            return Ok(());
        }
        // system(3) as modprobe reads it: -1 when it could not run, else -WEXITSTATUS
        let err = match self.kernel.run_command(&c, name) {
            Ok(0) => return Ok(()),
            Ok(code) => -code,
            Err(_) => -1,
        };
        sink(Event::Tool(
            opts.log_level(),
            format!("Error running remove command for {name}\n"),
        ));
        Err(err)
    }

    /// modprobe's `rmmod_do_remove_module`: `delete_module`, waiting (with `-w`) while the
    /// module is busy.
    fn remove_one(&mut self, name: &str, opts: &Options, sink: Sink) -> Result<(), i32> {
        sink(Event::ShowNow(format!("rmmod {name}\n")));
        if opts.dry_run {
            return Ok(());
        }
        let mut flags = REMOVE_NOWAIT;
        if opts.force_remove {
            flags |= REMOVE_FORCE;
        }
        let start = std::time::Instant::now();
        let mut interval = 1u64;
        loop {
            match self.kernel.delete(name, flags) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    let errno = e.raw_os_error().unwrap_or(EINVAL);
                    if opts.wait_msec == 0 {
                        sink(Event::Lib(
                            Level::Err,
                            "libkmod-module.c:856 kmod_module_remove_module",
                            format!("could not remove '{name}': {}\n", super::strerror(errno)),
                        ));
                    }
                    if errno == EEXIST {
                        if !opts.first_time {
                            return Ok(());
                        }
                        sink(Event::Tool(
                            opts.log_level(),
                            format!("Module {name} is not in kernel.\n"),
                        ));
                        return Err(-errno);
                    }
                    let waited = start.elapsed().as_millis() as u64;
                    if errno == EAGAIN && opts.wait_msec > 0 && waited < opts.wait_msec {
                        let left = opts.wait_msec - waited;
                        std::thread::sleep(std::time::Duration::from_millis(interval.min(left)));
                        interval = (interval * 2).min(1000);
                        continue;
                    }
                    if opts.wait_msec > 0 {
                        sink(Event::Tool(
                            Level::Err,
                            format!("could not remove '{name}': {}\n", super::strerror(errno)),
                        ));
                    }
                    return Err(-errno);
                }
            }
        }
    }

    /// The rmmod tool: each argument (a file or a name) checked unless forced — built in,
    /// not loaded, held, in use — then removed. The number of failures.
    pub fn rmmod(&mut self, args: &[String], force: bool, sink: Sink) -> usize {
        let mut failed = 0;
        for arg in args {
            let id = if std::fs::metadata(arg).is_ok() {
                match self.from_path(arg) {
                    Ok(id) => id,
                    Err(e) => {
                        sink(Event::Tool(
                            Level::Err,
                            format!("could not use module {arg}: {}\n", super::strerror(e)),
                        ));
                        break;
                    }
                }
            } else {
                self.from_name(arg)
            };
            let name = self.name(id).to_string();
            if !force && let Err(()) = self.check_in_use(id, &name, sink) {
                failed += 1;
                continue;
            }
            let mut flags = REMOVE_NOWAIT;
            if force {
                flags |= REMOVE_FORCE;
            }
            if let Err(e) = self.kernel.delete(&name, flags) {
                let msg = crate::depmod::errno_text(&e);
                sink(Event::Lib(
                    Level::Err,
                    "libkmod-module.c:856 kmod_module_remove_module",
                    format!("could not remove '{name}': {msg}\n"),
                ));
                sink(Event::Tool(
                    Level::Err,
                    format!("could not remove module {arg}: {msg}\n"),
                ));
                failed += 1;
            }
        }
        failed
    }

    /// rmmod's `check_module_inuse`.
    fn check_in_use(&mut self, id: ModId, name: &str, sink: Sink) -> Result<(), ()> {
        match self.initstate(id) {
            None => {
                sink(Event::Tool(
                    Level::Err,
                    format!("Module {name} is builtin.\n"),
                ));
                return Err(());
            }
            Some(InitState::Absent(_)) => {
                sink(Event::Tool(
                    Level::Err,
                    format!("Module {name} is not currently loaded\n"),
                ));
                return Err(());
            }
            _ => {}
        }
        match self.kernel.holders(name) {
            Ok(h) if !h.is_empty() => {
                sink(Event::Tool(
                    Level::Err,
                    format!("Module {name} is in use by: {}\n", h.join(" ")),
                ));
                return Err(());
            }
            Ok(_) => {}
            Err(e) => sink(Event::Lib(
                Level::Err,
                "libkmod-module.c:1998 kmod_module_get_holders",
                format!(
                    "could not open '/sys/module/{name}/holders': {}\n",
                    crate::depmod::errno_text(&e)
                ),
            )),
        }
        match self.kernel.refcnt(name) {
            Ok(n) if n > 0 => {
                sink(Event::Tool(
                    Level::Err,
                    format!("Module {name} is in use\n"),
                ));
                Err(())
            }
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(ENOENT) => {
                sink(Event::Tool(
                    Level::Err,
                    "Module unloading is not supported\n".into(),
                ));
                Err(())
            }
            Err(_) => Err(()),
        }
    }

    /// Many modules at once with up to `jobs` threads (kabi's `-j`): each module's probe
    /// list as kmod builds it, every module inserted once, a module inserted as soon as the
    /// modules it depends on (among those being loaded) are in ([`super::schedule`]). This
    /// thread prepares the modules in probe order meanwhile (the prediction, which counts on
    /// the exports of the modules admitted before; install commands, run in their place once
    /// their dependencies are in), so that the prediction is off the inserts' path. A module
    /// whose dependency failed is not tried.
    pub fn load_parallel(
        &mut self,
        ids: &[ModId],
        opts: &Options,
        jobs: usize,
        sink: Sink,
    ) -> Vec<LoadResult> {
        // with --first-time, a module asked for that is in the kernel already is an error,
        // as in a serial load (it is not in the order: nothing of it is inserted)
        let mut out: Vec<LoadResult> = Vec::new();
        let first_time = opts.first_time && !opts.ignore_loaded;
        if first_time {
            for &id in ids {
                if self.in_kernel(id) && !out.iter().any(|(n, _)| n == self.name(id)) {
                    out.push((self.name(id).to_string(), Err(Failure::errno(EEXIST))));
                }
            }
        }
        let order = self.parallel_order(ids, opts, sink);
        let asked: Vec<bool> = order.iter().map(|(m, _)| ids.contains(m)).collect();
        let names: Vec<String> = order
            .iter()
            .map(|(m, _)| self.name(*m).to_string())
            .collect();
        let deps: Vec<Vec<usize>> = order.iter().map(|(_, d)| d.clone()).collect();
        let schedule = Schedule::new(&names, &deps);
        let kernel = self.kernel;
        let flags = opts.insert_flags();
        let mut paths: Vec<Option<PathBuf>> = vec![None; order.len()];
        std::thread::scope(|sc| {
            for _ in 0..jobs.max(1) {
                sc.spawn(|| {
                    schedule.work(&|p, file, o| {
                        let inserted = match file {
                            Some(f) => {
                                unchanged_since_checked(f, p)?;
                                kernel.insert_file(&f.file, f.len, p, o, flags)
                            }
                            None => kernel.insert(p, o, flags),
                        };
                        inserted.map_err(|e| Failure::errno(e.raw_os_error().unwrap_or(EINVAL)))
                    })
                });
            }
            // the workers stop once this is dropped, even if preparing panics
            let _close = CloseOnDrop(&schedule);
            for (i, (m, _)) in order.iter().enumerate() {
                let step = self.parallel_prepare(i, *m, opts, &schedule, sink);
                if let Step::Insert { path, .. } = &step {
                    paths[i] = Some(path.clone());
                }
                schedule.submit(i, step);
            }
        });
        let results = schedule.results();
        out.reserve(order.len());
        for ((((mut r, existed), name), path), asked) in
            results.into_iter().zip(names).zip(paths).zip(asked)
        {
            // loaded meanwhile by someone else: --first-time says so for a module asked for
            if existed && first_time && asked {
                r = Err(Failure::errno(EEXIST));
            }
            match (&mut r, path, self.predictor.as_mut()) {
                // in the kernel already: not this file, so not its exports for the snapshot
                (Ok(()), Some(_), Some(_)) if existed => {}
                (Ok(()), Some(path), Some(p)) => p.loaded(&path),
                // refused by the kernel's checks (not skipped for a failed dependency): the
                // prediction says why, as for one load
                (Err(f), Some(path), Some(p))
                    if opts.predict
                        && !opts.force
                        && !f.predicted
                        && refused_by_checks(f.errno)
                        && !f
                            .detail
                            .as_deref()
                            .is_some_and(|d| d.starts_with("its dependency ")) =>
                {
                    f.why = p.explain(&name, &path, None);
                }
                _ => {}
            }
            out.push((name, r));
        }
        out
    }

    /// The modules of a parallel load, once each in probe order (dependencies first), each
    /// with the positions of its dependencies among them.
    fn parallel_order(
        &mut self,
        ids: &[ModId],
        opts: &Options,
        sink: Sink,
    ) -> Vec<(ModId, Vec<usize>)> {
        let mut order: Vec<ModId> = Vec::new();
        for &id in ids {
            if !opts.ignore_loaded && self.in_kernel(id) {
                continue;
            }
            if self.is_blacklisted(id) && (self.module(id).alias.is_some() || opts.use_blacklist) {
                continue;
            }
            for m in self.probe_list(id, opts.ignore_commands, sink) {
                if !order.contains(&m) && !self.in_kernel(m) {
                    order.push(m);
                }
            }
        }
        let pos: HashMap<ModId, usize> = order.iter().enumerate().map(|(i, m)| (*m, i)).collect();
        let mut out = Vec::new();
        for (i, &m) in order.iter().enumerate() {
            // a dependency listed after its dependent (a cycle kmod would refuse) is not
            // waited for: that would never end
            let d: Vec<usize> = self
                .deps(m)
                .into_iter()
                .filter_map(|d| pos.get(&d).copied())
                .filter(|&j| j < i)
                .collect();
            out.push((m, d));
        }
        out
    }

    /// The `i`-th module of a parallel load: skipped (a dependency failed, built in), its
    /// install command run, refused by the prediction, or to be inserted.
    fn parallel_prepare(
        &mut self,
        i: usize,
        m: ModId,
        opts: &Options,
        schedule: &Schedule,
        sink: Sink,
    ) -> Step {
        let name = self.name(m).to_string();
        if let Some(d) = schedule.failed_dependency(i) {
            return Step::Done(Err(Failure {
                errno: ENOENT,
                detail: Some(format!("its dependency {d} failed to load")),
                predicted: false,
                why: None,
            }));
        }
        let options = self.concat_options(m, None);
        if let (Some(cmd), false) = (self.install_command(m), self.ignorecmd(m)) {
            sink(Event::Show(format!("install {cmd} {options}\n")));
            schedule.wait_for_dependencies(i);
            if let Some(d) = schedule.failed_dependency(i) {
                return Step::Done(Err(Failure {
                    errno: ENOENT,
                    detail: Some(format!("its dependency {d} failed to load")),
                    predicted: false,
                    why: None,
                }));
            }
            return Step::Done(self.run_install(m, &cmd, &options, sink));
        }
        // (a built-in module is in the kernel: never in the order)
        let Some(path) = self.path(m) else {
            return Step::Done(Err(self.no_file(m, sink)));
        };
        sink(Event::Show(format!(
            "insmod {} {options}\n",
            path.display()
        )));
        let mut file = None;
        if opts.predict
            && !opts.force
            && let Some(p) = self.predictor.as_mut()
        {
            // the kernel's own modules (not through a link) are not predicted ahead
            let (openable, link, meta) = openable(&path);
            if !opts.is_own(&path) || link {
                // opened once, as in a serial load: the verdict is on the file the kernel gets
                file = openable
                    .ok()
                    .and_then(|()| Opened::open(&path, meta.as_ref()).ok());
                let verdict = match &file {
                    Some(f) => p.admit_file(&name, &path, &f.file, f.len),
                    None => p.admit(&name, &path),
                };
                if let Err(why) = verdict {
                    return Step::Done(Err(Failure::predicted(why)));
                }
            }
            // the modules predicted after it may use its exports
            p.assume(&path);
        }
        Step::Insert {
            path,
            params: options,
            file,
        }
    }
}

/// Closes a schedule when dropped.
struct CloseOnDrop<'s, 'a>(&'s Schedule<'a>);

impl Drop for CloseOnDrop<'_, '_> {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// modprobe's `insmod_insert` message for a failed probe (kabi adds the errno's name and
/// what the kernel logged with `opts.explain`, and says why a prediction refused it).
pub fn insert_failure(name: &str, f: &Failure, opts: &Options) -> String {
    if f.predicted && f.errno == EAGAIN {
        return format!(
            "could not insert '{name}': {}\n",
            f.detail.as_deref().unwrap_or("")
        );
    }
    if f.predicted {
        return format!(
            "could not insert '{name}': kabi check predicts the kernel will refuse it (use --force to try):\n{}\n",
            f.detail.as_deref().unwrap_or("")
        );
    }
    let base = match f.errno {
        EEXIST => format!("could not insert '{name}': Module already in kernel"),
        ENOENT => format!(
            "could not insert '{name}': Unknown symbol in module, or unknown parameter (see dmesg)"
        ),
        e => format!("could not insert '{name}': {}", super::strerror(e)),
    };
    if opts.explain {
        let mut s = format!("{base} ({})", super::errno_name(f.errno));
        if let Some(d) = &f.detail {
            s.push_str(&format!("; the kernel says: {d}"));
        }
        if let Some(w) = &f.why {
            s.push_str(&format!("; kabi check says why:\n{w}"));
        }
        return s + "\n";
    }
    base + "\n"
}

/// One line of lsmod: name, size, use count, holders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LsmodRow {
    pub name: String,
    pub size: i64,
    pub used: i64,
    pub holders: Vec<String>,
}

impl LsmodRow {
    /// `printf("%-19s %8ld  %d", ...)` then ` holder,holder`.
    pub fn render(&self) -> String {
        let mut s = format!("{:<19} {:>8}  {}", self.name, self.size, self.used);
        for (i, h) in self.holders.iter().enumerate() {
            s.push(if i == 0 { ' ' } else { ',' });
            s.push_str(h);
        }
        s.push('\n');
        s
    }
}

/// lsmod: the modules `/proc/modules` lists, with kmod's size, use count and holders.
pub fn lsmod(kernel: &dyn super::kernel::KernelOps) -> std::io::Result<Vec<LsmodRow>> {
    let names = kernel.loaded()?;
    Ok(names
        .into_iter()
        .map(|n| LsmodRow {
            size: kernel
                .size(&n)
                .unwrap_or_else(|e| -(e.raw_os_error().unwrap_or(ENOENT) as i64)),
            used: kernel
                .refcnt(&n)
                .unwrap_or_else(|e| -(e.raw_os_error().unwrap_or(ENOENT) as i64)),
            holders: kernel.holders(&n).unwrap_or_default(),
            name: n,
        })
        .collect())
}

/// The insmod tool: one file, its parameters, nothing resolved. kmod's messages.
pub fn insmod(
    kernel: &dyn super::kernel::KernelOps,
    file: &str,
    params: &str,
    force: bool,
    sink: Sink,
) -> bool {
    let abs = super::absolute(file);
    if let Err(e) = std::fs::metadata(&abs) {
        sink(Event::Tool(
            Level::Err,
            format!(
                "could not load module {file}: {}\n",
                super::strerror(e.raw_os_error().unwrap_or(ENOENT))
            ),
        ));
        return false;
    }
    let flags = if force {
        super::kernel::IGNORE_MODVERSIONS | super::kernel::IGNORE_VERMAGIC
    } else {
        0
    };
    match openable(std::path::Path::new(&abs))
        .0
        .and_then(|()| kernel.insert(std::path::Path::new(&abs), params, flags))
    {
        Ok(()) => true,
        Err(e) => {
            let errno = e.raw_os_error().unwrap_or(EINVAL);
            let why = match errno {
                8 => "Invalid module format".to_string(),
                2 => "Unknown symbol in module".to_string(),
                3 => "Module has wrong symbol version".to_string(),
                22 => "Invalid parameters".to_string(),
                _ => super::strerror(errno),
            };
            sink(Event::Tool(
                Level::Err,
                format!("could not insert module {file}: {why}\n"),
            ));
            false
        }
    }
}

/// What libkmod's `kmod_file_open` refuses before any system call: an empty file cannot be
/// mapped (`EINVAL`).
/// Whether `errno` from an insert can be one of the load checks the prediction makes
/// (vermagic and `struct module`: ENOEXEC; a symbol's version: EINVAL; an unknown symbol:
/// ENOENT; the signature: EKEYREJECTED, ENOKEY, EKEYEXPIRED, EBADMSG; lockdown: EPERM),
/// not a failure of the module's init or a module already there.
fn refused_by_checks(errno: i32) -> bool {
    matches!(errno, 1 | 2 | 8 | 22 | 74 | 126 | 127 | 129)
}

/// The file the prediction read was not rewritten in place since it was opened (a rename
/// over its path changes nothing: the kernel gets the descriptor). Otherwise the verdict is
/// on other bytes: refused, to be tried again.
fn unchanged_since_checked(o: &Opened, path: &std::path::Path) -> Result<(), Failure> {
    if o.unchanged() {
        return Ok(());
    }
    Err(Failure {
        errno: EAGAIN,
        detail: Some(format!(
            "{} changed while kabi checked it: not inserted (load it again)",
            path.display()
        )),
        predicted: true,
        why: None,
    })
}

/// kmod's check before an insert (an empty file is `EINVAL`), whether `path` is a symbolic
/// link, and what it leads to (links followed, for [`Opened::open`] not to ask again); one
/// `lstat` unless it is a link.
fn openable(path: &std::path::Path) -> (std::io::Result<()>, bool, Option<std::fs::Metadata>) {
    let mut meta = std::fs::symlink_metadata(path);
    let link = meta.as_ref().is_ok_and(|m| m.file_type().is_symlink());
    if link {
        meta = std::fs::metadata(path);
    }
    let r = match &meta {
        Ok(m) if m.is_file() && m.len() == 0 => Err(std::io::Error::from_raw_os_error(EINVAL)),
        _ => Ok(()),
    };
    (r, link, meta.ok())
}
