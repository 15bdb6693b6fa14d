//! Booting a real kernel under qemu with kabi as `/init` (see "Booting a real kernel under
//! qemu" in the shared test material).
//!
//! [`static_kabi_guest`] builds kabi as a static non-PIE executable for the initramfs, and
//! [`static_kabi`] as the static PIE that is shipped (once per test process each, in
//! `target/static-guest` and `target/static`, so that they never wait on or invalidate the
//! normal target directory);
//! [`Initramfs`] packs a gzip-compressed cpio `newc` archive without root (device nodes are
//! plain archive entries); [`boot`] runs `qemu-system-x86_64` under TCG and parses the markers
//! kabi's init personality prints on the serial console:
//!
//! ```text
//! KABI-RUN: load -v dummy numdummies=2
//! ...output of the command, and kernel lines printed meanwhile...
//! KABI-EXIT: 0 (0.012 s)
//! KABI-DONE
//! ```
//!
//! As with [`super::fetch_kernel`], a missing qemu is a test failure in CI and a skip elsewhere
//! ([`require_qemu`]).

use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::{in_ci, kabi, repo};

/// The qemu binary [`boot`] runs.
pub const QEMU: &str = "qemu-system-x86_64";

/// Kernel parameters [`boot`] always passes, before the caller's (the last `loglevel=` wins).
/// With `loglevel=3` only messages of level 0-2 reach the console: not the module loader's
/// `pr_warn`s (`disagrees about version of symbol`, `Unknown symbol`); pass
/// [`SHOW_WARNINGS`] to see them in [`Run::output`].
pub const BASE_APPEND: &str = "console=ttyS0 panic=-1 quiet loglevel=3";

/// The kernel parameter that lets warnings (level 4) reach the console; it also shows a few
/// lines of the boot (`tsc: Unable to calibrate against PIT`, `mtrr: ...`) before the first
/// marker.
pub const SHOW_WARNINGS: &str = "loglevel=5";

/// Is qemu runnable? If not: in CI that is a failure (scripts/deps.sh installs it);
/// elsewhere the test says so on stderr and is skipped.
pub fn require_qemu() -> bool {
    let found = Command::new(QEMU)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            !in_ci(),
            "{QEMU} is missing: scripts/deps.sh must install qemu-system-x86 (CI=true)"
        );
        eprintln!("SKIPPED: {QEMU} is not installed (apt-get install qemu-system-x86)");
    }
    found
}

/// kabi built as it is shipped: a static PIE (glibc, `+crt-static`, no debug info), once per
/// test process, in `target/static` (what `scripts/package.sh` packs: lintian accepts a
/// static PIE, not a static non-PIE executable). Cargo's own lock on the directory
/// serialises test processes that build it at the same time.
pub fn static_kabi() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| build_static("target/static", false))
        .clone()
}

/// kabi built as a static, non-PIE executable for the guests' initramfs, in
/// `target/static-guest`: as Debian's busybox-static is, so that under TCG a fixed address lets
/// qemu reuse its translated code from one process to the next; a static PIE, loaded at a new
/// address each time, costs about 90 ms per exec in the guest (tests/qemu_load_cost.rs).
/// Built with `--cfg kabi_phases` when the tests are (tests/qemu_phases.rs), in its own
/// directory.
pub fn static_kabi_guest() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    let dir = match cfg!(kabi_phases) {
        true => "target/static-guest-phases",
        false => "target/static-guest",
    };
    BIN.get_or_init(|| build_static(dir, true)).clone()
}

/// kabi for `tests/qemu_code_touch.rs` (built when the tests are, with `--cfg kabi_touch`): the
/// guests' binary with every function of its own code starting a page (LLVM's
/// `-align-all-functions=12`), so that the pages a process touched name the functions it ran,
/// and with the `KABI_TOUCH` report of those pages compiled in; in `target/static-guest-touch`.
/// The functions keep the names of the shipped binary's (a compiler flag does not change
/// them), which `build/hot-functions.txt` lists.
#[cfg(kabi_touch)]
pub fn static_kabi_touch() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| build_static("target/static-guest-touch", true))
        .clone()
}

