//! Figures of the protection core: simulation speed under Verilator and RustHDL, AVT
//! lookups per clock and their latency.

use indicatif::{ProgressBar, ProgressStyle};
use npmu_abi::program::{self, ContextSettings};
use npmu_abi::{Config, Operation, Request};
use npmu_sim::ports::protection_core::{Inputs, Outputs};
use npmu_sim::traffic::Traffic;
use npmu_sim::RustHdlCore;
use npmu_sim::{Backend, CoreHarness, HarnessOptions, VerilatedCore};
use rand::Rng;
use serde_json::{json, Value};
use std::time::Instant;

/// `cycles` clocks of random traffic for the speed figures, `compare_cycles` under both
/// simulators.
pub fn figures(cycles: u64, compare_cycles: u64) -> Vec<Value> {
    let mut figures = Vec::new();
    for golden in [true, false] {
        let (cycles, seconds) = random_traffic(
            VerilatedCore::new(&Config::SIM).unwrap(),
            cycles,
            golden,
            true,
        );
        figures.push(
            json!({"name": "sim_cycles_per_second", "value": (cycles as f64 / seconds).round(),
            "unit": "cycles/s", "config": "sim", "backend": "verilator", "golden_model": golden,
            "monitor": true, "cycles": cycles}),
        );
    }
    let (per_cycle, latency) = lookups(&Config::SIM);
    figures.push(json!({"name": "avt_lookups_per_cycle", "value": per_cycle,
        "unit": "lookups/cycle", "config": "sim", "size": 8}));
    figures.push(json!({"name": "avt_lookup_latency_cycles", "value": latency,
        "unit": "cycles", "config": "sim", "from": "request accepted", "to": "first memory request"}));

    let (verilator_cycles, verilator_seconds) = random_traffic(
        VerilatedCore::new(&Config::ICE40).unwrap(),
        compare_cycles,
        true,
        false,
    );
    let (rust_hdl_cycles, rust_hdl_seconds) =
        random_traffic(RustHdlCore::new(), compare_cycles, true, true);
    assert_eq!(
        verilator_cycles, rust_hdl_cycles,
        "both ran the same stimulus"
    );
    let verilator_rate = verilator_cycles as f64 / verilator_seconds;
    let rust_hdl_rate = rust_hdl_cycles as f64 / rust_hdl_seconds;
    figures.push(
        json!({"name": "sim_cycles_per_second", "value": verilator_rate.round(),
        "unit": "cycles/s", "config": "ice40", "backend": "verilator", "golden_model": true,
        "monitor": true, "cycles": verilator_cycles}),
    );
    figures.push(
        json!({"name": "sim_cycles_per_second", "value": rust_hdl_rate.round(),
        "unit": "cycles/s", "config": "ice40", "backend": "rust-hdl", "golden_model": true,
        "monitor": true, "cycles": rust_hdl_cycles}),
    );
    figures.push(json!({"name": "rusthdl_speed_ratio", "value": (verilator_rate / rust_hdl_rate * 10.0).round() / 10.0,
        "unit": "x", "config": "ice40", "meaning": "Verilator cycles/s over RustHDL cycles/s, same stimulus"}));

    figures
}

/// Runs random traffic with random reprogramming for at least `cycles` clocks; returns the
/// clocks run and the seconds they took.
fn random_traffic<B: Backend<Inputs = Inputs, Outputs = Outputs>>(
    backend: B,
    cycles: u64,
    golden: bool,
    progress: bool,
) -> (u64, f64) {
    let config = *backend.config();
    let options = HarnessOptions {
        golden,
        seed: 5,
        ..HarnessOptions::default()
    };
    let key = options.management_key;
    let mut harness = CoreHarness::new(backend, options);
    program::unlock(&mut harness, key).unwrap();
    let mut traffic = Traffic::new(&config, 9);
    traffic.program(&mut harness);
    let bar = if progress {
        ProgressBar::new(cycles)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} clocks").unwrap());
    bar.set_message(format!(
        "{} traffic on {}",
        if golden { "checked" } else { "unchecked" },
        config.name
    ));
    let start_clock = harness.now();
    let started = Instant::now();
    while harness.now() - start_clock < cycles {
        for _ in 0..64 {
            let (request, data) = traffic.request(harness.model(), true);
            harness.submit(request, data);
        }
        while harness.busy() && harness.now() - start_clock < cycles {
            harness.step();
        }
        if traffic.random().gen_bool(0.2) {
            traffic.reprogram(&mut harness);
        }
        harness.take_completions();
        bar.set_position(harness.now() - start_clock);
    }
    let seconds = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    (harness.now() - start_clock, seconds)
}

/// Back-to-back one-beat reads: lookups per clock, and the clocks from a request's
/// acceptance to its first memory request on an idle NI.
fn lookups(config: &Config) -> (f64, u64) {
    let options = HarnessOptions {
        memory_latency: 1,
        ..HarnessOptions::default()
    };
    let management_key = options.management_key;
    let mut harness = CoreHarness::verilated(config, options).unwrap();
    program::unlock(&mut harness, management_key).unwrap();
    program::write_entries(&mut harness, 0, &[Some(3)]).unwrap();
    let settings = ContextSettings {
        tag: 1,
        read: true,
        write: true,
        initiator: None,
        base: 0x1000_0000,
        pages: 1,
        first_entry: 0,
    };
    let key = program::register_context(&mut harness, 0, &settings).unwrap();
    let request = |index: u64| Request {
        operation: Operation::Read,
        context: 0,
        key,
        initiator: 0,
        address: 0x1000_0000 + (index % 512) * 8,
        length: 8,
    };

    harness.submit(request(0), vec![]);
    harness.record_memory_requests(true);
    harness.run_until_idle();
    let accepted = harness.take_completions()[0].accepted;
    let latency = harness.memory_requests()[0].clock - accepted;

    let count = 10_000;
    for index in 0..count {
        harness.submit(request(index), vec![]);
    }
    harness.run_until_idle();
    let completions = harness.take_completions();
    let span = completions.last().unwrap().accepted - completions[0].accepted + 1;
    (count as f64 / span as f64, latency)
}
