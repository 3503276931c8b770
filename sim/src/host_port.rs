//! Host memory behind the NI's DMA master port: an IOMMU (unmapped IOVA refused), a
//! latency, completions of different reads in any order, and checks that every request
//! keeps the rules of the port.

use npmu_abi::{Config, HOST_PAGE_BYTES};
use npmu_model::{HostDma, HostMemory};
use rand::rngs::StdRng;
use rand::Rng;
use std::collections::VecDeque;

/// Host memory as DMA reaches it: through an IOMMU that may refuse an access.
pub trait DmaTarget {
    /// Fills `buffer` from `iova`; `None` (buffer unspecified) if a page is refused.
    fn dma_read(&self, iova: u64, buffer: &mut [u8]) -> Option<()>;
    /// Writes `data` at `iova`, all of it or, if a page is refused, none (`None`).
    fn dma_write(&mut self, iova: u64, data: &[u8]) -> Option<()>;
}

impl DmaTarget for HostMemory {
    fn dma_read(&self, iova: u64, buffer: &mut [u8]) -> Option<()> {
        self.read(iova, buffer)
    }

    fn dma_write(&mut self, iova: u64, data: &[u8]) -> Option<()> {
        self.write(iova, data)
    }
}

/// A read taken and not yet answered.
struct Read {
    tag: u8,
    due: u64,
    /// The completion's beats: data and last, or one refused beat.
    beats: VecDeque<(u64, bool, bool)>,
}

/// A write request being received beat by beat.
struct IncomingWrite {
    address: u64,
    length: u64,
    beats_left: u64,
    bytes: Vec<(u64, u8)>,
}

pub struct HostPort<H: DmaTarget = HostMemory> {
    memory: H,
    data_bytes: u64,
    max_read: u64,
    max_write: u64,
    latency: u64,
    reads: Vec<Read>,
    /// The read whose burst is going out.
    sending: Option<Read>,
    incoming: Option<IncomingWrite>,
    /// Write responses: the clock each is due and whether the write was refused.
    write_responses: VecDeque<(u64, bool)>,
    reads_taken: u64,
    writes_taken: u64,
}

/// The beat of a read completion on offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompletionBeat {
    pub tag: u8,
    pub data: u64,
    pub last: bool,
    pub error: bool,
}

impl<H: DmaTarget> HostPort<H> {
    pub fn new(memory: H, config: &Config, latency: u64) -> Self {
        Self {
            memory,
            data_bytes: config.data_bytes.into(),
            max_read: config.max_read_request_bytes.into(),
            max_write: config.max_payload_bytes.into(),
            latency: latency.max(1),
            reads: Vec::new(),
            sending: None,
            incoming: None,
            write_responses: VecDeque::new(),
            reads_taken: 0,
            writes_taken: 0,
        }
    }

    pub fn memory(&self) -> &H {
        &self.memory
    }

    pub fn memory_mut(&mut self) -> &mut H {
        &mut self.memory
    }

    /// DMA reads and write requests taken so far.
    pub fn traffic(&self) -> (u64, u64) {
        (self.reads_taken, self.writes_taken)
    }

    /// Whether a read or a write response is still owed to the NI.
    pub fn in_flight(&self) -> bool {
        !self.reads.is_empty()
            || self.sending.is_some()
            || self.incoming.is_some()
            || !self.write_responses.is_empty()
    }

    /// Forgets everything in flight, as the host side of a reset link would.
    pub fn reset(&mut self) {
        self.reads.clear();
        self.sending = None;
        self.incoming = None;
        self.write_responses.clear();
    }

    fn check_request(&self, now: u64, kind: &str, address: u64, length: u64, limit: u64) {
        let fail = |why: &str| -> ! {
            panic!("host port, clock {now}: DMA {kind} of {length} bytes at {address:#x}: {why}")
        };
        if length == 0 || length > limit {
            fail("length outside 1 to the configured maximum");
        }
        let Some(last_byte) = address.checked_add(length - 1) else {
            fail("wraps past 2^64");
        };
        if address / HOST_PAGE_BYTES != last_byte / HOST_PAGE_BYTES {
            fail("crosses a 4 KiB page");
        }
    }

