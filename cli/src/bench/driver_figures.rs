//! Figures of the driver against the simulated card:
//!
//! - `driver_op_wall_ns`: submit to completion seen, wall clock, median and 99th percentile;
//! - `driver_op_sim_cycles`: the same operation in the card's clocks, doorbell taken to
//!   interrupt sent (median), and the nanoseconds they are at the configuration's clock;
//! - `card_cycles_per_second`: how fast the simulated card ran meanwhile.

use clap::Parser;
use npmu_abi::Config;
use npmu_driver::{
    ContextSettings, DmaBuffer, DmaDirection, DriverOptions, NpmuDevice, Operation, Transfer,
};
use npmu_sim::{CardOptions, SimulatedCard, SimulatedIommu};
use serde_json::json;
use std::time::Instant;

#[derive(Parser)]
pub struct Arguments {
    /// Operations timed per kind and size.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    iterations: u32,
    /// Transfer sizes in bytes.
    #[arg(long, value_delimiter = ',', default_values_t = [64u64, 4096, 65536])]
    sizes: Vec<u64>,
    /// Clocks from a DMA request to its completion (the PCIe round trip).
    #[arg(long, default_value_t = 100)]
    host_latency: u64,
    /// Poll for completions instead of waiting on interrupts (no sim cycles then).
    #[arg(long)]
    polling: bool,
}

const KEY: u64 = 0x6e70_6d75_6b65_7921;
const BASE: u64 = 0x1_0000_0000;
const QUEUE: u16 = 0;

pub fn figures(
    arguments: &Arguments,
) -> Result<Vec<serde_json::Value>, Box<dyn std::error::Error>> {
    let config = Config::SIM;
    let largest = arguments.sizes.iter().copied().max().unwrap_or(0);
    if largest == 0 || largest > u64::from(config.max_request_bytes) {
        return Err(format!(
            "sizes must be 1 to {} bytes (the card's longest transfer)",
            config.max_request_bytes
        )
        .into());
    }
    let directory = tempfile::tempdir()?;
    let card = SimulatedCard::open(
        "bench",
        &directory.path().join("bench.pm"),
        SimulatedIommu::new(),
        CardOptions {
            config,
            host_latency: arguments.host_latency,
            ..CardOptions::default()
        },
    )?;
    let options = DriverOptions {
        interrupts: !arguments.polling,
        ..DriverOptions::default()
    };
    let mut device = NpmuDevice::open(card, options)?;
    let pages = largest.div_ceil(config.page_bytes()) as u32;
    device.unlock(KEY)?;
    let entries: Vec<Option<u32>> = (0..pages).map(|page| Some(page * 7 % 4096)).collect();
    device.write_entries(0, &entries)?;
    let key = device.register_context(
        1,
        &ContextSettings {
            tag: 0xbe_4c00,
            read: true,
            write: true,
            initiator: None,
            base: BASE,
            pages,
            first_entry: 0,
        },
    )?;
    device.create_queue(QUEUE, 64)?;
    let mut buffer = device.allocate(largest, DmaDirection::Bidirectional)?;
    buffer.write(0, &vec![0xa5; largest as usize])?;

    let mut figures = Vec::new();
    let mut kinds: Vec<(&str, u64)> = vec![("nop", 0), ("flush", 0)];
    for size in &arguments.sizes {
        kinds.push(("write", *size));
        kinds.push(("read", *size));
    }
    let clocks_before = device.card().clocks();
    let bench_started = Instant::now();
    let progress =
        indicatif::ProgressBar::new(kinds.len() as u64 * u64::from(arguments.iterations));
    for (kind, size) in kinds {
        let mut wall = Vec::new();
        let mut cycles = Vec::new();
        for _ in 0..arguments.iterations {
            let operation = operation(kind, key, &buffer, size);
            let started = Instant::now();
            device.run(QUEUE, operation)?;
            wall.push(started.elapsed().as_nanos() as u64);
            if let Some(clocks) = sim_cycles(device.card()) {
                cycles.push(clocks);
            }
            progress.inc(1);
        }
        let fields = json!({"op": kind, "size": size, "config": config.name,
            "host_latency_clocks": arguments.host_latency, "iterations": arguments.iterations});
        figures.push(figure(
            "driver_op_wall_ns",
            percentile(&mut wall, 50),
            "ns",
            &fields,
            "p50",
        ));
        figures.push(figure(
            "driver_op_wall_ns",
            percentile(&mut wall, 99),
            "ns",
            &fields,
            "p99",
        ));
        if !cycles.is_empty() {
            let median = percentile(&mut cycles, 50);
            let mut cycle_figure = figure("driver_op_sim_cycles", median, "cycles", &fields, "p50");
            let nanoseconds = median as f64 * 1000.0 / f64::from(config.target_clock_mhz);
            cycle_figure["sim_ns"] = json!(nanoseconds);
            figures.push(cycle_figure);
        }
    }
    progress.finish_and_clear();
    let clocks = device.card().clocks() - clocks_before;
    let rate = clocks as f64 / bench_started.elapsed().as_secs_f64();
    let mut rate_figure = json!({"name": "card_cycles_per_second", "value": rate.round(),
        "unit": "cycles/s", "config": config.name});
    rate_figure["note"] = json!("the simulated card's own clock rate while the driver ran it");
    figures.push(rate_figure);
    drop(buffer);
    Ok(figures)
}

fn operation<'a>(kind: &str, key: u32, buffer: &'a DmaBuffer, size: u64) -> Operation<'a> {
    let transfer = Transfer {
        context: 1,
        key,
        address: BASE,
        buffer,
        offset: 0,
        length: size,
    };
    match kind {
        "write" => Operation::Write(transfer),
        "read" => Operation::Read(transfer),
        "flush" => Operation::Flush,
        _ => Operation::Nop,
    }
}

/// Doorbell to interrupt of the operation just completed, if the card interrupted for it.
fn sim_cycles(card: &SimulatedCard) -> Option<u64> {
    let doorbell = card.last_doorbell_clock(QUEUE)?;
    let interrupt = card.last_interrupt_clock(QUEUE)?;
    interrupt.checked_sub(doorbell)
}

fn percentile(values: &mut [u64], percent: usize) -> u64 {
    values.sort_unstable();
    values[(values.len() - 1) * percent / 100]
}

fn figure(
    name: &str,
    value: u64,
    unit: &str,
    fields: &serde_json::Value,
    percentile: &str,
) -> serde_json::Value {
    let mut figure = json!({"name": name, "value": value, "unit": unit, "percentile": percentile});
    for (field, value) in fields.as_object().expect("an object") {
        figure[field] = value.clone();
    }
    figure
}
