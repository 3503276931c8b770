//! Host memory as the NI reaches it by DMA: pages an IOMMU maps, each for the directions
//! the driver allowed, the rest refused. [`HostDma`] is what the model's queues need of it;
//! [`HostMemory`] is the model's own, and a simulated host can offer its IOMMU instead.

use crate::memory::{Memory, SparseMemory};
use npmu_abi::{DmaDirection, HOST_PAGE_BYTES};
use std::collections::BTreeMap;

/// Host memory as DMA reaches it, through an IOMMU with 4 KiB pages that lets each page be
/// read, written, both or neither by the device.
pub trait HostDma {
    /// Bytes from `iova` the device may read before the first page it may not, at most
    /// `length`. A [`HostDma::read`] of those bytes succeeds.
    fn readable_prefix(&self, iova: u64, length: u64) -> u64;

    /// Bytes from `iova` the device may write before the first page it may not, at most
    /// `length`. A [`HostDma::write`] of those bytes succeeds.
    fn writable_prefix(&self, iova: u64, length: u64) -> u64;

    /// What a DMA read returns; `None` if the IOMMU refuses a page.
    fn read(&self, iova: u64, buffer: &mut [u8]) -> Option<()>;

    /// A DMA write; `None` (and nothing written) if the IOMMU refuses a page.
    fn write(&mut self, iova: u64, data: &[u8]) -> Option<()>;
}

/// Host memory behind an IOMMU with 4 KiB pages.
#[derive(Clone, Debug, Default)]
pub struct HostMemory {
    memory: SparseMemory,
    mapped: BTreeMap<u64, DmaDirection>,
}

impl HostMemory {
    pub fn new() -> Self {
        Self::default()
    }

    /// Maps the pages holding `length` bytes from `iova` for `direction`.
    pub fn map(&mut self, iova: u64, length: u64, direction: DmaDirection) {
        self.mapped
            .extend(pages(iova, length).map(|page| (page, direction)));
    }

    /// Unmaps the pages holding `length` bytes from `iova`; their contents stay.
    pub fn unmap(&mut self, iova: u64, length: u64) {
        for page in pages(iova, length) {
            self.mapped.remove(&page);
        }
    }

    fn prefix(&self, iova: u64, length: u64, allowed: fn(DmaDirection) -> bool) -> u64 {
        pages(iova, length)
            .find(|page| {
                !self
                    .mapped
                    .get(page)
                    .is_some_and(|direction| allowed(*direction))
            })
            .map_or(length, |page| (page * HOST_PAGE_BYTES).saturating_sub(iova))
    }

    /// The CPU's view: reads and writes whatever is mapped or not.
    pub fn contents(&self) -> &SparseMemory {
        &self.memory
    }

    pub fn contents_mut(&mut self) -> &mut SparseMemory {
        &mut self.memory
    }
}

impl HostDma for HostMemory {
    fn readable_prefix(&self, iova: u64, length: u64) -> u64 {
        self.prefix(iova, length, DmaDirection::lets_device_read)
    }

    fn writable_prefix(&self, iova: u64, length: u64) -> u64 {
        self.prefix(iova, length, DmaDirection::lets_device_write)
    }

    fn read(&self, iova: u64, buffer: &mut [u8]) -> Option<()> {
        (self.readable_prefix(iova, buffer.len() as u64) == buffer.len() as u64).then(|| {
            self.memory.read(iova, buffer);
        })
    }

    fn write(&mut self, iova: u64, data: &[u8]) -> Option<()> {
        (self.writable_prefix(iova, data.len() as u64) == data.len() as u64).then(|| {
            self.memory.write(iova, data);
        })
    }
}

fn pages(iova: u64, length: u64) -> impl Iterator<Item = u64> {
    let first = iova / HOST_PAGE_BYTES;
    let end = if length == 0 {
        first
    } else {
        (iova + (length - 1)) / HOST_PAGE_BYTES + 1
    };
    first..end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_stops_at_the_first_unmapped_page() {
        let mut host = HostMemory::new();
        host.map(0x1000, 0x3000, DmaDirection::Bidirectional);
        host.unmap(0x2000, 1);
        assert_eq!(host.readable_prefix(0x1800, 0x2000), 0x800);
        assert_eq!(host.writable_prefix(0x0800, 16), 0);
        assert_eq!(host.readable_prefix(0x3000, 0x1000), 0x1000);
        assert!(host.write(0x1ff0, &[1; 32]).is_none());
        assert!(host.write(0x1ff0, &[1; 16]).is_some());
    }

    #[test]
    fn each_mapping_allows_only_its_directions() {
        let mut host = HostMemory::new();
        host.map(0x1000, 0x1000, DmaDirection::ToDevice);
        host.map(0x2000, 0x1000, DmaDirection::FromDevice);
        let mut buffer = [0u8; 8];
        assert!(host.read(0x1000, &mut buffer).is_some());
        assert!(host.write(0x1000, &buffer).is_none());
        assert!(host.read(0x2000, &mut buffer).is_none());
        assert!(host.write(0x2000, &buffer).is_some());
        assert_eq!(host.readable_prefix(0x1ff8, 16), 8);
        assert_eq!(host.writable_prefix(0x1ff8, 16), 0);
    }
}
