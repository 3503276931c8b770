//! The real card through Linux VFIO: a container is an IOMMU domain ([`VfioDomain`]), a
//! vfio-pci function gives its BARs, config space, MSI and reset ([`VfioPciFunction`]),
//! and an npmu card is a function with BAR0 mapped and its MSI vectors on eventfds
//! ([`VfioCard`]).
//!
//! Open the functions of a domain before creating the `DmaDomain` over it: the usable IOVA
//! ranges depend on the IOMMU groups attached.

use crate::mmio_region::MmioRegion;
use npmu_device::{check_mapping, Device, DeviceError, DmaDirection, DmaMapping, Interrupts, Mmio};
use std::collections::BTreeSet;
use std::io;
use std::ops::{Deref, Range, RangeInclusive};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thiserror::Error;
use vfio_bindings::bindings::vfio::{
    VFIO_PCI_BAR0_REGION_INDEX, VFIO_PCI_CONFIG_REGION_INDEX, VFIO_PCI_MSI_IRQ_INDEX,
    VFIO_REGION_INFO_FLAG_MMAP,
};
use vfio_ioctls::{VfioContainer, VfioDevice};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

/// Where interrupt messages are written on x86: never a DMA target, whatever sysfs says.
const MSI_WINDOW: RangeInclusive<u64> = 0xfee0_0000..=0xfeef_ffff;

pub const PCI_VENDOR_ID: u16 = 0x00;
pub const PCI_DEVICE_ID: u16 = 0x02;
pub const PCI_COMMAND: u16 = 0x04;
pub const PCI_COMMAND_MEMORY: u16 = 1 << 1;
pub const PCI_COMMAND_BUS_MASTER: u16 = 1 << 2;

// vfio-ioctls' `VfioDevice::reset` swallows the error and skips devices that cannot reset.
mod ioctls {
    use vfio_bindings::bindings::vfio::{VFIO_BASE, VFIO_TYPE};
    vmm_sys_util::ioctl_io_nr!(VFIO_DEVICE_RESET, VFIO_TYPE.into(), VFIO_BASE + 11);
}

#[derive(Debug, Error)]
pub enum VfioError {
    #[error("{0:?} is not a PCI address of the form dddd:bb:dd.f")]
    BadAddress(String),
    #[error(
        "opening the VFIO container /dev/vfio/vfio failed (are the vfio modules loaded?): {0}"
    )]
    Container(#[source] vfio_ioctls::VfioError),
    #[error("{device}: no such PCI function in /sys/bus/pci/devices")]
    NoDevice { device: String },
    #[error("{device}: bound to {driver}, not to vfio-pci")]
    NotVfioPci { device: String, driver: String },
    #[error("{device}: no IOMMU group (is the IOMMU enabled?): {source}")]
    Group { device: String, source: io::Error },
    #[error("{device}: opening through VFIO failed (is its IOMMU group viable, every function in it bound to vfio-pci?): {source}")]
    Open {
        device: String,
        source: vfio_ioctls::VfioError,
    },
    #[error("{device}: region {index} {why}")]
    Region {
        device: String,
        index: u32,
        why: &'static str,
    },
    #[error("{device}: mapping BAR {bar} ({size:#x} bytes) failed: {source}")]
    Mmap {
        device: String,
        bar: u32,
        size: u64,
        source: io::Error,
    },
    #[error("{device}: config space access of {size} bytes at {offset:#x} failed: {source}")]
    Config {
        device: String,
        offset: u16,
        size: usize,
        source: io::Error,
    },
    #[error("{device}: MSI: {why}")]
    Irq { device: String, why: String },
    #[error("{device}: VFIO_DEVICE_RESET failed (EINVAL: the kernel knows no function-level, PM or bus reset for it): {source}")]
    Reset { device: String, source: io::Error },
}

impl From<VfioError> for DeviceError {
    fn from(error: VfioError) -> Self {
        match error {
            VfioError::Reset { .. } => DeviceError::Reset(error.to_string()),
            // A config space access that fails on an open function: the card is gone.
            error => DeviceError::Stopped(error.to_string()),
        }
    }
}

