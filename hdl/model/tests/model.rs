//! The golden model's behaviour, stated as the hardware must show it.

use npmu_abi::program::{self, ContextSettings, ProgramError};
use npmu_abi::registers as reg;
use npmu_abi::{CommandError, Config, Fault, Operation, Request};
use npmu_model::{Memory, NetworkInterface, Segment, SparseMemory};
use rstest::rstest;

const KEY: u64 = 0x1234_5678_9abc_def0;
const PAGE: u64 = 4096;

fn unlocked() -> NetworkInterface {
    let mut ni = NetworkInterface::new(Config::SIM, KEY, SparseMemory::new()).unwrap();
    program::unlock(&mut ni, KEY).unwrap();
    ni
}

fn settings(base: u64, pages: u32, first_entry: u32) -> ContextSettings {
    ContextSettings {
        tag: 0xabcdef,
        read: true,
        write: true,
        initiator: Some(3),
        base,
        pages,
        first_entry,
    }
}

fn request(operation: Operation, context: u16, key: u32, address: u64, length: u32) -> Request {
    Request {
        operation,
        context,
        key,
        initiator: 3,
        address,
        length,
    }
}

/// Context 5: three pages at 0x10000 mapped by entries 10..13 onto pages 7, 2, 9.
fn scattered() -> (NetworkInterface, u32) {
    let mut ni = unlocked();
    program::write_entries(&mut ni, 10, &[Some(7), Some(2), Some(9)]).unwrap();
    let key = program::register_context(&mut ni, 5, &settings(0x10000, 3, 10)).unwrap();
    (ni, key)
}

#[test]
fn a_contiguous_virtual_range_lands_on_scattered_pages() {
    let (mut ni, key) = scattered();
    let data: Vec<u8> = (0..2 * PAGE as u32 + 5).map(|i| i as u8).collect();
    let write = request(
        Operation::Write,
        5,
        key,
        0x10000 + PAGE - 5,
        data.len() as u32,
    );
    assert_eq!(
        ni.translate(&write).unwrap(),
        vec![
            Segment {
                address: 7 * PAGE + PAGE - 5,
                length: 5
            },
            Segment {
                address: 2 * PAGE,
                length: PAGE as u32
            },
            Segment {
                address: 9 * PAGE,
                length: PAGE as u32
            },
        ]
    );
    ni.execute(&write, &data).unwrap();
    let mut page_two = vec![0; PAGE as usize];
    ni.memory().read(2 * PAGE, &mut page_two);
    assert_eq!(page_two, data[5..5 + PAGE as usize]);
    let read = Request {
        operation: Operation::Read,
        ..write
    };
    assert_eq!(ni.execute(&read, &[]).unwrap(), data);
}

#[test]
fn keys_carry_a_generation_that_every_registration_bumps() {
    let (mut ni, first_key) = scattered();
    assert_eq!(first_key, 0xabcdef01);
    let second_key = program::register_context(&mut ni, 5, &settings(0x10000, 3, 10)).unwrap();
    assert_eq!(second_key, 0xabcdef02);
    let stale = request(Operation::Read, 5, first_key, 0x10000, 1);
    assert_eq!(ni.execute(&stale, &[]), Err(Fault::KeyMismatch));
    let fresh = request(Operation::Read, 5, second_key, 0x10000, 1);
    assert!(ni.execute(&fresh, &[]).is_ok());
    program::invalidate_context(&mut ni, 5).unwrap();
    assert_eq!(ni.execute(&fresh, &[]), Err(Fault::ContextInvalid));
    let third_key = program::register_context(&mut ni, 5, &settings(0x10000, 3, 10)).unwrap();
    assert_eq!(third_key, 0xabcdef03);
}

#[rstest]
#[case::too_long(request(Operation::Read, 5, 0, 0x10000, (1 << 20) + 1), Fault::RequestTooLong)]
#[case::no_such_context(request(Operation::Read, 256, 0, 0x10000, 1), Fault::NoSuchContext)]
#[case::invalid(request(Operation::Read, 6, 0, 0x10000, 1), Fault::ContextInvalid)]
#[case::key(
    request(Operation::Read, 5, 0xabcdef02, 0x10000, 1),
    Fault::KeyMismatch
)]
#[case::below_base(request(Operation::Read, 5, 0xabcdef01, 0xffff, 1), Fault::OutOfBounds)]
#[case::past_end(request(Operation::Read, 5, 0xabcdef01, 0x10000 + 3 * PAGE - 1, 2), Fault::OutOfBounds)]
#[case::longer_than_context(request(Operation::Read, 5, 0xabcdef01, 0x10000, 3 * PAGE as u32 + 1), Fault::OutOfBounds)]
#[case::near_two_to_the_64(
    request(Operation::Read, 5, 0xabcdef01, u64::MAX, 1),
    Fault::OutOfBounds
)]
#[case::wrapping_range(request(Operation::Read, 5, 0xabcdef01, u64::MAX - 2, 16), Fault::OutOfBounds)]
fn each_check_reports_its_own_fault(#[case] request: Request, #[case] fault: Fault) {
    let (mut ni, _) = scattered();
    assert_eq!(ni.execute(&request, &[]), Err(fault));
    let record = ni.mmio_read(reg::LAST_FAULT.offset);
    assert!(reg::last_fault::VALID.is_set(record));
    assert_eq!(reg::last_fault::CODE.get(record), u64::from(fault.code()));
    assert_eq!(
        ni.mmio_read(reg::LAST_FAULT_ADDRESS.offset),
        request.address
    );
    assert_eq!(ni.mmio_read(reg::request_count_offset(fault.code())), 1);
}

