//! The queues' host-memory windows ([`npmu_abi::registers::queue::WINDOW`]): their
//! registers, writable only while the management lock is open and the queue idle; whether
//! the rings of a queue being enabled lie inside its window; and the window of the queue
//! whose descriptor the issuer checks.
//!
//! The queue bank decodes register accesses and owns the queues' state; this block keeps
//! only the windows, so the bank tells it which queue an access names and whether that
//! queue is in use (enabled, or with descriptors in flight).

use crate::constants::{constant, offset};
use npmu_abi::queue::{COMPLETION_BYTES, DESCRIPTOR_BYTES};
use npmu_abi::registers::queue;
use rust_hdl::prelude::*;

#[derive(LogicBlock)]
pub struct QueueWindows<const QUEUES: usize> {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, bool>,

    /// A register write taken this clock to `register` of queue `target` (decoded by the
    /// queue bank; `writing` only for a queue the NI has).
    pub writing: Signal<In, bool>,
    pub target: Signal<In, Bits<4>>,
    pub register: Signal<In, Bits<8>>,
    pub write_data: Signal<In, Bits<64>>,
    /// The management lock is open.
    pub unlocked: Signal<In, bool>,
    /// The target queue is enabled or has descriptors in flight.
    pub target_in_use: Signal<In, bool>,
    /// What a read of the target's `register` returns if it is a window register, else 0.
    pub read_data: Signal<Out, Bits<64>>,
    /// A window write dropped because the lock is closed: one for REFUSED_WRITES.
    pub locked_write: Signal<Out, bool>,
    /// A window write refused because the queue is in use: its REFUSED_WRITE bit.
    pub in_use_write: Signal<Out, bool>,

    /// The target queue's rings, checked against its window as it is enabled.
    pub target_sq_base: Signal<In, Bits<64>>,
    pub target_sq_entries: Signal<In, Bits<16>>,
    pub target_cq_base: Signal<In, Bits<64>>,
    pub target_cq_entries: Signal<In, Bits<16>>,
    pub target_rings_inside: Signal<Out, bool>,

    /// The window of queue `lookup_queue`.
    pub lookup_queue: Signal<In, Bits<4>>,
    pub lookup_base: Signal<Out, Bits<64>>,
    pub lookup_bytes: Signal<Out, Bits<64>>,

    base: [DFF<Bits<64>>; QUEUES],
    bytes: [DFF<Bits<64>>; QUEUES],

    target_base: Signal<Local, Bits<64>>,
    target_bytes: Signal<Local, Bits<64>>,
    is_window_register: Signal<Local, bool>,
    takes_write: Signal<Local, bool>,
    sq_bytes: Signal<Local, Bits<64>>,
    cq_bytes: Signal<Local, Bits<64>>,

    queue_numbers: [Constant<Bits<4>>; QUEUES],
    base_register: Constant<Bits<8>>,
    bytes_register: Constant<Bits<8>>,
    descriptor_shift: Constant<Bits<8>>,
    completion_shift: Constant<Bits<8>>,
    zero_64: Constant<Bits<64>>,
}

impl<const QUEUES: usize> QueueWindows<QUEUES> {
    pub fn new() -> Self {
        Self {
            clock: Default::default(),
            reset: Default::default(),
            writing: Default::default(),
            target: Default::default(),
            register: Default::default(),
            write_data: Default::default(),
            unlocked: Default::default(),
            target_in_use: Default::default(),
            read_data: Default::default(),
            locked_write: Default::default(),
            in_use_write: Default::default(),
            target_sq_base: Default::default(),
            target_sq_entries: Default::default(),
            target_cq_base: Default::default(),
            target_cq_entries: Default::default(),
            target_rings_inside: Default::default(),
            lookup_queue: Default::default(),
            lookup_base: Default::default(),
            lookup_bytes: Default::default(),
            base: std::array::from_fn(|_| Default::default()),
            bytes: std::array::from_fn(|_| Default::default()),
            target_base: Default::default(),
            target_bytes: Default::default(),
            is_window_register: Default::default(),
            takes_write: Default::default(),
            sq_bytes: Default::default(),
            cq_bytes: Default::default(),
            queue_numbers: std::array::from_fn(|q| constant(q as u64)),
            base_register: offset(queue::WINDOW_BASE),
            bytes_register: offset(queue::WINDOW_BYTES),
            descriptor_shift: constant(u64::from(DESCRIPTOR_BYTES.trailing_zeros())),
            completion_shift: constant(u64::from(COMPLETION_BYTES.trailing_zeros())),
            zero_64: constant(0),
        }
    }
}

