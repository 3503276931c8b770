//! Stepping RustHDL's own simulator one clock at a time, for the unit tests of blocks.

use rust_hdl::prelude::*;

/// Propagates the inputs set so far through the combinational logic.
pub fn settle<B: Block>(block: &mut B) {
    assert!(simulate(block, 100_000), "the logic did not settle");
}

/// One rising edge then the falling edge; `clock` sets the block's clock input.
pub fn cycle<B: Block>(block: &mut B, clock: impl Fn(&mut B, bool)) {
    settle(block);
    clock(block, true);
    settle(block);
    clock(block, false);
    settle(block);
}

/// `bytes` in beats of `width` byte lanes, the first byte in lane `first_lane`: each beat's
/// data and the mask of the lanes it carries (one bit a lane).
pub fn lane_beats(width: usize, first_lane: usize, bytes: &[u8]) -> Vec<(u64, u64)> {
    let mut padded = vec![None; first_lane];
    padded.extend(bytes.iter().map(|byte| Some(*byte)));
    padded
        .chunks(width)
        .map(|beat| {
            beat.iter()
                .enumerate()
                .fold((0, 0), |(data, mask), (index, byte)| match byte {
                    Some(byte) => (data | u64::from(*byte) << (8 * index), mask | 1 << index),
                    None => (data, mask),
                })
        })
        .collect()
}

/// Random pushes and pops against a queue, checking order, capacity and flags: `$fifo`
/// holds `$capacity` entries and an entry reaches the head `$latency` clocks after its
/// push at the latest. A macro because both FIFOs have the same ports but no common trait.
macro_rules! check_random_traffic {
    ($fifo:expr, $capacity:expr, $latency:expr) => {{
        use rand::{Rng, SeedableRng};
        use std::collections::VecDeque;
        let fifo = &mut $fifo;
        fifo.connect_all();
        let mut random = rand::rngs::StdRng::seed_from_u64(npmu_test_seed::seed("FIFO traffic", 7));
        let mut model: VecDeque<(u64, usize)> = VecDeque::new();
        let mut next_value = 1u64;
        let mut peak = 0;
        for step in 0..4000 {
            let push = random.gen_bool(if step < 2000 { 0.7 } else { 0.3 });
            let pop = random.gen_bool(if step < 2000 { 0.3 } else { 0.7 });
            fifo.push_valid.next = push;
            fifo.push_data.next = next_value.into();
            fifo.pop_ready.next = pop;
            crate::testing::settle(fifo);
            let due = model
                .front()
                .is_some_and(|(_, pushed)| step - pushed >= $latency);
            assert!(
                !due || fifo.pop_valid.val(),
                "step {step}: the head is late"
            );
            if fifo.pop_valid.val() {
                let head = fifo.pop_data.val().to_u64();
                assert_eq!(Some(head), model.front().map(|(v, _)| *v), "step {step}");
            }
            assert!(
                fifo.push_ready.val() || model.len() + $latency > $capacity,
                "step {step}: refused a push with {} entries",
                model.len()
            );
            if pop && fifo.pop_valid.val() {
                model.pop_front();
            }
            if push && fifo.push_ready.val() {
                model.push_back((next_value, step));
                next_value += 1;
            }
            peak = peak.max(model.len());
            assert!(model.len() <= $capacity);
            crate::testing::cycle(fifo, |fifo, level| fifo.clock.next = Clock { clk: level });
        }
        assert_eq!(peak, $capacity, "the traffic should fill the FIFO");
    }};
}
pub(crate) use check_random_traffic;
