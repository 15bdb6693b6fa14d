//! The schedule of a parallel load (`kabi load -j N`): the modules of a load, each with the
//! modules it depends on among them, are inserted by `N` worker threads as soon as their
//! dependencies are in, while the thread that submits them goes on preparing the next ones
//! (its prediction, its install command). A dependency graph, not levels: a module waits
//! only for its own dependencies, never for a slow module elsewhere in its level.
//!
//! The rules are those of a serial load: a module whose dependency failed is not tried, it
//! fails with "its dependency X failed to load"; a module already in the kernel when its
//! insert comes (`EEXIST`: a soft dependency of two plans) is not an error.

use super::kernel::Opened;
use super::{EEXIST, EINVAL, ENOENT, Failure};
use std::path::PathBuf;
use std::sync::{Condvar, Mutex};

/// What the submitter decided for one module.
#[derive(Debug)]
pub enum Step {
    /// Insert this file with these parameters once the dependencies are in (`file`: the
    /// module as its prediction opened and read it, the descriptor the kernel gets).
    Insert {
        path: PathBuf,
        params: String,
        file: Option<Opened>,
    },
    /// Nothing to insert: done (built in, an install command that ran) or refused.
    Done(Result<(), Failure>),
}

#[derive(Debug)]
enum State {
    /// Not submitted yet.
    Waiting,
    /// Submitted, waiting for its dependencies.
    Ready {
        path: PathBuf,
        params: String,
        file: Option<Opened>,
    },
    /// A worker is inserting it.
    Running,
    Finished(Result<(), Failure>),
}

impl State {
    fn failed(&self) -> bool {
        matches!(self, State::Finished(Err(_)))
    }
    fn ok(&self) -> bool {
        matches!(self, State::Finished(Ok(())))
    }
}

struct Shared {
    states: Vec<State>,
    /// Found in the kernel at its insert (`EEXIST`): loaded, but not from this file.
    existed: Vec<bool>,
    /// No more submissions will come.
    closed: bool,
}

/// The shared state of one parallel load. `deps[i]` are indices below `i` (the modules are
/// given in probe order, dependencies first).
pub struct Schedule<'a> {
    names: &'a [String],
    deps: &'a [Vec<usize>],
    shared: Mutex<Shared>,
    changed: Condvar,
}

/// How a worker inserts one module: its path, the file its prediction opened, its parameters.
pub type Insert<'f> = dyn Fn(&std::path::Path, Option<&Opened>, &str) -> Result<(), Failure> + 'f;

/// The next thing a worker does.
enum Next {
    Insert(usize, PathBuf, String, Option<Opened>),
    Wait,
    Stop,
}

