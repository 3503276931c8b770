//! The host's mistakes with queues, one by one: each is refused with its own sticky status
//! bit, never hangs the NI, and leaves the other queues running; and a queue can be
//! disabled and started afresh without a reset of the NI.

mod common;

use common::device::*;
use npmu_abi::field::Field;
use npmu_abi::program::{QueueError, QueueSettings, RegisterAccess};
use npmu_abi::queue::{Opcode, COMPLETION_BYTES, SUBMISSION_SLACK_SLOTS};
use npmu_abi::registers::{queue, queue_control, queue_offset, queue_status, Register};
use npmu_abi::Config;
use npmu_model::DmaDirection;
use npmu_sim::device_traffic::ring_settings;
use npmu_sim::DeviceOptions;
use rstest::rstest;

const OTHER_QUEUE: u16 = 2;

fn register(device: &mut Device, queue: u16, register: Register) -> u64 {
    device.read(queue_offset(queue, register))
}

fn status_has(device: &mut Device, queue: u16, field: Field) -> bool {
    field.is_set(register(device, queue, queue::STATUS))
}

/// Every queue still completes descriptors.
fn assert_queues_work(device: &mut Device, key: u32) {
    device.write_host(SOURCE, &[0x5c; 64]);
    let completions = run(
        device,
        QUEUE,
        &[
            write(key, 0, SOURCE, 64, 1),
            read(key, 0, DESTINATION, 64, 2),
        ],
    );
    assert_eq!(
        completions.iter().map(|c| c.status).collect::<Vec<_>>(),
        [0, 0]
    );
    assert_eq!(device.read_host(DESTINATION, 64), [0x5c; 64]);
    for queue in (0..Config::SIM.queues as u16).filter(|queue| *queue != QUEUE) {
        assert_eq!(
            run_one(device, queue, &without_data(Opcode::Nop, 3)),
            (0, 0)
        );
    }
    if device.options().golden {
        device.check_memory();
    }
}

fn step(device: &mut Device, clocks: u64) {
    for _ in 0..clocks {
        device.step();
    }
}

#[rstest]
#[case(RING_ENTRIES as u64)]
#[case(0xffff)]
#[case(u64::MAX)]
fn a_doorbell_beyond_the_ring_is_ignored(#[case] tail: u64) {
    let (mut device, key) = set_up(&Config::SIM, DeviceOptions::default());
    device.write(queue_offset(QUEUE, queue::SQ_TAIL), tail);
    step(&mut device, 200);
    assert!(status_has(
        &mut device,
        QUEUE,
        queue_status::SQ_DOORBELL_ERROR
    ));
    assert!(status_has(&mut device, QUEUE, queue_status::RUNNING));
    assert_eq!(register(&mut device, QUEUE, queue::SQ_TAIL), 0);
    assert_eq!(register(&mut device, QUEUE, queue::SQ_HEAD), 0);
    assert_eq!(device.take_completions(), []);
    assert_queues_work(&mut device, key);
    // Sticky: later work that succeeds leaves the bit set, until the queue is enabled again.
    assert!(status_has(
        &mut device,
        QUEUE,
        queue_status::SQ_DOORBELL_ERROR
    ));
}

#[test]
fn a_completion_doorbell_past_the_completions_written_is_ignored() {
    let (mut device, key) = set_up(&Config::SIM, DeviceOptions::default());
    device.pause_completions(QUEUE, true);
    for tag in 0..3 {
        device
            .submit(QUEUE, &without_data(Opcode::Nop, tag))
            .unwrap();
    }
    step(&mut device, 500);
    assert_eq!(register(&mut device, QUEUE, queue::CQ_TAIL), 3);
    for head in [4, RING_ENTRIES as u64, 0x1_0002] {
        device.write(queue_offset(QUEUE, queue::CQ_HEAD), head);
        assert_eq!(
            register(&mut device, QUEUE, queue::CQ_HEAD),
            0,
            "head {head}"
        );
    }
    assert!(status_has(
        &mut device,
        QUEUE,
        queue_status::CQ_DOORBELL_ERROR
    ));
    // Releasing what was written is fine.
    device.pause_completions(QUEUE, false);
    device.run_until_idle();
    assert_eq!(device.take_completions().len(), 3);
    assert_eq!(register(&mut device, QUEUE, queue::CQ_HEAD), 3);
    assert_queues_work(&mut device, key);
}

