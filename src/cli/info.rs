//! `kabi info` / `modinfo`: kmod's `modinfo` output, byte for byte (kmod 30 tools/modinfo.c).

use super::exit;
use crate::module::show::{Shown, line, records, render};
use crate::module::{Detail, Module};
use crate::tree::lookup::{Found, ModuleDir};
use std::io::Write;

#[derive(Debug, Clone, clap::Args)]
pub struct InfoArgs {
    /// Print only 'author'
    #[arg(short = 'a', long, overrides_with_all = ["author", "description", "license", "parameters", "filename", "field"])]
    pub author: bool,
    /// Print only 'description'
    #[arg(short = 'd', long, overrides_with_all = ["author", "description", "license", "parameters", "filename", "field"])]
    pub description: bool,
    /// Print only 'license'
    #[arg(short = 'l', long, overrides_with_all = ["author", "description", "license", "parameters", "filename", "field"])]
    pub license: bool,
    /// Print only 'parm'
    #[arg(short = 'p', long, overrides_with_all = ["author", "description", "license", "parameters", "filename", "field"])]
    pub parameters: bool,
    /// Print only 'filename'
    #[arg(short = 'n', long, overrides_with_all = ["author", "description", "license", "parameters", "filename", "field"])]
    pub filename: bool,
    /// Use \0 instead of \n
    #[arg(short = '0', long)]
    pub null: bool,
    /// Handle argument as module name instead of alias or filename
    #[arg(short = 'm', long)]
    pub modname: bool,
    /// Print only provided FIELD
    #[arg(short = 'F', long, value_name = "FIELD", overrides_with_all = ["author", "description", "license", "parameters", "filename", "field"])]
    pub field: Option<String>,
    /// Use VERSION instead of `uname -r`
    #[arg(short = 'k', long = "set-version", value_name = "VERSION")]
    pub kver: Option<String>,
    /// Use DIR as filesystem root for /lib/modules (-b DIR and --basedir DIR, the old
    /// spellings, are accepted too)
    #[arg(long, short_alias = 'b', alias = "basedir", value_name = "DIR")]
    pub root: Option<String>,
    /// Print the facts as JSON (with imports, exports and undefined symbols)
    #[arg(long, conflicts_with_all = ["field", "null"])]
    pub json: bool,
    /// Module files, names or aliases
    #[arg(required = true, value_name = "MODULE")]
    pub modules: Vec<String>,
    /// The program name for messages (`modinfo` when invoked so; else `kabi info`).
    #[arg(skip)]
    pub prog: Option<String>,
}

impl InfoArgs {
    /// No option set (for the `modinfo` personality, which parses its own arguments).
    pub fn empty() -> InfoArgs {
        InfoArgs {
            author: false,
            description: false,
            license: false,
            parameters: false,
            filename: false,
            null: false,
            modname: false,
            field: None,
            kver: None,
            root: None,
            json: false,
            modules: Vec::new(),
            prog: None,
        }
    }

    /// `modinfo: ERROR: ` or `kabi info: ERROR: `.
    fn prefix(&self) -> String {
        format!("{}: ERROR: ", self.prog.as_deref().unwrap_or("kabi info"))
    }

    /// Under the kmod name: kmod's words only.
    fn kmod(&self) -> bool {
        self.prog.is_some()
    }

    /// The one field to print, from `-F` and its shorthands (they override each other: the
    /// last one given wins, as in kmod).
    fn field(&self) -> Option<&str> {
        if let Some(f) = &self.field {
            return Some(f);
        }
        [
            (self.author, "author"),
            (self.description, "description"),
            (self.license, "license"),
            (self.parameters, "parm"),
            (self.filename, "filename"),
        ]
        .into_iter()
        .find_map(|(on, f)| on.then_some(f))
    }
}

/// `modinfo`'s `is_module_filename`: an existing regular file with a module suffix.
fn is_module_filename(arg: &str) -> bool {
    crate::module::strip_module_ext(arg).is_some()
        && std::fs::metadata(arg).is_ok_and(|m| m.is_file())
}

/// kmod's `path_make_absolute_cwd`: prefix the working directory, no normalization.
pub fn absolute(arg: &str) -> String {
    if arg.starts_with('/') {
        return arg.to_string();
    }
    match std::env::current_dir() {
        Ok(cwd) => format!("{}/{}", cwd.display(), arg),
        Err(_) => arg.to_string(),
    }
}

/// Resolve the arguments as modinfo does: a module file path, else a name or alias.
pub fn resolve(arg: &str, dir: &ModuleDir, modname: bool) -> Result<Vec<Found>, String> {
    if !modname && is_module_filename(arg) {
        return Ok(vec![Found::File {
            name: String::new(),
            path: absolute(arg).into(),
        }]);
    }
    let found = if modname {
        dir.by_name(&crate::tree::lookup::normalize(arg))
            .map(|path| {
                vec![Found::File {
                    name: crate::tree::lookup::normalize(arg),
                    path,
                }]
            })
            .unwrap_or_default()
    } else {
        dir.lookup(arg)
    };
    if found.is_empty() {
        Err(if modname {
            format!("Module name {arg} not found.")
        } else {
            format!("Module {arg} not found.")
        })
    } else {
        Ok(found)
    }
}

