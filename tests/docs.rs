//! The man pages and completions in `dist/` are the ones the CLI definition generates now,
//! and `scripts/install.sh` installs everything into a throwaway root.

mod common;

#[test]
fn man_pages_and_completions_are_current() {
    let mut stale = Vec::new();
    for (rel, data) in kabi::cli::docs::generate() {
        let p = common::repo().join("dist").join(&rel);
        if std::fs::read(&p).ok().as_deref() != Some(&data[..]) {
            stale.push(rel);
        }
    }
    assert!(
        stale.is_empty(),
        "out of date (run `cargo run --release -- gen-docs dist`): {stale:?}"
    );
}

#[test]
fn install_puts_everything_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    let out = common::run(
        std::process::Command::new("bash")
            .arg(common::repo().join("scripts/install.sh"))
            .args(["--destdir"])
            .arg(tmp.path())
            .args(["--bin", env!("CARGO_BIN_EXE_kabi"), "--kmod-names"]),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = tmp.path().join("usr");
    for f in [
        "bin/kabi",
        "share/man/man1/kabi.1",
        "share/man/man1/kabi-verify.1",
        "share/bash-completion/completions/kabi",
        "share/zsh/vendor-completions/_kabi",
        "share/fish/vendor_completions.d/kabi.fish",
        "lib/systemd/system/kabi-verify.service",
        "lib/dracut/modules.d/90kabi/module-setup.sh",
        "lib/kernel/install.d/50-kabi-weak-modules.install",
    ] {
        assert!(r.join(f).is_file(), "{f} missing");
    }
    assert_eq!(
        std::fs::read_link(r.join("lib/kabi/bin/modprobe")).unwrap(),
        std::path::Path::new("/usr/bin/kabi")
    );
}
