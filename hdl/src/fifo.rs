//! A first-word-fall-through FIFO in a [`RegisterFile`]: an entry pushed in one cycle is at
//! the head in the next, and push and pop both run at one entry per cycle.
//!
//! Full and occupied are registers, worked out from the pointers' next values, so that
//! `push_ready` and `pop_valid` leave a flip-flop instead of a pointer comparison: both
//! feed long handshake paths in the blocks around.

use crate::ram::RegisterFile;
use rust_hdl::prelude::*;

#[derive(LogicBlock)]
pub struct Fifo<D: Synth, const ADDRESS_BITS: usize> {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, bool>,
    pub push_valid: Signal<In, bool>,
    pub push_ready: Signal<Out, bool>,
    pub push_data: Signal<In, D>,
    pub pop_valid: Signal<Out, bool>,
    pub pop_ready: Signal<In, bool>,
    pub pop_data: Signal<Out, D>,
    storage: RegisterFile<D, ADDRESS_BITS>,
    write_pointer: DFF<Bits<ADDRESS_BITS>>,
    read_pointer: DFF<Bits<ADDRESS_BITS>>,
    /// Holds at least one entry; false at power-on, like every flip-flop here.
    occupied: DFF<bool>,
    full: DFF<bool>,
    push: Signal<Local, bool>,
    pop: Signal<Local, bool>,
    next_write_pointer: Signal<Local, Bits<ADDRESS_BITS>>,
    next_read_pointer: Signal<Local, Bits<ADDRESS_BITS>>,
    one: Constant<Bits<ADDRESS_BITS>>,
    zero: Constant<Bits<ADDRESS_BITS>>,
}

impl<D: Synth, const ADDRESS_BITS: usize> Default for Fifo<D, ADDRESS_BITS> {
    fn default() -> Self {
        Self {
            clock: Default::default(),
            reset: Default::default(),
            push_valid: Default::default(),
            push_ready: Default::default(),
            push_data: Default::default(),
            pop_valid: Default::default(),
            pop_ready: Default::default(),
            pop_data: Default::default(),
            storage: Default::default(),
            write_pointer: Default::default(),
            read_pointer: Default::default(),
            occupied: Default::default(),
            full: Default::default(),
            push: Default::default(),
            pop: Default::default(),
            next_write_pointer: Default::default(),
            next_read_pointer: Default::default(),
            one: Constant::new(1u64.into()),
            zero: Constant::new(0u64.into()),
        }
    }
}

impl<D: Synth, const ADDRESS_BITS: usize> Logic for Fifo<D, ADDRESS_BITS> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, write_pointer, read_pointer, occupied, full);
        clock!(self, clock, storage);
        self.push.next = self.push_valid.val() && !self.full.q.val();
        self.pop.next = self.pop_ready.val() && self.occupied.q.val();
        self.push_ready.next = !self.full.q.val();
        self.pop_valid.next = self.occupied.q.val();
        self.storage.read_address.next = self.read_pointer.q.val();
        self.pop_data.next = self.storage.read_data.val();
        self.storage.write_address.next = self.write_pointer.q.val();
        self.storage.write_data.next = self.push_data.val();
        self.storage.write_enable.next = self.push.val();
        self.next_write_pointer.next = self.write_pointer.q.val() + self.one.val();
        self.next_read_pointer.next = self.read_pointer.q.val() + self.one.val();
        if self.push.val() {
            self.write_pointer.d.next = self.next_write_pointer.val();
        }
        if self.pop.val() {
            self.read_pointer.d.next = self.next_read_pointer.val();
        }
        // Only a push alone fills the FIFO, and only a pop alone empties it.
        if self.push.val() && !self.pop.val() {
            self.occupied.d.next = true;
            self.full.d.next = self.next_write_pointer.val() == self.read_pointer.q.val();
        }
        if self.pop.val() && !self.push.val() {
            self.full.d.next = false;
            self.occupied.d.next = self.next_read_pointer.val() != self.write_pointer.q.val();
        }
        if self.reset.val() {
            self.write_pointer.d.next = self.zero.val();
            self.read_pointer.d.next = self.zero.val();
            self.occupied.d.next = false;
            self.full.d.next = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{check_random_traffic, cycle, settle};

    #[test]
    fn keeps_order_and_capacity_under_random_traffic() {
        check_random_traffic!(Fifo::<Bits<16>, 3>::default(), 8, 1);
    }

    #[test]
    fn reset_empties_it() {
        let mut fifo = Fifo::<Bits<8>, 2>::default();
        fifo.connect_all();
        let clock = |fifo: &mut Fifo<Bits<8>, 2>, level| fifo.clock.next = Clock { clk: level };
        fifo.push_valid.next = true;
        fifo.push_data.next = 5u64.into();
        cycle(&mut fifo, clock);
        fifo.push_valid.next = false;
        fifo.reset.next = true;
        cycle(&mut fifo, clock);
        fifo.reset.next = false;
        settle(&mut fifo);
        assert!(!fifo.pop_valid.val());
        assert!(fifo.push_ready.val());
    }
}
