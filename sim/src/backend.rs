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

    /// Clocks `inputs`, which assert reset, for [`RESET_CLOCKS`]; returns the clocks spent.
    fn hold_reset(&mut self, inputs: &Self::Inputs) -> u64 {
        for _ in 0..RESET_CLOCKS {
            self.settle(inputs);
            self.rising_edge();
        }
        RESET_CLOCKS
    }

    /// When the environment variable [`WAVEFORM_DIRECTORY`] names a directory, writes the
    /// run's waveform there, named after the thread (the test) that runs it.
    fn trace_if_asked(&mut self) {
        let Some(directory) = std::env::var_os(WAVEFORM_DIRECTORY) else {
            return;
        };
        let name: String = std::thread::current()
            .name()
            .unwrap_or("simulation")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let path = Path::new(&directory).join(format!("{name}.vcd"));
        match self.trace_to(&path) {
            Ok(()) => tracing::info!(path = %path.display(), "writing a waveform"),
            Err(error) => tracing::warn!(%error, "no waveform"),
        }
    }
}

/// Clocks a reset is held for.
pub const RESET_CLOCKS: u64 = 2;

/// Environment variable naming a directory where every harness writes its waveform;
/// see [`Backend::trace_if_asked`].
pub const WAVEFORM_DIRECTORY: &str = "NPMU_SIM_WAVEFORMS";

/// Settles RustHDL's event-driven simulation of `block` after an input change.
fn settle_block<B: Block>(block: &mut B) {
    assert!(simulate(block, 100_000), "the logic did not settle");
}

/// The iCE40 configuration's protection core under RustHDL's simulator.
pub struct RustHdlCore(Box<Ice40ProtectionCore>);

impl RustHdlCore {
    pub fn new() -> Self {
        let mut core = Box::new(Ice40ProtectionCore::new(
            &Config::ICE40,
            Config::ICE40.queues,
        ));
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
