//! The npmu network interface simulated cycle by cycle.
//!
//! Two tops are built, each in both configurations: the protection core alone
//! ([`VerilatedCore`], driven by a [`CoreHarness`] on its request port) and the whole NI
//! ([`VerilatedNetworkInterface`], driven by a [`DeviceHarness`] as a host would: through
//! registers and queues in host memory). RustHDL's own simulator runs the same designs as a
//! [`Backend`] too. The harnesses put a persistent memory behind the memory port, can hold
//! back every channel, check every answer against the golden model of `npmu-model`, and a
//! [`Monitor`] fails the run at the first memory access outside what the tables allow.
//!
//! For the driver, [`SimulatedCard`] is the whole NI as a card: on its own thread, DMA into
//! the driver's memory through a [`SimulatedIommu`], persistent memory in a file.
//! [`ModelCard`] is the same card with the golden model in place of the Verilator model: it
//! answers every access at once, for measuring the host code's own costs and for fast tests.
//! [`SimulatedBoard`] is the protection core behind its UART bridge (`npmu_board`), its line
//! driven bit by bit, for the driver's serial bridge backend.

pub mod backend;
mod core_harness;
mod device_harness;
mod device_ports;
pub mod device_traffic;
mod file_memory;
mod host_port;
mod iommu;
mod memory_port;
mod mmio;
mod model_card;
mod monitor;
pub mod ports;
mod simulated_board;
mod simulated_card;
mod stall;
pub mod traffic;
mod verilated;

pub use backend::{Backend, RustHdlCore, RustHdlNetworkInterface, WAVEFORM_DIRECTORY};
pub use core_harness::{
    Completion, CoreHarness, HarnessOptions, MemoryAccess, Stalls, HANG_CLOCKS,
};
pub use device_harness::{
    DeviceCompletion, DeviceHarness, DeviceOptions, DeviceStalls, SubmitError,
};
pub use file_memory::{FileMemory, FileMemoryError};
pub use host_port::{DmaTarget, HostPort};
pub use iommu::SimulatedIommu;
pub use memory_port::MemoryPort;
pub use model_card::{ModelCard, ModelCardError, ModelCardOptions};
pub use monitor::Monitor;
pub use simulated_board::{BoardError, BoardLink, BoardOptions, SimulatedBoard};
pub use simulated_card::{CardError, CardOptions, SimulatedCard};
pub use stall::Stall;
pub use verilated::{Verilated, VerilatedBoard, VerilatedCore, VerilatedNetworkInterface};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum SimError {
    #[error("no simulation model is built for configuration {0:?}")]
    UnsupportedConfig(String),
    #[error("cannot open waveform file {0}")]
    Waveform(String),
    #[error("this backend cannot write waveforms")]
    NoWaveforms,
}

/// The Verilog the simulation models of `top` (`npmu_core` or `npmu_ni`) were built from.
pub fn generated_verilog(top: &str, config: &npmu_abi::Config) -> std::path::PathBuf {
    std::path::Path::new(env!("OUT_DIR")).join(format!("{top}_{}.v", config.name))
}
