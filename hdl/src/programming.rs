//! The programming engine: runs the AVT commands the CSR bank starts, and clears both
//! tables after reset.
//!
//! A command is checked first: each check on its own into a register, ranked the clock
//! after in the order the golden model states (the checks' wide arithmetic would otherwise
//! run on into the ranking and the CSR bank); a refused command changes nothing. An accepted
//! one waits until no accepted request is in flight (the AVT takes no new requests
//! meanwhile), then reads the table entry it needs, then writes or loads the staging
//! registers. After reset the engine walks both tables writing invalid entries, one index
//! a clock, before it takes commands or lets requests in.

use crate::avt::{ContextEntry, TranslationEntry};
use crate::constants::shift;
use npmu_abi::registers::{context_access, context_key, entry_value};
use npmu_abi::{
    Command, CommandError, Config, ENTRY_INDEX_BITS, INITIATOR_BITS, KEY_BITS, PAGE_NUMBER_BITS,
};
use rust_hdl::prelude::*;

/// What each check of the pending command found, one flag a check.
#[derive(Copy, Clone, Debug, Default, PartialEq, LogicStruct)]
pub struct Findings {
    pub context_missing: bool,
    pub entry_missing: bool,
    pub access_reserved_set: bool,
    pub no_pages: bool,
    pub base_unaligned: bool,
    pub first_entry_past_table: bool,
    pub pages_past_table: bool,
    pub range_wraps: bool,
    pub entry_reserved_set: bool,
    pub page_past_memory: bool,
}

#[derive(Copy, Clone, Debug, PartialEq, LogicState)]
pub enum EngineState {
    Initializing,
    Idle,
    Checking,
    Deciding,
    Draining,
    Applying,
}

#[derive(Copy, Clone, Debug, PartialEq, LogicState)]
pub enum EngineCommand {
    Unknown,
    RegisterContext,
    InvalidateContext,
    ReadContext,
    WriteEntry,
    ReadEntry,
}

#[derive(LogicBlock)]
pub struct ProgrammingEngine<const CONTEXT_TABLE_BITS: usize, const ENTRY_TABLE_BITS: usize> {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, bool>,

    pub start: Signal<In, bool>,
    pub command: Signal<In, Bits<64>>,
    pub context_id: Signal<In, Bits<32>>,
    pub key: Signal<In, Bits<KEY_BITS>>,
    pub access: Signal<In, Bits<64>>,
    pub base: Signal<In, Bits<64>>,
    pub pages: Signal<In, Bits<32>>,
    pub first_entry: Signal<In, Bits<32>>,
    pub entry_index: Signal<In, Bits<32>>,
    pub entry_value: Signal<In, Bits<64>>,
    /// No accepted request is in flight.
    pub drained: Signal<In, bool>,

    pub busy: Signal<Out, bool>,
    pub initializing: Signal<Out, bool>,
    /// The command finished this clock with `result`.
    pub done: Signal<Out, bool>,
    pub result: Signal<Out, Bits<8>>,
    pub load_key: Signal<Out, bool>,
    pub load_context: Signal<Out, bool>,
    pub loaded_key: Signal<Out, Bits<32>>,
    pub loaded_access: Signal<Out, Bits<64>>,
    pub loaded_base: Signal<Out, Bits<64>>,
    pub loaded_pages: Signal<Out, Bits<32>>,
    pub loaded_first_entry: Signal<Out, Bits<32>>,
    pub load_entry: Signal<Out, bool>,
    pub loaded_entry_value: Signal<Out, Bits<64>>,
    pub advance_entry_index: Signal<Out, bool>,

    pub context_write_enable: Signal<Out, bool>,
    pub context_write_index: Signal<Out, Bits<CONTEXT_TABLE_BITS>>,
    pub context_write_data: Signal<Out, ContextEntry>,
    pub context_read_enable: Signal<Out, bool>,
    pub context_read_index: Signal<Out, Bits<CONTEXT_TABLE_BITS>>,
    pub context_read_data: Signal<In, ContextEntry>,
    pub entry_write_enable: Signal<Out, bool>,
    pub entry_write_index: Signal<Out, Bits<ENTRY_TABLE_BITS>>,
    pub entry_write_data: Signal<Out, TranslationEntry>,
    pub entry_read_enable: Signal<Out, bool>,
    pub entry_read_index: Signal<Out, Bits<ENTRY_TABLE_BITS>>,
    pub entry_read_data: Signal<In, TranslationEntry>,

