//! The driver on the model card (the golden model behind the driver's traits): the same
//! data in the same places, and the same errors, as on the Verilator card, only at once.

#![cfg(feature = "simulated")]

mod common;

use common::*;
use npmu_abi::program::{self, QueueSettings, RegisterAccess};
use npmu_abi::queue::DescriptorError;
use npmu_abi::registers::{self as reg, queue_offset};
use npmu_abi::Fault;
use npmu_driver::{
    Device, DmaBuffer, DmaDirection, DmaDomain, DriverError, DriverOptions, Interrupts, NpmuDevice,
    Operation, Transfer,
};
use npmu_sim::{ModelCard, ModelCardOptions, SimulatedIommu};
use rstest::rstest;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const PAGE: u64 = 4096;

fn model_card_in(directory: &Path, name: &str, iommu: &Arc<SimulatedIommu>) -> ModelCard {
    ModelCard::open(
        name,
        &directory.join(format!("{name}.pm")),
        Arc::clone(iommu),
        ModelCardOptions::default(),
    )
    .expect("the model card opens")
}

fn open_model(directory: &Path, options: DriverOptions) -> NpmuDevice<ModelCard> {
    let card = model_card_in(directory, "card", &SimulatedIommu::new());
    NpmuDevice::open(card, options).expect("the driver opens the model card")
}

/// The physical pages [`PAGES`] of the memory file of the card named "card" in
/// `directory`, one after another.
fn mapped_pages_of(directory: &Path) -> Vec<u8> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::open(directory.join("card.pm")).unwrap();
    let mut pages = vec![0; PAGES.len() * PAGE as usize];
    for (page, bytes) in PAGES.iter().zip(pages.chunks_mut(PAGE as usize)) {
        file.read_exact_at(bytes, u64::from(*page) * PAGE).unwrap();
    }
    pages
}

/// A write across the three scattered pages reads back, and lands in the card's memory
/// file on the physical pages the entries name.
#[rstest]
#[case::interrupts(true)]
#[case::polling(false)]
fn writes_read_back_and_land_on_the_mapped_pages(#[case] interrupts: bool) {
    let directory = tempfile::tempdir().unwrap();
    let options = DriverOptions {
        interrupts,
        ..DriverOptions::default()
    };
    let mut device = open_model(directory.path(), options);
    let key = program(&mut device, true, true, None);
    device.create_queue(1, 16).unwrap();
    let length = 3 * PAGE as usize - 200;
    let data = pattern(length, 7);
    let mut source = device
        .allocate(length as u64, DmaDirection::ToDevice)
        .unwrap();
    source.write(0, &data).unwrap();
    let moved = device
        .run(
            1,
            Operation::Write(transfer(key, BASE + 100, &source, length as u64)),
        )
        .unwrap();
    assert_eq!(moved as usize, length);
    device.run(1, Operation::Flush).unwrap();
    let destination = device
        .allocate(length as u64, DmaDirection::FromDevice)
        .unwrap();
    device
        .run(
            1,
            Operation::Read(transfer(key, BASE + 100, &destination, length as u64)),
        )
        .unwrap();
    let mut back = vec![0; length];
    destination.read(0, &mut back).unwrap();
    assert!(
        back == data,
        "the read returned other bytes than were written"
    );
    // The completions were there before the driver looked, so it never took the interrupts.
    assert_eq!(
        device.card().wait_interrupt(1, Duration::ZERO).unwrap(),
        interrupts
    );

    drop(device);
    let stored = mapped_pages_of(directory.path());
    assert!(stored[100..100 + length] == data);
    assert!(stored[..100].iter().all(|byte| *byte == 0));
    assert!(stored[100 + length..].iter().all(|byte| *byte == 0));
}

struct FaultCase {
    context: u16,
    key_offset: u32,
    address: u64,
    write: bool,
}

const GOOD: FaultCase = FaultCase {
    context: CONTEXT,
    key_offset: 0,
    address: BASE,
    write: false,
};

/// Runs `case` on a context readable by queue 1 only whose third page is unmapped; returns
/// the driver's error.
fn avt_fault<D: Device>(mut device: NpmuDevice<D>, case: &FaultCase) -> DriverError {
    device.unlock(KEY).unwrap();
    device
        .write_entries(0, &[Some(PAGES[0]), Some(PAGES[1]), None])
        .unwrap();
    let key = device
        .register_context(CONTEXT, &settings(true, false, Some(1)))
        .unwrap();
    device.create_queue(1, 4).unwrap();
    let buffer = device.allocate(PAGE, DmaDirection::Bidirectional).unwrap();
    let transfer = Transfer {
        context: case.context,
        key: key + case.key_offset,
        address: case.address,
        ..transfer(key, 0, &buffer, 64)
    };
    let operation = if case.write {
        Operation::Write(transfer)
    } else {
        Operation::Read(transfer)
    };
    device.run(1, operation).unwrap_err()
}

