//! [`NpmuDevice`]: one card as the persistent memory manager drives it.

use crate::dma::{DmaBuffer, DmaDomain};
use crate::error::DriverError;
use crate::flags::{QueueStatus, Status};
use crate::queue::QueuePair;
use npmu_abi::program::{self, ContextSettings, ContextState, ProgramError, RegisterAccess};
use npmu_abi::queue::{
    decode_completion_status, descriptor_flags, inline_payload_slots, Descriptor, Opcode,
    INLINE_MAX_BYTES, MAX_QUEUE_ENTRIES,
};
use npmu_abi::queue::{COMPLETION_BYTES, DESCRIPTOR_BYTES};
use npmu_abi::registers::{self as reg, identity, queue_offset};
use npmu_device::{Device, DmaDirection};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a waiter looks at the queue's status while nothing completes.
const STATUS_CHECK_INTERVAL: Duration = Duration::from_millis(20);

/// What the card reports of itself: every capability register of the NI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    pub identity: u64,
    pub contexts: u32,
    pub translation_entries: u32,
    pub page_shift: u32,
    pub data_bytes: u32,
    pub max_request_bytes: u32,
    pub memory_pages: u64,
    pub queues: u16,
    pub max_payload_bytes: u32,
    pub max_read_request_bytes: u32,
    pub dma_read_tags: u32,
}

impl Capabilities {
    /// What a card built in `config` reports (its identity register aside).
    pub fn of_config(config: &npmu_abi::Config) -> Self {
        Self {
            identity: 0,
            contexts: config.contexts,
            translation_entries: config.translation_entries,
            page_shift: config.page_shift,
            data_bytes: config.data_bytes,
            max_request_bytes: config.max_request_bytes,
            memory_pages: config.memory_pages,
            queues: config.queues as u16,
            max_payload_bytes: config.max_payload_bytes,
            max_read_request_bytes: config.max_read_request_bytes,
            dma_read_tags: config.dma_read_tags,
        }
    }

    pub fn page_bytes(&self) -> u64 {
        1 << self.page_shift
    }

    pub fn memory_bytes(&self) -> u64 {
        self.memory_pages << self.page_shift
    }
}

#[derive(Clone, Copy, Debug)]
pub struct DriverOptions {
    /// How long an operation may take before the card is declared failed.
    pub timeout: Duration,
    /// Wait for completions on interrupts; otherwise poll.
    pub interrupts: bool,
}

impl Default for DriverOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            interrupts: true,
        }
    }
}

/// A transfer between a DMA buffer and persistent memory.
#[derive(Clone, Copy)]
pub struct Transfer<'a> {
    pub context: u16,
    pub key: u32,
    /// Network virtual address in the context.
    pub address: u64,
    pub buffer: &'a DmaBuffer,
    pub offset: u64,
    pub length: u64,
}

/// What a queue is asked to do.
#[derive(Clone, Copy)]
pub enum Operation<'a> {
    Nop,
    /// The buffer's bytes into persistent memory.
    Write(Transfer<'a>),
    /// Persistent memory into the buffer.
    Read(Transfer<'a>),
    /// Completes when every earlier descriptor of the queue has, their writes durable.
    Flush,
}

/// A descriptor in flight; wait for it with [`NpmuDevice::wait`].
#[must_use = "a submitted operation's outcome must be waited for"]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ticket {
    pub queue: u16,
    pub tag: u32,
}

/// One npmu card: its translation tables, its queues, its failure state.
///
/// Buffers given to a descriptor must stay alive until it completes; one dropped earlier is
/// unmapped first, so the card's access to it fails with a DMA fault instead of reaching
/// freed memory.
pub struct NpmuDevice<D: Device> {
    card: D,
    domain: Arc<DmaDomain>,
    options: DriverOptions,
    capabilities: Capabilities,
    queues: Vec<Option<QueuePair>>,
    next_tag: u32,
    failed: Option<String>,
}

