//! The retirer: pairs each descriptor's retirement record with what came back for it, in
//! order, and drafts its completion.
//!
//! A WRITE waits for the core's answer (its data is then durable) and for the write
//! stream's result. A READ that the core refused completes with the fault; one that passed
//! sends its data, beat by beat, to the DMA writer with a plan of where it goes in host
//! memory, and its draft waits there for the DMA writes' result.

use crate::engine::issuer::{RetireKind, RetireRecord};
use crate::engine::write_stream::WriteResult;
use crate::fifo::Fifo;
use npmu_abi::queue::DescriptorError;
use npmu_abi::{LENGTH_BITS, STATUS_BITS};
use rust_hdl::prelude::*;

/// A completion, waiting for the DMA writes of a READ if `awaits_read`.
#[derive(Copy, Clone, Debug, Default, PartialEq, LogicStruct)]
pub struct Draft {
    pub queue: Bits<4>,
    pub slot: Bits<16>,
    pub tag: Bits<32>,
    pub status: Bits<8>,
    pub bytes_done: Bits<32>,
    pub awaits_read: bool,
}

/// Where a READ's data goes in host memory.
#[derive(Copy, Clone, Debug, Default, PartialEq, LogicStruct)]
pub struct ReadPlan {
    pub host_address: Bits<64>,
    pub length: Bits<LENGTH_BITS>,
    pub network_lane: Bits<4>,
}

#[derive(LogicBlock)]
pub struct Retirer<const DATA_BITS: usize, const DEPTH_BITS: usize> {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, bool>,

    pub record_valid: Signal<In, bool>,
    pub record_ready: Signal<Out, bool>,
    pub record: Signal<In, RetireRecord>,

    pub response_valid: Signal<In, bool>,
    pub response_ready: Signal<Out, bool>,
    pub response_status: Signal<In, Bits<STATUS_BITS>>,
    pub response_data: Signal<In, Bits<DATA_BITS>>,
    pub response_last: Signal<In, bool>,

    pub write_result_valid: Signal<In, bool>,
    pub write_result_ready: Signal<Out, bool>,
    pub write_result: Signal<In, WriteResult>,

    pub read_plan_valid: Signal<Out, bool>,
    pub read_plan_ready: Signal<In, bool>,
    pub read_plan: Signal<Out, ReadPlan>,
    pub read_data_valid: Signal<Out, bool>,
    pub read_data_ready: Signal<In, bool>,
    pub read_data: Signal<Out, Bits<DATA_BITS>>,

    pub draft_valid: Signal<Out, bool>,
    pub draft_ready: Signal<In, bool>,
    pub draft: Signal<Out, Draft>,

    drafts: Fifo<Draft, DEPTH_BITS>,
    /// A passed READ's data is flowing to the DMA writer.
    streaming: DFF<bool>,

    is_write: Signal<Local, bool>,
    is_read: Signal<Local, bool>,
    refused: Signal<Local, bool>,
    completes_write: Signal<Local, bool>,
    completes_refused_read: Signal<Local, bool>,
    starts_read: Signal<Local, bool>,
    forwards: Signal<Local, bool>,

    dma_fault: Constant<Bits<8>>,
    zero_4: Constant<Bits<4>>,
    zero_32: Constant<Bits<32>>,
}

impl<const DATA_BITS: usize, const DEPTH_BITS: usize> Retirer<DATA_BITS, DEPTH_BITS> {
    pub fn new() -> Self {
        Self {
            clock: Default::default(),
            reset: Default::default(),
            record_valid: Default::default(),
            record_ready: Default::default(),
            record: Default::default(),
            response_valid: Default::default(),
            response_ready: Default::default(),
            response_status: Default::default(),
            response_data: Default::default(),
            response_last: Default::default(),
            write_result_valid: Default::default(),
            write_result_ready: Default::default(),
            write_result: Default::default(),
            read_plan_valid: Default::default(),
            read_plan_ready: Default::default(),
            read_plan: Default::default(),
            read_data_valid: Default::default(),
            read_data_ready: Default::default(),
            read_data: Default::default(),
            draft_valid: Default::default(),
            draft_ready: Default::default(),
            draft: Default::default(),
            drafts: Default::default(),
            streaming: Default::default(),
            is_write: Default::default(),
            is_read: Default::default(),
            refused: Default::default(),
            completes_write: Default::default(),
            completes_refused_read: Default::default(),
            starts_read: Default::default(),
            forwards: Default::default(),
            dma_fault: Constant::new(u64::from(DescriptorError::DMA_CODE).into()),
            zero_4: Constant::new(0u64.into()),
            zero_32: Constant::new(0u64.into()),
        }
    }
}

