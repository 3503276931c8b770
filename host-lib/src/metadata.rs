//! The volume's metadata as each card holds it: a copy is a 64-byte header and a body,
//! little-endian, checksummed together with CRC32C. The metadata area holds two copies; a
//! new one always goes into the slot that does not hold the current one, so a torn write
//! leaves the old copy intact and current, and the copy with the higher sequence number
//! among those whose checksum holds is the volume's state.

use crate::per_card::{CardRole, PerCard};
use thiserror::Error;

pub const MAGIC: [u8; 8] = *b"NPMUMETA";
/// 2: the intent area after the metadata, the epoch, and the `Replaced` health.
pub const FORMAT_VERSION: u32 = 2;
pub const HEADER_BYTES: usize = 64;
/// Longest region or volume name, in bytes of UTF-8.
pub const MAX_NAME_BYTES: usize = 63;

const CHECKSUM_AT: usize = 60;

/// Pages of one write-intent slot, after the two metadata copies; two slots make the
/// intent area (see [`crate::intent`]).
pub const INTENT_SLOT_PAGES: u32 = 1;

/// Where the data pages of a volume whose metadata copies are `copy_pages` long start:
/// after its metadata and intent areas.
pub fn first_data_page(copy_pages: u32) -> u64 {
    2 * u64::from(copy_pages) + 2 * u64::from(INTENT_SLOT_PAGES)
}

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum MetadataError {
    #[error("no metadata: the magic number is missing")]
    NoMagic,
    #[error("format version {0} is not one this library reads (it reads {FORMAT_VERSION})")]
    UnknownVersion(u32),
    #[error("the body claims {claimed} bytes and a copy holds at most {capacity}")]
    TooLong { claimed: usize, capacity: usize },
    #[error("the checksum does not match: a torn or damaged copy")]
    Checksum,
    #[error("the copy ends inside {0}")]
    Truncated(&'static str),
    #[error("the copy is inconsistent: {0}")]
    Inconsistent(String),
}

/// Whether a card holds the volume's current data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CardHealth {
    InSync,
    /// Missed writes: not read from until a resync has rebuilt it. The chunks it missed are
    /// in the write-intent record of the card that took them.
    Stale,
    /// A blank or replaced card, or one whose own record of what it missed was lost: it
    /// lacks everything, so a resync rebuilds every region on it.
    Replaced,
}

impl CardHealth {
    const ALL: [CardHealth; 3] = [CardHealth::InSync, CardHealth::Stale, CardHealth::Replaced];

    fn code(self) -> u8 {
        self as u8
    }

    fn from_code(code: u8) -> Option<CardHealth> {
        CardHealth::ALL
            .into_iter()
            .find(|health| health.code() == code)
    }
}

/// Consecutive physical pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Extent {
    pub first: u64,
    pub pages: u64,
}

impl Extent {
    pub fn end(&self) -> u64 {
        self.first + self.pages
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionRecord {
    pub name: String,
    pub size: u64,
    pub base_pointer: u64,
    /// User id of the creator.
    pub owner: u32,
    /// Nanoseconds since the Unix epoch.
    pub created: u64,
    /// Nanoseconds since the Unix epoch, 0 if never opened.
    pub last_opened: u64,
    /// The region's physical pages in network virtual order; the same pages on both cards.
    pub extents: Vec<Extent>,
}

impl RegionRecord {
    pub fn pages(&self) -> u64 {
        self.extents
            .iter()
            .fold(0u64, |pages, extent| pages.saturating_add(extent.pages))
    }

    /// Physical page of each page of the region, in order.
    pub fn physical_pages(&self) -> impl Iterator<Item = u64> + '_ {
        self.extents
            .iter()
            .flat_map(|extent| extent.first..extent.end())
    }

    /// Physical pages of the region's pages `first..first + count`, in order.
    pub fn physical_pages_of(&self, first: u64, count: u64) -> Vec<u64> {
        let mut pages = Vec::new();
        let mut skip = first;
        let mut wanted = count;
        for extent in &self.extents {
            if wanted == 0 {
                break;
            }
            if skip >= extent.pages {
                skip -= extent.pages;
                continue;
            }
            let taken = (extent.pages - skip).min(wanted);
            pages.extend(extent.first + skip..extent.first + skip + taken);
            wanted -= taken;
            skip = 0;
        }
        pages
    }
}

/// Everything a volume is, as of one metadata sequence number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeRecord {
    pub id: u128,
    /// The volume a format overwrote (0 if none): a card still holding it missed the format.
    pub replaces: u128,
    pub name: String,
    pub created: u64,
    pub page_shift: u32,
    pub memory_pages: u64,
    pub copy_pages: u32,
    /// Counts changes of which cards are in sync: marking a card failed, a resync ending and
    /// a forked history resolved each advance it on the cards that take the change. Of two
    /// cards of one history, the one with the higher epoch knows more.
    pub epoch: u64,
    /// Which cards were in sync at `epoch`.
    pub health: PerCard<CardHealth>,
    pub regions: Vec<RegionRecord>,
}

