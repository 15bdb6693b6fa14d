//! One installed package, taken from its header: name, epoch, version, release, arch, files,
//! provides and requires.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use super::header::{Header, HeaderError};
use super::tag;
use super::vercmp::Evr;

/// A dependency (a provide or a require): name, comparison flags and version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Dependency {
    pub name: String,
    /// rpm's `rpmsenseFlags`: LESS 0x2, GREATER 0x4, EQUAL 0x8, plus others (pre, ...).
    pub flags: u32,
    /// The version compared against, empty when there is none.
    pub version: String,
}

/// `rpmsenseFlags` bits of the comparison.
pub const SENSE_LESS: u32 = 0x2;
pub const SENSE_GREATER: u32 = 0x4;
pub const SENSE_EQUAL: u32 = 0x8;

impl Dependency {
    /// The comparison operator as rpm prints it (`<`, `<=`, `=`, `>=`, `>`), or "".
    pub fn operator(&self) -> &'static str {
        match self.flags & (SENSE_LESS | SENSE_GREATER | SENSE_EQUAL) {
            SENSE_LESS => "<",
            x if x == SENSE_LESS | SENSE_EQUAL => "<=",
            SENSE_EQUAL => "=",
            x if x == SENSE_GREATER | SENSE_EQUAL => ">=",
            SENSE_GREATER => ">",
            _ => "",
        }
    }
}

/// `name [op version]`, as `rpm -q --provides` prints a dependency.
impl std::fmt::Display for Dependency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = self.operator();
        if op.is_empty() || self.version.is_empty() {
            write!(f, "{}", self.name)
        } else {
            write!(f, "{} {} {}", self.name, op, self.version)
        }
    }
}

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// The package's number in the database (rpm's header instance, `%{dbinstance}`).
    pub instance: u32,
    pub name: String,
    /// None when the package has no epoch (`%{epoch}` prints `(none)`).
    pub epoch: Option<u32>,
    pub version: String,
    pub release: String,
    /// None for headers without an arch (gpg-pubkey entries).
    pub arch: Option<String>,
    /// Every path the package owns, in header order (what `rpm -ql` lists).
    pub files: Vec<PathBuf>,
    pub provides: Vec<Dependency>,
    pub requires: Vec<Dependency>,
}

impl Package {
    /// `NAME-VERSION-RELEASE` (what `%{n}-%{v}-%{r}` prints; the epoch is not part of it).
    pub fn nvr(&self) -> String {
        format!("{}-{}-{}", self.name, self.version, self.release)
    }

    /// The package's epoch, version and release.
    pub fn evr(&self) -> Evr {
        Evr {
            epoch: self.epoch,
            version: self.version.clone(),
            release: Some(self.release.clone()),
        }
    }

    /// Does the package provide `name` (any version)?
    pub fn provides_name(&self, name: &str) -> bool {
        self.provides.iter().any(|p| p.name == name)
    }

    /// Build a package from a parsed header.
    pub fn from_header(instance: u32, h: &Header<'_>) -> Result<Package, PackageError> {
        let text = |tag: u32| -> Result<Option<String>, PackageError> {
            Ok(h.string(tag)?
                .map(|b| String::from_utf8_lossy(b).into_owned()))
        };
        let name = text(tag::NAME)?.ok_or(PackageError::Missing("NAME"))?;
        let version = text(tag::VERSION)?.ok_or(PackageError::Missing("VERSION"))?;
        let release = text(tag::RELEASE)?.ok_or(PackageError::Missing("RELEASE"))?;
        Ok(Package {
            instance,
            name,
            epoch: h.u32(tag::EPOCH)?,
            version,
            release,
            arch: text(tag::ARCH)?,
            files: files(h)?,
            provides: dependencies(h, tag::PROVIDENAME, tag::PROVIDEFLAGS, tag::PROVIDEVERSION)?,
            requires: dependencies(h, tag::REQUIRENAME, tag::REQUIREFLAGS, tag::REQUIREVERSION)?,
        })
    }
}

/// What is wrong with a header that parsed but does not describe a package.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackageError {
    #[error(transparent)]
    Header(#[from] HeaderError),
    #[error("no {0} tag")]
    Missing(&'static str),
    #[error("{what}: {a} has {na} entries, {b} has {nb}")]
    Lengths {
        what: &'static str,
        a: &'static str,
        na: usize,
        b: &'static str,
        nb: usize,
    },
    #[error("file {index}: directory index {dir} but only {dirs} directories")]
    DirIndex { index: usize, dir: u32, dirs: usize },
}

fn path(bytes: &[u8]) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(bytes))
}

