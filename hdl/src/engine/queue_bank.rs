//! The queue bank: every queue pair's registers, doorbells and pointers; which queue
//! fetches descriptors next; completion slots; interrupts with coalescing.
//!
//! Queues take turns, one a clock: a running queue with slots waiting fetches as many as fit
//! in one read (up to the ring's end and the read block's end) and as its completion ring
//! has room for, counting slots already in flight, so a full completion ring holds back
//! only its own queue. The bank knows slots, not descriptors: a slot is in flight until its
//! completion is issued or the assembler returns it (an inline payload's, or a fault's). The host's bad inputs are refused one by one: doorbells
//! beyond the ring or past the completions written, configuration writes while enabled,
//! doorbells while disabled, a configuration that is invalid when the queue is enabled, rings
//! not inside the queue's host-memory window then, and enabling while the queue still has
//! descriptors in flight. Each sets a sticky bit in the queue's status; the invalid
//! configuration, rings outside the window, and DMA faults on the rings, halt the queue
//! until it is enabled again. The windows themselves live in
//! [`super::queue_windows::QueueWindows`].

use crate::constants::offset;
use npmu_abi::queue::{COMPLETION_BYTES, DESCRIPTOR_BYTES, MAX_QUEUE_ENTRIES};
use npmu_abi::registers::{queue, queue_control, queue_status, QUEUES_OFFSET};
use npmu_abi::{Config, DMA_LENGTH_BITS, MMIO_ADDRESS_BITS};
use rust_hdl::prelude::*;

/// Error bits are kept as the status register's error field, shifted down.
const ERROR_SHIFT: usize = queue_status::ERRORS.shift;

#[derive(LogicBlock)]
pub struct QueueBank<const QUEUES: usize> {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, bool>,

    /// A register write taken this clock (any offset; the bank picks its own).
    pub mmio_write: Signal<In, bool>,
    pub mmio_address: Signal<In, Bits<MMIO_ADDRESS_BITS>>,
    pub mmio_write_data: Signal<In, Bits<64>>,
    /// What a read of `mmio_address` returns, if it is the bank's.
    pub mmio_read_data: Signal<Out, Bits<64>>,
    pub mmio_hit: Signal<Out, bool>,

    /// A batch of descriptors to fetch: `fetch_count` from slot `fetch_slot` of a queue;
    /// its slots and completion credits are already counted as taken.
    pub fetch_valid: Signal<Out, bool>,
    pub fetch_ready: Signal<In, bool>,
    pub fetch_address: Signal<Out, Bits<64>>,
    pub fetch_length: Signal<Out, Bits<DMA_LENGTH_BITS>>,
    pub fetch_queue: Signal<Out, Bits<4>>,
    pub fetch_slot: Signal<Out, Bits<16>>,
    pub fetch_count: Signal<Out, Bits<8>>,
    /// Slots the host had published past the batch, and slots to the ring's end past it:
    /// how far an inline payload may run beyond the batch.
    pub fetch_published_after: Signal<Out, Bits<16>>,
    pub fetch_ring_after: Signal<Out, Bits<16>>,

    /// A fetched batch is done with: `slots_returned_count` of its slots became no
    /// descriptor that will complete (inline payloads, and what a DMA fault dropped), and
    /// their completion credits come back; `slots_returned_failed` if its fetch met a fault.
    pub slots_returned: Signal<In, bool>,
    pub slots_returned_queue: Signal<In, Bits<4>>,
    pub slots_returned_count: Signal<In, Bits<8>>,
    pub slots_returned_failed: Signal<In, bool>,
    /// Queue `restarted_queue` was enabled afresh last clock (registered: the decoding
    /// shares a block with the fetch handshake).
    pub restarted: Signal<Out, bool>,
    pub restarted_queue: Signal<Out, Bits<4>>,

    /// Where `completion_queue`'s next completion goes, and its phase.
    pub completion_queue: Signal<In, Bits<4>>,
    pub completion_address: Signal<Out, Bits<64>>,
    pub completion_phase: Signal<Out, bool>,
    /// The queue's submission ring size less one, to wrap slot numbers.
    pub submission_mask: Signal<Out, Bits<16>>,
    /// That completion's write was issued.
    pub completion_issued: Signal<In, bool>,
    /// A completion's write was acknowledged.
    pub completion_acked: Signal<In, bool>,
    pub completion_acked_queue: Signal<In, Bits<4>>,
    pub completion_acked_error: Signal<In, bool>,

    /// An interrupt message for queue `interrupt_vector`.
    pub interrupt_valid: Signal<Out, bool>,
    pub interrupt_ready: Signal<In, bool>,
    pub interrupt_vector: Signal<Out, Bits<8>>,

    /// The register access decoded, and its queue's state, for the windows
    /// ([`super::queue_windows::QueueWindows`]): their write refused because the queue is
    /// in use, and whether the queue's rings lie inside its window.
    pub writing: Signal<Out, bool>,
    pub target: Signal<Out, Bits<4>>,
    pub register: Signal<Out, Bits<8>>,
    pub target_in_use: Signal<Out, bool>,
    pub target_sq_base: Signal<Out, Bits<64>>,
    pub target_sq_entries: Signal<Out, Bits<16>>,
    pub target_cq_base: Signal<Out, Bits<64>>,
    pub target_cq_entries: Signal<Out, Bits<16>>,
    pub window_write_refused: Signal<In, bool>,
    pub rings_inside_window: Signal<In, bool>,

