//! A simulated npmu card: the Verilator model of the whole NI on a thread of its own, like
//! hardware beside the CPU. Host memory is the driver's own memory, reached through the
//! mappings it made in a [`SimulatedIommu`]; persistent memory is a file ([`FileMemory`]),
//! so its contents survive the process. The card clocks only while it has work and sleeps
//! otherwise, so several cards run in parallel without spinning.
//!
//! Register writes are posted and register reads wait for the NI's answer, as on PCIe. A
//! card that stopped ([`SimulatedCard::fail`], or a bug caught in the device thread) answers
//! reads with all ones and never interrupts again, as a card that fell off the bus.

use crate::backend::Backend;
use crate::device_harness::DeviceStalls;
use crate::device_ports::DevicePorts;
use crate::file_memory::{FileMemory, FileMemoryError};
use crate::host_port::HostPort;
use crate::iommu::{IommuPort, SimulatedIommu};
use crate::memory_port::MemoryPort;
use crate::ports::network_interface::Inputs;
use crate::verilated::VerilatedNetworkInterface;
use crate::SimError;
use npmu_abi::registers::{self as reg, queue_control};
use npmu_abi::Config;
use npmu_device::{Device, DeviceError, DmaMapping, Interrupts, Mmio};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use thiserror::Error;

