//! Programming commands written to [`crate::registers::AVT_COMMAND`].
//!
//! A command acts on the staging registers (`AVT_CONTEXT_*`, `AVT_ENTRY_*`). It is
//! checked at once; a valid command then waits until no accepted request is in flight,
//! holds new requests off meanwhile, and runs, so every request sees the tables either
//! wholly before or wholly after it. `command_status::BUSY` is set until it has run.

use thiserror::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Command {
    /// Make the context valid with the staged fields; the generation in its key is bumped
    /// and the full key is loaded into `AVT_CONTEXT_KEY`.
    RegisterContext = 1,
    /// Make the context invalid; its key's generation is kept so the next registration
    /// bumps it again.
    InvalidateContext = 2,
    /// Load the context's fields into the staging registers.
    ReadContext = 3,
    /// Write `AVT_ENTRY_VALUE` into entry `AVT_ENTRY_INDEX`, then advance the index.
    WriteEntry = 4,
    /// Load entry `AVT_ENTRY_INDEX` into `AVT_ENTRY_VALUE`.
    ReadEntry = 5,
}

impl Command {
    pub const ALL: [Command; 5] = [
        Command::RegisterContext,
        Command::InvalidateContext,
        Command::ReadContext,
        Command::WriteEntry,
        Command::ReadEntry,
    ];

    pub const fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u64) -> Option<Command> {
        Command::ALL
            .into_iter()
            .find(|command| u64::from(command.code()) == code)
    }
}

/// Why a command was refused; the code is read from `command_status::RESULT`, 0 for success.
/// A refused command changes nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Error)]
#[repr(u8)]
pub enum CommandError {
    #[error("unknown command code")]
    UnknownCommand = 1,
    #[error("the context id is beyond the context table")]
    NoSuchContext = 2,
    #[error("the entry index is beyond the translation table")]
    NoSuchEntry = 3,
    #[error("the base address is not page aligned")]
    UnalignedBase = 4,
    #[error("a context must span at least one page")]
    EmptyContext = 5,
    #[error("the context's translation entries run past the translation table")]
    EntriesOutOfRange = 6,
    #[error("the context's range runs past the end of the 64-bit address space")]
    RangeWraps = 7,
    #[error("the physical page is beyond persistent memory")]
    PageOutOfRange = 8,
    #[error("reserved bits are set")]
    ReservedBits = 9,
}

impl CommandError {
    pub const ALL: [CommandError; 9] = [
        CommandError::UnknownCommand,
        CommandError::NoSuchContext,
        CommandError::NoSuchEntry,
        CommandError::UnalignedBase,
        CommandError::EmptyContext,
        CommandError::EntriesOutOfRange,
        CommandError::RangeWraps,
        CommandError::PageOutOfRange,
        CommandError::ReservedBits,
    ];

    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The outcome a result code reports; `None` for a code no error has.
    pub fn decode(code: u8) -> Option<Result<(), CommandError>> {
        if code == 0 {
            return Some(Ok(()));
        }
        CommandError::ALL
            .into_iter()
            .find(|error| error.code() == code)
            .map(Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for command in Command::ALL {
            assert_eq!(Command::from_code(command.code().into()), Some(command));
        }
        assert_eq!(Command::from_code(0), None);
        for error in CommandError::ALL {
            assert_eq!(CommandError::decode(error.code()), Some(Err(error)));
        }
        assert_eq!(CommandError::decode(0), Some(Ok(())));
        assert_eq!(CommandError::decode(200), None);
    }
}
