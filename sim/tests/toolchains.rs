//! The generated Verilog passes Verilator's strictest lint (with only the documented
//! waivers), Icarus Verilog and Yosys, which reject constructs only Verilator accepts.

use npmu_abi::Config;
use npmu_sim::generated_verilog;
use rstest::rstest;
use std::path::Path;
use std::process::Command;

fn run(tool: &str, arguments: &[&str]) {
    let output = Command::new(tool)
        .args(arguments)
        .output()
        .unwrap_or_else(|error| panic!("{tool} is needed ({error}); `./run setup` installs it"));
    assert!(
        output.status.success(),
        "{tool} {arguments:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn verilog(config: &Config) -> String {
    let path = generated_verilog(config);
    assert!(path.exists(), "{} was not generated", path.display());
    path.to_str().unwrap().to_owned()
}

#[rstest]
#[case(Config::SIM)]
#[case(Config::ICE40)]
fn verilator_lint_wall_is_clean(#[case] config: Config) {
    let waivers = Path::new(env!("CARGO_MANIFEST_DIR")).join("../hdl/lint.vlt");
    run(
        "verilator",
        &[
            "--lint-only",
            "-Wall",
            "--top-module",
            "npmu_ni",
            waivers.to_str().unwrap(),
            &verilog(&config),
        ],
    );
}

#[rstest]
#[case(Config::SIM)]
#[case(Config::ICE40)]
fn icarus_verilog_compiles_it(#[case] config: Config) {
    run(
        "iverilog",
        &[
            "-g2012",
            "-s",
            "npmu_ni",
            "-o",
            "/dev/null",
            &verilog(&config),
        ],
    );
}

#[rstest]
#[case(Config::SIM)]
#[case(Config::ICE40)]
fn yosys_reads_and_elaborates_it(#[case] config: Config) {
    let script = format!(
        "read_verilog {}; hierarchy -check -top npmu_ni; proc",
        verilog(&config)
    );
    run("yosys", &["-q", "-p", &script]);
}

#[test]
fn the_top_module_is_npmu_ni_with_no_port_wider_than_64_bits() {
    let text = std::fs::read_to_string(verilog(&Config::SIM)).unwrap();
    assert!(text.contains("\nmodule npmu_ni("));
    assert!(!text.contains("module top("));
}
