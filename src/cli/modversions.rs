//! `kabi modversions`: the `__versions` dump of `modprobe --dump-modversions`, or with
//! `--exports` the module's own exports in Module.symvers format.

use super::exit;
use super::info::{absolute, resolve};
use crate::module::show::{kmod_symbols, render_exports, render_versions, symvers_owner};
use crate::module::{Detail, Module, Versions};
use crate::tree::lookup::Found;
use std::io::Write;
use std::path::Path;

#[derive(Debug, Clone, clap::Args)]
pub struct ModversionsArgs {
    /// List the module's own exports, with CRCs, in Module.symvers format
    #[arg(long)]
    pub exports: bool,
    /// Use VERSION instead of `uname -r` to look names up
    #[arg(short = 'k', long = "set-version", value_name = "VERSION")]
    pub kver: Option<String>,
    /// Use DIR as filesystem root for /lib/modules (-b DIR and --basedir DIR, the old
    /// spellings, are accepted too)
    #[arg(long, short_alias = 'b', alias = "basedir", value_name = "DIR")]
    pub root: Option<String>,
    /// Module files or names
    #[arg(required = true, value_name = "MODULE")]
    pub modules: Vec<String>,
}

pub fn run(args: &ModversionsArgs) -> i32 {
    let dir = super::module_dir(args.root.as_deref(), args.kver.as_deref());
    let mut failed = false;
    let stdout = std::io::stdout();
    for arg in &args.modules {
        let path = if Path::new(arg).is_file() {
            absolute(arg).into()
        } else {
            match resolve(arg, &dir, false) {
                Ok(found) => match found.into_iter().next() {
                    Some(Found::File { path, .. }) => path,
                    _ => {
                        eprintln!("kabi modversions: ERROR: {arg} is built into the kernel");
                        failed = true;
                        continue;
                    }
                },
                Err(msg) => {
                    eprintln!("kabi modversions: ERROR: {msg}");
                    failed = true;
                    continue;
                }
            }
        };
        let detail = if args.exports {
            Detail::Full
        } else {
            Detail::Sections
        };
        let m = match Module::open_with(&path, detail) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("kabi modversions: ERROR: {e}");
                failed = true;
                continue;
            }
        };
        let out = if args.exports {
            render_exports(&m, &symvers_owner(&path))
        } else {
            match render_versions(&m) {
                Ok(o) => o,
                Err(why) => {
                    eprintln!("kabi modversions: ERROR: could not get modversions of {arg}: {why}");
                    failed = true;
                    continue;
                }
            }
        };
        if stdout.lock().write_all(&out).is_err() {
            return exit::FAILED;
        }
    }
    exit::failed_if(failed)
}

/// `modprobe --dump-modversions FILE` / `--show-exports FILE`, in kmod's words (its
/// messages at modprobe's `LOG` level: fatal).
pub fn kmod_dump(file: &str, exports: bool, sink: crate::load::Sink) -> i32 {
    use crate::load::{Event, Level};
    let abs = crate::load::absolute(file);
    let data = match std::fs::metadata(&abs) {
        Ok(_) => match crate::load::index::read_index_file(Path::new(&abs)) {
            Some(d) => d,
            None => {
                sink(Event::Tool(
                    Level::Crit,
                    format!(
                        "could not get {} of {file}: {}\n",
                        if exports { "symbols" } else { "modversions" },
                        crate::load::strerror(22)
                    ),
                ));
                return exit::KMOD_FAILURE;
            }
        },
        Err(_) => {
            sink(Event::Tool(
                Level::Crit,
                format!("Module {file} not found.\n"),
            ));
            return exit::KMOD_FAILURE;
        }
    };
    let what = if exports { "symbols" } else { "modversions" };
    let fail = |errno: i32, sink: crate::load::Sink| {
        sink(Event::Tool(
            Level::Crit,
            format!(
                "could not get {what} of {file}: {}\n",
                crate::load::strerror(errno)
            ),
        ));
        exit::KMOD_FAILURE
    };
    // kmod: an empty file cannot be mapped (EINVAL), anything else not ELF is ENOEXEC
    let bad = if data.is_empty() { 22 } else { 8 };
    let image = match crate::module::decompress(&data) {
        Ok(i) => i,
        Err(_) => return fail(bad, sink),
    };
    let out = if exports {
        match kmod_symbols(&image) {
            Ok(v) => v
                .iter()
                .map(|(n, c)| format!("0x{c:08x}\t{n}\n"))
                .collect::<String>(),
            Err(2) => return fail(2, sink),
            Err(_) => return fail(bad, sink),
        }
    } else {
        let m = match Module::parse_image_with(&image, Detail::Sections) {
            Ok(m) => m,
            Err(_) => return fail(bad, sink),
        };
        match &m.versions {
            Versions::Absent => return fail(2, sink),
            Versions::Malformed { .. } => return fail(22, sink),
            Versions::Present { .. } => {
                String::from_utf8_lossy(&render_versions(&m).unwrap_or_default()).into_owned()
            }
        }
    };
    sink(Event::Out(out));
    exit::OK
}