impl<'a> Schedule<'a> {
    pub fn new(names: &'a [String], deps: &'a [Vec<usize>]) -> Schedule<'a> {
        Schedule {
            names,
            deps,
            shared: Mutex::new(Shared {
                states: names.iter().map(|_| State::Waiting).collect(),
                existed: vec![false; names.len()],
                closed: false,
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether module `i` can no longer load: one of its dependencies failed (the first one
    /// that did, by name).
    pub fn failed_dependency(&self, i: usize) -> Option<String> {
        let s = self.lock();
        self.deps[i]
            .iter()
            .find(|&&d| s.states[d].failed())
            .map(|&d| self.names[d].clone())
    }

    /// Block until every dependency of `i` has finished (for an install command, which runs
    /// in its place on the submitting thread).
    pub fn wait_for_dependencies(&self, i: usize) {
        let mut s = self.lock();
        while self.deps[i]
            .iter()
            .any(|&d| !matches!(s.states[d], State::Finished(_)))
        {
            s = self.changed.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }

    pub fn submit(&self, i: usize, step: Step) {
        let mut s = self.lock();
        s.states[i] = match step {
            Step::Insert { path, params, file } => State::Ready { path, params, file },
            Step::Done(r) => State::Finished(r),
        };
        self.changed.notify_all();
    }

    /// No more submissions: workers stop when nothing is left to insert.
    pub fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }

    /// Pick a module whose dependencies are all in; fail those whose dependency failed (or,
    /// once submissions are closed, was never submitted: the submitter stopped early).
    fn next(&self, s: &mut Shared) -> Next {
        let mut pending = false;
        for i in 0..s.states.len() {
            match s.states[i] {
                State::Ready { .. } => {}
                State::Running => {
                    pending = true;
                    continue;
                }
                State::Waiting => {
                    pending |= !s.closed;
                    continue;
                }
                State::Finished(_) => continue,
            }
            let never = |d: usize| {
                s.states[d].failed() || (s.closed && matches!(s.states[d], State::Waiting))
            };
            if let Some(&d) = self.deps[i].iter().find(|&&d| never(d)) {
                let detail = format!("its dependency {} failed to load", self.names[d]);
                s.states[i] = State::Finished(Err(Failure {
                    errno: ENOENT,
                    detail: Some(detail),
                    predicted: false,
                    why: None,
                }));
                continue;
            }
            if self.deps[i].iter().all(|&d| s.states[d].ok()) {
                let State::Ready { path, params, file } =
                    std::mem::replace(&mut s.states[i], State::Running)
                else {
                    unreachable!("matched Ready above")
                };
                return Next::Insert(i, path, params, file);
            }
            pending = true;
        }
        if s.closed && !pending {
            Next::Stop
        } else {
            Next::Wait
        }
    }

    /// A worker: insert modules with `insert` until none is left.
    pub fn work(&self, insert: &Insert) {
        let mut s = self.lock();
        loop {
            match self.next(&mut s) {
                Next::Insert(i, path, params, file) => {
                    drop(s);
                    let r = insert(&path, file.as_ref(), &params);
                    let existed = matches!(&r, Err(f) if f.errno == EEXIST && !f.predicted);
                    let r = if existed { Ok(()) } else { r };
                    drop(file);
                    s = self.lock();
                    s.existed[i] = existed;
                    s.states[i] = State::Finished(r);
                    self.changed.notify_all();
                }
                Next::Wait => s = self.changed.wait(s).unwrap_or_else(|p| p.into_inner()),
                Next::Stop => {
                    // the others may be waiting for the last change
                    self.changed.notify_all();
                    return;
                }
            }
        }
    }

    /// Every module's outcome, in the order given (a module never submitted: `EINVAL`), and
    /// whether it was in the kernel already when its insert came: a success, but another
    /// file's (of the same name, loaded by someone else meanwhile) is what the kernel has.
    pub fn results(self) -> Vec<(Result<(), Failure>, bool)> {
        let s = self.shared.into_inner().unwrap_or_else(|p| p.into_inner());
        s.states
            .into_iter()
            .zip(s.existed)
            .map(|(st, existed)| match st {
                State::Finished(r) => (r, existed),
                _ => (Err(Failure::errno(EINVAL)), false),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("m{i}")).collect()
    }

    fn insert_step(i: usize) -> Step {
        Step::Insert {
            path: PathBuf::from(format!("m{i}.ko")),
            params: String::new(),
            file: None,
        }
    }

    /// Runs a schedule with `jobs` workers; `fails` names the modules whose insert fails.
    fn run(
        deps: &[Vec<usize>],
        jobs: usize,
        fails: &[&str],
    ) -> (Vec<Result<(), Failure>>, Vec<String>) {
        let n = names(deps.len());
        let order = Mutex::new(Vec::new());
        let s = Schedule::new(&n, deps);
        std::thread::scope(|sc| {
            for _ in 0..jobs {
                sc.spawn(|| {
                    s.work(&|p: &Path, _, _: &str| {
                        let name = p.file_stem().unwrap().to_string_lossy().into_owned();
                        order.lock().unwrap().push(name.clone());
                        if fails.contains(&name.as_str()) {
                            Err(Failure::errno(8))
                        } else {
                            Ok(())
                        }
                    })
                });
            }
            for i in 0..deps.len() {
                s.submit(i, insert_step(i));
            }
            s.close();
        });
        let r = s.results().into_iter().map(|(r, _)| r).collect();
        (r, order.into_inner().unwrap())
    }

    #[test]
    fn dependencies_first_and_each_once() {
        // m2 needs m0 and m1, m3 needs m2, m4 is independent
        let deps = vec![vec![], vec![], vec![0, 1], vec![2], vec![]];
        for jobs in [1, 2, 4] {
            let (r, order) = run(&deps, jobs, &[]);
            assert!(r.iter().all(Result::is_ok), "{r:?}");
            assert_eq!(order.len(), 5, "each inserted once: {order:?}");
            let pos = |n: &str| order.iter().position(|x| x == n).unwrap();
            assert!(pos("m0") < pos("m2") && pos("m1") < pos("m2") && pos("m2") < pos("m3"));
        }
    }

    #[test]
    fn a_failed_dependency_fails_its_dependents_untried() {
        let deps = vec![vec![], vec![0], vec![1], vec![]];
        let (r, order) = run(&deps, 2, &["m0"]);
        assert_eq!(r[0].as_ref().unwrap_err().errno, 8);
        for i in [1, 2] {
            let f = r[i].as_ref().unwrap_err();
            assert_eq!(f.errno, ENOENT);
            let want = format!("its dependency m{} failed to load", i - 1);
            assert_eq!(f.detail.as_deref(), Some(want.as_str()));
        }
        assert!(r[3].is_ok());
        assert!(!order.contains(&"m1".to_string()) && !order.contains(&"m2".to_string()));
    }

    #[test]
    fn done_steps_count_as_dependencies_and_eexist_is_success() {
        let n = names(3);
        let deps = vec![vec![], vec![0], vec![]];
        let s = Schedule::new(&n, &deps);
        let calls = AtomicUsize::new(0);
        std::thread::scope(|sc| {
            sc.spawn(|| {
                s.work(&|_, _, _| {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Err(Failure::errno(EEXIST))
                })
            });
            // m0 needs no insert (built in): m1 may go
            s.submit(0, Step::Done(Ok(())));
            assert_eq!(s.failed_dependency(1), None);
            s.submit(1, insert_step(1));
            // m2 refused before its insert (a prediction)
            s.submit(2, Step::Done(Err(Failure::errno(8))));
            s.wait_for_dependencies(1);
            s.close();
        });
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let r = s.results();
        // m1 succeeded, but what the kernel has is not its file: said apart from m0's success
        assert!(r[0].0.is_ok() && r[1].0.is_ok());
        assert_eq!((r[0].1, r[1].1, r[2].1), (false, true, false));
        assert_eq!(r[2].0.as_ref().unwrap_err().errno, 8);
    }

    /// The submitter stops early (a panic while preparing closes the schedule): the workers
    /// end, and a module waiting for one never submitted fails instead of waiting forever.
    #[test]
    fn workers_end_when_the_submitter_stops_early() {
        let n = names(3);
        let deps = vec![vec![], vec![], vec![1]];
        let s = Schedule::new(&n, &deps);
        std::thread::scope(|sc| {
            for _ in 0..2 {
                sc.spawn(|| s.work(&|_, _, _| Ok(())));
            }
            s.submit(0, insert_step(0));
            s.submit(2, insert_step(2)); // its dependency m1 never comes
            s.close();
        });
        let r: Vec<_> = s.results().into_iter().map(|(r, _)| r).collect();
        assert!(r[0].is_ok());
        assert_eq!(r[1].as_ref().unwrap_err().errno, EINVAL);
        assert_eq!(r[2].as_ref().unwrap_err().errno, ENOENT);
    }

    #[test]
    fn workers_stop_when_nothing_was_submitted() {
        let (r, order) = run(&[], 3, &[]);
        assert!(r.is_empty() && order.is_empty());
    }
}
