//! `/lib/modules/<kver>` as a whole.

pub mod config;
pub mod index;
pub mod lookup;
pub mod walk;
