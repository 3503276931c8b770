//! The npmu userspace driver: the persistent memory manager's view of one card.
//!
//! [`NpmuDevice`] programs the NI's translation tables and runs its host queues over any
//! [`npmu_device::Device`]: a real card through Linux VFIO ([`vfio`]) or, with the
//! `simulated` feature, the Verilator model of the NI (`npmu_sim::SimulatedCard`).
//! Every offset, field and layout comes from `npmu-abi`.

pub mod bridge;
mod device;
pub mod dma;
mod error;
pub mod flags;
pub mod iova;
pub mod mmio_region;
mod queue;
pub mod vfio;

pub use device::{Capabilities, DriverOptions, NpmuDevice, Operation, Ticket, Transfer};
pub use dma::{DmaBuffer, DmaDomain, DmaError};
pub use error::DriverError;
pub use iova::{IovaAllocator, IovaError};
pub use npmu_abi::program::{ContextSettings, ContextState};
pub use npmu_device::{Device, DeviceError, DmaDirection, DmaMapping, Interrupts, Mmio};