fn build_static(dir: &str, fixed_address: bool) -> PathBuf {
    let target = "x86_64-unknown-linux-gnu";
    let dir = repo().join(dir);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    // the guests' binary is optimised as the shipped one is (whole-program, one unit): what
    // the guests measure is what users run; the package's copy is only inspected, and is
    // built faster
    if !fixed_address {
        cmd.env("CARGO_PROFILE_RELEASE_LTO", "false")
            .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "16");
    }
    // as scripts/package.sh builds it: static, and the functions of a load placed first
    // (build/hot-functions.txt, tests/code_order.rs)
    let mut flags = vec!["-C".to_string(), "target-feature=+crt-static".to_string()];
    if fixed_address {
        flags.extend(["-C".into(), "relocation-model=static".into()]);
    }
    if dir.ends_with("target/static-guest-phases") {
        flags.extend(["--cfg".into(), "kabi_phases".into()]);
    }
    if dir.ends_with("target/static-guest-touch") {
        flags.extend([
            "--cfg".into(),
            "kabi_touch".into(),
            "-C".into(),
            "llvm-args=-align-all-functions=12".into(),
        ]);
    }
    // under a name of its content: cargo relinks when the list changes (it does not look
    // into files named by link arguments)
    let order = repo().join("build/hot-functions.txt");
    let list = std::fs::read(&order).unwrap_or_else(|e| panic!("{}: {e}", order.display()));
    let order = dir.join(format!("hot-functions.{:08x}.txt", crc32fast::hash(&list)));
    std::fs::create_dir_all(&dir).unwrap();
    if !order.exists() {
        std::fs::write(&order, &list).unwrap();
    }
    flags.extend([
        "-C".into(),
        format!("link-arg=-Wl,--symbol-ordering-file={}", order.display()),
        "-C".into(),
        "link-arg=-Wl,--no-warn-symbol-ordering".into(),
    ]);
    let out = cmd
        .current_dir(repo())
        .args(["build", "--release", "--bin", "kabi", "--target", target])
        .env("CARGO_TARGET_DIR", &dir)
        .env_remove("RUSTFLAGS")
        .env("CARGO_ENCODED_RUSTFLAGS", flags.join("\x1f"))
        .env("CARGO_PROFILE_RELEASE_DEBUG", "0")
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo")
        .output()
        .expect("run cargo build for the static kabi");
    assert!(
        out.status.success(),
        "building the static kabi failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bin = dir.join(target).join("release/kabi");
    let elf = std::fs::read(&bin).unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
    assert!(
        !has_interp(&elf),
        "{} has a program interpreter: it is not static",
        bin.display()
    );
    // ET_EXEC (2) for a fixed address, ET_DYN (3) for a static PIE
    assert_eq!(
        u16::from_le_bytes([elf[16], elf[17]]),
        if fixed_address { 2 } else { 3 },
        "{}: not the ELF type asked for (fixed address: {fixed_address})",
        bin.display()
    );
    bin
}

/// Does this ELF64 little-endian executable have a PT_INTERP segment (a dynamic loader)?
fn has_interp(elf: &[u8]) -> bool {
    assert!(
        elf.len() > 0x40 && elf.starts_with(b"\x7fELF\x02\x01"),
        "not an ELF64 LSB file"
    );
    let u16_at = |o: usize| u16::from_le_bytes(elf[o..o + 2].try_into().unwrap()) as usize;
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..phnum).any(|i| {
        let o = phoff + i * phentsize;
        u32::from_le_bytes(elf[o..o + 4].try_into().unwrap()) == 3 // PT_INTERP
    })
}

