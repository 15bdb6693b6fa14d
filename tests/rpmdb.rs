//! The rpm database reader (kabi::rpmdb) against Debian's rpm 4.18 on roots where that rpm
//! installed real packages: SUSE-style KMPs holding vendor modules built against Debian
//! headers, and 300 small noarch packages (testdata/build-kmp.sh). Every package, every
//! file, every provide and require, epoch, version, release and arch must equal what
//! `rpm --root ROOT --dbpath DBPATH -qa --qf ...` prints; reading must write nothing into the
//! root; damaged databases must give an error naming the file, never a panic or a hang; and
//! rpmvercmp must agree with rpm's own `rpm.vercmp` on thousands of pairs.

mod common;

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::kmp::{self, SYSIMAGE_RPM, VAR_LIB_RPM};
use kabi::rpmdb::{self, Backend, RpmDbError};

/// Read the rpm database of the root directory `dir`.
fn read_root(dir: &Path) -> Result<Option<rpmdb::RpmDb>, rpmdb::RpmDbError> {
    rpmdb::read_root(&kabi::root::Root::open(dir)?)
}

fn lines(b: &[u8]) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = b
        .split(|&c| c == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    v.sort();
    v
}

fn show(v: &[Vec<u8>]) -> String {
    v.iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

fn assert_same(what: &str, ours: Vec<Vec<u8>>, rpm: Vec<Vec<u8>>) {
    let mut ours = ours;
    ours.sort();
    if ours != rpm {
        let o: std::collections::BTreeSet<_> = ours.iter().collect();
        let r: std::collections::BTreeSet<_> = rpm.iter().collect();
        let only_ours: Vec<Vec<u8>> = o.difference(&r).map(|x| x.to_vec()).collect();
        let only_rpm: Vec<Vec<u8>> = r.difference(&o).map(|x| x.to_vec()).collect();
        panic!(
            "{what}: kabi and rpm disagree ({} vs {} lines)\nonly kabi:\n{}\nonly rpm:\n{}",
            ours.len(),
            rpm.len(),
            show(&only_ours[..only_ours.len().min(20)]),
            show(&only_rpm[..only_rpm.len().min(20)])
        );
    }
}

/// Compare everything kabi reads from the root's database with what rpm prints.
fn check_against_rpm(root: &Path, dbpath: &str, expect_packages: usize) {
    let db = read_root(root)
        .unwrap_or_else(|e| panic!("{e}"))
        .expect("a database");
    assert_eq!(db.location.backend, Backend::Sqlite);
    assert_eq!(db.location.dbpath, Path::new(dbpath));
    assert_eq!(db.packages.len(), expect_packages);
    assert!(!db.pending_wal);
    compare_with_rpm(&db, expect_packages, &|fmt| kmp::rpm_qa(root, dbpath, fmt));
    // rpm lists a SQLite database in package-number order
    let order: Vec<u32> = db.packages.iter().map(|p| p.instance).collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted);
}

/// Compare the packages, files, provides and requires of `db` with what rpm prints for the
/// same database (`rpm_qa(FORMAT)` gives `rpm -qa --qf FORMAT`).
fn compare_with_rpm(db: &rpmdb::RpmDb, expect_packages: usize, rpm_qa: &dyn Fn(&str) -> Vec<u8>) {
    let none = |s: &Option<String>| s.clone().unwrap_or_else(|| "(none)".into());
    let ours: Vec<Vec<u8>> = db
        .packages
        .iter()
        .map(|p| {
            format!(
                "{}\t{}\t{}\t{}\t{}\t{}",
                p.instance,
                p.name,
                p.epoch.map_or("(none)".to_string(), |e| e.to_string()),
                p.version,
                p.release,
                none(&p.arch)
            )
            .into_bytes()
        })
        .collect();
    let theirs = lines(&rpm_qa(
        "%{dbinstance}\t%{name}\t%{epoch}\t%{version}\t%{release}\t%{arch}\n",
    ));
    assert_eq!(theirs.len(), expect_packages, "rpm -qa saw another count");
    assert_same("packages", ours, theirs);

    let mut ours = Vec::new();
    for p in &db.packages {
        for f in &p.files {
            let mut l = format!("{}\t", p.instance).into_bytes();
            l.extend_from_slice(f.as_os_str().as_bytes());
            ours.push(l);
        }
    }
    let n_files = ours.len();
    let theirs = lines(&rpm_qa("[%{=dbinstance}\t%{filenames}\n]"));
    assert_same("files", ours, theirs);

    for (what, fmt) in [
        (
            "provides",
            "[%{=dbinstance}\t%{providename}\t%{provideflags}\t%{provideversion}\n]",
        ),
        (
            "requires",
            "[%{=dbinstance}\t%{requirename}\t%{requireflags}\t%{requireversion}\n]",
        ),
    ] {
        let mut ours = Vec::new();
        for p in &db.packages {
            let deps = if what == "provides" {
                &p.provides
            } else {
                &p.requires
            };
            for d in deps {
                ours.push(
                    format!("{}\t{}\t{}\t{}", p.instance, d.name, d.flags, d.version).into_bytes(),
                );
            }
        }
        assert!(!ours.is_empty(), "no {what} read at all");
        let theirs = lines(&rpm_qa(fmt));
        assert_same(what, ours, theirs);
    }
    eprintln!(
        "{}: {} packages, {n_files} files agree with rpm",
        db.path.display(),
        db.packages.len()
    );
}

