//! Host-memory windows on the whole NI, against the golden model and under the DMA monitor:
//! a queue moves nothing outside its window, whatever the IOMMU maps.

mod common;

use common::device::*;
use npmu_abi::program::{self, ProgramError, QueueError, RegisterAccess};
use npmu_abi::queue::{DescriptorError, HostWindow, Opcode};
use npmu_abi::registers::{self as reg, queue, queue_offset, queue_status};
use npmu_abi::Config;
use npmu_model::DmaDirection;
use npmu_sim::device_traffic::ring_settings;
use npmu_sim::DeviceOptions;
use rstest::rstest;

const OUTSIDE: u8 = DescriptorError::OUTSIDE_WINDOW_CODE;
const OTHER_QUEUE: u16 = 2;
/// Each queue's window: its rings and, from [`BUFFER_OFFSET`], its own buffer.
const SPAN: u64 = 0x10_0000;
const BUFFER_OFFSET: u64 = 0x9_0000;
const BUFFER: u64 = 0x4_0000;

fn window(queue: u16) -> HostWindow {
    HostWindow {
        base: ring_settings(queue, RING_ENTRIES).submission_base,
        bytes: SPAN,
    }
}

fn buffer(queue: u16) -> u64 {
    window(queue).base + BUFFER_OFFSET
}

/// The common set-up, but every queue confined to its own window, its buffer mapped.
fn set_up_windows() -> (Device, u32) {
    let options = DeviceOptions::default();
    let (mut device, key) = set_up(&Config::SIM, options);
    for queue in 0..Config::SIM.queues as u16 {
        let rings = ring_settings(queue, RING_ENTRIES);
        device.set_window(queue, window(queue));
        device.set_up_queue(queue, &rings).unwrap();
        device.map_host(buffer(queue), BUFFER, DmaDirection::Bidirectional);
    }
    (device, key)
}

#[test]
fn a_queue_with_an_empty_window_moves_nothing() {
    let (mut device, _) = set_up(&Config::SIM, DeviceOptions::default());
    let rings = ring_settings(QUEUE, RING_ENTRIES);
    device.set_window(QUEUE, HostWindow::EMPTY);
    assert_eq!(
        device.set_up_queue(QUEUE, &rings),
        Err(QueueError::Refused(queue_status::WINDOW_ERROR.mask()))
    );
    // A descriptor in the ring and a doorbell, as a client ignoring the refusal would.
    let before = device.host_traffic();
    device.write_host(rings.submission_base, &[0; 32]);
    device.write(queue_offset(QUEUE, queue::SQ_TAIL), 1);
    for _ in 0..500 {
        device.step();
    }
    assert_eq!(device.host_traffic(), before, "no DMA at all");
    assert_eq!(device.read(queue_offset(QUEUE, queue::SQ_HEAD)), 0);
    assert_eq!(device.take_completions(), []);
}

#[test]
fn a_descriptor_aimed_at_another_queues_buffer_is_refused_and_leaves_it_untouched() {
    let (mut device, key) = set_up_windows();
    let theirs = buffer(OTHER_QUEUE);
    device.write_host(theirs, &[0xa5; 256]);
    device.write_host(buffer(QUEUE), &[0x3c; 256]);
    let completions = run(
        &mut device,
        QUEUE,
        &[
            write(key, 0, theirs, 256, 1),
            read(key, 0, theirs, 256, 2),
            write(key, 0, buffer(QUEUE), 256, 3),
            read(key, 0, buffer(QUEUE) + 256, 256, 4),
        ],
    );
    let outcomes: Vec<(u8, u32)> = completions
        .iter()
        .map(|c| (c.status, c.bytes_done.get()))
        .collect();
    assert_eq!(outcomes, [(OUTSIDE, 0), (OUTSIDE, 0), (0, 256), (0, 256)]);
    assert_eq!(
        device.read_host(theirs, 256),
        [0xa5; 256],
        "theirs untouched"
    );
    assert_eq!(
        device.read_host(buffer(QUEUE) + 256, 256),
        [0x3c; 256],
        "the READ brought what the WRITE inside the window stored, not their bytes"
    );
    assert_eq!(
        device.read(reg::request_count_offset(0)),
        2,
        "the refused descriptors never reached the protection core"
    );
    device.check_memory();
}

