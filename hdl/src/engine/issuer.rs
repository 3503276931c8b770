//! The issuer: checks each descriptor and sets its work going, in order.
//!
//! A malformed descriptor (unknown opcode, reserved bits set, INLINE on anything but a
//! WRITE, a transfer of zero bytes or more than the longest request, a host buffer wrapping
//! past 2^64, an inline WRITE with a host address, a NOP or FLUSH with fields set) goes
//! straight to retirement with its status, as do, in this order, an inline WRITE longer
//! than the inline limit, one whose payload would wrap the ring's end, one whose payload
//! was not all published, a WRITE or READ whose host buffer is not wholly inside its
//! queue's host-memory window, and NOP and FLUSH. A WRITE queues its request for the
//! protection core, a plan for the write stream, and the DMA reads of its host buffer (each
//! inside one read-request-sized aligned block, so none crosses a 4 KiB page); an inline
//! WRITE's host buffer is its payload in the ring, read only when the payload did not come
//! whole with the descriptor's batch (the assembler passes it on otherwise). A READ queues
//! its request. Every descriptor leaves a retirement record behind it.

use crate::constants::constant;
use crate::engine::assembler::PayloadPlace;
use crate::fifo::Fifo;
use npmu_abi::queue::{
    descriptor_bits, descriptor_flags, DescriptorError, Opcode, DESCRIPTOR_BITS, INLINE_MAX_BYTES,
};
use npmu_abi::{
    Config, ADDRESS_BITS, CONTEXT_ID_BITS, DMA_LENGTH_BITS, INITIATOR_BITS, KEY_BITS, LENGTH_BITS,
};
use rust_hdl::prelude::*;

/// A request for the protection core.
#[derive(Copy, Clone, Debug, Default, PartialEq, LogicStruct)]
pub struct CoreRequest {
    pub write: bool,
    pub context: Bits<CONTEXT_ID_BITS>,
    pub key: Bits<KEY_BITS>,
    pub initiator: Bits<INITIATOR_BITS>,
    pub address: Bits<ADDRESS_BITS>,
    pub length: Bits<LENGTH_BITS>,
}

/// How a WRITE's bytes move from host lanes to network lanes.
#[derive(Copy, Clone, Debug, Default, PartialEq, LogicStruct)]
pub struct WritePlan {
    /// The data comes from the assembler (an inline payload) instead of the DMA reader.
    pub payload_here: bool,
    pub host_lane: Bits<4>,
    pub network_lane: Bits<4>,
    pub length: Bits<LENGTH_BITS>,
}

/// What retiring a descriptor waits for.
#[derive(Copy, Clone, Debug, PartialEq, LogicState)]
pub enum RetireKind {
    /// Nothing: complete with `status`.
    Immediate,
    /// The core's answer to a WRITE and the write stream's result.
    Write,
    /// The core's answer to a READ, whose data then goes to the host.
    Read,
}

#[derive(Copy, Clone, Debug, Default, PartialEq, LogicStruct)]
pub struct RetireRecord {
    pub kind: RetireKind,
    pub status: Bits<8>,
    pub queue: Bits<4>,
    pub slot: Bits<16>,
    pub tag: Bits<32>,
    pub length: Bits<LENGTH_BITS>,
    pub host_address: Bits<64>,
    pub network_lane: Bits<4>,
}

#[derive(LogicBlock)]
pub struct Issuer<const DATA_BITS: usize, const DEPTH_BITS: usize> {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, bool>,

    pub descriptor_valid: Signal<In, bool>,
    pub descriptor_ready: Signal<Out, bool>,
    pub descriptor: Signal<In, Bits<DESCRIPTOR_BITS>>,
    pub descriptor_queue: Signal<In, Bits<4>>,
    pub descriptor_slot: Signal<In, Bits<16>>,
    pub descriptor_payload: Signal<In, PayloadPlace>,
    /// The descriptor's payload comes from the assembler, after it.
    pub payload_wanted: Signal<Out, bool>,
    /// The host-memory window of `descriptor_queue`.
    pub window_base: Signal<In, Bits<64>>,
    pub window_bytes: Signal<In, Bits<64>>,

    pub read_valid: Signal<Out, bool>,
    pub read_ready: Signal<In, bool>,
    pub read_address: Signal<Out, Bits<64>>,
    pub read_length: Signal<Out, Bits<DMA_LENGTH_BITS>>,

    pub core_request_valid: Signal<Out, bool>,
    pub core_request_ready: Signal<In, bool>,
    pub core_request: Signal<Out, CoreRequest>,

