//! The CSR bank: the host's BAR0 register window (see `npmu_abi::registers`).
//!
//! MMIO requests are 64-bit reads and writes at byte offsets. The bank decodes a request's
//! address as it takes it, into one flag a register, and carries the request out the next
//! clock: what a read selects and a write changes then hangs off flip-flops, not off
//! address comparisons. A read answers on the response channel the clock after that, and
//! the bank takes no new request until that answer is taken. The bank holds the management
//! lock, the staging registers the programming engine works from, the last-fault record and
//! the request counters (in block RAM, see `crate::request_counters`).

use crate::avt::RequestOutcome;
use crate::constants::{constant, offset, shift};
use crate::request_counters::{RequestCounters, STATUSES};
use npmu_abi::registers::{self as reg, command_status, last_fault, status};
use npmu_abi::{Config, KEY_BITS, MMIO_ADDRESS_BITS};
use rust_hdl::prelude::*;

const CAPABILITIES: usize = reg::CAPABILITIES.len();
const PROGRAMMING_REGISTERS: usize = reg::PROGRAMMING.len();

/// Which register an MMIO request names, one flag a register (a capability's value and a
/// request counter's status are held beside it).
#[derive(Copy, Clone, Debug, Default, PartialEq, LogicStruct)]
pub struct Selection {
    pub status: bool,
    pub unlock: bool,
    pub lock: bool,
    pub failed_unlocks: bool,
    pub refused_writes: bool,
    /// Any register the management lock guards.
    pub programming: bool,
    pub command: bool,
    pub context_id: bool,
    pub key: bool,
    pub access: bool,
    pub base: bool,
    pub pages: bool,
    pub first_entry: bool,
    pub entry_index: bool,
    pub entry_value: bool,
    pub count: bool,
    pub last_fault: bool,
    pub last_fault_address: bool,
    pub last_fault_length: bool,
}

#[derive(LogicBlock)]
pub struct CsrBank {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, bool>,
    /// The board's management key; zero keeps the lock closed for good.
    pub management_key: Signal<In, Bits<64>>,

    pub mmio_request_valid: Signal<In, bool>,
    pub mmio_request_ready: Signal<Out, bool>,
    pub mmio_request_write: Signal<In, bool>,
    pub mmio_request_address: Signal<In, Bits<MMIO_ADDRESS_BITS>>,
    pub mmio_request_write_data: Signal<In, Bits<64>>,
    pub mmio_response_valid: Signal<Out, bool>,
    pub mmio_response_ready: Signal<In, bool>,
    pub mmio_response_data: Signal<Out, Bits<64>>,

    /// To the programming engine.
    pub command_start: Signal<Out, bool>,
    /// A write to AVT_COMMAND is being carried out, taken or not: the AVT takes no request
    /// this clock. A request taken in the clock the write was taken comes before the
    /// command; one taken later, after it. The engine holds the AVT from the next clock.
    pub command_written: Signal<Out, bool>,
    pub command: Signal<Out, Bits<64>>,
    pub context_id: Signal<Out, Bits<32>>,
    pub key: Signal<Out, Bits<KEY_BITS>>,
    pub access: Signal<Out, Bits<64>>,
    pub base: Signal<Out, Bits<64>>,
    pub pages: Signal<Out, Bits<32>>,
    pub first_entry: Signal<Out, Bits<32>>,
    pub entry_index: Signal<Out, Bits<32>>,
    pub entry_value: Signal<Out, Bits<64>>,

    /// From the programming engine.
    pub engine_busy: Signal<In, bool>,
    pub engine_initializing: Signal<In, bool>,
    pub command_done: Signal<In, bool>,
    pub command_result: Signal<In, Bits<8>>,
    pub load_key: Signal<In, bool>,
    pub load_context: Signal<In, bool>,
    pub loaded_key: Signal<In, Bits<32>>,
    pub loaded_access: Signal<In, Bits<64>>,
    pub loaded_base: Signal<In, Bits<64>>,
    pub loaded_pages: Signal<In, Bits<32>>,
    pub loaded_first_entry: Signal<In, Bits<32>>,
    pub load_entry: Signal<In, bool>,
    pub loaded_entry_value: Signal<In, Bits<64>>,
    pub advance_entry_index: Signal<In, bool>,

    /// Each request's outcome, from the AVT.
    pub outcome_valid: Signal<In, bool>,
    pub outcome: Signal<In, RequestOutcome>,

    /// The management lock is open, for the queue windows the command engine keeps.
    pub lock_open: Signal<Out, bool>,
    /// A queue window write the closed lock dropped: counted in REFUSED_WRITES. Never in
    /// the clock of a write here (one register write a clock reaches the NI).
    pub queue_write_refused: Signal<In, bool>,

