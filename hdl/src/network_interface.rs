//! The network interface (NI), `npmu_ni`: the command engine in front of the protection
//! core, behind the ports a board wrapper connects to its host link and memory.
//!
//! * **MMIO target** (BAR0): `mmio_request_*` (valid/ready; write, 16-bit byte address,
//!   64-bit data) and `mmio_response_*` (valid/ready; one 64-bit answer per read, in
//!   order). The register windows of the queues that exist (0x1000 + 0x100 q) go to the
//!   queue bank, every other offset to the core.
//! * **DMA master**: `dma_read_request_*` (valid/ready; tag, 64-bit IOVA, length in bytes,
//!   never crossing a 4 KiB page) and `dma_read_completion_*` (valid, always ready; tag,
//!   data beats with bytes in the lanes of their addresses, `last`, or one beat with
//!   `error` for a refused read). Completions of one tag come in one burst; bursts of
//!   different tags may come in any order. `dma_write_*` (valid/ready; each beat repeats the
//!   request's IOVA and length, carries data, byte enables and `last`) and
//!   `dma_write_response_*` (valid/ready; one per write request, in order, `error` if the
//!   host side refused it).
//! * **Interrupts**: `interrupt_*` (valid/ready; one message per interrupt, `vector` is the
//!   queue).
//! * **Persistent-memory port**: as the core's (`crate::protection_core`).
//! * `management_key`: the board's secret that opens the management lock.

use crate::engine::CommandEngine;
use crate::protection_core::ProtectionCore;
use npmu_abi::{
    Config, CONTEXT_ID_BITS, DMA_LENGTH_BITS, DMA_TAG_BITS, IOVA_BITS, MEMORY_ADDRESS_BITS,
    MMIO_ADDRESS_BITS,
};
use rust_hdl::prelude::*;

#[derive(LogicBlock)]
pub struct NetworkInterface<
    const DATA_BITS: usize,
    const STROBE_BITS: usize,
    const CONTEXT_TABLE_BITS: usize,
    const ENTRY_TABLE_BITS: usize,
    const QUEUES: usize,
    const READ_SLOTS: usize,
    const FETCH_BUFFER_BITS: usize,
    const READ_BUFFER_BITS: usize,
    const DEPTH_BITS: usize,
> {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, bool>,
    pub management_key: Signal<In, Bits<64>>,

    pub mmio_request_valid: Signal<In, bool>,
    pub mmio_request_ready: Signal<Out, bool>,
    pub mmio_request_write: Signal<In, bool>,
    pub mmio_request_address: Signal<In, Bits<MMIO_ADDRESS_BITS>>,
    pub mmio_request_write_data: Signal<In, Bits<64>>,
    pub mmio_response_valid: Signal<Out, bool>,
    pub mmio_response_ready: Signal<In, bool>,
    pub mmio_response_data: Signal<Out, Bits<64>>,

    pub dma_read_request_valid: Signal<Out, bool>,
    pub dma_read_request_ready: Signal<In, bool>,
    pub dma_read_request_tag: Signal<Out, Bits<DMA_TAG_BITS>>,
    pub dma_read_request_address: Signal<Out, Bits<IOVA_BITS>>,
    pub dma_read_request_length: Signal<Out, Bits<DMA_LENGTH_BITS>>,
    pub dma_read_completion_valid: Signal<In, bool>,
    pub dma_read_completion_ready: Signal<Out, bool>,
    pub dma_read_completion_tag: Signal<In, Bits<DMA_TAG_BITS>>,
    pub dma_read_completion_data: Signal<In, Bits<DATA_BITS>>,
    pub dma_read_completion_last: Signal<In, bool>,
    pub dma_read_completion_error: Signal<In, bool>,
    pub dma_write_valid: Signal<Out, bool>,
    pub dma_write_ready: Signal<In, bool>,
    pub dma_write_address: Signal<Out, Bits<IOVA_BITS>>,
    pub dma_write_length: Signal<Out, Bits<DMA_LENGTH_BITS>>,
    pub dma_write_data: Signal<Out, Bits<DATA_BITS>>,
    pub dma_write_byte_enable: Signal<Out, Bits<STROBE_BITS>>,
    pub dma_write_last: Signal<Out, bool>,
    pub dma_write_response_valid: Signal<In, bool>,
    pub dma_write_response_ready: Signal<Out, bool>,
    pub dma_write_response_error: Signal<In, bool>,

    pub interrupt_valid: Signal<Out, bool>,
    pub interrupt_ready: Signal<In, bool>,
    pub interrupt_vector: Signal<Out, Bits<8>>,

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

    core: ProtectionCore<DATA_BITS, STROBE_BITS, CONTEXT_TABLE_BITS, ENTRY_TABLE_BITS>,
    engine: CommandEngine<
        DATA_BITS,
        STROBE_BITS,
        QUEUES,
        READ_SLOTS,
        FETCH_BUFFER_BITS,
        READ_BUFFER_BITS,
        DEPTH_BITS,
    >,
    /// An answer to a read of a queue register, waiting to be taken.
    queue_answer_valid: DFF<bool>,
    queue_answer: DFF<Bits<64>>,
    taking: Signal<Local, bool>,
}

