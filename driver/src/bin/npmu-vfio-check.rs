//! Checks the VFIO backend on a real kernel without an FPGA: run inside a QEMU guest with
//! an IOMMU and two of QEMU's `edu` test devices bound to vfio-pci
//! (driver/qemu/run-vfio-tests does all that). Prints one line per check, `PASS <name>` or
//! `FAIL <name>: <why>`, and exits non-zero if any failed.

use clap::Parser;
use npmu_abi::HOST_PAGE_BYTES;
use npmu_driver::mmio_region::MmioRegion;
use npmu_driver::vfio::{
    MappedBar, VfioCard, VfioDomain, PCI_COMMAND, PCI_COMMAND_BUS_MASTER, PCI_DEVICE_ID,
    PCI_VENDOR_ID,
};
use npmu_driver::{Device, DmaBuffer, DmaDirection, DmaDomain, DmaMapping, Interrupts, Mmio};
use std::fmt::Display;
use std::io::{ErrorKind, IsTerminal, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// QEMU's `edu` device (docs/specs/edu.rst): registers in BAR0, a 4 KiB buffer at 0x40000
/// of its own address space that its DMA engine copies to and from.
mod edu {
    pub const VENDOR: u16 = 0x1234;
    pub const DEVICE: u16 = 0x11e8;
    pub const BAR0_BYTES: u64 = 1 << 20;
    pub const IDENT: usize = 0x00;
    pub const IDENT_LOW_BYTE: u32 = 0xed;
    /// Reads back the bitwise inverse of what was written.
    pub const LIVENESS: usize = 0x04;
    pub const IRQ_STATUS: usize = 0x24;
    pub const IRQ_RAISE: usize = 0x60;
    pub const IRQ_ACKNOWLEDGE: usize = 0x64;
    // The DMA registers take 8-byte accesses.
    pub const DMA_SOURCE: u16 = 0x80;
    pub const DMA_DESTINATION: u16 = 0x88;
    pub const DMA_COUNT: u16 = 0x90;
    pub const DMA_COMMAND: u16 = 0x98;
    pub const DMA_START: u64 = 1 << 0;
    /// Set: from edu's buffer to RAM; clear: from RAM to edu's buffer.
    pub const DMA_TO_RAM: u64 = 1 << 1;
    pub const DMA_RAISE_IRQ: u64 = 1 << 2;
    /// What a finished DMA with DMA_RAISE_IRQ puts in IRQ_STATUS.
    pub const DMA_IRQ_STATUS: u32 = 0x100;
    pub const BUFFER: u64 = 0x40000;
    /// Half of edu's 4 KiB buffer: QEMU 7.2's edu aborts the whole VM on a transfer that
    /// reaches the end of its buffer (an off-by-one in its range check).
    pub const TRANSFER_BYTES: u64 = 2048;
    /// edu masks DMA addresses to 28 bits.
    pub const DMA_ADDRESS_BITS: u32 = 28;
}

const INTERRUPT_TIMEOUT: Duration = Duration::from_secs(2);
/// Long enough for an interrupt to arrive if one had been raised.
const NO_INTERRUPT_TIMEOUT: Duration = Duration::from_millis(300);
/// edu finishes a DMA 100 ms of virtual time after it starts; TCG is slow.
const DMA_TIMEOUT: Duration = Duration::from_secs(10);
const FAULT_LOG_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Parser)]
#[command(about = "Checks npmu-driver's VFIO backend against two QEMU edu devices")]
struct Arguments {
    /// PCI address (dddd:bb:dd.f) of an edu device bound to vfio-pci; give it twice.
    #[arg(long = "edu", required_unless_present = "list")]
    edus: Vec<String>,
    /// Print the names of the checks, one a line, and run none.
    #[arg(long, conflicts_with = "edus")]
    list: bool,
}

type Outcome = Result<(), String>;

/// Turns any error into the reason a check failed.
trait Context<T> {
    fn context(self, what: &str) -> Result<T, String>;
}

impl<T, E: Display> Context<T> for Result<T, E> {
    fn context(self, what: &str) -> Result<T, String> {
        self.map_err(|error| format!("{what}: {error}"))
    }
}

fn ensure(condition: bool, why: impl FnOnce() -> String) -> Outcome {
    if condition {
        Ok(())
    } else {
        Err(why())
    }
}

