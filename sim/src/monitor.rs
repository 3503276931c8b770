//! A monitor on the NI's ports that fails the run at once when the NI touches persistent
//! memory outside what its tables allow, or breaks the ready/valid protocol (an output that
//! is offered must stay offered, unchanged, until it is taken).

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

/// An offer on an output channel that was not taken: the fields that must hold.
type Offer = Vec<u64>;

pub struct Monitor {
    config: Config,
    active: Tables,
    /// Tables after a programming command, in force once the requests before it finish.
    pending: Option<Tables>,
    /// Each output channel's offer not yet taken, by name.
    offers: HashMap<&'static str, Offer>,
    accesses: u64,
}

impl Monitor {
    pub fn new<M: Memory>(model: &NetworkInterface<M>) -> Self {
        Self {
            config: *model.config(),
            active: Tables::of(model),
            pending: None,
            offers: HashMap::new(),
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

    /// Fails if an output channel withdraws or changes an offer before it is taken.
    pub fn check_offer(
        &mut self,
        now: u64,
        channel: &'static str,
        valid: bool,
        ready: bool,
        fields: &[u64],
    ) {
        if let Some(previous) = self.offers.remove(channel) {
            assert!(
                valid,
                "monitor, clock {now}: the {channel} was withdrawn before it was taken"
            );
            assert_eq!(
                previous, fields,
                "monitor, clock {now}: the {channel} changed before it was taken"
            );
        }
        if valid && !ready {
            self.offers.insert(channel, fields.to_vec());
        }
    }

    /// Checks a memory request the NI made: aligned, inside persistent memory, in a page the
    /// requesting context maps, with the permission the operation needs.
    pub fn check_memory_request(
        &mut self,
        now: u64,
        write: bool,
        address: u64,
        byte_enable: u8,
        context: u16,
    ) {
        let operation = if write { "write" } else { "read" };
        let fail = |why: &str| -> ! {
            panic!("monitor, clock {now}: memory {operation} at {address:#x} for context {context}: {why}")
        };
        if address % u64::from(self.config.data_bytes) != 0 {
            fail("the address is not aligned to the data path");
        }
        if !write && byte_enable == 0 {
            fail("a read with no byte enabled");
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
