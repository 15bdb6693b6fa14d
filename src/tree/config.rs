//! depmod.d configuration, read and applied exactly as kmod's depmod does (spec §7.4, §7.6;
//! kmod 30 tools/depmod.c): `search`, `override`, `external`, `exclude`, and which of two
//! files with the same module name is kept.

use crate::root::Root;
use crate::tree::walk::{self, Walk};
use std::path::{Path, PathBuf};

/// The default configuration directories, in kmod's order, plus `/usr/lib/depmod.d` (the
/// DISTCONFDIR of newer kmod) before `/lib/depmod.d`.
pub const DEFAULT_DIRS: &[&str] = &[
    "etc/depmod.d",
    "run/depmod.d",
    "usr/local/lib/depmod.d",
    "usr/lib/depmod.d",
    "lib/depmod.d",
];

/// One word of a `search` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Search {
    /// A directory relative to the module directory (`updates`, `extra`, ...).
    Dir(String),
    /// `built-in`: every path that no other entry matches.
    BuiltIn,
    /// `external`: every `external` directory.
    External,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DepmodConfig {
    /// In file order: the first entry has the highest priority. Never empty after `load`
    /// (without any `search` line it is just `updates`).
    pub search: Vec<Search>,
    /// `subdir/modname` of each matching `override`, in file order.
    pub overrides: Vec<String>,
    /// Matching `external` directories, in file order.
    pub externals: Vec<String>,
    /// Directory-entry names skipped at any depth (besides `.`, `..`, `build`, `source`).
    pub excludes: Vec<String>,
    /// depmod's messages about the configuration (`file:line: ignoring bad line ...`).
    pub warnings: Vec<String>,
}

/// `*`, or a POSIX extended regex searched for in the kernel release (`regexec`, unanchored).
/// An invalid pattern matches nothing, as in kmod.
pub fn kernel_matches(pattern: &str, kver: &str) -> bool {
    pattern == "*" || regex::Regex::new(pattern).is_ok_and(|re| re.is_match(kver))
}

/// Logical lines: a `\` before the newline joins lines (kmod's `freadline_wrapped`); each
/// comes with the number of its first physical line.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut start = 1;
    let mut line = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => {
                out.push((start, std::mem::take(&mut cur)));
                line += 1;
                start = line;
            }
            '\\' if chars.peek() == Some(&'\n') => {
                chars.next();
                line += 1;
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push((start, cur));
    }
    out
}

