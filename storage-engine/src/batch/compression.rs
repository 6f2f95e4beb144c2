//! Record-section codecs with bounded-output decompression.

use std::io::{Read, Write};

use super::header::COMPRESSION_MASK;
use super::BatchError;

/// Compression codec stored in attribute bits 0-2.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Records stored as-is.
    None = 0,
    /// gzip (RFC 1952).
    Gzip = 1,
    /// Snappy: raw on write; raw or xerial-framed on read.
    Snappy = 2,
    /// LZ4 frame format.
    Lz4 = 3,
    /// Zstandard.
    Zstd = 4,
}

impl Compression {
    /// Decodes the codec from a batch's attributes field.
    pub fn from_attributes(attributes: i16) -> Result<Compression, BatchError> {
        // Masked to 3 bits, so the cast cannot truncate.
        Compression::from_id((attributes & COMPRESSION_MASK) as u8)
    }

    /// Maps a codec id (0..=4) to a codec.
    pub fn from_id(id: u8) -> Result<Compression, BatchError> {
        match id {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Gzip),
            2 => Ok(Compression::Snappy),
            3 => Ok(Compression::Lz4),
            4 => Ok(Compression::Zstd),
            other => Err(BatchError::UnknownCompression(other)),
        }
    }

    /// The codec id as stored in the attributes.
    pub fn id(self) -> u8 {
        self as u8
    }
}

/// Header of the xerial snappy-java stream format used by Kafka's Java client.
const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\0";
/// Magic plus the two big-endian i32 version fields.
const XERIAL_HEADER_LEN: usize = 16;

fn decode_err(codec: Compression, reason: impl ToString) -> BatchError {
    BatchError::Decompression {
        codec,
        reason: reason.to_string(),
    }
}

fn encode_err(codec: Compression, reason: impl ToString) -> BatchError {
    BatchError::Compression {
        codec,
        reason: reason.to_string(),
    }
}

/// Decompresses a records section, failing instead of producing more than `max_output` bytes.
pub fn decompress(
    codec: Compression,
    input: &[u8],
    max_output: usize,
) -> Result<Vec<u8>, BatchError> {
    match codec {
        Compression::None => {
            if input.len() > max_output {
                return Err(BatchError::DecompressedTooLarge { limit: max_output });
            }
            Ok(input.to_vec())
        }
        Compression::Gzip => {
            // Multi-member aware, like Java's GZIPInputStream.
            read_bounded(codec, flate2::read::MultiGzDecoder::new(input), max_output)
        }
        Compression::Snappy => {
            if input.starts_with(XERIAL_MAGIC) {
                decompress_xerial(input, max_output)
            } else {
                decompress_raw_snappy(input, max_output)
            }
        }
        Compression::Lz4 => {
            read_bounded(codec, lz4_flex::frame::FrameDecoder::new(input), max_output)
        }
        Compression::Zstd => {
            let decoder = zstd::stream::read::Decoder::with_buffer(input)
                .map_err(|e| decode_err(codec, e))?;
            read_bounded(codec, decoder, max_output)
        }
    }
}

/// Reads at most `max_output + 1` bytes so a bomb is detected without inflating it.
fn read_bounded<R: Read>(
    codec: Compression,
    reader: R,
    max_output: usize,
) -> Result<Vec<u8>, BatchError> {
    let mut out = Vec::new();
    let cap = u64::try_from(max_output)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    reader
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|e| decode_err(codec, e))?;
    if out.len() > max_output {
        return Err(BatchError::DecompressedTooLarge { limit: max_output });
    }
    Ok(out)
}

/// Decodes one raw snappy block, appending to `out` within the overall limit.
fn append_raw_snappy(block: &[u8], out: &mut Vec<u8>, max_output: usize) -> Result<(), BatchError> {
    let codec = Compression::Snappy;
    // The declared length is checked before allocating so a tiny block that
    // claims gigabytes costs nothing.
    let len = snap::raw::decompress_len(block).map_err(|e| decode_err(codec, e))?;
    if len > max_output.saturating_sub(out.len()) {
        return Err(BatchError::DecompressedTooLarge { limit: max_output });
    }
    let start = out.len();
    out.resize(start + len, 0);
    let written = snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(|e| decode_err(codec, e))?;
    out.truncate(start + written);
    Ok(())
}

fn decompress_raw_snappy(input: &[u8], max_output: usize) -> Result<Vec<u8>, BatchError> {
    let mut out = Vec::new();
    append_raw_snappy(input, &mut out, max_output)?;
    Ok(out)
}

/// xerial framing: 16-byte header, then blocks of [u32 BE length][raw snappy].
fn decompress_xerial(input: &[u8], max_output: usize) -> Result<Vec<u8>, BatchError> {
    let codec = Compression::Snappy;
    if input.len() < XERIAL_HEADER_LEN {
        return Err(decode_err(codec, "truncated xerial snappy header"));
    }
    let mut rest = &input[XERIAL_HEADER_LEN..];
    let mut out = Vec::new();
    while !rest.is_empty() {
        let Some((len_bytes, tail)) = rest.split_first_chunk::<4>() else {
            return Err(decode_err(codec, "truncated xerial block length"));
        };
        let len = u32::from_be_bytes(*len_bytes) as usize;
        if len > tail.len() {
            return Err(decode_err(
                codec,
                format!("xerial block of {len} bytes but only {} remain", tail.len()),
            ));
        }
        let (block, next) = tail.split_at(len);
        append_raw_snappy(block, &mut out, max_output)?;
        rest = next;
    }
    Ok(out)
}

