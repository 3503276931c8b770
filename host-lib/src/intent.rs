//! Write intent, as Linux md's write-intent bitmap: before a write reaches any card, the
//! chunks it touches are recorded as dirty in the intent area of every card that takes it.
//! A chunk is cleared lazily, in batches: once no write has touched it for [`IDLE_WRITES`]
//! writes (md's bitmap daemon counts seconds; an operation count keeps it deterministic),
//! it is left out of the next record written. Every earlier write has completed on every
//! copy by then, since the manager waits for each write on both cards. After an unclean
//! shutdown the copies can differ only in dirty chunks, and while a card is out of sync
//! nothing is cleared, so the dirty chunks are also what a stale card missed.
//!
//! A chunk is [`CHUNK_PAGES`] consecutive physical pages of a card (64 KiB on `sim` cards,
//! 16 KiB on `ice40`), numbered from page 0. The intent area is two slots of
//! [`crate::metadata::INTENT_SLOT_PAGES`]; a record goes into the slot that does not hold the
//! current one, so a torn record leaves the one before it, and the valid record with the
//! higher sequence number is the card's. A record is a 64-byte header and a body of chunk
//! ranges, checksummed together with CRC32C; a set with more ranges than a slot holds is
//! recorded as "every chunk dirty".
//!
//! The write that needs a new record submits it, a FLUSH, then its data, back to back on
//! the card's queue: the NI runs a queue's descriptors through one in-order pipeline
//! (`hdl/src/engine/mod.rs`), so the record reaches persistent memory before the data
//! behind it, without a round trip of its own.

use crate::metadata::{checksum, MetadataError, Reader, Writer, HEADER_BYTES};
use std::collections::{BTreeMap, BTreeSet};

/// Pages of a chunk: the unit of dirty tracking, repair and resync.
pub const CHUNK_PAGES: u64 = 16;
pub const MAGIC: [u8; 8] = *b"NPMUINTN";
pub const FORMAT_VERSION: u32 = 1;
/// Writes without touching a chunk after which it is cleared, while every card is in sync.
/// A record that clears is written with the next write that needs one anyway, or with the
/// write that finds the oldest record this many writes old: a stream into the same chunks
/// pays one record per this many writes at most.
pub const IDLE_WRITES: u64 = 64;
/// Most dirty chunks kept while every card is in sync (the least recently written beyond
/// them are cleared first): they bound a record's size and what a repair after a crash
/// copies (64 chunks: 4 MiB on `sim` cards).
pub const KEEP_RECENT: usize = 64;

const CHECKSUM_AT: usize = 60;
const EVERYTHING: u8 = 1;

/// The chunk holding physical `page`.
pub fn chunk_of(page: u64) -> u32 {
    (page / CHUNK_PAGES) as u32
}

/// The chunks `pages` touch, in order, each once.
pub fn chunks_of(pages: impl IntoIterator<Item = u64>) -> Vec<u32> {
    let set: BTreeSet<u32> = pages.into_iter().map(chunk_of).collect();
    set.into_iter().collect()
}

/// What a card's intent record says may differ between the copies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dirty {
    Chunks(BTreeSet<u32>),
    /// Every chunk: the set did not fit a slot, write intent is off, or a card's record
    /// was lost.
    Everything,
}

impl Dirty {
    pub fn none() -> Self {
        Dirty::Chunks(BTreeSet::new())
    }

    pub fn is_empty(&self) -> bool {
        matches!(self, Dirty::Chunks(chunks) if chunks.is_empty())
    }

    pub fn contains(&self, chunk: u32) -> bool {
        match self {
            Dirty::Chunks(chunks) => chunks.contains(&chunk),
            Dirty::Everything => true,
        }
    }

    /// Both sets at once.
    pub fn union(&self, other: &Dirty) -> Dirty {
        match (self, other) {
            (Dirty::Chunks(mine), Dirty::Chunks(theirs)) => {
                Dirty::Chunks(mine.union(theirs).copied().collect())
            }
            _ => Dirty::Everything,
        }
    }
}

/// One intent record as a card holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub sequence: u64,
    /// The volume the record belongs to: a record of another volume is no record.
    pub volume: u128,
    pub dirty: Dirty,
}

/// Consecutive chunks `first..first + count`.
fn ranges(chunks: &BTreeSet<u32>) -> Vec<(u32, u32)> {
    let mut ranges: Vec<(u32, u32)> = Vec::new();
    for &chunk in chunks {
        match ranges.last_mut() {
            Some((first, count)) if *first + *count == chunk => *count += 1,
            _ => ranges.push((chunk, 1)),
        }
    }
    ranges
}

