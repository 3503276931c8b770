//! Crash consistency: a child process runs region verbs (create, write, delete, open,
//! close) on a volume of two simulated cards and is killed with SIGKILL at a random point;
//! the parent then opens the volume and checks that its metadata is whole (no half region,
//! no page leaked or owned twice, the two cards' copies at most one commit apart, none
//! older than before) and that everything the child was told had succeeded is there, on
//! both cards, which are both in sync.
//!
//! The child is this test binary run again with [`CHILD_DIRECTORY`] set. It prints a line
//! before each operation and one once it returned: only the second acknowledges. The parent
//! keeps a model of the volume (each region's size, base pointer and bytes on each card),
//! applies what was acknowledged, and lets the one operation in flight at the kill have
//! happened or not, never half (a write in flight may leave each of its bytes old or new).
//! After the recovery the two cards agree byte for byte: the open repaired what the write
//! intent recorded as dirty, and `Volume::check` finds no difference in the metadata or in
//! any region. In one trial in four the child also makes a card fail at a random moment and
//! goes on with the other (its writes acknowledged degraded); the parent then finds that
//! card stale (or, if the kill came before the failure was recorded, both in sync and
//! repaired), resyncs it, and checks the same. Trials follow one another on the same cards,
//! so the volume crashes again and again, now and then on fresh cards. Half the time the
//! parent checks a copy of the cards, so the next child finds them as the killed one left
//! them and does the recovery itself (and may be killed during it). The simulated cards
//! live in the child, so the kill stops them too, mid-clock; their memory files keep what
//! they had written.
//!
//! 200 trials, two at a time on cards of their own, the first three quarters on iCE40 cards
//! and the rest on sim cards. `NPMU_SEED` (the run's seed, random by default, printed at the
//! start and on failure), `NPMU_CRASH_TRIALS` and `NPMU_CRASH_CONFIG` (`ice40` or `sim` for every trial)
//! override that. A seed replays the same plans (operations drawn from the same numbers,
//! kills after the same line and delay), but a kill lands where that run's timing puts it,
//! so a failure may take a few runs to come back; its cards are kept for a post-mortem.

use npmu::cards::{simulated_cards, SimulatedCards};
use npmu::layout::Geometry;
use npmu::metadata::{self, Copy, MetadataError, VolumeRecord};
use npmu::{Card, CardRole, CardState, Error, Mirror, PerCard, ReadFrom, Volume, VolumeOptions};
use npmu_abi::Config;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, Write as _};
use std::os::unix::fs::FileExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Set for the child: the directory of its cards.
const CHILD_DIRECTORY: &str = "NPMU_CRASH_CHILD_DIRECTORY";
const CHILD_SEED: &str = "NPMU_CRASH_CHILD_SEED";
const CHILD_OPERATIONS: &str = "NPMU_CRASH_CHILD_OPERATIONS";
/// Set if the child formats the cards rather than opening them.
const CHILD_FORMAT: &str = "NPMU_CRASH_CHILD_FORMAT";
/// Set if the child makes a card fail: `primary` or `mirror`, a space, microseconds after
/// the volume opened.
const CHILD_FAIL: &str = "NPMU_CRASH_CHILD_FAIL";
const CONFIG: &str = "NPMU_CRASH_CONFIG";
const TRIALS: &str = "NPMU_CRASH_TRIALS";
const DEFAULT_TRIALS: u64 = 200;
/// Starts every line of the child's log, which shares stdout with the test harness.
const MARK: &str = "npmu-crash: ";
/// How long the child may go without a line before the parent calls it hung.
const HUNG: Duration = Duration::from_secs(60);
/// One trial in this many starts on fresh cards.
const FRESH_EVERY: u64 = 20;
/// Trials run this many at a time, each stream on its own cards.
const STREAMS: u64 = 2;
/// Most operations of one child.
const MAX_OPERATIONS: usize = 40;
/// One trial in this many makes a card fail.
const FAIL_EVERY: u32 = 4;

/// The names regions take, among them the longest a name can be.
const NAMES: [&str; 8] = [
    "a",
    "log",
    "journal",
    "table-0",
    "table-1",
    "index",
    "blob",
    "n23456789-123456789-123456789-123456789-123456789-123456789-123",
];

/// The configuration `NPMU_CRASH_CONFIG` names, if it is set.
fn configured() -> Option<Config> {
    let name = std::env::var(CONFIG).ok()?;
    Some(Config::by_name(&name).expect("NPMU_CRASH_CONFIG names a configuration"))
}

fn cards(directory: &Path, config: &Config) -> npmu::Result<(Card, Card)> {
    let mut cards = SimulatedCards::in_directory(directory);
    cards.card.config = *config;
    Ok(simulated_cards(&cards)?)
}

fn geometry(config: &Config) -> Geometry {
    Geometry::of(
        CardRole::Primary,
        &npmu_driver::Capabilities::of_config(config),
    )
    .expect("a volume fits the card")
}

/// The bytes a write tagged `tag` puts down: unique to the write, so nothing else matches.
fn pattern(tag: u64, length: usize) -> Vec<u8> {
    let mut state = tag;
    let mut bytes = Vec::with_capacity(length + 8);
    while bytes.len() < length {
        // splitmix64
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        bytes.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    bytes.truncate(length);
    bytes
}

/// What the child does, as it logs it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Op {
    Format,
    OpenVolume,
    Create {
        name: String,
        size: u64,
        base: u64,
    },
    Delete {
        name: String,
    },
    OpenRegion {
        name: String,
    },
    Close {
        name: String,
    },
    Write {
        name: String,
        offset: u64,
        length: u64,
        tag: u64,
    },
}