/// The canonical (lower case) form of a PCI address `dddd:bb:dd.f`, as sysfs names it.
pub fn canonical_pci_address(address: &str) -> Result<String, VfioError> {
    let bad = || VfioError::BadAddress(address.to_owned());
    // Exactly `digits` hexadecimal digits (from_str_radix alone would take a sign).
    let hex = |field: &str, digits: usize| {
        (field.len() == digits && field.bytes().all(|byte| byte.is_ascii_hexdigit()))
            .then(|| u16::from_str_radix(field, 16).ok())
            .flatten()
    };
    let (domain, rest) = address.split_once(':').ok_or_else(bad)?;
    let (bus, rest) = rest.split_once(':').ok_or_else(bad)?;
    let (slot, function) = rest.split_once('.').ok_or_else(bad)?;
    match (hex(domain, 4), hex(bus, 2), hex(slot, 2), hex(function, 1)) {
        (Some(_), Some(_), Some(slot), Some(function)) if slot < 32 && function < 8 => {
            Ok(address.to_ascii_lowercase())
        }
        _ => Err(bad()),
    }
}

/// An IOMMU domain: one VFIO container. Every function opened with it is attached to it,
/// so a buffer mapped once is reachable by all of them at the same IOVA.
pub struct VfioDomain {
    container: Arc<VfioContainer>,
    /// IOMMU groups attached so far: their reserved regions are not usable IOVA.
    groups: Mutex<BTreeSet<u32>>,
}

impl VfioDomain {
    pub fn new() -> Result<Arc<Self>, VfioError> {
        let container = VfioContainer::new(None).map_err(VfioError::Container)?;
        Ok(Arc::new(Self {
            container: Arc::new(container),
            groups: Mutex::new(BTreeSet::new()),
        }))
    }

    fn attach_group(&self, group: u32) {
        self.groups.lock().expect("group lock").insert(group);
    }
}

impl DmaMapping for VfioDomain {
    /// Everything but the MSI window and the reserved regions of the attached groups
    /// (`/sys/kernel/iommu_groups/<group>/reserved_regions`: vfio-ioctls does not expose
    /// the container's IOVA-range info). The IOMMU's address width is not in sysfs: a
    /// mapping beyond it is refused by the kernel when made.
    fn iova_ranges(&self) -> Vec<Range<u64>> {
        let groups = self.groups.lock().expect("group lock");
        if groups.is_empty() {
            tracing::warn!("IOVA ranges asked for before any function was opened: only the MSI window is excluded");
        }
        let mut reserved = vec![MSI_WINDOW];
        for group in groups.iter() {
            let path = format!("/sys/kernel/iommu_groups/{group}/reserved_regions");
            match std::fs::read_to_string(&path) {
                Ok(text) => reserved.extend(parse_reserved_regions(&text)),
                // The kernel still refuses mappings into reserved regions.
                Err(error) => tracing::warn!(path, %error, "reserved regions unknown"),
            }
        }
        usable_ranges(&reserved)
    }

    /// Maps read-write whatever `direction` says: VFIO type1 through vfio-ioctls only makes
    /// read-write mappings, so the direction is documentation, not protection.
    unsafe fn map(
        &self,
        iova: u64,
        host: *mut u8,
        length: u64,
        direction: DmaDirection,
    ) -> Result<(), DeviceError> {
        check_mapping(iova, host, length)?;
        let size = usize::try_from(length).map_err(|_| DeviceError::BadMapping {
            iova,
            length,
            why: "the length does not fit the address space",
        })?;
        // Safety: the caller keeps `host` allocated until unmapped, and makes no
        // references into it (the contract of `DmaMapping::map`).
        unsafe { self.container.vfio_dma_map(iova, size, host) }.map_err(|error| {
            DeviceError::Map {
                iova,
                length,
                source: io_error(error),
            }
        })?;
        tracing::trace!(iova, length, ?direction, "IOMMU mapping added");
        Ok(())
    }

    fn unmap(&self, iova: u64, length: u64) -> Result<(), DeviceError> {
        let failed = |source| DeviceError::Unmap {
            iova,
            length,
            source,
        };
        let size = usize::try_from(length)
            .map_err(|_| failed(io::Error::from(io::ErrorKind::InvalidInput)))?;
        self.container
            .vfio_dma_unmap(iova, size)
            .map_err(|error| failed(io_error(error)))?;
        tracing::trace!(iova, length, "IOMMU mapping removed");
        Ok(())
    }
}