    sq_base: [DFF<Bits<64>>; QUEUES],
    sq_entries: [DFF<Bits<16>>; QUEUES],
    sq_tail: [DFF<Bits<16>>; QUEUES],
    sq_head: [DFF<Bits<16>>; QUEUES],
    cq_base: [DFF<Bits<64>>; QUEUES],
    cq_entries: [DFF<Bits<16>>; QUEUES],
    cq_head: [DFF<Bits<16>>; QUEUES],
    cq_tail: [DFF<Bits<16>>; QUEUES],
    phase: [DFF<bool>; QUEUES],
    control: [DFF<Bits<32>>; QUEUES],
    errors: [DFF<Bits<8>>; QUEUES],
    /// Descriptors fetched whose completion is not yet issued: completion slots spoken for.
    in_flight: [DFF<Bits<16>>; QUEUES],
    /// Completion entries issued and not yet acknowledged by the host side. The queue is
    /// busy until both counts are 0: only then has everything it fetched landed.
    unacknowledged: [DFF<Bits<16>>; QUEUES],
    pending_interrupts: [DFF<Bits<8>>; QUEUES],
    interrupt_timer: [DFF<Bits<16>>; QUEUES],
    turn: DFF<Bits<4>>,
    // A fetch on offer, held unchanged until the reader takes it.
    offering: DFF<bool>,
    offer_address: DFF<Bits<64>>,
    offer_length: DFF<Bits<DMA_LENGTH_BITS>>,
    offer_queue: DFF<Bits<4>>,
    offer_slot: DFF<Bits<16>>,
    offer_count: DFF<Bits<8>>,
    offer_published_after: DFF<Bits<16>>,
    offer_ring_after: DFF<Bits<16>>,
    restarting: DFF<bool>,
    restarting_queue: DFF<Bits<4>>,

    // The queue a register access names.
    window: Signal<Local, bool>,
    target_enabled: Signal<Local, bool>,
    target_running: Signal<Local, bool>,
    target_busy: Signal<Local, bool>,
    /// An entries value the 16-bit register cannot hold.
    entries_too_wide: Signal<Local, bool>,
    target_errors: Signal<Local, Bits<8>>,
    target_sq_tail: Signal<Local, Bits<16>>,
    target_sq_head: Signal<Local, Bits<16>>,
    target_control: Signal<Local, Bits<32>>,
    target_cq_head: Signal<Local, Bits<16>>,
    target_cq_tail: Signal<Local, Bits<16>>,
    target_configuration_valid: Signal<Local, bool>,
    /// The errors enabling the target queue finds.
    enable_errors: Signal<Local, Bits<8>>,
    released: Signal<Local, Bits<16>>,
    written: Signal<Local, Bits<16>>,
    enabling: Signal<Local, bool>,
    takes_configuration: Signal<Local, bool>,
    takes_sq_tail: Signal<Local, bool>,
    takes_cq_head: Signal<Local, bool>,
    takes_control: Signal<Local, bool>,
    resets_queue: Signal<Local, bool>,
    new_errors: Signal<Local, Bits<8>>,
    read_value: Signal<Local, Bits<64>>,

    // The queue whose turn it is to fetch.
    turn_running: Signal<Local, bool>,
    turn_sq_base: Signal<Local, Bits<64>>,
    turn_sq_entries: Signal<Local, Bits<16>>,
    turn_sq_tail: Signal<Local, Bits<16>>,
    turn_sq_head: Signal<Local, Bits<16>>,
    turn_cq_entries: Signal<Local, Bits<16>>,
    turn_cq_head: Signal<Local, Bits<16>>,
    turn_cq_tail: Signal<Local, Bits<16>>,
    turn_in_flight: Signal<Local, Bits<16>>,
    waiting: Signal<Local, Bits<16>>,
    to_ring_end: Signal<Local, Bits<16>>,
    slot_address: Signal<Local, Bits<64>>,
    in_block: Signal<Local, Bits<16>>,
    completion_room: Signal<Local, Bits<16>>,
    credits: Signal<Local, Bits<16>>,
    batch: Signal<Local, Bits<16>>,
    fetching: Signal<Local, bool>,

    running: [Signal<Local, bool>; QUEUES],
    taken: [Signal<Local, Bits<16>>; QUEUES],
    returned: [Signal<Local, Bits<16>>; QUEUES],
    raised: [Signal<Local, Bits<8>>; QUEUES],
    acknowledged: [Signal<Local, bool>; QUEUES],
    /// This clock a completion entry of the queue went to the DMA writer, and one landed
    /// (refused or not).
    entry_issued: [Signal<Local, bool>; QUEUES],
    entry_landed: [Signal<Local, bool>; QUEUES],
    firing: [Signal<Local, bool>; QUEUES],
    completing_cq_base: Signal<Local, Bits<64>>,
    completing_cq_tail: Signal<Local, Bits<16>>,
    interrupting: Signal<Local, bool>,
    interrupt_queue: Signal<Local, Bits<4>>,
    interrupt_sent: Signal<Local, bool>,
    interrupt_offered: DFF<bool>,
    interrupt_offered_queue: DFF<Bits<4>>,