impl Op {
    fn line(&self) -> String {
        match self {
            Op::Format => "format".into(),
            Op::OpenVolume => "open-volume".into(),
            Op::Create { name, size, base } => format!("create {name} {size} {base}"),
            Op::Delete { name } => format!("delete {name}"),
            Op::OpenRegion { name } => format!("open {name}"),
            Op::Close { name } => format!("close {name}"),
            Op::Write {
                name,
                offset,
                length,
                tag,
            } => format!("write {name} {offset} {length} {tag}"),
        }
    }

    fn parse(line: &str) -> Op {
        let words: Vec<&str> = line.split(' ').collect();
        let number = |index: usize| -> u64 { words[index].parse().expect("a number") };
        let name = || words[1].to_owned();
        match words[0] {
            "format" => Op::Format,
            "open-volume" => Op::OpenVolume,
            "create" => Op::Create {
                name: name(),
                size: number(2),
                base: number(3),
            },
            "delete" => Op::Delete { name: name() },
            "open" => Op::OpenRegion { name: name() },
            "close" => Op::Close { name: name() },
            "write" => Op::Write {
                name: name(),
                offset: number(2),
                length: number(3),
                tag: number(4),
            },
            other => panic!("unknown operation {other:?} in the child's log"),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Op::Format => "format",
            Op::OpenVolume => "open-volume",
            Op::Create { .. } => "create",
            Op::Delete { .. } => "delete",
            Op::OpenRegion { .. } => "open",
            Op::Close { .. } => "close",
            Op::Write { .. } => "write",
        }
    }
}

// ---------------------------------------------------------------------------------------
// The child.

fn say(line: &str) {
    // One write of a whole line: a pipe keeps it whole, and the kill cannot split it.
    let mut out = std::io::stdout().lock();
    out.write_all(format!("{MARK}{line}\n").as_bytes())
        .and_then(|()| out.flush())
        .expect("the log is written");
}

#[test]
#[ignore = "the child process of acknowledged_operations_survive_sigkill_at_random_points"]
fn crash_child() {
    let Ok(directory) = std::env::var(CHILD_DIRECTORY) else {
        return; // run by hand without a parent: nothing to do
    };
    let number = |name: &str| -> u64 {
        std::env::var(name)
            .expect("set by the parent")
            .parse()
            .expect("a number")
    };
    let mut random = StdRng::seed_from_u64(number(CHILD_SEED));
    let operations = number(CHILD_OPERATIONS);
    let config = configured().expect("set by the parent");
    let page_bytes = config.page_bytes();
    say("ready");
    let (primary, mirror) =
        cards(Path::new(&directory), &config).expect("the simulated cards start");
    // Shared, so that a thread of the child's own can make one fail under the volume.
    let shared = [Arc::new(primary), Arc::new(mirror)];
    let [primary, mirror] = shared.clone();
    let volume = if std::env::var_os(CHILD_FORMAT).is_some() {
        say(&format!("begin {}", Op::Format.line()));
        Volume::format(primary, mirror, "crash", false, VolumeOptions::default())
    } else {
        say(&format!("begin {}", Op::OpenVolume.line()));
        Volume::open(primary, mirror, VolumeOptions::default())
    }
    .expect("the volume formats or opens");
    say("ok");
    let in_sync = volume
        .status()
        .values()
        .all(|card| card.state == CardState::InSync);
    if let (Ok(failure), true) = (std::env::var(CHILD_FAIL), in_sync) {
        let (role, delay) = failure.split_once(' ').expect("a role and a delay");
        let (index, role) = match role {
            "primary" => (0, CardRole::Primary),
            _ => (1, CardRole::Mirror),
        };
        let card = Arc::clone(&shared[index]);
        let delay = Duration::from_micros(delay.parse().expect("microseconds"));
        std::thread::spawn(move || {
            std::thread::sleep(delay);
            assert!(card.fail(), "a simulated card fails");
            say(&format!("failed {role}"));
        });
    }
    let data_pages = volume.info().data_pages;
    let mut regions: BTreeMap<String, u64> = BTreeMap::new();
    let mut seen = String::from("seen");
    for name in volume.list_regions() {
        let attributes = volume.read_attributes(&name).expect("a listed region");
        let size = attributes.get_u64("size").expect("a size");
        let base = attributes.get_u64("base_pointer").expect("a base pointer");
        write!(seen, " {name}:{size}:{base}").expect("a string");
        regions.insert(name, size);
    }
    say(&seen);
    let mut open = BTreeMap::new();
    for _ in 0..operations {
        let closed: Vec<&String> = regions.keys().filter(|n| !open.contains_key(*n)).collect();
        let absent: Vec<&str> = NAMES
            .into_iter()
            .filter(|n| !regions.contains_key(*n))
            .collect();
        let op = loop {
            let choice = random.gen_range(0..100);
            if choice < 25 && !absent.is_empty() {
                let size = match random.gen_range(0..10) {
                    0..=2 => random.gen_range(1..=page_bytes),
                    3..=6 => random.gen_range(1..=4 * page_bytes),
                    _ => random.gen_range(1..=(data_pages / 2).min(64) * page_bytes),
                };
                let top = u64::MAX - (size - 1);
                let base = match random.gen_range(0..8) {
                    0 => 0,
                    1 => top,
                    2..=4 => random.gen_range(0..=top) & !0xfff,
                    _ => random.gen_range(0..=top),
                };
                let name = absent[random.gen_range(0..absent.len())].to_owned();
                break Op::Create { name, size, base };
            } else if (25..40).contains(&choice) && !closed.is_empty() {
                let name = closed[random.gen_range(0..closed.len())].clone();
                break Op::Delete { name };
            } else if (40..55).contains(&choice) && !closed.is_empty() {
                let name = closed[random.gen_range(0..closed.len())].clone();
                break Op::OpenRegion { name };
            } else if (55..65).contains(&choice) && !open.is_empty() {
                let names: Vec<&String> = open.keys().collect();
                let name = names[random.gen_range(0..names.len())].clone();
                break Op::Close { name };
            } else if choice >= 65 && !open.is_empty() {
                let names: Vec<&String> = open.keys().collect();
                let name = names[random.gen_range(0..names.len())].clone();
                let size = regions[&name];
                let offset = random.gen_range(0..size);
                let longest = match random.gen_range(0..10) {
                    0..=3 => 64,
                    4..=7 => 2 * page_bytes,
                    _ => 20 << 10, // longer than an iCE40 card's largest request
                };
                let length = random.gen_range(1..=longest).min(size - offset);
                let tag = random.gen();
                break Op::Write {
                    name,
                    offset,
                    length,
                    tag,
                };
            }
        };
        say(&format!("begin {}", op.line()));
        let outcome = match &op {
            Op::Create { name, size, base } => {
                let created = volume.create_region(name, *size, *base);
                if created.is_ok() {
                    regions.insert(name.clone(), *size);
                }
                created
            }
            Op::Delete { name } => {
                let deleted = volume.delete_region(name);
                if deleted.is_ok() {
                    regions.remove(name);
                }
                deleted
            }
            Op::OpenRegion { name } => volume.open_region(name).map(|handle| {
                open.insert(name.clone(), handle);
            }),
            Op::Close { name } => volume.close_region(open.remove(name).expect("open")),
            Op::Write {
                name,
                offset,
                length,
                tag,
            } => {
                let handle = &open[name];
                let data = pattern(*tag, *length as usize);
                volume.write_region(handle, &data, handle.base_pointer() + offset, Mirror::Both)
            }
            Op::Format | Op::OpenVolume => unreachable!(),
        };
        match outcome {
            // Degraded: done on the survivor, which now holds the only current copy.
            Ok(()) | Err(Error::Degraded { .. }) => say("ok"),
            Err(
                error @ (Error::NoSpace { .. }
                | Error::MetadataFull { .. }
                | Error::NoFreeContext
                | Error::NoFreeEntries { .. }),
            ) => say(&format!("refused {error}")),
            Err(error) => panic!("{} failed: {error}", op.line()),
        }
    }
    say("done");
}

