//! The protection core of the network interface: the CSR bank, the programming engine, the
//! AVT, the data mover and the responder, behind four ports. The command engine drives its
//! request port in the whole NI (`crate::network_interface`); on its own, as `npmu_core`,
//! tests drive every port directly.
//!
//! * **MMIO target** (BAR0): `mmio_request_*` (valid/ready; write, 16-bit byte address,
//!   64-bit data) and `mmio_response_*` (valid/ready; 64-bit read data, one per read).
//! * **Request port**: `request_*` (valid/ready; write, context, key, initiator, 64-bit
//!   network virtual address, 32-bit length), `write_data_*` (valid/ready; one beat per
//!   data-path word a write spans, bytes in the lanes of their addresses, a per-lane enable
//!   saying which to store, also for writes that fault) and `response_*` (valid/ready;
//!   status, data, last). Responses come in request order: a read answers with one beat
//!   per word it spans (one beat if it faults or is empty), a write with one beat once its
//!   data is in persistent memory.
//! * **Persistent-memory port**: `memory_request_*` (valid/ready; write, byte address
//!   aligned to the data path, data, byte enables, and the context as a sideband for
//!   monitors) and `memory_response_*` (valid/ready; one per request, in order: read data,
//!   or the acknowledgement that a write is durable).
//! * `management_key`: the board's secret that opens the management lock.
//!
//! Inputs may not depend combinationally on outputs in the same clock; ready may follow
//! valid but valid never waits for ready. `reset` is synchronous and active high; after it
//! the NI clears its tables (`STATUS.INITIALIZING`) before it takes requests.

use crate::avt::Avt;
use crate::csr::CsrBank;
use crate::mover::Mover;
use crate::programming::ProgrammingEngine;
use crate::responder::Responder;
use npmu_abi::{
    Config, ADDRESS_BITS, CONTEXT_ID_BITS, INITIATOR_BITS, KEY_BITS, LENGTH_BITS,
    MEMORY_ADDRESS_BITS, MMIO_ADDRESS_BITS, STATUS_BITS,
};
use rust_hdl::prelude::*;

#[derive(LogicBlock)]
pub struct ProtectionCore<
    const DATA_BITS: usize,
    const STROBE_BITS: usize,
    const CONTEXT_TABLE_BITS: usize,
    const ENTRY_TABLE_BITS: usize,
> {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, bool>,
    pub management_key: Signal<In, Bits<64>>,

    pub mmio_request_valid: Signal<In, bool>,
    pub mmio_request_ready: Signal<Out, bool>,
    pub mmio_request_write: Signal<In, bool>,
    pub mmio_request_address: Signal<In, Bits<MMIO_ADDRESS_BITS>>,
    pub mmio_request_write_data: Signal<In, Bits<64>>,
    pub mmio_response_valid: Signal<Out, bool>,
    pub mmio_response_ready: Signal<In, bool>,
    pub mmio_response_data: Signal<Out, Bits<64>>,
    /// The management lock is open; a queue window write the closed lock dropped, counted
    /// in REFUSED_WRITES (the command engine's queue windows are behind the lock too).
    pub lock_open: Signal<Out, bool>,
    pub queue_write_refused: Signal<In, bool>,

    pub request_valid: Signal<In, bool>,
    pub request_ready: Signal<Out, bool>,
    pub request_write: Signal<In, bool>,
    pub request_context: Signal<In, Bits<CONTEXT_ID_BITS>>,
    pub request_key: Signal<In, Bits<KEY_BITS>>,
    pub request_initiator: Signal<In, Bits<INITIATOR_BITS>>,
    pub request_address: Signal<In, Bits<ADDRESS_BITS>>,
    pub request_length: Signal<In, Bits<LENGTH_BITS>>,
    pub write_data_valid: Signal<In, bool>,
    pub write_data_ready: Signal<Out, bool>,
    pub write_data: Signal<In, Bits<DATA_BITS>>,
    pub write_data_enable: Signal<In, Bits<STROBE_BITS>>,
    pub response_valid: Signal<Out, bool>,
    pub response_ready: Signal<In, bool>,
    pub response_status: Signal<Out, Bits<STATUS_BITS>>,
    pub response_data: Signal<Out, Bits<DATA_BITS>>,
    pub response_last: Signal<Out, bool>,

    pub memory_request_valid: Signal<Out, bool>,
    pub memory_request_ready: Signal<In, bool>,
    pub memory_request_write: Signal<Out, bool>,
    pub memory_request_address: Signal<Out, Bits<MEMORY_ADDRESS_BITS>>,
    pub memory_request_write_data: Signal<Out, Bits<DATA_BITS>>,
    pub memory_request_byte_enable: Signal<Out, Bits<STROBE_BITS>>,
    pub memory_request_context: Signal<Out, Bits<CONTEXT_ID_BITS>>,
    pub memory_response_valid: Signal<In, bool>,
    pub memory_response_ready: Signal<Out, bool>,
    pub memory_response_data: Signal<In, Bits<DATA_BITS>>,

    csr: CsrBank,
    engine: ProgrammingEngine<CONTEXT_TABLE_BITS, ENTRY_TABLE_BITS>,
    avt: Avt<CONTEXT_TABLE_BITS, ENTRY_TABLE_BITS>,
    mover: Mover<DATA_BITS, STROBE_BITS>,
    responder: Responder<DATA_BITS>,
    /// Requests accepted and not yet answered in full.
    outstanding: DFF<Bits<16>>,
    // Counted a clock late, so that the request port's handshake ends in a flip-flop. Safe:
    // no request is taken from the clock a command write is carried out, and the engine
    // looks at the count no sooner than three clocks later (starting, checking, deciding).
    accepted: DFF<bool>,
    finished: DFF<bool>,
    one: Constant<Bits<16>>,
    zero: Constant<Bits<16>>,
}

