//! Address validation and translation (AVT): the context table, the translation table and
//! the check-and-translate pipeline between the request port and the data mover.
//!
//! A request names an operation, a context, a key, an initiator, a network virtual
//! address and a length. It moves through three stages, one request or one page a clock:
//!
//! 1. *Accept*: the request is taken and its context is read from the context table.
//!    What needs the request alone is worked out on the way in: the pages it spans, and
//!    whether it is too long or names a context the table does not have.
//! 2. *Check*: each check against the context runs on its own, into registers. Meanwhile
//!    the stage reads one translation entry per page the request spans, one a clock,
//!    holding the request port; a request that faults walks its pages too, but reads
//!    nothing it uses.
//! 3. *Translate*: the first failed check in the order of [`npmu_abi::Fault`] is the
//!    request's fault. Each entry of a request that passed is checked valid. The first
//!    page's physical page goes into the request's verdict, every later page into the page
//!    queue, whatever the checks and the entry found: what enters the queues then follows
//!    from registers alone, not from the table's output. After the last page the verdict
//!    (status, first page, offset, length, pages queued) enters the verdict queue; the data
//!    mover drops the queued pages of a request refused.
//!
//! A verdict is only issued once every page of the request is translated, so the data
//! mover never touches persistent memory for a request that faults on any page.
//! Latency: a request accepted at clock 0 has its verdict at the head of the verdict queue
//! at clock 3, and its outcome on the outcome port at clock 3.
//!
//! For the clock: the request port's ready depends on registers alone (a page counter
//! and the queues' fill), never on the context, so the long bounds arithmetic of the
//! check stage ends in registers instead of running on into whoever drives the port.

use crate::block_ram_fifo::BlockRamFifo;
use crate::fifo::Fifo;
use crate::ram::BlockRam;
use npmu_abi::{
    Config, Fault, ADDRESS_BITS, CONTEXT_ID_BITS, ENTRY_INDEX_BITS, INITIATOR_BITS, KEY_BITS,
    LENGTH_BITS, PAGE_NUMBER_BITS, STATUS_BITS,
};
use rust_hdl::prelude::*;

/// One context table entry.
#[derive(Copy, Clone, Debug, Default, PartialEq, LogicStruct)]
pub struct ContextEntry {
    pub valid: bool,
    pub key: Bits<KEY_BITS>,
    pub read: bool,
    pub write: bool,
    pub any_initiator: bool,
    pub initiator: Bits<INITIATOR_BITS>,
    pub base: Bits<ADDRESS_BITS>,
    /// At most the number of translation entries, so one bit wider than an entry index.
    pub pages: Bits<{ ENTRY_INDEX_BITS + 1 }>,
    pub first_entry: Bits<ENTRY_INDEX_BITS>,
    /// `first_entry` less the base's page number (modulo 2^16), worked out when the context
    /// is registered: a page's entry is then one addition away from its page number.
    pub entry_bias: Bits<ENTRY_INDEX_BITS>,
    /// One past the context's last byte, `base + (pages << page_shift)`, worked out when the
    /// context is registered. 65 bits wide: a context may end at 2^64 exactly.
    pub end: Bits<65>,
}

/// One translation table entry.
#[derive(Copy, Clone, Debug, Default, PartialEq, LogicStruct)]
pub struct TranslationEntry {
    pub valid: bool,
    pub page: Bits<PAGE_NUMBER_BITS>,
}

/// What the data mover needs to carry out (or refuse) one request.
#[derive(Copy, Clone, Debug, Default, PartialEq, LogicStruct)]
pub struct Verdict {
    /// 0, or the fault code.
    pub status: Bits<STATUS_BITS>,
    pub write: bool,
    pub context: Bits<CONTEXT_ID_BITS>,
    /// Physical page of the first byte.
    pub first_page: Bits<PAGE_NUMBER_BITS>,
    /// Offset of the first byte in its page.
    pub page_offset: Bits<16>,
    pub length: Bits<LENGTH_BITS>,
    /// Pages this request put in the page queue: all it walked but the first, whether it
    /// passed or not (a request too long or empty walks one).
    pub queued_pages: Bits<16>,
    /// The request passed and has bytes to move: status 0 and a length above 0, decided
    /// here so that the data mover does not compare them in the clock it starts.
    pub moves: bool,
}

/// What became of one request, for the CSR bank's counters and fault record.
#[derive(Copy, Clone, Debug, Default, PartialEq, LogicStruct)]
pub struct RequestOutcome {
    /// 0, or the fault code.
    pub status: Bits<STATUS_BITS>,
    pub write: bool,
    pub context: Bits<CONTEXT_ID_BITS>,
    pub initiator: Bits<INITIATOR_BITS>,
    pub address: Bits<64>,
    pub length: Bits<LENGTH_BITS>,
}

#[derive(LogicBlock)]
pub struct Avt<const CONTEXT_TABLE_BITS: usize, const ENTRY_TABLE_BITS: usize> {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, bool>,
    /// Take no new requests (a programming command is waiting for the pipeline to drain);
    /// the context table's read port is the programming engine's meanwhile.
    pub hold: Signal<In, bool>,

