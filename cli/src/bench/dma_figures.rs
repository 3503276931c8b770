//! Figures of the whole NI moving data by DMA: throughput through the queues by transfer
//! size and number of queues, and the latency of a small write.

use indicatif::{ProgressBar, ProgressStyle};
use npmu_abi::program::{self, ContextSettings};
use npmu_abi::queue::{Descriptor, Opcode};
use npmu_abi::Config;
use npmu_model::DmaDirection;
use npmu_sim::device_traffic::ring_settings;
use npmu_sim::{DeviceHarness, DeviceOptions, VerilatedNetworkInterface};
use serde_json::{json, Value};

type Device = DeviceHarness<VerilatedNetworkInterface>;

const SIZES: [u32; 3] = [64, 512, 4096];
const RING_ENTRIES: u32 = 256;
/// Pages of each queue's context, and bytes of its host buffer.
const PAGES_PER_QUEUE: u32 = 64;
const BUFFER_BYTES: u64 = 1 << 20;

/// The data path's width: the most any port moves in a clock.
pub fn datapath() -> Value {
    let config = Config::SIM;
    json!({"name": "datapath_bytes_per_cycle", "value": config.data_bytes,
        "unit": "bytes/cycle", "config": config.name})
}

/// Every throughput figure of the default configuration moving `bytes` each, then the
/// write latency, with host memory answering after `host_latency` clocks.
pub fn figures(bytes: u64, host_latency: u64) -> Vec<Value> {
    let config = Config::SIM;
    let runs: Vec<(Opcode, u32, u32)> = [Opcode::Write, Opcode::Read]
        .into_iter()
        .flat_map(|opcode| SIZES.map(|size| (opcode, size)))
        .flat_map(|(opcode, size)| [1, config.queues].map(|queues| (opcode, size, queues)))
        .collect();
    let bar = ProgressBar::new(runs.len() as u64);
    bar.set_style(ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} runs").unwrap());
    bar.set_message(format!(
        "DMA throughput on {}, host latency {host_latency}",
        config.name
    ));
    let data_bytes = f64::from(config.data_bytes);
    let mut figures = Vec::new();
    for (opcode, size, queues) in runs {
        let per_cycle = throughput(&config, host_latency, opcode, size, queues, bytes);
        let operation = match opcode {
            Opcode::Write => "write",
            _ => "read",
        };
        let common = json!({"config": config.name, "size": size, "queues": queues,
            "host_latency": host_latency, "datapath_busy": (per_cycle / data_bytes * 1000.0).round() / 1000.0});
        let mut cycles = json!({"name": format!("dma_{operation}_bytes_per_cycle"),
            "value": (per_cycle * 1000.0).round() / 1000.0, "unit": "bytes/cycle"});
        let mut rate = json!({"name": format!("dma_{operation}_mb_per_s"),
            "value": (per_cycle * f64::from(config.target_clock_mhz)).round(), "unit": "MB/s",
            "clock_mhz": config.target_clock_mhz});
        for figure in [&mut cycles, &mut rate] {
            figure
                .as_object_mut()
                .unwrap()
                .extend(common.as_object().unwrap().clone());
        }
        figures.extend([cycles, rate]);
        bar.inc(1);
    }
    bar.finish_and_clear();
    for inline in [false, true] {
        let latency = write_latency(&config, host_latency, inline);
        // An inline payload comes with the descriptor's fetch: one round trip.
        let round_trips = if inline { 1 } else { 2 };
        figures.push(
            json!({"name": "write_latency_cycles", "value": latency, "unit": "cycles",
            "config": config.name, "size": 64, "inline": inline, "host_latency": host_latency,
            "from": "doorbell taken", "to": "completion written",
            "host_round_trips": round_trips,
            "beyond_host_latency": latency - round_trips * host_latency}),
        );
    }
    figures
}