#[test]
fn a_full_completion_ring_holds_back_only_its_queue() {
    let (mut device, key) = set_up(&Config::SIM, DeviceOptions::default());
    let small = QueueSettings {
        completion_entries: 4,
        ..ring_settings(QUEUE, 16)
    };
    device.set_up_queue(QUEUE, &small).unwrap();
    device.pause_completions(QUEUE, true);
    for index in 0..10 {
        let descriptor = write(key, 64 * index, SOURCE, 64, index as u32);
        device.submit(QUEUE, &descriptor).unwrap();
    }
    for index in 0..40 {
        device
            .submit(OTHER_QUEUE, &without_data(Opcode::Nop, index))
            .unwrap();
    }
    step(&mut device, 5000);
    // A ring of four holds three completions the host has not released.
    let others = device.take_completions();
    assert_eq!(others.len(), 40);
    assert!(others
        .iter()
        .all(|completion| completion.queue == OTHER_QUEUE));
    assert_eq!(register(&mut device, QUEUE, queue::CQ_TAIL), 3);
    assert_eq!(register(&mut device, QUEUE, queue::SQ_HEAD), 3);
    assert!(status_has(&mut device, QUEUE, queue_status::RUNNING));
    device.pause_completions(QUEUE, false);
    device.run_until_idle();
    let tags: Vec<u32> = device
        .take_completions()
        .iter()
        .map(|completion| completion.entry.tag.get())
        .collect();
    assert_eq!(tags, (0..10).collect::<Vec<_>>());
    device.check_memory();
    assert_queues_work(&mut device, key);
}

#[rstest]
#[case::sq_base(queue::SQ_BASE)]
#[case::sq_entries(queue::SQ_ENTRIES)]
#[case::cq_base(queue::CQ_BASE)]
#[case::cq_entries(queue::CQ_ENTRIES)]
fn configuration_writes_while_enabled_are_refused(#[case] target: Register) {
    let (mut device, key) = set_up(&Config::SIM, DeviceOptions::default());
    let before = register(&mut device, QUEUE, target);
    device.write(queue_offset(QUEUE, target), 0x8000);
    assert_eq!(register(&mut device, QUEUE, target), before);
    assert!(status_has(&mut device, QUEUE, queue_status::REFUSED_WRITE));
    assert!(status_has(&mut device, QUEUE, queue_status::RUNNING));
    assert_queues_work(&mut device, key);
}

#[rstest]
#[case::submission_entries(queue::SQ_ENTRIES)]
#[case::completion_entries(queue::CQ_ENTRIES)]
fn an_entries_value_wider_than_the_register_is_refused(#[case] target: Register) {
    let (mut device, key) = set_up(&Config::SIM, DeviceOptions::default());
    device.write(queue_offset(QUEUE, queue::CONTROL), 0);
    device.write(queue_offset(QUEUE, target), 0x1_0010);
    assert_eq!(
        register(&mut device, QUEUE, target),
        u64::from(RING_ENTRIES)
    );
    assert!(status_has(&mut device, QUEUE, queue_status::REFUSED_WRITE));
    device
        .set_up_queue(QUEUE, &ring_settings(QUEUE, RING_ENTRIES))
        .unwrap();
    assert_queues_work(&mut device, key);
}

