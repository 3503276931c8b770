//! What the manager hands out: physical pages (persistent, derived from the metadata, so
//! free space can never leak) and, while regions are open, translation entries and
//! contexts (volatile, rebuilt empty at every open of the volume).

use crate::metadata::{Extent, VolumeRecord};

/// Free physical pages of the data area, in address order.
pub fn free_extents(volume: &VolumeRecord) -> Vec<Extent> {
    let mut owned: Vec<Extent> = volume
        .regions
        .iter()
        .flat_map(|region| region.extents.iter().copied())
        .collect();
    owned.sort();
    let mut free = Vec::new();
    let mut next = volume.first_data_page();
    for extent in owned {
        if extent.first > next {
            free.push(Extent {
                first: next,
                pages: extent.first - next,
            });
        }
        next = next.max(extent.end());
    }
    if next < volume.memory_pages {
        free.push(Extent {
            first: next,
            pages: volume.memory_pages - next,
        });
    }
    free
}

/// `pages` pages taken first-fit in address order: a region fills holes left by deleted
/// ones before it takes untouched space, so it spans several extents when free space is
/// fragmented. `None` if fewer are free.
pub fn allocate_pages(volume: &VolumeRecord, pages: u64) -> Option<Vec<Extent>> {
    let mut wanted = pages;
    let mut taken = Vec::new();
    for free in free_extents(volume) {
        if wanted == 0 {
            break;
        }
        let piece = free.pages.min(wanted);
        taken.push(Extent {
            first: free.first,
            pages: piece,
        });
        wanted -= piece;
    }
    (wanted == 0).then_some(taken)
}

pub fn free_pages(volume: &VolumeRecord) -> u64 {
    free_extents(volume).iter().map(|extent| extent.pages).sum()
}

/// Runs of translation entries for open regions: a context maps consecutive entries.
#[derive(Debug)]
pub struct EntryAllocator {
    /// Free runs `(first, count)`, sorted and never adjacent.
    free: Vec<(u32, u32)>,
}

impl EntryAllocator {
    pub fn new(first: u32, end: u32) -> Self {
        Self {
            free: vec![(first, end - first)],
        }
    }

    pub fn allocate(&mut self, count: u32) -> Option<u32> {
        let index = self.free.iter().position(|&(_, free)| free >= count)?;
        let (first, free) = self.free[index];
        if free == count {
            self.free.remove(index);
        } else {
            self.free[index] = (first + count, free - count);
        }
        Some(first)
    }

    pub fn release(&mut self, first: u32, count: u32) {
        let index = self.free.partition_point(|&(start, _)| start < first);
        self.free.insert(index, (first, count));
        // Coalesce with the run after, then with the run before.
        if index + 1 < self.free.len() && first + count == self.free[index + 1].0 {
            self.free[index].1 += self.free[index + 1].1;
            self.free.remove(index + 1);
        }
        if index > 0 && self.free[index - 1].0 + self.free[index - 1].1 == first {
            self.free[index - 1].1 += self.free[index].1;
            self.free.remove(index);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::{CardHealth, RegionRecord};
    use proptest::prelude::*;

    fn volume(owned: &[(u64, u64)]) -> VolumeRecord {
        VolumeRecord {
            id: 1,
            replaces: 0,
            name: "v".into(),
            created: 0,
            page_shift: 12,
            memory_pages: 64,
            // Data from page 4: two copies of one page and two intent slots.
            copy_pages: 1,
            epoch: 1,
            health: crate::per_card::PerCard::both(CardHealth::InSync),
            regions: owned
                .iter()
                .enumerate()
                .map(|(index, &(first, pages))| RegionRecord {
                    name: format!("r{index}"),
                    size: pages * 4096,
                    base_pointer: 0,
                    owner: 0,
                    created: 0,
                    last_opened: 0,
                    extents: vec![Extent { first, pages }],
                })
                .collect(),
        }
    }

    #[test]
    fn free_space_is_what_no_region_owns() {
        let volume = volume(&[(10, 2), (4, 3)]);
        assert_eq!(
            free_extents(&volume),
            vec![
                Extent { first: 7, pages: 3 },
                Extent {
                    first: 12,
                    pages: 52
                }
            ]
        );
        assert_eq!(free_pages(&volume), 55);
    }

    #[test]
    fn a_region_fills_fragmented_holes_first() {
        let volume = volume(&[(5, 1), (7, 1)]);
        assert_eq!(
            allocate_pages(&volume, 4),
            Some(vec![
                Extent { first: 4, pages: 1 },
                Extent { first: 6, pages: 1 },
                Extent { first: 8, pages: 2 },
            ])
        );
        assert_eq!(allocate_pages(&volume, 59), None);
        assert_eq!(allocate_pages(&volume, 58).map(|e| e.len()), Some(3));
    }

    proptest! {
        #[test]
        fn entries_are_never_handed_out_twice_and_coalesce(
            sizes in proptest::collection::vec(1u32..40, 1..30),
            release_order in any::<u64>(),
        ) {
            let mut entries = EntryAllocator::new(8, 264);
            let mut held: Vec<(u32, u32)> = Vec::new();
            for size in sizes {
                if let Some(first) = entries.allocate(size) {
                    prop_assert!(first >= 8 && first + size <= 264);
                    for &(other, count) in &held {
                        prop_assert!(first + size <= other || other + count <= first);
                    }
                    held.push((first, size));
                }
            }
            let mut order = release_order;
            while !held.is_empty() {
                let index = (order % held.len() as u64) as usize;
                order = order.rotate_left(7) ^ 0x9e37;
                let (first, count) = held.swap_remove(index);
                entries.release(first, count);
            }
            prop_assert_eq!(entries.free, vec![(8, 256)]);
        }
    }
}