/// The committed ndb fixture (testdata/make-ndb-fixture.sh): a `Packages.db` written by rpm
/// 4.18's own ndb backend, with packages erased and others installed in their holes, and what
/// that rpm printed for it.
#[test]
fn reads_a_real_ndb_database_as_rpm_does() {
    let fixture = common::testdata().join("rpmdb/ndb");
    let expected = |name: &str| std::fs::read(fixture.join(name)).unwrap();
    for dbpath in [VAR_LIB_RPM, SYSIMAGE_RPM] {
        let r = tempfile::tempdir().unwrap();
        let dir = r.path().join(dbpath.trim_start_matches('/'));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(fixture.join("Packages.db"), dir.join("Packages.db")).unwrap();
        let before = listing(r.path());
        let db = read_root(r.path()).unwrap().unwrap();
        assert_eq!(listing(r.path()), before, "reading changed the root");
        assert_eq!(db.location.backend, Backend::Ndb);
        assert_eq!(db.location.dbpath, Path::new(dbpath));
        let n = lines(&expected("packages.txt")).len();
        assert_eq!(n, 30);
        compare_with_rpm(&db, n, &|fmt| {
            let file = match fmt {
                f if f.starts_with("%{dbinstance}\t%{name}") => "packages.txt",
                f if f.contains("%{filenames}") => "files.txt",
                f if f.contains("%{providename}") => "provides.txt",
                f if f.contains("%{requirename}") => "requires.txt",
                f => panic!("no fixture for --qf {f}"),
            };
            expected(file)
        });
        // the listing order is rpm's: by blob offset, not by package number
        let order: Vec<String> = db.packages.iter().map(|p| p.instance.to_string()).collect();
        let want = String::from_utf8(expected("order.txt")).unwrap();
        assert_eq!(order, want.lines().collect::<Vec<_>>());
        let mut sorted = order.clone();
        sorted.sort_by_key(|s| s.parse::<u32>().unwrap());
        assert_ne!(order, sorted, "the fixture should list out of number order");
    }
}

