//! Memory the cards reach by DMA: page-aligned anonymous memory, given an IOVA by the
//! domain's allocator and mapped by its IOMMU, unmapped and freed on drop.
//!
//! No Rust reference into that memory is ever made, because the card changes it behind
//! the compiler's back: bytes are copied in and out through raw pointers, ring entries
//! with volatile accesses, and the fences that order them against doorbells and phase bits
//! are the caller's (see the queue code).

use crate::iova::{IovaAllocator, IovaError};
use npmu_abi::queue::HostWindow;
use npmu_device::{DeviceError, DmaDirection, DmaMapping};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};
use thiserror::Error;

const PAGE: u64 = npmu_abi::HOST_PAGE_BYTES;

#[derive(Debug, Error)]
pub enum DmaError {
    #[error(transparent)]
    Iova(#[from] IovaError),
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error("allocating {0} bytes of DMA memory failed: {1}")]
    OutOfMemory(u64, std::io::Error),
    #[error("{length} bytes at offset {offset} do not fit a DMA buffer of {size} bytes")]
    OutOfBuffer { offset: u64, length: u64, size: u64 },
}

/// An IOMMU domain and the IOVA allocator for it. Cards that share a domain share its
/// buffers: one buffer is reachable by all of them at one IOVA.
pub struct DmaDomain {
    mapping: Arc<dyn DmaMapping>,
    allocator: Mutex<IovaAllocator>,
}

impl DmaDomain {
    /// A domain over `mapping` for devices that drive `dma_address_bits` of address.
    pub fn new(mapping: Arc<dyn DmaMapping>, dma_address_bits: u32) -> Arc<Self> {
        let limit = (dma_address_bits < 64).then(|| 1u64 << dma_address_bits);
        let allocator = IovaAllocator::new(&mapping.iova_ranges(), limit);
        Arc::new(Self {
            mapping,
            allocator: Mutex::new(allocator),
        })
    }

    /// Whether `mapping` is this domain's.
    pub fn is_over(&self, mapping: &Arc<dyn DmaMapping>) -> bool {
        Arc::ptr_eq(&self.mapping, mapping)
    }

    /// The host-memory window that holds every IOVA the domain hands out: what the driver
    /// grants each queue it sets up.
    pub fn window(&self) -> HostWindow {
        let span = self.allocator.lock().expect("allocator lock").span();
        HostWindow {
            base: span.start,
            bytes: span.end - span.start,
        }
    }

    /// IOVA space not yet handed out.
    pub fn free_bytes(&self) -> u64 {
        self.allocator.lock().expect("allocator lock").free_bytes()
    }
}

/// A zeroed buffer of whole pages, mapped for its domain's cards in one direction.
pub struct DmaBuffer {
    domain: Arc<DmaDomain>,
    host: NonNull<u8>,
    /// Whole pages: what is allocated and mapped.
    mapped_bytes: u64,
    /// What was asked for: the bounds of every access.
    size: u64,
    iova: u64,
    direction: DmaDirection,
}

// The memory is owned by the buffer alone; all access goes through raw pointers.
unsafe impl Send for DmaBuffer {}
unsafe impl Sync for DmaBuffer {}

impl DmaBuffer {
    pub fn new(
        domain: &Arc<DmaDomain>,
        size: u64,
        direction: DmaDirection,
    ) -> Result<Self, DmaError> {
        if size == 0 {
            return Err(IovaError::Empty.into());
        }
        let mapped_bytes = size
            .checked_next_multiple_of(PAGE)
            .ok_or(IovaError::Exhausted(size))?;
        let host = allocate_pages(mapped_bytes)?;
        let iova = match domain
            .allocator
            .lock()
            .expect("allocator lock")
            .allocate(size)
        {
            Ok(iova) => iova,
            Err(error) => {
                free_pages(host, mapped_bytes);
                return Err(error.into());
            }
        };
        // Safety: the pages stay allocated until drop, which unmaps them first.
        let mapped = unsafe {
            domain
                .mapping
                .map(iova, host.as_ptr(), mapped_bytes, direction)
        };
        if let Err(error) = mapped {
            let _ = domain
                .allocator
                .lock()
                .expect("allocator lock")
                .free(iova, size);
            free_pages(host, mapped_bytes);
            return Err(error.into());
        }
        tracing::trace!(iova, size, ?direction, "DMA buffer mapped");
        Ok(Self {
            domain: Arc::clone(domain),
            host,
            mapped_bytes,
            size,
            iova,
            direction,
        })
    }

