//! The man pages and completions in `dist/` are the ones the CLI definition generates now
//! (built with the `gen-docs` feature: `cargo test --features gen-docs --test docs`), every
//! page is in section 8 with an EXIT STATUS section, and nothing hidden is offered.

mod common;

use clap::CommandFactory;

#[test]
fn man_pages_and_completions_are_current() {
    let mut stale = Vec::new();
    let generated = kabi::cli::docs::generate();
    for (rel, data) in &generated {
        let p = common::repo().join("dist").join(rel);
        if std::fs::read(&p).ok().as_deref() != Some(&data[..]) {
            stale.push(rel.clone());
        }
    }
    assert!(
        stale.is_empty(),
        "out of date (run `cargo run --features gen-docs -- gen-docs dist`): {stale:?}"
    );
    // nothing in dist/man that the generator no longer writes (a page of a removed command)
    for e in std::fs::read_dir(common::repo().join("dist/man")).unwrap() {
        let rel = format!("man/{}", e.unwrap().file_name().to_string_lossy());
        assert!(
            generated.iter().any(|(r, _)| *r == rel),
            "dist/{rel} is not generated any more: remove it"
        );
    }
}

/// Every visible command and subcommand has a page in section 8 with EXIT STATUS, which
/// lists at least the codes 0 and 2 (every command exits 2 on a wrong command line).
#[test]
fn every_page_is_in_section_8_with_an_exit_status() {
    let pages: Vec<(String, String)> = kabi::cli::docs::generate()
        .into_iter()
        .filter(|(rel, _)| rel.starts_with("man/"))
        .map(|(rel, d)| (rel, String::from_utf8(d).unwrap()))
        .collect();
    let cli = kabi::cli::Cli::command();
    let mut want = vec!["man/kabi.8".to_string()];
    for s in cli.get_subcommands().filter(|s| !s.is_hide_set()) {
        want.push(format!("man/kabi-{}.8", s.get_name()));
        for ss in s.get_subcommands().filter(|s| !s.is_hide_set()) {
            want.push(format!("man/kabi-{}-{}.8", s.get_name(), ss.get_name()));
        }
    }
    let mut have: Vec<String> = pages.iter().map(|(r, _)| r.clone()).collect();
    have.sort();
    want.sort();
    assert_eq!(have, want);
    for (rel, text) in &pages {
        let th = text.lines().find(|l| l.starts_with(".TH ")).unwrap();
        assert!(th.split_whitespace().nth(2) == Some("8"), "{rel}: {th}");
        let status = text
            .split(".SH \"EXIT STATUS\"")
            .nth(1)
            .or_else(|| text.split(".SH EXIT STATUS").nth(1))
            .unwrap_or_else(|| panic!("{rel}: no EXIT STATUS section:\n{text}"));
        let status = status.split("\n.SH ").next().unwrap();
        for code in ["0", "2"] {
            assert!(
                status
                    .lines()
                    .any(|l| l.starts_with("\\fB") && l.contains(code)),
                "{rel}: exit status {code} missing:\n{status}"
            );
        }
        assert!(!text.contains(".SH EXTRA"), "{rel}");
        assert!(!text.contains("gen-docs"), "{rel} names a hidden command");
    }
    // the page of weak-modules says how images are rebuilt; verify's names its codes
    let page = |n: &str| &pages.iter().find(|(r, _)| r == n).unwrap().1;
    assert!(page("man/kabi-weak-modules.8").contains("\\-\\-sysroot"));
    assert!(page("man/kabi-verify.8").contains("the \\-\\-timeout passed"));
}

/// The completions offer no hidden command or option (gen-docs, kmod's deprecated depmod
/// flags, RHEL options accepted for compatibility) and do offer the visible ones.
#[test]
fn completions_offer_nothing_hidden() {
    for (rel, data) in kabi::cli::docs::generate() {
        if !rel.starts_with("completions/") {
            continue;
        }
        let text = String::from_utf8(data).unwrap();
        for hidden in [
            "gen-docs",
            "gen_docs",
            "delete-modules",
            "check-initramfs-prog",
            "decompress-only",
        ] {
            assert!(!text.contains(hidden), "{rel} offers hidden {hidden}");
        }
        for visible in ["verify", "weak-modules", "no-initramfs", "dracut", "status"] {
            assert!(text.contains(visible), "{rel} lacks {visible}");
        }
    }
}
