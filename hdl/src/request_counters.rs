//! The request counters: how many requests ended in each status, kept in block RAM.
//!
//! Nine 32-bit counters in flip-flops, each with its own adder and all of them behind the
//! host's read multiplexer, took about a tenth of an iCE40 UP5K. At most one request is
//! counted a clock, so one adder does: a count is read the clock its request arrives and
//! written back, one higher, the clock after. A second copy of the counts, written
//! alongside, answers the host, so a stream of requests never holds up a register read.
//!
//! A count read in the clock its status is being written back would be undefined, so that
//! read is skipped and the value just written is forwarded instead. After a reset the
//! counters are zeroed, one a clock ([`STATUSES`] clocks), while `clearing` is high; the
//! programming engine holds the AVT for longer than that while it initializes its tables,
//! so no request arrives to be counted meanwhile.

use crate::constants::constant;
use crate::ram::BlockRam;
use npmu_abi::{Fault, STATUS_BITS};
use rust_hdl::prelude::*;

/// One counter per request status (`Ok` and each fault).
pub const STATUSES: usize = Fault::MAX_CODE as usize + 1;

#[derive(LogicBlock)]
pub struct RequestCounters {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, bool>,
    /// A request ended in `count_status`.
    pub count_valid: Signal<In, bool>,
    pub count_status: Signal<In, Bits<STATUS_BITS>>,
    /// Reads `read_status`'s count: every request counted before this clock is in the
    /// value `read_count` shows the clock after.
    pub read_start: Signal<In, bool>,
    pub read_status: Signal<In, Bits<STATUS_BITS>>,
    pub read_count: Signal<Out, Bits<32>>,
    /// Zeroing the counters after a reset: nothing may be counted or read yet.
    pub clearing: Signal<Out, bool>,

    counts: BlockRam<Bits<32>, STATUS_BITS>,
    host_copy: BlockRam<Bits<32>, STATUS_BITS>,
    /// The request whose count is being read, to be written back next clock.
    counting: DFF<bool>,
    counting_status: DFF<Bits<STATUS_BITS>>,
    /// The count written back last clock, for a read that could not see it.
    written: DFF<bool>,
    written_status: DFF<Bits<STATUS_BITS>>,
    written_count: DFF<Bits<32>>,
    reading_status: DFF<Bits<STATUS_BITS>>,
    zeroing: DFF<bool>,
    zeroing_status: DFF<Bits<STATUS_BITS>>,
    previous_count: Signal<Local, Bits<32>>,
    next_count: Signal<Local, Bits<32>>,
    writing: Signal<Local, bool>,
    write_status: Signal<Local, Bits<STATUS_BITS>>,

    last_status: Constant<Bits<STATUS_BITS>>,
    one_status: Constant<Bits<STATUS_BITS>>,
    zero_status: Constant<Bits<STATUS_BITS>>,
    one_32: Constant<Bits<32>>,
    zero_32: Constant<Bits<32>>,
}

impl Default for RequestCounters {
    fn default() -> Self {
        Self {
            clock: Default::default(),
            reset: Default::default(),
            count_valid: Default::default(),
            count_status: Default::default(),
            read_start: Default::default(),
            read_status: Default::default(),
            read_count: Default::default(),
            clearing: Default::default(),
            counts: Default::default(),
            host_copy: Default::default(),
            counting: Default::default(),
            counting_status: Default::default(),
            written: Default::default(),
            written_status: Default::default(),
            written_count: Default::default(),
            reading_status: Default::default(),
            zeroing: Default::default(),
            zeroing_status: Default::default(),
            previous_count: Default::default(),
            next_count: Default::default(),
            writing: Default::default(),
            write_status: Default::default(),
            last_status: constant(STATUSES as u64 - 1),
            one_status: constant(1),
            zero_status: constant(0),
            one_32: constant(1),
            zero_32: constant(0),
        }
    }
}

