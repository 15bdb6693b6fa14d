//! `kabi modversions`: the `__versions` dump of `modprobe --dump-modversions`, or with
//! `--exports` the module's own exports in Module.symvers format.

use super::exit;
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
    /// Use DIR as filesystem root for /lib/modules (-b DIR and --basedir DIR, the old
    /// spellings, are accepted too)
    #[arg(long, short_alias = 'b', alias = "basedir", value_name = "DIR")]
    pub root: Option<String>,
    /// Module files or names
    #[arg(required = true, value_name = "MODULE")]
    pub modules: Vec<String>,
}

/// `0x%08lx\t%s\n` per entry, as kmod prints it (the full stored `unsigned long`). A
/// module without `__versions` is an error, as in kmod (`No such file or directory`).
pub fn render_versions(m: &Module) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    match &m.versions {
        Versions::Absent => return Err(crate::load::strerror(2)),
        Versions::Present { entries, .. } => {
            for e in entries {
                out.extend_from_slice(format!("0x{:08x}\t{}\n", e.crc, e.name).as_bytes());
            }
        }
        Versions::Malformed { .. } => return Err(crate::load::strerror(22)),
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

/// kmod's `kmod_elf_get_symbols`: the `__crc_` symbols of the symbol table in its order
/// with their CRCs (read from the section they point into, or absolute), else the names of
/// `__ksymtab_strings` with CRC 0.
pub fn kmod_symbols(image: &[u8]) -> Result<Vec<(String, u64)>, i32> {
    use object::elf::{SHN_ABS, SHN_UNDEF};
    let elf = crate::module::elf::ElfFile::parse(image, |_| false).map_err(|_| 8)?;
    let mut out = Vec::new();
    for s in &elf.symbols {
        let Some(name) = s.name.strip_prefix(b"__crc_") else {
            continue;
        };
        let crc = if s.shndx == SHN_ABS || s.shndx == SHN_UNDEF {
            s.value
        } else {
            elf.sections
                .get(s.shndx as usize)
                .filter(|sec| sec.size >= 4 && s.value <= sec.size - 4)
                .and_then(|sec| elf.read_uint(sec.data?, s.value, 4))
                .unwrap_or(u64::MAX)
        };
        out.push((String::from_utf8_lossy(name).into_owned(), crc));
    }
    if !out.is_empty() {
        return Ok(out);
    }
    let (_, strings) = elf.section_by_name("__ksymtab_strings").ok_or(2)?;
    let data = strings.data.unwrap_or(&[]);
    for w in data.split(|&b| b == 0) {
        if !w.is_empty() {
            out.push((String::from_utf8_lossy(w).into_owned(), 0));
        }
    }
    Ok(out)
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
