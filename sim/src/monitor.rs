//! A monitor on the NI's ports that fails the run at once when the NI touches persistent
//! memory outside what its tables allow, makes a DMA outside the host-memory window of the
//! queue it serves, or breaks the ready/valid protocol (an output that is offered must stay
//! offered, unchanged, until it is taken).
//!
//! The DMA port names no queue, so the monitor works out whose each DMA is from what it
//! saw: a descriptor fetch (a fetch tag) is of the queue whose submission ring holds it,
//! and the descriptors it brings are that queue's; a completion-sized write into a
//! completion ring is that queue's; any other DMA must lie inside the host buffer of a
//! descriptor some queue fetched (a WRITE's for a read, a READ's for a write). Each must lie
//! inside that queue's window as the golden model holds it at that moment. (A DMA that one
//! queue's descriptor explains and another queue's window holds passes: the tests that
//! aim a queue at another's buffer check that buffer and the status themselves.)

use npmu_abi::queue::{Descriptor, HostWindow, Opcode, COMPLETION_BYTES, DESCRIPTOR_BYTES};
use npmu_abi::registers::{queue, queue_offset};
use npmu_abi::Config;
use npmu_hdl::engine::FETCH_TAG_BASE;
use npmu_model::{Context, Entry, Memory, NetworkInterface};
use std::collections::{HashMap, HashSet, VecDeque};
use zerocopy::FromBytes;

/// Host buffers the monitor remembers per queue: a queue has fewer descriptors in flight
/// than its completion ring has entries, so a DMA is never for one fetched earlier.
const REMEMBERED_BUFFERS: usize = npmu_abi::queue::MAX_QUEUE_ENTRIES as usize;

/// The tables as a set of requests saw them.
struct Tables {
    contexts: Vec<Context>,
    entries: Vec<Entry>,
    /// Physical pages each context maps, worked out when first needed.
    mapped: HashMap<u16, HashSet<u32>>,
}

impl Tables {
    fn of<M: Memory>(model: &NetworkInterface<M>) -> Self {
        let config = model.config();
        Self {
            contexts: (0..config.contexts)
                .map(|id| *model.context(id as u16).unwrap())
                .collect(),
            entries: (0..config.translation_entries)
                .map(|index| *model.entry(index).unwrap())
                .collect(),
            mapped: HashMap::new(),
        }
    }

    fn maps(&mut self, context: u16, page: u32) -> bool {
        let Some(settings) = self.contexts.get(usize::from(context)) else {
            return false;
        };
        let entries = &self.entries;
        self.mapped
            .entry(context)
            .or_insert_with(|| {
                let first = settings.first_entry as usize;
                let last = (first + settings.pages as usize).min(entries.len());
                entries[first.min(last)..last]
                    .iter()
                    .filter(|entry| entry.valid)
                    .map(|entry| entry.page)
                    .collect()
            })
            .contains(&page)
    }
}

/// An offer on an output channel that was not taken: the fields that must hold.
type Offer = Vec<u64>;

pub struct Monitor {
    config: Config,
    active: Tables,
    /// Tables after a programming command, in force once the requests before it finish.
    pending: Option<Tables>,
    /// Each output channel's offer not yet taken, by name.
    offers: HashMap<&'static str, Offer>,
    accesses: u64,
    /// By queue, the host buffers of the descriptors it fetched last, newest at the back:
    /// (IOVA, bytes, whether the NI reads it, as for a WRITE).
    fetched_buffers: Vec<VecDeque<(u64, u64, bool)>>,
    dma_checked: u64,
}

/// One queue's registers as the golden model holds them.
struct QueueView {
    sq_base: u64,
    sq_bytes: u64,
    cq_base: u64,
    cq_bytes: u64,
    window: HostWindow,
}

