//! The write stream: carries each WRITE's host data from the DMA reader, or an inline WRITE's
//! payload from the descriptor assembler, to the protection core's write-data port, moving
//! bytes from host lanes to network lanes.
//!
//! From the first beat of a read the host side refused, the rest of that WRITE goes to the
//! core with no lane enabled, so persistent memory receives exactly the bytes before the
//! fault; the result says how many that was.

use crate::engine::issuer::WritePlan;
use crate::engine::realigner::Realigner;
use crate::fifo::Fifo;
use npmu_abi::LENGTH_BITS;
use rust_hdl::prelude::*;

/// How a transfer's host side fared: a WRITE's DMA reads here, a READ's DMA writes in the
/// DMA writer.
#[derive(Copy, Clone, Debug, Default, PartialEq, LogicStruct)]
pub struct WriteResult {
    pub dma_error: bool,
    /// Bytes before the first access the host side refused.
    pub bytes_done: Bits<32>,
}

#[derive(LogicBlock)]
pub struct WriteStream<const DATA_BITS: usize, const STROBE_BITS: usize, const DEPTH_BITS: usize> {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, bool>,

    pub plan_valid: Signal<In, bool>,
    pub plan_ready: Signal<Out, bool>,
    pub plan: Signal<In, WritePlan>,

    pub data_valid: Signal<In, bool>,
    pub data_ready: Signal<Out, bool>,
    pub data: Signal<In, Bits<DATA_BITS>>,
    pub data_error: Signal<In, bool>,

    /// Inline payloads, for plans whose data is here.
    pub payload_valid: Signal<In, bool>,
    pub payload_ready: Signal<Out, bool>,
    pub payload_data: Signal<In, Bits<DATA_BITS>>,
    pub payload_error: Signal<In, bool>,

    pub write_data_valid: Signal<Out, bool>,
    pub write_data_ready: Signal<In, bool>,
    pub write_data: Signal<Out, Bits<DATA_BITS>>,
    pub write_data_enable: Signal<Out, Bits<STROBE_BITS>>,

    pub result_valid: Signal<Out, bool>,
    pub result_ready: Signal<In, bool>,
    pub result: Signal<Out, WriteResult>,

    realigner: Realigner<DATA_BITS, STROBE_BITS>,
    results: Fifo<WriteResult, DEPTH_BITS>,
    host_lane: DFF<Bits<4>>,
    payload_here: DFF<bool>,
    length: DFF<Bits<LENGTH_BITS>>,
    beat: DFF<Bits<32>>,
    failed: DFF<bool>,
    bytes_done: DFF<Bits<32>>,

    taking: Signal<Local, bool>,
    source_valid: Signal<Local, bool>,
    source_error: Signal<Local, bool>,
    fails_now: Signal<Local, bool>,
    bytes_before: Signal<Local, Bits<32>>,
    finishing: Signal<Local, bool>,
    holding_last: Signal<Local, bool>,

    beat_shift: Constant<Bits<8>>,
    all_lanes: Constant<Bits<STROBE_BITS>>,
    no_lanes: Constant<Bits<STROBE_BITS>>,
    zero_32: Constant<Bits<32>>,
    one_32: Constant<Bits<32>>,
}

impl<const DATA_BITS: usize, const STROBE_BITS: usize, const DEPTH_BITS: usize>
    WriteStream<DATA_BITS, STROBE_BITS, DEPTH_BITS>
{
    pub fn new() -> Self {
        Self {
            clock: Default::default(),
            reset: Default::default(),
            plan_valid: Default::default(),
            plan_ready: Default::default(),
            plan: Default::default(),
            data_valid: Default::default(),
            data_ready: Default::default(),
            data: Default::default(),
            data_error: Default::default(),
            payload_valid: Default::default(),
            payload_ready: Default::default(),
            payload_data: Default::default(),
            payload_error: Default::default(),
            write_data_valid: Default::default(),
            write_data_ready: Default::default(),
            write_data: Default::default(),
            write_data_enable: Default::default(),
            result_valid: Default::default(),
            result_ready: Default::default(),
            result: Default::default(),
            realigner: Realigner::new(),
            results: Default::default(),
            host_lane: Default::default(),
            payload_here: Default::default(),
            length: Default::default(),
            beat: Default::default(),
            failed: Default::default(),
            bytes_done: Default::default(),
            taking: Default::default(),
            source_valid: Default::default(),
            source_error: Default::default(),
            fails_now: Default::default(),
            bytes_before: Default::default(),
            finishing: Default::default(),
            holding_last: Default::default(),
            beat_shift: Constant::new(u64::from(STROBE_BITS.trailing_zeros()).into()),
            all_lanes: Constant::new(((1u64 << STROBE_BITS) - 1).into()),
            no_lanes: Constant::new(0u64.into()),
            zero_32: Constant::new(0u64.into()),
            one_32: Constant::new(1u64.into()),
        }
    }
}

