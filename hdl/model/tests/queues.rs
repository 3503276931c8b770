//! The golden model's host queues.

use npmu_abi::program::{self, ContextSettings, QueueSettings};
use npmu_abi::queue::{decode_completion_status, Completion, Descriptor, DescriptorError, Opcode};
use npmu_abi::registers::{queue, queue_offset, queue_status};
use npmu_abi::{Config, Fault};
use npmu_model::{DmaDirection, HostMemory, Memory, NetworkInterface, SparseMemory};
use zerocopy::{FromBytes, IntoBytes};

const KEY: u64 = 77;
const SQ: u64 = 0x10_0000;
const CQ: u64 = 0x20_0000;
const BUFFER: u64 = 0x30_0000;
const PAGE: u64 = 4096;

struct Bench {
    ni: NetworkInterface,
    host: HostMemory,
    key: u32,
    tail: u64,
    read: u64,
}

impl Bench {
    /// Queue 1 (8 submissions, 4 completions) and context 2 over four pages for queue 1.
    fn new() -> Self {
        let mut ni = NetworkInterface::new(Config::SIM, KEY, SparseMemory::new()).unwrap();
        program::unlock(&mut ni, KEY).unwrap();
        program::write_entries(&mut ni, 0, &[Some(10), Some(11), Some(12), Some(13)]).unwrap();
        let settings = ContextSettings {
            tag: 1,
            read: true,
            write: true,
            initiator: Some(1),
            base: 0,
            pages: 4,
            first_entry: 0,
        };
        let key = program::register_context(&mut ni, 2, &settings).unwrap();
        let mut host = HostMemory::new();
        host.map(SQ, PAGE, DmaDirection::ToDevice);
        host.map(CQ, PAGE, DmaDirection::FromDevice);
        host.map(BUFFER, 4 * PAGE, DmaDirection::Bidirectional);
        let queue = QueueSettings {
            submission_base: SQ,
            submission_entries: 8,
            completion_base: CQ,
            completion_entries: 4,
            interrupts: false,
            coalesce_count: 0,
            coalesce_clocks: 0,
        };
        program::set_up_queue(&mut ni, 1, &queue).unwrap();
        Self {
            ni,
            host,
            key,
            tail: 0,
            read: 0,
        }
    }

    fn submit(&mut self, descriptor: Descriptor) {
        let slot = SQ + (self.tail % 8) * 32;
        self.host.contents_mut().write(slot, descriptor.as_bytes());
        self.tail = (self.tail + 1) % 8;
        self.ni
            .mmio_write(queue_offset(1, queue::SQ_TAIL), self.tail);
        self.ni.process_queues(&mut self.host);
    }

    fn transfer(
        &self,
        opcode: Opcode,
        address: u64,
        host: u64,
        length: u32,
        tag: u32,
    ) -> Descriptor {
        Descriptor {
            opcode: opcode as u8,
            context: 2.into(),
            key: self.key.into(),
            address: address.into(),
            host_address: host.into(),
            length: length.into(),
            tag: tag.into(),
            ..Descriptor::default()
        }
    }

    /// The next completion, if the NI has written it, and releases its slot.
    fn next(&mut self) -> Option<Completion> {
        let mut bytes = [0u8; 16];
        self.host
            .contents()
            .read(CQ + (self.read % 4) * 16, &mut bytes);
        let completion = Completion::read_from_bytes(&bytes).unwrap();
        let expected_phase = (self.read / 4) % 2 == 0;
        if (completion.phase & 1 == 1) != expected_phase {
            return None;
        }
        self.read += 1;
        self.ni
            .mmio_write(queue_offset(1, queue::CQ_HEAD), self.read % 4);
        self.ni.process_queues(&mut self.host);
        Some(completion)
    }

    fn status(&self) -> u64 {
        self.ni.mmio_read(queue_offset(1, queue::STATUS))
    }
}

fn outcome(completion: &Completion) -> Result<(), DescriptorError> {
    decode_completion_status(completion.status).unwrap()
}

#[test]
fn writes_then_reads_move_data_and_complete_in_order_with_phases() {
    let mut bench = Bench::new();
    let data: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
    bench.host.contents_mut().write(BUFFER + 3, &data);
    bench.submit(bench.transfer(Opcode::Write, 100, BUFFER + 3, 5000, 1));
    bench.submit(bench.transfer(Opcode::Read, 100, BUFFER + 2 * PAGE, 5000, 2));
    bench.submit(Descriptor {
        opcode: Opcode::Flush as u8,
        tag: 3.into(),
        ..Descriptor::default()
    });
    for tag in 1..=3 {
        let completion = bench.next().expect("a completion");
        assert_eq!(completion.tag.get(), tag);
        assert_eq!(outcome(&completion), Ok(()));
        assert_eq!(completion.submission_head.get(), tag as u16);
        assert_eq!(completion.queue.get(), 1);
    }
    assert_eq!(bench.next().map(|c| c.tag.get()), None);
    let mut back = vec![0u8; 5000];
    bench.host.contents().read(BUFFER + 2 * PAGE, &mut back);
    assert_eq!(back, data);
    let mut stored = [0u8; 4];
    bench.ni.memory().read(10 * PAGE + 100, &mut stored);
    assert_eq!(stored, data[..4]);
}

