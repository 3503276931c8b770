//! The host queues of the golden model: queue registers, and descriptors executed at once
//! when [`NetworkInterface::process_queues`] is called, as far as each completion ring has
//! room. Host memory is anything DMA reaches through an IOMMU ([`HostDma`]).

use crate::host::HostDma;
use crate::{Memory, NetworkInterface};
use npmu_abi::queue::{
    encode_completion_status, Completion, Descriptor, DescriptorError, HostWindow, Opcode,
    COMPLETION_BYTES, DESCRIPTOR_BYTES, INLINE_MAX_BYTES,
};
use npmu_abi::registers::{queue, queue_control, queue_status, Register};
use npmu_abi::{Operation, Request, HOST_PAGE_BYTES};
use zerocopy::{FromBytes, IntoBytes};

/// One queue pair's registers and pointers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct QueueState {
    sq_base: u64,
    sq_entries: u64,
    sq_tail: u64,
    sq_head: u64,
    cq_base: u64,
    cq_entries: u64,
    cq_head: u64,
    cq_tail: u64,
    /// Phase of the pass through the completion ring the NI is writing.
    phase: bool,
    control: u64,
    /// Sticky error bits of [`queue_status`].
    errors: u64,
    /// Where every DMA of the queue must lie; empty after reset.
    window: HostWindow,
    /// Slots of an inline payload still to pass over, past the tail the host had published
    /// when its descriptor ran: they are never read as descriptors.
    payload_slots_due: u64,
}

impl QueueState {
    fn enabled(&self) -> bool {
        queue_control::ENABLE.is_set(self.control)
    }

    fn running(&self) -> bool {
        self.enabled() && self.errors & queue_status::HALTING == 0
    }

    fn configuration_valid(&self) -> bool {
        queue::ring_valid(self.sq_base, self.sq_entries, DESCRIPTOR_BYTES)
            && queue::ring_valid(self.cq_base, self.cq_entries, COMPLETION_BYTES)
    }

    /// Whether both rings lie wholly inside the window.
    fn rings_inside_window(&self) -> bool {
        self.window
            .holds(self.sq_base, self.sq_entries * u64::from(DESCRIPTOR_BYTES))
            && self
                .window
                .holds(self.cq_base, self.cq_entries * u64::from(COMPLETION_BYTES))
    }

    /// Slots from the head up to the tail the host published.
    fn published(&self) -> u64 {
        self.sq_tail.wrapping_sub(self.sq_head) & (self.sq_entries - 1)
    }

    fn completions_pending(&self) -> u64 {
        (self.cq_tail.wrapping_sub(self.cq_head)) & (self.cq_entries - 1)
    }

    fn completion_room(&self) -> u64 {
        self.cq_entries - 1 - self.completions_pending()
    }

    pub(crate) fn read(&self, register: Register) -> u64 {
        match register {
            queue::SQ_BASE => self.sq_base,
            queue::SQ_ENTRIES => self.sq_entries,
            queue::SQ_TAIL => self.sq_tail,
            queue::SQ_HEAD => self.sq_head,
            queue::CQ_BASE => self.cq_base,
            queue::CQ_ENTRIES => self.cq_entries,
            queue::CQ_HEAD => self.cq_head,
            queue::CQ_TAIL => self.cq_tail,
            queue::CONTROL => self.control,
            queue::STATUS => queue_status::RUNNING.place(self.running().into()) | self.errors,
            queue::WINDOW_BASE => self.window.base,
            queue::WINDOW_BYTES => self.window.bytes,
            _ => 0,
        }
    }

