//! Random but reproducible work for the whole NI: per queue, its own rings, host buffers
//! (with a page the IOMMU refuses in each) and contexts (bound to the queue, over their own
//! persistent-memory pages, with holes), a host-memory window holding its rings and buffers
//! and nothing of the other queues', and descriptors that mostly pass and sometimes break
//! each rule, host buffers across either edge of the window or in another queue's among
//! them, and small WRITEs inline half the time (some breaking inline's own rules: too long,
//! with a host address, wrapping the ring's end). Queues never touch each other's bytes,
//! and writes take their data from
//! a buffer reads never fill (a driver reuses a buffer only once its descriptor completed),
//! so the golden model, which runs each queue's descriptors at its doorbell, sees what the
//! NI sees.

use crate::backend::Backend;
use crate::device_harness::DeviceHarness;
use crate::ports::network_interface::{Inputs, Outputs};
use npmu_abi::program::{self, ContextSettings, QueueSettings, RegisterAccess};
use npmu_abi::queue::{
    decode_completion_status, descriptor_flags, Descriptor, HostWindow, Opcode, DESCRIPTOR_BYTES,
    INLINE_MAX_BYTES,
};
use npmu_abi::registers::{self as reg, Group};
use npmu_abi::Config;
use npmu_model::DmaDirection;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;

/// Pages of persistent memory and translation entries each queue owns.
const PAGES_PER_QUEUE: u32 = 64;
/// Bytes of each of a queue's two host buffers: one writes read, one reads fill.
const BUFFER_BYTES: u64 = 128 << 10;

#[derive(Clone, Copy, Debug)]
struct ContextInfo {
    id: u16,
    key: u32,
    base: u64,
    bytes: u64,
}

struct QueueLayout {
    contexts: Vec<ContextInfo>,
    buffer: u64,
    window: HostWindow,
}

pub struct DeviceTraffic {
    random: StdRng,
    config: Config,
    queues: Vec<QueueLayout>,
}

/// Bytes of IOVA space from one queue's rings to the next queue's.
const QUEUE_SPAN: u64 = 0x10_0000;
/// Where a queue's write buffer starts from its rings; its read buffer follows.
const BUFFER_OFFSET: u64 = 0x9_0000;
const _: () = assert!(BUFFER_OFFSET + 2 * BUFFER_BYTES <= QUEUE_SPAN);

/// Where queue `queue`'s rings live.
pub fn ring_settings(queue: u16, entries: u32) -> QueueSettings {
    let base = 0x1000_0000 + u64::from(queue) * QUEUE_SPAN;
    QueueSettings {
        submission_base: base,
        submission_entries: entries,
        completion_base: base + 0x8_0000,
        completion_entries: entries,
        interrupts: true,
        coalesce_count: 4,
        coalesce_clocks: 200,
    }
}

impl DeviceTraffic {
    /// Unlocks the device and sets up every queue with its rings, buffer and contexts.
    pub fn set_up<B: Backend<Inputs = Inputs, Outputs = Outputs>>(
        device: &mut DeviceHarness<B>,
        management_key: u64,
        seed: u64,
    ) -> Self {
        let config = *device.config();
        let mut random = StdRng::seed_from_u64(seed);
        program::unlock(device, management_key).expect("unlocking");
        let page = config.page_bytes();
        let pages_per_queue = PAGES_PER_QUEUE.min(config.translation_entries / config.queues);
        let mut queues = Vec::new();
        for queue in 0..config.queues as u16 {
            let entries = [16, 64, 256][random.gen_range(0..3)];
            let rings = ring_settings(queue, entries);
            let window = HostWindow {
                base: rings.submission_base,
                bytes: QUEUE_SPAN,
            };
            device.map_rings(&rings);
            device.set_window(queue, window);
            device
                .set_up_queue(queue, &rings)
                .expect("setting up a queue");
            let buffer = rings.submission_base + BUFFER_OFFSET;
            device.map_host(buffer, BUFFER_BYTES, DmaDirection::ToDevice);
            device.map_host(
                buffer + BUFFER_BYTES,
                BUFFER_BYTES,
                DmaDirection::FromDevice,
            );
            // A page the IOMMU refuses in each, so some transfers meet a DMA fault midway.
            for half in [buffer, buffer + BUFFER_BYTES] {
                device.unmap_host(half + random.gen_range(8..BUFFER_BYTES / 4096) * 4096, 1);
            }
            let memory_pages = (config.memory_pages as u32 / config.queues).max(1);
            let first_entry = u32::from(queue) * pages_per_queue;
            let mapping: Vec<Option<u32>> = (0..pages_per_queue)
                .map(|_| {
                    random.gen_bool(0.97).then(|| {
                        u32::from(queue) * memory_pages + random.gen_range(0..memory_pages)
                    })
                })
                .collect();
            program::write_entries(device, first_entry, &mapping).expect("mapping");
            let mut contexts = Vec::new();
            // Read and write for this queue; read-only; bound to another queue.
            for (index, (write, initiator)) in [(true, queue), (false, queue), (true, queue ^ 1)]
                .into_iter()
                .enumerate()
            {
                let id = queue * 4 + index as u16;
                let pages = pages_per_queue / 2;
                let offset = index as u32 * pages_per_queue / 4;
                let base = (u64::from(queue) + 1) << 36 | (index as u64) << 28;
                let settings = ContextSettings {
                    tag: random.gen(),
                    read: true,
                    write,
                    initiator: Some(initiator),
                    base,
                    pages,
                    first_entry: first_entry + offset,
                };
                let key = program::register_context(device, id, &settings).expect("context");
                contexts.push(ContextInfo {
                    id,
                    key,
                    base,
                    bytes: u64::from(pages) * page,
                });
            }
            queues.push(QueueLayout {
                contexts,
                buffer,
                window,
            });
        }
        Self {
            random,
            config,
            queues,
        }
    }

