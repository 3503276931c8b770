//! The golden model's host queues.

use npmu_abi::program::{self, ContextSettings, QueueSettings};
use npmu_abi::queue::{
    decode_completion_status, Completion, Descriptor, DescriptorError, HostWindow, Opcode,
};
use npmu_abi::registers::{self as reg, queue, queue_offset, queue_status};
use npmu_abi::{Config, Fault};
use npmu_model::{DmaDirection, HostMemory, Memory, NetworkInterface, SparseMemory};
use zerocopy::{FromBytes, IntoBytes};

const KEY: u64 = 77;
const SQ: u64 = 0x10_0000;
const CQ: u64 = 0x20_0000;
const BUFFER: u64 = 0x30_0000;
const PAGE: u64 = 4096;
/// Queue 1's window: from its submission ring to the end of its buffer.
const WINDOW: HostWindow = HostWindow {
    base: SQ,
    bytes: BUFFER + 4 * PAGE - SQ,
};

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
        program::set_queue_window(&mut ni, 1, WINDOW).unwrap();
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
    program::unlock(&mut ni, KEY).unwrap();
    program::set_queue_window(&mut ni, 0, HostWindow::WIDEST).unwrap();
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

fn rings(submission_base: u64, completion_base: u64) -> QueueSettings {
    QueueSettings {
        submission_base,
        submission_entries: 8,
        completion_base,
        completion_entries: 4,
        interrupts: false,
        coalesce_count: 0,
        coalesce_clocks: 0,
    }
}

#[test]
fn an_empty_window_refuses_enabling_and_the_queue_moves_nothing() {
    let mut ni = NetworkInterface::new(Config::SIM, KEY, SparseMemory::new()).unwrap();
    assert_eq!(program::queue_window(&mut ni, 1), HostWindow::EMPTY);
    let refused = program::set_up_queue(&mut ni, 1, &rings(SQ, CQ)).unwrap_err();
    assert_eq!(
        refused,
        program::QueueError::Refused(queue_status::WINDOW_ERROR.mask())
    );
    let mut host = HostMemory::new();
    host.map(SQ, PAGE, DmaDirection::ToDevice);
    host.map(CQ, PAGE, DmaDirection::FromDevice);
    host.contents_mut()
        .write(SQ, Descriptor::default().as_bytes());
    ni.mmio_write(queue_offset(1, queue::SQ_TAIL), 1);
    ni.process_queues(&mut host);
    assert_eq!(
        ni.mmio_read(queue_offset(1, queue::SQ_HEAD)),
        0,
        "nothing fetched"
    );
    let mut completion = [0u8; 16];
    host.contents().read(CQ, &mut completion);
    assert_eq!(completion, [0; 16], "nothing completed");
}

#[test]
fn window_writes_need_the_management_lock_and_a_disabled_queue() {
    let mut ni = NetworkInterface::new(Config::SIM, KEY, SparseMemory::new()).unwrap();
    assert_eq!(
        program::set_queue_window(&mut ni, 1, WINDOW),
        Err(program::ProgramError::Locked)
    );
    assert_eq!(program::queue_window(&mut ni, 1), HostWindow::EMPTY);
    assert_eq!(
        ni.mmio_read(reg::REFUSED_WRITES.offset),
        2,
        "both registers"
    );
    assert_eq!(
        ni.mmio_read(queue_offset(1, queue::STATUS)),
        0,
        "the lock's refusal sets no queue bit"
    );
    program::unlock(&mut ni, KEY).unwrap();
    program::set_queue_window(&mut ni, 1, WINDOW).unwrap();
    program::lock(&mut ni);
    assert_eq!(
        program::queue_window(&mut ni, 1),
        WINDOW,
        "reads need no lock"
    );
    program::set_up_queue(&mut ni, 1, &rings(SQ, CQ)).unwrap();
    program::unlock(&mut ni, KEY).unwrap();
    assert_eq!(
        program::set_queue_window(&mut ni, 1, HostWindow::WIDEST),
        Err(program::ProgramError::QueueNotIdle)
    );
    assert_eq!(program::queue_window(&mut ni, 1), WINDOW);
    assert!(queue_status::REFUSED_WRITE.is_set(ni.mmio_read(queue_offset(1, queue::STATUS))));
}

