//! The BAR0 register window of the network interface.
//!
//! Every register is 64 bits wide and 8-byte aligned. Reads of offsets that name no
//! register (including unaligned ones) return 0; writes to them have no effect.
//! Registers in [`Group::Programming`] are refused while the management lock is closed:
//! reads return 0, writes are dropped and counted in [`REFUSED_WRITES`]. Each queue's
//! window registers ([`queue::WINDOW`]) take writes only while it is open too, but read
//! back whatever the lock.

use crate::field::Field;

/// How the host may use a register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Reads return the value, writes have no effect.
    ReadOnly,
    /// Reads return what was last written (or loaded by a command).
    ReadWrite,
    /// Writes act, reads return 0.
    WriteOnly,
    /// Reads return the value, any write clears it.
    ReadWriteClears,
    /// Writes start a command, reads return its status.
    Command,
}

/// Which part of the network interface a register belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    Identity,
    Management,
    /// Address validation and translation programming: behind the management lock.
    Programming,
    Faults,
    /// Host queue registers, one block per queue from [`QUEUES_OFFSET`].
    Queues,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Register {
    pub name: &'static str,
    pub offset: u16,
    pub access: Access,
    pub group: Group,
}

const fn register(name: &'static str, offset: u16, access: Access, group: Group) -> Register {
    Register {
        name,
        offset,
        access,
        group,
    }
}

use Access::*;
use Group::*;

/// Magic number, ABI version.
pub const IDENTITY: Register = register("IDENTITY", 0x000, ReadOnly, Identity);
/// Number of address contexts.
pub const CONTEXTS: Register = register("CONTEXTS", 0x008, ReadOnly, Identity);
/// Number of translation table entries.
pub const TRANSLATION_ENTRIES: Register =
    register("TRANSLATION_ENTRIES", 0x010, ReadOnly, Identity);
/// log2 of the page size in bytes.
pub const PAGE_SHIFT: Register = register("PAGE_SHIFT", 0x018, ReadOnly, Identity);
/// Width of the data path in bytes.
pub const DATA_BYTES: Register = register("DATA_BYTES", 0x020, ReadOnly, Identity);
/// Longest request, in bytes.
pub const MAX_REQUEST_BYTES: Register = register("MAX_REQUEST_BYTES", 0x028, ReadOnly, Identity);
/// Number of physical pages of persistent memory behind the memory port.
pub const MEMORY_PAGES: Register = register("MEMORY_PAGES", 0x030, ReadOnly, Identity);
/// [`status`] bits.
pub const STATUS: Register = register("STATUS", 0x038, ReadOnly, Identity);
/// Number of host queue pairs.
pub const QUEUES: Register = register("QUEUES", 0x040, ReadOnly, Identity);
/// Longest DMA write the NI issues, in bytes.
pub const MAX_PAYLOAD_BYTES: Register = register("MAX_PAYLOAD_BYTES", 0x048, ReadOnly, Identity);
/// Longest DMA read the NI issues, in bytes.
pub const MAX_READ_REQUEST_BYTES: Register =
    register("MAX_READ_REQUEST_BYTES", 0x050, ReadOnly, Identity);
/// DMA reads of data the NI keeps in flight at most.
pub const DMA_READ_TAGS: Register = register("DMA_READ_TAGS", 0x058, ReadOnly, Identity);

/// Write the management key here to open the management lock.
pub const MANAGEMENT_UNLOCK: Register = register("MANAGEMENT_UNLOCK", 0x100, WriteOnly, Management);
/// Any write closes the management lock.
pub const MANAGEMENT_LOCK: Register = register("MANAGEMENT_LOCK", 0x108, WriteOnly, Management);
/// Writes to [`MANAGEMENT_UNLOCK`] that did not carry the key (32 bits, wrapping).
pub const FAILED_UNLOCKS: Register = register("FAILED_UNLOCKS", 0x110, ReadOnly, Management);
/// Writes to programming registers refused because the lock was closed (32 bits, wrapping).
pub const REFUSED_WRITES: Register = register("REFUSED_WRITES", 0x118, ReadOnly, Management);

/// Write a [`crate::command::Command`] code; read [`command_status`].
pub const AVT_COMMAND: Register = register("AVT_COMMAND", 0x200, Command, Programming);
/// The context a context command acts on.
pub const AVT_CONTEXT_ID: Register = register("AVT_CONTEXT_ID", 0x208, ReadWrite, Programming);
/// [`context_key`]: the manager writes the tag, the hardware supplies the generation.
pub const AVT_CONTEXT_KEY: Register = register("AVT_CONTEXT_KEY", 0x210, ReadWrite, Programming);
/// [`context_access`]: permissions and the initiator allowed.
pub const AVT_CONTEXT_ACCESS: Register =
    register("AVT_CONTEXT_ACCESS", 0x218, ReadWrite, Programming);
