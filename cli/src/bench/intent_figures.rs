//! Figures of write intent (`npmu::intent`, md's write-intent bitmap):
//!
//! - `intent_write_cycles`: card clocks a mirrored 4 KiB write costs on two Verilator cards,
//!   with write intent and without, writes walking the largest region (`sequential`) or at
//!   random pages of it (`random`);
//! - `intent_overhead_ratio`: with over without, per pattern;
//! - `resync_pages`: region pages the resync of the demo's failed primary copies, against
//!   every region page;
//! - `recovery_repair_ms`: wall time of `Volume::open` on a copy of the cards taken under an
//!   open volume (an unclean shutdown), with and without write intent, and after a clean
//!   close.
//!
//! Card clocks are counted write by write, each started on sleeping cards: a simulated card
//! stops its clock [`CARD_IDLE_CLOCKS`] after its last handshake, so from then to the
//! write's last interrupt its clock counts the write from its first doorbell, the intent
//! record and the FLUSH put on the queue ahead of the data included. Of the clocks between
//! the write's first doorbell and its last, which are the host's time, at most
//! [`LATE_DOORBELL`] count: on an idle machine there are two, but a host thread the
//! scheduler holds up between them lets the card run for thousands (the `unbounded` fields
//! keep them). The doorbell-to-interrupt measure of the other figures sees only the last
//! descriptor; the clocks over a stream of writes would add the gaps between writes (up to
//! the idle clocks each, as long as the host takes to come back), which dilute the ratio
//! and vary with the machine's load.

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use npmu::cards::{simulated_cards, Model, SimulatedCards};
use npmu::{
    Card, CardRole, CardState, Error, Mirror, PerCard, RegionHandle, Volume, VolumeOptions,
};
use npmu_abi::registers::{self as reg, queue_at};
use npmu_device::{Device, DeviceError, DmaMapping, Interrupts, Mmio};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

type Failure = Box<dyn std::error::Error>;

#[derive(Args)]
pub struct Arguments {
    /// Mirrored 4 KiB writes timed per pattern and volume for the cost of write intent, on
    /// Verilator cards (after a quarter as many, at least 128, to warm up).
    #[arg(long, default_value_t = 512,
        value_parser = clap::value_parser!(u32).range(16..))]
    intent_writes: u32,
    /// Opens timed per kind for `recovery_repair_ms` (golden-model cards); the median is
    /// reported.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    recovery_opens: u32,
}

const WRITE_BYTES: u64 = 4096;
/// The seeds of the random pattern: the warm-up's and the measured stream's, the same on
/// both volumes.
const WARM_UP_SEED: u64 = 0x6e70_6d75;
const STREAM_SEED: u64 = 0x696e_7465_6e74;
/// Targets of the issue, for the notes.
const TARGET_SEQUENTIAL: f64 = 1.05;
const TARGET_RANDOM: f64 = 1.2;

pub fn figures(arguments: &Arguments) -> Result<Vec<Value>, Failure> {
    let writes = u64::from(arguments.intent_writes);
    let warm_up = warm_up_writes(arguments.intent_writes);
    let intent_operations = 2 * 2 * (writes + warm_up);
    // Counted, roughly, as operations: the demo's writes, the recovery streams and opens.
    let total =
        intent_operations + DEMO_OPERATIONS + 2 * 4000 + 3 * u64::from(arguments.recovery_opens);
    let progress = ProgressBar::new(total).with_style(ProgressStyle::with_template(
        "{msg} [{bar:40}] {pos}/{len} operations",
    )?);
    let mut figures = Vec::new();
    progress.set_message("write intent on Verilator cards");
    figures.extend(overhead_figures(arguments.intent_writes, &progress)?);
    progress.set_message("the demo's resync on golden-model cards");
    figures.push(resync_figure(&progress)?);
    progress.set_message("repair after a crash on golden-model cards");
    figures.extend(recovery_figures(arguments.recovery_opens, &progress)?);
    progress.finish_and_clear();
    Ok(figures)
}

/// Enough writes before the measured ones that the chunks region creation left dirty are
/// cleared and the dirty set is what the pattern keeps.
fn warm_up_writes(writes: u32) -> u64 {
    u64::from(writes / 4).max(2 * npmu::intent::IDLE_WRITES)
}