    unlocked: DFF<bool>,
    failed_unlocks: DFF<Bits<32>>,
    refused_writes: DFF<Bits<32>>,
    last_result: DFF<Bits<8>>,
    overrun: DFF<bool>,
    staged_context_id: DFF<Bits<32>>,
    staged_key: DFF<Bits<32>>,
    staged_access: DFF<Bits<64>>,
    staged_base: DFF<Bits<64>>,
    staged_pages: DFF<Bits<32>>,
    staged_first_entry: DFF<Bits<32>>,
    staged_entry_index: DFF<Bits<32>>,
    staged_entry_value: DFF<Bits<64>>,
    counters: RequestCounters,
    fault_valid: DFF<bool>,
    fault_code: DFF<Bits<4>>,
    fault_write: DFF<bool>,
    fault_context: DFF<Bits<16>>,
    fault_initiator: DFF<Bits<16>>,
    fault_address: DFF<Bits<64>>,
    fault_length: DFF<Bits<32>>,
    response_valid: DFF<bool>,
    response_data: DFF<Bits<64>>,

    held: DFF<bool>,
    held_write: DFF<bool>,
    held_data: DFF<Bits<64>>,
    selected: DFF<Selection>,
    /// The capability register's value, or zero.
    selected_capability: DFF<Bits<64>>,
    selection: Signal<Local, Selection>,
    capability_value: Signal<Local, Bits<64>>,
    count_status: Signal<Local, Bits<4>>,
    taken: Signal<Local, bool>,
    writing: Signal<Local, bool>,
    reading: Signal<Local, bool>,
    data: Signal<Local, Bits<64>>,
    read_value: Signal<Local, Bits<64>>,
    staging_write: Signal<Local, bool>,

    status_offset: Constant<Bits<16>>,
    unlock_offset: Constant<Bits<16>>,
    lock_offset: Constant<Bits<16>>,
    failed_unlocks_offset: Constant<Bits<16>>,
    refused_writes_offset: Constant<Bits<16>>,
    command_offset: Constant<Bits<16>>,
    context_id_offset: Constant<Bits<16>>,
    key_offset: Constant<Bits<16>>,
    access_offset: Constant<Bits<16>>,
    base_offset: Constant<Bits<16>>,
    pages_offset: Constant<Bits<16>>,
    first_entry_offset: Constant<Bits<16>>,
    entry_index_offset: Constant<Bits<16>>,
    entry_value_offset: Constant<Bits<16>>,
    capability_offsets: [Constant<Bits<16>>; CAPABILITIES],
    capability_values: [Constant<Bits<64>>; CAPABILITIES],
    programming_offsets: [Constant<Bits<16>>; PROGRAMMING_REGISTERS],
    count_offsets: [Constant<Bits<16>>; STATUSES],
    count_statuses: [Constant<Bits<4>>; STATUSES],
    last_fault_offset: Constant<Bits<16>>,
    last_fault_address_offset: Constant<Bits<16>>,
    last_fault_length_offset: Constant<Bits<16>>,
    nothing_selected: Constant<Selection>,

    initializing_shift: Constant<Bits<8>>,
    unlocked_shift: Constant<Bits<8>>,
    command_busy_shift: Constant<Bits<8>>,
    busy_shift: Constant<Bits<8>>,
    overrun_shift: Constant<Bits<8>>,
    fault_code_shift: Constant<Bits<8>>,
    fault_write_shift: Constant<Bits<8>>,
    fault_context_shift: Constant<Bits<8>>,
    fault_initiator_shift: Constant<Bits<8>>,
    fault_valid_shift: Constant<Bits<8>>,
    status_ok: Constant<Bits<4>>,
    zero_8: Constant<Bits<8>>,
    zero_16: Constant<Bits<16>>,
    zero_32: Constant<Bits<32>>,
    one_32: Constant<Bits<32>>,
    zero_64: Constant<Bits<64>>,
}