/// A gzip-compressed cpio `newc` archive, as the kernel unpacks into its rootfs. Paths are
/// absolute or relative to the root (`/dev/console` = `dev/console`); missing parent
/// directories are added (mode 0755) before an entry.
pub struct Initramfs {
    cpio: Vec<u8>,
    dirs: HashSet<String>,
    ino: u32,
}

impl Default for Initramfs {
    fn default() -> Self {
        Self::new()
    }
}

impl Initramfs {
    /// An archive with `/dev`, `/dev/console` (5,1: without it `/init` has no output), `/proc`
    /// and `/sys`, and nothing else.
    pub fn new() -> Self {
        let mut ird = Initramfs {
            cpio: Vec::new(),
            dirs: HashSet::new(),
            ino: 0,
        };
        ird.add_dir("/dev");
        ird.add_char_dev("/dev/console", 5, 1);
        ird.add_dir("/proc");
        ird.add_dir("/sys");
        ird
    }

    /// [`Initramfs::new`] with the static kabi as `/init` and `script` as `/etc/kabi-init`
    /// (one kabi command line per line; `#` comments).
    pub fn kabi(script: &str) -> Self {
        let mut ird = Self::new();
        let bin = static_kabi_guest();
        let exe = std::fs::read(&bin).unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
        ird.add_file("/init", &exe, 0o755);
        ird.add_file("/etc/kabi-init", script.as_bytes(), 0o644);
        ird
    }

    pub fn add_dir(&mut self, path: &str) {
        let p = normalize(path);
        if p.is_empty() || self.dirs.contains(&p) {
            return;
        }
        self.parents(&p);
        self.dirs.insert(p.clone());
        self.entry(&p, 0o040_755, 2, 0, 0, b"");
    }

    pub fn add_file(&mut self, path: &str, data: &[u8], mode: u32) {
        let p = normalize(path);
        self.parents(&p);
        self.entry(&p, 0o100_000 | (mode & 0o7777), 1, 0, 0, data);
    }

    pub fn add_symlink(&mut self, path: &str, target: &str) {
        let p = normalize(path);
        self.parents(&p);
        self.entry(&p, 0o120_777, 1, 0, 0, target.as_bytes());
    }

    /// A character device node (mode 0600): only an archive entry, no mknod on the host.
    pub fn add_char_dev(&mut self, path: &str, major: u32, minor: u32) {
        let p = normalize(path);
        self.parents(&p);
        self.entry(&p, 0o020_600, 1, major, minor, b"");
    }

