//! The PCIe adapter's receive side: packets from the 7-series block's 64-bit receive stream
//! become the NI's register accesses and DMA read completions.
//!
//! * A memory write to BAR0 of one whole, aligned 64-bit register is a register write.
//!   Any other posted write is dropped and reported (`unsupported_posted`), since the NI's
//!   registers have no byte enables.
//! * A memory read to BAR0 of one or both dwords of one register is a register read; the
//!   transmitter answers it. Any other request that needs an answer is answered with status
//!   Unsupported Request. One read is answered at a time: `rx_non_posted_ok` asks the block
//!   to hold further ones back, and the stream stalls on one the block had already passed.
//! * A completion is checked against the reads in flight (tag, status, poisoning) and its
//!   payload moved into the lanes of its addresses: the payload's first dword arrives in the
//!   upper half of the beat after the header, so when that dword belongs in a lower lane
//!   each NI beat joins the halves of two packet beats. A read is done when a completion's
//!   byte count says it carries the rest; only then does the NI see `last`.
//! * A read refused by the transmitter, or still waiting when no completion has come for
//!   2^TIMEOUT_BITS clocks, fails with one error beat; a late completion of it is dropped.

use super::tlp::{CompletionHeader, DwordByteSwap, TYPE_COMPLETION, TYPE_MEMORY};
use crate::constants::constant;
use npmu_abi::{DMA_TAG_BITS, MMIO_ADDRESS_BITS};
use rust_hdl::prelude::*;

/// Tags the receiver tracks: the NI's 32 data tags and its descriptor fetches' from 32 up.
pub const TRACKED_TAGS: usize = 64;

#[derive(LogicBlock)]
pub struct PcieReceiver<const TIMEOUT_BITS: usize> {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, bool>,

    /// The block's receive stream (`m_axis_rx_*`); `rx_bar0` and `rx_forwarded_error` are
    /// `tuser` bits 2 and 1, valid on every beat.
    pub rx_data: Signal<In, Bits<64>>,
    pub rx_last: Signal<In, bool>,
    pub rx_valid: Signal<In, bool>,
    pub rx_ready: Signal<Out, bool>,
    pub rx_bar0: Signal<In, bool>,
    pub rx_forwarded_error: Signal<In, bool>,
    pub rx_non_posted_ok: Signal<Out, bool>,
    /// A posted request was dropped: for `cfg_err_ur` with `cfg_err_posted`.
    pub unsupported_posted: Signal<Out, bool>,

    pub mmio_request_valid: Signal<Out, bool>,
    pub mmio_request_ready: Signal<In, bool>,
    pub mmio_request_write: Signal<Out, bool>,
    pub mmio_request_address: Signal<Out, Bits<MMIO_ADDRESS_BITS>>,
    pub mmio_request_write_data: Signal<Out, Bits<64>>,

    /// The read awaiting its completion, until the transmitter says it went.
    pub completion_valid: Signal<Out, bool>,
    pub completion: Signal<Out, CompletionHeader>,
    pub completion_ready: Signal<In, bool>,

    /// A read the transmitter sent, or refused, with the NI's tag.
    pub read_issued: Signal<In, bool>,
    pub read_tag: Signal<In, Bits<DMA_TAG_BITS>>,
    pub read_refused_valid: Signal<In, bool>,
    pub read_refused_ready: Signal<Out, bool>,

    pub dma_read_completion_valid: Signal<Out, bool>,
    pub dma_read_completion_tag: Signal<Out, Bits<DMA_TAG_BITS>>,
    pub dma_read_completion_data: Signal<Out, Bits<64>>,
    pub dma_read_completion_last: Signal<Out, bool>,
    pub dma_read_completion_error: Signal<Out, bool>,

