//! Man pages (section 8, as kmod's and weak-modules' are) and shell completions, generated
//! from the command-line definition itself: `kabi gen-docs DIR` (built with the `gen-docs`
//! feature) writes `DIR/man/kabi.8`, `DIR/man/kabi-<command>.8` (and
//! `kabi-<command>-<subcommand>.8`), and `DIR/completions/{kabi.bash,_kabi,kabi.fish}`.
//!
//! Every page has an EXIT STATUS section, from [`EXIT_STATUS`]; generation fails when a
//! command has none. Hidden commands and options (kmod's deprecated flags, RHEL options
//! accepted for compatibility, `gen-docs` itself) appear neither in the pages nor in the
//! completions.

use clap::{Command, CommandFactory};
use clap_mangen::roff::{Roff, bold, roman};
use std::path::Path;

/// The section of every page.
pub const SECTION: &str = "8";

/// The exit statuses of each command (by its path below `kabi`): status, meaning, within the
/// table of [`super::exit`] (the `kabi` page shows that table itself). Boot hooks and scripts
/// depend on these; keep them in step with the code.
pub const EXIT_STATUS: &[(&str, &[(&str, &str)])] = &[
    (
        "info",
        &[
            ("0", "Every module was found and read."),
            (
                "1",
                "A module could not be found or read (kmod's modinfo exits 1 too).",
            ),
            ("2", "The command line is wrong."),
        ],
    ),
    (
        "modversions",
        &[
            ("0", "Every module was read."),
            ("1", "A module could not be read."),
            ("2", "The command line is wrong."),
        ],
    ),
    (
        "check",
        &[
            ("0", "Every module would load."),
            ("1", "At least one module would be refused by the kernel."),
            (
                "2",
                "The command line is wrong, a module was not found or could not be read, or no ABI of the kernel could be had.",
            ),
        ],
    ),
    (
        "diff-abi",
        &[
            (
                "0",
                "The ABIs were compared; no module given with --modules breaks (the ABIs may still differ).",
            ),
            (
                "1",
                "A module given with --modules would be refused by NEW.",
            ),
            (
                "2",
                "The command line is wrong, or a kernel or a module could not be read.",
            ),
        ],
    ),
    (
        "depmod",
        &[
            ("0", "The indexes were written (or printed)."),
            (
                "1",
                "A fatal error: an unreadable tree or configuration, a file that could not be written, dependency cycles (invoked as depmod, also a wrong command line, as kmod).",
            ),
            ("2", "The command line is wrong."),
        ],
    ),
    (
        "weak-modules",
        &[
            (
                "0",
                "The links were made or removed (or, with --dry-run, would be), and each initramfs image to rebuild was rebuilt.",
            ),
            (
                "1",
                "Nothing or only part was done: a wrong combination of options, a module outside the root, an unreadable kernel, a failed write, or a failed initramfs rebuild (each kernel whose links changed was changed completely).",
            ),
            (
                "2",
                "The command line is wrong (invoked as weak-modules: 1, as RHEL's script).",
            ),
        ],
    ),
    (
        "weak-modules2",
        &[
            (
                "0",
                "Done (or, with --dry-run, planned). A KMP that a kernel refuses is reported and left out of that kernel, as SUSE's script does.",
            ),
            (
                "1",
                "A package the script would refuse (not in the rpm database without a module list, modules for several kernels, a forbidden directory); an unreadable root or rpm database; a failed write or initramfs rebuild (each kernel's links were changed completely or not at all); a missing mode or a wrong argument count, as SUSE's script.",
            ),
            (
                "2",
                "An unknown option (as kabi weak-modules2; invoked as weak-modules2: 1, as SUSE's script).",
            ),
        ],
    ),
    (
        "sign",
        &[
            (
                "0",
                "Every module was signed (with --verify: every signature would be accepted).",
            ),
            (
                "1",
                "With --verify: at least one module would be refused or its signature could not be judged.",
            ),
            (
                "2",
                "The command line is wrong, or a key, a certificate or a module could not be read or written.",
            ),
        ],
    ),
    (
        "weak",
        &[
            ("0", "As kabi weak status."),
            ("2", "The command line is wrong."),
        ],
    ),
    (
        "weak status",
        &[
            ("0", "Nothing is broken."),
            (
                "1",
                "A link is dangling or points into a removed kernel, or a run was interrupted.",
            ),
            (
                "2",
                "The state could not be read: no kernel module directories under --root, or an unreadable kernel; or the command line is wrong.",
            ),
        ],
    ),
    (
        "load",
        &[
            (
                "0",
                "Every module is loaded (or built in), or would be with --dry-run.",
            ),
            (
                "1",
                "A module was not found, is predicted to be refused (without --force), or the kernel refused it.",
            ),
            (
                "2",
                "The command line is wrong (invoked as modprobe or insmod: 1, as kmod).",
            ),
        ],
    ),
    (
        "unload",
        &[
            ("0", "Every module was removed."),
            ("1", "A module could not be removed."),
            (
                "2",
                "The command line is wrong (invoked as rmmod: 1, as kmod).",
            ),
        ],
    ),
    (
        "lsmod",
        &[
            ("0", "Always (an unreadable /proc/modules lists nothing)."),
            ("2", "The command line is wrong."),
        ],
    ),
    (
        "verify",
        &[
            ("0", "Every expected module will load."),
            (
                "1",
                "A module will fail (incompatible, missing, a dangling weak link, a link into a removed kernel), or the module index is stale.",
            ),
            (
                "2",
                "Could not verify: no ABI of the kernel, an unreadable tree, the --timeout passed, the metrics file could not be written, or the command line is wrong.",
            ),
        ],
    ),
];