/// Clocks without a handshake after which a card with nothing owed goes to sleep. Sleeping
/// only stops simulated time: silent work (clearing the tables after a reset) goes on at the
/// next access. Kept short because a spinning card thread takes a core from the host's.
const IDLE_CLOCKS: u64 = 512;
/// Clocks the device thread runs between looks at new register accesses when it has none.
const BATCH_CLOCKS: u32 = 1024;
/// How long a register read waits for the NI before it reads all ones, as a PCIe
/// completion timeout.
const READ_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Error)]
pub enum CardError {
    #[error(transparent)]
    Memory(#[from] FileMemoryError),
    #[error(transparent)]
    Simulator(#[from] SimError),
    #[error("cannot start the device thread: {0}")]
    Thread(std::io::Error),
}

#[derive(Clone, Debug)]
pub struct CardOptions {
    pub config: Config,
    /// The key strapped on the board that opens the management lock.
    pub management_key: u64,
    /// Clocks from a DMA request to its completion: the PCIe round trip.
    pub host_latency: u64,
    /// Clocks from a persistent-memory request to its response.
    pub memory_latency: u64,
    /// Write a waveform of every signal here (VCD, for GTKWave).
    pub waveform: Option<PathBuf>,
}

impl Default for CardOptions {
    fn default() -> Self {
        Self {
            config: Config::SIM,
            management_key: 0x6e70_6d75_6b65_7921,
            host_latency: 100,
            memory_latency: 2,
            waveform: None,
        }
    }
}

enum Access {
    Write(u16, u64),
    Read(u16, u64),
    Reset,
}

#[derive(Default)]
struct State {
    accesses: VecDeque<Access>,
    /// Answers to reads, by read number.
    answers: HashMap<u64, u64>,
    next_read: u64,
    /// Interrupts not yet waited for, by vector.
    interrupts: Vec<u64>,
    last_interrupt_clock: Vec<Option<u64>>,
    last_doorbell_clock: Vec<Option<u64>>,
    stopped: Option<String>,
    shutdown: bool,
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the device thread: accesses to do, or shutdown.
    work: Condvar,
    /// Wakes waiting readers and interrupt waiters.
    news: Condvar,
    /// Set with every access queued, so the busy device thread notices without locking.
    accesses_waiting: AtomicBool,
    clocks: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits until `ready` finds what it waits for, at most `timeout`; `None` if the time
    /// runs out or the card stops first.
    fn wait_for<T>(
        &self,
        timeout: Duration,
        mut ready: impl FnMut(&mut State) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        loop {
            if let Some(found) = ready(&mut state) {
                return Some(found);
            }
            let now = Instant::now();
            if state.stopped.is_some() || now >= deadline {
                return None;
            }
            state = self
                .news
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }

    /// Queues `access` for the device thread, unless the card has stopped.
    fn push(&self, state: &mut State, access: Access) {
        if state.stopped.is_some() {
            return;
        }
        state.accesses.push_back(access);
        self.accesses_waiting.store(true, Ordering::Release);
        self.work.notify_one();
    }

    fn stop(&self, why: String) {
        let mut state = self.lock();
        if state.stopped.is_none() {
            tracing::error!(%why, "simulated card stopped");
            state.stopped = Some(why);
        }
        self.news.notify_all();
    }
}

pub struct SimulatedCard {
    name: String,
    config: Config,
    iommu: Arc<SimulatedIommu>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl SimulatedCard {
    /// Starts a card named `name` whose persistent memory is the file `memory` (created if
    /// missing) and whose DMA goes through `iommu`. The card comes out of reset.
    pub fn open(
        name: &str,
        memory: &Path,
        iommu: Arc<SimulatedIommu>,
        options: CardOptions,
    ) -> Result<Self, CardError> {
        let config = options.config;
        let memory = FileMemory::open(memory, config.memory_bytes())?;
        let mut backend = VerilatedNetworkInterface::new(&config)?;
        if let Some(path) = &options.waveform {
            backend.trace_to(path)?;
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                interrupts: vec![0; config.queues as usize],
                last_interrupt_clock: vec![None; config.queues as usize],
                last_doorbell_clock: vec![None; config.queues as usize],
                ..State::default()
            }),
            work: Condvar::new(),
            news: Condvar::new(),
            accesses_waiting: AtomicBool::new(false),
            clocks: AtomicU64::new(0),
        });
        let device = DeviceThread {
            ports: DevicePorts {
                host: HostPort::new(IommuPort(Arc::clone(&iommu)), &config, options.host_latency),
                memory: MemoryPort::new(memory, config.data_bytes, options.memory_latency),
            },
            backend,
            shared: Arc::clone(&shared),
            random: StdRng::seed_from_u64(0),
            inputs: Inputs {
                management_key: options.management_key,
                ..Inputs::default()
            },
            now: 0,
            last_activity: 0,
            accesses: VecDeque::new(),
            reads_answered_in_order: VecDeque::new(),
            idle_clocks: IDLE_CLOCKS,
        };
        let thread = std::thread::Builder::new()
            .name(format!("card {name}"))
            .spawn(move || device.run())
            .map_err(CardError::Thread)?;
        let card = Self {
            name: name.to_owned(),
            config,
            iommu,
            shared,
            thread: Some(thread),
        };
        card.push(Access::Reset);
        Ok(card)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Clocks the card has run.
    pub fn clocks(&self) -> u64 {
        self.shared.clocks.load(Ordering::Relaxed)
    }

    /// The clock at which the NI took the latest submission doorbell of `queue`.
    pub fn last_doorbell_clock(&self, queue: u16) -> Option<u64> {
        let state = self.shared.lock();
        state.last_doorbell_clock.get(usize::from(queue)).copied()?
    }

    /// The clock at which the NI sent the latest interrupt on `vector`.
    pub fn last_interrupt_clock(&self, vector: u16) -> Option<u64> {
        let state = self.shared.lock();
        state
            .last_interrupt_clock
            .get(usize::from(vector))
            .copied()?
    }

    /// Why the card stopped, if it did.
    pub fn stopped(&self) -> Option<String> {
        self.shared.lock().stopped.clone()
    }

    /// Makes the card stop answering, as a card that died: reads return all ones, writes
    /// and DMA stop, no interrupt comes. Persistent memory keeps what it had.
    pub fn fail(&self) {
        self.shared
            .stop(format!("card {} failed on request", self.name));
        self.shared.work.notify_one();
    }

    fn push(&self, access: Access) {
        self.shared.push(&mut self.shared.lock(), access);
    }
}

impl Mmio for SimulatedCard {
    fn read_register(&self, offset: u16) -> u64 {
        let number = {
            let mut state = self.shared.lock();
            let number = state.next_read;
            state.next_read += 1;
            self.shared.push(&mut state, Access::Read(offset, number));
            number
        };
        self.shared
            .wait_for(READ_TIMEOUT, |state| state.answers.remove(&number))
            .unwrap_or(u64::MAX)
    }

    fn write_register(&self, offset: u16, value: u64) {
        self.push(Access::Write(offset, value));
    }
}

impl Interrupts for SimulatedCard {
    fn interrupt_vectors(&self) -> u16 {
        self.config.queues as u16
    }

    fn wait_interrupt(&self, vector: u16, timeout: Duration) -> Result<bool, DeviceError> {
        let vectors = self.interrupt_vectors();
        if vector >= vectors {
            return Err(DeviceError::NoSuchVector { vector, vectors });
        }
        let arrived = self.shared.wait_for(timeout, |state| {
            let pending = &mut state.interrupts[usize::from(vector)];
            (*pending > 0).then(|| *pending = 0)
        });
        Ok(arrived.is_some())
    }
}

impl Device for SimulatedCard {
    fn name(&self) -> &str {
        &self.name
    }

    fn dma(&self) -> Arc<dyn DmaMapping> {
        Arc::clone(&self.iommu) as Arc<dyn DmaMapping>
    }

    fn reset(&self) -> Result<(), DeviceError> {
        if let Some(why) = self.stopped() {
            return Err(DeviceError::Stopped(why));
        }
        self.push(Access::Reset);
        Ok(())
    }
}

impl Drop for SimulatedCard {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.work.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What runs on the card's thread.
struct DeviceThread {
    backend: VerilatedNetworkInterface,
    ports: DevicePorts<IommuPort, FileMemory>,
    shared: Arc<Shared>,
    random: StdRng,
    inputs: Inputs,
    now: u64,
    last_activity: u64,
    /// Accesses taken from the host and not yet offered to the NI.
    accesses: VecDeque<Access>,
    /// Numbers of the reads the NI has taken, in the order it answers them.
    reads_answered_in_order: VecDeque<u64>,
    /// [`IDLE_CLOCKS`] plus the longest interrupt coalescing time programmed.
    idle_clocks: u64,
}

impl DeviceThread {
    fn run(mut self) {
        let shared = Arc::clone(&self.shared);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.serve()));
        if let Err(panic) = outcome {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|text| text.to_string()))
                .unwrap_or_else(|| "the device thread panicked".into());
            shared.stop(why);
        }
        // A mapped shared file: the kernel keeps what was written even if this fails.
        if let Err(error) = self.ports.memory.memory().sync() {
            tracing::warn!(%error, "persistent memory not synced to disk");
        }
    }

    fn serve(&mut self) {
        loop {
            {
                let mut state = self.shared.lock();
                loop {
                    if state.shutdown || state.stopped.is_some() {
                        return;
                    }
                    if !state.accesses.is_empty() || self.busy() {
                        break;
                    }
                    state = self
                        .shared
                        .work
                        .wait(state)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                }
                self.shared.accesses_waiting.store(false, Ordering::Release);
                self.accesses.extend(state.accesses.drain(..));
            }
            for _ in 0..BATCH_CLOCKS {
                self.step();
                let more_waiting = self.shared.accesses_waiting.load(Ordering::Acquire);
                if (self.accesses.is_empty() && more_waiting) || !self.busy() {
                    break;
                }
            }
            self.shared.clocks.store(self.now, Ordering::Relaxed);
        }
    }

    fn busy(&self) -> bool {
        !self.accesses.is_empty()
            || !self.reads_answered_in_order.is_empty()
            || self.ports.owe_answers()
            || self.now - self.last_activity < self.idle_clocks
    }

    fn step(&mut self) {
        let now = self.now;
        let mut inputs = self.inputs;
        if let Some(Access::Reset) = self.accesses.front() {
            self.accesses.pop_front();
            self.reset();
            return;
        }
        if !inputs.mmio_request_valid {
            match self.accesses.front() {
                Some(Access::Write(offset, value)) => {
                    inputs.mmio_request_valid = true;
                    inputs.mmio_request_write = true;
                    inputs.mmio_request_address = *offset;
                    inputs.mmio_request_write_data = *value;
                }
                Some(Access::Read(offset, _)) => {
                    inputs.mmio_request_valid = true;
                    inputs.mmio_request_write = false;
                    inputs.mmio_request_address = *offset;
                }
                _ => {}
            }
        }
        self.ports
            .offer(now, &mut inputs, &DeviceStalls::NONE, &mut self.random);
        inputs.mmio_response_ready = true;

        let outputs = self.backend.settle(&inputs);
        let mmio_taken = inputs.mmio_request_valid && outputs.mmio_request_ready;
        let mmio_answered = outputs.mmio_response_valid && inputs.mmio_response_ready;
        let handshakes = self.ports.take(now, &mut inputs, &outputs);
        if mmio_taken || mmio_answered || handshakes.any {
            self.last_activity = now;
        }
        if mmio_taken {
            inputs.mmio_request_valid = false;
            match self.accesses.pop_front() {
                Some(Access::Write(offset, value)) => self.wrote(offset, value),
                Some(Access::Read(_, number)) => self.reads_answered_in_order.push_back(number),
                _ => unreachable!("only register accesses are offered"),
            }
        }
        if mmio_answered || handshakes.interrupt.is_some() {
            let mut state = self.shared.lock();
            if mmio_answered {
                let number = self
                    .reads_answered_in_order
                    .pop_front()
                    .expect("the NI answers only reads it took");
                state.answers.insert(number, outputs.mmio_response_data);
            }
            if let Some(vector) = handshakes.interrupt {
                let vector = usize::from(vector);
                assert!(
                    vector < state.interrupts.len(),
                    "the NI interrupted on vector {vector}, which it does not have"
                );
                state.interrupts[vector] += 1;
                state.last_interrupt_clock[vector] = Some(now);
            }
            self.shared.news.notify_all();
        }

        self.backend.rising_edge();
        self.inputs = inputs;
        self.now += 1;
    }

    fn wrote(&mut self, offset: u16, value: u64) {
        match reg::queue_at(offset) {
            Some((_, reg::queue::CONTROL)) => {
                let coalescing = queue_control::COALESCE_CLOCKS.get(value);
                self.idle_clocks = self.idle_clocks.max(IDLE_CLOCKS + coalescing);
            }
            Some((queue, reg::queue::SQ_TAIL)) => {
                let mut state = self.shared.lock();
                if let Some(clock) = state.last_doorbell_clock.get_mut(usize::from(queue)) {
                    *clock = Some(self.now);
                }
            }
            _ => {}
        }
    }

    /// Pulses reset; whatever was in flight on the ports is dropped, reads
    /// the NI had taken answer all ones.
    fn reset(&mut self) {
        self.ports.reset();
        {
            let mut state = self.shared.lock();
            for number in self.reads_answered_in_order.drain(..) {
                state.answers.insert(number, u64::MAX);
            }
            self.shared.news.notify_all();
        }
        let key = self.inputs.management_key;
        self.inputs = Inputs {
            management_key: key,
            reset: true,
            ..Inputs::default()
        };
        self.now += self.backend.hold_reset(&self.inputs);
        self.inputs.reset = false;
        self.idle_clocks = IDLE_CLOCKS;
        self.last_activity = self.now;
    }
}
