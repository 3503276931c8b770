//! Everything a volume can refuse or meet, each with its own variant.

use crate::metadata::MetadataError;
use npmu_driver::DriverError;
use thiserror::Error;

pub use crate::per_card::CardRole;

#[derive(Debug, Error)]
pub enum Error {
    // Arguments refused before anything is touched.
    #[error("a region name must be 1 to {max} bytes of UTF-8 without NUL, not {length} bytes")]
    BadName { length: usize, max: usize },
    #[error("a region of {size} bytes is not possible: sizes run from 1 to {max} bytes here")]
    BadSize { size: u64, max: u64 },
    #[error("base pointer {base_pointer:#x} with size {size:#x} wraps past 2^64")]
    BaseWraps { base_pointer: u64, size: u64 },
    #[error("a volume name must be 1 to {max} bytes of UTF-8 without NUL, not {length} bytes")]
    BadVolumeName { length: usize, max: usize },
    #[error("region {0:?} already exists")]
    RegionExists(String),
    #[error("region {0:?} does not exist")]
    NoSuchRegion(String),
    #[error("region {name:?} is open {handles} times; close it first")]
    RegionOpen { name: String, handles: u32 },
    #[error("region {name:?} belongs to user {owner}, not to user {caller}")]
    NotOwner {
        name: String,
        owner: u32,
        caller: u32,
    },
    #[error("the region handle belongs to another volume")]
    ForeignHandle,
    #[error("region handle {0} is not open")]
    HandleNotOpen(u64),
    #[error(
        "{length} bytes at pointer {pointer:#x} are outside the region \
         [{base_pointer:#x}, {base_pointer:#x} + {size:#x})"
    )]
    OutsideRegion {
        pointer: u64,
        length: u64,
        base_pointer: u64,
        size: u64,
    },
    #[error("attribute {0:?} does not exist")]
    NoSuchAttribute(String),
    #[error("attribute {name:?} is a {actual}, not a {asked}")]
    WrongAttributeType {
        name: String,
        actual: &'static str,
        asked: &'static str,
    },
    #[error("attribute {name:?} needs {needed} bytes; the buffer holds {capacity}")]
    BufferTooSmall {
        name: String,
        needed: usize,
        capacity: usize,
    },

    // What the volume has no room for.
    #[error("{needed} free pages are needed and {free} are free")]
    NoSpace { needed: u64, free: u64 },
    #[error("the metadata would take {needed} bytes and a copy holds {capacity}")]
    MetadataFull { needed: usize, capacity: usize },
    #[error("no address context is free on the cards: close a region first")]
    NoFreeContext,
    #[error("{needed} contiguous translation entries are needed and none that many are free")]
    NoFreeEntries { needed: u32 },

    // The cards and what is on them.
    #[error("the {role} card is unusable for a volume: {why}")]
    UnsuitableCard { role: CardRole, why: String },
    #[error("the two cards differ in {what}: {primary} on the primary, {mirror} on the mirror")]
    CardsDiffer {
        what: &'static str,
        primary: u64,
        mirror: u64,
    },
    #[error("the {role} card already holds volume {name:?}; format with overwrite to replace it")]
    AlreadyFormatted { role: CardRole, name: String },
    #[error("the {role} card is in sync and answers: only a stale or failed card is replaced")]
    CardInUse { role: CardRole },
    #[error("neither card holds a volume: format one first")]
    NotFormatted,
    #[error("the {role} card holds the metadata of the {found} card of its volume")]
    WrongRole { role: CardRole, found: CardRole },
    #[error("the cards hold two different volumes ({primary:032x} and {mirror:032x})")]
    DifferentVolumes { primary: u128, mirror: u128 },
    #[error("the {role} card's metadata is unreadable: {source}")]
    Metadata {
        role: CardRole,
        source: MetadataError,
    },
    #[error("the {role} card is stale: it missed writes; resync it from the other before using it alone")]
    CardStale { role: CardRole },
    #[error(
        "the volume's {missing} card is missing ({why}). It may hold writes the {present} card \
         lacks, and writing without it forks the two cards' histories: open degraded to go on \
         with the {present} card alone (VolumeOptions::degraded, npmu volume --degraded, \
         PM_OPEN_DEGRADED), accepting that whatever only the {missing} card holds is lost"
    )]
    MemberMissing {
        missing: CardRole,
        present: CardRole,
        why: String,
    },
    #[error(
        "the {present} card is stale and the {missing} card, the only one holding the current \
         data, is missing ({why}): the {present} card alone would serve out-of-date data"
    )]
    OnlyStaleCard {
        present: CardRole,
        missing: CardRole,
        why: String,
    },
    #[error(
        "the cards' histories forked: each was written while the other was away (the primary \
         at epoch {primary_epoch}, the mirror at epoch {mirror_epoch}). Choose the copy to keep \
         (npmu volume choose --keep primary|mirror, Volume::choose, PM_OPEN_KEEP_PRIMARY or \
         PM_OPEN_KEEP_MIRROR); the other card's writes since the fork are discarded"
    )]
    Forked {
        primary_epoch: u64,
        mirror_epoch: u64,
    },
    #[error("the cards' histories have not forked: there is no copy to choose")]
    NotForked,
    #[error("the {role} card is not available: {why}")]
    CardUnavailable { role: CardRole, why: String },
    #[error("both cards are unavailable (primary: {primary}; mirror: {mirror})")]
    BothCardsFailed { primary: String, mirror: String },
    #[error(
        "the {failed} card failed ({why}); the data went to the {survivor} card alone, \
         which now holds the only current copy: resync the {failed} card"
    )]
    Degraded {
        failed: CardRole,
        survivor: CardRole,
        why: String,
    },
    #[error("nothing to resync: both cards are in sync")]
    NothingToResync,
    #[error("the {role} card is being resynced already")]
    ResyncRunning { role: CardRole },
    #[error("the {role} card refused the operation: {source}")]
    Card {
        role: CardRole,
        #[source]
        source: DriverError,
    },
    #[error("{0}")]
    Driver(#[from] DriverError),
    #[error(transparent)]
    Cards(#[from] crate::cards::CardsError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