/// Base network virtual address of the context, page aligned.
pub const AVT_CONTEXT_BASE: Register = register("AVT_CONTEXT_BASE", 0x220, ReadWrite, Programming);
/// Length of the context in pages.
pub const AVT_CONTEXT_PAGES: Register =
    register("AVT_CONTEXT_PAGES", 0x228, ReadWrite, Programming);
/// Index of the translation entry that maps the context's first page.
pub const AVT_CONTEXT_FIRST_ENTRY: Register =
    register("AVT_CONTEXT_FIRST_ENTRY", 0x230, ReadWrite, Programming);
/// The translation entry an entry command acts on; advances after each successful write.
pub const AVT_ENTRY_INDEX: Register = register("AVT_ENTRY_INDEX", 0x238, ReadWrite, Programming);
/// [`entry_value`]: the physical page an entry maps.
pub const AVT_ENTRY_VALUE: Register = register("AVT_ENTRY_VALUE", 0x240, ReadWrite, Programming);

/// Completed requests by status: `REQUEST_COUNTS + 8 * status` counts requests that ended
/// with that status, 0 for success and each [`crate::fault::Fault`] code (32 bits, wrapping).
pub const REQUEST_COUNTS: Register = register("REQUEST_COUNTS", 0x300, ReadOnly, Faults);
/// [`last_fault`]: the most recent fault; any write clears it.
pub const LAST_FAULT: Register = register("LAST_FAULT", 0x380, ReadWriteClears, Faults);
/// Virtual address of the most recent fault.
pub const LAST_FAULT_ADDRESS: Register = register("LAST_FAULT_ADDRESS", 0x388, ReadOnly, Faults);
/// Length of the most recent faulting request.
pub const LAST_FAULT_LENGTH: Register = register("LAST_FAULT_LENGTH", 0x390, ReadOnly, Faults);

/// Offset of the request counter for a status code (0 for success).
pub const fn request_count_offset(status: u8) -> u16 {
    REQUEST_COUNTS.offset + 8 * status as u16
}

/// The registers that report the build: its identity and the parameters of its
/// [`crate::Config`] ([`crate::Config::capability`]).
pub const CAPABILITIES: [Register; 11] = [
    IDENTITY,
    CONTEXTS,
    TRANSLATION_ENTRIES,
    PAGE_SHIFT,
    DATA_BYTES,
    MAX_REQUEST_BYTES,
    MEMORY_PAGES,
    QUEUES,
    MAX_PAYLOAD_BYTES,
    MAX_READ_REQUEST_BYTES,
    DMA_READ_TAGS,
];

/// The registers behind the management lock.
pub const PROGRAMMING: [Register; 9] = [
    AVT_COMMAND,
    AVT_CONTEXT_ID,
    AVT_CONTEXT_KEY,
    AVT_CONTEXT_ACCESS,
    AVT_CONTEXT_BASE,
    AVT_CONTEXT_PAGES,
    AVT_CONTEXT_FIRST_ENTRY,
    AVT_ENTRY_INDEX,
    AVT_ENTRY_VALUE,
];

/// Every register, one entry per counter for [`REQUEST_COUNTS`].
pub fn all() -> Vec<Register> {
    let mut registers = CAPABILITIES.to_vec();
    registers.extend([
        STATUS,
        MANAGEMENT_UNLOCK,
        MANAGEMENT_LOCK,
        FAILED_UNLOCKS,
        REFUSED_WRITES,
    ]);
    registers.extend(PROGRAMMING);
    registers.extend((0..=crate::fault::Fault::MAX_CODE).map(|status| {
        register(
            "REQUEST_COUNTS",
            request_count_offset(status),
            ReadOnly,
            Faults,
        )
    }));
    registers.extend([LAST_FAULT, LAST_FAULT_ADDRESS, LAST_FAULT_LENGTH]);
    registers
}

/// The register at `offset` outside the queue blocks, if any.
pub fn at(offset: u16) -> Option<Register> {
    all().into_iter().find(|register| register.offset == offset)
}

/// First queue register block.
pub const QUEUES_OFFSET: u16 = 0x1000;
/// Bytes between one queue's register block and the next.
pub const QUEUE_STRIDE: u16 = 0x100;
/// Most queues the register window has room for.
pub const MAX_QUEUES: u16 = 16;