// ---------------------------------------------------------------------------------------
// intent_write_cycles, intent_overhead_ratio

/// A card whose submission doorbells are counted: a write that records intent rings three
/// (the record, its FLUSH, the data), one that does not rings one.
struct Counted {
    card: Card,
    doorbells: Arc<AtomicU64>,
}

impl Mmio for Counted {
    fn read_register(&self, offset: u16) -> u64 {
        self.card.read_register(offset)
    }

    fn write_register(&self, offset: u16, value: u64) {
        if matches!(queue_at(offset), Some((_, register)) if register == reg::queue::SQ_TAIL) {
            self.doorbells.fetch_add(1, Ordering::Relaxed);
        }
        self.card.write_register(offset, value)
    }
}

impl Interrupts for Counted {
    fn interrupt_vectors(&self) -> u16 {
        self.card.interrupt_vectors()
    }

    fn wait_interrupt(&self, vector: u16, timeout: Duration) -> Result<bool, DeviceError> {
        self.card.wait_interrupt(vector, timeout)
    }
}

impl Device for Counted {
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

#[derive(Clone, Copy, PartialEq, Eq)]
enum Pattern {
    Sequential,
    Random,
}

impl Pattern {
    fn name(self) -> &'static str {
        match self {
            Pattern::Sequential => "sequential",
            Pattern::Random => "random",
        }
    }

    fn target(self) -> f64 {
        match self {
            Pattern::Sequential => TARGET_SEQUENTIAL,
            Pattern::Random => TARGET_RANDOM,
        }
    }

    /// Region offsets of the warm-up and of the measured stream, in a region of `pages`.
    fn offsets(self, pages: u64, warm_up: u64, writes: u64) -> (Vec<u64>, Vec<u64>) {
        match self {
            // The warm-up at the region's end, the stream from its start: every chunk the
            // stream reaches is new, as when a log walks a region.
            Pattern::Sequential => (
                (pages - warm_up..pages)
                    .map(|page| page * WRITE_BYTES)
                    .collect(),
                (0..writes)
                    .map(|index| (index % pages) * WRITE_BYTES)
                    .collect(),
            ),
            Pattern::Random => {
                let random = |seed, count| {
                    let mut random = StdRng::seed_from_u64(seed);
                    (0..count)
                        .map(|_| random.gen_range(0..pages) * WRITE_BYTES)
                        .collect()
                };
                (random(WARM_UP_SEED, warm_up), random(STREAM_SEED, writes))
            }
        }
    }
}

/// A volume of two Verilator cards with one region as large as the cards allow.
struct Stream {
    volume: Volume<Counted>,
    region: RegionHandle<Counted>,
    /// The primary's doorbells.
    doorbells: Arc<AtomicU64>,
    /// How long the cards' clocks must stay put to be taken as asleep: twice what a batch
    /// of clocks took in the last timed write.
    settle: std::cell::Cell<Duration>,
    _directory: tempfile::TempDir,
}

/// What each write of a run cost the cards.
#[derive(Default)]
struct Samples {
    /// Of each write, on the slower card: clocks from its first register access (the card
    /// asleep until then) to its last interrupt, of which at most [`LATE_DOORBELL`] before
    /// its last doorbell.
    cycles: Vec<u64>,
    /// The same without that bound: with the clocks the card ran while the host thread was
    /// held up between a write's doorbells.
    unbounded: Vec<u64>,
    /// Of each write, whether it recorded intent (more than one doorbell on the primary).
    recorded: Vec<bool>,
    /// Of each write, on the slower card: clocks from its last doorbell to its last
    /// interrupt, what `volume_latency_sim_ns` counts.
    last_descriptor: Vec<u64>,
    /// Writes whose last doorbell came more than [`LATE_DOORBELL`] clocks after the card
    /// woke, on either card.
    late_starts: u64,
}