    pub fn iova(&self) -> u64 {
        self.iova
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn direction(&self) -> DmaDirection {
        self.direction
    }

    pub fn domain(&self) -> &Arc<DmaDomain> {
        &self.domain
    }

    fn check(&self, offset: u64, length: u64) -> Result<(), DmaError> {
        if !npmu_abi::range_fits(offset, length, self.size) {
            return Err(DmaError::OutOfBuffer {
                offset,
                length,
                size: self.size,
            });
        }
        Ok(())
    }

    /// Copies `data` in at `offset`.
    pub fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), DmaError> {
        self.check(offset, data.len() as u64)?;
        // Safety: in bounds (checked) and no reference to the memory exists.
        unsafe {
            std::ptr::copy_nonoverlapping(
                data.as_ptr(),
                self.host.as_ptr().add(offset as usize),
                data.len(),
            );
        }
        Ok(())
    }

    /// Copies bytes out from `offset` into `buffer`.
    pub fn read(&self, offset: u64, buffer: &mut [u8]) -> Result<(), DmaError> {
        self.check(offset, buffer.len() as u64)?;
        // Safety: in bounds (checked) and no reference to the memory exists.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.host.as_ptr().add(offset as usize),
                buffer.as_mut_ptr(),
                buffer.len(),
            );
        }
        Ok(())
    }

    /// Sets `length` bytes from `offset` to `value`.
    pub fn fill(&mut self, offset: u64, length: u64, value: u8) -> Result<(), DmaError> {
        self.check(offset, length)?;
        // Safety: in bounds (checked).
        unsafe {
            std::ptr::write_bytes(
                self.host.as_ptr().add(offset as usize),
                value,
                length as usize,
            )
        };
        Ok(())
    }

    /// Writes the 8-byte words of `image` at `offset` one volatile store each, so that the
    /// card never sees a torn word; `offset` and `image` are multiples of 8 bytes.
    pub(crate) fn write_words(&mut self, offset: u64, image: &[u8]) -> Result<(), DmaError> {
        self.check(offset, image.len() as u64)?;
        debug_assert!(offset % 8 == 0 && image.len() % 8 == 0);
        for (index, word) in image.chunks_exact(8).enumerate() {
            let word = u64::from_le_bytes(word.try_into().expect("8 bytes"));
            // Safety: in bounds (checked) and 8-byte aligned (pages are, offset is).
            unsafe {
                let at = self.host.as_ptr().add(offset as usize + 8 * index) as *mut u64;
                at.write_volatile(word.to_le());
            }
        }
        Ok(())
    }

    /// Reads 8-byte words from `offset` into `image` with one volatile load each.
    pub(crate) fn read_words(&self, offset: u64, image: &mut [u8]) -> Result<(), DmaError> {
        self.check(offset, image.len() as u64)?;
        debug_assert!(offset % 8 == 0 && image.len() % 8 == 0);
        for (index, word) in image.chunks_exact_mut(8).enumerate() {
            // Safety: in bounds (checked) and 8-byte aligned.
            let value = unsafe {
                let at = self.host.as_ptr().add(offset as usize + 8 * index) as *const u64;
                u64::from_le(at.read_volatile())
            };
            word.copy_from_slice(&value.to_le_bytes());
        }
        Ok(())
    }

    /// One volatile byte load, for a phase bit the card may be writing.
    pub(crate) fn read_byte(&self, offset: u64) -> Result<u8, DmaError> {
        self.check(offset, 1)?;
        // Safety: in bounds (checked).
        Ok(unsafe { self.host.as_ptr().add(offset as usize).read_volatile() })
    }
}

impl Drop for DmaBuffer {
    fn drop(&mut self) {
        if let Err(error) = self.domain.mapping.unmap(self.iova, self.mapped_bytes) {
            // A card may still reach these pages: leaking them is the only safe choice.
            tracing::error!(iova = self.iova, %error, "DMA buffer could not be unmapped; its memory is leaked");
            return;
        }
        if let Err(error) = self
            .domain
            .allocator
            .lock()
            .expect("allocator lock")
            .free(self.iova, self.size)
        {
            tracing::error!(%error, "IOVA bookkeeping");
        }
        free_pages(self.host, self.mapped_bytes);
    }
}

fn allocate_pages(bytes: u64) -> Result<NonNull<u8>, DmaError> {
    // Safety: an anonymous private mapping touches no existing memory.
    let address = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            bytes as usize,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if address == libc::MAP_FAILED {
        return Err(DmaError::OutOfMemory(
            bytes,
            std::io::Error::last_os_error(),
        ));
    }
    Ok(NonNull::new(address.cast()).expect("mmap does not return null on success"))
}

fn free_pages(host: NonNull<u8>, bytes: u64) {
    // Safety: `host` came from `allocate_pages(bytes)` and nothing refers to it any more.
    unsafe { libc::munmap(host.as_ptr().cast(), bytes as usize) };
}
