//! `/lib/modules/<kver>` as a whole.

pub mod lookup;
