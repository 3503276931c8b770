//! A DMA reader: issues reads to host memory with tags, takes their completions in any
//! order, and delivers the data in the order the reads were issued.
//!
//! Each tag owns a slot of the reorder buffer (a block RAM) big enough for the longest
//! read. Completion beats land in their tag's slot as they come; delivery walks the slots
//! in issue order, one beat a clock, through the RAM's read register. A read the host side
//! refused is delivered as the beats it would have had, flagged `error`, data zero, so a
//! consumer always sees the shape of what it asked for; so is the rest of a read whose
//! completion burst ends short.

use npmu_abi::{DMA_LENGTH_BITS, DMA_TAG_BITS, IOVA_BITS};
use rust_hdl::prelude::*;

use crate::ram::BlockRam;

#[derive(LogicBlock)]
pub struct DmaReader<const DATA_BITS: usize, const SLOTS: usize, const BUFFER_BITS: usize> {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, bool>,

    /// A read to issue: at most a slot's bytes, inside one slot-sized aligned block.
    pub request_valid: Signal<In, bool>,
    pub request_ready: Signal<Out, bool>,
    pub request_address: Signal<In, Bits<IOVA_BITS>>,
    pub request_length: Signal<In, Bits<DMA_LENGTH_BITS>>,

    pub dma_request_valid: Signal<Out, bool>,
    pub dma_request_ready: Signal<In, bool>,
    pub dma_request_tag: Signal<Out, Bits<DMA_TAG_BITS>>,
    pub dma_request_address: Signal<Out, Bits<IOVA_BITS>>,
    pub dma_request_length: Signal<Out, Bits<DMA_LENGTH_BITS>>,

    /// Completions for this reader's tags; always taken.
    pub completion_valid: Signal<In, bool>,
    pub completion_tag: Signal<In, Bits<DMA_TAG_BITS>>,
    pub completion_data: Signal<In, Bits<DATA_BITS>>,
    pub completion_last: Signal<In, bool>,
    pub completion_error: Signal<In, bool>,

    /// The data, in issue order; beats carry bytes in the lanes of their addresses.
    pub data_valid: Signal<Out, bool>,
    pub data_ready: Signal<In, bool>,
    pub data: Signal<Out, Bits<DATA_BITS>>,
    pub data_error: Signal<Out, bool>,

    buffer: BlockRam<Bits<DATA_BITS>, BUFFER_BITS>,
    // Slot numbers and beat counts are as wide as a buffer address, so that an address is
    // `slot << slot_shift | beat` without a cast.
    expected: [DFF<Bits<BUFFER_BITS>>; SLOTS],
    received: [DFF<Bits<BUFFER_BITS>>; SLOTS],
    failed: [DFF<bool>; SLOTS],
    issue_slot: DFF<Bits<BUFFER_BITS>>,
    deliver_slot: DFF<Bits<BUFFER_BITS>>,
    in_use: DFF<Bits<BUFFER_BITS>>,
    delivered: DFF<Bits<BUFFER_BITS>>,
    head_valid: DFF<bool>,
    head_error: DFF<bool>,

    issuing: Signal<Local, bool>,
    completion_slot: Signal<Local, Bits<BUFFER_BITS>>,
    completion_received: Signal<Local, Bits<BUFFER_BITS>>,
    /// The completion's tag is a slot's, and that slot still expects beats.
    completion_fits: Signal<Local, bool>,
    head_expected: Signal<Local, Bits<BUFFER_BITS>>,
    head_received: Signal<Local, Bits<BUFFER_BITS>>,
    head_failed: Signal<Local, bool>,
    available: Signal<Local, bool>,
    pop: Signal<Local, bool>,
    load_head: Signal<Local, bool>,
    freeing: Signal<Local, bool>,
    request_beats: Signal<Local, Bits<16>>,

    slot_numbers: [Constant<Bits<BUFFER_BITS>>; SLOTS],
    slot_tags: [Constant<Bits<8>>; SLOTS],
    slots: Constant<Bits<BUFFER_BITS>>,
    slot_mask: Constant<Bits<BUFFER_BITS>>,
    tag_base: Constant<Bits<8>>,
    slot_shift: Constant<Bits<8>>,
    beat_shift: Constant<Bits<8>>,
    /// The lane bits of an address, and what rounds bytes up to whole beats.
    lanes_less_one: Constant<Bits<16>>,
    zero: Constant<Bits<BUFFER_BITS>>,
    one: Constant<Bits<BUFFER_BITS>>,
    zero_data: Constant<Bits<DATA_BITS>>,
}

