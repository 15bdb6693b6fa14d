//! `/lib/modules/<kver>` as a whole.

pub mod config;
pub mod lookup;
