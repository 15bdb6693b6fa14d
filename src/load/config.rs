//! modprobe.d and the kernel command line, as libkmod 30 reads them (`libkmod-config.c`):
//! the same lines kept, the same lines refused (with kmod's messages), the same order, so
//! that `modprobe -c` and every decision made from the configuration are kmod's.
//!
//! * Files: every `*.conf` of each configuration directory (or a file named directly),
//!   sorted by file name across directories, the first directory's file winning for equal
//!   names; `modules.softdep` of the module directory joins the list first. Files are read
//!   with `getline_wrapped` (a backslash joins the next line or escapes a character).
//! * Lines: a `#` in the first column is a comment; words are split at spaces and tabs;
//!   `alias`, `blacklist`, `options`, `install`, `remove`, `softdep` (module names have `-`
//!   replaced by `_` outside `[...]`); `options`, `install`, `remove` and `softdep` keep
//!   the rest of the line raw (after exactly one separator). Anything else is refused with
//!   `ignoring bad line starting with '...'`.
//! * The kernel command line (kmod's state machine): `mod.param[=value]` gives
//!   `options mod param[=value]`, `modprobe.blacklist=a,b` blacklists, a token quoted as a
//!   whole (`"mod.p=a b"`) is re-quoted around its value.

use crate::glob::fnmatch;
use std::path::{Path, PathBuf};

/// The configuration directories kmod 30 reads by default, in precedence order.
pub const KMOD_DIRS: &[&str] = &[
    "/etc/modprobe.d",
    "/run/modprobe.d",
    "/usr/local/lib/modprobe.d",
    "/lib/modprobe.d",
];

/// kabi's own list for `kabi load --root DIR` (below DIR): kmod's, plus `/usr/lib/modprobe.d`
/// (where a distribution without a merged `/usr` ships its files).
pub const DIRS: &[&str] = &[
    "etc/modprobe.d",
    "run/modprobe.d",
    "usr/local/lib/modprobe.d",
    "usr/lib/modprobe.d",
    "lib/modprobe.d",
];

/// The kernel's command line is read into a buffer of this size (`KCMD_LINE_SIZE`).
pub const KCMD_LINE_SIZE: usize = 4096;

/// A configuration file larger than this is refused (kmod reads any size; a modprobe.d file
/// of a megabyte is already absurd).
pub const MAX_FILE: u64 = 16 << 20;

/// A `softdep` line: the module pattern, its `pre:` and `post:` names (as written).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Softdep {
    pub name: String,
    pub pre: Vec<String>,
    pub post: Vec<String>,
}

/// Everything modprobe.d and the command line say, each list in kmod's order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModprobeConfig {
    pub blacklists: Vec<String>,
    /// (module pattern, command), first match wins.
    pub install: Vec<(String, String)>,
    pub remove: Vec<(String, String)>,
    /// (alias pattern, module name).
    pub aliases: Vec<(String, String)>,
    /// (module name, options text as written, tabs made spaces).
    pub options: Vec<(String, String)>,
    pub softdeps: Vec<Softdep>,
    /// What libkmod reports while reading (`(function, line, message)`, as `ERR()` prints
    /// them: `libkmod: ERROR ../libkmod/libkmod-config.c:LINE FUNCTION: MESSAGE`).
    pub messages: Vec<ConfigMessage>,
}

/// A message libkmod prints while reading the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigMessage {
    /// Source line of the message in Debian's kmod 30 build (`libkmod-config.c`).
    pub line: u32,
    pub function: &'static str,
    pub text: String,
}

impl ConfigMessage {
    /// As kmod's default log function prints it before a tool sets up its own.
    pub fn render(&self) -> String {
        format!(
            "libkmod: ERROR ../libkmod/libkmod-config.c:{} {}: {}",
            self.line, self.function, self.text
        )
    }
}

/// kmod's `underscores()`: `-` becomes `_`, except inside `[...]`; `None` for an
/// unmatched `]` or an unclosed `[` (kmod refuses the line).
pub fn underscores(s: &str) -> Option<String> {
    underscores_bytes(s.as_bytes())
}

