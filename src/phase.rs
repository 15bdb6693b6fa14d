//! Where one `kabi load` spends its time, for the guest bench (`tests/qemu_phases.rs`, built
//! with `--features phase-probe`): marks at the boundaries of its phases, printed to standard
//! error at exit as `PHASE NAME MICROSECONDS` (the time since the previous mark), then
//! `PHASE total MICROSECONDS`, when `KABI_PHASES` is set. Without the feature a mark is
//! nothing: the shipped binary carries neither the marks nor the clock reads.

/// The boundary named `name` is reached (the first mark is `main`).
#[cfg(feature = "phase-probe")]
pub fn mark(name: &'static str) {
    if let Ok(mut m) = imp::MARKS.lock() {
        m.push((name, std::time::Instant::now()));
    }
}

#[cfg(not(feature = "phase-probe"))]
#[inline(always)]
pub fn mark(_name: &'static str) {}

/// Print the marks (when `KABI_PHASES` is set).
#[cfg(feature = "phase-probe")]
pub fn dump() {
    if std::env::var_os("KABI_PHASES").is_none() {
        return;
    }
    let m = imp::MARKS.lock().unwrap_or_else(|e| e.into_inner());
    let Some(&(_, t0)) = m.first() else { return };
    eprint!("{}", imp::render(&m, t0));
}

#[cfg(not(feature = "phase-probe"))]
#[inline(always)]
pub fn dump() {}

#[cfg(feature = "phase-probe")]
mod imp {
    use std::time::Instant;

    pub static MARKS: std::sync::Mutex<Vec<(&str, Instant)>> = std::sync::Mutex::new(Vec::new());

    pub fn render(marks: &[(&str, Instant)], t0: Instant) -> String {
        let mut s = String::new();
        let mut prev = t0;
        for (n, t) in marks {
            s += &format!("PHASE {n} {}\n", t.duration_since(prev).as_micros());
            prev = *t;
        }
        s + &format!("PHASE total {}\n", prev.duration_since(t0).as_micros())
    }
}
