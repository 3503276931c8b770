//! The DMA writer: every write to host memory goes through here, READ data and completion
//! entries alike, one write request at a time.
//!
//! A READ's data is moved from network lanes to host lanes and cut into writes of at most
//! the maximum payload, each inside one payload-sized aligned block (so none crosses a 4 KiB
//! page). Completion entries go in between writes. The host side acknowledges every write
//! request in order, with an error if it refused it; from those the writer tells the
//! completer, per READ, how many bytes arrived before the first refused write (all of the
//! READ's writes are issued either way), and tells the queue bank which completion entries
//! landed.

use crate::engine::realigner::Realigner;
use crate::engine::retirer::ReadPlan;
use crate::engine::write_stream::WriteResult;
use crate::fifo::Fifo;
use npmu_abi::queue::{COMPLETION_BITS, COMPLETION_BYTES};
use npmu_abi::{Config, DMA_LENGTH_BITS, IOVA_BITS, LENGTH_BITS};
use rust_hdl::prelude::*;

/// A completion entry to write.
#[derive(Copy, Clone, Debug, Default, PartialEq, LogicStruct)]
pub struct EntryWrite {
    pub address: Bits<IOVA_BITS>,
    pub entry: Bits<COMPLETION_BITS>,
    pub queue: Bits<4>,
}

/// A write request issued and not yet acknowledged.
#[derive(Copy, Clone, Debug, Default, PartialEq, LogicStruct)]
pub struct Outstanding {
    pub entry: bool,
    pub queue: Bits<4>,
    /// Bytes of the READ before this write.
    pub offset: Bits<32>,
    /// The READ's last write.
    pub last: bool,
    /// The READ's length.
    pub length: Bits<LENGTH_BITS>,
}

#[derive(LogicBlock)]
pub struct DmaWriter<const DATA_BITS: usize, const STROBE_BITS: usize, const DEPTH_BITS: usize> {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, bool>,

    pub plan_valid: Signal<In, bool>,
    pub plan_ready: Signal<Out, bool>,
    pub plan: Signal<In, ReadPlan>,
    pub data_valid: Signal<In, bool>,
    pub data_ready: Signal<Out, bool>,
    pub data: Signal<In, Bits<DATA_BITS>>,

    pub entry_valid: Signal<In, bool>,
    pub entry_ready: Signal<Out, bool>,
    pub entry: Signal<In, EntryWrite>,

    pub write_valid: Signal<Out, bool>,
    pub write_ready: Signal<In, bool>,
    pub write_address: Signal<Out, Bits<IOVA_BITS>>,
    pub write_length: Signal<Out, Bits<DMA_LENGTH_BITS>>,
    pub write_data: Signal<Out, Bits<DATA_BITS>>,
    pub write_byte_enable: Signal<Out, Bits<STROBE_BITS>>,
    pub write_last: Signal<Out, bool>,

    pub response_valid: Signal<In, bool>,
    pub response_ready: Signal<Out, bool>,
    pub response_error: Signal<In, bool>,

    /// Per READ, in order: did a write fail, and how many bytes came before it.
    pub read_result_valid: Signal<Out, bool>,
    pub read_result_ready: Signal<In, bool>,
    pub read_result: Signal<Out, WriteResult>,

    /// A completion entry's write was acknowledged.
    pub entry_acked: Signal<Out, bool>,
    pub entry_acked_queue: Signal<Out, Bits<4>>,
    pub entry_acked_error: Signal<Out, bool>,

    realigner: Realigner<DATA_BITS, STROBE_BITS>,
    outstanding: Fifo<Outstanding, DEPTH_BITS>,
    results: Fifo<WriteResult, DEPTH_BITS>,

    // The READ whose data is being written.
    reading: DFF<bool>,
    read_start: DFF<Bits<64>>,
    read_length: DFF<Bits<32>>,
    chunk_address: DFF<Bits<64>>,
    read_remaining: DFF<Bits<32>>,
    // The write request on the wire: data or an entry, and beats left in it.
    in_write: DFF<bool>,
    writing_entry: DFF<bool>,
    write_start: DFF<Bits<64>>,
    chunk_length: DFF<Bits<32>>,
    beats_left: DFF<Bits<16>>,
    entry_data: DFF<Bits<COMPLETION_BITS>>,
    // A write of the READ being acknowledged was refused, and the READ's bytes before it.
    failed: DFF<bool>,
    failed_offset: DFF<Bits<32>>,

