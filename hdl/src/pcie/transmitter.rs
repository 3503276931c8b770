//! The PCIe adapter's transmit side: the NI's DMA reads and writes, and the completions of
//! the host's BAR0 reads, as packets on the 7-series block's 64-bit transmit stream.
//!
//! One packet at a time, chosen when the last one ends: a completion first (the host's CPU
//! is waiting on it), then a write, then a read, so a read never passes a write the NI
//! offered before it. Requests below 4 GiB get 3-dword headers, as the specification
//! demands, the rest 4. A write's payload dwords follow its header without gaps: when the
//! header's length and the address's dword within the NI's beat disagree in parity, each
//! outgoing beat is half the previous NI beat and half the current one, through `carry`.
//!
//! While bus mastering is off the function may not issue requests: a read is handed back
//! as refused and a write is swallowed and answered with an error.

use super::tlp::{
    CompletionHeader, DwordByteSwap, FMT_FOUR_DWORDS, FMT_WITH_DATA, TYPE_COMPLETION,
};
use crate::constants::constant;
use npmu_abi::{DMA_LENGTH_BITS, DMA_TAG_BITS, IOVA_BITS};
use rust_hdl::prelude::*;

const IDLE: u64 = 0;
const COMPLETION: u64 = 1;
const READ: u64 = 2;
const WRITE: u64 = 3;

#[derive(LogicBlock)]
pub struct PcieTransmitter {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, bool>,

    /// The block's transmit stream (`s_axis_tx_*`).
    pub tx_data: Signal<Out, Bits<64>>,
    pub tx_keep: Signal<Out, Bits<8>>,
    pub tx_last: Signal<Out, bool>,
    pub tx_valid: Signal<Out, bool>,
    pub tx_ready: Signal<In, bool>,
    /// Bus, device and function numbers: the ID every packet of this function carries.
    pub function_id: Signal<In, Bits<16>>,
    pub bus_master_enable: Signal<In, bool>,

    /// A BAR0 read to answer, taken (`ready`) the clock its completion is sent.
    pub completion_valid: Signal<In, bool>,
    pub completion: Signal<In, CompletionHeader>,
    pub completion_ready: Signal<Out, bool>,
    /// The register's value, from the NI.
    pub mmio_response_valid: Signal<In, bool>,
    pub mmio_response_ready: Signal<Out, bool>,
    pub mmio_response_data: Signal<In, Bits<64>>,

    pub read_request_valid: Signal<In, bool>,
    pub read_request_ready: Signal<Out, bool>,
    pub read_request_tag: Signal<In, Bits<DMA_TAG_BITS>>,
    pub read_request_address: Signal<In, Bits<IOVA_BITS>>,
    pub read_request_length: Signal<In, Bits<DMA_LENGTH_BITS>>,
    /// A read went out: its completions are now awaited.
    pub read_issued: Signal<Out, bool>,
    /// A read refused (bus mastering off), for the receiver to fail; taken with `ready`.
    pub read_refused_valid: Signal<Out, bool>,
    pub read_refused_ready: Signal<In, bool>,

    pub write_valid: Signal<In, bool>,
    pub write_ready: Signal<Out, bool>,
    pub write_address: Signal<In, Bits<IOVA_BITS>>,
    pub write_length: Signal<In, Bits<DMA_LENGTH_BITS>>,
    pub write_data: Signal<In, Bits<64>>,
    pub write_byte_enable: Signal<In, Bits<8>>,
    pub write_last: Signal<In, bool>,
    pub write_response_valid: Signal<Out, bool>,
    pub write_response_ready: Signal<In, bool>,
    pub write_response_error: Signal<Out, bool>,
    /// No write is under way or unanswered: an interrupt now follows every write before it.
    pub writes_idle: Signal<Out, bool>,

    write_swap: DwordByteSwap,
    response_swap: DwordByteSwap,
    sending: DFF<Bits<2>>,
    /// Beats of the packet sent so far, up to 2 (then the payload).
    beat: DFF<Bits<2>>,
    carry: DFF<Bits<32>>,
    carry_valid: DFF<bool>,
    /// The write's last NI beat is in: only the carried dword is left to send.
    flushing: DFF<bool>,
    /// A write taken while bus mastering was off: its beats are swallowed.
    dropping: DFF<bool>,
    response_valid: DFF<bool>,
    response_error: DFF<bool>,

