//! The host's register accesses, as both harnesses issue them: one at a time in order, each
//! run on the golden model the clock the NI takes it, each read's answer compared with the
//! model's in the bits that do not depend on timing.

use crate::monitor::Monitor;
use npmu_abi::registers::{self as reg, command_status, queue_status, status, Group};
use npmu_model::NetworkInterface;
use std::collections::VecDeque;

#[derive(Clone, Copy, Debug)]
enum Operation {
    Write(u16, u64),
    Read(u16),
}

/// A read the NI has taken: what the golden model says, and which bits to compare.
struct PendingRead {
    offset: u16,
    expected: u64,
    compared_bits: u64,
}

#[derive(Default)]
pub(crate) struct MmioMaster {
    operations: VecDeque<Operation>,
    reads: VecDeque<PendingRead>,
    results: VecDeque<u64>,
    /// A programming command may still be running: its registers are not compared.
    command_may_run: bool,
}

impl MmioMaster {
    pub fn write(&mut self, offset: u16, value: u64) {
        self.operations.push_back(Operation::Write(offset, value));
    }

    pub fn read(&mut self, offset: u16) {
        self.operations.push_back(Operation::Read(offset));
    }

    /// Accesses issued and not yet done (a write is done when taken, a read when answered).
    pub fn pending(&self) -> usize {
        self.operations.len() + self.reads.len()
    }

    pub fn take_result(&mut self) -> Option<u64> {
        self.results.pop_front()
    }

    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// The access to offer: write, offset, value.
    pub fn offer(&self) -> Option<(bool, u16, u64)> {
        self.operations.front().map(|operation| match *operation {
            Operation::Write(offset, value) => (true, offset, value),
            Operation::Read(offset) => (false, offset, 0),
        })
    }

    /// The NI took the offered access. `quiescent`: nothing is in flight, so counters and
    /// queue pointers are settled; `golden`: compare reads at all.
    pub fn taken(
        &mut self,
        now: u64,
        model: &mut NetworkInterface,
        monitor: &mut Monitor,
        golden: bool,
        quiescent: bool,
    ) {
        match self
            .operations
            .pop_front()
            .expect("an offered register access")
        {
            Operation::Write(offset, value) => {
                tracing::debug!(clock = now, offset, value, "register write");
                model.mmio_write(offset, value);
                if offset == reg::AVT_COMMAND.offset && model.is_unlocked() {
                    self.command_may_run = true;
                    monitor.tables_changed(model);
                }
            }
            Operation::Read(offset) => {
                let compared_bits = match golden {
                    true => self.comparable_bits(offset, quiescent),
                    false => 0,
                };
                self.reads.push_back(PendingRead {
                    offset,
                    expected: model.mmio_read(offset),
                    compared_bits,
                });
            }
        }
    }

    /// The bits of a register read whose value does not depend on the clock the read lands
    /// in: busy flags never do; programming registers do while a command may run; counters,
    /// the fault record and queue pointers do while work is in flight.
    fn comparable_bits(&self, offset: u16, quiescent: bool) -> u64 {
        if let Some((_, register)) = reg::queue_at(offset) {
            return match (quiescent, register) {
                (false, _) => 0,
                (true, reg::queue::STATUS) => !queue_status::BUSY.mask(),
                (true, _) => u64::MAX,
            };
        }
        let Some(register) = reg::at(offset) else {
            return u64::MAX;
        };
        if register.group == Group::Programming && self.command_may_run {
            return 0;
        }
        if register.group == Group::Faults && !quiescent {
            return 0;
        }
        match register {
            reg::STATUS => !(status::INITIALIZING.mask() | status::COMMAND_BUSY.mask()),
            reg::AVT_COMMAND => !command_status::BUSY.mask(),
            _ => u64::MAX,
        }
    }

    /// The NI answered the oldest read with `value`.
    pub fn answered(&mut self, now: u64, value: u64) {
        let read = self.reads.pop_front().expect("an answer to a read");
        assert_eq!(
            value & read.compared_bits,
            read.expected & read.compared_bits,
            "clock {now}: register {:#x} read {value:#x}, the golden model says {:#x}",
            read.offset,
            read.expected
        );
        let idle = match reg::at(read.offset) {
            Some(reg::AVT_COMMAND) => !command_status::BUSY.is_set(value),
            Some(reg::STATUS) => !status::COMMAND_BUSY.is_set(value),
            _ => false,
        };
        if idle {
            self.command_may_run = false;
        }
        self.results.push_back(value);
    }
}

/// A harness that clocks an [`MmioMaster`]: one register access at a time, waited for.
pub(crate) trait Clocked {
    fn mmio(&mut self) -> &mut MmioMaster;
    fn step(&mut self);
    fn now(&self) -> u64;
}

/// Clocks after which a register access that has not finished is a hang.
const ACCESS_CLOCKS: u64 = 1_000_000;

/// Reads register `offset`, clocking until the answer comes.
pub(crate) fn read_register(harness: &mut impl Clocked, offset: u16) -> u64 {
    harness.mmio().read(offset);
    wait(harness, || {
        format!("register read of {offset:#x} never answered")
    });
    harness.mmio().take_result().expect("the read's result")
}

/// Writes register `offset`, clocking until the NI takes the write.
pub(crate) fn write_register(harness: &mut impl Clocked, offset: u16, value: u64) {
    harness.mmio().write(offset, value);
    wait(harness, || {
        format!("register write of {offset:#x} never taken")
    });
}

fn wait(harness: &mut impl Clocked, hang: impl Fn() -> String) {
    let start = harness.now();
    while harness.mmio().pending() > 0 {
        harness.step();
        assert!(harness.now() - start < ACCESS_CLOCKS, "{}", hang());
    }
}
