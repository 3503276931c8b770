//! The data mover: carries out each verdict of the AVT on the persistent-memory port.
//!
//! Data beats are `DATA_BYTES` wide and carry each byte in the lane of its address, so a
//! request's first and last beats may be partial; byte enables say which lanes count. A
//! request that passed moves one beat a clock, following its pages: the first from the
//! verdict, the rest from the page queue. A refused request touches no memory: it gets an
//! immediate response, and the mover drops its write data and any pages it queued. Every
//! memory request and immediate response leaves a [`Record`] in order for the
//! [`crate::responder::Responder`].

use crate::avt::Verdict;
use npmu_abi::{Config, CONTEXT_ID_BITS, MEMORY_ADDRESS_BITS, PAGE_NUMBER_BITS, STATUS_BITS};
use rust_hdl::prelude::*;

/// What the responder needs to answer one memory response (or none, if immediate).
#[derive(Copy, Clone, Debug, Default, PartialEq, LogicStruct)]
pub struct Record {
    /// Answer now with `status`; no memory response belongs to this record.
    pub immediate: bool,
    pub write: bool,
    /// The request's last beat.
    pub last: bool,
    pub status: Bits<STATUS_BITS>,
    /// Lanes `first_lane..end_lane` of the beat belong to the request.
    pub first_lane: Bits<4>,
    pub end_lane: Bits<4>,
}

#[derive(LogicBlock)]
pub struct Mover<const DATA_BITS: usize, const STROBE_BITS: usize> {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, bool>,

    pub verdict_valid: Signal<In, bool>,
    pub verdict_ready: Signal<Out, bool>,
    pub verdict: Signal<In, Verdict>,
    pub page_valid: Signal<In, bool>,
    pub page_ready: Signal<Out, bool>,
    pub page: Signal<In, Bits<PAGE_NUMBER_BITS>>,

    pub write_data_valid: Signal<In, bool>,
    pub write_data_ready: Signal<Out, bool>,
    pub write_data: Signal<In, Bits<DATA_BITS>>,
    /// Lanes of the beat to store; a lane left out keeps what persistent memory held.
    pub write_data_enable: Signal<In, Bits<STROBE_BITS>>,

    pub memory_request_valid: Signal<Out, bool>,
    pub memory_request_ready: Signal<In, bool>,
    pub memory_request_write: Signal<Out, bool>,
    pub memory_request_address: Signal<Out, Bits<MEMORY_ADDRESS_BITS>>,
    pub memory_request_write_data: Signal<Out, Bits<DATA_BITS>>,
    pub memory_request_byte_enable: Signal<Out, Bits<STROBE_BITS>>,
    pub memory_request_context: Signal<Out, Bits<CONTEXT_ID_BITS>>,

    pub record_valid: Signal<Out, bool>,
    pub record_ready: Signal<In, bool>,
    pub record: Signal<Out, Record>,

    /// A request is in progress: moving beats, or dropping what a refused one left.
    active: DFF<bool>,
    dropping: DFF<bool>,
    current_write: DFF<bool>,
    current_context: DFF<Bits<CONTEXT_ID_BITS>>,
    current_page: DFF<Bits<PAGE_NUMBER_BITS>>,
    /// Offset in its page of the next beat's first byte.
    offset: DFF<Bits<16>>,
    /// The lane of that byte, and the beat's room from it on: held beside the offset, so
    /// the byte enables and the last-beat test start from flip-flops, not arithmetic.
    first_lane: DFF<Bits<4>>,
    room: DFF<Bits<4>>,
    remaining: DFF<Bits<32>>,
    /// The next beat is on a new page, taken from the page queue.
    page_from_queue: DFF<bool>,
    pages_to_drop: DFF<Bits<16>>,
    /// A refused write's data is still arriving. A flag, not `remaining == 0`: past the
    /// last beat `remaining` is not kept exact (see `next_remaining`).
    data_to_drop: DFF<bool>,

