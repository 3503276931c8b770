//! The descriptor assembler: turns the fetched bytes back into descriptors, each labelled
//! with its queue and submission slot, and reports batches whose fetch met a DMA fault.

use crate::fifo::Fifo;
use npmu_abi::queue::DESCRIPTOR_BYTES;
use rust_hdl::prelude::*;

/// A batch of descriptors being fetched, in fetch order.
#[derive(Copy, Clone, Debug, Default, PartialEq, LogicStruct)]
pub struct Batch {
    pub queue: Bits<4>,
    /// Submission slot of the first descriptor; a batch never wraps the ring.
    pub slot: Bits<16>,
    pub count: Bits<8>,
}

pub const DESCRIPTOR_BITS: usize = 8 * DESCRIPTOR_BYTES as usize;

#[derive(LogicBlock)]
pub struct DescriptorAssembler<const DATA_BITS: usize> {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, bool>,

    /// A fetch was issued for this batch.
    pub batch_valid: Signal<In, bool>,
    pub batch_ready: Signal<Out, bool>,
    pub batch: Signal<In, Batch>,

    /// The fetched bytes, as the descriptor reader delivers them.
    pub data_valid: Signal<In, bool>,
    pub data_ready: Signal<Out, bool>,
    pub data: Signal<In, Bits<DATA_BITS>>,
    pub data_error: Signal<In, bool>,

    pub descriptor_valid: Signal<Out, bool>,
    pub descriptor_ready: Signal<In, bool>,
    pub descriptor: Signal<Out, Bits<DESCRIPTOR_BITS>>,
    pub descriptor_queue: Signal<Out, Bits<4>>,
    pub descriptor_slot: Signal<Out, Bits<16>>,

    /// A batch's fetch failed: its descriptors are dropped.
    pub fetch_failed: Signal<Out, bool>,
    pub fetch_failed_queue: Signal<Out, Bits<4>>,
    pub fetch_failed_count: Signal<Out, Bits<8>>,

    batches: Fifo<Batch, 2>,
    assembly: DFF<Bits<DESCRIPTOR_BITS>>,
    beat: DFF<Bits<8>>,
    index: DFF<Bits<8>>,
    holding: DFF<bool>,
    held_queue: DFF<Bits<4>>,
    held_slot: DFF<Bits<16>>,
    failed: DFF<bool>,

    taking: Signal<Local, bool>,
    completes: Signal<Local, bool>,
    batch_ends: Signal<Local, bool>,

    last_beat: Constant<Bits<8>>,
    data_width: Constant<Bits<16>>,
    beat_shift: Constant<Bits<16>>,
    zero_8: Constant<Bits<8>>,
    one_8: Constant<Bits<8>>,
}

impl<const DATA_BITS: usize> DescriptorAssembler<DATA_BITS> {
    pub fn new() -> Self {
        let beats = DESCRIPTOR_BITS / DATA_BITS;
        Self {
            clock: Default::default(),
            reset: Default::default(),
            batch_valid: Default::default(),
            batch_ready: Default::default(),
            batch: Default::default(),
            data_valid: Default::default(),
            data_ready: Default::default(),
            data: Default::default(),
            data_error: Default::default(),
            descriptor_valid: Default::default(),
            descriptor_ready: Default::default(),
            descriptor: Default::default(),
            descriptor_queue: Default::default(),
            descriptor_slot: Default::default(),
            fetch_failed: Default::default(),
            fetch_failed_queue: Default::default(),
            fetch_failed_count: Default::default(),
            batches: Default::default(),
            assembly: Default::default(),
            beat: Default::default(),
            index: Default::default(),
            holding: Default::default(),
            held_queue: Default::default(),
            held_slot: Default::default(),
            failed: Default::default(),
            taking: Default::default(),
            completes: Default::default(),
            batch_ends: Default::default(),
            last_beat: Constant::new((beats as u64 - 1).into()),
            data_width: Constant::new((DATA_BITS as u64).into()),
            beat_shift: Constant::new(((DESCRIPTOR_BITS - DATA_BITS) as u64).into()),
            zero_8: Constant::new(0u64.into()),
            one_8: Constant::new(1u64.into()),
        }
    }
}

impl<const DATA_BITS: usize> Default for DescriptorAssembler<DATA_BITS> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const DATA_BITS: usize> Logic for DescriptorAssembler<DATA_BITS> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, assembly, beat, index, holding, held_queue, held_slot, failed);
        clock!(self, clock, batches);
        self.batches.reset.next = self.reset.val();
        self.batches.push_valid.next = self.batch_valid.val();
        self.batches.push_data.next = self.batch.val();
        self.batch_ready.next = self.batches.push_ready.val();

        // A finished descriptor waits to be taken; beats flow in meanwhile only if it goes.
        self.descriptor_valid.next = self.holding.q.val();
        self.descriptor.next = self.assembly.q.val();
        self.descriptor_queue.next = self.held_queue.q.val();
        self.descriptor_slot.next = self.held_slot.q.val();
        self.data_ready.next =
            self.batches.pop_valid.val() && (!self.holding.q.val() || self.descriptor_ready.val());
        self.taking.next = self.data_valid.val() && self.data_ready.val();
        self.completes.next = self.taking.val() && (self.beat.q.val() == self.last_beat.val());

        if self.holding.q.val() && self.descriptor_ready.val() {
            self.holding.d.next = false;
        }
        if self.taking.val() {
            // Little endian: the first beat ends up in the descriptor's lowest bits.
            self.assembly.d.next = (self.assembly.q.val() >> self.data_width.val())
                | (bit_cast::<DESCRIPTOR_BITS, DATA_BITS>(self.data.val())
                    << self.beat_shift.val());
            self.beat.d.next = self.beat.q.val() + self.one_8.val();
            if self.data_error.val() {
                self.failed.d.next = true;
            }
        }
        if self.completes.val() {
            self.beat.d.next = self.zero_8.val();
            self.holding.d.next = !(self.failed.q.val() || self.data_error.val());
            self.held_queue.d.next = self.batches.pop_data.val().queue;
            self.held_slot.d.next =
                self.batches.pop_data.val().slot + bit_cast::<16, 8>(self.index.q.val());
            self.index.d.next = self.index.q.val() + self.one_8.val();
        }

        // The batch ends with its last beat; a failed one is reported instead of delivered.
        self.fetch_failed.next = false;
        self.fetch_failed_queue.next = self.batches.pop_data.val().queue;
        self.fetch_failed_count.next = self.batches.pop_data.val().count;
        self.batches.pop_ready.next = false;
        self.batch_ends.next = self.completes.val()
            && (self.index.q.val() + self.one_8.val() == self.batches.pop_data.val().count);
        if self.batch_ends.val() {
            self.failed.d.next = false;
            self.index.d.next = self.zero_8.val();
            self.batches.pop_ready.next = true;
            if self.failed.q.val() || self.data_error.val() {
                self.fetch_failed.next = true;
            }
        }
        if self.reset.val() {
            self.beat.d.next = self.zero_8.val();
            self.index.d.next = self.zero_8.val();
            self.holding.d.next = false;
            self.failed.d.next = false;
        }
    }
}
