//! Host queues: the submission descriptors and completion entries the NI exchanges with
//! the host through rings in host memory, as the bytes in memory and as the bit positions
//! the hardware decodes (taken from the same structs, so they cannot disagree).

use crate::Fault;
use core::mem::{offset_of, size_of};
use thiserror::Error;
use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// What a descriptor asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Opcode {
    /// Completes at once, in order.
    Nop = 0,
    /// Host memory at `host_address` into persistent memory at the network address; with
    /// [`descriptor_flags::INLINE`], the bytes in the submission slots after the descriptor.
    Write = 1,
    /// Persistent memory at the network address into host memory at `host_address`.
    Read = 2,
    /// Completes once every earlier descriptor of its queue has completed; every earlier
    /// write's data is then durable in persistent memory.
    Flush = 3,
}

impl Opcode {
    pub const ALL: [Opcode; 4] = [Opcode::Nop, Opcode::Write, Opcode::Read, Opcode::Flush];

    pub fn from_code(code: u8) -> Option<Opcode> {
        Opcode::ALL.into_iter().find(|opcode| *opcode as u8 == code)
    }
}

/// A submission queue entry, 32 bytes, little endian. The initiator the AVT checks is the
/// number of the queue the descriptor came from.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct Descriptor {
    pub opcode: u8,
    /// [`descriptor_flags`]; every other bit is reserved and must be zero.
    pub flags: u8,
    pub context: U16,
    pub key: U32,
    /// Network virtual address in the context.
    pub address: U64,
    /// IOVA of the host buffer; zero for an inline WRITE, which has none.
    pub host_address: U64,
    pub length: U32,
    /// Returned in the completion.
    pub tag: U32,
}

/// A completion queue entry, 16 bytes, little endian. The NI writes each entry in one DMA
/// write; the host owns it once its phase bit differs from the previous pass's.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct Completion {
    pub tag: U32,
    /// [`encode_completion_status`].
    pub status: u8,
    pub reserved: u8,
    /// The submission queue slot after this descriptor's: the host may reuse slots up to it.
    pub submission_head: U16,
    /// Bytes moved: the length on success, the bytes before the first failure otherwise.
    pub bytes_done: U32,
    pub queue: U16,
    pub reserved_2: u8,
    /// Bit 0: the phase, 1 on the first pass through the ring, flipped on every wrap.
    pub phase: u8,
}

const _: () = assert!(size_of::<Descriptor>() == DESCRIPTOR_BYTES as usize);
const _: () = assert!(size_of::<Completion>() == COMPLETION_BYTES as usize);
const _: () = assert!(offset_of!(Descriptor, tag) == 28);
const _: () = assert!(offset_of!(Completion, phase) == 15);

pub const DESCRIPTOR_BYTES: u32 = 32;
pub const COMPLETION_BYTES: u32 = 16;
/// A descriptor and a completion as the hardware holds them, one word each.
pub const DESCRIPTOR_BITS: usize = 8 * DESCRIPTOR_BYTES as usize;
pub const COMPLETION_BITS: usize = 8 * COMPLETION_BYTES as usize;
/// Largest submission or completion ring, in entries.
pub const MAX_QUEUE_ENTRIES: u32 = 4096;
/// Longest payload an inline WRITE carries in the submission ring.
pub const INLINE_MAX_BYTES: u32 = 64;
/// Submission slots the longest inline payload occupies after its descriptor.
pub const INLINE_MAX_PAYLOAD_SLOTS: u32 = INLINE_MAX_BYTES / DESCRIPTOR_BYTES;
const _: () = assert!(INLINE_MAX_BYTES % DESCRIPTOR_BYTES == 0);
/// Submission slots a host keeps empty besides the one that tells a full ring from an empty
/// one. A completion's submission head points past its descriptor's payload even when the
/// payload ran past the descriptor's fetch and its last slots are fetched (and passed over)
/// only with the queue's next batch; a host filling the ring to within those slots would
/// lap the NI's head.
pub const SUBMISSION_SLACK_SLOTS: u32 = INLINE_MAX_PAYLOAD_SLOTS;

/// The bits of a descriptor's `flags`.
pub mod descriptor_flags {
    /// A WRITE whose payload (1 to [`super::INLINE_MAX_BYTES`] bytes) fills the next
    /// `ceil(length / 32)` submission slots instead of a host buffer, so it arrives with the
    /// descriptor's own fetch: one host round trip instead of two. The payload must not
    /// wrap the ring's end, and must be published with the descriptor (the submission tail
    /// past it). Its slots belong to the descriptor whatever its status: the NI never reads
    /// them as descriptors, and the completion's submission head points past them.
    pub const INLINE: u8 = 1;
    /// The flag bits any descriptor may set.
    pub const DEFINED: u8 = INLINE;
}

