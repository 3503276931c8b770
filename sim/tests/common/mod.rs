//! Set-ups shared by the simulation tests.
#![allow(dead_code)]

pub mod device;

use npmu_abi::program::{self, ContextSettings};
use npmu_abi::{Config, Operation, Request};
use npmu_sim::{CoreHarness, HarnessOptions, VerilatedCore};

pub type Sim = CoreHarness<VerilatedCore>;

/// The default NI, unlocked.
pub fn unlocked(options: HarnessOptions) -> Sim {
    unlocked_with(&Config::SIM, options)
}

pub fn unlocked_with(config: &Config, options: HarnessOptions) -> Sim {
    let key = options.management_key;
    let mut harness = CoreHarness::verilated(config, options).unwrap();
    program::unlock(&mut harness, key).unwrap();
    harness
}

pub const BASE: u64 = 0x7_0000_0000;

/// Context 5 over `pages.len()` pages at [`BASE`], entries from 100, read and write for
/// initiator 3; returns its key.
pub fn context_over(harness: &mut Sim, pages: &[u32]) -> u32 {
    let mapped: Vec<Option<u32>> = pages.iter().copied().map(Some).collect();
    program::write_entries(harness, 100, &mapped).unwrap();
    let settings = ContextSettings {
        tag: 0x5a5a5a,
        read: true,
        write: true,
        initiator: Some(3),
        base: BASE,
        pages: pages.len() as u32,
        first_entry: 100,
    };
    program::register_context(harness, 5, &settings).unwrap()
}

pub fn request(operation: Operation, key: u32, address: u64, length: u32) -> Request {
    Request {
        operation,
        context: 5,
        key,
        initiator: 3,
        address,
        length,
    }
}

/// Bytes that differ from position to position and from call to call.
pub fn pattern(length: u32, seed: u8) -> Vec<u8> {
    (0..length)
        .map(|index| (index as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}