/// The record's bytes, at most `capacity` (a slot): a set of more ranges than fit is
/// written as every chunk dirty.
pub fn encode(record: &Record, capacity: usize) -> Vec<u8> {
    let fits = (capacity - HEADER_BYTES - 4) / 8;
    let ranges = match &record.dirty {
        Dirty::Chunks(chunks) => Some(ranges(chunks)).filter(|ranges| ranges.len() <= fits),
        Dirty::Everything => None,
    };
    let mut body = Writer::default();
    let ranges = ranges.unwrap_or_default();
    body.u32(ranges.len() as u32);
    for (first, count) in &ranges {
        body.u32(*first);
        body.u32(*count);
    }
    let everything = ranges.is_empty() && !record.dirty.is_empty();
    let mut bytes = Writer::default();
    bytes.0.extend_from_slice(&MAGIC);
    bytes.u32(FORMAT_VERSION);
    bytes.u32(body.0.len() as u32);
    bytes.u64(record.sequence);
    bytes.0.extend_from_slice(&record.volume.to_le_bytes());
    bytes.u8(if everything { EVERYTHING } else { 0 });
    bytes.0.resize(CHECKSUM_AT, 0);
    bytes.0.extend_from_slice(&body.0);
    let checksum = checksum(&bytes.0);
    bytes
        .0
        .splice(CHECKSUM_AT..CHECKSUM_AT, checksum.to_le_bytes());
    bytes.0
}

/// Reads and checks a record from a slot's bytes; `chunks` is how many the card has.
pub fn decode(bytes: &[u8], chunks: u32) -> Result<Record, MetadataError> {
    if bytes.len() < HEADER_BYTES {
        return Err(MetadataError::Truncated("the header"));
    }
    let mut header = Reader::new(bytes);
    if header.take(8, "the magic number")? != MAGIC {
        return Err(MetadataError::NoMagic);
    }
    let version = header.u32("the version")?;
    if version != FORMAT_VERSION {
        return Err(MetadataError::UnknownVersion(version));
    }
    let body_bytes = header.u32("the body length")? as usize;
    let capacity = bytes.len().saturating_sub(HEADER_BYTES);
    if body_bytes > capacity {
        return Err(MetadataError::TooLong {
            claimed: body_bytes,
            capacity,
        });
    }
    let total = HEADER_BYTES + body_bytes;
    let stored = u32::from_le_bytes(bytes[CHECKSUM_AT..HEADER_BYTES].try_into().expect("4"));
    let mut covered = bytes[..CHECKSUM_AT].to_vec();
    covered.extend_from_slice(&bytes[HEADER_BYTES..total]);
    if checksum(&covered) != stored {
        return Err(MetadataError::Checksum);
    }
    let sequence = header.u64("the sequence number")?;
    let volume = u128::from_le_bytes(header.take(16, "the volume id")?.try_into().expect("16"));
    let flags = header.u8("the flags")?;
    let inconsistent = |why: String| Err(MetadataError::Inconsistent(why));
    if flags & !EVERYTHING != 0 {
        return inconsistent(format!("intent flags {flags:#x}"));
    }
    let mut body = Reader::new(&bytes[HEADER_BYTES..total]);
    let count = body.u32("the range count")?;
    let mut dirty = BTreeSet::new();
    let mut next = 0u32;
    for _ in 0..count {
        let first = body.u32("a range")?;
        let length = body.u32("a range")?;
        // Ranges in order, apart, inside the card: one condition a line, overflow safe.
        if length == 0 {
            return inconsistent("an empty range of chunks".into());
        }
        if first < next {
            return inconsistent(format!("chunk range {first}+{length} out of order"));
        }
        if !npmu_abi::range_fits(first.into(), length.into(), chunks.into()) {
            return inconsistent(format!(
                "chunk range {first}+{length} past the card's {chunks} chunks"
            ));
        }
        dirty.extend(first..first + length);
        next = (first + length).saturating_add(1);
    }
    if !body.rest().is_empty() {
        return inconsistent(format!("{} bytes follow the ranges", body.rest().len()));
    }
    let everything = flags & EVERYTHING != 0;
    if everything && count != 0 {
        return inconsistent("every chunk dirty, and ranges besides".into());
    }
    Ok(Record {
        sequence,
        volume,
        dirty: if everything {
            Dirty::Everything
        } else {
            Dirty::Chunks(dirty)
        },
    })
}

/// The volume's dirty chunks as the manager keeps them between records.
#[derive(Debug)]
pub struct WriteIntent {
    /// Each dirty chunk and the number of the latest write that touched it.
    dirty: BTreeMap<u32, u64>,
    everything: bool,
    writes: u64,
    /// The write that last asked for a record.
    recorded_at: u64,
    /// Off, every write counts as touching every chunk (md without a bitmap): the first one
    /// records so, and an unclean shutdown repairs every region in full.
    enabled: bool,
}