/// Bit position of a field in a descriptor or completion seen as one little-endian word.
pub const fn bit(byte_offset: usize) -> usize {
    byte_offset * 8
}

/// Bit positions of the descriptor's fields, for the hardware.
pub mod descriptor_bits {
    use super::{bit, offset_of, Descriptor};
    pub const OPCODE: usize = bit(offset_of!(Descriptor, opcode));
    pub const FLAGS: usize = bit(offset_of!(Descriptor, flags));
    pub const CONTEXT: usize = bit(offset_of!(Descriptor, context));
    pub const KEY: usize = bit(offset_of!(Descriptor, key));
    pub const ADDRESS: usize = bit(offset_of!(Descriptor, address));
    pub const HOST_ADDRESS: usize = bit(offset_of!(Descriptor, host_address));
    pub const LENGTH: usize = bit(offset_of!(Descriptor, length));
    pub const TAG: usize = bit(offset_of!(Descriptor, tag));
}

/// Bit positions of the completion's fields, for the hardware.
pub mod completion_bits {
    use super::{bit, offset_of, Completion};
    pub const TAG: usize = bit(offset_of!(Completion, tag));
    pub const STATUS: usize = bit(offset_of!(Completion, status));
    pub const SUBMISSION_HEAD: usize = bit(offset_of!(Completion, submission_head));
    pub const BYTES_DONE: usize = bit(offset_of!(Completion, bytes_done));
    pub const QUEUE: usize = bit(offset_of!(Completion, queue));
    pub const PHASE: usize = bit(offset_of!(Completion, phase));
}

/// A queue's host-memory window, `[base, base + bytes)`
/// ([`crate::registers::queue::WINDOW`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HostWindow {
    pub base: u64,
    pub bytes: u64,
}

impl HostWindow {
    /// The window after reset: it holds nothing.
    pub const EMPTY: HostWindow = HostWindow { base: 0, bytes: 0 };
    /// The widest window the registers can hold: every IOVA but 2^64 - 1.
    pub const WIDEST: HostWindow = HostWindow {
        base: 0,
        bytes: u64::MAX,
    };

    /// Whether `[address, address + length)` lies wholly inside the window, without
    /// computing an end that can wrap: one condition a line.
    pub fn holds(&self, address: u64, length: u64) -> bool {
        if address < self.base {
            return false;
        }
        crate::range_fits(address - self.base, length, self.bytes)
    }
}

/// Why a descriptor failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Error)]
pub enum DescriptorError {
    #[error("{0}")]
    Avt(Fault),
    #[error("DMA fault: the host side refused an access to host memory")]
    Dma,
    #[error(
        "malformed descriptor: unknown opcode, reserved bits set, zero length, too long, or a host buffer wrapping past 2^64"
    )]
    Malformed,
    /// Checked after [`DescriptorError::Malformed`]; the descriptor moved nothing.
    #[error("the host buffer is not wholly inside the queue's host-memory window")]
    OutsideWindow,
    /// An inline WRITE longer than [`INLINE_MAX_BYTES`]; it occupies its slot alone.
    #[error("inline write longer than {INLINE_MAX_BYTES} bytes")]
    InlineTooLong,
    /// An inline WRITE whose payload would run past the submission ring's last slot: a
    /// payload never wraps to the ring's start.
    #[error("inline payload would wrap past the submission ring's end")]
    InlineWrapsRing,
    /// An inline WRITE whose payload slots were not all published (below the submission
    /// tail) when the NI fetched the descriptor.
    #[error("inline payload past the submission tail the host published")]
    InlinePastTail,
}

impl DescriptorError {
    pub const DMA_CODE: u8 = 16;
    pub const MALFORMED_CODE: u8 = 17;
    /// Like [`Self::DMA_CODE`] and [`Self::MALFORMED_CODE`], counted in no
    /// [`crate::registers::REQUEST_COUNTS`] counter: those count the protection core's
    /// answers, and such a descriptor never reaches the core.
    pub const OUTSIDE_WINDOW_CODE: u8 = 18;
    /// Like [`Self::OUTSIDE_WINDOW_CODE`], counted in no counter; checked in this order,
    /// after [`Self::MALFORMED_CODE`].
    pub const INLINE_TOO_LONG_CODE: u8 = 19;
    pub const INLINE_WRAPS_RING_CODE: u8 = 20;
    pub const INLINE_PAST_TAIL_CODE: u8 = 21;

    /// Every error but the AVT's faults.
    pub const ENGINE_ERRORS: [DescriptorError; 6] = [
        DescriptorError::Dma,
        DescriptorError::Malformed,
        DescriptorError::OutsideWindow,
        DescriptorError::InlineTooLong,
        DescriptorError::InlineWrapsRing,
        DescriptorError::InlinePastTail,
    ];