    write_swap: DwordByteSwap,
    /// Completion data is registered in wire order and turned into lanes after.
    completion_swap: DwordByteSwap,
    /// Beats of the packet taken so far, up to 2 (then the payload).
    beat: DFF<Bits<2>>,
    first: DFF<Bits<32>>,
    second: DFF<Bits<32>>,
    bar0: DFF<bool>,
    forwarded_error: DFF<bool>,
    address: DFF<Bits<32>>,
    answer_valid: DFF<bool>,
    answer: DFF<CompletionHeader>,
    outstanding: [DFF<bool>; TRACKED_TAGS],
    /// The completion being received: its tag is in flight and it carries data.
    completion_good: DFF<bool>,
    completion_tag: DFF<Bits<DMA_TAG_BITS>>,
    /// Its payload's first dword belongs in a lower lane.
    completion_shifted: DFF<bool>,
    /// It carries the read's last byte.
    completion_final: DFF<bool>,
    /// The second beat's upper dword, then each payload beat's.
    carry: DFF<Bits<32>>,
    /// The carried dword alone makes the read's last NI beat.
    flushing: DFF<bool>,
    watchdog: DFF<Bits<TIMEOUT_BITS>>,
    expiring: DFF<bool>,
    out_valid: DFF<bool>,
    out_tag: DFF<Bits<DMA_TAG_BITS>>,
    out_data: DFF<Bits<64>>,
    out_last: DFF<bool>,
    out_error: DFF<bool>,

    // Fields of the packet's first two dwords: from the stream on the header beat, from the
    // registers after it.
    header_first: Signal<Local, Bits<32>>,
    header_second: Signal<Local, Bits<32>>,
    format_type: Signal<Local, Bits<7>>,
    packet_type: Signal<Local, Bits<5>>,
    with_data: Signal<Local, bool>,
    four_dwords: Signal<Local, bool>,
    is_memory_write: Signal<Local, bool>,
    is_memory_read: Signal<Local, bool>,
    is_completion: Signal<Local, bool>,
    non_posted: Signal<Local, bool>,
    length: Signal<Local, Bits<10>>,
    first_enables: Signal<Local, Bits<4>>,
    last_enables: Signal<Local, Bits<4>>,
    poisoned: Signal<Local, bool>,
    request_address: Signal<Local, Bits<32>>,
    first_offset: Signal<Local, Bits<12>>,
    first_end: Signal<Local, Bits<12>>,
    last_end: Signal<Local, Bits<12>>,
    supported_write: Signal<Local, bool>,
    supported_read: Signal<Local, bool>,
    taking: Signal<Local, bool>,
    ends: Signal<Local, bool>,
    incoming_tag: Signal<Local, Bits<DMA_TAG_BITS>>,
    /// The low bits of the completion's lower address: where its first byte sits in a beat.
    incoming_lower_address: Signal<Local, Bits<3>>,
    incoming_known: Signal<Local, bool>,
    incoming_bytes: Signal<Local, Bits<13>>,
    joined: Signal<Local, Bits<64>>,
    incoming_status_ok: Signal<Local, bool>,
    incoming_ends_read: Signal<Local, bool>,
    completion_arrives: Signal<Local, bool>,
    expired_tag: Signal<Local, Bits<DMA_TAG_BITS>>,
    any_outstanding: Signal<Local, bool>,
    emitting_error: Signal<Local, bool>,
    emit_valid: Signal<Local, bool>,
    emit_error: Signal<Local, bool>,
    emit_last: Signal<Local, bool>,
    emit_tag: Signal<Local, Bits<DMA_TAG_BITS>>,
    emit_data: Signal<Local, Bits<64>>,

    tag_numbers: [Constant<Bits<DMA_TAG_BITS>>; TRACKED_TAGS],
    beat_header: Constant<Bits<2>>,
    beat_second: Constant<Bits<2>>,
    beat_payload: Constant<Bits<2>>,
    zero_2: Constant<Bits<2>>,
    one_2: Constant<Bits<2>>,
    type_memory: Constant<Bits<5>>,
    type_memory_locked: Constant<Bits<5>>,
    type_io: Constant<Bits<5>>,
    type_completion: Constant<Bits<5>>,
    type_fetch_add: Constant<Bits<5>>,
    type_swap: Constant<Bits<5>>,
    type_compare_swap: Constant<Bits<5>>,
    one_10: Constant<Bits<10>>,
    two_10: Constant<Bits<10>>,
    all_enables: Constant<Bits<4>>,
    zero_3: Constant<Bits<3>>,
    zero_12: Constant<Bits<12>>,
    one_12: Constant<Bits<12>>,
    two_12: Constant<Bits<12>>,
    three_12: Constant<Bits<12>>,
    four_12: Constant<Bits<12>>,
    register_mask: Constant<Bits<MMIO_ADDRESS_BITS>>,
    dword_mask: Constant<Bits<7>>,
    one_timeout: Constant<Bits<TIMEOUT_BITS>>,
    zero_timeout: Constant<Bits<TIMEOUT_BITS>>,
    all_timeout: Constant<Bits<TIMEOUT_BITS>>,
}