    // The request on offer: a read's or a write's, whichever is being sent.
    address: Signal<Local, Bits<64>>,
    length: Signal<Local, Bits<DMA_LENGTH_BITS>>,
    address_offset: Signal<Local, Bits<2>>,
    length_low: Signal<Local, Bits<2>>,
    end_offset: Signal<Local, Bits<2>>,
    /// Payload dwords: the packet's Length field, which encodes 1024 as 0.
    dwords: Signal<Local, Bits<DMA_LENGTH_BITS>>,
    first_enables: Signal<Local, Bits<4>>,
    last_enables: Signal<Local, Bits<4>>,
    four_dwords: Signal<Local, bool>,
    request_first: Signal<Local, Bits<32>>,
    request_second: Signal<Local, Bits<32>>,
    address_high: Signal<Local, Bits<32>>,
    address_low: Signal<Local, Bits<32>>,
    tag: Signal<Local, Bits<8>>,
    completion_header: Signal<Local, CompletionHeader>,
    completion_first: Signal<Local, Bits<32>>,
    completion_second: Signal<Local, Bits<32>>,
    completion_third: Signal<Local, Bits<32>>,
    response_low: Signal<Local, Bits<32>>,
    response_high: Signal<Local, Bits<32>>,
    beat_low: Signal<Local, Bits<32>>,
    beat_high: Signal<Local, Bits<32>>,
    low_lane: Signal<Local, bool>,
    high_lane: Signal<Local, bool>,
    packet_ends: Signal<Local, bool>,
    write_taken: Signal<Local, bool>,

    state_idle: Constant<Bits<2>>,
    state_completion: Constant<Bits<2>>,
    state_read: Constant<Bits<2>>,
    state_write: Constant<Bits<2>>,
    beat_header: Constant<Bits<2>>,
    beat_second: Constant<Bits<2>>,
    beat_payload: Constant<Bits<2>>,
    keep_all: Constant<Bits<8>>,
    keep_low: Constant<Bits<8>>,
    one_2: Constant<Bits<2>>,
    two_2: Constant<Bits<2>>,
    three_2: Constant<Bits<2>>,
    zero_4: Constant<Bits<4>>,
    zero_8: Constant<Bits<8>>,
    zero_32: Constant<Bits<32>>,
    zero_64: Constant<Bits<64>>,
    one_dword: Constant<Bits<DMA_LENGTH_BITS>>,
    length_field: Constant<Bits<32>>,
    three_13: Constant<Bits<DMA_LENGTH_BITS>>,
    request_read_3: Constant<Bits<32>>,
    request_read_4: Constant<Bits<32>>,
    request_write_3: Constant<Bits<32>>,
    request_write_4: Constant<Bits<32>>,
    completion_with_data: Constant<Bits<32>>,
    completion_without_data: Constant<Bits<32>>,
    status_unsupported: Constant<Bits<32>>,
    dword_address_mask: Constant<Bits<32>>,
    enables_full: Constant<Bits<4>>,
    enables_upper_three: Constant<Bits<4>>,
    enables_upper_two: Constant<Bits<4>>,
    enables_upper_one: Constant<Bits<4>>,
    enables_lower_one: Constant<Bits<4>>,
    enables_lower_two: Constant<Bits<4>>,
    enables_lower_three: Constant<Bits<4>>,
}

