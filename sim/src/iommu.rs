//! The IOMMU of the simulated host: the driver maps its own memory for the simulated cards
//! (as VFIO maps it for real ones) and every DMA of a card is resolved through those
//! mappings, page by page, in the directions they allow; anything else is refused as an
//! IOMMU fault. Several cards may share one domain.

use crate::host_port::DmaTarget;
use npmu_abi::HOST_PAGE_BYTES;
use npmu_device::{check_mapping, DeviceError, DmaDirection, DmaMapping};
use std::collections::BTreeMap;
use std::io;
use std::ops::Range;
use std::sync::{Arc, RwLock};

/// The usable IOVA space of an x86 host with a 48-bit IOMMU: the MSI window is left out.
const IOVA_RANGES: [Range<u64>; 2] = [0..0xfee0_0000, 0xfef0_0000..1 << 48];

#[derive(Clone, Copy, Debug)]
struct Page {
    host: usize,
    direction: DmaDirection,
}

#[derive(Debug, Default)]
pub struct SimulatedIommu {
    pages: RwLock<BTreeMap<u64, Page>>,
}

impl SimulatedIommu {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Pages mapped now.
    pub fn mapped_pages(&self) -> usize {
        self.pages.read().expect("IOMMU lock").len()
    }

    /// Calls `copy(host address, offset in the transfer, bytes)` for each piece of
    /// `[iova, iova + length)` split at page boundaries, if every page is mapped for
    /// `allowed`; else copies nothing. The lock is held throughout, so an unmap waits for
    /// the copy, and the memory cannot be freed under it.
    fn transfer(
        &self,
        iova: u64,
        length: usize,
        allowed: fn(DmaDirection) -> bool,
        mut copy: impl FnMut(usize, usize, usize),
    ) -> Option<()> {
        let pages = self.pages.read().expect("IOMMU lock");
        let mut pieces = Vec::new();
        let mut done = 0usize;
        while done < length {
            let at = iova.checked_add(done as u64)?;
            let page = pages.get(&(at / HOST_PAGE_BYTES))?;
            if !allowed(page.direction) {
                return None;
            }
            let offset = (at % HOST_PAGE_BYTES) as usize;
            let piece = (HOST_PAGE_BYTES as usize - offset).min(length - done);
            pieces.push((page.host + offset, done, piece));
            done += piece;
        }
        for (host, done, piece) in pieces {
            copy(host, done, piece);
        }
        Some(())
    }
}

impl DmaMapping for SimulatedIommu {
    fn iova_ranges(&self) -> Vec<Range<u64>> {
        IOVA_RANGES.to_vec()
    }

    unsafe fn map(
        &self,
        iova: u64,
        host: *mut u8,
        length: u64,
        direction: DmaDirection,
    ) -> Result<(), DeviceError> {
        check_mapping(iova, host, length)?;
        if !IOVA_RANGES
            .iter()
            .any(|range| iova >= range.start && length <= range.end - iova)
        {
            return Err(DeviceError::BadMapping {
                iova,
                length,
                why: "outside the domain's IOVA ranges",
            });
        }
        let mut pages = self.pages.write().expect("IOMMU lock");
        let first = iova / HOST_PAGE_BYTES;
        let count = length / HOST_PAGE_BYTES;
        if pages.range(first..first + count).next().is_some() {
            return Err(DeviceError::Map {
                iova,
                length,
                source: io::Error::from_raw_os_error(libc::EEXIST),
            });
        }
        for index in 0..count {
            let page = Page {
                host: host as usize + (index * HOST_PAGE_BYTES) as usize,
                direction,
            };
            pages.insert(first + index, page);
        }
        Ok(())
    }

    fn unmap(&self, iova: u64, length: u64) -> Result<(), DeviceError> {
        check_mapping(iova, HOST_PAGE_BYTES as *mut u8, length)?;
        let mut pages = self.pages.write().expect("IOMMU lock");
        let first = iova / HOST_PAGE_BYTES;
        let count = length / HOST_PAGE_BYTES;
        if pages.range(first..first + count).count() as u64 != count {
            return Err(DeviceError::Unmap {
                iova,
                length,
                source: io::Error::from_raw_os_error(libc::ENOENT),
            });
        }
        for page in first..first + count {
            pages.remove(&page);
        }
        Ok(())
    }
}

/// A card's view of the domain, for its DMA port.
pub(crate) struct IommuPort(pub Arc<SimulatedIommu>);

impl DmaTarget for IommuPort {
    fn dma_read(&self, iova: u64, buffer: &mut [u8]) -> Option<()> {
        let length = buffer.len();
        self.0.transfer(
            iova,
            length,
            DmaDirection::lets_device_read,
            |host, done, piece| {
                // Safety: mapped memory stays allocated while mapped (the driver's promise to
                // `map`) and cannot be unmapped during the transfer.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        host as *const u8,
                        buffer[done..].as_mut_ptr(),
                        piece,
                    )
                }
            },
        )
    }

    fn dma_write(&mut self, iova: u64, data: &[u8]) -> Option<()> {
        self.0.transfer(
            iova,
            data.len(),
            DmaDirection::lets_device_write,
            |host, done, piece| {
                // Safety: as for reads.
                unsafe {
                    std::ptr::copy_nonoverlapping(data[done..].as_ptr(), host as *mut u8, piece)
                }
            },
        )
    }
}
