//! Transaction layer packets as the 7-series integrated block's 64-bit AXI4-Stream user
//! interface carries them: the header's first dword in `tdata[31:0]`, each header dword
//! laid out as in the PCIe specification (Fmt and Type in bits 30:24 of the first), and
//! payload bytes in wire order within their dword: the byte at the lowest address in bits
//! 31:24 (Xilinx's PIO example swaps them the same way). The NI's lanes are little-endian,
//! so every payload dword crosses the adapter through [`swap_dword_bytes`].
//!
//! The Rust side here builds and parses whole packets for the tests' model of a root
//! complex; the hardware decodes the same fields bit by bit.

use crate::constants::constant;
use rust_hdl::prelude::*;

/// Fmt (bits 30:29 of the first dword): header of 4 dwords, with payload.
pub const FMT_FOUR_DWORDS: u32 = 0b01;
pub const FMT_WITH_DATA: u32 = 0b10;
/// Type (bits 28:24): memory read or write.
pub const TYPE_MEMORY: u32 = 0x00;
pub const TYPE_MEMORY_LOCKED: u32 = 0x01;
pub const TYPE_COMPLETION: u32 = 0x0a;
/// Completion status (bits 15:13 of the second dword).
pub const STATUS_SUCCESSFUL: u32 = 0b000;
pub const STATUS_UNSUPPORTED: u32 = 0b001;
pub const STATUS_ABORTED: u32 = 0b100;
/// The first dword's poisoned bit (EP).
pub const POISONED_BIT: u32 = 14;

/// Reverses the bytes of each dword of a 64-bit beat: NI lanes to wire order and back.
#[derive(LogicBlock)]
pub struct DwordByteSwap {
    pub lanes: Signal<In, Bits<64>>,
    pub swapped: Signal<Out, Bits<64>>,
    /// Byte 0 and byte 1 of each dword.
    outer_bytes: Constant<Bits<64>>,
    inner_bytes: Constant<Bits<64>>,
}

impl Default for DwordByteSwap {
    fn default() -> Self {
        Self {
            lanes: Default::default(),
            swapped: Default::default(),
            outer_bytes: constant(0x0000_00ff_0000_00ff),
            inner_bytes: constant(0x0000_ff00_0000_ff00),
        }
    }
}

impl Logic for DwordByteSwap {
    #[hdl_gen]
    fn update(&mut self) {
        self.swapped.next = ((self.lanes.val() & self.outer_bytes.val()) << 24)
            | ((self.lanes.val() & self.inner_bytes.val()) << 8)
            | ((self.lanes.val() >> 8) & self.inner_bytes.val())
            | ((self.lanes.val() >> 24) & self.outer_bytes.val());
    }
}

/// What the receiver hands the transmitter to answer a BAR0 read.
#[derive(Copy, Clone, Debug, Default, PartialEq, LogicStruct)]
pub struct CompletionHeader {
    pub requester_id: Bits<16>,
    pub tag: Bits<8>,
    pub traffic_class: Bits<3>,
    pub attributes: Bits<2>,
    pub lower_address: Bits<7>,
    pub byte_count: Bits<12>,
    /// Payload dwords: 1 or 2; none when `unsupported`.
    pub dwords: Bits<2>,
    /// The read asked for the register's upper dword alone.
    pub upper_dword: bool,
    /// Answer with status Unsupported Request, no data.
    pub unsupported: bool,
}

/// A packet as dwords, header first, and the bytes the last dword really carries
/// (`tkeep`), for the tests' model of a root complex.
#[cfg(test)]
pub mod model {
    use super::*;

    /// The first and last dword byte enables of an access of `length` bytes at `address`.
    fn byte_enables(address: u64, length: u64) -> (u32, u32, u32) {
        let offset = (address & 3) as u32;
        let dwords = ((address & 3) + length).div_ceil(4) as u32;
        let end = ((address + length) & 3) as u32;
        let first = (0xf << offset) & 0xf;
        let last = if end == 0 { 0xf } else { (1 << end) - 1 };
        if dwords == 1 {
            (dwords, first & last, 0)
        } else {
            (dwords, first, last)
        }
    }

    pub fn first_dword(fmt: u32, kind: u32, dwords: u32) -> u32 {
        (fmt << 29) | (kind << 24) | (dwords & 0x3ff)
    }

    /// A request's header: 3 dwords below 4 GiB, else 4.
    pub fn request_header(
        write: bool,
        requester_id: u16,
        tag: u8,
        address: u64,
        length: u64,
    ) -> Vec<u32> {
        let (dwords, first, last) = byte_enables(address, length);
        let wide = address >> 32 != 0;
        let fmt = if write { FMT_WITH_DATA } else { 0 } | if wide { FMT_FOUR_DWORDS } else { 0 };
        let mut header = vec![
            first_dword(fmt, TYPE_MEMORY, dwords),
            (u32::from(requester_id) << 16) | (u32::from(tag) << 8) | (last << 4) | first,
        ];
        if wide {
            header.push((address >> 32) as u32);
        }
        header.push(address as u32 & !3);
        header
    }

    /// The payload dwords of `data` written at `address`, bytes in wire order.
    pub fn payload(address: u64, data: &[u8]) -> Vec<u32> {
        let mut bytes = vec![0u8; (address & 3) as usize];
        bytes.extend_from_slice(data);
        bytes.resize(bytes.len().div_ceil(4) * 4, 0);
        bytes
            .chunks(4)
            .map(|chunk| u32::from_be_bytes(chunk.try_into().unwrap()))
            .collect()
    }

    /// Splits a packet of dwords into 64-bit beats: (data, keep, last).
    pub fn beats(dwords: &[u32]) -> Vec<(u64, u64, bool)> {
        let count = dwords.len().div_ceil(2);
        dwords
            .chunks(2)
            .enumerate()
            .map(|(index, pair)| {
                let low = u64::from(pair[0]);
                let (high, keep) = match pair.get(1) {
                    Some(high) => (u64::from(*high), 0xff),
                    None => (0, 0x0f),
                };
                (high << 32 | low, keep, index + 1 == count)
            })
            .collect()
    }

    /// Joins beats back into dwords, checking `tkeep` and `tlast`.
    pub fn dwords(beats: &[(u64, u64, bool)]) -> Vec<u32> {
        let mut dwords = Vec::new();
        for (index, (data, keep, last)) in beats.iter().enumerate() {
            assert_eq!(*last, index + 1 == beats.len(), "tlast on beat {index}");
            dwords.push(*data as u32);
            match keep {
                0xff => dwords.push((data >> 32) as u32),
                0x0f => assert!(*last, "a half beat before the last"),
                _ => panic!("tkeep {keep:#x}"),
            }
        }
        dwords
    }

    /// A completion: with `data` (at `lower_address`), or a status alone.
    #[allow(clippy::too_many_arguments)]
    pub fn completion(
        completer_id: u16,
        requester_id: u16,
        tag: u8,
        status: u32,
        byte_count: u32,
        lower_address: u32,
        payload: &[u32],
        poisoned: bool,
    ) -> Vec<u32> {
        let fmt = if payload.is_empty() { 0 } else { FMT_WITH_DATA };
        let mut first = first_dword(fmt, TYPE_COMPLETION, payload.len() as u32);
        if poisoned {
            first |= 1 << POISONED_BIT;
        }
        let mut packet = vec![
            first,
            (u32::from(completer_id) << 16) | (status << 13) | (byte_count & 0xfff),
            (u32::from(requester_id) << 16) | (u32::from(tag) << 8) | (lower_address & 0x7f),
        ];
        packet.extend_from_slice(payload);
        packet
    }
}
