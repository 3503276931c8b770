//! The serial bridge: turns the commands a host sends over a byte link into the protection
//! core's MMIO and request-port transactions, and the core's answers into bytes back
//! (protocol: `npmu_abi::bridge`).
//!
//! One command is handled at a time: the next opcode is taken once the previous command is
//! issued and its acknowledgement, if it has one, is queued. A write's beats go to the
//! core's write-data port as they arrive; if the host stops sending for
//! `npmu_abi::bridge::IDLE_CLOCKS`, the beats still owed go out with no lane enabled, so
//! the core finishes the write without storing what never came.

use crate::constants::constant;
use npmu_abi::bridge as protocol;
use npmu_abi::{
    ADDRESS_BITS, CONTEXT_ID_BITS, INITIATOR_BITS, KEY_BITS, LENGTH_BITS, MMIO_ADDRESS_BITS,
    STATUS_BITS,
};
use rust_hdl::prelude::*;

/// Bits of the header shifter: the longest command after its opcode.
const HEADER_BITS: usize = 8 * protocol::NETWORK_REQUEST_BYTES;
/// Bits of the beat shifter: an enable byte and at most 8 data bytes.
const BEAT_BITS: usize = 72;
/// Bits of the reply shifter: a response beat of at most 8 data bytes, or a register value.
const REPLY_BITS: usize = 80;

#[derive(Copy, Clone, Debug, PartialEq, LogicState)]
pub enum BridgeState {
    Idle,
    Header,
    IssueRegister,
    IssueRequest,
    /// Receiving a write beat's bytes.
    Data,
    /// Handing a complete write beat to the core.
    Beat,
    Resetting,
}

#[derive(LogicBlock)]
pub struct SerialBridge<const DATA_BITS: usize, const STROBE_BITS: usize> {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, bool>,

    pub received_valid: Signal<In, bool>,
    pub received_ready: Signal<Out, bool>,
    pub received: Signal<In, Bits<8>>,
    pub sent_valid: Signal<Out, bool>,
    pub sent_ready: Signal<In, bool>,
    pub sent: Signal<Out, Bits<8>>,

    /// The core's reset: the board's, or a reset command's, a clock late.
    pub core_reset: Signal<Out, bool>,
    pub mmio_request_valid: Signal<Out, bool>,
    pub mmio_request_ready: Signal<In, bool>,
    pub mmio_request_write: Signal<Out, bool>,
    pub mmio_request_address: Signal<Out, Bits<MMIO_ADDRESS_BITS>>,
    pub mmio_request_write_data: Signal<Out, Bits<64>>,
    pub mmio_response_valid: Signal<In, bool>,
    pub mmio_response_ready: Signal<Out, bool>,
    pub mmio_response_data: Signal<In, Bits<64>>,
    pub request_valid: Signal<Out, bool>,
    pub request_ready: Signal<In, bool>,
    pub request_write: Signal<Out, bool>,
    pub request_context: Signal<Out, Bits<CONTEXT_ID_BITS>>,
    pub request_key: Signal<Out, Bits<KEY_BITS>>,
    pub request_initiator: Signal<Out, Bits<INITIATOR_BITS>>,
    pub request_address: Signal<Out, Bits<ADDRESS_BITS>>,
    pub request_length: Signal<Out, Bits<LENGTH_BITS>>,
    pub write_data_valid: Signal<Out, bool>,
    pub write_data_ready: Signal<In, bool>,
    pub write_data: Signal<Out, Bits<DATA_BITS>>,
    pub write_data_enable: Signal<Out, Bits<STROBE_BITS>>,
    pub response_valid: Signal<In, bool>,
    pub response_ready: Signal<Out, bool>,
    pub response_status: Signal<In, Bits<STATUS_BITS>>,
    pub response_data: Signal<In, Bits<DATA_BITS>>,
    pub response_last: Signal<In, bool>,

