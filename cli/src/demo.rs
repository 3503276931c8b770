//! `npmu demo`: the whole system on two simulated cards, narrated step by step.
//!
//! The demo runs in two processes. The first formats a volume, uses it, and fails the
//! primary card mid-run; then it exits, and a second process (the same program with
//! `--after-restart`) recovers the volume from the cards' files alone, resyncs the primary
//! and prints the summary. What the first measured reaches the second in a file in the
//! data directory.

use crate::cards::{last_operation_cycles, CardArguments, Device, Simulator};
use crate::error::CliError;
use crate::table::{bytes, duration, Table};
use crate::volume::{bar, state_name};
use clap::Args;
use npmu::intent::CHUNK_PAGES;
use npmu::{
    Card, CardRole, CardState, Error, Mirror, ReadFrom, RegionHandle, Volume, VolumeOptions,
};
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct Arguments {
    /// Directory for the two cards' memory files (primary.pm, mirror.pm). The demo
    /// formats them, so it refuses a directory holding any volume but its own.
    #[arg(long, default_value = "npmu-demo", value_name = "DIR")]
    data_dir: PathBuf,
    /// Write each card's signals as a waveform for GTKWave: FILE.vcd and FILE.mirror.vcd
    /// before the restart, FILE.restarted.vcd and FILE.restarted.mirror.vcd after it.
    #[arg(long, value_name = "FILE.vcd")]
    trace: Option<PathBuf>,
    /// Continue after the restart (how the demo starts its second process).
    #[arg(long, hide = true)]
    after_restart: bool,
}

const VOLUME_NAME: &str = "demo";
const REGION: &str = "inventory";
const REGION_BYTES: u64 = 1 << 20;
/// Where the region sits in the application's pointers.
const BASE_POINTER: u64 = 0x7f00_0000_0000;
/// Blocks of the mirrored writes, and where they go.
const BLOCK_BYTES: usize = 4096;
const BLOCKS: u64 = 64;
const BLOCKS_OFFSET: u64 = 64 << 10;
/// The batch written while the primary fails, and where.
const FAILURE_BLOCKS: u64 = 32;
const FAILURE_AFTER: u64 = 16;
const FAILURE_OFFSET: u64 = BLOCKS_OFFSET + BLOCKS * BLOCK_BYTES as u64;
/// The linked list: its nodes, where they go, and the node changed while degraded.
const NODES: u64 = 100;
const NODE_BYTES: u64 = 64;
const NODES_OFFSET: u64 = 512 << 10;
const CHANGED_NODE: u64 = 42;
const CHANGED_VALUE: u64 = 1_000_000;
/// What the first process hands the second.
const HANDOFF_FILE: &str = "demo-summary.json";

type DemoVolume = Volume<Card>;

pub fn run(arguments: &Arguments) -> Result<ExitCode, CliError> {
    let mut demo = Demo::new(arguments);
    if arguments.after_restart {
        demo.rows = demo.read_handoff()?;
        demo.after_restart()?;
        demo.print_summary();
        return Ok(ExitCode::SUCCESS);
    }
    demo.before_restart()?;
    demo.write_handoff()?;
    restart(arguments)
}

/// Starts the second process and waits for it: the demo's outcome is its outcome.
fn restart(arguments: &Arguments) -> Result<ExitCode, CliError> {
    let program = std::env::current_exe().map_err(|error| CliError::Restart(error.to_string()))?;
    let mut command = std::process::Command::new(program);
    command
        .args(["demo", "--after-restart", "--data-dir"])
        .arg(&arguments.data_dir);
    if let Some(trace) = &arguments.trace {
        command
            .arg("--trace")
            .arg(trace.with_extension("restarted.vcd"));
    }
    let status = command
        .status()
        .map_err(|error| CliError::Restart(error.to_string()))?;
    if status.success() {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(CliError::Restart(format!("it exited with {status}")))
    }
}

struct Demo {
    cards: CardArguments,
    rows: Vec<[String; 3]>,
    step: u32,
}

