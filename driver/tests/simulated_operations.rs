//! Every operation of the driver against the simulated card, and persistence of what it
//! wrote.

mod common;

use common::*;
use npmu_abi::Config;
use npmu_driver::{Device, DmaDirection, DriverOptions, NpmuDevice, Operation, Transfer};
use npmu_sim::{CardOptions, SimulatedCard, SimulatedIommu};
use rstest::rstest;
use std::path::Path;
use std::sync::Arc;

#[test]
fn capabilities_are_every_parameter_of_the_configuration() {
    let directory = tempfile::tempdir().unwrap();
    let device = open(directory.path(), DriverOptions::default());
    let reported = device.capabilities();
    let config = Config::SIM;
    assert_eq!(reported.contexts, config.contexts);
    assert_eq!(reported.translation_entries, config.translation_entries);
    assert_eq!(reported.page_shift, config.page_shift);
    assert_eq!(reported.data_bytes, config.data_bytes);
    assert_eq!(reported.max_request_bytes, config.max_request_bytes);
    assert_eq!(reported.memory_pages, config.memory_pages);
    assert_eq!(u32::from(reported.queues), config.queues);
    assert_eq!(reported.max_payload_bytes, config.max_payload_bytes);
    assert_eq!(
        reported.max_read_request_bytes,
        config.max_read_request_bytes
    );
    assert_eq!(reported.dma_read_tags, config.dma_read_tags);
    assert_eq!(reported.memory_bytes(), config.memory_bytes());
}

#[test]
fn tables_read_back_as_programmed_and_revocation_takes_effect() {
    let directory = tempfile::tempdir().unwrap();
    let mut device = open(directory.path(), DriverOptions::default());
    let key = program(&mut device, true, true, Some(0));
    let state = device.read_context(CONTEXT).unwrap();
    assert!(state.valid);
    assert_eq!(state.key, key);
    assert_eq!(state.settings, settings(true, true, Some(0)));
    for (index, page) in PAGES.iter().enumerate() {
        assert_eq!(device.read_entry(index as u32).unwrap(), Some(*page));
    }
    assert_eq!(device.read_entry(PAGES.len() as u32).unwrap(), None);

    device.create_queue(0, 8).unwrap();
    let buffer = device.allocate(64, DmaDirection::ToDevice).unwrap();
    device
        .run(0, Operation::Write(transfer(key, BASE, &buffer, 64)))
        .unwrap();
    device.invalidate_context(CONTEXT).unwrap();
    assert!(!device.read_context(CONTEXT).unwrap().valid);
    let refused = device
        .run(0, Operation::Write(transfer(key, BASE, &buffer, 64)))
        .unwrap_err();
    assert_eq!(
        refused.descriptor_error(),
        Some(npmu_abi::queue::DescriptorError::Avt(
            npmu_abi::Fault::ContextInvalid
        ))
    );
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
    let mut device = open(directory.path(), options);
    let key = program(&mut device, true, true, None);
    device.create_queue(1, 16).unwrap();
    let length = 3 * 4096 - 200;
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
    device.run(1, Operation::Nop).unwrap();
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
    if interrupts {
        assert!(device.card().last_interrupt_clock(1).is_some());
    } else {
        assert!(device.card().last_interrupt_clock(1).is_none());
    }

    drop(source);
    drop(destination);
    drop(device);
    let file = std::fs::read(directory.path().join("card.pm")).unwrap();
    let page = |number: u32| &file[number as usize * 4096..][..4096];
    assert!(page(PAGES[0])[100..] == data[..4096 - 100]);
    assert!(page(PAGES[1]) == &data[4096 - 100..2 * 4096 - 100]);
    assert!(page(PAGES[2])[..4096 - 100] == data[2 * 4096 - 100..]);
    assert!(page(PAGES[2])[4096 - 100..].iter().all(|byte| *byte == 0));
}

#[test]
fn contents_survive_the_card_being_closed_and_reopened() {
    let directory = tempfile::tempdir().unwrap();
    let data = pattern(5000, 3);
    {
        let mut device = open(directory.path(), DriverOptions::default());
        let key = program(&mut device, true, true, None);
        device.create_queue(0, 4).unwrap();
        let mut source = device.allocate(5000, DmaDirection::ToDevice).unwrap();
        source.write(0, &data).unwrap();
        device
            .run(
                0,
                Operation::Write(transfer(key, BASE + 4000, &source, 5000)),
            )
            .unwrap();
    }
    let mut device = open(directory.path(), DriverOptions::default());
    let key = program(&mut device, true, true, None);
    device.create_queue(0, 4).unwrap();
    let destination = device.allocate(5000, DmaDirection::Bidirectional).unwrap();
    device
        .run(
            0,
            Operation::Read(transfer(key, BASE + 4000, &destination, 5000)),
        )
        .unwrap();
    let mut back = vec![0; 5000];
    destination.read(0, &mut back).unwrap();
    assert!(back == data);
}