/// One edu: the card as the driver sees it, plus BAR0 mapped once more for edu's 32-bit
/// registers (the `Mmio` trait is 64-bit only).
struct Edu {
    // Unmapped first: a mapping holds the device file open, and while it is open the
    // device's group cannot leave the container.
    bar0: MappedBar,
    card: VfioCard,
}

impl Edu {
    fn open(address: &str, domain: &Arc<VfioDomain>) -> Result<Self, String> {
        let card = VfioCard::open(address, domain).context("opening")?;
        let bar0 = card.function().map_bar(0).context("mapping BAR0")?;
        Ok(Self { bar0, card })
    }

    fn name(&self) -> &str {
        self.card.name()
    }

    fn read32(&self, offset: usize) -> Result<u32, String> {
        self.bar0.read_u32(offset).context(self.name())
    }

    fn write32(&self, offset: usize, value: u32) -> Outcome {
        self.bar0.write_u32(offset, value).context(self.name())
    }

    /// Runs one DMA and waits for the engine to finish.
    fn dma(&self, source: u64, destination: u64, bytes: u64, command: u64) -> Outcome {
        self.card.write_register(edu::DMA_SOURCE, source);
        self.card.write_register(edu::DMA_DESTINATION, destination);
        self.card.write_register(edu::DMA_COUNT, bytes);
        self.card
            .write_register(edu::DMA_COMMAND, command | edu::DMA_START);
        let deadline = Instant::now() + DMA_TIMEOUT;
        while self.card.read_register(edu::DMA_COMMAND) & edu::DMA_START != 0 {
            if Instant::now() > deadline {
                return Err(format!(
                    "{}: DMA still running after {DMA_TIMEOUT:?}",
                    self.name()
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    fn dma_into_edu(&self, buffer: &DmaBuffer) -> Outcome {
        self.dma(buffer.iova(), edu::BUFFER, edu::TRANSFER_BYTES, 0)
    }

    fn dma_out_of_edu(&self, iova: u64, bytes: u64, command: u64) -> Outcome {
        self.dma(edu::BUFFER, iova, bytes, edu::DMA_TO_RAM | command)
    }

    fn interrupt(&self, timeout: Duration) -> Result<bool, String> {
        self.card
            .wait_interrupt(0, timeout)
            .context("waiting for MSI vector 0")
    }

    /// An interrupt arrives with `status` in the status register; acknowledged after.
    fn expect_interrupt(&self, status: u32, cause: &str) -> Outcome {
        ensure(self.interrupt(INTERRUPT_TIMEOUT)?, || {
            format!("no interrupt within {INTERRUPT_TIMEOUT:?} after {cause}")
        })?;
        let read = self.read32(edu::IRQ_STATUS)?;
        ensure(read == status, || {
            format!("after {cause} the interrupt status is {read:#x}, expected {status:#x}")
        })?;
        self.write32(edu::IRQ_ACKNOWLEDGE, status)?;
        let read = self.read32(edu::IRQ_STATUS)?;
        ensure(read == 0, || {
            format!("interrupt status is {read:#x} after acknowledging {status:#x}")
        })
    }

    fn expect_no_interrupt(&self, when: &str) -> Outcome {
        ensure(!self.interrupt(NO_INTERRUPT_TIMEOUT)?, || {
            format!("an interrupt arrived {when}, when none was raised")
        })
    }
}

struct Bench {
    mapping: Arc<VfioDomain>,
    dma: Arc<DmaDomain>,
    edus: [Edu; 2],
}

impl Bench {
    fn open(addresses: &[String]) -> Result<Self, String> {
        let [first, second] = addresses else {
            return Err(format!(
                "two edu devices are needed, {} given",
                addresses.len()
            ));
        };
        let mapping = VfioDomain::new().context("VFIO")?;
        let edus = [
            Edu::open(first, &mapping).context(first)?,
            Edu::open(second, &mapping).context(second)?,
        ];
        // After the functions are opened: their groups' reserved regions shape the space.
        let dma = DmaDomain::new(mapping.clone(), edu::DMA_ADDRESS_BITS);
        Ok(Self { mapping, dma, edus })
    }

    fn buffer(
        &self,
        pattern: impl Fn(usize) -> u8,
        direction: DmaDirection,
    ) -> Result<DmaBuffer, String> {
        let mut buffer =
            DmaBuffer::new(&self.dma, edu::TRANSFER_BYTES, direction).context("DMA buffer")?;
        let bytes: Vec<u8> = (0..edu::TRANSFER_BYTES as usize).map(pattern).collect();
        buffer.write(0, &bytes).context("filling a DMA buffer")?;
        Ok(buffer)
    }
}

fn contents(buffer: &DmaBuffer) -> Result<Vec<u8>, String> {
    let mut bytes = vec![0; buffer.size() as usize];
    buffer.read(0, &mut bytes).context("reading a DMA buffer")?;
    Ok(bytes)
}

fn first_difference(got: &[u8], expected: &[u8]) -> Option<String> {
    let index = got
        .iter()
        .zip(expected)
        .position(|(got, expected)| got != expected)?;
    Some(format!(
        "byte {index} is {:#04x}, expected {:#04x}",
        got[index], expected[index]
    ))
}

/// edu's registers answer through `bar0`: the ident register and the liveness inverter.
fn answers(bar0: &MmioRegion) -> Outcome {
    let ident = bar0.read_u32(edu::IDENT).context("ident register")?;
    ensure(ident & 0xff == edu::IDENT_LOW_BYTE, || {
        format!("ident register reads {ident:#010x}, not 0x......ed")
    })?;
    for value in [0x1234_5678, 0xa5a5_0f0f] {
        bar0.write_u32(edu::LIVENESS, value)
            .context("liveness register")?;
        let read = bar0.read_u32(edu::LIVENESS).context("liveness register")?;
        ensure(read == !value, || {
            format!(
                "liveness register: wrote {value:#010x}, read {read:#010x}, expected {:#010x}",
                !value
            )
        })?;
    }
    Ok(())
}

fn pattern(seed: u8) -> impl Fn(usize) -> u8 {
    move |index| (index as u8).wrapping_mul(31).wrapping_add(seed) ^ (index >> 8) as u8
}

fn check_bar0(bench: &Bench) -> Outcome {
    let edu = &bench.edus[0];
    let region = edu
        .card
        .function()
        .region(0)
        .context("region info of BAR0")?;
    ensure(region.size == edu::BAR0_BYTES, || {
        format!(
            "BAR0 is {:#x} bytes, edu's is {:#x}",
            region.size,
            edu::BAR0_BYTES
        )
    })?;
    ensure(region.mappable(), || "BAR0 is not mmappable".to_owned())?;
    let bar0 = edu.card.function().map_bar(0).context("mapping BAR0")?;
    ensure(bar0.len() as u64 == region.size, || {
        format!("mapped {:#x} bytes of {:#x}", bar0.len(), region.size)
    })?;
    answers(&bar0).context("through a fresh mapping of BAR0")?;
    answers(&edu.bar0).context("through the first mapping of BAR0")
}

fn check_config_space(bench: &Bench) -> Outcome {
    let function = bench.edus[0].card.function();
    let vendor = function
        .read_config_u16(PCI_VENDOR_ID)
        .context("vendor ID")?;
    let device = function
        .read_config_u16(PCI_DEVICE_ID)
        .context("device ID")?;
    ensure((vendor, device) == (edu::VENDOR, edu::DEVICE), || {
        format!(
            "IDs are {vendor:04x}:{device:04x}, edu's are {:04x}:{:04x}",
            edu::VENDOR,
            edu::DEVICE
        )
    })?;
    let ids = function.read_config_u32(0).context("IDs as one word")?;
    ensure(
        ids == u32::from(edu::DEVICE) << 16 | u32::from(edu::VENDOR),
        || format!("the ID word reads {ids:#010x}"),
    )?;
    let bus_master = || -> Result<bool, String> {
        let command = function
            .read_config_u16(PCI_COMMAND)
            .context("command register")?;
        Ok(command & PCI_COMMAND_BUS_MASTER != 0)
    };
    ensure(bus_master()?, || {
        "opening the card did not set Bus Master".to_owned()
    })?;
    let command = function
        .read_config_u16(PCI_COMMAND)
        .context("command register")?;
    function
        .write_config_u16(PCI_COMMAND, command & !PCI_COMMAND_BUS_MASTER)
        .context("clearing Bus Master")?;
    ensure(!bus_master()?, || "Bus Master did not clear".to_owned())?;
    function
        .enable_bus_master()
        .context("enabling Bus Master")?;
    ensure(bus_master()?, || {
        "Bus Master is clear after enabling it".to_owned()
    })
}

fn check_mmio64(bench: &Bench) -> Outcome {
    let card = &bench.edus[0].card;
    for value in [0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210] {
        card.write_register(edu::DMA_SOURCE, value);
        let read = card.read_register(edu::DMA_SOURCE);
        ensure(read == value, || {
            format!("DMA source register: wrote {value:#018x}, read {read:#018x}")
        })?;
    }
    Ok(())
}

fn check_dma(bench: &Bench) -> Outcome {
    let edu = &bench.edus[0];
    let source = bench.buffer(pattern(7), DmaDirection::ToDevice)?;
    let destination = bench.buffer(|_| 0, DmaDirection::FromDevice)?;
    edu.dma_into_edu(&source).context("DMA from RAM into edu")?;
    edu.dma_out_of_edu(destination.iova(), edu::TRANSFER_BYTES, 0)
        .context("DMA from edu into RAM")?;
    match first_difference(&contents(&destination)?, &contents(&source)?) {
        Some(difference) => Err(format!("after DMA into edu and back, {difference}")),
        None => Ok(()),
    }
}

fn check_msi(bench: &Bench) -> Outcome {
    let edu = &bench.edus[0];
    // Anything left from earlier checks is consumed first.
    edu.interrupt(Duration::ZERO)?;
    edu.expect_no_interrupt("before any was raised")?;
    edu.write32(edu::IRQ_RAISE, 0x1234)?;
    edu.expect_interrupt(0x1234, "a write to the raise register")?;
    edu.expect_no_interrupt("after the raised one was consumed")?;
    let destination = bench.buffer(|_| 0, DmaDirection::FromDevice)?;
    edu.dma_out_of_edu(destination.iova(), edu::TRANSFER_BYTES, edu::DMA_RAISE_IRQ)?;
    edu.expect_interrupt(edu::DMA_IRQ_STATUS, "a DMA asked to raise one")?;
    edu.expect_no_interrupt("after the DMA's was consumed")
}

/// A DMA into memory whose mapping was just removed: the IOMMU must block it and the
/// kernel must log the fault.
fn check_iommu_blocks_unmapped(bench: &Bench) -> Outcome {
    let edu = &bench.edus[0];
    let source = bench.buffer(pattern(99), DmaDirection::ToDevice)?;
    edu.dma_into_edu(&source).context("filling edu's buffer")?;
    let victim = bench.buffer(|_| 0x5a, DmaDirection::FromDevice)?;
    let iova = victim.iova();
    let mut kernel_log = KernelLog::open()?;
    bench
        .mapping
        .unmap(iova, HOST_PAGE_BYTES)
        .context("unmapping the destination")?;
    let before = contents(&victim)?;
    let dma = edu.dma_out_of_edu(iova, edu::TRANSFER_BYTES, 0);
    let after = contents(&victim)?;
    // Its mapping is gone already: dropping it would unmap again and fail.
    std::mem::forget(victim);
    dma.context("DMA to the unmapped IOVA")?;
    if let Some(difference) = first_difference(&after, &before) {
        return Err(format!("the unmapped memory changed: {difference}"));
    }
    let fault = format!("fault addr {iova:#x}");
    kernel_log
        .wait_for(|line| line.contains("DMAR") && names_address(line, &fault))
        .map_err(|why| format!("no DMAR fault for IOVA {iova:#x} in the kernel log: {why}"))
}

/// `line` contains `fault` not followed by another hexadecimal digit.
fn names_address(line: &str, fault: &str) -> bool {
    line.match_indices(fault).any(|(at, _)| {
        !line[at + fault.len()..]
            .chars()
            .next()
            .is_some_and(|next| next.is_ascii_hexdigit())
    })
}

/// The kernel log from now on, through /dev/kmsg.
struct KernelLog(std::fs::File);

impl KernelLog {
    fn open() -> Result<Self, String> {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/kmsg")
            .context("opening /dev/kmsg")?;
        file.seek(SeekFrom::End(0))
            .context("skipping the old kernel log")?;
        Ok(Self(file))
    }

    /// Waits for a record that `matches`; records are read one per read(2).
    fn wait_for(&mut self, matches: impl Fn(&str) -> bool) -> Outcome {
        let deadline = Instant::now() + FAULT_LOG_TIMEOUT;
        let mut record = vec![0; 8192];
        let mut seen = 0;
        loop {
            match self.0.read(&mut record) {
                Ok(length) => {
                    seen += 1;
                    if matches(&String::from_utf8_lossy(&record[..length])) {
                        return Ok(());
                    }
                }
                // A record overwritten before it was read: go on with the next.
                Err(error) if error.raw_os_error() == Some(libc::EPIPE) => {}
                Err(error) if error.kind() == ErrorKind::WouldBlock => {
                    if Instant::now() > deadline {
                        return Err(format!(
                            "{seen} new records in {FAULT_LOG_TIMEOUT:?}, none matching"
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(error) => return Err(format!("reading /dev/kmsg: {error}")),
            }
        }
    }
}

fn check_shared_container(bench: &Bench) -> Outcome {
    for edu in &bench.edus {
        ensure(bench.dma.is_over(&edu.card.dma()), || {
            format!("{} is not in the shared DMA domain", edu.name())
        })?;
    }
    let shared = bench.buffer(pattern(200), DmaDirection::ToDevice)?;
    let expected = contents(&shared)?;
    for edu in &bench.edus {
        let copy = bench.buffer(|_| 0, DmaDirection::FromDevice)?;
        edu.dma_into_edu(&shared).context(edu.name())?;
        edu.dma_out_of_edu(copy.iova(), edu::TRANSFER_BYTES, 0)
            .context(edu.name())?;
        if let Some(difference) = first_difference(&contents(&copy)?, &expected) {
            return Err(format!(
                "{} copied the shared buffer wrongly: {difference}",
                edu.name()
            ));
        }
    }
    Ok(())
}

fn check_reset(bench: &Bench) -> Outcome {
    let edu = &bench.edus[0];
    edu.card.reset().map_err(|error| error.to_string())?;
    answers(&edu.bar0).context("after reset")?;
    let command = edu
        .card
        .function()
        .read_config_u16(PCI_COMMAND)
        .context("command register")?;
    ensure(command & PCI_COMMAND_BUS_MASTER != 0, || {
        "Bus Master is clear after reset".to_owned()
    })?;
    edu.interrupt(Duration::ZERO)?;
    edu.write32(edu::IRQ_RAISE, 1)?;
    edu.expect_interrupt(1, "reset and a write to the raise register")
}

type Check = fn(&Bench) -> Outcome;

const CHECKS: [(&str, Check); 8] = [
    ("bar0-region-and-mmap", check_bar0),
    ("config-space", check_config_space),
    ("mmio-64bit", check_mmio64),
    ("dma-both-directions", check_dma),
    ("msi-eventfd", check_msi),
    ("iommu-blocks-unmapped-iova", check_iommu_blocks_unmapped),
    ("shared-container", check_shared_container),
    ("reset", check_reset),
];

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            // vfio-ioctls warns of every IRQ index a conventional PCI device lacks.
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,vfio_ioctls=error".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let arguments = Arguments::parse();
    if arguments.list {
        CHECKS.iter().for_each(|(name, _)| println!("{name}"));
        return ExitCode::SUCCESS;
    }
    let bench = Bench::open(&arguments.edus);
    let mut failed = 0;
    for (name, check) in CHECKS {
        match bench.as_ref().map_err(Clone::clone).and_then(check) {
            Ok(()) => println!("PASS {name}"),
            Err(why) => {
                failed += 1;
                println!("FAIL {name}: {why}");
            }
        }
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_line_names_exactly_the_address() {
        let line = "DMAR: [DMA Write NO_PASID] Request device [00:04.0] fault addr 0x3000 [fault reason 0x05] PTE Write access is not set";
        assert!(names_address(line, "fault addr 0x3000"));
        assert!(!names_address(line, "fault addr 0x300"));
        assert!(!names_address(line, "fault addr 0x4000"));
    }

    #[test]
    fn checks_have_distinct_names() {
        let mut names: Vec<_> = CHECKS.iter().map(|(name, _)| name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), CHECKS.len());
    }
}
