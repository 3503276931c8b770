//! The `npmu` command as a user runs it: exit codes, messages, and what lands on the cards.

use std::io::Write;
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
        "the two cards' 1 MiB are identical; primary in sync, mirror in sync",
        "resync of the primary",
    ] {
        assert!(
            narration.contains(expected),
            "no {expected:?} in:\n{narration}"
        );
    }
    // The cards it leaves behind hold the demo's volume, recovered and in sync.
    let info = volume(directory.path(), &["info"], b"");
    assert!(text(&info.stdout).contains("mirror   mirror   in sync"));
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
