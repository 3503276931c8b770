//! The generated Verilog of both tops passes Verilator's strictest lint (with only the
//! documented waivers), Icarus Verilog and Yosys, which reject constructs only Verilator
//! accepts.

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

fn verilog(top: &str, config: &Config) -> String {
    let path = generated_verilog(top, config);
    assert!(path.exists(), "{} was not generated", path.display());
    path.to_str().unwrap().to_owned()
}

#[rstest]
fn verilator_lint_wall_is_clean(
    #[values("npmu_ni", "npmu_core")] top: &str,
    #[values(Config::SIM, Config::ICE40)] config: Config,
) {
    let waivers = Path::new(env!("CARGO_MANIFEST_DIR")).join("../hdl/lint.vlt");
    let source = verilog(top, &config);
    let arguments = ["--lint-only", "-Wall", "--top-module", top];
    run(
        "verilator",
        &[&arguments[..], &[waivers.to_str().unwrap(), &source]].concat(),
    );
}

#[rstest]
fn icarus_verilog_compiles_it(
    #[values("npmu_ni", "npmu_core")] top: &str,
    #[values(Config::SIM, Config::ICE40)] config: Config,
) {
    let source = verilog(top, &config);
    run(
        "iverilog",
        &["-g2012", "-s", top, "-o", "/dev/null", &source],
    );
}

#[rstest]
fn yosys_reads_and_elaborates_it(
    #[values("npmu_ni", "npmu_core")] top: &str,
    #[values(Config::SIM, Config::ICE40)] config: Config,
) {
    let script = format!(
        "read_verilog {}; hierarchy -check -top {top}; proc",
        verilog(top, &config)
    );
    run("yosys", &["-q", "-p", &script]);
}

#[test]
fn the_top_module_is_npmu_ni() {
    let text = std::fs::read_to_string(verilog("npmu_ni", &Config::SIM)).unwrap();
    assert!(text.contains("\nmodule npmu_ni("));
    assert!(!text.contains("module top("));
}

/// The PCIe adapter, emitted on its own for the LiteFury's wrapper.
fn pcie_adapter_verilog() -> String {
    let path = std::env::temp_dir().join(format!("npmu_pcie_adapter-{}.v", std::process::id()));
    std::fs::write(&path, npmu_hdl::verilog::pcie_adapter().unwrap()).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn the_pcie_adapter_passes_the_lint_icarus_and_yosys() {
    let top = npmu_hdl::verilog::PCIE_ADAPTER_MODULE;
    let source = pcie_adapter_verilog();
    let waivers = Path::new(env!("CARGO_MANIFEST_DIR")).join("../hdl/lint.vlt");
    run(
        "verilator",
        &[
            "--lint-only",
            "-Wall",
            "--top-module",
            top,
            waivers.to_str().unwrap(),
            &source,
        ],
    );
    run(
        "iverilog",
        &["-g2012", "-s", top, "-o", "/dev/null", &source],
    );
    let script = format!("read_verilog {source}; hierarchy -check -top {top}; proc");
    run("yosys", &["-q", "-p", &script]);
    std::fs::remove_file(source).unwrap();
}
