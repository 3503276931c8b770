//! The responder: answers requests on the response port, in order, from the records of
//! the data mover and the responses of persistent memory.
//!
//! A read answers with one beat per memory response, lanes outside the request zeroed,
//! `last` on its final beat. A write answers once, when memory has acknowledged its last
//! beat, so a write's response means its data is in persistent memory. A refused or empty
//! request answers with one beat carrying its status.

use crate::block_ram_fifo::BlockRamFifo;
use crate::mover::Record;
use npmu_abi::STATUS_BITS;
use rust_hdl::prelude::*;

#[derive(LogicBlock)]
pub struct Responder<const DATA_BITS: usize> {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, bool>,

    pub record_valid: Signal<In, bool>,
    pub record_ready: Signal<Out, bool>,
    pub record: Signal<In, Record>,

    pub memory_response_valid: Signal<In, bool>,
    pub memory_response_ready: Signal<Out, bool>,
    pub memory_response_data: Signal<In, Bits<DATA_BITS>>,

    pub response_valid: Signal<Out, bool>,
    pub response_ready: Signal<In, bool>,
    pub response_status: Signal<Out, Bits<STATUS_BITS>>,
    pub response_data: Signal<Out, Bits<DATA_BITS>>,
    pub response_last: Signal<Out, bool>,

    /// Memory requests in flight and immediate answers behind them: 256 deep, in one block
    /// RAM rather than 240 flip-flops and their read multiplexer.
    records: BlockRamFifo<Record, 8>,
    head: Signal<Local, Record>,
    lanes_after: Signal<Local, Bits<4>>,
    data_mask: Signal<Local, Bits<DATA_BITS>>,

    data_bytes: Constant<Bits<4>>,
    all_ones: Constant<Bits<DATA_BITS>>,
    zero: Constant<Bits<DATA_BITS>>,
    status_ok: Constant<Bits<4>>,
    byte_shift: Constant<Bits<8>>,
}

impl<const DATA_BITS: usize> Responder<DATA_BITS> {
    pub fn new() -> Self {
        let all_ones = if DATA_BITS == 64 {
            u64::MAX
        } else {
            (1u64 << DATA_BITS) - 1
        };
        Self {
            clock: Default::default(),
            reset: Default::default(),
            record_valid: Default::default(),
            record_ready: Default::default(),
            record: Default::default(),
            memory_response_valid: Default::default(),
            memory_response_ready: Default::default(),
            memory_response_data: Default::default(),
            response_valid: Default::default(),
            response_ready: Default::default(),
            response_status: Default::default(),
            response_data: Default::default(),
            response_last: Default::default(),
            records: Default::default(),
            head: Default::default(),
            lanes_after: Default::default(),
            data_mask: Default::default(),
            data_bytes: Constant::new(((DATA_BITS / 8) as u64).into()),
            all_ones: Constant::new(all_ones.into()),
            zero: Constant::new(0u64.into()),
            status_ok: Constant::new(0u64.into()),
            byte_shift: Constant::new(3u64.into()),
        }
    }
}