impl WriteIntent {
    /// Starts from what the cards' records say.
    pub fn new(enabled: bool, found: Dirty) -> Self {
        let mut intent = Self {
            dirty: BTreeMap::new(),
            everything: false,
            writes: 0,
            recorded_at: 0,
            enabled,
        };
        intent.merge(&found);
        intent
    }

    /// The set as a record states it.
    pub fn dirty(&self) -> Dirty {
        if self.everything {
            Dirty::Everything
        } else {
            Dirty::Chunks(self.dirty.keys().copied().collect())
        }
    }

    /// Adds what another record says.
    pub fn merge(&mut self, other: &Dirty) {
        match other {
            Dirty::Everything => self.everything = true,
            Dirty::Chunks(chunks) => {
                for &chunk in chunks {
                    self.dirty.entry(chunk).or_insert(self.writes);
                }
            }
        }
    }

    /// Before a write that touches `chunks`: the set to record first, if the record on the
    /// cards must change. `settled` says every card is in sync and answers, so that idle
    /// chunks may be cleared in the same record; otherwise nothing is cleared, and the set
    /// grows to all the chunks the absent card misses.
    pub fn before_write(&mut self, chunks: &[u32], settled: bool) -> Option<Dirty> {
        self.writes += 1;
        let now = self.writes;
        if !self.enabled {
            if self.everything {
                return None;
            }
            self.everything = true;
            return Some(Dirty::Everything);
        }
        let mut new = false;
        for &chunk in chunks {
            new |= self.dirty.insert(chunk, now).is_none();
        }
        if self.everything {
            return None;
        }
        let is_idle = |written: u64| now - written >= IDLE_WRITES;
        let clearing_due = settled
            && now - self.recorded_at >= IDLE_WRITES
            && self.dirty.values().any(|&written| is_idle(written));
        if !new && !clearing_due {
            return None;
        }
        if settled {
            self.dirty.retain(|_, written| !is_idle(*written));
            if self.dirty.len() > KEEP_RECENT {
                let mut by_age: Vec<(u64, u32)> = self
                    .dirty
                    .iter()
                    .map(|(&chunk, &written)| (written, chunk))
                    .collect();
                by_age.sort_unstable();
                let surplus = self.dirty.len() - KEEP_RECENT;
                for (written, chunk) in by_age.into_iter().take(surplus) {
                    // The chunks of this write stay, whatever the count.
                    if written != now {
                        self.dirty.remove(&chunk);
                    }
                }
            }
        }
        self.recorded_at = now;
        Some(self.dirty())
    }

