//! Golden model of the npmu network interface.
//!
//! A plain-Rust statement of what the hardware does: the effect of every register read
//! and write, which fault each request raises, and which bytes of persistent memory it
//! reads or writes. It answers at once, so the simulation tests hold the RTL against it
//! transaction by transaction, and host code can use it as a device that needs no
//! simulator. It knows nothing of cycles: a programming command takes effect at the
//! point in the sequence of requests where it was issued, as the hardware guarantees by
//! draining in-flight requests first.

mod host;
mod memory;
mod queues;

pub use host::{HostDma, HostMemory};
pub use memory::{Memory, SparseMemory};
pub use npmu_abi::DmaDirection;

use queues::QueueState;

use npmu_abi::registers::{self as reg, Group, Register};
use npmu_abi::{
    encode_status, Command, CommandError, Config, ConfigError, Fault, Operation, Request,
};

/// One address context as the context table holds it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Context {
    pub valid: bool,
    pub key: u32,
    pub read: bool,
    pub write: bool,
    pub any_initiator: bool,
    pub initiator: u16,
    pub base: u64,
    pub pages: u32,
    pub first_entry: u32,
}

impl Context {
    pub fn allows(&self, operation: Operation) -> bool {
        match operation {
            Operation::Read => self.read,
            Operation::Write => self.write,
        }
    }
}

/// One translation table entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    pub valid: bool,
    pub page: u32,
}