impl<D: Device> NpmuDevice<D> {
    /// Takes `card` over with its own DMA domain.
    pub fn open(card: D, options: DriverOptions) -> Result<Self, DriverError> {
        let domain = DmaDomain::new(card.dma(), npmu_abi::IOVA_BITS as u32);
        Self::open_in(card, domain, options)
    }

    /// Takes `card` over in `domain`, which other cards may share.
    pub fn open_in(
        card: D,
        domain: Arc<DmaDomain>,
        options: DriverOptions,
    ) -> Result<Self, DriverError> {
        if !domain.is_over(&card.dma()) {
            return Err(DriverError::ForeignDomain {
                card: card.name().to_owned(),
            });
        }
        wait_initialized(&card, options.timeout)?;
        let capabilities = read_capabilities(&card)?;
        let device = Self {
            card,
            domain,
            options,
            capabilities,
            queues: (0..capabilities.queues).map(|_| None).collect(),
            next_tag: 1,
            failed: None,
        };
        tracing::info!(card = device.card.name(), capabilities = ?device.capabilities, "card opened");
        Ok(device)
    }

    pub fn card(&self) -> &D {
        &self.card
    }

    pub fn domain(&self) -> &Arc<DmaDomain> {
        &self.domain
    }

    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// How long operations may take from now on before the card is declared failed.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.options.timeout = timeout;
    }

    /// Why the card was declared failed, if it was.
    pub fn failure(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    /// A zeroed buffer in this card's domain.
    pub fn allocate(&self, bytes: u64, direction: DmaDirection) -> Result<DmaBuffer, DriverError> {
        Ok(DmaBuffer::new(&self.domain, bytes, direction)?)
    }

    /// Resets the card: tables cleared, queues disabled, the lock closed. Persistent memory
    /// keeps its contents. Clears an earlier failure if the card answers again.
    pub fn reset(&mut self) -> Result<(), DriverError> {
        self.card.reset().map_err(|source| DriverError::Device {
            card: self.name(),
            source,
        })?;
        // The rings are unmapped as they are freed: whatever the card still sends to them
        // before its reset takes effect, the IOMMU refuses.
        self.queues.iter_mut().for_each(|queue| *queue = None);
        let initialized = wait_initialized(&self.card, self.options.timeout);
        self.failed = initialized.as_ref().err().map(ToString::to_string);
        initialized
    }

    pub fn unlock(&mut self, management_key: u64) -> Result<(), DriverError> {
        self.check_alive()?;
        let result = program::unlock(&mut self.registers(), management_key);
        self.program_result(result)
    }

    pub fn lock(&mut self) -> Result<(), DriverError> {
        self.check_alive()?;
        program::lock(&mut self.registers());
        Ok(())
    }

    /// Registers context `id`; returns its key (the tag's bits and a fresh generation).
    pub fn register_context(
        &mut self,
        id: u16,
        settings: &ContextSettings,
    ) -> Result<u32, DriverError> {
        self.check_alive()?;
        let result = program::register_context(&mut self.registers(), id, settings);
        self.program_result(result)
    }

    /// Revokes context `id`: every request with its key fails from now on.
    pub fn invalidate_context(&mut self, id: u16) -> Result<(), DriverError> {
        self.check_alive()?;
        let result = program::invalidate_context(&mut self.registers(), id);
        self.program_result(result)
    }

    pub fn read_context(&mut self, id: u16) -> Result<ContextState, DriverError> {
        self.check_alive()?;
        let result = program::read_context(&mut self.registers(), id);
        self.program_result(result)
    }

    /// Writes translation entries from `first`: `Some(page)` maps, `None` unmaps.
    pub fn write_entries(&mut self, first: u32, pages: &[Option<u32>]) -> Result<(), DriverError> {
        self.check_alive()?;
        let result = program::write_entries(&mut self.registers(), first, pages);
        self.program_result(result)
    }

    pub fn read_entry(&mut self, index: u32) -> Result<Option<u32>, DriverError> {
        self.check_alive()?;
        let result = program::read_entry(&mut self.registers(), index);
        self.program_result(result)
    }

    /// Sets queue pair `queue` up with rings of `entries` each; completions interrupt on
    /// vector `queue` if the driver waits on interrupts. The queue is granted the domain's
    /// whole IOVA span as its host-memory window ([`DmaDomain::window`]), which holds its
    /// rings and every buffer [`NpmuDevice::allocate`] hands out, so the management lock
    /// must be open.
    pub fn create_queue(&mut self, queue: u16, entries: u32) -> Result<(), DriverError> {
        self.check_alive()?;
        self.check_queue(queue)?;
        if !entries.is_power_of_two() || !(2..=MAX_QUEUE_ENTRIES).contains(&entries) {
            return Err(DriverError::BadQueueEntries {
                card: self.name(),
                queue,
                entries,
            });
        }
        self.destroy_queue(queue)?;
        let submissions = self.allocate(
            u64::from(entries) * u64::from(DESCRIPTOR_BYTES),
            DmaDirection::ToDevice,
        )?;
        let completions = self.allocate(
            u64::from(entries) * u64::from(COMPLETION_BYTES),
            DmaDirection::FromDevice,
        )?;
        let window = self.domain.window();
        let granted = program::set_queue_window(&mut self.registers(), queue, window);
        self.program_result(granted)?;
        let settings = program::QueueSettings {
            submission_base: submissions.iova(),
            submission_entries: entries,
            completion_base: completions.iova(),
            completion_entries: entries,
            interrupts: self.options.interrupts,
            coalesce_count: 1,
            coalesce_clocks: 0,
        };
        program::set_up_queue(&mut self.registers(), queue, &settings).map_err(|source| {
            DriverError::QueueRefused {
                card: self.name(),
                queue,
                source,
            }
        })?;
        self.queues[usize::from(queue)] = Some(QueuePair::new(submissions, completions, entries));
        Ok(())
    }

    /// Disables queue `queue` and frees its rings; refused while descriptors are out.
    pub fn destroy_queue(&mut self, queue: u16) -> Result<(), DriverError> {
        self.check_queue(queue)?;
        if let Some(pair) = &self.queues[usize::from(queue)] {
            if !pair.outstanding.is_empty() {
                return Err(DriverError::QueueBusy {
                    card: self.name(),
                    queue,
                    outstanding: pair.outstanding.len() as u32,
                });
            }
        }
        self.card
            .write_register(queue_offset(queue, reg::queue::CONTROL), 0);
        self.queues[usize::from(queue)] = None;
        Ok(())
    }

    /// Puts `operation` on `queue` and rings its doorbell.
    pub fn submit(&mut self, queue: u16, operation: Operation) -> Result<Ticket, DriverError> {
        self.check_alive()?;
        self.check_queue(queue)?;
        let descriptor = self.descriptor(operation)?;
        let block_slots = self.capabilities.max_read_request_bytes / DESCRIPTOR_BYTES;
        let card = self.card.name();
        let pair =
            self.queues[usize::from(queue)]
                .as_mut()
                .ok_or_else(|| DriverError::QueueNotSetUp {
                    card: card.to_owned(),
                    queue,
                })?;
        // A small WRITE goes inline, its bytes copied into the ring, where it comes in the
        // descriptor's own fetch: one host round trip instead of two.
        let inline_slots = 1 + inline_payload_slots(descriptor.length.get());
        let inline = match operation {
            Operation::Write(transfer)
                if transfer.length <= u64::from(INLINE_MAX_BYTES)
                    && pair.inline_fits(inline_slots, block_slots)
                    && pair.has_room(inline_slots) =>
            {
                Some(transfer)
            }
            _ => None,
        };
        let slots = if inline.is_some() { inline_slots } else { 1 };
        if !pair.has_room(slots) {
            return Err(DriverError::QueueFull {
                card: self.name(),
                queue,
            });
        }
        let tag = self.next_tag;
        self.next_tag = self.next_tag.wrapping_add(1).max(1);
        let mut descriptor = Descriptor {
            tag: tag.into(),
            ..descriptor
        };
        let mut payload = Vec::new();
        if let Some(transfer) = inline {
            payload.resize(transfer.length as usize, 0);
            transfer.buffer.read(transfer.offset, &mut payload)?;
            descriptor.flags = descriptor_flags::INLINE;
            descriptor.host_address = 0.into();
        }
        let doorbell = pair.push(&descriptor, &payload)?;
        self.card
            .write_register(queue_offset(queue, reg::queue::SQ_TAIL), doorbell.into());
        Ok(Ticket { queue, tag })
    }

    /// Waits until `ticket`'s descriptor completes; returns the bytes it moved.
    pub fn wait(&mut self, ticket: Ticket) -> Result<u32, DriverError> {
        let queue = ticket.queue;
        self.check_queue(queue)?;
        // Taken when the first look finds nothing: most waits end before that.
        let mut deadline = None;
        let mut last_status_check = None;
        loop {
            let card = self.card.name();
            let pair = self.queues[usize::from(queue)].as_mut().ok_or_else(|| {
                DriverError::QueueNotSetUp {
                    card: card.to_owned(),
                    queue,
                }
            })?;
            if let Some(completion) = pair.finished.remove(&ticket.tag) {
                return self.outcome(queue, &completion);
            }
            if !pair.outstanding.contains_key(&ticket.tag) {
                return Err(DriverError::UnknownTag {
                    card: self.name(),
                    queue,
                    tag: ticket.tag,
                });
            }
            self.check_alive()?;
            if self.reap(queue)? > 0 {
                continue;
            }
            let now = Instant::now();
            let deadline = *deadline.get_or_insert(now + self.options.timeout);
            if now >= deadline {
                return Err(
                    self.declare_failed(format!("descriptor {} on queue {queue}", ticket.tag))
                );
            }
            self.idle(queue, deadline - now)?;
            let last_check = *last_status_check.get_or_insert(now);
            if last_check.elapsed() >= STATUS_CHECK_INTERVAL {
                if let Err(error) = self.check_not_halted(queue) {
                    if let DriverError::NoAnswer { .. } = error {
                        self.failed = Some(error.to_string());
                    }
                    return Err(error);
                }
                last_status_check = Some(Instant::now());
            }
        }
    }

    /// Submits `operation` and waits for it.
    pub fn run(&mut self, queue: u16, operation: Operation) -> Result<u32, DriverError> {
        let ticket = self.submit(queue, operation)?;
        self.wait(ticket)
    }

    /// Reads the card's registers directly, for diagnostics.
    pub fn read_register(&self, offset: u16) -> u64 {
        self.card.read_register(offset)
    }

    pub fn queue_status(&self, queue: u16) -> Result<QueueStatus, DriverError> {
        self.check_queue(queue)?;
        let offset = queue_offset(queue, reg::queue::STATUS);
        let value = checked_read(&self.card, offset)?;
        Ok(QueueStatus::from_bits_retain(value))
    }

    fn name(&self) -> String {
        self.card.name().to_owned()
    }

    fn registers(&mut self) -> Registers<'_, D> {
        Registers(&self.card)
    }

    fn check_alive(&self) -> Result<(), DriverError> {
        match &self.failed {
            Some(why) => Err(DriverError::Failed {
                card: self.name(),
                why: why.clone(),
            }),
            None => Ok(()),
        }
    }

    fn check_queue(&self, queue: u16) -> Result<(), DriverError> {
        if queue >= self.capabilities.queues {
            return Err(DriverError::NoSuchQueue {
                card: self.name(),
                queue,
                queues: self.capabilities.queues,
            });
        }
        Ok(())
    }

    fn declare_failed(&mut self, what: String) -> DriverError {
        let milliseconds = self.options.timeout.as_millis();
        tracing::error!(card = self.card.name(), %what, "timeout: card marked failed");
        self.failed = Some(format!("{what} timed out"));
        DriverError::Timeout {
            card: self.name(),
            what,
            milliseconds,
        }
    }

    fn program_result<T>(&mut self, result: Result<T, ProgramError>) -> Result<T, DriverError> {
        result.map_err(|source| {
            if source != ProgramError::Timeout {
                return DriverError::Program {
                    card: self.name(),
                    source,
                };
            }
            // A card that dropped off the bus reads all ones, which looks like a command
            // forever busy: say which it is.
            let error = match checked_read(&self.card, reg::IDENTITY.offset) {
                Err(no_answer) => no_answer,
                Ok(_) => DriverError::Program {
                    card: self.name(),
                    source,
                },
            };
            self.failed = Some(error.to_string());
            error
        })
    }

    /// The descriptor for `operation`, its tag not yet set; bad arguments are refused here,
    /// before the card sees anything.
    fn descriptor(&self, operation: Operation) -> Result<Descriptor, DriverError> {
        let (opcode, transfer) = match operation {
            Operation::Nop => return Ok(Descriptor::default()),
            Operation::Flush => {
                return Ok(Descriptor {
                    opcode: Opcode::Flush as u8,
                    ..Descriptor::default()
                })
            }
            Operation::Write(transfer) => (Opcode::Write, transfer),
            Operation::Read(transfer) => (Opcode::Read, transfer),
        };
        let max = self.capabilities.max_request_bytes;
        if transfer.length == 0 || transfer.length > u64::from(max) {
            return Err(DriverError::BadLength {
                card: self.name(),
                length: transfer.length,
                max,
            });
        }
        let buffer = transfer.buffer;
        if !Arc::ptr_eq(buffer.domain(), &self.domain) {
            return Err(DriverError::BufferOfAnotherDomain { card: self.name() });
        }
        let direction = buffer.direction();
        let (allowed, operation, needs) = match opcode {
            Opcode::Write => (direction.lets_device_read(), "write", "read"),
            _ => (direction.lets_device_write(), "read", "write"),
        };
        if !allowed {
            return Err(DriverError::WrongDirection {
                card: self.name(),
                operation,
                needs,
                direction,
            });
        }
        if transfer.length > buffer.size() || transfer.offset > buffer.size() - transfer.length {
            return Err(crate::dma::DmaError::OutOfBuffer {
                offset: transfer.offset,
                length: transfer.length,
                size: buffer.size(),
            }
            .into());
        }
        Ok(Descriptor {
            opcode: opcode as u8,
            context: transfer.context.into(),
            key: transfer.key.into(),
            address: transfer.address.into(),
            host_address: (buffer.iova() + transfer.offset).into(),
            length: (transfer.length as u32).into(),
            ..Descriptor::default()
        })
    }

    /// Reads what the card completed on `queue` and hands the slots back to it.
    fn reap(&mut self, queue: u16) -> Result<u32, DriverError> {
        let pair = self.queues[usize::from(queue)]
            .as_mut()
            .expect("checked by the caller");
        let (reaped, doorbell) = pair.reap()?;
        if let Some(head) = doorbell {
            self.card
                .write_register(queue_offset(queue, reg::queue::CQ_HEAD), head.into());
        }
        Ok(reaped)
    }

    /// Waits a little for the card: on the queue's interrupt, or by polling.
    fn idle(&mut self, queue: u16, left: Duration) -> Result<(), DriverError> {
        if !self.options.interrupts {
            std::thread::yield_now();
            return Ok(());
        }
        self.card
            .wait_interrupt(queue, left.min(STATUS_CHECK_INTERVAL))
            .map(|_| ())
            .map_err(|source| DriverError::Device {
                card: self.name(),
                source,
            })
    }

    /// A halted queue never completes what it holds: say why instead of timing out.
    fn check_not_halted(&self, queue: u16) -> Result<(), DriverError> {
        let status = self.queue_status(queue)?;
        let halting =
            QueueStatus::CONFIG_ERROR | QueueStatus::FETCH_ERROR | QueueStatus::COMPLETION_ERROR;
        if status.intersects(halting) {
            return Err(DriverError::QueueHalted {
                card: self.name(),
                queue,
                status,
            });
        }
        Ok(())
    }

    fn outcome(
        &self,
        queue: u16,
        completion: &npmu_abi::queue::Completion,
    ) -> Result<u32, DriverError> {
        let bytes_done = completion.bytes_done.get();
        match decode_completion_status(completion.status) {
            Some(Ok(())) => Ok(bytes_done),
            Some(Err(error)) => Err(DriverError::Descriptor {
                card: self.name(),
                queue,
                tag: completion.tag.get(),
                bytes_done,
                error,
            }),
            None => Err(DriverError::UnknownStatus {
                card: self.name(),
                queue,
                status: completion.status,
            }),
        }
    }
}

