//! Where one `kabi load` spends its time, for the guest bench (`tests/qemu_phases.rs`, built
//! with `--cfg kabi_phases`): marks at the boundaries of its phases, printed to standard
//! error at exit as `PHASE NAME MICROSECONDS FAULTS` (the time and the page faults since the
//! previous mark; the first mark's faults are those since the process began), then
//! `PHASE total`, when `KABI_PHASES` is set. Without the cfg a mark is nothing: the
//! shipped binary carries neither the marks nor the clock reads. A cfg, not a cargo feature:
//! a feature changes the crate's hash and so every function's symbol name, and the phase
//! build would then not be laid out by `build/hot-functions.txt` as the shipped one is.
//! `weak-modules` (lock, recovery, state, plan, each kernel's transaction) and `depmod` (each
//! phase of its `-v` summary) mark theirs too, for measuring them on the host.

/// The boundary named `name` is reached (the first mark is `main`).
#[cfg(kabi_phases)]
pub fn mark(name: &'static str) {
    if let Ok(mut m) = imp::MARKS.lock() {
        m.push((name, std::time::Instant::now(), imp::faults()));
    }
}

#[cfg(not(kabi_phases))]
#[inline(always)]
pub fn mark(_name: &'static str) {}

/// Print the marks (when `KABI_PHASES` is set).
#[cfg(kabi_phases)]
pub fn dump() {
    if std::env::var_os("KABI_PHASES").is_none() {
        return;
    }
    let m = imp::MARKS.lock().unwrap_or_else(|e| e.into_inner());
    let Some(&(_, t0, _)) = m.first() else {
        return;
    };
    eprint!("{}", imp::render(&m, t0));
}

#[cfg(not(kabi_phases))]
#[inline(always)]
pub fn dump() {}

#[cfg(kabi_phases)]
mod imp {
    use std::time::Instant;

    /// Each mark: its name, when, and the page faults of the process until then.
    pub type Mark = (&'static str, Instant, u64);

    pub static MARKS: std::sync::Mutex<Vec<Mark>> = std::sync::Mutex::new(Vec::new());

    /// The process's page faults so far (minor and major).
    pub fn faults() -> u64 {
        let mut u = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: getrusage writes the struct it is given, which is zeroed and large enough
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, u.as_mut_ptr()) } != 0 {
            return 0;
        }
        // SAFETY: zeroed, then filled by the call that succeeded
        let u = unsafe { u.assume_init() };
        (u.ru_minflt + u.ru_majflt).try_into().unwrap_or(0)
    }

    /// `PHASE NAME MICROSECONDS FAULTS` per mark (the time and the page faults since the
    /// previous one), then the totals.
    pub fn render(marks: &[Mark], t0: Instant) -> String {
        let mut s = String::new();
        let (mut prev, mut pf) = (t0, 0);
        for (n, t, f) in marks {
            s += &format!(
                "PHASE {n} {} {}\n",
                t.duration_since(prev).as_micros(),
                f.saturating_sub(pf)
            );
            (prev, pf) = (*t, *f);
        }
        s + &format!(
            "PHASE total {} {}\n",
            prev.duration_since(t0).as_micros(),
            pf
        )
    }
}