#[test]
fn rings_leaving_the_window_by_one_byte_refuse_enabling() {
    let mut ni = NetworkInterface::new(Config::SIM, KEY, SparseMemory::new()).unwrap();
    program::unlock(&mut ni, KEY).unwrap();
    let window = HostWindow {
        base: SQ,
        bytes: CQ + 4 * 16 - SQ,
    };
    program::set_queue_window(&mut ni, 1, window).unwrap();
    program::set_up_queue(&mut ni, 1, &rings(SQ, CQ)).unwrap();
    let below = rings(SQ - 32, CQ);
    let above = rings(SQ, CQ + 16);
    for settings in [below, above] {
        let refused = program::set_up_queue(&mut ni, 1, &settings).unwrap_err();
        assert_eq!(
            refused,
            program::QueueError::Refused(queue_status::WINDOW_ERROR.mask()),
            "{settings:?}"
        );
    }
}

#[test]
fn buffers_not_wholly_inside_the_window_complete_outside_it_and_move_nothing() {
    let mut bench = Bench::new();
    let end = WINDOW.base + WINDOW.bytes;
    bench
        .host
        .map(BUFFER - PAGE, PAGE, DmaDirection::Bidirectional);
    bench.host.map(end, PAGE, DmaDirection::Bidirectional);
    bench.host.contents_mut().write(end - 8, &[0x5a; 16]);
    let outside = Err(DescriptorError::OutsideWindow);
    let cases = [
        (bench.transfer(Opcode::Write, 0, end - 8, 9, 1), outside),
        (bench.transfer(Opcode::Read, 0, end - 8, 9, 2), outside),
        (bench.transfer(Opcode::Write, 0, SQ - 1, 2, 3), outside),
        (bench.transfer(Opcode::Read, 0, BUFFER - PAGE, 8, 4), Ok(())),
        (bench.transfer(Opcode::Read, 0, end, 8, 5), outside),
        (bench.transfer(Opcode::Write, 0, end - 8, 8, 6), Ok(())),
        (
            bench.transfer(Opcode::Write, 0, end, 0, 7),
            Err(DescriptorError::Malformed),
        ),
    ];
    for (descriptor, status) in cases {
        bench.submit(descriptor);
        let completion = bench.next().expect("a completion");
        assert_eq!(outcome(&completion), status, "{descriptor:?}");
        assert_eq!(completion.bytes_done.get() != 0, status.is_ok());
    }
    let mut around_the_end = [0u8; 16];
    bench.host.contents().read(end - 8, &mut around_the_end);
    assert_eq!(
        around_the_end, [0x5a; 16],
        "the refused READs left host memory alone"
    );
    let mut stored = [0u8; 8];
    bench.ni.memory().read(10 * PAGE, &mut stored);
    assert_eq!(stored, [0x5a; 8], "only the WRITE inside the window stored");
    assert_eq!(
        bench.ni.mmio_read(reg::request_count_offset(0)),
        2,
        "refused descriptors never reach the protection check"
    );
}

#[test]
fn a_window_may_end_at_the_last_iova() {
    let mut bench = Bench::new();
    let top = HostWindow {
        base: u64::MAX - 2 * PAGE + 1,
        bytes: 2 * PAGE,
    };
    bench.ni.mmio_write(queue_offset(1, queue::CONTROL), 0);
    program::set_queue_window(&mut bench.ni, 1, top).unwrap();
    let settings = rings(top.base, top.base + PAGE);
    program::set_up_queue(&mut bench.ni, 1, &settings).unwrap();
    assert_eq!(program::queue_window(&mut bench.ni, 1), top);
    assert!(top.holds(u64::MAX - 7, 8));
    assert!(!top.holds(u64::MAX - 7, 9));
}