// ---------------------------------------------------------------------------------------
// The parent.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Acknowledged,
    Refused,
    InFlight,
}

/// What the child's log says.
#[derive(Debug, Default)]
struct Log {
    /// The regions the child found on opening the volume: name, size, base pointer.
    seen: Option<Vec<(String, u64, u64)>>,
    steps: Vec<(Op, Outcome)>,
    done: bool,
    /// The card the child made fail, if it did before the kill.
    failed: Option<CardRole>,
}

impl Log {
    fn parse(lines: &[String]) -> Log {
        let mut log = Log::default();
        for line in lines {
            let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
            match word {
                "ready" => {}
                "begin" => {
                    if let Some((op, Outcome::InFlight)) = log.steps.last() {
                        panic!("{op:?} began before the previous one ended");
                    }
                    log.steps.push((Op::parse(rest), Outcome::InFlight));
                }
                "ok" | "refused" => match log.steps.last_mut() {
                    Some((_, outcome @ Outcome::InFlight)) => {
                        *outcome = if word == "ok" {
                            Outcome::Acknowledged
                        } else {
                            Outcome::Refused
                        }
                    }
                    _ => panic!("{line:?} follows no operation"),
                },
                "seen" => {
                    log.seen = Some(
                        rest.split(' ')
                            .filter(|word| !word.is_empty())
                            .map(|region| {
                                let parts: Vec<&str> = region.split(':').collect();
                                (
                                    parts[0].to_owned(),
                                    parts[1].parse().expect("a size"),
                                    parts[2].parse().expect("a base pointer"),
                                )
                            })
                            .collect(),
                    )
                }
                "done" => log.done = true,
                "failed" => {
                    log.failed = Some(match rest {
                        "primary" => CardRole::Primary,
                        "mirror" => CardRole::Mirror,
                        other => panic!("the child failed card {other:?}"),
                    })
                }
                other => panic!("unknown line {other:?} in the child's log"),
            }
        }
        log
    }
}

/// A region as the parent expects it: its bytes, the same on both cards.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Region {
    size: u64,
    base: u64,
    data: Vec<u8>,
}

#[derive(Clone, Debug, Default)]
struct Model {
    formatted: bool,
    regions: BTreeMap<String, Region>,
}

impl Model {
    fn apply(&mut self, op: &Op) {
        match op {
            Op::Format => {
                self.formatted = true;
                self.regions.clear();
            }
            Op::OpenVolume | Op::OpenRegion { .. } | Op::Close { .. } => {}
            Op::Create { name, size, base } => {
                let region = Region {
                    size: *size,
                    base: *base,
                    data: vec![0; *size as usize],
                };
                assert!(
                    self.regions.insert(name.clone(), region).is_none(),
                    "the child created {name} twice"
                );
            }
            Op::Delete { name } => {
                assert!(
                    self.regions.remove(name).is_some(),
                    "the child deleted {name}, which the model does not have"
                );
            }
            Op::Write {
                name,
                offset,
                length,
                tag,
            } => {
                let region = self.regions.get_mut(name).expect("written regions exist");
                let range = *offset as usize..(*offset + *length) as usize;
                region.data[range].copy_from_slice(&pattern(*tag, *length as usize));
            }
        }
    }
}