    /// Copy a host directory recursively to `guest` (files keep their permission bits;
    /// symbolic links are kept as links).
    pub fn add_tree(&mut self, host: &Path, guest: &str) {
        let guest = normalize(guest);
        self.add_dir(&guest);
        let mut entries: Vec<_> = std::fs::read_dir(host)
            .unwrap_or_else(|e| panic!("{}: {e}", host.display()))
            .map(|e| e.unwrap())
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().into_string().unwrap();
            let (h, g) = (e.path(), format!("{guest}/{name}"));
            let ft = e.file_type().unwrap();
            if ft.is_symlink() {
                let t = std::fs::read_link(&h).unwrap();
                self.add_symlink(&g, t.to_str().unwrap());
            } else if ft.is_dir() {
                self.add_tree(&h, &g);
            } else {
                use std::os::unix::fs::PermissionsExt;
                let mode = e.metadata().unwrap().permissions().mode();
                let data = std::fs::read(&h).unwrap_or_else(|e| panic!("{}: {e}", h.display()));
                self.add_file(&g, &data, mode);
            }
        }
    }

    /// `/lib/modules/<kver>` of the unpacked kernel at `kernel_root` (what
    /// [`super::fetch_kernel`] gives) reduced to `modules` (paths relative to its module
    /// directory, e.g. `kernel/drivers/net/dummy.ko`) and `extra` (host file, path relative to
    /// the module directory: vendor modules, say), with the tree's `modules.order`,
    /// `modules.builtin` and `modules.builtin.modinfo`, indexed by the host kabi's depmod (so
    /// names and aliases resolve in the guest). Returns the kernel release.
    pub fn add_modules(
        &mut self,
        kernel_root: &Path,
        modules: &[&str],
        extra: &[(&Path, &str)],
    ) -> String {
        let (src, kver) = super::module_dir(kernel_root);
        let staging = tempfile::tempdir().unwrap();
        let dst = staging.path().join("lib/modules").join(&kver);
        let copy = |from: &Path, rel: &str| {
            let to = dst.join(rel);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(from, &to).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
        };
        for f in [
            "modules.order",
            "modules.builtin",
            "modules.builtin.modinfo",
        ] {
            copy(&src.join(f), f);
        }
        for m in modules {
            copy(&src.join(m), m);
        }
        for (from, rel) in extra {
            copy(from, rel);
        }
        let empty = staging.path().join("no-depmod.d");
        std::fs::create_dir(&empty).unwrap();
        let out = super::run(
            kabi()
                .arg("depmod")
                .arg("--no-cache")
                .arg("--root")
                .arg(staging.path())
                .arg("-C")
                .arg(&empty)
                .arg(&kver),
        );
        assert!(
            out.status.success(),
            "kabi depmod of the initramfs modules failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.add_tree(&dst, &format!("/lib/modules/{kver}"));
        kver
    }

    /// The archive, with its trailer, gzip-compressed.
    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, 1, 0, 0, b"");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&self.cpio).unwrap();
        gz.finish().unwrap()
    }

    fn parents(&mut self, p: &str) {
        if let Some((parent, _)) = p.rsplit_once('/') {
            self.add_dir(parent);
        }
    }

    fn entry(&mut self, name: &str, mode: u32, nlink: u32, rmaj: u32, rmin: u32, data: &[u8]) {
        self.ino += 1;
        let fields = [
            self.ino,
            mode,
            0, // uid
            0, // gid
            nlink,
            0, // mtime
            u32::try_from(data.len()).expect("file too large for cpio newc"),
            0, // devmajor
            0, // devminor
            rmaj,
            rmin,
            name.len() as u32 + 1,
            0, // check
        ];
        self.cpio.extend_from_slice(b"070701");
        for f in fields {
            self.cpio.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.cpio.extend_from_slice(name.as_bytes());
        self.cpio.push(0);
        self.pad();
        self.cpio.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.cpio.len().is_multiple_of(4) {
            self.cpio.push(0);
        }
    }
}

fn normalize(path: &str) -> String {
    path.trim_matches('/').to_string()
}

/// One line of `/etc/kabi-init` as run by the guest.
#[derive(Debug, Clone)]
pub struct Run {
    /// The command line (after `KABI-RUN: `).
    pub line: String,
    /// Everything the console showed between the `KABI-RUN` and `KABI-EXIT` markers: the
    /// command's output and any kernel line printed meanwhile.
    pub output: String,
    /// The exit code (None: no `KABI-EXIT`, the guest died or timed out during the command).
    pub exit: Option<i32>,
    /// The seconds the guest measured for the command.
    pub secs: Option<f64>,
}

/// What a boot printed on the serial console.
#[derive(Debug, Clone)]
pub struct BootLog {
    /// The whole console output (`\r\n` made `\n`).
    pub raw: String,
    /// qemu's standard error.
    pub stderr: String,
    pub runs: Vec<Run>,
    /// `KABI-DONE` was printed (every line ran, then the guest powered off).
    pub done: bool,
    /// qemu was killed at the timeout.
    pub timed_out: bool,
    /// Wall time from starting qemu to its exit (or kill).
    pub elapsed: Duration,
}

impl BootLog {
    /// The run of the `i`th command line, with the whole log in the message when missing.
    pub fn run(&self, i: usize) -> &Run {
        self.runs
            .get(i)
            .unwrap_or_else(|| panic!("no run #{i} in the boot log:\n{}", self.raw))
    }