    state: DFF<EngineState>,
    pending: DFF<EngineCommand>,
    walk_index: DFF<Bits<32>>,

    context_length: Signal<Local, Bits<64>>,
    found: Signal<Local, Findings>,
    findings: DFF<Findings>,
    check_result: Signal<Local, Bits<8>>,
    base_page: Signal<Local, Bits<64>>,
    // Worked out from the staged fields while the command is checked; they are stable
    // until it is done.
    context_end: DFF<Bits<65>>,
    entry_bias: DFF<Bits<ENTRY_INDEX_BITS>>,
    new_generation: Signal<Local, Bits<32>>,

    register_code: Constant<Bits<64>>,
    invalidate_code: Constant<Bits<64>>,
    read_context_code: Constant<Bits<64>>,
    write_entry_code: Constant<Bits<64>>,
    read_entry_code: Constant<Bits<64>>,
    ok: Constant<Bits<8>>,
    unknown_command: Constant<Bits<8>>,
    no_such_context: Constant<Bits<8>>,
    no_such_entry: Constant<Bits<8>>,
    unaligned_base: Constant<Bits<8>>,
    empty_context: Constant<Bits<8>>,
    entries_out_of_range: Constant<Bits<8>>,
    range_wraps: Constant<Bits<8>>,
    page_out_of_range: Constant<Bits<8>>,
    reserved_bits: Constant<Bits<8>>,
    contexts: Constant<Bits<32>>,
    entries: Constant<Bits<32>>,
    last_walk_index: Constant<Bits<32>>,
    page_shift: Constant<Bits<8>>,
    page_offset_mask: Constant<Bits<64>>,
    memory_pages: Constant<Bits<64>>,
    access_reserved: Constant<Bits<64>>,
    entry_reserved: Constant<Bits<64>>,
    // 32 bits wide: Verilator wants no narrower select indices, and shifts take any width.
    access_valid_shift: Constant<Bits<32>>,
    access_read_shift: Constant<Bits<32>>,
    access_write_shift: Constant<Bits<32>>,
    access_any_initiator_shift: Constant<Bits<32>>,
    access_initiator_shift: Constant<Bits<32>>,
    entry_valid_shift: Constant<Bits<32>>,
    entry_page_shift: Constant<Bits<32>>,
    generation_mask: Constant<Bits<32>>,
    tag_mask: Constant<Bits<32>>,
    zero_32: Constant<Bits<32>>,
    one_32: Constant<Bits<32>>,
    zero_64: Constant<Bits<64>>,
    invalid_context: Constant<ContextEntry>,
    invalid_entry: Constant<TranslationEntry>,
}

fn code(error: CommandError) -> Constant<Bits<8>> {
    Constant::new(u64::from(error.code()).into())
}

fn command_code(command: Command) -> Constant<Bits<64>> {
    Constant::new(u64::from(command.code()).into())
}

