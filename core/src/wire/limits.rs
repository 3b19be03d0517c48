//! How much a peer may make us buffer or allocate with one frame.

use core::fmt;

use super::frame::MIN_FRAME_LEN;

/// Upper bounds enforced while decoding, before anything is buffered or allocated.
///
/// One `Limits` value is shared by the frame decoder and every message codec. Both ends of a
/// session should use the same values: a sender exceeding the receiver's limits has its frames
/// rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Largest frame, counted as the bytes after the length prefix (protocol id, message type and
    /// body). The streaming decoder buffers at most this much (plus a 5-byte prefix) per frame.
    pub max_frame_len: u32,
    /// Largest item count of any list.
    pub max_list_len: u32,
    /// Largest byte string or UTF-8 string, in bytes.
    pub max_bytes_len: u32,
}

impl Limits {
    /// The defaults, usable in `const` contexts.
    ///
    /// - Frames up to 1 MiB: room for a batch of Raft log entries or a large DHT value with its
    ///   envelope, while a hostile peer can pin at most 1 MiB of buffer per connection.
    /// - Lists up to 4096 items: far above the largest honest list (k = 20 DHT contacts, a gossip
    ///   IHAVE batch, a Raft append batch) yet a `Vec` of that many small items stays small.
    /// - Byte and text strings up to 256 KiB: a quarter of a frame, so one value fits with room to
    ///   spare but a single field cannot take a whole frame.
    ///   Raft commands and snapshot chunks are byte strings too: a Raft group configured for
    ///   chunks above 256 KiB decodes its frames with a larger `max_bytes_len` (its own
    ///   configured sizes are then checked by the Raft machine).
    pub const DEFAULT: Limits = Limits {
        max_frame_len: 1 << 20,
        max_list_len: 4096,
        max_bytes_len: 256 << 10,
    };

    /// Checks that the limits make sense together.
    pub fn validate(&self) -> Result<(), LimitsError> {
        if self.max_frame_len < MIN_FRAME_LEN {
            return Err(LimitsError::FrameLimitTooSmall {
                max_frame_len: self.max_frame_len,
            });
        }
        if self.max_list_len == 0 {
            return Err(LimitsError::ZeroListLimit);
        }
        if self.max_bytes_len == 0 {
            return Err(LimitsError::ZeroBytesLimit);
        }
        // A byte string always travels inside a frame, so a larger bytes limit could never be
        // reached and is almost certainly a configuration mistake.
        if self.max_bytes_len > self.max_frame_len {
            return Err(LimitsError::BytesLimitAboveFrameLimit {
                max_bytes_len: self.max_bytes_len,
                max_frame_len: self.max_frame_len,
            });
        }
        Ok(())
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// Why a [`Limits`] value was rejected by [`Limits::validate`]. Fix the configuration; nothing was
/// changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LimitsError {
    /// `max_frame_len` is below 2, the size of the smallest possible frame (a one-byte protocol id
    /// and a message type), so every frame would be rejected.
    FrameLimitTooSmall {
        /// The configured value.
        max_frame_len: u32,
    },
    /// `max_list_len` is zero, so no list could hold anything.
    ZeroListLimit,
    /// `max_bytes_len` is zero, so every non-empty string would be rejected.
    ZeroBytesLimit,
    /// `max_bytes_len` exceeds `max_frame_len`; a string can never be larger than its frame.
    BytesLimitAboveFrameLimit {
        /// The configured bytes limit.
        max_bytes_len: u32,
        /// The configured frame limit.
        max_frame_len: u32,
    },
}

impl fmt::Display for LimitsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitsError::FrameLimitTooSmall { max_frame_len } => write!(
                f,
                "max_frame_len {max_frame_len} is below the minimum frame length {MIN_FRAME_LEN}"
            ),
            LimitsError::ZeroListLimit => f.write_str("max_list_len must not be zero"),
            LimitsError::ZeroBytesLimit => f.write_str("max_bytes_len must not be zero"),
            LimitsError::BytesLimitAboveFrameLimit {
                max_bytes_len,
                max_frame_len,
            } => write!(
                f,
                "max_bytes_len {max_bytes_len} exceeds max_frame_len {max_frame_len}"
            ),
        }
    }
}

impl std::error::Error for LimitsError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(Limits::default().validate(), Ok(()));
        assert_eq!(Limits::default().max_frame_len, 1_048_576);
        assert_eq!(Limits::default().max_bytes_len, 262_144);
    }

    #[test]
    fn validate_rejects_each_bad_setting() {
        let ok = Limits::DEFAULT;
        let frame = Limits {
            max_frame_len: 1,
            max_bytes_len: 1,
            ..ok
        };
        assert_eq!(
            frame.validate(),
            Err(LimitsError::FrameLimitTooSmall { max_frame_len: 1 })
        );
        let list = Limits {
            max_list_len: 0,
            ..ok
        };
        assert_eq!(list.validate(), Err(LimitsError::ZeroListLimit));
        let bytes = Limits {
            max_bytes_len: 0,
            ..ok
        };
        assert_eq!(bytes.validate(), Err(LimitsError::ZeroBytesLimit));
        let above = Limits {
            max_frame_len: 10,
            max_bytes_len: 11,
            ..ok
        };
        assert_eq!(
            above.validate(),
            Err(LimitsError::BytesLimitAboveFrameLimit {
                max_bytes_len: 11,
                max_frame_len: 10
            })
        );
        let smallest = Limits {
            max_frame_len: 2,
            max_list_len: 1,
            max_bytes_len: 1,
        };
        assert_eq!(smallest.validate(), Ok(()));
    }
}