#[test]
fn damaged_ndb_databases_are_clear_errors() {
    let good = std::fs::read(common::testdata().join("rpmdb/ndb/Packages.db")).unwrap();
    let root_with = |bytes: &[u8]| {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("var/lib/rpm")).unwrap();
        let f = d.path().join("var/lib/rpm/Packages.db");
        std::fs::write(&f, bytes).unwrap();
        (d, f)
    };
    let le = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    // the first used slot, and its blob
    let slot = (2..256)
        .map(|i| i * 16)
        .find(|&o| le(&good, o + 8) != 0)
        .unwrap();
    let blob_at = le(&good, slot + 8) as usize * 16;
    let patched = |at: usize, bytes: &[u8]| {
        let mut b = good.clone();
        b[at..at + bytes.len()].copy_from_slice(bytes);
        b
    };
    let flipped = |at: usize| {
        let mut b = good.clone();
        b[at] ^= 0x40;
        b
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", Vec::new(), "shorter than"),
        ("truncated to the header", good[..32].to_vec(), "slot pages"),
        (
            "truncated mid-blob",
            good[..good.len() - 1024].to_vec(),
            "past the end",
        ),
        (
            "an odd size",
            good[..good.len() - 3].to_vec(),
            "multiple of 16",
        ),
        ("not ndb", vec![b'x'; 8192], "bad magic"),
        (
            "a byte of a blob flipped",
            flipped(blob_at + 100),
            "Adler-32",
        ),
        (
            "a slot past the end",
            patched(slot + 12, &0x0100_0000u32.to_le_bytes()),
            "past the end",
        ),
        ("a slot's magic", patched(slot, b"X"), "slot"),
        (
            "a blob of another package",
            flipped(blob_at + 4),
            "another package",
        ),
        (
            "slot pages beyond the file",
            patched(12, &0xffffu32.to_le_bytes()),
            "slot pages",
        ),
    ];
    for (what, bytes, want) in cases {
        let (d, f) = root_with(&bytes);
        let msg = read_error(d.path(), &f);
        assert!(msg.contains(want), "{what}: {msg}");
        eprintln!("{what}: {msg}");
    }
    // a FIFO in place of the database: refused at once
    let (d, f) = root_with(b"");
    std::fs::remove_file(&f).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&f)
        .status()
        .unwrap();
    assert!(made.success());
    assert!(read_error(d.path(), &f).contains("not a regular file"));
}

#[test]
fn reads_every_package_file_and_dependency_as_rpm_does() {
    let Some(rpms) = kmp::kmp_rpms() else { return };
    // the KMPs alone, RHEL's /var/lib/rpm
    let a = tempfile::tempdir().unwrap();
    kmp::install(a.path(), VAR_LIB_RPM, &rpms.all());
    check_against_rpm(a.path(), VAR_LIB_RPM, rpms.all().len());

    // the KMPs and 300 more packages, SUSE's /usr/lib/sysimage/rpm
    let b = tempfile::tempdir().unwrap();
    let mut all = rpms.all();
    all.extend(rpms.many());
    kmp::install(b.path(), SYSIMAGE_RPM, &all);
    check_against_rpm(b.path(), SYSIMAGE_RPM, all.len());

    // a KMP's files are where the package put them, and the reader says which is which
    let db = read_root(b.path()).unwrap().unwrap();
    let k = db.packages.iter().find(|p| p.nvr() == rpms.v09()).unwrap();
    let kver = common::weak::kver_of(rpms.other);
    assert_eq!(
        k.files,
        ["kabi_vendor_a.ko", "kabi_vendor_b.ko"]
            .map(|m| PathBuf::from(format!("/lib/modules/{kver}/updates/kabi-vendor/{m}")))
    );
    for f in &k.files {
        assert!(b.path().join(f.strip_prefix("/").unwrap()).is_file());
    }
    let doc = db.by_name("kabi-vendor-doc").next().unwrap();
    assert_eq!(doc.epoch, Some(2));
    assert_eq!(doc.arch.as_deref(), Some("noarch"));
    let many = db.by_name("kabi-many-002").next().unwrap();
    assert!(
        many.files
            .iter()
            .any(|f| f.as_os_str().as_bytes().ends_with("grüße".as_bytes())),
        "{:?}",
        many.files
    );
}

/// Every entry below `root`: path → (type, size, mode, mtime in ns, inode).
fn listing(root: &Path) -> BTreeMap<PathBuf, (u32, u64, u32, i128, u64)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let m = e.path().symlink_metadata().unwrap();
            let mtime = i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec());
            out.insert(
                e.path(),
                (m.mode() & 0o170000, m.size(), m.mode(), mtime, m.ino()),
            );
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    let m = root.symlink_metadata().unwrap();
    out.insert(
        root.to_path_buf(),
        (
            0,
            0,
            m.mode(),
            i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            m.ino(),
        ),
    );
    out
}

