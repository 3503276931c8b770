//! The PCIe adapter: the NI's host ports (BAR0 target, DMA master, interrupts) on the
//! 7-series integrated block for PCI Express, through its 64-bit AXI4-Stream user interface
//! and configuration ports (Xilinx PG054; the same ports as `regymm/pcie_7x`, the open
//! wrapper openXC7 builds).
//!
//! [`receiver::PcieReceiver`] turns incoming packets into register accesses and read
//! completions, [`transmitter::PcieTransmitter`] turns the NI's DMA and the register reads'
//! answers into packets. Interrupts are MSI: the block sends the message when `cfg_interrupt`
//! is taken, with the NI's vector cut to the vectors the host enabled. An interrupt waits
//! until every write before it has left through the transmit stream. With MSI off the NI's
//! interrupts are dropped: legacy INTx needs a level the NI does not keep, and the driver
//! polls its queues anyway.
//!
//! DMA tags are the NI's, up to 63, so the host must have enabled extended tags (Linux does
//! when the device offers them). Completions always drain at one beat a clock, faster than
//! an x1 Gen2 link delivers them, so the block's receive buffer cannot overflow.

pub mod receiver;
pub mod tlp;
pub mod transmitter;

use crate::constants::constant;
use npmu_abi::{DMA_LENGTH_BITS, DMA_TAG_BITS, IOVA_BITS, MMIO_ADDRESS_BITS};
use receiver::PcieReceiver;
use rust_hdl::prelude::*;
use transmitter::PcieTransmitter;

/// The completion watchdog: 2^23 clocks, 67 ms at the x1 Gen2 user clock of 125 MHz, past
/// the 50 ms the PCIe specification's default completion timeout range reaches.
pub const COMPLETION_TIMEOUT_BITS: usize = 23;

#[derive(LogicBlock)]
pub struct PcieAdapter<const TIMEOUT_BITS: usize> {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, bool>,

    // The integrated block's side.
    pub rx_data: Signal<In, Bits<64>>,
    pub rx_last: Signal<In, bool>,
    pub rx_valid: Signal<In, bool>,
    pub rx_ready: Signal<Out, bool>,
    pub rx_bar0: Signal<In, bool>,
    pub rx_forwarded_error: Signal<In, bool>,
    pub rx_non_posted_ok: Signal<Out, bool>,
    pub tx_data: Signal<Out, Bits<64>>,
    pub tx_keep: Signal<Out, Bits<8>>,
    pub tx_last: Signal<Out, bool>,
    pub tx_valid: Signal<Out, bool>,
    pub tx_ready: Signal<In, bool>,
    /// Bus, device and function numbers (`cfg_bus_number`, `cfg_device_number`,
    /// `cfg_function_number`).
    pub function_id: Signal<In, Bits<16>>,
    /// `cfg_command[2]`.
    pub bus_master_enable: Signal<In, bool>,
    pub unsupported_posted: Signal<Out, bool>,
    pub msi_request: Signal<Out, bool>,
    pub msi_ready: Signal<In, bool>,
    pub msi_vector: Signal<Out, Bits<8>>,
    /// `cfg_interrupt_msienable`, and `cfg_interrupt_mmenable`: log2 of the vectors granted.
    pub msi_enable: Signal<In, bool>,
    pub msi_vectors_log2: Signal<In, Bits<3>>,