    verdict_passed: Signal<Local, bool>,
    start_refused: Signal<Local, bool>,
    start_accepted: Signal<Local, bool>,
    moving: Signal<Local, bool>,
    beat_write: Signal<Local, bool>,
    beat_context: Signal<Local, Bits<16>>,
    beat_page: Signal<Local, Bits<32>>,
    beat_offset: Signal<Local, Bits<16>>,
    beat_remaining: Signal<Local, Bits<32>>,
    page_available: Signal<Local, bool>,
    verdict_offset: Signal<Local, Bits<16>>,
    verdict_lane: Signal<Local, Bits<4>>,
    verdict_room: Signal<Local, Bits<4>>,
    room_bits: Constant<Bits<32>>,
    last_beat: Signal<Local, bool>,
    beat_bytes: Signal<Local, Bits<4>>,
    end_lane: Signal<Local, Bits<4>>,
    aligned_offset: Signal<Local, Bits<16>>,
    next_offset: Signal<Local, Bits<16>>,
    crossing: Signal<Local, bool>,
    next_remaining: Signal<Local, Bits<32>>,
    beat_done: Signal<Local, bool>,
    drop_beat: Signal<Local, bool>,
    drop_page: Signal<Local, bool>,
    /// The verdict refuses a write whose data still arrives.
    refused_data: Signal<Local, bool>,
    /// A refused request left write data or queued pages to drop.
    leftovers: Signal<Local, bool>,

    data_bytes: Constant<Bits<4>>,
    data_bytes_16: Constant<Bits<16>>,
    lane_mask: Constant<Bits<16>>,
    lane_mask_4: Constant<Bits<4>>,
    page_offset_mask: Constant<Bits<16>>,
    page_shift: Constant<Bits<8>>,
    all_lanes: Constant<Bits<STROBE_BITS>>,
    status_ok: Constant<Bits<4>>,
    zero_4: Constant<Bits<4>>,
    zero_16: Constant<Bits<16>>,
    one_16: Constant<Bits<16>>,
    zero_32: Constant<Bits<32>>,
}

impl<const DATA_BITS: usize, const STROBE_BITS: usize> Mover<DATA_BITS, STROBE_BITS> {
    pub fn new(config: &Config) -> Self {
        assert_eq!(config.data_bytes as usize * 8, DATA_BITS);
        assert_eq!(config.data_bytes as usize, STROBE_BITS);
        let data_bytes = u64::from(config.data_bytes);
        Self {
            clock: Default::default(),
            reset: Default::default(),
            verdict_valid: Default::default(),
            verdict_ready: Default::default(),
            verdict: Default::default(),
            page_valid: Default::default(),
            page_ready: Default::default(),
            page: Default::default(),
            write_data_valid: Default::default(),
            write_data_ready: Default::default(),
            write_data: Default::default(),
            write_data_enable: Default::default(),
            memory_request_valid: Default::default(),
            memory_request_ready: Default::default(),
            memory_request_write: Default::default(),
            memory_request_address: Default::default(),
            memory_request_write_data: Default::default(),
            memory_request_byte_enable: Default::default(),
            memory_request_context: Default::default(),
            record_valid: Default::default(),
            record_ready: Default::default(),
            record: Default::default(),
            active: Default::default(),
            dropping: Default::default(),
            current_write: Default::default(),
            current_context: Default::default(),
            current_page: Default::default(),
            offset: Default::default(),
            remaining: Default::default(),
            page_from_queue: Default::default(),
            pages_to_drop: Default::default(),
            data_to_drop: Default::default(),
            verdict_passed: Default::default(),
            start_refused: Default::default(),
            start_accepted: Default::default(),
            moving: Default::default(),
            beat_write: Default::default(),
            beat_context: Default::default(),
            beat_page: Default::default(),
            beat_offset: Default::default(),
            beat_remaining: Default::default(),
            page_available: Default::default(),
            first_lane: Default::default(),
            room: Default::default(),
            verdict_offset: Default::default(),
            verdict_lane: Default::default(),
            verdict_room: Default::default(),
            room_bits: Constant::new(4u64.into()),
            last_beat: Default::default(),
            beat_bytes: Default::default(),
            end_lane: Default::default(),
            aligned_offset: Default::default(),
            next_offset: Default::default(),
            crossing: Default::default(),
            next_remaining: Default::default(),
            beat_done: Default::default(),
            drop_beat: Default::default(),
            drop_page: Default::default(),
            refused_data: Default::default(),
            leftovers: Default::default(),
            data_bytes: Constant::new(data_bytes.into()),
            data_bytes_16: Constant::new(data_bytes.into()),
            lane_mask: Constant::new((data_bytes - 1).into()),
            lane_mask_4: Constant::new((data_bytes - 1).into()),
            page_offset_mask: Constant::new((config.page_bytes() - 1).into()),
            page_shift: Constant::new(u64::from(config.page_shift).into()),
            all_lanes: Constant::new(((1u64 << STROBE_BITS) - 1).into()),
            status_ok: Constant::new(0u64.into()),
            zero_4: Constant::new(0u64.into()),
            zero_16: Constant::new(0u64.into()),
            one_16: Constant::new(1u64.into()),
            zero_32: Constant::new(0u64.into()),
        }
    }
}

