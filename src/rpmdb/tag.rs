//! The rpm header tags and data types kabi reads (values from rpm's `rpmtag.h`).

/// The region tag of a header image (legacy v3 headers converted by rpm).
pub const HEADERIMAGE: u32 = 61;
/// The region tag of a signature header.
pub const HEADERSIGNATURES: u32 = 62;
/// The region tag of a package header as rpmbuild wrote it (what rpm stores in its database).
pub const HEADERIMMUTABLE: u32 = 63;
/// Tags from [`HEADERIMAGE`] up to (not including) this one are region tags.
pub const HEADERREGIONS: u32 = 64;
/// The lowest tag of a data entry (`HEADER_I18NTABLE`); lower ones are refused, as rpm does.
pub const HEADERI18NTABLE: u32 = 100;

pub const NAME: u32 = 1000;
pub const VERSION: u32 = 1001;
pub const RELEASE: u32 = 1002;
pub const EPOCH: u32 = 1003;
pub const ARCH: u32 = 1022;
/// Full file paths, in packages built before rpm 4 compressed them into the three below.
pub const OLDFILENAMES: u32 = 1027;
pub const PROVIDENAME: u32 = 1047;
pub const REQUIREFLAGS: u32 = 1048;
pub const REQUIRENAME: u32 = 1049;
pub const REQUIREVERSION: u32 = 1050;
pub const PROVIDEFLAGS: u32 = 1112;
pub const PROVIDEVERSION: u32 = 1113;
pub const DIRINDEXES: u32 = 1116;
pub const BASENAMES: u32 = 1117;
pub const DIRNAMES: u32 = 1118;

/// The data types of header entries (`rpmTagType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Type {
    Null = 0,
    Char = 1,
    Int8 = 2,
    Int16 = 3,
    Int32 = 4,
    Int64 = 5,
    String = 6,
    Bin = 7,
    StringArray = 8,
    I18nString = 9,
}

impl Type {
    /// The type of a raw type number, None outside rpm's range (`RPM_MIN_TYPE..=RPM_MAX_TYPE`).
    pub fn from_u32(v: u32) -> Option<Type> {
        Some(match v {
            0 => Type::Null,
            1 => Type::Char,
            2 => Type::Int8,
            3 => Type::Int16,
            4 => Type::Int32,
            5 => Type::Int64,
            6 => Type::String,
            7 => Type::Bin,
            8 => Type::StringArray,
            9 => Type::I18nString,
            _ => return None,
        })
    }

    /// Size of one element of a fixed-size type; None for the string types (and 0 for NULL).
    pub fn size(self) -> Option<u32> {
        match self {
            Type::Null => Some(0),
            Type::Char | Type::Int8 | Type::Bin => Some(1),
            Type::Int16 => Some(2),
            Type::Int32 => Some(4),
            Type::Int64 => Some(8),
            Type::String | Type::StringArray | Type::I18nString => None,
        }
    }

    /// Alignment of the type's data in the data store (rpm's `typeAlign`).
    pub fn align(self) -> u32 {
        match self {
            Type::Int16 => 2,
            Type::Int32 => 4,
            Type::Int64 => 8,
            _ => 1,
        }
    }

    /// Is this one of the string types (`RPM_STRING_CLASS`)?
    pub fn is_string(self) -> bool {
        matches!(self, Type::String | Type::StringArray | Type::I18nString)
    }
}