fn io_error(error: vfio_ioctls::VfioError) -> io::Error {
    match error {
        vfio_ioctls::VfioError::IommuDmaMap(errno)
        | vfio_ioctls::VfioError::IommuDmaUnmap(errno) => errno.into(),
        other => io::Error::other(other),
    }
}

/// The regions of a `reserved_regions` file: lines of `<start> <end> <type>`, hexadecimal,
/// end inclusive. Every type is excluded, `direct-relaxable` too: being conservative
/// costs a little IOVA space.
fn parse_reserved_regions(text: &str) -> Vec<RangeInclusive<u64>> {
    let hex = |field: &str| u64::from_str_radix(field.trim_start_matches("0x"), 16).ok();
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let start = hex(fields.next()?)?;
            let end = hex(fields.next()?)?;
            (start <= end).then_some(start..=end)
        })
        .collect()
}

/// The whole 64-bit space less the `reserved` ranges, in ascending order. (The last byte
/// of the space cannot be expressed as an exclusive end; it is not page sized anyway.)
fn usable_ranges(reserved: &[RangeInclusive<u64>]) -> Vec<Range<u64>> {
    let mut reserved = reserved.to_vec();
    reserved.sort_by_key(|range| *range.start());
    let mut usable = Vec::new();
    let mut next = 0u64;
    for hole in reserved {
        if *hole.start() > next {
            usable.push(next..*hole.start());
        }
        match hole.end().checked_add(1) {
            Some(after) => next = next.max(after),
            None => return usable,
        }
    }
    if next < u64::MAX {
        usable.push(next..u64::MAX);
    }
    usable
}

/// What VFIO says of one region of a function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegionInfo {
    pub index: u32,
    pub size: u64,
    /// Where the region lies in the device file, for pread/pwrite and mmap.
    pub offset: u64,
    pub flags: u32,
}

impl RegionInfo {
    pub fn mappable(&self) -> bool {
        self.flags & VFIO_REGION_INFO_FLAG_MMAP != 0
    }
}

/// A BAR mapped from the device file: its registers, unmapped on drop.
pub struct MappedBar {
    registers: MmioRegion,
    base: *mut libc::c_void,
    length: usize,
}

// The mapping is owned here alone; the registers are `Send + Sync`.
unsafe impl Send for MappedBar {}
unsafe impl Sync for MappedBar {}

impl Deref for MappedBar {
    type Target = MmioRegion;
    fn deref(&self) -> &MmioRegion {
        &self.registers
    }
}

impl Drop for MappedBar {
    fn drop(&mut self) {
        // Safety: `base` and `length` are the mapping made in `map_bar`, and the registers
        // that point into it go with `self`.
        unsafe { libc::munmap(self.base, self.length) };
    }
}

/// A PCI function bound to vfio-pci, any device: regions, config space, MSI, reset.
pub struct VfioPciFunction {
    address: String,
    device: VfioDevice,
}

