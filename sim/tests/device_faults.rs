//! Every way a descriptor can fail, through the queues: each AVT fault, each kind of
//! malformed descriptor, and host memory the IOMMU refuses partway through a transfer. Each
//! gets its status and the bytes it moved in its completion, touches no byte it must not,
//! and the queue keeps working afterwards.

mod common;

use common::device::*;
use npmu_abi::program::{self, ContextSettings};
use npmu_abi::queue::{Descriptor, DescriptorError, Opcode};
use npmu_abi::{Config, Fault};
use npmu_model::DmaDirection;
use npmu_sim::DeviceOptions;
use rstest::rstest;

const DATA: u8 = 0xa5;
const OLD: u8 = 0x11;
const LENGTH: u32 = 300;

/// A device whose context holds [`OLD`] bytes everywhere, with [`DATA`] in the source buffer
/// and [`OLD`] in the destination buffer.
fn prepared() -> (Device, u32) {
    let (mut device, key) = set_up(&Config::SIM, DeviceOptions::default());
    let bytes = context_bytes(&Config::SIM);
    device.write_host(SOURCE, &vec![OLD; bytes as usize]);
    let (status, _) = run_one(&mut device, QUEUE, &write(key, 0, SOURCE, bytes as u32, 1));
    assert_eq!(status, 0);
    device.write_host(SOURCE, &vec![DATA; BUFFER_BYTES as usize]);
    device.write_host(DESTINATION, &vec![OLD; BUFFER_BYTES as usize]);
    (device, key)
}

/// Persistent memory of the context still holds only [`OLD`], the destination buffer too.
fn assert_untouched(device: &mut Device, key: u32) {
    let bytes = context_bytes(&Config::SIM);
    let check = DESTINATION + BUFFER_BYTES / 2;
    let (status, _) = run_one(device, QUEUE, &read(key, 0, check, bytes as u32, 99));
    assert_eq!(status, 0);
    assert!(
        device
            .read_host(check, bytes as usize)
            .iter()
            .all(|byte| *byte == OLD),
        "persistent memory was written"
    );
    assert!(
        device
            .read_host(DESTINATION, 0x10000)
            .iter()
            .all(|byte| *byte == OLD),
        "the host buffer was written"
    );
}

/// The queue still moves data: a write and a read of 64 bytes succeed.
fn assert_queue_works(device: &mut Device, key: u32) {
    let completions = run(
        device,
        QUEUE,
        &[
            write(key, 64, SOURCE, 64, 200),
            read(key, 64, DESTINATION + 0x8000, 64, 201),
        ],
    );
    let statuses: Vec<u8> = completions.iter().map(|c| c.status).collect();
    assert_eq!(statuses, [0, 0]);
    assert_eq!(device.read_host(DESTINATION + 0x8000, 64), [DATA; 64]);
    device.check_memory();
}

/// How a descriptor is broken, and on which queue it is submitted.
#[derive(Clone, Copy, Debug)]
enum Breakage {
    ContextBeyondTable,
    ContextNeverRegistered,
    WrongKey,
    OtherQueue,
    ReadOnlyContext,
    WriteOnlyContext,
    BeforeBase,
    PastEnd,
    HoleInPages,
}

fn broken(
    device: &mut Device,
    key: u32,
    operation: Opcode,
    breakage: Breakage,
) -> (u16, Descriptor) {
    let transfer = match operation {
        Opcode::Write => write(key, 100, SOURCE, LENGTH, 7),
        _ => read(key, 100, DESTINATION, LENGTH, 7),
    };
    let bytes = context_bytes(&Config::SIM);
    let with_context = |id: u16, key: u32| Descriptor {
        context: id.into(),
        key: key.into(),
        ..transfer
    };
    let register = |device: &mut Device, id: u16, settings: ContextSettings| {
        program::register_context(device, id, &settings).unwrap()
    };
    match breakage {
        Breakage::ContextBeyondTable => (QUEUE, with_context(Config::SIM.contexts as u16, key)),
        Breakage::ContextNeverRegistered => (QUEUE, with_context(CONTEXT + 1, key)),
        Breakage::WrongKey => (QUEUE, with_context(CONTEXT, key ^ 0x100)),
        Breakage::OtherQueue => (QUEUE + 1, transfer),
        Breakage::ReadOnlyContext => {
            let key = register(
                device,
                20,
                ContextSettings {
                    write: false,
                    ..context_settings()
                },
            );
            (QUEUE, with_context(20, key))
        }
        Breakage::WriteOnlyContext => {
            let key = register(
                device,
                21,
                ContextSettings {
                    read: false,
                    ..context_settings()
                },
            );
            (QUEUE, with_context(21, key))
        }
        Breakage::BeforeBase => (
            QUEUE,
            Descriptor {
                address: (NETWORK_BASE - 1).into(),
                ..transfer
            },
        ),
        Breakage::PastEnd => (
            QUEUE,
            Descriptor {
                address: (NETWORK_BASE + bytes - u64::from(LENGTH) + 1).into(),
                ..transfer
            },
        ),
        Breakage::HoleInPages => {
            // Context pages 0-3 over entries 40-43, entry 42 invalid: the request covers
            // pages 0-2, so pages 0 and 1 would be written by a careless NI.
            let entries = [
                Some(physical_page(0)),
                Some(physical_page(1)),
                None,
                Some(physical_page(3)),
            ];
            program::write_entries(device, 40, &entries).unwrap();
            let settings = ContextSettings {
                pages: 4,
                first_entry: 40,
                ..context_settings()
            };
            let key = register(device, 22, settings);
            let page = Config::SIM.page_bytes();
            (
                QUEUE,
                Descriptor {
                    address: (NETWORK_BASE + page / 2).into(),
                    length: (2 * page as u32).into(),
                    ..with_context(22, key)
                },
            )
        }
    }
}

