//! Drives the protection core (`npmu_core`) on all its ports, clock by clock.
//!
//! The harness keeps a queue for every input channel and serves them all each clock, so
//! register accesses, requests, write data and memory traffic overlap as they would behind
//! the command engine. Every channel can be stalled (one clock in four, or at random). The golden model
//! runs alongside: each request is executed on it the clock the NI accepts the request and
//! each register access the clock the NI takes it, and every response and register read
//! is compared with what the model says. The [`Monitor`] watches every clock.

use crate::backend::Backend;
use crate::memory_port::MemoryPort;
use crate::mmio::{self, Clocked, MmioMaster};
use crate::monitor::Monitor;
use crate::ports::protection_core::{Inputs, Outputs};
use crate::stall::Stall;
use crate::verilated::VerilatedCore;
use crate::SimError;
use npmu_abi::program::RegisterAccess;
use npmu_abi::registers::{self as reg, status};
use npmu_abi::{decode_status, Config, Fault, Operation, Request};
use npmu_model::{NetworkInterface, SparseMemory};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::VecDeque;
use std::path::Path;

/// Back-pressure on each channel the harness drives: valid on the channels into the NI,
/// ready on the channels out of it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stalls {
    pub mmio_request: Stall,
    pub mmio_response: Stall,
    pub request: Stall,
    pub write_data: Stall,
    pub response: Stall,
    pub memory_request: Stall,
    pub memory_response: Stall,
}

impl Stalls {
    pub const NONE: Stalls = Stalls::all(Stall::Never);

    pub const fn all(stall: Stall) -> Stalls {
        Stalls {
            mmio_request: stall,
            mmio_response: stall,
            request: stall,
            write_data: stall,
            response: stall,
            memory_request: stall,
            memory_response: stall,
        }
    }
}

#[derive(Clone, Debug)]
pub struct HarnessOptions {
    pub management_key: u64,
    pub seed: u64,
    pub stalls: Stalls,
    /// Clocks from a memory request to its response (at least 1).
    pub memory_latency: u64,
    /// Check every response and register read against the golden model.
    pub golden: bool,
}

impl Default for HarnessOptions {
    fn default() -> Self {
        Self {
            management_key: 0x6e70_6d75_6b65_7921,
            seed: 1,
            stalls: Stalls::NONE,
            memory_latency: 2,
            golden: true,
        }
    }
}

/// A request the NI has answered in full.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    pub request: Request,
    pub status: Result<(), Fault>,
    /// What a read returned.
    pub data: Vec<u8>,
    /// Clocks at which the NI accepted the request and delivered its last response beat.
    pub accepted: u64,
    pub finished: u64,
}

/// A request the NI made on the memory port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryAccess {
    pub clock: u64,
    pub write: bool,
    pub address: u64,
    pub byte_enable: u8,
    pub context: u16,
}

struct InFlight {
    request: Request,
    /// The golden model's answer, if it runs.
    expected: Option<Result<Vec<u8>, Fault>>,
    accepted: u64,
    beats: u64,
    status: u8,
    data: Vec<u8>,
}

pub struct CoreHarness<B: Backend<Inputs = Inputs, Outputs = Outputs>> {
    backend: B,
    config: Config,
    options: HarnessOptions,
    random: StdRng,
    now: u64,
    inputs: Inputs,
    model: NetworkInterface,
    monitor: Monitor,
    memory: MemoryPort,

    mmio: MmioMaster,

    requests: VecDeque<(Request, Vec<u8>)>,
    write_beats: VecDeque<u64>,
    in_flight: VecDeque<InFlight>,
    completions: Vec<Completion>,
    /// Memory requests, when asked for.
    memory_log: Option<Vec<MemoryAccess>>,
    /// Clock of the last handshake on any channel.
    last_handshake: u64,
}

/// Clocks without a handshake on any channel after which the NI is taken to hang.
pub const HANG_CLOCKS: u64 = 10_000;

impl CoreHarness<VerilatedCore> {
    /// The Verilator model of `config`, out of reset and initialized.
    pub fn verilated(config: &Config, options: HarnessOptions) -> Result<Self, SimError> {
        Ok(Self::new(VerilatedCore::new(config)?, options))
    }
}

