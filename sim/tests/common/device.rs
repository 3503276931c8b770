//! The whole NI set up the way most directed device tests want it: unlocked, every queue
//! running with its rings mapped, one context bound to [`QUEUE`] over scattered pages, and
//! two host buffers: [`SOURCE`] mapped for the device to read, [`DESTINATION`] to write.

use npmu_abi::program::{self, ContextSettings};
use npmu_abi::queue::{Completion, Descriptor, Opcode};
use npmu_abi::Config;
use npmu_model::DmaDirection;
use npmu_sim::device_traffic::ring_settings;
use npmu_sim::{DeviceHarness, DeviceOptions, VerilatedNetworkInterface};

pub type Device = DeviceHarness<VerilatedNetworkInterface>;

/// The queue [`CONTEXT`] is bound to.
pub const QUEUE: u16 = 1;
pub const CONTEXT: u16 = 9;
pub const NETWORK_BASE: u64 = 0x3_0000_0000;
/// Pages of [`CONTEXT`], mapped from translation entry 0.
pub const CONTEXT_PAGES: u32 = 16;
/// Host buffers writes take their data from and reads fill, page aligned.
pub const SOURCE: u64 = 0x20_0000;
pub const DESTINATION: u64 = 0x40_0000;
pub const BUFFER_BYTES: u64 = 0x10_0000;
/// Entries of each ring.
pub const RING_ENTRIES: u32 = 64;

/// Physical page behind the context's page `index`: never next to its neighbour's.
pub fn physical_page(index: u32) -> u32 {
    5 + 3 * index
}

/// A device of `config` as the module describes; returns it with [`CONTEXT`]'s key.
pub fn set_up(config: &Config, options: DeviceOptions) -> (Device, u32) {
    let management_key = options.management_key;
    let mut device = DeviceHarness::verilated(config, options).unwrap();
    program::unlock(&mut device, management_key).unwrap();
    for queue in 0..config.queues as u16 {
        let rings = ring_settings(queue, RING_ENTRIES);
        device.map_rings(&rings);
        device.set_up_queue(queue, &rings).unwrap();
    }
    device.map_host(SOURCE, BUFFER_BYTES, DmaDirection::ToDevice);
    device.map_host(DESTINATION, BUFFER_BYTES, DmaDirection::FromDevice);
    let pages: Vec<Option<u32>> = (0..CONTEXT_PAGES)
        .map(|page| Some(physical_page(page)))
        .collect();
    program::write_entries(&mut device, 0, &pages).unwrap();
    let key = program::register_context(&mut device, CONTEXT, &context_settings()).unwrap();
    (device, key)
}

/// [`CONTEXT`]'s settings: read and write for [`QUEUE`] over entries from 0.
pub fn context_settings() -> ContextSettings {
    ContextSettings {
        tag: 0x3c3c3c,
        read: true,
        write: true,
        initiator: Some(QUEUE),
        base: NETWORK_BASE,
        pages: CONTEXT_PAGES,
        first_entry: 0,
    }
}

/// Bytes of [`CONTEXT`].
pub fn context_bytes(config: &Config) -> u64 {
    u64::from(CONTEXT_PAGES) * config.page_bytes()
}

/// A WRITE of `length` bytes from host `host` to `offset` bytes into [`CONTEXT`].
pub fn write(key: u32, offset: u64, host: u64, length: u32, tag: u32) -> Descriptor {
    Descriptor {
        opcode: Opcode::Write as u8,
        context: CONTEXT.into(),
        key: key.into(),
        address: (NETWORK_BASE + offset).into(),
        host_address: host.into(),
        length: length.into(),
        tag: tag.into(),
        ..Descriptor::default()
    }
}

/// A READ of `length` bytes from `offset` bytes into [`CONTEXT`] to host `host`.
pub fn read(key: u32, offset: u64, host: u64, length: u32, tag: u32) -> Descriptor {
    Descriptor {
        opcode: Opcode::Read as u8,
        ..write(key, offset, host, length, tag)
    }
}

pub fn without_data(opcode: Opcode, tag: u32) -> Descriptor {
    Descriptor {
        opcode: opcode as u8,
        tag: tag.into(),
        ..Descriptor::default()
    }
}

/// Submits `descriptors` on `queue`, runs until they complete and returns their completions.
pub fn run(device: &mut Device, queue: u16, descriptors: &[Descriptor]) -> Vec<Completion> {
    for descriptor in descriptors {
        device.submit(queue, descriptor).unwrap();
    }
    device.run_until_idle();
    let completions = device.take_completions();
    assert!(completions
        .iter()
        .all(|completion| completion.queue == queue));
    completions
        .into_iter()
        .map(|completion| completion.entry)
        .collect()
}

/// Runs one descriptor on `queue`; returns its status and bytes done.
pub fn run_one(device: &mut Device, queue: u16, descriptor: &Descriptor) -> (u8, u32) {
    let completions = run(device, queue, std::slice::from_ref(descriptor));
    assert_eq!(completions.len(), 1);
    assert_eq!(completions[0].tag, descriptor.tag);
    (completions[0].status, completions[0].bytes_done.get())
}