impl VfioPciFunction {
    /// Opens `pci_address` (`dddd:bb:dd.f`) and attaches its IOMMU group to `domain`.
    pub fn open(pci_address: &str, domain: &VfioDomain) -> Result<Self, VfioError> {
        let address = canonical_pci_address(pci_address)?;
        let sysfs = PathBuf::from("/sys/bus/pci/devices").join(&address);
        if !sysfs.exists() {
            return Err(VfioError::NoDevice { device: address });
        }
        let driver = bound_driver(&sysfs);
        if driver.as_deref() != Some("vfio-pci") {
            return Err(VfioError::NotVfioPci {
                device: address,
                driver: driver.unwrap_or_else(|| "no driver".to_owned()),
            });
        }
        let group = iommu_group(&sysfs).map_err(|source| VfioError::Group {
            device: address.clone(),
            source,
        })?;
        let device =
            VfioDevice::new(&sysfs, domain.container.clone(), false).map_err(|source| {
                VfioError::Open {
                    device: address.clone(),
                    source,
                }
            })?;
        domain.attach_group(group);
        tracing::debug!(device = address, group, "opened through VFIO");
        Ok(Self { address, device })
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    /// Region `index`: a BAR (0 to 5) or one of VFIO's other regions (config space is 7).
    pub fn region(&self, index: u32) -> Result<RegionInfo, VfioError> {
        let size = self.device.get_region_size(index);
        if size == 0 {
            return Err(self.region_error(index, "does not exist"));
        }
        Ok(RegionInfo {
            index,
            size,
            offset: self.device.get_region_offset(index),
            flags: self.device.get_region_flags(index),
        })
    }

    fn region_error(&self, index: u32, why: &'static str) -> VfioError {
        VfioError::Region {
            device: self.address.clone(),
            index,
            why,
        }
    }

    /// Maps BAR `bar` of the device file into this process. Drop the mapping before the
    /// function: it holds the device file open, and while it is open the device's group
    /// cannot leave the container.
    pub fn map_bar(&self, bar: u32) -> Result<MappedBar, VfioError> {
        let region = self.region(VFIO_PCI_BAR0_REGION_INDEX + bar)?;
        if !region.mappable() {
            return Err(self.region_error(region.index, "cannot be mmapped"));
        }
        let failed = |source| VfioError::Mmap {
            device: self.address.clone(),
            bar,
            size: region.size,
            source,
        };
        let length = usize::try_from(region.size)
            .map_err(|_| failed(io::Error::from(io::ErrorKind::InvalidInput)))?;
        let offset = libc::off_t::try_from(region.offset)
            .map_err(|_| failed(io::Error::from(io::ErrorKind::InvalidInput)))?;
        // Safety: a new shared mapping of the device file, touching no existing memory.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                length,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                self.device.as_raw_fd(),
                offset,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(failed(io::Error::last_os_error()));
        }
        // Safety: the mapping is `length` bytes, page aligned, and lives as long as the
        // `MappedBar` that owns both.
        let registers = unsafe { MmioRegion::new(base.cast(), length) };
        Ok(MappedBar {
            registers,
            base,
            length,
        })
    }

    fn config_error(&self, offset: u16, size: usize, source: io::Error) -> VfioError {
        VfioError::Config {
            device: self.address.clone(),
            offset,
            size,
            source,
        }
    }

    // vfio-ioctls' region_read/region_write only log failures: use pread/pwrite instead.
    fn read_config<const N: usize>(&self, offset: u16) -> Result<[u8; N], VfioError> {
        let config = self.region(VFIO_PCI_CONFIG_REGION_INDEX)?;
        let mut bytes = [0u8; N];
        // Safety: reads into a local buffer of N bytes.
        let read = unsafe {
            libc::pread(
                self.device.as_raw_fd(),
                bytes.as_mut_ptr().cast(),
                N,
                (config.offset + u64::from(offset)) as libc::off_t,
            )
        };
        match read {
            -1 => Err(self.config_error(offset, N, io::Error::last_os_error())),
            read if read as usize == N => Ok(bytes),
            _ => Err(self.config_error(offset, N, io::ErrorKind::UnexpectedEof.into())),
        }
    }

    fn write_config<const N: usize>(&self, offset: u16, bytes: [u8; N]) -> Result<(), VfioError> {
        let config = self.region(VFIO_PCI_CONFIG_REGION_INDEX)?;
        // Safety: writes from a local buffer of N bytes.
        let written = unsafe {
            libc::pwrite(
                self.device.as_raw_fd(),
                bytes.as_ptr().cast(),
                N,
                (config.offset + u64::from(offset)) as libc::off_t,
            )
        };
        match written {
            -1 => Err(self.config_error(offset, N, io::Error::last_os_error())),
            written if written as usize == N => Ok(()),
            _ => Err(self.config_error(offset, N, io::ErrorKind::WriteZero.into())),
        }
    }

    pub fn read_config_u16(&self, offset: u16) -> Result<u16, VfioError> {
        self.read_config(offset).map(u16::from_le_bytes)
    }

    pub fn read_config_u32(&self, offset: u16) -> Result<u32, VfioError> {
        self.read_config(offset).map(u32::from_le_bytes)
    }

    pub fn write_config_u16(&self, offset: u16, value: u16) -> Result<(), VfioError> {
        self.write_config(offset, value.to_le_bytes())
    }

    pub fn write_config_u32(&self, offset: u16, value: u32) -> Result<(), VfioError> {
        self.write_config(offset, value.to_le_bytes())
    }

    /// Lets the function master the bus. vfio-pci leaves it off, and without it every DMA
    /// of the device fails silently.
    pub fn enable_bus_master(&self) -> Result<(), VfioError> {
        let command = self.read_config_u16(PCI_COMMAND)?;
        self.write_config_u16(
            PCI_COMMAND,
            command | PCI_COMMAND_MEMORY | PCI_COMMAND_BUS_MASTER,
        )
    }