/// The `strerror` kmod gives for a module it cannot read: missing (`ENOENT`), empty
/// (`EINVAL`: it cannot be mapped), anything else not a module (`ENOEXEC`).
fn kmod_errno_text(path: &std::path::Path) -> String {
    let errno = match std::fs::metadata(path) {
        Err(e) => e.raw_os_error().unwrap_or(2),
        Ok(m) if m.len() == 0 => 22,
        Ok(_) => 8,
    };
    crate::load::strerror(errno)
}

/// One argument's outcome, rendered (in parallel) and then printed in argument order.
enum Item {
    /// Output bytes (kmod's format), or a JSON value.
    Text(Vec<u8>),
    /// Output, then an error (kmod prints `filename:` before it finds the file missing).
    TextThenError(Vec<u8>, String),
    Json(serde_json::Value),
    Error(String),
}

fn show(f: &Found, arg: &str, dir: &ModuleDir, args: &InfoArgs) -> Item {
    let sep = if args.null { 0 } else { b'\n' };
    let shown = match f {
        Found::Builtin { name } => {
            let records = dir.builtin_modinfo(name);
            if args.json {
                return Item::Json(
                    serde_json::json!({ "filename": null, "builtin": name, "modinfo": records }),
                );
            }
            Shown {
                filename: None,
                name: name.clone(),
                records,
            }
        }
        Found::File { path, .. } => {
            let filename = path.to_string_lossy().into_owned();
            // the path is known from modules.dep without opening the file
            if args.field() == Some("filename") && !args.json {
                let mut out = filename.into_bytes();
                out.push(sep);
                return Item::Text(out);
            }
            // kmod's fields need no symbol table; --json shows everything
            let detail = if args.json {
                Detail::Full
            } else {
                Detail::Sections
            };
            match Module::open_with(path, detail) {
                Ok(m) if args.json => {
                    return Item::Json(
                        serde_json::json!({ "filename": path.to_string_lossy(), "module": m }),
                    );
                }
                Ok(m) => Shown {
                    filename: Some(path.to_string_lossy().into_owned()),
                    name: m.name.clone(),
                    records: records(&m),
                },
                Err(e) => {
                    let mut out = Vec::new();
                    if args.field().is_none() && !args.json {
                        line(&mut out, "filename:", filename.as_bytes(), sep);
                    }
                    let msg = if args.kmod() {
                        let name = crate::load::index::kmod_modname(&filename);
                        format!(
                            "could not get modinfo from '{name}': {}",
                            kmod_errno_text(path)
                        )
                    } else {
                        format!("could not get modinfo from '{arg}': {e}")
                    };
                    return Item::TextThenError(out, msg);
                }
            }
        }
    };
    let mut out = Vec::new();
    render(&shown, args.field(), sep, &mut out);
    Item::Text(out)
}

pub fn run(args: &InfoArgs) -> i32 {
    use rayon::prelude::*;
    let dir = super::module_dir(args.root.as_deref(), args.kver.as_deref());
    let mut work: Vec<(&str, Result<Found, String>)> = Vec::new();
    for arg in &args.modules {
        match resolve(arg, &dir, args.modname) {
            Ok(found) => work.extend(found.into_iter().map(|f| (arg.as_str(), Ok(f)))),
            Err(msg) => work.push((arg, Err(msg))),
        }
    }
    let items: Vec<Item> = work
        .par_iter()
        .map(|(arg, f)| match f {
            Ok(f) => show(f, arg, &dir, args),
            Err(msg) => Item::Error(msg.clone()),
        })
        .collect();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let mut failed = false;
    let mut json = Vec::new();
    for item in items {
        match item {
            Item::Text(t) => {
                if out.write_all(&t).is_err() {
                    return exit::FAILED;
                }
            }
            Item::Json(v) => json.push(v),
            Item::TextThenError(t, msg) => {
                if out.write_all(&t).is_err() {
                    return exit::FAILED;
                }
                let _ = out.flush();
                eprintln!("{}{msg}", args.prefix());
                failed = true;
            }
            Item::Error(msg) => {
                let _ = out.flush();
                eprintln!("{}{msg}", args.prefix());
                failed = true;
            }
        }
    }
    if args.json {
        let doc = crate::report::json_document(&serde_json::json!({ "modules": json }));
        let _ = write!(out, "{doc}");
    }
    if out.flush().is_err() {
        return exit::FAILED;
    }
    exit::failed_if(failed)
}
