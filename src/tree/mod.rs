//! `/lib/modules/<kver>` as a whole.

pub mod config;
pub mod lookup;
pub mod walk;
