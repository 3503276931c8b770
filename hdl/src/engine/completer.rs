//! The completer: writes each descriptor's completion entry to its queue's completion ring,
//! in the order the descriptors were fetched.
//!
//! A READ's draft waits for the result of its DMA writes, so the host sees the entry only
//! after the data. The entry carries the tag, the status, the submission slot after the
//! descriptor's, the bytes done, the queue and the ring pass's phase, laid out as
//! `npmu_abi::queue::Completion`.

use crate::constants::constant;
use crate::engine::dma_writer::EntryWrite;
use crate::engine::retirer::Draft;
use crate::engine::write_stream::WriteResult;
use npmu_abi::queue::{completion_bits, DescriptorError, COMPLETION_BITS};
use rust_hdl::prelude::*;

#[derive(LogicBlock)]
pub struct Completer {
    pub draft_valid: Signal<In, bool>,
    pub draft_ready: Signal<Out, bool>,
    pub draft: Signal<In, Draft>,
    pub read_result_valid: Signal<In, bool>,
    pub read_result_ready: Signal<Out, bool>,
    pub read_result: Signal<In, WriteResult>,

    /// The queue bank's view of the draft's queue.
    pub queue: Signal<Out, Bits<4>>,
    pub ring_address: Signal<In, Bits<64>>,
    pub ring_phase: Signal<In, bool>,
    pub submission_mask: Signal<In, Bits<16>>,
    /// The entry went to the DMA writer.
    pub issued: Signal<Out, bool>,

    pub entry_valid: Signal<Out, bool>,
    pub entry_ready: Signal<In, bool>,
    pub entry: Signal<Out, EntryWrite>,

    ready_to_write: Signal<Local, bool>,
    status: Signal<Local, Bits<8>>,
    bytes_done: Signal<Local, Bits<32>>,
    submission_head: Signal<Local, Bits<16>>,

    tag_at: Constant<Bits<8>>,
    status_at: Constant<Bits<8>>,
    submission_head_at: Constant<Bits<8>>,
    bytes_done_at: Constant<Bits<8>>,
    queue_at: Constant<Bits<8>>,
    phase_at: Constant<Bits<8>>,
    dma_fault: Constant<Bits<8>>,
    one_16: Constant<Bits<16>>,
}

impl Completer {
    pub fn new() -> Self {
        Self {
            draft_valid: Default::default(),
            draft_ready: Default::default(),
            draft: Default::default(),
            read_result_valid: Default::default(),
            read_result_ready: Default::default(),
            read_result: Default::default(),
            queue: Default::default(),
            ring_address: Default::default(),
            ring_phase: Default::default(),
            submission_mask: Default::default(),
            issued: Default::default(),
            entry_valid: Default::default(),
            entry_ready: Default::default(),
            entry: Default::default(),
            ready_to_write: Default::default(),
            status: Default::default(),
            bytes_done: Default::default(),
            submission_head: Default::default(),
            tag_at: constant(completion_bits::TAG as u64),
            status_at: constant(completion_bits::STATUS as u64),
            submission_head_at: constant(completion_bits::SUBMISSION_HEAD as u64),
            bytes_done_at: constant(completion_bits::BYTES_DONE as u64),
            queue_at: constant(completion_bits::QUEUE as u64),
            phase_at: constant(completion_bits::PHASE as u64),
            dma_fault: Constant::new(u64::from(DescriptorError::DMA_CODE).into()),
            one_16: Constant::new(1u64.into()),
        }
    }
}

impl Default for Completer {
    fn default() -> Self {
        Self::new()
    }
}

impl Logic for Completer {
    #[hdl_gen]
    fn update(&mut self) {
        self.queue.next = self.draft.val().queue;
        self.ready_to_write.next = self.draft_valid.val()
            && (!self.draft.val().awaits_read || self.read_result_valid.val());
        self.status.next = self.draft.val().status;
        self.bytes_done.next = self.draft.val().bytes_done;
        if self.draft.val().awaits_read && self.read_result.val().dma_error {
            self.status.next = self.dma_fault.val();
            self.bytes_done.next = self.read_result.val().bytes_done;
        }
        self.submission_head.next =
            (self.draft.val().slot + self.one_16.val()) & self.submission_mask.val();

        self.entry_valid.next = self.ready_to_write.val();
        self.entry.next.address = self.ring_address.val();
        self.entry.next.queue = self.draft.val().queue;
        self.entry.next.entry = (bit_cast::<COMPLETION_BITS, 32>(self.draft.val().tag)
            << self.tag_at.val())
            | (bit_cast::<COMPLETION_BITS, 8>(self.status.val()) << self.status_at.val())
            | (bit_cast::<COMPLETION_BITS, 16>(self.submission_head.val())
                << self.submission_head_at.val())
            | (bit_cast::<COMPLETION_BITS, 32>(self.bytes_done.val()) << self.bytes_done_at.val())
            | (bit_cast::<COMPLETION_BITS, 4>(self.draft.val().queue) << self.queue_at.val())
            | (bit_cast::<COMPLETION_BITS, 1>(self.ring_phase.val().into()) << self.phase_at.val());
        self.issued.next = self.ready_to_write.val() && self.entry_ready.val();
        self.draft_ready.next = self.issued.val();
        self.read_result_ready.next = self.issued.val() && self.draft.val().awaits_read;
    }
}