impl<const CONTEXT_TABLE_BITS: usize, const ENTRY_TABLE_BITS: usize>
    ProgrammingEngine<CONTEXT_TABLE_BITS, ENTRY_TABLE_BITS>
{
    pub fn new(config: &Config) -> Self {
        assert_eq!(config.contexts, 1 << CONTEXT_TABLE_BITS);
        assert_eq!(config.translation_entries, 1 << ENTRY_TABLE_BITS);
        let walk = config.contexts.max(config.translation_entries) - 1;
        Self {
            clock: Default::default(),
            reset: Default::default(),
            start: Default::default(),
            command: Default::default(),
            context_id: Default::default(),
            key: Default::default(),
            access: Default::default(),
            base: Default::default(),
            pages: Default::default(),
            first_entry: Default::default(),
            entry_index: Default::default(),
            entry_value: Default::default(),
            drained: Default::default(),
            busy: Default::default(),
            initializing: Default::default(),
            done: Default::default(),
            result: Default::default(),
            load_key: Default::default(),
            load_context: Default::default(),
            loaded_key: Default::default(),
            loaded_access: Default::default(),
            loaded_base: Default::default(),
            loaded_pages: Default::default(),
            loaded_first_entry: Default::default(),
            load_entry: Default::default(),
            loaded_entry_value: Default::default(),
            advance_entry_index: Default::default(),
            context_write_enable: Default::default(),
            context_write_index: Default::default(),
            context_write_data: Default::default(),
            context_read_enable: Default::default(),
            context_read_index: Default::default(),
            context_read_data: Default::default(),
            entry_write_enable: Default::default(),
            entry_write_index: Default::default(),
            entry_write_data: Default::default(),
            entry_read_enable: Default::default(),
            entry_read_index: Default::default(),
            entry_read_data: Default::default(),
            state: Default::default(),
            pending: Default::default(),
            walk_index: Default::default(),
            context_length: Default::default(),
            found: Default::default(),
            findings: Default::default(),
            check_result: Default::default(),
            base_page: Default::default(),
            context_end: Default::default(),
            entry_bias: Default::default(),
            new_generation: Default::default(),
            register_code: command_code(Command::RegisterContext),
            invalidate_code: command_code(Command::InvalidateContext),
            read_context_code: command_code(Command::ReadContext),
            write_entry_code: command_code(Command::WriteEntry),
            read_entry_code: command_code(Command::ReadEntry),
            ok: Constant::new(0u64.into()),
            unknown_command: code(CommandError::UnknownCommand),
            no_such_context: code(CommandError::NoSuchContext),
            no_such_entry: code(CommandError::NoSuchEntry),
            unaligned_base: code(CommandError::UnalignedBase),
            empty_context: code(CommandError::EmptyContext),
            entries_out_of_range: code(CommandError::EntriesOutOfRange),
            range_wraps: code(CommandError::RangeWraps),
            page_out_of_range: code(CommandError::PageOutOfRange),
            reserved_bits: code(CommandError::ReservedBits),
            contexts: Constant::new(u64::from(config.contexts).into()),
            entries: Constant::new(u64::from(config.translation_entries).into()),
            last_walk_index: Constant::new(u64::from(walk).into()),
            page_shift: Constant::new(u64::from(config.page_shift).into()),
            page_offset_mask: Constant::new((config.page_bytes() - 1).into()),
            memory_pages: Constant::new(config.memory_pages.into()),
            access_reserved: Constant::new(context_access::RESERVED.into()),
            entry_reserved: Constant::new(entry_value::RESERVED.into()),
            access_valid_shift: shift(context_access::VALID),
            access_read_shift: shift(context_access::READ),
            access_write_shift: shift(context_access::WRITE),
            access_any_initiator_shift: shift(context_access::ANY_INITIATOR),
            access_initiator_shift: shift(context_access::INITIATOR),
            entry_valid_shift: shift(entry_value::VALID),
            entry_page_shift: shift(entry_value::PAGE),
            generation_mask: Constant::new(context_key::GENERATION.mask().into()),
            tag_mask: Constant::new(context_key::TAG.mask().into()),
            zero_32: Constant::new(0u64.into()),
            one_32: Constant::new(1u64.into()),
            zero_64: Constant::new(0u64.into()),
            invalid_context: Constant::new(ContextEntry::default()),
            invalid_entry: Constant::new(TranslationEntry::default()),
        }
    }
}