impl DepmodConfig {
    /// Apply one configuration file's text (`name` is used in warnings).
    pub fn parse(&mut self, name: &str, text: &str, kver: &str) {
        for (n, line) in logical_lines(text) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut words = line.split([' ', '\t']).filter(|w| !w.is_empty());
            let Some(cmd) = words.next() else { continue };
            let args: Vec<&str> = words.collect();
            match (cmd, args.as_slice()) {
                ("search", dirs) => self.search.extend(dirs.iter().map(|d| match *d {
                    "built-in" => Search::BuiltIn,
                    "external" => Search::External,
                    d => Search::Dir(d.to_string()),
                })),
                ("override", [module, version, subdir, ..]) => {
                    if kernel_matches(version, kver) {
                        self.overrides.push(format!("{subdir}/{module}"));
                    }
                }
                ("external", [version, dir, ..]) => {
                    if kernel_matches(version, kver) {
                        self.externals.push(dir.to_string());
                    }
                }
                ("exclude", names) => self.excludes.extend(names.iter().map(|s| s.to_string())),
                ("include" | "make_map_files", _) => {}
                _ => self.warnings.push(format!(
                    "{name}:{n}: ignoring bad line starting with '{cmd}'"
                )),
            }
        }
    }

    /// Read the configuration for `kver`: the files of `paths` (directories or files, named
    /// from outside any root, as on kmod's command line), or the default directories inside
    /// `root`; collected and sorted by file name, the first directory's file winning for
    /// equal names, `*.conf` only. Only regular files are read.
    pub fn load(root: &Root, kver: &str, paths: Option<&[PathBuf]>) -> DepmodConfig {
        let host;
        let (base, dirs): (&Root, Vec<PathBuf>) = match paths {
            Some(p) => {
                host = Root::host().ok();
                match &host {
                    Some(h) => (h, p.to_vec()),
                    None => (root, Vec::new()),
                }
            }
            None => (root, DEFAULT_DIRS.iter().map(PathBuf::from).collect()),
        };
        let mut files: Vec<(String, PathBuf)> = Vec::new();
        let add = |files: &mut Vec<(String, PathBuf)>, name: String, path: PathBuf| {
            if !files.iter().any(|(n, _)| *n == name) {
                files.push((name, path));
            }
        };
        for p in &dirs {
            if base.is_file(p) {
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                add(&mut files, name, p.clone());
                continue;
            }
            let Ok(entries) = base.list(p) else {
                continue;
            };
            for e in entries {
                let name = e.name.to_string_lossy().into_owned();
                if name.starts_with('.') || name.len() < 6 || !name.ends_with(".conf") {
                    continue;
                }
                add(&mut files, name, p.join(&e.name));
            }
        }
        files.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let mut cfg = DepmodConfig::default();
        for (_, path) in files {
            match base.read_string(&path, crate::root::caps::CONFIG) {
                Ok(text) => cfg.parse(&base.display(&path).to_string_lossy(), &text, kver),
                Err(e) => cfg.warnings.push(format!("file parse {e}")),
            }
        }
        if cfg.search.is_empty() {
            cfg.search.push(Search::Dir("updates".into()));
        }
        cfg
    }

    /// Is a directory entry of this name skipped by the walk?
    pub fn excluded(&self, name: &str) -> bool {
        matches!(name, "." | ".." | "build" | "source") || self.excludes.iter().any(|e| e == name)
    }

    /// kmod's `depmod_module_is_higher_priority`: of two files with the same module name,
    /// found in this order, is the one found first (`old`) kept? Paths are full paths, as
    /// the walk forms them (`dirname/rel` or `external/rel`); `dirname` is the module
    /// directory. The comparison uses each path up to the end of the module name (the file
    /// name's part before its first `.`).
    pub fn keep_existing(&self, dirname: &str, old: &str, new: &str) -> bool {
        let stem = |p: &str| -> usize {
            let base = p.rfind('/').map_or(0, |i| i + 1);
            base + p[base..].find('.').unwrap_or(p.len() - base)
        };
        let (new, old) = (&new[..stem(new)], &old[..stem(old)]);
        let rel = |p: &'_ str| -> Option<String> {
            p.strip_prefix(dirname)
                .and_then(|r| r.get(1..))
                .map(str::to_string)
        };
        let (rel_new, rel_old) = (rel(new), rel(old));
        // kmod keeps its lists in reverse file order: the later line is met first
        for ov in self.overrides.iter().rev() {
            if rel_new.as_deref() == Some(ov.as_str()) {
                return false;
            }
            if rel_old.as_deref() == Some(ov.as_str()) {
                return true;
            }
        }
        let under = |path: &str, prefix: &str| {
            path.len() > prefix.len()
                && path.as_bytes()[prefix.len()] == b'/'
                && path.starts_with(prefix)
        };
        let (mut bprio, mut oldprio, mut newprio) = (-1i64, -1i64, -1i64);
        let mut i = 0i64;
        for se in self.search.iter().rev() {
            match se {
                Search::BuiltIn => bprio = i,
                Search::External => {
                    for ext in self.externals.iter().rev() {
                        if under(new, ext) {
                            newprio = i;
                        }
                        if under(old, ext) {
                            oldprio = i;
                        }
                        i += 1;
                    }
                }
                Search::Dir(d) => {
                    if rel_new.as_deref().is_some_and(|r| under(r, d)) {
                        newprio = i;
                    } else if rel_old.as_deref().is_some_and(|r| under(r, d)) {
                        oldprio = i;
                    }
                }
            }
            i += 1;
        }
        if newprio < 0 {
            newprio = bprio;
        }
        if oldprio < 0 {
            oldprio = bprio;
        }
        newprio <= oldprio
    }

    /// Every module file depmod considers, in its walk order: the module directory (`rel`
    /// inside `root`, named `dirname` as kmod names it) depth-first in `readdir` order, then
    /// each external directory (the last `external` line first), with what went wrong on the
    /// way in kmod's words. `Err` when the module directory itself cannot be opened.
    ///
    /// With `record`, the walk records what it looks at (see [`Walk::record`]).
    pub fn walk(
        &self,
        root: &Root,
        dirname: &str,
        rel: &Path,
        record: bool,
    ) -> Result<Walk, String> {
        self.walk_with(root, dirname, rel, record, self)
    }

    /// [`DepmodConfig::walk`] with the visitor `v` (which skips and wants what this
    /// configuration does, and may work on what it finds: [`walk::Visitor::found`]).
    pub fn walk_with(
        &self,
        root: &Root,
        dirname: &str,
        rel: &Path,
        record: bool,
        v: &dyn walk::Visitor,
    ) -> Result<Walk, String> {
        let mut out = Walk {
            record,
            ..Walk::default()
        };
        let mut seen = Default::default();
        walk::walk(root, rel, dirname, v, &mut seen, &mut out)?;
        for (rel, ext) in self.external_dirs(root) {
            if let Err(e) = walk::walk(root, &rel, ext, v, &mut seen, &mut out) {
                out.problems.push(e);
            }
        }
        Ok(out)
    }

    /// The external directories, in the order [`DepmodConfig::walk`] walks them: each as the
    /// path inside `root` it walks and the name it shows.
    pub fn external_dirs<'a>(&'a self, root: &Root) -> Vec<(PathBuf, &'a str)> {
        self.externals
            .iter()
            .rev()
            .map(|ext| {
                // a directory named with the root's own path in front is the same directory
                // seen from outside (what kmod, which reads it from the host, needs); any
                // other path is inside the root
                let rel = root
                    .inside(Path::new(ext))
                    .unwrap_or_else(|| PathBuf::from(ext));
                (rel, ext.as_str())
            })
            .collect()
    }

    /// One file per module name, chosen as depmod chooses: (module name, path), in the order
    /// the kept files were first added.
    pub fn select(&self, dirname: &str, files: &[String]) -> Vec<(String, String)> {
        self.select_by(dirname, files, String::as_str)
            .into_iter()
            .map(|(name, i)| (name, files[i].clone()))
            .collect()
    }

    /// [`DepmodConfig::select`] over any list of files (`path` gives each one's path):
    /// (module name, index of the chosen file in `files`).
    pub fn select_by<T>(
        &self,
        dirname: &str,
        files: &[T],
        path: impl Fn(&T) -> &str,
    ) -> Vec<(String, usize)> {
        let mut chosen: Vec<(String, usize)> = Vec::new();
        let mut index: rustc_hash::FxHashMap<String, usize> = Default::default();
        index.reserve(files.len());
        for (n, f) in files.iter().enumerate() {
            let f = path(f);
            let Some(name) = crate::tree::lookup::module_name_of(f) else {
                continue;
            };
            match index.get(&name) {
                None => {
                    index.insert(name.clone(), chosen.len());
                    chosen.push((name, n));
                }
                Some(&i) => {
                    if !self.keep_existing(dirname, path(&files[chosen[i].1]), f) {
                        chosen[i].1 = n;
                    }
                }
            }
        }
        chosen
    }
}