    state: DFF<BridgeState>,
    opcode: DFF<Bits<8>>,
    header: DFF<Bits<HEADER_BITS>>,
    header_bytes_left: DFF<Bits<8>>,
    beat: DFF<Bits<BEAT_BITS>>,
    beat_bytes_left: DFF<Bits<4>>,
    beats_left: DFF<Bits<40>>,
    /// The host went quiet during a write: the remaining beats store nothing.
    padding: DFF<bool>,
    quiet_clocks: DFF<Bits<32>>,
    reset_clocks_left: DFF<Bits<8>>,
    acknowledgement_valid: DFF<bool>,
    acknowledgement: DFF<Bits<16>>,
    acknowledgement_bytes: DFF<Bits<4>>,
    reply: DFF<Bits<REPLY_BITS>>,
    reply_bytes_left: DFF<Bits<4>>,
    /// The core's reset, from a flip-flop: it reaches every register of the core and
    /// runs on through the AVT's stall, so it must not start at a gate. It follows the
    /// board's reset and the Resetting state a clock late.
    holding_core_in_reset: DFF<bool>,

    taking_byte: Signal<Local, bool>,
    reply_free: Signal<Local, bool>,
    write_beats: Signal<Local, Bits<40>>,
    /// The request waiting at the core is a write with beats to follow.
    carries_data: DFF<bool>,
    // The network request and the write beat on offer to the core. The core's ready signals
    // only clear these; what follows a handshake is decided in the clock after, so those
    // long paths from the core end in one flip-flop each.
    request_offered: DFF<bool>,
    beat_offered: DFF<bool>,
    timed_out: Signal<Local, bool>,

    read_register: Constant<Bits<8>>,
    write_register: Constant<Bits<8>>,
    network_request: Constant<Bits<8>>,
    reset_command: Constant<Bits<8>>,
    register_value: Constant<Bits<REPLY_BITS>>,
    register_written: Constant<Bits<16>>,
    response_beat: Constant<Bits<REPLY_BITS>>,
    reset_done: Constant<Bits<16>>,
    refused: Constant<Bits<16>>,
    read_register_bytes: Constant<Bits<8>>,
    write_register_bytes: Constant<Bits<8>>,
    network_request_bytes: Constant<Bits<8>>,
    beat_bytes: Constant<Bits<4>>,
    beat_top: Constant<Bits<8>>,
    response_beat_bytes: Constant<Bits<4>>,
    register_value_bytes: Constant<Bits<4>>,
    refusal_bytes: Constant<Bits<4>>,
    header_top: Constant<Bits<8>>,
    lane_mask: Constant<Bits<40>>,
    lane_shift: Constant<Bits<8>>,
    idle_clocks: Constant<Bits<32>>,
    reset_clocks: Constant<Bits<8>>,
    one_4: Constant<Bits<4>>,
    one_8: Constant<Bits<8>>,
    one_32: Constant<Bits<32>>,
    one_40: Constant<Bits<40>>,
    zero_4: Constant<Bits<4>>,
    zero_32: Constant<Bits<32>>,
    zero_40: Constant<Bits<40>>,
    zero_beat: Constant<Bits<BEAT_BITS>>,
}