/// One sequence of trials on the same cards.
struct World {
    config: Config,
    directory: tempfile::TempDir,
    model: Model,
    /// The lowest metadata sequence number the cards may hold now: none goes back.
    floor: u64,
    /// The latest trial's plan and its child's log.
    plan: Option<String>,
    log: Vec<String>,
    /// Whether the cards may hold a stale card: a child made one fail and the parent
    /// resynced only a copy of the cards.
    may_be_stale: bool,
}

impl World {
    fn fresh(config: Config) -> World {
        World {
            config,
            plan: None,
            log: Vec::new(),
            directory: tempfile::tempdir().expect("a temporary directory"),
            model: Model::default(),
            floor: 0,
            may_be_stale: false,
        }
    }
}

#[derive(Debug, Default)]
struct Stats {
    trials: usize,
    killed: usize,
    finished: usize,
    fresh: usize,
    snapshots: usize,
    acknowledged: usize,
    refused: usize,
    /// Kills with an operation in flight, by operation.
    in_flight: BTreeMap<&'static str, usize>,
    /// In-flight creates and deletes found done.
    in_flight_landed: usize,
    /// Trials whose child made a card fail before the kill.
    card_failures: usize,
    /// Recoveries that found a card stale and resynced it, and the pages they copied.
    resyncs: usize,
    resync_pages: u64,
    /// Opens that repaired dirty chunks after the kill, and the pages they copied.
    repairs: usize,
    repaired_pages: u64,
    /// Killed formats that left one card formatted and the other blank.
    format_halves: usize,
    /// Killed formats that left no volume (or trials killed before formatting).
    format_lost: usize,
    /// Killed formats that left the new volume.
    format_landed: usize,
    /// Trials whose metadata copies on the two cards were one commit apart.
    copies_apart: usize,
    /// Cards with a torn copy beside a good one.
    torn_slots: usize,
    /// Cards with a slot never written (a format killed before its second copy).
    blank_slots: usize,
    /// Regions found in more than one extent, over all checks.
    fragmented: usize,
    most_extents: u32,
}

impl Stats {
    fn add(&mut self, other: Stats) {
        self.trials += other.trials;
        self.killed += other.killed;
        self.finished += other.finished;
        self.fresh += other.fresh;
        self.snapshots += other.snapshots;
        self.acknowledged += other.acknowledged;
        self.refused += other.refused;
        for (kind, count) in other.in_flight {
            *self.in_flight.entry(kind).or_default() += count;
        }
        self.in_flight_landed += other.in_flight_landed;
        self.card_failures += other.card_failures;
        self.resyncs += other.resyncs;
        self.resync_pages += other.resync_pages;
        self.repairs += other.repairs;
        self.repaired_pages += other.repaired_pages;
        self.format_lost += other.format_lost;
        self.format_landed += other.format_landed;
        self.format_halves += other.format_halves;
        self.copies_apart += other.copies_apart;
        self.torn_slots += other.torn_slots;
        self.blank_slots += other.blank_slots;
        self.fragmented += other.fragmented;
        self.most_extents = self.most_extents.max(other.most_extents);
    }
}

/// What each card's two metadata slots hold.
type Slots = PerCard<[Result<Copy, MetadataError>; 2]>;

fn read_slots(directory: &Path, geometry: &Geometry) -> Slots {
    let copy_bytes = geometry.copy_bytes();
    PerCard::from_fn(|role| {
        let file = std::fs::File::open(directory.join(format!("{role}.pm")))
            .expect("the card's memory file");
        [0, 1].map(|slot| {
            let mut bytes = vec![0; copy_bytes as usize];
            file.read_exact_at(&mut bytes, slot * copy_bytes)
                .expect("the metadata area reads");
            metadata::decode(&bytes, copy_bytes as usize)
        })
    })
}

/// The newest copy among a card's slots.
fn newest(slots: &[Result<Copy, MetadataError>; 2]) -> Option<&Copy> {
    slots
        .iter()
        .filter_map(|slot| slot.as_ref().ok())
        .max_by_key(|copy| copy.sequence)
}

/// Checks the metadata as the kill left it on the cards, before any open repairs it, and
/// returns the newest state and its sequence number. With a card failed (`failure`), the
/// survivor went on committing alone, any number of commits ahead.
fn check_slots(slots: &Slots, failure: bool, stats: &mut Stats) -> (VolumeRecord, u64) {
    for role in CardRole::BOTH {
        let card = &slots[role];
        let damaged = card.iter().filter(|slot| slot.is_err()).count();
        assert!(
            damaged <= 1,
            "the {role} card has no good metadata copy: {card:?}"
        );
        for slot in card.iter().flat_map(|slot| slot.as_ref().err()) {
            match slot {
                MetadataError::NoMagic => stats.blank_slots += 1,
                _ => stats.torn_slots += 1,
            }
        }
        for copy in card.iter().flatten() {
            assert_eq!(
                copy.role, role,
                "a copy for another card on the {role} card"
            );
        }
    }
    let (primary, mirror) = (
        newest(&slots.primary).expect("checked"),
        newest(&slots.mirror).expect("checked"),
    );
    assert_eq!(
        primary.volume.id, mirror.volume.id,
        "the cards hold different volumes"
    );
    match primary.sequence.abs_diff(mirror.sequence) {
        0 => assert_eq!(
            primary.volume, mirror.volume,
            "both cards hold sequence {} with different states",
            primary.sequence
        ),
        1 => stats.copies_apart += 1,
        _ if failure => {}
        apart => panic!(
            "the cards' metadata is {apart} commits apart (primary {}, mirror {})",
            primary.sequence, mirror.sequence
        ),
    }
    let newest = if primary.sequence >= mirror.sequence {
        primary
    } else {
        mirror
    };
    (newest.volume.clone(), newest.sequence)
}