/// [`underscores`] of bytes as a configuration file has them (invalid UTF-8 replaced after:
/// the characters it changes are ASCII, never part of a longer sequence).
fn underscores_bytes(b: &[u8]) -> Option<String> {
    // nearly every name: nothing to change, one allocation
    if !b.iter().any(|&c| matches!(c, b'-' | b'[' | b']')) {
        return Some(text(b));
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0usize;
    while i < b.len() {
        match b[i] {
            b'-' => out.push(b'_'),
            b']' => return None,
            b'[' => {
                let end = i + b[i..].iter().position(|&c| c == b']')?;
                out.extend_from_slice(&b[i..=end]);
                i = end;
            }
            c => out.push(c),
        }
        i += 1;
    }
    Some(String::from_utf8(out).unwrap_or_else(|e| text(e.as_bytes())))
}

/// kmod's `getline_wrapped`: the logical lines of a file with their last physical line
/// number. A backslash before a newline joins the lines; before any other character it is
/// dropped and the character kept. A line without a backslash (nearly all) is borrowed.
fn wrapped_lines(data: &[u8]) -> Vec<(std::borrow::Cow<'_, [u8]>, u32)> {
    use std::borrow::Cow;
    let mut out = Vec::with_capacity(memchr::memchr_iter(b'\n', data).count() + 1);
    let mut line = 0u32;
    let mut i = 0usize;
    while i < data.len() {
        let end = data[i..].iter().position(|&c| c == b'\n').map(|n| i + n);
        let seg = &data[i..end.unwrap_or(data.len())];
        if !seg.contains(&b'\\') {
            line += 1;
            out.push((Cow::Borrowed(seg), line));
            i = end.map_or(data.len(), |e| e + 1);
            continue;
        }
        // one logical line, byte by byte from here
        let mut cur: Vec<u8> = Vec::new();
        let mut pending = 0u32;
        let mut ended = false;
        while i < data.len() {
            let c = data[i];
            i += 1;
            match c {
                b'\n' => {
                    line += pending + 1;
                    out.push((Cow::Owned(std::mem::take(&mut cur)), line));
                    ended = true;
                    break;
                }
                b'\\' => match data.get(i) {
                    Some(b'\n') => {
                        i += 1;
                        pending += 1;
                    }
                    Some(&n) => {
                        i += 1;
                        cur.push(n);
                    }
                    // getc() gave EOF: kmod stores it as the byte 0xff
                    None => cur.push(0xff),
                },
                c => cur.push(c),
            }
        }
        if !ended && !cur.is_empty() {
            line += pending + 1;
            out.push((Cow::Owned(cur), line));
        }
    }
    out
}

/// `strtok_r(s, "\t ")` over a byte string: the next token and the rest after its
/// terminating separator (exactly one separator consumed).
fn token(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let start = s.iter().position(|&c| c != b' ' && c != b'\t')?;
    let s = &s[start..];
    match s.iter().position(|&c| c == b' ' || c == b'\t') {
        Some(e) => Some((&s[..e], &s[e + 1..])),
        None => Some((s, &[])),
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl ModprobeConfig {
    /// Apply one configuration file (`filename` names it in messages).
    pub fn parse_file(&mut self, data: &[u8], filename: &str) {
        for (line, linenum) in wrapped_lines(data) {
            if line.is_empty() || line[0] == b'#' {
                continue;
            }
            // a NUL ends the C string
            let line = match line.iter().position(|&c| c == 0) {
                Some(n) => &line[..n],
                None => &line[..],
            };
            let Some((cmd, rest)) = token(line) else {
                continue;
            };
            if !self.parse_line(cmd, rest) {
                let cmd_s = text(cmd);
                if cmd_s == "include" || cmd_s == "config" {
                    self.messages.push(ConfigMessage {
                        line: 708,
                        function: "kmod_config_parse",
                        text: format!(
                            "{filename}: command {cmd_s} is deprecated and not parsed anymore\n"
                        ),
                    });
                } else {
                    self.messages.push(ConfigMessage {
                        line: 712,
                        function: "kmod_config_parse",
                        text: format!(
                            "{filename} line {linenum}: ignoring bad line starting with '{cmd_s}'\n"
                        ),
                    });
                }
            }
        }
    }

    /// One line's command; false for a bad or unknown line.
    fn parse_line(&mut self, cmd: &[u8], rest: &[u8]) -> bool {
        match cmd {
            b"alias" => {
                let Some((alias, r)) = token(rest) else {
                    return false;
                };
                let Some((module, _)) = token(r) else {
                    return false;
                };
                let (Some(a), Some(m)) = (underscores_bytes(alias), underscores_bytes(module))
                else {
                    return false;
                };
                self.aliases.push((a, m));
            }
            b"blacklist" => {
                let Some((module, _)) = token(rest) else {
                    return false;
                };
                let Some(m) = underscores_bytes(module) else {
                    return false;
                };
                self.blacklists.push(m);
            }
            b"options" | b"install" | b"remove" | b"softdep" => {
                let Some((module, r)) = token(rest) else {
                    return false;
                };
                // the remainder as strtok_r(NULL, "\0") gives it: everything after one
                // separator, or nothing when that is empty
                if r.is_empty() {
                    return false;
                }
                let Some(module) = underscores_bytes(module) else {
                    return false;
                };
                match cmd {
                    b"options" => self.options.push((module, text(r).replace('\t', " "))),
                    b"install" => self.install.push((module, text(r))),
                    b"remove" => self.remove.push((module, text(r))),
                    _ => self.softdeps.push(parse_softdep(module, r)),
                }
            }
            _ => return false,
        }
        true
    }

    /// Add the kernel command line (the first line of `/proc/cmdline`, at most
    /// [`KCMD_LINE_SIZE`] - 1 bytes, as kmod reads it).
    pub fn parse_kcmdline(&mut self, cmdline: &[u8]) {
        let cap = cmdline.len().min(KCMD_LINE_SIZE - 1);
        for (module, param) in kcmdline_options(&cmdline[..cap]) {
            if module == "modprobe" && param.starts_with("blacklist=") {
                for b in param["blacklist=".len()..].split(',') {
                    self.blacklists.push(b.to_string());
                }
            } else {
                match underscores(&module) {
                    Some(m) => self.options.push((m, param.replace('\t', " "))),
                    None => self.messages.push(ConfigMessage {
                        line: 489,
                        function: "kcmdline_parse_result",
                        text: format!(
                            "Ignoring bad option on kernel command line while parsing module name: '{module}'\n"
                        ),
                    }),
                }
            }
        }
    }

    /// kmod's configuration: the files of `paths` (directories or files, in precedence
    /// order) with the module directory's `modules.softdep` first, then the kernel command
    /// line when given.
    pub fn load(module_dir: Option<&Path>, paths: &[PathBuf], cmdline: Option<&[u8]>) -> Self {
        let mut c = ModprobeConfig::default();
        // (sort name, file to read)
        let mut files: Vec<(String, PathBuf)> = Vec::new();
        let mut insert = |name: String, path: PathBuf| {
            if let Err(at) = files.binary_search_by(|(n, _)| n.as_bytes().cmp(name.as_bytes())) {
                files.insert(at, (name, path));
            }
        };
        if let Some(d) = module_dir {
            insert("modules.softdep".into(), d.join("modules.softdep"));
        }
        for p in paths {
            // (rustix: std's first stat probes the system call with one more)
            let Ok(meta) = rustix::fs::stat(p.as_path()) else {
                continue;
            };
            let kind = rustix::fs::FileType::from_raw_mode(meta.st_mode);
            if kind.is_file() {
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                insert(name, p.clone());
                continue;
            }
            if !kind.is_dir() {
                continue;
            }
            let Ok(rd) = std::fs::read_dir(p) else {
                continue;
            };
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') || !(name.ends_with(".conf") || name.ends_with(".alias")) {
                    continue;
                }
                if name.len() < 6 {
                    continue;
                }
                if std::fs::metadata(e.path()).is_ok_and(|m| m.is_dir()) {
                    c.messages.push(ConfigMessage {
                        line: 0,
                        function: "conf_files_filter_out",
                        text: format!(
                            "Directories inside directories are not supported: {}/{}\n",
                            p.display(),
                            name
                        ),
                    });
                    continue;
                }
                insert(name, e.path());
            }
        }
        for (_, path) in &files {
            if let Some(data) = read_capped(path) {
                c.parse_file(&data, &path.to_string_lossy());
            }
        }
        if let Some(cl) = cmdline {
            c.parse_kcmdline(cl);
        }
        c
    }

    /// `options` of a module (entries for its name or for the alias it was found by), joined
    /// by a space, as `kmod_module_get_options`; `None` when there are none.
    pub fn options_of(&self, name: &str, alias: Option<&str>) -> Option<String> {
        let mut out = String::new();
        for (m, o) in &self.options {
            if (m == name || alias == Some(m.as_str())) && !o.is_empty() {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(o);
            }
        }
        (!out.is_empty()).then_some(out)
    }

    /// The first `install` command whose pattern matches the module name.
    pub fn install_command(&self, name: &str) -> Option<&str> {
        first_match(&self.install, name)
    }

    /// The first `remove` command whose pattern matches the module name.
    pub fn remove_command(&self, name: &str) -> Option<&str> {
        first_match(&self.remove, name)
    }

    /// The first `softdep` line whose pattern matches the module name.
    pub fn softdep(&self, name: &str) -> Option<&Softdep> {
        self.softdeps
            .iter()
            .find(|s| fnmatch(s.name.as_bytes(), name.as_bytes()))
    }

    pub fn is_blacklisted(&self, name: &str) -> bool {
        self.blacklists.iter().any(|b| b == name)
    }

    /// The configuration part of `modprobe -c`: blacklists, install and remove commands,
    /// aliases, options, soft dependencies (kmod joins `pre:` and `post:` lists without a
    /// space between them).
    pub fn render(&self) -> String {
        let mut s = String::new();
        for b in &self.blacklists {
            s.push_str(&format!("blacklist {b}\n"));
        }
        for (m, c) in &self.install {
            s.push_str(&format!("install {m} {c}\n"));
        }
        for (m, c) in &self.remove {
            s.push_str(&format!("remove {m} {c}\n"));
        }
        for (a, m) in &self.aliases {
            s.push_str(&format!("alias {a} {m}\n"));
        }
        for (m, o) in &self.options {
            s.push_str(&format!("options {m} {o}\n"));
        }
        for d in &self.softdeps {
            let mut v = String::new();
            if !d.pre.is_empty() {
                v.push_str("pre: ");
                v.push_str(&d.pre.join(" "));
            }
            if !d.post.is_empty() {
                v.push_str("post: ");
                v.push_str(&d.post.join(" "));
            }
            s.push_str(&format!("softdep {} {v}\n", d.name));
        }
        s
    }
}

fn first_match<'a>(list: &'a [(String, String)], name: &str) -> Option<&'a str> {
    list.iter()
        .find(|(p, _)| fnmatch(p.as_bytes(), name.as_bytes()))
        .map(|(_, c)| c.as_str())
}