impl CsrBank {
    /// A bank for a card built in `config` whose `QUEUES` register reports `queues` (zero
    /// where no command engine sits in front of the core).
    pub fn new(config: &Config, queues: u32) -> Self {
        Self {
            clock: Default::default(),
            reset: Default::default(),
            management_key: Default::default(),
            mmio_request_valid: Default::default(),
            mmio_request_ready: Default::default(),
            mmio_request_write: Default::default(),
            mmio_request_address: Default::default(),
            mmio_request_write_data: Default::default(),
            mmio_response_valid: Default::default(),
            mmio_response_ready: Default::default(),
            mmio_response_data: Default::default(),
            command_start: Default::default(),
            command_written: Default::default(),
            command: Default::default(),
            context_id: Default::default(),
            key: Default::default(),
            access: Default::default(),
            base: Default::default(),
            pages: Default::default(),
            first_entry: Default::default(),
            entry_index: Default::default(),
            entry_value: Default::default(),
            engine_busy: Default::default(),
            engine_initializing: Default::default(),
            command_done: Default::default(),
            command_result: Default::default(),
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
            outcome_valid: Default::default(),
            outcome: Default::default(),
            lock_open: Default::default(),
            queue_write_refused: Default::default(),
            unlocked: Default::default(),
            failed_unlocks: Default::default(),
            refused_writes: Default::default(),
            last_result: Default::default(),
            overrun: Default::default(),
            staged_context_id: Default::default(),
            staged_key: Default::default(),
            staged_access: Default::default(),
            staged_base: Default::default(),
            staged_pages: Default::default(),
            staged_first_entry: Default::default(),
            staged_entry_index: Default::default(),
            staged_entry_value: Default::default(),
            counters: Default::default(),
            fault_valid: Default::default(),
            fault_code: Default::default(),
            fault_write: Default::default(),
            fault_context: Default::default(),
            fault_initiator: Default::default(),
            fault_address: Default::default(),
            fault_length: Default::default(),
            response_valid: Default::default(),
            response_data: Default::default(),
            held: Default::default(),
            held_write: Default::default(),
            held_data: Default::default(),
            selected: Default::default(),
            selected_capability: Default::default(),
            selection: Default::default(),
            capability_value: Default::default(),
            count_status: Default::default(),
            taken: Default::default(),
            writing: Default::default(),
            reading: Default::default(),
            data: Default::default(),
            read_value: Default::default(),
            staging_write: Default::default(),
            status_offset: offset(reg::STATUS),
            unlock_offset: offset(reg::MANAGEMENT_UNLOCK),
            lock_offset: offset(reg::MANAGEMENT_LOCK),
            failed_unlocks_offset: offset(reg::FAILED_UNLOCKS),
            refused_writes_offset: offset(reg::REFUSED_WRITES),
            command_offset: offset(reg::AVT_COMMAND),
            context_id_offset: offset(reg::AVT_CONTEXT_ID),
            key_offset: offset(reg::AVT_CONTEXT_KEY),
            access_offset: offset(reg::AVT_CONTEXT_ACCESS),
            base_offset: offset(reg::AVT_CONTEXT_BASE),
            pages_offset: offset(reg::AVT_CONTEXT_PAGES),
            first_entry_offset: offset(reg::AVT_CONTEXT_FIRST_ENTRY),
            entry_index_offset: offset(reg::AVT_ENTRY_INDEX),
            entry_value_offset: offset(reg::AVT_ENTRY_VALUE),
            capability_offsets: reg::CAPABILITIES.map(offset),
            capability_values: reg::CAPABILITIES.map(|register| match register {
                reg::QUEUES => constant(queues.into()),
                _ => constant(config.capability(register).expect("a capability register")),
            }),
            programming_offsets: reg::PROGRAMMING.map(offset),
            count_offsets: std::array::from_fn(|status| {
                Constant::new(u64::from(reg::request_count_offset(status as u8)).into())
            }),
            count_statuses: std::array::from_fn(|status| Constant::new((status as u64).into())),
            last_fault_offset: offset(reg::LAST_FAULT),
            last_fault_address_offset: offset(reg::LAST_FAULT_ADDRESS),
            last_fault_length_offset: offset(reg::LAST_FAULT_LENGTH),
            nothing_selected: Constant::new(Selection::default()),
            initializing_shift: shift(status::INITIALIZING),
            unlocked_shift: shift(status::UNLOCKED),
            command_busy_shift: shift(status::COMMAND_BUSY),
            busy_shift: shift(command_status::BUSY),
            overrun_shift: shift(command_status::OVERRUN),
            fault_code_shift: shift(last_fault::CODE),
            fault_write_shift: shift(last_fault::WRITE),
            fault_context_shift: shift(last_fault::CONTEXT),
            fault_initiator_shift: shift(last_fault::INITIATOR),
            fault_valid_shift: shift(last_fault::VALID),
            status_ok: Constant::new(0u64.into()),
            zero_8: Constant::new(0u64.into()),
            zero_16: Constant::new(0u64.into()),
            zero_32: Constant::new(0u64.into()),
            one_32: Constant::new(1u64.into()),
            zero_64: Constant::new(0u64.into()),
        }
    }
}