impl<B: Backend<Inputs = Inputs, Outputs = Outputs>> CoreHarness<B> {
    /// Wraps `backend`, resets it and waits until it has cleared its tables. When the
    /// environment variable [`crate::WAVEFORM_DIRECTORY`] names a directory, the run's waveform
    /// goes there, named after the thread (the test) that runs it.
    ///
    /// # Panics
    /// If a random stall's probability is outside 0..=1.
    pub fn new(backend: B, options: HarnessOptions) -> Self {
        check_stalls(&options.stalls);
        let config = *backend.config();
        let model = NetworkInterface::new(config, options.management_key, SparseMemory::new())
            .expect("the backend's configuration is valid");
        let mut harness = Self {
            monitor: Monitor::new(&model),
            memory: MemoryPort::new(
                SparseMemory::new(),
                config.data_bytes,
                options.memory_latency,
            ),
            random: StdRng::seed_from_u64(options.seed),
            backend,
            config,
            options,
            now: 0,
            inputs: Inputs::default(),
            model,
            mmio: MmioMaster::default(),
            requests: VecDeque::new(),
            write_beats: VecDeque::new(),
            in_flight: VecDeque::new(),
            completions: Vec::new(),
            memory_log: None,
            last_handshake: 0,
        };
        harness.backend.trace_if_asked();
        harness.reset();
        harness
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn model(&self) -> &NetworkInterface {
        &self.model
    }

    /// Clocks run so far.
    pub fn now(&self) -> u64 {
        self.now
    }

    pub fn monitor(&self) -> &Monitor {
        &self.monitor
    }

    pub fn memory(&self) -> &SparseMemory {
        self.memory.memory()
    }

    /// Starts (or stops and forgets) logging the NI's memory requests.
    pub fn record_memory_requests(&mut self, record: bool) {
        self.memory_log = record.then(Vec::new);
    }

    /// The memory requests logged since logging started.
    pub fn memory_requests(&self) -> &[MemoryAccess] {
        self.memory_log.as_deref().unwrap_or_default()
    }

    /// # Panics
    /// If a random stall's probability is outside 0..=1.
    pub fn set_stalls(&mut self, stalls: Stalls) {
        check_stalls(&stalls);
        self.options.stalls = stalls;
    }

    pub fn trace_to(&mut self, path: &Path) -> Result<(), SimError> {
        self.backend.trace_to(path)
    }

    /// Pulses reset, drops everything in flight, and waits for the tables to be cleared.
    pub fn reset(&mut self) {
        self.pulse_reset();
        let limit = u64::from(self.config.contexts.max(self.config.translation_entries)) + 100;
        for _ in 0..limit {
            if !status::INITIALIZING.is_set(RegisterAccess::read(self, reg::STATUS.offset)) {
                return;
            }
        }
        panic!("the NI was still initializing {limit} register reads after reset");
    }

    /// Pulses reset and drops everything in flight, without waiting for initialization.
    pub fn pulse_reset(&mut self) {
        tracing::debug!(clock = self.now, "reset");
        self.requests.clear();
        self.write_beats.clear();
        self.in_flight.clear();
        self.mmio.clear();
        self.memory.reset();
        self.inputs = Inputs {
            management_key: self.options.management_key,
            reset: true,
            // The core stores every lane its requests cover.
            write_data_enable: u8::MAX,
            ..Inputs::default()
        };
        self.now += self.backend.hold_reset(&self.inputs);
        self.inputs.reset = false;
        self.model.reset();
        self.monitor.reset(&self.model);
    }

    /// Queues a request; a write's `data` must be exactly its length.
    pub fn submit(&mut self, request: Request, data: Vec<u8>) {
        if request.operation == Operation::Write {
            assert_eq!(
                data.len(),
                request.length as usize,
                "a write carries its length"
            );
            self.write_beats
                .extend(beats(&request, &data, self.config.data_bytes));
        }
        self.requests.push_back((request, data));
    }

    /// Requests answered since the last call.
    pub fn take_completions(&mut self) -> Vec<Completion> {
        std::mem::take(&mut self.completions)
    }

    /// Requests queued or in flight.
    pub fn busy(&self) -> bool {
        !self.requests.is_empty() || !self.in_flight.is_empty() || !self.write_beats.is_empty()
    }

    /// Runs until every queued request is answered; panics if no channel moves for
    /// [`HANG_CLOCKS`] clocks.
    pub fn run_until_idle(&mut self) {
        self.last_handshake = self.now;
        while self.busy() || self.mmio.pending() > 0 {
            self.step();
            assert!(
                self.now - self.last_handshake < HANG_CLOCKS,
                "the NI hung: no handshake for {HANG_CLOCKS} clocks with {} requests queued, \
                 {} in flight, {} write beats waiting",
                self.requests.len(),
                self.in_flight.len(),
                self.write_beats.len()
            );
        }
    }

    /// Fails unless the harness's persistent memory equals the golden model's.
    pub fn check_memory(&self) {
        if let Some(address) = self.memory.memory().first_difference(self.model.memory()) {
            panic!("persistent memory differs from the golden model's at {address:#x}");
        }
    }

    fn stalled(&mut self, stall: Stall, phase: u64) -> bool {
        stall.holds(&mut self.random, self.now, phase)
    }

    /// One clock: offer inputs, settle, check, account for every handshake, clock edge.
    pub fn step(&mut self) {
        let stalls = self.options.stalls;
        let now = self.now;
        let mut inputs = self.inputs;

        // Valid, once offered, stays until taken.
        if !inputs.mmio_request_valid && !self.stalled(stalls.mmio_request, 0) {
            if let Some((write, offset, value)) = self.mmio.offer() {
                inputs.mmio_request_valid = true;
                inputs.mmio_request_write = write;
                inputs.mmio_request_address = offset;
                inputs.mmio_request_write_data = value;
            }
        }
        if !inputs.request_valid && !self.stalled(stalls.request, 1) {
            if let Some((request, _)) = self.requests.front() {
                inputs.request_valid = true;
                inputs.request_write = request.operation == Operation::Write;
                inputs.request_context = request.context;
                inputs.request_key = request.key;
                inputs.request_initiator = request.initiator;
                inputs.request_address = request.address;
                inputs.request_length = request.length;
            }
        }
        if !inputs.write_data_valid && !self.stalled(stalls.write_data, 2) {
            if let Some(beat) = self.write_beats.front() {
                inputs.write_data_valid = true;
                inputs.write_data = *beat;
            }
        }
        if !inputs.memory_response_valid && !self.stalled(stalls.memory_response, 3) {
            if let Some(data) = self.memory.response(now) {
                inputs.memory_response_valid = true;
                inputs.memory_response_data = data;
            }
        }
        inputs.mmio_response_ready = !self.stalled(stalls.mmio_response, 0);
        inputs.response_ready = !self.stalled(stalls.response, 1);
        inputs.memory_request_ready = !self.stalled(stalls.memory_request, 2);

        let outputs = self.backend.settle(&inputs);
        self.check_offers(now, &inputs, &outputs);

        let request_taken = inputs.request_valid && outputs.request_ready;
        let mmio_taken = inputs.mmio_request_valid && outputs.mmio_request_ready;
        let write_beat_taken = inputs.write_data_valid && outputs.write_data_ready;
        let memory_request_taken = outputs.memory_request_valid && inputs.memory_request_ready;
        let memory_response_taken = inputs.memory_response_valid && outputs.memory_response_ready;
        let response_taken = outputs.response_valid && inputs.response_ready;
        let mmio_response_taken = outputs.mmio_response_valid && inputs.mmio_response_ready;
        if request_taken
            || mmio_taken
            || write_beat_taken
            || memory_request_taken
            || memory_response_taken
            || response_taken
            || mmio_response_taken
        {
            self.last_handshake = now;
        }

        // Requests before register writes: a request taken in the clock a command is
        // taken comes before the command.
        if request_taken {
            self.accept_request();
            inputs.request_valid = false;
        }
        if mmio_taken {
            let quiescent = self.in_flight.is_empty();
            let golden = self.options.golden;
            self.mmio
                .taken(now, &mut self.model, &mut self.monitor, golden, quiescent);
            inputs.mmio_request_valid = false;
        }
        if write_beat_taken {
            self.write_beats.pop_front();
            inputs.write_data_valid = false;
        }
        if memory_request_taken {
            self.monitor.check_memory_request(
                now,
                outputs.memory_request_write,
                outputs.memory_request_address,
                outputs.memory_request_byte_enable,
                outputs.memory_request_context,
            );
            if let Some(log) = &mut self.memory_log {
                log.push(MemoryAccess {
                    clock: now,
                    write: outputs.memory_request_write,
                    address: outputs.memory_request_address,
                    byte_enable: outputs.memory_request_byte_enable,
                    context: outputs.memory_request_context,
                });
            }
            self.memory.accept(
                now,
                outputs.memory_request_write,
                outputs.memory_request_address,
                outputs.memory_request_write_data,
                outputs.memory_request_byte_enable,
            );
        }
        if memory_response_taken {
            self.memory.take_response();
            inputs.memory_response_valid = false;
        }
        if response_taken {
            self.response_beat(&outputs);
        }
        if mmio_response_taken {
            self.mmio.answered(now, outputs.mmio_response_data);
        }
        if self.in_flight.is_empty() {
            self.monitor.drained();
        }

        self.backend.rising_edge();
        self.inputs = inputs;
        self.now += 1;
    }

    fn accept_request(&mut self) {
        let (request, data) = self.requests.pop_front().expect("an offered request");
        let expected = self
            .options
            .golden
            .then(|| self.model.execute(&request, &data));
        tracing::trace!(clock = self.now, ?request, ?expected, "request accepted");
        self.in_flight.push_back(InFlight {
            request,
            expected,
            accepted: self.now,
            beats: 0,
            status: 0,
            data: Vec::new(),
        });
    }

    fn check_offers(&mut self, now: u64, inputs: &Inputs, outputs: &Outputs) {
        let monitor = &mut self.monitor;
        monitor.check_offer(
            now,
            "memory request",
            outputs.memory_request_valid,
            inputs.memory_request_ready,
            &[
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
            ],
        );
        monitor.check_offer(
            now,
            "response",
            outputs.response_valid,
            inputs.response_ready,
            &[
                outputs.response_status.into(),
                outputs.response_data,
                outputs.response_last.into(),
            ],
        );
        monitor.check_offer(
            now,
            "MMIO response",
            outputs.mmio_response_valid,
            inputs.mmio_response_ready,
            &[outputs.mmio_response_data],
        );
    }

    fn response_beat(&mut self, outputs: &Outputs) {
        let now = self.now;
        let data_bytes = u64::from(self.config.data_bytes);
        let flight = self
            .in_flight
            .front_mut()
            .unwrap_or_else(|| panic!("clock {now}: a response to no request"));
        let request = flight.request;
        let read_beats = request.beats(self.config.data_bytes);
        // Data beats of a read that passed; otherwise one beat with the status.
        let data_beat =
            request.operation == Operation::Read && outputs.response_status == 0 && read_beats > 0;
        if data_beat {
            let first = (request.address - request.address % data_bytes)
                .wrapping_add(flight.beats * data_bytes);
            for lane in 0..data_bytes {
                let address = first.wrapping_add(lane);
                let byte = (outputs.response_data >> (8 * lane)) as u8;
                let offset = address.wrapping_sub(request.address);
                if offset < u64::from(request.length) {
                    flight.data.push(byte);
                } else {
                    assert_eq!(
                        byte, 0,
                        "clock {now}: lane {lane} outside {request:?} is not zero"
                    );
                }
            }
        }
        flight.beats += 1;
        flight.status = outputs.response_status;
        let last_expected = !data_beat || flight.beats == read_beats;
        assert_eq!(
            outputs.response_last, last_expected,
            "clock {now}: beat {} of {request:?} has last = {}",
            flight.beats, outputs.response_last
        );
        if !outputs.response_last {
            return;
        }
        let flight = self.in_flight.pop_front().unwrap();
        let status = decode_status(flight.status)
            .unwrap_or_else(|error| panic!("clock {now}: {error} for {request:?}"));
        if let Some(expected) = &flight.expected {
            assert_eq!(
                status,
                expected.as_ref().map(|_| ()).map_err(|fault| *fault),
                "clock {now}: status of {request:?}"
            );
            if let Ok(data) = expected {
                assert!(
                    flight.data == *data,
                    "clock {now}: the data read by {request:?} differs from the golden model's"
                );
            }
        }
        self.completions.push(Completion {
            request,
            status,
            data: flight.data,
            accepted: flight.accepted,
            finished: now,
        });
    }
}

impl<B: Backend<Inputs = Inputs, Outputs = Outputs>> Clocked for CoreHarness<B> {
    fn mmio(&mut self) -> &mut MmioMaster {
        &mut self.mmio
    }

