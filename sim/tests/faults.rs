//! Every fault code through the request port, stale and fresh keys, and the fault record.

mod common;

use common::{context_over, pattern, request, unlocked, BASE};
use npmu_abi::program::{self, ContextSettings, RegisterAccess};
use npmu_abi::registers::{self as reg, last_fault};
use npmu_abi::{Fault, Operation};
use npmu_sim::HarnessOptions;
use rstest::rstest;

const PAGE: u64 = 4096;

/// How a test request breaks a rule: context 5 spans three pages at BASE, the second
/// unmapped; context 6 is invalid; context 7 is read-only over the same pages.
#[derive(Clone, Copy, Debug)]
enum Break {
    Length(u32),
    Context(u16),
    Key,
    Initiator,
    WriteReadOnly,
    Range(u64, u32),
}

#[rstest]
#[case::too_long(Break::Length((1 << 20) + 1), Fault::RequestTooLong)]
#[case::no_such_context(Break::Context(256), Fault::NoSuchContext)]
#[case::no_such_context_far(Break::Context(u16::MAX), Fault::NoSuchContext)]
#[case::context_invalid(Break::Context(6), Fault::ContextInvalid)]
#[case::key_mismatch(Break::Key, Fault::KeyMismatch)]
#[case::initiator(Break::Initiator, Fault::InitiatorNotAllowed)]
#[case::permission(Break::WriteReadOnly, Fault::PermissionDenied)]
#[case::below_the_base(Break::Range(BASE - 1, 8), Fault::OutOfBounds)]
#[case::past_the_end(Break::Range(BASE + 3 * PAGE - 7, 8), Fault::OutOfBounds)]
#[case::longer_than_the_context(Break::Range(BASE, 3 * PAGE as u32 + 1), Fault::OutOfBounds)]
#[case::at_two_to_the_64(Break::Range(u64::MAX, 1), Fault::OutOfBounds)]
#[case::wrapping_past_two_to_the_64(Break::Range(u64::MAX - 3, 64), Fault::OutOfBounds)]
#[case::hole(Break::Range(BASE + PAGE + 100, 8), Fault::PageNotMapped)]
#[case::hole_in_a_later_page(Break::Range(BASE + 8, 2 * PAGE as u32), Fault::PageNotMapped)]
fn each_rule_raises_its_own_fault_and_touches_nothing(#[case] broken: Break, #[case] fault: Fault) {
    let mut harness = unlocked(HarnessOptions::default());
    let key = context_over(&mut harness, &[11, 12, 13]);
    program::write_entries(&mut harness, 101, &[None]).unwrap();
    let read_only = ContextSettings {
        tag: 1,
        read: true,
        write: false,
        initiator: None,
        base: BASE,
        pages: 3,
        first_entry: 100,
    };
    let read_only_key = program::register_context(&mut harness, 7, &read_only).unwrap();
    harness.record_memory_requests(true);
    let operations: &[Operation] = match broken {
        Break::WriteReadOnly => &[Operation::Write],
        _ => &[Operation::Read, Operation::Write],
    };
    for &operation in operations {
        let mut request = request(operation, key, BASE, 8);
        match broken {
            Break::Length(length) => request.length = length,
            Break::Context(context) => request.context = context,
            Break::Key => request.key ^= 0x100,
            Break::Initiator => request.initiator = 4,
            Break::WriteReadOnly => {
                request.context = 7;
                request.key = read_only_key;
            }
            Break::Range(address, length) => {
                request.address = address;
                request.length = length;
            }
        }
        let data = match operation {
            Operation::Write => pattern(request.length, 9),
            Operation::Read => Vec::new(),
        };
        harness.submit(request, data);
        harness.run_until_idle();
        let completion = harness.take_completions().pop().unwrap();
        assert_eq!(completion.status, Err(fault), "{request:?}");
        let record = harness.read(reg::LAST_FAULT.offset);
        assert!(last_fault::VALID.is_set(record));
        assert_eq!(last_fault::CODE.get(record), u64::from(fault.code()));
        assert_eq!(last_fault::CONTEXT.get(record), u64::from(request.context));
        assert_eq!(
            last_fault::INITIATOR.get(record),
            u64::from(request.initiator)
        );
        assert_eq!(
            last_fault::WRITE.is_set(record),
            operation == Operation::Write
        );
        assert_eq!(
            harness.read(reg::LAST_FAULT_ADDRESS.offset),
            request.address
        );
        assert_eq!(
            harness.read(reg::LAST_FAULT_LENGTH.offset),
            u64::from(request.length)
        );
    }
    assert_eq!(
        harness.memory_requests(),
        &[],
        "a faulting request touches no memory"
    );
    assert_eq!(
        harness.read(reg::request_count_offset(fault.code())),
        operations.len() as u64
    );
    harness.write(reg::LAST_FAULT.offset, 0);
    assert_eq!(
        harness.read(reg::LAST_FAULT.offset),
        0,
        "any write clears the record"
    );
}

#[test]
fn re_registration_bumps_the_generation_and_stale_keys_fail() {
    let mut harness = unlocked(HarnessOptions::default());
    let first = context_over(&mut harness, &[20, 21]);
    assert_eq!(first & 0xff, 1);
    harness.submit(request(Operation::Write, first, BASE, 4), vec![1, 2, 3, 4]);
    let second = context_over(&mut harness, &[30, 31]);
    assert_eq!(second, first + 1);
    harness.submit(request(Operation::Read, first, BASE, 4), vec![]);
    harness.submit(request(Operation::Read, second, BASE, 4), vec![]);
    harness.run_until_idle();
    let completions = harness.take_completions();
    assert_eq!(completions[0].status, Ok(()));
    assert_eq!(
        completions[1].status,
        Err(Fault::KeyMismatch),
        "the old key is stale"
    );
    assert_eq!(
        completions[2].data,
        vec![0; 4],
        "the new registration maps other pages"
    );
    program::invalidate_context(&mut harness, 5).unwrap();
    let third = context_over(&mut harness, &[20, 21]);
    assert_eq!(
        third,
        second + 1,
        "invalidation does not reset the generation"
    );
    harness.submit(request(Operation::Read, third, BASE, 4), vec![]);
    harness.run_until_idle();
    assert_eq!(harness.take_completions()[0].data, vec![1, 2, 3, 4]);
}

#[test]
fn the_generation_wraps_after_256_registrations() {
    let mut harness = unlocked(HarnessOptions::default());
    let mut key = context_over(&mut harness, &[1]);
    for _ in 0..255 {
        key = context_over(&mut harness, &[1]);
    }
    assert_eq!(key & 0xff, 0, "generation 256 wraps to 0");
    assert_eq!(context_over(&mut harness, &[1]) & 0xff, 1);
}

#[test]
fn counters_count_every_request_by_status() {
    let mut harness = unlocked(HarnessOptions::default());
    let key = context_over(&mut harness, &[1, 2]);
    for _ in 0..5 {
        harness.submit(request(Operation::Read, key, BASE, 8), vec![]);
    }
    for _ in 0..3 {
        harness.submit(request(Operation::Read, key ^ 1, BASE, 8), vec![]);
    }
    harness.run_until_idle();
    assert_eq!(harness.read(reg::request_count_offset(0)), 5);
    assert_eq!(
        harness.read(reg::request_count_offset(Fault::KeyMismatch.code())),
        3
    );
    assert_eq!(
        harness.read(reg::request_count_offset(Fault::OutOfBounds.code())),
        0
    );
}
