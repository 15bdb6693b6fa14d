//! A recording fake of [`KernelOps`]: a kernel in memory that loads what it is given (or
//! fails as told), keeps reference counts from dependencies, logs, and records every call,
//! so that the executor is tested without a kernel.

use super::kernel::{InitState, KernelOps, LogCursor};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// One call the executor made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Insert {
        name: String,
        params: String,
        flags: u32,
    },
    Delete {
        name: String,
        flags: u32,
    },
    Command {
        command: String,
        module: String,
    },
}

#[derive(Debug, Default)]
struct State {
    /// Loaded modules in load order, with their holders.
    loaded: Vec<String>,
    holders: BTreeMap<String, BTreeSet<String>>,
    /// Extra references (a module "in use" by something other than a module).
    pins: BTreeMap<String, i64>,
    builtin_dirs: BTreeSet<String>,
    log: Vec<String>,
    calls: Vec<Call>,
    /// The bytes of each module file the kernel was given, in insert order.
    files: Vec<Vec<u8>>,
}

/// The fake kernel. Module names come from the file name (`kernel/fs/udf.ko` is `udf`).
#[derive(Debug, Default, Clone)]
pub struct FakeKernel {
    state: Arc<Mutex<State>>,
    /// module name → its dependencies (holders are set on them when it loads).
    deps: BTreeMap<String, Vec<String>>,
    /// module name → errno its insert fails with (and a kernel log line).
    fail_insert: BTreeMap<String, (i32, String)>,
    /// module name → errno its delete fails with.
    fail_delete: BTreeMap<String, i32>,
    /// command → exit status (default 0).
    command_status: BTreeMap<String, i32>,
    /// No shell: commands cannot run.
    pub no_shell: bool,
    pub modaliases: Vec<String>,
}

fn name_of(path: &Path) -> String {
    crate::module::name_from_path(path)
}

impl FakeKernel {
    pub fn new() -> FakeKernel {
        FakeKernel::default()
    }

    /// `name` depends on `deps` (its load fails with ENOENT unless they are loaded, and it
    /// holds them while loaded).
    pub fn with_deps(mut self, name: &str, deps: &[&str]) -> Self {
        self.deps
            .insert(name.into(), deps.iter().map(|s| s.to_string()).collect());
        self
    }

    /// Inserting `name` fails with `errno`, and the kernel logs `message`.
    pub fn failing(mut self, name: &str, errno: i32, message: &str) -> Self {
        self.fail_insert
            .insert(name.into(), (errno, message.to_string()));
        self
    }

    /// Removing `name` fails with `errno`.
    pub fn failing_delete(mut self, name: &str, errno: i32) -> Self {
        self.fail_delete.insert(name.into(), errno);
        self
    }

    /// Running `command` exits with `status`.
    pub fn command_exits(mut self, command: &str, status: i32) -> Self {
        self.command_status.insert(command.into(), status);
        self
    }

    /// `name` is already loaded.
    pub fn preload(self, name: &str) -> Self {
        self.state.lock().unwrap().loaded.push(name.into());
        self
    }

    /// `name` is held by something outside the module graph (its refcount stays above 0).
    pub fn pin(self, name: &str) -> Self {
        *self
            .state
            .lock()
            .unwrap()
            .pins
            .entry(name.into())
            .or_default() += 1;
        self
    }

    /// `/sys/module/<name>` exists without `initstate` (a built-in with parameters).
    pub fn builtin_dir(self, name: &str) -> Self {
        self.state.lock().unwrap().builtin_dirs.insert(name.into());
        self
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    /// The names of the inserted modules, in order.
    pub fn inserted(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Insert { name, .. } => Some(name),
                _ => None,
            })
            .collect()
    }

    /// The bytes of each module file the kernel was given (read from the descriptor it got,
    /// else from the path), in insert order.
    pub fn inserted_bytes(&self) -> Vec<Vec<u8>> {
        self.state.lock().unwrap().files.clone()
    }

    fn insert_recorded(&self, path: &Path, params: &str, flags: u32) -> io::Result<()> {
        let name = name_of(path);
        let mut s = self.state.lock().unwrap();
        s.calls.push(Call::Insert {
            name: name.clone(),
            params: params.into(),
            flags,
        });
        if !path.is_file() {
            return Err(io::Error::from_raw_os_error(2));
        }
        if s.loaded.contains(&name) {
            return Err(io::Error::from_raw_os_error(17));
        }
        if let Some((errno, msg)) = self.fail_insert.get(&name) {
            s.log.push(msg.clone());
            return Err(io::Error::from_raw_os_error(*errno));
        }
        let deps = self.deps.get(&name).cloned().unwrap_or_default();
        if let Some(d) = deps.iter().find(|d| !s.loaded.contains(d)) {
            s.log
                .push(format!("{name}: Unknown symbol {d}_fn (err -2)"));
            return Err(io::Error::from_raw_os_error(2));
        }
        for d in deps {
            s.holders.entry(d).or_default().insert(name.clone());
        }
        s.loaded.push(name);
        Ok(())
    }

    /// Loaded modules, in load order.
    pub fn loaded_now(&self) -> Vec<String> {
        self.state.lock().unwrap().loaded.clone()
    }
}

