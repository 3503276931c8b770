//! What the npmu driver needs of a card, and nothing more: 64-bit access to the NI's
//! register window, DMA mappings in the IOMMU domain the card sits in, and interrupts to
//! wait on. Two implementations exist: a real card through Linux VFIO (`npmu-driver`'s
//! `vfio` module) and a simulated card (`npmu-sim`'s `SimulatedCard`), so the same driver
//! code runs on both.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;

pub use npmu_abi::DmaDirection;

/// A failure of the device or of the operating system underneath it.
#[derive(Debug, Error)]
pub enum DeviceError {
    #[error("IOVA range {iova:#x}+{length:#x} is not usable: {why}")]
    BadMapping {
        iova: u64,
        length: u64,
        why: &'static str,
    },
    #[error("the IOMMU refused to map {length:#x} bytes at IOVA {iova:#x}: {source}")]
    Map {
        iova: u64,
        length: u64,
        source: std::io::Error,
    },
    #[error("the IOMMU refused to unmap {length:#x} bytes at IOVA {iova:#x}: {source}")]
    Unmap {
        iova: u64,
        length: u64,
        source: std::io::Error,
    },
    #[error("interrupt vector {vector} does not exist: the card has {vectors}")]
    NoSuchVector { vector: u16, vectors: u16 },
    #[error("waiting for an interrupt failed: {0}")]
    Interrupt(std::io::Error),
    #[error("resetting the card failed: {0}")]
    Reset(String),
    #[error("the card stopped: {0}")]
    Stopped(String),
}

/// 64-bit register access to the NI's register window (BAR0 on a PCIe card).
///
/// A read of a card that no longer answers returns all ones, as a PCIe read of a
/// vanished device does; the driver treats that value in a status register as a failure.
pub trait Mmio: Send + Sync {
    fn read_register(&self, offset: u16) -> u64;
    fn write_register(&self, offset: u16, value: u64);
}

/// The DMA mappings of one IOMMU domain: on Linux a VFIO container, which several cards
/// may share so that one buffer is reachable by all of them at the same IOVA.
pub trait DmaMapping: Send + Sync {
    /// The IOVA ranges the driver may hand out (the MSI window and reserved regions
    /// excluded), in ascending order.
    fn iova_ranges(&self) -> Vec<Range<u64>>;

    /// Lets the domain's cards reach `length` bytes at `host` through `iova` in
    /// `direction`. `iova`, `host` and `length` are multiples of 4 KiB.
    ///
    /// # Safety
    /// The memory at `host` must stay allocated until it is unmapped: the cards read and
    /// write it behind the compiler's back, as DMA does.
    unsafe fn map(
        &self,
        iova: u64,
        host: *mut u8,
        length: u64,
        direction: DmaDirection,
    ) -> Result<(), DeviceError>;

    /// Removes a mapping made by [`DmaMapping::map`] with the same `iova` and `length`.
    fn unmap(&self, iova: u64, length: u64) -> Result<(), DeviceError>;
}

/// Interrupt vectors, each counted until waited for.
pub trait Interrupts: Send + Sync {
    fn interrupt_vectors(&self) -> u16;

    /// Waits at most `timeout` for an interrupt on `vector`; `Ok(true)` if one arrived
    /// since the last wait. Interrupts that arrived while nobody waited are not lost.
    fn wait_interrupt(&self, vector: u16, timeout: Duration) -> Result<bool, DeviceError>;
}

/// A card: its registers, its interrupts, and the IOMMU domain its DMA goes through.
pub trait Device: Mmio + Interrupts {
    /// A name for messages: the PCI address, or the simulated card's name.
    fn name(&self) -> &str;

    /// The domain this card's DMA is translated by.
    fn dma(&self) -> Arc<dyn DmaMapping>;

    /// Resets the card (function-level reset on PCIe): registers, tables and queues return
    /// to their reset state; persistent memory keeps its contents.
    fn reset(&self) -> Result<(), DeviceError>;
}

/// A card shared with whoever else holds it: a test that makes a simulated card fail from
/// another thread while a volume drives it, or a monitor reading its counters.
impl<T: Mmio + ?Sized> Mmio for Arc<T> {
    fn read_register(&self, offset: u16) -> u64 {
        (**self).read_register(offset)
    }

    fn write_register(&self, offset: u16, value: u64) {
        (**self).write_register(offset, value)
    }
}

impl<T: Interrupts + ?Sized> Interrupts for Arc<T> {
    fn interrupt_vectors(&self) -> u16 {
        (**self).interrupt_vectors()
    }

    fn wait_interrupt(&self, vector: u16, timeout: Duration) -> Result<bool, DeviceError> {
        (**self).wait_interrupt(vector, timeout)
    }
}

impl<T: Device + ?Sized> Device for Arc<T> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn dma(&self) -> Arc<dyn DmaMapping> {
        (**self).dma()
    }

    fn reset(&self) -> Result<(), DeviceError> {
        (**self).reset()
    }
}

/// Checks that a mapping request is page aligned and does not wrap, as both backends need.
pub fn check_mapping(iova: u64, host: *mut u8, length: u64) -> Result<(), DeviceError> {
    const PAGE: u64 = npmu_abi::HOST_PAGE_BYTES;
    let bad = |why| DeviceError::BadMapping { iova, length, why };
    if length == 0 {
        return Err(bad("the length is zero"));
    }
    if iova % PAGE != 0 || length % PAGE != 0 || host as u64 % PAGE != 0 {
        return Err(bad(
            "the IOVA, host address and length must be multiples of 4 KiB",
        ));
    }
    if iova > u64::MAX - (length - 1) {
        return Err(bad("the range wraps past 2^64"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_must_be_page_aligned_and_not_wrap() {
        let host = 0x10_0000 as *mut u8;
        assert!(check_mapping(0x1000, host, 0x2000).is_ok());
        assert!(check_mapping(u64::MAX - 0xfff, host, 0x1000).is_ok());
        for (iova, host, length) in [
            (0x1000, host, 0),
            (0x1001, host, 0x1000),
            (0x1000, 0x10_0010 as *mut u8, 0x1000),
            (0x1000, host, 0x800),
            (u64::MAX - 0xfff, host, 0x2000),
        ] {
            assert!(matches!(
                check_mapping(iova, host, length),
                Err(DeviceError::BadMapping { .. })
            ));
        }
    }
}