impl Demo {
    fn new(arguments: &Arguments) -> Self {
        Self {
            cards: CardArguments {
                device: Device::Simulated,
                data_dir: arguments.data_dir.clone(),
                simulator: Simulator::Verilator,
                trace: arguments.trace.clone(),
            },
            rows: Vec::new(),
            // The first process narrated steps 1 to 6.
            step: if arguments.after_restart { 6 } else { 0 },
        }
    }

    fn before_restart(&mut self) -> Result<(), CliError> {
        println!(
            "npmu demo: a mirrored volume of two simulated npmu cards, step by step.\n\
             The cards' persistent memory lives in {}/ (primary.pm and mirror.pm).",
            self.cards.data_dir.display()
        );
        let volume = self.format()?;
        let region = self.create_and_open(&volume)?;
        self.mirrored_writes_and_reads(&volume, &region)?;
        self.linked_list(&volume, &region)?;
        self.primary_fails(&volume, &region)?;
        self.narrate(
            "The process exits",
            "Everything in memory is dropped: the open region, the volume, both simulated \
             cards. A new process starts, knowing only the data directory.",
        );
        drop(region);
        drop(volume);
        Ok(())
    }

    fn after_restart(&mut self) -> Result<(), CliError> {
        let (volume, region) = self.recover()?;
        self.resync(&volume, &region)?;
        // As this program was started, so that the commands work when pasted.
        let program = std::env::args().next().unwrap_or_else(|| "npmu".into());
        println!(
            "\nThe cards' memory stays in {dir}/. Look at it with:\n  \
             {program} volume info --data-dir {dir}\n  \
             {program} volume check --data-dir {dir}\n  \
             {program} volume read {REGION} --data-dir {dir} --length 64 | od -A x -t x1",
            dir = self.cards.data_dir.display()
        );
        Ok(())
    }

    /// Step 1: start the cards and format a volume on them.
    fn format(&mut self) -> Result<DemoVolume, CliError> {
        self.narrate(
            "Start two cards and format a volume",
            "Each card is the network interface's RTL (Verilog from RustHDL) under \
             Verilator, clocked cycle by cycle at 250 MHz, its persistent memory a file. \
             The host library, as persistent memory manager, writes the volume's metadata \
             to both cards in checksummed copies.",
        );
        let started = Instant::now();
        let (primary, mirror) = self.cards.open()?;
        let volume = match Volume::format(
            primary,
            mirror,
            VOLUME_NAME,
            false,
            VolumeOptions::default(),
        ) {
            Err(Error::AlreadyFormatted { name, .. }) if name == VOLUME_NAME => {
                self.say("the cards hold an earlier run's demo volume: formatting over it");
                let (primary, mirror) = self.cards.open()?;
                Volume::format(primary, mirror, VOLUME_NAME, true, VolumeOptions::default())?
            }
            Err(error @ (Error::AlreadyFormatted { .. } | Error::Metadata { .. })) => {
                return Err(CliError::refused(
                    format!("--data-dir {}", self.cards.data_dir.display()),
                    format!(
                        "{error}; the demo formats its cards, so give it a directory of its own"
                    ),
                ))
            }
            formatted => formatted?,
        };
        let took = started.elapsed();
        let info = volume.info();
        self.say(&format!(
            "volume {VOLUME_NAME:?}: {} data pages of {} on each card, formatted in {}",
            info.data_pages,
            bytes(info.page_bytes),
            duration(took)
        ));
        self.row(
            "format",
            format!(
                "2 cards, {} of data space each",
                bytes(info.data_pages * info.page_bytes)
            ),
            duration(took),
        );
        Ok(volume)
    }

