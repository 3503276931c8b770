//! Hands out IOVA ranges of an IOMMU domain: page-granular, first fit, freed ranges merged
//! with their neighbours, every free checked against what was handed out.

use std::collections::BTreeMap;
use std::ops::Range;
use thiserror::Error;

const PAGE: u64 = npmu_abi::HOST_PAGE_BYTES;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum IovaError {
    #[error("no free IOVA range of {0:#x} bytes")]
    Exhausted(u64),
    #[error("a DMA buffer of zero bytes was asked for")]
    Empty,
    #[error("IOVA {iova:#x}+{length:#x} was not handed out")]
    NotAllocated { iova: u64, length: u64 },
}

#[derive(Debug)]
pub struct IovaAllocator {
    /// Free ranges: start to end, disjoint, never adjacent.
    free: BTreeMap<u64, u64>,
    /// Ranges handed out: start to length.
    allocated: BTreeMap<u64, u64>,
}

impl IovaAllocator {
    /// Allocates from `ranges`, shrunk to whole pages and cut at `limit` (the first IOVA the
    /// device cannot address: `1 << dma_address_bits`, or `None` for 64 bits). Page 0 is
    /// never handed out, so an IOVA of 0 always means a bug.
    pub fn new(ranges: &[Range<u64>], limit: Option<u64>) -> Self {
        let mut allocator = Self {
            free: BTreeMap::new(),
            allocated: BTreeMap::new(),
        };
        for range in ranges {
            let start = range.start.max(PAGE).next_multiple_of(PAGE);
            let end = limit.map_or(range.end, |limit| range.end.min(limit)) / PAGE * PAGE;
            if start < end {
                allocator.insert_free(start, end);
            }
        }
        allocator
    }

    /// The IOVAs from the lowest to the end of the highest range the allocator manages,
    /// handed out or free; empty if it manages none.
    pub fn span(&self) -> Range<u64> {
        let first = self.free.keys().chain(self.allocated.keys()).min();
        let end = self
            .free
            .values()
            .copied()
            .chain(self.allocated.iter().map(|(start, length)| start + length))
            .max();
        match (first, end) {
            (Some(&first), Some(end)) => first..end,
            _ => 0..0,
        }
    }

    /// Free bytes in all.
    pub fn free_bytes(&self) -> u64 {
        self.free.iter().map(|(start, end)| end - start).sum()
    }

    /// A range of `length` bytes rounded up to whole pages; returns its IOVA.
    pub fn allocate(&mut self, length: u64) -> Result<u64, IovaError> {
        if length == 0 {
            return Err(IovaError::Empty);
        }
        let length = length
            .checked_next_multiple_of(PAGE)
            .ok_or(IovaError::Exhausted(length))?;
        let (&start, &end) = self
            .free
            .iter()
            .find(|(start, end)| *end - *start >= length)
            .ok_or(IovaError::Exhausted(length))?;
        self.free.remove(&start);
        if end - start > length {
            self.free.insert(start + length, end);
        }
        self.allocated.insert(start, length);
        Ok(start)
    }

    /// Returns a range from [`IovaAllocator::allocate`], with the length asked for then.
    pub fn free(&mut self, iova: u64, length: u64) -> Result<(), IovaError> {
        let rounded = length.checked_next_multiple_of(PAGE);
        if length == 0 || self.allocated.get(&iova).copied() != rounded {
            return Err(IovaError::NotAllocated { iova, length });
        }
        let length = self.allocated.remove(&iova).expect("checked above");
        self.insert_free(iova, iova + length);
        Ok(())
    }

    fn insert_free(&mut self, mut start: u64, mut end: u64) {
        if let Some((&before, &before_end)) = self.free.range(..start).next_back() {
            if before_end == start {
                self.free.remove(&before);
                start = before;
            }
        }
        if let Some(after_end) = self.free.get(&end).copied() {
            self.free.remove(&end);
            end = after_end;
        }
        self.free.insert(start, end);
    }
}

