//! The npmu network interface (NI) in RustHDL.

pub mod avt;
pub mod block_ram_fifo;
mod constants;
pub mod csr;
pub mod engine;
pub mod fifo;
pub mod flow;
pub mod formal;
pub mod mover;
pub mod network_interface;
pub mod pcie;
pub mod programming;
pub mod protection_core;
pub mod ram;
pub mod request_counters;
pub mod responder;
pub mod serial_board;
pub mod serial_bridge;
#[cfg(test)]
mod testing;
pub mod uart_receiver;
pub mod uart_transmitter;
pub mod verilog;
