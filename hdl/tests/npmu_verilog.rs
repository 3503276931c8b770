//! The `npmu-verilog` command line.

use std::process::Command;

fn npmu_verilog() -> Command {
    Command::new(env!("CARGO_BIN_EXE_npmu-verilog"))
}

#[test]
fn writes_the_named_configuration_to_a_file() {
    let path = std::env::temp_dir().join(format!("npmu-verilog-{}.v", std::process::id()));
    let status = npmu_verilog()
        .args(["--config", "ice40", "-o"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(text.contains("\nmodule npmu_ni("));
    assert!(
        text.contains("input wire  [31:0] write_data;"),
        "the iCE40 data path is 32 bits"
    );
}

#[test]
fn an_unknown_configuration_is_a_usage_error() {
    let output = npmu_verilog().args(["--config", "artix"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains("unknown configuration \"artix\""),
        "{message}"
    );
}

#[test]
fn an_unwritable_output_is_reported() {
    let output = npmu_verilog()
        .args(["--config", "sim", "-o", "/nonexistent/dir/ni.v"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot write /nonexistent/dir/ni.v"));
}