/// Offset of `register` (one of [`queue`]'s, offsets relative to the block) of `queue`.
pub const fn queue_offset(queue: u16, register: Register) -> u16 {
    QUEUES_OFFSET + queue * QUEUE_STRIDE + register.offset
}

/// The queue and queue register at `offset`, if any; queues beyond the NI's are unmapped.
pub fn queue_at(offset: u16) -> Option<(u16, Register)> {
    let relative = offset.checked_sub(QUEUES_OFFSET)?;
    let queue = relative / QUEUE_STRIDE;
    if queue >= MAX_QUEUES {
        return None;
    }
    let register = queue::ALL
        .into_iter()
        .find(|register| register.offset == relative % QUEUE_STRIDE)?;
    Some((queue, register))
}

/// The registers of one queue's block; offsets are relative to the block.
pub mod queue {
    use super::{register, Access::*, Group::Queues, Register};
    /// IOVA of the submission ring, aligned to a descriptor (32 bytes).
    pub const SQ_BASE: Register = register("SQ_BASE", 0x00, ReadWrite, Queues);
    /// Entries of the submission ring: a power of two, 2 to 4096.
    pub const SQ_ENTRIES: Register = register("SQ_ENTRIES", 0x08, ReadWrite, Queues);
    /// Doorbell: the slot after the last descriptor written.
    pub const SQ_TAIL: Register = register("SQ_TAIL", 0x10, ReadWrite, Queues);
    /// The next slot the NI will fetch; slots before it may be reused.
    pub const SQ_HEAD: Register = register("SQ_HEAD", 0x18, ReadOnly, Queues);
    /// IOVA of the completion ring, aligned to a completion (16 bytes).
    pub const CQ_BASE: Register = register("CQ_BASE", 0x20, ReadWrite, Queues);
    /// Entries of the completion ring: a power of two, 2 to 4096.
    pub const CQ_ENTRIES: Register = register("CQ_ENTRIES", 0x28, ReadWrite, Queues);
    /// Doorbell: the slot after the last completion the host has consumed.
    pub const CQ_HEAD: Register = register("CQ_HEAD", 0x30, ReadWrite, Queues);
    /// The next slot the NI will write.
    pub const CQ_TAIL: Register = register("CQ_TAIL", 0x38, ReadOnly, Queues);
    /// [`super::queue_control`].
    pub const CONTROL: Register = register("QUEUE_CONTROL", 0x40, ReadWrite, Queues);
    /// [`super::queue_status`].
    pub const STATUS: Register = register("QUEUE_STATUS", 0x48, ReadOnly, Queues);
    /// First IOVA of the queue's host-memory window ([`WINDOW`]).
    pub const WINDOW_BASE: Register = register("WINDOW_BASE", 0x50, ReadWrite, Queues);
    /// Bytes of the queue's host-memory window; 0 (the value after reset) is empty.
    pub const WINDOW_BYTES: Register = register("WINDOW_BYTES", 0x58, ReadWrite, Queues);

    pub const ALL: [Register; 12] = [
        SQ_BASE,
        SQ_ENTRIES,
        SQ_TAIL,
        SQ_HEAD,
        CQ_BASE,
        CQ_ENTRIES,
        CQ_HEAD,
        CQ_TAIL,
        CONTROL,
        STATUS,
        WINDOW_BASE,
        WINDOW_BYTES,
    ];

    /// The host-memory window: the IOVAs `[WINDOW_BASE, WINDOW_BASE + WINDOW_BYTES)`, and
    /// every DMA the queue causes lies inside it (as an RDMA NIC checks local buffers
    /// against a protection domain), so queues whose buffers share one IOMMU domain stay
    /// apart. Window bytes past 2^64 name no IOVA; the widest window, `WINDOW_BYTES` =
    /// 2^64 - 1, leaves one IOVA out. After reset every window is empty: a queue moves
    /// nothing until the manager grants it memory.
    ///
    /// * Only the manager sets a window: writes while the management lock is closed are
    ///   dropped and counted in [`super::REFUSED_WRITES`] (and set no queue status bit).
    ///   Reads return the value whatever the lock.
    /// * A window cannot change under a queue: a write while the queue is enabled or busy
    ///   is refused with [`super::queue_status::REFUSED_WRITE`], as ring writes are. So the
    ///   window a queue was enabled with holds until everything it fetched has completed.
    /// * Enabling a queue whose submission or completion ring is not wholly inside its
    ///   window fails with [`super::queue_status::WINDOW_ERROR`]; the queue fetches
    ///   nothing. Its descriptor fetches and completion writes then stay inside.
    /// * A WRITE or READ whose host buffer `[host_address, host_address + length)` is not
    ///   wholly inside the window completes with
    ///   [`crate::queue::DescriptorError::OutsideWindow`], bytes_done 0: it goes to no
    ///   protection check and moves no byte of host or persistent memory. NOP and FLUSH
    ///   name no host buffer and are not checked; a zero-length WRITE or READ is malformed,
    ///   which is checked first.
    pub const WINDOW: [Register; 2] = [WINDOW_BASE, WINDOW_BYTES];

