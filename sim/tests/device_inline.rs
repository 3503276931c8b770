//! Inline WRITEs: a payload of up to [`INLINE_MAX_BYTES`] in the submission slots after its
//! descriptor, fetched with it, so the write takes one host round trip; read from the ring
//! instead when it runs past the descriptor's fetch (a read block's end); and each rule an
//! inline WRITE can break, refused with its own status, touching no memory, its payload
//! slots never taken for descriptors. The golden model checks every completion.

mod common;

use common::device::*;
use npmu_abi::queue::{Descriptor, DescriptorError, Opcode, DESCRIPTOR_BYTES, INLINE_MAX_BYTES};
use npmu_abi::Config;
use npmu_sim::{DeviceOptions, DeviceStalls, Stall};
use rstest::rstest;

fn pattern(length: u32, seed: u32) -> Vec<u8> {
    (0..length)
        .map(|index| (index.wrapping_mul(73) ^ seed.wrapping_mul(41)) as u8)
        .collect()
}

fn inline(key: u32, offset: u64, length: u32, tag: u32) -> Descriptor {
    Descriptor::inline_write(CONTEXT, key, NETWORK_BASE + offset, length, tag)
}

/// Submits an inline WRITE of `data`, runs it, returns its status, bytes done and
/// submission head, and the DMA reads it took.
fn run_inline(device: &mut Device, descriptor: &Descriptor, data: &[u8]) -> (u8, u32, u16, u64) {
    let reads_before = device.host_traffic().0;
    device.submit_inline(QUEUE, descriptor, data).unwrap();
    device.run_until_idle();
    let completions = device.take_completions();
    assert_eq!(completions.len(), 1);
    let entry = completions[0].entry;
    assert_eq!(entry.tag, descriptor.tag);
    let reads = device.host_traffic().0 - reads_before;
    (
        entry.status,
        entry.bytes_done.get(),
        entry.submission_head.get(),
        reads,
    )
}

/// What `length` bytes at `offset` of the context hold, read back by DMA.
fn read_back(device: &mut Device, key: u32, offset: u64, length: u32) -> Vec<u8> {
    let completions = run(
        device,
        QUEUE,
        &[read(key, offset, DESTINATION, length, 999)],
    );
    assert_eq!(completions[0].status, 0);
    device.read_host(DESTINATION, length as usize)
}

#[rstest]
#[case::sim(Config::SIM)]
#[case::ice40(Config::ICE40)]
fn inline_writes_of_every_length_land_in_one_round_trip(
    #[case] config: Config,
    #[values(Stall::Never, Stall::Random(0.3))] stall: Stall,
) {
    let options = DeviceOptions {
        stalls: DeviceStalls::all(stall),
        ..DeviceOptions::default()
    };
    let (mut device, key) = set_up(&config, options);
    let mut slot = 0u64;
    for (index, length) in [1u32, 2, 7, 8, 9, 31, 32, 33, 40, 63, 64]
        .into_iter()
        .enumerate()
    {
        let tag = index as u32;
        // Every lane alignment of the network address, pages crossed too.
        let offset = 997 * index as u64;
        let data = pattern(length, tag);
        let descriptor = inline(key, offset, length, tag);
        let (status, bytes_done, submission_head, reads) =
            run_inline(&mut device, &descriptor, &data);
        let case = format!("length {length} at offset {offset}");
        let block_slots = u64::from(config.max_read_request_bytes / DESCRIPTOR_BYTES);
        let last_slot = slot + u64::from(descriptor.slots()) - 1;
        // The descriptor's fetch alone; or with the payload read from the ring where it ran
        // past the read block, and the fetch of the next block's slots it passes over.
        let expected_reads = if slot / block_slots == last_slot / block_slots {
            1
        } else {
            3
        };
        slot = last_slot + 1;
        assert_eq!((status, bytes_done), (0, length), "{case}");
        assert_eq!(
            u64::from(submission_head),
            slot % u64::from(RING_ENTRIES),
            "{case}: past the payload"
        );
        assert_eq!(reads, expected_reads, "{case}");
        assert_eq!(read_back(&mut device, key, offset, length), data, "{case}");
        slot += 1;
    }
    device.check_memory();
}

#[test]
fn a_payload_past_its_fetch_block_is_read_from_the_ring() {
    let config = Config::SIM;
    let (mut device, key) = set_up(&config, DeviceOptions::default());
    let slots_per_block = u64::from(config.max_read_request_bytes / DESCRIPTOR_BYTES);
    // NOPs up to the block's last slot, each fetched on its own.
    for tag in 0..slots_per_block - 1 {
        run(&mut device, QUEUE, &[without_data(Opcode::Nop, tag as u32)]);
    }
    let data = pattern(INLINE_MAX_BYTES, 5);
    let (status, bytes_done, submission_head, reads) = run_inline(
        &mut device,
        &inline(key, 0x123, INLINE_MAX_BYTES, 77),
        &data,
    );
    assert_eq!((status, bytes_done), (0, INLINE_MAX_BYTES));
    assert_eq!(u64::from(submission_head), slots_per_block + 2);
    assert_eq!(
        reads, 3,
        "the descriptor's block, the payload, the next block's slots"
    );
    assert_eq!(read_back(&mut device, key, 0x123, INLINE_MAX_BYTES), data);
    device.check_memory();
}