impl QueueView {
    fn of<M: Memory>(model: &NetworkInterface<M>, queue: u16) -> Self {
        let read = |register| model.mmio_read(queue_offset(queue, register));
        Self {
            sq_base: read(queue::SQ_BASE),
            sq_bytes: read(queue::SQ_ENTRIES) * u64::from(DESCRIPTOR_BYTES),
            cq_base: read(queue::CQ_BASE),
            cq_bytes: read(queue::CQ_ENTRIES) * u64::from(COMPLETION_BYTES),
            window: HostWindow {
                base: read(queue::WINDOW_BASE),
                bytes: read(queue::WINDOW_BYTES),
            },
        }
    }
}

/// Whether `[base, base + bytes)` holds `[address, address + length)`.
fn spans(base: u64, bytes: u64, address: u64, length: u64) -> bool {
    HostWindow { base, bytes }.holds(address, length)
}

impl Monitor {
    pub fn new<M: Memory>(model: &NetworkInterface<M>) -> Self {
        Self {
            config: *model.config(),
            active: Tables::of(model),
            pending: None,
            offers: HashMap::new(),
            accesses: 0,
            fetched_buffers: vec![VecDeque::new(); model.config().queues as usize],
            dma_checked: 0,
        }
    }

    /// DMA requests checked against their queue's window so far.
    pub fn dma_checked(&self) -> u64 {
        self.dma_checked
    }

    /// Checks a DMA read request the NI made; `contents` reads host memory as it is now
    /// (what a descriptor fetch will bring).
    pub fn check_dma_read<M: Memory>(
        &mut self,
        now: u64,
        model: &NetworkInterface<M>,
        tag: u8,
        address: u64,
        length: u64,
        contents: impl Fn(u64, &mut [u8]),
    ) {
        let fail = |why: &str| -> ! {
            panic!("monitor, clock {now}: DMA read of {length} bytes at {address:#x} (tag {tag}): {why}")
        };
        let queues = self.fetched_buffers.len() as u16;
        if tag >= FETCH_TAG_BASE {
            let Some(owner) = (0..queues).find(|&q| {
                let view = QueueView::of(model, q);
                spans(view.sq_base, view.sq_bytes, address, length)
                    && view.window.holds(address, length)
            }) else {
                fail("a descriptor fetch inside no queue's submission ring and window");
            };
            let mut bytes = vec![0u8; length as usize];
            contents(address, &mut bytes);
            // Slots that are an inline payload, not descriptors, are passed over; a payload
            // is the host buffer of its WRITE, read from the ring when it ran past the fetch.
            // (A fetch starting with the rest of an earlier fetch's payload reads that as
            // descriptors: that can only widen what is explained.)
            let mut payload_left = 0;
            let slot_bytes = DESCRIPTOR_BYTES as usize;
            for (index, chunk) in bytes.chunks_exact(slot_bytes).enumerate() {
                if payload_left > 0 {
                    payload_left -= 1;
                    continue;
                }
                let descriptor = Descriptor::read_from_bytes(chunk).expect("32 bytes");
                payload_left = descriptor.payload_slots();
                let slot_address = address + (index * slot_bytes) as u64;
                let buffer = match descriptor.payload_slots() {
                    0 => descriptor.host_buffer(),
                    _ => Some((
                        slot_address + u64::from(DESCRIPTOR_BYTES),
                        u64::from(descriptor.length.get()),
                    )),
                };
                if let Some((iova, bytes)) = buffer {
                    let reads = descriptor.opcode == Opcode::Write as u8;
                    let buffers = &mut self.fetched_buffers[usize::from(owner)];
                    if buffers.len() == REMEMBERED_BUFFERS {
                        buffers.pop_front();
                    }
                    buffers.push_back((iova, bytes, reads));
                }
            }
        } else if !self.explained(model, address, length, true) {
            fail("inside no fetched WRITE's host buffer that its queue's window holds");
        }
        self.dma_checked += 1;
    }

