//! What a queue promises about order: completions in submission order whatever each
//! descriptor does, reads that see every earlier write of their queue, FLUSH completing
//! only once earlier writes are durable, and rings that wrap with the phase flipping.

mod common;

use common::device::*;
use npmu_abi::queue::{Descriptor, Opcode};
use npmu_abi::Config;
use npmu_sim::device_traffic::ring_settings;
use npmu_sim::{DeviceOptions, DeviceStalls, Stall};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[test]
fn completions_of_each_queue_come_in_submission_order() {
    let options = DeviceOptions {
        stalls: DeviceStalls::all(Stall::Random(0.2)),
        ..DeviceOptions::default()
    };
    let (mut device, key) = set_up(&Config::SIM, options);
    let mut random = StdRng::seed_from_u64(npmu_test_seed::seed("device ordering", 4));
    let queues = Config::SIM.queues as u16;
    // Long and short transfers, faults and NOPs interleaved, so later descriptors of a
    // queue could finish first if the NI let them.
    for tag in 0..48u32 {
        let length = [4096 * 3, 8, 700, 1][random.gen_range(0..4)];
        let host = random.gen_range(0..8) * 4096 + random.gen_range(0..64);
        let descriptor = match random.gen_range(0..5) {
            0 => write(key, 0, SOURCE + host, length, tag),
            1 => read(key, 4096, DESTINATION + host, length, tag),
            2 => write(key ^ 0x100, 0, SOURCE, length, tag),
            3 => without_data(Opcode::Flush, tag),
            _ => without_data(Opcode::Nop, tag),
        };
        device.submit(QUEUE, &descriptor).unwrap();
        let other = (QUEUE + 1 + random.gen_range(0..queues - 1)) % queues;
        device
            .submit(other, &without_data(Opcode::Nop, tag))
            .unwrap();
    }
    device.run_until_idle();
    let completions = device.take_completions();
    for queue in 0..queues {
        let tags: Vec<u32> = completions
            .iter()
            .filter(|completion| completion.queue == queue)
            .map(|completion| completion.entry.tag.get())
            .collect();
        let mut sorted = tags.clone();
        sorted.sort_unstable();
        assert_eq!(tags, sorted, "queue {queue}");
    }
    assert_eq!(completions.len(), 96);
    device.check_memory();
}

#[test]
fn a_read_sees_every_earlier_write_of_its_queue() {
    let (mut device, key) = set_up(&Config::SIM, DeviceOptions::default());
    let mut expected = vec![0u8; 3 * 4096];
    let mut descriptors = Vec::new();
    // Overlapping writes, each from its own buffer, submitted with the read in one batch.
    for (index, (offset, length)) in [(0, 12288), (100, 5000), (4000, 300), (4090, 7), (9000, 1)]
        .into_iter()
        .enumerate()
    {
        let buffer = SOURCE + index as u64 * 0x4000;
        let data: Vec<u8> = (0..length)
            .map(|byte| (byte * 7 + index * 50) as u8)
            .collect();
        device.write_host(buffer, &data);
        expected[offset..offset + length].copy_from_slice(&data);
        descriptors.push(write(
            key,
            offset as u64,
            buffer,
            length as u32,
            index as u32,
        ));
    }
    descriptors.push(read(key, 0, DESTINATION, expected.len() as u32, 99));
    let completions = run(&mut device, QUEUE, &descriptors);
    assert!(completions.iter().all(|completion| completion.status == 0));
    assert_eq!(device.read_host(DESTINATION, expected.len()), expected);
}

/// In this NI a WRITE completes only once its data is durable and a queue's completions
/// come in order, so FLUSH holds by construction; this checks the promise from outside, with
/// slow persistent memory and failed writes among the earlier ones.
#[test]
fn a_flush_completes_once_every_earlier_write_is_durable() {
    let options = DeviceOptions {
        memory_latency: 400,
        ..DeviceOptions::default()
    };
    let (mut device, key) = set_up(&Config::SIM, options);
    // A hole in the source: one WRITE stops partway, its first part durable.
    device.unmap_host(SOURCE + 3 * 4096, 4096);
    for index in 0..6 {
        let descriptor = write(key, 2048 * index, SOURCE + 2048 * index, 2048, index as u32);
        device.submit(QUEUE, &descriptor).unwrap();
    }
    let partial = write(key, 6 * 2048, SOURCE + 2 * 4096 + 100, 8000, 6);
    let refused = write(key ^ 0x100, 0, SOURCE, 64, 7);
    device.submit(QUEUE, &partial).unwrap();
    device.submit(QUEUE, &refused).unwrap();
    device
        .submit(QUEUE, &without_data(Opcode::Flush, 8))
        .unwrap();
    let start = device.now();
    let flush = loop {
        device.step();
        let completions = device.take_completions();
        if let Some(flush) = completions.iter().find(|c| c.entry.tag.get() == 8) {
            break *flush;
        }
        assert!(device.now() - start < 100_000, "the FLUSH never completed");
    };
    assert_eq!(flush.entry.status, 0);
    // Nothing in flight to persistent memory, and it holds every earlier write's bytes.
    assert_eq!(
        device.memory_in_flight(),
        0,
        "a write was still unacknowledged"
    );
    device.check_memory();
}

#[test]
fn rings_wrap_and_the_phase_flips_on_each_pass() {
    let (mut device, key) = set_up(&Config::SIM, DeviceOptions::default());
    // Completion ring of two: the phase flips every other entry.
    let settings = npmu_abi::program::QueueSettings {
        completion_entries: 2,
        ..ring_settings(QUEUE, 4)
    };
    device.set_up_queue(QUEUE, &settings).unwrap();
    let mut submitted = 0u32;
    while submitted < 25 {
        let descriptor: Descriptor = write(key, 64 * u64::from(submitted), SOURCE, 64, submitted);
        if device.submit(QUEUE, &descriptor).is_ok() {
            submitted += 1;
        } else {
            device.step();
        }
    }
    device.run_until_idle();
    let completions = device.take_completions();
    assert_eq!(completions.len(), 25);
    for (index, completion) in completions.iter().enumerate() {
        let entry = completion.entry;
        assert_eq!(entry.tag.get(), index as u32);
        assert_eq!(entry.status, 0);
        assert_eq!(entry.submission_head.get(), ((index + 1) % 4) as u16);
        assert_eq!(entry.phase, ((index / 2) % 2 == 0) as u8, "entry {index}");
        assert_eq!(entry.queue.get(), QUEUE);
    }
    device.check_memory();
}

/// A driver may reuse a WRITE's buffer once its completion arrived: the NI has read it.
#[test]
fn a_buffer_is_free_again_once_its_descriptor_completed() {
    let (mut device, key) = set_up(&Config::SIM, DeviceOptions::default());
    device.write_host(SOURCE, &[0x11; 3000]);
    assert_eq!(
        run(&mut device, QUEUE, &[write(key, 0, SOURCE, 3000, 1)])[0].status,
        0
    );
    device.write_host(SOURCE, &[0x22; 3000]);
    assert_eq!(
        run(&mut device, QUEUE, &[write(key, 8192, SOURCE, 3000, 2)])[0].status,
        0
    );
    let reads = [
        read(key, 0, DESTINATION, 3000, 3),
        read(key, 8192, DESTINATION + 4096, 3000, 4),
    ];
    assert!(run(&mut device, QUEUE, &reads)
        .iter()
        .all(|c| c.status == 0));
    assert_eq!(device.read_host(DESTINATION, 3000), [0x11; 3000]);
    assert_eq!(device.read_host(DESTINATION + 4096, 3000), [0x22; 3000]);
}
