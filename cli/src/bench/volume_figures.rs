//! Figures of the host library:
//!
//! - `volume_latency_ns`: a region write (BOTH) or read (ANY) of 64 or 4096 bytes on a volume
//!   of two Verilator cards, wall clock, 50th and 99th percentile;
//! - `volume_latency_sim_ns`: the same operation in the cards' clocks (doorbell taken to
//!   interrupt sent, the slower card of a BOTH write), in ns at the configuration's clock;
//! - `volume_ops_per_second`: those operations one after the other, per wall second;
//! - `mirror_latency_ratio`: a BOTH write over a write to the primary alone, in simulated
//!   cycles (the hardware's view) and in wall time;
//! - `library_overhead_ns`: the same verbs against the golden model, which answers at once,
//!   less the time spent inside the model: what the library and the driver cost per
//!   operation on the CPU (the model's own share is the field `device_ns`).

use super::percentile;
use crate::cards::last_operation_cycles;
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use npmu::cards::{simulated_cards, Model, SimulatedCards};
use npmu::{Card, CardRole, Mirror, ReadFrom, RegionHandle, Volume, VolumeOptions};
use npmu_device::{Device, DeviceError, DmaMapping, Interrupts, Mmio};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
pub struct Arguments {
    /// Operations timed per kind and size on the Verilator cards.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(2..))]
    iterations: u32,
    /// Operations timed per kind and size on the golden model.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(2..))]
    overhead_iterations: u32,
    // The write-intent figures (`intent_figures.rs`), measured after these.
    #[command(flatten)]
    pub intent: super::intent_figures::Arguments,
}

const SIZES: [u64; 2] = [64, 4096];
const REGION_BYTES: u64 = 1 << 20;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Write(Mirror),
    Read(ReadFrom),
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Write(_) => "write",
            Op::Read(_) => "read",
        }
    }

    /// The cards whose clocks the operation runs on.
    fn cards(self) -> &'static [CardRole] {
        match self {
            Op::Write(Mirror::Both) => &CardRole::BOTH,
            Op::Write(Mirror::Mirror) | Op::Read(ReadFrom::Mirror) => &[CardRole::Mirror],
            _ => &[CardRole::Primary],
        }
    }
}

/// What one kind of operation measured.
struct Samples {
    wall_ns: Vec<u64>,
    /// Of each operation, the part spent inside the card's register accesses.
    device_ns: Vec<u64>,
    sim_cycles: Vec<u64>,
    seconds: f64,
}

/// A card whose register accesses and interrupt waits are timed, so that the time spent
/// inside the device can be told from the library's own.
struct Timed {
    card: Card,
    inside_ns: Arc<AtomicU64>,
}

impl Timed {
    fn time<R>(&self, access: impl FnOnce(&Card) -> R) -> R {
        let started = Instant::now();
        let result = access(&self.card);
        let spent = started.elapsed().as_nanos() as u64;
        self.inside_ns.fetch_add(spent, Ordering::Relaxed);
        result
    }
}

impl Mmio for Timed {
    fn read_register(&self, offset: u16) -> u64 {
        self.time(|card| card.read_register(offset))
    }

    fn write_register(&self, offset: u16, value: u64) {
        self.time(|card| card.write_register(offset, value))
    }
}

impl Interrupts for Timed {
    fn interrupt_vectors(&self) -> u16 {
        self.card.interrupt_vectors()
    }

    fn wait_interrupt(&self, vector: u16, timeout: Duration) -> Result<bool, DeviceError> {
        self.time(|card| card.wait_interrupt(vector, timeout))
    }
}

impl Device for Timed {
    fn name(&self) -> &str {
        self.card.name()
    }

    fn dma(&self) -> Arc<dyn DmaMapping> {
        self.card.dma()
    }

    fn reset(&self) -> Result<(), DeviceError> {
        self.card.reset()
    }
}