impl<
        const DATA_BITS: usize,
        const STROBE_BITS: usize,
        const CONTEXT_TABLE_BITS: usize,
        const ENTRY_TABLE_BITS: usize,
    > ProtectionCore<DATA_BITS, STROBE_BITS, CONTEXT_TABLE_BITS, ENTRY_TABLE_BITS>
{
    /// A core for `config`; its `QUEUES` register reports `queues`.
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
            lock_open: Default::default(),
            queue_write_refused: Default::default(),
            request_valid: Default::default(),
            request_ready: Default::default(),
            request_write: Default::default(),
            request_context: Default::default(),
            request_key: Default::default(),
            request_initiator: Default::default(),
            request_address: Default::default(),
            request_length: Default::default(),
            write_data_valid: Default::default(),
            write_data_ready: Default::default(),
            write_data: Default::default(),
            write_data_enable: Default::default(),
            response_valid: Default::default(),
            response_ready: Default::default(),
            response_status: Default::default(),
            response_data: Default::default(),
            response_last: Default::default(),
            memory_request_valid: Default::default(),
            memory_request_ready: Default::default(),
            memory_request_write: Default::default(),
            memory_request_address: Default::default(),
            memory_request_write_data: Default::default(),
            memory_request_byte_enable: Default::default(),
            memory_request_context: Default::default(),
            memory_response_valid: Default::default(),
            memory_response_ready: Default::default(),
            memory_response_data: Default::default(),
            csr: CsrBank::new(config, queues),
            engine: ProgrammingEngine::new(config),
            avt: Avt::new(config),
            mover: Mover::new(config),
            responder: Responder::new(),
            outstanding: Default::default(),
            accepted: Default::default(),
            finished: Default::default(),
            one: Constant::new(1u64.into()),
            zero: Constant::new(0u64.into()),
        }
    }
}