#[cfg(test)]
// A list holding one IOVA range is what these tests mean.
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ranges_are_cut_to_pages_and_the_limit() {
        let allocator = IovaAllocator::new(&[0..0x3800, 0x10_0000..0x20_0000], Some(0x18_0000));
        assert_eq!(allocator.free_bytes(), 0x2000 + 0x8_0000);
        let mut allocator = IovaAllocator::new(&[0..0x2000], None);
        assert_eq!(
            allocator.allocate(1),
            Ok(0x1000),
            "page 0 is never handed out"
        );
        assert_eq!(allocator.allocate(1), Err(IovaError::Exhausted(0x1000)));
    }

    #[test]
    fn the_span_covers_every_range_handed_out_or_free() {
        let mut allocator = IovaAllocator::new(&[0..0x3800, 0x10_0000..0x20_0000], None);
        assert_eq!(allocator.span(), 0x1000..0x20_0000);
        let first = allocator.allocate(0x2000).unwrap();
        let last = allocator.allocate(0x10_0000).unwrap();
        assert_eq!((first, last), (0x1000, 0x10_0000));
        assert_eq!(allocator.span(), 0x1000..0x20_0000, "nothing free left");
        assert_eq!(IovaAllocator::new(&[], None).span(), 0..0);
    }

    #[test]
    fn the_msi_window_is_skipped_when_the_ranges_leave_it_out() {
        let mut allocator = IovaAllocator::new(&[0..0xfee0_0000, 0xfef0_0000..0x1_0000_0000], None);
        let below = allocator.allocate(0xfed0_0000).unwrap();
        let beside = allocator.allocate(0x20_0000).unwrap();
        assert_eq!(below, 0x1000);
        assert_eq!(beside, 0xfef0_0000);
    }

    #[test]
    fn bad_frees_are_refused_and_change_nothing() {
        let mut allocator = IovaAllocator::new(&[0..0x10_0000], None);
        let iova = allocator.allocate(0x3000).unwrap();
        let free = allocator.free_bytes();
        for (at, length) in [(iova, 0x2000), (iova + 0x1000, 0x1000), (iova, 0)] {
            assert_eq!(
                allocator.free(at, length),
                Err(IovaError::NotAllocated { iova: at, length })
            );
        }
        assert_eq!(allocator.free_bytes(), free);
        assert_eq!(allocator.free(iova, 0x3000), Ok(()));
        assert_eq!(
            allocator.free(iova, 0x3000),
            Err(IovaError::NotAllocated {
                iova,
                length: 0x3000
            }),
            "a double free"
        );
        assert_eq!(allocator.allocate(0), Err(IovaError::Empty));
        assert_eq!(
            allocator.allocate(u64::MAX),
            Err(IovaError::Exhausted(u64::MAX))
        );
    }

    proptest! {
        /// Live ranges never overlap, stay inside the domain, and freeing everything gives
        /// back one range as large as the start.
        #[test]
        fn allocations_never_overlap(steps in prop::collection::vec((any::<bool>(), 1u64..0x9000), 1..200)) {
            let mut allocator = IovaAllocator::new(&[0..0x40_0000], None);
            let total = allocator.free_bytes();
            let mut live: Vec<(u64, u64)> = Vec::new();
            for (free, length) in steps {
                if free && !live.is_empty() {
                    let (iova, length) = live.swap_remove(length as usize % live.len());
                    allocator.free(iova, length).unwrap();
                } else if let Ok(iova) = allocator.allocate(length) {
                    prop_assert_eq!(iova % PAGE, 0);
                    prop_assert!(iova >= PAGE && iova + length <= 0x40_0000);
                    for (other, other_length) in &live {
                        prop_assert!(iova + length <= *other || *other + other_length <= iova);
                    }
                    live.push((iova, length));
                }
            }
            for (iova, length) in live {
                allocator.free(iova, length).unwrap();
            }
            prop_assert_eq!(allocator.free_bytes(), total);
            prop_assert_eq!(allocator.free.len(), 1);
        }
    }
}
