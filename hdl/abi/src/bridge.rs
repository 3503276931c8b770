//! The serial bridge's protocol: how a host drives a board's protection core over a byte
//! link (a USB UART), one command at a time.
//!
//! Every command is an opcode byte and fixed-length little-endian fields; the board answers
//! each one. A network write's header is followed by its data beats, each an enable byte
//! (bit n: store lane n) and the data path's bytes, as many as [`Request::beats`] counts.
//! A command the board does not know is answered [`REFUSED`] and the opcode. A command
//! that stops arriving for [`IDLE_CLOCKS`] clocks is dropped (a write's missing beats
//! store nothing), so a host that lost its place waits that long and starts again.
//!
//! [`Request::beats`]: crate::Request::beats

/// Read a register: address (2 bytes). Answer: [`REGISTER_VALUE`], value (8 bytes).
pub const READ_REGISTER: u8 = b'R';
/// Write a register: address (2 bytes), value (8 bytes). Answer: [`REGISTER_WRITTEN`].
pub const WRITE_REGISTER: u8 = b'W';
/// A network request, as a remote initiator sends it: flags (1 byte, bit 0 write),
/// context (2), key (4), initiator (2), network virtual address (8), length (4); for a
/// write, its beats follow. Answer: one [`RESPONSE_BEAT`] per response beat.
pub const NETWORK_REQUEST: u8 = b'N';
/// Reset the core (tables cleared, lock closed; memory keeps its contents). Answer:
/// [`RESET_DONE`].
pub const RESET: u8 = b'X';

pub const REGISTER_VALUE: u8 = b'r';
pub const REGISTER_WRITTEN: u8 = b'w';
/// A response beat: status in bits 0-3 and `last` in bit 7 of the next byte, then the data
/// path's bytes.
pub const RESPONSE_BEAT: u8 = b'n';
pub const RESET_DONE: u8 = b'x';
/// The command's opcode was not known; the opcode follows.
pub const REFUSED: u8 = b'?';

/// Bytes after the opcode of each command.
pub const READ_REGISTER_BYTES: usize = 2;
pub const WRITE_REGISTER_BYTES: usize = 10;
pub const NETWORK_REQUEST_BYTES: usize = 21;

/// The bit of a response beat's status byte that marks the last beat.
pub const LAST_BEAT: u8 = 0x80;
/// Clocks without a byte after which a partly received command is dropped.
pub const IDLE_CLOCKS: u32 = 1 << 16;
/// Clocks the core's reset is held for by [`RESET`].
pub const RESET_CLOCKS: u32 = 16;
/// Clock cycles per bit on the line of the simulated boards and the iCEBreaker (3 Mbaud at
/// 24 MHz); the bridge samples each bit in its middle.
pub const CLOCKS_PER_BIT: u32 = 8;
