//! kabi: Linux kernel-module ABI compatibility.
//!
//! Parsing and analysis never touch the system; only the command layer does.

pub mod bzimage;
pub mod check;
pub mod cli;
pub mod compress;
pub mod crash;
pub mod depmod;
pub mod error;
pub mod glob;
pub mod index;
pub mod kernel;
pub mod load;
pub mod module;
pub mod root;
pub mod rpmdb;
pub mod sig;
pub mod stablelist;
pub mod tree;
pub mod verify;
pub mod weak;

pub use error::{Error, ParseError};
pub use module::Module;
