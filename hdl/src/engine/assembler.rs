//! The descriptor assembler: turns the fetched slots back into descriptors, each labelled
//! with its queue and the last submission slot it occupies, passes an inline WRITE's payload
//! on when it came in the same batch, and returns to the queue bank every slot of a batch
//! that became no descriptor. Descriptors whose bytes all arrived before a DMA fault go on;
//! the rest of the batch is dropped, and the batch is reported failed.
//!
//! An inline WRITE's payload slots are counted per queue, so they are passed over as
//! descriptors even where the payload runs past its batch (the block's end, a full
//! completion ring): the rest of the count is passed over at the start of the queue's next
//! batch. Such a payload the issuer reads from the ring instead, one more round trip.

use crate::fifo::Fifo;
use npmu_abi::queue::{
    descriptor_bits, descriptor_flags, Opcode, DESCRIPTOR_BITS, DESCRIPTOR_BYTES, INLINE_MAX_BYTES,
};
use rust_hdl::prelude::*;

/// A batch of slots being fetched, in fetch order.
#[derive(Copy, Clone, Debug, Default, PartialEq, LogicStruct)]
pub struct Batch {
    pub queue: Bits<4>,
    /// Submission slot of the first; a batch never wraps the ring.
    pub slot: Bits<16>,
    pub count: Bits<8>,
    /// IOVA of the first slot.
    pub address: Bits<64>,
    /// Slots the host had published past the batch when it was fetched.
    pub published_after: Bits<16>,
    /// Slots between the batch and the ring's end.
    pub ring_after: Bits<16>,
}

/// Where an inline WRITE's payload is, for the issuer.
#[derive(Copy, Clone, Debug, Default, PartialEq, LogicStruct)]
pub struct PayloadPlace {
    /// Wholly in the descriptor's batch: it follows the descriptor out of the assembler.
    pub here: bool,
    /// It would run past the ring's last slot.
    pub wraps: bool,
    /// It runs past the slots the host had published.
    pub unpublished: bool,
    /// IOVA of its first byte: the slot after the descriptor's.
    pub address: Bits<64>,
}

#[derive(LogicBlock)]
pub struct DescriptorAssembler<const DATA_BITS: usize, const QUEUES: usize> {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, bool>,

    /// A fetch was issued for this batch.
    pub batch_valid: Signal<In, bool>,
    pub batch_ready: Signal<Out, bool>,
    pub batch: Signal<In, Batch>,
    /// Queue `restart_queue` was enabled afresh: no payload of its old ring is still due.
    pub restart: Signal<In, bool>,
    pub restart_queue: Signal<In, Bits<4>>,

    /// The fetched bytes, as the descriptor reader delivers them.
    pub data_valid: Signal<In, bool>,
    pub data_ready: Signal<Out, bool>,
    pub data: Signal<In, Bits<DATA_BITS>>,
    pub data_error: Signal<In, bool>,

    pub descriptor_valid: Signal<Out, bool>,
    pub descriptor_ready: Signal<In, bool>,
    pub descriptor: Signal<Out, Bits<DESCRIPTOR_BITS>>,
    pub descriptor_queue: Signal<Out, Bits<4>>,
    /// The last slot the descriptor occupies: its payload's, if it has one.
    pub descriptor_slot: Signal<Out, Bits<16>>,
    pub descriptor_payload: Signal<Out, PayloadPlace>,
    /// The issuer takes the offered descriptor's payload from here.
    pub payload_wanted: Signal<In, bool>,

    /// The payloads the issuer wanted, in its lanes from lane 0, one beat a clock.
    pub payload_valid: Signal<Out, bool>,
    pub payload_ready: Signal<In, bool>,
    pub payload_data: Signal<Out, Bits<DATA_BITS>>,
    pub payload_error: Signal<Out, bool>,

    /// A batch ended: `slots_returned_count` of its slots became no descriptor.
    pub slots_returned: Signal<Out, bool>,
    pub slots_returned_queue: Signal<Out, Bits<4>>,
    pub slots_returned_count: Signal<Out, Bits<8>>,
    pub slots_returned_failed: Signal<Out, bool>,

