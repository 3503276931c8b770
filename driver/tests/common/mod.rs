//! A driver on simulated cards, with one context programmed as a manager would.

#![allow(dead_code)] // each test file uses its own part

use npmu_driver::{ContextSettings, Device, DmaBuffer, DriverOptions, NpmuDevice, Transfer};
use npmu_sim::{CardOptions, SimulatedCard, SimulatedIommu};
use std::path::Path;
use std::sync::Arc;

pub const KEY: u64 = 0x6e70_6d75_6b65_7921;
pub const CONTEXT: u16 = 3;
/// Network virtual base of the context: three pages mapped onto scattered physical ones.
pub const BASE: u64 = 0x4000_0000;
pub const PAGES: [u32; 3] = [5, 2, 9];

pub type Card = NpmuDevice<SimulatedCard>;

pub fn card_in(directory: &Path, name: &str, iommu: &Arc<SimulatedIommu>) -> SimulatedCard {
    SimulatedCard::open(
        name,
        &directory.join(format!("{name}.pm")),
        Arc::clone(iommu),
        CardOptions::default(),
    )
    .expect("the simulated card starts")
}

pub fn open(directory: &Path, options: DriverOptions) -> Card {
    let card = card_in(directory, "card", &SimulatedIommu::new());
    NpmuDevice::open(card, options).expect("the driver opens the card")
}

/// Unlocks, maps [`PAGES`] from entry 0 and registers [`CONTEXT`] over them; returns the key.
pub fn program<D: Device>(
    device: &mut NpmuDevice<D>,
    read: bool,
    write: bool,
    initiator: Option<u16>,
) -> u32 {
    device.unlock(KEY).unwrap();
    let entries: Vec<Option<u32>> = PAGES.iter().copied().map(Some).collect();
    device.write_entries(0, &entries).unwrap();
    device
        .register_context(CONTEXT, &settings(read, write, initiator))
        .unwrap()
}

pub fn settings(read: bool, write: bool, initiator: Option<u16>) -> ContextSettings {
    ContextSettings {
        tag: 0x5a_5a5a,
        read,
        write,
        initiator,
        base: BASE,
        pages: PAGES.len() as u32,
        first_entry: 0,
    }
}

pub fn pattern(length: usize, seed: u8) -> Vec<u8> {
    (0..length)
        .map(|index| (index as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// `length` bytes from the start of `buffer` at `address` of [`CONTEXT`].
pub fn transfer(key: u32, address: u64, buffer: &DmaBuffer, length: u64) -> Transfer<'_> {
    Transfer {
        context: CONTEXT,
        key,
        address,
        buffer,
        offset: 0,
        length,
    }
}
