//! The RTL against the golden model, request by request, on random traffic with random
//! reprogramming and random stalls on every port.

use npmu_abi::program::{self, RegisterAccess};
use npmu_abi::registers as reg;
use npmu_abi::{encode_status, Config, Fault};
use npmu_sim::traffic::Traffic;
use npmu_sim::{CoreHarness, HarnessOptions, Stall, Stalls};
use npmu_test_seed::seed;
use rand::Rng;
use std::collections::BTreeMap;

/// Runs `requests` random requests; returns how many ended with each status.
fn run(config: &Config, requests: usize, seed: u64) -> BTreeMap<u8, usize> {
    let options = HarnessOptions {
        seed,
        stalls: Stalls::all(Stall::Random(0.15)),
        memory_latency: 3,
        ..HarnessOptions::default()
    };
    let key = options.management_key;
    let mut harness = CoreHarness::verilated(config, options).unwrap();
    program::unlock(&mut harness, key).unwrap();
    let mut traffic = Traffic::new(config, seed);
    traffic.program(&mut harness);
    let mut statuses = BTreeMap::new();
    let mut done = 0;
    let mut batches = 0;
    while done < requests {
        for _ in 0..40 {
            let (request, data) = traffic.request(harness.model(), true);
            harness.submit(request, data);
        }
        // Let part of the batch through, then reprogram while the rest flows.
        for _ in 0..traffic.random().gen_range(0..400) {
            harness.step();
        }
        if traffic.random().gen_bool(0.3) {
            traffic.reprogram(&mut harness);
        }
        harness.run_until_idle();
        for completion in harness.take_completions() {
            *statuses
                .entry(encode_status(completion.status))
                .or_default() += 1;
            done += 1;
        }
        batches += 1;
        if batches % 25 == 0 {
            // With nothing in flight every register is comparable: read them all.
            for register in reg::all() {
                harness.read(register.offset);
            }
            harness.write(reg::LAST_FAULT.offset, 0);
            harness.check_memory();
        }
    }
    harness.check_memory();
    eprintln!(
        "differential on {}: {done} requests, by status {statuses:?}, {} memory accesses checked by the monitor, {} clocks",
        config.name,
        harness.monitor().accesses(),
        harness.now()
    );
    statuses
}

#[test]
fn a_hundred_thousand_random_requests_match_the_golden_model() {
    let statuses = run(&Config::SIM, 100_000, seed("core differential on sim", 1));
    assert!(statuses.values().sum::<usize>() >= 100_000);
    for fault in Fault::ALL {
        assert!(
            statuses.contains_key(&fault.code()),
            "no request raised {fault}"
        );
    }
    assert!(
        statuses[&0] > 50_000,
        "most requests should pass: {statuses:?}"
    );
}

#[test]
fn the_ice40_configuration_matches_the_golden_model_too() {
    let statuses = run(
        &Config::ICE40,
        20_000,
        seed("core differential on ice40", 2),
    );
    assert!(
        statuses[&0] > 10_000,
        "most requests should pass: {statuses:?}"
    );
}