impl Logic for RequestCounters {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            counting,
            counting_status,
            written,
            written_status,
            written_count,
            reading_status,
            zeroing,
            zeroing_status
        );
        self.counts.clock.next = self.clock.val();
        self.host_copy.clock.next = self.clock.val();
        self.clearing.next = self.zeroing.q.val();

        // Counting, first half: read the count.
        self.counts.read_address.next = self.count_status.val();
        self.counts.read_enable.next = self.count_valid.val()
            && !(self.counting.q.val()
                && (self.counting_status.q.val() == self.count_status.val()));
        self.counting.d.next = self.count_valid.val() && !self.zeroing.q.val();
        self.counting_status.d.next = self.count_status.val();

        // Second half: write it back one higher, to both copies.
        self.previous_count.next = self.counts.read_data.val();
        if self.written.q.val() && (self.written_status.q.val() == self.counting_status.q.val()) {
            self.previous_count.next = self.written_count.q.val();
        }
        self.next_count.next = self.previous_count.val() + self.one_32.val();
        self.writing.next = self.counting.q.val();
        self.write_status.next = self.counting_status.q.val();
        if self.zeroing.q.val() {
            self.next_count.next = self.zero_32.val();
            self.writing.next = true;
            self.write_status.next = self.zeroing_status.q.val();
        }
        self.counts.write_enable.next = self.writing.val();
        self.counts.write_address.next = self.write_status.val();
        self.counts.write_data.next = self.next_count.val();
        self.host_copy.write_enable.next = self.writing.val();
        self.host_copy.write_address.next = self.write_status.val();
        self.host_copy.write_data.next = self.next_count.val();
        self.written.d.next = self.counting.q.val() && !self.zeroing.q.val();
        self.written_status.d.next = self.counting_status.q.val();
        self.written_count.d.next = self.next_count.val();

        // The host's reads.
        self.host_copy.read_address.next = self.read_status.val();
        self.host_copy.read_enable.next = self.read_start.val()
            && !(self.writing.val() && (self.write_status.val() == self.read_status.val()));
        if self.read_start.val() {
            self.reading_status.d.next = self.read_status.val();
        }
        self.read_count.next = self.host_copy.read_data.val();
        if self.written.q.val() && (self.written_status.q.val() == self.reading_status.q.val()) {
            self.read_count.next = self.written_count.q.val();
        }

        if self.zeroing.q.val() {
            self.zeroing_status.d.next = self.zeroing_status.q.val() + self.one_status.val();
            if self.zeroing_status.q.val() == self.last_status.val() {
                self.zeroing.d.next = false;
            }
        }
        if self.reset.val() {
            self.counting.d.next = false;
            self.written.d.next = false;
            self.zeroing.d.next = true;
            self.zeroing_status.d.next = self.zero_status.val();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{cycle, settle};
    use rand::{Rng, SeedableRng};

    fn clock(counters: &mut RequestCounters, level: bool) {
        counters.clock.next = Clock { clk: level };
    }

    fn counters() -> RequestCounters {
        let mut counters = RequestCounters::default();
        counters.connect_all();
        counters.reset.next = true;
        cycle(&mut counters, clock);
        counters.reset.next = false;
        let mut clocks = 0;
        while {
            settle(&mut counters);
            counters.clearing.val()
        } {
            cycle(&mut counters, clock);
            clocks += 1;
        }
        assert_eq!(clocks, STATUSES, "one counter zeroed a clock");
        counters
    }

    /// Counts `statuses` one a clock, reads `status` in the clock after the last, and
    /// returns what the read shows.
    fn count_then_read(counters: &mut RequestCounters, statuses: &[u64], status: u64) -> u64 {
        for &counted in statuses {
            counters.count_valid.next = true;
            counters.count_status.next = counted.into();
            cycle(counters, clock);
        }
        counters.count_valid.next = false;
        counters.read_start.next = true;
        counters.read_status.next = status.into();
        cycle(counters, clock);
        counters.read_start.next = false;
        settle(counters);
        counters.read_count.val().to_u64()
    }

    #[test]
    fn back_to_back_requests_of_one_status_all_count() {
        let mut counters = counters();
        assert_eq!(count_then_read(&mut counters, &[3, 3, 3, 3], 3), 4);
        assert_eq!(count_then_read(&mut counters, &[3, 5, 3, 5, 3], 3), 7);
        assert_eq!(count_then_read(&mut counters, &[], 5), 2);
        assert_eq!(count_then_read(&mut counters, &[], 0), 0);
    }

    #[test]
    fn a_reset_zeroes_every_counter() {
        let mut counters = counters();
        let all: Vec<u64> = (0..STATUSES as u64).collect();
        count_then_read(&mut counters, &all, 0);
        counters.reset.next = true;
        cycle(&mut counters, clock);
        counters.reset.next = false;
        settle(&mut counters);
        assert!(counters.clearing.val());
        counters.count_valid.next = true;
        counters.count_status.next = 2u64.into();
        cycle(&mut counters, clock);
        counters.count_valid.next = false;
        while counters.clearing.val() {
            cycle(&mut counters, clock);
        }
        for status in 0..STATUSES as u64 {
            assert_eq!(
                count_then_read(&mut counters, &[], status),
                0,
                "status {status}"
            );
        }
    }

    /// Random requests and reads in every clock; a read started in clock `t` must show
    /// every request counted before `t`, including the one still being written back.
    #[test]
    fn reads_interleaved_with_counting_match_a_model() {
        let mut counters = counters();
        let mut random =
            rand::rngs::StdRng::seed_from_u64(npmu_test_seed::seed("request counters", 11));
        let mut model = [0u64; STATUSES];
        let mut expected_read = None;
        for step in 0..5000 {
            // Few statuses at first, so that the same one often comes back to back.
            let statuses = if step < 2500 { 2 } else { STATUSES as u64 };
            let count = random.gen_bool(0.8);
            let count_status = random.gen_range(0..statuses);
            let read = random.gen_bool(0.5);
            let read_status = random.gen_range(0..statuses);
            counters.count_valid.next = count;
            counters.count_status.next = count_status.into();
            counters.read_start.next = read;
            counters.read_status.next = read_status.into();
            settle(&mut counters);
            if let Some((status, value)) = expected_read {
                assert_eq!(
                    counters.read_count.val().to_u64(),
                    value,
                    "step {step}: status {status}"
                );
            }
            expected_read = read.then(|| (read_status, model[read_status as usize]));
            if count {
                model[count_status as usize] += 1;
            }
            cycle(&mut counters, clock);
        }
        assert!(model.iter().all(|&count| count > 100));
    }
}
