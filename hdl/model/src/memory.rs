//! Persistent memory as the model and the simulation harness see it.

use std::collections::HashMap;

/// Byte-addressed persistent memory.
pub trait Memory {
    fn read(&self, address: u64, buffer: &mut [u8]);
    fn write(&mut self, address: u64, data: &[u8]);
}

/// Memory that holds only the pages written so far; the rest reads as zero.
#[derive(Clone, Debug, Default)]
pub struct SparseMemory {
    pages: HashMap<u64, Box<[u8; SPARSE_PAGE_BYTES]>>,
}

const SPARSE_PAGE_BYTES: usize = 4096;

impl SparseMemory {
    pub fn new() -> Self {
        Self::default()
    }

    /// Addresses of the first byte where the two memories differ, if any.
    pub fn first_difference(&self, other: &SparseMemory) -> Option<u64> {
        let zero = [0u8; SPARSE_PAGE_BYTES];
        let mut pages: Vec<u64> = self
            .pages
            .keys()
            .chain(other.pages.keys())
            .copied()
            .collect();
        pages.sort_unstable();
        pages.dedup();
        pages.into_iter().find_map(|page| {
            let mine = self.pages.get(&page).map_or(&zero, |bytes| bytes);
            let theirs = other.pages.get(&page).map_or(&zero, |bytes| bytes);
            let offset = mine.iter().zip(theirs.iter()).position(|(a, b)| a != b)?;
            Some(page * SPARSE_PAGE_BYTES as u64 + offset as u64)
        })
    }

    fn split(address: u64) -> (u64, usize) {
        (
            address / SPARSE_PAGE_BYTES as u64,
            (address % SPARSE_PAGE_BYTES as u64) as usize,
        )
    }
}

impl Memory for SparseMemory {
    fn read(&self, address: u64, buffer: &mut [u8]) {
        for (index, byte) in buffer.iter_mut().enumerate() {
            let (page, offset) = Self::split(address + index as u64);
            *byte = self.pages.get(&page).map_or(0, |bytes| bytes[offset]);
        }
    }

    fn write(&mut self, address: u64, data: &[u8]) {
        for (index, byte) in data.iter().enumerate() {
            let (page, offset) = Self::split(address + index as u64);
            self.pages
                .entry(page)
                .or_insert_with(|| Box::new([0; SPARSE_PAGE_BYTES]))[offset] = *byte;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwritten_memory_reads_zero_and_writes_read_back_across_pages() {
        let mut memory = SparseMemory::new();
        let mut buffer = [0xffu8; 8];
        memory.read(12345, &mut buffer);
        assert_eq!(buffer, [0; 8]);
        memory.write(4094, &[1, 2, 3, 4]);
        memory.read(4093, &mut buffer[..6]);
        assert_eq!(&buffer[..6], &[0, 1, 2, 3, 4, 0]);
    }

    #[test]
    fn first_difference_ignores_pages_written_with_zeros() {
        let mut a = SparseMemory::new();
        let mut b = SparseMemory::new();
        a.write(100, &[0; 10]);
        assert_eq!(a.first_difference(&b), None);
        b.write(9000, &[7]);
        assert_eq!(a.first_difference(&b), Some(9000));
    }
}
