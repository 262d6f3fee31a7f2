//! The service's frame format: one 8-byte word before each request's and
//! response's body, in the rings of `many_to_one::layout`.
//!
//! ```text
//! offset 0  word    u64, one atomic word: bits 0..62 the client's number for
//!                   the request (the id), bits 62..64 the kind: REQUEST, OK
//!                   or ERROR (0 is invalid)
//! offset 8  body
//! ```
//!
//! One word, not a struct of several fields: it is stored and loaded as one
//! (the ring's payloads start 8-aligned), and a 64-byte body with its ring
//! header and this word fills 80 bytes, where a wider header would spill
//! into a third cache line more often.

use crate::core::ring::Buf;
use crate::core::sync::Ordering;

/// The header's size.
pub(crate) const HEADER: usize = 8;

/// The kinds (bits 62..64 of the word).
pub(crate) const REQUEST: u64 = 1;
/// A response: the server's answer.
pub(crate) const OK: u64 = 2;
/// A response: the server reports a failure.
pub(crate) const ERROR: u64 = 3;

const KIND_SHIFT: u32 = 62;

/// The largest id a frame carries (ids are counted from 1 by each client,
/// so never reached).
pub(crate) const MAX_ID: u64 = (1 << KIND_SHIFT) - 1;

/// The header word of a frame of `kind` for request `id` (at most
/// [`MAX_ID`]: callers check).
#[inline]
pub(crate) fn encode(id: u64, kind: u64) -> u64 {
    debug_assert!(id <= MAX_ID && (REQUEST..=ERROR).contains(&kind));
    kind << KIND_SHIFT | (id & MAX_ID)
}

/// The id and kind a header word says (a kind of 0 is invalid; any other
/// word decodes).
#[inline]
pub(crate) fn decode(word: u64) -> (u64, u64) {
    (word & MAX_ID, word >> KIND_SHIFT)
}

/// Writes the header word of a frame whose payload starts at `at` (8-aligned:
/// a ring payload's start).
#[inline]
pub(crate) fn write(buf: &Buf, at: usize, id: u64, kind: u64) {
    buf.store_word(at, encode(id, kind), Ordering::Relaxed);
}

/// Reads the header word of a frame of `len` bytes whose payload starts at
/// `at`: its id and kind; `None` if the frame is shorter than a header.
#[inline]
pub(crate) fn read(buf: &Buf, at: usize, len: usize) -> Option<(u64, u64)> {
    (len >= HEADER).then(|| decode(buf.load_word(at)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for (id, kind) in [(1, REQUEST), (MAX_ID, OK), (0x0102_0304_0506, ERROR)] {
            assert_eq!(decode(encode(id, kind)), (id, kind));
        }
        assert_eq!(decode(0), (0, 0), "an invalid kind");
        assert_eq!(encode(5, OK).to_le_bytes()[0], 5, "little-endian id first");
    }
}
