//! A first-word-fall-through FIFO in a [`BlockRam`], for queues too deep for flip-flops.
//! The block RAM's read register is the head of the queue: an entry is fetched into it
//! when the head is empty or being popped, so pops run at one per cycle, and an entry
//! pushed in one cycle reaches the head two cycles later.
//!
//! Whether the RAM is full and whether it holds entries not yet fetched are registers,
//! worked out from the pointers' next values, so that `push_ready` leaves a flip-flop.

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
    // Next entry to move from the RAM into the read register.
    fetch_pointer: DFF<Bits<ADDRESS_BITS>>,
    // The read register holds an entry not yet popped.
    head_valid: DFF<bool>,
    // The RAM holds entries not yet fetched; every slot of the RAM holds one.
    unfetched: DFF<bool>,
    full: DFF<bool>,
    push: Signal<Local, bool>,
    pop: Signal<Local, bool>,
    fetch: Signal<Local, bool>,
    next_write_pointer: Signal<Local, Bits<ADDRESS_BITS>>,
    next_fetch_pointer: Signal<Local, Bits<ADDRESS_BITS>>,
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
            fetch_pointer: Default::default(),
            head_valid: Default::default(),
            unfetched: Default::default(),
            full: Default::default(),
            push: Default::default(),
            pop: Default::default(),
            fetch: Default::default(),
            next_write_pointer: Default::default(),
            next_fetch_pointer: Default::default(),
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
            fetch_pointer,
            head_valid,
            unfetched,
            full
        );
        clock!(self, clock, storage);
        self.push.next = self.push_valid.val() && !self.full.q.val();
        self.pop.next = self.pop_ready.val() && self.head_valid.q.val();
        // The slot being written is never the one fetched: the RAM is either empty, and
        // nothing is fetched, or full, and the push is refused.
        self.fetch.next = self.unfetched.q.val() && (!self.head_valid.q.val() || self.pop.val());
        self.push_ready.next = !self.full.q.val();
        self.pop_valid.next = self.head_valid.q.val();
        self.pop_data.next = self.storage.read_data.val();
        self.storage.write_enable.next = self.push.val();
        self.storage.write_address.next = self.write_pointer.q.val();
        self.storage.write_data.next = self.push_data.val();
        self.storage.read_enable.next = self.fetch.val();
        self.storage.read_address.next = self.fetch_pointer.q.val();
        self.head_valid.d.next = self.fetch.val() || (self.head_valid.q.val() && !self.pop.val());
        self.next_write_pointer.next = self.write_pointer.q.val() + self.one.val();
        self.next_fetch_pointer.next = self.fetch_pointer.q.val() + self.one.val();
        if self.push.val() {
            self.write_pointer.d.next = self.next_write_pointer.val();
        }
        if self.fetch.val() {
            self.fetch_pointer.d.next = self.next_fetch_pointer.val();
        }
        // Only a push alone fills the RAM, and only a fetch alone empties it.
        if self.push.val() && !self.fetch.val() {
            self.unfetched.d.next = true;
            self.full.d.next = self.next_write_pointer.val() == self.fetch_pointer.q.val();
        }
        if self.fetch.val() && !self.push.val() {
            self.full.d.next = false;
            self.unfetched.d.next = self.next_fetch_pointer.val() != self.write_pointer.q.val();
        }
        if self.reset.val() {
            self.write_pointer.d.next = self.zero.val();
            self.fetch_pointer.d.next = self.zero.val();
            self.head_valid.d.next = false;
            self.unfetched.d.next = false;
            self.full.d.next = false;
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