    pub plan_valid: Signal<Out, bool>,
    pub plan_ready: Signal<In, bool>,
    pub plan: Signal<Out, WritePlan>,

    pub retire_valid: Signal<Out, bool>,
    pub retire_ready: Signal<In, bool>,
    pub retire: Signal<Out, RetireRecord>,

    requests: Fifo<CoreRequest, DEPTH_BITS>,
    plans: Fifo<WritePlan, DEPTH_BITS>,
    retirements: Fifo<RetireRecord, DEPTH_BITS>,
    /// The rest of a WRITE's host buffer still to read.
    chunking: DFF<bool>,
    chunk_address: DFF<Bits<64>>,
    chunk_remaining: DFF<Bits<32>>,

    opcode: Signal<Local, Bits<8>>,
    length: Signal<Local, Bits<LENGTH_BITS>>,
    host_address: Signal<Local, Bits<64>>,
    network_address: Signal<Local, Bits<64>>,
    is_write: Signal<Local, bool>,
    is_read: Signal<Local, bool>,
    is_nop_or_flush: Signal<Local, bool>,
    flags: Signal<Local, Bits<8>>,
    is_inline: Signal<Local, bool>,
    inline_write: Signal<Local, bool>,
    inline_too_long: Signal<Local, bool>,
    inline_wraps: Signal<Local, bool>,
    inline_unpublished: Signal<Local, bool>,
    /// An inline WRITE going ahead with its payload from the assembler.
    payload_here: Signal<Local, bool>,
    /// Where a WRITE's or READ's host bytes are: its host buffer, or its inline payload.
    source_address: Signal<Local, Bits<64>>,
    malformed: Signal<Local, bool>,
    outside_window: Signal<Local, bool>,
    /// Malformed or outside the window: completes at once, moving nothing.
    refused: Signal<Local, bool>,
    length_64: Signal<Local, Bits<64>>,
    last_byte_offset: Signal<Local, Bits<32>>,
    has_room: Signal<Local, bool>,
    issuing: Signal<Local, bool>,
    block_room: Signal<Local, Bits<32>>,
    chunk_length: Signal<Local, Bits<32>>,
    chunk_taken: Signal<Local, bool>,

    opcode_at: Constant<Bits<32>>,
    flags_at: Constant<Bits<32>>,
    context_at: Constant<Bits<32>>,
    key_at: Constant<Bits<32>>,
    address_at: Constant<Bits<32>>,
    host_address_at: Constant<Bits<32>>,
    length_at: Constant<Bits<32>>,
    tag_at: Constant<Bits<32>>,
    write_opcode: Constant<Bits<8>>,
    read_opcode: Constant<Bits<8>>,
    nop_opcode: Constant<Bits<8>>,
    flush_opcode: Constant<Bits<8>>,
    malformed_status: Constant<Bits<8>>,
    outside_window_status: Constant<Bits<8>>,
    inline_too_long_status: Constant<Bits<8>>,
    inline_wraps_status: Constant<Bits<8>>,
    inline_past_tail_status: Constant<Bits<8>>,
    inline_flag: Constant<Bits<8>>,
    undefined_flags: Constant<Bits<8>>,
    inline_max: Constant<Bits<32>>,
    max_request_bytes: Constant<Bits<32>>,
    block_bytes: Constant<Bits<32>>,
    block_mask: Constant<Bits<32>>,
    lane_mask: Constant<Bits<4>>,
    zero_8: Constant<Bits<8>>,
    zero_16: Constant<Bits<16>>,
    zero_32: Constant<Bits<32>>,
    zero_64: Constant<Bits<64>>,
    all_64: Constant<Bits<64>>,
    one_32: Constant<Bits<32>>,
}

fn opcode(opcode: Opcode) -> Constant<Bits<8>> {
    Constant::new((opcode as u64).into())
}