/// The date of this version's entry in CHANGELOG.md (`## VERSION - DATE`): the pages' date.
pub fn release_date() -> &'static str {
    let heading = format!("## {} - ", env!("CARGO_PKG_VERSION"));
    include_str!("../../CHANGELOG.md")
        .lines()
        .find_map(|l| l.strip_prefix(heading.as_str()))
        .map(str::trim)
        .expect("CHANGELOG.md has an entry `## VERSION - DATE` for this version")
}

/// The other pages each page names.
const SEE_ALSO: &str = "kabi(8), modinfo(8), depmod(8), modprobe(8), dracut(8), kernel-install(8)";

/// The command-line definition as the documents show it: without hidden commands or options.
pub fn visible_command() -> Command {
    visible(&super::Cli::command())
}

/// `cmd` rebuilt from its visible parts (clap cannot remove an argument or a subcommand).
/// `cmd` must not be built yet (its automatic --help and --version are added again).
fn visible(cmd: &Command) -> Command {
    let name: &'static str = Box::leak(cmd.get_name().to_string().into_boxed_str());
    let mut out = Command::new(name);
    if let Some(v) = cmd.get_version() {
        out = out.version(Box::leak(v.to_string().into_boxed_str()) as &str);
    }
    if let Some(a) = cmd.get_about() {
        out = out.about(a.clone());
    }
    if let Some(a) = cmd.get_long_about() {
        out = out.long_about(a.clone());
    }
    if let Some(a) = cmd.get_after_help() {
        out = out.after_help(a.clone());
    }
    if let Some(a) = cmd.get_after_long_help() {
        out = out.after_long_help(a.clone());
    }
    if cmd.is_disable_help_flag_set() {
        out = out.disable_help_flag(true); // the command defines its own -h/--help
    }
    if cmd.is_disable_version_flag_set() {
        out = out.disable_version_flag(true);
    }
    out = out.visible_aliases(
        cmd.get_visible_aliases()
            .map(|a| -> &'static str { Box::leak(a.to_string().into_boxed_str()) })
            .collect::<Vec<_>>(),
    );
    for a in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
        out = out.arg(a.clone());
    }
    for g in cmd.get_groups() {
        // derive's group of a struct names every field, hidden ones too
        let ids: Vec<clap::Id> = g
            .get_args()
            .filter(|id| out.get_arguments().any(|a| a.get_id() == *id))
            .cloned()
            .collect();
        out = out.group(
            clap::ArgGroup::new(g.get_id().clone())
                .args(ids)
                .multiple(g.clone().is_multiple())
                .required(g.is_required_set()),
        );
    }
    for s in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        out = out.subcommand(visible(s));
    }
    if cmd.is_subcommand_required_set() {
        out = out.subcommand_required(true);
    }
    out
}

