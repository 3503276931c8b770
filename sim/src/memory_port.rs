//! Persistent memory behind the NI's memory port: a fixed latency, responses in order.

use npmu_model::{Memory, SparseMemory};
use std::collections::VecDeque;

pub struct MemoryPort<M: Memory = SparseMemory> {
    memory: M,
    data_bytes: usize,
    latency: u64,
    /// Responses not yet taken: the clock each is due and its data.
    responses: VecDeque<(u64, u64)>,
}

impl<M: Memory> MemoryPort<M> {
    pub fn new(memory: M, data_bytes: u32, latency: u64) -> Self {
        Self {
            memory,
            data_bytes: data_bytes as usize,
            latency: latency.max(1),
            responses: VecDeque::new(),
        }
    }

    pub fn memory(&self) -> &M {
        &self.memory
    }

    /// Carries out a request taken at clock `now`: a write stores its enabled lanes at
    /// once (the acknowledgement says it is durable), a read samples memory at once.
    pub fn accept(&mut self, now: u64, write: bool, address: u64, data: u64, byte_enable: u8) {
        let mut response = 0;
        if write {
            for lane in (0..self.data_bytes).filter(|lane| byte_enable >> lane & 1 == 1) {
                self.memory
                    .write(address + lane as u64, &[(data >> (8 * lane)) as u8]);
            }
        } else {
            let mut bytes = [0u8; 8];
            self.memory.read(address, &mut bytes[..self.data_bytes]);
            response = u64::from_le_bytes(bytes);
        }
        self.responses.push_back((now + self.latency, response));
    }

    /// The response due at clock `now`, if any.
    pub fn response(&self, now: u64) -> Option<u64> {
        self.responses
            .front()
            .filter(|(due, _)| *due <= now)
            .map(|(_, data)| *data)
    }

    /// Requests taken and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.responses.len()
    }

    pub fn take_response(&mut self) {
        self.responses.pop_front();
    }

    /// Forgets requests in flight, as a reset of the memory controller would.
    pub fn reset(&mut self) {
        self.responses.clear();
    }
}