    // The NI's side.
    pub mmio_request_valid: Signal<Out, bool>,
    pub mmio_request_ready: Signal<In, bool>,
    pub mmio_request_write: Signal<Out, bool>,
    pub mmio_request_address: Signal<Out, Bits<MMIO_ADDRESS_BITS>>,
    pub mmio_request_write_data: Signal<Out, Bits<64>>,
    pub mmio_response_valid: Signal<In, bool>,
    pub mmio_response_ready: Signal<Out, bool>,
    pub mmio_response_data: Signal<In, Bits<64>>,
    pub dma_read_request_valid: Signal<In, bool>,
    pub dma_read_request_ready: Signal<Out, bool>,
    pub dma_read_request_tag: Signal<In, Bits<DMA_TAG_BITS>>,
    pub dma_read_request_address: Signal<In, Bits<IOVA_BITS>>,
    pub dma_read_request_length: Signal<In, Bits<DMA_LENGTH_BITS>>,
    pub dma_read_completion_valid: Signal<Out, bool>,
    pub dma_read_completion_tag: Signal<Out, Bits<DMA_TAG_BITS>>,
    pub dma_read_completion_data: Signal<Out, Bits<64>>,
    pub dma_read_completion_last: Signal<Out, bool>,
    pub dma_read_completion_error: Signal<Out, bool>,
    pub dma_write_valid: Signal<In, bool>,
    pub dma_write_ready: Signal<Out, bool>,
    pub dma_write_address: Signal<In, Bits<IOVA_BITS>>,
    pub dma_write_length: Signal<In, Bits<DMA_LENGTH_BITS>>,
    pub dma_write_data: Signal<In, Bits<64>>,
    pub dma_write_byte_enable: Signal<In, Bits<8>>,
    pub dma_write_last: Signal<In, bool>,
    pub dma_write_response_valid: Signal<Out, bool>,
    pub dma_write_response_ready: Signal<In, bool>,
    pub dma_write_response_error: Signal<Out, bool>,
    pub interrupt_valid: Signal<In, bool>,
    pub interrupt_ready: Signal<Out, bool>,
    pub interrupt_vector: Signal<In, Bits<8>>,

    receiver: PcieReceiver<TIMEOUT_BITS>,
    transmitter: PcieTransmitter,
    /// `cfg_interrupt` is up and stays up until the block takes it.
    requesting: DFF<bool>,
    vector_mask: Signal<Local, Bits<8>>,
    all_ones: Constant<Bits<8>>,
}

impl<const TIMEOUT_BITS: usize> Default for PcieAdapter<TIMEOUT_BITS> {
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
            tx_data: Default::default(),
            tx_keep: Default::default(),
            tx_last: Default::default(),
            tx_valid: Default::default(),
            tx_ready: Default::default(),
            function_id: Default::default(),
            bus_master_enable: Default::default(),
            unsupported_posted: Default::default(),
            msi_request: Default::default(),
            msi_ready: Default::default(),
            msi_vector: Default::default(),
            msi_enable: Default::default(),
            msi_vectors_log2: Default::default(),
            mmio_request_valid: Default::default(),
            mmio_request_ready: Default::default(),
            mmio_request_write: Default::default(),
            mmio_request_address: Default::default(),
            mmio_request_write_data: Default::default(),
            mmio_response_valid: Default::default(),
            mmio_response_ready: Default::default(),
            mmio_response_data: Default::default(),
            dma_read_request_valid: Default::default(),
            dma_read_request_ready: Default::default(),
            dma_read_request_tag: Default::default(),
            dma_read_request_address: Default::default(),
            dma_read_request_length: Default::default(),
            dma_read_completion_valid: Default::default(),
            dma_read_completion_tag: Default::default(),
            dma_read_completion_data: Default::default(),
            dma_read_completion_last: Default::default(),
            dma_read_completion_error: Default::default(),
            dma_write_valid: Default::default(),
            dma_write_ready: Default::default(),
            dma_write_address: Default::default(),
            dma_write_length: Default::default(),
            dma_write_data: Default::default(),
            dma_write_byte_enable: Default::default(),
            dma_write_last: Default::default(),
            dma_write_response_valid: Default::default(),
            dma_write_response_ready: Default::default(),
            dma_write_response_error: Default::default(),
            interrupt_valid: Default::default(),
            interrupt_ready: Default::default(),
            interrupt_vector: Default::default(),
            receiver: Default::default(),
            transmitter: Default::default(),
            requesting: Default::default(),
            vector_mask: Default::default(),
            all_ones: constant(0xff),
        }
    }
}