impl VolumeRecord {
    pub fn first_data_page(&self) -> u64 {
        first_data_page(self.copy_pages)
    }

    pub fn region(&self, name: &str) -> Option<&RegionRecord> {
        self.regions.iter().find(|region| region.name == name)
    }

    /// Records that `role` no longer holds the current data (`health` is `Stale` or
    /// `Replaced`); leaving the in-sync set advances the epoch. A replaced card stays
    /// replaced until it is rebuilt.
    pub fn mark_out_of_sync(&mut self, role: CardRole, health: CardHealth) {
        if self.health[role] == CardHealth::InSync {
            self.epoch += 1;
        }
        if self.health[role] != CardHealth::Replaced {
            self.health[role] = health;
        }
    }

    /// Checks what a checksum cannot: every region well formed, no page outside the data
    /// area or owned twice.
    pub fn validate(&self) -> Result<(), MetadataError> {
        let bad = |why: String| Err(MetadataError::Inconsistent(why));
        if self.page_shift > 30 || self.copy_pages == 0 {
            return bad(format!(
                "page shift {} with {} pages per copy",
                self.page_shift, self.copy_pages
            ));
        }
        if self.first_data_page() >= self.memory_pages {
            return bad(format!("{} pages hold no data", self.memory_pages));
        }
        let mut owned: Vec<(Extent, &str)> = Vec::new();
        for (index, region) in self.regions.iter().enumerate() {
            if self.regions[..index]
                .iter()
                .any(|earlier| earlier.name == region.name)
            {
                return bad(format!("region {:?} appears twice", region.name));
            }
            let pages_needed = region.size.div_ceil(1 << self.page_shift);
            if region.size == 0 || region.pages() != pages_needed {
                return bad(format!(
                    "region {:?} of {} bytes owns {} pages",
                    region.name,
                    region.size,
                    region.pages()
                ));
            }
            if region.base_pointer > u64::MAX - (region.size - 1) {
                return bad(format!("region {:?} wraps past 2^64", region.name));
            }
            for extent in &region.extents {
                let first_data = self.first_data_page();
                let inside = extent.pages > 0
                    && extent.first >= first_data
                    && npmu_abi::range_fits(
                        extent.first - first_data,
                        extent.pages,
                        self.memory_pages - first_data,
                    );
                if !inside {
                    return bad(format!(
                        "region {:?} owns pages {}+{} outside the data area",
                        region.name, extent.first, extent.pages
                    ));
                }
                owned.push((*extent, &region.name));
            }
        }
        owned.sort();
        for pair in owned.windows(2) {
            if pair[0].0.end() > pair[1].0.first {
                return bad(format!(
                    "page {} is owned by {:?} and {:?}",
                    pair[1].0.first, pair[0].1, pair[1].1
                ));
            }
        }
        Ok(())
    }
}

/// One copy: the state and where it sits in the sequence of states.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Copy {
    pub sequence: u64,
    /// The card the copy was written for.
    pub role: CardRole,
    pub volume: VolumeRecord,
}