    /// Step 2: fragment the free space, then create and open the region across the hole.
    fn create_and_open(&mut self, volume: &DemoVolume) -> Result<RegionHandle<Card>, CliError> {
        self.narrate(
            &format!("Create and open region {REGION:?}"),
            "Two small regions are created and the first deleted, leaving a hole. The new \
             region fills the hole first, so its pages are scattered. Opening it gives it an \
             address context with a fresh key on each card, whose page table maps those \
             pages to one contiguous network address range.",
        );
        volume.create_region("journal", 64 << 10, 0)?;
        volume.create_region("index", 64 << 10, 0)?;
        volume.delete_region("journal")?;
        let started = Instant::now();
        volume.create_region(REGION, REGION_BYTES, BASE_POINTER)?;
        let created = started.elapsed();
        let started = Instant::now();
        let region = volume.open_region(REGION)?;
        let opened = started.elapsed();
        let attributes = volume.read_attributes(REGION)?;
        let pages = attributes.get_u64("pages")?;
        let extents = attributes.get_u32("extents")?;
        self.say(&format!(
            "{} at base pointer {BASE_POINTER:#x}: {pages} pages in {extents} pieces of \
             physical memory; created in {}, opened in {}",
            bytes(REGION_BYTES),
            duration(created),
            duration(opened)
        ));
        for role in CardRole::BOTH {
            let (Some(key), Some(network)) =
                (region.key(role), region.network_address(role, BASE_POINTER))
            else {
                continue;
            };
            self.say(&format!(
                "{role} card: context {}, key {key:#010x}, network addresses {network:#x} \
                 to {:#x}",
                region.context(),
                network + REGION_BYTES - 1
            ));
        }
        self.row(
            "create + open region",
            format!("{}, {pages} pages in {extents} pieces", bytes(REGION_BYTES)),
            format!("{} + {}", duration(created), duration(opened)),
        );
        Ok(region)
    }

    /// Step 3: writes that go to both cards at once, and reads, with their latency.
    fn mirrored_writes_and_reads(
        &mut self,
        volume: &DemoVolume,
        region: &RegionHandle<Card>,
    ) -> Result<(), CliError> {
        self.narrate(
            "Mirrored writes and reads",
            &format!(
                "{BLOCKS} blocks of {} are written, each to both cards at once: the library \
                 puts one descriptor on each card's queue, and each card checks the key, the \
                 initiator, the permission and the bounds, translates the address, and moves \
                 the bytes by DMA. Then they are read back, from either card, and compared. \
                 Latencies are medians, in the card's clocks (what the hardware would take at \
                 250 MHz) and in wall time (what the simulation took).",
                bytes(BLOCK_BYTES as u64)
            ),
        );
        let mut writes = Latencies::default();
        for block in 0..BLOCKS {
            let data = pattern(block, 1);
            let started = Instant::now();
            volume.write_region(
                region,
                &data,
                block_pointer(BLOCKS_OFFSET, block),
                Mirror::Both,
            )?;
            writes.add(started.elapsed(), slowest_card_cycles(volume));
        }
        let mut reads = Latencies::default();
        let mut buffer = vec![0u8; BLOCK_BYTES];
        for block in 0..BLOCKS {
            let started = Instant::now();
            volume.read_region(
                region,
                &mut buffer,
                block_pointer(BLOCKS_OFFSET, block),
                ReadFrom::Any,
            )?;
            reads.add(started.elapsed(), slowest_card_cycles(volume));
            check(buffer == pattern(block, 1), "a block read back differs")?;
        }
        let written = BLOCKS * BLOCK_BYTES as u64;
        self.say(&format!(
            "{} written to each card and read back identical",
            bytes(written)
        ));
        self.say(&format!("write to both cards: {}", writes.describe()));
        self.say(&format!("read from one card: {}", reads.describe()));
        self.row(
            &format!("mirrored write, {}", bytes(BLOCK_BYTES as u64)),
            format!("{BLOCKS} writes, {} on each card", bytes(written)),
            writes.describe(),
        );
        self.row(
            &format!("read, {}", bytes(BLOCK_BYTES as u64)),
            format!("{BLOCKS} reads, all identical"),
            reads.describe(),
        );
        Ok(())
    }