// Lint: the checks are written one condition a branch, in the golden model's order; RustHDL kernels have no match guards.
#[allow(clippy::if_same_then_else, clippy::collapsible_match)]
impl<const CONTEXT_TABLE_BITS: usize, const ENTRY_TABLE_BITS: usize> Logic
    for ProgrammingEngine<CONTEXT_TABLE_BITS, ENTRY_TABLE_BITS>
{
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            state,
            pending,
            walk_index,
            findings,
            context_end,
            entry_bias
        );

        self.busy.next = self.state.q.val() != EngineState::Idle;
        self.initializing.next = self.state.q.val() == EngineState::Initializing;
        self.done.next = false;
        self.result.next = self.ok.val();
        self.load_key.next = false;
        self.load_context.next = false;
        self.load_entry.next = false;
        self.advance_entry_index.next = false;
        self.context_write_enable.next = false;
        self.context_read_enable.next = false;
        self.entry_write_enable.next = false;
        self.entry_read_enable.next = false;
        self.context_write_index.next = self.context_id.val().get_bits::<CONTEXT_TABLE_BITS>(0);
        self.context_read_index.next = self.context_id.val().get_bits::<CONTEXT_TABLE_BITS>(0);
        self.entry_write_index.next = self.entry_index.val().get_bits::<ENTRY_TABLE_BITS>(0);
        self.entry_read_index.next = self.entry_index.val().get_bits::<ENTRY_TABLE_BITS>(0);

        // A registered context: the staged fields, the previous key's generation plus one.
        self.new_generation.next =
            (self.context_read_data.val().key + self.one_32.val()) & self.generation_mask.val();
        self.context_write_data.next.valid = true;
        self.context_write_data.next.key =
            (self.key.val() & self.tag_mask.val()) | self.new_generation.val();
        self.context_write_data.next.read = self
            .access
            .val()
            .get_bit(self.access_read_shift.val().index());
        self.context_write_data.next.write = self
            .access
            .val()
            .get_bit(self.access_write_shift.val().index());
        self.context_write_data.next.any_initiator = self
            .access
            .val()
            .get_bit(self.access_any_initiator_shift.val().index());
        self.context_write_data.next.initiator = self
            .access
            .val()
            .get_bits::<INITIATOR_BITS>(self.access_initiator_shift.val().index());
        self.context_write_data.next.base = self.base.val();
        self.context_write_data.next.pages = self.pages.val().get_bits::<17>(0);
        self.context_write_data.next.first_entry =
            self.first_entry.val().get_bits::<ENTRY_INDEX_BITS>(0);
        self.context_length.next = bit_cast::<64, 32>(self.pages.val()) << self.page_shift.val();
        self.context_end.d.next =
            bit_cast::<65, 64>(self.base.val()) + bit_cast::<65, 64>(self.context_length.val());
        self.context_write_data.next.end = self.context_end.q.val();
        self.base_page.next = self.base.val() >> self.page_shift.val();
        self.entry_bias.d.next = self.first_entry.val().get_bits::<ENTRY_INDEX_BITS>(0)
            - self.base_page.val().get_bits::<ENTRY_INDEX_BITS>(0);
        self.context_write_data.next.entry_bias = self.entry_bias.q.val();

        self.entry_write_data.next.valid = self
            .entry_value
            .val()
            .get_bit(self.entry_valid_shift.val().index());
        self.entry_write_data.next.page = self
            .entry_value
            .val()
            .get_bits::<PAGE_NUMBER_BITS>(self.entry_page_shift.val().index());

        // What a context read loads into the staging registers.
        self.loaded_key.next = self.context_read_data.val().key;
        self.loaded_access.next = (bit_cast::<64, 1>(self.context_read_data.val().valid.into())
            << self.access_valid_shift.val())
            | (bit_cast::<64, 1>(self.context_read_data.val().read.into())
                << self.access_read_shift.val())
            | (bit_cast::<64, 1>(self.context_read_data.val().write.into())
                << self.access_write_shift.val())
            | (bit_cast::<64, 1>(self.context_read_data.val().any_initiator.into())
                << self.access_any_initiator_shift.val())
            | (bit_cast::<64, 16>(self.context_read_data.val().initiator)
                << self.access_initiator_shift.val());
        self.loaded_base.next = self.context_read_data.val().base;
        self.loaded_pages.next = bit_cast::<32, 17>(self.context_read_data.val().pages);
        self.loaded_first_entry.next = bit_cast::<32, 16>(self.context_read_data.val().first_entry);
        self.loaded_entry_value.next = (bit_cast::<64, 1>(self.entry_read_data.val().valid.into())
            << self.entry_valid_shift.val())
            | bit_cast::<64, 32>(self.entry_read_data.val().page);

        // Each check of the staged command on its own.
        self.found.next.context_missing = self.context_id.val() >= self.contexts.val();
        self.found.next.entry_missing = self.entry_index.val() >= self.entries.val();
        self.found.next.access_reserved_set =
            (self.access.val() & self.access_reserved.val()) != self.zero_64.val();
        self.found.next.no_pages = self.pages.val() == self.zero_32.val();
        self.found.next.base_unaligned =
            (self.base.val() & self.page_offset_mask.val()) != self.zero_64.val();
        self.found.next.first_entry_past_table = self.first_entry.val() >= self.entries.val();
        self.found.next.pages_past_table =
            self.pages.val() > self.entries.val() - self.first_entry.val();
        // The range passes 2^64: one carry out of the registered end, not a second 64-bit
        // comparison after the addition. The end is a clock old, of the same staged values:
        // nothing is staged while the engine is busy, nor in the clock it is started.
        self.found.next.range_wraps = self.context_end.q.val().get_bit(64)
            && (self.context_end.q.val().get_bits::<64>(0) != self.zero_64.val());
        self.found.next.entry_reserved_set =
            (self.entry_value.val() & self.entry_reserved.val()) != self.zero_64.val();
        self.found.next.page_past_memory = self.entry_write_data.val().valid
            && (bit_cast::<64, 32>(self.entry_write_data.val().page) >= self.memory_pages.val());

        // What they found, ranked in the golden model's order.
        self.check_result.next = self.ok.val();
        match self.pending.q.val() {
            EngineCommand::RegisterContext => {
                if self.findings.q.val().context_missing {
                    self.check_result.next = self.no_such_context.val();
                } else if self.findings.q.val().access_reserved_set {
                    self.check_result.next = self.reserved_bits.val();
                } else if self.findings.q.val().no_pages {
                    self.check_result.next = self.empty_context.val();
                } else if self.findings.q.val().base_unaligned {
                    self.check_result.next = self.unaligned_base.val();
                } else if self.findings.q.val().first_entry_past_table {
                    self.check_result.next = self.entries_out_of_range.val();
                } else if self.findings.q.val().pages_past_table {
                    self.check_result.next = self.entries_out_of_range.val();
                } else if self.findings.q.val().range_wraps {
                    self.check_result.next = self.range_wraps.val();
                }
            }
            EngineCommand::InvalidateContext => {
                if self.findings.q.val().context_missing {
                    self.check_result.next = self.no_such_context.val();
                }
            }
            EngineCommand::ReadContext => {
                if self.findings.q.val().context_missing {
                    self.check_result.next = self.no_such_context.val();
                }
            }
            EngineCommand::WriteEntry => {
                if self.findings.q.val().entry_missing {
                    self.check_result.next = self.no_such_entry.val();
                } else if self.findings.q.val().entry_reserved_set {
                    self.check_result.next = self.reserved_bits.val();
                } else if self.findings.q.val().page_past_memory {
                    self.check_result.next = self.page_out_of_range.val();
                }
            }
            EngineCommand::ReadEntry => {
                if self.findings.q.val().entry_missing {
                    self.check_result.next = self.no_such_entry.val();
                }
            }
            _ => {
                self.check_result.next = self.unknown_command.val();
            }
        }

        match self.state.q.val() {
            EngineState::Initializing => {
                self.context_write_enable.next = self.walk_index.q.val() < self.contexts.val();
                self.context_write_index.next =
                    self.walk_index.q.val().get_bits::<CONTEXT_TABLE_BITS>(0);
                self.context_write_data.next = self.invalid_context.val();
                self.entry_write_enable.next = self.walk_index.q.val() < self.entries.val();
                self.entry_write_index.next =
                    self.walk_index.q.val().get_bits::<ENTRY_TABLE_BITS>(0);
                self.entry_write_data.next = self.invalid_entry.val();
                self.walk_index.d.next = self.walk_index.q.val() + self.one_32.val();
                if self.walk_index.q.val() == self.last_walk_index.val() {
                    self.state.d.next = EngineState::Idle;
                }
            }
            EngineState::Idle => {
                if self.start.val() {
                    self.state.d.next = EngineState::Checking;
                    self.pending.d.next = EngineCommand::Unknown;
                    if self.command.val() == self.register_code.val() {
                        self.pending.d.next = EngineCommand::RegisterContext;
                    }
                    if self.command.val() == self.invalidate_code.val() {
                        self.pending.d.next = EngineCommand::InvalidateContext;
                    }
                    if self.command.val() == self.read_context_code.val() {
                        self.pending.d.next = EngineCommand::ReadContext;
                    }
                    if self.command.val() == self.write_entry_code.val() {
                        self.pending.d.next = EngineCommand::WriteEntry;
                    }
                    if self.command.val() == self.read_entry_code.val() {
                        self.pending.d.next = EngineCommand::ReadEntry;
                    }
                }
            }
            EngineState::Checking => {
                self.findings.d.next = self.found.val();
                self.state.d.next = EngineState::Deciding;
            }
            EngineState::Deciding => {
                if self.check_result.val() != self.ok.val() {
                    self.done.next = true;
                    self.result.next = self.check_result.val();
                    self.state.d.next = EngineState::Idle;
                } else {
                    self.state.d.next = EngineState::Draining;
                }
            }
            EngineState::Draining => {
                if self.drained.val() {
                    if self.pending.q.val() == EngineCommand::WriteEntry {
                        self.entry_write_enable.next = true;
                        self.advance_entry_index.next = true;
                        self.done.next = true;
                        self.state.d.next = EngineState::Idle;
                    } else {
                        // Context commands need the context, READ_ENTRY the entry; the
                        // unused read is harmless.
                        self.context_read_enable.next = true;
                        self.entry_read_enable.next = true;
                        self.state.d.next = EngineState::Applying;
                    }
                }
            }
            EngineState::Applying => {
                self.done.next = true;
                self.state.d.next = EngineState::Idle;
                match self.pending.q.val() {
                    EngineCommand::RegisterContext => {
                        self.context_write_enable.next = true;
                        self.load_key.next = true;
                        self.loaded_key.next = self.context_write_data.val().key;
                    }
                    EngineCommand::InvalidateContext => {
                        self.context_write_enable.next = true;
                        self.context_write_data.next = self.context_read_data.val();
                        self.context_write_data.next.valid = false;
                    }
                    EngineCommand::ReadContext => {
                        self.load_context.next = true;
                    }
                    EngineCommand::ReadEntry => {
                        self.load_entry.next = true;
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        if self.reset.val() {
            self.state.d.next = EngineState::Initializing;
            self.walk_index.d.next = self.zero_32.val();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{cycle, settle};
    use rstest::rstest;

    type Engine = ProgrammingEngine<4, 8>;

    /// The engine with the two tables it programs, as the AVT would present them.
    struct Bench {
        engine: Engine,
        contexts: Vec<ContextEntry>,
        entries: Vec<TranslationEntry>,
        context_writes: usize,
        entry_writes: usize,
        /// The last entry value the engine loaded for the staging registers.
        loaded_entry: Option<u64>,
    }

    impl Bench {
        fn new() -> Self {
            let mut engine = Engine::new(&Config::ICE40);
            engine.connect_all();
            let mut bench = Self {
                engine,
                contexts: vec![ContextEntry::default(); 16],
                entries: vec![TranslationEntry::default(); 256],
                context_writes: 0,
                entry_writes: 0,
                loaded_entry: None,
            };
            bench.engine.reset.next = true;
            bench.clock();
            bench.engine.reset.next = false;
            (bench.context_writes, bench.entry_writes) = (0, 0);
            bench
        }

        /// A bench whose engine has cleared its tables after reset.
        fn initialized() -> Self {
            let mut bench = Self::new();
            for _ in 0..256 {
                bench.clock();
            }
            bench
        }

        /// One clock, carrying out the engine's table reads and writes.
        fn clock(&mut self) {
            settle(&mut self.engine);
            let engine = &self.engine;
            if engine.load_entry.val() {
                self.loaded_entry = Some(engine.loaded_entry_value.val().to_u64());
            }
            let read_context = engine
                .context_read_enable
                .val()
                .then(|| self.contexts[engine.context_read_index.val().index()]);
            let read_entry = engine
                .entry_read_enable
                .val()
                .then(|| self.entries[engine.entry_read_index.val().index()]);
            if engine.context_write_enable.val() {
                self.contexts[engine.context_write_index.val().index()] =
                    engine.context_write_data.val();
                self.context_writes += 1;
            }
            if engine.entry_write_enable.val() {
                self.entries[engine.entry_write_index.val().index()] =
                    engine.entry_write_data.val();
                self.entry_writes += 1;
            }
            cycle(&mut self.engine, |engine, level| {
                engine.clock.next = Clock { clk: level }
            });
            if let Some(context) = read_context {
                self.engine.context_read_data.next = context;
            }
            if let Some(entry) = read_entry {
                self.engine.entry_read_data.next = entry;
            }
        }

        /// Starts `command` and clocks until it is done; returns its result.
        fn run(&mut self, command: Command) -> u64 {
            self.engine.start.next = true;
            self.engine.command.next = u64::from(command.code()).into();
            self.clock();
            self.engine.start.next = false;
            for _ in 0..10 {
                settle(&mut self.engine);
                if self.engine.done.val() {
                    let result = self.engine.result.val().to_u64();
                    self.clock();
                    settle(&mut self.engine);
                    assert!(!self.engine.busy.val());
                    return result;
                }
                self.clock();
            }
            panic!("the command never finished");
        }
    }

    #[test]
    fn reset_clears_every_entry_before_taking_commands() {
        let mut bench = Bench::new();
        bench.contexts[3].valid = true;
        bench.entries[200].valid = true;
        bench.contexts[0].valid = true;
        let mut clocks = 0;
        while {
            settle(&mut bench.engine);
            bench.engine.initializing.val()
        } {
            assert!(bench.engine.busy.val());
            bench.clock();
            clocks += 1;
        }
        assert_eq!(clocks, 256);
        assert_eq!((bench.context_writes, bench.entry_writes), (16, 256));
        assert!(bench.contexts.iter().all(|context| !context.valid));
        assert!(bench.entries.iter().all(|entry| !entry.valid));
    }

    #[test]
    fn registration_waits_for_the_drain_and_bumps_the_generation() {
        let mut bench = Bench::initialized();
        bench.contexts[2].key = 0x0000_07ffu64.into();
        let engine = &mut bench.engine;
        engine.context_id.next = 2u64.into();
        engine.key.next = 0xabcd_ef99u64.into();
        engine.access.next = (1u64 | 1 << 2).into();
        engine.base.next = 0x4000u64.into();
        engine.pages.next = 2u64.into();
        engine.first_entry.next = 10u64.into();
        engine.drained.next = false;
        engine.start.next = true;
        engine.command.next = u64::from(Command::RegisterContext.code()).into();
        bench.clock();
        bench.engine.start.next = false;
        for _ in 0..5 {
            bench.clock();
            assert!(
                bench.engine.busy.val(),
                "waits while requests are in flight"
            );
        }
        assert_eq!(
            bench.context_writes, 16,
            "nothing written but the reset clearing"
        );
        bench.engine.drained.next = true;
        let mut loaded_key = None;
        for _ in 0..3 {
            settle(&mut bench.engine);
            if bench.engine.load_key.val() {
                loaded_key = Some(bench.engine.loaded_key.val().to_u64());
            }
            bench.clock();
        }
        let context = bench.contexts[2];
        assert!(context.valid && context.read && !context.write && context.any_initiator);
        assert_eq!(
            context.key.to_u64(),
            0xabcd_ef00,
            "tag kept, generation 0xff + 1 wraps"
        );
        assert_eq!(loaded_key, Some(0xabcd_ef00));
        assert_eq!((context.base.to_u64(), context.pages.to_u64()), (0x4000, 2));
        assert_eq!(context.first_entry.to_u64(), 10);
    }

    #[rstest]
    #[case::no_such_context(Command::RegisterContext, 16, 0, 1, 0, CommandError::NoSuchContext)]
    #[case::reserved(Command::RegisterContext, 1, 1 << 8, 1, 0, CommandError::ReservedBits)]
    #[case::empty(Command::RegisterContext, 1, 0, 0, 0, CommandError::EmptyContext)]
    #[case::unaligned(Command::RegisterContext, 1, 0, 1, 0x10, CommandError::UnalignedBase)]
    #[case::wraps(
        Command::RegisterContext,
        1,
        0,
        2,
        0xffff_ffff_ffff_fc00,
        CommandError::RangeWraps
    )]
    #[case::no_such_context_to_read(Command::ReadContext, 17, 0, 0, 0, CommandError::NoSuchContext)]
    #[case::no_such_context_to_drop(
        Command::InvalidateContext,
        99,
        0,
        0,
        0,
        CommandError::NoSuchContext
    )]
    fn bad_commands_fail_without_touching_the_tables(
        #[case] command: Command,
        #[case] context: u64,
        #[case] access: u64,
        #[case] pages: u64,
        #[case] base: u64,
        #[case] error: CommandError,
    ) {
        let mut bench = Bench::initialized();
        bench.engine.drained.next = true;
        bench.engine.context_id.next = context.into();
        bench.engine.access.next = access.into();
        bench.engine.pages.next = pages.into();
        bench.engine.base.next = base.into();
        let writes = (bench.context_writes, bench.entry_writes);
        assert_eq!(bench.run(command), u64::from(error.code()));
        assert_eq!((bench.context_writes, bench.entry_writes), writes);
    }

    #[rstest]
    #[case::ends_at_the_top(0xffff_ffff_ffff_f800, 2, 0)]
    #[case::one_page_past_it(0xffff_ffff_ffff_f800, 3, CommandError::RangeWraps.code())]
    #[case::the_last_page(0xffff_ffff_ffff_fc00, 1, 0)]
    fn a_range_may_end_at_two_to_the_64_but_not_pass_it(
        #[case] base: u64,
        #[case] pages: u64,
        #[case] result: u8,
    ) {
        let mut bench = Bench::initialized();
        bench.engine.drained.next = true;
        bench.engine.context_id.next = 1u64.into();
        bench.engine.pages.next = pages.into();
        bench.engine.base.next = base.into();
        assert_eq!(bench.run(Command::RegisterContext), u64::from(result));
    }

    #[test]
    fn entries_are_written_checked_and_read_back() {
        let mut bench = Bench::initialized();
        bench.engine.drained.next = true;
        bench.engine.entry_index.next = 7u64.into();
        bench.engine.entry_value.next =
            (entry_value::VALID.place(1) | entry_value::PAGE.place(100)).into();
        assert_eq!(bench.run(Command::WriteEntry), 0);
        assert!(bench.entries[7].valid);
        assert_eq!(bench.entries[7].page.to_u64(), 100);
        bench.engine.entry_value.next =
            (entry_value::VALID.place(1) | entry_value::PAGE.place(128)).into();
        assert_eq!(
            bench.run(Command::WriteEntry),
            u64::from(CommandError::PageOutOfRange.code()),
            "the iCE40 has 128 pages"
        );
        bench.engine.entry_index.next = 256u64.into();
        assert_eq!(
            bench.run(Command::ReadEntry),
            u64::from(CommandError::NoSuchEntry.code())
        );
        bench.engine.entry_index.next = 7u64.into();
        assert_eq!(bench.run(Command::ReadEntry), 0);
        let written = entry_value::VALID.place(1) | entry_value::PAGE.place(100);
        assert_eq!(bench.loaded_entry, Some(written));
        assert_eq!(bench.run(Command::InvalidateContext), 0);
    }
}