/// Copies the cards' memory files to `into`, as far as any copy of the metadata uses them
/// (the rest is unowned; every page is zeroed when a region takes it).
fn snapshot(from: &Path, into: &Path, slots: &Slots, geometry: &Geometry) {
    let mut used = geometry.first_data_page();
    for copy in slots.values().flatten().flatten() {
        for region in &copy.volume.regions {
            for extent in &region.extents {
                used = used.max(extent.end());
            }
        }
    }
    let bytes = used * geometry.page_bytes();
    std::fs::create_dir_all(into).expect("the snapshot directory");
    for role in CardRole::BOTH {
        let name = format!("{role}.pm");
        let source = std::fs::File::open(from.join(&name)).expect("a card's memory file");
        let target = std::fs::File::create(into.join(&name)).expect("a snapshot file");
        target
            .set_len(geometry.memory_pages * geometry.page_bytes())
            .expect("the snapshot's size");
        let mut buffer = vec![0; bytes as usize];
        source
            .read_exact_at(&mut buffer, 0)
            .expect("the card reads");
        target
            .write_all_at(&buffer, 0)
            .expect("the snapshot writes");
    }
}

/// Everything the volume holds: each region with its bytes, which both cards must hold
/// byte for byte.
fn observe(volume: &Volume<Card>, page_bytes: u64, stats: &mut Stats) -> BTreeMap<String, Region> {
    let info = volume.info();
    let names = volume.list_regions();
    assert_eq!(info.regions, names.len(), "info and list disagree");
    let mut regions = BTreeMap::new();
    let mut owned = 0;
    for name in names {
        let attributes = volume.read_attributes(&name).expect("a listed region");
        let size = attributes.get_u64("size").expect("size");
        let base = attributes.get_u64("base_pointer").expect("base pointer");
        let pages = attributes.get_u64("pages").expect("pages");
        assert_eq!(pages, size.div_ceil(page_bytes), "region {name}'s pages");
        let extents = attributes.get_u32("extents").expect("extents");
        assert!(
            (1..=pages).contains(&u64::from(extents)),
            "{name}: {extents} extents"
        );
        stats.fragmented += usize::from(extents > 1);
        stats.most_extents = stats.most_extents.max(extents);
        assert_eq!(attributes.get_u32("open_handles").expect("handles"), 0);
        owned += pages;
        let handle = volume.open_region(&name).expect("a region opens");
        let [data, mirror] = [ReadFrom::Primary, ReadFrom::Mirror].map(|from| {
            let mut bytes = vec![0; size as usize];
            volume
                .read_region(&handle, &mut bytes, base, from)
                .unwrap_or_else(|error| panic!("reading {name} from {from:?}: {error}"));
            bytes
        });
        volume.close_region(handle).expect("a region closes");
        if let Some(first) = data.iter().zip(&mirror).position(|(a, b)| a != b) {
            panic!(
                "after the recovery the cards differ in region {name} at byte {first} of \
                 {size}: {:#04x} on the primary, {:#04x} on the mirror",
                data[first], mirror[first]
            );
        }
        assert!(
            regions
                .insert(name.clone(), Region { size, base, data })
                .is_none(),
            "{name} is listed twice"
        );
    }
    assert_eq!(
        owned + info.free_pages,
        info.data_pages,
        "pages leaked or owned twice: regions own {owned}, {} are free, of {}",
        info.free_pages,
        info.data_pages
    );
    regions
}

fn in_sync(volume: &Volume<Card>) -> bool {
    volume
        .status()
        .values()
        .all(|card| card.state == CardState::InSync && card.failure.is_none())
}

/// Checks `found` against the model as the acknowledged operations left it, `expected`,
/// with `in_flight` allowed to have happened or not.
fn check_regions(
    found: &BTreeMap<String, Region>,
    expected: &Model,
    in_flight: Option<&Op>,
    stats: &mut Stats,
) {
    let mut expected = expected.regions.clone();
    match in_flight {
        Some(Op::Create { name, size, base }) if found.contains_key(name) => {
            let region = &found[name];
            assert_eq!(
                (region.size, region.base),
                (*size, *base),
                "the region {name} being created when the child was killed is half made"
            );
            stats.in_flight_landed += 1;
            expected.insert(
                name.clone(),
                Region {
                    size: *size,
                    base: *base,
                    data: vec![0; *size as usize],
                },
            );
        }
        Some(Op::Delete { name }) if !found.contains_key(name) => {
            stats.in_flight_landed += 1;
            expected.remove(name);
        }
        _ => {}
    }
    let found_names: Vec<&String> = found.keys().collect();
    let expected_names: Vec<&String> = expected.keys().collect();
    assert_eq!(found_names, expected_names, "the regions on the volume");
    for (name, region) in found {
        let want = &expected[name];
        assert_eq!(
            (region.size, region.base),
            (want.size, want.base),
            "region {name}'s size and base pointer"
        );
        let write = match in_flight {
            Some(Op::Write {
                name: written,
                offset,
                length,
                tag,
            }) if written == name => Some((
                *offset as usize..(*offset + *length) as usize,
                pattern(*tag, *length as usize),
            )),
            _ => None,
        };
        let (have, want) = (&region.data, &want.data);
        let differs = have.iter().zip(want).position(|(a, b)| a != b);
        let Some(first) = differs else { continue };
        // Only the write in flight may have changed anything: each of its bytes is the old
        // one or the new one.
        let allowed = write.as_ref().is_some_and(|(range, new)| {
            have.iter()
                .zip(want)
                .enumerate()
                .all(|(at, (&a, &b))| a == b || (range.contains(&at) && a == new[at - range.start]))
        });
        assert!(
            allowed,
            "region {name} differs from what was acknowledged at byte {first} of {}: \
             {:#04x}, not {:#04x}",
            have.len(),
            have[first],
            want[first]
        );
    }
}

