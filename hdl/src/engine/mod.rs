//! The command engine: host queues, descriptor fetch, DMA to and from host memory,
//! completions and interrupts, in front of the protection core.
//!
//! Descriptors flow through one in-order pipeline, whatever queue they come from:
//! fetched by the [`queue_bank::QueueBank`] through a [`dma_reader::DmaReader`], rebuilt by
//! the [`assembler::DescriptorAssembler`] (which passes an inline WRITE's payload on, fetched
//! with its descriptor), checked and set going by the [`issuer::Issuer`],
//! their data carried by the [`write_stream::WriteStream`] (host to persistent memory) and
//! the [`dma_writer::DmaWriter`] (persistent memory to host), answered by the
//! [`retirer::Retirer`] and the [`completer::Completer`]. So completions of a queue come in
//! submission order, and a read sees every earlier write of its queue.

pub mod assembler;
pub mod completer;
pub mod dma_reader;
pub mod dma_writer;
pub mod issuer;
pub mod queue_bank;
pub mod queue_windows;
pub mod realigner;
pub mod retirer;
pub mod write_stream;

use assembler::DescriptorAssembler;
use completer::Completer;
use dma_reader::DmaReader;
use dma_writer::DmaWriter;
use issuer::Issuer;
use npmu_abi::{
    Config, ADDRESS_BITS, CONTEXT_ID_BITS, DMA_LENGTH_BITS, DMA_TAG_BITS, INITIATOR_BITS,
    IOVA_BITS, KEY_BITS, LENGTH_BITS, MMIO_ADDRESS_BITS, STATUS_BITS,
};
use queue_bank::QueueBank;
use queue_windows::QueueWindows;
use retirer::Retirer;
use rust_hdl::prelude::*;
use write_stream::WriteStream;

/// Tags of descriptor fetches, from 32 up (tag bit 5 tells completions apart); data reads
/// use tags from 0.
pub const FETCH_TAG_BASE: u8 = 32;

#[derive(LogicBlock)]
pub struct CommandEngine<
    const DATA_BITS: usize,
    const STROBE_BITS: usize,
    const QUEUES: usize,
    const READ_SLOTS: usize,
    const FETCH_BUFFER_BITS: usize,
    const READ_BUFFER_BITS: usize,
    const DEPTH_BITS: usize,
> {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, bool>,

    pub mmio_write: Signal<In, bool>,
    pub mmio_address: Signal<In, Bits<MMIO_ADDRESS_BITS>>,
    pub mmio_write_data: Signal<In, Bits<64>>,
    pub mmio_read_data: Signal<Out, Bits<64>>,
    pub mmio_hit: Signal<Out, bool>,
    /// The management lock is open: the queues' windows take writes.
    pub unlocked: Signal<In, bool>,
    /// A window write the closed lock dropped, for REFUSED_WRITES.
    pub locked_write: Signal<Out, bool>,

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

    /// The protection core's request port, driven from here.
    pub core_request_valid: Signal<Out, bool>,
    pub core_request_ready: Signal<In, bool>,
    pub core_request_write: Signal<Out, bool>,
    pub core_request_context: Signal<Out, Bits<CONTEXT_ID_BITS>>,
    pub core_request_key: Signal<Out, Bits<KEY_BITS>>,
    pub core_request_initiator: Signal<Out, Bits<INITIATOR_BITS>>,
    pub core_request_address: Signal<Out, Bits<ADDRESS_BITS>>,
    pub core_request_length: Signal<Out, Bits<LENGTH_BITS>>,
    pub core_write_data_valid: Signal<Out, bool>,
    pub core_write_data_ready: Signal<In, bool>,
    pub core_write_data: Signal<Out, Bits<DATA_BITS>>,
    pub core_write_data_enable: Signal<Out, Bits<STROBE_BITS>>,
    pub core_response_valid: Signal<In, bool>,
    pub core_response_ready: Signal<Out, bool>,
    pub core_response_status: Signal<In, Bits<STATUS_BITS>>,
    pub core_response_data: Signal<In, Bits<DATA_BITS>>,
    pub core_response_last: Signal<In, bool>,

    queues: QueueBank<QUEUES>,
    windows: QueueWindows<QUEUES>,
    fetcher: DmaReader<DATA_BITS, QUEUES, FETCH_BUFFER_BITS>,
    assembler: DescriptorAssembler<DATA_BITS, QUEUES>,
    issuer: Issuer<DATA_BITS, DEPTH_BITS>,
    reader: DmaReader<DATA_BITS, READ_SLOTS, READ_BUFFER_BITS>,
    write_stream: WriteStream<DATA_BITS, STROBE_BITS, DEPTH_BITS>,
    retirer: Retirer<DATA_BITS, DEPTH_BITS>,
    writer: DmaWriter<DATA_BITS, STROBE_BITS, DEPTH_BITS>,
    completer: Completer,

    /// A data read was offered and not taken: it keeps the port.
    data_read_offered: DFF<bool>,
    fetching: Signal<Local, bool>,
    fetcher_chosen: Signal<Local, bool>,
    for_fetcher: Signal<Local, bool>,
    fetch_tag_bit: Constant<Bits<32>>,
}