impl<const DATA_BITS: usize, const DEPTH_BITS: usize> Issuer<DATA_BITS, DEPTH_BITS> {
    pub fn new(config: &Config) -> Self {
        let block = u64::from(config.max_read_request_bytes);
        Self {
            clock: Default::default(),
            reset: Default::default(),
            descriptor_valid: Default::default(),
            descriptor_ready: Default::default(),
            descriptor: Default::default(),
            descriptor_queue: Default::default(),
            descriptor_slot: Default::default(),
            descriptor_payload: Default::default(),
            payload_wanted: Default::default(),
            window_base: Default::default(),
            window_bytes: Default::default(),
            read_valid: Default::default(),
            read_ready: Default::default(),
            read_address: Default::default(),
            read_length: Default::default(),
            core_request_valid: Default::default(),
            core_request_ready: Default::default(),
            core_request: Default::default(),
            plan_valid: Default::default(),
            plan_ready: Default::default(),
            plan: Default::default(),
            retire_valid: Default::default(),
            retire_ready: Default::default(),
            retire: Default::default(),
            requests: Default::default(),
            plans: Default::default(),
            retirements: Default::default(),
            chunking: Default::default(),
            chunk_address: Default::default(),
            chunk_remaining: Default::default(),
            opcode: Default::default(),
            length: Default::default(),
            host_address: Default::default(),
            network_address: Default::default(),
            is_write: Default::default(),
            is_read: Default::default(),
            is_nop_or_flush: Default::default(),
            flags: Default::default(),
            is_inline: Default::default(),
            inline_write: Default::default(),
            inline_too_long: Default::default(),
            inline_wraps: Default::default(),
            inline_unpublished: Default::default(),
            payload_here: Default::default(),
            source_address: Default::default(),
            malformed: Default::default(),
            outside_window: Default::default(),
            refused: Default::default(),
            length_64: Default::default(),
            last_byte_offset: Default::default(),
            has_room: Default::default(),
            issuing: Default::default(),
            block_room: Default::default(),
            chunk_length: Default::default(),
            chunk_taken: Default::default(),
            opcode_at: constant(descriptor_bits::OPCODE as u64),
            flags_at: constant(descriptor_bits::FLAGS as u64),
            context_at: constant(descriptor_bits::CONTEXT as u64),
            key_at: constant(descriptor_bits::KEY as u64),
            address_at: constant(descriptor_bits::ADDRESS as u64),
            host_address_at: constant(descriptor_bits::HOST_ADDRESS as u64),
            length_at: constant(descriptor_bits::LENGTH as u64),
            tag_at: constant(descriptor_bits::TAG as u64),
            write_opcode: opcode(Opcode::Write),
            read_opcode: opcode(Opcode::Read),
            nop_opcode: opcode(Opcode::Nop),
            flush_opcode: opcode(Opcode::Flush),
            malformed_status: Constant::new(u64::from(DescriptorError::MALFORMED_CODE).into()),
            outside_window_status: Constant::new(
                u64::from(DescriptorError::OUTSIDE_WINDOW_CODE).into(),
            ),
            inline_too_long_status: constant(DescriptorError::INLINE_TOO_LONG_CODE.into()),
            inline_wraps_status: constant(DescriptorError::INLINE_WRAPS_RING_CODE.into()),
            inline_past_tail_status: constant(DescriptorError::INLINE_PAST_TAIL_CODE.into()),
            inline_flag: constant(descriptor_flags::INLINE.into()),
            undefined_flags: constant((!descriptor_flags::DEFINED).into()),
            inline_max: constant(INLINE_MAX_BYTES.into()),
            max_request_bytes: Constant::new(u64::from(config.max_request_bytes).into()),
            block_bytes: Constant::new(block.into()),
            block_mask: Constant::new((block - 1).into()),
            lane_mask: Constant::new((DATA_BITS as u64 / 8 - 1).into()),
            zero_8: Constant::new(0u64.into()),
            zero_16: Constant::new(0u64.into()),
            zero_32: Constant::new(0u64.into()),
            zero_64: Constant::new(0u64.into()),
            all_64: Constant::new(u64::MAX.into()),
            one_32: Constant::new(1u64.into()),
        }
    }
}