impl walk::Visitor for DepmodConfig {
    fn skip(&self, name: &str) -> bool {
        self.excluded(name)
    }
    fn wants(&self, name: &str) -> bool {
        crate::module::strip_module_ext(name).is_some()
    }
    fn parallel(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_directive() {
        let mut c = DepmodConfig::default();
        c.parse(
            "dist.conf",
            "# comment\nsearch updates extra \\\n built-in weak-updates\noverride foo 6.1.* extra/vendor\n\
             override bar ^5\\. extra\nexternal * /opt/drivers\nexternal ^4 /old\nexclude debug tmp\n\
             make_map_files no\nbogus line\noverride short\n",
            "6.1.0-56-amd64",
        );
        assert_eq!(
            c.search,
            vec![
                Search::Dir("updates".into()),
                Search::Dir("extra".into()),
                Search::BuiltIn,
                Search::Dir("weak-updates".into())
            ]
        );
        assert_eq!(c.overrides, vec!["extra/vendor/foo".to_string()]);
        assert_eq!(c.externals, vec!["/opt/drivers".to_string()]);
        assert_eq!(c.excludes, vec!["debug".to_string(), "tmp".to_string()]);
        assert_eq!(
            c.warnings,
            vec![
                "dist.conf:10: ignoring bad line starting with 'bogus'".to_string(),
                "dist.conf:11: ignoring bad line starting with 'override'".to_string()
            ]
        );
        assert!(c.excluded("build") && c.excluded("debug") && !c.excluded("kernel"));
        // regexec is unanchored, as in kmod: "5.*" matches any release containing a 5
        assert!(kernel_matches("5.*", "6.1.0-56-amd64"));
        assert!(!kernel_matches("^5\\.", "6.1.0-56-amd64"));
        assert!(
            !kernel_matches("(", "6.1.0-56-amd64"),
            "an invalid pattern matches nothing"
        );
    }

    #[test]
    fn rhel_order_prefers_updates_then_extra_then_kernel_then_weak_updates() {
        let mut c = DepmodConfig::default();
        c.parse(
            "dist.conf",
            "search updates extra built-in weak-updates\n",
            "k",
        );
        let d = "/lib/modules/k";
        let p = |r: &str| format!("{d}/{r}/m.ko");
        // new replaces old when it ranks higher
        assert!(!c.keep_existing(d, &p("kernel/x"), &p("updates")));
        assert!(!c.keep_existing(d, &p("extra"), &p("updates")));
        assert!(!c.keep_existing(d, &p("kernel/x"), &p("extra")));
        assert!(c.keep_existing(d, &p("kernel/x"), &p("weak-updates")));
        assert!(c.keep_existing(d, &p("updates"), &p("extra")));
        // equal rank: the first found stays
        assert!(c.keep_existing(d, &p("kernel/a"), &p("kernel/b")));
    }
}
