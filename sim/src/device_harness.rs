//! Drives the whole NI (`npmu_ni`) as a host and its driver would: registers through MMIO,
//! descriptors in submission rings in host memory, completions polled from completion
//! rings, host memory behind the DMA port, persistent memory behind the memory port.
//!
//! The golden model runs alongside: each register write is applied to it the clock the NI
//! takes it, after which it runs whatever the queues hold at once, against its own copy of
//! host memory. Every completion the NI writes must equal, byte for byte, the one the model
//! wrote to the same slot; persistent and host memory are compared when the device is idle.
//! Queues must not race on the same bytes for that comparison to hold.

use crate::backend::Backend;
use crate::device_ports::DevicePorts;
use crate::host_port::HostPort;
use crate::memory_port::MemoryPort;
use crate::mmio::{self, Clocked, MmioMaster};
use crate::monitor::Monitor;
use crate::ports::network_interface::{Inputs, Outputs};
use crate::stall::Stall;
use crate::verilated::VerilatedNetworkInterface;
use crate::SimError;
use npmu_abi::program::{self, QueueError, QueueSettings, RegisterAccess};
use npmu_abi::queue::{
    Completion, Descriptor, HostWindow, COMPLETION_BYTES, DESCRIPTOR_BYTES, SUBMISSION_SLACK_SLOTS,
};
use npmu_abi::registers::{self as reg, queue_offset, status};
use npmu_abi::Config;
use npmu_model::{DmaDirection, HostMemory, Memory, NetworkInterface, SparseMemory};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::path::Path;
use thiserror::Error;
use zerocopy::{FromBytes, IntoBytes};

/// Back-pressure on each channel the harness drives.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DeviceStalls {
    pub mmio_request: Stall,
    pub mmio_response: Stall,
    pub dma_read_request: Stall,
    /// Gaps between read completion beats (the NI takes every beat it is offered).
    pub dma_read_completion: Stall,
    pub dma_write: Stall,
    pub dma_write_response: Stall,
    pub interrupt: Stall,
    pub memory_request: Stall,
    pub memory_response: Stall,
}

impl DeviceStalls {
    pub const NONE: DeviceStalls = DeviceStalls::all(Stall::Never);

    pub const fn all(stall: Stall) -> DeviceStalls {
        DeviceStalls {
            mmio_request: stall,
            mmio_response: stall,
            dma_read_request: stall,
            dma_read_completion: stall,
            dma_write: stall,
            dma_write_response: stall,
            interrupt: stall,
            memory_request: stall,
            memory_response: stall,
        }
    }

    fn check(&self) {
        for stall in [
            self.mmio_request,
            self.mmio_response,
            self.dma_read_request,
            self.dma_read_completion,
            self.dma_write,
            self.dma_write_response,
            self.interrupt,
            self.memory_request,
            self.memory_response,
        ] {
            stall.check();
        }
    }
}

#[derive(Clone, Debug)]
pub struct DeviceOptions {
    pub management_key: u64,
    pub seed: u64,
    pub stalls: DeviceStalls,
    /// Clocks from a DMA request to its completion or response.
    pub host_latency: u64,
    /// Clocks from a persistent-memory request to its response.
    pub memory_latency: u64,
    /// Run the golden model's queues alongside and check completions, register reads and
    /// memory against it. Off, the model only follows the tables, for the monitor.
    pub golden: bool,
}

impl Default for DeviceOptions {
    fn default() -> Self {
        Self {
            management_key: 0x6e70_6d75_6b65_7921,
            seed: 1,
            stalls: DeviceStalls::NONE,
            host_latency: 20,
            memory_latency: 2,
            golden: true,
        }
    }
}

/// A completion the NI wrote, when the harness saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceCompletion {
    pub queue: u16,
    pub entry: Completion,
    pub clock: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum SubmitError {
    #[error("queue {0} is not set up")]
    NotSetUp(u16),
    #[error("queue {0}'s submission ring is full")]
    Full(u16),
}