    plan_host_address: Signal<Local, Bits<64>>,
    next_length: Signal<Local, Bits<32>>,
    block_room: Signal<Local, Bits<32>>,
    next_beats: Signal<Local, Bits<16>>,
    starts_entry: Signal<Local, bool>,
    starts_chunk: Signal<Local, bool>,
    sending: Signal<Local, bool>,
    ends_write: Signal<Local, bool>,
    acknowledging: Signal<Local, bool>,
    fails_now: Signal<Local, bool>,

    payload_bytes: Constant<Bits<32>>,
    payload_mask: Constant<Bits<32>>,
    lane_mask_4: Constant<Bits<4>>,
    /// The lane bits of an address, and what rounds bytes up to whole beats.
    lanes_less_one: Constant<Bits<16>>,
    beat_shift: Constant<Bits<8>>,
    data_width: Constant<Bits<8>>,
    entry_bytes: Constant<Bits<DMA_LENGTH_BITS>>,
    entry_beats: Constant<Bits<16>>,
    all_lanes: Constant<Bits<STROBE_BITS>>,
    one_16: Constant<Bits<16>>,
    zero_32: Constant<Bits<32>>,
}

impl<const DATA_BITS: usize, const STROBE_BITS: usize, const DEPTH_BITS: usize>
    DmaWriter<DATA_BITS, STROBE_BITS, DEPTH_BITS>
{
    pub fn new(config: &Config) -> Self {
        let payload = u64::from(config.max_payload_bytes);
        let lanes = STROBE_BITS as u64;
        Self {
            clock: Default::default(),
            reset: Default::default(),
            plan_valid: Default::default(),
            plan_ready: Default::default(),
            plan: Default::default(),
            data_valid: Default::default(),
            data_ready: Default::default(),
            data: Default::default(),
            entry_valid: Default::default(),
            entry_ready: Default::default(),
            entry: Default::default(),
            write_valid: Default::default(),
            write_ready: Default::default(),
            write_address: Default::default(),
            write_length: Default::default(),
            write_data: Default::default(),
            write_byte_enable: Default::default(),
            write_last: Default::default(),
            response_valid: Default::default(),
            response_ready: Default::default(),
            response_error: Default::default(),
            read_result_valid: Default::default(),
            read_result_ready: Default::default(),
            read_result: Default::default(),
            entry_acked: Default::default(),
            entry_acked_queue: Default::default(),
            entry_acked_error: Default::default(),
            realigner: Realigner::new(),
            outstanding: Default::default(),
            results: Default::default(),
            reading: Default::default(),
            read_start: Default::default(),
            read_length: Default::default(),
            chunk_address: Default::default(),
            read_remaining: Default::default(),
            in_write: Default::default(),
            writing_entry: Default::default(),
            write_start: Default::default(),
            chunk_length: Default::default(),
            beats_left: Default::default(),
            entry_data: Default::default(),
            failed: Default::default(),
            failed_offset: Default::default(),
            plan_host_address: Default::default(),
            next_length: Default::default(),
            block_room: Default::default(),
            next_beats: Default::default(),
            starts_entry: Default::default(),
            starts_chunk: Default::default(),
            sending: Default::default(),
            ends_write: Default::default(),
            acknowledging: Default::default(),
            fails_now: Default::default(),
            payload_bytes: Constant::new(payload.into()),
            payload_mask: Constant::new((payload - 1).into()),
            lane_mask_4: Constant::new((lanes - 1).into()),
            lanes_less_one: Constant::new((lanes - 1).into()),
            beat_shift: Constant::new(u64::from(lanes.trailing_zeros()).into()),
            data_width: Constant::new((DATA_BITS as u64).into()),
            entry_bytes: Constant::new(u64::from(COMPLETION_BYTES).into()),
            entry_beats: Constant::new((u64::from(COMPLETION_BYTES) / lanes).into()),
            all_lanes: Constant::new(((1u64 << STROBE_BITS) - 1).into()),
            one_16: Constant::new(1u64.into()),
            zero_32: Constant::new(0u64.into()),
        }
    }
}