impl Samples {
    /// The mean of `values` (one a write) over the writes `which` picks by whether they
    /// recorded intent.
    fn mean(&self, values: &[u64], which: impl Fn(bool) -> bool) -> Option<f64> {
        let chosen: Vec<u64> = values
            .iter()
            .zip(&self.recorded)
            .filter(|(_, &recorded)| which(recorded))
            .map(|(&cycles, _)| cycles)
            .collect();
        (!chosen.is_empty()).then(|| chosen.iter().sum::<u64>() as f64 / chosen.len() as f64)
    }

    fn recorded(&self) -> usize {
        self.recorded.iter().filter(|&&recorded| recorded).count()
    }
}

/// Clocks a simulated card runs after its last handshake before it sleeps (npmu_sim's
/// `IDLE_CLOCKS`, without interrupt coalescing, which the library does not program).
const CARD_IDLE_CLOCKS: u64 = 512;
/// Clocks a simulated card runs between two publications of its count (`BATCH_CLOCKS`).
const CARD_BATCH_CLOCKS: u64 = 1024;
const MIN_SETTLE: Duration = Duration::from_millis(2);
/// Clocks a write's last doorbell may come after its first and still count as the
/// write's: the host's time between them (64 ns at 250 MHz).
const LATE_DOORBELL: u64 = 16;

impl Stream {
    /// The volume is formatted and its region created (zeroing 16 MiB on each card, which
    /// takes the Verilator cards seconds) on golden-model cards, closed cleanly, and opened
    /// on Verilator cards from the same files.
    fn new(write_intent: bool) -> Result<Self, Failure> {
        let directory = scratch_directory()?;
        let options = VolumeOptions {
            write_intent,
            ..VolumeOptions::default()
        };
        {
            let (primary, mirror) = simulated_cards(&golden(directory.path()))?;
            let volume = Volume::format(primary, mirror, "intent", false, options)?;
            volume.create_region("intent", volume.info().max_region_bytes, 0)?;
        }
        let (primary, mirror) = simulated_cards(&SimulatedCards::in_directory(directory.path()))?;
        let doorbells = Arc::new(AtomicU64::new(0));
        let primary = Counted {
            card: primary,
            doorbells: Arc::clone(&doorbells),
        };
        let mirror = Counted {
            card: mirror,
            doorbells: Arc::new(AtomicU64::new(0)),
        };
        let volume = Volume::open(primary, mirror, options)?;
        if volume.repaired().is_some() {
            return Err("a cleanly closed volume was repaired at its open".into());
        }
        let region = volume.open_region("intent")?;
        Ok(Self {
            volume,
            region,
            doorbells,
            settle: std::cell::Cell::new(MIN_SETTLE),
            _directory: directory,
        })
    }

    fn pages(&self) -> u64 {
        self.region.size() / WRITE_BYTES
    }

    fn card_clocks(&self, clocks: impl Fn(&npmu_sim::SimulatedCard) -> Option<u64>) -> [u64; 2] {
        CardRole::BOTH.map(|role| {
            self.volume
                .inspect_card(role, |counted| counted.card.simulated().and_then(&clocks))
                .flatten()
                .unwrap_or(0)
        })
    }

    /// The cards' clocks once both have gone to sleep, which they do
    /// [`CARD_IDLE_CLOCKS`] after their last handshake: no clock passes from then to the
    /// next register access. A card publishes its count once a batch of up to
    /// [`CARD_BATCH_CLOCKS`], so a count that has not moved may be a batch under way: it is
    /// taken once it has stayed put for twice as long as a batch takes.
    fn asleep(&self) -> [u64; 2] {
        let mut before = self.card_clocks(|card| Some(card.clocks()));
        let mut since = Instant::now();
        loop {
            std::thread::sleep(Duration::from_micros(500));
            let now = self.card_clocks(|card| Some(card.clocks()));
            if now != before {
                before = now;
                since = Instant::now();
                continue;
            }
            let interrupted =
                self.card_clocks(|card| card.last_interrupt_clock(npmu::layout::QUEUE));
            let idle = (0..2).all(|card| now[card] >= interrupted[card] + CARD_IDLE_CLOCKS);
            if idle && since.elapsed() >= self.settle.get() {
                return now;
            }
        }
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), Error> {
        self.volume
            .write_region(&self.region, data, offset, Mirror::Both)
    }