    fn step(&mut self) {
        CoreHarness::step(self);
    }

    fn now(&self) -> u64 {
        self.now
    }
}

impl<B: Backend<Inputs = Inputs, Outputs = Outputs>> RegisterAccess for CoreHarness<B> {
    fn read(&mut self, offset: u16) -> u64 {
        mmio::read_register(self, offset)
    }

    fn write(&mut self, offset: u16, value: u64) {
        mmio::write_register(self, offset, value);
    }
}

fn check_stalls(stalls: &Stalls) {
    for stall in [
        stalls.mmio_request,
        stalls.mmio_response,
        stalls.request,
        stalls.write_data,
        stalls.response,
        stalls.memory_request,
        stalls.memory_response,
    ] {
        stall.check();
    }
}

/// The data beats of a write: each carries the bytes of its data-path word in the lanes
/// of their addresses; lanes outside the request carry junk the NI must not store.
fn beats(request: &Request, data: &[u8], data_bytes: u32) -> Vec<u64> {
    let data_bytes = u64::from(data_bytes);
    let first = request.address - request.address % data_bytes;
    (0..request.beats(data_bytes as u32))
        .map(|beat| {
            (0..data_bytes).fold(0u64, |word, lane| {
                let offset = first
                    .wrapping_add(beat * data_bytes + lane)
                    .wrapping_sub(request.address);
                let byte = data.get(offset as usize).copied().unwrap_or(0xa5);
                word | u64::from(byte) << (8 * lane)
            })
        })
        .collect()
}
