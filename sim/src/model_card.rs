//! A card that answers instantly: the golden model of `npmu-model` behind the same driver
//! traits as [`crate::SimulatedCard`], so the driver and everything above it run unchanged
//! with no simulator underneath. It shows what the host code itself costs, and runs tests
//! fast.
//!
//! Every register write runs the model's queues before it returns: by the time a doorbell
//! write returns, its descriptors have completed. DMA goes through a [`SimulatedIommu`], page
//! by page in the directions mapped, as the Verilator card's does; persistent memory is a
//! [`FileMemory`]. Interrupts coalesce as on the hardware, with no time passing: a count
//! threshold waits for enough completions, a coalescing timer has always run out.

use crate::file_memory::{FileMemory, FileMemoryError};
use crate::iommu::SimulatedIommu;
use crate::CardOptions;
use npmu_abi::registers::{self as reg, queue_control, queue_offset};
use npmu_abi::{Config, ConfigError};
use npmu_device::{Device, DeviceError, DmaMapping, Interrupts, Mmio};
use npmu_model::NetworkInterface;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ModelCardError {
    #[error(transparent)]
    Memory(#[from] FileMemoryError),
    #[error("the model refuses the configuration: {0}")]
    Config(#[from] ConfigError),
}

#[derive(Clone, Debug)]
pub struct ModelCardOptions {
    /// Any valid configuration: the model needs no Verilator build of it.
    pub config: Config,
    /// The key strapped on the board that opens the management lock.
    pub management_key: u64,
}

impl Default for ModelCardOptions {
    /// The Verilator card's defaults, so either card answers the same driver settings.
    fn default() -> Self {
        let card = CardOptions::default();
        Self {
            config: card.config,
            management_key: card.management_key,
        }
    }
}

/// One queue's interrupt, as the hardware's coalescing keeps it.
#[derive(Clone, Copy, Debug, Default)]
struct QueueInterrupt {
    /// Completions landed in host memory since the last interrupt.
    completions: u64,
    /// Interrupts sent and not yet waited for.
    sent: u64,
}

impl QueueInterrupt {
    /// Whether the hardware interrupts now, under the queue's `control`: the count reached,
    /// or a coalescing timer set (with no clock, it has run out).
    fn due(&self, control: u64) -> bool {
        queue_control::INTERRUPT_ENABLE.is_set(control)
            && self.completions > 0
            && (self.completions >= queue_control::COALESCE_COUNT.get(control)
                || queue_control::COALESCE_CLOCKS.get(control) != 0)
    }
}

struct State {
    model: NetworkInterface<FileMemory>,
    interrupts: Vec<QueueInterrupt>,
    /// Why the card stopped answering, if it did.
    failed: Option<String>,
}

impl State {
    /// The queue that writing `value` at `offset` enables: enabling starts a queue afresh,
    /// its interrupt coalescing too.
    fn queue_enabled_by(&self, offset: u16, value: u64) -> Option<usize> {
        let Some((queue, reg::queue::CONTROL)) = reg::queue_at(offset) else {
            return None;
        };
        let enabled = queue_control::ENABLE.is_set(self.model.mmio_read(offset));
        (queue_control::ENABLE.is_set(value) && !enabled).then_some(usize::from(queue))
    }

    /// Counts the completions each queue `landed` and sends the interrupts now due; returns
    /// whether any was sent.
    fn send_due_interrupts(&mut self, landed: &[u32]) -> bool {
        let mut sent_any = false;
        for (queue, (interrupt, landed)) in self.interrupts.iter_mut().zip(landed).enumerate() {
            interrupt.completions += u64::from(*landed);
            let control = self
                .model
                .mmio_read(queue_offset(queue as u16, reg::queue::CONTROL));
            if interrupt.due(control) {
                interrupt.completions = 0;
                interrupt.sent += 1;
                sent_any = true;
            }
        }
        sent_any
    }
}

pub struct ModelCard {
    name: String,
    config: Config,
    iommu: Arc<SimulatedIommu>,
    state: Mutex<State>,
    /// Wakes interrupt waiters.
    interrupt_sent: Condvar,
}

impl ModelCard {
    /// Opens a card named `name` whose persistent memory is the file `memory` (created if
    /// missing) and whose DMA goes through `iommu`. The card is out of reset and ready.
    pub fn open(
        name: &str,
        memory: &Path,
        iommu: Arc<SimulatedIommu>,
        options: ModelCardOptions,
    ) -> Result<Self, ModelCardError> {
        let config = options.config;
        // Before the memory is sized from it.
        config.validate()?;
        let memory = FileMemory::open(memory, config.memory_bytes())?;
        let model = NetworkInterface::new(config, options.management_key, memory)?;
        Ok(Self {
            name: name.to_owned(),
            config,
            iommu,
            state: Mutex::new(State {
                model,
                interrupts: vec![QueueInterrupt::default(); config.queues as usize],
                failed: None,
            }),
            interrupt_sent: Condvar::new(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Makes the card stop answering, as a card that died: reads return all ones, writes
    /// are dropped, no interrupt comes. Persistent memory keeps what it had.
    pub fn fail(&self) {
        let mut state = self.lock();
        if state.failed.is_none() {
            state.failed = Some(format!("card {} failed on request", self.name));
        }
        self.interrupt_sent.notify_all();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Mmio for ModelCard {
    fn read_register(&self, offset: u16) -> u64 {
        let state = self.lock();
        match state.failed {
            Some(_) => u64::MAX,
            None => state.model.mmio_read(offset),
        }
    }

    fn write_register(&self, offset: u16, value: u64) {
        let mut state = self.lock();
        if state.failed.is_some() {
            return;
        }
        let enabled_queue = state.queue_enabled_by(offset, value);
        state.model.mmio_write(offset, value);
        if let Some(interrupt) = enabled_queue.and_then(|queue| state.interrupts.get_mut(queue)) {
            interrupt.completions = 0;
        }
        let landed = state.model.process_queues(&mut self.iommu.lock());
        if state.send_due_interrupts(&landed) {
            self.interrupt_sent.notify_all();
        }
    }
}

impl Interrupts for ModelCard {
    fn interrupt_vectors(&self) -> u16 {
        self.config.queues as u16
    }

    fn wait_interrupt(&self, vector: u16, timeout: Duration) -> Result<bool, DeviceError> {
        let vectors = self.interrupt_vectors();
        if vector >= vectors {
            return Err(DeviceError::NoSuchVector { vector, vectors });
        }
        let deadline = Instant::now().checked_add(timeout);
        let mut state = self.lock();
        loop {
            if state.failed.is_none() {
                let interrupt = &mut state.interrupts[usize::from(vector)];
                if interrupt.sent > 0 {
                    interrupt.sent = 0;
                    return Ok(true);
                }
            }
            let left = deadline.map_or(Duration::MAX, |deadline| {
                deadline.saturating_duration_since(Instant::now())
            });
            if left.is_zero() {
                return Ok(false);
            }
            state = self
                .interrupt_sent
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

impl Device for ModelCard {
    fn name(&self) -> &str {
        &self.name
    }

    fn dma(&self) -> Arc<dyn DmaMapping> {
        Arc::clone(&self.iommu) as Arc<dyn DmaMapping>
    }

    fn reset(&self) -> Result<(), DeviceError> {
        let mut state = self.lock();
        if let Some(why) = &state.failed {
            return Err(DeviceError::Stopped(why.clone()));
        }
        state.model.reset();
        for interrupt in &mut state.interrupts {
            interrupt.completions = 0;
        }
        Ok(())
    }
}

impl Drop for ModelCard {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        // A mapped shared file: the kernel keeps what was written even if this fails.
        if let Err(error) = state.model.memory().sync() {
            tracing::warn!(%error, "persistent memory not synced to disk");
        }
    }
}