/// A register read that fails on the all-ones answer of a card that is gone.
fn checked_read(card: &impl Device, offset: u16) -> Result<u64, DriverError> {
    let value = card.read_register(offset);
    if value == u64::MAX {
        return Err(DriverError::NoAnswer {
            card: card.name().to_owned(),
            offset,
        });
    }
    Ok(value)
}

/// Waits until the card has cleared its tables after reset.
fn wait_initialized(card: &impl Device, timeout: Duration) -> Result<(), DriverError> {
    let deadline = Instant::now() + timeout;
    loop {
        let status = Status::from_bits_retain(checked_read(card, reg::STATUS.offset)?);
        if !status.contains(Status::INITIALIZING) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(DriverError::Timeout {
                card: card.name().to_owned(),
                what: "initialization after reset".into(),
                milliseconds: timeout.as_millis(),
            });
        }
        std::thread::sleep(Duration::from_micros(50));
    }
}

fn read_capabilities(card: &impl Device) -> Result<Capabilities, DriverError> {
    let name = || card.name().to_owned();
    let read = |register: reg::Register| checked_read(card, register.offset);
    let narrow = |register: reg::Register| -> Result<u32, DriverError> {
        let value = read(register)?;
        u32::try_from(value).map_err(|_| DriverError::BadCapability {
            card: name(),
            what: format!("{} = {value:#x}", register.name),
        })
    };
    let identity = read(reg::IDENTITY)?;
    if identity::MAGIC.get(identity) != identity::MAGIC_VALUE {
        return Err(DriverError::NotAnNpmu {
            card: name(),
            found: identity,
        });
    }
    let capabilities = Capabilities {
        identity,
        contexts: narrow(reg::CONTEXTS)?,
        translation_entries: narrow(reg::TRANSLATION_ENTRIES)?,
        page_shift: narrow(reg::PAGE_SHIFT)?,
        data_bytes: narrow(reg::DATA_BYTES)?,
        max_request_bytes: narrow(reg::MAX_REQUEST_BYTES)?,
        memory_pages: read(reg::MEMORY_PAGES)?,
        queues: u16::try_from(narrow(reg::QUEUES)?).map_err(|_| DriverError::BadCapability {
            card: name(),
            what: "more queues than queue numbers".into(),
        })?,
        max_payload_bytes: narrow(reg::MAX_PAYLOAD_BYTES)?,
        max_read_request_bytes: narrow(reg::MAX_READ_REQUEST_BYTES)?,
        dma_read_tags: narrow(reg::DMA_READ_TAGS)?,
    };
    // No queues is possible: a board behind a serial bridge has no command engine.
    let impossible = if !(9..=30).contains(&capabilities.page_shift) {
        Some("a page size outside 512 B to 1 GiB")
    } else if capabilities.max_request_bytes == 0 || capabilities.memory_pages == 0 {
        Some("no persistent memory or no transfer size")
    } else {
        None
    };
    if let Some(what) = impossible {
        return Err(DriverError::BadCapability {
            card: name(),
            what: what.into(),
        });
    }
    Ok(capabilities)
}

/// The card's registers as the abi's programming sequences use them.
struct Registers<'a, D: Device>(&'a D);

impl<D: Device> RegisterAccess for Registers<'_, D> {
    fn read(&mut self, offset: u16) -> u64 {
        self.0.read_register(offset)
    }

    fn write(&mut self, offset: u16, value: u64) {
        self.0.write_register(offset, value);
    }
}
