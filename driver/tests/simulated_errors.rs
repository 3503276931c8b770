//! Every typed error of the driver against the simulated card: the NI's faults, what the
//! driver refuses before the card sees anything, and a card that dies.

mod common;

use common::*;
use npmu_abi::program::ProgramError;
use npmu_abi::queue::DescriptorError;
use npmu_abi::registers::{queue, queue_offset};
use npmu_abi::{CommandError, Fault};
use npmu_driver::{
    DmaDirection, DmaMapping, DriverError, DriverOptions, NpmuDevice, Operation, Transfer,
};
use npmu_sim::SimulatedIommu;
use rstest::rstest;
use std::time::Duration;

struct Case {
    context: u16,
    key_offset: u32,
    address: u64,
    length: u64,
    write: bool,
}

const GOOD: Case = Case {
    context: CONTEXT,
    key_offset: 0,
    address: BASE,
    length: 64,
    write: true,
};

/// The context is read-only for queue 1 only; entry 2 (the third page) is unmapped.
#[rstest]
#[case::no_such_context(Case { context: 4000, ..GOOD }, Fault::NoSuchContext)]
#[case::context_invalid(Case { context: CONTEXT + 1, ..GOOD }, Fault::ContextInvalid)]
#[case::key_mismatch(Case { key_offset: 0x100, ..GOOD }, Fault::KeyMismatch)]
#[case::permission_denied(Case { write: true, ..GOOD }, Fault::PermissionDenied)]
#[case::out_of_bounds_below(Case { address: BASE - 1, write: false, ..GOOD }, Fault::OutOfBounds)]
#[case::out_of_bounds_past_the_end(Case { address: BASE + 3 * 4096 - 63, write: false, ..GOOD }, Fault::OutOfBounds)]
#[case::page_not_mapped(Case { address: BASE + 2 * 4096 - 32, write: false, ..GOOD }, Fault::PageNotMapped)]
fn each_avt_fault_is_its_own_error(#[case] case: Case, #[case] fault: Fault) {
    let directory = tempfile::tempdir().unwrap();
    let mut device = open(directory.path(), DriverOptions::default());
    device.unlock(KEY).unwrap();
    device.write_entries(0, &[Some(5), Some(2), None]).unwrap();
    let key = device
        .register_context(CONTEXT, &settings(true, false, Some(1)))
        .unwrap();
    device.create_queue(1, 4).unwrap();
    let buffer = device.allocate(4096, DmaDirection::Bidirectional).unwrap();
    let transfer = Transfer {
        context: case.context,
        key: key + case.key_offset,
        address: case.address,
        buffer: &buffer,
        offset: 0,
        length: case.length,
    };
    let operation = if case.write {
        Operation::Write(transfer)
    } else {
        Operation::Read(transfer)
    };
    let error = device.run(1, operation).unwrap_err();
    assert_eq!(
        error.descriptor_error(),
        Some(DescriptorError::Avt(fault)),
        "{error}"
    );
    assert!(matches!(
        error,
        DriverError::Descriptor {
            queue: 1,
            bytes_done: 0,
            ..
        }
    ));
}

#[test]
fn an_initiator_other_than_the_contexts_is_refused() {
    let directory = tempfile::tempdir().unwrap();
    let mut device = open(directory.path(), DriverOptions::default());
    let key = program(&mut device, true, true, Some(1));
    device.create_queue(0, 4).unwrap();
    let buffer = device.allocate(64, DmaDirection::ToDevice).unwrap();
    let write = transfer(key, BASE, &buffer, 64);
    let error = device.run(0, Operation::Write(write)).unwrap_err();
    assert_eq!(
        error.descriptor_error(),
        Some(DescriptorError::Avt(Fault::InitiatorNotAllowed))
    );
}

/// The IOMMU refuses the card's DMA when the mapping is gone behind the driver's back.
#[test]
fn a_dma_the_iommu_refuses_is_a_dma_fault() {
    let directory = tempfile::tempdir().unwrap();
    let iommu = SimulatedIommu::new();
    let card = card_in(directory.path(), "card", &iommu);
    let mut device = NpmuDevice::open(card, DriverOptions::default()).unwrap();
    let key = program(&mut device, true, true, None);
    device.create_queue(0, 4).unwrap();
    let buffer = device.allocate(4096, DmaDirection::ToDevice).unwrap();
    iommu.unmap(buffer.iova(), 4096).unwrap();
    // Longer than an inline write, whose bytes the driver copies into the ring.
    let write = transfer(key, BASE, &buffer, 128);
    let error = device.run(0, Operation::Write(write)).unwrap_err();
    assert_eq!(
        error.descriptor_error(),
        Some(DescriptorError::Dma),
        "{error}"
    );
    // Its mapping is gone, so dropping it would only log that unmapping failed.
    std::mem::forget(buffer);
}