/// A regular file's bytes, at most [`MAX_FILE`]; `None` for anything else.
fn read_capped(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::File::options()
        .read(true)
        .custom_flags(libc_nonblock())
        .open(path)
        .ok()?;
    let meta = f.metadata().ok()?;
    if !meta.is_file() || meta.len() > MAX_FILE {
        return None;
    }
    let mut data = Vec::with_capacity(meta.len() as usize);
    f.take(MAX_FILE).read_to_end(&mut data).ok()?;
    Some(data)
}

const fn libc_nonblock() -> i32 {
    0o4000
}

/// A `softdep` line's names after the module: words after `pre:` go before, after `post:`
/// after; words before either are dropped.
fn parse_softdep(name: String, line: &[u8]) -> Softdep {
    let mut d = Softdep {
        name,
        ..Softdep::default()
    };
    let mut mode = 0u8;
    // (isspace: the ASCII white space, vertical tab and form feed included)
    for w in line.split(|&c| c.is_ascii_whitespace() || c == b'\x0b' || c == b'\x0c') {
        match w {
            b"" => {}
            b"pre:" => mode = 1,
            b"post:" => mode = 2,
            w if mode == 1 => d.pre.push(text(w)),
            w if mode == 2 => d.post.push(text(w)),
            _ => {}
        }
    }
    d
}