#[rstest]
#[case::submission_entries_zero(QueueSettings { submission_entries: 0, ..ring_settings(QUEUE, 16) })]
#[case::submission_entries_one(QueueSettings { submission_entries: 1, ..ring_settings(QUEUE, 16) })]
#[case::submission_entries_odd(QueueSettings { submission_entries: 24, ..ring_settings(QUEUE, 16) })]
#[case::submission_entries_too_many(QueueSettings { submission_entries: 8192, ..ring_settings(QUEUE, 16) })]
#[case::completion_entries_one(QueueSettings { completion_entries: 1, ..ring_settings(QUEUE, 16) })]
#[case::completion_entries_odd(QueueSettings { completion_entries: 6, ..ring_settings(QUEUE, 16) })]
#[case::completion_entries_zero(QueueSettings { completion_entries: 0, ..ring_settings(QUEUE, 16) })]
#[case::completion_entries_too_many(QueueSettings { completion_entries: 8192, ..ring_settings(QUEUE, 16) })]
#[case::submission_base_unaligned(QueueSettings { submission_base: 0x1010_0010, ..ring_settings(QUEUE, 16) })]
#[case::completion_base_unaligned(QueueSettings { completion_base: 0x1018_0008, ..ring_settings(QUEUE, 16) })]
fn an_invalid_configuration_is_refused_when_enabled(#[case] settings: QueueSettings) {
    let (mut device, key) = set_up(&Config::SIM, DeviceOptions::default());
    let refused = device.set_up_queue(QUEUE, &settings);
    let Err(QueueError::Refused(status)) = refused else {
        panic!("the NI took an invalid configuration: {refused:?}");
    };
    assert!(queue_status::CONFIG_ERROR.is_set(status));
    assert!(!queue_status::RUNNING.is_set(status));
    // Halted: a doorbell is taken but nothing is fetched.
    let traffic = device.host_traffic();
    device.write(queue_offset(QUEUE, queue::SQ_TAIL), 1);
    step(&mut device, 300);
    assert_eq!(register(&mut device, QUEUE, queue::SQ_HEAD), 0);
    assert_eq!(device.host_traffic(), traffic);
    device
        .set_up_queue(QUEUE, &ring_settings(QUEUE, 16))
        .unwrap();
    assert!(!status_has(&mut device, QUEUE, queue_status::CONFIG_ERROR));
    assert_queues_work(&mut device, key);
}

#[test]
fn a_disabled_queue_refuses_doorbells_and_starts_afresh_when_enabled() {
    let (mut device, key) = set_up(&Config::SIM, DeviceOptions::default());
    let settings = ring_settings(QUEUE, 8);
    device.set_up_queue(QUEUE, &settings).unwrap();
    // Twelve descriptors: the pointers stand mid-ring, on the pass whose phase is 0.
    let nops: Vec<_> = (0..4).map(|tag| without_data(Opcode::Nop, tag)).collect();
    run(&mut device, QUEUE, &nops);
    run(&mut device, QUEUE, &nops);
    let second_pass = run(&mut device, QUEUE, &nops);
    assert_eq!(second_pass.last().unwrap().phase, 0);
    device.write(queue_offset(QUEUE, queue::CONTROL), 0);
    assert!(!status_has(&mut device, QUEUE, queue_status::RUNNING));
    for doorbell in [queue::SQ_TAIL, queue::CQ_HEAD] {
        device.write(queue_offset(QUEUE, doorbell), 6);
        assert_eq!(register(&mut device, QUEUE, doorbell), 4);
    }
    assert!(status_has(&mut device, QUEUE, queue_status::REFUSED_WRITE));
    // The other queues never noticed.
    assert_eq!(
        run_one(&mut device, 0, &without_data(Opcode::Nop, 9)),
        (0, 0)
    );

    device.set_up_queue(QUEUE, &settings).unwrap();
    for pointer in [
        queue::SQ_HEAD,
        queue::SQ_TAIL,
        queue::CQ_HEAD,
        queue::CQ_TAIL,
    ] {
        assert_eq!(register(&mut device, QUEUE, pointer), 0);
    }
    assert!(!status_has(&mut device, QUEUE, queue_status::REFUSED_WRITE));
    // The fresh ring's first pass carries phase 1 again.
    let completions = run(
        &mut device,
        QUEUE,
        // As many as the ring holds, its empty slot and slack aside.
        &(0..8 - 1 - SUBMISSION_SLACK_SLOTS)
            .map(|tag| without_data(Opcode::Nop, tag))
            .collect::<Vec<_>>(),
    );
    assert!(completions.iter().all(|completion| completion.phase == 1));
    assert_queues_work(&mut device, key);
}