impl<
        const DATA_BITS: usize,
        const STROBE_BITS: usize,
        const QUEUES: usize,
        const READ_SLOTS: usize,
        const FETCH_BUFFER_BITS: usize,
        const READ_BUFFER_BITS: usize,
        const DEPTH_BITS: usize,
    >
    CommandEngine<
        DATA_BITS,
        STROBE_BITS,
        QUEUES,
        READ_SLOTS,
        FETCH_BUFFER_BITS,
        READ_BUFFER_BITS,
        DEPTH_BITS,
    >
{
    pub fn new(config: &Config) -> Self {
        // The parameters are derived from the configuration (`network_interface_of!`).
        assert_eq!(config.queues as usize, QUEUES);
        assert_eq!(config.dma_read_tags as usize, READ_SLOTS);
        assert_eq!(config.fetch_buffer_bits(), FETCH_BUFFER_BITS);
        assert_eq!(config.read_buffer_bits(), READ_BUFFER_BITS);
        assert_eq!(config.engine_queue_bits(), DEPTH_BITS);
        Self {
            clock: Default::default(),
            reset: Default::default(),
            mmio_write: Default::default(),
            mmio_address: Default::default(),
            mmio_write_data: Default::default(),
            mmio_read_data: Default::default(),
            mmio_hit: Default::default(),
            unlocked: Default::default(),
            locked_write: Default::default(),
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
            core_request_valid: Default::default(),
            core_request_ready: Default::default(),
            core_request_write: Default::default(),
            core_request_context: Default::default(),
            core_request_key: Default::default(),
            core_request_initiator: Default::default(),
            core_request_address: Default::default(),
            core_request_length: Default::default(),
            core_write_data_valid: Default::default(),
            core_write_data_ready: Default::default(),
            core_write_data: Default::default(),
            core_write_data_enable: Default::default(),
            core_response_valid: Default::default(),
            core_response_ready: Default::default(),
            core_response_status: Default::default(),
            core_response_data: Default::default(),
            core_response_last: Default::default(),
            queues: QueueBank::new(config),
            windows: QueueWindows::new(),
            fetcher: DmaReader::new(FETCH_TAG_BASE),
            assembler: DescriptorAssembler::new(),
            issuer: Issuer::new(config),
            reader: DmaReader::new(0),
            write_stream: WriteStream::new(),
            retirer: Retirer::new(),
            writer: DmaWriter::new(config),
            completer: Completer::new(),
            data_read_offered: Default::default(),
            fetching: Default::default(),
            fetcher_chosen: Default::default(),
            for_fetcher: Default::default(),
            fetch_tag_bit: Constant::new(u64::from(FETCH_TAG_BASE.trailing_zeros()).into()),
        }
    }
}

