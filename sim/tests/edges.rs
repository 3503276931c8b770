//! Page edges, odd lengths, the ends of a context and of the address space.

mod common;

use common::{context_over, pattern, request, unlocked, BASE};
use npmu_abi::program::{self, ContextSettings};
use npmu_abi::{Config, Fault, Operation};
use npmu_model::Memory;
use npmu_sim::HarnessOptions;
use rstest::rstest;

const PAGE: u64 = 4096;
const P: u32 = PAGE as u32;

/// Seven pages scattered in physical memory, written then read back at `offset` for
/// `length` bytes; the harness compares data and memory with the golden model.
#[rstest]
fn page_edges_and_odd_lengths_round_trip(
    #[values(0, 1, 2, 3, PAGE - 4, PAGE - 3, PAGE - 2, PAGE - 1)] offset: u64,
    #[values(1, 2, 7, 9, P - 1, P, P + 1, 3 * P + 5)] length: u32,
) {
    let mut harness = unlocked(HarnessOptions::default());
    let key = context_over(&mut harness, &[40, 7, 33, 2, 18, 61, 5]);
    let address = BASE + PAGE + offset;
    let data = pattern(length, offset as u8);
    harness.submit(
        request(Operation::Write, key, address, length),
        data.clone(),
    );
    harness.submit(request(Operation::Read, key, address, length), vec![]);
    harness.submit(
        request(Operation::Read, key, address - 1, length + 2),
        vec![],
    );
    harness.run_until_idle();
    let completions = harness.take_completions();
    assert_eq!(completions[0].status, Ok(()));
    assert_eq!(completions[1].data, data);
    let around = &completions[2].data;
    assert_eq!(
        (around[0], around[around.len() - 1]),
        (0, 0),
        "neighbours untouched"
    );
    harness.check_memory();
}

#[test]
fn the_last_byte_of_a_context_is_in_and_the_next_is_out() {
    let mut harness = unlocked(HarnessOptions::default());
    let key = context_over(&mut harness, &[3, 4]);
    let end = BASE + 2 * PAGE;
    for (address, length, expected) in [
        (end - 1, 1, Ok(())),
        (end - 8, 8, Ok(())),
        (end - 2 * PAGE, 2 * P, Ok(())),
        (end, 0, Ok(())),
        (end, 1, Err(Fault::OutOfBounds)),
        (end - 1, 2, Err(Fault::OutOfBounds)),
        (end + 1, 0, Err(Fault::OutOfBounds)),
        (BASE - 1, 0, Err(Fault::OutOfBounds)),
    ] {
        harness.submit(request(Operation::Read, key, address, length), vec![]);
        harness.run_until_idle();
        let completion = harness.take_completions().pop().unwrap();
        assert_eq!(completion.status, expected, "{address:#x} + {length}");
    }
}

#[test]
fn a_context_ending_at_two_to_the_64_serves_its_last_byte() {
    let mut harness = unlocked(HarnessOptions::default());
    program::write_entries(&mut harness, 0, &[Some(8), Some(9)]).unwrap();
    let settings = ContextSettings {
        tag: 2,
        read: true,
        write: true,
        initiator: None,
        base: u64::MAX - 2 * PAGE + 1,
        pages: 2,
        first_entry: 0,
    };
    let key = program::register_context(&mut harness, 1, &settings).unwrap();
    let mut last = request(Operation::Write, key, u64::MAX, 1);
    last.context = 1;
    harness.submit(last, vec![0xee]);
    let mut across = request(Operation::Write, key, u64::MAX - 9, 10);
    across.context = 1;
    harness.submit(across, pattern(10, 1));
    let mut over = request(Operation::Write, key, u64::MAX - 9, 11);
    over.context = 1;
    harness.submit(over, pattern(11, 2));
    harness.run_until_idle();
    let statuses: Vec<_> = harness
        .take_completions()
        .iter()
        .map(|c| c.status)
        .collect();
    assert_eq!(statuses, vec![Ok(()), Ok(()), Err(Fault::OutOfBounds)]);
    let mut byte = [0];
    harness.memory().read(9 * PAGE + PAGE - 1, &mut byte);
    assert_eq!(byte, [pattern(10, 1)[9]]);
    harness.check_memory();
}

#[test]
fn two_contexts_share_one_physical_page() {
    let mut harness = unlocked(HarnessOptions::default());
    let key = context_over(&mut harness, &[77, 78]);
    program::write_entries(&mut harness, 300, &[Some(78)]).unwrap();
    let other = ContextSettings {
        tag: 9,
        read: true,
        write: false,
        initiator: None,
        base: 0x1000,
        pages: 1,
        first_entry: 300,
    };
    let other_key = program::register_context(&mut harness, 9, &other).unwrap();
    harness.submit(
        request(Operation::Write, key, BASE + PAGE + 100, 5),
        vec![1, 2, 3, 4, 5],
    );
    let mut read = request(Operation::Read, other_key, 0x1000 + 100, 5);
    read.context = 9;
    harness.submit(read, vec![]);
    harness.run_until_idle();
    assert_eq!(harness.take_completions()[1].data, vec![1, 2, 3, 4, 5]);
}

#[test]
fn zero_length_requests_are_checked_and_touch_nothing() {
    let mut harness = unlocked(HarnessOptions::default());
    let key = context_over(&mut harness, &[1]);
    harness.record_memory_requests(true);
    for operation in [Operation::Read, Operation::Write] {
        harness.submit(request(operation, key, BASE + 10, 0), vec![]);
        harness.submit(request(operation, key ^ 1, BASE + 10, 0), vec![]);
    }
    harness.run_until_idle();
    let statuses: Vec<_> = harness
        .take_completions()
        .iter()
        .map(|c| c.status)
        .collect();
    assert_eq!(
        statuses,
        vec![
            Ok(()),
            Err(Fault::KeyMismatch),
            Ok(()),
            Err(Fault::KeyMismatch)
        ]
    );
    assert!(harness.memory_requests().is_empty());
}

#[test]
fn the_longest_request_passes_and_one_byte_more_is_refused() {
    let mut harness = unlocked(HarnessOptions::default());
    let pages: Vec<u32> = (0..257).map(|page| 1000 + 3 * page).collect();
    let key = context_over(&mut harness, &pages);
    let longest = Config::SIM.max_request_bytes;
    // From mid-page, the longest request spans 257 pages: 256 wait in the page queue.
    let address = BASE + 100;
    harness.submit(
        request(Operation::Write, key, address, longest),
        pattern(longest, 3),
    );
    harness.submit(request(Operation::Read, key, address, longest), vec![]);
    harness.submit(
        request(Operation::Write, key, address, longest + 1),
        pattern(longest + 1, 4),
    );
    harness.submit(request(Operation::Read, key, address, 16), vec![]);
    harness.run_until_idle();
    let completions = harness.take_completions();
    assert_eq!(completions[0].status, Ok(()));
    assert_eq!(completions[1].data, pattern(longest, 3));
    assert_eq!(completions[2].status, Err(Fault::RequestTooLong));
    assert_eq!(
        completions[3].data,
        pattern(16, 3),
        "the refused write's data was dropped"
    );
    harness.check_memory();
}
