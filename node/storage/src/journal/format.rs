//! Byte layout of segment headers and records (format version 1). See the [module
//! documentation](super) for the full description. Everything here is pure: encoding,
//! decoding and checksums, no I/O.

use std::fmt;

/// Magic bytes at the start of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"SLJOURNL";
/// The only format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// Size of a segment header.
pub const SEGMENT_HEADER_LEN_BYTES: u64 = 32;
/// Size of a record header (checksum, length, sequence number) preceding each payload.
pub const RECORD_HEADER_LEN_BYTES: u64 = 16;
/// Hard upper bound on any record's payload, whatever the configuration or a segment header
/// says: a length field above it is corruption.
pub const RECORD_SIZE_LIMIT_BYTES: u32 = 64 * 1024 * 1024;

pub(crate) const SEGMENT_HEADER_LEN: usize = SEGMENT_HEADER_LEN_BYTES as usize;
pub(crate) const RECORD_HEADER_LEN: usize = RECORD_HEADER_LEN_BYTES as usize;

/// What is wrong with a damaged record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Corruption {
    /// The file ends inside the record (its header or its payload is incomplete).
    Incomplete,
    /// The length field exceeds the segment's maximum record size.
    LengthOverMax {
        /// The length field.
        len_bytes: u32,
        /// The maximum recorded in the segment header.
        max_bytes: u32,
    },
    /// The CRC over length, sequence number and payload does not match.
    ChecksumMismatch,
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Incomplete => f.write_str("incomplete record (file ends inside it)"),
            Self::LengthOverMax {
                len_bytes,
                max_bytes,
            } => {
                write!(
                    f,
                    "length field {len_bytes} exceeds the maximum record size {max_bytes}"
                )
            }
            Self::ChecksumMismatch => f.write_str("checksum mismatch"),
        }
    }
}

/// A decoded segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    /// Largest payload a record of this segment may have (the configuration when it was
    /// created); records are checked against it on read.
    pub record_size_max_bytes: u32,
    /// Sequence number of the segment's first record (also in its file name).
    pub first_seq: u64,
}

/// Why a segment header does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeaderError {
    BadMagic,
    UnsupportedVersion(u32),
    ChecksumMismatch,
    RecordSizeMaxInvalid,
}

impl SegmentHeader {
    pub(crate) fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut out = [0u8; SEGMENT_HEADER_LEN];
        let mut w = Writer {
            out: &mut out,
            at: 0,
        };
        w.put(&SEGMENT_MAGIC);
        w.put(&FORMAT_VERSION.to_le_bytes());
        w.put(&self.record_size_max_bytes.to_le_bytes());
        w.put(&self.first_seq.to_le_bytes());
        w.put(&0u32.to_le_bytes()); // reserved
        let crc = crc32fast::hash(out.get(..28).unwrap_or_default());
        let mut w = Writer {
            out: &mut out,
            at: 28,
        };
        w.put(&crc.to_le_bytes());
        out
    }

    /// Decodes a header. The magic is checked first, then the version (so that a future
    /// format is reported as such, not as corruption), then the checksum.
    pub(crate) fn decode(bytes: &[u8; SEGMENT_HEADER_LEN]) -> Result<Self, HeaderError> {
        if bytes.get(..8) != Some(&SEGMENT_MAGIC[..]) {
            return Err(HeaderError::BadMagic);
        }
        let field = |at| le_u32(bytes, at).ok_or(HeaderError::ChecksumMismatch);
        let version = field(8)?;
        if version != FORMAT_VERSION {
            return Err(HeaderError::UnsupportedVersion(version));
        }
        let crc = field(28)?;
        if crc32fast::hash(bytes.get(..28).unwrap_or_default()) != crc {
            return Err(HeaderError::ChecksumMismatch);
        }
        let record_size_max_bytes = field(12)?;
        if record_size_max_bytes == 0 || record_size_max_bytes > RECORD_SIZE_LIMIT_BYTES {
            return Err(HeaderError::RecordSizeMaxInvalid);
        }
        let first_seq = le_u64(bytes, 16).ok_or(HeaderError::ChecksumMismatch)?;
        Ok(Self {
            record_size_max_bytes,
            first_seq,
        })
    }
}

/// A decoded record header (not yet checked against its payload).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordHeader {
    pub crc: u32,
    pub len_bytes: u32,
    pub seq: u64,
}

impl RecordHeader {
    pub(crate) fn decode(bytes: &[u8; RECORD_HEADER_LEN]) -> Self {
        Self {
            crc: le_u32(bytes, 0).unwrap_or(0),
            len_bytes: le_u32(bytes, 4).unwrap_or(0),
            seq: le_u64(bytes, 8).unwrap_or(0),
        }
    }

