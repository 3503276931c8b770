//! The interface of the npmu network interface (NI), defined once: register offsets and
//! field layouts, fault and command codes, port widths and named configurations. The
//! hardware, its golden model and the host driver all take them from here.

pub mod bridge;
pub mod command;
pub mod config;
pub mod fault;
pub mod field;
pub mod program;
pub mod queue;
pub mod range;
pub mod registers;

pub use command::{Command, CommandError};
pub use config::{Config, ConfigError};
pub use fault::{decode_status, encode_status, Fault, UnknownStatus};
pub use field::Field;
pub use range::range_fits;

/// Width of the MMIO (BAR0) byte address.
pub const MMIO_ADDRESS_BITS: usize = 16;
/// Width of a context id on the request port.
pub const CONTEXT_ID_BITS: usize = 16;
/// Width of a translation entry index.
pub const ENTRY_INDEX_BITS: usize = 16;
/// Width of a context key.
pub const KEY_BITS: usize = 32;
/// Width of an initiator id.
pub const INITIATOR_BITS: usize = 16;
/// Width of a network virtual address.
pub const ADDRESS_BITS: usize = 64;
/// Width of a request length in bytes.
pub const LENGTH_BITS: usize = 32;
/// Width of a physical page number.
pub const PAGE_NUMBER_BITS: usize = 32;
/// Width of a byte address on the persistent-memory port.
pub const MEMORY_ADDRESS_BITS: usize = 48;
/// Width of the status field of a response.
pub const STATUS_BITS: usize = 4;
/// Width of a host IOVA on the DMA port.
pub const IOVA_BITS: usize = 64;
/// Width of a DMA tag.
pub const DMA_TAG_BITS: usize = 8;
/// Width of a DMA request's length in bytes (a request stays inside one 4 KiB page).
pub const DMA_LENGTH_BITS: usize = 13;
/// Host pages: no DMA request crosses a boundary of this many bytes.
pub const HOST_PAGE_BYTES: u64 = 4096;
/// Pages beyond a request's first that the NI can hold translated while it checks the rest.
pub const PAGE_QUEUE_DEPTH: u32 = 256;

/// Which way the IOMMU lets the device move data through a mapping, as the Linux DMA API
/// names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DmaDirection {
    /// The device only reads: submission rings, the sources of WRITEs.
    ToDevice,
    /// The device only writes: completion rings, the destinations of READs.
    FromDevice,
    Bidirectional,
}

impl DmaDirection {
    pub fn lets_device_read(self) -> bool {
        self != DmaDirection::FromDevice
    }

    pub fn lets_device_write(self) -> bool {
        self != DmaDirection::ToDevice
    }
}

/// Read or write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    Read,
    Write,
}

/// A request on the NI's request port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Request {
    pub operation: Operation,
    pub context: u16,
    pub key: u32,
    pub initiator: u16,
    /// Network virtual address of the first byte.
    pub address: u64,
    /// Bytes to move.
    pub length: u32,
}

impl Request {
    /// Data beats the request moves on a data path of `data_bytes`: beats carry bytes in
    /// the lanes of their addresses, so an unaligned start costs a partial first beat.
    pub fn beats(&self, data_bytes: u32) -> u64 {
        if self.length == 0 {
            return 0;
        }
        let lane = self.address % u64::from(data_bytes);
        (lane + u64::from(self.length)).div_ceil(u64::from(data_bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(0, 0, 0)]
    #[case(0, 1, 1)]
    #[case(7, 1, 1)]
    #[case(7, 2, 2)]
    #[case(0, 8, 1)]
    #[case(1, 8, 2)]
    #[case(u64::MAX, 1, 1)]
    #[case(u64::MAX - 7, 16, 2)]
    fn beats_count_partial_edges(#[case] address: u64, #[case] length: u32, #[case] beats: u64) {
        let request = Request {
            operation: Operation::Read,
            context: 0,
            key: 0,
            initiator: 0,
            address,
            length,
        };
        assert_eq!(request.beats(8), beats);
    }
}
