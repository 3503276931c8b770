//! The IOMMU of the simulated host: the driver maps its own memory for the simulated cards
//! (as VFIO maps it for real ones) and every DMA of a card is resolved through those
//! mappings, page by page, in the directions they allow; anything else is refused as an
//! IOMMU fault. Several cards may share one domain.

use crate::host_port::DmaTarget;
use npmu_abi::HOST_PAGE_BYTES;
use npmu_device::{check_mapping, DeviceError, DmaDirection, DmaMapping};
use npmu_model::HostDma;
use std::collections::BTreeMap;
use std::io;
use std::ops::Range;
use std::sync::{Arc, RwLock, RwLockReadGuard};

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

    /// The domain held still for a card's DMA: no mapping changes until the lock is
    /// dropped, so the bytes it finds reachable are the bytes it moves, and no memory is
    /// unmapped and freed under a copy.
    pub(crate) fn lock(&self) -> LockedIommu<'_> {
        LockedIommu {
            pages: self.pages.read().expect("IOMMU lock"),
        }
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

/// The domain while a card's DMA goes through it; see [`SimulatedIommu::lock`].
pub(crate) struct LockedIommu<'a> {
    pages: RwLockReadGuard<'a, BTreeMap<u64, Page>>,
}

impl LockedIommu<'_> {
    /// Bytes from `iova` before the first page not mapped for `allowed`, at most `length`.
    fn prefix(&self, iova: u64, length: u64, allowed: fn(DmaDirection) -> bool) -> u64 {
        let mut reachable = 0;
        while reachable < length {
            let Some(at) = iova.checked_add(reachable) else {
                break;
            };
            match self.pages.get(&(at / HOST_PAGE_BYTES)) {
                Some(page) if allowed(page.direction) => {
                    reachable += HOST_PAGE_BYTES - at % HOST_PAGE_BYTES
                }
                _ => break,
            }
        }
        reachable.min(length)
    }

    /// Calls `copy(host address, offset in the transfer, bytes)` for each piece of
    /// `[iova, iova + length)` split at page boundaries, if every page is mapped for
    /// `allowed`; else copies nothing.
    fn transfer(
        &self,
        iova: u64,
        length: usize,
        allowed: fn(DmaDirection) -> bool,
        mut copy: impl FnMut(usize, usize, usize),
    ) -> Option<()> {
        if self.prefix(iova, length as u64, allowed) < length as u64 {
            return None;
        }
        let mut done = 0usize;
        while done < length {
            let at = iova + done as u64;
            let page = self.pages[&(at / HOST_PAGE_BYTES)];
            let offset = (at % HOST_PAGE_BYTES) as usize;
            let piece = (HOST_PAGE_BYTES as usize - offset).min(length - done);
            copy(page.host + offset, done, piece);
            done += piece;
        }
        Some(())
    }
}

impl HostDma for LockedIommu<'_> {
    fn readable_prefix(&self, iova: u64, length: u64) -> u64 {
        self.prefix(iova, length, DmaDirection::lets_device_read)
    }

    fn writable_prefix(&self, iova: u64, length: u64) -> u64 {
        self.prefix(iova, length, DmaDirection::lets_device_write)
    }

    fn read(&self, iova: u64, buffer: &mut [u8]) -> Option<()> {
        let length = buffer.len();
        self.transfer(
            iova,
            length,
            DmaDirection::lets_device_read,
            |host, done, piece| {
                // Safety: mapped memory stays allocated while mapped (the driver's promise to
                // `map`) and cannot be unmapped while the domain is locked.
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

    fn write(&mut self, iova: u64, data: &[u8]) -> Option<()> {
        self.transfer(
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

/// A card's view of the domain, for its DMA port: locked for each transfer alone, so the
/// driver can map and unmap between them.
pub(crate) struct IommuPort(pub Arc<SimulatedIommu>);

impl DmaTarget for IommuPort {
    fn dma_read(&self, iova: u64, buffer: &mut [u8]) -> Option<()> {
        self.0.lock().read(iova, buffer)
    }

    fn dma_write(&mut self, iova: u64, data: &[u8]) -> Option<()> {
        self.0.lock().write(iova, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use memmap2::MmapMut;
    use npmu_model::HostMemory;

    const PAGE: u64 = HOST_PAGE_BYTES;

    /// Maps one page of `memory` per IOVA in `layout`; IOVA 0x3000 stays unmapped.
    fn mapped(memory: &mut MmapMut) -> (Arc<SimulatedIommu>, HostMemory) {
        let layout = [
            (0x1000, DmaDirection::ToDevice),
            (0x2000, DmaDirection::FromDevice),
            (0x4000, DmaDirection::Bidirectional),
            (0x5000, DmaDirection::Bidirectional),
        ];
        let iommu = SimulatedIommu::new();
        let mut model = HostMemory::new();
        // The host pages in reverse, so that IOVA neighbours are not host neighbours.
        for (index, (iova, direction)) in layout.into_iter().rev().enumerate() {
            // Safety: `memory` outlives every use of the mapping in these tests.
            let host = unsafe { memory.as_mut_ptr().add(index * PAGE as usize) };
            unsafe { iommu.map(iova, host, PAGE, direction) }.unwrap();
            model.map(iova, PAGE, direction);
        }
        (iommu, model)
    }

    #[test]
    fn the_iommu_reaches_as_far_as_the_models_host_memory() {
        let mut memory = MmapMut::map_anon(4 * PAGE as usize).unwrap();
        let (iommu, model) = mapped(&mut memory);
        let locked = iommu.lock();
        for iova in (0..0x6800).step_by(0x180) {
            for length in [0, 1, 0x200, 0x1000, 0x2400, 0x6000] {
                assert_eq!(
                    locked.readable_prefix(iova, length),
                    model.readable_prefix(iova, length),
                    "reading {length:#x} at {iova:#x}"
                );
                assert_eq!(
                    locked.writable_prefix(iova, length),
                    model.writable_prefix(iova, length),
                    "writing {length:#x} at {iova:#x}"
                );
            }
        }
        assert_eq!(locked.readable_prefix(u64::MAX - 8, 16), 0);
    }

    #[test]
    fn transfers_split_at_pages_and_refuse_all_or_nothing() {
        let mut memory = MmapMut::map_anon(4 * PAGE as usize).unwrap();
        let (iommu, _) = mapped(&mut memory);
        let mut locked = iommu.lock();
        let data: Vec<u8> = (1..=32).collect();
        assert_eq!(locked.write(0x5000 - 16, &data), Some(()));
        assert_eq!(
            locked.write(0x2000 - 16, &data),
            None,
            "IOVA 0x1000 is read-only"
        );
        let mut back = [0u8; 32];
        assert_eq!(locked.read(0x5000 - 16, &mut back), Some(()));
        assert_eq!(back[..], data[..]);
        assert_eq!(
            locked.read(0x4000 - 16, &mut back),
            None,
            "IOVA 0x3000 is unmapped"
        );
        drop(locked);
        // IOVA 0x4000 is host page 1, 0x5000 host page 0.
        assert_eq!(
            memory[2 * PAGE as usize - 16..2 * PAGE as usize],
            data[..16]
        );
        assert_eq!(memory[..16], data[16..]);
        // IOVAs 0x2000 and 0x1000 are host pages 2 and 3: the refused write left them alone.
        assert!(memory[2 * PAGE as usize..].iter().all(|byte| *byte == 0));
    }
}
