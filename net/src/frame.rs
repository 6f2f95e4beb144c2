//! Kafka framing: a 4-byte big-endian size, then that many bytes.
//!
//! The size is checked against the frame limit as soon as its four bytes are
//! in, before anything is reserved for the body (Kafka CVE-2022-34917 was an
//! allocation before a length check). "Incomplete" (`Ok(None)`: read more) and
//! "invalid" (`Err`: close the connection) are kept apart.

use bytes::{Buf, BytesMut};

/// Kafka's default `socket.request.max.bytes`: the largest frame a broker accepts.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 104_857_600;

/// Bytes taken by the size prefix of every frame.
pub const SIZE_PREFIX_BYTES: usize = 4;

/// Why a frame was refused; the connection it came from must be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The size prefix is negative.
    #[error("frame size is negative ({size})")]
    Negative {
        /// The size as sent.
        size: i32,
    },
    /// The size prefix is zero: no request header can fit.
    #[error("frame size is zero")]
    Empty,
    /// The size prefix is above the frame limit.
    #[error("frame size {size} is above the limit of {max} bytes")]
    TooLarge {
        /// The size as sent.
        size: usize,
        /// The limit in force.
        max: usize,
    },
}

/// Splits a byte stream into frames, checking each size before buffering its body.
#[derive(Debug)]
pub struct FrameDecoder {
    max_frame_bytes: usize,
    buffer: BytesMut,
}

impl FrameDecoder {
    /// A decoder that refuses frames larger than `max_frame_bytes` (the size prefix excluded).
    pub fn new(max_frame_bytes: usize) -> Self {
        Self {
            max_frame_bytes,
            buffer: BytesMut::new(),
        }
    }

    /// The frame limit in force, in bytes.
    pub fn max_frame_bytes(&self) -> usize {
        self.max_frame_bytes
    }

    /// The buffer to append socket bytes to; `next_frame` consumes from its front.
    pub fn buffer(&mut self) -> &mut BytesMut {
        &mut self.buffer
    }

    /// Appends bytes received from the peer.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// Bytes received but not yet returned as frames.
    pub fn buffered_bytes(&self) -> usize {
        self.buffer.len()
    }

    /// Bytes still missing before the next frame is complete (at least 1 when nothing is buffered).
    pub fn missing_bytes(&self) -> usize {
        match self.peek_size() {
            None => SIZE_PREFIX_BYTES - self.buffer.len(),
            // An invalid size is reported by `next_frame`; nothing more is needed to see it.
            Some(size) => match usize::try_from(size) {
                Ok(size) if size <= self.max_frame_bytes => {
                    (SIZE_PREFIX_BYTES + size).saturating_sub(self.buffer.len())
                }
                _ => 0,
            },
        }
    }

    /// The next complete frame (without its size prefix), `Ok(None)` if more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<BytesMut>, FrameError> {
        let Some(size) = self.peek_size() else {
            return Ok(None);
        };
        let size = match usize::try_from(size) {
            Err(_) => return Err(FrameError::Negative { size }),
            Ok(0) => return Err(FrameError::Empty),
            Ok(size) if size > self.max_frame_bytes => {
                return Err(FrameError::TooLarge {
                    size,
                    max: self.max_frame_bytes,
                })
            }
            Ok(size) => size,
        };
        if self.buffer.len() < SIZE_PREFIX_BYTES + size {
            return Ok(None);
        }
        self.buffer.advance(SIZE_PREFIX_BYTES);
        Ok(Some(self.buffer.split_to(size)))
    }

    /// The size prefix at the front of the buffer, once its four bytes are in.
    fn peek_size(&self) -> Option<i32> {
        let prefix: [u8; SIZE_PREFIX_BYTES] =
            self.buffer.get(..SIZE_PREFIX_BYTES)?.try_into().ok()?;
        Some(i32::from_be_bytes(prefix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(body: &[u8]) -> Vec<u8> {
        let mut out = (body.len() as i32).to_be_bytes().to_vec();
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn incomplete_prefix_and_body_need_more_bytes() {
        let mut decoder = FrameDecoder::new(DEFAULT_MAX_FRAME_BYTES);
        assert_eq!(decoder.next_frame(), Ok(None));
        assert_eq!(decoder.missing_bytes(), 4);
        decoder.extend(&[0, 0]);
        assert_eq!(decoder.next_frame(), Ok(None));
        decoder.extend(&[0, 3, b'a']);
        assert_eq!(decoder.next_frame(), Ok(None));
        assert_eq!(decoder.missing_bytes(), 2);
        decoder.extend(b"bc");
        assert_eq!(decoder.next_frame().unwrap().unwrap().as_ref(), b"abc");
        assert_eq!(decoder.next_frame(), Ok(None));
        assert_eq!(decoder.buffered_bytes(), 0);
    }

    #[test]
    fn several_frames_in_one_read_come_out_in_order() {
        let mut decoder = FrameDecoder::new(16);
        let mut bytes = framed(b"one");
        bytes.extend(framed(b"two!"));
        bytes.extend(&framed(b"three")[..5]);
        decoder.extend(&bytes);
        assert_eq!(decoder.next_frame().unwrap().unwrap().as_ref(), b"one");
        assert_eq!(decoder.next_frame().unwrap().unwrap().as_ref(), b"two!");
        assert_eq!(decoder.next_frame(), Ok(None));
        decoder.extend(b"hree");
        assert_eq!(decoder.next_frame().unwrap().unwrap().as_ref(), b"three");
    }

    #[test]
    fn frame_at_the_limit_is_accepted_one_above_is_not() {
        let mut decoder = FrameDecoder::new(8);
        decoder.extend(&framed(&[7; 8]));
        assert_eq!(decoder.next_frame().unwrap().unwrap().len(), 8);
        decoder.extend(&framed(&[7; 9]));
        assert_eq!(
            decoder.next_frame(),
            Err(FrameError::TooLarge { size: 9, max: 8 })
        );
    }

    #[test]
    fn negative_and_zero_sizes_are_invalid() {
        let mut decoder = FrameDecoder::new(DEFAULT_MAX_FRAME_BYTES);
        decoder.extend(&(-1i32).to_be_bytes());
        assert_eq!(decoder.next_frame(), Err(FrameError::Negative { size: -1 }));
        let mut decoder = FrameDecoder::new(DEFAULT_MAX_FRAME_BYTES);
        decoder.extend(&i32::MIN.to_be_bytes());
        assert_eq!(
            decoder.next_frame(),
            Err(FrameError::Negative { size: i32::MIN })
        );
        let mut decoder = FrameDecoder::new(DEFAULT_MAX_FRAME_BYTES);
        decoder.extend(&0i32.to_be_bytes());
        assert_eq!(decoder.next_frame(), Err(FrameError::Empty));
    }

    #[test]
    fn oversized_frame_is_refused_from_its_prefix_without_allocating() {
        let mut decoder = FrameDecoder::new(DEFAULT_MAX_FRAME_BYTES);
        decoder.extend(&i32::MAX.to_be_bytes());
        let capacity_before = decoder.buffer().capacity();
        assert_eq!(
            decoder.next_frame(),
            Err(FrameError::TooLarge {
                size: i32::MAX as usize,
                max: DEFAULT_MAX_FRAME_BYTES
            })
        );
        assert_eq!(decoder.missing_bytes(), 0);
        // Only the four prefix bytes were ever buffered; nothing was reserved for the body.
        assert_eq!(decoder.buffer().capacity(), capacity_before);
        assert!(decoder.buffer().capacity() < 64);
    }
}
