//! The npmu network interface simulated cycle by cycle.
//!
//! [`VerilatedNetworkInterface`] is the Verilator model of the NI's generated Verilog,
//! [`RustHdlNetworkInterface`] the same design under RustHDL's own simulator; both are a
//! [`Backend`]. A [`Harness`] drives either from the host side: MMIO, the request port
//! and a persistent memory behind the memory port, with back-pressure on every port, a
//! [`Monitor`] that fails the run at the first access outside what the tables allow, and
//! the golden model of `npmu-model` checking every response.

pub mod backend;
mod harness;
mod memory_port;
mod monitor;
pub mod ports;
pub mod traffic;
mod verilated;

pub use backend::{Backend, RustHdlNetworkInterface};
pub use harness::{
    Completion, Harness, HarnessOptions, MemoryAccess, Stall, Stalls, HANG_CLOCKS,
    WAVEFORM_DIRECTORY,
};
pub use memory_port::MemoryPort;
pub use monitor::Monitor;
pub use verilated::VerilatedNetworkInterface;

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

/// The Verilog the simulation models were built from.
pub fn generated_verilog(config: &npmu_abi::Config) -> std::path::PathBuf {
    std::path::Path::new(env!("OUT_DIR")).join(format!("npmu_ni_{}.v", config.name))
}
