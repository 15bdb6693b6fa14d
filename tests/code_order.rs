//! The code one `kabi load` runs comes first in the static binary, together: the functions of
//! `build/hot-functions.txt` (made by `scripts/hot-functions.sh` from callgrind's profile of
//! the loads of `scripts/bench-load.sh`) are given to the linker as its symbol order. A load
//! then touches a few 64 KiB windows of the binary's code (the kernel maps 64 KiB of a file
//! around each page fault) instead of dozens: in an emulated guest each fault costs tens of
//! microseconds.
mod common;

use object::{Object, ObjectSection, ObjectSymbol, SymbolKind};

/// The names of the order file (comments and blank lines skipped, as lld skips them).
fn hot_functions() -> Vec<String> {
    let path = common::repo().join("build/hot-functions.txt");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_functions_of_a_load_lie_together_at_the_start_of_the_code() {
    let hot = hot_functions();
    assert!(hot.len() >= 100, "{} names only", hot.len());
    let bin = common::qemu::static_kabi_guest();
    let data = std::fs::read(&bin).unwrap();
    let elf = object::File::parse(&*data).unwrap();
    let text: std::collections::HashMap<&str, (u64, u64)> = elf
        .symbols()
        .filter(|s| s.kind() == SymbolKind::Text && s.is_definition())
        .filter_map(|s| Some((s.name().ok()?, (s.address(), s.size()))))
        .collect();
    let found: Vec<(u64, u64)> = hot
        .iter()
        .filter_map(|n| text.get(n.as_str()).copied())
        .collect();
    // a list gone stale (functions renamed or moved since it was made) orders nothing
    assert!(
        found.len() * 10 >= hot.len() * 9,
        "only {} of the {} functions of build/hot-functions.txt are in {}: run scripts/hot-functions.sh",
        found.len(),
        hot.len(),
        bin.display()
    );
    let window = |a: u64| a >> 16;
    let windows: std::collections::BTreeSet<u64> = found
        .iter()
        .flat_map(|&(a, s)| window(a)..=window(a + s.max(1) - 1))
        .collect();
    let bytes: u64 = found.iter().map(|&(_, s)| s).sum();
    let least = bytes.div_ceil(1 << 16);
    // together: as few windows as their size needs, give or take the alignment of the first
    // and the last (without the order: 54 windows for about 6 windows' worth of code)
    assert!(
        windows.len() as u64 <= least + 2,
        "the {} functions ({bytes} bytes, {least} windows' worth) span {} windows of 64 KiB",
        found.len(),
        windows.len()
    );
    // and first: in the code's first windows
    let code_start = elf
        .sections()
        .filter(|s| s.kind() == object::SectionKind::Text)
        .map(|s| s.address())
        .min()
        .unwrap();
    let last = windows.iter().max().unwrap();
    assert!(
        *last <= window(code_start) + least + 2,
        "the functions end in window {last:#x}, the code starts in {:#x}",
        window(code_start)
    );
}

/// The decoders pick the CPU's vector instructions at run time. zlib-rs (gzip: RHEL's
/// `/boot/symvers-K.gz`, `.ko.gz` modules, initramfs images) does so only with its `std`
/// feature, which flate2 turns on with `runtime_detection`, a default feature that
/// `default-features = false` (to leave out miniz_oxide) also drops. Without it, inflate runs
/// its generic code and the gzip CRC its table-driven loop: a Debian cloud kernel's
/// symvers.gz (185 KiB, 907,060 bytes out) decodes in 1.80 ms instead of 0.98 ms (best of
/// 50, this host).
#[test]
fn the_decoders_detect_the_cpu_at_run_time() {
    let out = std::process::Command::new(env!("CARGO"))
        // --locked, not --offline: with every package already there, as after any build,
        // cargo reads no network; after a build for one platform only, it may fetch the
        // other platforms' manifests
        .args([
            "metadata",
            "--format-version",
            "1",
            "--locked",
            "--manifest-path",
        ])
        .arg(common::repo().join("Cargo.toml"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let features = |name: &str| -> Vec<String> {
        let id = meta["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name} is not a dependency"))["id"]
            .clone();
        meta["resolve"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["id"] == id)
            .unwrap()["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap().to_string())
            .collect()
    };
    // (the features resolved for the whole build, merged over every dependent: only kabi
    // pulls in flate2 and zlib-rs, so theirs are kabi's choice)
    for (krate, feature) in [
        ("flate2", "runtime_detection"),
        ("zlib-rs", "std"),
        ("crc32fast", "std"),
    ] {
        let f = features(krate);
        assert!(
            f.iter().any(|x| x == feature),
            "{krate} is built without its `{feature}` feature (CPU detection at run time): {f:?}"
        );
    }
}