/// The `(module, param[=value])` entries of a kernel command line, by kmod 30's state
/// machine (`kmod_config_parse_kcmdline`).
pub fn kcmdline_options(buf: &[u8]) -> Vec<(String, String)> {
    #[derive(PartialEq, Clone, Copy)]
    enum St {
        Ignore,
        Modname,
        Param,
        Value,
    }
    let mut out = Vec::new();
    let mut state = St::Modname;
    let mut quoted = false;
    let mut quote_start: Option<usize> = None;
    let mut modname = 0usize;
    let mut param = 0usize;
    let mut value = 0usize;
    let mut p = 0usize;
    loop {
        let c = buf.get(p).copied().unwrap_or(0);
        let mut complete = false;
        let mut end = false;
        match c {
            b'"' => {
                quoted = !quoted;
                if quoted && state == St::Modname && p == modname {
                    quote_start = Some(p);
                    modname = p + 1;
                } else if state != St::Value {
                    state = St::Ignore;
                }
            }
            // kmod 30 splits at any isspace() character; a NUL (or the end) ends the line
            0 | b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' => {
                if c == 0 {
                    end = true;
                }
                if quoted && state == St::Value {
                    // a space inside a quoted value
                } else if quoted {
                    state = St::Ignore;
                } else if state == St::Value || state == St::Param {
                    complete = true;
                } else {
                    modname = p + 1;
                    state = St::Modname;
                    quote_start = None;
                }
            }
            b'.' => {
                if state == St::Modname {
                    param = p + 1;
                    state = St::Param;
                } else if state == St::Param {
                    state = St::Ignore;
                }
            }
            b'=' => {
                if state == St::Param {
                    value = p + 1;
                    state = St::Value;
                } else if state == St::Modname {
                    state = St::Ignore;
                }
            }
            _ => {}
        }
        if complete {
            let m = text(&buf[modname..param - 1]);
            let mut prm = buf[param..p].to_vec();
            if state == St::Value && quote_start.is_some_and(|q| q < modname) {
                // re-quote: `"m.p=v w"` → p="v w"
                let vstart = value - param;
                prm.insert(vstart, b'"');
            }
            // the closing quote of a token quoted as a whole stays at the end
            out.push((m, text(&prm)));
            modname = p + 1;
            state = St::Modname;
            quote_start = None;
        }
        if end || p >= buf.len() {
            break;
        }
        p += 1;
    }
    out
}