impl Default for PcieTransmitter {
    fn default() -> Self {
        let first_dword =
            |fmt: u32, kind: u32| constant::<32>(u64::from((fmt << 29) | (kind << 24)));
        Self {
            clock: Default::default(),
            reset: Default::default(),
            tx_data: Default::default(),
            tx_keep: Default::default(),
            tx_last: Default::default(),
            tx_valid: Default::default(),
            tx_ready: Default::default(),
            function_id: Default::default(),
            bus_master_enable: Default::default(),
            completion_valid: Default::default(),
            completion: Default::default(),
            completion_ready: Default::default(),
            mmio_response_valid: Default::default(),
            mmio_response_ready: Default::default(),
            mmio_response_data: Default::default(),
            read_request_valid: Default::default(),
            read_request_ready: Default::default(),
            read_request_tag: Default::default(),
            read_request_address: Default::default(),
            read_request_length: Default::default(),
            read_issued: Default::default(),
            read_refused_valid: Default::default(),
            read_refused_ready: Default::default(),
            write_valid: Default::default(),
            write_ready: Default::default(),
            write_address: Default::default(),
            write_length: Default::default(),
            write_data: Default::default(),
            write_byte_enable: Default::default(),
            write_last: Default::default(),
            write_response_valid: Default::default(),
            write_response_ready: Default::default(),
            write_response_error: Default::default(),
            writes_idle: Default::default(),
            write_swap: Default::default(),
            response_swap: Default::default(),
            sending: Default::default(),
            beat: Default::default(),
            carry: Default::default(),
            carry_valid: Default::default(),
            flushing: Default::default(),
            dropping: Default::default(),
            response_valid: Default::default(),
            response_error: Default::default(),
            address: Default::default(),
            length: Default::default(),
            address_offset: Default::default(),
            length_low: Default::default(),
            end_offset: Default::default(),
            dwords: Default::default(),
            first_enables: Default::default(),
            last_enables: Default::default(),
            four_dwords: Default::default(),
            request_first: Default::default(),
            request_second: Default::default(),
            address_high: Default::default(),
            address_low: Default::default(),
            tag: Default::default(),
            completion_header: Default::default(),
            completion_first: Default::default(),
            completion_second: Default::default(),
            completion_third: Default::default(),
            response_low: Default::default(),
            response_high: Default::default(),
            beat_low: Default::default(),
            beat_high: Default::default(),
            low_lane: Default::default(),
            high_lane: Default::default(),
            packet_ends: Default::default(),
            write_taken: Default::default(),
            state_idle: constant(IDLE),
            state_completion: constant(COMPLETION),
            state_read: constant(READ),
            state_write: constant(WRITE),
            beat_header: constant(0),
            beat_second: constant(1),
            beat_payload: constant(2),
            keep_all: constant(0xff),
            keep_low: constant(0x0f),
            one_2: constant(1),
            two_2: constant(2),
            three_2: constant(3),
            zero_4: constant(0),
            zero_8: constant(0),
            zero_32: constant(0),
            zero_64: constant(0),
            one_dword: constant(1),
            length_field: constant(0x3ff),
            three_13: constant(3),
            request_read_3: first_dword(0, 0),
            request_read_4: first_dword(FMT_FOUR_DWORDS, 0),
            request_write_3: first_dword(FMT_WITH_DATA, 0),
            request_write_4: first_dword(FMT_WITH_DATA | FMT_FOUR_DWORDS, 0),
            completion_with_data: first_dword(FMT_WITH_DATA, TYPE_COMPLETION),
            completion_without_data: first_dword(0, TYPE_COMPLETION),
            status_unsupported: constant(1 << 13),
            dword_address_mask: constant(0xffff_fffc),
            enables_full: constant(0b1111),
            enables_upper_three: constant(0b1110),
            enables_upper_two: constant(0b1100),
            enables_upper_one: constant(0b1000),
            enables_lower_one: constant(0b0001),
            enables_lower_two: constant(0b0011),
            enables_lower_three: constant(0b0111),
        }
    }
}