/// What the header says, read before the body so only the bytes in use are fetched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub body_bytes: usize,
    pub sequence: u64,
}

pub fn encode(copy: &Copy) -> Vec<u8> {
    let mut body = Writer::default();
    let volume = &copy.volume;
    body.string(&volume.name);
    body.0.extend_from_slice(&volume.replaces.to_le_bytes());
    body.u64(volume.created);
    body.u32(volume.page_shift);
    body.u64(volume.memory_pages);
    body.u32(volume.copy_pages);
    body.u64(volume.epoch);
    for health in volume.health.values() {
        body.u8(health.code());
    }
    body.u32(volume.regions.len() as u32);
    for region in &volume.regions {
        body.string(&region.name);
        body.u64(region.size);
        body.u64(region.base_pointer);
        body.u32(region.owner);
        body.u64(region.created);
        body.u64(region.last_opened);
        body.u32(region.extents.len() as u32);
        for extent in &region.extents {
            body.u64(extent.first);
            body.u64(extent.pages);
        }
    }
    let mut bytes = Writer::default();
    bytes.0.extend_from_slice(&MAGIC);
    bytes.u32(FORMAT_VERSION);
    bytes.u32(body.0.len() as u32);
    bytes.u64(copy.sequence);
    bytes.0.extend_from_slice(&volume.id.to_le_bytes());
    bytes.u8(match copy.role {
        CardRole::Primary => 0,
        CardRole::Mirror => 1,
    });
    bytes.0.resize(CHECKSUM_AT, 0);
    bytes.0.extend_from_slice(&body.0);
    let checksum = checksum(&bytes.0);
    bytes.0.splice(
        CHECKSUM_AT..CHECKSUM_AT,
        checksum.to_le_bytes().iter().copied(),
    );
    bytes.0
}

/// Reads a header; `capacity` is what one copy may hold.
pub fn decode_header(bytes: &[u8], capacity: usize) -> Result<Header, MetadataError> {
    let mut reader = Reader::new(bytes);
    if reader.take(8, "the magic number")? != MAGIC {
        return Err(MetadataError::NoMagic);
    }
    let version = reader.u32("the version")?;
    if version != FORMAT_VERSION {
        return Err(MetadataError::UnknownVersion(version));
    }
    let body_bytes = reader.u32("the body length")? as usize;
    if body_bytes > capacity.saturating_sub(HEADER_BYTES) {
        return Err(MetadataError::TooLong {
            claimed: body_bytes,
            capacity: capacity - HEADER_BYTES,
        });
    }
    let sequence = reader.u64("the sequence number")?;
    if sequence == u64::MAX {
        // No copy can follow it.
        return Err(MetadataError::Inconsistent(
            "the sequence number is exhausted".into(),
        ));
    }
    Ok(Header {
        body_bytes,
        sequence,
    })
}