impl<
        const DATA_BITS: usize,
        const STROBE_BITS: usize,
        const QUEUES: usize,
        const READ_SLOTS: usize,
        const FETCH_BUFFER_BITS: usize,
        const READ_BUFFER_BITS: usize,
        const DEPTH_BITS: usize,
    > Logic
    for CommandEngine<
        DATA_BITS,
        STROBE_BITS,
        QUEUES,
        READ_SLOTS,
        FETCH_BUFFER_BITS,
        READ_BUFFER_BITS,
        DEPTH_BITS,
    >
{
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, data_read_offered);
        clock!(
            self,
            clock,
            queues,
            windows,
            fetcher,
            assembler,
            issuer,
            reader,
            write_stream,
            retirer,
            writer
        );
        self.queues.reset.next = self.reset.val();
        self.windows.reset.next = self.reset.val();
        self.fetcher.reset.next = self.reset.val();
        self.assembler.reset.next = self.reset.val();
        self.issuer.reset.next = self.reset.val();
        self.reader.reset.next = self.reset.val();
        self.write_stream.reset.next = self.reset.val();
        self.retirer.reset.next = self.reset.val();
        self.writer.reset.next = self.reset.val();

        // Queue registers.
        self.queues.mmio_write.next = self.mmio_write.val();
        self.queues.mmio_address.next = self.mmio_address.val();
        self.queues.mmio_write_data.next = self.mmio_write_data.val();
        self.mmio_read_data.next = self.queues.mmio_read_data.val();
        if self.queues.mmio_hit.val() {
            self.mmio_read_data.next =
                self.queues.mmio_read_data.val() | self.windows.read_data.val();
        }
        self.mmio_hit.next = self.queues.mmio_hit.val();

        // Host-memory windows: written through the bank's decoding, checked on enabling,
        // looked up for each descriptor the issuer checks.
        self.windows.writing.next = self.queues.writing.val();
        self.windows.target.next = self.queues.target.val();
        self.windows.register.next = self.queues.register.val();
        self.windows.write_data.next = self.mmio_write_data.val();
        self.windows.unlocked.next = self.unlocked.val();
        self.windows.target_in_use.next = self.queues.target_in_use.val();
        self.windows.target_sq_base.next = self.queues.target_sq_base.val();
        self.windows.target_sq_entries.next = self.queues.target_sq_entries.val();
        self.windows.target_cq_base.next = self.queues.target_cq_base.val();
        self.windows.target_cq_entries.next = self.queues.target_cq_entries.val();
        self.queues.window_write_refused.next = self.windows.in_use_write.val();
        self.queues.rings_inside_window.next = self.windows.target_rings_inside.val();
        self.locked_write.next = self.windows.locked_write.val();
        self.windows.lookup_queue.next = self.assembler.descriptor_queue.val();
        self.issuer.window_base.next = self.windows.lookup_base.val();
        self.issuer.window_bytes.next = self.windows.lookup_bytes.val();

        // Descriptor fetch: the assembler learns of a batch as its read is issued.
        self.fetcher.request_valid.next =
            self.queues.fetch_valid.val() && self.assembler.batch_ready.val();
        self.fetcher.request_address.next = self.queues.fetch_address.val();
        self.fetcher.request_length.next = self.queues.fetch_length.val();
        self.queues.fetch_ready.next =
            self.fetcher.request_ready.val() && self.assembler.batch_ready.val();
        self.fetching.next = self.queues.fetch_valid.val() && self.queues.fetch_ready.val();
        self.assembler.batch_valid.next = self.fetching.val();
        self.assembler.batch.next.queue = self.queues.fetch_queue.val();
        self.assembler.batch.next.slot = self.queues.fetch_slot.val();
        self.assembler.batch.next.count = self.queues.fetch_count.val();
        self.assembler.batch.next.address = self.queues.fetch_address.val();
        self.assembler.batch.next.published_after = self.queues.fetch_published_after.val();
        self.assembler.batch.next.ring_after = self.queues.fetch_ring_after.val();
        self.assembler.restart.next = self.queues.restarted.val();
        self.assembler.restart_queue.next = self.queues.restarted_queue.val();
        self.assembler.data_valid.next = self.fetcher.data_valid.val();
        self.assembler.data.next = self.fetcher.data.val();
        self.assembler.data_error.next = self.fetcher.data_error.val();
        self.fetcher.data_ready.next = self.assembler.data_ready.val();
        self.queues.slots_returned.next = self.assembler.slots_returned.val();
        self.queues.slots_returned_queue.next = self.assembler.slots_returned_queue.val();
        self.queues.slots_returned_count.next = self.assembler.slots_returned_count.val();
        self.queues.slots_returned_failed.next = self.assembler.slots_returned_failed.val();

        // DMA reads: descriptor fetches first, unless a data read is already on offer;
        // completions go by tag.
        self.fetcher_chosen.next =
            self.fetcher.dma_request_valid.val() && !self.data_read_offered.q.val();
        self.dma_read_request_valid.next =
            self.fetcher.dma_request_valid.val() || self.reader.dma_request_valid.val();
        self.dma_read_request_tag.next = self.reader.dma_request_tag.val();
        self.dma_read_request_address.next = self.reader.dma_request_address.val();
        self.dma_read_request_length.next = self.reader.dma_request_length.val();
        if self.fetcher_chosen.val() {
            self.dma_read_request_tag.next = self.fetcher.dma_request_tag.val();
            self.dma_read_request_address.next = self.fetcher.dma_request_address.val();
            self.dma_read_request_length.next = self.fetcher.dma_request_length.val();
        }
        self.fetcher.dma_request_ready.next =
            self.dma_read_request_ready.val() && self.fetcher_chosen.val();
        self.reader.dma_request_ready.next =
            self.dma_read_request_ready.val() && !self.fetcher_chosen.val();
        self.data_read_offered.d.next = !self.fetcher_chosen.val()
            && self.reader.dma_request_valid.val()
            && !self.dma_read_request_ready.val();
        self.dma_read_completion_ready.next = true;
        self.for_fetcher.next = self
            .dma_read_completion_tag
            .val()
            .get_bit(self.fetch_tag_bit.val().index());
        self.fetcher.completion_valid.next =
            self.dma_read_completion_valid.val() && self.for_fetcher.val();
        self.reader.completion_valid.next =
            self.dma_read_completion_valid.val() && !self.for_fetcher.val();
        self.fetcher.completion_tag.next = self.dma_read_completion_tag.val();
        self.reader.completion_tag.next = self.dma_read_completion_tag.val();
        self.fetcher.completion_data.next = self.dma_read_completion_data.val();
        self.reader.completion_data.next = self.dma_read_completion_data.val();
        self.fetcher.completion_last.next = self.dma_read_completion_last.val();
        self.reader.completion_last.next = self.dma_read_completion_last.val();
        self.fetcher.completion_error.next = self.dma_read_completion_error.val();
        self.reader.completion_error.next = self.dma_read_completion_error.val();

        // Descriptors to the issuer, which drives the core and the host-data reads.
        self.issuer.descriptor_valid.next = self.assembler.descriptor_valid.val();
        self.issuer.descriptor.next = self.assembler.descriptor.val();
        self.issuer.descriptor_queue.next = self.assembler.descriptor_queue.val();
        self.issuer.descriptor_slot.next = self.assembler.descriptor_slot.val();
        self.issuer.descriptor_payload.next = self.assembler.descriptor_payload.val();
        self.assembler.payload_wanted.next = self.issuer.payload_wanted.val();
        self.assembler.descriptor_ready.next = self.issuer.descriptor_ready.val();
        self.reader.request_valid.next = self.issuer.read_valid.val();
        self.reader.request_address.next = self.issuer.read_address.val();
        self.reader.request_length.next = self.issuer.read_length.val();
        self.issuer.read_ready.next = self.reader.request_ready.val();
        self.core_request_valid.next = self.issuer.core_request_valid.val();
        self.core_request_write.next = self.issuer.core_request.val().write;
        self.core_request_context.next = self.issuer.core_request.val().context;
        self.core_request_key.next = self.issuer.core_request.val().key;
        self.core_request_initiator.next = self.issuer.core_request.val().initiator;
        self.core_request_address.next = self.issuer.core_request.val().address;
        self.core_request_length.next = self.issuer.core_request.val().length;
        self.issuer.core_request_ready.next = self.core_request_ready.val();

        // Host data to the core.
        self.write_stream.plan_valid.next = self.issuer.plan_valid.val();
        self.write_stream.plan.next = self.issuer.plan.val();
        self.issuer.plan_ready.next = self.write_stream.plan_ready.val();
        self.write_stream.data_valid.next = self.reader.data_valid.val();
        self.write_stream.data.next = self.reader.data.val();
        self.write_stream.data_error.next = self.reader.data_error.val();
        self.reader.data_ready.next = self.write_stream.data_ready.val();
        self.write_stream.payload_valid.next = self.assembler.payload_valid.val();
        self.write_stream.payload_data.next = self.assembler.payload_data.val();
        self.write_stream.payload_error.next = self.assembler.payload_error.val();
        self.assembler.payload_ready.next = self.write_stream.payload_ready.val();
        self.core_write_data_valid.next = self.write_stream.write_data_valid.val();
        self.core_write_data.next = self.write_stream.write_data.val();
        self.core_write_data_enable.next = self.write_stream.write_data_enable.val();
        self.write_stream.write_data_ready.next = self.core_write_data_ready.val();

        // The core's answers to retirement.
        self.retirer.record_valid.next = self.issuer.retire_valid.val();
        self.retirer.record.next = self.issuer.retire.val();
        self.issuer.retire_ready.next = self.retirer.record_ready.val();
        self.retirer.response_valid.next = self.core_response_valid.val();
        self.retirer.response_status.next = self.core_response_status.val();
        self.retirer.response_data.next = self.core_response_data.val();
        self.retirer.response_last.next = self.core_response_last.val();
        self.core_response_ready.next = self.retirer.response_ready.val();
        self.retirer.write_result_valid.next = self.write_stream.result_valid.val();
        self.retirer.write_result.next = self.write_stream.result.val();
        self.write_stream.result_ready.next = self.retirer.write_result_ready.val();

        // READ data and completion entries to host memory.
        self.writer.plan_valid.next = self.retirer.read_plan_valid.val();
        self.writer.plan.next = self.retirer.read_plan.val();
        self.retirer.read_plan_ready.next = self.writer.plan_ready.val();
        self.writer.data_valid.next = self.retirer.read_data_valid.val();
        self.writer.data.next = self.retirer.read_data.val();
        self.retirer.read_data_ready.next = self.writer.data_ready.val();
        self.completer.draft_valid.next = self.retirer.draft_valid.val();
        self.completer.draft.next = self.retirer.draft.val();
        self.retirer.draft_ready.next = self.completer.draft_ready.val();
        self.completer.read_result_valid.next = self.writer.read_result_valid.val();
        self.completer.read_result.next = self.writer.read_result.val();
        self.writer.read_result_ready.next = self.completer.read_result_ready.val();
        self.queues.completion_queue.next = self.completer.queue.val();
        self.completer.ring_address.next = self.queues.completion_address.val();
        self.completer.ring_phase.next = self.queues.completion_phase.val();
        self.completer.submission_mask.next = self.queues.submission_mask.val();
        self.queues.completion_issued.next = self.completer.issued.val();
        self.writer.entry_valid.next = self.completer.entry_valid.val();
        self.writer.entry.next = self.completer.entry.val();
        self.completer.entry_ready.next = self.writer.entry_ready.val();
        self.queues.completion_acked.next = self.writer.entry_acked.val();
        self.queues.completion_acked_queue.next = self.writer.entry_acked_queue.val();
        self.queues.completion_acked_error.next = self.writer.entry_acked_error.val();

        self.dma_write_valid.next = self.writer.write_valid.val();
        self.dma_write_address.next = self.writer.write_address.val();
        self.dma_write_length.next = self.writer.write_length.val();
        self.dma_write_data.next = self.writer.write_data.val();
        self.dma_write_byte_enable.next = self.writer.write_byte_enable.val();
        self.dma_write_last.next = self.writer.write_last.val();
        self.writer.write_ready.next = self.dma_write_ready.val();
        self.writer.response_valid.next = self.dma_write_response_valid.val();
        self.writer.response_error.next = self.dma_write_response_error.val();
        self.dma_write_response_ready.next = self.writer.response_ready.val();

        self.interrupt_valid.next = self.queues.interrupt_valid.val();
        self.interrupt_vector.next = self.queues.interrupt_vector.val();
        self.queues.interrupt_ready.next = self.interrupt_ready.val();
    }
}
