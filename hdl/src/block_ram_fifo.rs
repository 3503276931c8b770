//! A first-word-fall-through FIFO in a [`BlockRam`], for queues too deep for flip-flops.
//! The block RAM's read register is the head of the queue: an entry is fetched into it
//! when the head is empty or being popped, so pops run at one per cycle, and an entry
//! pushed in one cycle reaches the head two cycles later.

use crate::ram::BlockRam;
use rust_hdl::prelude::*;

#[derive(LogicBlock)]
pub struct BlockRamFifo<D: Synth, const ADDRESS_BITS: usize> {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, bool>,
    pub push_valid: Signal<In, bool>,
    pub push_ready: Signal<Out, bool>,
    pub push_data: Signal<In, D>,
    pub pop_valid: Signal<Out, bool>,
    pub pop_ready: Signal<In, bool>,
    pub pop_data: Signal<Out, D>,
    storage: BlockRam<D, ADDRESS_BITS>,
    write_pointer: DFF<Bits<ADDRESS_BITS>>,
    write_lap: DFF<bool>,
    // Next entry to move from the RAM into the read register.
    fetch_pointer: DFF<Bits<ADDRESS_BITS>>,
    fetch_lap: DFF<bool>,
    // The read register holds an entry not yet popped.
    head_valid: DFF<bool>,
    unfetched: Signal<Local, bool>,
    full: Signal<Local, bool>,
    pop: Signal<Local, bool>,
    fetch: Signal<Local, bool>,
    one: Constant<Bits<ADDRESS_BITS>>,
    zero: Constant<Bits<ADDRESS_BITS>>,
}

impl<D: Synth, const ADDRESS_BITS: usize> Default for BlockRamFifo<D, ADDRESS_BITS> {
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
            fetch_pointer: Default::default(),
            fetch_lap: Default::default(),
            head_valid: Default::default(),
            unfetched: Default::default(),
            full: Default::default(),
            pop: Default::default(),
            fetch: Default::default(),
            one: Constant::new(1u64.into()),
            zero: Constant::new(0u64.into()),
        }
    }
}

impl<D: Synth, const ADDRESS_BITS: usize> Logic for BlockRamFifo<D, ADDRESS_BITS> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            write_pointer,
            write_lap,
            fetch_pointer,
            fetch_lap,
            head_valid
        );
        clock!(self, clock, storage);
        self.unfetched.next = (self.write_pointer.q.val() != self.fetch_pointer.q.val())
            || (self.write_lap.q.val() != self.fetch_lap.q.val());
        self.full.next = (self.write_pointer.q.val() == self.fetch_pointer.q.val())
            && (self.write_lap.q.val() != self.fetch_lap.q.val());
        self.pop.next = self.pop_ready.val() && self.head_valid.q.val();
        // The slot being written is never the one fetched: equal pointers mean either
        // nothing to fetch or a full RAM that refuses the push.
        self.fetch.next = self.unfetched.val() && (!self.head_valid.q.val() || self.pop.val());
        self.push_ready.next = !self.full.val();
        self.pop_valid.next = self.head_valid.q.val();
        self.pop_data.next = self.storage.read_data.val();
        self.storage.write_enable.next = self.push_valid.val() && !self.full.val();
        self.storage.write_address.next = self.write_pointer.q.val();
        self.storage.write_data.next = self.push_data.val();
        self.storage.read_enable.next = self.fetch.val();
        self.storage.read_address.next = self.fetch_pointer.q.val();
        self.head_valid.d.next = self.fetch.val() || (self.head_valid.q.val() && !self.pop.val());
        if self.push_valid.val() && !self.full.val() {
            self.write_pointer.d.next = self.write_pointer.q.val() + self.one.val();
            if self.write_pointer.q.val().all() {
                self.write_lap.d.next = !self.write_lap.q.val();
            }
        }
        if self.fetch.val() {
            self.fetch_pointer.d.next = self.fetch_pointer.q.val() + self.one.val();
            if self.fetch_pointer.q.val().all() {
                self.fetch_lap.d.next = !self.fetch_lap.q.val();
            }
        }
        if self.reset.val() {
            self.write_pointer.d.next = self.zero.val();
            self.write_lap.d.next = false;
            self.fetch_pointer.d.next = self.zero.val();
            self.fetch_lap.d.next = false;
            self.head_valid.d.next = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::check_random_traffic;

    #[test]
    fn keeps_order_and_capacity_under_random_traffic() {
        check_random_traffic!(BlockRamFifo::<Bits<16>, 3>::default(), 9, 2);
    }
}