impl<const TIMEOUT_BITS: usize> Default for PcieReceiver<TIMEOUT_BITS> {
    fn default() -> Self {
        Self {
            clock: Default::default(),
            reset: Default::default(),
            rx_data: Default::default(),
            rx_last: Default::default(),
            rx_valid: Default::default(),
            rx_ready: Default::default(),
            rx_bar0: Default::default(),
            rx_forwarded_error: Default::default(),
            rx_non_posted_ok: Default::default(),
            unsupported_posted: Default::default(),
            mmio_request_valid: Default::default(),
            mmio_request_ready: Default::default(),
            mmio_request_write: Default::default(),
            mmio_request_address: Default::default(),
            mmio_request_write_data: Default::default(),
            completion_valid: Default::default(),
            completion: Default::default(),
            completion_ready: Default::default(),
            read_issued: Default::default(),
            read_tag: Default::default(),
            read_refused_valid: Default::default(),
            read_refused_ready: Default::default(),
            dma_read_completion_valid: Default::default(),
            dma_read_completion_tag: Default::default(),
            dma_read_completion_data: Default::default(),
            dma_read_completion_last: Default::default(),
            dma_read_completion_error: Default::default(),
            write_swap: Default::default(),
            completion_swap: Default::default(),
            beat: Default::default(),
            first: Default::default(),
            second: Default::default(),
            bar0: Default::default(),
            forwarded_error: Default::default(),
            address: Default::default(),
            answer_valid: Default::default(),
            answer: Default::default(),
            outstanding: std::array::from_fn(|_| Default::default()),
            completion_good: Default::default(),
            completion_tag: Default::default(),
            completion_shifted: Default::default(),
            completion_final: Default::default(),
            carry: Default::default(),
            flushing: Default::default(),
            watchdog: Default::default(),
            expiring: Default::default(),
            out_valid: Default::default(),
            out_tag: Default::default(),
            out_data: Default::default(),
            out_last: Default::default(),
            out_error: Default::default(),
            header_first: Default::default(),
            header_second: Default::default(),
            format_type: Default::default(),
            packet_type: Default::default(),
            with_data: Default::default(),
            four_dwords: Default::default(),
            is_memory_write: Default::default(),
            is_memory_read: Default::default(),
            is_completion: Default::default(),
            non_posted: Default::default(),
            length: Default::default(),
            first_enables: Default::default(),
            last_enables: Default::default(),
            poisoned: Default::default(),
            request_address: Default::default(),
            first_offset: Default::default(),
            first_end: Default::default(),
            last_end: Default::default(),
            supported_write: Default::default(),
            supported_read: Default::default(),
            taking: Default::default(),
            ends: Default::default(),
            incoming_tag: Default::default(),
            incoming_lower_address: Default::default(),
            incoming_known: Default::default(),
            incoming_bytes: Default::default(),
            joined: Default::default(),
            incoming_status_ok: Default::default(),
            incoming_ends_read: Default::default(),
            completion_arrives: Default::default(),
            expired_tag: Default::default(),
            any_outstanding: Default::default(),
            emitting_error: Default::default(),
            emit_valid: Default::default(),
            emit_error: Default::default(),
            emit_last: Default::default(),
            emit_tag: Default::default(),
            emit_data: Default::default(),
            tag_numbers: std::array::from_fn(|tag| constant(tag as u64)),
            beat_header: constant(0),
            beat_second: constant(1),
            beat_payload: constant(2),
            zero_2: constant(0),
            one_2: constant(1),
            type_memory: constant(TYPE_MEMORY.into()),
            type_memory_locked: constant(super::tlp::TYPE_MEMORY_LOCKED.into()),
            type_io: constant(0x02),
            type_completion: constant(TYPE_COMPLETION.into()),
            type_fetch_add: constant(0x0c),
            type_swap: constant(0x0d),
            type_compare_swap: constant(0x0e),
            one_10: constant(1),
            two_10: constant(2),
            all_enables: constant(0xf),
            zero_3: constant(0),
            zero_12: constant(0),
            one_12: constant(1),
            two_12: constant(2),
            three_12: constant(3),
            four_12: constant(4),
            register_mask: constant(0xfff8),
            dword_mask: constant(0x7c),
            one_timeout: constant(1),
            zero_timeout: constant(0),
            all_timeout: constant((1u64 << TIMEOUT_BITS) - 1),
        }
    }
}

