//! Man pages and shell completions, generated from the command-line definition itself
//! (`kabi gen-docs DIR`): `DIR/man/kabi.1`, `DIR/man/kabi-<command>.1`,
//! `DIR/completions/{kabi.bash,_kabi,kabi.fish}`.

use clap::CommandFactory;
use std::path::Path;

/// Every generated file: (relative path, content).
pub fn generate() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let cmd = super::Cli::command();
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut page)
        .expect("render into memory");
    out.push(("man/kabi.1".to_string(), page));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("kabi-{}", sub.get_name());
        let leaked: &'static str = Box::leak(name.clone().into_boxed_str());
        let sub = sub.clone().name(leaked);
        let mut page = Vec::new();
        clap_mangen::Man::new(sub)
            .render(&mut page)
            .expect("render into memory");
        out.push((format!("man/{name}.1"), page));
    }
    for (shell, file) in [
        (clap_complete::Shell::Bash, "completions/kabi.bash"),
        (clap_complete::Shell::Zsh, "completions/_kabi"),
        (clap_complete::Shell::Fish, "completions/kabi.fish"),
    ] {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut super::Cli::command(), "kabi", &mut buf);
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