    /// How many MSI vectors the function offers.
    pub fn msi_vectors(&self) -> u32 {
        self.device
            .get_irq_info(VFIO_PCI_MSI_IRQ_INDEX)
            .map_or(0, |irq| irq.count)
    }

    /// Enables `vectors` MSI vectors, each signalling its own nonblocking eventfd.
    pub fn enable_msi(&self, vectors: u32) -> Result<Vec<EventFd>, VfioError> {
        let failed = |why: String| VfioError::Irq {
            device: self.address.clone(),
            why,
        };
        let offered = self.msi_vectors();
        if vectors == 0 || vectors > offered {
            return Err(failed(format!(
                "{vectors} vectors asked for, {offered} offered"
            )));
        }
        let eventfds = (0..vectors)
            .map(|_| EventFd::new(EFD_NONBLOCK))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| failed(format!("creating an eventfd: {error}")))?;
        self.device
            .enable_irq(VFIO_PCI_MSI_IRQ_INDEX, eventfds.iter().collect())
            .map_err(|error| failed(format!("enabling {vectors} vectors: {error}")))?;
        Ok(eventfds)
    }

    /// Resets the function (FLR, PM or bus reset, whichever the kernel finds). The kernel
    /// saves and restores config space around it.
    pub fn reset(&self) -> Result<(), VfioError> {
        // Safety: VFIO_DEVICE_RESET takes no argument and the fd is a VFIO device.
        let result =
            unsafe { vmm_sys_util::ioctl::ioctl(&self.device, ioctls::VFIO_DEVICE_RESET()) };
        if result < 0 {
            return Err(VfioError::Reset {
                device: self.address.clone(),
                source: io::Error::last_os_error(),
            });
        }
        Ok(())
    }
}

fn bound_driver(sysfs: &Path) -> Option<String> {
    let driver = std::fs::read_link(sysfs.join("driver")).ok()?;
    Some(driver.file_name()?.to_string_lossy().into_owned())
}

fn iommu_group(sysfs: &Path) -> io::Result<u32> {
    let group = std::fs::read_link(sysfs.join("iommu_group"))?;
    group
        .file_name()
        .and_then(|name| name.to_str()?.parse().ok())
        .ok_or_else(|| io::Error::other(format!("{} is not a group", group.display())))
}

/// Waits at most `timeout` for `eventfd` (nonblocking) to count; `Ok(true)` if it had or
/// got a nonzero count, which this consumes.
pub fn wait_eventfd(eventfd: &EventFd, timeout: Duration) -> io::Result<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        match eventfd.read() {
            Ok(_) => return Ok(true),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
            Err(error) => return Err(error),
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        let mut ready = libc::pollfd {
            fd: eventfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // Rounded up: a wait of less than a millisecond must not become a busy loop.
        let millis = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
        // Safety: one valid pollfd.
        if unsafe { libc::poll(&mut ready, 1, millis) } < 0 {
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                return Err(error);
            }
        }
    }
}

/// An npmu card through VFIO: BAR0 holds the NI's registers, each MSI vector an eventfd.
pub struct VfioCard {
    // Dropped in this order: the BAR is unmapped before the device file is closed.
    registers: MappedBar,
    interrupts: Vec<EventFd>,
    function: VfioPciFunction,
    domain: Arc<VfioDomain>,
}

impl VfioCard {
    /// Opens the card at `pci_address` in `domain`, maps BAR0, lets it master the bus and
    /// enables all its MSI vectors.
    pub fn open(pci_address: &str, domain: &Arc<VfioDomain>) -> Result<Self, VfioError> {
        let function = VfioPciFunction::open(pci_address, domain)?;
        let registers = function.map_bar(0)?;
        function.enable_bus_master()?;
        let interrupts = function.enable_msi(function.msi_vectors())?;
        Ok(Self {
            registers,
            interrupts,
            function,
            domain: Arc::clone(domain),
        })
    }

    /// The function underneath, for what the `Device` traits do not cover.
    pub fn function(&self) -> &VfioPciFunction {
        &self.function
    }
}

impl Mmio for VfioCard {
    /// An offset outside BAR0 is a driver bug: logged, and read as all ones like a PCIe
    /// master abort, so the status check that follows fails.
    fn read_register(&self, offset: u16) -> u64 {
        self.registers
            .read_u64(offset.into())
            .unwrap_or_else(|error| {
                tracing::error!(device = self.name(), %error, "register read refused");
                u64::MAX
            })
    }