    pub request_valid: Signal<In, bool>,
    pub request_ready: Signal<Out, bool>,
    pub request_write: Signal<In, bool>,
    pub request_context: Signal<In, Bits<CONTEXT_ID_BITS>>,
    pub request_key: Signal<In, Bits<KEY_BITS>>,
    pub request_initiator: Signal<In, Bits<INITIATOR_BITS>>,
    pub request_address: Signal<In, Bits<ADDRESS_BITS>>,
    pub request_length: Signal<In, Bits<LENGTH_BITS>>,

    pub verdict_valid: Signal<Out, bool>,
    pub verdict_ready: Signal<In, bool>,
    pub verdict: Signal<Out, Verdict>,

    pub page_valid: Signal<Out, bool>,
    pub page_ready: Signal<In, bool>,
    pub page: Signal<Out, Bits<PAGE_NUMBER_BITS>>,

    /// Every request's outcome, one clock after its verdict enters the verdict queue.
    pub outcome_valid: Signal<Out, bool>,
    pub outcome: Signal<Out, RequestOutcome>,

    /// Table access for the programming engine; its reads only while the pipeline is empty.
    pub context_write_enable: Signal<In, bool>,
    pub context_write_index: Signal<In, Bits<CONTEXT_TABLE_BITS>>,
    pub context_write_data: Signal<In, ContextEntry>,
    pub context_read_enable: Signal<In, bool>,
    pub context_read_index: Signal<In, Bits<CONTEXT_TABLE_BITS>>,
    pub context_read_data: Signal<Out, ContextEntry>,
    pub entry_write_enable: Signal<In, bool>,
    pub entry_write_index: Signal<In, Bits<ENTRY_TABLE_BITS>>,
    pub entry_write_data: Signal<In, TranslationEntry>,
    pub entry_read_enable: Signal<In, bool>,
    pub entry_read_index: Signal<In, Bits<ENTRY_TABLE_BITS>>,
    pub entry_read_data: Signal<Out, TranslationEntry>,

    context_table: BlockRam<ContextEntry, CONTEXT_TABLE_BITS>,
    entry_table: BlockRam<TranslationEntry, ENTRY_TABLE_BITS>,
    /// Two deep: the data mover takes one verdict a request, so deeper only costs flip-flops.
    verdicts: Fifo<Verdict, 1>,
    pages: BlockRamFifo<Bits<32>, 8>,

    // Check stage: the request whose context the context table is presenting.
    check_valid: DFF<bool>,
    check_write: DFF<bool>,
    check_context: DFF<Bits<CONTEXT_ID_BITS>>,
    check_key: DFF<Bits<KEY_BITS>>,
    check_initiator: DFF<Bits<INITIATOR_BITS>>,
    check_address: DFF<Bits<64>>,
    check_length: DFF<Bits<LENGTH_BITS>>,
    /// One past the request's last byte; 65 bits wide, so the sum cannot wrap.
    check_end: DFF<Bits<65>>,
    check_too_long: DFF<bool>,
    check_context_exists: DFF<bool>,
    check_empty: DFF<bool>,
    check_page_offset: DFF<Bits<16>>,
    /// Low bits of the network virtual page being looked up.
    check_page: DFF<Bits<16>>,
    /// Pages of this request still to look up after this one.
    check_pages_left: DFF<Bits<16>>,
    /// This is the request's first page.
    check_first: DFF<bool>,
    below_base: Signal<Local, bool>,
    past_end: Signal<Local, bool>,
    check_last: Signal<Local, bool>,
    entry_index: Signal<Local, Bits<16>>,
    request_page_offset: Signal<Local, Bits<64>>,
    request_last_page: Signal<Local, Bits<64>>,
    request_empty: Signal<Local, bool>,
    request_oversized: Signal<Local, bool>,
    takes_request: Signal<Local, bool>,
    accept: Signal<Local, bool>,
    advance: Signal<Local, bool>,

    // Translate stage: the page whose entry the translation table is presenting.
    translate_valid: DFF<bool>,
    translate_last: DFF<bool>,
    // What each check found, ranked here in fault order.
    translate_too_long: DFF<bool>,
    translate_no_context: DFF<bool>,
    translate_context_invalid: DFF<bool>,
    translate_key_mismatch: DFF<bool>,
    translate_initiator_refused: DFF<bool>,
    translate_permission_denied: DFF<bool>,
    translate_out_of_bounds: DFF<bool>,
    translate_empty: DFF<bool>,
    /// The request's first page: it never goes into the page queue.
    translate_first: DFF<bool>,
    translate_fault: Signal<Local, Bits<STATUS_BITS>>,
    /// The request passed its checks and has bytes: its entries count.
    translate_lookup: Signal<Local, bool>,
    translate_write: DFF<bool>,
    translate_context: DFF<Bits<CONTEXT_ID_BITS>>,
    translate_initiator: DFF<Bits<INITIATOR_BITS>>,
    translate_address: DFF<Bits<64>>,
    translate_length: DFF<Bits<LENGTH_BITS>>,
    translate_page_offset: DFF<Bits<16>>,
    // What the request's earlier pages found.
    first_page: DFF<Bits<PAGE_NUMBER_BITS>>,
    page_missing: DFF<bool>,
    queued_pages: DFF<Bits<16>>,
    queues_page: Signal<Local, bool>,
    missing_now: Signal<Local, bool>,
    stall: Signal<Local, bool>,
    outcome_issued: DFF<bool>,
    outcome_held: DFF<RequestOutcome>,

