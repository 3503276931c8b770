//! `npmu volume`: a volume of two cards from the shell.

use crate::cards::CardArguments;
use crate::error::CliError;
use crate::table::{bytes, Table};
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use npmu::{
    Card, CardRole, CardState, CheckReport, Error, Mirror, ReadFrom, RegionHandle, RepairReport,
    Volume, VolumeOptions,
};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

type CardVolume = Volume<Card>;

/// The largest piece written or read at once, so a progress bar moves on large files.
const PIECE_BYTES: usize = 1 << 20;

#[derive(Args)]
pub struct Arguments {
    #[command(flatten)]
    cards: CardArguments,
    /// Open the volume without a missing card it has in sync, risking what only that card
    /// holds.
    ///
    /// A card is missing when it does not answer, or is blank (a new or replaced card).
    /// Without --degraded the open is refused; with it the volume goes on with the other
    /// card alone. The risk: the missing card may hold writes the other lacks, and they are
    /// lost; writing without it forks the two cards' histories if it comes back holding
    /// them. The open records the missing card as stale, for `npmu volume resync` to
    /// rebuild.
    #[arg(long, global = true)]
    degraded: bool,
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand)]
enum Action {
    /// Write a new, empty volume onto both cards.
    Format {
        /// The volume's name.
        name: String,
        /// Format over a volume the cards already hold: its regions are lost.
        #[arg(long)]
        force: bool,
    },
    /// The volume, its space and how each card stands.
    Info,
    /// Every region: size, base pointer, owner.
    List,
    /// Create a region, zeroed on both cards.
    Create {
        name: String,
        /// Size in bytes; K, M and G suffixes mean KiB, MiB and GiB.
        #[arg(long, value_parser = parse_size)]
        size: u64,
        /// The address the region's first byte has in the application's pointers.
        #[arg(long, default_value = "0", value_parser = parse_size)]
        base_pointer: u64,
    },
    /// Delete a region and free its pages.
    Delete { name: String },
    /// Write a file (or standard input) into a region, on both cards.
    ///
    /// Exits 3 if a card failed meanwhile: the data is then on the other card alone.
    Write {
        region: String,
        /// The file to write; `-` or absent for standard input.
        file: Option<PathBuf>,
        /// Bytes from the region's start.
        #[arg(long, default_value = "0", value_parser = parse_size)]
        offset: u64,
    },
    /// Read a region's bytes to a file (or standard output).
    Read {
        region: String,
        /// Where to put them; standard output if absent.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Bytes from the region's start.
        #[arg(long, default_value = "0", value_parser = parse_size)]
        offset: u64,
        /// How many bytes; up to the region's end if absent.
        #[arg(long, value_parser = parse_size)]
        length: Option<u64>,
        /// Which card to read: any in-sync one (falling back to the other), or one alone.
        #[arg(long, value_enum, default_value_t = From::Any)]
        from: From,
    },
    /// Rebuild a stale card from the other while the volume stays usable.
    ///
    /// A card that was out gets only the region pages in the chunks written while it was
    /// out; a blank or replaced card gets every region (a full rebuild).
    Resync,
    /// Compare the two cards byte for byte: their metadata and every region.
    ///
    /// Prints each difference, then a summary. Exits 0 if the copies agree, 1 if they
    /// differ; with --repair, 0 once the repair has made them agree. Both cards must be in
    /// sync (`npmu volume resync` first if one is stale).
    Check {
        /// Wherever the copies differ, give the mirror the primary's bytes: when both cards
        /// are in sync, the primary's copy wins.
        #[arg(long)]
        repair: bool,
    },
    /// Open a volume whose cards' histories forked, keeping one card's copy.
    ///
    /// The histories fork when each card was written while the other was away: neither
    /// holds the other's writes, and a plain open is refused. The other card becomes
    /// stale, and `npmu volume resync` then overwrites on it every chunk either card wrote
    /// since they parted: its own writes since the fork are lost.
    Choose {
        /// The card whose copy becomes the volume's.
        #[arg(long, value_enum)]
        keep: Role,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Role {
    Primary,
    Mirror,
}

impl Role {
    fn card(self) -> CardRole {
        match self {
            Role::Primary => CardRole::Primary,
            Role::Mirror => CardRole::Mirror,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum From {
    Any,
    Primary,
    Mirror,
}

pub fn run(arguments: &Arguments) -> Result<ExitCode, CliError> {
    let (primary, mirror) = arguments.cards.open()?;
    let options = VolumeOptions {
        degraded: arguments.degraded,
        ..VolumeOptions::default()
    };
    match &arguments.action {
        Action::Format { name, force } => {
            let volume = Volume::format(primary, mirror, name, *force, options)?;
            println!("formatted volume {name:?} on both cards");
            print_info(&volume);
            return Ok(ExitCode::SUCCESS);
        }
        Action::Choose { keep } => {
            let keep = keep.card();
            let volume = Volume::choose(primary, mirror, keep, options)?;
            println!(
                "kept the {keep} card's copy of volume {:?}; the {} card is stale: its writes \
                 since the fork are discarded when it is resynced",
                volume.info().name,
                keep.other()
            );
            print_info(&volume);
            eprintln!(
                "npmu: hint: `npmu volume resync` copies to the {} card every chunk either card \
                 wrote since the fork",
                keep.other()
            );
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    let volume = Volume::open(primary, mirror, options)?;
    if !matches!(arguments.action, Action::Info) {
        // `info` shows it among the rest.
        if let Some(repair) = volume.repaired() {
            eprintln!("npmu: note: {}", describe_repair(&repair));
        }
    }
    match &arguments.action {
        Action::Format { .. } | Action::Choose { .. } => unreachable!("handled above"),
        Action::Info => print_info(&volume),
        Action::List => print_regions(&volume)?,
        Action::Create {
            name,
            size,
            base_pointer,
        } => {
            volume.create_region(name, *size, *base_pointer)?;
            println!("created region {name:?}: {}", bytes(*size));
        }
        Action::Delete { name } => {
            volume.delete_region(name)?;
            println!("deleted region {name:?}");
        }
        Action::Write {
            region,
            file,
            offset,
        } => return write(&volume, region, file.as_deref(), *offset),
        Action::Read {
            region,
            output,
            offset,
            length,
            from,
        } => read(&volume, region, output.as_deref(), *offset, *length, *from)?,
        Action::Resync => resync(&volume)?,
        Action::Check { repair } => return check(&volume, *repair),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn print_info(volume: &CardVolume) {
    let info = volume.info();
    println!("volume   {:?} (id {:032x})", info.name, info.id);
    println!(
        "space    {} pages of {}, {} free; {} regions; the largest possible region {}",
        info.data_pages,
        bytes(info.page_bytes),
        info.free_pages,
        info.regions,
        bytes(info.max_region_bytes)
    );
    println!(
        "metadata copy {} on each card, epoch {}",
        info.sequence, info.epoch
    );
    match info.dirty_chunks {
        Some(chunks) => println!(
            "intent   {chunks} dirty chunks of {} pages (what a repair or resync copies)",
            npmu::intent::CHUNK_PAGES
        ),
        None => println!("intent   every chunk dirty: a repair or resync copies every region"),
    }
    if let Some(repair) = volume.repaired() {
        println!("{}", describe_repair(&repair));
    }
    let mut table = Table::new(["card", "device", "state", "failure"]);
    for (_, status) in volume.status() {
        let state = match status.state {
            CardState::Stale => "stale: needs a resync".to_owned(),
            state => state_name(state).to_owned(),
        };
        table.row([
            status.role.to_string(),
            status.name,
            state,
            status.failure.unwrap_or_else(|| "-".into()),
        ]);
    }
    table.print();
}

fn print_regions(volume: &CardVolume) -> Result<(), CliError> {
    let mut table = Table::new(["region", "size", "base pointer", "owner", "created"]);
    for name in volume.list_regions() {
        let attributes = volume.read_attributes(&name)?;
        table.row([
            name,
            bytes(attributes.get_u64("size")?),
            format!("{:#x}", attributes.get_u64("base_pointer")?),
            attributes.get_u32("owner")?.to_string(),
            utc_time(attributes.get_u64("creation_time")?),
        ]);
    }
    table.print();
    Ok(())
}

fn write(
    volume: &CardVolume,
    name: &str,
    file: Option<&Path>,
    offset: u64,
) -> Result<ExitCode, CliError> {
    let region = volume.open_region(name)?;
    let room = region.size().saturating_sub(offset);
    let (what, data) = match file.filter(|path| path.as_os_str() != "-") {
        Some(path) => (
            path.display().to_string(),
            read_input(std::fs::File::open(path), path, room)?,
        ),
        None => (
            "standard input".to_owned(),
            read_input(Ok(std::io::stdin()), "-".as_ref(), room)?,
        ),
    };
    if data.len() as u64 > room {
        return Err(CliError::TooLong { what, room, offset });
    }
    let progress = bar(data.len() as u64, "writing to both cards");
    let mut degraded = None;
    for (index, piece) in data.chunks(PIECE_BYTES).enumerate() {
        let pointer = region.base_pointer() + offset + (index * PIECE_BYTES) as u64;
        match volume.write_region(&region, piece, pointer, Mirror::Both) {
            Ok(()) => {}
            // The piece is on the surviving card; the rest follows it there.
            Err(error @ Error::Degraded { .. }) => degraded = Some(error),
            Err(error) => return Err(error.into()),
        }
        progress.inc(piece.len() as u64);
    }
    progress.finish_and_clear();
    println!(
        "wrote {} from {what} to region {name:?} at offset {offset:#x}",
        bytes(data.len() as u64)
    );
    match degraded {
        Some(error) => {
            eprintln!("npmu: warning: {error}");
            eprintln!("npmu: hint: `npmu volume resync` rebuilds it once it answers again");
            Ok(ExitCode::from(3))
        }
        None => Ok(ExitCode::SUCCESS),
    }
}

/// Reads at most `room + 1` bytes: one more than fits tells a too-long input without
/// reading all of it.
fn read_input(
    source: std::io::Result<impl Read>,
    path: &Path,
    room: u64,
) -> Result<Vec<u8>, CliError> {
    let file_error = |source| CliError::File {
        path: path.to_owned(),
        source,
    };
    let mut data = Vec::new();
    source
        .map_err(file_error)?
        .take(room + 1)
        .read_to_end(&mut data)
        .map_err(file_error)?;
    Ok(data)
}

fn read(
    volume: &CardVolume,
    name: &str,
    output: Option<&Path>,
    offset: u64,
    length: Option<u64>,
    from: From,
) -> Result<(), CliError> {
    let region = volume.open_region(name)?;
    let length = length.unwrap_or_else(|| region.size().saturating_sub(offset));
    let from = match from {
        From::Any => ReadFrom::Any,
        From::Primary => ReadFrom::Primary,
        From::Mirror => ReadFrom::Mirror,
    };
    // Checked before an output file is made.
    if offset > region.size() || length > region.size() - offset {
        return Err(Error::OutsideRegion {
            pointer: region.base_pointer().wrapping_add(offset),
            length,
            base_pointer: region.base_pointer(),
            size: region.size(),
        }
        .into());
    }
    let piece = Piece {
        volume,
        region: &region,
        offset,
        length,
        from,
    };
    let Some(path) = output else {
        return piece.copy_to(std::io::stdout().lock(), "standard output".as_ref());
    };
    let file = std::fs::File::create(path).map_err(|source| CliError::File {
        path: path.to_owned(),
        source,
    })?;
    let copied = piece.copy_to(file, path);
    if copied.is_err() {
        // A half-written file would pass for the region's bytes.
        let _ = std::fs::remove_file(path);
    }
    copied
}

/// Bytes of a region to copy out.
struct Piece<'a> {
    volume: &'a CardVolume,
    region: &'a RegionHandle<Card>,
    offset: u64,
    length: u64,
    from: ReadFrom,
}

impl Piece<'_> {
    /// Copies the bytes to `sink`, which errors call `path`.
    fn copy_to(&self, mut sink: impl Write, path: &Path) -> Result<(), CliError> {
        let sink_error = |source| CliError::File {
            path: path.to_owned(),
            source,
        };
        let progress = bar(self.length, "reading");
        let mut buffer = vec![0u8; PIECE_BYTES];
        let mut done = 0;
        while done < self.length {
            let size = (self.length - done).min(PIECE_BYTES as u64) as usize;
            let pointer = self.region.base_pointer() + self.offset + done;
            self.volume
                .read_region(self.region, &mut buffer[..size], pointer, self.from)?;
            sink.write_all(&buffer[..size]).map_err(sink_error)?;
            done += size as u64;
            progress.inc(size as u64);
        }
        progress.finish_and_clear();
        sink.flush().map_err(sink_error)
    }
}

fn resync(volume: &CardVolume) -> Result<(), CliError> {
    let progress = bar(0, "resyncing");
    let report = match volume.resync(|done, total| {
        progress.set_length(total);
        progress.set_position(done);
    }) {
        Ok(report) => report,
        Err(Error::NothingToResync) => {
            println!("both cards are in sync: nothing to resync");
            return Ok(());
        }
        Err(error) => return Err(error.into()),
    };
    progress.finish_and_clear();
    if report.full {
        println!(
            "resynced the {} card in full (a full rebuild): every region's {} pages, {}; \
             both cards are in sync",
            report.card,
            report.pages,
            bytes(report.bytes)
        );
    } else {
        println!(
            "resynced the {} card: {} pages, {}, those of the regions in the chunks written \
             while it was out (not a full rebuild); both cards are in sync",
            report.card,
            report.pages,
            bytes(report.bytes)
        );
    }
    Ok(())
}

/// What the open repaired after an unclean shutdown, as a sentence.
fn describe_repair(repair: &RepairReport) -> String {
    let chunks = match repair.dirty_chunks {
        Some(chunks) => format!("the {chunks} dirty chunks its write intent named"),
        None => "every chunk: its write intent was lost".to_owned(),
    };
    format!(
        "the volume was not closed cleanly, so opening it copied {} region pages ({chunks}) \
         from the {} card to the {} card",
        repair.pages, repair.source, repair.target
    )
}

fn check(volume: &CardVolume, repair: bool) -> Result<ExitCode, CliError> {
    let message = if repair {
        "checking and repairing"
    } else {
        "checking"
    };
    let progress = bar(0, message);
    let report = volume.check(repair, |done, total| {
        progress.set_length(total);
        progress.set_position(done);
    })?;
    progress.finish_and_clear();
    for line in &report.metadata {
        println!("metadata {line}");
    }
    for difference in &report.differences {
        println!(
            "region {:?} offset {:#x} length {}",
            difference.region, difference.offset, difference.length
        );
    }
    println!("{}", check_summary(&report));
    if report.is_clean() || report.repaired {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "npmu: hint: `npmu volume check --repair` gives the mirror the primary's bytes \
             (when both cards are in sync, the primary's copy wins)"
        );
        Ok(ExitCode::FAILURE)
    }
}

fn check_summary(report: &CheckReport) -> String {
    let compared = format!(
        "the metadata and {} ({}) compared on both cards",
        count(report.regions as u64, "region"),
        bytes(report.bytes_compared)
    );
    if report.is_clean() {
        return format!("the copies agree: {compared}");
    }
    let differing: u64 = report.differences.iter().map(|d| d.length).sum();
    let found = format!(
        "{} in the metadata, {} in the data ({})",
        count(report.metadata.len() as u64, "difference"),
        count(report.differences.len() as u64, "difference"),
        bytes(differing)
    );
    if report.repaired {
        format!("repaired {found}: the mirror now holds the primary's copy; {compared}")
    } else {
        format!("the copies differ: {found}; {compared}")
    }
}

/// `1 region`, `2 regions`.
fn count(number: u64, thing: &str) -> String {
    if number == 1 {
        format!("1 {thing}")
    } else {
        format!("{number} {thing}s")
    }
}

pub fn state_name(state: CardState) -> &'static str {
    match state {
        CardState::InSync => "in sync",
        CardState::Stale => "stale",
        CardState::Rebuilding => "being resynced",
    }
}

/// Nanoseconds since 1970 as `YYYY-MM-DD hh:mm:ss UTC`.
fn utc_time(nanoseconds: u64) -> String {
    let seconds = nanoseconds / 1_000_000_000;
    let (days, time) = (seconds / 86_400, seconds % 86_400);
    // Days to a civil date: Howard Hinnant's days_from_civil, inverted.
    let shifted = days + 719_468;
    let era = shifted / 146_097;
    let day_of_era = shifted % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        time / 3600,
        time / 60 % 60,
        time % 60
    )
}

/// A progress bar of bytes on stderr (hidden when stderr is not a terminal).
pub fn bar(total: u64, message: &'static str) -> ProgressBar {
    ProgressBar::new(total)
        .with_style(
            ProgressStyle::with_template("{msg} [{bar:40}] {bytes}/{total_bytes} ({eta})")
                .expect("a valid template"),
        )
        .with_message(message)
}

/// A size or address: decimal, or hexadecimal with 0x; K, M and G multiply by 2^10, 2^20
/// and 2^30.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let (digits, scale) = match text.char_indices().last() {
        Some((at, 'K' | 'k')) => (&text[..at], 10),
        Some((at, 'M' | 'm')) => (&text[..at], 20),
        Some((at, 'G' | 'g')) => (&text[..at], 30),
        _ => (text, 0),
    };
    let value = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(hex) => u64::from_str_radix(&hex.replace('_', ""), 16),
        None => digits.replace('_', "").parse::<u64>(),
    }
    .map_err(|_| format!("{text:?} is not a number (e.g. 4096, 0x1000, 64K, 16M)"))?;
    value
        .checked_mul(1 << scale)
        .ok_or_else(|| format!("{text:?} does not fit in 64 bits"))
}

#[cfg(test)]
mod tests {
    use super::{parse_size, utc_time};
    use rstest::rstest;

