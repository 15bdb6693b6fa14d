//! `kabi modversions`: the `__versions` dump of `modprobe --dump-modversions`, or with
//! `--exports` the module's own exports in Module.symvers format.

use super::info::{absolute, resolve};
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
    /// Use DIR as filesystem root for /lib/modules
    #[arg(short = 'b', long = "basedir", value_name = "DIR")]
    pub basedir: Option<String>,
    /// Module files or names
    #[arg(required = true, value_name = "MODULE")]
    pub modules: Vec<String>,
}

/// `0x%08lx\t%s\n` per entry, as kmod prints it (the full stored `unsigned long`).
pub fn render_versions(m: &Module) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    match &m.versions {
        Versions::Absent => {}
        Versions::Present { entries, .. } => {
            for e in entries {
                out.extend_from_slice(format!("0x{:08x}\t{}\n", e.crc, e.name).as_bytes());
            }
        }
        Versions::Malformed { reason } => return Err(reason.clone()),
    }
    Ok(out)
}

/// `crc\tsymbol\tmodule\texport type\tnamespace\n`, as Module.symvers lines.
pub fn render_exports(m: &Module, owner: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for e in &m.exports {
        out.extend_from_slice(
            format!(
                "0x{:08x}\t{}\t{}\t{}\t{}\n",
                e.crc.unwrap_or(0),
                e.name,
                owner,
                e.kind.as_str(),
                e.namespace
            )
            .as_bytes(),
        );
    }
    out
}

/// The owner column Module.symvers would have: the path below `lib/modules/<kver>/<top>/`
/// without the `.ko[.ext]` suffix (`drivers/cdrom/cdrom`), else the bare module file stem.
pub fn symvers_owner(path: &Path) -> String {
    let s = path.to_string_lossy();
    let stem = |p: &str| crate::module::strip_module_ext(p).unwrap_or(p).to_string();
    if let Some(i) = s.find("/lib/modules/") {
        let rest = &s[i + "/lib/modules/".len()..];
        // skip <kver>/<top>/
        let mut parts = rest.splitn(3, '/');
        if let (Some(_kver), Some(_top), Some(rel)) = (parts.next(), parts.next(), parts.next()) {
            return stem(rel);
        }
    }
    stem(
        &path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default(),
    )
}

pub fn run(args: &ModversionsArgs) -> i32 {
    let dir = super::module_dir(args.basedir.as_deref(), args.kver.as_deref());
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
            return 1;
        }
    }
    i32::from(failed)
}