    /// Four batches: as many fetches as the fetcher has in flight for up to four queues.
    batches: Fifo<Batch, 2>,
    /// Payload beats, and whether each came refused, side by side.
    payload_beats: Fifo<Bits<DATA_BITS>, 3>,
    payload_errors: Fifo<bool, 3>,
    assembly: DFF<Bits<DESCRIPTOR_BITS>>,
    beat: DFF<Bits<8>>,
    index: DFF<Bits<8>>,
    holding: DFF<bool>,
    held_queue: DFF<Bits<4>>,
    held_slot: DFF<Bits<16>>,
    held_payload: DFF<PayloadPlace>,
    /// Beats of the held descriptor's payload, from its first: its length in whole beats.
    held_payload_beats: DFF<Bits<8>>,
    /// Payload beats still to pass on.
    forward_left: DFF<Bits<8>>,
    failed: DFF<bool>,
    /// Descriptors of the current batch delivered so far.
    delivered: DFF<Bits<8>>,
    /// Per queue, payload slots still to pass over.
    payload_due: [DFF<Bits<4>>; QUEUES],

    taking: Signal<Local, bool>,
    drops: Signal<Local, bool>,
    completes: Signal<Local, bool>,
    batch_ends: Signal<Local, bool>,
    incoming: Signal<Local, Bits<DESCRIPTOR_BITS>>,
    queue_due: Signal<Local, Bits<4>>,
    is_payload: Signal<Local, bool>,
    inline_write: Signal<Local, bool>,
    length: Signal<Local, Bits<32>>,
    payload_slots: Signal<Local, Bits<8>>,
    length_in_slots: Signal<Local, Bits<32>>,
    length_in_beats: Signal<Local, Bits<32>>,
    slots_after: Signal<Local, Bits<8>>,
    /// Payload slots past the batch, if there are any.
    beyond_slots: Signal<Local, Bits<8>>,
    beyond: Signal<Local, Bits<16>>,
    /// From the batch's first slot to the one after this descriptor's, in bytes.
    payload_offset: Signal<Local, Bits<64>>,
    handing_over: Signal<Local, bool>,
    forward_now: Signal<Local, Bits<8>>,
    forwards: Signal<Local, bool>,
    delivers: Signal<Local, bool>,

    queue_numbers: [Constant<Bits<4>>; QUEUES],
    last_beat: Constant<Bits<8>>,
    data_width: Constant<Bits<16>>,
    beat_shift: Constant<Bits<16>>,
    opcode_at: Constant<Bits<32>>,
    flags_at: Constant<Bits<32>>,
    length_at: Constant<Bits<32>>,
    write_opcode: Constant<Bits<8>>,
    inline_flag: Constant<Bits<8>>,
    inline_max: Constant<Bits<32>>,
    slot_shift: Constant<Bits<8>>,
    slot_bytes_less_one: Constant<Bits<32>>,
    lane_shift: Constant<Bits<8>>,
    lanes_less_one: Constant<Bits<32>>,
    one_64: Constant<Bits<64>>,
    zero_4: Constant<Bits<4>>,
    one_4: Constant<Bits<4>>,
    zero_8: Constant<Bits<8>>,
    one_8: Constant<Bits<8>>,
    zero_32: Constant<Bits<32>>,
}