    /// The first run whose command line is `line`.
    pub fn find(&self, line: &str) -> &Run {
        self.runs
            .iter()
            .find(|r| r.line == line)
            .unwrap_or_else(|| panic!("no run of {line:?} in the boot log:\n{}", self.raw))
    }

    /// Panic with the whole log unless the guest printed `KABI-DONE`.
    pub fn assert_done(&self) {
        assert!(
            self.done,
            "the guest did not finish its script (timed out: {}, {:.1} s):\n{}\nqemu stderr:\n{}",
            self.timed_out,
            self.elapsed.as_secs_f64(),
            self.raw,
            self.stderr
        );
    }

    /// Parse the console output of a boot.
    pub fn parse(raw: &str) -> (Vec<Run>, bool) {
        let mut runs: Vec<Run> = Vec::new();
        let mut done = false;
        // A kernel line may land in the middle of a line of ours: look for markers anywhere.
        for line in raw.lines() {
            if let Some(at) = line.find("KABI-RUN: ") {
                runs.push(Run {
                    line: line[at + "KABI-RUN: ".len()..].trim_end().to_string(),
                    output: String::new(),
                    exit: None,
                    secs: None,
                });
            } else if let Some(at) = line.find("KABI-EXIT: ") {
                let rest = &line[at + "KABI-EXIT: ".len()..];
                let mut words = rest.split_whitespace();
                let code = words.next().and_then(|w| w.parse().ok());
                let secs = words
                    .next()
                    .and_then(|w| w.strip_prefix('('))
                    .and_then(|w| w.parse().ok());
                if let Some(r) = runs.last_mut().filter(|r| r.exit.is_none()) {
                    r.exit = code;
                    r.secs = secs;
                }
            } else if line.contains("KABI-DONE") {
                done = true;
            } else if let Some(r) = runs.last_mut().filter(|r| r.exit.is_none()) {
                r.output.push_str(line);
                r.output.push('\n');
            }
        }
        (runs, done)
    }
}

/// Boot `kernel` with `initramfs` (what [`Initramfs::finish`] gives) under qemu TCG, 512 MB,
/// 2 CPUs, console on the first serial port, with [`BASE_APPEND`] then `append` as kernel
/// parameters; kill qemu after `timeout`. The caller checks [`require_qemu`] first.
pub fn boot(kernel: &Path, initramfs: &[u8], append: &str, timeout: Duration) -> BootLog {
    let dir = tempfile::tempdir().unwrap();
    let initrd = dir.path().join("initramfs.cpio.gz");
    std::fs::write(&initrd, initramfs).unwrap();
    let started = Instant::now();
    let mut child = Command::new(QEMU)
        .args(["-accel", "tcg", "-cpu", "max", "-m", "512", "-smp", "2"])
        .args([
            "-nographic",
            "-no-reboot",
            "-nodefaults",
            "-serial",
            "stdio",
        ])
        .arg("-kernel")
        .arg(kernel)
        .arg("-initrd")
        .arg(&initrd)
        .arg("-append")
        .arg(format!("{BASE_APPEND} {append}"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {QEMU}: {e}"));
    let reader = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            buf
        })
    };
    let stdout = reader(Box::new(child.stdout.take().unwrap()));
    let stderr = reader(Box::new(child.stderr.take().unwrap()));
    let mut timed_out = false;
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() >= timeout {
            timed_out = true;
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = started.elapsed();
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).replace('\r', "");
    let raw = text(stdout.join().unwrap());
    let stderr = text(stderr.join().unwrap());
    let (runs, done) = BootLog::parse(&raw);
    BootLog {
        raw,
        stderr,
        runs,
        done,
        timed_out,
        elapsed,
    }
}