    /// One write on sleeping cards, and what it cost them.
    fn timed_write(&self, offset: u64, data: &[u8], samples: &mut Samples) -> Result<(), Failure> {
        let started = self.asleep();
        let doorbells = self.doorbells.load(Ordering::Relaxed);
        let begun = Instant::now();
        self.write(offset, data)?;
        let took = begun.elapsed();
        samples
            .recorded
            .push(self.doorbells.load(Ordering::Relaxed) - doorbells > 1);
        let ended = self.card_clocks(|card| card.last_interrupt_clock(npmu::layout::QUEUE));
        let rung = self.card_clocks(|card| card.last_doorbell_clock(npmu::layout::QUEUE));
        let slower = |from: [u64; 2]| {
            (0..2)
                .map(|card| ended[card].saturating_sub(from[card]))
                .max()
                .expect("two cards")
        };
        // The card's first access is the write's first doorbell, and a write that records
        // intent rings its three within a few clocks (two, on an idle machine): a last
        // doorbell later than that is the host thread held up (on a real card, the host
        // takes nanoseconds between them), or a card that was not quite asleep yet.
        let bounded =
            [0, 1].map(|card| started[card].max(rung[card].saturating_sub(LATE_DOORBELL)));
        let late = (0..2).any(|card| bounded[card] > started[card]);
        samples.late_starts += u64::from(late);
        let cycles = slower(bounded);
        samples.cycles.push(cycles);
        samples.unbounded.push(slower(started));
        samples.last_descriptor.push(slower(rung));
        let batch = took.mul_f64(CARD_BATCH_CLOCKS as f64 / cycles.max(1) as f64);
        self.settle
            .set((2 * batch).clamp(MIN_SETTLE, Duration::from_millis(50)));
        Ok(())
    }
}

fn overhead_figures(writes: u32, progress: &ProgressBar) -> Result<Vec<Value>, Failure> {
    let config = npmu_abi::Config::SIM;
    let volumes = [Stream::new(true)?, Stream::new(false)?];
    let pages = volumes[0].pages();
    let data = vec![0xa5u8; WRITE_BYTES as usize];
    let mut figures = Vec::new();
    for pattern in [Pattern::Sequential, Pattern::Random] {
        let (warm_up, stream) = pattern.offsets(pages, warm_up_writes(writes), u64::from(writes));
        for &offset in &warm_up {
            for volume in &volumes {
                volume.write(offset, &data)?;
                progress.inc(1);
            }
        }
        // Write by write, one volume then the other: a change in the machine's speed (which
        // moves the clocks the host's own work takes inside a write) falls on both.
        let mut samples = [Samples::default(), Samples::default()];
        for &offset in &stream {
            for (volume, samples) in volumes.iter().zip(&mut samples) {
                volume.timed_write(offset, &data, samples)?;
                progress.inc(1);
            }
        }
        let fields = json!({"pattern": pattern.name(), "size": WRITE_BYTES, "op": "write",
            "mirror": "both", "writes": writes, "region_pages": pages, "config": config.name,
            "card": "verilator", "clock_mhz": config.target_clock_mhz});
        let round = |value: f64| (value * 10.0).round() / 10.0;
        let mean = |samples: &Samples| {
            samples
                .mean(&samples.cycles, |_| true)
                .expect("writes were timed")
        };
        let unbounded_mean = |samples: &Samples| {
            samples
                .mean(&samples.unbounded, |_| true)
                .expect("writes were timed")
        };
        for (intent, samples) in [(true, &samples[0]), (false, &samples[1])] {
            let mut figure = json!({"name": "intent_write_cycles",
                "value": round(mean(samples)), "unit": "cycles", "statistic": "mean",
                "intent": intent, "recorded_writes": samples.recorded(),
                "recorded_mean": samples.mean(&samples.cycles, |recorded| recorded).map(round),
                "unrecorded_mean":
                    samples.mean(&samples.cycles, |recorded| !recorded).map(round),
                "late_starts": samples.late_starts,
                "unbounded_mean": round(unbounded_mean(samples))});
            extend(&mut figure, &fields);
            let mut cycles = samples.cycles.clone();
            figure["p50"] = json!(super::percentile(&mut cycles, 50));
            figure["p99"] = json!(super::percentile(&mut cycles, 99));
            let mut last = samples.last_descriptor.clone();
            figure["last_descriptor_p50"] = json!(super::percentile(&mut last, 50));
            figures.push(figure);
        }
        let ratio = mean(&samples[0]) / mean(&samples[1]);
        let unbounded = unbounded_mean(&samples[0]) / unbounded_mean(&samples[1]);
        let recorded = samples[0].recorded();
        let dirty = volumes[0].volume.info().dirty_chunks;
        let thousandths = |ratio: f64| (ratio * 1000.0).round() / 1000.0;
        let mut figure = json!({"name": "intent_overhead_ratio",
            "value": thousandths(ratio), "unit": "ratio", "basis": "sim_cycles",
            "recorded_writes": recorded, "dirty_chunks": dirty,
            "unbounded": thousandths(unbounded),
            "note": format!(
                "mean card clocks of a write with write intent over without, each write from \
                 its first doorbell (at most {LATE_DOORBELL} clocks before its last) to its \
                 interrupt on the slower card; {recorded} of {writes} writes ({:.1}%) \
                 recorded intent; target at most {}",
                100.0 * recorded as f64 / f64::from(writes), pattern.target())});
        extend(&mut figure, &fields);
        figures.push(figure);
    }
    Ok(figures)
}