#[rstest]
fn every_avt_fault_fails_its_descriptor_alone(
    #[values(Opcode::Write, Opcode::Read)] operation: Opcode,
    #[values(
        (Breakage::ContextBeyondTable, Fault::NoSuchContext),
        (Breakage::ContextNeverRegistered, Fault::ContextInvalid),
        (Breakage::WrongKey, Fault::KeyMismatch),
        (Breakage::OtherQueue, Fault::InitiatorNotAllowed),
        (Breakage::BeforeBase, Fault::OutOfBounds),
        (Breakage::PastEnd, Fault::OutOfBounds),
        (Breakage::HoleInPages, Fault::PageNotMapped),
    )]
    case: (Breakage, Fault),
) {
    let (breakage, fault) = case;
    let (mut device, key) = prepared();
    let (queue, descriptor) = broken(&mut device, key, operation, breakage);
    assert_eq!(run_one(&mut device, queue, &descriptor), (fault.code(), 0));
    assert_untouched(&mut device, key);
    assert_queue_works(&mut device, key);
}

#[rstest]
#[case(Opcode::Write, Breakage::ReadOnlyContext)]
#[case(Opcode::Read, Breakage::WriteOnlyContext)]
fn a_context_without_the_permission_refuses(#[case] operation: Opcode, #[case] breakage: Breakage) {
    let (mut device, key) = prepared();
    let (queue, descriptor) = broken(&mut device, key, operation, breakage);
    let expected = (Fault::PermissionDenied.code(), 0);
    assert_eq!(run_one(&mut device, queue, &descriptor), expected);
    assert_untouched(&mut device, key);
    assert_queue_works(&mut device, key);
}

#[rstest]
#[case::unknown_opcode(Descriptor { opcode: 4, ..write(0, 0, SOURCE, 8, 5) })]
#[case::highest_opcode(Descriptor { opcode: 255, ..write(0, 0, SOURCE, 8, 5) })]
#[case::reserved_flags(Descriptor { flags: 0x80, ..write(0, 0, SOURCE, 8, 5) })]
#[case::zero_length_write(write(0, 0, SOURCE, 0, 5))]
#[case::zero_length_read(read(0, 0, DESTINATION, 0, 5))]
#[case::too_long(write(0, 0, SOURCE, Config::SIM.max_request_bytes + 1, 5))]
#[case::longest_length(read(0, 0, DESTINATION, u32::MAX, 5))]
#[case::read_host_buffer_wrapping(read(0, 0, u64::MAX - 6, 8, 5))]
#[case::write_host_buffer_wrapping(write(0, 0, u64::MAX, 2, 5))]
#[case::nop_with_length(Descriptor { length: 1.into(), ..without_data(Opcode::Nop, 5) })]
#[case::nop_with_address(Descriptor { host_address: SOURCE.into(), ..without_data(Opcode::Nop, 5) })]
#[case::flush_with_context(Descriptor { context: CONTEXT.into(), ..without_data(Opcode::Flush, 5) })]
#[case::flush_with_key(Descriptor { key: 1.into(), ..without_data(Opcode::Flush, 5) })]
#[case::flush_with_length(Descriptor { length: 8.into(), ..without_data(Opcode::Flush, 5) })]
fn a_malformed_descriptor_gets_an_error_completion(#[case] descriptor: Descriptor) {
    let (mut device, key) = prepared();
    // The context and key are right where the descriptor carries them.
    let descriptor = match Opcode::from_code(descriptor.opcode) {
        Some(Opcode::Write | Opcode::Read) => Descriptor {
            key: key.into(),
            ..descriptor
        },
        _ => descriptor,
    };
    let expected = (DescriptorError::MALFORMED_CODE, 0);
    assert_eq!(run_one(&mut device, QUEUE, &descriptor), expected);
    assert_untouched(&mut device, key);
    assert_queue_works(&mut device, key);
}