/// The exit statuses of the command at `path` (`"verify"`, `"weak status"`; `""` for `kabi`
/// itself: the table of [`super::exit`]).
pub fn exit_status(path: &str) -> Option<Vec<(String, &'static str)>> {
    if path.is_empty() {
        return Some(
            super::exit::TABLE
                .iter()
                .map(|(code, what)| (code.to_string(), *what))
                .collect(),
        );
    }
    EXIT_STATUS
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, s)| s.iter().map(|(c, w)| (c.to_string(), *w)).collect())
}

/// One page: clap_mangen's sections, then EXIT STATUS and SEE ALSO (before VERSION).
fn page(cmd: Command, title: &str, path: &str) -> Vec<u8> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .title(title.to_uppercase())
        .section(SECTION)
        .date(release_date())
        .source(format!("kabi {}", env!("CARGO_PKG_VERSION")))
        .manual("System Manager's Manual")
        .render(&mut out)
        .expect("render into memory");
    let text = String::from_utf8(out).expect("clap_mangen writes UTF-8");
    // clap_mangen calls the after-help text EXTRA
    let text = text.replace(".SH EXTRA\n", ".SH NOTES\n");
    let status = exit_status(path)
        .unwrap_or_else(|| panic!("no EXIT STATUS for `kabi {path}`: add it to EXIT_STATUS"));
    let mut r = Roff::new();
    r.control("SH", ["EXIT STATUS"]);
    for (code, what) in &status {
        r.control("TP", []);
        r.text([bold(code.as_str())]);
        r.text([roman(*what)]);
    }
    r.control("SH", ["SEE ALSO"]);
    let others: Vec<&str> = SEE_ALSO
        .split(", ")
        .filter(|p| *p != format!("{title}({SECTION})"))
        .collect();
    r.text([roman(others.join(", "))]);
    let extra = r.to_roff();
    let text = match text.find(".SH VERSION\n") {
        Some(at) => format!("{}{extra}{}", &text[..at], &text[at..]),
        None => format!("{text}{extra}"),
    };
    text.into_bytes()
}

/// Every generated file: (relative path, content).
pub fn generate() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let cmd = visible_command();
    out.push((format!("man/kabi.{SECTION}"), page(cmd.clone(), "kabi", "")));
    for sub in cmd.get_subcommands() {
        let name = format!("kabi-{}", sub.get_name());
        let leaked: &'static str = Box::leak(name.clone().into_boxed_str());
        let bin: &'static str = Box::leak(format!("kabi {}", sub.get_name()).into_boxed_str());
        let page_cmd = sub.clone().name(leaked).bin_name(bin);
        out.push((
            format!("man/{name}.{SECTION}"),
            page(page_cmd, &name, sub.get_name()),
        ));
        for subsub in sub.get_subcommands() {
            let name = format!("kabi-{}-{}", sub.get_name(), subsub.get_name());
            let path = format!("{} {}", sub.get_name(), subsub.get_name());
            let leaked: &'static str = Box::leak(name.clone().into_boxed_str());
            let bin: &'static str = Box::leak(format!("kabi {path}").into_boxed_str());
            out.push((
                format!("man/{name}.{SECTION}"),
                page(subsub.clone().name(leaked).bin_name(bin), &name, &path),
            ));
        }
    }
    for (shell, file) in [
        (clap_complete::Shell::Bash, "completions/kabi.bash"),
        (clap_complete::Shell::Zsh, "completions/_kabi"),
        (clap_complete::Shell::Fish, "completions/kabi.fish"),
    ] {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut visible_command(), "kabi", &mut buf);
        out.push((file.to_string(), buf));
    }
    out
}

/// Write them under `dir`.
pub fn write(dir: &Path) -> std::io::Result<()> {
    for (rel, data) in generate() {
        let p = dir.join(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d)?;
        }
        std::fs::write(p, data)?;
    }
    Ok(())
}