    max_request_bytes: Constant<Bits<32>>,
    contexts: Constant<Bits<32>>,
    /// 32 bits wide: it is also a select index, which Verilator wants no narrower.
    page_shift: Constant<Bits<32>>,
    page_offset_mask: Constant<Bits<64>>,
    status_ok: Constant<Bits<4>>,
    request_too_long: Constant<Bits<4>>,
    no_such_context: Constant<Bits<4>>,
    context_invalid: Constant<Bits<4>>,
    key_mismatch: Constant<Bits<4>>,
    initiator_not_allowed: Constant<Bits<4>>,
    permission_denied: Constant<Bits<4>>,
    out_of_bounds: Constant<Bits<4>>,
    page_not_mapped: Constant<Bits<4>>,
    zero_16: Constant<Bits<16>>,
    one_16: Constant<Bits<16>>,
    zero_32: Constant<Bits<32>>,
    one_64: Constant<Bits<64>>,
}

fn status(fault: Fault) -> Constant<Bits<4>> {
    Constant::new(u64::from(fault.code()).into())
}

impl<const CONTEXT_TABLE_BITS: usize, const ENTRY_TABLE_BITS: usize>
    Avt<CONTEXT_TABLE_BITS, ENTRY_TABLE_BITS>
{
    pub fn new(config: &Config) -> Self {
        assert_eq!(config.contexts, 1 << CONTEXT_TABLE_BITS);
        assert_eq!(config.translation_entries, 1 << ENTRY_TABLE_BITS);
        Self {
            clock: Default::default(),
            reset: Default::default(),
            hold: Default::default(),
            request_valid: Default::default(),
            request_ready: Default::default(),
            request_write: Default::default(),
            request_context: Default::default(),
            request_key: Default::default(),
            request_initiator: Default::default(),
            request_address: Default::default(),
            request_length: Default::default(),
            verdict_valid: Default::default(),
            verdict_ready: Default::default(),
            verdict: Default::default(),
            page_valid: Default::default(),
            page_ready: Default::default(),
            page: Default::default(),
            outcome_valid: Default::default(),
            outcome: Default::default(),
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
            context_table: Default::default(),
            entry_table: Default::default(),
            verdicts: Default::default(),
            pages: Default::default(),
            check_valid: Default::default(),
            check_write: Default::default(),
            check_context: Default::default(),
            check_key: Default::default(),
            check_initiator: Default::default(),
            check_address: Default::default(),
            check_length: Default::default(),
            check_end: Default::default(),
            check_too_long: Default::default(),
            check_context_exists: Default::default(),
            check_empty: Default::default(),
            check_page_offset: Default::default(),
            check_page: Default::default(),
            check_pages_left: Default::default(),
            check_first: Default::default(),
            below_base: Default::default(),
            past_end: Default::default(),
            check_last: Default::default(),
            entry_index: Default::default(),
            request_page_offset: Default::default(),
            request_last_page: Default::default(),
            request_empty: Default::default(),
            request_oversized: Default::default(),
            takes_request: Default::default(),
            accept: Default::default(),
            advance: Default::default(),
            translate_valid: Default::default(),
            translate_last: Default::default(),
            translate_too_long: Default::default(),
            translate_no_context: Default::default(),
            translate_context_invalid: Default::default(),
            translate_key_mismatch: Default::default(),
            translate_initiator_refused: Default::default(),
            translate_permission_denied: Default::default(),
            translate_out_of_bounds: Default::default(),
            translate_empty: Default::default(),
            translate_first: Default::default(),
            translate_fault: Default::default(),
            translate_lookup: Default::default(),
            translate_write: Default::default(),
            translate_context: Default::default(),
            translate_initiator: Default::default(),
            translate_address: Default::default(),
            translate_length: Default::default(),
            translate_page_offset: Default::default(),
            first_page: Default::default(),
            page_missing: Default::default(),
            queued_pages: Default::default(),
            queues_page: Default::default(),
            missing_now: Default::default(),
            stall: Default::default(),
            outcome_issued: Default::default(),
            outcome_held: Default::default(),
            max_request_bytes: Constant::new(u64::from(config.max_request_bytes).into()),
            contexts: Constant::new(u64::from(config.contexts).into()),
            page_shift: Constant::new(u64::from(config.page_shift).into()),
            page_offset_mask: Constant::new((config.page_bytes() - 1).into()),
            status_ok: Constant::new(0u64.into()),
            request_too_long: status(Fault::RequestTooLong),
            no_such_context: status(Fault::NoSuchContext),
            context_invalid: status(Fault::ContextInvalid),
            key_mismatch: status(Fault::KeyMismatch),
            initiator_not_allowed: status(Fault::InitiatorNotAllowed),
            permission_denied: status(Fault::PermissionDenied),
            out_of_bounds: status(Fault::OutOfBounds),
            page_not_mapped: status(Fault::PageNotMapped),
            zero_16: Constant::new(0u64.into()),
            one_16: Constant::new(1u64.into()),
            zero_32: Constant::new(0u64.into()),
            one_64: Constant::new(1u64.into()),
        }
    }
}

