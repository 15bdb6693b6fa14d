#![no_main]
//! depmod's extraction on arbitrary bytes: from memory, and from a file through the
//! sections-only reader, which must agree with reading the whole file.

use kabi::depmod::scan;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn scratch() -> &'static std::path::Path {
    static P: OnceLock<std::path::PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let dir = if std::path::Path::new("/dev/shm").is_dir() {
            std::path::PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        dir.join(format!("kabi-fuzz-depmod-scan-{}.ko", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let whole = scan::scan_bytes(data);
    std::fs::write(scratch(), data).expect("write the scratch file");
    let sparse = scan::scan_file(scratch());
    if let (Ok(a), Ok(b)) = (&whole, &sparse) {
        assert_eq!(a, b, "the sections-only read disagrees with the whole read");
    }
    assert_eq!(whole.is_ok(), sparse.is_ok(), "{whole:?} / {sparse:?}");
    // the sections-only reader whatever the size: when it answers, it agrees
    let f = std::fs::File::open(scratch()).expect("open the scratch file");
    if let Some(r) = scan::scan_sparse(&f, data.len() as u64) {
        assert_eq!(
            whole.as_ref().ok(),
            Some(&r),
            "sections-only read disagrees"
        );
    }
});