    /// Width of the entries registers and the ring pointers; a wider entries value is
    /// refused.
    pub const POINTER_BITS: usize = 16;

    /// Whether a ring of `entries` entries of `entry_bytes` each at `base` is one the NI
    /// takes: a power of two from 2 to [`crate::queue::MAX_QUEUE_ENTRIES`], aligned to its
    /// entries.
    pub fn ring_valid(base: u64, entries: u64, entry_bytes: u32) -> bool {
        entries.is_power_of_two()
            && (2..=u64::from(crate::queue::MAX_QUEUE_ENTRIES)).contains(&entries)
            && base % u64::from(entry_bytes) == 0
    }
}

/// Fields of a queue's [`queue::CONTROL`].
pub mod queue_control {
    use super::Field;
    /// Turning it on resets the queue: pointers to 0, phase to 1, errors cleared. Turning
    /// it off stops fetching; descriptors already fetched still complete.
    pub const ENABLE: Field = Field::bit(0);
    pub const INTERRUPT_ENABLE: Field = Field::bit(1);
    /// Interrupt once this many completions are pending (0 and 1: at every completion).
    pub const COALESCE_COUNT: Field = Field::new(8, 8);
    /// ... or once the oldest pending completion has waited this many clocks (0: never).
    pub const COALESCE_CLOCKS: Field = Field::new(16, 16);
    /// Every bit the register keeps; the rest read 0.
    pub const WRITABLE: u64 =
        ENABLE.mask() | INTERRUPT_ENABLE.mask() | COALESCE_COUNT.mask() | COALESCE_CLOCKS.mask();
}

/// Bits of a queue's [`queue::STATUS`]. Error bits are sticky until the queue is enabled
/// again; the halting ones (configuration, fetch, completion) stop the queue's fetching.
pub mod queue_status {
    use super::Field;
    /// Enabled and not halted by an error.
    pub const RUNNING: Field = Field::bit(0);
    /// Descriptors fetched whose completion entries have not all landed in host memory.
    pub const BUSY: Field = Field::bit(1);
    /// Base unaligned or entries not a power of two from 2 to 4096 when enabled.
    pub const CONFIG_ERROR: Field = Field::bit(8);
    /// A submission doorbell beyond the ring; it was ignored.
    pub const SQ_DOORBELL_ERROR: Field = Field::bit(9);
    /// A completion doorbell beyond the ring or past the completions written; ignored.
    pub const CQ_DOORBELL_ERROR: Field = Field::bit(10);
    /// Fetching descriptors met a DMA fault.
    pub const FETCH_ERROR: Field = Field::bit(11);
    /// Writing a completion met a DMA fault; that completion is lost.
    pub const COMPLETION_ERROR: Field = Field::bit(12);
    /// A ring or window register written while enabled or busy (or an entries value wider
    /// than 16 bits), a doorbell while disabled, or enabling while busy; it was ignored.
    pub const REFUSED_WRITE: Field = Field::bit(13);
    /// Enabled with a submission or completion ring not wholly inside the queue's
    /// host-memory window ([`super::queue::WINDOW`]).
    pub const WINDOW_ERROR: Field = Field::bit(14);
    /// Every error bit, as one field.
    pub const ERRORS: Field = Field::new(8, 8);
    /// The errors that stop the queue until it is enabled again.
    pub const HALTING: u64 =
        CONFIG_ERROR.mask() | FETCH_ERROR.mask() | COMPLETION_ERROR.mask() | WINDOW_ERROR.mask();
}

/// Fields of [`IDENTITY`].
pub mod identity {
    use super::Field;
    pub const MAGIC: Field = Field::new(0, 32);
    pub const MINOR: Field = Field::new(32, 16);
    pub const MAJOR: Field = Field::new(48, 16);
    /// "NPMU" in memory order.
    pub const MAGIC_VALUE: u64 = 0x554D_504E;
    pub const MAJOR_VALUE: u64 = 0;
    pub const MINOR_VALUE: u64 = 1;
    pub const VALUE: u64 =
        MAGIC.place(MAGIC_VALUE) | MINOR.place(MINOR_VALUE) | MAJOR.place(MAJOR_VALUE);
}

