//! xz / zstd / gzip decoding, chosen by magic bytes, with a hard output cap.

use crate::error::ParseError;
use std::io::Read;

/// No kernel module is anywhere near this large; the largest Debian module is about 10 MiB.
pub const DEFAULT_LIMIT: u64 = 512 * 1024 * 1024;

/// How a module file is stored on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Xz,
    Zstd,
    Gzip,
}

impl Compression {
    /// Detect the container from the first bytes (never from the file name).
    pub fn detect(data: &[u8]) -> Option<Compression> {
        if data.starts_with(b"\x7fELF") {
            Some(Compression::None)
        } else if data.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            Some(Compression::Xz)
        } else if data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Some(Compression::Zstd)
        } else if data.starts_with(&[0x1f, 0x8b]) {
            Some(Compression::Gzip)
        } else {
            None
        }
    }

    /// The name `/sys/module/compression` uses for this format.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
            Compression::Gzip => "gzip",
        }
    }

    /// The usual file-name suffix.
    pub fn suffix(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Xz => ".xz",
            Compression::Zstd => ".zst",
            Compression::Gzip => ".gz",
        }
    }
}

/// Decompress `data` (whose format is `kind`), refusing to produce more than `limit` bytes.
pub fn decompress(kind: Compression, data: &[u8], limit: u64) -> Result<Vec<u8>, ParseError> {
    match kind {
        Compression::None => Ok(data.to_vec()),
        Compression::Xz => {
            let dec = liblzma::stream::Stream::new_stream_decoder(
                u64::MAX,
                liblzma::stream::CONCATENATED,
            )
            .map_err(|e| corrupt("xz", e))?;
            read_capped(
                liblzma::read::XzDecoder::new_stream(data, dec),
                "xz",
                data.len(),
                limit,
                None,
            )
        }
        Compression::Zstd => {
            let hint = zstd::zstd_safe::get_frame_content_size(data).ok().flatten();
            let dec =
                zstd::stream::read::Decoder::with_buffer(data).map_err(|e| corrupt("zstd", e))?;
            read_capped(dec, "zstd", data.len(), limit, hint)
        }
        Compression::Gzip => {
            let hint = gzip_isize(data);
            read_capped(
                flate2::read::MultiGzDecoder::new(data),
                "gzip",
                data.len(),
                limit,
                hint,
            )
        }
    }
}

pub(crate) fn corrupt(format: &'static str, e: impl std::fmt::Display) -> ParseError {
    ParseError::Decompress {
        format,
        reason: e.to_string(),
    }
}

/// The gzip trailer's ISIZE (size mod 2^32): only a hint for the first allocation.
fn gzip_isize(data: &[u8]) -> Option<u64> {
    let tail = data.len().checked_sub(4).and_then(|i| data.get(i..))?;
    Some(u32::from_le_bytes(tail.try_into().ok()?) as u64)
}

/// Read `reader` to its end, refusing more than `limit` bytes; the first allocation trusts
/// `size_hint` (a size field of the input) only up to 32x the input's length.
pub(crate) fn read_capped(
    reader: impl Read,
    format: &'static str,
    input_len: usize,
    limit: u64,
    size_hint: Option<u64>,
) -> Result<Vec<u8>, ParseError> {
    // The first allocation trusts a size field only as far as the cap allows; a typical module
    // compresses 3-5x, so without a hint start at 4x the input.
    // A size field is untrusted: never let it allocate more than 32x the input up front.
    let guess = size_hint
        .unwrap_or(input_len as u64 * 4)
        .min(limit)
        .min(input_len as u64 * 32 + 65536);
    let mut out = Vec::with_capacity(guess as usize + 1);
    let mut capped = reader.take(limit.saturating_add(1));
    capped
        .read_to_end(&mut out)
        .map_err(|e| corrupt(format, e))?;
    if out.len() as u64 > limit {
        return Err(ParseError::TooLarge { format, limit });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_by_magic() {
        assert_eq!(Compression::detect(b"\x7fELF\x02"), Some(Compression::None));
        assert_eq!(
            Compression::detect(&[0x28, 0xb5, 0x2f, 0xfd, 0]),
            Some(Compression::Zstd)
        );
        assert_eq!(
            Compression::detect(&[0x1f, 0x8b, 8]),
            Some(Compression::Gzip)
        );
        assert_eq!(Compression::detect(b"\xfd7zXZ\0"), Some(Compression::Xz));
        assert_eq!(Compression::detect(b"hello"), None);
    }

    #[test]
    fn round_trips_and_caps() {
        let payload = vec![7u8; 100_000];
        let z = zstd::encode_all(&payload[..], 3).unwrap();
        assert_eq!(decompress(Compression::Zstd, &z, 1 << 20).unwrap(), payload);
        let err = decompress(Compression::Zstd, &z, 1000).unwrap_err();
        assert!(
            matches!(err, ParseError::TooLarge { limit: 1000, .. }),
            "{err}"
        );

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &payload).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(
            decompress(Compression::Gzip, &gz, 1 << 20).unwrap(),
            payload
        );
        assert!(decompress(Compression::Gzip, &gz, 99_999).is_err());

        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
        std::io::Write::write_all(&mut xz, &payload).unwrap();
        let xz = xz.finish().unwrap();
        assert_eq!(decompress(Compression::Xz, &xz, 1 << 20).unwrap(), payload);
        assert!(decompress(Compression::Xz, &xz, 10).is_err());
    }

    #[test]
    fn an_unlimited_cap_does_not_overflow() {
        let z = zstd::encode_all(&b"abc"[..], 3).unwrap();
        assert_eq!(decompress(Compression::Zstd, &z, u64::MAX).unwrap(), b"abc");
    }

    #[test]
    fn corrupt_data_is_an_error() {
        for kind in [Compression::Xz, Compression::Zstd, Compression::Gzip] {
            let mut bad = match kind {
                Compression::Xz => b"\xfd7zXZ\0".to_vec(),
                Compression::Zstd => vec![0x28, 0xb5, 0x2f, 0xfd],
                _ => vec![0x1f, 0x8b, 8, 0],
            };
            bad.extend_from_slice(&[0xAB; 40]);
            assert!(decompress(kind, &bad, 1 << 20).is_err(), "{kind:?}");
        }
    }
}
