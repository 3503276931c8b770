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
