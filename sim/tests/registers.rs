//! Every register of the BAR0 window, on the RTL, checked against the golden model by the
//! harness and against the register map here.

mod common;

use common::{context_over, unlocked};
use npmu_abi::program::{self, ContextSettings, ProgramError, RegisterAccess};
use npmu_abi::registers::{self as reg, command_status, context_access, status, Access, Group};
use npmu_abi::{Command, CommandError, Config};
use npmu_sim::{CoreHarness, HarnessOptions};
use rstest::rstest;

#[rstest]
#[case(Config::SIM)]
#[case(Config::ICE40)]
fn identity_and_capabilities_report_the_configuration(#[case] config: Config) {
    let mut harness = CoreHarness::verilated(&config, HarnessOptions::default()).unwrap();
    assert_eq!(harness.read(reg::IDENTITY.offset), reg::identity::VALUE);
    assert_eq!(
        harness.read(reg::CONTEXTS.offset),
        u64::from(config.contexts)
    );
    assert_eq!(
        harness.read(reg::TRANSLATION_ENTRIES.offset),
        u64::from(config.translation_entries)
    );
    assert_eq!(
        harness.read(reg::PAGE_SHIFT.offset),
        u64::from(config.page_shift)
    );
    assert_eq!(
        harness.read(reg::DATA_BYTES.offset),
        u64::from(config.data_bytes)
    );
    assert_eq!(
        harness.read(reg::MAX_REQUEST_BYTES.offset),
        u64::from(config.max_request_bytes)
    );
    assert_eq!(harness.read(reg::MEMORY_PAGES.offset), config.memory_pages);
    assert_eq!(harness.read(reg::QUEUES.offset), u64::from(config.queues));
    assert_eq!(
        harness.read(reg::MAX_PAYLOAD_BYTES.offset),
        u64::from(config.max_payload_bytes)
    );
    assert_eq!(
        harness.read(reg::MAX_READ_REQUEST_BYTES.offset),
        u64::from(config.max_read_request_bytes)
    );
    assert_eq!(
        harness.read(reg::DMA_READ_TAGS.offset),
        u64::from(config.dma_read_tags)
    );
}

#[test]
fn read_only_registers_ignore_writes() {
    let mut harness = unlocked(HarnessOptions::default());
    for register in reg::all()
        .into_iter()
        .filter(|r| r.access == Access::ReadOnly)
    {
        let before = harness.read(register.offset);
        harness.write(register.offset, 0x1234_5678_9abc_def0);
        assert_eq!(harness.read(register.offset), before, "{}", register.name);
    }
}

#[test]
fn write_only_registers_read_zero() {
    let mut harness = unlocked(HarnessOptions::default());
    for register in reg::all()
        .into_iter()
        .filter(|r| r.access == Access::WriteOnly)
    {
        assert_eq!(harness.read(register.offset), 0, "{}", register.name);
    }
}

#[test]
fn unmapped_and_unaligned_offsets_read_zero_and_ignore_writes() {
    let mut harness = unlocked(HarnessOptions::default());
    let mapped: Vec<u16> = reg::all().iter().map(|r| r.offset).collect();
    let probes = (0..0x400u16)
        .filter(|offset| !mapped.contains(offset))
        .chain([0x8000, 0xfff8, 0xffff]);
    for offset in probes {
        harness.write(offset, u64::MAX);
        assert_eq!(harness.read(offset), 0, "offset {offset:#x}");
    }
    // Nothing else moved: the staging registers still read zero.
    for register in reg::all().iter().filter(|r| r.access == Access::ReadWrite) {
        assert_eq!(harness.read(register.offset), 0, "{}", register.name);
    }
}

#[rstest]
#[case(reg::AVT_CONTEXT_ID, u32::MAX.into())]
#[case(reg::AVT_CONTEXT_KEY, u32::MAX.into())]
#[case(reg::AVT_CONTEXT_ACCESS, u64::MAX)]
#[case(reg::AVT_CONTEXT_BASE, u64::MAX)]
#[case(reg::AVT_CONTEXT_PAGES, u32::MAX.into())]
#[case(reg::AVT_CONTEXT_FIRST_ENTRY, u32::MAX.into())]
#[case(reg::AVT_ENTRY_INDEX, u32::MAX.into())]
#[case(reg::AVT_ENTRY_VALUE, u64::MAX)]
fn staging_registers_hold_their_width(#[case] register: reg::Register, #[case] kept: u64) {
    let mut harness = unlocked(HarnessOptions::default());
    harness.write(register.offset, u64::MAX);
    assert_eq!(harness.read(register.offset), kept);
    harness.write(register.offset, 0x0123_4567_89ab_cdef);
    assert_eq!(harness.read(register.offset), 0x0123_4567_89ab_cdef & kept);
}