    /// Checks a DMA write request the NI made (its first beat).
    pub fn check_dma_write<M: Memory>(
        &mut self,
        now: u64,
        model: &NetworkInterface<M>,
        address: u64,
        length: u64,
    ) {
        let queues = self.fetched_buffers.len() as u16;
        let completion = length == u64::from(COMPLETION_BYTES)
            && (0..queues).any(|q| {
                let view = QueueView::of(model, q);
                spans(view.cq_base, view.cq_bytes, address, length)
                    && view.window.holds(address, length)
            });
        if !completion && !self.explained(model, address, length, false) {
            panic!(
                "monitor, clock {now}: DMA write of {length} bytes at {address:#x}: neither a \
                 completion inside its queue's ring and window nor inside a fetched READ's \
                 host buffer that its queue's window holds"
            );
        }
        self.dma_checked += 1;
    }

    /// Whether some queue fetched a descriptor whose host buffer (read by the NI if
    /// `reads`) holds `[address, address + length)`, and that queue's window holds it.
    fn explained<M: Memory>(
        &self,
        model: &NetworkInterface<M>,
        address: u64,
        length: u64,
        reads: bool,
    ) -> bool {
        self.fetched_buffers
            .iter()
            .enumerate()
            .any(|(queue, buffers)| {
                // Newest first: a DMA is nearly always for a descriptor fetched lately.
                buffers.iter().rev().any(|&(base, bytes, buffer_reads)| {
                    buffer_reads == reads && spans(base, bytes, address, length)
                }) && QueueView::of(model, queue as u16)
                    .window
                    .holds(address, length)
            })
    }

    /// Memory accesses checked so far.
    pub fn accesses(&self) -> u64 {
        self.accesses
    }

    /// A programming command was taken; `model` has already applied it.
    pub fn tables_changed<M: Memory>(&mut self, model: &NetworkInterface<M>) {
        self.pending = Some(Tables::of(model));
    }

    /// No request is in flight: the NI has applied every command taken so far.
    pub fn drained(&mut self) {
        if let Some(tables) = self.pending.take() {
            self.active = tables;
        }
    }

    /// Forgets everything after a reset of the NI.
    pub fn reset<M: Memory>(&mut self, model: &NetworkInterface<M>) {
        *self = Self::new(model);
    }

    /// Fails if an output channel withdraws or changes an offer before it is taken.
    pub fn check_offer(
        &mut self,
        now: u64,
        channel: &'static str,
        valid: bool,
        ready: bool,
        fields: &[u64],
    ) {
        if let Some(previous) = self.offers.remove(channel) {
            assert!(
                valid,
                "monitor, clock {now}: the {channel} was withdrawn before it was taken"
            );
            assert_eq!(
                previous, fields,
                "monitor, clock {now}: the {channel} changed before it was taken"
            );
        }
        if valid && !ready {
            self.offers.insert(channel, fields.to_vec());
        }
    }

    /// Checks a memory request the NI made: aligned, inside persistent memory, in a page the
    /// requesting context maps, with the permission the operation needs.
    pub fn check_memory_request(
        &mut self,
        now: u64,
        write: bool,
        address: u64,
        byte_enable: u8,
        context: u16,
    ) {
        let operation = if write { "write" } else { "read" };
        let fail = |why: &str| -> ! {
            panic!("monitor, clock {now}: memory {operation} at {address:#x} for context {context}: {why}")
        };
        if address % u64::from(self.config.data_bytes) != 0 {
            fail("the address is not aligned to the data path");
        }
        if !write && byte_enable == 0 {
            fail("a read with no byte enabled");
        }
        let page = address >> self.config.page_shift;
        if page >= self.config.memory_pages {
            fail("the page is beyond persistent memory");
        }
        let Some(settings) = self.active.contexts.get(usize::from(context)).copied() else {
            fail("no such context");
        };
        if !settings.valid {
            fail("the context is not valid");
        }
        if write && !settings.write || !write && !settings.read {
            fail("the context does not allow it");
        }
        if !self.active.maps(context, page as u32) {
            fail("the context maps no such page");
        }
        self.accesses += 1;
    }
}
