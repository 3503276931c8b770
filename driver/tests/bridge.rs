//! The serial bridge backend against the Verilator model of `npmu_board`: the same
//! `NpmuDevice` code programs the core over the UART, and network requests through the
//! bridge are checked and translated as on the NI.

use npmu_abi::{Config, Fault};
use npmu_driver::bridge::{BridgedCard, Initiator};
use npmu_driver::{ContextSettings, DriverError, DriverOptions, NpmuDevice};
use npmu_sim::{BoardLink, BoardOptions, SimulatedBoard};
use std::io::Write;

const KEY: u64 = 0x6e70_6d75_6b65_7921;

fn board(directory: &tempfile::TempDir) -> (SimulatedBoard, BridgedCard<BoardLink>) {
    let mut board =
        SimulatedBoard::open(&directory.path().join("memory"), BoardOptions::default()).unwrap();
    let link = board.link().unwrap();
    let card = BridgedCard::new("board", link).unwrap();
    (board, card)
}

fn settings(pages: u32) -> ContextSettings {
    ContextSettings {
        tag: 0x1234,
        read: true,
        write: true,
        initiator: Some(7),
        base: 0x10_0000,
        pages,
        first_entry: 0,
    }
}

#[test]
fn the_driver_programs_the_core_and_requests_are_translated_over_the_uart() {
    let directory = tempfile::tempdir().unwrap();
    let (_board, card) = board(&directory);
    let mut device = NpmuDevice::open(card, DriverOptions::default()).unwrap();
    let capabilities = *device.capabilities();
    assert_eq!(capabilities.queues, 0, "no command engine behind a UART");
    assert_eq!(capabilities.memory_pages, Config::ICE40.memory_pages);
    device.unlock(KEY).unwrap();
    // Two network pages onto scattered physical pages 9 and 3.
    device.write_entries(0, &[Some(9), Some(3)]).unwrap();
    let key = device.register_context(1, &settings(2)).unwrap();
    let card = device.card();
    let peer = Initiator {
        context: 1,
        key,
        initiator: 7,
    };
    let page = Config::ICE40.page_bytes();
    // Unaligned, across the page boundary: lanes, partial beats and both pages.
    let address = 0x10_0000 + page - 5;
    let data: Vec<u8> = (0..23u8).map(|byte| byte.wrapping_mul(37)).collect();
    card.network_write(peer, address, &data).unwrap().unwrap();
    assert_eq!(
        card.network_read(peer, address, data.len()).unwrap(),
        Ok(data.clone())
    );
    // The bytes landed in the physical pages the table names, in the file.
    let memory = std::fs::read(directory.path().join("memory")).unwrap();
    let physical = |page_number: u64, offset: u64| memory[(page_number * page + offset) as usize];
    assert_eq!(physical(9, page - 5), data[0]);
    assert_eq!(physical(3, 0), data[5]);
    assert_eq!(physical(3, 17), data[22]);

    let wrong_key = Initiator {
        key: key ^ 1,
        ..peer
    };
    assert_eq!(
        card.network_read(wrong_key, address, 4).unwrap(),
        Err(Fault::KeyMismatch)
    );
    let stranger = Initiator {
        initiator: 8,
        ..peer
    };
    assert_eq!(
        card.network_write(stranger, address, &[1, 2]).unwrap(),
        Err(Fault::InitiatorNotAllowed)
    );
    assert_eq!(
        card.network_read(peer, 0x10_0000 + 2 * page - 2, 4)
            .unwrap(),
        Err(Fault::OutOfBounds)
    );
    // A refused write stored nothing.
    assert_eq!(
        card.network_read(peer, address, 2).unwrap(),
        Ok(data[..2].to_vec())
    );

    // A reset clears the tables and closes the lock; memory keeps its contents.
    device.reset().unwrap();
    assert_eq!(
        device.card().network_read(peer, address, 2).unwrap(),
        Err(Fault::ContextInvalid)
    );
    assert!(matches!(
        device.register_context(1, &settings(2)),
        Err(DriverError::Program { .. })
    ));
    device.unlock(KEY).unwrap();
    device.write_entries(0, &[Some(9), Some(3)]).unwrap();
    let key = device.register_context(1, &settings(2)).unwrap();
    let peer = Initiator { key, ..peer };
    assert_eq!(
        device
            .card()
            .network_read(peer, address, data.len())
            .unwrap(),
        Ok(data)
    );
}

#[test]
fn an_unknown_command_is_refused_and_the_link_goes_on() {
    let directory = tempfile::tempdir().unwrap();
    let mut board =
        SimulatedBoard::open(&directory.path().join("memory"), BoardOptions::default()).unwrap();
    let mut link = board.link().unwrap();
    link.write_all(b"Z").unwrap();
    let mut answer = [0u8; 2];
    std::io::Read::read_exact(&mut link, &mut answer).unwrap();
    assert_eq!(answer, *b"?Z");
    let card = BridgedCard::new("board", link).unwrap();
    assert_eq!(
        card.try_read_register(npmu_abi::registers::IDENTITY.offset)
            .unwrap(),
        npmu_abi::registers::identity::VALUE
    );
}

#[test]
fn a_command_abandoned_midway_is_dropped_after_the_idle_timeout() {
    let directory = tempfile::tempdir().unwrap();
    let mut board =
        SimulatedBoard::open(&directory.path().join("memory"), BoardOptions::default()).unwrap();
    let mut link = board.link().unwrap();
    // Half a register write, then silence longer than the bridge waits.
    link.write_all(&[b'W', 0x00, 0x00, 0x01]).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(50));
    let card = BridgedCard::new("board", link).unwrap();
    assert_eq!(
        card.try_read_register(npmu_abi::registers::IDENTITY.offset)
            .unwrap(),
        npmu_abi::registers::identity::VALUE
    );
}