#[test]
fn disabling_a_busy_queue_lets_its_fetched_descriptors_finish_and_enabling_waits_for_them() {
    let options = DeviceOptions {
        // The model runs each descriptor at its doorbell, so it cannot know which of them
        // the NI had fetched when it was disabled.
        golden: false,
        ..DeviceOptions::default()
    };
    let (mut device, key) = set_up(&Config::SIM, options);
    // More descriptors than the NI holds in flight, each taking hundreds of clocks.
    let settings = ring_settings(QUEUE, 256);
    device.set_up_queue(QUEUE, &settings).unwrap();
    device.pause_completions(QUEUE, true);
    for index in 0..200 {
        let descriptor = write(key, 0, SOURCE + 4096 * (index % 8), 4096, index as u32);
        device.submit(QUEUE, &descriptor).unwrap();
    }
    step(&mut device, 300);
    device.write(queue_offset(QUEUE, queue::CONTROL), 0);
    let fetched = register(&mut device, QUEUE, queue::SQ_HEAD);
    assert!(fetched > 0 && fetched < 200, "fetched {fetched} of 200");
    assert!(status_has(&mut device, QUEUE, queue_status::BUSY));
    let enable = queue_control::ENABLE.place(1);
    device.write(queue_offset(QUEUE, queue::CONTROL), enable);
    assert!(status_has(&mut device, QUEUE, queue_status::REFUSED_WRITE));
    assert!(!status_has(&mut device, QUEUE, queue_status::RUNNING));
    // Its rings stay as they are while what it fetched completes into them.
    device.write(queue_offset(QUEUE, queue::CQ_ENTRIES), 8);
    assert_eq!(register(&mut device, QUEUE, queue::CQ_ENTRIES), 256);

    let mut clocks = 0;
    while status_has(&mut device, QUEUE, queue_status::BUSY) {
        step(&mut device, 10);
        clocks += 10;
        assert!(clocks < 100_000, "the disabled queue never went idle");
    }
    assert_eq!(register(&mut device, QUEUE, queue::SQ_HEAD), fetched);
    assert_eq!(register(&mut device, QUEUE, queue::CQ_TAIL), fetched);
    // Each fetched descriptor completed, in order, and nothing after them did.
    for slot in 0..256 {
        let entry = device.read_host(
            settings.completion_base + slot * u64::from(COMPLETION_BYTES),
            16,
        );
        let tag = u32::from_le_bytes(entry[0..4].try_into().unwrap());
        let written = entry[15] & 1 == 1;
        assert_eq!(written, slot < fetched, "slot {slot}");
        if written {
            assert_eq!((tag, entry[4]), (slot as u32, 0), "slot {slot}");
        }
    }
    device.forget_queue(QUEUE);
    device.set_up_queue(QUEUE, &settings).unwrap();
    assert_queues_work(&mut device, key);
}