    /// A register write; the caller has already dropped window writes while the
    /// management lock is closed.
    pub(crate) fn write(&mut self, register: Register, value: u64) {
        let refuse = |errors: &mut u64| *errors |= queue_status::REFUSED_WRITE.mask();
        match register {
            queue::SQ_BASE
            | queue::SQ_ENTRIES
            | queue::CQ_BASE
            | queue::CQ_ENTRIES
            | queue::WINDOW_BASE
            | queue::WINDOW_BYTES
                if self.enabled() =>
            {
                refuse(&mut self.errors)
            }
            queue::SQ_ENTRIES | queue::CQ_ENTRIES if value >> queue::POINTER_BITS != 0 => {
                refuse(&mut self.errors)
            }
            queue::SQ_BASE => self.sq_base = value,
            queue::SQ_ENTRIES => self.sq_entries = value,
            queue::CQ_BASE => self.cq_base = value,
            queue::CQ_ENTRIES => self.cq_entries = value,
            queue::WINDOW_BASE => self.window.base = value,
            queue::WINDOW_BYTES => self.window.bytes = value,
            queue::SQ_TAIL | queue::CQ_HEAD if !self.enabled() => refuse(&mut self.errors),
            queue::SQ_TAIL if value >= self.sq_entries => {
                self.errors |= queue_status::SQ_DOORBELL_ERROR.mask()
            }
            queue::SQ_TAIL => self.sq_tail = value,
            queue::CQ_HEAD => {
                let released = value.wrapping_sub(self.cq_head) & (self.cq_entries - 1);
                if value >= self.cq_entries || released > self.completions_pending() {
                    self.errors |= queue_status::CQ_DOORBELL_ERROR.mask();
                } else {
                    self.cq_head = value;
                }
            }
            queue::CONTROL => {
                let enabling = queue_control::ENABLE.is_set(value) && !self.enabled();
                self.control = value & queue_control::WRITABLE;
                if enabling {
                    *self = QueueState {
                        control: self.control,
                        phase: true,
                        ..*self
                    };
                    (self.sq_head, self.sq_tail, self.cq_head, self.cq_tail) = (0, 0, 0, 0);
                    self.payload_slots_due = 0;
                    self.errors = 0;
                    if !self.configuration_valid() {
                        self.errors |= queue_status::CONFIG_ERROR.mask();
                    }
                    if !self.rings_inside_window() {
                        self.errors |= queue_status::WINDOW_ERROR.mask();
                    }
                }
            }
            _ => {}
        }
    }
}

/// Where an inline WRITE's payload lies in its submission ring, and whether it breaks the
/// ring's rules.
struct InlinePayload {
    address: u64,
    /// It would run past the ring's last slot.
    wraps: bool,
    /// It runs past the tail the host published.
    unpublished: bool,
}

impl<M: Memory> NetworkInterface<M> {
    /// Runs every descriptor the running queues hold, as far as each completion ring has
    /// room, reading descriptors and data from `host` and writing data and completions to it.
    /// Returns, by queue, the completions that landed in host memory: what the hardware
    /// counts towards an interrupt.
    pub fn process_queues<H: HostDma>(&mut self, host: &mut H) -> Vec<u32> {
        (0..self.state.queues.len())
            .map(|queue| self.process_queue(queue, host))
            .collect()
    }

    fn process_queue<H: HostDma>(&mut self, index: usize, host: &mut H) -> u32 {
        let mut landed = 0;
        loop {
            let state = self.state.queues[index];
            if !state.running() || state.sq_head == state.sq_tail {
                return landed;
            }
            let mask = state.sq_entries - 1;
            if state.payload_slots_due != 0 {
                let passed = state.payload_slots_due.min(state.published());
                let queue = &mut self.state.queues[index];
                queue.sq_head = (state.sq_head + passed) & mask;
                queue.payload_slots_due -= passed;
                continue;
            }
            if state.completion_room() == 0 {
                return landed;
            }
            let mut bytes = [0u8; DESCRIPTOR_BYTES as usize];
            let slot = state.sq_base + state.sq_head * u64::from(DESCRIPTOR_BYTES);
            if host.read(slot, &mut bytes).is_none() {
                self.state.queues[index].errors |= queue_status::FETCH_ERROR.mask();
                return landed;
            }
            let descriptor = Descriptor::read_from_bytes(&bytes).expect("32 bytes");
            // The descriptor's slots, as far as published; the rest are passed over later.
            let slots = u64::from(descriptor.slots());
            let taken = slots.min(state.published());
            let sq_head = (state.sq_head + slots) & mask;
            self.state.queues[index].sq_head = (state.sq_head + taken) & mask;
            self.state.queues[index].payload_slots_due = slots - taken;
            let payload = InlinePayload {
                address: slot + u64::from(DESCRIPTOR_BYTES),
                wraps: state.sq_head + slots > state.sq_entries,
                unpublished: slots > state.published(),
            };
            let (status, bytes_done) =
                self.execute_queued_descriptor(index as u16, &descriptor, &payload, host);
            let completion = Completion {
                tag: descriptor.tag,
                status: encode_completion_status(status),
                submission_head: (sq_head as u16).into(),
                bytes_done: bytes_done.into(),
                queue: (index as u16).into(),
                phase: state.phase.into(),
                ..Completion::default()
            };
            let entry = state.cq_base + state.cq_tail * u64::from(COMPLETION_BYTES);
            let written = host.write(entry, completion.as_bytes());
            let queue = &mut self.state.queues[index];
            queue.cq_tail = (state.cq_tail + 1) & (state.cq_entries - 1);
            if queue.cq_tail == 0 {
                queue.phase = !queue.phase;
            }
            match written {
                Some(()) => landed += 1,
                None => queue.errors |= queue_status::COMPLETION_ERROR.mask(),
            }
        }
    }