#[test]
fn bad_arguments_are_refused_before_the_card_sees_them() {
    let directory = tempfile::tempdir().unwrap();
    let mut device = open(directory.path(), DriverOptions::default());
    let key = program(&mut device, true, true, None);
    let queues = device.capabilities().queues;
    assert!(matches!(
        device.create_queue(queues, 4),
        Err(DriverError::NoSuchQueue { queue, .. }) if queue == queues
    ));
    for entries in [0, 1, 3, 8192] {
        assert!(matches!(
            device.create_queue(0, entries),
            Err(DriverError::BadQueueEntries { .. })
        ));
    }
    assert!(matches!(
        device.submit(0, Operation::Nop),
        Err(DriverError::QueueNotSetUp { queue: 0, .. })
    ));
    device.create_queue(0, 4).unwrap();
    let source = device.allocate(100, DmaDirection::ToDevice).unwrap();
    let write = transfer(key, BASE, &source, 64);
    let refusals = [
        Operation::Write(Transfer { length: 0, ..write }),
        Operation::Write(Transfer {
            length: (1 << 20) + 1,
            ..write
        }),
        Operation::Write(Transfer {
            offset: 37,
            ..write
        }),
        Operation::Write(Transfer {
            offset: u64::MAX,
            ..write
        }),
        Operation::Read(write),
    ];
    for operation in refusals {
        let error = device.submit(0, operation).unwrap_err();
        assert!(
            matches!(
                error,
                DriverError::BadLength { .. }
                    | DriverError::Dma(npmu_driver::DmaError::OutOfBuffer { .. })
                    | DriverError::WrongDirection { .. }
            ),
            "{error}"
        );
    }
    let other_domain = npmu_driver::DmaDomain::new(SimulatedIommu::new(), 64);
    let foreign = npmu_driver::DmaBuffer::new(&other_domain, 64, DmaDirection::ToDevice).unwrap();
    assert!(matches!(
        device.submit(
            0,
            Operation::Write(Transfer {
                buffer: &foreign,
                ..write
            })
        ),
        Err(DriverError::BufferOfAnotherDomain { .. })
    ));
    let stale = npmu_driver::Ticket { queue: 0, tag: 999 };
    assert!(matches!(
        device.wait(stale),
        Err(DriverError::UnknownTag { tag: 999, .. })
    ));
    // Nothing above reached the card: the queue still runs a real write.
    assert_eq!(device.run(0, Operation::Write(write)).unwrap(), 64);
    let ticket = device.submit(0, Operation::Nop).unwrap();
    assert!(matches!(
        device.destroy_queue(0),
        Err(DriverError::QueueBusy { outstanding: 1, .. })
    ));
    device.wait(ticket).unwrap();
    device.destroy_queue(0).unwrap();
}

#[test]
fn programming_refusals_are_typed() {
    let directory = tempfile::tempdir().unwrap();
    let mut device = open(directory.path(), DriverOptions::default());
    let locked = device.write_entries(0, &[Some(1)]).unwrap_err();
    assert!(
        matches!(
            locked,
            DriverError::Program {
                source: ProgramError::Locked,
                ..
            }
        ),
        "{locked}"
    );
    assert!(matches!(
        device.unlock(KEY ^ 1),
        Err(DriverError::Program {
            source: ProgramError::WrongKey,
            ..
        })
    ));
    device.unlock(KEY).unwrap();
    let memory_pages = device.capabilities().memory_pages as u32;
    let cases = [
        (
            device.write_entries(0, &[Some(memory_pages)]).unwrap_err(),
            CommandError::PageOutOfRange,
        ),
        (
            device.invalidate_context(u16::MAX).unwrap_err(),
            CommandError::NoSuchContext,
        ),
        (
            device.read_entry(1 << 15).unwrap_err(),
            CommandError::NoSuchEntry,
        ),
        (
            device
                .register_context(
                    1,
                    &npmu_driver::ContextSettings {
                        base: BASE + 1,
                        ..settings(true, true, None)
                    },
                )
                .unwrap_err(),
            CommandError::UnalignedBase,
        ),
        (
            device
                .register_context(
                    1,
                    &npmu_driver::ContextSettings {
                        pages: 0,
                        ..settings(true, true, None)
                    },
                )
                .unwrap_err(),
            CommandError::EmptyContext,
        ),
    ];
    for (error, expected) in cases {
        assert!(
            matches!(error, DriverError::Program { source: ProgramError::Command(code), .. } if code == expected),
            "{error}"
        );
    }
}