    pub fn code(self) -> u8 {
        match self {
            DescriptorError::Avt(fault) => fault.code(),
            DescriptorError::Dma => Self::DMA_CODE,
            DescriptorError::Malformed => Self::MALFORMED_CODE,
            DescriptorError::OutsideWindow => Self::OUTSIDE_WINDOW_CODE,
            DescriptorError::InlineTooLong => Self::INLINE_TOO_LONG_CODE,
            DescriptorError::InlineWrapsRing => Self::INLINE_WRAPS_RING_CODE,
            DescriptorError::InlinePastTail => Self::INLINE_PAST_TAIL_CODE,
        }
    }
}

/// The status byte of a completion: 0 for success, else the error's code.
pub fn encode_completion_status(status: Result<(), DescriptorError>) -> u8 {
    status.err().map_or(0, DescriptorError::code)
}

/// The outcome a completion's status byte reports; `None` for a code no outcome has.
pub fn decode_completion_status(code: u8) -> Option<Result<(), DescriptorError>> {
    match code {
        0 => Some(Ok(())),
        code => DescriptorError::ENGINE_ERRORS
            .into_iter()
            .find(|error| error.code() == code)
            .or_else(|| Fault::from_code(code).ok().map(DescriptorError::Avt))
            .map(Err),
    }
}

/// Submission slots an inline payload of `length` bytes fills.
pub const fn inline_payload_slots(length: u32) -> u32 {
    length.div_ceil(DESCRIPTOR_BYTES)
}

impl Descriptor {
    /// A WRITE of `length` bytes whose payload follows it in the submission ring.
    pub fn inline_write(context: u16, key: u32, address: u64, length: u32, tag: u32) -> Self {
        Descriptor {
            opcode: Opcode::Write as u8,
            flags: descriptor_flags::INLINE,
            context: context.into(),
            key: key.into(),
            address: address.into(),
            length: length.into(),
            tag: tag.into(),
            ..Descriptor::default()
        }
    }

    /// Whether the INLINE flag is set (on any opcode).
    pub fn is_inline(&self) -> bool {
        self.flags & descriptor_flags::INLINE != 0
    }

    /// Submission slots after this descriptor that belong to it: an inline WRITE's payload,
    /// when its length is 1 to [`INLINE_MAX_BYTES`]; 0 for every other descriptor,
    /// malformed ones with an inline shape included.
    pub fn payload_slots(&self) -> u32 {
        let length = self.length.get();
        let inline_write = self.is_inline() && self.opcode == Opcode::Write as u8;
        if inline_write && length != 0 && length <= INLINE_MAX_BYTES {
            inline_payload_slots(length)
        } else {
            0
        }
    }

    /// Submission slots the descriptor occupies: itself and its payload.
    pub fn slots(&self) -> u32 {
        1 + self.payload_slots()
    }

    /// The host buffer a WRITE or READ names, as (IOVA, bytes); `None` for NOP and FLUSH,
    /// unknown opcodes and inline WRITEs.
    pub fn host_buffer(&self) -> Option<(u64, u64)> {
        match Opcode::from_code(self.opcode)? {
            Opcode::Write if self.is_inline() => None,
            Opcode::Write | Opcode::Read => {
                Some((self.host_address.get(), u64::from(self.length.get())))
            }
            Opcode::Nop | Opcode::Flush => None,
        }
    }