/// Words of a command line; double quotes group (and are kept, as the kernel passes them).
pub fn split_cmdline(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// kmod's `getline_wrapped` byte by byte: what `wrapped_lines` must agree with.
    fn wrapped_lines_bytewise(data: &[u8]) -> Vec<(Vec<u8>, u32)> {
        let mut out = Vec::new();
        let mut cur: Vec<u8> = Vec::new();
        let (mut line, mut pending, mut i) = (0u32, 0u32, 0usize);
        while i < data.len() {
            let c = data[i];
            i += 1;
            match c {
                b'\n' => {
                    line += pending + 1;
                    pending = 0;
                    out.push((std::mem::take(&mut cur), line));
                }
                b'\\' => match data.get(i) {
                    Some(b'\n') => {
                        i += 1;
                        pending += 1;
                    }
                    Some(&n) => {
                        i += 1;
                        cur.push(n);
                    }
                    None => cur.push(0xff),
                },
                c => cur.push(c),
            }
        }
        if !cur.is_empty() {
            line += pending + 1;
            out.push((cur, line));
        }
        out
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]
        /// Lines of `a`, `\\`, newlines and spaces in any order, ending anyhow.
        #[test]
        fn wrapped_lines_agree_with_getline_wrapped(
            data in proptest::collection::vec(proptest::sample::select(b"a \\\n#".to_vec()), 0..40)
        ) {
            let fast: Vec<(Vec<u8>, u32)> =
                wrapped_lines(&data).into_iter().map(|(l, n)| (l.into_owned(), n)).collect();
            proptest::prop_assert_eq!(fast, wrapped_lines_bytewise(&data));
        }
    }

    #[test]
    fn modprobe_d_as_libkmod() {
        let mut c = ModprobeConfig::default();
        c.parse_file(
            b"# x\noptions dummy   numdummies=3  \nalias my-net dummy\nblacklist pcspkr\n  # no\n\
              softdep udf pre: crc-itu-t post: nls_utf8\noptions dummy\toth=1\\\n  foo=1\n\
              install cramfs /bin/false\noptions\ninclude x\n",
            "t.conf",
        );
        assert_eq!(
            c.options,
            [
                ("dummy".to_string(), "  numdummies=3  ".to_string()),
                ("dummy".to_string(), "oth=1  foo=1".to_string())
            ]
        );
        assert_eq!(c.aliases, [("my_net".to_string(), "dummy".to_string())]);
        assert_eq!(c.install_command("cramfs"), Some("/bin/false"));
        assert_eq!(
            c.softdep("udf").unwrap().pre,
            ["crc-itu-t".to_string()] // names as written
        );
        let msgs: Vec<String> = c.messages.iter().map(|m| m.render()).collect();
        assert_eq!(
            msgs,
            [
                "libkmod: ERROR ../libkmod/libkmod-config.c:712 kmod_config_parse: t.conf line 5: ignoring bad line starting with '#'\n",
                "libkmod: ERROR ../libkmod/libkmod-config.c:712 kmod_config_parse: t.conf line 10: ignoring bad line starting with 'options'\n",
                "libkmod: ERROR ../libkmod/libkmod-config.c:708 kmod_config_parse: t.conf: command include is deprecated and not parsed anymore\n",
            ]
        );
        assert!(
            c.render()
                .contains("softdep udf pre: crc-itu-tpost: nls_utf8\n")
        );
    }

    #[test]
    fn kernel_command_line() {
        let o = kcmdline_options(
            b"root=/dev/x mod_simple.foo \"mod_simple.dyndbg=file drivers/x.c +mpf\" dummy.a=1 \
              modprobe.blacklist=floppy,snd-pcsp x.y.z=1 a=b.c d.e\n",
        );
        let o: Vec<String> = o.iter().map(|(m, p)| format!("{m} {p}")).collect();
        assert_eq!(
            o,
            [
                "mod_simple foo",
                "mod_simple dyndbg=\"file drivers/x.c +mpf\"",
                "dummy a=1",
                "modprobe blacklist=floppy,snd-pcsp",
                "d e"
            ]
        );
    }
}