impl<const DATA_BITS: usize, const STROBE_BITS: usize> Default
    for SerialBridge<DATA_BITS, STROBE_BITS>
{
    fn default() -> Self {
        assert_eq!(DATA_BITS, 8 * STROBE_BITS);
        assert!(STROBE_BITS.is_power_of_two() && STROBE_BITS <= 8);
        let lanes = STROBE_BITS as u64;
        Self {
            clock: Default::default(),
            reset: Default::default(),
            received_valid: Default::default(),
            received_ready: Default::default(),
            received: Default::default(),
            sent_valid: Default::default(),
            sent_ready: Default::default(),
            sent: Default::default(),
            core_reset: Default::default(),
            mmio_request_valid: Default::default(),
            mmio_request_ready: Default::default(),
            mmio_request_write: Default::default(),
            mmio_request_address: Default::default(),
            mmio_request_write_data: Default::default(),
            mmio_response_valid: Default::default(),
            mmio_response_ready: Default::default(),
            mmio_response_data: Default::default(),
            request_valid: Default::default(),
            request_ready: Default::default(),
            request_write: Default::default(),
            request_context: Default::default(),
            request_key: Default::default(),
            request_initiator: Default::default(),
            request_address: Default::default(),
            request_length: Default::default(),
            write_data_valid: Default::default(),
            write_data_ready: Default::default(),
            write_data: Default::default(),
            write_data_enable: Default::default(),
            response_valid: Default::default(),
            response_ready: Default::default(),
            response_status: Default::default(),
            response_data: Default::default(),
            response_last: Default::default(),
            state: Default::default(),
            opcode: Default::default(),
            header: Default::default(),
            header_bytes_left: Default::default(),
            beat: Default::default(),
            beat_bytes_left: Default::default(),
            beats_left: Default::default(),
            padding: Default::default(),
            quiet_clocks: Default::default(),
            reset_clocks_left: Default::default(),
            acknowledgement_valid: Default::default(),
            acknowledgement: Default::default(),
            acknowledgement_bytes: Default::default(),
            reply: Default::default(),
            reply_bytes_left: Default::default(),
            holding_core_in_reset: Default::default(),
            taking_byte: Default::default(),
            reply_free: Default::default(),
            write_beats: Default::default(),
            carries_data: Default::default(),
            request_offered: Default::default(),
            beat_offered: Default::default(),
            timed_out: Default::default(),
            read_register: constant(u64::from(protocol::READ_REGISTER)),
            write_register: constant(u64::from(protocol::WRITE_REGISTER)),
            network_request: constant(u64::from(protocol::NETWORK_REQUEST)),
            reset_command: constant(u64::from(protocol::RESET)),
            register_value: constant(u64::from(protocol::REGISTER_VALUE)),
            register_written: constant(u64::from(protocol::REGISTER_WRITTEN)),
            response_beat: constant(u64::from(protocol::RESPONSE_BEAT)),
            reset_done: constant(u64::from(protocol::RESET_DONE)),
            refused: constant(u64::from(protocol::REFUSED)),
            read_register_bytes: constant(protocol::READ_REGISTER_BYTES as u64),
            write_register_bytes: constant(protocol::WRITE_REGISTER_BYTES as u64),
            network_request_bytes: constant(protocol::NETWORK_REQUEST_BYTES as u64),
            beat_bytes: constant(lanes + 1),
            beat_top: constant(8 * lanes),
            response_beat_bytes: constant(lanes + 2),
            register_value_bytes: constant(9),
            refusal_bytes: constant(2),
            header_top: constant(HEADER_BITS as u64 - 8),
            lane_mask: constant(lanes - 1),
            lane_shift: constant(u64::from(lanes.trailing_zeros())),
            idle_clocks: constant(u64::from(protocol::IDLE_CLOCKS)),
            reset_clocks: constant(u64::from(protocol::RESET_CLOCKS)),
            one_4: constant(1),
            one_8: constant(1),
            one_32: constant(1),
            one_40: constant(1),
            zero_4: constant(0),
            zero_32: constant(0),
            zero_40: constant(0),
            zero_beat: constant(0),
        }
    }
}