fn extend(figure: &mut Value, fields: &Value) {
    let object = figure.as_object_mut().expect("object");
    for (key, field) in fields.as_object().expect("fields are an object") {
        object.insert(key.clone(), field.clone());
    }
}

// ---------------------------------------------------------------------------------------
// resync_pages: the demo's scenario (cli/src/demo.rs), on golden-model cards.

const DEMO_REGION: &str = "inventory";
const DEMO_REGION_BYTES: u64 = 1 << 20;
const DEMO_BASE_POINTER: u64 = 0x7f00_0000_0000;
const DEMO_BLOCKS: u64 = 64;
const DEMO_BLOCKS_OFFSET: u64 = 64 << 10;
const DEMO_FAILURE_BLOCKS: u64 = 32;
const DEMO_FAILURE_AFTER: u64 = 16;
const DEMO_FAILURE_OFFSET: u64 = DEMO_BLOCKS_OFFSET + DEMO_BLOCKS * WRITE_BYTES;
const DEMO_NODES: u64 = 100;
const DEMO_NODE_BYTES: u64 = 64;
const DEMO_NODES_OFFSET: u64 = 512 << 10;
const DEMO_CHANGED_NODE: u64 = 42;
const DEMO_OPERATIONS: u64 = DEMO_BLOCKS + DEMO_NODES + 1 + DEMO_FAILURE_BLOCKS + 1;

fn demo_node_pointer(node: u64) -> u64 {
    DEMO_BASE_POINTER + DEMO_NODES_OFFSET + (node * 37 % DEMO_NODES) * DEMO_NODE_BYTES
}

/// A directory for cards' memory files: in /dev/shm where there is one, since each card
/// syncs its memory file (1 GiB, sparse) to the disk when it closes, and the figures are
/// not about the disk.
fn scratch_directory() -> std::io::Result<tempfile::TempDir> {
    let memory = Path::new("/dev/shm");
    if memory.is_dir() {
        if let Ok(directory) = tempfile::Builder::new()
            .prefix("npmu-bench-")
            .tempdir_in(memory)
        {
            return Ok(directory);
        }
    }
    tempfile::tempdir()
}

fn golden(directory: &Path) -> SimulatedCards {
    SimulatedCards {
        model: Model::Golden,
        ..SimulatedCards::in_directory(directory)
    }
}

