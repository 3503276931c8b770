//! When programming takes effect: commands wait out requests in flight and hold new ones;
//! reset clears the tables, closes the lock and keeps persistent memory.

mod common;

use common::{context_over, pattern, request, unlocked, BASE};
use npmu_abi::program::{self, RegisterAccess};
use npmu_abi::registers::{self as reg, status};
use npmu_abi::{Fault, Operation};
use npmu_model::Memory;
use npmu_sim::HarnessOptions;

const PAGE: u64 = 4096;

#[test]
fn a_command_waits_for_requests_in_flight_and_holds_new_ones() {
    let mut harness = unlocked(HarnessOptions::default());
    let key = context_over(&mut harness, &[10, 11, 12, 13, 14, 15, 16, 17]);
    let long = 8 * PAGE as u32;
    harness.submit(request(Operation::Write, key, BASE, long), pattern(long, 5));
    for _ in 0..50 {
        harness.step();
    }
    let command_issued = harness.now();
    program::invalidate_context(&mut harness, 5).unwrap();
    let command_done = harness.now();
    harness.submit(request(Operation::Read, key, BASE, 8), vec![]);
    harness.run_until_idle();
    let completions = harness.take_completions();
    assert_eq!(
        completions[0].status,
        Ok(()),
        "the write ahead of the command completes"
    );
    assert!(
        completions[0].finished > command_issued,
        "the write was still in flight when the command was issued"
    );
    assert!(
        completions[0].finished <= command_done,
        "the command waited for it"
    );
    assert_eq!(completions[1].status, Err(Fault::ContextInvalid));
    harness.check_memory();
}

#[test]
fn requests_queued_during_a_command_see_its_effect() {
    let mut harness = unlocked(HarnessOptions::default());
    let key = context_over(&mut harness, &[10, 11]);
    let long = 2 * PAGE as u32;
    harness.submit(request(Operation::Write, key, BASE, long), pattern(long, 1));
    for _ in 0..20 {
        harness.step();
    }
    // Queue a read behind the write while re-registering: it may only pass with the new key.
    harness.submit(request(Operation::Read, key, BASE, 8), vec![]);
    let new_key = context_over(&mut harness, &[10, 11]);
    harness.submit(request(Operation::Read, new_key, BASE, 8), vec![]);
    harness.run_until_idle();
    let completions = harness.take_completions();
    assert_eq!(completions[0].status, Ok(()));
    // Whichever side of the command the old-key read landed on, the golden model agreed;
    // the new key always works after it.
    assert_eq!(completions[2].status, Ok(()));
    assert_eq!(completions[2].data, pattern(long, 1)[..8]);
}

#[test]
fn reset_clears_tables_and_lock_but_keeps_persistent_memory() {
    let mut harness = unlocked(HarnessOptions::default());
    let key = context_over(&mut harness, &[21, 22]);
    harness.submit(request(Operation::Write, key, BASE + 5, 3), vec![7, 8, 9]);
    harness.run_until_idle();
    assert_eq!(harness.take_completions()[0].status, Ok(()));
    // Reset in the middle of further traffic.
    harness.submit(
        request(Operation::Write, key, BASE + PAGE, PAGE as u32),
        pattern(PAGE as u32, 2),
    );
    for _ in 0..100 {
        harness.step();
    }
    harness.reset();
    assert!(!status::UNLOCKED.is_set(harness.read(reg::STATUS.offset)));
    program::unlock(&mut harness, HarnessOptions::default().management_key).unwrap();
    assert_eq!(
        program::read_entry(&mut harness, 100),
        Ok(None),
        "entries cleared"
    );
    assert!(
        !program::read_context(&mut harness, 5).unwrap().valid,
        "contexts cleared"
    );
    harness.submit(request(Operation::Read, key, BASE + 5, 3), vec![]);
    harness.run_until_idle();
    assert_eq!(
        harness.take_completions()[0].status,
        Err(Fault::ContextInvalid)
    );
    let mut kept = [0u8; 3];
    harness.memory().read(21 * PAGE + 5, &mut kept);
    assert_eq!(kept, [7, 8, 9], "persistent memory survives the reset");
    let key = context_over(&mut harness, &[21, 22]);
    assert_eq!(key & 0xff, 1, "generations restart after reset");
}

#[test]
fn requests_wait_while_the_tables_are_cleared_after_reset() {
    let mut harness = unlocked(HarnessOptions::default());
    harness.pulse_reset();
    let started = harness.now();
    assert!(status::INITIALIZING.is_set(harness.read(reg::STATUS.offset)));
    harness.submit(request(Operation::Read, 0, BASE, 8), vec![]);
    harness.run_until_idle();
    let completion = harness.take_completions().pop().unwrap();
    assert_eq!(completion.status, Err(Fault::ContextInvalid));
    assert!(
        completion.accepted >= started + 4096,
        "accepted at clock {} before the 4096 entries were cleared",
        completion.accepted - started
    );
    assert!(!status::INITIALIZING.is_set(harness.read(reg::STATUS.offset)));
}

#[test]
fn the_lock_does_not_stop_traffic() {
    let mut harness = unlocked(HarnessOptions::default());
    let key = context_over(&mut harness, &[3]);
    program::lock(&mut harness);
    harness.submit(request(Operation::Write, key, BASE, 4), vec![1, 2, 3, 4]);
    harness.submit(request(Operation::Read, key, BASE, 4), vec![]);
    harness.run_until_idle();
    assert_eq!(harness.take_completions()[1].data, vec![1, 2, 3, 4]);
}