/// A device with queues `0..queues` each running over its own context and host buffer.
fn device(config: &Config, host_latency: u64, queues: u32) -> (Device, Vec<u32>) {
    let options = DeviceOptions {
        host_latency,
        // Measuring the NI, not the model: the monitor stays on.
        golden: false,
        ..DeviceOptions::default()
    };
    let management_key = options.management_key;
    let mut device = DeviceHarness::verilated(config, options).expect("a simulation model");
    program::unlock(&mut device, management_key).expect("unlocking");
    let mut keys = Vec::new();
    for queue in 0..queues as u16 {
        let rings = ring_settings(queue, RING_ENTRIES);
        device.map_rings(&rings);
        device.set_up_queue(queue, &rings).expect("a queue");
        device.map_host(buffer(queue), BUFFER_BYTES, DmaDirection::Bidirectional);
        let first_entry = u32::from(queue) * PAGES_PER_QUEUE;
        let pages: Vec<Option<u32>> = (first_entry..first_entry + PAGES_PER_QUEUE)
            .map(|entry| Some(entry * 2 + 1))
            .collect();
        program::write_entries(&mut device, first_entry, &pages).expect("mapping");
        let settings = ContextSettings {
            tag: 1,
            read: true,
            write: true,
            initiator: Some(queue),
            base: network_base(queue),
            pages: PAGES_PER_QUEUE,
            first_entry,
        };
        keys.push(program::register_context(&mut device, queue, &settings).expect("a context"));
    }
    (device, keys)
}

fn buffer(queue: u16) -> u64 {
    0x4000_0000 + u64::from(queue) * 0x100_0000
}

fn network_base(queue: u16) -> u64 {
    (u64::from(queue) + 1) << 32
}

/// The `index`th transfer of a queue: consecutive, wrapping in its context and buffer.
fn transfer(
    opcode: Opcode,
    queue: u16,
    key: u32,
    size: u32,
    index: u64,
    config: &Config,
) -> Descriptor {
    let context_bytes = u64::from(PAGES_PER_QUEUE) * config.page_bytes();
    let offset = index * u64::from(size);
    Descriptor {
        opcode: opcode as u8,
        context: queue.into(),
        key: key.into(),
        address: (network_base(queue) + offset % context_bytes).into(),
        host_address: (buffer(queue) + offset % BUFFER_BYTES).into(),
        length: size.into(),
        tag: (index as u32).into(),
        ..Descriptor::default()
    }
}

/// Payload bytes per clock with every ring kept full, measured between the completions that
/// end the first and the ninth tenth of the run: past the start, before the rings drain.
fn throughput(
    config: &Config,
    host_latency: u64,
    opcode: Opcode,
    size: u32,
    queues: u32,
    bytes: u64,
) -> f64 {
    let (mut device, keys) = device(config, host_latency, queues);
    let total = bytes.div_ceil(u64::from(size));
    let mut submitted = vec![0u64; queues as usize];
    let mut completed = 0u64;
    let mut window_start = None;
    let mut window_end = None;
    while completed < total {
        for queue in 0..queues as u16 {
            let index = &mut submitted[usize::from(queue)];
            while *index * u64::from(queues) < total {
                let descriptor = transfer(
                    opcode,
                    queue,
                    keys[usize::from(queue)],
                    size,
                    *index,
                    config,
                );
                if device.submit(queue, &descriptor).is_err() {
                    break;
                }
                *index += 1;
            }
        }
        device.step();
        for completion in device.take_completions() {
            assert_eq!(
                completion.entry.status, 0,
                "a transfer failed: {completion:?}"
            );
            completed += 1;
            if completed == total / 10 {
                window_start = Some((completion.clock, completed));
            }
            if completed == total * 9 / 10 {
                window_end = Some((completion.clock, completed));
            }
        }
    }
    let (start_clock, start_count) = window_start.expect("at least ten transfers");
    let (end_clock, end_count) = window_end.expect("at least ten transfers");
    ((end_count - start_count) * u64::from(size)) as f64 / (end_clock - start_clock) as f64
}

/// Clocks from the NI taking the doorbell of one 64-byte write, on an idle NI, to its
/// completion landing in host memory; `inline`, with its payload in the submission ring.
fn write_latency(config: &Config, host_latency: u64, inline: bool) -> u64 {
    let (mut device, keys) = device(config, host_latency, 1);
    let buffered = transfer(Opcode::Write, 0, keys[0], 64, 0, config);
    if inline {
        let descriptor =
            Descriptor::inline_write(0, keys[0], buffered.address.get(), 64, buffered.tag.get());
        device
            .submit_inline(0, &descriptor, &[0x5a; 64])
            .expect("an empty ring");
    } else {
        device.submit(0, &buffered).expect("an empty ring");
    }
    device.run_until_idle();
    let completion = device.take_completions()[0];
    assert_eq!(completion.entry.status, 0);
    let doorbell = device.doorbells().last().expect("the doorbell").0;
    completion.clock - doorbell
}