fn resync_figure(progress: &ProgressBar) -> Result<Value, Failure> {
    let directory = scratch_directory()?;
    let cards = golden(directory.path());
    // The demo's first process: format, regions, writes, the primary failing.
    {
        let (primary, mirror) = simulated_cards(&cards)?;
        let volume = Volume::format(primary, mirror, "demo", false, VolumeOptions::default())?;
        volume.create_region("journal", 64 << 10, 0)?;
        volume.create_region("index", 64 << 10, 0)?;
        volume.delete_region("journal")?;
        volume.create_region(DEMO_REGION, DEMO_REGION_BYTES, DEMO_BASE_POINTER)?;
        let region = volume.open_region(DEMO_REGION)?;
        let block = vec![0x11u8; WRITE_BYTES as usize];
        let pointer = |offset: u64, block: u64| DEMO_BASE_POINTER + offset + block * WRITE_BYTES;
        for index in 0..DEMO_BLOCKS {
            let at = pointer(DEMO_BLOCKS_OFFSET, index);
            volume.write_region(&region, &block, at, Mirror::Both)?;
            progress.inc(1);
        }
        let record = [0x22u8; DEMO_NODE_BYTES as usize];
        for node in 0..DEMO_NODES {
            volume.write_region(&region, &record, demo_node_pointer(node), Mirror::Both)?;
            progress.inc(1);
        }
        let head = demo_node_pointer(0).to_le_bytes();
        volume.write_region(&region, &head, DEMO_BASE_POINTER, Mirror::Both)?;
        progress.inc(1);
        let mut degraded = 0;
        for index in 0..DEMO_FAILURE_BLOCKS {
            if index == DEMO_FAILURE_AFTER {
                volume.inspect_card(CardRole::Primary, |card| card.fail());
            }
            let at = pointer(DEMO_FAILURE_OFFSET, index);
            let write = || volume.write_region(&region, &block, at, Mirror::Both);
            // The library logs the failure it is made to meet as an error; it is expected.
            let written = if index == DEMO_FAILURE_AFTER {
                tracing::subscriber::with_default(
                    tracing::subscriber::NoSubscriber::default(),
                    write,
                )
            } else {
                write()
            };
            match written {
                Ok(()) => {}
                Err(Error::Degraded { .. }) => degraded += 1,
                Err(error) => return Err(error.into()),
            }
            progress.inc(1);
        }
        let changed = [0x33u8; DEMO_NODE_BYTES as usize];
        let at = demo_node_pointer(DEMO_CHANGED_NODE);
        volume.write_region(&region, &changed, at, Mirror::Both)?;
        progress.inc(1);
        if degraded != 1 || volume.status().primary.state != CardState::Stale {
            return Err("the demo's primary failure did not leave the primary stale".into());
        }
    }
    // Its second process: the volume from the cards' files, the resync.
    let (primary, mirror) = simulated_cards(&cards)?;
    let volume = Volume::open(primary, mirror, VolumeOptions::default())?;
    if volume.status().primary.state != CardState::Stale {
        return Err("the primary is not stale after the demo's restart".into());
    }
    let dirty_chunks = volume.info().dirty_chunks;
    let full_pages = volume
        .list_regions()
        .iter()
        .map(|name| volume.read_attributes(name)?.get_u64("pages"))
        .sum::<Result<u64, Error>>()?;
    let report = volume.resync(|_, _| {})?;
    let PerCard { primary, mirror } = volume.status();
    if primary.state != CardState::InSync || mirror.state != CardState::InSync {
        return Err("the resync did not bring the primary back in sync".into());
    }
    let figure = json!({"name": "resync_pages", "value": report.pages, "unit": "pages",
        "full_pages": full_pages, "bytes": report.bytes, "full": report.full,
        "dirty_chunks": dirty_chunks, "card": "golden", "config": npmu_abi::Config::SIM.name,
        "scenario": "demo", "note": "region pages the resync of the demo's failed primary \
            copied (the 256-page region and the 16-page one; 32 writes of 4 KiB with the \
            primary failed after 16 and one record changed while degraded), against every \
            region page (full_pages)"});
    Ok(figure)
}

// ---------------------------------------------------------------------------------------
// recovery_repair_ms

/// The byte every copy of page `page` holds after the stream of `recovery_image`.
fn page_byte(page: u64) -> u8 {
    (page % 251) as u8 + 1
}