    queue_numbers: [Constant<Bits<4>>; QUEUES],
    last_queue: Constant<Bits<4>>,
    /// Bit q set for every queue the bank has: with all 16, `target <= last_queue` would be
    /// a comparison Verilator flags as constant.
    present_queues: Constant<Bits<16>>,
    window_tag: Constant<Bits<4>>,
    sq_base_register: Constant<Bits<8>>,
    sq_entries_register: Constant<Bits<8>>,
    sq_tail_register: Constant<Bits<8>>,
    sq_head_register: Constant<Bits<8>>,
    cq_base_register: Constant<Bits<8>>,
    cq_entries_register: Constant<Bits<8>>,
    cq_head_register: Constant<Bits<8>>,
    cq_tail_register: Constant<Bits<8>>,
    control_register: Constant<Bits<8>>,
    status_register: Constant<Bits<8>>,
    enable_bit: Constant<Bits<32>>,
    interrupt_enable_bit: Constant<Bits<32>>,
    coalesce_count_shift: Constant<Bits<32>>,
    coalesce_clocks_shift: Constant<Bits<32>>,
    control_mask: Constant<Bits<32>>,
    entries_limit: Constant<Bits<64>>,
    running_shift: Constant<Bits<8>>,
    busy_shift: Constant<Bits<8>>,
    error_shift: Constant<Bits<8>>,
    config_error: Constant<Bits<8>>,
    sq_doorbell_error: Constant<Bits<8>>,
    cq_doorbell_error: Constant<Bits<8>>,
    fetch_error: Constant<Bits<8>>,
    completion_error: Constant<Bits<8>>,
    refused_write: Constant<Bits<8>>,
    window_error: Constant<Bits<8>>,
    halting_errors: Constant<Bits<8>>,
    descriptor_mask: Constant<Bits<64>>,
    completion_mask: Constant<Bits<64>>,
    descriptor_shift: Constant<Bits<8>>,
    completion_shift: Constant<Bits<8>>,
    block_mask: Constant<Bits<16>>,
    block_bytes: Constant<Bits<16>>,
    max_entries: Constant<Bits<16>>,
    zero_8: Constant<Bits<8>>,
    one_8: Constant<Bits<8>>,
    all_8: Constant<Bits<8>>,
    zero_16: Constant<Bits<16>>,
    one_16: Constant<Bits<16>>,
    two_16: Constant<Bits<16>>,
    all_16: Constant<Bits<16>>,
    zero_32: Constant<Bits<32>>,
    zero_64: Constant<Bits<64>>,
    one_4: Constant<Bits<4>>,
    zero_4: Constant<Bits<4>>,
}

fn error_bit(field: npmu_abi::Field) -> Constant<Bits<8>> {
    Constant::new((field.mask() >> ERROR_SHIFT).into())
}

