//! Register access to a memory-mapped device window (an mmapped PCI BAR): one volatile
//! load or store per access, bounds and alignment checked, so that a bad offset is an
//! error and never a stray access to whatever memory lies past the window.

use thiserror::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum MmioError {
    #[error(
        "a {size}-byte register at offset {offset:#x} lies outside the {length:#x}-byte window"
    )]
    OutOfWindow {
        offset: usize,
        size: usize,
        length: usize,
    },
    #[error("a {size}-byte register at offset {offset:#x} is not {size}-byte aligned")]
    Misaligned { offset: usize, size: usize },
}

/// A window of device registers at a raw address. It does not own the mapping: whoever
/// mapped it unmaps it, after the region is gone (see `vfio::MappedBar`).
#[derive(Debug)]
pub struct MmioRegion {
    base: *mut u8,
    length: usize,
}

// Device registers have no thread affinity; every access is a single volatile operation.
unsafe impl Send for MmioRegion {}
unsafe impl Sync for MmioRegion {}

impl MmioRegion {
    /// # Safety
    /// `base` must be valid for volatile reads and writes of `length` bytes, aligned to
    /// 8 bytes, for as long as the region exists.
    pub unsafe fn new(base: *mut u8, length: usize) -> Self {
        debug_assert!(
            base as usize % 8 == 0,
            "register windows are 8-byte aligned"
        );
        Self { base, length }
    }

    pub fn len(&self) -> usize {
        self.length
    }

    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// The address of a `size`-byte register at `offset`, checked.
    fn register(&self, offset: usize, size: usize) -> Result<*mut u8, MmioError> {
        // Overflow safe: compare against what is left, never offset + size.
        if size > self.length || offset > self.length - size {
            return Err(MmioError::OutOfWindow {
                offset,
                size,
                length: self.length,
            });
        }
        if offset % size != 0 {
            return Err(MmioError::Misaligned { offset, size });
        }
        // Safety: in bounds, checked above.
        Ok(unsafe { self.base.add(offset) })
    }

    pub fn read_u32(&self, offset: usize) -> Result<u32, MmioError> {
        let register = self.register(offset, 4)?.cast::<u32>();
        // Safety: in bounds and aligned (checked); valid memory by `new`'s contract.
        Ok(unsafe { register.read_volatile() })
    }

    pub fn write_u32(&self, offset: usize, value: u32) -> Result<(), MmioError> {
        let register = self.register(offset, 4)?.cast::<u32>();
        // Safety: as in `read_u32`.
        unsafe { register.write_volatile(value) };
        Ok(())
    }

    pub fn read_u64(&self, offset: usize) -> Result<u64, MmioError> {
        let register = self.register(offset, 8)?.cast::<u64>();
        // Safety: as in `read_u32`.
        Ok(unsafe { register.read_volatile() })
    }

    pub fn write_u64(&self, offset: usize, value: u64) -> Result<(), MmioError> {
        let register = self.register(offset, 8)?.cast::<u64>();
        // Safety: as in `read_u32`.
        unsafe { register.write_volatile(value) };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plain memory standing in for a register window.
    fn window(words: usize) -> (Vec<u64>, usize) {
        (vec![0u64; words], words * 8)
    }

    #[test]
    fn reads_back_what_was_written_at_every_width() {
        let (mut memory, length) = window(4);
        let region = unsafe { MmioRegion::new(memory.as_mut_ptr().cast(), length) };
        region.write_u64(8, 0x1122_3344_5566_7788).unwrap();
        region.write_u32(16, 0xdead_beef).unwrap();
        region.write_u32(28, 0xcafe_f00d).unwrap();
        assert_eq!(region.read_u64(8).unwrap(), 0x1122_3344_5566_7788);
        assert_eq!(region.read_u32(8).unwrap(), 0x5566_7788, "little endian");
        assert_eq!(region.read_u32(16).unwrap(), 0xdead_beef);
        assert_eq!(region.read_u32(28).unwrap(), 0xcafe_f00d);
        assert_eq!(memory[3] >> 32, 0xcafe_f00d);
    }

    #[test]
    fn refuses_offsets_outside_the_window() {
        let (mut memory, length) = window(2);
        let region = unsafe { MmioRegion::new(memory.as_mut_ptr().cast(), length) };
        assert!(region.read_u32(12).is_ok(), "the last word is inside");
        assert!(region.read_u64(8).is_ok());
        for offset in [16, 20, 1 << 20, usize::MAX - 3, usize::MAX] {
            assert!(matches!(
                region.read_u32(offset),
                Err(MmioError::OutOfWindow { .. })
            ));
        }
        assert!(matches!(
            region.write_u64(16, 0),
            Err(MmioError::OutOfWindow { .. })
        ));
        assert!(matches!(
            region.read_u64(usize::MAX - 7),
            Err(MmioError::OutOfWindow { .. })
        ));
        assert_eq!(memory, [0, 0], "nothing was written past the window");
    }

    #[test]
    fn refuses_a_window_smaller_than_the_register() {
        let (mut memory, _) = window(1);
        let region = unsafe { MmioRegion::new(memory.as_mut_ptr().cast(), 4) };
        assert!(region.read_u32(0).is_ok());
        assert_eq!(
            region.read_u64(0),
            Err(MmioError::OutOfWindow {
                offset: 0,
                size: 8,
                length: 4
            })
        );
    }

    #[test]
    fn refuses_misaligned_offsets() {
        let (mut memory, length) = window(2);
        let region = unsafe { MmioRegion::new(memory.as_mut_ptr().cast(), length) };
        assert_eq!(
            region.read_u32(2),
            Err(MmioError::Misaligned { offset: 2, size: 4 })
        );
        assert_eq!(
            region.write_u64(4, 1),
            Err(MmioError::Misaligned { offset: 4, size: 8 })
        );
    }
}
