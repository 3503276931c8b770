//! A board's logic behind a serial link, `npmu_board`: the protection core driven over a
//! UART by the serial bridge, its persistent-memory port left to the board wrapper (SPRAM
//! on an iCE40 UP5K, block RAM on an ECP5, a file in the simulator).
//!
//! The UART carries both roles a host plays towards an nPMU without PCIe: the manager
//! programming the tables through registers, and the remote initiator whose network
//! requests the core checks and translates. There is no command engine (no DMA over a
//! UART), so the `QUEUES` register reads zero. The line runs at
//! `clock / npmu_abi::bridge::CLOCKS_PER_BIT` baud: 3 Mbaud from a 24 MHz clock.

use crate::block_ram_fifo::BlockRamFifo;
use crate::protection_core::ProtectionCore;
use crate::serial_bridge::SerialBridge;
use crate::uart_receiver::UartReceiver;
use crate::uart_transmitter::UartTransmitter;
use npmu_abi::{Config, CONTEXT_ID_BITS, MEMORY_ADDRESS_BITS};
use rust_hdl::prelude::*;

#[derive(LogicBlock)]
pub struct SerialBoard<
    const DATA_BITS: usize,
    const STROBE_BITS: usize,
    const CONTEXT_TABLE_BITS: usize,
    const ENTRY_TABLE_BITS: usize,
    const LINE_CLOCKS: u64,
> {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, bool>,
    pub management_key: Signal<In, Bits<64>>,
    /// From the host (idle high).
    pub uart_receive: Signal<In, bool>,
    /// To the host (idle high).
    pub uart_transmit: Signal<Out, bool>,
    /// A received byte was lost (the bridge fell behind the line), until reset: for an LED.
    pub uart_overrun: Signal<Out, bool>,

    pub memory_request_valid: Signal<Out, bool>,
    pub memory_request_ready: Signal<In, bool>,
    pub memory_request_write: Signal<Out, bool>,
    pub memory_request_address: Signal<Out, Bits<MEMORY_ADDRESS_BITS>>,
    pub memory_request_write_data: Signal<Out, Bits<DATA_BITS>>,
    pub memory_request_byte_enable: Signal<Out, Bits<STROBE_BITS>>,
    pub memory_request_context: Signal<Out, Bits<CONTEXT_ID_BITS>>,
    pub memory_response_valid: Signal<In, bool>,
    pub memory_response_ready: Signal<Out, bool>,
    pub memory_response_data: Signal<In, Bits<DATA_BITS>>,

    receiver: UartReceiver<LINE_CLOCKS>,
    /// Bytes wait here while the core holds the bridge up: 512, one block RAM.
    received: BlockRamFifo<Bits<8>, 9>,
    bridge: SerialBridge<DATA_BITS, STROBE_BITS>,
    transmitter: UartTransmitter<LINE_CLOCKS>,
    core: ProtectionCore<DATA_BITS, STROBE_BITS, CONTEXT_TABLE_BITS, ENTRY_TABLE_BITS>,
}

impl<
        const DATA_BITS: usize,
        const STROBE_BITS: usize,
        const CONTEXT_TABLE_BITS: usize,
        const ENTRY_TABLE_BITS: usize,
        const LINE_CLOCKS: u64,
    > SerialBoard<DATA_BITS, STROBE_BITS, CONTEXT_TABLE_BITS, ENTRY_TABLE_BITS, LINE_CLOCKS>
{
    pub fn new(config: &Config) -> Self {
        Self {
            clock: Default::default(),
            reset: Default::default(),
            management_key: Default::default(),
            uart_receive: Default::default(),
            uart_transmit: Default::default(),
            uart_overrun: Default::default(),
            memory_request_valid: Default::default(),
            memory_request_ready: Default::default(),
            memory_request_write: Default::default(),
            memory_request_address: Default::default(),
            memory_request_write_data: Default::default(),
            memory_request_byte_enable: Default::default(),
            memory_request_context: Default::default(),
            memory_response_valid: Default::default(),
            memory_response_ready: Default::default(),
            memory_response_data: Default::default(),
            receiver: Default::default(),
            received: Default::default(),
            bridge: Default::default(),
            transmitter: Default::default(),
            core: ProtectionCore::new(config, 0),
        }
    }
}