    #[rstest]
    #[case(0, "1970-01-01 00:00:00 UTC")]
    #[case(951_782_400_000_000_000, "2000-02-29 00:00:00 UTC")]
    #[case(1_795_347_419_930_492_779, "2026-11-22 11:36:59 UTC")]
    fn times(#[case] nanoseconds: u64, #[case] text: &str) {
        assert_eq!(utc_time(nanoseconds), text);
    }

    #[rstest]
    #[case("4096", Ok(4096))]
    #[case("0x1000", Ok(4096))]
    #[case("0x7f00_0000_0000", Ok(0x7f00_0000_0000))]
    #[case("64K", Ok(65536))]
    #[case("16M", Ok(16 << 20))]
    #[case("1g", Ok(1 << 30))]
    #[case("0x10K", Ok(16 << 10))]
    #[case("16E", Err("not a number"))]
    #[case("", Err("not a number"))]
    #[case("-1", Err("not a number"))]
    #[case("17179869184G", Err("does not fit in 64 bits"))]
    fn sizes(#[case] text: &str, #[case] expected: Result<u64, &str>) {
        match (parse_size(text), expected) {
            (Ok(value), Ok(expected)) => assert_eq!(value, expected),
            (Err(message), Err(expected)) => assert!(message.contains(expected), "{message}"),
            (outcome, expected) => panic!("{text}: {outcome:?}, expected {expected:?}"),
        }
    }
}