    /// Step 4: a linked list whose links are the application's own pointers.
    fn linked_list(
        &mut self,
        volume: &DemoVolume,
        region: &RegionHandle<Card>,
    ) -> Result<(), CliError> {
        self.narrate(
            "A structure of pointers",
            &format!(
                "A linked list of {NODES} records is written in shuffled order. Each record's \
                 `next` field is a plain pointer in the region's address space (base pointer \
                 {BASE_POINTER:#x} plus an offset), and the region's first word points at \
                 the head. The list is then followed from the base pointer, one read a record, \
                 with no translation by the application."
            ),
        );
        for node in 0..NODES {
            let record = node_record(node, node_value(node));
            volume.write_region(region, &record, node_pointer(node), Mirror::Both)?;
        }
        volume.write_region(
            region,
            &node_pointer(0).to_le_bytes(),
            BASE_POINTER,
            Mirror::Both,
        )?;
        let (count, sum, took) = follow_list(volume, region)?;
        check(count == NODES, "the list has lost records")?;
        check(sum == expected_sum(false), "the list's values differ")?;
        self.say(&format!(
            "followed {count} records from the base pointer, values summing to {sum}, in {} \
             ({} a hop)",
            duration(took),
            duration(took / count as u32)
        ));
        self.row(
            "linked list followed",
            format!("{count} records, sum {sum}"),
            format!("{} simulated a hop", duration(took / count as u32)),
        );
        Ok(())
    }

    /// Step 5: the primary drops off the bus halfway through a batch of writes.
    fn primary_fails(
        &mut self,
        volume: &DemoVolume,
        region: &RegionHandle<Card>,
    ) -> Result<(), CliError> {
        self.narrate(
            "The primary card fails mid-run",
            &format!(
                "{FAILURE_BLOCKS} more blocks are written. After {FAILURE_AFTER}, the primary \
                 card stops answering, as a card pulled from its slot would. The library \
                 notices, records on the mirror that the primary is stale, and goes on with \
                 the mirror alone; the mirror's write-intent record keeps the chunks \
                 ({CHUNK_PAGES} pages each) written meanwhile, which are what the primary \
                 misses. One record of the list is changed meanwhile."
            ),
        );
        let mut degraded = 0;
        for block in 0..FAILURE_BLOCKS {
            if block == FAILURE_AFTER {
                volume.inspect_card(CardRole::Primary, |card| card.fail());
                self.say(&format!("after block {block}: the primary card fails"));
            }
            let data = pattern(block, 2);
            let pointer = block_pointer(FAILURE_OFFSET, block);
            match volume.write_region(region, &data, pointer, Mirror::Both) {
                Ok(()) => {}
                Err(error @ Error::Degraded { .. }) => {
                    degraded += 1;
                    self.say(&format!("block {block}: the library reports: {error}"));
                }
                Err(error) => return Err(error.into()),
            }
        }
        let changed = node_record(CHANGED_NODE, CHANGED_VALUE);
        volume.write_region(region, &changed, node_pointer(CHANGED_NODE), Mirror::Both)?;
        let npmu::PerCard { primary, mirror } = volume.status();
        check(
            primary.state == CardState::Stale,
            "the primary is not marked stale",
        )?;
        check(degraded == 1, "the failure was not reported once")?;
        self.say(&format!(
            "primary: {}; mirror: {}",
            state_name(primary.state),
            state_name(mirror.state)
        ));
        let started = Instant::now();
        let mut buffer = vec![0u8; BLOCK_BYTES];
        for block in 0..FAILURE_BLOCKS {
            let pointer = block_pointer(FAILURE_OFFSET, block);
            volume.read_region(region, &mut buffer, pointer, ReadFrom::Any)?;
            check(
                buffer == pattern(block, 2),
                "a block read from the mirror differs",
            )?;
        }
        let took = started.elapsed();
        self.say(&format!(
            "all {FAILURE_BLOCKS} blocks read back from the mirror, identical, in {}",
            duration(took)
        ));
        let refused = volume.read_region(region, &mut buffer, BASE_POINTER, ReadFrom::Primary);
        if let Err(error) = refused {
            self.say(&format!(
                "a read from the primary alone is refused: {error}"
            ));
        }
        self.row(
            "primary fails mid-batch",
            format!(
                "{FAILURE_AFTER} writes to both, {} to the mirror alone",
                FAILURE_BLOCKS - FAILURE_AFTER
            ),
            "1 write reported degraded".into(),
        );
        self.row(
            "reads while degraded",
            format!("{FAILURE_BLOCKS} blocks from the mirror, identical"),
            duration(took),
        );
        Ok(())
    }