#[test]
fn a_card_that_stops_answering_is_declared_failed() {
    let directory = tempfile::tempdir().unwrap();
    let options = DriverOptions {
        timeout: Duration::from_millis(500),
        ..DriverOptions::default()
    };
    let mut device = open(directory.path(), options);
    let key = program(&mut device, true, true, None);
    device.create_queue(0, 4).unwrap();
    let buffer = device.allocate(64, DmaDirection::ToDevice).unwrap();
    let write = transfer(key, BASE, &buffer, 64);
    device.card().fail();
    let ticket = device.submit(0, Operation::Write(write)).unwrap();
    let error = device.wait(ticket).unwrap_err();
    assert!(matches!(error, DriverError::NoAnswer { .. }), "{error}");
    assert!(device.failure().is_some());
    assert!(matches!(
        device.submit(0, Operation::Nop),
        Err(DriverError::Failed { .. })
    ));
    assert!(matches!(device.reset(), Err(DriverError::Device { .. })));
}

/// A descriptor that takes longer than the timeout: the driver gives up and marks the card
/// failed rather than waiting forever.
#[test]
fn a_descriptor_past_the_timeout_marks_the_card_failed() {
    let directory = tempfile::tempdir().unwrap();
    let card = card_in(directory.path(), "slow", &SimulatedIommu::new());
    let mut device = NpmuDevice::open(card, DriverOptions::default()).unwrap();
    device.unlock(KEY).unwrap();
    device.write_entries(0, &[Some(1); 3]).unwrap();
    let key = device
        .register_context(CONTEXT, &settings(true, true, None))
        .unwrap();
    device.create_queue(0, 4).unwrap();
    let buffer = device.allocate(3 * 4096, DmaDirection::ToDevice).unwrap();
    let write = transfer(key, BASE, &buffer, 3 * 4096);
    device.set_timeout(Duration::from_millis(1));
    let ticket = device.submit(0, Operation::Write(write)).unwrap();
    let error = device.wait(ticket).unwrap_err();
    assert!(matches!(error, DriverError::Timeout { .. }), "{error}");
    device.set_timeout(DriverOptions::default().timeout);
    assert!(matches!(
        device.submit(0, Operation::Nop),
        Err(DriverError::Failed { .. })
    ));
    device.reset().unwrap();
    assert!(
        device.failure().is_none(),
        "a reset card that answers is usable again"
    );
}

#[test]
fn a_domain_the_card_is_not_in_is_refused() {
    let directory = tempfile::tempdir().unwrap();
    let card = card_in(directory.path(), "card", &SimulatedIommu::new());
    let other = npmu_driver::DmaDomain::new(SimulatedIommu::new(), 64);
    assert!(matches!(
        NpmuDevice::open_in(card, other, DriverOptions::default()),
        Err(DriverError::ForeignDomain { .. })
    ));
}

/// A queue's window is the manager's to grant: creating a queue with the lock closed is
/// refused before the queue is enabled; with it open the queue gets the domain's span.
#[test]
fn creating_a_queue_needs_the_management_lock_for_its_window() {
    let directory = tempfile::tempdir().unwrap();
    let mut device = open(directory.path(), DriverOptions::default());
    let locked = device.create_queue(0, 4).unwrap_err();
    assert!(
        matches!(
            locked,
            DriverError::Program {
                source: ProgramError::Locked,
                ..
            }
        ),
        "{locked}"
    );
    let window = |device: &Card| npmu_abi::queue::HostWindow {
        base: device.read_register(queue_offset(0, queue::WINDOW_BASE)),
        bytes: device.read_register(queue_offset(0, queue::WINDOW_BYTES)),
    };
    assert_eq!(window(&device), npmu_abi::queue::HostWindow::EMPTY);
    device.unlock(KEY).unwrap();
    device.create_queue(0, 4).unwrap();
    let granted = window(&device);
    assert_eq!(granted, device.domain().window());
    let buffer = device.allocate(4096, DmaDirection::Bidirectional).unwrap();
    assert!(granted.holds(buffer.iova(), buffer.size()));
}
