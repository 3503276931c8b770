//! What a simulator offers the harnesses, and RustHDL's own simulator as one.

use crate::ports::{network_interface, protection_core};
use crate::SimError;
use npmu_abi::Config;
use npmu_hdl::network_interface::Ice40NetworkInterface;
use npmu_hdl::protection_core::Ice40ProtectionCore;
use rust_hdl::prelude::*;
use std::path::Path;

/// A cycle-based simulator of a top. A clock is [`Backend::settle`] (inputs in, clock
/// low, outputs out) then [`Backend::rising_edge`].
pub trait Backend {
    type Inputs;
    type Outputs;
    fn config(&self) -> &Config;
    /// Applies `inputs` with the clock low and returns the outputs they settle to.
    fn settle(&mut self, inputs: &Self::Inputs) -> Self::Outputs;
    /// The clock's rising edge: every register takes its next value.
    fn rising_edge(&mut self);
    /// Starts writing a waveform of every signal to `path`.
    fn trace_to(&mut self, _path: &Path) -> Result<(), SimError> {
        Err(SimError::NoWaveforms)
    }
}

/// Settles RustHDL's event-driven simulation of `block` after an input change.
fn settle_block<B: Block>(block: &mut B) {
    assert!(simulate(block, 100_000), "the logic did not settle");
}

/// The iCE40 configuration's protection core under RustHDL's simulator.
pub struct RustHdlCore(Box<Ice40ProtectionCore>);

impl RustHdlCore {
    pub fn new() -> Self {
        let mut core = Box::new(Ice40ProtectionCore::new(&Config::ICE40));
        core.connect_all();
        Self(core)
    }
}

impl Default for RustHdlCore {
    fn default() -> Self {
        Self::new()
    }
}

impl Backend for RustHdlCore {
    type Inputs = protection_core::Inputs;
    type Outputs = protection_core::Outputs;

    fn config(&self) -> &Config {
        &Config::ICE40
    }

    fn settle(&mut self, inputs: &Self::Inputs) -> Self::Outputs {
        protection_core::drive_rust_hdl(&mut self.0, inputs);
        self.0.clock.next = Clock { clk: false };
        settle_block(&mut *self.0);
        protection_core::sample_rust_hdl(&self.0)
    }

    fn rising_edge(&mut self) {
        self.0.clock.next = Clock { clk: true };
        settle_block(&mut *self.0);
    }
}

/// The iCE40 configuration's whole NI under RustHDL's simulator.
pub struct RustHdlNetworkInterface(Box<Ice40NetworkInterface>);

impl RustHdlNetworkInterface {
    pub fn new() -> Self {
        let mut ni = Box::new(Ice40NetworkInterface::new(&Config::ICE40));
        ni.connect_all();
        Self(ni)
    }
}

impl Default for RustHdlNetworkInterface {
    fn default() -> Self {
        Self::new()
    }
}

impl Backend for RustHdlNetworkInterface {
    type Inputs = network_interface::Inputs;
    type Outputs = network_interface::Outputs;

    fn config(&self) -> &Config {
        &Config::ICE40
    }

    fn settle(&mut self, inputs: &Self::Inputs) -> Self::Outputs {
        network_interface::drive_rust_hdl(&mut self.0, inputs);
        self.0.clock.next = Clock { clk: false };
        settle_block(&mut *self.0);
        network_interface::sample_rust_hdl(&self.0)
    }

    fn rising_edge(&mut self) {
        self.0.clock.next = Clock { clk: true };
        settle_block(&mut *self.0);
    }
}
