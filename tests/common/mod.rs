//! What the volume tests share: simulated cards of a configuration in a directory, the
//! cards' memory files as a crash leaves them, and bytes poked into those files.

// Each test crate uses its own part of these.
#![allow(dead_code)]

use npmu::cards::{simulated_cards, SimulatedCards};
use npmu::layout::Geometry;
use npmu::{Card, CardRole, Volume, VolumeOptions};
use npmu_abi::Config;
use std::os::unix::fs::FileExt;
use std::path::Path;

pub type TestVolume = Volume<Card>;

/// Simulated cards of `config` keeping their memory in `directory`.
pub fn cards_in(directory: &Path, config: Config) -> SimulatedCards {
    let mut cards = SimulatedCards::in_directory(directory);
    cards.card.config = config;
    cards
}

pub fn geometry(config: Config) -> Geometry {
    Geometry::of(
        CardRole::Primary,
        &npmu_driver::Capabilities::of_config(&config),
    )
    .expect("a volume fits the card")
}

pub fn format(cards: &SimulatedCards) -> TestVolume {
    let (primary, mirror) = simulated_cards(cards).expect("the cards start");
    Volume::format(primary, mirror, "test", false, VolumeOptions::default()).expect("a format")
}

pub fn open(cards: &SimulatedCards, options: VolumeOptions) -> npmu::Result<TestVolume> {
    let (primary, mirror) = simulated_cards(cards)?;
    Volume::open(primary, mirror, options)
}

pub fn degraded() -> VolumeOptions {
    VolumeOptions {
        degraded: true,
        ..VolumeOptions::default()
    }
}

/// Copies both cards' memory files from `from` to `into`: the cards as a crash of the
/// process holding them would leave them, if nothing is in flight.
pub fn snapshot(from: &SimulatedCards, into: &SimulatedCards) {
    std::fs::create_dir_all(&into.directory).expect("the snapshot's directory");
    for role in CardRole::BOTH {
        std::fs::copy(from.file(role), into.file(role)).expect("a card's memory copies");
    }
}

/// Writes `bytes` into the `role` card's memory file at `offset` of physical `page`, as a
/// write that landed on one card alone, or damage, would leave it.
pub fn poke(cards: &SimulatedCards, role: CardRole, page: u64, offset: u64, bytes: &[u8]) {
    let page_bytes = cards.card.config.page_bytes();
    std::fs::OpenOptions::new()
        .write(true)
        .open(cards.file(role))
        .and_then(|file| file.write_all_at(bytes, page * page_bytes + offset))
        .expect("the card's memory file is written");
}

/// Reads `length` bytes of the `role` card's memory file at `offset` of physical `page`.
pub fn peek(
    cards: &SimulatedCards,
    role: CardRole,
    page: u64,
    offset: u64,
    length: usize,
) -> Vec<u8> {
    let page_bytes = cards.card.config.page_bytes();
    let mut bytes = vec![0; length];
    std::fs::File::open(cards.file(role))
        .and_then(|file| file.read_exact_at(&mut bytes, page * page_bytes + offset))
        .expect("the card's memory file reads");
    bytes
}

/// The bytes a write tagged `tag` puts down.
pub fn pattern(tag: u8, length: usize) -> Vec<u8> {
    (0..length)
        .map(|index| (index as u8).wrapping_mul(31).wrapping_add(tag))
        .collect()
}