#[rstest]
#[case::key_mismatch(FaultCase { key_offset: 0x100, ..GOOD }, Fault::KeyMismatch)]
#[case::context_invalid(FaultCase { context: CONTEXT + 1, ..GOOD }, Fault::ContextInvalid)]
#[case::permission_denied(FaultCase { write: true, ..GOOD }, Fault::PermissionDenied)]
#[case::out_of_bounds(FaultCase { address: BASE + 3 * PAGE - 63, ..GOOD }, Fault::OutOfBounds)]
#[case::page_not_mapped(FaultCase { address: BASE + 2 * PAGE - 32, ..GOOD }, Fault::PageNotMapped)]
fn an_avt_fault_is_the_same_error_as_on_the_verilator_card(
    #[case] case: FaultCase,
    #[case] fault: Fault,
) {
    let directories = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let on_model = avt_fault(open_model(directories[0].path(), Default::default()), &case);
    let on_verilator = avt_fault(open(directories[1].path(), Default::default()), &case);
    assert_eq!(
        on_model.descriptor_error(),
        Some(DescriptorError::Avt(fault)),
        "{on_model}"
    );
    assert!(matches!(
        on_model,
        DriverError::Descriptor {
            queue: 1,
            bytes_done: 0,
            ..
        }
    ));
    assert_eq!(on_model.to_string(), on_verilator.to_string());
}

/// What a transfer whose buffer lost one page of its mapping did: the driver's error, the
/// buffer a read filled, and the context's pages of the card's memory after a write.
struct DmaFaultOutcome {
    error: String,
    buffer: Vec<u8>,
    memory: Vec<u8>,
}

/// Moves 12 KB between [`CONTEXT`] and a three-page buffer whose page `unmapped` the IOMMU
/// lost behind the driver's back.
fn dma_fault<D: Device>(
    directory: &Path,
    mut device: NpmuDevice<D>,
    write: bool,
    unmapped: u64,
) -> DmaFaultOutcome {
    let key = program(&mut device, true, true, None);
    device.create_queue(0, 4).unwrap();
    let length = 3 * PAGE - 200;
    if !write {
        let mut source = device.allocate(length, DmaDirection::ToDevice).unwrap();
        source.write(0, &pattern(length as usize, 5)).unwrap();
        device
            .run(
                0,
                Operation::Write(transfer(key, BASE + 100, &source, length)),
            )
            .unwrap();
    }
    let direction = match write {
        true => DmaDirection::ToDevice,
        false => DmaDirection::FromDevice,
    };
    let mut buffer = device.allocate(3 * PAGE, direction).unwrap();
    buffer.write(0, &pattern(3 * PAGE as usize, 9)).unwrap();
    device
        .card()
        .dma()
        .unmap(buffer.iova() + unmapped * PAGE, PAGE)
        .unwrap();
    let moved = transfer(key, BASE + 100, &buffer, length);
    let operation = match write {
        true => Operation::Write(moved),
        false => Operation::Read(moved),
    };
    let error = device.run(0, operation).unwrap_err();
    assert_eq!(
        error.descriptor_error(),
        Some(DescriptorError::Dma),
        "{error}"
    );
    assert!(matches!(
        error,
        DriverError::Descriptor { bytes_done, .. } if u64::from(bytes_done) == unmapped * PAGE
    ));
    let mut contents = vec![0; 3 * PAGE as usize];
    buffer.read(0, &mut contents).unwrap();
    // Part of its mapping is gone, so dropping it would only log that unmapping failed.
    std::mem::forget(buffer);
    drop(device);
    DmaFaultOutcome {
        error: error.to_string(),
        buffer: contents,
        memory: mapped_pages_of(directory),
    }
}

/// The IOMMU refuses a page of the buffer: the transfer moves the bytes before it, and
/// exactly what the Verilator card moves.
#[rstest]
fn a_dma_fault_moves_what_the_verilator_card_moves(
    #[values(true, false)] write: bool,
    #[values(0, 1, 2)] unmapped: u64,
) {
    let directories = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let on_model = dma_fault(
        directories[0].path(),
        open_model(directories[0].path(), Default::default()),
        write,
        unmapped,
    );
    let on_verilator = dma_fault(
        directories[1].path(),
        open(directories[1].path(), Default::default()),
        write,
        unmapped,
    );
    assert_eq!(on_model.error, on_verilator.error);
    assert!(
        on_model.buffer == on_verilator.buffer,
        "the read left other bytes in the buffer"
    );
    assert!(
        on_model.memory == on_verilator.memory,
        "the write left other bytes in persistent memory"
    );
}

/// Raw register access to a card, as the abi's programming sequences take it.
struct Registers<'a, D: Device>(&'a D);