impl<const QUEUES: usize> Default for QueueWindows<QUEUES> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const QUEUES: usize> Logic for QueueWindows<QUEUES> {
    #[hdl_gen]
    fn update(&mut self) {
        for q in 0..QUEUES {
            self.base[q].clock.next = self.clock.val();
            self.base[q].d.next = self.base[q].q.val();
            self.bytes[q].clock.next = self.clock.val();
            self.bytes[q].d.next = self.bytes[q].q.val();
        }

        // The windows of the queue a register access names and of the one looked up.
        self.target_base.next = self.zero_64.val();
        self.target_bytes.next = self.zero_64.val();
        self.lookup_base.next = self.zero_64.val();
        self.lookup_bytes.next = self.zero_64.val();
        for q in 0..QUEUES {
            if self.target.val() == self.queue_numbers[q].val() {
                self.target_base.next = self.base[q].q.val();
                self.target_bytes.next = self.bytes[q].q.val();
            }
            if self.lookup_queue.val() == self.queue_numbers[q].val() {
                self.lookup_base.next = self.base[q].q.val();
                self.lookup_bytes.next = self.bytes[q].q.val();
            }
        }
        self.read_data.next = self.zero_64.val();
        if self.register.val() == self.base_register.val() {
            self.read_data.next = self.target_base.val();
        }
        if self.register.val() == self.bytes_register.val() {
            self.read_data.next = self.target_bytes.val();
        }

        // Writes: only the manager's, and never under a queue in use.
        self.is_window_register.next = (self.register.val() == self.base_register.val())
            || (self.register.val() == self.bytes_register.val());
        self.locked_write.next =
            self.writing.val() && self.is_window_register.val() && !self.unlocked.val();
        self.in_use_write.next = self.writing.val()
            && self.is_window_register.val()
            && self.unlocked.val()
            && self.target_in_use.val();
        self.takes_write.next = self.writing.val()
            && self.is_window_register.val()
            && self.unlocked.val()
            && !self.target_in_use.val();
        for q in 0..QUEUES {
            if self.takes_write.val() && (self.target.val() == self.queue_numbers[q].val()) {
                if self.register.val() == self.base_register.val() {
                    self.base[q].d.next = self.write_data.val();
                }
                if self.register.val() == self.bytes_register.val() {
                    self.bytes[q].d.next = self.write_data.val();
                }
            }
            if self.reset.val() {
                self.base[q].d.next = self.zero_64.val();
                self.bytes[q].d.next = self.zero_64.val();
            }
        }

        // Both rings wholly inside the window: overflow safe, one condition a line.
        self.sq_bytes.next =
            bit_cast::<64, 16>(self.target_sq_entries.val()) << self.descriptor_shift.val();
        self.cq_bytes.next =
            bit_cast::<64, 16>(self.target_cq_entries.val()) << self.completion_shift.val();
        self.target_rings_inside.next = true;
        if self.target_sq_base.val() < self.target_base.val() {
            self.target_rings_inside.next = false;
        }
        if self.sq_bytes.val() > self.target_bytes.val() {
            self.target_rings_inside.next = false;
        }
        if (self.target_sq_base.val() - self.target_base.val())
            > (self.target_bytes.val() - self.sq_bytes.val())
        {
            self.target_rings_inside.next = false;
        }
        if self.target_cq_base.val() < self.target_base.val() {
            self.target_rings_inside.next = false;
        }
        if self.cq_bytes.val() > self.target_bytes.val() {
            self.target_rings_inside.next = false;
        }
        if (self.target_cq_base.val() - self.target_base.val())
            > (self.target_bytes.val() - self.cq_bytes.val())
        {
            self.target_rings_inside.next = false;
        }
    }
}