struct Bench {
    volume: Volume<Timed>,
    region: RegionHandle<Timed>,
    inside_ns: Arc<AtomicU64>,
    _directory: tempfile::TempDir,
}

impl Bench {
    fn new(model: Model) -> Result<Self, Box<dyn std::error::Error>> {
        let directory = tempfile::tempdir()?;
        let cards = SimulatedCards {
            model,
            ..SimulatedCards::in_directory(directory.path())
        };
        let (primary, mirror) = simulated_cards(&cards)?;
        let inside_ns = Arc::new(AtomicU64::new(0));
        let timed = |card| Timed {
            card,
            inside_ns: Arc::clone(&inside_ns),
        };
        let (primary, mirror) = (timed(primary), timed(mirror));
        let volume = Volume::format(primary, mirror, "bench", false, VolumeOptions::default())?;
        volume.create_region("bench", REGION_BYTES, 0)?;
        let region = volume.open_region("bench")?;
        Ok(Self {
            volume,
            region,
            inside_ns,
            _directory: directory,
        })
    }

    /// Runs `op` on `size` bytes `iterations` times, at addresses walking the region.
    fn run(
        &self,
        op: Op,
        size: u64,
        iterations: u32,
        progress: &ProgressBar,
    ) -> Result<Samples, npmu::Error> {
        let mut buffer = vec![0x5au8; size as usize];
        let mut samples = Samples {
            wall_ns: Vec::new(),
            device_ns: Vec::new(),
            sim_cycles: Vec::new(),
            seconds: 0.0,
        };
        let started = Instant::now();
        for index in 0..u64::from(iterations) {
            let pointer = (index * size) % (REGION_BYTES - size);
            let inside_before = self.inside_ns.load(Ordering::Relaxed);
            let begun = Instant::now();
            match op {
                Op::Write(mirror) => {
                    self.volume
                        .write_region(&self.region, &buffer, pointer, mirror)?
                }
                Op::Read(from) => {
                    self.volume
                        .read_region(&self.region, &mut buffer, pointer, from)?
                }
            }
            samples.wall_ns.push(begun.elapsed().as_nanos() as u64);
            let inside = self.inside_ns.load(Ordering::Relaxed) - inside_before;
            samples.device_ns.push(inside);
            if let Some(cycles) = self.sim_cycles(op) {
                samples.sim_cycles.push(cycles);
            }
            progress.inc(1);
        }
        samples.seconds = started.elapsed().as_secs_f64();
        Ok(samples)
    }

    /// Doorbell taken to interrupt sent on the slowest card `op` used, if the cards count
    /// clocks.
    fn sim_cycles(&self, op: Op) -> Option<u64> {
        op.cards()
            .iter()
            .map(|&role| {
                self.volume
                    .inspect_card(role, |timed| last_operation_cycles(&timed.card))?
            })
            .collect::<Option<Vec<u64>>>()?
            .into_iter()
            .max()
    }
}