/// Compresses a records section (snappy as raw, lz4 as a default frame, zstd at the default level).
pub fn compress(codec: Compression, input: &[u8]) -> Result<Vec<u8>, BatchError> {
    match codec {
        Compression::None => Ok(input.to_vec()),
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(input).map_err(|e| encode_err(codec, e))?;
            enc.finish().map_err(|e| encode_err(codec, e))
        }
        Compression::Snappy => snap::raw::Encoder::new()
            .compress_vec(input)
            .map_err(|e| encode_err(codec, e)),
        Compression::Lz4 => {
            let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
            enc.write_all(input).map_err(|e| encode_err(codec, e))?;
            enc.finish().map_err(|e| encode_err(codec, e))
        }
        Compression::Zstd => zstd::bulk::compress(input, zstd::DEFAULT_COMPRESSION_LEVEL)
            .map_err(|e| encode_err(codec, e)),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// Wraps raw snappy blocks in xerial framing, as snappy-java writes them.
    pub(crate) fn xerial_frame(chunks: &[&[u8]]) -> Vec<u8> {
        let mut out = XERIAL_MAGIC.to_vec();
        out.extend_from_slice(&1i32.to_be_bytes()); // version
        out.extend_from_slice(&1i32.to_be_bytes()); // min compatible version
        for chunk in chunks {
            let block = snap::raw::Encoder::new()
                .compress_vec(chunk)
                .expect("snappy");
            out.extend_from_slice(&(block.len() as u32).to_be_bytes());
            out.extend_from_slice(&block);
        }
        out
    }

    fn sample() -> Vec<u8> {
        (0..10_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect()
    }

    #[test]
    fn ids_round_trip() {
        for c in ALL {
            assert_eq!(Compression::from_id(c.id()), Ok(c));
            assert_eq!(
                Compression::from_attributes(0x30 | i16::from(c.id())),
                Ok(c)
            );
        }
        for bad in 5..=7u8 {
            assert_eq!(
                Compression::from_id(bad),
                Err(BatchError::UnknownCompression(bad))
            );
        }
    }

    #[test]
    fn round_trip_every_codec() {
        let data = sample();
        for c in ALL {
            let packed = compress(c, &data).expect("compress");
            if c != Compression::None {
                assert!(packed.len() < data.len(), "{c:?} did not compress");
            }
            assert_eq!(
                decompress(c, &packed, data.len()).expect("decompress"),
                data
            );
            assert_eq!(
                decompress(c, &compress(c, b"").expect("empty"), 0),
                Ok(vec![])
            );
        }
    }

    #[test]
    fn xerial_snappy_decodes() {
        let data = sample();
        let (a, b) = data.split_at(12_345);
        let framed = xerial_frame(&[a, b]);
        assert!(framed.starts_with(XERIAL_MAGIC));
        assert_eq!(
            decompress(Compression::Snappy, &framed, data.len()),
            Ok(data.clone())
        );
        assert_eq!(
            decompress(Compression::Snappy, &framed, data.len() - 1),
            Err(BatchError::DecompressedTooLarge {
                limit: data.len() - 1
            })
        );
        // Truncated block and truncated header are errors, not panics.
        assert!(matches!(
            decompress(Compression::Snappy, &framed[..framed.len() - 3], 1 << 20),
            Err(BatchError::Decompression { .. })
        ));
        assert!(matches!(
            decompress(Compression::Snappy, &framed[..10], 1 << 20),
            Err(BatchError::Decompression { .. })
        ));
        assert_eq!(
            decompress(Compression::Snappy, &xerial_frame(&[]), 0),
            Ok(vec![])
        );
    }

    #[test]
    fn bomb_is_stopped_at_limit() {
        let zeros = vec![0u8; 8 << 20];
        let limit = 1 << 20;
        for c in ALL {
            let packed = compress(c, &zeros).expect("compress");
            assert_eq!(
                decompress(c, &packed, limit),
                Err(BatchError::DecompressedTooLarge { limit }),
                "{c:?}"
            );
            // Exactly at the limit is fine.
            assert_eq!(
                decompress(c, &packed, zeros.len()).map(|v| v.len()),
                Ok(zeros.len())
            );
        }
        let framed = xerial_frame(&[&zeros[..4 << 20], &zeros[4 << 20..]]);
        assert_eq!(
            decompress(Compression::Snappy, &framed, limit),
            Err(BatchError::DecompressedTooLarge { limit })
        );
    }

    #[test]
    fn snappy_lying_length_is_not_allocated() {
        // A raw snappy stream claiming ~4 GiB in a 5-byte varint.
        let lie = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00];
        assert_eq!(
            decompress(Compression::Snappy, &lie, 1 << 20),
            Err(BatchError::DecompressedTooLarge { limit: 1 << 20 })
        );
    }

    #[test]
    fn garbage_is_an_error() {
        let garbage: Vec<u8> = (0..200u32).map(|i| (i * 37 % 256) as u8).collect();
        for c in ALL.into_iter().skip(1) {
            assert!(
                matches!(
                    decompress(c, &garbage, 1 << 20),
                    Err(BatchError::Decompression { .. } | BatchError::DecompressedTooLarge { .. })
                ),
                "{c:?}"
            );
        }
    }
}
