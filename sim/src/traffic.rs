//! Random but reproducible work for the NI: contexts over scattered pages, requests that
//! mostly pass and sometimes break each rule, and reprogramming while traffic flows.

use npmu_abi::program::{self, ContextSettings, RegisterAccess};
use npmu_abi::{Config, Operation, Request};
use npmu_model::NetworkInterface;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub struct Traffic {
    random: StdRng,
    config: Config,
    /// Contexts the generator registers: ids `0..contexts`, at most 24.
    contexts: u16,
}

impl Traffic {
    pub fn new(config: &Config, seed: u64) -> Self {
        Self {
            random: StdRng::seed_from_u64(seed),
            config: *config,
            contexts: config.contexts.min(24) as u16,
        }
    }

    pub fn random(&mut self) -> &mut StdRng {
        &mut self.random
    }

    /// Maps every translation entry (a few left unmapped) and registers the contexts.
    pub fn program(&mut self, registers: &mut impl RegisterAccess) {
        let pages: Vec<Option<u32>> = (0..self.config.translation_entries)
            .map(|_| self.random_page())
            .collect();
        program::write_entries(registers, 0, &pages).expect("mapping entries");
        for id in 0..self.contexts {
            self.register(registers, id);
        }
    }

    fn random_page(&mut self) -> Option<u32> {
        let pages = self.config.memory_pages.min(1 << 16) as u32;
        self.random
            .gen_bool(0.97)
            .then(|| self.random.gen_range(0..pages))
    }

    fn register(&mut self, registers: &mut impl RegisterAccess, id: u16) {
        let entries = self.config.translation_entries;
        let pages = self.random.gen_range(1..=entries.min(40));
        let settings = ContextSettings {
            tag: self.random.gen(),
            read: self.random.gen_bool(0.9),
            write: self.random.gen_bool(0.9),
            initiator: self
                .random
                .gen_bool(0.3)
                .then(|| self.random.gen_range(0..4)),
            base: match self.random.gen_range(0..8) {
                0 => 0,
                1 => (u64::MAX - (u64::from(pages) << self.config.page_shift)) + 1,
                _ => self.random.gen_range(0..1u64 << 40) << self.config.page_shift,
            },
            pages,
            first_entry: self.random.gen_range(0..=entries - pages),
        };
        program::register_context(registers, id, &settings).expect("registering a context");
    }

    /// One change to the tables: a context read back and then registered again if
    /// invalid, else invalidated, re-registered (a new key) or some entries remapped.
    pub fn reprogram(&mut self, registers: &mut impl RegisterAccess) {
        let id = self.random.gen_range(0..self.contexts);
        let state = program::read_context(registers, id).expect("reading back");
        if !state.valid {
            return self.register(registers, id);
        }
        match self.random.gen_range(0..10) {
            0..=1 => program::invalidate_context(registers, id).expect("invalidating"),
            2..=5 => {
                let first = self
                    .random
                    .gen_range(0..self.config.translation_entries - 8);
                let pages: Vec<Option<u32>> = (0..8).map(|_| self.random_page()).collect();
                program::write_entries(registers, first, &pages).expect("remapping");
            }
            _ => self.register(registers, id),
        }
    }

    /// A request on the generator's contexts, with the model's current key: most pass,
    /// some fall foul of permissions, initiators, holes and invalidated contexts, and with
    /// `faults` some break every other rule on purpose (wrong keys, unknown contexts, ranges
    /// past either end, addresses near 2^64, reads longer than the maximum).
    pub fn request(&mut self, model: &NetworkInterface, faults: bool) -> (Request, Vec<u8>) {
        let random = &mut self.random;
        let config = &self.config;
        let context = if faults && random.gen_bool(0.02) {
            random.gen_range(0..=u16::MAX)
        } else {
            random.gen_range(0..self.contexts)
        };
        let state = model.context(context).copied().unwrap_or_default();
        let bytes = u64::from(state.pages) << config.page_shift;
        let page = config.page_bytes();
        let mut length = match random.gen_range(0..100) {
            0..=1 => 0,
            2..=39 => random.gen_range(1..=16),
            40..=74 => random.gen_range(1..=page as u32),
            75..=94 => random.gen_range(1..=2 * page as u32),
            _ => random.gen_range(1..=5 * page as u32),
        };
        let operation = if random.gen() {
            Operation::Write
        } else {
            Operation::Read
        };
        if faults && operation == Operation::Read && random.gen_bool(0.01) {
            length = config.max_request_bytes + random.gen_range(1..100);
        }
        let room = bytes.saturating_sub(u64::from(length));
        let address = match random.gen_range(0..40) {
            0 if faults => u64::MAX - random.gen_range(0..64),
            1 if faults => state.base.wrapping_add(room + random.gen_range(1..64)),
            2 if faults => state.base.wrapping_sub(random.gen_range(1..64)),
            3 => state.base.wrapping_add(room),
            _ => state.base.wrapping_add(random.gen_range(0..=room)),
        };
        let key = if faults && random.gen_bool(0.02) {
            random.gen()
        } else {
            state.key
        };
        let initiator = match state.any_initiator || (faults && random.gen_bool(0.05)) {
            true => random.gen_range(0..4),
            false => state.initiator,
        };
        let data = match operation {
            Operation::Write => (0..length).map(|_| random.gen()).collect(),
            Operation::Read => Vec::new(),
        };
        let request = Request {
            operation,
            context,
            key,
            initiator,
            address,
            length,
        };
        (request, data)
    }
}