    pub fn random(&mut self) -> &mut StdRng {
        &mut self.random
    }

    /// A descriptor for `queue`, with the inline payload the slots after it hold: mostly
    /// transfers that pass, some of every kind of failure; a small WRITE is inline half the
    /// time.
    pub fn submission(&mut self, queue: u16) -> (Descriptor, Vec<u8>) {
        let mut descriptor = self.descriptor(queue);
        let random = &mut self.random;
        let plain_write = descriptor.opcode == Opcode::Write as u8 && descriptor.flags == 0;
        let length = descriptor.length.get();
        match random.gen_range(0..100) {
            0..=49 if plain_write && length <= INLINE_MAX_BYTES => {
                descriptor.flags = descriptor_flags::INLINE;
                descriptor.host_address = 0.into();
            }
            // Too long to be inline; with a host address as well.
            50..=51 if plain_write && length > INLINE_MAX_BYTES => {
                descriptor.flags = descriptor_flags::INLINE;
                descriptor.host_address = 0.into();
            }
            52 if plain_write => descriptor.flags = descriptor_flags::INLINE,
            _ => {}
        }
        // Whatever the descriptor, the slots it owns hold a payload (a host that wrote
        // fewer would lose its next descriptors to them, on the NI and the model alike).
        let payload = (0..descriptor.payload_slots() * DESCRIPTOR_BYTES)
            .map(|_| random.gen())
            .collect();
        (descriptor, payload)
    }

    /// A descriptor for `queue` that is no inline WRITE.
    fn descriptor(&mut self, queue: u16) -> Descriptor {
        let random = &mut self.random;
        let layout = &self.queues[usize::from(queue)];
        let tag: u32 = random.gen();
        let kind = random.gen_range(0..100);
        if kind < 3 {
            return Descriptor {
                opcode: Opcode::Nop as u8,
                tag: tag.into(),
                ..Descriptor::default()
            };
        }
        if kind < 5 {
            return Descriptor {
                opcode: Opcode::Flush as u8,
                tag: tag.into(),
                ..Descriptor::default()
            };
        }
        let context = if random.gen_bool(0.8) {
            layout.contexts[0]
        } else {
            layout.contexts[random.gen_range(0..layout.contexts.len())]
        };
        let length: u32 = match random.gen_range(0..10) {
            0..=3 => random.gen_range(1..=64),
            4..=7 => random.gen_range(1..=1024),
            _ => random.gen_range(1..=8192),
        };
        let room = context.bytes.saturating_sub(u64::from(length));
        let address = if random.gen_bool(0.02) {
            context.base + room + random.gen_range(1..64)
        } else {
            context.base + random.gen_range(0..=room)
        };
        let host_room = BUFFER_BYTES - u64::from(length);
        let opcode = if random.gen() {
            Opcode::Write
        } else {
            Opcode::Read
        };
        let buffer = match opcode {
            Opcode::Write => layout.buffer,
            _ => layout.buffer + BUFFER_BYTES,
        };
        let mut descriptor = Descriptor {
            opcode: opcode as u8,
            context: context.id.into(),
            key: context.key.into(),
            address: address.into(),
            host_address: (buffer + random.gen_range(0..=host_room)).into(),
            length: length.into(),
            tag: tag.into(),
            ..Descriptor::default()
        };
        match kind {
            5..=6 => descriptor.key = (context.key ^ 0x100).into(),
            7 => descriptor.flags = 1 << random.gen_range(1..8),
            8 => descriptor.opcode = random.gen_range(4..=255),
            9 => descriptor.length = 0.into(),
            10 => descriptor.length = (self.config.max_request_bytes + 1).into(),
            // Never registered, and beyond the context table.
            11 => descriptor.context = (queue * 4 + 3).into(),
            12 => descriptor.context = (self.config.contexts as u16).wrapping_add(queue).into(),
            // Across the window's upper edge, across its lower edge, in another queue's
            // buffer (mapped for DMA: only the window keeps this queue out of it).
            13 => {
                let end = layout.window.base + layout.window.bytes;
                let inside = random.gen_range(0..u64::from(length));
                descriptor.host_address = (end - inside).into();
            }
            14 => {
                let below = random.gen_range(1..=u64::from(length));
                descriptor.host_address = (layout.window.base - below).into();
            }
            15 => {
                let other = &self.queues[usize::from(queue ^ 1) % self.queues.len()];
                let offset = descriptor.host_address.get() - layout.buffer;
                descriptor.host_address = (other.buffer + offset).into();
            }
            _ => {}
        }
        descriptor
    }