impl<const DATA_BITS: usize, const DEPTH_BITS: usize> Logic for Issuer<DATA_BITS, DEPTH_BITS> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, chunking, chunk_address, chunk_remaining);
        clock!(self, clock, requests, plans, retirements);
        self.requests.reset.next = self.reset.val();
        self.plans.reset.next = self.reset.val();
        self.retirements.reset.next = self.reset.val();

        // The descriptor's fields and whether it is well formed, one rule a line.
        self.opcode.next = self
            .descriptor
            .val()
            .get_bits::<8>(self.opcode_at.val().index());
        self.length.next = self
            .descriptor
            .val()
            .get_bits::<32>(self.length_at.val().index());
        self.host_address.next = self
            .descriptor
            .val()
            .get_bits::<64>(self.host_address_at.val().index());
        self.network_address.next = self
            .descriptor
            .val()
            .get_bits::<64>(self.address_at.val().index());
        self.is_write.next = self.opcode.val() == self.write_opcode.val();
        self.is_read.next = self.opcode.val() == self.read_opcode.val();
        self.is_nop_or_flush.next = (self.opcode.val() == self.nop_opcode.val())
            || (self.opcode.val() == self.flush_opcode.val());
        self.flags.next = self
            .descriptor
            .val()
            .get_bits::<8>(self.flags_at.val().index());
        self.is_inline.next = (self.flags.val() & self.inline_flag.val()) != self.zero_8.val();
        self.inline_write.next = self.is_write.val() && self.is_inline.val();
        self.malformed.next = false;
        if !self.is_write.val() && !self.is_read.val() && !self.is_nop_or_flush.val() {
            self.malformed.next = true;
        }
        if (self.flags.val() & self.undefined_flags.val()) != self.zero_8.val() {
            self.malformed.next = true;
        }
        if self.is_inline.val() && !self.is_write.val() {
            self.malformed.next = true;
        }
        if self.inline_write.val() && (self.host_address.val() != self.zero_64.val()) {
            self.malformed.next = true;
        }
        if (self.is_write.val() || self.is_read.val()) && (self.length.val() == self.zero_32.val())
        {
            self.malformed.next = true;
        }
        if (self.is_write.val() || self.is_read.val())
            && (self.length.val() > self.max_request_bytes.val())
        {
            self.malformed.next = true;
        }
        // Overflow safe: the buffer's last byte, not its end, must fit below 2^64.
        self.last_byte_offset.next = self.length.val() - self.one_32.val();
        if (self.is_write.val() || self.is_read.val())
            && (self.host_address.val()
                > self.all_64.val() - bit_cast::<64, 32>(self.last_byte_offset.val()))
        {
            self.malformed.next = true;
        }
        if self.is_nop_or_flush.val()
            && ((self
                .descriptor
                .val()
                .get_bits::<16>(self.context_at.val().index())
                != self.zero_16.val())
                || (self
                    .descriptor
                    .val()
                    .get_bits::<32>(self.key_at.val().index())
                    != self.zero_32.val())
                || (self.network_address.val() != self.zero_64.val())
                || (self.host_address.val() != self.zero_64.val())
                || (self.length.val() != self.zero_32.val()))
        {
            self.malformed.next = true;
        }

        // An inline WRITE's own rules, each after the ones before.
        self.inline_too_long.next =
            self.inline_write.val() && (self.length.val() > self.inline_max.val());
        self.inline_wraps.next = self.inline_write.val() && self.descriptor_payload.val().wraps;
        self.inline_unpublished.next =
            self.inline_write.val() && self.descriptor_payload.val().unpublished;
        self.source_address.next = self.host_address.val();
        if self.inline_write.val() {
            self.source_address.next = self.descriptor_payload.val().address;
        }

        // The host bytes wholly inside the queue's window: overflow safe, one condition a
        // line. The window cannot change while the queue has descriptors in flight, and
        // holds the rings, so an inline payload always passes.
        self.length_64.next = bit_cast::<64, 32>(self.length.val());
        self.outside_window.next = false;
        if self.source_address.val() < self.window_base.val() {
            self.outside_window.next = true;
        }
        if self.length_64.val() > self.window_bytes.val() {
            self.outside_window.next = true;
        }
        if (self.source_address.val() - self.window_base.val())
            > (self.window_bytes.val() - self.length_64.val())
        {
            self.outside_window.next = true;
        }
        self.refused.next = self.malformed.val()
            || self.inline_too_long.val()
            || self.inline_wraps.val()
            || self.inline_unpublished.val()
            || ((self.is_write.val() || self.is_read.val()) && self.outside_window.val());
        self.payload_here.next =
            self.inline_write.val() && !self.refused.val() && self.descriptor_payload.val().here;
        self.payload_wanted.next = self.payload_here.val();

        // Everything a descriptor queues goes in the same clock.
        self.has_room.next = self.retirements.push_ready.val()
            && (!(self.is_write.val() || self.is_read.val())
                || self.refused.val()
                || self.requests.push_ready.val())
            && (!self.is_write.val() || self.refused.val() || self.plans.push_ready.val());
        self.descriptor_ready.next =
            !self.chunking.q.val() && self.has_room.val() && !self.reset.val();
        self.issuing.next = self.descriptor_valid.val() && self.descriptor_ready.val();

        self.retirements.push_valid.next = self.issuing.val();
        self.retirements.push_data.next.kind = RetireKind::Immediate;
        if !self.refused.val() && self.is_write.val() {
            self.retirements.push_data.next.kind = RetireKind::Write;
        }
        if !self.refused.val() && self.is_read.val() {
            self.retirements.push_data.next.kind = RetireKind::Read;
        }
        self.retirements.push_data.next.status = self.zero_8.val();
        if self.refused.val() {
            self.retirements.push_data.next.status = self.outside_window_status.val();
        }
        if self.inline_unpublished.val() {
            self.retirements.push_data.next.status = self.inline_past_tail_status.val();
        }
        if self.inline_wraps.val() {
            self.retirements.push_data.next.status = self.inline_wraps_status.val();
        }
        if self.inline_too_long.val() {
            self.retirements.push_data.next.status = self.inline_too_long_status.val();
        }
        if self.malformed.val() {
            self.retirements.push_data.next.status = self.malformed_status.val();
        }
        self.retirements.push_data.next.queue = self.descriptor_queue.val();
        self.retirements.push_data.next.slot = self.descriptor_slot.val();
        self.retirements.push_data.next.tag = self
            .descriptor
            .val()
            .get_bits::<32>(self.tag_at.val().index());
        self.retirements.push_data.next.length = self.length.val();
        self.retirements.push_data.next.host_address = self.host_address.val();
        self.retirements.push_data.next.network_lane =
            self.network_address.val().get_bits::<4>(0) & self.lane_mask.val();

        self.requests.push_valid.next = self.issuing.val()
            && !self.refused.val()
            && (self.is_write.val() || self.is_read.val());
        self.requests.push_data.next.write = self.is_write.val();
        self.requests.push_data.next.context = self
            .descriptor
            .val()
            .get_bits::<16>(self.context_at.val().index());
        self.requests.push_data.next.key = self
            .descriptor
            .val()
            .get_bits::<32>(self.key_at.val().index());
        self.requests.push_data.next.initiator = bit_cast::<16, 4>(self.descriptor_queue.val());
        self.requests.push_data.next.address = self.network_address.val();
        self.requests.push_data.next.length = self.length.val();

        self.plans.push_valid.next =
            self.issuing.val() && !self.refused.val() && self.is_write.val();
        self.plans.push_data.next.payload_here = self.payload_here.val();
        self.plans.push_data.next.host_lane =
            self.source_address.val().get_bits::<4>(0) & self.lane_mask.val();
        self.plans.push_data.next.network_lane =
            self.network_address.val().get_bits::<4>(0) & self.lane_mask.val();
        self.plans.push_data.next.length = self.length.val();

        // A WRITE's host buffer, read a block at a time.
        if self.plans.push_valid.val() && !self.payload_here.val() {
            self.chunking.d.next = true;
            self.chunk_address.d.next = self.source_address.val();
            self.chunk_remaining.d.next = self.length.val();
        }
        self.block_room.next = self.block_bytes.val()
            - (self.chunk_address.q.val().get_bits::<32>(0) & self.block_mask.val());
        self.chunk_length.next = self.chunk_remaining.q.val();
        if self.block_room.val() < self.chunk_remaining.q.val() {
            self.chunk_length.next = self.block_room.val();
        }
        self.read_valid.next = self.chunking.q.val();
        self.read_address.next = self.chunk_address.q.val();
        self.read_length.next = self.chunk_length.val().get_bits::<DMA_LENGTH_BITS>(0);
        self.chunk_taken.next = self.read_valid.val() && self.read_ready.val();
        if self.chunk_taken.val() {
            self.chunk_address.d.next =
                self.chunk_address.q.val() + bit_cast::<64, 32>(self.chunk_length.val());
            self.chunk_remaining.d.next = self.chunk_remaining.q.val() - self.chunk_length.val();
            if self.chunk_remaining.q.val() == self.chunk_length.val() {
                self.chunking.d.next = false;
            }
        }

        self.core_request_valid.next = self.requests.pop_valid.val();
        self.core_request.next = self.requests.pop_data.val();
        self.requests.pop_ready.next = self.core_request_ready.val();
        self.plan_valid.next = self.plans.pop_valid.val();
        self.plan.next = self.plans.pop_data.val();
        self.plans.pop_ready.next = self.plan_ready.val();
        self.retire_valid.next = self.retirements.pop_valid.val();
        self.retire.next = self.retirements.pop_data.val();
        self.retirements.pop_ready.next = self.retire_ready.val();

        if self.reset.val() {
            self.chunking.d.next = false;
        }
    }
}