    fn write_register(&self, offset: u16, value: u64) {
        if let Err(error) = self.registers.write_u64(offset.into(), value) {
            tracing::error!(device = self.name(), %error, value, "register write dropped");
        }
    }
}

impl Interrupts for VfioCard {
    fn interrupt_vectors(&self) -> u16 {
        self.interrupts.len() as u16
    }

    fn wait_interrupt(&self, vector: u16, timeout: Duration) -> Result<bool, DeviceError> {
        let eventfd =
            self.interrupts
                .get(usize::from(vector))
                .ok_or(DeviceError::NoSuchVector {
                    vector,
                    vectors: self.interrupt_vectors(),
                })?;
        wait_eventfd(eventfd, timeout).map_err(DeviceError::Interrupt)
    }
}

impl Device for VfioCard {
    fn name(&self) -> &str {
        self.function.address()
    }

    fn dma(&self) -> Arc<dyn DmaMapping> {
        self.domain.clone()
    }

    /// The kernel restores config space after the reset; Bus Master is set again anyway,
    /// since DMA fails silently without it.
    fn reset(&self) -> Result<(), DeviceError> {
        self.function.reset()?;
        self.function.enable_bus_master()?;
        tracing::debug!(device = self.name(), "reset");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_addresses_are_validated_and_lower_cased() {
        assert_eq!(
            canonical_pci_address("0000:00:04.0").unwrap(),
            "0000:00:04.0"
        );
        assert_eq!(
            canonical_pci_address("0000:AF:1f.7").unwrap(),
            "0000:af:1f.7"
        );
        for bad in [
            "",
            "00:04.0",
            "0000:00:04",
            "0000:00:04.8",
            "0000:00:20.0",
            "000:00:04.0",
            "0000:0:04.0",
            "0000:00:4.0",
            "0000:00:04.00",
            "g000:00:04.0",
            "0000:00:+4.0",
            "0000:00:04.0 ",
            "0000:00:04:0",
        ] {
            assert!(
                matches!(canonical_pci_address(bad), Err(VfioError::BadAddress(_))),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn reserved_regions_are_parsed_end_inclusive() {
        let text = "0x00000000000a0000 0x00000000000bffff direct\n\
                    0x00000000fee00000 0x00000000feefffff msi\n\
                    garbage\n";
        assert_eq!(
            parse_reserved_regions(text),
            [0xa_0000..=0xb_ffff, 0xfee0_0000..=0xfeef_ffff]
        );
    }

    #[test]
    fn usable_ranges_leave_out_every_reserved_region() {
        let usable = usable_ranges(&[MSI_WINDOW, 0xa_0000..=0xb_ffff, 0xa_8000..=0xa_ffff]);
        assert_eq!(
            usable,
            [0..0xa_0000, 0xc_0000..0xfee0_0000, 0xfef0_0000..u64::MAX]
        );
        assert_eq!(usable_ranges(&[0..=u64::MAX]), []);
        assert_eq!(
            usable_ranges(&[0x2000..=0x2fff, 0..=0xfff]),
            [0x1000..0x2000, 0x3000..u64::MAX]
        );
    }

    #[test]
    fn an_eventfd_that_counted_is_consumed_by_the_wait() {
        let eventfd = EventFd::new(EFD_NONBLOCK).unwrap();
        eventfd.write(3).unwrap();
        assert!(wait_eventfd(&eventfd, Duration::ZERO).unwrap());
        let started = Instant::now();
        assert!(!wait_eventfd(&eventfd, Duration::from_millis(30)).unwrap());
        assert!(
            started.elapsed() >= Duration::from_millis(30),
            "waited the whole timeout"
        );
    }

    #[test]
    fn a_wait_ends_when_the_eventfd_counts() {
        let eventfd = EventFd::new(EFD_NONBLOCK).unwrap();
        let signal = eventfd.try_clone().unwrap();
        let signaller = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            signal.write(1).unwrap();
        });
        let started = Instant::now();
        assert!(wait_eventfd(&eventfd, Duration::from_secs(10)).unwrap());
        assert!(started.elapsed() < Duration::from_secs(5));
        signaller.join().unwrap();
    }
}