#[test]
fn the_lock_refuses_programming_until_the_key_and_counts_attempts() {
    let options = HarnessOptions::default();
    let key = options.management_key;
    let mut harness = CoreHarness::verilated(&Config::SIM, options).unwrap();
    assert!(!status::UNLOCKED.is_set(harness.read(reg::STATUS.offset)));
    let programming: Vec<_> = reg::all()
        .into_iter()
        .filter(|r| r.group == Group::Programming)
        .collect();
    for register in &programming {
        harness.write(register.offset, 7);
        assert_eq!(
            harness.read(register.offset),
            0,
            "{} while locked",
            register.name
        );
    }
    assert_eq!(
        harness.read(reg::REFUSED_WRITES.offset),
        programming.len() as u64
    );
    for wrong in [0, key ^ 1, key.rotate_left(8)] {
        assert_eq!(
            program::unlock(&mut harness, wrong),
            Err(ProgramError::WrongKey)
        );
    }
    assert_eq!(harness.read(reg::FAILED_UNLOCKS.offset), 3);
    program::unlock(&mut harness, key).unwrap();
    harness.write(reg::AVT_CONTEXT_BASE.offset, 0x4000);
    assert_eq!(harness.read(reg::AVT_CONTEXT_BASE.offset), 0x4000);
    program::lock(&mut harness);
    assert_eq!(harness.read(reg::AVT_CONTEXT_BASE.offset), 0);
    program::unlock(&mut harness, key).unwrap();
    harness.reset();
    assert!(
        !status::UNLOCKED.is_set(harness.read(reg::STATUS.offset)),
        "reset locks again"
    );
    assert_eq!(harness.read(reg::FAILED_UNLOCKS.offset), 0);
}

#[test]
fn a_zero_management_key_never_unlocks() {
    let options = HarnessOptions {
        management_key: 0,
        ..HarnessOptions::default()
    };
    let mut harness = CoreHarness::verilated(&Config::SIM, options).unwrap();
    assert_eq!(
        program::unlock(&mut harness, 0),
        Err(ProgramError::WrongKey)
    );
}

fn settings(base: u64, pages: u32, first_entry: u32) -> ContextSettings {
    ContextSettings {
        tag: 0x123456,
        read: true,
        write: false,
        initiator: None,
        base,
        pages,
        first_entry,
    }
}

#[rstest]
#[case::no_such_context(256, settings(0, 1, 0), CommandError::NoSuchContext)]
#[case::empty(1, settings(0, 0, 0), CommandError::EmptyContext)]
#[case::unaligned(1, settings(0x10, 1, 0), CommandError::UnalignedBase)]
#[case::first_entry_past_the_table(1, settings(0, 1, 4096), CommandError::EntriesOutOfRange)]
#[case::entries_past_the_table(1, settings(0, 4, 4093), CommandError::EntriesOutOfRange)]
#[case::more_pages_than_entries(1, settings(0, 5000, 0), CommandError::EntriesOutOfRange)]
#[case::wraps_past_two_to_the_64(1, settings(u64::MAX - 4095, 2, 0), CommandError::RangeWraps)]
fn bad_registrations_are_refused_with_their_reason(
    #[case] id: u16,
    #[case] settings: ContextSettings,
    #[case] error: CommandError,
) {
    let mut harness = unlocked(HarnessOptions::default());
    assert_eq!(
        program::register_context(&mut harness, id, &settings),
        Err(ProgramError::Command(error))
    );
}