#[test]
fn reading_writes_nothing_into_the_root() {
    let Some(rpms) = kmp::kmp_rpms() else { return };
    let r = tempfile::tempdir().unwrap();
    kmp::install(r.path(), SYSIMAGE_RPM, &rpms.all());
    // rpm leaves an empty -wal and a -shm behind: remove them, so that a reader creating
    // either would show
    let dir = r.path().join("usr/lib/sysimage/rpm");
    for f in ["rpmdb.sqlite-wal", "rpmdb.sqlite-shm"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    let before = listing(r.path());
    // mtimes have a granularity: make a write in the same tick visible by waiting a little
    std::thread::sleep(Duration::from_millis(20));
    for _ in 0..3 {
        let db = read_root(r.path()).unwrap().unwrap();
        assert_eq!(db.packages.len(), rpms.all().len());
    }
    let after = listing(r.path());
    assert_eq!(before, after, "reading the database changed the root");
    assert!(!dir.join("rpmdb.sqlite-wal").exists());
    assert!(!dir.join("rpmdb.sqlite-shm").exists());
    assert!(!dir.join("rpmdb.sqlite-journal").exists());

    // a database directory and file without write permission are read all the same
    let mut perm = std::fs::metadata(dir.join("rpmdb.sqlite"))
        .unwrap()
        .permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o444);
    std::fs::set_permissions(dir.join("rpmdb.sqlite"), perm).unwrap();
    let db = read_root(r.path()).unwrap().unwrap();
    assert_eq!(db.packages.len(), rpms.all().len());

    // the pending -wal of a running rpm transaction is reported
    std::fs::write(dir.join("rpmdb.sqlite-wal"), b"not empty").unwrap();
    assert!(read_root(r.path()).unwrap().unwrap().pending_wal);
}

/// Run `f` in a thread; fail if it does not finish within 20 s (a read that hangs).
fn bounded<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("{what}: the reader hung"))
}

/// The error kabi gives for the root, which must name `file`.
fn read_error(root: &Path, file: &Path) -> String {
    let r = root.to_path_buf();
    let res = bounded(&root.display().to_string(), move || read_root(&r));
    let e = match res {
        Ok(db) => panic!(
            "{}: a damaged database was read: {:?}",
            root.display(),
            db.map(|d| d.packages.len())
        ),
        Err(e) => e,
    };
    let msg = e.to_string();
    assert!(
        msg.contains(&file.display().to_string()),
        "the error does not name {}: {msg}",
        file.display()
    );
    msg
}

#[test]
fn damaged_databases_are_clear_errors() {
    let Some(rpms) = kmp::kmp_rpms() else { return };
    let good = tempfile::tempdir().unwrap();
    kmp::install(good.path(), VAR_LIB_RPM, &rpms.all());
    let good_db = std::fs::read(good.path().join("var/lib/rpm/rpmdb.sqlite")).unwrap();
    let n = rpms.all().len();

    let root_with = |bytes: &[u8]| {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("var/lib/rpm")).unwrap();
        let f = d.path().join("var/lib/rpm/rpmdb.sqlite");
        std::fs::write(&f, bytes).unwrap();
        (d, f)
    };

    // truncated files: to nothing, to the header page, to half, one page short
    for len in [0, 100, 4096, good_db.len() / 2, good_db.len() - 4096] {
        let (d, f) = root_with(&good_db[..len]);
        let msg = read_error(d.path(), &f);
        eprintln!("truncated to {len}: {msg}");
    }
    // not a SQLite file at all
    let (d, f) = root_with(
        b"this is not a database, it is a text file\n"
            .repeat(200)
            .as_slice(),
    );
    let msg = read_error(d.path(), &f);
    assert!(msg.contains("not a database"), "{msg}");
    // a SQLite database without rpm's table
    {
        let (d, f) = root_with(b"");
        std::fs::remove_file(&f).unwrap();
        rusqlite::Connection::open(&f)
            .unwrap()
            .execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
            .unwrap();
        let msg = read_error(d.path(), &f);
        assert!(msg.contains("no such table: Packages"), "{msg}");
    }
    // blobs whose counts lie, written into a copy of the real database
    let lie = |what: &str, patch: &dyn Fn(&mut Vec<u8>)| {
        let (d, f) = root_with(&good_db);
        let c = rusqlite::Connection::open(&f).unwrap();
        let (hnum, mut blob): (i64, Vec<u8>) = c
            .query_row(
                "SELECT hnum, blob FROM Packages ORDER BY hnum LIMIT 1 OFFSET 2",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        patch(&mut blob);
        c.execute(
            "UPDATE Packages SET blob = ?1 WHERE hnum = ?2",
            rusqlite::params![blob, hnum],
        )
        .unwrap();
        drop(c);
        let msg = read_error(d.path(), &f);
        assert!(msg.contains(&format!("package #{hnum}")), "{what}: {msg}");
        eprintln!("{what}: {msg}");
    };
    let set = |b: &mut Vec<u8>, at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_be_bytes());
    lie("index count +1000", &|b| {
        let il = u32::from_be_bytes(b[0..4].try_into().unwrap());
        set(b, 0, il + 1000)
    });
    lie("data length 256 MiB", &|b| set(b, 4, 0x0fff_ffff));
    lie("data length too large", &|b| set(b, 4, 0x1000_0000));
    lie("a million strings in the name array", &|b| {
        // entry 1 is the first after the region tag: claim a huge count
        set(b, 8 + 16 + 12, 0x000f_ffff)
    });
    lie("an offset far past the data", &|b| {
        set(b, 8 + 2 * 16 + 8, 0x7fff_fff0)
    });
    lie("a region trailer pointing nowhere", &|b| {
        set(b, 8 + 8, 0xffff_0000)
    });
    lie("truncated blob", &|b| b.truncate(b.len() / 2));
    lie("empty blob", &|b| b.clear());

    // a FIFO in place of the database: refused at once, no hang
    {
        let (d, f) = root_with(b"");
        std::fs::remove_file(&f).unwrap();
        let st = std::process::Command::new("mkfifo")
            .arg(&f)
            .status()
            .unwrap();
        assert!(st.success());
        let msg = read_error(d.path(), &f);
        assert!(msg.contains("not a regular file"), "{msg}");
    }
    // a directory in place of the database
    {
        let (d, f) = root_with(b"");
        std::fs::remove_file(&f).unwrap();
        std::fs::create_dir(&f).unwrap();
        let msg = read_error(d.path(), &f);
        assert!(msg.contains("not a regular file"), "{msg}");
    }
    // the good one still reads
    let (d, _) = root_with(&good_db);
    assert_eq!(read_root(d.path()).unwrap().unwrap().packages.len(), n);
}