/// The file list: DIRNAMES[DIRINDEXES[i]] + BASENAMES[i], or the old FILENAMES.
fn files(h: &Header<'_>) -> Result<Vec<PathBuf>, PackageError> {
    let Some(base) = h.strings(tag::BASENAMES)? else {
        return Ok(h
            .strings(tag::OLDFILENAMES)?
            .unwrap_or_default()
            .into_iter()
            .map(path)
            .collect());
    };
    let dirs = h.strings(tag::DIRNAMES)?.unwrap_or_default();
    let idx = h.u32s(tag::DIRINDEXES)?.unwrap_or_default();
    if idx.len() != base.len() {
        return Err(PackageError::Lengths {
            what: "file list",
            a: "BASENAMES",
            na: base.len(),
            b: "DIRINDEXES",
            nb: idx.len(),
        });
    }
    let mut out = Vec::with_capacity(base.len());
    let mut buf = Vec::new();
    for (i, (b, &d)) in base.iter().zip(&idx).enumerate() {
        let dir = dirs.get(d as usize).ok_or(PackageError::DirIndex {
            index: i,
            dir: d,
            dirs: dirs.len(),
        })?;
        buf.clear();
        buf.extend_from_slice(dir);
        buf.extend_from_slice(b);
        out.push(path(&buf));
    }
    Ok(out)
}

fn dependencies(
    h: &Header<'_>,
    names: u32,
    flags: u32,
    versions: u32,
) -> Result<Vec<Dependency>, PackageError> {
    let Some(n) = h.strings(names)? else {
        return Ok(Vec::new());
    };
    let f = h.u32s(flags)?.unwrap_or_default();
    let v = h.strings(versions)?.unwrap_or_default();
    // rpm requires the three arrays to agree in length; a header where they do not is
    // damaged, but the names alone are still worth something: missing flags and versions
    // read as "no comparison"
    let what = if names == tag::PROVIDENAME {
        "provides"
    } else {
        "requires"
    };
    for (len, tagname) in [(f.len(), "flags"), (v.len(), "versions")] {
        if len != 0 && len != n.len() {
            return Err(PackageError::Lengths {
                what,
                a: "names",
                na: n.len(),
                b: tagname,
                nb: len,
            });
        }
    }
    Ok(n.iter()
        .enumerate()
        .map(|(i, name)| Dependency {
            name: String::from_utf8_lossy(name).into_owned(),
            flags: f.get(i).copied().unwrap_or(0),
            version: v
                .get(i)
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .unwrap_or_default(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::super::header::tests::build;
    use super::super::tag::Type;
    use super::*;

    fn s(v: &[&str]) -> Vec<u8> {
        v.iter()
            .flat_map(|x| x.bytes().chain(std::iter::once(0)))
            .collect()
    }
    fn ints(v: &[u32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_be_bytes()).collect()
    }

    #[test]
    fn files_and_provides() {
        let blob = build(
            &[
                (tag::NAME, Type::String, 1, s(&["k-kmp-default"])),
                (tag::VERSION, Type::String, 1, s(&["1.0_k6.4.0_150600.21"])),
                (tag::RELEASE, Type::String, 1, s(&["1"])),
                (tag::ARCH, Type::String, 1, s(&["x86_64"])),
                (
                    tag::PROVIDENAME,
                    Type::StringArray,
                    2,
                    s(&["k-kmp", "ksym(default:foo)"]),
                ),
                (tag::PROVIDEFLAGS, Type::Int32, 2, ints(&[8, 8])),
                (
                    tag::PROVIDEVERSION,
                    Type::StringArray,
                    2,
                    s(&["1.0-1", "1a2b3c4d"]),
                ),
                (tag::DIRINDEXES, Type::Int32, 3, ints(&[0, 1, 1])),
                (
                    tag::BASENAMES,
                    Type::StringArray,
                    3,
                    s(&["updates", "a.ko", "b.ko"]),
                ),
                (
                    tag::DIRNAMES,
                    Type::StringArray,
                    2,
                    s(&["/lib/modules/K/", "/lib/modules/K/updates/"]),
                ),
            ],
            true,
        );
        let h = Header::parse(&blob).unwrap();
        let p = Package::from_header(3, &h).unwrap();
        assert_eq!(p.nvr(), "k-kmp-default-1.0_k6.4.0_150600.21-1");
        assert_eq!(p.epoch, None);
        assert_eq!(
            p.files,
            [
                "/lib/modules/K/updates",
                "/lib/modules/K/updates/a.ko",
                "/lib/modules/K/updates/b.ko"
            ]
            .map(PathBuf::from)
        );
        assert_eq!(p.provides[1].to_string(), "ksym(default:foo) = 1a2b3c4d");
        assert!(p.provides_name("k-kmp"));
    }

    #[test]
    fn bad_dir_index_is_an_error() {
        let blob = build(
            &[
                (tag::NAME, Type::String, 1, s(&["x"])),
                (tag::VERSION, Type::String, 1, s(&["1"])),
                (tag::RELEASE, Type::String, 1, s(&["1"])),
                (tag::DIRINDEXES, Type::Int32, 1, ints(&[5])),
                (tag::BASENAMES, Type::StringArray, 1, s(&["a"])),
                (tag::DIRNAMES, Type::StringArray, 1, s(&["/"])),
            ],
            true,
        );
        let h = Header::parse(&blob).unwrap();
        assert_eq!(
            Package::from_header(1, &h).unwrap_err(),
            PackageError::DirIndex {
                index: 0,
                dir: 5,
                dirs: 1
            }
        );
    }
}