/// Rings of four entries: every pass flips the phase, and a full ring refuses the next
/// descriptor until completions free slots.
#[test]
fn queues_wrap_around_many_times() {
    let directory = tempfile::tempdir().unwrap();
    let mut device = open(directory.path(), DriverOptions::default());
    let key = program(&mut device, true, true, None);
    // Longer than an inline write, so each takes one slot.
    const SIZE: u64 = 128;
    device.create_queue(2, 4).unwrap();
    let mut buffer = device.allocate(4096, DmaDirection::Bidirectional).unwrap();
    for round in 0..12u64 {
        buffer
            .write(0, &pattern(3 * SIZE as usize, round as u8))
            .unwrap();
        let tickets: Vec<_> = (0..3u64)
            .map(|slot| {
                let write = Transfer {
                    offset: slot * SIZE,
                    ..transfer(key, BASE + slot * SIZE, &buffer, SIZE)
                };
                device.submit(2, Operation::Write(write)).unwrap()
            })
            .collect();
        let full = device.submit(2, Operation::Nop).unwrap_err();
        assert!(
            matches!(full, npmu_driver::DriverError::QueueFull { queue: 2, .. }),
            "{full}"
        );
        for ticket in tickets.into_iter().rev() {
            assert_eq!(device.wait(ticket).unwrap() as u64, SIZE);
        }
        buffer.fill(0, 4096, 0).unwrap();
        device
            .run(2, Operation::Read(transfer(key, BASE, &buffer, 3 * SIZE)))
            .unwrap();
        let mut back = vec![0; 3 * SIZE as usize];
        buffer.read(0, &mut back).unwrap();
        assert_eq!(
            back,
            pattern(3 * SIZE as usize, round as u8),
            "round {round}"
        );
    }
}

/// Two cards in one IOMMU domain, each on its own thread: one buffer written to both at
/// once, as a mirrored write is.
#[test]
fn two_cards_run_at_once_from_one_buffer() {
    let directory = tempfile::tempdir().unwrap();
    let iommu = SimulatedIommu::new();
    let primary = card_in(directory.path(), "primary", &iommu);
    let mirror = card_in(directory.path(), "mirror", &iommu);
    let domain = npmu_driver::DmaDomain::new(primary.dma(), 64);
    let mut primary =
        NpmuDevice::open_in(primary, Arc::clone(&domain), DriverOptions::default()).unwrap();
    let mut mirror =
        NpmuDevice::open_in(mirror, Arc::clone(&domain), DriverOptions::default()).unwrap();
    let mut keys = Vec::new();
    for device in [&mut primary, &mut mirror] {
        keys.push(program(device, true, true, None));
        device.create_queue(0, 8).unwrap();
    }
    let data = pattern(64 * 1024, 9);
    let mut source =
        npmu_driver::DmaBuffer::new(&domain, data.len() as u64, DmaDirection::ToDevice).unwrap();
    source.write(0, &data).unwrap();
    let clocks_before = [primary.card().clocks(), mirror.card().clocks()];
    for chunk in 0..3u64 {
        let write = |key| Transfer {
            offset: chunk * 4096,
            ..transfer(key, BASE + chunk * 4096, &source, 4096)
        };
        let on_primary = primary.submit(0, Operation::Write(write(keys[0]))).unwrap();
        let on_mirror = mirror.submit(0, Operation::Write(write(keys[1]))).unwrap();
        primary.wait(on_primary).unwrap();
        mirror.wait(on_mirror).unwrap();
    }
    assert!(primary.card().clocks() > clocks_before[0]);
    assert!(mirror.card().clocks() > clocks_before[1]);
    for (device, key) in [(&mut primary, keys[0]), (&mut mirror, keys[1])] {
        let destination = device.allocate(3 * 4096, DmaDirection::FromDevice).unwrap();
        device
            .run(
                0,
                Operation::Read(transfer(key, BASE, &destination, 3 * 4096)),
            )
            .unwrap();
        let mut back = vec![0; 3 * 4096];
        destination.read(0, &mut back).unwrap();
        assert!(
            back == data[..3 * 4096],
            "{} holds other bytes",
            device.card().name()
        );
    }
}