impl<const DATA_BITS: usize> Default for Responder<DATA_BITS> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const DATA_BITS: usize> Logic for Responder<DATA_BITS> {
    #[hdl_gen]
    fn update(&mut self) {
        clock!(self, clock, records);
        self.records.reset.next = self.reset.val();
        self.records.push_valid.next = self.record_valid.val();
        self.records.push_data.next = self.record.val();
        self.record_ready.next = self.records.push_ready.val();
        self.head.next = self.records.pop_data.val();

        self.lanes_after.next = self.data_bytes.val() - self.head.val().end_lane;
        self.data_mask.next = (self.all_ones.val()
            << (bit_cast::<8, 4>(self.head.val().first_lane) << self.byte_shift.val()))
            & (self.all_ones.val()
                >> (bit_cast::<8, 4>(self.lanes_after.val()) << self.byte_shift.val()));

        self.response_valid.next = false;
        self.response_status.next = self.status_ok.val();
        self.response_data.next = self.zero.val();
        self.response_last.next = false;
        self.memory_response_ready.next = false;
        self.records.pop_ready.next = false;
        if self.records.pop_valid.val() {
            if self.head.val().immediate {
                self.response_valid.next = true;
                self.response_status.next = self.head.val().status;
                self.response_last.next = true;
                self.records.pop_ready.next = self.response_ready.val();
            } else if !self.head.val().write {
                self.response_valid.next = self.memory_response_valid.val();
                self.response_data.next = self.memory_response_data.val() & self.data_mask.val();
                self.response_last.next = self.head.val().last;
                self.memory_response_ready.next = self.response_ready.val();
                self.records.pop_ready.next =
                    self.memory_response_valid.val() && self.response_ready.val();
            } else if self.head.val().last {
                self.response_valid.next = self.memory_response_valid.val();
                self.response_last.next = true;
                self.memory_response_ready.next = self.response_ready.val();
                self.records.pop_ready.next =
                    self.memory_response_valid.val() && self.response_ready.val();
            } else {
                // Acknowledgements of a write's earlier beats need no answer.
                self.memory_response_ready.next = true;
                self.records.pop_ready.next = self.memory_response_valid.val();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{cycle, settle};
    use std::collections::VecDeque;

    type SmallResponder = Responder<32>;

    fn record(immediate: bool, write: bool, last: bool, status: u64, lanes: (u64, u64)) -> Record {
        Record {
            immediate,
            write,
            last,
            status: status.into(),
            first_lane: lanes.0.into(),
            end_lane: lanes.1.into(),
        }
    }

    /// Feeds records and memory responses in, takes every response beat out (stalling the
    /// response port every other clock); returns (status, data, last) per beat.
    fn run(records: &[Record], memory: &[u64]) -> Vec<(u64, u64, bool)> {
        let mut responder = SmallResponder::new();
        responder.connect_all();
        let clock =
            |responder: &mut SmallResponder, level| responder.clock.next = Clock { clk: level };
        let mut records: VecDeque<Record> = records.iter().copied().collect();
        let mut memory: VecDeque<u64> = memory.iter().copied().collect();
        let mut beats = Vec::new();
        for now in 0..60 {
            responder.record_valid.next = !records.is_empty();
            responder.record.next = records.front().copied().unwrap_or_default();
            responder.memory_response_valid.next = !memory.is_empty() && now > 5;
            responder.memory_response_data.next = memory.front().copied().unwrap_or(0).into();
            responder.response_ready.next = now % 2 == 0;
            settle(&mut responder);
            if responder.record_valid.val() && responder.record_ready.val() {
                records.pop_front();
            }
            if responder.memory_response_valid.val() && responder.memory_response_ready.val() {
                memory.pop_front();
            }
            if responder.response_valid.val() && responder.response_ready.val() {
                beats.push((
                    responder.response_status.val().to_u64(),
                    responder.response_data.val().to_u64(),
                    responder.response_last.val(),
                ));
            }
            cycle(&mut responder, clock);
        }
        assert!(memory.is_empty(), "every memory response is taken");
        beats
    }

    #[test]
    fn reads_answer_per_beat_with_lanes_outside_the_request_zeroed() {
        let beats = run(
            &[
                record(false, false, false, 0, (1, 4)),
                record(false, false, true, 0, (0, 2)),
            ],
            &[0xaabb_ccdd, 0x1122_3344],
        );
        assert_eq!(beats, vec![(0, 0xaabb_cc00, false), (0, 0x0000_3344, true)]);
    }

    #[test]
    fn a_write_answers_once_when_its_last_beat_is_acknowledged() {
        let beats = run(
            &[
                record(false, true, false, 0, (0, 4)),
                record(false, true, false, 0, (0, 4)),
                record(false, true, true, 0, (0, 4)),
            ],
            &[0, 0, 0],
        );
        assert_eq!(beats, vec![(0, 0, true)]);
    }

    #[test]
    fn immediate_answers_keep_their_place_in_order() {
        let beats = run(
            &[
                record(true, false, true, 6, (0, 0)),
                record(false, false, true, 0, (0, 4)),
                record(true, true, true, 3, (0, 0)),
            ],
            &[0x5555_5555],
        );
        assert_eq!(
            beats,
            vec![(6, 0, true), (0, 0x5555_5555, true), (3, 0, true)]
        );
    }
}
