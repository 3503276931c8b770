//! `npmu verilog`: the NI of a named configuration as one Verilog file.

use crate::error::CliError;
use clap::Args;
use npmu_abi::Config;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct Arguments {
    /// Configuration to build: sim or ice40.
    #[arg(long, default_value = "sim")]
    config: String,
    /// File to write; standard output if absent.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Emit only the protection core (top module npmu_core), as its tests drive it.
    #[arg(long, conflicts_with = "board")]
    core: bool,
    /// Emit the protection core behind its serial bridge (top module npmu_board), as the
    /// boards without PCIe use it.
    #[arg(long)]
    board: bool,
}

pub fn run(arguments: &Arguments) -> Result<ExitCode, CliError> {
    let config = Config::by_name(&arguments.config)?;
    tracing::info!(
        config = config.name,
        core = arguments.core,
        board = arguments.board,
        "emitting"
    );
    let verilog = if arguments.core {
        npmu_hdl::verilog::protection_core(&config)
    } else if arguments.board {
        npmu_hdl::verilog::serial_board(&config)
    } else {
        npmu_hdl::verilog::network_interface(&config)
    }
    .map_err(npmu_hdl::flow::FlowError::from)?;
    match &arguments.output {
        None => print!("{verilog}"),
        Some(path) => {
            std::fs::write(path, &verilog).map_err(|source| CliError::File {
                path: path.clone(),
                source,
            })?;
            tracing::info!(path = %path.display(), bytes = verilog.len(), "written");
        }
    }
    Ok(ExitCode::SUCCESS)
}
