//! Host memory as the NI reaches it by DMA: pages an IOMMU maps, the rest refused.

use crate::memory::{Memory, SparseMemory};
use npmu_abi::HOST_PAGE_BYTES;
use std::collections::BTreeSet;

/// Host memory behind an IOMMU with 4 KiB pages.
#[derive(Clone, Debug, Default)]
pub struct HostMemory {
    memory: SparseMemory,
    mapped: BTreeSet<u64>,
}

impl HostMemory {
    pub fn new() -> Self {
        Self::default()
    }

    /// Maps the pages holding `length` bytes from `iova`.
    pub fn map(&mut self, iova: u64, length: u64) {
        self.mapped.extend(pages(iova, length));
    }

    /// Unmaps the pages holding `length` bytes from `iova`; their contents stay.
    pub fn unmap(&mut self, iova: u64, length: u64) {
        for page in pages(iova, length) {
            self.mapped.remove(&page);
        }
    }

    pub fn is_mapped(&self, iova: u64) -> bool {
        self.mapped.contains(&(iova / HOST_PAGE_BYTES))
    }

    /// Bytes from `iova` before the first unmapped page, at most `length`.
    pub fn mapped_prefix(&self, iova: u64, length: u64) -> u64 {
        pages(iova, length)
            .find(|page| !self.mapped.contains(page))
            .map_or(length, |page| (page * HOST_PAGE_BYTES).saturating_sub(iova))
    }

    /// What a DMA read returns; `None` if a page is unmapped.
    pub fn read(&self, iova: u64, buffer: &mut [u8]) -> Option<()> {
        (self.mapped_prefix(iova, buffer.len() as u64) == buffer.len() as u64).then(|| {
            self.memory.read(iova, buffer);
        })
    }

    /// A DMA write; `None` (and nothing written) if a page is unmapped.
    pub fn write(&mut self, iova: u64, data: &[u8]) -> Option<()> {
        (self.mapped_prefix(iova, data.len() as u64) == data.len() as u64).then(|| {
            self.memory.write(iova, data);
        })
    }

    /// The CPU's view: reads and writes whatever is mapped or not.
    pub fn contents(&self) -> &SparseMemory {
        &self.memory
    }

    pub fn contents_mut(&mut self) -> &mut SparseMemory {
        &mut self.memory
    }
}

fn pages(iova: u64, length: u64) -> impl Iterator<Item = u64> {
    let first = iova / HOST_PAGE_BYTES;
    let end = if length == 0 {
        first
    } else {
        (iova + length - 1) / HOST_PAGE_BYTES + 1
    };
    first..end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_stops_at_the_first_unmapped_page() {
        let mut host = HostMemory::new();
        host.map(0x1000, 0x3000);
        host.unmap(0x2000, 1);
        assert_eq!(host.mapped_prefix(0x1800, 0x2000), 0x800);
        assert_eq!(host.mapped_prefix(0x0800, 16), 0);
        assert_eq!(host.mapped_prefix(0x3000, 0x1000), 0x1000);
        assert!(host.write(0x1ff0, &[1; 32]).is_none());
        assert!(host.write(0x1ff0, &[1; 16]).is_some());
    }
}