impl<const CONTEXT_TABLE_BITS: usize, const ENTRY_TABLE_BITS: usize> Logic
    for Avt<CONTEXT_TABLE_BITS, ENTRY_TABLE_BITS>
{
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            check_valid,
            check_write,
            check_context,
            check_key,
            check_initiator,
            check_address,
            check_length,
            check_end,
            check_too_long,
            check_context_exists,
            check_empty,
            check_page_offset,
            check_page,
            check_pages_left,
            check_first,
            translate_valid,
            translate_last,
            translate_too_long,
            translate_no_context,
            translate_context_invalid,
            translate_key_mismatch,
            translate_initiator_refused,
            translate_permission_denied,
            translate_out_of_bounds,
            translate_empty,
            translate_first,
            translate_write,
            translate_context,
            translate_initiator,
            translate_address,
            translate_length,
            translate_page_offset,
            first_page,
            page_missing,
            queued_pages,
            outcome_issued,
            outcome_held
        );
        clock!(self, clock, context_table, entry_table, verdicts, pages);
        self.verdicts.reset.next = self.reset.val();
        self.pages.reset.next = self.reset.val();

        // Check stage: each check on its own, into the translate stage's registers; the
        // translate stage ranks what they found in fault order. The bounds compare the
        // request's first byte with the context's and one past the request's last byte with
        // the context's end, both sums taken 65 bits wide where nothing wraps; an address
        // near 2^64 with any length therefore lands past the end, never back inside.
        self.below_base.next = self.check_address.q.val() < self.context_table.read_data.val().base;
        self.past_end.next = self.check_end.q.val() > self.context_table.read_data.val().end;

        // The entry of the page being looked up. Bases are page aligned, so the page's
        // index in its context is its virtual page less the base's, with no borrow from
        // the offset within the page.
        self.entry_index.next =
            self.context_table.read_data.val().entry_bias + self.check_page.q.val();
        self.check_last.next = self.check_pages_left.q.val() == self.zero_16.val();

        // Translate stage: the first failed check, in the order of the fault codes.
        self.translate_fault.next = self.status_ok.val();
        if self.translate_too_long.q.val() {
            self.translate_fault.next = self.request_too_long.val();
        } else if self.translate_no_context.q.val() {
            self.translate_fault.next = self.no_such_context.val();
        } else if self.translate_context_invalid.q.val() {
            self.translate_fault.next = self.context_invalid.val();
        } else if self.translate_key_mismatch.q.val() {
            self.translate_fault.next = self.key_mismatch.val();
        } else if self.translate_initiator_refused.q.val() {
            self.translate_fault.next = self.initiator_not_allowed.val();
        } else if self.translate_permission_denied.q.val() {
            self.translate_fault.next = self.permission_denied.val();
        } else if self.translate_out_of_bounds.q.val() {
            self.translate_fault.next = self.out_of_bounds.val();
        }
        self.translate_lookup.next =
            (self.translate_fault.val() == self.status_ok.val()) && !self.translate_empty.q.val();

        self.missing_now.next =
            self.translate_lookup.val() && !self.entry_table.read_data.val().valid;
        self.queues_page.next = self.translate_valid.q.val() && !self.translate_first.q.val();
        self.stall.next = self.translate_valid.q.val()
            && ((self.queues_page.val() && !self.pages.push_ready.val())
                || (self.translate_last.q.val() && !self.verdicts.push_ready.val()));

        self.pages.push_valid.next = self.queues_page.val() && !self.stall.val();
        self.pages.push_data.next = self.entry_table.read_data.val().page;

        self.verdicts.push_valid.next =
            self.translate_valid.q.val() && self.translate_last.q.val() && !self.stall.val();
        self.verdicts.push_data.next.status = self.translate_fault.val();
        if (self.translate_fault.val() == self.status_ok.val())
            && (self.page_missing.q.val() || self.missing_now.val())
        {
            self.verdicts.push_data.next.status = self.page_not_mapped.val();
        }
        self.verdicts.push_data.next.write = self.translate_write.q.val();
        self.verdicts.push_data.next.context = self.translate_context.q.val();
        self.verdicts.push_data.next.first_page = self.first_page.q.val();
        if self.translate_first.q.val() {
            self.verdicts.push_data.next.first_page = self.entry_table.read_data.val().page;
        }
        self.verdicts.push_data.next.page_offset = self.translate_page_offset.q.val();
        self.verdicts.push_data.next.length = self.translate_length.q.val();
        self.verdicts.push_data.next.moves =
            self.translate_lookup.val() && !self.page_missing.q.val() && !self.missing_now.val();
        self.verdicts.push_data.next.queued_pages = self.queued_pages.q.val();
        if self.queues_page.val() {
            self.verdicts.push_data.next.queued_pages =
                self.queued_pages.q.val() + self.one_16.val();
        }

        // The outcome leaves through registers: the status counters it feeds are many.
        self.outcome_issued.d.next = self.verdicts.push_valid.val();
        self.outcome_held.d.next.status = self.verdicts.push_data.val().status;
        self.outcome_held.d.next.write = self.translate_write.q.val();
        self.outcome_held.d.next.context = self.translate_context.q.val();
        self.outcome_held.d.next.initiator = self.translate_initiator.q.val();
        self.outcome_held.d.next.address = self.translate_address.q.val();
        self.outcome_held.d.next.length = self.translate_length.q.val();
        self.outcome_valid.next = self.outcome_issued.q.val();
        self.outcome.next = self.outcome_held.q.val();

        if self.translate_valid.q.val() && !self.stall.val() {
            if self.translate_last.q.val() {
                self.page_missing.d.next = false;
                self.queued_pages.d.next = self.zero_16.val();
            } else {
                if self.translate_first.q.val() {
                    self.first_page.d.next = self.entry_table.read_data.val().page;
                }
                if self.missing_now.val() {
                    self.page_missing.d.next = true;
                }
                if self.queues_page.val() {
                    self.queued_pages.d.next = self.queued_pages.q.val() + self.one_16.val();
                }
            }
        }

        // The check stage hands one page a clock to the translate stage, and takes a new
        // request when it hands over its last.
        self.advance.next = self.check_valid.q.val() && !self.stall.val();
        self.takes_request.next = !self.hold.val()
            && !self.reset.val()
            && !self.stall.val()
            && (!self.check_valid.q.val() || self.check_last.val());
        self.request_ready.next = self.takes_request.val();
        self.accept.next = self.request_valid.val() && self.takes_request.val();
        if !self.stall.val() {
            self.translate_valid.d.next = self.check_valid.q.val();
            self.translate_last.d.next = self.check_last.val();
            self.translate_too_long.d.next = self.check_too_long.q.val();
            self.translate_no_context.d.next = !self.check_context_exists.q.val();
            self.translate_context_invalid.d.next = !self.context_table.read_data.val().valid;
            self.translate_key_mismatch.d.next =
                self.check_key.q.val() != self.context_table.read_data.val().key;
            self.translate_initiator_refused.d.next =
                !self.context_table.read_data.val().any_initiator
                    && (self.check_initiator.q.val()
                        != self.context_table.read_data.val().initiator);
            self.translate_permission_denied.d.next = (self.check_write.q.val()
                && !self.context_table.read_data.val().write)
                || (!self.check_write.q.val() && !self.context_table.read_data.val().read);
            self.translate_out_of_bounds.d.next = self.below_base.val() || self.past_end.val();
            self.translate_empty.d.next = self.check_empty.q.val();
            self.translate_first.d.next = self.check_first.q.val();
            self.translate_write.d.next = self.check_write.q.val();
            self.translate_context.d.next = self.check_context.q.val();
            self.translate_initiator.d.next = self.check_initiator.q.val();
            self.translate_address.d.next = self.check_address.q.val();
            self.translate_length.d.next = self.check_length.q.val();
            self.translate_page_offset.d.next = self.check_page_offset.q.val();
        }
        if self.advance.val() {
            self.check_page.d.next = self.check_page.q.val() + self.one_16.val();
            self.check_pages_left.d.next = self.check_pages_left.q.val() - self.one_16.val();
            self.check_first.d.next = false;
            if self.check_last.val() {
                self.check_valid.d.next = false;
            }
        }

        // Accept: what the request alone decides. The index of its last page counts from
        // its first; a request that is empty or too long walks one page and reads nothing.
        self.request_page_offset.next = self.request_address.val() & self.page_offset_mask.val();
        self.request_last_page.next = (self.request_page_offset.val()
            + bit_cast::<64, 32>(self.request_length.val())
            - self.one_64.val())
            >> self.page_shift.val();
        self.request_empty.next = self.request_length.val() == self.zero_32.val();
        self.request_oversized.next = self.request_length.val() > self.max_request_bytes.val();
        if self.accept.val() {
            self.check_valid.d.next = true;
            self.check_write.d.next = self.request_write.val();
            self.check_context.d.next = self.request_context.val();
            self.check_key.d.next = self.request_key.val();
            self.check_initiator.d.next = self.request_initiator.val();
            self.check_address.d.next = self.request_address.val();
            self.check_length.d.next = self.request_length.val();
            self.check_end.d.next = bit_cast::<65, 64>(self.request_address.val())
                + bit_cast::<65, 32>(self.request_length.val());
            self.check_too_long.d.next = self.request_oversized.val();
            self.check_context_exists.d.next =
                bit_cast::<32, 16>(self.request_context.val()) < self.contexts.val();
            self.check_empty.d.next = self.request_empty.val();
            self.check_page_offset.d.next = self.request_page_offset.val().get_bits::<16>(0);
            self.check_page.d.next = self
                .request_address
                .val()
                .get_bits::<16>(self.page_shift.val().index());
            self.check_pages_left.d.next = self.request_last_page.val().get_bits::<16>(0);
            if self.request_empty.val() || self.request_oversized.val() {
                self.check_pages_left.d.next = self.zero_16.val();
            }
            self.check_first.d.next = true;
        }

        // Table ports: the pipeline reads while it runs, the programming engine while the
        // pipeline is empty. Which of them drives the address follows from registers (the
        // hold, the check stage's occupancy), not from the engine's decoded state.
        self.context_table.read_enable.next = self.accept.val() || self.context_read_enable.val();
        self.context_table.read_address.next =
            self.request_context.val().get_bits::<CONTEXT_TABLE_BITS>(0);
        if self.hold.val() {
            self.context_table.read_address.next = self.context_read_index.val();
        }
        self.context_read_data.next = self.context_table.read_data.val();
        self.context_table.write_enable.next = self.context_write_enable.val();
        self.context_table.write_address.next = self.context_write_index.val();
        self.context_table.write_data.next = self.context_write_data.val();

        self.entry_table.read_enable.next = self.advance.val() || self.entry_read_enable.val();
        self.entry_table.read_address.next = self.entry_index.val().get_bits::<ENTRY_TABLE_BITS>(0);
        if !self.check_valid.q.val() {
            self.entry_table.read_address.next = self.entry_read_index.val();
        }
        self.entry_read_data.next = self.entry_table.read_data.val();
        self.entry_table.write_enable.next = self.entry_write_enable.val();
        self.entry_table.write_address.next = self.entry_write_index.val();
        self.entry_table.write_data.next = self.entry_write_data.val();

        self.verdict_valid.next = self.verdicts.pop_valid.val();
        self.verdict.next = self.verdicts.pop_data.val();
        self.verdicts.pop_ready.next = self.verdict_ready.val();
        self.page_valid.next = self.pages.pop_valid.val();
        self.page.next = self.pages.pop_data.val();
        self.pages.pop_ready.next = self.page_ready.val();

        if self.reset.val() {
            self.check_valid.d.next = false;
            self.translate_valid.d.next = false;
            self.page_missing.d.next = false;
            self.queued_pages.d.next = self.zero_16.val();
            self.outcome_issued.d.next = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{cycle, settle};
    use npmu_abi::program::{self, ContextSettings};
    use npmu_abi::{Operation, Request};
    use npmu_model::{NetworkInterface, SparseMemory};
    use rand::{Rng, SeedableRng};
    use std::collections::VecDeque;

    type SmallAvt = Avt<4, 8>;
    const CONFIG: Config = Config::ICE40;
    const KEY: u64 = 99;

    fn clock(avt: &mut SmallAvt, level: bool) {
        avt.clock.next = Clock { clk: level };
    }

    fn idle_inputs(avt: &mut SmallAvt) {
        avt.reset.next = false;
        avt.hold.next = false;
        avt.request_valid.next = false;
        avt.verdict_ready.next = false;
        avt.page_ready.next = false;
        avt.context_write_enable.next = false;
        avt.context_read_enable.next = false;
        avt.entry_write_enable.next = false;
        avt.entry_read_enable.next = false;
    }

    /// The model's tables, copied into the RTL's through the table ports.
    fn load_tables(avt: &mut SmallAvt, model: &NetworkInterface) {
        for id in 0..CONFIG.contexts {
            let context = model.context(id as u16).unwrap();
            idle_inputs(avt);
            avt.context_write_enable.next = true;
            avt.context_write_index.next = u64::from(id).into();
            avt.context_write_data.next = ContextEntry {
                valid: context.valid,
                key: u64::from(context.key).into(),
                read: context.read,
                write: context.write,
                any_initiator: context.any_initiator,
                initiator: u64::from(context.initiator).into(),
                base: context.base.into(),
                pages: u64::from(context.pages).into(),
                first_entry: u64::from(context.first_entry).into(),
                entry_bias: u64::from(
                    context
                        .first_entry
                        .wrapping_sub((context.base >> CONFIG.page_shift) as u32)
                        & 0xffff,
                )
                .into(),
                end: {
                    let end =
                        u128::from(context.base) + (u128::from(context.pages) << CONFIG.page_shift);
                    Bits::<65>::from(end as u64).replace_bit(64, end >> 64 != 0)
                },
            };
            cycle(avt, clock);
        }
        for index in 0..CONFIG.translation_entries {
            let entry = model.entry(index).unwrap();
            idle_inputs(avt);
            avt.entry_write_enable.next = true;
            avt.entry_write_index.next = u64::from(index).into();
            avt.entry_write_data.next = TranslationEntry {
                valid: entry.valid,
                page: u64::from(entry.page).into(),
            };
            cycle(avt, clock);
        }
    }

    /// Contexts 0..8 over scattered pages, with holes, odd permissions and initiators.
    fn programmed_model(random: &mut impl Rng) -> NetworkInterface {
        let mut model = NetworkInterface::new(CONFIG, KEY, SparseMemory::new()).unwrap();
        program::unlock(&mut model, KEY).unwrap();
        let pages: Vec<Option<u32>> = (0..CONFIG.translation_entries)
            .map(|_| random.gen_bool(0.9).then(|| random.gen_range(0..128)))
            .collect();
        program::write_entries(&mut model, 0, &pages).unwrap();
        for id in 0..8u16 {
            let settings = ContextSettings {
                tag: random.gen(),
                read: random.gen_bool(0.8),
                write: random.gen_bool(0.8),
                initiator: random.gen_bool(0.5).then(|| random.gen_range(0..3)),
                base: random.gen_range(0..4u64) << 40 | u64::from(id) << 20,
                pages: random.gen_range(1..=24),
                first_entry: random.gen_range(0..200),
            };
            program::register_context(&mut model, id, &settings).unwrap();
        }
        model
    }

    fn random_request(random: &mut impl Rng, model: &NetworkInterface) -> Request {
        let context = random.gen_range(0..20u16);
        let (key, base, bytes) = model
            .context(context)
            .map(|c| (c.key, c.base, u64::from(c.pages) << CONFIG.page_shift))
            .unwrap_or_default();
        let length = match random.gen_range(0..8) {
            0 => 0,
            1 => random.gen_range(1..8),
            2 => CONFIG.max_request_bytes + random.gen_range(0..3),
            _ => random.gen_range(1..4 * CONFIG.page_bytes() as u32),
        };
        let address = match random.gen_range(0..6) {
            0 => u64::MAX - random.gen_range(0..16),
            1 => (base + bytes).wrapping_sub(random.gen_range(0..64)),
            _ => base + random.gen_range(0..bytes.max(1)),
        };
        Request {
            operation: if random.gen() {
                Operation::Write
            } else {
                Operation::Read
            },
            context,
            key: if random.gen_bool(0.9) {
                key
            } else {
                random.gen()
            },
            initiator: random.gen_range(0..3),
            address,
            length,
        }
    }

    #[test]
    fn verdicts_and_pages_match_the_model_under_random_traffic_and_stalls() {
        let seed = npmu_test_seed::seed("avt random traffic", 11);
        let mut random = rand::rngs::StdRng::seed_from_u64(seed);
        let model = programmed_model(&mut random);
        let mut avt = SmallAvt::new(&CONFIG);
        avt.connect_all();
        load_tables(&mut avt, &model);
        let requests: Vec<Request> = (0..600)
            .map(|_| random_request(&mut random, &model))
            .collect();
        let mut next = 0;
        let mut expected: VecDeque<Request> = VecDeque::new();
        let mut owed_pages: VecDeque<Option<u64>> = VecDeque::new();
        let mut faults_seen = std::collections::HashSet::new();
        let mut checked = 0;
        while checked < requests.len() {
            idle_inputs(&mut avt);
            if next < requests.len() {
                let request = requests[next];
                avt.request_valid.next = true;
                avt.request_write.next = request.operation == Operation::Write;
                avt.request_context.next = u64::from(request.context).into();
                avt.request_key.next = u64::from(request.key).into();
                avt.request_initiator.next = u64::from(request.initiator).into();
                avt.request_address.next = request.address.into();
                avt.request_length.next = u64::from(request.length).into();
            }
            avt.verdict_ready.next = owed_pages.is_empty() && random.gen_bool(0.6);
            avt.page_ready.next = !owed_pages.is_empty() && random.gen_bool(0.6);
            settle(&mut avt);
            if avt.page_valid.val() && avt.page_ready.val() {
                if let Some(page) = owed_pages.pop_front().expect("a page nobody queued") {
                    assert_eq!(avt.page.val().to_u64(), page);
                }
            }
            if avt.verdict_valid.val() && avt.verdict_ready.val() {
                let request = expected.pop_front().expect("a verdict without a request");
                let verdict = avt.verdict.val();
                let outcome = model.translate(&request);
                let status = npmu_abi::encode_status(outcome.as_ref().map(|_| ()).map_err(|f| *f));
                assert_eq!(verdict.status.to_u64(), u64::from(status), "{request:?}");
                faults_seen.insert(status);
                assert_eq!(verdict.write, request.operation == Operation::Write);
                assert_eq!(verdict.length.to_u64(), u64::from(request.length));
                assert_eq!(verdict.moves, status == 0 && request.length > 0);
                if let Ok(segments) = outcome {
                    if let Some(first) = segments.first() {
                        assert_eq!(
                            verdict.first_page.to_u64(),
                            first.address >> CONFIG.page_shift
                        );
                        assert_eq!(
                            verdict.page_offset.to_u64(),
                            first.address % CONFIG.page_bytes()
                        );
                    }
                    assert_eq!(
                        verdict.queued_pages.to_u64() as usize,
                        segments.len().saturating_sub(1)
                    );
                    for segment in segments.iter().skip(1) {
                        owed_pages.push_back(Some(segment.address >> CONFIG.page_shift));
                    }
                } else {
                    // Pages queued before the fault are owed too: popped and dropped.
                    for _ in 0..verdict.queued_pages.to_u64() {
                        owed_pages.push_back(None);
                    }
                }
                checked += 1;
            }
            if avt.request_valid.val() && avt.request_ready.val() {
                expected.push_back(requests[next]);
                next += 1;
            }
            cycle(&mut avt, clock);
        }
        assert_eq!(
            faults_seen.len(),
            9,
            "the traffic should raise every fault: {faults_seen:?}"
        );
    }

    fn drive_request(avt: &mut SmallAvt, request: &Request) {
        avt.request_valid.next = true;
        avt.request_write.next = request.operation == Operation::Write;
        avt.request_context.next = u64::from(request.context).into();
        avt.request_key.next = u64::from(request.key).into();
        avt.request_initiator.next = u64::from(request.initiator).into();
        avt.request_address.next = request.address.into();
        avt.request_length.next = u64::from(request.length).into();
    }

    /// Context 0: eight fully mapped pages at 0x100000, open to any initiator.
    fn mapped_model() -> (NetworkInterface, u32) {
        let mut model = NetworkInterface::new(CONFIG, KEY, SparseMemory::new()).unwrap();
        program::unlock(&mut model, KEY).unwrap();
        let pages: Vec<Option<u32>> = (10..18).map(Some).collect();
        program::write_entries(&mut model, 0, &pages).unwrap();
        let settings = ContextSettings {
            tag: 5,
            read: true,
            write: true,
            initiator: None,
            base: 0x100000,
            pages: 8,
            first_entry: 0,
        };
        let key = program::register_context(&mut model, 0, &settings).unwrap();
        (model, key)
    }

    /// Accepts copies of a request spanning `pages` pages with every consumer ready;
    /// returns the cycles of each acceptance and of each verdict.
    fn timeline(pages: u64, count: usize) -> (Vec<usize>, Vec<usize>) {
        let (model, key) = mapped_model();
        let request = Request {
            operation: Operation::Read,
            context: 0,
            key,
            initiator: 0,
            address: 0x100000 + 16,
            length: (pages * CONFIG.page_bytes()) as u32 - 32,
        };
        assert_eq!(model.translate(&request).unwrap().len() as u64, pages);
        timeline_of(&model, &request, 0, pages - 1, count)
    }

    /// Accepts `count` copies of `request`, each of whose verdicts must carry `status` and
    /// `queued` pages queued.
    fn timeline_of(
        model: &NetworkInterface,
        request: &Request,
        status: u64,
        queued: u64,
        count: usize,
    ) -> (Vec<usize>, Vec<usize>) {
        let mut avt = SmallAvt::new(&CONFIG);
        avt.connect_all();
        load_tables(&mut avt, model);
        let (mut accepted, mut verdicts) = (vec![], vec![]);
        for now in 0..count * 10 {
            idle_inputs(&mut avt);
            if accepted.len() < count {
                drive_request(&mut avt, request);
            }
            avt.verdict_ready.next = true;
            avt.page_ready.next = true;
            settle(&mut avt);
            if avt.verdict_valid.val() {
                assert_eq!(avt.verdict.val().status.to_u64(), status);
                assert_eq!(avt.verdict.val().queued_pages.to_u64(), queued);
                verdicts.push(now);
            }
            if avt.request_valid.val() && avt.request_ready.val() {
                accepted.push(now);
            }
            cycle(&mut avt, clock);
        }
        (accepted, verdicts)
    }

    #[test]
    fn one_lookup_per_clock_and_a_three_clock_latency() {
        let (accepted, verdicts) = timeline(1, 20);
        assert_eq!(
            accepted,
            (0..20).collect::<Vec<_>>(),
            "back-to-back acceptance"
        );
        let latency: Vec<usize> = verdicts.iter().zip(&accepted).map(|(v, a)| v - a).collect();
        assert_eq!(latency, vec![3; 20]);
    }

    #[test]
    fn a_request_of_n_pages_holds_the_port_for_n_lookups() {
        let (accepted, verdicts) = timeline(3, 4);
        assert_eq!(accepted, vec![0, 3, 6, 9]);
        assert_eq!(verdicts, vec![5, 8, 11, 14]);
    }

    #[test]
    fn a_refused_request_walks_its_pages_and_a_too_long_one_takes_one_clock() {
        let (model, key) = mapped_model();
        let wrong_key = Request {
            operation: Operation::Write,
            context: 0,
            key: key ^ 1,
            initiator: 0,
            address: 0x100000 + 16,
            length: 3 * CONFIG.page_bytes() as u32 - 32,
        };
        let key_mismatch = u64::from(Fault::KeyMismatch.code());
        let (accepted, verdicts) = timeline_of(&model, &wrong_key, key_mismatch, 2, 4);
        assert_eq!(
            accepted,
            vec![0, 3, 6, 9],
            "the port is held a clock a page"
        );
        assert_eq!(verdicts, vec![5, 8, 11, 14]);

        let too_long = Request {
            length: CONFIG.max_request_bytes + 1,
            ..wrong_key
        };
        let (accepted, verdicts) = timeline_of(
            &model,
            &too_long,
            u64::from(Fault::RequestTooLong.code()),
            0,
            4,
        );
        assert_eq!(accepted, vec![0, 1, 2, 3], "its length is never walked");
        assert_eq!(verdicts, vec![3, 4, 5, 6]);
    }
}