#[test]
fn locating_the_database() {
    let Some(rpms) = kmp::kmp_rpms() else { return };
    // no database: None (a minimal image)
    let empty = tempfile::tempdir().unwrap();
    assert!(read_root(empty.path()).unwrap().is_none());

    // an absolute symlink on the way resolves inside the root, as rpm --root would see it
    let r = tempfile::tempdir().unwrap();
    kmp::install(r.path(), "/opt/rpmdb", &rpms.all());
    std::fs::create_dir_all(r.path().join("var/lib")).unwrap();
    std::os::unix::fs::symlink("/opt/rpmdb", r.path().join("var/lib/rpm")).unwrap();
    let db = read_root(r.path()).unwrap().unwrap();
    assert_eq!(db.location.dbpath, Path::new(VAR_LIB_RPM));
    assert_eq!(db.packages.len(), rpms.all().len());
    // ... and never outside it: a link to the host's / finds nothing there
    let r2 = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(r2.path().join("var/lib")).unwrap();
    std::os::unix::fs::symlink(r.path().join("opt/rpmdb"), r2.path().join("var/lib/rpm")).unwrap();
    assert!(read_root(r2.path()).unwrap().is_none());

    // the root's %_dbpath macro
    let m = tempfile::tempdir().unwrap();
    kmp::install(m.path(), "/srv/pkgdb", &rpms.all());
    std::fs::create_dir_all(m.path().join("etc/rpm")).unwrap();
    std::fs::write(
        m.path().join("etc/rpm/macros.dbpath"),
        "%_dbpath /srv/pkgdb\n",
    )
    .unwrap();
    let db = read_root(m.path()).unwrap().unwrap();
    assert_eq!(db.location.dbpath, Path::new("/srv/pkgdb"));

    // BerkeleyDB files are recognised and refused by name
    {
        let (file, backend) = ("Packages", "bdb");
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("var/lib/rpm")).unwrap();
        std::fs::write(d.path().join("var/lib/rpm").join(file), b"x").unwrap();
        let e = read_root(d.path()).unwrap_err();
        assert!(matches!(e, RpmDbError::Unsupported { .. }), "{e}");
        let msg = e.to_string();
        assert!(msg.contains(file) && msg.contains(backend), "{msg}");
    }
}

