//! Running Debian's kmod tools and kabi under the same names side by side.
//!
//! kabi is reached through a directory of symlinks (`modprobe`, `insmod`, `rmmod`, `lsmod`,
//! `modinfo`, `depmod` → the kabi binary) put first on `PATH`; kmod's through the system's
//! `PATH`. Both are started by name, so `argv[0]` is the same word. Each run happens in a
//! private mount namespace whose `/proc/cmdline` is a file of the test's choosing (kmod
//! reads the kernel command line from there; so does kabi), as kmod's own developers test.

use super::{in_ci, kabi, require_tool};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// What a run printed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Out {
    /// The exit status, or 128 + the signal that ended the program.
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Out {
    pub fn text(&self) -> String {
        format!(
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code,
            String::from_utf8_lossy(&self.stdout),
            String::from_utf8_lossy(&self.stderr)
        )
    }
}

/// The system's search path, without kabi.
pub const SYSTEM_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// The directory of kabi's kmod-named symlinks.
pub fn kabi_bin_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kmod-names");
        std::fs::create_dir_all(&dir).unwrap();
        for n in ["modprobe", "insmod", "rmmod", "lsmod", "modinfo", "depmod"] {
            let l = dir.join(n);
            let _ = std::fs::remove_file(&l);
            std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_kabi"), &l).unwrap();
        }
        dir
    })
    .clone()
}

/// The `unshare` flags that give this process a private mount namespace (`-m` as root,
/// `-r -m` through a user namespace otherwise), or `None` when neither works here (a
/// failure in CI).
pub fn namespace_flags() -> Option<&'static [&'static str]> {
    static FLAGS: OnceLock<Option<&'static [&'static str]>> = OnceLock::new();
    *FLAGS.get_or_init(|| {
        if !require_tool("unshare") {
            return None;
        }
        for flags in [&["-m"][..], &["-r", "-m"][..]] {
            let ok = Command::new("unshare")
                .args(flags)
                .args(["sh", "-c", "mount --bind /dev/null /proc/cmdline"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return Some(flags);
            }
        }
        assert!(
            !in_ci(),
            "no private mount namespace (unshare -m / -r -m) on this machine"
        );
        eprintln!("SKIPPED: cannot make a private mount namespace here");
        None
    })
}

/// One command run.
pub struct Run<'a> {
    pub prog: &'a str,
    pub args: Vec<String>,
    /// The kernel command line the program sees.
    pub cmdline: &'a str,
    pub env: Vec<(String, String)>,
    pub cwd: Option<&'a Path>,
}

impl<'a> Run<'a> {
    pub fn new(prog: &'a str, args: &[&str]) -> Run<'a> {
        Run {
            prog,
            args: args.iter().map(|s| s.to_string()).collect(),
            cmdline: "BOOT_IMAGE=/vmlinuz root=/dev/vda1 ro quiet",
            env: Vec::new(),
            cwd: None,
        }
    }

    pub fn cmdline(mut self, c: &'a str) -> Self {
        self.cmdline = c;
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    /// Run with kmod (`kabi == false`) or with kabi under the same name.
    pub fn run(&self, kabi: bool) -> Out {
        let flags = namespace_flags().expect("a private mount namespace");
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), format!("{}\n", self.cmdline)).unwrap();
        let path = if kabi {
            format!("{}:{SYSTEM_PATH}", kabi_bin_dir().display())
        } else {
            SYSTEM_PATH.to_string()
        };
        let mut c = Command::new("unshare");
        c.args(flags)
            .arg("sh")
            .arg("-c")
            .arg("mount --bind \"$0\" /proc/cmdline && exec \"$@\"")
            .arg(file.path())
            .arg(self.prog)
            .args(&self.args)
            .env("PATH", path)
            .env_remove("MODPROBE_OPTIONS")
            .env_remove("POSIXLY_CORRECT")
            .env("LC_ALL", "C.UTF-8");
        for (k, v) in &self.env {
            c.env(k, v);
        }
        if let Some(d) = self.cwd {
            c.current_dir(d);
        }
        let o = c.output().expect("run unshare");
        use std::os::unix::process::ExitStatusExt;
        Out {
            code: o
                .status
                .code()
                .unwrap_or_else(|| 128 + o.status.signal().unwrap_or(0)),
            stdout: o.stdout,
            stderr: o.stderr,
        }
    }

    /// kmod's and kabi's runs, and a description of the difference if any.
    pub fn compare(&self) -> (Out, Out, Option<String>) {
        let k = self.run(false);
        let b = self.run(true);
        let diff = (k != b).then(|| {
            format!(
                "{} {} (cmdline {:?}):\n=== kmod\n{}=== kabi\n{}",
                self.prog,
                self.args.join(" "),
                self.cmdline,
                k.text(),
                b.text()
            )
        });
        (k, b, diff)
    }
}

/// A real Debian kernel's modules, indexed by kmod's own depmod, below a root of their own:
/// `(root, kver)`. Made once per test process (hard links into the shared cache).
pub fn indexed_root() -> Option<(PathBuf, String)> {
    static ROOT: OnceLock<Option<(tempfile::TempDir, String)>> = OnceLock::new();
    let r = ROOT.get_or_init(|| {
        if !require_tool("depmod") || !require_tool("modprobe") {
            return None;
        }
        let src = super::fetch_kernel("cloud-amd64", None)?;
        let (sdir, kver) = super::module_dir(&src);
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().join("lib/modules");
        std::fs::create_dir_all(&base).unwrap();
        let st = Command::new("cp")
            .arg("-al")
            .arg(&sdir)
            .arg(&base)
            .status()
            .unwrap();
        assert!(st.success());
        for f in kabi::depmod::OUTPUTS {
            let _ = std::fs::remove_file(base.join(&kver).join(f));
        }
        let o = super::run(
            Command::new("depmod")
                .arg("-b")
                .arg(tmp.path())
                .arg("-C")
                .arg(tmp.path().join("no-depmod.d"))
                .arg(&kver),
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        Some((tmp, kver))
    });
    r.as_ref().map(|(t, k)| (t.path().to_path_buf(), k.clone()))
}

/// `kabi` itself, with the same namespace and command line (for `kabi load`).
pub fn kabi_in_ns(cmdline: &str, args: &[String]) -> Out {
    let flags = namespace_flags().expect("a private mount namespace");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), format!("{cmdline}\n")).unwrap();
    let exe = kabi().get_program().to_os_string();
    let o = Command::new("unshare")
        .args(flags)
        .arg("sh")
        .arg("-c")
        .arg("mount --bind \"$0\" /proc/cmdline && exec \"$@\"")
        .arg(file.path())
        .arg(exe)
        .args(args)
        .env_remove("MODPROBE_OPTIONS")
        .output()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    Out {
        code: o
            .status
            .code()
            .unwrap_or_else(|| 128 + o.status.signal().unwrap_or(0)),
        stdout: o.stdout,
        stderr: o.stderr,
    }
}
