//! Errors of the parsing layer. Each says what was expected; the caller adds the file.

use std::path::PathBuf;

/// What went wrong while reading one module file.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("empty file")]
    Empty,
    #[error("not an ELF file and not a known compression format (starts with {0})")]
    UnknownFormat(String),
    #[error("{format} data is corrupt: {reason}")]
    Decompress {
        format: &'static str,
        reason: String,
    },
    #[error("decompressed {format} data exceeds the limit of {limit} bytes")]
    TooLarge { format: &'static str, limit: u64 },
    #[error("is {size} bytes, more than the {limit} bytes kabi reads of such a file")]
    FileTooLarge { size: u64, limit: u64 },
    #[error("needs more than the {limit} bytes of memory kabi allows itself for decompression")]
    OutOfMemoryBudget { limit: u64 },
    /// The shared memory budget is spent for now (retried alone; never reported).
    #[error("the memory budget is spent")]
    OutOfBudget,
    #[error("read error: {0}")]
    Read(String),
    #[error("invalid ELF: {0}")]
    Elf(String),
    #[error("section {section}: {reason}")]
    Section { section: String, reason: String },
}

impl ParseError {
    pub(crate) fn elf(msg: impl Into<String>) -> Self {
        ParseError::Elf(msg.into())
    }
    pub(crate) fn section(section: &str, reason: impl Into<String>) -> Self {
        ParseError::Section {
            section: section.to_string(),
            reason: reason.into(),
        }
    }
}

/// An error tied to the file it happened in.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: ParseError,
    },
    #[error("{0}")]
    Usage(String),
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
    pub fn parse(path: impl Into<PathBuf>, source: ParseError) -> Self {
        Error::Parse {
            path: path.into(),
            source,
        }
    }
}

/// An I/O error as C's `%m` prints it ("No such file or directory").
pub fn errno_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}