/// A run of physical memory a request touches, within one page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub address: u64,
    pub length: u32,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Staging {
    context_id: u32,
    key: u32,
    access: u64,
    base: u64,
    pages: u32,
    first_entry: u32,
    entry_index: u32,
    entry_value: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct FaultRecord {
    valid: bool,
    fault: u8,
    write: bool,
    context: u16,
    initiator: u16,
    address: u64,
    length: u32,
}

/// Everything the reset input returns to its initial value.
#[derive(Clone, Debug)]
struct State {
    unlocked: bool,
    failed_unlocks: u32,
    refused_writes: u32,
    command_result: u8,
    staging: Staging,
    contexts: Vec<Context>,
    entries: Vec<Entry>,
    request_counts: [u32; Fault::MAX_CODE as usize + 1],
    last_fault: FaultRecord,
    queues: Vec<QueueState>,
}

impl State {
    fn new(config: &Config) -> Self {
        Self {
            unlocked: false,
            failed_unlocks: 0,
            refused_writes: 0,
            command_result: 0,
            staging: Staging::default(),
            contexts: vec![Context::default(); config.contexts as usize],
            entries: vec![Entry::default(); config.translation_entries as usize],
            request_counts: Default::default(),
            last_fault: FaultRecord::default(),
            queues: vec![QueueState::default(); config.queues as usize],
        }
    }
}

/// The network interface: registers, tables and the persistent memory behind them.
#[derive(Clone, Debug)]
pub struct NetworkInterface<M: Memory = SparseMemory> {
    config: Config,
    management_key: u64,
    memory: M,
    state: State,
}

impl<M: Memory> NetworkInterface<M> {
    /// A network interface just out of reset: locked, every context and entry invalid.
    /// `management_key` opens the lock; a zero key never does.
    pub fn new(config: Config, management_key: u64, memory: M) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            state: State::new(&config),
            config,
            management_key,
            memory,
        })
    }

    /// What the reset input does: everything but persistent memory returns to its state
    /// after [`NetworkInterface::new`].
    pub fn reset(&mut self) {
        self.state = State::new(&self.config);
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn memory(&self) -> &M {
        &self.memory
    }

    pub fn memory_mut(&mut self) -> &mut M {
        &mut self.memory
    }

    pub fn context(&self, id: u16) -> Option<&Context> {
        self.state.contexts.get(usize::from(id))
    }

    pub fn entry(&self, index: u32) -> Option<&Entry> {
        self.state.entries.get(index as usize)
    }

    pub fn is_unlocked(&self) -> bool {
        self.state.unlocked
    }

    /// A 64-bit read of BAR0 at byte `offset`.
    pub fn mmio_read(&self, offset: u16) -> u64 {
        if let Some((queue, register)) = reg::queue_at(offset) {
            return self
                .state
                .queues
                .get(usize::from(queue))
                .map_or(0, |state| state.read(register));
        }
        let Some(register) = reg::at(offset) else {
            return 0;
        };
        if register.group == Group::Programming && !self.state.unlocked {
            return 0;
        }
        if let Some(value) = self.config.capability(register) {
            return value;
        }
        let staging = &self.state.staging;
        match register {
            reg::STATUS => reg::status::UNLOCKED.place(self.state.unlocked.into()),
            reg::FAILED_UNLOCKS => self.state.failed_unlocks.into(),
            reg::REFUSED_WRITES => self.state.refused_writes.into(),
            reg::AVT_COMMAND => reg::command_status::RESULT.place(self.state.command_result.into()),
            reg::AVT_CONTEXT_ID => staging.context_id.into(),
            reg::AVT_CONTEXT_KEY => staging.key.into(),
            reg::AVT_CONTEXT_ACCESS => staging.access,
            reg::AVT_CONTEXT_BASE => staging.base,
            reg::AVT_CONTEXT_PAGES => staging.pages.into(),
            reg::AVT_CONTEXT_FIRST_ENTRY => staging.first_entry.into(),
            reg::AVT_ENTRY_INDEX => staging.entry_index.into(),
            reg::AVT_ENTRY_VALUE => staging.entry_value,
            reg::LAST_FAULT => {
                let record = &self.state.last_fault;
                reg::last_fault::VALID.place(record.valid.into())
                    | reg::last_fault::CODE.place(record.fault.into())
                    | reg::last_fault::WRITE.place(record.write.into())
                    | reg::last_fault::CONTEXT.place(record.context.into())
                    | reg::last_fault::INITIATOR.place(record.initiator.into())
            }
            reg::LAST_FAULT_ADDRESS => self.state.last_fault.address,
            reg::LAST_FAULT_LENGTH => self.state.last_fault.length.into(),
            Register { offset, .. } if offset >= reg::REQUEST_COUNTS.offset => {
                let status = (offset - reg::REQUEST_COUNTS.offset) / 8;
                self.state.request_counts[usize::from(status)].into()
            }
            _ => 0,
        }
    }

    /// A 64-bit write of `value` to BAR0 at byte `offset`. Doorbells take effect in
    /// [`NetworkInterface::process_queues`].
    pub fn mmio_write(&mut self, offset: u16, value: u64) {
        if let Some((queue, register)) = reg::queue_at(offset) {
            let Some(state) = self.state.queues.get_mut(usize::from(queue)) else {
                return;
            };
            if reg::queue::WINDOW.contains(&register) && !self.state.unlocked {
                self.state.refused_writes = self.state.refused_writes.wrapping_add(1);
                return;
            }
            state.write(register, value);
            return;
        }
        let Some(register) = reg::at(offset) else {
            return;
        };
        if register.group == Group::Programming && !self.state.unlocked {
            self.state.refused_writes = self.state.refused_writes.wrapping_add(1);
            return;
        }
        let staging = &mut self.state.staging;
        match register {
            reg::MANAGEMENT_UNLOCK => {
                if self.management_key != 0 && value == self.management_key {
                    self.state.unlocked = true;
                } else {
                    self.state.failed_unlocks = self.state.failed_unlocks.wrapping_add(1);
                }
            }
            reg::MANAGEMENT_LOCK => self.state.unlocked = false,
            reg::AVT_COMMAND => {
                let outcome = Command::from_code(value)
                    .ok_or(CommandError::UnknownCommand)
                    .and_then(|command| self.run(command));
                self.state.command_result = outcome.err().map_or(0, CommandError::code);
            }
            reg::AVT_CONTEXT_ID => staging.context_id = value as u32,
            reg::AVT_CONTEXT_KEY => staging.key = value as u32,
            reg::AVT_CONTEXT_ACCESS => staging.access = value,
            reg::AVT_CONTEXT_BASE => staging.base = value,
            reg::AVT_CONTEXT_PAGES => staging.pages = value as u32,
            reg::AVT_CONTEXT_FIRST_ENTRY => staging.first_entry = value as u32,
            reg::AVT_ENTRY_INDEX => staging.entry_index = value as u32,
            reg::AVT_ENTRY_VALUE => staging.entry_value = value,
            reg::LAST_FAULT => self.state.last_fault = FaultRecord::default(),
            _ => {}
        }
    }

    fn run(&mut self, command: Command) -> Result<(), CommandError> {
        match command {
            Command::RegisterContext => self.register_context(),
            Command::InvalidateContext => {
                let id = self.staged_context()?;
                self.state.contexts[id].valid = false;
                Ok(())
            }
            Command::ReadContext => {
                let context = self.state.contexts[self.staged_context()?];
                let access = &reg::context_access::READ;
                self.state.staging.key = context.key;
                self.state.staging.access = access.place(context.read.into())
                    | reg::context_access::WRITE.place(context.write.into())
                    | reg::context_access::ANY_INITIATOR.place(context.any_initiator.into())
                    | reg::context_access::INITIATOR.place(context.initiator.into())
                    | reg::context_access::VALID.place(context.valid.into());
                self.state.staging.base = context.base;
                self.state.staging.pages = context.pages;
                self.state.staging.first_entry = context.first_entry;
                Ok(())
            }
            Command::WriteEntry => {
                let index = self.staged_entry()?;
                let value = self.state.staging.entry_value;
                if value & reg::entry_value::RESERVED != 0 {
                    return Err(CommandError::ReservedBits);
                }
                let entry = Entry {
                    valid: reg::entry_value::VALID.is_set(value),
                    page: reg::entry_value::PAGE.get(value) as u32,
                };
                if entry.valid && u64::from(entry.page) >= self.config.memory_pages {
                    return Err(CommandError::PageOutOfRange);
                }
                self.state.entries[index] = entry;
                self.state.staging.entry_index = self.state.staging.entry_index.wrapping_add(1);
                Ok(())
            }
            Command::ReadEntry => {
                let entry = self.state.entries[self.staged_entry()?];
                self.state.staging.entry_value = reg::entry_value::VALID.place(entry.valid.into())
                    | reg::entry_value::PAGE.place(entry.page.into());
                Ok(())
            }
        }
    }

    fn staged_context(&self) -> Result<usize, CommandError> {
        let id = self.state.staging.context_id;
        if id >= self.config.contexts {
            return Err(CommandError::NoSuchContext);
        }
        Ok(id as usize)
    }

    fn staged_entry(&self) -> Result<usize, CommandError> {
        let index = self.state.staging.entry_index;
        if index >= self.config.translation_entries {
            return Err(CommandError::NoSuchEntry);
        }
        Ok(index as usize)
    }

    fn register_context(&mut self) -> Result<(), CommandError> {
        let id = self.staged_context()?;
        let staging = self.state.staging;
        let entries = self.config.translation_entries;
        if staging.access & reg::context_access::RESERVED != 0 {
            return Err(CommandError::ReservedBits);
        }
        if staging.pages == 0 {
            return Err(CommandError::EmptyContext);
        }
        if staging.base & (self.config.page_bytes() - 1) != 0 {
            return Err(CommandError::UnalignedBase);
        }
        if staging.first_entry >= entries {
            return Err(CommandError::EntriesOutOfRange);
        }
        if staging.pages > entries - staging.first_entry {
            return Err(CommandError::EntriesOutOfRange);
        }
        let length = u64::from(staging.pages) << self.config.page_shift;
        if staging.base > 0u64.wrapping_sub(length) && staging.base != 0 {
            return Err(CommandError::RangeWraps);
        }
        let previous = u64::from(self.state.contexts[id].key);
        let generation = reg::context_key::GENERATION.get(previous).wrapping_add(1);
        let tag = reg::context_key::TAG.get(staging.key.into());
        let key = (reg::context_key::TAG.place(tag)
            | reg::context_key::GENERATION.place(generation)) as u32;
        let access = staging.access;
        self.state.contexts[id] = Context {
            valid: true,
            key,
            read: reg::context_access::READ.is_set(access),
            write: reg::context_access::WRITE.is_set(access),
            any_initiator: reg::context_access::ANY_INITIATOR.is_set(access),
            initiator: reg::context_access::INITIATOR.get(access) as u16,
            base: staging.base,
            pages: staging.pages,
            first_entry: staging.first_entry,
        };
        self.state.staging.key = key;
        Ok(())
    }

    /// The physical runs a request would touch, or the fault it raises; changes nothing.
    pub fn translate(&self, request: &Request) -> Result<Vec<Segment>, Fault> {
        if request.length > self.config.max_request_bytes {
            return Err(Fault::RequestTooLong);
        }
        let context = self
            .state
            .contexts
            .get(usize::from(request.context))
            .ok_or(Fault::NoSuchContext)?;
        if !context.valid {
            return Err(Fault::ContextInvalid);
        }
        if request.key != context.key {
            return Err(Fault::KeyMismatch);
        }
        if !context.any_initiator && request.initiator != context.initiator {
            return Err(Fault::InitiatorNotAllowed);
        }
        if !context.allows(request.operation) {
            return Err(Fault::PermissionDenied);
        }
        let context_bytes = u64::from(context.pages) << self.config.page_shift;
        let length = u64::from(request.length);
        if request.address < context.base {
            return Err(Fault::OutOfBounds);
        }
        if !npmu_abi::range_fits(request.address - context.base, length, context_bytes) {
            return Err(Fault::OutOfBounds);
        }
        let page_bytes = self.config.page_bytes();
        let mut segments = Vec::new();
        let mut offset = request.address - context.base;
        let end = offset + length;
        while offset < end {
            let entry_index = context.first_entry as u64 + (offset >> self.config.page_shift);
            let entry = self.state.entries[entry_index as usize];
            if !entry.valid {
                return Err(Fault::PageNotMapped);
            }
            let in_page = offset % page_bytes;
            let run = (page_bytes - in_page).min(end - offset);
            segments.push(Segment {
                address: (u64::from(entry.page) << self.config.page_shift) + in_page,
                length: run as u32,
            });
            offset += run;
        }
        Ok(segments)
    }

    /// Runs a request: a write stores `write_data` (exactly `request.length` bytes), a read
    /// returns `request.length` bytes. Updates the request counters and the fault record.
    ///
    /// # Panics
    /// If a write's data is not `request.length` bytes long.
    pub fn execute(&mut self, request: &Request, write_data: &[u8]) -> Result<Vec<u8>, Fault> {
        self.run_request(request, write_data, write_data.len())
    }

    /// [`NetworkInterface::execute`], storing only the first `writable` bytes of a write:
    /// what the NI does when the rest of the data never arrived.
    pub(crate) fn run_request(
        &mut self,
        request: &Request,
        write_data: &[u8],
        writable: usize,
    ) -> Result<Vec<u8>, Fault> {
        if request.operation == Operation::Write {
            assert_eq!(
                write_data.len(),
                request.length as usize,
                "a write carries exactly its length in data"
            );
        }
        let outcome = self.translate(request);
        let status = encode_status(outcome.as_ref().map(|_| ()).map_err(|fault| *fault));
        let counter = &mut self.state.request_counts[usize::from(status)];
        *counter = counter.wrapping_add(1);
        let segments = outcome.inspect_err(|fault| {
            self.state.last_fault = FaultRecord {
                valid: true,
                fault: fault.code(),
                write: request.operation == Operation::Write,
                context: request.context,
                initiator: request.initiator,
                address: request.address,
                length: request.length,
            };
        })?;
        let mut data = Vec::new();
        let mut done = 0;
        for segment in segments {
            let run = segment.length as usize;
            match request.operation {
                Operation::Write => {
                    let end = (done + run).min(writable.max(done));
                    self.memory.write(segment.address, &write_data[done..end]);
                }
                Operation::Read => {
                    data.resize(done + run, 0);
                    self.memory.read(segment.address, &mut data[done..]);
                }
            }
            done += run;
        }
        Ok(data)
    }
}

impl<M: Memory> npmu_abi::program::RegisterAccess for NetworkInterface<M> {
    fn read(&mut self, offset: u16) -> u64 {
        self.mmio_read(offset)
    }

    fn write(&mut self, offset: u16, value: u64) {
        self.mmio_write(offset, value)
    }
}