#[derive(Debug)]
struct Plan {
    operations: usize,
    /// The kill comes after this many lines of the log (more than it has: no kill)...
    kill_after_lines: usize,
    /// ...and this long after that line.
    delay: Duration,
    /// Whether the parent checks a copy of the cards rather than the cards.
    snapshot: bool,
    /// The card the child makes fail, and how long after the volume opened.
    failure: Option<(CardRole, Duration)>,
    child_seed: u64,
}

impl Plan {
    /// The plan of trial `seed`; `format` if it formats the cards.
    fn of(seed: u64, format: bool) -> Plan {
        let mut random = StdRng::seed_from_u64(seed);
        let operations = random.gen_range(1..=MAX_OPERATIONS);
        // ready, begin format/open, ok, seen, two lines an operation, done.
        let lines = 4 + 2 * operations + 1;
        // One kill in five (one in two for a format) lands while the cards start and the
        // volume is formatted or opened (its recovery commits included); the others inside
        // or between operations
        // (which commit metadata, zero pages, write data), or after the last one.
        let (kill_after_lines, longest) = if random.gen_bool(if format { 0.5 } else { 0.2 }) {
            (random.gen_range(1..=2), 60_000)
        } else {
            let longest = [100, 1_000, 5_000, 20_000][random.gen_range(0..4)];
            (random.gen_range(3..=lines + 1), longest)
        };
        let delay = Duration::from_micros(random.gen_range(0..=longest));
        Plan {
            operations,
            kill_after_lines,
            delay,
            snapshot: random.gen_bool(0.5),
            child_seed: random.gen(),
            // A card fails somewhere among the operations, or after the last.
            failure: (!format && random.gen_ratio(1, FAIL_EVERY)).then(|| {
                let role = [CardRole::Primary, CardRole::Mirror][random.gen_range(0..2)];
                let longest = [100, 1_000, 5_000, 20_000][random.gen_range(0..4)];
                (role, Duration::from_micros(random.gen_range(0..=longest)))
            }),
        }
    }
}

/// Runs the child until the plan kills it (or it finishes) and returns its log's lines.
fn run_child(directory: &Path, config: &Config, format: bool, plan: &Plan) -> (Vec<String>, bool) {
    let stderr = std::fs::File::create(directory.join("child.stderr")).expect("a stderr file");
    let cards = directory.join("cards");
    let mut command = std::process::Command::new(std::env::current_exe().expect("the test"));
    command
        .args([
            "--exact",
            "crash_child",
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIRECTORY, &cards)
        .env(CHILD_SEED, plan.child_seed.to_string())
        .env(CHILD_OPERATIONS, plan.operations.to_string())
        .env(CONFIG, config.name)
        .stdout(std::process::Stdio::piped())
        .stderr(stderr);
    if format {
        command.env(CHILD_FORMAT, "1");
    } else {
        command.env_remove(CHILD_FORMAT);
    }
    match plan.failure {
        Some((role, delay)) => command.env(CHILD_FAIL, format!("{role} {}", delay.as_micros())),
        None => command.env_remove(CHILD_FAIL),
    };
    let mut child = command.spawn().expect("the child starts");
    let stdout = child.stdout.take().expect("piped");
    let (sender, receiver) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut stdout = std::io::BufReader::new(stdout);
        let mut line = Vec::new();
        loop {
            line.clear();
            match stdout.read_until(b'\n', &mut line) {
                // A line the kill cut short was never acknowledged.
                Ok(0) | Err(_) => break,
                Ok(_) if line.last() != Some(&b'\n') => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line);
                    if let Some(at) = text.find(MARK) {
                        let _ = sender.send(text[at + MARK.len()..].trim_end().to_owned());
                    }
                }
            }
        }
    });
    let mut lines = Vec::new();
    let mut hung = false;
    while lines.len() < plan.kill_after_lines {
        match receiver.recv_timeout(HUNG) {
            Ok(line) => lines.push(line),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                hung = true;
                break;
            }
        }
    }
    if lines.len() >= plan.kill_after_lines {
        std::thread::sleep(plan.delay);
    }
    // SIGKILL: no destructor, no unwinding, the simulated cards stop mid-clock.
    let _ = child.kill();
    let status = child.wait().expect("the child is reaped");
    reader.join().expect("the reader ends");
    lines.extend(receiver.try_iter());
    let stderr = std::fs::read_to_string(directory.join("child.stderr")).unwrap_or_default();
    assert!(
        !hung,
        "the child went {HUNG:?} without a line; stderr:\n{stderr}"
    );
    let killed = status.signal() == Some(libc::SIGKILL);
    assert!(
        killed || status.success(),
        "the child failed ({status}); log:\n{}\nstderr:\n{stderr}",
        lines.join("\n")
    );
    (lines, killed)
}