impl<D: Device> RegisterAccess for Registers<'_, D> {
    fn read(&mut self, offset: u16) -> u64 {
        self.0.read_register(offset)
    }

    fn write(&mut self, offset: u16, value: u64) {
        self.0.write_register(offset, value);
    }
}

/// Queue 0 interrupting every third completion: two Nops send nothing, the third wakes a
/// waiter on another thread, and one interrupt covers all three.
fn interrupts_coalesce<D: Device>(card: D) {
    let domain = DmaDomain::new(card.dma(), 64);
    // Zeroed descriptors are Nops.
    let submissions = DmaBuffer::new(&domain, PAGE, DmaDirection::ToDevice).unwrap();
    let completions = DmaBuffer::new(&domain, PAGE, DmaDirection::FromDevice).unwrap();
    let settings = QueueSettings {
        submission_base: submissions.iova(),
        submission_entries: 8,
        completion_base: completions.iova(),
        completion_entries: 8,
        interrupts: true,
        coalesce_count: 3,
        coalesce_clocks: 0,
    };
    program::unlock(&mut Registers(&card), KEY).unwrap();
    program::set_queue_window(&mut Registers(&card), 0, domain.window()).unwrap();
    program::set_up_queue(&mut Registers(&card), 0, &settings).unwrap();
    let doorbell = queue_offset(0, reg::queue::SQ_TAIL);
    let quiet = Duration::from_millis(200);
    card.write_register(doorbell, 2);
    assert!(
        !card.wait_interrupt(0, quiet).unwrap(),
        "two completions of three"
    );
    std::thread::scope(|scope| {
        let waiter = scope.spawn(|| card.wait_interrupt(0, Duration::from_secs(10)));
        std::thread::sleep(Duration::from_millis(20));
        card.write_register(doorbell, 3);
        assert!(waiter.join().unwrap().unwrap(), "the third completion");
    });
    assert!(
        !card.wait_interrupt(0, quiet).unwrap(),
        "one interrupt for all three"
    );
    assert_eq!(card.read_register(queue_offset(0, reg::queue::CQ_TAIL)), 3);
}

#[test]
fn interrupts_coalesce_on_the_model_card() {
    let directory = tempfile::tempdir().unwrap();
    interrupts_coalesce(model_card_in(
        directory.path(),
        "card",
        &SimulatedIommu::new(),
    ));
}

#[test]
fn interrupts_coalesce_on_the_verilator_card_alike() {
    let directory = tempfile::tempdir().unwrap();
    interrupts_coalesce(card_in(directory.path(), "card", &SimulatedIommu::new()));
}

#[test]
fn reset_clears_tables_and_the_lock_but_not_memory() {
    let directory = tempfile::tempdir().unwrap();
    let mut device = open_model(directory.path(), DriverOptions::default());
    let key = program(&mut device, true, true, None);
    device.create_queue(0, 4).unwrap();
    let mut buffer = device.allocate(256, DmaDirection::Bidirectional).unwrap();
    buffer.write(0, &pattern(256, 1)).unwrap();
    device
        .run(0, Operation::Write(transfer(key, BASE, &buffer, 256)))
        .unwrap();
    device.reset().unwrap();
    assert!(matches!(
        device.submit(0, Operation::Nop),
        Err(DriverError::QueueNotSetUp { queue: 0, .. })
    ));
    assert_eq!(
        device.read_register(reg::STATUS.offset),
        0,
        "locked, and initialized at once"
    );
    assert!(device.read_context(CONTEXT).is_err(), "the lock is closed");
    let new_key = program(&mut device, true, true, None);
    device.create_queue(0, 4).unwrap();
    buffer.fill(0, 256, 0).unwrap();
    device
        .run(0, Operation::Read(transfer(new_key, BASE, &buffer, 256)))
        .unwrap();
    let mut back = vec![0; 256];
    buffer.read(0, &mut back).unwrap();
    assert_eq!(back, pattern(256, 1));
}

#[test]
fn a_model_card_that_fails_answers_no_more() {
    let directory = tempfile::tempdir().unwrap();
    let options = DriverOptions {
        timeout: Duration::from_millis(500),
        ..DriverOptions::default()
    };
    let mut device = open_model(directory.path(), options);
    let key = program(&mut device, true, true, None);
    device.create_queue(0, 4).unwrap();
    let buffer = device.allocate(64, DmaDirection::ToDevice).unwrap();
    device.card().fail();
    assert_eq!(device.read_register(reg::IDENTITY.offset), u64::MAX);
    let ticket = device
        .submit(0, Operation::Write(transfer(key, BASE, &buffer, 64)))
        .unwrap();
    let error = device.wait(ticket).unwrap_err();
    assert!(matches!(error, DriverError::NoAnswer { .. }), "{error}");
    assert!(device.failure().is_some());
    assert!(matches!(
        device.submit(0, Operation::Nop),
        Err(DriverError::Failed { .. })
    ));
    assert!(matches!(device.reset(), Err(DriverError::Device { .. })));
}