#[test]
fn initiator_permission_and_mapping_faults() {
    let (mut ni, key) = scattered();
    let mut stranger = request(Operation::Read, 5, key, 0x10000, 1);
    stranger.initiator = 4;
    assert_eq!(ni.execute(&stranger, &[]), Err(Fault::InitiatorNotAllowed));

    let read_only = ContextSettings {
        write: false,
        initiator: None,
        ..settings(0, 3, 10)
    };
    let key = program::register_context(&mut ni, 6, &read_only).unwrap();
    let write = request(Operation::Write, 6, key, 0, 1);
    assert_eq!(ni.execute(&write, &[1]), Err(Fault::PermissionDenied));

    program::write_entries(&mut ni, 11, &[None]).unwrap();
    let across = request(Operation::Write, 5, 0xabcdef01, 0x10000 + PAGE - 1, 2);
    assert_eq!(ni.execute(&across, &[1, 2]), Err(Fault::PageNotMapped));
    let mut first_page = [0u8; 1];
    ni.memory().read(7 * PAGE + PAGE - 1, &mut first_page);
    assert_eq!(
        first_page,
        [0],
        "a faulting request writes nothing, not even its good pages"
    );
}

#[test]
fn two_contexts_may_share_one_physical_page() {
    let (mut ni, key) = scattered();
    program::write_entries(&mut ni, 100, &[Some(2)]).unwrap();
    let other = ContextSettings {
        initiator: None,
        ..settings(0x4000_0000, 1, 100)
    };
    let other_key = program::register_context(&mut ni, 9, &other).unwrap();
    ni.execute(
        &request(Operation::Write, 5, key, 0x10000 + PAGE + 8, 3),
        &[1, 2, 3],
    )
    .unwrap();
    let seen = ni
        .execute(&request(Operation::Read, 9, other_key, 0x4000_0008, 3), &[])
        .unwrap();
    assert_eq!(seen, vec![1, 2, 3]);
}

#[test]
fn zero_length_requests_check_but_touch_nothing() {
    let (mut ni, key) = scattered();
    assert_eq!(
        ni.execute(
            &request(Operation::Read, 5, key, 0x10000 + 3 * PAGE, 0),
            &[]
        ),
        Ok(vec![])
    );
    assert_eq!(
        ni.execute(
            &request(Operation::Read, 5, key, 0x10000 + 3 * PAGE + 1, 0),
            &[]
        ),
        Err(Fault::OutOfBounds)
    );
}

#[test]
fn the_lock_guards_programming_and_counts_wrong_keys() {
    let mut ni = NetworkInterface::new(Config::SIM, KEY, SparseMemory::new()).unwrap();
    assert_eq!(
        program::unlock(&mut ni, KEY + 1),
        Err(ProgramError::WrongKey)
    );
    assert_eq!(ni.mmio_read(reg::FAILED_UNLOCKS.offset), 1);
    assert_eq!(
        program::register_context(&mut ni, 1, &settings(0, 1, 0)),
        Err(ProgramError::Locked)
    );
    assert_eq!(ni.mmio_read(reg::REFUSED_WRITES.offset), 7);
    program::unlock(&mut ni, KEY).unwrap();
    ni.mmio_write(reg::AVT_CONTEXT_BASE.offset, 0x5000);
    assert_eq!(ni.mmio_read(reg::AVT_CONTEXT_BASE.offset), 0x5000);
    program::lock(&mut ni);
    assert_eq!(
        ni.mmio_read(reg::AVT_CONTEXT_BASE.offset),
        0,
        "keys and tables read as 0 when locked"
    );
    ni.reset();
    assert!(!ni.is_unlocked());
}

#[test]
fn a_zero_management_key_never_unlocks() {
    let mut ni = NetworkInterface::new(Config::SIM, 0, SparseMemory::new()).unwrap();
    assert_eq!(program::unlock(&mut ni, 0), Err(ProgramError::WrongKey));
}