/// Writes every page of a region as large as the cards allow, one 4 KiB write each, then
/// copies both cards' files to `crash` while the volume is still open (every write has
/// returned, so nothing is in flight, and the intent records are still dirty: an unclean
/// shutdown), then closes it cleanly and copies them to `clean`.
fn recovery_image(
    write_intent: bool,
    crash: &Path,
    clean: Option<&Path>,
    progress: &ProgressBar,
) -> Result<u64, Failure> {
    let directory = scratch_directory()?;
    let cards = golden(directory.path());
    let (primary, mirror) = simulated_cards(&cards)?;
    let options = VolumeOptions {
        write_intent,
        ..VolumeOptions::default()
    };
    let volume = Volume::format(primary, mirror, "recovery", false, options)?;
    volume.create_region("recovery", volume.info().max_region_bytes, 0)?;
    let region = volume.open_region("recovery")?;
    let pages = region.size() / WRITE_BYTES;
    for page in 0..pages {
        let data = vec![page_byte(page); WRITE_BYTES as usize];
        volume.write_region(&region, &data, page * WRITE_BYTES, Mirror::Both)?;
        progress.inc(1);
    }
    copy_cards(&cards, crash)?;
    drop(region);
    drop(volume);
    if let Some(clean) = clean {
        copy_cards(&cards, clean)?;
    }
    Ok(pages)
}

fn copy_cards(cards: &SimulatedCards, to: &Path) -> Result<(), Failure> {
    for role in CardRole::BOTH {
        let file = cards.file(role);
        let name = file.file_name().ok_or("a card file has a name")?;
        copy_sparse(&file, &to.join(name))?;
    }
    Ok(())
}

/// Copies `from` to `to` leaving its holes holes: a card's memory file is 1 GiB, mostly
/// never written.
fn copy_sparse(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::FileExt;
    let source = std::fs::File::open(from)?;
    let target = std::fs::File::create(to)?;
    let length = source.metadata()?.len();
    target.set_len(length)?;
    let seek = |offset: u64, whence| {
        // Safety: lseek on a descriptor this function holds open; no memory is touched.
        let found = unsafe { libc::lseek(source.as_raw_fd(), offset as libc::off_t, whence) };
        u64::try_from(found).ok()
    };
    let mut buffer = vec![0u8; 1 << 20];
    let mut offset = 0;
    while offset < length {
        // No data after `offset` (or no SEEK_DATA here: then everything is copied).
        let Some(start) = seek(offset, libc::SEEK_DATA).or((offset == 0).then_some(0)) else {
            break;
        };
        let end = seek(start, libc::SEEK_HOLE).unwrap_or(length).min(length);
        let mut at = start;
        while at < end {
            let piece = &mut buffer[..(end - at).min(1 << 20) as usize];
            source.read_exact_at(piece, at)?;
            target.write_all_at(piece, at)?;
            at += piece.len() as u64;
        }
        offset = end;
    }
    Ok(())
}

/// A volume opened on a fresh copy of the cards in `image`, and the open's wall time.
struct Opened {
    took: Duration,
    volume: Volume<Card>,
    _directory: tempfile::TempDir,
}

fn timed_open(image: &Path, write_intent: bool) -> Result<Opened, Failure> {
    let directory = scratch_directory()?;
    let cards = golden(directory.path());
    copy_cards(&golden(image), directory.path())?;
    let (primary, mirror) = simulated_cards(&cards)?;
    let options = VolumeOptions {
        write_intent,
        ..VolumeOptions::default()
    };
    let started = Instant::now();
    let volume = Volume::open(primary, mirror, options)?;
    Ok(Opened {
        took: started.elapsed(),
        volume,
        _directory: directory,
    })
}

/// That the repaired copy holds every write of the stream on both cards.
fn check_recovered(volume: &Volume<Card>, pages: u64) -> Result<(), Failure> {
    let report = volume.check(false, |_, _| {})?;
    if !report.is_clean() {
        return Err(format!(
            "the cards differ after the repair: {:?} {:?}",
            report.metadata, report.differences
        )
        .into());
    }
    let region = volume.open_region("recovery")?;
    let mut buffer = vec![0u8; WRITE_BYTES as usize];
    for page in 0..pages {
        for from in [npmu::ReadFrom::Primary, npmu::ReadFrom::Mirror] {
            volume.read_region(&region, &mut buffer, page * WRITE_BYTES, from)?;
            if buffer.iter().any(|&byte| byte != page_byte(page)) {
                return Err(format!("page {page} lost a write in the crash copy").into());
            }
        }
    }
    Ok(())
}