impl<const DATA_BITS: usize, const QUEUES: usize> DescriptorAssembler<DATA_BITS, QUEUES> {
    pub fn new() -> Self {
        let beats = DESCRIPTOR_BITS / DATA_BITS;
        let lanes = (DATA_BITS / 8) as u64;
        Self {
            clock: Default::default(),
            reset: Default::default(),
            batch_valid: Default::default(),
            batch_ready: Default::default(),
            batch: Default::default(),
            restart: Default::default(),
            restart_queue: Default::default(),
            data_valid: Default::default(),
            data_ready: Default::default(),
            data: Default::default(),
            data_error: Default::default(),
            descriptor_valid: Default::default(),
            descriptor_ready: Default::default(),
            descriptor: Default::default(),
            descriptor_queue: Default::default(),
            descriptor_slot: Default::default(),
            descriptor_payload: Default::default(),
            payload_wanted: Default::default(),
            payload_valid: Default::default(),
            payload_ready: Default::default(),
            payload_data: Default::default(),
            payload_error: Default::default(),
            slots_returned: Default::default(),
            slots_returned_queue: Default::default(),
            slots_returned_count: Default::default(),
            slots_returned_failed: Default::default(),
            batches: Default::default(),
            payload_beats: Default::default(),
            payload_errors: Default::default(),
            assembly: Default::default(),
            beat: Default::default(),
            index: Default::default(),
            holding: Default::default(),
            held_queue: Default::default(),
            held_slot: Default::default(),
            held_payload: Default::default(),
            held_payload_beats: Default::default(),
            forward_left: Default::default(),
            failed: Default::default(),
            delivered: Default::default(),
            payload_due: std::array::from_fn(|_| Default::default()),
            taking: Default::default(),
            drops: Default::default(),
            completes: Default::default(),
            batch_ends: Default::default(),
            incoming: Default::default(),
            queue_due: Default::default(),
            is_payload: Default::default(),
            inline_write: Default::default(),
            length: Default::default(),
            payload_slots: Default::default(),
            length_in_slots: Default::default(),
            length_in_beats: Default::default(),
            slots_after: Default::default(),
            beyond_slots: Default::default(),
            beyond: Default::default(),
            payload_offset: Default::default(),
            handing_over: Default::default(),
            forward_now: Default::default(),
            forwards: Default::default(),
            delivers: Default::default(),
            queue_numbers: std::array::from_fn(|q| Constant::new((q as u64).into())),
            last_beat: Constant::new((beats as u64 - 1).into()),
            data_width: Constant::new((DATA_BITS as u64).into()),
            beat_shift: Constant::new(((DESCRIPTOR_BITS - DATA_BITS) as u64).into()),
            opcode_at: Constant::new((descriptor_bits::OPCODE as u64).into()),
            flags_at: Constant::new((descriptor_bits::FLAGS as u64).into()),
            length_at: Constant::new((descriptor_bits::LENGTH as u64).into()),
            write_opcode: Constant::new((Opcode::Write as u64).into()),
            inline_flag: Constant::new(u64::from(descriptor_flags::INLINE).into()),
            inline_max: Constant::new(u64::from(INLINE_MAX_BYTES).into()),
            slot_shift: Constant::new(u64::from(DESCRIPTOR_BYTES.trailing_zeros()).into()),
            slot_bytes_less_one: Constant::new(u64::from(DESCRIPTOR_BYTES - 1).into()),
            lane_shift: Constant::new(u64::from(lanes.trailing_zeros()).into()),
            lanes_less_one: Constant::new((lanes - 1).into()),
            one_64: Constant::new(1u64.into()),
            zero_4: Constant::new(0u64.into()),
            one_4: Constant::new(1u64.into()),
            zero_8: Constant::new(0u64.into()),
            one_8: Constant::new(1u64.into()),
            zero_32: Constant::new(0u64.into()),
        }
    }
}

impl<const DATA_BITS: usize, const QUEUES: usize> Default
    for DescriptorAssembler<DATA_BITS, QUEUES>
{
    fn default() -> Self {
        Self::new()
    }
}