#[rstest]
#[case::across_the_lower_edge(Opcode::Write, window(QUEUE).base - 8, 16, OUTSIDE)]
#[case::just_below(Opcode::Read, window(QUEUE).base - 16, 16, OUTSIDE)]
#[case::from_the_lower_edge(Opcode::Read, window(QUEUE).base + 0x1_0000, 16, 0)]
#[case::up_to_the_upper_edge(Opcode::Write, window(QUEUE).base + SPAN - 16, 16, 0)]
#[case::one_byte_over_the_upper_edge(Opcode::Write, window(QUEUE).base + SPAN - 15, 16, OUTSIDE)]
#[case::read_one_byte_over(Opcode::Read, window(QUEUE).base + SPAN - 15, 16, OUTSIDE)]
#[case::zero_length_is_malformed_first(Opcode::Write, window(QUEUE).base + SPAN, 0, DescriptorError::MALFORMED_CODE)]
fn buffers_across_either_edge_are_refused(
    #[case] opcode: Opcode,
    #[case] host: u64,
    #[case] length: u32,
    #[case] status: u8,
) {
    let (mut device, key) = set_up_windows();
    // Mapped on both sides of the edges: only the window refuses.
    let base = window(QUEUE).base;
    device.map_host(base - 0x1000, 0x1000, DmaDirection::Bidirectional);
    device.map_host(base + 0x1_0000, 0x1000, DmaDirection::Bidirectional);
    device.map_host(base + SPAN - 0x1000, 0x2000, DmaDirection::Bidirectional);
    device.write_host(host, &vec![0x77; length as usize]);
    let descriptor = match opcode {
        Opcode::Write => write(key, 0, host, length, 9),
        _ => read(key, 0, host, length, 9),
    };
    let expected_bytes = if status == 0 { length } else { 0 };
    assert_eq!(
        run_one(&mut device, QUEUE, &descriptor),
        (status, expected_bytes)
    );
    device.check_memory();
}

#[test]
fn a_window_may_end_at_the_last_iova() {
    let (mut device, key) = set_up(&Config::SIM, DeviceOptions::default());
    let top = HostWindow {
        base: u64::MAX - SPAN + 1,
        bytes: SPAN,
    };
    let mut rings = ring_settings(QUEUE, RING_ENTRIES);
    rings.submission_base = top.base;
    rings.completion_base = top.base + 0x8_0000;
    device.map_rings(&rings);
    device.set_window(QUEUE, top);
    device.set_up_queue(QUEUE, &rings).unwrap();
    let last = u64::MAX - 0xfff;
    device.map_host(last, 0x1000, DmaDirection::Bidirectional);
    device.write_host(u64::MAX - 63, &[0xe1; 64]);
    let completions = run(
        &mut device,
        QUEUE,
        &[
            write(key, 0, u64::MAX - 63, 64, 1),
            read(key, 0, last, 64, 2),
            write(key, 0, u64::MAX - 63, 65, 3),
        ],
    );
    let statuses: Vec<u8> = completions.iter().map(|c| c.status).collect();
    assert_eq!(
        statuses,
        [0, 0, DescriptorError::MALFORMED_CODE],
        "the last bytes move; past 2^64 is malformed, not outside"
    );
    assert_eq!(device.read_host(last, 64), [0xe1; 64]);
    device.check_memory();
}

#[test]
fn window_writes_need_the_management_lock_and_a_disabled_queue() {
    let (mut device, _) = set_up(&Config::SIM, DeviceOptions::default());
    program::lock(&mut device);
    let refused_before = device.read(reg::REFUSED_WRITES.offset);
    assert_eq!(
        program::set_queue_window(&mut device, OTHER_QUEUE, window(OTHER_QUEUE)),
        Err(ProgramError::Locked)
    );
    assert_eq!(
        device.read(reg::REFUSED_WRITES.offset),
        refused_before + 2,
        "both window registers' writes counted"
    );
    assert_eq!(
        program::queue_window(&mut device, OTHER_QUEUE),
        HostWindow::WIDEST,
        "read back whatever the lock"
    );
    assert!(
        !queue_status::REFUSED_WRITE.is_set(device.read(queue_offset(OTHER_QUEUE, queue::STATUS)))
    );
    program::unlock(&mut device, DeviceOptions::default().management_key).unwrap();
    assert_eq!(
        program::set_queue_window(&mut device, OTHER_QUEUE, window(OTHER_QUEUE)),
        Err(ProgramError::QueueNotIdle),
        "the queue is enabled"
    );
    let status = device.read(queue_offset(OTHER_QUEUE, queue::STATUS));
    assert!(queue_status::REFUSED_WRITE.is_set(status));
    assert!(
        queue_status::RUNNING.is_set(status),
        "the refusal does not halt"
    );
    device.write(queue_offset(OTHER_QUEUE, queue::CONTROL), 0);
    program::set_queue_window(&mut device, OTHER_QUEUE, window(OTHER_QUEUE)).unwrap();
}

#[test]
fn rings_outside_the_window_refuse_enabling_and_reset_empties_every_window() {
    let (mut device, _) = set_up(&Config::SIM, DeviceOptions::default());
    let rings = ring_settings(QUEUE, RING_ENTRIES);
    let completion_end = rings.completion_base + u64::from(RING_ENTRIES) * 16;
    let short_by_one = HostWindow {
        base: rings.submission_base,
        bytes: completion_end - rings.submission_base - 1,
    };
    device.set_window(QUEUE, short_by_one);
    assert_eq!(
        device.set_up_queue(QUEUE, &rings),
        Err(QueueError::Refused(queue_status::WINDOW_ERROR.mask()))
    );
    device.set_window(
        QUEUE,
        HostWindow {
            bytes: short_by_one.bytes + 1,
            ..short_by_one
        },
    );
    device.set_up_queue(QUEUE, &rings).unwrap();
    device.reset();
    for queue in 0..Config::SIM.queues as u16 {
        assert_eq!(program::queue_window(&mut device, queue), HostWindow::EMPTY);
    }
}
