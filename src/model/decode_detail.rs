//! [`DecodeDetail`]: why a log of a tracked asset could not be decoded, carried by a
//! [`BalanceChange::Undecodable`](super::BalanceChange::Undecodable) event.

use std::fmt;

/// Most bytes of a decoder's message a [`DecodeDetail`] keeps.
pub const DECODE_DETAIL_MAX: usize = 62;

/// The decoder's message for a log it rejected, cut to [`DECODE_DETAIL_MAX`] bytes (at a
/// character boundary, ending with `…` when cut) so that balance events stay `Copy` and
/// small. The block source logs the whole message at `warn`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DecodeDetail {
    len: u8,
    bytes: [u8; DECODE_DETAIL_MAX],
}

impl DecodeDetail {
    /// The first bytes of `message` (all of it if it fits).
    pub fn new(message: &str) -> Self {
        let mut bytes = [0u8; DECODE_DETAIL_MAX];
        let kept = if message.len() <= DECODE_DETAIL_MAX {
            message
        } else {
            // Room for the ellipsis (3 bytes), cut at a character boundary.
            let mut end = DECODE_DETAIL_MAX - '…'.len_utf8();
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            &message[..end]
        };
        bytes[..kept.len()].copy_from_slice(kept.as_bytes());
        let mut len = kept.len();
        if kept.len() < message.len() {
            let mut tail = [0u8; 4];
            let tail = '…'.encode_utf8(&mut tail).as_bytes();
            bytes[len..len + tail.len()].copy_from_slice(tail);
            len += tail.len();
        }
        Self {
            len: len as u8,
            bytes,
        }
    }

    /// The kept message.
    pub fn as_str(&self) -> &str {
        // Built from a `&str` cut at a character boundary (plus a whole `…`).
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

impl fmt::Display for DecodeDetail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for DecodeDetail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl From<&str> for DecodeDetail {
    fn from(message: &str) -> Self {
        Self::new(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_message_is_kept_whole() {
        let d = DecodeDetail::new("Transfer: buffer overrun while deserializing");
        assert_eq!(d.as_str(), "Transfer: buffer overrun while deserializing");
        assert_eq!(DecodeDetail::new("").as_str(), "");
    }

    #[test]
    fn a_long_message_is_cut_at_a_character_boundary_with_an_ellipsis() {
        let long = "é".repeat(100);
        let d = DecodeDetail::new(&long);
        assert!(d.as_str().len() <= DECODE_DETAIL_MAX);
        assert!(d.as_str().ends_with('…'));
        assert!(long.starts_with(d.as_str().trim_end_matches('…')));
        let exact = "x".repeat(DECODE_DETAIL_MAX);
        assert_eq!(DecodeDetail::new(&exact).as_str(), exact);
    }
}