impl<const DATA_BITS: usize, const SLOTS: usize, const BUFFER_BITS: usize>
    DmaReader<DATA_BITS, SLOTS, BUFFER_BITS>
{
    /// A reader whose reads carry tags `tag_base..tag_base + SLOTS`.
    pub fn new(tag_base: u8) -> Self {
        assert!(SLOTS.is_power_of_two() && (2..=32).contains(&SLOTS));
        assert_eq!(
            tag_base % 32,
            0,
            "slots are numbered in the low five tag bits"
        );
        let lanes = (DATA_BITS / 8) as u64;
        let beats_per_slot = (1u64 << BUFFER_BITS) / SLOTS as u64;
        assert!(beats_per_slot.is_power_of_two() && beats_per_slot <= 128);
        Self {
            clock: Default::default(),
            reset: Default::default(),
            request_valid: Default::default(),
            request_ready: Default::default(),
            request_address: Default::default(),
            request_length: Default::default(),
            dma_request_valid: Default::default(),
            dma_request_ready: Default::default(),
            dma_request_tag: Default::default(),
            dma_request_address: Default::default(),
            dma_request_length: Default::default(),
            completion_valid: Default::default(),
            completion_tag: Default::default(),
            completion_data: Default::default(),
            completion_last: Default::default(),
            completion_error: Default::default(),
            data_valid: Default::default(),
            data_ready: Default::default(),
            data: Default::default(),
            data_error: Default::default(),
            buffer: Default::default(),
            expected: std::array::from_fn(|_| Default::default()),
            received: std::array::from_fn(|_| Default::default()),
            failed: std::array::from_fn(|_| Default::default()),
            issue_slot: Default::default(),
            deliver_slot: Default::default(),
            in_use: Default::default(),
            delivered: Default::default(),
            head_valid: Default::default(),
            head_error: Default::default(),
            issuing: Default::default(),
            completion_slot: Default::default(),
            completion_received: Default::default(),
            completion_fits: Default::default(),
            head_expected: Default::default(),
            head_received: Default::default(),
            head_failed: Default::default(),
            available: Default::default(),
            pop: Default::default(),
            load_head: Default::default(),
            freeing: Default::default(),
            request_beats: Default::default(),
            slot_numbers: std::array::from_fn(|slot| Constant::new((slot as u64).into())),
            slot_tags: std::array::from_fn(|slot| {
                Constant::new((u64::from(tag_base) + slot as u64).into())
            }),
            slots: Constant::new((SLOTS as u64).into()),
            slot_mask: Constant::new((SLOTS as u64 - 1).into()),
            tag_base: Constant::new(u64::from(tag_base).into()),
            slot_shift: Constant::new(u64::from(beats_per_slot.trailing_zeros()).into()),
            beat_shift: Constant::new(u64::from(lanes.trailing_zeros()).into()),
            lanes_less_one: Constant::new((lanes - 1).into()),
            zero: Constant::new(0u64.into()),
            one: Constant::new(1u64.into()),
            zero_data: Constant::new(0u64.into()),
        }
    }
}

