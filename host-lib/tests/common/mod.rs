//! Volumes of two simulated cards in a temporary directory.

#![allow(dead_code)] // regions.rs uses only `pattern`

use npmu::cards::{simulated_cards, SimulatedCards};
use npmu::{Card, Volume, VolumeOptions};
use std::path::Path;

pub type TestVolume = Volume<Card>;

pub fn format(directory: &Path) -> TestVolume {
    let (primary, mirror) =
        simulated_cards(&SimulatedCards::in_directory(directory)).expect("simulated cards start");
    Volume::format(primary, mirror, "test", false, VolumeOptions::default())
        .expect("the volume formats")
}

pub fn pattern(length: usize, seed: u8) -> Vec<u8> {
    (0..length)
        .map(|index| (index as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}