impl<
        const DATA_BITS: usize,
        const STROBE_BITS: usize,
        const CONTEXT_TABLE_BITS: usize,
        const ENTRY_TABLE_BITS: usize,
    > Logic for ProtectionCore<DATA_BITS, STROBE_BITS, CONTEXT_TABLE_BITS, ENTRY_TABLE_BITS>
{
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, outstanding, accepted, finished);
        clock!(self, clock, csr, engine, avt, mover, responder);
        self.csr.reset.next = self.reset.val();
        self.engine.reset.next = self.reset.val();
        self.avt.reset.next = self.reset.val();
        self.mover.reset.next = self.reset.val();
        self.responder.reset.next = self.reset.val();

        // Host registers.
        self.csr.management_key.next = self.management_key.val();
        self.csr.mmio_request_valid.next = self.mmio_request_valid.val();
        self.mmio_request_ready.next = self.csr.mmio_request_ready.val();
        self.csr.mmio_request_write.next = self.mmio_request_write.val();
        self.csr.mmio_request_address.next = self.mmio_request_address.val();
        self.csr.mmio_request_write_data.next = self.mmio_request_write_data.val();
        self.mmio_response_valid.next = self.csr.mmio_response_valid.val();
        self.csr.mmio_response_ready.next = self.mmio_response_ready.val();
        self.mmio_response_data.next = self.csr.mmio_response_data.val();
        self.lock_open.next = self.csr.lock_open.val();
        self.csr.queue_write_refused.next = self.queue_write_refused.val();

        // CSR bank and programming engine.
        self.engine.start.next = self.csr.command_start.val();
        self.engine.command.next = self.csr.command.val();
        self.engine.context_id.next = self.csr.context_id.val();
        self.engine.key.next = self.csr.key.val();
        self.engine.access.next = self.csr.access.val();
        self.engine.base.next = self.csr.base.val();
        self.engine.pages.next = self.csr.pages.val();
        self.engine.first_entry.next = self.csr.first_entry.val();
        self.engine.entry_index.next = self.csr.entry_index.val();
        self.engine.entry_value.next = self.csr.entry_value.val();
        self.engine.drained.next = self.outstanding.q.val() == self.zero.val();
        self.csr.engine_busy.next = self.engine.busy.val();
        self.csr.engine_initializing.next = self.engine.initializing.val();
        self.csr.command_done.next = self.engine.done.val();
        self.csr.command_result.next = self.engine.result.val();
        self.csr.load_key.next = self.engine.load_key.val();
        self.csr.load_context.next = self.engine.load_context.val();
        self.csr.loaded_key.next = self.engine.loaded_key.val();
        self.csr.loaded_access.next = self.engine.loaded_access.val();
        self.csr.loaded_base.next = self.engine.loaded_base.val();
        self.csr.loaded_pages.next = self.engine.loaded_pages.val();
        self.csr.loaded_first_entry.next = self.engine.loaded_first_entry.val();
        self.csr.load_entry.next = self.engine.load_entry.val();
        self.csr.loaded_entry_value.next = self.engine.loaded_entry_value.val();
        self.csr.advance_entry_index.next = self.engine.advance_entry_index.val();

        // Programming engine and tables.
        self.avt.hold.next = self.engine.busy.val() || self.csr.command_written.val();
        self.avt.context_write_enable.next = self.engine.context_write_enable.val();
        self.avt.context_write_index.next = self.engine.context_write_index.val();
        self.avt.context_write_data.next = self.engine.context_write_data.val();
        self.avt.context_read_enable.next = self.engine.context_read_enable.val();
        self.avt.context_read_index.next = self.engine.context_read_index.val();
        self.engine.context_read_data.next = self.avt.context_read_data.val();
        self.avt.entry_write_enable.next = self.engine.entry_write_enable.val();
        self.avt.entry_write_index.next = self.engine.entry_write_index.val();
        self.avt.entry_write_data.next = self.engine.entry_write_data.val();
        self.avt.entry_read_enable.next = self.engine.entry_read_enable.val();
        self.avt.entry_read_index.next = self.engine.entry_read_index.val();
        self.engine.entry_read_data.next = self.avt.entry_read_data.val();

        // Request port into the AVT; outcomes to the counters.
        self.avt.request_valid.next = self.request_valid.val();
        self.request_ready.next = self.avt.request_ready.val();
        self.avt.request_write.next = self.request_write.val();
        self.avt.request_context.next = self.request_context.val();
        self.avt.request_key.next = self.request_key.val();
        self.avt.request_initiator.next = self.request_initiator.val();
        self.avt.request_address.next = self.request_address.val();
        self.avt.request_length.next = self.request_length.val();
        self.csr.outcome_valid.next = self.avt.outcome_valid.val();
        self.csr.outcome.next = self.avt.outcome.val();

        // AVT to data mover.
        self.mover.verdict_valid.next = self.avt.verdict_valid.val();
        self.avt.verdict_ready.next = self.mover.verdict_ready.val();
        self.mover.verdict.next = self.avt.verdict.val();
        self.mover.page_valid.next = self.avt.page_valid.val();
        self.avt.page_ready.next = self.mover.page_ready.val();
        self.mover.page.next = self.avt.page.val();

        // Data mover to memory and responder.
        self.mover.write_data_valid.next = self.write_data_valid.val();
        self.write_data_ready.next = self.mover.write_data_ready.val();
        self.mover.write_data.next = self.write_data.val();
        self.mover.write_data_enable.next = self.write_data_enable.val();
        self.memory_request_valid.next = self.mover.memory_request_valid.val();
        self.mover.memory_request_ready.next = self.memory_request_ready.val();
        self.memory_request_write.next = self.mover.memory_request_write.val();
        self.memory_request_address.next = self.mover.memory_request_address.val();
        self.memory_request_write_data.next = self.mover.memory_request_write_data.val();
        self.memory_request_byte_enable.next = self.mover.memory_request_byte_enable.val();
        self.memory_request_context.next = self.mover.memory_request_context.val();
        self.responder.record_valid.next = self.mover.record_valid.val();
        self.mover.record_ready.next = self.responder.record_ready.val();
        self.responder.record.next = self.mover.record.val();

        // Memory responses to the response port.
        self.responder.memory_response_valid.next = self.memory_response_valid.val();
        self.memory_response_ready.next = self.responder.memory_response_ready.val();
        self.responder.memory_response_data.next = self.memory_response_data.val();
        self.response_valid.next = self.responder.response_valid.val();
        self.responder.response_ready.next = self.response_ready.val();
        self.response_status.next = self.responder.response_status.val();
        self.response_data.next = self.responder.response_data.val();
        self.response_last.next = self.responder.response_last.val();

        // Requests in flight, which programming commands wait out.
        self.accepted.d.next = self.request_valid.val() && self.avt.request_ready.val();
        self.finished.d.next = self.responder.response_valid.val()
            && self.response_ready.val()
            && self.responder.response_last.val();
        if self.accepted.q.val() && !self.finished.q.val() {
            self.outstanding.d.next = self.outstanding.q.val() + self.one.val();
        }
        if self.finished.q.val() && !self.accepted.q.val() {
            self.outstanding.d.next = self.outstanding.q.val() - self.one.val();
        }
        if self.reset.val() {
            self.accepted.d.next = false;
            self.finished.d.next = false;
            self.outstanding.d.next = self.zero.val();
        }
    }
}