impl<const QUEUES: usize> QueueBank<QUEUES> {
    pub fn new(config: &Config) -> Self {
        assert_eq!(config.queues as usize, QUEUES);
        let block = u64::from(config.max_read_request_bytes);
        Self {
            clock: Default::default(),
            reset: Default::default(),
            mmio_write: Default::default(),
            mmio_address: Default::default(),
            mmio_write_data: Default::default(),
            mmio_read_data: Default::default(),
            mmio_hit: Default::default(),
            fetch_valid: Default::default(),
            fetch_ready: Default::default(),
            fetch_address: Default::default(),
            fetch_length: Default::default(),
            fetch_queue: Default::default(),
            fetch_slot: Default::default(),
            fetch_count: Default::default(),
            fetch_published_after: Default::default(),
            fetch_ring_after: Default::default(),
            slots_returned: Default::default(),
            slots_returned_queue: Default::default(),
            slots_returned_count: Default::default(),
            slots_returned_failed: Default::default(),
            restarted: Default::default(),
            restarted_queue: Default::default(),
            restarting: Default::default(),
            restarting_queue: Default::default(),
            completion_queue: Default::default(),
            completion_address: Default::default(),
            completion_phase: Default::default(),
            submission_mask: Default::default(),
            completion_issued: Default::default(),
            completion_acked: Default::default(),
            completion_acked_queue: Default::default(),
            completion_acked_error: Default::default(),
            interrupt_valid: Default::default(),
            interrupt_ready: Default::default(),
            interrupt_vector: Default::default(),
            writing: Default::default(),
            target: Default::default(),
            register: Default::default(),
            target_in_use: Default::default(),
            target_sq_base: Default::default(),
            target_sq_entries: Default::default(),
            target_cq_base: Default::default(),
            target_cq_entries: Default::default(),
            window_write_refused: Default::default(),
            rings_inside_window: Default::default(),
            sq_base: std::array::from_fn(|_| Default::default()),
            sq_entries: std::array::from_fn(|_| Default::default()),
            sq_tail: std::array::from_fn(|_| Default::default()),
            sq_head: std::array::from_fn(|_| Default::default()),
            cq_base: std::array::from_fn(|_| Default::default()),
            cq_entries: std::array::from_fn(|_| Default::default()),
            cq_head: std::array::from_fn(|_| Default::default()),
            cq_tail: std::array::from_fn(|_| Default::default()),
            phase: std::array::from_fn(|_| Default::default()),
            control: std::array::from_fn(|_| Default::default()),
            errors: std::array::from_fn(|_| Default::default()),
            in_flight: std::array::from_fn(|_| Default::default()),
            unacknowledged: std::array::from_fn(|_| Default::default()),
            pending_interrupts: std::array::from_fn(|_| Default::default()),
            interrupt_timer: std::array::from_fn(|_| Default::default()),
            turn: Default::default(),
            offering: Default::default(),
            offer_address: Default::default(),
            offer_length: Default::default(),
            offer_queue: Default::default(),
            offer_slot: Default::default(),
            offer_count: Default::default(),
            offer_published_after: Default::default(),
            offer_ring_after: Default::default(),
            window: Default::default(),
            target_enabled: Default::default(),
            target_running: Default::default(),
            target_busy: Default::default(),
            entries_too_wide: Default::default(),
            target_errors: Default::default(),
            target_sq_tail: Default::default(),
            target_sq_head: Default::default(),
            target_control: Default::default(),
            target_cq_head: Default::default(),
            target_cq_tail: Default::default(),
            target_configuration_valid: Default::default(),
            enable_errors: Default::default(),
            released: Default::default(),
            written: Default::default(),
            enabling: Default::default(),
            takes_configuration: Default::default(),
            takes_sq_tail: Default::default(),
            takes_cq_head: Default::default(),
            takes_control: Default::default(),
            resets_queue: Default::default(),
            new_errors: Default::default(),
            read_value: Default::default(),
            turn_running: Default::default(),
            turn_sq_base: Default::default(),
            turn_sq_entries: Default::default(),
            turn_sq_tail: Default::default(),
            turn_sq_head: Default::default(),
            turn_cq_entries: Default::default(),
            turn_cq_head: Default::default(),
            turn_cq_tail: Default::default(),
            turn_in_flight: Default::default(),
            waiting: Default::default(),
            to_ring_end: Default::default(),
            slot_address: Default::default(),
            in_block: Default::default(),
            completion_room: Default::default(),
            credits: Default::default(),
            batch: Default::default(),
            fetching: Default::default(),
            running: std::array::from_fn(|_| Default::default()),
            taken: std::array::from_fn(|_| Default::default()),
            returned: std::array::from_fn(|_| Default::default()),
            raised: std::array::from_fn(|_| Default::default()),
            acknowledged: std::array::from_fn(|_| Default::default()),
            entry_issued: std::array::from_fn(|_| Default::default()),
            entry_landed: std::array::from_fn(|_| Default::default()),
            firing: std::array::from_fn(|_| Default::default()),
            completing_cq_base: Default::default(),
            completing_cq_tail: Default::default(),
            interrupting: Default::default(),
            interrupt_queue: Default::default(),
            interrupt_sent: Default::default(),
            interrupt_offered: Default::default(),
            interrupt_offered_queue: Default::default(),
            queue_numbers: std::array::from_fn(|q| Constant::new((q as u64).into())),
            last_queue: Constant::new((QUEUES as u64 - 1).into()),
            present_queues: Constant::new(((1u64 << QUEUES) - 1).into()),
            window_tag: Constant::new(u64::from(QUEUES_OFFSET >> 12).into()),
            sq_base_register: offset(queue::SQ_BASE),
            sq_entries_register: offset(queue::SQ_ENTRIES),
            sq_tail_register: offset(queue::SQ_TAIL),
            sq_head_register: offset(queue::SQ_HEAD),
            cq_base_register: offset(queue::CQ_BASE),
            cq_entries_register: offset(queue::CQ_ENTRIES),
            cq_head_register: offset(queue::CQ_HEAD),
            cq_tail_register: offset(queue::CQ_TAIL),
            control_register: offset(queue::CONTROL),
            status_register: offset(queue::STATUS),
            enable_bit: Constant::new((queue_control::ENABLE.shift as u64).into()),
            interrupt_enable_bit: Constant::new(
                (queue_control::INTERRUPT_ENABLE.shift as u64).into(),
            ),
            coalesce_count_shift: Constant::new(
                (queue_control::COALESCE_COUNT.shift as u64).into(),
            ),
            coalesce_clocks_shift: Constant::new(
                (queue_control::COALESCE_CLOCKS.shift as u64).into(),
            ),
            entries_limit: Constant::new(((1u64 << queue::POINTER_BITS) - 1).into()),
            control_mask: Constant::new(queue_control::WRITABLE.into()),
            running_shift: Constant::new((queue_status::RUNNING.shift as u64).into()),
            busy_shift: Constant::new((queue_status::BUSY.shift as u64).into()),
            error_shift: Constant::new((ERROR_SHIFT as u64).into()),
            config_error: error_bit(queue_status::CONFIG_ERROR),
            sq_doorbell_error: error_bit(queue_status::SQ_DOORBELL_ERROR),
            cq_doorbell_error: error_bit(queue_status::CQ_DOORBELL_ERROR),
            fetch_error: error_bit(queue_status::FETCH_ERROR),
            completion_error: error_bit(queue_status::COMPLETION_ERROR),
            refused_write: error_bit(queue_status::REFUSED_WRITE),
            window_error: error_bit(queue_status::WINDOW_ERROR),
            halting_errors: Constant::new((queue_status::HALTING >> ERROR_SHIFT).into()),
            descriptor_mask: Constant::new((u64::from(DESCRIPTOR_BYTES) - 1).into()),
            completion_mask: Constant::new((u64::from(COMPLETION_BYTES) - 1).into()),
            descriptor_shift: Constant::new(u64::from(DESCRIPTOR_BYTES.trailing_zeros()).into()),
            completion_shift: Constant::new(u64::from(COMPLETION_BYTES.trailing_zeros()).into()),
            block_mask: Constant::new((block - 1).into()),
            block_bytes: Constant::new(block.into()),
            max_entries: Constant::new(u64::from(MAX_QUEUE_ENTRIES).into()),
            zero_8: Constant::new(0u64.into()),
            one_8: Constant::new(1u64.into()),
            all_8: Constant::new(0xffu64.into()),
            zero_16: Constant::new(0u64.into()),
            one_16: Constant::new(1u64.into()),
            two_16: Constant::new(2u64.into()),
            all_16: Constant::new(0xffffu64.into()),
            zero_32: Constant::new(0u64.into()),
            zero_64: Constant::new(0u64.into()),
            one_4: Constant::new(1u64.into()),
            zero_4: Constant::new(0u64.into()),
        }
    }
}