    /// Step 6, in the second process: the volume from the cards' metadata alone.
    fn recover(&mut self) -> Result<(DemoVolume, RegionHandle<Card>), CliError> {
        self.narrate(
            "A new process recovers the volume",
            "Both cards start again from their files; the primary answers again, so the \
             open needs no degraded mode. The library reads the metadata copies on both \
             cards and takes the newest: the mirror's, which says the primary missed \
             writes, so the primary stays out of use until it is resynced.",
        );
        let started = Instant::now();
        let (primary, mirror) = self.cards.open()?;
        let volume = Volume::open(primary, mirror, VolumeOptions::default())?;
        let took = started.elapsed();
        let info = volume.info();
        let npmu::PerCard { primary, mirror } = volume.status();
        self.say(&format!(
            "volume {:?} recovered in {}: regions {:?}; primary {}, mirror {}",
            info.name,
            duration(took),
            volume.list_regions(),
            state_name(primary.state),
            state_name(mirror.state)
        ));
        check(
            primary.state == CardState::Stale,
            "the primary is not stale after the restart",
        )?;
        let region = volume.open_region(REGION)?;
        let (count, sum, _) = follow_list(&volume, &region)?;
        check(count == NODES, "the list has lost records")?;
        check(
            sum == expected_sum(true),
            "the change made while degraded is lost",
        )?;
        self.say(&format!(
            "the list followed again: {count} records, sum {sum}, with the change made \
             while the primary was down"
        ));
        self.row(
            "restart and recovery",
            "metadata from the cards, primary stale".into(),
            duration(took),
        );
        Ok((volume, region))
    }

    /// Step 8: the primary brought up to date from the mirror, then both halves compared.
    fn resync(&mut self, volume: &DemoVolume, region: &RegionHandle<Card>) -> Result<(), CliError> {
        self.narrate(
            "Resync",
            &format!(
                "The primary missed {} writes while it was failed. The resync copies from \
                 the mirror only the region pages in the chunks the mirror's write-intent \
                 record names: those the missed writes and the list's change touched, and \
                 those written just before the failure, whose marks were not yet cleared. \
                 Not every page of every region: a window at a time, while the volume stays \
                 usable. Then the whole region is read from each card alone and compared \
                 byte by byte.",
                FAILURE_BLOCKS - FAILURE_AFTER
            ),
        );
        let mut region_pages = 0;
        for name in volume.list_regions() {
            region_pages += volume.read_attributes(&name)?.get_u64("pages")?;
        }
        let started = Instant::now();
        let progress = bar(0, "resyncing the primary");
        let report = volume.resync(|done, total| {
            progress.set_length(total);
            progress.set_position(done);
        })?;
        progress.finish_and_clear();
        let took = started.elapsed();
        let rate = report.bytes as f64 / took.as_secs_f64() / f64::from(1 << 20);
        check(!report.full, "the resync rebuilt the primary in full")?;
        check(
            report.pages < region_pages,
            "the resync copied every region page, not only the dirty chunks",
        )?;
        self.say(&format!(
            "{} pages ({}) of the regions' {region_pages} copied, only those in dirty \
             chunks, in {} ({rate:.1} MiB/s of simulated DMA)",
            report.pages,
            bytes(report.bytes),
            duration(took)
        ));
        let mut halves = [
            vec![0u8; REGION_BYTES as usize],
            vec![0u8; REGION_BYTES as usize],
        ];
        for (half, from) in halves.iter_mut().zip([ReadFrom::Primary, ReadFrom::Mirror]) {
            volume.read_region(region, half, BASE_POINTER, from)?;
        }
        check(halves[0] == halves[1], "the halves differ after the resync")?;
        let npmu::PerCard { primary, mirror } = volume.status();
        self.say(&format!(
            "the two cards' {} are identical; primary {}, mirror {}",
            bytes(REGION_BYTES),
            state_name(primary.state),
            state_name(mirror.state)
        ));
        self.row(
            "resync of the primary",
            format!(
                "{} of {region_pages} pages (dirty chunks), {}; halves identical",
                report.pages,
                bytes(report.bytes)
            ),
            duration(took),
        );
        for role in CardRole::BOTH {
            if let Some(Some(clocks)) =
                volume.inspect_card(role, |card| card.simulated().map(|card| card.clocks()))
            {
                self.say(&format!(
                    "the {role} card ran {clocks} clocks in this process ({} at 250 MHz)",
                    duration(Duration::from_nanos(clocks * 4))
                ));
            }
        }
        Ok(())
    }

