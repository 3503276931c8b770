//! The register sequences that program the network interface, written once for every
//! device that offers 64-bit register access: the golden model, the simulated RTL and,
//! through the driver, the card.

use crate::queue::HostWindow;
use crate::registers::{self as reg, command_status, context_access, entry_value, status};
use crate::{Command, CommandError};
use thiserror::Error;

/// 64-bit access to the BAR0 register window.
pub trait RegisterAccess {
    fn read(&mut self, offset: u16) -> u64;
    fn write(&mut self, offset: u16, value: u64);
}

/// How often [`run_command`] reads the command status before giving up.
pub const COMMAND_POLL_LIMIT: u32 = 1_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum ProgramError {
    #[error("the management lock is closed: programming registers refuse access")]
    Locked,
    #[error("the management key was refused")]
    WrongKey,
    #[error("command refused: {0}")]
    Command(#[from] CommandError),
    #[error("a programming write arrived while a command was busy and was dropped")]
    Overrun,
    #[error("the command was still busy after {COMMAND_POLL_LIMIT} status reads")]
    Timeout,
    #[error("the command status holds result code {0}, which no error has")]
    UnknownResult(u8),
    #[error("the queue is enabled or busy: its host-memory window cannot change")]
    QueueNotIdle,
}

/// A context as the manager describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContextSettings {
    /// Random bits of the key; the hardware appends the generation.
    pub tag: u32,
    pub read: bool,
    pub write: bool,
    /// The one initiator allowed, or `None` for any.
    pub initiator: Option<u16>,
    /// Page-aligned base network virtual address.
    pub base: u64,
    pub pages: u32,
    pub first_entry: u32,
}

impl ContextSettings {
    fn access(&self) -> u64 {
        context_access::READ.place(self.read.into())
            | context_access::WRITE.place(self.write.into())
            | context_access::ANY_INITIATOR.place(self.initiator.is_none().into())
            | context_access::INITIATOR.place(self.initiator.unwrap_or(0).into())
    }
}

/// A context as the context table holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContextState {
    pub valid: bool,
    pub key: u32,
    pub settings: ContextSettings,
}

/// Opens the management lock.
pub fn unlock(registers: &mut impl RegisterAccess, key: u64) -> Result<(), ProgramError> {
    registers.write(reg::MANAGEMENT_UNLOCK.offset, key);
    if status::UNLOCKED.is_set(registers.read(reg::STATUS.offset)) {
        Ok(())
    } else {
        Err(ProgramError::WrongKey)
    }
}

/// Closes the management lock.
pub fn lock(registers: &mut impl RegisterAccess) {
    registers.write(reg::MANAGEMENT_LOCK.offset, 1);
}

/// Starts `command` and waits until it has run.
pub fn run_command(
    registers: &mut impl RegisterAccess,
    command: Command,
) -> Result<(), ProgramError> {
    registers.write(reg::AVT_COMMAND.offset, command.code().into());
    for _ in 0..COMMAND_POLL_LIMIT {
        let value = registers.read(reg::AVT_COMMAND.offset);
        if command_status::BUSY.is_set(value) {
            continue;
        }
        if !status::UNLOCKED.is_set(registers.read(reg::STATUS.offset)) {
            return Err(ProgramError::Locked);
        }
        if command_status::OVERRUN.is_set(value) {
            return Err(ProgramError::Overrun);
        }
        let code = command_status::RESULT.get(value) as u8;
        return CommandError::decode(code)
            .ok_or(ProgramError::UnknownResult(code))?
            .map_err(ProgramError::Command);
    }
    Err(ProgramError::Timeout)
}

/// Registers context `id` and returns its new key.
pub fn register_context(
    registers: &mut impl RegisterAccess,
    id: u16,
    settings: &ContextSettings,
) -> Result<u32, ProgramError> {
    registers.write(reg::AVT_CONTEXT_ID.offset, id.into());
    registers.write(
        reg::AVT_CONTEXT_KEY.offset,
        reg::context_key::TAG.place(settings.tag.into()),
    );
    registers.write(reg::AVT_CONTEXT_ACCESS.offset, settings.access());
    registers.write(reg::AVT_CONTEXT_BASE.offset, settings.base);
    registers.write(reg::AVT_CONTEXT_PAGES.offset, settings.pages.into());
    registers.write(
        reg::AVT_CONTEXT_FIRST_ENTRY.offset,
        settings.first_entry.into(),
    );
    run_command(registers, Command::RegisterContext)?;
    Ok(reg::context_key::KEY.get(registers.read(reg::AVT_CONTEXT_KEY.offset)) as u32)
}

pub fn invalidate_context(
    registers: &mut impl RegisterAccess,
    id: u16,
) -> Result<(), ProgramError> {
    registers.write(reg::AVT_CONTEXT_ID.offset, id.into());
    run_command(registers, Command::InvalidateContext)
}

