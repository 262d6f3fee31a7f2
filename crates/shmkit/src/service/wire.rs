//! The service's frame format: a 16-byte header before each request's and
//! response's body, in the rings of `many_to_one::layout`.
//!
//! ```text
//! offset 0  id      u64, little-endian: the client's number for the request
//! offset 8  status  u32: REQUEST, OK or ERROR
//! offset 12 zero    u32, reserved
//! offset 16 body
//! ```

/// The header, as it lies before the body (little-endian fields).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Wire {
    pub id: u64,
    pub status: u32,
    pub reserved: u32,
}

/// The header's size.
pub(crate) const HEADER: usize = 16;

const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(size_of::<Wire>() == HEADER);
    assert!(offset_of!(Wire, id) == 0 && offset_of!(Wire, status) == 8 && offset_of!(Wire, reserved) == 12);
};

/// A request, client → server.
pub(crate) const REQUEST: u32 = 0x5251_4552; // "REQR"
/// A response: the server's answer.
pub(crate) const OK: u32 = 0x4b4f_5352; // "RSOK"
/// A response: the server reports a failure.
pub(crate) const ERROR: u32 = 0x5245_5352; // "RSER"

impl Wire {
    /// The header's bytes.
    pub(crate) fn encode(self) -> [u8; HEADER] {
        let mut b = [0u8; HEADER];
        b[..8].copy_from_slice(&self.id.to_le_bytes());
        b[8..12].copy_from_slice(&self.status.to_le_bytes());
        b[12..].copy_from_slice(&self.reserved.to_le_bytes());
        b
    }

    /// The header at the start of `frame`, if the frame has one.
    pub(crate) fn decode(frame: &[u8]) -> Option<Wire> {
        let h: &[u8; HEADER] = frame.get(..HEADER)?.try_into().ok()?;
        Some(Wire {
            id: u64::from_le_bytes(h[..8].try_into().ok()?),
            status: u32::from_le_bytes(h[8..12].try_into().ok()?),
            reserved: u32::from_le_bytes(h[12..].try_into().ok()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_short_frames() {
        let w = Wire {
            id: 0x0102_0304_0506_0708,
            status: OK,
            reserved: 0,
        };
        let mut frame = w.encode().to_vec();
        frame.extend_from_slice(b"body");
        assert_eq!(Wire::decode(&frame), Some(w));
        assert_eq!(Wire::decode(&frame[..15]), None);
        assert_eq!(frame[0], 8, "little-endian");
    }
}