/// rpm's `rpm.vercmp` (lua in `rpm --eval`: `rpmverCmp` of two parsed EVR strings) on every
/// ordered pair of `versions`, row by row.
fn rpm_vercmp_matrix(versions: &[String]) -> Vec<i32> {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("versions");
    std::fs::write(&input, versions.join("\n") + "\n").unwrap();
    let script = format!(
        "%{{lua: local v = {{}} \
         for l in io.lines('{}') do v[#v+1] = l end \
         local out = {{}} \
         for i = 1, #v do for j = 1, #v do out[#out+1] = rpm.vercmp(v[i], v[j]) end end \
         print(table.concat(out, ' '))}}",
        input.display()
    );
    let out = std::process::Command::new("rpm")
        .args(["--eval", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Vec<i32> = String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(got.len(), versions.len() * versions.len());
    got
}

/// Versions made of up to four of `pieces`, chosen by a fixed LCG (deterministic), plus
/// every piece alone and `extra`; no empty string (rpm refuses one).
fn mixed_versions(pieces: &[&str], extra: &[&str], n: usize) -> Vec<String> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 33) as usize
    };
    let mut versions: Vec<String> = (0..n)
        .map(|_| {
            let k = 1 + next() % 4;
            (0..k).map(|_| pieces[next() % pieces.len()]).collect()
        })
        .collect();
    versions.extend(pieces.iter().chain(extra).map(|s| s.to_string()));
    versions.retain(|v| !v.is_empty());
    versions.sort();
    versions.dedup();
    versions
}

fn compare_all(what: &str, versions: &[String], ours: impl Fn(&str, &str) -> std::cmp::Ordering) {
    let start = Instant::now();
    let got = rpm_vercmp_matrix(versions);
    let mut k = 0;
    let mut disagree = Vec::new();
    for a in versions {
        for b in versions {
            let o = ours(a, b) as i32;
            if o != got[k] {
                disagree.push(format!("{a:?} vs {b:?}: rpm {} kabi {o}", got[k]));
            }
            k += 1;
        }
    }
    assert!(
        disagree.is_empty(),
        "{what}: {} of {k} pairs disagree:\n{}",
        disagree.len(),
        disagree[..disagree.len().min(30)].join("\n")
    );
    eprintln!(
        "{what}: {k} pairs of {} versions agree with rpm.vercmp ({:?})",
        versions.len(),
        start.elapsed()
    );
}

/// rpmvercmp against rpm's own comparison on every pair of a set of versions built from the
/// tricky pieces: tilde, caret, letters against digits, leading zeros, separators, empty
/// segments (no `-` or `:`, so rpm compares the strings as versions alone).
#[test]
fn rpmvercmp_agrees_with_rpm() {
    if !common::require_tool("rpm") {
        return;
    }
    let pieces = [
        "",
        "0",
        "00",
        "1",
        "01",
        "001",
        "2",
        "10",
        "010",
        "9999999999",
        "99999999999999999999",
        "a",
        "b",
        "A",
        "Z",
        "rc",
        "rc1",
        "alpha",
        "~",
        "~rc1",
        "^",
        "^git1",
        ".",
        "_",
        "+",
        "..",
        "~~",
        "^^",
        "1a",
        "a1",
        "p",
        "z9",
        "é",
    ];
    let extra = [
        "1.0",
        "1.0.0",
        "1.0~rc1",
        "1.0^git1",
        "1.0~rc1^git1",
        "1_0",
        "1.0a",
        "1.0.a",
        "1.00",
        "1.0_k6.1.0_55",
        "1.0_k6.1.0_56",
        "1.1_k6.1.0_47",
    ];
    let versions = mixed_versions(&pieces, &extra, 170);
    compare_all("rpmvercmp", &versions, |a, b| {
        rpmdb::rpmvercmp(a.as_bytes(), b.as_bytes())
    });
}

/// Whole EVR strings (epochs, releases) parsed and compared as rpm does.
#[test]
fn evr_comparison_agrees_with_rpm() {
    if !common::require_tool("rpm") {
        return;
    }
    let pieces = [
        "0:", "1:", "2:", ":", "007:", "1", "1.0", "2", "-1", "-2", "-1.el9", "-", "~rc1", "^g",
        "a", ".", "-0",
    ];
    let versions = mixed_versions(&pieces, &["1:1.0-1", "1.0-1", "0:1.0-1", "1.0"], 120);
    compare_all("evr", &versions, |a, b| {
        rpmdb::evr_cmp(&rpmdb::Evr::parse(a), &rpmdb::Evr::parse(b))
    });
}
