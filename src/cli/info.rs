//! `kabi info` / `modinfo`: kmod's `modinfo` output, byte for byte (kmod 30 tools/modinfo.c).

use super::exit;
use crate::module::{Detail, ModinfoEntry, Module};
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

/// What `modinfo` shows for one module: its file (or `None` if built in), name and records.
pub struct Shown {
    pub filename: Option<String>,
    pub name: String,
    pub records: Vec<ModinfoEntry>,
}

/// kmod's list: `.modinfo` records, then the signature fields when kmod can read them.
pub fn records(m: &Module) -> Vec<ModinfoEntry> {
    let mut out = m.modinfo.clone();
    if let crate::module::Trailer::Signed(sig) = &m.signature
        && let Some(info) = sig.info()
    {
        let rec = |k: &str, v: Vec<u8>| ModinfoEntry {
            key: k.as_bytes().to_vec(),
            value: v,
        };
        out.push(rec("sig_id", info.id_type.as_bytes().to_vec()));
        out.push(rec("signer", info.signer));
        out.push(rec("sig_key", wrapped_hex(&info.key_id)));
        out.push(rec("sig_hashalgo", info.hash_algo.as_bytes().to_vec()));
        out.push(rec("signature", wrapped_hex(&info.signature)));
    }
    out
}

/// `AB:CD:...` with `\n\t\t` after every 20 bytes, as kmod prints keys and signatures.
pub fn wrapped_hex(b: &[u8]) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = Vec::with_capacity(b.len() * 3 + b.len() / 20 * 3);
    for (i, &x) in b.iter().enumerate() {
        s.push(HEX[(x >> 4) as usize]);
        s.push(HEX[(x & 15) as usize]);
        if i + 1 < b.len() {
            s.push(b':');
            if (i + 1) % 20 == 0 {
                s.extend_from_slice(b"\n\t\t");
            }
        }
    }
    s
}

/// Render one module exactly as kmod's `modinfo_do()`.
pub fn render(shown: &Shown, field: Option<&str>, sep: u8, out: &mut Vec<u8>) {
    let filename = shown.filename.as_deref().unwrap_or("(builtin)");
    if shown.filename.is_none() {
        match field {
            None => line(out, "name:", shown.name.as_bytes(), sep),
            Some("name") => value(out, shown.name.as_bytes(), sep),
            _ => {}
        }
    }
    match field {
        Some("filename") => return value(out, filename.as_bytes(), sep),
        None => line(out, "filename:", filename.as_bytes(), sep),
        _ => {}
    }
    if field == Some("parm") {
        for p in params(&shown.records) {
            value(out, &p.render_short(), sep);
        }
        return;
    }
    let mut parm_records = Vec::new();
    for r in &shown.records {
        if let Some(f) = field {
            if r.key == f.as_bytes() {
                value(out, &r.value, sep);
            }
            continue;
        }
        if r.key == b"parm" || r.key == b"parmtype" {
            parm_records.push(r.clone());
            continue;
        }
        if sep == 0 {
            out.extend_from_slice(&r.key);
            out.push(b'=');
            value(out, &r.value, sep);
            continue;
        }
        // printf("%s:%-*s%s%c", key, 15 - keylen, "", value): a negative width pads too
        out.extend_from_slice(&r.key);
        out.push(b':');
        let pad = (15 - r.key.len() as i64).unsigned_abs() as usize;
        out.extend(std::iter::repeat_n(b' ', pad));
        value(out, &r.value, sep);
    }
    if field.is_none() {
        for p in params(&parm_records) {
            line(out, "parm:", &p.render_full(), sep);
        }
    }
}

fn value(out: &mut Vec<u8>, v: &[u8], sep: u8) {
    out.extend_from_slice(v);
    out.push(sep);
}

/// `printf("%-16s%s%c", label, value, sep)`.
fn line(out: &mut Vec<u8>, label: &str, v: &[u8], sep: u8) {
    out.extend_from_slice(format!("{label:<16}").as_bytes());
    value(out, v, sep);
}

struct Param {
    name: Vec<u8>,
    desc: Option<Vec<u8>>,
    ty: Option<Vec<u8>>,
}

impl Param {
    /// Full listing: `name:desc (type)`, `name:type`, `name:desc`.
    fn render_full(&self) -> Vec<u8> {
        self.render(false)
    }
    /// `-p` / `-F parm`: `name:desc (type)`, `name: (type)`, `name:desc`.
    fn render_short(&self) -> Vec<u8> {
        self.render(true)
    }
    fn render(&self, short: bool) -> Vec<u8> {
        let mut s = self.name.clone();
        s.push(b':');
        match (&self.desc, &self.ty) {
            (None, ty) => {
                let ty = ty.as_deref().unwrap_or_default();
                if short {
                    s.extend_from_slice(b" (");
                    s.extend_from_slice(ty);
                    s.push(b')');
                } else {
                    s.extend_from_slice(ty);
                }
            }
            (Some(d), Some(ty)) => {
                s.extend_from_slice(d);
                s.extend_from_slice(b" (");
                s.extend_from_slice(ty);
                s.push(b')');
            }
            (Some(d), None) => s.extend_from_slice(d),
        }
        s
    }
}

/// kmod's parameter list: one entry per name, the last `parm`/`parmtype` value of each name
/// wins, and new names are pushed at the front (so they print in reverse order of first
/// appearance). Records without `:` are skipped (kmod prints an error for them).
fn params(records: &[ModinfoEntry]) -> Vec<Param> {
    let mut list: Vec<Param> = Vec::new();
    for r in records {
        let is_desc = r.key == b"parm";
        if !is_desc && r.key != b"parmtype" {
            continue;
        }
        let Some(colon) = r.value.iter().position(|&b| b == b':') else {
            eprintln!(
                "modinfo: ERROR: Found invalid \"{}={}\": missing ':'",
                String::from_utf8_lossy(&r.key),
                String::from_utf8_lossy(&r.value)
            );
            continue;
        };
        let name = &r.value[..colon];
        let rest = r.value[colon + 1..].to_vec();
        let idx = match list.iter().position(|p| p.name == name) {
            Some(i) => i,
            None => {
                list.push(Param {
                    name: name.to_vec(),
                    desc: None,
                    ty: None,
                });
                list.len() - 1
            }
        };
        if is_desc {
            list[idx].desc = Some(rest);
        } else {
            list[idx].ty = Some(rest);
        }
    }
    list.reverse();
    list
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
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&json).unwrap_or_default()
        );
    }
    if out.flush().is_err() {
        return exit::FAILED;
    }
    exit::failed_if(failed)
}
