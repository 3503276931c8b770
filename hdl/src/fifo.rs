//! A first-word-fall-through FIFO in a [`RegisterFile`]: an entry pushed in one cycle is at
//! the head in the next, and push and pop both run at one entry per cycle.

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
    // The pointers run over the storage twice per lap bit, so equal pointers with equal
    // laps mean empty and with different laps mean full.
    write_lap: DFF<bool>,
    read_pointer: DFF<Bits<ADDRESS_BITS>>,
    read_lap: DFF<bool>,
    empty: Signal<Local, bool>,
    full: Signal<Local, bool>,
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
            write_lap: Default::default(),
            read_pointer: Default::default(),
            read_lap: Default::default(),
            empty: Default::default(),
            full: Default::default(),
            one: Constant::new(1u64.into()),
            zero: Constant::new(0u64.into()),
        }
    }
}

impl<D: Synth, const ADDRESS_BITS: usize> Logic for Fifo<D, ADDRESS_BITS> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            write_pointer,
            write_lap,
            read_pointer,
            read_lap
        );
        clock!(self, clock, storage);
        self.empty.next = (self.write_pointer.q.val() == self.read_pointer.q.val())
            && (self.write_lap.q.val() == self.read_lap.q.val());
        self.full.next = (self.write_pointer.q.val() == self.read_pointer.q.val())
            && (self.write_lap.q.val() != self.read_lap.q.val());
        self.push_ready.next = !self.full.val();
        self.pop_valid.next = !self.empty.val();
        self.storage.read_address.next = self.read_pointer.q.val();
        self.pop_data.next = self.storage.read_data.val();
        self.storage.write_address.next = self.write_pointer.q.val();
        self.storage.write_data.next = self.push_data.val();
        self.storage.write_enable.next = self.push_valid.val() && !self.full.val();
        if self.push_valid.val() && !self.full.val() {
            self.write_pointer.d.next = self.write_pointer.q.val() + self.one.val();
            if self.write_pointer.q.val().all() {
                self.write_lap.d.next = !self.write_lap.q.val();
            }
        }
        if self.pop_ready.val() && !self.empty.val() {
            self.read_pointer.d.next = self.read_pointer.q.val() + self.one.val();
            if self.read_pointer.q.val().all() {
                self.read_lap.d.next = !self.read_lap.q.val();
            }
        }
        if self.reset.val() {
            self.write_pointer.d.next = self.zero.val();
            self.write_lap.d.next = false;
            self.read_pointer.d.next = self.zero.val();
            self.read_lap.d.next = false;
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