impl KernelOps for FakeKernel {
    fn insert_file(
        &self,
        file: &std::fs::File,
        len: u64,
        path: &Path,
        params: &str,
        flags: u32,
    ) -> io::Result<()> {
        let mut data = vec![0u8; len as usize];
        let n = std::os::unix::fs::FileExt::read_at(file, &mut data, 0)?;
        data.truncate(n);
        self.state.lock().unwrap().files.push(data);
        self.insert_recorded(path, params, flags)
    }

    fn insert(&self, path: &Path, params: &str, flags: u32) -> io::Result<()> {
        if let Ok(data) = std::fs::read(path) {
            self.state.lock().unwrap().files.push(data);
        }
        self.insert_recorded(path, params, flags)
    }

    fn delete(&self, name: &str, flags: u32) -> io::Result<()> {
        let mut s = self.state.lock().unwrap();
        s.calls.push(Call::Delete {
            name: name.into(),
            flags,
        });
        if let Some(e) = self.fail_delete.get(name) {
            return Err(io::Error::from_raw_os_error(*e));
        }
        let Some(i) = s.loaded.iter().position(|n| n == name) else {
            return Err(io::Error::from_raw_os_error(2));
        };
        let busy = s.holders.get(name).is_some_and(|h| !h.is_empty())
            || s.pins.get(name).copied().unwrap_or(0) > 0;
        if busy && flags & super::kernel::REMOVE_FORCE == 0 {
            return Err(io::Error::from_raw_os_error(11));
        }
        s.loaded.remove(i);
        for h in s.holders.values_mut() {
            h.remove(name);
        }
        Ok(())
    }

    fn initstate(&self, name: &str) -> InitState {
        let s = self.state.lock().unwrap();
        if s.loaded.iter().any(|n| n == name) {
            InitState::Live
        } else if s.builtin_dirs.contains(name) {
            InitState::Coming
        } else {
            InitState::Absent(2)
        }
    }

    fn refcnt(&self, name: &str) -> io::Result<i64> {
        let s = self.state.lock().unwrap();
        if !s.loaded.iter().any(|n| n == name) {
            return Err(io::Error::from_raw_os_error(2));
        }
        Ok(s.holders.get(name).map_or(0, |h| h.len() as i64)
            + s.pins.get(name).copied().unwrap_or(0))
    }

    fn holders(&self, name: &str) -> io::Result<Vec<String>> {
        let s = self.state.lock().unwrap();
        if !s.loaded.iter().any(|n| n == name) {
            return Err(io::Error::from_raw_os_error(2));
        }
        Ok(s.holders
            .get(name)
            .map(|h| h.iter().cloned().collect())
            .unwrap_or_default())
    }

    fn loaded(&self) -> io::Result<Vec<String>> {
        // /proc/modules lists the newest first
        let mut v = self.state.lock().unwrap().loaded.clone();
        v.reverse();
        Ok(v)
    }

    fn size(&self, name: &str) -> io::Result<i64> {
        let s = self.state.lock().unwrap();
        if s.loaded.iter().any(|n| n == name) {
            Ok(4096 * (name.len() as i64))
        } else {
            Err(io::Error::from_raw_os_error(2))
        }
    }

    fn log_cursor(&self) -> Option<Box<dyn LogCursor + Send>> {
        let at = self.state.lock().unwrap().log.len();
        Some(Box::new(FakeLog {
            state: self.state.clone(),
            at,
        }))
    }

    fn run_command(&self, command: &str, module: &str) -> io::Result<i32> {
        let mut s = self.state.lock().unwrap();
        s.calls.push(Call::Command {
            command: command.into(),
            module: module.into(),
        });
        if self.no_shell {
            return Err(io::Error::from_raw_os_error(2));
        }
        Ok(self.command_status.get(command).copied().unwrap_or(0))
    }

    fn can_run_commands(&self) -> bool {
        !self.no_shell
    }

    fn modaliases(&self) -> Vec<String> {
        self.modaliases.clone()
    }
}

struct FakeLog {
    state: Arc<Mutex<State>>,
    at: usize,
}

impl LogCursor for FakeLog {
    fn read_new(&mut self) -> Vec<String> {
        let s = self.state.lock().unwrap();
        let new = s.log.get(self.at..).unwrap_or(&[]).to_vec();
        self.at = s.log.len();
        new
    }
}

/// A module file for tests that use the fake (which does not read it): a placeholder at
/// `dir/rel`.
pub fn touch_module(dir: &Path, rel: &str) -> PathBuf {
    let p = dir.join(rel);
    if let Some(parent) = p.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let _ = std::fs::write(&p, b"\x7fELF placeholder for the fake kernel\n");
    p
}