/// Whether `slots` more fit in a submission ring of `entries` with `used` taken, keeping
/// [`SUBMISSION_SLACK_SLOTS`] empty besides the one that tells full from empty.
fn submission_room(used: u64, slots: u64, entries: u64) -> bool {
    used + slots + u64::from(SUBMISSION_SLACK_SLOTS) < entries
}

/// What the driver knows of one queue pair.
#[derive(Clone, Copy, Debug)]
struct Ring {
    settings: QueueSettings,
    tail: u64,
    /// Next completion slot to read, and the phase it carries on this pass.
    head: u64,
    phase: bool,
    /// Submission slots before this one are free again.
    submission_head: u64,
    outstanding: u64,
    /// The driver leaves the completion ring alone, as if busy elsewhere.
    paused: bool,
}

pub struct DeviceHarness<B: Backend<Inputs = Inputs, Outputs = Outputs>> {
    backend: B,
    config: Config,
    options: DeviceOptions,
    random: StdRng,
    now: u64,
    inputs: Inputs,
    model: NetworkInterface,
    model_host: HostMemory,
    monitor: Monitor,
    ports: DevicePorts<HostMemory, SparseMemory>,
    mmio: MmioMaster,
    rings: Vec<Option<Ring>>,
    completions: Vec<DeviceCompletion>,
    interrupts: Vec<(u64, u8)>,
    doorbells: Vec<(u64, u16)>,
    last_handshake: u64,
    /// The DMA write under way has more beats to come.
    dma_write_continues: bool,
    /// The window each queue is granted when set up ([`Self::set_window`]).
    windows: Vec<HostWindow>,
}

impl DeviceHarness<VerilatedNetworkInterface> {
    /// The Verilator model of `config`, out of reset and initialized.
    pub fn verilated(config: &Config, options: DeviceOptions) -> Result<Self, SimError> {
        Ok(Self::new(VerilatedNetworkInterface::new(config)?, options))
    }
}