impl<const DATA_BITS: usize, const QUEUES: usize> Logic for DescriptorAssembler<DATA_BITS, QUEUES> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            assembly,
            beat,
            index,
            holding,
            held_queue,
            held_slot,
            held_payload,
            held_payload_beats,
            forward_left,
            failed,
            delivered
        );
        clock!(self, clock, batches, payload_beats, payload_errors);
        for q in 0..QUEUES {
            self.payload_due[q].clock.next = self.clock.val();
            self.payload_due[q].d.next = self.payload_due[q].q.val();
        }
        self.batches.reset.next = self.reset.val();
        self.payload_beats.reset.next = self.reset.val();
        self.payload_errors.reset.next = self.reset.val();
        self.batches.push_valid.next = self.batch_valid.val();
        self.batches.push_data.next = self.batch.val();
        self.batch_ready.next = self.batches.push_ready.val();

        // A finished descriptor waits to be taken; beats flow in meanwhile only if it goes,
        // and a payload beat only if there is room for it.
        self.descriptor_valid.next = self.holding.q.val();
        self.descriptor.next = self.assembly.q.val();
        self.descriptor_queue.next = self.held_queue.q.val();
        self.descriptor_slot.next = self.held_slot.q.val();
        self.descriptor_payload.next = self.held_payload.q.val();
        self.handing_over.next = self.holding.q.val() && self.descriptor_ready.val();
        self.forward_now.next = self.forward_left.q.val();
        if self.handing_over.val() {
            self.forward_now.next = self.zero_8.val();
            if self.payload_wanted.val() {
                self.forward_now.next = self.held_payload_beats.q.val();
            }
        }
        self.data_ready.next = self.batches.pop_valid.val()
            && (!self.holding.q.val() || self.descriptor_ready.val())
            && ((self.forward_now.val() == self.zero_8.val())
                || self.payload_beats.push_ready.val());
        self.taking.next = self.data_valid.val() && self.data_ready.val();
        self.completes.next = self.taking.val() && (self.beat.q.val() == self.last_beat.val());
        self.forwards.next = self.taking.val() && (self.forward_now.val() != self.zero_8.val());
        self.forward_left.d.next = self.forward_now.val();
        if self.forwards.val() {
            self.forward_left.d.next = self.forward_now.val() - self.one_8.val();
        }
        self.payload_beats.push_valid.next = self.forwards.val();
        self.payload_beats.push_data.next = self.data.val();
        self.payload_errors.push_valid.next = self.forwards.val();
        self.payload_errors.push_data.next = self.data_error.val();
        self.payload_valid.next = self.payload_beats.pop_valid.val();
        self.payload_data.next = self.payload_beats.pop_data.val();
        self.payload_error.next = self.payload_errors.pop_data.val();
        self.payload_beats.pop_ready.next = self.payload_ready.val();
        self.payload_errors.pop_ready.next = self.payload_ready.val();

        if self.handing_over.val() {
            self.holding.d.next = false;
        }
        // Little endian: the first beat ends up in the descriptor's lowest bits.
        self.incoming.next = (self.assembly.q.val() >> self.data_width.val())
            | (bit_cast::<DESCRIPTOR_BITS, DATA_BITS>(self.data.val()) << self.beat_shift.val());
        if self.taking.val() {
            self.assembly.d.next = self.incoming.val();
            self.beat.d.next = self.beat.q.val() + self.one_8.val();
            if self.data_error.val() {
                self.failed.d.next = true;
            }
        }

        // What the slot just completed is: a payload slot still due, or a descriptor, which
        // may own payload slots after it.
        self.queue_due.next = self.zero_4.val();
        for q in 0..QUEUES {
            if self.batches.pop_data.val().queue == self.queue_numbers[q].val() {
                self.queue_due.next = self.payload_due[q].q.val();
            }
        }
        self.is_payload.next = self.queue_due.val() != self.zero_4.val();
        self.length.next = self
            .incoming
            .val()
            .get_bits::<32>(self.length_at.val().index());
        self.inline_write.next = (self
            .incoming
            .val()
            .get_bits::<8>(self.opcode_at.val().index())
            == self.write_opcode.val())
            && ((self
                .incoming
                .val()
                .get_bits::<8>(self.flags_at.val().index())
                & self.inline_flag.val())
                != self.zero_8.val());
        // Named first: a part select of an expression is not Verilog.
        self.length_in_slots.next =
            (self.length.val() + self.slot_bytes_less_one.val()) >> self.slot_shift.val();
        self.length_in_beats.next =
            (self.length.val() + self.lanes_less_one.val()) >> self.lane_shift.val();
        self.payload_slots.next = self.zero_8.val();
        if self.inline_write.val()
            && (self.length.val() != self.zero_32.val())
            && (self.length.val() <= self.inline_max.val())
        {
            self.payload_slots.next = self.length_in_slots.val().get_bits::<8>(0);
        }
        self.slots_after.next =
            self.batches.pop_data.val().count - self.index.q.val() - self.one_8.val();
        self.beyond_slots.next = self.payload_slots.val() - self.slots_after.val();
        self.beyond.next = bit_cast::<16, 8>(self.beyond_slots.val());
        self.payload_offset.next =
            (bit_cast::<64, 8>(self.index.q.val()) + self.one_64.val()) << self.slot_shift.val();

        self.drops.next = self.completes.val() && (self.failed.q.val() || self.data_error.val());
        self.delivers.next = self.completes.val() && !self.drops.val() && !self.is_payload.val();
        for q in 0..QUEUES {
            if self.completes.val()
                && (self.batches.pop_data.val().queue == self.queue_numbers[q].val())
            {
                if self.is_payload.val() {
                    self.payload_due[q].d.next = self.payload_due[q].q.val() - self.one_4.val();
                } else {
                    self.payload_due[q].d.next = self.payload_slots.val().get_bits::<4>(0);
                }
            }
            if (self.restart.val() && (self.restart_queue.val() == self.queue_numbers[q].val()))
                || self.reset.val()
            {
                self.payload_due[q].d.next = self.zero_4.val();
            }
        }
        if self.completes.val() {
            self.beat.d.next = self.zero_8.val();
            self.index.d.next = self.index.q.val() + self.one_8.val();
        }
        if self.delivers.val() {
            self.holding.d.next = true;
            self.delivered.d.next = self.delivered.q.val() + self.one_8.val();
            self.held_queue.d.next = self.batches.pop_data.val().queue;
            self.held_slot.d.next = self.batches.pop_data.val().slot
                + bit_cast::<16, 8>(self.index.q.val())
                + bit_cast::<16, 8>(self.payload_slots.val());
            self.held_payload.d.next.here = self.payload_slots.val() <= self.slots_after.val();
            self.held_payload.d.next.wraps = false;
            self.held_payload.d.next.unpublished = false;
            if self.payload_slots.val() > self.slots_after.val() {
                self.held_payload.d.next.wraps =
                    self.beyond.val() > self.batches.pop_data.val().ring_after;
                self.held_payload.d.next.unpublished =
                    self.beyond.val() > self.batches.pop_data.val().published_after;
            }
            self.held_payload.d.next.address =
                self.batches.pop_data.val().address + self.payload_offset.val();
            self.held_payload_beats.d.next = self.length_in_beats.val().get_bits::<8>(0);
        }

        // The batch ends with its last beat; every slot that became no descriptor goes back.
        self.slots_returned_queue.next = self.batches.pop_data.val().queue;
        self.slots_returned_count.next = self.batches.pop_data.val().count
            - self.delivered.q.val()
            - bit_cast::<8, 1>(self.delivers.val().into());
        self.slots_returned_failed.next = self.failed.q.val() || self.data_error.val();
        self.batches.pop_ready.next = false;
        self.batch_ends.next = self.completes.val()
            && (self.index.q.val() + self.one_8.val() == self.batches.pop_data.val().count);
        self.slots_returned.next = self.batch_ends.val()
            && ((self.slots_returned_count.val() != self.zero_8.val())
                || self.slots_returned_failed.val());
        if self.batch_ends.val() {
            self.failed.d.next = false;
            self.delivered.d.next = self.zero_8.val();
            self.index.d.next = self.zero_8.val();
            self.batches.pop_ready.next = true;
        }
        if self.reset.val() {
            self.beat.d.next = self.zero_8.val();
            self.index.d.next = self.zero_8.val();
            self.holding.d.next = false;
            self.failed.d.next = false;
            self.delivered.d.next = self.zero_8.val();
            self.forward_left.d.next = self.zero_8.val();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{cycle, settle};
    use npmu_abi::queue::Descriptor;
    use zerocopy::IntoBytes;

    type Assembler = DescriptorAssembler<64, 4>;

    fn word(descriptor: u64, beat: u64) -> u64 {
        descriptor << 8 | beat
    }

    /// What came out: descriptors (slot, first word, payload place), payload beats (data,
    /// refused), and slots returned (queue, count, failed).
    #[derive(Debug, Default)]
    struct Outcome {
        delivered: Vec<(u64, u64, PayloadPlace)>,
        payload: Vec<(u64, bool)>,
        returned: Vec<(u64, u64, bool)>,
    }

    /// Runs `batches` of queue 2, each (first slot, beats with whether each comes refused,
    /// slots published past it), the issuer wanting every payload that came whole.
    /// A batch to run: its first slot, its beats with whether each comes refused, and the
    /// slots published past it.
    type BatchBeats = (u64, Vec<(u64, bool)>, u64);
    /// Descriptors delivered (slot, first word), and slots returned (queue, count, failed).
    type Delivered = (Vec<(u64, u64)>, Vec<(u64, u64, bool)>);

    fn run(batches: &[BatchBeats]) -> Outcome {
        let mut assembler = Assembler::new();
        assembler.connect_all();
        let clock = |a: &mut Assembler, level| a.clock.next = Clock { clk: level };
        let mut outcome = Outcome::default();
        for (slot, beats, published_after) in batches {
            assembler.batch_valid.next = true;
            assembler.batch.next = Batch {
                queue: 2u64.into(),
                slot: (*slot).into(),
                count: (beats.len() as u64 / 4).into(),
                address: (0x1000 + slot * 32).into(),
                published_after: (*published_after).into(),
                ring_after: 100u64.into(),
            };
            settle(&mut assembler);
            assert!(assembler.batch_ready.val());
            cycle(&mut assembler, clock);
            assembler.batch_valid.next = false;
            let mut next = 0;
            for _ in 0..200 {
                assembler.data_valid.next = next < beats.len();
                if let Some((data, error)) = beats.get(next) {
                    assembler.data.next = (*data).into();
                    assembler.data_error.next = *error;
                }
                assembler.descriptor_ready.next = true;
                assembler.payload_ready.next = true;
                settle(&mut assembler);
                // As the issuer: an inline WRITE's payload, when it came whole.
                let held = assembler.descriptor.val().get_bits::<16>(0).to_u64();
                assembler.payload_wanted.next = assembler.descriptor_valid.val()
                    && assembler.descriptor_payload.val().here
                    && held == 0x0101;
                settle(&mut assembler);
                if assembler.data_valid.val() && assembler.data_ready.val() {
                    next += 1;
                }
                if assembler.descriptor_valid.val() {
                    assert_eq!(assembler.descriptor_queue.val().to_u64(), 2);
                    let first_word = assembler.descriptor.val().get_bits::<64>(0).to_u64();
                    outcome.delivered.push((
                        assembler.descriptor_slot.val().to_u64(),
                        first_word,
                        assembler.descriptor_payload.val(),
                    ));
                }
                if assembler.payload_valid.val() {
                    outcome.payload.push((
                        assembler.payload_data.val().to_u64(),
                        assembler.payload_error.val(),
                    ));
                }
                if assembler.slots_returned.val() {
                    outcome.returned.push((
                        assembler.slots_returned_queue.val().to_u64(),
                        assembler.slots_returned_count.val().to_u64(),
                        assembler.slots_returned_failed.val(),
                    ));
                }
                cycle(&mut assembler, clock);
            }
            assert_eq!(next, beats.len(), "every beat taken");
        }
        outcome
    }

    /// Runs one batch of `count` descriptors of queue 2 from slot 10, whose beats from
    /// `first_error` on come refused: (slot, first word) delivered, and the slots returned.
    fn run_batch(count: u64, first_error: Option<u64>) -> Delivered {
        let beats = (0..count * 4)
            .map(|beat| {
                (
                    word(beat / 4, beat % 4),
                    first_error.is_some_and(|e| beat >= e),
                )
            })
            .collect();
        let outcome = run(&[(10, beats, 0)]);
        let delivered = outcome
            .delivered
            .iter()
            .map(|(slot, first_word, _)| (*slot, *first_word))
            .collect();
        (delivered, outcome.returned)
    }

    #[test]
    fn a_whole_batch_comes_out_as_descriptors_with_their_slots() {
        let (delivered, returned) = run_batch(3, None);
        assert_eq!(
            delivered,
            [(10, word(0, 0)), (11, word(1, 0)), (12, word(2, 0))]
        );
        assert_eq!(returned, []);
    }

    #[test]
    fn a_batch_failing_midway_delivers_what_came_whole_and_counts_back_the_rest() {
        // The fault lands in the second descriptor's third beat.
        let (delivered, returned) = run_batch(4, Some(6));
        assert_eq!(delivered, [(10, word(0, 0))]);
        assert_eq!(returned, [(2, 3, true)]);
    }

    #[test]
    fn a_batch_refused_outright_is_counted_back_whole() {
        let (delivered, returned) = run_batch(2, Some(0));
        assert_eq!(delivered, []);
        assert_eq!(returned, [(2, 2, true)]);
    }

    /// The beats of `slots`, none refused.
    fn beats(slots: &[[u8; 32]]) -> Vec<(u64, bool)> {
        slots
            .iter()
            .flat_map(|slot| slot.chunks_exact(8))
            .map(|chunk| (u64::from_le_bytes(chunk.try_into().unwrap()), false))
            .collect()
    }

    fn slot_of(descriptor: &Descriptor) -> [u8; 32] {
        descriptor.as_bytes().try_into().unwrap()
    }

    fn payload_slot(first_byte: u8) -> [u8; 32] {
        std::array::from_fn(|index| first_byte.wrapping_add(index as u8))
    }

    #[test]
    fn an_inline_payload_in_its_batch_follows_its_descriptor_and_its_slots_go_back() {
        let plain = Descriptor::default();
        let inline = Descriptor::inline_write(0, 0, 0, 40, 7);
        let slots = [
            slot_of(&plain),
            slot_of(&inline),
            payload_slot(0),
            payload_slot(32),
            slot_of(&plain),
        ];
        let outcome = run(&[(10, beats(&slots), 0)]);
        let places: Vec<(u64, bool, u64)> = outcome
            .delivered
            .iter()
            .map(|(slot, _, place)| (*slot, place.here, place.address.to_u64()))
            .collect();
        // The inline WRITE's completion points past its payload, at slot 13.
        assert_eq!(
            places,
            [
                (10, true, 0x1000 + 11 * 32),
                (13, true, 0x1000 + 12 * 32),
                (14, true, 0x1000 + 15 * 32)
            ]
        );
        // Forty bytes: five beats, from the payload's first byte on.
        let expected: Vec<(u64, bool)> = beats(&[payload_slot(0), payload_slot(32)])[..5].to_vec();
        assert_eq!(outcome.payload, expected);
        assert_eq!(outcome.returned, [(2, 2, false)], "the payload's two slots");
    }

    #[test]
    fn a_payload_past_its_batch_is_read_from_the_ring_and_its_slots_passed_over_next_batch() {
        let plain = Descriptor::default();
        let inline = Descriptor::inline_write(0, 0, 0, 64, 7);
        let first = [slot_of(&plain), slot_of(&inline), payload_slot(0)];
        let second = [payload_slot(32), slot_of(&plain)];
        let outcome = run(&[(10, beats(&first), 2), (13, beats(&second), 0)]);
        let places: Vec<(u64, PayloadPlace)> = outcome
            .delivered
            .iter()
            .map(|(slot, _, place)| (*slot, *place))
            .collect();
        assert_eq!(places.len(), 3, "{places:?}");
        assert_eq!(places[1].0, 13);
        assert!(!places[1].1.here);
        assert!(!places[1].1.wraps && !places[1].1.unpublished);
        assert_eq!(places[1].1.address.to_u64(), 0x1000 + 12 * 32);
        assert_eq!(places[2].0, 14, "the payload's last slot was passed over");
        assert_eq!(outcome.payload, [], "nothing came whole");
        assert_eq!(outcome.returned, [(2, 1, false), (2, 1, false)]);
    }

    #[test]
    fn a_payload_past_the_published_tail_is_flagged() {
        let inline = Descriptor::inline_write(0, 0, 0, 33, 7);
        let outcome = run(&[(10, beats(&[slot_of(&inline), payload_slot(0)]), 0)]);
        let (slot, _, place) = outcome.delivered[0];
        assert_eq!(slot, 12);
        assert!(place.unpublished && !place.here && !place.wraps);
    }
}