impl<const DATA_BITS: usize, const STROBE_BITS: usize, const DEPTH_BITS: usize> Logic
    for DmaWriter<DATA_BITS, STROBE_BITS, DEPTH_BITS>
{
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            reading,
            read_start,
            read_length,
            chunk_address,
            read_remaining,
            in_write,
            writing_entry,
            write_start,
            chunk_length,
            beats_left,
            entry_data,
            failed,
            failed_offset
        );
        clock!(self, clock, realigner, outstanding, results);
        self.realigner.reset.next = self.reset.val();
        self.outstanding.reset.next = self.reset.val();
        self.results.reset.next = self.reset.val();

        // A READ's data: network lanes in, host lanes out.
        self.realigner.plan_valid.next = self.plan_valid.val() && !self.reading.q.val();
        self.realigner.plan_source_lane.next = self.plan.val().network_lane;
        // A slice of a struct field is not Verilog: name the field first.
        self.plan_host_address.next = self.plan.val().host_address;
        self.realigner.plan_destination_lane.next =
            self.plan_host_address.val().get_bits::<4>(0) & self.lane_mask_4.val();
        self.realigner.plan_length.next = self.plan.val().length;
        self.plan_ready.next = self.realigner.plan_ready.val() && !self.reading.q.val();
        if self.plan_valid.val() && self.plan_ready.val() {
            self.reading.d.next = true;
            self.read_start.d.next = self.plan_host_address.val();
            self.chunk_address.d.next = self.plan_host_address.val();
            self.read_length.d.next = self.plan.val().length;
            self.read_remaining.d.next = self.plan.val().length;
        }
        self.realigner.input_valid.next = self.data_valid.val();
        self.realigner.input_data.next = self.data.val();
        self.realigner.input_mask.next = self.all_lanes.val();
        self.data_ready.next = self.realigner.input_ready.val();

        // The next write of the READ: up to the payload-sized block's end.
        self.block_room.next = self.payload_bytes.val()
            - (self.chunk_address.q.val().get_bits::<32>(0) & self.payload_mask.val());
        self.next_length.next = self.read_remaining.q.val();
        if self.block_room.val() < self.read_remaining.q.val() {
            self.next_length.next = self.block_room.val();
        }
        self.next_beats.next = (self.next_length.val().get_bits::<16>(0)
            + (self.chunk_address.q.val().get_bits::<16>(0) & self.lanes_less_one.val())
            + self.lanes_less_one.val())
            >> self.beat_shift.val();

        // Between writes: a completion entry first, else the READ's next block once its
        // first beat is ready. Each write needs room to be tracked until acknowledged.
        self.starts_entry.next =
            !self.in_write.q.val() && self.entry_valid.val() && self.outstanding.push_ready.val();
        self.starts_chunk.next = !self.in_write.q.val()
            && !self.entry_valid.val()
            && self.reading.q.val()
            && (self.read_remaining.q.val() != self.zero_32.val())
            && self.realigner.output_valid.val()
            && self.outstanding.push_ready.val();
        self.entry_ready.next = self.starts_entry.val();
        if self.starts_entry.val() {
            self.in_write.d.next = true;
            self.writing_entry.d.next = true;
            self.write_start.d.next = self.entry.val().address;
            self.beats_left.d.next = self.entry_beats.val();
            self.entry_data.d.next = self.entry.val().entry;
        }
        if self.starts_chunk.val() {
            self.in_write.d.next = true;
            self.writing_entry.d.next = false;
            self.write_start.d.next = self.chunk_address.q.val();
            self.chunk_length.d.next = self.next_length.val();
            self.beats_left.d.next = self.next_beats.val();
            self.chunk_address.d.next =
                self.chunk_address.q.val() + bit_cast::<64, 32>(self.next_length.val());
            self.read_remaining.d.next = self.read_remaining.q.val() - self.next_length.val();
        }

        // The write on the wire, one beat a clock.
        self.write_valid.next = false;
        self.write_address.next = self.write_start.q.val();
        self.write_length.next = self.chunk_length.q.val().get_bits::<DMA_LENGTH_BITS>(0);
        self.write_data.next = self.realigner.output_data.val();
        self.write_byte_enable.next = self.realigner.output_mask.val();
        self.write_last.next = self.beats_left.q.val() == self.one_16.val();
        self.realigner.output_ready.next = false;
        if self.in_write.q.val() {
            if self.writing_entry.q.val() {
                self.write_valid.next = true;
                self.write_length.next = self.entry_bytes.val();
                self.write_data.next = self.entry_data.q.val().get_bits::<DATA_BITS>(0);
                self.write_byte_enable.next = self.all_lanes.val();
            } else {
                self.write_valid.next = self.realigner.output_valid.val();
                self.realigner.output_ready.next = self.write_ready.val();
            }
        }
        self.sending.next = self.write_valid.val() && self.write_ready.val();
        self.ends_write.next = self.sending.val() && self.write_last.val();
        if self.sending.val() {
            self.beats_left.d.next = self.beats_left.q.val() - self.one_16.val();
            self.entry_data.d.next = self.entry_data.q.val() >> self.data_width.val();
        }
        if self.ends_write.val() {
            self.in_write.d.next = false;
        }
        if self.sending.val() && !self.writing_entry.q.val() && self.realigner.output_last.val() {
            self.reading.d.next = false;
        }
        self.outstanding.push_valid.next = self.starts_entry.val() || self.starts_chunk.val();
        self.outstanding.push_data.next.entry = self.starts_entry.val();
        self.outstanding.push_data.next.queue = self.entry.val().queue;
        self.outstanding.push_data.next.offset = self.chunk_address.q.val().get_bits::<32>(0)
            - self.read_start.q.val().get_bits::<32>(0);
        self.outstanding.push_data.next.last =
            self.starts_chunk.val() && (self.next_length.val() == self.read_remaining.q.val());
        self.outstanding.push_data.next.length = self.read_length.q.val();

        // Acknowledgements, in order.
        self.response_ready.next = self.outstanding.pop_valid.val()
            && (self.outstanding.pop_data.val().entry
                || !self.outstanding.pop_data.val().last
                || self.results.push_ready.val());
        self.acknowledging.next = self.response_valid.val() && self.response_ready.val();
        self.outstanding.pop_ready.next = self.acknowledging.val();
        self.entry_acked.next = self.acknowledging.val() && self.outstanding.pop_data.val().entry;
        self.entry_acked_queue.next = self.outstanding.pop_data.val().queue;
        self.entry_acked_error.next = self.response_error.val();
        self.fails_now.next = self.acknowledging.val()
            && !self.outstanding.pop_data.val().entry
            && self.response_error.val()
            && !self.failed.q.val();
        if self.fails_now.val() {
            self.failed.d.next = true;
            self.failed_offset.d.next = self.outstanding.pop_data.val().offset;
        }
        self.results.push_valid.next = self.acknowledging.val()
            && !self.outstanding.pop_data.val().entry
            && self.outstanding.pop_data.val().last;
        self.results.push_data.next.dma_error = self.failed.q.val() || self.fails_now.val();
        self.results.push_data.next.bytes_done = self.outstanding.pop_data.val().length;
        if self.failed.q.val() {
            self.results.push_data.next.bytes_done = self.failed_offset.q.val();
        }
        if self.fails_now.val() {
            self.results.push_data.next.bytes_done = self.outstanding.pop_data.val().offset;
        }
        if self.results.push_valid.val() {
            self.failed.d.next = false;
        }
        self.read_result_valid.next = self.results.pop_valid.val();
        self.read_result.next = self.results.pop_data.val();
        self.results.pop_ready.next = self.read_result_ready.val();

        if self.reset.val() {
            self.reading.d.next = false;
            self.in_write.d.next = false;
            self.failed.d.next = false;
        }
    }
}
