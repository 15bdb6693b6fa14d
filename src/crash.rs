//! Fault injection for the tests of crash safety, compiled only with the cargo feature
//! `crash-injection` (the test suite turns it on; a shipped binary has no such hook).
//!
//! `KABI_CRASH_AT=N` aborts the process at the N-th crash point of the run, as a power cut
//! would; `KABI_CRASH_COUNT=FILE` writes the number of crash points a run passed to FILE.

#[cfg(feature = "crash-injection")]
pub fn point() {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNT: AtomicU64 = AtomicU64::new(0);
    static AT: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    let at = *AT.get_or_init(|| {
        std::env::var("KABI_CRASH_AT")
            .ok()
            .and_then(|v| v.parse().ok())
    });
    let n = COUNT.fetch_add(1, Ordering::SeqCst) + 1;
    if let Ok(f) = std::env::var("KABI_CRASH_COUNT") {
        let _ = std::fs::write(f, n.to_string());
    }
    if at == Some(n) {
        std::process::abort();
    }
}

/// Without the feature: nothing.
#[cfg(not(feature = "crash-injection"))]
#[inline(always)]
pub fn point() {}