pub fn read_context(
    registers: &mut impl RegisterAccess,
    id: u16,
) -> Result<ContextState, ProgramError> {
    registers.write(reg::AVT_CONTEXT_ID.offset, id.into());
    run_command(registers, Command::ReadContext)?;
    let access = registers.read(reg::AVT_CONTEXT_ACCESS.offset);
    let key = registers.read(reg::AVT_CONTEXT_KEY.offset) as u32;
    Ok(ContextState {
        valid: context_access::VALID.is_set(access),
        key,
        settings: ContextSettings {
            tag: reg::context_key::TAG.get(key.into()) as u32,
            read: context_access::READ.is_set(access),
            write: context_access::WRITE.is_set(access),
            initiator: (!context_access::ANY_INITIATOR.is_set(access))
                .then(|| context_access::INITIATOR.get(access) as u16),
            base: registers.read(reg::AVT_CONTEXT_BASE.offset),
            pages: registers.read(reg::AVT_CONTEXT_PAGES.offset) as u32,
            first_entry: registers.read(reg::AVT_CONTEXT_FIRST_ENTRY.offset) as u32,
        },
    })
}

/// Writes consecutive translation entries from `first`: `Some(page)` maps, `None` unmaps.
pub fn write_entries(
    registers: &mut impl RegisterAccess,
    first: u32,
    pages: &[Option<u32>],
) -> Result<(), ProgramError> {
    registers.write(reg::AVT_ENTRY_INDEX.offset, first.into());
    for page in pages {
        let value = match page {
            Some(page) => entry_value::VALID.place(1) | entry_value::PAGE.place((*page).into()),
            None => 0,
        };
        registers.write(reg::AVT_ENTRY_VALUE.offset, value);
        run_command(registers, Command::WriteEntry)?;
    }
    Ok(())
}

/// The page entry `index` maps, if valid.
pub fn read_entry(
    registers: &mut impl RegisterAccess,
    index: u32,
) -> Result<Option<u32>, ProgramError> {
    registers.write(reg::AVT_ENTRY_INDEX.offset, index.into());
    run_command(registers, Command::ReadEntry)?;
    let value = registers.read(reg::AVT_ENTRY_VALUE.offset);
    Ok(entry_value::VALID
        .is_set(value)
        .then(|| entry_value::PAGE.get(value) as u32))
}

/// Grants queue `queue` the host-memory window `window`. The management lock must be open
/// and the queue disabled with nothing in flight.
pub fn set_queue_window(
    registers: &mut impl RegisterAccess,
    queue: u16,
    window: HostWindow,
) -> Result<(), ProgramError> {
    use crate::registers::{queue as q, queue_offset};
    registers.write(queue_offset(queue, q::WINDOW_BASE), window.base);
    registers.write(queue_offset(queue, q::WINDOW_BYTES), window.bytes);
    if queue_window(registers, queue) == window {
        return Ok(());
    }
    if !status::UNLOCKED.is_set(registers.read(reg::STATUS.offset)) {
        return Err(ProgramError::Locked);
    }
    Err(ProgramError::QueueNotIdle)
}

/// The host-memory window of queue `queue`, as its registers read back.
pub fn queue_window(registers: &mut impl RegisterAccess, queue: u16) -> HostWindow {
    use crate::registers::{queue as q, queue_offset};
    HostWindow {
        base: registers.read(queue_offset(queue, q::WINDOW_BASE)),
        bytes: registers.read(queue_offset(queue, q::WINDOW_BYTES)),
    }
}

/// Where a queue pair's rings are and how it interrupts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueSettings {
    pub submission_base: u64,
    pub submission_entries: u32,
    pub completion_base: u64,
    pub completion_entries: u32,
    pub interrupts: bool,
    /// Interrupt once this many completions are pending (0 or 1: each completion).
    pub coalesce_count: u8,
    /// ... or once the oldest has waited this many clocks (0: never).
    pub coalesce_clocks: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum QueueError {
    #[error("the queue refused its configuration (status {0:#x})")]
    Refused(u64),
}

/// Disables queue `queue`, writes its settings and enables it (which resets its pointers).
/// Its rings must lie inside the window granted it ([`set_queue_window`]).
pub fn set_up_queue(
    registers: &mut impl RegisterAccess,
    queue: u16,
    settings: &QueueSettings,
) -> Result<(), QueueError> {
    use crate::registers::{queue as q, queue_control as control, queue_offset, queue_status};
    registers.write(queue_offset(queue, q::CONTROL), 0);
    registers.write(queue_offset(queue, q::SQ_BASE), settings.submission_base);
    registers.write(
        queue_offset(queue, q::SQ_ENTRIES),
        settings.submission_entries.into(),
    );
    registers.write(queue_offset(queue, q::CQ_BASE), settings.completion_base);
    registers.write(
        queue_offset(queue, q::CQ_ENTRIES),
        settings.completion_entries.into(),
    );
    let value = control::ENABLE.place(1)
        | control::INTERRUPT_ENABLE.place(settings.interrupts.into())
        | control::COALESCE_COUNT.place(settings.coalesce_count.into())
        | control::COALESCE_CLOCKS.place(settings.coalesce_clocks.into());
    registers.write(queue_offset(queue, q::CONTROL), value);
    let status = registers.read(queue_offset(queue, q::STATUS));
    if queue_status::RUNNING.is_set(status) {
        Ok(())
    } else {
        Err(QueueError::Refused(status))
    }
}