fn run_trial(world: &mut World, seed: u64, stats: &mut Stats) {
    let plan = Plan::of(seed, !world.model.formatted);
    world.plan = Some(format!("{plan:?}"));
    let config = world.config;
    let geometry = geometry(&config);
    let cards = world.directory.path().join("cards");
    let (lines, killed) = run_child(
        world.directory.path(),
        &config,
        !world.model.formatted,
        &plan,
    );
    world.log = lines.clone();
    stats.trials += 1;
    if killed {
        stats.killed += 1;
    } else {
        stats.finished += 1;
    }
    let log = Log::parse(&lines);
    assert!(
        log.done || killed,
        "the child ended without finishing its operations"
    );

    // What the acknowledged operations did, and the one that may or may not have happened.
    let mut expected = world.model.clone();
    let mut in_flight = None;
    for (op, outcome) in &log.steps {
        match outcome {
            Outcome::Acknowledged => {
                expected.apply(op);
                stats.acknowledged += 1;
            }
            Outcome::Refused => stats.refused += 1,
            Outcome::InFlight => {
                *stats.in_flight.entry(op.kind()).or_default() += 1;
                in_flight = Some(op);
            }
        }
    }
    if let Some(mut seen) = log.seen.clone() {
        seen.sort();
        let model: Vec<(String, u64, u64)> = world
            .model
            .regions
            .iter()
            .map(|(name, region)| (name.clone(), region.size, region.base))
            .collect();
        assert_eq!(
            seen, model,
            "the child found other regions than the last check left"
        );
    }

    if !expected.formatted {
        // The format never returned: the cards hold the new volume, or no volume.
        let before = read_slots(&cards, &geometry);
        let opened = cards_then(&cards, &config, |primary, mirror| {
            Volume::open(primary, mirror, VolumeOptions::default())
        });
        match opened {
            Ok(volume) => {
                assert!(volume.list_regions().is_empty(), "a new volume has regions");
                stats.format_landed += 1;
                // One card may have taken the first copy and the other none: the open
                // writes the empty volume onto the blank card, both in sync.
                if before.values().any(|card| newest(card).is_none()) {
                    stats.format_halves += 1;
                }
                assert!(in_sync(&volume), "{:?}", volume.status());
                world.floor = volume.info().sequence;
                drop(volume);
                let slots = read_slots(&cards, &geometry);
                for role in CardRole::BOTH {
                    assert!(
                        newest(&slots[role]).is_some(),
                        "after the open the {role} card holds no copy: {slots:?}"
                    );
                }
                world.model = Model {
                    formatted: true,
                    regions: BTreeMap::new(),
                };
            }
            Err(Error::NotFormatted | Error::Metadata { .. }) => {
                stats.format_lost += 1;
                let slots = read_slots(&cards, &geometry);
                assert!(
                    slots.values().flatten().all(Result::is_err),
                    "a volume that does not open has a good copy: {slots:?}"
                );
                world.model = Model::default();
            }
            Err(error) => {
                panic!("after a killed format the volume neither opens nor is blank: {error}")
            }
        }
        return;
    }

    let failure = log.failed.is_some();
    stats.card_failures += usize::from(failure);
    let may_be_stale = failure || world.may_be_stale;
    let slots = read_slots(&cards, &geometry);
    let (newest, sequence) = check_slots(&slots, may_be_stale, stats);
    assert!(
        sequence >= world.floor,
        "the metadata went back from sequence {} to {sequence}",
        world.floor
    );
    let checked = if plan.snapshot {
        stats.snapshots += 1;
        let copy = world.directory.path().join("snapshot");
        let _ = std::fs::remove_dir_all(&copy);
        snapshot(&cards, &copy, &slots, &geometry);
        copy
    } else {
        cards.clone()
    };
    let volume = cards_then(&checked, &config, |primary, mirror| {
        Volume::open(primary, mirror, VolumeOptions::default())
    })
    .unwrap_or_else(|error| panic!("the volume does not open after the kill: {error}"));
    if let Some(repaired) = volume.repaired() {
        stats.repairs += 1;
        stats.repaired_pages += repaired.pages;
    }
    // The open took the newest copy on the cards.
    let listed = volume.list_regions();
    let recorded: Vec<String> = newest.regions.iter().map(|r| r.name.clone()).collect();
    assert_eq!(listed, recorded, "the open did not take the newest copy");
    if !in_sync(&volume) {
        assert!(
            may_be_stale,
            "a card is out of sync after a crash without failures: {:?}",
            volume.status()
        );
        let report = volume
            .resync(|_, _| {})
            .unwrap_or_else(|error| panic!("the resync after the kill: {error}"));
        stats.resyncs += 1;
        stats.resync_pages += report.pages;
        assert!(in_sync(&volume), "{:?}", volume.status());
    }
    let check = volume
        .check(false, |_, _| {})
        .unwrap_or_else(|error| panic!("the check after the recovery: {error}"));
    assert!(
        check.is_clean(),
        "the cards differ after the recovery: {check:?}"
    );
    let found = observe(&volume, geometry.page_bytes(), stats);
    check_regions(&found, &expected, in_flight, stats);
    let after = volume.info().sequence;
    drop(volume);
    world.model = Model {
        formatted: true,
        regions: found,
    };
    world.floor = if plan.snapshot { sequence } else { after };
    // A copy was resynced, not the cards themselves.
    world.may_be_stale = plan.snapshot && may_be_stale;
    if plan.snapshot {
        let _ = std::fs::remove_dir_all(&checked);
    }
}

fn cards_then<T>(
    directory: &Path,
    config: &Config,
    then: impl FnOnce(Card, Card) -> npmu::Result<T>,
) -> npmu::Result<T> {
    let (primary, mirror) = cards(directory, config)?;
    then(primary, mirror)
}

fn seed_of(base: u64, trial: u64) -> u64 {
    pattern(base ^ trial.wrapping_mul(0x2545_f491_4f6c_dd1d), 8)
        .iter()
        .fold(0, |seed, &byte| seed << 8 | u64::from(byte))
}

