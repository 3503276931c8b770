//! The npmu host library: the persistent memory manager (PMM) and the PMU library of seed
//! 001 over a mirrored volume of two npmu cards.
//!
//! A [`Volume`] is a primary and a mirror card. Its metadata (the volume and every region:
//! name, size, base pointer, owner, times, physical pages) lives on both cards, in
//! checksummed copies written crash-consistently, so [`Volume::open`] recovers everything
//! from the cards alone. Regions are created, opened (a context with a fresh key on each
//! card maps the region's scattered pages to one contiguous network virtual range),
//! written on both cards at once, read from either with fallback, listed, described by an
//! attribute cache, closed and deleted. Every write first records the chunks it touches in
//! the cards' write-intent areas ([`intent`]), so an unclean shutdown is repaired at the next
//! open by copying those chunks alone. A card that fails is recorded as stale on the other at
//! a new epoch, [`Volume::resync`] rebuilds it online from the chunks it missed, and two
//! cards whose histories forked are refused until the caller picks one ([`Volume::choose`]).
//!
//! The same code drives simulated cards (the Verilator model of the NI by default) and real
//! ones over VFIO: see [`cards`].
//!
//! [`ffi`] is the same API for C, with the seed's names (`pm_create_region`, ...), built into
//! `libnpmu.so` and `libnpmu.a` with the header `include/npmu.h`.

mod allocation;
pub mod attributes;
pub mod cards;
mod error;
pub mod ffi;
mod half;
pub mod intent;
pub mod layout;
pub mod metadata;
mod per_card;
mod volume;

pub use attributes::{AttributeValue, Attributes};
pub use cards::{Card, CardsError};
pub use error::{CardRole, Error, Result};
pub use per_card::PerCard;
pub use volume::{
    CardState, CardStatus, CheckReport, Difference, Mirror, ReadFrom, RegionHandle, RepairReport,
    ResyncReport, Volume, VolumeInfo, VolumeOptions, DEFAULT_MANAGEMENT_KEY,
};