#[test]
fn nop_and_flush_complete_without_touching_anything() {
    let (mut device, key) = prepared();
    let (reads_before, writes_before) = device.host_traffic();
    for opcode in [Opcode::Nop, Opcode::Flush] {
        assert_eq!(run_one(&mut device, 0, &without_data(opcode, 3)), (0, 0));
    }
    let (reads, writes) = device.host_traffic();
    // One descriptor fetch and one completion write each, no data.
    assert_eq!((reads - reads_before, writes - writes_before), (2, 2));
    assert_untouched(&mut device, key);
}

/// A transfer of three pages starting 100 bytes into the buffer, whose `hole`th host page
/// the IOMMU refuses: the bytes before the hole move, and the completion says how many.
#[rstest]
fn a_write_from_host_memory_the_iommu_refuses_stops_at_the_hole(#[values(0, 1, 2)] hole: u64) {
    let (mut device, key) = prepared();
    let length = 3 * 4096;
    device.unmap_host(SOURCE + hole * 4096, 4096);
    let before_hole = (hole * 4096).saturating_sub(100) as u32;
    let descriptor = write(key, 0, SOURCE + 100, length, 8);
    let expected = (DescriptorError::DMA_CODE, before_hole);
    assert_eq!(run_one(&mut device, QUEUE, &descriptor), expected);
    // The part before the hole is durable, nothing after it was written.
    let (status, _) = run_one(&mut device, QUEUE, &read(key, 0, DESTINATION, length, 9));
    assert_eq!(status, 0);
    let back = device.read_host(DESTINATION, length as usize);
    let split = before_hole as usize;
    assert!(back[..split].iter().all(|byte| *byte == DATA));
    assert!(back[split..].iter().all(|byte| *byte == OLD));
    device.map_host(SOURCE + hole * 4096, 4096, DmaDirection::ToDevice);
    assert_queue_works(&mut device, key);
}

#[rstest]
fn a_read_into_host_memory_the_iommu_refuses_reports_the_bytes_before_the_hole(
    #[values(0, 1, 2)] hole: u64,
) {
    let (mut device, key) = prepared();
    let length = 3 * 4096;
    let (status, _) = run_one(&mut device, QUEUE, &write(key, 0, SOURCE, length, 8));
    assert_eq!(status, 0);
    device.unmap_host(DESTINATION + hole * 4096, 4096);
    let before_hole = (hole * 4096).saturating_sub(100) as u32;
    let descriptor = read(key, 0, DESTINATION + 100, length, 9);
    let expected = (DescriptorError::DMA_CODE, before_hole);
    assert_eq!(run_one(&mut device, QUEUE, &descriptor), expected);
    // Writes to host memory are posted: the pages the IOMMU maps receive their part even
    // past the hole; the refused page holds what it held.
    let back = device.read_host(DESTINATION + 100, length as usize);
    for (index, byte) in back.iter().enumerate() {
        let page = (index as u64 + 100) / 4096;
        let expected = if page == hole { OLD } else { DATA };
        assert_eq!(*byte, expected, "byte {index}");
    }
    device.check_memory();
    device.map_host(DESTINATION + hole * 4096, 4096, DmaDirection::FromDevice);
    assert_queue_works(&mut device, key);
}

/// The IOMMU maps the source buffer for the device to read and the destination for it to
/// write: a READ into the source, or a WRITE from the destination, is refused like a hole.
#[rstest]
#[case::read_into_a_buffer_mapped_to_the_device(read(0, 0, SOURCE, 100, 5))]
#[case::write_from_a_buffer_mapped_from_the_device(write(0, 0, DESTINATION, 100, 5))]
fn a_transfer_against_the_mapping_s_direction_is_a_dma_fault(#[case] descriptor: Descriptor) {
    let (mut device, key) = prepared();
    let descriptor = Descriptor {
        key: key.into(),
        ..descriptor
    };
    let before = device.read_host(SOURCE, 100);
    let expected = (DescriptorError::DMA_CODE, 0);
    assert_eq!(run_one(&mut device, QUEUE, &descriptor), expected);
    assert_eq!(device.read_host(SOURCE, 100), before);
    assert_untouched(&mut device, key);
    assert_queue_works(&mut device, key);
}