impl<B: Backend<Inputs = Inputs, Outputs = Outputs>> DeviceHarness<B> {
    /// Wraps `backend`, resets it and waits until it has cleared its tables.
    ///
    /// # Panics
    /// If a random stall's probability is outside 0..=1.
    pub fn new(backend: B, options: DeviceOptions) -> Self {
        options.stalls.check();
        let config = *backend.config();
        let model = NetworkInterface::new(config, options.management_key, SparseMemory::new())
            .expect("the backend's configuration is valid");
        let mut harness = Self {
            monitor: Monitor::new(&model),
            ports: DevicePorts {
                memory: MemoryPort::new(
                    SparseMemory::new(),
                    config.data_bytes,
                    options.memory_latency,
                ),
                host: HostPort::new(HostMemory::new(), &config, options.host_latency),
            },
            random: StdRng::seed_from_u64(options.seed),
            backend,
            config,
            options,
            now: 0,
            inputs: Inputs::default(),
            model,
            model_host: HostMemory::new(),
            mmio: MmioMaster::default(),
            rings: vec![None; config.queues as usize],
            completions: Vec::new(),
            interrupts: Vec::new(),
            doorbells: Vec::new(),
            last_handshake: 0,
            dma_write_continues: false,
            windows: vec![HostWindow::WIDEST; config.queues as usize],
        };
        harness.backend.trace_if_asked();
        harness.reset();
        harness
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn options(&self) -> &DeviceOptions {
        &self.options
    }

    pub fn model(&self) -> &NetworkInterface {
        &self.model
    }

    pub fn now(&self) -> u64 {
        self.now
    }

    pub fn monitor(&self) -> &Monitor {
        &self.monitor
    }

    pub fn trace_to(&mut self, path: &Path) -> Result<(), SimError> {
        self.backend.trace_to(path)
    }

    pub fn set_stalls(&mut self, stalls: DeviceStalls) {
        stalls.check();
        self.options.stalls = stalls;
    }

    /// DMA reads and writes the NI issued so far.
    pub fn host_traffic(&self) -> (u64, u64) {
        self.ports.host.traffic()
    }

    /// Persistent-memory requests taken and not yet answered.
    pub fn memory_in_flight(&self) -> usize {
        self.ports.memory.in_flight()
    }

    /// Interrupt messages taken so far: clock and vector.
    pub fn interrupts(&self) -> &[(u64, u8)] {
        &self.interrupts
    }

    /// Pulses reset, drops everything in flight and every log, waits for the tables to be
    /// cleared.
    pub fn reset(&mut self) {
        self.mmio.clear();
        self.completions.clear();
        self.interrupts.clear();
        self.doorbells.clear();
        self.ports.reset();
        self.rings.iter_mut().for_each(|ring| *ring = None);
        self.dma_write_continues = false;
        self.inputs = Inputs {
            management_key: self.options.management_key,
            reset: true,
            ..Inputs::default()
        };
        self.now += self.backend.hold_reset(&self.inputs);
        self.inputs.reset = false;
        self.model.reset();
        self.monitor.reset(&self.model);
        let limit = u64::from(self.config.contexts.max(self.config.translation_entries)) + 100;
        for _ in 0..limit {
            if !status::INITIALIZING.is_set(RegisterAccess::read(self, reg::STATUS.offset)) {
                return;
            }
        }
        panic!("the NI was still initializing {limit} register reads after reset");
    }

    /// Maps host pages for DMA in `direction`, on the NI's side and the model's.
    pub fn map_host(&mut self, iova: u64, length: u64, direction: DmaDirection) {
        self.ports.host.memory_mut().map(iova, length, direction);
        self.model_host.map(iova, length, direction);
    }

    pub fn unmap_host(&mut self, iova: u64, length: u64) {
        self.ports.host.memory_mut().unmap(iova, length);
        self.model_host.unmap(iova, length);
    }

    /// What the CPU writes to host memory, mapped or not.
    pub fn write_host(&mut self, iova: u64, data: &[u8]) {
        self.ports
            .host
            .memory_mut()
            .contents_mut()
            .write(iova, data);
        self.model_host.contents_mut().write(iova, data);
    }

    /// What the CPU reads from host memory.
    pub fn read_host(&self, iova: u64, length: usize) -> Vec<u8> {
        let mut bytes = vec![0; length];
        self.ports.host.memory().contents().read(iova, &mut bytes);
        bytes
    }

    /// The host-memory window [`Self::set_up_queue`] grants `queue` from now on; every
    /// queue starts with [`HostWindow::WIDEST`].
    pub fn set_window(&mut self, queue: u16, window: HostWindow) {
        self.windows[usize::from(queue)] = window;
    }

    /// Sets a queue pair up and enables it; its rings must be mapped ([`Self::map_rings`]).
    /// The queue is disabled and granted its window first ([`Self::set_window`]), as the
    /// manager would, opening the management lock for it if closed (and closing it again).
    /// The completion ring is cleared first, as a driver must: entries left from an
    /// earlier use of the ring would carry the phase the new pass starts with.
    ///
    /// # Panics
    /// If the queue still has descriptors in flight, so its window cannot change.
    pub fn set_up_queue(&mut self, queue: u16, settings: &QueueSettings) -> Result<(), QueueError> {
        self.rings[usize::from(queue)] = None;
        let ring_bytes = u64::from(settings.completion_entries) * u64::from(COMPLETION_BYTES);
        self.write_host(settings.completion_base, &vec![0; ring_bytes as usize]);
        RegisterAccess::write(self, queue_offset(queue, reg::queue::CONTROL), 0);
        let was_locked = !status::UNLOCKED.is_set(RegisterAccess::read(self, reg::STATUS.offset));
        if was_locked {
            program::unlock(self, self.options.management_key).expect("the harness's key");
        }
        program::set_queue_window(self, queue, self.windows[usize::from(queue)])
            .expect("granting the queue its window");
        if was_locked {
            program::lock(self);
        }
        program::set_up_queue(self, queue, settings)?;
        self.rings[usize::from(queue)] = Some(Ring {
            settings: *settings,
            tail: 0,
            head: 0,
            phase: true,
            submission_head: 0,
            outstanding: 0,
            paused: false,
        });
        Ok(())
    }

    /// Maps a queue pair's rings as a driver does: the submission ring for the device to
    /// read, the completion ring for it to write.
    pub fn map_rings(&mut self, settings: &QueueSettings) {
        let submission_bytes = u64::from(settings.submission_entries) * u64::from(DESCRIPTOR_BYTES);
        let completion_bytes = u64::from(settings.completion_entries) * u64::from(COMPLETION_BYTES);
        self.map_host(
            settings.submission_base,
            submission_bytes,
            DmaDirection::ToDevice,
        );
        self.map_host(
            settings.completion_base,
            completion_bytes,
            DmaDirection::FromDevice,
        );
    }

    /// Stops (or resumes) reading and releasing `queue`'s completions.
    pub fn pause_completions(&mut self, queue: u16, paused: bool) {
        if let Some(ring) = self.rings[usize::from(queue)].as_mut() {
            ring.paused = paused;
        }
    }

    /// Forgets what the driver knew of `queue`, after the test reset or disabled it behind
    /// the driver's back; its outstanding descriptors no longer count.
    pub fn forget_queue(&mut self, queue: u16) {
        self.rings[usize::from(queue)] = None;
    }

    /// Clocks at which the NI took a submission doorbell, with its queue.
    pub fn doorbells(&self) -> &[(u64, u16)] {
        &self.doorbells
    }

    /// Writes a descriptor into the queue's next submission slot and rings the doorbell.
    pub fn submit(&mut self, queue: u16, descriptor: &Descriptor) -> Result<(), SubmitError> {
        self.submit_inline(queue, descriptor, &[])
    }

    /// Writes a descriptor into the queue's next submission slot, `payload` (an inline
    /// WRITE's) into the slots after it, and rings the doorbell past them all.
    pub fn submit_inline(
        &mut self,
        queue: u16,
        descriptor: &Descriptor,
        payload: &[u8],
    ) -> Result<(), SubmitError> {
        let slots = 1 + payload.len().div_ceil(DESCRIPTOR_BYTES as usize) as u64;
        self.submit_published(queue, descriptor, payload, slots)
    }

    /// As [`Self::submit_inline`], but the doorbell publishes only the first `published`
    /// slots written (fewer is a host's mistake); the next submission publishes the rest.
    /// Slots past the ring's end continue at its start.
    pub fn submit_published(
        &mut self,
        queue: u16,
        descriptor: &Descriptor,
        payload: &[u8],
        published: u64,
    ) -> Result<(), SubmitError> {
        let ring = self.rings[usize::from(queue)]
            .as_mut()
            .ok_or(SubmitError::NotSetUp(queue))?;
        let entries = u64::from(ring.settings.submission_entries);
        let mut slots = vec![descriptor.as_bytes().to_vec()];
        slots.extend(payload.chunks(DESCRIPTOR_BYTES as usize).map(|chunk| {
            let mut slot = chunk.to_vec();
            slot.resize(DESCRIPTOR_BYTES as usize, 0);
            slot
        }));
        let used = (ring.tail + entries - ring.submission_head) % entries;
        if !submission_room(used, slots.len() as u64, entries) {
            return Err(SubmitError::Full(queue));
        }
        let first = ring.tail;
        let base = ring.settings.submission_base;
        ring.tail = (first + slots.len() as u64) % entries;
        ring.outstanding += 1;
        let doorbell = (first + published) % entries;
        for (index, slot) in slots.iter().enumerate() {
            let number = (first + index as u64) % entries;
            self.write_host(base + number * u64::from(DESCRIPTOR_BYTES), slot);
        }
        self.mmio
            .write(queue_offset(queue, reg::queue::SQ_TAIL), doorbell);
        Ok(())
    }

    /// Descriptors submitted and not yet completed, on every queue.
    pub fn outstanding(&self) -> u64 {
        self.rings
            .iter()
            .flatten()
            .map(|ring| ring.outstanding)
            .sum()
    }

    pub fn take_completions(&mut self) -> Vec<DeviceCompletion> {
        std::mem::take(&mut self.completions)
    }

    /// Runs until every submitted descriptor has completed and every register access is
    /// done; panics if no channel moves for [`crate::HANG_CLOCKS`] clocks.
    pub fn run_until_idle(&mut self) {
        self.last_handshake = self.now;
        while self.outstanding() > 0 || self.mmio.pending() > 0 {
            self.step();
            assert!(
                self.now - self.last_handshake < crate::HANG_CLOCKS,
                "the NI hung: no handshake for {} clocks with {} descriptors outstanding",
                crate::HANG_CLOCKS,
                self.outstanding()
            );
        }
    }

    /// Fails unless persistent and host memory equal the golden model's.
    ///
    /// # Panics
    /// Also if the golden model is off: it has not run the queues.
    pub fn check_memory(&self) {
        assert!(
            self.options.golden,
            "no golden model to compare memory with"
        );
        if let Some(address) = self
            .ports
            .memory
            .memory()
            .first_difference(self.model.memory())
        {
            panic!("persistent memory differs from the golden model's at {address:#x}");
        }
        let host = self.ports.host.memory().contents();
        if let Some(address) = host.first_difference(self.model_host.contents()) {
            panic!("host memory differs from the golden model's at {address:#x}");
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

        if !inputs.mmio_request_valid && !self.stalled(stalls.mmio_request, 0) {
            if let Some((write, offset, value)) = self.mmio.offer() {
                inputs.mmio_request_valid = true;
                inputs.mmio_request_write = write;
                inputs.mmio_request_address = offset;
                inputs.mmio_request_write_data = value;
            }
        }
        self.ports
            .offer(now, &mut inputs, &stalls, &mut self.random);
        inputs.mmio_response_ready = !self.stalled(stalls.mmio_response, 0);

        let outputs = self.backend.settle(&inputs);
        self.check_offers(now, &inputs, &outputs);

        let mmio_taken = inputs.mmio_request_valid && outputs.mmio_request_ready;
        let mmio_response_taken = outputs.mmio_response_valid && inputs.mmio_response_ready;
        self.check_dma(now, &inputs, &outputs);
        let handshakes = self.ports.take(now, &mut inputs, &outputs);
        if mmio_taken || mmio_response_taken || handshakes.any {
            self.last_handshake = now;
        }
        if let Some(vector) = handshakes.interrupt {
            self.interrupts.push((now, vector));
        }
        if let Some(request) = handshakes.memory_request {
            self.monitor.check_memory_request(
                now,
                request.write,
                request.address,
                request.byte_enable,
                request.context,
            );
        }

        if mmio_taken {
            if let Some((queue, reg::queue::SQ_TAIL)) = reg::queue_at(inputs.mmio_request_address) {
                if inputs.mmio_request_write {
                    self.doorbells.push((now, queue));
                }
            }
            let quiescent = self.outstanding() == 0;
            let golden = self.options.golden;
            self.mmio
                .taken(now, &mut self.model, &mut self.monitor, golden, quiescent);
            if inputs.mmio_request_write && golden {
                self.model.process_queues(&mut self.model_host);
            }
            inputs.mmio_request_valid = false;
        }
        if mmio_response_taken {
            self.mmio.answered(now, outputs.mmio_response_data);
        }
        self.poll_completions(now);
        if self.outstanding() == 0 {
            self.monitor.drained();
        }

        self.backend.rising_edge();
        self.inputs = inputs;
        self.now += 1;
    }

    /// Checks each DMA request taken this clock against its queue's window.
    fn check_dma(&mut self, now: u64, inputs: &Inputs, outputs: &Outputs) {
        if outputs.dma_read_request_valid && inputs.dma_read_request_ready {
            let host = self.ports.host.memory().contents();
            self.monitor.check_dma_read(
                now,
                &self.model,
                outputs.dma_read_request_tag,
                outputs.dma_read_request_address,
                outputs.dma_read_request_length.into(),
                |address, bytes| host.read(address, bytes),
            );
        }
        if outputs.dma_write_valid && inputs.dma_write_ready {
            if !self.dma_write_continues {
                self.monitor.check_dma_write(
                    now,
                    &self.model,
                    outputs.dma_write_address,
                    outputs.dma_write_length.into(),
                );
            }
            self.dma_write_continues = !outputs.dma_write_last;
        }
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
            "MMIO response",
            outputs.mmio_response_valid,
            inputs.mmio_response_ready,
            &[outputs.mmio_response_data],
        );
        monitor.check_offer(
            now,
            "DMA read request",
            outputs.dma_read_request_valid,
            inputs.dma_read_request_ready,
            &[
                outputs.dma_read_request_tag.into(),
                outputs.dma_read_request_address,
                outputs.dma_read_request_length.into(),
            ],
        );
        monitor.check_offer(
            now,
            "DMA write",
            outputs.dma_write_valid,
            inputs.dma_write_ready,
            &[
                outputs.dma_write_address,
                outputs.dma_write_length.into(),
                outputs.dma_write_data,
                outputs.dma_write_byte_enable.into(),
                outputs.dma_write_last.into(),
            ],
        );
        monitor.check_offer(
            now,
            "interrupt",
            outputs.interrupt_valid,
            inputs.interrupt_ready,
            &[outputs.interrupt_vector.into()],
        );
    }

    /// Reads each completion ring where the next entry would appear, as a driver polls.
    fn poll_completions(&mut self, now: u64) {
        for queue in 0..self.rings.len() {
            let Some(ring) = self.rings[queue].filter(|ring| !ring.paused) else {
                continue;
            };
            let entry_address =
                ring.settings.completion_base + ring.head * u64::from(COMPLETION_BYTES);
            let mut phase = [0u8];
            self.ports
                .host
                .memory()
                .contents()
                .read(entry_address + u64::from(COMPLETION_BYTES) - 1, &mut phase);
            if (phase[0] & 1 == 1) != ring.phase {
                continue;
            }
            let mut bytes = [0u8; COMPLETION_BYTES as usize];
            self.ports
                .host
                .memory()
                .contents()
                .read(entry_address, &mut bytes);
            let entry = Completion::read_from_bytes(&bytes).expect("16 bytes");
            if self.options.golden {
                let mut expected = [0u8; COMPLETION_BYTES as usize];
                self.model_host
                    .contents()
                    .read(entry_address, &mut expected);
                let expected = Completion::read_from_bytes(&expected).expect("16 bytes");
                assert_eq!(
                    entry, expected,
                    "clock {now}: queue {queue}'s completion {} differs from the golden model's",
                    ring.head
                );
            }
            let ring = self.rings[queue].as_mut().unwrap();
            ring.head = (ring.head + 1) % u64::from(ring.settings.completion_entries);
            if ring.head == 0 {
                ring.phase = !ring.phase;
            }
            ring.submission_head = entry.submission_head.get().into();
            ring.outstanding -= 1;
            let head = ring.head;
            self.mmio
                .write(queue_offset(queue as u16, reg::queue::CQ_HEAD), head);
            self.completions.push(DeviceCompletion {
                queue: queue as u16,
                entry,
                clock: now,
            });
        }
    }
}

impl<B: Backend<Inputs = Inputs, Outputs = Outputs>> Clocked for DeviceHarness<B> {
    fn mmio(&mut self) -> &mut MmioMaster {
        &mut self.mmio
    }

    fn step(&mut self) {
        DeviceHarness::step(self);
    }

    fn now(&self) -> u64 {
        self.now
    }
}

impl<B: Backend<Inputs = Inputs, Outputs = Outputs>> RegisterAccess for DeviceHarness<B> {
    fn read(&mut self, offset: u16) -> u64 {
        mmio::read_register(self, offset)
    }

    fn write(&mut self, offset: u16, value: u64) {
        mmio::write_register(self, offset, value);
    }
}