    /// Every copy agrees (a clean close, a repair, a resync ended): the empty set to record,
    /// if the cards' record is not empty already.
    pub fn settle(&mut self) -> Option<Dirty> {
        if self.dirty.is_empty() && !self.everything {
            return None;
        }
        self.dirty.clear();
        self.everything = false;
        Some(Dirty::none())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SLOT: usize = 4096;

    fn chunks(list: &[u32]) -> Dirty {
        Dirty::Chunks(list.iter().copied().collect())
    }

    fn sample() -> Record {
        Record {
            sequence: 41,
            volume: 0x1234_5678_9abc_def0_0fed_cba9_8765_4321,
            dirty: chunks(&[0, 1, 2, 7, 9, 10, 300]),
        }
    }

    #[test]
    fn a_record_reads_back_as_written() {
        let bytes = encode(&sample(), SLOT);
        // Ranges 0+3, 7+1, 9+2, 300+1.
        assert_eq!(bytes.len(), HEADER_BYTES + 4 + 4 * 8);
        assert_eq!(decode(&bytes, 1000), Ok(sample()));
        let mut padded = bytes.clone();
        padded.resize(SLOT, 0);
        assert_eq!(decode(&padded, 1000), Ok(sample()));
    }

    #[test]
    fn a_set_too_large_for_a_slot_is_recorded_as_everything() {
        let every_other: Vec<u32> = (0..400).map(|chunk| chunk * 2).collect();
        let record = Record {
            dirty: chunks(&every_other),
            ..sample()
        };
        let small = decode(&encode(&record, 1024), 1000).unwrap();
        assert_eq!(small.dirty, Dirty::Everything);
        let large = decode(&encode(&record, SLOT), 1000).unwrap();
        assert_eq!(large.dirty, record.dirty);
        let clean = Record {
            dirty: Dirty::none(),
            ..sample()
        };
        assert_eq!(
            decode(&encode(&clean, 1024), 1000).unwrap().dirty,
            Dirty::none()
        );
    }

    #[test]
    fn chunks_outside_the_card_or_out_of_order_are_inconsistent() {
        assert!(matches!(
            decode(&encode(&sample(), SLOT), 300),
            Err(MetadataError::Inconsistent(why)) if why.contains("past the card")
        ));
        assert_eq!(decode(&[0; 128], 8), Err(MetadataError::NoMagic));
    }

    proptest! {
        #[test]
        fn any_flipped_bit_is_caught(byte in 0usize..200, bit in 0u8..8) {
            let mut bytes = encode(&sample(), SLOT);
            let byte = byte % bytes.len();
            bytes[byte] ^= 1 << bit;
            prop_assert_ne!(decode(&bytes, 1000), Ok(sample()));
        }

        #[test]
        fn a_torn_record_is_caught(kept in 0usize..200) {
            let bytes = encode(&sample(), SLOT);
            let kept = kept % bytes.len();
            prop_assume!(bytes[kept..].iter().any(|&byte| byte != 0));
            let mut torn = vec![0u8; bytes.len()];
            torn[..kept].copy_from_slice(&bytes[..kept]);
            prop_assert!(decode(&torn, 1000).is_err());
        }
    }

    #[test]
    fn a_stream_into_the_same_chunks_records_once() {
        let mut intent = WriteIntent::new(true, Dirty::none());
        assert_eq!(intent.before_write(&[3], true), Some(chunks(&[3])));
        for _ in 0..100 {
            assert_eq!(intent.before_write(&[3], true), None);
        }
        assert_eq!(intent.before_write(&[3, 4], true), Some(chunks(&[3, 4])));
        assert_eq!(intent.settle(), Some(Dirty::none()));
        assert_eq!(intent.settle(), None);
    }

    #[test]
    fn in_sync_idle_chunks_are_cleared_in_a_batch() {
        let mut intent = WriteIntent::new(true, Dirty::none());
        intent.before_write(&[1, 2], true);
        assert_eq!(intent.before_write(&[5], true), Some(chunks(&[1, 2, 5])));
        let mut records = Vec::new();
        for _ in 0..2 * IDLE_WRITES {
            records.extend(intent.before_write(&[5], true));
        }
        // Chunks 1 and 2 went idle: one record clears them, none follows while 5 stays busy.
        assert_eq!(records, vec![chunks(&[5])]);
        // A new chunk brings no idle one back.
        assert_eq!(intent.before_write(&[9], true), Some(chunks(&[5, 9])));
    }

    #[test]
    fn in_sync_at_most_keep_recent_chunks_stay_dirty() {
        let mut intent = WriteIntent::new(true, Dirty::none());
        for chunk in 0..KEEP_RECENT as u32 {
            intent.before_write(&[chunk], true);
        }
        // Chunk 0 written again: chunk 1 is now the least recent.
        assert_eq!(intent.before_write(&[0], true), None);
        let recorded = intent.before_write(&[1000], true).expect("a new chunk");
        let Dirty::Chunks(set) = recorded else {
            panic!("a set")
        };
        assert_eq!(set.len(), KEEP_RECENT);
        assert!(set.contains(&0) && set.contains(&1000) && !set.contains(&1));
    }

    #[test]
    fn out_of_sync_nothing_is_cleared() {
        let mut intent = WriteIntent::new(true, chunks(&[7]));
        for chunk in 0..2 * KEEP_RECENT as u32 {
            intent.before_write(&[chunk + 100], false);
        }
        for _ in 0..2 * IDLE_WRITES {
            intent.before_write(&[100], false);
        }
        let Dirty::Chunks(set) = intent.dirty() else {
            panic!("a set")
        };
        assert_eq!(set.len(), 2 * KEEP_RECENT + 1);
        intent.merge(&Dirty::Everything);
        assert_eq!(intent.dirty(), Dirty::Everything);
        assert_eq!(intent.before_write(&[5000], false), None);
    }

    #[test]
    fn without_write_intent_the_first_write_marks_everything() {
        let mut intent = WriteIntent::new(false, Dirty::none());
        assert_eq!(intent.before_write(&[1], true), Some(Dirty::Everything));
        assert_eq!(intent.before_write(&[2], true), None);
        assert_eq!(intent.settle(), Some(Dirty::none()));
    }

    #[test]
    fn chunks_of_pages_are_each_named_once() {
        assert_eq!(chunks_of([15, 16, 17, 40, 2]), vec![0, 1, 2]);
        assert_eq!(chunk_of(CHUNK_PAGES * 9 + 3), 9);
    }
}