impl<const DATA_BITS: usize, const STROBE_BITS: usize> Logic
    for SerialBridge<DATA_BITS, STROBE_BITS>
{
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            state,
            opcode,
            header,
            header_bytes_left,
            beat,
            beat_bytes_left,
            beats_left,
            carries_data,
            request_offered,
            beat_offered,
            padding,
            quiet_clocks,
            reset_clocks_left,
            acknowledgement_valid,
            acknowledgement,
            acknowledgement_bytes,
            reply,
            reply_bytes_left,
            holding_core_in_reset
        );

        // The header's fields, where the shifter leaves them once the command is in.
        self.mmio_request_valid.next = self.state.q.val() == BridgeState::IssueRegister;
        self.mmio_request_write.next = self.opcode.q.val() == self.write_register.val();
        self.mmio_request_address.next = self.header.q.val().get_bits::<16>(88);
        if self.opcode.q.val() == self.read_register.val() {
            self.mmio_request_address.next = self.header.q.val().get_bits::<16>(152);
        }
        self.mmio_request_write_data.next = self.header.q.val().get_bits::<64>(104);
        self.request_valid.next = self.request_offered.q.val();
        if self.request_offered.q.val() && self.request_ready.val() {
            self.request_offered.d.next = false;
        }
        self.request_write.next = self.header.q.val().get_bit(0);
        self.request_context.next = self.header.q.val().get_bits::<16>(8);
        self.request_key.next = self.header.q.val().get_bits::<32>(24);
        self.request_initiator.next = self.header.q.val().get_bits::<16>(56);
        self.request_address.next = self.header.q.val().get_bits::<64>(72);
        self.request_length.next = self.header.q.val().get_bits::<32>(136);
        self.write_beats.next = ((self.header.q.val().get_bits::<40>(72) & self.lane_mask.val())
            + bit_cast::<40, 32>(self.header.q.val().get_bits::<32>(136))
            + self.lane_mask.val())
            >> self.lane_shift.val();
        if self.header.q.val().get_bits::<32>(136) == self.zero_32.val() {
            self.write_beats.next = self.zero_40.val();
        }
        self.write_data_valid.next = self.beat_offered.q.val();
        if self.beat_offered.q.val() && self.write_data_ready.val() {
            self.beat_offered.d.next = false;
        }
        self.write_data.next = self.beat.q.val().get_bits::<DATA_BITS>(8);
        self.write_data_enable.next = self.beat.q.val().get_bits::<STROBE_BITS>(0);
        self.holding_core_in_reset.d.next = self.state.q.val() == BridgeState::Resetting;
        self.core_reset.next = self.holding_core_in_reset.q.val();

        // Replies: an acknowledgement first, then a register value, then a response beat.
        self.sent_valid.next = self.reply_bytes_left.q.val() != self.zero_4.val();
        self.sent.next = self.reply.q.val().get_bits::<8>(0);
        if self.sent_valid.val() && self.sent_ready.val() {
            self.reply.d.next = self.reply.q.val() >> 8;
            self.reply_bytes_left.d.next = self.reply_bytes_left.q.val() - self.one_4.val();
        }
        self.reply_free.next = !self.sent_valid.val();
        self.mmio_response_ready.next =
            self.reply_free.val() && !self.acknowledgement_valid.q.val();
        self.response_ready.next = self.reply_free.val()
            && !self.acknowledgement_valid.q.val()
            && !self.mmio_response_valid.val();
        if self.reply_free.val() {
            if self.acknowledgement_valid.q.val() {
                self.reply.d.next = bit_cast::<REPLY_BITS, 16>(self.acknowledgement.q.val());
                self.reply_bytes_left.d.next = self.acknowledgement_bytes.q.val();
                self.acknowledgement_valid.d.next = false;
            } else if self.mmio_response_valid.val() {
                self.reply.d.next = self.register_value.val()
                    | (bit_cast::<REPLY_BITS, 64>(self.mmio_response_data.val()) << 8);
                self.reply_bytes_left.d.next = self.register_value_bytes.val();
            } else if self.response_valid.val() {
                self.reply.d.next = self.response_beat.val()
                    | (bit_cast::<REPLY_BITS, STATUS_BITS>(self.response_status.val()) << 8)
                    | (bit_cast::<REPLY_BITS, 1>(self.response_last.val().into()) << 15)
                    | (bit_cast::<REPLY_BITS, DATA_BITS>(self.response_data.val()) << 16);
                self.reply_bytes_left.d.next = self.response_beat_bytes.val();
            }
        }

        // Commands, a byte at a time.
        self.received_ready.next = (self.state.q.val() == BridgeState::Header)
            || ((self.state.q.val() == BridgeState::Idle) && !self.acknowledgement_valid.q.val())
            || ((self.state.q.val() == BridgeState::Data) && !self.padding.q.val());
        self.taking_byte.next = self.received_valid.val() && self.received_ready.val();
        self.timed_out.next = self.quiet_clocks.q.val() == self.idle_clocks.val();
        if self.taking_byte.val() {
            self.quiet_clocks.d.next = self.zero_32.val();
        } else if !self.timed_out.val() {
            self.quiet_clocks.d.next = self.quiet_clocks.q.val() + self.one_32.val();
        }
        match self.state.q.val() {
            BridgeState::Idle => {
                if self.taking_byte.val() {
                    self.opcode.d.next = self.received.val();
                    self.quiet_clocks.d.next = self.zero_32.val();
                    if self.received.val() == self.read_register.val() {
                        self.state.d.next = BridgeState::Header;
                        self.header_bytes_left.d.next = self.read_register_bytes.val();
                    } else if self.received.val() == self.write_register.val() {
                        self.state.d.next = BridgeState::Header;
                        self.header_bytes_left.d.next = self.write_register_bytes.val();
                    } else if self.received.val() == self.network_request.val() {
                        self.state.d.next = BridgeState::Header;
                        self.header_bytes_left.d.next = self.network_request_bytes.val();
                    } else if self.received.val() == self.reset_command.val() {
                        self.state.d.next = BridgeState::Resetting;
                        self.reset_clocks_left.d.next = self.reset_clocks.val();
                    } else {
                        self.acknowledgement_valid.d.next = true;
                        self.acknowledgement.d.next =
                            self.refused.val() | (bit_cast::<16, 8>(self.received.val()) << 8);
                        self.acknowledgement_bytes.d.next = self.refusal_bytes.val();
                    }
                }
            }
            BridgeState::Header => {
                if self.taking_byte.val() {
                    self.header.d.next = (self.header.q.val() >> 8)
                        | (bit_cast::<HEADER_BITS, 8>(self.received.val())
                            << self.header_top.val());
                    self.header_bytes_left.d.next =
                        self.header_bytes_left.q.val() - self.one_8.val();
                    if self.header_bytes_left.q.val() == self.one_8.val() {
                        self.state.d.next = BridgeState::IssueRegister;
                        if self.opcode.q.val() == self.network_request.val() {
                            self.state.d.next = BridgeState::IssueRequest;
                            self.request_offered.d.next = true;
                        }
                    }
                } else if self.timed_out.val() {
                    self.state.d.next = BridgeState::Idle;
                }
            }
            BridgeState::IssueRegister => {
                if self.mmio_request_ready.val() {
                    self.state.d.next = BridgeState::Idle;
                    if self.mmio_request_write.val() {
                        self.acknowledgement_valid.d.next = true;
                        self.acknowledgement.d.next = self.register_written.val();
                        self.acknowledgement_bytes.d.next = self.one_4.val();
                    }
                }
            }
            BridgeState::IssueRequest => {
                // Worked out while the request is on offer, used once the core has it.
                self.beats_left.d.next = self.write_beats.val();
                self.carries_data.d.next =
                    self.request_write.val() && (self.write_beats.val() != self.zero_40.val());
                if !self.request_offered.q.val() {
                    self.state.d.next = BridgeState::Idle;
                }
                if !self.request_offered.q.val() && self.carries_data.q.val() {
                    self.state.d.next = BridgeState::Data;
                    self.beat_bytes_left.d.next = self.beat_bytes.val();
                    self.padding.d.next = false;
                    self.quiet_clocks.d.next = self.zero_32.val();
                }
            }
            BridgeState::Data => {
                if self.padding.q.val() || self.timed_out.val() {
                    self.padding.d.next = true;
                    self.beat.d.next = self.zero_beat.val();
                    self.state.d.next = BridgeState::Beat;
                    self.beat_offered.d.next = true;
                } else if self.taking_byte.val() {
                    self.beat.d.next = (self.beat.q.val() >> 8)
                        | (bit_cast::<BEAT_BITS, 8>(self.received.val()) << self.beat_top.val());
                    self.beat_bytes_left.d.next = self.beat_bytes_left.q.val() - self.one_4.val();
                    if self.beat_bytes_left.q.val() == self.one_4.val() {
                        self.state.d.next = BridgeState::Beat;
                        self.beat_offered.d.next = true;
                    }
                }
            }
            BridgeState::Beat => {
                if !self.beat_offered.q.val() {
                    self.beats_left.d.next = self.beats_left.q.val() - self.one_40.val();
                    self.beat_bytes_left.d.next = self.beat_bytes.val();
                    self.state.d.next = BridgeState::Data;
                    if self.beats_left.q.val() == self.one_40.val() {
                        self.state.d.next = BridgeState::Idle;
                    }
                }
            }
            BridgeState::Resetting => {
                self.reset_clocks_left.d.next = self.reset_clocks_left.q.val() - self.one_8.val();
                if self.reset_clocks_left.q.val() == self.one_8.val() {
                    self.state.d.next = BridgeState::Idle;
                    self.acknowledgement_valid.d.next = true;
                    self.acknowledgement.d.next = self.reset_done.val();
                    self.acknowledgement_bytes.d.next = self.one_4.val();
                }
            }
            _ => {
                self.state.d.next = BridgeState::Idle;
            }
        }

        if self.reset.val() {
            self.holding_core_in_reset.d.next = true;
            self.state.d.next = BridgeState::Idle;
            self.request_offered.d.next = false;
            self.beat_offered.d.next = false;
            self.acknowledgement_valid.d.next = false;
            self.reply_bytes_left.d.next = self.zero_4.val();
        }
    }
}