    /// Whether `payload` is this record's payload: CRC over length, sequence and payload.
    pub(crate) fn matches(&self, payload: &[u8]) -> bool {
        u32::try_from(payload.len()) == Ok(self.len_bytes)
            && record_crc(self.len_bytes, self.seq, payload) == self.crc
    }
}

/// CRC-32 (IEEE) over the length field, the sequence field and the payload, in file order.
pub(crate) fn record_crc(len_bytes: u32, seq: u64, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len_bytes.to_le_bytes());
    hasher.update(&seq.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

/// Size of a record with a payload of `payload_len` bytes, header included.
pub(crate) fn encoded_len(payload_len: usize) -> u64 {
    (payload_len as u64).saturating_add(RECORD_HEADER_LEN_BYTES)
}

/// Appends the encoding of one record to `out`. The caller has checked that the payload fits
/// the configured maximum (so in a `u32`).
pub(crate) fn encode_record(out: &mut Vec<u8>, seq: u64, payload: &[u8]) {
    let len_bytes = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&record_crc(len_bytes, seq, payload).to_le_bytes());
    out.extend_from_slice(&len_bytes.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(payload);
}

pub(crate) fn le_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let slice = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(slice.try_into().ok()?))
}

pub(crate) fn le_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let slice = bytes.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(slice.try_into().ok()?))
}

struct Writer<'a> {
    out: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let end = self.at.saturating_add(bytes.len());
        if let Some(dst) = self.out.get_mut(self.at..end) {
            dst.copy_from_slice(bytes);
        }
        self.at = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_roundtrip_and_layout() {
        let header = SegmentHeader {
            record_size_max_bytes: 1 << 20,
            first_seq: 0x0102_0304_0506_0708,
        };
        let bytes = header.encode();
        assert_eq!(&bytes[..8], b"SLJOURNL");
        assert_eq!(&bytes[8..12], &1u32.to_le_bytes());
        assert_eq!(&bytes[12..16], &(1u32 << 20).to_le_bytes());
        assert_eq!(&bytes[16..24], &0x0102_0304_0506_0708u64.to_le_bytes());
        assert_eq!(&bytes[24..28], &[0; 4]);
        assert_eq!(&bytes[28..32], &crc32fast::hash(&bytes[..28]).to_le_bytes());
        assert_eq!(SegmentHeader::decode(&bytes), Ok(header));
    }

    #[test]
    fn header_errors() {
        let good = SegmentHeader {
            record_size_max_bytes: 100,
            first_seq: 1,
        }
        .encode();

        let mut bad = good;
        bad[0] ^= 1;
        assert_eq!(SegmentHeader::decode(&bad), Err(HeaderError::BadMagic));

        let mut future = good;
        future[8..12].copy_from_slice(&2u32.to_le_bytes());
        assert_eq!(
            SegmentHeader::decode(&future),
            Err(HeaderError::UnsupportedVersion(2))
        );

        for i in 12..32 {
            let mut flipped = good;
            flipped[i] ^= 0x40;
            assert_eq!(
                SegmentHeader::decode(&flipped),
                Err(HeaderError::ChecksumMismatch),
                "{i}"
            );
        }

        let zero_max = SegmentHeader {
            record_size_max_bytes: 0,
            first_seq: 1,
        }
        .encode();
        assert_eq!(
            SegmentHeader::decode(&zero_max),
            Err(HeaderError::RecordSizeMaxInvalid)
        );
    }

    #[test]
    fn record_layout_and_checksum() {
        let mut out = Vec::new();
        encode_record(&mut out, 7, b"hello");
        assert_eq!(out.len() as u64, encoded_len(5));
        let header = RecordHeader::decode(out[..16].try_into().unwrap());
        assert_eq!(header.len_bytes, 5);
        assert_eq!(header.seq, 7);
        assert_eq!(header.crc, record_crc(5, 7, b"hello"));
        assert!(header.matches(&out[16..]));
        assert!(!header.matches(b"hellp"));
        assert!(!header.matches(b"hell"));
        // The checksum covers the sequence number and the length too.
        assert_ne!(record_crc(5, 8, b"hello"), header.crc);
        assert_ne!(record_crc(6, 7, b"hello"), header.crc);
    }

    #[test]
    fn zeroes_are_never_a_valid_record() {
        let header = RecordHeader::decode(&[0; 16]);
        assert!(!header.matches(&[]));
    }

    #[test]
    fn field_readers_reject_short_input() {
        assert_eq!(le_u32(&[1, 0, 0], 0), None);
        assert_eq!(le_u64(&[0; 8], 1), None);
        assert_eq!(le_u32(&[1, 0, 0, 0], usize::MAX), None);
    }
}