impl<const QUEUES: usize> Logic for QueueBank<QUEUES> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            turn,
            offering,
            offer_address,
            offer_length,
            offer_queue,
            offer_slot,
            offer_count,
            offer_published_after,
            offer_ring_after,
            restarting,
            restarting_queue,
            interrupt_offered,
            interrupt_offered_queue
        );
        for q in 0..QUEUES {
            self.sq_base[q].clock.next = self.clock.val();
            self.sq_base[q].d.next = self.sq_base[q].q.val();
            self.sq_entries[q].clock.next = self.clock.val();
            self.sq_entries[q].d.next = self.sq_entries[q].q.val();
            self.sq_tail[q].clock.next = self.clock.val();
            self.sq_tail[q].d.next = self.sq_tail[q].q.val();
            self.sq_head[q].clock.next = self.clock.val();
            self.sq_head[q].d.next = self.sq_head[q].q.val();
            self.cq_base[q].clock.next = self.clock.val();
            self.cq_base[q].d.next = self.cq_base[q].q.val();
            self.cq_entries[q].clock.next = self.clock.val();
            self.cq_entries[q].d.next = self.cq_entries[q].q.val();
            self.cq_head[q].clock.next = self.clock.val();
            self.cq_head[q].d.next = self.cq_head[q].q.val();
            self.cq_tail[q].clock.next = self.clock.val();
            self.cq_tail[q].d.next = self.cq_tail[q].q.val();
            self.phase[q].clock.next = self.clock.val();
            self.phase[q].d.next = self.phase[q].q.val();
            self.control[q].clock.next = self.clock.val();
            self.control[q].d.next = self.control[q].q.val();
            self.errors[q].clock.next = self.clock.val();
            self.errors[q].d.next = self.errors[q].q.val();
            self.in_flight[q].clock.next = self.clock.val();
            self.in_flight[q].d.next = self.in_flight[q].q.val();
            self.unacknowledged[q].clock.next = self.clock.val();
            self.unacknowledged[q].d.next = self.unacknowledged[q].q.val();
            self.pending_interrupts[q].clock.next = self.clock.val();
            self.pending_interrupts[q].d.next = self.pending_interrupts[q].q.val();
            self.interrupt_timer[q].clock.next = self.clock.val();
            self.interrupt_timer[q].d.next = self.interrupt_timer[q].q.val();
            self.running[q].next = self.control[q]
                .q
                .val()
                .get_bit(self.enable_bit.val().index())
                && ((self.errors[q].q.val() & self.halting_errors.val()) == self.zero_8.val());
        }

        // The queue a register access names, and what it holds.
        self.window.next = self.mmio_address.val().get_bits::<4>(12) == self.window_tag.val();
        self.target.next = self.mmio_address.val().get_bits::<4>(8);
        self.register.next = self.mmio_address.val().get_bits::<8>(0);
        self.mmio_hit.next =
            self.window.val() && self.present_queues.val().get_bit(self.target.val().index());
        self.target_enabled.next = false;
        self.target_running.next = false;
        self.target_busy.next = false;
        self.target_errors.next = self.zero_8.val();
        self.target_sq_entries.next = self.zero_16.val();
        self.target_cq_entries.next = self.zero_16.val();
        self.target_cq_head.next = self.zero_16.val();
        self.target_cq_tail.next = self.zero_16.val();
        self.target_configuration_valid.next = false;
        self.target_sq_base.next = self.zero_64.val();
        self.target_sq_tail.next = self.zero_16.val();
        self.target_sq_head.next = self.zero_16.val();
        self.target_cq_base.next = self.zero_64.val();
        self.target_control.next = self.zero_32.val();
        self.read_value.next = self.zero_64.val();
        for q in 0..QUEUES {
            if self.target.val() == self.queue_numbers[q].val() {
                self.target_enabled.next = self.control[q]
                    .q
                    .val()
                    .get_bit(self.enable_bit.val().index());
                self.target_running.next = self.running[q].val();
                self.target_busy.next = (self.in_flight[q].q.val() != self.zero_16.val())
                    || (self.unacknowledged[q].q.val() != self.zero_16.val());
                self.target_errors.next = self.errors[q].q.val();
                self.target_sq_entries.next = self.sq_entries[q].q.val();
                self.target_cq_entries.next = self.cq_entries[q].q.val();
                self.target_cq_head.next = self.cq_head[q].q.val();
                self.target_cq_tail.next = self.cq_tail[q].q.val();
                // Rings: a power of two from 2 to the maximum, aligned to their entries.
                self.target_configuration_valid.next = ((self.sq_entries[q].q.val()
                    & (self.sq_entries[q].q.val() - self.one_16.val()))
                    == self.zero_16.val())
                    && (self.sq_entries[q].q.val() >= self.two_16.val())
                    && (self.sq_entries[q].q.val() <= self.max_entries.val())
                    && ((self.cq_entries[q].q.val()
                        & (self.cq_entries[q].q.val() - self.one_16.val()))
                        == self.zero_16.val())
                    && (self.cq_entries[q].q.val() >= self.two_16.val())
                    && (self.cq_entries[q].q.val() <= self.max_entries.val())
                    && ((self.sq_base[q].q.val() & self.descriptor_mask.val())
                        == self.zero_64.val())
                    && ((self.cq_base[q].q.val() & self.completion_mask.val())
                        == self.zero_64.val());
                self.target_sq_base.next = self.sq_base[q].q.val();
                self.target_sq_tail.next = self.sq_tail[q].q.val();
                self.target_sq_head.next = self.sq_head[q].q.val();
                self.target_cq_base.next = self.cq_base[q].q.val();
                self.target_control.next = self.control[q].q.val();
            }
        }
        self.target_in_use.next = self.target_enabled.val() || self.target_busy.val();
        self.enable_errors.next = self.zero_8.val();
        if !self.target_configuration_valid.val() {
            self.enable_errors.next = self.config_error.val();
        }
        if !self.rings_inside_window.val() {
            self.enable_errors.next = self.enable_errors.val() | self.window_error.val();
        }
        // Casts cannot take a loop index, so the loop above only selects.
        if self.register.val() == self.sq_base_register.val() {
            self.read_value.next = self.target_sq_base.val();
        }
        if self.register.val() == self.sq_entries_register.val() {
            self.read_value.next = bit_cast::<64, 16>(self.target_sq_entries.val());
        }
        if self.register.val() == self.sq_tail_register.val() {
            self.read_value.next = bit_cast::<64, 16>(self.target_sq_tail.val());
        }
        if self.register.val() == self.sq_head_register.val() {
            self.read_value.next = bit_cast::<64, 16>(self.target_sq_head.val());
        }
        if self.register.val() == self.cq_base_register.val() {
            self.read_value.next = self.target_cq_base.val();
        }
        if self.register.val() == self.cq_entries_register.val() {
            self.read_value.next = bit_cast::<64, 16>(self.target_cq_entries.val());
        }
        if self.register.val() == self.cq_head_register.val() {
            self.read_value.next = bit_cast::<64, 16>(self.target_cq_head.val());
        }
        if self.register.val() == self.cq_tail_register.val() {
            self.read_value.next = bit_cast::<64, 16>(self.target_cq_tail.val());
        }
        if self.register.val() == self.control_register.val() {
            self.read_value.next = bit_cast::<64, 32>(self.target_control.val());
        }
        if self.register.val() == self.status_register.val() {
            self.read_value.next = (bit_cast::<64, 1>(self.target_running.val().into())
                << self.running_shift.val())
                | (bit_cast::<64, 1>(self.target_busy.val().into()) << self.busy_shift.val())
                | (bit_cast::<64, 8>(self.target_errors.val()) << self.error_shift.val());
        }
        self.mmio_read_data.next = self.zero_64.val();
        if self.mmio_hit.val() {
            self.mmio_read_data.next = self.read_value.val();
        }

        // A register write: each bad one refused with its own sticky bit.
        self.writing.next = self.mmio_write.val() && self.mmio_hit.val();
        self.released.next = (self.mmio_write_data.val().get_bits::<16>(0)
            - self.target_cq_head.val())
            & (self.target_cq_entries.val() - self.one_16.val());
        self.written.next = (self.target_cq_tail.val() - self.target_cq_head.val())
            & (self.target_cq_entries.val() - self.one_16.val());
        self.enabling.next = self
            .mmio_write_data
            .val()
            .get_bit(self.enable_bit.val().index())
            && !self.target_enabled.val();
        self.takes_configuration.next = false;
        self.takes_sq_tail.next = false;
        self.takes_cq_head.next = false;
        self.takes_control.next = false;
        self.resets_queue.next = false;
        self.new_errors.next = self.zero_8.val();
        self.entries_too_wide.next = ((self.register.val() == self.sq_entries_register.val())
            || (self.register.val() == self.cq_entries_register.val()))
            && (self.mmio_write_data.val() > self.entries_limit.val());
        if (self.register.val() == self.sq_base_register.val())
            || (self.register.val() == self.sq_entries_register.val())
            || (self.register.val() == self.cq_base_register.val())
            || (self.register.val() == self.cq_entries_register.val())
        {
            // Not while the queue runs, nor while what it fetched is still completing.
            if self.target_enabled.val() || self.target_busy.val() || self.entries_too_wide.val() {
                self.new_errors.next = self.refused_write.val();
            } else {
                self.takes_configuration.next = true;
            }
        }
        // A tail moved back behind the head cannot be told from a ring filled up to it: the
        // slots between are fetched as new, as an NVMe controller would.
        if self.register.val() == self.sq_tail_register.val() {
            if !self.target_enabled.val() {
                self.new_errors.next = self.refused_write.val();
            } else if self.mmio_write_data.val() >= bit_cast::<64, 16>(self.target_sq_entries.val())
            {
                self.new_errors.next = self.sq_doorbell_error.val();
            } else {
                self.takes_sq_tail.next = true;
            }
        }
        if self.register.val() == self.cq_head_register.val() {
            if !self.target_enabled.val() {
                self.new_errors.next = self.refused_write.val();
            } else if (self.mmio_write_data.val()
                >= bit_cast::<64, 16>(self.target_cq_entries.val()))
                || (self.released.val() > self.written.val())
            {
                // Beyond the ring, or releasing entries not yet written.
                self.new_errors.next = self.cq_doorbell_error.val();
            } else {
                self.takes_cq_head.next = true;
            }
        }
        if self.window_write_refused.val() {
            self.new_errors.next = self.refused_write.val();
        }
        if self.register.val() == self.control_register.val() {
            if self.enabling.val() && self.target_busy.val() {
                self.new_errors.next = self.refused_write.val();
            } else {
                self.takes_control.next = true;
                self.resets_queue.next = self.enabling.val();
            }
        }
        self.restarting.d.next = self.writing.val() && self.resets_queue.val();
        self.restarting_queue.d.next = self.target.val();
        self.restarted.next = self.restarting.q.val();
        self.restarted_queue.next = self.restarting_queue.q.val();

        // The queue whose turn it is fetches what fits.
        self.turn_running.next = false;
        self.turn_sq_base.next = self.zero_64.val();
        self.turn_sq_entries.next = self.zero_16.val();
        self.turn_sq_tail.next = self.zero_16.val();
        self.turn_sq_head.next = self.zero_16.val();
        self.turn_cq_entries.next = self.zero_16.val();
        self.turn_cq_head.next = self.zero_16.val();
        self.turn_cq_tail.next = self.zero_16.val();
        self.turn_in_flight.next = self.zero_16.val();
        for q in 0..QUEUES {
            if self.turn.q.val() == self.queue_numbers[q].val() {
                self.turn_running.next = self.running[q].val();
                self.turn_sq_base.next = self.sq_base[q].q.val();
                self.turn_sq_entries.next = self.sq_entries[q].q.val();
                self.turn_sq_tail.next = self.sq_tail[q].q.val();
                self.turn_sq_head.next = self.sq_head[q].q.val();
                self.turn_cq_entries.next = self.cq_entries[q].q.val();
                self.turn_cq_head.next = self.cq_head[q].q.val();
                self.turn_cq_tail.next = self.cq_tail[q].q.val();
                self.turn_in_flight.next = self.in_flight[q].q.val();
            }
        }
        self.waiting.next = (self.turn_sq_tail.val() - self.turn_sq_head.val())
            & (self.turn_sq_entries.val() - self.one_16.val());
        self.to_ring_end.next = self.turn_sq_entries.val() - self.turn_sq_head.val();
        self.slot_address.next = self.turn_sq_base.val()
            + (bit_cast::<64, 16>(self.turn_sq_head.val()) << self.descriptor_shift.val());
        self.in_block.next = (self.block_bytes.val()
            - (self.slot_address.val().get_bits::<16>(0) & self.block_mask.val()))
            >> self.descriptor_shift.val();
        self.completion_room.next = self.turn_cq_entries.val()
            - self.one_16.val()
            - ((self.turn_cq_tail.val() - self.turn_cq_head.val())
                & (self.turn_cq_entries.val() - self.one_16.val()));
        self.credits.next = self.completion_room.val() - self.turn_in_flight.val();
        self.batch.next = self.waiting.val();
        if self.to_ring_end.val() < self.batch.val() {
            self.batch.next = self.to_ring_end.val();
        }
        if self.in_block.val() < self.batch.val() {
            self.batch.next = self.in_block.val();
        }
        if self.credits.val() < self.batch.val() {
            self.batch.next = self.credits.val();
        }
        // A batch is claimed (its slots and completion credits taken) when it goes on offer,
        // and offered unchanged until the reader takes it.
        self.fetching.next = !self.offering.q.val()
            && self.turn_running.val()
            && (self.batch.val() != self.zero_16.val())
            && !self.reset.val();
        if self.fetching.val() {
            self.offering.d.next = true;
            self.offer_address.d.next = self.slot_address.val();
            // At most a read block of descriptors, so eight bits hold the count.
            self.offer_length.d.next =
                bit_cast::<DMA_LENGTH_BITS, 8>(self.batch.val().get_bits::<8>(0))
                    << self.descriptor_shift.val();
            self.offer_queue.d.next = self.turn.q.val();
            self.offer_slot.d.next = self.turn_sq_head.val();
            self.offer_count.d.next = self.batch.val().get_bits::<8>(0);
            self.offer_published_after.d.next = self.waiting.val() - self.batch.val();
            self.offer_ring_after.d.next = self.to_ring_end.val() - self.batch.val();
        }
        self.fetch_valid.next = self.offering.q.val();
        self.fetch_address.next = self.offer_address.q.val();
        self.fetch_length.next = self.offer_length.q.val();
        self.fetch_queue.next = self.offer_queue.q.val();
        self.fetch_slot.next = self.offer_slot.q.val();
        self.fetch_count.next = self.offer_count.q.val();
        self.fetch_published_after.next = self.offer_published_after.q.val();
        self.fetch_ring_after.next = self.offer_ring_after.q.val();
        if self.offering.q.val() && self.fetch_ready.val() {
            self.offering.d.next = false;
        }
        self.turn.d.next = self.turn.q.val() + self.one_4.val();
        if self.turn.q.val() == self.last_queue.val() {
            self.turn.d.next = self.zero_4.val();
        }

        // Where the next completion of the completer's queue goes.
        self.completing_cq_base.next = self.zero_64.val();
        self.completing_cq_tail.next = self.zero_16.val();
        self.completion_phase.next = false;
        self.submission_mask.next = self.zero_16.val();
        for q in 0..QUEUES {
            if self.completion_queue.val() == self.queue_numbers[q].val() {
                self.submission_mask.next = self.sq_entries[q].q.val() - self.one_16.val();
                self.completing_cq_base.next = self.cq_base[q].q.val();
                self.completing_cq_tail.next = self.cq_tail[q].q.val();
                self.completion_phase.next = self.phase[q].q.val();
            }
        }
        self.completion_address.next = self.completing_cq_base.val()
            + (bit_cast::<64, 16>(self.completing_cq_tail.val()) << self.completion_shift.val());

        // Interrupts: the lowest-numbered queue due for one.
        self.interrupting.next = false;
        self.interrupt_queue.next = self.zero_4.val();
        for q in 0..QUEUES {
            self.firing[q].next = self.control[q]
                .q
                .val()
                .get_bit(self.interrupt_enable_bit.val().index())
                && (self.pending_interrupts[q].q.val() != self.zero_8.val())
                && ((self.pending_interrupts[q].q.val()
                    >= self.control[q]
                        .q
                        .val()
                        .get_bits::<8>(self.coalesce_count_shift.val().index()))
                    || ((self.control[q]
                        .q
                        .val()
                        .get_bits::<16>(self.coalesce_clocks_shift.val().index())
                        != self.zero_16.val())
                        && (self.interrupt_timer[q].q.val()
                            >= self.control[q]
                                .q
                                .val()
                                .get_bits::<16>(self.coalesce_clocks_shift.val().index()))));
        }
        for q in 0..QUEUES {
            if self.firing[q].val() && !self.interrupting.val() {
                self.interrupting.next = true;
                self.interrupt_queue.next = self.queue_numbers[q].val();
            }
        }
        // The message goes on offer and stays, unchanged, until taken.
        if !self.interrupt_offered.q.val() && self.interrupting.val() {
            self.interrupt_offered.d.next = true;
            self.interrupt_offered_queue.d.next = self.interrupt_queue.val();
        }
        self.interrupt_valid.next = self.interrupt_offered.q.val();
        self.interrupt_vector.next = bit_cast::<8, 4>(self.interrupt_offered_queue.q.val());
        self.interrupt_sent.next = self.interrupt_offered.q.val() && self.interrupt_ready.val();
        if self.interrupt_sent.val() {
            self.interrupt_offered.d.next = false;
        }

        // Each queue's state takes the clock's events.
        for q in 0..QUEUES {
            self.taken[q].next = self.zero_16.val();
            if self.fetching.val() && (self.turn.q.val() == self.queue_numbers[q].val()) {
                self.taken[q].next = self.batch.val();
                self.sq_head[q].d.next = (self.sq_head[q].q.val() + self.batch.val())
                    & (self.sq_entries[q].q.val() - self.one_16.val());
            }
            self.returned[q].next = self.zero_16.val();
            self.raised[q].next = self.zero_8.val();
            self.entry_issued[q].next = self.completion_issued.val()
                && (self.completion_queue.val() == self.queue_numbers[q].val());
            self.entry_landed[q].next = self.completion_acked.val()
                && (self.completion_acked_queue.val() == self.queue_numbers[q].val());
            if self.entry_issued[q].val() && !self.entry_landed[q].val() {
                self.unacknowledged[q].d.next = self.unacknowledged[q].q.val() + self.one_16.val();
            }
            if self.entry_landed[q].val() && !self.entry_issued[q].val() {
                self.unacknowledged[q].d.next = self.unacknowledged[q].q.val() - self.one_16.val();
            }
            if self.entry_issued[q].val() {
                self.returned[q].next = self.one_16.val();
                self.cq_tail[q].d.next = (self.cq_tail[q].q.val() + self.one_16.val())
                    & (self.cq_entries[q].q.val() - self.one_16.val());
                if self.cq_tail[q].q.val() + self.one_16.val() == self.cq_entries[q].q.val() {
                    self.phase[q].d.next = !self.phase[q].q.val();
                }
            }
            if self.slots_returned.val()
                && (self.slots_returned_queue.val() == self.queue_numbers[q].val())
            {
                self.returned[q].next =
                    self.returned[q].val() + bit_cast::<16, 8>(self.slots_returned_count.val());
                if self.slots_returned_failed.val() {
                    self.raised[q].next = self.fetch_error.val();
                }
            }
            self.acknowledged[q].next =
                self.entry_landed[q].val() && !self.completion_acked_error.val();
            if self.entry_landed[q].val() && self.completion_acked_error.val() {
                self.raised[q].next = self.raised[q].val() | self.completion_error.val();
            }
            self.in_flight[q].d.next =
                self.in_flight[q].q.val() + self.taken[q].val() - self.returned[q].val();

            // Coalescing: count acknowledged completions, time the oldest.
            if self.acknowledged[q].val()
                && (self.pending_interrupts[q].q.val() != self.all_8.val())
            {
                self.pending_interrupts[q].d.next =
                    self.pending_interrupts[q].q.val() + self.one_8.val();
            }
            self.interrupt_timer[q].d.next = self.zero_16.val();
            if (self.pending_interrupts[q].q.val() != self.zero_8.val())
                && (self.interrupt_timer[q].q.val() != self.all_16.val())
            {
                self.interrupt_timer[q].d.next =
                    self.interrupt_timer[q].q.val() + self.one_16.val();
            }
            if self.interrupt_sent.val()
                && (self.interrupt_offered_queue.q.val() == self.queue_numbers[q].val())
            {
                self.pending_interrupts[q].d.next = self.zero_8.val();
                if self.acknowledged[q].val() {
                    self.pending_interrupts[q].d.next = self.one_8.val();
                }
                self.interrupt_timer[q].d.next = self.zero_16.val();
            }

            // The register write, if it names this queue.
            if self.writing.val() && (self.target.val() == self.queue_numbers[q].val()) {
                self.raised[q].next = self.raised[q].val() | self.new_errors.val();
                if self.takes_configuration.val() {
                    if self.register.val() == self.sq_base_register.val() {
                        self.sq_base[q].d.next = self.mmio_write_data.val();
                    }
                    if self.register.val() == self.sq_entries_register.val() {
                        self.sq_entries[q].d.next = self.mmio_write_data.val().get_bits::<16>(0);
                    }
                    if self.register.val() == self.cq_base_register.val() {
                        self.cq_base[q].d.next = self.mmio_write_data.val();
                    }
                    if self.register.val() == self.cq_entries_register.val() {
                        self.cq_entries[q].d.next = self.mmio_write_data.val().get_bits::<16>(0);
                    }
                }
                if self.takes_sq_tail.val() {
                    self.sq_tail[q].d.next = self.mmio_write_data.val().get_bits::<16>(0);
                }
                if self.takes_cq_head.val() {
                    self.cq_head[q].d.next = self.mmio_write_data.val().get_bits::<16>(0);
                }
                if self.takes_control.val() {
                    self.control[q].d.next =
                        self.mmio_write_data.val().get_bits::<32>(0) & self.control_mask.val();
                }
            }
            self.errors[q].d.next = self.errors[q].q.val() | self.raised[q].val();
            if self.writing.val()
                && self.resets_queue.val()
                && (self.target.val() == self.queue_numbers[q].val())
            {
                // Enabling starts the queue afresh.
                self.sq_head[q].d.next = self.zero_16.val();
                self.sq_tail[q].d.next = self.zero_16.val();
                self.cq_head[q].d.next = self.zero_16.val();
                self.cq_tail[q].d.next = self.zero_16.val();
                self.phase[q].d.next = true;
                self.pending_interrupts[q].d.next = self.zero_8.val();
                self.interrupt_timer[q].d.next = self.zero_16.val();
                self.errors[q].d.next = self.enable_errors.val();
            }
            if self.reset.val() {
                self.control[q].d.next = self.zero_32.val();
                self.errors[q].d.next = self.zero_8.val();
                self.in_flight[q].d.next = self.zero_16.val();
                self.unacknowledged[q].d.next = self.zero_16.val();
                self.pending_interrupts[q].d.next = self.zero_8.val();
                self.interrupt_timer[q].d.next = self.zero_16.val();
            }
        }
        if self.reset.val() {
            self.turn.d.next = self.zero_4.val();
            self.offering.d.next = false;
            self.interrupt_offered.d.next = false;
        }
    }
}