#[test]
fn a_full_completion_ring_holds_the_queue_until_the_host_releases_entries() {
    let mut bench = Bench::new();
    for tag in 0..5 {
        bench.submit(Descriptor {
            tag: tag.into(),
            ..Descriptor::default()
        });
    }
    assert_eq!(
        bench.ni.mmio_read(queue_offset(1, queue::SQ_HEAD)),
        3,
        "three fit, one slot stays free"
    );
    let tags: Vec<u32> = std::iter::from_fn(|| bench.next())
        .map(|c| c.tag.get())
        .collect();
    assert_eq!(
        tags,
        vec![0, 1, 2, 3, 4],
        "releasing entries lets the rest through, wrapping the phase"
    );
}

#[test]
fn bad_descriptors_faults_and_dma_errors_complete_with_their_status() {
    let mut bench = Bench::new();
    bench
        .host
        .contents_mut()
        .write(BUFFER, &[0xab; 2 * PAGE as usize]);
    bench.host.unmap(BUFFER + PAGE, PAGE);
    let cases = [
        (
            Descriptor {
                opcode: 7,
                ..Descriptor::default()
            },
            Err(DescriptorError::Malformed),
            0,
        ),
        (
            bench.transfer(Opcode::Write, 0, BUFFER, 0, 0),
            Err(DescriptorError::Malformed),
            0,
        ),
        (
            Descriptor {
                flags: 1,
                ..bench.transfer(Opcode::Read, 0, BUFFER, 8, 0)
            },
            Err(DescriptorError::Malformed),
            0,
        ),
        (
            bench.transfer(Opcode::Write, 4 * PAGE - 4, BUFFER, 8, 0),
            Err(DescriptorError::Avt(Fault::OutOfBounds)),
            0,
        ),
        (
            Descriptor {
                key: 5.into(),
                ..bench.transfer(Opcode::Read, 0, BUFFER, 8, 0)
            },
            Err(DescriptorError::Avt(Fault::KeyMismatch)),
            0,
        ),
        (
            bench.transfer(Opcode::Write, 0, BUFFER + PAGE - 8, 16, 0),
            Err(DescriptorError::Dma),
            8,
        ),
        (
            bench.transfer(Opcode::Read, 0, BUFFER + 100, 2 * PAGE as u32, 0),
            Err(DescriptorError::Dma),
            PAGE as u32 - 100,
        ),
    ];
    for (descriptor, status, bytes) in cases {
        bench.submit(descriptor);
        let completion = bench.next().expect("a completion");
        assert_eq!(outcome(&completion), status, "{descriptor:?}");
        assert_eq!(completion.bytes_done.get(), bytes);
    }
    let mut written = [0u8; 16];
    bench.ni.memory().read(10 * PAGE, &mut written);
    assert_eq!(
        written[..8],
        [0xab; 8],
        "the mapped prefix of the faulting write was stored"
    );
    assert_eq!(written[8..], [0; 8], "nothing past the DMA fault");
}

#[test]
fn doorbells_beyond_the_ring_and_writes_while_enabled_are_refused() {
    let mut bench = Bench::new();
    bench.ni.mmio_write(queue_offset(1, queue::SQ_TAIL), 8);
    assert!(queue_status::SQ_DOORBELL_ERROR.is_set(bench.status()));
    bench.ni.mmio_write(queue_offset(1, queue::CQ_HEAD), 2);
    assert!(
        queue_status::CQ_DOORBELL_ERROR.is_set(bench.status()),
        "past the completions written"
    );
    bench.ni.mmio_write(queue_offset(1, queue::SQ_BASE), 0);
    assert!(queue_status::REFUSED_WRITE.is_set(bench.status()));
    assert_eq!(bench.ni.mmio_read(queue_offset(1, queue::SQ_BASE)), SQ);
    assert!(
        queue_status::RUNNING.is_set(bench.status()),
        "none of these halts the queue"
    );
}

#[test]
fn dma_faults_on_rings_halt_the_queue_until_it_is_enabled_again() {
    let mut bench = Bench::new();
    bench.host.unmap(SQ, PAGE);
    bench.submit(Descriptor::default());
    let status = bench.status();
    assert!(queue_status::FETCH_ERROR.is_set(status));
    assert!(!queue_status::RUNNING.is_set(status));
    bench.host.map(SQ, PAGE, DmaDirection::ToDevice);
    bench.ni.mmio_write(queue_offset(1, queue::CONTROL), 0);
    bench.ni.mmio_write(queue_offset(1, queue::CONTROL), 1);
    assert_eq!(bench.status(), queue_status::RUNNING.mask());
    bench.tail = 0;
    bench.host.unmap(CQ, PAGE);
    bench.submit(Descriptor::default());
    assert!(queue_status::COMPLETION_ERROR.is_set(bench.status()));
}

#[test]
fn a_bad_configuration_is_refused_at_enable() {
    let mut ni = NetworkInterface::new(Config::SIM, KEY, SparseMemory::new()).unwrap();
    let settings = QueueSettings {
        submission_base: SQ + 8,
        submission_entries: 8,
        completion_base: CQ,
        completion_entries: 3,
        interrupts: false,
        coalesce_count: 0,
        coalesce_clocks: 0,
    };
    let refused = program::set_up_queue(&mut ni, 0, &settings).unwrap_err();
    assert_eq!(
        refused,
        program::QueueError::Refused(queue_status::CONFIG_ERROR.mask())
    );
}