#[rstest]
#[case::no_such_context(256, settings(0, 1, 0), CommandError::NoSuchContext)]
#[case::empty(1, settings(0, 0, 0), CommandError::EmptyContext)]
#[case::unaligned(1, settings(0x800, 1, 0), CommandError::UnalignedBase)]
#[case::entries_past_table(1, settings(0, 2, 4095), CommandError::EntriesOutOfRange)]
#[case::first_entry_past_table(1, settings(0, 1, 4096), CommandError::EntriesOutOfRange)]
#[case::wraps(1, settings(u64::MAX - PAGE + 1, 2, 0), CommandError::RangeWraps)]
fn bad_contexts_are_refused_and_change_nothing(
    #[case] id: u16,
    #[case] settings: ContextSettings,
    #[case] error: CommandError,
) {
    let mut ni = unlocked();
    assert_eq!(
        program::register_context(&mut ni, id, &settings),
        Err(ProgramError::Command(error))
    );
    assert!(ni.context(1).is_none_or(|context| !context.valid));
}

#[test]
fn a_context_may_end_exactly_at_two_to_the_64() {
    let mut ni = unlocked();
    program::write_entries(&mut ni, 0, &[Some(1), Some(2)]).unwrap();
    let key =
        program::register_context(&mut ni, 1, &settings(u64::MAX - 2 * PAGE + 1, 2, 0)).unwrap();
    let last_byte = request(Operation::Write, 1, key, u64::MAX, 1);
    ni.execute(&last_byte, &[0xee]).unwrap();
    let mut byte = [0];
    ni.memory().read(2 * PAGE + PAGE - 1, &mut byte);
    assert_eq!(byte, [0xee]);
}

#[test]
fn bad_entries_and_unknown_commands_are_refused() {
    let mut ni = unlocked();
    assert_eq!(
        program::write_entries(&mut ni, 0, &[Some(1 << 18)]),
        Err(ProgramError::Command(CommandError::PageOutOfRange))
    );
    assert_eq!(
        program::write_entries(&mut ni, 4096, &[Some(1)]),
        Err(ProgramError::Command(CommandError::NoSuchEntry))
    );
    ni.mmio_write(reg::AVT_ENTRY_INDEX.offset, 0);
    ni.mmio_write(reg::AVT_ENTRY_VALUE.offset, 1 << 40);
    ni.mmio_write(
        reg::AVT_COMMAND.offset,
        npmu_abi::Command::WriteEntry.code().into(),
    );
    assert_eq!(
        ni.mmio_read(reg::AVT_COMMAND.offset),
        CommandError::ReservedBits.code().into()
    );
    ni.mmio_write(reg::AVT_COMMAND.offset, 77);
    assert_eq!(
        ni.mmio_read(reg::AVT_COMMAND.offset),
        CommandError::UnknownCommand.code().into()
    );
}

#[test]
fn entry_writes_advance_the_index_and_read_back() {
    let mut ni = unlocked();
    program::write_entries(&mut ni, 40, &[Some(5), None, Some(6)]).unwrap();
    assert_eq!(ni.mmio_read(reg::AVT_ENTRY_INDEX.offset), 43);
    assert_eq!(program::read_entry(&mut ni, 40), Ok(Some(5)));
    assert_eq!(program::read_entry(&mut ni, 41), Ok(None));
    assert_eq!(program::read_entry(&mut ni, 42), Ok(Some(6)));
}

#[test]
fn contexts_read_back_as_registered() {
    let (mut ni, key) = scattered();
    let state = program::read_context(&mut ni, 5).unwrap();
    assert!(state.valid);
    assert_eq!(state.key, key);
    assert_eq!(state.settings, settings(0x10000, 3, 10));
}

#[test]
fn unmapped_and_unaligned_offsets_read_zero_and_ignore_writes() {
    let mut ni = unlocked();
    for offset in [0x001, 0x060, 0x0ff, 0x248, 0x398, 0x1060, 0x2000, 0xfff8] {
        ni.mmio_write(offset, u64::MAX);
        assert_eq!(ni.mmio_read(offset), 0, "offset {offset:#x}");
    }
    assert_eq!(ni.mmio_read(reg::MANAGEMENT_UNLOCK.offset), 0);
    assert_eq!(ni.mmio_read(reg::IDENTITY.offset), reg::identity::VALUE);
}

#[test]
fn reset_clears_tables_and_counters_but_keeps_memory() {
    let (mut ni, key) = scattered();
    ni.execute(&request(Operation::Write, 5, key, 0x10000, 2), &[9, 9])
        .unwrap();
    ni.reset();
    program::unlock(&mut ni, KEY).unwrap();
    assert_eq!(
        ni.execute(&request(Operation::Read, 5, key, 0x10000, 2), &[]),
        Err(Fault::ContextInvalid)
    );
    assert_eq!(program::read_entry(&mut ni, 10), Ok(None));
    let mut bytes = [0; 2];
    ni.memory().read(7 * PAGE, &mut bytes);
    assert_eq!(bytes, [9, 9]);
    assert_eq!(ni.mmio_read(reg::request_count_offset(0)), 0);
}
