//! The `npmu` command as a user runs it: exit codes, messages, and what lands on the cards.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn npmu() -> Command {
    Command::new(env!("CARGO_BIN_EXE_npmu"))
}

fn run(arguments: &[&str]) -> Output {
    npmu().args(arguments).output().unwrap()
}

/// `npmu volume ARGUMENTS --data-dir DIRECTORY`, with `input` on standard input.
fn volume(directory: &Path, arguments: &[&str], input: &[u8]) -> Output {
    let mut child = npmu()
        .arg("volume")
        .args(arguments)
        .arg("--data-dir")
        .arg(directory)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_ok(output: &Output) {
    assert!(output.status.success(), "{}", text(&output.stderr));
}

/// Asserts the exit code, showing both streams if it differs.
fn assert_code(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
}

/// Where `needle` first occurs in the file at `path` (a card's memory, mostly holes).
fn find_in_file(path: &Path, needle: &[u8]) -> Option<u64> {
    let mut file = std::fs::File::open(path).unwrap();
    let mut buffer = vec![0u8; 1 << 20];
    // The last bytes of each piece are searched again with the next, in case the needle
    // straddles them.
    let (mut kept, mut start) = (0, 0u64);
    loop {
        let read = file.read(&mut buffer[kept..]).unwrap();
        if read == 0 {
            return None;
        }
        let filled = kept + read;
        if let Some(at) = buffer[..filled]
            .windows(needle.len())
            .position(|window| window == needle)
        {
            return Some(start + at as u64);
        }
        kept = (needle.len() - 1).min(filled);
        buffer.copy_within(filled - kept..filled, 0);
        start += (filled - kept) as u64;
    }
}

/// Overwrites bytes of a card's memory file, as memory going bad under the card would.
fn corrupt(path: &Path, at: u64, bytes: &[u8]) {
    use std::io::{Seek, SeekFrom};
    let mut file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.seek(SeekFrom::Start(at)).unwrap();
    file.write_all(bytes).unwrap();
}

/// A formatted volume with region "notes" of 256 KiB.
fn volume_with_a_region(data: &Path) {
    assert_ok(&volume(data, &["format", "tank"], b""));
    assert_ok(&volume(data, &["create", "notes", "--size", "256K"], b""));
}

#[test]
fn verilog_writes_the_named_configuration_to_a_file() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("ni.v");
    let output = npmu()
        .args(["verilog", "--config", "ice40", "-o"])
        .arg(&path)
        .output()
        .unwrap();
    assert_ok(&output);
    let verilog = std::fs::read_to_string(&path).unwrap();
    assert!(verilog.contains("\nmodule npmu_ni("));
    assert!(
        verilog.contains("input wire  [31:0] write_data;"),
        "the iCE40 data path is 32 bits"
    );
}

#[test]
fn verilog_refuses_an_unknown_configuration_naming_the_known_ones() {
    let output = run(&["verilog", "--config", "artix"]);
    assert_eq!(output.status.code(), Some(2));
    let message = text(&output.stderr);
    assert!(
        message.contains("unknown configuration \"artix\""),
        "{message}"
    );
    assert!(
        message.contains("hint: configurations: sim, ice40"),
        "{message}"
    );
}

