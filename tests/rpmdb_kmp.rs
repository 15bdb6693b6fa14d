//! The pure KMP model (kabi::rpmdb::kmp) on real package lists: the KMP fixtures of
//! testdata/build-kmp.sh installed by Debian's rpm, read back by kabi's database reader, and
//! compared with what SUSE's `weak-modules2` pipeline computes from the same database with
//! the real tools: `find_kmps` (rpm -qa with the name glob, the kmp_in_kernel provide, rpm -ql
//! filtered by the script's regular expression), `check_kmp` (sed, sort -u) and `rpmsort -r`
//! (done with rpm's own `rpm.vercmp`, as rpmsort does: name, then version, then release).

mod common;

use std::path::Path;
use std::process::Command;

use common::kmp::{self, KMP_FLAVOUR, SYSIMAGE_RPM, VAR_LIB_RPM};
use kabi::rpmdb::{self, kmp as model};

/// Read the rpm database of the root directory `dir`.
fn read_root(dir: &Path) -> Result<Option<rpmdb::RpmDb>, rpmdb::RpmDbError> {
    rpmdb::read_root(&kabi::root::Root::open(dir)?)
}

/// `find_kmps BASENAME FLAVOR` of SUSE's weak-modules2, transcribed with the root and the
/// dbpath added to each rpm call, `-ql` kept as `-ql` (the script's SLE 15 regular expression,
/// which accepts both /usr/lib/modules and /lib/modules), and rpmsort done in rpm's lua.
/// Prints, newest first, one line per KMP: `NVR KREL BASENAME...`; then `WARN NVR` per KMP
/// without modules, `ERROR NVR` per KMP check_kmp refuses and `INKERNEL NVR` per skipped one.
const FIND_KMPS: &str = r#"
set -u
root=$1 dbpath=$2 basename=$3 flavor=$4 tmpdir=$5
q() { rpm --root "$root" --dbpath "$dbpath" --nodigest --nosignature "$@"; }
check_kmp() {
    local kmp=$1
    set -- $(sed -re 's:^(/usr)?/lib/modules/([^/]+)/.*:\2:' "$tmpdir/modules-$kmp" | sort -u)
    if [ $# -ne 1 ]; then echo "ERROR $kmp"; return 1; fi
    echo $1 > "$tmpdir/krel-$kmp"
    if grep -qE -e '^(/usr)?/lib/modules/[^/]+/(kernel|weak-updates)/' "$tmpdir/modules-$kmp"; then
        echo "ERROR $kmp"; return 1
    fi
    sed -e 's:.*/::' "$tmpdir/modules-$kmp" | sort -u > "$tmpdir/basenames-$kmp"
}
for kmp in $(q -qa --qf '%{n}-%{v}-%{r}\n' "$basename-kmp-$flavor"); do
    if q -q --qf '[%{providename}\n]' "$kmp" | grep -q '^kmp_in_kernel$'; then
        echo "INKERNEL $kmp"; continue
    fi
    q -ql "$kmp" | grep -E '^(/usr)?/lib/modules/[^/]+/.+\.ko(\.[gx]z|\.zst)?$' > "$tmpdir/modules-$kmp"
    if [ $? != 0 ]; then echo "WARN $kmp"; rm -f "$tmpdir/modules-$kmp"; continue; fi
    check_kmp "$kmp" || rm -f "$tmpdir/modules-$kmp"
done
ls "$tmpdir" | sed -n 's/^basenames-//p' > "$tmpdir/list"
rpm --eval "%{lua:
    local v = {}
    for l in io.lines('$tmpdir/list') do v[#v+1] = l end
    local function split(s)
        local nv, r = s:match('^(.*)-([^-]*)$')
        local n, ver = nv:match('^(.*)-([^-]*)$')
        return n, ver, r
    end
    table.sort(v, function(a, b)
        local an, av, ar = split(a)
        local bn, bv, br = split(b)
        if an ~= bn then return an > bn end
        local c = rpm.vercmp(av, bv)
        if c ~= 0 then return c > 0 end
        return rpm.vercmp(ar, br) > 0
    end)
    print(table.concat(v, '\n'))
}" | while read -r kmp; do
    [ -n "$kmp" ] || continue
    echo "$kmp $(cat "$tmpdir/krel-$kmp") $(tr '\n' ' ' < "$tmpdir/basenames-$kmp")"
done
"#;

/// The script's view of a root, as lines.
fn script_find_kmps(root: &Path, dbpath: &str, basename: &str, flavor: &str) -> Vec<String> {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .args(["-c", FIND_KMPS, "find_kmps"])
        .arg(root)
        .args([dbpath, basename, flavor])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.trim_end().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// kabi's view, in the same form.
fn kabi_find_kmps(
    packages: &[rpmdb::Package],
    basename: Option<&str>,
    flavor: &str,
) -> Vec<String> {
    let found = model::find_kmps(packages, basename, flavor);
    let mut out = Vec::new();
    let mut side: Vec<String> = Vec::new();
    side.extend(found.in_kernel.iter().map(|n| format!("INKERNEL {n}")));
    for e in &found.warnings {
        if let model::KmpError::NoModules { nvr } = e {
            side.push(format!("WARN {nvr}"));
        }
    }
    for e in &found.errors {
        match e {
            model::KmpError::MultipleKernels { nvr, .. }
            | model::KmpError::ForbiddenDir { nvr, .. } => side.push(format!("ERROR {nvr}")),
            other => panic!("unexpected {other}"),
        }
    }
    side.sort();
    for k in &found.kmps {
        let names: Vec<&str> = k.basenames().into_iter().collect();
        out.push(format!("{} {} {}", k.nvr(), k.krel, names.join(" ")));
    }
    side.into_iter().chain(out).collect()
}

fn split_side(mut v: Vec<String>) -> Vec<String> {
    // the script prints side notes interleaved in database order: sort them, keep the KMP
    // lines (after them) in the order given
    let (mut side, kmps): (Vec<String>, Vec<String>) = v.drain(..).partition(|l| {
        l.starts_with("INKERNEL ") || l.starts_with("WARN ") || l.starts_with("ERROR ")
    });
    side.sort();
    side.into_iter().chain(kmps).collect()
}

#[test]
fn find_kmps_agrees_with_the_script_on_real_packages() {
    let Some(rpms) = kmp::kmp_rpms() else { return };
    if !common::require_tool("rpm") {
        return;
    }
    let r = tempfile::tempdir().unwrap();
    let mut all = rpms.all();
    all.extend(rpms.many().into_iter().take(20));
    kmp::install(r.path(), SYSIMAGE_RPM, &all);
    let db = read_root(r.path()).unwrap().unwrap();

    for (basename, flavor) in [
        (None, KMP_FLAVOUR),
        (Some("kabi-vendor"), KMP_FLAVOUR),
        (Some("kabi-other"), KMP_FLAVOUR),
        (None, "pae"),
        (None, "default"),
        (None, "cloud-amd64"),
    ] {
        let script = split_side(script_find_kmps(
            r.path(),
            SYSIMAGE_RPM,
            basename.unwrap_or("*"),
            flavor,
        ));
        let ours = kabi_find_kmps(&db.packages, basename, flavor);
        assert_eq!(ours, script, "find_kmps {basename:?} {flavor}");
        eprintln!("find_kmps {basename:?} {flavor}:\n  {}", ours.join("\n  "));
    }

    // what the fixtures are known to hold, so that the comparison above cannot pass empty
    let found = model::find_kmps(&db.packages, Some("kabi-vendor"), KMP_FLAVOUR);
    let nvrs: Vec<String> = found.kmps.iter().map(model::Kmp::nvr).collect();
    assert_eq!(nvrs, [rpms.v11(), rpms.v10(2), rpms.v10(1), rpms.v09()]);
    let kver = |abi: &str| common::weak::kver_of(abi);
    let old = &found.kmps[3];
    assert_eq!(old.krel, kver(rpms.other));
    assert_eq!(
        old.modules[0].path,
        Path::new(&format!(
            "/lib/modules/{}/updates/kabi-vendor/kabi_vendor_a.ko",
            kver(rpms.other)
        ))
    );
    let new = &found.kmps[1];
    assert_eq!(
        new.modules[1].path,
        Path::new(&format!(
            "/usr/lib/modules/{}/updates/kabi-vendor/kabi_vendor_b.ko",
            kver(rpms.old)
        ))
    );
    assert_eq!(
        new.modules[1].weak_link(),
        Path::new("weak-updates/updates/kabi-vendor/kabi_vendor_b.ko")
    );
    // any kernel release of its flavour (what follows the last dash), whatever the ABI
    let later = rpms.old.parse::<u32>().unwrap() + 1;
    assert!(new.is_for_kernel(&format!("6.1.0-{later}-cloud-amd64")));
    assert!(new.is_for_kernel(&format!("6.1.0-{later}-amd64")));
    assert!(!new.is_for_kernel(&format!("6.1.0-{later}-686-pae")));
    let all = model::find_kmps(&db.packages, None, KMP_FLAVOUR);
    assert_eq!(all.in_kernel, [rpms.inkernel()]);
    assert_eq!(all.kmps.len(), 5);
    assert_eq!(all.warnings.len(), 1);
    assert_eq!(all.errors.len(), 1);
    // the overlap the lead's weak-modules2 must refuse: two KMPs with a common basename
    let other = all
        .kmps
        .iter()
        .find(|k| k.basename == "kabi-other")
        .unwrap();
    assert!(other.basenames().contains("kabi_vendor_a.ko"));
    assert!(new.basenames().contains("kabi_vendor_a.ko"));
    assert_eq!(
        model::flavors(&db.packages).into_iter().collect::<Vec<_>>(),
        ["amd64", "pae"]
    );
    let pae = model::find_kmps(&db.packages, None, "pae");
    assert_eq!(pae.kmps.len(), 1);
    assert_eq!(pae.kmps[0].krel, format!("6.1.0-{}-686-pae", rpms.pae));
    assert!(pae.kmps[0].is_for_kernel(&format!("6.1.0-{later}-686-pae")));
    assert!(!pae.kmps[0].is_for_kernel(&format!("6.1.0-{later}-cloud-amd64")));
}

/// The same on RHEL's dbpath and on the module list `--remove-kmp` gets on standard input
/// (the package's `rpm -ql`).
#[test]
fn remove_kmp_module_list_matches_the_installed_package() {
    let Some(rpms) = kmp::kmp_rpms() else { return };
    let r = tempfile::tempdir().unwrap();
    let nvr = &rpms.v10(2);
    kmp::install(r.path(), VAR_LIB_RPM, &[rpms.rpm(nvr)]);
    let db = read_root(r.path()).unwrap().unwrap();
    let installed = model::kmp_of_package(&db.packages[0]).unwrap().unwrap();
    let ql = kmp::rpm_cmd(r.path(), VAR_LIB_RPM)
        .args(["-ql", nvr])
        .output()
        .unwrap();
    assert!(ql.status.success());
    let from_list = model::kmp_from_module_list(nvr, &String::from_utf8(ql.stdout).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(from_list.modules, installed.modules);
    assert_eq!(from_list.krel, installed.krel);
    assert_eq!(from_list.nvr(), installed.nvr());
}

/// On a merged-/usr root (current SUSE), rpm puts the SLE 15-style KMP's /lib/modules files in
/// usr/lib/modules beside the others; the package still lists them under /lib/modules.
#[test]
fn merged_usr_root_holds_both_layouts_in_one_tree() {
    let Some(rpms) = kmp::kmp_rpms() else { return };
    let r = tempfile::tempdir().unwrap();
    kmp::merged_usr(r.path());
    let (old, new) = (&rpms.v09(), &rpms.v11());
    kmp::install(r.path(), SYSIMAGE_RPM, &[rpms.rpm(old), rpms.rpm(new)]);
    let db = read_root(r.path()).unwrap().unwrap();
    let found = model::find_kmps(&db.packages, Some("kabi-vendor"), KMP_FLAVOUR);
    assert_eq!(found.kmps.len(), 2);
    for k in &found.kmps {
        for m in &k.modules {
            let on_disk = r.path().join("usr/lib/modules").join(&k.krel).join(&m.rel);
            assert!(on_disk.is_file(), "{}", on_disk.display());
        }
    }
    assert!(found.kmps[1].modules[0].path.starts_with("/lib/modules"));
    assert!(
        found.kmps[0].modules[0]
            .path
            .starts_with("/usr/lib/modules")
    );
}