/// The kernel image of an unpacked kernel: `<root>/boot/vmlinuz-<kver>`.
pub fn vmlinuz(kernel_root: &Path) -> PathBuf {
    let (_, kver) = super::module_dir(kernel_root);
    kernel_root.join("boot").join(format!("vmlinuz-{kver}"))
}

/// Up to 30 of the kernel's `fs/nls` modules (at least 20) that are independent of each other
/// (none needs another, none is needed), by name, with their paths below the module directory
/// `dir`. The modinfo `depends` field says, except for nls_euc-jp, whose init takes nls_cp932
/// at run time (`load_nls("cp932")`), which no index shows.
pub fn independent_nls(dir: &Path) -> (Vec<String>, Vec<String>) {
    let mut linked = std::collections::HashSet::from(["nls_euc_jp".to_string()]);
    for e in std::fs::read_dir(dir.join("kernel/fs/nls")).unwrap() {
        let m = kabi::Module::open(e.unwrap().path()).unwrap();
        let deps = m
            .modinfo_first("depends")
            .map(|d| String::from_utf8_lossy(d).into_owned())
            .unwrap_or_default();
        let deps: Vec<String> = deps
            .split(',')
            .filter(|d| !d.is_empty())
            .map(|d| d.replace('-', "_"))
            .collect();
        if !deps.is_empty() {
            linked.insert(m.name.replace('-', "_"));
            linked.extend(deps);
        }
    }
    let mut names: Vec<String> = std::fs::read_dir(dir.join("kernel/fs/nls"))
        .unwrap()
        .filter_map(|e| {
            let n = e.unwrap().file_name().to_string_lossy().into_owned();
            n.strip_suffix(".ko").map(str::to_string)
        })
        .filter(|n| n.starts_with("nls_") && !linked.contains(&n.replace('-', "_")))
        .collect();
    names.sort();
    names.truncate(30);
    assert!(names.len() >= 20, "too few nls modules: {names:?}");
    let mods = names
        .iter()
        .map(|n| format!("kernel/fs/nls/{n}.ko"))
        .collect();
    (names, mods)
}

/// What the guest's busybox comparisons need: qemu and busybox-static installed, the Debian
/// cloud kernel (its root) and its module directory, and its independent `nls` modules
/// ([`independent_nls`]). `None` where something is missing (a failure under `CI=true`).
pub struct NlsBench {
    pub busybox: PathBuf,
    pub root: PathBuf,
    pub dir: PathBuf,
    pub names: Vec<String>,
    pub mods: Vec<String>,
}

impl NlsBench {
    /// Put into `ird` what the benches' scripts run: busybox as `/bin/busybox`, `/bin/kabi` (a
    /// link to `/init`), the modules with their indexes, and each module again as a vendor's
    /// file, `/vendor/NAME.ko`.
    pub fn add_to(&self, ird: &mut Initramfs) {
        ird.add_file(
            "/bin/busybox",
            &std::fs::read(&self.busybox).unwrap(),
            0o755,
        );
        ird.add_symlink("/bin/kabi", "/init");
        let refs: Vec<&str> = self.mods.iter().map(String::as_str).collect();
        ird.add_modules(&self.root, &refs, &[]);
        for (n, m) in self.names.iter().zip(&self.mods) {
            ird.add_file(
                &format!("/vendor/{n}.ko"),
                &std::fs::read(self.dir.join(m)).unwrap(),
                0o644,
            );
        }
    }
}

pub fn nls_bench() -> Option<NlsBench> {
    if !require_qemu() || !super::require_tool("busybox") {
        return None;
    }
    let root = super::fetch_kernel("cloud-amd64", None)?;
    let (dir, _) = super::module_dir(&root);
    let (names, mods) = independent_nls(&dir);
    Some(NlsBench {
        busybox: PathBuf::from("/bin/busybox"),
        root,
        dir,
        names,
        mods,
    })
}

/// The median of `v` (sorted in place; of an even count, the upper middle).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