impl<const DATA_BITS: usize, const DEPTH_BITS: usize> Default for Retirer<DATA_BITS, DEPTH_BITS> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const DATA_BITS: usize, const DEPTH_BITS: usize> Logic for Retirer<DATA_BITS, DEPTH_BITS> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, streaming);
        clock!(self, clock, drafts);
        self.drafts.reset.next = self.reset.val();

        self.is_write.next = self.record.val().kind == RetireKind::Write;
        self.is_read.next = self.record.val().kind == RetireKind::Read;
        self.refused.next = self.response_status.val() != self.zero_4.val();

        // The draft every record ends in, unless a passed READ's waits for its DMA writes.
        self.drafts.push_data.next.queue = self.record.val().queue;
        self.drafts.push_data.next.slot = self.record.val().slot;
        self.drafts.push_data.next.tag = self.record.val().tag;
        self.drafts.push_data.next.status = self.record.val().status;
        self.drafts.push_data.next.bytes_done = self.zero_32.val();
        self.drafts.push_data.next.awaits_read = false;
        self.drafts.push_valid.next = false;
        self.record_ready.next = false;
        self.response_ready.next = false;
        self.write_result_ready.next = false;
        self.read_plan_valid.next = false;
        self.read_plan.next.host_address = self.record.val().host_address;
        self.read_plan.next.length = self.record.val().length;
        self.read_plan.next.network_lane = self.record.val().network_lane;
        self.read_data_valid.next = false;
        self.read_data.next = self.response_data.val();
        self.completes_write.next = false;
        self.completes_refused_read.next = false;
        self.starts_read.next = false;
        self.forwards.next = false;

        if self.streaming.q.val() {
            // A READ's data on its way to host memory.
            self.read_data_valid.next = self.response_valid.val();
            self.response_ready.next = self.read_data_ready.val();
            self.forwards.next = self.response_valid.val() && self.read_data_ready.val();
            if self.forwards.val() && self.response_last.val() {
                self.streaming.d.next = false;
                self.record_ready.next = true;
            }
        } else if self.record_valid.val() {
            if self.record.val().kind == RetireKind::Immediate {
                self.drafts.push_valid.next = true;
                self.record_ready.next = self.drafts.push_ready.val();
            }
            if self.is_write.val() {
                self.completes_write.next = self.response_valid.val()
                    && self.write_result_valid.val()
                    && self.drafts.push_ready.val();
                self.drafts.push_valid.next = self.completes_write.val();
                self.record_ready.next = self.completes_write.val();
                self.response_ready.next = self.completes_write.val();
                self.write_result_ready.next = self.completes_write.val();
                if self.refused.val() {
                    self.drafts.push_data.next.status =
                        bit_cast::<8, 4>(self.response_status.val());
                } else if self.write_result.val().dma_error {
                    self.drafts.push_data.next.status = self.dma_fault.val();
                    self.drafts.push_data.next.bytes_done = self.write_result.val().bytes_done;
                } else {
                    self.drafts.push_data.next.bytes_done = self.record.val().length;
                }
            }
            if self.is_read.val() && self.response_valid.val() {
                if self.refused.val() {
                    self.completes_refused_read.next = self.drafts.push_ready.val();
                    self.drafts.push_valid.next = true;
                    self.drafts.push_data.next.status =
                        bit_cast::<8, 4>(self.response_status.val());
                    self.record_ready.next = self.completes_refused_read.val();
                    self.response_ready.next = self.completes_refused_read.val();
                } else {
                    // The draft goes now and waits for the DMA writes; the data follows.
                    self.starts_read.next =
                        self.drafts.push_ready.val() && self.read_plan_ready.val();
                    self.drafts.push_valid.next = self.starts_read.val();
                    self.drafts.push_data.next.bytes_done = self.record.val().length;
                    self.drafts.push_data.next.awaits_read = true;
                    self.read_plan_valid.next = self.starts_read.val();
                    if self.starts_read.val() {
                        self.streaming.d.next = true;
                    }
                }
            }
        }
        self.draft_valid.next = self.drafts.pop_valid.val();
        self.draft.next = self.drafts.pop_data.val();
        self.drafts.pop_ready.next = self.draft_ready.val();
        if self.reset.val() {
            self.streaming.d.next = false;
        }
    }
}