impl<const DATA_BITS: usize, const STROBE_BITS: usize> Logic for Mover<DATA_BITS, STROBE_BITS> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            active,
            dropping,
            current_write,
            current_context,
            current_page,
            offset,
            first_lane,
            room,
            remaining,
            page_from_queue,
            pages_to_drop,
            data_to_drop
        );

        // A verdict is taken into the registers first and its beats move from the next clock
        // on, so no memory request hangs off the verdict queue's multiplexer and arithmetic.
        // The next request is taken in the clock of the last beat, so one-beat requests still
        // move one a clock; a refused one waits for the mover to be idle, as its immediate
        // record must not meet a beat's.
        self.verdict_passed.next = self.verdict.val().moves;
        self.start_refused.next =
            !self.active.q.val() && self.verdict_valid.val() && !self.verdict_passed.val();
        self.moving.next = self.active.q.val() && !self.dropping.q.val();
        self.beat_write.next = self.current_write.q.val();
        self.beat_context.next = self.current_context.q.val();
        self.beat_page.next = self.current_page.q.val();
        self.beat_offset.next = self.offset.q.val();
        self.beat_remaining.next = self.remaining.q.val();
        if self.active.q.val() && self.page_from_queue.q.val() {
            self.beat_page.next = self.page.val();
        }
        self.page_available.next =
            !(self.active.q.val() && self.page_from_queue.q.val()) || self.page_valid.val();

        // Which lanes the beat fills and where the next one starts.
        // A field of a struct cannot be sliced in place (Icarus and Yosys refuse the Verilog).
        self.verdict_offset.next = self.verdict.val().page_offset;
        self.verdict_lane.next =
            self.verdict_offset.val().get_bits::<4>(0) & self.lane_mask_4.val();
        self.verdict_room.next = self.data_bytes.val() - self.verdict_lane.val();
        // The room is at most a beat (4 bits), so only the low 4 bits of what remains need a
        // comparison; the rest need only be zero, a test that needs no 32-bit carry chain.
        self.last_beat.next = ((self.beat_remaining.val() >> self.room_bits.val())
            == self.zero_32.val())
            && (self.beat_remaining.val().get_bits::<4>(0) <= self.room.q.val());
        self.beat_bytes.next = self.room.q.val();
        if self.last_beat.val() {
            self.beat_bytes.next = self.beat_remaining.val().get_bits::<4>(0);
        }
        self.end_lane.next = self.first_lane.q.val() + self.beat_bytes.val();
        self.aligned_offset.next = self.beat_offset.val() & !self.lane_mask.val();
        self.next_offset.next =
            (self.aligned_offset.val() + self.data_bytes_16.val()) & self.page_offset_mask.val();
        self.crossing.next = self.next_offset.val() == self.zero_16.val();
        // Counted as if the beat were full: after the last beat nothing reads it, and this
        // keeps the subtraction off the last-beat comparison.
        self.next_remaining.next = self.beat_remaining.val() - bit_cast::<32, 4>(self.room.q.val());

        // The memory request for a moving beat.
        self.memory_request_valid.next = self.moving.val()
            && self.page_available.val()
            && self.record_ready.val()
            && (!self.beat_write.val() || self.write_data_valid.val());
        self.memory_request_write.next = self.beat_write.val();
        self.memory_request_address.next = (bit_cast::<48, 32>(self.beat_page.val())
            << self.page_shift.val())
            | bit_cast::<48, 16>(self.aligned_offset.val());
        self.memory_request_write_data.next = self.write_data.val();
        // Lanes from the first up to the end: on the last beat the end is `remaining` bytes
        // on, `room - remaining` lanes short of the beat's end.
        self.memory_request_byte_enable.next = self.all_lanes.val() << self.first_lane.q.val();
        if self.last_beat.val() {
            self.memory_request_byte_enable.next = self.memory_request_byte_enable.val()
                & (self.all_lanes.val()
                    >> (self.room.q.val() - self.beat_remaining.val().get_bits::<4>(0)));
        }
        if self.beat_write.val() {
            self.memory_request_byte_enable.next =
                self.memory_request_byte_enable.val() & self.write_data_enable.val();
        }
        self.memory_request_context.next = self.beat_context.val();
        self.beat_done.next = self.memory_request_valid.val() && self.memory_request_ready.val();
        self.start_accepted.next = self.verdict_valid.val()
            && self.verdict_passed.val()
            && (!self.active.q.val() || (self.beat_done.val() && self.last_beat.val()));

        // What a refused request left behind.
        self.drop_beat.next = self.active.q.val()
            && self.dropping.q.val()
            && self.data_to_drop.q.val()
            && self.write_data_valid.val();
        self.drop_page.next = self.active.q.val()
            && self.dropping.q.val()
            && (self.pages_to_drop.q.val() != self.zero_16.val())
            && self.page_valid.val();

        self.write_data_ready.next = (self.beat_done.val() && self.beat_write.val())
            || (self.active.q.val() && self.dropping.q.val() && self.data_to_drop.q.val());
        self.page_ready.next =
            (self.beat_done.val() && self.active.q.val() && self.page_from_queue.q.val())
                || self.drop_page.val();
        self.verdict_ready.next =
            self.start_accepted.val() || (self.start_refused.val() && self.record_ready.val());

        // One record per memory request, one per refused or empty request.
        self.record_valid.next =
            self.beat_done.val() || (self.start_refused.val() && self.record_ready.val());
        self.record.next.immediate = self.start_refused.val();
        self.record.next.write = self.beat_write.val();
        self.record.next.last = self.last_beat.val() || self.start_refused.val();
        self.record.next.status = self.status_ok.val();
        self.record.next.first_lane = self.first_lane.q.val();
        self.record.next.end_lane = self.end_lane.val();
        if self.start_refused.val() {
            self.record.next.write = self.verdict.val().write;
            self.record.next.status = self.verdict.val().status;
            self.record.next.first_lane = self.zero_4.val();
            self.record.next.end_lane = self.zero_4.val();
        }

        // Next state.
        self.refused_data.next = self.verdict.val().write
            && (self.verdict.val().status != self.status_ok.val())
            && (self.verdict.val().length != self.zero_32.val());
        self.leftovers.next =
            self.refused_data.val() || (self.verdict.val().queued_pages != self.zero_16.val());
        if self.beat_done.val() {
            self.active.d.next = !self.last_beat.val();
            self.dropping.d.next = false;
            self.current_write.d.next = self.beat_write.val();
            self.current_context.d.next = self.beat_context.val();
            self.current_page.d.next = self.beat_page.val();
            self.offset.d.next = self.next_offset.val();
            self.first_lane.d.next = self.zero_4.val();
            self.room.d.next = self.data_bytes.val();
            self.remaining.d.next = self.next_remaining.val();
            self.page_from_queue.d.next = self.crossing.val();
        }
        if self.start_accepted.val() {
            self.active.d.next = true;
            self.dropping.d.next = false;
            self.current_write.d.next = self.verdict.val().write;
            self.current_context.d.next = self.verdict.val().context;
            self.current_page.d.next = self.verdict.val().first_page;
            self.offset.d.next = self.verdict_offset.val();
            self.first_lane.d.next = self.verdict_lane.val();
            self.room.d.next = self.verdict_room.val();
            self.remaining.d.next = self.verdict.val().length;
            self.page_from_queue.d.next = false;
        }
        if self.start_refused.val() && self.record_ready.val() {
            // A refused write's data still arrives and is dropped; so are queued pages.
            self.data_to_drop.d.next = self.refused_data.val();
            self.remaining.d.next = self.verdict.val().length;
            self.offset.d.next = self.verdict_offset.val();
            self.first_lane.d.next = self.verdict_lane.val();
            self.room.d.next = self.verdict_room.val();
            self.pages_to_drop.d.next = self.verdict.val().queued_pages;
            self.current_write.d.next = self.verdict.val().write;
            self.active.d.next = self.leftovers.val();
            self.dropping.d.next = self.leftovers.val();
        }
        if self.drop_beat.val() {
            self.remaining.d.next = self.next_remaining.val();
            self.offset.d.next = self.next_offset.val();
            self.first_lane.d.next = self.zero_4.val();
            self.room.d.next = self.data_bytes.val();
            if self.last_beat.val() {
                self.data_to_drop.d.next = false;
            }
        }
        if self.drop_page.val() {
            self.pages_to_drop.d.next = self.pages_to_drop.q.val() - self.one_16.val();
        }
        if self.active.q.val()
            && self.dropping.q.val()
            && (!self.data_to_drop.q.val() || (self.drop_beat.val() && self.last_beat.val()))
            && ((self.pages_to_drop.q.val() == self.zero_16.val())
                || (self.drop_page.val() && (self.pages_to_drop.q.val() == self.one_16.val())))
        {
            self.active.d.next = false;
            self.dropping.d.next = false;
        }
        if self.reset.val() {
            self.active.d.next = false;
            self.dropping.d.next = false;
            self.data_to_drop.d.next = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{cycle, settle};
    use std::collections::VecDeque;

    type SmallMover = Mover<32, 4>;

    #[derive(Debug, PartialEq)]
    struct Beat {
        write: bool,
        address: u64,
        byte_enable: u64,
        data: u64,
    }

    /// Runs one verdict through the mover with everything else ready; returns the memory
    /// requests, the records, and how many write beats and pages it took.
    fn run(
        verdict: Verdict,
        pages: &[u64],
        write_beats: usize,
    ) -> (Vec<Beat>, Vec<Record>, usize, usize) {
        let mut mover = SmallMover::new(&Config::ICE40);
        mover.connect_all();
        let clock = |mover: &mut SmallMover, level| mover.clock.next = Clock { clk: level };
        let mut pages: VecDeque<u64> = pages.iter().copied().collect();
        let mut beats: VecDeque<u64> = (0..write_beats as u64)
            .map(|beat| 0x1111_1111 * (beat + 1))
            .collect();
        let (mut requests, mut records) = (Vec::new(), Vec::new());
        let (mut beats_taken, mut pages_taken) = (0, 0);
        let mut verdict_pending = true;
        for _ in 0..40 {
            mover.verdict_valid.next = verdict_pending;
            mover.verdict.next = verdict;
            mover.page_valid.next = !pages.is_empty();
            mover.page.next = pages.front().copied().unwrap_or(0).into();
            mover.write_data_valid.next = !beats.is_empty();
            mover.write_data.next = beats.front().copied().unwrap_or(0).into();
            mover.write_data_enable.next = 0xfu64.into();
            mover.memory_request_ready.next = true;
            mover.record_ready.next = true;
            settle(&mut mover);
            if mover.verdict_ready.val() {
                verdict_pending = false;
            }
            if mover.page_ready.val() && mover.page_valid.val() {
                pages.pop_front();
                pages_taken += 1;
            }
            if mover.write_data_ready.val() && mover.write_data_valid.val() {
                beats.pop_front();
                beats_taken += 1;
            }
            if mover.memory_request_valid.val() {
                requests.push(Beat {
                    write: mover.memory_request_write.val(),
                    address: mover.memory_request_address.val().to_u64(),
                    byte_enable: mover.memory_request_byte_enable.val().to_u64(),
                    data: mover.memory_request_write_data.val().to_u64(),
                });
            }
            if mover.record_valid.val() {
                records.push(mover.record.val());
            }
            cycle(&mut mover, clock);
        }
        (requests, records, beats_taken, pages_taken)
    }

    fn verdict(status: u64, write: bool, page_offset: u64, length: u64, queued: u64) -> Verdict {
        Verdict {
            status: status.into(),
            write,
            context: 3u64.into(),
            first_page: 7u64.into(),
            page_offset: page_offset.into(),
            length: length.into(),
            queued_pages: queued.into(),
            moves: status == 0 && length > 0,
        }
    }

    #[test]
    fn one_beat_requests_move_one_a_clock_and_a_refused_one_waits_its_turn() {
        let mut mover = SmallMover::new(&Config::ICE40);
        mover.connect_all();
        let clock = |mover: &mut SmallMover, level| mover.clock.next = Clock { clk: level };
        let mut verdicts: VecDeque<Verdict> = VecDeque::from([
            verdict(0, false, 0, 4, 0),
            verdict(0, false, 4, 4, 0),
            verdict(0, false, 8, 4, 0),
            verdict(3, false, 0, 4, 0),
            verdict(0, false, 12, 2, 0),
        ]);
        let (mut request_clocks, mut records) = (vec![], vec![]);
        for now in 0..20 {
            mover.verdict_valid.next = !verdicts.is_empty();
            mover.verdict.next = verdicts.front().copied().unwrap_or_default();
            mover.page_valid.next = false;
            mover.write_data_valid.next = false;
            mover.memory_request_ready.next = true;
            mover.record_ready.next = true;
            settle(&mut mover);
            if mover.verdict_ready.val() && mover.verdict_valid.val() {
                verdicts.pop_front();
            }
            if mover.memory_request_valid.val() {
                request_clocks.push(now);
            }
            if mover.record_valid.val() {
                records.push((
                    mover.record.val().immediate,
                    mover.record.val().status.to_u64(),
                ));
            }
            cycle(&mut mover, clock);
        }
        // Taken at clock 0, the first beat at 1, then one a clock.
        assert_eq!(request_clocks[..3], [1, 2, 3]);
        assert_eq!(request_clocks.len(), 4);
        assert_eq!(
            records,
            vec![(false, 0), (false, 0), (false, 0), (true, 3), (false, 0)]
        );
    }

    #[test]
    fn a_write_across_a_page_follows_the_queued_page_with_partial_lanes() {
        let (requests, records, beats, pages) = run(verdict(0, true, 1022, 10, 1), &[9], 3);
        assert_eq!(
            requests,
            vec![
                Beat {
                    write: true,
                    address: 7 * 1024 + 1020,
                    byte_enable: 0b1100,
                    data: 0x1111_1111
                },
                Beat {
                    write: true,
                    address: 9 * 1024,
                    byte_enable: 0b1111,
                    data: 0x2222_2222
                },
                Beat {
                    write: true,
                    address: 9 * 1024 + 4,
                    byte_enable: 0b1111,
                    data: 0x3333_3333
                },
            ]
        );
        assert_eq!((beats, pages), (3, 1));
        let lanes: Vec<(u64, u64, bool)> = records
            .iter()
            .map(|r| (r.first_lane.to_u64(), r.end_lane.to_u64(), r.last))
            .collect();
        assert_eq!(lanes, vec![(2, 4, false), (0, 4, false), (0, 4, true)]);
        assert!(records
            .iter()
            .all(|record| !record.immediate && record.write));
    }

    #[test]
    fn a_short_read_inside_one_word_enables_only_its_lanes() {
        let (requests, records, beats, _) = run(verdict(0, false, 5, 2, 0), &[], 0);
        assert_eq!(
            requests,
            vec![Beat {
                write: false,
                address: 7 * 1024 + 4,
                byte_enable: 0b0110,
                data: 0
            }]
        );
        assert_eq!(beats, 0);
        assert_eq!(
            (records[0].first_lane.to_u64(), records[0].end_lane.to_u64()),
            (1, 3)
        );
        assert!(records[0].last);
    }

    #[test]
    fn a_refused_write_touches_nothing_and_drops_its_data_and_pages() {
        let (requests, records, beats, pages) = run(verdict(3, true, 1022, 10, 2), &[9, 10], 3);
        assert!(requests.is_empty());
        assert_eq!(records.len(), 1);
        assert!(records[0].immediate && records[0].last);
        assert_eq!(records[0].status.to_u64(), 3);
        assert_eq!((beats, pages), (3, 2));
    }

    #[test]
    fn an_empty_request_answers_at_once() {
        let (requests, records, beats, _) = run(verdict(0, true, 0, 0, 0), &[], 0);
        assert!(requests.is_empty());
        assert_eq!(beats, 0);
        assert_eq!(records.len(), 1);
        assert!(records[0].immediate);
        assert_eq!(records[0].status.to_u64(), 0);
    }
}
