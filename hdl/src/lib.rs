//! The npmu network interface (NI) in RustHDL.

pub mod avt;
pub mod block_ram_fifo;
pub mod fifo;
pub mod ram;
pub mod verilog;
#[cfg(test)]
mod testing;