impl Logic for CsrBank {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            unlocked,
            failed_unlocks,
            refused_writes,
            last_result,
            overrun,
            staged_context_id,
            staged_key,
            staged_access,
            staged_base,
            staged_pages,
            staged_first_entry,
            staged_entry_index,
            staged_entry_value,
            fault_valid,
            fault_code,
            fault_write,
            fault_context,
            fault_initiator,
            fault_address,
            fault_length,
            response_valid,
            response_data,
            held,
            held_write,
            held_data,
            selected,
            selected_capability
        );
        self.counters.clock.next = self.clock.val();
        self.counters.reset.next = self.reset.val();

        self.mmio_request_ready.next = !self.held.q.val()
            && !self.response_valid.q.val()
            && !self.counters.clearing.val()
            && !self.reset.val();
        self.mmio_response_valid.next = self.response_valid.q.val();
        self.mmio_response_data.next = self.response_data.q.val();
        self.held.d.next = self.mmio_request_valid.val() && self.mmio_request_ready.val();

        // The register the request names, decoded on the way in.
        self.selection.next = self.nothing_selected.val();
        self.selection.next.status = self.mmio_request_address.val() == self.status_offset.val();
        self.selection.next.unlock = self.mmio_request_address.val() == self.unlock_offset.val();
        self.selection.next.lock = self.mmio_request_address.val() == self.lock_offset.val();
        self.selection.next.failed_unlocks =
            self.mmio_request_address.val() == self.failed_unlocks_offset.val();
        self.selection.next.refused_writes =
            self.mmio_request_address.val() == self.refused_writes_offset.val();
        for index in 0..PROGRAMMING_REGISTERS {
            if self.mmio_request_address.val() == self.programming_offsets[index].val() {
                self.selection.next.programming = true;
            }
        }
        self.selection.next.command = self.mmio_request_address.val() == self.command_offset.val();
        self.selection.next.context_id =
            self.mmio_request_address.val() == self.context_id_offset.val();
        self.selection.next.key = self.mmio_request_address.val() == self.key_offset.val();
        self.selection.next.access = self.mmio_request_address.val() == self.access_offset.val();
        self.selection.next.base = self.mmio_request_address.val() == self.base_offset.val();
        self.selection.next.pages = self.mmio_request_address.val() == self.pages_offset.val();
        self.selection.next.first_entry =
            self.mmio_request_address.val() == self.first_entry_offset.val();
        self.selection.next.entry_index =
            self.mmio_request_address.val() == self.entry_index_offset.val();
        self.selection.next.entry_value =
            self.mmio_request_address.val() == self.entry_value_offset.val();
        self.count_status.next = self.status_ok.val();
        for index in 0..STATUSES {
            if self.mmio_request_address.val() == self.count_offsets[index].val() {
                self.selection.next.count = true;
                self.count_status.next = self.count_statuses[index].val();
            }
        }
        self.selection.next.last_fault =
            self.mmio_request_address.val() == self.last_fault_offset.val();
        self.selection.next.last_fault_address =
            self.mmio_request_address.val() == self.last_fault_address_offset.val();
        self.selection.next.last_fault_length =
            self.mmio_request_address.val() == self.last_fault_length_offset.val();
        self.capability_value.next = self.zero_64.val();
        for index in 0..CAPABILITIES {
            if self.mmio_request_address.val() == self.capability_offsets[index].val() {
                self.capability_value.next = self.capability_values[index].val();
            }
        }
        if self.mmio_request_valid.val() && self.mmio_request_ready.val() {
            self.held_write.d.next = self.mmio_request_write.val();
            self.held_data.d.next = self.mmio_request_write_data.val();
            self.selected.d.next = self.selection.val();
            self.selected_capability.d.next = self.capability_value.val();
        }
        // A counter is read as the request is taken, whatever it names: the read costs
        // nothing, and its value is there in the clock the request is carried out.
        self.counters.read_start.next =
            self.mmio_request_valid.val() && self.mmio_request_ready.val();
        self.counters.read_status.next = self.count_status.val();
        // Not gated by reset, which would put the reset on the AVT's hold: whatever a
        // request carried out under reset changes, the reset below puts back.
        self.taken.next = self.held.q.val();
        self.writing.next = self.taken.val() && self.held_write.q.val();
        self.reading.next = self.taken.val() && !self.held_write.q.val();
        self.data.next = self.held_data.q.val();

        self.command.next = self.data.val();
        self.context_id.next = self.staged_context_id.q.val();
        self.key.next = self.staged_key.q.val();
        self.access.next = self.staged_access.q.val();
        self.base.next = self.staged_base.q.val();
        self.pages.next = self.staged_pages.q.val();
        self.first_entry.next = self.staged_first_entry.q.val();
        self.entry_index.next = self.staged_entry_index.q.val();
        self.entry_value.next = self.staged_entry_value.q.val();

        // Reads: each register's value, or zero, ORed together. Addresses are distinct, so
        // at most one term is not zero, and the OR needs no priority between them.
        self.read_value.next = self.selected_capability.q.val();
        if self.selected.q.val().status {
            self.read_value.next = self.read_value.val()
                | (bit_cast::<64, 1>(self.engine_initializing.val().into())
                    << self.initializing_shift.val())
                | (bit_cast::<64, 1>(self.unlocked.q.val().into()) << self.unlocked_shift.val())
                | (bit_cast::<64, 1>(self.engine_busy.val().into())
                    << self.command_busy_shift.val());
        }
        if self.selected.q.val().failed_unlocks {
            self.read_value.next =
                self.read_value.val() | bit_cast::<64, 32>(self.failed_unlocks.q.val());
        }
        if self.selected.q.val().refused_writes {
            self.read_value.next =
                self.read_value.val() | bit_cast::<64, 32>(self.refused_writes.q.val());
        }
        if self.selected.q.val().command {
            self.read_value.next = self.read_value.val()
                | bit_cast::<64, 8>(self.last_result.q.val())
                | (bit_cast::<64, 1>(self.engine_busy.val().into()) << self.busy_shift.val())
                | (bit_cast::<64, 1>(self.overrun.q.val().into()) << self.overrun_shift.val());
        }
        if self.selected.q.val().context_id {
            self.read_value.next =
                self.read_value.val() | bit_cast::<64, 32>(self.staged_context_id.q.val());
        }
        if self.selected.q.val().key {
            self.read_value.next =
                self.read_value.val() | bit_cast::<64, 32>(self.staged_key.q.val());
        }
        if self.selected.q.val().access {
            self.read_value.next = self.read_value.val() | self.staged_access.q.val();
        }
        if self.selected.q.val().base {
            self.read_value.next = self.read_value.val() | self.staged_base.q.val();
        }
        if self.selected.q.val().pages {
            self.read_value.next =
                self.read_value.val() | bit_cast::<64, 32>(self.staged_pages.q.val());
        }
        if self.selected.q.val().first_entry {
            self.read_value.next =
                self.read_value.val() | bit_cast::<64, 32>(self.staged_first_entry.q.val());
        }
        if self.selected.q.val().entry_index {
            self.read_value.next =
                self.read_value.val() | bit_cast::<64, 32>(self.staged_entry_index.q.val());
        }
        if self.selected.q.val().entry_value {
            self.read_value.next = self.read_value.val() | self.staged_entry_value.q.val();
        }
        if self.selected.q.val().count {
            self.read_value.next =
                self.read_value.val() | bit_cast::<64, 32>(self.counters.read_count.val());
        }
        if self.selected.q.val().last_fault {
            self.read_value.next = self.read_value.val()
                | (bit_cast::<64, 4>(self.fault_code.q.val()) << self.fault_code_shift.val())
                | (bit_cast::<64, 1>(self.fault_write.q.val().into())
                    << self.fault_write_shift.val())
                | (bit_cast::<64, 16>(self.fault_context.q.val())
                    << self.fault_context_shift.val())
                | (bit_cast::<64, 16>(self.fault_initiator.q.val())
                    << self.fault_initiator_shift.val())
                | (bit_cast::<64, 1>(self.fault_valid.q.val().into())
                    << self.fault_valid_shift.val());
        }
        if self.selected.q.val().last_fault_address {
            self.read_value.next = self.read_value.val() | self.fault_address.q.val();
        }
        if self.selected.q.val().last_fault_length {
            self.read_value.next =
                self.read_value.val() | bit_cast::<64, 32>(self.fault_length.q.val());
        }
        if self.selected.q.val().programming && !self.unlocked.q.val() {
            self.read_value.next = self.zero_64.val();
        }
        if self.response_valid.q.val() && self.mmio_response_ready.val() {
            self.response_valid.d.next = false;
        }
        if self.reading.val() {
            self.response_valid.d.next = true;
            self.response_data.d.next = self.read_value.val();
        }

        // Writes to programming registers: refused while locked, dropped while busy. Each
        // register's write is decided on its own (addresses are distinct), not down a chain.
        self.command_start.next = false;
        self.command_written.next = self.writing.val() && self.selected.q.val().command;
        self.staging_write.next = self.writing.val()
            && self.selected.q.val().programming
            && self.unlocked.q.val()
            && !self.engine_busy.val();
        if self.writing.val() && self.selected.q.val().programming && !self.unlocked.q.val() {
            self.refused_writes.d.next = self.refused_writes.q.val() + self.one_32.val();
        }
        if self.queue_write_refused.val() {
            self.refused_writes.d.next = self.refused_writes.q.val() + self.one_32.val();
        }
        self.lock_open.next = self.unlocked.q.val();
        if self.writing.val()
            && self.selected.q.val().programming
            && self.unlocked.q.val()
            && self.engine_busy.val()
        {
            self.overrun.d.next = true;
        }
        if self.staging_write.val() && self.selected.q.val().command {
            self.command_start.next = true;
            self.overrun.d.next = false;
        }
        if self.staging_write.val() && self.selected.q.val().context_id {
            self.staged_context_id.d.next = self.data.val().get_bits::<32>(0);
        }
        if self.staging_write.val() && self.selected.q.val().key {
            self.staged_key.d.next = self.data.val().get_bits::<32>(0);
        }
        if self.staging_write.val() && self.selected.q.val().access {
            self.staged_access.d.next = self.data.val();
        }
        if self.staging_write.val() && self.selected.q.val().base {
            self.staged_base.d.next = self.data.val();
        }
        if self.staging_write.val() && self.selected.q.val().pages {
            self.staged_pages.d.next = self.data.val().get_bits::<32>(0);
        }
        if self.staging_write.val() && self.selected.q.val().first_entry {
            self.staged_first_entry.d.next = self.data.val().get_bits::<32>(0);
        }
        if self.staging_write.val() && self.selected.q.val().entry_index {
            self.staged_entry_index.d.next = self.data.val().get_bits::<32>(0);
        }
        if self.staging_write.val() && self.selected.q.val().entry_value {
            self.staged_entry_value.d.next = self.data.val();
        }
        if self.writing.val() && self.selected.q.val().unlock {
            if (self.management_key.val() != self.zero_64.val())
                && (self.data.val() == self.management_key.val())
            {
                self.unlocked.d.next = true;
            } else {
                self.failed_unlocks.d.next = self.failed_unlocks.q.val() + self.one_32.val();
            }
        }
        if self.writing.val() && self.selected.q.val().lock {
            self.unlocked.d.next = false;
        }

        // What the programming engine returns.
        if self.command_done.val() {
            self.last_result.d.next = self.command_result.val();
        }
        if self.load_key.val() || self.load_context.val() {
            self.staged_key.d.next = self.loaded_key.val();
        }
        if self.load_context.val() {
            self.staged_access.d.next = self.loaded_access.val();
            self.staged_base.d.next = self.loaded_base.val();
            self.staged_pages.d.next = self.loaded_pages.val();
            self.staged_first_entry.d.next = self.loaded_first_entry.val();
        }
        if self.load_entry.val() {
            self.staged_entry_value.d.next = self.loaded_entry_value.val();
        }
        if self.advance_entry_index.val() {
            self.staged_entry_index.d.next = self.staged_entry_index.q.val() + self.one_32.val();
        }

        // Counters and the fault record; a fault in the clock of a clearing write wins.
        self.counters.count_valid.next = self.outcome_valid.val();
        self.counters.count_status.next = self.outcome.val().status;
        if self.writing.val() && self.selected.q.val().last_fault {
            self.fault_valid.d.next = false;
            self.fault_code.d.next = self.status_ok.val();
            self.fault_write.d.next = false;
            self.fault_context.d.next = self.zero_16.val();
            self.fault_initiator.d.next = self.zero_16.val();
            self.fault_address.d.next = self.zero_64.val();
            self.fault_length.d.next = self.zero_32.val();
        }
        if self.outcome_valid.val() && (self.outcome.val().status != self.status_ok.val()) {
            self.fault_valid.d.next = true;
            self.fault_code.d.next = self.outcome.val().status;
            self.fault_write.d.next = self.outcome.val().write;
            self.fault_context.d.next = self.outcome.val().context;
            self.fault_initiator.d.next = self.outcome.val().initiator;
            self.fault_address.d.next = self.outcome.val().address;
            self.fault_length.d.next = self.outcome.val().length;
        }

        if self.reset.val() {
            self.unlocked.d.next = false;
            self.failed_unlocks.d.next = self.zero_32.val();
            self.refused_writes.d.next = self.zero_32.val();
            self.last_result.d.next = self.zero_8.val();
            self.overrun.d.next = false;
            self.staged_context_id.d.next = self.zero_32.val();
            self.staged_key.d.next = self.zero_32.val();
            self.staged_access.d.next = self.zero_64.val();
            self.staged_base.d.next = self.zero_64.val();
            self.staged_pages.d.next = self.zero_32.val();
            self.staged_first_entry.d.next = self.zero_32.val();
            self.staged_entry_index.d.next = self.zero_32.val();
            self.staged_entry_value.d.next = self.zero_64.val();
            self.fault_valid.d.next = false;
            self.fault_code.d.next = self.status_ok.val();
            self.fault_write.d.next = false;
            self.fault_context.d.next = self.zero_16.val();
            self.fault_initiator.d.next = self.zero_16.val();
            self.fault_address.d.next = self.zero_64.val();
            self.fault_length.d.next = self.zero_32.val();
            self.response_valid.d.next = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{cycle, settle};
    use npmu_abi::registers::request_count_offset;
    use npmu_abi::Fault;

    const KEY: u64 = 0xfeed;

    fn bank() -> CsrBank {
        let mut bank = CsrBank::new(&Config::ICE40, Config::ICE40.queues);
        bank.connect_all();
        bank.management_key.next = KEY.into();
        bank.mmio_response_ready.next = true;
        settle(&mut bank);
        bank
    }

    fn clock(bank: &mut CsrBank, level: bool) {
        bank.clock.next = Clock { clk: level };
    }

    fn write(bank: &mut CsrBank, offset: u16, value: u64) -> bool {
        bank.mmio_request_valid.next = true;
        bank.mmio_request_write.next = true;
        bank.mmio_request_address.next = u64::from(offset).into();
        bank.mmio_request_write_data.next = value.into();
        settle(bank);
        assert!(bank.mmio_request_ready.val());
        cycle(bank, clock);
        bank.mmio_request_valid.next = false;
        settle(bank);
        let started = bank.command_start.val();
        cycle(bank, clock);
        settle(bank);
        started
    }

    fn read(bank: &mut CsrBank, offset: u16) -> u64 {
        bank.mmio_request_valid.next = true;
        bank.mmio_request_write.next = false;
        bank.mmio_request_address.next = u64::from(offset).into();
        settle(bank);
        assert!(bank.mmio_request_ready.val());
        cycle(bank, clock);
        bank.mmio_request_valid.next = false;
        settle(bank);
        assert!(!bank.mmio_request_ready.val(), "carrying out the request");
        cycle(bank, clock);
        settle(bank);
        assert!(bank.mmio_response_valid.val());
        let value = bank.mmio_response_data.val().to_u64();
        cycle(bank, clock);
        value
    }

    #[test]
    fn a_read_answer_waits_for_ready_and_blocks_the_next_request() {
        let mut bank = bank();
        bank.mmio_response_ready.next = false;
        bank.mmio_request_valid.next = true;
        bank.mmio_request_address.next = u64::from(reg::CONTEXTS.offset).into();
        cycle(&mut bank, clock);
        cycle(&mut bank, clock);
        for _ in 0..3 {
            settle(&mut bank);
            assert!(bank.mmio_response_valid.val());
            assert!(!bank.mmio_request_ready.val(), "one read at a time");
            assert_eq!(bank.mmio_response_data.val().to_u64(), 16);
            cycle(&mut bank, clock);
        }
        bank.mmio_request_valid.next = false;
        bank.mmio_response_ready.next = true;
        cycle(&mut bank, clock);
        settle(&mut bank);
        assert!(!bank.mmio_response_valid.val());
        assert_eq!(read(&mut bank, 0x1234), 0, "unmapped");
        assert_eq!(read(&mut bank, reg::IDENTITY.offset + 4), 0, "unaligned");
    }

    /// What `command_written` says in the clock after an MMIO write to `offset` is taken.
    fn command_written_after_writing(bank: &mut CsrBank, offset: u16) -> bool {
        bank.mmio_request_valid.next = true;
        bank.mmio_request_write.next = true;
        bank.mmio_request_address.next = u64::from(offset).into();
        settle(bank);
        assert!(
            !bank.command_written.val(),
            "not in the clock the write is taken"
        );
        cycle(bank, clock);
        bank.mmio_request_valid.next = false;
        settle(bank);
        let written = bank.command_written.val();
        cycle(bank, clock);
        settle(bank);
        assert!(!bank.command_written.val(), "one clock only");
        written
    }

    #[test]
    fn a_command_write_holds_requests_in_the_clock_it_is_carried_out() {
        let mut bank = bank();
        assert!(
            command_written_after_writing(&mut bank, reg::AVT_COMMAND.offset),
            "even a refused one"
        );
        assert!(!command_written_after_writing(
            &mut bank,
            reg::AVT_CONTEXT_BASE.offset
        ));
        write(&mut bank, reg::MANAGEMENT_UNLOCK.offset, KEY);
        assert!(command_written_after_writing(
            &mut bank,
            reg::AVT_COMMAND.offset
        ));
    }

    #[test]
    fn programming_needs_the_key_and_an_idle_engine() {
        let mut bank = bank();
        assert!(!write(&mut bank, reg::AVT_COMMAND.offset, 1), "locked");
        write(&mut bank, reg::AVT_CONTEXT_BASE.offset, 0x1000);
        assert_eq!(read(&mut bank, reg::REFUSED_WRITES.offset), 2);
        write(&mut bank, reg::MANAGEMENT_UNLOCK.offset, KEY + 1);
        assert_eq!(read(&mut bank, reg::FAILED_UNLOCKS.offset), 1);
        write(&mut bank, reg::MANAGEMENT_UNLOCK.offset, KEY);
        assert_eq!(read(&mut bank, reg::STATUS.offset), status::UNLOCKED.mask());
        write(&mut bank, reg::AVT_CONTEXT_BASE.offset, 0x1000);
        assert_eq!(bank.base.val().to_u64(), 0x1000);
        assert!(
            write(&mut bank, reg::AVT_COMMAND.offset, 1),
            "starts a command"
        );
        bank.engine_busy.next = true;
        assert!(
            !write(&mut bank, reg::AVT_COMMAND.offset, 1),
            "not while busy"
        );
        write(&mut bank, reg::AVT_CONTEXT_BASE.offset, 0x2000);
        assert_eq!(bank.base.val().to_u64(), 0x1000, "dropped while busy");
        let status = read(&mut bank, reg::AVT_COMMAND.offset);
        assert!(command_status::BUSY.is_set(status) && command_status::OVERRUN.is_set(status));
        bank.engine_busy.next = false;
        bank.command_done.next = true;
        bank.command_result.next = 6u64.into();
        cycle(&mut bank, clock);
        bank.command_done.next = false;
        assert_eq!(
            read(&mut bank, reg::AVT_COMMAND.offset),
            6 | command_status::OVERRUN.mask()
        );
        write(&mut bank, reg::MANAGEMENT_LOCK.offset, 0);
        assert_eq!(
            read(&mut bank, reg::AVT_CONTEXT_BASE.offset),
            0,
            "hidden when locked"
        );
    }

    #[test]
    fn outcomes_count_and_faults_are_recorded_until_cleared() {
        let mut bank = bank();
        bank.outcome_valid.next = true;
        bank.outcome.next.status = 0u64.into();
        cycle(&mut bank, clock);
        bank.outcome.next = RequestOutcome {
            status: u64::from(Fault::KeyMismatch.code()).into(),
            write: true,
            context: 9u64.into(),
            initiator: 2u64.into(),
            address: 0xdead_0000u64.into(),
            length: 77u64.into(),
        };
        cycle(&mut bank, clock);
        bank.outcome_valid.next = false;
        assert_eq!(read(&mut bank, request_count_offset(0)), 1);
        assert_eq!(
            read(&mut bank, request_count_offset(Fault::KeyMismatch.code())),
            1
        );
        let record = read(&mut bank, reg::LAST_FAULT.offset);
        assert_eq!(
            record,
            last_fault::VALID.mask()
                | last_fault::CODE.place(Fault::KeyMismatch.code().into())
                | last_fault::WRITE.mask()
                | last_fault::CONTEXT.place(9)
                | last_fault::INITIATOR.place(2)
        );
        assert_eq!(read(&mut bank, reg::LAST_FAULT_ADDRESS.offset), 0xdead_0000);
        assert_eq!(read(&mut bank, reg::LAST_FAULT_LENGTH.offset), 77);
        write(&mut bank, reg::LAST_FAULT.offset, 0);
        assert_eq!(read(&mut bank, reg::LAST_FAULT.offset), 0);
        assert_eq!(read(&mut bank, reg::LAST_FAULT_ADDRESS.offset), 0);
    }

    #[test]
    fn engine_loads_fill_the_staging_registers() {
        let mut bank = bank();
        write(&mut bank, reg::MANAGEMENT_UNLOCK.offset, KEY);
        write(&mut bank, reg::AVT_ENTRY_INDEX.offset, 41);
        bank.load_context.next = true;
        bank.loaded_key.next = 0x1234_5601u64.into();
        bank.loaded_base.next = 0x8000u64.into();
        bank.loaded_pages.next = 3u64.into();
        bank.load_entry.next = true;
        bank.loaded_entry_value.next = 0x8000_0000_0000_0007u64.into();
        bank.advance_entry_index.next = true;
        cycle(&mut bank, clock);
        bank.load_context.next = false;
        bank.load_entry.next = false;
        bank.advance_entry_index.next = false;
        assert_eq!(read(&mut bank, reg::AVT_CONTEXT_KEY.offset), 0x1234_5601);
        assert_eq!(read(&mut bank, reg::AVT_CONTEXT_BASE.offset), 0x8000);
        assert_eq!(read(&mut bank, reg::AVT_CONTEXT_PAGES.offset), 3);
        assert_eq!(
            read(&mut bank, reg::AVT_ENTRY_VALUE.offset),
            0x8000_0000_0000_0007
        );
        assert_eq!(read(&mut bank, reg::AVT_ENTRY_INDEX.offset), 42);
    }

    #[test]
    fn reset_closes_the_lock_and_clears_everything() {
        let mut bank = bank();
        write(&mut bank, reg::MANAGEMENT_UNLOCK.offset, KEY);
        write(&mut bank, reg::AVT_CONTEXT_ID.offset, 3);
        bank.outcome_valid.next = true;
        cycle(&mut bank, clock);
        bank.outcome_valid.next = false;
        assert_eq!(read(&mut bank, request_count_offset(0)), 1);
        bank.reset.next = true;
        cycle(&mut bank, clock);
        bank.reset.next = false;
        let mut clearing_clocks = 0;
        while {
            settle(&mut bank);
            !bank.mmio_request_ready.val()
        } {
            cycle(&mut bank, clock);
            clearing_clocks += 1;
        }
        assert_eq!(
            clearing_clocks,
            crate::request_counters::STATUSES,
            "no request while the counters are zeroed"
        );
        assert_eq!(read(&mut bank, request_count_offset(0)), 0);
        assert_eq!(read(&mut bank, reg::STATUS.offset), 0);
        write(&mut bank, reg::MANAGEMENT_UNLOCK.offset, KEY);
        assert_eq!(read(&mut bank, reg::AVT_CONTEXT_ID.offset), 0);
    }
}