#[test]
fn reserved_bits_unknown_commands_and_bad_entries_are_refused() {
    let mut harness = unlocked(HarnessOptions::default());
    harness.write(reg::AVT_CONTEXT_ID.offset, 1);
    harness.write(reg::AVT_CONTEXT_PAGES.offset, 1);
    harness.write(reg::AVT_CONTEXT_ACCESS.offset, 1 << 40);
    assert_eq!(
        program::run_command(&mut harness, Command::RegisterContext),
        Err(ProgramError::Command(CommandError::ReservedBits))
    );
    harness.write(reg::AVT_COMMAND.offset, 99);
    while command_status::BUSY.is_set(harness.read(reg::AVT_COMMAND.offset)) {}
    assert_eq!(
        command_status::RESULT.get(harness.read(reg::AVT_COMMAND.offset)),
        u64::from(CommandError::UnknownCommand.code())
    );
    assert_eq!(
        program::write_entries(&mut harness, 4096, &[Some(1)]),
        Err(ProgramError::Command(CommandError::NoSuchEntry))
    );
    assert_eq!(
        program::write_entries(&mut harness, 0, &[Some(1 << 18)]),
        Err(ProgramError::Command(CommandError::PageOutOfRange))
    );
    harness.write(reg::AVT_ENTRY_INDEX.offset, 0);
    harness.write(reg::AVT_ENTRY_VALUE.offset, 1 << 40);
    assert_eq!(
        program::run_command(&mut harness, Command::WriteEntry),
        Err(ProgramError::Command(CommandError::ReservedBits))
    );
    assert_eq!(
        harness.read(reg::AVT_ENTRY_INDEX.offset),
        0,
        "a refused write does not advance"
    );
    assert_eq!(
        program::read_entry(&mut harness, 5000),
        Err(ProgramError::Command(CommandError::NoSuchEntry))
    );
    assert_eq!(
        program::read_context(&mut harness, 300),
        Err(ProgramError::Command(CommandError::NoSuchContext))
    );
}

#[test]
fn contexts_and_entries_read_back_as_programmed() {
    let mut harness = unlocked(HarnessOptions::default());
    let key = context_over(&mut harness, &[9, 4, 7]);
    let state = program::read_context(&mut harness, 5).unwrap();
    assert!(state.valid);
    assert_eq!(state.key, key);
    assert_eq!(state.settings.base, common::BASE);
    assert_eq!(state.settings.pages, 3);
    assert_eq!(state.settings.first_entry, 100);
    assert_eq!(state.settings.initiator, Some(3));
    let access = harness.read(reg::AVT_CONTEXT_ACCESS.offset);
    assert!(context_access::VALID.is_set(access));
    assert_eq!(program::read_entry(&mut harness, 101), Ok(Some(4)));
    assert_eq!(harness.read(reg::AVT_ENTRY_INDEX.offset), 101);
    program::write_entries(&mut harness, 200, &[Some(1), None, Some(2)]).unwrap();
    assert_eq!(
        harness.read(reg::AVT_ENTRY_INDEX.offset),
        203,
        "each write advances the index"
    );
    assert_eq!(program::read_entry(&mut harness, 201), Ok(None));
    program::invalidate_context(&mut harness, 5).unwrap();
    let state = program::read_context(&mut harness, 5).unwrap();
    assert!(!state.valid);
    assert_eq!(state.key, key, "invalidation keeps the generation");
}

#[test]
fn programming_writes_while_a_command_waits_are_dropped_and_flagged() {
    // The golden model runs commands at once and never sees them busy: compare by hand.
    let mut harness = unlocked(HarnessOptions {
        golden: false,
        ..HarnessOptions::default()
    });
    let key = context_over(&mut harness, &[1, 2, 3, 4]);
    // A long write keeps a request in flight, so the next command has to wait for it.
    let length = 4 * 4096;
    harness.submit(
        common::request(npmu_abi::Operation::Write, key, common::BASE, length),
        common::pattern(length, 1),
    );
    for _ in 0..20 {
        harness.step();
    }
    harness.write(reg::AVT_CONTEXT_ID.offset, 5);
    harness.write(
        reg::AVT_COMMAND.offset,
        Command::InvalidateContext.code().into(),
    );
    let status = harness.read(reg::AVT_COMMAND.offset);
    assert!(
        command_status::BUSY.is_set(status),
        "the command waits for the write"
    );
    harness.write(reg::AVT_CONTEXT_ID.offset, 9);
    assert!(command_status::OVERRUN.is_set(harness.read(reg::AVT_COMMAND.offset)));
    harness.run_until_idle();
    assert_eq!(
        harness.take_completions()[0].status,
        Ok(()),
        "the write before it finishes"
    );
    while command_status::BUSY.is_set(harness.read(reg::AVT_COMMAND.offset)) {}
    assert_eq!(
        harness.read(reg::AVT_CONTEXT_ID.offset),
        5,
        "the dropped write changed nothing"
    );
    assert!(!program::read_context(&mut harness, 5).unwrap().valid);
    assert!(!command_status::OVERRUN.is_set(harness.read(reg::AVT_COMMAND.offset)));
}
