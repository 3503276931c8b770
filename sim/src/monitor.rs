//! A monitor on the NI's ports that fails the run at once when the NI touches persistent
//! memory outside what its tables allow, or breaks the ready/valid protocol.

use crate::ports::{Inputs, Outputs};
use npmu_abi::Config;
use npmu_model::{Context, Entry, Memory, NetworkInterface};
use std::collections::{HashMap, HashSet};

/// The tables as a set of requests saw them.
struct Tables {
    contexts: Vec<Context>,
    entries: Vec<Entry>,
    /// Physical pages each context maps, worked out when first needed.
    mapped: HashMap<u16, HashSet<u32>>,
}

impl Tables {
    fn of<M: Memory>(model: &NetworkInterface<M>) -> Self {
        let config = model.config();
        Self {
            contexts: (0..config.contexts)
                .map(|id| *model.context(id as u16).unwrap())
                .collect(),
            entries: (0..config.translation_entries)
                .map(|index| *model.entry(index).unwrap())
                .collect(),
            mapped: HashMap::new(),
        }
    }

    fn maps(&mut self, context: u16, page: u32) -> bool {
        let Some(settings) = self.contexts.get(usize::from(context)) else {
            return false;
        };
        let entries = &self.entries;
        self.mapped
            .entry(context)
            .or_insert_with(|| {
                let first = settings.first_entry as usize;
                let last = (first + settings.pages as usize).min(entries.len());
                entries[first.min(last)..last]
                    .iter()
                    .filter(|entry| entry.valid)
                    .map(|entry| entry.page)
                    .collect()
            })
            .contains(&page)
    }
}

/// One output channel's offer that was not taken, to hold the next clock to it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Offer([u64; 6]);

pub struct Monitor {
    config: Config,
    active: Tables,
    /// Tables after a programming command, in force once the requests before it finish.
    pending: Option<Tables>,
    memory_request: Option<Offer>,
    response: Option<Offer>,
    mmio_response: Option<Offer>,
    accesses: u64,
}

impl Monitor {
    pub fn new<M: Memory>(model: &NetworkInterface<M>) -> Self {
        Self {
            config: *model.config(),
            active: Tables::of(model),
            pending: None,
            memory_request: None,
            response: None,
            mmio_response: None,
            accesses: 0,
        }
    }

    /// Memory accesses checked so far.
    pub fn accesses(&self) -> u64 {
        self.accesses
    }

    /// A programming command was taken; `model` has already applied it.
    pub fn tables_changed<M: Memory>(&mut self, model: &NetworkInterface<M>) {
        self.pending = Some(Tables::of(model));
    }

    /// No request is in flight: the NI has applied every command taken so far.
    pub fn drained(&mut self) {
        if let Some(tables) = self.pending.take() {
            self.active = tables;
        }
    }

    /// Forgets everything after a reset of the NI.
    pub fn reset<M: Memory>(&mut self, model: &NetworkInterface<M>) {
        *self = Self::new(model);
    }

    /// Checks one clock of the NI's outputs, with the inputs it saw.
    pub fn check(&mut self, now: u64, inputs: &Inputs, outputs: &Outputs) {
        held(
            now,
            "memory request",
            &mut self.memory_request,
            outputs.memory_request_valid,
            inputs.memory_request_ready,
            Offer([
                outputs.memory_request_write.into(),
                outputs.memory_request_address,
                // A read's write data means nothing.
                if outputs.memory_request_write {
                    outputs.memory_request_write_data
                } else {
                    0
                },
                outputs.memory_request_byte_enable.into(),
                outputs.memory_request_context.into(),
                0,
            ]),
        );
        held(
            now,
            "response",
            &mut self.response,
            outputs.response_valid,
            inputs.response_ready,
            Offer([
                outputs.response_status.into(),
                outputs.response_data,
                outputs.response_last.into(),
                0,
                0,
                0,
            ]),
        );
        held(
            now,
            "MMIO response",
            &mut self.mmio_response,
            outputs.mmio_response_valid,
            inputs.mmio_response_ready,
            Offer([outputs.mmio_response_data, 0, 0, 0, 0, 0]),
        );
        if outputs.memory_request_valid && inputs.memory_request_ready {
            self.check_access(now, outputs);
        }
    }

    fn check_access(&mut self, now: u64, outputs: &Outputs) {
        let address = outputs.memory_request_address;
        let context = outputs.memory_request_context;
        let write = outputs.memory_request_write;
        let operation = if write { "write" } else { "read" };
        let fail = |why: &str| -> ! {
            panic!("monitor, clock {now}: memory {operation} at {address:#x} for context {context}: {why}")
        };
        if address % u64::from(self.config.data_bytes) != 0 {
            fail("the address is not aligned to the data path");
        }
        if outputs.memory_request_byte_enable == 0 {
            fail("no byte enabled");
        }
        let page = address >> self.config.page_shift;
        if page >= self.config.memory_pages {
            fail("the page is beyond persistent memory");
        }
        let Some(settings) = self.active.contexts.get(usize::from(context)).copied() else {
            fail("no such context");
        };
        if !settings.valid {
            fail("the context is not valid");
        }
        if write && !settings.write || !write && !settings.read {
            fail("the context does not allow it");
        }
        if !self.active.maps(context, page as u32) {
            fail("the context maps no such page");
        }
        self.accesses += 1;
    }
}

/// Fails if an output offered without being taken last clock is not offered again unchanged.
fn held(now: u64, channel: &str, last: &mut Option<Offer>, valid: bool, ready: bool, offer: Offer) {
    if let Some(previous) = last.take() {
        assert!(
            valid,
            "monitor, clock {now}: the {channel} was withdrawn before it was taken"
        );
        assert_eq!(
            previous, offer,
            "monitor, clock {now}: the {channel} changed before it was taken"
        );
    }
    if valid && !ready {
        *last = Some(offer);
    }
}