impl Logic for PcieTransmitter {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            sending,
            beat,
            carry,
            carry_valid,
            flushing,
            dropping,
            response_valid,
            response_error
        );
        self.tx_data.next = self.zero_64.val();
        self.tx_keep.next = self.keep_all.val();
        self.tx_last.next = false;
        self.tx_valid.next = false;
        self.completion_ready.next = false;
        self.mmio_response_ready.next = false;
        self.read_request_ready.next = false;
        self.read_issued.next = false;
        self.read_refused_valid.next = false;
        self.write_ready.next = false;
        self.write_response_valid.next = self.response_valid.q.val();
        self.write_response_error.next = self.response_error.q.val();
        self.packet_ends.next = false;
        self.write_taken.next = false;
        if self.response_valid.q.val() && self.write_response_ready.val() {
            self.response_valid.d.next = false;
        }

        // The request's header, from whichever of the read or write is being sent.
        self.address.next = self.read_request_address.val();
        self.length.next = self.read_request_length.val();
        self.tag.next = self.read_request_tag.val();
        if self.sending.q.val() == self.state_write.val() {
            self.address.next = self.write_address.val();
            self.length.next = self.write_length.val();
            self.tag.next = self.zero_8.val();
        }
        self.address_offset.next = self.address.val().get_bits::<2>(0);
        self.length_low.next = self.length.val().get_bits::<2>(0);
        self.end_offset.next = self.address_offset.val() + self.length_low.val();
        self.dwords.next = (bit_cast::<DMA_LENGTH_BITS, 2>(self.address_offset.val())
            + self.length.val()
            + self.three_13.val())
            >> 2;
        self.first_enables.next = self.enables_full.val();
        if self.address_offset.val() == self.one_2.val() {
            self.first_enables.next = self.enables_upper_three.val();
        }
        if self.address_offset.val() == self.two_2.val() {
            self.first_enables.next = self.enables_upper_two.val();
        }
        if self.address_offset.val() == self.three_2.val() {
            self.first_enables.next = self.enables_upper_one.val();
        }
        self.last_enables.next = self.enables_full.val();
        if self.end_offset.val() == self.one_2.val() {
            self.last_enables.next = self.enables_lower_one.val();
        }
        if self.end_offset.val() == self.two_2.val() {
            self.last_enables.next = self.enables_lower_two.val();
        }
        if self.end_offset.val() == self.three_2.val() {
            self.last_enables.next = self.enables_lower_three.val();
        }
        if self.dwords.val() == self.one_dword.val() {
            self.first_enables.next = self.first_enables.val() & self.last_enables.val();
            self.last_enables.next = self.zero_4.val();
        }
        self.address_high.next = self.address.val().get_bits::<32>(32);
        self.address_low.next =
            self.address.val().get_bits::<32>(0) & self.dword_address_mask.val();
        self.four_dwords.next = self.address_high.val() != self.zero_32.val();
        self.request_first.next = self.request_read_3.val();
        if self.four_dwords.val() {
            self.request_first.next = self.request_read_4.val();
        }
        if self.sending.q.val() == self.state_write.val() {
            self.request_first.next = self.request_write_3.val();
            if self.four_dwords.val() {
                self.request_first.next = self.request_write_4.val();
            }
        }
        self.request_first.next = self.request_first.val()
            | (bit_cast::<32, DMA_LENGTH_BITS>(self.dwords.val()) & self.length_field.val());
        self.request_second.next = (bit_cast::<32, 16>(self.function_id.val()) << 16)
            | (bit_cast::<32, 8>(self.tag.val()) << 8)
            | (bit_cast::<32, 4>(self.last_enables.val()) << 4)
            | bit_cast::<32, 4>(self.first_enables.val());

        // A BAR0 read's completion.
        self.completion_header.next = self.completion.val();
        self.completion_first.next = self.completion_with_data.val()
            | bit_cast::<32, 2>(self.completion_header.val().dwords);
        if self.completion_header.val().unsupported {
            self.completion_first.next = self.completion_without_data.val();
        }
        self.completion_first.next = self.completion_first.val()
            | (bit_cast::<32, 3>(self.completion_header.val().traffic_class) << 20)
            | (bit_cast::<32, 2>(self.completion_header.val().attributes) << 12);
        self.completion_second.next = (bit_cast::<32, 16>(self.function_id.val()) << 16)
            | bit_cast::<32, 12>(self.completion_header.val().byte_count);
        if self.completion_header.val().unsupported {
            self.completion_second.next =
                self.completion_second.val() | self.status_unsupported.val();
        }
        self.completion_third.next =
            (bit_cast::<32, 16>(self.completion_header.val().requester_id) << 16)
                | (bit_cast::<32, 8>(self.completion_header.val().tag) << 8)
                | bit_cast::<32, 7>(self.completion_header.val().lower_address);
        self.response_swap.lanes.next = self.mmio_response_data.val();
        self.response_low.next = self.response_swap.swapped.val().get_bits::<32>(0);
        self.response_high.next = self.response_swap.swapped.val().get_bits::<32>(32);

        // A write beat's dwords that belong to the payload.
        self.write_swap.lanes.next = self.write_data.val();
        self.beat_low.next = self.write_swap.swapped.val().get_bits::<32>(0);
        self.beat_high.next = self.write_swap.swapped.val().get_bits::<32>(32);
        self.low_lane.next = self.write_byte_enable.val().get_bits::<4>(0) != self.zero_4.val();
        self.high_lane.next = self.write_byte_enable.val().get_bits::<4>(4) != self.zero_4.val();

        // Choose the next packet.
        if self.sending.q.val() == self.state_idle.val() {
            self.beat.d.next = self.beat_header.val();
            self.carry_valid.d.next = false;
            self.flushing.d.next = false;
            self.dropping.d.next = !self.bus_master_enable.val();
            if self.completion_valid.val()
                && (self.completion.val().unsupported || self.mmio_response_valid.val())
            {
                self.sending.d.next = self.state_completion.val();
            } else if self.write_valid.val() && !self.response_valid.q.val() {
                self.sending.d.next = self.state_write.val();
            } else if self.read_request_valid.val() {
                self.sending.d.next = self.state_read.val();
            }
        }

        if self.sending.q.val() == self.state_completion.val() {
            self.tx_valid.next = true;
            if self.beat.q.val() == self.beat_header.val() {
                self.tx_data.next = (bit_cast::<64, 32>(self.completion_second.val()) << 32)
                    | bit_cast::<64, 32>(self.completion_first.val());
            } else if self.beat.q.val() == self.beat_second.val() {
                self.tx_data.next = (bit_cast::<64, 32>(self.response_low.val()) << 32)
                    | bit_cast::<64, 32>(self.completion_third.val());
                if self.completion_header.val().upper_dword {
                    self.tx_data.next = (bit_cast::<64, 32>(self.response_high.val()) << 32)
                        | bit_cast::<64, 32>(self.completion_third.val());
                }
                if self.completion_header.val().unsupported {
                    self.tx_keep.next = self.keep_low.val();
                }
                self.tx_last.next = self.completion_header.val().dwords != self.two_2.val();
            } else {
                self.tx_data.next = bit_cast::<64, 32>(self.response_high.val());
                self.tx_keep.next = self.keep_low.val();
                self.tx_last.next = true;
            }
        }

        if self.sending.q.val() == self.state_read.val() {
            if self.dropping.q.val() {
                self.read_refused_valid.next = true;
                if self.read_refused_ready.val() {
                    self.read_request_ready.next = true;
                    self.sending.d.next = self.state_idle.val();
                }
            } else {
                self.tx_valid.next = true;
                if self.beat.q.val() == self.beat_header.val() {
                    self.tx_data.next = (bit_cast::<64, 32>(self.request_second.val()) << 32)
                        | bit_cast::<64, 32>(self.request_first.val());
                } else {
                    self.tx_data.next = bit_cast::<64, 32>(self.address_low.val());
                    self.tx_keep.next = self.keep_low.val();
                    if self.four_dwords.val() {
                        self.tx_data.next = (bit_cast::<64, 32>(self.address_low.val()) << 32)
                            | bit_cast::<64, 32>(self.address_high.val());
                        self.tx_keep.next = self.keep_all.val();
                    }
                    self.tx_last.next = true;
                    self.read_request_ready.next = self.tx_ready.val();
                    self.read_issued.next = self.tx_ready.val();
                }
            }
        }

        if self.sending.q.val() == self.state_write.val() {
            if self.dropping.q.val() {
                self.write_ready.next = true;
                if self.write_valid.val() && self.write_last.val() {
                    self.response_valid.d.next = true;
                    self.response_error.d.next = true;
                    self.sending.d.next = self.state_idle.val();
                }
            } else if self.beat.q.val() == self.beat_header.val() {
                self.tx_valid.next = true;
                self.tx_data.next = (bit_cast::<64, 32>(self.request_second.val()) << 32)
                    | bit_cast::<64, 32>(self.request_first.val());
                if self.tx_ready.val() && !self.four_dwords.val() {
                    self.carry.d.next = self.address_low.val();
                    self.carry_valid.d.next = true;
                }
            } else if (self.beat.q.val() == self.beat_second.val()) && self.four_dwords.val() {
                self.tx_valid.next = true;
                self.tx_data.next = (bit_cast::<64, 32>(self.address_low.val()) << 32)
                    | bit_cast::<64, 32>(self.address_high.val());
            } else if self.flushing.q.val() {
                self.tx_valid.next = true;
                self.tx_data.next = bit_cast::<64, 32>(self.carry.q.val());
                self.tx_keep.next = self.keep_low.val();
                self.tx_last.next = true;
            } else if self.carry_valid.q.val() {
                // The carried dword goes out first, then the beat's first payload dword;
                // the beat's second, if any, is carried.
                self.tx_valid.next = self.write_valid.val();
                self.tx_data.next = (bit_cast::<64, 32>(self.beat_low.val()) << 32)
                    | bit_cast::<64, 32>(self.carry.q.val());
                if !self.low_lane.val() {
                    self.tx_data.next = (bit_cast::<64, 32>(self.beat_high.val()) << 32)
                        | bit_cast::<64, 32>(self.carry.q.val());
                }
                self.tx_last.next =
                    self.write_last.val() && !(self.low_lane.val() && self.high_lane.val());
                self.write_ready.next = self.tx_ready.val();
                self.write_taken.next = self.write_valid.val() && self.tx_ready.val();
                if self.write_taken.val() {
                    self.carry.d.next = self.beat_high.val();
                    self.carry_valid.d.next = self.low_lane.val() && self.high_lane.val();
                    self.flushing.d.next =
                        self.write_last.val() && self.low_lane.val() && self.high_lane.val();
                }
            } else if self.low_lane.val() {
                self.tx_valid.next = self.write_valid.val();
                self.tx_data.next = self.write_swap.swapped.val();
                if !self.high_lane.val() {
                    self.tx_keep.next = self.keep_low.val();
                }
                self.tx_last.next = self.write_last.val();
                self.write_ready.next = self.tx_ready.val();
                self.write_taken.next = self.write_valid.val() && self.tx_ready.val();
            } else {
                // The payload starts in the beat's upper dword: carry it, send nothing.
                self.write_ready.next = true;
                self.write_taken.next = self.write_valid.val();
                if self.write_taken.val() {
                    self.carry.d.next = self.beat_high.val();
                    self.carry_valid.d.next = true;
                    self.flushing.d.next = self.write_last.val();
                }
            }
        }

        // Every packet ends on an accepted last beat; a write also queues its response.
        self.packet_ends.next = self.tx_valid.val() && self.tx_ready.val() && self.tx_last.val();
        if self.tx_valid.val()
            && self.tx_ready.val()
            && (self.beat.q.val() != self.beat_payload.val())
        {
            self.beat.d.next = self.beat.q.val() + self.one_2.val();
        }
        if self.packet_ends.val() {
            self.sending.d.next = self.state_idle.val();
            if self.sending.q.val() == self.state_completion.val() {
                self.completion_ready.next = true;
                self.mmio_response_ready.next = !self.completion_header.val().unsupported;
            }
            if self.sending.q.val() == self.state_write.val() {
                self.response_valid.d.next = true;
                self.response_error.d.next = false;
            }
        }
        self.writes_idle.next =
            (self.sending.q.val() != self.state_write.val()) && !self.response_valid.q.val();

        if self.reset.val() {
            self.sending.d.next = self.state_idle.val();
            self.response_valid.d.next = false;
        }
    }
}