    /// Data for the CPU to leave in each queue's write buffer.
    pub fn fill_buffers<B: Backend<Inputs = Inputs, Outputs = Outputs>>(
        &mut self,
        device: &mut DeviceHarness<B>,
    ) {
        for layout in &self.queues {
            let bytes: Vec<u8> = (0..BUFFER_BYTES).map(|_| self.random.gen()).collect();
            device.write_host(layout.buffer, &bytes);
        }
    }

    /// Submits random descriptors on every queue, a burst at a time, until `descriptors`
    /// have completed; every 50 bursts lets the device go idle and compares memory and every
    /// register with the golden model. Returns how many completions had each status.
    ///
    /// # Panics
    /// At the first difference from the golden model, or a completion status no outcome has.
    pub fn run<B: Backend<Inputs = Inputs, Outputs = Outputs>>(
        &mut self,
        device: &mut DeviceHarness<B>,
        descriptors: usize,
    ) -> BTreeMap<u8, usize> {
        let mut statuses = BTreeMap::new();
        let mut bursts = 0;
        while statuses.values().sum::<usize>() < descriptors {
            for queue in 0..self.config.queues as u16 {
                for _ in 0..self.random.gen_range(0..24) {
                    let (descriptor, payload) = self.submission(queue);
                    if device.submit_inline(queue, &descriptor, &payload).is_err() {
                        break;
                    }
                }
            }
            for _ in 0..self.random.gen_range(0..600) {
                device.step();
            }
            count_statuses(device, &mut statuses);
            bursts += 1;
            if bursts % 50 == 0 {
                device.run_until_idle();
                count_statuses(device, &mut statuses);
                check_idle(device);
            }
        }
        device.run_until_idle();
        count_statuses(device, &mut statuses);
        check_idle(device);
        statuses
    }
}

fn count_statuses<B: Backend<Inputs = Inputs, Outputs = Outputs>>(
    device: &mut DeviceHarness<B>,
    statuses: &mut BTreeMap<u8, usize>,
) {
    for completion in device.take_completions() {
        let status = completion.entry.status;
        assert!(
            decode_completion_status(status).is_some(),
            "a completion with status {status}"
        );
        *statuses.entry(status).or_default() += 1;
    }
}

/// Compares memory and registers, every queue's included, of an idle device with the golden
/// model's. The last-fault record is left out: it depends on the order queues interleave in,
/// which the model, running each queue's descriptors at its doorbell, does not follow.
fn check_idle<B: Backend<Inputs = Inputs, Outputs = Outputs>>(device: &mut DeviceHarness<B>) {
    device.check_memory();
    for register in reg::all().into_iter().filter(|r| r.group != Group::Faults) {
        device.read(register.offset);
    }
    for status in 0..=npmu_abi::Fault::MAX_CODE {
        device.read(reg::request_count_offset(status));
    }
    for queue in 0..device.config().queues as u16 {
        for register in reg::queue::ALL {
            device.read(reg::queue_offset(queue, register));
        }
    }
}