impl<const DATA_BITS: usize, const STROBE_BITS: usize, const DEPTH_BITS: usize> Default
    for WriteStream<DATA_BITS, STROBE_BITS, DEPTH_BITS>
{
    fn default() -> Self {
        Self::new()
    }
}

impl<const DATA_BITS: usize, const STROBE_BITS: usize, const DEPTH_BITS: usize> Logic
    for WriteStream<DATA_BITS, STROBE_BITS, DEPTH_BITS>
{
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            host_lane,
            payload_here,
            length,
            beat,
            failed,
            bytes_done
        );
        clock!(self, clock, realigner, results);
        self.realigner.reset.next = self.reset.val();
        self.results.reset.next = self.reset.val();

        // A plan starts when the realigner is free.
        self.realigner.plan_valid.next = self.plan_valid.val();
        self.realigner.plan_source_lane.next = self.plan.val().host_lane;
        self.realigner.plan_destination_lane.next = self.plan.val().network_lane;
        self.realigner.plan_length.next = self.plan.val().length;
        self.plan_ready.next = self.realigner.plan_ready.val();
        if self.plan_valid.val() && self.realigner.plan_ready.val() {
            self.host_lane.d.next = self.plan.val().host_lane;
            self.payload_here.d.next = self.plan.val().payload_here;
            self.length.d.next = self.plan.val().length;
            self.beat.d.next = self.zero_32.val();
            self.failed.d.next = false;
        }

        // Host beats in, from the plan's source; everything from the first refused one on
        // carries no enabled lane.
        self.source_valid.next = self.data_valid.val();
        self.source_error.next = self.data_error.val();
        self.realigner.input_data.next = self.data.val();
        if self.payload_here.q.val() {
            self.source_valid.next = self.payload_valid.val();
            self.source_error.next = self.payload_error.val();
            self.realigner.input_data.next = self.payload_data.val();
        }
        self.realigner.input_valid.next = self.source_valid.val();
        self.realigner.input_mask.next = self.all_lanes.val();
        if self.failed.q.val() || self.source_error.val() {
            self.realigner.input_mask.next = self.no_lanes.val();
        }
        self.data_ready.next = self.realigner.input_ready.val() && !self.payload_here.q.val();
        self.payload_ready.next = self.realigner.input_ready.val() && self.payload_here.q.val();
        self.taking.next = self.source_valid.val() && self.realigner.input_ready.val();
        self.fails_now.next = self.taking.val() && self.source_error.val() && !self.failed.q.val();
        // The refused beat's first byte, counted from the transfer's first.
        self.bytes_before.next = self.zero_32.val();
        if self.beat.q.val() != self.zero_32.val() {
            self.bytes_before.next = (self.beat.q.val() << self.beat_shift.val())
                - bit_cast::<32, 4>(self.host_lane.q.val());
        }
        if self.taking.val() {
            self.beat.d.next = self.beat.q.val() + self.one_32.val();
        }
        if self.fails_now.val() {
            self.failed.d.next = true;
            self.bytes_done.d.next = self.bytes_before.val();
        }

        // Network beats out to the core; the last waits for room for the result.
        self.holding_last.next = self.realigner.output_last.val() && !self.results.push_ready.val();
        self.write_data_valid.next = self.realigner.output_valid.val() && !self.holding_last.val();
        self.write_data.next = self.realigner.output_data.val();
        self.write_data_enable.next = self.realigner.output_mask.val();
        self.realigner.output_ready.next = self.write_data_ready.val() && !self.holding_last.val();
        self.finishing.next = self.write_data_valid.val()
            && self.write_data_ready.val()
            && self.realigner.output_last.val();
        self.results.push_valid.next = self.finishing.val();
        self.results.push_data.next.dma_error = self.failed.q.val() || self.fails_now.val();
        self.results.push_data.next.bytes_done = self.length.q.val();
        if self.failed.q.val() {
            self.results.push_data.next.bytes_done = self.bytes_done.q.val();
        }
        if self.fails_now.val() {
            self.results.push_data.next.bytes_done = self.bytes_before.val();
        }
        self.result_valid.next = self.results.pop_valid.val();
        self.result.next = self.results.pop_data.val();
        self.results.pop_ready.next = self.result_ready.val();
    }
}