impl<const DATA_BITS: usize, const SLOTS: usize, const BUFFER_BITS: usize> Logic
    for DmaReader<DATA_BITS, SLOTS, BUFFER_BITS>
{
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            issue_slot,
            deliver_slot,
            in_use,
            delivered,
            head_valid,
            head_error
        );
        clock!(self, clock, buffer);
        for slot in 0..SLOTS {
            self.expected[slot].clock.next = self.clock.val();
            self.expected[slot].d.next = self.expected[slot].q.val();
            self.received[slot].clock.next = self.clock.val();
            self.received[slot].d.next = self.received[slot].q.val();
            self.failed[slot].clock.next = self.clock.val();
            self.failed[slot].d.next = self.failed[slot].q.val();
        }

        // Issue: one read a clock while a slot is free.
        self.request_ready.next = self.dma_request_ready.val()
            && (self.in_use.q.val() != self.slots.val())
            && !self.reset.val();
        self.dma_request_valid.next = self.request_valid.val()
            && (self.in_use.q.val() != self.slots.val())
            && !self.reset.val();
        self.dma_request_tag.next =
            self.tag_base.val() | bit_cast::<8, 5>(self.issue_slot.q.val().get_bits::<5>(0));
        self.dma_request_address.next = self.request_address.val();
        self.dma_request_length.next = self.request_length.val();
        self.issuing.next = self.dma_request_valid.val() && self.dma_request_ready.val();
        // Beats the read spans, its first one partial when the address is unaligned.
        self.request_beats.next = (bit_cast::<16, DMA_LENGTH_BITS>(self.request_length.val())
            + (self.request_address.val().get_bits::<16>(0) & self.lanes_less_one.val())
            + self.lanes_less_one.val())
            >> self.beat_shift.val();
        for slot in 0..SLOTS {
            if self.issuing.val() && (self.issue_slot.q.val() == self.slot_numbers[slot].val()) {
                self.expected[slot].d.next = self.request_beats.val().get_bits::<BUFFER_BITS>(0);
                self.received[slot].d.next = self.zero.val();
                self.failed[slot].d.next = false;
            }
        }
        if self.issuing.val() {
            self.issue_slot.d.next =
                (self.issue_slot.q.val() + self.one.val()) & self.slot_mask.val();
        }

        // Completions land in their slot, in the order of their beats. A beat of a tag no
        // slot owns, or past the read's length, is dropped: the host side misbehaved.
        self.completion_slot.next = self.zero.val();
        self.completion_received.next = self.zero.val();
        self.completion_fits.next = false;
        for slot in 0..SLOTS {
            if self.completion_tag.val() == self.slot_tags[slot].val() {
                self.completion_slot.next = self.slot_numbers[slot].val();
                self.completion_received.next = self.received[slot].q.val();
                self.completion_fits.next =
                    self.received[slot].q.val() < self.expected[slot].q.val();
                if self.completion_valid.val() {
                    if self.completion_error.val() || !self.completion_fits.val() {
                        self.failed[slot].d.next = true;
                    } else {
                        self.received[slot].d.next = self.received[slot].q.val() + self.one.val();
                        // A burst that ends short leaves its missing beats refused.
                        if self.completion_last.val()
                            && (self.received[slot].q.val() + self.one.val()
                                != self.expected[slot].q.val())
                        {
                            self.failed[slot].d.next = true;
                        }
                    }
                }
            }
        }
        self.buffer.write_enable.next = self.completion_valid.val()
            && !self.completion_error.val()
            && self.completion_fits.val();
        self.buffer.write_data.next = self.completion_data.val();
        self.buffer.write_address.next =
            (self.completion_slot.val() << self.slot_shift.val()) | self.completion_received.val();

        // Delivery: the head slot's beats in order; a refused read's beats flagged.
        self.head_expected.next = self.zero.val();
        self.head_received.next = self.zero.val();
        self.head_failed.next = false;
        for slot in 0..SLOTS {
            if self.deliver_slot.q.val() == self.slot_numbers[slot].val() {
                self.head_expected.next = self.expected[slot].q.val();
                self.head_received.next = self.received[slot].q.val();
                self.head_failed.next = self.failed[slot].q.val();
            }
        }
        self.available.next = (self.in_use.q.val() != self.zero.val())
            && ((self.delivered.q.val() < self.head_received.val())
                || (self.head_failed.val() && (self.delivered.q.val() < self.head_expected.val())));
        self.pop.next = self.head_valid.q.val() && self.data_ready.val();
        self.load_head.next = self.available.val() && (!self.head_valid.q.val() || self.pop.val());
        self.buffer.read_enable.next = self.load_head.val();
        self.buffer.read_address.next =
            (self.deliver_slot.q.val() << self.slot_shift.val()) | self.delivered.q.val();
        self.head_valid.d.next =
            self.load_head.val() || (self.head_valid.q.val() && !self.pop.val());
        self.freeing.next = self.load_head.val()
            && (self.delivered.q.val() + self.one.val() == self.head_expected.val());
        if self.load_head.val() {
            self.head_error.d.next =
                self.head_failed.val() && (self.delivered.q.val() >= self.head_received.val());
            self.delivered.d.next = self.delivered.q.val() + self.one.val();
        }
        if self.freeing.val() {
            self.delivered.d.next = self.zero.val();
            self.deliver_slot.d.next =
                (self.deliver_slot.q.val() + self.one.val()) & self.slot_mask.val();
        }
        if self.issuing.val() && !self.freeing.val() {
            self.in_use.d.next = self.in_use.q.val() + self.one.val();
        }
        if self.freeing.val() && !self.issuing.val() {
            self.in_use.d.next = self.in_use.q.val() - self.one.val();
        }
        self.data_valid.next = self.head_valid.q.val();
        self.data.next = self.buffer.read_data.val();
        if self.head_error.q.val() {
            self.data.next = self.zero_data.val();
        }
        self.data_error.next = self.head_error.q.val();

        if self.reset.val() {
            self.issue_slot.d.next = self.zero.val();
            self.deliver_slot.d.next = self.zero.val();
            self.in_use.d.next = self.zero.val();
            self.delivered.d.next = self.zero.val();
            self.head_valid.d.next = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{cycle, settle};
    use rand::{Rng, SeedableRng};
    use std::collections::VecDeque;

    type Reader = DmaReader<32, 4, 8>;

    fn byte_at(address: u64) -> u8 {
        (address.wrapping_mul(131) >> 3) as u8
    }

    /// The beats a read of `length` bytes at `address` carries: bytes in their lanes.
    fn beats_of(address: u64, length: u64) -> Vec<u64> {
        let first = address & !3;
        let end = address + length;
        (first..end)
            .step_by(4)
            .map(|word| {
                (0..4).fold(0, |value, lane| {
                    let at = word + lane;
                    let byte = if at >= address && at < end {
                        byte_at(at)
                    } else {
                        0
                    };
                    value | u64::from(byte) << (8 * lane)
                })
            })
            .collect()
    }

    #[test]
    fn delivers_in_issue_order_whatever_order_completions_come_in() {
        let mut random =
            rand::rngs::StdRng::seed_from_u64(npmu_test_seed::seed("DMA reader order", 5));
        let mut reader = Reader::new(32);
        reader.connect_all();
        let clock = |reader: &mut Reader, level| reader.clock.next = Clock { clk: level };
        // Reads to issue: at most 256 bytes, inside one 256-byte block.
        let reads: Vec<(u64, u64, bool)> = (0..300)
            .map(|_| {
                let block = random.gen_range(0..1000u64) * 256;
                let start = random.gen_range(0..256);
                let length = random.gen_range(1..=256 - start);
                (block + start, length, random.gen_bool(0.1))
            })
            .collect();
        let mut issued = 0;
        // Completions owed by the host side: per tag, its beats (data, last, error).
        type Packet = (u64, VecDeque<(u64, bool, bool)>);
        let mut owed: Vec<Packet> = Vec::new();
        let mut sending: Option<Packet> = None;
        let mut expected: VecDeque<(u64, bool)> = VecDeque::new();
        let mut delivered = 0;
        while delivered
            < reads
                .iter()
                .map(|(a, l, _)| beats_of(*a, *l).len())
                .sum::<usize>()
        {
            reader.request_valid.next = issued < reads.len();
            if let Some((address, length, _)) = reads.get(issued) {
                reader.request_address.next = (*address).into();
                reader.request_length.next = (*length).into();
            }
            reader.dma_request_ready.next = random.gen_bool(0.7);
            if sending.is_none() && !owed.is_empty() && random.gen_bool(0.5) {
                sending = Some(owed.swap_remove(random.gen_range(0..owed.len())));
            }
            reader.completion_valid.next = false;
            if let Some((tag, beats)) = &mut sending {
                if random.gen_bool(0.8) {
                    let (data, last, error) = beats.pop_front().unwrap();
                    reader.completion_valid.next = true;
                    reader.completion_tag.next = (*tag).into();
                    reader.completion_data.next = data.into();
                    reader.completion_last.next = last;
                    reader.completion_error.next = error;
                    if beats.is_empty() {
                        sending = None;
                    }
                }
            }
            reader.data_ready.next = random.gen_bool(0.6);
            settle(&mut reader);
            if reader.dma_request_valid.val() && reader.dma_request_ready.val() {
                let (address, length, fails) = reads[issued];
                assert_eq!(reader.dma_request_address.val().to_u64(), address);
                let tag = reader.dma_request_tag.val().to_u64();
                assert!((32..36).contains(&tag), "tag {tag} outside the reader's");
                let beats = beats_of(address, length);
                let count = beats.len();
                for beat in &beats {
                    expected.push_back((if fails { 0 } else { *beat }, fails));
                }
                let packet: VecDeque<_> = if fails {
                    [(0, true, true)].into()
                } else {
                    beats
                        .iter()
                        .enumerate()
                        .map(|(i, b)| (*b, i + 1 == count, false))
                        .collect()
                };
                owed.push((tag, packet));
                issued += 1;
            }
            if reader.data_valid.val() && reader.data_ready.val() {
                let beat = (reader.data.val().to_u64(), reader.data_error.val());
                assert_eq!(Some(beat), expected.pop_front(), "beat {delivered}");
                delivered += 1;
            }
            cycle(&mut reader, clock);
        }
        assert!(expected.is_empty());
    }
}
