//! The descriptor assembler: turns the fetched bytes back into descriptors, each labelled
//! with its queue and submission slot, and reports batches whose fetch met a DMA fault.
//! Descriptors whose bytes all arrived before the fault go on; the rest of the batch is
//! dropped and counted back to its queue.

use crate::fifo::Fifo;
use npmu_abi::queue::DESCRIPTOR_BITS;
use rust_hdl::prelude::*;

/// A batch of descriptors being fetched, in fetch order.
#[derive(Copy, Clone, Debug, Default, PartialEq, LogicStruct)]
pub struct Batch {
    pub queue: Bits<4>,
    /// Submission slot of the first descriptor; a batch never wraps the ring.
    pub slot: Bits<16>,
    pub count: Bits<8>,
}

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

    /// A batch's fetch failed: `fetch_failed_count` of its descriptors were dropped.
    pub fetch_failed: Signal<Out, bool>,
    pub fetch_failed_queue: Signal<Out, Bits<4>>,
    pub fetch_failed_count: Signal<Out, Bits<8>>,

    /// Four batches: as many fetches as the fetcher has in flight for up to four queues.
    batches: Fifo<Batch, 2>,
    assembly: DFF<Bits<DESCRIPTOR_BITS>>,
    beat: DFF<Bits<8>>,
    index: DFF<Bits<8>>,
    holding: DFF<bool>,
    held_queue: DFF<Bits<4>>,
    held_slot: DFF<Bits<16>>,
    failed: DFF<bool>,
    /// Descriptors of the current batch dropped so far.
    dropped: DFF<Bits<8>>,

    taking: Signal<Local, bool>,
    drops: Signal<Local, bool>,
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
            dropped: Default::default(),
            taking: Default::default(),
            drops: Default::default(),
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
        dff_setup!(
            self, clock, assembly, beat, index, holding, held_queue, held_slot, failed, dropped
        );
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
        self.drops.next = self.completes.val() && (self.failed.q.val() || self.data_error.val());
        if self.drops.val() {
            self.dropped.d.next = self.dropped.q.val() + self.one_8.val();
        }
        if self.completes.val() {
            self.beat.d.next = self.zero_8.val();
            self.holding.d.next = !self.drops.val();
            self.held_queue.d.next = self.batches.pop_data.val().queue;
            self.held_slot.d.next =
                self.batches.pop_data.val().slot + bit_cast::<16, 8>(self.index.q.val());
            self.index.d.next = self.index.q.val() + self.one_8.val();
        }

        // The batch ends with its last beat; a failed one is reported instead of delivered.
        self.fetch_failed.next = false;
        self.fetch_failed_queue.next = self.batches.pop_data.val().queue;
        self.fetch_failed_count.next =
            self.dropped.q.val() + bit_cast::<8, 1>(self.drops.val().into());
        self.batches.pop_ready.next = false;
        self.batch_ends.next = self.completes.val()
            && (self.index.q.val() + self.one_8.val() == self.batches.pop_data.val().count);
        if self.batch_ends.val() {
            self.failed.d.next = false;
            self.dropped.d.next = self.zero_8.val();
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
            self.dropped.d.next = self.zero_8.val();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{cycle, settle};

    type Assembler = DescriptorAssembler<64>;

    fn word(descriptor: u64, beat: u64) -> u64 {
        descriptor << 8 | beat
    }

    /// Descriptors delivered (slot, first word), and the failure reported (queue, count).
    type Outcome = (Vec<(u64, u64)>, Option<(u64, u64)>);

    /// Runs one batch of `count` descriptors of queue 2 from slot 10, whose beats from
    /// `first_error` on come refused.
    fn run_batch(count: u64, first_error: Option<u64>) -> Outcome {
        let mut assembler = Assembler::new();
        assembler.connect_all();
        let clock = |a: &mut Assembler, level| a.clock.next = Clock { clk: level };
        assembler.batch_valid.next = true;
        assembler.batch.next = Batch {
            queue: 2u64.into(),
            slot: 10u64.into(),
            count: count.into(),
        };
        settle(&mut assembler);
        assert!(assembler.batch_ready.val());
        cycle(&mut assembler, clock);
        assembler.batch_valid.next = false;
        let beats: Vec<(u64, bool)> = (0..count * 4)
            .map(|beat| {
                (
                    word(beat / 4, beat % 4),
                    first_error.is_some_and(|e| beat >= e),
                )
            })
            .collect();
        let (mut next, mut delivered, mut failure) = (0, Vec::new(), None);
        for _ in 0..200 {
            assembler.data_valid.next = next < beats.len();
            if let Some((data, error)) = beats.get(next) {
                assembler.data.next = (*data).into();
                assembler.data_error.next = *error;
            }
            assembler.descriptor_ready.next = true;
            settle(&mut assembler);
            if assembler.data_valid.val() && assembler.data_ready.val() {
                next += 1;
            }
            if assembler.descriptor_valid.val() {
                assert_eq!(assembler.descriptor_queue.val().to_u64(), 2);
                let first_word = assembler.descriptor.val().get_bits::<64>(0).to_u64();
                delivered.push((assembler.descriptor_slot.val().to_u64(), first_word));
            }
            if assembler.fetch_failed.val() {
                assert!(failure.is_none(), "one report per batch");
                failure = Some((
                    assembler.fetch_failed_queue.val().to_u64(),
                    assembler.fetch_failed_count.val().to_u64(),
                ));
            }
            cycle(&mut assembler, clock);
        }
        assert_eq!(next, beats.len(), "every beat taken");
        (delivered, failure)
    }

    #[test]
    fn a_whole_batch_comes_out_as_descriptors_with_their_slots() {
        let (delivered, failure) = run_batch(3, None);
        assert_eq!(
            delivered,
            [(10, word(0, 0)), (11, word(1, 0)), (12, word(2, 0))]
        );
        assert_eq!(failure, None);
    }

    #[test]
    fn a_batch_failing_midway_delivers_what_came_whole_and_counts_back_the_rest() {
        // The fault lands in the second descriptor's third beat.
        let (delivered, failure) = run_batch(4, Some(6));
        assert_eq!(delivered, [(10, word(0, 0))]);
        assert_eq!(failure, Some((2, 3)));
    }

    #[test]
    fn a_batch_refused_outright_is_counted_back_whole() {
        let (delivered, failure) = run_batch(2, Some(0));
        assert_eq!(delivered, []);
        assert_eq!(failure, Some((2, 2)));
    }
}
