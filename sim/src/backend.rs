//! What a simulator of the NI offers the harness, and the RustHDL simulator as one.

use crate::ports::{drive_rust_hdl, sample_rust_hdl, Inputs, Outputs};
use crate::SimError;
use npmu_abi::Config;
use npmu_hdl::network_interface::{Ice40NetworkInterface, NetworkInterface};
use rust_hdl::prelude::*;
use std::path::Path;

/// A cycle-based simulator of the NI. A clock is [`Backend::settle`] (inputs in, clock
/// low, outputs out) then [`Backend::rising_edge`].
pub trait Backend {
    fn config(&self) -> &Config;
    /// Applies `inputs` with the clock low and returns the outputs they settle to.
    fn settle(&mut self, inputs: &Inputs) -> Outputs;
    /// The clock's rising edge: every register takes its next value.
    fn rising_edge(&mut self);
    /// Starts writing a waveform of every signal to `path`.
    fn trace_to(&mut self, _path: &Path) -> Result<(), SimError> {
        Err(SimError::NoWaveforms)
    }
}

/// The NI under RustHDL's own event-driven simulator.
pub struct RustHdlNetworkInterface<const D: usize, const S: usize, const C: usize, const E: usize> {
    ni: Box<NetworkInterface<D, S, C, E>>,
    config: Config,
}

/// The iCE40 configuration under RustHDL's simulator; the default one is too large for it.
pub type RustHdlIce40 = RustHdlNetworkInterface<32, 4, 4, 8>;

impl RustHdlIce40 {
    pub fn new() -> Self {
        let config = Config::ICE40;
        let mut ni: Box<Ice40NetworkInterface> = Box::new(NetworkInterface::new(&config));
        ni.connect_all();
        Self { ni, config }
    }
}

impl Default for RustHdlIce40 {
    fn default() -> Self {
        Self::new()
    }
}

impl<const D: usize, const S: usize, const C: usize, const E: usize> Backend
    for RustHdlNetworkInterface<D, S, C, E>
{
    fn config(&self) -> &Config {
        &self.config
    }

    fn settle(&mut self, inputs: &Inputs) -> Outputs {
        drive_rust_hdl(&mut self.ni, inputs);
        self.ni.clock.next = Clock { clk: false };
        assert!(
            simulate(&mut *self.ni, 100_000),
            "the NI's logic did not settle"
        );
        sample_rust_hdl(&self.ni)
    }

    fn rising_edge(&mut self) {
        self.ni.clock.next = Clock { clk: true };
        assert!(
            simulate(&mut *self.ni, 100_000),
            "the NI's logic did not settle"
        );
    }
}