/// An inline WRITE breaking one rule: refused with `expected`, its slots passed over, the
/// context's bytes untouched, and the next descriptor running.
fn assert_refused(
    device: &mut Device,
    key: u32,
    descriptor: &Descriptor,
    payload: &[u8],
    expected: DescriptorError,
) {
    let before = read_back(device, key, 0, 128);
    let (status, bytes_done, ..) = run_inline(device, descriptor, payload);
    assert_eq!((status, bytes_done), (expected.code(), 0), "{descriptor:?}");
    assert_eq!(read_back(device, key, 0, 128), before, "no byte written");
    let data = pattern(16, 3);
    let (status, ..) = run_inline(device, &inline(key, 0, 16, 4), &data);
    assert_eq!(status, 0, "the next descriptor after {descriptor:?}");
    assert_eq!(read_back(device, key, 0, 16), data);
    device.check_memory();
}

#[rstest]
#[case::too_long(inline(0, 0, INLINE_MAX_BYTES + 1, 1), DescriptorError::InlineTooLong)]
#[case::reserved_flag(Descriptor { flags: 0x83, ..inline(0, 0, 64, 1) }, DescriptorError::Malformed)]
#[case::host_address(Descriptor { host_address: SOURCE.into(), ..inline(0, 0, 64, 1) }, DescriptorError::Malformed)]
#[case::inline_read(Descriptor { opcode: Opcode::Read as u8, ..inline(0, 0, 64, 1) }, DescriptorError::Malformed)]
#[case::zero_length(inline(0, 0, 0, 1), DescriptorError::Malformed)]
fn a_malformed_inline_write_is_refused_with_its_status(
    #[case] descriptor: Descriptor,
    #[case] expected: DescriptorError,
) {
    let (mut device, key) = set_up(&Config::SIM, DeviceOptions::default());
    device.write_host(SOURCE, &[0x77; 128]);
    run(&mut device, QUEUE, &[write(key, 0, SOURCE, 128, 0)]);
    let descriptor = Descriptor {
        key: key.into(),
        ..descriptor
    };
    // The host writes the payload slots the descriptor owns.
    let payload = pattern(descriptor.payload_slots() * DESCRIPTOR_BYTES, 9);
    assert_refused(&mut device, key, &descriptor, &payload, expected);
}

#[test]
fn a_payload_past_the_published_tail_is_refused_and_its_slots_passed_over() {
    let (mut device, key) = set_up(&Config::SIM, DeviceOptions::default());
    device.write_host(SOURCE, &[0x77; 128]);
    run(&mut device, QUEUE, &[write(key, 0, SOURCE, 128, 0)]);
    let before = read_back(&mut device, key, 0, 128);
    // The doorbell publishes the descriptor and one of its two payload slots.
    let descriptor = inline(key, 0, 64, 6);
    device
        .submit_published(QUEUE, &descriptor, &pattern(64, 1), 2)
        .unwrap();
    device.run_until_idle();
    let completions = device.take_completions();
    assert_eq!(completions.len(), 1);
    let entry = completions[0].entry;
    assert_eq!(
        (entry.status, entry.bytes_done.get()),
        (DescriptorError::INLINE_PAST_TAIL_CODE, 0)
    );
    assert_eq!(read_back(&mut device, key, 0, 128), before);
    // The next submission publishes the payload's last slot, which is passed over.
    let data = pattern(16, 3);
    let (status, ..) = run_inline(&mut device, &inline(key, 0, 16, 4), &data);
    assert_eq!(status, 0);
    assert_eq!(read_back(&mut device, key, 0, 16), data);
    device.check_memory();
}

#[test]
fn a_payload_wrapping_the_ring_is_refused_and_its_slots_passed_over() {
    let (mut device, key) = set_up(&Config::SIM, DeviceOptions::default());
    device.write_host(SOURCE, &[0x77; 128]);
    // A WRITE and NOPs up to the ring's last slot.
    let mut used = 1;
    run(&mut device, QUEUE, &[write(key, 0, SOURCE, 128, 0)]);
    while used < RING_ENTRIES - 1 {
        run(&mut device, QUEUE, &[without_data(Opcode::Nop, used)]);
        used += 1;
    }
    let descriptor = inline(key, 0, 33, 6);
    let (status, bytes_done, submission_head, _) =
        run_inline(&mut device, &descriptor, &pattern(33, 1));
    assert_eq!(
        (status, bytes_done),
        (DescriptorError::INLINE_WRAPS_RING_CODE, 0)
    );
    assert_eq!(
        submission_head, 2,
        "past the payload's two slots at the ring's start"
    );
    assert_eq!(read_back(&mut device, key, 0, 128), vec![0x77; 128]);
    let data = pattern(16, 3);
    let (status, ..) = run_inline(&mut device, &inline(key, 0, 16, 4), &data);
    assert_eq!(status, 0);
    assert_eq!(read_back(&mut device, key, 0, 16), data);
    device.check_memory();
}