/// Runs trials `stream`, `stream + STREAMS`, ... of `trials` one after the other on cards of
/// their own; stops early once `stop` is set (another stream failed).
fn run_stream(
    stream: u64,
    trials: u64,
    base: u64,
    config_of: &(dyn Fn(u64) -> Config + Sync),
    stop: &AtomicBool,
) -> Stats {
    let mut stats = Stats::default();
    let mut world = World::fresh(config_of(stream));
    for trial in (stream..trials).step_by(STREAMS as usize) {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let seed = seed_of(base, trial);
        let config = config_of(trial);
        if config != world.config || (trial >= STREAMS && seed % FRESH_EVERY == 0) {
            world = World::fresh(config);
            stats.fresh += 1;
        }
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_trial(&mut world, seed, &mut stats)
        }));
        if let Err(panic) = outcome {
            stop.store(true, Ordering::Relaxed);
            let failed = std::mem::replace(&mut world, World::fresh(config));
            let directory: PathBuf = failed.directory.keep();
            eprintln!(
                "crash consistency: trial {trial} on {} cards failed ({}={base}, trial \
                 seed {seed}, {}); the cards are kept in {}; the child's log:\n{}",
                config.name,
                npmu_test_seed::VARIABLE,
                failed.plan.unwrap_or_default(),
                directory.display(),
                failed.log.join("\n")
            );
            std::panic::resume_unwind(panic);
        }
    }
    stats
}

#[test]
fn acknowledged_operations_survive_sigkill_at_random_points() {
    let base = npmu_test_seed::seed("crash consistency", rand::random());
    let trials: u64 = match std::env::var(TRIALS) {
        Ok(trials) => trials.parse().expect("NPMU_CRASH_TRIALS is a number"),
        Err(_) => DEFAULT_TRIALS,
    };
    // Unless a configuration is named, the first three quarters of the trials run on iCE40
    // cards (128 pages of 1 KiB: space, contexts and metadata run short, a write takes
    // several requests) and the last quarter on sim cards (4 KiB pages, 64 KiB copies).
    let named = configured();
    let config_of = |trial: u64| {
        named.unwrap_or(if trial < trials - trials / 4 {
            Config::ICE40
        } else {
            Config::SIM
        })
    };
    eprintln!(
        "crash consistency: {trials} trials on {} cards, {STREAMS} at a time, {}={base}",
        named.map_or("ice40 then sim", |config| config.name),
        npmu_test_seed::VARIABLE
    );
    let started = Instant::now();
    let stop = AtomicBool::new(false);
    let outcomes: Vec<_> = std::thread::scope(|scope| {
        let streams: Vec<_> = (0..STREAMS)
            .map(|stream| {
                let (config_of, stop) = (&config_of, &stop);
                scope.spawn(move || run_stream(stream, trials, base, config_of, stop))
            })
            .collect();
        streams.into_iter().map(|stream| stream.join()).collect()
    });
    let mut stats = Stats::default();
    for outcome in outcomes {
        match outcome {
            Ok(stream) => stats.add(stream),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
    eprintln!(
        "crash consistency: {trials} trials in {:.1?}: {stats:#?}",
        started.elapsed()
    );
    assert_eq!(stats.trials as u64, trials);
    assert!(stats.killed > trials as usize / 2, "too few trials killed");
}

/// A `format` with `overwrite` writes the new volume's first copy to both cards at once. If
/// the process dies once the primary's copy has landed and before the mirror's has, the
/// primary holds the new volume and the mirror the old one, and neither opens: the cards
/// come back as two different volumes. Built here byte for byte from a reformat run to the
/// end; killing a reformat at random (0 to 12 ms into it) lands there about once in 80.
#[test]
fn a_reformat_killed_between_the_cards_leaves_the_old_or_the_new_volume() {
    let config = Config::ICE40;
    let geometry = geometry(&config);
    let cards_of = |directory: &Path| cards(directory, &config).expect("the cards start");
    let crashed = tempfile::tempdir().expect("a directory");
    {
        let (primary, mirror) = cards_of(crashed.path());
        let volume = Volume::format(primary, mirror, "old", false, VolumeOptions::default())
            .expect("the old volume formats");
        volume.create_region("kept", 100, 0).expect("a region");
    }
    let reformatted = tempfile::tempdir().expect("a directory");
    for role in CardRole::BOTH {
        let name = format!("{role}.pm");
        std::fs::copy(crashed.path().join(&name), reformatted.path().join(&name))
            .expect("the cards copy");
    }
    {
        let (primary, mirror) = cards_of(reformatted.path());
        Volume::format(primary, mirror, "new", true, VolumeOptions::default())
            .expect("the reformat");
    }
    // The reformat's first copy on the primary (the lower of its two sequence numbers)
    // lands; the mirror keeps the old volume.
    let slots = read_slots(reformatted.path(), &geometry);
    let primary = &slots[CardRole::Primary];
    let sequence = |slot: usize| primary[slot].as_ref().expect("a copy").sequence;
    let first = if sequence(0) < sequence(1) { 0 } else { 1 };
    let copy_bytes = geometry.copy_bytes();
    let mut bytes = vec![0; copy_bytes as usize];
    let offset = first as u64 * copy_bytes;
    std::fs::File::open(reformatted.path().join("primary.pm"))
        .and_then(|file| file.read_exact_at(&mut bytes, offset))
        .expect("the new copy reads");
    std::fs::OpenOptions::new()
        .write(true)
        .open(crashed.path().join("primary.pm"))
        .and_then(|file| file.write_all_at(&bytes, offset))
        .expect("the new copy lands on the primary");
    let slots = read_slots(crashed.path(), &geometry);
    let names = slots
        .as_ref()
        .map(|_, card| newest(card).expect("a copy").volume.name.clone());
    assert_eq!(
        names,
        PerCard::new("new".into(), "old".into()),
        "the state a kill leaves"
    );

    let (primary, mirror) = cards_of(crashed.path());
    let volume = Volume::open(primary, mirror, VolumeOptions::default())
        .unwrap_or_else(|error| panic!("a reformat killed midway leaves no volume: {error}"));
    match volume.info().name.as_str() {
        "old" => assert_eq!(volume.list_regions(), ["kept"]),
        "new" => assert!(volume.list_regions().is_empty()),
        other => panic!("volume {other:?}"),
    }
    assert!(in_sync(&volume), "{:?}", volume.status());
}
