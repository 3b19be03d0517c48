//! Telling a torn tail from damage in the middle of a segment.
//!
//! A write cut short by a crash leaves a bad frame with nothing valid after it: the file ends
//! inside the frame, or continues with zeros or garbage. A bad frame *followed by records that
//! check out* is something else — a bit flip or a lost sector in data that may have been
//! acknowledged — and cutting the file there would silently drop those records. So before
//! truncating, recovery scans the rest of the file for any valid record.
//!
//! The scan is linear: a byte offset is only checksummed when its frame header is plausible for
//! a record this crate writes (known type, exact length for fixed-size records, an entry index
//! in the range the tail could reach, a small hard state), so random bytes almost never cost a
//! checksum. Memory is one 64 KiB window plus one record (at most the 64 MiB record limit).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use crate::record::{
    read_frame, u32_at, u64_at, Frame, Record, ENTRY_OVERHEAD, FRAME_HEADER, MAX_RECORD_BYTES,
    TYPE_COMPACT, TYPE_ENTRY, TYPE_HARD_STATE, TYPE_TRUNCATE,
};

/// Bytes of a frame looked at before checksumming it: header, type byte and an entry's index.
const PEEK: usize = FRAME_HEADER as usize + 1 + 8;
/// Bytes read at a time while scanning.
const WINDOW: usize = 64 << 10;
/// Hard states are a term, a vote and a commit index: a larger one is not worth a checksum.
const MAX_PLAUSIBLE_HARD_STATE: u32 = 64 << 10;

/// Whether a frame starting with `head` (up to [`PEEK`] bytes), with `remaining` bytes left in
/// the file, looks like a record the writer could have produced after entry `last_index`.
fn plausible(head: &[u8], remaining: u64, max_index: u64) -> bool {
    let Some(len) = u32_at(head, 0) else {
        return false;
    };
    if len == 0 || len > MAX_RECORD_BYTES || u64::from(len) > remaining.saturating_sub(FRAME_HEADER)
    {
        return false;
    }
    match head.get(FRAME_HEADER as usize) {
        Some(&TYPE_ENTRY) => {
            u64::from(len) > ENTRY_OVERHEAD
                && u64_at(head, FRAME_HEADER as usize + 1)
                    .is_some_and(|index| (1..=max_index).contains(&index))
        }
        Some(&TYPE_TRUNCATE) => len == 1 + 8,
        Some(&TYPE_HARD_STATE) => len <= MAX_PLAUSIBLE_HARD_STATE,
        Some(&TYPE_COMPACT) => len == 1 + 16,
        _ => false,
    }
}

/// Whether a whole, checksummed, well-formed record (not a segment header) starts at `at`.
fn valid_at(probe: &mut File, at: u64, file_len: u64) -> io::Result<bool> {
    probe.seek(SeekFrom::Start(at))?;
    Ok(match read_frame(probe, file_len - at)? {
        Frame::Valid { ty, payload, .. } => !matches!(
            Record::decode(ty, payload),
            Err(_) | Ok(Record::SegmentHeader { .. })
        ),
        Frame::End | Frame::Invalid(_) => false,
    })
}

/// Looks for a valid record starting anywhere in `(bad, file_len)` of `path`, where `bad` is the
/// offset of a frame that failed to read and `last_index` the last entry index replayed before
/// it. Returns the offset of the first one found.
pub(crate) fn valid_record_after(
    path: &Path,
    bad: u64,
    file_len: u64,
    last_index: u64,
) -> io::Result<Option<u64>> {
    let start = bad.saturating_add(1);
    if start >= file_len {
        return Ok(None);
    }
    // Every record is more than 16 bytes, so the tail holds fewer entries than it has bytes;
    // after a truncation record indexes restart lower, never higher.
    let max_index = last_index.saturating_add(file_len - start);
    let mut reader = File::open(path)?;
    reader.seek(SeekFrom::Start(start))?;
    let mut reader = reader.take(file_len - start);
    let mut probe = File::open(path)?;
    let mut window = vec![0u8; WINDOW];
    let mut base = start; // file offset of window[0]
    let mut filled = 0;
    loop {
        let n = reader.read(&mut window[filled..])?;
        filled += n;
        let at_end = n == 0;
        // Offsets whose PEEK bytes are all in the window (all of them once the file is read).
        let scan_end = if at_end {
            filled
        } else {
            filled.saturating_sub(PEEK - 1)
        };
        for i in 0..scan_end {
            let at = base + i as u64;
            let head = &window[i..filled.min(i + PEEK)];
            if plausible(head, file_len - at, max_index) && valid_at(&mut probe, at, file_len)? {
                return Ok(Some(at));
            }
        }
        if at_end {
            return Ok(None);
        }
        window.copy_within(scan_end..filled, 0);
        base += scan_end as u64;
        filled -= scan_end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dir::tests::TempDir;
    use crate::record::{encode_entry, encode_hard_state, encode_truncate};

    #[test]
    fn finds_records_after_damage_but_not_in_garbage() {
        let dir = TempDir::new("tail");
        let path = dir.path().join("seg");
        let mut buf = Vec::new();
        encode_entry(&mut buf, 7, 1, &[0xEE; 300]);
        let second = buf.len() as u64;
        encode_entry(&mut buf, 8, 1, b"next");
        encode_truncate(&mut buf, 8);
        encode_hard_state(&mut buf, b"hs");

        // Damage in the first record: the following ones prove it is not a torn tail.
        let mut bad = buf.clone();
        bad[20] ^= 1;
        std::fs::write(&path, &bad).unwrap();
        let found = valid_record_after(&path, 0, bad.len() as u64, 6).unwrap();
        assert_eq!(found, Some(second));

        // A corrupted length (the next frame is not where the header says) is found too.
        let mut bad = buf.clone();
        bad[1] ^= 0x10;
        std::fs::write(&path, &bad).unwrap();
        assert_eq!(
            valid_record_after(&path, 0, bad.len() as u64, 6).unwrap(),
            Some(second)
        );

        // A partial first record followed by zeros or garbage: nothing valid after it.
        let mut torn = buf[..200].to_vec();
        torn.extend(std::iter::repeat_n(0u8, 5000));
        torn.extend((0..100_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
        std::fs::write(&path, &torn).unwrap();
        assert_eq!(
            valid_record_after(&path, 0, torn.len() as u64, 6).unwrap(),
            None
        );
    }
}