impl<
        const DATA_BITS: usize,
        const STROBE_BITS: usize,
        const CONTEXT_TABLE_BITS: usize,
        const ENTRY_TABLE_BITS: usize,
        const QUEUES: usize,
        const READ_SLOTS: usize,
        const FETCH_BUFFER_BITS: usize,
        const READ_BUFFER_BITS: usize,
        const DEPTH_BITS: usize,
    >
    NetworkInterface<
        DATA_BITS,
        STROBE_BITS,
        CONTEXT_TABLE_BITS,
        ENTRY_TABLE_BITS,
        QUEUES,
        READ_SLOTS,
        FETCH_BUFFER_BITS,
        READ_BUFFER_BITS,
        DEPTH_BITS,
    >
{
    pub fn new(config: &Config) -> Self {
        Self {
            clock: Default::default(),
            reset: Default::default(),
            management_key: Default::default(),
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
            dma_read_completion_ready: Default::default(),
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
            core: ProtectionCore::new(config, config.queues),
            engine: CommandEngine::new(config),
            queue_answer_valid: Default::default(),
            queue_answer: Default::default(),
            taking: Default::default(),
        }
    }
}

impl<
        const DATA_BITS: usize,
        const STROBE_BITS: usize,
        const CONTEXT_TABLE_BITS: usize,
        const ENTRY_TABLE_BITS: usize,
        const QUEUES: usize,
        const READ_SLOTS: usize,
        const FETCH_BUFFER_BITS: usize,
        const READ_BUFFER_BITS: usize,
        const DEPTH_BITS: usize,
    > Logic
    for NetworkInterface<
        DATA_BITS,
        STROBE_BITS,
        CONTEXT_TABLE_BITS,
        ENTRY_TABLE_BITS,
        QUEUES,
        READ_SLOTS,
        FETCH_BUFFER_BITS,
        READ_BUFFER_BITS,
        DEPTH_BITS,
    >
{
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, queue_answer_valid, queue_answer);
        clock!(self, clock, core, engine);
        self.core.reset.next = self.reset.val();
        self.engine.reset.next = self.reset.val();
        self.core.management_key.next = self.management_key.val();
        self.engine.unlocked.next = self.core.lock_open.val();
        self.core.queue_write_refused.next = self.engine.locked_write.val();

        // Register accesses: queue registers answered here, the rest by the core; one
        // read in flight at a time either way.
        self.engine.mmio_address.next = self.mmio_request_address.val();
        self.engine.mmio_write_data.next = self.mmio_request_write_data.val();
        self.mmio_request_ready.next =
            self.core.mmio_request_ready.val() && !self.queue_answer_valid.q.val();
        self.core.mmio_request_valid.next = self.mmio_request_valid.val()
            && !self.engine.mmio_hit.val()
            && !self.queue_answer_valid.q.val();
        self.core.mmio_request_write.next = self.mmio_request_write.val();
        self.core.mmio_request_address.next = self.mmio_request_address.val();
        self.core.mmio_request_write_data.next = self.mmio_request_write_data.val();
        self.taking.next = self.mmio_request_valid.val()
            && self.mmio_request_ready.val()
            && self.engine.mmio_hit.val();
        self.engine.mmio_write.next = self.taking.val() && self.mmio_request_write.val();
        if self.taking.val() && !self.mmio_request_write.val() {
            self.queue_answer_valid.d.next = true;
            self.queue_answer.d.next = self.engine.mmio_read_data.val();
        }
        if self.queue_answer_valid.q.val() && self.mmio_response_ready.val() {
            self.queue_answer_valid.d.next = false;
        }
        self.mmio_response_valid.next =
            self.core.mmio_response_valid.val() || self.queue_answer_valid.q.val();
        self.mmio_response_data.next = self.core.mmio_response_data.val();
        if self.queue_answer_valid.q.val() {
            self.mmio_response_data.next = self.queue_answer.q.val();
        }
        self.core.mmio_response_ready.next = self.mmio_response_ready.val();

        // The engine drives the core's request port.
        self.core.request_valid.next = self.engine.core_request_valid.val();
        self.engine.core_request_ready.next = self.core.request_ready.val();
        self.core.request_write.next = self.engine.core_request_write.val();
        self.core.request_context.next = self.engine.core_request_context.val();
        self.core.request_key.next = self.engine.core_request_key.val();
        self.core.request_initiator.next = self.engine.core_request_initiator.val();
        self.core.request_address.next = self.engine.core_request_address.val();
        self.core.request_length.next = self.engine.core_request_length.val();
        self.core.write_data_valid.next = self.engine.core_write_data_valid.val();
        self.engine.core_write_data_ready.next = self.core.write_data_ready.val();
        self.core.write_data.next = self.engine.core_write_data.val();
        self.core.write_data_enable.next = self.engine.core_write_data_enable.val();
        self.engine.core_response_valid.next = self.core.response_valid.val();
        self.core.response_ready.next = self.engine.core_response_ready.val();
        self.engine.core_response_status.next = self.core.response_status.val();
        self.engine.core_response_data.next = self.core.response_data.val();
        self.engine.core_response_last.next = self.core.response_last.val();

        // Host link.
        self.dma_read_request_valid.next = self.engine.dma_read_request_valid.val();
        self.engine.dma_read_request_ready.next = self.dma_read_request_ready.val();
        self.dma_read_request_tag.next = self.engine.dma_read_request_tag.val();
        self.dma_read_request_address.next = self.engine.dma_read_request_address.val();
        self.dma_read_request_length.next = self.engine.dma_read_request_length.val();
        self.engine.dma_read_completion_valid.next = self.dma_read_completion_valid.val();
        self.dma_read_completion_ready.next = self.engine.dma_read_completion_ready.val();
        self.engine.dma_read_completion_tag.next = self.dma_read_completion_tag.val();
        self.engine.dma_read_completion_data.next = self.dma_read_completion_data.val();
        self.engine.dma_read_completion_last.next = self.dma_read_completion_last.val();
        self.engine.dma_read_completion_error.next = self.dma_read_completion_error.val();
        self.dma_write_valid.next = self.engine.dma_write_valid.val();
        self.engine.dma_write_ready.next = self.dma_write_ready.val();
        self.dma_write_address.next = self.engine.dma_write_address.val();
        self.dma_write_length.next = self.engine.dma_write_length.val();
        self.dma_write_data.next = self.engine.dma_write_data.val();
        self.dma_write_byte_enable.next = self.engine.dma_write_byte_enable.val();
        self.dma_write_last.next = self.engine.dma_write_last.val();
        self.engine.dma_write_response_valid.next = self.dma_write_response_valid.val();
        self.dma_write_response_ready.next = self.engine.dma_write_response_ready.val();
        self.engine.dma_write_response_error.next = self.dma_write_response_error.val();
        self.interrupt_valid.next = self.engine.interrupt_valid.val();
        self.engine.interrupt_ready.next = self.interrupt_ready.val();
        self.interrupt_vector.next = self.engine.interrupt_vector.val();

        // Persistent memory.
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

        if self.reset.val() {
            self.queue_answer_valid.d.next = false;
        }
    }
}

/// The NI of a named configuration, every parameter taken from it.
macro_rules! network_interface_of {
    ($config:expr) => {
        NetworkInterface<
            { $config.data_bits() },
            { $config.data_bytes as usize },
            { $config.context_table_bits() },
            { $config.entry_table_bits() },
            { $config.queues as usize },
            { $config.dma_read_tags as usize },
            { $config.fetch_buffer_bits() },
            { $config.read_buffer_bits() },
            { $config.engine_queue_bits() },
        >
    };
}

/// The default configuration's NI.
pub type SimNetworkInterface = network_interface_of!(Config::SIM);
/// The iCE40 configuration's NI.
pub type Ice40NetworkInterface = network_interface_of!(Config::ICE40);
/// The LiteFury's NI.
pub type Artix7NetworkInterface = network_interface_of!(Config::ARTIX7);
