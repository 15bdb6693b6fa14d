//! What a kernel provides: its exported symbols, from whichever source is at hand.

pub mod abi;
pub(crate) mod diff;
pub mod headers;
pub mod kallsyms;
pub(crate) mod ksymtab;
pub(crate) mod source;
pub mod symvers;
pub mod target;
pub mod tree;
pub mod vmlinux;