/// `unmap` the ring's page the IOMMU then refuses, and the bit it should raise.
#[rstest]
#[case::submission_ring(false, queue_status::FETCH_ERROR)]
#[case::completion_ring(true, queue_status::COMPLETION_ERROR)]
fn a_ring_the_iommu_refuses_halts_only_its_queue(
    #[case] completion_ring: bool,
    #[case] error: Field,
) {
    let (mut device, key) = set_up(&Config::SIM, DeviceOptions::default());
    let settings = ring_settings(OTHER_QUEUE, RING_ENTRIES);
    let (ring, direction) = match completion_ring {
        false => (settings.submission_base, DmaDirection::ToDevice),
        true => (settings.completion_base, DmaDirection::FromDevice),
    };
    device.unmap_host(ring, 4096);
    device
        .submit(OTHER_QUEUE, &without_data(Opcode::Nop, 1))
        .unwrap();
    device
        .submit(OTHER_QUEUE, &without_data(Opcode::Nop, 2))
        .unwrap();
    step(&mut device, 1000);
    assert!(status_has(&mut device, OTHER_QUEUE, error));
    assert!(!status_has(&mut device, OTHER_QUEUE, queue_status::RUNNING));
    assert!(!status_has(&mut device, OTHER_QUEUE, queue_status::BUSY));
    device.forget_queue(OTHER_QUEUE);
    assert_eq!(
        run_one(&mut device, QUEUE, &without_data(Opcode::Nop, 3)),
        (0, 0)
    );
    // Mapped again, the halted queue still fetches nothing until it is enabled again.
    device.map_host(ring, 4096, direction);
    let traffic = device.host_traffic();
    device.write(queue_offset(OTHER_QUEUE, queue::SQ_TAIL), 5);
    step(&mut device, 500);
    assert_eq!(device.host_traffic(), traffic);
    device.set_up_queue(OTHER_QUEUE, &settings).unwrap();
    assert_queues_work(&mut device, key);
}

#[test]
fn the_largest_rings_are_taken() {
    let (mut device, key) = set_up(&Config::SIM, DeviceOptions::default());
    let largest = ring_settings(QUEUE, npmu_abi::queue::MAX_QUEUE_ENTRIES);
    device.map_rings(&largest);
    device.set_up_queue(QUEUE, &largest).unwrap();
    assert_queues_work(&mut device, key);
}

/// A queue moving data is not disturbed by every kind of bad input on another meanwhile.
#[test]
fn bad_input_on_one_queue_leaves_a_busy_one_alone() {
    let (mut device, key) = set_up(&Config::SIM, DeviceOptions::default());
    let mut expected = Vec::new();
    for index in 0..24u32 {
        let offset = u64::from(index % 8) * 4096;
        let data: Vec<u8> = (0..4096)
            .map(|byte| (byte as u32 * 3 + index) as u8)
            .collect();
        if index < 8 {
            device.write_host(SOURCE + offset, &data);
            expected.push(data);
        }
        let descriptor = match index {
            0..=7 => write(key, offset, SOURCE + offset, 4096, index),
            _ => read(
                key,
                offset,
                DESTINATION + u64::from(index) * 4096,
                4096,
                index,
            ),
        };
        device.submit(QUEUE, &descriptor).unwrap();
    }
    let other = |register| queue_offset(OTHER_QUEUE, register);
    device.write(other(queue::SQ_TAIL), 0x1_0000);
    device.write(other(queue::CQ_HEAD), 7);
    device.write(other(queue::SQ_BASE), 0x1234);
    device.write(other(queue::CONTROL), 0);
    device.write(other(queue::SQ_TAIL), 1);
    device.write(other(queue::CQ_ENTRIES), 3);
    device.write(other(queue::CONTROL), queue_control::ENABLE.place(1));
    device.forget_queue(OTHER_QUEUE);
    assert!(
        device.outstanding() > 0,
        "the busy queue finished before the bad input"
    );
    device.run_until_idle();
    let completions = device.take_completions();
    assert_eq!(completions.len(), 24);
    assert!(completions
        .iter()
        .all(|completion| completion.entry.status == 0));
    for index in 8..24u64 {
        let back = device.read_host(DESTINATION + index * 4096, 4096);
        assert_eq!(back, expected[(index % 8) as usize], "READ {index}");
    }
    device.check_memory();
}