/// The core of a named configuration, every parameter taken from it.
macro_rules! protection_core_of {
    ($config:expr) => {
        ProtectionCore<
            { $config.data_bits() },
            { $config.data_bytes as usize },
            { $config.context_table_bits() },
            { $config.entry_table_bits() },
        >
    };
}

/// The default configuration's core.
pub type SimProtectionCore = protection_core_of!(Config::SIM);
/// The iCE40 configuration's core.
pub type Ice40ProtectionCore = protection_core_of!(Config::ICE40);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{cycle, settle};
    use npmu_abi::registers as reg;

    fn clock(ni: &mut Ice40ProtectionCore, level: bool) {
        ni.clock.next = Clock { clk: level };
    }

    #[test]
    fn out_of_reset_it_clears_its_tables_then_takes_requests() {
        let config = Config::ICE40;
        let mut ni = Ice40ProtectionCore::new(&config, config.queues);
        ni.connect_all();
        ni.reset.next = true;
        cycle(&mut ni, clock);
        ni.reset.next = false;
        ni.request_valid.next = true;
        ni.mmio_response_ready.next = true;
        let mut waited = 0;
        while {
            settle(&mut ni);
            !ni.request_ready.val()
        } {
            cycle(&mut ni, clock);
            waited += 1;
        }
        assert_eq!(waited, config.translation_entries);
        ni.request_valid.next = false;
        ni.mmio_request_valid.next = true;
        ni.mmio_request_address.next = u64::from(reg::IDENTITY.offset).into();
        cycle(&mut ni, clock);
        ni.mmio_request_valid.next = false;
        cycle(&mut ni, clock);
        settle(&mut ni);
        assert!(ni.mmio_response_valid.val());
        assert_eq!(ni.mmio_response_data.val().to_u64(), reg::identity::VALUE);
    }
}