/// Bits of [`STATUS`].
pub mod status {
    use super::Field;
    /// The tables are being cleared after reset; requests and commands wait.
    pub const INITIALIZING: Field = Field::bit(0);
    /// The management lock is open.
    pub const UNLOCKED: Field = Field::bit(1);
    /// A programming command is waiting for in-flight requests or running.
    pub const COMMAND_BUSY: Field = Field::bit(2);
}

/// Fields of [`AVT_COMMAND`] when read.
pub mod command_status {
    use super::Field;
    /// [`crate::command::CommandError`] code of the last command, 0 for success.
    pub const RESULT: Field = Field::new(0, 8);
    /// A command is waiting or running; programming writes are dropped meanwhile.
    pub const BUSY: Field = Field::bit(8);
    /// A programming write arrived while busy and was dropped (cleared by the next command).
    pub const OVERRUN: Field = Field::bit(9);
}

/// Fields of [`AVT_CONTEXT_KEY`].
pub mod context_key {
    use super::Field;
    /// Bumped by the hardware on every registration, so keys of earlier registrations fail.
    pub const GENERATION: Field = Field::new(0, 8);
    /// Chosen by the manager (random, so keys are not guessable).
    pub const TAG: Field = Field::new(8, 24);
    /// Bits that hold the key.
    pub const KEY: Field = Field::new(0, 32);
}

/// Fields of [`AVT_CONTEXT_ACCESS`].
pub mod context_access {
    use super::Field;
    pub const READ: Field = Field::bit(0);
    pub const WRITE: Field = Field::bit(1);
    /// Any initiator may use the context; otherwise only [`INITIATOR`].
    pub const ANY_INITIATOR: Field = Field::bit(2);
    pub const INITIATOR: Field = Field::new(16, 16);
    /// Read back by READ_CONTEXT; ignored by REGISTER_CONTEXT.
    pub const VALID: Field = Field::bit(63);
    /// Bits that must be zero when registering a context.
    pub const RESERVED: u64 =
        !(READ.mask() | WRITE.mask() | ANY_INITIATOR.mask() | INITIATOR.mask() | VALID.mask());
}

/// Fields of [`AVT_ENTRY_VALUE`].
pub mod entry_value {
    use super::Field;
    /// Physical page number in persistent memory.
    pub const PAGE: Field = Field::new(0, 32);
    pub const VALID: Field = Field::bit(63);
    /// Bits that must be zero when writing an entry.
    pub const RESERVED: u64 = !(PAGE.mask() | VALID.mask());
}

/// Fields of [`LAST_FAULT`].
pub mod last_fault {
    use super::Field;
    pub const CODE: Field = Field::new(0, 8);
    pub const WRITE: Field = Field::bit(8);
    pub const CONTEXT: Field = Field::new(16, 16);
    pub const INITIATOR: Field = Field::new(32, 16);
    pub const VALID: Field = Field::bit(63);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn offsets_are_unique_aligned_and_inside_the_window() {
        let registers = all();
        let offsets: HashSet<u16> = registers.iter().map(|r| r.offset).collect();
        assert_eq!(offsets.len(), registers.len());
        for register in registers {
            assert_eq!(register.offset % 8, 0, "{} is unaligned", register.name);
            assert!(u32::from(register.offset) < 1 << crate::MMIO_ADDRESS_BITS);
        }
    }

    #[test]
    fn the_lists_hold_their_groups_whole() {
        let group = |group| all().into_iter().filter(move |r| r.group == group);
        assert!(group(Group::Programming).eq(PROGRAMMING));
        assert!(group(Group::Identity)
            .filter(|r| *r != STATUS)
            .eq(CAPABILITIES));
    }

    #[test]
    fn queue_registers_decode_per_queue() {
        assert_eq!(queue_offset(2, queue::CQ_HEAD), 0x1230);
        assert_eq!(queue_at(0x1230), Some((2, queue::CQ_HEAD)));
        assert_eq!(queue_at(0x1258), Some((2, queue::WINDOW_BYTES)));
        assert_eq!(queue_at(0x1260), None);
        assert_eq!(queue_at(QUEUES_OFFSET + MAX_QUEUES * QUEUE_STRIDE), None);
        assert_eq!(queue_at(0x0fff), None);
    }

    #[test]
    fn identity_reads_npmu_in_memory_order() {
        assert_eq!(&identity::VALUE.to_le_bytes()[..4], b"NPMU");
    }

    #[test]
    fn request_counters_fit_before_the_last_fault_record() {
        assert!(request_count_offset(crate::fault::Fault::MAX_CODE) < LAST_FAULT.offset);
    }
}