#[test]
fn verilog_reports_an_unwritable_output() {
    let output = run(&["verilog", "-o", "/nonexistent/dir/ni.v"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("/nonexistent/dir/ni.v: No such file"));
}

#[test]
fn synth_refuses_an_unknown_board_naming_the_known_ones() {
    let output = run(&["synth", "--board", "de10"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("boards: icebreaker, ulx3s, litefury"));
}

#[test]
fn a_malformed_device_is_a_usage_error_with_an_example() {
    let output = run(&["volume", "info", "--device", "vfio:0000:01:00.0"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("a volume needs two cards: vfio:PRIMARY,MIRROR"));
}

#[test]
fn a_volume_keeps_what_is_written_across_commands() {
    let directory = tempfile::tempdir().unwrap();
    let data = directory.path();
    let unformatted = volume(data, &["info"], b"");
    assert_eq!(unformatted.status.code(), Some(2));
    assert!(text(&unformatted.stderr).contains("hint: `npmu volume format NAME`"));

    assert_ok(&volume(data, &["format", "tank"], b""));
    let again = volume(data, &["format", "other"], b"");
    assert_eq!(
        again.status.code(),
        Some(2),
        "a volume is not formatted over"
    );
    assert!(text(&again.stderr).contains("--force"));
    assert_ok(&volume(
        data,
        &[
            "create",
            "notes",
            "--size",
            "64K",
            "--base-pointer",
            "0x1000",
        ],
        b"",
    ));

    let bytes: Vec<u8> = (0..16_000u32)
        .map(|index| (index * 7 % 251) as u8)
        .collect();
    let file = data.join("input.bin");
    std::fs::write(&file, &bytes).unwrap();
    assert_ok(&volume(
        data,
        &["write", "notes", file.to_str().unwrap()],
        b"",
    ));
    assert_ok(&volume(
        data,
        &["write", "notes", "--offset", "0x3000"],
        b"hello",
    ));

    let read = volume(data, &["read", "notes", "--length", "16000"], b"");
    assert_ok(&read);
    assert_eq!(read.stdout.len(), bytes.len());
    assert_eq!(read.stdout[..0x3000], bytes[..0x3000]);
    assert_eq!(&read.stdout[0x3000..0x3005], b"hello");
    assert_eq!(read.stdout[0x3005..], bytes[0x3005..]);

    let from_mirror = volume(
        data,
        &[
            "read", "notes", "--offset", "0x3000", "--length", "5", "--from", "mirror",
        ],
        b"",
    );
    assert_ok(&from_mirror);
    assert_eq!(from_mirror.stdout, b"hello");

    let listed = volume(data, &["list"], b"");
    assert_ok(&listed);
    assert!(text(&listed.stdout).contains("notes   64 KiB  0x1000"));
    let info = volume(data, &["info"], b"");
    assert!(text(&info.stdout).contains("primary  primary  in sync"));
}

#[test]
fn writes_and_reads_outside_a_region_are_refused_before_anything_is_written() {
    let directory = tempfile::tempdir().unwrap();
    let data = directory.path();
    assert_ok(&volume(data, &["format", "tank"], b""));
    assert_ok(&volume(data, &["create", "small", "--size", "4K"], b""));
    let too_long = volume(data, &["write", "small", "--offset", "4000"], &[0xff; 200]);
    assert_eq!(too_long.status.code(), Some(2));
    assert!(text(&too_long.stderr)
        .contains("standard input holds more than the 96 bytes from offset 0xfa0"));
    let untouched = volume(data, &["read", "small"], b"");
    assert_eq!(
        untouched.stdout,
        vec![0; 4096],
        "nothing of the refused write landed"
    );

    let output = data.join("out.bin");
    let past_end = volume(
        data,
        &[
            "read",
            "small",
            "--offset",
            "4K",
            "--length",
            "1",
            "-o",
            output.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(past_end.status.code(), Some(2));
    assert!(text(&past_end.stderr).contains("outside the region"));
    assert!(!output.exists(), "no output file for a refused read");

    let missing = volume(data, &["delete", "nope"], b"");
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("hint: `npmu volume list` shows the regions"));
}

#[test]
fn check_reports_where_the_mirror_differs_and_repair_makes_it_agree() {
    let directory = tempfile::tempdir().unwrap();
    let data = directory.path();
    volume_with_a_region(data);
    let marker = b"a marker to find in the mirror's memory file";
    assert_ok(&volume(
        data,
        &["write", "notes", "--offset", "0x1000"],
        marker,
    ));
    let fresh = volume(data, &["check"], b"");
    assert_code(&fresh, 0);
    assert!(text(&fresh.stdout).contains("the copies agree: the metadata and 1 region (256 KiB)"));

    let mirror = data.join("mirror.pm");
    let at = find_in_file(&mirror, marker).expect("the marker is on the mirror card");
    corrupt(&mirror, at + 4, b"X");
    corrupt(&mirror, at + 0x2000, b"YZ");
    let differs = volume(data, &["check"], b"");
    assert_code(&differs, 1);
    let report = text(&differs.stdout);
    assert!(
        report.contains("region \"notes\" offset 0x1004 length 1\n"),
        "{report}"
    );
    assert!(
        report.contains("region \"notes\" offset 0x3000 length 2\n"),
        "{report}"
    );
    assert!(
        report.contains(
            "the copies differ: 0 differences in the metadata, 2 differences in the data (3 bytes)"
        ),
        "{report}"
    );
    assert!(text(&differs.stderr).contains("hint: `npmu volume check --repair`"));

    let repaired = volume(data, &["check", "--repair"], b"");
    assert_code(&repaired, 0);
    let report = text(&repaired.stdout);
    assert!(
        report.contains("region \"notes\" offset 0x1004 length 1\n"),
        "{report}"
    );
    assert!(
        report.contains("repaired 0 differences in the metadata, 2 differences"),
        "{report}"
    );
    let again = volume(data, &["check"], b"");
    assert_code(&again, 0);
    assert!(text(&again.stdout).contains("the copies agree"));
    // The primary's copy won.
    let from_mirror = volume(
        data,
        &[
            "read", "notes", "--offset", "0x1000", "--length", "44", "--from", "mirror",
        ],
        b"",
    );
    assert_ok(&from_mirror);
    assert_eq!(from_mirror.stdout, marker);
}

#[test]
fn a_missing_card_is_refused_unless_the_volume_is_opened_degraded() {
    let directory = tempfile::tempdir().unwrap();
    let data = directory.path();
    volume_with_a_region(data);
    assert_ok(&volume(data, &["write", "notes"], b"kept on the mirror"));
    std::fs::remove_file(data.join("primary.pm")).unwrap();

    let refused = volume(data, &["info"], b"");
    assert_code(&refused, 2);
    let message = text(&refused.stderr);
    assert!(
        message.contains("error: the volume's primary card is missing (it is blank"),
        "{message}"
    );
    assert!(
        message.contains("hint: bring the primary card back"),
        "{message}"
    );
    assert!(
        message.contains("add --degraded (`npmu volume --degraded info`)"),
        "{message}"
    );

    let degraded = volume(data, &["--degraded", "info"], b"");
    assert_ok(&degraded);
    let info = text(&degraded.stdout);
    assert!(
        info.contains("primary  primary  stale: needs a resync"),
        "{info}"
    );
    assert!(info.contains("mirror   mirror   in sync"), "{info}");
    // The blank card now holds the volume, stale: opening needs --degraded no more.
    assert_ok(&volume(data, &["info"], b""));
    let resynced = volume(data, &["resync"], b"");
    assert_ok(&resynced);
    assert!(text(&resynced.stdout)
        .contains("resynced the primary card in full (a full rebuild): every region's 64 pages"));
    assert_code(&volume(data, &["check"], b""), 0);
    let from_primary = volume(
        data,
        &["read", "notes", "--length", "18", "--from", "primary"],
        b"",
    );
    assert_eq!(from_primary.stdout, b"kept on the mirror");

    let help = text(&run(&["volume", "--help"]).stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(help.contains("--degraded"), "{help}");
    assert!(
        help.contains("may hold writes the other lacks, and they are lost"),
        "{help}"
    );
}

#[test]
fn the_open_after_an_unclean_shutdown_repairs_the_dirty_chunks_and_says_so() {
    let directory = tempfile::tempdir().unwrap();
    let data = directory.path();
    assert_ok(&volume(data, &["format", "tank"], b""));
    assert_ok(&volume(data, &["create", "big", "--size", "8M"], b""));
    // Where the region's first byte sits in the primary's memory file.
    let marker = b"the first bytes of region big, before the killed write";
    assert_ok(&volume(data, &["write", "big"], marker));
    let primary = data.join("primary.pm");
    let start = find_in_file(&primary, marker).expect("the marker is on the primary card");

    let bytes: Vec<u8> = (0..8 << 20u32).map(|index| (index % 253) as u8).collect();
    let file = data.join("input.bin");
    std::fs::write(&file, &bytes).unwrap();
    let mut writer = npmu()
        .args(["volume", "write", "big"])
        .arg(&file)
        .arg("--data-dir")
        .arg(data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Killed once its first piece is on the primary: the write intent names its chunks.
    let mut seen = [0u8; 64];
    loop {
        let mut memory = std::fs::File::open(&primary).unwrap();
        std::io::Seek::seek(&mut memory, std::io::SeekFrom::Start(start)).unwrap();
        memory.read_exact(&mut seen).unwrap();
        if seen[..] == bytes[..64] {
            break;
        }
        assert!(
            writer.try_wait().unwrap().is_none(),
            "the write ended before it was seen"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    writer.kill().unwrap();
    writer.wait().unwrap();

    let info = volume(data, &["info"], b"");
    assert_ok(&info);
    let said = text(&info.stdout);
    assert!(
        said.contains("the volume was not closed cleanly, so opening it copied"),
        "{said}"
    );
    assert!(
        said.contains(
            "dirty chunks its write intent named) from the primary card to the mirror card"
        ),
        "{said}"
    );
    assert!(said.contains("intent   0 dirty chunks"), "{said}");
    assert_code(&volume(data, &["check"], b""), 0);
    // Repaired once: the next open finds nothing to repair.
    let again = volume(data, &["list"], b"");
    assert_ok(&again);
    assert!(!text(&again.stderr).contains("not closed cleanly"));
}

#[test]
fn forked_cards_are_refused_until_one_copy_is_chosen() {
    let directory = tempfile::tempdir().unwrap();
    let data = directory.path();
    volume_with_a_region(data);
    let not_forked = volume(data, &["choose", "--keep", "primary"], b"");
    assert_code(&not_forked, 2);
    assert!(text(&not_forked.stderr).contains("error: the cards' histories have not forked"));

    // Each card written while the other is away (its file moved aside, a blank in its place).
    let (primary, mirror) = (data.join("primary.pm"), data.join("mirror.pm"));
    let aside = data.join("aside.pm");
    std::fs::rename(&mirror, &aside).unwrap();
    assert_ok(&volume(
        data,
        &["--degraded", "write", "notes", "--offset", "0x10000"],
        b"primary alone",
    ));
    std::fs::rename(&aside, &mirror).unwrap();
    std::fs::rename(&primary, &aside).unwrap();
    assert_ok(&volume(
        data,
        &["--degraded", "write", "notes", "--offset", "0x20000"],
        b"mirror alone",
    ));
    std::fs::rename(&aside, &primary).unwrap();

    for arguments in [&["info"][..], &["--degraded", "info"]] {
        let refused = volume(data, arguments, b"");
        assert_code(&refused, 2);
        let message = text(&refused.stderr);
        assert!(
            message.contains("error: the cards' histories forked"),
            "{message}"
        );
        assert!(
            message.contains("hint: `npmu volume choose --keep primary|mirror`"),
            "{message}"
        );
    }
    let chosen = volume(data, &["choose", "--keep", "mirror"], b"");
    assert_ok(&chosen);
    let said = text(&chosen.stdout);
    assert!(
        said.contains("kept the mirror card's copy of volume \"tank\"; the primary card is stale"),
        "{said}"
    );
    assert!(
        said.contains("primary  primary  stale: needs a resync"),
        "{said}"
    );
    assert!(text(&chosen.stderr).contains("hint: `npmu volume resync`"));
    assert_ok(&volume(data, &["resync"], b""));
    assert_code(&volume(data, &["check"], b""), 0);
    let read = |offset| {
        volume(
            data,
            &[
                "read", "notes", "--offset", offset, "--length", "13", "--from", "primary",
            ],
            b"",
        )
        .stdout
    };
    assert_eq!(read("0x20000")[..12], *b"mirror alone");
    assert_eq!(
        read("0x10000"),
        [0; 13],
        "the primary's write since the fork is discarded"
    );
    assert_code(&volume(data, &["choose", "--keep", "mirror"], b""), 2);
}

#[test]
fn the_demo_runs_through_failure_restart_and_resync() {
    let directory = tempfile::tempdir().unwrap();
    let output = run(&["demo", "--data-dir", directory.path().to_str().unwrap()]);
    assert_ok(&output);
    // Words alone: the narration wraps its lines.
    let narration = text(&output.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for expected in [
        "1. Start two cards and format a volume",
        "256 pages in 2 pieces",
        "256 KiB written to each card and read back identical",
        "followed 100 records from the base pointer",
        "the library reports: the primary card failed",
        "all 32 blocks read back from the mirror, identical",
        "primary stale, mirror in sync",
        "100 records, sum 1326685, with the change made while the primary was down",
        "7. A new process recovers the volume",
        "the open needs no degraded mode",
        "8. Resync The primary missed 16 writes while it was failed. The resync copies from \
         the mirror only the region pages in the chunks",
        "only those in dirty chunks",
        "the two cards' 1 MiB are identical; primary in sync, mirror in sync",
        "resync of the primary",
    ] {
        assert!(
            narration.contains(expected),
            "no {expected:?} in:\n{narration}"
        );
    }
    // "-> 78 pages (312 KiB) of the regions' 272 copied": the dirty chunks' pages alone.
    let (copied, regions) = narration
        .split(" -> ")
        .find_map(|said| {
            let (copied, rest) = said.split_once(" pages (")?;
            let regions = rest
                .split_once("of the regions' ")?
                .1
                .split_once(" copied")?
                .0;
            Some((copied.parse::<u64>().ok()?, regions.parse::<u64>().ok()?))
        })
        .unwrap_or_else(|| panic!("no resync figure in:\n{narration}"));
    assert!(
        0 < copied && copied < regions,
        "{copied} of {regions} pages"
    );
    // The cards it leaves behind hold the demo's volume, recovered and in sync.
    let info = volume(directory.path(), &["info"], b"");
    assert!(text(&info.stdout).contains("mirror   mirror   in sync"));
    let check = volume(directory.path(), &["check"], b"");
    assert_code(&check, 0);
    assert!(
        text(&check.stdout).contains("the copies agree: the metadata and 2 regions (1.1 MiB)"),
        "{}",
        text(&check.stdout)
    );
}

#[test]
fn the_demo_refuses_a_directory_holding_another_volume() {
    let directory = tempfile::tempdir().unwrap();
    assert_ok(&volume(directory.path(), &["format", "precious"], b""));
    let output = run(&["demo", "--data-dir", directory.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("give it a directory of its own"));
    let info = volume(directory.path(), &["info"], b"");
    assert!(
        text(&info.stdout).contains("\"precious\""),
        "the volume is untouched"
    );
}

#[test]
fn bench_prints_one_json_line_a_figure() {
    let output = run(&[
        "bench",
        "--json",
        "driver",
        "--iterations",
        "2",
        "--sizes",
        "64",
    ]);
    assert_ok(&output);
    let figures: Vec<serde_json::Value> = text(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let names: Vec<&str> = figures.iter().filter_map(|f| f["name"].as_str()).collect();
    assert!(names.contains(&"driver_op_wall_ns"), "{names:?}");
    assert!(names.contains(&"driver_op_sim_cycles"), "{names:?}");
}
