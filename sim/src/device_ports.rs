//! The whole NI's ports other than MMIO, as a board puts them around it: host memory behind
//! the DMA port, persistent memory behind the memory port, an interrupt controller. Shared by
//! the test harness and the simulated card.

use crate::device_harness::DeviceStalls;
use crate::host_port::{DmaTarget, HostPort};
use crate::memory_port::MemoryPort;
use crate::ports::network_interface::{Inputs, Outputs};
use npmu_model::Memory;
use rand::rngs::StdRng;

pub(crate) struct DevicePorts<H: DmaTarget, M: Memory> {
    pub host: HostPort<H>,
    pub memory: MemoryPort<M>,
}

/// A persistent-memory request the NI handed over.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MemoryRequest {
    pub write: bool,
    pub address: u64,
    pub byte_enable: u8,
    pub context: u16,
}

/// What happened on the ports in one clock.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Handshakes {
    pub any: bool,
    pub interrupt: Option<u8>,
    pub memory_request: Option<MemoryRequest>,
}

impl<H: DmaTarget, M: Memory> DevicePorts<H, M> {
    /// Sets this clock's offers and readies on every port but MMIO.
    pub fn offer(
        &mut self,
        now: u64,
        inputs: &mut Inputs,
        stalls: &DeviceStalls,
        random: &mut StdRng,
    ) {
        let gap = stalls.dma_read_completion.holds(random, now, 1);
        let beat = self.host.completion(now, random, gap);
        inputs.dma_read_completion_valid = beat.is_some();
        if let Some(beat) = beat {
            inputs.dma_read_completion_tag = beat.tag;
            inputs.dma_read_completion_data = beat.data;
            inputs.dma_read_completion_last = beat.last;
            inputs.dma_read_completion_error = beat.error;
        }
        if !inputs.dma_write_response_valid && !stalls.dma_write_response.holds(random, now, 2) {
            if let Some(refused) = self.host.write_response(now) {
                inputs.dma_write_response_valid = true;
                inputs.dma_write_response_error = refused;
            }
        }
        if !inputs.memory_response_valid && !stalls.memory_response.holds(random, now, 3) {
            if let Some(data) = self.memory.response(now) {
                inputs.memory_response_valid = true;
                inputs.memory_response_data = data;
            }
        }
        inputs.dma_read_request_ready = !stalls.dma_read_request.holds(random, now, 1);
        inputs.dma_write_ready = !stalls.dma_write.holds(random, now, 2);
        inputs.interrupt_ready = !stalls.interrupt.holds(random, now, 3);
        inputs.memory_request_ready = !stalls.memory_request.holds(random, now, 0);
    }

    /// Carries out every handshake of the settled clock on these ports; withdraws the offers
    /// taken.
    pub fn take(&mut self, now: u64, inputs: &mut Inputs, outputs: &Outputs) -> Handshakes {
        let mut handshakes = Handshakes::default();
        if outputs.dma_read_request_valid && inputs.dma_read_request_ready {
            self.host.take_read(
                now,
                outputs.dma_read_request_tag,
                outputs.dma_read_request_address,
                outputs.dma_read_request_length.into(),
            );
            handshakes.any = true;
        }
        if inputs.dma_read_completion_valid && outputs.dma_read_completion_ready {
            self.host.completion_taken();
            handshakes.any = true;
        }
        if outputs.dma_write_valid && inputs.dma_write_ready {
            self.host.take_write_beat(
                now,
                outputs.dma_write_address,
                outputs.dma_write_length.into(),
                outputs.dma_write_data,
                outputs.dma_write_byte_enable,
                outputs.dma_write_last,
            );
            handshakes.any = true;
        }
        if inputs.dma_write_response_valid && outputs.dma_write_response_ready {
            self.host.write_response_taken();
            inputs.dma_write_response_valid = false;
            handshakes.any = true;
        }
        if outputs.interrupt_valid && inputs.interrupt_ready {
            handshakes.interrupt = Some(outputs.interrupt_vector);
            handshakes.any = true;
        }
        if outputs.memory_request_valid && inputs.memory_request_ready {
            let request = MemoryRequest {
                write: outputs.memory_request_write,
                address: outputs.memory_request_address,
                byte_enable: outputs.memory_request_byte_enable,
                context: outputs.memory_request_context,
            };
            self.memory.accept(
                now,
                request.write,
                request.address,
                outputs.memory_request_write_data,
                request.byte_enable,
            );
            handshakes.memory_request = Some(request);
            handshakes.any = true;
        }
        if inputs.memory_response_valid && outputs.memory_response_ready {
            self.memory.take_response();
            inputs.memory_response_valid = false;
            handshakes.any = true;
        }
        handshakes
    }

    /// Whether a DMA or memory answer is still owed to the NI.
    pub fn owe_answers(&self) -> bool {
        self.host.in_flight() || self.memory.in_flight() > 0
    }

    /// Forgets everything in flight, as a reset of the board would.
    pub fn reset(&mut self) {
        self.host.reset();
        self.memory.reset();
    }
}