    /// The NI issued a read.
    pub fn take_read(&mut self, now: u64, tag: u8, address: u64, length: u64) {
        self.check_request(now, "read", address, length, self.max_read);
        let busy = self
            .reads
            .iter()
            .map(|read| read.tag)
            .chain(self.sending.as_ref().map(|read| read.tag));
        assert!(
            busy.into_iter().all(|busy| busy != tag),
            "host port, clock {now}: tag {tag} reused while its read is in flight"
        );
        let mut bytes = vec![0u8; length as usize];
        let beats = match self.memory.dma_read(address, &mut bytes) {
            None => [(0, true, true)].into(),
            Some(()) => {
                let lanes = self.data_bytes;
                let first = address - address % lanes;
                let count = (address % lanes + length).div_ceil(lanes);
                (0..count)
                    .map(|beat| {
                        let word = (0..lanes).fold(0u64, |word, lane| {
                            let at = first + beat * lanes + lane;
                            let byte = match at.checked_sub(address) {
                                Some(offset) if offset < length => bytes[offset as usize],
                                _ => 0,
                            };
                            word | u64::from(byte) << (8 * lane)
                        });
                        (word, beat + 1 == count, false)
                    })
                    .collect()
            }
        };
        self.reads.push(Read {
            tag,
            due: now + self.latency,
            beats,
        });
        self.reads_taken += 1;
    }

    /// The completion beat to offer at clock `now`, if any; `gap` leaves a hole this clock.
    pub fn completion(
        &mut self,
        now: u64,
        random: &mut StdRng,
        gap: bool,
    ) -> Option<CompletionBeat> {
        if self.sending.is_none() && !gap {
            let due: Vec<usize> = (0..self.reads.len())
                .filter(|index| self.reads[*index].due <= now)
                .collect();
            if !due.is_empty() {
                // Completions of different reads may come in any order, as on PCIe.
                let pick = due[random.gen_range(0..due.len())];
                self.sending = Some(self.reads.remove(pick));
            }
        }
        if gap {
            return None;
        }
        let read = self.sending.as_ref()?;
        let (data, last, error) = *read.beats.front()?;
        Some(CompletionBeat {
            tag: read.tag,
            data,
            last,
            error,
        })
    }

    /// The offered completion beat was taken.
    pub fn completion_taken(&mut self) {
        let read = self.sending.as_mut().expect("a completion on offer");
        read.beats.pop_front();
        if read.beats.is_empty() {
            self.sending = None;
        }
    }

    /// The NI sent a write beat.
    #[allow(clippy::too_many_arguments)]
    pub fn take_write_beat(
        &mut self,
        now: u64,
        address: u64,
        length: u64,
        data: u64,
        byte_enable: u8,
        last: bool,
    ) {
        if self.incoming.is_none() {
            self.check_request(now, "write", address, length, self.max_write);
        }
        let lanes = self.data_bytes;
        let incoming = self.incoming.get_or_insert_with(|| IncomingWrite {
            address,
            length,
            beats_left: (address % lanes + length).div_ceil(lanes),
            bytes: Vec::new(),
        });
        let fail = |why: &str| -> ! {
            panic!("host port, clock {now}: DMA write of {length} bytes at {address:#x}: {why}")
        };
        if (incoming.address, incoming.length) != (address, length) {
            fail("the request's address or length changed between its beats");
        }
        let beat_index = (address % lanes + length).div_ceil(lanes) - incoming.beats_left;
        let beat_address = address - address % lanes + beat_index * lanes;
        for lane in (0..lanes).filter(|lane| byte_enable >> lane & 1 == 1) {
            let at = beat_address + lane;
            if at < address || at >= address + length {
                fail("a byte enabled outside the request");
            }
            incoming.bytes.push((at, (data >> (8 * lane)) as u8));
        }
        incoming.beats_left -= 1;
        if last != (incoming.beats_left == 0) {
            fail("last is not on the request's last beat");
        }
        if last {
            let incoming = self.incoming.take().unwrap();
            // Every byte of the request, each once: the lanes of different beats differ.
            if incoming.bytes.len() as u64 != length {
                fail("its beats enable fewer bytes than its length");
            }
            let mut data = vec![0; length as usize];
            for (at, byte) in incoming.bytes {
                data[(at - address) as usize] = byte;
            }
            let refused = self.memory.dma_write(address, &data).is_none();
            self.write_responses
                .push_back((now + self.latency, refused));
            self.writes_taken += 1;
        }
    }

    /// The write response to offer at clock `now`: whether it reports a refusal.
    pub fn write_response(&self, now: u64) -> Option<bool> {
        self.write_responses
            .front()
            .filter(|(due, _)| *due <= now)
            .map(|(_, refused)| *refused)
    }

    pub fn write_response_taken(&mut self) {
        self.write_responses.pop_front();
    }
}
