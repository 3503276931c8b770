//! Back-pressure on every ready/valid port: one clock in four, at random, and on one port
//! at a time, under traffic that crosses pages; the harness checks every answer against
//! the golden model and the monitor checks that no offer changes before it is taken.

mod common;

use common::unlocked_with;
use npmu_abi::program;
use npmu_abi::Config;
use npmu_sim::traffic::Traffic;
use npmu_sim::{HarnessOptions, Stall, Stalls};
use rstest::rstest;

fn run(config: &Config, stalls: Stalls, memory_latency: u64) {
    let seed = npmu_test_seed::seed("core back pressure", 3);
    let options = HarnessOptions {
        stalls: Stalls::NONE,
        memory_latency,
        seed,
        ..HarnessOptions::default()
    };
    let mut harness = unlocked_with(config, options);
    let mut traffic = Traffic::new(config, seed + 1);
    traffic.program(&mut harness);
    harness.set_stalls(stalls);
    for round in 0..6 {
        for _ in 0..150 {
            let (request, data) = traffic.request(harness.model(), true);
            harness.submit(request, data);
        }
        if round % 2 == 1 {
            traffic.reprogram(&mut harness);
        }
        harness.run_until_idle();
        assert_eq!(harness.take_completions().len(), 150);
    }
    harness.check_memory();
    program::lock(&mut harness);
}

fn on_one(port: &str, stall: Stall) -> Stalls {
    let mut stalls = Stalls::NONE;
    match port {
        "mmio_request" => stalls.mmio_request = stall,
        "mmio_response" => stalls.mmio_response = stall,
        "request" => stalls.request = stall,
        "write_data" => stalls.write_data = stall,
        "response" => stalls.response = stall,
        "memory_request" => stalls.memory_request = stall,
        "memory_response" => stalls.memory_response = stall,
        _ => unreachable!(),
    }
    stalls
}

#[rstest]
fn every_port_stalled_alone(
    #[values(
        "mmio_request",
        "mmio_response",
        "request",
        "write_data",
        "response",
        "memory_request",
        "memory_response"
    )]
    port: &str,
    #[values(Stall::OneInFour, Stall::Random(0.5))] stall: Stall,
) {
    run(&Config::SIM, on_one(port, stall), 2);
}

#[rstest]
#[case::one_in_four(Stall::OneInFour, 1)]
#[case::random(Stall::Random(0.3), 2)]
#[case::mostly_stalled(Stall::Random(0.8), 5)]
fn every_port_stalled_at_once(#[case] stall: Stall, #[case] memory_latency: u64) {
    run(&Config::SIM, Stalls::all(stall), memory_latency);
}

#[rstest]
#[case(Stall::OneInFour)]
#[case(Stall::Random(0.4))]
fn the_ice40_configuration_under_back_pressure(#[case] stall: Stall) {
    run(&Config::ICE40, Stalls::all(stall), 3);
}
