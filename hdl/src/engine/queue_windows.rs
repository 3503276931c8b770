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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{cycle, settle};

    type Windows = QueueWindows<4>;

    fn clock(windows: &mut Windows, level: bool) {
        windows.clock.next = Clock { clk: level };
    }

    fn write(
        windows: &mut Windows,
        queue: u64,
        register: npmu_abi::registers::Register,
        value: u64,
    ) {
        windows.writing.next = true;
        windows.target.next = queue.into();
        windows.register.next = u64::from(register.offset).into();
        windows.write_data.next = value.into();
        cycle(windows, clock);
        windows.writing.next = false;
    }

    fn window_of(windows: &mut Windows, queue: u64) -> (u64, u64) {
        windows.lookup_queue.next = queue.into();
        settle(windows);
        (
            windows.lookup_base.val().to_u64(),
            windows.lookup_bytes.val().to_u64(),
        )
    }

    fn new() -> Windows {
        let mut windows = Windows::new();
        windows.connect_all();
        windows.reset.next = true;
        cycle(&mut windows, clock);
        windows.reset.next = false;
        windows
    }

    #[test]
    fn only_the_manager_writes_and_never_under_a_queue_in_use() {
        let mut windows = new();
        assert_eq!(window_of(&mut windows, 2), (0, 0), "empty after reset");
        write(&mut windows, 2, queue::WINDOW_BASE, 0x1000);
        assert_eq!(window_of(&mut windows, 2), (0, 0), "locked: dropped");
        windows.unlocked.next = true;
        write(&mut windows, 2, queue::WINDOW_BASE, 0x1000);
        write(&mut windows, 2, queue::WINDOW_BYTES, 0x800);
        assert_eq!(window_of(&mut windows, 2), (0x1000, 0x800));
        assert_eq!(
            window_of(&mut windows, 1),
            (0, 0),
            "other queues keep theirs"
        );
        windows.target_in_use.next = true;
        write(&mut windows, 2, queue::WINDOW_BYTES, 0x10_0000);
        assert_eq!(
            window_of(&mut windows, 2),
            (0x1000, 0x800),
            "in use: refused"
        );
        windows.register.next = u64::from(queue::WINDOW_BYTES.offset).into();
        windows.writing.next = true;
        settle(&mut windows);
        assert!(windows.in_use_write.val() && !windows.locked_write.val());
        windows.unlocked.next = false;
        settle(&mut windows);
        assert!(windows.locked_write.val() && !windows.in_use_write.val());
        windows.target.next = 2u64.into();
        windows.register.next = u64::from(queue::WINDOW_BASE.offset).into();
        windows.writing.next = false;
        settle(&mut windows);
        assert_eq!(
            windows.read_data.val().to_u64(),
            0x1000,
            "reads need no lock"
        );
    }

    #[test]
    fn rings_must_lie_wholly_inside_to_the_byte() {
        let mut windows = new();
        windows.unlocked.next = true;
        let (base, bytes) = (0x10_0000, 0x1_0000);
        write(&mut windows, 0, queue::WINDOW_BASE, base);
        write(&mut windows, 0, queue::WINDOW_BYTES, bytes);
        let mut inside = |sq_base: u64, cq_base: u64| {
            windows.target.next = 0u64.into();
            windows.target_sq_base.next = sq_base.into();
            windows.target_sq_entries.next = 64u64.into();
            windows.target_cq_base.next = cq_base.into();
            windows.target_cq_entries.next = 64u64.into();
            settle(&mut windows);
            windows.target_rings_inside.val()
        };
        let sq_last = base + bytes - 64 * 32;
        let cq_last = base + bytes - 64 * 16;
        assert!(inside(base, cq_last));
        assert!(inside(sq_last, base));
        assert!(!inside(base - 32, cq_last), "below the base");
        assert!(!inside(sq_last + 32, base), "past the end");
        assert!(!inside(base, cq_last + 16), "past the end");
        assert!(
            !inside(u64::MAX - 31, base),
            "far past: no wrap makes it fit"
        );
    }
}