impl<const TIMEOUT_BITS: usize> Logic for PcieAdapter<TIMEOUT_BITS> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, requesting);
        self.receiver.clock.next = self.clock.val();
        self.receiver.reset.next = self.reset.val();
        self.transmitter.clock.next = self.clock.val();
        self.transmitter.reset.next = self.reset.val();

        self.receiver.rx_data.next = self.rx_data.val();
        self.receiver.rx_last.next = self.rx_last.val();
        self.receiver.rx_valid.next = self.rx_valid.val();
        self.rx_ready.next = self.receiver.rx_ready.val();
        self.receiver.rx_bar0.next = self.rx_bar0.val();
        self.receiver.rx_forwarded_error.next = self.rx_forwarded_error.val();
        self.rx_non_posted_ok.next = self.receiver.rx_non_posted_ok.val();
        self.unsupported_posted.next = self.receiver.unsupported_posted.val();
        self.mmio_request_valid.next = self.receiver.mmio_request_valid.val();
        self.receiver.mmio_request_ready.next = self.mmio_request_ready.val();
        self.mmio_request_write.next = self.receiver.mmio_request_write.val();
        self.mmio_request_address.next = self.receiver.mmio_request_address.val();
        self.mmio_request_write_data.next = self.receiver.mmio_request_write_data.val();
        self.dma_read_completion_valid.next = self.receiver.dma_read_completion_valid.val();
        self.dma_read_completion_tag.next = self.receiver.dma_read_completion_tag.val();
        self.dma_read_completion_data.next = self.receiver.dma_read_completion_data.val();
        self.dma_read_completion_last.next = self.receiver.dma_read_completion_last.val();
        self.dma_read_completion_error.next = self.receiver.dma_read_completion_error.val();

        self.tx_data.next = self.transmitter.tx_data.val();
        self.tx_keep.next = self.transmitter.tx_keep.val();
        self.tx_last.next = self.transmitter.tx_last.val();
        self.tx_valid.next = self.transmitter.tx_valid.val();
        self.transmitter.tx_ready.next = self.tx_ready.val();
        self.transmitter.function_id.next = self.function_id.val();
        self.transmitter.bus_master_enable.next = self.bus_master_enable.val();
        self.transmitter.mmio_response_valid.next = self.mmio_response_valid.val();
        self.mmio_response_ready.next = self.transmitter.mmio_response_ready.val();
        self.transmitter.mmio_response_data.next = self.mmio_response_data.val();
        self.transmitter.read_request_valid.next = self.dma_read_request_valid.val();
        self.dma_read_request_ready.next = self.transmitter.read_request_ready.val();
        self.transmitter.read_request_tag.next = self.dma_read_request_tag.val();
        self.transmitter.read_request_address.next = self.dma_read_request_address.val();
        self.transmitter.read_request_length.next = self.dma_read_request_length.val();
        self.transmitter.write_valid.next = self.dma_write_valid.val();
        self.dma_write_ready.next = self.transmitter.write_ready.val();
        self.transmitter.write_address.next = self.dma_write_address.val();
        self.transmitter.write_length.next = self.dma_write_length.val();
        self.transmitter.write_data.next = self.dma_write_data.val();
        self.transmitter.write_byte_enable.next = self.dma_write_byte_enable.val();
        self.transmitter.write_last.next = self.dma_write_last.val();
        self.dma_write_response_valid.next = self.transmitter.write_response_valid.val();
        self.transmitter.write_response_ready.next = self.dma_write_response_ready.val();
        self.dma_write_response_error.next = self.transmitter.write_response_error.val();

        // Between the two sides: the register read to answer, and the reads in flight.
        self.transmitter.completion_valid.next = self.receiver.completion_valid.val();
        self.transmitter.completion.next = self.receiver.completion.val();
        self.receiver.completion_ready.next = self.transmitter.completion_ready.val();
        self.receiver.read_issued.next = self.transmitter.read_issued.val();
        self.receiver.read_tag.next = self.dma_read_request_tag.val();
        self.receiver.read_refused_valid.next = self.transmitter.read_refused_valid.val();
        self.transmitter.read_refused_ready.next = self.receiver.read_refused_ready.val();

        // Interrupts: MSI after the writes before them, or dropped while MSI is off.
        self.vector_mask.next = !(self.all_ones.val() << self.msi_vectors_log2.val());
        self.msi_vector.next = self.interrupt_vector.val() & self.vector_mask.val();
        self.msi_request.next = self.requesting.q.val();
        if self.requesting.q.val() {
            self.requesting.d.next = !self.msi_ready.val();
        } else {
            self.requesting.d.next = self.interrupt_valid.val()
                && self.msi_enable.val()
                && self.transmitter.writes_idle.val();
        }
        self.interrupt_ready.next = (self.requesting.q.val() && self.msi_ready.val())
            || (!self.requesting.q.val() && self.interrupt_valid.val() && !self.msi_enable.val());
        if self.reset.val() {
            self.requesting.d.next = false;
        }
    }
}

#[cfg(test)]
mod tests;