    /// Runs one descriptor from `queue` that is no inline WRITE; returns its status and the
    /// bytes it moved.
    pub fn execute_descriptor<H: HostDma>(
        &mut self,
        queue: u16,
        descriptor: &Descriptor,
        host: &mut H,
    ) -> (Result<(), DescriptorError>, u32) {
        let no_payload = InlinePayload {
            address: 0,
            wraps: false,
            unpublished: false,
        };
        self.execute_queued_descriptor(queue, descriptor, &no_payload, host)
    }

    /// Runs one descriptor from `queue`, an inline WRITE's payload where `payload` says.
    fn execute_queued_descriptor<H: HostDma>(
        &mut self,
        queue: u16,
        descriptor: &Descriptor,
        payload: &InlinePayload,
        host: &mut H,
    ) -> (Result<(), DescriptorError>, u32) {
        if descriptor.malformed(self.config.max_request_bytes) {
            return (Err(DescriptorError::Malformed), 0);
        }
        let inline = descriptor.is_inline();
        if inline && descriptor.length.get() > INLINE_MAX_BYTES {
            return (Err(DescriptorError::InlineTooLong), 0);
        }
        if inline && payload.wraps {
            return (Err(DescriptorError::InlineWrapsRing), 0);
        }
        if inline && payload.unpublished {
            return (Err(DescriptorError::InlinePastTail), 0);
        }
        let window = self.state.queues[usize::from(queue)].window;
        if let Some((address, length)) = descriptor.host_buffer() {
            if !window.holds(address, length) {
                return (Err(DescriptorError::OutsideWindow), 0);
            }
        }
        let operation = match Opcode::from_code(descriptor.opcode) {
            Some(Opcode::Write) => Operation::Write,
            Some(Opcode::Read) => Operation::Read,
            _ => return (Ok(()), 0),
        };
        let request = Request {
            operation,
            context: descriptor.context.get(),
            key: descriptor.key.get(),
            initiator: queue,
            address: descriptor.address.get(),
            length: descriptor.length.get(),
        };
        // An inline payload is read from the ring, which lies inside the window.
        let iova = if inline {
            payload.address
        } else {
            descriptor.host_address.get()
        };
        let length = u64::from(request.length);
        // The bytes before the first page the IOMMU refuses; the NI moves only those.
        let reachable = match operation {
            Operation::Write => host.readable_prefix(iova, length),
            Operation::Read => host.writable_prefix(iova, length),
        };
        let mut write_data = Vec::new();
        if operation == Operation::Write {
            // Bytes past the refused page never arrive: only the reachable ones are read.
            write_data.resize(request.length as usize, 0);
            host.read(iova, &mut write_data[..reachable as usize])
                .expect("the readable prefix reads");
        }
        let outcome = self.run_request(&request, &write_data, reachable as usize);
        match outcome {
            Err(fault) => (Err(DescriptorError::Avt(fault)), 0),
            Ok(read_data) => {
                if operation == Operation::Read {
                    // Every mapped page of the buffer receives its part, even past a fault.
                    // Last bytes, not ends: a buffer may end at 2^64.
                    let last = iova + (length - 1);
                    for page in iova / HOST_PAGE_BYTES..=last / HOST_PAGE_BYTES {
                        let from = (page * HOST_PAGE_BYTES).max(iova);
                        let to_last = (page * HOST_PAGE_BYTES + (HOST_PAGE_BYTES - 1)).min(last);
                        let part = &read_data[(from - iova) as usize..=(to_last - iova) as usize];
                        let _ = host.write(from, part);
                    }
                }
                if reachable < length {
                    (Err(DescriptorError::Dma), reachable as u32)
                } else {
                    (Ok(()), request.length)
                }
            }
        }
    }
}