fn recovery_figures(opens: u32, progress: &ProgressBar) -> Result<Vec<Value>, Failure> {
    let images: Vec<tempfile::TempDir> = (0..3)
        .map(|_| scratch_directory())
        .collect::<Result<_, _>>()?;
    let pages = recovery_image(true, images[0].path(), Some(images[1].path()), progress)?;
    recovery_image(false, images[2].path(), None, progress)?;
    let kinds = [
        ("after_crash", true, &images[0]),
        ("clean", true, &images[1]),
        ("after_crash", false, &images[2]),
    ];
    let mut figures = Vec::new();
    for (kind, write_intent, image) in kinds {
        let mut walls = Vec::new();
        let mut repaired = None;
        for open in 0..opens {
            let opened = timed_open(image.path(), write_intent)?;
            walls.push(opened.took);
            repaired = opened.volume.repaired();
            if open == 0 {
                check_recovered(&opened.volume, pages)?;
            }
            progress.inc(1);
        }
        walls.sort_unstable();
        let median = walls[walls.len() / 2];
        let ms = (median.as_secs_f64() * 1e6).round() / 1e3;
        figures.push(
            json!({"name": "recovery_repair_ms", "value": ms, "unit": "ms",
            "kind": kind, "write_intent": write_intent,
            "pages": repaired.map_or(0, |report| report.pages),
            // As `volume info` says it: null for every chunk.
            "dirty_chunks": repaired.map_or(Some(0), |report| report.dirty_chunks),
            "region_pages": pages, "opens": opens, "percentile": 50, "card": "golden",
            "config": npmu_abi::Config::SIM.name,
            "note": "wall time of Volume::open on a copy of both cards' files: taken under \
                the open volume after a stream of 4 KiB writes over every page \
                (after_crash), or after a clean close (clean); pages = region pages the \
                open repaired"}),
        );
    }
    Ok(figures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_patterns_stay_inside_the_region_and_agree_on_both_volumes() {
        for pattern in [Pattern::Sequential, Pattern::Random] {
            let (warm_up, stream) = pattern.offsets(3998, 128, 512);
            assert_eq!((warm_up.len(), stream.len()), (128, 512));
            assert!(warm_up
                .iter()
                .chain(&stream)
                .all(|&offset| offset % WRITE_BYTES == 0 && offset < 3998 * WRITE_BYTES));
            assert_eq!(pattern.offsets(3998, 128, 512), (warm_up, stream));
        }
        let (_, sequential) = Pattern::Sequential.offsets(3998, 128, 512);
        assert_eq!(sequential[..3], [0, 4096, 8192]);
    }

    #[test]
    fn a_sparse_copy_keeps_the_bytes_and_the_holes() {
        use std::os::unix::fs::{FileExt, MetadataExt};
        let directory = tempfile::tempdir().unwrap();
        let (from, to) = (directory.path().join("a.pm"), directory.path().join("b.pm"));
        let file = std::fs::File::create(&from).unwrap();
        file.set_len(64 << 20).unwrap();
        file.write_all_at(b"first", 0).unwrap();
        file.write_all_at(&[7u8; 3 << 20], 32 << 20).unwrap();
        file.write_all_at(b"last", (64 << 20) - 4).unwrap();
        copy_sparse(&from, &to).unwrap();
        assert_eq!(std::fs::read(&from).unwrap(), std::fs::read(&to).unwrap());
        let allocated = std::fs::metadata(&to).unwrap().blocks() * 512;
        assert!(allocated < 16 << 20, "{allocated} bytes allocated");
    }

    #[test]
    fn means_split_recorded_writes_from_the_rest() {
        let samples = Samples {
            cycles: vec![1000, 1400, 1000, 1200],
            recorded: vec![false, true, false, true],
            ..Samples::default()
        };
        let cycles = &samples.cycles;
        assert_eq!(samples.mean(cycles, |_| true), Some(1150.0));
        assert_eq!(samples.mean(cycles, |recorded| recorded), Some(1300.0));
        assert_eq!(samples.mean(cycles, |recorded| !recorded), Some(1000.0));
        assert_eq!(samples.recorded(), 2);
        assert_eq!(Samples::default().mean(&[], |_| true), None);
    }
}