pub fn figures(arguments: &Arguments) -> Result<Vec<Value>, Box<dyn std::error::Error>> {
    let config = npmu_abi::Config::SIM;
    let to_ns = |cycles: u64| cycles as f64 * 1000.0 / f64::from(config.target_clock_mhz);
    let mut figures: Vec<Value> = Vec::new();

    let verilator_ops = [
        Op::Write(Mirror::Both),
        Op::Read(ReadFrom::Any),
        Op::Write(Mirror::Primary),
    ];
    let overhead_ops = [Op::Write(Mirror::Both), Op::Read(ReadFrom::Any)];
    let total = u64::from(arguments.iterations) * (verilator_ops.len() * SIZES.len()) as u64
        + u64::from(arguments.overhead_iterations) * (overhead_ops.len() * SIZES.len()) as u64;
    let progress = ProgressBar::new(total).with_style(ProgressStyle::with_template(
        "{msg} [{bar:40}] {pos}/{len} operations",
    )?);

    progress.set_message("two Verilator cards");
    let bench = Bench::new(Model::Verilator)?;
    let mut single_card = Vec::new();
    let mut both_cards = Vec::new();
    for size in SIZES {
        for op in verilator_ops {
            let mut samples = bench.run(op, size, arguments.iterations, &progress)?;
            let fields = json!({"op": op.name(), "size": size, "config": config.name,
                "card": "verilator", "iterations": arguments.iterations});
            let wall = [
                percentile(&mut samples.wall_ns, 50),
                percentile(&mut samples.wall_ns, 99),
            ];
            let cycles = percentile(&mut samples.sim_cycles, 50);
            match op {
                Op::Write(Mirror::Primary) => {
                    single_card.push((size, cycles, wall[0]));
                    continue;
                }
                Op::Write(_) => both_cards.push((size, cycles, wall[0])),
                Op::Read(_) => {}
            }
            for (percent, value) in [(50, wall[0]), (99, wall[1])] {
                figures.push(figure(
                    "volume_latency_ns",
                    value as f64,
                    "ns",
                    &fields,
                    percent,
                ));
            }
            for percent in [50, 99] {
                let cycles = percentile(&mut samples.sim_cycles, percent);
                let mut sim = figure(
                    "volume_latency_sim_ns",
                    to_ns(cycles),
                    "ns",
                    &fields,
                    percent,
                );
                sim["sim_cycles"] = json!(cycles);
                sim["clock_mhz"] = json!(config.target_clock_mhz);
                figures.push(sim);
            }
            let rate = f64::from(arguments.iterations) / samples.seconds;
            let mut ops = figure("volume_ops_per_second", rate.round(), "ops/s", &fields, 0);
            ops.as_object_mut().expect("object").remove("percentile");
            figures.push(ops);
        }
    }
    for ((size, single_cycles, single_wall), (_, both_cycles, both_wall)) in
        single_card.iter().zip(&both_cards)
    {
        for (basis, ratio) in [
            ("sim_cycles", *both_cycles as f64 / *single_cycles as f64),
            ("wall", *both_wall as f64 / *single_wall as f64),
        ] {
            figures.push(json!({"name": "mirror_latency_ratio",
                "value": (ratio * 1000.0).round() / 1000.0, "unit": "ratio", "size": size,
                "basis": basis, "config": config.name, "card": "verilator",
                "note": "BOTH write p50 over a PRIMARY-only write p50; target at most 1.2"}));
        }
    }
    drop(bench);

    progress.set_message("two golden-model cards");
    let bench = Bench::new(Model::Golden)?;
    for size in SIZES {
        for op in overhead_ops {
            let mut samples = bench.run(op, size, arguments.overhead_iterations, &progress)?;
            let fields = json!({"op": op.name(), "size": size, "config": config.name,
                "card": "golden", "iterations": arguments.overhead_iterations});
            let mut own: Vec<u64> = samples
                .wall_ns
                .iter()
                .zip(&samples.device_ns)
                .map(|(wall, inside)| wall.saturating_sub(*inside))
                .collect();
            for percent in [50, 99] {
                let value = percentile(&mut own, percent) as f64;
                let mut overhead = figure("library_overhead_ns", value, "ns", &fields, percent);
                overhead["device_ns"] = json!(percentile(&mut samples.device_ns, percent));
                overhead["with_device_ns"] = json!(percentile(&mut samples.wall_ns, percent));
                figures.push(overhead);
            }
        }
    }
    progress.finish_and_clear();
    Ok(figures)
}

fn figure(name: &str, value: f64, unit: &str, fields: &Value, percent: usize) -> Value {
    let mut figure = json!({"name": name, "value": value, "unit": unit, "percentile": percent});
    let object = figure.as_object_mut().expect("object");
    for (key, field) in fields.as_object().expect("fields are an object") {
        object.insert(key.clone(), field.clone());
    }
    figure
}