#[test]
fn reset_clears_tables_queues_and_the_lock_but_not_memory() {
    let directory = tempfile::tempdir().unwrap();
    let mut device = open(directory.path(), DriverOptions::default());
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
        Err(npmu_driver::DriverError::QueueNotSetUp { queue: 0, .. })
    ));
    assert!(matches!(
        device.read_context(CONTEXT),
        Err(npmu_driver::DriverError::Program {
            source: npmu_abi::program::ProgramError::Locked,
            ..
        })
    ));
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
fn the_ice40_configuration_runs_the_same_driver() {
    let directory = tempfile::tempdir().unwrap();
    let card = SimulatedCard::open(
        "ice40",
        &directory.path().join("ice40.pm"),
        SimulatedIommu::new(),
        CardOptions {
            config: Config::ICE40,
            ..CardOptions::default()
        },
    )
    .unwrap();
    let mut device = NpmuDevice::open(card, DriverOptions::default()).unwrap();
    assert_eq!(device.capabilities().page_bytes(), 1024);
    device.unlock(KEY).unwrap();
    device.write_entries(0, &[Some(100), Some(3)]).unwrap();
    let key = device
        .register_context(
            1,
            &npmu_driver::ContextSettings {
                pages: 2,
                ..settings(true, true, None)
            },
        )
        .unwrap();
    device.create_queue(1, 2).unwrap();
    let mut buffer = device.allocate(2048, DmaDirection::Bidirectional).unwrap();
    buffer.write(0, &pattern(2048, 4)).unwrap();
    let write = Transfer {
        context: 1,
        ..transfer(key, BASE, &buffer, 2048)
    };
    device.run(1, Operation::Write(write)).unwrap();
    let destination = device.allocate(2048, DmaDirection::FromDevice).unwrap();
    let read = Transfer {
        context: 1,
        ..transfer(key, BASE, &destination, 2048)
    };
    device.run(1, Operation::Read(read)).unwrap();
    let mut back = vec![0; 2048];
    destination.read(0, &mut back).unwrap();
    assert_eq!(back, pattern(2048, 4));
}

/// Where the child process of the kill test keeps its card.
const CHILD_DIRECTORY: &str = "NPMU_KILLED_CARD_DIRECTORY";

#[test]
#[ignore = "the child process of what_a_card_acknowledged_survives_sigkill"]
fn child_writes_and_waits_to_be_killed() {
    let directory = std::env::var(CHILD_DIRECTORY).expect("run by the parent test");
    let mut device = open(Path::new(&directory), DriverOptions::default());
    let key = program(&mut device, true, true, None);
    device.create_queue(0, 4).unwrap();
    let mut source = device.allocate(8192, DmaDirection::ToDevice).unwrap();
    source.write(0, &pattern(8192, 77)).unwrap();
    device
        .run(
            0,
            Operation::Write(transfer(key, BASE + 2048, &source, 8192)),
        )
        .unwrap();
    device.run(0, Operation::Flush).unwrap();
    println!("ACKNOWLEDGED");
    std::io::Write::flush(&mut std::io::stdout()).unwrap();
    loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

#[test]
fn what_a_card_acknowledged_survives_sigkill() {
    use std::io::BufRead;
    let directory = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_writes_and_waits_to_be_killed",
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIRECTORY, directory.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let acknowledged = std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.contains("ACKNOWLEDGED"));
    child.kill().unwrap(); // SIGKILL: no destructor, no msync, no clean shutdown
    child.wait().unwrap();
    assert!(acknowledged, "the child never finished its write");

    let mut device = open(directory.path(), DriverOptions::default());
    let key = program(&mut device, true, true, None);
    device.create_queue(0, 4).unwrap();
    let destination = device.allocate(8192, DmaDirection::FromDevice).unwrap();
    device
        .run(
            0,
            Operation::Read(transfer(key, BASE + 2048, &destination, 8192)),
        )
        .unwrap();
    let mut back = vec![0; 8192];
    destination.read(0, &mut back).unwrap();
    assert!(
        back == pattern(8192, 77),
        "the killed process's write is not in the card"
    );
}