    /// Whether this descriptor is malformed for an NI whose longest request is
    /// `max_request_bytes`. An inline WRITE too long to be one is not malformed but
    /// [`DescriptorError::InlineTooLong`].
    pub fn malformed(&self, max_request_bytes: u32) -> bool {
        let length = self.length.get();
        match Opcode::from_code(self.opcode) {
            None => true,
            Some(_) if self.flags & !descriptor_flags::DEFINED != 0 => true,
            Some(Opcode::Write) if self.is_inline() => {
                length == 0 || length > max_request_bytes || self.host_address.get() != 0
            }
            Some(_) if self.is_inline() => true,
            // Overflow safe: the host buffer's last byte, not its end, must fit below 2^64.
            Some(Opcode::Write | Opcode::Read) => {
                length == 0
                    || length > max_request_bytes
                    || self.host_address.get() > u64::MAX - u64::from(length - 1)
            }
            Some(Opcode::Nop | Opcode::Flush) => {
                self.context.get() != 0
                    || self.key.get() != 0
                    || self.address.get() != 0
                    || self.host_address.get() != 0
                    || length != 0
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip() {
        for fault in Fault::ALL {
            let error = DescriptorError::Avt(fault);
            assert_eq!(decode_completion_status(error.code()), Some(Err(error)));
        }
        for error in DescriptorError::ENGINE_ERRORS {
            assert_eq!(decode_completion_status(error.code()), Some(Err(error)));
            assert!(Fault::from_code(error.code()).is_err(), "{error:?}");
        }
        assert_eq!(decode_completion_status(0), Some(Ok(())));
        assert_eq!(decode_completion_status(12), None);
    }

    #[test]
    fn windows_hold_what_lies_inside_and_nothing_across_either_edge() {
        let window = HostWindow {
            base: 0x1000,
            bytes: 0x100,
        };
        assert!(window.holds(0x1000, 0x100));
        assert!(window.holds(0x10ff, 1));
        assert!(!window.holds(0xfff, 2), "straddles the lower edge");
        assert!(!window.holds(0x10ff, 2), "straddles the upper edge");
        assert!(!window.holds(0x1100, 1));
        assert!(!HostWindow::EMPTY.holds(0, 1));
        let top = HostWindow {
            base: u64::MAX - 0xff,
            bytes: 0x100,
        };
        assert!(top.holds(u64::MAX, 1), "a window may end at 2^64 - 1");
        assert!(top.holds(u64::MAX - 0xff, 0x100));
        assert!(!top.holds(u64::MAX, 2), "nothing wraps past 2^64");
        assert!(!HostWindow::WIDEST.holds(u64::MAX, 1));
        assert!(HostWindow::WIDEST.holds(0, u64::MAX));
    }

    #[test]
    fn field_positions_follow_the_structs() {
        assert_eq!(descriptor_bits::LENGTH, 192);
        assert_eq!(descriptor_bits::TAG, 224);
        assert_eq!(completion_bits::PHASE, 120);
        let mut descriptor = Descriptor::default();
        descriptor.key.set(0xaabb_ccdd);
        let word = u64::from_le_bytes(descriptor.as_bytes()[..8].try_into().unwrap());
        assert_eq!(word >> descriptor_bits::KEY, 0xaabb_ccdd);
    }

    #[test]
    fn malformed_descriptors() {
        let write = Descriptor {
            opcode: Opcode::Write as u8,
            length: 8.into(),
            ..Descriptor::default()
        };
        assert!(!write.malformed(64));
        assert!(Descriptor {
            length: 0.into(),
            ..write
        }
        .malformed(64));
        assert!(Descriptor {
            length: 65.into(),
            ..write
        }
        .malformed(64));
        assert!(Descriptor { flags: 2, ..write }.malformed(64));
        let last_bytes = Descriptor {
            host_address: (u64::MAX - 7).into(),
            ..write
        };
        assert!(!last_bytes.malformed(64), "ends at 2^64 exactly");
        assert!(Descriptor {
            host_address: (u64::MAX - 6).into(),
            ..write
        }
        .malformed(64));
        assert!(Descriptor { opcode: 9, ..write }.malformed(64));
        let nop = Descriptor::default();
        assert!(!nop.malformed(64));
        assert!(Descriptor {
            key: 1.into(),
            ..nop
        }
        .malformed(64));
    }

    #[test]
    fn inline_writes_own_their_payload_slots_and_follow_their_own_rules() {
        let inline = Descriptor::inline_write(1, 2, 0x40, 33, 9);
        assert_eq!((inline.payload_slots(), inline.slots()), (2, 3));
        assert_eq!(inline.host_buffer(), None);
        assert!(!inline.malformed(1 << 20));
        let longest = Descriptor {
            length: INLINE_MAX_BYTES.into(),
            ..inline
        };
        assert_eq!(longest.payload_slots(), INLINE_MAX_PAYLOAD_SLOTS);
        let too_long = Descriptor {
            length: (INLINE_MAX_BYTES + 1).into(),
            ..inline
        };
        assert_eq!(too_long.slots(), 1, "a too-long payload claims no slots");
        assert!(
            !too_long.malformed(1 << 20),
            "refused as too long, not malformed"
        );
        assert!(Descriptor {
            host_address: 8.into(),
            ..inline
        }
        .malformed(1 << 20));
        assert!(Descriptor {
            length: 0.into(),
            ..inline
        }
        .malformed(1 << 20));
        let reserved = Descriptor {
            flags: descriptor_flags::INLINE | 2,
            ..inline
        };
        assert!(reserved.malformed(1 << 20));
        assert_eq!(reserved.slots(), 3, "its payload is still its own");
        let inline_read = Descriptor {
            opcode: Opcode::Read as u8,
            ..inline
        };
        assert!(inline_read.malformed(1 << 20));
        assert_eq!(inline_read.slots(), 1);
    }
}