/// Reads and checks a whole copy (header and body).
pub fn decode(bytes: &[u8], capacity: usize) -> Result<Copy, MetadataError> {
    let header = decode_header(bytes, capacity)?;
    let total = HEADER_BYTES + header.body_bytes;
    if bytes.len() < total {
        return Err(MetadataError::Truncated("the body"));
    }
    let stored = u32::from_le_bytes(bytes[CHECKSUM_AT..HEADER_BYTES].try_into().expect("4"));
    let mut covered = bytes[..CHECKSUM_AT].to_vec();
    covered.extend_from_slice(&bytes[HEADER_BYTES..total]);
    if checksum(&covered) != stored {
        return Err(MetadataError::Checksum);
    }
    let mut header_reader = Reader::new(&bytes[24..CHECKSUM_AT]);
    let id = u128::from_le_bytes(
        header_reader
            .take(16, "the volume id")?
            .try_into()
            .expect("16"),
    );
    let role = match header_reader.u8("the role")? {
        0 => CardRole::Primary,
        1 => CardRole::Mirror,
        other => return Err(MetadataError::Inconsistent(format!("role {other}"))),
    };
    let mut body = Reader::new(&bytes[HEADER_BYTES..total]);
    let name = body.string("the volume name")?;
    let replaces = u128::from_le_bytes(
        body.take(16, "the replaced volume")?
            .try_into()
            .expect("16"),
    );
    let created = body.u64("the creation time")?;
    let page_shift = body.u32("the page shift")?;
    let memory_pages = body.u64("the memory size")?;
    let copy_pages = body.u32("the copy size")?;
    let epoch = body.u64("the epoch")?;
    let mut health = PerCard::both(CardHealth::InSync);
    for (_, card) in health.iter_mut() {
        let code = body.u8("a card's health")?;
        *card = CardHealth::from_code(code)
            .ok_or_else(|| MetadataError::Inconsistent(format!("card health {code}")))?;
    }
    let count = body.u32("the region count")?;
    let mut regions = Vec::new();
    for _ in 0..count {
        let name = body.string("a region name")?;
        let size = body.u64("a region size")?;
        let base_pointer = body.u64("a base pointer")?;
        let owner = body.u32("an owner")?;
        let created = body.u64("a creation time")?;
        let last_opened = body.u64("a last open time")?;
        let extent_count = body.u32("an extent count")?;
        let mut extents = Vec::new();
        for _ in 0..extent_count {
            let first = body.u64("an extent")?;
            let pages = body.u64("an extent")?;
            extents.push(Extent { first, pages });
        }
        regions.push(RegionRecord {
            name,
            size,
            base_pointer,
            owner,
            created,
            last_opened,
            extents,
        });
    }
    if !body.rest().is_empty() {
        return Err(MetadataError::Inconsistent(format!(
            "{} bytes follow the last region",
            body.rest().len()
        )));
    }
    let volume = VolumeRecord {
        id,
        replaces,
        name,
        created,
        page_shift,
        memory_pages,
        copy_pages,
        epoch,
        health,
        regions,
    };
    volume.validate()?;
    Ok(Copy {
        sequence: header.sequence,
        role,
        volume,
    })
}

pub(crate) fn checksum(bytes: &[u8]) -> u32 {
    crc32c::crc32c(bytes)
}

/// Whether `name` can name a region or a volume.
pub fn name_is_valid(name: &str) -> bool {
    (1..=MAX_NAME_BYTES).contains(&name.len()) && !name.contains('\0')
}

#[derive(Default)]
pub(crate) struct Writer(pub(crate) Vec<u8>);

impl Writer {
    pub(crate) fn u8(&mut self, value: u8) {
        self.0.push(value);
    }

    pub(crate) fn u32(&mut self, value: u32) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }

    pub(crate) fn u64(&mut self, value: u64) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }

    fn string(&mut self, value: &str) {
        self.u8(value.len() as u8);
        self.0.extend_from_slice(value.as_bytes());
    }
}

pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    pub(crate) fn take(
        &mut self,
        count: usize,
        what: &'static str,
    ) -> Result<&'a [u8], MetadataError> {
        if self.bytes.len() < count {
            return Err(MetadataError::Truncated(what));
        }
        let (taken, rest) = self.bytes.split_at(count);
        self.bytes = rest;
        Ok(taken)
    }

    pub(crate) fn rest(&self) -> &'a [u8] {
        self.bytes
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, MetadataError> {
        Ok(self.take(1, what)?[0])
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, MetadataError> {
        Ok(u32::from_le_bytes(
            self.take(4, what)?.try_into().expect("4"),
        ))
    }

    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64, MetadataError> {
        Ok(u64::from_le_bytes(
            self.take(8, what)?.try_into().expect("8"),
        ))
    }

    fn string(&mut self, what: &'static str) -> Result<String, MetadataError> {
        let length = usize::from(self.u8(what)?);
        let bytes = self.take(length, what)?;
        let text = std::str::from_utf8(bytes)
            .map_err(|_| MetadataError::Inconsistent(format!("{what} is not UTF-8")))?;
        if !name_is_valid(text) {
            return Err(MetadataError::Inconsistent(format!("{what} {text:?}")));
        }
        Ok(text.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CAPACITY: usize = 16 << 10;

    pub fn sample() -> Copy {
        Copy {
            sequence: 7,
            role: CardRole::Mirror,
            volume: VolumeRecord {
                id: 0x0123_4567_89ab_cdef_0011_2233_4455_6677,
                replaces: 0x42,
                name: "volume".into(),
                created: 1_700_000_000_000_000_000,
                page_shift: 12,
                memory_pages: 1024,
                copy_pages: 4,
                epoch: 3,
                health: PerCard::new(CardHealth::InSync, CardHealth::Replaced),
                regions: vec![
                    RegionRecord {
                        name: "log".into(),
                        size: 3 * 4096 - 5,
                        base_pointer: 0x7f00_0000_0000,
                        owner: 1000,
                        created: 1,
                        last_opened: 2,
                        extents: vec![
                            Extent {
                                first: 10,
                                pages: 1,
                            },
                            Extent {
                                first: 20,
                                pages: 2,
                            },
                        ],
                    },
                    RegionRecord {
                        name: "table".into(),
                        size: 4096,
                        base_pointer: 0,
                        owner: 0,
                        created: 3,
                        last_opened: 0,
                        extents: vec![Extent {
                            first: 11,
                            pages: 1,
                        }],
                    },
                ],
            },
        }
    }

    #[test]
    fn a_copy_reads_back_as_written() {
        let copy = sample();
        let bytes = encode(&copy);
        assert_eq!(decode(&bytes, CAPACITY), Ok(copy));
        let header = decode_header(&bytes, CAPACITY).unwrap();
        assert_eq!(header.sequence, 7);
        assert_eq!(HEADER_BYTES + header.body_bytes, bytes.len());
    }

    #[test]
    fn blank_memory_is_not_a_copy() {
        assert_eq!(decode(&[0; 256], CAPACITY), Err(MetadataError::NoMagic));
    }

    #[test]
    fn a_body_longer_than_a_copy_is_refused_before_reading_it() {
        let bytes = encode(&sample());
        assert!(matches!(
            decode_header(&bytes, 128),
            Err(MetadataError::TooLong { .. })
        ));
    }

    proptest! {
        #[test]
        fn any_flipped_bit_is_caught(byte in 0usize..1000, bit in 0u8..8) {
            let mut bytes = encode(&sample());
            let byte = byte % bytes.len();
            bytes[byte] ^= 1 << bit;
            prop_assert_ne!(decode(&bytes, CAPACITY), Ok(sample()));
        }

        #[test]
        fn a_torn_copy_is_caught(kept in 0usize..1000) {
            let bytes = encode(&sample());
            let kept = kept % bytes.len();
            // Zeros past the tear that were zeros anyway leave the copy whole.
            prop_assume!(bytes[kept..].iter().any(|&byte| byte != 0));
            let mut torn = vec![0u8; bytes.len()];
            torn[..kept].copy_from_slice(&bytes[..kept]);
            prop_assert!(decode(&torn, CAPACITY).is_err());
        }
    }

    #[test]
    fn doubly_owned_and_outside_pages_are_inconsistent() {
        let mut shared = sample();
        shared.volume.regions[1].extents = vec![Extent {
            first: 21,
            pages: 1,
        }];
        assert!(matches!(
            shared.volume.validate(),
            Err(MetadataError::Inconsistent(why)) if why.contains("owned by")
        ));
        let mut outside = sample();
        outside.volume.regions[1].extents = vec![Extent { first: 9, pages: 1 }];
        assert!(outside.volume.validate().is_err());
        let mut past_end = sample();
        past_end.volume.regions[1].extents = vec![Extent {
            first: 1024,
            pages: 1,
        }];
        assert!(past_end.volume.validate().is_err());
        let mut short = sample();
        short.volume.regions[0].size += 4096;
        assert!(short.volume.validate().is_err());
        let mut twice = sample();
        twice.volume.regions[1].name = "log".into();
        assert!(twice.volume.validate().is_err());
    }
}