impl<const TIMEOUT_BITS: usize> Logic for PcieReceiver<TIMEOUT_BITS> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            beat,
            first,
            second,
            bar0,
            forwarded_error,
            address,
            answer_valid,
            answer,
            completion_good,
            completion_tag,
            completion_shifted,
            completion_final,
            carry,
            flushing,
            watchdog,
            expiring,
            out_valid,
            out_tag,
            out_data,
            out_last,
            out_error
        );
        for tag in 0..TRACKED_TAGS {
            self.outstanding[tag].clock.next = self.clock.val();
            self.outstanding[tag].d.next = self.outstanding[tag].q.val();
        }
        self.unsupported_posted.next = false;
        self.mmio_request_valid.next = false;
        self.read_refused_ready.next = false;
        self.emitting_error.next = false;
        self.emit_valid.next = false;
        self.emit_error.next = false;
        self.emit_last.next = false;
        self.emit_tag.next = self.completion_tag.q.val();
        self.emit_data.next = self.rx_data.val();

        // The packet's header fields.
        self.header_first.next = self.first.q.val();
        self.header_second.next = self.second.q.val();
        if self.beat.q.val() == self.beat_header.val() {
            self.header_first.next = self.rx_data.val().get_bits::<32>(0);
            self.header_second.next = self.rx_data.val().get_bits::<32>(32);
        }
        self.format_type.next = self.header_first.val().get_bits::<7>(24);
        self.packet_type.next = self.format_type.val().get_bits::<5>(0);
        self.with_data.next = self.format_type.val().get_bit(6);
        self.four_dwords.next = self.format_type.val().get_bit(5);
        self.length.next = self.header_first.val().get_bits::<10>(0);
        self.first_enables.next = self.header_second.val().get_bits::<4>(0);
        self.last_enables.next = self.header_second.val().get_bits::<4>(4);
        self.poisoned.next = self.header_first.val().get_bit(14) || self.forwarded_error.q.val();
        self.is_memory_write.next =
            self.with_data.val() && (self.packet_type.val() == self.type_memory.val());
        self.is_memory_read.next =
            !self.with_data.val() && (self.packet_type.val() == self.type_memory.val());
        self.is_completion.next = self.packet_type.val() == self.type_completion.val();
        self.non_posted.next = (!self.with_data.val()
            && ((self.packet_type.val() == self.type_memory.val())
                || (self.packet_type.val() == self.type_memory_locked.val())))
            || (self.packet_type.val() == self.type_io.val())
            || (self.packet_type.val() == self.type_fetch_add.val())
            || (self.packet_type.val() == self.type_swap.val())
            || (self.packet_type.val() == self.type_compare_swap.val());

        // A request's address: on the second beat, in its first dword or, after a 4-dword
        // header's upper address half, in its second.
        self.request_address.next = self.address.q.val();
        if self.beat.q.val() == self.beat_second.val() {
            self.request_address.next = self.rx_data.val().get_bits::<32>(0);
            if self.four_dwords.val() {
                self.request_address.next = self.rx_data.val().get_bits::<32>(32);
            }
        }
        self.supported_write.next = self.is_memory_write.val()
            && self.bar0.q.val()
            && !self.poisoned.val()
            && (self.length.val() == self.two_10.val())
            && (self.first_enables.val() == self.all_enables.val())
            && (self.last_enables.val() == self.all_enables.val())
            && !self.request_address.val().get_bit(2);
        self.supported_read.next = self.is_memory_read.val()
            && self.bar0.q.val()
            && !self.poisoned.val()
            && ((self.length.val() == self.one_10.val())
                || ((self.length.val() == self.two_10.val())
                    && !self.request_address.val().get_bit(2)));

        // A read's byte count and lower address come from its byte enables.
        self.first_offset.next = self.zero_12.val();
        if !self.first_enables.val().get_bit(0) {
            self.first_offset.next = self.one_12.val();
            if !self.first_enables.val().get_bit(1) {
                self.first_offset.next = self.two_12.val();
                if !self.first_enables.val().get_bit(2) {
                    self.first_offset.next = self.three_12.val();
                    if !self.first_enables.val().get_bit(3) {
                        self.first_offset.next = self.zero_12.val();
                    }
                }
            }
        }
        self.first_end.next = self.one_12.val();
        if self.first_enables.val().get_bit(1) {
            self.first_end.next = self.two_12.val();
        }
        if self.first_enables.val().get_bit(2) {
            self.first_end.next = self.three_12.val();
        }
        if self.first_enables.val().get_bit(3) {
            self.first_end.next = self.four_12.val();
        }
        self.last_end.next = self.one_12.val();
        if self.last_enables.val().get_bit(1) {
            self.last_end.next = self.two_12.val();
        }
        if self.last_enables.val().get_bit(2) {
            self.last_end.next = self.three_12.val();
        }
        if self.last_enables.val().get_bit(3) {
            self.last_end.next = self.four_12.val();
        }

        // A completion's tag and what it carries, on its second beat.
        self.incoming_tag.next = self.rx_data.val().get_bits::<DMA_TAG_BITS>(8);
        self.incoming_lower_address.next = self.rx_data.val().get_bits::<3>(0);
        self.incoming_known.next = false;
        for tag in 0..TRACKED_TAGS {
            if self.incoming_tag.val() == self.tag_numbers[tag].val() {
                self.incoming_known.next = self.outstanding[tag].q.val();
            }
        }
        self.incoming_status_ok.next = self.with_data.val()
            && !self.poisoned.val()
            && (self.header_second.val().get_bits::<3>(13) == self.zero_3.val());
        // It carries the read's rest when its byte count (0 meaning 4096, more than a read
        // of ours) fits between the lower address and the end of its payload.
        self.incoming_bytes.next = (bit_cast::<13, 10>(self.length.val()) << 2)
            - bit_cast::<13, 2>(self.incoming_lower_address.val().get_bits::<2>(0));
        self.incoming_ends_read.next = (self.header_second.val().get_bits::<12>(0)
            != self.zero_12.val())
            && (bit_cast::<13, 12>(self.header_second.val().get_bits::<12>(0))
                <= self.incoming_bytes.val());

        // The lowest tag in flight, for the watchdog to fail first.
        self.any_outstanding.next = false;
        self.expired_tag.next = self.tag_numbers[0].val();
        for tag in 0..TRACKED_TAGS {
            if self.outstanding[tag].q.val() && !self.any_outstanding.val() {
                self.any_outstanding.next = true;
                self.expired_tag.next = self.tag_numbers[tag].val();
            }
        }

        // Payload: straight, or joined with the carried dword a lane lower.
        self.joined.next = (bit_cast::<64, 32>(self.rx_data.val().get_bits::<32>(0)) << 32)
            | bit_cast::<64, 32>(self.carry.q.val());
        if self.flushing.q.val() {
            self.joined.next = bit_cast::<64, 32>(self.carry.q.val());
        }
        self.write_swap.lanes.next = self.joined.val();
        if self.four_dwords.val() {
            self.write_swap.lanes.next = self.rx_data.val();
        }

        // The stream stalls while the carried dword goes out or a failed read is reported
        // (both between packets), and at a request that must wait for the last one's answer.
        self.rx_ready.next = true;
        if self.flushing.q.val() {
            self.rx_ready.next = false;
        } else if self.beat.q.val() == self.beat_header.val() {
            if self.read_refused_valid.val()
                || (self.expiring.q.val() && self.any_outstanding.val())
            {
                self.rx_ready.next = false;
                self.emitting_error.next = true;
            }
            if self.non_posted.val() && self.answer_valid.q.val() {
                self.rx_ready.next = false;
            }
        }
        // A register access goes to the NI with the packet's last beat.
        if (self.beat.q.val() != self.beat_header.val())
            && self.rx_last.val()
            && (self.supported_write.val() || self.supported_read.val())
        {
            self.mmio_request_valid.next = self.rx_valid.val();
            self.rx_ready.next = self.mmio_request_ready.val();
        }
        self.mmio_request_write.next = self.is_memory_write.val();
        self.mmio_request_address.next =
            self.request_address.val().get_bits::<MMIO_ADDRESS_BITS>(0) & self.register_mask.val();
        self.mmio_request_write_data.next = self.write_swap.swapped.val();
        self.taking.next = self.rx_valid.val() && self.rx_ready.val();
        self.ends.next = self.taking.val() && self.rx_last.val();
        self.rx_non_posted_ok.next = !self.answer_valid.q.val();

        if self.taking.val() {
            if self.beat.q.val() != self.beat_payload.val() {
                self.beat.d.next = self.beat.q.val() + self.one_2.val();
            }
            if self.beat.q.val() == self.beat_header.val() {
                self.first.d.next = self.header_first.val();
                self.second.d.next = self.header_second.val();
                self.bar0.d.next = self.rx_bar0.val();
                self.forwarded_error.d.next = self.rx_forwarded_error.val();
            }
            if self.beat.q.val() == self.beat_second.val() {
                self.address.d.next = self.request_address.val();
                self.carry.d.next = self.rx_data.val().get_bits::<32>(32);
            }
        }
        if self.ends.val() {
            self.beat.d.next = self.beat_header.val();
            self.unsupported_posted.next =
                self.is_memory_write.val() && !self.supported_write.val();
            if self.non_posted.val() {
                self.answer_valid.d.next = true;
                self.answer.d.next.requester_id = self.header_second.val().get_bits::<16>(16);
                self.answer.d.next.tag = self.header_second.val().get_bits::<8>(8);
                self.answer.d.next.traffic_class = self.header_first.val().get_bits::<3>(20);
                self.answer.d.next.attributes = self.header_first.val().get_bits::<2>(12);
                self.answer.d.next.lower_address = (self.request_address.val().get_bits::<7>(0)
                    & self.dword_mask.val())
                    | self.first_offset.val().get_bits::<7>(0);
                self.answer.d.next.byte_count = (bit_cast::<12, 10>(self.length.val()) << 2)
                    + self.last_end.val()
                    - self.first_offset.val()
                    - self.four_12.val();
                if self.length.val() == self.one_10.val() {
                    self.answer.d.next.byte_count = self.first_end.val() - self.first_offset.val();
                }
                self.answer.d.next.dwords = self.length.val().get_bits::<2>(0);
                if !self.supported_read.val() {
                    self.answer.d.next.dwords = self.zero_2.val();
                }
                self.answer.d.next.upper_dword = self.request_address.val().get_bit(2);
                self.answer.d.next.unsupported = !self.supported_read.val();
            }
        }
        self.completion_valid.next = self.answer_valid.q.val();
        self.completion.next = self.answer.q.val();
        if self.completion_ready.val() {
            self.answer_valid.d.next = false;
        }

        // Completions of reads in flight; the rest are dropped.
        self.completion_arrives.next = self.taking.val()
            && self.is_completion.val()
            && (self.beat.q.val() == self.beat_second.val());
        if self.completion_arrives.val() {
            self.completion_tag.d.next = self.incoming_tag.val();
            self.completion_good.d.next =
                self.incoming_known.val() && self.incoming_status_ok.val();
            self.completion_shifted.d.next = !self.incoming_lower_address.val().get_bit(2);
            self.completion_final.d.next = self.incoming_ends_read.val();
            self.emit_tag.next = self.incoming_tag.val();
            if self.incoming_known.val() && !self.incoming_status_ok.val() {
                self.emit_valid.next = true;
                self.emit_error.next = true;
                self.emit_last.next = true;
            }
            if self.incoming_known.val() && self.incoming_status_ok.val() {
                if self.incoming_lower_address.val().get_bit(2) {
                    // Its first dword is in the upper half already.
                    self.emit_valid.next = true;
                    self.emit_last.next = self.rx_last.val() && self.incoming_ends_read.val();
                } else if self.rx_last.val() {
                    self.flushing.d.next = true;
                }
            }
        }
        if self.taking.val()
            && self.is_completion.val()
            && (self.beat.q.val() == self.beat_payload.val())
            && self.completion_good.q.val()
        {
            self.carry.d.next = self.rx_data.val().get_bits::<32>(32);
            self.emit_valid.next = true;
            self.emit_last.next = self.rx_last.val() && self.completion_final.q.val();
            if self.completion_shifted.q.val() {
                self.emit_data.next = self.joined.val();
                if self.rx_last.val() && self.length.val().get_bit(0) {
                    // An odd number of dwords: the last one goes out alone next.
                    self.emit_last.next = false;
                    self.flushing.d.next = true;
                }
            }
        }
        if self.flushing.q.val() {
            self.flushing.d.next = false;
            self.emit_valid.next = true;
            self.emit_data.next = self.joined.val();
            self.emit_last.next = self.completion_final.q.val();
        }

        // Failed reads, between packets.
        if self.emitting_error.val() {
            self.emit_valid.next = true;
            self.emit_error.next = true;
            self.emit_last.next = true;
            self.emit_tag.next = self.expired_tag.val();
            if self.read_refused_valid.val() {
                self.read_refused_ready.next = true;
                self.emit_tag.next = self.read_tag.val();
            }
        }

        // A read is over with its last NI beat; a new one starts with its request.
        for tag in 0..TRACKED_TAGS {
            if self.emit_valid.val()
                && self.emit_last.val()
                && (self.emit_tag.val() == self.tag_numbers[tag].val())
            {
                self.outstanding[tag].d.next = false;
            }
            if self.read_issued.val() && (self.read_tag.val() == self.tag_numbers[tag].val()) {
                self.outstanding[tag].d.next = true;
            }
        }
        self.out_valid.d.next = self.emit_valid.val();
        self.out_error.d.next = self.emit_error.val();
        self.out_last.d.next = self.emit_last.val();
        self.out_tag.d.next = self.emit_tag.val();
        self.out_data.d.next = self.emit_data.val();

        // The watchdog runs while reads wait and no completion comes.
        if !self.any_outstanding.val() {
            self.watchdog.d.next = self.zero_timeout.val();
            self.expiring.d.next = false;
        } else if self.completion_arrives.val() {
            self.watchdog.d.next = self.zero_timeout.val();
        } else if !self.expiring.q.val() {
            self.watchdog.d.next = self.watchdog.q.val() + self.one_timeout.val();
            if self.watchdog.q.val() == self.all_timeout.val() {
                self.expiring.d.next = true;
            }
        }

        self.dma_read_completion_valid.next = self.out_valid.q.val();
        self.dma_read_completion_tag.next = self.out_tag.q.val();
        self.completion_swap.lanes.next = self.out_data.q.val();
        self.dma_read_completion_data.next = self.completion_swap.swapped.val();
        self.dma_read_completion_last.next = self.out_last.q.val();
        self.dma_read_completion_error.next = self.out_error.q.val();

        if self.reset.val() {
            self.beat.d.next = self.beat_header.val();
            self.answer_valid.d.next = false;
            self.flushing.d.next = false;
            self.expiring.d.next = false;
            self.watchdog.d.next = self.zero_timeout.val();
            self.out_valid.d.next = false;
            for tag in 0..TRACKED_TAGS {
                self.outstanding[tag].d.next = false;
            }
        }
    }
}
