//! kabi: Linux kernel-module ABI compatibility.
//!
//! Parsing and analysis never touch the system; only the command layer does.
//!
//! The layers, bottom up (`scripts/import-graph.py` prints who uses whom):
//! * formats, pure functions over bytes: [`compress`], [`glob`], [`index`] (kmod's binary
//!   indexes), [`module`] (a `.ko`: ELF, `.modinfo`, `__versions`, exports, signature
//!   trailer), [`sig`] (PKCS#7, X.509, keyrings), [`rpmdb`], [`stablelist`];
//! * the filesystem below a root: [`root`] (every path resolved inside it), [`tree`] (a
//!   `lib/modules/<kver>` directory: walk, depmod.d, lookups, indexes);
//! * a kernel's ABI and the loader's rules: [`kernel`] ([`Target`]: one kernel as its loader
//!   sees it), [`mod@check`] (will this module load on it, and why not);
//! * what kabi does with them: [`depmod`] (kmod's indexes), [`weak`] (weak-updates),
//!   [`load`] (modprobe), [`verify`] (a host before boot);
//! * [`cli`]: the commands, their options and exit codes ([`cli::exit`]).
//!
//! The modules that only serve others (the bzImage decoder, crash-injection points, error
//! helpers, the commands' internals) are private to the crate; their few public types are
//! re-exported where they are used.

pub(crate) mod bzimage;
pub mod check;
pub mod cli;
pub mod compress;
pub(crate) mod crash;
pub mod depmod;
pub mod errno;
pub(crate) mod error;
pub mod glob;
pub mod index;
pub mod kernel;
pub mod load;
pub mod module;
pub mod phase;
pub mod report;
pub mod root;
pub mod rpmdb;
pub mod sig;
pub mod stablelist;
pub mod tree;
pub mod verify;
pub mod weak;

pub use check::{Verdict, check, check_set};
pub use error::{Error, ParseError};
pub use kernel::abi::KernelAbi;
pub use kernel::source::{KernelSpec, resolve};
pub use kernel::target::Target;
pub use module::Module;
pub use root::Root;
pub use sig::SigPolicy;

/// For a unit test that needs root (a mount namespace, files believed only when root's):
/// `false`, and the test returns, when not root; with `CI=true` not being root fails it.
#[cfg(test)]
pub(crate) fn test_is_root() -> bool {
    let root = rustix::process::geteuid().is_root();
    assert!(
        root || std::env::var("CI").as_deref() != Ok("true"),
        "run as root (CI=true)"
    );
    root
}