    fn narrate(&mut self, title: &str, explanation: &str) {
        self.step += 1;
        println!("\n{}. {title}", self.step);
        for line in wrap(explanation, 88) {
            println!("   {line}");
        }
    }

    fn say(&self, text: &str) {
        for (index, line) in wrap(text, 85).iter().enumerate() {
            let lead = if index == 0 { "->" } else { "  " };
            println!("   {lead} {line}");
        }
    }

    fn row(&mut self, step: &str, outcome: String, figures: String) {
        self.rows.push([step.to_owned(), outcome, figures]);
    }

    fn print_summary(&self) {
        println!("\nSummary");
        let mut table = Table::new(["step", "outcome", "figures"]);
        for row in &self.rows {
            table.row(row.clone());
        }
        table.print();
    }

    fn handoff_path(&self) -> PathBuf {
        self.cards.data_dir.join(HANDOFF_FILE)
    }

    fn write_handoff(&self) -> Result<(), CliError> {
        let path = self.handoff_path();
        std::fs::write(&path, json!(self.rows).to_string())
            .map_err(|source| CliError::File { path, source })
    }

    fn read_handoff(&self) -> Result<Vec<[String; 3]>, CliError> {
        let path = self.handoff_path();
        let text = std::fs::read_to_string(&path).map_err(|source| CliError::File {
            path: path.clone(),
            source,
        })?;
        // Read once: a later run must not take an old summary for its own.
        std::fs::remove_file(&path).map_err(|source| CliError::File {
            path: path.clone(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|error| {
            CliError::refused(
                path.display().to_string(),
                format!("not the demo's summary: {error}"),
            )
        })
    }
}

/// Wall time and card clocks of one kind of operation.
#[derive(Default)]
struct Latencies {
    wall: Vec<Duration>,
    cycles: Vec<u64>,
}

impl Latencies {
    fn add(&mut self, wall: Duration, cycles: Option<u64>) {
        self.wall.push(wall);
        self.cycles.extend(cycles);
    }

    /// The medians: card clocks with the time they take at 250 MHz, and the wall time the
    /// simulation took.
    fn describe(&mut self) -> String {
        self.wall.sort_unstable();
        self.cycles.sort_unstable();
        let wall = self.wall[self.wall.len() / 2];
        match self.cycles.get(self.cycles.len() / 2) {
            Some(&cycles) => format!(
                "{cycles} clocks = {} on the card; {} simulated",
                duration(Duration::from_nanos(cycles * 4)),
                duration(wall)
            ),
            None => format!("{} simulated", duration(wall)),
        }
    }
}

/// Clocks of the last operation on the slower card that did it.
fn slowest_card_cycles(volume: &DemoVolume) -> Option<u64> {
    CardRole::BOTH
        .iter()
        .filter_map(|&role| volume.inspect_card(role, last_operation_cycles).flatten())
        .max()
}

fn block_pointer(offset: u64, block: u64) -> u64 {
    BASE_POINTER + offset + block * BLOCK_BYTES as u64
}

/// Bytes that differ from block to block and from batch to batch.
fn pattern(block: u64, batch: u64) -> Vec<u8> {
    (0..BLOCK_BYTES as u64)
        .map(|index| {
            (index.wrapping_mul(31) ^ block.wrapping_mul(7) ^ batch.wrapping_mul(101)) as u8
        })
        .collect()
}

/// Record `node` sits in slot `node * 37 % NODES`: the list's order is not the memory's.
fn node_pointer(node: u64) -> u64 {
    BASE_POINTER + NODES_OFFSET + (node * 37 % NODES) * NODE_BYTES
}

fn node_value(node: u64) -> u64 {
    node * node + 1
}

fn expected_sum(changed: bool) -> u64 {
    let sum: u64 = (0..NODES).map(node_value).sum();
    if changed {
        sum - node_value(CHANGED_NODE) + CHANGED_VALUE
    } else {
        sum
    }
}

/// `next` (0 ends the list), `value`, then a name.
fn node_record(node: u64, value: u64) -> Vec<u8> {
    let next = if node + 1 < NODES {
        node_pointer(node + 1)
    } else {
        0
    };
    let mut record = Vec::with_capacity(NODE_BYTES as usize);
    record.extend(next.to_le_bytes());
    record.extend(value.to_le_bytes());
    let mut name = format!("record {node}").into_bytes();
    name.resize(NODE_BYTES as usize - 16, 0);
    record.extend(name);
    record
}

/// Follows the list from the head pointer in the region's first word: records, sum of
/// values, time taken.
fn follow_list(
    volume: &DemoVolume,
    region: &RegionHandle<Card>,
) -> Result<(u64, u64, Duration), CliError> {
    let started = Instant::now();
    let mut word = [0u8; 8];
    volume.read_region(region, &mut word, BASE_POINTER, ReadFrom::Any)?;
    let mut pointer = u64::from_le_bytes(word);
    let (mut count, mut sum) = (0, 0);
    let mut record = [0u8; 16];
    while pointer != 0 {
        check(count < NODES, "the list loops")?;
        // The pointer is used as stored: the region answers at its base pointer.
        volume.read_region(region, &mut record, pointer, ReadFrom::Any)?;
        pointer = u64::from_le_bytes(record[..8].try_into().expect("8 bytes"));
        sum += u64::from_le_bytes(record[8..].try_into().expect("8 bytes"));
        count += 1;
    }
    Ok((count, sum, started.elapsed()))
}

fn check(holds: bool, what: &str) -> Result<(), CliError> {
    if holds {
        Ok(())
    } else {
        Err(CliError::DemoCheck(what.to_owned()))
    }
}

/// Words of `text` in lines of at most `width` characters.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let line = lines.last_mut().expect("one line at least");
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(word.to_owned());
        } else {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_laid_out_within_the_region_without_overlap() {
        let mut slots: Vec<u64> = (0..NODES).map(node_pointer).collect();
        slots.sort_unstable();
        slots.dedup();
        assert_eq!(slots.len() as u64, NODES);
        assert!(slots[0] >= BASE_POINTER + FAILURE_OFFSET + FAILURE_BLOCKS * BLOCK_BYTES as u64);
        assert!(slots[NODES as usize - 1] + NODE_BYTES <= BASE_POINTER + REGION_BYTES);
    }

    #[test]
    fn text_wraps_at_word_boundaries() {
        assert_eq!(wrap("one two three four", 9), ["one two", "three", "four"]);
    }

    #[test]
    fn each_record_points_at_the_next() {
        let record = node_record(3, 10);
        assert_eq!(record.len() as u64, NODE_BYTES);
        assert_eq!(record[..8], node_pointer(4).to_le_bytes());
        assert_eq!(node_record(NODES - 1, 0)[..8], [0; 8]);
    }
}
