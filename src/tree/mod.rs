//! `/lib/modules/<kver>` as a whole.

pub mod config;
pub mod index;
pub mod lookup;
pub(crate) mod walk;

/// A kernel release names one directory of `lib/modules`: never a path.
pub fn check_release(kver: &str) -> Result<(), String> {
    if kver.is_empty() || kver == "." || kver == ".." || kver.contains('/') || kver.contains('\0') {
        return Err(format!(
            "'{kver}' is not a kernel release (a directory name in lib/modules)"
        ));
    }
    Ok(())
}
