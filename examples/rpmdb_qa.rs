//! `rpm -qa` for a root, read natively by kabi: one `NAME-VERSION-RELEASE.ARCH` per package,
//! in the database's order (what `rpm --root ROOT -qa` prints). With `--files`, every file
//! too (`rpm -qal`). Used by scripts/bench-rpmdb.sh to compare with rpm.
//!
//!     cargo run --release --example rpmdb_qa -- ROOT [--files]

use std::io::Write;
use std::os::unix::ffi::OsStrExt;

fn main() {
    let mut args = std::env::args_os().skip(1);
    let root = args.next().expect("usage: rpmdb_qa ROOT [--files]");
    let files = args.next().is_some_and(|a| a == "--files");
    let opened = kabi::root::Root::open(&root).map_err(kabi::rpmdb::RpmDbError::from);
    let db = match opened.and_then(|r| kabi::rpmdb::read_root(&r)) {
        Ok(Some(db)) => db,
        Ok(None) => {
            eprintln!("rpmdb_qa: no rpm database below {}", root.to_string_lossy());
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("rpmdb_qa: {e}");
            std::process::exit(2);
        }
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for p in &db.packages {
        if files {
            for f in &p.files {
                out.write_all(f.as_os_str().as_bytes()).unwrap();
                out.write_all(b"\n").unwrap();
            }
        } else {
            let arch = p.arch.as_deref().unwrap_or("(none)");
            writeln!(out, "{}.{arch}", p.nvr()).unwrap();
        }
    }
}