impl<
        const DATA_BITS: usize,
        const STROBE_BITS: usize,
        const CONTEXT_TABLE_BITS: usize,
        const ENTRY_TABLE_BITS: usize,
        const LINE_CLOCKS: u64,
    > Logic
    for SerialBoard<DATA_BITS, STROBE_BITS, CONTEXT_TABLE_BITS, ENTRY_TABLE_BITS, LINE_CLOCKS>
{
    #[hdl_gen]
    fn update(&mut self) {
        clock!(self, clock, receiver, received, bridge, transmitter, core);
        self.receiver.reset.next = self.reset.val();
        self.received.reset.next = self.reset.val();
        self.bridge.reset.next = self.reset.val();
        self.transmitter.reset.next = self.reset.val();
        self.core.reset.next = self.bridge.core_reset.val();
        self.core.management_key.next = self.management_key.val();
        // No queues behind a serial link, so no queue window writes to refuse.
        self.core.queue_write_refused.next = false;

        self.receiver.line.next = self.uart_receive.val();
        self.received.push_valid.next = self.receiver.data_valid.val();
        self.received.push_data.next = self.receiver.data.val();
        self.receiver.data_ready.next = self.received.push_ready.val();
        self.bridge.received_valid.next = self.received.pop_valid.val();
        self.bridge.received.next = self.received.pop_data.val();
        self.received.pop_ready.next = self.bridge.received_ready.val();
        self.transmitter.data_valid.next = self.bridge.sent_valid.val();
        self.transmitter.data.next = self.bridge.sent.val();
        self.bridge.sent_ready.next = self.transmitter.data_ready.val();
        self.uart_transmit.next = self.transmitter.line.val();
        self.uart_overrun.next = self.receiver.overrun.val();

        self.core.mmio_request_valid.next = self.bridge.mmio_request_valid.val();
        self.bridge.mmio_request_ready.next = self.core.mmio_request_ready.val();
        self.core.mmio_request_write.next = self.bridge.mmio_request_write.val();
        self.core.mmio_request_address.next = self.bridge.mmio_request_address.val();
        self.core.mmio_request_write_data.next = self.bridge.mmio_request_write_data.val();
        self.bridge.mmio_response_valid.next = self.core.mmio_response_valid.val();
        self.core.mmio_response_ready.next = self.bridge.mmio_response_ready.val();
        self.bridge.mmio_response_data.next = self.core.mmio_response_data.val();
        self.core.request_valid.next = self.bridge.request_valid.val();
        self.bridge.request_ready.next = self.core.request_ready.val();
        self.core.request_write.next = self.bridge.request_write.val();
        self.core.request_context.next = self.bridge.request_context.val();
        self.core.request_key.next = self.bridge.request_key.val();
        self.core.request_initiator.next = self.bridge.request_initiator.val();
        self.core.request_address.next = self.bridge.request_address.val();
        self.core.request_length.next = self.bridge.request_length.val();
        self.core.write_data_valid.next = self.bridge.write_data_valid.val();
        self.bridge.write_data_ready.next = self.core.write_data_ready.val();
        self.core.write_data.next = self.bridge.write_data.val();
        self.core.write_data_enable.next = self.bridge.write_data_enable.val();
        self.bridge.response_valid.next = self.core.response_valid.val();
        self.core.response_ready.next = self.bridge.response_ready.val();
        self.bridge.response_status.next = self.core.response_status.val();
        self.bridge.response_data.next = self.core.response_data.val();
        self.bridge.response_last.next = self.core.response_last.val();

        self.memory_request_valid.next = self.core.memory_request_valid.val();
        self.core.memory_request_ready.next = self.memory_request_ready.val();
        self.memory_request_write.next = self.core.memory_request_write.val();
        self.memory_request_address.next = self.core.memory_request_address.val();
        self.memory_request_write_data.next = self.core.memory_request_write_data.val();
        self.memory_request_byte_enable.next = self.core.memory_request_byte_enable.val();
        self.memory_request_context.next = self.core.memory_request_context.val();
        self.core.memory_response_valid.next = self.memory_response_valid.val();
        self.memory_response_ready.next = self.core.memory_response_ready.val();
        self.core.memory_response_data.next = self.memory_response_data.val();
    }
}

/// The serial board of a named configuration and line speed.
macro_rules! serial_board_of {
    ($config:expr, $line_clocks:expr) => {
        SerialBoard<
            { $config.data_bits() },
            { $config.data_bytes as usize },
            { $config.context_table_bits() },
            { $config.entry_table_bits() },
            { $line_clocks },
        >
    };
}

/// Clocks a bit on the simulated boards' lines and the iCEBreaker's.
pub const FAST_LINE_CLOCKS: u64 = npmu_abi::bridge::CLOCKS_PER_BIT as u64;
/// Clocks a bit on the ULX3S's line: its FT231X tops out at 3 Mbaud.
pub const SLOW_LINE_CLOCKS: u64 = 100;

pub type SimSerialBoard = serial_board_of!(Config::SIM, FAST_LINE_CLOCKS);
pub type Ice40SerialBoard = serial_board_of!(Config::ICE40, FAST_LINE_CLOCKS);
pub type Ice40SlowLineSerialBoard = serial_board_of!(Config::ICE40, SLOW_LINE_CLOCKS);
